#version 450
#extension GL_EXT_control_flow_attributes : require
/*
 * C[b] = A[b] · B[b] (+ bias) for CPU-like devices (lavapipe).
 *
 * On lavapipe a lane-varying load costs a scalar load per lane, while a
 * load whose address is the same for all lanes is one load and a
 * broadcast.  So here lanes own different ROWS and share COLUMNS: every
 * invocation computes TM rows × TN columns, the TN columns (B) are uniform
 * across the workgroup and only A is loaded per lane — TM lane loads feed
 * TM*TN FMAs per k.  No shared memory, no barriers.
 *   TRANS_B = 0: B is [K, N]; TRANS_B = 1: B is [N, K] (linear weights).
 *   VEC = 1: K % 4 == 0, aligned offsets, and for B [K, N] N % 4 == 0:
 *            A and B load as vec4.
 */
#include "common/tensor.glsl"

layout(local_size_x_id = 14) in;
#ifndef TM
#define TM 2u
#endif
#ifndef TN
#define TN 16u
#endif
layout(constant_id = 11) const uint TRANS_B = 0;
layout(constant_id = 12) const uint VEC = 1;
layout(constant_id = 13) const uint HAS_BIAS = 0;
layout(constant_id = 14) const uint WG = 8;

/* Same layout as matmul.comp: struct matmul_push in core/gpu/ops/matmul.c. */
layout(push_constant) uniform Push {
    uint M, N, K;
    uint batch_a, batch_b, batch_c;
    uint off_a, off_b, off_bias;
} p;

TENSOR(0, c)
TENSOR(1, a)
TENSOR(2, b)
TENSOR(3, bias)

#ifdef TEX
/* A and B through uniform texel buffers (host: single chunk, f32/f16, vec
 * path): lavapipe turns texel fetches into SIMD gathers, whereas SSBO
 * loads become a loop over lanes.  Views are R or RGBA as each path reads. */
layout(binding = 16) uniform samplerBuffer a_tex;
#define A_LD(i) texelFetch(a_tex, int(i)).x
#define A_LD4(i) texelFetch(a_tex, int((i) >> 2))
#ifdef B_BF16
/* bf16 has no texel format: read the bits through a 16-bit UINT view. */
layout(binding = 17) uniform usamplerBuffer b_tex;
#define B_LD(i) uintBitsToFloat(texelFetch(b_tex, int(i)).x << 16)
#define B_LD4(i) uintBitsToFloat(texelFetch(b_tex, int((i) >> 2)) << 16)
#else
layout(binding = 17) uniform samplerBuffer b_tex;
#define B_LD(i) texelFetch(b_tex, int(i)).x
#define B_LD4(i) texelFetch(b_tex, int((i) >> 2))
#endif
#else
#define A_LD(i) a_ld(i)
#define A_LD4(i) a_ld4(i)
#define B_LD(i) b_ld(i)
#define B_LD4(i) b_ld4(i)
#endif

void main()
{
    uint lane = gl_LocalInvocationID.x;
    uint col0 = gl_WorkGroupID.x * TN;
    uint rowl = (gl_WorkGroupID.y * WG + lane) * TM;
    uint abase = p.off_a + gl_WorkGroupID.z * p.batch_a;
    uint bbase = p.off_b + gl_WorkGroupID.z * p.batch_b;
    uint cbase = gl_WorkGroupID.z * p.batch_c;

    uint arow[TM];
    [[unroll]] for (uint r = 0; r < TM; r++)
        arow[r] = abase + min(rowl + r, p.M - 1u) * p.K;
    /* Uniform column indices, clamped: edge tiles compute duplicates. */
    uint bcol[TN];
    [[unroll]] for (uint j = 0; j < TN; j++)
        bcol[j] = min(col0 + j, p.N - 1u);

    float acc[TM * TN];
    [[unroll]] for (uint i = 0; i < TM * TN; i++)
        acc[i] = 0.0;

    if (VEC == 1u && TRANS_B == 0u) {
        /* B [K, N] with N % 4 == 0 (host): rows of B as vec4 column groups;
         * the group start is clamped, edge lanes compute duplicates. */
        for (uint k = 0; k < p.K; k += 4u) {
            vec4 av[TM];
            [[unroll]] for (uint r = 0; r < TM; r++)
                av[r] = A_LD4(arow[r] + k);
            [[unroll]] for (uint q = 0; q < TN / 4u; q++) {
                uint g = bbase + min(col0 + 4u * q, p.N - 4u);
                vec4 b0 = B_LD4(g + k * p.N), b1 = B_LD4(g + (k + 1u) * p.N);
                vec4 b2 = B_LD4(g + (k + 2u) * p.N), b3 = B_LD4(g + (k + 3u) * p.N);
                [[unroll]] for (uint r = 0; r < TM; r++) {
                    acc[r * TN + 4u * q + 0u] += dot(av[r], vec4(b0.x, b1.x, b2.x, b3.x));
                    acc[r * TN + 4u * q + 1u] += dot(av[r], vec4(b0.y, b1.y, b2.y, b3.y));
                    acc[r * TN + 4u * q + 2u] += dot(av[r], vec4(b0.z, b1.z, b2.z, b3.z));
                    acc[r * TN + 4u * q + 3u] += dot(av[r], vec4(b0.w, b1.w, b2.w, b3.w));
                }
            }
        }
    } else if (VEC == 1u) {
        for (uint k = 0; k < p.K; k += 4u) {
            vec4 av[TM];
            [[unroll]] for (uint r = 0; r < TM; r++)
                av[r] = A_LD4(arow[r] + k);
            [[unroll]] for (uint j = 0; j < TN; j++) {
                vec4 bv = B_LD4(bbase + bcol[j] * p.K + k);
                [[unroll]] for (uint r = 0; r < TM; r++)
                    acc[r * TN + j] += dot(av[r], bv);
            }
        }
    } else {
        for (uint k = 0; k < p.K; k++) {
            float av[TM];
            [[unroll]] for (uint r = 0; r < TM; r++)
                av[r] = A_LD(arow[r] + k);
            [[unroll]] for (uint j = 0; j < TN; j++) {
                float bv = TRANS_B == 1u ? B_LD(bbase + bcol[j] * p.K + k)
                                         : B_LD(bbase + k * p.N + bcol[j]);
                [[unroll]] for (uint r = 0; r < TM; r++)
                    acc[r * TN + j] += av[r] * bv;
            }
        }
    }

    if (TN % 4u == 0u && p.N % 4u == 0u) {
        /* Aligned groups of 4 columns: one vec4 store each. */
        [[unroll]] for (uint r = 0; r < TM; r++) {
            uint m = rowl + r;
            if (m >= p.M)
                continue;
            [[unroll]] for (uint j = 0; j < TN; j += 4u) {
                uint n = col0 + j;
                if (n >= p.N)
                    continue;
                vec4 v = vec4(acc[r * TN + j], acc[r * TN + j + 1u], acc[r * TN + j + 2u],
                              acc[r * TN + j + 3u]);
                if (HAS_BIAS == 1u)
                    v += vec4(bias_ld(p.off_bias + n), bias_ld(p.off_bias + n + 1u),
                              bias_ld(p.off_bias + n + 2u), bias_ld(p.off_bias + n + 3u));
                c_st4(cbase + m * p.N + n, v);
            }
        }
        return;
    }
    [[unroll]] for (uint r = 0; r < TM; r++) {
        uint m = rowl + r;
        if (m >= p.M)
            continue;
        [[unroll]] for (uint j = 0; j < TN; j++) {
            uint n = col0 + j;
            if (n < p.N)
                c_st(cbase + m * p.N + n,
                     acc[r * TN + j] + (HAS_BIAS == 1u ? bias_ld(p.off_bias + n) : 0.0));
        }
    }
}
