/*
 * Fail the Nth allocation of each loader entry point for every N until the
 * call succeeds: each failure must be a clean VKF_ENOMEM that frees all it
 * allocated (cJSON and zlib allocate through vkf_malloc too).
 */
#include <stdlib.h>
#include <zlib.h>

#include "object_info_registry.h"
#include "test_util.h"

static vkf_registry *reg;

typedef int (*load_fn)(const void *data, size_t size);

static int load_json(const void *data, size_t size)
{
    vkf_graph *g = NULL;
    vkf_load_error err = {0};
    int r = vkf_load_workflow_json(data, size, reg, &g, &err);
    if (r < 0 && err.code != r)
        r = VKF_EINVAL;
    char *json = NULL;
    if (r == 0)
        r = vkf_graph_to_json(g, &json, true);
    vkf_free(json);
    vkf_graph_free(&g);
    vkf_load_error_clear(&err);
    return r;
}

static int load_mem(const void *data, size_t size)
{
    vkf_graph *g = NULL;
    vkf_load_error err = {0};
    int r = vkf_load_workflow_mem(data, size, "x.png", reg, &g, &err);
    if (r < 0 && err.code != r)
        r = VKF_EINVAL;
    vkf_graph_free(&g);
    vkf_load_error_clear(&err);
    return r;
}

static int set_inputs(const void *data, size_t size)
{
    vkf_graph *g = NULL;
    char *msg = NULL;
    int r = vkf_load_workflow_json(data, size, reg, &g, NULL);
    if (r == 0)
        r = vkf_graph_set_input(g, "3", "seed", "18446744073709551615", &msg);
    if (r == 0)
        r = vkf_graph_set_input(g, "3", "note", "plain text", &msg);
    if (r == 0)
        r = vkf_graph_set_input(g, "3", "list", "[1, 2, 3]", &msg);
    vkf_free(msg);
    vkf_graph_free(&g);
    return r;
}

/* expect: what the call returns when no allocation fails. */
static void run_expect(const char *what, load_fn fn, const void *data, size_t size, int expect)
{
    long live = vkf_alloc_live();
    long n;
    for (n = 0; n < 1000000; n++) {
        vkf_alloc_fail_at(n);
        int r = fn(data, size);
        bool fired = vkf_alloc_failed();
        vkf_alloc_fail_at(-1);
        if (vkf_alloc_live() != live) {
            fprintf(stderr, "%s: allocation %ld failed: %ld blocks leaked\n", what, n, vkf_alloc_live() - live);
            test_failures++;
            return;
        }
        if (!fired) {
            if (r != expect) {
                fprintf(stderr, "%s: returns %d without an allocation failure\n", what, r);
                test_failures++;
            }
            break;
        }
        /* On an error path, losing the message allocation may leave the
         * original error code (with no message). */
        if (r != VKF_ENOMEM && !(expect < 0 && r == expect)) {
            fprintf(stderr, "%s: allocation %ld failed but the call returned %d\n", what, n, r);
            test_failures++;
            return;
        }
    }
    printf("%s: %ld allocation points checked\n", what, n);
}

static void run(const char *what, load_fn fn, const void *data, size_t size)
{
    run_expect(what, fn, data, size, 0);
}

static void chunk(unsigned char **p, const char *type, const void *data, size_t n)
{
    unsigned char *c = *p;
    c[0] = (unsigned char)(n >> 24);
    c[1] = (unsigned char)(n >> 16);
    c[2] = (unsigned char)(n >> 8);
    c[3] = (unsigned char)n;
    memcpy(c + 4, type, 4);
    if (n)
        memcpy(c + 8, data, n);
    uLong crc = crc32(0, c + 4, (uInt)(n + 4));
    c[8 + n] = (unsigned char)(crc >> 24);
    c[9 + n] = (unsigned char)(crc >> 16);
    c[10 + n] = (unsigned char)(crc >> 8);
    c[11 + n] = (unsigned char)crc;
    *p += 12 + n;
}

/* PNG with a zTXt prompt and a compressed iTXt workflow. */
static unsigned char *make_png(const char *prompt, const char *workflow, size_t *len)
{
    size_t cap = 64 + 2 * (compressBound(strlen(prompt)) + compressBound(strlen(workflow)) + 64);
    unsigned char *png = malloc(cap), *p = png, *tmp = malloc(cap);
    memcpy(p, "\x89PNG\r\n\x1a\n", 8);
    p += 8;
    memcpy(tmp, "prompt\0\0", 8);
    uLongf zl = (uLongf)(cap - 8);
    compress(tmp + 8, &zl, (const Bytef *)prompt, (uLong)strlen(prompt));
    chunk(&p, "zTXt", tmp, 8 + zl);
    memcpy(tmp, "workflow\0\1\0\0\0", 13);
    zl = (uLongf)(cap - 13);
    compress(tmp + 13, &zl, (const Bytef *)workflow, (uLong)strlen(workflow));
    chunk(&p, "iTXt", tmp, 13 + zl);
    chunk(&p, "IEND", NULL, 0);
    free(tmp);
    *len = (size_t)(p - png);
    return png;
}

static char *read_example(const char *rel, size_t *len)
{
    char *path = vkf_test_source_path(rel);
    char *text = vkf_test_read_file(path, len);
    vkf_free(path);
    if (!text) {
        fprintf(stderr, "cannot read %s\n", rel);
        exit(1);
    }
    return text;
}

int main(void)
{
    if (vkf_test_sd_registry(&reg) < 0)
        return 1;
    size_t ui_len, api_len, png_len;
    char *ui = read_example("tests/load/data/examples/hiresfix_latent.workflow.json", &ui_len);
    char *api = read_example("tests/load/data/examples/hiresfix_latent.prompt.json", &api_len);
    run("UI workflow", load_json, ui, ui_len);
    run("API prompt", load_json, api, api_len);
    run("--set", set_inputs, api, api_len);
    char *body = vkf_asprintf("{\"prompt\": %s, \"client_id\": \"c\", \"partial_execution_targets\": [\"9\"],"
                              " \"extra_data\": {\"extra_pnginfo\": {\"workflow\": %s}}}",
                              api, ui);
    run("POST body", load_json, body, strlen(body));
    unsigned char *png = make_png(api, ui, &png_len);
    run("PNG", load_mem, png, png_len);
    /* The same PNG without its prompt: the workflow is converted. */
    unsigned char *png_ui = make_png("", ui, &png_len);
    run("PNG (workflow only)", load_mem, png_ui, png_len);
    free(png);
    free(png_ui);
    size_t webp_len;
    char *webp = read_example("tests/fuzz/corpus_meta/exif_be.webp", &webp_len);
    run("WebP", load_mem, webp, webp_len);
    vkf_free(webp);
    /* Error paths allocate too: unknown classes, parse errors. */
    size_t cn_len;
    char *cn = read_example("tests/load/data/examples/controlnet.workflow.json", &cn_len);
    run_expect("unknown classes", load_json, cn, cn_len, VKF_ENOTFOUND);
    vkf_free(cn);
    static const char bad[] = "{\"nodes\": [{\"id\": 1, \"type\": \"Foo\"}, {\"id\": 2}], \"links\": []}";
    run_expect("node without type", load_json, bad, strlen(bad), VKF_EPARSE);
    static const char malformed[] = "{\n \"1\": {\"inputs\": {\"a\": [1, 2,]}}}";
    run_expect("malformed JSON", load_json, malformed, strlen(malformed), VKF_EPARSE);
    vkf_free(body);
    vkf_free(ui);
    vkf_free(api);
    vkf_registry_destroy(&reg);
    vkf_test_object_info_release();
    if (test_failures)
        fprintf(stderr, "%d check(s) failed\n", test_failures);
    return test_failures ? 1 : 0;
}
