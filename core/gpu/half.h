/* f16 / bf16 <-> f32 on the host, round to nearest even. */
#ifndef VKF_GPU_HALF_H
#define VKF_GPU_HALF_H

#include <stdint.h>
#include <string.h>

static inline uint32_t vkf_f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static inline float vkf_bits_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static inline uint16_t vkf_f32_to_bf16(float f)
{
    uint32_t u = vkf_f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((u >> 16) | 0x40);  /* quiet NaN */
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

static inline float vkf_bf16_to_f32(uint16_t h)
{
    return vkf_bits_f32((uint32_t)h << 16);
}

static inline uint16_t vkf_f32_to_f16(float f)
{
    uint32_t u = vkf_f32_bits(f);
    uint32_t sign = (u >> 16) & 0x8000u;
    uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u)
        return (uint16_t)(sign | 0x7e00u);
    if (a >= 0x477ff000u)                 /* rounds to >= 65520: inf */
        return (uint16_t)(sign | 0x7c00u);
    if (a < 0x38800000u) {                /* subnormal or zero in f16 */
        /* Adding 0.5 aligns the mantissa so FP rounding does RNE for us. */
        float r = vkf_bits_f32(a) + 0.5f;
        return (uint16_t)(sign | (vkf_f32_bits(r) - 0x3f000000u));
    }
    uint32_t mant_odd = (a >> 13) & 1u;
    a += 0xc8000fffu + mant_odd;          /* rebias exponent, round */
    return (uint16_t)(sign | (a >> 13));
}

static inline float vkf_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t mant = h & 0x3ffu;
    if (exp == 0) {
        float m = (float)mant * (1.0f / 16777216.0f);  /* mant * 2^-24 */
        return vkf_bits_f32(vkf_f32_bits(m) | sign);
    }
    if (exp == 31)
        return vkf_bits_f32(sign | 0x7f800000u | (mant << 13));
    return vkf_bits_f32(sign | ((exp + 112) << 23) | (mant << 13));
}

#endif
