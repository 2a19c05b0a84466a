/*
 * safetensors: round trips of every dtype, conversion tables (f8, f16,
 * bf16), each hostile-header case with its error, the real files of
 * shared/data, a fail-the-Nth-allocation loop, load speed.  GPU upload is
 * in test_weights_gpu.c.
 */
#include <math.h>
#include <time.h>

#include "wtest.h"

static char *g_dir;
static test_log g_log;

static char *tmp_path(const char *name)
{
    static char buf[8][4096 + 256];
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof(buf[k]), "%s/%s", g_dir, name);
    return buf[k];
}

static bool same_float(float a, float b)
{
    if (isnan(a) || isnan(b))
        return isnan(a) && isnan(b);
    return a == b && signbit(a) == signbit(b);
}

static void test_fp8_tables(void)
{
    static const struct { uint8_t v; float f; } e4m3[] = {
        {0x00, 0.0f}, {0x80, -0.0f}, {0x01, 0.001953125f}, {0x07, 0.013671875f},
        {0x08, 0.015625f}, {0x38, 1.0f}, {0x39, 1.125f}, {0xb8, -1.0f}, {0x40, 2.0f},
        {0x7e, 448.0f}, {0xfe, -448.0f}, {0x30, 0.5f}, {0x5f, 30.0f}, {0x77, 240.0f},
        {0x78, 256.0f},
    };
    for (size_t i = 0; i < VKF_ARRAY_SIZE(e4m3); i++) {
        float got = vkf_f8e4m3_to_f32(e4m3[i].v);
        if (!same_float(got, e4m3[i].f))
            fprintf(stderr, "e4m3 0x%02x: %g != %g\n", e4m3[i].v, got, e4m3[i].f);
        CHECK(same_float(got, e4m3[i].f));
    }
    CHECK(isnan(vkf_f8e4m3_to_f32(0x7f)));
    CHECK(isnan(vkf_f8e4m3_to_f32(0xff)));
    /* e4m3fn has no infinities: every other code is finite and the
     * positive codes are strictly increasing. */
    for (int v = 1; v < 0x7f; v++) {
        CHECK(isfinite(vkf_f8e4m3_to_f32((uint8_t)v)));
        CHECK(vkf_f8e4m3_to_f32((uint8_t)v) > vkf_f8e4m3_to_f32((uint8_t)(v - 1)));
        CHECK(same_float(vkf_f8e4m3_to_f32((uint8_t)(v | 0x80)), -vkf_f8e4m3_to_f32((uint8_t)v)));
    }
    static const struct { uint8_t v; float f; } e5m2[] = {
        {0x00, 0.0f}, {0x80, -0.0f}, {0x01, 1.52587890625e-05f}, {0x03, 4.57763671875e-05f},
        {0x04, 6.103515625e-05f}, {0x3c, 1.0f}, {0x3d, 1.25f}, {0xbc, -1.0f},
        {0x7b, 57344.0f}, {0x7c, INFINITY}, {0xfc, -INFINITY}, {0x38, 0.5f},
    };
    for (size_t i = 0; i < VKF_ARRAY_SIZE(e5m2); i++)
        CHECK(same_float(vkf_f8e5m2_to_f32(e5m2[i].v), e5m2[i].f));
    for (int v = 0x7d; v <= 0x7f; v++) {
        CHECK(isnan(vkf_f8e5m2_to_f32((uint8_t)v)));
        CHECK(isnan(vkf_f8e5m2_to_f32((uint8_t)(v | 0x80))));
    }
    for (int v = 1; v < 0x7c; v++)
        CHECK(vkf_f8e5m2_to_f32((uint8_t)v) > vkf_f8e5m2_to_f32((uint8_t)(v - 1)));
}

static void test_half(void)
{
    CHECK_EQ_INT(vkf_f32_to_f16(1.0f), 0x3c00);
    CHECK_EQ_INT(vkf_f32_to_f16(-2.0f), 0xc000);
    CHECK_EQ_INT(vkf_f32_to_f16(65504.0f), 0x7bff);
    CHECK_EQ_INT(vkf_f32_to_f16(65520.0f), 0x7c00);          /* rounds to inf */
    CHECK_EQ_INT(vkf_f32_to_f16(65519.0f), 0x7bff);
    CHECK_EQ_INT(vkf_f32_to_f16(ldexpf(1.0f, -24)), 0x0001); /* smallest subnormal */
    CHECK_EQ_INT(vkf_f32_to_f16(ldexpf(1.0f, -25)), 0x0000); /* tie to even: 0 */
    CHECK_EQ_INT(vkf_f32_to_f16(ldexpf(3.0f, -25)), 0x0002); /* tie to even: 2 */
    CHECK_EQ_INT(vkf_f32_to_f16(1.0f + ldexpf(1.0f, -11)), 0x3c00);
    CHECK_EQ_INT(vkf_f32_to_f16(1.0f + ldexpf(3.0f, -11)), 0x3c02);
    CHECK_EQ_INT(vkf_f32_to_f16(INFINITY), 0x7c00);
    CHECK((vkf_f32_to_f16(NAN) & 0x7c00) == 0x7c00 && (vkf_f32_to_f16(NAN) & 0x3ff));
    CHECK_EQ_INT(vkf_f32_to_f16(-0.0f), 0x8000);
    /* Every finite f16 survives f16 -> f32 -> f16. */
    int bad = 0;
    for (int h = 0; h < 0x10000; h++) {
        if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff))
            continue;
        bad += vkf_f32_to_f16(vkf_f16_to_f32((uint16_t)h)) != h;
    }
    CHECK_EQ_INT(bad, 0);
    CHECK(same_float(vkf_bf16_to_f32(0x3f80), 1.0f));
    CHECK(same_float(vkf_bf16_to_f32(0xc020), -2.5f));
}

/* One tensor of every dtype, written and read back. */
static void test_roundtrip(void)
{
    float f32[3] = {1.5f, -2.0f, 1e-30f};
    uint16_t f16[3] = {0x3c00, 0xc000, 0x0001};
    uint16_t bf16[3] = {0x3f80, 0xc020, 0x7f80};
    double f64[2] = {0.1, -1e300};
    uint8_t e4[4] = {0x38, 0x7e, 0x7f, 0x01};
    uint8_t e5[4] = {0x3c, 0x7c, 0x7d, 0x01};
    int8_t i8[3] = {-128, 0, 127};
    uint8_t u8[3] = {0, 128, 255};
    int16_t i16[2] = {-32768, 32767};
    int32_t i32[2] = {-7, 1 << 30};
    int64_t i64[2] = {-3, (int64_t)1 << 40};
    uint8_t b[3] = {1, 0, 1};
    st_tensor t[] = {
        {"f32", "F32", 1, {3}, f32, sizeof(f32)},
        {"f16", "F16", 1, {3}, f16, sizeof(f16)},
        {"bf16", "BF16", 1, {3}, bf16, sizeof(bf16)},
        {"f64", "F64", 2, {2, 1}, f64, sizeof(f64)},
        {"e4m3", "F8_E4M3", 2, {2, 2}, e4, sizeof(e4)},
        {"e5m2", "F8_E5M2", 1, {4}, e5, sizeof(e5)},
        {"i8", "I8", 1, {3}, i8, sizeof(i8)},
        {"u8", "U8", 1, {3}, u8, sizeof(u8)},
        {"i16", "I16", 1, {2}, i16, sizeof(i16)},
        {"i32", "I32", 1, {2}, i32, sizeof(i32)},
        {"i64", "I64", 1, {2}, i64, sizeof(i64)},
        {"bool", "BOOL", 1, {3}, b, sizeof(b)},
        {"scalar", "F32", 0, {0}, f32, 4},
        {"empty", "F16", 2, {0, 5}, "", 0},
    };
    const char *path = tmp_path("all.safetensors");
    st_write(path, t, (int)VKF_ARRAY_SIZE(t), "{\"format\":\"pt\",\"note\":\"h\\u00e9\"}");
    vkf_weights *w = NULL;
    CHECK_EQ_INT(vkf_weights_open(path, &w, &g_log.log), 0);
    if (!w)
        return;
    CHECK_EQ_INT(vkf_weights_count(w), (int)VKF_ARRAY_SIZE(t));
    CHECK_EQ_INT(vkf_weights_get_format(w), VKF_WEIGHTS_SAFETENSORS);
    CHECK_STR(vkf_weights_metadata_get(w, "format"), "pt");
    CHECK_STR(vkf_weights_metadata_get(w, "note"), "h\xc3\xa9");
    CHECK_EQ_INT(vkf_weights_metadata_count(w), 2);
    /* Sorted by name. */
    for (int i = 1; i < vkf_weights_count(w); i++)
        CHECK(strcmp(vkf_weights_at(w, i - 1)->name, vkf_weights_at(w, i)->name) < 0);
    for (size_t i = 0; i < VKF_ARRAY_SIZE(t); i++) {
        const vkf_weight_info *info = vkf_weights_find(w, t[i].name);
        CHECK(info != NULL);
        if (!info)
            continue;
        CHECK_STR(vkf_wdtype_name(info->dtype), t[i].dtype);
        CHECK_EQ_INT(info->ndim, t[i].ndim);
        CHECK_EQ_INT(info->nbytes, t[i].nbytes);
        const void *data;
        size_t size;
        CHECK_EQ_INT(vkf_weights_data(w, info, &data, &size), 0);
        CHECK_EQ_INT(size, t[i].nbytes);
        CHECK(size == 0 || !memcmp(data, t[i].data, size));
    }
    struct { const char *name; float v[4]; int n; } conv[] = {
        {"f32", {1.5f, -2.0f, 1e-30f}, 3},
        {"f16", {1.0f, -2.0f, 5.9604644775390625e-08f}, 3},
        {"bf16", {1.0f, -2.5f, INFINITY}, 3},
        {"f64", {0.1f, -INFINITY}, 2},
        {"e4m3", {1.0f, 448.0f, NAN, 0.001953125f}, 4},
        {"e5m2", {1.0f, INFINITY, NAN, 1.52587890625e-05f}, 4},
        {"i8", {-128, 0, 127}, 3},
        {"u8", {0, 128, 255}, 3},
        {"i16", {-32768, 32767}, 2},
        {"i32", {-7, 1073741824.0f}, 2},
        {"i64", {-3, 1099511627776.0f}, 2},
        {"bool", {1, 0, 1}, 3},
        {"scalar", {1.5f}, 1},
    };
    for (size_t i = 0; i < VKF_ARRAY_SIZE(conv); i++) {
        const vkf_weight_info *info = vkf_weights_find(w, conv[i].name);
        float out[8];
        uint16_t h[8];
        CHECK_EQ_INT(vkf_weights_to_f32(w, info, out), 0);
        CHECK_EQ_INT(vkf_weights_to_f16(w, info, h), 0);
        for (int k = 0; k < conv[i].n; k++) {
            if (!same_float(out[k], conv[i].v[k]))
                fprintf(stderr, "%s[%d]: %g != %g\n", conv[i].name, k, out[k], conv[i].v[k]);
            CHECK(same_float(out[k], conv[i].v[k]));
            if (isnan(conv[i].v[k]))
                CHECK(isnan(vkf_f16_to_f32(h[k])));
            else
                CHECK_EQ_INT(h[k], vkf_f32_to_f16(conv[i].v[k]));
        }
    }
    CHECK(vkf_weights_find(w, "nope") == NULL);
    CHECK_EQ_INT(vkf_weights_find_prefix(w, "e"), 2);
    CHECK_STR(vkf_weights_at(w, vkf_weights_find_prefix(w, "i"))->name, "i16");
    CHECK_EQ_INT(vkf_weights_file_for_prefix(w, "u8"), 0);
    CHECK_EQ_INT(vkf_weights_file_for_prefix(w, "zz"), -1);
    vkf_weights_close(&w);
    CHECK(w == NULL);
    vkf_weights_close(&w);
}

typedef struct bad_case {
    const char *what;
    const char *header;          /* NULL: use raw bytes */
    int64_t hlen;                /* -1: strlen(header) */
    size_t data;                 /* data bytes after the header */
    int err;
    const char *msg;
} bad_case;

static void test_hostile(void)
{
    static const bad_case cases[] = {
        {"length past end", "{}", 1000, 0, VKF_EPARSE, "past the end of the file"},
        {"not json", "[1,2]", -1, 0, VKF_EPARSE, "not a JSON object"},
        {"malformed", "{\"a\":{\"dtype\":", -1, 0, VKF_EPARSE, "malformed"},
        {"garbage", "{}  x", -1, 0, VKF_EPARSE, "garbage after the header"},
        {"overlap",
         "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
         -1, 12, VKF_EPARSE, "overlap"},
        {"out of order",
         "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]}}", -1, 8, VKF_EPARSE,
         "out of order"},
        {"out of file",
         "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", -1, 8, VKF_EPARSE,
         "past the end of the file"},
        {"gap",
         "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", -1, 8, VKF_EPARSE,
         "do not cover"},
        {"tail not covered",
         "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", -1, 8, VKF_EPARSE,
         "do not cover"},
        {"size mismatch",
         "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", -1, 8, VKF_EPARSE,
         "shape x dtype is 12 bytes"},
        {"negative dim",
         "{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", -1, 8, VKF_EPARSE,
         "dim 0 is not a non-negative integer"},
        {"fractional dim",
         "{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,8]}}", -1, 8, VKF_EPARSE,
         "not a non-negative integer"},
        {"overflowing dims",
         "{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],"
         "\"data_offsets\":[0,8]}}", -1, 8, VKF_EPARSE, "overflows"},
        {"huge dim", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1e300],\"data_offsets\":[0,8]}}", -1,
         8, VKF_EPARSE, "not a non-negative integer"},
        {"duplicate",
         "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
         "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", -1, 8, VKF_EPARSE,
         "duplicate tensor name 'a'"},
        {"unknown dtype",
         "{\"a\":{\"dtype\":\"F4\",\"shape\":[1],\"data_offsets\":[0,4]}}", -1, 4, VKF_EPARSE,
         "unknown dtype 'F4'"},
        {"non-utf8 name",
         "{\"a\xff\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", -1, 4,
         VKF_EPARSE, "not valid UTF-8"},
        {"overlong utf8",
         "{\"\xc0\xaf\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", -1, 4,
         VKF_EPARSE, "not valid UTF-8"},
        {"metadata not string", "{\"__metadata__\":{\"a\":1}}", -1, 0, VKF_EPARSE,
         "__metadata__ value 'a'"},
        {"metadata twice", "{\"__metadata__\":{},\"__metadata__\":{}}", -1, 0, VKF_EPARSE,
         "duplicate __metadata__"},
        {"entry not object", "{\"a\":5}", -1, 0, VKF_EPARSE, "not an object"},
        {"missing offsets", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", -1, 4, VKF_EPARSE,
         "data_offsets"},
        {"bad offsets", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", -1, 4,
         VKF_EPARSE, "two non-negative integers"},
        {"too many dims",
         "{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", -1,
         4, VKF_EPARSE, "9 dims"},
    };
    uint8_t zeros[64] = {0};
    for (size_t i = 0; i < VKF_ARRAY_SIZE(cases); i++) {
        const bad_case *c = &cases[i];
        const char *path = tmp_path("bad.safetensors");
        uint64_t hl = c->hlen < 0 ? strlen(c->header) : (uint64_t)c->hlen;
        st_write_raw(path, c->header, hl, zeros, c->data);
        vkf_weights *w = NULL;
        g_log.last[0] = 0;
        int err = vkf_weights_open(path, &w, &g_log.log);
        if (err != c->err || !strstr(g_log.last, c->msg))
            fprintf(stderr, "case '%s': err %d, message '%s'\n", c->what, err, g_log.last);
        CHECK_EQ_INT(err, c->err);
        CHECK_HAS(g_log.last, c->msg);
        CHECK_HAS(g_log.last, "bad.safetensors");
        CHECK(w == NULL);
    }
    /* Truncated: fewer than 8 bytes, and a real file cut short. */
    const char *path = tmp_path("short.safetensors");
    test_write_file(path, "\x10\0\0", 3);
    vkf_weights *w = NULL;
    CHECK_EQ_INT(vkf_weights_open(path, &w, &g_log.log), VKF_EPARSE);
    CHECK_HAS(g_log.last, "truncated");
    float v[4] = {1, 2, 3, 4};
    st_tensor t = {"x", "F32", 1, {4}, v, sizeof(v)};
    st_write(path, &t, 1, NULL);
    struct stat st;
    stat(path, &st);
    CHECK(truncate(path, st.st_size - 3) == 0);
    CHECK_EQ_INT(vkf_weights_open(path, &w, &g_log.log), VKF_EPARSE);
    CHECK_HAS(g_log.last, "past the end of the file");
    /* Header bigger than the 100 MiB cap (a sparse file really that big). */
    st_write_raw(path, "{", (uint64_t)101 << 20, NULL, 0);
    CHECK(truncate(path, ((off_t)101 << 20) + 8) == 0);
    CHECK_EQ_INT(vkf_weights_open(path, &w, &g_log.log), VKF_EPARSE);
    CHECK_HAS(g_log.last, "exceeds the 100 MiB limit");
    /* Regression: a header of 0x180 bytes starts the file with 80 01, the
     * opening bytes of a pickle; it is still safetensors. */
    char hdr[0x181];
    int hn = snprintf(hdr, sizeof(hdr), "{\"x\":{\"dtype\":\"F32\",\"shape\":[1],"
                                        "\"data_offsets\":[0,4]}}");
    memset(hdr + hn, ' ', sizeof(hdr) - 1 - (size_t)hn);
    hdr[0x180] = 0;
    st_write_raw(path, hdr, 0x180, v, 4);
    CHECK_EQ_INT(vkf_weights_open(path, &w, &g_log.log), 0);
    CHECK(w && vkf_weights_count(w) == 1);
    vkf_weights_close(&w);
    /* Duplicate metadata keys: the first one is kept. */
    st_write_raw(path, "{\"__metadata__\":{\"k\":\"first\",\"k\":\"second\",\"a\":\"x\"}}", 51,
                 NULL, 0);
    CHECK_EQ_INT(vkf_weights_open(path, &w, &g_log.log), 0);
    if (w) {
        CHECK_EQ_INT(vkf_weights_metadata_count(w), 2);
        CHECK_STR(vkf_weights_metadata_get(w, "k"), "first");
        CHECK_STR(vkf_weights_metadata_get(w, "a"), "x");
        CHECK(vkf_weights_metadata_get(w, "b") == NULL);
        vkf_weights_close(&w);
    }
    /* A FIFO is refused without blocking. */
    const char *fifo = tmp_path("fifo.safetensors");
    CHECK(mkfifo(fifo, 0600) == 0);
    CHECK_EQ_INT(vkf_weights_open(fifo, &w, &g_log.log), VKF_EIO);
    CHECK_HAS(g_log.last, "not a regular file");
    /* Missing file and an empty file. */
    CHECK_EQ_INT(vkf_weights_open(tmp_path("absent.safetensors"), &w, &g_log.log), VKF_ENOTFOUND);
    test_write_file(path, "", 0);
    CHECK_EQ_INT(vkf_weights_open(path, &w, &g_log.log), VKF_EPARSE);
    CHECK_EQ_INT(vkf_weights_open_memory("hello world!", 12, "mem", &w, &g_log.log), VKF_EPARSE);
    CHECK_HAS(g_log.last, "mem: not a weight file");
}

static void test_real_files(void)
{
    const char *root = getenv("VKF_SHARED_DATA");
    char path[4096];
    snprintf(path, sizeof(path), "%s/taesd/taesd_decoder.safetensors", root ? root : "");
    if (!root || access(path, R_OK) != 0) {
        printf("shared data missing: real-file checks skipped\n");
        return;
    }
    vkf_weights *w = NULL;
    CHECK_EQ_INT(vkf_weights_open(path, &w, &g_log.log), 0);
    if (w) {
        CHECK_EQ_INT(vkf_weights_count(w), 67);
        int64_t params = 0;
        bool all_bf16 = true;
        for (int i = 0; i < vkf_weights_count(w); i++) {
            params += vkf_weights_at(w, i)->numel;
            all_bf16 &= vkf_weights_at(w, i)->dtype == VKF_WDT_BF16;
        }
        CHECK(all_bf16);
        CHECK_EQ_INT(params, 1222531);
        const vkf_weight_info *t = vkf_weights_find(w, "1.weight");
        CHECK(t && t->ndim == 4 && t->shape[0] == 64 && t->shape[1] == 4 && t->shape[2] == 3 &&
              t->shape[3] == 3);
        t = vkf_weights_find(w, "19.weight");
        CHECK(t && t->shape[0] == 3 && t->shape[1] == 64);
        CHECK_EQ_INT(vkf_weights_metadata_count(w), 0);
        vkf_detect_result det;
        vkf_weights_detect(w, &det);
        CHECK_STR(det.family, "TAESD");
        CHECK_HAS(det.variant, "decoder, 4 latent channels");
        /* bf16 -> f32 is exact: compare with the raw bits. */
        const void *raw;
        size_t size;
        float *f = malloc((size_t)t->numel * sizeof(float));
        CHECK_EQ_INT(vkf_weights_data(w, t, &raw, &size), 0);
        CHECK_EQ_INT(vkf_weights_to_f32(w, t, f), 0);
        int bad = 0;
        for (int64_t i = 0; i < t->numel; i++) {
            uint16_t b;
            memcpy(&b, (const uint8_t *)raw + 2 * i, 2);
            bad += !same_float(f[i], vkf_bf16_to_f32(b));
        }
        CHECK_EQ_INT(bad, 0);
        free(f);
        vkf_weights_close(&w);
    }
    snprintf(path, sizeof(path), "%s/taesd/taef2_encoder.safetensors", root);
    CHECK_EQ_INT(vkf_weights_open(path, &w, &g_log.log), 0);
    if (w) {
        CHECK_STR(vkf_weights_metadata_get(w, "license") ? "ok" : NULL, "ok");
        CHECK_EQ_INT(vkf_weights_at(w, 0)->dtype, VKF_WDT_F16);
        vkf_detect_result det;
        vkf_weights_detect(w, &det);
        CHECK_STR(det.family, "TAESD");
        CHECK_HAS(det.variant, "encoder, 32 latent channels");
        vkf_weights_close(&w);
    }
    snprintf(path, sizeof(path), "%s/denoisers/slim_diffusion_mnist.safetensors", root);
    CHECK_EQ_INT(vkf_weights_open(path, &w, &g_log.log), 0);
    if (w) {
        CHECK_EQ_INT(vkf_weights_count(w), 85);
        int64_t params = 0;
        for (int i = 0; i < vkf_weights_count(w); i++) {
            params += vkf_weights_at(w, i)->numel;
            CHECK_EQ_INT(vkf_weights_at(w, i)->dtype, VKF_WDT_F32);
        }
        CHECK_EQ_INT(params, 926899);
        const vkf_weight_info *t = vkf_weights_find(w, "time_embendding.weight");
        CHECK(t && t->ndim == 2 && t->shape[0] == 200 && t->shape[1] == 1);
        vkf_weights_close(&w);
    }
    snprintf(path, sizeof(path), "%s/taehv/test_latents_wan.safetensors", root);
    CHECK_EQ_INT(vkf_weights_open(path, &w, &g_log.log), 0);
    if (w) {
        const vkf_weight_info *t = vkf_weights_find(w, "latents");
        CHECK(t && t->dtype == VKF_WDT_BF16 && t->ndim == 5 && t->shape[1] == 16 &&
              t->shape[4] == 64);
        vkf_weights_close(&w);
    }
}

/* Every allocation of open + convert + close failing in turn. */
static void test_alloc_failures(void)
{
    float v[6] = {1, 2, 3, 4, 5, 6};
    uint8_t e4[2] = {0x38, 0x40};
    st_tensor t[] = {
        {"a.weight", "F32", 2, {2, 3}, v, sizeof(v)},
        {"b", "F8_E4M3", 1, {2}, e4, 2},
    };
    const char *path = tmp_path("alloc.safetensors");
    st_write(path, t, 2, "{\"k\":\"v\",\"k2\":\"v2\"}");
    long start = vkf_alloc_live();
    int n;
    for (n = 0; n < 10000; n++) {
        vkf_alloc_fail_at(n);
        vkf_weights *w = NULL;
        int err = vkf_weights_open(path, &w, NULL);
        if (err == 0) {
            float out[6];
            err = vkf_weights_to_f32(w, vkf_weights_find(w, "b"), out);
        }
        vkf_weights_close(&w);
        bool fired = vkf_alloc_failed();
        vkf_alloc_fail_at(-1);
        CHECK(err == 0 || err == VKF_ENOMEM);
        CHECK_EQ_INT(vkf_alloc_live(), start);
        if (!fired) {
            CHECK_EQ_INT(err, 0);
            break;
        }
    }
    printf("safetensors open survived %d failing allocations\n", n);
    CHECK(n > 3 && n < 10000);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Load speed of a generated 256 MiB f16 file: open, then every tensor to f32. */
static void test_speed(void)
{
    enum { NT = 64, ROWS = 1024, COLS = 2048 };
    size_t per = (size_t)ROWS * COLS * 2;
    uint16_t *data = malloc(per);
    for (size_t i = 0; i < per / 2; i++)
        data[i] = vkf_f32_to_f16((float)(i % 1000) * 0.001f);
    st_tensor *t = calloc(NT, sizeof(*t));
    char (*names)[32] = calloc(NT, 32);
    for (int i = 0; i < NT; i++) {
        snprintf(names[i], 32, "blocks.%d.weight", i);
        t[i] = (st_tensor){names[i], "F16", 2, {ROWS, COLS}, data, per};
    }
    const char *path = tmp_path("big.safetensors");
    st_write(path, t, NT, NULL);
    float *out = malloc((size_t)ROWS * COLS * sizeof(float));
    double t0 = now_s();
    vkf_weights *w = NULL;
    CHECK_EQ_INT(vkf_weights_open(path, &w, &g_log.log), 0);
    double t1 = now_s();
    double sum = 0;
    for (int i = 0; w && i < vkf_weights_count(w); i++) {
        CHECK_EQ_INT(vkf_weights_to_f32(w, vkf_weights_at(w, i), out), 0);
        sum += out[ROWS * COLS - 1];
    }
    double t2 = now_s();
    const void *raw;
    size_t size;
    uint64_t bits = 0;
    for (int i = 0; w && i < vkf_weights_count(w); i++) {
        vkf_weights_data(w, vkf_weights_at(w, i), &raw, &size);
        for (size_t k = 0; k < size; k += 4096)
            bits += ((const uint8_t *)raw)[k];
    }
    double t3 = now_s();
    for (int i = 0; w && i < vkf_weights_count(w); i++)
        vkf_weights_to_f32(w, vkf_weights_at(w, i), out);
    double t4 = now_s();
    double mb = (double)per * NT / (1024.0 * 1024.0);
    printf("load speed: %.0f MiB f16, open %.2f ms, first to_f32 pass %.0f MiB/s, "
           "page touch %.0f MiB/s, second to_f32 pass %.0f MiB/s (checksum %.3f %llu)\n",
           mb, (t1 - t0) * 1e3, mb / (t2 - t1), mb / (t3 - t2), mb / (t4 - t3), sum,
           (unsigned long long)bits);
    vkf_weights_close(&w);
    remove(path);
    free(out);
    free(names);
    free(t);
    free(data);
}

int main(void)
{
    test_log_init(&g_log);
    g_dir = test_mkdtemp("st");
    test_fp8_tables();
    test_half();
    test_roundtrip();
    test_hostile();
    test_real_files();
    test_alloc_failures();
    test_speed();
    test_rmtree(g_dir);
    free(g_dir);
    return test_exit_code("safetensors");
}
