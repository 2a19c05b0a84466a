/*
 * vkflow — live previews while sampling (ComfyUI's latent_preview.py).
 *
 * After every sampler step the sampler nodes hand the step's denoised
 * estimate x0 (model space) to the preview hook; it turns the first image
 * of the batch into a PNG and gives it to the executor as a "preview"
 * event (vkf_exec_preview): the CLI writes it under --preview DIR and
 * lists it in --events, the server sends it as ComfyUI's binary
 * PREVIEW_IMAGE websocket message.
 *
 * Methods, as ComfyUI's --preview-method:
 *   none        no previews
 *   latent2rgb  a linear map of the latent channels to RGB (latent size)
 *   taesd       the TAESD decoder (vae_approx/taesd_decoder.*): full size
 *   auto        taesd when its decoder file is found, else latent2rgb
 */
#ifndef VKFLOW_PREVIEW_H
#define VKFLOW_PREVIEW_H

#include "common.h"
#include "guidance.h"

typedef enum vkf_preview_method {
    VKF_PREVIEW_NONE = 0,
    VKF_PREVIEW_AUTO,
    VKF_PREVIEW_LATENT2RGB,
    VKF_PREVIEW_TAESD,
} vkf_preview_method;

/* VKF_ENOTFOUND for an unknown name. */
int vkf_preview_method_from_name(const char *name, vkf_preview_method *out);
const char *vkf_preview_method_name(vkf_preview_method m);

/* Installs the process-wide hook (vkf_guidance_set_preview_hook) with this
 * method; NONE removes it.  The TAESD decoder is loaded on first use and
 * kept until vkf_preview_shutdown(). */
void vkf_preview_install(vkf_preview_method m);
void vkf_preview_shutdown(void);
/* Drops the decoder if it lives on gpu (the executor calls this before it
 * destroys its device). */
void vkf_preview_release(const vkf_gpu *gpu);

/* ComfyUI's Latent2RGB for 4-channel SD latents: the first image of x0
 * [B, 4, h, w] → h·w·3 bytes of RGB (((x·F) + 1) / 2 clamped, ×255,
 * truncated as torch's uint8 cast).  *rgb vkf_malloc'ed. */
int vkf_preview_latent2rgb(const float *x0, const int64_t *shape, int ndim, uint8_t **rgb);

/* An 8-bit RGB PNG in memory (*png vkf_malloc'ed). */
int vkf_png_encode_rgb8(const uint8_t *rgb, int width, int height, uint8_t **png,
                        size_t *size);

#endif /* VKFLOW_PREVIEW_H */
