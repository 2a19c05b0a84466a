/* Helpers shared by the tokenizer tests: JSON files and id comparison. */
#ifndef VKF_TEXT_TEST_UTIL_H
#define VKF_TEXT_TEST_UTIL_H

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>

static inline char *read_text_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    if (s && fread(s, 1, (size_t)n, f) != (size_t)n) {
        free(s);
        s = NULL;
    }
    if (s)
        s[n] = 0;
    fclose(f);
    return s;
}

/* Parses dir/rel (dir from the environment variable env_var). */
static inline cJSON *load_json(const char *env_var, const char *fallback, const char *rel)
{
    const char *dir = getenv(env_var);
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir ? dir : fallback, rel);
    char *s = read_text_file(path);
    if (!s) {
        fprintf(stderr, "cannot read %s\n", path);
        return NULL;
    }
    cJSON *j = cJSON_Parse(s);
    free(s);
    if (!j)
        fprintf(stderr, "cannot parse %s\n", path);
    return j;
}

#endif
