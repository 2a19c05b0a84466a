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

#endif /* VKFLOW_GPU_H */
