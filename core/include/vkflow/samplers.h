/*
 * vkflow — the sampler algorithms of ComfyUI's KSampler list (k-diffusion
 * samplers, DDIM, UniPC, LCM, DEIS, iPNDM, res_multistep, the CFG++
 * variants), by the same names and with the same math
 * (core/sampling/samplers.c; docs/sampling.md).
 *
 * A sampler sees the model only as a denoiser D(x, σ) on host float arrays:
 * the latent is small (4·h·w floats per image) next to the model, so the
 * sampler updates run on the CPU in float32, in the order PyTorch evaluates
 * them, and the model wrapper (core/models/guidance.c) moves x to the GPU
 * and back once per model call.
 */
#ifndef VKFLOW_SAMPLERS_H
#define VKFLOW_SAMPLERS_H

#include "common.h"
#include "sampling.h"

typedef struct vkf_denoiser {
    /*
     * denoised = D(x, sigma) for the whole batch: x and denoised hold n
     * floats.  uncond_denoised is NULL unless the sampler needs the
     * unconditional prediction (CFG++ samplers): then it must be filled
     * too.  Returns 0 or a VKF_E* code (VKF_EINTERRUPTED stops sampling).
     */
    int (*denoise)(void *opaque, const float *x, float sigma, float *denoised,
                   float *uncond_denoised);
    void *opaque;
} vkf_denoiser;

typedef struct vkf_sample_params {
    const char *sampler;          /* ComfyUI name, e.g. "euler_ancestral" */
    /* Sampler-node parameters; has_params false → the sampler's defaults
     * as KSampler uses them. */
    bool has_params;
    double eta, s_noise, r;
    const char *solver_type;      /* "midpoint" / "heun" */
    int order;                    /* lms */
    const vkf_model_sampling *ms; /* for samplers that need α/σ tables */
    /* The latent's shape (batch first) and element count. */
    const int64_t *shape;
    int ndim;
    size_t n;
    /* Seed of the noise sampler (ComfyUI passes the KSampler seed as
     * extra_args["seed"]); ancestral and SDE noise are drawn with torch's
     * CPU generator as ComfyUI does on CPU. */
    uint64_t seed;
    vkf_randn_kernel kernel;
    /* Called after each step with the current x and denoised (previews,
     * progress); a non-zero return stops sampling with that code. */
    int (*callback)(void *opaque, int step, int total, const float *x,
                    const float *denoised);
    void *cb_opaque;
} vkf_sample_params;

/* KSampler's sampler list in ComfyUI's order; *n set to the count. */
const char *const *vkf_sampler_names(int *n);
bool vkf_sampler_exists(const char *name);

/*
 * Runs the sampler over sigmas[0..n_sigmas-1] (descending, usually ending
 * in 0).  x holds the already-noised start (noise·σ0 + latent as ComfyUI's
 * noise_scaling made it) and receives the result.
 */
int vkf_sample(const vkf_sample_params *p, const vkf_denoiser *model,
               const float *sigmas, int n_sigmas, float *x, const vkf_log *log);

#endif /* VKFLOW_SAMPLERS_H */
