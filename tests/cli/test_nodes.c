/* Nodes only the CLI tests use: a slow node that reports progress, so a
 * test can interrupt a run in the middle of a node. */
#include <time.h>

#include "vkflow/node.h"

static int slow_exec(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    int64_t steps = in[0].u.i;
    for (int64_t s = 1; s <= steps; s++) {
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
        int err = vkf_exec_progress(ctx, s, steps);
        if (err < 0)
            return err;
    }
    vkf_value_set_int(&out[0], steps);
    return 0;
}

static const vkf_input_def slow_inputs[] = {VKF_INPUT_INT("steps", 10, 1, 100000)};
static const vkf_output_def slow_outputs[] = {{.type = VKF_T_INT}};
static const vkf_node_def slow_def = {
    .name = "TestSlowSteps", .category = "testing",
    .inputs = slow_inputs, .nb_inputs = 1,
    .outputs = slow_outputs, .nb_outputs = 1, .execute = slow_exec,
};

const vkf_node_def *const vkf_cli_test_nodes[] = {&slow_def, NULL};
