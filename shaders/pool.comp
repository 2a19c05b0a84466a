#version 450
/*
 * 2-D average / max pooling over the last two dims of a contiguous
 * [planes, h, w] tensor: one invocation per output element.  Floor output
 * size; windows never pass the padded border, so the count_include_pad
 * divisor is always kh * kw.
 */
#include "common/tensor.glsl"

layout(local_size_x = 64) in;
layout(constant_id = 9) const uint MAX = 0;          /* 0: average, 1: max */
layout(constant_id = 10) const uint EXCLUDE_PAD = 0; /* average only */
layout(constant_id = 11) const uint VEC4 = 0;        /* n % 4 == 0 */

/* Mirrors struct pool_push in core/gpu/ops/pool.c. */
layout(push_constant) uniform Push {
    uint n;                        /* output elements */
    uint h, w, ho, wo;
    uint kh, kw;
    int sh, sw, ph, pw;
    uint off_x;
} p;

TENSOR(0, o)
TENSOR(1, x)

#ifdef TEX
/* x through a uniform texel buffer (host: one chunk, f32/f16): SIMD
 * gathers on lavapipe instead of a loop over lanes. */
layout(binding = 8) uniform samplerBuffer x_tex;
#define X_LD(i) texelFetch(x_tex, int(i)).x
#else
#define X_LD(i) x_ld(i)
#endif

/* Output (plane, oy, ox); the caller splits the flat index once. */
float value(uint plane, uint oy, uint ox)
{
    int y0 = int(oy) * p.sh - p.ph, x0 = int(ox) * p.sw - p.pw;
    uint base = p.off_x + plane * p.h * p.w;
    float acc = MAX == 1u ? uintBitsToFloat(0xff800000u) : 0.0;
    uint count = 0u;
    for (uint ky = 0; ky < p.kh; ky++) {
        int iy = y0 + int(ky);
        if (uint(iy) >= p.h)
            continue;
        for (uint kx = 0; kx < p.kw; kx++) {
            int ix = x0 + int(kx);
            if (uint(ix) >= p.w)
                continue;
            float v = X_LD(base + uint(iy) * p.w + uint(ix));
            if (MAX == 1u)
                acc = v > acc || isnan(v) ? v : acc;
            else
                acc += v;
            count++;
        }
    }
    if (MAX == 0u)
        acc /= float(EXCLUDE_PAD == 1u ? count : p.kh * p.kw);
    return acc;
}

void main()
{
    /* Four consecutive outputs per invocation: a quarter of the (per-lane
     * looped) stores when they are one vec4, and one index split (vector
     * integer division is scalarised on CPUs) for the four. */
    uint i = flat_index(64) * 4u;
    if (i >= p.n)
        return;
    uint ox = i % p.wo, rest = i / p.wo;
    uint oy = rest % p.ho, plane = rest / p.ho;
    if (VEC4 == 1u) {
        /* wo % 4 == 0: the four share a row. */
        o_st4(i, vec4(value(plane, oy, ox), value(plane, oy, ox + 1u),
                      value(plane, oy, ox + 2u), value(plane, oy, ox + 3u)));
    } else {
        for (uint e = i; e < min(i + 4u, p.n); e++) {
            o_st(e, value(plane, oy, ox));
            if (++ox == p.wo) {
                ox = 0u;
                if (++oy == p.ho) {
                    oy = 0u;
                    plane++;
                }
            }
        }
    }
}
