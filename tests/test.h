/* Minimal test harness: CHECK records a failure and goes on; the test's
 * main returns test_result().  Exit 77 = skipped. */
#ifndef VKF_TEST_H
#define VKF_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int test_failures;
static int test_checks;

#define CHECK(cond)                                                           \
    do {                                                                      \
        test_checks++;                                                        \
        if (!(cond)) {                                                        \
            test_failures++;                                                  \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                     \
    } while (0)

#define CHECK_STR(a, b)                                                       \
    do {                                                                      \
        const char *a_ = (a), *b_ = (b);                                      \
        test_checks++;                                                        \
        if (!a_ || !b_ || strcmp(a_, b_)) {                                   \
            test_failures++;                                                  \
            fprintf(stderr, "%s:%d: '%s' != '%s'\n", __FILE__, __LINE__,      \
                    a_ ? a_ : "(null)", b_ ? b_ : "(null)");                  \
        }                                                                     \
    } while (0)

static inline int test_result(const char *name)
{
    fprintf(stderr, "%s: %d checks, %d failed\n", name, test_checks, test_failures);
    return test_failures ? 1 : 0;
}

#endif
