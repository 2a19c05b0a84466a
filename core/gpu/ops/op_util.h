/* Helpers shared by the host side of ops (private to core/gpu). */
#ifndef VKF_GPU_OP_UTIL_H
#define VKF_GPU_OP_UTIL_H

#include "gpu/gpu_internal.h"
#include "shaders/shaders_embedded.h"

/* Pipeline for `shader` with the tensor spec constants of `slots` (writes
 * first, as bound) followed by `extra` op constants from id 9. */
static inline int vkf_op_pipeline_tex(vkf_gpu *gpu, const vkf_shader_code *shader,
                                      vkf_tensor *const *slots, int nslots,
                                      const uint32_t *extra, int nextra,
                                      int ntexels, uint32_t push_size,
                                      vkf_pipeline **out)
{
    uint32_t spec[VKF_MAX_SPEC];
    int n = vkf_gpu_tensor_spec(gpu, slots, nslots, spec);
    for (int i = 0; i < nextra; i++)
        spec[n++] = extra[i];
    return vkf_pipeline_get(gpu, shader, spec, n, nslots * VKF_MAX_CHUNKS,
                            ntexels, push_size, out);
}

static inline int vkf_op_pipeline(vkf_gpu *gpu, const vkf_shader_code *shader,
                                  vkf_tensor *const *slots, int nslots,
                                  const uint32_t *extra, int nextra,
                                  uint32_t push_size, vkf_pipeline **out)
{
    uint32_t spec[VKF_MAX_SPEC];
    int n = vkf_gpu_tensor_spec(gpu, slots, nslots, spec);
    for (int i = 0; i < nextra; i++)
        spec[n++] = extra[i];
    return vkf_pipeline_get(gpu, shader, spec, n, nslots * VKF_MAX_CHUNKS,
                            0, push_size, out);
}

/* Binds t as the dispatch's next uniform texel buffer, read as scalars or
 * vec4s in its storage dtype (f16 as 16-bit floats, bf16 as raw 16-bit
 * words the shader widens, f32 as 32-bit floats). */
static inline void vkf_dispatch_add_texel(vkf_dispatch *d, vkf_tensor *t, bool vec4)
{
    vkf_texel_format f = t->dtype == VKF_DTYPE_F16    ? VKF_TEXEL_R16F
                         : t->dtype == VKF_DTYPE_BF16 ? VKF_TEXEL_R16U
                                                      : VKF_TEXEL_R32F;
    /* Each RGBA format follows its single-channel one. */
    d->texels[d->ntexels] = t;
    d->texel_formats[d->ntexels++] = vec4 ? (vkf_texel_format)(f + 1) : f;
}

static inline uint32_t vkf_div_up(uint64_t a, uint64_t b)
{
    return (uint32_t)((a + b - 1) / b);
}

/* Right-align t's shape and strides into 5 dims (size 1, stride 0 in front). */
static inline void vkf_shape5(const vkf_tensor *t, int64_t shape[5],
                              int64_t strides[5])
{
    int pad = 5 - t->ndim;
    for (int d = 0; d < 5; d++) {
        shape[d] = d < pad ? 1 : t->shape[d - pad];
        strides[d] = d < pad ? 0 : t->strides[d - pad];
    }
}

/* Writes into a view of `dst` from `src` (same shape), op from unary.comp
 * (100 = copy, 101 = fill with a). */
int vkf_op_strided(vkf_gpu *gpu, uint32_t op, vkf_tensor *src, vkf_tensor *dst,
                   float a, float b);

/* What the host binds for a shader: checked against the SPIR-V by
 * tests/gpu/test_gpu_reflect.c.  Each op file exports a {NULL}-terminated
 * table; ops/layouts.c lists the tables. */
typedef struct vkf_shader_layout {
    const vkf_shader_code *shader;
    int slots;                     /* tensor slots: bindings 0 .. 4*slots-1 */
    int texels;                    /* then uniform texel buffers */
    uint32_t push_size;            /* sizeof the host push struct */
} vkf_shader_layout;

extern const vkf_shader_layout vkf_binary_layouts[], vkf_unary_layouts[],
    vkf_matmul_layouts[], vkf_softmax_layouts[], vkf_norm_layouts[];
extern const vkf_shader_layout vkf_conv_layouts[], vkf_pool_layouts[],
    vkf_resample_layouts[];
extern const vkf_shader_layout vkf_attention_layouts[], vkf_rope_layouts[],
    vkf_embed_layouts[], vkf_geglu_layouts[];
extern const vkf_shader_layout *const vkf_op_layouts[];

#define VKF_OP_COPY 100u
#define VKF_OP_FILL 101u

#endif
