/* The host binding tables of the ops, for the SPIR-V reflection test. */
#include "gpu/ops/op_util.h"

extern const vkf_shader_layout vkf_latent_layouts[];
extern const vkf_shader_layout vkf_image_layouts[];

const vkf_shader_layout *const vkf_op_layouts[] = {
    vkf_binary_layouts,
    vkf_unary_layouts,
    vkf_matmul_layouts,
    vkf_softmax_layouts,
    vkf_norm_layouts,
    vkf_conv_layouts,
    vkf_pool_layouts,
    vkf_resample_layouts,
    vkf_attention_layouts,
    vkf_rope_layouts,
    vkf_embed_layouts,
    vkf_geglu_layouts,
    vkf_latent_layouts,
    vkf_image_layouts,
    NULL,
};
