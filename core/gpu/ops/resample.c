/*
 * interpolate: nearest, nearest-exact, bilinear (shaders/upsample.comp)
 * with PyTorch's size, scale and source-index rules, and the reference.
 */
#include <math.h>
#include <string.h>

#include "gpu/ops/op_util.h"
#include "gpu/ops/spatial_ref.h"

struct upsample_push {
    uint32_t n;
    uint32_t h, w, ho, wo;
    float scale_h, scale_w;
    uint32_t off_x;
};
_Static_assert(sizeof(struct upsample_push) <= 128, "push constants");

const vkf_shader_layout vkf_resample_layouts[] = {
    {&vkf_shader_upsample, 2, 0, sizeof(struct upsample_push)},
    {&vkf_shader_upsample_tex, 2, 1, sizeof(struct upsample_push)},
    {0},
};

int64_t vkf_upsample_out_size(int64_t in, int64_t size, double scale)
{
    return size > 0 ? size : (int64_t)floor((double)in * scale);
}

/* Source step per output step, in f32 as torch computes it
 * (area_pixel_compute_scale / compute_scales_value). */
static float step_of(const vkf_upsample_params *p, int axis, int64_t in,
                     int64_t out)
{
    if (p->mode == VKF_UPSAMPLE_BILINEAR && p->align_corners)
        return out > 1 ? (float)(in - 1) / (float)(out - 1) : 0.0f;
    if (p->size[axis] <= 0 && p->scale[axis] > 0)
        return (float)(1.0 / p->scale[axis]);
    return (float)in / (float)out;
}

int vkf_op_upsample(vkf_gpu *gpu, vkf_tensor *x,
                    const vkf_upsample_params *params, vkf_tensor **out)
{
    int err = 0;
    vkf_tensor *xc = NULL, *o = NULL;
    const vkf_upsample_params *p = params;
    VKF_REQUIRE(gpu, x->ndim >= 2);
    VKF_REQUIRE(gpu, p->mode >= VKF_UPSAMPLE_NEAREST && p->mode <= VKF_UPSAMPLE_BILINEAR);
    VKF_REQUIRE(gpu, (p->size[0] > 0 || p->scale[0] > 0) &&
                     (p->size[1] > 0 || p->scale[1] > 0));
    int64_t h = x->shape[x->ndim - 2], w = x->shape[x->ndim - 1];
    int64_t ho = vkf_upsample_out_size(h, p->size[0], p->scale[0]);
    int64_t wo = vkf_upsample_out_size(w, p->size[1], p->scale[1]);
    VKF_REQUIRE(gpu, ho >= 1 && wo >= 1);
    VKF_TRY(vkf_op_contiguous(gpu, x, &xc));
    int64_t shape[VKF_TENSOR_MAX_DIMS];
    for (int i = 0; i < x->ndim; i++)
        shape[i] = x->shape[i];
    shape[x->ndim - 2] = ho;
    shape[x->ndim - 1] = wo;
    VKF_TRY(vkf_tensor_create(gpu, VKF_DTYPE_F32, x->ndim, shape, &o));
    struct upsample_push pc = {
        .n = (uint32_t)vkf_tensor_numel(o),
        .h = (uint32_t)h, .w = (uint32_t)w, .ho = (uint32_t)ho, .wo = (uint32_t)wo,
        .scale_h = step_of(p, 0, h, ho), .scale_w = step_of(p, 1, w, wo),
        .off_x = (uint32_t)xc->offset,
    };
    vkf_tensor *slots[2] = {o, xc};
    uint32_t extra[3] = {(uint32_t)p->mode,
                         p->mode == VKF_UPSAMPLE_BILINEAR && p->align_corners,
                         wo % 4 == 0};
    /* Texel-buffer input where it allows it (one chunk, not bf16). */
    bool tex = !strcmp(gpu->info.type, "cpu") && xc->st->nchunks == 1 &&
               xc->dtype != VKF_DTYPE_BF16;
    vkf_dispatch d = {
        .op = p->mode == VKF_UPSAMPLE_BILINEAR ? "upsample_bilinear" : "upsample_nearest",
        .writes = {o}, .nwrites = 1, .reads = {xc}, .nreads = 1,
        .push = &pc, .groups = {vkf_div_up(pc.n, 256), 1, 1},
    };
    if (tex)
        vkf_dispatch_add_texel(&d, xc, false);
    VKF_TRY(vkf_op_pipeline_tex(gpu, tex ? &vkf_shader_upsample_tex : &vkf_shader_upsample,
                                slots, 2, extra, 3, d.ntexels, sizeof(pc), &d.pipe));
    VKF_TRY(vkf_gpu_dispatch(gpu, &d));
    *out = o;
    o = NULL;
fail:
    vkf_tensor_unref(&o);
    vkf_tensor_unref(&xc);
    return err;
}

static int64_t ref_nearest(const vkf_upsample_params *p, int64_t dst, int64_t in,
                           int64_t out, float step)
{
    float s;
    if (p->mode == VKF_UPSAMPLE_NEAREST) {
        if (out == in)
            return dst;
        if (out == 2 * in)
            return dst >> 1;
        s = (float)dst * step;
    } else {
        s = ((float)dst + 0.5f) * step;
    }
    int64_t i = (int64_t)floorf(s);
    return i < in - 1 ? i : in - 1;
}

static void ref_linear(const vkf_upsample_params *p, int64_t dst, int64_t in,
                       float step, int64_t *i0, int64_t *i1, float *l1)
{
    float src = p->align_corners ? step * (float)dst : step * ((float)dst + 0.5f) - 0.5f;
    if (src < 0)
        src = 0;
    int64_t i = (int64_t)floorf(src);
    *i0 = i < in - 1 ? i : in - 1;
    *i1 = *i0 < in - 1 ? *i0 + 1 : *i0;
    float l = src - (float)*i0;
    *l1 = l < 0 ? 0 : l > 1 ? 1 : l;
}

void vkf_ref_upsample(const float *x, int64_t planes, int64_t h, int64_t w,
                      const vkf_upsample_params *p, float *out)
{
    int64_t ho = vkf_upsample_out_size(h, p->size[0], p->scale[0]);
    int64_t wo = vkf_upsample_out_size(w, p->size[1], p->scale[1]);
    float sh = step_of(p, 0, h, ho), sw = step_of(p, 1, w, wo);
    for (int64_t pl = 0; pl < planes; pl++) {
        const float *xp = x + pl * h * w;
        for (int64_t oy = 0; oy < ho; oy++)
        for (int64_t ox = 0; ox < wo; ox++) {
            double v;
            if (p->mode == VKF_UPSAMPLE_BILINEAR) {
                int64_t y0, y1, x0, x1;
                float ly, lx;
                ref_linear(p, oy, h, sh, &y0, &y1, &ly);
                ref_linear(p, ox, w, sw, &x0, &x1, &lx);
                double a = (1.0 - lx) * xp[y0 * w + x0] + (double)lx * xp[y0 * w + x1];
                double b = (1.0 - lx) * xp[y1 * w + x0] + (double)lx * xp[y1 * w + x1];
                v = (1.0 - ly) * a + ly * b;
            } else {
                v = xp[ref_nearest(p, oy, h, ho, sh) * w + ref_nearest(p, ox, w, wo, sw)];
            }
            out[(pl * ho + oy) * wo + ox] = (float)v;
        }
    }
}
