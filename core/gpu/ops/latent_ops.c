/*
 * Ops for ComfyUI's latent nodes: masked composite (shaders/composite.comp)
 * and the resampling modes upsample.comp lacks — 'area', 'bicubic' and
 * ComfyUI's 'bislerp' (shaders/resample_ext.comp).
 */
#include <string.h>

#include "gpu/ops/op_util.h"

struct composite_push {
    uint32_t n, C, H, W;
    uint32_t hs, ws, bs, bm;
    uint32_t top, left, rh, rw;
    uint32_t off_d, off_s, off_m;
};
_Static_assert(sizeof(struct composite_push) <= 128, "push constants");

struct resample_ext_push {
    uint32_t n;
    uint32_t C, h, w, ho, wo;
    float scale_h, scale_w;
    uint32_t off_x;
};
_Static_assert(sizeof(struct resample_ext_push) <= 128, "push constants");

const vkf_shader_layout vkf_latent_layouts[] = {
    {&vkf_shader_composite, 4, 0, sizeof(struct composite_push)},
    {&vkf_shader_resample_ext, 2, 0, sizeof(struct resample_ext_push)},
    {0},
};

int vkf_op_composite(vkf_gpu *gpu, vkf_tensor *dst, vkf_tensor *src, vkf_tensor *mask,
                     int64_t left, int64_t top, vkf_tensor **out)
{
    int err = 0;
    vkf_tensor *dc = NULL, *sc = NULL, *mc = NULL, *o = NULL;
    VKF_REQUIRE(gpu, dst->ndim == 4 && src->ndim == 4);
    VKF_REQUIRE(gpu, left >= 0 && top >= 0);
    const int64_t *ds = dst->shape, *ss = src->shape;
    VKF_REQUIRE(gpu, ds[1] == ss[1] && ss[0] >= 1);
    VKF_REQUIRE(gpu, vkf_tensor_numel(dst) <= UINT32_MAX && vkf_tensor_numel(src) <= UINT32_MAX);
    if (mask) {
        VKF_REQUIRE(gpu, mask->ndim == 3 && mask->shape[0] >= 1 &&
                             mask->shape[1] == ss[2] && mask->shape[2] == ss[3]);
        VKF_TRY(vkf_op_contiguous(gpu, mask, &mc));
    }
    VKF_TRY(vkf_op_contiguous(gpu, dst, &dc));
    VKF_TRY(vkf_op_contiguous(gpu, src, &sc));
    VKF_TRY(vkf_tensor_create(gpu, VKF_DTYPE_F32, 4, ds, &o));
    int64_t rh = top < ds[2] ? ss[2] < ds[2] - top ? ss[2] : ds[2] - top : 0;
    int64_t rw = left < ds[3] ? ss[3] < ds[3] - left ? ss[3] : ds[3] - left : 0;
    struct composite_push pc = {
        .n = (uint32_t)vkf_tensor_numel(o), .C = (uint32_t)ds[1],
        .H = (uint32_t)ds[2], .W = (uint32_t)ds[3],
        .hs = (uint32_t)ss[2], .ws = (uint32_t)ss[3], .bs = (uint32_t)ss[0],
        .bm = mc ? (uint32_t)mc->shape[0] : 1,
        .top = (uint32_t)(top < ds[2] ? top : ds[2]), .left = (uint32_t)(left < ds[3] ? left : ds[3]),
        .rh = (uint32_t)rh, .rw = (uint32_t)rw,
        .off_d = (uint32_t)dc->offset, .off_s = (uint32_t)sc->offset,
        .off_m = mc ? (uint32_t)mc->offset : 0,
    };
    vkf_tensor *slots[4] = {o, dc, sc, mc ? mc : sc};
    uint32_t extra[1] = {mc != NULL};
    vkf_dispatch d = {
        .op = "composite", .writes = {o}, .nwrites = 1,
        .reads = {dc, sc, slots[3]}, .nreads = 3, .push = &pc,
        .groups = {vkf_div_up(pc.n, 256), 1, 1},
    };
    VKF_TRY(vkf_op_pipeline(gpu, &vkf_shader_composite, slots, 4, extra, 1, sizeof(pc),
                            &d.pipe));
    VKF_TRY(vkf_gpu_dispatch(gpu, &d));
    *out = o;
    o = NULL;
fail:
    vkf_tensor_unref(&o);
    vkf_tensor_unref(&dc);
    vkf_tensor_unref(&sc);
    vkf_tensor_unref(&mc);
    return err;
}

/* One dispatch of resample_ext.comp. */
static int resample_pass(vkf_gpu *gpu, vkf_tensor *x, uint32_t mode, uint32_t axis,
                         int64_t ho, int64_t wo, vkf_tensor **out)
{
    int err = 0;
    vkf_tensor *xc = NULL, *o = NULL;
    int nd = x->ndim;
    int64_t h = x->shape[nd - 2], w = x->shape[nd - 1];
    VKF_TRY(vkf_op_contiguous(gpu, x, &xc));
    int64_t shape[VKF_TENSOR_MAX_DIMS];
    memcpy(shape, x->shape, sizeof(shape));
    shape[nd - 2] = ho;
    shape[nd - 1] = wo;
    VKF_TRY(vkf_tensor_create(gpu, VKF_DTYPE_F32, nd, shape, &o));
    int64_t n = vkf_tensor_numel(o);
    uint32_t C = mode == 2 ? (uint32_t)x->shape[1] : 1;
    struct resample_ext_push pc = {
        .n = (uint32_t)(n / C), .C = C,
        .h = (uint32_t)h, .w = (uint32_t)w, .ho = (uint32_t)ho, .wo = (uint32_t)wo,
        .scale_h = (float)h / (float)ho, .scale_w = (float)w / (float)wo,
        .off_x = (uint32_t)xc->offset,
    };
    vkf_tensor *slots[2] = {o, xc};
    uint32_t extra[2] = {mode, axis};
    static const char *const names[] = {"resample_area", "resample_bicubic", "resample_bislerp"};
    vkf_dispatch d = {
        .op = names[mode], .writes = {o}, .nwrites = 1, .reads = {xc}, .nreads = 1,
        .push = &pc, .groups = {vkf_div_up(pc.n, 64), 1, 1},
    };
    VKF_TRY(vkf_op_pipeline(gpu, &vkf_shader_resample_ext, slots, 2, extra, 2, sizeof(pc),
                            &d.pipe));
    VKF_TRY(vkf_gpu_dispatch(gpu, &d));
    *out = o;
    o = NULL;
fail:
    vkf_tensor_unref(&o);
    vkf_tensor_unref(&xc);
    return err;
}

int vkf_op_resample_ext(vkf_gpu *gpu, vkf_tensor *x, vkf_resample_ext mode, int64_t ho,
                        int64_t wo, vkf_tensor **out)
{
    int err = 0;
    vkf_tensor *mid = NULL;
    VKF_REQUIRE(gpu, mode >= VKF_RESAMPLE_AREA && mode <= VKF_RESAMPLE_BISLERP);
    VKF_REQUIRE(gpu, x->ndim >= 2 && ho >= 1 && wo >= 1);
    VKF_REQUIRE(gpu, mode != VKF_RESAMPLE_BISLERP || x->ndim == 4);
    int64_t n = vkf_tensor_numel(x), h = x->shape[x->ndim - 2], w = x->shape[x->ndim - 1];
    VKF_REQUIRE(gpu, n <= UINT32_MAX && n / (h * w) * ho * wo <= UINT32_MAX);
    if (mode != VKF_RESAMPLE_BISLERP)
        return resample_pass(gpu, x, (uint32_t)mode, 0, ho, wo, out);
    /* ComfyUI's bislerp: along w first, then along h. */
    VKF_TRY(resample_pass(gpu, x, 2, 0, h, wo, &mid));
    VKF_TRY(resample_pass(gpu, mid, 2, 1, ho, wo, out));
fail:
    vkf_tensor_unref(&mid);
    return err;
}
