/*
 * vkf_weights_load_tensor: raw upload of f32/bf16, host upcast of f8 to
 * f16 and of i64 / scalars to f32, checked by download.  Exit 77 without
 * a Vulkan device.
 */
#include <math.h>

#include "wtest.h"

static char *g_dir;
static test_log g_log;

static bool same_float(float a, float b)
{
    if (isnan(a) || isnan(b))
        return isnan(a) && isnan(b);
    return a == b;
}

static int test_gpu(void)
{
    vkf_gpu *gpu = NULL;
    vkf_gpu_params params = {0};
    if (getenv("VKF_TEST_NO_GPU") || vkf_gpu_create(&params, &gpu) < 0) {
        printf("no Vulkan device: skipped\n");
        return 77;
    }
    float f32[4] = {1.5f, -2.0f, 3.0f, 0.25f};
    uint16_t bf16[4] = {0x3f80, 0xc020, 0x4000, 0x3e80};
    uint8_t e4[4] = {0x38, 0x7e, 0x01, 0xb8};
    int64_t i64[4] = {-3, 7, 1000, 0};
    st_tensor t[] = {
        {"bf16", "BF16", 2, {2, 2}, bf16, sizeof(bf16)},
        {"e4m3", "F8_E4M3", 1, {4}, e4, sizeof(e4)},
        {"f32", "F32", 2, {2, 2}, f32, sizeof(f32)},
        {"i64", "I64", 1, {4}, i64, sizeof(i64)},
        {"s", "F32", 0, {0}, f32, 4},
    };
    char path[4096 + 64];
    snprintf(path, sizeof(path), "%s/gpu.safetensors", g_dir);
    st_write(path, t, 5, NULL);
    vkf_weights *w = NULL;
    CHECK_EQ_INT(vkf_weights_open(path, &w, &g_log.log), 0);
    static const vkf_dtype want[] = {VKF_DTYPE_BF16, VKF_DTYPE_F16, VKF_DTYPE_F32,
                                     VKF_DTYPE_F32, VKF_DTYPE_F32};
    for (int i = 0; w && i < 5; i++) {
        const vkf_weight_info *info = vkf_weights_find(w, t[i].name);
        vkf_tensor *x = NULL;
        CHECK_EQ_INT(vkf_weights_load_tensor(w, info, gpu, &x), 0);
        if (!x)
            continue;
        CHECK_EQ_INT(vkf_tensor_dtype(x), want[i]);
        CHECK_EQ_INT(vkf_tensor_numel(x), info->numel ? info->numel : 1);
        float host[4], ref[4];
        CHECK_EQ_INT(vkf_tensor_download(x, host), 0);
        vkf_weights_to_f32(w, info, ref);
        for (int64_t k = 0; k < vkf_tensor_numel(x); k++)
            CHECK(same_float(host[k], ref[k]));
        vkf_tensor_unref(&x);
    }
    vkf_weights_close(&w);
    vkf_gpu_destroy(&gpu);
    return 0;
}

int main(void)
{
    test_log_init(&g_log);
    g_dir = test_mkdtemp("wgpu");
    int rc = test_gpu();
    test_rmtree(g_dir);
    free(g_dir);
    return rc == 77 ? 77 : test_exit_code("weights_gpu");
}
