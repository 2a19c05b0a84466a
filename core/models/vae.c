/*
 * KL-f8 VAE (ldm AutoencoderKL, as ComfyUI runs it) and ComfyUI's tiled
 * decode/encode (comfy/utils.py tiled_scale_multidim, comfy/sd.py
 * VAE.decode_tiled_ / encode_tiled_: three passes with differently shaped
 * tiles, averaged).
 *
 * Weights stay in their file dtype on the device; activations are f32.
 * Names are CompVis ("encoder.down.0.block.0.conv1.weight") or diffusers
 * ("encoder.down_blocks.0.resnets.0.conv1.weight"), translated on load.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "models/vae_internal.h"

#define GN_GROUPS 32
#define GN_EPS 1e-6f
#define MAX_LEVELS 4
#define ENC_RES 2
#define DEC_RES 3

typedef struct conv {
    vkf_tensor *w, *b;
} conv;

typedef struct norm {
    vkf_tensor *w, *b;
} norm;

typedef struct resblock {
    norm n1, n2;
    conv c1, c2, nin;       /* nin.w NULL: identity shortcut */
} resblock;

typedef struct attnblock {
    norm n;
    vkf_tensor *wq, *wk, *wv, *wp;   /* [C, C] */
    vkf_tensor *bq, *bk, *bv, *bp;
    int c;
} attnblock;

typedef struct kl_vae {
    vkf_vae_model base;
    int ch, nlev, z, mult[MAX_LEVELS];
    bool has_encoder, has_quant;
    bool in_fallback;       /* decoding/encoding tiles of a fallback */
    /* encoder */
    conv e_in, e_down[MAX_LEVELS], e_out, quant;
    resblock e_res[MAX_LEVELS][ENC_RES], e_mid1, e_mid2;
    attnblock e_attn;
    norm e_nout;
    /* decoder */
    conv post_quant, d_in, d_up[MAX_LEVELS], d_out;
    resblock d_res[MAX_LEVELS][DEC_RES], d_mid1, d_mid2;
    attnblock d_attn;
    norm d_nout;
} kl_vae;

/* ---- helpers shared with taesd.c ------------------------------------------ */

int vkf_vae_clamp01(vkf_gpu *gpu, vkf_tensor *x, vkf_tensor **out)
{
    int err = 0;
    vkf_tensor *a = NULL, *s = NULL, *b = NULL;
    VKF_TRY(vkf_op_unary(gpu, VKF_UN_RELU, x, 0, 0, &a));
    VKF_TRY(vkf_op_unary(gpu, VKF_UN_SCALE, x, 1.0f, -1.0f, &s));
    VKF_TRY(vkf_op_unary(gpu, VKF_UN_RELU, s, 0, 0, &b));
    VKF_TRY(vkf_op_binary(gpu, VKF_BIN_SUB, a, b, out));
fail:
    vkf_tensor_unref(&a);
    vkf_tensor_unref(&s);
    vkf_tensor_unref(&b);
    return err;
}

int64_t vkf_vae_max_numel(vkf_gpu *gpu)
{
    const vkf_gpu_device_info *info = vkf_gpu_info(gpu);
    uint64_t lim = info->max_storage_buffer_range;
    if (info->max_allocation_size && info->max_allocation_size < lim)
        lim = info->max_allocation_size;
    uint64_t p = 1;
    while (p * 2 <= lim)
        p *= 2;
    return (int64_t)(p / 4) * 4;
}

/* ---- names ------------------------------------------------------------------ */

int vkf_vae_diffusers_name(const char *k, int nlev, bool attn_old, char *out, size_t size)
{
    char side[16], rest[512];
    int i, j;
    const char *dot = strchr(k, '.');
    if (!dot || (size_t)(dot - k) >= sizeof(side))
        goto same;
    memcpy(side, k, (size_t)(dot - k));
    side[dot - k] = 0;
    if (strcmp(side, "encoder") && strcmp(side, "decoder"))
        goto same;
    const char *r = dot + 1;
    char tail[160];
    if (sscanf(r, "down.%d.block.%d.%159s", &i, &j, tail) == 3) {
        const char *t = !strncmp(tail, "nin_shortcut.", 13) ? "conv_shortcut." : NULL;
        snprintf(rest, sizeof(rest), "down_blocks.%d.resnets.%d.%s%s", i, j, t ? t : "",
                 t ? tail + 13 : tail);
    } else if (sscanf(r, "down.%d.downsample.%159s", &i, tail) == 2) {
        snprintf(rest, sizeof(rest), "down_blocks.%d.downsamplers.0.%s", i, tail);
    } else if (sscanf(r, "up.%d.block.%d.%159s", &i, &j, tail) == 3) {
        const char *t = !strncmp(tail, "nin_shortcut.", 13) ? "conv_shortcut." : NULL;
        snprintf(rest, sizeof(rest), "up_blocks.%d.resnets.%d.%s%s", nlev - 1 - i, j,
                 t ? t : "", t ? tail + 13 : tail);
    } else if (sscanf(r, "up.%d.upsample.%159s", &i, tail) == 2) {
        snprintf(rest, sizeof(rest), "up_blocks.%d.upsamplers.0.%s", nlev - 1 - i, tail);
    } else if (sscanf(r, "mid.block_%d.%159s", &i, tail) == 2) {
        const char *t = !strncmp(tail, "nin_shortcut.", 13) ? "conv_shortcut." : NULL;
        snprintf(rest, sizeof(rest), "mid_block.resnets.%d.%s%s", i - 1, t ? t : "",
                 t ? tail + 13 : tail);
    } else if (!strncmp(r, "mid.attn_1.", 11)) {
        const char *a = r + 11;
        static const char *const cv[] = {"norm.", "q.", "k.", "v.", "proj_out."};
        static const char *const nw[] = {"group_norm.", "to_q.", "to_k.", "to_v.", "to_out.0."};
        static const char *const od[] = {"group_norm.", "query.", "key.", "value.",
                                         "proj_attn."};
        int m = -1;
        for (int q = 0; q < 5; q++)
            if (!strncmp(a, cv[q], strlen(cv[q])))
                m = q;
        if (m < 0)
            return VKF_EINVAL;
        snprintf(rest, sizeof(rest), "mid_block.attentions.0.%s%s", attn_old ? od[m] : nw[m],
                 a + strlen(cv[m]));
    } else if (!strncmp(r, "norm_out.", 9)) {
        snprintf(rest, sizeof(rest), "conv_norm_out.%s", r + 9);
    } else {
        goto same;
    }
    if ((size_t)snprintf(out, size, "%s.%s", side, rest) >= size)
        return VKF_EINVAL;
    return 0;
same:
    if ((size_t)snprintf(out, size, "%s", k) >= size)
        return VKF_EINVAL;
    return 0;
}

/* ---- loading ------------------------------------------------------------------ */

typedef struct loader {
    vkf_gpu *gpu;
    vkf_weights *w;
    const char *prefix;
    bool diffusers, attn_old;
    int nlev;
    vkf_errbuf *e;
} loader;

static const vkf_weight_info *find(loader *L, const char *name)
{
    char dn[256], full[512];
    if (L->diffusers) {
        if (vkf_vae_diffusers_name(name, L->nlev, L->attn_old, dn, sizeof(dn)) < 0)
            return NULL;
        name = dn;
    }
    snprintf(full, sizeof(full), "%s%s", L->prefix, name);
    return vkf_weights_find(L->w, full);
}

/* Loads prefix+name (shape checked against want[0..nd) where want[k] > 0);
 * optional: a missing tensor leaves *out NULL. */
static int load(loader *L, const char *name, int nd, const int64_t *want, bool optional,
                vkf_tensor **out)
{
    *out = NULL;
    const vkf_weight_info *t = find(L, name);
    if (!t) {
        if (optional)
            return 0;
        return vkf_errbuf_set(L->e, VKF_EINVAL, "VAE weights: tensor %s%s%s is missing",
                              L->prefix, name, L->diffusers ? " (diffusers layout)" : "");
    }
    /* Attention projections may be [C, C] (linear) or [C, C, 1, 1]. */
    int64_t numel = 1;
    for (int d = 0; d < nd; d++)
        numel *= want[d];
    bool ok = t->numel == numel;
    if (ok && t->ndim == nd) {
        for (int d = 0; d < nd; d++)
            ok = ok && t->shape[d] == want[d];
    } else if (ok) {
        ok = (nd == 4 && want[2] == 1 && want[3] == 1 && t->ndim == 2 &&
              t->shape[0] == want[0] && t->shape[1] == want[1]) ||
             (nd == 2 && t->ndim == 4 && t->shape[0] == want[0] && t->shape[1] == want[1]);
    }
    if (!ok) {
        char ws[96] = "", gs[96] = "";
        for (int d = 0; d < nd; d++)
            snprintf(ws + strlen(ws), sizeof(ws) - strlen(ws), "%s%lld", d ? "," : "",
                     (long long)want[d]);
        for (int d = 0; d < t->ndim; d++)
            snprintf(gs + strlen(gs), sizeof(gs) - strlen(gs), "%s%lld", d ? "," : "",
                     (long long)t->shape[d]);
        return vkf_errbuf_set(L->e, VKF_EINVAL,
                              "VAE weights: tensor %s has shape [%s], expected [%s]", t->name, gs,
                              ws);
    }
    vkf_tensor *x = NULL;
    int err = vkf_weights_load_tensor(L->w, t, L->gpu, &x);
    if (err < 0)
        return vkf_errbuf_set(L->e, err, "VAE weights: cannot load %s: %s", t->name,
                              vkf_strerror(err));
    if (vkf_tensor_ndim(x) != nd) {
        vkf_tensor *r = NULL;
        err = vkf_tensor_reshape(x, nd, want, &r);
        vkf_tensor_unref(&x);
        if (err < 0)
            return vkf_errbuf_set(L->e, err, "VAE weights: cannot reshape %s", t->name);
        x = r;
    }
    *out = x;
    return 0;
}

static int load_conv(loader *L, const char *name, int cout, int cin, int k, bool optional,
                     conv *c)
{
    char n[200];
    int64_t ws[4] = {cout, cin, k, k}, bs[1] = {cout};
    snprintf(n, sizeof(n), "%s.weight", name);
    int err = load(L, n, 4, ws, optional, &c->w);
    if (err < 0 || !c->w)
        return err;
    snprintf(n, sizeof(n), "%s.bias", name);
    return load(L, n, 1, bs, false, &c->b);
}

static int load_norm(loader *L, const char *name, int c, norm *nm)
{
    char n[200];
    int64_t s[1] = {c};
    snprintf(n, sizeof(n), "%s.weight", name);
    int err = load(L, n, 1, s, false, &nm->w);
    if (err < 0)
        return err;
    snprintf(n, sizeof(n), "%s.bias", name);
    return load(L, n, 1, s, false, &nm->b);
}

static int load_res(loader *L, const char *name, int cin, int cout, resblock *r)
{
    char n[200];
    int err = 0;
    snprintf(n, sizeof(n), "%s.norm1", name);
    VKF_TRY(load_norm(L, n, cin, &r->n1));
    snprintf(n, sizeof(n), "%s.conv1", name);
    VKF_TRY(load_conv(L, n, cout, cin, 3, false, &r->c1));
    snprintf(n, sizeof(n), "%s.norm2", name);
    VKF_TRY(load_norm(L, n, cout, &r->n2));
    snprintf(n, sizeof(n), "%s.conv2", name);
    VKF_TRY(load_conv(L, n, cout, cout, 3, false, &r->c2));
    if (cin != cout) {
        snprintf(n, sizeof(n), "%s.nin_shortcut", name);
        VKF_TRY(load_conv(L, n, cout, cin, 1, false, &r->nin));
    }
fail:
    return err;
}

static int load_attn(loader *L, const char *name, int c, attnblock *a)
{
    char n[200];
    int err = 0;
    int64_t ws[2] = {c, c}, bs[1] = {c};
    const char *parts[4] = {"q", "k", "v", "proj_out"};
    vkf_tensor **wt[4] = {&a->wq, &a->wk, &a->wv, &a->wp};
    vkf_tensor **bt[4] = {&a->bq, &a->bk, &a->bv, &a->bp};
    a->c = c;
    snprintf(n, sizeof(n), "%s.norm", name);
    VKF_TRY(load_norm(L, n, c, &a->n));
    for (int i = 0; i < 4; i++) {
        snprintf(n, sizeof(n), "%s.%s.weight", name, parts[i]);
        VKF_TRY(load(L, n, 2, ws, false, wt[i]));
        snprintf(n, sizeof(n), "%s.%s.bias", name, parts[i]);
        VKF_TRY(load(L, n, 1, bs, false, bt[i]));
    }
fail:
    return err;
}

static void conv_free(conv *c)
{
    vkf_tensor_unref(&c->w);
    vkf_tensor_unref(&c->b);
}

static void norm_free(norm *n)
{
    vkf_tensor_unref(&n->w);
    vkf_tensor_unref(&n->b);
}

static void res_free(resblock *r)
{
    norm_free(&r->n1);
    norm_free(&r->n2);
    conv_free(&r->c1);
    conv_free(&r->c2);
    conv_free(&r->nin);
}

static void attn_free(attnblock *a)
{
    norm_free(&a->n);
    vkf_tensor **all[8] = {&a->wq, &a->wk, &a->wv, &a->wp, &a->bq, &a->bk, &a->bv, &a->bp};
    for (int i = 0; i < 8; i++)
        vkf_tensor_unref(all[i]);
}

static void kl_destroy(vkf_vae_model *base)
{
    kl_vae *v = (kl_vae *)base;
    conv_free(&v->e_in);
    conv_free(&v->e_out);
    conv_free(&v->quant);
    conv_free(&v->post_quant);
    conv_free(&v->d_in);
    conv_free(&v->d_out);
    for (int i = 0; i < MAX_LEVELS; i++) {
        conv_free(&v->e_down[i]);
        conv_free(&v->d_up[i]);
        for (int j = 0; j < ENC_RES; j++)
            res_free(&v->e_res[i][j]);
        for (int j = 0; j < DEC_RES; j++)
            res_free(&v->d_res[i][j]);
    }
    res_free(&v->e_mid1);
    res_free(&v->e_mid2);
    res_free(&v->d_mid1);
    res_free(&v->d_mid2);
    attn_free(&v->e_attn);
    attn_free(&v->d_attn);
    norm_free(&v->e_nout);
    norm_free(&v->d_nout);
    vkf_free(v);
}

/* ---- forward ------------------------------------------------------------------ */

static int conv_fwd(vkf_gpu *gpu, const conv *c, vkf_tensor *x, int stride, int pad,
                    vkf_tensor **out)
{
    vkf_conv2d_params p = {.stride = {stride, stride}, .padding = {pad, pad}};
    return vkf_op_conv2d(gpu, x, c->w, c->b, &p, out);
}

/* Buffers released while a batch is recorded live until it completes; at
 * image resolution (tensors of 16 MiB and more) submit and wait after each
 * step so that memory holds a few activations, not a whole decoder. */
static int flush_if_big(vkf_gpu *gpu, vkf_tensor *x)
{
    return vkf_tensor_numel(x) >= (4 << 20) ? vkf_gpu_flush(gpu) : 0;
}

static int norm_fwd(vkf_gpu *gpu, const norm *n, vkf_tensor *x, bool silu, vkf_tensor **out)
{
    int err = 0;
    vkf_tensor *h = NULL;
    VKF_TRY(vkf_op_group_norm(gpu, x, GN_GROUPS, n->w, n->b, GN_EPS, &h));
    if (silu) {
        VKF_TRY(flush_if_big(gpu, h));
        VKF_TRY(vkf_op_unary(gpu, VKF_UN_SILU, h, 0, 0, out));
        vkf_tensor_unref(&h);
    } else {
        *out = h;
        h = NULL;
    }
fail:
    vkf_tensor_unref(&h);
    return err;
}

/* x is borrowed. */
static int res_fwd(vkf_gpu *gpu, const resblock *r, vkf_tensor *x, vkf_tensor **out)
{
    int err = 0;
    vkf_tensor *a = NULL, *h = NULL, *s = NULL;
    VKF_TRY(norm_fwd(gpu, &r->n1, x, true, &a));
    VKF_TRY(flush_if_big(gpu, a));
    VKF_TRY(conv_fwd(gpu, &r->c1, a, 1, 1, &h));
    vkf_tensor_unref(&a);
    VKF_TRY(flush_if_big(gpu, h));
    VKF_TRY(norm_fwd(gpu, &r->n2, h, true, &a));
    vkf_tensor_unref(&h);
    VKF_TRY(flush_if_big(gpu, a));
    VKF_TRY(conv_fwd(gpu, &r->c2, a, 1, 1, &h));
    vkf_tensor_unref(&a);
    VKF_TRY(flush_if_big(gpu, h));
    if (r->nin.w) {
        VKF_TRY(conv_fwd(gpu, &r->nin, x, 1, 0, &s));
        VKF_TRY(vkf_op_binary(gpu, VKF_BIN_ADD, s, h, out));
    } else {
        VKF_TRY(vkf_op_binary(gpu, VKF_BIN_ADD, x, h, out));
    }
fail:
    vkf_tensor_unref(&a);
    vkf_tensor_unref(&h);
    vkf_tensor_unref(&s);
    return err;
}

/* Single-head attention over [1, N, C] q/k/v: the fused kernel where it
 * supports the width, else score blocks through matmul + softmax. */
static int attention_1(vkf_gpu *gpu, vkf_tensor *q, vkf_tensor *k, vkf_tensor *v, int c,
                       vkf_tensor **out)
{
    if (c <= 256)
        return vkf_op_attention_heads(gpu, q, k, v, 1, NULL, out);
    int err = 0;
    int64_t n = vkf_tensor_shape(q)[1];
    int64_t rows = (16ll << 20) / n;
    if (rows < 1)
        rows = 1;
    int nblk = (int)((n + rows - 1) / rows);
    vkf_tensor **parts = vkf_calloc((size_t)nblk, sizeof(*parts));
    vkf_tensor *qs = NULL, *s = NULL, *ss = NULL, *p = NULL;
    if (!parts)
        return VKF_ENOMEM;
    for (int i = 0; i < nblk; i++) {
        int64_t r0 = i * rows, len = n - r0 < rows ? n - r0 : rows;
        VKF_TRY(vkf_tensor_slice(q, 1, r0, len, &qs));
        VKF_TRY(vkf_op_matmul(gpu, qs, k, true, NULL, &s));
        vkf_tensor_unref(&qs);
        VKF_TRY(vkf_op_unary(gpu, VKF_UN_SCALE, s, 1.0f / sqrtf((float)c), 0, &ss));
        vkf_tensor_unref(&s);
        VKF_TRY(vkf_op_softmax(gpu, ss, &p));
        vkf_tensor_unref(&ss);
        VKF_TRY(vkf_op_matmul(gpu, p, v, false, NULL, &parts[i]));
        vkf_tensor_unref(&p);
    }
    if (nblk == 1) {
        *out = parts[0];
        parts[0] = NULL;
    } else {
        VKF_TRY(vkf_op_concat(gpu, parts, nblk, 1, out));
    }
fail:
    vkf_tensor_unref(&qs);
    vkf_tensor_unref(&s);
    vkf_tensor_unref(&ss);
    vkf_tensor_unref(&p);
    for (int i = 0; i < nblk; i++)
        vkf_tensor_unref(&parts[i]);
    vkf_free(parts);
    return err;
}

/* AttnBlock on x [1, C, H, W] (borrowed). */
static int attn_fwd(vkf_gpu *gpu, const attnblock *a, vkf_tensor *x, vkf_tensor **out)
{
    int err = 0;
    const int64_t *sh = vkf_tensor_shape(x);
    int64_t c = sh[1], hw = sh[2] * sh[3];
    int64_t s3[3] = {1, c, hw}, s4[4] = {1, c, sh[2], sh[3]};
    const int perm[3] = {0, 2, 1};
    vkf_tensor *h = NULL, *hr = NULL, *hp = NULL, *ht = NULL, *q = NULL, *k = NULL,
               *v = NULL, *o = NULL, *pr = NULL, *pt = NULL, *xr = NULL, *sum = NULL;
    VKF_TRY(norm_fwd(gpu, &a->n, x, false, &h));
    VKF_TRY(vkf_tensor_reshape(h, 3, s3, &hr));
    VKF_TRY(vkf_tensor_permute(hr, perm, &hp));
    VKF_TRY(vkf_op_contiguous(gpu, hp, &ht));      /* [1, HW, C] */
    vkf_tensor_unref(&h);
    vkf_tensor_unref(&hr);
    vkf_tensor_unref(&hp);
    VKF_TRY(vkf_op_linear(gpu, ht, a->wq, a->bq, &q));
    VKF_TRY(vkf_op_linear(gpu, ht, a->wk, a->bk, &k));
    VKF_TRY(vkf_op_linear(gpu, ht, a->wv, a->bv, &v));
    vkf_tensor_unref(&ht);
    VKF_TRY(attention_1(gpu, q, k, v, (int)c, &o));
    vkf_tensor_unref(&q);
    vkf_tensor_unref(&k);
    vkf_tensor_unref(&v);
    VKF_TRY(vkf_op_linear(gpu, o, a->wp, a->bp, &pr));   /* [1, HW, C] */
    VKF_TRY(vkf_tensor_permute(pr, perm, &pt));          /* [1, C, HW] view */
    VKF_TRY(vkf_tensor_reshape(x, 3, s3, &xr));
    VKF_TRY(vkf_op_binary(gpu, VKF_BIN_ADD, xr, pt, &sum));
    VKF_TRY(vkf_tensor_reshape(sum, 4, s4, out));
fail:
    vkf_tensor_unref(&h);
    vkf_tensor_unref(&hr);
    vkf_tensor_unref(&hp);
    vkf_tensor_unref(&ht);
    vkf_tensor_unref(&q);
    vkf_tensor_unref(&k);
    vkf_tensor_unref(&v);
    vkf_tensor_unref(&o);
    vkf_tensor_unref(&pr);
    vkf_tensor_unref(&pt);
    vkf_tensor_unref(&xr);
    vkf_tensor_unref(&sum);
    return err;
}

/* Replaces *x by f(*x) (the old tensor is released). */
#define STEP(call)                                                            \
    do {                                                                      \
        vkf_tensor *nx_ = NULL;                                               \
        err = (call);                                                         \
        if (err < 0)                                                          \
            goto fail;                                                        \
        vkf_tensor_unref(&x);                                                 \
        x = nx_;                                                              \
        err = flush_if_big(gpu, x);                                           \
        if (err < 0)                                                          \
            goto fail;                                                        \
    } while (0)

/* One image [1, 3, H, W] → moments mean [1, z, H/8, W/8]. */
static int kl_encode_one(kl_vae *v, vkf_tensor *img, vkf_tensor **out)
{
    vkf_gpu *gpu = v->base.gpu;
    int err = 0;
    vkf_tensor *x = vkf_tensor_ref(img), *m = NULL;
    STEP(conv_fwd(gpu, &v->e_in, x, 1, 1, &nx_));
    for (int i = 0; i < v->nlev; i++) {
        for (int j = 0; j < ENC_RES; j++)
            STEP(res_fwd(gpu, &v->e_res[i][j], x, &nx_));
        if (i != v->nlev - 1) {
            const int64_t pads[8] = {0, 0, 0, 0, 0, 1, 0, 1};
            STEP(vkf_op_pad(gpu, x, pads, 0.0f, &nx_));
            STEP(conv_fwd(gpu, &v->e_down[i], x, 2, 0, &nx_));
        }
    }
    STEP(res_fwd(gpu, &v->e_mid1, x, &nx_));
    STEP(attn_fwd(gpu, &v->e_attn, x, &nx_));
    STEP(res_fwd(gpu, &v->e_mid2, x, &nx_));
    STEP(norm_fwd(gpu, &v->e_nout, x, true, &nx_));
    STEP(conv_fwd(gpu, &v->e_out, x, 1, 1, &nx_));
    if (v->has_quant)
        STEP(conv_fwd(gpu, &v->quant, x, 1, 0, &nx_));
    VKF_TRY(vkf_tensor_slice(x, 1, 0, v->z, &m));
    VKF_TRY(vkf_op_contiguous(gpu, m, out));
fail:
    vkf_tensor_unref(&x);
    vkf_tensor_unref(&m);
    return err;
}

static int kl_decode_one(kl_vae *v, vkf_tensor *lat, vkf_tensor **out)
{
    vkf_gpu *gpu = v->base.gpu;
    int err = 0;
    vkf_tensor *x = vkf_tensor_ref(lat);
    if (v->has_quant)
        STEP(conv_fwd(gpu, &v->post_quant, x, 1, 0, &nx_));
    STEP(conv_fwd(gpu, &v->d_in, x, 1, 1, &nx_));
    STEP(res_fwd(gpu, &v->d_mid1, x, &nx_));
    STEP(attn_fwd(gpu, &v->d_attn, x, &nx_));
    STEP(res_fwd(gpu, &v->d_mid2, x, &nx_));
    for (int i = v->nlev - 1; i >= 0; i--) {
        for (int j = 0; j < DEC_RES; j++)
            STEP(res_fwd(gpu, &v->d_res[i][j], x, &nx_));
        if (i != 0) {
            vkf_upsample_params up = {.mode = VKF_UPSAMPLE_NEAREST, .scale = {2.0, 2.0}};
            STEP(vkf_op_upsample(gpu, x, &up, &nx_));
            STEP(conv_fwd(gpu, &v->d_up[i], x, 1, 1, &nx_));
        }
    }
    STEP(norm_fwd(gpu, &v->d_nout, x, true, &nx_));
    STEP(conv_fwd(gpu, &v->d_out, x, 1, 1, &nx_));
    *out = x;
    x = NULL;
fail:
    vkf_tensor_unref(&x);
    return err;
}

/* Runs fn on each batch item and concatenates. */
static int per_item(vkf_vae_model *m, vkf_tensor *in,
                    int (*fn)(kl_vae *, vkf_tensor *, vkf_tensor **), vkf_tensor **out)
{
    int err = 0;
    int64_t b = vkf_tensor_shape(in)[0];
    vkf_tensor **parts = vkf_calloc((size_t)b, sizeof(*parts));
    vkf_tensor *s = NULL;
    if (!parts)
        return VKF_ENOMEM;
    for (int64_t i = 0; i < b; i++) {
        VKF_TRY(vkf_tensor_slice(in, 0, i, 1, &s));
        VKF_TRY(fn((kl_vae *)m, s, &parts[i]));
        vkf_tensor_unref(&s);
    }
    if (b == 1) {
        *out = parts[0];
        parts[0] = NULL;
    } else {
        VKF_TRY(vkf_op_concat(m->gpu, parts, (int)b, 0, out));
    }
fail:
    vkf_tensor_unref(&s);
    for (int64_t i = 0; i < b; i++)
        vkf_tensor_unref(&parts[i]);
    vkf_free(parts);
    return err;
}

static int check_input(vkf_vae_model *m, vkf_tensor *x, int c, int mult)
{
    const int64_t *s = vkf_tensor_shape(x);
    if (vkf_tensor_ndim(x) != 4 || s[1] != c || s[2] % mult || s[3] % mult || s[0] < 1) {
        return VKF_EINVAL;
    }
    (void)m;
    return 0;
}

static int kl_decode(vkf_vae_model *m, vkf_tensor *latent, vkf_tensor **image)
{
    kl_vae *v = (kl_vae *)m;
    if (check_input(m, latent, v->z, 1) < 0)
        return VKF_EINVAL;
    const int64_t *s = vkf_tensor_shape(latent);
    /* Largest activation: the upsampled level-1 features at full size, or
     * level 0's.  Like ComfyUI's fallback on OOM, decode in tiles when one
     * tensor would not fit. */
    int mx = v->nlev > 1 && v->mult[1] > v->mult[0] ? v->mult[1] : v->mult[0];
    int64_t big = (int64_t)v->ch * mx * s[2] * s[3] * 64;
    /* ComfyUI's tiles are at most 128 x 32 latent pixels; while they run,
     * no second fallback (no recursion on devices with tiny bindings). */
    if (big > vkf_vae_max_numel(m->gpu) && !v->in_fallback) {
        v->in_fallback = true;
        int err = vkf_vae_decode_tiled(m, latent, 512, 128, image);
        v->in_fallback = false;
        return err;
    }
    int err = per_item(m, latent, kl_decode_one, image);
    if (err == VKF_EDEVICE_OOM && !v->in_fallback) {
        vkf_tensor_unref(image);
        v->in_fallback = true;
        err = vkf_vae_decode_tiled(m, latent, 512, 128, image);
        v->in_fallback = false;
    }
    return err;
}

static int kl_encode(vkf_vae_model *m, vkf_tensor *image, vkf_tensor **latent)
{
    kl_vae *v = (kl_vae *)m;
    if (!v->has_encoder || check_input(m, image, 3, 8) < 0)
        return VKF_EINVAL;
    const int64_t *s = vkf_tensor_shape(image);
    int64_t big = (int64_t)v->ch * v->mult[0] * (s[2] + 1) * (s[3] + 1);
    if (big > vkf_vae_max_numel(m->gpu) && !v->in_fallback) {
        v->in_fallback = true;
        int err = vkf_vae_encode_tiled(m, image, 512, 64, latent);
        v->in_fallback = false;
        return err;
    }
    int err = per_item(m, image, kl_encode_one, latent);
    if (err == VKF_EDEVICE_OOM && !v->in_fallback) {
        vkf_tensor_unref(latent);
        v->in_fallback = true;
        err = vkf_vae_encode_tiled(m, image, 512, 64, latent);
        v->in_fallback = false;
    }
    return err;
}

int vkf_vae_kl_load(vkf_gpu *gpu, vkf_weights *w, const char *prefix, vkf_vae_model **out,
                    vkf_errbuf *e)
{
    *out = NULL;
    if (!prefix)
        prefix = "";
    loader L = {.gpu = gpu, .w = w, .prefix = prefix, .e = e};
    char name[300];
    snprintf(name, sizeof(name), "%sdecoder.up_blocks.0.resnets.0.norm1.weight", prefix);
    L.diffusers = vkf_weights_find(w, name) != NULL;
    snprintf(name, sizeof(name), "%sdecoder.mid_block.attentions.0.query.weight", prefix);
    L.attn_old = L.diffusers && vkf_weights_find(w, name) != NULL;
    /* Levels: decoder.up.N (CompVis) / up_blocks.N (diffusers). */
    int nlev = 0;
    for (int i = 0; i < MAX_LEVELS + 1; i++) {
        snprintf(name, sizeof(name), L.diffusers ? "%sdecoder.up_blocks.%d.resnets.0.conv1.weight"
                                                 : "%sdecoder.up.%d.block.0.conv1.weight",
                 prefix, i);
        if (vkf_weights_find(w, name))
            nlev = i + 1;
    }
    if (nlev > MAX_LEVELS)
        return vkf_errbuf_set(e, VKF_EUNSUPPORTED, "VAE: %d decoder levels (at most %d supported)",
                              nlev, MAX_LEVELS);
    L.nlev = nlev;
    snprintf(name, sizeof(name), "%sdecoder.conv_in.weight", prefix);
    const vkf_weight_info *din = vkf_weights_find(w, name);
    snprintf(name, sizeof(name), "%sdecoder.conv_out.weight", prefix);
    const vkf_weight_info *dout = vkf_weights_find(w, name);
    if (!din || !dout || nlev == 0 || din->ndim != 4 || dout->ndim != 4)
        return vkf_errbuf_set(e, VKF_EINVAL,
                              "VAE: no KL VAE decoder under prefix \"%s\" (decoder.conv_in.weight, "
                              "decoder.conv_out.weight, decoder.up.N)",
                              prefix);
    snprintf(name, sizeof(name), "%sdecoder.mid.block_1.mix_factor", prefix);
    if (vkf_weights_find(w, name))
        return vkf_errbuf_set(e, VKF_EUNSUPPORTED,
                              "VAE: temporal (SVD) decoder is not supported");
    kl_vae *v = vkf_calloc(1, sizeof(*v));
    if (!v)
        return VKF_ENOMEM;
    v->base.refs = 1;
    snprintf(v->base.arch, sizeof(v->base.arch), "KL-f%d", 1 << (nlev - 1));
    v->base.gpu = gpu;
    v->base.decode = kl_decode;
    v->base.encode = kl_encode;
    v->base.destroy = kl_destroy;
    v->nlev = nlev;
    v->z = (int)din->shape[1];
    v->ch = (int)dout->shape[1];
    v->base.latent_channels = v->z;
    v->base.downscale = 1 << (nlev - 1);
    int err = 0;
    for (int i = 0; i < nlev; i++) {
        snprintf(name, sizeof(name), L.diffusers ? "%sdecoder.up_blocks.%d.resnets.0.conv1.weight"
                                                 : "%sdecoder.up.%d.block.0.conv1.weight",
                 prefix, L.diffusers ? nlev - 1 - i : i);
        const vkf_weight_info *t = vkf_weights_find(w, name);
        if (!t || t->shape[0] % v->ch) {
            err = vkf_errbuf_set(e, VKF_EINVAL, "VAE: %s missing or not a multiple of %d channels",
                                 name, v->ch);
            goto fail;
        }
        v->mult[i] = (int)(t->shape[0] / v->ch);
        if ((v->ch * v->mult[i]) % GN_GROUPS) {
            err = vkf_errbuf_set(e, VKF_EINVAL, "VAE: %d channels is not a multiple of %d groups",
                                 v->ch * v->mult[i], GN_GROUPS);
            goto fail;
        }
    }
    int top = v->ch * v->mult[nlev - 1];
    char n[200];
    /* decoder */
    snprintf(name, sizeof(name), "%spost_quant_conv.weight", prefix);
    v->has_quant = vkf_weights_find(w, name) != NULL;
    if (v->has_quant)
        VKF_TRY(load_conv(&L, "post_quant_conv", v->z, v->z, 1, false, &v->post_quant));
    VKF_TRY(load_conv(&L, "decoder.conv_in", top, v->z, 3, false, &v->d_in));
    VKF_TRY(load_res(&L, "decoder.mid.block_1", top, top, &v->d_mid1));
    VKF_TRY(load_attn(&L, "decoder.mid.attn_1", top, &v->d_attn));
    VKF_TRY(load_res(&L, "decoder.mid.block_2", top, top, &v->d_mid2));
    int cin = top;
    for (int i = nlev - 1; i >= 0; i--) {
        int co = v->ch * v->mult[i];
        for (int j = 0; j < DEC_RES; j++) {
            snprintf(n, sizeof(n), "decoder.up.%d.block.%d", i, j);
            VKF_TRY(load_res(&L, n, j ? co : cin, co, &v->d_res[i][j]));
        }
        if (i != 0) {
            snprintf(n, sizeof(n), "decoder.up.%d.upsample.conv", i);
            VKF_TRY(load_conv(&L, n, co, co, 3, false, &v->d_up[i]));
        }
        cin = co;
    }
    VKF_TRY(load_norm(&L, "decoder.norm_out", v->ch * v->mult[0], &v->d_nout));
    VKF_TRY(load_conv(&L, "decoder.conv_out", 3, v->ch * v->mult[0], 3, false, &v->d_out));
    /* encoder (optional: decoder-only files decode only) */
    snprintf(name, sizeof(name), "%sencoder.conv_in.weight", prefix);
    v->has_encoder = vkf_weights_find(w, name) != NULL;
    if (v->has_encoder) {
        VKF_TRY(load_conv(&L, "encoder.conv_in", v->ch, 3, 3, false, &v->e_in));
        cin = v->ch;
        for (int i = 0; i < nlev; i++) {
            int co = v->ch * v->mult[i];
            for (int j = 0; j < ENC_RES; j++) {
                snprintf(n, sizeof(n), "encoder.down.%d.block.%d", i, j);
                VKF_TRY(load_res(&L, n, j ? co : cin, co, &v->e_res[i][j]));
            }
            if (i != nlev - 1) {
                snprintf(n, sizeof(n), "encoder.down.%d.downsample.conv", i);
                VKF_TRY(load_conv(&L, n, co, co, 3, false, &v->e_down[i]));
            }
            cin = co;
        }
        VKF_TRY(load_res(&L, "encoder.mid.block_1", top, top, &v->e_mid1));
        VKF_TRY(load_attn(&L, "encoder.mid.attn_1", top, &v->e_attn));
        VKF_TRY(load_res(&L, "encoder.mid.block_2", top, top, &v->e_mid2));
        VKF_TRY(load_norm(&L, "encoder.norm_out", top, &v->e_nout));
        VKF_TRY(load_conv(&L, "encoder.conv_out", 2 * v->z, top, 3, false, &v->e_out));
        if (v->has_quant)
            VKF_TRY(load_conv(&L, "quant_conv", 2 * v->z, 2 * v->z, 1, false, &v->quant));
    }
    *out = &v->base;
    return 0;
fail:
    kl_destroy(&v->base);
    return err;
}

/* ---- tiling (comfy/utils.py tiled_scale_multidim) ---------------------------- */

/* Python's round() on a double: half to even. */
static int64_t pyround(double x)
{
    return (int64_t)nearbyint(x);
}

/*
 * One pass of tiled_scale over item b of x ([B, C, H, W]): tile (th, tw)
 * and overlap in input units, up = output / input scale.  Adds the
 * blended result into acc ([oc, OH, OW] floats).
 */
static int tiled_pass(vkf_vae_model *m, bool decode, vkf_tensor *x, int64_t b, int64_t th,
                      int64_t tw, int64_t overlap, double up, int oc, float *acc)
{
    int err = 0;
    const int64_t *sh = vkf_tensor_shape(x);
    int64_t H = sh[2], W = sh[3];
    int64_t OH = pyround(H * up), OW = pyround(W * up);
    size_t on = (size_t)oc * (size_t)OH * (size_t)OW;
    vkf_tensor *s = NULL, *t1 = NULL, *t2 = NULL, *y = NULL;
    float *out = NULL, *div = NULL, *ps = NULL, *mh = NULL, *mw = NULL;
    VKF_TRY(vkf_tensor_slice(x, 0, b, 1, &s));
    if (H <= th && W <= tw) {
        VKF_TRY(decode ? m->decode(m, s, &y) : m->encode(m, s, &y));
        const int64_t *ys = vkf_tensor_shape(y);
        if (ys[1] != oc || ys[2] != OH || ys[3] != OW) {
            err = VKF_EINVAL;
            goto fail;
        }
        ps = vkf_malloc(on * sizeof(float));
        VKF_CHECK_ALLOC(ps);
        VKF_TRY(vkf_tensor_download(y, ps));
        for (size_t i = 0; i < on; i++)
            acc[i] += ps[i];
        goto fail;
    }
    if ((H > th && th - overlap <= 0) || (W > tw && tw - overlap <= 0)) {
        err = VKF_EINVAL;
        goto fail;
    }
    out = vkf_calloc(on, sizeof(float));
    div = vkf_calloc(on, sizeof(float));
    VKF_CHECK_ALLOC(out);
    VKF_CHECK_ALLOC(div);
    int64_t nh = H > th ? (H - overlap + (th - overlap) - 1) / (th - overlap) : 1;
    int64_t nw = W > tw ? (W - overlap + (tw - overlap) - 1) / (tw - overlap) : 1;
    if (H > th && H - overlap <= 0)
        nh = 0;
    if (W > tw && W - overlap <= 0)
        nw = 0;
    for (int64_t ih = 0; ih < nh; ih++) {
        for (int64_t iw = 0; iw < nw; iw++) {
            int64_t ph = H > th ? ih * (th - overlap) : 0, pw = W > tw ? iw * (tw - overlap) : 0;
            ph = ph > H - overlap ? H - overlap : ph;
            pw = pw > W - overlap ? W - overlap : pw;
            ph = ph < 0 ? 0 : ph;
            pw = pw < 0 ? 0 : pw;
            int64_t lh = th < H - ph ? th : H - ph, lw = tw < W - pw ? tw : W - pw;
            VKF_TRY(vkf_tensor_slice(s, 2, ph, lh, &t1));
            VKF_TRY(vkf_tensor_slice(t1, 3, pw, lw, &t2));
            vkf_tensor_unref(&t1);
            VKF_TRY(vkf_op_contiguous(m->gpu, t2, &t1));
            vkf_tensor_unref(&t2);
            VKF_TRY(decode ? m->decode(m, t1, &y) : m->encode(m, t1, &y));
            vkf_tensor_unref(&t1);
            const int64_t *ys = vkf_tensor_shape(y);
            int64_t yh = ys[2], yw = ys[3];
            int64_t oh = pyround(ph * up), ow = pyround(pw * up);
            if (ys[1] != oc || oh + yh > OH || ow + yw > OW) {
                err = VKF_EINVAL;
                goto fail;
            }
            ps = vkf_malloc((size_t)(oc * yh * yw) * sizeof(float));
            mh = vkf_malloc((size_t)yh * sizeof(float));
            mw = vkf_malloc((size_t)yw * sizeof(float));
            VKF_CHECK_ALLOC(ps);
            VKF_CHECK_ALLOC(mh);
            VKF_CHECK_ALLOC(mw);
            VKF_TRY(vkf_tensor_download(y, ps));
            vkf_tensor_unref(&y);
            /* Feather: the mask is a product over dims, each applying
             * (t+1)/feather to the t-th row from either edge (in float, as
             * torch's in-place mul_ on an f32 mask). */
            int64_t fe = pyround(overlap * up);
            float *mk[2] = {mh, mw};
            int64_t len[2] = {yh, yw};
            for (int d = 0; d < 2; d++) {
                for (int64_t i = 0; i < len[d]; i++)
                    mk[d][i] = 1.0f;
                if (fe >= len[d])
                    continue;
                for (int64_t t = 0; t < fe; t++) {
                    float a = (float)((double)(t + 1) / (double)fe);
                    mk[d][t] *= a;
                    mk[d][len[d] - 1 - t] *= a;
                }
            }
            for (int c = 0; c < oc; c++) {
                for (int64_t i = 0; i < yh; i++) {
                    for (int64_t j = 0; j < yw; j++) {
                        float mv = mh[i] * mw[j];
                        size_t o = ((size_t)c * OH + (size_t)(oh + i)) * OW + (size_t)(ow + j);
                        out[o] += ps[((size_t)c * yh + i) * yw + j] * mv;
                        div[o] += mv;
                    }
                }
            }
            vkf_free(ps);
            vkf_free(mh);
            vkf_free(mw);
            ps = mh = mw = NULL;
        }
    }
    for (size_t i = 0; i < on; i++)
        acc[i] += out[i] / div[i];
fail:
    vkf_tensor_unref(&s);
    vkf_tensor_unref(&t1);
    vkf_tensor_unref(&t2);
    vkf_tensor_unref(&y);
    vkf_free(out);
    vkf_free(div);
    vkf_free(ps);
    vkf_free(mh);
    vkf_free(mw);
    return err;
}

/* Three passes (tile shapes in input units, (h, w) each), averaged. */
static int tiled3(vkf_vae_model *m, bool decode, vkf_tensor *x, const int64_t tiles[3][2],
                  int64_t overlap, double up, int oc, vkf_tensor **outp)
{
    int err = 0;
    const int64_t *sh = vkf_tensor_shape(x);
    if (vkf_tensor_ndim(x) != 4 || overlap < 0)
        return VKF_EINVAL;
    int64_t B = sh[0], OH = pyround(sh[2] * up), OW = pyround(sh[3] * up);
    size_t per = (size_t)oc * (size_t)OH * (size_t)OW;
    float *res = vkf_calloc(per * (size_t)B, sizeof(float));
    vkf_tensor *t = NULL;
    if (!res)
        return VKF_ENOMEM;
    for (int64_t b = 0; b < B; b++) {
        float *acc = res + per * (size_t)b;
        for (int p = 0; p < 3; p++)
            VKF_TRY(tiled_pass(m, decode, x, b, tiles[p][0], tiles[p][1], overlap, up, oc, acc));
        for (size_t i = 0; i < per; i++)
            acc[i] /= 3.0f;
    }
    int64_t os[4] = {B, oc, OH, OW};
    VKF_TRY(vkf_tensor_create(m->gpu, VKF_DTYPE_F32, 4, os, &t));
    VKF_TRY(vkf_tensor_upload(t, res));
    *outp = t;
    t = NULL;
fail:
    vkf_tensor_unref(&t);
    vkf_free(res);
    return err;
}

int vkf_vae_decode_tiled(vkf_vae_model *m, vkf_tensor *latent, int tile, int overlap,
                         vkf_tensor **image)
{
    if (!m || !latent || tile < 1 || overlap < 0)
        return VKF_EINVAL;
    int64_t tx = tile / m->downscale, ov = overlap / m->downscale;
    /* decode_tiled_: (tile_x // 2, tile_y * 2), (tile_x * 2, tile_y // 2),
     * (tile_x, tile_y); tiles are (h, w) = (tile_y, tile_x). */
    const int64_t tiles[3][2] = {{tx * 2, tx / 2}, {tx / 2, tx * 2}, {tx, tx}};
    if (tx / 2 < 1)
        return VKF_EINVAL;
    return tiled3(m, true, latent, tiles, ov, (double)m->downscale, 3, image);
}

int vkf_vae_encode_tiled(vkf_vae_model *m, vkf_tensor *image, int tile, int overlap,
                         vkf_tensor **latent)
{
    if (!m || !image || tile < 2 || overlap < 0)
        return VKF_EINVAL;
    int64_t t = tile;
    /* encode_tiled_: (tile_x, tile_y), (tile_x * 2, tile_y // 2),
     * (tile_x // 2, tile_y * 2). */
    const int64_t tiles[3][2] = {{t, t}, {t / 2, t * 2}, {t * 2, t / 2}};
    return tiled3(m, false, image, tiles, overlap, 1.0 / m->downscale, m->latent_channels,
                  latent);
}
