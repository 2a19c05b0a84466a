#version 450
/*
 * dst[view] = f(src[view]) over a 5-D index space with arbitrary strides on
 * both sides: activations, dtype casts, contiguous copies of views, and
 * writes into slices of a larger tensor (concat, pad).
 */
#include "common/tensor.glsl"
#include "common/math.glsl"

layout(local_size_x = 256) in;
layout(constant_id = 9) const uint OP = 0;        /* vkf_unary_op; 100 = copy, 101 = fill */
/* 1: source and destination views are both contiguous: no index
 * decomposition (vector integer division is scalarised on CPUs). */
layout(constant_id = 10) const uint CONTIG = 0;
/* 1 (with CONTIG): offsets are 4-aligned; each invocation does 4 elements
 * with vec4 accesses (on lavapipe each access loops over the lanes, so
 * fewer, wider accesses are what counts). */
layout(constant_id = 11) const uint VEC4 = 0;
/* Dims that matter (size > 1), right-aligned by the host: the index
 * decomposition divides only by those. */
layout(constant_id = 12) const uint NDIM = 5;

/* Mirrors struct unary_push in core/gpu/ops/unary.c. */
layout(push_constant) uniform Push {
    uint n;
    uint shape[5];
    uint ss[5];
    uint ds[5];
    uint off_s, off_d;
    float a, b;
} p;

TENSOR(0, o)
TENSOR(1, x)

const float SQRT_2_OVER_PI = 0.7978845608028654;

float f(float v)
{
    if (OP == 0u)
        return v / (1.0 + exp(-v));
    if (OP == 1u)
        return 0.5 * v * (1.0 + erf_approx(v * 0.7071067811865476));
    if (OP == 2u) {
        float u = SQRT_2_OVER_PI * (v + 0.044715 * v * v * v);
        return 0.5 * v * (1.0 + tanh(clamp(u, -15.0, 15.0)));
    }
    if (OP == 3u)
        return v * p.a + p.b;
    if (OP == 4u)
        return max(v, 0.0);
    if (OP == 5u)
        return 1.0 / (1.0 + exp(-v));
    if (OP == 6u)
        return tanh(clamp(v, -15.0, 15.0));
    return v;
}

void main()
{
    if (CONTIG == 1u && VEC4 == 1u) {
        uint i4 = flat_index(256) * 4u;
        if (i4 + 3u < p.n) {
            vec4 v = OP == 101u ? vec4(p.a) : x_ld4(p.off_s + i4);
            if (OP != 101u)
                v = vec4(f(v.x), f(v.y), f(v.z), f(v.w));
            o_st4(p.off_d + i4, v);
        } else {
            for (uint i = i4; i < p.n; i++)
                o_st(p.off_d + i, OP == 101u ? p.a : f(x_ld(p.off_s + i)));
        }
        return;
    }
    uint i = flat_index(256);
    if (i >= p.n)
        return;
    uint is = p.off_s + i, id = p.off_d + i;
    if (CONTIG == 0u) {
        uint r = i;
        is = p.off_s;
        id = p.off_d;
        for (int d = 4; d >= 5 - int(NDIM); d--) {
            uint c = r % p.shape[d];
            r /= p.shape[d];
            is += c * p.ss[d];
            id += c * p.ds[d];
        }
    }
    o_st(id, OP == 101u ? p.a : f(x_ld(is)));
}
