/* Fused scaled-dot-product attention (shaders/attention.comp). */
#include <math.h>
#include <string.h>

#include "gpu/ops/op_util.h"
#include "gpu/ops/ref.h"

struct attention_push {
    uint32_t nq, nk;
    float scale;
    uint32_t off_q, off_k, off_v, off_m;
    uint32_t q_sb, q_sh, q_sn;
    uint32_t k_sb, k_sh, k_sn;
    uint32_t v_sb, v_sh, v_sn;
    uint32_t o_sb, o_sh, o_sn;
    uint32_t m_sb, m_sh, m_sq, m_sk;
};
_Static_assert(sizeof(struct attention_push) <= 128, "push constants");

const vkf_shader_layout vkf_attention_layouts[] = {
    {&vkf_shader_attention_40, 4, 0, sizeof(struct attention_push)},
    {&vkf_shader_attention_64, 4, 0, sizeof(struct attention_push)},
    {&vkf_shader_attention_80, 4, 0, sizeof(struct attention_push)},
    {&vkf_shader_attention_tex_64, 4, 2, sizeof(struct attention_push)},
    {&vkf_shader_attention_tex_40, 4, 2, sizeof(struct attention_push)},
    {&vkf_shader_attention_tex_80, 4, 2, sizeof(struct attention_push)},
    {&vkf_shader_attention_128, 4, 0, sizeof(struct attention_push)},
    {&vkf_shader_attention_256, 4, 0, sizeof(struct attention_push)},
    {0},
};

/* Register capacity HD and query rows per lane QR of each compiled module;
 * the first one that holds D is used (registers past D fold away).  QR·HD
 * stays <= 160 floats: lavapipe's LLVM compile time grows steeply with the
 * unrolled register arrays (about 10 s for D = 128 with QR = 1 already). */
static const struct {
    uint32_t hd, qr;
    const vkf_shader_code *shader, *tex;  /* tex: K/V as texel buffers */
} kernels[] = {
    {40, 4, &vkf_shader_attention_40, &vkf_shader_attention_tex_40},
    {64, 3, &vkf_shader_attention_64, &vkf_shader_attention_tex_64},
    {80, 2, &vkf_shader_attention_80, &vkf_shader_attention_tex_80},
    {128, 1, &vkf_shader_attention_128, NULL},
    {256, 1, &vkf_shader_attention_256, NULL},
};

/* Lanes per workgroup: one 8-wide subgroup on CPU devices (lavapipe),
 * where K/V rows are shared by subgroup broadcasts; wider elsewhere. */
static uint32_t attention_wg(const vkf_gpu *gpu)
{
    if (!strcmp(gpu->info.type, "cpu") && gpu->info.subgroup_size == 8)
        return 8;
    return 64;
}

/* x viewed as [B, H, N, D] with 4-aligned rows readable as vec4 up to D
 * rounded up to 4: a new reference to x, or a (zero-padded) copy. */
static int aligned_operand(vkf_gpu *gpu, vkf_tensor *x, vkf_tensor **out)
{
    int64_t d = x->shape[3];
    bool ok = d % 4 == 0 && x->strides[3] == 1 && x->offset % 4 == 0;
    for (int i = 0; i < 3; i++)
        ok = ok && (x->shape[i] == 1 || x->strides[i] % 4 == 0);
    if (ok) {
        *out = vkf_tensor_ref(x);
        return 0;
    }
    if (d % 4 == 0)
        return vkf_op_cast(gpu, x, x->dtype, out);
    int64_t pads[8] = {0, 0, 0, 0, 0, 0, 0, 4 - d % 4};
    return vkf_op_pad(gpu, x, pads, 0.0f, out);
}

static uint32_t bstride(const vkf_tensor *t, int dim)
{
    return t->shape[dim] == 1 ? 0 : (uint32_t)t->strides[dim];
}

/*
 * q [B,H,Nq,D], k/v [Bk,H,Nk,D] views (Bk, Hk ∈ {1, B/H}); the output is
 * written at o_strides (b, h, n) into `o`, a new f32 tensor.
 */
static int attention(vkf_gpu *gpu, vkf_tensor *q, vkf_tensor *k, vkf_tensor *v,
                     const vkf_attention_params *params, vkf_tensor *o,
                     const int64_t o_strides[3])
{
    int err = 0;
    vkf_tensor *qa = NULL, *ka = NULL, *va = NULL, *kv = NULL, *mc = NULL;
    vkf_attention_params defaults = {0};
    if (!params)
        params = &defaults;
    vkf_tensor *mask = params->mask;
    int64_t B = q->shape[0], H = q->shape[1], nq = q->shape[2], D = q->shape[3];
    int64_t nk = k->shape[2];
    VKF_REQUIRE(gpu, q->ndim == 4 && k->ndim == 4 && v->ndim == 4);
    VKF_REQUIRE(gpu, D >= 1 && D <= 256 && nk >= 1 && nq >= 1);
    for (int d = 0; d < 4; d++)
        VKF_REQUIRE(gpu, k->shape[d] == v->shape[d]);
    VKF_REQUIRE(gpu, k->shape[3] == D);
    VKF_REQUIRE(gpu, k->shape[0] == B || k->shape[0] == 1);
    VKF_REQUIRE(gpu, k->shape[1] == H || k->shape[1] == 1);
    VKF_REQUIRE(gpu, H <= 65535 && B <= 65535);
    if (mask) {
        VKF_REQUIRE(gpu, mask->ndim >= 1 && mask->ndim <= 4);
        int64_t want[4] = {B, H, nq, nk};
        for (int d = 0; d < mask->ndim; d++) {
            int64_t m = mask->shape[d], w = want[4 - mask->ndim + d];
            VKF_REQUIRE(gpu, m == w || m == 1);
        }
    }

    VKF_TRY(aligned_operand(gpu, q, &qa));
    VKF_TRY(aligned_operand(gpu, k, &ka));
    VKF_TRY(aligned_operand(gpu, v, &va));
    if (mask && (ka->st != va->st || ka->dtype != va->dtype)) {
        /* The mask takes V's slot: K and V must share one storage. */
        vkf_tensor *pair[2] = {ka, va};
        int64_t bk = ka->shape[0];
        VKF_TRY(vkf_op_concat(gpu, pair, 2, 0, &kv));
        vkf_tensor_unref(&ka);
        vkf_tensor_unref(&va);
        VKF_TRY(vkf_tensor_slice(kv, 0, 0, bk, &ka));
        VKF_TRY(vkf_tensor_slice(kv, 0, bk, bk, &va));
    }
    /* Shader indices are 32-bit element offsets into each storage. */
    VKF_REQUIRE(gpu, qa->st->numel <= UINT32_MAX && ka->st->numel <= UINT32_MAX);
    VKF_REQUIRE(gpu, va->st->numel <= UINT32_MAX && o->st->numel <= UINT32_MAX);

    float scale = params->scale != 0.0f ? params->scale : (float)(1.0 / sqrt((double)D));
    struct attention_push pc = {
        .nq = (uint32_t)nq, .nk = (uint32_t)nk,
        .scale = scale * 1.4426950408889634f,
        .off_q = (uint32_t)qa->offset, .off_k = (uint32_t)ka->offset,
        .off_v = (uint32_t)va->offset,
        .q_sb = bstride(qa, 0), .q_sh = bstride(qa, 1), .q_sn = (uint32_t)qa->strides[2],
        .k_sb = bstride(ka, 0), .k_sh = bstride(ka, 1), .k_sn = (uint32_t)ka->strides[2],
        .v_sb = bstride(va, 0), .v_sh = bstride(va, 1), .v_sn = (uint32_t)va->strides[2],
        .o_sb = (uint32_t)o_strides[0], .o_sh = (uint32_t)o_strides[1],
        .o_sn = (uint32_t)o_strides[2],
    };
    if (mask) {
        VKF_REQUIRE(gpu, mask->st->numel <= UINT32_MAX);
        mc = vkf_tensor_ref(mask);
        uint32_t *ms[4] = {&pc.m_sb, &pc.m_sh, &pc.m_sq, &pc.m_sk};
        int pad = 4 - mask->ndim;
        for (int d = pad; d < 4; d++)
            *ms[d] = bstride(mask, d - pad);
        pc.off_m = (uint32_t)mask->offset;
    }

    size_t ki = 0;
    while (kernels[ki].hd < (uint32_t)D)
        ki++;
    uint32_t wg = attention_wg(gpu);
    uint32_t groups = vkf_div_up((uint64_t)nq, (uint64_t)wg * kernels[ki].qr);
    VKF_REQUIRE(gpu, groups <= 65535);
    vkf_tensor *slots[4] = {o, qa, ka, mc ? mc : va};
    /* With one row per lane the 8 broadcasts cost more than they save. */
    bool bcast = wg == 8 && gpu->info.subgroup_size == 8 && kernels[ki].qr >= 2;
    uint32_t extra[5] = {wg, (uint32_t)D, mc != NULL, params->causal, bcast};
    vkf_dispatch d = {
        .op = "attention", .writes = {o}, .nwrites = 1,
        .reads = {qa, ka, slots[3]}, .nreads = 3, .push = &pc,
        .groups = {groups, (uint32_t)H, (uint32_t)B},
    };
    const vkf_shader_code *shader = kernels[ki].shader;
    if (bcast && kernels[ki].tex && ka->st->nchunks == 1 && va->st->nchunks == 1 &&
        ka->dtype != VKF_DTYPE_BF16 && va->dtype != VKF_DTYPE_BF16) {
        shader = kernels[ki].tex;
        vkf_dispatch_add_texel(&d, ka, true);
        vkf_dispatch_add_texel(&d, va, true);
    }
    VKF_TRY(vkf_op_pipeline_tex(gpu, shader, slots, 4, extra, 5, d.ntexels, sizeof(pc),
                                &d.pipe));
    VKF_TRY(vkf_gpu_dispatch(gpu, &d));
fail:
    vkf_tensor_unref(&qa);
    vkf_tensor_unref(&ka);
    vkf_tensor_unref(&va);
    vkf_tensor_unref(&kv);
    vkf_tensor_unref(&mc);
    return err;
}

int vkf_op_attention(vkf_gpu *gpu, vkf_tensor *q, vkf_tensor *k, vkf_tensor *v,
                     const vkf_attention_params *params, vkf_tensor **out)
{
    int err = 0;
    vkf_tensor *o = NULL;
    VKF_REQUIRE(gpu, q->ndim == 4);
    VKF_TRY(vkf_tensor_create(gpu, VKF_DTYPE_F32, 4, q->shape, &o));
    VKF_TRY(attention(gpu, q, k, v, params, o, o->strides));
    *out = o;
    o = NULL;
fail:
    vkf_tensor_unref(&o);
    return err;
}

/* [B, N, H·D] as a [B, H, N, D] view (copied first unless contiguous). */
static int heads_view(vkf_gpu *gpu, vkf_tensor *x, int heads, vkf_tensor **out)
{
    int err = 0;
    vkf_tensor *xc = NULL, *x4 = NULL;
    VKF_REQUIRE(gpu, x->ndim == 3 && heads >= 1 && x->shape[2] % heads == 0);
    VKF_TRY(vkf_op_contiguous(gpu, x, &xc));
    int64_t shape[4] = {x->shape[0], x->shape[1], heads, x->shape[2] / heads};
    VKF_TRY(vkf_tensor_reshape(xc, 4, shape, &x4));
    VKF_TRY(vkf_tensor_permute(x4, (const int[]){0, 2, 1, 3}, out));
fail:
    vkf_tensor_unref(&xc);
    vkf_tensor_unref(&x4);
    return err;
}

int vkf_op_attention_heads(vkf_gpu *gpu, vkf_tensor *q, vkf_tensor *k,
                           vkf_tensor *v, int heads,
                           const vkf_attention_params *params, vkf_tensor **out)
{
    int err = 0;
    vkf_tensor *q4 = NULL, *k4 = NULL, *v4 = NULL, *o = NULL;
    VKF_TRY(heads_view(gpu, q, heads, &q4));
    VKF_TRY(heads_view(gpu, k, heads, &k4));
    VKF_TRY(heads_view(gpu, v, heads, &v4));
    VKF_TRY(vkf_tensor_create(gpu, VKF_DTYPE_F32, 3, q->shape, &o));
    int64_t d = q->shape[2] / heads;
    int64_t ostr[3] = {o->strides[0], d, o->strides[1]};
    VKF_TRY(attention(gpu, q4, k4, v4, params, o, ostr));
    *out = o;
    o = NULL;
fail:
    vkf_tensor_unref(&q4);
    vkf_tensor_unref(&k4);
    vkf_tensor_unref(&v4);
    vkf_tensor_unref(&o);
    return err;
}

void vkf_ref_attention(const float *q, const float *k, const float *v,
                       const float *mask, int64_t B, int64_t H, int64_t nq,
                       int64_t nk, int64_t D, float scale, bool causal,
                       float *out)
{
    double *s = vkf_malloc((size_t)nk * sizeof(double));
    if (!s)
        return;
    if (scale == 0.0f)
        scale = (float)(1.0 / sqrt((double)D));
    for (int64_t bh = 0; bh < B * H; bh++) {
        const float *qb = q + bh * nq * D, *kb = k + bh * nk * D, *vb = v + bh * nk * D;
        for (int64_t i = 0; i < nq; i++) {
            double mx = -INFINITY, sum = 0;
            for (int64_t j = 0; j < nk; j++) {
                double dot = 0;
                for (int64_t d = 0; d < D; d++)
                    dot += (double)qb[i * D + d] * kb[j * D + d];
                s[j] = dot * scale + (mask ? mask[(bh * nq + i) * nk + j] : 0.0);
                if (causal && j > i)
                    s[j] = -INFINITY;
                if (s[j] > mx)
                    mx = s[j];
            }
            for (int64_t j = 0; j < nk; j++) {
                s[j] = mx == -INFINITY ? 0.0 : exp(s[j] - mx);
                sum += s[j];
            }
            for (int64_t d = 0; d < D; d++) {
                double acc = 0;
                for (int64_t j = 0; j < nk; j++)
                    acc += s[j] * vb[j * D + d];
                out[(bh * nq + i) * D + d] = sum > 0 ? (float)(acc / sum) : 0.0f;
            }
        }
    }
    vkf_free(s);
}
