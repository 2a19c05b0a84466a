/*
 * conv2d / conv3d against the double-accumulating C reference: awkward
 * sizes (1, 7, 13, 127 and non-multiples of every tile), kernels 1/3/5/7,
 * stride 2, padding 0/1/2/3, dilation 2, groups 2 and depthwise, f16/bf16
 * inputs and weights, the 1×1 vec4 path, every compiled register tile
 * with SSBO and texel-buffer loads, with and without subgroup broadcast,
 * causal 3-D padding with 1, 2 and 3 cache frames, views with storage
 * offsets and strides, argument errors, and 16 KiB storage chunks so that
 * input, weight and output span several bindings.  Weights pre-packed by
 * vkf_op_conv2d_prepack: the packed kernel (Cout multiples of 64, 3×3/5×5,
 * stride, dilation, f32/f16), and the unpack fallback when another tile or
 * a grouped conv takes them.
 * Tolerance: |err| <= 1e-5 * K + 1e-5 * |ref| with K = Cin/groups * kernel
 * volume (f32 accumulation of products of inputs in [-1, 1]; inputs are
 * pre-rounded to their storage dtype).
 */
#include "gpu_test.h"
#include "gpu/ops/spatial_ref.h"

typedef struct conv_case {
    int64_t n, cin, cout, t, h, w;
    int kt, kh, kw;
    int stride[3], pad[3], dil[3], groups;
    bool causal, bias;
    int64_t cache_t;               /* frames of cache (conv3d only) */
} conv_case;

/* check() passes the weight through vkf_op_conv2d_prepack (2-D only). */
static bool g_prepack;

static void check(vkf_gpu *gpu, bool is3d, const conv_case *c, vkf_dtype xdt,
                  vkf_dtype wdt, const vkf_conv_tile *tile)
{
    int groups = c->groups ? c->groups : 1;
    int64_t cin_g = c->cin / groups;
    int64_t xn = c->n * c->cin * c->t * c->h * c->w;
    int64_t cn = c->n * c->cin * c->cache_t * c->h * c->w;
    int64_t wn = c->cout * cin_g * c->kt * c->kh * c->kw;
    float *hx = gt_random(xn), *hw = gt_random(wn), *hb = gt_random(c->cout);
    float *hc = gt_random(cn);
    vkf_tensor *x, *w, *b = NULL, *cache = NULL, *o = NULL;
    if (is3d) {
        x = gt_tensor(gpu, xdt, 5, (int64_t[]){c->n, c->cin, c->t, c->h, c->w}, hx);
        w = gt_tensor(gpu, wdt, 5,
                      (int64_t[]){c->cout, cin_g, c->kt, c->kh, c->kw}, hw);
        if (c->cache_t)
            cache = gt_tensor(gpu, xdt, 5,
                              (int64_t[]){c->n, c->cin, c->cache_t, c->h, c->w}, hc);
    } else {
        x = gt_tensor(gpu, xdt, 4, (int64_t[]){c->n, c->cin, c->h, c->w}, hx);
        w = gt_tensor(gpu, wdt, 4, (int64_t[]){c->cout, cin_g, c->kh, c->kw}, hw);
    }
    if (c->bias)
        b = gt_tensor(gpu, VKF_DTYPE_F32, 1, &c->cout, hb);
    if (g_prepack && !is3d) {
        vkf_tensor *pw = NULL;
        CHECK_OK(vkf_op_conv2d_prepack(gpu, w, &pw));
        CHECK(vkf_tensor_ndim(pw) == 4);
        CHECK(!memcmp(vkf_tensor_shape(pw), vkf_tensor_shape(w), 4 * sizeof(int64_t)));
        vkf_tensor_unref(&w);
        w = pw;
    }

    /* Reference geometry: cache frames that replace front padding are
     * prepended on the host. */
    vkf_conv_geom g = {
        .n = c->n, .cin = c->cin, .cout = c->cout, .groups = groups,
        .t = c->t, .h = c->h, .w = c->w, .kt = c->kt, .kh = c->kh, .kw = c->kw,
        .st = is3d && c->stride[0] ? c->stride[0] : 1,
        .sh = c->stride[1] ? c->stride[1] : 1, .sw = c->stride[2] ? c->stride[2] : 1,
        .dt = is3d && c->dil[0] ? c->dil[0] : 1,
        .dh = c->dil[1] ? c->dil[1] : 1, .dw = c->dil[2] ? c->dil[2] : 1,
        .pt0 = is3d ? (c->causal ? 2 * c->pad[0] : c->pad[0]) : 0,
        .pt1 = is3d && !c->causal ? c->pad[0] : 0,
        .ph = c->pad[1], .pw = c->pad[2],
    };
    float *xin = hx;
    int64_t used = 0;
    if (c->cache_t && c->causal && g.pt0 > 0) {
        used = c->cache_t < g.pt0 ? c->cache_t : g.pt0;
        int64_t hw_ = c->h * c->w, tt = c->t + used;
        xin = malloc((size_t)(c->n * c->cin * tt * hw_) * sizeof(float));
        for (int64_t i = 0; i < c->n * c->cin; i++) {
            memcpy(xin + i * tt * hw_, hc + (i * c->cache_t + c->cache_t - used) * hw_,
                   (size_t)(used * hw_) * sizeof(float));
            memcpy(xin + (i * tt + used) * hw_, hx + i * c->t * hw_,
                   (size_t)(c->t * hw_) * sizeof(float));
        }
        g.t = tt;
        g.pt0 -= (int)used;
    }

    if (tile) {
        CHECK(used == 0);          /* the tiled entry takes x as is */
        CHECK_OK(vkf_op_conv_tiled(gpu, x, w, b, &g, tile, &o));
    } else if (is3d) {
        vkf_conv3d_params p = {
            .stride = {c->stride[0], c->stride[1], c->stride[2]},
            .padding = {c->pad[0], c->pad[1], c->pad[2]},
            .dilation = {c->dil[0], c->dil[1], c->dil[2]},
            .groups = c->groups, .causal = c->causal,
        };
        CHECK_OK(vkf_op_conv3d(gpu, x, w, b, cache, &p, &o));
    } else {
        vkf_conv2d_params p = {
            .stride = {c->stride[1], c->stride[2]},
            .padding = {c->pad[1], c->pad[2]},
            .dilation = {c->dil[1], c->dil[2]},
            .groups = c->groups,
        };
        CHECK_OK(vkf_op_conv2d(gpu, x, w, b, &p, &o));
    }
    int64_t to, ho, wo;
    vkf_conv_out_dims(&g, &to, &ho, &wo);
    const int64_t *os = vkf_tensor_shape(o);
    CHECK(vkf_tensor_ndim(o) == (is3d ? 5 : 4));
    CHECK(os[0] == c->n && os[1] == c->cout);
    CHECK(is3d ? os[2] == to && os[3] == ho && os[4] == wo
               : os[2] == ho && os[3] == wo);
    int64_t on = c->n * c->cout * to * ho * wo;
    float *want = malloc((size_t)on * sizeof(float));
    vkf_ref_conv(xin, hw, c->bias ? hb : NULL, &g, want);
    float *got = gt_download(o);
    char what[200];
    snprintf(what, sizeof(what),
             "conv%s n%lld ci%lld co%lld t%lld h%lld w%lld k%dx%dx%d s%d,%d,%d "
             "p%d,%d,%d d%d,%d,%d g%d%s%s cache%lld x:%s w:%s tile %ux%u/%u%s%s%s",
             is3d ? "3d" : "2d", (long long)c->n, (long long)c->cin,
             (long long)c->cout, (long long)c->t, (long long)c->h, (long long)c->w,
             c->kt, c->kh, c->kw, g.st, g.sh, g.sw, c->pad[0], c->pad[1], c->pad[2],
             g.dt, g.dh, g.dw, groups, c->causal ? " causal" : "",
             c->bias ? " bias" : "", (long long)c->cache_t, vkf_dtype_name(xdt),
             vkf_dtype_name(wdt), tile ? tile->tm : 0, tile ? tile->tn : 0,
             tile ? tile->wg : 0, tile && tile->tex ? " tex" : "",
             tile && tile->no_bcast ? " nobc" : "", g_prepack ? " prepacked" : "");
    float k = (float)(cin_g * c->kt * c->kh * c->kw);
    gt_compare(what, got, want, on, 1e-5f, 1e-5f * k);
    free(got);
    free(want);
    if (xin != hx)
        free(xin);
    free(hx);
    free(hw);
    free(hb);
    free(hc);
    vkf_tensor_unref(&o);
    vkf_tensor_unref(&x);
    vkf_tensor_unref(&w);
    vkf_tensor_unref(&b);
    vkf_tensor_unref(&cache);
}

static const conv_case cases2d[] = {
    /* n cin cout t h w  kt kh kw  stride pad dil groups causal bias */
    {1, 1, 1, 1, 1, 1, 1, 1, 1, {0}, {0}, {0}, 0, false, false, 0},
    {1, 3, 7, 1, 13, 7, 1, 3, 3, {0, 1, 1}, {0, 1, 1}, {0}, 0, false, true, 0},
    {2, 13, 20, 1, 9, 11, 1, 1, 1, {0}, {0}, {0}, 0, false, true, 0},
    {2, 8, 19, 1, 8, 6, 1, 1, 1, {0}, {0}, {0}, 0, false, false, 0},
    {1, 4, 9, 1, 127, 5, 1, 3, 3, {0}, {0, 1, 1}, {0}, 0, false, true, 0},
    {1, 5, 33, 1, 12, 13, 1, 5, 5, {0}, {0, 2, 2}, {0}, 0, false, true, 0},
    {2, 3, 8, 1, 17, 15, 1, 7, 7, {0, 2, 2}, {0, 3, 3}, {0}, 0, false, false, 0},
    {1, 6, 10, 1, 14, 13, 1, 3, 3, {0}, {0, 2, 2}, {0, 2, 2}, 0, false, true, 0},
    {1, 7, 13, 1, 16, 9, 1, 3, 3, {0, 2, 2}, {0, 1, 1}, {0}, 0, false, true, 0},
    {1, 7, 13, 1, 15, 16, 1, 3, 3, {0, 2, 2}, {0}, {0}, 0, false, false, 0},
    {1, 6, 8, 1, 9, 7, 1, 3, 1, {0, 1, 2}, {0, 1, 0}, {0, 2, 1}, 2, false, true, 0},
    {2, 12, 12, 1, 11, 10, 1, 3, 3, {0}, {0, 1, 1}, {0}, 12, false, true, 0},
    {1, 16, 32, 1, 7, 7, 1, 3, 3, {0}, {0, 1, 1}, {0}, 4, false, false, 0},
    {1, 20, 40, 1, 31, 33, 1, 3, 3, {0}, {0, 1, 1}, {0}, 0, false, true, 0},
};

static const conv_case cases3d[] = {
    /* Wan CausalConv3d 3³ pad 1: zero front frames, then 1, 2, 3 cached */
    {1, 4, 6, 5, 7, 6, 3, 3, 3, {0}, {1, 1, 1}, {0}, 0, true, true, 0},
    {1, 4, 6, 1, 7, 6, 3, 3, 3, {0}, {1, 1, 1}, {0}, 0, true, true, 1},
    {2, 4, 6, 4, 5, 6, 3, 3, 3, {0}, {1, 1, 1}, {0}, 0, true, true, 2},
    {1, 4, 6, 2, 5, 6, 3, 3, 3, {0}, {1, 1, 1}, {0}, 0, true, false, 3},
    /* time_conv (3,1,1) pad (1,0,0) and the down3d stride-2 form without
     * padding (the cache is then ignored, as upstream) */
    {1, 8, 16, 4, 3, 5, 3, 1, 1, {0}, {1, 0, 0}, {0}, 0, true, true, 2},
    {1, 8, 8, 5, 4, 3, 3, 1, 1, {2, 1, 1}, {0}, {0}, 0, true, true, 1},
    /* shortcut 1³, patch embedding (1,2,2)/(1,2,2), symmetric nn.Conv3d */
    {1, 9, 13, 3, 4, 4, 1, 1, 1, {0}, {0}, {0}, 0, true, true, 0},
    {1, 5, 12, 3, 8, 6, 1, 2, 2, {1, 2, 2}, {0}, {0}, 0, false, true, 0},
    {1, 3, 7, 6, 5, 7, 3, 3, 3, {2, 1, 2}, {1, 1, 2}, {1, 1, 2}, 0, false, true, 0},
};

/* Views with a storage offset (a batch slice of x, an output-channel slice
 * of w, odd offsets) bind as they are: offsets reach the shader. */
static void check_offsets(vkf_gpu *gpu)
{
    const int64_t n = 3, cin = 5, cout = 7, h = 9, w = 11;
    float *hx = gt_random(n * cin * h * w), *hw = gt_random((cout + 1) * cin * 9);
    float *hb = gt_random(cout + 1);
    vkf_tensor *x = gt_tensor(gpu, VKF_DTYPE_F32, 4, (int64_t[]){n, cin, h, w}, hx);
    vkf_tensor *wt = gt_tensor(gpu, VKF_DTYPE_F16, 4, (int64_t[]){cout + 1, cin, 3, 3}, hw);
    vkf_tensor *b = gt_tensor(gpu, VKF_DTYPE_F32, 1, (int64_t[]){cout + 1}, hb);
    vkf_tensor *xs = NULL, *ws = NULL, *bs = NULL, *o = NULL;
    CHECK_OK(vkf_tensor_slice(x, 0, 1, 2, &xs));
    CHECK_OK(vkf_tensor_slice(wt, 0, 1, cout, &ws));
    CHECK_OK(vkf_tensor_slice(b, 0, 1, cout, &bs));
    for (int k = 0; k < 2; k++) {
        vkf_conv2d_params p = {.padding = {k, k}};
        vkf_tensor *wk = ws;
        if (k == 0) {
            /* 1×1: the first tap of each 3×3 filter, as a strided view. */
            CHECK_OK(vkf_tensor_slice(ws, 2, 0, 1, &wk));
            vkf_tensor *tmp = wk;
            CHECK_OK(vkf_tensor_slice(tmp, 3, 0, 1, &wk));
            vkf_tensor_unref(&tmp);
        }
        CHECK_OK(vkf_op_conv2d(gpu, xs, wk, bs, &p, &o));
        float *wref = malloc((size_t)(cout * cin * 9) * sizeof(float));
        int kk = k ? 3 : 1;
        for (int64_t i = 0; i < cout * cin; i++)
            for (int t = 0; t < kk * kk; t++)
                wref[i * kk * kk + t] = hw[(cin * 9) + i * 9 + (k ? t : 0)];
        vkf_conv_geom g = {.n = 2, .cin = cin, .cout = cout, .groups = 1, .t = 1,
                           .h = h, .w = w, .kt = 1, .kh = kk, .kw = kk, .st = 1,
                           .sh = 1, .sw = 1, .dt = 1, .dh = 1, .dw = 1, .ph = k, .pw = k};
        int64_t on = 2 * cout * h * w;
        float *want = malloc((size_t)on * sizeof(float));
        vkf_ref_conv(hx + cin * h * w, wref, hb + 1, &g, want);
        float *got = gt_download(o);
        gt_compare(k ? "conv2d of offset views 3x3" : "conv2d of offset views 1x1", got,
                   want, on, 1e-5f, 1e-5f * (float)(cin * kk * kk));
        free(got);
        free(want);
        free(wref);
        vkf_tensor_unref(&o);
        if (wk != ws)
            vkf_tensor_unref(&wk);
    }
    vkf_tensor_unref(&xs);
    vkf_tensor_unref(&ws);
    vkf_tensor_unref(&bs);
    vkf_tensor_unref(&x);
    vkf_tensor_unref(&wt);
    vkf_tensor_unref(&b);
    free(hx);
    free(hw);
    free(hb);
}

/* Shape errors are VKF_EINVAL at the API boundary, nothing recorded. */
static void check_errors(vkf_gpu *gpu)
{
    /* Large enough for every tensor below (the 4x4x7x7 weight is largest). */
    float *h = gt_random(1024);
    vkf_tensor *x = gt_tensor(gpu, VKF_DTYPE_F32, 4, (int64_t[]){2, 4, 5, 5}, h);
    vkf_tensor *w = gt_tensor(gpu, VKF_DTYPE_F32, 4, (int64_t[]){6, 3, 3, 3}, h);
    vkf_tensor *w7 = gt_tensor(gpu, VKF_DTYPE_F32, 4, (int64_t[]){4, 4, 7, 7}, h);
    vkf_tensor *x5 = gt_tensor(gpu, VKF_DTYPE_F32, 5, (int64_t[]){1, 4, 2, 3, 3}, h);
    vkf_tensor *o = NULL;
    /* Cin 4 vs weight 3 per group; groups not dividing Cout; kernel larger
     * than the padded input; negative padding; conv3d given 4-D tensors. */
    CHECK(vkf_op_conv2d(gpu, x, w, NULL, &(vkf_conv2d_params){0}, &o) == VKF_EINVAL);
    CHECK(vkf_op_conv2d(gpu, x, w, NULL, &(vkf_conv2d_params){.groups = 4}, &o) ==
          VKF_EINVAL);
    CHECK(vkf_op_conv2d(gpu, x, w7, NULL, &(vkf_conv2d_params){0}, &o) == VKF_EINVAL);
    CHECK(vkf_op_conv2d(gpu, x, w7, NULL, &(vkf_conv2d_params){.padding = {-1, 3}},
                        &o) == VKF_EINVAL);
    CHECK(vkf_op_conv3d(gpu, x, w, NULL, NULL, &(vkf_conv3d_params){0}, &o) ==
          VKF_EINVAL);
    /* A cache whose spatial size differs from x. */
    vkf_tensor *w3 = gt_tensor(gpu, VKF_DTYPE_F32, 5, (int64_t[]){2, 4, 3, 3, 3}, h);
    vkf_tensor *c = gt_tensor(gpu, VKF_DTYPE_F32, 5, (int64_t[]){1, 4, 2, 4, 3}, h);
    CHECK(vkf_op_conv3d(gpu, x5, w3, NULL, c, &(vkf_conv3d_params){
              .padding = {1, 1, 1}, .causal = true}, &o) == VKF_EINVAL);
    CHECK(o == NULL);
    vkf_tensor_unref(&x);
    vkf_tensor_unref(&w);
    vkf_tensor_unref(&w7);
    vkf_tensor_unref(&x5);
    vkf_tensor_unref(&w3);
    vkf_tensor_unref(&c);
    free(h);
}

int main(void)
{
    static const vkf_conv_tile tiles[] = {
        {1, 16, 8, false, false}, {2, 16, 8, false, true}, {4, 16, 8, false, false},
        {8, 16, 8, false, false}, {4, 16, 64, false, false}, {1, 16, 8, true, false},
        {2, 16, 8, true, true}, {4, 16, 8, true, false}, {8, 16, 8, true, false},
        {8, 16, 8, true, true}, {4, 16, 64, true, false},
    };
    gt_seed(11);
    vkf_gpu *gpu = gt_gpu_open((vkf_gpu_params){0});
    for (size_t i = 0; i < VKF_ARRAY_SIZE(cases2d); i++)
        check(gpu, false, &cases2d[i], VKF_DTYPE_F32, VKF_DTYPE_F32, NULL);
    for (size_t i = 0; i < VKF_ARRAY_SIZE(cases3d); i++)
        check(gpu, true, &cases3d[i], VKF_DTYPE_F32, VKF_DTYPE_F32, NULL);
    /* Storage dtypes of inputs and weights: each dtype on each side, with
     * texel (f32/f16) and SSBO (bf16) loads. */
    static const vkf_dtype dts[][2] = {
        {VKF_DTYPE_F16, VKF_DTYPE_F32}, {VKF_DTYPE_F32, VKF_DTYPE_F16},
        {VKF_DTYPE_BF16, VKF_DTYPE_F16}, {VKF_DTYPE_F16, VKF_DTYPE_BF16},
    };
    for (size_t i = 0; i < VKF_ARRAY_SIZE(dts); i++) {
        check(gpu, false, &cases2d[1], dts[i][0], dts[i][1], NULL);
        check(gpu, false, &cases2d[3], dts[i][0], dts[i][1], NULL);
        check(gpu, true, &cases3d[2], dts[i][0], dts[i][1], NULL);
    }
    /* Every compiled register tile, with edge tiles in both directions,
     * generic and 1×1 paths. */
    for (size_t t = 0; t < VKF_ARRAY_SIZE(tiles); t++) {
        check(gpu, false, &cases2d[13], VKF_DTYPE_F32, VKF_DTYPE_F32, &tiles[t]);
        check(gpu, false, &cases2d[3], VKF_DTYPE_F32, VKF_DTYPE_F16, &tiles[t]);
    }
    /* bf16 weights through SSBO loads (the texel path widens them). */
    check(gpu, false, &cases2d[1], VKF_DTYPE_F32, VKF_DTYPE_BF16, &tiles[1]);
    check(gpu, true, &cases3d[0], VKF_DTYPE_BF16, VKF_DTYPE_BF16, &tiles[3]);
    /* Pre-packed weights: the packed kernel where Cout is a multiple of
     * 64 (3×3, 5×5, stride 2, dilation 2), left plain otherwise (1×1, Cout
     * 20), unpacked again for other tiles and for a grouped conv. */
    static const conv_case packed[] = {
        {2, 13, 64, 1, 9, 11, 1, 3, 3, {0}, {0, 1, 1}, {0}, 0, false, true, 0},
        {1, 5, 128, 1, 7, 12, 1, 3, 3, {0, 2, 2}, {0, 1, 1}, {0}, 0, false, false, 0},
        {1, 3, 64, 1, 13, 6, 1, 5, 5, {0}, {0, 2, 2}, {0, 2, 2}, 0, false, true, 0},
        {1, 4, 64, 1, 5, 5, 1, 1, 1, {0}, {0}, {0}, 0, false, true, 0},
        {1, 20, 40, 1, 31, 33, 1, 3, 3, {0}, {0, 1, 1}, {0}, 0, false, true, 0},
        {1, 8, 128, 1, 6, 7, 1, 3, 3, {0}, {0, 1, 1}, {0}, 2, false, true, 0},
    };
    g_prepack = true;
    for (size_t i = 0; i < VKF_ARRAY_SIZE(packed); i++) {
        check(gpu, false, &packed[i], VKF_DTYPE_F32, VKF_DTYPE_F32, NULL);
        check(gpu, false, &packed[i], VKF_DTYPE_F16, VKF_DTYPE_F16, NULL);
    }
    check(gpu, false, &packed[0], VKF_DTYPE_F32, VKF_DTYPE_BF16, NULL);
    check(gpu, false, &packed[0], VKF_DTYPE_F32, VKF_DTYPE_F32, &tiles[9]);
    check(gpu, false, &packed[0], VKF_DTYPE_F32, VKF_DTYPE_F16, &tiles[7]);
    check(gpu, false, &packed[1], VKF_DTYPE_F32, VKF_DTYPE_F32, &tiles[3]);
    g_prepack = false;
    check_offsets(gpu);
    check_errors(gpu);
    int rc = gt_finish(&gpu);

    /* 16 KiB chunks: x 2 chunks, weight 2, output 3. */
    gpu = gt_gpu_open((vkf_gpu_params){.max_chunk_bytes = 16384});
    static const conv_case big[] = {
        {1, 16, 24, 1, 20, 20, 1, 3, 3, {0}, {0, 1, 1}, {0}, 0, false, true, 0},
        {1, 16, 24, 1, 20, 20, 1, 1, 1, {0}, {0}, {0}, 0, false, true, 0},
        {1, 16, 24, 3, 10, 12, 3, 3, 3, {0}, {1, 1, 1}, {0}, 0, true, true, 2},
    };
    check(gpu, false, &big[0], VKF_DTYPE_F32, VKF_DTYPE_F32, NULL);
    check(gpu, false, &big[1], VKF_DTYPE_F32, VKF_DTYPE_F32, NULL);
    check(gpu, true, &big[2], VKF_DTYPE_F32, VKF_DTYPE_F32, NULL);
    /* Weights over one chunk stay plain. */
    static const conv_case bigp = {1, 16, 64, 1, 9, 9, 1, 3, 3, {0}, {0, 1, 1}, {0}, 0,
                                   false, true, 0};
    g_prepack = true;
    check(gpu, false, &bigp, VKF_DTYPE_F32, VKF_DTYPE_F32, NULL);
    g_prepack = false;
    rc |= gt_finish(&gpu);
    return rc;
}
