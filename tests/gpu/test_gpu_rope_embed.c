/*
 * RoPE (1-D interleaved and rotate-half, partial rotation, Wan 3-D with
 * padding tokens and position offsets, permuted views), timestep
 * embeddings (SD/Wan cos-first, diffusers sin-first with shift 1, odd dim,
 * Flux t_scale) and GEGLU against double-precision C references, on
 * awkward sizes, f32/f16/bf16 storage and 16 KiB storage chunks.
 * Tolerances, with inputs pre-rounded to the storage dtype:
 *   RoPE      |err| <= 1e-5 + 2e-7 · max position (f32 frequencies
 *             2^(-j·c), exp2 and sin/cos of angles up to that position)
 *   embedding |err| <= 1e-6 · max(1, |t|·t_scale) + 1e-6 (same argument)
 *   GEGLU     |err| <= 1e-6 + 1e-5 · |ref| (erf to 1.5e-7)
 */
#include "gpu_test.h"
#include "gpu/ops/ref.h"

/* x [B, N, H, D]; with `permuted`, uploaded as [B, H, N, D] and viewed
 * back through a permute (strided reads). */
static void check_rope(vkf_gpu *gpu, int64_t B, int64_t N, int64_t H, int64_t D,
                       const vkf_rope_params *rp, vkf_dtype dt, bool permuted,
                       int64_t max_pos)
{
    float *hx = gt_random(B * N * H * D);
    gt_quantize(dt, hx, B * N * H * D);
    vkf_tensor *x = NULL, *xv = NULL, *o = NULL;
    if (permuted) {
        float *t = malloc((size_t)(B * N * H * D) * sizeof(float));
        for (int64_t b = 0; b < B; b++)
            for (int64_t n = 0; n < N; n++)
                for (int64_t h = 0; h < H; h++)
                    memcpy(t + ((b * H + h) * N + n) * D, hx + ((b * N + n) * H + h) * D,
                           (size_t)D * sizeof(float));
        x = gt_tensor(gpu, dt, 4, (int64_t[]){B, H, N, D}, t);
        CHECK_OK(vkf_tensor_permute(x, (const int[]){0, 2, 1, 3}, &xv));
        free(t);
    } else {
        x = gt_tensor(gpu, dt, 4, (int64_t[]){B, N, H, D}, hx);
        xv = vkf_tensor_ref(x);
    }
    CHECK_OK(vkf_op_rope(gpu, xv, rp, &o));
    float *want = malloc((size_t)(B * N * H * D) * sizeof(float));
    vkf_ref_rope(hx, B, N, H, D, rp, want);
    float *got = gt_download(o);
    char what[128];
    snprintf(what, sizeof(what), "rope B%lld N%lld H%lld D%lld mode%d axes%d %s%s",
             (long long)B, (long long)N, (long long)H, (long long)D, rp ? rp->mode : 0,
             rp ? rp->naxes : 0, vkf_dtype_name(dt), permuted ? " permuted" : "");
    gt_compare(what, got, want, B * N * H * D, 0.0f, 1e-5f + 2e-7f * (float)max_pos);
    free(got);
    free(want);
    free(hx);
    vkf_tensor_unref(&o);
    vkf_tensor_unref(&xv);
    vkf_tensor_unref(&x);
}

static void test_rope(vkf_gpu *gpu)
{
    check_rope(gpu, 1, 1, 1, 2, NULL, VKF_DTYPE_F32, false, 1);
    check_rope(gpu, 2, 77, 3, 64, NULL, VKF_DTYPE_F32, false, 77);
    check_rope(gpu, 1, 300, 8, 40, &(vkf_rope_params){.mode = VKF_ROPE_HALF},
               VKF_DTYPE_F16, true, 300);
    /* Partial rotary (first 24 of 40 dims), theta 500000, offset 5. */
    check_rope(gpu, 1, 13, 3, 40,
               &(vkf_rope_params){.mode = VKF_ROPE_HALF, .theta = 500000.0, .naxes = 1,
                                  .axis_dim = {24}, .grid = {13}, .pos_offset = {5}},
               VKF_DTYPE_BF16, false, 18);
    /* Wan 3-D, head dim 128 = (44, 42, 42); 7 padding tokens after
     * the 3×5×7 grid stay unchanged. */
    vkf_rope_params wan;
    vkf_rope_params_wan(128, 3, 5, 7, &wan);
    CHECK(wan.axis_dim[0] == 44 && wan.axis_dim[1] == 42 && wan.axis_dim[2] == 42);
    check_rope(gpu, 2, 3 * 5 * 7 + 7, 3, 128, &wan, VKF_DTYPE_F32, false, 7);
    check_rope(gpu, 1, 3 * 5 * 7, 2, 128, &wan, VKF_DTYPE_BF16, true, 7);
    /* A small head dim with an odd pair split: d = 24 → (8, 8, 8). */
    vkf_rope_params_wan(24, 2, 3, 4, &wan);
    wan.pos_offset[0] = 3;
    check_rope(gpu, 1, 24, 1, 24, &wan, VKF_DTYPE_F16, false, 5);
}

static void check_embed(vkf_gpu *gpu, const float *ht, int64_t B,
                        const vkf_timestep_embed_params *ep, vkf_dtype dt)
{
    float *h = malloc((size_t)B * sizeof(float));
    memcpy(h, ht, (size_t)B * sizeof(float));
    vkf_tensor *t = gt_tensor(gpu, dt, 1, &B, h), *o = NULL;
    CHECK_OK(vkf_op_timestep_embedding(gpu, t, ep, &o));
    CHECK(vkf_tensor_ndim(o) == 2 && vkf_tensor_shape(o)[1] == ep->dim);
    float *want = malloc((size_t)(B * ep->dim) * sizeof(float));
    vkf_ref_timestep_embedding(h, B, ep, want);
    float *got = gt_download(o);
    double tmax = 1;
    for (int64_t b = 0; b < B; b++)
        tmax = fmax(tmax, fabs(h[b]) * (ep->t_scale != 0.0f ? ep->t_scale : 1.0));
    char what[96];
    snprintf(what, sizeof(what), "timestep_embedding dim%d shift%g sin_first%d %s", ep->dim,
             ep->freq_shift, ep->sin_first, vkf_dtype_name(dt));
    gt_compare(what, got, want, B * ep->dim, 0.0f, (float)(1e-6 * tmax + 1e-6));
    free(got);
    free(want);
    free(h);
    vkf_tensor_unref(&t);
    vkf_tensor_unref(&o);
}

static void test_embed(vkf_gpu *gpu)
{
    static const float ts[] = {0.0f, 1.0f, 999.0f, 500.5f, 0.25f, 37.0f, 1000.0f};
    /* SD UNet model_channels 320; Wan freq_dim 256; SDXL ADM 256. */
    check_embed(gpu, ts, 7, &(vkf_timestep_embed_params){.dim = 320}, VKF_DTYPE_F32);
    check_embed(gpu, ts, 3, &(vkf_timestep_embed_params){.dim = 256}, VKF_DTYPE_BF16);
    check_embed(gpu, ts, 7, &(vkf_timestep_embed_params){.dim = 13}, VKF_DTYPE_F32);
    check_embed(gpu, ts, 7,
                &(vkf_timestep_embed_params){.dim = 32, .freq_shift = 1.0, .sin_first = true},
                VKF_DTYPE_F16);
    static const float sig[] = {1.0f, 0.5f, 0.03125f};
    check_embed(gpu, sig, 3,
                &(vkf_timestep_embed_params){.dim = 256, .t_scale = 1000.0f},
                VKF_DTYPE_F32);
    check_embed(gpu, ts, 1, &(vkf_timestep_embed_params){.dim = 1, .max_period = 100.0},
                VKF_DTYPE_F32);
    /* Known values: dim 4, t = 1: [cos 1, cos 0.01, sin 1, sin 0.01]. */
    float one = 1.0f;
    int64_t n1 = 1;
    vkf_tensor *t = gt_tensor(gpu, VKF_DTYPE_F32, 1, &n1, &one), *o = NULL;
    CHECK_OK(vkf_op_timestep_embedding(gpu, t, &(vkf_timestep_embed_params){.dim = 4}, &o));
    float *got = gt_download(o);
    float want[4] = {(float)cos(1.0), (float)cos(0.01), (float)sin(1.0), (float)sin(0.01)};
    gt_compare("timestep_embedding known", got, want, 4, 0.0f, 1e-6f);
    free(got);
    vkf_tensor_unref(&t);
    vkf_tensor_unref(&o);
}

static void check_geglu(vkf_gpu *gpu, int64_t rows, int64_t C, vkf_dtype dt)
{
    float *hx = gt_random(rows * 2 * C);
    for (int64_t i = 0; i < rows * 2 * C; i++)
        hx[i] *= 4.0f;
    vkf_tensor *x = gt_tensor(gpu, dt, 2, (int64_t[]){rows, 2 * C}, hx), *o = NULL;
    CHECK_OK(vkf_op_geglu(gpu, x, &o));
    CHECK(vkf_tensor_shape(o)[1] == C);
    float *want = malloc((size_t)(rows * C) * sizeof(float));
    vkf_ref_geglu(hx, rows, C, want);
    float *got = gt_download(o);
    char what[64];
    snprintf(what, sizeof(what), "geglu %lldx%lld %s", (long long)rows, (long long)C,
             vkf_dtype_name(dt));
    gt_compare(what, got, want, rows * C, 1e-5f, 1e-6f);
    free(got);
    free(want);
    free(hx);
    vkf_tensor_unref(&x);
    vkf_tensor_unref(&o);
}

static void test_geglu(vkf_gpu *gpu)
{
    check_geglu(gpu, 1, 1, VKF_DTYPE_F32);
    check_geglu(gpu, 7, 13, VKF_DTYPE_F32);
    check_geglu(gpu, 77, 1280, VKF_DTYPE_F16);
    check_geglu(gpu, 127, 20, VKF_DTYPE_BF16);
    /* A strided input: the first 2·13 columns of a [5, 40] tensor. */
    float *hx = gt_random(5 * 40);
    vkf_tensor *x = gt_tensor(gpu, VKF_DTYPE_F32, 2, (int64_t[]){5, 40}, hx), *xs = NULL,
               *o = NULL;
    CHECK_OK(vkf_tensor_slice(x, 1, 0, 26, &xs));
    CHECK_OK(vkf_op_geglu(gpu, xs, &o));
    float *packed = malloc(5 * 26 * sizeof(float)), want[5 * 13];
    for (int r = 0; r < 5; r++)
        memcpy(packed + r * 26, hx + r * 40, 26 * sizeof(float));
    vkf_ref_geglu(packed, 5, 13, want);
    float *got = gt_download(o);
    gt_compare("geglu slice", got, want, 5 * 13, 1e-5f, 1e-6f);
    free(got);
    free(packed);
    free(hx);
    vkf_tensor_unref(&x);
    vkf_tensor_unref(&xs);
    vkf_tensor_unref(&o);
}

int main(void)
{
    gt_seed(5);
    vkf_gpu *gpu = gt_gpu_open((vkf_gpu_params){0});
    test_rope(gpu);
    test_embed(gpu);
    test_geglu(gpu);
    int rc = gt_finish(&gpu);

    /* Inputs and outputs over several 16 KiB storage chunks. */
    gpu = gt_gpu_open((vkf_gpu_params){.max_chunk_bytes = 16384});
    vkf_rope_params wan;
    vkf_rope_params_wan(40, 2, 4, 5, &wan);
    check_rope(gpu, 1, 40, 2, 40, &wan, VKF_DTYPE_F32, false, 5);
    check_rope(gpu, 1, 100, 2, 64, NULL, VKF_DTYPE_F16, true, 100);
    check_geglu(gpu, 50, 120, VKF_DTYPE_F32);
    static const float ts[] = {3.0f, 700.0f};
    check_embed(gpu, ts, 2, &(vkf_timestep_embed_params){.dim = 4000}, VKF_DTYPE_F32);
    rc |= gt_finish(&gpu);
    return rc;
}
