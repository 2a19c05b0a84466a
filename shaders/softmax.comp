#version 450
/* Softmax over rows of `cols` elements; one workgroup per row. */
#include "common/tensor.glsl"
#define RED_WG 64u
#include "common/reduce.glsl"

layout(local_size_x = 64) in;
/* 1: cols and offset are multiples of 4: vec4 accesses. */
layout(constant_id = 9) const uint VEC4 = 0;

/* Mirrors struct softmax_push in core/gpu/ops/softmax.c. */
layout(push_constant) uniform Push {
    uint rows, cols, off_x;
} p;

TENSOR(0, o)
TENSOR(1, x)

void main()
{
    uint row = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    if (row >= p.rows)
        return;
    uint l = gl_LocalInvocationID.x;
    uint xb = p.off_x + row * p.cols, ob = row * p.cols;
    float m = -3.402823466e38;
    float s = 0.0;
    if (VEC4 == 1u) {
        for (uint i = l * 4u; i < p.cols; i += RED_WG * 4u) {
            vec4 v = x_ld4(xb + i);
            m = max(m, max(max(v.x, v.y), max(v.z, v.w)));
        }
        m = wg_max(m);
        for (uint i = l * 4u; i < p.cols; i += RED_WG * 4u) {
            vec4 e = exp(x_ld4(xb + i) - m);
            s += e.x + e.y + e.z + e.w;
        }
        float inv = 1.0 / wg_sum(s);
        for (uint i = l * 4u; i < p.cols; i += RED_WG * 4u)
            o_st4(ob + i, exp(x_ld4(xb + i) - m) * inv);
        return;
    }
    for (uint i = l; i < p.cols; i += RED_WG)
        m = max(m, x_ld(xb + i));
    m = wg_max(m);
    for (uint i = l; i < p.cols; i += RED_WG)
        s += exp(x_ld(xb + i) - m);
    float inv = 1.0 / wg_sum(s);
    for (uint i = l; i < p.cols; i += RED_WG)
        o_st(ob + i, exp(x_ld(xb + i) - m) * inv);
}
