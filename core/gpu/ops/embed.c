/* Sinusoidal timestep embedding (shaders/timestep_embed.comp). */
#include <math.h>

#include "gpu/ops/op_util.h"
#include "gpu/ops/ref.h"

struct embed_push {
    uint32_t batch, dim, half_dim, off_t, st;
    float coef, t_scale;
};
_Static_assert(sizeof(struct embed_push) <= 128, "push constants");

const vkf_shader_layout vkf_embed_layouts[] = {
    {&vkf_shader_timestep_embed, 2, 0, sizeof(struct embed_push)},
    {0},
};

/* ln(P) / (half - shift), the exponent step, in double on the host. */
static double embed_coef(const vkf_timestep_embed_params *p)
{
    double period = p->max_period != 0.0 ? p->max_period : 10000.0;
    return log(period) / ((double)(p->dim / 2) - p->freq_shift);
}

int vkf_op_timestep_embedding(vkf_gpu *gpu, vkf_tensor *t,
                              const vkf_timestep_embed_params *params,
                              vkf_tensor **out)
{
    int err = 0;
    vkf_tensor *o = NULL;
    VKF_REQUIRE(gpu, params && params->dim >= 1);
    VKF_REQUIRE(gpu, t->ndim == 1 && t->shape[0] <= 65535);
    VKF_REQUIRE(gpu, params->dim / 2 == 0 || (double)(params->dim / 2) != params->freq_shift);
    int64_t B = t->shape[0];
    VKF_TRY(vkf_tensor_create(gpu, VKF_DTYPE_F32, 2, (int64_t[]){B, params->dim}, &o));
    struct embed_push pc = {
        .batch = (uint32_t)B, .dim = (uint32_t)params->dim,
        .half_dim = (uint32_t)(params->dim / 2),
        .off_t = (uint32_t)t->offset, .st = (uint32_t)t->strides[0],
        .coef = (float)embed_coef(params),
        .t_scale = params->t_scale != 0.0f ? params->t_scale : 1.0f,
    };
    vkf_tensor *slots[2] = {o, t};
    uint32_t extra[1] = {params->sin_first};
    vkf_pipeline *pipe;
    VKF_TRY(vkf_op_pipeline(gpu, &vkf_shader_timestep_embed, slots, 2, extra, 1,
                            sizeof(pc), &pipe));
    VKF_TRY(vkf_gpu_dispatch(gpu, &(vkf_dispatch){
        .op = "timestep_embed", .pipe = pipe, .writes = {o}, .nwrites = 1,
        .reads = {t}, .nreads = 1, .push = &pc,
        .groups = {vkf_div_up((uint64_t)B * (uint64_t)params->dim, 64), 1, 1}}));
    *out = o;
    o = NULL;
fail:
    vkf_tensor_unref(&o);
    return err;
}

void vkf_ref_timestep_embedding(const float *t, int64_t B,
                                const vkf_timestep_embed_params *params,
                                float *out)
{
    int64_t dim = params->dim, half = dim / 2;
    double coef = embed_coef(params);
    double scale = params->t_scale != 0.0f ? params->t_scale : 1.0;
    for (int64_t b = 0; b < B; b++) {
        float *o = out + b * dim;
        for (int64_t k = 0; k < half; k++) {
            double arg = t[b] * scale * exp(-(double)k * coef);
            o[k] = (float)(params->sin_first ? sin(arg) : cos(arg));
            o[half + k] = (float)(params->sin_first ? cos(arg) : sin(arg));
        }
        if (dim % 2)
            o[dim - 1] = 0.0f;
    }
}
