#version 450
#extension GL_EXT_control_flow_attributes : require
/*
 * C[b] = A[b] · B[b] (+ bias), f32 accumulation, register blocked.
 *
 * Tuned for CPU-like devices (lavapipe): no shared memory.  A workgroup is
 * one subgroup wide; every invocation owns TM rows × TN columns of C.  The
 * rows depend only on the workgroup id, so A loads are uniform (one scalar
 * load broadcast to all lanes); B loads are vec4 where alignment allows.
 *   TRANS_B = 0: B is [K, N]; an invocation's columns are TN/4 vec4 groups
 *                interleaved across lanes.
 *   TRANS_B = 1: B is [N, K] (linear weights); the K loop is vec4 for both.
 */
#extension GL_KHR_shader_subgroup_ballot : require
#include "common/tensor.glsl"

layout(local_size_x_id = 14) in;
#ifndef TM
#define TM 4u
#endif
#ifndef TN
#define TN 8u
#endif
layout(constant_id = 11) const uint TRANS_B = 0;
layout(constant_id = 12) const uint VEC = 1;     /* vec4 loads allowed */
layout(constant_id = 13) const uint HAS_BIAS = 0;
layout(constant_id = 14) const uint WG = 8;
/* 1: WG == subgroup size == 8; each lane loads a different k of A and the
 * values are broadcast, so A costs one gather per 8 k instead of 8. */
layout(constant_id = 15) const uint BCAST = 0;

/* Mirrors struct matmul_push in core/gpu/ops/matmul.c. */
layout(push_constant) uniform Push {
    uint M, N, K;
    uint batch_a, batch_b, batch_c;  /* element strides between batches */
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

#define NV (TN / 4u)

void main()
{
    uint lane = gl_LocalInvocationID.x;
    uint row0 = gl_WorkGroupID.y * TM;
    uint colw = gl_WorkGroupID.x * WG * TN;
    uint abase = p.off_a + gl_WorkGroupID.z * p.batch_a;
    uint bbase = p.off_b + gl_WorkGroupID.z * p.batch_b;
    uint cbase = gl_WorkGroupID.z * p.batch_c;

    uint arow[TM];
    [[unroll]] for (uint r = 0; r < TM; r++)
        arow[r] = abase + min(row0 + r, p.M - 1) * p.K;

    float acc[TM * TN];
    [[unroll]] for (uint i = 0; i < TM * TN; i++)
        acc[i] = 0.0;

    /* Column j of this invocation. */
    uint cols[TN];
    [[unroll]] for (uint j = 0; j < TN; j++) {
        if (TRANS_B == 0u)
            cols[j] = colw + (j / 4u) * WG * 4u + lane * 4u + (j % 4u);
        else
            cols[j] = colw + j * WG + lane;
    }

    if (TRANS_B == 0u) {
        uint bcol[NV];
        [[unroll]] for (uint v = 0; v < NV; v++)
            bcol[v] = bbase + min(cols[v * 4u], (p.N - 1u) & ~3u);
        if (VEC == 1u && BCAST == 1u) {
            for (uint k0 = 0; k0 < p.K; k0 += 8u) {
                float areg[TM];
                [[unroll]] for (uint r = 0; r < TM; r++)
                    areg[r] = A_LD(arow[r] + min(k0 + lane, p.K - 1u));
#define STEP_KN(J)                                                            \
                if (k0 + J < p.K) {                                           \
                    vec4 bv[NV];                                              \
                    [[unroll]] for (uint v = 0; v < NV; v++)                  \
                        bv[v] = B_LD4(bcol[v] + (k0 + J) * p.N);              \
                    [[unroll]] for (uint r = 0; r < TM; r++) {                \
                        float av = subgroupBroadcast(areg[r], J);             \
                        [[unroll]] for (uint v = 0; v < NV; v++) {            \
                            acc[r * TN + v * 4u + 0u] += av * bv[v].x;        \
                            acc[r * TN + v * 4u + 1u] += av * bv[v].y;        \
                            acc[r * TN + v * 4u + 2u] += av * bv[v].z;        \
                            acc[r * TN + v * 4u + 3u] += av * bv[v].w;        \
                        }                                                     \
                    }                                                         \
                }
                STEP_KN(0u) STEP_KN(1u) STEP_KN(2u) STEP_KN(3u)
                STEP_KN(4u) STEP_KN(5u) STEP_KN(6u) STEP_KN(7u)
            }
        } else if (VEC == 1u) {
            for (uint k = 0; k < p.K; k++) {
                vec4 bv[NV];
                [[unroll]] for (uint v = 0; v < NV; v++)
                    bv[v] = B_LD4(bcol[v] + k * p.N);
                [[unroll]] for (uint r = 0; r < TM; r++) {
                    float av = A_LD(arow[r] + k);
                    [[unroll]] for (uint v = 0; v < NV; v++) {
                        acc[r * TN + v * 4u + 0u] += av * bv[v].x;
                        acc[r * TN + v * 4u + 1u] += av * bv[v].y;
                        acc[r * TN + v * 4u + 2u] += av * bv[v].z;
                        acc[r * TN + v * 4u + 3u] += av * bv[v].w;
                    }
                }
            }
        } else {
            for (uint k = 0; k < p.K; k++) {
                float bs[TN];
                [[unroll]] for (uint j = 0; j < TN; j++)
                    bs[j] = B_LD(bbase + k * p.N + min(cols[j], p.N - 1u));
                [[unroll]] for (uint r = 0; r < TM; r++) {
                    float av = A_LD(arow[r] + k);
                    [[unroll]] for (uint j = 0; j < TN; j++)
                        acc[r * TN + j] += av * bs[j];
                }
            }
        }
    } else {
        uint brow[TN];
        [[unroll]] for (uint j = 0; j < TN; j++)
            brow[j] = bbase + min(cols[j], p.N - 1u) * p.K;
        if (VEC == 1u && BCAST == 1u) {
            for (uint k0 = 0; k0 < p.K; k0 += 32u) {
                vec4 areg[TM];
                [[unroll]] for (uint r = 0; r < TM; r++)
                    areg[r] = A_LD4(arow[r] + min(k0 + lane * 4u, p.K - 4u));
#define STEP_NK(J)                                                            \
                if (k0 + J * 4u < p.K) {                                      \
                    vec4 bv[TN];                                              \
                    [[unroll]] for (uint j = 0; j < TN; j++)                  \
                        bv[j] = B_LD4(brow[j] + k0 + J * 4u);                 \
                    [[unroll]] for (uint r = 0; r < TM; r++) {                \
                        vec4 av = subgroupBroadcast(areg[r], J);              \
                        [[unroll]] for (uint j = 0; j < TN; j++)              \
                            acc[r * TN + j] += dot(av, bv[j]);                \
                    }                                                         \
                }
                STEP_NK(0u) STEP_NK(1u) STEP_NK(2u) STEP_NK(3u)
                STEP_NK(4u) STEP_NK(5u) STEP_NK(6u) STEP_NK(7u)
            }
        } else if (VEC == 1u) {
            for (uint k = 0; k < p.K; k += 4u) {
                vec4 bv[TN];
                [[unroll]] for (uint j = 0; j < TN; j++)
                    bv[j] = B_LD4(brow[j] + k);
                [[unroll]] for (uint r = 0; r < TM; r++) {
                    vec4 av = A_LD4(arow[r] + k);
                    [[unroll]] for (uint j = 0; j < TN; j++)
                        acc[r * TN + j] += dot(av, bv[j]);
                }
            }
        } else {
            for (uint k = 0; k < p.K; k++) {
                float bs[TN];
                [[unroll]] for (uint j = 0; j < TN; j++)
                    bs[j] = B_LD(brow[j] + k);
                [[unroll]] for (uint r = 0; r < TM; r++) {
                    float av = A_LD(arow[r] + k);
                    [[unroll]] for (uint j = 0; j < TN; j++)
                        acc[r * TN + j] += av * bs[j];
                }
            }
        }
    }

    if (TRANS_B == 0u && p.N % 4u == 0u) {
        /* Columns come in aligned groups of 4: one vec4 store each (a
         * store, like a load, loops over the lanes on lavapipe). */
        [[unroll]] for (uint v = 0; v < NV; v++) {
            uint n = cols[v * 4u];
            if (n >= p.N)
                continue;
            vec4 bj = vec4(0.0);
            if (HAS_BIAS == 1u)
                bj = vec4(bias_ld(p.off_bias + n), bias_ld(p.off_bias + n + 1u),
                          bias_ld(p.off_bias + n + 2u), bias_ld(p.off_bias + n + 3u));
            [[unroll]] for (uint r = 0; r < TM; r++)
                if (row0 + r < p.M)
                    c_st4(cbase + (row0 + r) * p.N + n,
                          vec4(acc[r * TN + v * 4u], acc[r * TN + v * 4u + 1u],
                               acc[r * TN + v * 4u + 2u], acc[r * TN + v * 4u + 3u]) + bj);
        }
        return;
    }
    [[unroll]] for (uint j = 0; j < TN; j++) {
        uint n = cols[j];
        if (n >= p.N)
            continue;
        float bj = HAS_BIAS == 1u ? bias_ld(p.off_bias + n) : 0.0;
        [[unroll]] for (uint r = 0; r < TM; r++)
            if (row0 + r < p.M)
                c_st(cbase + (row0 + r) * p.N + n, acc[r * TN + j] + bj);
    }
}
