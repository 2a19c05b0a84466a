/*
 * Plain-C references of the GPU ops (contiguous f32 arrays), used by tests
 * and by `vkflow bench` sanity checks, plus op internals tests reach into.
 */
#ifndef VKF_GPU_OPS_REF_H
#define VKF_GPU_OPS_REF_H

#include "vkflow/gpu.h"

void vkf_ref_binary(vkf_binary_op op, const float *a, const int64_t *ashape,
                    int andim, const float *b, const int64_t *bshape, int bndim,
                    float *out);
float vkf_ref_unary(vkf_unary_op op, float v, float a, float b);
/* out[z] = a[z] · b[z or 0] (+bias); b is [K,N] or, trans_b, [N,K]. */
void vkf_ref_matmul(const float *a, const float *b, bool trans_b,
                    const float *bias, int64_t batch, int64_t batch_b,
                    int64_t M, int64_t N, int64_t K, float *out);
void vkf_ref_softmax(const float *x, int64_t rows, int64_t cols, float *out);
void vkf_ref_layer_norm(const float *x, int64_t rows, int64_t cols,
                        const float *w, const float *b, float eps, float *out);
void vkf_ref_rms_norm(const float *x, int64_t rows, int64_t cols,
                      const float *w, float eps, float *out);
void vkf_ref_group_norm(const float *x, int64_t n, int64_t c, int64_t hw,
                        int groups, const float *w, const float *b, float eps,
                        float *out);

/* Matmul register tile: each invocation owns tm × tn outputs, wg lanes. */
typedef struct vkf_matmul_tile {
    uint32_t tm, tn, wg;
    bool no_bcast;                 /* disable the subgroup-broadcast path */
    bool lane_rows;                /* matmul_cpu.comp: lanes own rows */
    bool tex;                      /* A, B via uniform texel buffers */
    bool smem;                     /* matmul_smem.comp: 64x64 shared-memory
                                      tiles for GPUs (tm, tn, wg ignored) */
} vkf_matmul_tile;

typedef struct vkf_gpu vkf_gpu;
void vkf_matmul_default_tile(const vkf_gpu *gpu, bool trans_b,
                             vkf_matmul_tile *tile);
int vkf_op_matmul_tiled(vkf_gpu *gpu, vkf_tensor *a, vkf_tensor *b,
                        bool trans_b, vkf_tensor *bias,
                        const vkf_matmul_tile *tile, vkf_tensor **out);

/* Transformer ops (attention.c, rope.c, embed.c, geglu.c).  q [B,H,Nq,D],
 * k/v [B,H,Nk,D], mask NULL or full [B,H,Nq,Nk]; scale 0: 1/sqrt(D). */
void vkf_ref_attention(const float *q, const float *k, const float *v,
                       const float *mask, int64_t B, int64_t H, int64_t nq,
                       int64_t nk, int64_t D, float scale, bool causal,
                       float *out);
/* x [B, N, H, D]. */
void vkf_ref_rope(const float *x, int64_t B, int64_t N, int64_t H, int64_t D,
                  const vkf_rope_params *params, float *out);
void vkf_ref_timestep_embedding(const float *t, int64_t B,
                                const vkf_timestep_embed_params *params,
                                float *out);
/* x [rows, 2C] → out [rows, C]. */
void vkf_ref_geglu(const float *x, int64_t rows, int64_t C, float *out);

#endif
