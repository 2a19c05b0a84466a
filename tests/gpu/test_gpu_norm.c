/*
 * softmax, layer norm, RMS norm, group norm vs the C reference (double
 * accumulation) on awkward row lengths, all storage dtypes, with and
 * without affine parameters.  Tolerance: rtol 1e-4, atol 1e-5 (f32 sums
 * over up to ~4k elements).
 */
#include "gpu_test.h"
#include "gpu/ops/ref.h"

static void test_rows(vkf_gpu *gpu, vkf_dtype dt, int64_t rows, int64_t cols)
{
    int64_t n = rows * cols, shape[2] = {rows, cols};
    float *h = gt_random(n), *hw = gt_random(cols), *hb = gt_random(cols);
    for (int64_t i = 0; i < n; i++)
        h[i] = h[i] * 4.0f + 1.0f;   /* non-zero mean */
    vkf_tensor *x = gt_tensor(gpu, dt, 2, shape, h);
    vkf_tensor *w = gt_tensor(gpu, VKF_DTYPE_F32, 1, &cols, hw);
    vkf_tensor *b = gt_tensor(gpu, dt, 1, &cols, hb);
    float *want = malloc((size_t)n * sizeof(float));
    vkf_tensor *o = NULL;
    float *got;
    char what[96];

    CHECK_OK(vkf_op_softmax(gpu, x, &o));
    vkf_ref_softmax(h, rows, cols, want);
    got = gt_download(o);
    snprintf(what, sizeof(what), "softmax %lldx%lld %s", (long long)rows,
             (long long)cols, vkf_dtype_name(dt));
    gt_compare(what, got, want, n, 1e-4f, 1e-7f);
    free(got);
    vkf_tensor_unref(&o);

    for (int affine = 0; affine < 2; affine++) {
        CHECK_OK(vkf_op_layer_norm(gpu, x, affine ? w : NULL, affine ? b : NULL,
                                   1e-5f, &o));
        vkf_ref_layer_norm(h, rows, cols, affine ? hw : NULL, affine ? hb : NULL,
                           1e-5f, want);
        got = gt_download(o);
        snprintf(what, sizeof(what), "layer_norm %lldx%lld %s affine %d",
                 (long long)rows, (long long)cols, vkf_dtype_name(dt), affine);
        gt_compare(what, got, want, n, 1e-4f, 1e-5f);
        free(got);
        vkf_tensor_unref(&o);

        CHECK_OK(vkf_op_rms_norm(gpu, x, affine ? w : NULL, 1e-6f, &o));
        vkf_ref_rms_norm(h, rows, cols, affine ? hw : NULL, 1e-6f, want);
        got = gt_download(o);
        snprintf(what, sizeof(what), "rms_norm %lldx%lld %s affine %d",
                 (long long)rows, (long long)cols, vkf_dtype_name(dt), affine);
        gt_compare(what, got, want, n, 1e-4f, 1e-5f);
        free(got);
        vkf_tensor_unref(&o);
    }
    vkf_tensor_unref(&x);
    vkf_tensor_unref(&w);
    vkf_tensor_unref(&b);
    free(h);
    free(hw);
    free(hb);
    free(want);
}

static void test_group(vkf_gpu *gpu, vkf_dtype dt, int64_t n, int64_t c,
                       int64_t hh, int64_t ww, int groups)
{
    int64_t shape[4] = {n, c, hh, ww}, total = n * c * hh * ww;
    float *h = gt_random(total), *hw = gt_random(c), *hb = gt_random(c);
    vkf_tensor *x = gt_tensor(gpu, dt, 4, shape, h);
    vkf_tensor *w = gt_tensor(gpu, VKF_DTYPE_F32, 1, &c, hw);
    vkf_tensor *b = gt_tensor(gpu, VKF_DTYPE_F32, 1, &c, hb), *o = NULL;
    float *want = malloc((size_t)total * sizeof(float));
    CHECK_OK(vkf_op_group_norm(gpu, x, groups, w, b, 1e-6f, &o));
    vkf_ref_group_norm(h, n, c, hh * ww, groups, hw, hb, 1e-6f, want);
    float *got = gt_download(o);
    char what[96];
    snprintf(what, sizeof(what), "group_norm %lldx%lldx%lldx%lld g%d %s",
             (long long)n, (long long)c, (long long)hh, (long long)ww, groups,
             vkf_dtype_name(dt));
    gt_compare(what, got, want, total, 1e-4f, 1e-5f);
    free(got);
    free(want);
    free(h);
    free(hw);
    free(hb);
    vkf_tensor_unref(&o);
    vkf_tensor_unref(&x);
    vkf_tensor_unref(&w);
    vkf_tensor_unref(&b);
}

int main(void)
{
    gt_seed(3);
    vkf_gpu *gpu = gt_gpu_open((vkf_gpu_params){0});
    for (int dt = VKF_DTYPE_F32; dt <= VKF_DTYPE_BF16; dt++) {
        test_rows(gpu, (vkf_dtype)dt, 1, 1);
        test_rows(gpu, (vkf_dtype)dt, 7, 13);
        test_rows(gpu, (vkf_dtype)dt, 13, 127);
        test_rows(gpu, (vkf_dtype)dt, 3, 4099);
        test_rows(gpu, (vkf_dtype)dt, 5, 320);   /* vec4 paths */
        test_rows(gpu, (vkf_dtype)dt, 2, 4);
        test_group(gpu, (vkf_dtype)dt, 2, 12, 7, 13, 4);
        test_group(gpu, (vkf_dtype)dt, 1, 32, 3, 5, 32);
        test_group(gpu, (vkf_dtype)dt, 1, 6, 1, 1, 1);
        test_group(gpu, (vkf_dtype)dt, 2, 8, 4, 6, 2);   /* vec4 paths */
        test_group(gpu, (vkf_dtype)dt, 1, 32, 2, 2, 32);
    }
    int rc = gt_finish(&gpu);
    /* Rows spanning storage chunks (16 KiB chunks). */
    gpu = gt_gpu_open((vkf_gpu_params){.max_chunk_bytes = 16384});
    test_rows(gpu, VKF_DTYPE_F32, 3, 4099);
    test_rows(gpu, VKF_DTYPE_BF16, 9, 1024);
    test_group(gpu, VKF_DTYPE_F16, 2, 12, 17, 13, 3);
    test_group(gpu, VKF_DTYPE_F32, 2, 12, 16, 16, 4);
    rc |= gt_finish(&gpu);
    return rc;
}
