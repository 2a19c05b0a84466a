/*
 * CLIP text encoders: OpenAI ViT-L/14 (HF key names, SD1) and OpenCLIP
 * ViT-H/14 (open_clip names, SD2), one pre-LN causal transformer.
 *
 *   x = token_embedding[ids] + position_embedding
 *   per layer: x += out_proj(attn(LN1(x), causal)); x += fc2(act(fc1(LN2(x))))
 *   hidden = final_LN(x after layer L-k)    (layer_idx -k; 0 = last)
 *   pooled = proj(final_LN(x_last)[eos])
 *
 * Semantics follow ComfyUI's comfy/clip_model.py + sd1_clip.py (SDClipModel
 * with layer_norm_hidden_state): a text_projection that is absent is the
 * identity; the pooled row is the first EOS, else (no EOS) the largest id
 * in ComfyUI's renumbering (textual-inversion rows above the vocabulary,
 * the last one largest).
 *
 * Weights: matrices keep their file dtype on the device (f32/f16/bf16; f8
 * and integers are widened by vkf_weights_load_tensor), the q/k/v matrices
 * of the HF layout are fused into one [3W, W] matrix at load (one GEMM),
 * vectors (biases, LN) are f32.  Token and position embeddings stay on the
 * host in their file dtype: each encode gathers its rows there and uploads
 * one [B, 77, W] f32 tensor for all chunks.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "vkflow/models.h"

typedef struct clip_layer {
    vkf_tensor *ln1_w, *ln1_b, *ln2_w, *ln2_b;
    vkf_tensor *qkv_w, *qkv_b;      /* [3W, W], [3W] */
    vkf_tensor *out_w, *out_b;
    vkf_tensor *fc1_w, *fc1_b, *fc2_w, *fc2_b;
} clip_layer;

struct vkf_clip_text {
    vkf_gpu *gpu;
    vkf_clip_text_config cfg;
    int mlp;                        /* fc1 rows */
    int nominal_layers;             /* what layer_idx counts (see load) */
    clip_layer *layers;
    vkf_tensor *lnf_w, *lnf_b;
    vkf_tensor *proj;               /* NULL: identity */
    bool proj_linear;               /* HF text_projection.weight [P, W]: x·Pᵀ;
                                       OpenCLIP text_projection [W, P]: x·P */
    void *tok_emb;                  /* [vocab, W] in tok_dt (host) */
    vkf_wdtype tok_dt;
    float *pos_emb;                 /* [n_ctx, W] f32 (host) */
};

/* ---- loading ----------------------------------------------------------- */

typedef struct loader {
    vkf_gpu *gpu;
    vkf_weights *w;
    vkf_errbuf *e;
    char name[512];
} loader;

static const char *fmt_name(loader *ld, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static const char *fmt_name(loader *ld, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ld->name, sizeof(ld->name), fmt, ap);
    va_end(ap);
    return ld->name;
}

static void shape_str(char *buf, size_t n, int ndim, const int64_t *shape)
{
    size_t at = (size_t)snprintf(buf, n, "[");
    for (int d = 0; d < ndim && at < n; d++)
        at += (size_t)snprintf(buf + at, n - at, "%s%lld", d ? ", " : "", (long long)shape[d]);
    if (at < n)
        snprintf(buf + at, n - at, "]");
}

/* The tensor `name` with exactly this shape (d1 < 0: 1-D), or an error
 * naming what was expected and what was found. */
static int need(loader *ld, const char *name, int64_t d0, int64_t d1,
                const vkf_weight_info **out)
{
    const vkf_weight_info *t = vkf_weights_find(ld->w, name);
    int ndim = d1 < 0 ? 1 : 2;
    int64_t want[2] = {d0, d1};
    if (!t)
        return vkf_errbuf_set(ld->e, VKF_EUNSUPPORTED,
                              "CLIP text model: tensor '%s' is missing", name);
    if (t->ndim != ndim || t->shape[0] != d0 || (ndim == 2 && t->shape[1] != d1)) {
        char got[128], exp[64];
        shape_str(got, sizeof(got), t->ndim, t->shape);
        shape_str(exp, sizeof(exp), ndim, want);
        return vkf_errbuf_set(ld->e, VKF_EUNSUPPORTED,
                              "CLIP text model: tensor '%s' has shape %s, expected %s",
                              name, got, exp);
    }
    *out = t;
    return 0;
}

static int upload_f32(loader *ld, const vkf_weight_info *t, vkf_tensor **out)
{
    int err = 0;
    float *host = vkf_malloc((size_t)t->numel * sizeof(float));
    vkf_tensor *x = NULL;
    VKF_CHECK_ALLOC(host);
    VKF_TRY(vkf_weights_to_f32(ld->w, t, host));
    VKF_TRY(vkf_tensor_create(ld->gpu, VKF_DTYPE_F32, 1, (int64_t[]){t->numel}, &x));
    VKF_TRY(vkf_tensor_upload(x, host));
    *out = x;
    x = NULL;
fail:
    vkf_tensor_unref(&x);
    vkf_free(host);
    return err;
}

/* A 1-D f32 vector of n elements. */
static int vec(loader *ld, const char *name, int64_t n, vkf_tensor **out)
{
    const vkf_weight_info *t;
    int err = need(ld, name, n, -1, &t);
    return err < 0 ? err : upload_f32(ld, t, out);
}

/* A matrix in its file dtype. */
static int mat(loader *ld, const char *name, int64_t d0, int64_t d1, vkf_tensor **out)
{
    const vkf_weight_info *t;
    int err = need(ld, name, d0, d1, &t);
    if (err < 0)
        return err;
    err = vkf_weights_load_tensor(ld->w, t, ld->gpu, out);
    if (err < 0)
        return vkf_errbuf_set(ld->e, err, "CLIP text model: cannot upload '%s': %s", name,
                              vkf_strerror(err));
    return 0;
}

static bool gpu_dtype(vkf_wdtype wd, vkf_dtype *out)
{
    switch (wd) {
    case VKF_WDT_F32: *out = VKF_DTYPE_F32; return true;
    case VKF_WDT_F16: *out = VKF_DTYPE_F16; return true;
    case VKF_WDT_BF16: *out = VKF_DTYPE_BF16; return true;
    default: return false;
    }
}

/* Concatenates n tensors of equal shape along dim 0: rows (matrices, in
 * their dtype when they share an f32/f16/bf16 dtype, else f32) or f32
 * vectors. */
static int fuse(loader *ld, const vkf_weight_info *const *ts, int n, bool vector,
                vkf_tensor **out)
{
    int err = 0;
    vkf_tensor *x = NULL;
    void *host = NULL;
    vkf_dtype dt;
    bool raw = !vector && gpu_dtype(ts[0]->dtype, &dt);
    for (int i = 1; i < n; i++)
        raw = raw && ts[i]->dtype == ts[0]->dtype;
    if (!raw)
        dt = VKF_DTYPE_F32;
    size_t esz = vkf_dtype_size(dt), part = (size_t)ts[0]->numel * esz;
    host = vkf_malloc(part * (size_t)n);
    VKF_CHECK_ALLOC(host);
    for (int i = 0; i < n; i++) {
        if (raw) {
            const void *data;
            size_t size;
            VKF_TRY(vkf_weights_data(ld->w, ts[i], &data, &size));
            if (size != part) {
                err = VKF_EPARSE;
                goto fail;
            }
            memcpy((char *)host + part * (size_t)i, data, part);
        } else {
            VKF_TRY(vkf_weights_to_f32(ld->w, ts[i], (float *)((char *)host + part * (size_t)i)));
        }
    }
    int64_t shape[2] = {ts[0]->shape[0] * n, vector ? 0 : ts[0]->shape[1]};
    VKF_TRY(vkf_tensor_create(ld->gpu, dt, vector ? 1 : 2, shape, &x));
    VKF_TRY(vkf_tensor_upload_raw(x, host, part * (size_t)n));
    *out = x;
    x = NULL;
fail:
    if (err < 0)
        vkf_errbuf_set(ld->e, err, "CLIP text model: cannot read '%s': %s", ts[0]->name,
                       vkf_strerror(err));
    vkf_tensor_unref(&x);
    vkf_free(host);
    return err;
}

/* Key layouts. */
typedef enum layout { LAYOUT_HF, LAYOUT_OPENCLIP } layout;

static int load_layer_hf(loader *ld, const char *base, int i, int W, int M, clip_layer *l)
{
    int err = 0;
    const vkf_weight_info *q[3], *b[3];
    static const char *const qkv[3] = {"q_proj", "k_proj", "v_proj"};
    for (int j = 0; j < 3; j++) {
        VKF_TRY(need(ld, fmt_name(ld, "%sencoder.layers.%d.self_attn.%s.weight", base, i, qkv[j]),
                     W, W, &q[j]));
        VKF_TRY(need(ld, fmt_name(ld, "%sencoder.layers.%d.self_attn.%s.bias", base, i, qkv[j]),
                     W, -1, &b[j]));
    }
    VKF_TRY(fuse(ld, q, 3, false, &l->qkv_w));
    VKF_TRY(fuse(ld, b, 3, true, &l->qkv_b));
#define P(s) fmt_name(ld, "%sencoder.layers.%d." s, base, i)
    VKF_TRY(mat(ld, P("self_attn.out_proj.weight"), W, W, &l->out_w));
    VKF_TRY(vec(ld, P("self_attn.out_proj.bias"), W, &l->out_b));
    VKF_TRY(vec(ld, P("layer_norm1.weight"), W, &l->ln1_w));
    VKF_TRY(vec(ld, P("layer_norm1.bias"), W, &l->ln1_b));
    VKF_TRY(vec(ld, P("layer_norm2.weight"), W, &l->ln2_w));
    VKF_TRY(vec(ld, P("layer_norm2.bias"), W, &l->ln2_b));
    VKF_TRY(mat(ld, P("mlp.fc1.weight"), M, W, &l->fc1_w));
    VKF_TRY(vec(ld, P("mlp.fc1.bias"), M, &l->fc1_b));
    VKF_TRY(mat(ld, P("mlp.fc2.weight"), W, M, &l->fc2_w));
    VKF_TRY(vec(ld, P("mlp.fc2.bias"), W, &l->fc2_b));
#undef P
fail:
    return err;
}

static int load_layer_openclip(loader *ld, const char *base, int i, int W, int M,
                               clip_layer *l)
{
    int err = 0;
#define P(s) fmt_name(ld, "%stransformer.resblocks.%d." s, base, i)
    VKF_TRY(mat(ld, P("attn.in_proj_weight"), 3 * W, W, &l->qkv_w));
    VKF_TRY(vec(ld, P("attn.in_proj_bias"), 3 * W, &l->qkv_b));
    VKF_TRY(mat(ld, P("attn.out_proj.weight"), W, W, &l->out_w));
    VKF_TRY(vec(ld, P("attn.out_proj.bias"), W, &l->out_b));
    VKF_TRY(vec(ld, P("ln_1.weight"), W, &l->ln1_w));
    VKF_TRY(vec(ld, P("ln_1.bias"), W, &l->ln1_b));
    VKF_TRY(vec(ld, P("ln_2.weight"), W, &l->ln2_w));
    VKF_TRY(vec(ld, P("ln_2.bias"), W, &l->ln2_b));
    VKF_TRY(mat(ld, P("mlp.c_fc.weight"), M, W, &l->fc1_w));
    VKF_TRY(vec(ld, P("mlp.c_fc.bias"), M, &l->fc1_b));
    VKF_TRY(mat(ld, P("mlp.c_proj.weight"), W, M, &l->fc2_w));
    VKF_TRY(vec(ld, P("mlp.c_proj.bias"), W, &l->fc2_b));
#undef P
fail:
    return err;
}

static void layer_free(clip_layer *l)
{
    vkf_tensor **t[] = {&l->ln1_w, &l->ln1_b, &l->ln2_w, &l->ln2_b, &l->qkv_w, &l->qkv_b,
                        &l->out_w, &l->out_b, &l->fc1_w, &l->fc1_b, &l->fc2_w, &l->fc2_b};
    for (size_t i = 0; i < VKF_ARRAY_SIZE(t); i++)
        vkf_tensor_unref(t[i]);
}

void vkf_clip_text_destroy(vkf_clip_text **pm)
{
    vkf_clip_text *m = pm ? *pm : NULL;
    if (!m)
        return;
    for (int i = 0; m->layers && i < m->cfg.layers; i++)
        layer_free(&m->layers[i]);
    vkf_free(m->layers);
    vkf_tensor_unref(&m->lnf_w);
    vkf_tensor_unref(&m->lnf_b);
    vkf_tensor_unref(&m->proj);
    vkf_free(m->tok_emb);
    vkf_free(m->pos_emb);
    vkf_free(m);
    *pm = NULL;
}

const vkf_clip_text_config *vkf_clip_text_get_config(const vkf_clip_text *m)
{
    return &m->cfg;
}

/* Lists the top-level names under prefix (up to 3) for the refusal message. */
static void describe_prefix(const vkf_weights *w, const char *prefix, char *buf, size_t n)
{
    int i = vkf_weights_find_prefix(w, prefix);
    size_t plen = strlen(prefix), at = 0;
    int shown = 0, total = 0;
    buf[0] = 0;
    for (; i >= 0 && i < vkf_weights_count(w); i++) {
        const char *name = vkf_weights_at(w, i)->name;
        if (strncmp(name, prefix, plen) != 0)
            break;
        total++;
        if (shown < 3 && at < n) {
            at += (size_t)snprintf(buf + at, n - at, "%s'%s'", shown ? ", " : "", name);
            shown++;
        }
    }
    if (!total)
        snprintf(buf, n, "no tensors under '%s'", prefix);
    else if (total > shown && at < n)
        snprintf(buf + at, n - at, " and %d more", total - shown);
}

/* Scaled-fp8 files keep a per-tensor scale beside each weight
 * ("x.scale_weight", marker "scaled_fp8"); the widening upload here does
 * not apply it, so such towers are refused rather than silently wrong. */
static const char *scaled_fp8_key(const vkf_weights *w, const char *prefix)
{
    size_t plen = strlen(prefix);
    int i = vkf_weights_find_prefix(w, prefix);
    for (; i >= 0 && i < vkf_weights_count(w); i++) {
        const char *name = vkf_weights_at(w, i)->name;
        if (strncmp(name, prefix, plen) != 0)
            break;
        size_t n = strlen(name);
        if (!strcmp(name + plen, "scaled_fp8") ||
            (n >= 13 && !strcmp(name + n - 13, ".scale_weight")))
            return name;
    }
    return NULL;
}

int vkf_clip_text_load(vkf_gpu *gpu, vkf_weights *w, const char *prefix,
                       vkf_clip_text **out, vkf_errbuf *e)
{
    int err = 0;
    loader ld = {.gpu = gpu, .w = w, .e = e};
    vkf_clip_text *m = NULL;
    char base[256];
    layout lay;
    const vkf_weight_info *tok, *pos, *t;
    *out = NULL;
    if (e)
        e->msg[0] = 0;
    if (!prefix)
        prefix = "";

    /* Which layout: HF with or without the text_model. level, or OpenCLIP. */
    if (vkf_weights_find(w, fmt_name(&ld, "%stext_model.embeddings.token_embedding.weight", prefix))) {
        lay = LAYOUT_HF;
        snprintf(base, sizeof(base), "%stext_model.", prefix);
    } else if (vkf_weights_find(w, fmt_name(&ld, "%sembeddings.token_embedding.weight", prefix))) {
        lay = LAYOUT_HF;
        snprintf(base, sizeof(base), "%s", prefix);
    } else if (vkf_weights_find(w, fmt_name(&ld, "%stoken_embedding.weight", prefix)) &&
               vkf_weights_find(w, fmt_name(&ld, "%stransformer.resblocks.0.attn.in_proj_weight",
                                            prefix))) {
        lay = LAYOUT_OPENCLIP;
        snprintf(base, sizeof(base), "%s", prefix);
    } else {
        char found[400];
        describe_prefix(w, prefix, found, sizeof(found));
        return vkf_errbuf_set(e, VKF_EUNSUPPORTED,
                              "CLIP text model: no HF ('%stext_model.embeddings."
                              "token_embedding.weight') or OpenCLIP ('%stoken_embedding.weight' "
                              "+ transformer.resblocks) text tower; found %s",
                              prefix, prefix, found);
    }

    const char *scaled = scaled_fp8_key(w, prefix);
    if (scaled)
        return vkf_errbuf_set(e, VKF_EUNSUPPORTED,
                              "CLIP text model: scaled fp8 weights ('%s') are not supported; "
                              "use an f16/bf16/f32 text encoder", scaled);
    char tok_name[512];
    snprintf(tok_name, sizeof(tok_name), "%s%s", base,
             lay == LAYOUT_HF ? "embeddings.token_embedding.weight" : "token_embedding.weight");
    tok = vkf_weights_find(w, tok_name);
    if (!tok || tok->ndim != 2 || tok->shape[1] < 64 || tok->shape[1] % 64 != 0 ||
        tok->shape[0] < VKF_CLIP_VOCAB) {
        char got[128] = "(missing)";
        if (tok)
            shape_str(got, sizeof(got), tok->ndim, tok->shape);
        return vkf_errbuf_set(e, VKF_EUNSUPPORTED,
                              "CLIP text model: token embedding '%s' has shape %s; expected "
                              "[>= %d, width] with width a multiple of 64 (64-wide heads)",
                              tok_name, got, VKF_CLIP_VOCAB);
    }
    int W = (int)tok->shape[1];

    m = vkf_calloc(1, sizeof(*m));
    VKF_CHECK_ALLOC(m);
    m->gpu = gpu;
    m->cfg.width = W;
    m->cfg.heads = W / 64;
    m->cfg.vocab = (int)tok->shape[0];
    m->cfg.n_ctx = VKF_CLIP_CTX;

    /* Layers: count from 0 while the block exists. */
    int L = 0;
    for (;; L++) {
        const char *probe = lay == LAYOUT_HF
                                ? fmt_name(&ld, "%sencoder.layers.%d.mlp.fc1.weight", base, L)
                                : fmt_name(&ld, "%stransformer.resblocks.%d.mlp.c_fc.weight",
                                           base, L);
        if (!vkf_weights_find(w, probe))
            break;
    }
    if (L == 0) {
        err = vkf_errbuf_set(e, VKF_EUNSUPPORTED,
                             "CLIP text model: '%s' found but no transformer layers "
                             "(looked for '%s')", tok_name, ld.name);
        goto fail;
    }
    m->cfg.layers = L;
    /* Diffusers exports of SD2's encoder (HF names, width 1024) hold 23 of
     * OpenCLIP-H's 24 blocks.  ComfyUI loads them into its 24-layer model,
     * so its layer indices (SD2's default penultimate = block 22) count 24:
     * do the same, so that -2 is the last block present. */
    m->nominal_layers = lay == LAYOUT_HF && W == 1024 && L == 23 ? 24 : L;
    /* HF names: CLIP-L (quick GELU) unless the tower is H/bigG-wide (the
     * diffusers export of SD2's encoder uses GELU); OpenCLIP: GELU. */
    m->cfg.kind = lay == LAYOUT_OPENCLIP || W >= 1024 ? VKF_CLIP_OPEN_H : VKF_CLIP_L;
    m->cfg.quick_gelu = m->cfg.kind == VKF_CLIP_L;

    const char *fc1 = lay == LAYOUT_HF ? fmt_name(&ld, "%sencoder.layers.0.mlp.fc1.weight", base)
                                       : fmt_name(&ld, "%stransformer.resblocks.0.mlp.c_fc.weight",
                                                  base);
    t = vkf_weights_find(w, fc1);
    if (t->ndim != 2 || t->shape[1] != W || t->shape[0] < 1) {
        char got[128];
        shape_str(got, sizeof(got), t->ndim, t->shape);
        err = vkf_errbuf_set(e, VKF_EUNSUPPORTED,
                             "CLIP text model: tensor '%s' has shape %s, expected [mlp, %d]",
                             fc1, got, W);
        goto fail;
    }
    m->mlp = (int)t->shape[0];

    const char *pos_name = lay == LAYOUT_HF
                               ? fmt_name(&ld, "%sembeddings.position_embedding.weight", base)
                               : fmt_name(&ld, "%spositional_embedding", base);
    VKF_TRY(need(&ld, pos_name, VKF_CLIP_CTX, W, &pos));

    /* Host embeddings. */
    m->pos_emb = vkf_malloc((size_t)VKF_CLIP_CTX * (size_t)W * sizeof(float));
    VKF_CHECK_ALLOC(m->pos_emb);
    VKF_TRY(vkf_weights_to_f32(w, pos, m->pos_emb));
    vkf_dtype tdt;
    if (gpu_dtype(tok->dtype, &tdt)) {
        const void *data;
        size_t size;
        VKF_TRY(vkf_weights_data(w, tok, &data, &size));
        if (size != tok->nbytes) {
            err = VKF_EPARSE;
            goto fail;
        }
        m->tok_emb = vkf_malloc(size);
        VKF_CHECK_ALLOC(m->tok_emb);
        memcpy(m->tok_emb, data, size);
        m->tok_dt = tok->dtype;
    } else {
        m->tok_emb = vkf_malloc((size_t)tok->numel * sizeof(float));
        VKF_CHECK_ALLOC(m->tok_emb);
        VKF_TRY(vkf_weights_to_f32(w, tok, m->tok_emb));
        m->tok_dt = VKF_WDT_F32;
    }

    m->layers = vkf_calloc((size_t)L, sizeof(*m->layers));
    VKF_CHECK_ALLOC(m->layers);
    for (int i = 0; i < L; i++) {
        if (lay == LAYOUT_HF)
            VKF_TRY(load_layer_hf(&ld, base, i, W, m->mlp, &m->layers[i]));
        else
            VKF_TRY(load_layer_openclip(&ld, base, i, W, m->mlp, &m->layers[i]));
    }
    if (lay == LAYOUT_HF) {
        VKF_TRY(vec(&ld, fmt_name(&ld, "%sfinal_layer_norm.weight", base), W, &m->lnf_w));
        VKF_TRY(vec(&ld, fmt_name(&ld, "%sfinal_layer_norm.bias", base), W, &m->lnf_b));
        /* text_projection sits beside text_model (CLIPTextModelWithProjection). */
        const char *pn = fmt_name(&ld, "%stext_projection.weight", prefix);
        t = vkf_weights_find(w, pn);
        if (t) {
            if (t->ndim != 2 || t->shape[1] != W || t->shape[0] < 1) {
                char got[128];
                shape_str(got, sizeof(got), t->ndim, t->shape);
                err = vkf_errbuf_set(e, VKF_EUNSUPPORTED,
                                     "CLIP text model: tensor '%s' has shape %s, expected "
                                     "[proj, %d]", pn, got, W);
                goto fail;
            }
            m->cfg.proj_dim = (int)t->shape[0];
            m->proj_linear = true;
            VKF_TRY(mat(&ld, pn, t->shape[0], W, &m->proj));
        }
    } else {
        VKF_TRY(vec(&ld, fmt_name(&ld, "%sln_final.weight", base), W, &m->lnf_w));
        VKF_TRY(vec(&ld, fmt_name(&ld, "%sln_final.bias", base), W, &m->lnf_b));
        const char *pn = fmt_name(&ld, "%stext_projection", base);
        t = vkf_weights_find(w, pn);
        if (t) {
            if (t->ndim != 2 || t->shape[0] != W || t->shape[1] < 1) {
                char got[128];
                shape_str(got, sizeof(got), t->ndim, t->shape);
                err = vkf_errbuf_set(e, VKF_EUNSUPPORTED,
                                     "CLIP text model: tensor '%s' has shape %s, expected "
                                     "[%d, proj]", pn, got, W);
                goto fail;
            }
            m->cfg.proj_dim = (int)t->shape[1];
            m->proj_linear = false;
            VKF_TRY(mat(&ld, pn, W, t->shape[1], &m->proj));
        }
    }
    *out = m;
    return 0;
fail:
    if (err < 0 && e && !e->msg[0])
        vkf_errbuf_set(e, err, "CLIP text model under '%s': %s", prefix, vkf_strerror(err));
    vkf_clip_text_destroy(&m);
    return err;
}

/* ---- encoding ---------------------------------------------------------- */

static float tok_value(const vkf_clip_text *m, int64_t id, int j)
{
    size_t i = (size_t)id * (size_t)m->cfg.width + (size_t)j;
    switch (m->tok_dt) {
    case VKF_WDT_F16: return vkf_f16_to_f32(((const uint16_t *)m->tok_emb)[i]);
    case VKF_WDT_BF16: return vkf_bf16_to_f32(((const uint16_t *)m->tok_emb)[i]);
    default: return ((const float *)m->tok_emb)[i];
    }
}

/* Row of chunk c that gives the pooled vector (see the file comment). */
static int pooled_pos(const vkf_clip_token *t)
{
    int best = 0, last_embed = -1;
    for (int i = 0; i < VKF_CLIP_CTX; i++) {
        if (t[i].id == VKF_CLIP_EOS)
            return i;
        if (t[i].id < 0)
            last_embed = i;
        if (t[i].id > t[best].id)
            best = i;
    }
    return last_embed >= 0 ? last_embed : best;
}

/* x·σ(1.702·x) */
static int quick_gelu(vkf_gpu *gpu, vkf_tensor *x, vkf_tensor **out)
{
    int err = 0;
    vkf_tensor *s = NULL, *g = NULL;
    VKF_TRY(vkf_op_unary(gpu, VKF_UN_SCALE, x, 1.702f, 0.0f, &s));
    VKF_TRY(vkf_op_unary(gpu, VKF_UN_SIGMOID, s, 0, 0, &g));
    VKF_TRY(vkf_op_binary(gpu, VKF_BIN_MUL, x, g, out));
fail:
    vkf_tensor_unref(&s);
    vkf_tensor_unref(&g);
    return err;
}

/* x ← x + block(x), in a new tensor. */
static int run_layer(vkf_clip_text *m, const clip_layer *l, vkf_tensor *x, vkf_tensor **out)
{
    int err = 0;
    vkf_gpu *gpu = m->gpu;
    const int64_t B = vkf_tensor_shape(x)[0], N = vkf_tensor_shape(x)[1];
    const int64_t W = m->cfg.width, H = m->cfg.heads, D = W / H;
    vkf_tensor *h = NULL, *qkv = NULL, *qkv4 = NULL, *qs = NULL, *ks = NULL, *vs = NULL;
    vkf_tensor *q = NULL, *k = NULL, *v = NULL, *a = NULL, *ap = NULL, *ac = NULL;
    vkf_tensor *a3 = NULL, *o = NULL, *x1 = NULL, *f = NULL, *g = NULL;
    static const int perm[4] = {0, 2, 1, 3};

    VKF_TRY(vkf_op_layer_norm(gpu, x, l->ln1_w, l->ln1_b, 1e-5f, &h));
    VKF_TRY(vkf_op_linear(gpu, h, l->qkv_w, l->qkv_b, &qkv));
    /* [B, N, 3W] → [B, N, 3H, D]; q/k/v are [B, H, N, D] views of it. */
    VKF_TRY(vkf_tensor_reshape(qkv, 4, (int64_t[]){B, N, 3 * H, D}, &qkv4));
    VKF_TRY(vkf_tensor_slice(qkv4, 2, 0, H, &qs));
    VKF_TRY(vkf_tensor_slice(qkv4, 2, H, H, &ks));
    VKF_TRY(vkf_tensor_slice(qkv4, 2, 2 * H, H, &vs));
    VKF_TRY(vkf_tensor_permute(qs, perm, &q));
    VKF_TRY(vkf_tensor_permute(ks, perm, &k));
    VKF_TRY(vkf_tensor_permute(vs, perm, &v));
    vkf_attention_params ap_ = {.causal = true};
    VKF_TRY(vkf_op_attention(gpu, q, k, v, &ap_, &a));
    VKF_TRY(vkf_tensor_permute(a, perm, &ap));        /* [B, N, H, D] */
    VKF_TRY(vkf_op_contiguous(gpu, ap, &ac));
    VKF_TRY(vkf_tensor_reshape(ac, 3, (int64_t[]){B, N, W}, &a3));
    VKF_TRY(vkf_op_linear(gpu, a3, l->out_w, l->out_b, &o));
    VKF_TRY(vkf_op_binary(gpu, VKF_BIN_ADD, x, o, &x1));
    vkf_tensor_unref(&h);
    VKF_TRY(vkf_op_layer_norm(gpu, x1, l->ln2_w, l->ln2_b, 1e-5f, &h));
    VKF_TRY(vkf_op_linear(gpu, h, l->fc1_w, l->fc1_b, &f));
    if (m->cfg.quick_gelu)
        VKF_TRY(quick_gelu(gpu, f, &g));
    else
        VKF_TRY(vkf_op_unary(gpu, VKF_UN_GELU_ERF, f, 0, 0, &g));
    vkf_tensor_unref(&f);
    VKF_TRY(vkf_op_linear(gpu, g, l->fc2_w, l->fc2_b, &f));
    VKF_TRY(vkf_op_binary(gpu, VKF_BIN_ADD, x1, f, out));
fail:;
    vkf_tensor **all[] = {&h, &qkv, &qkv4, &qs, &ks, &vs, &q, &k, &v, &a, &ap, &ac, &a3,
                          &o, &x1, &f, &g};
    for (size_t i = 0; i < VKF_ARRAY_SIZE(all); i++)
        vkf_tensor_unref(all[i]);
    return err;
}

static int pool(vkf_clip_text *m, const vkf_clip_tokens *tok, vkf_tensor *x, vkf_tensor **out)
{
    int err = 0;
    vkf_gpu *gpu = m->gpu;
    const int B = tok->n_chunks, W = m->cfg.width;
    vkf_tensor **rows = vkf_calloc((size_t)B, sizeof(*rows));
    vkf_tensor *row = NULL, *cat = NULL, *cat2 = NULL, *ln = NULL;
    VKF_CHECK_ALLOC(rows);
    for (int b = 0; b < B; b++) {
        int p = pooled_pos(tok->tok + (size_t)b * VKF_CLIP_CTX);
        VKF_TRY(vkf_tensor_slice(x, 0, b, 1, &row));
        VKF_TRY(vkf_tensor_slice(row, 1, p, 1, &rows[b]));
        vkf_tensor_unref(&row);
    }
    VKF_TRY(vkf_op_concat(gpu, rows, B, 0, &cat));   /* [B, 1, W] */
    VKF_TRY(vkf_tensor_reshape(cat, 2, (int64_t[]){B, W}, &cat2));
    VKF_TRY(vkf_op_layer_norm(gpu, cat2, m->lnf_w, m->lnf_b, 1e-5f, &ln));
    if (!m->proj) {
        *out = ln;
        ln = NULL;
    } else if (m->proj_linear) {
        VKF_TRY(vkf_op_linear(gpu, ln, m->proj, NULL, out));
    } else {
        VKF_TRY(vkf_op_matmul(gpu, ln, m->proj, false, NULL, out));
    }
fail:
    for (int b = 0; rows && b < B; b++)
        vkf_tensor_unref(&rows[b]);
    vkf_free(rows);
    vkf_tensor_unref(&row);
    vkf_tensor_unref(&cat);
    vkf_tensor_unref(&cat2);
    vkf_tensor_unref(&ln);
    return err;
}

int vkf_clip_text_encode(vkf_clip_text *m, const vkf_clip_tokens *tok, int layer_idx,
                         vkf_tensor **hidden, vkf_tensor **pooled)
{
    return vkf_clip_text_encode_ex(m, tok, layer_idx, true, hidden, pooled);
}

int vkf_clip_text_encode_ex(vkf_clip_text *m, const vkf_clip_tokens *tok, int layer_idx,
                            bool layer_norm_hidden, vkf_tensor **hidden, vkf_tensor **pooled)
{
    int err = 0;
    float *host = NULL;
    vkf_tensor *x = NULL, *nx = NULL, *mid = NULL, *hid = NULL;
    if (!m || !tok || !hidden || tok->n_chunks < 1 || !tok->tok || layer_idx > 0)
        return VKF_EINVAL;
    *hidden = NULL;
    if (pooled)
        *pooled = NULL;
    const int B = tok->n_chunks, W = m->cfg.width, L = m->cfg.layers;
    const int64_t ntok = (int64_t)B * VKF_CLIP_CTX;
    for (int64_t i = 0; i < ntok; i++) {
        int32_t id = tok->tok[i].id;
        if (id >= m->cfg.vocab)
            return VKF_EINVAL;
        if (id < 0 && (!tok->embeds || tok->embed_dim != W || -1 - (int64_t)id >= tok->n_embeds))
            return VKF_EINVAL;
    }
    /* ComfyUI: |layer_idx| beyond the layer count means the last layer.  The
     * hidden state is the output of layer `stop`; pooled needs all layers. */
    const int NL = m->nominal_layers;
    bool last = layer_idx == 0 || -layer_idx > NL;
    int stop = last ? L - 1 : NL + layer_idx;
    if (stop > L - 1)
        stop = L - 1;
    int run = pooled ? L : stop + 1;

    host = vkf_malloc((size_t)ntok * (size_t)W * sizeof(float));
    VKF_CHECK_ALLOC(host);
    for (int64_t i = 0; i < ntok; i++) {
        int32_t id = tok->tok[i].id;
        const float *pe = m->pos_emb + (size_t)(i % VKF_CLIP_CTX) * (size_t)W;
        float *dst = host + (size_t)i * (size_t)W;
        if (id >= 0) {
            for (int j = 0; j < W; j++)
                dst[j] = tok_value(m, id, j) + pe[j];
        } else {
            const float *src = tok->embeds + (size_t)(-1 - (int64_t)id) * (size_t)W;
            for (int j = 0; j < W; j++)
                dst[j] = src[j] + pe[j];
        }
    }
    VKF_TRY(vkf_tensor_create(m->gpu, VKF_DTYPE_F32, 3, (int64_t[]){B, VKF_CLIP_CTX, W}, &x));
    VKF_TRY(vkf_tensor_upload(x, host));
    vkf_free(host);
    host = NULL;

    for (int i = 0; i < run; i++) {
        VKF_TRY(run_layer(m, &m->layers[i], x, &nx));
        vkf_tensor_unref(&x);
        x = nx;
        nx = NULL;
        if (i == stop)
            mid = vkf_tensor_ref(x);
    }
    if (last || layer_norm_hidden)
        VKF_TRY(vkf_op_layer_norm(m->gpu, mid, m->lnf_w, m->lnf_b, 1e-5f, &hid));
    else
        VKF_TRY(vkf_op_contiguous(m->gpu, mid, &hid));
    if (pooled)
        VKF_TRY(pool(m, tok, x, pooled));
    *hidden = hid;
    hid = NULL;
fail:
    vkf_free(host);
    vkf_tensor_unref(&x);
    vkf_tensor_unref(&nx);
    vkf_tensor_unref(&mid);
    vkf_tensor_unref(&hid);
    return err;
}

/* ---- synthesized weights ----------------------------------------------- */

/*
 * Random CLIP text towers with the exact key names of SD1 (HF CLIP-L under
 * prefix, with text_model.) and SD2 (OpenCLIP-H) single-file checkpoints.
 * Matrices: uniform with std 0.02 at full scale and 0.02·√(768/W) at tiny
 * scale (so a linear layer's output has the real model's variance); token
 * embedding std 0.02, positions 0.01; LN weights 1; biases std 0.01.
 * Random values depend only on (writer seed, tensor name).
 */
static int synth_tower(vkf_st_writer *w, const char *prefix, bool open, bool big_g,
                       vkf_synth_scale scale, vkf_wdtype dtype);

/* SDXL (base): CLIP-L under prefix "0.transformer." and OpenCLIP bigG
 * (width 1280, 32 layers; tiny: 64, 2) under prefix "1.model.", as in
 * single files with prefix "conditioner.embedders.". */
int vkf_synth_clip_text(vkf_st_writer *w, const char *prefix, vkf_synth_arch arch,
                        vkf_synth_scale scale, vkf_wdtype dtype)
{
    bool open = arch == VKF_SYNTH_SD2 || arch == VKF_SYNTH_SD2_V;
    if (!w || (arch != VKF_SYNTH_SD15 && arch != VKF_SYNTH_SD15_INPAINT && !open &&
               arch != VKF_SYNTH_SDXL))
        return VKF_EINVAL;
    if (!prefix)
        prefix = "";
    if (arch == VKF_SYNTH_SDXL) {
        char p0[256], p1[256];
        snprintf(p0, sizeof(p0), "%s0.transformer.", prefix);
        snprintf(p1, sizeof(p1), "%s1.model.", prefix);
        int err = synth_tower(w, p0, false, false, scale, dtype);
        return err < 0 ? err : synth_tower(w, p1, true, true, scale, dtype);
    }
    return synth_tower(w, prefix, open, false, scale, dtype);
}

static int synth_tower(vkf_st_writer *w, const char *prefix, bool open, bool big_g,
                       vkf_synth_scale scale, vkf_wdtype dtype)
{
    int err = 0;
    char base[256], name[512];
    int64_t W, L, M;
    if (scale == VKF_SYNTH_TINY) {
        W = 64;
        L = 2;
    } else {
        W = big_g ? 1280 : open ? 1024 : 768;
        L = big_g ? 32 : open ? 24 : 12;
    }
    M = 4 * W;
    const int64_t V = VKF_CLIP_VOCAB, C = VKF_CLIP_CTX;
    float ws = scale == VKF_SYNTH_TINY ? 0.02f * sqrtf(768.0f / (float)W) : 0.02f;
    const float bs = 0.01f;

#define ADD_R(nm, nd, std, ...) \
    VKF_TRY(vkf_st_writer_add_random(w, nm, dtype, nd, (const int64_t[]){__VA_ARGS__}, 0.0f, std))
#define ADD_ONE(nm, n) \
    VKF_TRY(vkf_st_writer_add_const(w, nm, dtype, 1, (const int64_t[]){n}, 1.0f))
#define NM(...) (snprintf(name, sizeof(name), __VA_ARGS__), name)

    if (!open) {
        snprintf(base, sizeof(base), "%stext_model.", prefix);
        ADD_R(NM("%sembeddings.token_embedding.weight", base), 2, 0.02f, V, W);
        ADD_R(NM("%sembeddings.position_embedding.weight", base), 2, 0.01f, C, W);
        /* SD1 files carry the HF position_ids buffer (int64 there; exact
         * in any float dtype); loaders ignore it. */
        float ids[VKF_CLIP_CTX];
        for (int i = 0; i < VKF_CLIP_CTX; i++)
            ids[i] = (float)i;
        VKF_TRY(vkf_st_writer_add_data(w, NM("%sembeddings.position_ids", base), dtype, 2,
                                       (const int64_t[]){1, C}, ids));
        for (int64_t i = 0; i < L; i++) {
            static const char *const pr[4] = {"q_proj", "k_proj", "v_proj", "out_proj"};
            for (int j = 0; j < 4; j++) {
                ADD_R(NM("%sencoder.layers.%lld.self_attn.%s.weight", base, (long long)i, pr[j]),
                      2, ws, W, W);
                ADD_R(NM("%sencoder.layers.%lld.self_attn.%s.bias", base, (long long)i, pr[j]),
                      1, bs, W);
            }
            for (int j = 1; j <= 2; j++) {
                ADD_ONE(NM("%sencoder.layers.%lld.layer_norm%d.weight", base, (long long)i, j), W);
                ADD_R(NM("%sencoder.layers.%lld.layer_norm%d.bias", base, (long long)i, j), 1,
                      bs, W);
            }
            ADD_R(NM("%sencoder.layers.%lld.mlp.fc1.weight", base, (long long)i), 2, ws, M, W);
            ADD_R(NM("%sencoder.layers.%lld.mlp.fc1.bias", base, (long long)i), 1, bs, M);
            ADD_R(NM("%sencoder.layers.%lld.mlp.fc2.weight", base, (long long)i), 2, ws, W, M);
            ADD_R(NM("%sencoder.layers.%lld.mlp.fc2.bias", base, (long long)i), 1, bs, W);
        }
        ADD_ONE(NM("%sfinal_layer_norm.weight", base), W);
        ADD_R(NM("%sfinal_layer_norm.bias", base), 1, bs, W);
    } else {
        ADD_R(NM("%stoken_embedding.weight", prefix), 2, 0.02f, V, W);
        ADD_R(NM("%spositional_embedding", prefix), 2, 0.01f, C, W);
        for (int64_t i = 0; i < L; i++) {
            const char *b = prefix;
            long long li = (long long)i;
            ADD_R(NM("%stransformer.resblocks.%lld.attn.in_proj_weight", b, li), 2, ws, 3 * W, W);
            ADD_R(NM("%stransformer.resblocks.%lld.attn.in_proj_bias", b, li), 1, bs, 3 * W);
            ADD_R(NM("%stransformer.resblocks.%lld.attn.out_proj.weight", b, li), 2, ws, W, W);
            ADD_R(NM("%stransformer.resblocks.%lld.attn.out_proj.bias", b, li), 1, bs, W);
            for (int j = 1; j <= 2; j++) {
                ADD_ONE(NM("%stransformer.resblocks.%lld.ln_%d.weight", b, li, j), W);
                ADD_R(NM("%stransformer.resblocks.%lld.ln_%d.bias", b, li, j), 1, bs, W);
            }
            ADD_R(NM("%stransformer.resblocks.%lld.mlp.c_fc.weight", b, li), 2, ws, M, W);
            ADD_R(NM("%stransformer.resblocks.%lld.mlp.c_fc.bias", b, li), 1, bs, M);
            ADD_R(NM("%stransformer.resblocks.%lld.mlp.c_proj.weight", b, li), 2, ws, W, M);
            ADD_R(NM("%stransformer.resblocks.%lld.mlp.c_proj.bias", b, li), 1, bs, W);
        }
        ADD_ONE(NM("%sln_final.weight", prefix), W);
        ADD_R(NM("%sln_final.bias", prefix), 1, bs, W);
        /* open_clip initialises it with std width^-0.5 */
        ADD_R(NM("%stext_projection", prefix), 2, 1.0f / sqrtf((float)W), W, W);
    }
#undef ADD_R
#undef ADD_ONE
#undef NM
fail:
    return err;
}
