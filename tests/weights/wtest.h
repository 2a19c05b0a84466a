/*
 * Helpers for the weight-file tests: CHECK macros, a log that keeps the
 * last error, temp dirs, and a tiny safetensors writer.
 */
#ifndef VKF_TEST_WTEST_H
#define VKF_TEST_WTEST_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vkflow/weights.h"

static int test_failures;
static int test_checks;

#define CHECK(cond)                                                           \
    do {                                                                      \
        test_checks++;                                                        \
        if (!(cond)) {                                                        \
            test_failures++;                                                  \
            fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);  \
        }                                                                     \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                    \
    do {                                                                      \
        long long va_ = (long long)(a), vb_ = (long long)(b);                 \
        test_checks++;                                                        \
        if (va_ != vb_) {                                                     \
            test_failures++;                                                  \
            fprintf(stderr, "FAIL %s:%d: %s == %s (%lld != %lld)\n", __FILE__, \
                    __LINE__, #a, #b, va_, vb_);                              \
        }                                                                     \
    } while (0)

#define CHECK_STR(a, b)                                                       \
    do {                                                                      \
        const char *sa_ = (a), *sb_ = (b);                                    \
        test_checks++;                                                        \
        if (!sa_ || !sb_ || strcmp(sa_, sb_) != 0) {                          \
            test_failures++;                                                  \
            fprintf(stderr, "FAIL %s:%d: %s == %s (\"%s\" != \"%s\")\n",      \
                    __FILE__, __LINE__, #a, #b, sa_ ? sa_ : "(null)",         \
                    sb_ ? sb_ : "(null)");                                    \
        }                                                                     \
    } while (0)

/* s contains sub */
#define CHECK_HAS(s, sub)                                                     \
    do {                                                                      \
        const char *ss_ = (s), *su_ = (sub);                                  \
        test_checks++;                                                        \
        if (!ss_ || !strstr(ss_, su_)) {                                      \
            test_failures++;                                                  \
            fprintf(stderr, "FAIL %s:%d: \"%s\" lacks \"%s\"\n", __FILE__,    \
                    __LINE__, ss_ ? ss_ : "(null)", su_);                     \
        }                                                                     \
    } while (0)

static inline int test_exit_code(const char *name)
{
    if (test_failures)
        fprintf(stderr, "%s: %d of %d checks failed\n", name, test_failures, test_checks);
    else
        printf("%s: all %d checks passed\n", name, test_checks);
    return test_failures ? 1 : 0;
}

typedef struct test_log {
    vkf_log log;
    char last[4096];
    int count;
    bool echo;
} test_log;

static inline void test_log_cb(void *priv, vkf_log_level lvl, const char *msg)
{
    test_log *t = priv;
    if (lvl <= VKF_LOG_WARN) {
        snprintf(t->last, sizeof(t->last), "%s", msg);
        t->count++;
    }
    if (t->echo)
        fprintf(stderr, "  log: %s\n", msg);
}

static inline void test_log_init(test_log *t)
{
    memset(t, 0, sizeof(*t));
    t->log = (vkf_log){.level = VKF_LOG_DEBUG, .cb = test_log_cb, .priv = t};
    t->echo = getenv("VKF_TEST_VERBOSE") != NULL;
}

static inline char *test_mkdtemp(const char *tag)
{
    const char *tmp = getenv("TMPDIR");
    char buf[4096];
    snprintf(buf, sizeof(buf), "%s/vkf-%s-XXXXXX", tmp && tmp[0] ? tmp : "/tmp", tag);
    if (!mkdtemp(buf)) {
        perror("mkdtemp");
        exit(2);
    }
    return strdup(buf);
}

static inline int test_rm_cb(const char *path, const struct stat *st, int flag,
                             struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

static inline void test_rmtree(const char *dir)
{
    nftw(dir, test_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static inline void test_write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f || (n && fwrite(data, 1, n, f) != n)) {
        perror(path);
        exit(2);
    }
    fclose(f);
}

/* ---- safetensors writer ---------------------------------------------------- */

typedef struct st_tensor {
    const char *name;
    const char *dtype;           /* safetensors dtype string */
    int ndim;
    int64_t shape[8];
    const void *data;            /* NULL: zeros (sparse) */
    size_t nbytes;
} st_tensor;

static inline size_t st_dtype_size(const char *dt)
{
    if (!strcmp(dt, "F64") || !strcmp(dt, "I64"))
        return 8;
    if (!strcmp(dt, "F32") || !strcmp(dt, "I32"))
        return 4;
    if (!strcmp(dt, "F16") || !strcmp(dt, "BF16") || !strcmp(dt, "I16"))
        return 2;
    return 1;
}

/* Writes tensors back to back; meta is NULL or a JSON object text. */
static inline void st_write(const char *path, const st_tensor *t, int n, const char *meta)
{
    size_t cap = 4096 + (size_t)n * 256, len = 0;
    char *h = malloc(cap);
    uint64_t off = 0;
    len += (size_t)snprintf(h + len, cap - len, "{");
    if (meta)
        len += (size_t)snprintf(h + len, cap - len, "\"__metadata__\":%s%s", meta, n ? "," : "");
    for (int i = 0; i < n; i++) {
        size_t nb = t[i].nbytes;
        if (!t[i].data) {
            nb = st_dtype_size(t[i].dtype);
            for (int d = 0; d < t[i].ndim; d++)
                nb *= (size_t)t[i].shape[d];
        }
        len += (size_t)snprintf(h + len, cap - len, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[",
                                i ? "," : "", t[i].name, t[i].dtype);
        for (int d = 0; d < t[i].ndim; d++)
            len += (size_t)snprintf(h + len, cap - len, "%s%lld", d ? "," : "",
                                    (long long)t[i].shape[d]);
        len += (size_t)snprintf(h + len, cap - len, "],\"data_offsets\":[%llu,%llu]}",
                                (unsigned long long)off, (unsigned long long)(off + nb));
        off += nb;
    }
    len += (size_t)snprintf(h + len, cap - len, "}");
    while (len % 8)
        h[len++] = ' ';
    FILE *f = fopen(path, "wb");
    uint8_t hl[8];
    for (int i = 0; i < 8; i++)
        hl[i] = (uint8_t)((uint64_t)len >> (8 * i));
    fwrite(hl, 1, 8, f);
    fwrite(h, 1, len, f);
    for (int i = 0; i < n; i++)
        if (t[i].data)
            fwrite(t[i].data, 1, t[i].nbytes, f);
        else
            break;
    fclose(f);
    /* Zero-data tensors become a sparse tail. */
    if (truncate(path, (off_t)(8 + len + off)) != 0)
        perror("truncate");
    free(h);
}

/* A raw file: 8-byte length of header text, the text, then extra bytes. */
static inline void st_write_raw(const char *path, const char *header, uint64_t hlen_field,
                                const void *tail, size_t tail_len)
{
    FILE *f = fopen(path, "wb");
    uint8_t hl[8];
    for (int i = 0; i < 8; i++)
        hl[i] = (uint8_t)(hlen_field >> (8 * i));
    fwrite(hl, 1, 8, f);
    fwrite(header, 1, strlen(header), f);
    if (tail_len)
        fwrite(tail, 1, tail_len, f);
    fclose(f);
}

#endif /* VKF_TEST_WTEST_H */
