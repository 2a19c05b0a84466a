/* libFuzzer target: vkf_load_workflow_mem (PNG, WebP, JSON) on arbitrary
 * bytes. */
#include <stdint.h>

#include "fuzz_load.h"
#include "io/meta.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    vkf_registry *reg = fuzz_registry();
    vkf_graph *g = NULL;
    vkf_load_error err = {0};
    char *prompt = NULL, *workflow = NULL;
    int r = vkf_load_workflow_mem(data, size, (size & 1) ? "fuzz.png" : NULL, reg, &g, &err);
    if (r < 0 && (err.code != r || g))
        abort();
    vkf_graph_free(&g);
    vkf_load_error_clear(&err);
    if (vkf_meta_extract(data, size, &prompt, &workflow, NULL) == 0) {
        vkf_free(prompt);
        vkf_free(workflow);
    }
    return 0;
}
