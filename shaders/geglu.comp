#version 450
/* GEGLU: out[r, c] = x[r, c] · gelu_erf(x[r, C + c]) for x [rows, 2C]. */
#include "common/tensor.glsl"
#include "common/math.glsl"

layout(local_size_x = 256) in;

/* Mirrors struct geglu_push in core/gpu/ops/geglu.c. */
layout(push_constant) uniform Push {
    uint total, C, off_x;
} p;

TENSOR(0, o)
TENSOR(1, x)

void main()
{
    uint idx = flat_index(256u);
    if (idx >= p.total)
        return;
    uint c = idx % p.C, r = idx / p.C;
    uint xb = p.off_x + r * 2u * p.C + c;
    float a = x_ld(xb), g = x_ld(xb + p.C);
    o_st(idx, a * 0.5 * g * (1.0 + erf_approx(g * 0.7071067811865476)));
}
