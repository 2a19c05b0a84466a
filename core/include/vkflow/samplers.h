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
     * as KSampler uses them (eta 1, s_noise 1, r 0.5, lms order 4,
     * solver_type by name; dpm_fast/dpm_adaptive: eta 0).  With has_params
     * all of eta, s_noise and r are taken as given; solver_type NULL or ""
     * and order 0 keep the defaults. */
    bool has_params;
    double eta, s_noise, r;
    const char *solver_type;      /* "midpoint" / "heun" */
    int order;                    /* lms */
    /* The model's sampling: CONST (FLOW) switches the RF variants and the
     * logit half-logSNR on, lcm re-noises with its noise_scaling,
     * sa_solver takes its τ interval and flow models their first-sigma
     * offset from it.  NULL = treated as EPS/V (discrete). */
    const vkf_model_sampling *ms;
    /* The latent's shape (batch first) and element count. */
    const int64_t *shape;
    int ndim;
    size_t n;
    /* Seed of the noise sampler (ComfyUI passes the KSampler seed as
     * extra_args["seed"]).  Ancestral noise is ComfyUI's CPU
     * default_noise_sampler: torch's generator seeded with seed + 1, one
     * randn of the latent per draw (bit-exact).  The SDE samplers
     * (dpmpp_sde, dpmpp_2m_sde, dpmpp_3m_sde and their _gpu/_heun forms)
     * use vkf_brownian_tree seeded with seed: torchsde's BrownianTree on
     * the CPU, bit-exact (ComfyUI's _gpu forms draw it on the GPU there). */
    uint64_t seed;
    vkf_randn_kernel kernel;
    /* Called once per step, after the step's first model call, with the x
     * that call saw and its denoised estimate (ComfyUI's callback dict
     * 'x', 'denoised'; uni_pc reports its VP-scaled x after the step, as
     * ComfyUI does; dpm_adaptive once per attempted step), total = number
     * of sigmas − 1; a non-zero return stops sampling with that code. */
    int (*callback)(void *opaque, int step, int total, const float *x,
                    const float *denoised);
    void *cb_opaque;
} vkf_sample_params;

/* KSampler's sampler list (comfy/samplers.py SAMPLER_NAMES) in ComfyUI's
 * order, 42 names; *n set to the count. */
const char *const *vkf_sampler_names(int *n);
/* true for the names vkf_sample runs: the whole list above plus newer
 * ComfyUI samplers outside it (exp_heun_2_x0, exp_heun_2_x0_sde). */
bool vkf_sampler_exists(const char *name);

/*
 * Runs the sampler over sigmas[0..n_sigmas-1] (descending, usually ending
 * in 0).  x holds the already-noised start (noise·σ0 + latent as ComfyUI's
 * noise_scaling made it) and receives the result.
 */
int vkf_sample(const vkf_sample_params *p, const vkf_denoiser *model,
               const float *sigmas, int n_sigmas, float *x, const vkf_log *log);
/* Returns 0, the denoiser's or callback's code (VKF_EINTERRUPTED ...),
 * VKF_ENOTFOUND for an unknown sampler name, VKF_EUNSUPPORTED for a
 * parameter vkflow does not support (lms order > 4), VKF_EINVAL (bad
 * solver_type, dpm_fast/dpm_adaptive without a non-zero sigma),
 * VKF_ENOMEM. */

/*
 * torchsde's BrownianTree as ComfyUI's BrownianTreeNoiseSampler builds it
 * (t0, t1 = the smallest positive and the largest sigma, w0 = 0,
 * entropy = seed, tol 1e-6, pool_size 24, halfway tree, float32 on the CPU):
 * the same numbers, bit for bit (docs/sampling.md).  Not thread-safe per
 * tree.
 */
typedef struct vkf_brownian_tree vkf_brownian_tree;
int vkf_brownian_tree_create(double t0, double t1, uint64_t seed, size_t n,
                             vkf_randn_kernel kernel, vkf_brownian_tree **out);
void vkf_brownian_tree_destroy(vkf_brownian_tree **t);
/* tree(ta, tb): W(tb) − W(ta), ta <= tb (clamped to the interval). */
int vkf_brownian_tree_increment(vkf_brownian_tree *t, double ta, double tb, float *out);
/* tree(t): W(t) − W(t0). */
int vkf_brownian_tree_w(vkf_brownian_tree *t, double tq, float *out);
/* ComfyUI's BrownianTreeNoiseSampler(σ, σ_next): the increment between the
 * two, signed by the direction, over √|σ_next − σ|: a standard normal per
 * element. */
int vkf_brownian_tree_noise(vkf_brownian_tree *t, float sigma, float sigma_next, float *out);

#endif /* VKFLOW_SAMPLERS_H */
