/* PrimitiveInt / Float / String / StringMultiline / Boolean
 * (comfy_extras/nodes_primitive.py): a widget value as an output. */
#include "nodes.h"

#define SYS_MAXSIZE INT64_MAX

static int pass_through(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    return vkf_value_copy(&out[0], &in[0]);
}

static const vkf_input_def int_inputs[] = {
    {.name = "value", .type = VKF_T_INT, .flags = VKF_IN_SEED_CONTROL,
     .idef = 0, .imin = -SYS_MAXSIZE, .imax = SYS_MAXSIZE},
};
static const vkf_output_def int_outputs[] = {{.type = VKF_T_INT}};

const vkf_node_def vkf_node_PrimitiveInt = {
    .name = "PrimitiveInt",
    .display_name = "Int",
    .category = "utils/primitive",
    .python_module = "comfy_extras.nodes_primitive",
    .inputs = int_inputs, .nb_inputs = 1,
    .outputs = int_outputs, .nb_outputs = 1,
    .execute = pass_through,
};

static const vkf_input_def float_inputs[] = {
    {.name = "value", .type = VKF_T_FLOAT, .fdef = 0.0,
     .fmin = -(double)SYS_MAXSIZE, .fmax = (double)SYS_MAXSIZE, .fstep = 0.1},
};
static const vkf_output_def float_outputs[] = {{.type = VKF_T_FLOAT}};

const vkf_node_def vkf_node_PrimitiveFloat = {
    .name = "PrimitiveFloat",
    .display_name = "Float",
    .category = "utils/primitive",
    .python_module = "comfy_extras.nodes_primitive",
    .inputs = float_inputs, .nb_inputs = 1,
    .outputs = float_outputs, .nb_outputs = 1,
    .execute = pass_through,
};

static const vkf_input_def string_inputs[] = {
    {.name = "value", .type = VKF_T_STRING, .sdef = ""},
};
static const vkf_input_def string_ml_inputs[] = {
    {.name = "value", .type = VKF_T_STRING, .flags = VKF_IN_MULTILINE, .sdef = ""},
};
static const vkf_output_def string_outputs[] = {{.type = VKF_T_STRING}};

const vkf_node_def vkf_node_PrimitiveString = {
    .name = "PrimitiveString",
    .display_name = "String",
    .category = "utils/primitive",
    .python_module = "comfy_extras.nodes_primitive",
    .inputs = string_inputs, .nb_inputs = 1,
    .outputs = string_outputs, .nb_outputs = 1,
    .execute = pass_through,
};

const vkf_node_def vkf_node_PrimitiveStringMultiline = {
    .name = "PrimitiveStringMultiline",
    .display_name = "String (Multiline)",
    .category = "utils/primitive",
    .python_module = "comfy_extras.nodes_primitive",
    .inputs = string_ml_inputs, .nb_inputs = 1,
    .outputs = string_outputs, .nb_outputs = 1,
    .execute = pass_through,
};

static const vkf_input_def bool_inputs[] = {
    {.name = "value", .type = VKF_T_BOOLEAN, .bdef = false},
};
static const vkf_output_def bool_outputs[] = {{.type = VKF_T_BOOLEAN}};

const vkf_node_def vkf_node_PrimitiveBoolean = {
    .name = "PrimitiveBoolean",
    .display_name = "Boolean",
    .category = "utils/primitive",
    .python_module = "comfy_extras.nodes_primitive",
    .inputs = bool_inputs, .nb_inputs = 1,
    .outputs = bool_outputs, .nb_outputs = 1,
    .execute = pass_through,
};
