/* PreviewAny ("Preview as Text", comfy_extras/nodes_preview_any.py): shows
 * any value as text in the UI result and prints it for the CLI. */
#include "nodes.h"

static int preview(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    char *text = vkf_value_to_text(&in[0]);
    if (!text)
        return VKF_ENOMEM;
    int err = vkf_exec_ui_text(ctx, "text", text);
    if (err >= 0)
        vkf_exec_print(ctx, text);
    if (err < 0) {
        vkf_free(text);
        return err;
    }
    *out = (vkf_value){.kind = VKF_VAL_STRING, .u.s = text};
    return 0;
}

static const vkf_input_def inputs[] = {
    {.name = "source", .type = VKF_T_ANY},
};
static const vkf_output_def outputs[] = {{.type = VKF_T_STRING}};

const vkf_node_def vkf_node_PreviewAny = {
    .name = "PreviewAny",
    .display_name = "Preview as Text",
    .category = "utilities",
    .python_module = "comfy_extras.nodes_preview_any",
    .inputs = inputs, .nb_inputs = 1,
    .outputs = outputs, .nb_outputs = 1,
    .flags = VKF_NODE_OUTPUT,
    .execute = preview,
};
