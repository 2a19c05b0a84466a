/* Nodes only the CLI tests use: a slow node that reports progress, so a
 * test can interrupt a run in the middle of a node. */
#include <stdlib.h>
#include <time.h>

#include "vkflow/gpu.h"
#include "vkflow/node.h"

static int slow_exec(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    int64_t steps = in[0].u.i;
    for (int64_t s = 1; s <= steps; s++) {
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
        int err = vkf_exec_progress(ctx, s, steps);
        if (err < 0)
            return err;
    }
    vkf_value_set_int(&out[0], steps);
    return 0;
}

static const vkf_input_def slow_inputs[] = {VKF_INPUT_INT("steps", 10, 1, 100000)};
static const vkf_output_def slow_outputs[] = {{.type = VKF_T_INT}};
static const vkf_node_def slow_def = {
    .name = "TestSlowSteps", .category = "testing",
    .inputs = slow_inputs, .nb_inputs = 1,
    .outputs = slow_outputs, .nb_outputs = 1, .execute = slow_exec,
};

/* ones(n, n) @ ones(n, n) on the GPU, summed on the host: n^3. Exercises
 * the executor's lazily created device, --profile and memory reporting. */
static int gpu_exec(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    vkf_gpu *gpu;
    int err = vkf_exec_gpu(ctx, &gpu);
    if (err < 0)
        return err;
    int64_t n = in[0].u.i, shape[2] = {n, n};
    vkf_tensor *a = NULL, *c = NULL;
    float *host = malloc(sizeof(float) * (size_t)(n * n));
    if (!host)
        return VKF_ENOMEM;
    for (int64_t i = 0; i < n * n; i++)
        host[i] = 1.0f;
    err = vkf_tensor_create(gpu, VKF_DTYPE_F32, 2, shape, &a);
    if (err >= 0)
        err = vkf_tensor_upload(a, host);
    if (err >= 0)
        err = vkf_op_matmul(gpu, a, a, false, NULL, &c);
    if (err >= 0)
        err = vkf_gpu_flush(gpu);
    if (err >= 0)
        err = vkf_tensor_download(c, host);
    double sum = 0;
    for (int64_t i = 0; err >= 0 && i < n * n; i++)
        sum += host[i];
    free(host);
    vkf_tensor_unref(&a);
    vkf_tensor_unref(&c);
    if (err < 0)
        return vkf_exec_error(ctx, "gpu matmul failed: %s", vkf_strerror(err));
    vkf_value_set_float(&out[0], sum);
    return 0;
}

static const vkf_input_def gpu_inputs[] = {VKF_INPUT_INT("n", 64, 1, 4096)};
static const vkf_output_def gpu_outputs[] = {{.type = VKF_T_FLOAT}};
static const vkf_node_def gpu_def = {
    .name = "TestGpuMatmulSum", .category = "testing",
    .inputs = gpu_inputs, .nb_inputs = 1,
    .outputs = gpu_outputs, .nb_outputs = 1, .execute = gpu_exec,
};

const vkf_node_def *const vkf_cli_test_nodes[] = {&slow_def, &gpu_def, NULL};
