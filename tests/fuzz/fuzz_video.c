/* libFuzzer target: the video reader (core/io/video.c) on arbitrary bytes
 * held in memory (libavformat through a custom AVIOContext): probe, open,
 * decode every frame (converting the first few), then the audio reader.
 * Errors must come back as VKF_E* codes with a message, never a crash, and
 * every allocation must be released.
 *
 * Built with -DVKF_FUZZ_REPLAY it gets a main() that replays the files of
 * the directories given (tests/fuzz/corpus_video: tiny clips made with the
 * encoder, plus cut and damaged copies); that replay runs in every build. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vkflow/media.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    long live = vkf_alloc_live();
    char msg[256];
    vkf_video_reader *r = NULL;
    int err = vkf_video_reader_open(NULL, data, size, &r, msg, sizeof(msg));
    if (err < 0) {
        if (r || !msg[0])
            abort();
    } else {
        const vkf_video_info *info = vkf_video_reader_info(r);
        if (info->width < 1 || info->height < 1 || info->fps_num < 1 || info->fps_den < 1)
            abort();
        /* bounded work per input: convert only small frames */
        size_t npx = (size_t)info->width * (size_t)info->height;
        float *rgb = npx <= 256 * 256 ? malloc(npx * 3 * sizeof(float)) : NULL;
        float *alpha = rgb ? malloc(npx * sizeof(float)) : NULL;
        int got;
        int64_t n = 0;
        while (n < 64 && (got = vkf_video_reader_next(r, n < 4 ? rgb : NULL, alpha, msg,
                                                     sizeof(msg))) == 1) {
            for (size_t i = 0; rgb && n < 4 && i < npx * 3; i++)
                if (!(rgb[i] >= 0.0f && rgb[i] <= 1.0f))
                    abort();
            n++;
        }
        if (vkf_video_reader_frames(r) != n)
            abort();
        free(rgb);
        free(alpha);
        vkf_video_reader_close(&r);
    }
    vkf_audio *a = NULL;
    err = vkf_audio_read(NULL, data, size, 0, 2.0, &a, msg, sizeof(msg));
    if (err < 0 && a)
        abort();
    if (a) {
        if (a->channels < 1 || a->sample_rate < 1 || a->samples < 0)
            abort();
        vkf_object *o = &a->obj;
        vkf_object_unref(&o);
    }
    if (vkf_alloc_live() != live)
        abort();
    return 0;
}

#ifdef VKF_FUZZ_REPLAY
#include <dirent.h>

/* Replays every file of the directories given. */
int main(int argc, char **argv)
{
    static uint8_t buf[1 << 20];
    int n = 0;
    for (int a = 1; a < argc; a++) {
        DIR *d = opendir(argv[a]);
        if (!d) {
            fprintf(stderr, "cannot open %s\n", argv[a]);
            return 1;
        }
        for (struct dirent *e; (e = readdir(d));) {
            if (e->d_name[0] == '.')
                continue;
            char *path = vkf_asprintf("%s/%s", argv[a], e->d_name);
            FILE *f = path ? fopen(path, "rb") : NULL;
            vkf_free(path);
            if (!f)
                continue;
            size_t len = fread(buf, 1, sizeof(buf), f);
            fclose(f);
            LLVMFuzzerTestOneInput(buf, len);
            n++;
        }
        closedir(d);
    }
    fprintf(stderr, "fuzz_video replay: %d inputs\n", n);
    printf("%d passed, 0 failed\n", n);
    return n > 0 ? 0 : 1;
}
#endif
