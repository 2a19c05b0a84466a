/*
 * Regression: every fuzz corpus file (safetensors and pickle corpora, and
 * the fixtures of tests/weights/data) replayed through both readers and
 * the magic-byte dispatch, from an exact-size heap copy so that ASan sees
 * any over-read.  Each must open cleanly or fail with a parse error.
 */
#include <dirent.h>

#include "io/weights_internal.h"
#include "wtest.h"

static int g_files, g_opened;

static void exercise(vkf_weights *w)
{
    float buf[4096];
    for (int i = 0; i < vkf_weights_count(w); i++) {
        const vkf_weight_info *t = vkf_weights_at(w, i);
        if (t->numel <= 4096)
            CHECK_EQ_INT(vkf_weights_to_f32(w, t, buf), 0);
    }
    vkf_detect_result det;
    vkf_weights_detect(w, &det);
    CHECK(det.family[0] != 0);
}

static void replay(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *data = malloc(n > 0 ? (size_t)n : 1);
    if (n > 0 && fread(data, 1, (size_t)n, f) != (size_t)n)
        n = 0;
    fclose(f);
    static const wt_reader readers[] = {WT_READER_AUTO, WT_READER_SAFETENSORS, WT_READER_PICKLE};
    for (size_t r = 0; r < VKF_ARRAY_SIZE(readers); r++) {
        vkf_weights *w = NULL;
        long live = vkf_alloc_live();
        int err = wt_open_memory_as(data, (size_t)n, path, readers[r], &w, NULL);
        if (err != 0 && err != VKF_EPARSE && err != VKF_EUNSUPPORTED)
            fprintf(stderr, "%s reader %d: %d\n", path, (int)r, err);
        CHECK(err == 0 || err == VKF_EPARSE || err == VKF_EUNSUPPORTED);
        CHECK((err == 0) == (w != NULL));
        if (w) {
            g_opened++;
            exercise(w);
        }
        vkf_weights_close(&w);
        CHECK_EQ_INT(vkf_alloc_live(), live);
    }
    /* And through the mapping path. */
    vkf_weights *w = NULL;
    if (vkf_weights_open(path, &w, NULL) == 0)
        exercise(w);
    vkf_weights_close(&w);
    free(data);
    g_files++;
}

static void replay_dir(const char *root, const char *rel)
{
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s/%s", root, rel);
    DIR *d = opendir(dir);
    CHECK(d != NULL);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char path[4096 + 512];
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        replay(path);
    }
    closedir(d);
}

int main(void)
{
    const char *src = getenv("VKF_SOURCE_ROOT");
    if (!src)
        src = ".";
    replay_dir(src, "tests/fuzz/corpus_safetensors");
    replay_dir(src, "tests/fuzz/corpus_pickle");
    replay_dir(src, "tests/weights/data");
    printf("replayed %d files, %d opened\n", g_files, g_opened);
    CHECK(g_files > 40);
    return test_exit_code("weights_corpus");
}
