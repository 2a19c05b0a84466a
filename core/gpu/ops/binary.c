/* Elementwise add/sub/mul/div with NumPy broadcasting (shaders/binary.comp). */
#include "gpu/ops/op_util.h"
#include "gpu/ops/ref.h"

struct binary_push {
    uint32_t n;
    uint32_t shape[5];
    uint32_t sa[5];
    uint32_t sb[5];
    uint32_t off_a, off_b;
};
_Static_assert(sizeof(struct binary_push) <= 128, "push constants");

const vkf_shader_layout vkf_binary_layouts[] = {
    {&vkf_shader_binary, 3, 0, sizeof(struct binary_push)},
    {0},
};

/* Drops size-1 dims of the output (their index is always 0) and
 * right-aligns the rest; returns how many remain (at least 1). */
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

int vkf_op_binary(vkf_gpu *gpu, vkf_binary_op op, vkf_tensor *a,
                  vkf_tensor *b, vkf_tensor **out)
{
    int err = 0;
    vkf_tensor *o = NULL;
    VKF_REQUIRE(gpu, op >= VKF_BIN_ADD && op <= VKF_BIN_DIV);
    int64_t as[5], ast[5], bs[5], bst[5], os[5];
    vkf_shape5(a, as, ast);
    vkf_shape5(b, bs, bst);
    int ndim = a->ndim > b->ndim ? a->ndim : b->ndim;
    struct binary_push pc = {.off_a = (uint32_t)a->offset, .off_b = (uint32_t)b->offset};
    for (int d = 0; d < 5; d++) {
        if (as[d] != bs[d] && as[d] != 1 && bs[d] != 1) {
            vkf_logf(gpu->log, VKF_LOG_ERROR,
                     "binary op: shapes do not broadcast (dim %d: %lld vs %lld)",
                     d - (5 - ndim), (long long)as[d], (long long)bs[d]);
            err = VKF_EINVAL;
            goto fail;
        }
        os[d] = as[d] > bs[d] ? as[d] : bs[d];
        pc.shape[d] = (uint32_t)os[d];
        pc.sa[d] = as[d] == 1 ? 0 : (uint32_t)ast[d];
        pc.sb[d] = bs[d] == 1 ? 0 : (uint32_t)bst[d];
    }
    VKF_TRY(vkf_tensor_create(gpu, VKF_DTYPE_F32, ndim, os + 5 - ndim, &o));
    pc.n = (uint32_t)vkf_tensor_numel(o);
    bool same = vkf_tensor_is_contiguous(a) && vkf_tensor_is_contiguous(b) &&
                vkf_tensor_numel(a) == pc.n && vkf_tensor_numel(b) == pc.n;
    vkf_tensor *slots[3] = {o, a, b};
    bool vec4 = same && pc.off_a % 4 == 0 && pc.off_b % 4 == 0;
    uint32_t dims = squeeze(pc.shape, pc.sa, pc.sb);
    uint32_t extra[4] = {(uint32_t)op, same, vec4, dims};
    vkf_pipeline *pipe;
    VKF_TRY(vkf_op_pipeline(gpu, &vkf_shader_binary, slots, 3, extra, 4,
                            sizeof(pc), &pipe));
    static const char *names[] = {"add", "sub", "mul", "div"};
    VKF_TRY(vkf_gpu_dispatch(gpu, &(vkf_dispatch){
        .op = names[op], .pipe = pipe, .writes = {o}, .nwrites = 1,
        .reads = {a, b}, .nreads = 2, .push = &pc,
        .groups = {vkf_div_up(vec4 ? vkf_div_up(pc.n, 4) : pc.n, 256), 1, 1}}));
    *out = o;
    return 0;
fail:
    vkf_tensor_unref(&o);
    return err;
}

void vkf_ref_binary(vkf_binary_op op, const float *a, const int64_t *ashape,
                    int andim, const float *b, const int64_t *bshape, int bndim,
                    float *out)
{
    int64_t as[5], bs[5], os[5], sa[5], sb[5];
    for (int d = 0; d < 5; d++) {
        as[d] = d < 5 - andim ? 1 : ashape[d - (5 - andim)];
        bs[d] = d < 5 - bndim ? 1 : bshape[d - (5 - bndim)];
        os[d] = as[d] > bs[d] ? as[d] : bs[d];
    }
    int64_t ma = 1, mb = 1;
    for (int d = 4; d >= 0; d--) {
        sa[d] = as[d] == 1 ? 0 : ma;
        sb[d] = bs[d] == 1 ? 0 : mb;
        ma *= as[d];
        mb *= bs[d];
    }
    int64_t n = os[0] * os[1] * os[2] * os[3] * os[4];
    for (int64_t i = 0; i < n; i++) {
        int64_t r = i, ia = 0, ib = 0;
        for (int d = 4; d >= 0; d--) {
            int64_t c = r % os[d];
            r /= os[d];
            ia += c * sa[d];
            ib += c * sb[d];
        }
        float x = a[ia], y = b[ib];
        out[i] = op == VKF_BIN_ADD ? x + y : op == VKF_BIN_SUB ? x - y
               : op == VKF_BIN_MUL ? x * y : x / y;
    }
}
