/* Layer, RMS and group norm (shaders/norm.comp). */
#include <math.h>

#include "gpu/ops/op_util.h"
#include "gpu/ops/ref.h"

struct norm_push {
    uint32_t rows, cols, hw, groups;
    uint32_t off_x, off_w, off_b;
    float eps;
};
_Static_assert(sizeof(struct norm_push) <= 128, "push constants");

const vkf_shader_layout vkf_norm_layouts[] = {
    {&vkf_shader_norm, 4, 0, sizeof(struct norm_push)},
    {0},
};

enum { MODE_LAYER = 0, MODE_RMS = 1, MODE_GROUP = 2 };

static int norm(vkf_gpu *gpu, uint32_t mode, vkf_tensor *x, uint32_t rows,
                uint32_t cols, uint32_t hw, uint32_t groups, vkf_tensor *w,
                vkf_tensor *b, float eps, vkf_tensor **out)
{
    static const char *names[] = {"layer_norm", "rms_norm", "group_norm"};
    int err = 0;
    vkf_tensor *xc = NULL, *wc = NULL, *bc = NULL, *o = NULL;
    VKF_TRY(vkf_op_contiguous(gpu, x, &xc));
    if (w)
        VKF_TRY(vkf_op_contiguous(gpu, w, &wc));
    if (b)
        VKF_TRY(vkf_op_contiguous(gpu, b, &bc));
    VKF_TRY(vkf_tensor_create(gpu, VKF_DTYPE_F32, x->ndim, x->shape, &o));
    struct norm_push pc = {
        .rows = rows, .cols = cols, .hw = hw, .groups = groups,
        .off_x = (uint32_t)xc->offset,
        .off_w = wc ? (uint32_t)wc->offset : 0,
        .off_b = bc ? (uint32_t)bc->offset : 0,
        .eps = eps,
    };
    vkf_tensor *slots[4] = {o, xc, wc ? wc : xc, bc ? bc : xc};
    /* Group norm: a vec4 must not straddle two channels (hw % 4); layer and
     * RMS norm read the 4 channels one by one. */
    bool vec4 = cols % 4 == 0 && pc.off_x % 4 == 0 && (mode != MODE_GROUP || hw % 4 == 0);
    uint32_t extra[4] = {mode, wc != NULL, bc != NULL, vec4};
    vkf_pipeline *pipe;
    VKF_TRY(vkf_op_pipeline(gpu, &vkf_shader_norm, slots, 4, extra, 4,
                            sizeof(pc), &pipe));
    VKF_TRY(vkf_gpu_dispatch(gpu, &(vkf_dispatch){
        .op = names[mode], .pipe = pipe, .writes = {o}, .nwrites = 1,
        .reads = {xc, slots[2], slots[3]}, .nreads = 3, .push = &pc,
        .groups = {rows, 1, 1}}));
    *out = o;
    o = NULL;
fail:
    vkf_tensor_unref(&o);
    vkf_tensor_unref(&xc);
    vkf_tensor_unref(&wc);
    vkf_tensor_unref(&bc);
    return err;
}

int vkf_op_layer_norm(vkf_gpu *gpu, vkf_tensor *x, vkf_tensor *weight,
                      vkf_tensor *bias, float eps, vkf_tensor **out)
{
    int err = 0;
    int64_t c = x->shape[x->ndim - 1];
    VKF_REQUIRE(gpu, !weight || vkf_tensor_numel(weight) == c);
    VKF_REQUIRE(gpu, !bias || vkf_tensor_numel(bias) == c);
    err = norm(gpu, MODE_LAYER, x, (uint32_t)(vkf_tensor_numel(x) / c), (uint32_t)c,
               1, 1, weight, bias, eps, out);
fail:
    return err;
}

int vkf_op_rms_norm(vkf_gpu *gpu, vkf_tensor *x, vkf_tensor *weight, float eps,
                    vkf_tensor **out)
{
    int err = 0;
    int64_t c = x->shape[x->ndim - 1];
    VKF_REQUIRE(gpu, !weight || vkf_tensor_numel(weight) == c);
    err = norm(gpu, MODE_RMS, x, (uint32_t)(vkf_tensor_numel(x) / c), (uint32_t)c,
               1, 1, weight, NULL, eps, out);
fail:
    return err;
}

int vkf_op_group_norm(vkf_gpu *gpu, vkf_tensor *x, int groups, vkf_tensor *weight,
                      vkf_tensor *bias, float eps, vkf_tensor **out)
{
    int err = 0;
    VKF_REQUIRE(gpu, x->ndim >= 2 && groups >= 1);
    int64_t n = x->shape[0], c = x->shape[1];
    VKF_REQUIRE(gpu, c % groups == 0);
    VKF_REQUIRE(gpu, !weight || vkf_tensor_numel(weight) == c);
    VKF_REQUIRE(gpu, !bias || vkf_tensor_numel(bias) == c);
    int64_t hw = vkf_tensor_numel(x) / (n * c);
    err = norm(gpu, MODE_GROUP, x, (uint32_t)(n * groups),
               (uint32_t)(c / groups * hw), (uint32_t)hw, (uint32_t)groups,
               weight, bias, eps, out);
fail:
    return err;
}

static void ref_rows(const float *x, int64_t rows, int64_t cols, int64_t hw,
                     int64_t groups, bool center, const float *w, const float *b,
                     float eps, float *out)
{
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * cols;
        double mean = 0, var = 0;
        if (center) {
            for (int64_t i = 0; i < cols; i++)
                mean += xr[i];
            mean /= (double)cols;
        }
        for (int64_t i = 0; i < cols; i++)
            var += (xr[i] - mean) * (xr[i] - mean);
        double inv = 1.0 / sqrt(var / (double)cols + eps);
        for (int64_t i = 0; i < cols; i++) {
            int64_t ch = (r % groups) * (cols / hw) + i / hw;
            double v = (xr[i] - mean) * inv;
            if (w)
                v *= w[ch];
            if (b)
                v += b[ch];
            out[r * cols + i] = (float)v;
        }
    }
}

void vkf_ref_layer_norm(const float *x, int64_t rows, int64_t cols,
                        const float *w, const float *b, float eps, float *out)
{
    ref_rows(x, rows, cols, 1, 1, true, w, b, eps, out);
}

void vkf_ref_rms_norm(const float *x, int64_t rows, int64_t cols,
                      const float *w, float eps, float *out)
{
    ref_rows(x, rows, cols, 1, 1, false, w, NULL, eps, out);
}

void vkf_ref_group_norm(const float *x, int64_t n, int64_t c, int64_t hw,
                        int groups, const float *w, const float *b, float eps,
                        float *out)
{
    ref_rows(x, n * groups, c / groups * hw, hw, groups, true, w, b, eps, out);
}
