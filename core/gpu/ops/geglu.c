/* GEGLU of the SD transformer feed-forward (shaders/geglu.comp). */
#include <math.h>
#include <string.h>

#include "gpu/ops/op_util.h"
#include "gpu/ops/ref.h"

struct geglu_push {
    uint32_t total, C, off_x;
};
_Static_assert(sizeof(struct geglu_push) <= 128, "push constants");

const vkf_shader_layout vkf_geglu_layouts[] = {
    {&vkf_shader_geglu, 2, 0, sizeof(struct geglu_push)},
    {0},
};

int vkf_op_geglu(vkf_gpu *gpu, vkf_tensor *x, vkf_tensor **out)
{
    int err = 0;
    vkf_tensor *xc = NULL, *o = NULL;
    VKF_REQUIRE(gpu, x->ndim >= 1 && x->shape[x->ndim - 1] % 2 == 0);
    int64_t C = x->shape[x->ndim - 1] / 2;
    VKF_REQUIRE(gpu, C >= 1 && vkf_tensor_numel(x) <= UINT32_MAX);
    VKF_TRY(vkf_op_contiguous(gpu, x, &xc));
    VKF_REQUIRE(gpu, xc->st->numel <= UINT32_MAX);
    int64_t shape[VKF_TENSOR_MAX_DIMS];
    memcpy(shape, x->shape, sizeof(shape));
    shape[x->ndim - 1] = C;
    VKF_TRY(vkf_tensor_create(gpu, VKF_DTYPE_F32, x->ndim, shape, &o));
    struct geglu_push pc = {
        .total = (uint32_t)(vkf_tensor_numel(x) / 2), .C = (uint32_t)C,
        .off_x = (uint32_t)xc->offset,
    };
    vkf_tensor *slots[2] = {o, xc};
    vkf_pipeline *pipe;
    VKF_TRY(vkf_op_pipeline(gpu, &vkf_shader_geglu, slots, 2, NULL, 0, sizeof(pc),
                            &pipe));
    VKF_TRY(vkf_gpu_dispatch(gpu, &(vkf_dispatch){
        .op = "geglu", .pipe = pipe, .writes = {o}, .nwrites = 1,
        .reads = {xc}, .nreads = 1, .push = &pc,
        .groups = {vkf_div_up(pc.total, 256), 1, 1}}));
    *out = o;
    o = NULL;
fail:
    vkf_tensor_unref(&xc);
    vkf_tensor_unref(&o);
    return err;
}

void vkf_ref_geglu(const float *x, int64_t rows, int64_t C, float *out)
{
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t c = 0; c < C; c++) {
            double a = x[r * 2 * C + c], g = x[r * 2 * C + C + c];
            out[r * C + c] = (float)(a * 0.5 * g * (1.0 + erf(g / sqrt(2.0))));
        }
    }
}
