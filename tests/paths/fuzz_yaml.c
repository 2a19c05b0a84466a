/* libFuzzer target for the YAML-subset parser (built with -Dfuzz=true). */
#include <stddef.h>
#include <stdint.h>

#include "yaml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    vkf_yaml_node *root = NULL;
    if (vkf_yaml_parse((const char *)data, size, "fuzz.yaml", NULL, &root) == 0) {
        (void)vkf_yaml_is_true(vkf_yaml_map_get(root, "is_default"));
        vkf_yaml_free(&root);
    }
    return 0;
}
