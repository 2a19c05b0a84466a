/*
 * vkflow — model files into MODEL / CLIP / VAE objects: ComfyUI's
 * load_checkpoint_guess_config (CheckpointLoaderSimple), load_diffusion_model
 * (UNETLoader) and load_clip (CLIPLoader), for the families vkflow runs.
 *
 * Supported: SD1.x and SD2.x (eps and v), SDXL base and refiner single
 * files (conditioner.embedders.*; latent scale 0.13025; CLIP from
 * vkf_clip_new_sdxl), single-file CompVis/A1111
 * checkpoints (model.diffusion_model. / cond_stage_model.transformer. or
 * cond_stage_model.model. / first_stage_model.) and diffusers pipeline
 * folders (unet/ text_encoder/ vae/).  Anything else is refused with
 * VKF_EUNSUPPORTED and a sentence naming what the file is ("x.safetensors:
 * this is an SDXL base checkpoint; SDXL is not supported yet ...").
 *
 * Defaults, as ComfyUI's supported_models SD15 / SD20:
 *   sampling   ModelSamplingDiscrete, linear betas 0.00085 .. 0.012, 1000
 *              steps; eps, or v where the UNet loader detects v (SD2 768-v)
 *   latent     4 channels, scale 0.18215, shift 0
 *   CLIP       CLIP-L (SD1): layer 0 ("last"), pad with EOS;
 *              OpenCLIP-H (SD2): layer -2 (penultimate), pad with 0
 * The CLIP defaults follow the text tower that was loaded, so a CLIP-L file
 * given to CLIPLoader behaves as SD1's and an OpenCLIP-H file as SD2's.
 *
 * Weights are uploaded to gpu during the call; the file is closed before
 * returning (the objects hold no reference to it).
 */
#ifndef VKFLOW_CHECKPOINT_H
#define VKFLOW_CHECKPOINT_H

#include "models.h"

/* Which parts to load (ComfyUI's output_vae / output_clip). */
enum {
    VKF_CKPT_MODEL = 1 << 0,
    VKF_CKPT_CLIP = 1 << 1,
    VKF_CKPT_VAE = 1 << 2,
    VKF_CKPT_ALL = 7,
};

/* Where the parts of a checkpoint are. */
typedef struct vkf_checkpoint_layout {
    vkf_detect_result detect;   /* what vkf_weights_detect found */
    bool diffusers;             /* a diffusers pipeline folder */
    char unet_prefix[64];       /* "model.diffusion_model." or "unet." */
    char clip_prefix[64];       /* "cond_stage_model.transformer." / ".model." /
                                   "text_encoder."; "" if there is none */
    char vae_prefix[64];        /* "first_stage_model." / "vae."; "" if none */
} vkf_checkpoint_layout;

/* The objects of a loaded checkpoint; parts not asked for stay NULL. */
typedef struct vkf_checkpoint {
    vkf_model *model;
    vkf_clip *clip;
    vkf_vae *vae;
    vkf_checkpoint_layout layout;
} vkf_checkpoint;

/*
 * Decides whether w is an SD1.x/SD2.x checkpoint and where its parts are.
 * `name` is used in messages (the file name).  VKF_EUNSUPPORTED with e
 * naming the family for anything else: other model families, a lone UNet,
 * VAE, text encoder or LoRA (with the loader to use), unknown files.
 */
int vkf_checkpoint_inspect(const vkf_weights *w, const char *name, vkf_checkpoint_layout *out,
                           vkf_errbuf *e);

/* Loads the parts in `parts` from an opened weights object.  A checkpoint
 * without a text encoder or VAE fails only if that part is asked for. */
int vkf_checkpoint_load_weights(vkf_gpu *gpu, vkf_weights *w, const char *name, unsigned parts,
                                vkf_checkpoint *out, vkf_errbuf *e);
/* Opens path (file or diffusers folder), loads, closes. */
int vkf_checkpoint_load(vkf_gpu *gpu, const char *path, unsigned parts, const vkf_log *log,
                        vkf_checkpoint *out, vkf_errbuf *e);
/* Drops the object references; NULL-safe. */
void vkf_checkpoint_clear(vkf_checkpoint *c);

/*
 * UNETLoader: a diffusion-model file (bare CompVis keys, or a checkpoint's
 * model.diffusion_model., or a diffusers unet folder) → MODEL with the
 * family's sampling and latent format.
 */
int vkf_diffusion_model_load_file(vkf_gpu *gpu, const char *path, const vkf_log *log,
                                  vkf_model **out, vkf_errbuf *e);

/*
 * CLIPLoader type "stable_diffusion": a CLIP-L (SD1) or OpenCLIP-H (SD2)
 * text encoder file (HF or open_clip names, bare or under a checkpoint's
 * cond_stage_model.) → CLIP with that tower's defaults.
 */
int vkf_text_encoder_load_file(vkf_gpu *gpu, const char *path, const vkf_log *log,
                               vkf_clip **out, vkf_errbuf *e);
/*
 * DualCLIPLoader type "sdxl": one CLIP-L and one OpenCLIP-bigG text
 * encoder file, in either order (told apart by the tower kind: quick-GELU
 * CLIP-L vs the GELU OpenCLIP tower) → the SDXL CLIP (vkf_clip_new_sdxl).
 */
int vkf_text_encoder_load_sdxl(vkf_gpu *gpu, const char *path1, const char *path2,
                               const vkf_log *log, vkf_clip **out, vkf_errbuf *e);

/* The pieces, for loaders that assemble objects themselves. */
/* MODEL for an SD1.x/SD2.x diffusion model: discrete sampling with the
 * model's prediction (zsnr off), SD latent format.  dm: ref taken. */
int vkf_checkpoint_make_model(vkf_diffusion_model *dm, vkf_model **out);
/* CLIP from a text model (ownership taken, also on failure) with a new
 * tokenizer and the defaults of the tower's kind. */
int vkf_checkpoint_make_clip(vkf_clip_text *text, vkf_clip **out);
/* ComfyUI's SD1.x/SD2.x latent format. */
vkf_latent_format vkf_latent_format_sd(void);

#endif /* VKFLOW_CHECKPOINT_H */
