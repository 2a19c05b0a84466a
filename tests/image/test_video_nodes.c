/* The video nodes through the executor: LoadVideo's frame selection
 * (frames equal to the reader's, fps divided by select_every_nth, audio cut
 * to the same window), named errors for truncated / non-video files,
 * CreateVideo -> SaveVideo (mp4 + audio + prompt/workflow tags, counter
 * naming, no temporaries left), SaveWEBM, SaveAnimatedWEBP (EXIF metadata
 * that loads back), SaveAnimatedPNG ("comf" chunks, endless loop). */
#include <dirent.h>
#include <libavformat/avformat.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../gpu/gpu_test.h"
#include "graph/internal.h"
#include "io/meta.h"
#include "vkflow/media.h"
#include "vkflow/vkflow.h"

#define CHECK_HAS_MSG(s, sub)                                                            \
    do {                                                                                 \
        const char *s_ = (s);                                                            \
        if (!s_ || !strstr(s_, (sub))) {                                                 \
            fprintf(stderr, "%s:%d: message \"%s\" lacks \"%s\"\n", __FILE__, __LINE__,     \
                    s_ ? s_ : "(none)", (sub));                                          \
            gt_failures++;                                                               \
        }                                                                                \
    } while (0)

/* ---- test nodes ------------------------------------------------------------------ */

typedef struct capture {
    int64_t shape[4];
    float *img;
    int channels, rate;
    int64_t samples;
    double fps;
} capture;

static capture cap;

static int capture_exec(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    (void)ctx;
    (void)out;
    vkf_tensor *t = vkf_value_image(&in[0]);
    const vkf_audio *a = vkf_value_audio(&in[1]);
    free(cap.img);
    memcpy(cap.shape, vkf_tensor_shape(t), sizeof(cap.shape));
    cap.img = gt_download(t);
    cap.channels = a ? a->channels : -1;
    cap.rate = a ? a->sample_rate : -1;
    cap.samples = a ? a->samples : -1;
    cap.fps = in[2].u.f;
    return 0;
}

static const vkf_input_def capture_inputs[] = {
    {.name = "images", .type = "IMAGE"},
    {.name = "audio", .type = "AUDIO"},
    {.name = "fps", .type = VKF_T_FLOAT, .fmin = 0, .fmax = 1e9},
};

static const vkf_node_def capture_def = {
    .name = "TestCaptureAV",
    .inputs = capture_inputs, .nb_inputs = 3,
    .flags = VKF_NODE_OUTPUT | VKF_NODE_NOT_IDEMPOTENT,
    .execute = capture_exec,
};

/* A gradient batch [n, h, w, c] that changes from frame to frame. */
static float frame_value(int64_t f, int64_t y, int64_t x, int64_t c, int64_t w, int64_t h)
{
    return c == 0 ? (float)x / (float)w : c == 1 ? (float)y / (float)h : c == 2 ? (float)f / 10.0f : 0.75f;
}

static int frames_exec(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    int64_t n = in[0].u.i, w = in[1].u.i, h = in[2].u.i, c = in[3].u.i;
    vkf_gpu *gpu;
    vkf_tensor *t = NULL;
    int err = vkf_exec_gpu(ctx, &gpu);
    if (err < 0)
        return err;
    float *d = malloc(sizeof(float) * (size_t)(n * w * h * c));
    for (int64_t f = 0; f < n; f++)
        for (int64_t y = 0; y < h; y++)
            for (int64_t x = 0; x < w; x++)
                for (int64_t k = 0; k < c; k++)
                    d[((f * h + y) * w + x) * c + k] = frame_value(f, y, x, k, w, h);
    int64_t shape[4] = {n, h, w, c};
    if ((err = vkf_tensor_create(gpu, VKF_DTYPE_F32, 4, shape, &t)) >= 0 &&
        (err = vkf_tensor_upload(t, d)) >= 0)
        err = vkf_value_set_image(&out[0], t);
    else
        vkf_tensor_unref(&t);
    free(d);
    return err;
}

static const vkf_input_def frames_inputs[] = {
    VKF_INPUT_INT("count", 4, 1, 100), VKF_INPUT_INT("width", 64, 1, 4096),
    VKF_INPUT_INT("height", 48, 1, 4096), VKF_INPUT_INT("channels", 3, 3, 4),
};
static const vkf_output_def frames_outputs[] = {{.type = "IMAGE"}};

static const vkf_node_def frames_def = {
    .name = "TestFrames",
    .inputs = frames_inputs, .nb_inputs = 4,
    .outputs = frames_outputs, .nb_outputs = 1,
    .execute = frames_exec,
};

/* ---- set-up ------------------------------------------------------------------------ */

static char root[256], in_dir[300], out_dir[300], tmp_dir[300], data_dir[1024];
static vkf_registry *reg;
static vkf_paths *paths;
static vkf_executor *ex;

static void on_event(void *priv, const vkf_event *ev)
{
    (void)priv;
    (void)ev;
}

static void on_print(void *priv, const char *node, const char *text)
{
    (void)priv;
    (void)node;
    (void)text;
}

static int run(const char *json, const char *workflow, char **run_error)
{
    vkf_graph *g = NULL;
    vkf_load_error le = {0};
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
    if (err == VKF_EVALIDATION && run_error && !*run_error && val.nb_node_errors)
        *run_error = vkf_asprintf("%s: %s", val.node_errors[0].errors[0].message,
                                  val.node_errors[0].errors[0].details);
    vkf_validation_clear(&val);
    vkf_graph_free(&g);
    return err;
}

/* Runs json; returns the error text (caller frees) or NULL on success. */
static char *run_msg(const char *json, const char *workflow)
{
    char *msg = NULL;
    int err = run(json, workflow, &msg);
    if (err >= 0) {
        vkf_free(msg);
        return NULL;
    }
    if (!msg)
        msg = vkf_strdup(vkf_strerror(err));
    return msg;
}

static void copy_in(const char *src, const char *name)
{
    char dst[600];
    snprintf(dst, sizeof(dst), "%s/%s", in_dir, name);
    FILE *a = fopen(src, "rb"), *b = fopen(dst, "wb");
    CHECK(a && b);
    char buf[65536];
    size_t n;
    while (a && b && (n = fread(buf, 1, sizeof(buf), a)) > 0)
        CHECK(fwrite(buf, 1, n, b) == n);
    if (a)
        fclose(a);
    if (b)
        fclose(b);
}

static uint8_t *slurp(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    *size = 0;
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *d = malloc((size_t)n + 1);
    if (d && fread(d, 1, (size_t)n, f) != (size_t)n) {
        free(d);
        d = NULL;
    }
    fclose(f);
    *size = (size_t)n;
    return d;
}

static const char *clip(const char *name)
{
    static char buf[1200];
    snprintf(buf, sizeof(buf), "%s/video/%s", data_dir, name);
    return buf;
}

/* No temporaries beside the outputs. */
static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        n += e->d_name[0] != '.';
    if (d)
        closedir(d);
    return n;
}

/* ---- tests -------------------------------------------------------------------------- */

#define LOAD_COMPONENTS                                                                      \
    "{\"1\":{\"class_type\":\"LoadVideo\",\"inputs\":{\"file\":\"%s\"%s}},"                   \
    "\"2\":{\"class_type\":\"GetVideoComponents\",\"inputs\":{\"video\":[\"1\",0]}},"         \
    "\"3\":{\"class_type\":\"TestCaptureAV\",\"inputs\":{\"images\":[\"2\",0],"              \
    "\"audio\":[\"2\",1],\"fps\":[\"2\",2]}}}"

static void test_load_select(void)
{
    copy_in(clip("friday.mp4"), "friday.mp4");
    char json[2048];
    snprintf(json, sizeof(json), LOAD_COMPONENTS, "friday.mp4",
             ",\"frame_load_cap\":6,\"skip_first_frames\":10,\"select_every_nth\":3");
    char *msg = run_msg(json, NULL);
    CHECK(msg == NULL);
    if (msg) {
        fprintf(stderr, "load_select: %s\n", msg);
        vkf_free(msg);
        return;
    }
    CHECK(cap.shape[0] == 6 && cap.shape[1] == 480 && cap.shape[2] == 640 && cap.shape[3] == 3);
    CHECK(fabs(cap.fps - 10.0) < 1e-9);
    /* audio: 6 frames * 3 / 30 fps = 0.6 s from 1/3 s */
    CHECK(cap.channels >= 1 && cap.rate > 0);
    CHECK(llabs(cap.samples - (int64_t)(0.6 * cap.rate)) <= 1);
    /* frames 10, 13, ..., 25 exactly as the reader gives them */
    vkf_video_reader *r = NULL;
    char err[256];
    CHECK_OK(vkf_video_reader_open(clip("friday.mp4"), NULL, 0, &r, err, sizeof(err)));
    size_t npx = 640 * 480;
    float *f = malloc(npx * 3 * sizeof(float));
    int k = 0;
    for (int i = 0; i <= 25; i++) {
        bool want = i >= 10 && (i - 10) % 3 == 0;
        CHECK(vkf_video_reader_next(r, want ? f : NULL, NULL, err, sizeof(err)) == 1);
        if (want) {
            CHECK(memcmp(f, cap.img + (size_t)k * npx * 3, npx * 3 * sizeof(float)) == 0);
            k++;
        }
    }
    vkf_video_reader_close(&r);
    free(f);
}

/* A UI-format workflow as the frontend saves it: LoadVideo's widgets are
 * [file, "image"] (the upload button's value), the optional selection
 * inputs take their defaults. */
static void test_ui_format(void)
{
    const char *ui =
        "{\"last_node_id\":2,\"last_link_id\":1,\"nodes\":["
        "{\"id\":1,\"type\":\"LoadVideo\",\"inputs\":[],\"outputs\":[{\"name\":\"VIDEO\","
        "\"type\":\"VIDEO\",\"links\":[1]}],\"widgets_values\":[\"friday.mp4\",\"image\"]},"
        "{\"id\":2,\"type\":\"SaveVideo\",\"inputs\":[{\"name\":\"video\",\"type\":\"VIDEO\","
        "\"link\":1}],\"outputs\":[],\"widgets_values\":[\"video/ui\",\"auto\",\"auto\"]}],"
        "\"links\":[[1,1,0,2,0,\"VIDEO\"]],\"version\":0.4}";
    vkf_graph *g = NULL;
    vkf_load_error le = {0};
    CHECK(vkf_load_workflow_json(ui, strlen(ui), reg, &g, &le) == 0);
    if (!g) {
        fprintf(stderr, "ui: %s\n", le.message ? le.message : "?");
        vkf_load_error_clear(&le);
        return;
    }
    char *api = NULL;
    CHECK(vkf_graph_to_json(g, &api, false) == 0);
    CHECK(api && strstr(api, "\"file\":\"friday.mp4\""));
    CHECK(api && !strstr(api, "\"image\""));
    CHECK(api && strstr(api, "\"filename_prefix\":\"video/ui\""));
    vkf_free(api);
    vkf_graph_free(&g);
}

static void test_errors(void)
{
    /* a truncated WebM: LoadVideo probes fine, decoding names the cut */
    size_t size;
    uint8_t *d = slurp(clip("flower.webm"), &size);
    CHECK(d != NULL);
    char path[600], json[2048];
    snprintf(path, sizeof(path), "%s/cut.webm", in_dir);
    FILE *f = fopen(path, "wb");
    CHECK(f && fwrite(d, 1, size / 2, f) == size / 2);
    if (f)
        fclose(f);
    free(d);
    snprintf(json, sizeof(json), LOAD_COMPONENTS, "cut.webm", ",\"frame_load_cap\":0");
    char *msg = run_msg(json, NULL);
    CHECK_HAS_MSG(msg, "GetVideoComponents: 'cut.webm': truncated");
    vkf_free(msg);
    /* the first frames of the same file load: the cut is not reached */
    snprintf(json, sizeof(json), LOAD_COMPONENTS, "cut.webm", ",\"frame_load_cap\":5");
    msg = run_msg(json, NULL);
    CHECK(msg == NULL && cap.shape[0] == 5);
    vkf_free(msg);
    /* not a video */
    snprintf(path, sizeof(path), "%s/notes.mp4", in_dir);
    f = fopen(path, "wb");
    CHECK(f != NULL);
    for (int i = 0; f && i < 1000; i++)
        fputs("this is not a video ", f);
    if (f)
        fclose(f);
    snprintf(json, sizeof(json), LOAD_COMPONENTS, "notes.mp4", "");
    msg = run_msg(json, NULL);
    CHECK_HAS_MSG(msg, "LoadVideo: 'notes.mp4': not a media file");
    vkf_free(msg);
    /* missing: refused at validation, as ComfyUI words it */
    snprintf(json, sizeof(json), LOAD_COMPONENTS, "missing.mp4", "");
    msg = run_msg(json, NULL);
    CHECK_HAS_MSG(msg, "Invalid video file: missing.mp4");
    vkf_free(msg);
    /* skipping past the end leaves nothing: named */
    snprintf(json, sizeof(json), LOAD_COMPONENTS, "friday.mp4", ",\"skip_first_frames\":500");
    msg = run_msg(json, NULL);
    CHECK_HAS_MSG(msg, "no frames left");
    vkf_free(msg);
}

static bool tag_is(AVFormatContext *fmt, const char *key, const char *want_sub)
{
    AVDictionaryEntry *e = av_dict_get(fmt->metadata, key, NULL, 0);
    return e && strstr(e->value, want_sub);
}

static const char *workflow = "{\"nodes\": [], \"note\": \"caf\xc3\xa9\"}";

static void test_save_video(void)
{
    copy_in(clip("friday.mp4"), "friday.mp4");
    const char *json =
        "{\"1\":{\"class_type\":\"TestFrames\",\"inputs\":{\"count\":8,\"width\":64,\"height\":48,"
        "\"channels\":3}},"
        "\"2\":{\"class_type\":\"LoadVideo\",\"inputs\":{\"file\":\"friday.mp4\","
        "\"frame_load_cap\":2}},"
        "\"3\":{\"class_type\":\"GetVideoComponents\",\"inputs\":{\"video\":[\"2\",0]}},"
        "\"4\":{\"class_type\":\"CreateVideo\",\"inputs\":{\"images\":[\"1\",0],\"fps\":12,"
        "\"audio\":[\"3\",1]}},"
        "\"5\":{\"class_type\":\"SaveVideo\",\"inputs\":{\"video\":[\"4\",0],"
        "\"filename_prefix\":\"video/test\",\"format\":\"auto\",\"codec\":\"auto\"}}}";
    char *msg = run_msg(json, workflow);
    CHECK(msg == NULL);
    if (msg)
        fprintf(stderr, "save_video: %s\n", msg);
    vkf_free(msg);
    char path[600];
    snprintf(path, sizeof(path), "%s/video/test_00001_.mp4", out_dir);
    vkf_video_reader *r = NULL;
    char err[256];
    CHECK(vkf_video_reader_open(path, NULL, 0, &r, err, sizeof(err)) == 0);
    if (r) {
        const vkf_video_info *info = vkf_video_reader_info(r);
        CHECK(info->fps_num == 12 && info->fps_den == 1);
        CHECK(info->width == 64 && info->height == 48 && info->has_audio);
        int n = 0;
        while (vkf_video_reader_next(r, NULL, NULL, err, sizeof(err)) == 1)
            n++;
        CHECK(n == 8);
        vkf_video_reader_close(&r);
    }
    AVFormatContext *fmt = NULL;
    CHECK(avformat_open_input(&fmt, path, NULL, NULL) == 0);
    if (fmt) {
        CHECK(tag_is(fmt, "prompt", "\"class_type\": \"SaveVideo\"") ||
              tag_is(fmt, "prompt", "\"class_type\":\"SaveVideo\""));
        CHECK(tag_is(fmt, "workflow", "caf\\u00e9"));
        avformat_close_input(&fmt);
    }
    /* counter (a changed prompt: an identical one is served from the cache) */
    char json2[2048];
    snprintf(json2, sizeof(json2), "%s", json);
    memcpy(strstr(json2, "\"fps\":12"), "\"fps\":24", 8);
    msg = run_msg(json2, workflow);
    CHECK(msg == NULL);
    vkf_free(msg);
    snprintf(path, sizeof(path), "%s/video/test_00002_.mp4", out_dir);
    CHECK(access(path, F_OK) == 0);
    snprintf(path, sizeof(path), "%s/video", out_dir);
    CHECK(count_entries(path) == 2);

    /* the saved file loads back: every frame, close to the source */
    snprintf(path, sizeof(path), "%s/video/test_00001_.mp4", out_dir);
    copy_in(path, "saved.mp4");
    char j2[2048];
    snprintf(j2, sizeof(j2), LOAD_COMPONENTS, "saved.mp4", "");
    msg = run_msg(j2, NULL);
    CHECK(msg == NULL);
    vkf_free(msg);
    CHECK(cap.shape[0] == 8 && cap.shape[1] == 48 && cap.shape[2] == 64);
    CHECK(fabs(cap.fps - 12.0) < 1e-9);
    double e = 0;
    for (int64_t f = 0; f < 8; f++)
        for (int64_t y = 0; y < 48; y++)
            for (int64_t x = 0; x < 64; x++)
                for (int64_t c = 0; c < 3; c++)
                    e += fabs(cap.img[((f * 48 + y) * 64 + x) * 3 + c] -
                              frame_value(f, y, x, c, 64, 48));
    e /= 8.0 * 48 * 64 * 3;
    CHECK(e < 0.03);
    printf("SaveVideo -> LoadVideo mean abs error %.4f\n", e);

    /* WebM needs AV1, as ComfyUI says */
    const char *bad =
        "{\"1\":{\"class_type\":\"TestFrames\",\"inputs\":{\"count\":2,\"width\":64,\"height\":48,"
        "\"channels\":3}},"
        "\"4\":{\"class_type\":\"CreateVideo\",\"inputs\":{\"images\":[\"1\",0],\"fps\":12}},"
        "\"5\":{\"class_type\":\"SaveVideo\",\"inputs\":{\"video\":[\"4\",0],"
        "\"filename_prefix\":\"video/bad\",\"format\":\"webm\",\"codec\":\"h264\"}}}";
    msg = run_msg(bad, NULL);
    CHECK_HAS_MSG(msg, "WebM output requires the AV1 codec");
    vkf_free(msg);
}

static void test_save_webm(void)
{
    const char *json =
        "{\"1\":{\"class_type\":\"TestFrames\",\"inputs\":{\"count\":6,\"width\":64,\"height\":48,"
        "\"channels\":3}},"
        "\"2\":{\"class_type\":\"SaveWEBM\",\"inputs\":{\"images\":[\"1\",0],"
        "\"filename_prefix\":\"clip\",\"codec\":\"vp9\",\"fps\":8.5,\"crf\":20}}}";
    char *msg = run_msg(json, workflow);
    CHECK(msg == NULL);
    if (msg)
        fprintf(stderr, "save_webm: %s\n", msg);
    vkf_free(msg);
    char path[600], err[256];
    snprintf(path, sizeof(path), "%s/clip_00001_.webm", out_dir);
    vkf_video_reader *r = NULL;
    CHECK(vkf_video_reader_open(path, NULL, 0, &r, err, sizeof(err)) == 0);
    if (r) {
        const vkf_video_info *info = vkf_video_reader_info(r);
        CHECK(info->fps_num == 17 && info->fps_den == 2);
        CHECK(!strcmp(info->codec, "vp9") || !strcmp(info->codec, "libvpx-vp9"));
        int n = 0;
        while (vkf_video_reader_next(r, NULL, NULL, err, sizeof(err)) == 1)
            n++;
        CHECK(n == 6);
        vkf_video_reader_close(&r);
    }
    AVFormatContext *fmt = NULL;
    CHECK(avformat_open_input(&fmt, path, NULL, NULL) == 0);
    if (fmt) {
        CHECK(tag_is(fmt, "prompt", "SaveWEBM"));
        CHECK(tag_is(fmt, "workflow", "\"nodes\""));
        avformat_close_input(&fmt);
    }
}

/* Chunks of a RIFF WebP with the given FourCC. */
static int webp_chunks(const uint8_t *d, size_t n, const char *cc)
{
    int count = 0;
    for (size_t pos = 12; pos + 8 <= n;) {
        uint32_t len = d[pos + 4] | d[pos + 5] << 8 | d[pos + 6] << 16 | (uint32_t)d[pos + 7] << 24;
        if (!memcmp(d + pos, cc, 4))
            count++;
        pos += 8 + len + (len & 1);
    }
    return count;
}

static void test_save_animated(void)
{
    const char *json =
        "{\"1\":{\"class_type\":\"TestFrames\",\"inputs\":{\"count\":4,\"width\":32,\"height\":24,"
        "\"channels\":4}},"
        "\"2\":{\"class_type\":\"SaveAnimatedWEBP\",\"inputs\":{\"images\":[\"1\",0],"
        "\"filename_prefix\":\"animw\",\"fps\":6,\"lossless\":true,\"quality\":80,"
        "\"method\":\"default\"}},"
        "\"3\":{\"class_type\":\"SaveAnimatedPNG\",\"inputs\":{\"images\":[\"1\",0],"
        "\"filename_prefix\":\"animp\",\"fps\":6,\"compress_level\":4}}}";
    char *msg = run_msg(json, workflow);
    CHECK(msg == NULL);
    if (msg)
        fprintf(stderr, "save_animated: %s\n", msg);
    vkf_free(msg);
    char path[600];
    size_t n;
    /* WebP: 4 frames, EXIF that vkflow (and ComfyUI) load back */
    snprintf(path, sizeof(path), "%s/animw_00001_.webp", out_dir);
    uint8_t *d = slurp(path, &n);
    CHECK(d != NULL);
    if (d) {
        CHECK(webp_chunks(d, n, "ANMF") == 4);
        CHECK(webp_chunks(d, n, "EXIF") == 1);
        CHECK(n > 30 && (d[20] & 0x08) && (d[20] & 0x02));   /* EXIF and animation flags */
        char *prompt = NULL, *wf = NULL;
        CHECK(vkf_meta_extract(d, n, &prompt, &wf, NULL) == 0);
        CHECK(prompt && strstr(prompt, "SaveAnimatedWEBP"));
        CHECK(wf && strstr(wf, "caf\\u00e9"));
        vkf_free(prompt);
        vkf_free(wf);
        free(d);
    }
    /* APNG: "comf" chunks after the image data, acTL with 4 frames, endless */
    snprintf(path, sizeof(path), "%s/animp_00001_.png", out_dir);
    d = slurp(path, &n);
    CHECK(d != NULL);
    if (d) {
        const uint8_t *actl = memmem(d, n, "acTL", 4);
        CHECK(actl && actl[7] == 4 && !memcmp(actl + 8, "\0\0\0\0", 4));
        const uint8_t *comf = memmem(d, n, "comfprompt", 10);
        const uint8_t *comfw = memmem(d, n, "comfworkflow", 12);
        const uint8_t *idat = memmem(d, n, "IDAT", 4);
        CHECK(comf && comfw && idat && comf > idat);
        CHECK(comf && memmem(comf, n - (size_t)(comf - d), "SaveAnimatedPNG", 15));
        free(d);
        vkf_video_reader *r = NULL;
        char err[256];
        CHECK(vkf_video_reader_open(path, NULL, 0, &r, err, sizeof(err)) == 0);
        if (r) {
            int k = 0;
            float *rgb = malloc(sizeof(float) * 32 * 24 * 3), *alpha = malloc(sizeof(float) * 32 * 24);
            double e = 0;
            while (vkf_video_reader_next(r, rgb, alpha, err, sizeof(err)) == 1) {
                for (int y = 0; y < 24; y++)
                    for (int x = 0; x < 32; x++)
                        for (int c = 0; c < 3; c++)
                            e = fmax(e, fabs(rgb[(y * 32 + x) * 3 + c] - frame_value(k, y, x, c, 32, 24)));
                CHECK(fabs(alpha[0] - 191 / 255.0) < 1e-6);
                k++;
            }
            CHECK(k == 4);
            CHECK(e <= 1.0 / 255 + 1e-6);   /* lossless up to the 8-bit truncation */
            free(rgb);
            free(alpha);
            vkf_video_reader_close(&r);
        }
    }
    CHECK(count_entries(out_dir) >= 3);
}

int main(void)
{
    const char *sd = getenv("VKF_SHARED_DATA");
    snprintf(data_dir, sizeof(data_dir), "%s", sd ? sd : "../shared/data");
    struct stat st;
    if (stat(clip("friday.mp4"), &st) != 0) {
        fprintf(stderr, "no shared video clips: skipping\n");
        return 77;
    }
    vkf_gpu *probe = gt_gpu_open((vkf_gpu_params){0});
    vkf_gpu_destroy(&probe);
    const char *v = getenv("VKF_VALIDATION");
    vkf_gpu_params gp = {.validation = !(v && !strcmp(v, "0")), .log = &gt_log};
    if (gp.validation && vkf_gpu_create(&gp, &probe) == VKF_EUNSUPPORTED)
        gp.validation = false;
    vkf_gpu_destroy(&probe);

    snprintf(root, sizeof(root), "/tmp/vkf-video-XXXXXX");
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
    CHECK_OK(vkf_registry_add(reg, &frames_def));
    vkf_executor_params p = {.registry = reg, .paths = paths, .log = &gt_log,
                             .on_event = on_event, .gpu_params = &gp, .print = on_print};
    CHECK_OK(vkf_executor_create(&ex, &p));

    test_load_select();
    test_ui_format();
    test_errors();
    test_save_video();
    test_save_webm();
    test_save_animated();

    vkf_gpu *gpu = vkf_executor_gpu(ex);
    CHECK(gpu && vkf_gpu_validation_messages(gpu) == 0);
    vkf_executor_destroy(&ex);
    vkf_registry_destroy(&reg);
    vkf_paths_destroy(&paths);
    free(cap.img);
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
