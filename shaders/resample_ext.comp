#version 450
/*
 * Resampling modes beyond upsample.comp, as torch / ComfyUI compute them:
 *   MODE 0  'area' = adaptive_avg_pool2d over the last two dims
 *   MODE 1  'bicubic' (A = -0.75, align_corners=False, edge-clamped taps)
 *   MODE 2  one pass of ComfyUI's bislerp along AXIS (0: w, 1: h): each
 *           output pixel is the slerp of two input channel vectors.
 * Modes 0/1: x, o contiguous [planes, h, w] → [planes, ho, wo], one
 * invocation per output element.  Mode 2: x [N, C, h, w] → o [N, C, ho, wo]
 * with only the AXIS dim changed; one invocation per (n, oy, ox).
 */
#include "common/tensor.glsl"

layout(local_size_x = 64) in;
layout(constant_id = 9) const uint MODE = 0;
layout(constant_id = 10) const uint AXIS = 0;

/* Mirrors struct resample_ext_push in core/gpu/ops/latent_ops.c. */
layout(push_constant) uniform Push {
    uint n;                        /* invocations */
    uint C, h, w, ho, wo;
    float scale_h, scale_w;        /* in / out */
    uint off_x;
} p;

TENSOR(0, o)
TENSOR(1, x)

float cc1(float t)
{
    const float A = -0.75;
    precise float v = ((A + 2.0) * t - (A + 3.0)) * t * t + 1.0;
    return v;
}

float cc2(float t)
{
    const float A = -0.75;
    precise float v = ((A * t - 5.0 * A) * t + 8.0 * A) * t - 4.0 * A;
    return v;
}

void cubic_taps(uint dst, uint len, float scale, out int idx, out vec4 wt)
{
    precise float real = scale * (float(dst) + 0.5) - 0.5;
    idx = min(int(floor(real)), int(len) - 1);
    float t = clamp(real - float(idx), 0.0, 1.0);
    wt = vec4(cc2(t + 1.0), cc1(t), cc1(1.0 - t), cc2(2.0 - t));
}

float area(uint plane, uint oy, uint ox)
{
    uint h0 = (oy * p.h) / p.ho, h1 = ((oy + 1u) * p.h + p.ho - 1u) / p.ho;
    uint w0 = (ox * p.w) / p.wo, w1 = ((ox + 1u) * p.w + p.wo - 1u) / p.wo;
    uint base = p.off_x + plane * p.h * p.w;
    precise float sum = 0.0;
    for (uint iy = h0; iy < h1; iy++)
        for (uint ix = w0; ix < w1; ix++)
            sum += x_ld(base + iy * p.w + ix);
    precise float v = sum / float(h1 - h0) / float(w1 - w0);
    return v;
}

float bicubic(uint plane, uint oy, uint ox)
{
    int iy, ix;
    vec4 wy, wx;
    cubic_taps(oy, p.h, p.scale_h, iy, wy);
    cubic_taps(ox, p.w, p.scale_w, ix, wx);
    uint base = p.off_x + plane * p.h * p.w;
    precise float acc = 0.0;
    for (int j = 0; j < 4; j++) {
        uint ry = uint(clamp(iy - 1 + j, 0, int(p.h) - 1));
        precise float row = 0.0;
        for (int k = 0; k < 4; k++) {
            uint rx = uint(clamp(ix - 1 + k, 0, int(p.w) - 1));
            row += x_ld(base + ry * p.w + rx) * wx[k];
        }
        acc += row * wy[j];
    }
    return acc;
}

/* ComfyUI generate_bilinear_data: torch bilinear interpolation of the
 * index ramps 0..len-1 and 1..len-1,len-1. */
void bislerp_coords(uint dst, uint len, float scale, out uint c1, out uint c2,
                    out float ratio)
{
    precise float real = max(scale * (float(dst) + 0.5) - 0.5, 0.0);
    uint i0 = uint(real);
    uint i1 = i0 < len - 1u ? i0 + 1u : i0;
    float l1 = clamp(real - float(i0), 0.0, 1.0);
    precise float l0 = 1.0 - l1;
    precise float v1 = float(i0) * l0 + float(i1) * l1;
    float a0 = float(i0 + 1u < len ? i0 + 1u : len - 1u);
    float a1 = float(i1 + 1u < len ? i1 + 1u : len - 1u);
    precise float v2 = a0 * l0 + a1 * l1;
    ratio = v1 - floor(v1);
    c1 = uint(v1);
    c2 = uint(v2);
}

void bislerp_pass(uint i)
{
    uint ox = i % p.wo, r = i / p.wo;
    uint oy = r % p.ho, nb = r / p.ho;
    uint c1, c2;
    float ratio;
    uint y1 = oy, y2 = oy, x1 = ox, x2 = ox;
    if (AXIS == 0u)
        bislerp_coords(ox, p.w, p.scale_w, x1, x2, ratio);
    else
        bislerp_coords(oy, p.h, p.scale_h, y1, y2, ratio);
    uint plane = p.h * p.w, oplane = p.ho * p.wo;
    uint b1 = p.off_x + nb * p.C * plane + y1 * p.w + x1;
    uint b2 = p.off_x + nb * p.C * plane + y2 * p.w + x2;
    uint ob = nb * p.C * oplane + oy * p.wo + ox;
    float n1 = 0.0, n2 = 0.0;
    for (uint c = 0u; c < p.C; c++) {
        float a = x_ld(b1 + c * plane), b = x_ld(b2 + c * plane);
        n1 += a * a;
        n2 += b * b;
    }
    n1 = sqrt(n1);
    n2 = sqrt(n2);
    float dot_ = 0.0;
    for (uint c = 0u; c < p.C; c++) {
        float a = n1 == 0.0 ? 0.0 : x_ld(b1 + c * plane) / n1;
        float b = n2 == 0.0 ? 0.0 : x_ld(b2 + c * plane) / n2;
        dot_ += a * b;
    }
    float r1 = 1.0 - ratio;
    if (dot_ > 1.0 - 1e-5) {
        for (uint c = 0u; c < p.C; c++)
            o_st(ob + c * oplane, x_ld(b1 + c * plane));
        return;
    }
    if (dot_ < 1e-5 - 1.0) {
        for (uint c = 0u; c < p.C; c++) {
            precise float v = x_ld(b1 + c * plane) * r1 + x_ld(b2 + c * plane) * ratio;
            o_st(ob + c * oplane, v);
        }
        return;
    }
    float omega = acos(dot_);
    float so = sin(omega);
    float k1 = sin(r1 * omega) / so, k2 = sin(ratio * omega) / so;
    float scale = n1 * r1 + n2 * ratio;
    for (uint c = 0u; c < p.C; c++) {
        float a = n1 == 0.0 ? 0.0 : x_ld(b1 + c * plane) / n1;
        float b = n2 == 0.0 ? 0.0 : x_ld(b2 + c * plane) / n2;
        o_st(ob + c * oplane, (k1 * a + k2 * b) * scale);
    }
}

void main()
{
    uint i = flat_index(64u);
    if (i >= p.n)
        return;
    if (MODE == 2u) {
        bislerp_pass(i);
        return;
    }
    uint ox = i % p.wo, r = i / p.wo;
    uint oy = r % p.ho, plane = r / p.ho;
    o_st(i, MODE == 0u ? area(plane, oy, ox) : bicubic(plane, oy, ox));
}
