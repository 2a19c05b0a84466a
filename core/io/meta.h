/* Private: workflow metadata embedded in PNG and WebP files. */
#ifndef VKF_IO_META_H
#define VKF_IO_META_H

#include "vkflow/graph.h"

/* Decompressed text chunks larger than this are refused. */
#define VKF_META_MAX_TEXT (64u << 20)

typedef enum vkf_meta_format {
    VKF_META_JSON = 0,   /* not an image: treat the bytes as JSON text */
    VKF_META_PNG,
    VKF_META_WEBP,
} vkf_meta_format;

vkf_meta_format vkf_meta_detect(const void *data, size_t size);

/*
 * The "prompt" (API) and "workflow" (UI) JSON texts embedded in a PNG
 * (tEXt, zTXt, iTXt chunks) or a WebP (EXIF "prompt:" / "workflow:"
 * entries).  Either may come back NULL; both vkf_malloc'ed, UTF-8.
 * Malformed files give VKF_EPARSE with a message naming the problem.
 */
int vkf_meta_extract(const void *data, size_t size, char **prompt, char **workflow,
                     vkf_load_error *err);

#endif
