/*
 * The image and mask nodes (nodes/image_nodes.c, nodes/mask_nodes.c)
 * through the executor: ComfyUI's input tables (names, defaults, ranges),
 * output shapes, the edge cases of each node (keep-aspect sizes, clamped
 * crops, FeatherMask's quirks, MaskComposite clipping and batches, alpha
 * handling) and errors that name the offending input.  Test data comes
 * from two source nodes that upload host arrays.
 */
#include <libavcodec/avcodec.h>
#include <png.h>
#include <sys/stat.h>

#include "../gpu/gpu_test.h"
#include "graph/internal.h"
#include "vkflow/types.h"
#include "vkflow/vkflow.h"

/* ---- sources and a capture node ------------------------------------------ */

typedef struct host_t {
    int nd;
    int64_t shape[4];
    float *data;
} host_t;

static host_t src_img[4], src_mask[4];
static host_t got_img, got_mask;
static int captures;

static int upload(vkf_exec_ctx *ctx, const host_t *h, vkf_tensor **t)
{
    vkf_gpu *gpu;
    int err = vkf_exec_gpu(ctx, &gpu);
    if (err >= 0)
        err = vkf_tensor_create(gpu, VKF_DTYPE_F32, h->nd, h->shape, t);
    if (err >= 0 && (err = vkf_tensor_upload(*t, h->data)) < 0)
        vkf_tensor_unref(t);
    return err;
}

static int image_src_exec(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    vkf_tensor *t = NULL;
    int err = upload(ctx, &src_img[in[0].u.i], &t);
    return err < 0 ? err : vkf_value_set_image(out, t);
}

static int mask_src_exec(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    vkf_tensor *t = NULL;
    int err = upload(ctx, &src_mask[in[0].u.i], &t);
    return err < 0 ? err : vkf_value_set_mask(out, t);
}

static void grab(vkf_tensor *t, host_t *h)
{
    free(h->data);
    h->data = NULL;
    h->nd = 0;
    if (!t)
        return;
    h->nd = vkf_tensor_ndim(t);
    memcpy(h->shape, vkf_tensor_shape(t), sizeof(int64_t) * (size_t)h->nd);
    h->data = gt_download(t);
}

static int capture_exec(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    (void)ctx;
    (void)out;
    grab(vkf_value_image(&in[0]), &got_img);
    grab(vkf_value_mask(&in[1]), &got_mask);
    captures++;
    return 0;
}

/* IS_CHANGED = "always run": the host arrays change between runs. */
static int always_run(vkf_exec_ctx *ctx, const vkf_value *in, char **key)
{
    (void)ctx;
    (void)in;
    *key = NULL;
    return 0;
}

static const vkf_input_def src_inputs[] = {VKF_INPUT_INT("which", 0, 0, 3)};
static const vkf_output_def img_out[] = {{.type = "IMAGE"}};
static const vkf_output_def msk_out[] = {{.type = "MASK"}};
static const vkf_input_def capture_inputs[] = {
    {.name = "image", .type = "IMAGE", .flags = VKF_IN_OPTIONAL},
    {.name = "mask", .type = "MASK", .flags = VKF_IN_OPTIONAL},
};
static const vkf_node_def image_src_def = {
    .name = "TestImage", .inputs = src_inputs, .nb_inputs = 1, .outputs = img_out,
    .nb_outputs = 1, .flags = VKF_NODE_NOT_IDEMPOTENT, .execute = image_src_exec,
    .fingerprint = always_run,
};
static const vkf_node_def mask_src_def = {
    .name = "TestMask", .inputs = src_inputs, .nb_inputs = 1, .outputs = msk_out,
    .nb_outputs = 1, .flags = VKF_NODE_NOT_IDEMPOTENT, .execute = mask_src_exec,
    .fingerprint = always_run,
};
static const vkf_node_def capture_def = {
    .name = "TestCapture", .inputs = capture_inputs, .nb_inputs = 2,
    .flags = VKF_NODE_OUTPUT | VKF_NODE_NOT_IDEMPOTENT, .execute = capture_exec,
};

/* ---- set-up ------------------------------------------------------------------ */

static char root[256], in_dir[300];
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
    int err = vkf_executor_run(ex, g, &val, run_error);
    if (err == VKF_EVALIDATION) {
        for (int i = 0; i < val.nb_node_errors; i++)
            for (int k = 0; k < val.node_errors[i].nb_errors; k++)
                fprintf(stderr, "validation: %s: %s\n", val.node_errors[i].errors[k].message,
                        val.node_errors[i].errors[k].details);
    }
    vkf_validation_clear(&val);
    vkf_graph_free(&g);
    return err;
}

/* Runs `node` (JSON inputs, may reference "10" = TestImage 0, "11" =
 * TestImage 1, "20" = TestMask 0, "21" = TestMask 1) and captures output
 * `slot` as an image or mask.  Returns the run's code. */
static int run_node(const char *node, const char *inputs, int slot, bool is_mask, char **msg)
{
    char json[4096];
    snprintf(json, sizeof(json),
             "{\"10\":{\"class_type\":\"TestImage\",\"inputs\":{\"which\":0}},"
             "\"11\":{\"class_type\":\"TestImage\",\"inputs\":{\"which\":1}},"
             "\"20\":{\"class_type\":\"TestMask\",\"inputs\":{\"which\":0}},"
             "\"21\":{\"class_type\":\"TestMask\",\"inputs\":{\"which\":1}},"
             "\"1\":{\"class_type\":\"%s\",\"inputs\":{%s}},"
             "\"2\":{\"class_type\":\"TestCapture\",\"inputs\":{\"%s\":[\"1\",%d]}}}",
             node, inputs, is_mask ? "mask" : "image", slot);
    captures = 0;
    int err = run(json, msg);
    if (err >= 0)
        CHECK(captures == 1);
    return err;
}

static void set_host(host_t *h, int nd, const int64_t *shape, float *data)
{
    free(h->data);
    h->nd = nd;
    memcpy(h->shape, shape, sizeof(int64_t) * (size_t)nd);
    h->data = data;
}

static bool shape_is(const host_t *h, int nd, int64_t a, int64_t b, int64_t c, int64_t d)
{
    int64_t w[4] = {a, b, c, d};
    if (h->nd != nd) {
        fprintf(stderr, "ndim %d, want %d\n", h->nd, nd);
        return false;
    }
    for (int i = 0; i < nd; i++)
        if (h->shape[i] != w[i]) {
            fprintf(stderr, "shape[%d] = %lld, want %lld\n", i, (long long)h->shape[i],
                    (long long)w[i]);
            return false;
        }
    return true;
}

/* Expects a run error containing both strings. */
static void expect_error(const char *node, const char *inputs, bool is_mask, const char *s1,
                         const char *s2)
{
    char *msg = NULL;
    int err = run_node(node, inputs, 0, is_mask, &msg);
    if (err != VKF_ERUN || !msg || !strstr(msg, s1) || (s2 && !strstr(msg, s2))) {
        fprintf(stderr, "%s: expected an error naming '%s': got %d '%s'\n", node, s1, err,
                msg ? msg : "");
        gt_failures++;
    }
    vkf_free(msg);
}

static void expect_ok(const char *node, const char *inputs, int slot, bool is_mask)
{
    char *msg = NULL;
    int err = run_node(node, inputs, slot, is_mask, &msg);
    if (err < 0) {
        fprintf(stderr, "%s {%s}: %d %s\n", node, inputs, err, msg ? msg : "");
        gt_failures++;
    }
    vkf_free(msg);
}

/* ---- the input tables ---------------------------------------------------------- */

static const vkf_input_def *find_input(const char *node, const char *name)
{
    const vkf_node_def *d = vkf_registry_find(reg, node);
    for (int i = 0; d && i < d->nb_inputs; i++)
        if (!strcmp(d->inputs[i].name, name))
            return &d->inputs[i];
    fprintf(stderr, "%s has no input %s\n", node, name);
    gt_failures++;
    return NULL;
}

static void check_int(const char *node, const char *name, int64_t def, int64_t mn, int64_t mx)
{
    const vkf_input_def *in = find_input(node, name);
    if (in && (strcmp(in->type, "INT") || in->idef != def || in->imin != mn || in->imax != mx)) {
        fprintf(stderr, "%s.%s: INT %lld [%lld, %lld]\n", node, name, (long long)in->idef,
                (long long)in->imin, (long long)in->imax);
        gt_failures++;
    }
}

static void check_float(const char *node, const char *name, double def, double mn, double mx)
{
    const vkf_input_def *in = find_input(node, name);
    if (in && (strcmp(in->type, "FLOAT") || in->fdef != def || in->fmin != mn || in->fmax != mx)) {
        fprintf(stderr, "%s.%s: FLOAT %g [%g, %g]\n", node, name, in->fdef, in->fmin, in->fmax);
        gt_failures++;
    }
}

static void check_combo(const char *node, const char *name, const char *joined)
{
    const vkf_input_def *in = find_input(node, name);
    char buf[512] = "";
    for (int i = 0; in && in->options && in->options[i]; i++) {
        strcat(buf, i ? "," : "");
        strcat(buf, in->options[i]);
    }
    if (in && strcmp(buf, joined)) {
        fprintf(stderr, "%s.%s: options %s, want %s\n", node, name, buf, joined);
        gt_failures++;
    }
}

static void test_tables(void)
{
    static const char *const names[] = {
        "LoadImageMask", "ImageScale", "ImageScaleBy", "ImageScaleToTotalPixels", "ImageInvert",
        "ImageBatch", "ImagePadForOutpaint", "ImageCrop", "ImageCompositeMasked", "ImageBlend",
        "ImageBlur", "ImageSharpen", "EmptyImage", "SolidMask", "InvertMask", "MaskToImage",
        "ImageToMask", "CropMask", "GrowMask", "FeatherMask", "ThresholdMask", "MaskComposite",
        "Canny",
    };
    for (size_t i = 0; i < VKF_ARRAY_SIZE(names); i++)
        CHECK(vkf_registry_find(reg, names[i]) != NULL);
    const char *methods = "nearest-exact,bilinear,area,bicubic,lanczos";
    check_combo("ImageScale", "upscale_method", methods);
    check_combo("ImageScale", "crop", "disabled,center");
    check_int("ImageScale", "width", 512, 0, 16384);
    check_int("ImageScale", "height", 512, 0, 16384);
    check_combo("ImageScaleBy", "upscale_method", methods);
    check_float("ImageScaleBy", "scale_by", 1.0, 0.01, 8.0);
    check_float("ImageScaleToTotalPixels", "megapixels", 1.0, 0.01, 16.0);
    check_int("ImageScaleToTotalPixels", "resolution_steps", 1, 1, 256);
    check_int("ImagePadForOutpaint", "feathering", 40, 0, 16384);
    check_int("ImagePadForOutpaint", "left", 0, 0, 16384);
    check_int("ImageCrop", "width", 512, 1, 16384);
    check_int("ImageCrop", "x", 0, 0, 16384);
    check_float("ImageBlend", "blend_factor", 0.5, 0.0, 1.0);
    check_combo("ImageBlend", "blend_mode", "normal,multiply,screen,overlay,soft_light,difference");
    check_int("ImageBlur", "blur_radius", 1, 1, 31);
    check_float("ImageBlur", "sigma", 1.0, 0.1, 10.0);
    check_int("ImageSharpen", "sharpen_radius", 1, 1, 31);
    check_float("ImageSharpen", "alpha", 1.0, 0.0, 5.0);
    check_int("EmptyImage", "batch_size", 1, 1, 4096);
    check_int("EmptyImage", "color", 0, 0, 0xFFFFFF);
    check_float("SolidMask", "value", 1.0, 0.0, 1.0);
    check_int("GrowMask", "expand", 0, -16384, 16384);
    CHECK(find_input("GrowMask", "tapered_corners") && find_input("GrowMask", "tapered_corners")->bdef);
    check_float("ThresholdMask", "value", 0.5, 0.0, 1.0);
    check_combo("MaskComposite", "operation", "multiply,add,subtract,and,or,xor");
    check_combo("ImageToMask", "channel", "red,green,blue,alpha");
    check_combo("LoadImageMask", "channel", "alpha,red,green,blue");
    check_float("Canny", "low_threshold", 0.4, 0.01, 0.99);
    check_float("Canny", "high_threshold", 0.8, 0.01, 0.99);
    const vkf_input_def *m = find_input("ImageCompositeMasked", "mask");
    CHECK(m && (m->flags & VKF_IN_OPTIONAL));
}

/* ---- image nodes ------------------------------------------------------------------ */

static float *ramp(int64_t n, float scale)
{
    float *p = malloc(sizeof(float) * (size_t)n);
    for (int64_t i = 0; i < n; i++)
        p[i] = (float)((i * 37) % 101) / 100.0f * scale;
    return p;
}

static void test_scale(void)
{
    int64_t s0[4] = {2, 10, 20, 3};
    set_host(&src_img[0], 4, s0, ramp(2 * 10 * 20 * 3, 1));
    expect_ok("ImageScale", "\"image\":[\"10\",0],\"upscale_method\":\"bilinear\",\"width\":0,"
              "\"height\":15,\"crop\":\"disabled\"", 0, false);
    CHECK(shape_is(&got_img, 4, 2, 15, 30, 3));
    expect_ok("ImageScale", "\"image\":[\"10\",0],\"upscale_method\":\"area\",\"width\":7,"
              "\"height\":0,\"crop\":\"disabled\"", 0, false);
    CHECK(shape_is(&got_img, 4, 2, 4, 7, 3));   /* round(10·7/20) = round(3.5) = 4 */
    expect_ok("ImageScale", "\"image\":[\"10\",0],\"upscale_method\":\"bicubic\",\"width\":0,"
              "\"height\":0,\"crop\":\"disabled\"", 0, false);
    CHECK(shape_is(&got_img, 4, 2, 10, 20, 3));
    CHECK(got_img.data && !memcmp(got_img.data, src_img[0].data, sizeof(float) * 1200));
    /* nearest-exact ×2: each pixel becomes a 2×2 block */
    expect_ok("ImageScale", "\"image\":[\"10\",0],\"upscale_method\":\"nearest-exact\","
              "\"width\":40,\"height\":20,\"crop\":\"disabled\"", 0, false);
    CHECK(shape_is(&got_img, 4, 2, 20, 40, 3));
    bool same = true;
    for (int64_t b = 0; b < 2; b++)
        for (int64_t y = 0; y < 20; y++)
            for (int64_t x = 0; x < 40; x++)
                for (int c = 0; c < 3; c++)
                    same &= got_img.data[((b * 20 + y) * 40 + x) * 3 + c] ==
                            src_img[0].data[((b * 10 + y / 2) * 20 + x / 2) * 3 + c];
    CHECK(same);
    /* centre crop to a square: nearest-exact at the same size = the middle 10×10 */
    expect_ok("ImageScale", "\"image\":[\"10\",0],\"upscale_method\":\"nearest-exact\","
              "\"width\":10,\"height\":10,\"crop\":\"center\"", 0, false);
    CHECK(shape_is(&got_img, 4, 2, 10, 10, 3));
    CHECK(got_img.data && got_img.data[0] == src_img[0].data[5 * 3]);
    expect_ok("ImageScale", "\"image\":[\"10\",0],\"upscale_method\":\"lanczos\","
              "\"width\":9,\"height\":13,\"crop\":\"center\"", 0, false);
    CHECK(shape_is(&got_img, 4, 2, 13, 9, 3));
    for (int64_t i = 0; got_img.data && i < 2 * 13 * 9 * 3; i++)
        CHECK(got_img.data[i] >= 0.0f && got_img.data[i] <= 1.0f);

    expect_ok("ImageScaleBy", "\"image\":[\"10\",0],\"upscale_method\":\"lanczos\",\"scale_by\":0.25",
              0, false);
    CHECK(shape_is(&got_img, 4, 2, 2, 5, 3));   /* round(2.5) = 2 */
    expect_error("ImageScaleBy", "\"image\":[\"10\",0],\"upscale_method\":\"area\",\"scale_by\":0.01",
                 false, "scale_by", NULL);

    int64_t s1[4] = {1, 32, 64, 3};
    set_host(&src_img[1], 4, s1, ramp(32 * 64 * 3, 1));
    expect_ok("ImageScaleToTotalPixels", "\"image\":[\"11\",0],\"upscale_method\":\"bilinear\","
              "\"megapixels\":0.01,\"resolution_steps\":1", 0, false);
    CHECK(shape_is(&got_img, 4, 1, 72, 145, 3));
    expect_ok("ImageScaleToTotalPixels", "\"image\":[\"11\",0],\"upscale_method\":\"bicubic\","
              "\"megapixels\":0.01,\"resolution_steps\":8", 0, false);
    CHECK(shape_is(&got_img, 4, 1, 72, 144, 3));
}

static void test_simple_image_nodes(void)
{
    int64_t s0[4] = {1, 5, 6, 3};
    set_host(&src_img[0], 4, s0, ramp(90, 1));
    expect_ok("ImageInvert", "\"image\":[\"10\",0]", 0, false);
    CHECK(shape_is(&got_img, 4, 1, 5, 6, 3));
    for (int i = 0; got_img.data && i < 90; i++)
        CHECK(got_img.data[i] == 1.0f - src_img[0].data[i]);

    int64_t s1[4] = {2, 10, 8, 3};
    set_host(&src_img[1], 4, s1, ramp(480, 1));
    expect_ok("ImageBatch", "\"image1\":[\"10\",0],\"image2\":[\"11\",0]", 0, false);
    CHECK(shape_is(&got_img, 4, 3, 5, 6, 3));
    CHECK(got_img.data && !memcmp(got_img.data, src_img[0].data, sizeof(float) * 90));

    /* RGB + RGBA: the RGB one gets alpha 1 */
    int64_t s4[4] = {1, 5, 6, 4};
    set_host(&src_img[1], 4, s4, ramp(120, 0.5f));
    expect_ok("ImageBatch", "\"image1\":[\"10\",0],\"image2\":[\"11\",0]", 0, false);
    CHECK(shape_is(&got_img, 4, 2, 5, 6, 4));
    CHECK(got_img.data && got_img.data[3] == 1.0f && got_img.data[2] == src_img[0].data[2] &&
          got_img.data[120 + 7] == src_img[1].data[7]);
    set_host(&src_img[1], 4, s1, ramp(480, 1));

    expect_ok("EmptyImage", "\"width\":7,\"height\":3,\"batch_size\":2,\"color\":16744448", 0, false);
    CHECK(shape_is(&got_img, 4, 2, 3, 7, 3));
    for (int i = 0; got_img.data && i < 2 * 3 * 7; i++)
        CHECK(got_img.data[3 * i] == 1.0f && got_img.data[3 * i + 1] == (float)(128 / 255.0) &&
              got_img.data[3 * i + 2] == 0.0f);

    /* ImageCrop clamps x, y to the last column/row */
    expect_ok("ImageCrop", "\"image\":[\"10\",0],\"width\":512,\"height\":2,\"x\":100,\"y\":1", 0,
              false);
    CHECK(shape_is(&got_img, 4, 1, 2, 1, 3));
    CHECK(got_img.data && got_img.data[0] == src_img[0].data[(1 * 6 + 5) * 3]);
    expect_ok("ImageCrop", "\"image\":[\"10\",0],\"width\":3,\"height\":2,\"x\":2,\"y\":3", 0, false);
    CHECK(shape_is(&got_img, 4, 1, 2, 3, 3));
    CHECK(got_img.data && got_img.data[3 * 3 + 2] == src_img[0].data[(4 * 6 + 2) * 3 + 2]);

    /* blend: difference with factor 1 = clamp(a - b); sizes must agree after
     * the bicubic resize, channels must agree */
    expect_ok("ImageBlend", "\"image1\":[\"10\",0],\"image2\":[\"10\",0],\"blend_factor\":1.0,"
              "\"blend_mode\":\"difference\"", 0, false);
    for (int i = 0; got_img.data && i < 90; i++)
        CHECK(got_img.data[i] == 0.0f);
    expect_error("ImageBlend", "\"image1\":[\"10\",0],\"image2\":[\"11\",0],\"blend_factor\":0.5,"
                 "\"blend_mode\":\"normal\"", false, "batch", NULL);

    expect_error("ImageBlur", "\"image\":[\"10\",0],\"blur_radius\":5,\"sigma\":1.0", false,
                 "blur_radius", NULL);
    expect_ok("ImageBlur", "\"image\":[\"10\",0],\"blur_radius\":2,\"sigma\":1.0", 0, false);
    CHECK(shape_is(&got_img, 4, 1, 5, 6, 3));
    expect_error("ImageSharpen", "\"image\":[\"10\",0],\"sharpen_radius\":6,\"sigma\":1.0,"
                 "\"alpha\":1.0", false, "sharpen_radius", NULL);
    /* alpha 0: the identity */
    expect_ok("ImageSharpen", "\"image\":[\"10\",0],\"sharpen_radius\":1,\"sigma\":1.0,\"alpha\":0.0",
              0, false);
    for (int i = 0; got_img.data && i < 90; i++)
        CHECK(fabsf(got_img.data[i] - src_img[0].data[i]) < 1e-6f);
}

static void test_outpaint(void)
{
    int64_t s0[4] = {1, 20, 30, 3};
    set_host(&src_img[0], 4, s0, ramp(1800, 1));
    const char *in = "\"image\":[\"10\",0],\"left\":8,\"top\":0,\"right\":16,\"bottom\":8,"
                     "\"feathering\":6";
    expect_ok("ImagePadForOutpaint", in, 0, false);
    CHECK(shape_is(&got_img, 4, 1, 28, 54, 3));
    CHECK(got_img.data && got_img.data[0] == 0.5f &&
          got_img.data[(0 * 54 + 8) * 3] == src_img[0].data[0]);
    expect_ok("ImagePadForOutpaint", in, 1, true);
    CHECK(shape_is(&got_mask, 3, 1, 28, 54, 0));
    if (got_mask.data) {
        CHECK(got_mask.data[0] == 1.0f);                           /* padding */
        CHECK(got_mask.data[0 * 54 + 8] == (float)(1.0 * 1.0));   /* d = 0 at the left seam */
        CHECK(got_mask.data[10 * 54 + 8 + 15] == 0.0f);             /* centre */
        double v = (6.0 - 2.0) / 6.0;                               /* 2 px from the left */
        CHECK(fabsf(got_mask.data[10 * 54 + 8 + 2] - (float)(v * v)) <= 6e-8f);   /* 1 ulp */
        CHECK(got_mask.data[0 * 54 + 8 + 15] == 0.0f);              /* top not padded */
    }
}

static void test_composite(void)
{
    int64_t sd[4] = {2, 6, 7, 3}, ss[4] = {1, 3, 3, 4}, sm[3] = {1, 3, 3};
    float *d = calloc(2 * 6 * 7 * 3, sizeof(float)), *s = malloc(sizeof(float) * 36);
    for (int i = 0; i < 36; i++)
        s[i] = 1.0f;
    set_host(&src_img[0], 4, sd, d);
    set_host(&src_img[1], 4, ss, s);
    float *m = malloc(sizeof(float) * 9);
    for (int i = 0; i < 9; i++)
        m[i] = 0.25f;
    set_host(&src_mask[0], 3, sm, m);
    /* RGBA source onto RGB: alpha dropped; placed at (5, 4), clipped */
    expect_ok("ImageCompositeMasked", "\"destination\":[\"10\",0],\"source\":[\"11\",0],\"x\":5,"
              "\"y\":4,\"resize_source\":false,\"mask\":[\"20\",0]", 0, false);
    CHECK(shape_is(&got_img, 4, 2, 6, 7, 3));
    if (got_img.data) {
        CHECK(got_img.data[((1 * 6 + 4) * 7 + 5) * 3] == 0.25f);
        CHECK(got_img.data[((1 * 6 + 3) * 7 + 5) * 3] == 0.0f);
        CHECK(got_img.data[((0 * 6 + 5) * 7 + 6) * 3 + 2] == 0.25f);
    }
    /* resize_source and no mask: all source */
    expect_ok("ImageCompositeMasked", "\"destination\":[\"10\",0],\"source\":[\"11\",0],\"x\":0,"
              "\"y\":0,\"resize_source\":true", 0, false);
    for (int i = 0; got_img.data && i < 2 * 6 * 7 * 3; i++)
        CHECK(fabsf(got_img.data[i] - 1.0f) <= 1e-6f);
}

static void test_canny_node(void)
{
    int64_t s0[4] = {1, 24, 24, 3};
    float *p = calloc(24 * 24 * 3, sizeof(float));
    /* a square with a one-pixel 0.5 ring: the gradient peaks on the ring
     * (a bare step has two equal maxima that NMS drops by rounding luck) */
    for (int y = 8; y < 16; y++)
        for (int x = 8; x < 16; x++)
            for (int c = 0; c < 3; c++)
                p[(y * 24 + x) * 3 + c] = y == 8 || y == 15 || x == 8 || x == 15 ? 0.5f : 1.0f;
    set_host(&src_img[0], 4, s0, p);
    expect_ok("Canny", "\"image\":[\"10\",0],\"low_threshold\":0.4,\"high_threshold\":0.8", 0, false);
    CHECK(shape_is(&got_img, 4, 1, 24, 24, 3));
    int on = 0;
    for (int i = 0; got_img.data && i < 24 * 24; i++) {
        float v = got_img.data[3 * i];
        CHECK((v == 0.0f || v == 1.0f) && got_img.data[3 * i + 1] == v && got_img.data[3 * i + 2] == v);
        on += v == 1.0f;
        if (v == 1.0f) {   /* only along the square's outline */
            int y = i / 24, x = i % 24;
            CHECK(y >= 7 && y <= 16 && x >= 7 && x <= 16 && !(y >= 10 && y <= 13 && x >= 10 && x <= 13));
        }
    }
    if (on < 20)
        fprintf(stderr, "canny: %d edge pixels\n", on);
    CHECK(on >= 20);
    expect_error("Canny", "\"image\":[\"10\",0],\"low_threshold\":0.9,\"high_threshold\":0.2",
                 false, "low_threshold", NULL);
}

/* ---- mask nodes -------------------------------------------------------------------- */

static void test_mask_nodes(void)
{
    expect_ok("SolidMask", "\"value\":0.3,\"width\":5,\"height\":4", 0, true);
    CHECK(shape_is(&got_mask, 3, 1, 4, 5, 0));
    for (int i = 0; got_mask.data && i < 20; i++)
        CHECK(got_mask.data[i] == 0.3f);

    int64_t sm[3] = {2, 5, 6};
    set_host(&src_mask[0], 3, sm, ramp(60, 1));
    expect_ok("InvertMask", "\"mask\":[\"20\",0]", 0, true);
    for (int i = 0; got_mask.data && i < 60; i++)
        CHECK(got_mask.data[i] == 1.0f - src_mask[0].data[i]);
    expect_ok("MaskToImage", "\"mask\":[\"20\",0]", 0, false);
    CHECK(shape_is(&got_img, 4, 2, 5, 6, 3));
    CHECK(got_img.data && got_img.data[3 * 17 + 2] == src_mask[0].data[17]);

    int64_t s0[4] = {2, 3, 4, 3};
    set_host(&src_img[0], 4, s0, ramp(72, 1));
    expect_ok("ImageToMask", "\"image\":[\"10\",0],\"channel\":\"green\"", 0, true);
    CHECK(shape_is(&got_mask, 3, 2, 3, 4, 0));
    CHECK(got_mask.data && got_mask.data[13] == src_img[0].data[13 * 3 + 1]);
    expect_error("ImageToMask", "\"image\":[\"10\",0],\"channel\":\"alpha\"", true, "channel", "alpha");

    expect_ok("CropMask", "\"mask\":[\"20\",0],\"x\":2,\"y\":1,\"width\":512,\"height\":2", 0, true);
    CHECK(shape_is(&got_mask, 3, 2, 2, 4, 0));
    CHECK(got_mask.data && got_mask.data[4 + 1] == src_mask[0].data[2 * 6 + 3]);
    expect_error("CropMask", "\"mask\":[\"20\",0],\"x\":6,\"y\":0,\"width\":5,\"height\":5", true,
                 "x 6", NULL);

    /* GrowMask: one pixel grows to a cross (tapered) or a 3×3 block */
    int64_t sg[3] = {1, 7, 7};
    float *g = calloc(49, sizeof(float));
    g[3 * 7 + 3] = 1.0f;
    set_host(&src_mask[1], 3, sg, g);
    int n = 0;
    expect_ok("GrowMask", "\"mask\":[\"21\",0],\"expand\":1,\"tapered_corners\":true", 0, true);
    for (int i = 0; got_mask.data && i < 49; i++)
        n += got_mask.data[i] == 1.0f;
    CHECK(n == 5 && got_mask.data && got_mask.data[2 * 7 + 2] == 0.0f);
    n = 0;
    expect_ok("GrowMask", "\"mask\":[\"21\",0],\"expand\":2,\"tapered_corners\":false", 0, true);
    for (int i = 0; got_mask.data && i < 49; i++)
        n += got_mask.data[i] == 1.0f;
    CHECK(n == 25);
    expect_ok("GrowMask", "\"mask\":[\"21\",0],\"expand\":-1,\"tapered_corners\":true", 0, true);
    for (int i = 0; got_mask.data && i < 49; i++)
        CHECK(got_mask.data[i] == 0.0f);

    /* FeatherMask: defaults change nothing; right = 2 scales column 0 by
     * 1/2 (output[:, :, -0]) and the last column by 2/2 */
    expect_ok("FeatherMask", "\"mask\":[\"20\",0],\"left\":0,\"top\":0,\"right\":0,\"bottom\":0", 0, true);
    CHECK(got_mask.data && !memcmp(got_mask.data, src_mask[0].data, sizeof(float) * 60));
    expect_ok("FeatherMask", "\"mask\":[\"20\",0],\"left\":0,\"top\":0,\"right\":2,\"bottom\":0", 0, true);
    CHECK(got_mask.data && got_mask.data[6] == src_mask[0].data[6] * 0.5f &&
          got_mask.data[11] == src_mask[0].data[11] && got_mask.data[10] == src_mask[0].data[10]);

    expect_ok("ThresholdMask", "\"mask\":[\"20\",0],\"value\":0.5", 0, true);
    for (int i = 0; got_mask.data && i < 60; i++)
        CHECK(got_mask.data[i] == (src_mask[0].data[i] > 0.5f ? 1.0f : 0.0f));

    /* MaskComposite: a 1-batch source onto both batches, clipped at (5, 6);
     * a 2-batch source onto a 1-batch destination is refused */
    expect_ok("MaskComposite", "\"destination\":[\"20\",0],\"source\":[\"21\",0],\"x\":2,\"y\":1,"
              "\"operation\":\"add\"", 0, true);
    CHECK(shape_is(&got_mask, 3, 2, 5, 6, 0));
    if (got_mask.data) {
        float v = src_mask[0].data[30 + 4 * 6 + 5] + g[3 * 7 + 3];
        CHECK(got_mask.data[30 + 4 * 6 + 5] == (v > 1 ? 1 : v));
        CHECK(got_mask.data[0] == src_mask[0].data[0]);
    }
    expect_error("MaskComposite", "\"destination\":[\"21\",0],\"source\":[\"20\",0],\"x\":0,\"y\":0,"
                 "\"operation\":\"xor\"", true, "batch", NULL);
}

/* ---- LoadImageMask ------------------------------------------------------------------- */

static void write_png(const char *name, int w, int h, int color_type, const uint8_t *px)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", in_dir, name);
    FILE *f = fopen(path, "wb");
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8, color_type, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    int ch = color_type == PNG_COLOR_TYPE_RGBA ? 4 : color_type == PNG_COLOR_TYPE_RGB ? 3 : 1;
    for (int y = 0; y < h; y++)
        png_write_row(png, px + (size_t)y * (size_t)w * (size_t)ch);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    fclose(f);
}

static const char *path_join(const char *dir, const char *name)
{
    static char buf[1024];
    snprintf(buf, sizeof(buf), "%s/%s", dir, name);
    return buf;
}

static void test_load_image_mask(void)
{
    uint8_t rgba[3 * 2 * 4], rgb[3 * 2 * 3];
    for (int i = 0; i < 24; i++)
        rgba[i] = (uint8_t)(i * 10 + 5);
    for (int i = 0; i < 18; i++)
        rgb[i] = (uint8_t)(i * 13);
    write_png("m_rgba.png", 3, 2, PNG_COLOR_TYPE_RGBA, rgba);
    write_png("m_rgb.png", 3, 2, PNG_COLOR_TYPE_RGB, rgb);
    expect_ok("LoadImageMask", "\"image\":\"m_rgba.png\",\"channel\":\"alpha\"", 0, true);
    CHECK(shape_is(&got_mask, 3, 1, 2, 3, 0));
    for (int i = 0; got_mask.data && i < 6; i++)
        CHECK(got_mask.data[i] == 1.0f - rgba[4 * i + 3] / 255.0f);
    expect_ok("LoadImageMask", "\"image\":\"m_rgba.png\",\"channel\":\"green\"", 0, true);
    for (int i = 0; got_mask.data && i < 6; i++)
        CHECK(got_mask.data[i] == rgba[4 * i + 1] / 255.0f);
    /* no alpha: convert("RGBA") gives 255, so the mask is 0 */
    expect_ok("LoadImageMask", "\"image\":\"m_rgb.png\",\"channel\":\"alpha\"", 0, true);
    for (int i = 0; got_mask.data && i < 6; i++)
        CHECK(got_mask.data[i] == 0.0f);
    expect_ok("LoadImageMask", "\"image\":\"m_rgb.png\",\"channel\":\"blue\"", 0, true);
    CHECK(got_mask.data && got_mask.data[5] == rgb[17] / 255.0f);
    /* JPEG through FFmpeg: a flat grey frame, no alpha */
    const AVCodec *enc = avcodec_find_encoder(AV_CODEC_ID_MJPEG);
    if (enc) {
        AVCodecContext *c = avcodec_alloc_context3(enc);
        AVFrame *fr = av_frame_alloc();
        AVPacket *pkt = av_packet_alloc();
        c->width = 16;
        c->height = 8;
        c->pix_fmt = AV_PIX_FMT_YUVJ444P;
        c->time_base = (AVRational){1, 25};
        c->global_quality = FF_QP2LAMBDA * 2;
        c->flags |= AV_CODEC_FLAG_QSCALE;
        CHECK(avcodec_open2(c, enc, NULL) == 0);
        fr->width = 16;
        fr->height = 8;
        fr->format = AV_PIX_FMT_YUVJ444P;
        CHECK(av_frame_get_buffer(fr, 0) == 0);
        for (int p = 0; p < 3; p++)
            for (int y = 0; y < 8; y++)
                memset(fr->data[p] + y * fr->linesize[p], p ? 128 : 200, 16);
        CHECK(avcodec_send_frame(c, fr) == 0 && avcodec_send_frame(c, NULL) == 0);
        CHECK(avcodec_receive_packet(c, pkt) == 0);
        char path[512];
        snprintf(path, sizeof(path), "%s/m.jpg", in_dir);
        FILE *f = fopen(path, "wb");
        fwrite(pkt->data, 1, (size_t)pkt->size, f);
        fclose(f);
        av_packet_free(&pkt);
        av_frame_free(&fr);
        avcodec_free_context(&c);
        expect_ok("LoadImageMask", "\"image\":\"m.jpg\",\"channel\":\"red\"", 0, true);
        CHECK(shape_is(&got_mask, 3, 1, 8, 16, 0));
        for (int i = 0; got_mask.data && i < 128; i++)
            CHECK(fabsf(got_mask.data[i] - 200 / 255.0f) <= 3 / 255.0f);
        expect_ok("LoadImageMask", "\"image\":\"m.jpg\",\"channel\":\"alpha\"", 0, true);
        for (int i = 0; got_mask.data && i < 128; i++)
            CHECK(got_mask.data[i] == 0.0f);
    } else {
        fprintf(stderr, "no MJPEG encoder in FFmpeg: skipping the JPEG check\n");
    }
    FILE *bad = fopen(path_join(in_dir, "m.gif"), "wb");
    fwrite("GIF89a....", 1, 10, bad);
    fclose(bad);
    expect_error("LoadImageMask", "\"image\":\"m.gif\",\"channel\":\"red\"", true, "m.gif", NULL);

    /* a missing file fails validation, naming it */
    const char *json = "{\"1\":{\"class_type\":\"LoadImageMask\",\"inputs\":{\"image\":\"none.png\","
                       "\"channel\":\"alpha\"}},\"2\":{\"class_type\":\"TestCapture\",\"inputs\":"
                       "{\"mask\":[\"1\",0]}}}";
    vkf_graph *gr = NULL;
    vkf_load_error le = {0};
    CHECK(vkf_load_workflow_json(json, strlen(json), reg, &gr, &le) == 0);
    vkf_validation val = {0};
    CHECK(vkf_executor_run(ex, gr, &val, NULL) == VKF_EVALIDATION);
    CHECK(val.nb_node_errors == 1 && val.node_errors[0].nb_errors == 1 &&
          strstr(val.node_errors[0].errors[0].details, "none.png"));
    vkf_validation_clear(&val);
    vkf_graph_free(&gr);
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

    snprintf(root, sizeof(root), "/tmp/vkf-imgnodes-XXXXXX");
    CHECK_OK(mkdtemp(root) ? 0 : VKF_EIO);
    snprintf(in_dir, sizeof(in_dir), "%s/input", root);
    mkdir(in_dir, 0755);
    CHECK_OK(vkf_paths_create(&paths, &gt_log));
    CHECK_OK(vkf_paths_set_input_dir(paths, in_dir));
    CHECK_OK(vkf_registry_create(&reg));
    CHECK_OK(vkf_registry_add(reg, &image_src_def));
    CHECK_OK(vkf_registry_add(reg, &mask_src_def));
    CHECK_OK(vkf_registry_add(reg, &capture_def));
    vkf_executor_params p = {.registry = reg, .paths = paths, .log = &gt_log, .gpu_params = &gp};
    CHECK_OK(vkf_executor_create(&ex, &p));
    /* placeholders so every source node of run_node has data */
    int64_t one4[4] = {1, 2, 2, 3}, one3[3] = {1, 2, 2};
    for (int i = 0; i < 2; i++) {
        set_host(&src_img[i], 4, one4, ramp(12, 1));
        set_host(&src_mask[i], 3, one3, ramp(4, 1));
    }

    test_tables();
    test_scale();
    test_simple_image_nodes();
    test_outpaint();
    test_composite();
    test_canny_node();
    test_mask_nodes();
    test_load_image_mask();

    vkf_gpu *gpu = vkf_executor_gpu(ex);
    CHECK(gpu && vkf_gpu_validation_messages(gpu) == 0);
    vkf_executor_destroy(&ex);
    vkf_registry_destroy(&reg);
    vkf_paths_destroy(&paths);
    for (int i = 0; i < 4; i++) {
        free(src_img[i].data);
        free(src_mask[i].data);
    }
    free(got_img.data);
    free(got_mask.data);
    CHECK(vkf_alloc_live() == 0);
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
    CHECK(system(cmd) == 0);
    if (gt_failures)
        fprintf(stderr, "%d check(s) failed\n", gt_failures);
    return gt_failures ? 1 : 0;
}
