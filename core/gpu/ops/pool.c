/* avg_pool2d / max_pool2d (shaders/pool.comp) and their references. */
#include <math.h>
#include <string.h>

#include "gpu/ops/op_util.h"
#include "gpu/ops/spatial_ref.h"

struct pool_push {
    uint32_t n;
    uint32_t h, w, ho, wo;
    uint32_t kh, kw;
    int32_t sh, sw, ph, pw;
    uint32_t off_x;
};
_Static_assert(sizeof(struct pool_push) <= 128, "push constants");

const vkf_shader_layout vkf_pool_layouts[] = {
    {&vkf_shader_pool, 2, 0, sizeof(struct pool_push)},
    {&vkf_shader_pool_tex, 2, 1, sizeof(struct pool_push)},
    {0},
};

typedef struct pool_dims {
    int kh, kw, sh, sw, ph, pw;
} pool_dims;

static pool_dims dims_of(const vkf_pool2d_params *p)
{
    return (pool_dims){
        .kh = p->kernel[0], .kw = p->kernel[1],
        .sh = p->stride[0] ? p->stride[0] : p->kernel[0],
        .sw = p->stride[1] ? p->stride[1] : p->kernel[1],
        .ph = p->padding[0], .pw = p->padding[1],
    };
}

static int pool(vkf_gpu *gpu, bool max, vkf_tensor *x,
                const vkf_pool2d_params *params, vkf_tensor **out)
{
    int err = 0;
    vkf_tensor *xc = NULL, *o = NULL;
    pool_dims d = dims_of(params);
    VKF_REQUIRE(gpu, x->ndim >= 3);
    VKF_REQUIRE(gpu, d.kh >= 1 && d.kw >= 1 && d.sh >= 1 && d.sw >= 1);
    VKF_REQUIRE(gpu, d.ph >= 0 && d.pw >= 0 && d.ph <= d.kh / 2 && d.pw <= d.kw / 2);
    int64_t h = x->shape[x->ndim - 2], w = x->shape[x->ndim - 1];
    int64_t ho = (h + 2 * d.ph - d.kh) / d.sh + 1;
    int64_t wo = (w + 2 * d.pw - d.kw) / d.sw + 1;
    VKF_REQUIRE(gpu, h + 2 * d.ph >= d.kh && w + 2 * d.pw >= d.kw);
    VKF_TRY(vkf_op_contiguous(gpu, x, &xc));
    int64_t shape[VKF_TENSOR_MAX_DIMS];
    for (int i = 0; i < x->ndim; i++)
        shape[i] = x->shape[i];
    shape[x->ndim - 2] = ho;
    shape[x->ndim - 1] = wo;
    VKF_TRY(vkf_tensor_create(gpu, VKF_DTYPE_F32, x->ndim, shape, &o));
    struct pool_push pc = {
        .n = (uint32_t)vkf_tensor_numel(o),
        .h = (uint32_t)h, .w = (uint32_t)w, .ho = (uint32_t)ho, .wo = (uint32_t)wo,
        .kh = (uint32_t)d.kh, .kw = (uint32_t)d.kw,
        .sh = d.sh, .sw = d.sw, .ph = d.ph, .pw = d.pw,
        .off_x = (uint32_t)xc->offset,
    };
    vkf_tensor *slots[2] = {o, xc};
    uint32_t extra[3] = {max, !max && params->exclude_pad, wo % 4 == 0};
    /* Texel-buffer input where it allows it (one chunk, not bf16). */
    bool tex = !strcmp(gpu->info.type, "cpu") && xc->st->nchunks == 1 &&
               xc->dtype != VKF_DTYPE_BF16;
    vkf_dispatch dp = {
        .op = max ? "max_pool2d" : "avg_pool2d",
        .writes = {o}, .nwrites = 1, .reads = {xc}, .nreads = 1, .push = &pc,
        .groups = {vkf_div_up(pc.n, 256), 1, 1},
    };
    if (tex)
        vkf_dispatch_add_texel(&dp, xc, false);
    VKF_TRY(vkf_op_pipeline_tex(gpu, tex ? &vkf_shader_pool_tex : &vkf_shader_pool,
                                slots, 2, extra, 3, dp.ntexels, sizeof(pc), &dp.pipe));
    VKF_TRY(vkf_gpu_dispatch(gpu, &dp));
    *out = o;
    o = NULL;
fail:
    vkf_tensor_unref(&o);
    vkf_tensor_unref(&xc);
    return err;
}

int vkf_op_avg_pool2d(vkf_gpu *gpu, vkf_tensor *x,
                      const vkf_pool2d_params *params, vkf_tensor **out)
{
    return pool(gpu, false, x, params, out);
}

int vkf_op_max_pool2d(vkf_gpu *gpu, vkf_tensor *x,
                      const vkf_pool2d_params *params, vkf_tensor **out)
{
    return pool(gpu, true, x, params, out);
}

void vkf_ref_pool2d(bool max, const float *x, int64_t planes, int64_t h,
                    int64_t w, const vkf_pool2d_params *p, float *out)
{
    pool_dims d = dims_of(p);
    int64_t ho = (h + 2 * d.ph - d.kh) / d.sh + 1;
    int64_t wo = (w + 2 * d.pw - d.kw) / d.sw + 1;
    for (int64_t pl = 0; pl < planes; pl++)
    for (int64_t oy = 0; oy < ho; oy++)
    for (int64_t ox = 0; ox < wo; ox++) {
        double acc = max ? -INFINITY : 0.0;
        int count = 0;
        for (int ky = 0; ky < d.kh; ky++)
        for (int kx = 0; kx < d.kw; kx++) {
            int64_t iy = oy * d.sh - d.ph + ky, ix = ox * d.sw - d.pw + kx;
            if (iy < 0 || iy >= h || ix < 0 || ix >= w)
                continue;
            double v = x[(pl * h + iy) * w + ix];
            acc = max ? (v > acc || isnan(v) ? v : acc) : acc + v;
            count++;
        }
        if (!max)
            acc /= p->exclude_pad ? count : d.kh * d.kw;
        out[(pl * ho + oy) * wo + ox] = (float)acc;
    }
}
