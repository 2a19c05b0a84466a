#version 450
/* Softmax over rows of `cols` elements; one workgroup per row. */
#include "common/tensor.glsl"
#define RED_WG 64u
#include "common/reduce.glsl"

layout(local_size_x = 64) in;

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
    for (uint i = l; i < p.cols; i += RED_WG)
        m = max(m, x_ld(xb + i));
    m = wg_max(m);
    float s = 0.0;
    for (uint i = l; i < p.cols; i += RED_WG)
        s += exp(x_ld(xb + i) - m);
    s = wg_sum(s);
    float inv = 1.0 / s;
    for (uint i = l; i < p.cols; i += RED_WG)
        o_st(ob + i, exp(x_ld(xb + i) - m) * inv);
}
