/* The in-memory API-format prompt: ownership, lookup, editing, JSON out. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "graph/load.h"

void vkf_graph_input_clear(vkf_graph_input *in)
{
    vkf_free(in->name);
    vkf_free(in->src_id);
    vkf_value_clear(&in->value);
    memset(in, 0, sizeof(*in));
}

static void node_clear(vkf_graph_node *n)
{
    for (int i = 0; i < n->nb_inputs; i++)
        vkf_graph_input_clear(&n->inputs[i]);
    vkf_free(n->inputs);
    vkf_free(n->id);
    vkf_free(n->class_type);
    vkf_free(n->title);
    memset(n, 0, sizeof(*n));
}

void vkf_graph_free(vkf_graph **pg)
{
    vkf_graph *g = pg ? *pg : NULL;
    if (!g)
        return;
    for (int i = 0; i < g->nb_nodes; i++)
        node_clear(&g->nodes[i]);
    vkf_free(g->nodes);
    vkf_free(g->client_id);
    vkf_free(g->prompt_id);
    for (int i = 0; i < g->nb_partial_targets; i++)
        vkf_free(g->partial_targets[i]);
    vkf_free(g->partial_targets);
    vkf_free(g->prompt_json);
    vkf_free(g->workflow_json);
    vkf_free(g);
    *pg = NULL;
}

vkf_graph_node *vkf_graph_find(const vkf_graph *g, const char *id)
{
    if (!g || !id)
        return NULL;
    for (int i = 0; i < g->nb_nodes; i++)
        if (!strcmp(g->nodes[i].id, id))
            return &g->nodes[i];
    return NULL;
}

const vkf_graph_input *vkf_graph_node_input(const vkf_graph_node *n, const char *name)
{
    if (!n || !name)
        return NULL;
    for (int i = 0; i < n->nb_inputs; i++)
        if (!strcmp(n->inputs[i].name, name))
            return &n->inputs[i];
    return NULL;
}

vkf_graph_node *vkf_graph_add_node(vkf_graph *g, const char *id)
{
    char *dup = vkf_strdup(id);
    if (!dup)
        return NULL;
    vkf_graph_node *nodes = vkf_realloc(g->nodes, sizeof(*nodes) * (size_t)(g->nb_nodes + 1));
    if (!nodes) {
        vkf_free(dup);
        return NULL;
    }
    g->nodes = nodes;
    vkf_graph_node *n = &g->nodes[g->nb_nodes++];
    memset(n, 0, sizeof(*n));
    n->id = dup;
    return n;
}

int vkf_graph_node_put(vkf_graph_node *n, const char *name, vkf_graph_input *in)
{
    for (int i = 0; i < n->nb_inputs; i++) {
        if (!strcmp(n->inputs[i].name, name)) {
            char *keep = n->inputs[i].name;
            n->inputs[i].name = NULL;
            vkf_graph_input_clear(&n->inputs[i]);
            vkf_free(in->name);
            n->inputs[i] = *in;
            n->inputs[i].name = keep;
            memset(in, 0, sizeof(*in));
            return 0;
        }
    }
    char *dup = vkf_strdup(name);
    if (!dup)
        goto oom;
    vkf_graph_input *inputs = vkf_realloc(n->inputs, sizeof(*inputs) * (size_t)(n->nb_inputs + 1));
    if (!inputs) {
        vkf_free(dup);
        goto oom;
    }
    n->inputs = inputs;
    vkf_free(in->name);
    n->inputs[n->nb_inputs] = *in;
    n->inputs[n->nb_inputs].name = dup;
    n->nb_inputs++;
    memset(in, 0, sizeof(*in));
    return 0;
oom:
    vkf_graph_input_clear(in);
    return VKF_ENOMEM;
}

void vkf_graph_node_remove_input(vkf_graph_node *n, int idx)
{
    vkf_graph_input_clear(&n->inputs[idx]);
    memmove(&n->inputs[idx], &n->inputs[idx + 1],
            sizeof(*n->inputs) * (size_t)(n->nb_inputs - idx - 1));
    n->nb_inputs--;
}

int vkf_graph_input_from_json(const cJSON *item, vkf_graph_input *in)
{
    memset(in, 0, sizeof(*in));
    if (cJSON_IsArray(item)) {
        const cJSON *id = item->child;
        const cJSON *slot = id ? id->next : NULL;
        int64_t s;
        if (cJSON_GetArraySize(item) == 2 && cJSON_IsString(id) && slot &&
            vkf_json_int(slot, &s) && s >= 0 && s <= INT32_MAX) {
            in->is_link = true;
            in->src_slot = (int)s;
            in->src_id = vkf_strdup(id->valuestring);
            return in->src_id ? 0 : VKF_ENOMEM;
        }
        /* Kept as text so the error report and re-serialisation show it. */
        in->bad_link = true;
        char *text;
        int err = vkf_json_to_text(item, &text);
        if (err < 0)
            return err;
        in->value.kind = VKF_VAL_JSON;
        in->value.u.s = text;
        return 0;
    }
    return vkf_json_to_value(item, &in->value);
}

/* ---- JSON out --------------------------------------------------------------- */

static void put_value(vkf_sb *sb, const vkf_graph_input *in)
{
    char buf[48];
    const vkf_value *v = &in->value;
    if (in->is_link) {
        vkf_sb_putc(sb, '[');
        vkf_sb_put_json_string(sb, in->src_id ? in->src_id : "");
        snprintf(buf, sizeof(buf), ", %d]", in->src_slot);
        vkf_sb_puts(sb, buf);
        return;
    }
    switch (v->kind) {
    case VKF_VAL_INT:
        if (v->is_u64)
            snprintf(buf, sizeof(buf), "%" PRIu64, (uint64_t)v->u.i);
        else
            snprintf(buf, sizeof(buf), "%" PRId64, v->u.i);
        vkf_sb_puts(sb, buf);
        break;
    case VKF_VAL_FLOAT:
        vkf_sb_put_json_double(sb, v->u.f);
        break;
    case VKF_VAL_STRING:
        vkf_sb_put_json_string(sb, v->u.s);
        break;
    case VKF_VAL_BOOL:
        vkf_sb_puts(sb, v->u.b ? "true" : "false");
        break;
    case VKF_VAL_JSON:
        /* A constant array can only have come wrapped in __value__ (a bare
         * array is a link or a bad link); an object that itself has a
         * __value__ key must be wrapped too or a reader would unwrap it. */
        if (!in->bad_link && (v->u.s[0] == '[' || (v->u.s[0] == '{' && strstr(v->u.s, "\"__value__\"")))) {
            vkf_sb_puts(sb, "{\"__value__\": ");
            vkf_sb_puts(sb, v->u.s);
            vkf_sb_putc(sb, '}');
        } else {
            vkf_sb_puts(sb, v->u.s);
        }
        break;
    case VKF_VAL_NONE:
    case VKF_VAL_OBJECT:
        vkf_sb_puts(sb, "null");
        break;
    }
}

static void indent_to(vkf_sb *sb, bool pretty, int level)
{
    if (!pretty)
        return;
    vkf_sb_putc(sb, '\n');
    for (int i = 0; i < level; i++)
        vkf_sb_puts(sb, "  ");
}

int vkf_graph_to_json(const vkf_graph *g, char **json, bool pretty)
{
    vkf_sb sb = {0};
    const char *colon = pretty ? ": " : ":";
    vkf_sb_putc(&sb, '{');
    for (int i = 0; i < g->nb_nodes; i++) {
        const vkf_graph_node *n = &g->nodes[i];
        indent_to(&sb, pretty, 1);
        vkf_sb_put_json_string(&sb, n->id);
        vkf_sb_puts(&sb, colon);
        vkf_sb_putc(&sb, '{');
        indent_to(&sb, pretty, 2);
        vkf_sb_puts(&sb, "\"inputs\"");
        vkf_sb_puts(&sb, colon);
        vkf_sb_putc(&sb, '{');
        for (int k = 0; k < n->nb_inputs; k++) {
            indent_to(&sb, pretty, 3);
            vkf_sb_put_json_string(&sb, n->inputs[k].name);
            vkf_sb_puts(&sb, colon);
            put_value(&sb, &n->inputs[k]);
            if (k + 1 < n->nb_inputs)
                vkf_sb_putc(&sb, ',');
        }
        if (n->nb_inputs)
            indent_to(&sb, pretty, 2);
        vkf_sb_putc(&sb, '}');
        if (n->class_type) {
            vkf_sb_putc(&sb, ',');
            indent_to(&sb, pretty, 2);
            vkf_sb_puts(&sb, "\"class_type\"");
            vkf_sb_puts(&sb, colon);
            vkf_sb_put_json_string(&sb, n->class_type);
        }
        if (n->title) {
            vkf_sb_putc(&sb, ',');
            indent_to(&sb, pretty, 2);
            vkf_sb_puts(&sb, "\"_meta\"");
            vkf_sb_puts(&sb, colon);
            vkf_sb_puts(&sb, "{\"title\"");
            vkf_sb_puts(&sb, colon);
            vkf_sb_put_json_string(&sb, n->title);
            vkf_sb_putc(&sb, '}');
        }
        indent_to(&sb, pretty, 1);
        vkf_sb_putc(&sb, '}');
        if (i + 1 < g->nb_nodes)
            vkf_sb_putc(&sb, ',');
    }
    if (g->nb_nodes)
        indent_to(&sb, pretty, 0);
    vkf_sb_putc(&sb, '}');
    return vkf_sb_finish(&sb, json);
}

/* ---- --set ID.INPUT=VALUE -------------------------------------------------------- */

int vkf_graph_set_input(vkf_graph *g, const char *node_id, const char *input,
                        const char *value_text, char **errmsg)
{
    vkf_graph_input in = {0};
    cJSON *root = NULL;
    char *json = NULL;
    int err = 0;
    if (errmsg)
        *errmsg = NULL;
    vkf_graph_node *n = vkf_graph_find(g, node_id);
    if (!n) {
        if (errmsg)
            *errmsg = vkf_asprintf("no node with id \"%s\" in the workflow", node_id ? node_id : "");
        return VKF_ENOTFOUND;
    }
    if (!input || !*input || !value_text) {
        if (errmsg)
            *errmsg = vkf_strdup("--set needs ID.INPUT=VALUE with a non-empty input name");
        return VKF_EINVAL;
    }
    err = vkf_json_parse(value_text, strlen(value_text), NULL, &root, NULL);
    if (err == VKF_ENOMEM)
        goto fail;
    if (err < 0 || cJSON_IsNull(root)) {
        /* Not JSON (or null): the text itself is the string value. */
        VKF_TRY(vkf_value_set_string(&in.value, value_text));
    } else {
        VKF_TRY(vkf_graph_input_from_json(root, &in));
        /* A list that is not ["id", slot] is meant as a list constant (what
         * the UI sends as {"__value__": [...]}), not a broken link. */
        in.bad_link = false;
    }
    VKF_TRY(vkf_graph_node_put(n, input, &in));
    /* Keep the embedded-metadata text in step with the edit. */
    VKF_TRY(vkf_graph_to_json(g, &json, false));
    vkf_free(g->prompt_json);
    g->prompt_json = json;
    cJSON_Delete(root);
    return 0;
fail:
    vkf_graph_input_clear(&in);
    cJSON_Delete(root);
    if (errmsg && err == VKF_ENOMEM)
        *errmsg = vkf_strdup("out of memory");
    return err;
}

void vkf_load_error_clear(vkf_load_error *e)
{
    if (!e)
        return;
    vkf_free(e->message);
    for (int i = 0; i < e->nb_unknown; i++)
        vkf_free(e->unknown_classes[i]);
    vkf_free(e->unknown_classes);
    memset(e, 0, sizeof(*e));
}
