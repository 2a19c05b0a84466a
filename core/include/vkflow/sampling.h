/*
 * vkflow — the CPU-side numerics of diffusion sampling, exact to
 * PyTorch / ComfyUI (docs/sampling.md says what is bit-exact and how it was
 * checked).
 *
 *  - torch.Generator (CPU): MT19937 seeded as torch.manual_seed() does,
 *    random()/random64(), the float/double uniforms, normal_distribution<double>
 *    with torch's cached second Box–Muller value.
 *  - torch.randn(float32) on CPU: the per-element path below 16 elements and
 *    the block-of-16 path (normal_fill) above, with the AVX2 kernel that x86
 *    builds of PyTorch dispatch (also on AVX-512 CPUs) or the scalar kernel.
 *  - ComfyUI's prepare_noise (comfy/sample.py), batch_index included.
 *  - Model sampling tables (ModelSamplingDiscrete eps/v, DiscreteFlow, Flux)
 *    and every KSampler scheduler plus the custom-sampling schedulers and
 *    sigma helpers, computed in the precision ComfyUI computes them.
 *
 * Plain C, no GPU, no global state.  Every function is reentrant; objects are
 * not locked, so one generator or model-sampling object must not be used by
 * two threads at once (const model-sampling objects may be shared).
 */
#ifndef VKFLOW_SAMPLING_H
#define VKFLOW_SAMPLING_H

#include <vkflow/common.h>

/* ------------------------------------------------------------------------ */
/* torch.Generator (CPU)                                                     */

#define VKF_MT19937_N 624

/* A CPU generator.  Plain data: copy it to fork the stream (torch's
 * Generator.clone / get_state + set_state). */
typedef struct vkf_torch_rng {
    uint32_t state[VKF_MT19937_N];
    int next;                 /* next word of state; VKF_MT19937_N: twist first */
    uint64_t seed;            /* the seed as given (torch.initial_seed()) */
    bool has_next_normal;     /* torch's cached next_double_normal_sample */
    double next_normal;
} vkf_torch_rng;

/* torch.manual_seed(seed): the full 64-bit seed is kept as initial_seed but
 * only its low 32 bits seed MT19937, so seeds equal mod 2^32 give the same
 * stream (0 .. 2^64-1 all accepted, like torch).  Clears the normal cache. */
void vkf_torch_rng_seed(vkf_torch_rng *rng, uint64_t seed);
/* CPUGeneratorImpl::random(): one tempered MT19937 word. */
uint32_t vkf_torch_rng_random(vkf_torch_rng *rng);
/* CPUGeneratorImpl::random64(): first word << 32 | second word. */
uint64_t vkf_torch_rng_random64(vkf_torch_rng *rng);
/* uniform_real_distribution<float>(0, 1): (random() & (2^24-1)) * 2^-24. */
float vkf_torch_rng_uniform_float(vkf_torch_rng *rng);
/* uniform_real_distribution<double>(0, 1): (random64() & (2^53-1)) * 2^-53. */
double vkf_torch_rng_uniform_double(vkf_torch_rng *rng);
/* normal_distribution<double>(0, 1): returns the cached value if there is
 * one, else draws u1, u2 (double uniforms), caches r·sin θ, returns r·cos θ
 * with r = sqrt(-2 log1p(-u2)), θ = 2π u1. */
double vkf_torch_rng_normal_double(vkf_torch_rng *rng);

/* Which CPU kernel of torch.randn to reproduce for tensors of >= 16
 * elements (smaller ones always take the per-element double path). */
typedef enum vkf_randn_kernel {
    /* PyTorch on x86-64 CPUs with AVX2 (and AVX-512: normal is never
     * dispatched to AVX-512): avx_mathfun log/sincos in float with GCC's FMA
     * contraction.  What ComfyUI users on Linux/x86 get; the default. */
    VKF_RANDN_AVX2 = 0,
    /* PyTorch's scalar kernel (ATEN_CPU_CAPABILITY=default, aarch64 builds):
     * logf/cosf/sinf of this C library — bit-exact with glibc >= 2.28. */
    VKF_RANDN_SCALAR = 1,
} vkf_randn_kernel;

/* torch.randn(n) in float32 from rng, into out[0..n-1] (contiguous). */
void vkf_torch_randn(vkf_torch_rng *rng, float *out, size_t n, vkf_randn_kernel kernel);

/* ------------------------------------------------------------------------ */
/* ComfyUI prepare_noise                                                     */

/*
 * comfy.sample.prepare_noise(latent, seed, noise_inds): reseeds a generator
 * with `seed` and draws float32 noise of `shape` (ndim >= 1, shape[0] = batch;
 * already widened to the model's channels / time axis by the caller).
 *
 * batch_index == NULL: one randn of the whole shape; out holds prod(shape).
 * Otherwise (n_index >= 1 entries, each >= 0): one randn of shape[1:] per
 * index 0..max(index) in order, keeping for out row i the draw numbered
 * batch_index[i]; out holds n_index * prod(shape[1:]) floats.
 * Returns VKF_EINVAL on a bad shape or index, VKF_ENOMEM.
 */
int vkf_prepare_noise(uint64_t seed, const int64_t *shape, int ndim,
                      const int64_t *batch_index, int n_index,
                      vkf_randn_kernel kernel, float *out);

/* ------------------------------------------------------------------------ */
/* Model sampling (comfy/model_sampling.py)                                  */

typedef enum vkf_model_sampling_kind {
    VKF_MODEL_SAMPLING_DISCRETE = 0,      /* ModelSamplingDiscrete (SD1/SD2/SDXL) */
    VKF_MODEL_SAMPLING_DISCRETE_FLOW = 1, /* ModelSamplingDiscreteFlow (SD3, AuraFlow, Wan) */
    VKF_MODEL_SAMPLING_FLUX = 2,          /* ModelSamplingFlux */
} vkf_model_sampling_kind;

typedef enum vkf_prediction {
    VKF_PREDICTION_EPS = 0,   /* EPS: D = x - out·σ */
    VKF_PREDICTION_V = 1,     /* V_PREDICTION */
    VKF_PREDICTION_FLOW = 2,  /* CONST (flow matching) */
} vkf_prediction;

/* The immutable sampling description of a model.  All fields are readable;
 * sigmas/log_sigmas belong to the object. */
typedef struct vkf_model_sampling {
    vkf_model_sampling_kind kind;
    vkf_prediction prediction;
    int count;             /* table length: 1000 (discrete, flow), 10000 (flux) */
    float *sigmas;         /* ascending; sigmas[0] = σ_min, sigmas[count-1] = σ_max */
    float *log_sigmas;     /* discrete only (log of the float64 sigmas, as float32) */
    double shift;          /* flow / flux */
    double multiplier;     /* flow: timestep = σ·multiplier */
} vkf_model_sampling;

/* ModelSamplingDiscrete with ComfyUI's "linear" (sqrt-space) betas:
 * linear_start = 0.00085, linear_end = 0.012, timesteps = 1000 for SD.
 * zsnr: rescale to zero terminal SNR (rescale_zero_terminal_snr_sigmas). */
int vkf_model_sampling_discrete(vkf_model_sampling **out, vkf_prediction prediction,
                                double linear_start, double linear_end, int timesteps,
                                bool zsnr);
/* ModelSamplingDiscreteFlow (CONST): shift 3 (SD3), multiplier 1000. */
int vkf_model_sampling_flow(vkf_model_sampling **out, double shift, double multiplier);
/* ModelSamplingFlux (CONST): shift 1.15 for Flux dev. */
int vkf_model_sampling_flux(vkf_model_sampling **out, double shift);
void vkf_model_sampling_destroy(vkf_model_sampling **ms);

static inline float vkf_model_sampling_sigma_min(const vkf_model_sampling *ms)
{
    return ms->sigmas[0];
}
static inline float vkf_model_sampling_sigma_max(const vkf_model_sampling *ms)
{
    return ms->sigmas[ms->count - 1];
}
/* model_sampling.sigma(t) on a float32 scalar tensor.  Discrete: log-sigma
 * interpolation between the neighbouring table entries, t clamped to the
 * table. */
float vkf_model_sampling_sigma(const vkf_model_sampling *ms, float timestep);
/* model_sampling.timestep(σ) on a float32 scalar tensor.  Discrete: index of
 * the table entry nearest in log σ (first on ties), as a float. */
float vkf_model_sampling_timestep(const vkf_model_sampling *ms, float sigma);
/* percent_to_sigma(p) (python floats). */
double vkf_model_sampling_percent_to_sigma(const vkf_model_sampling *ms, double percent);

/*
 * The prediction-type formulas of comfy/model_sampling.py (EPS, V_PREDICTION,
 * CONST) on n float32 values with a scalar float32 σ, each torch op rounded
 * separately as ComfyUI runs them; reference versions for the GPU kernels.
 * out may alias any input.
 */
/* The network input: x/√(σ²+1) (EPS, V), x (FLOW). */
void vkf_model_sampling_calculate_input(const vkf_model_sampling *ms, float sigma,
                                        const float *x, float *out, size_t n);
/* The denoised estimate D from the model output at input x. */
void vkf_model_sampling_calculate_denoised(const vkf_model_sampling *ms, float sigma,
                                           const float *model_output, const float *x,
                                           float *out, size_t n);
/* The starting latent: EPS/V: latent + noise·σ, or noise·√(1+σ²) + latent when
 * max_denoise; FLOW: σ·noise + (1−σ)·latent. */
void vkf_model_sampling_noise_scaling(const vkf_model_sampling *ms, float sigma,
                                      const float *noise, const float *latent,
                                      bool max_denoise, float *out, size_t n);
/* After sampling: FLOW divides by (1 − σ_last); EPS/V copy. */
void vkf_model_sampling_inverse_noise_scaling(const vkf_model_sampling *ms, float sigma,
                                              const float *latent, float *out, size_t n);
/* KSAMPLER.max_denoise: σ₀ within rel 1e-5 of σ_max (math.isclose) or above. */
bool vkf_model_sampling_max_denoise(const vkf_model_sampling *ms, float sigma0);

/* ------------------------------------------------------------------------ */
/* Schedulers                                                                */

/* Longest schedule computed (steps, or steps/denoise); more is VKF_EINVAL. */
#define VKF_MAX_SCHEDULE_STEPS 1000000

/* KSampler's scheduler list, in ComfyUI's order. */
typedef enum vkf_scheduler {
    VKF_SCHEDULER_SIMPLE = 0,
    VKF_SCHEDULER_SGM_UNIFORM,
    VKF_SCHEDULER_KARRAS,
    VKF_SCHEDULER_EXPONENTIAL,
    VKF_SCHEDULER_DDIM_UNIFORM,
    VKF_SCHEDULER_BETA,
    VKF_SCHEDULER_NORMAL,
    VKF_SCHEDULER_LINEAR_QUADRATIC,
    VKF_SCHEDULER_KL_OPTIMAL,
    VKF_SCHEDULER_COUNT
} vkf_scheduler;

/* "simple", ... ; NULL when out of range. */
const char *vkf_scheduler_name(vkf_scheduler s);
/* VKF_ENOTFOUND for an unknown name. */
int vkf_scheduler_from_name(const char *name, vkf_scheduler *out);

/*
 * comfy.samplers.calculate_sigmas(model_sampling, scheduler, steps):
 * *out (vkf_malloc'd, caller frees with vkf_free) receives *count float32
 * sigmas, descending, normally ending in 0 (ddim_uniform can return more
 * than steps + 1 values, as in ComfyUI).  steps >= 1.
 */
int vkf_calculate_sigmas(const vkf_model_sampling *ms, vkf_scheduler s, int steps,
                         float **out, int *count);

/*
 * KSampler / BasicScheduler sigmas: denoise > 0.9999 → the full schedule;
 * 0 < denoise ≤ 0.9999 → schedule of int(steps/denoise) steps, last
 * steps + 1 values; denoise ≤ 0 → empty (*out = NULL, *count = 0).
 * discard_penultimate: dpm_2, dpm_2_ancestral, uni_pc, uni_pc_bh2 (one more
 * step computed, second-to-last sigma dropped).
 */
int vkf_ksampler_sigmas(const vkf_model_sampling *ms, vkf_scheduler s, int steps,
                        double denoise, bool discard_penultimate,
                        float **out, int *count);

/* BasicScheduler: like KSampler but the threshold is denoise < 1.0 and the
 * result is always cut to its last steps + 1 values. */
int vkf_basic_scheduler_sigmas(const vkf_model_sampling *ms, vkf_scheduler s, int steps,
                               double denoise, float **out, int *count);

/* Custom-sampling scheduler nodes.  out must hold n + 1 floats (n >= 1). */
void vkf_sigmas_karras(int n, double sigma_min, double sigma_max, double rho, float *out);
void vkf_sigmas_exponential(int n, double sigma_min, double sigma_max, float *out);
void vkf_sigmas_polyexponential(int n, double sigma_min, double sigma_max, double rho,
                                float *out);
/* KL-optimal (also the kl_optimal scheduler with the model's σ range). */
void vkf_sigmas_kl_optimal(int n, double sigma_min, double sigma_max, float *out);
/* BetaSamplingScheduler (and the beta scheduler with α = β = 0.6): *out
 * holds at most steps + 1 values. */
int vkf_sigmas_beta(const vkf_model_sampling *ms, int steps, double alpha, double beta,
                    float **out, int *count);
/* SDTurboScheduler(steps 1..10, denoise clamped to 0..1): out must hold steps + 1;
 * *count may be smaller when the slice runs off the 10 timesteps. */
void vkf_sigmas_sd_turbo(const vkf_model_sampling *ms, int steps, double denoise,
                         float *out, int *count);

typedef enum vkf_ays_model {
    VKF_AYS_SD1 = 0,
    VKF_AYS_SDXL = 1,
    VKF_AYS_SVD = 2,
} vkf_ays_model;
/* AlignYourStepsScheduler (steps >= 1): out must hold steps + 1 floats;
 * *count gets the number written (0 for denoise ≤ 0).  VKF_ENOMEM. */
int vkf_sigmas_align_your_steps(vkf_ays_model model, int steps, double denoise,
                                float *out, int *count);

/* SplitSigmas(step): high = sigmas[:step+1], low = sigmas[step:] (Python
 * slice rules), as offsets/counts into the n input sigmas. */
void vkf_split_sigmas(int n, int step, int *high_count, int *low_offset, int *low_count);
/* SplitSigmasDenoise(denoise): total = round(max(n-1,0)·denoise) (half to
 * even); high = sigmas[:-total] (empty when total = 0, as in Python),
 * low = sigmas[-(total+1):]. */
void vkf_split_sigmas_denoise(int n, double denoise, int *high_count, int *low_offset,
                              int *low_count);
/* FlipSigmas, in place: reversed; a leading 0 becomes 0.0001. */
void vkf_flip_sigmas(float *sigmas, int n);

#endif /* VKFLOW_SAMPLING_H */
