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

void main()
{
    uint i = flat_index(64);
    if (i >= p.n)
        return;
    uint ox = i % p.wo, rest = i / p.wo;
    uint oy = rest % p.ho, plane = rest / p.ho;
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
            float v = x_ld(base + uint(iy) * p.w + uint(ix));
            if (MAX == 1u)
                acc = v > acc || isnan(v) ? v : acc;
            else
                acc += v;
            count++;
        }
    }
    if (MAX == 0u)
        acc /= float(EXCLUDE_PAD == 1u ? count : p.kh * p.kw);
    o_st(i, acc);
}
