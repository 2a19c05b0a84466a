/* Test support: node definitions built from a ComfyUI /object_info JSON. */
#ifndef VKF_TEST_OBJECT_INFO_REGISTRY_H
#define VKF_TEST_OBJECT_INFO_REGISTRY_H

#include "vkflow/graph.h"

/*
 * Adds one vkf_node_def (no execute function) per class of the
 * /object_info JSON: inputs in input_order (required, optional, hidden)
 * with their flags, defaults and ranges.  The definitions live until
 * vkf_test_object_info_release().  Returns 0 or a VKF_E* code.
 */
int vkf_registry_add_object_info(vkf_registry *reg, const char *object_info_json);
void vkf_test_object_info_release(void);

/* Reads a whole file (vkf_malloc'ed, NUL-terminated) or returns NULL. */
char *vkf_test_read_file(const char *path, size_t *len);
/* $VKF_SOURCE_ROOT/rel (or ./rel); vkf_malloc'ed. */
char *vkf_test_source_path(const char *rel);
/* A registry with only the SD nodes of tests/load/data/object_info_sd.json. */
int vkf_test_sd_registry(vkf_registry **out);

#endif
