/* core/io/video.c without a GPU: frame-accurate decoding of the clips in
 * shared/data/video, frame rates kept as fractions, truncated / corrupt /
 * non-video inputs giving named errors, decoding from memory, audio, and
 * the encoder (mp4 + AAC + metadata tags, round trip through the reader).
 *
 * Expected frame counts were measured when this test was written by
 * decoding every packet of each clip with libavcodec and counting the
 * frames (what `ffprobe -count_frames -show_entries stream=nb_read_frames`
 * reports; ffprobe itself was not installed), and agree with
 * shared/data/README.md. */
#include <libavformat/avformat.h>
#include <math.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../test.h"
#include "vkflow/media.h"

typedef struct clip {
    const char *name;
    int w, h, fps_num, fps_den;
    int64_t frames;
    bool audio;
} clip;

static const clip clips[] = {
    {"flower.mp4", 960, 540, 30000, 1001, 150, true},
    {"flower.webm", 960, 540, 30000, 1001, 150, true},
    {"friday.mp4", 640, 480, 30, 1, 185, true},
    {"decoded_taew2_1.mp4", 832, 480, 30, 1, 81, false},
};

static char data_dir[1024], tmp_dir[256];

static const char *data_path(const char *name)
{
    static char buf[2][1200];
    static int k;
    k ^= 1;
    snprintf(buf[k], sizeof(buf[k]), "%s/video/%s", data_dir, name);
    return buf[k];
}

static uint8_t *slurp(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
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

static void spit(const char *path, const uint8_t *d, size_t n)
{
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (f) {
        CHECK(fwrite(d, 1, n, f) == n);
        fclose(f);
    }
}

/* Decodes a whole file; returns the frame count or the error; keeps frame
 * `want` (converted) in *keep if asked. */
static int64_t count_frames(const char *path, const uint8_t *mem, size_t memsize, int *err_out,
                            char *msg, size_t msgsize, int64_t want, float **keep)
{
    vkf_video_reader *r = NULL;
    *err_out = vkf_video_reader_open(path, mem, memsize, &r, msg, msgsize);
    if (*err_out < 0)
        return -1;
    const vkf_video_info *info = vkf_video_reader_info(r);
    size_t npx = (size_t)info->width * (size_t)info->height;
    float *buf = keep ? malloc(npx * 3 * sizeof(float)) : NULL;
    int64_t n = 0;
    int got;
    while ((got = vkf_video_reader_next(r, n == want ? buf : NULL, NULL, msg, msgsize)) == 1)
        n++;
    CHECK(vkf_video_reader_frames(r) == n);
    *err_out = got;
    vkf_video_reader_close(&r);
    if (keep)
        *keep = buf;
    return n;
}

static void test_clip_counts(void)
{
    for (size_t i = 0; i < VKF_ARRAY_SIZE(clips); i++) {
        const clip *c = &clips[i];
        vkf_video_reader *r = NULL;
        char msg[256] = "";
        int err = vkf_video_reader_open(data_path(c->name), NULL, 0, &r, msg, sizeof(msg));
        CHECK_EQ_INT(err, 0);
        if (err < 0) {
            fprintf(stderr, "%s: %s\n", c->name, msg);
            continue;
        }
        const vkf_video_info *info = vkf_video_reader_info(r);
        CHECK_EQ_INT(info->width, c->w);
        CHECK_EQ_INT(info->height, c->h);
        CHECK_EQ_INT(info->fps_num, c->fps_num);
        CHECK_EQ_INT(info->fps_den, c->fps_den);
        CHECK_EQ_INT(info->has_audio, c->audio);
        vkf_video_reader_close(&r);
        int64_t n = count_frames(data_path(c->name), NULL, 0, &err, msg, sizeof(msg), -1, NULL);
        CHECK_EQ_INT(err, 0);
        CHECK_EQ_INT(n, c->frames);
        if (err < 0)
            fprintf(stderr, "%s: %s\n", c->name, msg);
    }
}

static double mad(const float *a, const float *b, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += fabs((double)a[i] - b[i]);
    return s / (double)n;
}

/* The same clip in H.264/MP4 and VP8/WebM: frame k of one matches frame k
 * of the other (frame accuracy across containers) and not frame k-8. */
static void test_frame_alignment(void)
{
    int err;
    char msg[256];
    float *m100 = NULL, *w100 = NULL, *w92 = NULL;
    count_frames(data_path("flower.mp4"), NULL, 0, &err, msg, sizeof(msg), 100, &m100);
    count_frames(data_path("flower.webm"), NULL, 0, &err, msg, sizeof(msg), 100, &w100);
    count_frames(data_path("flower.webm"), NULL, 0, &err, msg, sizeof(msg), 92, &w92);
    size_t n = (size_t)960 * 540 * 3;
    double same = mad(m100, w100, n), off = mad(m100, w92, n);
    CHECK(same < 0.03);
    CHECK(off > same * 1.5);
    float lo = 1, hi = 0;
    for (size_t i = 0; i < n; i++) {
        lo = m100[i] < lo ? m100[i] : lo;
        hi = m100[i] > hi ? m100[i] : hi;
    }
    CHECK(lo >= 0.0f && hi <= 1.0f && hi - lo > 0.5f);
    printf("flower frame 100: mp4 vs webm %.4f, vs webm frame 92 %.4f\n", same, off);
    free(m100);
    free(w100);
    free(w92);
}

static void test_memory_reader(void)
{
    size_t size;
    uint8_t *d = slurp(data_path("decoded_taew2_1.mp4"), &size);
    CHECK(d != NULL);
    if (!d)
        return;
    int err;
    char msg[256];
    CHECK_EQ_INT(count_frames(NULL, d, size, &err, msg, sizeof(msg), -1, NULL), 81);
    CHECK_EQ_INT(err, 0);
    free(d);
}

/* Truncated, corrupt and non-video inputs: each gives VKF_EPARSE (or
 * ENOTFOUND) with a message naming the problem, never a silent short
 * result. */
static void test_bad_inputs(void)
{
    char msg[256], path[512];
    int err;
    vkf_video_reader *r = NULL;
    CHECK_EQ_INT(vkf_video_reader_open("/nonexistent/x.mp4", NULL, 0, &r, msg, sizeof(msg)),
                 VKF_ENOTFOUND);
    CHECK(r == NULL);
    /* not a video at all */
    snprintf(path, sizeof(path), "%s/garbage.mp4", tmp_dir);
    uint8_t junk[4096];
    for (size_t i = 0; i < sizeof(junk); i++)
        junk[i] = (uint8_t)(i * 2654435761u >> 13);
    spit(path, junk, sizeof(junk));
    CHECK_EQ_INT(vkf_video_reader_open(path, NULL, 0, &r, msg, sizeof(msg)), VKF_EPARSE);
    CHECK_HAS(msg, "not a media file");
    /* empty */
    spit(path, junk, 0);
    CHECK_EQ_INT(vkf_video_reader_open(path, NULL, 0, &r, msg, sizeof(msg)), VKF_EPARSE);
    for (size_t i = 0; i < VKF_ARRAY_SIZE(clips); i++) {
        size_t size;
        uint8_t *d = slurp(data_path(clips[i].name), &size);
        CHECK(d != NULL);
        if (!d)
            continue;
        /* cut at 60 %: the header is intact, the data ends early */
        snprintf(path, sizeof(path), "%s/cut_%s", tmp_dir, clips[i].name);
        spit(path, d, size * 6 / 10);
        int64_t n = count_frames(path, NULL, 0, &err, msg, sizeof(msg), -1, NULL);
        CHECK_EQ_INT(err, VKF_EPARSE);
        CHECK(n < clips[i].frames);
        CHECK_HAS(msg, "truncated");
        if (err != VKF_EPARSE || !strstr(msg, "truncated"))
            fprintf(stderr, "%s cut: %lld frames, err %d: %s\n", clips[i].name, (long long)n, err, msg);
        /* cut inside the header */
        spit(path, d, 2000);
        n = count_frames(path, NULL, 0, &err, msg, sizeof(msg), -1, NULL);
        CHECK_EQ_INT(err, VKF_EPARSE);
        if (err != VKF_EPARSE)
            fprintf(stderr, "%s header cut: %lld frames, err %d: %s\n", clips[i].name, (long long)n, err, msg);
        /* 40000 bytes of noise in the middle */
        uint32_t x = 12345;
        for (size_t k = size / 3; k < size / 3 + 40000; k++) {
            x = x * 1103515245u + 12345u;
            d[k] = (uint8_t)(x >> 16);
        }
        snprintf(path, sizeof(path), "%s/noisy_%s", tmp_dir, clips[i].name);
        spit(path, d, size);
        n = count_frames(path, NULL, 0, &err, msg, sizeof(msg), -1, NULL);
        CHECK_EQ_INT(err, VKF_EPARSE);
        CHECK(strstr(msg, "corrupt") || strstr(msg, "truncated"));
        if (err != VKF_EPARSE)
            fprintf(stderr, "%s noisy: %lld frames, err %d: %s\n", clips[i].name, (long long)n, err, msg);
        free(d);
    }
}

static void test_audio(void)
{
    char msg[256];
    vkf_audio *a = NULL;
    CHECK_EQ_INT(vkf_audio_read(data_path("flower.mp4"), NULL, 0, 0, 0, &a, msg, sizeof(msg)), 0);
    CHECK(a != NULL);
    if (a) {
        double secs = (double)a->samples / a->sample_rate;
        CHECK(a->batch == 1 && a->channels >= 1 && a->channels <= 2);
        CHECK(secs > 4.9 && secs < 5.2);
        double e = 0;
        for (int64_t i = 0; i < a->samples * a->channels; i++)
            e += fabs(a->waveform[i]);
        printf("flower.mp4 audio energy %g\n", e);
        printf("flower.mp4 audio: %d ch, %d Hz, %lld samples\n", a->channels, a->sample_rate,
               (long long)a->samples);
        vkf_object *o = &a->obj;
        vkf_object_unref(&o);
    }
    /* a window: 1 s from 2 s */
    CHECK_EQ_INT(vkf_audio_read(data_path("friday.mp4"), NULL, 0, 2.0, 1.0, &a, msg, sizeof(msg)), 0);
    CHECK(a && a->samples == a->sample_rate);
    if (a) {
        double e = 0;
        for (int64_t i = 0; i < a->samples * a->channels; i++)
            e += fabs(a->waveform[i]);
        CHECK(e > 0);
        vkf_object *o = &a->obj;
        vkf_object_unref(&o);
    }
    CHECK_EQ_INT(vkf_audio_read(data_path("decoded_taew2_1.mp4"), NULL, 0, 0, 0, &a, msg,
                                sizeof(msg)), 0);
    CHECK(a == NULL);
}

/* mp4 (H.264 + AAC) with tags through the encoder, back through the
 * reader. */
static void test_encode_roundtrip(void)
{
    enum { W = 64, H = 48, N = 12 };
    uint8_t *frames = malloc((size_t)N * W * H * 3);
    for (int f = 0; f < N; f++)
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                uint8_t *p = frames + (((size_t)f * H + y) * W + x) * 3;
                p[0] = (uint8_t)(x * 4);
                p[1] = (uint8_t)(y * 5);
                p[2] = (uint8_t)(f * 20);
            }
    vkf_audio *a;
    CHECK_EQ_INT(vkf_audio_create(1, 2, 24000, 48000, &a), 0);
    for (int64_t i = 0; i < a->samples; i++) {
        a->waveform[i] = 0.5f * (float)sin(i * 0.05);
        a->waveform[a->samples + i] = -a->waveform[i];
    }
    const char *meta[] = {"prompt", "{\"1\": {}}", "workflow", "{\"nodes\": []}", NULL};
    const char *mux[] = {"movflags", "use_metadata_tags", NULL};
    vkf_video_encode e = {
        .format = "mp4", .codec = "libx264", .pix_fmt = "yuv420p", .width = W, .height = H,
        .channels = 3, .fps_num = 24, .fps_den = 1, .metadata = meta, .mux_opts = mux,
        .audio = a, .audio_codec = "aac",
    };
    uint8_t *out = NULL;
    size_t size = 0;
    char msg[256] = "";
    int err = vkf_video_encode_mem(&e, frames, N, &out, &size, msg, sizeof(msg));
    CHECK_EQ_INT(err, 0);
    if (err < 0)
        fprintf(stderr, "encode: %s\n", msg);
    vkf_video_reader *r = NULL;
    float *rgb = malloc(sizeof(float) * W * H * 3);
    if (err == 0 && vkf_video_reader_open(NULL, out, size, &r, msg, sizeof(msg)) == 0) {
        const vkf_video_info *info = vkf_video_reader_info(r);
        CHECK_EQ_INT(info->fps_num, 24);
        CHECK_EQ_INT(info->fps_den, 1);
        CHECK_EQ_INT(info->width, W);
        CHECK(info->has_audio);
        int n = 0, got;
        double worst = 0;
        while ((got = vkf_video_reader_next(r, rgb, NULL, msg, sizeof(msg))) == 1) {
            const uint8_t *src = frames + (size_t)n * W * H * 3;
            double d = 0;
            for (size_t i = 0; i < (size_t)W * H * 3; i++)
                d += fabs(rgb[i] - src[i] / 255.0);
            d /= W * H * 3;
            worst = d > worst ? d : worst;
            n++;
        }
        CHECK_EQ_INT(got, 0);
        CHECK_EQ_INT(n, N);
        CHECK(worst < 0.02);
        printf("mp4 round trip: worst mean abs error %.4f\n", worst);
        vkf_video_reader_close(&r);
        vkf_audio *back = NULL;
        CHECK_EQ_INT(vkf_audio_read(NULL, out, size, 0, 0, &back, msg, sizeof(msg)), 0);
        CHECK(back && back->channels == 2 && back->sample_rate == 48000);
        CHECK(back && labs((long)(back->samples - 24000)) < 2048);
        if (back) {
            vkf_object *o = &back->obj;
            vkf_object_unref(&o);
        }
        /* the tags, as ComfyUI reads them back */
        char path[512];
        snprintf(path, sizeof(path), "%s/tags.mp4", tmp_dir);
        spit(path, out, size);
        AVFormatContext *fmt = NULL;
        CHECK(avformat_open_input(&fmt, path, NULL, NULL) == 0);
        if (fmt) {
            AVDictionaryEntry *p = av_dict_get(fmt->metadata, "prompt", NULL, 0);
            AVDictionaryEntry *w = av_dict_get(fmt->metadata, "workflow", NULL, 0);
            CHECK(p && !strcmp(p->value, "{\"1\": {}}"));
            CHECK(w && !strcmp(w->value, "{\"nodes\": []}"));
            avformat_close_input(&fmt);
        }
    } else {
        CHECK(!"reader on encoded mp4");
    }
    /* an encoder this FFmpeg lacks is named */
    e.codec = "no-such-encoder";
    uint8_t *none = NULL;
    size_t nsize = 0;
    CHECK_EQ_INT(vkf_video_encode_mem(&e, frames, N, &none, &nsize, msg, sizeof(msg)),
                 VKF_EUNSUPPORTED);
    CHECK(none == NULL);
    CHECK_HAS(msg, "no-such-encoder");
    vkf_free(out);
    free(rgb);
    free(frames);
    vkf_object *o = &a->obj;
    vkf_object_unref(&o);
}

/* Fails the Nth host allocation for every N through open, decode, audio and
 * encode: each run either succeeds or returns VKF_ENOMEM, and leaks
 * nothing. */
static void test_alloc_failures(void)
{
    const char *src = getenv("VKF_SOURCE_ROOT");
    char path[1024];
    snprintf(path, sizeof(path), "%s/tests/fuzz/corpus_video/tiny.mp4", src ? src : ".");
    size_t size;
    uint8_t *d = slurp(path, &size);
    CHECK(d != NULL);
    if (!d)
        return;
    uint8_t px[16 * 16 * 3 * 2];
    for (size_t i = 0; i < sizeof(px); i++)
        px[i] = (uint8_t)(i * 13);
    int points = 0;
    for (long n = 0; n < 10000; n++) {
        long live = vkf_alloc_live();
        char msg[256];
        vkf_alloc_fail_at(n);
        vkf_video_reader *r = NULL;
        float rgb[16 * 16 * 3];
        int err = vkf_video_reader_open(NULL, d, size, &r, msg, sizeof(msg));
        while (err >= 0 && (err = vkf_video_reader_next(r, rgb, NULL, msg, sizeof(msg))) == 1) {
        }
        vkf_video_reader_close(&r);
        vkf_audio *a = NULL;
        int aerr = vkf_audio_read(NULL, d, size, 0, 0, &a, msg, sizeof(msg));
        if (a) {
            vkf_object *o = &a->obj;
            vkf_object_unref(&o);
        }
        vkf_video_encode e = {.format = "matroska", .codec = "mpeg4", .pix_fmt = "yuv420p",
                              .width = 16, .height = 16, .channels = 3, .fps_num = 5,
                              .fps_den = 1};
        uint8_t *out = NULL;
        size_t osize;
        int eerr = vkf_video_encode_mem(&e, px, 2, &out, &osize, msg, sizeof(msg));
        vkf_free(out);
        bool fired = vkf_alloc_failed();
        vkf_alloc_fail_at(-1);
        CHECK(err == 0 || err == VKF_ENOMEM);
        CHECK(aerr == 0 || aerr == VKF_ENOMEM);
        CHECK(eerr == 0 || eerr == VKF_ENOMEM);
        CHECK(fired || (err == 0 && aerr == 0 && eerr == 0));
        CHECK(vkf_alloc_live() == live);
        if (!fired)
            break;
        points++;
    }
    CHECK(points > 3);
    printf("allocation failure points: %d\n", points);
    free(d);
}

int main(void)
{
    const char *d = getenv("VKF_SHARED_DATA");
    snprintf(data_dir, sizeof(data_dir), "%s", d ? d : "../shared/data");
    struct stat st;
    if (stat(data_path("flower.mp4"), &st) != 0) {
        fprintf(stderr, "no %s: skipping\n", data_path("flower.mp4"));
        return 77;
    }
    snprintf(tmp_dir, sizeof(tmp_dir), "/tmp/vkf_test_video_XXXXXX");
    if (!mkdtemp(tmp_dir))
        return 1;
    test_clip_counts();
    test_frame_alignment();
    test_memory_reader();
    test_bad_inputs();
    test_audio();
    test_encode_roundtrip();
    test_alloc_failures();
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmp_dir);
    CHECK_EQ_INT(vkf_alloc_live(), 0);
    return test_exit_code("test_video");
}
