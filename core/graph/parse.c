/*
 * Workflow JSON in: format detection (POST /prompt body, API prompt, UI
 * workflow) and the API-format reader.  This and the other files of the
 * loader are the only places cJSON appears.
 */
#include <string.h>

#include "graph/load.h"

int vkf_graph_from_api(const cJSON *prompt, vkf_graph *g, vkf_load_error *err)
{
    for (const cJSON *jn = prompt->child; jn; jn = jn->next) {
        const char *id = jn->string ? jn->string : "";
        if (!cJSON_IsObject(jn))
            return vkf_load_fail(err, VKF_EPARSE, "node \"%s\": expected an object with class_type and inputs", id);
        const cJSON *inputs = vkf_json_get(jn, "inputs");
        if (inputs && !cJSON_IsObject(inputs) && !cJSON_IsNull(inputs))
            return vkf_load_fail(err, VKF_EPARSE, "node \"%s\": \"inputs\" is not an object", id);

        /* A repeated id replaces the earlier node in place, as in Python. */
        vkf_graph_node *n = vkf_graph_find(g, id);
        if (n) {
            for (int i = n->nb_inputs - 1; i >= 0; i--)
                vkf_graph_node_remove_input(n, i);
            vkf_free(n->class_type);
            vkf_free(n->title);
            n->class_type = n->title = NULL;
        } else if (!(n = vkf_graph_add_node(g, id))) {
            goto oom;
        }
        const cJSON *ct = vkf_json_get(jn, "class_type");
        if (cJSON_IsString(ct) && !(n->class_type = vkf_strdup(ct->valuestring)))
            goto oom;
        const cJSON *meta = vkf_json_get(jn, "_meta");
        const cJSON *title = cJSON_IsObject(meta) ? vkf_json_get(meta, "title") : NULL;
        if (cJSON_IsString(title) && !(n->title = vkf_strdup(title->valuestring)))
            goto oom;
        for (const cJSON *ji = cJSON_IsObject(inputs) ? inputs->child : NULL; ji; ji = ji->next) {
            vkf_graph_input in;
            int e = vkf_graph_input_from_json(ji, &in);
            if (e < 0) {
                vkf_graph_input_clear(&in);
                goto oom;
            }
            if (vkf_graph_node_put(n, ji->string ? ji->string : "", &in) < 0)
                goto oom;
        }
    }
    return 0;
oom:
    return vkf_load_fail(err, VKF_ENOMEM, "out of memory");
}

static int read_body(const cJSON *root, vkf_graph *g, vkf_load_error *err)
{
    const cJSON *cid = vkf_json_get(root, "client_id");
    const cJSON *pid = vkf_json_get(root, "prompt_id");
    const cJSON *targets = vkf_json_get(root, "partial_execution_targets");
    if (cJSON_IsString(cid) && !(g->client_id = vkf_strdup(cid->valuestring)))
        goto oom;
    if (cJSON_IsString(pid) && !(g->prompt_id = vkf_strdup(pid->valuestring)))
        goto oom;
    if (cJSON_IsArray(targets)) {
        int n = cJSON_GetArraySize(targets);
        if (n > 0 && !(g->partial_targets = vkf_calloc((size_t)n, sizeof(char *))))
            goto oom;
        for (const cJSON *t = targets->child; t; t = t->next) {
            if (!cJSON_IsString(t))
                return vkf_load_fail(err, VKF_EPARSE, "partial_execution_targets must hold node id strings");
            if (!(g->partial_targets[g->nb_partial_targets] = vkf_strdup(t->valuestring)))
                goto oom;
            g->nb_partial_targets++;
        }
    }
    const cJSON *extra = vkf_json_get(root, "extra_data");
    const cJSON *pnginfo = cJSON_IsObject(extra) ? vkf_json_get(extra, "extra_pnginfo") : NULL;
    const cJSON *wf = cJSON_IsObject(pnginfo) ? vkf_json_get(pnginfo, "workflow") : NULL;
    if (wf && !cJSON_IsNull(wf) && vkf_json_to_text(wf, &g->workflow_json) < 0)
        goto oom;
    return 0;
oom:
    return vkf_load_fail(err, VKF_ENOMEM, "out of memory");
}

static bool is_ui_workflow(const cJSON *root)
{
    return cJSON_IsArray(vkf_json_get(root, "nodes"));
}

/* Some value of root looks like an API node. */
static bool has_node(const cJSON *root)
{
    for (const cJSON *jn = root->child; jn; jn = jn->next)
        if (vkf_json_get(jn, "class_type"))
            return true;
    return false;
}

static bool is_body(const cJSON *root)
{
    const cJSON *p = vkf_json_get(root, "prompt");
    /* An API prompt may have a node with id "prompt": that one has a
     * class_type. */
    return cJSON_IsObject(p) && !vkf_json_get(p, "class_type");
}

int vkf_load_workflow_json(const char *json, size_t len, const vkf_registry *reg,
                           vkf_graph **out, vkf_load_error *err)
{
    cJSON *root = NULL;
    vkf_graph *g = NULL;
    int ret;
    *out = NULL;
    if (err)
        vkf_load_error_clear(err);
    ret = vkf_json_parse(json, len, NULL, &root, err);
    if (ret < 0)
        return ret;
    if (!cJSON_IsObject(root)) {
        ret = vkf_load_fail(err, VKF_EPARSE, "not a workflow: the JSON text is not an object");
        goto fail;
    }
    if (!(g = vkf_calloc(1, sizeof(*g)))) {
        ret = vkf_load_fail(err, VKF_ENOMEM, "out of memory");
        goto fail;
    }
    if (is_body(root)) {
        const cJSON *prompt = vkf_json_get(root, "prompt");
        if ((ret = read_body(root, g, err)) < 0 || (ret = vkf_graph_from_api(prompt, g, err)) < 0)
            goto fail;
        if ((ret = vkf_json_to_text(prompt, &g->prompt_json)) < 0)
            goto oom;
    } else if (is_ui_workflow(root)) {
        if (!reg) {
            ret = vkf_load_fail(err, VKF_EINVAL, "a UI-format workflow needs a node registry to convert it");
            goto fail;
        }
        if ((ret = vkf_ui_convert(root, reg, g, err)) < 0)
            goto fail;
        if ((ret = vkf_json_to_text(root, &g->workflow_json)) < 0 ||
            (ret = vkf_graph_to_json(g, &g->prompt_json, false)) < 0)
            goto oom;
    } else if (!has_node(root) && (vkf_json_get(root, "prompt") || vkf_json_get(root, "client_id") ||
                                   vkf_json_get(root, "extra_data"))) {
        ret = vkf_load_fail(err, VKF_EPARSE, "No prompt provided: the request body has no \"prompt\" object");
        goto fail;
    } else {
        for (const cJSON *jn = root->child; jn; jn = jn->next) {
            if (!cJSON_IsObject(jn)) {
                ret = vkf_load_fail(err, VKF_EPARSE,
                                    "unrecognised workflow format: expected an API prompt (node id -> "
                                    "{class_type, inputs}), a POST /prompt body or a UI workflow "
                                    "(nodes, links); key \"%s\" is not a node",
                                    jn->string ? jn->string : "");
                goto fail;
            }
        }
        if ((ret = vkf_graph_from_api(root, g, err)) < 0)
            goto fail;
        if ((ret = vkf_json_to_text(root, &g->prompt_json)) < 0)
            goto oom;
    }
    cJSON_Delete(root);
    *out = g;
    return 0;
oom:
    ret = vkf_load_fail(err, VKF_ENOMEM, "out of memory");
fail:
    cJSON_Delete(root);
    vkf_graph_free(&g);
    return ret;
}
