/*
 * `vkflow inspect [--json] FILE|FOLDER`: what a weight file holds — tensor
 * count, dtypes, parameter count, detected family, key prefixes, metadata.
 * Exit codes: 0 success, 1 the file could not be read, 2 usage error.
 */
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli/cli.h"
#include "vkflow/weights.h"

static const char *const format_names[] = {"safetensors", "pytorch-zip", "sharded",
                                           "diffusers"};

typedef struct prefix_count {
    char name[128];
    int count;
} prefix_count;

/* Prefixes of the first two name components, never the last one (the
 * parameter's own name): "a.b.c.weight" -> "a.b", "vae.x" -> "vae".  In
 * name order; the names are sorted, so equal prefixes are adjacent. */
static int key_prefixes(const vkf_weights *w, prefix_count **out, int *n)
{
    int cap = 0;
    *out = NULL;
    *n = 0;
    for (int i = 0; i < vkf_weights_count(w); i++) {
        const char *name = vkf_weights_at(w, i)->name;
        const char *dot = strchr(name, '.');
        if (dot && strchr(dot + 1, '.'))
            dot = strchr(dot + 1, '.');
        size_t len = dot ? (size_t)(dot - name) : strlen(name);
        if (len > sizeof((*out)->name) - 1)
            len = sizeof((*out)->name) - 1;
        if (*n && strlen((*out)[*n - 1].name) == len && !strncmp((*out)[*n - 1].name, name, len)) {
            (*out)[*n - 1].count++;
            continue;
        }
        if (vkf_grow(out, &cap, *n + 1, sizeof(**out)) < 0)
            return VKF_ENOMEM;
        prefix_count *p = &(*out)[(*n)++];
        memcpy(p->name, name, len);
        p->name[len] = 0;
        p->count = 1;
    }
    return 0;
}

static void *hook_malloc(size_t size) { return vkf_malloc(size); }
static void hook_free(void *p) { vkf_free(p); }

static int print_json(const char *path, const vkf_weights *w, const vkf_detect_result *det,
                      const int64_t *dt_count, int64_t params, uint64_t bytes,
                      const prefix_count *pre, int npre)
{
    static cJSON_Hooks hooks = {hook_malloc, hook_free};
    cJSON_InitHooks(&hooks);
    cJSON *root = cJSON_CreateObject(), *o;
    bool ok = root != NULL;
    ok = ok && cJSON_AddStringToObject(root, "file", path);
    ok = ok && cJSON_AddStringToObject(root, "format",
                                       format_names[vkf_weights_get_format(w)]);
    ok = ok && cJSON_AddNumberToObject(root, "files", vkf_weights_file_count(w));
    ok = ok && cJSON_AddNumberToObject(root, "tensors", vkf_weights_count(w));
    ok = ok && cJSON_AddNumberToObject(root, "parameters", (double)params);
    ok = ok && cJSON_AddNumberToObject(root, "bytes", (double)bytes);
    ok = ok && (o = cJSON_AddObjectToObject(root, "dtypes"));
    for (int i = 0; ok && i < VKF_WDT_COUNT; i++)
        if (dt_count[i])
            ok = cJSON_AddNumberToObject(o, vkf_wdtype_name((vkf_wdtype)i), (double)dt_count[i]);
    ok = ok && (o = cJSON_AddObjectToObject(root, "detected"));
    ok = ok && cJSON_AddStringToObject(o, "family", det->family);
    ok = ok && cJSON_AddStringToObject(o, "variant", det->variant);
    ok = ok && cJSON_AddStringToObject(o, "prefix", det->prefix);
    ok = ok && cJSON_AddStringToObject(o, "components", det->components);
    ok = ok && (o = cJSON_AddObjectToObject(root, "key_prefixes"));
    for (int i = 0; ok && i < npre; i++)
        ok = cJSON_AddNumberToObject(o, pre[i].name, pre[i].count);
    ok = ok && (o = cJSON_AddObjectToObject(root, "metadata"));
    for (int i = 0; ok && i < vkf_weights_metadata_count(w); i++) {
        const char *k, *v;
        vkf_weights_metadata_at(w, i, &k, &v);
        ok = cJSON_AddStringToObject(o, k, v);
    }
    char *s = ok ? cJSON_Print(root) : NULL;
    if (s)
        printf("%s\n", s);
    vkf_free(s);
    cJSON_Delete(root);
    return s ? 0 : VKF_ENOMEM;
}

static void print_text(const char *path, const vkf_weights *w, const vkf_detect_result *det,
                       const int64_t *dt_count, int64_t params, uint64_t bytes,
                       const prefix_count *pre, int npre)
{
    printf("file:        %s\n", path);
    printf("format:      %s (%d file%s)\n", format_names[vkf_weights_get_format(w)],
           vkf_weights_file_count(w), vkf_weights_file_count(w) == 1 ? "" : "s");
    printf("tensors:     %d\n", vkf_weights_count(w));
    printf("parameters:  %lld (%.2f M)\n", (long long)params, (double)params / 1e6);
    printf("bytes:       %llu (%.1f MiB)\n", (unsigned long long)bytes,
           (double)bytes / (1024.0 * 1024.0));
    printf("dtypes:     ");
    for (int i = 0; i < VKF_WDT_COUNT; i++)
        if (dt_count[i])
            printf(" %s %lld", vkf_wdtype_name((vkf_wdtype)i), (long long)dt_count[i]);
    printf("\ndetected:    %s%s%s\n", det->family, det->variant[0] ? " — " : "", det->variant);
    if (det->prefix[0])
        printf("prefix:      %s\n", det->prefix);
    if (det->components[0])
        printf("components:  %s\n", det->components);
    printf("key prefixes (%d):\n", npre);
    int shown = npre > 60 ? 50 : npre;
    for (int i = 0; i < shown; i++)
        printf("  %-48s %d\n", pre[i].name, pre[i].count);
    if (shown < npre)
        printf("  ... %d more (--json lists all)\n", npre - shown);
    printf("metadata keys (%d):", vkf_weights_metadata_count(w));
    for (int i = 0; i < vkf_weights_metadata_count(w); i++) {
        const char *k, *v;
        vkf_weights_metadata_at(w, i, &k, &v);
        printf("%s%s", i ? ", " : " ", k);
    }
    printf("\n");
}

int vkf_cli_inspect(int argc, char **argv)
{
    const char *path = NULL;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) {
            json = true;
        } else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: vkflow inspect [--json] FILE|FOLDER\n");
            return 0;
        } else if (argv[i][0] == '-' || path) {
            fprintf(stderr, "usage: vkflow inspect [--json] FILE|FOLDER\n");
            return 2;
        } else {
            path = argv[i];
        }
    }
    if (!path) {
        fprintf(stderr, "usage: vkflow inspect [--json] FILE|FOLDER\n");
        return 2;
    }
    vkf_log log = vkf_log_stderr(VKF_LOG_WARN);
    vkf_weights *w = NULL;
    if (vkf_weights_open(path, &w, &log) < 0)
        return 1;
    int64_t dt_count[VKF_WDT_COUNT] = {0}, params = 0;
    uint64_t bytes = 0;
    for (int i = 0; i < vkf_weights_count(w); i++) {
        const vkf_weight_info *t = vkf_weights_at(w, i);
        dt_count[t->dtype]++;
        params += t->numel;
        bytes += t->nbytes;
    }
    vkf_detect_result det;
    vkf_weights_detect(w, &det);
    prefix_count *pre = NULL;
    int npre = 0, rc = 0;
    if (key_prefixes(w, &pre, &npre) < 0) {
        rc = 1;
    } else if (json) {
        rc = print_json(path, w, &det, dt_count, params, bytes, pre, npre) < 0 ? 1 : 0;
    } else {
        print_text(path, w, &det, dt_count, params, bytes, pre, npre);
    }
    vkf_free(pre);
    vkf_weights_close(&w);
    return rc;
}
