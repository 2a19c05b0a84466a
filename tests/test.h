/*
 * The shared test harness: CHECK macros record a failure with its location
 * and go on; main returns test_exit_code(name).  Exit 77 = skipped.  Also a
 * log object that remembers the last warning or error.  (The gpu suite has
 * its own harness in tests/gpu/gpu_test.h, with device helpers.)
 */
#ifndef VKF_TEST_H
#define VKF_TEST_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vkflow/common.h"

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

/* Older name, kept for the tests that use it. */
static inline int test_result(const char *name)
{
    return test_exit_code(name);
}

/* A log that remembers the last message at or above WARN. */
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

static inline void test_log_clear(test_log *t)
{
    t->last[0] = 0;
    t->count = 0;
}

#endif
