/*
 * Fused attention against the double-precision C reference: awkward
 * Nq/Nk/H (1, 7, 77, 127, 300 / 1, 13, 77, 513), head dims 40, 64, 80,
 * 128, 24 and an unaligned 22 (zero-padded); f32/f16/bf16
 * storage; [B, N, H·D] inputs, permuted and sliced views read in place;
 * K/V broadcast over the batch; additive, key-padding, per-head-bias and
 * causal masks, a fully masked row; storage chunks of 16 KiB.
 * Tolerance: |err| <= 2e-5 + 1e-4·|ref| (f32 accumulation and lavapipe's
 * exp2; inputs are pre-rounded to the storage dtype, so the reference sees
 * the same values and the tolerance does not depend on it).
 */
#include "gpu_test.h"
#include "gpu/ops/ref.h"

#define RTOL 1e-4f
#define ATOL 2e-5f

enum mask_kind { MASK_NONE, MASK_FULL, MASK_KEYPAD, MASK_HEAD_BIAS, MASK_CAUSAL };

typedef struct attn_case {
    int64_t B, H, nq, nk, D;
    vkf_dtype dt;
    enum mask_kind mask;
    bool heads_last;               /* through vkf_op_attention_heads */
    bool kv_bcast;                 /* k/v batch 1, q batch B */
    float qmul;                    /* spreads the logits: online rescaling */
} attn_case;

/* [B,N,H,D] host array → [B,H,N,D]. */
static float *to_bhnd(const float *x, int64_t B, int64_t N, int64_t H, int64_t D)
{
    float *o = malloc((size_t)(B * N * H * D) * sizeof(float));
    for (int64_t b = 0; b < B; b++)
        for (int64_t n = 0; n < N; n++)
            for (int64_t h = 0; h < H; h++)
                memcpy(o + ((b * H + h) * N + n) * D, x + ((b * N + n) * H + h) * D,
                       (size_t)D * sizeof(float));
    return o;
}

static void check_case(vkf_gpu *gpu, const attn_case *c)
{
    int64_t B = c->B, H = c->H, nq = c->nq, nk = c->nk, D = c->D;
    int64_t bk = c->kv_bcast ? 1 : B;
    float *hq = gt_random(B * nq * H * D), *hk = gt_random(bk * nk * H * D);
    float *hv = gt_random(bk * nk * H * D);
    for (int64_t i = 0; i < B * nq * H * D; i++)
        hq[i] *= c->qmul;
    /* Host data is [B, N, H, D]; the device sees it either as
     * [B, N, H·D] or as the permuted view [B, H, N, D]. */
    int64_t qs[4] = {B, nq, H, D}, ks[4] = {bk, nk, H, D};
    vkf_tensor *q = gt_tensor(gpu, c->dt, 4, qs, hq);
    vkf_tensor *k = gt_tensor(gpu, c->dt, 4, ks, hk);
    vkf_tensor *v = gt_tensor(gpu, c->dt, 4, ks, hv);
    float *rq = to_bhnd(hq, B, nq, H, D), *rk = to_bhnd(hk, bk, nk, H, D);
    float *rv = to_bhnd(hv, bk, nk, H, D);
    if (c->kv_bcast && B > 1) {
        rk = realloc(rk, (size_t)(B * H * nk * D) * sizeof(float));
        rv = realloc(rv, (size_t)(B * H * nk * D) * sizeof(float));
        for (int64_t b = 1; b < B; b++) {
            memcpy(rk + b * H * nk * D, rk, (size_t)(H * nk * D) * sizeof(float));
            memcpy(rv + b * H * nk * D, rv, (size_t)(H * nk * D) * sizeof(float));
        }
    }

    vkf_attention_params ap = {.causal = c->mask == MASK_CAUSAL};
    float *full = NULL;
    vkf_tensor *mask = NULL;
    if (c->mask == MASK_FULL || c->mask == MASK_KEYPAD || c->mask == MASK_HEAD_BIAS) {
        int64_t ms[4] = {nq, nk, 0, 0};
        int mdims = 2;
        if (c->mask == MASK_KEYPAD) {
            ms[0] = B, ms[1] = 1, ms[2] = 1, ms[3] = nk;
            mdims = 4;
        } else if (c->mask == MASK_HEAD_BIAS) {
            ms[0] = H, ms[1] = nq, ms[2] = nk;
            mdims = 3;
        }
        int64_t mn = ms[0] * ms[1] * (mdims > 2 ? ms[2] : 1) * (mdims > 3 ? ms[3] : 1);
        float *hm = gt_random(mn);
        for (int64_t i = 0; i < mn; i++) {
            hm[i] *= 2.0f;
            if (c->mask == MASK_KEYPAD)
                hm[i] = (i % nk) >= nk - 1 - (i / nk) % 3 && nk > 3 ? -INFINITY : 0.0f;
            else if (i % 5 == 3)
                hm[i] = -INFINITY;
        }
        mask = gt_tensor(gpu, c->dt, mdims, ms, hm);
        ap.mask = mask;
        full = malloc((size_t)(B * H * nq * nk) * sizeof(float));
        for (int64_t b = 0; b < B; b++)
            for (int64_t h = 0; h < H; h++)
                for (int64_t i = 0; i < nq; i++)
                    for (int64_t j = 0; j < nk; j++) {
                        float m;
                        if (c->mask == MASK_FULL)
                            m = hm[i * nk + j];
                        else if (c->mask == MASK_KEYPAD)
                            m = hm[b * nk + j];
                        else
                            m = hm[(h * nq + i) * nk + j];
                        full[((b * H + h) * nq + i) * nk + j] = m;
                    }
        free(hm);
    }

    vkf_tensor *o = NULL;
    float *want = malloc((size_t)(B * H * nq * D) * sizeof(float));
    vkf_ref_attention(rq, rk, rv, full, B, H, nq, nk, D, 0.0f, ap.causal, want);
    if (c->heads_last) {
        vkf_tensor *q3 = NULL, *k3 = NULL, *v3 = NULL;
        CHECK_OK(vkf_tensor_reshape(q, 3, (int64_t[]){B, nq, H * D}, &q3));
        CHECK_OK(vkf_tensor_reshape(k, 3, (int64_t[]){bk, nk, H * D}, &k3));
        CHECK_OK(vkf_tensor_reshape(v, 3, (int64_t[]){bk, nk, H * D}, &v3));
        CHECK_OK(vkf_op_attention_heads(gpu, q3, k3, v3, (int)H, &ap, &o));
        CHECK(vkf_tensor_ndim(o) == 3 && vkf_tensor_shape(o)[2] == H * D);
        float *w2 = to_bhnd(want, B, H, nq, D);   /* [B,H,N,D] → [B,N,H,D] */
        free(want);
        want = w2;
        vkf_tensor_unref(&q3);
        vkf_tensor_unref(&k3);
        vkf_tensor_unref(&v3);
    } else {
        vkf_tensor *qp = NULL, *kp = NULL, *vp = NULL;
        static const int perm[4] = {0, 2, 1, 3};
        CHECK_OK(vkf_tensor_permute(q, perm, &qp));
        CHECK_OK(vkf_tensor_permute(k, perm, &kp));
        CHECK_OK(vkf_tensor_permute(v, perm, &vp));
        CHECK_OK(vkf_op_attention(gpu, qp, kp, vp, &ap, &o));
        CHECK(vkf_tensor_ndim(o) == 4 && vkf_tensor_shape(o)[1] == H &&
              vkf_tensor_shape(o)[2] == nq);
        vkf_tensor_unref(&qp);
        vkf_tensor_unref(&kp);
        vkf_tensor_unref(&vp);
    }
    float *got = gt_download(o);
    char what[160];
    snprintf(what, sizeof(what), "attention B%lld H%lld Nq%lld Nk%lld D%lld %s mask%d%s%s",
             (long long)B, (long long)H, (long long)nq, (long long)nk, (long long)D,
             vkf_dtype_name(c->dt), c->mask, c->heads_last ? " heads-last" : "",
             c->kv_bcast ? " kv-bcast" : "");
    gt_compare(what, got, want, B * H * nq * D, RTOL, ATOL);
    free(got);
    free(want);
    free(full);
    free(hq);
    free(hk);
    free(hv);
    free(rq);
    free(rk);
    free(rv);
    vkf_tensor_unref(&o);
    vkf_tensor_unref(&q);
    vkf_tensor_unref(&k);
    vkf_tensor_unref(&v);
    vkf_tensor_unref(&mask);
}

/* K and V as slices of one fused [B, N, 2·H·D] projection, q a slice of
 * a wider tensor too: read in place through strides. */
static void test_fused_views(vkf_gpu *gpu)
{
    int64_t B = 2, H = 3, n = 13, D = 40;
    float *hx = gt_random(B * n * 3 * H * D);
    vkf_tensor *x = gt_tensor(gpu, VKF_DTYPE_F32, 4, (int64_t[]){B, n, 3 * H, D}, hx);
    vkf_tensor *part[3] = {NULL, NULL, NULL}, *perm[3] = {NULL, NULL, NULL}, *o = NULL;
    for (int i = 0; i < 3; i++) {
        CHECK_OK(vkf_tensor_slice(x, 2, i * H, H, &part[i]));
        CHECK_OK(vkf_tensor_permute(part[i], (const int[]){0, 2, 1, 3}, &perm[i]));
    }
    CHECK_OK(vkf_op_attention(gpu, perm[0], perm[1], perm[2], NULL, &o));
    float *r[3];
    for (int i = 0; i < 3; i++) {
        r[i] = malloc((size_t)(B * H * n * D) * sizeof(float));
        for (int64_t b = 0; b < B; b++)
            for (int64_t t = 0; t < n; t++)
                for (int64_t h = 0; h < H; h++)
                    memcpy(r[i] + ((b * H + h) * n + t) * D,
                           hx + ((b * n + t) * 3 * H + i * H + h) * D,
                           (size_t)D * sizeof(float));
    }
    float *want = malloc((size_t)(B * H * n * D) * sizeof(float));
    vkf_ref_attention(r[0], r[1], r[2], NULL, B, H, n, n, D, 0.0f, false, want);
    float *got = gt_download(o);
    gt_compare("attention fused qkv views", got, want, B * H * n * D, RTOL, ATOL);
    free(got);
    free(want);
    for (int i = 0; i < 3; i++) {
        free(r[i]);
        vkf_tensor_unref(&part[i]);
        vkf_tensor_unref(&perm[i]);
    }
    vkf_tensor_unref(&o);
    vkf_tensor_unref(&x);
    free(hx);
}

/* Every key masked: zeros, as documented. */
static void test_all_masked(vkf_gpu *gpu)
{
    int64_t s[4] = {1, 1, 3, 40};
    float *hq = gt_random(120), *hm = malloc(9 * sizeof(float));
    for (int i = 0; i < 9; i++)
        hm[i] = i < 3 ? -INFINITY : 0.0f;  /* row 0 fully masked */
    vkf_tensor *q = gt_tensor(gpu, VKF_DTYPE_F32, 4, s, hq);
    vkf_tensor *m = gt_tensor(gpu, VKF_DTYPE_F32, 2, (int64_t[]){3, 3}, hm), *o = NULL;
    CHECK_OK(vkf_op_attention(gpu, q, q, q, &(vkf_attention_params){.mask = m}, &o));
    float *got = gt_download(o);
    for (int i = 0; i < 40; i++)
        CHECK(got[i] == 0.0f);
    for (int i = 40; i < 120; i++)
        CHECK(isfinite(got[i]));
    free(got);
    free(hq);
    free(hm);
    vkf_tensor_unref(&q);
    vkf_tensor_unref(&m);
    vkf_tensor_unref(&o);
}

int main(void)
{
    /* Each distinct (head-dim module, D, dtypes, mask) is one pipeline, and
     * lavapipe needs seconds per pipeline: the list mixes the axes rather
     * than crossing them. */
    static const attn_case cases[] = {
        {1, 1, 1, 1, 40, VKF_DTYPE_F32, MASK_NONE, false, false, 1},
        {1, 3, 7, 13, 40, VKF_DTYPE_F32, MASK_NONE, true, false, 4},
        {1, 8, 300, 77, 40, VKF_DTYPE_F32, MASK_NONE, true, false, 1},
        {2, 1, 127, 513, 40, VKF_DTYPE_F32, MASK_NONE, false, true, 3},
        {1, 3, 77, 77, 24, VKF_DTYPE_F16, MASK_NONE, true, false, 2},
        {1, 3, 7, 77, 22, VKF_DTYPE_BF16, MASK_NONE, true, false, 2},
        {1, 3, 77, 77, 40, VKF_DTYPE_F32, MASK_CAUSAL, true, false, 3},
        {1, 3, 127, 77, 40, VKF_DTYPE_F32, MASK_FULL, true, false, 2},
        {2, 3, 13, 77, 40, VKF_DTYPE_F32, MASK_HEAD_BIAS, false, true, 2},
        {2, 8, 77, 77, 64, VKF_DTYPE_F16, MASK_NONE, true, false, 2},
        {1, 3, 13, 77, 80, VKF_DTYPE_F32, MASK_NONE, true, false, 2},
        {2, 3, 7, 513, 40, VKF_DTYPE_BF16, MASK_KEYPAD, false, false, 2},
        {1, 3, 127, 513, 128, VKF_DTYPE_F32, MASK_NONE, false, false, 4},
    };
    gt_seed(11);
    vkf_gpu *gpu = gt_gpu_open((vkf_gpu_params){0});
    for (size_t i = 0; i < VKF_ARRAY_SIZE(cases); i++)
        check_case(gpu, &cases[i]);
    test_fused_views(gpu);
    test_all_masked(gpu);
    int rc = gt_finish(&gpu);

    /* q, k, v and the mask larger than one 16 KiB chunk (4 chunks of q). */
    gpu = gt_gpu_open((vkf_gpu_params){.max_chunk_bytes = 16384});
    static const attn_case chunked[] = {
        {1, 2, 200, 61, 40, VKF_DTYPE_F32, MASK_FULL, true, false, 2},
        {1, 2, 127, 77, 40, VKF_DTYPE_F16, MASK_NONE, false, false, 2},
    };
    for (size_t i = 0; i < VKF_ARRAY_SIZE(chunked); i++)
        check_case(gpu, &chunked[i]);
    rc |= gt_finish(&gpu);
    return rc;
}
