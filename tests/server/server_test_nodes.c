/* Nodes only the server tests use: a slow node that reports progress (to
 * interrupt and to keep the queue busy) and a node that fails. */
#include <stdint.h>
#include <time.h>

#include "vkflow/node.h"

static int slow_exec(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    int64_t steps = in[0].u.i, ms = in[1].u.i;
    for (int64_t s = 1; s <= steps; s++) {
        struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000 * 1000};
        nanosleep(&ts, NULL);
        int err = vkf_exec_progress(ctx, s, steps);
        if (err < 0)
            return err;
    }
    vkf_value_set_int(&out[0], steps);
    return 0;
}

static const vkf_input_def slow_inputs[] = {
    VKF_INPUT_INT("steps", 10, 0, 100000),
    VKF_INPUT_INT("ms_per_step", 20, 0, 10000),
};
static const vkf_output_def slow_outputs[] = {{.type = VKF_T_INT}};
static const vkf_node_def slow_def = {
    .name = "TestSlowSteps", .category = "testing",
    .inputs = slow_inputs, .nb_inputs = 2,
    .outputs = slow_outputs, .nb_outputs = 1, .execute = slow_exec,
};

static int fail_exec(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    return vkf_exec_error(ctx, "TestFail: %s", in[0].u.s);
}

static const vkf_input_def fail_inputs[] = {VKF_INPUT_STRING("message", "failed on purpose")};
static const vkf_output_def fail_outputs[] = {{.type = VKF_T_STRING}};
static const vkf_node_def fail_def = {
    .name = "TestFail", .category = "testing",
    .inputs = fail_inputs, .nb_inputs = 1,
    .outputs = fail_outputs, .nb_outputs = 1, .execute = fail_exec,
    .flags = VKF_NODE_NOT_IDEMPOTENT,
};

/* Passes its input on after a pause: gives API clients, which attach their
 * listeners only once POST /prompt has answered, time to do so. */
static int delay_exec(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    int64_t ms = in[1].u.i;
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000 * 1000};
    nanosleep(&ts, NULL);
    return vkf_value_copy(&out[0], &in[0]);
}

static const vkf_input_def delay_inputs[] = {
    {.name = "value", .type = VKF_T_ANY},
    VKF_INPUT_INT("ms", 100, 0, 10000),
};
static const vkf_output_def delay_outputs[] = {{.type = VKF_T_ANY}};
static const vkf_node_def delay_def = {
    .name = "TestDelay", .category = "testing",
    .inputs = delay_inputs, .nb_inputs = 2,
    .outputs = delay_outputs, .nb_outputs = 1, .execute = delay_exec,
    .flags = VKF_NODE_NOT_IDEMPOTENT,
};

/* Sends `count` live previews (fixed PNG-signature bytes plus the step
 * number), as a sampler would after each step. */
static int preview_exec(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    int64_t n = in[0].u.i;
    for (int64_t s = 0; s < n; s++) {
        uint8_t png[12] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 't', 'e', 's', (uint8_t)s};
        vkf_exec_preview(ctx, png, sizeof(png), (int)s, (int)n);
    }
    (void)out;
    return 0;
}

static const vkf_input_def preview_inputs[] = {VKF_INPUT_INT("count", 2, 0, 100)};
static const vkf_node_def preview_def = {
    .name = "TestPreview", .category = "testing",
    .inputs = preview_inputs, .nb_inputs = 1, .execute = preview_exec,
    .flags = VKF_NODE_OUTPUT | VKF_NODE_NOT_IDEMPOTENT,
};

const vkf_node_def *const vkf_cli_test_nodes[] = {&slow_def, &fail_def, &delay_def, &preview_def,
                                                  NULL};
