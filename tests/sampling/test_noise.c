/* ComfyUI prepare_noise against the goldens, plus argument checks. */
#include <vkflow/sampling.h>

#include "../test.h"
#include "golden.h"

static void check_cases(const cJSON *cases)
{
    for (const cJSON *c = cases->child; c; c = c->next) {
        int64_t shape[8], index[16];
        int ndim = 0, n_index = 0;
        for (const cJSON *d = cJSON_GetObjectItem(c, "shape")->child; d; d = d->next)
            shape[ndim++] = (int64_t)d->valuedouble;
        const cJSON *bi = cJSON_GetObjectItem(c, "batch_index");
        for (const cJSON *d = bi ? bi->child : NULL; d; d = d->next)
            index[n_index++] = (int64_t)d->valuedouble;
        size_t per = 1;
        for (int i = 1; i < ndim; i++)
            per *= (size_t)shape[i];
        size_t n = per * (size_t)(n_index ? n_index : shape[0]);
        float *out = malloc(n * sizeof(float));
        int err = vkf_prepare_noise(golden_u64(cJSON_GetObjectItem(c, "seed")), shape, ndim,
                                    n_index ? index : NULL, n_index, VKF_RANDN_AVX2, out);
        CHECK(err == 0);
        int bad = golden_compare_tensor(c, out, n);
        if (bad)
            fprintf(stderr, "noise case seed %s: %d mismatches\n",
                    cJSON_GetObjectItem(c, "seed")->valuestring, bad);
        CHECK(bad == 0);
        free(out);
    }
}

static void check_errors(void)
{
    float out[64];
    int64_t shape[4] = {2, 4, 2, 2};
    int64_t neg[4] = {2, -4, 2, 2};
    int64_t bad_index[2] = {0, -1};
    CHECK(vkf_prepare_noise(1, NULL, 4, NULL, 0, VKF_RANDN_AVX2, out) == VKF_EINVAL);
    CHECK(vkf_prepare_noise(1, shape, 0, NULL, 0, VKF_RANDN_AVX2, out) == VKF_EINVAL);
    CHECK(vkf_prepare_noise(1, neg, 4, NULL, 0, VKF_RANDN_AVX2, out) == VKF_EINVAL);
    CHECK(vkf_prepare_noise(1, shape, 4, bad_index, 2, VKF_RANDN_AVX2, out) == VKF_EINVAL);
    CHECK(vkf_prepare_noise(1, shape, 4, bad_index, 0, VKF_RANDN_AVX2, out) == VKF_EINVAL);

    /* batch_index [0, 1] draws the two rows one after the other: for rows of
     * >= 16 values that equals one randn of the whole batch. */
    float whole[32], split[32];
    int64_t index[2] = {0, 1};
    CHECK(vkf_prepare_noise(9, shape, 4, NULL, 0, VKF_RANDN_AVX2, whole) == 0);
    CHECK(vkf_prepare_noise(9, shape, 4, index, 2, VKF_RANDN_AVX2, split) == 0);
    CHECK(memcmp(whole, split, sizeof(whole)) == 0);

    /* The scratch row is the only allocation; its failure is reported and
     * nothing leaks either way. */
    long live = vkf_alloc_live();
    vkf_alloc_fail_at(0);
    CHECK(vkf_prepare_noise(9, shape, 4, index, 2, VKF_RANDN_AVX2, split) == VKF_ENOMEM);
    vkf_alloc_fail_at(-1);
    CHECK(vkf_alloc_live() == live);
}

int main(void)
{
    cJSON *golden = golden_load("sampling_noise.json");
    if (!golden)
        return 77;
    check_cases(cJSON_GetObjectItem(golden, "cases"));
    check_errors();
    cJSON_Delete(golden);
    return test_result("test_noise");
}
