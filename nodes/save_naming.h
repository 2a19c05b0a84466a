/*
 * Output naming shared by the save nodes (SaveImage, SaveLatent, the video
 * and animated-image savers): ComfyUI's folder_paths.get_save_image_path
 * pieces, and json.dumps' ensure_ascii for metadata.  Strings returned are
 * vkf_malloc'ed; NULL means out of memory.
 */
#ifndef VKF_NODES_SAVE_NAMING_H
#define VKF_NODES_SAVE_NAMING_H

#include <stdint.h>

/* %width% %height% %year% %month% %day% %hour% %minute% %second% in a
 * filename_prefix (folder_paths.compute_vars, local time). */
char *vkf_save_expand_vars(const char *prefix, int64_t w, int64_t h);
/* os.path.normpath: "." and empty parts dropped, "a/.." pairs resolved; a
 * leading ".." or "/" is kept (vkf_paths_output_file refuses it); "" → ".". */
char *vkf_save_normpath(const char *s);
/* 1 + the highest N among the "<stem>_N" / "<stem>_N_..." entries of dir
 * (N of 1 to 9 digits); 1 for a missing directory. */
int vkf_save_next_counter(const char *dir, const char *stem);
/* JSON text with non-ASCII as \uXXXX (surrogate pairs above the BMP). */
char *vkf_json_ensure_ascii(const char *s);

#endif
