/*
 * UI-format workflow -> API prompt, following the frontend's graphToPrompt
 * (src/utils/executionUtil.ts) and ExecutableNodeDTO's link resolution:
 *
 *  - widgets_values are mapped onto the node definition's widget inputs in
 *    declaration order, skipping the non-serialised companions
 *    (control_after_generate, the image upload button);
 *  - every linked input slot is then resolved through Reroutes (same slot),
 *    bypassed nodes (same-index input if its type fits, else an input of
 *    the wanted type) and PrimitiveNodes (their value replaces the widget);
 *  - virtual (Reroute, PrimitiveNode, Note, MarkdownNote), muted and
 *    bypassed nodes are not emitted, and links to nodes that were not
 *    emitted are removed.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "graph/load.h"

typedef struct uslot {
    const char *name;
    const char *type;      /* NULL when not a string: matches anything */
    const char *widget;    /* widget.name */
    bool linked;
    int64_t link;
} uslot;

typedef struct unode {
    char *id;
    const char *type;
    const char *title;
    int mode;
    uslot *in;
    int nb_in;
    const char **out_types;
    int nb_out;
    const cJSON *widgets;  /* widgets_values: array, object or NULL */
    const vkf_node_def *def;
    bool is_virtual, is_primitive;
} unode;

typedef struct ulink {
    int64_t id;
    char *origin, *target;
    int oslot, tslot;
} ulink;

typedef struct conv {
    unode *nodes;
    int nb;
    ulink *links;
    int nb_links;
    vkf_load_error *err;
    uint64_t rng;          /* xorshift64 state for {a|b} choices */
} conv;

enum { MODE_NEVER = 2, MODE_BYPASS = 4 };
enum { R_NONE, R_LINK, R_CONST };

typedef struct resolved {
    int kind;
    const unode *node;     /* R_LINK: origin node */
    int slot;              /* R_LINK: origin slot */
    const cJSON *value;    /* R_CONST: the PrimitiveNode's value */
} resolved;

static const char *const virtual_types[] = {"Reroute", "PrimitiveNode", "Note", "MarkdownNote"};

/* A node id (number or string) as text; NULL item -> VKF_EINVAL. */
static int id_text(const cJSON *item, char **out)
{
    char buf[32];
    int64_t i;
    *out = NULL;
    if (cJSON_IsString(item))
        *out = vkf_strdup(item->valuestring);
    else if (vkf_json_int(item, &i))
        *out = (snprintf(buf, sizeof(buf), "%lld", (long long)i), vkf_strdup(buf));
    else
        return VKF_EINVAL;
    return *out ? 0 : VKF_ENOMEM;
}

static const char *str_or_null(const cJSON *item)
{
    return cJSON_IsString(item) ? item->valuestring : NULL;
}

static void conv_free(conv *c)
{
    for (int i = 0; i < c->nb; i++) {
        vkf_free(c->nodes[i].id);
        vkf_free(c->nodes[i].in);
        vkf_free(c->nodes[i].out_types);
    }
    vkf_free(c->nodes);
    for (int i = 0; i < c->nb_links; i++) {
        vkf_free(c->links[i].origin);
        vkf_free(c->links[i].target);
    }
    vkf_free(c->links);
}

static int oom(conv *c)
{
    return vkf_load_fail(c->err, VKF_ENOMEM, "out of memory");
}

static int read_node(conv *c, const cJSON *jn, int index, const vkf_registry *reg)
{
    unode *n = &c->nodes[c->nb];
    memset(n, 0, sizeof(*n));
    int err = id_text(vkf_json_get(jn, "id"), &n->id);
    if (err == VKF_ENOMEM)
        return oom(c);
    if (err < 0)
        return vkf_load_fail(c->err, VKF_EPARSE, "UI workflow: node at index %d has no valid id", index);
    c->nb++;
    n->type = str_or_null(vkf_json_get(jn, "type"));
    n->title = str_or_null(vkf_json_get(jn, "title"));
    int64_t mode = 0;
    vkf_json_int(vkf_json_get(jn, "mode"), &mode);
    n->mode = mode == MODE_NEVER || mode == MODE_BYPASS ? (int)mode : 0;
    n->widgets = vkf_json_get(jn, "widgets_values");
    if (!cJSON_IsArray(n->widgets) && !cJSON_IsObject(n->widgets))
        n->widgets = NULL;
    for (size_t i = 0; n->type && i < VKF_ARRAY_SIZE(virtual_types); i++)
        if (!strcmp(n->type, virtual_types[i]))
            n->is_virtual = true;
    n->is_primitive = n->type && !strcmp(n->type, "PrimitiveNode");
    n->def = n->type && !n->is_virtual ? vkf_registry_find(reg, n->type) : NULL;

    const cJSON *ins = vkf_json_get(jn, "inputs");
    int nin = cJSON_IsArray(ins) ? cJSON_GetArraySize(ins) : 0;
    if (nin && !(n->in = vkf_calloc((size_t)nin, sizeof(*n->in))))
        return oom(c);
    for (const cJSON *s = nin ? ins->child : NULL; s; s = s->next) {
        uslot *u = &n->in[n->nb_in++];
        if (!cJSON_IsObject(s))
            continue;
        u->name = str_or_null(vkf_json_get(s, "name"));
        u->type = str_or_null(vkf_json_get(s, "type"));
        const cJSON *w = vkf_json_get(s, "widget");
        u->widget = cJSON_IsObject(w) ? str_or_null(vkf_json_get(w, "name")) : NULL;
        u->linked = vkf_json_int(vkf_json_get(s, "link"), &u->link);
    }
    const cJSON *outs = vkf_json_get(jn, "outputs");
    int nout = cJSON_IsArray(outs) ? cJSON_GetArraySize(outs) : 0;
    if (nout && !(n->out_types = vkf_calloc((size_t)nout, sizeof(*n->out_types))))
        return oom(c);
    for (const cJSON *s = nout ? outs->child : NULL; s; s = s->next)
        n->out_types[n->nb_out++] = cJSON_IsObject(s) ? str_or_null(vkf_json_get(s, "type")) : NULL;
    return 0;
}

/* Array form [id, origin, origin_slot, target, target_slot, type] or
 * schema-1 objects; malformed entries (old files hold nulls) are skipped. */
static int read_link(conv *c, const cJSON *jl)
{
    const cJSON *f[5] = {0};
    if (cJSON_IsArray(jl)) {
        const cJSON *e = jl->child;
        for (int i = 0; i < 5 && e; i++, e = e->next)
            f[i] = e;
    } else if (cJSON_IsObject(jl)) {
        static const char *const keys[] = {"id", "origin_id", "origin_slot", "target_id", "target_slot"};
        for (int i = 0; i < 5; i++)
            f[i] = vkf_json_get(jl, keys[i]);
    }
    ulink l = {0};
    int64_t os, ts;
    if (!vkf_json_int(f[0], &l.id) || !vkf_json_int(f[2], &os) || !vkf_json_int(f[4], &ts) ||
        os < 0 || os > INT32_MAX || ts < 0 || ts > INT32_MAX)
        return 0;
    int e1 = id_text(f[1], &l.origin);
    int e2 = id_text(f[3], &l.target);
    if (e1 < 0 || e2 < 0) {
        vkf_free(l.origin);
        vkf_free(l.target);
        return e1 == VKF_ENOMEM || e2 == VKF_ENOMEM ? oom(c) : 0;
    }
    l.oslot = (int)os;
    l.tslot = (int)ts;
    c->links[c->nb_links++] = l;
    return 0;
}

static const unode *find_node(const conv *c, const char *id)
{
    for (int i = 0; i < c->nb; i++)
        if (!strcmp(c->nodes[i].id, id))
            return &c->nodes[i];
    return NULL;
}

static const ulink *find_link(const conv *c, int64_t id)
{
    for (int i = 0; i < c->nb_links; i++)
        if (c->links[i].id == id)
            return &c->links[i];
    return NULL;
}

/* LiteGraph.isValidConnection: "" and "*" match anything, otherwise a
 * case-insensitive match of single types or of comma-separated sets. */
static bool valid_connection(const char *a, const char *b)
{
    if (!a || !b || !*a || !*b || !strcmp(a, "*") || !strcmp(b, "*") || !strcmp(a, b))
        return true;
    for (const char *pa = a; *pa;) {
        size_t la = strcspn(pa, ",");
        for (const char *pb = b; *pb;) {
            size_t lb = strcspn(pb, ",");
            if (la == lb && !strncasecmp(pa, pb, la))
                return true;
            pb += lb + (pb[lb] == ',');
        }
        pa += la + (pa[la] == ',');
    }
    return false;
}

/* ExecutableNodeDTO#getBypassSlotIndex. */
static int bypass_slot(const unode *n, int slot, const char *type)
{
    const char *out_type = slot < n->nb_out ? n->out_types[slot] : NULL;
    if (!type || !*type || !strcmp(type, "*"))
        return n->nb_in > slot ? slot : 0;
    if (slot < n->nb_in && valid_connection(n->in[slot].type, out_type) &&
        valid_connection(n->in[slot].type, type))
        return slot;
    for (int i = 0; i < n->nb_in; i++)
        if (n->in[i].type && !strcmp(n->in[i].type, type))
            return i;
    for (int i = 0; i < n->nb_in; i++)
        if (valid_connection(n->in[i].type, out_type) && valid_connection(n->in[i].type, type))
            return i;
    return -1;
}

static int resolve_output(conv *c, const unode *n, int slot, const char *type, int *budget,
                          bool via_bypass, resolved *r);

/* Follows the link into input `slot` of n. */
static int resolve_input(conv *c, const unode *n, int slot, const char *type, int *budget,
                         bool via_bypass, resolved *r)
{
    r->kind = R_NONE;
    if (slot < 0 || slot >= n->nb_in || !n->in[slot].linked)
        return 0;
    if (--*budget < 0)
        return vkf_load_fail(c->err, VKF_EPARSE,
                             "UI workflow: links form a loop through node %s", n->id);
    const ulink *l = find_link(c, n->in[slot].link);
    const unode *origin = l ? find_node(c, l->origin) : NULL;
    if (!origin)
        return 0;
    return resolve_output(c, origin, l->oslot, type ? type : n->in[slot].type, budget, via_bypass, r);
}

static int resolve_output(conv *c, const unode *n, int slot, const char *type, int *budget,
                          bool via_bypass, resolved *r)
{
    r->kind = R_NONE;
    if (n->mode == MODE_BYPASS) {
        int idx = bypass_slot(n, slot, type);
        return idx < 0 ? 0 : resolve_input(c, n, idx, NULL, budget, true, r);
    }
    if (n->is_primitive) {
        /* applyToGraph wrote the value into the widgets it feeds directly
         * (or through Reroutes); the link itself resolves to nothing. */
        if (!via_bypass && cJSON_IsArray(n->widgets) && n->widgets->child) {
            r->kind = R_CONST;
            r->value = n->widgets->child;
        }
        return 0;
    }
    if (n->is_virtual)
        return slot < n->nb_in ? resolve_input(c, n, slot, type, budget, via_bypass, r) : 0;
    r->kind = R_LINK;
    r->node = n;
    r->slot = slot;
    return 0;
}

static bool is_widget(const vkf_input_def *in)
{
    if (in->flags & (VKF_IN_HIDDEN | VKF_IN_FORCE_INPUT))
        return false;
    const char *t = in->type;
    return !strcmp(t, VKF_T_INT) || !strcmp(t, VKF_T_FLOAT) || !strcmp(t, VKF_T_STRING) ||
           !strcmp(t, VKF_T_BOOLEAN) || !strcmp(t, VKF_T_COMBO);
}

/* Non-serialised widgets the frontend adds right after this one. */
static int companions(const vkf_input_def *in)
{
    int n = 0;
    if (!strcmp(in->type, VKF_T_INT)) {
        bool seed_name = !strcmp(in->name, "seed") || !strcmp(in->name, "noise_seed");
        if ((in->flags & VKF_IN_SEED_CONTROL) || (seed_name && !(in->flags & VKF_IN_NO_SEED_CONTROL)))
            n++;
    } else if (!strcmp(in->type, VKF_T_COMBO)) {
        if (in->flags & VKF_IN_COMBO_CONTROL)
            n++;
        if (in->flags & VKF_IN_IMAGE_UPLOAD)
            n++;
    }
    return n;
}

/* The declared default of a widget; false when there is none (a combo
 * listing files). */
static int default_value(const vkf_input_def *in, vkf_value *v, bool *have)
{
    *have = true;
    if (!strcmp(in->type, VKF_T_INT)) {
        vkf_value_set_int(v, in->idef);
    } else if (!strcmp(in->type, VKF_T_FLOAT)) {
        vkf_value_set_float(v, in->fdef);
    } else if (!strcmp(in->type, VKF_T_BOOLEAN)) {
        vkf_value_set_bool(v, in->bdef);
    } else if (!strcmp(in->type, VKF_T_STRING)) {
        return vkf_value_set_string(v, in->sdef ? in->sdef : "");
    } else {
        const char *d = in->sdef ? in->sdef : in->options ? in->options[0] : NULL;
        if (!d) {
            *have = false;
            return 0;
        }
        return vkf_value_set_string(v, d);
    }
    return 0;
}

/* ---- dynamic prompts -------------------------------------------------------
 * The frontend's processDynamicPrompt (src/utils/formatUtil.ts), applied when
 * a dynamicPrompts STRING widget is serialised: C comments are removed and
 * every {a|b|c} (nestable, backslash escapes) is replaced by one option
 * chosen at random; finally \{ \} \| lose their backslash. */

#define MAX_DYN_DEPTH 64

static uint64_t next_random(conv *c)
{
    c->rng ^= c->rng << 13;
    c->rng ^= c->rng >> 7;
    c->rng ^= c->rng << 17;
    return c->rng;
}

/* JS `//.*` stops at \n, \r, U+2028 and U+2029. */
static size_t line_end(const char *s)
{
    size_t i = 0;
    while (s[i] && s[i] != '\n' && s[i] != '\r' &&
           !((unsigned char)s[i] == 0xE2 && (unsigned char)s[i + 1] == 0x80 &&
             ((unsigned char)s[i + 2] == 0xA8 || (unsigned char)s[i + 2] == 0xA9)))
        i++;
    return i;
}

/* s.replace(/\/\*[\s\S]*?\*\/|\/\/.*\/g, '') */
static void strip_comments(vkf_sb *out, const char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        if (s[i] == '/' && i + 1 < n && s[i + 1] == '*') {
            const char *end = NULL;
            for (size_t k = i + 2; k + 1 < n; k++)
                if (s[k] == '*' && s[k + 1] == '/') {
                    end = s + k + 2;
                    break;
                }
            if (end) {
                i = (size_t)(end - s);
                continue;
            }
        }
        if (s[i] == '/' && i + 1 < n && s[i + 1] == '/') {
            i += line_end(s + i);
            continue;
        }
        vkf_sb_putc(out, s[i++]);
    }
}

static int dyn_prompt(conv *c, const char *src, size_t n, int depth, vkf_sb *out);

/* Inside {...}: collect the options up to the matching '}' and expand one. */
static int dyn_choice(conv *c, const char *s, size_t n, size_t *i, int depth, vkf_sb *out)
{
    size_t start = *i, chosen_start = 0, chosen_len = 0;
    int nb_options = 0, level = 0;
    vkf_sb opt = {0};
    /* First pass: count the options. */
    for (size_t k = start; k < n; k++) {
        if (s[k] == '\\') {
            k++;
            continue;
        }
        if (s[k] == '{')
            level++;
        else if (s[k] == '}' && !level--)
            break;
        else if (s[k] == '|' && !level)
            nb_options++;
    }
    nb_options++;
    int pick = (int)(next_random(c) % (uint64_t)nb_options);
    /* Second pass: keep the text of the chosen option. */
    int index = 0;
    level = 0;
    chosen_start = start;
    size_t k = start;
    for (; k < n; k++) {
        if (s[k] == '\\') {
            k++;
            continue;
        }
        if (s[k] == '{') {
            level++;
        } else if (s[k] == '}') {
            if (!level)
                break;
            level--;
        } else if (s[k] == '|' && !level) {
            if (index == pick)
                break;
            index++;
            chosen_start = k + 1;
        }
    }
    chosen_len = (k < n ? k : n) - chosen_start;
    if (chosen_len > n - chosen_start)
        chosen_len = n - chosen_start;
    /* Skip to after the closing brace. */
    level = 0;
    for (k = start; k < n; k++) {
        if (s[k] == '\\') {
            k++;
            continue;
        }
        if (s[k] == '{')
            level++;
        else if (s[k] == '}' && !level--)
            break;
    }
    *i = k < n ? k + 1 : n;
    vkf_sb_putn(&opt, s + chosen_start, chosen_len);
    int err = opt.failed ? VKF_ENOMEM : dyn_prompt(c, opt.buf ? opt.buf : "", opt.len, depth + 1, out);
    vkf_sb_free(&opt);
    return err;
}

static int dyn_prompt(conv *c, const char *src, size_t n, int depth, vkf_sb *out)
{
    if (depth > MAX_DYN_DEPTH)
        return vkf_load_fail(c->err, VKF_EPARSE, "dynamic prompt nests {...} more than %d deep", MAX_DYN_DEPTH);
    vkf_sb text = {0}, res = {0};
    int err = 0;
    strip_comments(&text, src, n);
    const char *s = text.buf ? text.buf : "";
    size_t len = text.len;
    for (size_t i = 0; i < len && !err;) {
        char ch = s[i++];
        if (ch == '\\') {
            vkf_sb_putc(&res, '\\');
            if (i < len)
                vkf_sb_putc(&res, s[i++]);
        } else if (ch == '{') {
            err = dyn_choice(c, s, len, &i, depth, &res);
        } else {
            vkf_sb_putc(&res, ch);
        }
    }
    if (!err && (text.failed || res.failed))
        err = VKF_ENOMEM;
    for (size_t i = 0; !err && i < res.len; i++) {
        if (res.buf[i] == '\\' && i + 1 < res.len && strchr("{}|", res.buf[i + 1]) && res.buf[i + 1])
            i++;
        vkf_sb_putc(out, res.buf[i]);
    }
    vkf_sb_free(&text);
    vkf_sb_free(&res);
    if (err == VKF_ENOMEM)
        return oom(c);
    return err;
}

static int process_dynamic_prompt(conv *c, vkf_value *v)
{
    if (v->kind != VKF_VAL_STRING || !strpbrk(v->u.s, "{/\\"))
        return 0;
    vkf_sb out = {0};
    int err = dyn_prompt(c, v->u.s, strlen(v->u.s), 0, &out);
    char *text;
    if (err < 0) {
        vkf_sb_free(&out);
        return err;
    }
    if (vkf_sb_finish(&out, &text) < 0)
        return oom(c);
    vkf_free(v->u.s);
    v->u.s = text;
    return 0;
}

static int put_value(conv *c, vkf_graph_node *gn, const char *name, const cJSON *item,
                     const vkf_input_def *def)
{
    vkf_graph_input in = {0};
    int err;
    if (item) {
        err = vkf_json_to_value(item, &in.value);
    } else {
        bool have;
        err = default_value(def, &in.value, &have);
        if (err == 0 && !have)
            return 0;
    }
    if (err == 0 && (def->flags & VKF_IN_DYNAMIC_PROMPTS) && (err = process_dynamic_prompt(c, &in.value)) < 0) {
        vkf_graph_input_clear(&in);
        return err;
    }
    if (err < 0 || vkf_graph_node_put(gn, name, &in) < 0) {
        vkf_graph_input_clear(&in);
        return oom(c);
    }
    return 0;
}

static int emit_node(conv *c, const unode *n, vkf_graph *g, int budget_max)
{
    const vkf_node_def *def = n->def;
    vkf_graph_node *gn = vkf_graph_add_node(g, n->id);
    if (!gn || !(gn->class_type = vkf_strdup(n->type)))
        return oom(c);
    const char *title = n->title ? n->title : def->display_name ? def->display_name : def->name;
    if (!(gn->title = vkf_strdup(title)))
        return oom(c);

    int w = 0;
    int nvals = cJSON_IsArray(n->widgets) ? cJSON_GetArraySize(n->widgets) : 0;
    const cJSON *wv = cJSON_IsArray(n->widgets) ? n->widgets->child : NULL;
    for (int i = 0; i < def->nb_inputs; i++) {
        const vkf_input_def *in = &def->inputs[i];
        if (!is_widget(in))
            continue;
        const cJSON *item = NULL;
        if (cJSON_IsObject(n->widgets))
            item = vkf_json_get(n->widgets, in->name);
        else if (w < nvals)
            item = wv;
        int step = 1 + companions(in);
        for (int k = 0; k < step && wv; k++)
            wv = wv->next;
        w += step;
        int err = put_value(c, gn, in->name, item, in);
        if (err < 0)
            return err;
    }

    for (int s = 0; s < n->nb_in; s++) {
        const uslot *u = &n->in[s];
        const char *name = u->name ? u->name : u->widget;
        if (!u->linked || !name)
            continue;
        resolved r;
        int budget = budget_max;
        int err = resolve_input(c, n, s, NULL, &budget, false, &r);
        if (err < 0)
            return err;
        if (r.kind == R_CONST) {
            const vkf_input_def *in = NULL;
            for (int i = 0; i < def->nb_inputs; i++)
                if (!strcmp(def->inputs[i].name, u->widget ? u->widget : name))
                    in = &def->inputs[i];
            if (in && is_widget(in) && (err = put_value(c, gn, in->name, r.value, in)) < 0)
                return err;
        } else if (r.kind == R_LINK) {
            vkf_graph_input gi = {.is_link = true, .src_slot = r.slot};
            if (!(gi.src_id = vkf_strdup(r.node->id)) || vkf_graph_node_put(gn, name, &gi) < 0) {
                vkf_graph_input_clear(&gi);
                return oom(c);
            }
        }
    }
    return 0;
}

/* Checks the node types before converting: subgraphs and group nodes are
 * refused, unknown classes are all listed in one error. */
static int check_types(conv *c, const cJSON *root)
{
    const cJSON *defs = vkf_json_get(root, "definitions");
    const cJSON *subgraphs = cJSON_IsObject(defs) ? vkf_json_get(defs, "subgraphs") : NULL;
    vkf_load_error *e = c->err;
    char **unknown = NULL;
    int nb_unknown = 0, ret;
    vkf_sb msg = {0};

    for (int i = 0; i < c->nb; i++) {
        const unode *n = &c->nodes[i];
        if (n->mode == MODE_NEVER || n->mode == MODE_BYPASS || n->is_virtual)
            continue;
        if (!n->type) {
            ret = vkf_load_fail(e, VKF_EPARSE, "UI workflow: node %s has no type", n->id);
            goto out;
        }
        for (const cJSON *sg = cJSON_IsArray(subgraphs) ? subgraphs->child : NULL; sg; sg = sg->next) {
            const char *sid = str_or_null(vkf_json_get(sg, "id"));
            if (sid && !strcmp(sid, n->type)) {
                const char *name = str_or_null(vkf_json_get(sg, "name"));
                ret = vkf_load_fail(e, VKF_EUNSUPPORTED, "subgraphs are not supported: node %s (%s)",
                                    n->id, name ? name : n->type);
                goto out;
            }
        }
        if (!strncmp(n->type, "workflow>", 9) || !strncmp(n->type, "workflow/", 9)) {
            ret = vkf_load_fail(e, VKF_EUNSUPPORTED, "group nodes are not supported: node %s (%s)",
                                n->id, n->type);
            goto out;
        }
        if (n->def)
            continue;
        bool seen = false;
        for (int k = 0; k < nb_unknown; k++)
            seen |= !strcmp(unknown[k], n->type);
        if (seen)
            continue;
        char **nu = vkf_realloc(unknown, sizeof(*nu) * (size_t)(nb_unknown + 1));
        if (!nu)
            goto oom;
        unknown = nu;
        if (!(unknown[nb_unknown] = vkf_strdup(n->type)))
            goto oom;
        nb_unknown++;
    }
    if (!nb_unknown)
        return 0;
    vkf_sb_puts(&msg, nb_unknown == 1 ? "the workflow uses a node type vkflow does not have: "
                                      : "the workflow uses node types vkflow does not have: ");
    for (int k = 0; k < nb_unknown; k++) {
        vkf_sb_puts(&msg, k ? ", " : "");
        vkf_sb_puts(&msg, unknown[k]);
    }
    ret = VKF_ENOTFOUND;
    if (e) {
        vkf_free(e->message);
        if (vkf_sb_finish(&msg, &e->message) < 0)
            goto oom;
        e->code = VKF_ENOTFOUND;
        e->unknown_classes = unknown;
        e->nb_unknown = nb_unknown;
        return VKF_ENOTFOUND;
    }
    goto out;
oom:
    ret = oom(c);
out:
    for (int k = 0; k < nb_unknown; k++)
        vkf_free(unknown[k]);
    vkf_free(unknown);
    vkf_sb_free(&msg);
    return ret;
}

int vkf_ui_convert(const cJSON *root, const vkf_registry *reg, vkf_graph *g, vkf_load_error *err)
{
    conv c = {.err = err};
    struct timespec ts = {0};
    timespec_get(&ts, TIME_UTC);
    c.rng = ((uint64_t)ts.tv_sec * 1000000007u) ^ (uint64_t)ts.tv_nsec ^ (uint64_t)(uintptr_t)&c;
    if (!c.rng)
        c.rng = 0x9E3779B97F4A7C15u;
    int ret;
    const cJSON *nodes = vkf_json_get(root, "nodes");
    const cJSON *links = vkf_json_get(root, "links");
    int nn = cJSON_GetArraySize(nodes);
    int nl = cJSON_IsArray(links) ? cJSON_GetArraySize(links) : 0;
    if ((nn && !(c.nodes = vkf_calloc((size_t)nn, sizeof(*c.nodes)))) ||
        (nl && !(c.links = vkf_calloc((size_t)nl, sizeof(*c.links))))) {
        ret = oom(&c);
        goto done;
    }
    int index = 0;
    for (const cJSON *jn = nodes->child; jn; jn = jn->next, index++) {
        if (!cJSON_IsObject(jn)) {
            ret = vkf_load_fail(err, VKF_EPARSE, "UI workflow: node at index %d is not an object", index);
            goto done;
        }
        if ((ret = read_node(&c, jn, index, reg)) < 0)
            goto done;
    }
    for (const cJSON *jl = nl ? links->child : NULL; jl; jl = jl->next)
        if ((ret = read_link(&c, jl)) < 0)
            goto done;
    if ((ret = check_types(&c, root)) < 0)
        goto done;

    for (int i = 0; i < c.nb; i++) {
        const unode *n = &c.nodes[i];
        if (n->is_virtual || n->mode == MODE_NEVER || n->mode == MODE_BYPASS)
            continue;
        if (vkf_graph_find(g, n->id)) {
            ret = vkf_load_fail(err, VKF_EPARSE, "UI workflow: node id %s appears twice", n->id);
            goto done;
        }
        if ((ret = emit_node(&c, n, g, c.nb_links + 1)) < 0)
            goto done;
    }
    /* Links from nodes that were not emitted (muted) are dropped. */
    for (int i = 0; i < g->nb_nodes; i++) {
        vkf_graph_node *gn = &g->nodes[i];
        for (int k = gn->nb_inputs - 1; k >= 0; k--)
            if (gn->inputs[k].is_link && !vkf_graph_find(g, gn->inputs[k].src_id))
                vkf_graph_node_remove_input(gn, k);
    }
    ret = 0;
done:
    conv_free(&c);
    return ret;
}
