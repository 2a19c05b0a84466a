/* Shared set-up of the workflow-loader fuzz targets. */
#ifndef VKF_FUZZ_LOAD_H
#define VKF_FUZZ_LOAD_H

#include <stdlib.h>

#include "../load/object_info_registry.h"

/* Built-in nodes plus the SD definitions of the test fixture, so that UI
 * conversion has real widget layouts to work with. */
static vkf_registry *fuzz_registry(void)
{
    static vkf_registry *reg;
    if (reg)
        return reg;
    if (vkf_registry_create(&reg) < 0)
        abort();
    char *json = vkf_test_read_file(VKF_OBJECT_INFO_PATH, NULL);
    if (json)
        vkf_registry_add_object_info(reg, json);
    vkf_free(json);
    return reg;
}

#endif
