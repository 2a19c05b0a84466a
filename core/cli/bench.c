/* `vkflow bench ops`: time each op on fixed shapes, report ms and rates. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/gpu_cli.h"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static double cpu_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* On a CPU device (lavapipe) the "GPU" runs on this process's threads:
 * CPU time spread over the cores estimates the time on an idle machine,
 * which matters when the machine is shared. */
static bool cpu_device;
static double last_cpu_ms;

static uint32_t rng_state = 12345;

static float frand(void)
{
    rng_state = rng_state * 1664525u + 1013904223u;
    return (float)(rng_state >> 8) / 16777216.0f - 0.5f;
}

static int random_tensor(vkf_gpu *gpu, vkf_dtype dt, int ndim,
                         const int64_t *shape, vkf_tensor **out)
{
    int err = vkf_tensor_create(gpu, dt, ndim, shape, out);
    if (err < 0)
        return err;
    int64_t n = vkf_tensor_numel(*out);
    float *h = vkf_malloc((size_t)n * sizeof(float));
    if (!h) {
        vkf_tensor_unref(out);
        return VKF_ENOMEM;
    }
    for (int64_t i = 0; i < n; i++)
        h[i] = frand();
    err = vkf_tensor_upload(*out, h);
    vkf_free(h);
    if (err < 0)
        vkf_tensor_unref(out);
    return err;
}

typedef int (*bench_fn)(vkf_gpu *gpu, vkf_tensor **in, vkf_tensor **out);

typedef struct bench_case {
    const char *op;
    char shape[64];
    double flops, bytes;
} bench_case;

/* Runs fn iters times in one batch (warm-up first); returns ms per run. */
static int time_runs(vkf_gpu *gpu, bench_fn fn, vkf_tensor **in, int iters,
                     double *ms)
{
    int err = 0;
    vkf_tensor *o = NULL;
    VKF_TRY(fn(gpu, in, &o));
    vkf_tensor_unref(&o);
    VKF_TRY(vkf_gpu_flush(gpu));
    double t0 = now_ms(), c0 = cpu_ms();
    for (int i = 0; i < iters; i++) {
        VKF_TRY(fn(gpu, in, &o));
        vkf_tensor_unref(&o);
    }
    VKF_TRY(vkf_gpu_flush(gpu));
    *ms = (now_ms() - t0) / iters;
    last_cpu_ms = (cpu_ms() - c0) / iters;
fail:
    vkf_tensor_unref(&o);
    return err;
}

static void report(const char *dev, const bench_case *c, double ms)
{
    printf("%-12s %-24s %9.3f ms", c->op, c->shape, ms);
    if (c->flops > 0)
        printf("  %8.2f GFLOP/s", c->flops / (ms * 1e6));
    if (c->bytes > 0)
        printf("  %8.2f GB/s", c->bytes / (ms * 1e6));
    if (cpu_device) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        double est = last_cpu_ms / (double)(cores > 0 ? cores : 1);
        printf("  (cpu-time est. %.3f ms", est);
        if (c->flops > 0)
            printf(", %.2f GFLOP/s", c->flops / (est * 1e6));
        printf(")");
    }
    printf("  [%s]\n", dev);
    fflush(stdout);
}

static int run_matmul(vkf_gpu *gpu, vkf_tensor **in, vkf_tensor **out)
{
    return vkf_op_matmul(gpu, in[0], in[1], false, NULL, out);
}

static int run_linear(vkf_gpu *gpu, vkf_tensor **in, vkf_tensor **out)
{
    return vkf_op_linear(gpu, in[0], in[1], NULL, out);
}

static int run_add(vkf_gpu *gpu, vkf_tensor **in, vkf_tensor **out)
{
    return vkf_op_binary(gpu, VKF_BIN_ADD, in[0], in[1], out);
}

static int run_silu(vkf_gpu *gpu, vkf_tensor **in, vkf_tensor **out)
{
    return vkf_op_unary(gpu, VKF_UN_SILU, in[0], 0, 0, out);
}

static int run_gelu(vkf_gpu *gpu, vkf_tensor **in, vkf_tensor **out)
{
    return vkf_op_unary(gpu, VKF_UN_GELU_ERF, in[0], 0, 0, out);
}

static int run_softmax(vkf_gpu *gpu, vkf_tensor **in, vkf_tensor **out)
{
    return vkf_op_softmax(gpu, in[0], out);
}

static int run_layer_norm(vkf_gpu *gpu, vkf_tensor **in, vkf_tensor **out)
{
    return vkf_op_layer_norm(gpu, in[0], NULL, NULL, 1e-5f, out);
}

static int run_group_norm(vkf_gpu *gpu, vkf_tensor **in, vkf_tensor **out)
{
    return vkf_op_group_norm(gpu, in[0], 32, NULL, NULL, 1e-5f, out);
}

static bool wanted(const char *filter, const char *op)
{
    return !filter || !strcmp(filter, op);
}

static int bench_all(vkf_gpu *gpu, const char *filter, int iters)
{
    int err = 0;
    const char *dev = vkf_gpu_info(gpu)->name;
    vkf_tensor *in[2] = {NULL, NULL};
    static const int64_t mm[][3] = {
        {1024, 1024, 1024}, {2048, 2048, 2048}, {4096, 320, 320},
        {4096, 1280, 320}, {1024, 640, 640},
    };
    printf("%-12s %-24s %12s\n", "op", "shape", "time");
    for (size_t i = 0; i < VKF_ARRAY_SIZE(mm); i++) {
        int64_t M = mm[i][0], N = mm[i][1], K = mm[i][2];
        bench_case c = {.op = "matmul", .flops = 2.0 * M * N * K};
        double ms;
        snprintf(c.shape, sizeof(c.shape), "%lldx%lldx%lld f32", (long long)M,
                 (long long)N, (long long)K);
        if (wanted(filter, "matmul")) {
            VKF_TRY(random_tensor(gpu, VKF_DTYPE_F32, 2, (int64_t[]){M, K}, &in[0]));
            VKF_TRY(random_tensor(gpu, VKF_DTYPE_F32, 2, (int64_t[]){K, N}, &in[1]));
            VKF_TRY(time_runs(gpu, run_matmul, in, iters, &ms));
            report(dev, &c, ms);
            vkf_tensor_unref(&in[0]);
            vkf_tensor_unref(&in[1]);
        }
        for (int dt = VKF_DTYPE_F32; dt <= VKF_DTYPE_F16 && wanted(filter, "linear"); dt++) {
            c.op = "linear";
            snprintf(c.shape, sizeof(c.shape), "%lldx%lldx%lld w:%s", (long long)M,
                     (long long)N, (long long)K, vkf_dtype_name(dt));
            VKF_TRY(random_tensor(gpu, VKF_DTYPE_F32, 2, (int64_t[]){M, K}, &in[0]));
            VKF_TRY(random_tensor(gpu, dt, 2, (int64_t[]){N, K}, &in[1]));
            VKF_TRY(time_runs(gpu, run_linear, in, iters, &ms));
            report(dev, &c, ms);
            vkf_tensor_unref(&in[0]);
            vkf_tensor_unref(&in[1]);
        }
    }
    static const struct {
        const char *op;
        bench_fn fn;
        int nin;
        int ndim;
        int64_t shape[4];
        int passes;                   /* tensor-sized memory passes */
    } ew[] = {
        {"add", run_add, 2, 2, {4096, 1280}, 3},
        {"silu", run_silu, 1, 2, {4096, 1280}, 2},
        {"gelu_erf", run_gelu, 1, 2, {4096, 1280}, 2},
        {"softmax", run_softmax, 1, 2, {4096, 1024}, 3},
        {"layer_norm", run_layer_norm, 1, 2, {4096, 320}, 4},
        {"group_norm", run_group_norm, 1, 4, {1, 320, 64, 64}, 4},
    };
    for (size_t i = 0; i < VKF_ARRAY_SIZE(ew); i++) {
        if (!wanted(filter, ew[i].op))
            continue;
        bench_case c = {.op = ew[i].op};
        int64_t n = 1;
        int len = 0;
        for (int d = 0; d < ew[i].ndim; d++) {
            n *= ew[i].shape[d];
            len += snprintf(c.shape + len, sizeof(c.shape) - (size_t)len, "%s%lld",
                            d ? "x" : "", (long long)ew[i].shape[d]);
        }
        c.bytes = 4.0 * n * ew[i].passes;
        for (int k = 0; k < ew[i].nin; k++)
            VKF_TRY(random_tensor(gpu, VKF_DTYPE_F32, ew[i].ndim, ew[i].shape, &in[k]));
        double ms;
        VKF_TRY(time_runs(gpu, ew[i].fn, in, iters, &ms));
        report(dev, &c, ms);
        vkf_tensor_unref(&in[0]);
        vkf_tensor_unref(&in[1]);
    }
fail:
    vkf_tensor_unref(&in[0]);
    vkf_tensor_unref(&in[1]);
    return err;
}

int vkf_cli_bench(int argc, char **argv)
{
    vkf_log log = vkf_log_stderr(VKF_LOG_WARN);
    vkf_gpu_params params = {.log = &log, .profile = true};
    char pcache[1100] = "", spvdir[1100] = "";
    const char *filter = NULL;
    int iters = 3;
    if (argc < 2 || strcmp(argv[1], "ops") != 0) {
        fprintf(stderr, "usage: vkflow bench ops [--device N] [--op NAME] [--iters N]\n");
        return 2;
    }
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--op") && i + 1 < argc)
            filter = argv[++i];
        else if (!strcmp(argv[i], "--iters") && i + 1 < argc)
            iters = atoi(argv[++i]);
    }
    if (iters < 1)
        iters = 1;
    if (vkf_cli_gpu_params(argc, argv, &params, pcache, sizeof(pcache), spvdir,
                           sizeof(spvdir)) < 0)
        return 2;
    vkf_gpu *gpu = NULL;
    int err = vkf_gpu_create(&params, &gpu);
    if (err < 0) {
        fprintf(stderr, "vkflow: no usable Vulkan device: %s\n", vkf_strerror(err));
        return 1;
    }
    printf("device: %s (%s)\n", vkf_gpu_info(gpu)->name, vkf_gpu_info(gpu)->driver_info);
    cpu_device = !strcmp(vkf_gpu_info(gpu)->type, "cpu");
    err = bench_all(gpu, filter, iters);
    if (err < 0)
        fprintf(stderr, "vkflow: bench failed: %s\n", vkf_strerror(err));
    vkf_gpu_op_time times[32];
    int n = vkf_gpu_profile_get(gpu, times, 32);
    if (n > 0)
        printf("\nGPU time per op kind (timestamps, incl. warm-up):\n");
    for (int i = 0; i < n && i < 32; i++)
        printf("  %-12s %10.3f ms  %6ld dispatches\n", times[i].op, times[i].ms,
               times[i].dispatches);
    vkf_gpu_destroy(&gpu);
    return err < 0 ? 1 : 0;
}
