/*
 * The sampling driver (core/models/guidance.c) on a fake diffusion model
 * whose forward is a small composition of GPU ops:
 *
 *   out[r, c] = 0.5·x[r, c] + 0.25·mean_hw(x[r, c]) + mean_t(ctx[r, :, c])
 *               + 0.001·t[r]   (+ 0.25·x[r, 4] + 0.125·x[r, 5 + c] with 9
 *               input channels)
 *
 * The spatial mean makes a crop's output differ from the full image's, so
 * area conditioning is visible; the token mean is unchanged by ComfyUI's
 * repeat padding (and changed by zero padding).
 *
 * Expected values come from a plain restatement in the test (double
 * precision, one entry at a time, no batching) and, for areas / masks /
 * set_area_to_bounds / the opposite-area copies, from goldens written by
 * tests/reference/make_guidance_goldens.py (torch, ComfyUI's
 * calc_cond_batch math).  Tolerance: 2e-5 absolute + relative (the GPU
 * sums in another order).
 */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <unistd.h>

#include "../gpu/gpu_test.h"
#include "vkflow/guidance.h"
#include "vkflow/vkflow.h"

#define CTXD 8      /* context width */
#define TOL 2e-5f

static vkf_gpu *gpu;
static vkf_log quiet;

/* ------------------------------------------------------------------------ */
/* the fake model                                                           */

typedef struct fake_dm {
    vkf_diffusion_model base;
    long calls;
} fake_dm;

static int fake_forward(vkf_diffusion_model *m, const vkf_dm_input *in, vkf_tensor **out)
{
    vkf_gpu *g = m->gpu;
    const int64_t *xs = vkf_tensor_shape(in->x);
    int64_t R = xs[0], h = xs[2], w = xs[3];
    const int64_t *cs = vkf_tensor_shape(in->context);
    int64_t L = cs[1];
    vkf_tensor *v = NULL, *x4 = NULL, *a = NULL, *pool = NULL, *p2 = NULL, *ones = NULL,
               *mm = NULL, *mc = NULL, *mr = NULL, *tt = NULL, *s1 = NULL, *s2 = NULL,
               *s3 = NULL, *t1 = NULL, *t2 = NULL;
    int err;
    ((fake_dm *)m)->calls++;
    VKF_TRY(vkf_tensor_slice(in->x, 1, 0, 4, &v));
    VKF_TRY(vkf_op_contiguous(g, v, &x4));
    vkf_tensor_unref(&v);
    VKF_TRY(vkf_op_unary(g, VKF_UN_SCALE, x4, 0.5f, 0.0f, &a));
    vkf_pool2d_params pp = {.kernel = {(int)h, (int)w}};
    VKF_TRY(vkf_op_avg_pool2d(g, x4, &pp, &pool));
    VKF_TRY(vkf_op_unary(g, VKF_UN_SCALE, pool, 0.25f, 0.0f, &p2));
    /* token mean: [R, 1, L]·[R, L, D] */
    int64_t os[3] = {R, 1, L};
    float *onesh = malloc((size_t)(R * L) * sizeof(float));
    for (int64_t i = 0; i < R * L; i++)
        onesh[i] = 1.0f / (float)L;
    VKF_TRY(vkf_tensor_create(g, VKF_DTYPE_F32, 3, os, &ones));
    VKF_TRY(vkf_tensor_upload(ones, onesh));
    free(onesh);
    VKF_TRY(vkf_op_matmul(g, ones, in->context, false, NULL, &mm));
    VKF_TRY(vkf_tensor_slice(mm, 2, 0, 4, &v));
    VKF_TRY(vkf_op_contiguous(g, v, &mc));
    vkf_tensor_unref(&v);
    int64_t rs[4] = {R, 4, 1, 1};
    VKF_TRY(vkf_tensor_reshape(mc, 4, rs, &mr));
    float *th = malloc((size_t)R * sizeof(float));
    for (int64_t r = 0; r < R; r++)
        th[r] = 0.001f * in->timesteps[r];
    int64_t ts[4] = {R, 1, 1, 1};
    VKF_TRY(vkf_tensor_create(g, VKF_DTYPE_F32, 4, ts, &tt));
    VKF_TRY(vkf_tensor_upload(tt, th));
    free(th);
    VKF_TRY(vkf_op_binary(g, VKF_BIN_ADD, a, p2, &s1));
    VKF_TRY(vkf_op_binary(g, VKF_BIN_ADD, s1, mr, &s2));
    VKF_TRY(vkf_op_binary(g, VKF_BIN_ADD, s2, tt, &s3));
    if (m->in_channels == 9) {
        vkf_tensor *c1 = NULL, *c2 = NULL, *k1 = NULL, *k2 = NULL;
        VKF_TRY(vkf_tensor_slice(in->x, 1, 4, 1, &v));
        VKF_TRY(vkf_op_contiguous(g, v, &c1));
        vkf_tensor_unref(&v);
        VKF_TRY(vkf_op_unary(g, VKF_UN_SCALE, c1, 0.25f, 0.0f, &k1));
        VKF_TRY(vkf_tensor_slice(in->x, 1, 5, 4, &v));
        VKF_TRY(vkf_op_contiguous(g, v, &c2));
        vkf_tensor_unref(&v);
        VKF_TRY(vkf_op_unary(g, VKF_UN_SCALE, c2, 0.125f, 0.0f, &k2));
        err = vkf_op_binary(g, VKF_BIN_ADD, s3, k1, &t1);
        if (err >= 0)
            err = vkf_op_binary(g, VKF_BIN_ADD, t1, k2, &t2);
        vkf_tensor_unref(&c1);
        vkf_tensor_unref(&c2);
        vkf_tensor_unref(&k1);
        vkf_tensor_unref(&k2);
        VKF_TRY(err);
        *out = vkf_tensor_ref(t2);
    } else {
        *out = vkf_tensor_ref(s3);
    }
fail:
    vkf_tensor_unref(&v);
    vkf_tensor_unref(&x4);
    vkf_tensor_unref(&a);
    vkf_tensor_unref(&pool);
    vkf_tensor_unref(&p2);
    vkf_tensor_unref(&ones);
    vkf_tensor_unref(&mm);
    vkf_tensor_unref(&mc);
    vkf_tensor_unref(&mr);
    vkf_tensor_unref(&tt);
    vkf_tensor_unref(&s1);
    vkf_tensor_unref(&s2);
    vkf_tensor_unref(&s3);
    vkf_tensor_unref(&t1);
    vkf_tensor_unref(&t2);
    return err;
}

static void fake_destroy(vkf_diffusion_model *m)
{
    free(m);
}

static fake_dm *last_fake;

static vkf_model *fake_model_on(vkf_gpu *g, int in_channels)
{
    fake_dm *f = calloc(1, sizeof(*f));
    f->base.refs = 1;
    snprintf(f->base.arch, sizeof(f->base.arch), "fake");
    f->base.in_channels = in_channels;
    f->base.latent_channels = 4;
    f->base.out_channels = 4;
    f->base.context_dim = CTXD;
    f->base.prediction = VKF_PREDICTION_EPS;
    f->base.gpu = g;
    f->base.forward = fake_forward;
    f->base.destroy = fake_destroy;
    vkf_model_sampling *ms = NULL;
    CHECK_OK(vkf_model_sampling_discrete(&ms, VKF_PREDICTION_EPS, 0.00085, 0.012, 1000, false));
    vkf_latent_format lf = {.channels = 4, .scale_factor = 0.18215f, .shift = 0.0f};
    vkf_model *m = vkf_model_new(&f->base, ms, lf);
    vkf_diffusion_model *d = &f->base;
    vkf_diffusion_model_unref(&d);
    last_fake = f;
    return m;
}

static vkf_model *fake_model(int in_channels)
{
    return fake_model_on(gpu, in_channels);
}

static void unref_obj(void *p)
{
    vkf_object *o = p;
    vkf_object_unref(&o);
}

/* ------------------------------------------------------------------------ */
/* host restatement                                                          */

typedef struct hcond {
    float *ctx;          /* [bc, T, CTXD] */
    int64_t bc, T;
    vkf_tensor *t;
} hcond;

static hcond make_cond(int64_t bc, int64_t T, uint64_t seed)
{
    hcond c = {.bc = bc, .T = T};
    gt_seed(seed);
    c.ctx = gt_random(bc * T * CTXD);
    int64_t s[3] = {bc, T, CTXD};
    c.t = gt_tensor(gpu, VKF_DTYPE_F32, 3, s, c.ctx);
    return c;
}

static void free_cond(hcond *c)
{
    free(c->ctx);
    vkf_tensor_unref(&c->t);
}

/* CONDITIONING with n entries made from conds (tensor refs taken). */
static vkf_conditioning *conditioning(int n, const hcond *const *cs)
{
    vkf_conditioning *c = vkf_conditioning_new(n);
    for (int i = 0; i < n; i++)
        c->e[i].cond = vkf_tensor_ref(cs[i]->t);
    return c;
}

/* The fake model on one row of the full latent (no area): out[4·h·w]. */
static void ref_model_row(const double *xin, int64_t h, int64_t w, const hcond *c, int64_t row,
                          double t, const double *extra /* [5·h·w] or NULL */, double *out)
{
    const float *ctx = c->ctx + (row % c->bc) * c->T * CTXD;
    for (int ch = 0; ch < 4; ch++) {
        double mean = 0, tm = 0;
        for (int64_t i = 0; i < h * w; i++)
            mean += xin[ch * h * w + i];
        mean /= (double)(h * w);
        for (int64_t k = 0; k < c->T; k++)
            tm += ctx[k * CTXD + ch];
        tm /= (double)c->T;
        for (int64_t i = 0; i < h * w; i++) {
            double v = 0.5 * xin[ch * h * w + i] + 0.25 * mean + tm + 0.001 * t;
            if (extra)
                v += 0.25 * extra[i] + 0.125 * extra[(1 + ch) * h * w + i];
            out[ch * h * w + i] = v;
        }
    }
}

/* EPS denoised for a whole [B, 4, h, w] latent with one cond. */
static void ref_denoised(const vkf_model *m, const float *x, int64_t B, int64_t h, int64_t w,
                         double sigma, const hcond *c, const double *extra, double *out)
{
    int64_t n = 4 * h * w;
    double *xin = malloc((size_t)n * sizeof(double)), *o = malloc((size_t)n * sizeof(double));
    double cin = 1.0 / sqrt(sigma * sigma + 1.0);
    double t = vkf_model_sampling_timestep(m->ms, (float)sigma);
    for (int64_t b = 0; b < B; b++) {
        for (int64_t i = 0; i < n; i++)
            xin[i] = x[b * n + i] * cin;
        ref_model_row(xin, h, w, c, b, t, extra ? extra + b * 5 * h * w : NULL, o);
        for (int64_t i = 0; i < n; i++)
            out[b * n + i] = x[b * n + i] - o[i] * sigma;
    }
    free(xin);
    free(o);
}

static void cmp_d(const char *what, const float *got, const double *want, size_t n)
{
    float *wf = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++)
        wf[i] = (float)want[i];
    gt_compare(what, got, wf, (int64_t)n, TOL, TOL);
    free(wf);
}

/* ------------------------------------------------------------------------ */
/* CFG, cfg = 1, batching, timestep ranges, strength, dual CFG              */

static void test_cfg(void)
{
    vkf_model *m = fake_model(4);
    const int64_t B = 2, h = 6, w = 5, n = B * 4 * h * w;
    int64_t shape[4] = {B, 4, h, w};
    hcond cp = make_cond(1, 3, 1), cn = make_cond(1, 6, 2);
    const hcond *lp[] = {&cp}, *ln[] = {&cn};
    vkf_conditioning *pos = conditioning(1, lp), *neg = conditioning(1, ln);
    gt_seed(7);
    float *x = gt_random(n);
    for (int64_t i = 0; i < n; i++)
        x[i] *= 4.0f;
    float sigma = 3.0f;
    double *dc = malloc((size_t)n * sizeof(double)), *du = malloc((size_t)n * sizeof(double)),
           *want = malloc((size_t)n * sizeof(double));
    ref_denoised(m, x, B, h, w, sigma, &cp, NULL, dc);
    ref_denoised(m, x, B, h, w, sigma, &cn, NULL, du);
    float *got = malloc((size_t)n * sizeof(float)), *unc = malloc((size_t)n * sizeof(float));
    vkf_errbuf e = {{0}};
    long fw, rows;

    /* cfg 7.5: cond and uncond (3 and 6 tokens: lcm 6) in one forward */
    vkf_guide_spec spec = {.model = m, .positive = pos, .negative = neg, .cfg = 7.5};
    vkf_guidance *g = NULL;
    CHECK_OK(vkf_guidance_create(&spec, shape, 4, NULL, NULL, &g, &e));
    CHECK_OK(vkf_guidance_predict(g, x, sigma, got, unc));
    for (int64_t i = 0; i < n; i++)
        want[i] = du[i] + (dc[i] - du[i]) * 7.5;
    cmp_d("cfg 7.5", got, want, (size_t)n);
    cmp_d("cfg 7.5 uncond_denoised", unc, du, (size_t)n);
    vkf_guidance_stats(g, &fw, &rows);
    CHECK(fw == 1 && rows == 2 * B);
    vkf_guidance_destroy(&g);

    /* cfg 1: the negative is never run ... */
    spec.cfg = 1.0;
    CHECK_OK(vkf_guidance_create(&spec, shape, 4, NULL, NULL, &g, &e));
    CHECK_OK(vkf_guidance_predict(g, x, sigma, got, NULL));
    cmp_d("cfg 1", got, dc, (size_t)n);
    vkf_guidance_stats(g, &fw, &rows);
    CHECK(fw == 1 && rows == B);
    /* ... unless a CFG++ sampler asks for the unconditional prediction */
    CHECK_OK(vkf_guidance_predict(g, x, sigma, got, unc));
    cmp_d("cfg 1 with uncond", got, dc, (size_t)n);
    cmp_d("cfg 1 uncond_denoised", unc, du, (size_t)n);
    vkf_guidance_stats(g, &fw, &rows);
    CHECK(fw == 2 && rows == 3 * B);
    vkf_guidance_destroy(&g);

    /* BasicGuider: positive only */
    vkf_guide_spec basic = {.model = m, .positive = pos, .cfg = 1.0};
    CHECK_OK(vkf_guidance_create(&basic, shape, 4, NULL, NULL, &g, &e));
    CHECK_OK(vkf_guidance_predict(g, x, sigma, got, NULL));
    cmp_d("basic guider", got, dc, (size_t)n);
    vkf_guidance_destroy(&g);

    /* max_batch_rows splits the work, the result is the same */
    spec.cfg = 7.5;
    spec.max_batch_rows = (int)B;
    CHECK_OK(vkf_guidance_create(&spec, shape, 4, NULL, NULL, &g, &e));
    CHECK_OK(vkf_guidance_predict(g, x, sigma, got, NULL));
    for (int64_t i = 0; i < n; i++)
        want[i] = du[i] + (dc[i] - du[i]) * 7.5;
    cmp_d("cfg 7.5 split", got, want, (size_t)n);
    vkf_guidance_stats(g, &fw, &rows);
    CHECK(fw == 2 && rows == 2 * B);
    vkf_guidance_destroy(&g);
    spec.max_batch_rows = 0;

    /* 2 and 10 tokens: lcm 10 is 5x the shorter, not batched (limit 4x) */
    hcond c2 = make_cond(1, 2, 3), c10 = make_cond(1, 10, 4);
    const hcond *l2[] = {&c2}, *l10[] = {&c10};
    vkf_conditioning *p2 = conditioning(1, l2), *n10 = conditioning(1, l10);
    vkf_guide_spec s2 = {.model = m, .positive = p2, .negative = n10, .cfg = 3.0};
    CHECK_OK(vkf_guidance_create(&s2, shape, 4, NULL, NULL, &g, &e));
    CHECK_OK(vkf_guidance_predict(g, x, sigma, got, NULL));
    ref_denoised(m, x, B, h, w, sigma, &c2, NULL, dc);
    ref_denoised(m, x, B, h, w, sigma, &c10, NULL, du);
    for (int64_t i = 0; i < n; i++)
        want[i] = du[i] + (dc[i] - du[i]) * 3.0;
    cmp_d("tokens 2 vs 10", got, want, (size_t)n);
    vkf_guidance_stats(g, &fw, &rows);
    CHECK(fw == 2);
    vkf_guidance_destroy(&g);

    /* a [2, T, D] cond gives row b of the batch its row b */
    hcond cb = make_cond(2, 4, 5);
    const hcond *lb[] = {&cb};
    vkf_conditioning *pb = conditioning(1, lb);
    vkf_guide_spec sb = {.model = m, .positive = pb, .negative = neg, .cfg = 2.0};
    CHECK_OK(vkf_guidance_create(&sb, shape, 4, NULL, NULL, &g, &e));
    CHECK_OK(vkf_guidance_predict(g, x, sigma, got, NULL));
    ref_denoised(m, x, B, h, w, sigma, &cb, NULL, dc);
    ref_denoised(m, x, B, h, w, sigma, &cn, NULL, du);
    for (int64_t i = 0; i < n; i++)
        want[i] = du[i] + (dc[i] - du[i]) * 2.0;
    cmp_d("batched cond rows", got, want, (size_t)n);
    vkf_guidance_destroy(&g);

    /* strength and timestep ranges: A for the first half of the schedule
     * (strength 1), B (strength 3) throughout, C for the second half */
    hcond ca = make_cond(1, 3, 11), cbb = make_cond(1, 3, 12), cc = make_cond(1, 5, 13);
    const hcond *lr[] = {&ca, &cbb, &cc};
    vkf_conditioning *pr = conditioning(3, lr);
    pr->e[0].end_percent = 0.5;
    pr->e[1].strength = 3.0f;
    pr->e[2].start_percent = 0.5;
    double mid = vkf_model_sampling_percent_to_sigma(m->ms, 0.5);
    vkf_guide_spec sr = {.model = m, .positive = pr, .negative = neg, .cfg = 1.0};
    CHECK_OK(vkf_guidance_create(&sr, shape, 4, NULL, NULL, &g, &e));
    double *da = malloc((size_t)n * sizeof(double)), *db = malloc((size_t)n * sizeof(double));
    for (int pass = 0; pass < 2; pass++) {
        float sg = pass == 0 ? (float)(mid * 2) : (float)(mid / 2);
        ref_denoised(m, x, B, h, w, sg, pass == 0 ? &ca : &cc, NULL, da);
        ref_denoised(m, x, B, h, w, sg, &cbb, NULL, db);
        for (int64_t i = 0; i < n; i++)
            want[i] = (da[i] + 3.0 * db[i]) / 4.0;
        CHECK_OK(vkf_guidance_predict(g, x, sg, got, NULL));
        cmp_d(pass == 0 ? "timestep range, high sigma" : "timestep range, low sigma", got, want,
              (size_t)n);
    }
    vkf_guidance_destroy(&g);

    /* DualCFGGuider (regular): n + (m - n)·cfg2 + (p - m)·cfg1 */
    const hcond *lm[] = {&c2};
    vkf_conditioning *mid_c = conditioning(1, lm);
    vkf_guide_spec sd = {.model = m, .positive = pos, .middle = mid_c, .negative = neg,
                         .cfg = 4.0, .cfg2 = 1.5, .dual = true};
    CHECK_OK(vkf_guidance_create(&sd, shape, 4, NULL, NULL, &g, &e));
    CHECK_OK(vkf_guidance_predict(g, x, sigma, got, NULL));
    double *dm_ = malloc((size_t)n * sizeof(double));
    ref_denoised(m, x, B, h, w, sigma, &cp, NULL, dc);
    ref_denoised(m, x, B, h, w, sigma, &cn, NULL, du);
    ref_denoised(m, x, B, h, w, sigma, &c2, NULL, dm_);
    for (int64_t i = 0; i < n; i++)
        want[i] = du[i] + (dm_[i] - du[i]) * 1.5 + (dc[i] - dm_[i]) * 4.0;
    cmp_d("dual cfg", got, want, (size_t)n);
    vkf_guidance_destroy(&g);
    /* nested: n + cfg2·((m + (p - m)·cfg1) - n) */
    sd.nested = true;
    CHECK_OK(vkf_guidance_create(&sd, shape, 4, NULL, NULL, &g, &e));
    CHECK_OK(vkf_guidance_predict(g, x, sigma, got, NULL));
    for (int64_t i = 0; i < n; i++)
        want[i] = du[i] + 1.5 * ((dm_[i] + (dc[i] - dm_[i]) * 4.0) - du[i]);
    cmp_d("dual cfg nested", got, want, (size_t)n);
    vkf_guidance_destroy(&g);
    /* cfg2 = 1 skips the negative; cfg1 = cfg2 = 1 also the middle */
    sd.nested = false;
    sd.cfg2 = 1.0;
    sd.cfg = 1.0;
    CHECK_OK(vkf_guidance_create(&sd, shape, 4, NULL, NULL, &g, &e));
    CHECK_OK(vkf_guidance_predict(g, x, sigma, got, NULL));
    cmp_d("dual cfg 1/1", got, dc, (size_t)n);
    vkf_guidance_stats(g, &fw, &rows);
    CHECK(fw == 1 && rows == B);
    vkf_guidance_destroy(&g);

    /* a context of the wrong width is refused with a message */
    hcond bad = {.bc = 1, .T = 3};
    {
        int64_t s[3] = {1, 3, CTXD + 1};
        bad.ctx = gt_random(3 * (CTXD + 1));
        bad.t = gt_tensor(gpu, VKF_DTYPE_F32, 3, s, bad.ctx);
    }
    const hcond *lbad[] = {&bad};
    vkf_conditioning *pbad = conditioning(1, lbad);
    vkf_guide_spec sbad = {.model = m, .positive = pbad, .cfg = 1.0};
    vkf_errbuf e2 = {{0}};
    CHECK(vkf_guidance_create(&sbad, shape, 4, NULL, NULL, &g, &e2) == VKF_EINVAL);
    CHECK(g == NULL && strstr(e2.msg, "context_dim") != NULL);

    free(da);
    free(db);
    free(dm_);
    free(x);
    free(dc);
    free(du);
    free(want);
    free(got);
    free(unc);
    unref_obj(pos);
    unref_obj(neg);
    unref_obj(p2);
    unref_obj(n10);
    unref_obj(pb);
    unref_obj(pr);
    unref_obj(mid_c);
    unref_obj(pbad);
    unref_obj(m);
    free_cond(&cp);
    free_cond(&cn);
    free_cond(&c2);
    free_cond(&c10);
    free_cond(&cb);
    free_cond(&ca);
    free_cond(&cbb);
    free_cond(&cc);
    free_cond(&bad);
}

/* ------------------------------------------------------------------------ */
/* goldens: areas, masks, set_area_to_bounds, opposite areas, inpaint concat */

static float *jfloats(const cJSON *o, const char *key, int64_t *count)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsArray(a))
        return NULL;
    int n = cJSON_GetArraySize(a);
    float *p = malloc((size_t)(n ? n : 1) * sizeof(float));
    int i = 0;
    const cJSON *v;
    cJSON_ArrayForEach(v, a) p[i++] = (float)v->valuedouble;
    if (count)
        *count = n;
    return p;
}

static int jshape(const cJSON *o, const char *key, int64_t *shape)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, key);
    int n = 0;
    const cJSON *v;
    cJSON_ArrayForEach(v, a) shape[n++] = (int64_t)v->valuedouble;
    return n;
}

static double jnum(const cJSON *o, const char *key, double def)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : def;
}

static vkf_tensor *jtensor(const cJSON *o, const char *key)
{
    char sk[64];
    snprintf(sk, sizeof(sk), "%s_shape", key);
    int64_t shape[5];
    int nd = jshape(o, sk, shape);
    float *data = jfloats(o, key, NULL);
    if (!data || nd == 0) {
        free(data);
        return NULL;
    }
    vkf_tensor *t = gt_tensor(gpu, VKF_DTYPE_F32, nd, shape, data);
    free(data);
    return t;
}

static vkf_conditioning *jconditioning(const cJSON *arr)
{
    int n = cJSON_GetArraySize(arr);
    vkf_conditioning *c = vkf_conditioning_new(n);
    for (int i = 0; i < n; i++) {
        const cJSON *o = cJSON_GetArrayItem(arr, i);
        vkf_cond_entry *e = &c->e[i];
        int64_t shape[3];
        jshape(o, "shape", shape);
        float *ctx = jfloats(o, "ctx", NULL);
        e->cond = gt_tensor(gpu, VKF_DTYPE_F32, 3, shape, ctx);
        free(ctx);
        e->strength = (float)jnum(o, "strength", 1.0);
        e->mask_strength = (float)jnum(o, "mask_strength", 1.0);
        e->start_percent = jnum(o, "start_percent", 0.0);
        e->end_percent = jnum(o, "end_percent", 1.0);
        const cJSON *area = cJSON_GetObjectItemCaseSensitive(o, "area");
        if (cJSON_IsArray(area)) {
            e->has_area = true;
            e->area_is_percent = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "percent"));
            for (int k = 0; k < 4; k++)
                e->area[k] = cJSON_GetArrayItem(area, k)->valuedouble;
        }
        e->mask = jtensor(o, "mask");
        e->set_area_to_bounds =
            cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "set_area_to_bounds"));
        e->concat_mask = jtensor(o, "concat_mask");
        e->concat_latent_image = jtensor(o, "concat_latent_image");
    }
    return c;
}

static void test_goldens(void)
{
    const char *root = getenv("VKF_SOURCE_ROOT");
    char path[1024];
    snprintf(path, sizeof(path), "%s/tests/reference/golden/guidance.json", root ? root : ".");
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "cannot open %s\n", path);
        gt_failures++;
        return;
    }
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *text = malloc((size_t)len + 1);
    CHECK(fread(text, 1, (size_t)len, f) == (size_t)len);
    text[len] = 0;
    fclose(f);
    cJSON *root_j = cJSON_Parse(text);
    free(text);
    CHECK(root_j != NULL);
    const cJSON *sc;
    int count = 0;
    cJSON_ArrayForEach(sc, cJSON_GetObjectItemCaseSensitive(root_j, "scenarios"))
    {
        const char *name = cJSON_GetObjectItemCaseSensitive(sc, "name")->valuestring;
        int64_t B = (int64_t)jnum(sc, "B", 0), H = (int64_t)jnum(sc, "H", 0),
                W = (int64_t)jnum(sc, "W", 0), n;
        int cin = (int)jnum(sc, "cin", 4);
        int64_t shape[4] = {B, 4, H, W};
        vkf_model *m = fake_model(cin);
        vkf_conditioning *pos = jconditioning(cJSON_GetObjectItemCaseSensitive(sc, "positive"));
        vkf_conditioning *neg = jconditioning(cJSON_GetObjectItemCaseSensitive(sc, "negative"));
        float *x = jfloats(sc, "x", &n);
        float *want = jfloats(sc, "expected", NULL);
        float *latent = jfloats(sc, "latent", NULL);
        float *dmask = jfloats(sc, "denoise_mask", NULL);
        float *got = malloc((size_t)n * sizeof(float));
        vkf_guide_spec spec = {.model = m, .positive = pos, .negative = neg,
                               .cfg = jnum(sc, "cfg", 1.0)};
        vkf_guidance *g = NULL;
        vkf_errbuf e = {{0}};
        int err = vkf_guidance_create(&spec, shape, 4, latent, dmask, &g, &e);
        if (err < 0)
            fprintf(stderr, "%s: %s\n", name, e.msg);
        CHECK(err >= 0);
        if (g) {
            CHECK_OK(vkf_guidance_predict(g, x, (float)jnum(sc, "sigma", 1.0), got, NULL));
            char what[128];
            snprintf(what, sizeof(what), "golden '%s'", name);
            gt_compare(what, got, want, n, 1e-4f, 1e-4f);
            vkf_guidance_destroy(&g);
        }
        count++;
        free(x);
        free(want);
        free(latent);
        free(dmask);
        free(got);
        unref_obj(pos);
        unref_obj(neg);
        unref_obj(m);
    }
    CHECK(count == 5);
    cJSON_Delete(root_j);
}

/* ------------------------------------------------------------------------ */
/* sigma windows (KSampler denoise, KSamplerAdvanced)                        */

static void test_windows(void)
{
    vkf_model_sampling *ms = NULL;
    CHECK_OK(vkf_model_sampling_discrete(&ms, VKF_PREDICTION_EPS, 0.00085, 0.012, 1000, false));
    float *full = NULL, *s = NULL;
    int nf = 0, n = 0;
    bool skip;
    CHECK_OK(vkf_calculate_sigmas(ms, VKF_SCHEDULER_KARRAS, 10, &full, &nf));
    CHECK(nf == 11);

    /* start 3, end 7, return_with_leftover_noise disable: full[3..7], last 0 */
    CHECK_OK(vkf_ksampler_window_sigmas(ms, VKF_SCHEDULER_KARRAS, "euler", 10, 1.0, 3, 7, true,
                                        &s, &n, &skip));
    CHECK(!skip && n == 5);
    for (int i = 0; i < 4 && n == 5; i++)
        CHECK(s[i] == full[3 + i]);
    CHECK(n == 5 && s[4] == 0.0f);
    vkf_free(s);
    /* leftover noise enabled: the last sigma stays */
    CHECK_OK(vkf_ksampler_window_sigmas(ms, VKF_SCHEDULER_KARRAS, "euler", 10, 1.0, 3, 7, false,
                                        &s, &n, &skip));
    CHECK(!skip && n == 5 && s[4] == full[7]);
    vkf_free(s);
    /* end_at_step 10000 (>= n-1): whole schedule; start 0 */
    CHECK_OK(vkf_ksampler_window_sigmas(ms, VKF_SCHEDULER_KARRAS, "euler", 10, 1.0, 0, 10000,
                                        true, &s, &n, &skip));
    CHECK(!skip && n == 11 && !memcmp(s, full, 11 * sizeof(float)));
    vkf_free(s);
    /* start at or past the last step: the latent is returned as it is */
    CHECK_OK(vkf_ksampler_window_sigmas(ms, VKF_SCHEDULER_KARRAS, "euler", 10, 1.0, 10, 10000,
                                        true, &s, &n, &skip));
    CHECK(skip);
    vkf_free(s);
    CHECK_OK(vkf_ksampler_window_sigmas(ms, VKF_SCHEDULER_KARRAS, "euler", 10, 1.0, 4, 4, true,
                                        &s, &n, &skip));
    CHECK(skip);   /* cut to 5 values, start 4 = n - 1 */
    vkf_free(s);
    /* denoise 0.5: the last 11 of a 20-step schedule */
    float *f20 = NULL;
    int n20 = 0;
    CHECK_OK(vkf_calculate_sigmas(ms, VKF_SCHEDULER_KARRAS, 20, &f20, &n20));
    CHECK_OK(vkf_ksampler_window_sigmas(ms, VKF_SCHEDULER_KARRAS, "euler", 10, 0.5, -1, -1,
                                        false, &s, &n, &skip));
    CHECK(!skip && n == 11 && n20 == 21 && !memcmp(s, f20 + 10, 11 * sizeof(float)));
    vkf_free(s);
    /* denoise 0: empty */
    CHECK_OK(vkf_ksampler_window_sigmas(ms, VKF_SCHEDULER_KARRAS, "euler", 10, 0.0, -1, -1,
                                        false, &s, &n, &skip));
    CHECK(n == 0 && !skip);
    vkf_free(s);
    /* dpm_2 drops the penultimate sigma of an 11-step schedule */
    float *f11 = NULL;
    int n11 = 0;
    CHECK_OK(vkf_calculate_sigmas(ms, VKF_SCHEDULER_NORMAL, 11, &f11, &n11));
    CHECK_OK(vkf_ksampler_window_sigmas(ms, VKF_SCHEDULER_NORMAL, "dpm_2", 10, 1.0, -1, -1, false,
                                        &s, &n, &skip));
    CHECK(n == 11 && !memcmp(s, f11, 10 * sizeof(float)) && s[10] == f11[11]);
    vkf_free(s);
    vkf_free(f11);
    vkf_free(f20);
    vkf_free(full);
    vkf_model_sampling_destroy(&ms);
}

/* ------------------------------------------------------------------------ */
/* whole runs: noise, img2img, inpainting, leftover noise, callbacks         */

/* Euler restated: the reference for vkf_sample's "euler" on the driver. */
typedef struct ref_run {
    const vkf_model *m;
    int64_t B, h, w;
    const hcond *pos, *neg;
    double cfg;
    const float *mask;        /* prepared [B, 4, h, w] or NULL */
    const float *latent_in;   /* model space */
    const float *noise;
} ref_run;

static void ref_D(const ref_run *r, const float *x, double sigma, double *out)
{
    int64_t n = r->B * 4 * r->h * r->w;
    float *xi = calloc((size_t)n, sizeof(float));
    for (int64_t i = 0; i < n; i++) {
        if (r->mask) {
            double m = r->mask[i];
            xi[i] = (float)(x[i] * m + (r->latent_in[i] + r->noise[i] * sigma) * (1 - m));
        } else {
            xi[i] = x[i];
        }
    }
    double *dc = malloc((size_t)n * sizeof(double)), *du = malloc((size_t)n * sizeof(double));
    ref_denoised(r->m, xi, r->B, r->h, r->w, sigma, r->pos, NULL, dc);
    ref_denoised(r->m, xi, r->B, r->h, r->w, sigma, r->neg, NULL, du);
    for (int64_t i = 0; i < n; i++) {
        double d = du[i] + (dc[i] - du[i]) * r->cfg;
        if (r->mask)
            d = d * r->mask[i] + r->latent_in[i] * (1 - r->mask[i]);
        out[i] = d;
    }
    free(xi);
    free(dc);
    free(du);
}

/* x starts as noise_scaling(σ0); euler; process_out. */
static void ref_sample(const ref_run *r, const float *sigmas, int ns, float *out)
{
    int64_t n = r->B * 4 * r->h * r->w;
    const vkf_model_sampling *ms = r->m->ms;
    bool maxd = vkf_model_sampling_max_denoise(ms, sigmas[0]);
    double s0 = sigmas[0];
    float *x = malloc((size_t)n * sizeof(float));
    double *d = malloc((size_t)n * sizeof(double));
    for (int64_t i = 0; i < n; i++)
        x[i] = (float)(r->latent_in[i] + r->noise[i] * (maxd ? sqrt(1 + s0 * s0) : s0));
    for (int k = 0; k + 1 < ns; k++) {
        ref_D(r, x, sigmas[k], d);
        for (int64_t i = 0; i < n; i++) {
            double dd = (x[i] - d[i]) / sigmas[k];
            x[i] = (float)(x[i] + dd * ((double)sigmas[k + 1] - sigmas[k]));
        }
    }
    for (int64_t i = 0; i < n; i++)
        out[i] = (float)(x[i] / 0.18215);
    free(x);
    free(d);
}

typedef struct cb_log {
    int calls, last_step, total, stop_at;
} cb_log;

static int count_cb(void *opaque, vkf_exec_ctx *ctx, const vkf_model *model, int step, int total,
                    const float *x0, const int64_t *shape, int ndim)
{
    (void)ctx;
    (void)model;
    (void)x0;
    (void)shape;
    (void)ndim;
    cb_log *l = opaque;
    l->calls++;
    l->last_step = step;
    l->total = total;
    return l->stop_at >= 0 && step >= l->stop_at ? VKF_EINTERRUPTED : 0;
}

static float *download_latent(const vkf_value *v)
{
    const vkf_latent *l = vkf_value_latent(v);
    return l ? gt_download(l->samples) : NULL;
}

static void test_runs(void)
{
    vkf_model *m = fake_model(4);
    const int64_t B = 2, h = 8, w = 8, n = B * 4 * h * w;
    int64_t shape[4] = {B, 4, h, w};
    hcond cp = make_cond(1, 3, 21), cn = make_cond(1, 3, 22);
    const hcond *lp[] = {&cp}, *ln[] = {&cn};
    vkf_conditioning *pos = conditioning(1, lp), *neg = conditioning(1, ln);
    vkf_guide_spec spec = {.model = m, .positive = pos, .negative = neg, .cfg = 5.0};
    float *zeros = calloc((size_t)n, sizeof(float));
    float *noise = malloc((size_t)n * sizeof(float));
    float *want = malloc((size_t)n * sizeof(float));
    CHECK_OK(vkf_prepare_noise(1234, shape, 4, NULL, 0, VKF_RANDN_AVX2, noise));
    float *sig = NULL;
    int ns = 0;
    bool skip;
    vkf_errbuf e = {{0}};

    /* txt2img: empty latent, KSampler(euler, karras, 4 steps) */
    CHECK_OK(vkf_ksampler_window_sigmas(m->ms, VKF_SCHEDULER_KARRAS, "euler", 4, 1.0, -1, -1,
                                        false, &sig, &ns, &skip));
    vkf_tensor *lt = gt_tensor(gpu, VKF_DTYPE_F32, 4, shape, zeros);
    vkf_value lat = {0}, out = {0}, den = {0};
    CHECK_OK(vkf_value_set_latent(&lat, vkf_tensor_ref(lt), NULL, NULL, 0));
    cb_log log = {.stop_at = -1};
    vkf_latent_sample_params p = {
        .guide = &spec, .latent = vkf_value_latent(&lat), .noise = {.seed = 1234},
        .seed = 1234, .sampler_name = "euler", .sigmas = sig, .n_sigmas = ns,
        .x0_cb = count_cb, .x0_opaque = &log, .log = &quiet,
    };
    CHECK_OK(vkf_sample_latent(&p, &out, &den, &e));
    ref_run r = {.m = m, .B = B, .h = h, .w = w, .pos = &cp, .neg = &cn, .cfg = 5.0,
                 .latent_in = zeros, .noise = noise};
    ref_sample(&r, sig, ns, want);
    float *got = download_latent(&out);
    gt_compare("txt2img euler", got, want, n, 1e-4f, 1e-4f);
    CHECK(log.calls == 4 && log.last_step == 3 && log.total == 4);
    CHECK(vkf_value_latent(&den) != NULL);
    free(got);
    vkf_value_clear(&out);
    vkf_value_clear(&den);

    /* the callback's non-zero return stops sampling with that code */
    log = (cb_log){.stop_at = 1};
    CHECK(vkf_sample_latent(&p, &out, NULL, &e) == VKF_EINTERRUPTED);
    CHECK(log.calls == 2 && out.kind == VKF_VAL_NONE);

    /* img2img (denoise 0.5) on a non-zero latent, batch_index [3, 1] */
    float *src = malloc((size_t)n * sizeof(float)), *src_in = malloc((size_t)n * sizeof(float));
    gt_seed(99);
    for (int64_t i = 0; i < n; i++)
        src[i] = 3.0f * gt_rand();
    for (int64_t i = 0; i < n; i++)
        src_in[i] = src[i] * 0.18215f;
    vkf_tensor *st = gt_tensor(gpu, VKF_DTYPE_F32, 4, shape, src);
    int64_t bidx[2] = {3, 1};
    vkf_value lat2 = {0};
    CHECK_OK(vkf_value_set_latent(&lat2, vkf_tensor_ref(st), NULL, bidx, 2));
    vkf_free(sig);
    CHECK_OK(vkf_ksampler_window_sigmas(m->ms, VKF_SCHEDULER_NORMAL, "euler", 3, 0.5, -1, -1,
                                        false, &sig, &ns, &skip));
    float *noise2 = malloc((size_t)n * sizeof(float));
    int64_t row_shape[4] = {1, 4, h, w};
    for (int b = 0; b < 2; b++) {
        int64_t one = bidx[b];
        CHECK_OK(vkf_prepare_noise(77, row_shape, 4, &one, 1, VKF_RANDN_AVX2,
                                   noise2 + b * 4 * h * w));
    }
    p.latent = vkf_value_latent(&lat2);
    p.noise.seed = 77;
    p.seed = 77;
    p.sigmas = sig;
    p.n_sigmas = ns;
    log = (cb_log){.stop_at = -1};
    CHECK_OK(vkf_sample_latent(&p, &out, NULL, &e));
    r.latent_in = src_in;
    r.noise = noise2;
    ref_sample(&r, sig, ns, want);
    got = download_latent(&out);
    gt_compare("img2img denoise 0.5 with batch_index", got, want, n, 1e-4f, 1e-4f);
    const vkf_latent *ol = vkf_value_latent(&out);
    CHECK(ol && ol->nb_batch_index == 2 && ol->batch_index[0] == 3);
    free(got);
    vkf_value_clear(&out);

    /* add_noise disable + leftover noise kept (KSamplerAdvanced 0..2 of 4) */
    vkf_free(sig);
    CHECK_OK(vkf_ksampler_window_sigmas(m->ms, VKF_SCHEDULER_KARRAS, "euler", 4, 1.0, 0, 2,
                                        false, &sig, &ns, &skip));
    p.noise.disabled = true;
    p.sigmas = sig;
    p.n_sigmas = ns;
    CHECK_OK(vkf_sample_latent(&p, &out, NULL, &e));
    r.noise = zeros;
    ref_sample(&r, sig, ns, want);
    got = download_latent(&out);
    gt_compare("disable_noise, leftover", got, want, n, 1e-4f, 1e-4f);
    free(got);
    vkf_value_clear(&out);
    p.noise.disabled = false;

    /* skip (start past the end): the input comes back unchanged */
    p.skip = true;
    CHECK_OK(vkf_sample_latent(&p, &out, NULL, &e));
    got = download_latent(&out);
    gt_compare("skip", got, src, n, 0, 0);
    free(got);
    vkf_value_clear(&out);
    p.skip = false;

    /* inpainting: noise_mask at 2x the latent size (bilinear: 2x2 means) */
    int64_t ms_[4] = {1, 1, 2 * h, 2 * w};
    float *mk = malloc((size_t)(4 * h * w) * sizeof(float));
    for (int64_t y = 0; y < 2 * h; y++)
        for (int64_t x = 0; x < 2 * w; x++)
            mk[y * 2 * w + x] = x >= w ? 1.0f : (x == w - 1 && y % 2 ? 0.5f : 0.0f);
    vkf_tensor *mt = gt_tensor(gpu, VKF_DTYPE_F32, 4, ms_, mk);
    float *prep = malloc((size_t)n * sizeof(float));
    for (int64_t b = 0; b < B; b++)
        for (int64_t c = 0; c < 4; c++)
            for (int64_t y = 0; y < h; y++)
                for (int64_t x = 0; x < w; x++) {
                    double s = 0;
                    for (int dy = 0; dy < 2; dy++)
                        for (int dx = 0; dx < 2; dx++)
                            s += mk[(2 * y + dy) * 2 * w + 2 * x + dx];
                    prep[((b * 4 + c) * h + y) * w + x] = (float)(s / 4);
                }
    vkf_value lat3 = {0};
    CHECK_OK(vkf_value_set_latent(&lat3, vkf_tensor_ref(st), vkf_tensor_ref(mt), NULL, 0));
    vkf_free(sig);
    CHECK_OK(vkf_ksampler_window_sigmas(m->ms, VKF_SCHEDULER_KARRAS, "euler", 4, 1.0, -1, -1,
                                        false, &sig, &ns, &skip));
    p.latent = vkf_value_latent(&lat3);
    p.sigmas = sig;
    p.n_sigmas = ns;
    p.noise.seed = 5;
    p.seed = 5;
    CHECK_OK(vkf_sample_latent(&p, &out, NULL, &e));
    float *noise3 = malloc((size_t)n * sizeof(float));
    CHECK_OK(vkf_prepare_noise(5, shape, 4, NULL, 0, VKF_RANDN_AVX2, noise3));
    r.noise = noise3;
    r.mask = prep;
    ref_sample(&r, sig, ns, want);
    got = download_latent(&out);
    gt_compare("inpaint noise_mask", got, want, n, 1e-4f, 1e-4f);
    /* where the mask is 0 the result is the input latent */
    CHECK(fabsf(got[0] - src[0]) < 1e-4f && fabsf(got[n - w * h] - src[n - w * h]) < 1e-4f);
    ol = vkf_value_latent(&out);
    CHECK(ol && ol->noise_mask == mt);
    free(got);
    vkf_value_clear(&out);

    /* ddim re-noises the kept area with noise from seed + 1 */
    p.sampler_name = "ddim";
    CHECK_OK(vkf_sample_latent(&p, &out, NULL, &e));
    float *got_ddim = download_latent(&out);
    vkf_value_clear(&out);
    /* same as euler except through the blend noise: reference with the
     * seed + 1 noise for blending, seed noise for the start */
    {
        float *n6 = malloc((size_t)n * sizeof(float));
        CHECK_OK(vkf_prepare_noise(6, shape, 4, NULL, 0, VKF_RANDN_AVX2, n6));
        int64_t nn = n;
        float *x = malloc((size_t)nn * sizeof(float));
        double *d = malloc((size_t)nn * sizeof(double));
        bool maxd = vkf_model_sampling_max_denoise(m->ms, sig[0]);
        for (int64_t i = 0; i < nn; i++)
            x[i] = (float)(src_in[i] + noise3[i] * (maxd ? sqrt(1.0 + (double)sig[0] * sig[0])
                                                         : sig[0]));
        ref_run r6 = r;
        r6.noise = n6;
        for (int k = 0; k + 1 < ns; k++) {
            ref_D(&r6, x, sig[k], d);
            for (int64_t i = 0; i < nn; i++)
                x[i] = (float)(x[i] + (x[i] - d[i]) / sig[k] * ((double)sig[k + 1] - sig[k]));
        }
        for (int64_t i = 0; i < nn; i++)
            want[i] = (float)(x[i] / 0.18215);
        gt_compare("ddim inpaint noise", got_ddim, want, n, 1e-4f, 1e-4f);
        free(n6);
        free(x);
        free(d);
    }
    free(got_ddim);
    p.sampler_name = "euler";

    /* empty sigmas: the latent unchanged */
    p.n_sigmas = 0;
    CHECK_OK(vkf_sample_latent(&p, &out, NULL, &e));
    got = download_latent(&out);
    gt_compare("no sigmas", got, src, n, 0, 0);
    free(got);
    vkf_value_clear(&out);

    vkf_free(sig);
    vkf_value_clear(&lat);
    vkf_value_clear(&lat2);
    vkf_value_clear(&lat3);
    vkf_tensor_unref(&lt);
    vkf_tensor_unref(&st);
    vkf_tensor_unref(&mt);
    free(zeros);
    free(noise);
    free(noise2);
    free(noise3);
    free(want);
    free(src);
    free(src_in);
    free(mk);
    free(prep);
    unref_obj(pos);
    unref_obj(neg);
    unref_obj(m);
    free_cond(&cp);
    free_cond(&cn);
}

/* ------------------------------------------------------------------------ */

/* ------------------------------------------------------------------------ */
/* the nodes, through the executor: same results as the driver called with */
/* the same objects (wiring, defaults, add_noise / leftover / seeds)       */

static vkf_value captured[4];

static int gpu_of(vkf_exec_ctx *ctx, vkf_gpu **g)
{
    return vkf_exec_gpu(ctx, g);
}

static vkf_conditioning *seeded_cond(vkf_gpu *g, int64_t seed, int64_t T)
{
    gt_seed((uint64_t)seed);
    float *d = gt_random(T * CTXD);
    int64_t s[3] = {1, T, CTXD};
    vkf_conditioning *c = vkf_conditioning_new(1);
    CHECK_OK(vkf_tensor_create(g, VKF_DTYPE_F32, 3, s, &c->e[0].cond));
    CHECK_OK(vkf_tensor_upload(c->e[0].cond, d));
    free(d);
    return c;
}

static int seeded_latent(vkf_gpu *g, int64_t seed, int64_t b, int64_t h, int64_t w, vkf_value *out)
{
    int64_t s[4] = {b, 4, h, w};
    float *d = calloc((size_t)(b * 4 * h * w), sizeof(float));
    gt_seed((uint64_t)seed);
    for (int64_t i = 0; seed && i < b * 4 * h * w; i++)
        d[i] = 2.0f * gt_rand();
    vkf_tensor *t = NULL;
    CHECK_OK(vkf_tensor_create(g, VKF_DTYPE_F32, 4, s, &t));
    CHECK_OK(vkf_tensor_upload(t, d));
    free(d);
    return vkf_value_set_latent(out, t, NULL, NULL, 0);
}

static int tn_model(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    vkf_gpu *g;
    int err = gpu_of(ctx, &g);
    if (err < 0)
        return err;
    vkf_model *m = fake_model_on(g, (int)in[0].u.i);
    vkf_value_set_object(&out[0], &m->obj);
    return 0;
}

static int tn_cond(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    vkf_gpu *g;
    int err = gpu_of(ctx, &g);
    if (err < 0)
        return err;
    vkf_value_set_object(&out[0], &seeded_cond(g, in[0].u.i, in[1].u.i)->obj);
    return 0;
}

static int tn_latent(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    vkf_gpu *g;
    int err = gpu_of(ctx, &g);
    if (err < 0)
        return err;
    return seeded_latent(g, in[0].u.i, in[1].u.i, in[2].u.i, in[3].u.i, &out[0]);
}

static vkf_model_sampling *sd_ms(void)
{
    vkf_model_sampling *ms = NULL;
    CHECK_OK(vkf_model_sampling_discrete(&ms, VKF_PREDICTION_EPS, 0.00085, 0.012, 1000, false));
    return ms;
}

static vkf_sigmas *karras_sigmas(int steps)
{
    vkf_model_sampling *ms = sd_ms();
    float *s = NULL;
    int n = 0;
    CHECK_OK(vkf_calculate_sigmas(ms, VKF_SCHEDULER_KARRAS, steps, &s, &n));
    vkf_sigmas *sg = vkf_sigmas_new(n);
    memcpy(sg->s, s, (size_t)n * sizeof(float));
    vkf_free(s);
    vkf_model_sampling_destroy(&ms);
    return sg;
}

static int tn_sigmas(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    (void)ctx;
    vkf_value_set_object(&out[0], &karras_sigmas((int)in[0].u.i)->obj);
    return 0;
}

static int tn_sampler(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    (void)ctx;
    (void)in;
    vkf_value_set_object(&out[0], &vkf_sampler_obj_new("euler")->obj);
    return 0;
}

static int tn_capture(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    (void)ctx;
    (void)out;
    int k = (int)in[1].u.i;
    vkf_value_clear(&captured[k]);
    return vkf_value_copy(&captured[k], &in[0]);
}

static const vkf_input_def tn_model_in[] = {VKF_INPUT_INT("in_ch", 4, 4, 9)};
static const vkf_input_def tn_cond_in[] = {VKF_INPUT_INT("seed", 0, 0, 1000),
                                           VKF_INPUT_INT("T", 1, 1, 100)};
static const vkf_input_def tn_latent_in[] = {
    VKF_INPUT_INT("seed", 0, 0, 1000), VKF_INPUT_INT("b", 1, 1, 8),
    VKF_INPUT_INT("h", 8, 1, 64), VKF_INPUT_INT("w", 8, 1, 64)};
static const vkf_input_def tn_steps_in[] = {VKF_INPUT_INT("steps", 1, 1, 100)};
static const vkf_input_def tn_cap_in[] = {VKF_INPUT_LINK("v", "LATENT"),
                                          VKF_INPUT_INT("slot", 0, 0, 3)};
static const vkf_output_def tn_model_out[] = {{.type = "MODEL"}};
static const vkf_output_def tn_cond_out[] = {{.type = "CONDITIONING"}};
static const vkf_output_def tn_latent_out[] = {{.type = "LATENT"}};
static const vkf_output_def tn_sigmas_out[] = {{.type = "SIGMAS"}};
static const vkf_output_def tn_sampler_out[] = {{.type = "SAMPLER"}};
static const vkf_node_def tn_defs[] = {
    {.name = "TestModel", .inputs = tn_model_in, .nb_inputs = 1, .outputs = tn_model_out,
     .nb_outputs = 1, .execute = tn_model},
    {.name = "TestCond", .inputs = tn_cond_in, .nb_inputs = 2, .outputs = tn_cond_out,
     .nb_outputs = 1, .execute = tn_cond},
    {.name = "TestLatent", .inputs = tn_latent_in, .nb_inputs = 4, .outputs = tn_latent_out,
     .nb_outputs = 1, .execute = tn_latent},
    {.name = "TestSigmas", .inputs = tn_steps_in, .nb_inputs = 1, .outputs = tn_sigmas_out,
     .nb_outputs = 1, .execute = tn_sigmas},
    {.name = "TestSampler", .outputs = tn_sampler_out, .nb_outputs = 1, .execute = tn_sampler},
    {.name = "CapLatent", .inputs = tn_cap_in, .nb_inputs = 2,
     .flags = VKF_NODE_OUTPUT | VKF_NODE_NOT_IDEMPOTENT, .execute = tn_capture},
};

static int run_prompt(vkf_registry *reg, vkf_executor *ex, const char *json)
{
    vkf_graph *gr = NULL;
    vkf_load_error le = {0};
    if (vkf_load_workflow_json(json, strlen(json), reg, &gr, &le) < 0) {
        fprintf(stderr, "load: %s\n", le.message ? le.message : "?");
        vkf_load_error_clear(&le);
        return -100;
    }
    vkf_validation val = {0};
    char *msg = NULL;
    int err = vkf_executor_run(ex, gr, &val, &msg);
    if (err == VKF_EVALIDATION)
        for (int i = 0; i < val.nb_node_errors; i++)
            for (int k = 0; k < val.node_errors[i].nb_errors; k++)
                fprintf(stderr, "validation: %s: %s\n", val.node_errors[i].errors[k].message,
                        val.node_errors[i].errors[k].details);
    if (err < 0 && msg)
        fprintf(stderr, "run: %s\n", msg);
    vkf_free(msg);
    vkf_validation_clear(&val);
    vkf_graph_free(&gr);
    return err;
}

#define COMMON_NODES                                                                  \
    "\"1\": {\"class_type\": \"TestModel\", \"inputs\": {\"in_ch\": 4}},"             \
    "\"2\": {\"class_type\": \"TestCond\", \"inputs\": {\"seed\": 1, \"T\": 3}},"     \
    "\"3\": {\"class_type\": \"TestCond\", \"inputs\": {\"seed\": 2, \"T\": 6}},"     \
    "\"4\": {\"class_type\": \"TestLatent\", \"inputs\": {\"seed\": 0, \"b\": 1, "    \
    "\"h\": 8, \"w\": 8}},"                                                           \
    "\"5\": {\"class_type\": \"TestLatent\", \"inputs\": {\"seed\": 5, \"b\": 2, "    \
    "\"h\": 6, \"w\": 8}},"

/* Expected output of a driver call on objects made like the test nodes. */
static float *expect(vkf_gpu *g, const vkf_guide_spec *spec_in, int64_t latent_seed, int64_t b,
                     int64_t h, int64_t w, vkf_noise_spec noise, uint64_t seed,
                     const char *sampler, const vkf_sampler_obj *sobj, const float *sig, int ns,
                     bool skip, float **x0)
{
    vkf_model *m = fake_model_on(g, 4);
    vkf_conditioning *pos = seeded_cond(g, 1, 3), *neg = seeded_cond(g, 2, 6);
    vkf_conditioning *mid = seeded_cond(g, 3, 4);
    vkf_guide_spec spec = *spec_in;
    spec.model = m;
    spec.positive = pos;
    spec.negative = spec_in->negative ? neg : NULL;
    spec.middle = spec_in->dual ? mid : NULL;
    vkf_value lat = {0}, out = {0}, den = {0};
    CHECK_OK(seeded_latent(g, latent_seed, b, h, w, &lat));
    vkf_latent_sample_params p = {
        .guide = &spec, .latent = vkf_value_latent(&lat), .noise = noise, .seed = seed,
        .sampler = sobj, .sampler_name = sampler, .sigmas = sig, .n_sigmas = ns, .skip = skip,
        .log = &quiet,
    };
    vkf_errbuf e = {{0}};
    CHECK_OK(vkf_sample_latent(&p, &out, x0 ? &den : NULL, &e));
    float *r = download_latent(&out);
    if (x0)
        *x0 = download_latent(&den);
    vkf_value_clear(&lat);
    vkf_value_clear(&out);
    vkf_value_clear(&den);
    unref_obj(pos);
    unref_obj(neg);
    unref_obj(mid);
    unref_obj(m);
    return r;
}

static void check_captured(int slot, const float *want, int64_t n, const char *what)
{
    float *got = download_latent(&captured[slot]);
    CHECK(got != NULL);
    if (got && want)
        gt_compare(what, got, want, n, 0, 0);
    free(got);
}

static void test_nodes(void)
{
    vkf_registry *reg = NULL;
    vkf_paths *paths = NULL;
    vkf_executor *ex = NULL;
    CHECK_OK(vkf_registry_create(&reg));
    for (size_t i = 0; i < VKF_ARRAY_SIZE(tn_defs); i++)
        CHECK_OK(vkf_registry_add(reg, &tn_defs[i]));
    CHECK_OK(vkf_paths_create(&paths, &quiet));
    const char *v = getenv("VKF_VALIDATION");
    vkf_gpu_params gp = {.validation = !(v && !strcmp(v, "0")), .log = &gt_log};
    vkf_gpu *probe = NULL;
    if (gp.validation && vkf_gpu_create(&gp, &probe) == VKF_EUNSUPPORTED)
        gp.validation = false;
    vkf_gpu_destroy(&probe);
    vkf_executor_params ep = {.registry = reg, .paths = paths, .log = &quiet, .gpu_params = &gp};
    CHECK_OK(vkf_executor_create(&ex, &ep));
    char json[4096];

    /* KSampler */
    snprintf(json, sizeof(json),
             "{" COMMON_NODES
             "\"6\": {\"class_type\": \"KSampler\", \"inputs\": {\"model\": [\"1\", 0], "
             "\"seed\": 42, \"steps\": 3, \"cfg\": 4.0, \"sampler_name\": \"euler\", "
             "\"scheduler\": \"karras\", \"positive\": [\"2\", 0], \"negative\": [\"3\", 0], "
             "\"latent_image\": [\"4\", 0], \"denoise\": 1.0}},"
             "\"7\": {\"class_type\": \"CapLatent\", \"inputs\": {\"v\": [\"6\", 0], \"slot\": 0}},"
             "\"8\": {\"class_type\": \"KSamplerAdvanced\", \"inputs\": {\"model\": [\"1\", 0], "
             "\"add_noise\": \"disable\", \"noise_seed\": 42, \"steps\": 4, \"cfg\": 3.0, "
             "\"sampler_name\": \"euler\", \"scheduler\": \"normal\", \"positive\": [\"2\", 0], "
             "\"negative\": [\"3\", 0], \"latent_image\": [\"5\", 0], \"start_at_step\": 1, "
             "\"end_at_step\": 3, \"return_with_leftover_noise\": \"enable\"}},"
             "\"9\": {\"class_type\": \"CapLatent\", \"inputs\": {\"v\": [\"8\", 0], \"slot\": 1}}"
             "}");
    CHECK(run_prompt(reg, ex, json) == 0);
    vkf_gpu *g = vkf_executor_gpu(ex);
    if (!g) {
        gt_failures++;
        goto done;
    }
    vkf_model_sampling *ms = sd_ms();
    float *sig = NULL;
    int ns = 0;
    bool skip = false;
    vkf_guide_spec spec = {.negative = (void *)1, .cfg = 4.0};
    CHECK_OK(vkf_ksampler_window_sigmas(ms, VKF_SCHEDULER_KARRAS, "euler", 3, 1.0, -1, -1, false,
                                        &sig, &ns, &skip));
    float *want = expect(g, &spec, 0, 1, 8, 8, (vkf_noise_spec){.seed = 42}, 42, "euler", NULL,
                         sig, ns, skip, NULL);
    check_captured(0, want, 4 * 8 * 8, "KSampler node");
    free(want);
    vkf_free(sig);
    spec.cfg = 3.0;
    CHECK_OK(vkf_ksampler_window_sigmas(ms, VKF_SCHEDULER_NORMAL, "euler", 4, 1.0, 1, 3, false,
                                        &sig, &ns, &skip));
    CHECK(ns == 3 && sig[2] != 0.0f);
    want = expect(g, &spec, 5, 2, 6, 8, (vkf_noise_spec){.disabled = true, .seed = 42}, 42,
                  "euler", NULL, sig, ns, skip, NULL);
    check_captured(1, want, 2 * 4 * 6 * 8, "KSamplerAdvanced node");
    free(want);
    vkf_free(sig);

    /* SamplerCustomAdvanced with RandomNoise + CFGGuider; SamplerCustom
     * without noise; BasicGuider + DisableNoise */
    snprintf(json, sizeof(json),
             "{" COMMON_NODES
             "\"10\": {\"class_type\": \"RandomNoise\", \"inputs\": {\"noise_seed\": 7}},"
             "\"11\": {\"class_type\": \"CFGGuider\", \"inputs\": {\"model\": [\"1\", 0], "
             "\"positive\": [\"2\", 0], \"negative\": [\"3\", 0], \"cfg\": 2.5}},"
             "\"12\": {\"class_type\": \"TestSampler\", \"inputs\": {}},"
             "\"13\": {\"class_type\": \"TestSigmas\", \"inputs\": {\"steps\": 3}},"
             "\"14\": {\"class_type\": \"SamplerCustomAdvanced\", \"inputs\": {\"noise\": "
             "[\"10\", 0], \"guider\": [\"11\", 0], \"sampler\": [\"12\", 0], \"sigmas\": "
             "[\"13\", 0], \"latent_image\": [\"5\", 0]}},"
             "\"15\": {\"class_type\": \"CapLatent\", \"inputs\": {\"v\": [\"14\", 0], \"slot\": 0}},"
             "\"16\": {\"class_type\": \"CapLatent\", \"inputs\": {\"v\": [\"14\", 1], \"slot\": 1}},"
             "\"17\": {\"class_type\": \"SamplerCustom\", \"inputs\": {\"model\": [\"1\", 0], "
             "\"add_noise\": false, \"noise_seed\": 9, \"cfg\": 6.0, \"positive\": [\"2\", 0], "
             "\"negative\": [\"3\", 0], \"sampler\": [\"12\", 0], \"sigmas\": [\"13\", 0], "
             "\"latent_image\": [\"5\", 0]}},"
             "\"18\": {\"class_type\": \"CapLatent\", \"inputs\": {\"v\": [\"17\", 0], \"slot\": 2}},"
             "\"19\": {\"class_type\": \"BasicGuider\", \"inputs\": {\"model\": [\"1\", 0], "
             "\"conditioning\": [\"2\", 0]}},"
             "\"20\": {\"class_type\": \"DisableNoise\", \"inputs\": {}},"
             "\"21\": {\"class_type\": \"SamplerCustomAdvanced\", \"inputs\": {\"noise\": "
             "[\"20\", 0], \"guider\": [\"19\", 0], \"sampler\": [\"12\", 0], \"sigmas\": "
             "[\"13\", 0], \"latent_image\": [\"5\", 0]}},"
             "\"22\": {\"class_type\": \"CapLatent\", \"inputs\": {\"v\": [\"21\", 0], \"slot\": 3}}"
             "}");
    CHECK(run_prompt(reg, ex, json) == 0);
    vkf_sigmas *ks = karras_sigmas(3);
    vkf_sampler_obj *so = vkf_sampler_obj_new("euler");
    float *x0 = NULL;
    spec.cfg = 2.5;
    want = expect(g, &spec, 5, 2, 6, 8, (vkf_noise_spec){.seed = 7}, 7, NULL, so, ks->s, ks->n,
                  false, &x0);
    check_captured(0, want, 2 * 4 * 6 * 8, "SamplerCustomAdvanced output");
    check_captured(1, x0, 2 * 4 * 6 * 8, "SamplerCustomAdvanced denoised_output");
    free(want);
    free(x0);
    spec.cfg = 6.0;
    want = expect(g, &spec, 5, 2, 6, 8, (vkf_noise_spec){.disabled = true, .seed = 9}, 9, NULL,
                  so, ks->s, ks->n, false, NULL);
    check_captured(2, want, 2 * 4 * 6 * 8, "SamplerCustom add_noise false");
    free(want);
    vkf_guide_spec basic = {.negative = NULL, .cfg = 1.0};
    want = expect(g, &basic, 5, 2, 6, 8, (vkf_noise_spec){.disabled = true}, 0, NULL, so, ks->s,
                  ks->n, false, NULL);
    check_captured(3, want, 2 * 4 * 6 * 8, "BasicGuider + DisableNoise");
    free(want);

    /* DualCFGGuider (regular): cond1, cond2, negative, cfg_conds, cfg_cond2_negative */
    snprintf(json, sizeof(json),
             "{" COMMON_NODES
             "\"6\": {\"class_type\": \"TestCond\", \"inputs\": {\"seed\": 3, \"T\": 4}},"
             "\"10\": {\"class_type\": \"DualCFGGuider\", \"inputs\": {\"model\": [\"1\", 0], "
             "\"cond1\": [\"2\", 0], \"cond2\": [\"6\", 0], \"negative\": [\"3\", 0], "
             "\"cfg_conds\": 5.0, \"cfg_cond2_negative\": 2.0, \"style\": \"regular\"}},"
             "\"12\": {\"class_type\": \"TestSampler\", \"inputs\": {}},"
             "\"13\": {\"class_type\": \"TestSigmas\", \"inputs\": {\"steps\": 3}},"
             "\"20\": {\"class_type\": \"RandomNoise\", \"inputs\": {\"noise_seed\": 11}},"
             "\"21\": {\"class_type\": \"SamplerCustomAdvanced\", \"inputs\": {\"noise\": "
             "[\"20\", 0], \"guider\": [\"10\", 0], \"sampler\": [\"12\", 0], \"sigmas\": "
             "[\"13\", 0], \"latent_image\": [\"5\", 0]}},"
             "\"22\": {\"class_type\": \"CapLatent\", \"inputs\": {\"v\": [\"21\", 0], \"slot\": 0}}"
             "}");
    CHECK(run_prompt(reg, ex, json) == 0);
    vkf_guide_spec dual = {.negative = (void *)1, .dual = true, .cfg = 5.0, .cfg2 = 2.0};
    want = expect(g, &dual, 5, 2, 6, 8, (vkf_noise_spec){.seed = 11}, 11, NULL, so, ks->s,
                  ks->n, false, NULL);
    check_captured(0, want, 2 * 4 * 6 * 8, "DualCFGGuider");
    free(want);
    /* the same with style "nested" */
    char *sty = strstr(json, "\"regular\"");
    CHECK(sty != NULL);
    if (sty) {
        char tail[4096];
        snprintf(tail, sizeof(tail), "%s", sty + strlen("\"regular\""));
        snprintf(sty, sizeof(json) - (size_t)(sty - json), "\"nested\"%s", tail);
    }
    CHECK(run_prompt(reg, ex, json) == 0);
    dual.nested = true;
    want = expect(g, &dual, 5, 2, 6, 8, (vkf_noise_spec){.seed = 11}, 11, NULL, so, ks->s,
                  ks->n, false, NULL);
    check_captured(0, want, 2 * 4 * 6 * 8, "DualCFGGuider nested");
    free(want);
    unref_obj(ks);
    unref_obj(so);

    vkf_model_sampling_destroy(&ms);
done:
    for (size_t i = 0; i < VKF_ARRAY_SIZE(captured); i++)
        vkf_value_clear(&captured[i]);
    g = vkf_executor_gpu(ex);
    CHECK(!g || vkf_gpu_validation_messages(g) == 0);
    vkf_executor_destroy(&ex);
    vkf_registry_destroy(&reg);
    vkf_paths_destroy(&paths);
}

/* ------------------------------------------------------------------------ */
/* the real UNet (synthesized tiny SD1.5 and SD1.5-inpaint) behind the      */
/* driver: batched cond+uncond equals separate forwards; inpaint runs       */

static void test_real_unet(vkf_synth_arch arch, const char *name)
{
    const char *tmp = getenv("TMPDIR");
    char path[512];
    snprintf(path, sizeof(path), "%s/vkf_guidance_%s_%d.safetensors", tmp && *tmp ? tmp : "/tmp",
             name, (int)getpid());
    vkf_st_writer *sw = NULL;
    vkf_errbuf e = {{0}};
    CHECK_OK(vkf_st_writer_create(0x6a1d + (uint64_t)arch, &sw));
    CHECK_OK(vkf_synth_unet(sw, "model.diffusion_model.", arch, VKF_SYNTH_TINY, VKF_WDT_F32));
    CHECK_OK(vkf_st_writer_save(sw, path, &e));
    vkf_st_writer_destroy(&sw);
    vkf_weights *w = NULL;
    CHECK_OK(vkf_weights_open(path, &w, &quiet));
    vkf_diffusion_model *dm = NULL;
    int err = vkf_unet_load(gpu, w, "model.diffusion_model.", &dm, &e);
    if (err < 0)
        fprintf(stderr, "%s: %s\n", name, e.msg);
    CHECK_OK(err);
    vkf_weights_close(&w);
    unlink(path);
    vkf_model_sampling *ms = NULL;
    CHECK_OK(vkf_model_sampling_discrete(&ms, VKF_PREDICTION_EPS, 0.00085, 0.012, 1000, false));
    vkf_latent_format lf = {.channels = 4, .scale_factor = 0.18215f};
    vkf_model *m = vkf_model_new(dm, ms, lf);
    vkf_diffusion_model_unref(&dm);

    const int64_t B = 2, h = 8, wd = 8, n = B * 4 * h * wd;
    int64_t shape[4] = {B, 4, h, wd};
    int64_t D = m->dm->context_dim;
    gt_seed(31);
    float *cp = gt_random(7 * D), *cn = gt_random(14 * D), *x = gt_random(n);
    int64_t sp[3] = {1, 7, D}, sn[3] = {1, 14, D};
    vkf_conditioning *pos = vkf_conditioning_new(1), *neg = vkf_conditioning_new(1);
    pos->e[0].cond = gt_tensor(gpu, VKF_DTYPE_F32, 3, sp, cp);
    neg->e[0].cond = gt_tensor(gpu, VKF_DTYPE_F32, 3, sn, cn);
    float *latent = gt_random(n), *dmask = calloc((size_t)n, sizeof(float));
    for (int64_t i = 0; i < n; i++)
        dmask[i] = (i % wd) >= wd / 2 ? 1.0f : 0.0f;
    bool inpaint = m->dm->in_channels == 9;

    float *a = malloc((size_t)n * sizeof(float)), *b = malloc((size_t)n * sizeof(float));
    vkf_guide_spec spec = {.model = m, .positive = pos, .negative = neg, .cfg = 5.0};
    vkf_guidance *g = NULL;
    long fw = 0, rows = 0;
    CHECK_OK(vkf_guidance_create(&spec, shape, 4, latent, inpaint ? dmask : NULL, &g, &e));
    CHECK_OK(vkf_guidance_predict(g, x, 4.0f, a, NULL));
    vkf_guidance_stats(g, &fw, &rows);
    CHECK(fw == 1 && rows == 2 * B);   /* 7 and 14 tokens: one batch */
    vkf_guidance_destroy(&g);
    spec.max_batch_rows = 1;           /* one row per forward */
    CHECK_OK(vkf_guidance_create(&spec, shape, 4, latent, inpaint ? dmask : NULL, &g, &e));
    CHECK_OK(vkf_guidance_predict(g, x, 4.0f, b, NULL));
    vkf_guidance_stats(g, &fw, &rows);
    CHECK(fw == 2 && rows == 2 * B);   /* a chunk is never split below the batch */
    vkf_guidance_destroy(&g);
    char what[128];
    snprintf(what, sizeof(what), "%s: batched vs separate", name);
    float mx = 0;
    for (int64_t i = 0; i < n; i++)
        mx = fabsf(a[i]) > mx ? fabsf(a[i]) : mx;
    gt_compare(what, a, b, n, 1e-4f, 1e-4f * (mx > 1 ? mx : 1));
    bool finite = true;
    for (int64_t i = 0; i < n; i++)
        finite = finite && isfinite(a[i]);
    CHECK(finite);

    /* a 2-step euler run with a noise mask: finite, and the kept half is the latent */
    float sig[3] = {6.0f, 2.0f, 0.0f};
    float *noise = gt_random(n), *out = malloc((size_t)n * sizeof(float));
    int64_t mshape[4] = {1, 1, h, wd};
    float *mk = malloc((size_t)(h * wd) * sizeof(float));
    for (int64_t i = 0; i < h * wd; i++)
        mk[i] = dmask[i];
    vkf_tensor *mt = gt_tensor(gpu, VKF_DTYPE_F32, 4, mshape, mk);
    vkf_guided_sample_params gp = {
        .guide = &spec, .sampler_name = "euler", .sigmas = sig, .n_sigmas = 3, .shape = shape,
        .ndim = 4, .latent = latent, .noise = noise, .noise_mask = mt, .seed = 3, .log = &quiet,
    };
    CHECK_OK(vkf_guided_sample(&gp, out, NULL, NULL, &e));
    finite = true;
    float worst = 0;
    for (int64_t i = 0; i < n; i++) {
        finite = finite && isfinite(out[i]);
        if (dmask[i] == 0.0f && fabsf(out[i] - latent[i]) > worst)
            worst = fabsf(out[i] - latent[i]);
    }
    CHECK(finite && worst < 1e-4f);

    vkf_tensor_unref(&mt);
    free(mk);
    free(noise);
    free(out);
    free(a);
    free(b);
    free(cp);
    free(cn);
    free(x);
    free(latent);
    free(dmask);
    unref_obj(pos);
    unref_obj(neg);
    unref_obj(m);
}

const char *const *vkf_ksampler_sampler_options(void);
const char *const *vkf_ksampler_scheduler_options(void);

static void test_sampler_list(void)
{
    /* KSampler's combo is ComfyUI's SAMPLER_NAMES, as vkf_sampler_names() */
    const char *const *opts = vkf_ksampler_sampler_options();
    int n = 0, k = 0;
    const char *const *names = vkf_sampler_names(&n);
    while (opts[k])
        k++;
    CHECK(k == n);
    for (int i = 0; i < n && i < k; i++) {
        if (strcmp(opts[i], names[i]))
            fprintf(stderr, "sampler %d: KSampler lists %s, vkf_sampler_names %s\n", i, opts[i],
                    names[i]);
        CHECK(!strcmp(opts[i], names[i]));
    }
    /* and the scheduler combo vkf_scheduler_name's list */
    const char *const *sch = vkf_ksampler_scheduler_options();
    for (int i = 0; i < VKF_SCHEDULER_COUNT; i++)
        CHECK(sch[i] && !strcmp(sch[i], vkf_scheduler_name((vkf_scheduler)i)));
    CHECK(sch[VKF_SCHEDULER_COUNT] == NULL);
}

int main(void)
{
    quiet = (vkf_log){.level = VKF_LOG_ERROR};
    gpu = gt_gpu_open((vkf_gpu_params){0});
    test_windows();
    test_sampler_list();
    test_cfg();
    test_goldens();
    test_runs();
    test_nodes();
    test_real_unet(VKF_SYNTH_SD15, "sd15");
    test_real_unet(VKF_SYNTH_SD15_INPAINT, "sd15_inpaint");
    return gt_finish(&gpu);
}
