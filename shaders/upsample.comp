#version 450
/*
 * torch.nn.functional.interpolate over the last two dims of a contiguous
 * [planes, h, w] tensor: one invocation per output element.  Source
 * indices follow PyTorch's CPU kernels (UpSample.h) in f32, so nearest
 * modes pick the same pixels; `precise` keeps the compiler from fusing the
 * index arithmetic into an FMA that would round differently.
 */
#include "common/tensor.glsl"

layout(local_size_x = 64) in;
layout(constant_id = 9) const uint MODE = 0;       /* vkf_upsample_mode */
layout(constant_id = 10) const uint ALIGN = 0;     /* bilinear align_corners */
layout(constant_id = 11) const uint VEC4 = 0;      /* n % 4 == 0 */

/* Mirrors struct upsample_push in core/gpu/ops/resample.c. */
layout(push_constant) uniform Push {
    uint n;                        /* output elements */
    uint h, w, ho, wo;
    float scale_h, scale_w;        /* source step per output step */
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

uint nearest(uint dst, uint len, uint olen, float scale)
{
    if (MODE == 0u) {
        /* torch's nearest_idx keeps these two shortcuts. */
        if (olen == len)
            return dst;
        if (olen == 2u * len)
            return dst >> 1;
        precise float s = float(dst) * scale;
        return min(uint(floor(s)), len - 1u);
    }
    precise float s = (float(dst) + 0.5) * scale;
    return min(uint(floor(s)), len - 1u);
}

void linear(uint dst, uint len, float scale, out uint i0, out uint i1,
            out float l1)
{
    precise float src = ALIGN == 1u ? scale * float(dst)
                                    : max(scale * (float(dst) + 0.5) - 0.5, 0.0);
    i0 = min(uint(floor(src)), len - 1u);
    i1 = i0 < len - 1u ? i0 + 1u : i0;
    l1 = clamp(src - float(i0), 0.0, 1.0);
}

/* Output (plane, oy, ox); the caller splits the flat index once. */
float value(uint plane, uint oy, uint ox)
{
    uint base = p.off_x + plane * p.h * p.w;
    float v;
    if (MODE == 2u) {
        uint y0, y1, x0, x1;
        float ly, lx;
        linear(oy, p.h, p.scale_h, y0, y1, ly);
        linear(ox, p.w, p.scale_w, x0, x1, lx);
        float a = (1.0 - lx) * X_LD(base + y0 * p.w + x0) + lx * X_LD(base + y0 * p.w + x1);
        float b = (1.0 - lx) * X_LD(base + y1 * p.w + x0) + lx * X_LD(base + y1 * p.w + x1);
        v = (1.0 - ly) * a + ly * b;
    } else {
        uint sy = nearest(oy, p.h, p.ho, p.scale_h);
        uint sx = nearest(ox, p.w, p.wo, p.scale_w);
        v = X_LD(base + sy * p.w + sx);
    }
    return v;
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
