#version 450
/* out = a (op) b with NumPy broadcasting; out is contiguous. */
#include "common/tensor.glsl"

layout(local_size_x = 256) in;
layout(constant_id = 9) const uint OP = 0;        /* vkf_binary_op */
layout(constant_id = 10) const uint SAME = 0;     /* 1: a, b contiguous, out's shape */
layout(constant_id = 11) const uint VEC4 = 0;     /* with SAME: 4-aligned, 4 per lane */
layout(constant_id = 12) const uint NDIM = 5;     /* dims of size > 1, right-aligned */

/* Mirrors struct binary_push in core/gpu/ops/binary.c. */
layout(push_constant) uniform Push {
    uint n;
    uint shape[5];
    uint sa[5];
    uint sb[5];
    uint off_a, off_b;
} p;

TENSOR(0, o)
TENSOR(1, a)
TENSOR(2, b)

float apply(float x, float y)
{
    if (OP == 0u)
        return x + y;
    if (OP == 1u)
        return x - y;
    if (OP == 2u)
        return x * y;
    return x / y;
}

void main()
{
    if (SAME == 1u && VEC4 == 1u) {
        uint i4 = flat_index(256) * 4u;
        if (i4 + 3u < p.n) {
            vec4 x = a_ld4(p.off_a + i4), y = b_ld4(p.off_b + i4);
            o_st4(i4, vec4(apply(x.x, y.x), apply(x.y, y.y), apply(x.z, y.z),
                           apply(x.w, y.w)));
        } else {
            for (uint i = i4; i < p.n; i++)
                o_st(i, apply(a_ld(p.off_a + i), b_ld(p.off_b + i)));
        }
        return;
    }
    uint i = flat_index(256);
    if (i >= p.n)
        return;
    uint ia = p.off_a + i, ib = p.off_b + i;
    if (SAME == 0u) {
        ia = p.off_a;
        ib = p.off_b;
        uint r = i;
        for (int d = 4; d >= 5 - int(NDIM); d--) {
            uint x = r % p.shape[d];
            r /= p.shape[d];
            ia += x * p.sa[d];
            ib += x * p.sb[d];
        }
    }
    o_st(i, apply(a_ld(ia), b_ld(ib)));
}
