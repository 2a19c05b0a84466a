/*
 * The VAE nodes through the executor, against the goldens of
 * tests/reference/ref_vae.py (tiny synthesized KL VAE, loaded by VAELoader
 * from a models/vae folder):
 *   VAEDecode, VAEEncode (incl. ComfyUI's centred crop to multiples of 8),
 *   VAEDecodeTiled (tile 64 / overlap 16, and overlap 32 which ComfyUI cuts
 *   to tile/4 = 16), VAEEncodeTiled (64 / 16), VAEEncodeForInpaint (mask at
 *   the image size and at twice the size, grow_mask_by 6 and 5: latent and
 *   noise_mask), VAELoader's list (vae folder + taesd from vae_approx),
 *   input definitions as ComfyUI's, and errors.
 * Tolerance: |Δ| <= 1e-4 + 1e-4·|ref| on images and latents; noise masks
 * exact.
 */
#include <sys/stat.h>
#include <unistd.h>

#include "../gpu/gpu_test.h"
#include "graph/internal.h"
#include "vkflow/models.h"
#include "vkflow/types.h"
#include "vkflow/vkflow.h"

int vkf_vae_loader_list(const vkf_paths *paths, char ***names, int *count);

static vkf_weights *golden;

static float *gold(const char *name, int64_t *shape, int *ndim)
{
    const vkf_weight_info *t = vkf_weights_find(golden, name);
    CHECK(t != NULL);
    if (!t)
        exit(1);
    float *p = malloc((size_t)t->numel * sizeof(float));
    CHECK_OK(vkf_weights_to_f32(golden, t, p));
    for (int d = 0; d < t->ndim; d++)
        shape[d] = t->shape[d];
    *ndim = t->ndim;
    return p;
}

/* ---- test nodes: sources from the golden file, captures ------------------- */

static int src_exec(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out, int kind)
{
    vkf_gpu *gpu;
    int err = vkf_exec_gpu(ctx, &gpu);
    if (err < 0)
        return err;
    int64_t shape[5] = {1, 16, 8, 8};
    int nd = 4;
    float *p = !strcmp(in[0].u.s, "bad_latent") ? calloc(16 * 64, sizeof(float))
                                                 : gold(in[0].u.s, shape, &nd);
    if (kind == 1 && nd == 4 && shape[1] == 3) {   /* NCHW [-1, 1] → IMAGE */
        int64_t B = shape[0], H = shape[2], W = shape[3];
        float *q = malloc((size_t)(B * H * W * 3) * sizeof(float));
        for (int64_t b = 0; b < B; b++)
            for (int c = 0; c < 3; c++)
                for (int64_t i = 0; i < H * W; i++)
                    q[(b * H * W + i) * 3 + c] = (p[(b * 3 + c) * H * W + i] + 1.0f) * 0.5f;
        free(p);
        p = q;
        int64_t s2[4] = {B, H, W, 3};
        memcpy(shape, s2, sizeof(s2));
    }
    vkf_tensor *t = NULL;
    CHECK_OK(vkf_tensor_create(gpu, VKF_DTYPE_F32, nd, shape, &t));
    CHECK_OK(vkf_tensor_upload(t, p));
    free(p);
    if (kind == 0)
        return vkf_value_set_latent(&out[0], t, NULL, NULL, 0);
    if (kind == 1)
        return vkf_value_set_image(&out[0], t);
    return vkf_value_set_mask(&out[0], t);
}

static int latent_src(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    return src_exec(ctx, in, out, 0);
}

static int image_src(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    return src_exec(ctx, in, out, 1);
}

static int mask_src(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    return src_exec(ctx, in, out, 2);
}

static const vkf_input_def src_inputs[] = {VKF_INPUT_STRING("which", "")};
static const vkf_output_def latent_out[] = {{.type = "LATENT"}};
static const vkf_output_def image_out[] = {{.type = "IMAGE"}};
static const vkf_output_def mask_out[] = {{.type = "MASK"}};

static const vkf_node_def latent_src_def = {
    .name = "TestLatent", .inputs = src_inputs, .nb_inputs = 1, .outputs = latent_out,
    .nb_outputs = 1, .execute = latent_src};
static const vkf_node_def image_src_def = {
    .name = "TestImage", .inputs = src_inputs, .nb_inputs = 1, .outputs = image_out,
    .nb_outputs = 1, .execute = image_src};
static const vkf_node_def mask_src_def = {
    .name = "TestMask", .inputs = src_inputs, .nb_inputs = 1, .outputs = mask_out,
    .nb_outputs = 1, .execute = mask_src};

typedef struct capture {
    int nd, mnd;
    int64_t shape[5], mshape[5];
    float *data, *mask;
} capture;

static capture cap;

static void cap_clear(void)
{
    free(cap.data);
    free(cap.mask);
    memset(&cap, 0, sizeof(cap));
}

static void cap_tensor(vkf_tensor *t, float **data, int64_t *shape, int *nd)
{
    *nd = vkf_tensor_ndim(t);
    memcpy(shape, vkf_tensor_shape(t), (size_t)*nd * sizeof(int64_t));
    *data = gt_download(t);
}

static int cap_image(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    (void)ctx;
    (void)out;
    cap_clear();
    cap_tensor(vkf_value_image(&in[0]), &cap.data, cap.shape, &cap.nd);
    return 0;
}

static int cap_latent(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    (void)ctx;
    (void)out;
    cap_clear();
    const vkf_latent *l = vkf_value_latent(&in[0]);
    cap_tensor(l->samples, &cap.data, cap.shape, &cap.nd);
    if (l->noise_mask)
        cap_tensor(l->noise_mask, &cap.mask, cap.mshape, &cap.mnd);
    return 0;
}

static const vkf_input_def cap_image_in[] = {{.name = "image", .type = "IMAGE"}};
static const vkf_input_def cap_latent_in[] = {{.name = "latent", .type = "LATENT"}};
static const vkf_node_def cap_image_def = {
    .name = "TestCaptureImage", .inputs = cap_image_in, .nb_inputs = 1,
    .flags = VKF_NODE_OUTPUT | VKF_NODE_NOT_IDEMPOTENT, .execute = cap_image};
static const vkf_node_def cap_latent_def = {
    .name = "TestCaptureLatent", .inputs = cap_latent_in, .nb_inputs = 1,
    .flags = VKF_NODE_OUTPUT | VKF_NODE_NOT_IDEMPOTENT, .execute = cap_latent};

/* ---- set-up and running ------------------------------------------------------ */

static char root[256];
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
    if (err == VKF_EVALIDATION)
        for (int i = 0; i < val.nb_node_errors; i++)
            for (int k = 0; k < val.node_errors[i].nb_errors; k++)
                fprintf(stderr, "validation: %s: %s\n", val.node_errors[i].errors[k].message,
                        val.node_errors[i].errors[k].details);
    vkf_validation_clear(&val);
    vkf_graph_free(&g);
    return err;
}

#define LOADER "\"1\":{\"class_type\":\"VAELoader\",\"inputs\":{\"vae_name\":\"tiny_vae.safetensors\"}},"

static void compare_gold(const char *what, const float *got, const int64_t *shape, int nd,
                         const char *name, bool image, float tol)
{
    int64_t ws[5];
    int wnd;
    float *want = gold(name, ws, &wnd);
    int64_t n = 1;
    for (int d = 0; d < wnd; d++)
        n *= ws[d];
    if (image) {   /* NCHW [-1, 1] → clamp((x+1)/2), NHWC */
        int64_t B = ws[0], H = ws[2], W = ws[3];
        float *q = malloc((size_t)n * sizeof(float));
        for (int64_t b = 0; b < B; b++)
            for (int c = 0; c < 3; c++)
                for (int64_t i = 0; i < H * W; i++) {
                    float v = (want[(b * 3 + c) * H * W + i] + 1.0f) * 0.5f;
                    q[(b * H * W + i) * 3 + c] = v < 0 ? 0 : v > 1 ? 1 : v;
                }
        free(want);
        want = q;
        int64_t s2[4] = {B, H, W, 3};
        memcpy(ws, s2, sizeof(s2));
    }
    CHECK(nd == wnd && !memcmp(shape, ws, (size_t)nd * sizeof(int64_t)));
    if (nd == wnd && !memcmp(shape, ws, (size_t)nd * sizeof(int64_t)))
        gt_compare(what, got, want, n, tol, tol);
    free(want);
}

static void test_decode_encode(void)
{
    char *e = NULL;
    CHECK(run("{" LOADER
              "\"2\":{\"class_type\":\"TestLatent\",\"inputs\":{\"which\":\"dec_latent\"}},"
              "\"3\":{\"class_type\":\"VAEDecode\",\"inputs\":{\"samples\":[\"2\",0],\"vae\":[\"1\",0]}},"
              "\"4\":{\"class_type\":\"TestCaptureImage\",\"inputs\":{\"image\":[\"3\",0]}}}",
              &e) == 0);
    compare_gold("VAEDecode", cap.data, cap.shape, cap.nd, "dec_image", true, 1e-4f);

    CHECK(run("{" LOADER
              "\"2\":{\"class_type\":\"TestImage\",\"inputs\":{\"which\":\"enc_image\"}},"
              "\"3\":{\"class_type\":\"VAEEncode\",\"inputs\":{\"pixels\":[\"2\",0],\"vae\":[\"1\",0]}},"
              "\"4\":{\"class_type\":\"TestCaptureLatent\",\"inputs\":{\"latent\":[\"3\",0]}}}",
              &e) == 0);
    compare_gold("VAEEncode", cap.data, cap.shape, cap.nd, "enc_latent", false, 1e-4f);
    CHECK(cap.mask == NULL);

    /* tile_size 64 with overlap 16, and with overlap 32 (cut to 64/4 = 16) */
    for (int ov = 16; ov <= 32; ov += 16) {
        char json[2048];
        snprintf(json, sizeof(json),
                 "{" LOADER
                 "\"2\":{\"class_type\":\"TestLatent\",\"inputs\":{\"which\":\"tdec_latent\"}},"
                 "\"3\":{\"class_type\":\"VAEDecodeTiled\",\"inputs\":{\"samples\":[\"2\",0],"
                 "\"vae\":[\"1\",0],\"tile_size\":64,\"overlap\":%d,\"temporal_size\":64,"
                 "\"temporal_overlap\":8}},"
                 "\"4\":{\"class_type\":\"TestCaptureImage\",\"inputs\":{\"image\":[\"3\",0]}}}",
                 ov);
        CHECK(run(json, &e) == 0);
        compare_gold("VAEDecodeTiled", cap.data, cap.shape, cap.nd, "tdec_image", true, 1e-4f);
    }
    CHECK(run("{" LOADER
              "\"2\":{\"class_type\":\"TestImage\",\"inputs\":{\"which\":\"tenc_image\"}},"
              "\"3\":{\"class_type\":\"VAEEncodeTiled\",\"inputs\":{\"pixels\":[\"2\",0],"
              "\"vae\":[\"1\",0],\"tile_size\":64,\"overlap\":16,\"temporal_size\":64,"
              "\"temporal_overlap\":8}},"
              "\"4\":{\"class_type\":\"TestCaptureLatent\",\"inputs\":{\"latent\":[\"3\",0]}}}",
              &e) == 0);
    compare_gold("VAEEncodeTiled", cap.data, cap.shape, cap.nd, "tenc_latent", false, 1e-4f);
}

/* VAEEncode crops 67x70 to the centred 64x64 at (1, 3): inp_pixels holds
 * enc_image[0] there; VAEEncodeForInpaint as nodes.py. */
static void test_crop_inpaint(void)
{
    char *e = NULL;
    CHECK(run("{" LOADER
              "\"2\":{\"class_type\":\"TestImage\",\"inputs\":{\"which\":\"inp_pixels\"}},"
              "\"3\":{\"class_type\":\"VAEEncode\",\"inputs\":{\"pixels\":[\"2\",0],\"vae\":[\"1\",0]}},"
              "\"4\":{\"class_type\":\"TestCaptureLatent\",\"inputs\":{\"latent\":[\"3\",0]}}}",
              &e) == 0);
    int64_t ws[5];
    int wnd;
    float *want = gold("enc_latent", ws, &wnd);   /* batch item 0 */
    CHECK(cap.nd == 4 && cap.shape[0] == 1 && cap.shape[1] == 4 && cap.shape[2] == 8 &&
          cap.shape[3] == 8);
    if (cap.nd == 4 && cap.shape[0] == 1)
        gt_compare("VAEEncode crop", cap.data, want, 4 * 8 * 8, 1e-4f, 1e-4f);
    free(want);

    const char *cases[2][3] = {{"inp_mask_a", "6", "a"}, {"inp_mask_b", "5", "b"}};
    for (int c = 0; c < 2; c++) {
        char json[2048], ln[32], nn[32];
        snprintf(json, sizeof(json),
                 "{" LOADER
                 "\"2\":{\"class_type\":\"TestImage\",\"inputs\":{\"which\":\"inp_pixels\"}},"
                 "\"5\":{\"class_type\":\"TestMask\",\"inputs\":{\"which\":\"%s\"}},"
                 "\"3\":{\"class_type\":\"VAEEncodeForInpaint\",\"inputs\":{\"pixels\":[\"2\",0],"
                 "\"vae\":[\"1\",0],\"mask\":[\"5\",0],\"grow_mask_by\":%s}},"
                 "\"4\":{\"class_type\":\"TestCaptureLatent\",\"inputs\":{\"latent\":[\"3\",0]}}}",
                 cases[c][0], cases[c][1]);
        CHECK(run(json, &e) == 0);
        snprintf(ln, sizeof(ln), "inp_latent_%s", cases[c][2]);
        snprintf(nn, sizeof(nn), "inp_noise_%s", cases[c][2]);
        compare_gold(ln, cap.data, cap.shape, cap.nd, ln, false, 1e-4f);
        CHECK(cap.mask != NULL);
        if (cap.mask)
            compare_gold(nn, cap.mask, cap.mshape, cap.mnd, nn, false, 0.0f);
    }
}

static void test_defs_and_errors(void)
{
    /* input definitions as ComfyUI's nodes.py */
    const vkf_node_def *d = vkf_registry_find(reg, "VAEDecodeTiled");
    CHECK(d && d->nb_inputs == 6 && !strcmp(d->inputs[2].name, "tile_size") &&
          d->inputs[2].idef == 512 && d->inputs[2].imin == 64 && d->inputs[2].imax == 4096 &&
          d->inputs[2].fstep == 32 && d->inputs[3].idef == 64 && d->inputs[4].idef == 64 &&
          d->inputs[5].idef == 8 && d->inputs[5].imin == 4);
    d = vkf_registry_find(reg, "VAEEncodeTiled");
    CHECK(d && d->inputs[2].fstep == 64 && d->inputs[3].fstep == 32);
    d = vkf_registry_find(reg, "VAEEncodeForInpaint");
    CHECK(d && d->nb_inputs == 4 && !strcmp(d->inputs[3].name, "grow_mask_by") &&
          d->inputs[3].idef == 6 && d->inputs[3].imin == 0 && d->inputs[3].imax == 64);
    d = vkf_registry_find(reg, "VAELoader");
    CHECK(d && !strcmp(d->inputs[0].name, "vae_name") && !strcmp(d->outputs[0].type, "VAE"));

    /* VAELoader.vae_list: the vae folder, then taesd (both files present) */
    char **names = NULL;
    int n = 0;
    CHECK_OK(vkf_vae_loader_list(paths, &names, &n));
    CHECK(n == 2 && !strcmp(names[0], "tiny_vae.safetensors") && !strcmp(names[1], "taesd"));
    vkf_strv_free(&names, n);
    /* ... and that list is the combo's: "taesd" validates and decodes */
    char *te = NULL;
    int terr = run("{\"1\":{\"class_type\":\"VAELoader\",\"inputs\":{\"vae_name\":\"taesd\"}},"
                   "\"2\":{\"class_type\":\"EmptyLatentImage\",\"inputs\":{\"width\":32,"
                   "\"height\":24,\"batch_size\":1}},"
                   "\"3\":{\"class_type\":\"VAEDecode\",\"inputs\":{\"samples\":[\"2\",0],"
                   "\"vae\":[\"1\",0]}},"
                   "\"4\":{\"class_type\":\"TestCaptureImage\",\"inputs\":{\"image\":[\"3\",0]}}}",
                   &te);
    if (terr)
        fprintf(stderr, "VAELoader taesd: %d %s\n", terr, te ? te : "");
    CHECK(terr == 0);
    vkf_free(te);

    /* a 16-channel latent into an SD VAE: a clear execution error */
    char *e = NULL;
    int err = run("{" LOADER
                  "\"2\":{\"class_type\":\"TestLatent\",\"inputs\":{\"which\":\"bad_latent\"}},"
                  "\"3\":{\"class_type\":\"VAEDecode\",\"inputs\":{\"samples\":[\"2\",0],\"vae\":[\"1\",0]}},"
                  "\"4\":{\"class_type\":\"TestCaptureImage\",\"inputs\":{\"image\":[\"3\",0]}}}",
                  &e);
    CHECK(err == VKF_ERUN && e && strstr(e, "16 channels"));
    vkf_free(e);
    e = NULL;
    /* tiles that leave no room for the overlap */
    err = run("{" LOADER
              "\"2\":{\"class_type\":\"TestImage\",\"inputs\":{\"which\":\"tenc_image\"}},"
              "\"3\":{\"class_type\":\"VAEEncodeTiled\",\"inputs\":{\"pixels\":[\"2\",0],"
              "\"vae\":[\"1\",0],\"tile_size\":64,\"overlap\":64,\"temporal_size\":64,"
              "\"temporal_overlap\":8}},"
              "\"4\":{\"class_type\":\"TestCaptureLatent\",\"inputs\":{\"latent\":[\"3\",0]}}}",
              &e);
    CHECK(err == VKF_ERUN && e && strstr(e, "overlap"));
    vkf_free(e);
}

static void write_models(void)
{
    char p[600];
    snprintf(p, sizeof(p), "%s/models", root);
    mkdir(p, 0755);
    snprintf(p, sizeof(p), "%s/models/vae", root);
    mkdir(p, 0755);
    snprintf(p, sizeof(p), "%s/models/vae_approx", root);
    mkdir(p, 0755);
    snprintf(p, sizeof(p), "%s/models/vae/tiny_vae.safetensors", root);
    vkf_st_writer *w = NULL;
    vkf_errbuf e = {{0}};
    CHECK_OK(vkf_st_writer_create(1234, &w));   /* test_vae's seed: same weights */
    CHECK_OK(vkf_synth_vae(w, "first_stage_model.", VKF_SYNTH_TINY, VKF_WDT_F32));
    CHECK_OK(vkf_st_writer_save(w, p, &e));
    vkf_st_writer_destroy(&w);
    const char *sd = getenv("VKF_SHARED_DATA");
    const char *parts[2] = {"encoder", "decoder"};
    for (int i = 0; i < 2; i++) {
        char src[600];
        snprintf(src, sizeof(src), "%s/taesd/taesd_%s.safetensors", sd ? sd : "../shared/data",
                 parts[i]);
        snprintf(p, sizeof(p), "%s/models/vae_approx/taesd_%s.safetensors", root, parts[i]);
        /* a copy: symlinks out of the models folder are refused */
        FILE *in = fopen(src, "rb"), *o = fopen(p, "wb");
        CHECK(in && o);
        char buf[65536];
        size_t k;
        while (in && o && (k = fread(buf, 1, sizeof(buf), in)) > 0)
            CHECK(fwrite(buf, 1, k, o) == k);
        if (in)
            fclose(in);
        if (o)
            fclose(o);
    }
    /* only one half of taesdxl: not offered */
    snprintf(p, sizeof(p), "%s/models/vae_approx/taesdxl_decoder.safetensors", root);
    FILE *f = fopen(p, "wb");
    if (f)
        fclose(f);
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

    char gpath[1200];
    const char *src = getenv("VKF_SOURCE_ROOT");
    snprintf(gpath, sizeof(gpath), "%s/tests/reference/golden/vae/kl_tiny_f32.safetensors",
             src ? src : ".");
    CHECK_OK(vkf_weights_open(gpath, &golden, &gt_log));

    snprintf(root, sizeof(root), "/tmp/vkf-vaenodes-XXXXXX");
    CHECK_OK(mkdtemp(root) ? 0 : VKF_EIO);
    write_models();
    char mr[600], od[600];
    snprintf(mr, sizeof(mr), "%s/models", root);
    snprintf(od, sizeof(od), "%s/output", root);
    mkdir(od, 0755);
    CHECK_OK(vkf_paths_create(&paths, &gt_log));
    CHECK_OK(vkf_paths_add_models_root(paths, mr));
    CHECK_OK(vkf_paths_set_output_dir(paths, od));
    CHECK_OK(vkf_registry_create(&reg));
    CHECK_OK(vkf_registry_add(reg, &latent_src_def));
    CHECK_OK(vkf_registry_add(reg, &image_src_def));
    CHECK_OK(vkf_registry_add(reg, &mask_src_def));
    CHECK_OK(vkf_registry_add(reg, &cap_image_def));
    CHECK_OK(vkf_registry_add(reg, &cap_latent_def));
    vkf_executor_params p = {.registry = reg, .paths = paths, .log = &gt_log, .gpu_params = &gp};
    CHECK_OK(vkf_executor_create(&ex, &p));

    test_decode_encode();
    test_crop_inpaint();
    test_defs_and_errors();

    vkf_gpu *gpu = vkf_executor_gpu(ex);
    CHECK(gpu && vkf_gpu_validation_messages(gpu) == 0);
    vkf_executor_destroy(&ex);
    vkf_registry_destroy(&reg);
    vkf_paths_destroy(&paths);
    vkf_weights_close(&golden);
    cap_clear();
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
