/* API prompts, POST /prompt bodies, exact numbers, parse errors, JSON out,
 * --set. */
#include <inttypes.h>
#include <stdlib.h>

#include "test_util.h"
#include "vkflow/graph.h"

static vkf_graph *load(const char *json, vkf_load_error *err)
{
    vkf_graph *g = NULL;
    int r = vkf_load_workflow_json(json, strlen(json), NULL, &g, err);
    if (r < 0 && err->code != r)
        fprintf(stderr, "error code mismatch: %d vs %d\n", r, err->code);
    return g;
}

static const vkf_graph_input *input(const vkf_graph *g, const char *id, const char *name)
{
    return vkf_graph_node_input(vkf_graph_find(g, id), name);
}

static void test_api(void)
{
    vkf_load_error err = {0};
    vkf_graph *g = load(
        "{\"3\": {\"class_type\": \"KSampler\", \"inputs\": {\"seed\": 18446744073709551615,"
        " \"noise\": 9007199254740993, \"neg\": -9223372036854775808, \"cfg\": 7.5, \"one\": 1.0,"
        " \"huge\": 18446744073709551616, \"model\": [\"4\", 0], \"pos\": [\"6\", 1.0],"
        " \"bad\": [\"4\", 0, 1], \"badslot\": [\"4\", 0.5], \"numid\": [4, 0],"
        " \"list\": {\"__value__\": [1, 2, 18446744073709551615]}, \"obj\": {\"a\": null}, \"nul\": null,"
        " \"wrapped\": {\"__value__\": 5}, \"flag\": true, \"text\": \"h\\u00e9llo\"},"
        " \"_meta\": {\"title\": \"My sampler\"}},"
        " \"4\": {\"inputs\": {}}}",
        &err);
    CHECK(g);
    if (!g)
        return;
    CHECK_INT(g->nb_nodes, 2);
    CHECK_STR(g->nodes[0].class_type, "KSampler");
    CHECK_STR(g->nodes[0].title, "My sampler");
    CHECK(g->nodes[1].class_type == NULL);
    const vkf_graph_input *in = input(g, "3", "seed");
    CHECK(in && in->value.kind == VKF_VAL_INT && in->value.is_u64 && vkf_value_u64(&in->value) == UINT64_MAX);
    in = input(g, "3", "noise");
    CHECK(in && in->value.kind == VKF_VAL_INT && !in->value.is_u64 && in->value.u.i == 9007199254740993LL);
    in = input(g, "3", "neg");
    CHECK(in && in->value.kind == VKF_VAL_INT && in->value.u.i == INT64_MIN);
    in = input(g, "3", "cfg");
    CHECK(in && in->value.kind == VKF_VAL_FLOAT && in->value.u.f == 7.5);
    in = input(g, "3", "one");
    CHECK(in && in->value.kind == VKF_VAL_FLOAT && in->value.u.f == 1.0);
    in = input(g, "3", "huge");
    CHECK(in && in->value.kind == VKF_VAL_FLOAT);
    in = input(g, "3", "model");
    CHECK(in && in->is_link && !strcmp(in->src_id, "4") && in->src_slot == 0);
    in = input(g, "3", "pos");
    CHECK(in && in->is_link && in->src_slot == 1);
    in = input(g, "3", "bad");
    CHECK(in && in->bad_link && !in->is_link);
    in = input(g, "3", "badslot");
    CHECK(in && in->bad_link);
    in = input(g, "3", "numid");
    CHECK(in && in->bad_link);
    in = input(g, "3", "list");
    CHECK(in && in->value.kind == VKF_VAL_JSON && !strcmp(in->value.u.s, "[1,2,18446744073709551615]"));
    in = input(g, "3", "obj");
    CHECK(in && in->value.kind == VKF_VAL_JSON && !strcmp(in->value.u.s, "{\"a\":null}"));
    in = input(g, "3", "nul");
    CHECK(in && in->value.kind == VKF_VAL_JSON && !strcmp(in->value.u.s, "null"));
    in = input(g, "3", "wrapped");
    CHECK(in && in->value.kind == VKF_VAL_INT && in->value.u.i == 5);
    in = input(g, "3", "flag");
    CHECK(in && in->value.kind == VKF_VAL_BOOL && in->value.u.b);
    in = input(g, "3", "text");
    CHECK(in && in->value.kind == VKF_VAL_STRING && !strcmp(in->value.u.s, "h\xc3\xa9llo"));
    CHECK(g->prompt_json && strstr(g->prompt_json, "18446744073709551615"));
    CHECK(g->workflow_json == NULL);

    /* Round trip: serialise, reload, serialise again: identical text. */
    char *a = NULL, *b = NULL;
    CHECK(vkf_graph_to_json(g, &a, false) == 0);
    CHECK(a && strstr(a, "\"seed\":18446744073709551615"));
    CHECK(a && strstr(a, "\"noise\":9007199254740993"));
    CHECK(a && strstr(a, "\"cfg\":7.5"));
    CHECK(a && strstr(a, "\"one\":1.0"));
    CHECK(a && strstr(a, "\"list\":{\"__value__\": [1,2,18446744073709551615]}"));
    CHECK(a && strstr(a, "\"bad\":[\"4\",0,1]"));
    CHECK(a && strstr(a, "\"text\":\"h\\u00e9llo\""));
    CHECK(a && strstr(a, "\"_meta\":{\"title\":\"My sampler\"}"));
    vkf_graph *g2 = a ? load(a, &err) : NULL;
    CHECK(g2);
    if (g2) {
        CHECK(vkf_graph_to_json(g2, &b, false) == 0);
        CHECK_STR(b, a);
        char *pretty = NULL;
        CHECK(vkf_graph_to_json(g2, &pretty, true) == 0);
        vkf_graph *g3 = pretty ? load(pretty, &err) : NULL;
        CHECK(g3 && g3->nb_nodes == 2);
        vkf_graph_free(&g3);
        vkf_free(pretty);
    }
    vkf_free(a);
    vkf_free(b);
    vkf_graph_free(&g2);
    vkf_graph_free(&g);
    CHECK(g == NULL);

    /* ComfyUI unwraps __value__ once: a wrapped object holding __value__
     * stays wrapped on output (fuzzer regression). */
    g = load("{\"1\": {\"class_type\": \"X\", \"inputs\": {\"v\": {\"__value__\": {\"__value__\": [1]}}}}}", &err);
    in = g ? input(g, "1", "v") : NULL;
    CHECK(in && in->value.kind == VKF_VAL_JSON && !strcmp(in->value.u.s, "{\"__value__\":[1]}"));
    a = NULL;
    CHECK(g && vkf_graph_to_json(g, &a, false) == 0);
    CHECK(a && strstr(a, "{\"__value__\": {\"__value__\":[1]}}"));
    vkf_free(a);
    vkf_graph_free(&g);
    vkf_load_error_clear(&err);
}

static void test_body(void)
{
    vkf_load_error err = {0};
    vkf_graph *g = load("{\"prompt\": {\"1\": {\"class_type\": \"PrimitiveInt\", \"inputs\": {\"value\": 3}},"
                        " \"2\": {\"class_type\": \"PreviewAny\", \"inputs\": {\"source\": [\"1\", 0]}}},"
                        " \"client_id\": \"abc\", \"prompt_id\": \"p-1\", \"number\": 3,"
                        " \"extra_data\": {\"extra_pnginfo\": {\"workflow\": {\"nodes\": [], \"links\": []}}},"
                        " \"partial_execution_targets\": [\"2\"]}",
                        &err);
    CHECK(g);
    if (g) {
        CHECK_INT(g->nb_nodes, 2);
        CHECK_STR(g->client_id, "abc");
        CHECK_STR(g->prompt_id, "p-1");
        CHECK_INT(g->nb_partial_targets, 1);
        CHECK(g->nb_partial_targets == 1 && !strcmp(g->partial_targets[0], "2"));
        CHECK_STR(g->workflow_json, "{\"nodes\":[],\"links\":[]}");
        CHECK(g->prompt_json && !strncmp(g->prompt_json, "{\"1\":", 5));
    }
    vkf_graph_free(&g);

    /* A node called "prompt" in an API prompt is not a body. */
    g = load("{\"prompt\": {\"class_type\": \"PrimitiveInt\", \"inputs\": {\"value\": 1}}}", &err);
    CHECK(g && g->nb_nodes == 1 && !strcmp(g->nodes[0].id, "prompt"));
    vkf_graph_free(&g);

    /* Duplicate keys: the last wins (Python, JavaScript), in the place of
     * the first; keys are case-sensitive. */
    g = load("{\"1\": {\"class_type\": \"A\", \"Class_Type\": \"C\", \"class_type\": \"B\","
             " \"inputs\": {\"x\": 1, \"y\": 2, \"x\": 3}}, \"2\": {}, \"1\": {\"class_type\": \"D\"}}", &err);
    CHECK(g && g->nb_nodes == 2 && !strcmp(g->nodes[0].id, "1") && !strcmp(g->nodes[0].class_type, "D"));
    vkf_graph_free(&g);
    g = load("{\"1\": {\"class_type\": \"A\", \"Class_Type\": \"C\", \"class_type\": \"B\","
             " \"inputs\": {\"x\": 1, \"y\": 2, \"x\": 3}}}", &err);
    CHECK(g && !strcmp(g->nodes[0].class_type, "B") && g->nodes[0].nb_inputs == 2 &&
          !strcmp(g->nodes[0].inputs[0].name, "x") && g->nodes[0].inputs[0].value.u.i == 3);
    vkf_graph_free(&g);

    g = load("{\"client_id\": \"x\"}", &err);
    CHECK(!g && err.code == VKF_EPARSE && strstr(err.message, "No prompt provided"));
    vkf_load_error_clear(&err);
}

static void test_errors(void)
{
    vkf_load_error err = {0};
    vkf_graph *g = load("{\n  \"1\": {\"class_type\": \"X\",\n    \"inputs\": {\"a\": 1,,}}}", &err);
    CHECK(!g);
    CHECK_INT(err.code, VKF_EPARSE);
    CHECK_INT(err.line, 3);
    CHECK_INT(err.column, 23);
    CHECK(err.message && !strncmp(err.message, "line 3, column 23: ", 19));
    vkf_load_error_clear(&err);
    CHECK(err.message == NULL && err.code == 0);

    static const struct {
        const char *text;
        int line, column;
    } cases[] = {
        {"", 1, 1},
        {"{", 1, 2},
        {"{\"a\": tru}", 1, 7},
        {"{\"a\": 01}", 1, 8},
        {"{\"a\": \"x\n\"}", 1, 9},
        {"{}\n\n  x", 3, 3},
        {"{\"a\": 1e}", 1, 7},
        {"{\"\xc3\xa9\": [1 2]}", 1, 10},
        {"{\"a\": \"\\ud800\"}", 1, 8},
        {"[NaN]", 1, 2},
        {"{\"a\": \"\xff\"}", 1, 8},
        {"{\"a\": \"\xc0\xaf\"}", 1, 8},
        {"{\"a\": \"\xed\xa0\x80\"}", 1, 8},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        g = load(cases[i].text, &err);
        CHECK(!g);
        CHECK_INT(err.code, VKF_EPARSE);
        if (err.line != cases[i].line || err.column != cases[i].column)
            fprintf(stderr, "case %zu: %s\n", i, err.message ? err.message : "(null)");
        CHECK_INT(err.line, cases[i].line);
        CHECK_INT(err.column, cases[i].column);
        vkf_load_error_clear(&err);
    }

    g = load("[1, 2]", &err);
    CHECK(!g && err.code == VKF_EPARSE && err.line == 0);
    vkf_load_error_clear(&err);
    g = load("{\"1\": 5}", &err);
    CHECK(!g && err.code == VKF_EPARSE && strstr(err.message, "\"1\""));
    vkf_load_error_clear(&err);
    g = load("{\"1\": {\"class_type\": \"X\", \"inputs\": [1]}}", &err);
    CHECK(!g && err.code == VKF_EPARSE);
    vkf_load_error_clear(&err);
    /* A UI workflow without a registry cannot be converted. */
    g = load("{\"nodes\": [], \"links\": []}", &err);
    CHECK(!g && err.code == VKF_EINVAL);
    vkf_load_error_clear(&err);
    /* Deep nesting is refused cleanly. */
    char deep[2100];
    memset(deep, '[', 1000);
    memset(deep + 1000, ']', 1000);
    deep[2000] = 0;
    g = load(deep, &err);
    CHECK(!g && err.code == VKF_EPARSE && strstr(err.message, "nesting"));
    vkf_load_error_clear(&err);
}

static void test_set(void)
{
    vkf_load_error err = {0};
    vkf_graph *g = load("{\"1\": {\"class_type\": \"PrimitiveInt\", \"inputs\": {\"value\": 3}}}", &err);
    CHECK(g);
    if (!g)
        return;
    char *msg = NULL;
    CHECK(vkf_graph_set_input(g, "1", "value", "18446744073709551615", &msg) == 0);
    const vkf_graph_input *in = input(g, "1", "value");
    CHECK(in && in->value.kind == VKF_VAL_INT && vkf_value_u64(&in->value) == UINT64_MAX);
    CHECK_INT(g->nodes[0].nb_inputs, 1);
    CHECK(vkf_graph_set_input(g, "1", "text", "hello world", &msg) == 0);
    in = input(g, "1", "text");
    CHECK(in && in->value.kind == VKF_VAL_STRING && !strcmp(in->value.u.s, "hello world"));
    CHECK(vkf_graph_set_input(g, "1", "q", "\"quoted\"", &msg) == 0);
    in = input(g, "1", "q");
    CHECK(in && in->value.kind == VKF_VAL_STRING && !strcmp(in->value.u.s, "quoted"));
    CHECK(vkf_graph_set_input(g, "1", "f", "0.25", &msg) == 0);
    in = input(g, "1", "f");
    CHECK(in && in->value.kind == VKF_VAL_FLOAT && in->value.u.f == 0.25);
    CHECK(vkf_graph_set_input(g, "1", "b", "false", &msg) == 0);
    in = input(g, "1", "b");
    CHECK(in && in->value.kind == VKF_VAL_BOOL && !in->value.u.b);
    CHECK(vkf_graph_set_input(g, "1", "l", "[1, 2, 3]", &msg) == 0);
    in = input(g, "1", "l");
    CHECK(in && in->value.kind == VKF_VAL_JSON && !in->bad_link && !strcmp(in->value.u.s, "[1,2,3]"));
    CHECK(vkf_graph_set_input(g, "1", "link", "[\"7\", 2]", &msg) == 0);
    in = input(g, "1", "link");
    CHECK(in && in->is_link && !strcmp(in->src_id, "7") && in->src_slot == 2);
    CHECK(g->prompt_json && strstr(g->prompt_json, "\"value\":18446744073709551615"));
    CHECK(vkf_graph_set_input(g, "99", "value", "1", &msg) == VKF_ENOTFOUND);
    CHECK(msg && strstr(msg, "99"));
    vkf_free(msg);
    vkf_graph_free(&g);
}

int main(void)
{
    long live = vkf_alloc_live();
    test_api();
    test_body();
    test_errors();
    test_set();
    CHECK_INT(vkf_alloc_live(), live);
    if (test_failures)
        fprintf(stderr, "%d check(s) failed\n", test_failures);
    return test_failures ? 1 : 0;
}
