/* Declarations of the built-in node descriptors, one per file in nodes/. */
#ifndef VKF_NODES_H
#define VKF_NODES_H

#include "vkflow/node.h"

extern const vkf_node_def vkf_node_PrimitiveInt;
extern const vkf_node_def vkf_node_PrimitiveFloat;
extern const vkf_node_def vkf_node_PrimitiveString;
extern const vkf_node_def vkf_node_PrimitiveStringMultiline;
extern const vkf_node_def vkf_node_PrimitiveBoolean;
extern const vkf_node_def vkf_node_StringConcatenate;
extern const vkf_node_def vkf_node_PreviewAny;
extern const vkf_node_def vkf_node_LoadImage;
extern const vkf_node_def vkf_node_SaveImage;
extern const vkf_node_def vkf_node_PreviewImage;
extern const vkf_node_def vkf_node_KSampler;
extern const vkf_node_def vkf_node_KSamplerAdvanced;
extern const vkf_node_def vkf_node_SamplerCustom;
extern const vkf_node_def vkf_node_SamplerCustomAdvanced;
extern const vkf_node_def vkf_node_BasicGuider;
extern const vkf_node_def vkf_node_CFGGuider;
extern const vkf_node_def vkf_node_DualCFGGuider;
extern const vkf_node_def vkf_node_RandomNoise;
extern const vkf_node_def vkf_node_DisableNoise;

#endif
