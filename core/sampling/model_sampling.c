/*
 * comfy/model_sampling.py: the sigma tables and σ ↔ timestep conversions of
 * ModelSamplingDiscrete, ModelSamplingDiscreteFlow and ModelSamplingFlux,
 * with the dtype of every step as ComfyUI runs it (float64 for the discrete
 * table, float32 tensors elsewhere, Python floats in percent_to_sigma).
 */
#include "fp_strict.h"

#include <math.h>
#include <string.h>

#include <vkflow/sampling.h>

#include "torch_ops.h"

static int alloc_tables(vkf_model_sampling **out, int count, bool with_log)
{
    vkf_model_sampling *ms = vkf_calloc(1, sizeof(*ms));
    if (!ms)
        return VKF_ENOMEM;
    ms->count = count;
    ms->sigmas = vkf_malloc((size_t)count * sizeof(float));
    if (with_log)
        ms->log_sigmas = vkf_malloc((size_t)count * sizeof(float));
    if (!ms->sigmas || (with_log && !ms->log_sigmas)) {
        vkf_model_sampling_destroy(&ms);
        return VKF_ENOMEM;
    }
    *out = ms;
    return VKF_OK;
}

void vkf_model_sampling_destroy(vkf_model_sampling **ms)
{
    if (!ms || !*ms)
        return;
    vkf_free((*ms)->sigmas);
    vkf_free((*ms)->log_sigmas);
    vkf_free(*ms);
    *ms = NULL;
}

/* rescale_zero_terminal_snr_sigmas, in float64 like ComfyUI. */
static void rescale_zero_terminal_snr(double *sigmas, int n)
{
    for (int i = 0; i < n; i++)
        sigmas[i] = sqrt(1.0 / (sigmas[i] * sigmas[i] + 1.0));
    double first = sigmas[0], last = sigmas[n - 1];
    double scale = first / (first - last);
    for (int i = 0; i < n; i++) {
        double a = (sigmas[i] - last) * scale;
        double alpha_bar = i == n - 1 ? 4.8973451890853435e-08 : a * a;
        sigmas[i] = sqrt((1.0 - alpha_bar) / alpha_bar);
    }
}

int vkf_model_sampling_discrete(vkf_model_sampling **out, vkf_prediction prediction,
                                double linear_start, double linear_end, int timesteps,
                                bool zsnr)
{
    int err;
    double *sig = NULL;
    vkf_model_sampling *ms = NULL;

    if (!out || timesteps < 2 || !(linear_start > 0.0) || !(linear_end > 0.0) ||
        prediction == VKF_PREDICTION_FLOW)
        return VKF_EINVAL;
    sig = vkf_malloc((size_t)timesteps * sizeof(double));
    VKF_CHECK_ALLOC(sig);
    VKF_TRY(alloc_tables(&ms, timesteps, true));
    ms->kind = VKF_MODEL_SAMPLING_DISCRETE;
    ms->prediction = prediction;

    /* make_beta_schedule("linear"): linspace of the square roots, squared */
    torch_linspace_f64(pow(linear_start, 0.5), pow(linear_end, 0.5), timesteps, sig);
    double alphas_cumprod = 1.0;
    for (int i = 0; i < timesteps; i++) {
        double beta = sig[i] * sig[i];
        alphas_cumprod *= 1.0 - beta;
        sig[i] = sqrt((1.0 - alphas_cumprod) / alphas_cumprod);
    }
    if (zsnr)
        rescale_zero_terminal_snr(sig, timesteps);
    for (int i = 0; i < timesteps; i++) {
        ms->sigmas[i] = (float)sig[i];
        ms->log_sigmas[i] = (float)log(sig[i]);
    }
    *out = ms;
    ms = NULL;
    err = VKF_OK;
fail:
    vkf_free(sig);
    vkf_model_sampling_destroy(&ms);
    return err;
}

static float flow_shift(double shift, float t)
{
    if (shift == 1.0)
        return t;
    return (float)shift * t / (1.0f + (float)(shift - 1.0) * t);
}

int vkf_model_sampling_flow(vkf_model_sampling **out, double shift, double multiplier)
{
    int err;
    const int timesteps = 1000;
    vkf_model_sampling *ms = NULL;

    if (!out || !(multiplier > 0.0))
        return VKF_EINVAL;
    VKF_TRY(alloc_tables(&ms, timesteps, false));
    ms->kind = VKF_MODEL_SAMPLING_DISCRETE_FLOW;
    ms->prediction = VKF_PREDICTION_FLOW;
    ms->shift = shift;
    ms->multiplier = multiplier;
    for (int k = 1; k <= timesteps; k++) {
        float t = (float)k / (float)timesteps * (float)multiplier;
        ms->sigmas[k - 1] = vkf_model_sampling_sigma(ms, t);
    }
    *out = ms;
    return VKF_OK;
fail:
    return err;
}

/* flux_time_shift(mu, 1.0, t) on a float32 tensor: torch evaluates a / t as
 * reciprocal(t) * a. */
static float flux_shift(double mu, float t)
{
    float e = (float)exp(mu);
    float s = (1.0f / t) * 1.0f - 1.0f;
    return (1.0f / (e + s)) * e;
}

int vkf_model_sampling_flux(vkf_model_sampling **out, double shift)
{
    int err;
    const int timesteps = 10000;
    vkf_model_sampling *ms = NULL;

    if (!out)
        return VKF_EINVAL;
    VKF_TRY(alloc_tables(&ms, timesteps, false));
    ms->kind = VKF_MODEL_SAMPLING_FLUX;
    ms->prediction = VKF_PREDICTION_FLOW;
    ms->shift = shift;
    ms->multiplier = 1.0;
    for (int k = 1; k <= timesteps; k++)
        ms->sigmas[k - 1] = flux_shift(shift, (float)k / (float)timesteps);
    *out = ms;
    return VKF_OK;
fail:
    return err;
}

float vkf_model_sampling_sigma(const vkf_model_sampling *ms, float timestep)
{
    switch (ms->kind) {
    case VKF_MODEL_SAMPLING_DISCRETE: {
        float t = timestep;
        float top = (float)(ms->count - 1);
        if (isnan(t))
            return t;
        if (t < 0.0f)
            t = 0.0f;
        if (t > top)
            t = top;
        int lo = (int)floorf(t);
        int hi = (int)ceilf(t);
        float w = t - truncf(t);
        float log_sigma = (1.0f - w) * ms->log_sigmas[lo] + w * ms->log_sigmas[hi];
        return torch_expf(log_sigma);
    }
    case VKF_MODEL_SAMPLING_DISCRETE_FLOW:
        return flow_shift(ms->shift, timestep / (float)ms->multiplier);
    case VKF_MODEL_SAMPLING_FLUX:
        return flux_shift(ms->shift, timestep);
    }
    return NAN;
}

float vkf_model_sampling_timestep(const vkf_model_sampling *ms, float sigma)
{
    switch (ms->kind) {
    case VKF_MODEL_SAMPLING_DISCRETE: {
        float log_sigma = logf(sigma);
        int best = 0;
        float best_dist = INFINITY;
        for (int i = 0; i < ms->count; i++) {
            float dist = fabsf(log_sigma - ms->log_sigmas[i]);
            if (dist < best_dist) {
                best_dist = dist;
                best = i;
            }
        }
        return (float)best;
    }
    case VKF_MODEL_SAMPLING_DISCRETE_FLOW:
        return sigma * (float)ms->multiplier;
    case VKF_MODEL_SAMPLING_FLUX:
        return sigma;
    }
    return NAN;
}

double vkf_model_sampling_percent_to_sigma(const vkf_model_sampling *ms, double percent)
{
    if (ms->kind == VKF_MODEL_SAMPLING_DISCRETE) {
        if (percent <= 0.0)
            return 999999999.9;
        if (percent >= 1.0)
            return 0.0;
        return vkf_model_sampling_sigma(ms, (float)((1.0 - percent) * 999.0));
    }
    if (percent <= 0.0)
        return 1.0;
    if (percent >= 1.0)
        return 0.0;
    double t = 1.0 - percent;
    if (ms->kind == VKF_MODEL_SAMPLING_DISCRETE_FLOW)
        return ms->shift == 1.0 ? t : ms->shift * t / (1.0 + (ms->shift - 1.0) * t);
    return exp(ms->shift) / (exp(ms->shift) + (1.0 / t - 1.0));
}

/* ---- EPS / V_PREDICTION / CONST ---- */

void vkf_model_sampling_calculate_input(const vkf_model_sampling *ms, float sigma,
                                        const float *x, float *out, size_t n)
{
    if (ms->prediction == VKF_PREDICTION_FLOW) {
        if (out != x)
            memmove(out, x, n * sizeof(float));
        return;
    }
    float scale = sqrtf(sigma * sigma + 1.0f);
    for (size_t i = 0; i < n; i++)
        out[i] = x[i] / scale;
}

void vkf_model_sampling_calculate_denoised(const vkf_model_sampling *ms, float sigma,
                                           const float *model_output, const float *x,
                                           float *out, size_t n)
{
    if (ms->prediction == VKF_PREDICTION_V) {
        float var = sigma * sigma + 1.0f;
        float root = sqrtf(var);
        for (size_t i = 0; i < n; i++)
            out[i] = x[i] * 1.0f / var - model_output[i] * sigma * 1.0f / root;
        return;
    }
    for (size_t i = 0; i < n; i++)
        out[i] = x[i] - model_output[i] * sigma;
}

void vkf_model_sampling_noise_scaling(const vkf_model_sampling *ms, float sigma,
                                      const float *noise, const float *latent,
                                      bool max_denoise, float *out, size_t n)
{
    if (ms->prediction == VKF_PREDICTION_FLOW) {
        float keep = 1.0f - sigma;
        for (size_t i = 0; i < n; i++)
            out[i] = sigma * (1.0f * noise[i]) + keep * latent[i];
        return;
    }
    float scale = max_denoise ? sqrtf(1.0f + sigma * sigma) : sigma;
    for (size_t i = 0; i < n; i++)
        out[i] = noise[i] * scale + latent[i];
}

void vkf_model_sampling_inverse_noise_scaling(const vkf_model_sampling *ms, float sigma,
                                              const float *latent, float *out, size_t n)
{
    if (ms->prediction != VKF_PREDICTION_FLOW) {
        if (out != latent)
            memmove(out, latent, n * sizeof(float));
        return;
    }
    float keep = 1.0f - sigma;
    for (size_t i = 0; i < n; i++)
        out[i] = latent[i] / keep;
}

bool vkf_model_sampling_max_denoise(const vkf_model_sampling *ms, float sigma0)
{
    double max_sigma = vkf_model_sampling_sigma_max(ms), s = sigma0;
    double diff = fabs(max_sigma - s);
    bool close = diff <= 1e-5 * fmax(fabs(max_sigma), fabs(s));
    return close || s > max_sigma;
}
