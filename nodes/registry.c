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
    &vkf_node_KSampler,
    &vkf_node_KSamplerAdvanced,
    &vkf_node_SamplerCustom,
    &vkf_node_SamplerCustomAdvanced,
    &vkf_node_BasicGuider,
    &vkf_node_CFGGuider,
    &vkf_node_DualCFGGuider,
    &vkf_node_RandomNoise,
    &vkf_node_DisableNoise,
    NULL,
};
