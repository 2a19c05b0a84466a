/*
 * Live previews (core/models/preview.c): ComfyUI's Latent2RGB mapping
 * against hand-computed bytes, the in-memory PNG encoder (decoded back
 * with libpng), and a txt2img run on a synthesized tiny SD1.5 checkpoint
 * that must emit one "preview" event per sampler step — latent-sized PNGs
 * with latent2rgb, full-size PNGs from the real TAESD decoder in
 * ../shared/data/taesd (skipped when that folder is absent), none with
 * the method "none".
 */
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../gpu/gpu_test.h"
#include "vkflow/preview.h"
#include "vkflow/vkflow.h"

static vkf_log g_quiet = {.level = VKF_LOG_ERROR};
static char g_dir[4096];

/* ---- Latent2RGB ---- */

static uint8_t ref_u8(double v)
{
    double x = (v + 1.0) / 2.0;
    x = x < 0 ? 0 : x > 1 ? 1 : x;
    return (uint8_t)(float)(x * 255.0);
}

static void test_latent2rgb(void)
{
    static const double f[4][3] = {
        {0.3512, 0.2297, 0.3227},
        {0.3250, 0.4974, 0.2350},
        {-0.2829, 0.1762, 0.2721},
        {-0.2120, -0.2616, -0.7177},
    };
    /* [2, 4, 3, 5]: only the first image is previewed. */
    int64_t shape[4] = {2, 4, 3, 5};
    float x[2 * 4 * 15];
    gt_seed(3);
    for (int i = 0; i < 2 * 4 * 15; i++)
        x[i] = 3.0f * gt_rand();
    x[0] = x[15] = x[30] = x[45] = 0.0f;          /* pixel 0: exactly 0.5 grey */
    x[1] = 100.0f;                                /* pixel 1: clamped high/low */
    uint8_t *rgb = NULL;
    CHECK_OK(vkf_preview_latent2rgb(x, shape, 4, &rgb));
    int bad = 0;
    for (int p = 0; p < 15; p++)
        for (int c = 0; c < 3; c++) {
            double s = 0;
            for (int k = 0; k < 4; k++)
                s += (double)x[k * 15 + p] * f[k][c];
            int want = ref_u8(s), got = rgb[p * 3 + c];
            /* float vs double accumulation may move a value across one
             * byte boundary */
            if (abs(want - got) > 1)
                bad++;
        }
    CHECK(bad == 0);
    CHECK(rgb[0] == 127 && rgb[1] == 127 && rgb[2] == 127);
    CHECK(rgb[3] == 255 && rgb[4] == 255 && rgb[5] == 255);
    vkf_free(rgb);
    /* 16-channel latents are not previewed this way */
    int64_t s16[4] = {1, 16, 2, 2};
    CHECK(vkf_preview_latent2rgb(x, s16, 4, &rgb) == VKF_EUNSUPPORTED && !rgb);
}

/* ---- PNG ---- */

typedef struct rd {
    const uint8_t *p;
    size_t n, off;
} rd;

static void rd_fn(png_structp png, png_bytep out, size_t len)
{
    rd *r = png_get_io_ptr(png);
    if (r->off + len > r->n)
        png_error(png, "short");
    memcpy(out, r->p + r->off, len);
    r->off += len;
}

/* Decodes an 8-bit RGB PNG; returns the pixels (malloc) or NULL. */
static uint8_t *decode_png(const uint8_t *data, size_t n, int *w, int *h)
{
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    uint8_t *pix = NULL;
    rd r = {data, n, 0};
    if (setjmp(png_jmpbuf(png))) {
        free(pix);
        png_destroy_read_struct(&png, &info, NULL);
        return NULL;
    }
    png_set_read_fn(png, &r, rd_fn);
    png_read_info(png, info);
    *w = (int)png_get_image_width(png, info);
    *h = (int)png_get_image_height(png, info);
    if (png_get_color_type(png, info) != PNG_COLOR_TYPE_RGB || png_get_bit_depth(png, info) != 8)
        png_error(png, "not RGB8");
    pix = malloc((size_t)*w * (size_t)*h * 3);
    for (int y = 0; y < *h; y++)
        png_read_row(png, pix + (size_t)y * (size_t)*w * 3, NULL);
    png_destroy_read_struct(&png, &info, NULL);
    return pix;
}

static void test_png(void)
{
    int w = 37, h = 11;
    uint8_t *rgb = malloc((size_t)w * h * 3);
    for (int i = 0; i < w * h * 3; i++)
        rgb[i] = (uint8_t)(i * 7 + (i >> 5));
    uint8_t *png = NULL;
    size_t n = 0;
    CHECK_OK(vkf_png_encode_rgb8(rgb, w, h, &png, &n));
    int dw = 0, dh = 0;
    uint8_t *back = png ? decode_png(png, n, &dw, &dh) : NULL;
    CHECK(back && dw == w && dh == h);
    CHECK(back && !memcmp(back, rgb, (size_t)w * h * 3));
    free(back);
    vkf_free(png);
    CHECK(vkf_png_encode_rgb8(rgb, 0, h, &png, &n) == VKF_EINVAL);
    free(rgb);
    vkf_preview_method m;
    CHECK(vkf_preview_method_from_name("taesd", &m) == 0 && m == VKF_PREVIEW_TAESD);
    CHECK(vkf_preview_method_from_name("latent2rgb", &m) == 0 && m == VKF_PREVIEW_LATENT2RGB);
    CHECK(vkf_preview_method_from_name("bogus", &m) == VKF_ENOTFOUND);
}

/* ---- previews during a run ---- */

typedef struct seen {
    int n;
    int steps[16];
    int w[16], h[16];
    char node[16][8];
} seen;

static void on_event(void *priv, const vkf_event *ev)
{
    seen *s = priv;
    if (!ev->blob || s->n >= 16)
        return;
    CHECK(!strcmp(ev->type, "preview"));
    int k = s->n++;
    s->steps[k] = (int)ev->value;
    snprintf(s->node[k], sizeof(s->node[k]), "%s", ev->node_id ? ev->node_id : "");
    uint8_t *pix = decode_png(ev->blob, ev->blob_size, &s->w[k], &s->h[k]);
    CHECK(pix != NULL);
    free(pix);
}

static const char *txt2img =
    "{\"4\":{\"class_type\":\"CheckpointLoaderSimple\",\"inputs\":{\"ckpt_name\":\"tiny.safetensors\"}},"
    "\"5\":{\"class_type\":\"EmptyLatentImage\",\"inputs\":{\"width\":64,\"height\":48,\"batch_size\":2}},"
    "\"6\":{\"class_type\":\"CLIPTextEncode\",\"inputs\":{\"text\":\"a cat\",\"clip\":[\"4\",1]}},"
    "\"7\":{\"class_type\":\"CLIPTextEncode\",\"inputs\":{\"text\":\"\",\"clip\":[\"4\",1]}},"
    "\"3\":{\"class_type\":\"KSampler\",\"inputs\":{\"seed\":1,\"steps\":3,\"cfg\":5,"
    "\"sampler_name\":\"euler\",\"scheduler\":\"normal\",\"denoise\":1,\"model\":[\"4\",0],"
    "\"positive\":[\"6\",0],\"negative\":[\"7\",0],\"latent_image\":[\"5\",0]}},"
    "\"9\":{\"class_type\":\"PreviewAny\",\"inputs\":{\"source\":[\"3\",0]}}}";

static void run_with(const char *models, vkf_preview_method m, seen *s)
{
    memset(s, 0, sizeof(*s));
    vkf_paths *paths = NULL;
    vkf_registry *reg = NULL;
    vkf_executor *ex = NULL;
    vkf_graph *g = NULL;
    vkf_load_error le = {0};
    CHECK_OK(vkf_paths_create(&paths, &g_quiet));
    CHECK_OK(vkf_paths_add_models_root(paths, models));
    CHECK_OK(vkf_registry_create(&reg));
    const char *v = getenv("VKF_VALIDATION");
    vkf_gpu_params gp = {.validation = !(v && !strcmp(v, "0"))};
    vkf_gpu *probe = NULL;
    if (gp.validation && vkf_gpu_create(&gp, &probe) == VKF_EUNSUPPORTED)
        gp.validation = false;
    vkf_gpu_destroy(&probe);
    vkf_executor_params ep = {.registry = reg, .paths = paths, .log = &g_quiet,
                              .gpu_params = &gp, .on_event = on_event, .event_priv = s,
                              .print = NULL};
    CHECK_OK(vkf_executor_create(&ex, &ep));
    vkf_preview_install(m);
    CHECK_OK(vkf_load_workflow_json(txt2img, strlen(txt2img), reg, &g, &le));
    char *run_error = NULL;
    vkf_validation val = {0};
    int err = ex && g ? vkf_executor_run(ex, g, &val, &run_error) : -1;
    if (err)
        fprintf(stderr, "run: %d %s\n", err, run_error ? run_error : "");
    CHECK(err == 0);
    if (ex && vkf_executor_gpu(ex))
        CHECK(vkf_gpu_validation_messages(vkf_executor_gpu(ex)) == 0);
    vkf_free(run_error);
    vkf_validation_clear(&val);
    vkf_load_error_clear(&le);
    vkf_graph_free(&g);
    vkf_executor_destroy(&ex);      /* releases the decoder with the device */
    vkf_preview_shutdown();
    vkf_registry_destroy(&reg);
    vkf_paths_destroy(&paths);
}

static void quiet_print(void *priv, const char *node, const char *text)
{
    (void)priv;
    (void)node;
    (void)text;
}

static int copy_file(const char *src, const char *dst)
{
    FILE *a = fopen(src, "rb"), *b = a ? fopen(dst, "wb") : NULL;
    char buf[65536];
    size_t n;
    int ok = a && b;
    while (ok && (n = fread(buf, 1, sizeof(buf), a)) > 0)
        ok = fwrite(buf, 1, n, b) == n;
    if (a)
        fclose(a);
    if (b && fclose(b))
        ok = 0;
    return ok ? 0 : -1;
}

static void test_run(void)
{
    char models[4200], ck[4300], va[4300], path[4400];
    snprintf(models, sizeof(models), "%s/models", g_dir);
    snprintf(ck, sizeof(ck), "%s/checkpoints", models);
    snprintf(va, sizeof(va), "%s/vae_approx", models);
    mkdir(models, 0777);
    mkdir(ck, 0777);
    mkdir(va, 0777);
    snprintf(path, sizeof(path), "%s/tiny.safetensors", ck);
    vkf_st_writer *w = NULL;
    vkf_errbuf e = {{0}};
    CHECK_OK(vkf_st_writer_create(5, &w));
    CHECK_OK(vkf_synth_unet(w, "model.diffusion_model.", VKF_SYNTH_SD15, VKF_SYNTH_TINY, VKF_WDT_F32));
    CHECK_OK(vkf_synth_clip_text(w, "cond_stage_model.transformer.", VKF_SYNTH_SD15,
                                 VKF_SYNTH_TINY, VKF_WDT_F32));
    CHECK_OK(vkf_synth_vae(w, "first_stage_model.", VKF_SYNTH_TINY, VKF_WDT_F32));
    CHECK_OK(vkf_st_writer_save(w, path, &e));
    vkf_st_writer_destroy(&w);
    (void)quiet_print;

    seen s;
    /* latent2rgb: one latent-sized preview per step, steps 1..3 */
    run_with(models, VKF_PREVIEW_LATENT2RGB, &s);
    CHECK(s.n == 3);
    for (int i = 0; i < s.n && i < 3; i++) {
        CHECK(s.steps[i] == i + 1);
        CHECK(s.w[i] == 8 && s.h[i] == 6);
        CHECK(!strcmp(s.node[i], "3"));
    }
    /* none */
    run_with(models, VKF_PREVIEW_NONE, &s);
    CHECK(s.n == 0);
    /* taesd without a decoder file: no previews, the run still succeeds */
    run_with(models, VKF_PREVIEW_TAESD, &s);
    CHECK(s.n == 0);
    /* auto without a decoder: latent2rgb */
    run_with(models, VKF_PREVIEW_AUTO, &s);
    CHECK(s.n == 3 && s.w[0] == 8);

    const char *shared = getenv("VKF_SHARED_DATA");
    char src[4200], dst[4400];
    snprintf(src, sizeof(src), "%s/taesd/taesd_decoder.safetensors", shared ? shared : "");
    snprintf(dst, sizeof(dst), "%s/taesd_decoder.safetensors", va);
    if (!shared || access(src, R_OK) != 0) {
        printf("test_preview: no shared TAESD decoder, full-size previews not checked\n");
        return;
    }
    CHECK_OK(copy_file(src, dst));
    /* auto with the real TAESD decoder: full-size previews */
    run_with(models, VKF_PREVIEW_AUTO, &s);
    CHECK(s.n == 3);
    for (int i = 0; i < s.n && i < 3; i++)
        CHECK(s.w[i] == 64 && s.h[i] == 48 && s.steps[i] == i + 1);
    unlink(dst);
}

int main(void)
{
    test_latent2rgb();
    test_png();
    const char *tmp = getenv("TMPDIR");
    snprintf(g_dir, sizeof(g_dir), "%s/vkf-preview-XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
    if (!mkdtemp(g_dir)) {
        perror("mkdtemp");
        return 1;
    }
    vkf_gpu *gpu = gt_gpu_open((vkf_gpu_params){0});
    test_run();
    char cmd[4200];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", g_dir);
    int rc = gt_finish(&gpu);
    if (!rc)
        printf("test_preview: all checks passed\n");
    return rc;
}
