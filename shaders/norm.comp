#version 450
/*
 * Layer norm (MODE 0), RMS norm (1) and group norm (2) as one row-wise
 * kernel: a "row" is the span normalised together (last dim, or one group
 * of C/G channels × HW for group norm); one workgroup per row.  The
 * affine channel of element `col` of row `row` is
 * (row % G) * (cols / HW) + col / HW, which is col for layer/RMS norm.
 */
#include "common/tensor.glsl"
#define RED_WG 64u
#include "common/reduce.glsl"

layout(local_size_x = 64) in;
layout(constant_id = 9) const uint MODE = 0;
layout(constant_id = 10) const uint HAS_W = 0;
layout(constant_id = 11) const uint HAS_B = 0;
/* 1: cols, hw and the x offset are multiples of 4: vec4 accesses of x and
 * out (the 4 elements of a vec4 then share one affine channel). */
layout(constant_id = 12) const uint VEC4 = 0;

/* Mirrors struct norm_push in core/gpu/ops/norm.c. */
layout(push_constant) uniform Push {
    uint rows, cols, hw, groups;
    uint off_x, off_w, off_b;
    float eps;
} p;

TENSOR(0, o)
TENSOR(1, x)
TENSOR(2, w)
TENSOR(3, b)

void main()
{
    uint row = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    if (row >= p.rows)
        return;
    uint l = gl_LocalInvocationID.x;
    uint xb = p.off_x + row * p.cols, ob = row * p.cols;
    float mean = 0.0;
    uint step = VEC4 == 1u ? RED_WG * 4u : RED_WG;
    uint first = VEC4 == 1u ? l * 4u : l;
    if (MODE != 1u) {
        float s = 0.0;
        for (uint i = first; i < p.cols; i += step) {
            if (VEC4 == 1u) {
                vec4 v = x_ld4(xb + i);
                s += (v.x + v.y) + (v.z + v.w);
            } else {
                s += x_ld(xb + i);
            }
        }
        mean = wg_sum(s) / float(p.cols);
    }
    /* Second pass around the mean: no catastrophic cancellation. */
    float q = 0.0;
    for (uint i = first; i < p.cols; i += step) {
        if (VEC4 == 1u) {
            vec4 d = x_ld4(xb + i) - mean;
            q += dot(d, d);
        } else {
            float d = x_ld(xb + i) - mean;
            q += d * d;
        }
    }
    float inv = inversesqrt(wg_sum(q) / float(p.cols) + p.eps);
    uint cbase = (row % p.groups) * (p.cols / p.hw);
    for (uint i = first; i < p.cols; i += step) {
        uint ch = cbase + i / p.hw;
        if (VEC4 == 1u) {
            vec4 v = (x_ld4(xb + i) - mean) * inv;
            if (MODE == 2u) {
                if (HAS_W == 1u)
                    v *= w_ld(p.off_w + ch);
                if (HAS_B == 1u)
                    v += b_ld(p.off_b + ch);
            } else {
                if (HAS_W == 1u)
                    v *= vec4(w_ld(p.off_w + ch), w_ld(p.off_w + ch + 1u),
                              w_ld(p.off_w + ch + 2u), w_ld(p.off_w + ch + 3u));
                if (HAS_B == 1u)
                    v += vec4(b_ld(p.off_b + ch), b_ld(p.off_b + ch + 1u),
                              b_ld(p.off_b + ch + 2u), b_ld(p.off_b + ch + 3u));
            }
            o_st4(ob + i, v);
        } else {
            float v = (x_ld(xb + i) - mean) * inv;
            if (HAS_W == 1u)
                v *= w_ld(p.off_w + ch);
            if (HAS_B == 1u)
                v += b_ld(p.off_b + ch);
            o_st(ob + i, v);
        }
    }
}
