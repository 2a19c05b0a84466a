/* Loading the sampling goldens (tests/reference/golden/sampling_*.json,
 * written by tests/reference/make_sampling_goldens.py). */
#ifndef VKF_TEST_SAMPLING_GOLDEN_H
#define VKF_TEST_SAMPLING_GOLDEN_H

#include <cjson/cJSON.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Parsed golden file, or NULL (the caller skips with 77). */
static inline cJSON *golden_load(const char *name)
{
    const char *root = getenv("VKF_SOURCE_ROOT");
    char path[4096];
    snprintf(path, sizeof(path), "%s/tests/reference/golden/%s", root ? root : ".", name);
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "cannot open %s\n", path);
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *text = malloc((size_t)size + 1);
    cJSON *json = NULL;
    if (text && fread(text, 1, (size_t)size, f) == (size_t)size) {
        text[size] = 0;
        json = cJSON_Parse(text);
    }
    free(text);
    fclose(f);
    return json;
}

static inline uint64_t golden_u64(const cJSON *item)
{
    if (cJSON_IsString(item))
        return strtoull(item->valuestring, NULL, 10);
    return (uint64_t)item->valuedouble;
}

static inline uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof(u));
    return u;
}

/* FNV-1a 64 over the little-endian bytes of the floats. */
static inline uint64_t fnv1a64_f32(const float *v, size_t n)
{
    uint64_t h = UINT64_C(0xcbf29ce484222325);
    for (size_t i = 0; i < n; i++) {
        uint32_t u = f32_bits(v[i]);
        for (int b = 0; b < 4; b++) {
            h ^= (u >> (8 * b)) & 0xffu;
            h *= UINT64_C(0x100000001b3);
        }
    }
    return h;
}

/* Compare a float tensor against a golden record {count, bits} or
 * {count, first, last, fnv1a64}; returns the number of differing checks. */
static inline int golden_compare_tensor(const cJSON *rec, const float *v, size_t n)
{
    int bad = 0;
    if ((size_t)cJSON_GetObjectItem(rec, "count")->valuedouble != n)
        return 1;
    const cJSON *all = cJSON_GetObjectItem(rec, "bits");
    if (all) {
        size_t i = 0;
        for (const cJSON *b = all->child; b; b = b->next, i++)
            bad += f32_bits(v[i]) != (uint32_t)b->valuedouble;
        return bad;
    }
    const cJSON *first = cJSON_GetObjectItem(rec, "first");
    const cJSON *last = cJSON_GetObjectItem(rec, "last");
    size_t nl = (size_t)cJSON_GetArraySize(last);
    size_t i = 0;
    for (const cJSON *b = first->child; b; b = b->next, i++)
        bad += f32_bits(v[i]) != (uint32_t)b->valuedouble;
    i = 0;
    for (const cJSON *b = last->child; b; b = b->next, i++)
        bad += f32_bits(v[n - nl + i]) != (uint32_t)b->valuedouble;
    uint64_t want = strtoull(cJSON_GetObjectItem(rec, "fnv1a64")->valuestring, NULL, 16);
    bad += fnv1a64_f32(v, n) != want;
    return bad;
}

#endif
