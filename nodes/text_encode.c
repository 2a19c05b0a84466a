/* CLIPTextEncode and CLIPSetLastLayer (ComfyUI nodes.py, comfy/sd1_clip.py):
 * weighted tokenization with textual-inversion embeddings from the
 * "embeddings" folder, the CLIP text model, and ClipTokenWeightEncoder's
 * weighting against the encoding of an empty chunk. */
#include <string.h>

#include "cond_latent.h"
#include "nodes.h"
#include "vkflow/models.h"
#include "vkflow/paths.h"
#include "vkflow/weights.h"

void vkf_clip_apply_weights(float *z, int n_chunks, int dim, const float *weights,
                            const float *z_empty)
{
    for (int k = 0; k < n_chunks; k++) {
        for (int j = 0; j < VKF_CLIP_CTX; j++) {
            float w = weights[k * VKF_CLIP_CTX + j];
            if (w == 1.0f)
                continue;
            float *row = z + ((size_t)k * VKF_CLIP_CTX + (size_t)j) * (size_t)dim;
            const float *e = z_empty + (size_t)j * (size_t)dim;
            for (int d = 0; d < dim; d++) {
                float v = row[d] - e[d];
                v = v * w;
                row[d] = v + e[d];
            }
        }
    }
}

/* ---- embeddings (comfy/sd1_clip.py load_embed) ---------------------------------- */

typedef struct embed_ctx {
    vkf_exec_ctx *ctx;
    const char *key;          /* "clip_l" / "clip_h": the entry of multi-encoder files */
} embed_ctx;

static int lookup_embedding(void *opaque, const char *name, int dim, float **vectors, int *n)
{
    embed_ctx *ec = opaque;
    const vkf_paths *paths = vkf_exec_paths(ec->ctx);
    const vkf_log *log = vkf_exec_log(ec->ctx);
    static const char *const exts[] = {"", ".safetensors", ".pt", ".bin"};
    char *path = NULL, **names = NULL;
    int count = 0;
    *vectors = NULL;
    *n = 0;
    /* The name as given, then with each extension, among the folder's
     * files (listing first keeps misses quiet). */
    int err = vkf_paths_list(paths, "embeddings", &names, &count);
    if (err == VKF_ENOMEM)
        return err;
    for (size_t i = 0; i < VKF_ARRAY_SIZE(exts) && !path && err >= 0; i++) {
        char *cand = vkf_asprintf("%s%s", name, exts[i]);
        if (!cand) {
            vkf_strv_free(&names, count);
            return VKF_ENOMEM;
        }
        for (int k = 0; k < count && !path; k++)
            if (!strcmp(names[k], cand) && vkf_paths_resolve(paths, "embeddings", cand, &path) < 0)
                path = NULL;
        vkf_free(cand);
    }
    vkf_strv_free(&names, count);
    if (!path)
        return VKF_ENOTFOUND;
    vkf_weights *w = NULL;
    float *data = NULL;
    err = vkf_weights_open(path, &w, log);
    if (err < 0) {
        vkf_logf(log, VKF_LOG_WARN, "error loading embedding, skipping loading: %s", name);
        vkf_free(path);
        return err == VKF_ENOMEM ? err : VKF_ENOTFOUND;
    }
    /* A1111 'string_to_param' (as flattened names), the encoder's own key
     * (SDXL-style files), else the first tensor ('emb_params' ...). */
    const vkf_weight_info *t = NULL;
    int at = vkf_weights_find_prefix(w, "string_to_param.");
    if (at >= 0)
        t = vkf_weights_at(w, at);
    if (!t)
        t = vkf_weights_find(w, ec->key);
    if (!t && vkf_weights_count(w) > 0)
        t = vkf_weights_at(w, 0);
    if (!t || t->ndim < 1 || t->shape[t->ndim - 1] != dim || t->numel < dim) {
        vkf_logf(log, VKF_LOG_WARN,
                 "embedding:%s (%s): no tensor of width %d (nested A1111 .pt dictionaries are "
                 "not read), ignoring",
                 name, path, dim);
        err = VKF_ENOTFOUND;
        goto done;
    }
    if (!(data = vkf_malloc(sizeof(float) * (size_t)t->numel))) {
        err = VKF_ENOMEM;
        goto done;
    }
    if ((err = vkf_weights_to_f32(w, t, data)) < 0) {
        vkf_free(data);
        vkf_logf(log, VKF_LOG_WARN, "error loading embedding, skipping loading: %s", name);
        err = err == VKF_ENOMEM ? err : VKF_ENOTFOUND;
        goto done;
    }
    *vectors = data;
    *n = (int)(t->numel / dim);
    err = 0;
done:
    vkf_weights_close(&w);
    vkf_free(path);
    return err;
}

/* ---- CLIPTextEncode -------------------------------------------------------------- */

static int clip_invalid(vkf_exec_ctx *ctx)
{
    return vkf_exec_error(ctx,
                          "ERROR: clip input is invalid: None\n\nIf the clip is from a "
                          "checkpoint loader node your checkpoint does not contain a valid "
                          "clip or text encoder model.");
}

/* One tower's weighted tokens (its own padding and embedding key). */
static int tokenize_for(vkf_exec_ctx *ctx, const vkf_clip *clip, vkf_clip_text *model,
                        bool pad_with_end, const char *text, vkf_clip_tokens *tok)
{
    const vkf_clip_text_config *cfg = vkf_clip_text_get_config(model);
    embed_ctx ec = {ctx, cfg->kind == VKF_CLIP_L ? "clip_l" : clip->sdxl ? "clip_g" : "clip_h"};
    vkf_clip_tokenize_params tp = {
        .pad_with_end = pad_with_end, .embed_dim = cfg->width,
        .lookup = lookup_embedding, .opaque = &ec, .log = vkf_exec_log(ctx),
    };
    int err = vkf_clip_tokenize_weighted(clip->tok, text, &tp, tok);
    if (err < 0 && err != VKF_ENOMEM)
        err = vkf_exec_error(ctx, "CLIPTextEncode: tokenizing failed: %s", vkf_strerror(err));
    return err;
}

/* Appends empty-prompt chunks ([BOS, EOS, pad ...], weight 1) up to n
 * (CLIPTextEncodeSDXL evens out the two towers' chunk counts so). */
static int pad_chunks(vkf_clip_tokens *t, int n, bool pad_with_end)
{
    if (t->n_chunks >= n)
        return 0;
    vkf_clip_token *nt = vkf_realloc(t->tok, sizeof(*nt) * (size_t)n * VKF_CLIP_CTX);
    if (!nt)
        return VKF_ENOMEM;
    t->tok = nt;
    for (int k = t->n_chunks; k < n; k++)
        for (int j = 0; j < VKF_CLIP_CTX; j++)
            nt[k * VKF_CLIP_CTX + j] = (vkf_clip_token){
                j == 0 ? VKF_CLIP_BOS : j == 1 || pad_with_end ? VKF_CLIP_EOS : 0, 1.0f};
    t->n_chunks = n;
    return 0;
}

/* ClipTokenWeightEncoder.encode_token_weights for one tower: cond
 * [1, 77·n, D] with the prompt weights applied, pooled [1, P] of the first
 * chunk (NULL if pooled_out is NULL). */
static int encode_tokens(vkf_exec_ctx *ctx, const vkf_clip *clip, vkf_clip_text *model,
                         const vkf_clip_tokens *tok, bool pad_with_end, vkf_tensor **cond_out,
                         vkf_tensor **pooled_out)
{
    const vkf_clip_text_config *cfg = vkf_clip_text_get_config(model);
    vkf_clip_tokens all;
    vkf_clip_token *tokbuf = NULL;
    vkf_tensor *hidden = NULL, *pooled = NULL, *cond = NULL, *p1 = NULL;
    float *host = NULL, *weights = NULL;
    int err = 0;
    int n = tok->n_chunks, D = cfg->width;
    bool has_weights = false;
    for (int i = 0; i < n * VKF_CLIP_CTX; i++)
        has_weights |= tok->tok[i].weight != 1.0f;
    /* With weights, one more chunk: the empty prompt [BOS, EOS, pad ...]. */
    all = *tok;
    if (has_weights) {
        VKF_CHECK_ALLOC(tokbuf = vkf_malloc(sizeof(*tokbuf) * (size_t)(n + 1) * VKF_CLIP_CTX));
        memcpy(tokbuf, tok->tok, sizeof(*tokbuf) * (size_t)n * VKF_CLIP_CTX);
        vkf_clip_token *e = tokbuf + (size_t)n * VKF_CLIP_CTX;
        for (int j = 0; j < VKF_CLIP_CTX; j++)
            e[j] = (vkf_clip_token){j == 0 ? VKF_CLIP_BOS
                                           : j == 1 || pad_with_end ? VKF_CLIP_EOS : 0,
                                    1.0f};
        all.tok = tokbuf;
        all.n_chunks = n + 1;
    }
    /* (-k beyond the model's depth is the last layer: the encoder's rule) */
    int layer = clip->layer_idx ? clip->layer_idx : clip->default_layer_idx;
    if ((err = vkf_clip_text_encode_ex(model, &all, layer, !clip->sdxl, &hidden,
                                       pooled_out ? &pooled : NULL)) < 0) {
        err = err == VKF_ENOMEM ? err
                                : vkf_exec_error(ctx, "CLIPTextEncode: text encoder failed: %s",
                                                 vkf_strerror(err));
        goto fail;
    }
    vkf_gpu *gpu;
    VKF_TRY(vkf_exec_gpu(ctx, &gpu));
    int64_t cshape[3] = {1, (int64_t)n * VKF_CLIP_CTX, D};
    if (has_weights) {
        size_t nz = (size_t)(n + 1) * VKF_CLIP_CTX * (size_t)D;
        VKF_CHECK_ALLOC(host = vkf_malloc(sizeof(float) * nz));
        VKF_CHECK_ALLOC(weights = vkf_malloc(sizeof(float) * (size_t)n * VKF_CLIP_CTX));
        VKF_TRY(vkf_tensor_download(hidden, host));
        for (int i = 0; i < n * VKF_CLIP_CTX; i++)
            weights[i] = tok->tok[i].weight;
        vkf_clip_apply_weights(host, n, D, weights, host + (size_t)n * VKF_CLIP_CTX * (size_t)D);
        VKF_TRY(vkf_tensor_create(gpu, VKF_DTYPE_F32, 3, cshape, &cond));
        VKF_TRY(vkf_tensor_upload(cond, host));
    } else {
        vkf_tensor *hc = NULL;
        VKF_TRY(vkf_op_contiguous(gpu, hidden, &hc));
        err = vkf_tensor_reshape(hc, 3, cshape, &cond);
        vkf_tensor_unref(&hc);
        if (err < 0)
            goto fail;
    }
    if (pooled) {
        VKF_TRY(vkf_tensor_slice(pooled, 0, 0, 1, &p1));
        VKF_TRY(vkf_op_contiguous(gpu, p1, pooled_out));
    }
    *cond_out = cond;
    cond = NULL;
fail:
    vkf_free(host);
    vkf_free(weights);
    vkf_free(tokbuf);
    vkf_tensor_unref(&hidden);
    vkf_tensor_unref(&pooled);
    vkf_tensor_unref(&cond);
    vkf_tensor_unref(&p1);
    return err;
}

/* The prompt through every tower of clip: text_first for clip->text,
 * text_g for SDXL's bigG (clip->text_g).  SDXLClipModel: chunk counts
 * evened out with empty chunks, [l, g] concatenated on the channel axis,
 * pooled from bigG. */
static int encode_prompt(vkf_exec_ctx *ctx, const vkf_clip *clip, const char *text_first,
                         const char *text_g, vkf_tensor **cond, vkf_tensor **pooled)
{
    vkf_clip_tokens tl = {0}, tg = {0};
    vkf_tensor *cl = NULL, *cg = NULL, *pl = NULL;
    int err = 0;
    *cond = *pooled = NULL;
    if (!clip || !clip->tok || !clip->text)
        return clip_invalid(ctx);
    VKF_TRY(tokenize_for(ctx, clip, clip->text, clip->pad_with_end, text_first, &tl));
    if (!clip->text_g) {
        err = encode_tokens(ctx, clip, clip->text, &tl, clip->pad_with_end, cond, pooled);
        goto fail;
    }
    VKF_TRY(tokenize_for(ctx, clip, clip->text_g, false, text_g, &tg));
    int nc = tl.n_chunks > tg.n_chunks ? tl.n_chunks : tg.n_chunks;
    VKF_TRY(pad_chunks(&tl, nc, clip->pad_with_end));
    VKF_TRY(pad_chunks(&tg, nc, false));
    VKF_TRY(encode_tokens(ctx, clip, clip->text, &tl, clip->pad_with_end, &cl, NULL));
    VKF_TRY(encode_tokens(ctx, clip, clip->text_g, &tg, false, &cg, pooled));
    vkf_gpu *gpu;
    VKF_TRY(vkf_exec_gpu(ctx, &gpu));
    vkf_tensor *pair[2] = {cl, cg};
    VKF_TRY(vkf_op_concat(gpu, pair, 2, 2, cond));
fail:
    if (err < 0)
        vkf_tensor_unref(pooled);
    vkf_clip_tokens_free(&tl);
    vkf_clip_tokens_free(&tg);
    vkf_tensor_unref(&cl);
    vkf_tensor_unref(&cg);
    vkf_tensor_unref(&pl);
    return err;
}

static int text_encode(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    const char *text = in[0].u.s;
    vkf_clip *clip = vkf_value_clip(&in[1]);
    vkf_tensor *cond = NULL, *pooled = NULL;
    int err = encode_prompt(ctx, clip, text, text, &cond, &pooled);
    if (err < 0)
        return err;
    vkf_conditioning *c = vkf_conditioning_new(1);
    if (!c) {
        vkf_tensor_unref(&cond);
        vkf_tensor_unref(&pooled);
        return VKF_ENOMEM;
    }
    c->e[0].cond = cond;
    c->e[0].pooled = pooled;
    vkf_value_set_object(&out[0], &c->obj);
    return 0;
}

static const vkf_input_def encode_inputs[] = {
    {.name = "text", .type = VKF_T_STRING, .flags = VKF_IN_MULTILINE | VKF_IN_DYNAMIC_PROMPTS,
     .tooltip = "The text to be encoded."},
    {.name = "clip", .type = "CLIP", .tooltip = "The CLIP model used for encoding the text."},
};
static const vkf_output_def encode_outputs[] = {
    {.type = "CONDITIONING",
     .tooltip = "A conditioning containing the embedded text used to guide the diffusion model."},
};

const vkf_node_def vkf_node_CLIPTextEncode = {
    .name = "CLIPTextEncode",
    .display_name = "CLIP Text Encode (Prompt)",
    .category = "conditioning",
    .description = "Encodes a text prompt using a CLIP model into an embedding that can be used "
                   "to guide the diffusion model towards generating specific images.",
    .python_module = "nodes",
    .inputs = encode_inputs, .nb_inputs = 2,
    .outputs = encode_outputs, .nb_outputs = 1,
    .execute = text_encode,
};

/* ---- CLIPSetLastLayer ------------------------------------------------------------- */

static int set_last_layer(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    vkf_clip *clip = vkf_value_clip(&in[0]);
    if (!clip)
        return vkf_exec_error(ctx, "CLIPSetLastLayer: clip is not a CLIP");
    vkf_clip *c = vkf_clip_clone(clip);
    if (!c)
        return VKF_ENOMEM;
    c->layer_idx = (int)in[1].u.i;
    vkf_value_set_object(&out[0], &c->obj);
    return 0;
}

static const vkf_input_def last_layer_inputs[] = {
    VKF_INPUT_LINK("clip", "CLIP"),
    VKF_INPUT_INT("stop_at_clip_layer", -1, -24, -1),
};
static const vkf_output_def clip_output[] = {{.type = "CLIP"}};

const vkf_node_def vkf_node_CLIPSetLastLayer = {
    .name = "CLIPSetLastLayer",
    .display_name = "CLIP Set Last Layer",
    .category = "conditioning",
    .python_module = "nodes",
    .inputs = last_layer_inputs, .nb_inputs = 2,
    .outputs = clip_output, .nb_outputs = 1,
    .execute = set_last_layer,
};

/* ---- CLIPTextEncodeSDXL / CLIPTextEncodeSDXLRefiner (comfy_extras/nodes_clip_sdxl.py) ---- */

static int text_encode_sdxl(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    vkf_clip *clip = vkf_value_clip(&in[0]);
    vkf_tensor *cond = NULL, *pooled = NULL;
    /* tokens "g" from text_g, "l" from text_l */
    int err = encode_prompt(ctx, clip, in[8].u.s, in[7].u.s, &cond, &pooled);
    if (err < 0)
        return err;
    vkf_conditioning *c = vkf_conditioning_new(1);
    if (!c) {
        vkf_tensor_unref(&cond);
        vkf_tensor_unref(&pooled);
        return VKF_ENOMEM;
    }
    vkf_cond_entry *e = &c->e[0];
    e->cond = cond;
    e->pooled = pooled;
    e->width = (int)in[1].u.i;
    e->height = (int)in[2].u.i;
    e->crop_w = (int)in[3].u.i;
    e->crop_h = (int)in[4].u.i;
    e->target_width = (int)in[5].u.i;
    e->target_height = (int)in[6].u.i;
    vkf_value_set_object(&out[0], &c->obj);
    return 0;
}

static const vkf_input_def sdxl_inputs[] = {
    VKF_INPUT_LINK("clip", "CLIP"),
    VKF_INPUT_INT("width", 1024, 0, 16384),
    VKF_INPUT_INT("height", 1024, 0, 16384),
    VKF_INPUT_INT("crop_w", 0, 0, 16384),
    VKF_INPUT_INT("crop_h", 0, 0, 16384),
    VKF_INPUT_INT("target_width", 1024, 0, 16384),
    VKF_INPUT_INT("target_height", 1024, 0, 16384),
    {.name = "text_g", .type = VKF_T_STRING, .flags = VKF_IN_MULTILINE | VKF_IN_DYNAMIC_PROMPTS},
    {.name = "text_l", .type = VKF_T_STRING, .flags = VKF_IN_MULTILINE | VKF_IN_DYNAMIC_PROMPTS},
};

const vkf_node_def vkf_node_CLIPTextEncodeSDXL = {
    .name = "CLIPTextEncodeSDXL",
    .category = "advanced/conditioning",
    .python_module = "comfy_extras.nodes_clip_sdxl",
    .inputs = sdxl_inputs, .nb_inputs = 9,
    .outputs = encode_outputs, .nb_outputs = 1,
    .execute = text_encode_sdxl,
};

static int text_encode_sdxl_refiner(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    vkf_clip *clip = vkf_value_clip(&in[4]);
    vkf_tensor *cond = NULL, *pooled = NULL;
    int err = encode_prompt(ctx, clip, in[3].u.s, in[3].u.s, &cond, &pooled);
    if (err < 0)
        return err;
    vkf_conditioning *c = vkf_conditioning_new(1);
    if (!c) {
        vkf_tensor_unref(&cond);
        vkf_tensor_unref(&pooled);
        return VKF_ENOMEM;
    }
    vkf_cond_entry *e = &c->e[0];
    e->cond = cond;
    e->pooled = pooled;
    e->has_aesthetic_score = true;
    e->aesthetic_score = (float)in[0].u.f;
    e->width = (int)in[1].u.i;
    e->height = (int)in[2].u.i;
    vkf_value_set_object(&out[0], &c->obj);
    return 0;
}

static const vkf_input_def sdxl_refiner_inputs[] = {
    VKF_INPUT_FLOAT("ascore", 6.0, 0.0, 1000.0, 0.01),
    VKF_INPUT_INT("width", 1024, 64, 16384),
    VKF_INPUT_INT("height", 1024, 64, 16384),
    {.name = "text", .type = VKF_T_STRING, .flags = VKF_IN_MULTILINE | VKF_IN_DYNAMIC_PROMPTS},
    VKF_INPUT_LINK("clip", "CLIP"),
};

const vkf_node_def vkf_node_CLIPTextEncodeSDXLRefiner = {
    .name = "CLIPTextEncodeSDXLRefiner",
    .category = "advanced/conditioning",
    .python_module = "comfy_extras.nodes_clip_sdxl",
    .inputs = sdxl_refiner_inputs, .nb_inputs = 5,
    .outputs = encode_outputs, .nb_outputs = 1,
    .execute = text_encode_sdxl_refiner,
};
