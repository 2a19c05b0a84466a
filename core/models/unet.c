/*
 * SD1.x / SD2.x UNet (ldm openaimodel UNetModel with SpatialTransformer),
 * loaded from CompVis names ("model.diffusion_model.input_blocks...") or a
 * diffusers unet/ folder, run with the ops of vkflow/gpu.h.
 *
 * Weights keep their storage dtype on the device (f16 stays f16); f8 and
 * small integers widen to f16, everything else to f32.  Linear weights are
 * stored transposed, [K, N], because the [K, N] matmul kernel is the
 * faster one (docs/vulkan.md); 1x1-conv proj_in/proj_out (SD1) run as
 * those same token-major linears.  The emb_layers of every ResBlock are one
 * [4·mc, Σ cout] matrix: the whole time conditioning is one matmul per
 * forward, each ResBlock adds its column slice.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "models/unet_internal.h"

#define UNET_GN_GROUPS 32
#define UNET_GN_EPS 1e-5f         /* ResBlock and out GroupNorm */
#define UNET_ST_GN_EPS 1e-6f      /* SpatialTransformer.norm */
#define UNET_LN_EPS 1e-5f

/* ------------------------------------------------------------------------ */
/* key names                                                                 */

static const struct {
    const char *cv, *df;
} res_names[] = {
    {"in_layers.0.", "norm1."},       {"in_layers.2.", "conv1."},
    {"emb_layers.1.", "time_emb_proj."}, {"out_layers.0.", "norm2."},
    {"out_layers.3.", "conv2."},      {"skip_connection.", "conv_shortcut."},
};

static bool starts(const char *s, const char *p)
{
    return strncmp(s, p, strlen(p)) == 0;
}

static bool res_key(const char *rest, const char **df, const char **tail)
{
    for (size_t i = 0; i < VKF_ARRAY_SIZE(res_names); i++)
        if (starts(rest, res_names[i].cv)) {
            *df = res_names[i].df;
            *tail = rest + strlen(res_names[i].cv);
            return true;
        }
    return false;
}

static bool put(char *out, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static bool put(char *out, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, cap, fmt, ap);
    va_end(ap);
    return n >= 0 && (size_t)n < cap;
}

bool vkf_unet_key(const vkf_unet_layout *l, const char *key, char *out, size_t cap)
{
    const char *p = l->prefix;
    if (!l->diffusers)
        return put(out, cap, "%s%s", p, key);
    int n, s, pos = 0, g = l->nrb + 1;
    const char *df, *tail;
    if (starts(key, "time_embed.0."))
        return put(out, cap, "%stime_embedding.linear_1.%s", p, key + 13);
    if (starts(key, "time_embed.2."))
        return put(out, cap, "%stime_embedding.linear_2.%s", p, key + 13);
    if (starts(key, "out.0."))
        return put(out, cap, "%sconv_norm_out.%s", p, key + 6);
    if (starts(key, "out.2."))
        return put(out, cap, "%sconv_out.%s", p, key + 6);
    if (sscanf(key, "input_blocks.%d.%d.%n", &n, &s, &pos) == 2 && pos > 0 && n >= 0) {
        const char *rest = key + pos;
        if (n == 0)
            return s == 0 && put(out, cap, "%sconv_in.%s", p, rest);
        if (s == 0 && starts(rest, "op."))
            return n % g == 0 &&
                   put(out, cap, "%sdown_blocks.%d.downsamplers.0.conv.%s", p, n / g - 1, rest + 3);
        int i = (n - 1) / g, j = (n - 1) % g;
        if (j == l->nrb)
            return false;
        if (s == 0)
            return res_key(rest, &df, &tail) &&
                   put(out, cap, "%sdown_blocks.%d.resnets.%d.%s%s", p, i, j, df, tail);
        return s == 1 && put(out, cap, "%sdown_blocks.%d.attentions.%d.%s", p, i, j, rest);
    }
    if (sscanf(key, "middle_block.%d.%n", &s, &pos) == 1 && pos > 0) {
        const char *rest = key + pos;
        if (s == 1)
            return put(out, cap, "%smid_block.attentions.0.%s", p, rest);
        return (s == 0 || s == 2) && res_key(rest, &df, &tail) &&
               put(out, cap, "%smid_block.resnets.%d.%s%s", p, s / 2, df, tail);
    }
    if (sscanf(key, "output_blocks.%d.%d.%n", &n, &s, &pos) == 2 && pos > 0 && n >= 0) {
        const char *rest = key + pos;
        int i = n / g, j = n % g;
        if (s == 0)
            return res_key(rest, &df, &tail) &&
                   put(out, cap, "%sup_blocks.%d.resnets.%d.%s%s", p, i, j, df, tail);
        if (starts(rest, "conv."))
            return (s == 1 || s == 2) && j == l->nrb &&
                   put(out, cap, "%sup_blocks.%d.upsamplers.0.conv.%s", p, i, rest + 5);
        return s == 1 && put(out, cap, "%sup_blocks.%d.attentions.%d.%s", p, i, j, rest);
    }
    return false;
}

static const vkf_weight_info *ufind(const vkf_weights *w, const vkf_unet_layout *l,
                                    const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static const vkf_weight_info *ufind(const vkf_weights *w, const vkf_unet_layout *l,
                                    const char *fmt, ...)
{
    char key[256], name[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(key, sizeof(key), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(key) || !vkf_unet_key(l, key, name, sizeof(name)))
        return NULL;
    return vkf_weights_find(w, name);
}

/* Any tensor under "<prefix><what>." (e.g. "input_blocks.12."). */
static bool has_prefix(const vkf_weights *w, const char *prefix, const char *what, int idx)
{
    char p[512];
    if (!put(p, sizeof(p), "%s%s.%d.", prefix, what, idx))
        return false;
    return vkf_weights_find_prefix(w, p) >= 0;
}

/* ------------------------------------------------------------------------ */
/* detection                                                                 */

static void shape_str(const vkf_weight_info *t, char *buf, size_t cap)
{
    size_t n = 0;
    if (!t) {
        snprintf(buf, cap, "(missing)");
        return;
    }
    n += (size_t)snprintf(buf + n, cap - n, "[");
    for (int i = 0; i < t->ndim && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%lld", i ? ", " : "", (long long)t->shape[i]);
    if (n < cap)
        snprintf(buf + n, cap - n, "]");
}

static int transformer_depth(const vkf_weights *w, const vkf_unet_layout *l, const char *blk)
{
    int k = 0;
    while (ufind(w, l, "%s.transformer_blocks.%d.attn1.to_q.weight", blk, k))
        k++;
    return k;
}

int vkf_unet_detect(const vkf_weights *w, const char *prefix, vkf_unet_detected *out,
                    vkf_errbuf *e)
{
    memset(out, 0, sizeof(*out));
    if (!prefix)
        prefix = "";
    vkf_unet_layout *l = &out->layout;
    vkf_unet_config *c = &out->cfg;
    char sh[96], name[512];
    if (!put(l->prefix, sizeof(l->prefix), "%s", prefix))
        return vkf_errbuf_set(e, VKF_EINVAL, "UNet prefix \"%s\" is too long", prefix);

    /* Layout: CompVis names under prefix, else diffusers names under
     * prefix or under "unet." (a diffusers pipeline folder). */
    if (!ufind(w, l, "input_blocks.0.0.weight")) {
        const char *cands[2] = {prefix, "unet."};
        bool found = false;
        for (int i = 0; i < 2 && !found; i++) {
            snprintf(l->prefix, sizeof(l->prefix), "%s", cands[i]);
            put(name, sizeof(name), "%sconv_in.weight", l->prefix);
            const vkf_weight_info *ci = vkf_weights_find(w, name);
            put(name, sizeof(name), "%sdown_blocks.0.resnets.0.conv1.weight", l->prefix);
            if (ci && vkf_weights_find(w, name))
                found = true;
        }
        if (!found)
            return vkf_errbuf_set(e, VKF_EUNSUPPORTED,
                                  "no SD UNet found: neither %sinput_blocks.0.0.weight (CompVis "
                                  "names) nor conv_in.weight with down_blocks (diffusers names)",
                                  prefix);
        l->diffusers = true;
        while (true) {
            put(name, sizeof(name), "%sdown_blocks.0.resnets.%d.conv1.weight", l->prefix, l->nrb);
            if (!vkf_weights_find(w, name))
                break;
            l->nrb++;
        }
    }

    const vkf_weight_info *t = ufind(w, l, "input_blocks.0.0.weight");
    vkf_unet_key(l, "input_blocks.0.0.weight", name, sizeof(name));
    if (!t || t->ndim != 4 || t->shape[2] != 3 || t->shape[3] != 3) {
        shape_str(t, sh, sizeof(sh));
        return vkf_errbuf_set(e, VKF_EUNSUPPORTED, "UNet input conv %s has shape %s, expected "
                              "[C, in, 3, 3]", name, sh);
    }
    int64_t mc = t->shape[0];
    c->model_channels = (int)mc;
    c->in_channels = (int)t->shape[1];

    /* ADM / class embeddings: SDXL, unCLIP, SD x4 upscaler. */
    const vkf_weight_info *adm = NULL;
    if (l->diffusers) {
        put(name, sizeof(name), "%sadd_embedding.linear_1.weight", l->prefix);
        adm = vkf_weights_find(w, name);
        if (!adm) {
            put(name, sizeof(name), "%sclass_embedding.linear_1.weight", l->prefix);
            adm = vkf_weights_find(w, name);
        }
    } else {
        put(name, sizeof(name), "%slabel_emb.0.0.weight", l->prefix);
        adm = vkf_weights_find(w, name);
    }
    if (adm && l->diffusers)
        return vkf_errbuf_set(e, VKF_EUNSUPPORTED,
                              "%s: diffusers UNets with a class/ADM embedding (%lld inputs, "
                              "SDXL or unCLIP class) are not supported; use the single file",
                              name, adm->ndim == 2 ? (long long)adm->shape[1] : -1LL);
    if (adm) {
        const vkf_weight_info *a2 = ufind(w, l, "label_emb.0.2.weight");
        if (adm->ndim != 2 || adm->shape[0] != 4 * mc || !a2 || a2->ndim != 2 ||
            a2->shape[0] != 4 * mc || a2->shape[1] != 4 * mc) {
            shape_str(adm, sh, sizeof(sh));
            return vkf_errbuf_set(e, VKF_EUNSUPPORTED, "%s has shape %s (and label_emb.0.2 "
                                  "%s): expected [%lld, adm] and [%lld, %lld]", name, sh,
                                  a2 ? "present" : "missing", (long long)(4 * mc),
                                  (long long)(4 * mc), (long long)(4 * mc));
        }
        c->adm_in_channels = (int)adm->shape[1];
    }
    if (mc < 32 || mc % UNET_GN_GROUPS)
        return vkf_errbuf_set(e, VKF_EUNSUPPORTED, "UNet model_channels %lld (%s) is not a "
                              "multiple of the 32 GroupNorm groups", (long long)mc, name);

    const vkf_weight_info *t0 = ufind(w, l, "time_embed.0.weight");
    const vkf_weight_info *t2 = ufind(w, l, "time_embed.2.weight");
    if (!t0 || !t2 || t0->ndim != 2 || t0->shape[0] != 4 * mc || t0->shape[1] != mc ||
        t2->ndim != 2 || t2->shape[0] != 4 * mc || t2->shape[1] != 4 * mc) {
        vkf_unet_key(l, "time_embed.0.weight", name, sizeof(name));
        return vkf_errbuf_set(e, VKF_EUNSUPPORTED, "UNet time embedding %s missing or not "
                              "[%lld, %lld] (model_channels %lld)", name, (long long)(4 * mc),
                              (long long)mc, (long long)mc);
    }

    /* Input blocks: ResBlocks (+ SpatialTransformer), a Downsample closes
     * a level. */
    int level = 0, nres[8] = {0}, depth = -1, ldepth[8] = {0};
    int n;
    bool ctx_found = false;
    for (n = 1;; n++) {
        const vkf_weight_info *op = ufind(w, l, "input_blocks.%d.0.op.weight", n);
        const vkf_weight_info *r = ufind(w, l, "input_blocks.%d.0.out_layers.3.weight", n);
        if (op) {
            if (nres[level] == 0)
                return vkf_errbuf_set(e, VKF_EUNSUPPORTED, "UNet input_blocks.%d: a Downsample "
                                      "with no ResBlock before it", n);
            if (++level >= 8)
                return vkf_errbuf_set(e, VKF_EUNSUPPORTED, "UNet has more than 8 levels");
            continue;
        }
        if (!r)
            break;
        if (r->ndim != 4 || r->shape[0] % mc) {
            shape_str(r, sh, sizeof(sh));
            return vkf_errbuf_set(e, VKF_EUNSUPPORTED, "UNet input_blocks.%d.0.out_layers.3."
                                  "weight has shape %s: not a multiple of model_channels %lld",
                                  n, sh, (long long)mc);
        }
        int m = (int)(r->shape[0] / mc);
        char blk[64];
        snprintf(blk, sizeof(blk), "input_blocks.%d.1", n);
        const vkf_weight_info *pin = ufind(w, l, "%s.proj_in.weight", blk);
        int d = pin ? transformer_depth(w, l, blk) : 0;
        if (level < 4) {
            if (nres[level] == 0) {
                c->channel_mult[level] = m;
                c->attn_level[level] = pin != NULL;
            } else if (c->channel_mult[level] != m || c->attn_level[level] != (pin != NULL)) {
                return vkf_errbuf_set(e, VKF_EUNSUPPORTED, "UNet input_blocks.%d differs from "
                                      "the other blocks of its level (width %lld, attention "
                                      "%s)", n, (long long)r->shape[0], pin ? "yes" : "no");
            }
        }
        nres[level]++;
        if (pin) {
            if (nres[level] > 1 && d != ldepth[level])
                return vkf_errbuf_set(e, VKF_EUNSUPPORTED, "UNet transformer depth %d in "
                                      "input_blocks.%d but %d in the block before it (same "
                                      "level)", d, n, ldepth[level]);
            ldepth[level] = d;
            if (depth >= 0 && d != depth)
                depth = 0;    /* differs between levels (SDXL) */
            else
                depth = d;
            if (!ctx_found) {
                const vkf_weight_info *k = ufind(w, l, "%s.transformer_blocks.0.attn2.to_k.weight",
                                                 blk);
                if (!k || k->ndim != 2)
                    return vkf_errbuf_set(e, VKF_EUNSUPPORTED, "UNet %s.transformer_blocks.0."
                                          "attn2.to_k.weight missing or not 2-D", blk);
                c->context_dim = (int)k->shape[1];
                c->use_linear_proj = pin->ndim == 2;
                ctx_found = true;
            }
        }
    }
    int n_in = n, levels = level + 1;
    if (!l->diffusers && has_prefix(w, l->prefix, "input_blocks", n_in))
        return vkf_errbuf_set(e, VKF_EUNSUPPORTED, "UNet %sinput_blocks.%d is neither a "
                              "ResBlock nor a Downsample", l->prefix, n_in);
    if (nres[level] == 0)
        return vkf_errbuf_set(e, VKF_EUNSUPPORTED, "UNet has no ResBlock after its last "
                              "Downsample (input_blocks.%d)", n_in - 1);
    for (int i = 1; i < levels; i++)
        if (nres[i] != nres[0])
            return vkf_errbuf_set(e, VKF_EUNSUPPORTED, "UNet level %d has %d ResBlocks, level "
                                  "0 has %d", i, nres[i], nres[0]);
    if (l->diffusers && nres[0] != l->nrb)
        return vkf_errbuf_set(e, VKF_EUNSUPPORTED, "diffusers UNet: down_blocks.0 has %d "
                              "resnets but the walk found %d", l->nrb, nres[0]);
    bool xl = c->adm_in_channels > 0;
    if (!xl && (levels != 4 || !c->attn_level[0] || !c->attn_level[1] || !c->attn_level[2] ||
                c->attn_level[3]))
        return vkf_errbuf_set(e, VKF_EUNSUPPORTED, "UNet has %d levels with attention at "
                              "levels %s%s%s%s; SD1.x/SD2.x have 4 levels with attention at "
                              "0, 1, 2 (other layouts are not supported)", levels,
                              c->attn_level[0] ? "0 " : "", levels > 1 && c->attn_level[1] ? "1 " : "",
                              levels > 2 && c->attn_level[2] ? "2 " : "",
                              levels > 3 && c->attn_level[3] ? "3" : "");
    if (xl && (levels < 2 || levels > 4 || depth < 0))
        return vkf_errbuf_set(e, VKF_EUNSUPPORTED, "UNet with label_emb (SDXL class) has %d "
                              "levels%s; SDXL has 3 (refiner 4) with attention", levels,
                              depth < 0 ? " and no attention" : "");
    if (!xl && depth != 1)
        return vkf_errbuf_set(e, VKF_EUNSUPPORTED, "UNet transformer depth %s; SD1.x/SD2.x "
                              "have 1 everywhere", depth == 0 ? "differs between levels" : "> 1");
    c->n_levels = levels;
    c->num_res_blocks = nres[0];
    c->transformer_depth = depth;
    for (int i = 0; i < levels && i < 4; i++)
        c->level_depth[i] = c->attn_level[i] ? ldepth[i] : 0;

    /* Middle: ResBlock, SpatialTransformer, ResBlock. */
    if (!ufind(w, l, "middle_block.0.out_layers.3.weight") ||
        !ufind(w, l, "middle_block.1.proj_in.weight") ||
        !ufind(w, l, "middle_block.2.out_layers.3.weight"))
        return vkf_errbuf_set(e, VKF_EUNSUPPORTED, "UNet middle block is not ResBlock + "
                              "SpatialTransformer + ResBlock (%smiddle_block.* incomplete)",
                              l->prefix);
    c->middle_depth = transformer_depth(w, l, "middle_block.1");
    if (c->middle_depth < 1 || (!xl && c->middle_depth != depth))
        return vkf_errbuf_set(e, VKF_EUNSUPPORTED, "UNet middle transformer depth %d, "
                              "expected %d", c->middle_depth, xl ? 1 : depth);
    /* output blocks: the depth of their level (ComfyUI's transformer_depth_output) */
    for (int lvl = 0, ob = levels * (nres[0] + 1) - 1; lvl < levels; lvl++)
        for (int j = 0; j <= nres[0]; j++, ob--) {
            char blk[64];
            snprintf(blk, sizeof(blk), "output_blocks.%d.1", ob);
            int want = c->attn_level[lvl] ? c->level_depth[lvl] : 0;
            int got = ufind(w, l, "%s.proj_in.weight", blk) ? transformer_depth(w, l, blk) : 0;
            if (got != want)
                return vkf_errbuf_set(e, VKF_EUNSUPPORTED, "UNet %s has transformer depth %d; "
                                      "level %d has %d", blk, got, lvl, want);
        }

    int n_out = levels * (c->num_res_blocks + 1);
    if (!ufind(w, l, "output_blocks.%d.0.out_layers.3.weight", n_out - 1) ||
        (!l->diffusers && has_prefix(w, l->prefix, "output_blocks", n_out)))
        return vkf_errbuf_set(e, VKF_EUNSUPPORTED, "UNet output blocks: expected exactly %d "
                              "(output_blocks.0-%d) for %d levels of %d ResBlocks", n_out,
                              n_out - 1, levels, c->num_res_blocks);

    const vkf_weight_info *o2 = ufind(w, l, "out.2.weight");
    if (!o2 || o2->ndim != 4) {
        vkf_unet_key(l, "out.2.weight", name, sizeof(name));
        return vkf_errbuf_set(e, VKF_EUNSUPPORTED, "UNet output conv %s missing or not 4-D",
                              name);
    }
    c->out_channels = (int)o2->shape[0];
    if (c->out_channels != 4)
        return vkf_errbuf_set(e, VKF_EUNSUPPORTED, "UNet has %d output channels; SD1.x/SD2.x "
                              "have 4", c->out_channels);
    if (c->in_channels != 4 && c->in_channels != 9)
        return vkf_errbuf_set(e, VKF_EUNSUPPORTED, "UNet has %d input channels: only 4 "
                              "(txt2img) and 9 (inpainting) are supported%s", c->in_channels,
                              c->in_channels == 8 ? " (8 is instruct-pix2pix)" : "");

    /* Family.  The real models differ by context_dim (768 / 1024); the
     * text tower in the same file decides for other sizes, and otherwise
     * (synthesized small models) the projection kind. */
    if (xl) {
        /* SDXL class (comfy/supported_models.py SDXL / SDXLRefiner): Linear
         * projections, 64-wide heads.  The refiner is told by its ADM width
         * (2560 = 1280 pooled + 5 x 256) or a bigG-only text tower. */
        if (!c->use_linear_proj)
            return vkf_errbuf_set(e, VKF_EUNSUPPORTED, "UNet with label_emb (%d inputs) has "
                                  "1x1 Conv2d proj_in; SDXL uses Linear", c->adm_in_channels);
        for (int i = 0; i < levels; i++)
            if (c->attn_level[i] && (mc * c->channel_mult[i]) % 64)
                return vkf_errbuf_set(e, VKF_EUNSUPPORTED, "UNet attention width %lld at "
                                      "level %d is not a multiple of the SDXL head width 64",
                                      (long long)(mc * c->channel_mult[i]), i);
        bool refiner = c->adm_in_channels == 2560 ||
                       (vkf_weights_find_prefix(w, "conditioner.embedders.0.model.") >= 0 &&
                        vkf_weights_find_prefix(w, "conditioner.embedders.1.") < 0);
        c->num_heads = 0;
        c->num_head_channels = 64;
        out->sd2 = false;
        out->xl = true;
        snprintf(out->arch, sizeof(out->arch), "%s", refiner ? "SDXL Refiner" : "SDXL");
        return 0;
    }
    bool openclip = vkf_weights_find_prefix(w, "cond_stage_model.model.") >= 0 ||
                    vkf_weights_find_prefix(w, "conditioner.embedders.0.model.") >= 0;
    bool clip_l = vkf_weights_find_prefix(w, "cond_stage_model.transformer.") >= 0;
    bool sd2;
    if (c->context_dim == 1024 || openclip)
        sd2 = true;
    else if (c->context_dim == 768 || clip_l)
        sd2 = false;
    else
        sd2 = c->use_linear_proj;
    if (sd2 != c->use_linear_proj)
        return vkf_errbuf_set(e, VKF_EUNSUPPORTED, "UNet with context_dim %d%s has %s "
                              "proj_in: %s uses %s; neither SD1.x nor SD2.x",
                              c->context_dim, openclip ? " and an OpenCLIP text tower" : "",
                              c->use_linear_proj ? "Linear" : "1x1 Conv2d",
                              sd2 ? "SD2.x" : "SD1.x", sd2 ? "Linear" : "1x1 Conv2d");
    for (int i = 0; i < levels; i++) {
        int64_t ch = mc * c->channel_mult[i];
        if (!c->attn_level[i])
            continue;
        if ((sd2 && ch % 64) || (!sd2 && ch % 8))
            return vkf_errbuf_set(e, VKF_EUNSUPPORTED, "UNet attention width %lld at level %d "
                                  "is not a multiple of %s", (long long)ch, i,
                                  sd2 ? "the SD2.x head width 64" : "the SD1.x 8 heads");
    }
    if (sd2) {
        c->num_heads = 0;
        c->num_head_channels = 64;
    } else {
        c->num_heads = 8;
        c->num_head_channels = 0;
    }
    c->adm_in_channels = 0;
    out->sd2 = sd2;
    snprintf(out->arch, sizeof(out->arch), "%s", sd2 ? "SD2.x" : "SD1.x");
    return 0;
}

int vkf_unet_infer_config(const vkf_weights *w, const char *prefix, vkf_unet_config *cfg,
                          vkf_errbuf *e)
{
    vkf_unet_detected d;
    int err = vkf_unet_detect(w, prefix, &d, e);
    if (err < 0)
        return err;
    *cfg = d.cfg;
    return 0;
}

int vkf_unet_detect_prediction(vkf_weights *w, const vkf_unet_detected *d,
                               vkf_prediction *out, vkf_errbuf *e)
{
    *out = VKF_PREDICTION_EPS;
    if (!d->sd2 || d->cfg.in_channels != 4)
        return 0;
    int last = d->cfg.n_levels * (d->cfg.num_res_blocks + 1) - 1;
    const vkf_weight_info *t =
        ufind(w, &d->layout, "output_blocks.%d.1.transformer_blocks.0.norm1.bias", last);
    if (!t)
        return vkf_errbuf_set(e, VKF_EUNSUPPORTED, "SD2.x UNet without output_blocks.%d.1."
                              "transformer_blocks.0.norm1.bias", last);
    float *v = vkf_malloc((size_t)t->numel * sizeof(float));
    if (!v)
        return VKF_ENOMEM;
    int err = vkf_weights_to_f32(w, t, v);
    if (err < 0) {
        vkf_free(v);
        return vkf_errbuf_set(e, err, "%s: cannot read the tensor", t->name);
    }
    double mean = 0, var = 0;
    for (int64_t i = 0; i < t->numel; i++)
        mean += v[i];
    mean /= (double)t->numel;
    for (int64_t i = 0; i < t->numel; i++)
        var += (v[i] - mean) * (v[i] - mean);
    vkf_free(v);
    /* torch.std(unbiased=False) of the stored dtype, compared in f32 */
    float sd = (float)sqrt(var / (double)t->numel);
    if (sd > (float)VKF_UNET_VPRED_STD)
        *out = VKF_PREDICTION_V;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* the model                                                                 */

typedef struct ulin {
    vkf_tensor *w, *b;        /* linear: w [K, N] (transposed); conv: [Co, Ci, kh, kw] */
} ulin;

typedef struct ures {
    int cin, cout;
    int64_t emb_off;          /* column of its emb_layers in the fused matrix */
    ulin n1, c1, n2, c2, skip;
} ures;

typedef struct utb {
    ulin n1, n2, n3, q1, k1, v1, o1, q2, k2, v2, o2, ff1, ff2;
} utb;

typedef struct ust {
    int c, heads;
    ulin norm, pin, pout;
    int depth;
    utb *tb;                  /* depth blocks */
} ust;

typedef struct ublock {
    ures *res;                /* NULL: conv_in or Downsample */
    ust *st;
    ulin conv;                /* conv_in, Downsample op (input), Upsample conv (output) */
} ublock;

typedef struct unet {
    vkf_diffusion_model base;
    vkf_unet_config cfg;
    int n_in, n_out;
    ulin time1, time2;
    ulin label1, label2;      /* label_emb.0.0 / .0.2 (adm_in_channels > 0) */
    ulin emb;                 /* fused emb_layers.1: [4mc, Σ cout] + [Σ cout] */
    int64_t emb_cols;
    ublock *in, *out;
    ures mid1, mid2;
    ust mid_st;
    ulin out_norm, out_conv;
} unet;

static int unet_forward(vkf_diffusion_model *dm, const vkf_dm_input *in, vkf_tensor **out);

static void ulin_free(ulin *l)
{
    vkf_tensor_unref(&l->w);
    vkf_tensor_unref(&l->b);
}

static void ures_free(ures *r)
{
    ulin_free(&r->n1);
    ulin_free(&r->c1);
    ulin_free(&r->n2);
    ulin_free(&r->c2);
    ulin_free(&r->skip);
}

static void ust_free(ust *s)
{
    ulin_free(&s->norm);
    ulin_free(&s->pin);
    ulin_free(&s->pout);
    for (int d = 0; s->tb && d < s->depth; d++) {
        ulin *t = &s->tb[d].n1;
        for (int i = 0; i < 13; i++)
            ulin_free(&t[i]);
    }
    vkf_free(s->tb);
    s->tb = NULL;
}

static void ublock_free(ublock *b)
{
    if (b->res) {
        ures_free(b->res);
        vkf_free(b->res);
    }
    if (b->st) {
        ust_free(b->st);
        vkf_free(b->st);
    }
    ulin_free(&b->conv);
}

static void unet_destroy(vkf_diffusion_model *dm)
{
    unet *m = (unet *)dm;
    ulin_free(&m->time1);
    ulin_free(&m->time2);
    ulin_free(&m->label1);
    ulin_free(&m->label2);
    ulin_free(&m->emb);
    for (int i = 0; m->in && i < m->n_in; i++)
        ublock_free(&m->in[i]);
    for (int i = 0; m->out && i < m->n_out; i++)
        ublock_free(&m->out[i]);
    vkf_free(m->in);
    vkf_free(m->out);
    ures_free(&m->mid1);
    ures_free(&m->mid2);
    ust_free(&m->mid_st);
    ulin_free(&m->out_norm);
    ulin_free(&m->out_conv);
    vkf_free(m);
}

/* ------------------------------------------------------------------------ */
/* loading                                                                   */

typedef struct ld {
    vkf_gpu *gpu;
    vkf_weights *w;
    const vkf_unet_layout *l;
    vkf_errbuf *e;
} ld;

static int ld_find(ld *L, const char *key, const vkf_weight_info **out)
{
    char name[512];
    *out = NULL;
    if (!vkf_unet_key(L->l, key, name, sizeof(name)))
        return vkf_errbuf_set(L->e, VKF_EUNSUPPORTED, "UNet key %s has no %s name", key,
                              L->l->diffusers ? "diffusers" : "file");
    *out = vkf_weights_find(L->w, name);
    if (!*out)
        return vkf_errbuf_set(L->e, VKF_EUNSUPPORTED, "UNet tensor %s is missing", name);
    return 0;
}

static int ld_check_numel(ld *L, const vkf_weight_info *t, int64_t numel, const char *what)
{
    if (t->numel == numel)
        return 0;
    char sh[96];
    shape_str(t, sh, sizeof(sh));
    return vkf_errbuf_set(L->e, VKF_EUNSUPPORTED, "UNet tensor %s has shape %s, expected %s "
                          "of %lld elements", t->name, sh, what, (long long)numel);
}

/* Device dtype of a file dtype (as vkf_weights_load_tensor widens). */
static vkf_dtype dev_dtype(vkf_wdtype d)
{
    switch (d) {
    case VKF_WDT_F16:
    case VKF_WDT_F8_E4M3:
    case VKF_WDT_F8_E5M2:
    case VKF_WDT_I8:
    case VKF_WDT_U8:
    case VKF_WDT_BOOL:
        return VKF_DTYPE_F16;
    case VKF_WDT_BF16:
        return VKF_DTYPE_BF16;
    default:
        return VKF_DTYPE_F32;
    }
}

/* numel elements of t in dtype dt (raw when it is t's own dtype). */
static int host_read(ld *L, const vkf_weight_info *t, vkf_dtype dt, void *dst)
{
    int err;
    if (dev_dtype(t->dtype) == dt && (t->dtype == VKF_WDT_F32 || t->dtype == VKF_WDT_F16 ||
                                      t->dtype == VKF_WDT_BF16)) {
        const void *src;
        size_t size;
        err = vkf_weights_data(L->w, t, &src, &size);
        if (err >= 0)
            memcpy(dst, src, size);
    } else if (dt == VKF_DTYPE_F16) {
        err = vkf_weights_to_f16(L->w, t, dst);
    } else if (dt == VKF_DTYPE_F32) {
        err = vkf_weights_to_f32(L->w, t, dst);
    } else {
        err = VKF_EINVAL;
    }
    if (err < 0)
        return vkf_errbuf_set(L->e, err, "UNet tensor %s: cannot read its data", t->name);
    return 0;
}

/* A tensor as stored (conv weights, norms, biases), reshaped to shape. */
static int ld_tensor(ld *L, const char *key, int ndim, const int64_t *shape, vkf_tensor **out)
{
    int err = 0;
    const vkf_weight_info *t;
    vkf_tensor *raw = NULL;
    int64_t numel = 1;
    for (int i = 0; i < ndim; i++)
        numel *= shape[i];
    char what[96];
    snprintf(what, sizeof(what), "%d-D", ndim);
    VKF_TRY(ld_find(L, key, &t));
    VKF_TRY(ld_check_numel(L, t, numel, what));
    if (t->ndim != ndim) {
        char sh[96];
        shape_str(t, sh, sizeof(sh));
        err = vkf_errbuf_set(L->e, VKF_EUNSUPPORTED, "UNet tensor %s has shape %s, expected "
                             "%d dims", t->name, sh, ndim);
        goto fail;
    }
    err = vkf_weights_load_tensor(L->w, t, L->gpu, &raw);
    if (err < 0) {
        vkf_errbuf_set(L->e, err, "UNet tensor %s: upload failed (%s)", t->name,
                       vkf_strerror(err));
        goto fail;
    }
    VKF_TRY(vkf_tensor_reshape(raw, ndim, shape, out));
fail:
    vkf_tensor_unref(&raw);
    return err;
}

/* dst[j, col + r] = src[r, j] for an [n, k] source into a [k, ntot]
 * destination, in 32x32 tiles. */
static void transpose_into(const void *src, void *dst, int64_t n, int64_t k, int64_t ntot,
                           int64_t col, size_t es)
{
    for (int64_t r0 = 0; r0 < n; r0 += 32)
        for (int64_t j0 = 0; j0 < k; j0 += 32) {
            int64_t r1 = r0 + 32 < n ? r0 + 32 : n, j1 = j0 + 32 < k ? j0 + 32 : k;
            if (es == 2) {
                const uint16_t *s = src;
                uint16_t *d = dst;
                for (int64_t r = r0; r < r1; r++)
                    for (int64_t j = j0; j < j1; j++)
                        d[j * ntot + col + r] = s[r * k + j];
            } else {
                const uint32_t *s = src;
                uint32_t *d = dst;
                for (int64_t r = r0; r < r1; r++)
                    for (int64_t j = j0; j < j1; j++)
                        d[j * ntot + col + r] = s[r * k + j];
            }
        }
}

static vkf_dtype common_dtype(const vkf_weight_info *const *ts, int n)
{
    vkf_dtype d = dev_dtype(ts[0]->dtype);
    for (int i = 1; i < n; i++)
        if (dev_dtype(ts[i]->dtype) != d)
            return VKF_DTYPE_F32;
    return d;
}

/*
 * Linear weights [N_i, K] of n tensors (or [N_i, K, 1, 1] 1x1 convs),
 * transposed and placed side by side: [K, Σ N_i].  Biases (optional,
 * [N_i]) concatenated.
 */
static int ld_linear_cat(ld *L, const char *const *wkeys, const char *const *bkeys, int n,
                         const int64_t *ns, int64_t k, ulin *out)
{
    int err = 0;
    const vkf_weight_info **wt = vkf_calloc((size_t)n, sizeof(*wt));
    const vkf_weight_info **bt = vkf_calloc((size_t)n, sizeof(*bt));
    void *src = NULL, *dst = NULL, *bias = NULL;
    int64_t ntot = 0, nmax = 0;
    VKF_CHECK_ALLOC(wt);
    VKF_CHECK_ALLOC(bt);
    for (int i = 0; i < n; i++) {
        VKF_TRY(ld_find(L, wkeys[i], &wt[i]));
        char what[64];
        snprintf(what, sizeof(what), "[%lld, %lld]", (long long)ns[i], (long long)k);
        if (wt[i]->numel != ns[i] * k || wt[i]->ndim < 2 || wt[i]->shape[0] != ns[i]) {
            char sh[96];
            shape_str(wt[i], sh, sizeof(sh));
            err = vkf_errbuf_set(L->e, VKF_EUNSUPPORTED, "UNet tensor %s has shape %s, "
                                 "expected %s", wt[i]->name, sh, what);
            goto fail;
        }
        if (bkeys) {
            VKF_TRY(ld_find(L, bkeys[i], &bt[i]));
            snprintf(what, sizeof(what), "[%lld]", (long long)ns[i]);
            VKF_TRY(ld_check_numel(L, bt[i], ns[i], what));
        }
        ntot += ns[i];
        if (ns[i] > nmax)
            nmax = ns[i];
    }
    vkf_dtype dt = common_dtype(wt, n);
    size_t es = vkf_dtype_size(dt);
    src = vkf_malloc((size_t)(nmax * k) * es);
    dst = vkf_malloc((size_t)(ntot * k) * es);
    VKF_CHECK_ALLOC(src);
    VKF_CHECK_ALLOC(dst);
    int64_t col = 0;
    for (int i = 0; i < n; i++) {
        VKF_TRY(host_read(L, wt[i], dt, src));
        transpose_into(src, dst, ns[i], k, ntot, col, es);
        col += ns[i];
    }
    VKF_TRY(vkf_tensor_create(L->gpu, dt, 2, (int64_t[]){k, ntot}, &out->w));
    VKF_TRY(vkf_tensor_upload_raw(out->w, dst, (size_t)(ntot * k) * es));
    if (bkeys) {
        vkf_dtype bd = common_dtype(bt, n);
        size_t bes = vkf_dtype_size(bd);
        bias = vkf_malloc((size_t)ntot * bes);
        VKF_CHECK_ALLOC(bias);
        col = 0;
        for (int i = 0; i < n; i++) {
            VKF_TRY(host_read(L, bt[i], bd, (uint8_t *)bias + (size_t)col * bes));
            col += ns[i];
        }
        VKF_TRY(vkf_tensor_create(L->gpu, bd, 1, (int64_t[]){ntot}, &out->b));
        VKF_TRY(vkf_tensor_upload_raw(out->b, bias, (size_t)ntot * bes));
    }
fail:
    if (err < 0 && L->e && !L->e->msg[0])
        vkf_errbuf_set(L->e, err, "UNet: loading %s failed (%s)", wkeys[0], vkf_strerror(err));
    vkf_free(wt);
    vkf_free(bt);
    vkf_free(src);
    vkf_free(dst);
    vkf_free(bias);
    return err;
}

static int ld_linear(ld *L, const char *base, int64_t n, int64_t k, bool has_bias, ulin *out)
{
    char wk[256], bk[256];
    put(wk, sizeof(wk), "%s.weight", base);
    put(bk, sizeof(bk), "%s.bias", base);
    const char *wkeys[1] = {wk}, *bkeys[1] = {bk};
    return ld_linear_cat(L, wkeys, has_bias ? bkeys : NULL, 1, &n, k, out);
}

static int ld_conv(ld *L, const char *base, int64_t co, int64_t ci, int ks, ulin *out)
{
    int err = 0;
    char key[256];
    put(key, sizeof(key), "%s.weight", base);
    VKF_TRY(ld_tensor(L, key, 4, (int64_t[]){co, ci, ks, ks}, &out->w));
    /* vkf_op_conv2d_prepack is not used here yet: it gains 1-3 % per UNet
     * forward on lavapipe and leaked under the allocation-failure sweep of
     * test_checkpoint (docs/performance.md). */
    put(key, sizeof(key), "%s.bias", base);
    VKF_TRY(ld_tensor(L, key, 1, (int64_t[]){co}, &out->b));
fail:
    return err;
}

static int ld_norm(ld *L, const char *base, int64_t c, ulin *out)
{
    int err = 0;
    char key[256];
    put(key, sizeof(key), "%s.weight", base);
    VKF_TRY(ld_tensor(L, key, 1, (int64_t[]){c}, &out->w));
    put(key, sizeof(key), "%s.bias", base);
    VKF_TRY(ld_tensor(L, key, 1, (int64_t[]){c}, &out->b));
fail:
    return err;
}

static int ld_res(ld *L, const char *base, int cin, int cout, ures *r)
{
    int err = 0;
    char k[256];
    r->cin = cin;
    r->cout = cout;
    put(k, sizeof(k), "%s.in_layers.0", base);
    VKF_TRY(ld_norm(L, k, cin, &r->n1));
    put(k, sizeof(k), "%s.in_layers.2", base);
    VKF_TRY(ld_conv(L, k, cout, cin, 3, &r->c1));
    put(k, sizeof(k), "%s.out_layers.0", base);
    VKF_TRY(ld_norm(L, k, cout, &r->n2));
    put(k, sizeof(k), "%s.out_layers.3", base);
    VKF_TRY(ld_conv(L, k, cout, cout, 3, &r->c2));
    put(k, sizeof(k), "%s.skip_connection.weight", base);
    char name[512];
    bool has_skip = vkf_unet_key(L->l, k, name, sizeof(name)) && vkf_weights_find(L->w, name);
    if (cin != cout || has_skip) {
        put(k, sizeof(k), "%s.skip_connection", base);
        VKF_TRY(ld_conv(L, k, cout, cin, 1, &r->skip));
    }
fail:
    return err;
}

static int ld_tb(ld *L, const char *base, const vkf_unet_config *c, int ch, int d, utb *t);

static int ld_st(ld *L, const char *base, const vkf_unet_config *c, int ch, int depth, ust *s)
{
    int err = 0;
    char k[256];
    s->c = ch;
    s->tb = vkf_calloc((size_t)depth, sizeof(utb));
    VKF_CHECK_ALLOC(s->tb);
    s->depth = depth;
    s->heads = c->num_head_channels > 0 ? ch / c->num_head_channels : c->num_heads;
    put(k, sizeof(k), "%s.norm", base);
    VKF_TRY(ld_norm(L, k, ch, &s->norm));
    put(k, sizeof(k), "%s.proj_in", base);
    VKF_TRY(ld_linear(L, k, ch, ch, true, &s->pin));
    put(k, sizeof(k), "%s.proj_out", base);
    VKF_TRY(ld_linear(L, k, ch, ch, true, &s->pout));
    for (int d = 0; d < depth; d++)
        VKF_TRY(ld_tb(L, base, c, ch, d, &s->tb[d]));
fail:
    return err;
}

static int ld_tb(ld *L, const char *base, const vkf_unet_config *c, int ch, int d, utb *t)
{
    int err = 0;
    char k[256];
    char tb[200];
    put(tb, sizeof(tb), "%s.transformer_blocks.%d", base, d);
    static const char *const norms[3] = {"norm1", "norm2", "norm3"};
    ulin *nl[3] = {&t->n1, &t->n2, &t->n3};
    for (int i = 0; i < 3; i++) {
        put(k, sizeof(k), "%s.%s", tb, norms[i]);
        VKF_TRY(ld_norm(L, k, ch, nl[i]));
    }
    static const char *const qkv[3] = {"to_q", "to_k", "to_v"};
    ulin *a1[3] = {&t->q1, &t->k1, &t->v1}, *a2[3] = {&t->q2, &t->k2, &t->v2};
    for (int i = 0; i < 3; i++) {
        /* SD attention projections have no bias; refuse one rather than
         * drop it. */
        const char *attn[2] = {"attn1", "attn2"};
        for (int a = 0; a < 2; a++) {
            char name[512];
            put(k, sizeof(k), "%s.%s.%s.bias", tb, attn[a], qkv[i]);
            if (vkf_unet_key(L->l, k, name, sizeof(name)) && vkf_weights_find(L->w, name)) {
                err = vkf_errbuf_set(L->e, VKF_EUNSUPPORTED, "UNet tensor %s: SD1.x/SD2.x "
                                     "attention projections have no bias", name);
                goto fail;
            }
        }
        put(k, sizeof(k), "%s.attn1.%s", tb, qkv[i]);
        VKF_TRY(ld_linear(L, k, ch, ch, false, a1[i]));
        put(k, sizeof(k), "%s.attn2.%s", tb, qkv[i]);
        VKF_TRY(ld_linear(L, k, ch, i == 0 ? ch : c->context_dim, false, a2[i]));
    }
    put(k, sizeof(k), "%s.attn1.to_out.0", tb);
    VKF_TRY(ld_linear(L, k, ch, ch, true, &t->o1));
    put(k, sizeof(k), "%s.attn2.to_out.0", tb);
    VKF_TRY(ld_linear(L, k, ch, ch, true, &t->o2));
    put(k, sizeof(k), "%s.ff.net.0.proj", tb);
    VKF_TRY(ld_linear(L, k, 8 * (int64_t)ch, ch, true, &t->ff1));
    put(k, sizeof(k), "%s.ff.net.2", tb);
    VKF_TRY(ld_linear(L, k, ch, 4 * (int64_t)ch, true, &t->ff2));
fail:
    return err;
}

int vkf_unet_load(vkf_gpu *gpu, vkf_weights *w, const char *prefix,
                  vkf_diffusion_model **out, vkf_errbuf *e)
{
    int err = 0;
    vkf_unet_detected d;
    char **ekeys = NULL, **bkeys = NULL;
    int64_t *ens = NULL;
    int nemb = 0, nres_total = 0;
    unet *m = NULL;
    *out = NULL;
    if (e)
        e->msg[0] = 0;
    VKF_TRY(vkf_unet_detect(w, prefix, &d, e));
    vkf_prediction pred;
    VKF_TRY(vkf_unet_detect_prediction(w, &d, &pred, e));

    m = vkf_calloc(1, sizeof(*m));
    VKF_CHECK_ALLOC(m);
    const vkf_unet_config *c = &d.cfg;
    m->cfg = *c;
    m->base.refs = 1;
    snprintf(m->base.arch, sizeof(m->base.arch), "%s", d.arch);
    m->base.in_channels = c->in_channels;
    m->base.latent_channels = 4;
    m->base.out_channels = c->out_channels;
    m->base.context_dim = c->context_dim;
    m->base.adm_in_channels = c->adm_in_channels;
    m->base.prediction = pred;
    m->base.gpu = gpu;
    m->base.destroy = unet_destroy;
    m->base.forward = unet_forward;

    ld L = {gpu, w, &d.layout, e};
    int mc = c->model_channels, nrb = c->num_res_blocks, lv = c->n_levels;
    int64_t temb = 4 * (int64_t)mc;
    m->n_in = 1 + lv * nrb + (lv - 1);
    m->n_out = lv * (nrb + 1);
    m->in = vkf_calloc((size_t)m->n_in, sizeof(ublock));
    m->out = vkf_calloc((size_t)m->n_out, sizeof(ublock));
    nres_total = lv * nrb + 2 + m->n_out;
    ekeys = vkf_calloc((size_t)nres_total, sizeof(char *));
    bkeys = vkf_calloc((size_t)nres_total, sizeof(char *));
    ens = vkf_calloc((size_t)nres_total, sizeof(int64_t));
    VKF_CHECK_ALLOC(m->in);
    VKF_CHECK_ALLOC(m->out);
    VKF_CHECK_ALLOC(ekeys);
    VKF_CHECK_ALLOC(bkeys);
    VKF_CHECK_ALLOC(ens);

    VKF_TRY(ld_linear(&L, "time_embed.0", temb, mc, true, &m->time1));
    VKF_TRY(ld_linear(&L, "time_embed.2", temb, temb, true, &m->time2));
    if (c->adm_in_channels > 0) {
        VKF_TRY(ld_linear(&L, "label_emb.0.0", temb, c->adm_in_channels, true, &m->label1));
        VKF_TRY(ld_linear(&L, "label_emb.0.2", temb, temb, true, &m->label2));
    }

    char base[128];
/* Records a ResBlock's emb_layers for the fused matrix. */
#define ADD_EMB(r, fmt, ...)                                                            \
    do {                                                                                \
        char b_[128];                                                                   \
        put(b_, sizeof(b_), fmt, __VA_ARGS__);                                     \
        size_t len_ = strlen(b_) + 32;                                                  \
        ekeys[nemb] = vkf_malloc(len_);                                                 \
        bkeys[nemb] = vkf_malloc(len_);                                                 \
        VKF_CHECK_ALLOC(ekeys[nemb]);                                                   \
        VKF_CHECK_ALLOC(bkeys[nemb]);                                                   \
        snprintf(ekeys[nemb], len_, "%s.emb_layers.1.weight", b_);                      \
        snprintf(bkeys[nemb], len_, "%s.emb_layers.1.bias", b_);                        \
        ens[nemb] = (r)->cout;                                                          \
        (r)->emb_off = m->emb_cols;                                                     \
        m->emb_cols += (r)->cout;                                                       \
        nemb++;                                                                         \
    } while (0)

    /* Input blocks; chans[] is the skip stack's widths. */
    int chans[64], nch = 0, ch = mc;
    VKF_TRY(ld_conv(&L, "input_blocks.0.0", mc, c->in_channels, 3, &m->in[0].conv));
    chans[nch++] = mc;
    int bi = 1;
    for (int lvl = 0; lvl < lv; lvl++) {
        int co = mc * c->channel_mult[lvl];
        for (int j = 0; j < nrb; j++, bi++) {
            ublock *b = &m->in[bi];
            b->res = vkf_calloc(1, sizeof(ures));
            VKF_CHECK_ALLOC(b->res);
            put(base, sizeof(base), "input_blocks.%d.0", bi);
            VKF_TRY(ld_res(&L, base, ch, co, b->res));
            ADD_EMB(b->res, "input_blocks.%d.0", bi);
            ch = co;
            if (c->attn_level[lvl]) {
                b->st = vkf_calloc(1, sizeof(ust));
                VKF_CHECK_ALLOC(b->st);
                put(base, sizeof(base), "input_blocks.%d.1", bi);
                VKF_TRY(ld_st(&L, base, c, ch, c->level_depth[lvl], b->st));
            }
            chans[nch++] = ch;
        }
        if (lvl != lv - 1) {
            put(base, sizeof(base), "input_blocks.%d.0.op", bi);
            VKF_TRY(ld_conv(&L, base, ch, ch, 3, &m->in[bi].conv));
            chans[nch++] = ch;
            bi++;
        }
    }
    VKF_TRY(ld_res(&L, "middle_block.0", ch, ch, &m->mid1));
    ADD_EMB(&m->mid1, "%s", "middle_block.0");
    VKF_TRY(ld_st(&L, "middle_block.1", c, ch, c->middle_depth, &m->mid_st));
    VKF_TRY(ld_res(&L, "middle_block.2", ch, ch, &m->mid2));
    ADD_EMB(&m->mid2, "%s", "middle_block.2");
    int oi = 0;
    for (int lvl = lv - 1; lvl >= 0; lvl--) {
        int co = mc * c->channel_mult[lvl];
        for (int j = 0; j <= nrb; j++, oi++) {
            ublock *b = &m->out[oi];
            int skip = chans[--nch];
            b->res = vkf_calloc(1, sizeof(ures));
            VKF_CHECK_ALLOC(b->res);
            put(base, sizeof(base), "output_blocks.%d.0", oi);
            VKF_TRY(ld_res(&L, base, ch + skip, co, b->res));
            ADD_EMB(b->res, "output_blocks.%d.0", oi);
            ch = co;
            int sub = 1;
            if (c->attn_level[lvl]) {
                b->st = vkf_calloc(1, sizeof(ust));
                VKF_CHECK_ALLOC(b->st);
                put(base, sizeof(base), "output_blocks.%d.1", oi);
                VKF_TRY(ld_st(&L, base, c, ch, c->level_depth[lvl], b->st));
                sub = 2;
            }
            if (lvl > 0 && j == nrb) {
                put(base, sizeof(base), "output_blocks.%d.%d.conv", oi, sub);
                VKF_TRY(ld_conv(&L, base, ch, ch, 3, &b->conv));
            }
        }
    }
    VKF_TRY(ld_norm(&L, "out.0", ch, &m->out_norm));
    VKF_TRY(ld_conv(&L, "out.2", c->out_channels, ch, 3, &m->out_conv));
    VKF_TRY(ld_linear_cat(&L, (const char *const *)ekeys, (const char *const *)bkeys, nemb, ens,
                          temb, &m->emb));
#undef ADD_EMB
    err = vkf_gpu_flush(gpu);
    if (err < 0) {
        vkf_errbuf_set(e, err, "UNet upload: %s", vkf_strerror(err));
        goto fail;
    }
    *out = &m->base;
    m = NULL;
fail:
    if (err < 0 && e && !e->msg[0])
        vkf_errbuf_set(e, err, "UNet load failed: %s", vkf_strerror(err));
    if (m)
        unet_destroy(&m->base);
    for (int i = 0; ekeys && i < nres_total; i++)
        vkf_free(ekeys[i]);
    for (int i = 0; bkeys && i < nres_total; i++)
        vkf_free(bkeys[i]);
    vkf_free(ekeys);
    vkf_free(bkeys);
    vkf_free(ens);
    return err;
}

/* ------------------------------------------------------------------------ */
/* forward                                                                   */

static int conv(vkf_gpu *g, vkf_tensor *x, const ulin *c, int stride, int pad, vkf_tensor **out)
{
    vkf_conv2d_params p = {.stride = {stride, stride}, .padding = {pad, pad}};
    return vkf_op_conv2d(g, x, c->w, c->b, &p, out);
}

static int gn_silu(vkf_gpu *g, vkf_tensor *x, const ulin *n, float eps, vkf_tensor **out)
{
    vkf_tensor *a = NULL;
    int err = vkf_op_group_norm(g, x, UNET_GN_GROUPS, n->w, n->b, eps, &a);
    if (err >= 0)
        err = vkf_op_unary(g, VKF_UN_SILU, a, 0, 0, out);
    vkf_tensor_unref(&a);
    return err;
}

/* x [..., K] → [..., N] with the transposed weight [K, N]: one GEMM over
 * all leading dims. */
static int lin(vkf_gpu *g, vkf_tensor *x, const ulin *l, vkf_tensor **out)
{
    int err = 0;
    vkf_tensor *xc = NULL, *x2 = NULL, *y = NULL;
    const int64_t *ws = vkf_tensor_shape(l->w);
    int64_t k = ws[0], n = ws[1];
    int nd = vkf_tensor_ndim(x);
    int64_t shape[VKF_TENSOR_MAX_DIMS];
    memcpy(shape, vkf_tensor_shape(x), (size_t)nd * sizeof(int64_t));
    if (shape[nd - 1] != k)
        return VKF_EINVAL;
    int64_t rows = vkf_tensor_numel(x) / k;
    VKF_TRY(vkf_op_contiguous(g, x, &xc));
    VKF_TRY(vkf_tensor_reshape(xc, 2, (int64_t[]){rows, k}, &x2));
    VKF_TRY(vkf_op_matmul(g, x2, l->w, false, l->b, &y));
    shape[nd - 1] = n;
    VKF_TRY(vkf_tensor_reshape(y, nd, shape, out));
fail:
    vkf_tensor_unref(&xc);
    vkf_tensor_unref(&x2);
    vkf_tensor_unref(&y);
    return err;
}

static int add_to(vkf_gpu *g, vkf_tensor **h, vkf_tensor *d)
{
    vkf_tensor *s = NULL;
    int err = vkf_op_binary(g, VKF_BIN_ADD, *h, d, &s);
    if (err < 0)
        return err;
    vkf_tensor_unref(h);
    *h = s;
    return 0;
}

/* h = skip(x) + conv(SiLU(GN(conv(SiLU(GN(x))) + emb))) */
static int res_fwd(vkf_gpu *g, const ures *r, vkf_tensor *x, vkf_tensor *emb4, vkf_tensor **out)
{
    int err = 0;
    vkf_tensor *a = NULL, *h = NULL, *ev = NULL, *sk = NULL;
    VKF_TRY(gn_silu(g, x, &r->n1, UNET_GN_EPS, &a));
    VKF_TRY(conv(g, a, &r->c1, 1, 1, &h));
    vkf_tensor_unref(&a);
    VKF_TRY(vkf_tensor_slice(emb4, 1, r->emb_off, r->cout, &ev));
    VKF_TRY(add_to(g, &h, ev));
    vkf_tensor_unref(&ev);
    VKF_TRY(gn_silu(g, h, &r->n2, UNET_GN_EPS, &a));
    vkf_tensor_unref(&h);
    VKF_TRY(conv(g, a, &r->c2, 1, 1, &h));
    vkf_tensor_unref(&a);
    if (r->skip.w)
        VKF_TRY(conv(g, x, &r->skip, 1, 0, &sk));
    else
        sk = vkf_tensor_ref(x);
    VKF_TRY(vkf_op_binary(g, VKF_BIN_ADD, sk, h, out));
fail:
    vkf_tensor_unref(&a);
    vkf_tensor_unref(&h);
    vkf_tensor_unref(&ev);
    vkf_tensor_unref(&sk);
    return err;
}

/* to_out(attention(to_q(xq), to_k(xkv), to_v(xkv))) */
static int attn_fwd(vkf_gpu *g, vkf_tensor *xq, vkf_tensor *xkv, const ulin *wq,
                    const ulin *wk, const ulin *wv, const ulin *wo, int heads, vkf_tensor **out)
{
    int err = 0;
    vkf_tensor *q = NULL, *k = NULL, *v = NULL, *a = NULL;
    VKF_TRY(lin(g, xq, wq, &q));
    VKF_TRY(lin(g, xkv, wk, &k));
    VKF_TRY(lin(g, xkv, wv, &v));
    VKF_TRY(vkf_op_attention_heads(g, q, k, v, heads, NULL, &a));
    vkf_tensor_unref(&q);
    vkf_tensor_unref(&k);
    vkf_tensor_unref(&v);
    VKF_TRY(lin(g, a, wo, out));
fail:
    vkf_tensor_unref(&q);
    vkf_tensor_unref(&k);
    vkf_tensor_unref(&v);
    vkf_tensor_unref(&a);
    return err;
}

static int st_fwd(vkf_gpu *g, const ust *s, vkf_tensor *x, vkf_tensor *ctx, vkf_tensor **out)
{
    int err = 0;
    vkf_tensor *a = NULL, *a3 = NULL, *at = NULL, *h = NULL, *n = NULL, *o = NULL, *f = NULL,
               *p4 = NULL, *pv = NULL;
    const int64_t *xs = vkf_tensor_shape(x);
    int64_t B = xs[0], C = xs[1], H = xs[2], W = xs[3];
    VKF_TRY(vkf_op_group_norm(g, x, UNET_GN_GROUPS, s->norm.w, s->norm.b, UNET_ST_GN_EPS, &a));
    VKF_TRY(vkf_tensor_reshape(a, 3, (int64_t[]){B, C, H * W}, &a3));
    VKF_TRY(vkf_tensor_permute(a3, (const int[]){0, 2, 1}, &at));
    vkf_tensor_unref(&a);
    vkf_tensor_unref(&a3);
    /* proj_in: Linear (SD2) or 1x1 conv (SD1), the same product */
    VKF_TRY(lin(g, at, &s->pin, &h));
    vkf_tensor_unref(&at);

    for (int d = 0; d < s->depth; d++) {
        const utb *t = &s->tb[d];
        VKF_TRY(vkf_op_layer_norm(g, h, t->n1.w, t->n1.b, UNET_LN_EPS, &n));
        VKF_TRY(attn_fwd(g, n, n, &t->q1, &t->k1, &t->v1, &t->o1, s->heads, &o));
        vkf_tensor_unref(&n);
        VKF_TRY(add_to(g, &h, o));
        vkf_tensor_unref(&o);

        VKF_TRY(vkf_op_layer_norm(g, h, t->n2.w, t->n2.b, UNET_LN_EPS, &n));
        VKF_TRY(attn_fwd(g, n, ctx, &t->q2, &t->k2, &t->v2, &t->o2, s->heads, &o));
        vkf_tensor_unref(&n);
        VKF_TRY(add_to(g, &h, o));
        vkf_tensor_unref(&o);

        VKF_TRY(vkf_op_layer_norm(g, h, t->n3.w, t->n3.b, UNET_LN_EPS, &n));
        VKF_TRY(lin(g, n, &t->ff1, &f));
        vkf_tensor_unref(&n);
        VKF_TRY(vkf_op_geglu(g, f, &n));
        vkf_tensor_unref(&f);
        VKF_TRY(lin(g, n, &t->ff2, &o));
        vkf_tensor_unref(&n);
        VKF_TRY(add_to(g, &h, o));
        vkf_tensor_unref(&o);
    }
    VKF_TRY(lin(g, h, &s->pout, &o));
    vkf_tensor_unref(&h);
    VKF_TRY(vkf_tensor_reshape(o, 4, (int64_t[]){B, H, W, C}, &p4));
    VKF_TRY(vkf_tensor_permute(p4, (const int[]){0, 3, 1, 2}, &pv));
    VKF_TRY(vkf_op_binary(g, VKF_BIN_ADD, x, pv, out));
fail:
    vkf_tensor_unref(&a);
    vkf_tensor_unref(&a3);
    vkf_tensor_unref(&at);
    vkf_tensor_unref(&h);
    vkf_tensor_unref(&n);
    vkf_tensor_unref(&o);
    vkf_tensor_unref(&f);
    vkf_tensor_unref(&p4);
    vkf_tensor_unref(&pv);
    return err;
}

static bool same_shape(vkf_tensor *a, vkf_tensor *b)
{
    int n = vkf_tensor_ndim(a);
    return n == vkf_tensor_ndim(b) &&
           !memcmp(vkf_tensor_shape(a), vkf_tensor_shape(b), (size_t)n * sizeof(int64_t));
}

static int add_control(vkf_gpu *g, vkf_tensor **h, vkf_tensor *ctrl)
{
    if (!ctrl)
        return 0;
    if (!same_shape(*h, ctrl))
        return VKF_EINVAL;
    return add_to(g, h, ctrl);
}

static int unet_forward(vkf_diffusion_model *dm, const vkf_dm_input *in, vkf_tensor **out)
{
    unet *m = (unet *)dm;
    vkf_gpu *g = dm->gpu;
    const vkf_unet_config *c = &m->cfg;
    int err = 0;
    vkf_tensor *tt = NULL, *te = NULL, *e1 = NULL, *e2 = NULL, *emb = NULL, *emb4 = NULL,
               *h = NULL, *t = NULL, *skip = NULL, *cat = NULL;
    vkf_tensor *hs[64] = {0};
    *out = NULL;
    if (!in || !in->x || !in->timesteps || !in->context || (!in->y) != (c->adm_in_channels == 0))
        return VKF_EINVAL;
    if (vkf_tensor_ndim(in->x) != 4 || vkf_tensor_ndim(in->context) != 3)
        return VKF_EINVAL;
    const int64_t *xs = vkf_tensor_shape(in->x), *cs = vkf_tensor_shape(in->context);
    int64_t B = xs[0];
    if (xs[1] != c->in_channels || (cs[0] != B && cs[0] != 1) || cs[2] != c->context_dim ||
        m->n_in > (int)VKF_ARRAY_SIZE(hs))
        return VKF_EINVAL;

    /* time conditioning: every ResBlock's emb_layers in one product */
    float *ts = vkf_malloc((size_t)B * sizeof(float));
    VKF_CHECK_ALLOC(ts);
    memcpy(ts, in->timesteps, (size_t)B * sizeof(float));
    err = vkf_tensor_create(g, VKF_DTYPE_F32, 1, &B, &tt);
    if (err >= 0)
        err = vkf_tensor_upload(tt, ts);
    vkf_free(ts);
    VKF_TRY(err);
    vkf_timestep_embed_params tp = {.dim = c->model_channels};
    VKF_TRY(vkf_op_timestep_embedding(g, tt, &tp, &te));
    VKF_TRY(lin(g, te, &m->time1, &e1));
    VKF_TRY(vkf_op_unary(g, VKF_UN_SILU, e1, 0, 0, &e2));
    vkf_tensor_unref(&e1);
    VKF_TRY(lin(g, e2, &m->time2, &e1));
    vkf_tensor_unref(&e2);
    if (in->y) {
        /* emb += label_emb(y): Linear → SiLU → Linear */
        const int64_t *ys = vkf_tensor_shape(in->y);
        if (vkf_tensor_ndim(in->y) != 2 || ys[0] != B || ys[1] != c->adm_in_channels) {
            err = VKF_EINVAL;
            goto fail;
        }
        vkf_tensor *l1 = NULL, *l2 = NULL;
        err = lin(g, in->y, &m->label1, &l1);
        if (err >= 0)
            err = vkf_op_unary(g, VKF_UN_SILU, l1, 0, 0, &l2);
        vkf_tensor_unref(&l1);
        if (err >= 0)
            err = lin(g, l2, &m->label2, &l1);
        vkf_tensor_unref(&l2);
        if (err >= 0)
            err = add_to(g, &e1, l1);
        vkf_tensor_unref(&l1);
        VKF_TRY(err);
    }
    VKF_TRY(vkf_op_unary(g, VKF_UN_SILU, e1, 0, 0, &e2));
    VKF_TRY(lin(g, e2, &m->emb, &emb));
    VKF_TRY(vkf_tensor_reshape(emb, 4, (int64_t[]){B, m->emb_cols, 1, 1}, &emb4));
    vkf_tensor_unref(&emb);

    /* input blocks */
    for (int i = 0; i < m->n_in; i++) {
        const ublock *b = &m->in[i];
        if (i == 0) {
            VKF_TRY(conv(g, in->x, &b->conv, 1, 1, &h));
        } else if (b->res) {
            VKF_TRY(res_fwd(g, b->res, h, emb4, &t));
            vkf_tensor_unref(&h);
            h = t;
            t = NULL;
            if (b->st) {
                VKF_TRY(st_fwd(g, b->st, h, in->context, &t));
                vkf_tensor_unref(&h);
                h = t;
                t = NULL;
            }
        } else {
            VKF_TRY(conv(g, h, &b->conv, 2, 1, &t));
            vkf_tensor_unref(&h);
            h = t;
            t = NULL;
        }
        if (in->control_in)
            VKF_TRY(add_control(g, &h, in->control_in[i]));
        hs[i] = vkf_tensor_ref(h);
    }

    /* middle */
    VKF_TRY(res_fwd(g, &m->mid1, h, emb4, &t));
    vkf_tensor_unref(&h);
    VKF_TRY(st_fwd(g, &m->mid_st, t, in->context, &h));
    vkf_tensor_unref(&t);
    VKF_TRY(res_fwd(g, &m->mid2, h, emb4, &t));
    vkf_tensor_unref(&h);
    h = t;
    t = NULL;
    VKF_TRY(add_control(g, &h, in->control_mid));

    /* output blocks: [h, skip] on channels; Upsample to the next skip's size */
    for (int i = 0; i < m->n_out; i++) {
        const ublock *b = &m->out[i];
        int si = m->n_in - 1 - i;
        skip = hs[si];
        hs[si] = NULL;
        if (in->control_out)
            VKF_TRY(add_control(g, &skip, in->control_out[i]));
        vkf_tensor *pair[2] = {h, skip};
        VKF_TRY(vkf_op_concat(g, pair, 2, 1, &cat));
        vkf_tensor_unref(&h);
        vkf_tensor_unref(&skip);
        VKF_TRY(res_fwd(g, b->res, cat, emb4, &h));
        vkf_tensor_unref(&cat);
        if (b->st) {
            VKF_TRY(st_fwd(g, b->st, h, in->context, &t));
            vkf_tensor_unref(&h);
            h = t;
            t = NULL;
        }
        if (b->conv.w) {
            const int64_t *ns = vkf_tensor_shape(hs[si - 1]);
            vkf_upsample_params up = {.mode = VKF_UPSAMPLE_NEAREST, .size = {ns[2], ns[3]}};
            VKF_TRY(vkf_op_upsample(g, h, &up, &t));
            vkf_tensor_unref(&h);
            VKF_TRY(conv(g, t, &b->conv, 1, 1, &h));
            vkf_tensor_unref(&t);
        }
    }
    VKF_TRY(gn_silu(g, h, &m->out_norm, UNET_GN_EPS, &t));
    vkf_tensor_unref(&h);
    VKF_TRY(conv(g, t, &m->out_conv, 1, 1, out));
fail:
    for (int i = 0; i < (int)VKF_ARRAY_SIZE(hs); i++)
        vkf_tensor_unref(&hs[i]);
    vkf_tensor_unref(&tt);
    vkf_tensor_unref(&te);
    vkf_tensor_unref(&e1);
    vkf_tensor_unref(&e2);
    vkf_tensor_unref(&emb);
    vkf_tensor_unref(&emb4);
    vkf_tensor_unref(&h);
    vkf_tensor_unref(&t);
    vkf_tensor_unref(&skip);
    vkf_tensor_unref(&cat);
    return err;
}
