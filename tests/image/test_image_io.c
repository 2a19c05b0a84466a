/* LoadImage / SaveImage / PreviewImage through the executor: exact 8-bit
 * round trips, 16-bit / gray / palette decoding, alpha -> MASK, SaveImage
 * naming (counter, subfolders), embedded metadata, errors that name the
 * file, and no temporaries left by a failed save. */
#include <dirent.h>
#include <libavcodec/avcodec.h>
#include <libavutil/opt.h>
#include <png.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../gpu/gpu_test.h"
#include "graph/internal.h"
#include "vkflow/media.h"
#include "vkflow/vkflow.h"

/* ---- a capture node: downloads its IMAGE and MASK for the checks --------- */

typedef struct capture {
    int64_t ishape[4], mshape[3];
    float *img, *mask;
} capture;

static capture cap;

static int capture_exec(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    (void)ctx;
    (void)out;
    vkf_tensor *t = vkf_value_image(&in[0]), *m = vkf_value_mask(&in[1]);
    free(cap.img);
    free(cap.mask);
    memcpy(cap.ishape, vkf_tensor_shape(t), sizeof(cap.ishape));
    memcpy(cap.mshape, vkf_tensor_shape(m), sizeof(cap.mshape));
    cap.img = gt_download(t);
    cap.mask = gt_download(m);
    return 0;
}

static const vkf_input_def capture_inputs[] = {
    {.name = "image", .type = "IMAGE"},
    {.name = "mask", .type = "MASK"},
};

static const vkf_node_def capture_def = {
    .name = "TestCapture",
    .inputs = capture_inputs, .nb_inputs = 2,
    .flags = VKF_NODE_OUTPUT | VKF_NODE_NOT_IDEMPOTENT,
    .execute = capture_exec,
};

/* ---- set-up ------------------------------------------------------------------ */

static char root[256], in_dir[300], out_dir[300], tmp_dir[300];
static vkf_registry *reg;
static vkf_paths *paths;
static vkf_executor *ex;
static char executed[65536];   /* data_json of the "executed" events */

static void on_event(void *priv, const vkf_event *ev)
{
    (void)priv;
    if (!strcmp(ev->type, "executed") && ev->data_json) {
        size_t len = strlen(executed);
        snprintf(executed + len, sizeof(executed) - len, "%s\n", ev->data_json);
    }
}

static void on_print(void *priv, const char *node, const char *text)
{
    (void)priv;
    (void)node;
    (void)text;
}

/* Runs an API prompt; workflow (may be NULL) becomes extra_pnginfo. */
static int run(const char *json, const char *workflow, char **run_error)
{
    vkf_graph *g = NULL;
    vkf_load_error le = {0};
    executed[0] = 0;
    if (vkf_load_workflow_json(json, strlen(json), reg, &g, &le) < 0) {
        fprintf(stderr, "load: %s\n", le.message ? le.message : "?");
        vkf_load_error_clear(&le);
        return -100;
    }
    if (workflow) {
        vkf_free(g->workflow_json);
        g->workflow_json = vkf_strdup(workflow);
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

static char *path_in(const char *dir, const char *name)
{
    static char buf[4][1024];   /* a few at once: copy_file(path_in, path_in) */
    static int next;
    next = (next + 1) % 4;
    snprintf(buf[next], sizeof(buf[next]), "%s/%s", dir, name);
    return buf[next];
}

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* Writes a PNG with the classic API (any type and depth); samples are
 * big-endian for 16 bits, as PNG stores them. */
static void write_test_png(const char *path, int w, int h, int color, int depth,
                           const uint8_t *data, const png_color *pal, int npal,
                           const uint8_t *trns, int ntrns)
{
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (!f)
        return;
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    if (setjmp(png_jmpbuf(png))) {
        CHECK(!"png write failed");
        png_destroy_write_struct(&png, &info);
        fclose(f);
        return;
    }
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, depth, color, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (pal)
        png_set_PLTE(png, info, pal, npal);
    if (trns)
        png_set_tRNS(png, info, trns, ntrns, NULL);
    png_write_info(png, info);
    size_t rowbytes = png_get_rowbytes(png, info);
    for (int y = 0; y < h; y++)
        png_write_row(png, data + (size_t)y * rowbytes);
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
    fclose(f);
}

static char *read_all(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *d = malloc((size_t)n + 1);
    *size = fread(d, 1, (size_t)n, f);
    d[*size] = 0;
    fclose(f);
    return d;
}

static void copy_file(const char *from, const char *to, size_t limit)
{
    size_t n = 0;
    char *d = read_all(from, &n);
    CHECK(d != NULL);
    if (!d)
        return;
    FILE *f = fopen(to, "wb");
    fwrite(d, 1, n < limit ? n : limit, f);
    fclose(f);
    free(d);
}

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    if (d)
        closedir(d);
    return n;
}

#define LOAD_CAPTURE(name) \
    "{\"1\":{\"class_type\":\"LoadImage\",\"inputs\":{\"image\":\"" name "\"}}," \
    "\"2\":{\"class_type\":\"TestCapture\",\"inputs\":{\"image\":[\"1\",0],\"mask\":[\"1\",1]}}}"

static int load_capture(const char *name)
{
    char json[1024];
    snprintf(json, sizeof(json), LOAD_CAPTURE("%s"), name);
    char *msg = NULL;
    int err = run(json, NULL, &msg);
    if (err < 0)
        fprintf(stderr, "load_capture(%s): %s\n", name, msg ? msg : vkf_strerror(err));
    vkf_free(msg);
    return err;
}

static int save(const char *name, const char *prefix, const char *workflow)
{
    char json[1024];
    snprintf(json, sizeof(json),
             "{\"1\":{\"class_type\":\"LoadImage\",\"inputs\":{\"image\":\"%s\"}},"
             "\"9\":{\"class_type\":\"SaveImage\",\"inputs\":{\"images\":[\"1\",0],"
             "\"filename_prefix\":\"%s\"}}}", name, prefix);
    char *msg = NULL;
    int err = run(json, workflow, &msg);
    if (err < 0)
        fprintf(stderr, "save(%s): %s\n", name, msg ? msg : vkf_strerror(err));
    vkf_free(msg);
    return err;
}

/* ---- tests ------------------------------------------------------------------------ */

/* Every 8-bit PNG of the shared data: load -> save -> load is exact. */
static void test_roundtrip_shared(void)
{
    const char *data = getenv("VKF_SHARED_DATA");
    char dir[1024];
    snprintf(dir, sizeof(dir), "%s/images", data ? data : "");
    DIR *d = data ? opendir(dir) : NULL;
    if (!d) {
        fprintf(stderr, "no shared images: skipping the round trip of real files\n");
        return;
    }
    struct dirent *e;
    int done = 0;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len < 5 || strcmp(e->d_name + len - 4, ".png"))
            continue;
        char src[1300];
        snprintf(src, sizeof(src), "%s/%s", dir, e->d_name);
        copy_file(src, path_in(in_dir, e->d_name), (size_t)-1);
        if (load_capture(e->d_name) < 0) {
            CHECK(!"loading a shared PNG failed");
            continue;
        }
        capture a = cap;
        cap.img = cap.mask = NULL;
        char prefix[300], saved[400];
        snprintf(prefix, sizeof(prefix), "rt/%.*s", (int)(len - 4), e->d_name);
        CHECK(save(e->d_name, prefix, NULL) == 0);
        snprintf(saved, sizeof(saved), "%s_00001_.png [output]", prefix);
        CHECK(load_capture(saved) == 0);
        CHECK(cap.img && !memcmp(a.ishape, cap.ishape, sizeof(a.ishape)));
        if (cap.img && !memcmp(a.ishape, cap.ishape, sizeof(a.ishape))) {
            int64_t n = a.ishape[0] * a.ishape[1] * a.ishape[2] * a.ishape[3];
            if (memcmp(a.img, cap.img, (size_t)n * sizeof(float))) {
                fprintf(stderr, "%s: pixels changed in the round trip\n", e->d_name);
                gt_failures++;
            }
        }
        free(a.img);
        free(a.mask);
        done++;
    }
    closedir(d);
    fprintf(stderr, "round trip: %d shared PNGs\n", done);
}

/* RGBA 8-bit: exact values, MASK = 1 - alpha; the saved RGB reloads exactly. */
static void test_rgba_mask(void)
{
    enum { W = 5, H = 3 };
    uint8_t px[W * H * 4];
    for (int i = 0; i < W * H * 4; i++)
        px[i] = (uint8_t)(i * 37 + 11);
    write_test_png(path_in(in_dir, "rgba.png"), W, H, PNG_COLOR_TYPE_RGBA, 8, px, NULL, 0,
                   NULL, 0);
    CHECK(load_capture("rgba.png") == 0);
    CHECK(cap.ishape[0] == 1 && cap.ishape[1] == H && cap.ishape[2] == W && cap.ishape[3] == 3);
    CHECK(cap.mshape[0] == 1 && cap.mshape[1] == H && cap.mshape[2] == W);
    for (int i = 0; i < W * H && cap.img; i++) {
        for (int c = 0; c < 3; c++)
            CHECK(cap.img[i * 3 + c] == px[i * 4 + c] / 255.0f);
        CHECK(fabsf(cap.mask[i] - (1.0f - px[i * 4 + 3] / 255.0f)) < 1e-6f);
    }
    CHECK(save("rgba.png", "rgba", NULL) == 0);
    CHECK(strstr(executed, "\"filename\":\"rgba_00001_.png\"") != NULL);
    CHECK(strstr(executed, "\"type\":\"output\"") != NULL);
    capture a = cap;
    cap.img = cap.mask = NULL;
    CHECK(load_capture("rgba_00001_.png [output]") == 0);
    CHECK(cap.img && !memcmp(a.img, cap.img, sizeof(float) * W * H * 3));
    CHECK(cap.mshape[1] == 64 && cap.mshape[2] == 64 && cap.mask[0] == 0.0f);  /* no alpha */
    free(a.img);
    free(a.mask);
}

/* 16-bit RGB (/65535), 8-bit gray, palette with tRNS. */
static void test_formats(void)
{
    uint8_t rgb16[2 * 2 * 6];
    for (int i = 0; i < 24; i++)
        rgb16[i] = (uint8_t)(i * 91 + 5);
    write_test_png(path_in(in_dir, "rgb16.png"), 2, 2, PNG_COLOR_TYPE_RGB, 16, rgb16, NULL, 0,
                   NULL, 0);
    CHECK(load_capture("rgb16.png") == 0);
    for (int k = 0; k < 12 && cap.img; k++) {
        float want = (float)(rgb16[2 * k] << 8 | rgb16[2 * k + 1]) / 65535.0f;
        CHECK(fabsf(cap.img[k] - want) < 1e-7f);
    }

    uint8_t gray[3] = {0, 128, 255};
    write_test_png(path_in(in_dir, "gray.png"), 3, 1, PNG_COLOR_TYPE_GRAY, 8, gray, NULL, 0,
                   NULL, 0);
    CHECK(load_capture("gray.png") == 0);
    for (int i = 0; i < 3 && cap.img; i++)
        for (int c = 0; c < 3; c++)
            CHECK(cap.img[i * 3 + c] == gray[i] / 255.0f);

    png_color pal[2] = {{255, 0, 0}, {0, 0, 255}};
    uint8_t trns[1] = {0};
    uint8_t idx[2] = {0, 1};
    write_test_png(path_in(in_dir, "pal.png"), 2, 1, PNG_COLOR_TYPE_PALETTE, 8, idx, pal, 2,
                   trns, 1);
    CHECK(load_capture("pal.png") == 0);
    if (cap.img) {
        CHECK(cap.img[0] == 1.0f && cap.img[1] == 0.0f && cap.img[5] == 1.0f);
        CHECK(cap.mshape[2] == 2 && cap.mask[0] == 1.0f && cap.mask[1] == 0.0f);
    }
}

/* Counter after existing files (any extension), subfolders in the prefix,
 * metadata chunks that load back as the workflow. */
static void test_naming_metadata(void)
{
    FILE *f = fopen(path_in(out_dir, "cnt_00007_.png"), "wb");
    fclose(f);
    f = fopen(path_in(out_dir, "cnt_00009_.webp"), "wb");
    fclose(f);
    f = fopen(path_in(out_dir, "cntx_00050_.png"), "wb");
    fclose(f);
    CHECK(save("gray.png", "cnt", NULL) == 0);
    CHECK(exists(path_in(out_dir, "cnt_00010_.png")));
    CHECK(!exists(path_in(out_dir, "cnt_00001_.png")));

    CHECK(save("gray.png", "sub/dir/pic", "{\"nodes\":[],\"links\":[],\"version\":0.4}") == 0);
    CHECK(strstr(executed, "\"subfolder\":\"sub/dir\"") != NULL);
    CHECK(save("rgba.png", "sub/dir/pic", NULL) == 0);   /* same folder: counter 2 */
    char p[1024];
    snprintf(p, sizeof(p), "%s", path_in(out_dir, "sub/dir/pic_00001_.png"));
    CHECK(exists(p));
    CHECK(exists(path_in(out_dir, "sub/dir/pic_00002_.png")));
    size_t n = 0;
    char *bytes = read_all(p, &n);
    CHECK(bytes && memmem(bytes, n, "tEXtprompt", 10) && memmem(bytes, n, "tEXtworkflow", 12));
    free(bytes);
    vkf_graph *g = NULL;
    vkf_load_error le = {0};
    CHECK(vkf_load_workflow_file(p, reg, &g, &le) == 0);
    if (g) {
        const vkf_graph_node *gn = vkf_graph_find(g, "9");
        CHECK(gn && !strcmp(gn->class_type, "SaveImage"));
        CHECK(g->workflow_json && strstr(g->workflow_json, "\"nodes\""));
    }
    vkf_graph_free(&g);
    vkf_load_error_clear(&le);

    CHECK(save("gray.png", "%width%x%height%", NULL) == 0);
    CHECK(exists(path_in(out_dir, "3x1_00001_.png")));

    char *msg = NULL;
    CHECK(run("{\"1\":{\"class_type\":\"LoadImage\",\"inputs\":{\"image\":\"gray.png\"}},"
              "\"9\":{\"class_type\":\"SaveImage\",\"inputs\":{\"images\":[\"1\",0],"
              "\"filename_prefix\":\"../escape\"}}}", NULL, &msg) == VKF_ERUN);
    CHECK(msg && strstr(msg, "outside"));
    vkf_free(msg);

    CHECK(run("{\"1\":{\"class_type\":\"LoadImage\",\"inputs\":{\"image\":\"gray.png\"}},"
              "\"9\":{\"class_type\":\"PreviewImage\",\"inputs\":{\"images\":[\"1\",0]}}}",
              NULL, NULL) == 0);
    CHECK(strstr(executed, "\"type\":\"temp\"") && strstr(executed, "ComfyUI_temp_"));
    CHECK(count_entries(tmp_dir) == 1);
}

/* The file's SHA-256 joins the cache key: same file -> cached, a changed
 * file -> LoadImage runs again. */
static void test_fingerprint(void)
{
    uint8_t px[4] = {10, 20, 30, 40};
    write_test_png(path_in(in_dir, "fp.png"), 2, 2, PNG_COLOR_TYPE_GRAY, 8, px, NULL, 0, NULL, 0);
    int executed_n = -1, cached_n = -1;
    CHECK(load_capture("fp.png") == 0);
    CHECK(cap.img && cap.img[0] == 10 / 255.0f);
    CHECK(load_capture("fp.png") == 0);
    vkf_executor_last_stats(ex, &executed_n, &cached_n);
    CHECK(executed_n == 0 && cached_n == 2);
    px[0] = 200;
    write_test_png(path_in(in_dir, "fp.png"), 2, 2, PNG_COLOR_TYPE_GRAY, 8, px, NULL, 0, NULL, 0);
    CHECK(load_capture("fp.png") == 0);
    vkf_executor_last_stats(ex, &executed_n, &cached_n);
    CHECK(executed_n == 2 && cached_n == 0);
    CHECK(cap.img && cap.img[0] == 200 / 255.0f);
}

/* JPEG through FFmpeg: the size of the file, plausible values, no alpha. */
static void test_jpeg(void)
{
    const char *data = getenv("VKF_SHARED_DATA");
    char src[1024];
    snprintf(src, sizeof(src), "%s/images/elephant-660-480.jpg", data ? data : "");
    if (!data || !exists(src)) {
        fprintf(stderr, "no shared JPEG: skipping the JPEG check\n");
        return;
    }
    copy_file(src, path_in(in_dir, "elephant.jpg"), (size_t)-1);
    CHECK(load_capture("elephant.jpg") == 0);
    CHECK(cap.ishape[0] == 1 && cap.ishape[1] == 480 && cap.ishape[2] == 660 && cap.ishape[3] == 3);
    CHECK(cap.mshape[1] == 64 && cap.mshape[2] == 64);
    double sum = 0, lo = 1, hi = 0;
    for (int64_t i = 0; cap.img && i < 480 * 660 * 3; i++) {
        sum += cap.img[i];
        lo = cap.img[i] < lo ? cap.img[i] : lo;
        hi = cap.img[i] > hi ? cap.img[i] : hi;
    }
    CHECK(lo >= 0 && hi <= 1 && hi - lo > 0.5 && sum / (480 * 660 * 3) > 0.05);

    /* EXIF orientation, applied as PIL's exif_transpose: the same JPEG with
     * an APP1 segment saying 6 (rotate 90° clockwise, big-endian TIFF) and
     * 8 (rotate 270°, little-endian). */
    float *orig = cap.img;
    cap.img = NULL;
    size_t n = 0;
    char *jpg = read_all(path_in(in_dir, "elephant.jpg"), &n);
    for (int pass = 0; pass < 2 && jpg; pass++) {
        bool le = pass == 1;
        int o = le ? 8 : 6;
        uint8_t app1[36] = {0xff, 0xe1, 0, 34, 'E', 'x', 'i', 'f', 0, 0};
        uint8_t *t = app1 + 10;
        memcpy(t, le ? "II*\0" : "MM\0*", 4);
        t[le ? 4 : 7] = 8;                      /* IFD0 at offset 8 */
        t[le ? 8 : 9] = 1;                      /* one entry */
        t[le ? 10 : 11] = 0x12, t[le ? 11 : 10] = 0x01;   /* tag 0x0112 */
        t[le ? 12 : 13] = 3;                    /* SHORT */
        t[le ? 14 : 17] = 1;                    /* count 1 */
        t[le ? 18 : 19] = (uint8_t)o;           /* value */
        FILE *f = fopen(path_in(in_dir, "oriented.jpg"), "wb");
        fwrite(jpg, 1, 2, f);
        fwrite(app1, 1, sizeof(app1), f);
        fwrite(jpg + 2, 1, n - 2, f);
        fclose(f);
        CHECK(load_capture("oriented.jpg") == 0);
        CHECK(cap.ishape[1] == 660 && cap.ishape[2] == 480);
        int bad = 0;
        for (int y = 0; cap.img && orig && y < 660; y += 7)
            for (int x = 0; x < 480; x += 5) {
                int sx = o == 6 ? y : 660 - 1 - y, sy = o == 6 ? 480 - 1 - x : x;
                for (int c = 0; c < 3; c++)
                    bad += cap.img[((size_t)y * 480 + x) * 3 + c] !=
                           orig[((size_t)sy * 660 + sx) * 3 + c];
            }
        CHECK(bad == 0);
    }
    free(jpg);
    free(orig);
}

/* Still WebP through FFmpeg: a lossless RGBA file (made with FFmpeg's
 * libwebp encoder, when it has one) decodes exactly, alpha -> MASK. */
static void test_webp(void)
{
    enum { W = 6, H = 4 };
    const AVCodec *enc = avcodec_find_encoder_by_name("libwebp");
    if (!enc) {
        fprintf(stderr, "no libwebp encoder in FFmpeg: skipping the WebP check\n");
        return;
    }
    AVCodecContext *c = avcodec_alloc_context3(enc);
    AVFrame *fr = av_frame_alloc();
    AVPacket *pkt = av_packet_alloc();
    c->width = W;
    c->height = H;
    c->pix_fmt = AV_PIX_FMT_BGRA;
    c->time_base = (AVRational){1, 25};
    av_opt_set_int(c->priv_data, "lossless", 1, 0);
    CHECK(avcodec_open2(c, enc, NULL) == 0);
    fr->width = W;
    fr->height = H;
    fr->format = AV_PIX_FMT_BGRA;
    CHECK(av_frame_get_buffer(fr, 0) == 0);
    uint8_t want[W * H * 4];   /* RGBA */
    for (int y = 0; y < H; y++) {
        for (int x = 0; x < W; x++) {
            uint8_t *w = want + (y * W + x) * 4, *b = fr->data[0] + y * fr->linesize[0] + x * 4;
            w[0] = (uint8_t)(x * 40 + 3);
            w[1] = (uint8_t)(y * 60 + 7);
            w[2] = (uint8_t)(x * y * 9);
            w[3] = (uint8_t)(255 - (x + y * W) * 9);
            b[0] = w[2];
            b[1] = w[1];
            b[2] = w[0];
            b[3] = w[3];
        }
    }
    CHECK(avcodec_send_frame(c, fr) == 0 && avcodec_send_frame(c, NULL) == 0);
    CHECK(avcodec_receive_packet(c, pkt) == 0);
    FILE *f = fopen(path_in(in_dir, "still.webp"), "wb");
    fwrite(pkt->data, 1, (size_t)pkt->size, f);
    fclose(f);
    av_packet_free(&pkt);
    av_frame_free(&fr);
    avcodec_free_context(&c);
    CHECK(load_capture("still.webp") == 0);
    CHECK(cap.ishape[1] == H && cap.ishape[2] == W && cap.mshape[1] == H && cap.mshape[2] == W);
    for (int i = 0; cap.img && cap.mshape[2] == W && i < W * H; i++) {
        for (int k = 0; k < 3; k++)
            CHECK(cap.img[i * 3 + k] == want[i * 4 + k] / 255.0f);
        CHECK(cap.mask[i] == 1.0f - want[i * 4 + 3] / 255.0f);
    }
}

/* Missing, truncated, non-PNG files: errors name the file. */
static void test_errors(void)
{
    vkf_graph *g = NULL;
    vkf_load_error le = {0};
    const char *missing = LOAD_CAPTURE("nope.png");
    CHECK(vkf_load_workflow_json(missing, strlen(missing), reg, &g, &le) == 0);
    vkf_validation val = {0};
    CHECK(vkf_executor_run(ex, g, &val, NULL) == VKF_EVALIDATION);
    CHECK(val.nb_node_errors == 1 && val.node_errors[0].nb_errors == 1 &&
          !strcmp(val.node_errors[0].errors[0].details, "Invalid image file: nope.png"));
    vkf_validation_clear(&val);
    vkf_graph_free(&g);

    copy_file(path_in(in_dir, "rgba.png"), path_in(in_dir, "trunc.png"), 60);
    char *msg = NULL;
    char json[512];
    snprintf(json, sizeof(json), LOAD_CAPTURE("%s"), "trunc.png");
    CHECK(run(json, NULL, &msg) == VKF_ERUN);
    CHECK(msg && strstr(msg, "trunc.png"));
    vkf_free(msg);
    msg = NULL;

    FILE *f = fopen(path_in(in_dir, "fake.jpg"), "wb");
    fwrite("\xff\xd8\xff\xe0garbage", 1, 11, f);
    fclose(f);
    snprintf(json, sizeof(json), LOAD_CAPTURE("%s"), "fake.jpg");
    CHECK(run(json, NULL, &msg) == VKF_ERUN);
    CHECK(msg && strstr(msg, "fake.jpg") && strstr(msg, "corrupt JPEG"));
    vkf_free(msg);
    msg = NULL;

    f = fopen(path_in(in_dir, "anim.gif"), "wb");
    fwrite("GIF89a\1\0\1\0\0\0\0;", 1, 14, f);
    fclose(f);
    snprintf(json, sizeof(json), LOAD_CAPTURE("%s"), "anim.gif");
    CHECK(run(json, NULL, &msg) == VKF_ERUN);
    CHECK(msg && strstr(msg, "anim.gif") && strstr(msg, "corrupt GIF"));
    vkf_free(msg);
}

/* An animated PNG (three RGBA frames) loads as an IMAGE batch of 3 with
 * the masks 1 - alpha, as ComfyUI's LoadImage does with ImageSequence. */
static void test_animated(void)
{
    enum { W = 6, H = 4, N = 3 };
    uint8_t px[N * H * W * 4];
    for (int f = 0; f < N; f++)
        for (int i = 0; i < H * W; i++) {
            uint8_t *p = px + ((size_t)f * H * W + (size_t)i) * 4;
            p[0] = (uint8_t)(40 * f + i);
            p[1] = (uint8_t)(200 - 30 * f);
            p[2] = (uint8_t)(i * 9);
            p[3] = (uint8_t)(255 - 60 * f);
        }
    vkf_video_encode e = {.format = "apng", .codec = "apng", .pix_fmt = "rgba", .width = W,
                          .height = H, .channels = 4, .fps_num = 10, .fps_den = 1};
    uint8_t *data = NULL;
    size_t size = 0;
    char emsg[200] = "";
    int err = vkf_video_encode_mem(&e, px, N, &data, &size, emsg, sizeof(emsg));
    if (err < 0)
        fprintf(stderr, "apng encode: %s\n", emsg);
    CHECK(err == 0);
    FILE *f = fopen(path_in(in_dir, "anim.png"), "wb");
    if (f && data) {
        fwrite(data, 1, size, f);
        fclose(f);
    }
    vkf_free(data);
    CHECK(load_capture("anim.png") == 0);
    CHECK(cap.ishape[0] == N && cap.ishape[1] == H && cap.ishape[2] == W && cap.ishape[3] == 3);
    CHECK(cap.mshape[0] == N && cap.mshape[1] == H && cap.mshape[2] == W);
    int bad = 0;
    for (int k = 0; k < N * H * W && cap.img && cap.mask; k++) {
        for (int c = 0; c < 3; c++)
            bad += fabsf(cap.img[k * 3 + c] - px[k * 4 + c] / 255.0f) > 1e-6f;
        bad += fabsf(cap.mask[k] - (1.0f - px[k * 4 + 3] / 255.0f)) > 1e-6f;
    }
    CHECK(bad == 0);
    /* the same frames as a lossless animated WebP (libwebpdemux) */
    static const char *const wopts[] = {"lossless", "1", NULL}, *const wmux[] = {"loop", "0", NULL};
    vkf_video_encode we = {.format = "webp", .codec = "libwebp_anim", .pix_fmt = "bgra",
                           .width = W, .height = H, .channels = 4, .fps_num = 10, .fps_den = 1,
                           .codec_opts = wopts, .mux_opts = wmux};
    data = NULL;
    err = vkf_video_encode_mem(&we, px, N, &data, &size, emsg, sizeof(emsg));
    if (err == VKF_EUNSUPPORTED) {
        fprintf(stderr, "no libwebp_anim encoder: animated WebP not checked\n");
        return;
    }
    CHECK(err == 0);
    f = fopen(path_in(in_dir, "anim.webp"), "wb");
    if (f && data) {
        fwrite(data, 1, size, f);
        fclose(f);
    }
    vkf_free(data);
    CHECK(load_capture("anim.webp") == 0);
    CHECK(cap.ishape[0] == N && cap.ishape[1] == H && cap.ishape[2] == W);
    CHECK(cap.mshape[0] == N);
    bad = 0;
    for (int k = 0; k < N * H * W && cap.img && cap.mask; k++) {
        for (int c = 0; c < 3; c++)
            bad += fabsf(cap.img[k * 3 + c] - px[k * 4 + c] / 255.0f) > 1e-6f;
        bad += fabsf(cap.mask[k] - (1.0f - px[k * 4 + 3] / 255.0f)) > 1e-6f;
    }
    CHECK(bad == 0);
}

/* LoadImage's combo: image files directly in the input directory, sorted. */
static void test_input_list(void)
{
    FILE *f = fopen(path_in(in_dir, "notes.txt"), "wb");
    fclose(f);
    mkdir(path_in(in_dir, "sub"), 0755);
    f = fopen(path_in(in_dir, "sub/inner.png"), "wb");
    fclose(f);
    char **opts = NULL;
    int n = 0;
    CHECK(vkf_combo_options(&vkf_registry_find(reg, "LoadImage")->inputs[0], paths, &opts, &n) == 0);
    bool has_gray = false, has_jpg = false, bad = false;
    for (int i = 0; i < n; i++) {
        has_gray |= !strcmp(opts[i], "gray.png");
        has_jpg |= !strcmp(opts[i], "fake.jpg");
        bad |= !strcmp(opts[i], "notes.txt") || strchr(opts[i], '/') != NULL;
        bad |= i > 0 && strcmp(opts[i - 1], opts[i]) >= 0;
    }
    CHECK(has_gray && has_jpg && !bad);
    vkf_strv_free(&opts, n);
}

/* A write that fails half-way (file size limit) leaves no file behind. */
static void test_failed_save(void)
{
    enum { W = 64, H = 64 };
    uint8_t *px = malloc(W * H * 3);
    for (int i = 0; i < W * H * 3; i++)
        px[i] = (uint8_t)(gt_rand() * 127 + 128);
    write_test_png(path_in(in_dir, "noise.png"), W, H, PNG_COLOR_TYPE_RGB, 8, px, NULL, 0,
                   NULL, 0);
    free(px);
    CHECK(mkdir(path_in(out_dir, "fail"), 0755) == 0);
    struct rlimit old, lim;
    getrlimit(RLIMIT_FSIZE, &old);
    lim = old;
    lim.rlim_cur = 2000;
    signal(SIGXFSZ, SIG_IGN);
    CHECK(setrlimit(RLIMIT_FSIZE, &lim) == 0);
    char *msg = NULL;
    int err = run("{\"1\":{\"class_type\":\"LoadImage\",\"inputs\":{\"image\":\"noise.png\"}},"
                  "\"9\":{\"class_type\":\"SaveImage\",\"inputs\":{\"images\":[\"1\",0],"
                  "\"filename_prefix\":\"fail/x\"}}}", NULL, &msg);
    setrlimit(RLIMIT_FSIZE, &old);
    CHECK(err == VKF_ERUN);
    CHECK(msg && strstr(msg, "x_00001_.png"));
    vkf_free(msg);
    CHECK(count_entries(path_in(out_dir, "fail")) == 0);
}

int main(void)
{
    /* The device check and validation choice of the gpu suite. */
    vkf_gpu *probe = gt_gpu_open((vkf_gpu_params){0});
    vkf_gpu_destroy(&probe);
    const char *v = getenv("VKF_VALIDATION");
    vkf_gpu_params gp = {.validation = !(v && !strcmp(v, "0")), .log = &gt_log};
    if (gp.validation && vkf_gpu_create(&gp, &probe) == VKF_EUNSUPPORTED)
        gp.validation = false;
    vkf_gpu_destroy(&probe);

    snprintf(root, sizeof(root), "/tmp/vkf-image-XXXXXX");
    CHECK_OK(mkdtemp(root) ? 0 : VKF_EIO);
    snprintf(in_dir, sizeof(in_dir), "%s/input", root);
    snprintf(out_dir, sizeof(out_dir), "%s/output", root);
    snprintf(tmp_dir, sizeof(tmp_dir), "%s/temp", root);
    mkdir(in_dir, 0755);
    mkdir(out_dir, 0755);
    mkdir(tmp_dir, 0755);
    CHECK_OK(vkf_paths_create(&paths, &gt_log));
    CHECK_OK(vkf_paths_set_input_dir(paths, in_dir));
    CHECK_OK(vkf_paths_set_output_dir(paths, out_dir));
    CHECK_OK(vkf_paths_set_temp_dir(paths, tmp_dir));
    CHECK_OK(vkf_registry_create(&reg));
    CHECK_OK(vkf_registry_add(reg, &capture_def));
    vkf_executor_params p = {.registry = reg, .paths = paths, .log = &gt_log,
                             .on_event = on_event, .gpu_params = &gp, .print = on_print};
    CHECK_OK(vkf_executor_create(&ex, &p));

    test_rgba_mask();
    test_formats();
    test_naming_metadata();
    test_fingerprint();
    test_jpeg();
    test_webp();
    test_errors();
    test_animated();
    test_input_list();
    test_failed_save();
    test_roundtrip_shared();

    vkf_gpu *gpu = vkf_executor_gpu(ex);
    CHECK(gpu && vkf_gpu_validation_messages(gpu) == 0);
    vkf_executor_destroy(&ex);
    vkf_registry_destroy(&reg);
    vkf_paths_destroy(&paths);
    free(cap.img);
    free(cap.mask);
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
