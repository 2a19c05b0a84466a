#version 450
/*
 * Per-pixel ops of ComfyUI's image and mask nodes (core/gpu/ops/image_ops.c).
 * One invocation per output element; MODE (specialization constant 9):
 *   0  BLEND        o = clamp(a·f0 + blend(a, b)·f1, 0, 1), a, b [B,H,W,C]
 *   1  MASKCOMP     MaskComposite: d [B,H,W], s [b2,h2,w2] at (ox, oy), op u0
 *   2  THRESHOLD    o = x > f0
 *   3  FEATHER      FeatherMask ramps (u0..u3 = left, top, right, bottom)
 *   4  OUTPAINT     ImagePadForOutpaint's mask [1,H,W] (image h2×w2 at
 *                   (ox, oy), u2/u3 = right/bottom, c2 = feathering)
 *   5  GROW         one grey dilation (u0 = 1) / erosion of [B,H,W] with the
 *                   3×3 cross (u1 = 1, tapered) or box, edges replicated
 *   6  EXPAND3      o [B,H,W,3] = m [B,H,W]
 *   7  FILTER       1-D correlation of [B,H,W,C] along W (u0 = 0) or H with
 *                   weights w (u1 taps, centred), border u2: 0 reflect,
 *                   1 replicate; u3 = 1: sharpen output clamp(f0·x − f1·acc)
 *                   with x = slot 3
 *   8  LANCZOS      PIL resampling pass along W (u0 = 0) or H: coefficient
 *                   rows [xmin, count, w0 .. w(u1-1)] per output index,
 *                   clamped to [0, 1]
 *   9  GRAY         o [B,H,W] = 0.299 r + 0.587 g + 0.114 b of [B,H,W,C]
 *  10  SOBEL        o [B,H,W,2] = (sqrt(gx² + gy² + 1e-6), direction 0..3)
 *                   of [B,H,W], replicate border (kornia spatial_gradient)
 *  11  NMS          kornia canny's non-maximum suppression of [B,H,W,2]
 *                   (zero outside) and the double threshold f0 < f1:
 *                   o = 0, 0.5 (weak) or 1 (strong)
 *  12  FILL         o [B,H,W,C] = (f0, f1, f2)[c] (C = 1: f0)
 */
#include "common/tensor.glsl"

layout(local_size_x = 64) in;
layout(constant_id = 9) const uint MODE = 0;

/* Mirrors struct image_push in core/gpu/ops/image_ops.c. */
layout(push_constant) uniform Push {
    uint n;
    uint B, H, W, C;
    uint b2, h2, w2, c2;
    int ox, oy;
    uint u0, u1, u2, u3;
    float f0, f1, f2;
    uint off1, off2, off3;
} p;

TENSOR(0, o)
TENSOR(1, x)
TENSOR(2, y)
TENSOR(3, z)

float blend(float a, float b)
{
    uint m = p.u0;
    if (m == 0u)
        return b;
    if (m == 1u) {
        precise float v = a * b;
        return v;
    }
    if (m == 2u) {
        precise float v = 1.0 - (1.0 - a) * (1.0 - b);
        return v;
    }
    if (m == 3u) {
        precise float lo = 2.0 * a * b;
        precise float hi = 1.0 - 2.0 * (1.0 - a) * (1.0 - b);
        return a <= 0.5 ? lo : hi;
    }
    if (m == 4u) {
        precise float g = a <= 0.25 ? ((16.0 * a - 12.0) * a + 4.0) * a : sqrt(a);
        precise float lo = a - (1.0 - 2.0 * b) * a * (1.0 - a);
        precise float hi = a + (2.0 * b - 1.0) * (g - a);
        return b <= 0.5 ? lo : hi;
    }
    precise float v = a - b;
    return v;
}

float mask_op(float d, float s)
{
    uint m = p.u0;
    if (m == 0u) {
        precise float v = d * s;
        return v;
    }
    if (m == 1u) {
        precise float v = d + s;
        return v;
    }
    if (m == 2u) {
        precise float v = d - s;
        return v;
    }
    /* bool(round(v)): |v| > 0.5 (round half to even sends ±0.5 to 0) */
    bool bd = abs(d) > 0.5, bs = abs(s) > 0.5;
    bool r = m == 3u ? (bd && bs) : m == 4u ? (bd || bs) : (bd != bs);
    return r ? 1.0 : 0.0;
}

uint reflect_idx(int i, int n)
{
    if (p.u2 == 1u)
        return uint(clamp(i, 0, n - 1));
    if (i < 0)
        i = -i;
    if (i >= n)
        i = 2 * n - 2 - i;
    return uint(clamp(i, 0, n - 1));
}

float rate(uint k, uint len)
{
    precise float v = float(k + 1u) / float(len);
    return v;
}

void main()
{
    uint i = flat_index(64u);
    if (i >= p.n)
        return;
    if (MODE == 0u) {
        float a = x_ld(p.off1 + i), b = y_ld(p.off2 + i);
        precise float v = a * p.f0 + blend(a, b) * p.f1;
        o_st(i, clamp(v, 0.0, 1.0));
    } else if (MODE == 1u) {
        uint xx = i % p.W, r = i / p.W;
        uint yy = r % p.H, b = r / p.H;
        float d = x_ld(p.off1 + i);
        int sx = int(xx) - p.ox, sy = int(yy) - p.oy;
        float v = d;
        if (sx >= 0 && sy >= 0 && sx < int(p.w2) && sy < int(p.h2))
            v = mask_op(d, y_ld(p.off2 + ((b % p.b2) * p.h2 + uint(sy)) * p.w2 + uint(sx)));
        o_st(i, clamp(v, 0.0, 1.0));
    } else if (MODE == 2u) {
        o_st(i, x_ld(p.off1 + i) > p.f0 ? 1.0 : 0.0);
    } else if (MODE == 3u) {
        uint xx = i % p.W, yy = (i / p.W) % p.H;
        precise float v = x_ld(p.off1 + i);
        if (xx < p.u0)
            v *= rate(xx, p.u0);
        /* output[:, :, -k] for k < right: column 0 for k = 0, else W - k */
        if (p.u2 > 0u && (xx == 0u || xx > p.W - p.u2))
            v *= rate(xx == 0u ? 0u : p.W - xx, p.u2);
        if (yy < p.u1)
            v *= rate(yy, p.u1);
        if (p.u3 > 0u && (yy == 0u || yy > p.H - p.u3))
            v *= rate(yy == 0u ? 0u : p.H - yy, p.u3);
        o_st(i, v);
    } else if (MODE == 4u) {
        uint xx = i % p.W, yy = i / p.W;
        int iy = int(yy) - p.oy, jx = int(xx) - p.ox;
        float v = 1.0;
        if (iy >= 0 && jx >= 0 && iy < int(p.h2) && jx < int(p.w2)) {
            v = 0.0;
            int f = int(p.c2), d2 = int(p.h2), d3 = int(p.w2);
            if (f > 0 && 2 * f < d2 && 2 * f < d3) {
                int dt = p.oy != 0 ? iy : d2;
                int db = p.u3 != 0u ? d2 - iy : d2;
                int dl = p.ox != 0 ? jx : d3;
                int dr = p.u2 != 0u ? d3 - jx : d3;
                int d = min(min(dt, db), min(dl, dr));
                if (d < f) {
                    /* ((f - d) / f)² as one rounding of exact integers
                     * (Python squares the double quotient: same float
                     * up to 1 ulp) */
                    precise float t2 = float((f - d) * (f - d)) / float(f * f);
                    v = t2;
                }
            }
        }
        o_st(i, v);
    } else if (MODE == 5u) {
        int xx = int(i % p.W), r = int(i / p.W);
        int yy = r % int(p.H), b = r / int(p.H);
        uint base = p.off1 + uint(b) * p.H * p.W;
        float v = x_ld(base + uint(yy) * p.W + uint(xx));
        for (int dy = -1; dy <= 1; dy++) {
            for (int dx = -1; dx <= 1; dx++) {
                if (p.u1 == 1u && dx != 0 && dy != 0)
                    continue;
                uint sy = uint(clamp(yy + dy, 0, int(p.H) - 1));
                uint sx = uint(clamp(xx + dx, 0, int(p.W) - 1));
                float s = x_ld(base + sy * p.W + sx);
                v = p.u0 == 1u ? max(v, s) : min(v, s);
            }
        }
        o_st(i, v);
    } else if (MODE == 6u) {
        o_st(i, x_ld(p.off1 + i / 3u));
    } else if (MODE == 7u) {
        uint c = i % p.C, r = i / p.C;
        int xx = int(r % p.W);
        r /= p.W;
        int yy = int(r % p.H);
        uint b = r / p.H;
        int rad = int(p.u1) / 2;
        uint base = p.off1 + b * p.H * p.W * p.C + c;
        precise float acc = 0.0;
        for (int k = 0; k < int(p.u1); k++) {
            uint sy = uint(yy), sx = uint(xx);
            if (p.u0 == 0u)
                sx = reflect_idx(xx + k - rad, int(p.W));
            else
                sy = reflect_idx(yy + k - rad, int(p.H));
            acc += x_ld(base + (sy * p.W + sx) * p.C) * y_ld(p.off2 + uint(k));
        }
        if (p.u3 == 1u) {
            precise float v = p.f0 * z_ld(p.off3 + i) - p.f1 * acc;
            o_st(i, clamp(v, 0.0, 1.0));
        } else {
            o_st(i, acc);
        }
    } else if (MODE == 8u) {
        /* output [B, H, W, C]; input [B, h2, w2, C] with one of H/W changed */
        uint c = i % p.C, r = i / p.C;
        uint xx = r % p.W;
        r /= p.W;
        uint yy = r % p.H, b = r / p.H;
        uint oi = p.u0 == 0u ? xx : yy;
        uint row = p.off2 + oi * (p.u1 + 2u);
        uint xmin = uint(y_ld(row)), cnt = uint(y_ld(row + 1u));
        uint base = p.off1 + b * p.h2 * p.w2 * p.C + c;
        precise float acc = 0.0;
        for (uint k = 0u; k < cnt; k++) {
            uint sy = yy, sx = xx;
            if (p.u0 == 0u)
                sx = xmin + k;
            else
                sy = xmin + k;
            acc += x_ld(base + (sy * p.w2 + sx) * p.C) * y_ld(row + 2u + k);
        }
        o_st(i, clamp(acc, 0.0, 1.0));
    } else if (MODE == 9u) {
        uint base = p.off1 + i * p.C;
        precise float v = 0.299 * x_ld(base) + 0.587 * x_ld(base + 1u);
        precise float w = v + 0.114 * x_ld(base + 2u);
        o_st(i, w);
    } else if (MODE == 10u) {
        int xx = int(i % p.W), r = int(i / p.W);
        int yy = r % int(p.H), b = r / int(p.H);
        uint base = p.off1 + uint(b) * p.H * p.W;
        float v[9];
        for (int dy = -1; dy <= 1; dy++)
            for (int dx = -1; dx <= 1; dx++) {
                uint sy = uint(clamp(yy + dy, 0, int(p.H) - 1));
                uint sx = uint(clamp(xx + dx, 0, int(p.W) - 1));
                v[(dy + 1) * 3 + dx + 1] = x_ld(base + sy * p.W + sx);
            }
        precise float gx = (v[2] - v[0]) + 2.0 * (v[5] - v[3]) + (v[8] - v[6]);
        precise float gy = (v[6] - v[0]) + 2.0 * (v[7] - v[1]) + (v[8] - v[2]);
        precise float mag = sqrt(gx * gx + gy * gy + 1e-6);
        /* round(atan2(gy, gx) / 45°) mod 4 without the arctangent */
        float ax = abs(gx), ay = abs(gy);
        float dir;
        if (ay <= 0.41421356237 * ax)
            dir = 0.0;
        else if (ay >= 2.41421356237 * ax)
            dir = 2.0;
        else
            dir = (gx > 0.0) == (gy > 0.0) ? 1.0 : 3.0;
        o_st(2u * i, mag);
        o_st(2u * i + 1u, dir);
    } else if (MODE == 11u) {
        int xx = int(i % p.W), r = int(i / p.W);
        int yy = r % int(p.H), b = r / int(p.H);
        uint base = p.off1 + uint(b) * p.H * p.W * 2u;
        float m = x_ld(base + 2u * uint(yy * int(p.W) + xx));
        uint dir = uint(x_ld(base + 2u * uint(yy * int(p.W) + xx) + 1u));
        int dx = dir == 2u ? 0 : 1;
        int dy = dir == 0u ? 0 : dir == 3u ? -1 : 1;
        if (dir == 2u)
            dy = 1;
        float n1 = 0.0, n2 = 0.0;
        int ax = xx + dx, ay = yy + dy, bx = xx - dx, by = yy - dy;
        if (ax >= 0 && ay >= 0 && ax < int(p.W) && ay < int(p.H))
            n1 = x_ld(base + 2u * uint(ay * int(p.W) + ax));
        if (bx >= 0 && by >= 0 && bx < int(p.W) && by < int(p.H))
            n2 = x_ld(base + 2u * uint(by * int(p.W) + bx));
        precise float d1 = m - n1;
        precise float d2 = m - n2;
        float v = min(d1, d2) > 0.0 ? m : 0.0;
        o_st(i, (v > p.f0 ? 0.5 : 0.0) + (v > p.f1 ? 0.5 : 0.0));
    } else {
        uint c = i % p.C;
        o_st(i, c == 0u ? p.f0 : c == 1u ? p.f1 : p.f2);
    }
}
