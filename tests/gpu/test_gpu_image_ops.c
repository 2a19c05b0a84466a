/*
 * Image/mask node ops (core/gpu/ops/image_ops.c) against plain-C
 * references restating ComfyUI's math: ImageBlend's modes, MaskComposite,
 * ThresholdMask, FeatherMask (with its column/row-0 quirk),
 * ImagePadForOutpaint's mask, GrowMask, blur and sharpen (direct 2-D
 * kernels as ComfyUI builds them), PIL's Lanczos (float, and against an
 * emulation of PIL's 8-bit fixed-point path as ComfyUI runs it) and
 * kornia's Canny.  Awkward sizes, random data.
 */
#include <cjson/cJSON.h>

#include "gpu_test.h"

/* nodes/image_nodes.c: comfy.utils.common_upscale of an IMAGE. */
int vkf_image_upscale(vkf_gpu *gpu, vkf_tensor *img, int64_t width, int64_t height,
                      const char *method, bool crop_center, vkf_tensor **out);

/* Uniform in [0, 1). */
static float *rand01(int64_t n)
{
    float *p = gt_random(n);
    for (int64_t i = 0; i < n; i++)
        p[i] = p[i] * 0.5f + 0.5f;
    return p;
}

static float *dl(vkf_tensor *t)
{
    float *p = malloc(sizeof(float) * (size_t)vkf_tensor_numel(t));
    CHECK_OK(vkf_tensor_download(t, p));
    return p;
}

static void check_shape(const char *what, vkf_tensor *t, int nd, const int64_t *want)
{
    bool ok = vkf_tensor_ndim(t) == nd;
    for (int d = 0; ok && d < nd; d++)
        ok = vkf_tensor_shape(t)[d] == want[d];
    if (!ok) {
        fprintf(stderr, "%s: wrong output shape\n", what);
        gt_failures++;
    }
}

static void compare(const char *what, const float *got, const float *want, int64_t n, float tol)
{
    double worst = 0;
    int64_t at = -1;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - want[i]);
        if (!(d <= tol) && (at < 0 || d > worst)) {
            worst = d;
            at = i;
        }
    }
    if (at >= 0) {
        fprintf(stderr, "%s: |diff| %g at %lld (got %.9g want %.9g), tol %g\n", what, worst,
                (long long)at, got[at], want[at], tol);
        gt_failures++;
    }
}

/* ---- blend ------------------------------------------------------------------ */

static float ref_blend_mode(float a, float b, int m)
{
    switch (m) {
    case 0: return b;
    case 1: return a * b;
    case 2: return 1.0f - (1.0f - a) * (1.0f - b);
    case 3: return a <= 0.5f ? 2.0f * a * b : 1.0f - 2.0f * (1.0f - a) * (1.0f - b);
    case 4: {
        float g = a <= 0.25f ? ((16.0f * a - 12.0f) * a + 4.0f) * a : sqrtf(a);
        return b <= 0.5f ? a - (1.0f - 2.0f * b) * a * (1.0f - a) : a + (2.0f * b - 1.0f) * (g - a);
    }
    default: return a - b;
    }
}

static void test_blend(vkf_gpu *gpu)
{
    int64_t sh[4] = {2, 7, 13, 3}, n = 2 * 7 * 13 * 3;
    float *a = rand01(n), *b = rand01(n), *want = malloc(sizeof(float) * (size_t)n);
    a[0] = 0.5f;   /* the <= 0.5 / <= 0.25 branch points */
    b[0] = 0.5f;
    a[1] = 0.25f;
    b[1] = 0.75f;
    vkf_tensor *ta = gt_tensor(gpu, VKF_DTYPE_F32, 4, sh, a), *tb = gt_tensor(gpu, VKF_DTYPE_F32, 4, sh, b);
    const double factors[] = {0.5, 0.0, 1.0, 0.37};
    for (int m = 0; m <= 5; m++) {
        double f = factors[m % 4];
        vkf_tensor *o = NULL;
        CHECK_OK(vkf_op_image_blend(gpu, ta, tb, (vkf_image_blend_mode)m, f, &o));
        for (int64_t i = 0; i < n; i++) {
            float v = a[i] * (float)(1.0 - f) + ref_blend_mode(a[i], b[i], m) * (float)f;
            want[i] = v < 0 ? 0 : v > 1 ? 1 : v;
        }
        float *got = dl(o);
        char what[64];
        snprintf(what, sizeof(what), "blend mode %d", m);
        compare(what, got, want, n, 2e-6f);
        free(got);
        vkf_tensor_unref(&o);
    }
    /* mismatched shapes are refused */
    int64_t sh2[4] = {2, 7, 12, 3};
    vkf_tensor *tc = NULL, *o = NULL;
    CHECK_OK(vkf_tensor_create(gpu, VKF_DTYPE_F32, 4, sh2, &tc));
    CHECK(vkf_op_image_blend(gpu, ta, tc, VKF_BLEND_NORMAL, 0.5, &o) == VKF_EINVAL && !o);
    vkf_tensor_unref(&tc);
    vkf_tensor_unref(&ta);
    vkf_tensor_unref(&tb);
    free(a);
    free(b);
    free(want);
}

/* ---- mask composite / threshold --------------------------------------------- */

static void test_mask_composite(vkf_gpu *gpu)
{
    static const struct {
        int64_t d[3], s[3], x, y;
    } cases[] = {
        {{1, 9, 11}, {1, 4, 5}, 2, 3},
        {{3, 9, 11}, {1, 20, 20}, 7, 6},   /* clipped, source broadcast */
        {{2, 5, 6}, {2, 5, 6}, 0, 0},
        {{1, 5, 6}, {1, 2, 2}, 6, 0},      /* at the right edge: nothing pasted */
    };
    for (size_t k = 0; k < VKF_ARRAY_SIZE(cases); k++) {
        const int64_t *ds = cases[k].d, *ss = cases[k].s;
        int64_t nd = ds[0] * ds[1] * ds[2], ns = ss[0] * ss[1] * ss[2];
        float *d = gt_random(nd), *s = gt_random(ns), *want = malloc(sizeof(float) * (size_t)nd);
        for (int64_t i = 0; i < nd; i++)
            d[i] = d[i] * 1.2f + 0.3f;   /* outside [0, 1] too: the clamp */
        d[0] = 0.5f;                   /* round(0.5) = 0 */
        s[0] = 1.5f;
        vkf_tensor *td = gt_tensor(gpu, VKF_DTYPE_F32, 3, ds, d), *ts = gt_tensor(gpu, VKF_DTYPE_F16, 3, ss, s);
        for (int op = 0; op <= 5; op++) {
            vkf_tensor *o = NULL;
            CHECK_OK(vkf_op_mask_composite(gpu, td, ts, cases[k].x, cases[k].y, (vkf_mask_op)op, &o));
            for (int64_t b = 0; b < ds[0]; b++)
            for (int64_t y = 0; y < ds[1]; y++)
            for (int64_t x = 0; x < ds[2]; x++) {
                int64_t i = (b * ds[1] + y) * ds[2] + x;
                float v = d[i];
                int64_t sy = y - cases[k].y, sx = x - cases[k].x;
                if (sy >= 0 && sx >= 0 && sy < ss[1] && sx < ss[2]) {
                    float sv = s[((b % ss[0]) * ss[1] + sy) * ss[2] + sx];
                    bool bd = nearbyintf(v) != 0, bs = nearbyintf(sv) != 0;
                    v = op == 0 ? v * sv : op == 1 ? v + sv : op == 2 ? v - sv
                        : op == 3 ? (float)(bd && bs) : op == 4 ? (float)(bd || bs) : (float)(bd != bs);
                }
                want[i] = v < 0 ? 0 : v > 1 ? 1 : v;
            }
            float *got = dl(o);
            char what[64];
            snprintf(what, sizeof(what), "mask composite case %zu op %d", k, op);
            compare(what, got, want, nd, 1e-7f);
            free(got);
            vkf_tensor_unref(&o);
        }
        vkf_tensor *o = NULL;
        CHECK_OK(vkf_op_mask_threshold(gpu, td, 0.5f, &o));
        float *got = dl(o);
        for (int64_t i = 0; i < nd; i++)
            want[i] = d[i] > 0.5f ? 1.0f : 0.0f;
        compare("threshold", got, want, nd, 0);
        free(got);
        vkf_tensor_unref(&o);
        vkf_tensor_unref(&td);
        vkf_tensor_unref(&ts);
        free(d);
        free(s);
        free(want);
    }
}

/* ---- feather / outpaint mask ------------------------------------------------- */

static void ref_feather(float *m, int64_t B, int64_t H, int64_t W, int64_t l, int64_t t,
                        int64_t r, int64_t bo)
{
    l = l < W ? l : W;
    r = r < W ? r : W;
    t = t < H ? t : H;
    bo = bo < H ? bo : H;
    for (int64_t b = 0; b < B; b++) {
        float *p = m + b * H * W;
        /* the loops of FeatherMask, in order; output[:, :, -x] */
        for (int64_t x = 0; x < l; x++)
            for (int64_t y = 0; y < H; y++)
                p[y * W + x] *= (float)((x + 1.0) / l);
        for (int64_t x = 0; x < r; x++)
            for (int64_t y = 0; y < H; y++)
                p[y * W + (W - x) % W] *= (float)((x + 1.0) / r);
        for (int64_t y = 0; y < t; y++)
            for (int64_t x = 0; x < W; x++)
                p[y * W + x] *= (float)((y + 1.0) / t);
        for (int64_t y = 0; y < bo; y++)
            for (int64_t x = 0; x < W; x++)
                p[((H - y) % H) * W + x] *= (float)((y + 1.0) / bo);
    }
}

static void test_feather(vkf_gpu *gpu)
{
    static const int64_t cases[][7] = {
        {2, 9, 13, 3, 2, 4, 5}, {1, 6, 5, 0, 0, 7, 0}, {1, 6, 5, 9, 9, 9, 9}, {1, 8, 8, 0, 0, 0, 0},
        {3, 17, 10, 1, 0, 1, 6},
    };
    for (size_t k = 0; k < VKF_ARRAY_SIZE(cases); k++) {
        const int64_t *c = cases[k];
        int64_t sh[3] = {c[0], c[1], c[2]}, n = c[0] * c[1] * c[2];
        float *m = rand01(n), *want = malloc(sizeof(float) * (size_t)n);
        memcpy(want, m, sizeof(float) * (size_t)n);
        ref_feather(want, c[0], c[1], c[2], c[3], c[4], c[5], c[6]);
        vkf_tensor *t = gt_tensor(gpu, VKF_DTYPE_F32, 3, sh, m), *o = NULL;
        CHECK_OK(vkf_op_mask_feather(gpu, t, c[3], c[4], c[5], c[6], &o));
        float *got = dl(o);
        char what[64];
        snprintf(what, sizeof(what), "feather case %zu", k);
        compare(what, got, want, n, 1e-7f);
        free(got);
        free(m);
        free(want);
        vkf_tensor_unref(&o);
        vkf_tensor_unref(&t);
    }
}

static void test_outpaint_mask(vkf_gpu *gpu)
{
    static const int64_t cases[][7] = {
        /* h, w, left, top, right, bottom, feathering */
        {20, 30, 8, 0, 16, 8, 6}, {20, 30, 0, 0, 0, 0, 4}, {9, 13, 3, 5, 0, 0, 4},
        {9, 13, 3, 5, 1, 2, 5},   /* 2·f >= h: no feathering */
        {40, 24, 1, 1, 1, 1, 11}, {7, 7, 2, 2, 2, 2, 0},
    };
    for (size_t k = 0; k < VKF_ARRAY_SIZE(cases); k++) {
        const int64_t *c = cases[k];
        int64_t d2 = c[0], d3 = c[1], l = c[2], t = c[3], r = c[4], b = c[5], f = c[6];
        int64_t H = d2 + t + b, W = d3 + l + r;
        float *want = malloc(sizeof(float) * (size_t)(H * W));
        for (int64_t i = 0; i < H * W; i++)
            want[i] = 1.0f;
        for (int64_t i = 0; i < d2; i++)
            for (int64_t j = 0; j < d3; j++) {
                double v2 = 0;
                if (f > 0 && f * 2 < d2 && f * 2 < d3) {
                    int64_t dt = t ? i : d2, db = b ? d2 - i : d2, dl_ = l ? j : d3, dr = r ? d3 - j : d3;
                    int64_t d = dt < db ? dt : db;
                    d = d < dl_ ? d : dl_;
                    d = d < dr ? d : dr;
                    if (d < f) {
                        double v = (double)(f - d) / (double)f;
                        v2 = v * v;
                    }
                }
                want[(i + t) * W + j + l] = (float)v2;
            }
        vkf_tensor *o = NULL;
        CHECK_OK(vkf_op_outpaint_mask(gpu, d2, d3, l, t, r, b, f, &o));
        int64_t ws[3] = {1, H, W};
        check_shape("outpaint mask", o, 3, ws);
        float *got = dl(o);
        char what[64];
        snprintf(what, sizeof(what), "outpaint mask case %zu", k);
        compare(what, got, want, H * W, 1.2e-7f);
        free(got);
        free(want);
        vkf_tensor_unref(&o);
    }
}

/* ---- grow -------------------------------------------------------------------- */

static void ref_grow(float *m, int64_t B, int64_t H, int64_t W, int64_t expand, bool tapered)
{
    float *tmp = malloc(sizeof(float) * (size_t)(H * W));
    for (int64_t b = 0; b < B; b++) {
        float *p = m + b * H * W;
        for (int64_t s = 0; s < (expand < 0 ? -expand : expand); s++) {
            for (int64_t y = 0; y < H; y++)
                for (int64_t x = 0; x < W; x++) {
                    float v = p[y * W + x];
                    for (int dy = -1; dy <= 1; dy++)
                        for (int dx = -1; dx <= 1; dx++) {
                            if (tapered && dx && dy)
                                continue;
                            /* scipy mode 'reflect' at distance 1 repeats the edge */
                            int64_t yy = y + dy < 0 ? 0 : y + dy >= H ? H - 1 : y + dy;
                            int64_t xx = x + dx < 0 ? 0 : x + dx >= W ? W - 1 : x + dx;
                            float u = p[yy * W + xx];
                            v = expand > 0 ? (u > v ? u : v) : (u < v ? u : v);
                        }
                    tmp[y * W + x] = v;
                }
            memcpy(p, tmp, sizeof(float) * (size_t)(H * W));
        }
    }
    free(tmp);
}

static void test_grow(vkf_gpu *gpu)
{
    static const struct {
        int64_t B, H, W, expand;
        bool tapered;
    } cases[] = {
        {1, 11, 9, 1, true}, {2, 11, 9, 3, false}, {1, 10, 13, -2, true}, {1, 10, 13, -3, false},
        {1, 6, 5, 0, true}, {1, 6, 5, 40, true}, /* beyond H + W: capped, same result */
    };
    for (size_t k = 0; k < VKF_ARRAY_SIZE(cases); k++) {
        int64_t sh[3] = {cases[k].B, cases[k].H, cases[k].W}, n = sh[0] * sh[1] * sh[2];
        float *m = rand01(n), *want = malloc(sizeof(float) * (size_t)n);
        for (int64_t i = 0; i < n; i++)   /* sparse blobs so growth is visible */
            m[i] = m[i] > 0.85f ? m[i] : m[i] * 0.1f;
        memcpy(want, m, sizeof(float) * (size_t)n);
        ref_grow(want, sh[0], sh[1], sh[2], cases[k].expand, cases[k].tapered);
        vkf_tensor *t = gt_tensor(gpu, VKF_DTYPE_F32, 3, sh, m), *o = NULL;
        CHECK_OK(vkf_op_mask_grow(gpu, t, cases[k].expand, cases[k].tapered, &o));
        float *got = dl(o);
        char what[64];
        snprintf(what, sizeof(what), "grow case %zu", k);
        compare(what, got, want, n, 0);
        free(got);
        free(m);
        free(want);
        vkf_tensor_unref(&o);
        vkf_tensor_unref(&t);
    }
}

/* ---- fill / mask to image ------------------------------------------------------ */

static void test_fill_expand(vkf_gpu *gpu, bool big_ok)
{
    int64_t sh[4] = {2, 3, 5, 3};
    float rgb[3] = {0.25f, 0.5f, 1.0f};
    vkf_tensor *o = NULL, *m = NULL, *e = NULL;
    CHECK_OK(vkf_op_image_fill(gpu, 4, sh, rgb, &o));
    float *got = dl(o);
    for (int i = 0; i < 90; i++)
        CHECK(got[i] == rgb[i % 3]);
    free(got);
    float *hm = rand01(30);
    m = gt_tensor(gpu, VKF_DTYPE_F32, 3, sh, hm);
    CHECK_OK(vkf_op_mask_to_image(gpu, m, &e));
    check_shape("mask to image", e, 4, sh);
    got = dl(e);
    for (int i = 0; i < 90; i++)
        CHECK(got[i] == hm[i / 3]);
    free(got);
    free(hm);
    vkf_tensor_unref(&o);
    vkf_tensor_unref(&m);
    vkf_tensor_unref(&e);
    /* more than 65535 workgroups of 64: the grid folds into y (not with
     * the 16 KiB test chunks, which cap tensors at 16 Ki elements) */
    if (!big_ok)
        return;
    int64_t big[4] = {1, 1024, 1400, 3}, nb = 1024 * 1400 * 3;
    CHECK_OK(vkf_op_image_fill(gpu, 4, big, rgb, &o));
    got = dl(o);
    bool all = true;
    for (int64_t i = 0; i < nb; i++)
        all &= got[i] == rgb[i % 3];
    CHECK(all);
    free(got);
    vkf_tensor_unref(&o);
}

/* ---- blur / sharpen ----------------------------------------------------------- */

/* ComfyUI's gaussian_kernel(ks, sigma) as a 2-D array (float32 like torch). */
static void comfy_kernel(int ks, double sigma, float *k)
{
    float sum = 0;
    for (int i = 0; i < ks; i++)
        for (int j = 0; j < ks; j++) {
            float x = ks == 1 ? -1.0f : (float)(-1.0 + 2.0 * i / (ks - 1));
            float y = ks == 1 ? -1.0f : (float)(-1.0 + 2.0 * j / (ks - 1));
            float d = sqrtf(x * x + y * y);
            k[i * ks + j] = expf(-(d * d) / (float)(2.0 * sigma * sigma));
            sum += k[i * ks + j];
        }
    for (int i = 0; i < ks * ks; i++)
        k[i] /= sum;
}

static int64_t reflect(int64_t i, int64_t n)
{
    if (i < 0)
        i = -i;
    if (i >= n)
        i = 2 * n - 2 - i;
    return i;
}

/* F.pad(reflect) then a depthwise conv with kernel k over [B, H, W, C]. */
static void ref_conv_reflect(const float *x, const int64_t *sh, const float *k, int ks, float *o)
{
    int r = ks / 2;
    int64_t B = sh[0], H = sh[1], W = sh[2], C = sh[3];
    for (int64_t b = 0; b < B; b++)
    for (int64_t y = 0; y < H; y++)
    for (int64_t xx = 0; xx < W; xx++)
    for (int64_t c = 0; c < C; c++) {
        double acc = 0;
        for (int i = 0; i < ks; i++)
            for (int j = 0; j < ks; j++) {
                int64_t yy = reflect(y + i - r, H), xs = reflect(xx + j - r, W);
                acc += (double)k[i * ks + j] * x[((b * H + yy) * W + xs) * C + c];
            }
        o[((b * H + y) * W + xx) * C + c] = (float)acc;
    }
}

static void test_blur_sharpen(vkf_gpu *gpu)
{
    static const struct {
        int64_t sh[4];
        int radius;
        double sigma, alpha;
    } cases[] = {
        {{1, 9, 11, 3}, 1, 1.0, 1.0}, {{2, 13, 7, 3}, 3, 0.7, 0.3}, {{1, 16, 17, 4}, 7, 10.0, 5.0},
        {{1, 5, 6, 3}, 4, 2.5, 0.0},
    };
    for (size_t c = 0; c < VKF_ARRAY_SIZE(cases); c++) {
        const int64_t *sh = cases[c].sh;
        int64_t n = sh[0] * sh[1] * sh[2] * sh[3];
        int ks = 2 * cases[c].radius + 1;
        float *x = rand01(n), *want = malloc(sizeof(float) * (size_t)n), *k = malloc(sizeof(float) * (size_t)(ks * ks));
        vkf_tensor *t = gt_tensor(gpu, VKF_DTYPE_F32, 4, sh, x), *o = NULL;
        comfy_kernel(ks, cases[c].sigma, k);
        ref_conv_reflect(x, sh, k, ks, want);
        CHECK_OK(vkf_op_image_blur(gpu, t, cases[c].radius, cases[c].sigma, &o));
        float *got = dl(o);
        char what[64];
        snprintf(what, sizeof(what), "blur case %zu", c);
        compare(what, got, want, n, 2e-6f);
        free(got);
        vkf_tensor_unref(&o);
        /* ImageSharpen: kernel = G·−(10α), centre −= sum − 1 */
        float sum = 0;
        for (int i = 0; i < ks * ks; i++) {
            k[i] *= -(float)(cases[c].alpha * 10);
            sum += k[i];
        }
        k[(ks / 2) * ks + ks / 2] = k[(ks / 2) * ks + ks / 2] - sum + 1.0f;
        ref_conv_reflect(x, sh, k, ks, want);
        for (int64_t i = 0; i < n; i++)
            want[i] = want[i] < 0 ? 0 : want[i] > 1 ? 1 : want[i];
        CHECK_OK(vkf_op_image_sharpen(gpu, t, cases[c].radius, cases[c].sigma, cases[c].alpha, &o));
        got = dl(o);
        snprintf(what, sizeof(what), "sharpen case %zu", c);
        compare(what, got, want, n, 1e-4f);
        free(got);
        vkf_tensor_unref(&o);
        vkf_tensor_unref(&t);
        free(x);
        free(want);
        free(k);
    }
}

/* ---- Lanczos ------------------------------------------------------------------- */

/* PIL's float path restated: W pass then H pass, each clamped to [0, 1]. */
static void ref_lanczos_pass(const double *x, int64_t B, int64_t H, int64_t W, int64_t C,
                             int axis, int64_t out_len, double *o)
{
    int64_t in_len = axis == 0 ? W : H;
    int ks = vkf_lanczos_coeffs(in_len, out_len, NULL, NULL, NULL);
    double *w = malloc(sizeof(double) * (size_t)(out_len * ks));
    int64_t *lo = malloc(sizeof(int64_t) * (size_t)out_len), *cnt = malloc(sizeof(int64_t) * (size_t)out_len);
    vkf_lanczos_coeffs(in_len, out_len, w, lo, cnt);
    int64_t Ho = axis ? out_len : H, Wo = axis ? W : out_len;
    for (int64_t b = 0; b < B; b++)
    for (int64_t y = 0; y < Ho; y++)
    for (int64_t xx = 0; xx < Wo; xx++)
    for (int64_t c = 0; c < C; c++) {
        int64_t oi = axis ? y : xx;
        double acc = 0;
        for (int64_t k = 0; k < cnt[oi]; k++) {
            int64_t sy = axis ? lo[oi] + k : y, sx = axis ? xx : lo[oi] + k;
            acc += w[oi * ks + k] * x[((b * H + sy) * W + sx) * C + c];
        }
        o[((b * Ho + y) * Wo + xx) * C + c] = acc < 0 ? 0 : acc > 1 ? 1 : acc;
    }
    free(w);
    free(lo);
    free(cnt);
}

/* ComfyUI's lanczos(): uint8 = clip(255·x) truncated, PIL ImagingResample
 * in 8 bits (coefficients in 22-bit fixed point, rounding, clip per pass),
 * then / 255. */
static void pil_u8_pass(const uint8_t *x, int64_t H, int64_t W, int64_t C, int axis,
                        int64_t out_len, uint8_t *o)
{
    int64_t in_len = axis == 0 ? W : H;
    int ks = vkf_lanczos_coeffs(in_len, out_len, NULL, NULL, NULL);
    double *w = malloc(sizeof(double) * (size_t)(out_len * ks));
    int64_t *lo = malloc(sizeof(int64_t) * (size_t)out_len), *cnt = malloc(sizeof(int64_t) * (size_t)out_len);
    vkf_lanczos_coeffs(in_len, out_len, w, lo, cnt);
    int64_t Ho = axis ? out_len : H, Wo = axis ? W : out_len;
    for (int64_t y = 0; y < Ho; y++)
    for (int64_t xx = 0; xx < Wo; xx++)
    for (int64_t c = 0; c < C; c++) {
        int64_t oi = axis ? y : xx;
        int32_t ss = 1 << 21;
        for (int64_t k = 0; k < cnt[oi]; k++) {
            double kv = w[oi * ks + k] * (1 << 22);
            int32_t kk = (int32_t)(kv < 0 ? -0.5 + kv : 0.5 + kv);
            int64_t sy = axis ? lo[oi] + k : y, sx = axis ? xx : lo[oi] + k;
            ss += x[(sy * W + sx) * C + c] * kk;
        }
        int32_t v = ss >> 22;
        o[(y * Wo + xx) * C + c] = (uint8_t)(ss < 0 ? 0 : v > 255 ? 255 : v);
    }
    free(w);
    free(lo);
    free(cnt);
}

static void test_lanczos(vkf_gpu *gpu)
{
    static const int64_t cases[][6] = {
        /* B, H, W, C, ho, wo */
        {1, 17, 23, 3, 8, 11}, {2, 9, 7, 3, 20, 15}, {1, 12, 30, 3, 12, 7}, {1, 31, 5, 4, 13, 5},
        {1, 6, 6, 3, 6, 6}, {1, 40, 40, 3, 9, 57},
    };
    double worst_u8 = 0;
    for (size_t k = 0; k < VKF_ARRAY_SIZE(cases); k++) {
        const int64_t *c = cases[k];
        int64_t B = c[0], H = c[1], W = c[2], C = c[3], ho = c[4], wo = c[5];
        int64_t n = B * H * W * C, no = B * ho * wo * C;
        float *x = rand01(n);
        /* smooth areas next to hard edges, as images have */
        for (int64_t i = 0; i < n; i++)
            x[i] = (i / (C * 3)) % 4 == 0 ? x[i] : (float)((i / C) % W < W / 2);
        int64_t sh[4] = {B, H, W, C};
        vkf_tensor *t = gt_tensor(gpu, VKF_DTYPE_F32, 4, sh, x), *o = NULL;
        CHECK_OK(vkf_op_lanczos(gpu, t, ho, wo, &o));
        int64_t osh[4] = {B, ho, wo, C};
        check_shape("lanczos", o, 4, osh);
        float *got = dl(o), *want = malloc(sizeof(float) * (size_t)no);
        /* float reference */
        double *a = malloc(sizeof(double) * (size_t)(B * (H > ho ? H : ho) * (W > wo ? W : wo) * C));
        double *b = malloc(sizeof(double) * (size_t)(B * (H > ho ? H : ho) * (W > wo ? W : wo) * C));
        for (int64_t i = 0; i < n; i++)
            a[i] = x[i];
        int64_t cw = W;
        if (wo != W) {
            ref_lanczos_pass(a, B, H, W, C, 0, wo, b);
            memcpy(a, b, sizeof(double) * (size_t)(B * H * wo * C));
            cw = wo;
        }
        if (ho != H) {
            ref_lanczos_pass(a, B, H, cw, C, 1, ho, b);
            memcpy(a, b, sizeof(double) * (size_t)no);
        }
        for (int64_t i = 0; i < no; i++)
            want[i] = (float)a[i];
        char what[64];
        snprintf(what, sizeof(what), "lanczos case %zu", k);
        compare(what, got, want, no, 2e-6f);
        /* ComfyUI's uint8 round trip */
        for (int64_t bb = 0; bb < B; bb++) {
            uint8_t *u = malloc((size_t)(H * W * C)), *v = malloc((size_t)(H * wo * C)), *r;
            for (int64_t i = 0; i < H * W * C; i++) {
                double s = 255.0 * x[bb * H * W * C + i];
                u[i] = (uint8_t)(s < 0 ? 0 : s > 255 ? 255 : s);
            }
            if (wo != W)
                pil_u8_pass(u, H, W, C, 0, wo, v);
            else
                memcpy(v, u, (size_t)(H * W * C));
            r = malloc((size_t)(ho * wo * C));
            if (ho != H)
                pil_u8_pass(v, H, wo, C, 1, ho, r);
            else
                memcpy(r, v, (size_t)(ho * wo * C));
            for (int64_t i = 0; i < ho * wo * C; i++) {
                double d = fabs(r[i] / 255.0 - got[bb * ho * wo * C + i]);
                worst_u8 = d > worst_u8 ? d : worst_u8;
            }
            free(u);
            free(v);
            free(r);
        }
        free(a);
        free(b);
        free(got);
        free(want);
        free(x);
        vkf_tensor_unref(&o);
        vkf_tensor_unref(&t);
    }
    fprintf(stderr, "lanczos: max |float - ComfyUI uint8 path| = %.2f/255\n", worst_u8 * 255);
    CHECK(worst_u8 <= 3.0 / 255 + 1e-6);
}

/* ---- Canny ---------------------------------------------------------------------- */

static void ref_canny(const float *img, int64_t B, int64_t H, int64_t W, float lo, float hi,
                      float *edges)
{
    int64_t n = H * W;
    float *g = malloc(sizeof(float) * (size_t)n), *t = malloc(sizeof(float) * (size_t)n),
          *bl = malloc(sizeof(float) * (size_t)n), *mag = malloc(sizeof(float) * (size_t)n);
    int *dir = malloc(sizeof(int) * (size_t)n);
    int64_t *stack = malloc(sizeof(int64_t) * (size_t)(n + 1));
    double kw[5], s = 0;
    for (int i = 0; i < 5; i++) {
        kw[i] = exp(-((i - 2.0) * (i - 2.0)) / 2.0);
        s += kw[i];
    }
    for (int i = 0; i < 5; i++)
        kw[i] /= s;
    for (int64_t b = 0; b < B; b++) {
        const float *im = img + b * n * 3;
        for (int64_t i = 0; i < n; i++)
            g[i] = 0.299f * im[3 * i] + 0.587f * im[3 * i + 1] + 0.114f * im[3 * i + 2];
        for (int64_t y = 0; y < H; y++)
            for (int64_t x = 0; x < W; x++) {
                double a = 0;
                for (int k = 0; k < 5; k++)
                    a += kw[k] * g[y * W + reflect(x + k - 2, W)];
                t[y * W + x] = (float)a;
            }
        for (int64_t y = 0; y < H; y++)
            for (int64_t x = 0; x < W; x++) {
                double a = 0;
                for (int k = 0; k < 5; k++)
                    a += kw[k] * t[reflect(y + k - 2, H) * W + x];
                bl[y * W + x] = (float)a;
            }
        for (int64_t y = 0; y < H; y++)
            for (int64_t x = 0; x < W; x++) {
#define P(dy, dx) bl[(y + (dy) < 0 ? 0 : y + (dy) >= H ? H - 1 : y + (dy)) * W + \
                     (x + (dx) < 0 ? 0 : x + (dx) >= W ? W - 1 : x + (dx))]
                double gx = -P(-1, -1) + P(-1, 1) - 2 * P(0, -1) + 2 * P(0, 1) - P(1, -1) + P(1, 1);
                double gy = -P(-1, -1) - 2 * P(-1, 0) - P(-1, 1) + P(1, -1) + 2 * P(1, 0) + P(1, 1);
#undef P
                mag[y * W + x] = (float)sqrt(gx * gx + gy * gy + 1e-6);
                /* kornia: round(atan2(gy, gx) in degrees / 45), mod 4 */
                double q = nearbyint(atan2(gy, gx) * 180.0 / M_PI / 45.0);
                dir[y * W + x] = (int)(((long)q % 4 + 4) % 4);
            }
        float *e = edges + b * n;
        for (int64_t y = 0; y < H; y++)
            for (int64_t x = 0; x < W; x++) {
                static const int dxs[4] = {1, 1, 0, 1}, dys[4] = {0, 1, 1, -1};
                int d = dir[y * W + x];
                float m = mag[y * W + x], n1 = 0, n2 = 0;
                int64_t ay = y + dys[d], ax = x + dxs[d], by = y - dys[d], bx = x - dxs[d];
                if (ay >= 0 && ax >= 0 && ay < H && ax < W)
                    n1 = mag[ay * W + ax];
                if (by >= 0 && bx >= 0 && by < H && bx < W)
                    n2 = mag[by * W + bx];
                float v = (m - n1 < m - n2 ? m - n1 : m - n2) > 0 ? m : 0;
                e[y * W + x] = (v > lo ? 0.5f : 0) + (v > hi ? 0.5f : 0);
            }
        /* hysteresis the way kornia iterates it: Jacobi sweeps to a fixed point */
        for (bool changed = true; changed;) {
            changed = false;
            memcpy(t, e, sizeof(float) * (size_t)n);
            for (int64_t y = 0; y < H; y++)
                for (int64_t x = 0; x < W; x++) {
                    if (t[y * W + x] != 0.5f)
                        continue;
                    for (int dy = -1; dy <= 1; dy++)
                        for (int dx = -1; dx <= 1; dx++) {
                            int64_t yy = y + dy, xx = x + dx;
                            if ((dy || dx) && yy >= 0 && xx >= 0 && yy < H && xx < W &&
                                t[yy * W + xx] == 1.0f && e[y * W + x] != 1.0f) {
                                e[y * W + x] = 1.0f;
                                changed = true;
                            }
                        }
                }
        }
        for (int64_t i = 0; i < n; i++)
            e[i] = e[i] == 1.0f ? 1.0f : 0.0f;
    }
    (void)stack;
    free(stack);
    free(g);
    free(t);
    free(bl);
    free(mag);
    free(dir);
}

static void test_canny(vkf_gpu *gpu)
{
    int64_t total_bad = 0, total = 0;
    static const int64_t cases[][3] = {{1, 23, 31}, {2, 16, 9}, {1, 3, 5}};
    for (size_t k = 0; k < VKF_ARRAY_SIZE(cases); k++) {
        int64_t B = cases[k][0], H = cases[k][1], W = cases[k][2], n = B * H * W;
        float *img = rand01(n * 3);
        /* a bright rectangle over noise: long edges for the hysteresis */
        for (int64_t b = 0; b < B; b++)
            for (int64_t y = 0; y < H; y++)
                for (int64_t x = 0; x < W; x++)
                    for (int c = 0; c < 3; c++) {
                        float *p = &img[((b * H + y) * W + x) * 3 + c];
                        *p = *p * 0.3f + (y > H / 4 && y < 3 * H / 4 && x > W / 3 ? 0.7f : 0.0f);
                    }
        int64_t sh[4] = {B, H, W, 3};
        vkf_tensor *t = gt_tensor(gpu, VKF_DTYPE_F32, 4, sh, img), *o = NULL;
        const float th[][2] = {{0.4f, 0.8f}, {0.1f, 0.3f}, {0.05f, 0.9f}};
        for (int j = 0; j < 3; j++) {
            CHECK_OK(vkf_op_canny_edges(gpu, t, th[j][0], th[j][1], &o));
            float *got = dl(o), *want = malloc(sizeof(float) * (size_t)n);
            int64_t *stack = malloc(sizeof(int64_t) * (size_t)(H * W + 1));
            vkf_canny_hysteresis(got, B, H, W, stack);
            ref_canny(img, B, H, W, th[j][0], th[j][1], want);
            int64_t bad = 0, on = 0;
            for (int64_t i = 0; i < n; i++) {
                bad += got[i] != want[i];
                on += want[i] == 1.0f;
                CHECK(got[i] == 0.0f || got[i] == 1.0f);
            }
            /* float rounding can flip a pixel sitting on a threshold or a
             * 22.5° sector boundary: allow 0.5% of the pixels */
            if (bad * 200 > n) {
                fprintf(stderr, "canny case %zu/%d: %lld of %lld pixels differ\n", k, j,
                        (long long)bad, (long long)n);
                gt_failures++;
            }
            total_bad += bad;
            total += n;
            if (k == 0 && j == 0)
                CHECK(on > W / 2);   /* the rectangle's edges were found */
            free(got);
            free(want);
            free(stack);
            vkf_tensor_unref(&o);
        }
        vkf_tensor_unref(&t);
        free(img);
    }
    fprintf(stderr, "canny: %lld of %lld pixels differ from the C reference\n",
            (long long)total_bad, (long long)total);
}

/* ---- PyTorch / PIL / scipy goldens (tests/reference/make_image_goldens.py) ---- */

static float *gramp(int64_t n, int mul, int mod)
{
    float *p = malloc(sizeof(float) * (size_t)n);
    for (int64_t i = 0; i < n; i++)
        p[i] = (float)((double)((i * mul) % mod) / 100.0);
    return p;
}

static void test_goldens(vkf_gpu *gpu)
{
    const char *root = getenv("VKF_SOURCE_ROOT");
    if (!root) {
        fprintf(stderr, "VKF_SOURCE_ROOT unset: skipping the goldens\n");
        return;
    }
    char path[1024];
    snprintf(path, sizeof(path), "%s/tests/reference/golden/image_ops.json", root);
    FILE *f = fopen(path, "rb");
    CHECK(f != NULL);
    if (!f)
        return;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *text = malloc((size_t)len + 1);
    CHECK(fread(text, 1, (size_t)len, f) == (size_t)len);
    text[len] = 0;
    fclose(f);
    cJSON *doc = cJSON_Parse(text);
    free(text);
    CHECK(doc != NULL);
    int64_t ish[4] = {1, 6, 9, 3}, msh[3] = {2, 7, 8}, ssh[3] = {1, 3, 5};
    float *hi = gramp(162, 37, 101), *hi2 = gramp(162, 53, 103), *hm = gramp(112, 29, 97),
          *hs = gramp(15, 41, 150);
    vkf_tensor *img = gt_tensor(gpu, VKF_DTYPE_F32, 4, ish, hi);
    vkf_tensor *img2 = gt_tensor(gpu, VKF_DTYPE_F32, 4, ish, hi2);
    vkf_tensor *mask = gt_tensor(gpu, VKF_DTYPE_F32, 3, msh, hm);
    vkf_tensor *src = gt_tensor(gpu, VKF_DTYPE_F32, 3, ssh, hs);
    static const char *const blend_names[] = {"normal", "multiply", "screen", "overlay",
                                              "soft_light", "difference"};
    static const char *const mask_ops[] = {"multiply", "add", "subtract", "and", "or", "xor"};
    double worst_lanczos = 0;
    int n = 0;
    cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(doc, "cases")) {
        const char *op = cJSON_GetObjectItem(c, "op")->valuestring;
        vkf_tensor *o = NULL;
        float tol = 1e-6f;
        char what[96];
        snprintf(what, sizeof(what), "golden %d (%s)", n++, op);
        if (!strcmp(op, "scale")) {
            const char *m = cJSON_GetObjectItem(c, "method")->valuestring;
            int w = cJSON_GetObjectItem(c, "width")->valueint, h = cJSON_GetObjectItem(c, "height")->valueint;
            bool crop = !strcmp(cJSON_GetObjectItem(c, "crop")->valuestring, "center");
            CHECK_OK(vkf_image_upscale(gpu, img, w, h, m, crop, &o));
            /* lanczos: float PIL filter vs ComfyUI's uint8 round trip */
            tol = !strcmp(m, "lanczos") ? 3.0f / 255 : 2e-6f;
            snprintf(what, sizeof(what), "golden %d (scale %s %dx%d %s)", n - 1, m, w, h,
                     crop ? "center" : "");
        } else if (!strcmp(op, "blur")) {
            CHECK_OK(vkf_op_image_blur(gpu, img, cJSON_GetObjectItem(c, "radius")->valueint,
                                       cJSON_GetObjectItem(c, "sigma")->valuedouble, &o));
            tol = 2e-6f;
        } else if (!strcmp(op, "sharpen")) {
            CHECK_OK(vkf_op_image_sharpen(gpu, img, cJSON_GetObjectItem(c, "radius")->valueint,
                                          cJSON_GetObjectItem(c, "sigma")->valuedouble,
                                          cJSON_GetObjectItem(c, "alpha")->valuedouble, &o));
            tol = 2e-5f;
        } else if (!strcmp(op, "blend")) {
            int m = 0;
            while (strcmp(blend_names[m], cJSON_GetObjectItem(c, "mode")->valuestring))
                m++;
            CHECK_OK(vkf_op_image_blend(gpu, img, img2, (vkf_image_blend_mode)m,
                                        cJSON_GetObjectItem(c, "factor")->valuedouble, &o));
            tol = 2e-6f;
        } else if (!strcmp(op, "grow")) {
            CHECK_OK(vkf_op_mask_grow(gpu, mask, cJSON_GetObjectItem(c, "expand")->valueint,
                                      cJSON_IsTrue(cJSON_GetObjectItem(c, "tapered")), &o));
            tol = 0;
        } else if (!strcmp(op, "feather")) {
            cJSON *a = cJSON_GetObjectItem(c, "lrtb");
            CHECK_OK(vkf_op_mask_feather(gpu, mask, cJSON_GetArrayItem(a, 0)->valueint,
                                         cJSON_GetArrayItem(a, 1)->valueint,
                                         cJSON_GetArrayItem(a, 2)->valueint,
                                         cJSON_GetArrayItem(a, 3)->valueint, &o));
            tol = 1e-7f;
        } else if (!strcmp(op, "threshold")) {
            CHECK_OK(vkf_op_mask_threshold(gpu, mask, (float)cJSON_GetObjectItem(c, "value")->valuedouble, &o));
            tol = 0;
        } else if (!strcmp(op, "mask_composite")) {
            int m = 0;
            while (strcmp(mask_ops[m], cJSON_GetObjectItem(c, "operation")->valuestring))
                m++;
            CHECK_OK(vkf_op_mask_composite(gpu, mask, src, cJSON_GetObjectItem(c, "x")->valueint,
                                           cJSON_GetObjectItem(c, "y")->valueint, (vkf_mask_op)m, &o));
            tol = 1e-7f;
        } else if (!strcmp(op, "outpaint")) {
            cJSON *a = cJSON_GetObjectItem(c, "args");
            int64_t v[7];
            for (int k = 0; k < 7; k++)
                v[k] = cJSON_GetArrayItem(a, k)->valueint;
            CHECK_OK(vkf_op_outpaint_mask(gpu, v[0], v[1], v[2], v[3], v[4], v[5], v[6], &o));
            tol = 6e-8f;
        } else {
            fprintf(stderr, "unknown golden op %s\n", op);
            gt_failures++;
            continue;
        }
        cJSON *shape = cJSON_GetObjectItem(c, "shape"), *out = cJSON_GetObjectItem(c, "out");
        int nd = cJSON_GetArraySize(shape);
        int64_t want_shape[4] = {0};
        for (int k = 0; k < nd && k < 4; k++)
            want_shape[k] = cJSON_GetArrayItem(shape, k)->valueint;
        /* the outpaint mask is [H, W] in ComfyUI, [1, H, W] here */
        if (!strcmp(op, "outpaint")) {
            want_shape[2] = want_shape[1];
            want_shape[1] = want_shape[0];
            want_shape[0] = 1;
            nd = 3;
        }
        check_shape(what, o, nd, want_shape);
        int64_t cnt = cJSON_GetArraySize(out);
        CHECK(cnt == vkf_tensor_numel(o));
        float *want = malloc(sizeof(float) * (size_t)cnt), *got = dl(o);
        int k = 0;
        cJSON *v;
        cJSON_ArrayForEach(v, out)
            want[k++] = (float)v->valuedouble;
        compare(what, got, want, cnt, tol);
        if (tol == 3.0f / 255)
            for (int64_t i = 0; i < cnt; i++)
                worst_lanczos = fmax(worst_lanczos, fabs((double)got[i] - want[i]));
        free(want);
        free(got);
        vkf_tensor_unref(&o);
    }
    CHECK(n >= 40);
    fprintf(stderr, "goldens: %d cases; lanczos vs PIL uint8: max %.2f/255\n", n, worst_lanczos * 255);
    cJSON_Delete(doc);
    vkf_tensor_unref(&img);
    vkf_tensor_unref(&img2);
    vkf_tensor_unref(&mask);
    vkf_tensor_unref(&src);
    free(hi);
    free(hi2);
    free(hm);
    free(hs);
}

int main(void)
{
    static const uint64_t chunks[] = {0, 16384};
    for (size_t c = 0; c < VKF_ARRAY_SIZE(chunks); c++) {
        vkf_gpu *gpu = gt_gpu_open((vkf_gpu_params){.max_chunk_bytes = chunks[c]});
        gt_seed(7 + c);
        test_blend(gpu);
        test_mask_composite(gpu);
        test_feather(gpu);
        test_outpaint_mask(gpu);
        test_grow(gpu);
        test_fill_expand(gpu, chunks[c] == 0);
        test_blur_sharpen(gpu);
        test_lanczos(gpu);
        test_canny(gpu);
        test_goldens(gpu);
        int rc = gt_finish(&gpu);
        if (rc)
            return rc;
    }
    return 0;
}
