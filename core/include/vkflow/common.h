/*
 * vkflow — common definitions: error codes, allocation, logging.
 *
 * Every fallible function returns 0 (VKF_OK) or a negative VKF_E* code and
 * hands results back through out-pointers.  All heap memory of vkflow goes
 * through vkf_malloc() and friends so tests can make the Nth allocation fail
 * and count live blocks.
 */
#ifndef VKFLOW_COMMON_H
#define VKFLOW_COMMON_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VKF_VERSION_STRING "0.1.0"

enum vkf_error {
    VKF_OK = 0,
    VKF_ENOMEM = -1,           /* host allocation failed */
    VKF_EINVAL = -2,           /* bad argument or malformed input */
    VKF_EIO = -3,              /* file system error (errno logged) */
    VKF_EPARSE = -4,           /* malformed JSON / file format */
    VKF_EVALIDATION = -5,      /* workflow failed validation */
    VKF_EINTERRUPTED = -6,     /* user interrupt */
    VKF_EUNSUPPORTED = -7,     /* recognised but not supported */
    VKF_ENOTFOUND = -8,        /* file / model / node not found */
    VKF_EDEVICE_OOM = -9,      /* out of device memory */
    VKF_EDEVICE_LOST = -10,    /* Vulkan device lost */
    VKF_EPERM = -11,           /* path escapes its root, refused */
    VKF_ERUN = -12,            /* a node failed while executing */
    VKF_EDEVICE = -13,         /* other Vulkan error */
};

const char *vkf_strerror(int err);

/* Allocation.  vkf_free(NULL) is a no-op. */
void *vkf_malloc(size_t size);
void *vkf_calloc(size_t n, size_t size);
void *vkf_realloc(void *ptr, size_t size);
void vkf_free(void *ptr);
char *vkf_strdup(const char *s);
char *vkf_strndup(const char *s, size_t n);
char *vkf_asprintf(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
char *vkf_vasprintf(const char *fmt, va_list ap);

/*
 * Test hooks: after vkf_alloc_fail_at(n), the n-th allocation from now on
 * (0-based) and only that one returns NULL; n < 0 disables.  The counters
 * are process-wide and atomic.
 */
void vkf_alloc_fail_at(long n);
long vkf_alloc_count(void);      /* allocations attempted since start */
long vkf_alloc_live(void);       /* blocks allocated and not yet freed */
bool vkf_alloc_failed(void);     /* the armed failure has fired */

/* A random (version 4) UUID: "8-4-4-4-12" hex digits, or 32 hex digits
 * without dashes when `dashes` is false (ComfyUI's websocket sids).
 * vkf_malloc'ed; NULL on allocation failure. */
char *vkf_uuid4(bool dashes);

/* Grow *arr (element size elem) so that it holds at least need elements. */
int vkf_grow(void *arr_ptr, int *cap, int need, size_t elem);

/* Logging through an explicit log object; NULL log means "silent". */
typedef enum vkf_log_level {
    VKF_LOG_ERROR = 0,
    VKF_LOG_WARN = 1,
    VKF_LOG_INFO = 2,
    VKF_LOG_DEBUG = 3,
} vkf_log_level;

typedef struct vkf_log {
    vkf_log_level level;                 /* messages above it are dropped */
    void (*cb)(void *priv, vkf_log_level lvl, const char *msg);
    void *priv;
} vkf_log;

void vkf_logf(const vkf_log *log, vkf_log_level lvl, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void vkf_vlogf(const vkf_log *log, vkf_log_level lvl, const char *fmt, va_list ap);
/* A log that writes "vkflow: level: msg" lines to stderr. */
vkf_log vkf_log_stderr(vkf_log_level level);

#define VKF_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Evaluate a fallible call; on error store it in `err` and goto fail. */
#define VKF_TRY(expr)                                                         \
    do {                                                                      \
        err = (expr);                                                         \
        if (err < 0)                                                          \
            goto fail;                                                        \
    } while (0)

/* Allocation check: on NULL set err = VKF_ENOMEM and goto fail. */
#define VKF_CHECK_ALLOC(ptr)                                                  \
    do {                                                                      \
        if (!(ptr)) {                                                         \
            err = VKF_ENOMEM;                                                 \
            goto fail;                                                        \
        }                                                                     \
    } while (0)

#endif /* VKFLOW_COMMON_H */
