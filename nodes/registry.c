/* Every built-in node, one line each. */
#include <stddef.h>

#include "graph/internal.h"
#include "nodes.h"

const vkf_node_def *const vkf_builtin_nodes[] = {
    &vkf_node_PrimitiveInt,
    &vkf_node_PrimitiveFloat,
    &vkf_node_PrimitiveString,
    &vkf_node_PrimitiveStringMultiline,
    &vkf_node_PrimitiveBoolean,
    &vkf_node_StringConcatenate,
    &vkf_node_PreviewAny,
    &vkf_node_LoadImage,
    &vkf_node_SaveImage,
    &vkf_node_PreviewImage,
    NULL,
};
