/*
 * Private: torch's float32 pow on x86 (Vectorized<float>::pow ->
 * Sleef_powf8_u10), for a positive finite base, evaluated one lane at a
 * time.  SLEEF computes exp(y·log x) in double-float (pairs of floats)
 * arithmetic; the FMA forms below are those of its FMA-enabled build (AVX2,
 * AVX-512).  Written from the published algorithm (logkf, expkf and the
 * double-float helpers of sleefsimdsp.c / df.h).
 */
#ifndef VKF_SAMPLING_SLEEF_POWF_H
#define VKF_SAMPLING_SLEEF_POWF_H

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "fp_strict.h"

typedef struct {
    float x, y;
} df2;

static inline df2 df_make(float x, float y)
{
    df2 r = {x, y};
    return r;
}

/* s + t with |s| >= |t| not required: the error term by the two-sum. */
static inline df2 df_add2_ff(float x, float y)
{
    float s = x + y, v = s - x;
    return df_make(s, (x - (s - v)) + (y - v));
}

static inline df2 df_add2_f2f(df2 x, float y)
{
    float s = x.x + y, v = s - x.x;
    float t = (x.x - (s - v)) + (y - v);
    return df_make(s, t + x.y);
}

static inline df2 df_add2_f2f2(df2 x, df2 y)
{
    float s = x.x + y.x, v = s - x.x;
    float t = (x.x - (s - v)) + (y.x - v);
    return df_make(s, t + (x.y + y.y));
}

/* |x| >= |y| */
static inline df2 df_add_f2f2(df2 x, df2 y)
{
    float s = x.x + y.x;
    return df_make(s, (((x.x - s) + y.x) + x.y) + y.y);
}

static inline df2 df_add_ff2(float x, df2 y)
{
    float s = x + y.x;
    return df_make(s, ((x - s) + y.x) + y.y);
}

static inline df2 df_normalize(df2 t)
{
    float s = t.x + t.y;
    return df_make(s, (t.x - s) + t.y);
}

static inline df2 df_scale(df2 d, float s)
{
    return df_make(d.x * s, d.y * s);
}

static inline df2 df_mul_f2f(df2 x, float y)
{
    float s = x.x * y;
    return df_make(s, fmaf(x.y, y, fmaf(x.x, y, -s)));
}

static inline df2 df_mul_f2f2(df2 x, df2 y)
{
    float s = x.x * y.x;
    return df_make(s, fmaf(x.x, y.y, fmaf(x.y, y.x, fmaf(x.x, y.x, -s))));
}

static inline df2 df_squ(df2 x)
{
    float s = x.x * x.x;
    return df_make(s, fmaf(x.x + x.x, x.y, fmaf(x.x, x.x, -s)));
}

static inline df2 df_div(df2 n, df2 d)
{
    float t = 1.0f / d.x;
    float s = n.x * t;
    float u = fmaf(t, n.x, -s);
    float v = fmaf(-d.y, t, fmaf(-d.x, t, 1.0f));
    return df_make(s, fmaf(s, v, fmaf(n.y, t, u)));
}

static inline uint32_t sleef_f2u(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof(u));
    return u;
}

static inline float sleef_u2f(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof(f));
    return f;
}

/* log(d) as a double-float, d > 0 finite. */
static inline df2 sleef_logkf(float d)
{
    bool tiny = d < FLT_MIN;
    if (tiny)
        d = d * (4294967296.0f * 4294967296.0f);
    int32_t e = (int32_t)((sleef_f2u(d * (1.0f / 0.75f)) >> 23) & 0xff) - 0x7f;
    float m = sleef_u2f(sleef_f2u(d) + (uint32_t)(-e) * (1u << 23));
    if (tiny)
        e -= 64;

    df2 x = df_div(df_add2_ff(-1.0f, m), df_add2_ff(1.0f, m));
    df2 x2 = df_squ(x);
    float t = 0.240320354700088500976562f;
    t = fmaf(t, x2.x, 0.285112679004669189453125f);
    t = fmaf(t, x2.x, 0.400007992982864379882812f);
    df2 c = df_make(0.66666662693023681640625f, 3.69183861259614332084311e-09f);
    df2 s = df_mul_f2f(df_make(0.69314718246459960938f, -1.904654323148236017e-09f), (float)e);
    s = df_add_f2f2(s, df_scale(x, 2.0f));
    s = df_add_f2f2(s, df_mul_f2f2(df_mul_f2f2(x2, x), df_add2_f2f2(df_mul_f2f(x2, t), c)));
    return s;
}

static inline float sleef_expkf(df2 d)
{
    float u = (d.x + d.y) * 1.442695040888963407359924681001892137426645954152985934135449406931f;
    float qf = nearbyintf(u);
    int32_t q = (int32_t)qf;
    df2 s = df_add2_f2f(d, qf * -0.693145751953125f);
    s = df_add2_f2f(s, qf * -1.428606765330187045e-06f);
    s = df_normalize(s);
    u = 0.00136324646882712841033936f;
    u = fmaf(u, s.x, 0.00836596917361021041870117f);
    u = fmaf(u, s.x, 0.0416710823774337768554688f);
    u = fmaf(u, s.x, 0.166665524244308471679688f);
    u = fmaf(u, s.x, 0.499999850988388061523438f);
    df2 t = df_add_f2f2(s, df_mul_f2f(df_squ(s), u));
    t = df_add_ff2(1.0f, t);
    u = t.x + t.y;
    /* ldexp by |q| < 64: one exact power-of-two product in this range */
    u = u * ldexpf(1.0f, q);
    if (d.x < -104.0f)
        return 0.0f;
    return u;
}

/* Sleef_powf_u10 for x > 0 finite, y finite (what the schedules need). */
static inline float sleef_powf(float x, float y)
{
    if (y == 0.0f || x == 1.0f)
        return 1.0f;
    float r = sleef_expkf(df_mul_f2f(sleef_logkf(x), y));
    return isnan(r) ? INFINITY : r;
}

#endif
