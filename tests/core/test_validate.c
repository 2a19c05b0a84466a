/* Validation: one test per ComfyUI error class, plus vkflow's own
 * (cycles, all unknown classes in one error), and the JSON shape. */
#include <cjson/cJSON.h>

#include "../test.h"
#include "vkflow/vkflow.h"

static vkf_registry *reg;

static int validate_json(const char *json, vkf_validation *v)
{
    vkf_graph *g = NULL;
    vkf_load_error le = {0};
    int err = vkf_load_workflow_json(json, strlen(json), reg, &g, &le);
    if (err < 0) {
        fprintf(stderr, "load failed: %s\n", le.message ? le.message : "?");
        vkf_load_error_clear(&le);
        return err;
    }
    err = vkf_validate(g, reg, NULL, v);
    vkf_graph_free(&g);
    return err;
}

/* The type of the first error of node `id`, or NULL. */
static const char *first_error(const vkf_validation *v, const char *id)
{
    for (int k = 0; k < v->nb_node_errors; k++)
        if (!strcmp(v->node_errors[k].node_id, id) && v->node_errors[k].nb_errors)
            return v->node_errors[k].errors[0].type;
    return NULL;
}

static const vkf_validate_error *err_of(const vkf_validation *v, const char *id)
{
    for (int k = 0; k < v->nb_node_errors; k++)
        if (!strcmp(v->node_errors[k].node_id, id) && v->node_errors[k].nb_errors)
            return &v->node_errors[k].errors[0];
    return NULL;
}

#define PREVIEW(src) "\"9\":{\"class_type\":\"PreviewAny\",\"inputs\":{\"source\":" src "}}"

static void test_ok(void)
{
    vkf_validation v;
    CHECK(validate_json("{\"1\":{\"class_type\":\"PrimitiveInt\",\"inputs\":{\"value\":5}},"
                        PREVIEW("[\"1\",0]") "}", &v) == 0);
    CHECK(v.ok);
    CHECK(v.nb_node_errors == 0);
    CHECK(v.nb_outputs == 1);
    vkf_validation_clear(&v);
}

static void test_missing_class_type(void)
{
    vkf_validation v;
    CHECK(validate_json("{\"1\":{\"inputs\":{}}," PREVIEW("1") "}", &v) == 0);
    CHECK(!v.ok);
    CHECK_STR(v.error.type, "invalid_prompt");
    CHECK_STR(v.error.details, "Node ID '#1'");
    vkf_validation_clear(&v);
}

static void test_unknown_classes_listed_together(void)
{
    vkf_validation v;
    CHECK(validate_json("{\"1\":{\"class_type\":\"FancyA\",\"inputs\":{}},"
                        "\"2\":{\"class_type\":\"FancyB\",\"inputs\":{}},"
                        "\"3\":{\"class_type\":\"FancyA\",\"inputs\":{}}," PREVIEW("1") "}", &v) == 0);
    CHECK(!v.ok);
    CHECK_STR(v.error.type, "invalid_prompt");
    CHECK(strstr(v.error.message, "FancyA") && strstr(v.error.message, "FancyB"));
    CHECK(v.nb_node_errors == 0);
    vkf_validation_clear(&v);
}

static void test_no_outputs(void)
{
    vkf_validation v;
    CHECK(validate_json("{\"1\":{\"class_type\":\"PrimitiveInt\",\"inputs\":{\"value\":1}}}", &v) == 0);
    CHECK(!v.ok);
    CHECK_STR(v.error.type, "prompt_no_outputs");
    vkf_validation_clear(&v);
}

static void test_required_missing(void)
{
    vkf_validation v;
    CHECK(validate_json("{\"1\":{\"class_type\":\"PrimitiveInt\",\"inputs\":{}}," PREVIEW("[\"1\",0]") "}",
                        &v) == 0);
    CHECK(!v.ok);
    CHECK_STR(v.error.type, "prompt_outputs_failed_validation");
    CHECK_STR(first_error(&v, "1"), "required_input_missing");
    const vkf_validate_error *e = err_of(&v, "1");
    CHECK(e && !strcmp(e->details, "value") && !strcmp(e->input_name, "value"));
    /* The downstream output is not listed: only the cause is. */
    CHECK(first_error(&v, "9") == NULL);
    CHECK(v.nb_node_errors == 1 && v.node_errors[0].nb_dependent == 1 &&
          !strcmp(v.node_errors[0].dependent_outputs[0], "9"));
    vkf_validation_clear(&v);
}

static void test_bad_link(void)
{
    vkf_validation v;
    CHECK(validate_json("{\"1\":{\"class_type\":\"PrimitiveInt\",\"inputs\":{\"value\":1}},"
                        PREVIEW("[\"1\",0,3]") "}", &v) == 0);
    CHECK(!v.ok);
    CHECK_STR(first_error(&v, "9"), "bad_linked_input");
    vkf_validation_clear(&v);
}

static void test_type_mismatch(void)
{
    vkf_validation v;
    CHECK(validate_json("{\"1\":{\"class_type\":\"PrimitiveInt\",\"inputs\":{\"value\":1}},"
                        "\"2\":{\"class_type\":\"StringConcatenate\",\"inputs\":{\"string_a\":[\"1\",0],"
                        "\"string_b\":\"x\",\"delimiter\":\"\"}}," PREVIEW("[\"2\",0]") "}", &v) == 0);
    CHECK(!v.ok);
    CHECK_STR(first_error(&v, "2"), "return_type_mismatch");
    const vkf_validate_error *e = err_of(&v, "2");
    CHECK(e && !strcmp(e->details, "string_a, received_type(INT) mismatch input_type(STRING)"));
    CHECK(e && strstr(e->extra_json, "\"received_type\":\"INT\""));
    vkf_validation_clear(&v);
}

static void test_link_to_missing_node_and_slot(void)
{
    vkf_validation v;
    CHECK(validate_json("{" PREVIEW("[\"42\",0]") "}", &v) == 0);
    CHECK(!v.ok);
    CHECK_STR(first_error(&v, "9"), "exception_during_validation");
    vkf_validation_clear(&v);
    CHECK(validate_json("{\"1\":{\"class_type\":\"PrimitiveInt\",\"inputs\":{\"value\":1}},"
                        PREVIEW("[\"1\",3]") "}", &v) == 0);
    CHECK(!v.ok);
    CHECK_STR(first_error(&v, "9"), "exception_during_validation");
    vkf_validation_clear(&v);
}

static void test_invalid_input_type(void)
{
    vkf_validation v;
    CHECK(validate_json("{\"1\":{\"class_type\":\"PrimitiveInt\",\"inputs\":{\"value\":\"abc\"}},"
                        PREVIEW("[\"1\",0]") "}", &v) == 0);
    CHECK_STR(first_error(&v, "1"), "invalid_input_type");
    vkf_validation_clear(&v);
    /* 2.5 is not silently truncated to an INT. */
    CHECK(validate_json("{\"1\":{\"class_type\":\"PrimitiveInt\",\"inputs\":{\"value\":2.5}},"
                        PREVIEW("[\"1\",0]") "}", &v) == 0);
    CHECK_STR(first_error(&v, "1"), "invalid_input_type");
    vkf_validation_clear(&v);
    /* 3.0 and "7" convert, as in ComfyUI. */
    CHECK(validate_json("{\"1\":{\"class_type\":\"PrimitiveInt\",\"inputs\":{\"value\":3.0}},"
                        "\"2\":{\"class_type\":\"PrimitiveInt\",\"inputs\":{\"value\":\"7\"}},"
                        PREVIEW("[\"1\",0]") ",\"8\":{\"class_type\":\"PreviewAny\",\"inputs\":{\"source\":[\"2\",0]}}}",
                        &v) == 0);
    CHECK(v.ok && v.nb_node_errors == 0);
    vkf_validation_clear(&v);
}

static void test_range(void)
{
    vkf_validation v;
    /* PrimitiveInt's max is sys.maxsize: 2^63 is one above. */
    CHECK(validate_json("{\"1\":{\"class_type\":\"PrimitiveInt\",\"inputs\":{\"value\":9223372036854775808}},"
                        PREVIEW("[\"1\",0]") "}", &v) == 0);
    CHECK_STR(first_error(&v, "1"), "value_bigger_than_max");
    vkf_validation_clear(&v);
    CHECK(validate_json("{\"1\":{\"class_type\":\"PrimitiveInt\",\"inputs\":{\"value\":-9223372036854775807}},"
                        PREVIEW("[\"1\",0]") "}", &v) == 0);
    CHECK(v.ok);
    vkf_validation_clear(&v);
    CHECK(validate_json("{\"1\":{\"class_type\":\"PrimitiveFloat\",\"inputs\":{\"value\":-1e300}},"
                        PREVIEW("[\"1\",0]") "}", &v) == 0);
    CHECK_STR(first_error(&v, "1"), "value_smaller_than_min");
    const vkf_validate_error *e = err_of(&v, "1");
    CHECK(e && strstr(e->message, "smaller than min of"));
    vkf_validation_clear(&v);
}

static void test_socket_given_constant(void)
{
    vkf_validation v;
    CHECK(validate_json("{\"1\":{\"class_type\":\"StringConcatenate\",\"inputs\":{\"string_a\":\"a\","
                        "\"string_b\":\"b\",\"delimiter\":[\"x\"]}}," PREVIEW("[\"1\",0]") "}", &v) == 0);
    CHECK(!v.ok);
    vkf_validation_clear(&v);
}

static void test_cycle(void)
{
    vkf_validation v;
    CHECK(validate_json("{\"1\":{\"class_type\":\"StringConcatenate\",\"inputs\":{\"string_a\":[\"2\",0],"
                        "\"string_b\":\"b\",\"delimiter\":\"\"}},"
                        "\"2\":{\"class_type\":\"StringConcatenate\",\"inputs\":{\"string_a\":[\"1\",0],"
                        "\"string_b\":\"b\",\"delimiter\":\"\"}}," PREVIEW("[\"1\",0]") "}", &v) == 0);
    CHECK(!v.ok);
    int found = 0;
    for (int k = 0; k < v.nb_node_errors; k++)
        for (int e = 0; e < v.node_errors[k].nb_errors; e++)
            if (!strcmp(v.node_errors[k].errors[e].type, "dependency_cycle")) {
                found++;
                CHECK(strstr(v.node_errors[k].errors[e].details, "1 -> 2 -> 1") ||
                      strstr(v.node_errors[k].errors[e].details, "2 -> 1 -> 2"));
            }
    CHECK(found == 1);
    vkf_validation_clear(&v);
}

static void test_partial_outputs_and_json_shape(void)
{
    vkf_validation v;
    /* One good output, one bad: validation passes with node_errors. */
    CHECK(validate_json("{\"1\":{\"class_type\":\"PrimitiveInt\",\"inputs\":{\"value\":1}},"
                        "\"2\":{\"class_type\":\"PrimitiveInt\",\"inputs\":{}},"
                        PREVIEW("[\"1\",0]") ",\"8\":{\"class_type\":\"PreviewAny\",\"inputs\":{\"source\":[\"2\",0]}}}",
                        &v) == 0);
    CHECK(v.ok);
    CHECK(v.nb_outputs == 1 && !strcmp(v.outputs[0], "9"));
    char *json = NULL;
    CHECK(vkf_validation_to_json(&v, &json, false) == 0);
    cJSON *root = json ? cJSON_Parse(json) : NULL;
    cJSON *ne = cJSON_GetObjectItem(root, "node_errors");
    cJSON *n2 = cJSON_GetObjectItem(ne, "2");
    CHECK(n2 && cJSON_IsArray(cJSON_GetObjectItem(n2, "errors")));
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(n2, "class_type")), "PrimitiveInt");
    cJSON *e0 = cJSON_GetArrayItem(cJSON_GetObjectItem(n2, "errors"), 0);
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(e0, "type")), "required_input_missing");
    CHECK(cJSON_IsObject(cJSON_GetObjectItem(e0, "extra_info")));
    cJSON *dep = cJSON_GetObjectItem(n2, "dependent_outputs");
    CHECK(cJSON_GetArraySize(dep) == 1 && !strcmp(cJSON_GetArrayItem(dep, 0)->valuestring, "8"));
    cJSON_Delete(root);
    vkf_free(json);
    vkf_validation_clear(&v);
}

static void test_types_match(void)
{
    CHECK(vkf_types_match("INT", "INT"));
    CHECK(vkf_types_match("INT", "FLOAT,INT"));
    CHECK(vkf_types_match("IMAGE", "*"));
    CHECK(vkf_types_match("*", "LATENT"));
    CHECK(!vkf_types_match("INT", "FLOAT"));
    CHECK(!vkf_types_match("IMAGE", "IMAGES"));
}

/* The fail-Nth-allocation sweep over validation, including the error JSON. */
static void test_alloc_failures(void)
{
    const char *json = "{\"1\":{\"class_type\":\"PrimitiveInt\",\"inputs\":{\"value\":\"x\"}},"
                       "\"2\":{\"class_type\":\"PrimitiveInt\",\"inputs\":{}},"
                       PREVIEW("[\"1\",0]") ",\"8\":{\"class_type\":\"PreviewAny\",\"inputs\":{\"source\":[\"2\",0]}}}";
    vkf_graph *g = NULL;
    vkf_load_error le = {0};
    CHECK(vkf_load_workflow_json(json, strlen(json), reg, &g, &le) == 0);
    int clean = 0;
    for (long n = 0; n < 100000; n++) {
        long live = vkf_alloc_live();
        vkf_validation v;
        vkf_alloc_fail_at(n);
        int err = vkf_validate(g, reg, NULL, &v);
        char *out = NULL;
        if (err == 0)
            err = vkf_validation_to_json(&v, &out, false);
        bool fired = vkf_alloc_failed();
        vkf_alloc_fail_at(-1);
        vkf_free(out);
        vkf_validation_clear(&v);
        if (vkf_alloc_live() != live) {
            fprintf(stderr, "leak after failing allocation %ld\n", n);
            CHECK(0);
            break;
        }
        if (fired)
            CHECK(err == VKF_ENOMEM || err == 0);
        if (!fired) {
            clean = 1;
            break;
        }
    }
    CHECK(clean);
    vkf_graph_free(&g);
}

int main(void)
{
    if (vkf_registry_create(&reg) < 0)
        return 1;
    test_ok();
    test_missing_class_type();
    test_unknown_classes_listed_together();
    test_no_outputs();
    test_required_missing();
    test_bad_link();
    test_type_mismatch();
    test_link_to_missing_node_and_slot();
    test_invalid_input_type();
    test_range();
    test_socket_given_constant();
    test_cycle();
    test_partial_outputs_and_json_shape();
    test_types_match();
    test_alloc_failures();
    vkf_registry_destroy(&reg);
    return test_result("test_validate");
}
