/* Softmax over the last dim (shaders/softmax.comp). */
#include <math.h>

#include "gpu/ops/op_util.h"
#include "gpu/ops/ref.h"

struct softmax_push {
    uint32_t rows, cols, off_x;
};
_Static_assert(sizeof(struct softmax_push) <= 128, "push constants");

const vkf_shader_layout vkf_softmax_layouts[] = {
    {&vkf_shader_softmax, 2, 0, sizeof(struct softmax_push)},
    {0},
};

int vkf_op_softmax(vkf_gpu *gpu, vkf_tensor *x, vkf_tensor **out)
{
    int err = 0;
    vkf_tensor *xc = NULL, *o = NULL;
    VKF_TRY(vkf_op_contiguous(gpu, x, &xc));
    VKF_TRY(vkf_tensor_create(gpu, VKF_DTYPE_F32, x->ndim, x->shape, &o));
    uint32_t cols = (uint32_t)x->shape[x->ndim - 1];
    struct softmax_push pc = {
        .rows = (uint32_t)(vkf_tensor_numel(x) / cols),
        .cols = cols,
        .off_x = (uint32_t)xc->offset,
    };
    vkf_tensor *slots[2] = {o, xc};
    vkf_pipeline *pipe;
    uint32_t extra[1] = {cols % 4 == 0 && pc.off_x % 4 == 0};
    VKF_TRY(vkf_op_pipeline(gpu, &vkf_shader_softmax, slots, 2, extra, 1,
                            sizeof(pc), &pipe));
    VKF_TRY(vkf_gpu_dispatch(gpu, &(vkf_dispatch){
        .op = "softmax", .pipe = pipe, .writes = {o}, .nwrites = 1,
        .reads = {xc}, .nreads = 1, .push = &pc, .groups = {pc.rows, 1, 1}}));
    *out = o;
    o = NULL;
fail:
    vkf_tensor_unref(&o);
    vkf_tensor_unref(&xc);
    return err;
}

void vkf_ref_softmax(const float *x, int64_t rows, int64_t cols, float *out)
{
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * cols;
        float m = -INFINITY;
        for (int64_t i = 0; i < cols; i++)
            m = xr[i] > m ? xr[i] : m;
        double s = 0;
        for (int64_t i = 0; i < cols; i++)
            s += exp((double)xr[i] - m);
        for (int64_t i = 0; i < cols; i++)
            out[r * cols + i] = (float)(exp((double)xr[i] - m) / s);
    }
}
