/*
 * Binary ops with broadcasting, activations, casts, views, concat, pad
 * against plain-C references, for every storage dtype, on awkward sizes.
 * Run twice: device chunk size, and 16 KiB chunks so tensors span several
 * bindings.  Tolerance: rtol 1e-5 (f32 arithmetic on identical inputs);
 * transcendental activations rtol 2e-5 + atol 1e-6.
 */
#include "gpu_test.h"
#include "gpu/ops/ref.h"

static void test_binary(vkf_gpu *gpu, vkf_dtype dt)
{
    static const struct {
        int an, bn;
        int64_t a[4], b[4];
    } cases[] = {
        {1, 1, {1}, {1}},
        {1, 1, {127}, {127}},
        {2, 1, {13, 7}, {7}},
        {3, 3, {7, 1, 13}, {1, 5, 13}},
        {4, 2, {2, 3, 13, 127}, {13, 1}},
        {2, 2, {1000, 3}, {1000, 1}},
    };
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        int64_t na = 1, nb = 1, no = 1;
        for (int d = 0; d < cases[c].an; d++)
            na *= cases[c].a[d];
        for (int d = 0; d < cases[c].bn; d++)
            nb *= cases[c].b[d];
        float *ha = gt_random(na), *hb = gt_random(nb);
        for (int64_t i = 0; i < nb; i++)
            hb[i] += hb[i] >= 0 ? 0.5f : -0.5f;   /* keep division tame */
        vkf_tensor *a = gt_tensor(gpu, dt, cases[c].an, cases[c].a, ha);
        vkf_tensor *b = gt_tensor(gpu, dt, cases[c].bn, cases[c].b, hb);
        for (int op = VKF_BIN_ADD; op <= VKF_BIN_DIV; op++) {
            vkf_tensor *o = NULL;
            CHECK_OK(vkf_op_binary(gpu, (vkf_binary_op)op, a, b, &o));
            no = vkf_tensor_numel(o);
            float *want = malloc((size_t)no * sizeof(float));
            vkf_ref_binary((vkf_binary_op)op, ha, cases[c].a, cases[c].an, hb,
                           cases[c].b, cases[c].bn, want);
            float *got = gt_download(o);
            char what[64];
            snprintf(what, sizeof(what), "binary op %d case %zu %s", op, c,
                     vkf_dtype_name(dt));
            gt_compare(what, got, want, no, 1e-6f, 1e-7f);
            free(got);
            free(want);
            vkf_tensor_unref(&o);
        }
        vkf_tensor *o = NULL;
        vkf_log quiet = {0};
        (void)quiet;
        vkf_tensor_unref(&o);
        vkf_tensor_unref(&a);
        vkf_tensor_unref(&b);
        free(ha);
        free(hb);
    }
}

static void test_unary(vkf_gpu *gpu, vkf_dtype dt)
{
    static const int64_t sizes[] = {1, 7, 13, 127, 4099};
    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        int64_t n = sizes[s];
        float *h = gt_random(n);
        for (int64_t i = 0; i < n; i++)
            h[i] *= 6.0f;
        vkf_tensor *x = gt_tensor(gpu, dt, 1, &n, h);
        for (int op = VKF_UN_SILU; op <= VKF_UN_TANH; op++) {
            vkf_tensor *o = NULL;
            CHECK_OK(vkf_op_unary(gpu, (vkf_unary_op)op, x, 1.5f, -0.25f, &o));
            float *want = malloc((size_t)n * sizeof(float));
            for (int64_t i = 0; i < n; i++)
                want[i] = vkf_ref_unary((vkf_unary_op)op, h[i], 1.5f, -0.25f);
            float *got = gt_download(o);
            char what[64];
            snprintf(what, sizeof(what), "unary op %d n %lld %s", op, (long long)n,
                     vkf_dtype_name(dt));
            gt_compare(what, got, want, n, 2e-5f, 1e-6f);
            free(got);
            free(want);
            vkf_tensor_unref(&o);
        }
        vkf_tensor_unref(&x);
        free(h);
    }
}

static void test_views(vkf_gpu *gpu, vkf_dtype dt)
{
    int64_t shape[3] = {5, 7, 13}, n = 5 * 7 * 13;
    float *h = gt_random(n);
    vkf_tensor *x = gt_tensor(gpu, dt, 3, shape, h);

    /* permute (2, 0, 1) then download (materialises via contiguous). */
    vkf_tensor *p = NULL;
    CHECK_OK(vkf_tensor_permute(x, (int[]){2, 0, 1}, &p));
    CHECK(!vkf_tensor_is_contiguous(p));
    float *got = gt_download(p), *want = malloc((size_t)n * sizeof(float));
    for (int k = 0; k < 13; k++)
        for (int i = 0; i < 5; i++)
            for (int j = 0; j < 7; j++)
                want[(k * 5 + i) * 7 + j] = h[(i * 7 + j) * 13 + k];
    gt_compare("permute", got, want, n, 0, 0);
    free(got);

    /* slice dim 1 [2, 6) of the permuted view: a view of a view. */
    vkf_tensor *s = NULL;
    CHECK_OK(vkf_tensor_slice(p, 1, 2, 3, &s));
    got = gt_download(s);
    for (int k = 0; k < 13; k++)
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 7; j++)
                want[(k * 3 + i) * 7 + j] = h[((i + 2) * 7 + j) * 13 + k];
    gt_compare("slice of permute", got, want, 13 * 3 * 7, 0, 0);
    free(got);

    /* binary op reads views directly (strides in push constants). */
    vkf_tensor *o = NULL;
    CHECK_OK(vkf_op_binary(gpu, VKF_BIN_MUL, s, s, &o));
    got = gt_download(o);
    for (int64_t i = 0; i < 13 * 3 * 7; i++)
        want[i] *= want[i];
    gt_compare("mul of views", got, want, 13 * 3 * 7, 1e-6f, 0);
    free(got);
    vkf_tensor_unref(&o);

    /* concat along dim 1 of x and its slice. */
    vkf_tensor *xs = NULL, *cat = NULL;
    CHECK_OK(vkf_tensor_slice(x, 1, 1, 2, &xs));
    vkf_tensor *parts[2] = {x, xs};
    CHECK_OK(vkf_op_concat(gpu, parts, 2, 1, &cat));
    CHECK(vkf_tensor_shape(cat)[1] == 9);
    got = gt_download(cat);
    float *want2 = malloc(5 * 9 * 13 * sizeof(float));
    for (int i = 0; i < 5; i++)
        for (int j = 0; j < 9; j++)
            for (int k = 0; k < 13; k++)
                want2[(i * 9 + j) * 13 + k] = h[(i * 7 + (j < 7 ? j : j - 6)) * 13 + k];
    gt_compare("concat", got, want2, 5 * 9 * 13, 0, 0);
    free(got);
    free(want2);

    /* pad: 1 before / 2 after on the last dim, 3 after on dim 0. */
    vkf_tensor *pd = NULL;
    CHECK_OK(vkf_op_pad(gpu, x, (int64_t[]){0, 3, 0, 0, 1, 2}, -7.0f, &pd));
    got = gt_download(pd);
    int64_t pn = 8 * 7 * 16;
    want2 = malloc((size_t)pn * sizeof(float));
    for (int i = 0; i < 8; i++)
        for (int j = 0; j < 7; j++)
            for (int k = 0; k < 16; k++)
                want2[(i * 7 + j) * 16 + k] = (i < 5 && k >= 1 && k < 14)
                                                  ? h[(i * 7 + j) * 13 + k - 1] : -7.0f;
    gt_compare("pad", got, want2, pn, 0, 0);
    free(got);
    free(want2);

    /* cast to every dtype and back. */
    for (int d2 = VKF_DTYPE_F32; d2 <= VKF_DTYPE_BF16; d2++) {
        vkf_tensor *c = NULL;
        CHECK_OK(vkf_op_cast(gpu, x, (vkf_dtype)d2, &c));
        CHECK(vkf_tensor_dtype(c) == (vkf_dtype)d2);
        got = gt_download(c);
        memcpy(want, h, (size_t)n * sizeof(float));
        gt_quantize((vkf_dtype)d2, want, n);
        gt_compare("cast", got, want, n, 0, 0);
        free(got);
        vkf_tensor_unref(&c);
    }

    vkf_tensor_unref(&pd);
    vkf_tensor_unref(&cat);
    vkf_tensor_unref(&xs);
    vkf_tensor_unref(&s);
    vkf_tensor_unref(&p);
    vkf_tensor_unref(&x);
    free(want);
    free(h);
}

static void test_errors(vkf_gpu *gpu)
{
    int64_t s1 = 3, s2 = 4;
    float h[4] = {0};
    vkf_tensor *a = gt_tensor(gpu, VKF_DTYPE_F32, 1, &s1, h);
    vkf_tensor *b = gt_tensor(gpu, VKF_DTYPE_F32, 1, &s2, h), *o = NULL;
    fprintf(stderr, "(an error about shapes that do not broadcast is expected)\n");
    CHECK(vkf_op_binary(gpu, VKF_BIN_ADD, a, b, &o) == VKF_EINVAL);
    CHECK(o == NULL);
    vkf_tensor_unref(&a);
    vkf_tensor_unref(&b);
}

int main(void)
{
    for (int pass = 0; pass < 2; pass++) {
        gt_seed(1 + (uint64_t)pass);
        vkf_gpu *gpu = gt_gpu_open((vkf_gpu_params){
            .max_chunk_bytes = pass ? 16384 : 0});
        for (int dt = VKF_DTYPE_F32; dt <= VKF_DTYPE_BF16; dt++) {
            test_binary(gpu, (vkf_dtype)dt);
            test_unary(gpu, (vkf_dtype)dt);
            test_views(gpu, (vkf_dtype)dt);
        }
        test_errors(gpu);
        if (gt_finish(&gpu))
            return 1;
    }
    return 0;
}
