/*
 * SDXL end to end on tiny synthesized weights:
 *   - the ADM vector (vkf_sdxl_encode_adm: pooled + Fourier size
 *     embeddings) against tests/reference/ref_sdxl_adm.py's PyTorch golden
 *     (|err| <= 6e-5: torch's float32 exp of the frequencies is within 1 ulp,
 *     not correctly rounded, and an ulp of a frequency becomes 3e-5 in an
 *     argument of 1152 rad; the pooled part is exact);
 *   - the sampling driver with a tiny SDXL UNet (label_emb): guidance with
 *     y built per cond entry (defaults from the latent size x 8 equal the
 *     explicit sizes bit for bit, other sizes change the prediction,
 *     batched and one-row-per-forward agree), a 2-step euler txt2img run,
 *     and the refusal without a pooled output.
 *   - a synthesized tiny SDXL checkpoint (UNet, CLIP-L + bigG, VAE) through
 *     the executor: CheckpointLoaderSimple, CLIPTextEncodeSDXL (cond
 *     [1, 77, 64 + 64], pooled [1, 64] from bigG, the node's sizes),
 *     CLIPTextEncode with the same CLIP, KSampler, VAEDecode, SaveImage.
 * The UNet itself is checked against PyTorch in test_unet (golden sdxl).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/stat.h>

#include "../gpu/gpu_test.h"
#include "graph/internal.h"
#include "vkflow/guidance.h"
#include "vkflow/vkflow.h"

static vkf_gpu *gpu;
static vkf_log quiet;

static float *read_f32(vkf_weights *w, const char *name, int64_t *numel)
{
    const vkf_weight_info *t = vkf_weights_find(w, name);
    CHECK(t != NULL);
    if (!t)
        exit(gt_finish(&gpu));
    float *p = malloc((size_t)t->numel * sizeof(float));
    CHECK_OK(vkf_weights_to_f32(w, t, p));
    *numel = t->numel;
    return p;
}

static void test_adm_golden(void)
{
    char path[1024];
    const char *root = getenv("VKF_SOURCE_ROOT");
    snprintf(path, sizeof(path), "%s/tests/reference/golden/sdxl_adm.safetensors",
             root ? root : ".");
    vkf_weights *w = NULL;
    CHECK_OK(vkf_weights_open(path, &w, &quiet));
    int64_t np_, n;
    float *pooled = read_f32(w, "pooled", &np_);
    const int pd = 64;
    static const struct {
        const char *name;
        vkf_adm_sizes s;
    } cases[] = {
        {"y_base", {1024, 768, 16, 8, 1152, 896, 0, false}},
        {"y_refiner", {1024, 768, 0, 32, 0, 0, 2.5, true}},
        {"y_default", {104, 72, 0, 0, 104, 72, 0, false}},
    };
    for (size_t c = 0; c < VKF_ARRAY_SIZE(cases); c++) {
        float *want = read_f32(w, cases[c].name, &n);
        int dim = pd + (cases[c].s.refiner ? 5 : 6) * VKF_ADM_FOURIER;
        CHECK(n == 2 * dim);
        float *got = malloc((size_t)n * sizeof(float));
        for (int b = 0; b < 2; b++)
            vkf_sdxl_encode_adm(pooled + b * pd, pd, &cases[c].s, got + b * dim);
        float worst = 0;
        for (int64_t i = 0; i < n; i++)
            worst = fmaxf(worst, fabsf(got[i] - want[i]));
        fprintf(stderr, "%s: max |err| %.3g\n", cases[c].name, worst);
        gt_compare(cases[c].name, got, want, n, 0, 6e-5f);
        for (int b = 0; b < 2; b++)
            gt_compare("pooled part", got + b * dim, pooled + b * pd, pd, 0, 0);
        free(got);
        free(want);
    }
    free(pooled);
    vkf_weights_close(&w);
}

static vkf_model *tiny_sdxl(void)
{
    char path[] = "/tmp/vkf_test_sdxl_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd);
    vkf_st_writer *sw = NULL;
    vkf_errbuf e = {{0}};
    CHECK_OK(vkf_st_writer_create(0x5d71, &sw));
    CHECK_OK(vkf_synth_unet(sw, "model.diffusion_model.", VKF_SYNTH_SDXL, VKF_SYNTH_TINY,
                            VKF_WDT_F16));
    CHECK_OK(vkf_st_writer_save(sw, path, &e));
    vkf_st_writer_destroy(&sw);
    vkf_weights *w = NULL;
    CHECK_OK(vkf_weights_open(path, &w, &quiet));
    vkf_diffusion_model *dm = NULL;
    int err = vkf_unet_load(gpu, w, "model.diffusion_model.", &dm, &e);
    if (err < 0)
        fprintf(stderr, "tiny SDXL: %s\n", e.msg);
    CHECK_OK(err);
    vkf_weights_close(&w);
    unlink(path);
    CHECK(!strcmp(dm->arch, "SDXL") && dm->adm_in_channels == 64 + 6 * 256 &&
          dm->context_dim == 128 && dm->prediction == VKF_PREDICTION_EPS);
    vkf_model_sampling *ms = NULL;
    CHECK_OK(vkf_model_sampling_discrete(&ms, VKF_PREDICTION_EPS, 0.00085, 0.012, 1000, false));
    vkf_latent_format lf = {.channels = 4, .scale_factor = 0.13025f};
    vkf_model *m = vkf_model_new(dm, ms, lf);
    vkf_diffusion_model_unref(&dm);
    return m;
}

static void unref_obj(void *p)
{
    vkf_object *o = p;
    vkf_object_unref(&o);
}

static float max_diff(const float *a, const float *b, int64_t n)
{
    float m = 0;
    for (int64_t i = 0; i < n; i++)
        m = fmaxf(m, fabsf(a[i] - b[i]));
    return m;
}

static void test_driver(void)
{
    vkf_model *m = tiny_sdxl();
    vkf_errbuf e = {{0}};
    const int64_t B = 2, h = 8, wd = 6, n = B * 4 * h * wd;
    int64_t shape[4] = {B, 4, h, wd};
    const int64_t D = 128, P = 64;
    gt_seed(5);
    float *cp = gt_random(77 * D), *cn = gt_random(77 * D), *pp = gt_random(P),
          *pn = gt_random(P), *x = gt_random(n), *latent = calloc((size_t)n, sizeof(float));
    int64_t sc[3] = {1, 77, D}, sp[2] = {1, P};
    vkf_conditioning *pos = vkf_conditioning_new(1), *neg = vkf_conditioning_new(1);
    pos->e[0].cond = gt_tensor(gpu, VKF_DTYPE_F32, 3, sc, cp);
    neg->e[0].cond = gt_tensor(gpu, VKF_DTYPE_F32, 3, sc, cn);
    neg->e[0].pooled = gt_tensor(gpu, VKF_DTYPE_F32, 2, sp, pn);

    /* no pooled output on the positive: refused, naming it */
    vkf_guide_spec spec = {.model = m, .positive = pos, .negative = neg, .cfg = 5.0};
    vkf_guidance *g = NULL;
    CHECK(vkf_guidance_create(&spec, shape, 4, latent, NULL, &g, &e) == VKF_EINVAL && !g);
    CHECK(strstr(e.msg, "pooled") != NULL);
    pos->e[0].pooled = gt_tensor(gpu, VKF_DTYPE_F32, 2, sp, pp);

    float *a = malloc((size_t)n * sizeof(float)), *b = malloc((size_t)n * sizeof(float)),
          *c = malloc((size_t)n * sizeof(float));
    long fw = 0, rows = 0;
    CHECK_OK(vkf_guidance_create(&spec, shape, 4, latent, NULL, &g, &e));
    CHECK_OK(vkf_guidance_predict(g, x, 3.0f, a, NULL));
    vkf_guidance_stats(g, &fw, &rows);
    CHECK(fw == 1 && rows == 2 * B);
    vkf_guidance_destroy(&g);

    /* one row per forward: each chunk keeps its own y */
    spec.max_batch_rows = 1;
    CHECK_OK(vkf_guidance_create(&spec, shape, 4, latent, NULL, &g, &e));
    CHECK_OK(vkf_guidance_predict(g, x, 3.0f, b, NULL));
    vkf_guidance_destroy(&g);
    float mx = 0;
    for (int64_t i = 0; i < n; i++)
        mx = fmaxf(mx, fabsf(a[i]));
    gt_compare("batched vs one row per forward", b, a, n, 1e-4f, 1e-4f * fmaxf(mx, 1));
    spec.max_batch_rows = 0;

    /* the defaults are the latent size x 8 with crop 0 and target = size */
    for (int k = 0; k < 2; k++) {
        vkf_cond_entry *ce = k ? &neg->e[0] : &pos->e[0];
        ce->width = ce->target_width = (int)wd * 8;
        ce->height = ce->target_height = (int)h * 8;
    }
    CHECK_OK(vkf_guidance_create(&spec, shape, 4, latent, NULL, &g, &e));
    CHECK_OK(vkf_guidance_predict(g, x, 3.0f, c, NULL));
    vkf_guidance_destroy(&g);
    gt_compare("default sizes vs explicit latent x 8", c, a, n, 0, 0);

    /* another original size changes the prediction */
    pos->e[0].width = 1024;
    pos->e[0].crop_h = 64;
    CHECK_OK(vkf_guidance_create(&spec, shape, 4, latent, NULL, &g, &e));
    CHECK_OK(vkf_guidance_predict(g, x, 3.0f, c, NULL));
    vkf_guidance_destroy(&g);
    float d = max_diff(a, c, n);
    fprintf(stderr, "width 1024 / crop_h 64 vs defaults: max |diff| %.3g (max |x0| %.3g)\n", d, mx);
    CHECK(d > 1e-3f * fmaxf(mx, 1));

    /* a 2-step euler txt2img */
    float sig[3] = {8.0f, 2.0f, 0.0f};
    float *noise = gt_random(n), *out = malloc((size_t)n * sizeof(float));
    vkf_guided_sample_params gp = {
        .guide = &spec, .sampler_name = "euler", .sigmas = sig, .n_sigmas = 3, .shape = shape,
        .ndim = 4, .latent = latent, .noise = noise, .seed = 3, .log = &quiet,
    };
    int err = vkf_guided_sample(&gp, out, NULL, NULL, &e);
    if (err < 0)
        fprintf(stderr, "sample: %s\n", e.msg);
    CHECK_OK(err);
    bool finite = true;
    float omx = 0;
    for (int64_t i = 0; i < n; i++) {
        finite = finite && isfinite(out[i]);
        omx = fmaxf(omx, fabsf(out[i]));
    }
    CHECK(finite && omx > 0);
    fprintf(stderr, "txt2img 2 steps: max |latent| %.3g\n", omx);

    free(cp), free(cn), free(pp), free(pn), free(x), free(latent);
    free(a), free(b), free(c), free(noise), free(out);
    unref_obj(pos);
    unref_obj(neg);
    unref_obj(m);
}

/* ---- the graph ---- */

static struct {
    int runs;
    int64_t cshape[3], pshape[2];
    int width, target_h;
    float lscale;
} cap;

static int capture_exec(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    (void)ctx;
    (void)out;
    vkf_conditioning *c = vkf_value_conditioning(&in[0]);
    vkf_model *m = vkf_value_model(&in[1]);
    cap.runs++;
    if (c && c->n == 1 && c->e[0].cond && c->e[0].pooled) {
        memcpy(cap.cshape, vkf_tensor_shape(c->e[0].cond), sizeof(cap.cshape));
        memcpy(cap.pshape, vkf_tensor_shape(c->e[0].pooled), sizeof(cap.pshape));
        cap.width = c->e[0].width;
        cap.target_h = c->e[0].target_height;
    }
    if (m)
        cap.lscale = m->latent.scale_factor;
    return 0;
}

static const vkf_input_def capture_inputs[] = {
    {.name = "conditioning", .type = "CONDITIONING"},
    {.name = "model", .type = "MODEL"},
};

static const vkf_node_def capture_def = {
    .name = "TestCaptureCond",
    .inputs = capture_inputs, .nb_inputs = 2,
    .flags = VKF_NODE_OUTPUT | VKF_NODE_NOT_IDEMPOTENT,
    .execute = capture_exec,
};

static void test_graph(void)
{
    char dir[] = "/tmp/vkf_sdxl_graph_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char p[512], models[300], out_dir[300];
    snprintf(models, sizeof(models), "%s/models", dir);
    snprintf(out_dir, sizeof(out_dir), "%s/out", dir);
    mkdir(models, 0755);
    mkdir(out_dir, 0755);
    snprintf(p, sizeof(p), "%s/checkpoints", models);
    mkdir(p, 0755);
    snprintf(p, sizeof(p), "%s/checkpoints/sdxl_tiny.safetensors", models);
    vkf_st_writer *sw = NULL;
    vkf_errbuf e = {{0}};
    CHECK_OK(vkf_st_writer_create(0x5d72, &sw));
    CHECK_OK(vkf_synth_unet(sw, "model.diffusion_model.", VKF_SYNTH_SDXL, VKF_SYNTH_TINY,
                            VKF_WDT_F16));
    CHECK_OK(vkf_synth_clip_text(sw, "conditioner.embedders.", VKF_SYNTH_SDXL, VKF_SYNTH_TINY,
                                 VKF_WDT_F16));
    CHECK_OK(vkf_synth_vae(sw, "first_stage_model.", VKF_SYNTH_TINY, VKF_WDT_F16));
    CHECK_OK(vkf_st_writer_save(sw, p, &e));
    vkf_st_writer_destroy(&sw);

    vkf_paths *paths = NULL;
    vkf_registry *reg = NULL;
    vkf_executor *ex = NULL;
    CHECK_OK(vkf_paths_create(&paths, &quiet));
    CHECK_OK(vkf_paths_add_models_root(paths, models));
    CHECK_OK(vkf_paths_set_output_dir(paths, out_dir));
    CHECK_OK(vkf_registry_create(&reg));
    CHECK_OK(vkf_registry_add(reg, &capture_def));
    vkf_gpu_params gp = {0};
    vkf_executor_params ep = {.registry = reg, .paths = paths, .log = &quiet, .gpu_params = &gp};
    CHECK_OK(vkf_executor_create(&ex, &ep));
    static const char *json =
        "{\"1\":{\"class_type\":\"CheckpointLoaderSimple\",\"inputs\":{\"ckpt_name\":"
        "\"sdxl_tiny.safetensors\"}},"
        "\"2\":{\"class_type\":\"CLIPTextEncodeSDXL\",\"inputs\":{\"clip\":[\"1\",1],"
        "\"width\":1024,\"height\":768,\"crop_w\":0,\"crop_h\":16,\"target_width\":1024,"
        "\"target_height\":1152,\"text_g\":\"a cat on a mat\",\"text_l\":\"a (photo:1.2) of "
        "a cat\"}},"
        "\"3\":{\"class_type\":\"CLIPTextEncode\",\"inputs\":{\"clip\":[\"1\",1],"
        "\"text\":\"blurry\"}},"
        "\"4\":{\"class_type\":\"EmptyLatentImage\",\"inputs\":{\"width\":48,\"height\":40,"
        "\"batch_size\":1}},"
        "\"5\":{\"class_type\":\"KSampler\",\"inputs\":{\"model\":[\"1\",0],\"seed\":1,"
        "\"steps\":2,\"cfg\":5.0,\"sampler_name\":\"euler\",\"scheduler\":\"normal\","
        "\"positive\":[\"2\",0],\"negative\":[\"3\",0],\"latent_image\":[\"4\",0],"
        "\"denoise\":1.0}},"
        "\"6\":{\"class_type\":\"VAEDecode\",\"inputs\":{\"samples\":[\"5\",0],"
        "\"vae\":[\"1\",2]}},"
        "\"7\":{\"class_type\":\"SaveImage\",\"inputs\":{\"images\":[\"6\",0],"
        "\"filename_prefix\":\"sdxl\"}},"
        "\"8\":{\"class_type\":\"TestCaptureCond\",\"inputs\":{\"conditioning\":[\"2\",0],"
        "\"model\":[\"1\",0]}}}";
    vkf_graph *g = NULL;
    vkf_load_error le = {0};
    int err = vkf_load_workflow_json(json, strlen(json), reg, &g, &le);
    if (err < 0)
        fprintf(stderr, "load: %s\n", le.message ? le.message : "?");
    vkf_load_error_clear(&le);
    CHECK_OK(err);
    vkf_validation val = {0};
    char *msg = NULL;
    err = g ? vkf_executor_run(ex, g, &val, &msg) : VKF_EINVAL;
    if (err)
        fprintf(stderr, "run: %s %s\n", vkf_strerror(err), msg ? msg : "");
    for (int n = 0; n < val.nb_node_errors; n++)
        for (int k = 0; k < val.node_errors[n].nb_errors; k++)
            fprintf(stderr, "  %s: %s\n", val.node_errors[n].errors[k].message,
                    val.node_errors[n].errors[k].details);
    CHECK(err == 0);
    vkf_free(msg);
    vkf_validation_clear(&val);
    vkf_graph_free(&g);
    CHECK(cap.runs == 1);
    CHECK(cap.cshape[0] == 1 && cap.cshape[1] == 77 && cap.cshape[2] == 128);
    CHECK(cap.pshape[0] == 1 && cap.pshape[1] == 64);
    CHECK(cap.width == 1024 && cap.target_h == 1152);
    CHECK(cap.lscale == 0.13025f);
    /* the saved image: 48 x 40 (PNG IHDR) */
    snprintf(p, sizeof(p), "%s/sdxl_00001_.png", out_dir);
    FILE *f = fopen(p, "rb");
    unsigned char hd[24] = {0};
    CHECK(f && fread(hd, 1, 24, f) == 24);
    if (f)
        fclose(f);
    unsigned wpx = (unsigned)hd[16] << 24 | (unsigned)hd[17] << 16 | (unsigned)hd[18] << 8 | hd[19];
    unsigned hpx = (unsigned)hd[20] << 24 | (unsigned)hd[21] << 16 | (unsigned)hd[22] << 8 | hd[23];
    CHECK(wpx == 48 && hpx == 40);
    unlink(p);

    /* DualCLIPLoader type sdxl: bigG and CLIP-L files, bigG given first */
    snprintf(p, sizeof(p), "%s/text_encoders", models);
    mkdir(p, 0755);
    static const char *const te[2] = {"g.safetensors", "l.safetensors"};
    for (int i = 0; i < 2; i++) {
        snprintf(p, sizeof(p), "%s/text_encoders/%s", models, te[i]);
        CHECK_OK(vkf_st_writer_create(0x5d73 + (uint64_t)i, &sw));
        CHECK_OK(vkf_synth_clip_text(sw, "", i ? VKF_SYNTH_SD15 : VKF_SYNTH_SD2, VKF_SYNTH_TINY,
                                     VKF_WDT_F16));
        CHECK_OK(vkf_st_writer_save(sw, p, &e));
        vkf_st_writer_destroy(&sw);
    }
    static const char *dual =
        "{\"1\":{\"class_type\":\"CheckpointLoaderSimple\",\"inputs\":{\"ckpt_name\":"
        "\"sdxl_tiny.safetensors\"}},"
        "\"2\":{\"class_type\":\"DualCLIPLoader\",\"inputs\":{\"clip_name1\":"
        "\"g.safetensors\",\"clip_name2\":\"l.safetensors\",\"type\":\"sdxl\"}},"
        "\"3\":{\"class_type\":\"CLIPTextEncode\",\"inputs\":{\"clip\":[\"2\",0],"
        "\"text\":\"a cat\"}},"
        "\"8\":{\"class_type\":\"TestCaptureCond\",\"inputs\":{\"conditioning\":[\"3\",0],"
        "\"model\":[\"1\",0]}}}";
    memset(&cap, 0, sizeof(cap));
    err = vkf_load_workflow_json(dual, strlen(dual), reg, &g, &le);
    vkf_load_error_clear(&le);
    CHECK_OK(err);
    msg = NULL;
    err = g ? vkf_executor_run(ex, g, &val, &msg) : VKF_EINVAL;
    if (err)
        fprintf(stderr, "dual run: %s %s\n", vkf_strerror(err), msg ? msg : "");
    CHECK(err == 0);
    vkf_free(msg);
    vkf_validation_clear(&val);
    vkf_graph_free(&g);
    CHECK(cap.runs == 1 && cap.cshape[1] == 77 && cap.cshape[2] == 128 && cap.pshape[1] == 64);
    CHECK(cap.width == 0);
    for (int i = 0; i < 2; i++) {
        snprintf(p, sizeof(p), "%s/text_encoders/%s", models, te[i]);
        unlink(p);
    }
    snprintf(p, sizeof(p), "%s/text_encoders", models);
    rmdir(p);
    vkf_executor_destroy(&ex);
    vkf_registry_destroy(&reg);
    vkf_paths_destroy(&paths);
    snprintf(p, sizeof(p), "%s/checkpoints/sdxl_tiny.safetensors", models);
    unlink(p);
    snprintf(p, sizeof(p), "%s/checkpoints", models);
    rmdir(p);
    rmdir(models);
    rmdir(out_dir);
    rmdir(dir);
}

int main(void)
{
    quiet = (vkf_log){.level = VKF_LOG_ERROR};
    gpu = gt_gpu_open((vkf_gpu_params){0});
    test_adm_golden();
    test_driver();
    test_graph();
    return gt_finish(&gpu);
}
