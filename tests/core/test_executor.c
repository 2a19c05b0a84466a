/* Executor: order, caching between runs, list semantics, events,
 * interruption at a step boundary, node errors, allocation failures. */
#include <cjson/cJSON.h>

#include "../test.h"
#include "vkflow/vkflow.h"

/* ---- test nodes ------------------------------------------------------------ */

static int slow_steps_done;

static int slow_exec(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    int64_t steps = in[0].u.i;
    for (int64_t s = 1; s <= steps; s++) {
        int err = vkf_exec_progress(ctx, s, steps);
        slow_steps_done = (int)s;
        if (err < 0)
            return err;
    }
    vkf_value_set_int(&out[0], steps);
    return 0;
}

static const vkf_input_def slow_inputs[] = {VKF_INPUT_INT("steps", 5, 1, 1000)};
static const vkf_output_def int_out[] = {{.type = "INT"}};
static const vkf_node_def slow_def = {
    .name = "TestSlow", .inputs = slow_inputs, .nb_inputs = 1,
    .outputs = int_out, .nb_outputs = 1, .execute = slow_exec,
};

static int fail_exec(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    return vkf_exec_error(ctx, "deliberate failure with %s", in[0].u.s);
}

static const vkf_input_def fail_inputs[] = {VKF_INPUT_STRING("why", "")};
static const vkf_node_def fail_def = {
    .name = "TestFail", .inputs = fail_inputs, .nb_inputs = 1,
    .outputs = int_out, .nb_outputs = 1, .execute = fail_exec,
};

/* Splits "a,b,c" into a list output (OUTPUT_IS_LIST). */
static int split_exec(vkf_exec_ctx *ctx, const vkf_list *in, vkf_list *out)
{
    const char *s = in[0].v[0].u.s;
    while (*s) {
        size_t n = strcspn(s, ",");
        char *part = vkf_strndup(s, n);
        vkf_value v = {.kind = VKF_VAL_STRING, .u.s = part};
        int err = part ? vkf_list_append(&out[0], &v) : VKF_ENOMEM;
        vkf_free(part);
        if (err < 0)
            return err;
        s += n + (s[n] == ',');
    }
    return 0;
}

static const vkf_input_def split_inputs[] = {VKF_INPUT_STRING("text", "")};
static const vkf_output_def split_out[] = {{.type = "STRING", .is_list = true}};
static const vkf_node_def split_def = {
    .name = "TestSplit", .inputs = split_inputs, .nb_inputs = 1,
    .outputs = split_out, .nb_outputs = 1, .flags = VKF_NODE_INPUT_IS_LIST,
    .execute_list = split_exec,
};

/* ---- harness --------------------------------------------------------------- */

typedef struct record {
    char events[4096];
    char printed[4096];
    int progress_interrupt_at;   /* interrupt when progress reaches this */
    vkf_executor *ex;
} record;

static void on_event(void *priv, const vkf_event *ev)
{
    record *r = priv;
    size_t len = strlen(r->events);
    snprintf(r->events + len, sizeof(r->events) - len, "%s%s%s%s", len ? " " : "", ev->type,
             ev->node_id ? ":" : "", ev->node_id ? ev->node_id : "");
    /* Every payload is valid JSON carrying the prompt id. */
    cJSON *d = cJSON_Parse(ev->data_json);
    CHECK(d != NULL || vkf_alloc_failed());   /* the injected failure may hit us */
    CHECK(!d || cJSON_GetObjectItem(d, "prompt_id") != NULL);
    cJSON_Delete(d);
    if (!strcmp(ev->type, "progress") && r->progress_interrupt_at &&
        ev->value == r->progress_interrupt_at)
        vkf_executor_interrupt(r->ex);
}

static void on_print(void *priv, const char *node, const char *text)
{
    record *r = priv;
    size_t len = strlen(r->printed);
    snprintf(r->printed + len, sizeof(r->printed) - len, "%s%s=%s", len ? "|" : "", node, text);
}

static vkf_registry *reg;

static vkf_graph *load(const char *json)
{
    vkf_graph *g = NULL;
    vkf_load_error le = {0};
    if (vkf_load_workflow_json(json, strlen(json), reg, &g, &le) < 0)
        fprintf(stderr, "load: %s\n", le.message ? le.message : "?");
    vkf_load_error_clear(&le);
    return g;
}

static vkf_executor *make_executor(record *r)
{
    vkf_executor_params p = {.registry = reg, .on_event = on_event, .event_priv = r,
                             .print = on_print, .print_priv = r};
    vkf_executor *ex = NULL;
    CHECK(vkf_executor_create(&ex, &p) == 0);
    r->ex = ex;
    return ex;
}

static int run(vkf_executor *ex, const char *json, char **run_error)
{
    vkf_graph *g = load(json);
    if (!g)
        return -100;
    int err = vkf_executor_run(ex, g, NULL, run_error);
    vkf_graph_free(&g);
    return err;
}

#define G1(v) "{\"1\":{\"class_type\":\"PrimitiveInt\",\"inputs\":{\"value\":" v "}}," \
              "\"2\":{\"class_type\":\"PrimitiveString\",\"inputs\":{\"value\":\"s\"}}," \
              "\"9\":{\"class_type\":\"PreviewAny\",\"inputs\":{\"source\":[\"1\",0]}}}"

static void test_run_and_events(void)
{
    record r = {0};
    vkf_executor *ex = make_executor(&r);
    CHECK(run(ex, G1("42"), NULL) == 0);
    /* Node 2 is not needed by any output and does not run. */
    CHECK_STR(r.events, "execution_start execution_cached executing:1 executing:9 "
                        "executed:9 execution_success executing");
    CHECK_STR(r.printed, "9=42");
    int nexec, ncached;
    vkf_executor_last_stats(ex, &nexec, &ncached);
    CHECK(nexec == 2 && ncached == 0);

    /* Same prompt again: everything cached, the output re-sends its UI. */
    r.events[0] = r.printed[0] = 0;
    CHECK(run(ex, G1("42"), NULL) == 0);
    vkf_executor_last_stats(ex, &nexec, &ncached);
    CHECK(nexec == 0 && ncached == 2);
    CHECK_STR(r.events, "execution_start execution_cached executed:9 execution_success executing");
    CHECK_STR(r.printed, "");

    /* A changed constant re-runs it and what depends on it. */
    r.events[0] = r.printed[0] = 0;
    CHECK(run(ex, G1("43"), NULL) == 0);
    vkf_executor_last_stats(ex, &nexec, &ncached);
    CHECK(nexec == 2 && ncached == 0);
    CHECK_STR(r.printed, "9=43");
    vkf_executor_destroy(&ex);
}

static void test_partial_cache_reuse(void)
{
    /* Changing only the downstream node re-runs only it. */
    record r = {0};
    vkf_executor *ex = make_executor(&r);
    const char *a = "{\"1\":{\"class_type\":\"PrimitiveString\",\"inputs\":{\"value\":\"x\"}},"
                    "\"2\":{\"class_type\":\"StringConcatenate\",\"inputs\":{\"string_a\":[\"1\",0],"
                    "\"string_b\":\"y\",\"delimiter\":\"-\"}},"
                    "\"9\":{\"class_type\":\"PreviewAny\",\"inputs\":{\"source\":[\"2\",0]}}}";
    const char *b = "{\"1\":{\"class_type\":\"PrimitiveString\",\"inputs\":{\"value\":\"x\"}},"
                    "\"2\":{\"class_type\":\"StringConcatenate\",\"inputs\":{\"string_a\":[\"1\",0],"
                    "\"string_b\":\"z\",\"delimiter\":\"-\"}},"
                    "\"9\":{\"class_type\":\"PreviewAny\",\"inputs\":{\"source\":[\"2\",0]}}}";
    CHECK(run(ex, a, NULL) == 0);
    CHECK_STR(r.printed, "9=x-y");
    r.printed[0] = 0;
    CHECK(run(ex, b, NULL) == 0);
    int nexec, ncached;
    vkf_executor_last_stats(ex, &nexec, &ncached);
    CHECK(nexec == 2 && ncached == 1);
    CHECK_STR(r.printed, "9=x-z");
    vkf_executor_destroy(&ex);
}

static void test_identical_branches_share(void)
{
    record r = {0};
    vkf_executor *ex = make_executor(&r);
    const char *g = "{\"1\":{\"class_type\":\"TestSlow\",\"inputs\":{\"steps\":3}},"
                    "\"2\":{\"class_type\":\"TestSlow\",\"inputs\":{\"steps\":3}},"
                    "\"8\":{\"class_type\":\"PreviewAny\",\"inputs\":{\"source\":[\"1\",0]}},"
                    "\"9\":{\"class_type\":\"PreviewAny\",\"inputs\":{\"source\":[\"2\",0]}}}";
    CHECK(run(ex, g, NULL) == 0);
    int nexec, ncached;
    vkf_executor_last_stats(ex, &nexec, &ncached);
    CHECK(nexec == 2);   /* one TestSlow and one PreviewAny: ids do not matter */
    vkf_executor_destroy(&ex);
}

static void test_lists(void)
{
    record r = {0};
    vkf_executor *ex = make_executor(&r);
    const char *g = "{\"1\":{\"class_type\":\"TestSplit\",\"inputs\":{\"text\":\"a,b,c\"}},"
                    "\"2\":{\"class_type\":\"StringConcatenate\",\"inputs\":{\"string_a\":[\"1\",0],"
                    "\"string_b\":\"!\",\"delimiter\":\"\"}},"
                    "\"9\":{\"class_type\":\"PreviewAny\",\"inputs\":{\"source\":[\"2\",0]}}}";
    CHECK(run(ex, g, NULL) == 0);
    CHECK_STR(r.printed, "9=a!|9=b!|9=c!");
    vkf_executor_destroy(&ex);
}

static void test_interrupt(void)
{
    record r = {.progress_interrupt_at = 3};
    vkf_executor *ex = make_executor(&r);
    const char *g = "{\"1\":{\"class_type\":\"TestSlow\",\"inputs\":{\"steps\":10}},"
                    "\"9\":{\"class_type\":\"PreviewAny\",\"inputs\":{\"source\":[\"1\",0]}}}";
    slow_steps_done = 0;
    CHECK(run(ex, g, NULL) == VKF_EINTERRUPTED);
    CHECK(slow_steps_done == 3);   /* stopped at the next step boundary */
    CHECK(strstr(r.events, "execution_interrupted:1") != NULL);
    CHECK(strstr(r.events, "execution_success") == NULL);
    CHECK(strstr(r.events, "executed:9") == NULL);
    /* The next run starts afresh and nothing partial was cached. */
    r.progress_interrupt_at = 0;
    r.events[0] = 0;
    CHECK(run(ex, g, NULL) == 0);
    CHECK(slow_steps_done == 10);
    CHECK_STR(r.printed, "9=10");
    vkf_executor_destroy(&ex);
}

static void test_node_error(void)
{
    record r = {0};
    vkf_executor *ex = make_executor(&r);
    const char *g = "{\"5\":{\"class_type\":\"TestFail\",\"inputs\":{\"why\":\"reasons\"}},"
                    "\"9\":{\"class_type\":\"PreviewAny\",\"inputs\":{\"source\":[\"5\",0]}}}";
    char *msg = NULL;
    CHECK(run(ex, g, &msg) == VKF_ERUN);
    CHECK_STR(msg, "node 5 (TestFail): deliberate failure with reasons");
    CHECK(strstr(r.events, "execution_error:5") != NULL);
    vkf_free(msg);
    vkf_executor_destroy(&ex);
}

static void test_validation_error(void)
{
    record r = {0};
    vkf_executor *ex = make_executor(&r);
    vkf_graph *g = load("{\"9\":{\"class_type\":\"PreviewAny\",\"inputs\":{}}}");
    vkf_validation v;
    CHECK(vkf_executor_run(ex, g, &v, NULL) == VKF_EVALIDATION);
    CHECK(!v.ok && v.nb_node_errors == 1);
    CHECK_STR(r.events, "");   /* nothing started */
    vkf_validation_clear(&v);
    vkf_graph_free(&g);
    vkf_executor_destroy(&ex);
}

static void test_alloc_failures(void)
{
    const char *json = "{\"1\":{\"class_type\":\"TestSplit\",\"inputs\":{\"text\":\"a,b\"}},"
                       "\"2\":{\"class_type\":\"StringConcatenate\",\"inputs\":{\"string_a\":[\"1\",0],"
                       "\"string_b\":\"!\",\"delimiter\":\"\"}},"
                       "\"9\":{\"class_type\":\"PreviewAny\",\"inputs\":{\"source\":[\"2\",0]}}}";
    vkf_graph *g = load(json);
    bool finished = false;
    for (long n = 0; n < 200000 && g; n++) {
        record r = {0};
        long live = vkf_alloc_live();
        vkf_executor *ex = make_executor(&r);
        vkf_alloc_fail_at(n);
        int err = vkf_executor_run(ex, g, NULL, NULL);
        bool fired = vkf_alloc_failed();
        vkf_alloc_fail_at(-1);
        vkf_executor_destroy(&ex);
        CHECK(err == 0 || err == VKF_ENOMEM || err == VKF_ERUN);
        if (vkf_alloc_live() != live) {
            fprintf(stderr, "leak after failing allocation %ld (err %d)\n", n, err);
            CHECK(0);
            break;
        }
        if (!fired) {
            CHECK(err == 0);
            finished = true;
            break;
        }
    }
    CHECK(finished);
    vkf_graph_free(&g);
}

int main(void)
{
    if (vkf_registry_create(&reg) < 0 || vkf_registry_add(reg, &slow_def) < 0 ||
        vkf_registry_add(reg, &fail_def) < 0 || vkf_registry_add(reg, &split_def) < 0)
        return 1;
    CHECK(vkf_registry_add(reg, &slow_def) == VKF_EINVAL);   /* duplicates refused */
    test_run_and_events();
    test_partial_cache_reuse();
    test_identical_branches_share();
    test_lists();
    test_interrupt();
    test_node_error();
    test_validation_error();
    test_alloc_failures();
    vkf_registry_destroy(&reg);
    return test_result("test_executor");
}
