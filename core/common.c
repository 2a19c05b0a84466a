/* Error strings, counted allocation with failure injection, logging. */
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "vkflow/common.h"

const char *vkf_strerror(int err)
{
    switch (err) {
    case VKF_OK: return "success";
    case VKF_ENOMEM: return "out of host memory";
    case VKF_EINVAL: return "invalid argument";
    case VKF_EIO: return "input/output error";
    case VKF_EPARSE: return "parse error";
    case VKF_EVALIDATION: return "workflow failed validation";
    case VKF_EINTERRUPTED: return "interrupted";
    case VKF_EUNSUPPORTED: return "not supported";
    case VKF_ENOTFOUND: return "not found";
    case VKF_EDEVICE_OOM: return "out of device memory";
    case VKF_EDEVICE_LOST: return "device lost";
    case VKF_EPERM: return "path not allowed";
    case VKF_ERUN: return "node execution failed";
    case VKF_EDEVICE: return "device error";
    }
    return "unknown error";
}

static atomic_long alloc_count;
static atomic_long alloc_live;
static atomic_long fail_at = -1;   /* absolute allocation index to fail */
static atomic_bool fail_fired;

void vkf_alloc_fail_at(long n)
{
    atomic_store(&fail_fired, false);
    atomic_store(&fail_at, n < 0 ? -1 : atomic_load(&alloc_count) + n);
}

long vkf_alloc_count(void) { return atomic_load(&alloc_count); }
long vkf_alloc_live(void) { return atomic_load(&alloc_live); }
bool vkf_alloc_failed(void) { return atomic_load(&fail_fired); }

static bool should_fail(void)
{
    long idx = atomic_fetch_add(&alloc_count, 1);
    if (idx == atomic_load(&fail_at)) {
        atomic_store(&fail_fired, true);
        return true;
    }
    return false;
}

void *vkf_malloc(size_t size)
{
    if (should_fail())
        return NULL;
    void *p = malloc(size ? size : 1);
    if (p)
        atomic_fetch_add(&alloc_live, 1);
    return p;
}

void *vkf_calloc(size_t n, size_t size)
{
    if (should_fail())
        return NULL;
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (p)
        atomic_fetch_add(&alloc_live, 1);
    return p;
}

void *vkf_realloc(void *ptr, size_t size)
{
    if (!ptr)
        return vkf_malloc(size);
    if (should_fail())
        return NULL;
    return realloc(ptr, size ? size : 1);
}

void vkf_free(void *ptr)
{
    if (!ptr)
        return;
    atomic_fetch_sub(&alloc_live, 1);
    free(ptr);
}

char *vkf_strndup(const char *s, size_t n)
{
    if (!s)
        return NULL;
    size_t len = strnlen(s, n);
    char *d = vkf_malloc(len + 1);
    if (!d)
        return NULL;
    memcpy(d, s, len);
    d[len] = 0;
    return d;
}

char *vkf_strdup(const char *s)
{
    return s ? vkf_strndup(s, strlen(s)) : NULL;
}

char *vkf_vasprintf(const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int len = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (len < 0)
        return NULL;
    char *s = vkf_malloc((size_t)len + 1);
    if (!s)
        return NULL;
    vsnprintf(s, (size_t)len + 1, fmt, ap);
    return s;
}

char *vkf_asprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = vkf_vasprintf(fmt, ap);
    va_end(ap);
    return s;
}

int vkf_grow(void *arr_ptr, int *cap, int need, size_t elem)
{
    void **arr = arr_ptr;
    if (need <= *cap)
        return 0;
    int ncap = *cap ? *cap : 4;
    while (ncap < need) {
        if (ncap > (1 << 28))
            return VKF_ENOMEM;
        ncap *= 2;
    }
    void *n = vkf_realloc(*arr, (size_t)ncap * elem);
    if (!n)
        return VKF_ENOMEM;
    *arr = n;
    *cap = ncap;
    return 0;
}

void vkf_vlogf(const vkf_log *log, vkf_log_level lvl, const char *fmt, va_list ap)
{
    if (!log || !log->cb || lvl > log->level)
        return;
    char buf[4096];
    vsnprintf(buf, sizeof(buf), fmt, ap);
    log->cb(log->priv, lvl, buf);
}

void vkf_logf(const vkf_log *log, vkf_log_level lvl, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vkf_vlogf(log, lvl, fmt, ap);
    va_end(ap);
}

static void stderr_cb(void *priv, vkf_log_level lvl, const char *msg)
{
    static const char *const names[] = {"error", "warning", "info", "debug"};
    (void)priv;
    fprintf(stderr, "vkflow: %s: %s\n", names[lvl], msg);
}

vkf_log vkf_log_stderr(vkf_log_level level)
{
    return (vkf_log){.level = level, .cb = stderr_cb};
}

char *vkf_uuid4(bool dashes)
{
    unsigned char b[16];
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    ssize_t got = fd >= 0 ? read(fd, b, sizeof(b)) : -1;
    if (fd >= 0)
        close(fd);
    if (got != (ssize_t)sizeof(b)) {
        /* No /dev/urandom (a chroot): a clock-and-pid seeded LCG is enough
         * for ids that only need to differ. */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t t = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^
                     ((uint64_t)getpid() << 40);
        for (int i = 0; i < 16; i++) {
            t = t * 6364136223846793005ULL + 1442695040888963407ULL;
            b[i] = (unsigned char)(t >> 56);
        }
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    char out[40], *p = out;
    for (int i = 0; i < 16; i++) {
        if (dashes && (i == 4 || i == 6 || i == 8 || i == 10))
            *p++ = '-';
        p += snprintf(p, 3, "%02x", b[i]);
    }
    return vkf_strdup(out);
}
