/* StringConcatenate (comfy_extras/nodes_string.py): a + delimiter + b. */
#include <string.h>

#include "nodes.h"

static int concat(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    const char *a = in[0].u.s, *b = in[1].u.s, *delim = in[2].u.s;
    char *s = vkf_asprintf("%s%s%s", a, delim, b);
    if (!s)
        return VKF_ENOMEM;
    *out = (vkf_value){.kind = VKF_VAL_STRING, .u.s = s};
    return 0;
}

static const vkf_input_def inputs[] = {
    {.name = "string_a", .type = VKF_T_STRING, .flags = VKF_IN_MULTILINE, .sdef = ""},
    {.name = "string_b", .type = VKF_T_STRING, .flags = VKF_IN_MULTILINE, .sdef = ""},
    {.name = "delimiter", .type = VKF_T_STRING, .sdef = ""},
};
static const vkf_output_def outputs[] = {{.type = VKF_T_STRING}};

const vkf_node_def vkf_node_StringConcatenate = {
    .name = "StringConcatenate",
    .display_name = "Concatenate",
    .category = "utils/string",
    .python_module = "comfy_extras.nodes_string",
    .inputs = inputs, .nb_inputs = 3,
    .outputs = outputs, .nb_outputs = 1,
    .execute = concat,
};
