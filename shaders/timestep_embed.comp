#version 450
/*
 * Sinusoidal timestep embedding, one invocation per output element:
 * out[b, k] = cos(t·f_k) for k < half, sin(t·f_(k-half)) for k < 2·half
 * (swapped with SIN_FIRST), 0 for the odd last column;
 * f_k = exp(-k · coef), coef = ln(max_period) / (half - freq_shift).
 */
#include "common/tensor.glsl"

layout(local_size_x = 64) in;
layout(constant_id = 9) const uint SIN_FIRST = 0;

/* Mirrors struct embed_push in core/gpu/ops/embed.c. */
layout(push_constant) uniform Push {
    uint batch, dim, half_dim, off_t, st;
    float coef, t_scale;
} p;

TENSOR(0, o)
TENSOR(1, t)

void main()
{
    uint idx = flat_index(64u);
    if (idx >= p.batch * p.dim)
        return;
    uint k = idx % p.dim, b = idx / p.dim;
    float v = 0.0;
    if (k < 2u * p.half_dim) {
        bool second = k >= p.half_dim;
        uint f = second ? k - p.half_dim : k;
        float arg = t_ld(p.off_t + b * p.st) * p.t_scale * exp(-float(f) * p.coef);
        v = (second != (SIN_FIRST == 1u)) ? sin(arg) : cos(arg);
    }
    o_st(idx, v);
}
