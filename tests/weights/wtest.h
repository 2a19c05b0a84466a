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

#include "../test.h"

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
