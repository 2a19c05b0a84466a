/*
 * comfy/samplers.py schedulers, k_diffusion get_sigmas_*, and the
 * custom-sampling scheduler nodes (comfy_extras/nodes_custom_sampler.py,
 * nodes_align_your_steps.py), each computed in the dtype ComfyUI uses:
 * Python floats (double) where ComfyUI uses Python or numpy, float32 where
 * it uses torch tensors, the result always float32 (torch.FloatTensor).
 */
#include "fp_strict.h"

#include <math.h>
#include <string.h>

#include <vkflow/sampling.h>

#include "torch_ops.h"

static const char *const scheduler_names[VKF_SCHEDULER_COUNT] = {
    "simple", "sgm_uniform", "karras", "exponential", "ddim_uniform",
    "beta", "normal", "linear_quadratic", "kl_optimal",
};

const char *vkf_scheduler_name(vkf_scheduler s)
{
    if ((int)s < 0 || s >= VKF_SCHEDULER_COUNT)
        return NULL;
    return scheduler_names[s];
}

int vkf_scheduler_from_name(const char *name, vkf_scheduler *out)
{
    for (int i = 0; name && i < VKF_SCHEDULER_COUNT; i++) {
        if (!strcmp(name, scheduler_names[i])) {
            *out = (vkf_scheduler)i;
            return VKF_OK;
        }
    }
    return VKF_ENOTFOUND;
}

static bool isclose_zero(double x)
{
    return fabs(x) <= 1e-5;
}

/* ---- schedules that need only σ_min, σ_max ---- */

void vkf_sigmas_karras(int n, double sigma_min, double sigma_max, double rho, float *out)
{
    double min_inv_rho = pow(sigma_min, 1.0 / rho);
    double max_inv_rho = pow(sigma_max, 1.0 / rho);
    float diff = (float)(min_inv_rho - max_inv_rho);
    torch_linspace_f32(0.0f, 1.0f, n, out);
    for (int i = 0; i < n; i++)
        out[i] = (float)max_inv_rho + out[i] * diff;
    torch_pow_f32(out, n, rho);
    out[n] = 0.0f;
}

void vkf_sigmas_exponential(int n, double sigma_min, double sigma_max, float *out)
{
    torch_linspace_f32((float)log(sigma_max), (float)log(sigma_min), n, out);
    for (int i = 0; i < n; i++)
        out[i] = torch_expf(out[i]);
    out[n] = 0.0f;
}

void vkf_sigmas_polyexponential(int n, double sigma_min, double sigma_max, double rho,
                                float *out)
{
    float range = (float)(log(sigma_max) - log(sigma_min));
    float offset = (float)log(sigma_min);
    torch_linspace_f32(1.0f, 0.0f, n, out);
    torch_pow_f32(out, n, rho);
    for (int i = 0; i < n; i++)
        out[i] = torch_expf(out[i] * range + offset);
    out[n] = 0.0f;
}

void vkf_sigmas_kl_optimal(int n, double sigma_min, double sigma_max, float *out)
{
    float atan_min = (float)atan(sigma_min);
    float atan_max = (float)atan(sigma_max);
    for (int i = 0; i < n; i++) {
        /* arange(n).div_(n - 1): 0/0 is NaN for n = 1, as in ComfyUI */
        float u = n > 1 ? (float)i / (float)(n - 1) : NAN;
        out[i] = sleef_tanf(u * atan_min + (1.0f - u) * atan_max);
    }
    out[n] = 0.0f;
}

/* ---- regularized incomplete beta and its inverse (scipy beta.ppf) ---- */

/* Continued fraction of I_x(a, b) (modified Lentz). */
static double betacf(double a, double b, double x)
{
    const double tiny = 1e-300;
    double c = 1.0, d = 1.0 - (a + b) * x / (a + 1.0);
    if (fabs(d) < tiny)
        d = tiny;
    d = 1.0 / d;
    double h = d;
    for (int m = 1; m <= 10000; m++) {
        double m2 = 2.0 * m;
        double num = m * (b - m) * x / ((a + m2 - 1.0) * (a + m2));
        d = 1.0 + num * d;
        if (fabs(d) < tiny)
            d = tiny;
        c = 1.0 + num / c;
        if (fabs(c) < tiny)
            c = tiny;
        d = 1.0 / d;
        h *= d * c;
        num = -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1.0));
        d = 1.0 + num * d;
        if (fabs(d) < tiny)
            d = tiny;
        c = 1.0 + num / c;
        if (fabs(c) < tiny)
            c = tiny;
        d = 1.0 / d;
        double delta = d * c;
        h *= delta;
        if (fabs(delta - 1.0) < 1e-16)
            break;
    }
    return h;
}

static double betainc(double a, double b, double x)
{
    if (x <= 0.0)
        return 0.0;
    if (x >= 1.0)
        return 1.0;
    double lbeta = lgamma(a + b) - lgamma(a) - lgamma(b);
    double front = exp(lbeta + a * log(x) + b * log1p(-x));
    if (x < (a + 1.0) / (a + b + 2.0))
        return front * betacf(a, b, x) / a;
    return 1.0 - front * betacf(b, a, 1.0 - x) / b;
}

/* The p-quantile of Beta(a, b) by bisection to the last bit. */
static double beta_ppf(double p, double a, double b)
{
    if (p <= 0.0)
        return 0.0;
    if (p >= 1.0)
        return 1.0;
    if (a == b && p == 0.5)
        return 0.5;
    double lo = 0.0, hi = 1.0;
    for (int i = 0; i < 200; i++) {
        double mid = 0.5 * (lo + hi);
        if (mid <= lo || mid >= hi)
            break;
        if (betainc(a, b, mid) < p)
            lo = mid;
        else
            hi = mid;
    }
    return 0.5 * (lo + hi);
}

int vkf_sigmas_beta(const vkf_model_sampling *ms, int steps, double alpha, double beta,
                    float **out, int *count)
{
    if (!ms || !out || !count || steps < 1 || steps > VKF_MAX_SCHEDULE_STEPS)
        return VKF_EINVAL;
    float *sig = vkf_malloc(((size_t)steps + 1) * sizeof(float));
    if (!sig)
        return VKF_ENOMEM;
    double total = (double)(ms->count - 1);
    double step = 1.0 / steps;
    double last = -1.0;
    int n = 0;
    for (int i = 0; i < steps; i++) {
        double u = 1.0 - ((double)i * step + 0.0);
        double t = round_half_even(beta_ppf(u, alpha, beta) * total);
        if (t != last)
            sig[n++] = ms->sigmas[(int)t];
        last = t;
    }
    sig[n++] = 0.0f;
    *out = sig;
    *count = n;
    return VKF_OK;
}

/* ---- model-sampling schedulers ---- */

static int sched_simple(const vkf_model_sampling *ms, int steps, float *sig, int *n)
{
    double ss = (double)ms->count / steps;
    for (int x = 0; x < steps; x++)
        sig[x] = ms->sigmas[ms->count - 1 - (int)(x * ss)];
    sig[steps] = 0.0f;
    *n = steps + 1;
    return VKF_OK;
}

/* ddim_uniform may produce more than steps + 1 values; *cap is the room. */
static int sched_ddim(const vkf_model_sampling *ms, int steps, float **sig, int *n)
{
    int k = 0;
    bool add_zero = !isclose_zero(ms->sigmas[1]);
    if (!add_zero)
        steps += 1;
    int ss = ms->count / steps;
    if (ss < 1)
        ss = 1;
    int picks = (ms->count - 1 + ss - 1) / ss;
    float *v = vkf_malloc(((size_t)picks + 1) * sizeof(float));
    if (!v)
        return VKF_ENOMEM;
    for (int x = 1; x < ms->count; x += ss)
        v[picks - 1 - k++] = ms->sigmas[x];
    if (add_zero)
        v[k++] = 0.0f;
    *sig = v;
    *n = k;
    return VKF_OK;
}

static int sched_normal(const vkf_model_sampling *ms, int steps, bool sgm, float *sig, int *n)
{
    float start = vkf_model_sampling_timestep(ms, vkf_model_sampling_sigma_max(ms));
    float end = vkf_model_sampling_timestep(ms, vkf_model_sampling_sigma_min(ms));
    bool append_zero = true;
    int count;
    if (sgm) {
        torch_linspace_f32(start, end, (int64_t)steps + 1, sig);
        count = steps;
    } else {
        if (isclose_zero(vkf_model_sampling_sigma(ms, end))) {
            steps += 1;
            append_zero = false;
        }
        torch_linspace_f32(start, end, steps, sig);
        count = steps;
    }
    for (int i = 0; i < count; i++)
        sig[i] = vkf_model_sampling_sigma(ms, sig[i]);
    if (append_zero)
        sig[count++] = 0.0f;
    *n = count;
    return VKF_OK;
}

static void sched_linear_quadratic(const vkf_model_sampling *ms, int steps, float *sig)
{
    const double threshold = 0.025;
    float sigma_max = vkf_model_sampling_sigma_max(ms);
    if (steps == 1) {
        sig[0] = 1.0f * sigma_max;
        sig[1] = 0.0f * sigma_max;
        return;
    }
    int linear_steps = steps / 2;
    double diff = linear_steps - threshold * steps;
    int quadratic_steps = steps - linear_steps;
    double qs2 = (double)quadratic_steps * quadratic_steps;
    double quadratic_coef = diff / (linear_steps * qs2);
    double linear_coef = threshold / linear_steps - 2 * diff / qs2;
    double constant = quadratic_coef * ((double)linear_steps * linear_steps);
    for (int i = 0; i < steps; i++) {
        double s;
        if (i < linear_steps)
            s = i * threshold / linear_steps;
        else
            s = quadratic_coef * ((double)i * i) + linear_coef * i + constant;
        sig[i] = (float)(1.0 - s) * sigma_max;
    }
    sig[steps] = (float)(1.0 - 1.0) * sigma_max;
}

int vkf_calculate_sigmas(const vkf_model_sampling *ms, vkf_scheduler s, int steps,
                         float **out, int *count)
{
    int err = VKF_OK;
    float *sig = NULL;
    int n = 0;

    if (!ms || !out || !count || steps < 1 || steps > VKF_MAX_SCHEDULE_STEPS || (int)s < 0 ||
        s >= VKF_SCHEDULER_COUNT)
        return VKF_EINVAL;
    *out = NULL;
    *count = 0;
    if (s == VKF_SCHEDULER_DDIM_UNIFORM)
        return sched_ddim(ms, steps, out, count);
    if (s == VKF_SCHEDULER_BETA)
        return vkf_sigmas_beta(ms, steps, 0.6, 0.6, out, count);

    /* normal may use steps + 1 points */
    sig = vkf_malloc(((size_t)steps + 2) * sizeof(float));
    VKF_CHECK_ALLOC(sig);
    double smin = vkf_model_sampling_sigma_min(ms), smax = vkf_model_sampling_sigma_max(ms);
    switch (s) {
    case VKF_SCHEDULER_SIMPLE:
        VKF_TRY(sched_simple(ms, steps, sig, &n));
        break;
    case VKF_SCHEDULER_SGM_UNIFORM:
        VKF_TRY(sched_normal(ms, steps, true, sig, &n));
        break;
    case VKF_SCHEDULER_NORMAL:
        VKF_TRY(sched_normal(ms, steps, false, sig, &n));
        break;
    case VKF_SCHEDULER_KARRAS:
        vkf_sigmas_karras(steps, smin, smax, 7.0, sig);
        n = steps + 1;
        break;
    case VKF_SCHEDULER_EXPONENTIAL:
        vkf_sigmas_exponential(steps, smin, smax, sig);
        n = steps + 1;
        break;
    case VKF_SCHEDULER_LINEAR_QUADRATIC:
        sched_linear_quadratic(ms, steps, sig);
        n = steps + 1;
        break;
    case VKF_SCHEDULER_KL_OPTIMAL:
        vkf_sigmas_kl_optimal(steps, smin, smax, sig);
        n = steps + 1;
        break;
    default:
        err = VKF_EINVAL;
        goto fail;
    }
    *out = sig;
    *count = n;
    return VKF_OK;
fail:
    vkf_free(sig);
    return err;
}

/* KSampler.calculate_sigmas: one more step and the penultimate σ dropped
 * for the samplers that ask for it. */
static int ksampler_calc(const vkf_model_sampling *ms, vkf_scheduler s, int steps,
                         bool discard_penultimate, float **out, int *count)
{
    int err = vkf_calculate_sigmas(ms, s, steps + (discard_penultimate ? 1 : 0), out, count);
    if (err < 0 || !discard_penultimate)
        return err;
    if (*count >= 2) {
        (*out)[*count - 2] = (*out)[*count - 1];
        *count -= 1;
    }
    return VKF_OK;
}

/* sigmas[-(keep):] in place. */
static void keep_tail(float *v, int *count, int keep)
{
    if (keep >= *count)
        return;
    memmove(v, v + (*count - keep), (size_t)keep * sizeof(float));
    *count = keep;
}

int vkf_ksampler_sigmas(const vkf_model_sampling *ms, vkf_scheduler s, int steps,
                        double denoise, bool discard_penultimate,
                        float **out, int *count)
{
    if (!out || !count || steps < 1)
        return VKF_EINVAL;
    *out = NULL;
    *count = 0;
    if (denoise > 0.9999)
        return ksampler_calc(ms, s, steps, discard_penultimate, out, count);
    if (denoise <= 0.0)
        return VKF_OK;
    if (steps / denoise > VKF_MAX_SCHEDULE_STEPS)
        return VKF_EINVAL;
    int new_steps = (int)(steps / denoise);
    int err = ksampler_calc(ms, s, new_steps, discard_penultimate, out, count);
    if (err < 0)
        return err;
    keep_tail(*out, count, steps + 1);
    return VKF_OK;
}

int vkf_basic_scheduler_sigmas(const vkf_model_sampling *ms, vkf_scheduler s, int steps,
                               double denoise, float **out, int *count)
{
    if (!out || !count || steps < 1)
        return VKF_EINVAL;
    *out = NULL;
    *count = 0;
    int total = steps;
    if (denoise < 1.0) {
        if (denoise <= 0.0)
            return VKF_OK;
        if (steps / denoise > VKF_MAX_SCHEDULE_STEPS)
            return VKF_EINVAL;
        total = (int)(steps / denoise);
    }
    int err = vkf_calculate_sigmas(ms, s, total, out, count);
    if (err < 0)
        return err;
    keep_tail(*out, count, steps + 1);
    return VKF_OK;
}

/* ---- other scheduler nodes ---- */

void vkf_sigmas_sd_turbo(const vkf_model_sampling *ms, int steps, double denoise,
                         float *out, int *count)
{
    /* the node's range; outside it Python's negative slicing would apply */
    if (!(denoise >= 0.0))
        denoise = 0.0;
    if (denoise > 1.0)
        denoise = 1.0;
    int start = 10 - (int)(10.0 * denoise);
    int n = 0;
    for (int i = start; i < start + steps && i < 10; i++)
        out[n++] = vkf_model_sampling_sigma(ms, (float)((10 - i) * 100 - 1));
    out[n++] = 0.0f;
    *count = n;
}

static const double ays_levels[3][11] = {
    {14.6146412293, 6.4745760956, 3.8636745985, 2.6946151520, 1.8841921177, 1.3943805092,
     0.9642583904, 0.6523686016, 0.3977456272, 0.1515232662, 0.0291671582},
    {14.6146412293, 6.3184485287, 3.7681790315, 2.1811480769, 1.3405244945, 0.8620721141,
     0.5550693289, 0.3798540708, 0.2332364134, 0.1114188177, 0.0291671582},
    {700.00, 54.5, 15.886, 7.977, 4.248, 1.789, 0.981, 0.403, 0.173, 0.034, 0.002},
};

/* np.interp(x, xp, fp) for increasing xp. */
static double numpy_interp(double x, const double *xp, const double *fp, int n)
{
    if (x < xp[0])
        return fp[0];
    if (x > xp[n - 1])
        return fp[n - 1];
    int j = 0;
    while (j + 1 < n && xp[j + 1] <= x)
        j++;
    if (j == n - 1 || xp[j] == x)
        return fp[j];
    double slope = (fp[j + 1] - fp[j]) / (xp[j + 1] - xp[j]);
    return slope * (x - xp[j]) + fp[j];
}

int vkf_sigmas_align_your_steps(vkf_ays_model model, int steps, double denoise,
                                float *out, int *count)
{
    if (!out || !count || steps < 1 || (int)model < 0 || model > VKF_AYS_SVD)
        return VKF_EINVAL;
    const double *levels = ays_levels[model];
    int total = steps;
    *count = 0;
    if (denoise < 1.0) {
        if (denoise <= 0.0)
            return VKF_OK;
        total = (int)round_half_even(steps * denoise);
    }
    int n = steps + 1;
    double xs[11], ys[11];
    double *sig = vkf_malloc((size_t)n * sizeof(double));
    double *new_xs = vkf_malloc((size_t)n * sizeof(double));
    if (!sig || !new_xs) {
        vkf_free(sig);
        vkf_free(new_xs);
        return VKF_ENOMEM;
    }
    if (n == 11) {
        memcpy(sig, levels, sizeof(ays_levels[0]));
    } else {
        /* loglinear_interp: interpolate log σ over [0, 1], ascending */
        numpy_linspace(0.0, 1.0, 11, 1, xs);
        for (int i = 0; i < 11; i++)
            ys[i] = log(levels[10 - i]);
        numpy_linspace(0.0, 1.0, n, 1, new_xs);
        for (int i = 0; i < n; i++)
            sig[n - 1 - i] = exp(numpy_interp(new_xs[i], xs, ys, 11));
    }
    int keep = total + 1 < n ? total + 1 : n;
    for (int i = 0; i < keep; i++)
        out[i] = (float)sig[n - keep + i];
    out[keep - 1] = 0.0f;
    *count = keep;
    vkf_free(sig);
    vkf_free(new_xs);
    return VKF_OK;
}

/* ---- sigma list helpers ---- */

/* Python's slice start/stop normalisation for a list of n. */
static int py_index(int i, int n)
{
    if (i < 0)
        i += n;
    if (i < 0)
        i = 0;
    if (i > n)
        i = n;
    return i;
}

void vkf_split_sigmas(int n, int step, int *high_count, int *low_offset, int *low_count)
{
    int stop = py_index(step + 1, n);
    int start = py_index(step, n);
    *high_count = stop;
    *low_offset = start;
    *low_count = n - start;
}

void vkf_split_sigmas_denoise(int n, double denoise, int *high_count, int *low_offset,
                              int *low_count)
{
    int steps = n - 1 > 0 ? n - 1 : 0;
    /* |total| >= n slices like n: clamping keeps Python's result */
    double product = round_half_even(steps * denoise);
    if (!(product > -n))
        product = -n;
    if (product > n)
        product = n;
    int total = (int)product;
    /* sigmas[:-0] is sigmas[:0] in Python: empty */
    *high_count = total == 0 ? 0 : py_index(-total, n);
    *low_offset = py_index(-(total + 1), n);
    *low_count = n - *low_offset;
}

void vkf_flip_sigmas(float *sigmas, int n)
{
    for (int i = 0, j = n - 1; i < j; i++, j--) {
        float t = sigmas[i];
        sigmas[i] = sigmas[j];
        sigmas[j] = t;
    }
    if (n > 0 && sigmas[0] == 0.0f)
        sigmas[0] = 0.0001f;
}
