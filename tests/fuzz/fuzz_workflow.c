/*
 * libFuzzer target: vkf_load_workflow_json on arbitrary bytes.  A graph
 * that loads is serialised, reloaded and serialised again: the two texts
 * must be identical (exact numbers, strings, links survive a round trip).
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "fuzz_load.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool all_typed(const vkf_graph *g)
{
    for (int i = 0; i < g->nb_nodes; i++)
        if (!g->nodes[i].class_type)
            return false;
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    vkf_registry *reg = fuzz_registry();
    vkf_graph *g = NULL, *g2 = NULL;
    vkf_load_error err = {0};
    char *a = NULL, *b = NULL, *msg = NULL;
    int r = vkf_load_workflow_json((const char *)data, size, reg, &g, &err);
    if (r < 0 && (err.code != r || g))
        abort();
    if (r == 0 && vkf_graph_to_json(g, &a, size & 1) == 0 && all_typed(g)) {
        if (vkf_load_workflow_json(a, strlen(a), reg, &g2, NULL) == 0 &&
            vkf_graph_to_json(g2, &b, size & 1) == 0 && strcmp(a, b)) {
            fprintf(stderr, "round trip differs:\n%s\n%s\n", a, b);
            abort();
        }
    }
    if (r == 0 && g->nb_nodes > 0)
        vkf_graph_set_input(g, g->nodes[0].id, "fuzz", size > 4 ? "[\"1\", 0]" : "x", &msg);
    vkf_free(msg);
    vkf_free(a);
    vkf_free(b);
    vkf_graph_free(&g);
    vkf_graph_free(&g2);
    vkf_load_error_clear(&err);
    return 0;
}
