/*
 * vkflow — model weight files: safetensors, PyTorch zip checkpoints
 * (.ckpt/.pt/.pth/.bin, read by a restricted pickle VM that never executes
 * anything), sharded safetensors and diffusers folders, behind one interface.
 * See docs/weights.md for formats, limits and the pickle allow-list.
 *
 * Opening a file maps it and parses only the header (safetensors JSON,
 * zip directory + data.pkl); tensor bytes are touched only when asked for.
 * Every length in the file is checked before use: a hostile file gives
 * VKF_EPARSE (or VKF_EIO for file system errors, VKF_EUNSUPPORTED for
 * recognised but unsupported formats) with one log line naming the file and
 * the problem, never a crash or an out-of-bounds read.
 *
 * Thread-safety: a vkf_weights belongs to one thread at a time (data access
 * may fill per-tensor caches).  Different objects are independent.
 */
#ifndef VKFLOW_WEIGHTS_H
#define VKFLOW_WEIGHTS_H

#include "common.h"
#include "gpu.h"

/* Storage dtypes of weight files (safetensors names). */
typedef enum vkf_wdtype {
    VKF_WDT_F32 = 0,
    VKF_WDT_F16,
    VKF_WDT_BF16,
    VKF_WDT_F64,
    VKF_WDT_F8_E4M3,    /* float8_e4m3fn: no inf, S.1111.111 = NaN */
    VKF_WDT_F8_E5M2,    /* float8_e5m2: IEEE-like, inf and NaN */
    VKF_WDT_I8,
    VKF_WDT_U8,
    VKF_WDT_I16,
    VKF_WDT_I32,
    VKF_WDT_I64,
    VKF_WDT_BOOL,
    VKF_WDT_COUNT
} vkf_wdtype;

/* "F32", "F16", "BF16", "F64", "F8_E4M3", "F8_E5M2", "I8", "U8", "I16",
 * "I32", "I64", "BOOL" (static strings); "?" for an invalid value. */
const char *vkf_wdtype_name(vkf_wdtype dt);
size_t vkf_wdtype_size(vkf_wdtype dt);

#define VKF_WEIGHTS_MAX_DIMS 8

/* One tensor.  Borrowed from its vkf_weights; valid until close. */
typedef struct vkf_weight_info {
    const char *name;          /* UTF-8; diffusers folders prefix the
                                  component: "unet.conv_in.weight" */
    vkf_wdtype dtype;
    int ndim;                  /* 0 = scalar */
    int64_t shape[VKF_WEIGHTS_MAX_DIMS];
    int64_t numel;
    uint64_t nbytes;           /* numel * vkf_wdtype_size(dtype) */
    int file;                  /* index for vkf_weights_file_path() */
} vkf_weight_info;

typedef enum vkf_weights_format {
    VKF_WEIGHTS_SAFETENSORS = 0,
    VKF_WEIGHTS_PICKLE,        /* PyTorch zip checkpoint */
    VKF_WEIGHTS_SHARDED,       /* *.index.json + shards, or a folder */
    VKF_WEIGHTS_DIFFUSERS,     /* folder with model_index.json */
} vkf_weights_format;

typedef struct vkf_weights vkf_weights;

/*
 * Opens `path`: a .safetensors file, a PyTorch zip checkpoint, a
 * `*.safetensors.index.json` weight map, or a folder (diffusers pipeline
 * with model_index.json, a component folder, or a folder of shards).  The
 * kind is decided by magic bytes, not by extension.  `log` is borrowed
 * (may be NULL) and must outlive the object.
 */
int vkf_weights_open(const char *path, vkf_weights **out, const vkf_log *log);

/* Same for a single file already in memory (safetensors or zip); `data`
 * is borrowed and must outlive the object.  `name` is used in messages. */
int vkf_weights_open_memory(const void *data, size_t size, const char *name,
                            vkf_weights **out, const vkf_log *log);

/* Unmaps and frees; NULL and *w == NULL are fine; sets *w = NULL. */
void vkf_weights_close(vkf_weights **w);

vkf_weights_format vkf_weights_get_format(const vkf_weights *w);

/* Tensors, sorted by name (strcmp order).  i in [0, count). */
int vkf_weights_count(const vkf_weights *w);
const vkf_weight_info *vkf_weights_at(const vkf_weights *w, int i);
/* NULL if absent. */
const vkf_weight_info *vkf_weights_find(const vkf_weights *w, const char *name);
/* Index of the first tensor whose name starts with prefix, or -1. */
int vkf_weights_find_prefix(const vkf_weights *w, const char *prefix);

/* Files behind the object (1 for a single file; shards; components). */
int vkf_weights_file_count(const vkf_weights *w);
const char *vkf_weights_file_path(const vkf_weights *w, int file);
/* File holding the first tensor with this name prefix, or -1. */
int vkf_weights_file_for_prefix(const vkf_weights *w, const char *prefix);

/* Metadata: safetensors `__metadata__` (string map), the `metadata` of an
 * index JSON, scalar entries next to a pickle `state_dict`.  Sorted by
 * key; strings borrowed until close. */
int vkf_weights_metadata_count(const vkf_weights *w);
void vkf_weights_metadata_at(const vkf_weights *w, int i, const char **key,
                             const char **value);
const char *vkf_weights_metadata_get(const vkf_weights *w, const char *key);

/*
 * Raw bytes of one tensor, row-major contiguous, in its storage dtype,
 * little-endian.  Zero-copy into the mapping when possible; otherwise
 * (deflated zip entry, non-contiguous strides) the bytes are made once and
 * cached in the object.  *data stays valid until close.
 */
int vkf_weights_data(vkf_weights *w, const vkf_weight_info *t,
                     const void **data, size_t *size);

/* Converts one tensor into caller memory holding t->numel elements.
 * Integers and f8 are upcast (f8 NaN/inf/subnormals exact); f64 and big
 * integers are rounded. */
int vkf_weights_to_f32(vkf_weights *w, const vkf_weight_info *t, float *dst);
int vkf_weights_to_f16(vkf_weights *w, const vkf_weight_info *t, uint16_t *dst);

/*
 * Uploads one tensor into a new vkf_tensor on gpu (scalars become [1]).
 * F32/F16/BF16 upload their raw bytes; F8, I8, U8 and BOOL are upcast on
 * the host to F16 (exact); I16, I32, I64 and F64 to F32.  More than
 * VKF_TENSOR_MAX_DIMS dims gives VKF_EUNSUPPORTED, an empty tensor VKF_EINVAL.
 */
int vkf_weights_load_tensor(vkf_weights *w, const vkf_weight_info *t,
                            vkf_gpu *gpu, vkf_tensor **out);

/* Scalar conversions, exposed for tests and ops. */
float vkf_f8e4m3_to_f32(uint8_t v);
float vkf_f8e5m2_to_f32(uint8_t v);
float vkf_f16_to_f32(uint16_t v);
uint16_t vkf_f32_to_f16(float f);     /* round to nearest even */
float vkf_bf16_to_f32(uint16_t v);

/* ---- model family detection (core/io/detect.c) ---- */

typedef struct vkf_detect_result {
    char family[64];           /* "SD1.x", "SDXL base", "Flux", "LoRA", ...,
                                  "unknown" */
    char variant[128];         /* details: "dev", "14B i2v", "kohya",
                                  "decoder", "(768-v or base)" ... */
    char prefix[64];           /* key prefix the family was found under */
    char components[256];      /* other parts of a single-file checkpoint:
                                  "vae clip_l" ... */
} vkf_detect_result;

/* Infers the model family from key names and shapes; never fails. */
void vkf_weights_detect(const vkf_weights *w, vkf_detect_result *out);

#endif /* VKFLOW_WEIGHTS_H */
