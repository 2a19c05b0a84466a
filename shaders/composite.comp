#version 450
/*
 * Masked paste of src into a copy of dst (ComfyUI's latent composites):
 * o = dst outside the region [top, top+rh) x [left, left+rw); inside it
 * o = m·s + (1 − m)·d with s = src[b mod bs, c, y − top, x − left] and
 * m = mask[b mod bm, y − top, x − left] (or o = s without a mask).
 * dst, o: [B, C, H, W]; src: [bs, C, hs, ws]; mask: [bm, hs, ws].
 */
#include "common/tensor.glsl"

layout(local_size_x = 256) in;
layout(constant_id = 9) const uint HAS_MASK = 0;

/* Mirrors struct composite_push in core/gpu/ops/latent_ops.c. */
layout(push_constant) uniform Push {
    uint n, C, H, W;
    uint hs, ws, bs, bm;
    uint top, left, rh, rw;
    uint off_d, off_s, off_m;
} p;

TENSOR(0, o)
TENSOR(1, d)
TENSOR(2, s)
TENSOR(3, m)

void main()
{
    uint i = flat_index(256u);
    if (i >= p.n)
        return;
    uint x = i % p.W, r = i / p.W;
    uint y = r % p.H;
    r /= p.H;
    uint c = r % p.C, b = r / p.C;
    float dv = d_ld(p.off_d + i);
    if (y < p.top || y >= p.top + p.rh || x < p.left || x >= p.left + p.rw) {
        o_st(i, dv);
        return;
    }
    uint sy = y - p.top, sx = x - p.left;
    float sv = s_ld(p.off_s + (((b % p.bs) * p.C + c) * p.hs + sy) * p.ws + sx);
    if (HAS_MASK == 0u) {
        o_st(i, sv);
        return;
    }
    float mv = m_ld(p.off_m + ((b % p.bm) * p.hs + sy) * p.ws + sx);
    precise float a = mv * sv;
    precise float inv = 1.0 - mv;
    precise float e = inv * dv;
    precise float v = a + e;
    o_st(i, v);
}
