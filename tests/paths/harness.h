/*
 * Minimal test harness for the paths/yaml tests: CHECK() records a failure
 * with its location and goes on; main returns test_exit_code() (0 = pass).
 * Also: a log that keeps the last error message, and temp-dir helpers.
 */
#ifndef VKF_TEST_PATHS_HARNESS_H
#define VKF_TEST_PATHS_HARNESS_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vkflow/common.h"

#include "../test.h"

/* mkdtemp under $TMPDIR (or /tmp); the caller owns the returned string. */
static inline char *test_mkdtemp(const char *tag)
{
    const char *tmp = getenv("TMPDIR");
    char buf[4096];
    snprintf(buf, sizeof(buf), "%s/vkf-%s-XXXXXX", tmp && tmp[0] ? tmp : "/tmp", tag);
    if (!mkdtemp(buf)) {
        perror("mkdtemp");
        exit(2);
    }
    /* Tests compare real paths, so resolve a symlinked $TMPDIR now. */
    char real[4096];
    if (!realpath(buf, real)) {
        perror("realpath");
        exit(2);
    }
    return strdup(real);
}

/* mkdir -p of a/b/c under root. */
static inline void test_mkdirs(const char *root, const char *rel)
{
    char buf[4096];
    if (snprintf(buf, sizeof(buf), "%s/%s", root, rel) >= (int)sizeof(buf))
        exit(2);
    for (char *s = buf + strlen(root) + 1; *s; s++) {
        if (*s == '/') {
            *s = 0;
            mkdir(buf, 0755);
            *s = '/';
        }
    }
    mkdir(buf, 0755);
}

/* Writes text to root/rel, creating parent dirs. */
static inline void test_write(const char *root, const char *rel, const char *text)
{
    char buf[4096];
    snprintf(buf, sizeof(buf), "%s", rel);
    char *slash = strrchr(buf, '/');
    if (slash) {
        *slash = 0;
        test_mkdirs(root, buf);
    }
    snprintf(buf, sizeof(buf), "%s/%s", root, rel);
    FILE *f = fopen(buf, "wb");
    if (!f) {
        perror(buf);
        exit(2);
    }
    fputs(text, f);
    fclose(f);
}

static inline void test_symlink(const char *target, const char *root, const char *rel)
{
    char buf[4096];
    snprintf(buf, sizeof(buf), "%s/%s", root, rel);
    if (symlink(target, buf) != 0) {
        perror(buf);
        exit(2);
    }
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

#endif /* VKF_TEST_PATHS_HARNESS_H */
