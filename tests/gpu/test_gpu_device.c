/* Device, memory, transfers, caches, profiling, error paths. */
#include <unistd.h>

#include "gpu_test.h"
#include "gpu/gpu_internal.h"

static void test_roundtrip(vkf_gpu *gpu, vkf_dtype dt)
{
    static const int64_t sizes[] = {1, 7, 13, 127, 1000, 65537};
    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        int64_t n = sizes[s];
        float *h = gt_random(n);
        vkf_tensor *t = gt_tensor(gpu, dt, 1, &n, h);
        float *back = gt_download(t);
        /* Host data was already rounded to dt: the trip must be exact. */
        gt_compare("roundtrip", back, h, n, 0, 0);
        free(back);
        free(h);
        vkf_tensor_unref(&t);
    }
}

static void test_memory_stats(vkf_gpu *gpu)
{
    vkf_gpu_mem_stats st0, st1, st2;
    vkf_gpu_mem_stats_get(gpu, &st0);
    vkf_tensor *ts[64];
    for (int i = 0; i < 64; i++)
        CHECK_OK(vkf_tensor_create(gpu, VKF_DTYPE_F32, 1, (int64_t[]){1000 + i}, &ts[i]));
    vkf_gpu_mem_stats_get(gpu, &st1);
    CHECK(st1.current >= st0.current + 64 * 4000);
    CHECK(st1.peak >= st1.current);
    /* Suballocated: 64 small buffers need at most one new block. */
    CHECK(st1.allocations <= st0.allocations + 1);
    for (int i = 0; i < 64; i++)
        vkf_tensor_unref(&ts[i]);
    CHECK_OK(vkf_gpu_flush(gpu));
    vkf_gpu_mem_stats_get(gpu, &st2);
    CHECK(st2.current == st0.current);
    CHECK(st2.peak == st1.peak);
    vkf_gpu_mem_reset_peak(gpu);
    vkf_gpu_mem_stats_get(gpu, &st2);
    CHECK(st2.peak == st2.current);
}

static const char *glsl_src =
    "#version 450\n"
    "layout(local_size_x = 64) in;\n"
    "layout(binding = 0) buffer B { float d[]; };\n"
    "void main() { d[gl_GlobalInvocationID.x] = SCALE * float(gl_GlobalInvocationID.x); }\n";

static uint32_t first_spirv[4096];
static size_t first_words;

static void test_runtime_glsl(vkf_gpu *gpu, const char *dir)
{
    const uint32_t *spv1 = NULL, *spv2 = NULL;
    size_t w1 = 0, w2 = 0;
    const char *defs[] = {"SCALE=2.0", NULL};
    CHECK_OK(vkf_gpu_compile_glsl(gpu, "test.comp", glsl_src, defs, &spv1, &w1));
    CHECK(w1 > 5 && spv1[0] == 0x07230203u);
    CHECK_OK(vkf_gpu_compile_glsl(gpu, "test.comp", glsl_src, defs, &spv2, &w2));
    CHECK(spv1 == spv2);  /* memory cache hit */
    if (w1 <= 4096) {
        memcpy(first_spirv, spv1, w1 * 4);
        first_words = w1;
    }
    /* A file landed in the SPIR-V cache dir. */
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "ls %s/*.spv >/dev/null 2>&1", dir);
    CHECK(system(cmd) == 0);
    const uint32_t *bad = NULL;
    size_t wb = 0;
    vkf_log quiet = {0};
    (void)quiet;
    CHECK(vkf_gpu_compile_glsl(gpu, "bad.comp", "#version 450\nvoid main() { x; }\n",
                               NULL, &bad, &wb) == VKF_EINVAL);
}

/* Independent dispatches share a barrier epoch; dependent ones get one. */
static void test_barriers(vkf_gpu *gpu)
{
    int64_t n = 1000;
    float *h = gt_random(n);
    vkf_tensor *x = gt_tensor(gpu, VKF_DTYPE_F32, 1, &n, h), *y[4] = {0}, *z = NULL;
    CHECK_OK(vkf_gpu_flush(gpu));
    vkf_gpu_batch_stats s0, s1, s2;
    vkf_gpu_batch_stats_get(gpu, &s0);
    for (int i = 0; i < 4; i++)
        CHECK_OK(vkf_op_unary(gpu, VKF_UN_SCALE, x, (float)i, 0, &y[i]));
    vkf_gpu_batch_stats_get(gpu, &s1);
    CHECK(s1.dispatches == s0.dispatches + 4);
    CHECK(s1.barriers == s0.barriers);       /* four readers of x: none */
    CHECK_OK(vkf_op_binary(gpu, VKF_BIN_ADD, y[0], y[3], &z));
    vkf_gpu_batch_stats_get(gpu, &s2);
    CHECK(s2.barriers == s1.barriers + 1);   /* reads y[0], y[3]: one */
    CHECK(s2.submits == s0.submits);         /* still one batch */
    float *got = gt_download(z);
    for (int64_t i = 0; i < n; i++)
        h[i] *= 3.0f;
    gt_compare("batched scale+add", got, h, n, 1e-6f, 0);
    free(got);
    free(h);
    for (int i = 0; i < 4; i++)
        vkf_tensor_unref(&y[i]);
    vkf_tensor_unref(&z);
    vkf_tensor_unref(&x);
}

/* A chain longer than one batch: full batches are submitted without
 * waiting while recording continues; intermediate tensors freed on the
 * way are released only when their batch has run. */
static void test_long_chain(vkf_gpu *gpu)
{
    int64_t n = 777;
    float *h = gt_random(n);
    vkf_tensor *y = gt_tensor(gpu, VKF_DTYPE_F32, 1, &n, h), *t = NULL;
    vkf_gpu_batch_stats s0, s1;
    CHECK_OK(vkf_gpu_flush(gpu));
    vkf_gpu_batch_stats_get(gpu, &s0);
    const int steps = 1300;
    for (int i = 0; i < steps; i++) {
        CHECK_OK(vkf_op_unary(gpu, VKF_UN_SCALE, y, 1.0f, 1.0f, &t));
        vkf_tensor_unref(&y);
        y = t;
        t = NULL;
    }
    vkf_gpu_batch_stats_get(gpu, &s1);
    CHECK(s1.submits >= s0.submits + 2);     /* submitted while recording */
    float *got = gt_download(y);
    for (int64_t i = 0; i < n; i++)
        h[i] += (float)steps;
    gt_compare("long chain", got, h, n, 1e-5f, 1e-4f);
    free(got);
    free(h);
    vkf_tensor_unref(&y);
}

static void test_profile(vkf_gpu *gpu)
{
    int64_t n = 4096;
    float *h = gt_random(n);
    vkf_tensor *a = gt_tensor(gpu, VKF_DTYPE_F32, 1, &n, h), *b = NULL, *c = NULL;
    vkf_gpu_profile_reset(gpu);
    CHECK_OK(vkf_op_binary(gpu, VKF_BIN_ADD, a, a, &b));
    CHECK_OK(vkf_op_unary(gpu, VKF_UN_SILU, b, 0, 0, &c));
    CHECK_OK(vkf_gpu_flush(gpu));
    vkf_gpu_op_time times[8];
    int k = vkf_gpu_profile_get(gpu, times, 8);
    CHECK(k == 2);
    for (int i = 0; i < k && i < 8; i++) {
        CHECK(times[i].dispatches == 1);
        CHECK(times[i].ms >= 0);
    }
    CHECK(k >= 1 && !strcmp(times[0].op, "add"));
    vkf_tensor_unref(&a);
    vkf_tensor_unref(&b);
    vkf_tensor_unref(&c);
    free(h);
}

int main(void)
{
    char dir[] = "/tmp/vkf_gpu_test_XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    char pcache[256], spvdir[256];
    snprintf(pcache, sizeof(pcache), "%s/pipelines.bin", dir);
    snprintf(spvdir, sizeof(spvdir), "%s/spirv", dir);

    vkf_gpu *gpu = gt_gpu_open((vkf_gpu_params){
        .pipeline_cache_path = pcache, .spirv_cache_dir = spvdir, .profile = true});
    const vkf_gpu_device_info *info = vkf_gpu_info(gpu);
    CHECK(info->name[0] != 0);
    CHECK(info->subgroup_size >= 1);
    CHECK(info->heap_count >= 1);
    CHECK(info->storage_16bit);
    for (int dt = VKF_DTYPE_F32; dt <= VKF_DTYPE_BF16; dt++)
        test_roundtrip(gpu, (vkf_dtype)dt);
    test_memory_stats(gpu);
    test_barriers(gpu);
    test_long_chain(gpu);
    test_runtime_glsl(gpu, spvdir);
    if (info->timestamps)
        test_profile(gpu);
    int rc = gt_finish(&gpu);
    /* The pipeline cache was written at destroy and loads again. */
    CHECK(access(pcache, R_OK) == 0);

    /* Staging path (device memory never mapped), f16 and bf16. */
    gpu = gt_gpu_open((vkf_gpu_params){.pipeline_cache_path = pcache,
                                       .spirv_cache_dir = spvdir,
                                       .force_staging = true});
    {
        /* SPIR-V cache on disk: a new device gets the same module back. */
        const uint32_t *spv = NULL;
        size_t w = 0;
        const char *defs[] = {"SCALE=2.0", NULL};
        CHECK_OK(vkf_gpu_compile_glsl(gpu, "test.comp", glsl_src, defs, &spv, &w));
        CHECK(w == first_words && !memcmp(spv, first_spirv, w * 4));
    }
    for (int dt = VKF_DTYPE_F32; dt <= VKF_DTYPE_BF16; dt++)
        test_roundtrip(gpu, (vkf_dtype)dt);
    rc |= gt_finish(&gpu);

    /* Vulkan errors map to their own codes; a lost device stays lost. */
    gpu = gt_gpu_open((vkf_gpu_params){0});
    fprintf(stderr, "(three logged device errors are expected)\n");
    CHECK(vkf_gpu_vk_error(gpu, VK_ERROR_OUT_OF_DEVICE_MEMORY, "test") == VKF_EDEVICE_OOM);
    CHECK(vkf_gpu_vk_error(gpu, VK_ERROR_INITIALIZATION_FAILED, "test") == VKF_EDEVICE);
    CHECK(vkf_gpu_flush(gpu) == 0);
    CHECK(vkf_gpu_vk_error(gpu, VK_ERROR_DEVICE_LOST, "test") == VKF_EDEVICE_LOST);
    CHECK(vkf_gpu_flush(gpu) == VKF_EDEVICE_LOST);
    vkf_tensor *t = NULL;
    int64_t one = 1;
    CHECK_OK(vkf_tensor_create(gpu, VKF_DTYPE_F32, 1, &one, &t));
    vkf_tensor *o = NULL;
    CHECK(vkf_op_unary(gpu, VKF_UN_RELU, t, 0, 0, &o) == VKF_EDEVICE_LOST);
    CHECK(o == NULL);
    vkf_tensor_unref(&t);
    vkf_gpu_destroy(&gpu);

    /* Bad device index is a clear error, not a crash. */
    vkf_log quiet = {.level = VKF_LOG_ERROR};
    vkf_gpu *none = NULL;
    CHECK(vkf_gpu_create(&(vkf_gpu_params){.device_index = 99, .log = &quiet},
                         &none) == VKF_EINVAL);
    CHECK(none == NULL);

    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot clean %s\n", dir);
    return rc || gt_failures ? 1 : 0;
}
