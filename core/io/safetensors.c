/*
 * safetensors: 8-byte little-endian header length, a JSON header
 * {"name": {"dtype", "shape", "data_offsets": [begin, end]}, ...,
 *  "__metadata__": {string: string}}, then the data area.
 *
 * The header is hostile input.  Besides what the format says, we require
 * what the reference implementation requires: the byte ranges, sorted by
 * begin, tile the data area exactly (no gap, no overlap, nothing after the
 * last tensor), and each range holds exactly numel * dtype-size bytes.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "io/weights_internal.h"

static const char *const dtype_names[VKF_WDT_COUNT] = {
    "F32", "F16", "BF16", "F64", "F8_E4M3", "F8_E5M2",
    "I8", "U8", "I16", "I32", "I64", "BOOL",
};

static void *hook_malloc(size_t size) { return vkf_malloc(size); }
static void hook_free(void *p) { vkf_free(p); }

void wt_cjson_hooks(void)
{
    static cJSON_Hooks hooks = {hook_malloc, hook_free};
    cJSON_InitHooks(&hooks);
}

static int parse_dtype(const char *s, vkf_wdtype *out)
{
    for (int i = 0; i < VKF_WDT_COUNT; i++) {
        if (!strcmp(s, dtype_names[i])) {
            *out = (vkf_wdtype)i;
            return 0;
        }
    }
    return VKF_EPARSE;
}

/* JSON numbers are doubles: accept exact non-negative integers < 2^53. */
static bool json_u53(const cJSON *v, uint64_t *out)
{
    if (!cJSON_IsNumber(v))
        return false;
    double d = v->valuedouble;
    if (!(d >= 0) || d > 9007199254740991.0 || floor(d) != d)
        return false;
    *out = (uint64_t)d;
    return true;
}

typedef struct range {
    uint64_t begin, end;
    int tensor;
} range;

static int range_cmp(const void *a, const void *b)
{
    const range *x = a, *y = b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end)
        return x->end < y->end ? -1 : 1;
    return 0;
}

static int name_cmp(const void *a, const void *b)
{
    const wt_tensor *x = a, *y = b;
    return strcmp(x->name, y->name);
}

static int parse_metadata(wt_file *f, const cJSON *m)
{
    if (!cJSON_IsObject(m))
        return wt_fail(f, VKF_EPARSE, "__metadata__ is not a JSON object");
    for (const cJSON *kv = m->child; kv; kv = kv->next) {
        if (!cJSON_IsString(kv))
            return wt_fail(f, VKF_EPARSE, "__metadata__ value '%s' is not a string",
                           kv->string);
        int err = wt_add_meta(f, kv->string, kv->valuestring);
        if (err < 0)
            return err;
    }
    return 0;
}

static int parse_entry(wt_file *f, const cJSON *e, const uint8_t *data_area,
                       uint64_t data_size, range *r)
{
    int err;
    const char *name = e->string;
    size_t name_len = strlen(name);
    if (!wt_utf8_valid(name, name_len))
        return wt_fail(f, VKF_EPARSE, "tensor name is not valid UTF-8");
    if (!cJSON_IsObject(e))
        return wt_fail(f, VKF_EPARSE, "tensor '%s': entry is not an object", name);
    const cJSON *jd = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    const cJSON *js = cJSON_GetObjectItemCaseSensitive(e, "shape");
    const cJSON *jo = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    if (!cJSON_IsString(jd) || !cJSON_IsArray(js) || !cJSON_IsArray(jo))
        return wt_fail(f, VKF_EPARSE,
                       "tensor '%s': needs string dtype, shape and data_offsets arrays",
                       name);
    vkf_wdtype dt;
    if (parse_dtype(jd->valuestring, &dt) < 0)
        return wt_fail(f, VKF_EPARSE, "tensor '%s': unknown dtype '%s'", name,
                       jd->valuestring);
    int ndim = cJSON_GetArraySize(js);
    if (ndim > VKF_WEIGHTS_MAX_DIMS)
        return wt_fail(f, VKF_EPARSE, "tensor '%s': %d dims (max %d)", name, ndim,
                       VKF_WEIGHTS_MAX_DIMS);
    uint64_t begin, end;
    if (cJSON_GetArraySize(jo) != 2 || !json_u53(jo->child, &begin) ||
        !json_u53(jo->child->next, &end))
        return wt_fail(f, VKF_EPARSE,
                       "tensor '%s': data_offsets must be two non-negative integers",
                       name);
    if (begin > end)
        return wt_fail(f, VKF_EPARSE,
                       "tensor '%s': data_offsets out of order (%llu > %llu)", name,
                       (unsigned long long)begin, (unsigned long long)end);
    if (end > data_size)
        return wt_fail(f, VKF_EPARSE,
                       "tensor '%s': data_offsets end %llu is past the end of the "
                       "file (data area %llu bytes)",
                       name, (unsigned long long)end, (unsigned long long)data_size);
    wt_tensor *t;
    if ((err = wt_add_tensor(f, name, name_len, &t)) < 0)
        return err;
    t->info.dtype = dt;
    t->info.ndim = ndim;
    int d = 0;
    for (const cJSON *v = js->child; v; v = v->next, d++) {
        uint64_t dim;
        if (!json_u53(v, &dim))
            return wt_fail(f, VKF_EPARSE,
                           "tensor '%s': dim %d is not a non-negative integer", name, d);
        t->info.shape[d] = (int64_t)dim;
    }
    if ((err = wt_finish_info(f, t)) < 0)
        return err;
    if (t->info.nbytes != end - begin)
        return wt_fail(f, VKF_EPARSE,
                       "tensor '%s': shape x dtype is %llu bytes but data_offsets "
                       "span %llu",
                       name, (unsigned long long)t->info.nbytes,
                       (unsigned long long)(end - begin));
    t->data = data_area + begin;
    r->begin = begin;
    r->end = end;
    r->tensor = f->count - 1;
    return 0;
}

int vkf_safetensors_parse(wt_file *f)
{
    int err = 0;
    cJSON *root = NULL;
    range *ranges = NULL;
    if (f->size < 8) {
        err = wt_fail(f, VKF_EPARSE, "truncated: %zu bytes, no safetensors header",
                      f->size);
        goto fail;
    }
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | f->base[i];
    if (hlen > f->size - 8) {
        err = wt_fail(f, VKF_EPARSE,
                      "header length %llu is past the end of the file (%zu bytes)",
                      (unsigned long long)hlen, f->size);
        goto fail;
    }
    if (hlen > WT_MAX_HEADER) {
        err = wt_fail(f, VKF_EPARSE, "header of %llu bytes exceeds the %u MiB limit",
                      (unsigned long long)hlen, WT_MAX_HEADER >> 20);
        goto fail;
    }
    const char *hdr = (const char *)f->base + 8;
    if (hlen < 2 || hdr[0] != '{') {
        err = wt_fail(f, VKF_EPARSE, "header is not a JSON object");
        goto fail;
    }
    /* serde_json, which the reference reader uses, accepts only UTF-8. */
    if (!wt_utf8_valid(hdr, (size_t)hlen)) {
        err = wt_fail(f, VKF_EPARSE, "header is not valid UTF-8");
        goto fail;
    }
    wt_cjson_hooks();
    const char *end = NULL;
    root = cJSON_ParseWithLengthOpts(hdr, (size_t)hlen, &end, false);
    if (!root) {
        if (vkf_alloc_failed()) {
            err = VKF_ENOMEM;
            goto fail;
        }
        const char *at = cJSON_GetErrorPtr();
        long off = at && at >= hdr && at <= hdr + hlen ? (long)(at - hdr) : -1;
        err = wt_fail(f, VKF_EPARSE, "header JSON is malformed near byte %ld", off);
        goto fail;
    }
    for (const char *p = end; p && p < hdr + hlen; p++) {
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            err = wt_fail(f, VKF_EPARSE, "garbage after the header JSON at byte %ld",
                          (long)(p - hdr));
            goto fail;
        }
    }
    if (!cJSON_IsObject(root)) {
        err = wt_fail(f, VKF_EPARSE, "header is not a JSON object");
        goto fail;
    }
    int n = cJSON_GetArraySize(root);
    if (n > WT_MAX_TENSORS) {
        err = wt_fail(f, VKF_EPARSE, "%d header entries (max %d)", n, WT_MAX_TENSORS);
        goto fail;
    }
    ranges = vkf_calloc((size_t)n + 1, sizeof(*ranges));
    VKF_CHECK_ALLOC(ranges);
    const uint8_t *data_area = f->base + 8 + hlen;
    uint64_t data_size = f->size - 8 - hlen;
    int nr = 0;
    bool have_meta = false;
    for (const cJSON *e = root->child; e; e = e->next) {
        if (!strcmp(e->string, "__metadata__")) {
            if (have_meta) {
                err = wt_fail(f, VKF_EPARSE, "duplicate __metadata__");
                goto fail;
            }
            have_meta = true;
            VKF_TRY(parse_metadata(f, e));
            continue;
        }
        VKF_TRY(parse_entry(f, e, data_area, data_size, &ranges[nr]));
        nr++;
    }
    if (nr > 1)
        qsort(ranges, (size_t)nr, sizeof(*ranges), range_cmp);
    uint64_t pos = 0;
    for (int i = 0; i < nr; i++) {
        const char *tn = f->t[ranges[i].tensor].name;
        if (ranges[i].begin < pos) {
            err = wt_fail(f, VKF_EPARSE, "tensor '%s': bytes %llu..%llu overlap another tensor",
                          tn, (unsigned long long)ranges[i].begin,
                          (unsigned long long)ranges[i].end);
            goto fail;
        }
        if (ranges[i].begin > pos) {
            err = wt_fail(f, VKF_EPARSE,
                          "data offsets do not cover the data: gap at bytes %llu..%llu "
                          "before tensor '%s'",
                          (unsigned long long)pos, (unsigned long long)ranges[i].begin, tn);
            goto fail;
        }
        pos = ranges[i].end;
    }
    if (pos != data_size) {
        err = wt_fail(f, VKF_EPARSE,
                      "data offsets do not cover the data: tensors end at byte %llu "
                      "but the data area has %llu",
                      (unsigned long long)pos, (unsigned long long)data_size);
        goto fail;
    }
    if (f->count > 1)
        qsort(f->t, (size_t)f->count, sizeof(*f->t), name_cmp);
    for (int i = 1; i < f->count; i++) {
        if (!strcmp(f->t[i - 1].name, f->t[i].name)) {
            err = wt_fail(f, VKF_EPARSE, "duplicate tensor name '%s'", f->t[i].name);
            goto fail;
        }
    }
fail:
    cJSON_Delete(root);
    vkf_free(ranges);
    return err;
}

const char *vkf_wdtype_name(vkf_wdtype dt)
{
    return (unsigned)dt < VKF_WDT_COUNT ? dtype_names[dt] : "?";
}
