/*
 * torch.Generator (CPU) and torch.randn(float32) on CPU, bit for bit.
 *
 * Sources followed (PyTorch): aten/src/ATen/core/MT19937RNGEngine.h,
 * CPUGeneratorImpl.cpp, core/DistributionsHelper.h, core/TransformationHelper.h,
 * native/cpu/DistributionTemplates.h (normal_fill, normal_fill_AVX2),
 * native/cpu/avx_mathfun.h.  See docs/sampling.md.
 *
 * The AVX2 kernel is reproduced in scalar C: every step that PyTorch's GCC
 * build fuses into an FMA is written as fmaf(), every other product and sum
 * is rounded on its own (fp_strict.h keeps this compiler from fusing more).
 */
#include "fp_strict.h"

#include <float.h>
#include <math.h>
#include <string.h>

#include <vkflow/sampling.h>

#define MT_M 397
#define MT_MATRIX_A 0x9908b0dfu
#define MT_UPPER 0x80000000u
#define MT_LOWER 0x7fffffffu

void vkf_torch_rng_seed(vkf_torch_rng *rng, uint64_t seed)
{
    rng->seed = seed;
    rng->state[0] = (uint32_t)(seed & 0xffffffffu);
    for (uint32_t j = 1; j < VKF_MT19937_N; j++) {
        uint32_t prev = rng->state[j - 1];
        rng->state[j] = 1812433253u * (prev ^ (prev >> 30)) + j;
    }
    rng->next = VKF_MT19937_N;
    rng->has_next_normal = false;
    rng->next_normal = 0.0;
}

static void twist(vkf_torch_rng *rng)
{
    uint32_t *s = rng->state;
    for (int k = 0; k < VKF_MT19937_N; k++) {
        uint32_t y = (s[k] & MT_UPPER) | (s[(k + 1) % VKF_MT19937_N] & MT_LOWER);
        s[k] = s[(k + MT_M) % VKF_MT19937_N] ^ (y >> 1) ^ ((y & 1u) ? MT_MATRIX_A : 0u);
    }
    rng->next = 0;
}

uint32_t vkf_torch_rng_random(vkf_torch_rng *rng)
{
    if (rng->next >= VKF_MT19937_N)
        twist(rng);
    uint32_t y = rng->state[rng->next++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    y ^= y >> 18;
    return y;
}

uint64_t vkf_torch_rng_random64(vkf_torch_rng *rng)
{
    uint64_t hi = vkf_torch_rng_random(rng);
    uint64_t lo = vkf_torch_rng_random(rng);
    return (hi << 32) | lo;
}

float vkf_torch_rng_uniform_float(vkf_torch_rng *rng)
{
    uint32_t bits = vkf_torch_rng_random(rng) & ((1u << 24) - 1u);
    return (float)bits * (1.0f / 16777216.0f);
}

double vkf_torch_rng_uniform_double(vkf_torch_rng *rng)
{
    uint64_t bits = vkf_torch_rng_random64(rng) & ((UINT64_C(1) << 53) - 1u);
    return (double)bits * (1.0 / 9007199254740992.0);
}

double vkf_torch_rng_normal_double(vkf_torch_rng *rng)
{
    if (rng->has_next_normal) {
        rng->has_next_normal = false;
        return rng->next_normal;
    }
    double u1 = vkf_torch_rng_uniform_double(rng);
    double u2 = vkf_torch_rng_uniform_double(rng);
    double r = sqrt(-2.0 * log1p(-u2));
    double theta = 2.0 * 3.14159265358979323846 * u1;
    rng->next_normal = r * sin(theta);
    rng->has_next_normal = true;
    return r * cos(theta);
}

/* ---- the avx_mathfun kernels, one lane at a time ---- */

static uint32_t f2u(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof(u));
    return u;
}

static float u2f(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof(f));
    return f;
}

/* log256_ps for one lane; PyTorch only calls it on (0, 1]. */
static float avx_log(float x)
{
    if (!(x > 0.0f))
        return NAN;
    if (x < FLT_MIN)
        x = FLT_MIN;
    uint32_t bits = f2u(x);
    int32_t exponent = (int32_t)(bits >> 23) - 0x7f;
    float m = u2f((bits & ~0x7f800000u) | f2u(0.5f));
    float e = (float)exponent + 1.0f;
    float t;
    if (m < 0.707106781186547524f) {
        e = e - 1.0f;
        t = (m - 1.0f) + m;
    } else {
        t = (m - 1.0f) + 0.0f;
    }
    float z = t * t;
    float y = 7.0376836292E-2f;
    y = fmaf(y, t, -1.1514610310E-1f);
    y = fmaf(y, t, 1.1676998740E-1f);
    y = fmaf(y, t, -1.2420140846E-1f);
    y = fmaf(y, t, 1.4249322787E-1f);
    y = fmaf(y, t, -1.6668057665E-1f);
    y = fmaf(y, t, 2.0000714765E-1f);
    y = fmaf(y, t, -2.4999993993E-1f);
    y = fmaf(y, t, 3.3333331174E-1f);
    y = y * t;
    y = fmaf(y, z, e * -2.12194440e-4f);
    y = fmaf(-z, 0.5f, y);
    t = t + y;
    return fmaf(e, 0.693359375f, t);
}

/* sincos256_ps for one lane. */
static void avx_sincos(float x, float *s, float *c)
{
    bool sign_sin = signbit(x);
    x = fabsf(x);
    float y = x * 1.27323954473516f;
    int32_t j = (int32_t)y;
    j = (j + 1) & ~1;
    y = (float)j;
    if (j & 4)
        sign_sin = !sign_sin;
    bool poly_is_sin = (j & 2) == 0;
    bool sign_cos = ((j - 2) & 4) == 0;

    x = fmaf(y, -0.78515625f, x);
    x = fmaf(y, -2.4187564849853515625e-4f, x);
    x = fmaf(y, -3.77489497744594108e-8f, x);

    float z = x * x;
    float yc = fmaf(2.443315711809948E-005f, z, -1.388731625493765E-003f);
    yc = fmaf(yc, z, 4.166664568298827E-002f);
    yc = yc * z;
    yc = fmaf(yc, z, -(z * 0.5f));
    yc = yc + 1.0f;

    float ys = fmaf(-1.9515295891E-4f, z, 8.3321608736E-3f);
    ys = fmaf(ys, z, -1.6666654611E-1f);
    ys = ys * z;
    ys = fmaf(ys, x, x);

    /* The vector code blends with a +0 in the unused lane of the sum. */
    float sv = (poly_is_sin ? ys : yc) + 0.0f;
    float cv = (poly_is_sin ? yc : ys) + 0.0f;
    *s = sign_sin ? -sv : sv;
    *c = sign_cos ? -cv : cv;
}

/* normal_fill_16_AVX2 with mean 0, std 1. */
static void fill16_avx2(float *d)
{
    const float two_pi = (float)(2.0 * 3.14159265358979323846);
    for (int j = 0; j < 8; j++) {
        float u1 = 1.0f - d[j];
        float u2 = d[j + 8];
        float radius = sqrtf(-2.0f * avx_log(u1));
        float theta = two_pi * u2;
        float sn, cs;
        avx_sincos(theta, &sn, &cs);
        d[j] = fmaf(radius * cs, 1.0f, 0.0f);
        d[j + 8] = fmaf(radius * sn, 1.0f, 0.0f);
    }
}

/* normal_fill_16 (the scalar template) with mean 0, std 1. */
static void fill16_scalar(float *d)
{
    for (int j = 0; j < 8; j++) {
        float u1 = 1.0f - d[j];
        float u2 = d[j + 8];
        float radius = sqrtf(-2.0f * logf(u1));
        float theta = (float)(2.0 * 3.14159265358979323846 * (double)u2);
        d[j] = radius * cosf(theta) * 1.0f + 0.0f;
        d[j + 8] = radius * sinf(theta) * 1.0f + 0.0f;
    }
}

void vkf_torch_randn(vkf_torch_rng *rng, float *out, size_t n, vkf_randn_kernel kernel)
{
    if (n < 16) {
        for (size_t i = 0; i < n; i++)
            out[i] = (float)vkf_torch_rng_normal_double(rng);
        return;
    }
    void (*fill16)(float *) = kernel == VKF_RANDN_SCALAR ? fill16_scalar : fill16_avx2;
    for (size_t i = 0; i < n; i++)
        out[i] = vkf_torch_rng_uniform_float(rng);
    for (size_t i = 0; i + 16 <= n; i += 16)
        fill16(out + i);
    if (n % 16) {
        /* torch redraws the last 16 values and transforms them again */
        float *tail = out + n - 16;
        for (int i = 0; i < 16; i++)
            tail[i] = vkf_torch_rng_uniform_float(rng);
        fill16(tail);
    }
}
