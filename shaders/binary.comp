#version 450
/* out = a (op) b with NumPy broadcasting; out is contiguous. */
#include "common/tensor.glsl"

layout(local_size_x = 256) in;
layout(constant_id = 9) const uint OP = 0;        /* vkf_binary_op */
layout(constant_id = 10) const uint SAME = 0;     /* 1: a, b contiguous, out's shape */

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

void main()
{
    uint i = flat_index(256);
    if (i >= p.n)
        return;
    uint ia = p.off_a + i, ib = p.off_b + i;
    if (SAME == 0u) {
        ia = p.off_a;
        ib = p.off_b;
        uint r = i;
        for (int d = 4; d >= 0; d--) {
            uint x = r % p.shape[d];
            r /= p.shape[d];
            ia += x * p.sa[d];
            ib += x * p.sb[d];
        }
    }
    float x = a_ld(ia), y = b_ld(ib), v;
    if (OP == 0u)
        v = x + y;
    else if (OP == 1u)
        v = x - y;
    else if (OP == 2u)
        v = x * y;
    else
        v = x / y;
    o_st(i, v);
}
