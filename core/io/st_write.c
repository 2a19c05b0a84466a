/*
 * safetensors writer (vkflow/models.h, "safetensors writer").
 *
 * Tensors are recorded as recipes (random, constant, or a copy of caller
 * data) and produced chunk by chunk at save time, so a 2 GB synthesized
 * checkpoint needs a few hundred KiB of memory.
 *
 * File layout, as the Python/Rust `safetensors` writer makes it:
 *   u64 little-endian header length N
 *   N bytes of compact JSON: {"__metadata__":{...},"name":{"dtype":"F16",
 *     "shape":[..],"data_offsets":[begin,end]},...} padded with spaces so
 *     that N is a multiple of 8 (the data area is then 8-byte aligned)
 *   the data area: tensors back to back in name (strcmp) order.
 * "__metadata__" is present only when metadata was added; its keys are
 * written sorted.
 *
 * Random values: element i of tensor `name` is
 *   k = mix(seed ^ mix(fnv1a64(name)))
 *   r = mix(k + (i + 1) · 0x9E3779B97F4A7C15)     (splitmix64 step)
 *   u = (r >> 40) / 2^24                            (24 bits, in [0, 1))
 *   v = mean + (std·√3) · (2u − 1)
 * with the product formed exactly in double and one rounding to float
 * (then RNE to f16/bf16), so the bytes are the same on every machine and
 * compiler (no contraction can change an exact product).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vkflow/models.h"
#include "vkflow/paths.h"

typedef enum st_kind { ST_RANDOM, ST_CONST, ST_DATA } st_kind;

typedef struct st_entry {
    char *name;
    vkf_wdtype dtype;
    int ndim;
    int64_t shape[VKF_WEIGHTS_MAX_DIMS];
    uint64_t numel;
    st_kind kind;
    float mean, std, value;
    float *data;             /* ST_DATA: numel floats */
} st_entry;

typedef struct st_meta {
    char *key, *value;
} st_meta;

struct vkf_st_writer {
    uint64_t seed;
    st_entry *e;
    int n, cap;
    st_meta *m;
    int nm, mcap;
};

/* ---- generator --------------------------------------------------------- */

static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t fnv1a64(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3ull;
    }
    return h;
}

static uint16_t f32_to_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u)    /* NaN: keep it a (quiet) NaN */
        return (uint16_t)((u >> 16) | 0x0040u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

/* ---- recording --------------------------------------------------------- */

int vkf_st_writer_create(uint64_t seed, vkf_st_writer **out)
{
    if (!out)
        return VKF_EINVAL;
    *out = vkf_calloc(1, sizeof(**out));
    if (!*out)
        return VKF_ENOMEM;
    (*out)->seed = seed;
    return 0;
}

void vkf_st_writer_destroy(vkf_st_writer **pw)
{
    if (!pw || !*pw)
        return;
    vkf_st_writer *w = *pw;
    for (int i = 0; i < w->n; i++) {
        vkf_free(w->e[i].name);
        vkf_free(w->e[i].data);
    }
    vkf_free(w->e);
    for (int i = 0; i < w->nm; i++) {
        vkf_free(w->m[i].key);
        vkf_free(w->m[i].value);
    }
    vkf_free(w->m);
    vkf_free(w);
    *pw = NULL;
}

int vkf_st_writer_count(const vkf_st_writer *w)
{
    return w ? w->n : 0;
}

/* Validates and appends an entry; returns it through *out. */
static int add_entry(vkf_st_writer *w, const char *name, vkf_wdtype dtype, int ndim,
                     const int64_t *shape, st_kind kind, st_entry **out)
{
    if (!w || !name || !name[0] || !strcmp(name, "__metadata__"))
        return VKF_EINVAL;
    if (dtype != VKF_WDT_F32 && dtype != VKF_WDT_F16 && dtype != VKF_WDT_BF16)
        return VKF_EINVAL;
    if (ndim < 0 || ndim > VKF_WEIGHTS_MAX_DIMS || (ndim > 0 && !shape))
        return VKF_EINVAL;
    uint64_t numel = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0)
            return VKF_EINVAL;
        /* data offsets are JSON numbers: keep every size below 2^50 */
        if (shape[i] > 0 && numel > ((uint64_t)1 << 50) / (uint64_t)shape[i])
            return VKF_EINVAL;
        numel *= (uint64_t)shape[i];
    }
    for (int i = 0; i < w->n; i++)
        if (!strcmp(w->e[i].name, name))
            return VKF_EINVAL;
    int err = vkf_grow(&w->e, &w->cap, w->n + 1, sizeof(*w->e));
    if (err < 0)
        return err;
    st_entry *e = &w->e[w->n];
    memset(e, 0, sizeof(*e));
    e->name = vkf_strdup(name);
    if (!e->name)
        return VKF_ENOMEM;
    e->dtype = dtype;
    e->ndim = ndim;
    for (int i = 0; i < ndim; i++)
        e->shape[i] = shape[i];
    e->numel = numel;
    e->kind = kind;
    *out = e;
    return 0;
}

int vkf_st_writer_add_random(vkf_st_writer *w, const char *name, vkf_wdtype dtype,
                             int ndim, const int64_t *shape, float mean, float std)
{
    if (!isfinite(mean) || !isfinite(std) || std < 0)
        return VKF_EINVAL;
    st_entry *e;
    int err = add_entry(w, name, dtype, ndim, shape, ST_RANDOM, &e);
    if (err < 0)
        return err;
    e->mean = mean;
    e->std = std;
    w->n++;
    return 0;
}

int vkf_st_writer_add_const(vkf_st_writer *w, const char *name, vkf_wdtype dtype,
                            int ndim, const int64_t *shape, float value)
{
    st_entry *e;
    int err = add_entry(w, name, dtype, ndim, shape, ST_CONST, &e);
    if (err < 0)
        return err;
    e->value = value;
    w->n++;
    return 0;
}

int vkf_st_writer_add_data(vkf_st_writer *w, const char *name, vkf_wdtype dtype,
                           int ndim, const int64_t *shape, const float *data)
{
    st_entry *e;
    int err = add_entry(w, name, dtype, ndim, shape, ST_DATA, &e);
    if (err < 0)
        return err;
    if (e->numel && !data) {
        vkf_free(e->name);
        e->name = NULL;
        return VKF_EINVAL;
    }
    if (e->numel > SIZE_MAX / sizeof(float)) {
        vkf_free(e->name);
        e->name = NULL;
        return VKF_ENOMEM;
    }
    e->data = vkf_malloc(e->numel ? (size_t)e->numel * sizeof(float) : 1);
    if (!e->data) {
        vkf_free(e->name);
        e->name = NULL;
        return VKF_ENOMEM;
    }
    if (e->numel)
        memcpy(e->data, data, (size_t)e->numel * sizeof(float));
    w->n++;
    return 0;
}

/* A second value for the same key replaces the first (a Python dict). */
int vkf_st_writer_add_metadata(vkf_st_writer *w, const char *key, const char *value)
{
    if (!w || !key || !value)
        return VKF_EINVAL;
    for (int i = 0; i < w->nm; i++) {
        if (!strcmp(w->m[i].key, key)) {
            char *v = vkf_strdup(value);
            if (!v)
                return VKF_ENOMEM;
            vkf_free(w->m[i].value);
            w->m[i].value = v;
            return 0;
        }
    }
    int err = vkf_grow(&w->m, &w->mcap, w->nm + 1, sizeof(*w->m));
    if (err < 0)
        return err;
    char *k = vkf_strdup(key), *v = vkf_strdup(value);
    if (!k || !v) {
        vkf_free(k);
        vkf_free(v);
        return VKF_ENOMEM;
    }
    w->m[w->nm].key = k;
    w->m[w->nm].value = v;
    w->nm++;
    return 0;
}

/* ---- header ------------------------------------------------------------ */

typedef struct strbuf {
    char *p;
    size_t len, cap;
    bool oom;
} strbuf;

static void sb_put(strbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t ncap = b->cap ? b->cap : 4096;
        while (ncap < b->len + n + 1)
            ncap *= 2;
        char *np = vkf_realloc(b->p, ncap);
        if (!np) {
            b->oom = true;
            return;
        }
        b->p = np;
        b->cap = ncap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

static void sb_puts(strbuf *b, const char *s)
{
    sb_put(b, s, strlen(s));
}

/* A JSON string as serde_json writes it: ", \ and control characters
 * escaped, everything else (UTF-8 included) verbatim. */
static void sb_json_string(strbuf *b, const char *s)
{
    sb_put(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char esc[8];
        switch (*p) {
        case '"': sb_puts(b, "\\\""); break;
        case '\\': sb_puts(b, "\\\\"); break;
        case '\b': sb_puts(b, "\\b"); break;
        case '\f': sb_puts(b, "\\f"); break;
        case '\n': sb_puts(b, "\\n"); break;
        case '\r': sb_puts(b, "\\r"); break;
        case '\t': sb_puts(b, "\\t"); break;
        default:
            if (*p < 0x20) {
                snprintf(esc, sizeof(esc), "\\u%04x", *p);
                sb_puts(b, esc);
            } else {
                sb_put(b, (const char *)p, 1);
            }
        }
    }
    sb_put(b, "\"", 1);
}

static int cmp_entry_ptr(const void *a, const void *b)
{
    const st_entry *x = *(const st_entry *const *)a, *y = *(const st_entry *const *)b;
    return strcmp(x->name, y->name);
}

static int cmp_meta(const void *a, const void *b)
{
    return strcmp(((const st_meta *)a)->key, ((const st_meta *)b)->key);
}

static int build_header(vkf_st_writer *w, st_entry **order, strbuf *b)
{
    char num[64];
    sb_put(b, "{", 1);
    bool first = true;
    if (w->nm) {
        qsort(w->m, (size_t)w->nm, sizeof(*w->m), cmp_meta);
        sb_puts(b, "\"__metadata__\":{");
        for (int i = 0; i < w->nm; i++) {
            if (i)
                sb_put(b, ",", 1);
            sb_json_string(b, w->m[i].key);
            sb_put(b, ":", 1);
            sb_json_string(b, w->m[i].value);
        }
        sb_put(b, "}", 1);
        first = false;
    }
    uint64_t off = 0;
    for (int i = 0; i < w->n; i++) {
        const st_entry *e = order[i];
        if (!first)
            sb_put(b, ",", 1);
        first = false;
        sb_json_string(b, e->name);
        sb_puts(b, ":{\"dtype\":\"");
        sb_puts(b, vkf_wdtype_name(e->dtype));
        sb_puts(b, "\",\"shape\":[");
        for (int d = 0; d < e->ndim; d++) {
            snprintf(num, sizeof(num), "%s%lld", d ? "," : "", (long long)e->shape[d]);
            sb_puts(b, num);
        }
        uint64_t end = off + e->numel * vkf_wdtype_size(e->dtype);
        snprintf(num, sizeof(num), "],\"data_offsets\":[%llu,%llu]}",
                 (unsigned long long)off, (unsigned long long)end);
        sb_puts(b, num);
        off = end;
    }
    sb_put(b, "}", 1);
    while (!b->oom && b->len % 8)
        sb_put(b, " ", 1);
    return b->oom ? VKF_ENOMEM : 0;
}

/* ---- data -------------------------------------------------------------- */

#define CHUNK 65536

static void fill_chunk(const vkf_st_writer *w, const st_entry *e, uint64_t start, size_t n,
                       float *f)
{
    switch (e->kind) {
    case ST_CONST:
        for (size_t i = 0; i < n; i++)
            f[i] = e->value;
        break;
    case ST_DATA:
        memcpy(f, e->data + start, n * sizeof(float));
        break;
    case ST_RANDOM: {
        uint64_t key = mix64(w->seed ^ mix64(fnv1a64(e->name)));
        double scale = (double)(float)((double)e->std * 1.7320508075688772);
        for (size_t i = 0; i < n; i++) {
            uint64_t r = mix64(key + (start + i + 1) * 0x9E3779B97F4A7C15ull);
            int32_t k = (int32_t)(r >> 40);                   /* [0, 2^24) */
            double v = (double)(2 * k - (1 << 24)) * (1.0 / 16777216.0); /* [-1, 1) exact */
            double prod = scale * v;                         /* exact: 24 + 25 bits */
            f[i] = (float)((double)e->mean + prod);
        }
        break;
    }
    }
}

static int write_entry(const vkf_st_writer *w, const st_entry *e, vkf_atomic_file *af,
                       float *fbuf, uint16_t *hbuf)
{
    for (uint64_t start = 0; start < e->numel; start += CHUNK) {
        size_t n = (size_t)(e->numel - start < CHUNK ? e->numel - start : CHUNK);
        fill_chunk(w, e, start, n, fbuf);
        const void *out = fbuf;
        size_t bytes = n * 4;
        if (e->dtype == VKF_WDT_F16) {
            for (size_t i = 0; i < n; i++)
                hbuf[i] = vkf_f32_to_f16(fbuf[i]);
            out = hbuf;
            bytes = n * 2;
        } else if (e->dtype == VKF_WDT_BF16) {
            for (size_t i = 0; i < n; i++)
                hbuf[i] = f32_to_bf16(fbuf[i]);
            out = hbuf;
            bytes = n * 2;
        }
        /* The file format is little-endian, like every host vkflow runs on
         * (the readers assume the same). */
        int err = vkf_atomic_file_write(af, out, bytes);
        if (err < 0)
            return err;
    }
    return 0;
}

int vkf_st_writer_save(vkf_st_writer *w, const char *path, vkf_errbuf *e)
{
    if (!w || !path || !path[0])
        return vkf_errbuf_set(e, VKF_EINVAL, "safetensors writer: no output path given");
    int err = 0;
    st_entry **order = NULL;
    strbuf hdr = {0};
    float *fbuf = NULL;
    uint16_t *hbuf = NULL;
    vkf_atomic_file *af = NULL;

    order = vkf_malloc(sizeof(*order) * (size_t)(w->n ? w->n : 1));
    fbuf = vkf_malloc(sizeof(*fbuf) * CHUNK);
    hbuf = vkf_malloc(sizeof(*hbuf) * CHUNK);
    if (!order || !fbuf || !hbuf) {
        err = vkf_errbuf_set(e, VKF_ENOMEM, "%s: out of memory preparing the file", path);
        goto done;
    }
    for (int i = 0; i < w->n; i++)
        order[i] = &w->e[i];
    qsort(order, (size_t)w->n, sizeof(*order), cmp_entry_ptr);
    err = build_header(w, order, &hdr);
    if (err < 0) {
        vkf_errbuf_set(e, err, "%s: out of memory building the header", path);
        goto done;
    }

    err = vkf_atomic_file_open(&af, path);
    if (err < 0) {
        vkf_errbuf_set(e, err, "%s: cannot create the file (does its folder exist and is it writable?)",
                       path);
        goto done;
    }
    uint8_t len8[8];
    for (int i = 0; i < 8; i++)
        len8[i] = (uint8_t)((uint64_t)hdr.len >> (8 * i));
    err = vkf_atomic_file_write(af, len8, 8);
    if (err >= 0)
        err = vkf_atomic_file_write(af, hdr.p, hdr.len);
    for (int i = 0; err >= 0 && i < w->n; i++)
        err = write_entry(w, order[i], af, fbuf, hbuf);
    if (err < 0) {
        vkf_errbuf_set(e, err, "%s: write failed (disk full?)", path);
        vkf_atomic_file_abort(&af);
        goto done;
    }
    err = vkf_atomic_file_commit(&af);
    if (err < 0)
        vkf_errbuf_set(e, err, "%s: could not finish writing the file (disk full?)", path);
done:
    vkf_atomic_file_abort(&af);
    vkf_free(order);
    vkf_free(hdr.p);
    vkf_free(fbuf);
    vkf_free(hbuf);
    return err;
}
