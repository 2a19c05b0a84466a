/*
 * Replays the fuzz corpora (tests/fuzz/corpus_*) through both loader entry
 * points in the normal build, so every CI run re-checks the inputs the
 * fuzzers found interesting: no crash (ASan/UBSan builds), consistent error
 * codes, nothing leaked.
 */
#include <dirent.h>
#include <stdlib.h>

#include "io/meta.h"
#include "object_info_registry.h"
#include "test_util.h"

static vkf_registry *reg;

static void feed(const char *path, const char *data, size_t len)
{
    long live = vkf_alloc_live();
    vkf_graph *g = NULL;
    vkf_load_error err = {0};
    int r = vkf_load_workflow_json(data, len, reg, &g, &err);
    CHECK(r < 0 ? !g && err.code == r : g != NULL);
    char *json = NULL;
    if (g)
        CHECK(vkf_graph_to_json(g, &json, false) == 0);
    vkf_free(json);
    vkf_graph_free(&g);
    vkf_load_error_clear(&err);

    r = vkf_load_workflow_mem(data, len, path, reg, &g, &err);
    CHECK(r < 0 ? !g && err.code == r : g != NULL);
    vkf_graph_free(&g);
    vkf_load_error_clear(&err);
    char *p = NULL, *w = NULL;
    vkf_meta_extract(data, len, &p, &w, NULL);
    vkf_free(p);
    vkf_free(w);
    if (vkf_alloc_live() != live) {
        fprintf(stderr, "%s: %ld blocks leaked\n", path, vkf_alloc_live() - live);
        test_failures++;
    }
}

static int replay(const char *rel)
{
    char *dir = vkf_test_source_path(rel);
    DIR *d = dir ? opendir(dir) : NULL;
    int count = 0;
    if (!d) {
        fprintf(stderr, "cannot open %s\n", dir ? dir : rel);
        test_failures++;
        vkf_free(dir);
        return 0;
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char *path = vkf_asprintf("%s/%s", dir, e->d_name);
        size_t len = 0;
        char *data = path ? vkf_test_read_file(path, &len) : NULL;
        if (data) {
            feed(path, data, len);
            count++;
        }
        vkf_free(data);
        vkf_free(path);
    }
    closedir(d);
    vkf_free(dir);
    return count;
}

int main(void)
{
    if (vkf_test_sd_registry(&reg) < 0)
        return 1;
    int n = replay("tests/fuzz/corpus_workflow");
    n += replay("tests/fuzz/corpus_meta");
    printf("%d corpus files replayed\n", n);
    CHECK(n > 0);
    vkf_registry_destroy(&reg);
    vkf_test_object_info_release();
    if (test_failures)
        fprintf(stderr, "%d check(s) failed\n", test_failures);
    return test_failures ? 1 : 0;
}
