/* Batched matmul / linear (shaders/matmul.comp), register blocked. */
#include <string.h>

#include "gpu/ops/op_util.h"
#include "gpu/ops/ref.h"

struct matmul_push {
    uint32_t M, N, K;
    uint32_t batch_a, batch_b, batch_c;
    uint32_t off_a, off_b, off_bias;
};
_Static_assert(sizeof(struct matmul_push) <= 128, "push constants");

const vkf_shader_layout vkf_matmul_layouts[] = {
    {&vkf_shader_matmul_tex_8x8, 4, 2, sizeof(struct matmul_push)},
    {&vkf_shader_matmul_tex_4x8, 4, 2, sizeof(struct matmul_push)},
    {&vkf_shader_matmul_cpu_tex_4x8, 4, 2, sizeof(struct matmul_push)},
    {&vkf_shader_matmul_cpu_tex_8x8, 4, 2, sizeof(struct matmul_push)},
    {&vkf_shader_matmul_cpu_tex_4x16, 4, 2, sizeof(struct matmul_push)},
    {&vkf_shader_matmul_tex_8x12, 4, 2, sizeof(struct matmul_push)},
    {&vkf_shader_matmul_4x4, 4, 0, sizeof(struct matmul_push)},
    {&vkf_shader_matmul_8x4, 4, 0, sizeof(struct matmul_push)},
    {&vkf_shader_matmul_4x8, 4, 0, sizeof(struct matmul_push)},
    {&vkf_shader_matmul_8x8, 4, 0, sizeof(struct matmul_push)},
    {&vkf_shader_matmul_cpu_4x8, 4, 0, sizeof(struct matmul_push)},
    {&vkf_shader_matmul_cpu_8x8, 4, 0, sizeof(struct matmul_push)},
    {&vkf_shader_matmul_cpu_4x16, 4, 0, sizeof(struct matmul_push)},
    {&vkf_shader_matmul_smem, 4, 0, sizeof(struct matmul_push)},
    {&vkf_shader_matmul_tex_bf16_8x8, 4, 2, sizeof(struct matmul_push)},
    {&vkf_shader_matmul_cpu_tex_bf16_4x16, 4, 2, sizeof(struct matmul_push)},
    {&vkf_shader_matmul_cpu_tex_bf16_8x8, 4, 2, sizeof(struct matmul_push)},
    {0},
};

void vkf_matmul_default_tile(const vkf_gpu *gpu, bool trans_b,
                             vkf_matmul_tile *tile)
{
    /* CPU devices (lavapipe): lanes own rows, columns are shared, operands
     * come through texel fetches (docs/vulkan.md); GPUs: shared-memory
     * tiles.  Measured with `vkflow bench ops`. */
    *tile = (vkf_matmul_tile){.tm = 4, .tn = 4, .wg = 256, .smem = true};
    if (!strcmp(gpu->info.type, "cpu") && gpu->info.subgroup_size == 8)
        *tile = (vkf_matmul_tile){.tm = 4, .tn = 16, .wg = 8, .lane_rows = true,
                                  .tex = true};
}

static const struct {
    uint32_t tm, tn;
    bool lane_rows, tex, bf16;     /* bf16: B read as bf16 bits */
    const vkf_shader_code *shader;
} kernels[] = {
    {8, 8, false, true, true, &vkf_shader_matmul_tex_bf16_8x8},
    {4, 16, true, true, true, &vkf_shader_matmul_cpu_tex_bf16_4x16},
    {8, 8, true, true, true, &vkf_shader_matmul_cpu_tex_bf16_8x8},
    {8, 8, false, true, false, &vkf_shader_matmul_tex_8x8},
    {4, 8, false, true, false, &vkf_shader_matmul_tex_4x8},
    {4, 8, true, true, false, &vkf_shader_matmul_cpu_tex_4x8},
    {8, 8, true, true, false, &vkf_shader_matmul_cpu_tex_8x8},
    {4, 16, true, true, false, &vkf_shader_matmul_cpu_tex_4x16},
    {8, 12, false, true, false, &vkf_shader_matmul_tex_8x12},
    {4, 4, false, false, false, &vkf_shader_matmul_4x4},
    {8, 4, false, false, false, &vkf_shader_matmul_8x4},
    {4, 8, false, false, false, &vkf_shader_matmul_4x8},
    {8, 8, false, false, false, &vkf_shader_matmul_8x8},
    {4, 8, true, false, false, &vkf_shader_matmul_cpu_4x8},
    {8, 8, true, false, false, &vkf_shader_matmul_cpu_8x8},
    {4, 16, true, false, false, &vkf_shader_matmul_cpu_4x16},
};

static const vkf_shader_code *pick_shader(const vkf_matmul_tile *tile, bool bf16_b)
{
    if (tile->smem)
        return &vkf_shader_matmul_smem;
    for (size_t i = 0; i < VKF_ARRAY_SIZE(kernels); i++)
        if (kernels[i].tm == tile->tm && kernels[i].tn == tile->tn &&
            kernels[i].lane_rows == tile->lane_rows && kernels[i].tex == tile->tex &&
            kernels[i].bf16 == (tile->tex && bf16_b))
            return kernels[i].shader;
    return NULL;
}

int vkf_op_matmul_tiled(vkf_gpu *gpu, vkf_tensor *a, vkf_tensor *b,
                        bool trans_b, vkf_tensor *bias,
                        const vkf_matmul_tile *tile, vkf_tensor **out)
{
    int err = 0;
    vkf_tensor *ac = NULL, *bc = NULL, *biasc = NULL, *o = NULL;
    VKF_REQUIRE(gpu, a->ndim >= 2 && b->ndim >= 2);
    VKF_REQUIRE(gpu, tile->tn >= 1 && tile->tm >= 1 && tile->wg >= 1);
    int64_t M = a->shape[a->ndim - 2], K = a->shape[a->ndim - 1];
    int64_t bk = b->shape[b->ndim - (trans_b ? 1 : 2)];
    int64_t N = b->shape[b->ndim - (trans_b ? 2 : 1)];
    if (bk != K) {
        vkf_logf(gpu->log, VKF_LOG_ERROR, "matmul: inner dims differ (%lld vs %lld)",
                 (long long)K, (long long)bk);
        err = VKF_EINVAL;
        goto fail;
    }
    int64_t batch_a = 1, batch_b = 1;
    for (int d = 0; d < a->ndim - 2; d++)
        batch_a *= a->shape[d];
    for (int d = 0; d < b->ndim - 2; d++)
        batch_b *= b->shape[d];
    VKF_REQUIRE(gpu, batch_b == 1 || batch_b == batch_a);
    VKF_REQUIRE(gpu, !bias || vkf_tensor_numel(bias) == N);
    VKF_REQUIRE(gpu, batch_a <= 65535 && M <= 65535 * (int64_t)tile->tm);
    VKF_REQUIRE(gpu, tile->lane_rows || tile->tn % 4 == 0);

    VKF_TRY(vkf_op_contiguous(gpu, a, &ac));
    VKF_TRY(vkf_op_contiguous(gpu, b, &bc));
    if (bias)
        VKF_TRY(vkf_op_contiguous(gpu, bias, &biasc));
    int64_t oshape[VKF_TENSOR_MAX_DIMS];
    memcpy(oshape, a->shape, sizeof(oshape));
    oshape[a->ndim - 1] = N;
    VKF_TRY(vkf_tensor_create(gpu, VKF_DTYPE_F32, a->ndim, oshape, &o));

    struct matmul_push pc = {
        .M = (uint32_t)M, .N = (uint32_t)N, .K = (uint32_t)K,
        .batch_a = (uint32_t)(M * K),
        .batch_b = batch_b == 1 ? 0 : (uint32_t)(K * N),
        .batch_c = (uint32_t)(M * N),
        .off_a = (uint32_t)ac->offset, .off_b = (uint32_t)bc->offset,
        .off_bias = biasc ? (uint32_t)biasc->offset : 0,
    };
    bool vec = trans_b ? (K % 4 == 0 && pc.off_a % 4 == 0 && pc.off_b % 4 == 0)
                       : (N % 4 == 0 && pc.off_b % 4 == 0);
    vkf_tensor *slots[4] = {o, ac, bc, biasc ? biasc : ac};
    bool bcast = tile->wg == 8 && gpu->info.subgroup_size == 8 && !tile->no_bcast;
    uint32_t extra[7] = {tile->tm, tile->tn, trans_b, vec, biasc != NULL, tile->wg,
                         bcast};
    vkf_pipeline *pipe;
    if (tile->lane_rows)
        vec = K % 4 == 0 && pc.off_a % 4 == 0 && pc.off_b % 4 == 0 &&
              (trans_b || N % 4 == 0);
    extra[3] = vec;
    vkf_matmul_tile fallback;
    if (tile->smem)
        vec = false;
    bool bf16_b = bc->dtype == VKF_DTYPE_BF16;
    if (tile->tex && !(vec && ac->st->nchunks == 1 && bc->st->nchunks == 1 &&
                       ac->dtype != VKF_DTYPE_BF16 &&
                       (!bf16_b || pick_shader(tile, true)))) {
        /* Texel views need one chunk and a compiled format: SSBO loads. */
        fallback = (vkf_matmul_tile){.tm = tile->lane_rows ? 8 : 4,
                                     .tn = tile->lane_rows ? 8 : 4, .wg = tile->wg,
                                     .lane_rows = tile->lane_rows};
        if (tile->wg == 8 && !tile->lane_rows)
            fallback.tm = fallback.tn = 8;
        tile = &fallback;
    }
    const vkf_shader_code *shader = pick_shader(tile, bf16_b);
    if (!shader) {
        vkf_logf(gpu->log, VKF_LOG_ERROR, "matmul: no %ux%u%s%s kernel compiled in",
                 tile->tm, tile->tn, tile->lane_rows ? " cpu" : "",
                 tile->tex ? " tex" : "");
        err = VKF_EUNSUPPORTED;
        goto fail;
    }
    uint32_t gx, gy;
    if (tile->smem) {
        gx = vkf_div_up((uint64_t)N, 64);
        gy = vkf_div_up((uint64_t)M, 64);
    } else if (tile->lane_rows) {
        gx = vkf_div_up((uint64_t)N, tile->tn);
        gy = vkf_div_up((uint64_t)M, (uint64_t)tile->wg * tile->tm);
    } else {
        gx = vkf_div_up((uint64_t)N, (uint64_t)tile->wg * tile->tn);
        gy = vkf_div_up((uint64_t)M, tile->tm);
    }
    vkf_dispatch d = {
        .op = "matmul", .pipe = NULL, .writes = {o}, .nwrites = 1,
        .reads = {ac, bc, slots[3]}, .nreads = 3, .push = &pc,
        .groups = {gx, gy, (uint32_t)batch_a},
    };
    if (tile->tex) {
        /* Texel paths read B as vec4s, A as vec4s except in the column-
         * lane [K, N] kernel, which broadcasts scalars of A. */
        bool a_vec = trans_b || tile->lane_rows, b_vec = true;
        vkf_dispatch_add_texel(&d, ac, a_vec);
        vkf_dispatch_add_texel(&d, bc, b_vec);
    }
    VKF_TRY(vkf_op_pipeline_tex(gpu, shader, slots, 4, extra, tile->lane_rows ? 6 : 7,
                                d.ntexels, sizeof(pc), &pipe));
    d.pipe = pipe;
    VKF_TRY(vkf_gpu_dispatch(gpu, &d));
    *out = o;
    o = NULL;
fail:
    vkf_tensor_unref(&o);
    vkf_tensor_unref(&ac);
    vkf_tensor_unref(&bc);
    vkf_tensor_unref(&biasc);
    return err;
}

int vkf_op_matmul(vkf_gpu *gpu, vkf_tensor *a, vkf_tensor *b, bool trans_b,
                  vkf_tensor *bias, vkf_tensor **out)
{
    vkf_matmul_tile tile;
    vkf_matmul_default_tile(gpu, trans_b, &tile);
    /* Measured on lavapipe: for B [K, N] the 8x8 lane tile wins up to
     * K ~ 768 (66 vs 56 GFLOP/s at 4096x1280x320), 4x16 beyond. */
    if (tile.lane_rows && !trans_b && a->shape[a->ndim - 1] <= 768)
        tile.tm = tile.tn = 8;
    return vkf_op_matmul_tiled(gpu, a, b, trans_b, bias, &tile, out);
}

int vkf_op_linear(vkf_gpu *gpu, vkf_tensor *x, vkf_tensor *w, vkf_tensor *bias,
                  vkf_tensor **out)
{
    int err = 0;
    vkf_tensor *x2 = NULL, *xc = NULL, *y = NULL;
    VKF_REQUIRE(gpu, w->ndim == 2 && x->ndim >= 1);
    VKF_REQUIRE(gpu, x->shape[x->ndim - 1] == w->shape[1]);
    /* Fold all leading dims into M: one large GEMM beats a batch of thin ones. */
    int64_t K = w->shape[1], N = w->shape[0];
    int64_t M = vkf_tensor_numel(x) / K;
    VKF_TRY(vkf_op_contiguous(gpu, x, &xc));
    VKF_TRY(vkf_tensor_reshape(xc, 2, (int64_t[]){M, K}, &x2));
    VKF_TRY(vkf_op_matmul(gpu, x2, w, true, bias, &y));
    int64_t shape[VKF_TENSOR_MAX_DIMS];
    memcpy(shape, x->shape, sizeof(shape));
    shape[x->ndim - 1] = N;
    VKF_TRY(vkf_tensor_reshape(y, x->ndim, shape, out));
fail:
    vkf_tensor_unref(&y);
    vkf_tensor_unref(&x2);
    vkf_tensor_unref(&xc);
    return err;
}

void vkf_ref_matmul(const float *a, const float *b, bool trans_b,
                    const float *bias, int64_t batch, int64_t batch_b,
                    int64_t M, int64_t N, int64_t K, float *out)
{
    for (int64_t z = 0; z < batch; z++) {
        const float *az = a + z * M * K;
        const float *bz = b + (batch_b == 1 ? 0 : z * K * N);
        float *oz = out + z * M * N;
        for (int64_t m = 0; m < M; m++) {
            for (int64_t n = 0; n < N; n++) {
                double s = bias ? bias[n] : 0.0;
                for (int64_t k = 0; k < K; k++)
                    s += (double)az[m * K + k] *
                         (trans_b ? bz[n * K + k] : bz[k * N + n]);
                oz[m * N + n] = (float)s;
            }
        }
    }
}
