/*
 * conv2d / conv3d (shaders/conv.comp): implicit GEMM, register blocked,
 * one dispatch.  Causal 3-D padding and Wan's frame cache are handled here
 * by prepending cache frames and shifting the time padding.
 */
#include <string.h>

#include "gpu/ops/op_util.h"
#include "gpu/ops/spatial_ref.h"

struct conv_push {
    uint32_t cin_g, cout, cout_g;
    uint32_t t, h, w;
    uint32_t to, ho, wo, npix;
    int32_t st, sh, sw;
    int32_t dt, dh, dw;
    int32_t pt, ph, pw;
    uint32_t off_x, off_w, off_b;
    uint32_t x_batch;
    uint32_t co_tiles;
};
_Static_assert(sizeof(struct conv_push) <= 128, "push constants");

const vkf_shader_layout vkf_conv_layouts[] = {
    {&vkf_shader_conv_1x16, 4, 0, sizeof(struct conv_push)},
    {&vkf_shader_conv_2x16, 4, 0, sizeof(struct conv_push)},
    {&vkf_shader_conv_4x16, 4, 0, sizeof(struct conv_push)},
    {&vkf_shader_conv_8x16, 4, 0, sizeof(struct conv_push)},
    {&vkf_shader_conv_tex_1x16, 4, 2, sizeof(struct conv_push)},
    {&vkf_shader_conv_tex_2x16, 4, 2, sizeof(struct conv_push)},
    {&vkf_shader_conv_tex_4x16, 4, 2, sizeof(struct conv_push)},
    {&vkf_shader_conv_tex_8x16, 4, 2, sizeof(struct conv_push)},
    {&vkf_shader_conv_texw_1x16, 4, 1, sizeof(struct conv_push)},
    {&vkf_shader_conv_texw_2x16, 4, 1, sizeof(struct conv_push)},
    {&vkf_shader_conv_texw_4x16, 4, 1, sizeof(struct conv_push)},
    {&vkf_shader_conv_texw_8x16, 4, 1, sizeof(struct conv_push)},
    {0},
};

/* texels: 0 SSBO loads, 1 w through a texel buffer, 2 x and w. */
static const struct {
    uint32_t tm, tn;
    int texels;
    const vkf_shader_code *shader;
} kernels[] = {
    {1, 16, 0, &vkf_shader_conv_1x16},
    {2, 16, 0, &vkf_shader_conv_2x16},
    {4, 16, 0, &vkf_shader_conv_4x16},
    {8, 16, 0, &vkf_shader_conv_8x16},
    {1, 16, 1, &vkf_shader_conv_texw_1x16},
    {2, 16, 1, &vkf_shader_conv_texw_2x16},
    {4, 16, 1, &vkf_shader_conv_texw_4x16},
    {8, 16, 1, &vkf_shader_conv_texw_8x16},
    {1, 16, 2, &vkf_shader_conv_tex_1x16},
    {2, 16, 2, &vkf_shader_conv_tex_2x16},
    {4, 16, 2, &vkf_shader_conv_tex_4x16},
    {8, 16, 2, &vkf_shader_conv_tex_8x16},
};

void vkf_conv_out_dims(const vkf_conv_geom *g, int64_t *to, int64_t *ho,
                       int64_t *wo)
{
    *to = (g->t + g->pt0 + g->pt1 - (int64_t)g->dt * (g->kt - 1) - 1) / g->st + 1;
    *ho = (g->h + 2 * g->ph - (int64_t)g->dh * (g->kh - 1) - 1) / g->sh + 1;
    *wo = (g->w + 2 * g->pw - (int64_t)g->dw * (g->kw - 1) - 1) / g->sw + 1;
}

void vkf_conv_default_tile(const vkf_gpu *gpu, const vkf_conv_geom *g,
                           vkf_conv_tile *tile)
{
    /* On lavapipe every load costs far more than an FMA, so the tile is as
     * large as the output channels allow (TM + TN loads feed TM * TN FMAs
     * per step; 8×16 measured best at the SD1.5 shapes, see
     * docs/vulkan.md).  Grouped convs load inputs per lane: one channel
     * per lane keeps those loads to TN per step. */
    *tile = (vkf_conv_tile){.tm = 4, .tn = 16, .wg = 64};
    if (!strcmp(gpu->info.type, "cpu")) {
        tile->wg = gpu->info.subgroup_size ? gpu->info.subgroup_size : 8;
        tile->tex = true;
        tile->tm = 8;
        while (tile->tm > 1 && (int64_t)tile->tm * tile->wg > g->cout)
            tile->tm /= 2;
    }
    if (g->groups > 1)
        tile->tm = 1;
}

/* Packed conv weights: [Cout/B][KVOL][Cin_g][B] (B = WG*TM output channels
 * of one workgroup), i.e. w[co, ci, tap] at ((co / B * KVOL + tap) * Cin_g
 * + ci) * B + co % B.  The broadcast kernel reads a lane's TM weights of a
 * step as TM/4 vec4 texels and a workgroup streams one contiguous block
 * (~+15 % at the SD1.5 3×3 shapes on lavapipe).  pack: plain → packed,
 * else back.  Same dtype and logical shape as w. */
static int conv_repack(vkf_gpu *gpu, vkf_tensor *w, uint32_t blk, bool pack,
                       vkf_tensor **out)
{
    int err = 0;
    vkf_tensor *w4 = NULL, *wp = NULL, *wc = NULL, *o = NULL;
    int64_t co = w->shape[0], ci = w->shape[1], kvol = vkf_tensor_numel(w) / (co * ci);
    int64_t s4[4] = {co / blk, blk, ci, kvol}, p4[4] = {co / blk, kvol, ci, blk};
    VKF_TRY(vkf_tensor_reshape(w, 4, pack ? s4 : p4, &w4));
    VKF_TRY(vkf_tensor_permute(w4, (int[]){0, 3, 2, 1}, &wp));
    VKF_TRY(vkf_op_contiguous(gpu, wp, &wc));
    VKF_TRY(vkf_tensor_reshape(wc, w->ndim, w->shape, &o));
    VKF_REQUIRE(gpu, o->st != w->st && o->offset == 0);
    o->st->conv_pack = pack ? blk : 0;
    *out = o;
    o = NULL;
fail:
    vkf_tensor_unref(&o);
    vkf_tensor_unref(&wc);
    vkf_tensor_unref(&wp);
    vkf_tensor_unref(&w4);
    return err;
}

int vkf_op_conv2d_prepack(vkf_gpu *gpu, vkf_tensor *weight, vkf_tensor **out)
{
    int err = 0;
    VKF_REQUIRE(gpu, weight->ndim == 4);
    vkf_conv_geom g = {
        .n = 1, .cin = weight->shape[1], .cout = weight->shape[0], .groups = 1,
        .t = 1, .h = 1, .w = 1, .kt = 1, .kh = (int)weight->shape[2],
        .kw = (int)weight->shape[3],
    };
    vkf_conv_tile tile;
    vkf_conv_default_tile(gpu, &g, &tile);
    uint32_t blk = tile.wg * tile.tm;
    /* What the broadcast path of vkf_op_conv_tiled takes; 1×1 kernels read
     * plain rows as fast (their taps are consecutive input channels). */
    bool pack = tile.tex && tile.wg == 8 && gpu->info.subgroup_size == 8 &&
                tile.tn % 8 == 0 && tile.tm % 4 == 0 && g.kh * g.kw > 1 &&
                g.cout % blk == 0 && !weight->st->conv_pack &&
                (weight->dtype == VKF_DTYPE_F32 || weight->dtype == VKF_DTYPE_F16) &&
                vkf_tensor_numel(weight) <= (int64_t)1 << gpu->chunk_shift;
    if (!pack) {
        *out = vkf_tensor_ref(weight);
        return 0;
    }
    err = conv_repack(gpu, weight, blk, true, out);
fail:
    return err;
}

int vkf_op_conv_tiled(vkf_gpu *gpu, vkf_tensor *x, vkf_tensor *w,
                      vkf_tensor *bias, const vkf_conv_geom *g,
                      const vkf_conv_tile *tile, vkf_tensor **out)
{
    int err = 0;
    vkf_tensor *xc = NULL, *wc = NULL, *bc = NULL, *o = NULL;
    int64_t to, ho, wo;
    vkf_conv_out_dims(g, &to, &ho, &wo);
    VKF_REQUIRE(gpu, to >= 1 && ho >= 1 && wo >= 1);
    VKF_REQUIRE(gpu, tile->wg >= 1 && tile->wg <= 1024);
    uint32_t co_tiles = vkf_div_up((uint64_t)g->cout, (uint64_t)tile->wg * tile->tm);
    VKF_REQUIRE(gpu, (uint64_t)g->n * co_tiles <= 65535);

    VKF_TRY(vkf_op_contiguous(gpu, x, &xc));
    /* A packed weight is only whole (a view's copy would lose the mark). */
    VKF_REQUIRE(gpu, !w->st->conv_pack ||
                     (w->offset == 0 && vkf_tensor_is_contiguous(w) &&
                      (uint64_t)vkf_tensor_numel(w) == w->st->numel));
    VKF_TRY(vkf_op_contiguous(gpu, w, &wc));
    if (bias)
        VKF_TRY(vkf_op_contiguous(gpu, bias, &bc));
    int64_t oshape[5] = {g->n, g->cout, to, ho, wo};
    if (x->ndim == 4)
        VKF_TRY(vkf_tensor_create(gpu, VKF_DTYPE_F32, 4,
                                  (int64_t[]){g->n, g->cout, ho, wo}, &o));
    else
        VKF_TRY(vkf_tensor_create(gpu, VKF_DTYPE_F32, 5, oshape, &o));

    struct conv_push pc = {
        .cin_g = (uint32_t)(g->cin / g->groups),
        .cout = (uint32_t)g->cout,
        .cout_g = (uint32_t)(g->cout / g->groups),
        .t = (uint32_t)g->t, .h = (uint32_t)g->h, .w = (uint32_t)g->w,
        .to = (uint32_t)to, .ho = (uint32_t)ho, .wo = (uint32_t)wo,
        .npix = (uint32_t)(to * ho * wo),
        .st = g->st, .sh = g->sh, .sw = g->sw,
        .dt = g->dt, .dh = g->dh, .dw = g->dw,
        .pt = g->pt0, .ph = g->ph, .pw = g->pw,
        .off_x = (uint32_t)xc->offset,
        .off_w = (uint32_t)wc->offset,
        .off_b = bc ? (uint32_t)bc->offset : 0,
        .x_batch = (uint32_t)(g->cin * g->t * g->h * g->w),
        .co_tiles = co_tiles,
    };
    bool pointwise = g->kt == 1 && g->kh == 1 && g->kw == 1 && g->st == 1 &&
                     g->sh == 1 && g->sw == 1 && g->pt0 == 0 && g->pt1 == 0 &&
                     g->ph == 0 && g->pw == 0 && g->groups == 1;
    bool bcast = tile->wg == 8 && gpu->info.subgroup_size == 8 &&
                 tile->tn % 8 == 0 && tile->tn <= 32 && g->groups == 1 &&
                 !tile->no_bcast;
    /* The broadcast path already loads a pixel tile with TN/8 gathers. */
    bool vec = pointwise && !bcast && tile->tn % 4 == 0 && pc.npix % 4 == 0 &&
               pc.off_x % 4 == 0;
    /* Texel views need one chunk and a float format; a multi-chunk x (a
     * large activation) still gets w, whose loads are the per-lane ones.
     * bf16 weights have no texel format: widening them to f32 first costs
     * one pass over w and makes the conv ~1.5× faster on lavapipe. */
    if (tile->tex && wc->dtype == VKF_DTYPE_BF16 &&
        vkf_tensor_numel(wc) <= (int64_t)1 << gpu->chunk_shift) {
        vkf_tensor *wf = NULL;
        VKF_TRY(vkf_op_cast(gpu, wc, VKF_DTYPE_F32, &wf));
        vkf_tensor_unref(&wc);
        wc = wf;
        pc.off_w = 0;
    }
    bool wpack = false;
    /* Packed weights (vkf_op_conv2d_prepack): used as they are by the
     * broadcast path with a matching block, otherwise unpacked first. */
    if (wc->st->conv_pack) {
        bool use = bcast && tile->tex && !tile->no_wpack && tile->tm % 4 == 0 &&
                   tile->wg * tile->tm == wc->st->conv_pack && wc->st->nchunks == 1;
        if (use) {
            wpack = true;
        } else {
            vkf_tensor *plain = NULL;
            VKF_TRY(conv_repack(gpu, wc, wc->st->conv_pack, false, &plain));
            vkf_tensor_unref(&wc);
            wc = plain;
            pc.off_w = (uint32_t)wc->offset;
        }
    }
    bool w_tex = tile->tex && wc->st->nchunks == 1 && wc->dtype != VKF_DTYPE_BF16;
    bool x_tex = w_tex && xc->st->nchunks == 1 && xc->dtype != VKF_DTYPE_BF16;
    int texels = x_tex ? 2 : w_tex ? 1 : 0;
    const vkf_shader_code *shader = NULL;
    for (size_t i = 0; i < VKF_ARRAY_SIZE(kernels); i++)
        if (kernels[i].tm == tile->tm && kernels[i].tn == tile->tn &&
            kernels[i].texels == texels)
            shader = kernels[i].shader;
    if (!shader) {
        vkf_logf(gpu->log, VKF_LOG_ERROR, "conv: no %ux%u kernel with %d texel "
                 "operands compiled in", tile->tm, tile->tn, texels);
        err = VKF_EUNSUPPORTED;
        goto fail;
    }
    vkf_tensor *slots[4] = {o, xc, wc, bc ? bc : xc};
    uint32_t extra[9] = {(uint32_t)g->kt, (uint32_t)g->kh, (uint32_t)g->kw,
                         tile->wg, bc != NULL, g->groups > 1, vec, bcast, wpack};
    uint32_t tiles = vkf_div_up(pc.npix, tile->tn);
    uint32_t gx = tiles < 65535 ? tiles : 65535;
    vkf_dispatch d = {
        .op = g->t == 1 && g->kt == 1 ? "conv2d" : "conv3d",
        .writes = {o}, .nwrites = 1, .reads = {xc, wc, slots[3]}, .nreads = 3,
        .push = &pc,
        .groups = {gx, vkf_div_up(tiles, gx), (uint32_t)g->n * co_tiles},
    };
    if (x_tex)
        vkf_dispatch_add_texel(&d, xc, vec);
    if (w_tex)
        vkf_dispatch_add_texel(&d, wc, wpack);
    VKF_TRY(vkf_op_pipeline_tex(gpu, shader, slots, 4, extra, 9, d.ntexels,
                                sizeof(pc), &d.pipe));
    VKF_TRY(vkf_gpu_dispatch(gpu, &d));
    *out = o;
    o = NULL;
fail:
    vkf_tensor_unref(&o);
    vkf_tensor_unref(&xc);
    vkf_tensor_unref(&wc);
    vkf_tensor_unref(&bc);
    return err;
}

static int conv(vkf_gpu *gpu, vkf_tensor *x, vkf_tensor *w, vkf_tensor *bias,
                const vkf_conv_geom *g, vkf_tensor **out)
{
    vkf_conv_tile tile;
    vkf_conv_default_tile(gpu, g, &tile);
    return vkf_op_conv_tiled(gpu, x, w, bias, g, &tile, out);
}

static int or1(int v)
{
    return v ? v : 1;
}

int vkf_op_conv2d(vkf_gpu *gpu, vkf_tensor *x, vkf_tensor *weight,
                  vkf_tensor *bias, const vkf_conv2d_params *params,
                  vkf_tensor **out)
{
    int err = 0;
    VKF_REQUIRE(gpu, x->ndim == 4 && weight->ndim == 4);
    const vkf_conv2d_params *p = params;
    vkf_conv_geom g = {
        .n = x->shape[0], .cin = x->shape[1], .cout = weight->shape[0],
        .groups = or1(p->groups), .t = 1, .h = x->shape[2], .w = x->shape[3],
        .kt = 1, .kh = (int)weight->shape[2], .kw = (int)weight->shape[3],
        .st = 1, .sh = or1(p->stride[0]), .sw = or1(p->stride[1]),
        .dt = 1, .dh = or1(p->dilation[0]), .dw = or1(p->dilation[1]),
        .ph = p->padding[0], .pw = p->padding[1],
    };
    VKF_REQUIRE(gpu, g.groups >= 1 && g.sh >= 1 && g.sw >= 1 && g.dh >= 1 && g.dw >= 1);
    VKF_REQUIRE(gpu, g.ph >= 0 && g.pw >= 0);
    VKF_REQUIRE(gpu, g.cin % g.groups == 0 && g.cout % g.groups == 0);
    VKF_REQUIRE(gpu, weight->shape[1] * g.groups == g.cin);
    VKF_REQUIRE(gpu, !bias || vkf_tensor_numel(bias) == g.cout);
    err = conv(gpu, x, weight, bias, &g, out);
fail:
    return err;
}

int vkf_op_conv3d(vkf_gpu *gpu, vkf_tensor *x, vkf_tensor *weight,
                  vkf_tensor *bias, vkf_tensor *cache,
                  const vkf_conv3d_params *params, vkf_tensor **out)
{
    int err = 0;
    vkf_tensor *tail = NULL, *xin = NULL;
    VKF_REQUIRE(gpu, x->ndim == 5 && weight->ndim == 5);
    const vkf_conv3d_params *p = params;
    vkf_conv_geom g = {
        .n = x->shape[0], .cin = x->shape[1], .cout = weight->shape[0],
        .groups = or1(p->groups),
        .t = x->shape[2], .h = x->shape[3], .w = x->shape[4],
        .kt = (int)weight->shape[2], .kh = (int)weight->shape[3],
        .kw = (int)weight->shape[4],
        .st = or1(p->stride[0]), .sh = or1(p->stride[1]), .sw = or1(p->stride[2]),
        .dt = or1(p->dilation[0]), .dh = or1(p->dilation[1]),
        .dw = or1(p->dilation[2]),
        .pt0 = p->causal ? 2 * p->padding[0] : p->padding[0],
        .pt1 = p->causal ? 0 : p->padding[0],
        .ph = p->padding[1], .pw = p->padding[2],
    };
    VKF_REQUIRE(gpu, g.groups >= 1 && g.st >= 1 && g.sh >= 1 && g.sw >= 1);
    VKF_REQUIRE(gpu, g.dt >= 1 && g.dh >= 1 && g.dw >= 1);
    VKF_REQUIRE(gpu, p->padding[0] >= 0 && g.ph >= 0 && g.pw >= 0);
    VKF_REQUIRE(gpu, g.cin % g.groups == 0 && g.cout % g.groups == 0);
    VKF_REQUIRE(gpu, weight->shape[1] * g.groups == g.cin);
    VKF_REQUIRE(gpu, !bias || vkf_tensor_numel(bias) == g.cout);
    if (cache && p->causal && g.pt0 > 0) {
        VKF_REQUIRE(gpu, cache->ndim == 5 && cache->shape[0] == g.n &&
                         cache->shape[1] == g.cin && cache->shape[3] == g.h &&
                         cache->shape[4] == g.w);
        int64_t tc = cache->shape[2], used = tc < g.pt0 ? tc : g.pt0;
        VKF_TRY(vkf_tensor_slice(cache, 2, tc - used, used, &tail));
        VKF_TRY(vkf_op_concat(gpu, (vkf_tensor *[]){tail, x}, 2, 2, &xin));
        g.t += used;
        g.pt0 -= (int)used;
    } else {
        xin = vkf_tensor_ref(x);
    }
    err = conv(gpu, xin, weight, bias, &g, out);
fail:
    vkf_tensor_unref(&tail);
    vkf_tensor_unref(&xin);
    return err;
}

void vkf_ref_conv(const float *x, const float *w, const float *bias,
                  const vkf_conv_geom *g, float *out)
{
    int64_t to, ho, wo;
    vkf_conv_out_dims(g, &to, &ho, &wo);
    int64_t cin_g = g->cin / g->groups, cout_g = g->cout / g->groups;
    int64_t kvol = (int64_t)g->kt * g->kh * g->kw;
    for (int64_t n = 0; n < g->n; n++)
    for (int64_t co = 0; co < g->cout; co++)
    for (int64_t ot = 0; ot < to; ot++)
    for (int64_t oy = 0; oy < ho; oy++)
    for (int64_t ox = 0; ox < wo; ox++) {
        double s = bias ? bias[co] : 0.0;
        for (int64_t ci = 0; ci < cin_g; ci++) {
            int64_t cx = (co / cout_g) * cin_g + ci;
            const float *xp = x + (n * g->cin + cx) * g->t * g->h * g->w;
            const float *wp = w + (co * cin_g + ci) * kvol;
            for (int kt = 0; kt < g->kt; kt++)
            for (int ky = 0; ky < g->kh; ky++)
            for (int kx = 0; kx < g->kw; kx++) {
                int64_t it = ot * g->st - g->pt0 + (int64_t)kt * g->dt;
                int64_t iy = oy * g->sh - g->ph + (int64_t)ky * g->dh;
                int64_t ix = ox * g->sw - g->pw + (int64_t)kx * g->dw;
                if (it < 0 || it >= g->t || iy < 0 || iy >= g->h || ix < 0 ||
                    ix >= g->w)
                    continue;
                s += (double)xp[(it * g->h + iy) * g->w + ix] *
                     wp[(kt * g->kh + ky) * g->kw + kx];
            }
        }
        out[(((n * g->cout + co) * to + ot) * ho + oy) * wo + ox] = (float)s;
    }
}
