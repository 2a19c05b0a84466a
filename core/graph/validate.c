/*
 * Validation with ComfyUI's semantics (execution.py validate_prompt /
 * validate_inputs): unknown classes, outputs, required inputs, links and
 * their types, value coercion, ranges, combos, custom validators — plus
 * dependency cycles, which vkflow reports at validation time with the ids
 * of the cycle.  The result is also the executor's plan: every input of
 * every reachable node resolved to a coerced constant or a link.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph/internal.h"

typedef struct vctx {
    const vkf_graph *g;
    const vkf_registry *reg;
    const vkf_paths *paths;
    vkf_validation *v;
    vkf_plan *plan;
    int *stack;          /* DFS path, for cycle reports */
    int depth;
} vctx;

char *vkf_value_repr(const vkf_value *v)
{
    if (v->kind == VKF_VAL_STRING)
        return vkf_asprintf("'%s'", v->u.s);
    return vkf_value_to_text(v);
}

static void free_verr(vkf_validate_error *e)
{
    vkf_free(e->type);
    vkf_free(e->message);
    vkf_free(e->details);
    vkf_free(e->input_name);
    vkf_free(e->extra_json);
    memset(e, 0, sizeof(*e));
}

void vkf_validation_clear(vkf_validation *v)
{
    if (!v)
        return;
    free_verr(&v->error);
    for (int i = 0; i < v->nb_node_errors; i++) {
        vkf_node_errors *ne = &v->node_errors[i];
        for (int k = 0; k < ne->nb_errors; k++)
            free_verr(&ne->errors[k]);
        vkf_free(ne->errors);
        vkf_strv_free(&ne->dependent_outputs, ne->nb_dependent);
        vkf_free(ne->node_id);
        vkf_free(ne->class_type);
    }
    vkf_free(v->node_errors);
    vkf_strv_free(&v->outputs, v->nb_outputs);
    memset(v, 0, sizeof(*v));
}

static int set_verr(vkf_validate_error *e, const char *type, const char *message,
                    const char *details, const char *input, cJSON *extra)
{
    /* Takes ownership of extra. */
    memset(e, 0, sizeof(*e));
    e->type = vkf_strdup(type);
    e->message = vkf_strdup(message);
    e->details = vkf_strdup(details ? details : "");
    e->input_name = input ? vkf_strdup(input) : NULL;
    if (extra) {
        e->extra_json = cJSON_PrintUnformatted(extra);
        cJSON_Delete(extra);
    } else {
        e->extra_json = vkf_strdup("{}");
    }
    if (!e->type || !e->message || !e->details || (input && !e->input_name) ||
        !e->extra_json) {
        free_verr(e);
        return VKF_ENOMEM;
    }
    return 0;
}

/* The node_errors entry of plan node i, created on first use. */
static vkf_node_errors *node_errors_for(vctx *c, int i)
{
    vkf_plan_node *pn = &c->plan->nodes[i];
    vkf_validation *v = c->v;
    if (pn->nerr >= 0)
        return &v->node_errors[pn->nerr];
    vkf_node_errors *arr = vkf_realloc(v->node_errors,
                                       sizeof(*arr) * (size_t)(v->nb_node_errors + 1));
    if (!arr)
        return NULL;
    v->node_errors = arr;
    vkf_node_errors *ne = &arr[v->nb_node_errors];
    memset(ne, 0, sizeof(*ne));
    ne->node_id = vkf_strdup(pn->gn->id);
    ne->class_type = vkf_strdup(pn->gn->class_type ? pn->gn->class_type : "");
    if (!ne->node_id || !ne->class_type) {
        vkf_free(ne->node_id);
        vkf_free(ne->class_type);
        return NULL;
    }
    pn->nerr = v->nb_node_errors++;
    return ne;
}

static int node_error(vctx *c, int i, const char *type, const char *message,
                      const char *details, const char *input, cJSON *extra)
{
    vkf_node_errors *ne = node_errors_for(c, i);
    vkf_validate_error *arr = ne ? vkf_realloc(ne->errors, sizeof(*arr) * (size_t)(ne->nb_errors + 1))
                                 : NULL;
    if (!arr) {
        cJSON_Delete(extra);
        return VKF_ENOMEM;
    }
    ne->errors = arr;
    int err = set_verr(&arr[ne->nb_errors], type, message, details, input, extra);
    if (err < 0)
        return err;
    ne->nb_errors++;
    return 0;
}

static cJSON *value_json(const vkf_value *v)
{
    switch (v->kind) {
    case VKF_VAL_INT: {
        char *t = vkf_value_to_text(v);
        cJSON *j = t ? cJSON_CreateRaw(t) : NULL;
        vkf_free(t);
        return j;
    }
    case VKF_VAL_FLOAT:
        return isfinite(v->u.f) ? cJSON_CreateNumber(v->u.f) : cJSON_CreateNull();
    case VKF_VAL_STRING:
        return cJSON_CreateString(v->u.s);
    case VKF_VAL_BOOL:
        return cJSON_CreateBool(v->u.b);
    case VKF_VAL_JSON:
        return cJSON_CreateRaw(v->u.s);
    default:
        return cJSON_CreateNull();
    }
}

/* extra_info {input_name, input_config, received_value?} */
static cJSON *input_extra(vctx *c, const vkf_input_def *in, const vkf_value *received,
                          bool config)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    /* vkf_json_add consumes its item whether or not it succeeds. */
    if (!cJSON_AddStringToObject(o, "input_name", in->name) ||
        !vkf_json_add(o, "input_config",
                      config ? vkf_input_config_json(in, c->paths) : cJSON_CreateNull()) ||
        (received && !vkf_json_add(o, "received_value", value_json(received)))) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

bool vkf_types_match(const char *received, const char *wanted)
{
    if (!strcmp(received, wanted) || !strcmp(received, "*") || !strcmp(wanted, "*"))
        return true;
    /* Comma-separated sets match when they intersect. */
    const char *a = received;
    while (*a) {
        size_t la = strcspn(a, ",");
        const char *b = wanted;
        while (*b) {
            size_t lb = strcspn(b, ",");
            if (la == lb && !strncmp(a, b, la))
                return true;
            b += lb + (b[lb] == ',');
        }
        a += la + (a[la] == ',');
    }
    return false;
}

/*
 * Coerce a constant to the declared widget type.  Returns 0 and fills *out,
 * or 1 with *why set (a vkf_malloc'ed reason), or < 0.
 */
static int coerce(const vkf_input_def *in, const vkf_value *val, vkf_value *out, char **why)
{
    const char *t = in->type;
    *why = NULL;
    memset(out, 0, sizeof(*out));
    if (!strcmp(t, VKF_T_INT)) {
        switch (val->kind) {
        case VKF_VAL_INT:
            *out = *val;
            return 0;
        case VKF_VAL_BOOL:
            vkf_value_set_int(out, val->u.b);
            return 0;
        case VKF_VAL_FLOAT:
            if (isfinite(val->u.f) && val->u.f == floor(val->u.f) &&
                fabs(val->u.f) < 9.2e18) {
                vkf_value_set_int(out, (int64_t)val->u.f);
                return 0;
            }
            *why = vkf_strdup("not an exact integer (vkflow does not truncate)");
            return *why ? 1 : VKF_ENOMEM;
        case VKF_VAL_STRING: {
            char *end;
            errno = 0;
            const char *s = val->u.s;
            while (*s == ' ')
                s++;
            if (*s == '-') {
                long long x = strtoll(s, &end, 10);
                if (!errno && end != s && !*end) {
                    vkf_value_set_int(out, x);
                    return 0;
                }
            } else {
                unsigned long long x = strtoull(s, &end, 10);
                if (!errno && end != s && !*end) {
                    vkf_value_set_u64(out, x);
                    return 0;
                }
            }
            *why = vkf_asprintf("invalid literal for int() with base 10: '%s'", val->u.s);
            return *why ? 1 : VKF_ENOMEM;
        }
        default:
            break;
        }
    } else if (!strcmp(t, VKF_T_FLOAT)) {
        switch (val->kind) {
        case VKF_VAL_INT:
        case VKF_VAL_FLOAT:
        case VKF_VAL_BOOL:
            vkf_value_set_float(out, vkf_value_number(val));
            return 0;
        case VKF_VAL_STRING: {
            char *end;
            double x = strtod(val->u.s, &end);
            if (end != val->u.s && !*end) {
                vkf_value_set_float(out, x);
                return 0;
            }
            *why = vkf_asprintf("could not convert string to float: '%s'", val->u.s);
            return *why ? 1 : VKF_ENOMEM;
        }
        default:
            break;
        }
    } else if (!strcmp(t, VKF_T_STRING) || !strcmp(t, VKF_T_COMBO)) {
        if (val->kind == VKF_VAL_STRING)
            return vkf_value_copy(out, val);
        if (val->kind == VKF_VAL_INT || val->kind == VKF_VAL_FLOAT || val->kind == VKF_VAL_BOOL) {
            char *s = vkf_value_to_text(val);
            if (!s)
                return VKF_ENOMEM;
            *out = (vkf_value){.kind = VKF_VAL_STRING, .u.s = s};
            return 0;
        }
    } else if (!strcmp(t, VKF_T_BOOLEAN)) {
        switch (val->kind) {
        case VKF_VAL_BOOL:
            *out = *val;
            return 0;
        case VKF_VAL_INT:
        case VKF_VAL_FLOAT:
            vkf_value_set_bool(out, vkf_value_number(val) != 0);
            return 0;
        case VKF_VAL_STRING:
            /* Python truthiness, as ComfyUI's bool(x). */
            vkf_value_set_bool(out, val->u.s[0] != 0);
            return 0;
        default:
            break;
        }
    } else if (!strcmp(t, VKF_T_ANY)) {
        return vkf_value_copy(out, val);
    } else {
        *why = vkf_asprintf("a %s input must be linked to a node output, not given a constant", t);
        return *why ? 1 : VKF_ENOMEM;
    }
    *why = vkf_strdup("wrong JSON type for this input");
    return *why ? 1 : VKF_ENOMEM;
}

static int check_range(vctx *c, int i, const vkf_input_def *in, const vkf_value *val)
{
    char buf[64], msg[160];
    const char *type = NULL;
    if (!strcmp(in->type, VKF_T_INT)) {
        bool bounded = in->imin || in->imax || (in->flags & VKF_IN_U64);
        if (!bounded)
            return 0;
        if (val->is_u64) {
            if (!(in->flags & VKF_IN_U64)) {
                type = "value_bigger_than_max";
                snprintf(msg, sizeof(msg), "Value %" PRIu64 " bigger than max of %" PRId64,
                         (uint64_t)val->u.i, in->imax);
            }
        } else if (val->u.i < in->imin) {
            type = "value_smaller_than_min";
            snprintf(msg, sizeof(msg), "Value %" PRId64 " smaller than min of %" PRId64,
                     val->u.i, in->imin);
        } else if (!(in->flags & VKF_IN_U64) && val->u.i > in->imax) {
            type = "value_bigger_than_max";
            snprintf(msg, sizeof(msg), "Value %" PRId64 " bigger than max of %" PRId64,
                     val->u.i, in->imax);
        }
    } else if (!strcmp(in->type, VKF_T_FLOAT)) {
        char lim[64];
        if (in->fmin == 0 && in->fmax == 0)
            return 0;
        vkf_format_double(buf, sizeof(buf), val->u.f);
        if (isnan(val->u.f) || val->u.f < in->fmin) {
            type = "value_smaller_than_min";
            vkf_format_double(lim, sizeof(lim), in->fmin);
            snprintf(msg, sizeof(msg), "Value %s smaller than min of %s", buf, lim);
        } else if (val->u.f > in->fmax) {
            type = "value_bigger_than_max";
            vkf_format_double(lim, sizeof(lim), in->fmax);
            snprintf(msg, sizeof(msg), "Value %s bigger than max of %s", buf, lim);
        }
    }
    if (!type)
        return 0;
    return node_error(c, i, type, msg, in->name, in->name, input_extra(c, in, val, true));
}

static int check_combo(vctx *c, int i, const vkf_input_def *in, const vkf_value *val)
{
    /* Input-directory images (LoadImage) may carry " [output]" suffixes and
     * be uploaded after /object_info: as ComfyUI, the node's own validate
     * checks them instead of the list. */
    if (in->model_folder && !strcmp(in->model_folder, "input") && c->plan->nodes[i].def->validate)
        return 0;
    char **opts;
    int n, err = vkf_combo_options(in, c->paths, &opts, &n);
    if (err < 0)
        return err;
    const char *s = val->u.s;
    for (int k = 0; k < n; k++) {
        if (!strcmp(opts[k], s)) {
            vkf_strv_free(&opts, n);
            return 0;
        }
    }
    /* Details as ComfyUI: "name: 'v' not in [...]" or "(list of length N)". */
    char *list;
    if (n > 20) {
        list = vkf_asprintf("(list of length %d)", n);
    } else {
        size_t len = 3;
        for (int k = 0; k < n; k++)
            len += strlen(opts[k]) + 4;
        list = vkf_malloc(len);
        if (list) {
            char *p = list;
            *p++ = '[';
            for (int k = 0; k < n; k++)
                p += sprintf(p, "%s'%s'", k ? ", " : "", opts[k]);
            *p++ = ']';
            *p = 0;
        }
    }
    vkf_strv_free(&opts, n);
    char *details = list ? vkf_asprintf("%s: '%s' not in %s", in->name, s, list) : NULL;
    vkf_free(list);
    if (!details)
        return VKF_ENOMEM;
    err = node_error(c, i, "value_not_in_list", "Value not in list", details, in->name,
                     input_extra(c, in, val, n <= 20));
    vkf_free(details);
    return err;
}

static int validate_node(vctx *c, int i, bool *valid);

static int find_node(const vkf_plan *plan, const char *id)
{
    for (int k = 0; k < plan->nb; k++)
        if (!strcmp(plan->nodes[k].gn->id, id))
            return k;
    return -1;
}

static int report_cycle(vctx *c, int i, int src)
{
    /* The cycle is the DFS stack from src's position to the top. */
    int from = c->depth - 1;
    while (from > 0 && c->stack[from] != src)
        from--;
    size_t len = 1;
    for (int k = from; k < c->depth; k++)
        len += strlen(c->plan->nodes[c->stack[k]].gn->id) + 4;
    len += strlen(c->plan->nodes[src].gn->id);
    char *ids = vkf_malloc(len);
    if (!ids)
        return VKF_ENOMEM;
    char *p = ids;
    for (int k = from; k < c->depth; k++)
        p += sprintf(p, "%s -> ", c->plan->nodes[c->stack[k]].gn->id);
    sprintf(p, "%s", c->plan->nodes[src].gn->id);
    char *details = vkf_asprintf("nodes %s", ids);
    vkf_free(ids);
    if (!details)
        return VKF_ENOMEM;
    int err = node_error(c, i, "dependency_cycle", "Dependency cycle detected", details,
                         NULL, NULL);
    vkf_free(details);
    return err;
}

static int validate_link(vctx *c, int i, const vkf_input_def *in, const vkf_graph_input *gi,
                         vkf_resolved_input *ri, bool *valid)
{
    int err;
    int src = find_node(c->plan, gi->src_id);
    if (src < 0) {
        char *d = vkf_asprintf("input '%s' is linked to node '%s', which is not in the prompt",
                               in->name, gi->src_id);
        if (!d)
            return VKF_ENOMEM;
        err = node_error(c, i, "exception_during_validation", "Exception when validating node",
                         d, in->name, NULL);
        vkf_free(d);
        *valid = false;
        return err;
    }
    vkf_plan_node *sn = &c->plan->nodes[src];
    if (sn->state == VKF_PN_VISITING) {
        *valid = false;
        return report_cycle(c, i, src);
    }
    if (!sn->def) {
        *valid = false; /* unknown class: reported as invalid_prompt already */
        return 0;
    }
    if (gi->src_slot < 0 || gi->src_slot >= sn->def->nb_outputs) {
        char *d = vkf_asprintf("input '%s' is linked to output %d of node '%s' (%s), which has %d output%s",
                               in->name, gi->src_slot, gi->src_id, sn->def->name,
                               sn->def->nb_outputs, sn->def->nb_outputs == 1 ? "" : "s");
        if (!d)
            return VKF_ENOMEM;
        err = node_error(c, i, "exception_during_validation", "Exception when validating node",
                         d, in->name, NULL);
        vkf_free(d);
        *valid = false;
        return err;
    }
    const char *rtype = sn->def->outputs[gi->src_slot].type;
    const char *want = in->type;
    if (!vkf_types_match(rtype, want)) {
        char *d = vkf_asprintf("%s, received_type(%s) mismatch input_type(%s)", in->name,
                               rtype, want);
        cJSON *extra = cJSON_CreateObject();
        cJSON *ln = cJSON_CreateArray();
        bool ok = ln && cJSON_AddItemToArray(ln, cJSON_CreateString(gi->src_id)) &&
                  cJSON_AddItemToArray(ln, cJSON_CreateNumber(gi->src_slot));
        if (!ok) {
            cJSON_Delete(ln);
            ln = NULL;
        }
        ok = extra && vkf_json_add(extra, "linked_node", ln);
        if (!extra)
            cJSON_Delete(ln);
        ok = ok && d && cJSON_AddStringToObject(extra, "input_name", in->name) &&
             vkf_json_add(extra, "input_config", vkf_input_config_json(in, c->paths)) &&
             cJSON_AddStringToObject(extra, "received_type", rtype);
        if (!ok) {
            vkf_free(d);
            cJSON_Delete(extra);
            return VKF_ENOMEM;
        }
        err = node_error(c, i, "return_type_mismatch", "Return type mismatch between linked nodes",
                         d, in->name, extra);
        vkf_free(d);
        *valid = false;
        return err;
    }
    bool up_valid;
    err = validate_node(c, src, &up_valid);
    if (err < 0)
        return err;
    if (!up_valid)
        *valid = false;   /* not listed: the upstream node carries the error */
    ri->kind = VKF_RIN_LINK;
    ri->src = src;
    ri->slot = gi->src_slot;
    return 0;
}

static int validate_const(vctx *c, int i, const vkf_input_def *in, const vkf_graph_input *gi,
                          vkf_resolved_input *ri, bool *valid)
{
    char *why;
    vkf_value cv;
    int err = coerce(in, &gi->value, &cv, &why);
    if (err < 0)
        return err;
    if (err == 1) {
        char *rv = vkf_value_repr(&gi->value);
        char *d = rv ? vkf_asprintf("%s, %s, %s", in->name, rv, why) : NULL;
        char *m = vkf_asprintf("Failed to convert an input value to a %s value", in->type);
        vkf_free(rv);
        vkf_free(why);
        err = d && m ? node_error(c, i, "invalid_input_type", m, d, in->name,
                                  input_extra(c, in, &gi->value, true))
                     : VKF_ENOMEM;
        vkf_free(d);
        vkf_free(m);
        *valid = false;
        return err;
    }
    ri->kind = VKF_RIN_CONST;
    ri->value = cv;
    int before = c->plan->nodes[i].nerr >= 0 ? c->v->node_errors[c->plan->nodes[i].nerr].nb_errors : 0;
    if (!strcmp(in->type, VKF_T_INT) || !strcmp(in->type, VKF_T_FLOAT))
        err = check_range(c, i, in, &cv);
    else if (!strcmp(in->type, VKF_T_COMBO))
        err = check_combo(c, i, in, &cv);
    if (err < 0)
        return err;
    int after = c->plan->nodes[i].nerr >= 0 ? c->v->node_errors[c->plan->nodes[i].nerr].nb_errors : 0;
    if (after > before)
        *valid = false;
    return 0;
}

static int validate_node(vctx *c, int i, bool *valid)
{
    vkf_plan_node *pn = &c->plan->nodes[i];
    int err = 0;
    if (pn->state == VKF_PN_VALID || pn->state == VKF_PN_INVALID) {
        *valid = pn->state == VKF_PN_VALID;
        return 0;
    }
    *valid = true;
    pn->state = VKF_PN_VISITING;
    c->stack[c->depth++] = i;
    const vkf_node_def *def = pn->def;
    pn->in = vkf_calloc((size_t)def->nb_inputs + 1, sizeof(*pn->in));
    if (!pn->in) {
        err = VKF_ENOMEM;
        goto done;
    }
    for (int k = 0; k < def->nb_inputs; k++) {
        const vkf_input_def *in = &def->inputs[k];
        if (in->flags & VKF_IN_HIDDEN)
            continue;
        const vkf_graph_input *gi = vkf_graph_node_input(pn->gn, in->name);
        if (!gi) {
            if (!(in->flags & VKF_IN_OPTIONAL)) {
                *valid = false;
                cJSON *extra = input_extra(c, in, NULL, true);
                err = node_error(c, i, "required_input_missing", "Required input is missing",
                                 in->name, in->name, extra);
            }
        } else if (gi->bad_link) {
            *valid = false;
            err = node_error(c, i, "bad_linked_input",
                             "Bad linked input, must be a length-2 list of [node_id, slot_index]",
                             in->name, in->name, input_extra(c, in, NULL, true));
        } else if (gi->is_link) {
            err = validate_link(c, i, in, gi, &pn->in[k], valid);
        } else {
            err = validate_const(c, i, in, gi, &pn->in[k], valid);
        }
        if (err < 0)
            goto done;
    }
    if (*valid && def->validate) {
        vkf_value *vals = vkf_calloc((size_t)def->nb_inputs + 1, sizeof(*vals));
        if (!vals) {
            err = VKF_ENOMEM;
            goto done;
        }
        for (int k = 0; k < def->nb_inputs; k++)
            if (pn->in[k].kind == VKF_RIN_CONST)
                vals[k] = pn->in[k].value;   /* borrowed view */
        char *msg = def->validate(c->paths, vals);
        vkf_free(vals);
        if (msg) {
            *valid = false;
            err = node_error(c, i, "custom_validation_failed", "Custom validation failed for node",
                             msg, NULL, NULL);
            vkf_free(msg);
        }
    }
done:
    c->depth--;
    pn->state = *valid ? VKF_PN_VALID : VKF_PN_INVALID;
    return err;
}

void vkf_plan_free(vkf_plan **pp)
{
    vkf_plan *p = *pp;
    if (!p)
        return;
    for (int i = 0; p->nodes && i < p->nb; i++) {
        vkf_plan_node *pn = &p->nodes[i];
        if (pn->in) {
            for (int k = 0; k < pn->def->nb_inputs; k++)
                vkf_value_clear(&pn->in[k].value);
            vkf_free(pn->in);
        }
    }
    vkf_free(p->nodes);
    vkf_free(p->outputs);
    vkf_free(p);
    *pp = NULL;
}

static int top_error(vkf_validation *v, const char *type, const char *message,
                     const char *details)
{
    v->ok = false;
    return set_verr(&v->error, type, message, details, NULL, NULL);
}

/* The ids of nodes whose class is missing or unknown: one error for all. */
static int check_classes(vctx *c, bool *fatal)
{
    const vkf_graph *g = c->g;
    char *list = NULL;
    int nunknown = 0, err = 0;
    *fatal = false;
    for (int i = 0; i < g->nb_nodes; i++) {
        const vkf_graph_node *gn = &g->nodes[i];
        if (!gn->class_type) {
            char *d = vkf_asprintf("Node ID '#%s'", gn->id);
            err = d ? top_error(c->v, "invalid_prompt",
                                "Cannot execute because a node is missing the class_type property.", d)
                    : VKF_ENOMEM;
            vkf_free(d);
            *fatal = true;
            vkf_free(list);
            return err;
        }
        if (vkf_registry_find(c->reg, gn->class_type))
            continue;
        /* List each unknown class once. */
        bool seen = false;
        for (int k = 0; k < i; k++)
            if (!strcmp(g->nodes[k].class_type ? g->nodes[k].class_type : "", gn->class_type))
                seen = true;
        if (seen)
            continue;
        char *nl = vkf_asprintf("%s%s'%s' (node #%s)", list ? list : "", list ? ", " : "",
                                gn->class_type, gn->id);
        vkf_free(list);
        if (!(list = nl))
            return VKF_ENOMEM;
        nunknown++;
    }
    if (!nunknown)
        return 0;
    char *msg = vkf_asprintf("Cannot execute because node%s %s do%s not exist.",
                             nunknown > 1 ? "s" : "", list, nunknown > 1 ? "" : "es");
    char *det = vkf_asprintf("Unknown node class%s: %s", nunknown > 1 ? "es" : "", list);
    err = msg && det ? top_error(c->v, "invalid_prompt", msg, det) : VKF_ENOMEM;
    vkf_free(msg);
    vkf_free(det);
    vkf_free(list);
    *fatal = true;
    return err;
}

static bool is_target(const vkf_graph *g, const char *id)
{
    if (!g->nb_partial_targets)
        return true;
    for (int k = 0; k < g->nb_partial_targets; k++)
        if (!strcmp(g->partial_targets[k], id))
            return true;
    return false;
}

/* Appends output id o to the dependent_outputs of every node with errors
 * that o depends on. */
static int mark_dependents(vctx *c, int node, int o, char *seen)
{
    if (seen[node])
        return 0;
    seen[node] = 1;
    vkf_plan_node *pn = &c->plan->nodes[node];
    if (pn->nerr >= 0) {
        vkf_node_errors *ne = &c->v->node_errors[pn->nerr];
        char **d = vkf_realloc(ne->dependent_outputs, sizeof(*d) * (size_t)(ne->nb_dependent + 1));
        if (!d)
            return VKF_ENOMEM;
        ne->dependent_outputs = d;
        if (!(d[ne->nb_dependent] = vkf_strdup(c->plan->nodes[o].gn->id)))
            return VKF_ENOMEM;
        ne->nb_dependent++;
    }
    if (!pn->in)
        return 0;
    for (int k = 0; k < pn->def->nb_inputs; k++) {
        if (pn->in[k].kind == VKF_RIN_LINK) {
            int err = mark_dependents(c, pn->in[k].src, o, seen);
            if (err < 0)
                return err;
        }
    }
    /* Links that failed to resolve still point at upstream nodes with
     * errors; follow the graph's own links for those. */
    for (int k = 0; k < pn->gn->nb_inputs; k++) {
        const vkf_graph_input *gi = &pn->gn->inputs[k];
        if (!gi->is_link)
            continue;
        int src = find_node(c->plan, gi->src_id);
        if (src >= 0 && c->plan->nodes[src].state != VKF_PN_UNSEEN) {
            int err = mark_dependents(c, src, o, seen);
            if (err < 0)
                return err;
        }
    }
    return 0;
}

int vkf_plan_build(const vkf_graph *g, const vkf_registry *reg, const vkf_paths *paths,
                   vkf_validation *v, vkf_plan **out)
{
    int err;
    bool fatal;
    char *seen = NULL;
    vctx c = {.g = g, .reg = reg, .paths = paths, .v = v};
    memset(v, 0, sizeof(*v));
    *out = NULL;
    vkf_cjson_init();

    vkf_plan *plan = vkf_calloc(1, sizeof(*plan));
    VKF_CHECK_ALLOC(plan);
    c.plan = plan;
    plan->graph = g;
    plan->nb = g->nb_nodes;
    plan->nodes = vkf_calloc((size_t)g->nb_nodes + 1, sizeof(*plan->nodes));
    plan->outputs = vkf_calloc((size_t)g->nb_nodes + 1, sizeof(*plan->outputs));
    c.stack = vkf_calloc((size_t)g->nb_nodes + 1, sizeof(*c.stack));
    seen = vkf_calloc((size_t)g->nb_nodes + 1, 1);
    VKF_CHECK_ALLOC(plan->nodes);
    VKF_CHECK_ALLOC(plan->outputs);
    VKF_CHECK_ALLOC(c.stack);
    VKF_CHECK_ALLOC(seen);
    for (int i = 0; i < g->nb_nodes; i++) {
        plan->nodes[i].gn = &g->nodes[i];
        plan->nodes[i].def = vkf_registry_find(reg, g->nodes[i].class_type);
        plan->nodes[i].nerr = -1;
    }

    VKF_TRY(check_classes(&c, &fatal));
    if (fatal)
        goto done;

    int nout = 0;
    for (int i = 0; i < g->nb_nodes; i++) {
        if ((plan->nodes[i].def->flags & VKF_NODE_OUTPUT) && is_target(g, g->nodes[i].id)) {
            nout++;
            bool valid;
            VKF_TRY(validate_node(&c, i, &valid));
            if (valid) {
                char **o = vkf_realloc(v->outputs, sizeof(*o) * (size_t)(v->nb_outputs + 1));
                VKF_CHECK_ALLOC(o);
                v->outputs = o;
                VKF_CHECK_ALLOC(o[v->nb_outputs] = vkf_strdup(g->nodes[i].id));
                v->nb_outputs++;
                plan->outputs[plan->nb_outputs++] = i;
            } else {
                memset(seen, 0, (size_t)g->nb_nodes);
                VKF_TRY(mark_dependents(&c, i, i, seen));
            }
        }
    }
    if (!nout) {
        VKF_TRY(top_error(v, "prompt_no_outputs", "Prompt has no outputs", ""));
        goto done;
    }
    if (!v->nb_outputs) {
        /* details: every "<message>: <details>" joined by newlines */
        size_t len = 1;
        for (int k = 0; k < v->nb_node_errors; k++)
            for (int e = 0; e < v->node_errors[k].nb_errors; e++)
                len += strlen(v->node_errors[k].errors[e].message) +
                       strlen(v->node_errors[k].errors[e].details) + 3;
        char *details = vkf_malloc(len);
        VKF_CHECK_ALLOC(details);
        char *p = details;
        *p = 0;
        for (int k = 0; k < v->nb_node_errors; k++)
            for (int e = 0; e < v->node_errors[k].nb_errors; e++)
                p += sprintf(p, "%s%s: %s", p == details ? "" : "\n",
                             v->node_errors[k].errors[e].message,
                             v->node_errors[k].errors[e].details);
        err = top_error(v, "prompt_outputs_failed_validation", "Prompt outputs failed validation",
                        details);
        vkf_free(details);
        if (err < 0)
            goto fail;
        goto done;
    }
    v->ok = true;
    *out = plan;
    plan = NULL;
done:
    vkf_free(seen);
    vkf_free(c.stack);
    vkf_plan_free(&plan);
    return 0;
fail:
    vkf_free(seen);
    vkf_free(c.stack);
    vkf_plan_free(&plan);
    vkf_validation_clear(v);
    return err;
}

int vkf_validate(const vkf_graph *g, const vkf_registry *reg, const vkf_paths *paths,
                 vkf_validation *v)
{
    vkf_plan *plan;
    int err = vkf_plan_build(g, reg, paths, v, &plan);
    vkf_plan_free(&plan);
    return err;
}

static cJSON *verr_json(const vkf_validate_error *e)
{
    cJSON *o = cJSON_CreateObject();
    if (!o || !cJSON_AddStringToObject(o, "type", e->type) ||
        !cJSON_AddStringToObject(o, "message", e->message) ||
        !cJSON_AddStringToObject(o, "details", e->details)) {
        cJSON_Delete(o);
        return NULL;
    }
    if (!vkf_json_add(o, "extra_info", cJSON_Parse(e->extra_json ? e->extra_json : "{}"))) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

int vkf_validation_to_json(const vkf_validation *v, char **json, bool pretty)
{
    vkf_cjson_init();
    cJSON *root = cJSON_CreateObject();
    cJSON *nerrs = cJSON_CreateObject();
    bool ok = root && nerrs;
    if (ok && v->error.type)
        ok = vkf_json_add(root, "error", verr_json(&v->error));
    for (int k = 0; ok && k < v->nb_node_errors; k++) {
        const vkf_node_errors *ne = &v->node_errors[k];
        cJSON *o = cJSON_CreateObject();
        cJSON *errs = cJSON_CreateArray(), *dep = cJSON_CreateArray();
        for (int e = 0; errs && e < ne->nb_errors; e++) {
            cJSON *ej = verr_json(&ne->errors[e]);
            if (!ej || !cJSON_AddItemToArray(errs, ej)) {
                cJSON_Delete(errs);
                errs = NULL;
            }
        }
        for (int d = 0; dep && d < ne->nb_dependent; d++) {
            if (!cJSON_AddItemToArray(dep, cJSON_CreateString(ne->dependent_outputs[d]))) {
                cJSON_Delete(dep);
                dep = NULL;
            }
        }
        ok = vkf_json_add(o, "errors", errs);
        errs = NULL;
        ok = vkf_json_add(o, "dependent_outputs", dep) && ok;
        dep = NULL;
        ok = ok && cJSON_AddStringToObject(o, "class_type", ne->class_type);
        cJSON_Delete(errs);
        cJSON_Delete(dep);
        if (!ok) {
            cJSON_Delete(o);
            break;
        }
        ok = vkf_json_add(nerrs, ne->node_id, o);
    }
    if (ok)
        ok = vkf_json_add(root, "node_errors", nerrs);
    else
        cJSON_Delete(nerrs);
    char *s = ok ? (pretty ? cJSON_Print(root) : cJSON_PrintUnformatted(root)) : NULL;
    cJSON_Delete(root);
    if (!s)
        return VKF_ENOMEM;
    *json = s;
    return 0;
}

char *vkf_validation_to_text(const vkf_validation *v)
{
    char *out = vkf_strdup("");
    if (out && v->error.type && !(v->nb_node_errors && !strcmp(v->error.type,
                                                               "prompt_outputs_failed_validation"))) {
        char *n = vkf_asprintf("%s%s%s%s\n", v->error.message, v->error.details[0] ? " (" : "",
                               v->error.details, v->error.details[0] ? ")" : "");
        vkf_free(out);
        out = n;
    }
    for (int k = 0; out && k < v->nb_node_errors; k++) {
        const vkf_node_errors *ne = &v->node_errors[k];
        for (int e = 0; out && e < ne->nb_errors; e++) {
            const vkf_validate_error *er = &ne->errors[e];
            char *n;
            if (er->input_name)
                n = vkf_asprintf("%snode %s (%s) input '%s': %s: %s [%s]\n", out, ne->node_id,
                                 ne->class_type, er->input_name, er->message, er->details, er->type);
            else
                n = vkf_asprintf("%snode %s (%s): %s: %s [%s]\n", out, ne->node_id,
                                 ne->class_type, er->message, er->details, er->type);
            vkf_free(out);
            out = n;
        }
    }
    return out;
}
