/*
 * The weight-file interface: opens safetensors / PyTorch zip files by their
 * magic bytes, sharded index JSONs and diffusers folders, and gives one
 * sorted name index over all of them, lazy raw access and conversion.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "io/weights_internal.h"

typedef struct wt_meta_ref {
    const char *key, *value;
    int seq;                    /* order of appearance, for "first wins" */
} wt_meta_ref;

struct vkf_weights {
    vkf_weights_format format;
    wt_file *files;
    int nfiles, filecap;
    wt_tensor **idx;            /* all tensors, sorted by name */
    int count;
    wt_meta_ref *meta;          /* sorted by key, unique (first file wins);
                                   strings borrowed from the files */
    int nmeta;
    const vkf_log *log;
};

/* ---- helpers shared by the readers ---------------------------------------- */

int wt_fail(const wt_file *f, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = vkf_vasprintf(fmt, ap);
    va_end(ap);
    vkf_logf(f->log, VKF_LOG_ERROR, "%s: %s", f->path ? f->path : "(weights)",
             msg ? msg : fmt);
    vkf_free(msg);
    return code;
}

bool wt_utf8_valid(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        int len;
        uint32_t cp, min;
        if ((c & 0xe0) == 0xc0) {
            len = 2, cp = c & 0x1f, min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            len = 3, cp = c & 0x0f, min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            len = 4, cp = c & 0x07, min = 0x10000;
        } else {
            return false;
        }
        if (n - i < (size_t)len)
            return false;
        for (int k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += (size_t)len;
    }
    return true;
}

int wt_add_tensor(wt_file *f, const char *name, size_t name_len, wt_tensor **out)
{
    if (f->count >= WT_MAX_TENSORS)
        return wt_fail(f, VKF_EPARSE, "more than %d tensors", WT_MAX_TENSORS);
    if (vkf_grow(&f->t, &f->cap, f->count + 1, sizeof(*f->t)) < 0)
        return VKF_ENOMEM;
    char *copy = vkf_strndup(name, name_len);
    if (!copy)
        return VKF_ENOMEM;
    wt_tensor *t = &f->t[f->count++];
    memset(t, 0, sizeof(*t));
    t->name = copy;
    t->info.name = copy;
    t->storage = -1;
    t->contiguous = true;
    *out = t;
    return 0;
}

int wt_add_meta(wt_file *f, const char *key, const char *value)
{
    if (vkf_grow(&f->meta, &f->metacap, 2 * f->nmeta + 2, sizeof(*f->meta)) < 0)
        return VKF_ENOMEM;
    char *k = vkf_strdup(key), *v = vkf_strdup(value);
    if (!k || !v) {
        vkf_free(k);
        vkf_free(v);
        return VKF_ENOMEM;
    }
    f->meta[2 * f->nmeta] = k;
    f->meta[2 * f->nmeta + 1] = v;
    f->nmeta++;
    return 0;
}

int wt_finish_info(const wt_file *f, wt_tensor *t)
{
    uint64_t numel = 1;
    for (int d = 0; d < t->info.ndim; d++) {
        uint64_t dim = (uint64_t)t->info.shape[d];
        if (t->info.shape[d] < 0)
            return wt_fail(f, VKF_EPARSE, "tensor '%s': negative dim %lld", t->name,
                           (long long)t->info.shape[d]);
        if (dim && numel > (UINT64_C(1) << 62) / dim)
            return wt_fail(f, VKF_EPARSE, "tensor '%s': shape overflows", t->name);
        numel *= dim;
    }
    size_t es = vkf_wdtype_size(t->info.dtype);
    if (numel > (UINT64_C(1) << 62) / es)
        return wt_fail(f, VKF_EPARSE, "tensor '%s': byte size overflows", t->name);
    t->info.numel = (int64_t)numel;
    t->info.nbytes = numel * es;
    return 0;
}

static void file_clear(wt_file *f)
{
    for (int i = 0; i < f->count; i++) {
        vkf_free(f->t[i].name);
        vkf_free(f->t[i].owned);
    }
    vkf_free(f->t);
    for (int i = 0; i < f->nst; i++) {
        vkf_free(f->st[i].key);
        vkf_free(f->st[i].owned);
    }
    vkf_free(f->st);
    for (int i = 0; i < 2 * f->nmeta; i++)
        vkf_free(f->meta[i]);
    vkf_free(f->meta);
    if (f->mapped)
        munmap((void *)f->base, f->size);
    vkf_free(f->path);
    memset(f, 0, sizeof(*f));
}

size_t vkf_wdtype_size(vkf_wdtype dt)
{
    static const uint8_t sizes[VKF_WDT_COUNT] = {4, 2, 2, 8, 1, 1, 1, 1, 2, 4, 8, 1};
    return (unsigned)dt < VKF_WDT_COUNT ? sizes[dt] : 1;
}

/* ---- scalar conversions ----------------------------------------------------- */

static float bits_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

/* Branch-free (selects only) so that the conversion loops vectorise:
 * normals rebias the exponent, inf/NaN rebias twice, subnormals are made
 * exact by one float subtraction (2^-14 * (1 + m/1024) - 2^-14). */
float vkf_f16_to_f32(uint16_t h)
{
    uint32_t o = (uint32_t)(h & 0x7fff) << 13;
    uint32_t e = o & 0x0f800000u;
    uint32_t normal = o + 0x38000000u;
    uint32_t infnan = normal + 0x38000000u;
    uint32_t sub = f32_bits(bits_f32(o + 0x38800000u) - bits_f32(0x38800000u));
    uint32_t r = e == 0x0f800000u ? infnan : e == 0 ? sub : normal;
    return bits_f32(r | (uint32_t)(h & 0x8000) << 16);
}

uint16_t vkf_f32_to_f16(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    uint16_t sign = (uint16_t)(u >> 16 & 0x8000);
    uint32_t exp = u >> 23 & 0xff, mant = u & 0x7fffff;
    if (exp == 0xff)
        return (uint16_t)(sign | 0x7c00 | (mant ? 0x200 | mant >> 13 : 0));
    int e = (int)exp - 127 + 15;
    if (e >= 0x1f)
        return sign | 0x7c00;
    if (e <= 0) {
        if (e < -10)
            return sign;
        mant |= 0x800000;
        int shift = 14 - e;
        uint32_t h = mant >> shift, rem = mant & ((1u << shift) - 1);
        uint32_t half = 1u << (shift - 1);
        if (rem > half || (rem == half && (h & 1)))
            h++;
        return (uint16_t)(sign | h);
    }
    uint32_t h = (uint32_t)e << 10 | mant >> 13, rem = mant & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (h & 1)))
        h++; /* may carry into the exponent, up to inf: correct */
    return (uint16_t)(sign | h);
}

float vkf_bf16_to_f32(uint16_t v)
{
    return bits_f32((uint32_t)v << 16);
}

float vkf_f8e4m3_to_f32(uint8_t v)
{
    int exp = v >> 3 & 0xf, mant = v & 7;
    float r;
    if (exp == 0xf && mant == 7)
        return (v & 0x80) ? -NAN : NAN;
    if (exp == 0)
        r = ldexpf((float)mant, -9);
    else
        r = ldexpf(1.0f + (float)mant / 8.0f, exp - 7);
    return (v & 0x80) ? -r : r;
}

float vkf_f8e5m2_to_f32(uint8_t v)
{
    return vkf_f16_to_f32((uint16_t)(v << 8));
}

static float elem_f32(vkf_wdtype dt, const uint8_t *p)
{
    uint16_t h;
    uint32_t u;
    uint64_t q;
    double d;
    switch (dt) {
    case VKF_WDT_F32:
        memcpy(&u, p, 4);
        return bits_f32(u);
    case VKF_WDT_F16:
        memcpy(&h, p, 2);
        return vkf_f16_to_f32(h);
    case VKF_WDT_BF16:
        memcpy(&h, p, 2);
        return vkf_bf16_to_f32(h);
    case VKF_WDT_F64:
        memcpy(&d, p, 8);
        return (float)d;
    case VKF_WDT_F8_E4M3: return vkf_f8e4m3_to_f32(*p);
    case VKF_WDT_F8_E5M2: return vkf_f8e5m2_to_f32(*p);
    case VKF_WDT_I8: return (float)(int8_t)*p;
    case VKF_WDT_U8: return (float)*p;
    case VKF_WDT_I16:
        memcpy(&h, p, 2);
        return (float)(int16_t)h;
    case VKF_WDT_I32:
        memcpy(&u, p, 4);
        return (float)(int32_t)u;
    case VKF_WDT_I64:
        memcpy(&q, p, 8);
        return (float)(int64_t)q;
    case VKF_WDT_BOOL: return *p ? 1.0f : 0.0f;
    default: return 0.0f;
    }
}

/* ---- opening ------------------------------------------------------------- */

static int map_file(wt_file *f, const char *path)
{
    /* O_NONBLOCK: a FIFO must not hang the open; refused below. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        int e = errno;
        return wt_fail(f, e == ENOENT ? VKF_ENOTFOUND : VKF_EIO, "cannot open: %s",
                       strerror(e));
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return wt_fail(f, VKF_EIO, "cannot stat: %s", strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return wt_fail(f, VKF_EIO, "not a regular file");
    }
    if (st.st_size == 0) {
        close(fd);
        f->base = (const uint8_t *)"";
        f->size = 0;
        return 0;
    }
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (p == MAP_FAILED)
        return wt_fail(f, VKF_EIO, "cannot map: %s", strerror(e));
    f->base = p;
    f->size = (size_t)st.st_size;
    f->mapped = true;
    return 0;
}

static bool is_safetensors(const uint8_t *p, size_t size)
{
    return size >= 9 && p[8] == '{';
}

static bool has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcmp(s + n - m, suffix);
}

/* Parses one file already in f->base by its magic bytes. */
static int parse_file(wt_file *f, vkf_weights_format *format)
{
    if (vkf_zip_is_zip(f->base, f->size)) {
        *format = VKF_WEIGHTS_PICKLE;
        return vkf_pickle_parse(f);
    }
    /* Before the pickle check: a header length of 0x180 + k * 0x10000
     * starts with the bytes of a pickle PROTO opcode. */
    if (is_safetensors(f->base, f->size)) {
        *format = VKF_WEIGHTS_SAFETENSORS;
        return vkf_safetensors_parse(f);
    }
    if (f->size >= 2 && f->base[0] == 0x80 && f->base[1] >= 2 && f->base[1] <= 5)
        return wt_fail(f, VKF_EUNSUPPORTED,
                       "legacy (pre-1.6, non-zip) torch.save format is not "
                       "supported; re-save it with a current PyTorch or convert it "
                       "to safetensors");
    if (f->path && has_suffix(f->path, ".safetensors")) {
        *format = VKF_WEIGHTS_SAFETENSORS;
        return vkf_safetensors_parse(f);
    }
    return wt_fail(f, VKF_EPARSE,
                   "not a weight file (neither safetensors nor a PyTorch zip checkpoint)");
}

static int add_file(vkf_weights *w, wt_file **out)
{
    if (vkf_grow(&w->files, &w->filecap, w->nfiles + 1, sizeof(*w->files)) < 0)
        return VKF_ENOMEM;
    wt_file *f = &w->files[w->nfiles++];
    memset(f, 0, sizeof(*f));
    f->log = w->log;
    *out = f;
    return 0;
}

static int open_one(vkf_weights *w, const char *path, const char *prefix,
                    vkf_weights_format *format)
{
    wt_file *f;
    int err = add_file(w, &f);
    if (err < 0)
        return err;
    if (!(f->path = vkf_strdup(path)))
        return VKF_ENOMEM;
    if ((err = map_file(f, path)) < 0)
        return err;
    vkf_weights_format fmt = VKF_WEIGHTS_SAFETENSORS;
    if ((err = parse_file(f, &fmt)) < 0)
        return err;
    if (format)
        *format = fmt;
    if (prefix) {
        for (int i = 0; i < f->count; i++) {
            char *n = vkf_asprintf("%s.%s", prefix, f->t[i].name);
            if (!n)
                return VKF_ENOMEM;
            vkf_free(f->t[i].name);
            f->t[i].name = n;
            f->t[i].info.name = n;
        }
    }
    return 0;
}

static int read_json(const vkf_weights *w, const char *path, cJSON **out)
{
    wt_file tmp = {.log = w->log, .path = (char *)path};
    *out = NULL;
    int err = map_file(&tmp, path);
    if (err < 0)
        return err;
    if (tmp.size > WT_MAX_HEADER) {
        err = wt_fail(&tmp, VKF_EPARSE, "JSON file larger than %u MiB", WT_MAX_HEADER >> 20);
    } else {
        wt_cjson_hooks();
        *out = cJSON_ParseWithLength((const char *)tmp.base, tmp.size);
        if (!*out)
            err = vkf_alloc_failed() ? VKF_ENOMEM
                                     : wt_fail(&tmp, VKF_EPARSE, "malformed JSON");
    }
    if (tmp.mapped)
        munmap((void *)tmp.base, tmp.size);
    return err;
}

static bool safe_file_name(const char *s)
{
    return s[0] && s[0] != '.' && !strchr(s, '/') && !strchr(s, '\\');
}

/* f->t is sorted by name, and every name has the same plen-byte prefix. */
static bool file_has(const wt_file *f, size_t plen, const char *name)
{
    int lo = 0, hi = f->count;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2, c = strcmp(f->t[mid].name + plen, name);
        if (c == 0)
            return true;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return false;
}

/* A *.index.json weight map: {"metadata": {...}, "weight_map": {name: file}}. */
static int open_index(vkf_weights *w, const char *path, const char *prefix)
{
    cJSON *root = NULL;
    char *dir = NULL, **shards = NULL;
    int nshards = 0, cap = 0, first = w->nfiles;
    wt_file msg = {.log = w->log, .path = (char *)path};
    int err = read_json(w, path, &root);
    if (err < 0)
        goto fail;
    const cJSON *map = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
    if (!cJSON_IsObject(map)) {
        err = wt_fail(&msg, VKF_EPARSE, "no \"weight_map\" object");
        goto fail;
    }
    const char *slash = strrchr(path, '/');
    dir = slash ? vkf_strndup(path, (size_t)(slash - path)) : vkf_strdup(".");
    VKF_CHECK_ALLOC(dir);
    for (const cJSON *e = map->child; e; e = e->next) {
        if (!cJSON_IsString(e) || !safe_file_name(e->valuestring)) {
            err = wt_fail(&msg, VKF_EPARSE, "weight_map entry '%s': bad shard file name",
                          e->string);
            goto fail;
        }
        int k = 0;
        while (k < nshards && strcmp(shards[k], e->valuestring))
            k++;
        if (k == nshards) {
            VKF_TRY(vkf_grow(&shards, &cap, nshards + 1, sizeof(*shards)));
            shards[nshards++] = e->valuestring;
        }
    }
    for (int k = 0; k < nshards; k++) {
        char *p = vkf_asprintf("%s/%s", dir, shards[k]);
        VKF_CHECK_ALLOC(p);
        err = open_one(w, p, prefix, NULL);
        vkf_free(p);
        if (err < 0)
            goto fail;
    }
    /* Every mapped name must really be in the shard the map names. */
    for (const cJSON *e = map->child; e; e = e->next) {
        int k = 0;
        while (strcmp(shards[k], e->valuestring))
            k++;
        if (!file_has(&w->files[first + k], prefix ? strlen(prefix) + 1 : 0, e->string)) {
            err = wt_fail(&msg, VKF_EPARSE, "weight_map puts '%s' in %s but it is not there",
                          e->string, e->valuestring);
            goto fail;
        }
    }
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(root, "metadata");
    if (cJSON_IsObject(meta) && w->nfiles > first) {
        for (const cJSON *m = meta->child; m; m = m->next) {
            char num[64];
            const char *v = NULL;
            if (cJSON_IsString(m)) {
                v = m->valuestring;
            } else if (cJSON_IsNumber(m)) {
                snprintf(num, sizeof(num), "%.17g", m->valuedouble);
                v = num;
            }
            if (v)
                VKF_TRY(wt_add_meta(&w->files[first], m->string, v));
        }
    }
fail:
    cJSON_Delete(root);
    vkf_free(dir);
    vkf_free(shards);
    return err;
}

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Names in dir ending in suffix, sorted. */
static int list_dir(const char *dir, const char *suffix, char ***out, int *n)
{
    int err = 0, cap = 0;
    *out = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d)
        return VKF_EIO;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.' || !has_suffix(de->d_name, suffix))
            continue;
        VKF_TRY(vkf_grow(out, &cap, *n + 1, sizeof(**out)));
        VKF_CHECK_ALLOC((*out)[*n] = vkf_strdup(de->d_name));
        (*n)++;
    }
    if (*n > 1)
        qsort(*out, (size_t)*n, sizeof(**out), str_cmp);
fail:
    closedir(d);
    return err;
}

static void free_list(char ***l, int n)
{
    for (int i = 0; i < n; i++)
        vkf_free((*l)[i]);
    vkf_free(*l);
    *l = NULL;
}

static bool is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Variant files ("x.fp16.safetensors") duplicate the main file. */
static bool is_variant(const char *name)
{
    const char *dot = strchr(name, '.');
    return dot && strchr(dot + 1, '.');
}

/* "model.safetensors.index.fp16.json" / "x.fp16.safetensors.index.json". */
static bool is_variant_index(const char *name)
{
    return strstr(name, ".fp16.") || strstr(name, ".bf16.") || strstr(name, ".fp32.");
}

/* A component or shard folder.  *found = false when it holds no weights. */
static int open_folder(vkf_weights *w, const char *dir, const char *prefix, bool *found)
{
    static const char *const singles[] = {
        "diffusion_pytorch_model.safetensors", "model.safetensors",
        "diffusion_pytorch_model.bin", "pytorch_model.bin",
    };
    char **names = NULL;
    int n = 0, err;
    *found = true;
    VKF_TRY(list_dir(dir, ".index.json", &names, &n));
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < n; i++) {
            if (pass == 0 && is_variant_index(names[i]))
                continue;
            char *p = vkf_asprintf("%s/%s", dir, names[i]);
            VKF_CHECK_ALLOC(p);
            err = open_index(w, p, prefix);
            vkf_free(p);
            goto fail;
        }
    }
    for (size_t i = 0; i < VKF_ARRAY_SIZE(singles); i++) {
        char *p = vkf_asprintf("%s/%s", dir, singles[i]);
        VKF_CHECK_ALLOC(p);
        if (is_file(p)) {
            err = open_one(w, p, prefix, NULL);
            vkf_free(p);
            goto fail;
        }
        vkf_free(p);
    }
    free_list(&names, n);
    VKF_TRY(list_dir(dir, ".safetensors", &names, &n));
    int opened = 0;
    for (int pass = 0; pass < 2 && !opened; pass++) {
        for (int i = 0; i < n; i++) {
            if (pass == 0 && is_variant(names[i]))
                continue;
            char *p = vkf_asprintf("%s/%s", dir, names[i]);
            VKF_CHECK_ALLOC(p);
            err = open_one(w, p, prefix, NULL);
            vkf_free(p);
            if (err < 0)
                goto fail;
            opened++;
        }
    }
    *found = opened > 0;
fail:
    free_list(&names, n);
    return err;
}

static int open_diffusers(vkf_weights *w, const char *dir, const char *index)
{
    cJSON *root = NULL;
    wt_file msg = {.log = w->log, .path = (char *)index};
    int err = read_json(w, index, &root);
    if (err < 0)
        goto fail;
    if (!cJSON_IsObject(root)) {
        err = wt_fail(&msg, VKF_EPARSE, "not a JSON object");
        goto fail;
    }
    for (const cJSON *e = root->child; e; e = e->next) {
        if (e->string[0] == '_' || !cJSON_IsArray(e) || !safe_file_name(e->string))
            continue;
        char *p = vkf_asprintf("%s/%s", dir, e->string);
        VKF_CHECK_ALLOC(p);
        bool found = false;
        err = is_dir(p) ? open_folder(w, p, e->string, &found) : 0;
        vkf_free(p);
        if (err < 0)
            goto fail;
    }
fail:
    cJSON_Delete(root);
    return err;
}

static int meta_cmp(const void *a, const void *b)
{
    const wt_meta_ref *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    return c ? c : (x->seq > y->seq) - (x->seq < y->seq);
}

static int idx_cmp(const void *a, const void *b)
{
    const wt_tensor *x = *(wt_tensor *const *)a, *y = *(wt_tensor *const *)b;
    return strcmp(x->name, y->name);
}

/* One sorted index over all files; duplicate names are an error. */
static int build_index(vkf_weights *w)
{
    int total = 0, nmeta = 0;
    for (int i = 0; i < w->nfiles; i++) {
        total += w->files[i].count;
        nmeta += w->files[i].nmeta;
    }
    w->idx = vkf_calloc((size_t)total + 1, sizeof(*w->idx));
    w->meta = vkf_calloc((size_t)nmeta + 1, sizeof(*w->meta));
    if (!w->idx || !w->meta)
        return VKF_ENOMEM;
    for (int i = 0; i < w->nfiles; i++) {
        wt_file *f = &w->files[i];
        for (int k = 0; k < f->count; k++) {
            f->t[k].info.file = i;
            w->idx[w->count++] = &f->t[k];
        }
        for (int k = 0; k < f->nmeta; k++, w->nmeta++)
            w->meta[w->nmeta] = (wt_meta_ref){f->meta[2 * k], f->meta[2 * k + 1], w->nmeta};
    }
    if (w->count > 1)
        qsort(w->idx, (size_t)w->count, sizeof(*w->idx), idx_cmp);
    if (w->nmeta > 1)
        qsort(w->meta, (size_t)w->nmeta, sizeof(*w->meta), meta_cmp);
    int kept = 0;
    for (int i = 0; i < w->nmeta; i++)
        if (!kept || strcmp(w->meta[kept - 1].key, w->meta[i].key))
            w->meta[kept++] = w->meta[i];
    w->nmeta = kept;
    for (int i = 1; i < w->count; i++) {
        if (!strcmp(w->idx[i - 1]->name, w->idx[i]->name)) {
            const wt_file *a = &w->files[w->idx[i - 1]->info.file];
            const wt_file *b = &w->files[w->idx[i]->info.file];
            return wt_fail(a, VKF_EPARSE, "tensor '%s' is also in %s", w->idx[i]->name,
                           b->path);
        }
    }
    return 0;
}

static int weights_new(const vkf_log *log, vkf_weights **out)
{
    vkf_weights *w = vkf_calloc(1, sizeof(*w));
    if (!w)
        return VKF_ENOMEM;
    w->log = log;
    *out = w;
    return 0;
}

int vkf_weights_open(const char *path, vkf_weights **out, const vkf_log *log)
{
    vkf_weights *w = NULL;
    char *p = NULL;
    int err;
    *out = NULL;
    VKF_TRY(weights_new(log, &w));
    if (is_dir(path)) {
        p = vkf_asprintf("%s/model_index.json", path);
        VKF_CHECK_ALLOC(p);
        if (is_file(p)) {
            w->format = VKF_WEIGHTS_DIFFUSERS;
            VKF_TRY(open_diffusers(w, path, p));
        } else {
            bool found;
            w->format = VKF_WEIGHTS_SHARDED;
            VKF_TRY(open_folder(w, path, NULL, &found));
            if (w->nfiles == 1)
                w->format = vkf_zip_is_zip(w->files[0].base, w->files[0].size)
                                ? VKF_WEIGHTS_PICKLE
                                : VKF_WEIGHTS_SAFETENSORS;
        }
        if (w->nfiles == 0) {
            wt_file msg = {.log = log, .path = (char *)path};
            err = wt_fail(&msg, VKF_ENOTFOUND, "folder holds no weight files");
            goto fail;
        }
    } else if (has_suffix(path, ".json")) {
        w->format = VKF_WEIGHTS_SHARDED;
        VKF_TRY(open_index(w, path, NULL));
    } else {
        VKF_TRY(open_one(w, path, NULL, &w->format));
    }
    VKF_TRY(build_index(w));
    vkf_free(p);
    *out = w;
    return 0;
fail:
    vkf_free(p);
    vkf_weights_close(&w);
    return err;
}

int vkf_weights_open_memory(const void *data, size_t size, const char *name,
                            vkf_weights **out, const vkf_log *log)
{
    return wt_open_memory_as(data, size, name, WT_READER_AUTO, out, log);
}

int wt_open_memory_as(const void *data, size_t size, const char *name, wt_reader reader,
                      vkf_weights **out, const vkf_log *log)
{
    vkf_weights *w = NULL;
    wt_file *f;
    int err;
    *out = NULL;
    VKF_TRY(weights_new(log, &w));
    VKF_TRY(add_file(w, &f));
    VKF_CHECK_ALLOC(f->path = vkf_strdup(name ? name : "(memory)"));
    f->base = data;
    f->size = size;
    if (reader == WT_READER_SAFETENSORS) {
        w->format = VKF_WEIGHTS_SAFETENSORS;
        VKF_TRY(vkf_safetensors_parse(f));
    } else if (reader == WT_READER_PICKLE) {
        w->format = VKF_WEIGHTS_PICKLE;
        VKF_TRY(vkf_pickle_parse(f));
    } else {
        VKF_TRY(parse_file(f, &w->format));
    }
    VKF_TRY(build_index(w));
    *out = w;
    return 0;
fail:
    vkf_weights_close(&w);
    return err;
}

void vkf_weights_close(vkf_weights **wp)
{
    vkf_weights *w = wp ? *wp : NULL;
    if (!w)
        return;
    for (int i = 0; i < w->nfiles; i++)
        file_clear(&w->files[i]);
    vkf_free(w->files);
    vkf_free(w->idx);
    vkf_free(w->meta);
    vkf_free(w);
    *wp = NULL;
}

/* ---- queries ----------------------------------------------------------------- */

vkf_weights_format vkf_weights_get_format(const vkf_weights *w) { return w->format; }
int vkf_weights_count(const vkf_weights *w) { return w->count; }

const vkf_weight_info *vkf_weights_at(const vkf_weights *w, int i)
{
    return i >= 0 && i < w->count ? &w->idx[i]->info : NULL;
}

/* First index whose name is >= key. */
static int lower_bound(const vkf_weights *w, const char *key)
{
    int lo = 0, hi = w->count;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (strcmp(w->idx[mid]->name, key) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

const vkf_weight_info *vkf_weights_find(const vkf_weights *w, const char *name)
{
    int i = lower_bound(w, name);
    return i < w->count && !strcmp(w->idx[i]->name, name) ? &w->idx[i]->info : NULL;
}

int vkf_weights_find_prefix(const vkf_weights *w, const char *prefix)
{
    int i = lower_bound(w, prefix);
    return i < w->count && !strncmp(w->idx[i]->name, prefix, strlen(prefix)) ? i : -1;
}

int vkf_weights_file_count(const vkf_weights *w) { return w->nfiles; }

const char *vkf_weights_file_path(const vkf_weights *w, int file)
{
    return file >= 0 && file < w->nfiles ? w->files[file].path : NULL;
}

int vkf_weights_file_for_prefix(const vkf_weights *w, const char *prefix)
{
    int i = vkf_weights_find_prefix(w, prefix);
    return i < 0 ? -1 : w->idx[i]->info.file;
}

int vkf_weights_metadata_count(const vkf_weights *w) { return w->nmeta; }

void vkf_weights_metadata_at(const vkf_weights *w, int i, const char **key,
                             const char **value)
{
    bool ok = i >= 0 && i < w->nmeta;
    *key = ok ? w->meta[i].key : NULL;
    *value = ok ? w->meta[i].value : NULL;
}

const char *vkf_weights_metadata_get(const vkf_weights *w, const char *key)
{
    int lo = 0, hi = w->nmeta;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2, c = strcmp(w->meta[mid].key, key);
        if (c == 0)
            return w->meta[mid].value;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* ---- data ---------------------------------------------------------------------- */

/* Copies a strided view into dst, row-major. */
static void gather(uint8_t *dst, const uint8_t *src, const wt_tensor *t, size_t es)
{
    int nd = t->info.ndim;
    int64_t idx[VKF_WEIGHTS_MAX_DIMS] = {0};
    for (int64_t n = 0; n < t->info.numel; n++) {
        int64_t off = 0;
        for (int d = 0; d < nd; d++)
            off += idx[d] * t->strides[d];
        memcpy(dst + (size_t)n * es, src + (size_t)off * es, es);
        for (int d = nd - 1; d >= 0; d--) {
            if (++idx[d] < t->info.shape[d])
                break;
            idx[d] = 0;
        }
    }
}

static wt_tensor *tensor_of(const vkf_weight_info *info)
{
    return (wt_tensor *)info;
}

int vkf_weights_data(vkf_weights *w, const vkf_weight_info *info, const void **data,
                     size_t *size)
{
    wt_tensor *t = tensor_of(info);
    wt_file *f = &w->files[info->file];
    *data = NULL;
    *size = 0;
    if (info->nbytes > SIZE_MAX)
        return wt_fail(f, VKF_EUNSUPPORTED, "tensor '%s' too large", t->name);
    if (info->numel == 0) {
        *data = "";
    } else if (t->owned) {
        *data = t->owned;
    } else if (t->storage < 0) {
        *data = t->data;
    } else {
        wt_storage *s = &f->st[t->storage];
        int err = vkf_pickle_storage_load(f, s);
        if (err < 0)
            return err;
        size_t es = vkf_wdtype_size(info->dtype);
        const uint8_t *src = s->data + (size_t)t->offset * es;
        if (t->contiguous) {
            *data = src;
        } else {
            if (!(t->owned = vkf_malloc((size_t)info->nbytes)))
                return VKF_ENOMEM;
            gather(t->owned, src, t, es);
            *data = t->owned;
        }
    }
    *size = (size_t)info->nbytes;
    return 0;
}

/* f16 -> f32 for all 65536 codes (256 KiB, filled on first use): about
 * three times faster than converting bit by bit. */
static float f16_table[65536];
static pthread_once_t f16_once = PTHREAD_ONCE_INIT;

static void f16_table_init(void)
{
    for (uint32_t h = 0; h < 65536; h++)
        f16_table[h] = vkf_f16_to_f32((uint16_t)h);
}

int vkf_weights_to_f32(vkf_weights *w, const vkf_weight_info *t, float *dst)
{
    const void *src;
    size_t size;
    int err = vkf_weights_data(w, t, &src, &size);
    if (err < 0)
        return err;
    size_t es = vkf_wdtype_size(t->dtype);
    const uint8_t *p = src;
    uint16_t h;
    switch (t->dtype) {
    case VKF_WDT_F32:
        if (size)
            memcpy(dst, p, size);
        break;
    case VKF_WDT_F16: /* the common case: a table lookup per element */
        pthread_once(&f16_once, f16_table_init);
        for (int64_t i = 0; i < t->numel; i++) {
            memcpy(&h, p + 2 * i, 2);
            dst[i] = f16_table[h];
        }
        break;
    case VKF_WDT_BF16:
        for (int64_t i = 0; i < t->numel; i++) {
            memcpy(&h, p + 2 * i, 2);
            dst[i] = vkf_bf16_to_f32(h);
        }
        break;
    default:
        for (int64_t i = 0; i < t->numel; i++)
            dst[i] = elem_f32(t->dtype, p + (size_t)i * es);
    }
    return 0;
}

int vkf_weights_to_f16(vkf_weights *w, const vkf_weight_info *t, uint16_t *dst)
{
    const void *src;
    size_t size;
    int err = vkf_weights_data(w, t, &src, &size);
    if (err < 0)
        return err;
    size_t es = vkf_wdtype_size(t->dtype);
    const uint8_t *p = src;
    if (t->dtype == VKF_WDT_F16) {
        if (size)
            memcpy(dst, p, size);
        return 0;
    }
    for (int64_t i = 0; i < t->numel; i++) {
        if (t->dtype == VKF_WDT_F8_E5M2)
            dst[i] = (uint16_t)(p[i] << 8);
        else
            dst[i] = vkf_f32_to_f16(elem_f32(t->dtype, p + (size_t)i * es));
    }
    return 0;
}

int vkf_weights_load_tensor(vkf_weights *w, const vkf_weight_info *t, vkf_gpu *gpu,
                            vkf_tensor **out)
{
    wt_file *f = &w->files[t->file];
    vkf_tensor *x = NULL;
    void *host = NULL;
    int err = 0;
    *out = NULL;
    if (t->ndim > VKF_TENSOR_MAX_DIMS)
        return wt_fail(f, VKF_EUNSUPPORTED, "tensor '%s': %d dims, GPU tensors have at most %d",
                       t->name, t->ndim, VKF_TENSOR_MAX_DIMS);
    if (t->numel == 0)
        return wt_fail(f, VKF_EINVAL, "tensor '%s' is empty: nothing to upload", t->name);
    int64_t one = 1;
    int nd = t->ndim ? t->ndim : 1;
    const int64_t *shape = t->ndim ? t->shape : &one;
    switch (t->dtype) {
    case VKF_WDT_F32:
    case VKF_WDT_F16:
    case VKF_WDT_BF16: {
        vkf_dtype dt = t->dtype == VKF_WDT_F32   ? VKF_DTYPE_F32
                       : t->dtype == VKF_WDT_F16 ? VKF_DTYPE_F16
                                                 : VKF_DTYPE_BF16;
        const void *src;
        size_t size;
        VKF_TRY(vkf_weights_data(w, t, &src, &size));
        VKF_TRY(vkf_tensor_create(gpu, dt, nd, shape, &x));
        VKF_TRY(vkf_tensor_upload_raw(x, src, size));
        break;
    }
    case VKF_WDT_F8_E4M3:
    case VKF_WDT_F8_E5M2:
    case VKF_WDT_I8:
    case VKF_WDT_U8:
    case VKF_WDT_BOOL:
        VKF_CHECK_ALLOC(host = vkf_malloc((size_t)t->numel * 2 + 2));
        VKF_TRY(vkf_weights_to_f16(w, t, host));
        VKF_TRY(vkf_tensor_create(gpu, VKF_DTYPE_F16, nd, shape, &x));
        VKF_TRY(vkf_tensor_upload_raw(x, host, (size_t)t->numel * 2));
        break;
    default:
        VKF_CHECK_ALLOC(host = vkf_malloc((size_t)t->numel * 4 + 4));
        VKF_TRY(vkf_weights_to_f32(w, t, host));
        VKF_TRY(vkf_tensor_create(gpu, VKF_DTYPE_F32, nd, shape, &x));
        VKF_TRY(vkf_tensor_upload(x, host));
        break;
    }
    vkf_free(host);
    *out = x;
    return 0;
fail:
    vkf_free(host);
    vkf_tensor_unref(&x);
    return err;
}
