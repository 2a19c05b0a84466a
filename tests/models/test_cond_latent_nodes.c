/*
 * Conditioning, latent and text-encode nodes through the executor, checked
 * against plain-C expectations: EmptyLatentImage, LatentUpscale(By)
 * (nearest-exact / bilinear values, crop, aspect, the other modes' sizes),
 * LatentComposite with feathering and clipping, LatentCompositeMasked,
 * LatentBlend, batch nodes (indices, noise masks), SetLatentNoiseMask,
 * SaveLatent → LoadLatent (naming, marker, legacy scaling), the
 * conditioning field setters, averaging and concatenation, ZeroOut,
 * InpaintModelConditioning on a fake VAE, the prompt-weight formula, and
 * CLIPTextEncode / CLIPSetLastLayer on a synthesized tiny CLIP-L.
 */
#include <sys/stat.h>
#include <unistd.h>

#include "../gpu/gpu_test.h"
#include "../../nodes/cond_latent.h"
#include "vkflow/models.h"
#include "vkflow/types.h"
#include "vkflow/vkflow.h"

/* ---- deterministic test data ------------------------------------------------ */

static float gen(int64_t seed, int64_t i)
{
    uint64_t h = (uint64_t)i * 2654435761u + (uint64_t)seed * 0x9e3779b97f4a7c15ull;
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 32;
    return (float)(h % 20001) / 10000.0f - 1.0f;   /* [-1, 1] */
}

static float gen01(int64_t seed, int64_t i)
{
    return gen(seed, i) * 0.5f + 0.5f;
}

static float *gen_array(int64_t seed, int64_t n, bool unit)
{
    float *p = malloc(sizeof(float) * (size_t)(n ? n : 1));
    for (int64_t i = 0; i < n; i++)
        p[i] = unit ? gen01(seed, i) : gen(seed, i);
    return p;
}

static int upload_new(vkf_exec_ctx *ctx, int nd, const int64_t *shape, const float *data,
                      vkf_tensor **out)
{
    vkf_gpu *gpu;
    int err = vkf_exec_gpu(ctx, &gpu);
    if (err >= 0)
        err = vkf_tensor_create(gpu, VKF_DTYPE_F32, nd, shape, out);
    if (err >= 0 && (err = vkf_tensor_upload(*out, data)) < 0)
        vkf_tensor_unref(out);
    return err;
}

/* ---- test nodes ---------------------------------------------------------------- */

static int src_latent(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    int64_t shape[4] = {in[1].u.i, in[2].u.i, in[3].u.i, in[4].u.i};
    float *d = gen_array(in[0].u.i, shape[0] * shape[1] * shape[2] * shape[3], false);
    vkf_tensor *t = NULL;
    int err = upload_new(ctx, 4, shape, d, &t);
    free(d);
    return err < 0 ? err : vkf_value_set_latent(&out[0], t, NULL, NULL, 0);
}

static const vkf_input_def shape_inputs[] = {
    VKF_INPUT_INT("seed", 0, 0, 1000000), VKF_INPUT_INT("b", 1, 1, 64),
    VKF_INPUT_INT("c", 4, 1, 64), VKF_INPUT_INT("h", 8, 1, 4096),
    VKF_INPUT_INT("w", 8, 1, 4096),
};
static const vkf_output_def latent_out[] = {{.type = "LATENT"}};
static const vkf_node_def src_latent_def = {
    .name = "TestLatent", .inputs = shape_inputs, .nb_inputs = 5,
    .outputs = latent_out, .nb_outputs = 1, .execute = src_latent,
};

/* MASK [b, h, w] in [0, 1] (inputs seed, b, c unused, h, w). */
static int src_mask(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    int64_t shape[3] = {in[1].u.i, in[3].u.i, in[4].u.i};
    float *d = gen_array(in[0].u.i, shape[0] * shape[1] * shape[2], true);
    vkf_tensor *t = NULL;
    int err = upload_new(ctx, 3, shape, d, &t);
    free(d);
    return err < 0 ? err : vkf_value_set_mask(&out[0], t);
}

static const vkf_output_def mask_out[] = {{.type = "MASK"}};
static const vkf_node_def src_mask_def = {
    .name = "TestMask", .inputs = shape_inputs, .nb_inputs = 5,
    .outputs = mask_out, .nb_outputs = 1, .execute = src_mask,
};

/* IMAGE [b, h, w, c] in [0, 1]. */
static int src_image(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    int64_t shape[4] = {in[1].u.i, in[3].u.i, in[4].u.i, in[2].u.i};
    float *d = gen_array(in[0].u.i, shape[0] * shape[1] * shape[2] * shape[3], true);
    vkf_tensor *t = NULL;
    int err = upload_new(ctx, 4, shape, d, &t);
    free(d);
    return err < 0 ? err : vkf_value_set_image(&out[0], t);
}

static const vkf_output_def image_out[] = {{.type = "IMAGE"}};
static const vkf_node_def src_image_def = {
    .name = "TestImage", .inputs = shape_inputs, .nb_inputs = 5,
    .outputs = image_out, .nb_outputs = 1, .execute = src_image,
};

/* CONDITIONING: one entry, cond [1, h, w] from seed, pooled [1, c] from
 * seed + 1 (c = 0: none). */
static int src_cond(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    int64_t shape[3] = {1, in[3].u.i, in[4].u.i}, ps[2] = {1, in[2].u.i};
    float *d = gen_array(in[0].u.i, shape[1] * shape[2], false);
    float *p = gen_array(in[0].u.i + 1, ps[1], false);
    vkf_conditioning *c = vkf_conditioning_new(1);
    int err = upload_new(ctx, 3, shape, d, &c->e[0].cond);
    if (err >= 0 && ps[1] > 1)
        err = upload_new(ctx, 2, ps, p, &c->e[0].pooled);
    free(d);
    free(p);
    vkf_value_set_object(&out[0], &c->obj);
    return err;
}

static const vkf_output_def cond_out[] = {{.type = "CONDITIONING"}};
static const vkf_node_def src_cond_def = {
    .name = "TestCond", .inputs = shape_inputs, .nb_inputs = 5,
    .outputs = cond_out, .nb_outputs = 1, .execute = src_cond,
};

/* A fake VAE: encode = 8×8 average pooling of the [-1, 1] image. */
static int fake_encode_calls;

static int fake_encode(vkf_vae_model *m, vkf_tensor *image, vkf_tensor **latent)
{
    fake_encode_calls++;
    vkf_pool2d_params p = {.kernel = {8, 8}};
    return vkf_op_avg_pool2d(m->gpu, image, &p, latent);
}

static void fake_destroy(vkf_vae_model *m)
{
    vkf_free(m);
}

static int src_vae(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    (void)in;
    vkf_gpu *gpu;
    int err = vkf_exec_gpu(ctx, &gpu);
    if (err < 0)
        return err;
    vkf_vae_model *m = vkf_calloc(1, sizeof(*m));
    m->refs = 1;
    snprintf(m->arch, sizeof(m->arch), "fake");
    m->latent_channels = 3;
    m->downscale = 8;
    m->gpu = gpu;
    m->encode = fake_encode;
    m->destroy = fake_destroy;
    vkf_vae *v = vkf_vae_new(m);
    vkf_vae_model_unref(&m);
    vkf_value_set_object(&out[0], &v->obj);
    return 0;
}

static const vkf_output_def vae_out[] = {{.type = "VAE"}};
static const vkf_node_def src_vae_def = {
    .name = "TestVAE", .outputs = vae_out, .nb_outputs = 1, .execute = src_vae,
    .flags = VKF_NODE_NOT_IDEMPOTENT,
};

static vkf_clip *test_clip;

static int src_clip(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    (void)in;
    if (!test_clip)
        return vkf_exec_error(ctx, "no test CLIP");
    vkf_value_set_object(&out[0], vkf_object_ref(&test_clip->obj));
    return 0;
}

static const vkf_output_def clip_out[] = {{.type = "CLIP"}};
static const vkf_node_def src_clip_def = {
    .name = "TestCLIP", .outputs = clip_out, .nb_outputs = 1, .execute = src_clip,
    .flags = VKF_NODE_NOT_IDEMPOTENT,
};

/* Captures: slot k keeps a copy of its input value. */
static vkf_value captured[8];

static int capture(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    (void)ctx;
    (void)out;
    int k = (int)in[1].u.i;
    vkf_value_clear(&captured[k]);
    return vkf_value_copy(&captured[k], &in[0]);
}

static const vkf_input_def cap_latent_in[] = {VKF_INPUT_LINK("v", "LATENT"),
                                              VKF_INPUT_INT("slot", 0, 0, 7)};
static const vkf_input_def cap_cond_in[] = {VKF_INPUT_LINK("v", "CONDITIONING"),
                                            VKF_INPUT_INT("slot", 0, 0, 7)};
static const vkf_node_def cap_latent_def = {
    .name = "CapLatent", .inputs = cap_latent_in, .nb_inputs = 2,
    .flags = VKF_NODE_OUTPUT | VKF_NODE_NOT_IDEMPOTENT, .execute = capture,
};
static const vkf_node_def cap_cond_def = {
    .name = "CapCond", .inputs = cap_cond_in, .nb_inputs = 2,
    .flags = VKF_NODE_OUTPUT | VKF_NODE_NOT_IDEMPOTENT, .execute = capture,
};

/* ---- harness ----------------------------------------------------------------- */

static char root[256], in_dir[300], out_dir[300];
static vkf_registry *reg;
static vkf_paths *paths;
static vkf_executor *ex;

static int run(const char *json, char **run_error)
{
    vkf_graph *g = NULL;
    vkf_load_error le = {0};
    if (vkf_load_workflow_json(json, strlen(json), reg, &g, &le) < 0) {
        fprintf(stderr, "load: %s\n", le.message ? le.message : "?");
        vkf_load_error_clear(&le);
        return -100;
    }
    vkf_validation val = {0};
    char *msg = NULL;
    int err = vkf_executor_run(ex, g, &val, &msg);
    if (err == VKF_EVALIDATION) {
        for (int i = 0; i < val.nb_node_errors; i++)
            for (int k = 0; k < val.node_errors[i].nb_errors; k++)
                fprintf(stderr, "validation: %s: %s\n", val.node_errors[i].errors[k].message,
                        val.node_errors[i].errors[k].details);
    }
    if (err < 0 && msg && !run_error)
        fprintf(stderr, "run: %s\n", msg);
    if (run_error)
        *run_error = msg;
    else
        vkf_free(msg);
    vkf_validation_clear(&val);
    vkf_graph_free(&g);
    return err;
}

#define RUN_OK(...)                                                           \
    do {                                                                      \
        char json_[8192];                                                     \
        snprintf(json_, sizeof(json_), __VA_ARGS__);                          \
        int rc_ = run(json_, NULL);                                           \
        if (rc_ < 0)                                                          \
            fprintf(stderr, "%s:%d: run failed (%d)\n", __FILE__, __LINE__, rc_); \
        CHECK(rc_ == 0);                                                      \
    } while (0)

static const vkf_latent *cap_latent(int k)
{
    return vkf_value_latent(&captured[k]);
}

static vkf_conditioning *cap_cond(int k)
{
    return vkf_value_conditioning(&captured[k]);
}

static bool shape_is(vkf_tensor *t, int nd, int64_t a, int64_t b, int64_t c, int64_t d)
{
    if (!t || vkf_tensor_ndim(t) != nd)
        return false;
    int64_t want[4] = {a, b, c, d};
    for (int i = 0; i < nd; i++)
        if (vkf_tensor_shape(t)[i] != want[i])
            return false;
    return true;
}

#define LAT(seed, b, c, h, w)                                                 \
    "{\"class_type\":\"TestLatent\",\"inputs\":{\"seed\":" #seed ",\"b\":" #b \
    ",\"c\":" #c ",\"h\":" #h ",\"w\":" #w "}}"

/* ---- torch references ---------------------------------------------------------- */

static void ref_nearest_exact(const float *x, int64_t planes, int64_t h, int64_t w, int64_t ho,
                              int64_t wo, float *o)
{
    for (int64_t p = 0; p < planes; p++)
        for (int64_t y = 0; y < ho; y++)
            for (int64_t xx = 0; xx < wo; xx++) {
                int64_t sy = (int64_t)floorf(((float)y + 0.5f) * ((float)h / (float)ho));
                int64_t sx = (int64_t)floorf(((float)xx + 0.5f) * ((float)w / (float)wo));
                sy = sy < h - 1 ? sy : h - 1;
                sx = sx < w - 1 ? sx : w - 1;
                o[(p * ho + y) * wo + xx] = x[(p * h + sy) * w + sx];
            }
}

static void lin(int64_t dst, int64_t in, int64_t out, int64_t *i0, int64_t *i1, double *l)
{
    double src = (double)in / (double)out * ((double)dst + 0.5) - 0.5;
    if (src < 0)
        src = 0;
    *i0 = (int64_t)src;
    if (*i0 > in - 1)
        *i0 = in - 1;
    *i1 = *i0 < in - 1 ? *i0 + 1 : *i0;
    *l = src - (double)*i0;
}

static void ref_bilinear(const float *x, int64_t planes, int64_t h, int64_t w, int64_t ho,
                         int64_t wo, float *o)
{
    for (int64_t p = 0; p < planes; p++)
        for (int64_t y = 0; y < ho; y++)
            for (int64_t xx = 0; xx < wo; xx++) {
                int64_t y0, y1, x0, x1;
                double ly, lx;
                lin(y, h, ho, &y0, &y1, &ly);
                lin(xx, w, wo, &x0, &x1, &lx);
                const float *b = x + p * h * w;
                double top = (1 - lx) * b[y0 * w + x0] + lx * b[y0 * w + x1];
                double bot = (1 - lx) * b[y1 * w + x0] + lx * b[y1 * w + x1];
                o[(p * ho + y) * wo + xx] = (float)((1 - ly) * top + ly * bot);
            }
}

static float *dl(vkf_tensor *t)
{
    return gt_download(t);
}

/* ---- tests -------------------------------------------------------------------- */

static void test_empty_latent(void)
{
    RUN_OK("{\"1\":{\"class_type\":\"EmptyLatentImage\",\"inputs\":{\"width\":72,\"height\":40,"
           "\"batch_size\":3}},\"2\":{\"class_type\":\"CapLatent\",\"inputs\":{\"v\":[\"1\",0],"
           "\"slot\":0}}}");
    const vkf_latent *l = cap_latent(0);
    CHECK(l && shape_is(l->samples, 4, 3, 4, 5, 9) && !l->noise_mask && !l->batch_index);
    if (l && l->samples) {
        float *d = dl(l->samples);
        bool zero = true;
        for (int i = 0; i < 3 * 4 * 5 * 9; i++)
            zero &= d[i] == 0.0f;
        CHECK(zero);
        free(d);
    }
    /* widths below the minimum are refused by validation */
    char *msg = NULL;
    CHECK(run("{\"1\":{\"class_type\":\"EmptyLatentImage\",\"inputs\":{\"width\":8,\"height\":40,"
              "\"batch_size\":1}},\"2\":{\"class_type\":\"CapLatent\",\"inputs\":{\"v\":[\"1\",0],"
              "\"slot\":0}}}", &msg) == VKF_EVALIDATION);
    vkf_free(msg);
}

static void test_upscale(void)
{
    /* nearest-exact 9x7 latent → 200x96 px = 25x12 latent, and bilinear */
    static const char *const methods[] = {"nearest-exact", "bilinear"};
    for (int m = 0; m < 2; m++) {
        RUN_OK("{\"1\":" LAT(5, 2, 4, 7, 9) ",\"2\":{\"class_type\":\"LatentUpscale\",\"inputs\":"
               "{\"samples\":[\"1\",0],\"upscale_method\":\"%s\",\"width\":200,\"height\":96,"
               "\"crop\":\"disabled\"}},\"3\":{\"class_type\":\"CapLatent\",\"inputs\":{\"v\":"
               "[\"2\",0],\"slot\":0}}}", methods[m]);
        const vkf_latent *l = cap_latent(0);
        CHECK(l && shape_is(l->samples, 4, 2, 4, 12, 25));
        if (l && shape_is(l->samples, 4, 2, 4, 12, 25)) {
            float *x = gen_array(5, 2 * 4 * 7 * 9, false), *want = malloc(sizeof(float) * 2400);
            if (m == 0)
                ref_nearest_exact(x, 8, 7, 9, 12, 25, want);
            else
                ref_bilinear(x, 8, 7, 9, 12, 25, want);
            float *got = dl(l->samples);
            gt_compare(methods[m], got, want, 2400, 1e-5f, 1e-6f);
            free(got);
            free(want);
            free(x);
        }
    }
    /* crop center: 8x16 latent to 64x64 px (8x8): columns 4..11 kept */
    RUN_OK("{\"1\":" LAT(6, 1, 4, 8, 16) ",\"2\":{\"class_type\":\"LatentUpscale\",\"inputs\":"
           "{\"samples\":[\"1\",0],\"upscale_method\":\"nearest-exact\",\"width\":64,\"height\":64,"
           "\"crop\":\"center\"}},\"3\":{\"class_type\":\"CapLatent\",\"inputs\":{\"v\":"
           "[\"2\",0],\"slot\":0}}}");
    const vkf_latent *l = cap_latent(0);
    CHECK(l && shape_is(l->samples, 4, 1, 4, 8, 8));
    if (l && shape_is(l->samples, 4, 1, 4, 8, 8)) {
        float *x = gen_array(6, 4 * 8 * 16, false), *got = dl(l->samples);
        bool ok = true;
        for (int c = 0; c < 4; c++)
            for (int y = 0; y < 8; y++)
                for (int xx = 0; xx < 8; xx++)
                    ok &= got[(c * 8 + y) * 8 + xx] == x[(c * 8 + y) * 16 + xx + 4];
        CHECK(ok);
        free(x);
        free(got);
    }
    /* width 0 keeps the aspect (height raised to 64 px); both 0: unchanged */
    RUN_OK("{\"1\":" LAT(7, 1, 4, 6, 10) ",\"2\":{\"class_type\":\"LatentUpscale\",\"inputs\":"
           "{\"samples\":[\"1\",0],\"upscale_method\":\"bilinear\",\"width\":0,\"height\":16,"
           "\"crop\":\"disabled\"}},\"3\":{\"class_type\":\"CapLatent\",\"inputs\":{\"v\":"
           "[\"2\",0],\"slot\":0}},\"4\":{\"class_type\":\"LatentUpscale\",\"inputs\":"
           "{\"samples\":[\"1\",0],\"upscale_method\":\"bilinear\",\"width\":0,\"height\":0,"
           "\"crop\":\"disabled\"}},\"5\":{\"class_type\":\"CapLatent\",\"inputs\":{\"v\":"
           "[\"4\",0],\"slot\":1}}}");
    /* height 64 px, width round(10·64/6) = 107 → 13 latent */
    CHECK(cap_latent(0) && shape_is(cap_latent(0)->samples, 4, 1, 4, 8, 13));
    CHECK(cap_latent(1) && shape_is(cap_latent(1)->samples, 4, 1, 4, 6, 10));
    /* the other modes: sizes (values: tests/gpu/test_gpu_latent_ops.c) */
    static const char *const others[] = {"area", "bicubic", "bislerp"};
    for (int m = 0; m < 3; m++) {
        RUN_OK("{\"1\":" LAT(8, 1, 4, 9, 5) ",\"2\":{\"class_type\":\"LatentUpscaleBy\",\"inputs\":"
               "{\"samples\":[\"1\",0],\"upscale_method\":\"%s\",\"scale_by\":1.5}},"
               "\"3\":{\"class_type\":\"CapLatent\",\"inputs\":{\"v\":[\"2\",0],\"slot\":0}}}",
               others[m]);
        /* round(5·1.5) = 8 (half to even), round(9·1.5) = 14 */
        CHECK(cap_latent(0) && shape_is(cap_latent(0)->samples, 4, 1, 4, 14, 8));
    }
}

/* LatentComposite's feathered mask, written directly from the definition. */
static float feather_w(int64_t r, int64_t c, int64_t rh, int64_t rw, int64_t f, bool top,
                       bool bottom, bool left, bool right)
{
    float m = 1.0f;
    for (int64_t t = 0; t < f; t++) {
        float v = (float)((1.0 / (double)f) * (double)(t + 1));
        if (top && r == t)
            m *= v;
        if (bottom && r == rh - 1 - t)
            m *= v;
        if (left && c == t)
            m *= v;
        if (right && c == rw - 1 - t)
            m *= v;
    }
    return m;
}

static void check_composite(int64_t H, int64_t W, int64_t fh, int64_t fw, int64_t x, int64_t y,
                            int64_t feather, const char *what)
{
    RUN_OK("{\"1\":{\"class_type\":\"TestLatent\",\"inputs\":{\"seed\":11,\"b\":2,\"c\":4,"
           "\"h\":%lld,\"w\":%lld}},\"2\":{\"class_type\":\"TestLatent\",\"inputs\":{\"seed\":12,"
           "\"b\":1,\"c\":4,\"h\":%lld,\"w\":%lld}},\"3\":{\"class_type\":\"LatentComposite\","
           "\"inputs\":{\"samples_to\":[\"1\",0],\"samples_from\":[\"2\",0],\"x\":%lld,\"y\":%lld,"
           "\"feather\":%lld}},\"4\":{\"class_type\":\"CapLatent\",\"inputs\":{\"v\":[\"3\",0],"
           "\"slot\":0}}}",
           (long long)H, (long long)W, (long long)fh, (long long)fw, (long long)x * 8,
           (long long)y * 8, (long long)feather * 8);
    const vkf_latent *l = cap_latent(0);
    CHECK(l && shape_is(l->samples, 4, 2, 4, H, W));
    if (!l || !shape_is(l->samples, 4, 2, 4, H, W))
        return;
    float *to = gen_array(11, 2 * 4 * H * W, false), *from = gen_array(12, 4 * fh * fw, false);
    float *want = malloc(sizeof(float) * (size_t)(2 * 4 * H * W));
    int64_t rh = fh < H - y ? fh : H - y, rw = fw < W - x ? fw : W - x;
    for (int64_t b = 0; b < 2; b++)
        for (int64_t c = 0; c < 4; c++)
            for (int64_t r = 0; r < H; r++)
                for (int64_t q = 0; q < W; q++) {
                    int64_t i = ((b * 4 + c) * H + r) * W + q;
                    want[i] = to[i];
                    if (r < y || q < x || r >= y + rh || q >= x + rw)
                        continue;
                    float s = from[(c * fh + r - y) * fw + q - x];
                    if (!feather) {
                        want[i] = s;
                        continue;
                    }
                    float m = feather_w(r - y, q - x, rh, rw, feather, y != 0, y + rh < H,
                                       x != 0, x + rw < W);
                    want[i] = s * m + to[i] * (1.0f - m);
                }
    float *got = dl(l->samples);
    gt_compare(what, got, want, 2 * 4 * H * W, 1e-6f, 1e-6f);
    free(got);
    free(want);
    free(to);
    free(from);
}

static void test_composite(void)
{
    check_composite(12, 12, 6, 6, 2, 5, 2, "composite feather inside");
    check_composite(12, 10, 6, 6, 0, 0, 2, "composite feather at the corner");
    check_composite(12, 10, 6, 6, 7, 9, 0, "composite clipped, no feather");
    check_composite(9, 9, 5, 7, 3, 2, 1, "composite clipped, feather");

    /* LatentCompositeMasked: a mask of the source size (bilinear identity) */
    RUN_OK("{\"1\":" LAT(21, 2, 4, 10, 10) ",\"2\":" LAT(22, 1, 4, 4, 6) ","
           "\"3\":{\"class_type\":\"TestMask\",\"inputs\":{\"seed\":23,\"b\":1,\"c\":1,\"h\":4,"
           "\"w\":6}},\"4\":{\"class_type\":\"LatentCompositeMasked\",\"inputs\":{\"destination\":"
           "[\"1\",0],\"source\":[\"2\",0],\"x\":56,\"y\":16,\"resize_source\":false,"
           "\"mask\":[\"3\",0]}},\"5\":{\"class_type\":\"CapLatent\",\"inputs\":{\"v\":[\"4\",0],"
           "\"slot\":0}}}");
    const vkf_latent *l = cap_latent(0);
    CHECK(l && shape_is(l->samples, 4, 2, 4, 10, 10));
    if (l && shape_is(l->samples, 4, 2, 4, 10, 10)) {
        float *d = gen_array(21, 800, false), *s = gen_array(22, 96, false);
        float *m = gen_array(23, 24, true), *got = dl(l->samples);
        float want[800];
        for (int b = 0; b < 2; b++)
            for (int c = 0; c < 4; c++)
                for (int y = 0; y < 10; y++)
                    for (int x = 0; x < 10; x++) {
                        int i = ((b * 4 + c) * 10 + y) * 10 + x;
                        int sy = y - 2, sx = x - 7;
                        want[i] = d[i];
                        if (sy >= 0 && sy < 4 && sx >= 0 && sx < 6) {
                            float mv = m[sy * 6 + sx];
                            want[i] = mv * s[(c * 4 + sy) * 6 + sx] + (1.0f - mv) * d[i];
                        }
                    }
        gt_compare("LatentCompositeMasked", got, want, 800, 1e-6f, 1e-6f);
        free(d);
        free(s);
        free(m);
        free(got);
    }
    /* resize_source without a mask: the whole destination is the resized source */
    RUN_OK("{\"1\":" LAT(24, 1, 4, 8, 8) ",\"2\":" LAT(25, 1, 4, 4, 4) ","
           "\"4\":{\"class_type\":\"LatentCompositeMasked\",\"inputs\":{\"destination\":"
           "[\"1\",0],\"source\":[\"2\",0],\"x\":0,\"y\":0,\"resize_source\":true}},"
           "\"5\":{\"class_type\":\"CapLatent\",\"inputs\":{\"v\":[\"4\",0],\"slot\":0}}}");
    l = cap_latent(0);
    CHECK(l && shape_is(l->samples, 4, 1, 4, 8, 8));
    if (l && shape_is(l->samples, 4, 1, 4, 8, 8)) {
        float *s = gen_array(25, 64, false), want[256], *got = dl(l->samples);
        ref_bilinear(s, 4, 4, 4, 8, 8, want);
        gt_compare("LatentCompositeMasked resize_source", got, want, 256, 1e-5f, 1e-6f);
        free(s);
        free(got);
    }
}

static void test_blend_and_batches(void)
{
    RUN_OK("{\"1\":" LAT(31, 2, 4, 5, 6) ",\"2\":" LAT(32, 2, 4, 5, 6) ","
           "\"3\":{\"class_type\":\"LatentBlend\",\"inputs\":{\"samples1\":[\"1\",0],"
           "\"samples2\":[\"2\",0],\"blend_factor\":0.3}},\"4\":{\"class_type\":\"CapLatent\","
           "\"inputs\":{\"v\":[\"3\",0],\"slot\":0}}}");
    const vkf_latent *l = cap_latent(0);
    CHECK(l && shape_is(l->samples, 4, 2, 4, 5, 6));
    if (l && shape_is(l->samples, 4, 2, 4, 5, 6)) {
        float *a = gen_array(31, 240, false), *b = gen_array(32, 240, false), want[240];
        for (int i = 0; i < 240; i++)
            want[i] = a[i] * 0.3f + b[i] * (float)(1.0 - 0.3);
        float *got = dl(l->samples);
        gt_compare("LatentBlend", got, want, 240, 1e-6f, 1e-7f);
        free(a);
        free(b);
        free(got);
    }

    /* FromBatch(1, 2) of a 4-batch with a 2-batch noise mask, then Repeat ×3 */
    RUN_OK("{\"1\":" LAT(41, 4, 4, 3, 5) ",\"2\":{\"class_type\":\"TestMask\",\"inputs\":"
           "{\"seed\":42,\"b\":2,\"c\":1,\"h\":24,\"w\":40}},\"3\":{\"class_type\":"
           "\"SetLatentNoiseMask\",\"inputs\":{\"samples\":[\"1\",0],\"mask\":[\"2\",0]}},"
           "\"4\":{\"class_type\":\"LatentFromBatch\",\"inputs\":{\"samples\":[\"3\",0],"
           "\"batch_index\":1,\"length\":2}},\"5\":{\"class_type\":\"RepeatLatentBatch\","
           "\"inputs\":{\"samples\":[\"4\",0],\"amount\":3}},"
           "\"6\":{\"class_type\":\"CapLatent\",\"inputs\":{\"v\":[\"3\",0],\"slot\":0}},"
           "\"7\":{\"class_type\":\"CapLatent\",\"inputs\":{\"v\":[\"4\",0],\"slot\":1}},"
           "\"8\":{\"class_type\":\"CapLatent\",\"inputs\":{\"v\":[\"5\",0],\"slot\":2}},"
           "\"9\":{\"class_type\":\"LatentFromBatch\",\"inputs\":{\"samples\":[\"1\",0],"
           "\"batch_index\":63,\"length\":5}},"
           "\"10\":{\"class_type\":\"CapLatent\",\"inputs\":{\"v\":[\"9\",0],\"slot\":3}}}");
    const vkf_latent *nm = cap_latent(0), *fb = cap_latent(1), *rp = cap_latent(2),
                     *last = cap_latent(3);
    CHECK(nm && shape_is(nm->noise_mask, 4, 2, 1, 24, 40));
    CHECK(fb && shape_is(fb->samples, 4, 2, 4, 3, 5) && shape_is(fb->noise_mask, 4, 2, 1, 24, 40));
    CHECK(fb && fb->nb_batch_index == 2 && fb->batch_index[0] == 1 && fb->batch_index[1] == 2);
    if (fb && fb->samples && fb->noise_mask) {
        float *x = gen_array(41, 4 * 60, false), *m = gen_array(42, 2 * 960, true);
        float *gs = dl(fb->samples), *gm = dl(fb->noise_mask);
        CHECK(!memcmp(gs, x + 60, sizeof(float) * 120));
        /* masks repeated to the batch: rows 1 % 2 and 2 % 2 */
        CHECK(!memcmp(gm, m + 960, sizeof(float) * 960));
        CHECK(!memcmp(gm + 960, m, sizeof(float) * 960));
        free(x);
        free(m);
        free(gs);
        free(gm);
    }
    CHECK(rp && shape_is(rp->samples, 4, 6, 4, 3, 5) && shape_is(rp->noise_mask, 4, 6, 1, 24, 40));
    CHECK(rp && rp->nb_batch_index == 6);
    for (int i = 0; rp && i < 6 && rp->nb_batch_index == 6; i++)
        CHECK(rp->batch_index[i] == 1 + i);
    /* batch_index past the end is clamped to the last sample */
    CHECK(last && shape_is(last->samples, 4, 1, 4, 3, 5) && last->nb_batch_index == 1 &&
          last->batch_index[0] == 3);

    /* LatentBatch: a 1-batch and a 2-batch of another size (bilinear to fit) */
    RUN_OK("{\"1\":" LAT(51, 1, 4, 6, 6) ",\"2\":" LAT(52, 2, 4, 3, 3) ","
           "\"3\":{\"class_type\":\"LatentBatch\",\"inputs\":{\"samples1\":[\"1\",0],"
           "\"samples2\":[\"2\",0]}},\"4\":{\"class_type\":\"CapLatent\",\"inputs\":{\"v\":"
           "[\"3\",0],\"slot\":0}}}");
    l = cap_latent(0);
    CHECK(l && shape_is(l->samples, 4, 3, 4, 6, 6) && l->nb_batch_index == 3);
    if (l && shape_is(l->samples, 4, 3, 4, 6, 6) && l->nb_batch_index == 3) {
        CHECK(l->batch_index[0] == 0 && l->batch_index[1] == 0 && l->batch_index[2] == 1);
        float *a = gen_array(51, 144, false), *b = gen_array(52, 72, false);
        float want[432], *got = dl(l->samples);
        memcpy(want, a, sizeof(float) * 144);
        ref_bilinear(b, 8, 3, 3, 6, 6, want + 144);
        gt_compare("LatentBatch", got, want, 432, 1e-5f, 1e-6f);
        free(a);
        free(b);
        free(got);
    }
}

static void write_legacy_latent(const char *path, const float *data)
{
    vkf_st_writer *w = NULL;
    CHECK_OK(vkf_st_writer_create(0, &w));
    CHECK_OK(vkf_st_writer_add_data(w, "latent_tensor", VKF_WDT_F32, 4,
                                    (int64_t[]){1, 4, 2, 3}, data));
    CHECK_OK(vkf_st_writer_save(w, path, NULL));
    vkf_st_writer_destroy(&w);
}

static void test_save_load(void)
{
    /* twice (the cache cleared in between): the counter goes on */
    for (int k = 0; k < 2; k++, vkf_executor_clear_cache(ex))
        RUN_OK("{\"1\":" LAT(61, 2, 4, 3, 5) ",\"2\":{\"class_type\":\"SaveLatent\",\"inputs\":"
               "{\"samples\":[\"1\",0],\"filename_prefix\":\"latents/test\"}}}");
    char p1[600], p2[600], dst[600];
    snprintf(p1, sizeof(p1), "%s/latents/test_00001_.latent", out_dir);
    snprintf(p2, sizeof(p2), "%s/latents/test_00002_.latent", out_dir);
    struct stat st;
    CHECK(stat(p1, &st) == 0 && stat(p2, &st) == 0);
    vkf_weights *w = NULL;
    CHECK(vkf_weights_open(p1, &w, NULL) == 0);
    if (w) {
        const vkf_weight_info *t = vkf_weights_find(w, "latent_tensor");
        const vkf_weight_info *v = vkf_weights_find(w, "latent_format_version_0");
        CHECK(t && t->dtype == VKF_WDT_F32 && t->ndim == 4 && t->shape[0] == 2 &&
              t->shape[3] == 5);
        CHECK(v && v->ndim == 1 && v->shape[0] == 0);
        CHECK(vkf_weights_metadata_get(w, "prompt") != NULL);
        vkf_weights_close(&w);
    }
    /* LoadLatent from the input directory: exact round trip */
    snprintf(dst, sizeof(dst), "%s/saved.latent", in_dir);
    CHECK(rename(p1, dst) == 0);
    RUN_OK("{\"1\":{\"class_type\":\"LoadLatent\",\"inputs\":{\"latent\":\"saved.latent\"}},"
           "\"2\":{\"class_type\":\"CapLatent\",\"inputs\":{\"v\":[\"1\",0],\"slot\":0}}}");
    const vkf_latent *l = cap_latent(0);
    CHECK(l && shape_is(l->samples, 4, 2, 4, 3, 5));
    if (l && shape_is(l->samples, 4, 2, 4, 3, 5)) {
        float *x = gen_array(61, 120, false), *got = dl(l->samples);
        CHECK(!memcmp(x, got, sizeof(float) * 120));
        free(x);
        free(got);
    }
    /* a file without the version marker is scaled by 1 / 0.18215 */
    float legacy[24];
    for (int i = 0; i < 24; i++)
        legacy[i] = gen(62, i);
    snprintf(dst, sizeof(dst), "%s/old.latent", in_dir);
    write_legacy_latent(dst, legacy);
    RUN_OK("{\"1\":{\"class_type\":\"LoadLatent\",\"inputs\":{\"latent\":\"old.latent\"}},"
           "\"2\":{\"class_type\":\"CapLatent\",\"inputs\":{\"v\":[\"1\",0],\"slot\":0}}}");
    l = cap_latent(0);
    CHECK(l && shape_is(l->samples, 4, 1, 4, 2, 3));
    if (l && shape_is(l->samples, 4, 1, 4, 2, 3)) {
        float want[24], *got = dl(l->samples);
        for (int i = 0; i < 24; i++)
            want[i] = legacy[i] * (float)(1.0 / 0.18215);
        gt_compare("legacy latent scaling", got, want, 24, 1e-6f, 0);
        free(got);
    }
    /* a missing file fails validation with ComfyUI's message */
    char *msg = NULL;
    CHECK(run("{\"1\":{\"class_type\":\"LoadLatent\",\"inputs\":{\"latent\":\"nope.latent\"}},"
              "\"2\":{\"class_type\":\"CapLatent\",\"inputs\":{\"v\":[\"1\",0],\"slot\":0}}}",
              &msg) == VKF_EVALIDATION);
    vkf_free(msg);
}

#define COND(seed, p, t, d)                                                   \
    "{\"class_type\":\"TestCond\",\"inputs\":{\"seed\":" #seed ",\"b\":1,\"c\":" #p \
    ",\"h\":" #t ",\"w\":" #d "}}"

static void test_cond_fields(void)
{
    RUN_OK("{\"1\":" COND(71, 8, 77, 16) ","
           "\"2\":{\"class_type\":\"ConditioningSetArea\",\"inputs\":{\"conditioning\":[\"1\",0],"
           "\"width\":200,\"height\":100,\"x\":24,\"y\":40,\"strength\":2.5}},"
           "\"3\":{\"class_type\":\"ConditioningSetAreaPercentage\",\"inputs\":{\"conditioning\":"
           "[\"1\",0],\"width\":0.5,\"height\":0.25,\"x\":0.1,\"y\":0.2,\"strength\":0.75}},"
           "\"4\":{\"class_type\":\"ConditioningSetAreaStrength\",\"inputs\":{\"conditioning\":"
           "[\"2\",0],\"strength\":3.0}},"
           "\"5\":{\"class_type\":\"ConditioningSetTimestepRange\",\"inputs\":{\"conditioning\":"
           "[\"1\",0],\"start\":0.2,\"end\":0.8}},"
           "\"6\":{\"class_type\":\"ConditioningCombine\",\"inputs\":{\"conditioning_1\":[\"2\",0],"
           "\"conditioning_2\":[\"5\",0]}},"
           "\"7\":{\"class_type\":\"TestMask\",\"inputs\":{\"seed\":1,\"b\":1,\"c\":1,\"h\":8,\"w\":8}},"
           "\"8\":{\"class_type\":\"ConditioningSetMask\",\"inputs\":{\"conditioning\":[\"1\",0],"
           "\"mask\":[\"7\",0],\"strength\":0.6,\"set_cond_area\":\"mask bounds\"}},"
           "\"10\":{\"class_type\":\"CapCond\",\"inputs\":{\"v\":[\"2\",0],\"slot\":0}},"
           "\"11\":{\"class_type\":\"CapCond\",\"inputs\":{\"v\":[\"3\",0],\"slot\":1}},"
           "\"12\":{\"class_type\":\"CapCond\",\"inputs\":{\"v\":[\"4\",0],\"slot\":2}},"
           "\"13\":{\"class_type\":\"CapCond\",\"inputs\":{\"v\":[\"5\",0],\"slot\":3}},"
           "\"14\":{\"class_type\":\"CapCond\",\"inputs\":{\"v\":[\"6\",0],\"slot\":4}},"
           "\"15\":{\"class_type\":\"CapCond\",\"inputs\":{\"v\":[\"8\",0],\"slot\":5}},"
           "\"16\":{\"class_type\":\"CapCond\",\"inputs\":{\"v\":[\"1\",0],\"slot\":6}}}");
    vkf_conditioning *a = cap_cond(0), *p = cap_cond(1), *s = cap_cond(2), *r = cap_cond(3),
                     *c = cap_cond(4), *m = cap_cond(5), *orig = cap_cond(6);
    CHECK(a && a->n == 1 && a->e[0].has_area && !a->e[0].area_is_percent);
    if (a && a->n == 1) {
        /* (h/8, w/8, y/8, x/8) with integer division */
        CHECK(a->e[0].area[0] == 12 && a->e[0].area[1] == 25 && a->e[0].area[2] == 5 &&
              a->e[0].area[3] == 3);
        CHECK(a->e[0].strength == 2.5f && !a->e[0].set_area_to_bounds);
        CHECK(a->e[0].cond == orig->e[0].cond && a->e[0].pooled == orig->e[0].pooled);
    }
    CHECK(p && p->n == 1 && p->e[0].has_area && p->e[0].area_is_percent);
    if (p && p->n == 1)
        CHECK(p->e[0].area[0] == 0.25 && p->e[0].area[1] == 0.5 && p->e[0].area[2] == 0.2 &&
              p->e[0].area[3] == 0.1 && p->e[0].strength == 0.75f);
    CHECK(s && s->n == 1 && s->e[0].strength == 3.0f && s->e[0].area[1] == 25);
    CHECK(r && r->n == 1 && r->e[0].start_percent == 0.2 && r->e[0].end_percent == 0.8);
    CHECK(orig && orig->e[0].start_percent == 0.0 && orig->e[0].end_percent == 1.0 &&
          !orig->e[0].has_area);
    CHECK(c && c->n == 2 && c->e[0].has_area && c->e[1].end_percent == 0.8 && !c->e[1].has_area);
    CHECK(m && m->n == 1 && m->e[0].set_area_to_bounds && m->e[0].mask_strength == 0.6f &&
          shape_is(m->e[0].mask, 3, 1, 8, 8, 0));
}

static void test_cond_math(void)
{
    /* Average: to 77 tokens, from 154 (cut) and from 40 (zero-padded) */
    RUN_OK("{\"1\":" COND(81, 8, 77, 16) ",\"2\":" COND(82, 8, 154, 16) ",\"3\":" COND(83, 1, 40, 16) ","
           "\"4\":{\"class_type\":\"ConditioningAverage\",\"inputs\":{\"conditioning_to\":[\"1\",0],"
           "\"conditioning_from\":[\"2\",0],\"conditioning_to_strength\":0.25}},"
           "\"5\":{\"class_type\":\"ConditioningAverage\",\"inputs\":{\"conditioning_to\":[\"1\",0],"
           "\"conditioning_from\":[\"3\",0],\"conditioning_to_strength\":0.75}},"
           "\"6\":{\"class_type\":\"ConditioningConcat\",\"inputs\":{\"conditioning_to\":[\"1\",0],"
           "\"conditioning_from\":[\"3\",0]}},"
           "\"7\":{\"class_type\":\"ConditioningZeroOut\",\"inputs\":{\"conditioning\":[\"1\",0]}},"
           "\"10\":{\"class_type\":\"CapCond\",\"inputs\":{\"v\":[\"4\",0],\"slot\":0}},"
           "\"11\":{\"class_type\":\"CapCond\",\"inputs\":{\"v\":[\"5\",0],\"slot\":1}},"
           "\"12\":{\"class_type\":\"CapCond\",\"inputs\":{\"v\":[\"6\",0],\"slot\":2}},"
           "\"13\":{\"class_type\":\"CapCond\",\"inputs\":{\"v\":[\"7\",0],\"slot\":3}}}");
    float *t = gen_array(81, 77 * 16, false), *f1 = gen_array(82, 154 * 16, false);
    float *f2 = gen_array(83, 40 * 16, false), *pt = gen_array(82, 8, false);
    float *pf = gen_array(83, 8, false);
    vkf_conditioning *a = cap_cond(0), *b = cap_cond(1), *c = cap_cond(2), *z = cap_cond(3);
    CHECK(a && a->n == 1 && shape_is(a->e[0].cond, 3, 1, 77, 16, 0) &&
          shape_is(a->e[0].pooled, 2, 1, 8, 0, 0));
    if (a && shape_is(a->e[0].cond, 3, 1, 77, 16, 0) && a->e[0].pooled) {
        float want[77 * 16], wp[8], *got = dl(a->e[0].cond), *gp = dl(a->e[0].pooled);
        float *p1 = gen_array(82, 8, false), *p2 = gen_array(83, 8, false);
        for (int i = 0; i < 77 * 16; i++)
            want[i] = t[i] * 0.25f + f1[i] * 0.75f;
        /* pooled: to's (seed 82) and from's (seed 83) */
        for (int i = 0; i < 8; i++)
            wp[i] = p1[i] * 0.25f + p2[i] * 0.75f;
        gt_compare("ConditioningAverage cut", got, want, 77 * 16, 1e-6f, 1e-7f);
        gt_compare("ConditioningAverage pooled", gp, wp, 8, 1e-6f, 1e-7f);
        free(got);
        free(gp);
        free(p1);
        free(p2);
    }
    /* from without pooled: to's pooled is kept */
    CHECK(b && b->n == 1 && shape_is(b->e[0].cond, 3, 1, 77, 16, 0));
    if (b && shape_is(b->e[0].cond, 3, 1, 77, 16, 0)) {
        float want[77 * 16], *got = dl(b->e[0].cond);
        for (int i = 0; i < 77 * 16; i++)
            want[i] = t[i] * 0.75f + (i < 40 * 16 ? f2[i] : 0.0f) * (float)(1.0 - 0.75);
        gt_compare("ConditioningAverage padded", got, want, 77 * 16, 1e-6f, 1e-7f);
        float *gp = b->e[0].pooled ? dl(b->e[0].pooled) : NULL;
        CHECK(gp && !memcmp(gp, pt, sizeof(float) * 8));
        free(gp);
        free(got);
    }
    CHECK(c && c->n == 1 && shape_is(c->e[0].cond, 3, 1, 117, 16, 0));
    if (c && shape_is(c->e[0].cond, 3, 1, 117, 16, 0)) {
        float *got = dl(c->e[0].cond);
        CHECK(!memcmp(got, t, sizeof(float) * 77 * 16) &&
              !memcmp(got + 77 * 16, f2, sizeof(float) * 40 * 16));
        free(got);
    }
    CHECK(z && z->n == 1 && shape_is(z->e[0].cond, 3, 1, 77, 16, 0) &&
          shape_is(z->e[0].pooled, 2, 1, 8, 0, 0));
    if (z && z->e[0].cond && z->e[0].pooled) {
        float *g1 = dl(z->e[0].cond), *g2 = dl(z->e[0].pooled);
        bool zero = true;
        for (int i = 0; i < 77 * 16; i++)
            zero &= g1[i] == 0.0f;
        for (int i = 0; i < 8; i++)
            zero &= g2[i] == 0.0f;
        CHECK(zero);
        free(g1);
        free(g2);
    }
    free(t);
    free(f1);
    free(f2);
    free(pt);
    free(pf);
}

static void test_inpaint(void)
{
    /* 20x19 image (crop offsets 2 and 1 to 16x16), a 10x10 mask */
    fake_encode_calls = 0;
    RUN_OK("{\"1\":" COND(91, 1, 77, 8) ",\"2\":" COND(92, 1, 77, 8) ","
           "\"3\":{\"class_type\":\"TestVAE\",\"inputs\":{}},"
           "\"4\":{\"class_type\":\"TestImage\",\"inputs\":{\"seed\":93,\"b\":1,\"c\":3,\"h\":20,"
           "\"w\":19}},\"5\":{\"class_type\":\"TestMask\",\"inputs\":{\"seed\":94,\"b\":1,\"c\":1,"
           "\"h\":10,\"w\":10}},\"6\":{\"class_type\":\"InpaintModelConditioning\",\"inputs\":"
           "{\"positive\":[\"1\",0],\"negative\":[\"2\",0],\"vae\":[\"3\",0],\"pixels\":[\"4\",0],"
           "\"mask\":[\"5\",0],\"noise_mask\":true}},"
           "\"7\":{\"class_type\":\"CapCond\",\"inputs\":{\"v\":[\"6\",0],\"slot\":0}},"
           "\"8\":{\"class_type\":\"CapCond\",\"inputs\":{\"v\":[\"6\",1],\"slot\":1}},"
           "\"9\":{\"class_type\":\"CapLatent\",\"inputs\":{\"v\":[\"6\",2],\"slot\":2}}}");
    CHECK(fake_encode_calls == 2);
    vkf_conditioning *pos = cap_cond(0), *neg = cap_cond(1);
    const vkf_latent *l = cap_latent(2);
    CHECK(pos && neg && l && pos->n == 1 && neg->n == 1);
    if (!pos || !neg || !l || !pos->e[0].concat_latent_image)
        return;
    CHECK(pos->e[0].concat_latent_image == neg->e[0].concat_latent_image);
    CHECK(pos->e[0].concat_mask == l->noise_mask);
    CHECK(shape_is(l->samples, 4, 1, 3, 2, 2) && shape_is(l->noise_mask, 4, 1, 1, 16, 16));
    CHECK(shape_is(pos->e[0].concat_latent_image, 4, 1, 3, 2, 2));
    /* expectations: mask bilinear 10x10 → 20x19, crop [2:18, 1:17] */
    float *img = gen_array(93, 20 * 19 * 3, true), *mask = gen_array(94, 100, true);
    float big[20 * 19], m[256], masked[256 * 3];
    ref_bilinear(mask, 1, 10, 10, 20, 19, big);
    for (int y = 0; y < 16; y++)
        for (int x = 0; x < 16; x++)
            m[y * 16 + x] = big[(y + 2) * 19 + x + 1];
    float *gm = dl(l->noise_mask);
    gt_compare("inpaint noise_mask", gm, m, 256, 1e-5f, 1e-6f);
    free(gm);
    float lat_orig[12] = {0}, lat_masked[12] = {0};
    for (int y = 0; y < 16; y++)
        for (int x = 0; x < 16; x++) {
            float keep = 1.0f - nearbyintf(m[y * 16 + x]);
            for (int c = 0; c < 3; c++) {
                float p = img[((y + 2) * 19 + x + 1) * 3 + c];
                masked[(y * 16 + x) * 3 + c] = (p - 0.5f) * keep + 0.5f;
                lat_orig[(c * 2 + y / 8) * 2 + x / 8] += (p * 2 - 1) / 64.0f;
                lat_masked[(c * 2 + y / 8) * 2 + x / 8] +=
                    (masked[(y * 16 + x) * 3 + c] * 2 - 1) / 64.0f;
            }
        }
    float *go = dl(l->samples), *gc = dl(pos->e[0].concat_latent_image);
    gt_compare("inpaint orig latent", go, lat_orig, 12, 1e-5f, 1e-5f);
    gt_compare("inpaint concat latent", gc, lat_masked, 12, 1e-4f, 1e-4f);
    free(go);
    free(gc);
    free(img);
    free(mask);
    /* noise_mask false: no noise mask on the latent, conds still get it */
    RUN_OK("{\"1\":" COND(91, 1, 77, 8) ",\"3\":{\"class_type\":\"TestVAE\",\"inputs\":{}},"
           "\"4\":{\"class_type\":\"TestImage\",\"inputs\":{\"seed\":93,\"b\":1,\"c\":3,\"h\":16,"
           "\"w\":16}},\"5\":{\"class_type\":\"TestMask\",\"inputs\":{\"seed\":94,\"b\":1,\"c\":1,"
           "\"h\":16,\"w\":16}},\"6\":{\"class_type\":\"InpaintModelConditioning\",\"inputs\":"
           "{\"positive\":[\"1\",0],\"negative\":[\"1\",0],\"vae\":[\"3\",0],\"pixels\":[\"4\",0],"
           "\"mask\":[\"5\",0],\"noise_mask\":false}},"
           "\"7\":{\"class_type\":\"CapCond\",\"inputs\":{\"v\":[\"6\",0],\"slot\":0}},"
           "\"9\":{\"class_type\":\"CapLatent\",\"inputs\":{\"v\":[\"6\",2],\"slot\":2}}}");
    CHECK(cap_latent(2) && !cap_latent(2)->noise_mask && cap_cond(0) &&
          shape_is(cap_cond(0)->e[0].concat_mask, 4, 1, 1, 16, 16));
}

static void test_weight_formula(void)
{
    /* 2 chunks of width 5: weight 1 rows stay bit-identical */
    enum { D = 5 };
    float *z = gen_array(101, 2 * 77 * D, false), *orig = malloc(sizeof(float) * 2 * 77 * D);
    float *e = gen_array(102, 77 * D, false), w[2 * 77];
    memcpy(orig, z, sizeof(float) * 2 * 77 * D);
    for (int i = 0; i < 2 * 77; i++)
        w[i] = i % 7 == 3 ? 1.1f : i % 11 == 5 ? 0.5f : 1.0f;
    vkf_clip_apply_weights(z, 2, D, w, e);
    bool same = true;
    int changed = 0;
    for (int i = 0; i < 2 * 77; i++) {
        for (int d = 0; d < D; d++) {
            float got = z[i * D + d], o = orig[i * D + d], em = e[(i % 77) * D + d];
            if (w[i] == 1.0f) {
                same &= !memcmp(&got, &o, sizeof(float));
            } else {
                double want = ((double)o - em) * w[i] + em;
                CHECK(fabs(got - want) <= 1e-6 * (1 + fabs(want)));
                changed += got != o;
            }
        }
    }
    CHECK(same && changed > 0);
    free(z);
    free(orig);
    free(e);
}

static void expect_error(const char *json, const char *needle)
{
    char *msg = NULL;
    int err = run(json, &msg);
    CHECK(err == VKF_ERUN);
    CHECK(msg && strstr(msg, needle));
    if (!msg || !strstr(msg, needle))
        fprintf(stderr, "message: %s (wanted '%s')\n", msg ? msg : "(none)", needle);
    vkf_free(msg);
}

static void test_errors(void)
{
    /* mismatched channels, batch sizes and widths name the problem */
    expect_error("{\"1\":" LAT(1, 1, 4, 8, 8) ",\"2\":" LAT(2, 1, 3, 4, 4) ","
                 "\"3\":{\"class_type\":\"LatentComposite\",\"inputs\":{\"samples_to\":[\"1\",0],"
                 "\"samples_from\":[\"2\",0],\"x\":0,\"y\":0,\"feather\":0}},"
                 "\"4\":{\"class_type\":\"CapLatent\",\"inputs\":{\"v\":[\"3\",0],\"slot\":0}}}",
                 "does not fit");
    expect_error("{\"1\":" LAT(1, 2, 4, 8, 8) ",\"2\":" LAT(2, 3, 4, 8, 8) ","
                 "\"3\":{\"class_type\":\"LatentBlend\",\"inputs\":{\"samples1\":[\"1\",0],"
                 "\"samples2\":[\"2\",0],\"blend_factor\":0.5}},"
                 "\"4\":{\"class_type\":\"CapLatent\",\"inputs\":{\"v\":[\"3\",0],\"slot\":0}}}",
                 "LatentBlend");
    expect_error("{\"1\":" COND(1, 1, 77, 16) ",\"2\":" COND(2, 1, 77, 8) ","
                 "\"3\":{\"class_type\":\"ConditioningConcat\",\"inputs\":{\"conditioning_to\":"
                 "[\"1\",0],\"conditioning_from\":[\"2\",0]}},"
                 "\"4\":{\"class_type\":\"CapCond\",\"inputs\":{\"v\":[\"3\",0],\"slot\":0}}}",
                 "differ in batch or width");
    expect_error("{\"1\":" COND(1, 1, 77, 16) ",\"2\":" COND(2, 1, 77, 8) ","
                 "\"3\":{\"class_type\":\"ConditioningAverage\",\"inputs\":{\"conditioning_to\":"
                 "[\"1\",0],\"conditioning_from\":[\"2\",0],\"conditioning_to_strength\":0.5}},"
                 "\"4\":{\"class_type\":\"CapCond\",\"inputs\":{\"v\":[\"3\",0],\"slot\":0}}}",
                 "width 16 and 8");
}

/* A synthesized tiny CLIP-L on the executor's device. */
static char clip_path[600];

static void make_test_clip(void)
{
    vkf_gpu *gpu = vkf_executor_gpu(ex);
    vkf_st_writer *w = NULL;
    vkf_weights *wt = NULL;
    vkf_clip_text *text = NULL;
    vkf_clip_tokenizer *tok = NULL;
    vkf_errbuf eb = {{0}};
    snprintf(clip_path, sizeof(clip_path), "%s/clip.safetensors", root);
    CHECK_OK(vkf_st_writer_create(7, &w));
    CHECK_OK(vkf_synth_clip_text(w, "", VKF_SYNTH_SD15, VKF_SYNTH_TINY, VKF_WDT_F32));
    CHECK_OK(vkf_st_writer_save(w, clip_path, &eb));
    vkf_st_writer_destroy(&w);
    CHECK_OK(vkf_weights_open(clip_path, &wt, &gt_log));
    if (vkf_clip_text_load(gpu, wt, "", &text, &eb) < 0) {
        fprintf(stderr, "clip load: %s\n", eb.msg);
        CHECK(0);
    }
    vkf_weights_close(&wt);
    CHECK_OK(vkf_clip_tokenizer_create(&tok));
    test_clip = text ? vkf_clip_new(tok, text, 0, true) : NULL;
    if (!test_clip)
        vkf_clip_tokenizer_destroy(&tok);
}

static void test_text_encode(void)
{
    if (!vkf_executor_gpu(ex))
        RUN_OK("{\"1\":" LAT(1, 1, 1, 1, 1) ",\"2\":{\"class_type\":\"CapLatent\",\"inputs\":"
               "{\"v\":[\"1\",0],\"slot\":7}}}");
    make_test_clip();
    if (!test_clip)
        return;
    const vkf_clip_text_config *cfg = vkf_clip_text_get_config(test_clip->text);
    int D = cfg->width;
    RUN_OK("{\"1\":{\"class_type\":\"TestCLIP\",\"inputs\":{}},"
           "\"2\":{\"class_type\":\"CLIPTextEncode\",\"inputs\":{\"text\":\"a photo of a (cat:1.3)\","
           "\"clip\":[\"1\",0]}},"
           "\"3\":{\"class_type\":\"CLIPTextEncode\",\"inputs\":{\"text\":\"a photo of a cat\","
           "\"clip\":[\"1\",0]}},"
           "\"4\":{\"class_type\":\"CLIPSetLastLayer\",\"inputs\":{\"clip\":[\"1\",0],"
           "\"stop_at_clip_layer\":-2}},"
           "\"5\":{\"class_type\":\"CLIPTextEncode\",\"inputs\":{\"text\":\"a photo of a cat\","
           "\"clip\":[\"4\",0]}},"
           "\"10\":{\"class_type\":\"CapCond\",\"inputs\":{\"v\":[\"2\",0],\"slot\":0}},"
           "\"11\":{\"class_type\":\"CapCond\",\"inputs\":{\"v\":[\"3\",0],\"slot\":1}},"
           "\"12\":{\"class_type\":\"CapCond\",\"inputs\":{\"v\":[\"5\",0],\"slot\":2}}}");
    vkf_conditioning *w = cap_cond(0), *plain = cap_cond(1), *pen = cap_cond(2);
    CHECK(w && plain && pen && w->n == 1 && shape_is(w->e[0].cond, 3, 1, 77, D, 0));
    if (!w || !plain || !pen || !w->e[0].cond || !plain->e[0].cond || !pen->e[0].cond)
        return;
    CHECK(w->e[0].pooled && vkf_tensor_ndim(w->e[0].pooled) == 2 &&
          vkf_tensor_shape(w->e[0].pooled)[0] == 1);
    /* Expected: encode [prompt, empty] directly, apply the formula. */
    vkf_clip_tokens tok = {0};
    vkf_clip_tokenize_params tp = {.pad_with_end = true, .embed_dim = D};
    CHECK_OK(vkf_clip_tokenize_weighted(test_clip->tok, "a photo of a (cat:1.3)", &tp, &tok));
    CHECK(tok.n_chunks == 1);
    vkf_clip_token both[2 * 77];
    memcpy(both, tok.tok, sizeof(vkf_clip_token) * 77);
    for (int j = 0; j < 77; j++)
        both[77 + j] = (vkf_clip_token){j == 0 ? VKF_CLIP_BOS : VKF_CLIP_EOS, 1.0f};
    vkf_clip_tokens t2 = {.n_chunks = 2, .tok = both};
    vkf_tensor *hidden = NULL, *pooled = NULL;
    CHECK_OK(vkf_clip_text_encode(test_clip->text, &t2, 0, &hidden, &pooled));
    float *h = dl(hidden), wts[77];
    for (int j = 0; j < 77; j++)
        wts[j] = tok.tok[j].weight;
    int weighted = 0;
    for (int j = 0; j < 77; j++)
        weighted += wts[j] != 1.0f;
    CHECK(weighted == 1);
    vkf_clip_apply_weights(h, 1, D, wts, h + 77 * D);
    float *got = dl(w->e[0].cond), *gp = dl(w->e[0].pooled), *wp = dl(pooled);
    gt_compare("CLIPTextEncode weighted", got, h, 77 * D, 1e-5f, 1e-5f);
    gt_compare("CLIPTextEncode pooled", gp, wp, vkf_tensor_numel(w->e[0].pooled), 1e-5f, 1e-5f);
    /* the weighted token differs from the unweighted prompt's, the rest match */
    float *gplain = dl(plain->e[0].cond), *gpen = dl(pen->e[0].cond);
    int diff_rows = 0;
    for (int j = 0; j < 77; j++)
        for (int d = 0; d < D; d++)
            if (fabsf(got[j * D + d] - gplain[j * D + d]) > 1e-4f) {
                diff_rows++;
                break;
            }
    CHECK(diff_rows == 1);
    /* CLIPSetLastLayer(-2) changes the result */
    int diff = 0;
    for (int i = 0; i < 77 * D; i++)
        diff += fabsf(gpen[i] - gplain[i]) > 1e-4f;
    CHECK(diff > 0);
    free(h);
    free(got);
    free(gp);
    free(wp);
    free(gplain);
    free(gpen);
    vkf_tensor_unref(&hidden);
    vkf_tensor_unref(&pooled);
    vkf_clip_tokens_free(&tok);
    /* CLIPSetLastLayer(-24) is deeper than the tiny model: the last layer */
    RUN_OK("{\"1\":{\"class_type\":\"TestCLIP\",\"inputs\":{}},"
           "\"4\":{\"class_type\":\"CLIPSetLastLayer\",\"inputs\":{\"clip\":[\"1\",0],"
           "\"stop_at_clip_layer\":-24}},"
           "\"5\":{\"class_type\":\"CLIPTextEncode\",\"inputs\":{\"text\":\"a photo of a cat\","
           "\"clip\":[\"4\",0]}},"
           "\"10\":{\"class_type\":\"CapCond\",\"inputs\":{\"v\":[\"5\",0],\"slot\":0}}}");
    CHECK(cfg->layers < 24);
    if (cap_cond(0) && cap_cond(0)->e[0].cond) {
        float *g = dl(cap_cond(0)->e[0].cond), *gl = dl(plain->e[0].cond);
        CHECK(!memcmp(g, gl, sizeof(float) * 77 * (size_t)D));
        free(g);
        free(gl);
    }
    /* embedding:name from the embeddings folder (an 'emb_params' file of
     * two vectors); an unknown name is dropped as ComfyUI does */
    char edir[700], epath[800];
    snprintf(edir, sizeof(edir), "%s/embeddings", root);
    mkdir(edir, 0755);
    snprintf(epath, sizeof(epath), "%s/myemb.safetensors", edir);
    float *ev = gen_array(111, 2 * D, false);
    vkf_st_writer *sw = NULL;
    CHECK_OK(vkf_st_writer_create(0, &sw));
    CHECK_OK(vkf_st_writer_add_data(sw, "emb_params", VKF_WDT_F32, 2, (int64_t[]){2, D}, ev));
    CHECK_OK(vkf_st_writer_save(sw, epath, NULL));
    vkf_st_writer_destroy(&sw);
    CHECK_OK(vkf_paths_add_folder_dir(paths, "embeddings", edir, false));
    RUN_OK("{\"1\":{\"class_type\":\"TestCLIP\",\"inputs\":{}},"
           "\"2\":{\"class_type\":\"CLIPTextEncode\",\"inputs\":{\"text\":\"a embedding:myemb cat\","
           "\"clip\":[\"1\",0]}},"
           "\"3\":{\"class_type\":\"CLIPTextEncode\",\"inputs\":{\"text\":\"a embedding:nothere cat\","
           "\"clip\":[\"1\",0]}},"
           "\"4\":{\"class_type\":\"CLIPTextEncode\",\"inputs\":{\"text\":\"a cat\","
           "\"clip\":[\"1\",0]}},"
           "\"10\":{\"class_type\":\"CapCond\",\"inputs\":{\"v\":[\"2\",0],\"slot\":0}},"
           "\"11\":{\"class_type\":\"CapCond\",\"inputs\":{\"v\":[\"3\",0],\"slot\":1}},"
           "\"12\":{\"class_type\":\"CapCond\",\"inputs\":{\"v\":[\"4\",0],\"slot\":2}}}");
    if (cap_cond(0) && cap_cond(1) && cap_cond(2) && cap_cond(0)->e[0].cond) {
        /* expected: the tokens a, <2 embedding rows>, cat encoded directly */
        vkf_clip_tokens et = {0};
        vkf_clip_tokenize_params ep = {.pad_with_end = true, .embed_dim = D};
        CHECK_OK(vkf_clip_tokenize_weighted(test_clip->tok, "a cat", &ep, &et));
        vkf_clip_token etok[77];
        etok[0] = et.tok[0];
        etok[1] = et.tok[1];
        etok[2] = (vkf_clip_token){-1, 1.0f};
        etok[3] = (vkf_clip_token){-2, 1.0f};
        for (int j = 4; j < 77; j++)
            etok[j] = et.tok[j - 2];
        vkf_clip_tokens e2 = {.n_chunks = 1, .tok = etok, .n_embeds = 2, .embed_dim = D,
                              .embeds = ev};
        vkf_tensor *eh = NULL;
        CHECK_OK(vkf_clip_text_encode(test_clip->text, &e2, 0, &eh, NULL));
        float *want = dl(eh), *g0 = dl(cap_cond(0)->e[0].cond);
        float *g1 = dl(cap_cond(1)->e[0].cond), *g2 = dl(cap_cond(2)->e[0].cond);
        gt_compare("embedding rows", g0, want, 77 * D, 1e-5f, 1e-5f);
        CHECK(!memcmp(g1, g2, sizeof(float) * 77 * (size_t)D));
        CHECK(memcmp(g0, g2, sizeof(float) * 77 * (size_t)D) != 0);
        free(want);
        free(g0);
        free(g1);
        free(g2);
        vkf_tensor_unref(&eh);
        vkf_clip_tokens_free(&et);
    }
    free(ev);
    /* a long prompt: two chunks → [1, 154, D] */
    char text[2400] = "";
    for (int i = 0; i < 90; i++)
        strcat(text, "cat ");
    char json[3000];
    snprintf(json, sizeof(json),
             "{\"1\":{\"class_type\":\"TestCLIP\",\"inputs\":{}},\"2\":{\"class_type\":"
             "\"CLIPTextEncode\",\"inputs\":{\"text\":\"%s\",\"clip\":[\"1\",0]}},"
             "\"10\":{\"class_type\":\"CapCond\",\"inputs\":{\"v\":[\"2\",0],\"slot\":0}}}",
             text);
    CHECK(run(json, NULL) == 0);
    CHECK(cap_cond(0) && shape_is(cap_cond(0)->e[0].cond, 3, 1, 154, D, 0));
}

int main(void)
{
    vkf_gpu *probe = gt_gpu_open((vkf_gpu_params){0});
    vkf_gpu_destroy(&probe);
    const char *v = getenv("VKF_VALIDATION");
    vkf_gpu_params gp = {.validation = !(v && !strcmp(v, "0")), .log = &gt_log};
    if (gp.validation && vkf_gpu_create(&gp, &probe) == VKF_EUNSUPPORTED)
        gp.validation = false;
    vkf_gpu_destroy(&probe);

    snprintf(root, sizeof(root), "/tmp/vkf-condlat-XXXXXX");
    CHECK_OK(mkdtemp(root) ? 0 : VKF_EIO);
    snprintf(in_dir, sizeof(in_dir), "%s/input", root);
    snprintf(out_dir, sizeof(out_dir), "%s/output", root);
    mkdir(in_dir, 0755);
    mkdir(out_dir, 0755);
    CHECK_OK(vkf_paths_create(&paths, &gt_log));
    CHECK_OK(vkf_paths_set_input_dir(paths, in_dir));
    CHECK_OK(vkf_paths_set_output_dir(paths, out_dir));
    CHECK_OK(vkf_registry_create(&reg));
    const vkf_node_def *defs[] = {&src_latent_def, &src_mask_def, &src_image_def, &src_cond_def,
                                  &src_vae_def,    &src_clip_def, &cap_latent_def, &cap_cond_def};
    for (size_t i = 0; i < VKF_ARRAY_SIZE(defs); i++)
        CHECK_OK(vkf_registry_add(reg, defs[i]));
    vkf_executor_params p = {.registry = reg, .paths = paths, .log = &gt_log, .gpu_params = &gp};
    CHECK_OK(vkf_executor_create(&ex, &p));

    test_empty_latent();
    test_upscale();
    test_composite();
    test_blend_and_batches();
    test_save_load();
    test_cond_fields();
    test_cond_math();
    test_inpaint();
    test_weight_formula();
    test_errors();
    test_text_encode();

    for (size_t i = 0; i < VKF_ARRAY_SIZE(captured); i++)
        vkf_value_clear(&captured[i]);
    if (test_clip) {
        vkf_object *o = &test_clip->obj;
        vkf_object_unref(&o);
    }
    vkf_gpu *gpu = vkf_executor_gpu(ex);
    CHECK(gpu && vkf_gpu_validation_messages(gpu) == 0);
    vkf_executor_destroy(&ex);
    vkf_registry_destroy(&reg);
    vkf_paths_destroy(&paths);
    CHECK(vkf_alloc_live() == 0);
    if (!gt_failures) {
        char cmd[400];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
        CHECK(system(cmd) == 0);
    } else {
        fprintf(stderr, "%d check(s) failed; files left in %s\n", gt_failures, root);
    }
    return gt_failures ? 1 : 0;
}
