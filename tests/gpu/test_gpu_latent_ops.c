/*
 * Latent-node ops against plain-C references: masked composite (clipping,
 * batch wrap, no mask), 'area' and 'bicubic' resampling as torch computes
 * them, and ComfyUI's bislerp (including zero and parallel vectors).
 */
#include "gpu_test.h"

/* ---- references ------------------------------------------------------------ */

static void ref_composite(const float *d, const int64_t *ds, const float *s, const int64_t *ss,
                          const float *m, int64_t bm, int64_t left, int64_t top, float *o)
{
    int64_t B = ds[0], C = ds[1], H = ds[2], W = ds[3];
    for (int64_t b = 0; b < B; b++)
    for (int64_t c = 0; c < C; c++)
    for (int64_t y = 0; y < H; y++)
    for (int64_t x = 0; x < W; x++) {
        int64_t i = ((b * C + c) * H + y) * W + x;
        int64_t sy = y - top, sx = x - left;
        if (sy < 0 || sx < 0 || sy >= ss[2] || sx >= ss[3]) {
            o[i] = d[i];
            continue;
        }
        float sv = s[(((b % ss[0]) * C + c) * ss[2] + sy) * ss[3] + sx];
        if (!m) {
            o[i] = sv;
            continue;
        }
        float mv = m[((b % bm) * ss[2] + sy) * ss[3] + sx];
        o[i] = mv * sv + (1.0f - mv) * d[i];
    }
}

static void ref_area(const float *x, int64_t planes, int64_t h, int64_t w, int64_t ho,
                     int64_t wo, float *o)
{
    for (int64_t p = 0; p < planes; p++)
    for (int64_t oy = 0; oy < ho; oy++)
    for (int64_t ox = 0; ox < wo; ox++) {
        int64_t y0 = oy * h / ho, y1 = ((oy + 1) * h + ho - 1) / ho;
        int64_t x0 = ox * w / wo, x1 = ((ox + 1) * w + wo - 1) / wo;
        double sum = 0;
        for (int64_t iy = y0; iy < y1; iy++)
            for (int64_t ix = x0; ix < x1; ix++)
                sum += x[(p * h + iy) * w + ix];
        o[(p * ho + oy) * wo + ox] = (float)(sum / (double)((y1 - y0) * (x1 - x0)));
    }
}

static double cubic_w(double t)
{
    const double A = -0.75;
    t = fabs(t);
    if (t <= 1)
        return ((A + 2) * t - (A + 3)) * t * t + 1;
    if (t < 2)
        return ((A * t - 5 * A) * t + 8 * A) * t - 4 * A;
    return 0;
}

static void ref_bicubic(const float *x, int64_t planes, int64_t h, int64_t w, int64_t ho,
                        int64_t wo, float *o)
{
    for (int64_t p = 0; p < planes; p++)
    for (int64_t oy = 0; oy < ho; oy++)
    for (int64_t ox = 0; ox < wo; ox++) {
        double ry = (double)h / ho * (oy + 0.5) - 0.5, rx = (double)w / wo * (ox + 0.5) - 0.5;
        int64_t iy = (int64_t)floor(ry), ix = (int64_t)floor(rx);
        if (iy > h - 1)
            iy = h - 1;
        if (ix > w - 1)
            ix = w - 1;
        double ty = ry - iy, tx = rx - ix;
        double acc = 0;
        for (int j = -1; j <= 2; j++) {
            int64_t yy = iy + j < 0 ? 0 : iy + j > h - 1 ? h - 1 : iy + j;
            for (int k = -1; k <= 2; k++) {
                int64_t xx = ix + k < 0 ? 0 : ix + k > w - 1 ? w - 1 : ix + k;
                acc += x[(p * h + yy) * w + xx] * cubic_w(ty - j) * cubic_w(tx - k);
            }
        }
        o[(p * ho + oy) * wo + ox] = (float)acc;
    }
}

/* ComfyUI's slerp of two C-vectors. */
static void ref_slerp(const double *a, const double *b, int C, double r, double *out)
{
    double na = 0, nb = 0, dot = 0;
    for (int c = 0; c < C; c++) {
        na += a[c] * a[c];
        nb += b[c] * b[c];
    }
    na = sqrt(na);
    nb = sqrt(nb);
    for (int c = 0; c < C; c++)
        dot += (na ? a[c] / na : 0) * (nb ? b[c] / nb : 0);
    if (dot > 1 - 1e-5) {
        memcpy(out, a, sizeof(double) * (size_t)C);
        return;
    }
    if (dot < 1e-5 - 1) {
        for (int c = 0; c < C; c++)
            out[c] = a[c] * (1 - r) + b[c] * r;
        return;
    }
    double om = acos(dot), so = sin(om);
    for (int c = 0; c < C; c++)
        out[c] = (sin((1 - r) * om) / so * (na ? a[c] / na : 0) +
                  sin(r * om) / so * (nb ? b[c] / nb : 0)) * (na * (1 - r) + nb * r);
}

/* Source pair and ratio of output index j (generate_bilinear_data). */
static void ref_pair(int64_t j, int64_t in, int64_t out, int64_t *c1, int64_t *c2, double *r)
{
    double src = (double)in / out * (j + 0.5) - 0.5;
    if (src < 0)
        src = 0;
    int64_t i0 = (int64_t)src;
    if (i0 > in - 1)
        i0 = in - 1;
    *c1 = i0;
    *c2 = i0 + 1 < in ? i0 + 1 : in - 1;
    *r = i0 < in - 1 ? src - i0 : 0;
}

static void ref_bislerp(const float *x, int64_t N, int C, int64_t h, int64_t w, int64_t ho,
                        int64_t wo, float *o)
{
    double *mid = malloc(sizeof(double) * (size_t)(N * C * h * wo));
    double a[64], b[64], res[64];
    for (int64_t n = 0; n < N; n++)
    for (int64_t y = 0; y < h; y++)
    for (int64_t ox = 0; ox < wo; ox++) {
        int64_t c1, c2;
        double r;
        ref_pair(ox, w, wo, &c1, &c2, &r);
        for (int c = 0; c < C; c++) {
            a[c] = x[((n * C + c) * h + y) * w + c1];
            b[c] = x[((n * C + c) * h + y) * w + c2];
        }
        ref_slerp(a, b, C, r, res);
        for (int c = 0; c < C; c++)
            mid[((n * C + c) * h + y) * wo + ox] = res[c];
    }
    for (int64_t n = 0; n < N; n++)
    for (int64_t oy = 0; oy < ho; oy++)
    for (int64_t ox = 0; ox < wo; ox++) {
        int64_t c1, c2;
        double r;
        ref_pair(oy, h, ho, &c1, &c2, &r);
        for (int c = 0; c < C; c++) {
            a[c] = mid[((n * C + c) * h + c1) * wo + ox];
            b[c] = mid[((n * C + c) * h + c2) * wo + ox];
        }
        ref_slerp(a, b, C, r, res);
        for (int c = 0; c < C; c++)
            o[((n * C + c) * ho + oy) * wo + ox] = (float)res[c];
    }
    free(mid);
}

/* ---- tests ------------------------------------------------------------------- */

static void test_composite(vkf_gpu *gpu)
{
    static const struct {
        int64_t d[4], s[4];
        int64_t bm, left, top;
        bool mask;
    } cases[] = {
        {{1, 4, 8, 8}, {1, 4, 3, 5}, 0, 2, 1, false},
        {{2, 4, 8, 8}, {1, 4, 6, 6}, 1, 5, 4, true},      /* clipped, batch wrap */
        {{3, 4, 7, 9}, {3, 4, 7, 9}, 2, 0, 0, true},
        {{2, 3, 5, 6}, {2, 3, 2, 2}, 1, 9, 0, true},      /* fully outside */
        {{1, 16, 33, 17}, {1, 16, 40, 40}, 1, 3, 30, true},
    };
    for (size_t k = 0; k < VKF_ARRAY_SIZE(cases); k++) {
        int64_t nd = cases[k].d[0] * cases[k].d[1] * cases[k].d[2] * cases[k].d[3];
        int64_t ns = cases[k].s[0] * cases[k].s[1] * cases[k].s[2] * cases[k].s[3];
        int64_t mshape[3] = {cases[k].bm, cases[k].s[2], cases[k].s[3]};
        int64_t nm = mshape[0] * mshape[1] * mshape[2];
        float *hd = gt_random(nd), *hs = gt_random(ns), *hm = gt_random(nm);
        for (int64_t i = 0; i < nm; i++)
            hm[i] = hm[i] * 0.5f + 0.5f;
        vkf_tensor *d = gt_tensor(gpu, VKF_DTYPE_F32, 4, cases[k].d, hd);
        vkf_tensor *s = gt_tensor(gpu, VKF_DTYPE_F16, 4, cases[k].s, hs);
        vkf_tensor *m = cases[k].mask ? gt_tensor(gpu, VKF_DTYPE_F32, 3, mshape, hm) : NULL;
        vkf_tensor *o = NULL;
        CHECK_OK(vkf_op_composite(gpu, d, s, m, cases[k].left, cases[k].top, &o));
        float *want = malloc(sizeof(float) * (size_t)nd), *got = gt_download(o);
        ref_composite(hd, cases[k].d, hs, cases[k].s, m ? hm : NULL, cases[k].bm,
                      cases[k].left, cases[k].top, want);
        char what[64];
        snprintf(what, sizeof(what), "composite case %zu", k);
        gt_compare(what, got, want, nd, 1e-6f, 1e-6f);
        free(want);
        free(got);
        free(hd);
        free(hs);
        free(hm);
        vkf_tensor_unref(&o);
        vkf_tensor_unref(&d);
        vkf_tensor_unref(&s);
        vkf_tensor_unref(&m);
    }
    /* A view (a batch slice) as dst works like its contiguous copy. */
    int64_t sh[4] = {3, 4, 6, 6}, ss[4] = {1, 4, 2, 3};
    float *hd = gt_random(3 * 4 * 36), *hs = gt_random(24);
    vkf_tensor *d = gt_tensor(gpu, VKF_DTYPE_F32, 4, sh, hd), *s = gt_tensor(gpu, VKF_DTYPE_F32, 4, ss, hs);
    vkf_tensor *v = NULL, *o = NULL;
    CHECK_OK(vkf_tensor_slice(d, 0, 1, 2, &v));
    CHECK_OK(vkf_op_composite(gpu, v, s, NULL, 1, 2, &o));
    int64_t vs[4] = {2, 4, 6, 6};
    float *want = malloc(sizeof(float) * 288), *got = gt_download(o);
    ref_composite(hd + 144, vs, hs, ss, NULL, 1, 1, 2, want);
    gt_compare("composite of a view", got, want, 288, 0, 0);
    free(want);
    free(got);
    free(hd);
    free(hs);
    vkf_tensor_unref(&o);
    vkf_tensor_unref(&v);
    vkf_tensor_unref(&d);
    vkf_tensor_unref(&s);
}

static void test_resample(vkf_gpu *gpu)
{
    static const int64_t sizes[][4] = {
        {8, 8, 16, 16}, {8, 8, 12, 20}, {13, 7, 5, 3}, {16, 16, 8, 8},
        {9, 11, 9, 11}, {5, 6, 17, 4}, {1, 1, 3, 2},
    };
    for (size_t k = 0; k < VKF_ARRAY_SIZE(sizes); k++) {
        int64_t h = sizes[k][0], w = sizes[k][1], ho = sizes[k][2], wo = sizes[k][3];
        int64_t shape[4] = {2, 4, h, w};
        int64_t n = 8 * h * w, no = 8 * ho * wo;
        float *hx = gt_random(n);
        if (k == 2) {   /* a zero vector and two parallel ones for bislerp */
            for (int c = 0; c < 4; c++) {
                hx[c * h * w] = 0;
                hx[c * h * w + 1] = 0.5f * (float)(c + 1);
                hx[c * h * w + 2] = 0.25f * (float)(c + 1);
            }
        }
        vkf_tensor *x = gt_tensor(gpu, VKF_DTYPE_F32, 4, shape, hx);
        float *want = malloc(sizeof(float) * (size_t)no);
        for (int mode = VKF_RESAMPLE_AREA; mode <= VKF_RESAMPLE_BISLERP; mode++) {
            vkf_tensor *o = NULL;
            CHECK_OK(vkf_op_resample_ext(gpu, x, (vkf_resample_ext)mode, ho, wo, &o));
            CHECK(vkf_tensor_shape(o)[2] == ho && vkf_tensor_shape(o)[3] == wo);
            if (mode == VKF_RESAMPLE_AREA)
                ref_area(hx, 8, h, w, ho, wo, want);
            else if (mode == VKF_RESAMPLE_BICUBIC)
                ref_bicubic(hx, 8, h, w, ho, wo, want);
            else
                ref_bislerp(hx, 2, 4, h, w, ho, wo, want);
            float *got = gt_download(o);
            char what[80];
            snprintf(what, sizeof(what), "resample mode %d %lldx%lld -> %lldx%lld", mode,
                     (long long)h, (long long)w, (long long)ho, (long long)wo);
            /* bislerp: acos near ±1 magnifies the f32 rounding of the dot
             * product (torch's f32 slerp has the same spread). */
            if (mode == VKF_RESAMPLE_BISLERP)
                gt_compare(what, got, want, no, 2e-3f, 2e-4f);
            else
                gt_compare(what, got, want, no, 1e-4f, 2e-5f);
            free(got);
            vkf_tensor_unref(&o);
        }
        free(want);
        free(hx);
        vkf_tensor_unref(&x);
    }
    /* Area on a 3-D [planes, h, w] tensor; bislerp refuses 5-D. */
    int64_t s3[3] = {3, 10, 10}, s5[5] = {1, 4, 2, 3, 3};
    float *hx = gt_random(300), want[3 * 16];
    vkf_tensor *x = gt_tensor(gpu, VKF_DTYPE_F32, 3, s3, hx), *o = NULL;
    CHECK_OK(vkf_op_resample_ext(gpu, x, VKF_RESAMPLE_AREA, 4, 4, &o));
    ref_area(hx, 3, 10, 10, 4, 4, want);
    float *got = gt_download(o);
    gt_compare("area 3-D", got, want, 48, 1e-5f, 1e-6f);
    free(got);
    free(hx);
    vkf_tensor_unref(&o);
    vkf_tensor_unref(&x);
    fprintf(stderr, "expected: a requirement failure about 4-D bislerp\n");
    CHECK_OK(vkf_tensor_create(gpu, VKF_DTYPE_F32, 5, s5, &x));
    CHECK(vkf_op_resample_ext(gpu, x, VKF_RESAMPLE_BISLERP, 6, 6, &o) < 0);
    CHECK(o == NULL);
    vkf_tensor_unref(&x);
}

int main(void)
{
    vkf_gpu *gpu = gt_gpu_open((vkf_gpu_params){0});
    gt_seed(11);
    test_composite(gpu);
    test_resample(gpu);
    return gt_finish(&gpu);
}
