/*
 * vkflow — model folders (ComfyUI's folder_paths), input/output/temp
 * directories and path safety.
 *
 * Folder names are ComfyUI's: checkpoints, configs, loras, vae, vae_approx,
 * text_encoders (alias clip), diffusion_models (alias unet), clip_vision,
 * controlnet (also searches t2i_adapter), upscale_models, embeddings,
 * style_models, gligen, hypernetworks, photomaker, model_patches,
 * audio_encoders, classifiers, diffusers.  Unknown names from
 * extra_model_paths.yaml create new folders.
 *
 * Safety: a name given by a workflow is a relative path; names that are
 * absolute, contain a ".." component, or resolve (through symlinks) outside
 * the root they were found under are refused with VKF_EPERM.  Backslashes
 * in names (workflows made on Windows) are treated as separators.
 *
 * Thread-safety: a vkf_paths is read-only after set-up and may then be
 * shared by threads.
 */
#ifndef VKFLOW_PATHS_H
#define VKFLOW_PATHS_H

#include "common.h"

typedef struct vkf_paths vkf_paths;

int vkf_paths_create(vkf_paths **out, const vkf_log *log);

/* Everything a front end (CLI, server) sets up, in one struct. */
typedef struct vkf_paths_config {
    const char *const *models;      /* models roots, searched in order */
    int nb_models;
    const char *const *extra_yaml;  /* extra_model_paths.yaml files */
    int nb_extra_yaml;
    const char *input_dir;          /* NULL: "input" */
    const char *output_dir;         /* NULL: "output" */
    const char *temp_dir;           /* NULL: "temp" beside the output dir */
} vkf_paths_config;

/* vkf_paths_create + roots + YAML files + directories, as configured. */
int vkf_paths_create_from(const vkf_paths_config *cfg, const vkf_log *log, vkf_paths **out);
void vkf_paths_destroy(vkf_paths **p);

/* A ComfyUI models root: DIR/<folder>/ for every known folder (old and new
 * names).  If DIR has a "models" subfolder, that is used as the root. */
int vkf_paths_add_models_root(vkf_paths *p, const char *dir);
/* One extra search dir for a folder; first = put it before the others. */
int vkf_paths_add_folder_dir(vkf_paths *p, const char *folder, const char *dir,
                             bool first);
/* Reads a ComfyUI extra_model_paths.yaml. */
int vkf_paths_load_extra_yaml(vkf_paths *p, const char *yaml_path);

int vkf_paths_set_input_dir(vkf_paths *p, const char *dir);
int vkf_paths_set_output_dir(vkf_paths *p, const char *dir);
int vkf_paths_set_temp_dir(vkf_paths *p, const char *dir);
const char *vkf_paths_input_dir(const vkf_paths *p);
const char *vkf_paths_output_dir(const vkf_paths *p);
const char *vkf_paths_temp_dir(const vkf_paths *p);

/* Canonical folder name for a name or alias ("unet" -> "diffusion_models"),
 * or NULL if unknown. */
const char *vkf_paths_canonical_folder(const vkf_paths *p, const char *folder);

/* Sorted, de-duplicated list of model files (by extension) under the
 * folder's dirs, relative names with '/' separators.  *names is a
 * vkf_malloc'ed array of vkf_malloc'ed strings; free with vkf_strv_free. */
int vkf_paths_list(const vkf_paths *p, const char *folder, char ***names, int *count);
/* LoadImage's list: the image files directly in the input directory
 * (ComfyUI lists one level), sorted; free with vkf_strv_free. */
int vkf_paths_list_input_images(const vkf_paths *p, char ***names, int *count);
/* Full path of a model by its relative name: first root that has it. */
int vkf_paths_resolve(const vkf_paths *p, const char *folder, const char *name,
                      char **full_path);
/* Full path of a file in the input directory (LoadImage's combo values,
 * which may carry an " [output]" / " [input]" / " [temp]" suffix). */
int vkf_paths_resolve_input(const vkf_paths *p, const char *name, char **full_path);
/*
 * Path for writing an output file: subfolder (may be "" or nested) and
 * file name under the output (temp = false) or temp directory; creates
 * missing directories; refuses anything escaping the root.
 */
int vkf_paths_output_file(const vkf_paths *p, bool temp, const char *subfolder,
                          const char *filename, char **full_path);

/* Safety primitive: is the relative name acceptable (no absolute, no ".."
 * component, not empty)? */
bool vkf_path_name_is_safe(const char *name);
/* Does real path `path` lie inside real directory `root`? (symlinks
 * resolved; the file must exist) */
bool vkf_path_is_inside(const char *root, const char *path);

void vkf_strv_free(char ***v, int count);

/* Atomic file output: write to a temporary file beside the target, then
 * fsync + rename in commit; abort (or destroy without commit) removes the
 * temporary.  Readers never see a half-written file. */
typedef struct vkf_atomic_file vkf_atomic_file;
int vkf_atomic_file_open(vkf_atomic_file **out, const char *final_path);
int vkf_atomic_file_write(vkf_atomic_file *f, const void *data, size_t size);
/* The stdio stream of the temporary (for libraries that want a FILE*). */
void *vkf_atomic_file_stream(vkf_atomic_file *f);
int vkf_atomic_file_commit(vkf_atomic_file **f);
void vkf_atomic_file_abort(vkf_atomic_file **f);

#endif /* VKFLOW_PATHS_H */
