/*
 * avg/max pool2d and upsample (nearest, nearest-exact, bilinear with and
 * without align_corners) against the C references: awkward sizes (1, 7, 13,
 * 127), odd kernels, stride 1/2/3, padding 0/1/2, count_include_pad both
 * ways, integer, fractional and explicit-size scales, 4-D and 5-D inputs,
 * f16/bf16 storage, strided views, argument errors, and 16 KiB storage
 * chunks.
 * Tolerance: nearest and max pooling must be exact (they select inputs);
 * average pooling and bilinear |err| <= 1e-6 + 1e-5 * |ref|.
 */
#include "gpu_test.h"
#include "gpu/ops/spatial_ref.h"

static void check_pool(vkf_gpu *gpu, bool max, int ndim, const int64_t *shape,
                       vkf_pool2d_params p, vkf_dtype dt)
{
    int64_t n = 1;
    for (int d = 0; d < ndim; d++)
        n *= shape[d];
    int64_t h = shape[ndim - 2], w = shape[ndim - 1], planes = n / (h * w);
    float *hx = gt_random(n);
    vkf_tensor *x = gt_tensor(gpu, dt, ndim, shape, hx), *o = NULL;
    if (max)
        CHECK_OK(vkf_op_max_pool2d(gpu, x, &p, &o));
    else
        CHECK_OK(vkf_op_avg_pool2d(gpu, x, &p, &o));
    int64_t on = vkf_tensor_numel(o);
    int64_t ho = vkf_tensor_shape(o)[ndim - 2], wo = vkf_tensor_shape(o)[ndim - 1];
    CHECK(on == planes * ho * wo && vkf_tensor_ndim(o) == ndim);
    float *want = malloc((size_t)on * sizeof(float));
    vkf_ref_pool2d(max, hx, planes, h, w, &p, want);
    float *got = gt_download(o);
    char what[160];
    snprintf(what, sizeof(what), "%s_pool2d %lldx%lld (planes %lld) k%dx%d s%d,%d p%d,%d%s %s",
             max ? "max" : "avg", (long long)h, (long long)w, (long long)planes,
             p.kernel[0], p.kernel[1], p.stride[0], p.stride[1], p.padding[0],
             p.padding[1], p.exclude_pad ? " exclude_pad" : "", vkf_dtype_name(dt));
    gt_compare(what, got, want, on, max ? 0.0f : 1e-5f, max ? 0.0f : 1e-6f);
    free(got);
    free(want);
    free(hx);
    vkf_tensor_unref(&o);
    vkf_tensor_unref(&x);
}

static void check_upsample(vkf_gpu *gpu, int ndim, const int64_t *shape,
                           vkf_upsample_params p, vkf_dtype dt)
{
    int64_t n = 1;
    for (int d = 0; d < ndim; d++)
        n *= shape[d];
    int64_t h = shape[ndim - 2], w = shape[ndim - 1], planes = n / (h * w);
    float *hx = gt_random(n);
    vkf_tensor *x = gt_tensor(gpu, dt, ndim, shape, hx), *o = NULL;
    CHECK_OK(vkf_op_upsample(gpu, x, &p, &o));
    int64_t ho = vkf_upsample_out_size(h, p.size[0], p.scale[0]);
    int64_t wo = vkf_upsample_out_size(w, p.size[1], p.scale[1]);
    CHECK(vkf_tensor_shape(o)[ndim - 2] == ho && vkf_tensor_shape(o)[ndim - 1] == wo);
    int64_t on = planes * ho * wo;
    CHECK(vkf_tensor_numel(o) == on);
    float *want = malloc((size_t)on * sizeof(float));
    vkf_ref_upsample(hx, planes, h, w, &p, want);
    float *got = gt_download(o);
    static const char *modes[] = {"nearest", "nearest-exact", "bilinear"};
    char what[160];
    snprintf(what, sizeof(what), "upsample %s%s %lldx%lld -> %lldx%lld (scale %g,%g) %s",
             modes[p.mode], p.align_corners ? " align_corners" : "", (long long)h,
             (long long)w, (long long)ho, (long long)wo, p.scale[0], p.scale[1],
             vkf_dtype_name(dt));
    bool exact = p.mode != VKF_UPSAMPLE_BILINEAR;
    gt_compare(what, got, want, on, exact ? 0.0f : 1e-5f, exact ? 0.0f : 1e-6f);
    free(got);
    free(want);
    free(hx);
    vkf_tensor_unref(&o);
    vkf_tensor_unref(&x);
}

/* A transposed (non-contiguous) view as input: the ops copy it first. */
static void check_view(vkf_gpu *gpu)
{
    int64_t shape[4] = {2, 3, 7, 5};
    float *hx = gt_random(2 * 3 * 7 * 5);
    vkf_tensor *x = gt_tensor(gpu, VKF_DTYPE_F32, 4, shape, hx), *v = NULL, *o = NULL;
    CHECK_OK(vkf_tensor_permute(x, (int[]){0, 1, 3, 2}, &v));
    float *t = malloc(sizeof(float) * 2 * 3 * 7 * 5);
    for (int pl = 0; pl < 6; pl++)
        for (int i = 0; i < 7; i++)
            for (int j = 0; j < 5; j++)
                t[(pl * 5 + j) * 7 + i] = hx[(pl * 7 + i) * 5 + j];
    vkf_upsample_params p = {.mode = VKF_UPSAMPLE_BILINEAR, .scale = {2, 2}};
    CHECK_OK(vkf_op_upsample(gpu, v, &p, &o));
    float *want = malloc(sizeof(float) * 6 * 10 * 14);
    vkf_ref_upsample(t, 6, 5, 7, &p, want);
    float *got = gt_download(o);
    gt_compare("upsample of a permuted view", got, want, 6 * 10 * 14, 1e-5f, 1e-6f);
    free(got);
    free(want);
    free(t);
    free(hx);
    vkf_tensor_unref(&o);
    vkf_tensor_unref(&v);
    vkf_tensor_unref(&x);
}

/* Argument errors are VKF_EINVAL at the API boundary. */
static void check_errors(vkf_gpu *gpu)
{
    float *h = gt_random(2 * 3 * 4 * 4);
    vkf_tensor *x = gt_tensor(gpu, VKF_DTYPE_F32, 4, (int64_t[]){2, 3, 4, 4}, h);
    vkf_tensor *x2 = gt_tensor(gpu, VKF_DTYPE_F32, 2, (int64_t[]){4, 4}, h), *o = NULL;
    /* No kernel; padding over half the kernel; kernel over the padded
     * input; pooling a 2-D tensor; upsample with neither size nor scale,
     * or an unknown mode. */
    CHECK(vkf_op_avg_pool2d(gpu, x, &(vkf_pool2d_params){0}, &o) == VKF_EINVAL);
    CHECK(vkf_op_max_pool2d(gpu, x, &(vkf_pool2d_params){.kernel = {3, 3},
                            .padding = {2, 0}}, &o) == VKF_EINVAL);
    CHECK(vkf_op_max_pool2d(gpu, x, &(vkf_pool2d_params){.kernel = {7, 1}}, &o) ==
          VKF_EINVAL);
    CHECK(vkf_op_avg_pool2d(gpu, x2, &(vkf_pool2d_params){.kernel = {2, 2}}, &o) ==
          VKF_EINVAL);
    CHECK(vkf_op_upsample(gpu, x, &(vkf_upsample_params){.size = {8, 0}}, &o) ==
          VKF_EINVAL);
    CHECK(vkf_op_upsample(gpu, x, &(vkf_upsample_params){
              .mode = (vkf_upsample_mode)7, .scale = {2, 2}}, &o) == VKF_EINVAL);
    CHECK(o == NULL);
    vkf_tensor_unref(&x);
    vkf_tensor_unref(&x2);
    free(h);
}

int main(void)
{
    gt_seed(5);
    vkf_gpu *gpu = gt_gpu_open((vkf_gpu_params){0});
    static const int64_t s4[][4] = {
        {1, 1, 1, 1}, {2, 3, 7, 13}, {1, 2, 127, 5}, {1, 4, 13, 16}, {3, 1, 8, 9},
    };
    static const vkf_pool2d_params pools[] = {
        {.kernel = {1, 1}}, {.kernel = {2, 2}}, {.kernel = {3, 3}, .stride = {1, 1}, .padding = {1, 1}},
        {.kernel = {3, 3}, .stride = {2, 2}, .padding = {1, 1}},
        {.kernel = {3, 3}, .stride = {2, 2}, .padding = {1, 1}, .exclude_pad = true},
        {.kernel = {5, 3}, .stride = {3, 1}, .padding = {2, 0}},
        {.kernel = {5, 5}, .stride = {1, 2}, .padding = {2, 1}, .exclude_pad = true},
        {.kernel = {1, 7}, .stride = {1, 1}, .padding = {0, 3}},
    };
    for (size_t s = 0; s < VKF_ARRAY_SIZE(s4); s++)
        for (size_t k = 0; k < VKF_ARRAY_SIZE(pools); k++) {
            const vkf_pool2d_params *p = &pools[k];
            int kh = p->kernel[0], kw = p->kernel[1];
            if (s4[s][2] + 2 * p->padding[0] < kh || s4[s][3] + 2 * p->padding[1] < kw)
                continue;
            check_pool(gpu, false, 4, s4[s], *p, VKF_DTYPE_F32);
            check_pool(gpu, true, 4, s4[s], *p, VKF_DTYPE_F32);
        }
    static const int64_t s5[5] = {1, 2, 3, 9, 7};
    check_pool(gpu, false, 5, s5, pools[3], VKF_DTYPE_F16);
    check_pool(gpu, true, 5, s5, pools[5], VKF_DTYPE_BF16);

    static const vkf_upsample_params ups[] = {
        {.mode = VKF_UPSAMPLE_NEAREST, .scale = {2, 2}},
        {.mode = VKF_UPSAMPLE_NEAREST, .scale = {3, 1}},
        {.mode = VKF_UPSAMPLE_NEAREST, .scale = {1.5, 2.5}},
        {.mode = VKF_UPSAMPLE_NEAREST, .scale = {0.5, 0.7}},
        {.mode = VKF_UPSAMPLE_NEAREST, .size = {17, 9}},
        {.mode = VKF_UPSAMPLE_NEAREST, .size = {5, 3}},
        {.mode = VKF_UPSAMPLE_NEAREST_EXACT, .scale = {2, 2}},
        {.mode = VKF_UPSAMPLE_NEAREST_EXACT, .scale = {1.5, 2.5}},
        {.mode = VKF_UPSAMPLE_NEAREST_EXACT, .size = {17, 9}},
        {.mode = VKF_UPSAMPLE_NEAREST_EXACT, .size = {4, 3}},
        {.mode = VKF_UPSAMPLE_BILINEAR, .scale = {2, 2}},
        {.mode = VKF_UPSAMPLE_BILINEAR, .scale = {2, 2}, .align_corners = true},
        {.mode = VKF_UPSAMPLE_BILINEAR, .scale = {1.5, 0.6}},
        {.mode = VKF_UPSAMPLE_BILINEAR, .size = {17, 9}},
        {.mode = VKF_UPSAMPLE_BILINEAR, .size = {17, 1}, .align_corners = true},
        {.mode = VKF_UPSAMPLE_BILINEAR, .size = {3, 4}, .align_corners = true},
    };
    for (size_t s = 0; s < VKF_ARRAY_SIZE(s4); s++)
        for (size_t u = 0; u < VKF_ARRAY_SIZE(ups); u++) {
            int64_t ho = vkf_upsample_out_size(s4[s][2], ups[u].size[0], ups[u].scale[0]);
            int64_t wo = vkf_upsample_out_size(s4[s][3], ups[u].size[1], ups[u].scale[1]);
            if (ho >= 1 && wo >= 1)
                check_upsample(gpu, 4, s4[s], ups[u], VKF_DTYPE_F32);
        }
    check_upsample(gpu, 5, s5, ups[6], VKF_DTYPE_F16);
    check_upsample(gpu, 5, s5, ups[12], VKF_DTYPE_BF16);
    check_upsample(gpu, 3, (int64_t[]){4, 6, 5}, ups[0], VKF_DTYPE_F32);
    check_view(gpu);
    check_errors(gpu);
    int rc = gt_finish(&gpu);

    /* 16 KiB chunks: inputs of 2-3 chunks, outputs of 1-3. */
    gpu = gt_gpu_open((vkf_gpu_params){.max_chunk_bytes = 16384});
    static const int64_t big[4] = {1, 3, 61, 53};
    check_pool(gpu, false, 4, big, pools[2], VKF_DTYPE_F32);
    check_pool(gpu, true, 4, big, pools[3], VKF_DTYPE_F32);
    static const int64_t mid[4] = {1, 2, 48, 45};
    check_upsample(gpu, 4, mid, ups[2], VKF_DTYPE_F32);
    check_upsample(gpu, 4, mid, ups[12], VKF_DTYPE_F32);
    rc |= gt_finish(&gpu);
    return rc;
}
