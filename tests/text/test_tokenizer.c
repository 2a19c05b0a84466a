/*
 * CLIP BPE tokenizer: the ids of shared/data/tokenizers/expected_ids.json and
 * of tests/reference/golden/clip_tokenize.json (reference tokenizer over
 * hand-picked and random Unicode text), special cases by hand, speed, and
 * every allocation failing in turn.
 */
#include <time.h>

#include "../test.h"
#include "text_test_util.h"
#include "vkflow/models.h"

static int compare_ids(const vkf_clip_tokenizer *t, const char *text, const cJSON *ids,
                       int skip_ends)
{
    int32_t *got = NULL;
    int n = 0;
    int err = vkf_clip_tokenize(t, text, &got, &n);
    CHECK_EQ_INT(err, 0);
    int want_n = cJSON_GetArraySize(ids) - 2 * skip_ends;
    bool same = !err && n == want_n;
    for (int i = 0; same && i < n; i++)
        same = got[i] == cJSON_GetArrayItem(ids, i + skip_ends)->valueint;
    CHECK(same);
    if (!same) {
        fprintf(stderr, "  text: \"%s\"\n  got:", text);
        for (int i = 0; i < n; i++)
            fprintf(stderr, " %d", got[i]);
        fprintf(stderr, "\n  want:");
        for (int i = skip_ends; i < cJSON_GetArraySize(ids) - skip_ends; i++)
            fprintf(stderr, " %d", cJSON_GetArrayItem(ids, i)->valueint);
        fprintf(stderr, "\n");
    }
    vkf_free(got);
    return same;
}

static void test_expected_ids(const vkf_clip_tokenizer *t)
{
    const char *dir = getenv("VKF_SHARED_DATA");
    if (!dir) {
        printf("VKF_SHARED_DATA unset: expected_ids.json not checked\n");
        return;
    }
    cJSON *j = load_json("VKF_SHARED_DATA", "", "tokenizers/expected_ids.json");
    CHECK(j);
    const cJSON *cases = cJSON_GetObjectItem(j, "cases"), *c;
    int n = 0;
    cJSON_ArrayForEach(c, cases) {
        const cJSON *ids = cJSON_GetObjectItem(c, "clip");
        CHECK_EQ_INT(cJSON_GetArrayItem(ids, 0)->valueint, VKF_CLIP_BOS);
        CHECK_EQ_INT(cJSON_GetArrayItem(ids, cJSON_GetArraySize(ids) - 1)->valueint, VKF_CLIP_EOS);
        compare_ids(t, cJSON_GetObjectItem(c, "text")->valuestring, ids, 1);
        n++;
    }
    CHECK_EQ_INT(n, 13);
    cJSON_Delete(j);
}

static void test_goldens(const vkf_clip_tokenizer *t)
{
    cJSON *j = load_json("VKF_SOURCE_ROOT", ".", "tests/reference/golden/clip_tokenize.json");
    CHECK(j);
    const cJSON *c;
    int n = 0, ok = 0;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(j, "cases")) {
        ok += compare_ids(t, cJSON_GetObjectItem(c, "text")->valuestring,
                          cJSON_GetObjectItem(c, "ids"), 0);
        n++;
    }
    printf("clip_tokenize.json: %d of %d cases match\n", ok, n);
    CHECK(n > 400);
    cJSON_Delete(j);
}

static void expect(const vkf_clip_tokenizer *t, const char *text, const int32_t *want, int want_n)
{
    int32_t *got = NULL;
    int n = -1;
    CHECK_EQ_INT(vkf_clip_tokenize(t, text, &got, &n), 0);
    CHECK(got != NULL);
    bool same = n == want_n;
    for (int i = 0; same && i < n; i++)
        same = got[i] == want[i];
    if (!same) {
        fprintf(stderr, "FAIL: \"%s\":", text);
        for (int i = 0; i < n; i++)
            fprintf(stderr, " %d", got[i]);
        fprintf(stderr, "\n");
    }
    CHECK(same);
    vkf_free(got);
}

static void test_by_hand(const vkf_clip_tokenizer *t)
{
    /* anchors from the shared data README */
    expect(t, "a photo of a cat", (const int32_t[]){320, 1125, 539, 320, 2368}, 5);
    expect(t, "", NULL, 0);
    expect(t, " \t\n ", NULL, 0);
    /* special tokens map straight to their ids */
    expect(t, "a <|endoftext|> b", (const int32_t[]){320, VKF_CLIP_EOS, 321}, 3);
    expect(t, "<|startoftext|>", (const int32_t[]){VKF_CLIP_BOS}, 1);
    /* case, composed and decomposed forms give the same ids */
    int32_t *a = NULL, *b = NULL;
    int na = 0, nb = 0;
    CHECK_EQ_INT(vkf_clip_tokenize(t, "CAF\xc3\x89", &a, &na), 0);
    CHECK_EQ_INT(vkf_clip_tokenize(t, "cafe\xcc\x81", &b, &nb), 0);
    CHECK(na == nb && na > 0 && !memcmp(a, b, (size_t)na * sizeof(int32_t)));
    vkf_free(a);
    vkf_free(b);
    /* final sigma: ΟΔΟΣ lower-cases to οδος with ς, not σ */
    CHECK_EQ_INT(vkf_clip_tokenize(t, "\xce\x9f\xce\x94\xce\x9f\xce\xa3", &a, &na), 0);
    CHECK_EQ_INT(vkf_clip_tokenize(t, "\xce\xbf\xce\xb4\xce\xbf\xcf\x82", &b, &nb), 0);
    CHECK(na == nb && na > 0 && !memcmp(a, b, (size_t)na * sizeof(int32_t)));
    vkf_free(a);
    vkf_free(b);
    /* invalid UTF-8 is tokenized as U+FFFD, never rejected */
    CHECK_EQ_INT(vkf_clip_tokenize(t, "a\xff\xc0\xed\xa0\x80z", &a, &na), 0);
    CHECK_EQ_INT(vkf_clip_tokenize(t, "a\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbdz",
                                   &b, &nb), 0);
    CHECK(na == nb && na > 0 && !memcmp(a, b, (size_t)na * sizeof(int32_t)));
    vkf_free(a);
    vkf_free(b);
    CHECK_EQ_INT(vkf_clip_tokenize(t, NULL, &a, &na), VKF_EINVAL);
    CHECK_EQ_INT(vkf_clip_tokenize(NULL, "x", &a, &na), VKF_EINVAL);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void test_speed(const vkf_clip_tokenizer *t)
{
    static const char *const words[] = {
        "masterpiece,", "best", "quality,", "ultra-detailed", "photograph", "of", "an",
        "astronaut", "riding", "a", "horse", "on", "mars,", "cinematic", "lighting,",
        "volumetric", "fog,", "(bokeh:1.2),", "8k,", "trending", "artstation", "Ελληνικά",
        "日本語", "supercalifragilistic"};
    size_t cap = 16384, len = 0;
    char *text = malloc(cap);
    for (int i = 0; i < 1000; i++) {
        const char *w = words[(i * 7 + i / 3) % VKF_ARRAY_SIZE(words)];
        len += (size_t)snprintf(text + len, cap - len, "%s ", w);
    }
    double best = 1e9;
    for (int r = 0; r < 5; r++) {
        int32_t *ids = NULL;
        int n = 0;
        double t0 = now_ms();
        CHECK_EQ_INT(vkf_clip_tokenize(t, text, &ids, &n), 0);
        double dt = now_ms() - t0;
        best = dt < best ? dt : best;
        CHECK(n > 1000);
        vkf_free(ids);
    }
    double t0 = now_ms();
    vkf_clip_tokenizer *t2 = NULL;
    CHECK_EQ_INT(vkf_clip_tokenizer_create(&t2), 0);
    double create_ms = now_ms() - t0;
    vkf_clip_tokenizer_destroy(&t2);
    printf("1000-word prompt (%zu bytes): %.2f ms; create: %.1f ms\n", len, best, create_ms);
#if defined(__SANITIZE_ADDRESS__)
    CHECK(best < 100.0);
#else
    CHECK(best < 10.0);
#endif
    free(text);
}

static void test_alloc_failures(void)
{
    long live0 = vkf_alloc_live();
    bool done = false;
    for (long k = 0; !done && k < 10000; k++) {
        vkf_clip_tokenizer *t = NULL;
        int32_t *ids = NULL;
        int n = 0;
        vkf_alloc_fail_at(k);
        int err = vkf_clip_tokenizer_create(&t);
        if (!err)
            err = vkf_clip_tokenize(t, "Caf\xc3\xa9 &amp; (ΟΔΟΣ) \xea\xb0\x80 a photo", &ids, &n);
        bool failed = vkf_alloc_failed();
        vkf_alloc_fail_at(-1);
        if (failed)
            CHECK_EQ_INT(err, VKF_ENOMEM);
        else {
            CHECK_EQ_INT(err, 0);
            done = true;
        }
        vkf_free(ids);
        vkf_clip_tokenizer_destroy(&t);
        CHECK_EQ_INT(vkf_alloc_live(), live0);
    }
    CHECK(done);
}

int main(void)
{
    vkf_clip_tokenizer *t = NULL;
    CHECK_EQ_INT(vkf_clip_tokenizer_create(&t), 0);
    if (!t)
        return test_exit_code("test_tokenizer");
    test_expected_ids(t);
    test_goldens(t);
    test_by_hand(t);
    test_speed(t);
    vkf_clip_tokenizer_destroy(&t);
    CHECK(t == NULL);
    vkf_clip_tokenizer_destroy(&t);
    test_alloc_failures();
    return test_exit_code("test_tokenizer");
}
