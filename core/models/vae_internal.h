/* Internals shared by the VAE files (vae.c, taesd.c, vae_synth.c) and
 * their tests. */
#ifndef VKF_MODELS_VAE_INTERNAL_H
#define VKF_MODELS_VAE_INTERNAL_H

#include <stddef.h>

#include "vkflow/models.h"

/* clamp(x, 0, 1) as relu(x) - relu(x - 1) (f32 out). */
int vkf_vae_clamp01(vkf_gpu *gpu, vkf_tensor *x, vkf_tensor **out);

/* Largest numel one tensor may have on this device (4 chunks of the
 * binding limit). */
int64_t vkf_vae_max_numel(vkf_gpu *gpu);

/* The diffusers (AutoencoderKL) name of a CompVis VAE key (no prefix),
 * for a model with nlev resolution levels; 0 or VKF_EINVAL if the name is
 * not a VAE key.  attn_old picks query/key/value/proj_attn instead of
 * to_q/to_k/to_v/to_out.0. */
int vkf_vae_diffusers_name(const char *compvis, int nlev, bool attn_old, char *out,
                           size_t size);

/* vkf_synth_vae with options: linear_attn writes the mid-block q/k/v/
 * proj_out weights as [C, C] (as some checkpoints store them). */
int vkf_synth_vae_ex(vkf_st_writer *w, const char *prefix, vkf_synth_scale scale,
                     vkf_wdtype dtype, bool linear_attn);

#endif
