/* Output naming shared by the save nodes (save_naming.h). */
#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "save_naming.h"
#include "vkflow/common.h"

typedef struct sbuf {
    char *s;
    size_t n, cap;
    bool oom;
} sbuf;

static void sb_add(sbuf *b, const void *s, size_t n)
{
    if (b->oom)
        return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = (b->n + n + 1) * 2;
        char *ns = vkf_realloc(b->s, cap);
        if (!ns) {
            b->oom = true;
            return;
        }
        b->s = ns;
        b->cap = cap;
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = 0;
}

static char *sb_take(sbuf *b)
{
    sb_add(b, "", 0);
    if (b->oom) {
        vkf_free(b->s);
        return NULL;
    }
    return b->s;
}

char *vkf_json_ensure_ascii(const char *s)
{
    sbuf b = {0};
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        if (*p < 0x80) {
            sb_add(&b, p++, 1);
            continue;
        }
        int extra = *p >= 0xf0 ? 3 : *p >= 0xe0 ? 2 : *p >= 0xc0 ? 1 : 0;
        uint32_t cp = extra == 3 ? *p & 7u : extra == 2 ? *p & 15u : extra == 1 ? *p & 31u : 0xfffd;
        p++;
        for (int i = 0; i < extra && (*p & 0xc0) == 0x80; i++)
            cp = cp << 6 | (*p++ & 0x3fu);
        char esc[16];
        if (cp >= 0x10000) {
            cp -= 0x10000;
            snprintf(esc, sizeof(esc), "\\u%04x\\u%04x", 0xd800 + (cp >> 10), 0xdc00 + (cp & 0x3ff));
        } else {
            snprintf(esc, sizeof(esc), "\\u%04x", cp);
        }
        sb_add(&b, esc, strlen(esc));
    }
    return sb_take(&b);
}

char *vkf_save_expand_vars(const char *prefix, int64_t w, int64_t h)
{
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    struct { const char *key; long long val; const char *fmt; } vars[] = {
        {"%width%", w, "%lld"}, {"%height%", h, "%lld"}, {"%year%", tm.tm_year + 1900, "%lld"},
        {"%month%", tm.tm_mon + 1, "%02lld"}, {"%day%", tm.tm_mday, "%02lld"},
        {"%hour%", tm.tm_hour, "%02lld"}, {"%minute%", tm.tm_min, "%02lld"},
        {"%second%", tm.tm_sec, "%02lld"},
    };
    sbuf b = {0};
    for (const char *p = prefix; *p;) {
        size_t k = VKF_ARRAY_SIZE(vars);
        if (*p == '%')
            for (k = 0; k < VKF_ARRAY_SIZE(vars); k++)
                if (!strncmp(p, vars[k].key, strlen(vars[k].key)))
                    break;
        if (k < VKF_ARRAY_SIZE(vars)) {
            char num[32];
            snprintf(num, sizeof(num), vars[k].fmt, vars[k].val);
            sb_add(&b, num, strlen(num));
            p += strlen(vars[k].key);
        } else {
            sb_add(&b, p++, 1);
        }
    }
    return sb_take(&b);
}

char *vkf_save_normpath(const char *s)
{
    char *tmp = vkf_strdup(s);
    if (!tmp)
        return NULL;
    for (char *p = tmp; *p; p++)
        if (*p == '\\')
            *p = '/';
    size_t len = strlen(tmp);
    char **parts = vkf_calloc(len + 1, sizeof(*parts));
    sbuf b = {0};
    if (!parts) {
        vkf_free(tmp);
        return NULL;
    }
    bool abs = tmp[0] == '/';
    size_t np = 0;
    char *save = NULL;
    for (char *c = strtok_r(tmp, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
        if (!strcmp(c, "."))
            continue;
        if (!strcmp(c, "..") && np && strcmp(parts[np - 1], ".."))
            np--;
        else if (!(abs && !np && !strcmp(c, "..")))
            parts[np++] = c;
    }
    if (abs)
        sb_add(&b, "/", 1);
    for (size_t i = 0; i < np; i++) {
        if (i)
            sb_add(&b, "/", 1);
        sb_add(&b, parts[i], strlen(parts[i]));
    }
    if (!np && !abs)
        sb_add(&b, ".", 1);
    vkf_free(tmp);
    vkf_free(parts);
    return sb_take(&b);
}

int vkf_save_next_counter(const char *dir, const char *stem)
{
    DIR *d = opendir(dir);
    if (!d)
        return 1;
    size_t sl = strlen(stem);
    long best = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *n = e->d_name;
        if (strncmp(n, stem, sl) || n[sl] != '_')
            continue;
        const char *p = n + sl + 1;
        size_t dl = strspn(p, "0123456789");
        if (dl == 0 || dl > 9 || (p[dl] && p[dl] != '_'))
            continue;
        long v = strtol(p, NULL, 10);
        if (v > best)
            best = v;
    }
    closedir(d);
    return (int)best + 1;
}
