/*
 * Private: torch's float32 pow and tan on x86 (Vectorized<float>::pow/tan ->
 * Sleef_powf8_u10 / Sleef_tanf8_u10), evaluated one lane at a time for the
 * arguments the schedules use (pow: positive finite base; tan: |x| < 125).
 * SLEEF works in double-float (pairs of floats) arithmetic; the FMA forms
 * below are those of its FMA-enabled build (AVX2, AVX-512).  Written from
 * the published algorithms (logkf, expkf, xpowf, xtanf_u1 and the
 * double-float helpers of sleefsimdsp.c / df.h).
 */
#ifndef VKF_SAMPLING_SLEEF_FLOAT_H
#define VKF_SAMPLING_SLEEF_FLOAT_H

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

static inline df2 df_add_ff(float x, float y)
{
    float s = x + y;
    return df_make(s, (x - s) + y);
}

static inline df2 df_add_f2f(df2 x, float y)
{
    float s = x.x + y;
    return df_make(s, ((x.x - s) + y) + x.y);
}

static inline df2 df_rec(df2 d)
{
    float s = 1.0f / d.x;
    return df_make(s, s * fmaf(-d.y, s, fmaf(-d.x, s, 1.0f)));
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
    if (d.x < -104.0f)
        return 0.0f;
    if (!(fabsf(u) < 256.0f))
        return isnan(u) ? u : INFINITY; /* overflow; SLEEF's ldexp saturates too */
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
    /* ldexp in two exact power-of-two products, as SLEEF (which only
     * differs for subnormal results) */
    int32_t half = q >> 1;
    return u * ldexpf(1.0f, half) * ldexpf(1.0f, q - half);
}

/* Sleef_powf_u10 for x > 0 finite, y finite (what the schedules need). */
static inline float sleef_powf(float x, float y)
{
    if (y == 0.0f || x == 1.0f)
        return 1.0f;
    float r = sleef_expkf(df_mul_f2f(sleef_logkf(x), y));
    return isnan(r) ? INFINITY : r;
}

/* Sleef_tanf_u10 for |d| < 125 (larger arguments: the C library). */
static inline float sleef_tanf(float d)
{
    if (!(fabsf(d) < 125.0f))
        return tanf(d);
    float u = nearbyintf(d * (float)(2 * 0.318309886183790671537767526745028724));
    int32_t q = (int32_t)u;
    float v = fmaf(u, -3.1414794921875f * 0.5f, d);
    df2 s = df_add2_ff(v, u * (-0.00011315941810607910156f * 0.5f));
    s = df_add_f2f(s, u * (-1.9841872589410058936e-09f * 0.5f));
    bool odd = (q & 1) != 0;
    if (odd) {
        s.x = -s.x;
        s.y = -s.y;
    }
    df2 t = s;
    s = df_normalize(df_squ(s));
    u = 0.00446636462584137916564941f;
    u = fmaf(u, s.x, -8.3920182078145444393158e-05f);
    u = fmaf(u, s.x, 0.0109639242291450500488281f);
    u = fmaf(u, s.x, 0.0212360303848981857299805f);
    u = fmaf(u, s.x, 0.0540687143802642822265625f);
    df2 x = df_add_ff(0.133325666189193725585938f, u * s.x);
    x = df_add_ff2(1.0f, df_mul_f2f2(df_add_ff2(0.33333361148834228515625f, df_mul_f2f2(s, x)), s));
    x = df_mul_f2f2(t, x);
    if (odd)
        x = df_rec(x);
    u = x.x + x.y;
    if (d == 0.0f && signbit(d))
        return d;
    return u;
}

#endif
