/*
 * Model family detection from key names and a few shapes, following
 * ComfyUI's model_detection.py / sd.py as summarised in
 * shared/docs/model-architectures.md.  Checks run from the most specific
 * layout (adapters, LoRA) to the most generic; the first match wins.
 */
#include <stdio.h>
#include <string.h>

#include "io/weights_internal.h"

typedef struct det {
    const vkf_weights *w;
    const char *p;            /* key prefix under test */
    vkf_detect_result *r;
    char pbuf[96];
} det;

static const vkf_weight_info *get(const det *d, const char *key)
{
    char buf[512];
    snprintf(buf, sizeof(buf), "%s%s", d->p, key);
    return vkf_weights_find(d->w, buf);
}

static bool has(const det *d, const char *key) { return get(d, key) != NULL; }

/* Dim i of key (negative counts from the end), or -1. */
static int64_t dim(const det *d, const char *key, int i)
{
    const vkf_weight_info *t = get(d, key);
    if (!t)
        return -1;
    if (i < 0)
        i += t->ndim;
    return i >= 0 && i < t->ndim ? t->shape[i] : -1;
}

static bool has_prefix(const vkf_weights *w, const char *prefix)
{
    return vkf_weights_find_prefix(w, prefix) >= 0;
}

/* 1 + the largest N of "<prefix><stem>N." keys (0 if none). */
static int count_indices(const det *d, const char *stem)
{
    char buf[512];
    snprintf(buf, sizeof(buf), "%s%s", d->p, stem);
    size_t bl = strlen(buf);
    int n = vkf_weights_count(d->w), best = -1;
    for (int i = vkf_weights_find_prefix(d->w, buf); i >= 0 && i < n; i++) {
        const char *name = vkf_weights_at(d->w, i)->name;
        if (strncmp(name, buf, bl))
            break;
        const char *p = name + bl;
        int v = 0, digits = 0;
        while (*p >= '0' && *p <= '9' && digits < 6) {
            v = v * 10 + (*p++ - '0');
            digits++;
        }
        if (digits && *p == '.' && v > best)
            best = v;
    }
    return best + 1;
}

/* Any key containing needle (linear scan). */
static const vkf_weight_info *find_sub(const vkf_weights *w, const char *needle)
{
    int n = vkf_weights_count(w);
    for (int i = 0; i < n; i++) {
        const vkf_weight_info *t = vkf_weights_at(w, i);
        if (strstr(t->name, needle))
            return t;
    }
    return NULL;
}

/* First key under prefix d->p containing needle. */
static const vkf_weight_info *find_under(const det *d, const char *stem, const char *needle)
{
    char buf[512];
    snprintf(buf, sizeof(buf), "%s%s", d->p, stem);
    size_t bl = strlen(buf);
    int i = vkf_weights_find_prefix(d->w, buf), n = vkf_weights_count(d->w);
    for (; i >= 0 && i < n; i++) {
        const vkf_weight_info *t = vkf_weights_at(d->w, i);
        if (strncmp(t->name, buf, bl))
            break;
        if (strstr(t->name, needle))
            return t;
    }
    return NULL;
}

/* Truncating copy (result strings are fixed-size). */
static void copy(char *dst, size_t size, const char *src)
{
    size_t n = strlen(src);
    if (n >= size)
        n = size - 1;
    memcpy(dst, src, n);
    dst[n] = 0;
}

static void set(det *d, const char *family, const char *variant)
{
    copy(d->r->family, sizeof(d->r->family), family);
    copy(d->r->variant, sizeof(d->r->variant), variant);
    copy(d->r->prefix, sizeof(d->r->prefix), d->p);
}

static bool detect_lora(det *d)
{
    const vkf_weights *w = d->w;
    const vkf_weight_info *down = find_sub(w, ".lora_down.weight");
    const vkf_weight_info *peft = find_sub(w, ".lora_A.weight");
    bool loha = find_sub(w, ".hada_w1_a") != NULL, lokr = find_sub(w, ".lokr_w1") != NULL;
    if (!down && !peft && !loha && !lokr && !find_sub(w, ".lora.down.weight"))
        return false;
    const char *style = loha   ? "LyCORIS LoHa"
                        : lokr ? "LyCORIS LoKr"
                        : peft ? "PEFT/diffusers"
                        : has_prefix(w, "lora_unet_") || has_prefix(w, "lora_te")
                            ? "kohya"
                            : "diffusers (old)";
    const char *target = "";
    if (has_prefix(w, "lora_te2_") || find_sub(w, "text_encoder_2.") ||
        find_sub(w, "add_embedding") || find_sub(w, "label_emb"))
        target = ", SDXL";
    else if (find_sub(w, "double_blocks") || find_sub(w, "single_transformer_blocks"))
        target = ", Flux";
    else if (find_sub(w, "joint_blocks") || find_sub(w, "transformer_blocks.0.attn.add_q_proj"))
        target = ", SD3";
    else if (find_sub(w, "cross_attn.k") && find_sub(w, "blocks.0.ffn"))
        target = ", Wan";
    else if (has_prefix(w, "lora_unet_") || has_prefix(w, "lora_te_") || find_sub(w, "unet."))
        target = ", SD1.x/SD2.x";
    const vkf_weight_info *r = down ? down : peft;
    char v[128];
    if (r && r->ndim >= 1)
        snprintf(v, sizeof(v), "%s%s, rank %lld", style, target, (long long)r->shape[0]);
    else
        snprintf(v, sizeof(v), "%s%s", style, target);
    d->p = "";
    set(d, "LoRA", v);
    return true;
}

/* CompVis UNet under d->p (§2.6). */
static bool detect_unet(det *d, bool control)
{
    int64_t mc = dim(d, "input_blocks.0.0.weight", 0);
    int64_t in = dim(d, "input_blocks.0.0.weight", 1);
    if (mc < 0)
        return false;
    int64_t adm = dim(d, "label_emb.0.0.weight", 1);
    const vkf_weight_info *k = find_under(d, "input_blocks.", "attn2.to_k.weight");
    if (!k)
        k = find_under(d, "middle_block.", "attn2.to_k.weight");
    int64_t ctx = k && k->ndim == 2 ? k->shape[1] : -1;
    const char *fam;
    char v[128] = "";
    if (adm == 2816 || (ctx == 2048 && mc == 320)) {
        fam = "SDXL base";
    } else if (adm == 2560 || (mc == 384 && ctx == 1280)) {
        fam = "SDXL refiner";
    } else if (ctx == 768) {
        fam = "SD1.x";
        if (in == 9)
            snprintf(v, sizeof(v), "inpaint (9-ch input)");
        else if (in == 8)
            snprintf(v, sizeof(v), "instruct-pix2pix (8-ch input)");
    } else if (ctx == 1024) {
        fam = "SD2.x";
        if (adm > 0)
            snprintf(v, sizeof(v), "unCLIP (adm %lld)", (long long)adm);
        else if (in == 9)
            snprintf(v, sizeof(v), "inpaint (9-ch input)");
        else
            snprintf(v, sizeof(v), "(768-v or base: prediction type is not in the weights)");
    } else {
        fam = "UNet";
        snprintf(v, sizeof(v), "unknown config: model_channels %lld, in %lld, context %lld",
                 (long long)mc, (long long)in, (long long)ctx);
    }
    if (control) {
        char cv[300];
        snprintf(cv, sizeof(cv), "for %s%s%s", fam, v[0] ? " " : "", v);
        set(d, "ControlNet", cv);
    } else {
        set(d, fam, v);
    }
    return true;
}

/* Diffusers UNet2DConditionModel under d->p (§2.5). */
static bool detect_diffusers_unet(det *d)
{
    if (!has(d, "conv_in.weight") || !has(d, "time_embedding.linear_1.weight"))
        return false;
    const vkf_weight_info *k = find_under(d, "down_blocks.", "attn2.to_k.weight");
    int64_t ctx = k && k->ndim == 2 ? k->shape[1] : -1;
    int64_t adm = dim(d, "add_embedding.linear_1.weight", 1);
    int64_t in = dim(d, "conv_in.weight", 1);
    bool control = has(d, "controlnet_cond_embedding.conv_in.weight");
    const char *fam = adm == 2816   ? "SDXL base"
                      : adm == 2560 ? "SDXL refiner"
                      : ctx == 768  ? "SD1.x"
                      : ctx == 1024 ? "SD2.x"
                                    : "UNet";
    char v[128];
    snprintf(v, sizeof(v), "diffusers layout%s%s", in == 9 ? ", inpaint (9-ch input)" : "",
             ctx == 1024 && !control ? ", (768-v or base)" : "");
    if (control) {
        char cv[300];
        snprintf(cv, sizeof(cv), "for %s, %s", fam, v);
        set(d, "ControlNet", cv);
    } else {
        set(d, fam, v);
    }
    return true;
}

static bool detect_dit(det *d)
{
    char v[128];
    if (has(d, "joint_blocks.0.context_block.attn.qkv.weight")) {
        int64_t depth = dim(d, "x_embedder.proj.weight", 0) / 64;
        bool dual = find_under(d, "joint_blocks.", "x_block.attn2.qkv.weight") != NULL;
        bool qk = find_under(d, "joint_blocks.", "attn.ln_q.weight") != NULL;
        snprintf(v, sizeof(v), "%s, depth %lld",
                 dual ? "SD3.5 Medium (MMDiT-X)" : qk ? "SD3.5 Large" : "SD3 Medium",
                 (long long)depth);
        set(d, "SD3", v);
        return true;
    }
    if (has(d, "double_blocks.0.img_attn.norm.key_norm.scale") && has(d, "img_in.weight")) {
        int64_t in = dim(d, "img_in.weight", 1) / 4;
        snprintf(v, sizeof(v), "%s%s, %d double / %d single blocks",
                 has(d, "guidance_in.in_layer.weight") ? "dev (guidance-distilled)" : "schnell",
                 in == 96 ? ", Fill" : in == 32 ? ", Canny/Depth" : "",
                 count_indices(d, "double_blocks."), count_indices(d, "single_blocks."));
        set(d, "Flux", v);
        return true;
    }
    if (has(d, "head.modulation") && has(d, "patch_embedding.weight")) {
        int64_t dm = dim(d, "head.modulation", -1);
        int64_t in = dim(d, "patch_embedding.weight", 1);
        int64_t out = dim(d, "head.head.weight", 0) / 4;
        int layers = count_indices(d, "blocks.");
        const char *size = dm == 1536 ? "1.3B" : dm == 5120 ? "14B" : dm == 3072 ? "5B" : "?";
        const char *fam = "Wan 2.1", *kind;
        bool img = has(d, "img_emb.proj.0.bias") || has(d, "img_emb.proj.0.weight");
        if (out == 48) {
            fam = "Wan 2.2";
            kind = "TI2V";
        } else if (has(d, "vace_patch_embedding.weight")) {
            kind = "VACE";
        } else if (has(d, "img_emb.emb_pos")) {
            kind = "FLF2V";
        } else if (img) {
            kind = "i2v";
        } else if (in == 36) {
            fam = "Wan 2.2";
            kind = "i2v A14B (high- or low-noise expert)";
        } else if (dm == 5120) {
            kind = "t2v (Wan 2.2 T2V A14B experts have the same layout)";
        } else {
            kind = "t2v";
        }
        snprintf(v, sizeof(v), "%s %s, dim %lld, %d layers, in %lld", size, kind,
                 (long long)dm, layers, (long long)in);
        set(d, fam, v);
        return true;
    }
    return false;
}

static bool detect_vae(det *d)
{
    char v[128];
    if (has(d, "decoder.middle.0.residual.0.gamma") || has(d, "encoder.middle.0.residual.0.gamma")) {
        bool v22 = has(d, "decoder.upsamples.0.upsamples.0.residual.2.weight") ||
                   dim(d, "encoder.conv1.weight", 1) == 12;
        set(d, "VAE", v22 ? "Wan 2.2 (z48)" : "Wan 2.1 (z16)");
        return true;
    }
    int64_t z = dim(d, "decoder.conv_in.weight", 1);
    if (z < 0 && has(d, "encoder.conv_out.weight"))
        z = dim(d, "encoder.conv_out.weight", 0) / 2;
    bool diffusers = has(d, "decoder.up_blocks.0.resnets.0.norm1.weight");
    if (z < 0 || (!has(d, "decoder.up.0.block.0.conv1.weight") && !diffusers &&
                  !has(d, "encoder.down.0.block.0.conv1.weight")))
        return false;
    snprintf(v, sizeof(v), "%s%s, %lld latent channels",
             z == 4 ? "KL-f8 (SD1.x/SD2.x/SDXL)" : z == 16 ? "KL-f8 (SD3/Flux)" : "KL",
             diffusers ? ", diffusers layout" : "", (long long)z);
    set(d, "VAE", v);
    return true;
}

static bool detect_taesd(det *d)
{
    char v[128];
    if (has(d, "decoder.22.bias") || has(d, "decoder.22.weight")) {
        set(d, "TAEHV", "tiny video autoencoder");
        return true;
    }
    int64_t c;
    /* Decoder: 0 Clamp, 1 conv C->64, ..., 19 conv 64->3. */
    if (dim(d, "1.weight", 0) == 64 && dim(d, "19.weight", 0) == 3 && !has(d, "0.weight")) {
        c = dim(d, "1.weight", 1);
        snprintf(v, sizeof(v), "decoder, %lld latent channels (%s)", (long long)c,
                 c == 4 ? "taesd/taesdxl" : c == 16 ? "taesd3/taef1" : c == 32 ? "taef2" : "?");
        set(d, "TAESD", v);
        return true;
    }
    /* Encoder: 0 conv 3->64, ..., 14 conv 64->C. */
    if (dim(d, "0.weight", 1) == 3 && dim(d, "14.weight", 1) == 64 && !has(d, "15.weight")) {
        c = dim(d, "14.weight", 0);
        snprintf(v, sizeof(v), "encoder, %lld latent channels (%s)", (long long)c,
                 c == 4 ? "taesd/taesdxl" : c == 16 ? "taesd3/taef1" : c == 32 ? "taef2" : "?");
        set(d, "TAESD", v);
        return true;
    }
    if (dim(d, "0.weight", 1) == 3 && dim(d, "17.weight", 1) == 64) {
        snprintf(v, sizeof(v), "encoder, %lld latent channels (taesana, DC-AE f32c32)",
                 (long long)dim(d, "17.weight", 0));
        set(d, "TAESD", v);
        return true;
    }
    return false;
}

static bool detect_text(det *d)
{
    char v[128];
    int64_t width = dim(d, "text_model.embeddings.token_embedding.weight", 1);
    if (has(d, "text_model.encoder.layers.30.mlp.fc1.weight")) {
        set(d, "OpenCLIP-bigG", "ViT-bigG/14 text (HF layout)");
        return true;
    }
    if (has(d, "text_model.encoder.layers.22.mlp.fc1.weight")) {
        set(d, "OpenCLIP-H", "ViT-H/14 text (HF layout)");
        return true;
    }
    if (has(d, "text_model.encoder.layers.0.mlp.fc1.weight")) {
        snprintf(v, sizeof(v), "ViT-L/14 text, width %lld, %d layers", (long long)width,
                 count_indices(d, "text_model.encoder.layers."));
        set(d, "CLIP-L", v);
        return true;
    }
    if (has(d, "transformer.resblocks.0.attn.in_proj_weight") && has(d, "token_embedding.weight")) {
        int n = count_indices(d, "transformer.resblocks.");
        snprintf(v, sizeof(v), "OpenCLIP layout, %d layers", n);
        set(d, n >= 32 ? "OpenCLIP-bigG" : n >= 24 ? "OpenCLIP-H" : "CLIP-L", v);
        return true;
    }
    if (has(d, "encoder.block.0.layer.0.SelfAttention.q.weight")) {
        int64_t vocab = dim(d, "shared.weight", 0);
        int64_t dm = dim(d, "encoder.block.0.layer.0.SelfAttention.q.weight", 1);
        bool um = vocab == 256384 ||
                  has(d, "encoder.block.1.layer.0.SelfAttention.relative_attention_bias.weight");
        int n = count_indices(d, "encoder.block.");
        snprintf(v, sizeof(v), "%s, d_model %lld, %d layers, vocab %lld",
                 dm == 4096 ? "XXL" : dm == 2048 ? "XL" : "?", (long long)dm, n,
                 (long long)vocab);
        set(d, um ? "umT5" : "T5", v);
        return true;
    }
    return false;
}

static bool detect_upscaler(det *d)
{
    char v[128];
    if (has(d, "conv_first.weight") &&
        (has(d, "RRDB_trunk.0.RDB1.conv1.weight") || has(d, "body.0.rdb1.conv1.weight"))) {
        int n = count_indices(d, has(d, "body.0.rdb1.conv1.weight") ? "body." : "RRDB_trunk.");
        snprintf(v, sizeof(v), "%d RRDB blocks, %lld features%s", n,
                 (long long)dim(d, "conv_first.weight", 0),
                 has(d, "conv_up2.weight") ? ", x4" : has(d, "conv_up1.weight") ? ", x2" : "");
        set(d, "ESRGAN RRDBNet", v);
        return true;
    }
    if (has(d, "model.0.weight") && has(d, "model.1.sub.0.RDB1.conv1.0.weight")) {
        snprintf(v, sizeof(v), "old ESRGAN layout, %lld features",
                 (long long)dim(d, "model.0.weight", 0));
        set(d, "ESRGAN RRDBNet", v);
        return true;
    }
    if (has(d, "body.0.weight") && dim(d, "body.0.weight", 1) == 3 &&
        get(d, "body.1.weight") && get(d, "body.1.weight")->ndim == 1) {
        int n = count_indices(d, "body.");
        char last[32];
        snprintf(last, sizeof(last), "body.%d.weight", n - 1);
        int64_t oc = dim(d, last, 0);
        int scale = oc == 48 ? 4 : oc == 12 ? 2 : oc == 27 ? 3 : oc == 3 ? 1 : 0;
        snprintf(v, sizeof(v), "compact, %lld features, %d convs, x%d",
                 (long long)dim(d, "body.0.weight", 0), (n + 1) / 2, scale);
        set(d, "SRVGG", v);
        return true;
    }
    return false;
}

static bool detect_at(det *d, const char *prefix)
{
    d->p = prefix;
    if (has(d, "zero_convs.0.0.weight") || has(d, "control_model.zero_convs.0.0.weight")) {
        if (has(d, "control_model.zero_convs.0.0.weight")) {
            snprintf(d->pbuf, sizeof(d->pbuf), "%scontrol_model.", prefix);
            d->p = d->pbuf;
        }
        return detect_unet(d, true);
    }
    return detect_unet(d, false) || detect_diffusers_unet(d) || detect_dit(d) ||
           detect_vae(d) || detect_taesd(d) || detect_text(d) || detect_upscaler(d);
}

static void add_component(vkf_detect_result *r, const char *name)
{
    size_t n = strlen(r->components);
    if (strstr(r->components, name))
        return;
    snprintf(r->components + n, sizeof(r->components) - n, "%s%s", n ? " " : "", name);
}

static void components(const vkf_weights *w, vkf_detect_result *r)
{
    static const struct { const char *prefix, *name; } parts[] = {
        {"first_stage_model.", "vae"},
        {"vae.", "vae"},
        {"cond_stage_model.transformer.", "clip_l"},
        {"cond_stage_model.model.", "openclip_h"},
        {"conditioner.embedders.0.transformer.", "clip_l"},
        {"conditioner.embedders.0.model.", "clip_g"},
        {"conditioner.embedders.1.model.", "clip_g"},
        {"text_encoders.clip_l.", "clip_l"},
        {"text_encoders.clip_g.", "clip_g"},
        {"text_encoders.t5xxl.", "t5xxl"},
        {"text_encoders.umt5xxl.", "umt5xxl"},
        {"text_encoder.", "text_encoder"},
        {"text_encoder_2.", "text_encoder_2"},
    };
    for (size_t i = 0; i < VKF_ARRAY_SIZE(parts); i++)
        if (has_prefix(w, parts[i].prefix))
            add_component(r, parts[i].name);
}

/* Most common first-two-component prefixes, for "unknown". */
static void top_prefixes(const vkf_weights *w, char *out, size_t size)
{
    enum { MAXP = 64 };
    char names[MAXP][64];
    int counts[MAXP], np = 0;
    int n = vkf_weights_count(w);
    for (int i = 0; i < n; i++) {
        const char *name = vkf_weights_at(w, i)->name;
        const char *dot = strchr(name, '.');
        if (dot && strchr(dot + 1, '.'))
            dot = strchr(dot + 1, '.');
        size_t len = dot ? (size_t)(dot - name) : strlen(name);
        if (len > 63)
            len = 63;
        int k = 0;
        while (k < np && (strlen(names[k]) != len || strncmp(names[k], name, len)))
            k++;
        if (k == np) {
            if (np == MAXP)
                continue;
            memcpy(names[np], name, len);
            names[np][len] = 0;
            counts[np++] = 0;
        }
        counts[k]++;
    }
    out[0] = 0;
    for (int shown = 0; shown < 5 && np; shown++) {
        int best = 0;
        for (int k = 1; k < np; k++)
            if (counts[k] > counts[best])
                best = k;
        if (counts[best] < 0)
            break;
        size_t l = strlen(out);
        snprintf(out + l, size - l, "%s%s (%d)", l ? ", " : "top prefixes: ", names[best],
                 counts[best]);
        counts[best] = -1;
    }
}

void vkf_weights_detect(const vkf_weights *w, vkf_detect_result *out)
{
    memset(out, 0, sizeof(*out));
    det d = {.w = w, .p = "", .r = out};
    components(w, out);
    if (detect_lora(&d))
        return;
    /* ComfyUI's unet_prefix_from_state_dict, plus the diffusers folder
     * components and wrappers of standalone parts. */
    static const char *const prefixes[] = {
        "model.diffusion_model.", "model.model.", "net.", "", "unet.", "transformer.",
        "controlnet.", "first_stage_model.", "vae.", "decoder.", "encoder.",
        "taesd_decoder.", "taesd_encoder.",
        "cond_stage_model.transformer.", "cond_stage_model.model.",
        "conditioner.embedders.1.model.", "conditioner.embedders.0.model.",
        "conditioner.embedders.0.transformer.", "text_encoders.t5xxl.transformer.",
        "text_encoders.umt5xxl.transformer.", "text_encoders.clip_l.transformer.",
        "text_encoder.", "params_ema.", "params.", "module.", "model.",
    };
    for (size_t i = 0; i < VKF_ARRAY_SIZE(prefixes); i++) {
        if (prefixes[i][0] && !has_prefix(w, prefixes[i]))
            continue;
        if (detect_at(&d, prefixes[i]))
            return;
    }
    d.p = "";
    char v[128];
    top_prefixes(w, v, sizeof(v));
    set(&d, "unknown", v);
}
