/*
 * Private: scalar versions of the few torch CPU ops that ComfyUI's sigma code
 * runs, rounded the way torch rounds them (see docs/sampling.md).
 */
#ifndef VKF_SAMPLING_TORCH_OPS_H
#define VKF_SAMPLING_TORCH_OPS_H

#include <math.h>
#include <stdint.h>

#include "fp_strict.h"
#include "sleef_float.h"

/* torch.linspace(start, end, steps) in float32 / float64 on CPU: steps == 1
 * gives start; otherwise the first half counts up from start and the second
 * half down from end (RangeFactoriesKernel.cpp, scalar loop). */
static inline void torch_linspace_f32(float start, float end, int64_t steps, float *out)
{
    if (steps == 1) {
        out[0] = start;
        return;
    }
    float step = (end - start) / (float)(steps - 1);
    int64_t halfway = steps / 2;
    for (int64_t i = 0; i < steps; i++)
        out[i] = i < halfway ? start + step * (float)i : end - step * (float)(steps - i - 1);
}

static inline void torch_linspace_f64(double start, double end, int64_t steps, double *out)
{
    if (steps == 1) {
        out[0] = start;
        return;
    }
    double step = (end - start) / (double)(steps - 1);
    int64_t halfway = steps / 2;
    for (int64_t i = 0; i < steps; i++)
        out[i] = i < halfway ? start + step * (double)i : end - step * (double)(steps - i - 1);
}

/*
 * tensor ** exponent on a float32 tensor of n values, in place (Pow.cpp and
 * PowKernel.cpp): 0, 1, ±0.5, -1, 2, 3, -2 are special kernels; any other
 * exponent runs the vector op (SLEEF powf) on the first n - n % 16 values
 * (two 8-float AVX2 vectors per step) and std::pow in double on the rest.
 */
static inline void torch_pow_f32(float *v, int64_t n, double exponent)
{
    int64_t vec_end = n - n % 16;
    for (int64_t i = 0; i < n; i++) {
        float x = v[i];
        if (exponent == 0.0)
            v[i] = 1.0f;
        else if (exponent == 1.0)
            v[i] = x;
        else if (exponent == 0.5)
            v[i] = sqrtf(x);
        else if (exponent == -0.5)
            v[i] = 1.0f / sqrtf(x);
        else if (exponent == -1.0)
            v[i] = 1.0f / x;
        else if (exponent == 2.0)
            v[i] = x * x;
        else if (exponent == 3.0)
            v[i] = x * x * x;
        else if (exponent == -2.0)
            v[i] = i < vec_end ? 1.0f / (x * x) : (float)(1.0 / (double)(x * x));
        else if (i < vec_end && x > 0.0f && isfinite(x))
            v[i] = sleef_powf(x, (float)exponent);
        else
            v[i] = (float)pow((double)x, exponent);
    }
}

/*
 * torch's exp() on float32 tensors (any size, 0-d included): x86 builds run
 * SLEEF's expf_u10 (Vectorized<float>::exp -> Sleef_expf8_u10, the same
 * algorithm in the AVX-512 build): a Cody–Waite reduction by ln 2 and a
 * degree-6 polynomial, every step fused.  Written here from that algorithm
 * one lane at a time; within 1 ulp of expf() and equal to torch's bits.
 */
static inline float torch_expf(float d)
{
    if (isnan(d))
        return d;
    if (d < -104.0f)
        return 0.0f;
    if (d > 100.0f)
        return INFINITY;
    float qf = nearbyintf(d * 1.442695040888963407359924681001892137426645954152985934135449406931f);
    int32_t q = (int32_t)qf;
    float s = fmaf(qf, -0.693145751953125f, d);
    s = fmaf(qf, -1.428606765330187045e-06f, s);
    float u = 0.000198527617612853646278381f;
    u = fmaf(u, s, 0.00139304355252534151077271f);
    u = fmaf(u, s, 0.00833336077630519866943359f);
    u = fmaf(u, s, 0.0416664853692054748535156f);
    u = fmaf(u, s, 0.166666671633720397949219f);
    u = fmaf(u, s, 0.5f);
    u = 1.0f + fmaf(s * s, u, s);
    /* u · 2^q as two exact power-of-two products (ldexp2 in SLEEF) */
    int32_t half = q >> 1;
    return u * ldexpf(1.0f, half) * ldexpf(1.0f, q - half);
}

/* numpy.linspace(start, stop, num, endpoint) in float64. */
static inline void numpy_linspace(double start, double stop, int num, int endpoint, double *out)
{
    int div = endpoint ? num - 1 : num;
    double delta = stop - start;
    if (div > 0) {
        double step = delta / div;
        for (int i = 0; i < num; i++)
            out[i] = step == 0.0 ? (double)i / div * delta + start : (double)i * step + start;
    } else {
        for (int i = 0; i < num; i++)
            out[i] = (double)i * delta + start;
    }
    if (endpoint && num > 1)
        out[num - 1] = stop;
}

/* Python's round() / numpy.rint: half to even (default rounding mode). */
static inline double round_half_even(double x)
{
    return nearbyint(x);
}

#endif
