/* Private to core/gpu: the structs behind vkf_gpu and vkf_tensor. */
#ifndef VKF_GPU_INTERNAL_H
#define VKF_GPU_INTERNAL_H

#include <vulkan/vulkan.h>

#include "vkflow/gpu.h"

/* Tensor slots in a shader: chunk bindings per slot (shaders/common/tensor.glsl). */
#define VKF_MAX_CHUNKS 4
#define VKF_MAX_SLOTS 4
#define VKF_MAX_SPEC 24
#define VKF_BATCH_DISPATCHES 512

/* Map a VkResult to a VKF_E* code, logging `what` once. */
int vkf_gpu_vk_error(vkf_gpu *gpu, VkResult r, const char *what);

#define VKF_VK(gpu, call, what)                                               \
    do {                                                                      \
        VkResult vr_ = (call);                                                \
        if (vr_ != VK_SUCCESS) {                                              \
            err = vkf_gpu_vk_error((gpu), vr_, (what));                       \
            goto fail;                                                        \
        }                                                                     \
    } while (0)

/* Check an API-boundary precondition: log the expression, EINVAL. */
#define VKF_REQUIRE(gpu, expr)                                                \
    do {                                                                      \
        if (!(expr)) {                                                        \
            vkf_logf((gpu)->log, VKF_LOG_ERROR, "%s: requirement failed: %s", \
                     __func__, #expr);                                        \
            err = VKF_EINVAL;                                                 \
            goto fail;                                                        \
        }                                                                     \
    } while (0)

/* ---- memory ---- */

typedef struct vkf_mem_block vkf_mem_block;

typedef enum vkf_mem_kind {
    VKF_MEM_DEVICE = 0,            /* tensors */
    VKF_MEM_STAGING = 1,           /* host-visible, coherent */
} vkf_mem_kind;

typedef struct vkf_buffer {
    VkBuffer buf;
    VkDeviceSize size;
    vkf_mem_block *block;
    VkDeviceSize offset;           /* in block */
    void *mapped;                  /* NULL unless host-visible */
    vkf_mem_kind kind;
    uint64_t read_epoch, write_epoch;  /* barrier tracking, see command.c */
    VkBufferView views[6];         /* uniform texel views, by vkf_texel_format */
} vkf_buffer;

/* Formats of uniform texel buffer views (see vkf_buffer_view). */
typedef enum vkf_texel_format {
    VKF_TEXEL_R32F = 0,
    VKF_TEXEL_RGBA32F = 1,
    VKF_TEXEL_R16F = 2,
    VKF_TEXEL_RGBA16F = 3,
    VKF_TEXEL_R16U = 4,            /* bf16 bits */
    VKF_TEXEL_RGBA16U = 5,
} vkf_texel_format;

/* Cached view of the whole buffer; owned by the buffer. */
int vkf_buffer_view(vkf_gpu *gpu, vkf_buffer *b, vkf_texel_format fmt,
                    VkBufferView *out);

int vkf_buffer_create(vkf_gpu *gpu, vkf_mem_kind kind, VkDeviceSize size,
                      vkf_buffer **out);
/* Deferred until the current batch finished if it may be in use. */
void vkf_buffer_destroy(vkf_gpu *gpu, vkf_buffer **b);
void vkf_mem_release_all(vkf_gpu *gpu);
/* Frees at once; for buffers no recorded or running work uses. */
void vkf_buffer_release_now(vkf_gpu *gpu, vkf_buffer *b);

/* ---- pipelines ---- */

typedef struct vkf_shader_code {
    const char *name;
    const uint32_t *code;
    size_t words;
} vkf_shader_code;

typedef struct vkf_pipeline {
    const vkf_shader_code *shader;
    uint32_t spec[VKF_MAX_SPEC];
    int nspec;
    int nbindings;                 /* storage buffers, bindings 0.. */
    int ntexels;                   /* then uniform texel buffers */
    uint32_t push_size;
    VkDescriptorSetLayout dsl;
    VkPipelineLayout layout;
    VkPipeline pipe;
} vkf_pipeline;

/* Cached by (shader, spec constants); owned by gpu. */
int vkf_pipeline_get(vkf_gpu *gpu, const vkf_shader_code *shader,
                     const uint32_t *spec, int nspec, int nbindings,
                     int ntexels, uint32_t push_size, vkf_pipeline **out);
void vkf_pipelines_destroy(vkf_gpu *gpu);
int vkf_pipeline_cache_open(vkf_gpu *gpu);
void vkf_pipeline_cache_close(vkf_gpu *gpu);

/* ---- tensors ---- */

typedef struct vkf_storage {
    int refs;
    vkf_gpu *gpu;
    vkf_dtype dtype;
    uint64_t numel;
    int nchunks;
    vkf_buffer *chunks[VKF_MAX_CHUNKS];
    uint32_t conv_pack;            /* vkf_op_conv2d_prepack block, 0: plain */
} vkf_storage;

struct vkf_tensor {
    int refs;
    vkf_storage *st;
    vkf_dtype dtype;
    int ndim;
    int64_t shape[VKF_TENSOR_MAX_DIMS];
    int64_t strides[VKF_TENSOR_MAX_DIMS];
    int64_t offset;                /* elements into storage */
};

/* ---- command recording ---- */

typedef struct vkf_dispatch {
    const char *op;                /* static name for profiling */
    vkf_pipeline *pipe;
    vkf_tensor *reads[VKF_MAX_SLOTS];  /* slot i = bindings i*CHUNKS.. */
    int nreads;
    vkf_tensor *writes[VKF_MAX_SLOTS];
    int nwrites;
    /* Read-only operands bound as uniform texel buffers after the storage
     * bindings (single-chunk tensors only): lavapipe gathers texel fetches
     * with SIMD instead of looping over lanes as it does for SSBO loads. */
    vkf_tensor *texels[2];
    vkf_texel_format texel_formats[2];
    int ntexels;
    const void *push;
    uint32_t groups[3];
} vkf_dispatch;

/* Bindings: the write tensors come first, then the read tensors. */
int vkf_gpu_dispatch(vkf_gpu *gpu, const vkf_dispatch *d);
/* Common specialization constants of a dispatch's tensors: per slot
 * (dtype, nchunks), then chunk_shift; returns number written. */
int vkf_gpu_tensor_spec(vkf_gpu *gpu, vkf_tensor *const *slots, int n,
                        uint32_t *spec);
int vkf_gpu_cmd_begin(vkf_gpu *gpu);
int vkf_gpu_one_shot_copy(vkf_gpu *gpu, VkBuffer src, VkDeviceSize src_off,
                          VkBuffer dst, VkDeviceSize dst_off,
                          VkDeviceSize size);

/* ---- command batches ---- */

/* One command buffer with its descriptors and timestamps.  Ops record into
 * the current batch; a full batch is submitted without waiting and
 * recording continues in the other (double buffering); flush submits and
 * waits for both. */
typedef struct vkf_batch {
    VkCommandBuffer cmd;
    VkFence fence;
    VkDescriptorPool desc_pool;
    VkQueryPool query_pool;
    bool pending;                  /* submitted, not yet waited for */
    int ndispatch;
    const char *ops[VKF_BATCH_DISPATCHES];
    vkf_buffer **deferred;         /* released when this batch completes */
    int ndeferred, deferred_cap;
} vkf_batch;

/* Recorded or running work may still use buffers. */
bool vkf_gpu_busy(const vkf_gpu *gpu);
/* Hands b to the current batch, to be released once it completed. */
int vkf_gpu_defer_release(vkf_gpu *gpu, vkf_buffer *b);
/* Waits for everything, releases all deferred buffers, destroys batches. */
void vkf_gpu_batches_destroy(vkf_gpu *gpu);

/* ---- device ---- */

typedef struct vkf_prof_entry {
    const char *op;
    double ms;
    long dispatches;
} vkf_prof_entry;

struct vkf_gpu {
    vkf_gpu_params params;
    char *pipeline_cache_path;
    char *spirv_cache_dir;
    const vkf_log *log;
    vkf_gpu_device_info info;

    VkInstance instance;
    VkDebugUtilsMessengerEXT messenger;
    VkPhysicalDevice phys;
    VkDevice dev;
    VkQueue queue;
    uint32_t queue_family;
    long validation_messages;
    bool lost;

    /* memory */
    VkPhysicalDeviceMemoryProperties memprops;
    uint32_t device_type_index, staging_type_index;
    vkf_mem_block *blocks;         /* list */
    uint64_t mem_current, mem_peak, mem_reserved, mem_allocations;
    vkf_buffer *staging;
    uint64_t chunk_bytes;          /* power of two, one chunk at 4 B/elem */
    int chunk_shift;               /* log2(elements per chunk) */
    uint64_t alignment;

    /* pipelines */
    VkPipelineCache pcache;
    vkf_pipeline **pipes;
    int npipes, pipes_cap;
    struct vkf_spirv_entry *spirv;
    int nspirv, spirv_cap;

    /* command batch */
    VkCommandPool cmd_pool;
    vkf_batch batches[2];          /* recording one while the other runs */
    int cur;                       /* the one being recorded */
    bool recording;
    uint64_t epoch;                /* bumped at each barrier and submit */
    vkf_gpu_batch_stats stats;
    vkf_prof_entry *prof;
    int nprof, prof_cap;
};

#endif
