#version 450
/*
 * Rotary position embedding: one invocation per (batch, token, head, pair).
 * Pair i of the head vector belongs to axis a (axes in order, PAIRS[a]
 * pairs each; pairs past them pass through) and is rotated by
 * pos_a · 2^(-j · COEF[a]), j = index of the pair within its axis,
 * COEF[a] = 2·log2(theta) / axis_dim (host, double).  The pair's elements
 * are (2j, 2j+1) of the axis segment (interleaved) or (j, j + PAIRS[a])
 * (rotate-half).  Output is contiguous f32 [B, N, H, D].
 */
#include "common/tensor.glsl"

layout(local_size_x = 64) in;
layout(constant_id = 9) const uint HALF_MODE = 0;   /* vkf_rope_mode */

/* Mirrors struct rope_push in core/gpu/ops/rope.c. */
layout(push_constant) uniform Push {
    uint total, ntok, heads, half_d;
    uint off_x, sb, sn, sh, sd;
    uint seq_len, grid1, grid2;
    uint pairs0, pairs1, pairs2;
    int pos0, pos1, pos2;
    float coef0, coef1, coef2;
} p;

TENSOR(0, o)
TENSOR(1, x)

void main()
{
    uint idx = flat_index(64u);
    if (idx >= p.total)
        return;
    uint i = idx % p.half_d;
    uint t = idx / p.half_d;
    uint h = t % p.heads;
    t /= p.heads;
    uint n = t % p.ntok;
    uint b = t / p.ntok;
    uint xb = p.off_x + b * p.sb + n * p.sn + h * p.sh;
    uint ob = ((b * p.ntok + n) * p.heads + h) * (2u * p.half_d);

    uint e0 = 2u * i, e1 = 2u * i + 1u;
    float angle = 0.0;
    bool rotate = n < p.seq_len;
    uint seg = 0u, j = i, pairs = 0u;
    int pos = 0;
    float coef = 0.0;
    if (i < p.pairs0) {
        pairs = p.pairs0;
        pos = int(n / (p.grid1 * p.grid2)) + p.pos0;
        coef = p.coef0;
    } else if (i < p.pairs0 + p.pairs1) {
        seg = 2u * p.pairs0;
        j = i - p.pairs0;
        pairs = p.pairs1;
        pos = int((n / p.grid2) % p.grid1) + p.pos1;
        coef = p.coef1;
    } else if (i < p.pairs0 + p.pairs1 + p.pairs2) {
        seg = 2u * (p.pairs0 + p.pairs1);
        j = i - p.pairs0 - p.pairs1;
        pairs = p.pairs2;
        pos = int(n % p.grid2) + p.pos2;
        coef = p.coef2;
    } else {
        rotate = false;
    }
    if (pairs != 0u) {
        e0 = HALF_MODE == 1u ? seg + j : seg + 2u * j;
        e1 = HALF_MODE == 1u ? seg + j + pairs : seg + 2u * j + 1u;
        angle = float(pos) * exp2(-float(j) * coef);
    }
    float x0 = x_ld(xb + e0 * p.sd), x1 = x_ld(xb + e1 * p.sd);
    if (rotate) {
        float c = cos(angle), s = sin(angle);
        o_st(ob + e0, x0 * c - x1 * s);
        o_st(ob + e1, x0 * s + x1 * c);
    } else {
        o_st(ob + e0, x0);
        o_st(ob + e1, x1);
    }
}
