/*
 * Shared helpers for the gpu suite: device set-up with validation, seeded
 * random data, tolerance checks.  Exit 77 (skip) when no Vulkan device.
 */
#ifndef VKF_TESTS_GPU_TEST_H
#define VKF_TESTS_GPU_TEST_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpu/half.h"
#include "vkflow/gpu.h"

static int gt_failures;

#define CHECK(cond)                                                           \
    do {                                                                      \
        if (!(cond)) {                                                        \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__,  \
                    #cond);                                                   \
            gt_failures++;                                                    \
        }                                                                     \
    } while (0)

#define CHECK_OK(expr)                                                        \
    do {                                                                      \
        int rc_ = (expr);                                                     \
        if (rc_ < 0) {                                                        \
            fprintf(stderr, "%s:%d: %s failed: %s\n", __FILE__, __LINE__,     \
                    #expr, vkf_strerror(rc_));                                \
            exit(1);                                                          \
        }                                                                     \
    } while (0)

static vkf_log gt_log;

/* Validation is on unless VKF_VALIDATION=0; any message fails the test. */
static inline vkf_gpu *gt_gpu_open(vkf_gpu_params params)
{
    const char *v = getenv("VKF_VALIDATION");
    gt_log = vkf_log_stderr(VKF_LOG_WARN);
    params.log = &gt_log;
    params.validation = !(v && !strcmp(v, "0"));
    vkf_gpu_device_info *infos = NULL;
    int n = 0;
    if (vkf_gpu_list_devices(&params, &infos, &n) < 0 || n == 0) {
        fprintf(stderr, "no Vulkan device: skipping\n");
        exit(77);
    }
    vkf_free(infos);
    vkf_gpu *gpu = NULL;
    int err = vkf_gpu_create(&params, &gpu);
    if (err == VKF_EUNSUPPORTED && params.validation) {
        fprintf(stderr, "validation layer missing: running without it\n");
        params.validation = false;
        err = vkf_gpu_create(&params, &gpu);
    }
    if (err < 0) {
        fprintf(stderr, "vkf_gpu_create: %s: skipping\n", vkf_strerror(err));
        exit(77);
    }
    return gpu;
}

static inline int gt_finish(vkf_gpu **gpu)
{
    long msgs = vkf_gpu_validation_messages(*gpu);
    CHECK(msgs == 0);
    vkf_gpu_destroy(gpu);
    CHECK(vkf_alloc_live() == 0);
    if (gt_failures)
        fprintf(stderr, "%d check(s) failed\n", gt_failures);
    return gt_failures ? 1 : 0;
}

static uint64_t gt_rng = 0x9e3779b97f4a7c15ull;

static inline void gt_seed(uint64_t s)
{
    gt_rng = s * 0x9e3779b97f4a7c15ull + 1;
}

/* Uniform in [-1, 1). */
static inline float gt_rand(void)
{
    gt_rng ^= gt_rng << 13;
    gt_rng ^= gt_rng >> 7;
    gt_rng ^= gt_rng << 17;
    return (float)((gt_rng >> 40) / 8388608.0) - 1.0f;
}

static inline float *gt_random(int64_t n)
{
    float *p = malloc((size_t)(n ? n : 1) * sizeof(float));
    for (int64_t i = 0; i < n; i++)
        p[i] = gt_rand();
    return p;
}

/* Rounds host data the way the storage dtype will, so references see the
 * same inputs as the GPU. */
static inline void gt_quantize(vkf_dtype dt, float *p, int64_t n)
{
    for (int64_t i = 0; i < n && dt != VKF_DTYPE_F32; i++)
        p[i] = dt == VKF_DTYPE_BF16 ? vkf_bf16_to_f32(vkf_f32_to_bf16(p[i]))
                                    : vkf_f16_to_f32(vkf_f32_to_f16(p[i]));
}

static inline vkf_tensor *gt_tensor(vkf_gpu *gpu, vkf_dtype dt, int ndim,
                             const int64_t *shape, float *host)
{
    vkf_tensor *t = NULL;
    CHECK_OK(vkf_tensor_create(gpu, dt, ndim, shape, &t));
    gt_quantize(dt, host, vkf_tensor_numel(t));
    CHECK_OK(vkf_tensor_upload(t, host));
    return t;
}

/* Max |got - want| / (|want| + atol) style check; returns 1 on failure. */
static inline int gt_compare(const char *what, const float *got, const float *want,
                      int64_t n, float rtol, float atol)
{
    int64_t bad = -1;
    double worst = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - want[i]);
        double lim = atol + rtol * fabs(want[i]);
        if (!(d <= lim) && (bad < 0 || d - lim > worst)) {
            bad = i;
            worst = d - lim;
        }
    }
    if (bad >= 0) {
        fprintf(stderr, "%s: mismatch at %lld: got %g want %g (rtol %g atol %g)\n",
                what, (long long)bad, got[bad], want[bad], rtol, atol);
        gt_failures++;
        return 1;
    }
    return 0;
}

static inline float *gt_download(vkf_tensor *t)
{
    float *p = malloc((size_t)vkf_tensor_numel(t) * sizeof(float));
    CHECK_OK(vkf_tensor_download(t, p));
    return p;
}

#endif
