#version 450
#extension GL_EXT_control_flow_attributes : require
/*
 * Convolution, 2-D and 3-D (2-D is T = KT = 1), as an implicit GEMM:
 * out[n, co, p] = sum over (ci, kt, ky, kx) of w[co, ci, kt, ky, kx] *
 * x[n, ci, input position of p shifted by the tap], zero outside the input.
 * No im2col buffer and no shared memory.
 *
 * Blocking for CPU-like devices (lavapipe, see docs/vulkan.md): a lane
 * (invocation) owns TM output channels × TN output pixels, so a step over
 * one (input channel, tap) does TM weight loads, the pixel loads and
 * TM * TN FMAs.  The pixels depend only on the workgroup id.
 *
 * BCAST (lavapipe: WG == subgroup size == 8): lane l loads pixels
 * p0 + 8s + l and subgroupBroadcast hands each to all lanes, so a step
 * loads TN/8 pixels per lane; padding is a per-lane select.  Input channels
 * run in blocks of CB with the taps inside, keeping the block's weight rows
 * in cache across taps.
 * Otherwise (GPUs, other subgroup sizes) every lane loads the TN pixels at
 * uniform addresses; taps are outermost so per-pixel addresses are computed
 * once per tap, and a tap whose TN pixels are all inside the input skips
 * the zero selects.  MODE 1 (1×1×1 kernel, stride 1, no padding, pixel
 * count and x offset multiples of 4) reads a full tile as TN/4 vec4.
 * GROUPED (never with BCAST): input channels start at the group of each
 * output channel, which makes input loads per lane (depthwise etc.).
 */
#extension GL_KHR_shader_subgroup_ballot : require
#include "common/tensor.glsl"

layout(local_size_x_id = 12) in;
#ifndef TM
#define TM 2u
#endif
#ifndef TN
#define TN 16u
#endif
layout(constant_id = 9) const uint KT = 1;
layout(constant_id = 10) const uint KH = 3;
layout(constant_id = 11) const uint KW = 3;
layout(constant_id = 12) const uint WG = 8;
layout(constant_id = 13) const uint HAS_BIAS = 0;
layout(constant_id = 14) const uint GROUPED = 0;
layout(constant_id = 15) const uint MODE = 0;
/* 1: WG == subgroup size == 8, 8 <= TN <= 32, TN % 8 == 0, not GROUPED. */
layout(constant_id = 16) const uint BCAST = 0;
/* 1 (with BCAST, TEX/TEXW, TM % 4 == 0): w is pre-packed by the host as
 * [cout / (WG*TM)][KVOL][cin_g][WG*TM] (conv.c: conv_repack) and viewed
 * as RGBA: a lane's TM weights of a step are TM/4 contiguous vec4 fetches,
 * and a workgroup streams its weights contiguously along ci. */
layout(constant_id = 17) const uint WPACK = 0;
#define TS (TN / 8u)
#define CB 64u

/* Mirrors struct conv_push in core/gpu/ops/conv.c. */
layout(push_constant) uniform Push {
    uint cin_g, cout, cout_g;
    uint t, h, w;                  /* input frames, rows, columns */
    uint to, ho, wo, npix;         /* output; npix = to * ho * wo */
    int st, sh, sw;                /* stride */
    int dt, dh, dw;                /* dilation */
    int pt, ph, pw;                /* zeros before the first frame/row/column */
    uint off_x, off_w, off_b;
    uint x_batch;                  /* elements per batch item of x */
    uint co_tiles;                 /* workgroups along output channels */
} p;

TENSOR(0, o)
TENSOR(1, x)
TENSOR(2, wt)
TENSOR(3, bias)

#if defined(TEX)
/* x and w through uniform texel buffers (host: single chunk, f32/f16):
 * lavapipe turns texel fetches into SIMD gathers, whereas SSBO loads
 * become a loop over lanes even when the address is uniform.  x is viewed
 * as RGBA in MODE 1, else as R. */
layout(binding = 16) uniform samplerBuffer x_tex;
layout(binding = 17) uniform samplerBuffer w_tex;
#define X_LD(i) texelFetch(x_tex, int(i)).x
#define X_LD4(i) texelFetch(x_tex, int((i) >> 2))
#define W_LD(i) texelFetch(w_tex, int(i)).x
#define W_LD4(i) texelFetch(w_tex, int((i) >> 2))
#elif defined(TEXW)
/* Only w as a texel buffer (x spans several chunks): the TM weight loads
 * per step are the per-lane ones. */
layout(binding = 16) uniform samplerBuffer w_tex;
#define X_LD(i) x_ld(i)
#define X_LD4(i) x_ld4(i)
#define W_LD(i) texelFetch(w_tex, int(i)).x
#define W_LD4(i) texelFetch(w_tex, int((i) >> 2))
#else
#define X_LD(i) x_ld(i)
#define X_LD4(i) x_ld4(i)
#define W_LD(i) wt_ld(i)
#define W_LD4(i) wt_ld4(i)
#endif

#define KVOL (KT * KH * KW)

void main()
{
    uint lane = gl_LocalInvocationID.x;
    uint tile = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    uint p0 = tile * TN;
    if (p0 >= p.npix)
        return;
    uint n = gl_WorkGroupID.z / p.co_tiles;
    uint co0 = ((gl_WorkGroupID.z % p.co_tiles) * WG + lane) * TM;
    uint plane = p.t * p.h * p.w;
    uint xbase = p.off_x + n * p.x_batch;

    uint wrow[TM];
    uint xgrp[TM];
    [[unroll]] for (uint r = 0; r < TM; r++) {
        uint co = min(co0 + r, p.cout - 1u);
        wrow[r] = p.off_w + co * p.cin_g * KVOL;
        xgrp[r] = GROUPED == 1u ? (co / p.cout_g) * p.cin_g * plane : 0u;
    }

    float acc[TM * TN];
    [[unroll]] for (uint i = 0; i < TM * TN; i++)
        acc[i] = 0.0;

#define FMA_STEP(XV, K)                                                       \
    {                                                                         \
        float wv[TM];                                                         \
        [[unroll]] for (uint r = 0; r < TM; r++)                              \
            wv[r] = W_LD(wrow[r] + (K));                                     \
        [[unroll]] for (uint r = 0; r < TM; r++)                              \
            [[unroll]] for (uint j = 0; j < TN; j++)                          \
                acc[r * TN + j] += wv[r] * XV[j];                             \
    }

    if (BCAST == 1u) {
        /* Lane l loads pixels p0 + 8s + l (one SIMD gather per slot s) and
         * subgroupBroadcast hands pixel j to every lane: TN/8 loads per
         * step instead of TN. */
        int bt[TS], by[TS], bx[TS];
        [[unroll]] for (uint s = 0; s < TS; s++) {
            uint q = min(p0 + s * 8u + lane, p.npix - 1u);
            uint ox = q % p.wo, rest = q / p.wo;
            uint oy = rest % p.ho, ot = rest / p.ho;
            bt[s] = int(ot) * p.st - p.pt;
            by[s] = int(oy) * p.sh - p.ph;
            bx[s] = int(ox) * p.sw - p.pw;
        }
        uint wpk = p.off_w + (gl_WorkGroupID.z % p.co_tiles) * KVOL * p.cin_g *
                   (WG * TM) + lane * TM;
        /* Input channels in blocks of CB, taps inside: the TM * WG weight
         * rows of a block (CB * KVOL each) stay in cache across the taps
         * instead of streaming the whole rows once per tap. */
        for (uint c0 = 0; c0 < p.cin_g; c0 += CB)
        for (uint kt = 0; kt < KT; kt++)
        for (uint ky = 0; ky < KH; ky++)
        for (uint kx = 0; kx < KW; kx++) {
            uint addr[TS];
            bool ok[TS];
            [[unroll]] for (uint s = 0; s < TS; s++) {
                int it = bt[s] + int(kt) * p.dt;
                int iy = by[s] + int(ky) * p.dh;
                int ix = bx[s] + int(kx) * p.dw;
                ok[s] = uint(it) < p.t && uint(iy) < p.h && uint(ix) < p.w;
                addr[s] = ok[s] ? (uint(it) * p.h + uint(iy)) * p.w + uint(ix) : 0u;
            }
            uint k = (kt * KH + ky) * KW + kx;
            uint c1 = min(c0 + CB, p.cin_g);
            for (uint ci = c0; ci < c1; ci++) {
                float xl[TS];
                uint xb = xbase + ci * plane;
                [[unroll]] for (uint s = 0; s < TS; s++) {
                    float v = X_LD(xb + addr[s]);
                    xl[s] = ok[s] ? v : 0.0;
                }
                float wv[TM];
                if (WPACK == 1u && TM % 4u == 0u) {
                    uint wi = wpk + (k * p.cin_g + ci) * (WG * TM);
                    [[unroll]] for (uint q = 0; q < TM / 4u; q++) {
                        vec4 v4 = W_LD4(wi + 4u * q);
                        wv[4u * q + 0u] = v4.x;
                        wv[4u * q + 1u] = v4.y;
                        wv[4u * q + 2u] = v4.z;
                        wv[4u * q + 3u] = v4.w;
                    }
                } else
                [[unroll]] for (uint r = 0; r < TM; r++)
                    wv[r] = W_LD(wrow[r] + ci * KVOL + k);
#define BSTEP(J)                                                              \
                if ((J) < TN) {                                               \
                    float xj = subgroupBroadcast(xl[min((J) / 8u, TS - 1u)],  \
                                                 (J) % 8u);                   \
                    [[unroll]] for (uint r = 0; r < TM; r++)                  \
                        acc[r * TN + (J)] += wv[r] * xj;                      \
                }
                BSTEP(0u) BSTEP(1u) BSTEP(2u) BSTEP(3u)
                BSTEP(4u) BSTEP(5u) BSTEP(6u) BSTEP(7u)
                BSTEP(8u) BSTEP(9u) BSTEP(10u) BSTEP(11u)
                BSTEP(12u) BSTEP(13u) BSTEP(14u) BSTEP(15u)
                BSTEP(16u) BSTEP(17u) BSTEP(18u) BSTEP(19u)
                BSTEP(20u) BSTEP(21u) BSTEP(22u) BSTEP(23u)
                BSTEP(24u) BSTEP(25u) BSTEP(26u) BSTEP(27u)
                BSTEP(28u) BSTEP(29u) BSTEP(30u) BSTEP(31u)
            }
        }
    } else if (MODE == 1u && GROUPED == 0u && p0 + TN <= p.npix) {
        for (uint ci = 0; ci < p.cin_g; ci++) {
            float xv[TN];
            [[unroll]] for (uint v = 0; v < TN / 4u; v++) {
                vec4 q = X_LD4(xbase + ci * plane + p0 + v * 4u);
                xv[v * 4u + 0u] = q.x;
                xv[v * 4u + 1u] = q.y;
                xv[v * 4u + 2u] = q.z;
                xv[v * 4u + 3u] = q.w;
            }
            FMA_STEP(xv, ci)
        }
    } else {
        /* Top-left-front input corner of each pixel's receptive field. */
        int bt[TN], by[TN], bx[TN];
        [[unroll]] for (uint j = 0; j < TN; j++) {
            uint q = min(p0 + j, p.npix - 1u);
            uint ox = q % p.wo, rest = q / p.wo;
            uint oy = rest % p.ho, ot = rest / p.ho;
            bt[j] = int(ot) * p.st - p.pt;
            by[j] = int(oy) * p.sh - p.ph;
            bx[j] = int(ox) * p.sw - p.pw;
        }
        for (uint kt = 0; kt < KT; kt++)
        for (uint ky = 0; ky < KH; ky++)
        for (uint kx = 0; kx < KW; kx++) {
            uint addr[TN];
            bool ok[TN];
            bool all_ok = true;
            [[unroll]] for (uint j = 0; j < TN; j++) {
                int it = bt[j] + int(kt) * p.dt;
                int iy = by[j] + int(ky) * p.dh;
                int ix = bx[j] + int(kx) * p.dw;
                ok[j] = uint(it) < p.t && uint(iy) < p.h && uint(ix) < p.w;
                addr[j] = ok[j] ? (uint(it) * p.h + uint(iy)) * p.w + uint(ix) : 0u;
                all_ok = all_ok && ok[j];
            }
            uint k = (kt * KH + ky) * KW + kx;
            if (GROUPED == 1u) {
                for (uint ci = 0; ci < p.cin_g; ci++) {
                    [[unroll]] for (uint r = 0; r < TM; r++) {
                        float wv = W_LD(wrow[r] + ci * KVOL + k);
                        uint xb = xbase + xgrp[r] + ci * plane;
                        [[unroll]] for (uint j = 0; j < TN; j++) {
                            float xv = X_LD(xb + addr[j]);
                            acc[r * TN + j] += wv * (ok[j] ? xv : 0.0);
                        }
                    }
                }
            } else if (all_ok) {
                for (uint ci = 0; ci < p.cin_g; ci++) {
                    float xv[TN];
                    uint xb = xbase + ci * plane;
                    [[unroll]] for (uint j = 0; j < TN; j++)
                        xv[j] = X_LD(xb + addr[j]);
                    FMA_STEP(xv, ci * KVOL + k)
                }
            } else {
                for (uint ci = 0; ci < p.cin_g; ci++) {
                    float xv[TN];
                    uint xb = xbase + ci * plane;
                    [[unroll]] for (uint j = 0; j < TN; j++) {
                        float v = X_LD(xb + addr[j]);
                        xv[j] = ok[j] ? v : 0.0;
                    }
                    FMA_STEP(xv, ci * KVOL + k)
                }
            }
        }
    }

    uint obase = n * p.cout * p.npix;
    [[unroll]] for (uint r = 0; r < TM; r++) {
        uint co = co0 + r;
        if (co >= p.cout)
            continue;
        float b = HAS_BIAS == 1u ? bias_ld(p.off_b + co) : 0.0;
        [[unroll]] for (uint j = 0; j < TN; j++)
            if (p0 + j < p.npix)
                o_st(obase + co * p.npix + p0 + j, acc[r * TN + j] + b);
    }
}
