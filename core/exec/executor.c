/*
 * The executor: runs the nodes output nodes need, in dependency order,
 * with ComfyUI's list semantics, a cache of outputs keyed by each node's
 * input signature (class, constants, fingerprint, and the signatures of
 * everything upstream), and ComfyUI's progress events.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "exec/internal.h"
#include "graph/internal.h"
#include "vkflow/executor.h"
#include "vkflow/preview.h"

typedef struct sig128 {
    uint64_t a, b;
} sig128;

typedef struct cache_entry {
    sig128 sig;
    vkf_list *out;        /* one list per output slot */
    int nb_out;
    cJSON *ui;            /* output nodes' UI dict, or NULL */
    bool used;            /* wanted by the current prompt */
} cache_entry;

struct vkf_executor {
    vkf_executor_params p;
    atomic_int interrupt;
    cache_entry *cache;
    int nb_cache, cap_cache;
    uint64_t nonce;       /* makes "always run" signatures unique */
    vkf_gpu_params gpu_params;
    vkf_gpu *gpu;         /* created on first use */
    int gpu_error;        /* creation failed with this code: don't retry */
    int last_executed, last_cached;
};

struct vkf_exec_ctx {
    vkf_executor *ex;
    const vkf_graph *g;
    const vkf_plan_node *pn;
    const char *prompt_id;
    char *error;
    cJSON *ui;
};

/* ---- small helpers -------------------------------------------------------- */

static void sig_bytes(sig128 *s, const void *data, size_t n)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) {
        s->a = (s->a ^ p[i]) * 0x100000001b3ULL;
        s->b = (s->b ^ p[i]) * 0x9e3779b97f4a7c15ULL;
        s->b ^= s->b >> 29;
    }
}

static void sig_str(sig128 *s, const char *str)
{
    sig_bytes(s, str, strlen(str) + 1);
}

static void sig_u64(sig128 *s, uint64_t v)
{
    sig_bytes(s, &v, sizeof(v));
}

static int64_t now_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* ---- events --------------------------------------------------------------- */

static void emit(vkf_executor *ex, const char *type, cJSON *data, const char *prompt_id,
                 const char *node_id, const char *class_type, int64_t value, int64_t max)
{
    if (!ex->p.on_event || !data) {
        cJSON_Delete(data);
        return;
    }
    char *json = cJSON_PrintUnformatted(data);
    cJSON_Delete(data);
    if (!json)
        return;   /* progress events are best effort */
    vkf_event ev = {.type = type, .data_json = json, .prompt_id = prompt_id,
                    .node_id = node_id, .class_type = class_type, .value = value, .max = max};
    ex->p.on_event(ex->p.event_priv, &ev);
    vkf_free(json);
}

static cJSON *data_with_prompt(const char *prompt_id)
{
    cJSON *d = cJSON_CreateObject();
    if (d && !cJSON_AddStringToObject(d, "prompt_id", prompt_id)) {
        cJSON_Delete(d);
        return NULL;
    }
    return d;
}

static cJSON *add_timestamp(cJSON *d)
{
    if (d && !cJSON_AddNumberToObject(d, "timestamp", (double)now_ms())) {
        cJSON_Delete(d);
        return NULL;
    }
    return d;
}

static void emit_executing(vkf_executor *ex, const char *prompt_id, const vkf_plan_node *pn)
{
    cJSON *d = data_with_prompt(prompt_id);
    bool ok = d != NULL;
    if (ok && pn)
        ok = cJSON_AddStringToObject(d, "node", pn->gn->id) &&
             cJSON_AddStringToObject(d, "display_node", pn->gn->id);
    else if (ok)
        ok = cJSON_AddNullToObject(d, "node") && cJSON_AddNullToObject(d, "display_node");
    if (!ok) {
        cJSON_Delete(d);
        return;
    }
    emit(ex, "executing", d, prompt_id, pn ? pn->gn->id : NULL,
         pn ? pn->def->name : NULL, 0, 0);
}

static void emit_executed(vkf_executor *ex, const char *prompt_id, const vkf_plan_node *pn,
                          const cJSON *ui)
{
    cJSON *d = data_with_prompt(prompt_id);
    if (!d || !cJSON_AddStringToObject(d, "node", pn->gn->id) ||
        !cJSON_AddStringToObject(d, "display_node", pn->gn->id) ||
        !vkf_json_add(d, "output", cJSON_Duplicate(ui, true))) {
        cJSON_Delete(d);
        return;
    }
    emit(ex, "executed", d, prompt_id, pn->gn->id, pn->def->name, 0, 0);
}

static cJSON *id_array(const vkf_plan *plan, const int *idx, int n)
{
    cJSON *a = cJSON_CreateArray();
    for (int k = 0; a && k < n; k++) {
        if (!cJSON_AddItemToArray(a, cJSON_CreateString(plan->nodes[idx[k]].gn->id))) {
            cJSON_Delete(a);
            a = NULL;
        }
    }
    return a;
}

/* ---- the services of vkf_exec_ctx ---------------------------------------- */

const char *vkf_exec_node_id(const vkf_exec_ctx *ctx) { return ctx->pn->gn->id; }
const vkf_node_def *vkf_exec_node_def(const vkf_exec_ctx *ctx) { return ctx->pn->def; }
const vkf_log *vkf_exec_log(const vkf_exec_ctx *ctx) { return ctx->ex->p.log; }
const vkf_paths *vkf_exec_paths(const vkf_exec_ctx *ctx) { return ctx->ex->p.paths; }
const char *vkf_exec_prompt_json(const vkf_exec_ctx *ctx) { return ctx->g->prompt_json; }
const char *vkf_exec_workflow_json(const vkf_exec_ctx *ctx) { return ctx->g->workflow_json; }

int vkf_exec_error(vkf_exec_ctx *ctx, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = vkf_vasprintf(fmt, ap);
    va_end(ap);
    if (msg) {
        vkf_free(ctx->error);
        ctx->error = msg;
    }
    return VKF_ERUN;
}

int vkf_exec_gpu(vkf_exec_ctx *ctx, vkf_gpu **gpu)
{
    vkf_executor *ex = ctx->ex;
    if (!ex->gpu && !ex->gpu_error) {
        int err = vkf_gpu_create(&ex->gpu_params, &ex->gpu);
        if (err < 0)
            ex->gpu_error = err;
    }
    if (!ex->gpu) {
        vkf_exec_error(ctx, "no usable Vulkan device %d: %s", ex->gpu_params.device_index,
                       vkf_strerror(ex->gpu_error));
        return ex->gpu_error;
    }
    *gpu = ex->gpu;
    return 0;
}

bool vkf_exec_interrupted(const vkf_exec_ctx *ctx)
{
    return atomic_load(&ctx->ex->interrupt) != 0;
}

int vkf_exec_progress(vkf_exec_ctx *ctx, int64_t value, int64_t max)
{
    cJSON *d = data_with_prompt(ctx->prompt_id);
    if (!d || !cJSON_AddNumberToObject(d, "value", (double)value) ||
        !cJSON_AddNumberToObject(d, "max", (double)max) ||
        !cJSON_AddStringToObject(d, "node", ctx->pn->gn->id)) {
        cJSON_Delete(d);
        d = NULL;
    }
    emit(ctx->ex, "progress", d, ctx->prompt_id, ctx->pn->gn->id, ctx->pn->def->name,
         value, max);
    return vkf_exec_interrupted(ctx) ? VKF_EINTERRUPTED : 0;
}

void vkf_exec_preview(vkf_exec_ctx *ctx, const uint8_t *png, size_t size, int step,
                      int total)
{
    vkf_executor *ex = ctx->ex;
    if (!ex->p.on_event || !png || !size)
        return;
    cJSON *d = data_with_prompt(ctx->prompt_id);
    char *json = NULL;
    if (d && cJSON_AddStringToObject(d, "node", ctx->pn->gn->id) &&
        cJSON_AddNumberToObject(d, "value", step + 1) && cJSON_AddNumberToObject(d, "max", total))
        json = cJSON_PrintUnformatted(d);
    cJSON_Delete(d);
    if (!json)
        return;   /* previews are best effort */
    vkf_event ev = {.type = "preview", .data_json = json, .prompt_id = ctx->prompt_id,
                    .node_id = ctx->pn->gn->id, .class_type = ctx->pn->def->name,
                    .value = step + 1, .max = total, .blob = png, .blob_size = size};
    ex->p.on_event(ex->p.event_priv, &ev);
    vkf_free(json);
}

static cJSON *ui_list(vkf_exec_ctx *ctx, const char *key)
{
    if (!ctx->ui && !(ctx->ui = cJSON_CreateObject()))
        return NULL;
    cJSON *l = cJSON_GetObjectItemCaseSensitive(ctx->ui, key);
    if (!l) {
        l = cJSON_CreateArray();
        if (!vkf_json_add(ctx->ui, key, l))
            l = NULL;
    }
    return l;
}

int vkf_exec_ui_text(vkf_exec_ctx *ctx, const char *key, const char *text)
{
    cJSON *l = ui_list(ctx, key);
    cJSON *s = l ? cJSON_CreateString(text) : NULL;
    if (!s || !cJSON_AddItemToArray(l, s)) {
        cJSON_Delete(s);
        return VKF_ENOMEM;
    }
    return 0;
}

int vkf_exec_ui_file(vkf_exec_ctx *ctx, const char *key, const char *filename,
                     const char *subfolder, const char *type)
{
    cJSON *l = ui_list(ctx, key);
    cJSON *o = l ? cJSON_CreateObject() : NULL;
    if (!o || !cJSON_AddStringToObject(o, "filename", filename) ||
        !cJSON_AddStringToObject(o, "subfolder", subfolder ? subfolder : "") ||
        !cJSON_AddStringToObject(o, "type", type ? type : "output") ||
        !cJSON_AddItemToArray(l, o)) {
        cJSON_Delete(o);
        return VKF_ENOMEM;
    }
    return 0;
}

void vkf_exec_print(vkf_exec_ctx *ctx, const char *text)
{
    if (ctx->ex->p.print)
        ctx->ex->p.print(ctx->ex->p.print_priv, ctx->pn->gn->id, text);
    else
        printf("%s\n", text);
}

/* ---- executor ------------------------------------------------------------- */

int vkf_executor_create(vkf_executor **out, const vkf_executor_params *params)
{
    vkf_executor *ex = vkf_calloc(1, sizeof(*ex));
    if (!ex)
        return VKF_ENOMEM;
    ex->p = *params;
    if (params->gpu_params)
        ex->gpu_params = *params->gpu_params;
    ex->gpu_params.log = params->log;
    ex->p.gpu_params = NULL;
    vkf_cjson_init();
    *out = ex;
    return 0;
}

static void entry_free(cache_entry *e)
{
    for (int j = 0; j < e->nb_out; j++)
        vkf_list_clear(&e->out[j]);
    vkf_free(e->out);
    cJSON_Delete(e->ui);
    memset(e, 0, sizeof(*e));
}

void vkf_executor_clear_cache(vkf_executor *ex)
{
    for (int i = 0; i < ex->nb_cache; i++)
        entry_free(&ex->cache[i]);
    ex->nb_cache = 0;
}

void vkf_executor_destroy(vkf_executor **pex)
{
    vkf_executor *ex = *pex;
    if (!ex)
        return;
    /* Cached tensors go before the device they live on. */
    vkf_executor_clear_cache(ex);
    /* the preview decoder lives on this device */
    if (ex->gpu)
        vkf_preview_release(ex->gpu);
    vkf_gpu_destroy(&ex->gpu);
    vkf_free(ex->cache);
    vkf_free(ex);
    *pex = NULL;
}

void vkf_executor_interrupt(vkf_executor *ex)
{
    atomic_store(&ex->interrupt, 1);
}

vkf_gpu *vkf_executor_gpu(const vkf_executor *ex)
{
    return ex->gpu;
}

void vkf_executor_last_stats(const vkf_executor *ex, int *executed, int *cached)
{
    if (executed)
        *executed = ex->last_executed;
    if (cached)
        *cached = ex->last_cached;
}

static cache_entry *cache_find(vkf_executor *ex, sig128 s)
{
    for (int i = 0; i < ex->nb_cache; i++)
        if (ex->cache[i].sig.a == s.a && ex->cache[i].sig.b == s.b)
            return &ex->cache[i];
    return NULL;
}

typedef struct run_state {
    vkf_executor *ex;
    const vkf_graph *g;
    vkf_plan *plan;
    const char *prompt_id;
    sig128 *sig;         /* per plan node */
    char *sig_done;
    int *order;          /* nodes to consider, dependency order */
    int nb_order;
    char *in_order;
    int *executed;       /* ids executed so far (plan indices) */
    int nb_executed;
} run_state;

/* Signature of plan node i: class, per input (declaration order = a fixed
 * order) the constant or the upstream signature and slot, the fingerprint,
 * and the node id for non-idempotent classes. */
static int compute_sig(run_state *rs, int i)
{
    if (rs->sig_done[i])
        return 0;
    const vkf_plan_node *pn = &rs->plan->nodes[i];
    const vkf_node_def *def = pn->def;
    sig128 s = {0xcbf29ce484222325ULL, 0x84222325cbf29ce4ULL};
    sig_str(&s, def->name);
    if (def->flags & VKF_NODE_NOT_IDEMPOTENT)
        sig_str(&s, pn->gn->id);
    for (int k = 0; k < def->nb_inputs; k++) {
        const vkf_resolved_input *ri = &pn->in[k];
        sig_str(&s, def->inputs[k].name);
        sig_u64(&s, (uint64_t)ri->kind);
        if (ri->kind == VKF_RIN_CONST) {
            sig_u64(&s, (uint64_t)ri->value.kind);
            char *t = vkf_value_to_text(&ri->value);
            if (!t)
                return VKF_ENOMEM;
            sig_str(&s, t);
            vkf_free(t);
        } else if (ri->kind == VKF_RIN_LINK) {
            int err = compute_sig(rs, ri->src);
            if (err < 0)
                return err;
            sig_u64(&s, rs->sig[ri->src].a);
            sig_u64(&s, rs->sig[ri->src].b);
            sig_u64(&s, (uint64_t)ri->slot);
        }
    }
    if (def->fingerprint) {
        vkf_value *vals = vkf_calloc((size_t)def->nb_inputs + 1, sizeof(*vals));
        if (!vals)
            return VKF_ENOMEM;
        for (int k = 0; k < def->nb_inputs; k++)
            if (pn->in[k].kind == VKF_RIN_CONST)
                vals[k] = pn->in[k].value;
        vkf_exec_ctx ctx = {.ex = rs->ex, .g = rs->g, .pn = pn, .prompt_id = rs->prompt_id};
        char *key = NULL;
        int err = def->fingerprint(&ctx, vals, &key);
        vkf_free(vals);
        vkf_free(ctx.error);
        cJSON_Delete(ctx.ui);
        if (err < 0 || !key) {
            /* Unknown state (or a failing IS_CHANGED): always run. */
            sig_u64(&s, ++rs->ex->nonce);
            sig_u64(&s, (uint64_t)now_ms());
        } else {
            sig_str(&s, key);
        }
        vkf_free(key);
    }
    rs->sig[i] = s;
    rs->sig_done[i] = 1;
    return 0;
}

static void visit_order(run_state *rs, int i)
{
    if (rs->in_order[i])
        return;
    rs->in_order[i] = 1;
    const vkf_plan_node *pn = &rs->plan->nodes[i];
    for (int k = 0; k < pn->def->nb_inputs; k++)
        if (pn->in[k].kind == VKF_RIN_LINK)
            visit_order(rs, pn->in[k].src);
    rs->order[rs->nb_order++] = i;
}

static cJSON *format_inputs(const vkf_plan_node *pn, cache_entry **src_entries)
{
    cJSON *o = cJSON_CreateObject();
    for (int k = 0; o && k < pn->def->nb_inputs; k++) {
        const vkf_resolved_input *ri = &pn->in[k];
        if (ri->kind == VKF_RIN_ABSENT)
            continue;
        cJSON *arr = cJSON_CreateArray();
        const vkf_value *vals = NULL;
        int n = 0;
        if (ri->kind == VKF_RIN_CONST) {
            vals = &ri->value;
            n = 1;
        } else if (src_entries && src_entries[k]) {
            vals = src_entries[k]->out[ri->slot].v;
            n = src_entries[k]->out[ri->slot].n;
        }
        for (int m = 0; arr && m < n && m < 8; m++) {
            char *t = vkf_value_to_text(&vals[m]);
            if (!t || !cJSON_AddItemToArray(arr, cJSON_CreateString(t))) {
                cJSON_Delete(arr);
                arr = NULL;
            }
            vkf_free(t);
        }
        if (!vkf_json_add(o, pn->def->inputs[k].name, arr)) {
            cJSON_Delete(o);
            o = NULL;
        }
    }
    return o;
}

static void emit_failure(run_state *rs, const vkf_plan_node *pn, int err, const char *message,
                         cache_entry **src_entries)
{
    vkf_executor *ex = rs->ex;
    cJSON *d = data_with_prompt(rs->prompt_id);
    bool ok = d && cJSON_AddStringToObject(d, "node_id", pn->gn->id) &&
              cJSON_AddStringToObject(d, "node_type", pn->def->name) &&
              vkf_json_add(d, "executed", id_array(rs->plan, rs->executed, rs->nb_executed));
    if (ok && err == VKF_EINTERRUPTED) {
        emit(ex, "execution_interrupted", add_timestamp(d), rs->prompt_id, pn->gn->id,
             pn->def->name, 0, 0);
        return;
    }
    const char *etype = err == VKF_EDEVICE_OOM   ? "vkflow.OutOfDeviceMemoryError"
                        : err == VKF_ENOMEM      ? "MemoryError"
                        : err == VKF_EDEVICE_LOST ? "vkflow.DeviceLostError"
                                                 : "vkflow.NodeError";
    ok = ok && cJSON_AddStringToObject(d, "exception_message", message) &&
         cJSON_AddStringToObject(d, "exception_type", etype) &&
         vkf_json_add(d, "traceback", cJSON_CreateArray()) &&
         vkf_json_add(d, "current_inputs", format_inputs(pn, src_entries)) &&
         vkf_json_add(d, "current_outputs", id_array(rs->plan, rs->executed, rs->nb_executed));
    if (!ok) {
        cJSON_Delete(d);
        return;
    }
    emit(ex, "execution_error", add_timestamp(d), rs->prompt_id, pn->gn->id, pn->def->name, 0, 0);
}

/* Run one node: gathers input lists, calls execute per list index (or once
 * with whole lists), stores the outputs in a new cache entry. */
static int run_node(run_state *rs, int i, char **run_error)
{
    vkf_executor *ex = rs->ex;
    const vkf_plan_node *pn = &rs->plan->nodes[i];
    const vkf_node_def *def = pn->def;
    int nin = def->nb_inputs, nout = def->nb_outputs, err = 0;
    vkf_exec_ctx ctx = {.ex = ex, .g = rs->g, .pn = pn, .prompt_id = rs->prompt_id};
    cache_entry **src = vkf_calloc((size_t)nin + 1, sizeof(*src));
    vkf_list *in_lists = vkf_calloc((size_t)nin + 1, sizeof(*in_lists));
    vkf_list *out_lists = vkf_calloc((size_t)nout + 1, sizeof(*out_lists));
    vkf_value *in_vals = vkf_calloc((size_t)nin + 1, sizeof(*in_vals));
    vkf_value *out_vals = vkf_calloc((size_t)nout + 1, sizeof(*out_vals));
    vkf_value absent = {0};
    if (!src || !in_lists || !out_lists || !in_vals || !out_vals) {
        err = VKF_ENOMEM;
        goto fail;
    }
    /* Borrowed views of the input lists. */
    /* Constants are one-item lists; the node runs max(list length) times
     * and a shorter list repeats its last item. */
    int n = 1;
    bool linked_empty = false;
    for (int k = 0; k < nin; k++) {
        const vkf_resolved_input *ri = &pn->in[k];
        if (ri->kind == VKF_RIN_LINK) {
            src[k] = cache_find(ex, rs->sig[ri->src]);
            if (!src[k]) {
                err = VKF_EINVAL;
                vkf_exec_error(&ctx, "internal error: output of node %s missing",
                               rs->plan->nodes[ri->src].gn->id);
                goto fail;
            }
            in_lists[k] = src[k]->out[ri->slot];
            if (in_lists[k].n > n)
                n = in_lists[k].n;
            linked_empty |= in_lists[k].n == 0;
        } else {
            in_lists[k] = (vkf_list){.n = 1, .v = ri->kind == VKF_RIN_CONST
                                                      ? (vkf_value *)&ri->value
                                                      : &absent};
        }
    }
    if (linked_empty)
        n = 0;

    if (def->flags & VKF_NODE_INPUT_IS_LIST) {
        if (atomic_load(&ex->interrupt)) {
            err = VKF_EINTERRUPTED;
            goto fail;
        }
        err = def->execute_list(&ctx, in_lists, out_lists);
        if (err < 0)
            goto fail;
    } else {
        for (int idx = 0; idx < n; idx++) {
            if (atomic_load(&ex->interrupt)) {
                err = VKF_EINTERRUPTED;
                goto fail;
            }
            for (int k = 0; k < nin; k++) {
                const vkf_list *l = &in_lists[k];
                in_vals[k] = l->n ? l->v[idx < l->n ? idx : l->n - 1] : absent;
            }
            err = def->execute(&ctx, in_vals, out_vals);
            if (err >= 0) {
                for (int j = 0; j < nout && err >= 0; j++) {
                    /* Move each value into its list. */
                    vkf_value *nv = vkf_realloc(out_lists[j].v,
                                                sizeof(*nv) * (size_t)(out_lists[j].n + 1));
                    if (!nv) {
                        err = VKF_ENOMEM;
                        break;
                    }
                    out_lists[j].v = nv;
                    nv[out_lists[j].n++] = out_vals[j];
                    memset(&out_vals[j], 0, sizeof(out_vals[j]));
                }
            }
            for (int j = 0; j < nout; j++)
                vkf_value_clear(&out_vals[j]);
            if (err < 0)
                goto fail;
        }
    }

    err = vkf_grow(&ex->cache, &ex->cap_cache, ex->nb_cache + 1, sizeof(*ex->cache));
    if (err < 0)
        goto fail;
    cache_entry *e = &ex->cache[ex->nb_cache++];
    *e = (cache_entry){.sig = rs->sig[i], .out = out_lists, .nb_out = nout, .ui = ctx.ui,
                       .used = true};
    out_lists = NULL;
    ctx.ui = NULL;
    if (e->ui && cJSON_GetArraySize(e->ui) > 0)
        emit_executed(ex, rs->prompt_id, pn, e->ui);
    goto done;

fail:
    if (!ctx.error && err != VKF_EINTERRUPTED)
        vkf_exec_error(&ctx, "%s", vkf_strerror(err));
    if (run_error && ctx.error && err != VKF_EINTERRUPTED) {
        *run_error = vkf_asprintf("node %s (%s): %s", pn->gn->id, def->name, ctx.error);
    }
    emit_failure(rs, pn, err, ctx.error ? ctx.error : vkf_strerror(err), src);
    if (err != VKF_EINTERRUPTED && err != VKF_ENOMEM)
        err = err == VKF_EDEVICE_OOM || err == VKF_EDEVICE_LOST ? err : VKF_ERUN;
done:
    if (out_lists) {
        for (int j = 0; j < nout; j++)
            vkf_list_clear(&out_lists[j]);
        vkf_free(out_lists);
    }
    vkf_free(src);
    vkf_free(in_lists);
    vkf_free(in_vals);
    vkf_free(out_vals);
    vkf_free(ctx.error);
    cJSON_Delete(ctx.ui);
    return err;
}

int vkf_executor_run(vkf_executor *ex, const vkf_graph *g, vkf_validation *val,
                     char **run_error)
{
    int err;
    vkf_validation local = {0};
    vkf_validation *v = val ? val : &local;
    run_state rs = {.ex = ex, .g = g};
    char *pid = NULL;
    if (run_error)
        *run_error = NULL;
    atomic_store(&ex->interrupt, 0);
    ex->last_executed = ex->last_cached = 0;

    VKF_TRY(vkf_plan_build(g, ex->p.registry, ex->p.paths, v, &rs.plan));
    if (!v->ok) {
        err = VKF_EVALIDATION;
        goto fail;
    }
    pid = g->prompt_id ? vkf_strdup(g->prompt_id) : vkf_uuid4(true);
    VKF_CHECK_ALLOC(pid);
    rs.prompt_id = pid;
    int nb = rs.plan->nb;
    rs.sig = vkf_calloc((size_t)nb + 1, sizeof(*rs.sig));
    rs.sig_done = vkf_calloc((size_t)nb + 1, 1);
    rs.order = vkf_calloc((size_t)nb + 1, sizeof(*rs.order));
    rs.in_order = vkf_calloc((size_t)nb + 1, 1);
    rs.executed = vkf_calloc((size_t)nb + 1, sizeof(*rs.executed));
    VKF_CHECK_ALLOC(rs.sig);
    VKF_CHECK_ALLOC(rs.sig_done);
    VKF_CHECK_ALLOC(rs.order);
    VKF_CHECK_ALLOC(rs.in_order);
    VKF_CHECK_ALLOC(rs.executed);

    for (int k = 0; k < rs.plan->nb_outputs; k++)
        visit_order(&rs, rs.plan->outputs[k]);
    for (int k = 0; k < rs.nb_order; k++)
        VKF_TRY(compute_sig(&rs, rs.order[k]));

    /* Keep only cache entries this prompt uses. */
    for (int c = 0; c < ex->nb_cache; c++)
        ex->cache[c].used = false;
    int *cached = vkf_calloc((size_t)nb + 1, sizeof(*cached));
    VKF_CHECK_ALLOC(cached);
    int nb_cached = 0;
    for (int k = 0; k < rs.nb_order; k++) {
        cache_entry *e = cache_find(ex, rs.sig[rs.order[k]]);
        if (e) {
            e->used = true;
            cached[nb_cached++] = rs.order[k];
        }
    }
    int keep = 0;
    for (int c = 0; c < ex->nb_cache; c++) {
        if (ex->cache[c].used)
            ex->cache[keep++] = ex->cache[c];
        else
            entry_free(&ex->cache[c]);
    }
    ex->nb_cache = keep;

    emit(ex, "execution_start", add_timestamp(data_with_prompt(pid)), pid, NULL, NULL, 0, 0);
    cJSON *cd = data_with_prompt(pid);
    if (cd && !vkf_json_add(cd, "nodes", id_array(rs.plan, cached, nb_cached))) {
        cJSON_Delete(cd);
        cd = NULL;
    }
    emit(ex, "execution_cached", add_timestamp(cd), pid, NULL, NULL, 0, 0);
    vkf_free(cached);
    ex->last_cached = nb_cached;

    for (int k = 0; k < rs.nb_order; k++) {
        int i = rs.order[k];
        const vkf_plan_node *pn = &rs.plan->nodes[i];
        cache_entry *e = cache_find(ex, rs.sig[i]);
        if (e) {
            /* A cached output node re-sends its UI result. */
            if ((pn->def->flags & VKF_NODE_OUTPUT) && e->ui && cJSON_GetArraySize(e->ui) > 0)
                emit_executed(ex, pid, pn, e->ui);
            continue;
        }
        if (atomic_load(&ex->interrupt)) {
            emit_failure(&rs, pn, VKF_EINTERRUPTED, NULL, NULL);
            err = VKF_EINTERRUPTED;
            goto fail;
        }
        emit_executing(ex, pid, pn);
        err = run_node(&rs, i, run_error);
        if (err < 0)
            goto fail;
        rs.executed[rs.nb_executed++] = i;
        ex->last_executed++;
    }
    emit(ex, "execution_success", add_timestamp(data_with_prompt(pid)), pid, NULL, NULL, 0, 0);
    emit_executing(ex, pid, NULL);
    err = 0;
fail:
    if (err < 0 && pid && err != VKF_EVALIDATION)
        emit_executing(ex, pid, NULL);
    vkf_free(rs.sig);
    vkf_free(rs.sig_done);
    vkf_free(rs.order);
    vkf_free(rs.in_order);
    vkf_free(rs.executed);
    vkf_plan_free(&rs.plan);
    vkf_free(pid);
    if (v == &local)
        vkf_validation_clear(&local);
    return err;
}
