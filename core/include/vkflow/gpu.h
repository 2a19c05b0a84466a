/*
 * vkflow — Vulkan compute: device, memory, tensors, ops, profiling.
 *
 * Object model (see docs/vulkan.md):
 *   vkf_gpu     one Vulkan device + queue, its memory suballocator, pipeline
 *               and SPIR-V caches, and the command batch that ops record into.
 *   vkf_tensor  up to 5-D, f32/f16/bf16 storage, reference counted.  Views
 *               (slice, permute, reshape) share storage with their parent.
 *               Storage is a list of chunks, each one VkBuffer no larger than
 *               the device's maxStorageBufferRange, so tensors can be larger
 *               than one binding.
 *   vkf_op_*    record one or more dispatches into the current batch and
 *               return a new tensor.  Nothing runs until the batch is
 *               flushed: vkf_gpu_flush(), a download, or a full batch.
 *
 * Errors: every fallible call returns 0 or a negative VKF_E* code;
 * VK_ERROR_OUT_OF_DEVICE_MEMORY maps to VKF_EDEVICE_OOM and
 * VK_ERROR_DEVICE_LOST to VKF_EDEVICE_LOST, each logged once with what was
 * being done.  After VKF_EDEVICE_LOST the only valid call is destroy.
 *
 * Thread-safety: a vkf_gpu and all tensors made from it belong to one
 * thread at a time.  Different vkf_gpu objects are independent.
 */
#ifndef VKFLOW_GPU_H
#define VKFLOW_GPU_H

#include "common.h"

#define VKF_TENSOR_MAX_DIMS 5

typedef struct vkf_gpu vkf_gpu;
typedef struct vkf_tensor vkf_tensor;

typedef enum vkf_dtype {
    VKF_DTYPE_F32 = 0,
    VKF_DTYPE_F16 = 1,
    VKF_DTYPE_BF16 = 2,
} vkf_dtype;

const char *vkf_dtype_name(vkf_dtype dt);
size_t vkf_dtype_size(vkf_dtype dt);

/*
 * Creation parameters.  Zero means default for every field, so
 * `(vkf_gpu_params){0}` picks device 0 with no validation and no disk
 * caches.  Filled by the CLI from --device / VKF_DEVICE etc.; the library
 * reads no environment variables.  Strings are borrowed for the duration of
 * the call that receives the params (they are copied).
 */
typedef struct vkf_gpu_params {
    int device_index;              /* index in vkf_gpu_list_devices() order */
    bool validation;               /* enable VK_LAYER_KHRONOS_validation and
                                      count its messages */
    const char *pipeline_cache_path; /* VkPipelineCache file; NULL: none */
    const char *spirv_cache_dir;   /* runtime-compiled SPIR-V; NULL: none */
    const vkf_log *log;            /* borrowed; must outlive the vkf_gpu */
    uint64_t max_chunk_bytes;      /* cap on one storage chunk, rounded down
                                      to a power of two; 0: device limits.
                                      Tests lower it to exercise chunking. */
    bool force_staging;            /* never map device memory directly, even
                                      where it is host-visible */
    bool profile;                  /* timestamp each dispatch */
} vkf_gpu_params;

typedef struct vkf_gpu_heap_info {
    uint64_t size;                 /* bytes */
    uint64_t budget;               /* VK_EXT_memory_budget, else size */
    uint64_t usage;                /* VK_EXT_memory_budget, else 0 */
    bool device_local;
} vkf_gpu_heap_info;

typedef struct vkf_gpu_device_info {
    char name[256];
    char driver_name[256];
    char driver_info[256];
    const char *type;              /* "discrete", "integrated", "virtual",
                                      "cpu", "other" (static string) */
    uint32_t vendor_id, device_id, api_version;
    int heap_count;
    vkf_gpu_heap_info heaps[16];
    bool has_memory_budget;
    uint32_t subgroup_size;
    bool fp16_arith, bf16_arith, int8_arith;
    bool storage_16bit, storage_8bit;
    bool cooperative_matrix;       /* VK_KHR_cooperative_matrix */
    bool timestamps;
    float timestamp_period_ns;
    uint64_t max_storage_buffer_range;
    uint64_t max_allocation_size;
    uint32_t max_push_constants;
    uint32_t max_workgroup_invocations;
} vkf_gpu_device_info;

/* All physical devices.  *out is freed with vkf_free(). */
int vkf_gpu_list_devices(const vkf_gpu_params *params,
                         vkf_gpu_device_info **out, int *count);

int vkf_gpu_create(const vkf_gpu_params *params, vkf_gpu **out);
/* Waits for the device, writes the pipeline cache, frees everything.
 * Tensors of this gpu must have been released before. */
void vkf_gpu_destroy(vkf_gpu **gpu);

/* Borrowed; valid for the life of gpu. */
const vkf_gpu_device_info *vkf_gpu_info(const vkf_gpu *gpu);

/* Submit recorded work and wait for it. */
int vkf_gpu_flush(vkf_gpu *gpu);

/* Validation messages (warnings and errors) seen so far; with
 * params.validation each one is also logged. */
long vkf_gpu_validation_messages(const vkf_gpu *gpu);

typedef struct vkf_gpu_mem_stats {
    uint64_t current;              /* bytes of live buffers */
    uint64_t peak;                 /* max of current since create/reset */
    uint64_t reserved;             /* bytes of VkDeviceMemory held */
    uint64_t allocations;          /* live VkDeviceMemory objects */
} vkf_gpu_mem_stats;

void vkf_gpu_mem_stats_get(const vkf_gpu *gpu, vkf_gpu_mem_stats *out);
void vkf_gpu_mem_reset_peak(vkf_gpu *gpu);

/* Per-op-kind GPU time, summed over flushed batches since the last reset
 * (params.profile must be set).  `op` strings are static. */
typedef struct vkf_gpu_op_time {
    const char *op;
    double ms;
    long dispatches;
} vkf_gpu_op_time;

/* Copies up to cap entries into out; returns how many kinds exist. */
int vkf_gpu_profile_get(const vkf_gpu *gpu, vkf_gpu_op_time *out, int cap);
void vkf_gpu_profile_reset(vkf_gpu *gpu);

/* Command batching counters since create. */
typedef struct vkf_gpu_batch_stats {
    uint64_t submits;              /* vkQueueSubmit calls */
    uint64_t dispatches;
    uint64_t barriers;             /* pipeline barriers recorded */
} vkf_gpu_batch_stats;

void vkf_gpu_batch_stats_get(const vkf_gpu *gpu, vkf_gpu_batch_stats *out);

/*
 * Runtime GLSL → SPIR-V through libshaderc, cached in memory and, with
 * params.spirv_cache_dir, on disk, keyed by a hash of source + defines.
 * *spirv is owned by the gpu (valid until destroy); *words is its length.
 * `defines` is NULL or a NULL-terminated list of "NAME=VALUE" / "NAME".
 */
int vkf_gpu_compile_glsl(vkf_gpu *gpu, const char *name, const char *source,
                         const char *const *defines, const uint32_t **spirv,
                         size_t *words);

/* ---- tensors ---- */

int vkf_tensor_create(vkf_gpu *gpu, vkf_dtype dtype, int ndim,
                      const int64_t *shape, vkf_tensor **out);
/* New reference (returns t). */
vkf_tensor *vkf_tensor_ref(vkf_tensor *t);
/* Drops a reference, sets *t = NULL; NULL and *t == NULL are fine.  GPU
 * memory is released once recorded work using it has finished. */
void vkf_tensor_unref(vkf_tensor **t);

int vkf_tensor_ndim(const vkf_tensor *t);
const int64_t *vkf_tensor_shape(const vkf_tensor *t);     /* ndim entries */
const int64_t *vkf_tensor_strides(const vkf_tensor *t);   /* in elements */
vkf_dtype vkf_tensor_dtype(const vkf_tensor *t);
int64_t vkf_tensor_numel(const vkf_tensor *t);
bool vkf_tensor_is_contiguous(const vkf_tensor *t);

/* Host transfers (flush the batch first; blocking).  data holds numel
 * floats in row-major order of the tensor's shape; conversion to and from
 * the storage dtype happens on the host.  Views are supported for
 * download; upload needs a contiguous tensor. */
int vkf_tensor_upload(vkf_tensor *t, const float *data);
int vkf_tensor_download(vkf_tensor *t, float *data);
/* Raw bytes already in the storage dtype (e.g. f16 weights from a file). */
int vkf_tensor_upload_raw(vkf_tensor *t, const void *data, size_t bytes);

/* Views: share storage, new reference in *out. */
int vkf_tensor_slice(vkf_tensor *t, int dim, int64_t start, int64_t len,
                     vkf_tensor **out);
int vkf_tensor_permute(vkf_tensor *t, const int *perm, vkf_tensor **out);
/* Contiguous tensors only (else VKF_EINVAL; use vkf_op_contiguous). */
int vkf_tensor_reshape(vkf_tensor *t, int ndim, const int64_t *shape,
                       vkf_tensor **out);

/* ---- ops: each returns a new tensor in *out (f32 unless stated) ---- */

typedef enum vkf_binary_op {
    VKF_BIN_ADD = 0,
    VKF_BIN_SUB = 1,
    VKF_BIN_MUL = 2,
    VKF_BIN_DIV = 3,
} vkf_binary_op;

typedef enum vkf_unary_op {
    VKF_UN_SILU = 0,
    VKF_UN_GELU_ERF = 1,
    VKF_UN_GELU_TANH = 2,
    VKF_UN_SCALE = 3,              /* x * a + b */
    VKF_UN_RELU = 4,
    VKF_UN_SIGMOID = 5,
    VKF_UN_TANH = 6,
} vkf_unary_op;

/* NumPy broadcasting of a and b (right-aligned shapes). */
int vkf_op_binary(vkf_gpu *gpu, vkf_binary_op op, vkf_tensor *a,
                  vkf_tensor *b, vkf_tensor **out);
/* a, b used by VKF_UN_SCALE only. */
int vkf_op_unary(vkf_gpu *gpu, vkf_unary_op op, vkf_tensor *x, float a,
                 float b, vkf_tensor **out);
/* Copy with dtype conversion; materialises views. */
int vkf_op_cast(vkf_gpu *gpu, vkf_tensor *x, vkf_dtype dtype,
                vkf_tensor **out);
/* x if it is contiguous (new reference), else a contiguous copy. */
int vkf_op_contiguous(vkf_gpu *gpu, vkf_tensor *x, vkf_tensor **out);
int vkf_op_concat(vkf_gpu *gpu, vkf_tensor *const *xs, int n, int dim,
                  vkf_tensor **out);
/* Constant padding: pads[2*d], pads[2*d+1] = before/after for dim d. */
int vkf_op_pad(vkf_gpu *gpu, vkf_tensor *x, const int64_t *pads, float value,
               vkf_tensor **out);

/*
 * Batched matrix product, f32 accumulation.
 *   a: [..., M, K]   b: [..., K, N] (trans_b false) or [..., N, K] (true)
 *   batch dims of b are 1 or equal to a's (b with fewer dims broadcasts).
 *   bias: NULL or [N].  out: [..., M, N] f32.
 * b may be f32, f16 or bf16 (weights); a may be any storage dtype.
 */
int vkf_op_matmul(vkf_gpu *gpu, vkf_tensor *a, vkf_tensor *b, bool trans_b,
                  vkf_tensor *bias, vkf_tensor **out);
/* PyTorch linear: x [..., K], w [N, K], bias NULL or [N] → [..., N]. */
int vkf_op_linear(vkf_gpu *gpu, vkf_tensor *x, vkf_tensor *w,
                  vkf_tensor *bias, vkf_tensor **out);

/* Softmax over the last dim. */
int vkf_op_softmax(vkf_gpu *gpu, vkf_tensor *x, vkf_tensor **out);
/* Layer norm over the last dim; weight/bias NULL or [C]. */
int vkf_op_layer_norm(vkf_gpu *gpu, vkf_tensor *x, vkf_tensor *weight,
                      vkf_tensor *bias, float eps, vkf_tensor **out);
/* RMS norm over the last dim; weight NULL or [C]. */
int vkf_op_rms_norm(vkf_gpu *gpu, vkf_tensor *x, vkf_tensor *weight,
                    float eps, vkf_tensor **out);
/* Group norm of x [N, C, ...]; weight/bias NULL or [C]. */
int vkf_op_group_norm(vkf_gpu *gpu, vkf_tensor *x, int groups,
                      vkf_tensor *weight, vkf_tensor *bias, float eps,
                      vkf_tensor **out);

/* ---- spatial ops: convolution, pooling, resampling ----
 * (core/gpu/ops/conv.c, pool.c, resample.c).  Inputs and weights may be
 * f32, f16 or bf16 storage and any view; outputs are contiguous f32.
 * Zero in any params field means the PyTorch default (stride = 1, or the
 * kernel for pooling; dilation = 1; groups = 1; padding = 0). */

typedef struct vkf_conv2d_params {
    int stride[2];                 /* (h, w) */
    int padding[2];                /* zeros on both sides */
    int dilation[2];
    int groups;                    /* Cin and Cout must be multiples */
} vkf_conv2d_params;

/* PyTorch conv2d: x [N, Cin, H, W], weight [Cout, Cin/groups, kh, kw],
 * bias NULL or [Cout] → [N, Cout, Ho, Wo]. */
int vkf_op_conv2d(vkf_gpu *gpu, vkf_tensor *x, vkf_tensor *weight,
                  vkf_tensor *bias, const vkf_conv2d_params *params,
                  vkf_tensor **out);

/* Conv weights [Cout, Cin/groups, kh, kw] rearranged once (at model load)
 * for this device's conv2d kernel: lavapipe then streams them contiguously
 * (docs/performance.md).  *out is only for vkf_op_conv2d's weight argument
 * (its contents are not the plain layout); it is a new reference to weight
 * itself when the device or the shape gains nothing. */
int vkf_op_conv2d_prepack(vkf_gpu *gpu, vkf_tensor *weight, vkf_tensor **out);

typedef struct vkf_conv3d_params {
    int stride[3];                 /* (t, h, w) */
    int padding[3];                /* h, w: both sides; t: see causal */
    int dilation[3];
    int groups;
    bool causal;                   /* Wan CausalConv3d: 2*padding[0] zero
                                      frames in front, none behind; false:
                                      padding[0] on both sides (nn.Conv3d) */
} vkf_conv3d_params;

/* Conv3d: x [N, Cin, T, H, W], weight [Cout, Cin/groups, kt, kh, kw], bias
 * NULL or [Cout] → [N, Cout, To, Ho, Wo].  cache: NULL or [N, Cin, Tc, H, W]
 * frames preceding x (Wan's chunked decode); with causal and padding[0] > 0
 * its last min(Tc, 2*padding[0]) frames replace that many front zero frames
 * (as Wan's CausalConv3d.forward(x, cache_x)); otherwise it is ignored. */
int vkf_op_conv3d(vkf_gpu *gpu, vkf_tensor *x, vkf_tensor *weight,
                  vkf_tensor *bias, vkf_tensor *cache,
                  const vkf_conv3d_params *params, vkf_tensor **out);

typedef struct vkf_pool2d_params {
    int kernel[2];                 /* (h, w), required */
    int stride[2];                 /* 0: the kernel */
    int padding[2];                /* both sides, at most kernel / 2 */
    bool exclude_pad;              /* avg: divide by the in-bounds count
                                      (torch count_include_pad=False) */
} vkf_pool2d_params;

/* Over the last two dims of x (3- to 5-D); floor output size (torch
 * ceil_mode=False).  Max pooling pads with -inf. */
int vkf_op_avg_pool2d(vkf_gpu *gpu, vkf_tensor *x,
                      const vkf_pool2d_params *params, vkf_tensor **out);
int vkf_op_max_pool2d(vkf_gpu *gpu, vkf_tensor *x,
                      const vkf_pool2d_params *params, vkf_tensor **out);

typedef enum vkf_upsample_mode {
    VKF_UPSAMPLE_NEAREST = 0,      /* torch 'nearest': floor(dst * in/out) */
    VKF_UPSAMPLE_NEAREST_EXACT = 1,/* 'nearest-exact': floor((dst+.5)*in/out) */
    VKF_UPSAMPLE_BILINEAR = 2,     /* 'bilinear', antialias=False */
} vkf_upsample_mode;

typedef struct vkf_upsample_params {
    vkf_upsample_mode mode;
    int64_t size[2];               /* output (h, w); 0: floor(in * scale) */
    double scale[2];               /* torch scale_factor; used only where
                                      size is 0, and then (like torch without
                                      recompute_scale_factor) also for the
                                      source index: 1/scale, not in/out */
    bool align_corners;            /* bilinear only */
} vkf_upsample_params;

/* torch.nn.functional.interpolate over the last two dims of x (2- to
 * 5-D: [N, C, H, W] or [N, C, T, H, W] frame by frame). */
int vkf_op_upsample(vkf_gpu *gpu, vkf_tensor *x,
                    const vkf_upsample_params *params, vkf_tensor **out);

/* ---- transformer ops: attention, rotary and timestep embeddings, GEGLU ----
 * (core/gpu/ops/attention.c, rope.c, embed.c, geglu.c).  Inputs may be
 * f32, f16 or bf16 storage and any view; outputs are contiguous f32;
 * arithmetic is f32.  NULL params means all defaults. */

typedef struct vkf_attention_params {
    float scale;                   /* logit scale; 0: 1/sqrt(D) (T5: pass 1) */
    vkf_tensor *mask;              /* borrowed; NULL or additive, any dtype,
                                      broadcastable (right-aligned) to
                                      [B, H, Nq, Nk]: [Nq, Nk], a key-padding
                                      [B, 1, 1, Nk], a bias [H, Nq, Nk]...;
                                      -inf masks a key out */
    bool causal;                   /* key j visible to query i iff j <= i
                                      (torch is_causal, top-left aligned) */
} vkf_attention_params;

/*
 * softmax(scale · q·kᵀ + mask) · v, fused (online softmax, nothing of size
 * Nq × Nk is stored).  q [B, H, Nq, D], k and v [B', H', Nk, D] with B' in
 * {1, B} and H' in {1, H}; D <= 256; views (e.g. a permuted [B, N, H, D])
 * are read in place when their rows are 4-aligned.  → [B, H, Nq, D].
 * A query whose keys are all masked out (-inf) gets zeros.
 */
int vkf_op_attention(vkf_gpu *gpu, vkf_tensor *q, vkf_tensor *k, vkf_tensor *v,
                     const vkf_attention_params *params, vkf_tensor **out);
/* Same with the heads in the last dim, as linear projections produce
 * them: q [B, Nq, H·D], k/v [B', Nk, H·D] → [B, Nq, H·D]. */
int vkf_op_attention_heads(vkf_gpu *gpu, vkf_tensor *q, vkf_tensor *k,
                           vkf_tensor *v, int heads,
                           const vkf_attention_params *params, vkf_tensor **out);

typedef enum vkf_rope_mode {
    VKF_ROPE_INTERLEAVED = 0,      /* pairs (x[2i], x[2i+1]) as complex
                                      numbers: GPT-J, Flux, Wan */
    VKF_ROPE_HALF = 1,             /* pairs (x[i], x[i + a/2]) of an axis of
                                      a dims: GPT-NeoX / HF "rotate_half" */
} vkf_rope_mode;

/* Rotary embedding over up to 3 position axes.  Axis k rotates the next
 * axis_dim[k] elements of each head vector (even; the dims past the sum
 * pass through) by angles pos_k · theta^(-2j/axis_dim[k]), j = 0, 1, ...
 * Token n of a sequence has row-major coordinates in grid (F, H, W); tokens
 * past F·H·W are copied unchanged (Wan's rope_apply). */
typedef struct vkf_rope_params {
    vkf_rope_mode mode;
    double theta;                  /* 0: 10000 */
    int naxes;                     /* 0: one axis over all D, grid N */
    int axis_dim[3];
    int64_t grid[3];               /* positions per axis (>= 1) */
    int64_t pos_offset[3];         /* added to each coordinate */
} vkf_rope_params;

/* Wan 2.1/2.2 3-D RoPE for head_dim d and latent grid (f, h, w): axes
 * (d - 4⌊d/6⌋, 2⌊d/6⌋, 2⌊d/6⌋), interleaved pairs, theta 10000. */
void vkf_rope_params_wan(int head_dim, int64_t f, int64_t h, int64_t w,
                         vkf_rope_params *out);
/* x [B, N, H, D] (D even) → rotated [B, N, H, D]. */
int vkf_op_rope(vkf_gpu *gpu, vkf_tensor *x, const vkf_rope_params *params,
                vkf_tensor **out);

/* Sinusoidal timestep embedding.  half = dim/2, f_k = exp(-ln(P)·k /
 * (half - freq_shift)), out = [cos(t·f), sin(t·f)] (zero column appended
 * when dim is odd).  SD's timestep_embedding, Wan's
 * sinusoidal_embedding_1d and Flux are all the zero-params case (Flux
 * with t_scale 1000); diffusers' Timesteps(flip_sin_to_cos=False,
 * downscale_freq_shift=1) is sin_first with freq_shift 1. */
typedef struct vkf_timestep_embed_params {
    int dim;                       /* required, >= 1 */
    double max_period;             /* P; 0: 10000 */
    double freq_shift;
    bool sin_first;                /* [sin, cos] instead of [cos, sin] */
    float t_scale;                 /* t is multiplied by it; 0: 1 */
} vkf_timestep_embed_params;

/* t [B] (any dtype) → [B, dim]. */
int vkf_op_timestep_embedding(vkf_gpu *gpu, vkf_tensor *t,
                              const vkf_timestep_embed_params *params,
                              vkf_tensor **out);

/* GEGLU of the SD transformer feed-forward: x [..., 2C] →
 * x[..., :C] · gelu_erf(x[..., C:]) [..., C]. */
int vkf_op_geglu(vkf_gpu *gpu, vkf_tensor *x, vkf_tensor **out);

/* ---- latent-node ops (core/gpu/ops/latent_ops.c) ---- */

/* ComfyUI's latent composites: a contiguous f32 copy of dst [B, C, H, W]
 * with src [Bs, C, hs, ws] pasted at (top, left) >= 0, clipped to dst;
 * batch b reads src[b mod Bs] and mask[b mod Bm].  mask: NULL (plain
 * copy) or [Bm, hs, ws]: o = m·s + (1 − m)·d. */
int vkf_op_composite(vkf_gpu *gpu, vkf_tensor *dst, vkf_tensor *src,
                     vkf_tensor *mask, int64_t left, int64_t top,
                     vkf_tensor **out);

typedef enum vkf_resample_ext {
    VKF_RESAMPLE_AREA = 0,         /* torch 'area' (adaptive_avg_pool2d) */
    VKF_RESAMPLE_BICUBIC = 1,      /* torch 'bicubic', align_corners=False */
    VKF_RESAMPLE_BISLERP = 2,      /* ComfyUI bislerp (4-D [N, C, H, W]) */
} vkf_resample_ext;

/* Resamples the last two dims of x to (ho, wo). */
int vkf_op_resample_ext(vkf_gpu *gpu, vkf_tensor *x, vkf_resample_ext mode,
                        int64_t ho, int64_t wo, vkf_tensor **out);

/* ---- image / mask node ops (core/gpu/ops/image_ops.c) ----
 * ComfyUI's image and mask nodes.  IMAGE = [B, H, W, C], MASK = [B, H, W];
 * inputs any dtype and view, outputs contiguous f32. */

typedef enum vkf_image_blend_mode {
    VKF_BLEND_NORMAL = 0, VKF_BLEND_MULTIPLY, VKF_BLEND_SCREEN, VKF_BLEND_OVERLAY,
    VKF_BLEND_SOFT_LIGHT, VKF_BLEND_DIFFERENCE,
} vkf_image_blend_mode;

/* ImageBlend: clamp(a·(1 − f) + mode(a, b)·f, 0, 1); a, b same shape. */
int vkf_op_image_blend(vkf_gpu *gpu, vkf_tensor *a, vkf_tensor *b, vkf_image_blend_mode mode,
                       double factor, vkf_tensor **out);

typedef enum vkf_mask_op {
    VKF_MASK_MULTIPLY = 0, VKF_MASK_ADD, VKF_MASK_SUBTRACT, VKF_MASK_AND, VKF_MASK_OR,
    VKF_MASK_XOR,
} vkf_mask_op;

/* MaskComposite: dst [B, H, W] with src [Bs, h, w] (batch b reads src[b mod
 * Bs]) combined at (x, y), clipped; the whole result clamped to [0, 1]. */
int vkf_op_mask_composite(vkf_gpu *gpu, vkf_tensor *dst, vkf_tensor *src, int64_t x, int64_t y,
                          vkf_mask_op op, vkf_tensor **out);
/* ThresholdMask: x > value ? 1 : 0 (any shape). */
int vkf_op_mask_threshold(vkf_gpu *gpu, vkf_tensor *x, float value, vkf_tensor **out);
/* FeatherMask's edge ramps (including its column/row 0 quirk for right and
 * bottom); sizes are clamped to the mask. */
int vkf_op_mask_feather(vkf_gpu *gpu, vkf_tensor *mask, int64_t left, int64_t top, int64_t right,
                        int64_t bottom, vkf_tensor **out);
/* ImagePadForOutpaint's mask [1, h + top + bottom, w + left + right] for
 * an h × w image. */
int vkf_op_outpaint_mask(vkf_gpu *gpu, int64_t h, int64_t w, int64_t left, int64_t top,
                         int64_t right, int64_t bottom, int64_t feathering, vkf_tensor **out);
/* GrowMask: |expand| grey dilations (expand > 0) or erosions of [B, H, W]
 * with the 3×3 cross (tapered) or box, edges replicated (scipy 'reflect'). */
int vkf_op_mask_grow(vkf_gpu *gpu, vkf_tensor *mask, int64_t expand, bool tapered,
                     vkf_tensor **out);
/* MaskToImage: [B, H, W] → [B, H, W, 3]. */
int vkf_op_mask_to_image(vkf_gpu *gpu, vkf_tensor *mask, vkf_tensor **out);
/* A new [B, H, W, 3] tensor filled with values[0..2] per channel, or a
 * [B, H, W] one with values[0]. */
int vkf_op_image_fill(vkf_gpu *gpu, int ndim, const int64_t *shape, const float *values,
                      vkf_tensor **out);
/* Separable correlation of [B, H, W(, C)] along W then H with the same
 * odd-length weights, torch 'reflect' (taps/2 < H, W) or replicate border. */
int vkf_op_separable_filter(vkf_gpu *gpu, vkf_tensor *x, const float *weights, int taps,
                            bool replicate, vkf_tensor **out);
/* ImageBlur / ImageSharpen on [B, H, W, C] (radius < H, W: reflect pad). */
int vkf_op_image_blur(vkf_gpu *gpu, vkf_tensor *image, int radius, double sigma,
                      vkf_tensor **out);
int vkf_op_image_sharpen(vkf_gpu *gpu, vkf_tensor *image, int radius, double sigma,
                         double alpha, vkf_tensor **out);
/* PIL's Lanczos (support 3) on float: W pass then H pass (a pass whose size
 * does not change is skipped, as PIL does), each clamped to [0, 1], of
 * [B, H, W(, C)] to (ho, wo). */
int vkf_op_lanczos(vkf_gpu *gpu, vkf_tensor *x, int64_t ho, int64_t wo, vkf_tensor **out);
/* PIL precompute_coeffs for one axis: with w == NULL returns the row
 * length ksize only; else fills w[out·ksize], xmin[out], count[out]. */
int vkf_lanczos_coeffs(int64_t in, int64_t out, double *w, int64_t *xmin, int64_t *count);
/* kornia canny up to the double threshold on [B, H, W, C >= 3] (H, W >= 3):
 * grayscale, 5×5 gaussian σ = 1 (reflect), Sobel (replicate), NMS → [B, H, W]
 * of 0, 0.5 (weak), 1 (strong). */
int vkf_op_canny_edges(vkf_gpu *gpu, vkf_tensor *image, float low, float high,
                       vkf_tensor **out);
/* Host hysteresis of those edges in place (stack: H·W scratch entries):
 * weak pixels 8-connected to strong ones become 1, the rest 0. */
void vkf_canny_hysteresis(float *edges, int64_t B, int64_t H, int64_t W, int64_t *stack);

#endif /* VKFLOW_GPU_H */
