/*
 * CLIP text encoders (core/models/clip_text.c) on synthesized tiny towers:
 *   - SD1 (HF CLIP-L names, quick GELU) and SD2 (OpenCLIP-H names, GELU,
 *     text_projection) against goldens from an independent PyTorch
 *     implementation (tests/reference/ref_clip.py, float64): hidden states
 *     for layer_idx 0 and -2 and the pooled vector, two chunks in one pass,
 *     one chunk with two textual-inversion rows.
 *     Tolerance (f32 weights): max |got - ref| <= 1e-4 · max |ref|;
 *     f16 weights 1e-2, bf16 weights 4e-2 (rounded weights vs f32 goldens).
 *   - layer_idx semantics: -1 == 0, |k| > layers == 0, early stop for the
 *     hidden state alone gives the same values; an HF text_projection.weight
 *     is applied as a Linear; the HF layout without "text_model.".
 *   - config inference, refusals naming what was found, bad token ids.
 *   - key names and counts of the full-scale synth (not saved).
 *   - every host allocation of load + encode failed in turn: an error, no
 *     leaked block.
 *   - a diffusers-style SD2 encoder (HF names, width 1024, 23 blocks):
 *     layer_idx counts 24 blocks as ComfyUI does.
 *
 * `test_clip_text --write DIR` only writes the tiny checkpoints
 * (DIR/clip_sd1_tiny.safetensors, DIR/clip_sd2_tiny.safetensors) that
 * ref_clip.py reads.  Exit 77 without a Vulkan device.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../gpu/gpu_test.h"
#include "vkflow/models.h"

#define SEED 1
#define W 64
#define CTX VKF_CLIP_CTX
#define NCH 2

static const char *const PREFIX[2] = {"cond_stage_model.transformer.", "cond_stage_model.model."};
static const char *const FILE_NAME[2] = {"clip_sd1_tiny.safetensors", "clip_sd2_tiny.safetensors"};
static const char *const GOLDEN[2] = {"sd1_tiny.bin", "sd2_tiny.bin"};

static int write_tiny(int which, vkf_wdtype dt, const char *path)
{
    vkf_st_writer *w = NULL;
    vkf_errbuf e = {{0}};
    int err = vkf_st_writer_create(SEED, &w);
    if (err >= 0)
        err = vkf_synth_clip_text(w, PREFIX[which], which ? VKF_SYNTH_SD2 : VKF_SYNTH_SD15,
                                  VKF_SYNTH_TINY, dt);
    if (err >= 0)
        err = vkf_st_writer_save(w, path, &e);
    if (err < 0)
        fprintf(stderr, "writing %s: %s %s\n", path, vkf_strerror(err), e.msg);
    vkf_st_writer_destroy(&w);
    return err;
}

/* The token chunks of the goldens (same formulas in ref_clip.py):
 * chunk 0: BOS, 10 words, EOS, padding (EOS for SD1, 0 for SD2);
 * chunk 1: BOS, 75 tokens of which positions 5 and 6 are the embedding
 * rows 0 and 1, EOS at 76. */
static void make_tokens(int which, vkf_clip_tokens *t)
{
    memset(t, 0, sizeof(*t));
    t->n_chunks = NCH;
    t->tok = calloc(NCH * CTX, sizeof(*t->tok));
    vkf_clip_token *c0 = t->tok, *c1 = t->tok + CTX;
    for (int i = 0; i < CTX; i++) {
        c0[i].weight = c1[i].weight = 1.0f;
        c0[i].id = i == 0 ? VKF_CLIP_BOS
                   : i <= 10 ? 320 + 17 * (i - 1)
                   : i == 11 ? VKF_CLIP_EOS
                             : (which ? 0 : VKF_CLIP_EOS);
        c1[i].id = i == 0 ? VKF_CLIP_BOS : i == 76 ? VKF_CLIP_EOS : (1000 + 613 * i) % 49000;
    }
    c1[5].id = -1;
    c1[6].id = -2;
    t->n_embeds = 2;
    t->embed_dim = W;
    t->embeds = malloc(2 * W * sizeof(float));
    for (int k = 0; k < 2 * W; k++)
        t->embeds[k] = (float)(0.02 * sin(0.37 * k + 1.0));
}

static void free_tokens(vkf_clip_tokens *t)
{
    free(t->tok);
    free(t->embeds);
}

/* max |a - b| / max |b| */
static double rel_err(const float *a, const float *b, int64_t n)
{
    double mx = 0, ref = 0;
    for (int64_t i = 0; i < n; i++) {
        mx = fmax(mx, fabs((double)a[i] - b[i]));
        ref = fmax(ref, fabs((double)b[i]));
    }
    return ref > 0 ? mx / ref : mx;
}

static float *read_golden(int which, int64_t n)
{
    const char *root = getenv("VKF_SOURCE_ROOT");
    char path[4096];
    snprintf(path, sizeof(path), "%s/tests/reference/golden/clip/%s", root ? root : ".",
             GOLDEN[which]);
    FILE *f = fopen(path, "rb");
    float *g = malloc((size_t)n * sizeof(float));
    size_t got = f ? fread(g, sizeof(float), (size_t)n + 1, f) : 0;
    if (f)
        fclose(f);
    if (got != (size_t)n) {
        fprintf(stderr, "%s: %zu floats, expected %lld\n", path, got, (long long)n);
        gt_failures++;
        free(g);
        return NULL;
    }
    return g;
}

static int open_weights(const char *path, vkf_weights **w)
{
    int err = vkf_weights_open(path, w, &gt_log);
    if (err < 0)
        fprintf(stderr, "open %s: %s\n", path, vkf_strerror(err));
    return err;
}

static float *encode(vkf_clip_text *m, const vkf_clip_tokens *t, int layer_idx,
                     bool want_pooled, float **pooled)
{
    vkf_tensor *h = NULL, *p = NULL;
    int err = vkf_clip_text_encode(m, t, layer_idx, &h, want_pooled ? &p : NULL);
    if (err < 0) {
        fprintf(stderr, "encode(layer %d): %s\n", layer_idx, vkf_strerror(err));
        gt_failures++;
        return NULL;
    }
    CHECK(vkf_tensor_ndim(h) == 3 && vkf_tensor_shape(h)[0] == t->n_chunks &&
          vkf_tensor_shape(h)[1] == CTX && vkf_tensor_shape(h)[2] == W);
    CHECK(vkf_tensor_dtype(h) == VKF_DTYPE_F32);
    float *hd = gt_download(h);
    if (pooled) {
        CHECK(p && vkf_tensor_ndim(p) == 2 && vkf_tensor_shape(p)[0] == t->n_chunks &&
              vkf_tensor_shape(p)[1] == W);
        *pooled = p ? gt_download(p) : NULL;
    }
    vkf_tensor_unref(&h);
    vkf_tensor_unref(&p);
    return hd;
}

/* Goldens: hidden(0) [2,77,64], hidden(-2) [2,77,64], pooled [2,64]. */
static void check_golden(vkf_gpu *gpu, int which, const char *path, const char *prefix,
                         double tol, const char *what)
{
    const int64_t nh = NCH * CTX * W, np = NCH * W;
    vkf_weights *w = NULL;
    vkf_clip_text *m = NULL;
    vkf_errbuf e = {{0}};
    vkf_clip_tokens t;
    float *g = read_golden(which, 2 * nh + np);
    if (!g || open_weights(path, &w) < 0) {
        gt_failures++;
        free(g);
        return;
    }
    int err = vkf_clip_text_load(gpu, w, prefix, &m, &e);
    vkf_weights_close(&w);  /* the model keeps nothing of the file */
    if (err < 0) {
        fprintf(stderr, "%s: load: %s\n", what, e.msg);
        gt_failures++;
        free(g);
        return;
    }
    make_tokens(which, &t);
    float *pooled = NULL;
    float *h0 = encode(m, &t, 0, true, &pooled);
    float *h2 = encode(m, &t, -2, false, NULL);
    if (h0 && h2 && pooled) {
        double e0 = rel_err(h0, g, nh), e2 = rel_err(h2, g + nh, nh),
               ep = rel_err(pooled, g + 2 * nh, np);
        printf("%s: rel err hidden(0) %.2e, hidden(-2) %.2e, pooled %.2e (tol %.0e)\n", what,
               e0, e2, ep, tol);
        CHECK(e0 <= tol);
        CHECK(e2 <= tol);
        CHECK(ep <= tol);
        /* the two layers really differ (the golden is not trivially met) */
        CHECK(rel_err(h2, g, nh) > 0.1);
    }
    /* layer_norm_hidden_state = false (SDXL): the raw penultimate layer;
     * "last" stays normed */
    if (h0) {
        char rp[4096];
        const char *root = getenv("VKF_SOURCE_ROOT");
        snprintf(rp, sizeof(rp), "%s/tests/reference/golden/clip/%s_tiny_raw_m2.bin",
                 root ? root : ".", which ? "sd2" : "sd1");
        FILE *f = fopen(rp, "rb");
        float *raw = malloc((size_t)nh * sizeof(float));
        size_t got = f ? fread(raw, sizeof(float), (size_t)nh + 1, f) : 0;
        if (f)
            fclose(f);
        CHECK(got == (size_t)nh);
        vkf_tensor *hr = NULL, *hl = NULL;
        CHECK_OK(vkf_clip_text_encode_ex(m, &t, -2, false, &hr, NULL));
        CHECK_OK(vkf_clip_text_encode_ex(m, &t, 0, false, &hl, NULL));
        if (hr && hl && got == (size_t)nh) {
            float *r = gt_download(hr), *l = gt_download(hl);
            double er = rel_err(r, raw, nh);
            printf("%s: rel err raw hidden(-2) %.2e (tol %.0e)\n", what, er, tol);
            CHECK(er <= tol);
            CHECK(rel_err(r, g + nh, nh) > 0.1);   /* not the normed one */
            CHECK(!memcmp(l, h0, (size_t)nh * sizeof(float)));
            free(r);
            free(l);
        }
        vkf_tensor_unref(&hr);
        vkf_tensor_unref(&hl);
        free(raw);
    }
    free(h0);
    free(h2);
    free(pooled);
    free(g);
    free_tokens(&t);
    vkf_clip_text_destroy(&m);
}

/* layer_idx semantics and the early stop, on the f32 tiny model. */
static void check_layers(vkf_gpu *gpu, int which, const char *path)
{
    vkf_weights *w = NULL;
    vkf_clip_text *m = NULL;
    vkf_errbuf e = {{0}};
    vkf_clip_tokens t;
    if (open_weights(path, &w) < 0 || vkf_clip_text_load(gpu, w, PREFIX[which], &m, &e) < 0) {
        fprintf(stderr, "check_layers: %s\n", e.msg);
        gt_failures++;
        vkf_weights_close(&w);
        return;
    }
    const vkf_clip_text_config *c = vkf_clip_text_get_config(m);
    CHECK(c->kind == (which ? VKF_CLIP_OPEN_H : VKF_CLIP_L));
    CHECK(c->width == W && c->heads == 1 && c->layers == 2 && c->n_ctx == CTX);
    CHECK(c->vocab == VKF_CLIP_VOCAB);
    CHECK(c->proj_dim == (which ? W : 0));
    CHECK(c->quick_gelu == !which);

    make_tokens(which, &t);
    const int64_t nh = NCH * CTX * W;
    float *p0 = NULL, *p1 = NULL, *p2 = NULL;
    float *h0 = encode(m, &t, 0, true, &p0);
    float *h1 = encode(m, &t, -1, true, &p1);
    float *hbig = encode(m, &t, -7, false, NULL);
    float *h2p = encode(m, &t, -2, true, &p2);
    float *h2 = encode(m, &t, -2, false, NULL);
    if (h0 && h1 && hbig && h2p && h2 && p0 && p1 && p2) {
        CHECK(!memcmp(h0, h1, nh * sizeof(float)));
        CHECK(!memcmp(h0, hbig, nh * sizeof(float)));
        CHECK(!memcmp(h2, h2p, nh * sizeof(float)));
        CHECK(!memcmp(p0, p1, NCH * W * sizeof(float)));
        CHECK(!memcmp(p0, p2, NCH * W * sizeof(float)));  /* pooled is always the last layer */
        if (!which) {
            /* no projection: pooled = final-LN hidden at the EOS rows 11 and 76 */
            CHECK(!memcmp(p0, h0 + 11 * W, W * sizeof(float)));
            CHECK(!memcmp(p0 + W, h0 + (CTX + 76) * W, W * sizeof(float)));
        }
        /* causal: chunk 0 rows before the padding do not see it; a copy of
         * chunk 0 with different padding gives the same first 12 rows */
        vkf_clip_tokens t2 = t;
        t2.n_chunks = 1;
        t2.tok = malloc(CTX * sizeof(*t2.tok));
        memcpy(t2.tok, t.tok, CTX * sizeof(*t2.tok));
        for (int i = 12; i < CTX; i++)
            t2.tok[i].id = 7;
        float *h3 = encode(m, &t2, 0, false, NULL);
        if (h3) {
            CHECK(rel_err(h3, h0, 12 * W) < 1e-6);
            CHECK(rel_err(h3 + 12 * W, h0 + 12 * W, (CTX - 12) * W) > 1e-3);
        }
        free(h3);
        free(t2.tok);
    }
    free(h0), free(h1), free(hbig), free(h2p), free(h2), free(p0), free(p1), free(p2);

    /* bad ids */
    vkf_tensor *h = NULL;
    t.tok[3].id = VKF_CLIP_VOCAB;
    CHECK(vkf_clip_text_encode(m, &t, 0, &h, NULL) == VKF_EINVAL && !h);
    t.tok[3].id = -3;  /* only two embedding rows */
    CHECK(vkf_clip_text_encode(m, &t, 0, &h, NULL) == VKF_EINVAL && !h);
    t.tok[3].id = -1;
    t.embed_dim = 768;
    CHECK(vkf_clip_text_encode(m, &t, 0, &h, NULL) == VKF_EINVAL && !h);
    t.embed_dim = W;
    CHECK(vkf_clip_text_encode(m, &t, 1, &h, NULL) == VKF_EINVAL && !h);
    free_tokens(&t);
    vkf_clip_text_destroy(&m);
    vkf_weights_close(&w);
}

/* HF text_projection.weight is a Linear weight: pooled = P · v. */
#define PROJ_NAME "cond_stage_model.transformer.text_projection.weight"
static void check_hf_projection(vkf_gpu *gpu, const char *dir, const char *plain_path)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/clip_sd1_proj.safetensors", dir);
    vkf_st_writer *sw = NULL;
    vkf_errbuf e = {{0}};
    CHECK_OK(vkf_st_writer_create(SEED, &sw));
    /* same names and seed as the plain file, so the same tower */
    CHECK_OK(vkf_synth_clip_text(sw, PREFIX[0], VKF_SYNTH_SD15, VKF_SYNTH_TINY, VKF_WDT_F32));
    CHECK_OK(vkf_st_writer_add_random(sw, PROJ_NAME, VKF_WDT_F32, 2,
                                      (const int64_t[]){32, W}, 0.0f, 0.2f));
    CHECK_OK(vkf_st_writer_save(sw, path, &e));
    vkf_st_writer_destroy(&sw);

    vkf_weights *w = NULL, *w0 = NULL;
    vkf_clip_text *m = NULL, *m0 = NULL;
    CHECK_OK(open_weights(path, &w));
    CHECK_OK(open_weights(plain_path, &w0));
    CHECK_OK(vkf_clip_text_load(gpu, w, PREFIX[0], &m, &e));
    /* the HF layout without the text_model. level (old SD1 files) */
    CHECK_OK(vkf_clip_text_load(gpu, w0, "cond_stage_model.transformer.text_model.", &m0, &e));
    CHECK(vkf_clip_text_get_config(m)->proj_dim == 32);
    CHECK(vkf_clip_text_get_config(m0)->proj_dim == 0);
    vkf_clip_tokens t;
    make_tokens(0, &t);
    vkf_tensor *h = NULL, *p = NULL;
    float *pooled0 = NULL;
    float *h0 = encode(m0, &t, 0, true, &pooled0);
    CHECK_OK(vkf_clip_text_encode(m, &t, 0, &h, &p));
    CHECK(vkf_tensor_shape(p)[0] == NCH && vkf_tensor_shape(p)[1] == 32);
    float *hd = gt_download(h), *pd = gt_download(p);
    float proj[32 * W], want[NCH * 32];
    CHECK_OK(vkf_weights_to_f32(w, vkf_weights_find(w, PROJ_NAME), proj));
    for (int b = 0; b < NCH; b++)
        for (int o = 0; o < 32; o++) {
            double s = 0;
            for (int k = 0; k < W; k++)
                s += (double)proj[o * W + k] * pooled0[b * W + k];
            want[b * 32 + o] = (float)s;
        }
    double err = rel_err(pd, want, NCH * 32);
    printf("HF text_projection: rel err %.2e\n", err);
    CHECK(err < 1e-5);
    CHECK(h0 && !memcmp(hd, h0, NCH * CTX * W * sizeof(float)));
    free(hd), free(pd), free(h0), free(pooled0);
    vkf_tensor_unref(&h);
    vkf_tensor_unref(&p);
    free_tokens(&t);
    vkf_clip_text_destroy(&m);
    vkf_clip_text_destroy(&m0);
    vkf_weights_close(&w);
    vkf_weights_close(&w0);
    unlink(path);
}

/* Refusals name what they found. */
static void check_refusals(vkf_gpu *gpu, const char *dir, const char *sd1_path)
{
    char path[4096];
    vkf_weights *w = NULL;
    vkf_clip_text *m = NULL;
    vkf_errbuf e = {{0}};

    /* nothing CLIP-like under the prefix */
    CHECK_OK(open_weights(sd1_path, &w));
    CHECK(vkf_clip_text_load(gpu, w, "cond_stage_model.model.", &m, &e) == VKF_EUNSUPPORTED);
    CHECK(!m);
    CHECK(strstr(e.msg, "no tensors under 'cond_stage_model.model.'") != NULL);
    CHECK(vkf_clip_text_load(gpu, w, "cond_stage_model.", &m, &e) == VKF_EUNSUPPORTED);
    CHECK(strstr(e.msg, "found 'cond_stage_model.transformer.text_model.") != NULL);
    vkf_weights_close(&w);

    /* width not a multiple of 64; a tower with a missing tensor; a bad shape */
    const int64_t tok_shape[2] = {VKF_CLIP_VOCAB, 48};
    vkf_st_writer *sw = NULL;
    snprintf(path, sizeof(path), "%s/bad.safetensors", dir);
    CHECK_OK(vkf_st_writer_create(SEED, &sw));
    CHECK_OK(vkf_st_writer_add_const(sw, "a.token_embedding.weight", VKF_WDT_F16, 2, tok_shape, 0));
    CHECK_OK(vkf_st_writer_add_const(sw, "a.transformer.resblocks.0.attn.in_proj_weight",
                                     VKF_WDT_F16, 2, (const int64_t[]){144, 48}, 0));
    CHECK_OK(vkf_synth_clip_text(sw, "b.", VKF_SYNTH_SD2, VKF_SYNTH_TINY, VKF_WDT_F16));
    CHECK_OK(vkf_st_writer_save(sw, path, &e));
    vkf_st_writer_destroy(&sw);
    CHECK_OK(open_weights(path, &w));
    CHECK(vkf_clip_text_load(gpu, w, "a.", &m, &e) == VKF_EUNSUPPORTED);
    CHECK(strstr(e.msg, "'a.token_embedding.weight' has shape [49408, 48]") != NULL);
    /* b. is complete; loading under the prefix of one layer's keys fails */
    CHECK(vkf_clip_text_load(gpu, w, "b.transformer.", &m, &e) == VKF_EUNSUPPORTED);
    CHECK(strstr(e.msg, "found 'b.transformer.resblocks.0.") != NULL);
    vkf_weights_close(&w);

    /* a scaled-fp8 companion is refused, not ignored */
    snprintf(path, sizeof(path), "%s/scaled.safetensors", dir);
    CHECK_OK(vkf_st_writer_create(SEED, &sw));
    CHECK_OK(vkf_synth_clip_text(sw, "s.", VKF_SYNTH_SD2, VKF_SYNTH_TINY, VKF_WDT_F16));
    CHECK_OK(vkf_st_writer_add_const(sw, "s.transformer.resblocks.1.mlp.c_fc.scale_weight",
                                     VKF_WDT_F32, 1, (const int64_t[]){1}, 0.5f));
    CHECK_OK(vkf_st_writer_save(sw, path, &e));
    vkf_st_writer_destroy(&sw);
    CHECK_OK(open_weights(path, &w));
    CHECK(vkf_clip_text_load(gpu, w, "s.", &m, &e) == VKF_EUNSUPPORTED);
    CHECK(strstr(e.msg, "scaled fp8 weights ('s.transformer.resblocks.1.mlp.c_fc.scale_weight')"));
    vkf_weights_close(&w);
    unlink(path);

    /* c. with its q/k/v projections missing */
    snprintf(path, sizeof(path), "%s/bad2.safetensors", dir);
    CHECK_OK(vkf_st_writer_create(SEED, &sw));
    const char *keep[] = {"embeddings.token_embedding.weight",
                          "embeddings.position_embedding.weight"};
    for (int i = 0; i < 2; i++) {
        char n[256];
        snprintf(n, sizeof(n), "c.text_model.%s", keep[i]);
        CHECK_OK(vkf_st_writer_add_const(sw, n, VKF_WDT_F32, 2,
                                         (const int64_t[]){i ? CTX : VKF_CLIP_VOCAB, W}, 0));
    }
    CHECK_OK(vkf_st_writer_add_const(sw, "c.text_model.encoder.layers.0.mlp.fc1.weight",
                                     VKF_WDT_F32, 2, (const int64_t[]){256, W}, 0));
    CHECK_OK(vkf_st_writer_save(sw, path, &e));
    vkf_st_writer_destroy(&sw);
    CHECK_OK(open_weights(path, &w));
    CHECK(vkf_clip_text_load(gpu, w, "c.", &m, &e) == VKF_EUNSUPPORTED);
    CHECK(strstr(e.msg, "'c.text_model.encoder.layers.0.self_attn.q_proj.weight' is missing"));
    vkf_weights_close(&w);
    CHECK(!m);
    unlink(path);
    snprintf(path, sizeof(path), "%s/bad.safetensors", dir);
    unlink(path);
    printf("refusal message example: %s\n", e.msg);
}

/* Full-scale key sets (recorded, not written). */
static void check_full_synth(void)
{
    vkf_st_writer *sw = NULL;
    CHECK_OK(vkf_st_writer_create(SEED, &sw));
    CHECK_OK(vkf_synth_clip_text(sw, "cond_stage_model.transformer.", VKF_SYNTH_SD15,
                                 VKF_SYNTH_FULL, VKF_WDT_F16));
    CHECK(vkf_st_writer_count(sw) == 3 + 12 * 16 + 2);
    CHECK(vkf_st_writer_add_const(
              sw, "cond_stage_model.transformer.text_model.embeddings.position_ids",
              VKF_WDT_F16, 2, (const int64_t[]){1, 77}, 0) == VKF_EINVAL);
    /* a duplicate of a real key name is refused: the names are the real ones */
    CHECK(vkf_st_writer_add_const(
              sw, "cond_stage_model.transformer.text_model.encoder.layers.11.mlp.fc2.bias",
              VKF_WDT_F16, 1, (const int64_t[]){768}, 0) == VKF_EINVAL);
    CHECK(vkf_st_writer_add_const(
              sw, "cond_stage_model.transformer.text_model.encoder.layers.12.mlp.fc2.bias",
              VKF_WDT_F16, 1, (const int64_t[]){768}, 0) == 0);
    vkf_st_writer_destroy(&sw);
    CHECK_OK(vkf_st_writer_create(SEED, &sw));
    CHECK_OK(vkf_synth_clip_text(sw, "cond_stage_model.model.", VKF_SYNTH_SD2_V, VKF_SYNTH_FULL,
                                 VKF_WDT_F16));
    CHECK(vkf_st_writer_count(sw) == 2 + 24 * 12 + 3);
    CHECK(vkf_st_writer_add_const(sw, "cond_stage_model.model.transformer.resblocks.23.ln_2.bias",
                                  VKF_WDT_F16, 1, (const int64_t[]){1024}, 0) == VKF_EINVAL);
    CHECK(vkf_st_writer_add_const(sw, "cond_stage_model.model.text_projection", VKF_WDT_F16, 1,
                                  (const int64_t[]){1024}, 0) == VKF_EINVAL);
    CHECK(vkf_synth_clip_text(sw, "x.", (vkf_synth_arch)99, VKF_SYNTH_TINY, VKF_WDT_F16) ==
          VKF_EINVAL);
    vkf_st_writer_destroy(&sw);
}

/* A diffusers-style SD2 encoder: HF names, width 1024, 23 blocks (thin
 * MLPs and f16 to keep the file small).  layer_idx counts 24 blocks as
 * ComfyUI does: -2 is the last block present, -3 the one before. */
static void check_sd2_diffusers_layers(vkf_gpu *gpu, const char *dir)
{
    char path[4096], n[256];
    const int64_t D = 1024, M = 32;
    vkf_st_writer *sw = NULL;
    vkf_errbuf e = {{0}};
    snprintf(path, sizeof(path), "%s/te23.safetensors", dir);
    CHECK_OK(vkf_st_writer_create(SEED, &sw));
    CHECK_OK(vkf_st_writer_add_random(sw, "text_model.embeddings.token_embedding.weight",
                                      VKF_WDT_F16, 2, (const int64_t[]){VKF_CLIP_VOCAB, D}, 0,
                                      0.02f));
    CHECK_OK(vkf_st_writer_add_random(sw, "text_model.embeddings.position_embedding.weight",
                                      VKF_WDT_F16, 2, (const int64_t[]){CTX, D}, 0, 0.01f));
    CHECK_OK(vkf_st_writer_add_const(sw, "text_model.final_layer_norm.weight", VKF_WDT_F16, 1,
                                     (const int64_t[]){D}, 1));
    CHECK_OK(vkf_st_writer_add_const(sw, "text_model.final_layer_norm.bias", VKF_WDT_F16, 1,
                                     (const int64_t[]){D}, 0));
    static const char *const pr[4] = {"q_proj", "k_proj", "v_proj", "out_proj"};
    for (int i = 0; i < 23; i++) {
#define L_(s) (snprintf(n, sizeof(n), "text_model.encoder.layers.%d." s, i), n)
        for (int j = 0; j < 4; j++) {
            snprintf(n, sizeof(n), "text_model.encoder.layers.%d.self_attn.%s.weight", i, pr[j]);
            CHECK_OK(vkf_st_writer_add_random(sw, n, VKF_WDT_F16, 2, (const int64_t[]){D, D},
                                              0, 0.03f));
            snprintf(n, sizeof(n), "text_model.encoder.layers.%d.self_attn.%s.bias", i, pr[j]);
            CHECK_OK(vkf_st_writer_add_const(sw, n, VKF_WDT_F16, 1, (const int64_t[]){D}, 0));
        }
        CHECK_OK(vkf_st_writer_add_const(sw, L_("layer_norm1.weight"), VKF_WDT_F16, 1,
                                         (const int64_t[]){D}, 1));
        CHECK_OK(vkf_st_writer_add_const(sw, L_("layer_norm1.bias"), VKF_WDT_F16, 1,
                                         (const int64_t[]){D}, 0));
        CHECK_OK(vkf_st_writer_add_const(sw, L_("layer_norm2.weight"), VKF_WDT_F16, 1,
                                         (const int64_t[]){D}, 1));
        CHECK_OK(vkf_st_writer_add_const(sw, L_("layer_norm2.bias"), VKF_WDT_F16, 1,
                                         (const int64_t[]){D}, 0));
        CHECK_OK(vkf_st_writer_add_random(sw, L_("mlp.fc1.weight"), VKF_WDT_F16, 2,
                                          (const int64_t[]){M, D}, 0, 0.03f));
        CHECK_OK(vkf_st_writer_add_const(sw, L_("mlp.fc1.bias"), VKF_WDT_F16, 1,
                                         (const int64_t[]){M}, 0));
        CHECK_OK(vkf_st_writer_add_random(sw, L_("mlp.fc2.weight"), VKF_WDT_F16, 2,
                                          (const int64_t[]){D, M}, 0, 0.1f));
        CHECK_OK(vkf_st_writer_add_const(sw, L_("mlp.fc2.bias"), VKF_WDT_F16, 1,
                                         (const int64_t[]){D}, 0));
#undef L_
    }
    CHECK_OK(vkf_st_writer_save(sw, path, &e));
    vkf_st_writer_destroy(&sw);

    vkf_weights *w = NULL;
    vkf_clip_text *m = NULL;
    CHECK_OK(open_weights(path, &w));
    CHECK_OK(vkf_clip_text_load(gpu, w, "", &m, &e));
    vkf_weights_close(&w);
    unlink(path);
    const vkf_clip_text_config *c = vkf_clip_text_get_config(m);
    CHECK(c->kind == VKF_CLIP_OPEN_H && !c->quick_gelu && c->layers == 23 && c->heads == 16);
    vkf_clip_tokens t = {0};
    t.n_chunks = 1;
    t.tok = calloc(CTX, sizeof(*t.tok));
    for (int i = 0; i < CTX; i++)
        t.tok[i].id = i == 0 ? VKF_CLIP_BOS : i < 6 ? 400 + i : i == 6 ? VKF_CLIP_EOS : 0;
    /* pooled = final-LN(last block present)[EOS]: hidden(-2) must hold it
     * at the EOS row, hidden(-3) must not */
    vkf_tensor *h2 = NULL, *h3 = NULL, *p = NULL;
    CHECK_OK(vkf_clip_text_encode(m, &t, -2, &h2, NULL));
    CHECK_OK(vkf_clip_text_encode(m, &t, -3, &h3, &p));
    float *a = gt_download(h2), *b = gt_download(h3), *d = gt_download(p);
    double e2 = rel_err(a + 6 * D, d, D), e3 = rel_err(b + 6 * D, d, D);
    printf("23-block encoder: hidden(-2) vs pooled %.1e, hidden(-3) vs pooled %.1e\n", e2, e3);
    CHECK(e2 < 1e-5);
    CHECK(e3 > 1e-3);
    free(a), free(b), free(d), free(t.tok);
    vkf_tensor_unref(&h2);
    vkf_tensor_unref(&h3);
    vkf_tensor_unref(&p);
    vkf_clip_text_destroy(&m);
}

/* Fail every n-th host allocation of load + encode: each one returns an
 * error, leaves no block behind, and the first success is complete. */
static void check_alloc_failures(vkf_gpu *gpu, const char *path)
{
    vkf_weights *w = NULL;
    vkf_clip_tokens t;
    CHECK_OK(open_weights(path, &w));
    make_tokens(1, &t);
    long live0 = vkf_alloc_live(), c0 = vkf_alloc_count();
    /* warm the pipelines so the sweep does not depend on the cache */
    {
        vkf_clip_text *m = NULL;
        vkf_tensor *h = NULL, *p = NULL;
        CHECK_OK(vkf_clip_text_load(gpu, w, PREFIX[1], &m, NULL));
        long c1 = vkf_alloc_count();
        CHECK_OK(vkf_clip_text_encode(m, &t, -2, &h, &p));
        printf("allocations: load %ld, encode %ld\n", c1 - c0, vkf_alloc_count() - c1);
        vkf_tensor_unref(&h);
        vkf_tensor_unref(&p);
        vkf_clip_text_destroy(&m);
    }
    int fired = 0;
    for (long n = 0;; n++) {
        vkf_clip_text *m = NULL;
        vkf_tensor *h = NULL, *p = NULL;
        vkf_errbuf e = {{0}};
        vkf_alloc_fail_at(n);
        int err = vkf_clip_text_load(gpu, w, PREFIX[1], &m, &e);
        if (err >= 0)
            err = vkf_clip_text_encode(m, &t, -2, &h, &p);
        bool hit = vkf_alloc_failed();
        vkf_alloc_fail_at(-1);
        if (hit) {
            fired++;
            CHECK(err < 0 && !h && !p);
        } else {
            CHECK(err >= 0 && h && p);
        }
        vkf_tensor_unref(&h);
        vkf_tensor_unref(&p);
        vkf_clip_text_destroy(&m);
        CHECK_OK(vkf_gpu_flush(gpu));
        if (vkf_alloc_live() != live0) {
            fprintf(stderr, "alloc failure %ld: %ld blocks leaked\n", n, vkf_alloc_live() - live0);
            gt_failures++;
            break;
        }
        if (!hit)
            break;
    }
    printf("allocation failures injected: %d\n", fired);
    free_tokens(&t);
    vkf_weights_close(&w);
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "--write")) {
        char path[4096];
        for (int i = 0; i < 2; i++) {
            snprintf(path, sizeof(path), "%s/%s", argv[2], FILE_NAME[i]);
            if (write_tiny(i, VKF_WDT_F32, path) < 0)
                return 1;
            printf("%s\n", path);
        }
        return 0;
    }
    check_full_synth();

    vkf_gpu *gpu = gt_gpu_open((vkf_gpu_params){0});
    const char *tmp = getenv("TMPDIR");
    char dir[1024], path[2][4200], p16[4200];
    snprintf(dir, sizeof(dir), "%s/vkf_clip_XXXXXX", tmp && *tmp ? tmp : "/tmp");
    CHECK_OK(mkdtemp(dir) ? 0 : VKF_EIO);
    for (int i = 0; i < 2; i++) {
        snprintf(path[i], sizeof(path[i]), "%s/%s", dir, FILE_NAME[i]);
        CHECK_OK(write_tiny(i, VKF_WDT_F32, path[i]));
    }
    check_golden(gpu, 0, path[0], PREFIX[0], 1e-4, "SD1 f32");
    check_golden(gpu, 1, path[1], PREFIX[1], 1e-4, "SD2 f32");
    static const struct {
        vkf_wdtype dt;
        double tol;
        const char *name[2];
    } low[2] = {{VKF_WDT_F16, 1e-2, {"SD1 f16", "SD2 f16"}},
                {VKF_WDT_BF16, 4e-2, {"SD1 bf16", "SD2 bf16"}}};
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < 2; i++) {
            snprintf(p16, sizeof(p16), "%s/low.safetensors", dir);
            CHECK_OK(write_tiny(i, low[k].dt, p16));
            check_golden(gpu, i, p16, PREFIX[i], low[k].tol, low[k].name[i]);
            unlink(p16);
        }
    check_layers(gpu, 0, path[0]);
    check_layers(gpu, 1, path[1]);
    check_hf_projection(gpu, dir, path[0]);
    check_refusals(gpu, dir, path[0]);
    check_alloc_failures(gpu, path[1]);
    check_sd2_diffusers_layers(gpu, dir);
    for (int i = 0; i < 2; i++)
        unlink(path[i]);
    rmdir(dir);
    return gt_finish(&gpu);
}
