#version 450
#extension GL_EXT_control_flow_attributes : require
/*
 * Fused attention, flash style: out = softmax(scale · q·kᵀ + mask) · v with
 * an online softmax, so no Nq × Nk matrix is ever stored.  One workgroup
 * handles WG·QR query rows of one (batch, head); every lane owns QR rows
 * and keeps them (q, running max, sum and output accumulator) in
 * registers, while the keys and values are streamed KB rows at a time.
 *
 * Why lanes own rows: every lane needs the same K and V rows, so each is
 * loaded once per workgroup (lane l loads key j0 + l, subgroupBroadcast
 * shares it; on GPUs a plain uniform-address load) and feeds QR FMAs per
 * lane; q and the accumulators are compile-time-indexed arrays that stay
 * in registers (or cheap vector spills).
 *
 * HD (a -D define) is the register capacity; D (spec constant) the real
 * head dim.  All d loops run to HD and are guarded by `d < D`, which
 * specialisation folds, so a D = 24 pipeline built from the HD = 40
 * module carries no dead code.  Rows are read as vec4 only: the host
 * guarantees 4-aligned rows and zero-pads D to a multiple of 4 (zeros do
 * not change q·k, and padded output columns are not stored).
 *
 * Slots: 0 out (f32), 1 q, 2 k, 3 v.  With HAS_MASK, K and V share the
 * storage of slot 2 (at off_k / off_v) and slot 3 is the additive mask.
 * Scores are kept in log2 units (q is pre-scaled by scale·log2 e).
 */
#extension GL_KHR_shader_subgroup_ballot : require
#include "common/tensor.glsl"

#ifndef HD
#define HD 40u
#endif
#ifndef QR
#define QR 4u
#endif
/* Keys per block: one per lane on the broadcast path. */
#define KB 8u
#define HD4 (HD / 4u)

layout(local_size_x_id = 9) in;
layout(constant_id = 9) const uint WG = 8;
layout(constant_id = 10) const uint D = HD;
layout(constant_id = 11) const uint HAS_MASK = 0;
layout(constant_id = 12) const uint CAUSAL = 0;   /* key j visible iff j <= i */
/* 1: WG == subgroup size == KB.  Lane L loads the vec4 of key j0 + L and
 * subgroupBroadcast hands it to all lanes: one lane-varying load per 8
 * keys instead of 8 "uniform" loads, which lavapipe performs lane by lane. */
layout(constant_id = 13) const uint BCAST = 0;

/* Mirrors struct attention_push in core/gpu/ops/attention.c. */
layout(push_constant) uniform Push {
    uint nq, nk;
    float scale;                  /* softmax scale · log2(e) */
    uint off_q, off_k, off_v, off_m;
    uint q_sb, q_sh, q_sn;
    uint k_sb, k_sh, k_sn;
    uint v_sb, v_sh, v_sn;
    uint o_sb, o_sh, o_sn;
    uint m_sb, m_sh, m_sq, m_sk;
} p;

TENSOR(0, o)
TENSOR(1, q)
TENSOR(2, k)
TENSOR(3, v)

const float LOG2E = 1.4426950408889634;
/* lavapipe compiles with fast-math (no infinities), so masked scores are
 * clamped to a finite MASKED and their weight is forced to 0 by a compare,
 * which also keeps a fully masked row at sum 0 (zeros) instead of NaN. */
const float MASKED = -1.0e30;
const float MASKED_BELOW = -1.0e29;

vec4 v_row4(uint base)
{
    return HAS_MASK == 1u ? k_ld4(base) : v_ld4(base);
}

#ifdef TEX
/* K and V through uniform texel buffers (RGBA32F / RGBA16F views; host:
 * one chunk each, not bf16): lavapipe fetches texels with SIMD gathers,
 * where an SSBO load with a lane-varying address loops over the lanes. */
layout(binding = 16) uniform samplerBuffer k_tex;
layout(binding = 17) uniform samplerBuffer v_tex;
#define K_LD4(i) texelFetch(k_tex, int((i) >> 2))
#define V_LD4(i) texelFetch(v_tex, int((i) >> 2))
#else
#define K_LD4(i) k_ld4(i)
#define V_LD4(i) v_row4(i)
#endif

/* s[r][J] += q[r] · kv for every row of this lane. */
#define QK_FMA(J, KV)                                                        \
    {                                                                        \
        vec4 kv_ = (KV);                                                     \
        [[unroll]] for (uint r = 0u; r < QR; r++) {                          \
            vec4 qq = qv[r * HD4 + d4];                                      \
            float t = s[r * KB + (J)];                                       \
            t = fma(qq.x, kv_.x, t);                                         \
            t = fma(qq.y, kv_.y, t);                                         \
            t = fma(qq.z, kv_.z, t);                                         \
            t = fma(qq.w, kv_.w, t);                                         \
            s[r * KB + (J)] = t;                                             \
        }                                                                    \
    }

/* acc[r] += p[r][J] · vv for every row of this lane. */
#define PV_FMA(J, VV)                                                        \
    {                                                                        \
        vec4 vv_ = (VV);                                                     \
        [[unroll]] for (uint r = 0u; r < QR; r++)                            \
            acc[r * HD4 + d4] = fma(vec4(s[r * KB + (J)]), vv_, acc[r * HD4 + d4]); \
    }

void main()
{
    uint lane = gl_LocalInvocationID.x;
    uint h = gl_WorkGroupID.y, b = gl_WorkGroupID.z;
    uint row0 = gl_WorkGroupID.x * WG * QR;

    uint rows[QR];
    vec4 qv[QR * HD4];
    vec4 acc[QR * HD4];
    float mx[QR], sum[QR];
    [[unroll]] for (uint r = 0u; r < QR; r++) {
        rows[r] = row0 + r * WG + lane;
        uint qb = p.off_q + b * p.q_sb + h * p.q_sh + min(rows[r], p.nq - 1u) * p.q_sn;
        [[unroll]] for (uint d4 = 0u; d4 < HD4; d4++) {
            if (d4 * 4u < D)
                qv[r * HD4 + d4] = q_ld4(qb + d4 * 4u) * p.scale;
            acc[r * HD4 + d4] = vec4(0.0);
        }
        mx[r] = MASKED;
        sum[r] = 0.0;
    }

    /* Causal: no row of this workgroup sees a key past its last row. */
    uint kend = CAUSAL == 1u ? min(p.nk, min(row0 + WG * QR, p.nq)) : p.nk;
    uint kb = p.off_k + b * p.k_sb + h * p.k_sh;
    uint vb = p.off_v + b * p.v_sb + h * p.v_sh;
    uint mb = p.off_m + b * p.m_sb + h * p.m_sh;

    for (uint j0 = 0u; j0 < kend; j0 += KB) {
        /* Uniform key rows, clamped: the tail block rereads the last key
         * and masks the duplicates out below. */
        uint krow[KB];
        [[unroll]] for (uint j = 0u; j < KB; j++)
            krow[j] = min(j0 + j, kend - 1u);
        uint krow_lane = min(j0 + lane, kend - 1u);

        float s[QR * KB];
        [[unroll]] for (uint i = 0u; i < QR * KB; i++)
            s[i] = 0.0;
        /* Key-major: only the QR scores of one key are live while its
         * dot products run, so the accumulators stay in registers. */
        if (BCAST == 1u) {
            vec4 kreg[HD4];
            [[unroll]] for (uint d4 = 0u; d4 < HD4; d4++)
                if (d4 * 4u < D)
                    kreg[d4] = K_LD4(kb + krow_lane * p.k_sn + d4 * 4u);
#define QK_STEP(J)                                                           \
            [[unroll]] for (uint d4 = 0u; d4 < HD4; d4++)                    \
                if (d4 * 4u < D)                                             \
                    QK_FMA(J, subgroupBroadcast(kreg[d4], J))
            QK_STEP(0u) QK_STEP(1u) QK_STEP(2u) QK_STEP(3u)
            QK_STEP(4u) QK_STEP(5u) QK_STEP(6u) QK_STEP(7u)
        } else {
            [[unroll]] for (uint j = 0u; j < KB; j++)
                [[unroll]] for (uint d4 = 0u; d4 < HD4; d4++)
                    if (d4 * 4u < D)
                        QK_FMA(j, K_LD4(kb + krow[j] * p.k_sn + d4 * 4u))
        }

        [[unroll]] for (uint j = 0u; j < KB; j++) {
            [[unroll]] for (uint r = 0u; r < QR; r++) {
                float t = s[r * KB + j];
                if (HAS_MASK == 1u)
                    t += max(LOG2E * v_ld(mb + min(rows[r], p.nq - 1u) * p.m_sq +
                                          krow[j] * p.m_sk), MASKED);
                if (j0 + j >= kend || (CAUSAL == 1u && j0 + j > rows[r]))
                    t = MASKED;
                s[r * KB + j] = t;
            }
        }

        float corr[QR];
        [[unroll]] for (uint r = 0u; r < QR; r++) {
            float m = mx[r];
            [[unroll]] for (uint j = 0u; j < KB; j++)
                m = max(m, s[r * KB + j]);
            corr[r] = exp2(mx[r] - m);
            mx[r] = m;
            float l = 0.0;
            [[unroll]] for (uint j = 0u; j < KB; j++) {
                float e = s[r * KB + j] > MASKED_BELOW ? exp2(s[r * KB + j] - m) : 0.0;
                s[r * KB + j] = e;
                l += e;
            }
            sum[r] = sum[r] * corr[r] + l;
        }

        if (BCAST == 1u) {
            /* Row-major: one row's accumulator vec4 is live at a time. */
            [[unroll]] for (uint d4 = 0u; d4 < HD4; d4++) {
                if (d4 * 4u >= D)
                    continue;
                vec4 vreg = V_LD4(vb + krow_lane * p.v_sn + d4 * 4u);
                vec4 vb8[KB];
                vb8[0] = subgroupBroadcast(vreg, 0u);
                vb8[1] = subgroupBroadcast(vreg, 1u);
                vb8[2] = subgroupBroadcast(vreg, 2u);
                vb8[3] = subgroupBroadcast(vreg, 3u);
                vb8[4] = subgroupBroadcast(vreg, 4u);
                vb8[5] = subgroupBroadcast(vreg, 5u);
                vb8[6] = subgroupBroadcast(vreg, 6u);
                vb8[7] = subgroupBroadcast(vreg, 7u);
                [[unroll]] for (uint r = 0u; r < QR; r++) {
                    vec4 a = acc[r * HD4 + d4] * corr[r];
                    [[unroll]] for (uint j = 0u; j < KB; j++)
                        a = fma(vec4(s[r * KB + j]), vb8[j], a);
                    acc[r * HD4 + d4] = a;
                }
            }
        } else {
            [[unroll]] for (uint d4 = 0u; d4 < HD4; d4++) {
                if (d4 * 4u >= D)
                    continue;
                [[unroll]] for (uint r = 0u; r < QR; r++)
                    acc[r * HD4 + d4] *= corr[r];
                [[unroll]] for (uint j = 0u; j < KB; j++)
                    PV_FMA(j, V_LD4(vb + krow[j] * p.v_sn + d4 * 4u))
            }
        }
    }

    [[unroll]] for (uint r = 0u; r < QR; r++) {
        if (rows[r] >= p.nq)
            continue;
        /* A row whose keys are all masked out gets zeros, not NaN. */
        float inv = sum[r] > 0.0 ? 1.0 / sum[r] : 0.0;
        uint ob = b * p.o_sb + h * p.o_sh + rows[r] * p.o_sn;
        [[unroll]] for (uint d4 = 0u; d4 < HD4; d4++) {
            [[unroll]] for (uint c = 0u; c < 4u; c++)
                if (d4 * 4u + c < D)
                    o_st(ob + d4 * 4u + c, acc[r * HD4 + d4][c] * inv);
        }
    }
}
