/*
 * vkflow — ComfyUI's sampling driver for SD-style models
 * (core/models/guidance.c; docs/sampling.md "Sampling driver").
 *
 * The equivalent of comfy/samplers.py (process_conds, calc_cond_batch,
 * cfg_function, CFGGuider, KSamplerX0Inpaint, KSAMPLER.sample, KSampler's
 * step window), comfy/sample.py (fix_empty_latent_channels, prepare_noise,
 * sample, sample_custom), comfy/sampler_helpers.py (prepare_mask) and
 * nodes.py common_ksampler.
 *
 * Layering: everything the sampler touches (x, denoised, masks, counts)
 * is a host float32 array computed in ComfyUI's order of float32
 * operations; a model call uploads the batched network input once, runs
 * vkf_diffusion_model.forward and downloads its output once.  Conditioning
 * tensors stay on the GPU (batched contexts are cached across steps).
 */
#ifndef VKFLOW_GUIDANCE_H
#define VKFLOW_GUIDANCE_H

#include "models.h"
#include "node.h"
#include "samplers.h"
#include "types.h"

/* ------------------------------------------------------------------------ */
/* what is guided: CFGGuider / BasicGuider / DualCFGGuider                  */

typedef struct vkf_guide_spec {
    const vkf_model *model;
    const vkf_conditioning *positive;   /* required */
    const vkf_conditioning *negative;   /* NULL: BasicGuider (positive only) */
    const vkf_conditioning *middle;     /* DualCFGGuider's cond2, else NULL */
    double cfg;          /* CFG scale; DualCFGGuider: cfg_conds */
    double cfg2;         /* DualCFGGuider: cfg_cond2_negative */
    bool dual;           /* DualCFGGuider: positive=cond1, middle=cond2, negative */
    bool nested;         /* DualCFGGuider style "nested" (else "regular") */
    /* Most cond chunks × latent batch rows put in one forward; 0 = no limit
     * (ComfyUI batches as far as free memory allows; the result does not
     * depend on how the work is split). */
    int max_batch_rows;
} vkf_guide_spec;

/*
 * ADM vector of the SDXL class (comfy/model_base.py SDXL.encode_adm,
 * SDXLRefiner.encode_adm): the pooled CLIP output followed by 256-wide
 * sinusoidal embeddings (Timestep(256): cos half first, period 10000,
 * float32) of height, width, crop_h, crop_w, then target_height,
 * target_width (base) or aesthetic_score (refiner).  y has pooled_dim +
 * 6·256 (base) or + 5·256 (refiner) floats.
 */
typedef struct vkf_adm_sizes {
    double height, width, crop_h, crop_w, target_height, target_width;
    double aesthetic_score;
    bool refiner;
} vkf_adm_sizes;
#define VKF_ADM_FOURIER 256
/* sin/cos embedding of t: out[dim] (dim even): cos(t·f_i), then sin(t·f_i),
 * f_i = exp(-ln(10000)·i/(dim/2)), all float32 as torch computes it. */
void vkf_fourier_embed(float t, int dim, float *out);
void vkf_sdxl_encode_adm(const float *pooled, int pooled_dim, const vkf_adm_sizes *s, float *y);

/* A spec from a GUIDER object (BasicGuider, CFGGuider, DualCFGGuider). */
void vkf_guide_spec_from_guider(const vkf_guider *g, vkf_guide_spec *out);

/* ------------------------------------------------------------------------ */
/* prepared guidance: process_conds + predict_noise                         */

typedef struct vkf_guidance vkf_guidance;

/*
 * process_conds for a latent of `shape` ([B, C, h, w], C = the model's
 * latent channels): areas in percent resolved, cond masks resized
 * (bilinear) and set_area_to_bounds applied, start/end percent turned
 * into sigmas, c_concat built for inpaint models (in_channels = C + 5:
 * mask + masked image, from the entry's concat_mask/concat_latent_image or
 * else the sampling denoise mask and latent), and every area cond given an
 * opposite with the same area (create_cond_with_same_area_if_none).
 *   latent_image: the latent in model space (after process_in), B·C·h·w
 *                 floats, or NULL (treated as zeros).
 *   denoise_mask: the prepared noise mask [B, C, h, w] or NULL.
 */
int vkf_guidance_create(const vkf_guide_spec *spec, const int64_t *shape, int ndim,
                        const float *latent_image, const float *denoise_mask,
                        vkf_guidance **out, vkf_errbuf *e);
void vkf_guidance_destroy(vkf_guidance **g);

/*
 * CFGGuider.predict_noise (sampling_function / DualCFG's predict_noise):
 * denoised = D(x, σ) with CFG, x and denoised B·C·h·w floats.
 * uncond_denoised (NULL if not wanted) receives the unconditional
 * prediction handed to CFG++ samplers; asking for it disables the
 * cfg = 1 skip of the negative pass, as those samplers do in ComfyUI.
 * Returns VKF_EINTERRUPTED if vkf_guidance_set_ctx's context was
 * interrupted before a model call.
 */
int vkf_guidance_predict(vkf_guidance *g, const float *x, float sigma, float *denoised,
                         float *uncond_denoised);
/* Progress/interrupt context checked before each model call (may be NULL). */
void vkf_guidance_set_ctx(vkf_guidance *g, vkf_exec_ctx *ctx);
/* Counters since create: model forwards and the batch rows they ran. */
void vkf_guidance_stats(const vkf_guidance *g, long *forwards, long *rows);
/* The last error message (model failures, shape mismatches). */
const char *vkf_guidance_error(const vkf_guidance *g);

/* ------------------------------------------------------------------------ */
/* sampling                                                                 */

/* Called after every sampler step with the step's denoised estimate x0
 * in model space (before process_out), B·C·h·w floats of `shape`.  A
 * non-zero return stops sampling with that code. */
typedef int (*vkf_x0_callback)(void *opaque, vkf_exec_ctx *ctx, const vkf_model *model,
                               int step, int total, const float *x0, const int64_t *shape,
                               int ndim);

/* Process-wide preview hook used by the sampler nodes (TAESD live
 * previews); NULL by default.  Set once at start-up. */
void vkf_guidance_set_preview_hook(vkf_x0_callback fn, void *opaque);
void vkf_guidance_get_preview_hook(vkf_x0_callback *fn, void **opaque);

/* The sampler loop; vkf_sample unless a test substitutes its own. */
typedef int (*vkf_sample_fn)(const vkf_sample_params *p, const vkf_denoiser *model,
                             const float *sigmas, int n_sigmas, float *x,
                             const vkf_log *log);

typedef struct vkf_guided_sample_params {
    const vkf_guide_spec *guide;
    /* The sampler: a SAMPLER object (has_params etc.) or else a name. */
    const vkf_sampler_obj *sampler;
    const char *sampler_name;
    const float *sigmas;
    int n_sigmas;
    /* The latent in raw VAE space and the noise, both `shape`. */
    const int64_t *shape;
    int ndim;
    const float *latent;
    const float *noise;
    /* LATENT noise_mask (any [.., H, W] layout ComfyUI accepts) or NULL. */
    vkf_tensor *noise_mask;
    uint64_t seed;
    vkf_randn_kernel kernel;
    vkf_exec_ctx *ctx;        /* progress per step and interrupts; may be NULL */
    vkf_x0_callback x0_cb;    /* previews; may be NULL */
    void *x0_opaque;
    vkf_sample_fn sample_fn;  /* NULL: vkf_sample */
    const vkf_log *log;
} vkf_guided_sample_params;

/*
 * CFGGuider.sample: empty sigmas → the latent unchanged; otherwise
 * prepare_mask, process_in (not for an all-zero latent), process_conds,
 * noise_scaling (max_denoise when σ₀ ≥ σ_max), the sampler through
 * KSamplerX0Inpaint (denoise-mask blending every model call; "ddim"
 * re-noises the kept area with noise from seed + 1), progress
 * (vkf_exec_progress(step + 1, n_sigmas - 1)) and previews per step,
 * inverse_noise_scaling, process_out.
 *   out:     prod(shape) floats, raw VAE space.
 *   x0_out:  NULL, or prod(shape) floats that receive the last step's x0
 *            after process_out (SamplerCustom's denoised_output);
 *            *has_x0 tells whether a step ran.
 */
int vkf_guided_sample(const vkf_guided_sample_params *p, float *out, float *x0_out,
                      bool *has_x0, vkf_errbuf *e);

/* ComfyUI's LatentFormat process_in / process_out on n floats (in place
 * allowed): (x - shift)·scale and x/scale + shift in float32. */
void vkf_latent_process_in(const vkf_latent_format *lf, const float *x, float *out, size_t n);
void vkf_latent_process_out(const vkf_latent_format *lf, const float *x, float *out, size_t n);

/*
 * KSampler.sample's sigmas: vkf_ksampler_sigmas (denoise, discard-
 * penultimate samplers), then KSamplerAdvanced's window: last_step < n - 1
 * cuts to last_step + 1 values (the last set to 0 with force_full_denoise);
 * start_step (>= 0) then drops the first start_step values, or when
 * start_step >= n - 1 sets *skip (the latent is returned as it is).
 * start_step/last_step < 0 mean "not given".  *sigmas is vkf_malloc'd.
 */
int vkf_ksampler_window_sigmas(const vkf_model_sampling *ms, vkf_scheduler scheduler,
                               const char *sampler_name, int steps, double denoise,
                               int start_step, int last_step, bool force_full_denoise,
                               float **sigmas, int *n_sigmas, bool *skip);

/* Noise source of a sampling run: RandomNoise / DisableNoise. */
typedef struct vkf_noise_spec {
    bool disabled;
    uint64_t seed;
} vkf_noise_spec;

typedef struct vkf_latent_sample_params {
    vkf_exec_ctx *ctx;
    const vkf_guide_spec *guide;
    const vkf_latent *latent;
    vkf_noise_spec noise;
    uint64_t seed;                 /* sampler seed (KSampler: the noise seed) */
    const vkf_sampler_obj *sampler;/* or sampler_name */
    const char *sampler_name;
    const float *sigmas;           /* the schedule (may be empty) */
    int n_sigmas;
    bool skip;                     /* KSamplerAdvanced start past the end */
    vkf_randn_kernel kernel;
    vkf_sample_fn sample_fn;       /* NULL: vkf_sample */
    vkf_x0_callback x0_cb;         /* NULL: the process-wide preview hook */
    void *x0_opaque;
    const vkf_log *log;
} vkf_latent_sample_params;

/*
 * common_ksampler / SamplerCustom / SamplerCustomAdvanced on a LATENT:
 * fix_empty_latent_channels, prepare_noise (batch_index of the latent) or
 * zeros, vkf_guided_sample, and the output LATENT keeping the input's
 * noise_mask and batch_index.  out_denoised (may be NULL) gets the
 * denoised_output latent (the output itself when no step ran).
 */
int vkf_sample_latent(const vkf_latent_sample_params *p, vkf_value *out,
                      vkf_value *out_denoised, vkf_errbuf *e);

#endif /* VKFLOW_GUIDANCE_H */
