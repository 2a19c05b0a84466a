/*
 * Fail the Nth host allocation inside a sequence of tensor and op calls:
 * every call must return VKF_ENOMEM (or succeed), release what it made, and
 * leave the device usable.  Live host blocks are back to the baseline after
 * each round (taken after a warm-up run, as pipelines and memory blocks
 * are kept as caches).
 */
#include "gpu_test.h"

static int run_sequence(vkf_gpu *gpu, const float *h)
{
    int err = 0;
    vkf_tensor *a = NULL, *b = NULL, *c = NULL, *d = NULL, *e = NULL, *v = NULL;
    float out[64];
    VKF_TRY(vkf_tensor_create(gpu, VKF_DTYPE_F32, 2, (int64_t[]){8, 8}, &a));
    VKF_TRY(vkf_tensor_upload(a, h));
    VKF_TRY(vkf_tensor_create(gpu, VKF_DTYPE_F16, 1, (int64_t[]){8}, &b));
    VKF_TRY(vkf_tensor_upload(b, h));
    VKF_TRY(vkf_op_binary(gpu, VKF_BIN_MUL, a, b, &c));
    VKF_TRY(vkf_op_matmul(gpu, c, a, true, b, &d));
    VKF_TRY(vkf_tensor_permute(d, (int[]){1, 0}, &v));
    VKF_TRY(vkf_op_softmax(gpu, v, &e));
    VKF_TRY(vkf_tensor_download(e, out));
fail:
    vkf_tensor_unref(&a);
    vkf_tensor_unref(&b);
    vkf_tensor_unref(&c);
    vkf_tensor_unref(&d);
    vkf_tensor_unref(&e);
    vkf_tensor_unref(&v);
    return err;
}

int main(void)
{
    gt_seed(5);
    vkf_gpu *gpu = gt_gpu_open((vkf_gpu_params){0});
    float *h = gt_random(64);
    /* Warm up: pipelines, memory blocks and the like are caches that stay. */
    CHECK_OK(run_sequence(gpu, h));
    CHECK_OK(vkf_gpu_flush(gpu));
    long base = vkf_alloc_live();
    int n;
    for (n = 0; n < 400; n++) {
        vkf_alloc_fail_at(n);
        int err = run_sequence(gpu, h);
        bool fired = vkf_alloc_failed();
        vkf_alloc_fail_at(-1);
        CHECK(fired ? err == VKF_ENOMEM : err == 0);
        CHECK_OK(vkf_gpu_flush(gpu));
        CHECK(vkf_alloc_live() == base);
        if (!fired)
            break;
    }
    CHECK(n < 400);      /* the sequence completed once no failure fired */
    fprintf(stderr, "failed each of %d allocations in turn\n", n);
    free(h);
    return gt_finish(&gpu);
}
