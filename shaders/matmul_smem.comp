#version 450
/*
 * C[b] = A[b] · B[b] (+ bias) for GPUs: classic shared-memory tiling.
 * A 16×16 workgroup computes a 64×64 block of C in steps of BK = 16 along
 * K; each invocation owns a 4×4 sub-tile spread with stride 16 so that
 * shared-memory reads of a warp hit distinct banks.  Slow on lavapipe
 * (shared memory and barriers are expensive there): the host only picks it
 * for non-CPU devices.  Same push block as matmul.comp.
 */
#include "common/tensor.glsl"

layout(local_size_x = 16, local_size_y = 16) in;
layout(constant_id = 11) const uint TRANS_B = 0;
layout(constant_id = 13) const uint HAS_BIAS = 0;

layout(push_constant) uniform Push {
    uint M, N, K;
    uint batch_a, batch_b, batch_c;
    uint off_a, off_b, off_bias;
} p;

TENSOR(0, c)
TENSOR(1, a)
TENSOR(2, b)
TENSOR(3, bias)

#define BM 64u
#define BN 64u
#define BK 16u

shared float As[BK][BM + 1u];
shared float Bs[BK][BN + 1u];

void main()
{
    uint tx = gl_LocalInvocationID.x, ty = gl_LocalInvocationID.y;
    uint tid = ty * 16u + tx;
    uint row0 = gl_WorkGroupID.y * BM, col0 = gl_WorkGroupID.x * BN;
    uint abase = p.off_a + gl_WorkGroupID.z * p.batch_a;
    uint bbase = p.off_b + gl_WorkGroupID.z * p.batch_b;
    uint cbase = gl_WorkGroupID.z * p.batch_c;

    float acc[4][4];
    for (uint i = 0; i < 4u; i++)
        for (uint j = 0; j < 4u; j++)
            acc[i][j] = 0.0;

    for (uint k0 = 0; k0 < p.K; k0 += BK) {
        /* 1024 elements of each tile, 4 per invocation. */
        for (uint e = 0; e < 4u; e++) {
            uint idx = tid + e * 256u;
            uint m = idx / BK, k = idx % BK;           /* A: k fastest */
            uint gm = row0 + m, gk = k0 + k;
            As[k][m] = (gm < p.M && gk < p.K) ? a_ld(abase + gm * p.K + gk) : 0.0;
            uint n, kb;
            if (TRANS_B == 1u) {
                n = idx / BK;
                kb = idx % BK;
            } else {
                kb = idx / BN;
                n = idx % BN;
            }
            uint gn = col0 + n, gkb = k0 + kb;
            float bv = 0.0;
            if (gn < p.N && gkb < p.K)
                bv = TRANS_B == 1u ? b_ld(bbase + gn * p.K + gkb)
                                   : b_ld(bbase + gkb * p.N + gn);
            Bs[kb][n] = bv;
        }
        barrier();
        for (uint kk = 0; kk < BK; kk++) {
            float av[4], bv[4];
            for (uint i = 0; i < 4u; i++)
                av[i] = As[kk][ty + 16u * i];
            for (uint j = 0; j < 4u; j++)
                bv[j] = Bs[kk][tx + 16u * j];
            for (uint i = 0; i < 4u; i++)
                for (uint j = 0; j < 4u; j++)
                    acc[i][j] += av[i] * bv[j];
        }
        barrier();
    }

    for (uint i = 0; i < 4u; i++) {
        uint m = row0 + ty + 16u * i;
        if (m >= p.M)
            continue;
        for (uint j = 0; j < 4u; j++) {
            uint n = col0 + tx + 16u * j;
            if (n < p.N)
                c_st(cbase + m * p.N + n,
                     acc[i][j] + (HAS_BIAS == 1u ? bias_ld(p.off_bias + n) : 0.0));
        }
    }
}
