/*
 * ComfyUI's sampling driver for SD-style models (vkflow/guidance.h):
 * comfy/samplers.py (process_conds, calc_cond_batch, cfg_function,
 * CFGGuider, KSamplerX0Inpaint, KSAMPLER.sample, KSampler.sample),
 * comfy/sample.py, comfy/sampler_helpers.py (prepare_mask) and
 * nodes.py common_ksampler, restated in C.
 *
 * Everything on the sampler's side of the model call is host float32 in
 * the order torch evaluates it (each product and sum rounded on its own:
 * fp_strict.h); the network input of one batched forward is uploaded once
 * and its output downloaded once.
 */
#include "sampling/fp_strict.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "vkflow/guidance.h"

enum { ROLE_POS = 0, ROLE_MID = 1, ROLE_NEG = 2, ROLE_COUNT = 3 };

/* One conditioning entry after process_conds. */
typedef struct gentry {
    vkf_tensor *cross;        /* [Bc, T, D], referenced */
    int64_t bc, T, D;
    bool has_area;
    int64_t area[4];          /* resolved (h, w, y, x), as ComfyUI compares them */
    int64_t carea[4];         /* clamped to the latent (get_area_and_mult) */
    float strength;
    float *mask;              /* [mask_b, H, W] resized to the latent, or NULL */
    int64_t mask_b;
    float mask_strength;
    bool has_start, has_end;
    float ts_start, ts_end;   /* sigmas (compared in float32, as torch does) */
    float *concat;            /* [B, cc, H, W] c_concat, or NULL */
    float *mult;              /* [B, C, ah, aw] */
    float *y;                 /* [yb, adm] SDXL ADM vector, or NULL */
    int64_t yb;
} gentry;

typedef struct glist {
    gentry *e;
    int n, cap;
} glist;

#define CTX_CACHE 16

typedef struct ctx_cache_entry {
    int m;
    const gentry **ids;
    vkf_tensor *t;
} ctx_cache_entry;

struct vkf_guidance {
    vkf_guide_spec spec;
    vkf_diffusion_model *dm;
    const vkf_model_sampling *ms;
    vkf_gpu *gpu;
    int64_t B, C, H, W;
    size_t n;
    int cin, cc;
    int adm;                  /* dm->adm_in_channels */
    bool refiner;
    glist L[ROLE_COUNT];
    bool present[ROLE_COUNT];
    ctx_cache_entry cache[CTX_CACHE];
    int ncache, cache_next;
    float *acc[ROLE_COUNT], *cnt[ROLE_COUNT];
    vkf_exec_ctx *ctx;
    long forwards, rows;
    char err[512];
};

/* ------------------------------------------------------------------------ */
/* small helpers                                                            */

static bool py_isclose1(double a)
{
    /* math.isclose(a, 1.0) with rel_tol 1e-9 */
    double m = fabs(a) > 1.0 ? fabs(a) : 1.0;
    return fabs(a - 1.0) <= 1e-9 * m;
}

static int64_t gcd64(int64_t a, int64_t b)
{
    while (b) {
        int64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

static int64_t lcm64(int64_t a, int64_t b)
{
    return a / gcd64(a, b) * b;
}

static int gerr(vkf_guidance *g, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int gerr(vkf_guidance *g, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g->err, sizeof(g->err), fmt, ap);
    va_end(ap);
    return code;
}

static float *fdup(const float *p, size_t n)
{
    float *q = vkf_malloc((n ? n : 1) * sizeof(float));
    if (q && n)
        memcpy(q, p, n * sizeof(float));
    return q;
}

void vkf_latent_process_in(const vkf_latent_format *lf, const float *x, float *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        float v = x[i] - lf->shift;
        out[i] = v * lf->scale_factor;
    }
}

void vkf_latent_process_out(const vkf_latent_format *lf, const float *x, float *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        float v = x[i] / lf->scale_factor;
        out[i] = v + lf->shift;
    }
}

/*
 * comfy.utils.common_upscale(s, w, h, "bilinear", crop) on host data
 * [nb, c, H, W] → out [nb, c, h, w], through the GPU's torch-exact
 * interpolate (align_corners=False).  crop "center" first cuts the source
 * to the target aspect ratio.  Same size and no crop: a copy (ComfyUI
 * callers skip the interpolation then; bilinear at scale 1 is exact anyway).
 */
static int resize_host(vkf_gpu *gpu, const float *data, int64_t nb, int64_t c, int64_t H,
                       int64_t W, int64_t h, int64_t w, bool center, float *out)
{
    size_t plane_out = (size_t)(nb * c * h * w);
    if (H == h && W == w) {
        memcpy(out, data, plane_out * sizeof(float));
        return 0;
    }
    int64_t shape[4] = {nb, c, H, W};
    vkf_tensor *t = NULL, *v = NULL, *r = NULL, *tmp = NULL;
    int err;
    VKF_TRY(vkf_tensor_create(gpu, VKF_DTYPE_F32, 4, shape, &t));
    VKF_TRY(vkf_tensor_upload(t, data));
    v = vkf_tensor_ref(t);
    if (center) {
        double old_aspect = (double)W / (double)H, new_aspect = (double)w / (double)h;
        int64_t x0 = 0, y0 = 0;
        if (old_aspect > new_aspect)
            x0 = (int64_t)rint((W - W * (new_aspect / old_aspect)) / 2);
        else if (old_aspect < new_aspect)
            y0 = (int64_t)rint((H - H * (old_aspect / new_aspect)) / 2);
        if (y0 > 0) {
            VKF_TRY(vkf_tensor_slice(v, 2, y0, H - 2 * y0, &tmp));
            vkf_tensor_unref(&v);
            v = tmp;
            tmp = NULL;
        }
        if (x0 > 0) {
            VKF_TRY(vkf_tensor_slice(v, 3, x0, W - 2 * x0, &tmp));
            vkf_tensor_unref(&v);
            v = tmp;
            tmp = NULL;
        }
    }
    vkf_upsample_params up = {.mode = VKF_UPSAMPLE_BILINEAR, .size = {h, w}};
    VKF_TRY(vkf_op_upsample(gpu, v, &up, &r));
    VKF_TRY(vkf_tensor_download(r, out));
fail:
    vkf_tensor_unref(&t);
    vkf_tensor_unref(&v);
    vkf_tensor_unref(&r);
    vkf_tensor_unref(&tmp);
    return err < 0 ? err : 0;
}

/* A mask tensor in any of [H, W], [b, H, W], [b, 1, H, W] → host
 * [b, H, W]; *rows = b. */
static int mask_download(vkf_tensor *m, float **out, int64_t *rows, int64_t *mh, int64_t *mw)
{
    int nd = vkf_tensor_ndim(m);
    const int64_t *s = vkf_tensor_shape(m);
    if (nd < 2 || nd > 4 || (nd == 4 && s[1] != 1))
        return VKF_EINVAL;
    int64_t n = vkf_tensor_numel(m);
    *mh = s[nd - 2];
    *mw = s[nd - 1];
    *rows = n / (*mh * *mw);
    float *p = vkf_malloc((size_t)(n ? n : 1) * sizeof(float));
    if (!p)
        return VKF_ENOMEM;
    int err = vkf_tensor_download(m, p);
    if (err < 0) {
        vkf_free(p);
        return err;
    }
    *out = p;
    return 0;
}

/* comfy.utils.resize_to_batch_size: row i of the result is row idx[i]. */
static int64_t resize_batch_index(int64_t in_b, int64_t b, int64_t i)
{
    if (in_b == b)
        return i;
    if (b <= 1)
        return 0;
    if (b < in_b) {
        double scale = (double)(in_b - 1) / (double)(b - 1);
        int64_t k = (int64_t)rint(i * scale);
        return k < in_b - 1 ? k : in_b - 1;
    }
    double scale = (double)in_b / (double)b;
    int64_t k = (int64_t)floor((i + 0.5) * scale);
    return k < in_b - 1 ? k : in_b - 1;
}

/* ------------------------------------------------------------------------ */
/* SDXL ADM                                                                 */

void vkf_fourier_embed(float t, int dim, float *out)
{
    int half = dim / 2;
    /* torch: exp(-math.log(10000) * arange(half, f32) / half), then t * f */
    float nl = (float)-log(10000.0);
    for (int i = 0; i < half; i++) {
        float a = nl * (float)i;
        /* exp correctly rounded; torch's vectorised expf is within 1 ulp */
        float f = (float)exp((double)(a / (float)half));
        float arg = t * f;
        out[i] = cosf(arg);
        out[half + i] = sinf(arg);
    }
}

void vkf_sdxl_encode_adm(const float *pooled, int pooled_dim, const vkf_adm_sizes *s, float *y)
{
    memcpy(y, pooled, (size_t)pooled_dim * sizeof(float));
    double v[6] = {s->height, s->width, s->crop_h, s->crop_w,
                   s->refiner ? s->aesthetic_score : s->target_height, s->target_width};
    int n = s->refiner ? 5 : 6;
    for (int i = 0; i < n; i++)
        vkf_fourier_embed((float)v[i], VKF_ADM_FOURIER, y + pooled_dim + i * VKF_ADM_FOURIER);
}

/* ------------------------------------------------------------------------ */
/* process_conds                                                            */

static int glist_push(glist *l, gentry **out)
{
    if (vkf_grow(&l->e, &l->cap, l->n + 1, sizeof(gentry)) < 0)
        return VKF_ENOMEM;
    gentry *e = &l->e[l->n++];
    memset(e, 0, sizeof(*e));
    *out = e;
    return 0;
}

static void gentry_clear(gentry *e)
{
    vkf_tensor_unref(&e->cross);
    vkf_free(e->mask);
    vkf_free(e->concat);
    vkf_free(e->mult);
    vkf_free(e->y);
    memset(e, 0, sizeof(*e));
}

/* BaseModel.concat_cond for SD inpaint models (concat_keys mask,
 * masked_image): [B, 5, H, W]. */
static int build_concat(vkf_guidance *g, const vkf_cond_entry *ce, const float *latent_image,
                        const float *denoise_mask, float **out)
{
    const vkf_latent_format *lf = &g->spec.model->latent;
    int64_t B = g->B, C = g->C, H = g->H, W = g->W, plane = H * W;
    float *cat = vkf_calloc((size_t)(B * 5 * plane), sizeof(float));
    float *img = NULL, *msk = NULL, *raw = NULL, *tmp = NULL;
    int64_t img_b = B, msk_b = 0;
    int err = 0;
    VKF_CHECK_ALLOC(cat);

    /* concat_latent_image: the entry's (process_in) or the sampled latent */
    if (ce->concat_latent_image) {
        vkf_tensor *t = ce->concat_latent_image;
        const int64_t *s = vkf_tensor_shape(t);
        if (vkf_tensor_ndim(t) != 4 || s[1] != C) {
            err = gerr(g, VKF_EINVAL, "concat_latent_image must be [B, %lld, h, w]", (long long)C);
            goto fail;
        }
        int64_t n = vkf_tensor_numel(t);
        raw = vkf_malloc((size_t)n * sizeof(float));
        VKF_CHECK_ALLOC(raw);
        VKF_TRY(vkf_tensor_download(t, raw));
        vkf_latent_process_in(lf, raw, raw, (size_t)n);
        img_b = s[0];
        img = vkf_malloc((size_t)(img_b * C * plane) * sizeof(float));
        VKF_CHECK_ALLOC(img);
        VKF_TRY(resize_host(g->gpu, raw, img_b, C, s[2], s[3], H, W, true, img));
    } else {
        img = vkf_calloc((size_t)(B * C * plane), sizeof(float));
        VKF_CHECK_ALLOC(img);
        if (latent_image)
            memcpy(img, latent_image, (size_t)(B * C * plane) * sizeof(float));
    }

    /* concat_mask, else the sampling denoise mask; rounded, batch-resized */
    if (ce->concat_mask) {
        int64_t mh, mw;
        VKF_TRY(mask_download(ce->concat_mask, &tmp, &msk_b, &mh, &mw));
        msk = vkf_malloc((size_t)(msk_b * plane) * sizeof(float));
        VKF_CHECK_ALLOC(msk);
        VKF_TRY(resize_host(g->gpu, tmp, msk_b, 1, mh, mw, H, W, true, msk));
    } else if (denoise_mask) {
        msk_b = B;
        msk = vkf_malloc((size_t)(B * plane) * sizeof(float));
        VKF_CHECK_ALLOC(msk);
        for (int64_t b = 0; b < B; b++)
            memcpy(msk + b * plane, denoise_mask + b * C * plane, (size_t)plane * sizeof(float));
    }

    for (int64_t b = 0; b < B; b++) {
        float *dst = cat + b * 5 * plane;
        if (msk) {
            const float *m = msk + resize_batch_index(msk_b, B, b) * plane;
            const float *im = img + resize_batch_index(img_b, B, b) * C * plane;
            for (int64_t i = 0; i < plane; i++)
                dst[i] = rintf(m[i]);
            memcpy(dst + plane, im, (size_t)(4 * plane) * sizeof(float));
        } else {
            static const double blank[4] = {0.8223, -0.6876, 0.6364, 0.1380};
            for (int64_t i = 0; i < plane; i++)
                dst[i] = 1.0f;
            for (int c = 0; c < 4; c++)
                for (int64_t i = 0; i < plane; i++)
                    dst[(1 + c) * plane + i] = 1.0f * (float)blank[c];
        }
    }
    *out = cat;
    cat = NULL;
fail:
    vkf_free(cat);
    vkf_free(img);
    vkf_free(msk);
    vkf_free(raw);
    vkf_free(tmp);
    return err;
}

/* resolve_areas_and_cond_masks_multidim + calculate_start_end_timesteps
 * + encode_model_conds for one entry. */
/* SDXL.encode_adm / SDXLRefiner.encode_adm for one entry: width/height
 * from the entry or the latent x 8 (encode_model_conds), targets default
 * to them, aesthetic score 6 / 2.5 by prompt type. */
static int build_adm(vkf_guidance *g, const vkf_cond_entry *ce, int role, gentry *e)
{
    int nf = g->refiner ? 5 : 6;
    if (!ce->pooled)
        return gerr(g, VKF_EINVAL, "%s needs the pooled CLIP output in its conditioning "
                    "(encode the prompt with an SDXL CLIP)", g->dm->arch);
    const int64_t *ps = vkf_tensor_shape(ce->pooled);
    int nd = vkf_tensor_ndim(ce->pooled);
    int64_t pd = ps[nd - 1], pb = vkf_tensor_numel(ce->pooled) / (pd ? pd : 1);
    if (pd + nf * VKF_ADM_FOURIER != g->adm || pb < 1)
        return gerr(g, VKF_EINVAL, "pooled output of width %lld does not fit the %s model's "
                    "ADM input %d (%d + %d x %d expected)", (long long)pd, g->dm->arch, g->adm,
                    g->adm - nf * VKF_ADM_FOURIER, nf, VKF_ADM_FOURIER);
    int err = 0;
    float *pooled = vkf_malloc((size_t)(pb * pd) * sizeof(float));
    e->y = vkf_malloc((size_t)(pb * g->adm) * sizeof(float));
    VKF_CHECK_ALLOC(pooled);
    VKF_CHECK_ALLOC(e->y);
    VKF_TRY(vkf_tensor_download(ce->pooled, pooled));
    vkf_adm_sizes sz = {0};
    sz.width = ce->width > 0 ? ce->width : (double)(g->W * 8);
    sz.height = ce->height > 0 ? ce->height : (double)(g->H * 8);
    sz.crop_w = ce->crop_w;
    sz.crop_h = ce->crop_h;
    sz.target_width = ce->target_width > 0 ? ce->target_width : sz.width;
    sz.target_height = ce->target_height > 0 ? ce->target_height : sz.height;
    sz.aesthetic_score = ce->has_aesthetic_score ? ce->aesthetic_score
                         : role == ROLE_NEG         ? 2.5
                                                    : 6.0;
    sz.refiner = g->refiner;
    for (int64_t b = 0; b < pb; b++)
        vkf_sdxl_encode_adm(pooled + b * pd, (int)pd, &sz, e->y + b * g->adm);
    e->yb = pb;
fail:
    vkf_free(pooled);
    return err;
}

static int prepare_entry(vkf_guidance *g, const vkf_cond_entry *ce, int role,
                         const float *latent_image, const float *denoise_mask, gentry *e)
{
    int err = 0;
    float *raw = NULL;
    if (!ce->cond || vkf_tensor_ndim(ce->cond) != 3)
        return gerr(g, VKF_EINVAL, "a conditioning entry has no [1, tokens, dim] tensor");
    const int64_t *cs = vkf_tensor_shape(ce->cond);
    if (g->dm->context_dim > 0 && cs[2] != g->dm->context_dim)
        return gerr(g, VKF_EINVAL,
                    "conditioning width %lld does not match the model's context_dim %d "
                    "(CLIP and model from different families?)",
                    (long long)cs[2], g->dm->context_dim);
    if (cs[0] < 1 || cs[1] < 1)
        return gerr(g, VKF_EINVAL, "empty conditioning tensor");
    e->cross = vkf_tensor_ref(ce->cond);
    e->bc = cs[0];
    e->T = cs[1];
    e->D = cs[2];
    e->strength = ce->strength;
    e->mask_strength = ce->mask_strength;
    if (g->adm > 0)
        VKF_TRY(build_adm(g, ce, role, e));

    if (ce->has_area) {
        e->has_area = true;
        if (ce->area_is_percent) {
            int64_t h = (int64_t)rint(ce->area[0] * (double)g->H);
            int64_t w = (int64_t)rint(ce->area[1] * (double)g->W);
            e->area[0] = h > 1 ? h : 1;
            e->area[1] = w > 1 ? w : 1;
            e->area[2] = (int64_t)rint(ce->area[2] * (double)g->H);
            e->area[3] = (int64_t)rint(ce->area[3] * (double)g->W);
        } else {
            for (int i = 0; i < 4; i++)
                e->area[i] = (int64_t)llround(ce->area[i]);
        }
    }

    if (ce->mask) {
        int64_t mh, mw, rows;
        VKF_TRY(mask_download(ce->mask, &raw, &rows, &mh, &mw));
        e->mask_b = rows;
        e->mask = vkf_malloc((size_t)(rows * g->H * g->W) * sizeof(float));
        VKF_CHECK_ALLOC(e->mask);
        VKF_TRY(resize_host(g->gpu, raw, rows, 1, mh, mw, g->H, g->W, false, e->mask));
        if (ce->set_area_to_bounds) {
            int64_t x0 = -1, y0 = -1, x1 = -1, y1 = -1;
            for (int64_t y = 0; y < g->H; y++)
                for (int64_t x = 0; x < g->W; x++) {
                    float mx = 0;
                    for (int64_t b = 0; b < rows; b++) {
                        float v = fabsf(e->mask[(b * g->H + y) * g->W + x]);
                        mx = v > mx ? v : mx;
                    }
                    if (mx != 0) {
                        if (x0 < 0 || x < x0)
                            x0 = x;
                        if (x > x1)
                            x1 = x;
                        if (y0 < 0)
                            y0 = y;
                        y1 = y;
                    }
                }
            e->has_area = true;
            if (x0 < 0) {
                e->area[0] = 8;
                e->area[1] = 8;
                e->area[2] = 0;
                e->area[3] = 0;
            } else {
                int64_t hh = y1 - y0 + 1, ww = x1 - x0 + 1;
                e->area[0] = hh > 8 ? hh : 8;
                e->area[1] = ww > 8 ? ww : 8;
                e->area[2] = y0;
                e->area[3] = x0;
            }
        }
    }

    /* Entries always carry start/end percent here; 0 and 1 are exactly
     * ComfyUI's "not given" (σ thresholds 999999999.9 / 0 for discrete
     * models, 1 / 0 for flow ones that never exceed 1). */
    if (ce->start_percent > 0) {
        e->has_start = true;
        e->ts_start = (float)vkf_model_sampling_percent_to_sigma(g->ms, ce->start_percent);
    }
    if (ce->end_percent < 1) {
        e->has_end = true;
        e->ts_end = (float)vkf_model_sampling_percent_to_sigma(g->ms, ce->end_percent);
    }

    if (g->cc > 0)
        VKF_TRY(build_concat(g, ce, latent_image, denoise_mask, &e->concat));
fail:
    vkf_free(raw);
    if (err == VKF_ENOMEM && !g->err[0])
        gerr(g, err, "out of memory preparing the conditioning");
    else if (err < 0 && !g->err[0])
        gerr(g, err, "preparing the conditioning failed: %s", vkf_strerror(err));
    return err;
}

static int gentry_copy(gentry *dst, const gentry *src, size_t concat_n, int64_t H, int64_t W,
                       int adm)
{
    *dst = *src;
    dst->cross = vkf_tensor_ref(src->cross);
    dst->mask = NULL;
    dst->concat = NULL;
    dst->mult = NULL;
    dst->y = NULL;
    if (src->y && !(dst->y = fdup(src->y, (size_t)src->yb * (size_t)adm)))
        return VKF_ENOMEM;
    if (src->mask && !(dst->mask = fdup(src->mask, (size_t)(src->mask_b * H * W))))
        return VKF_ENOMEM;
    if (src->concat && !(dst->concat = fdup(src->concat, concat_n)))
        return VKF_ENOMEM;
    return 0;
}

/* area_inside(a, cmp) of create_cond_with_same_area_if_none (2-D). */
static bool area_inside(const int64_t *a, const int64_t *cmp)
{
    for (int i = 0; i < 2; i++)
        if (a[2 + i] < cmp[2 + i])
            return false;
    for (int i = 0; i < 2; i++)
        if (a[i] + a[2 + i] > cmp[i] + cmp[2 + i])
            return false;
    return true;
}

static int same_area_if_none(vkf_guidance *g, glist *conds, const gentry *c)
{
    if (!c->has_area)
        return 0;
    int smallest = -1;
    for (int i = 0; i < conds->n; i++) {
        const gentry *x = &conds->e[i];
        if (x->has_area) {
            if (area_inside(c->area, x->area)) {
                if (smallest < 0 || !conds->e[smallest].has_area)
                    smallest = i;
                else {
                    const int64_t *s = conds->e[smallest].area;
                    if (s[0] * s[1] > x->area[0] * x->area[1])
                        smallest = i;
                }
            }
        } else if (smallest < 0) {
            smallest = i;
        }
    }
    if (smallest < 0)
        return 0;
    if (conds->e[smallest].has_area && !memcmp(conds->e[smallest].area, c->area, sizeof(c->area)))
        return 0;
    /* a copy of c with the model conds (context, c_concat) of smallest */
    gentry tmp;
    size_t concat_n = (size_t)(g->B * g->cc * g->H * g->W);
    int err = gentry_copy(&tmp, c, concat_n, g->H, g->W, g->adm);
    if (err >= 0) {
        vkf_tensor_unref(&tmp.cross);
        vkf_free(tmp.concat);
        tmp.concat = NULL;
        const gentry *s = &conds->e[smallest];
        vkf_free(tmp.y);
        tmp.y = NULL;
        tmp.yb = s->yb;
        if (s->y && !(tmp.y = fdup(s->y, (size_t)s->yb * (size_t)g->adm)))
            err = VKF_ENOMEM;
        tmp.cross = vkf_tensor_ref(s->cross);
        tmp.bc = s->bc;
        tmp.T = s->T;
        tmp.D = s->D;
        if (s->concat && !(tmp.concat = fdup(s->concat, concat_n)))
            err = VKF_ENOMEM;
    }
    gentry *slot;
    if (err >= 0)
        err = glist_push(conds, &slot);
    if (err < 0) {
        gentry_clear(&tmp);
        return err;
    }
    *slot = tmp;
    return 0;
}

/* get_area_and_mult's static part: the clamped area and the weights. */
static int compute_mult(vkf_guidance *g, gentry *e)
{
    int64_t B = g->B, C = g->C, H = g->H, W = g->W;
    int64_t *a = e->carea;
    if (e->has_area) {
        a[0] = e->area[0];
        a[1] = e->area[1];
        a[2] = e->area[2];
        a[3] = e->area[3];
        int64_t dims[2] = {H, W};
        for (int i = 0; i < 2; i++) {
            int64_t lim = dims[i] - a[2 + i];
            if (lim < a[i])
                a[i] = lim;
            if (a[2 + i] < 0 || a[i] < 1)
                return gerr(g, VKF_EINVAL,
                            "conditioning area (h %lld, w %lld, y %lld, x %lld) lies outside "
                            "the %lldx%lld latent",
                            (long long)e->area[0], (long long)e->area[1],
                            (long long)e->area[2], (long long)e->area[3], (long long)H,
                            (long long)W);
        }
    } else {
        a[0] = H;
        a[1] = W;
        a[2] = 0;
        a[3] = 0;
    }
    int64_t ah = a[0], aw = a[1], plane = ah * aw;
    e->mult = vkf_malloc((size_t)(B * C * plane) * sizeof(float));
    if (!e->mult)
        return VKF_ENOMEM;
    if (e->mask) {
        int64_t rows = e->mask_b < B ? e->mask_b : B;
        if (B % rows)
            return gerr(g, VKF_EINVAL,
                        "a conditioning mask with %lld masks does not fit a batch of %lld",
                        (long long)e->mask_b, (long long)B);
        for (int64_t b = 0; b < B; b++) {
            const float *m = e->mask + (b % rows) * H * W;
            for (int64_t y = 0; y < ah; y++)
                for (int64_t x = 0; x < aw; x++) {
                    float v = m[(a[2] + y) * W + a[3] + x] * e->mask_strength;
                    v = v * e->strength;
                    for (int64_t c = 0; c < C; c++)
                        e->mult[((b * C + c) * ah + y) * aw + x] = v;
                }
        }
    } else {
        float v = 1.0f * e->strength;
        for (int64_t i = 0; i < B * C * plane; i++)
            e->mult[i] = v;
        if (e->has_area) {
            const int fuzz = 8;
            int64_t sizes[2] = {ah, aw}, dims[2] = {H, W};
            for (int i = 0; i < 2; i++) {
                int64_t rr = sizes[i] / 4 < fuzz ? sizes[i] / 4 : fuzz;
                for (int side = 0; side < 2; side++) {
                    if (side == 0 && a[2 + i] == 0)
                        continue;
                    if (side == 1 && a[i] + a[2 + i] >= dims[i])
                        continue;
                    for (int64_t t = 0; t < rr; t++) {
                        float f = (float)((1.0 / (double)rr) * (double)(t + 1));
                        int64_t line = side == 0 ? t : a[i] - 1 - t;
                        for (int64_t bc = 0; bc < B * C; bc++) {
                            float *p = e->mult + bc * plane;
                            if (i == 0)
                                for (int64_t x = 0; x < aw; x++)
                                    p[line * aw + x] *= f;
                            else
                                for (int64_t y = 0; y < ah; y++)
                                    p[y * aw + line] *= f;
                        }
                    }
                }
            }
        }
    }
    return 0;
}

void vkf_guide_spec_from_guider(const vkf_guider *gd, vkf_guide_spec *out)
{
    memset(out, 0, sizeof(*out));
    out->model = gd->model;
    out->positive = gd->positive;
    out->negative = gd->negative;
    out->middle = gd->dual ? gd->cond2 : NULL;
    out->cfg = gd->cfg;
    out->cfg2 = gd->cfg_cond2_negative;
    out->dual = gd->dual;
    out->nested = gd->dual && gd->nested;
}

int vkf_guidance_create(const vkf_guide_spec *spec, const int64_t *shape, int ndim,
                        const float *latent_image, const float *denoise_mask,
                        vkf_guidance **out, vkf_errbuf *e)
{
    *out = NULL;
    if (!spec || !spec->model || !spec->model->dm || !spec->model->ms || !spec->positive)
        return vkf_errbuf_set(e, VKF_EINVAL, "sampling needs a model and positive conditioning");
    if (spec->dual && (!spec->middle || !spec->negative))
        return vkf_errbuf_set(e, VKF_EINVAL, "DualCFGGuider needs cond1, cond2 and negative");
    if (ndim != 4)
        return vkf_errbuf_set(e, VKF_EUNSUPPORTED,
                              "the sampling driver handles image latents [B, C, h, w] only "
                              "(got %d dimensions)", ndim);
    vkf_diffusion_model *dm = spec->model->dm;
    if (shape[1] != dm->latent_channels)
        return vkf_errbuf_set(e, VKF_EINVAL,
                              "the latent has %lld channels but the model expects %d",
                              (long long)shape[1], dm->latent_channels);
    int cc = dm->in_channels - dm->latent_channels;
    if (cc != 0 && cc != 5)
        return vkf_errbuf_set(e, VKF_EUNSUPPORTED,
                              "a model with %d input channels for %d latent channels is not "
                              "supported (inpaint models have latent + 5)",
                              dm->in_channels, dm->latent_channels);
    if (dm->adm_in_channels > 0 && strncmp(dm->arch, "SDXL", 4))
        return vkf_errbuf_set(e, VKF_EUNSUPPORTED,
                              "class-conditioned %s models (adm_in_channels %d, e.g. unCLIP) "
                              "are not supported by the sampling driver; SDXL is",
                              dm->arch, dm->adm_in_channels);

    vkf_guidance *g = vkf_calloc(1, sizeof(*g));
    if (!g)
        return vkf_errbuf_set(e, VKF_ENOMEM, "out of memory");
    g->spec = *spec;
    g->dm = dm;
    g->ms = spec->model->ms;
    g->gpu = dm->gpu;
    g->B = shape[0];
    g->C = shape[1];
    g->H = shape[2];
    g->W = shape[3];
    g->n = (size_t)(g->B * g->C * g->H * g->W);
    g->cin = dm->in_channels;
    g->cc = cc;
    g->adm = dm->adm_in_channels;
    g->refiner = !strcmp(dm->arch, "SDXL Refiner");
    int err = 0;

    const vkf_conditioning *src[ROLE_COUNT] = {spec->positive, spec->dual ? spec->middle : NULL,
                                               spec->negative};
    for (int r = 0; r < ROLE_COUNT; r++) {
        if (!src[r])
            continue;
        g->present[r] = true;
        for (int i = 0; i < src[r]->n; i++) {
            gentry *ge;
            VKF_TRY(glist_push(&g->L[r], &ge));
            VKF_TRY(prepare_entry(g, &src[r]->e[i], r, latent_image, denoise_mask, ge));
        }
    }
    /* make sure each cond area has an opposite one with the same area;
     * dict order: positive, (middle), negative */
    for (int k = 0; k < ROLE_COUNT; k++) {
        if (!g->present[k])
            continue;
        for (int i = 0; i < g->L[k].n; i++)
            for (int kk = 0; kk < ROLE_COUNT; kk++) {
                if (kk == k || !g->present[kk])
                    continue;
                gentry c = g->L[k].e[i];   /* by value: L[kk] may move, L[k] does not */
                VKF_TRY(same_area_if_none(g, &g->L[kk], &c));
            }
    }
    for (int k = 0; k < ROLE_COUNT; k++)
        for (int i = 0; i < g->L[k].n; i++)
            VKF_TRY(compute_mult(g, &g->L[k].e[i]));
    for (int k = 0; k < ROLE_COUNT; k++) {
        g->acc[k] = vkf_malloc(g->n * sizeof(float));
        g->cnt[k] = vkf_malloc(g->n * sizeof(float));
        VKF_CHECK_ALLOC(g->acc[k]);
        VKF_CHECK_ALLOC(g->cnt[k]);
    }
    *out = g;
    return 0;
fail:
    if (err == VKF_ENOMEM && !g->err[0])
        snprintf(g->err, sizeof(g->err), "out of memory preparing the conditioning");
    vkf_errbuf_set(e, err, "%s", g->err[0] ? g->err : vkf_strerror(err));
    vkf_guidance_destroy(&g);
    return err;
}

void vkf_guidance_destroy(vkf_guidance **gp)
{
    vkf_guidance *g = *gp;
    if (!g)
        return;
    for (int k = 0; k < ROLE_COUNT; k++) {
        for (int i = 0; i < g->L[k].n; i++)
            gentry_clear(&g->L[k].e[i]);
        vkf_free(g->L[k].e);
        vkf_free(g->acc[k]);
        vkf_free(g->cnt[k]);
    }
    for (int i = 0; i < g->ncache; i++) {
        vkf_free(g->cache[i].ids);
        vkf_tensor_unref(&g->cache[i].t);
    }
    vkf_free(g);
    *gp = NULL;
}

void vkf_guidance_set_ctx(vkf_guidance *g, vkf_exec_ctx *ctx)
{
    g->ctx = ctx;
}

void vkf_guidance_stats(const vkf_guidance *g, long *forwards, long *rows)
{
    if (forwards)
        *forwards = g->forwards;
    if (rows)
        *rows = g->rows;
}

const char *vkf_guidance_error(const vkf_guidance *g)
{
    return g->err;
}

/* ------------------------------------------------------------------------ */
/* calc_cond_batch                                                          */

typedef struct run_item {
    int role;
    const gentry *e;
} run_item;

/* can_concat_cond: same input shape, CONDCrossAttn.can_concat (token
 * counts padded by repetition to their lcm, at most 4×), same c_concat
 * shape (follows from the area). */
static bool can_concat(const gentry *a, const gentry *b)
{
    if (a->carea[0] != b->carea[0] || a->carea[1] != b->carea[1])
        return false;
    if (a->D != b->D)
        return false;
    if (a->T != b->T) {
        int64_t l = lcm64(a->T, b->T);
        int64_t mn = a->T < b->T ? a->T : b->T;
        if (l / mn > 4)
            return false;
    }
    return true;
}

/* cond_cat's c_crossattn for the chunks: each chunk's context repeated to
 * the batch (repeat_to_batch_size), tokens tiled to the lcm length;
 * cached per chunk composition. */
static int get_context(vkf_guidance *g, const run_item *items, int m, vkf_tensor **out)
{
    for (int i = 0; i < g->ncache; i++) {
        ctx_cache_entry *c = &g->cache[i];
        if (c->m != m)
            continue;
        bool same = true;
        for (int j = 0; j < m && same; j++)
            same = c->ids[j] == items[j].e;
        if (same) {
            *out = vkf_tensor_ref(c->t);
            return 0;
        }
    }
    int64_t L = items[0].e->T;
    for (int j = 1; j < m; j++)
        L = lcm64(L, items[j].e->T);
    int64_t B = g->B;
    int err = 0;
    int npieces = (int)(m * B);
    vkf_tensor **pieces = vkf_calloc((size_t)npieces, sizeof(*pieces));
    vkf_tensor **tiles = vkf_calloc((size_t)(L > 1 ? L : 1), sizeof(*tiles));
    vkf_tensor *tiled = NULL, *row = NULL, *res = NULL;
    const gentry **ids = vkf_malloc((size_t)m * sizeof(*ids));
    VKF_CHECK_ALLOC(pieces);
    VKF_CHECK_ALLOC(tiles);
    VKF_CHECK_ALLOC(ids);
    for (int j = 0; j < m; j++) {
        const gentry *e = items[j].e;
        ids[j] = e;
        int64_t reps = L / e->T;
        if (reps == 1) {
            tiled = vkf_tensor_ref(e->cross);
        } else {
            for (int64_t r = 0; r < reps; r++)
                tiles[r] = e->cross;
            VKF_TRY(vkf_op_concat(g->gpu, tiles, (int)reps, 1, &tiled));
        }
        for (int64_t b = 0; b < B; b++) {
            if (e->bc == 1) {
                row = vkf_tensor_ref(tiled);
            } else {
                vkf_tensor *v = NULL;
                VKF_TRY(vkf_tensor_slice(tiled, 0, b % e->bc, 1, &v));
                err = vkf_op_contiguous(g->gpu, v, &row);
                vkf_tensor_unref(&v);
                VKF_TRY(err);
            }
            pieces[j * B + b] = row;
            row = NULL;
        }
        vkf_tensor_unref(&tiled);
    }
    if (npieces == 1)
        res = vkf_tensor_ref(pieces[0]);
    else
        VKF_TRY(vkf_op_concat(g->gpu, pieces, npieces, 0, &res));

    /* cache it */
    ctx_cache_entry *slot;
    if (g->ncache < CTX_CACHE) {
        slot = &g->cache[g->ncache++];
    } else {
        slot = &g->cache[g->cache_next];
        g->cache_next = (g->cache_next + 1) % CTX_CACHE;
        vkf_free(slot->ids);
        vkf_tensor_unref(&slot->t);
    }
    slot->m = m;
    slot->ids = ids;
    slot->t = vkf_tensor_ref(res);
    ids = NULL;
    *out = res;
    res = NULL;
fail:
    if (pieces)
        for (int i = 0; i < npieces; i++)
            vkf_tensor_unref(&pieces[i]);
    vkf_free(pieces);
    vkf_free(tiles);
    vkf_free((void *)ids);
    vkf_tensor_unref(&tiled);
    vkf_tensor_unref(&row);
    vkf_tensor_unref(&res);
    return err;
}

/* One batched forward of m chunks, accumulated into acc/cnt. */
static int run_batch(vkf_guidance *g, const run_item *items, int m, const float *x, float sigma)
{
    int64_t B = g->B, C = g->C, H = g->H, W = g->W;
    int64_t ah = items[0].e->carea[0], aw = items[0].e->carea[1], plane = ah * aw;
    int64_t rows = m * B;
    size_t chunk_x = (size_t)(B * C * plane);
    int err = 0;
    float *xcrop = vkf_malloc((size_t)m * chunk_x * sizeof(float));
    float *xin = vkf_malloc((size_t)(rows * g->cin * plane) * sizeof(float));
    float *ts = vkf_malloc((size_t)rows * sizeof(float));
    float *outp = NULL, *den = vkf_malloc(chunk_x * sizeof(float));
    vkf_tensor *xt = NULL, *ctx = NULL, *ot = NULL, *yt = NULL;
    float *yh = NULL;
    VKF_CHECK_ALLOC(xcrop);
    VKF_CHECK_ALLOC(xin);
    VKF_CHECK_ALLOC(ts);
    VKF_CHECK_ALLOC(den);

    for (int j = 0; j < m; j++) {
        const gentry *e = items[j].e;
        float *xc = xcrop + (size_t)j * chunk_x;
        for (int64_t bc = 0; bc < B * C; bc++)
            for (int64_t y = 0; y < ah; y++)
                memcpy(xc + (bc * ah + y) * aw, x + (bc * H + e->carea[2] + y) * W + e->carea[3],
                       (size_t)aw * sizeof(float));
        for (int64_t b = 0; b < B; b++) {
            float *dst = xin + (size_t)((j * B + b) * g->cin * plane);
            vkf_model_sampling_calculate_input(g->ms, sigma, xc + b * C * plane, dst,
                                               (size_t)(C * plane));
            if (g->cc > 0) {
                for (int64_t c = 0; c < g->cc; c++)
                    for (int64_t y = 0; y < ah; y++)
                        memcpy(dst + ((C + c) * ah + y) * aw,
                               e->concat + ((b * g->cc + c) * H + e->carea[2] + y) * W +
                                   e->carea[3],
                               (size_t)aw * sizeof(float));
            }
        }
    }
    float t = vkf_model_sampling_timestep(g->ms, sigma);
    for (int64_t r = 0; r < rows; r++)
        ts[r] = t;

    int64_t xs[4] = {rows, g->cin, ah, aw};
    VKF_TRY(vkf_tensor_create(g->gpu, VKF_DTYPE_F32, 4, xs, &xt));
    VKF_TRY(vkf_tensor_upload(xt, xin));
    VKF_TRY(get_context(g, items, m, &ctx));
    if (g->adm > 0) {
        /* CONDRegular y: each chunk's rows repeated to the batch */
        yh = vkf_malloc((size_t)rows * (size_t)g->adm * sizeof(float));
        VKF_CHECK_ALLOC(yh);
        for (int j = 0; j < m; j++)
            for (int64_t b = 0; b < B; b++)
                memcpy(yh + (size_t)(j * B + b) * (size_t)g->adm,
                       items[j].e->y + (size_t)(b % items[j].e->yb) * (size_t)g->adm,
                       (size_t)g->adm * sizeof(float));
        int64_t ys[2] = {rows, g->adm};
        VKF_TRY(vkf_tensor_create(g->gpu, VKF_DTYPE_F32, 2, ys, &yt));
        VKF_TRY(vkf_tensor_upload(yt, yh));
    }
    vkf_dm_input in = {.x = xt, .timesteps = ts, .context = ctx, .y = yt};
    err = g->dm->forward(g->dm, &in, &ot);
    if (err < 0) {
        gerr(g, err, "the diffusion model failed: %s", vkf_strerror(err));
        goto fail;
    }
    g->forwards++;
    g->rows += rows;
    const int64_t *os = vkf_tensor_shape(ot);
    if (vkf_tensor_ndim(ot) != 4 || os[0] != rows || os[1] != C || os[2] != ah || os[3] != aw) {
        err = gerr(g, VKF_EINVAL, "the diffusion model returned a tensor of the wrong shape");
        goto fail;
    }
    outp = vkf_malloc((size_t)rows * C * plane * sizeof(float));
    VKF_CHECK_ALLOC(outp);
    VKF_TRY(vkf_tensor_download(ot, outp));

    for (int j = 0; j < m; j++) {
        const gentry *e = items[j].e;
        float *acc = g->acc[items[j].role], *cnt = g->cnt[items[j].role];
        vkf_model_sampling_calculate_denoised(g->ms, sigma, outp + (size_t)j * chunk_x,
                                              xcrop + (size_t)j * chunk_x, den, chunk_x);
        for (int64_t bc = 0; bc < B * C; bc++)
            for (int64_t y = 0; y < ah; y++)
                for (int64_t xx = 0; xx < aw; xx++) {
                    size_t s = (size_t)((bc * ah + y) * aw + xx);
                    size_t d = (size_t)((bc * H + e->carea[2] + y) * W + e->carea[3] + xx);
                    float mlt = e->mult[s];
                    float prod = den[s] * mlt;
                    acc[d] = acc[d] + prod;
                    cnt[d] = cnt[d] + mlt;
                }
    }
fail:
    if (err == VKF_ENOMEM && !g->err[0])
        gerr(g, err, "out of memory in a model call");
    else if (err < 0 && !g->err[0])
        gerr(g, err, "a model call failed: %s", vkf_strerror(err));
    vkf_free(xcrop);
    vkf_free(xin);
    vkf_free(ts);
    vkf_free(outp);
    vkf_free(den);
    vkf_tensor_unref(&xt);
    vkf_tensor_unref(&ctx);
    vkf_tensor_unref(&ot);
    vkf_tensor_unref(&yt);
    vkf_free(yh);
    return err;
}

/* calc_cond_batch over conds[0..nconds-1] (role or -1 for None); the
 * result for conds[k] is left in g->acc[role]. */
static int calc_cond_batch(vkf_guidance *g, const int *roles, int nconds, const float *x,
                           float sigma)
{
    int total = 0;
    for (int k = 0; k < nconds; k++)
        if (roles[k] >= 0)
            total += g->L[roles[k]].n;
    for (int k = 0; k < nconds; k++) {
        int r = roles[k];
        if (r < 0)
            continue;
        for (size_t i = 0; i < g->n; i++) {
            g->acc[r][i] = 0.0f;
            g->cnt[r][i] = 1e-37f;
        }
    }
    int err = 0;
    run_item *to_run = vkf_malloc((size_t)(total ? total : 1) * sizeof(*to_run));
    run_item *batch = vkf_malloc((size_t)(total ? total : 1) * sizeof(*batch));
    int *idx = vkf_malloc((size_t)(total ? total : 1) * sizeof(int));
    if (!to_run || !batch || !idx) {
        err = gerr(g, VKF_ENOMEM, "out of memory");
        goto done;
    }
    int nrun = 0;
    for (int k = 0; k < nconds; k++) {
        int r = roles[k];
        if (r < 0)
            continue;
        for (int i = 0; i < g->L[r].n; i++) {
            const gentry *e = &g->L[r].e[i];
            if (e->has_start && sigma > e->ts_start)
                continue;
            if (e->has_end && sigma < e->ts_end)
                continue;
            to_run[nrun].role = r;
            to_run[nrun].e = e;
            nrun++;
        }
    }
    while (nrun > 0) {
        int ni = 0;
        for (int i = 0; i < nrun; i++)
            if (can_concat(to_run[i].e, to_run[0].e))
                idx[ni++] = i;
        /* reversed, then as many as fit: to_batch_temp[:len // i] */
        for (int a = 0, b = ni - 1; a < b; a++, b--) {
            int t = idx[a];
            idx[a] = idx[b];
            idx[b] = t;
        }
        int take = ni;
        if (g->spec.max_batch_rows > 0) {
            for (int i = 1; i <= ni; i++) {
                take = ni / i;
                if ((int64_t)take * g->B <= g->spec.max_batch_rows)
                    break;
            }
            if (take < 1)
                take = 1;
        }
        /* pop in that order (indices descending: pops stay valid) */
        for (int j = 0; j < take; j++)
            batch[j] = to_run[idx[j]];
        for (int j = 0; j < take; j++) {
            int p = idx[j];
            memmove(&to_run[p], &to_run[p + 1], (size_t)(nrun - p - 1) * sizeof(*to_run));
            nrun--;
        }
        if (g->ctx && vkf_exec_interrupted(g->ctx)) {
            err = VKF_EINTERRUPTED;
            goto done;
        }
        err = run_batch(g, batch, take, x, sigma);
        if (err < 0)
            goto done;
    }
    for (int k = 0; k < nconds; k++) {
        int r = roles[k];
        if (r < 0)
            continue;
        for (size_t i = 0; i < g->n; i++)
            g->acc[r][i] = g->acc[r][i] / g->cnt[r][i];
    }
done:
    vkf_free(to_run);
    vkf_free(batch);
    vkf_free(idx);
    return err;
}

/* cfg_function: uncond + (cond - uncond)·scale in float32. */
static void cfg_combine(const float *cond, const float *uncond, double scale, float *out, size_t n)
{
    float s = (float)scale;
    for (size_t i = 0; i < n; i++) {
        float d = cond[i] - uncond[i];
        d = d * s;
        out[i] = uncond[i] + d;
    }
}

int vkf_guidance_predict(vkf_guidance *g, const float *x, float sigma, float *denoised,
                         float *uncond_denoised)
{
    int err;
    size_t n = g->n;
    if (!g->spec.dual) {
        /* sampling_function: conds [positive, negative or None] */
        int roles[2] = {ROLE_POS, ROLE_NEG};
        if (!g->present[ROLE_NEG] || (py_isclose1(g->spec.cfg) && !uncond_denoised))
            roles[1] = -1;
        if ((err = calc_cond_batch(g, roles, 2, x, sigma)) < 0)
            return err;
        const float *cond = g->acc[ROLE_POS];
        if (roles[1] < 0) {
            /* the uncond output is zeros/1e-37 = 0 */
            float *z = g->cnt[ROLE_NEG];
            memset(z, 0, n * sizeof(float));
            cfg_combine(cond, z, g->spec.cfg, denoised, n);
            if (uncond_denoised)
                memset(uncond_denoised, 0, n * sizeof(float));
        } else {
            cfg_combine(cond, g->acc[ROLE_NEG], g->spec.cfg, denoised, n);
            if (uncond_denoised)
                memcpy(uncond_denoised, g->acc[ROLE_NEG], n * sizeof(float));
        }
        return 0;
    }
    /* Guider_DualCFG: conds [negative, middle, positive] */
    int roles[3] = {ROLE_NEG, ROLE_MID, ROLE_POS};
    double cfg1 = g->spec.cfg, cfg2 = g->spec.cfg2;
    if (!g->spec.nested && !uncond_denoised && py_isclose1(cfg2)) {
        roles[0] = -1;
        if (py_isclose1(cfg1))
            roles[1] = -1;
    }
    if ((err = calc_cond_batch(g, roles, 3, x, sigma)) < 0)
        return err;
    /* the result of a skipped cond is 0 */
    float *o0 = roles[0] < 0 ? NULL : g->acc[ROLE_NEG];
    float *o1 = roles[1] < 0 ? NULL : g->acc[ROLE_MID];
    const float *o2 = g->acc[ROLE_POS];
    if (!o0) {
        o0 = g->cnt[ROLE_NEG];
        memset(o0, 0, n * sizeof(float));
    }
    if (!o1) {
        o1 = g->cnt[ROLE_MID];
        memset(o1, 0, n * sizeof(float));
    }
    float c1 = (float)cfg1, c2 = (float)cfg2;
    if (g->spec.nested) {
        /* pred_text = cfg_function(out[2], out[1], cfg1);
         * out[0] + cfg2·(pred_text - out[0]) */
        for (size_t i = 0; i < n; i++) {
            float d = o2[i] - o1[i];
            d = d * c1;
            float pt = o1[i] + d;
            float e2 = pt - o0[i];
            e2 = e2 * c2;
            denoised[i] = o0[i] + e2;
        }
        if (uncond_denoised)
            memcpy(uncond_denoised, o1, n * sizeof(float));
    } else {
        /* cfg_function(out[1], out[0], cfg2) + (out[2] - out[1])·cfg1 */
        for (size_t i = 0; i < n; i++) {
            float d = o1[i] - o0[i];
            d = d * c2;
            float r = o0[i] + d;
            float d2 = o2[i] - o1[i];
            d2 = d2 * c1;
            denoised[i] = r + d2;
        }
        if (uncond_denoised)
            memcpy(uncond_denoised, o0, n * sizeof(float));
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* sampling                                                                 */

static vkf_x0_callback preview_fn;
static void *preview_opaque;

void vkf_guidance_set_preview_hook(vkf_x0_callback fn, void *opaque)
{
    __atomic_store_n(&preview_opaque, opaque, __ATOMIC_RELEASE);
    __atomic_store_n(&preview_fn, fn, __ATOMIC_RELEASE);
}

void vkf_guidance_get_preview_hook(vkf_x0_callback *fn, void **opaque)
{
    *fn = __atomic_load_n(&preview_fn, __ATOMIC_ACQUIRE);
    *opaque = __atomic_load_n(&preview_opaque, __ATOMIC_ACQUIRE);
}

/* KSamplerX0Inpaint around the guidance. */
typedef struct run_state {
    vkf_guidance *g;
    const vkf_guided_sample_params *p;
    const float *mask;        /* prepared denoise mask or NULL */
    const float *latent;      /* model space */
    const float *inpaint_noise;
    float *xi, *tmp;
    float *last_x0;
    bool has_x0;
    int total;
} run_state;

static int x0_denoise(void *opaque, const float *x, float sigma, float *denoised,
                      float *uncond_denoised)
{
    run_state *st = opaque;
    vkf_guidance *g = st->g;
    size_t n = g->n;
    if (!st->mask)
        return vkf_guidance_predict(g, x, sigma, denoised, uncond_denoised);
    /* x·m + scale_latent_inpaint(σ)·(1 - m) */
    vkf_model_sampling_noise_scaling(g->ms, sigma, st->inpaint_noise, st->latent, false,
                                     st->tmp, n);
    for (size_t i = 0; i < n; i++) {
        float m = st->mask[i];
        float lm = 1.0f - m;
        float a = x[i] * m;
        float b = st->tmp[i] * lm;
        st->xi[i] = a + b;
    }
    int err = vkf_guidance_predict(g, st->xi, sigma, denoised, uncond_denoised);
    if (err < 0)
        return err;
    for (size_t i = 0; i < n; i++) {
        float m = st->mask[i];
        float lm = 1.0f - m;
        float a = denoised[i] * m;
        float b = st->latent[i] * lm;
        denoised[i] = a + b;
    }
    return 0;
}

static int step_callback(void *opaque, int step, int total, const float *x, const float *denoised)
{
    (void)total;
    (void)x;
    run_state *st = opaque;
    const vkf_guided_sample_params *p = st->p;
    size_t n = st->g->n;
    if (st->last_x0) {
        memcpy(st->last_x0, denoised, n * sizeof(float));
        st->has_x0 = true;
    }
    int err;
    if (p->x0_cb &&
        (err = p->x0_cb(p->x0_opaque, p->ctx, p->guide->model, step, st->total, denoised,
                        p->shape, p->ndim)) != 0)
        return err;
    if (p->ctx && (err = vkf_exec_progress(p->ctx, step + 1, st->total)) < 0)
        return err;
    return 0;
}

/* prepare_mask: reshape to [-1, 1, H, W], bilinear to the latent, channels
 * repeated, batch repeated (row b = mask[b % rows]). */
static int prepare_mask(vkf_gpu *gpu, vkf_tensor *mask, const int64_t *shape, float **out)
{
    int64_t rows, mh, mw;
    float *raw = NULL, *rs = NULL, *res = NULL;
    int64_t B = shape[0], C = shape[1], h = shape[2], w = shape[3], plane = h * w;
    int err = mask_download(mask, &raw, &rows, &mh, &mw);
    if (err < 0)
        return err;
    rs = vkf_malloc((size_t)(rows * plane) * sizeof(float));
    res = vkf_malloc((size_t)(B * C * plane) * sizeof(float));
    VKF_CHECK_ALLOC(rs);
    VKF_CHECK_ALLOC(res);
    VKF_TRY(resize_host(gpu, raw, rows, 1, mh, mw, h, w, false, rs));
    for (int64_t b = 0; b < B; b++)
        for (int64_t c = 0; c < C; c++)
            memcpy(res + (b * C + c) * plane, rs + (b % rows) * plane,
                   (size_t)plane * sizeof(float));
    *out = res;
    res = NULL;
fail:
    vkf_free(raw);
    vkf_free(rs);
    vkf_free(res);
    return err;
}

int vkf_guided_sample(const vkf_guided_sample_params *p, float *out, float *x0_out,
                      bool *has_x0, vkf_errbuf *e)
{
    vkf_errbuf local;
    if (!e)
        e = &local;
    e->msg[0] = 0;
    if (has_x0)
        *has_x0 = false;
    if (!p->guide || !p->guide->model || p->ndim != 4)
        return vkf_errbuf_set(e, VKF_EINVAL, "sampling needs a model and a 4-D latent");
    size_t n = 1;
    for (int d = 0; d < p->ndim; d++)
        n *= (size_t)p->shape[d];
    if (p->n_sigmas <= 0) {
        memcpy(out, p->latent, n * sizeof(float));
        return 0;
    }
    const vkf_model *model = p->guide->model;
    const vkf_model_sampling *ms = model->ms;
    const char *name = p->sampler ? p->sampler->name : p->sampler_name;
    vkf_sample_fn fn = p->sample_fn ? p->sample_fn : vkf_sample;
    if (!name)
        return vkf_errbuf_set(e, VKF_EINVAL, "no sampler given");

    int err = 0;
    float *mask = NULL, *latent = NULL, *x = NULL, *inoise = NULL, *xi = NULL, *tmp = NULL;
    float *last = NULL;
    vkf_guidance *g = NULL;

    if (p->noise_mask) {
        err = prepare_mask(model->dm->gpu, p->noise_mask, p->shape, &mask);
        if (err < 0) {
            vkf_errbuf_set(e, err, "the latent's noise_mask could not be prepared: %s",
                           vkf_strerror(err));
            goto fail;
        }
    }
    latent = vkf_malloc(n * sizeof(float));
    x = vkf_malloc(n * sizeof(float));
    VKF_CHECK_ALLOC(latent);
    VKF_CHECK_ALLOC(x);
    bool nonzero = false;
    for (size_t i = 0; i < n && !nonzero; i++)
        nonzero = p->latent[i] != 0.0f;
    if (nonzero)   /* don't shift the empty latent image */
        vkf_latent_process_in(&model->latent, p->latent, latent, n);
    else
        memcpy(latent, p->latent, n * sizeof(float));

    err = vkf_guidance_create(p->guide, p->shape, p->ndim, latent, mask, &g, e);
    if (err < 0)
        goto fail;
    vkf_guidance_set_ctx(g, p->ctx);

    const float *inpaint_noise = p->noise;
    if (mask && !strcmp(name, "ddim")) {
        /* inpaint_options random: torch.manual_seed(seed + 1) */
        VKF_CHECK_ALLOC(inoise = vkf_malloc(n * sizeof(float)));
        VKF_TRY(vkf_prepare_noise(p->seed + 1, p->shape, p->ndim, NULL, 0, p->kernel, inoise));
        inpaint_noise = inoise;
    }
    if (mask) {
        VKF_CHECK_ALLOC(xi = vkf_malloc(n * sizeof(float)));
        VKF_CHECK_ALLOC(tmp = vkf_malloc(n * sizeof(float)));
    }
    if (x0_out)
        VKF_CHECK_ALLOC(last = vkf_malloc(n * sizeof(float)));

    bool max_denoise = vkf_model_sampling_max_denoise(ms, p->sigmas[0]);
    vkf_model_sampling_noise_scaling(ms, p->sigmas[0], p->noise, latent, max_denoise, x, n);

    run_state st = {.g = g, .p = p, .mask = mask, .latent = latent,
                    .inpaint_noise = inpaint_noise, .xi = xi, .tmp = tmp, .last_x0 = last,
                    .total = p->n_sigmas - 1};
    vkf_denoiser den = {.denoise = x0_denoise, .opaque = &st};
    vkf_sample_params sp = {
        .sampler = name,
        .ms = ms,
        .shape = p->shape,
        .ndim = p->ndim,
        .n = n,
        .seed = p->seed,
        .kernel = p->kernel,
        .callback = step_callback,
        .cb_opaque = &st,
    };
    if (p->sampler && p->sampler->has_params) {
        sp.has_params = true;
        sp.eta = p->sampler->eta;
        sp.s_noise = p->sampler->s_noise;
        sp.r = p->sampler->r;
        sp.solver_type = p->sampler->solver_type;
        sp.order = p->sampler->order;
    }
    err = fn(&sp, &den, p->sigmas, p->n_sigmas, x, p->log);
    if (err < 0) {
        if (err == VKF_EINTERRUPTED)
            vkf_errbuf_set(e, err, "interrupted");
        else if (!vkf_guidance_error(g)[0] && (err == VKF_EUNSUPPORTED || err == VKF_ENOTFOUND))
            vkf_errbuf_set(e, err, "sampler \"%s\" is not available in vkflow (%s)", name,
                           vkf_strerror(err));
        else
            vkf_errbuf_set(e, err, "sampling failed: %s",
                           vkf_guidance_error(g)[0] ? vkf_guidance_error(g) : vkf_strerror(err));
        goto fail;
    }
    vkf_model_sampling_inverse_noise_scaling(ms, p->sigmas[p->n_sigmas - 1], x, x, n);
    vkf_latent_process_out(&model->latent, x, out, n);
    if (x0_out && st.has_x0) {
        vkf_latent_process_out(&model->latent, last, x0_out, n);
        if (has_x0)
            *has_x0 = true;
    }
fail:
    if (err == VKF_ENOMEM && !e->msg[0])
        vkf_errbuf_set(e, err, "out of memory while sampling");
    else if (err < 0 && !e->msg[0])
        vkf_errbuf_set(e, err, "sampling failed: %s", vkf_strerror(err));
    vkf_guidance_destroy(&g);
    vkf_free(mask);
    vkf_free(latent);
    vkf_free(x);
    vkf_free(inoise);
    vkf_free(xi);
    vkf_free(tmp);
    vkf_free(last);
    return err;
}

int vkf_ksampler_window_sigmas(const vkf_model_sampling *ms, vkf_scheduler scheduler,
                               const char *sampler_name, int steps, double denoise,
                               int start_step, int last_step, bool force_full_denoise,
                               float **sigmas, int *n_sigmas, bool *skip)
{
    static const char *const discard[] = {"dpm_2", "dpm_2_ancestral", "uni_pc", "uni_pc_bh2"};
    bool disc = false;
    for (size_t i = 0; i < VKF_ARRAY_SIZE(discard); i++)
        disc = disc || (sampler_name && !strcmp(sampler_name, discard[i]));
    *skip = false;
    float *s = NULL;
    int n = 0;
    int err = vkf_ksampler_sigmas(ms, scheduler, steps, denoise, disc, &s, &n);
    if (err < 0)
        return err;
    if (last_step >= 0 && last_step < n - 1) {
        n = last_step + 1;
        if (force_full_denoise)
            s[n - 1] = 0.0f;
    }
    if (start_step >= 0) {
        if (start_step < n - 1) {
            memmove(s, s + start_step, (size_t)(n - start_step) * sizeof(float));
            n -= start_step;
        } else {
            *skip = true;
        }
    }
    *sigmas = s;
    *n_sigmas = n;
    return 0;
}

int vkf_sample_latent(const vkf_latent_sample_params *p, vkf_value *out,
                      vkf_value *out_denoised, vkf_errbuf *e)
{
    vkf_errbuf local;
    if (!e)
        e = &local;
    e->msg[0] = 0;
    const vkf_latent *lat = p->latent;
    if (!lat || !lat->samples || !p->guide || !p->guide->model || !p->guide->model->dm)
        return vkf_errbuf_set(e, VKF_EINVAL, "sampling needs a model and a latent");
    const vkf_model *model = p->guide->model;
    vkf_gpu *gpu = model->dm->gpu;
    vkf_tensor *st = lat->samples;
    if (vkf_tensor_ndim(st) != 4)
        return vkf_errbuf_set(e, VKF_EUNSUPPORTED,
                              "the sampler takes image latents [B, C, h, w]; this one has %d "
                              "dimensions", vkf_tensor_ndim(st));
    int64_t shape[4];
    memcpy(shape, vkf_tensor_shape(st), sizeof(shape));
    size_t n_in = (size_t)vkf_tensor_numel(st);
    int err = 0;
    float *latent = vkf_malloc((n_in ? n_in : 1) * sizeof(float));
    float *noise = NULL, *res = NULL, *x0 = NULL;
    vkf_tensor *t_out = NULL, *t_x0 = NULL;
    if (!latent)
        return vkf_errbuf_set(e, VKF_ENOMEM, "out of memory");
    err = vkf_tensor_download(st, latent);
    if (err < 0) {
        vkf_errbuf_set(e, err, "reading the latent failed: %s", vkf_strerror(err));
        goto fail;
    }
    /* fix_empty_latent_channels */
    bool empty = true;
    for (size_t i = 0; i < n_in && empty; i++)
        empty = latent[i] == 0.0f;
    if (empty && model->latent.channels > 0 && shape[1] != model->latent.channels) {
        shape[1] = model->latent.channels;
        vkf_free(latent);
        latent = vkf_calloc((size_t)(shape[0] * shape[1] * shape[2] * shape[3]), sizeof(float));
        VKF_CHECK_ALLOC(latent);
    }
    size_t n = (size_t)(shape[0] * shape[1] * shape[2] * shape[3]);

    res = vkf_malloc((n ? n : 1) * sizeof(float));
    VKF_CHECK_ALLOC(res);
    bool has_x0 = false;
    if (p->skip) {
        memcpy(res, latent, n * sizeof(float));
    } else {
        noise = vkf_calloc(n ? n : 1, sizeof(float));
        VKF_CHECK_ALLOC(noise);
        if (!p->noise.disabled) {
            if (lat->batch_index && lat->nb_batch_index != shape[0]) {
                err = vkf_errbuf_set(e, VKF_EINVAL,
                                     "the latent's batch_index has %d entries for a batch of "
                                     "%lld", lat->nb_batch_index, (long long)shape[0]);
                goto fail;
            }
            err = vkf_prepare_noise(p->noise.seed, shape, 4, lat->batch_index,
                                    lat->batch_index ? lat->nb_batch_index : 0, p->kernel, noise);
            if (err < 0) {
                vkf_errbuf_set(e, err, "drawing the noise failed: %s", vkf_strerror(err));
                goto fail;
            }
        }
        if (out_denoised)
            VKF_CHECK_ALLOC(x0 = vkf_malloc((n ? n : 1) * sizeof(float)));
        vkf_x0_callback cb = p->x0_cb;
        void *cbo = p->x0_opaque;
        if (!cb)
            vkf_guidance_get_preview_hook(&cb, &cbo);
        vkf_guided_sample_params gp = {
            .guide = p->guide,
            .sampler = p->sampler,
            .sampler_name = p->sampler_name,
            .sigmas = p->sigmas,
            .n_sigmas = p->n_sigmas,
            .shape = shape,
            .ndim = 4,
            .latent = latent,
            .noise = noise,
            .noise_mask = lat->noise_mask,
            .seed = p->seed,
            .kernel = p->kernel,
            .ctx = p->ctx,
            .x0_cb = cb,
            .x0_opaque = cbo,
            .sample_fn = p->sample_fn,
            .log = p->log,
        };
        err = vkf_guided_sample(&gp, res, x0, &has_x0, e);
        if (err < 0)
            goto fail;
    }
    VKF_TRY(vkf_tensor_create(gpu, VKF_DTYPE_F32, 4, shape, &t_out));
    VKF_TRY(vkf_tensor_upload(t_out, res));
    if (out_denoised && has_x0) {
        VKF_TRY(vkf_tensor_create(gpu, VKF_DTYPE_F32, 4, shape, &t_x0));
        VKF_TRY(vkf_tensor_upload(t_x0, x0));
    }
    vkf_tensor *nm = lat->noise_mask ? vkf_tensor_ref(lat->noise_mask) : NULL;
    err = vkf_value_set_latent(out, t_out, nm, lat->batch_index, lat->nb_batch_index);
    t_out = NULL;
    if (err < 0)
        goto fail;
    if (out_denoised) {
        if (has_x0) {
            nm = lat->noise_mask ? vkf_tensor_ref(lat->noise_mask) : NULL;
            err = vkf_value_set_latent(out_denoised, t_x0, nm, lat->batch_index,
                                       lat->nb_batch_index);
            t_x0 = NULL;
        } else {
            err = vkf_value_copy(out_denoised, out);
        }
        if (err < 0) {
            vkf_value_clear(out);
            goto fail;
        }
    }
fail:
    if (err < 0 && !e->msg[0])
        vkf_errbuf_set(e, err, "sampling failed: %s", vkf_strerror(err));
    vkf_free(latent);
    vkf_free(noise);
    vkf_free(res);
    vkf_free(x0);
    vkf_tensor_unref(&t_out);
    vkf_tensor_unref(&t_x0);
    return err;
}
