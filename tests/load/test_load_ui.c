/* UI workflow -> API prompt conversion rules, and the ComfyUI_examples
 * workflows converted against the prompts embedded beside them. */
#include <math.h>
#include <stdlib.h>

#include "object_info_registry.h"
#include "test_util.h"
#include "vkflow/graph.h"

static vkf_registry *reg;

/* A node with an INT output, independent of the built-in nodes. */
static const vkf_input_def int_source_inputs[] = {VKF_INPUT_INT("value", 0, -100, 100)};
static const vkf_output_def int_source_outputs[] = {{.type = VKF_T_INT}};
static const vkf_node_def int_source = {
    .name = "TestIntSource",
    .inputs = int_source_inputs,
    .nb_inputs = 1,
    .outputs = int_source_outputs,
    .nb_outputs = 1,
};

/* Test JSON is written with ' for " to stay readable. */
static char *q(const char *s)
{
    char *t = vkf_strdup(s);
    for (char *p = t; p && *p; p++)
        if (*p == '\'')
            *p = '"';
    return t;
}

static int convert(const char *ui, vkf_graph **g, vkf_load_error *err)
{
    char *json = q(ui);
    int r = vkf_load_workflow_json(json, strlen(json), reg, g, err);
    if (r < 0 && err->message && err->code != VKF_ENOTFOUND && err->code != VKF_EUNSUPPORTED)
        fprintf(stderr, "load: %s\n", err->message);
    vkf_free(json);
    return r;
}

static const vkf_graph_input *in_of(const vkf_graph *g, const char *id, const char *name)
{
    return vkf_graph_node_input(vkf_graph_find(g, id), name);
}

static bool is_link(const vkf_graph *g, const char *id, const char *name, const char *src, int slot)
{
    const vkf_graph_input *in = in_of(g, id, name);
    return in && in->is_link && !strcmp(in->src_id, src) && in->src_slot == slot;
}

static bool is_int(const vkf_graph *g, const char *id, const char *name, int64_t v)
{
    const vkf_graph_input *in = in_of(g, id, name);
    return in && !in->is_link && in->value.kind == VKF_VAL_INT && in->value.u.i == v;
}

static bool is_num(const vkf_graph *g, const char *id, const char *name, double v)
{
    const vkf_graph_input *in = in_of(g, id, name);
    return in && !in->is_link && (in->value.kind == VKF_VAL_INT || in->value.kind == VKF_VAL_FLOAT) &&
           vkf_value_number(&in->value) == v;
}

static bool is_str(const vkf_graph *g, const char *id, const char *name, const char *v)
{
    const vkf_graph_input *in = in_of(g, id, name);
    return in && !in->is_link && in->value.kind == VKF_VAL_STRING && !strcmp(in->value.u.s, v);
}

/* Checkpoint 1 -> KSampler 2 (with all links) -> VAEDecode 3 -> SaveImage 4. */
static void test_widgets(void)
{
    vkf_load_error err = {0};
    vkf_graph *g = NULL;
    int r = convert(
        "{'last_node_id': 9, 'last_link_id': 9, 'version': 0.4, 'groups': [{'title': 'g', 'bounding': [0,0,1,1]}],"
        " 'nodes': ["
        "  {'id': 1, 'type': 'CheckpointLoaderSimple', 'mode': 0, 'size': {'0': 315, '1': 98},"
        "   'outputs': [{'name': 'MODEL', 'type': 'MODEL', 'links': [1]}, {'name': 'CLIP', 'type': 'CLIP', 'links': [2]},"
        "               {'name': 'VAE', 'type': 'VAE', 'links': [5]}],"
        "   'widgets_values': ['sd15.safetensors']},"
        "  {'id': 2, 'type': 'KSampler', 'mode': 0, 'title': 'First pass',"
        "   'inputs': [{'name': 'model', 'type': 'MODEL', 'link': 1}, {'name': 'positive', 'type': 'CONDITIONING', 'link': 3},"
        "              {'name': 'negative', 'type': 'CONDITIONING', 'link': 4}, {'name': 'latent_image', 'type': 'LATENT', 'link': 6},"
        "              {'name': 'seed', 'type': 'INT', 'widget': {'name': 'seed'}, 'link': null}],"
        "   'widgets_values': [18446744073709551615, 'fixed', 25, 6.5, 'dpmpp_2m', 'karras', 0.75]},"
        "  {'id': 5, 'type': 'CLIPTextEncode', 'inputs': [{'name': 'clip', 'type': 'CLIP', 'link': 2}],"
        "   'outputs': [{'name': 'CONDITIONING', 'type': 'CONDITIONING', 'links': [3, 4]}], 'widgets_values': ['a cat']},"
        "  {'id': 6, 'type': 'EmptyLatentImage', 'widgets_values': [640]},"
        "  {'id': 7, 'type': 'KSamplerAdvanced', 'widgets_values': ['disable', 9007199254740993, 'randomize', 30, 7, 'euler', 'normal', 2, 28, 'enable']},"
        "  {'id': 8, 'type': 'LoadImage', 'widgets_values': ['cat.png', 'image']},"
        "  {'id': 9, 'type': 'KSampler', 'widgets_values': [5, 'increment', 10]},"
        "  {'id': 10, 'type': 'Note', 'widgets_values': ['just a note']},"
        "  {'id': 11, 'type': 'MarkdownNote', 'widgets_values': ['# note']},"
        "  {'id': 12, 'type': 'LatentUpscale', 'widgets_values': {'upscale_method': 'bislerp', 'width': 1024}}"
        " ],"
        " 'links': [[1, 1, 0, 2, 0, 'MODEL'], [2, 1, 1, 5, 0, 'CLIP'], [3, 5, 0, 2, 1, 'CONDITIONING'],"
        "           [4, 5, 0, 2, 2, 'CONDITIONING'], [6, 6, 0, 2, 3, 'LATENT'], null]}",
        &g, &err);
    CHECK_INT(r, 0);
    if (!g) {
        fprintf(stderr, "%s\n", err.message ? err.message : "(no message)");
        vkf_load_error_clear(&err);
        return;
    }
    CHECK_INT(g->nb_nodes, 8);
    CHECK(vkf_graph_find(g, "10") == NULL && vkf_graph_find(g, "11") == NULL);
    CHECK_STR(vkf_graph_find(g, "1")->class_type, "CheckpointLoaderSimple");
    CHECK_STR(vkf_graph_find(g, "1")->title, "Load Checkpoint");
    CHECK_STR(vkf_graph_find(g, "2")->title, "First pass");
    CHECK(is_str(g, "1", "ckpt_name", "sd15.safetensors"));
    const vkf_graph_input *seed = in_of(g, "2", "seed");
    CHECK(seed && seed->value.kind == VKF_VAL_INT && vkf_value_u64(&seed->value) == UINT64_MAX);
    CHECK(is_int(g, "2", "steps", 25));
    CHECK(is_num(g, "2", "cfg", 6.5));
    CHECK(is_str(g, "2", "sampler_name", "dpmpp_2m"));
    CHECK(is_str(g, "2", "scheduler", "karras"));
    CHECK(is_num(g, "2", "denoise", 0.75));
    CHECK(is_link(g, "2", "model", "1", 0));
    CHECK(is_link(g, "2", "positive", "5", 0));
    CHECK(is_link(g, "2", "negative", "5", 0));
    CHECK(is_link(g, "2", "latent_image", "6", 0));
    CHECK_INT(vkf_graph_find(g, "2")->nb_inputs, 10);
    CHECK(is_str(g, "5", "text", "a cat"));
    CHECK(is_link(g, "5", "clip", "1", 1));
    /* Missing trailing values take the defaults. */
    CHECK(is_int(g, "6", "width", 640));
    CHECK(is_int(g, "6", "height", 512));
    CHECK(is_int(g, "6", "batch_size", 1));
    CHECK(is_str(g, "7", "add_noise", "disable"));
    CHECK(is_int(g, "7", "noise_seed", 9007199254740993LL));
    CHECK(is_int(g, "7", "steps", 30));
    CHECK(is_num(g, "7", "cfg", 7));
    CHECK(is_str(g, "7", "sampler_name", "euler"));
    CHECK(is_str(g, "7", "scheduler", "normal"));
    CHECK(is_int(g, "7", "start_at_step", 2));
    CHECK(is_int(g, "7", "end_at_step", 28));
    CHECK(is_str(g, "7", "return_with_leftover_noise", "enable"));
    CHECK(is_str(g, "8", "image", "cat.png"));
    CHECK_INT(vkf_graph_find(g, "8")->nb_inputs, 1);
    CHECK(is_int(g, "9", "seed", 5));
    CHECK(is_int(g, "9", "steps", 10));
    CHECK(is_num(g, "9", "cfg", 8.0));
    CHECK(is_str(g, "9", "sampler_name", "euler"));
    CHECK(is_str(g, "9", "scheduler", "simple"));
    CHECK(is_num(g, "9", "denoise", 1.0));
    /* widgets_values given as an object map by name. */
    CHECK(is_str(g, "12", "upscale_method", "bislerp"));
    CHECK(is_int(g, "12", "width", 1024));
    CHECK(is_int(g, "12", "height", 512));
    CHECK(is_str(g, "12", "crop", "disabled"));
    CHECK(g->workflow_json && strstr(g->workflow_json, "\"last_node_id\""));
    CHECK(g->prompt_json && strstr(g->prompt_json, "\"seed\":18446744073709551615"));
    vkf_graph_free(&g);
    vkf_load_error_clear(&err);
}

/* Converted widgets, Reroute, PrimitiveNode, schema-1 object links. */
static void test_links(void)
{
    vkf_load_error err = {0};
    vkf_graph *g = NULL;
    int r = convert(
        "{'version': 1, 'state': {'lastNodeId': 9},"
        " 'nodes': ["
        "  {'id': 1, 'type': 'CheckpointLoaderSimple', 'widgets_values': ['m.safetensors'],"
        "   'outputs': [{'name': 'MODEL', 'type': 'MODEL', 'links': [1]}]},"
        "  {'id': 2, 'type': 'Reroute', 'inputs': [{'name': '', 'type': '*', 'link': 1}],"
        "   'outputs': [{'name': '', 'type': 'MODEL', 'links': [2]}]},"
        "  {'id': 3, 'type': 'Reroute', 'inputs': [{'name': '', 'type': '*', 'link': 2}],"
        "   'outputs': [{'name': '', 'type': 'MODEL', 'links': [3]}]},"
        "  {'id': 4, 'type': 'KSampler', 'widgets_values': [1, 'fixed', 20, 8, 'euler', 'normal', 1],"
        "   'inputs': [{'name': 'model', 'type': 'MODEL', 'link': 3},"
        "              {'name': 'seed', 'type': 'INT', 'widget': {'name': 'seed'}, 'link': 4},"
        "              {'name': 'steps', 'type': 'INT', 'widget': {'name': 'steps'}, 'link': 5},"
        "              {'name': 'cfg', 'type': 'FLOAT', 'widget': {'name': 'cfg'}, 'link': 9}]},"
        "  {'id': 5, 'type': 'TestIntSource', 'widgets_values': [77],"
        "   'outputs': [{'name': 'INT', 'type': 'INT', 'links': [4]}]},"
        "  {'id': 6, 'type': 'PrimitiveNode', 'widgets_values': [33, 'fixed'],"
        "   'outputs': [{'name': 'INT', 'type': 'INT', 'widget': {'name': 'steps'}, 'links': [5, 6]}]},"
        "  {'id': 7, 'type': 'KSampler', 'widgets_values': [2, 'fixed', 20, 8, 'euler', 'normal', 1],"
        "   'inputs': [{'name': 'steps', 'type': 'INT', 'widget': {'name': 'steps'}, 'link': 7}]},"
        "  {'id': 8, 'type': 'Reroute', 'inputs': [{'name': '', 'type': '*', 'link': 6}],"
        "   'outputs': [{'name': '', 'type': 'INT', 'links': [7]}]},"
        "  {'id': 9, 'type': 'PrimitiveNode', 'widgets_values': [], 'outputs': [{'type': 'FLOAT', 'links': [9]}]}"
        " ],"
        " 'links': [{'id': 1, 'origin_id': 1, 'origin_slot': 0, 'target_id': 2, 'target_slot': 0, 'type': 'MODEL'},"
        "           {'id': 2, 'origin_id': 2, 'origin_slot': 0, 'target_id': 3, 'target_slot': 0, 'type': 'MODEL'},"
        "           {'id': 3, 'origin_id': 3, 'origin_slot': 0, 'target_id': 4, 'target_slot': 0, 'type': 'MODEL'},"
        "           {'id': 4, 'origin_id': 5, 'origin_slot': 0, 'target_id': 4, 'target_slot': 1, 'type': 'INT'},"
        "           {'id': 5, 'origin_id': 6, 'origin_slot': 0, 'target_id': 4, 'target_slot': 2, 'type': 'INT'},"
        "           {'id': 6, 'origin_id': 6, 'origin_slot': 0, 'target_id': 8, 'target_slot': 0, 'type': 'INT'},"
        "           {'id': 7, 'origin_id': 8, 'origin_slot': 0, 'target_id': 7, 'target_slot': 0, 'type': 'INT'},"
        "           {'id': 9, 'origin_id': 9, 'origin_slot': 0, 'target_id': 4, 'target_slot': 3, 'type': 'FLOAT'}]}",
        &g, &err);
    CHECK_INT(r, 0);
    if (!g) {
        fprintf(stderr, "%s\n", err.message ? err.message : "(no message)");
        vkf_load_error_clear(&err);
        return;
    }
    /* Reroutes and PrimitiveNodes are not emitted. */
    CHECK_INT(g->nb_nodes, 4);
    CHECK(is_link(g, "4", "model", "1", 0));
    /* A converted widget driven by a real node: the link wins. */
    CHECK(is_link(g, "4", "seed", "5", 0));
    CHECK(is_int(g, "5", "value", 77));
    /* A legacy PrimitiveNode writes its value into every widget it feeds,
     * also through a Reroute. */
    CHECK(is_int(g, "4", "steps", 33));
    CHECK(is_int(g, "7", "steps", 33));
    /* A PrimitiveNode without a value leaves the widget alone. */
    CHECK(is_num(g, "4", "cfg", 8));
    vkf_graph_free(&g);
    vkf_load_error_clear(&err);
}

/* Muted and bypassed nodes. */
static void test_modes(void)
{
    vkf_load_error err = {0};
    vkf_graph *g = NULL;
    int r = convert(
        "{'nodes': ["
        "  {'id': 1, 'type': 'CheckpointLoaderSimple', 'widgets_values': ['m.safetensors'],"
        "   'outputs': [{'type': 'MODEL', 'links': [1]}, {'type': 'CLIP', 'links': [2]}, {'type': 'VAE', 'links': [12]}]},"
        "  {'id': 2, 'type': 'LoraLoader', 'mode': 4, 'widgets_values': ['l.safetensors', 1, 1],"
        "   'inputs': [{'name': 'model', 'type': 'MODEL', 'link': 1}, {'name': 'clip', 'type': 'CLIP', 'link': 2}],"
        "   'outputs': [{'type': 'MODEL', 'links': [3]}, {'type': 'CLIP', 'links': [4]}]},"
        "  {'id': 3, 'type': 'CLIPTextEncode', 'widgets_values': ['x'], 'inputs': [{'name': 'clip', 'type': 'CLIP', 'link': 4}]},"
        "  {'id': 4, 'type': 'KSampler', 'mode': 4, 'widgets_values': [1, 'fixed', 20, 8, 'euler', 'normal', 1],"
        "   'inputs': [{'name': 'model', 'type': 'MODEL', 'link': 3}, {'name': 'positive', 'type': 'CONDITIONING', 'link': null},"
        "              {'name': 'negative', 'type': 'CONDITIONING', 'link': null}, {'name': 'latent_image', 'type': 'LATENT', 'link': 5}],"
        "   'outputs': [{'type': 'LATENT', 'links': [6]}]},"
        "  {'id': 5, 'type': 'EmptyLatentImage', 'widgets_values': [512, 512, 1], 'outputs': [{'type': 'LATENT', 'links': [5]}]},"
        "  {'id': 6, 'type': 'VAEDecode', 'inputs': [{'name': 'samples', 'type': 'LATENT', 'link': 6}, {'name': 'vae', 'type': 'VAE', 'link': 12}],"
        "   'outputs': [{'type': 'IMAGE', 'links': [7, 9]}]},"
        "  {'id': 7, 'type': 'VAEDecode', 'mode': 4, 'inputs': [{'name': 'samples', 'type': 'LATENT', 'link': null}, {'name': 'vae', 'type': 'VAE', 'link': null}],"
        "   'outputs': [{'type': 'IMAGE', 'links': [8]}]},"
        "  {'id': 8, 'type': 'SaveImage', 'widgets_values': ['bypassed'], 'inputs': [{'name': 'images', 'type': 'IMAGE', 'link': 8}]},"
        "  {'id': 9, 'type': 'PreviewImage', 'mode': 2, 'inputs': [{'name': 'images', 'type': 'IMAGE', 'link': 7}],"
        "   'outputs': []},"
        "  {'id': 10, 'type': 'SomeUnknownNode', 'mode': 2, 'outputs': [{'type': 'IMAGE', 'links': [10]}]},"
        "  {'id': 11, 'type': 'SaveImage', 'widgets_values': ['muted source'], 'inputs': [{'name': 'images', 'type': 'IMAGE', 'link': 10}]},"
        "  {'id': 12, 'type': 'AnotherUnknown', 'mode': 4}"
        " ],"
        " 'links': [[1, 1, 0, 2, 0, 'MODEL'], [2, 1, 1, 2, 1, 'CLIP'], [3, 2, 0, 4, 0, 'MODEL'], [4, 2, 1, 3, 0, 'CLIP'],"
        "           [5, 5, 0, 4, 3, 'LATENT'], [6, 4, 0, 6, 0, 'LATENT'], [7, 6, 0, 9, 0, 'IMAGE'], [8, 7, 0, 8, 0, 'IMAGE'],"
        "           [10, 10, 0, 11, 0, 'IMAGE'], [12, 1, 2, 6, 1, 'VAE']]}",
        &g, &err);
    CHECK_INT(r, 0);
    if (!g) {
        fprintf(stderr, "%s\n", err.message ? err.message : "(no message)");
        vkf_load_error_clear(&err);
        return;
    }
    CHECK(vkf_graph_find(g, "2") == NULL);
    CHECK(vkf_graph_find(g, "4") == NULL);
    CHECK(vkf_graph_find(g, "7") == NULL);
    CHECK(vkf_graph_find(g, "9") == NULL);
    CHECK(vkf_graph_find(g, "10") == NULL);
    CHECK_INT(g->nb_nodes, 6);
    /* Through the bypassed LoRA: same-index input of the fitting type. */
    CHECK(is_link(g, "3", "clip", "1", 1));
    /* Through the bypassed KSampler: input 0 (MODEL) does not fit LATENT,
     * so the input of the wanted type is used. */
    CHECK(is_link(g, "6", "samples", "5", 0));
    CHECK(is_link(g, "6", "vae", "1", 2));
    /* A bypassed node with nothing of the wanted type: link omitted. */
    CHECK(in_of(g, "8", "images") == NULL);
    CHECK(is_str(g, "8", "filename_prefix", "bypassed"));
    /* A link from a muted node is removed. */
    CHECK(in_of(g, "11", "images") == NULL);
    CHECK(is_str(g, "11", "filename_prefix", "muted source"));
    vkf_graph_free(&g);
    vkf_load_error_clear(&err);
}

/* dynamicPrompts strings: comments removed, {a|b} choices made. */
static void test_dynamic_prompts(void)
{
    vkf_load_error err = {0};
    vkf_graph *g = NULL;
    int r = convert("{'nodes': [{'id': 1, 'type': 'CLIPTextEncode', 'widgets_values':"
                    " ['a /* block */cat // line\\n{red|red} \\\\{x\\\\} {b{c|c}|b{c|c}}/* open']},"
                    " {'id': 2, 'type': 'SaveImage', 'widgets_values': ['{a|b} // kept']}], 'links': []}",
                    &g, &err);
    CHECK_INT(r, 0);
    CHECK(is_str(g, "1", "text", "a cat \nred {x} bc/* open"));
    /* Only dynamicPrompts widgets are rewritten. */
    CHECK(is_str(g, "2", "filename_prefix", "{a|b} // kept"));
    vkf_graph_free(&g);
    vkf_load_error_clear(&err);
}

static void test_unknown_and_unsupported(void)
{
    vkf_load_error err = {0};
    vkf_graph *g = NULL;
    int r = convert("{'nodes': [{'id': 1, 'type': 'FancySampler'}, {'id': 2, 'type': 'KSampler'},"
                    " {'id': 3, 'type': 'UpscaleModelLoader'}, {'id': 4, 'type': 'FancySampler'},"
                    " {'id': 5, 'type': 'MutedThing', 'mode': 2}], 'links': []}",
                    &g, &err);
    CHECK_INT(r, VKF_ENOTFOUND);
    CHECK_INT(err.code, VKF_ENOTFOUND);
    CHECK_INT(err.nb_unknown, 2);
    if (err.nb_unknown == 2) {
        CHECK_STR(err.unknown_classes[0], "FancySampler");
        CHECK_STR(err.unknown_classes[1], "UpscaleModelLoader");
    }
    CHECK(err.message && strstr(err.message, "FancySampler, UpscaleModelLoader"));
    CHECK(g == NULL);
    vkf_load_error_clear(&err);
    /* The error record is optional. */
    char *text = q("{'nodes': [{'id': 1, 'type': 'FancySampler'}], 'links': []}");
    CHECK(vkf_load_workflow_json(text, strlen(text), reg, &g, NULL) == VKF_ENOTFOUND && !g);
    vkf_free(text);

    r = convert("{'nodes': [{'id': 7, 'type': 'a1b2c3d4-0000-4000-8000-000000000000'}], 'links': [],"
                " 'definitions': {'subgraphs': [{'id': 'a1b2c3d4-0000-4000-8000-000000000000', 'name': 'My block',"
                "  'nodes': [], 'links': []}]}}",
                &g, &err);
    CHECK_INT(r, VKF_EUNSUPPORTED);
    CHECK(err.message && strstr(err.message, "subgraphs are not supported: node 7 (My block)"));
    vkf_load_error_clear(&err);

    r = convert("{'nodes': [{'id': 3, 'type': 'workflow>My group'}], 'links': [],"
                " 'extra': {'groupNodes': {'My group': {}}}}",
                &g, &err);
    CHECK_INT(r, VKF_EUNSUPPORTED);
    CHECK(err.message && strstr(err.message, "group nodes"));
    vkf_load_error_clear(&err);

    /* A link loop through Reroutes is an error, not a hang. */
    r = convert("{'nodes': [{'id': 1, 'type': 'Reroute', 'inputs': [{'name': '', 'type': '*', 'link': 2}]},"
                " {'id': 2, 'type': 'Reroute', 'inputs': [{'name': '', 'type': '*', 'link': 1}]},"
                " {'id': 3, 'type': 'VAEDecode', 'inputs': [{'name': 'samples', 'type': 'LATENT', 'link': 1}]}],"
                " 'links': [[1, 1, 0, 2, 0, '*'], [2, 2, 0, 1, 0, '*'], [3, 1, 0, 3, 0, 'LATENT']]}",
                &g, &err);
    CHECK_INT(r, VKF_EPARSE);
    CHECK(err.message && strstr(err.message, "loop"));
    vkf_load_error_clear(&err);
}

/* ---- ComfyUI_examples -------------------------------------------------- */

static bool values_equal(const vkf_graph_input *a, const vkf_graph_input *b)
{
    if (a->is_link || b->is_link)
        return a->is_link && b->is_link && !strcmp(a->src_id, b->src_id) && a->src_slot == b->src_slot;
    const vkf_value *x = &a->value, *y = &b->value;
    bool xn = x->kind == VKF_VAL_INT || x->kind == VKF_VAL_FLOAT;
    bool yn = y->kind == VKF_VAL_INT || y->kind == VKF_VAL_FLOAT;
    if (xn && yn) {
        if (x->kind == VKF_VAL_INT && y->kind == VKF_VAL_INT)
            return x->u.i == y->u.i && x->is_u64 == y->is_u64;
        return vkf_value_number(x) == vkf_value_number(y);
    }
    return vkf_value_equal(x, y);
}

/* Old frontends serialised the image upload button. */
static bool ignored_input(const char *name)
{
    return !strcmp(name, "choose file to upload") || !strcmp(name, "upload");
}

static void compare_graphs(const char *name, const vkf_graph *got, const vkf_graph *want)
{
    CHECK_INT(got->nb_nodes, want->nb_nodes);
    for (int i = 0; i < want->nb_nodes; i++) {
        const vkf_graph_node *w = &want->nodes[i];
        const vkf_graph_node *gn = vkf_graph_find(got, w->id);
        if (!gn) {
            fprintf(stderr, "%s: node %s missing\n", name, w->id);
            test_failures++;
            continue;
        }
        CHECK_STR(gn->class_type, w->class_type);
        int expected = 0;
        for (int k = 0; k < w->nb_inputs; k++) {
            const vkf_graph_input *wi = &w->inputs[k];
            if (ignored_input(wi->name))
                continue;
            expected++;
            const vkf_graph_input *gi = vkf_graph_node_input(gn, wi->name);
            if (!gi || !values_equal(gi, wi)) {
                char *a = gi ? vkf_value_to_text(&gi->value) : NULL, *b = vkf_value_to_text(&wi->value);
                fprintf(stderr, "%s: node %s input %s differs (got %s, want %s)\n", name, w->id, wi->name,
                        gi ? (gi->is_link ? gi->src_id : a) : "nothing", wi->is_link ? wi->src_id : b);
                vkf_free(a);
                vkf_free(b);
                test_failures++;
            }
        }
        if (gn->nb_inputs != expected) {
            fprintf(stderr, "%s: node %s has %d inputs, want %d\n", name, w->id, gn->nb_inputs, expected);
            test_failures++;
        }
    }
}

static vkf_graph *load_file_json(const char *rel, vkf_load_error *err)
{
    char *path = vkf_test_source_path(rel);
    size_t len = 0;
    char *text = path ? vkf_test_read_file(path, &len) : NULL;
    vkf_graph *g = NULL;
    if (!text) {
        fprintf(stderr, "cannot read %s\n", path ? path : rel);
        test_failures++;
    } else if (vkf_load_workflow_json(text, len, reg, &g, err) < 0) {
        fprintf(stderr, "%s: %s\n", rel, err->message ? err->message : "(no message)");
    }
    vkf_free(text);
    vkf_free(path);
    return g;
}

static void test_examples(void)
{
    static const char *const names[] = {"lora", "lora_multiple", "img2img", "hiresfix_latent", "embedding"};
    char rel[256];
    for (size_t i = 0; i < VKF_ARRAY_SIZE(names); i++) {
        vkf_load_error err = {0};
        snprintf(rel, sizeof(rel), "tests/load/data/examples/%s.workflow.json", names[i]);
        vkf_graph *got = load_file_json(rel, &err);
        snprintf(rel, sizeof(rel), "tests/load/data/examples/%s.prompt.json", names[i]);
        vkf_graph *want = load_file_json(rel, &err);
        CHECK(got && want);
        if (got && want)
            compare_graphs(names[i], got, want);
        vkf_graph_free(&got);
        vkf_graph_free(&want);
        vkf_load_error_clear(&err);
    }

    vkf_load_error err = {0};
    vkf_graph *g = NULL;
    char *path = vkf_test_source_path("tests/load/data/examples/controlnet.workflow.json");
    CHECK_INT(vkf_load_workflow_file(path, reg, &g, &err), VKF_ENOTFOUND);
    CHECK_INT(err.nb_unknown, 2);
    if (err.nb_unknown == 2) {
        bool a = false, b = false;
        for (int k = 0; k < 2; k++) {
            a |= !strcmp(err.unknown_classes[k], "ControlNetLoader");
            b |= !strcmp(err.unknown_classes[k], "ControlNetApply");
        }
        CHECK(a && b);
    }
    CHECK(err.message && strstr(err.message, "ControlNetLoader") && strstr(err.message, "ControlNetApply"));
    vkf_free(path);
    vkf_load_error_clear(&err);
}

int main(void)
{
    if (vkf_test_sd_registry(&reg) < 0) {
        fprintf(stderr, "cannot build the test registry\n");
        return 1;
    }
    if (vkf_registry_add(reg, &int_source) < 0)
        return 1;
    long live = vkf_alloc_live();
    test_widgets();
    test_links();
    test_modes();
    test_dynamic_prompts();
    test_unknown_and_unsupported();
    test_examples();
    CHECK_INT(vkf_alloc_live(), live);
    vkf_registry_destroy(&reg);
    vkf_test_object_info_release();
    if (test_failures)
        fprintf(stderr, "%d check(s) failed\n", test_failures);
    return test_failures ? 1 : 0;
}
