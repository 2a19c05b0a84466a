/*
 * Checkpoint loading (vkflow/checkpoint.h): SD1.x / SD2.x single files and
 * diffusers folders into MODEL + CLIP + VAE, diffusion-model files
 * (UNETLoader) and text-encoder files (CLIPLoader), with ComfyUI's defaults
 * for those families.  Everything else is refused with a sentence that
 * says what the file is.
 */
#include <stdio.h>
#include <string.h>

#include "vkflow/checkpoint.h"

/* ---- refusal messages ---------------------------------------------------- */

static bool has_prefix(const vkf_weights *w, const char *prefix)
{
    return vkf_weights_find_prefix(w, prefix) >= 0;
}

/* "a" or "an" before a family name: acronyms by the sound of their first
 * letter ("an SDXL", "an SD3"), words by their first letter ("a Flux"). */
static const char *article(const char *s)
{
    if (!s[0])
        return "a";
    bool acronym = s[1] >= 'A' && s[1] <= 'Z';
    if (acronym)
        return strchr("AEFHILMNORSX", s[0]) ? "an" : "a";
    return strchr("AEIOUaeiou", s[0]) ? "an" : "a";
}

static bool is_text_family(const char *fam)
{
    return !strcmp(fam, "CLIP-L") || !strcmp(fam, "OpenCLIP-H") || !strcmp(fam, "OpenCLIP-bigG") ||
           !strcmp(fam, "T5") || !strcmp(fam, "umT5");
}

static bool is_sd_family(const char *fam)
{
    /* "UNet" is a CompVis UNet of a size detection does not know (tiny
     * synthesized models); the UNet loader decides from the full shapes. */
    return !strcmp(fam, "SD1.x") || !strcmp(fam, "SD2.x") || !strcmp(fam, "UNet") ||
           !strcmp(fam, "SDXL base") || !strcmp(fam, "SDXL refiner");
}

/* The family without its size or version suffix: "SDXL base" -> "SDXL",
 * "Wan 2.1" -> "Wan". */
static void family_base(const char *fam, char *buf, size_t n)
{
    snprintf(buf, n, "%s", fam);
    char *sp = strchr(buf, ' ');
    if (sp)
        *sp = 0;
}

static int refuse(const vkf_detect_result *d, const char *name, vkf_errbuf *e)
{
    const char *fam = d->family, *var = d->variant;
    const char *open = var[0] ? " (" : "", *close = var[0] ? ")" : "";
    if (!strcmp(fam, "unknown"))
        return vkf_errbuf_set(e, VKF_EUNSUPPORTED,
                              "%s: not a model checkpoint vkflow recognises%s%s%s", name, open,
                              var, close);
    if (!strcmp(fam, "LoRA"))
        return vkf_errbuf_set(e, VKF_EUNSUPPORTED,
                              "%s: this is a LoRA%s%s%s, not a checkpoint; load it with "
                              "LoraLoader (models/loras)", name, open, var, close);
    if (!strcmp(fam, "ControlNet"))
        return vkf_errbuf_set(e, VKF_EUNSUPPORTED,
                              "%s: this is a ControlNet%s%s%s, not a checkpoint; load it with "
                              "ControlNetLoader (models/controlnet)", name, open, var, close);
    if (!strcmp(fam, "VAE") || !strcmp(fam, "TAESD") || !strcmp(fam, "TAEHV"))
        return vkf_errbuf_set(e, VKF_EUNSUPPORTED,
                              "%s: this is %s %s%s%s%s, not a checkpoint; load it with VAELoader "
                              "(models/vae)", name, article(fam), fam, open, var, close);
    if (is_text_family(fam))
        return vkf_errbuf_set(e, VKF_EUNSUPPORTED,
                              "%s: this is a text encoder (%s%s%s%s), not a checkpoint; load it "
                              "with CLIPLoader (models/text_encoders)", name, fam,
                              var[0] ? ", " : "", var, "");
    if (!strcmp(fam, "ESRGAN RRDBNet") || !strcmp(fam, "SRVGG"))
        return vkf_errbuf_set(e, VKF_EUNSUPPORTED,
                              "%s: this is an upscale model (%s), not a checkpoint; load it with "
                              "UpscaleModelLoader (models/upscale_models)", name, fam);
    char base[64];
    family_base(fam, base, sizeof(base));
    return vkf_errbuf_set(e, VKF_EUNSUPPORTED,
                          "%s: this is %s %s checkpoint%s%s%s; %s is not supported yet (vkflow "
                          "loads SD1.x and SD2.x checkpoints)", name, article(fam), fam, open,
                          var, close, base);
}

/* ---- layout -------------------------------------------------------------- */

int vkf_checkpoint_inspect(const vkf_weights *w, const char *name, vkf_checkpoint_layout *out,
                           vkf_errbuf *e)
{
    memset(out, 0, sizeof(*out));
    if (!name)
        name = "checkpoint";
    vkf_weights_detect(w, &out->detect);
    const vkf_detect_result *d = &out->detect;
    if (!is_sd_family(d->family))
        return refuse(d, name, e);
    if (!strncmp(d->variant, "unCLIP", 6))
        return vkf_errbuf_set(e, VKF_EUNSUPPORTED,
                              "%s: this is an %s %s checkpoint; unCLIP models are not supported "
                              "yet", name, d->family, d->variant);
    if (!strcmp(d->prefix, "model.diffusion_model.")) {
        snprintf(out->unet_prefix, sizeof(out->unet_prefix), "%s", d->prefix);
        if (has_prefix(w, "cond_stage_model.transformer."))
            snprintf(out->clip_prefix, sizeof(out->clip_prefix), "cond_stage_model.transformer.");
        else if (has_prefix(w, "cond_stage_model.model."))
            snprintf(out->clip_prefix, sizeof(out->clip_prefix), "cond_stage_model.model.");
        else if (has_prefix(w, "conditioner.embedders."))
            /* SDXL: 0.transformer.text_model (CLIP-L) + 1.model (bigG), or
             * the refiner's 0.model (bigG) */
            snprintf(out->clip_prefix, sizeof(out->clip_prefix), "conditioner.embedders.");
        if (has_prefix(w, "first_stage_model."))
            snprintf(out->vae_prefix, sizeof(out->vae_prefix), "first_stage_model.");
        return 0;
    }
    if (!strcmp(d->prefix, "unet.")) {
        out->diffusers = true;
        snprintf(out->unet_prefix, sizeof(out->unet_prefix), "unet.");
        if (has_prefix(w, "text_encoder."))
            snprintf(out->clip_prefix, sizeof(out->clip_prefix), "text_encoder.");
        if (has_prefix(w, "vae."))
            snprintf(out->vae_prefix, sizeof(out->vae_prefix), "vae.");
        return 0;
    }
    return vkf_errbuf_set(e, VKF_EUNSUPPORTED,
                          "%s: this file holds only a diffusion model (%s UNet%s%s, keys under "
                          "'%s'), no text encoder or VAE; load it with UNETLoader "
                          "(models/diffusion_models)", name,
                          !strcmp(d->family, "UNet") ? "CompVis" : d->family,
                          d->variant[0] ? ", " : "", d->variant, d->prefix);
}

/* ---- objects ------------------------------------------------------------- */

vkf_latent_format vkf_latent_format_sd(void)
{
    return (vkf_latent_format){.channels = 4, .scale_factor = 0.18215f, .shift = 0.0f};
}

/* comfy/latent_formats.py SDXL */
static vkf_latent_format latent_format_of(const vkf_diffusion_model *dm)
{
    vkf_latent_format lf = vkf_latent_format_sd();
    if (!strncmp(dm->arch, "SDXL", 4))
        lf.scale_factor = 0.13025f;
    return lf;
}

int vkf_checkpoint_make_model(vkf_diffusion_model *dm, vkf_model **out)
{
    *out = NULL;
    if (!dm)
        return VKF_EINVAL;
    vkf_model_sampling *ms = NULL;
    int err = vkf_model_sampling_discrete(&ms, dm->prediction, 0.00085, 0.012, 1000, false);
    if (err < 0)
        return err;
    *out = vkf_model_new(dm, ms, latent_format_of(dm));
    if (!*out) {
        vkf_model_sampling_destroy(&ms);
        return VKF_ENOMEM;
    }
    return 0;
}

int vkf_checkpoint_make_clip(vkf_clip_text *text, vkf_clip **out)
{
    *out = NULL;
    if (!text)
        return VKF_EINVAL;
    vkf_clip_tokenizer *tok = NULL;
    int err = vkf_clip_tokenizer_create(&tok);
    if (err < 0) {
        vkf_clip_text_destroy(&text);
        return err;
    }
    const vkf_clip_text_config *cfg = vkf_clip_text_get_config(text);
    bool open_h = cfg && cfg->kind == VKF_CLIP_OPEN_H;
    /* SD1ClipModel: layer "last", pad with EOS; SD2ClipModel: layer
     * "penultimate", SD2Tokenizer pads with 0. */
    *out = vkf_clip_new(tok, text, open_h ? -2 : 0, !open_h);
    return *out ? 0 : VKF_ENOMEM;   /* vkf_clip_new frees tok, text on failure */
}

void vkf_checkpoint_clear(vkf_checkpoint *c)
{
    if (!c)
        return;
    vkf_object *o = c->model ? &c->model->obj : NULL;
    vkf_object_unref(&o);
    o = c->clip ? &c->clip->obj : NULL;
    vkf_object_unref(&o);
    o = c->vae ? &c->vae->obj : NULL;
    vkf_object_unref(&o);
    c->model = NULL;
    c->clip = NULL;
    c->vae = NULL;
}

/* Prefixes a part loader's message with the file name when it lacks it. */
static int with_name(vkf_errbuf *e, int err, const char *name, const char *part)
{
    if (!e)
        return err;
    if (e->msg[0] && strstr(e->msg, name))
        return err;
    char tmp[sizeof(e->msg)];
    snprintf(tmp, sizeof(tmp), "%s", e->msg[0] ? e->msg : vkf_strerror(err));
    int n = snprintf(e->msg, sizeof(e->msg), "%.200s: %s: ", name, part);
    if (n > 0 && (size_t)n < sizeof(e->msg))
        snprintf(e->msg + n, sizeof(e->msg) - (size_t)n, "%.*s", (int)(sizeof(e->msg) - (size_t)n - 1), tmp);
    return err;
}

int vkf_checkpoint_load_weights(vkf_gpu *gpu, vkf_weights *w, const char *name, unsigned parts,
                                vkf_checkpoint *out, vkf_errbuf *e)
{
    memset(out, 0, sizeof(*out));
    if (!gpu || !w)
        return vkf_errbuf_set(e, VKF_EINVAL, "checkpoint loader: no device or weights");
    if (!name)
        name = "checkpoint";
    int err = vkf_checkpoint_inspect(w, name, &out->layout, e);
    if (err < 0)
        return err;
    const vkf_checkpoint_layout *L = &out->layout;
    if ((parts & VKF_CKPT_CLIP) && !L->clip_prefix[0]) {
        err = vkf_errbuf_set(e, VKF_EUNSUPPORTED,
                             "%s: this %s checkpoint has no text encoder (no %s keys); load one "
                             "with CLIPLoader", name, L->detect.family,
                             L->diffusers ? "text_encoder." : "cond_stage_model.");
        goto fail;
    }
    if ((parts & VKF_CKPT_VAE) && !L->vae_prefix[0]) {
        err = vkf_errbuf_set(e, VKF_EUNSUPPORTED,
                             "%s: this %s checkpoint has no VAE (no %s keys); load one with "
                             "VAELoader", name, L->detect.family,
                             L->diffusers ? "vae." : "first_stage_model.");
        goto fail;
    }
    if (parts & VKF_CKPT_MODEL) {
        vkf_diffusion_model *dm = NULL;
        err = vkf_unet_load(gpu, w, L->unet_prefix, &dm, e);
        if (err < 0) {
            with_name(e, err, name, "diffusion model");
            goto fail;
        }
        err = vkf_checkpoint_make_model(dm, &out->model);
        vkf_diffusion_model_unref(&dm);   /* the MODEL holds its own reference */
        if (err < 0) {
            vkf_errbuf_set(e, err, "%s: %s", name, vkf_strerror(err));
            goto fail;
        }
    }
    if ((parts & VKF_CKPT_CLIP) && !strcmp(L->clip_prefix, "conditioner.embedders.")) {
        /* SDXL (base: CLIP-L + bigG; refiner: bigG alone) */
        bool base = has_prefix(w, "conditioner.embedders.1.model.");
        vkf_clip_text *tl = NULL, *tg = NULL;
        vkf_clip_tokenizer *tok = NULL;
        err = vkf_clip_text_load(gpu, w, base ? "conditioner.embedders.1.model."
                                              : "conditioner.embedders.0.model.", &tg, e);
        if (err >= 0 && base)
            err = vkf_clip_text_load(gpu, w, "conditioner.embedders.0.transformer.", &tl, e);
        if (err < 0) {
            vkf_clip_text_destroy(&tg);
            with_name(e, err, name, "text encoder");
            goto fail;
        }
        err = vkf_clip_tokenizer_create(&tok);
        if (err >= 0 && !(out->clip = vkf_clip_new_sdxl(tok, tl, tg)))
            err = VKF_ENOMEM;
        if (err < 0) {
            if (!tok) {
                vkf_clip_text_destroy(&tl);
                vkf_clip_text_destroy(&tg);
            }
            vkf_errbuf_set(e, err, "%s: %s", name, vkf_strerror(err));
            goto fail;
        }
    } else if (parts & VKF_CKPT_CLIP) {
        vkf_clip_text *text = NULL;
        err = vkf_clip_text_load(gpu, w, L->clip_prefix, &text, e);
        if (err < 0) {
            with_name(e, err, name, "text encoder");
            goto fail;
        }
        err = vkf_checkpoint_make_clip(text, &out->clip);
        if (err < 0) {
            vkf_errbuf_set(e, err, "%s: %s", name, vkf_strerror(err));
            goto fail;
        }
    }
    if (parts & VKF_CKPT_VAE) {
        vkf_vae_model *vm = NULL;
        err = vkf_vae_kl_load(gpu, w, L->vae_prefix, &vm, e);
        if (err < 0) {
            with_name(e, err, name, "VAE");
            goto fail;
        }
        out->vae = vkf_vae_new(vm);
        vkf_vae_model_unref(&vm);
        if (!out->vae) {
            err = vkf_errbuf_set(e, VKF_ENOMEM, "%s: out of memory", name);
            goto fail;
        }
    }
    return 0;
fail:
    vkf_checkpoint_clear(out);
    return err;
}

static const char *base_name(const char *path)
{
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/')
        n--;
    const char *s = path;
    for (size_t i = 0; i + 1 < n; i++)
        if (path[i] == '/')
            s = path + i + 1;
    return s;
}

static int open_weights(const char *path, const vkf_log *log, vkf_weights **w, vkf_errbuf *e)
{
    int err = vkf_weights_open(path, w, log);
    if (err == VKF_ENOTFOUND)
        return vkf_errbuf_set(e, err, "%s: no such file or folder", path);
    if (err < 0)
        return vkf_errbuf_set(e, err, "%s: cannot read the weights (%s)", path,
                              vkf_strerror(err));
    return 0;
}

int vkf_checkpoint_load(vkf_gpu *gpu, const char *path, unsigned parts, const vkf_log *log,
                        vkf_checkpoint *out, vkf_errbuf *e)
{
    memset(out, 0, sizeof(*out));
    if (!path)
        return vkf_errbuf_set(e, VKF_EINVAL, "checkpoint loader: no path");
    vkf_weights *w = NULL;
    int err = open_weights(path, log, &w, e);
    if (err < 0)
        return err;
    err = vkf_checkpoint_load_weights(gpu, w, base_name(path), parts, out, e);
    vkf_weights_close(&w);
    return err;
}

/* ---- single parts -------------------------------------------------------- */

int vkf_diffusion_model_load_file(vkf_gpu *gpu, const char *path, const vkf_log *log,
                                  vkf_model **out, vkf_errbuf *e)
{
    *out = NULL;
    vkf_weights *w = NULL;
    int err = open_weights(path, log, &w, e);
    if (err < 0)
        return err;
    const char *name = base_name(path);
    vkf_detect_result d;
    vkf_weights_detect(w, &d);
    /* A bare CompVis UNet (prefix ""), a checkpoint's model.diffusion_model.,
     * a diffusers unet folder or pipeline ("" / "unet."). */
    if (!is_sd_family(d.family)) {
        if (!strcmp(d.family, "unknown") || is_text_family(d.family) || !strcmp(d.family, "VAE") ||
            !strcmp(d.family, "LoRA") || !strcmp(d.family, "ControlNet") ||
            !strcmp(d.family, "TAESD")) {
            err = vkf_errbuf_set(e, VKF_EUNSUPPORTED,
                                 "%s: not a diffusion model: detected %s%s%s", name, d.family,
                                 d.variant[0] ? ", " : "", d.variant);
        } else {
            char base[64];
            family_base(d.family, base, sizeof(base));
            err = vkf_errbuf_set(e, VKF_EUNSUPPORTED,
                                 "%s: this is %s %s diffusion model%s%s%s; %s is not supported "
                                 "yet (vkflow runs SD1.x and SD2.x)", name, article(d.family),
                                 d.family, d.variant[0] ? " (" : "", d.variant,
                                 d.variant[0] ? ")" : "", base);
        }
        goto done;
    }
    if (!strncmp(d.variant, "unCLIP", 6)) {
        err = vkf_errbuf_set(e, VKF_EUNSUPPORTED, "%s: %s %s models are not supported yet",
                             name, d.family, d.variant);
        goto done;
    }
    vkf_diffusion_model *dm = NULL;
    err = vkf_unet_load(gpu, w, d.prefix, &dm, e);
    if (err < 0) {
        with_name(e, err, name, "diffusion model");
        goto done;
    }
    err = vkf_checkpoint_make_model(dm, out);
    vkf_diffusion_model_unref(&dm);
    if (err < 0)
        vkf_errbuf_set(e, err, "%s: %s", name, vkf_strerror(err));
done:
    vkf_weights_close(&w);
    return err;
}

int vkf_text_encoder_load_file(vkf_gpu *gpu, const char *path, const vkf_log *log,
                               vkf_clip **out, vkf_errbuf *e)
{
    *out = NULL;
    vkf_weights *w = NULL;
    int err = open_weights(path, log, &w, e);
    if (err < 0)
        return err;
    const char *name = base_name(path);
    vkf_detect_result d;
    vkf_weights_detect(w, &d);
    const char *prefix = NULL;
    /* The text tower of a whole checkpoint is fine too. */
    if (has_prefix(w, "cond_stage_model.transformer."))
        prefix = "cond_stage_model.transformer.";
    else if (has_prefix(w, "cond_stage_model.model."))
        prefix = "cond_stage_model.model.";
    else if (!strcmp(d.family, "CLIP-L") || !strcmp(d.family, "OpenCLIP-H"))
        prefix = d.prefix;
    if (!prefix) {
        if (!strcmp(d.family, "OpenCLIP-bigG"))
            err = vkf_errbuf_set(e, VKF_EUNSUPPORTED,
                                 "%s: this is SDXL's OpenCLIP-bigG text encoder; SDXL is not "
                                 "supported yet (type stable_diffusion takes CLIP-L for SD1.x "
                                 "or OpenCLIP-H for SD2.x)", name);
        else if (!strcmp(d.family, "T5") || !strcmp(d.family, "umT5"))
            err = vkf_errbuf_set(e, VKF_EUNSUPPORTED,
                                 "%s: this is a %s text encoder (%s); T5 encoders are not "
                                 "supported yet", name, d.family, d.variant);
        else
            err = vkf_errbuf_set(e, VKF_EUNSUPPORTED,
                                 "%s: not a CLIP-L (SD1.x) or OpenCLIP-H (SD2.x) text encoder: "
                                 "detected %s%s%s", name, d.family, d.variant[0] ? ", " : "",
                                 d.variant);
        goto done;
    }
    vkf_clip_text *text = NULL;
    err = vkf_clip_text_load(gpu, w, prefix, &text, e);
    if (err < 0) {
        with_name(e, err, name, "text encoder");
        goto done;
    }
    err = vkf_checkpoint_make_clip(text, out);
    if (err < 0)
        vkf_errbuf_set(e, err, "%s: %s", name, vkf_strerror(err));
done:
    vkf_weights_close(&w);
    return err;
}

int vkf_text_encoder_load_sdxl(vkf_gpu *gpu, const char *path1, const char *path2,
                               const vkf_log *log, vkf_clip **out, vkf_errbuf *e)
{
    *out = NULL;
    const char *paths[2] = {path1, path2};
    vkf_clip_text *t[2] = {NULL, NULL};
    int err = 0;
    for (int i = 0; i < 2 && err >= 0; i++) {
        vkf_weights *w = NULL;
        if ((err = open_weights(paths[i], log, &w, e)) < 0)
            break;
        const char *name = base_name(paths[i]);
        vkf_detect_result d;
        vkf_weights_detect(w, &d);
        const char *prefix = has_prefix(w, "text_model.") ? ""
                             : has_prefix(w, "transformer.resblocks.") ? ""
                             : d.prefix;
        err = vkf_clip_text_load(gpu, w, prefix, &t[i], e);
        if (err < 0)
            with_name(e, err, name, "text encoder");
        vkf_weights_close(&w);
    }
    if (err >= 0) {
        bool l0 = vkf_clip_text_get_config(t[0])->kind == VKF_CLIP_L;
        bool l1 = vkf_clip_text_get_config(t[1])->kind == VKF_CLIP_L;
        if (l0 == l1)
            err = vkf_errbuf_set(e, VKF_EUNSUPPORTED,
                                 "DualCLIPLoader type sdxl needs one CLIP-L and one "
                                 "OpenCLIP-bigG text encoder; %s and %s are both %s",
                                 base_name(path1), base_name(path2),
                                 l0 ? "CLIP-L" : "OpenCLIP towers");
        if (err >= 0) {
            vkf_clip_tokenizer *tok = NULL;
            err = vkf_clip_tokenizer_create(&tok);
            if (err >= 0) {
                *out = vkf_clip_new_sdxl(tok, l0 ? t[0] : t[1], l0 ? t[1] : t[0]);
                t[0] = t[1] = NULL;   /* owned (or freed) by vkf_clip_new_sdxl */
                if (!*out)
                    err = VKF_ENOMEM;
            }
            if (err < 0)
                vkf_errbuf_set(e, err, "DualCLIPLoader: %s", vkf_strerror(err));
        }
    }
    vkf_clip_text_destroy(&t[0]);
    vkf_clip_text_destroy(&t[1]);
    return err;
}
