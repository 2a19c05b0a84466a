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

/* Spatial ops (core/gpu/ops/conv.c, pool.c, resample.c) at SD1.5 512²
 * UNet / VAE and Wan VAE shapes; run_spatial reads the current case. */
typedef struct spatial_case {
    const char *op;
    int ndim;
    int64_t x[5];
    int64_t cout;                  /* conv: output channels */
    int k, stride, pad;            /* conv and pool: square */
    vkf_dtype wdt;                 /* conv weights */
} spatial_case;

static const spatial_case spatial_cases[] = {
    {"conv2d", 4, {2, 320, 64, 64}, 320, 3, 1, 1, VKF_DTYPE_F32},
    {"conv2d", 4, {2, 640, 32, 32}, 640, 3, 1, 1, VKF_DTYPE_F32},
    {"conv2d", 4, {2, 1280, 16, 16}, 1280, 3, 1, 1, VKF_DTYPE_F32},
    {"conv2d", 4, {2, 320, 64, 64}, 320, 3, 1, 1, VKF_DTYPE_F16},
    {"conv2d", 4, {2, 320, 64, 64}, 320, 3, 2, 1, VKF_DTYPE_F32},
    {"conv2d", 4, {2, 320, 64, 64}, 320, 1, 1, 0, VKF_DTYPE_F32},
    {"conv3d", 5, {1, 96, 4, 64, 64}, 96, 3, 1, 1, VKF_DTYPE_F32},
    {"avg_pool2d", 4, {2, 320, 64, 64}, 0, 2, 2, 0, VKF_DTYPE_F32},
    {"max_pool2d", 4, {2, 320, 64, 64}, 0, 3, 2, 1, VKF_DTYPE_F32},
    {"upsample", 4, {2, 1280, 16, 16}, 0, 0, 0, 0, VKF_DTYPE_F32},
    {"upsample", 4, {1, 512, 64, 64}, 0, 0, 0, 0, VKF_DTYPE_F32},
    {"bilinear", 4, {1, 320, 64, 64}, 0, 0, 0, 0, VKF_DTYPE_F32},
};
static const spatial_case *spatial_cur;
static int64_t spatial_out_numel;

static int run_spatial_op(vkf_gpu *gpu, vkf_tensor **in, vkf_tensor **out)
{
    const spatial_case *c = spatial_cur;
    const char *op = c->op;
    if (!strcmp(op, "conv2d"))
        return vkf_op_conv2d(gpu, in[0], in[1], NULL, &(vkf_conv2d_params){
            .stride = {c->stride, c->stride}, .padding = {c->pad, c->pad}}, out);
    if (!strcmp(op, "conv3d"))
        return vkf_op_conv3d(gpu, in[0], in[1], NULL, NULL, &(vkf_conv3d_params){
            .padding = {c->pad, c->pad, c->pad}, .causal = true}, out);
    vkf_pool2d_params pp = {.kernel = {c->k, c->k}, .stride = {c->stride, c->stride},
                            .padding = {c->pad, c->pad}};
    if (!strcmp(op, "avg_pool2d"))
        return vkf_op_avg_pool2d(gpu, in[0], &pp, out);
    if (!strcmp(op, "max_pool2d"))
        return vkf_op_max_pool2d(gpu, in[0], &pp, out);
    return vkf_op_upsample(gpu, in[0], &(vkf_upsample_params){
        .mode = !strcmp(op, "bilinear") ? VKF_UPSAMPLE_BILINEAR : VKF_UPSAMPLE_NEAREST,
        .scale = {2, 2}}, out);
}

static int run_spatial(vkf_gpu *gpu, vkf_tensor **in, vkf_tensor **out)
{
    int err = run_spatial_op(gpu, in, out);
    if (err == 0)
        spatial_out_numel = vkf_tensor_numel(*out);
    return err;
}

static int bench_spatial(vkf_gpu *gpu, const char *filter, int iters,
                         const char *dev, vkf_tensor **in)
{
    int err = 0;
    for (size_t i = 0; i < VKF_ARRAY_SIZE(spatial_cases); i++) {
        const spatial_case *c = &spatial_cases[i];
        if (filter && strcmp(filter, c->op))
            continue;
        bench_case bc = {.op = c->op};
        int len = 0;
        int64_t n = 1;
        for (int d = 0; d < c->ndim; d++) {
            n *= c->x[d];
            len += snprintf(bc.shape + len, sizeof(bc.shape) - (size_t)len, "%s%lld",
                            d ? "x" : "", (long long)c->x[d]);
        }
        VKF_TRY(random_tensor(gpu, VKF_DTYPE_F32, c->ndim, c->x, &in[0]));
        if (c->cout) {
            int64_t w[5] = {c->cout, c->x[1], c->k, c->k, c->k};
            VKF_TRY(random_tensor(gpu, c->wdt, c->ndim, w, &in[1]));
            snprintf(bc.shape + len, sizeof(bc.shape) - (size_t)len, "->%lld k%d%s%s",
                     (long long)c->cout, c->k, c->stride > 1 ? " s2" : "",
                     c->wdt == VKF_DTYPE_F16 ? " w:f16" : "");
        }
        spatial_cur = c;
        double ms;
        VKF_TRY(time_runs(gpu, run_spatial, in, iters, &ms));
        int64_t on = spatial_out_numel;
        if (c->cout)
            bc.flops = 2.0 * (double)on * (double)c->x[1] * c->k * c->k *
                       (c->ndim == 5 ? c->k : 1);
        else
            bc.bytes = 4.0 * (double)(n + on);
        report(dev, &bc, ms);
        vkf_tensor_unref(&in[0]);
        vkf_tensor_unref(&in[1]);
    }
fail:
    return err;
}

/* Transformer ops (core/gpu/ops/attention.c, rope.c, geglu.c) at SD1.5
 * 512² UNet, SD2/XL and Wan 1.3B shapes; in[] = q, k, v as [1, N, H·D]. */
static const struct attn_bench {
    const char *op;
    int64_t nq, nk, heads, d;
    vkf_dtype dt;
} attn_cases[] = {
    {"attention", 4096, 4096, 8, 40, VKF_DTYPE_F32},
    {"attention", 4096, 4096, 8, 40, VKF_DTYPE_F16},
    {"attention", 4096, 77, 8, 40, VKF_DTYPE_F32},
    {"attention", 1024, 1024, 8, 80, VKF_DTYPE_F32},
    {"attention", 1024, 1024, 10, 64, VKF_DTYPE_F32},
    {"attention", 1024, 1024, 12, 128, VKF_DTYPE_F32},
    {"rope", 4096, 0, 12, 128, VKF_DTYPE_F32},
    {"geglu", 4096, 0, 1, 2560, VKF_DTYPE_F32},
};
static const struct attn_bench *attn_cur;

static int run_attn(vkf_gpu *gpu, vkf_tensor **in, vkf_tensor **out)
{
    const struct attn_bench *c = attn_cur;
    if (!strcmp(c->op, "rope")) {
        vkf_rope_params rp;
        vkf_rope_params_wan((int)c->d, 4, 32, 32, &rp);
        return vkf_op_rope(gpu, in[0], &rp, out);
    }
    if (!strcmp(c->op, "geglu"))
        return vkf_op_geglu(gpu, in[0], out);
    return vkf_op_attention_heads(gpu, in[0], in[1], in[2], (int)c->heads, NULL, out);
}

static int bench_attention(vkf_gpu *gpu, const char *filter, int iters,
                           const char *dev)
{
    int err = 0;
    vkf_tensor *in[3] = {NULL, NULL, NULL};
    for (size_t i = 0; i < VKF_ARRAY_SIZE(attn_cases); i++) {
        const struct attn_bench *c = attn_cur = &attn_cases[i];
        if (filter && strcmp(filter, c->op))
            continue;
        bench_case bc = {.op = c->op};
        int64_t hd = c->heads * c->d;
        if (!strcmp(c->op, "attention")) {
            VKF_TRY(random_tensor(gpu, c->dt, 3, (int64_t[]){1, c->nq, hd}, &in[0]));
            VKF_TRY(random_tensor(gpu, c->dt, 3, (int64_t[]){1, c->nk, hd}, &in[1]));
            VKF_TRY(random_tensor(gpu, c->dt, 3, (int64_t[]){1, c->nk, hd}, &in[2]));
            bc.flops = 4.0 * (double)c->nq * (double)c->nk * (double)hd;
            snprintf(bc.shape, sizeof(bc.shape), "%lldx%lldx%lld nk%lld %s",
                     (long long)c->nq, (long long)c->heads, (long long)c->d,
                     (long long)c->nk, vkf_dtype_name(c->dt));
        } else {
            bool rope = !strcmp(c->op, "rope");
            int64_t shape[4] = {1, c->nq, c->heads, c->d}, flat[2] = {c->nq, hd};
            VKF_TRY(random_tensor(gpu, c->dt, rope ? 4 : 2, rope ? shape : flat, &in[0]));
            bc.bytes = 4.0 * (double)(c->nq * hd) * (rope ? 2 : 1.5);
            snprintf(bc.shape, sizeof(bc.shape), "%lldx%lldx%lld", (long long)c->nq,
                     (long long)c->heads, (long long)c->d);
        }
        double ms;
        VKF_TRY(time_runs(gpu, run_attn, in, iters, &ms));
        report(dev, &bc, ms);
        for (int k = 0; k < 3; k++)
            vkf_tensor_unref(&in[k]);
    }
fail:
    for (int k = 0; k < 3; k++)
        vkf_tensor_unref(&in[k]);
    return err;
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
    VKF_TRY(bench_spatial(gpu, filter, iters, dev, in));
    VKF_TRY(bench_attention(gpu, filter, iters, dev));
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
    if (argc >= 2 && !strcmp(argv[1], "sd15"))
        return vkf_cli_bench_sd15(argc, argv);
    if (argc < 2 || strcmp(argv[1], "ops") != 0) {
        fprintf(stderr, "usage: vkflow bench ops [--device N] [--op NAME] [--iters N]\n"
                        "       vkflow bench sd15 [--size N] [--steps N] [--dtype f16|f32]\n");
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
