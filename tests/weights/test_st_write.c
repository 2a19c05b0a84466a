/*
 * The safetensors writer (vkflow/models.h): files it writes are read back
 * by vkf_weights_open with the right names, dtypes, shapes, values and
 * metadata; the layout is the Python writer's (sorted names, space-padded
 * 8-byte aligned header); random tensors are a pure function of (seed,
 * name); saving is atomic; bad arguments and allocation failures are
 * handled.
 */
#include <dirent.h>
#include <math.h>

#include "vkflow/models.h"

#include "wtest.h"

static char *g_dir;
static test_log g_log;

static char *tmp_path(const char *name)
{
    static char buf[8][4096];
    static int k;
    char *b = buf[k++ % 8];
    snprintf(b, 4096, "%s/%s", g_dir, name);
    return b;
}

static uint8_t *read_all(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *p = malloc((size_t)len + 1);
    if (fread(p, 1, (size_t)len, f) != (size_t)len) {
        free(p);
        p = NULL;
    }
    fclose(f);
    *n = (size_t)len;
    return p;
}

static uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

/* Adds the standard tensor set; `reverse` adds them in the opposite order. */
static int add_set(vkf_st_writer *w, bool reverse)
{
    static const int64_t s_rand[2] = {100, 50};
    static const int64_t s_small[3] = {2, 3, 4};
    static const int64_t s_data[1] = {6};
    static const int64_t s_empty[2] = {0, 3};
    /* f16 ties: 1+2^-11 -> 1 (even), 1+3·2^-11 -> 1+2^-9 (even), 65520 -> inf;
     * bf16 ties: 1+2^-8 -> 1, 1+3·2^-8 -> 1+2^-6 */
    static const float data[6] = {1.0f + 0x1p-11f, 1.0f + 3 * 0x1p-11f, 65520.0f,
                                  1.0f + 0x1p-8f, 1.0f + 3 * 0x1p-8f, -2.5f};
    int err = 0;
    for (int k = 0; k < 8; k++) {
        int i = reverse ? 7 - k : k;
        switch (i) {
        case 0: err |= vkf_st_writer_add_random(w, "model.rand32", VKF_WDT_F32, 2, s_rand, 0.5f, 0.25f); break;
        case 1: err |= vkf_st_writer_add_random(w, "model.rand16", VKF_WDT_F16, 2, s_rand, -1.0f, 2.0f); break;
        case 2: err |= vkf_st_writer_add_random(w, "a.randbf16", VKF_WDT_BF16, 2, s_rand, 0.0f, 0.02f); break;
        case 3: err |= vkf_st_writer_add_const(w, "b.ones", VKF_WDT_F16, 3, s_small, 1.0f); break;
        case 4: err |= vkf_st_writer_add_data(w, "c.data16", VKF_WDT_F16, 1, s_data, data); break;
        case 5: err |= vkf_st_writer_add_data(w, "c.databf16", VKF_WDT_BF16, 1, s_data, data); break;
        case 6: err |= vkf_st_writer_add_const(w, "scalar", VKF_WDT_F32, 0, NULL, 3.25f); break;
        case 7: err |= vkf_st_writer_add_const(w, "zz.empty", VKF_WDT_F32, 2, s_empty, 0.0f); break;
        }
    }
    return err;
}

static float *to_f32(vkf_weights *w, const char *name, const vkf_weight_info **info)
{
    const vkf_weight_info *t = vkf_weights_find(w, name);
    *info = t;
    if (!t)
        return NULL;
    float *f = malloc(sizeof(float) * (size_t)(t->numel ? t->numel : 1));
    if (vkf_weights_to_f32(w, t, f) != 0) {
        free(f);
        return NULL;
    }
    return f;
}

static void check_random_stats(vkf_weights *w, const char *name, vkf_wdtype dt, float mean,
                               float std)
{
    const vkf_weight_info *t;
    float *f = to_f32(w, name, &t);
    CHECK(f != NULL);
    if (!f)
        return;
    CHECK_EQ_INT(t->dtype, dt);
    CHECK_EQ_INT(t->ndim, 2);
    CHECK_EQ_INT(t->shape[0], 100);
    CHECK_EQ_INT(t->shape[1], 50);
    double lo = mean - std * sqrt(3.0), hi = mean + std * sqrt(3.0);
    double slack = dt == VKF_WDT_F32 ? 1e-6 : fabs(hi) * 0.01 + fabs(lo) * 0.01 + 1e-6;
    double s = 0, s2 = 0;
    int out_of_range = 0, distinct = 0;
    for (int64_t i = 0; i < t->numel; i++) {
        if (f[i] < lo - slack || f[i] > hi + slack)
            out_of_range++;
        if (i && f[i] != f[i - 1])
            distinct++;
        s += f[i];
        s2 += (double)f[i] * f[i];
    }
    double m = s / (double)t->numel, var = s2 / (double)t->numel - m * m;
    CHECK_EQ_INT(out_of_range, 0);
    CHECK(distinct > t->numel / 2);
    /* 5000 samples: the mean is within 4 standard errors, the std within 5% */
    CHECK(fabs(m - mean) < 4 * std / sqrt((double)t->numel) + 1e-3 * std);
    CHECK(fabs(sqrt(var) - std) < 0.05 * std);
    free(f);
}

static void test_roundtrip(void)
{
    vkf_st_writer *w = NULL;
    CHECK_EQ_INT(vkf_st_writer_create(1234, &w), 0);
    CHECK_EQ_INT(add_set(w, false), 0);
    CHECK_EQ_INT(vkf_st_writer_count(w), 8);
    CHECK_EQ_INT(vkf_st_writer_add_metadata(w, "format", "pt"), 0);
    CHECK_EQ_INT(vkf_st_writer_add_metadata(w, "modelspec.title", "first"), 0);
    CHECK_EQ_INT(vkf_st_writer_add_metadata(w, "modelspec.title", "synth \"q\" \\ \n"), 0);
    vkf_errbuf e = {{0}};
    const char *path = tmp_path("a.safetensors");
    CHECK_EQ_INT(vkf_st_writer_save(w, path, &e), 0);

    /* layout */
    size_t n = 0;
    uint8_t *raw = read_all(path, &n);
    CHECK(raw != NULL && n > 8);
    if (raw) {
        uint64_t hl = 0;
        for (int i = 0; i < 8; i++)
            hl |= (uint64_t)raw[i] << (8 * i);
        CHECK(hl % 8 == 0);
        CHECK(hl + 8 <= n);
        char *h = strndup((char *)raw + 8, (size_t)hl);
        CHECK(!strncmp(h, "{\"__metadata__\":{\"format\":\"pt\",\"modelspec.title\":"
                          "\"synth \\\"q\\\" \\\\ \\n\"},\"a.randbf16\":{\"dtype\":\"BF16\","
                          "\"shape\":[100,50],\"data_offsets\":[0,10000]},",
                       strlen("{\"__metadata__\":{\"format\":\"pt\",\"modelspec.title\":"
                              "\"synth \\\"q\\\" \\\\ \\n\"},\"a.randbf16\":{\"dtype\":\"BF16\","
                              "\"shape\":[100,50],\"data_offsets\":[0,10000]},")));
        /* names in strcmp order, padding spaces only after the closing brace */
        const char *order[] = {"\"a.randbf16\"", "\"b.ones\"", "\"c.data16\"",
                               "\"c.databf16\"", "\"model.rand16\"", "\"model.rand32\"",
                               "\"scalar\"", "\"zz.empty\""};
        const char *prev = h;
        for (size_t i = 0; i < VKF_ARRAY_SIZE(order); i++) {
            const char *p = strstr(h, order[i]);
            CHECK(p != NULL && p > prev);
            if (p)
                prev = p;
        }
        CHECK_HAS(h, "\"scalar\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":");
        CHECK_HAS(h, "\"zz.empty\":{\"dtype\":\"F32\",\"shape\":[0,3],\"data_offsets\":");
        size_t end = strlen(h);
        while (end && h[end - 1] == ' ')
            end--;
        CHECK(end > 0 && h[end - 1] == '}');
        CHECK(hl - end < 8);
        /* data area = 10000 + 48 + 12 + 12 + 10000 + 20000 + 4 + 0 bytes */
        CHECK_EQ_INT(n - 8 - hl, 10000 + 48 + 12 + 12 + 10000 + 20000 + 4);
        free(h);
    }
    free(raw);

    /* read back */
    vkf_weights *rw = NULL;
    CHECK_EQ_INT(vkf_weights_open(path, &rw, &g_log.log), 0);
    if (rw) {
        CHECK_EQ_INT(vkf_weights_count(rw), 8);
        CHECK_STR(vkf_weights_metadata_get(rw, "format"), "pt");
        CHECK_STR(vkf_weights_metadata_get(rw, "modelspec.title"), "synth \"q\" \\ \n");
        CHECK_EQ_INT(vkf_weights_metadata_count(rw), 2);
        check_random_stats(rw, "model.rand32", VKF_WDT_F32, 0.5f, 0.25f);
        check_random_stats(rw, "model.rand16", VKF_WDT_F16, -1.0f, 2.0f);
        check_random_stats(rw, "a.randbf16", VKF_WDT_BF16, 0.0f, 0.02f);

        const vkf_weight_info *t;
        float *f = to_f32(rw, "b.ones", &t);
        CHECK(f && t->dtype == VKF_WDT_F16 && t->numel == 24 && t->ndim == 3 &&
              t->shape[2] == 4);
        for (int i = 0; f && i < 24; i++)
            CHECK(f[i] == 1.0f);
        free(f);

        f = to_f32(rw, "c.data16", &t);
        CHECK(f && t->dtype == VKF_WDT_F16);
        if (f) {
            CHECK(f[0] == 1.0f);
            CHECK(f[1] == 1.0f + 0x1p-9f);
            CHECK(isinf(f[2]) && f[2] > 0);
            CHECK(f[5] == -2.5f);
        }
        free(f);
        f = to_f32(rw, "c.databf16", &t);
        CHECK(f && t->dtype == VKF_WDT_BF16);
        if (f) {
            CHECK(f[3] == 1.0f);
            CHECK(f[4] == 1.0f + 0x1p-6f);
            CHECK(f[5] == -2.5f);
            CHECK(f[2] == 65536.0f);
        }
        free(f);
        f = to_f32(rw, "scalar", &t);
        CHECK(f && t->ndim == 0 && t->numel == 1 && f[0] == 3.25f);
        free(f);
        t = vkf_weights_find(rw, "zz.empty");
        CHECK(t && t->numel == 0 && t->ndim == 2 && t->shape[1] == 3);
        vkf_weights_close(&rw);
    }
    vkf_st_writer_destroy(&w);
    CHECK(w == NULL);
}

static void test_determinism(void)
{
    vkf_errbuf e = {{0}};
    vkf_st_writer *a = NULL, *b = NULL, *c = NULL, *d = NULL;
    CHECK_EQ_INT(vkf_st_writer_create(7, &a), 0);
    CHECK_EQ_INT(vkf_st_writer_create(7, &b), 0);
    CHECK_EQ_INT(vkf_st_writer_create(8, &c), 0);
    CHECK_EQ_INT(add_set(a, false), 0);
    CHECK_EQ_INT(add_set(b, true), 0);  /* other insertion order */
    CHECK_EQ_INT(add_set(c, false), 0);
    CHECK_EQ_INT(vkf_st_writer_add_metadata(a, "k1", "v1"), 0);
    CHECK_EQ_INT(vkf_st_writer_add_metadata(a, "k2", "v2"), 0);
    CHECK_EQ_INT(vkf_st_writer_add_metadata(b, "k2", "v2"), 0);
    CHECK_EQ_INT(vkf_st_writer_add_metadata(b, "k1", "v1"), 0);
    CHECK_EQ_INT(vkf_st_writer_add_metadata(c, "k1", "v1"), 0);
    CHECK_EQ_INT(vkf_st_writer_add_metadata(c, "k2", "v2"), 0);
    CHECK_EQ_INT(vkf_st_writer_save(a, tmp_path("d1.safetensors"), &e), 0);
    CHECK_EQ_INT(vkf_st_writer_save(b, tmp_path("d2.safetensors"), &e), 0);
    CHECK_EQ_INT(vkf_st_writer_save(c, tmp_path("d3.safetensors"), &e), 0);
    /* saving twice gives the same file again */
    CHECK_EQ_INT(vkf_st_writer_save(a, tmp_path("d4.safetensors"), &e), 0);
    size_t n1, n2, n3, n4;
    uint8_t *p1 = read_all(tmp_path("d1.safetensors"), &n1);
    uint8_t *p2 = read_all(tmp_path("d2.safetensors"), &n2);
    uint8_t *p3 = read_all(tmp_path("d3.safetensors"), &n3);
    uint8_t *p4 = read_all(tmp_path("d4.safetensors"), &n4);
    CHECK(p1 && p2 && p3 && p4);
    if (p1 && p2 && p3 && p4) {
        CHECK(n1 == n2 && !memcmp(p1, p2, n1));
        CHECK(n1 == n4 && !memcmp(p1, p4, n1));
        CHECK(n1 == n3 && memcmp(p1, p3, n1) != 0);   /* other seed: other values */
    }
    free(p1);
    free(p2);
    free(p3);
    free(p4);

    /* A random tensor depends on (seed, name) only, not on its neighbours;
     * its first values are pinned so that every machine and every future
     * build writes the same synthesized models. */
    static const int64_t shp[1] = {4};
    CHECK_EQ_INT(vkf_st_writer_create(7, &d), 0);
    CHECK_EQ_INT(vkf_st_writer_add_random(d, "model.rand32", VKF_WDT_F32, 1, shp, 0.5f, 0.25f), 0);
    CHECK_EQ_INT(vkf_st_writer_save(d, tmp_path("d5.safetensors"), &e), 0);
    vkf_weights *w1 = NULL, *w5 = NULL;
    CHECK_EQ_INT(vkf_weights_open(tmp_path("d1.safetensors"), &w1, &g_log.log), 0);
    CHECK_EQ_INT(vkf_weights_open(tmp_path("d5.safetensors"), &w5, &g_log.log), 0);
    if (w1 && w5) {
        const vkf_weight_info *t1, *t5;
        float *f1 = to_f32(w1, "model.rand32", &t1);
        float *f5 = to_f32(w5, "model.rand32", &t5);
        CHECK(f1 && f5);
        if (f1 && f5) {
            CHECK(!memcmp(f1, f5, 4 * sizeof(float)));
            static const uint32_t golden[4] = {0x3f48ac5f, 0x3f5aba34, 0x3eb1b6ac, 0x3e452372};
            for (int i = 0; i < 4; i++) {
                if (f32_bits(f5[i]) != golden[i])
                    fprintf(stderr, "value %d: 0x%08x (%.9g)\n", i, f32_bits(f5[i]), f5[i]);
                CHECK_EQ_INT(f32_bits(f5[i]), golden[i]);
            }
        }
        free(f1);
        free(f5);
    }
    vkf_weights_close(&w1);
    vkf_weights_close(&w5);
    vkf_st_writer_destroy(&a);
    vkf_st_writer_destroy(&b);
    vkf_st_writer_destroy(&c);
    vkf_st_writer_destroy(&d);
}

static int count_dir_entries(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    if (!d)
        return -1;
    struct dirent *de;
    while ((de = readdir(d)))
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
            n++;
    closedir(d);
    return n;
}

static void test_errors(void)
{
    static const int64_t shp[2] = {2, 2}, neg[2] = {2, -1};
    static const float data[4] = {1, 2, 3, 4};
    vkf_st_writer *w = NULL;
    CHECK_EQ_INT(vkf_st_writer_create(1, NULL), VKF_EINVAL);
    CHECK_EQ_INT(vkf_st_writer_create(1, &w), 0);
    CHECK_EQ_INT(vkf_st_writer_add_const(w, "x", VKF_WDT_F32, 2, shp, 0), 0);
    CHECK_EQ_INT(vkf_st_writer_add_const(w, "x", VKF_WDT_F16, 2, shp, 0), VKF_EINVAL);
    CHECK_EQ_INT(vkf_st_writer_add_random(w, "x", VKF_WDT_F16, 2, shp, 0, 1), VKF_EINVAL);
    CHECK_EQ_INT(vkf_st_writer_add_data(w, "x", VKF_WDT_F16, 2, shp, data), VKF_EINVAL);
    CHECK_EQ_INT(vkf_st_writer_add_const(w, "i", VKF_WDT_I32, 2, shp, 0), VKF_EINVAL);
    CHECK_EQ_INT(vkf_st_writer_add_const(w, "f8", VKF_WDT_F8_E4M3, 2, shp, 0), VKF_EINVAL);
    CHECK_EQ_INT(vkf_st_writer_add_const(w, "neg", VKF_WDT_F32, 2, neg, 0), VKF_EINVAL);
    CHECK_EQ_INT(vkf_st_writer_add_const(w, "__metadata__", VKF_WDT_F32, 2, shp, 0), VKF_EINVAL);
    CHECK_EQ_INT(vkf_st_writer_add_const(w, "", VKF_WDT_F32, 2, shp, 0), VKF_EINVAL);
    CHECK_EQ_INT(vkf_st_writer_add_const(w, "dims", VKF_WDT_F32, 9, shp, 0), VKF_EINVAL);
    CHECK_EQ_INT(vkf_st_writer_add_random(w, "s", VKF_WDT_F32, 2, shp, 0, -1), VKF_EINVAL);
    CHECK_EQ_INT(vkf_st_writer_add_random(w, "s", VKF_WDT_F32, 2, shp, NAN, 1), VKF_EINVAL);
    CHECK_EQ_INT(vkf_st_writer_add_data(w, "d", VKF_WDT_F32, 2, shp, NULL), VKF_EINVAL);
    CHECK_EQ_INT(vkf_st_writer_add_metadata(w, NULL, "v"), VKF_EINVAL);
    CHECK_EQ_INT(vkf_st_writer_count(w), 1);
    /* the failed adds left no entry behind: "d" can still be added */
    CHECK_EQ_INT(vkf_st_writer_add_data(w, "d", VKF_WDT_F32, 2, shp, data), 0);
    CHECK_EQ_INT(vkf_st_writer_count(w), 2);

    /* a missing folder: error text names the file, nothing is created */
    vkf_errbuf e = {{0}};
    char *bad = tmp_path("no/such/dir/x.safetensors");
    CHECK(vkf_st_writer_save(w, bad, &e) < 0);
    CHECK_HAS(e.msg, "no/such/dir/x.safetensors");
    /* atomic: only the finished files in the folder, no temporaries */
    char *sub = tmp_path("atomic");
    CHECK(mkdir(sub, 0755) == 0);
    char target[4200];
    snprintf(target, sizeof(target), "%s/m.safetensors", sub);
    CHECK_EQ_INT(vkf_st_writer_save(w, target, &e), 0);
    CHECK_EQ_INT(count_dir_entries(sub), 1);
    /* overwriting replaces the file in place */
    CHECK_EQ_INT(vkf_st_writer_add_const(w, "e", VKF_WDT_F32, 2, shp, 5), 0);
    CHECK_EQ_INT(vkf_st_writer_save(w, target, &e), 0);
    CHECK_EQ_INT(count_dir_entries(sub), 1);
    vkf_weights *rw = NULL;
    CHECK_EQ_INT(vkf_weights_open(target, &rw, &g_log.log), 0);
    CHECK(rw && vkf_weights_count(rw) == 3);
    if (rw) {
        CHECK_EQ_INT(vkf_weights_metadata_count(rw), 0);
        const vkf_weight_info *t;
        float *f = to_f32(rw, "d", &t);
        CHECK(f && !memcmp(f, data, sizeof(data)));
        free(f);
    }
    vkf_weights_close(&rw);
    vkf_st_writer_destroy(&w);
    vkf_st_writer_destroy(&w);  /* NULL is fine */

    /* an empty writer makes a valid empty file */
    CHECK_EQ_INT(vkf_st_writer_create(1, &w), 0);
    CHECK_EQ_INT(vkf_st_writer_save(w, tmp_path("empty.safetensors"), &e), 0);
    CHECK_EQ_INT(vkf_weights_open(tmp_path("empty.safetensors"), &rw, &g_log.log), 0);
    CHECK(rw && vkf_weights_count(rw) == 0);
    vkf_weights_close(&rw);
    vkf_st_writer_destroy(&w);
}

/* Every allocation failing in turn: an error, no leak, no file. */
static void test_alloc_failures(void)
{
    static const int64_t shp[2] = {3, 3};
    static const float data[9] = {0};
    int done = 0;
    for (long k = 0; k < 200 && !done; k++) {
        long live = vkf_alloc_live();
        char *path = tmp_path("oom.safetensors");
        remove(path);
        vkf_alloc_fail_at(k);
        vkf_st_writer *w = NULL;
        vkf_errbuf e = {{0}};
        int err = vkf_st_writer_create(3, &w);
        if (!err)
            err = vkf_st_writer_add_random(w, "r", VKF_WDT_F16, 2, shp, 0, 1);
        if (!err)
            err = vkf_st_writer_add_data(w, "d", VKF_WDT_F32, 2, shp, data);
        if (!err)
            err = vkf_st_writer_add_metadata(w, "k", "v");
        if (!err)
            err = vkf_st_writer_save(w, path, &e);
        bool fired = vkf_alloc_failed();
        vkf_alloc_fail_at(-1);
        vkf_st_writer_destroy(&w);
        CHECK_EQ_INT(vkf_alloc_live(), live);
        if (!fired) {
            CHECK_EQ_INT(err, 0);
            done = 1;
        } else {
            CHECK(err < 0);
            FILE *f = fopen(path, "rb");
            CHECK(f == NULL);
            if (f)
                fclose(f);
        }
    }
    CHECK(done);
}

int main(void)
{
    test_log_init(&g_log);
    g_dir = test_mkdtemp("stwrite");
    test_roundtrip();
    test_determinism();
    test_errors();
    test_alloc_failures();
    test_rmtree(g_dir);
    free(g_dir);
    return test_exit_code("test_st_write");
}
