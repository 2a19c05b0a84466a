/*
 * matmul / linear against the double-accumulating C reference: awkward
 * M, N, K (1, 7, 13, 127, non-multiples of every tile), B as [K,N] and
 * [N,K], bias, batched and broadcast B, f16/bf16 weights, every compiled
 * register-tile kernel, and 16 KiB storage chunks so operands span several
 * bindings.  Tolerance: |err| <= 1e-5 * K + 1e-5 * |ref| (f32 accumulation
 * of products of inputs in [-1, 1]; inputs are pre-rounded to the dtype).
 */
#include "gpu_test.h"
#include "gpu/ops/ref.h"

#define T(m, n, w, ...) {.tm = m, .tn = n, .wg = w, __VA_ARGS__}
static const vkf_matmul_tile tiles[] = {
    T(4, 4, 8, .no_bcast = false), T(8, 4, 8, .no_bcast = false),
    T(8, 8, 8, .no_bcast = false), T(8, 8, 8, .no_bcast = true),
    T(4, 8, 8, .no_bcast = false), T(4, 4, 64, .no_bcast = false),
    T(4, 8, 8, .lane_rows = true), T(8, 8, 8, .lane_rows = true),
    T(4, 16, 8, .lane_rows = true),
    T(8, 8, 8, .tex = true), T(4, 8, 8, .tex = true), T(8, 12, 8, .tex = true),
    T(4, 8, 8, .lane_rows = true, .tex = true),
    T(8, 8, 8, .lane_rows = true, .tex = true),
    T(4, 16, 8, .lane_rows = true, .tex = true),
    T(4, 4, 256, .smem = true),
};
#undef T

static void check_case(vkf_gpu *gpu, int64_t batch, int64_t batch_b, int64_t M,
                       int64_t N, int64_t K, bool trans_b, bool bias,
                       vkf_dtype adt, vkf_dtype bdt, const vkf_matmul_tile *tile)
{
    float *ha = gt_random(batch * M * K), *hb = gt_random(batch_b * K * N);
    float *hbias = gt_random(N);
    int64_t ashape[3] = {batch, M, K};
    int64_t bshape[3] = {batch_b, trans_b ? N : K, trans_b ? K : N};
    vkf_tensor *a = gt_tensor(gpu, adt, 3, ashape, ha);
    vkf_tensor *b = batch_b == 1 ? gt_tensor(gpu, bdt, 2, bshape + 1, hb)
                                 : gt_tensor(gpu, bdt, 3, bshape, hb);
    vkf_tensor *tb = bias ? gt_tensor(gpu, VKF_DTYPE_F32, 1, &N, hbias) : NULL;
    vkf_tensor *o = NULL;
    if (tile)
        CHECK_OK(vkf_op_matmul_tiled(gpu, a, b, trans_b, tb, tile, &o));
    else
        CHECK_OK(vkf_op_matmul(gpu, a, b, trans_b, tb, &o));
    CHECK(vkf_tensor_ndim(o) == 3 && vkf_tensor_shape(o)[2] == N);
    float *want = malloc((size_t)(batch * M * N) * sizeof(float));
    vkf_ref_matmul(ha, hb, trans_b, bias ? hbias : NULL, batch, batch_b, M, N, K, want);
    float *got = gt_download(o);
    char what[160];
    snprintf(what, sizeof(what),
             "matmul b%lld/%lld M%lld N%lld K%lld tb%d bias%d a:%s b:%s tile %ux%u/%u%s%s%s",
             (long long)batch, (long long)batch_b, (long long)M, (long long)N,
             (long long)K, trans_b, bias, vkf_dtype_name(adt), vkf_dtype_name(bdt),
             tile ? tile->tm : 0, tile ? tile->tn : 0, tile ? tile->wg : 0,
             tile && tile->lane_rows ? " cpu" : "", tile && tile->no_bcast ? " nobc" : "",
             tile && tile->tex ? " tex" : tile && tile->smem ? " smem" : "");
    gt_compare(what, got, want, batch * M * N, 1e-5f, 1e-5f * (float)K);
    free(got);
    free(want);
    vkf_tensor_unref(&o);
    vkf_tensor_unref(&a);
    vkf_tensor_unref(&b);
    vkf_tensor_unref(&tb);
    free(ha);
    free(hb);
    free(hbias);
}

static void test_linear(vkf_gpu *gpu)
{
    int64_t xs[3] = {2, 7, 36}, ws[2] = {13, 36};
    float *hx = gt_random(2 * 7 * 36), *hw = gt_random(13 * 36), *hb = gt_random(13);
    vkf_tensor *x = gt_tensor(gpu, VKF_DTYPE_F32, 3, xs, hx);
    vkf_tensor *w = gt_tensor(gpu, VKF_DTYPE_F16, 2, ws, hw);
    vkf_tensor *b = gt_tensor(gpu, VKF_DTYPE_F32, 1, &ws[0], hb), *y = NULL;
    CHECK_OK(vkf_op_linear(gpu, x, w, b, &y));
    CHECK(vkf_tensor_ndim(y) == 3 && vkf_tensor_shape(y)[0] == 2 &&
          vkf_tensor_shape(y)[1] == 7 && vkf_tensor_shape(y)[2] == 13);
    float *want = malloc(2 * 7 * 13 * sizeof(float));
    vkf_ref_matmul(hx, hw, true, hb, 1, 1, 14, 13, 36, want);
    float *got = gt_download(y);
    gt_compare("linear", got, want, 2 * 7 * 13, 1e-5f, 1e-5f * 36);
    free(got);
    free(want);
    free(hx);
    free(hw);
    free(hb);
    vkf_tensor_unref(&x);
    vkf_tensor_unref(&w);
    vkf_tensor_unref(&b);
    vkf_tensor_unref(&y);
}

int main(void)
{
    static const int64_t shapes[][3] = {
        {1, 1, 1}, {7, 13, 5}, {13, 7, 127}, {127, 33, 64}, {64, 100, 20},
        {33, 129, 16}, {1, 67, 12},
    };
    gt_seed(7);
    vkf_gpu *gpu = gt_gpu_open((vkf_gpu_params){0});
    for (size_t s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++) {
        int64_t M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
        for (int tb = 0; tb < 2; tb++) {
            for (int bdt = VKF_DTYPE_F32; bdt <= (s % 3 ? VKF_DTYPE_F32 : VKF_DTYPE_BF16); bdt++)
                check_case(gpu, 1, 1, M, N, K, tb, s % 2, VKF_DTYPE_F32,
                           (vkf_dtype)bdt, NULL);
            for (size_t t = 0; (s == 4 || s == 5) && t < sizeof(tiles) / sizeof(tiles[0]); t++)
                check_case(gpu, 1, 1, M, N, K, tb, t % 2, VKF_DTYPE_F32,
                           VKF_DTYPE_F32, &tiles[t]);
        }
    }
    /* Batched, B per batch and broadcast; f16 activations. */
    check_case(gpu, 3, 3, 13, 20, 12, false, true, VKF_DTYPE_F32, VKF_DTYPE_F32, NULL);
    check_case(gpu, 3, 1, 13, 20, 12, true, false, VKF_DTYPE_F16, VKF_DTYPE_BF16, NULL);
    check_case(gpu, 5, 1, 7, 9, 31, false, false, VKF_DTYPE_BF16, VKF_DTYPE_F16, NULL);
    /* K past the 8x8/4x16 switch of the [K, N] lane kernel. */
    check_case(gpu, 1, 1, 37, 48, 800, false, true, VKF_DTYPE_F32, VKF_DTYPE_F32, NULL);
    /* bf16 weights through the 16-bit UINT texel view, both layouts. */
    check_case(gpu, 1, 1, 29, 24, 40, false, true, VKF_DTYPE_F32, VKF_DTYPE_BF16, NULL);
    check_case(gpu, 1, 1, 29, 24, 40, true, true, VKF_DTYPE_F32, VKF_DTYPE_BF16, NULL);
    test_linear(gpu);
    int rc = gt_finish(&gpu);

    /* Operands larger than one 16 KiB chunk: 3 chunks of A, 2 of B. */
    gpu = gt_gpu_open((vkf_gpu_params){.max_chunk_bytes = 16384});
    check_case(gpu, 1, 1, 130, 70, 84, false, true, VKF_DTYPE_F32, VKF_DTYPE_F32, NULL);
    check_case(gpu, 1, 1, 130, 70, 84, true, true, VKF_DTYPE_F32, VKF_DTYPE_F16, NULL);
    check_case(gpu, 2, 1, 61, 71, 83, true, false, VKF_DTYPE_F32, VKF_DTYPE_F32, NULL);
    rc |= gt_finish(&gpu);
    return rc;
}
