/*
 * ComfyUI's prepare_noise (comfy/sample.py): the initial latent noise is one
 * CPU float32 torch.randn from a generator reseeded with the seed; with a
 * batch_index, one [1, ...] draw per index 0..max(index) from the same
 * generator, keeping the requested ones (np.unique + inverse in ComfyUI,
 * which amounts to: row i gets draw number batch_index[i]).
 */
#include "fp_strict.h"

#include <string.h>

#include <vkflow/sampling.h>

static int element_count(const int64_t *shape, int first, int ndim, size_t *count)
{
    size_t n = 1;
    for (int i = first; i < ndim; i++) {
        if (shape[i] < 0)
            return VKF_EINVAL;
        if (shape[i] != 0 && n > SIZE_MAX / sizeof(float) / (size_t)shape[i])
            return VKF_EINVAL;
        n *= (size_t)shape[i];
    }
    *count = n;
    return VKF_OK;
}

int vkf_prepare_noise(uint64_t seed, const int64_t *shape, int ndim,
                      const int64_t *batch_index, int n_index,
                      vkf_randn_kernel kernel, float *out)
{
    int err;
    float *draw = NULL;
    size_t total, per_sample;
    vkf_torch_rng rng;

    if (!shape || ndim < 1 || !out || (batch_index && n_index < 1))
        return VKF_EINVAL;
    VKF_TRY(element_count(shape, 0, ndim, &total));
    VKF_TRY(element_count(shape, 1, ndim, &per_sample));

    vkf_torch_rng_seed(&rng, seed);
    if (!batch_index) {
        vkf_torch_randn(&rng, out, total, kernel);
        return VKF_OK;
    }

    int64_t max_index = 0;
    for (int i = 0; i < n_index; i++) {
        if (batch_index[i] < 0)
            return VKF_EINVAL;
        if (batch_index[i] > max_index)
            max_index = batch_index[i];
    }
    draw = vkf_malloc(per_sample ? per_sample * sizeof(float) : 1);
    VKF_CHECK_ALLOC(draw);
    for (int64_t d = 0; d <= max_index; d++) {
        vkf_torch_randn(&rng, draw, per_sample, kernel);
        for (int i = 0; i < n_index; i++)
            if (batch_index[i] == d)
                memcpy(out + (size_t)i * per_sample, draw, per_sample * sizeof(float));
    }
    err = VKF_OK;
fail:
    vkf_free(draw);
    return err;
}
