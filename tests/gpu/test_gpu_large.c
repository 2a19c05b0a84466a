/*
 * Tensors larger than maxStorageBufferRange (128 MiB on lavapipe) at the
 * device's real chunk size: elementwise add and matmul whose operands
 * span two storage chunks, with rows straddling the chunk boundary.
 * Tolerances as in test_gpu_elementwise / test_gpu_matmul.
 */
#include "gpu_test.h"
#include "gpu/ops/ref.h"

int main(void)
{
    gt_seed(11);
    vkf_gpu *gpu = gt_gpu_open((vkf_gpu_params){0});
    const vkf_gpu_device_info *info = vkf_gpu_info(gpu);
    uint64_t range = info->max_storage_buffer_range;
    if (info->max_allocation_size && info->max_allocation_size < range)
        range = info->max_allocation_size;
    if (range > (256ull << 20)) {
        fprintf(stderr, "binding limit %.0f MiB: too big to exceed here, skipping\n",
                range / 1048576.0);
        vkf_gpu_destroy(&gpu);
        return 77;
    }

    /* add: n f32 elements, 1.25 × the binding limit. */
    int64_t n = (int64_t)(range / 4) + (int64_t)(range / 16) + 3;
    float *ha = gt_random(n), *hb = gt_random(n);
    vkf_tensor *a = gt_tensor(gpu, VKF_DTYPE_F32, 1, &n, ha);
    vkf_tensor *b = gt_tensor(gpu, VKF_DTYPE_F32, 1, &n, hb), *o = NULL;
    CHECK_OK(vkf_op_binary(gpu, VKF_BIN_ADD, a, b, &o));
    float *got = gt_download(o);
    for (int64_t i = 0; i < n; i++)
        hb[i] += ha[i];
    gt_compare("large add", got, hb, n, 1e-6f, 0);
    free(got);
    vkf_tensor_unref(&o);
    vkf_tensor_unref(&b);
    vkf_tensor_unref(&a);
    free(hb);

    /* matmul: A [M, 1000] just over the limit (rows cross the chunk
     * boundary since 1000 does not divide the chunk), B [1000, 40]. */
    int64_t K = 1000, N = 40, M = (int64_t)(range / 4 / K) + 200;
    float *hbm = gt_random(K * N);
    vkf_tensor *am = gt_tensor(gpu, VKF_DTYPE_F32, 2, (int64_t[]){M, K}, ha);
    /* f16 first: it rounds hbm in place, so both see the same values. */
    vkf_tensor *wm = gt_tensor(gpu, VKF_DTYPE_F16, 2, (int64_t[]){N, K}, hbm);
    vkf_tensor *bm = gt_tensor(gpu, VKF_DTYPE_F32, 2, (int64_t[]){K, N}, hbm);
    for (int tb = 0; tb < 2; tb++) {
        CHECK_OK(vkf_op_matmul(gpu, am, tb ? wm : bm, tb, NULL, &o));
        got = gt_download(o);
        int64_t boundary = (int64_t)(range / 4) / K;
        float want[40];
        for (int64_t m = 0; m < M; m += (m >= boundary - 2 && m <= boundary + 2) ? 1 : 997) {
            vkf_ref_matmul(ha + m * K, hbm, tb, NULL, 1, 1, 1, N, K, want);
            char what[64];
            snprintf(what, sizeof(what), "large matmul row %lld tb %d", (long long)m, tb);
            if (gt_compare(what, got + m * N, want, N, 1e-5f, 1e-5f * (float)K))
                break;
        }
        free(got);
        vkf_tensor_unref(&o);
    }
    vkf_tensor_unref(&am);
    vkf_tensor_unref(&bm);
    vkf_tensor_unref(&wm);
    free(ha);
    free(hbm);
    return gt_finish(&gpu);
}
