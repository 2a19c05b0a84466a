/*
 * Activations, casts and layout ops over shaders/unary.comp: one strided
 * 5-D copy with a function applied, writing into any view of the output.
 */
#include <math.h>
#include <string.h>

#include "gpu/ops/op_util.h"
#include "gpu/ops/ref.h"

struct unary_push {
    uint32_t n;
    uint32_t shape[5];
    uint32_t ss[5];
    uint32_t ds[5];
    uint32_t off_s, off_d;
    float a, b;
};
_Static_assert(sizeof(struct unary_push) <= 128, "push constants");

const vkf_shader_layout vkf_unary_layouts[] = {
    {&vkf_shader_unary, 2, 0, sizeof(struct unary_push)},
    {0},
};

static const char *op_name(uint32_t op)
{
    static const char *names[] = {"silu", "gelu_erf", "gelu_tanh", "scale",
                                  "relu", "sigmoid", "tanh"};
    if (op < VKF_ARRAY_SIZE(names))
        return names[op];
    return op == VKF_OP_FILL ? "fill" : "copy";
}

/* Drops size-1 dims (their index is always 0) and right-aligns the rest;
 * returns how many remain (at least 1). */
static uint32_t squeeze(uint32_t shape[5], uint32_t s1[5], uint32_t s2[5])
{
    int k = 5;
    for (int d = 4; d >= 0; d--) {
        if (shape[d] == 1)
            continue;
        k--;
        shape[k] = shape[d];
        s1[k] = s1[d];
        s2[k] = s2[d];
    }
    for (int d = 0; d < k; d++) {
        shape[d] = 1;
        s1[d] = s2[d] = 0;
    }
    return k == 5 ? 1 : (uint32_t)(5 - k);
}

int vkf_op_strided(vkf_gpu *gpu, uint32_t op, vkf_tensor *src, vkf_tensor *dst,
                   float a, float b)
{
    int err = 0;
    int64_t ss[5], sst[5], ds[5], dst5[5];
    vkf_shape5(src, ss, sst);
    vkf_shape5(dst, ds, dst5);
    struct unary_push pc = {
        .n = (uint32_t)vkf_tensor_numel(dst),
        .off_s = (uint32_t)src->offset,
        .off_d = (uint32_t)dst->offset,
        .a = a,
        .b = b,
    };
    for (int d = 0; d < 5; d++) {
        VKF_REQUIRE(gpu, op == VKF_OP_FILL || ss[d] == ds[d]);
        pc.shape[d] = (uint32_t)ds[d];
        pc.ss[d] = (uint32_t)sst[d];
        pc.ds[d] = (uint32_t)dst5[d];
    }
    vkf_tensor *slots[2] = {dst, src};
    bool contig = vkf_tensor_is_contiguous(src) && vkf_tensor_is_contiguous(dst);
    bool vec4 = contig && pc.off_s % 4 == 0 && pc.off_d % 4 == 0;
    uint32_t ndim = squeeze(pc.shape, pc.ss, pc.ds);
    uint32_t extra[4] = {op, contig, vec4, ndim};
    vkf_pipeline *pipe;
    VKF_TRY(vkf_op_pipeline(gpu, &vkf_shader_unary, slots, 2, extra, 4,
                            sizeof(pc), &pipe));
    VKF_TRY(vkf_gpu_dispatch(gpu, &(vkf_dispatch){
        .op = op_name(op), .pipe = pipe, .writes = {dst}, .nwrites = 1,
        .reads = {src}, .nreads = 1, .push = &pc,
        .groups = {vkf_div_up(vec4 ? vkf_div_up(pc.n, 4) : pc.n, 256), 1, 1}}));
fail:
    return err;
}

static int map_new(vkf_gpu *gpu, uint32_t op, vkf_tensor *x, vkf_dtype dtype,
                   float a, float b, vkf_tensor **out)
{
    int err = 0;
    vkf_tensor *o = NULL;
    VKF_TRY(vkf_tensor_create(gpu, dtype, x->ndim, x->shape, &o));
    VKF_TRY(vkf_op_strided(gpu, op, x, o, a, b));
    *out = o;
    return 0;
fail:
    vkf_tensor_unref(&o);
    return err;
}

int vkf_op_unary(vkf_gpu *gpu, vkf_unary_op op, vkf_tensor *x, float a,
                 float b, vkf_tensor **out)
{
    int err = 0;
    VKF_REQUIRE(gpu, op >= VKF_UN_SILU && op <= VKF_UN_TANH);
    err = map_new(gpu, (uint32_t)op, x, VKF_DTYPE_F32, a, b, out);
fail:
    return err;
}

int vkf_op_cast(vkf_gpu *gpu, vkf_tensor *x, vkf_dtype dtype, vkf_tensor **out)
{
    return map_new(gpu, VKF_OP_COPY, x, dtype, 0, 0, out);
}

int vkf_op_contiguous(vkf_gpu *gpu, vkf_tensor *x, vkf_tensor **out)
{
    if (vkf_tensor_is_contiguous(x)) {
        *out = vkf_tensor_ref(x);
        return 0;
    }
    return map_new(gpu, VKF_OP_COPY, x, x->dtype, 0, 0, out);
}

int vkf_op_concat(vkf_gpu *gpu, vkf_tensor *const *xs, int n, int dim,
                  vkf_tensor **out)
{
    int err = 0;
    vkf_tensor *o = NULL, *view = NULL;
    VKF_REQUIRE(gpu, n >= 1);
    int ndim = xs[0]->ndim;
    VKF_REQUIRE(gpu, dim >= 0 && dim < ndim);
    int64_t shape[VKF_TENSOR_MAX_DIMS];
    memcpy(shape, xs[0]->shape, sizeof(shape));
    shape[dim] = 0;
    for (int i = 0; i < n; i++) {
        VKF_REQUIRE(gpu, xs[i]->ndim == ndim);
        for (int d = 0; d < ndim; d++)
            VKF_REQUIRE(gpu, d == dim || xs[i]->shape[d] == xs[0]->shape[d]);
        shape[dim] += xs[i]->shape[dim];
    }
    VKF_TRY(vkf_tensor_create(gpu, xs[0]->dtype, ndim, shape, &o));
    int64_t at = 0;
    for (int i = 0; i < n; i++) {
        VKF_TRY(vkf_tensor_slice(o, dim, at, xs[i]->shape[dim], &view));
        VKF_TRY(vkf_op_strided(gpu, VKF_OP_COPY, xs[i], view, 0, 0));
        vkf_tensor_unref(&view);
        at += xs[i]->shape[dim];
    }
    *out = o;
    return 0;
fail:
    vkf_tensor_unref(&view);
    vkf_tensor_unref(&o);
    return err;
}

int vkf_op_pad(vkf_gpu *gpu, vkf_tensor *x, const int64_t *pads, float value,
               vkf_tensor **out)
{
    int err = 0;
    vkf_tensor *o = NULL, *view = NULL, *next = NULL;
    int64_t shape[VKF_TENSOR_MAX_DIMS];
    for (int d = 0; d < x->ndim; d++) {
        VKF_REQUIRE(gpu, pads[2 * d] >= 0 && pads[2 * d + 1] >= 0);
        shape[d] = x->shape[d] + pads[2 * d] + pads[2 * d + 1];
    }
    VKF_TRY(vkf_tensor_create(gpu, x->dtype, x->ndim, shape, &o));
    VKF_TRY(vkf_op_strided(gpu, VKF_OP_FILL, o, o, value, 0));
    view = vkf_tensor_ref(o);
    for (int d = 0; d < x->ndim; d++) {
        VKF_TRY(vkf_tensor_slice(view, d, pads[2 * d], x->shape[d], &next));
        vkf_tensor_unref(&view);
        view = next;
        next = NULL;
    }
    VKF_TRY(vkf_op_strided(gpu, VKF_OP_COPY, x, view, 0, 0));
    vkf_tensor_unref(&view);
    *out = o;
    return 0;
fail:
    vkf_tensor_unref(&next);
    vkf_tensor_unref(&view);
    vkf_tensor_unref(&o);
    return err;
}

float vkf_ref_unary(vkf_unary_op op, float v, float a, float b)
{
    switch (op) {
    case VKF_UN_SILU: return v / (1.0f + expf(-v));
    case VKF_UN_GELU_ERF: return 0.5f * v * (1.0f + erff(v * 0.70710678f));
    case VKF_UN_GELU_TANH:
        return 0.5f * v * (1.0f + tanhf(0.7978845608f * (v + 0.044715f * v * v * v)));
    case VKF_UN_SCALE: return v * a + b;
    case VKF_UN_RELU: return v > 0 ? v : 0;
    case VKF_UN_SIGMOID: return 1.0f / (1.0f + expf(-v));
    case VKF_UN_TANH: return tanhf(v);
    }
    return v;
}
