/*
 * The prompt queue (ComfyUI's PromptQueue), the history and the one
 * executor thread.  The device is one resource, so prompts run one at a
 * time, lowest (number, prompt_id) first; the executor's node cache lives
 * across prompts.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "graph/internal.h"
#include "server/internal.h"

void vkf_app_set_sink(vkf_app *app, vkf_app_send_fn send, void *priv)
{
    app->send = send;
    app->send_priv = priv;
}

void vkf_app_set_bin_sink(vkf_app *app, vkf_app_send_bin_fn send_bin)
{
    app->send_bin = send_bin;
}

/* A live preview: ComfyUI's PREVIEW_IMAGE frame (PNG) to the prompt's
 * client, or to every socket when the prompt has none. */
static void send_preview(vkf_app *app, const vkf_event *ev)
{
    const vkf_queue_item *it = app->running;
    unsigned char *frame = NULL;
    size_t len = 0;
    if (!app->send_bin ||
        vkf_ws_frame_preview(VKF_WS_IMAGE_PNG, ev->blob, ev->blob_size, &frame, &len) < 0)
        return;
    app->send_bin(app->send_priv, it ? it->client_id : NULL, frame, len);
    vkf_free(frame);
}

void vkf_app_send(vkf_app *app, const char *sid, const char *type, cJSON *data)
{
    cJSON *msg = cJSON_CreateObject();
    if (!msg || !cJSON_AddStringToObject(msg, "type", type) || !data ||
        !cJSON_AddItemToObject(msg, "data", data)) {
        cJSON_Delete(data);
        cJSON_Delete(msg);
        return;
    }
    char *text = cJSON_PrintUnformatted(msg);
    cJSON_Delete(msg);
    if (text && app->send)
        app->send(app->send_priv, sid, text);
    vkf_free(text);
}

void vkf_queue_item_free(vkf_queue_item **pitem)
{
    vkf_queue_item *it = *pitem;
    if (!it)
        return;
    vkf_free(it->prompt_id);
    vkf_free(it->client_id);
    vkf_free(it->item_json);
    vkf_graph_free(&it->graph);
    vkf_free(it);
    *pitem = NULL;
}

/* ComfyUI's heap compares (number, prompt_id, ...) tuples. */
static int item_cmp(const vkf_queue_item *a, const vkf_queue_item *b)
{
    if (a->number != b->number)
        return a->number < b->number ? -1 : 1;
    return strcmp(a->prompt_id, b->prompt_id);
}

static int remaining_locked(const vkf_app *app)
{
    return app->nb_queue + (app->running ? 1 : 0);
}

int vkf_app_queue_remaining(vkf_app *app)
{
    pthread_mutex_lock(&app->lock);
    int n = remaining_locked(app);
    pthread_mutex_unlock(&app->lock);
    return n;
}

cJSON *vkf_app_queue_info(vkf_app *app)
{
    cJSON *info = cJSON_CreateObject();
    cJSON *ei = info ? cJSON_AddObjectToObject(info, "exec_info") : NULL;
    if (!ei || !cJSON_AddNumberToObject(ei, "queue_remaining", vkf_app_queue_remaining(app))) {
        cJSON_Delete(info);
        return NULL;
    }
    return info;
}

void vkf_app_queue_changed(vkf_app *app)
{
    cJSON *d = cJSON_CreateObject();
    if (d && !vkf_json_add(d, "status", vkf_app_queue_info(app))) {
        cJSON_Delete(d);
        return;
    }
    vkf_app_send(app, NULL, "status", d);
}

int vkf_queue_put(vkf_app *app, vkf_queue_item *item)
{
    pthread_mutex_lock(&app->lock);
    int err = vkf_grow(&app->queue, &app->cap_queue, app->nb_queue + 1, sizeof(*app->queue));
    if (err >= 0) {
        int lo = 0, hi = app->nb_queue;
        while (lo < hi) {
            int mid = (lo + hi) / 2;
            if (item_cmp(app->queue[mid], item) <= 0)
                lo = mid + 1;
            else
                hi = mid;
        }
        memmove(&app->queue[lo + 1], &app->queue[lo],
                sizeof(*app->queue) * (size_t)(app->nb_queue - lo));
        app->queue[lo] = item;
        app->nb_queue++;
        pthread_cond_signal(&app->wake);
    }
    pthread_mutex_unlock(&app->lock);
    if (err < 0)
        return err;
    vkf_app_queue_changed(app);
    return 0;
}

void vkf_queue_clear(vkf_app *app)
{
    pthread_mutex_lock(&app->lock);
    for (int i = 0; i < app->nb_queue; i++)
        vkf_queue_item_free(&app->queue[i]);
    app->nb_queue = 0;
    pthread_mutex_unlock(&app->lock);
    vkf_app_queue_changed(app);
}

bool vkf_queue_delete(vkf_app *app, const char *prompt_id)
{
    bool found = false;
    pthread_mutex_lock(&app->lock);
    for (int i = 0; i < app->nb_queue; i++) {
        if (!strcmp(app->queue[i]->prompt_id, prompt_id)) {
            vkf_queue_item_free(&app->queue[i]);
            memmove(&app->queue[i], &app->queue[i + 1],
                    sizeof(*app->queue) * (size_t)(app->nb_queue - i - 1));
            app->nb_queue--;
            found = true;
            break;
        }
    }
    pthread_mutex_unlock(&app->lock);
    if (found)
        vkf_app_queue_changed(app);
    return found;
}

void vkf_app_interrupt(vkf_app *app, const char *prompt_id)
{
    pthread_mutex_lock(&app->lock);
    /* Under the lock: the prompt cannot finish and hand the flag to the
     * next one in between. */
    if (!prompt_id || (app->running && !strcmp(app->running->prompt_id, prompt_id)))
        vkf_executor_interrupt(app->ex);
    pthread_mutex_unlock(&app->lock);
}

void vkf_app_set_free_flags(vkf_app *app, bool unload_models, bool free_memory)
{
    pthread_mutex_lock(&app->lock);
    app->flag_unload_models |= unload_models;
    app->flag_free_memory |= free_memory;
    pthread_cond_signal(&app->wake);
    pthread_mutex_unlock(&app->lock);
}

char *vkf_app_replay_executing(vkf_app *app, const char *sid)
{
    char *text = NULL;
    pthread_mutex_lock(&app->lock);
    const vkf_queue_item *r = app->running;
    if (r && r->client_id && sid && !strcmp(r->client_id, sid) && app->running_node) {
        cJSON *m = cJSON_CreateObject();
        cJSON *d = cJSON_CreateObject();
        if (m && d && cJSON_AddStringToObject(m, "type", "executing") &&
            cJSON_AddStringToObject(d, "node", app->running_node) &&
            cJSON_AddStringToObject(d, "display_node", app->running_node) &&
            cJSON_AddStringToObject(d, "prompt_id", r->prompt_id) &&
            cJSON_AddItemToObject(m, "data", d)) {
            d = NULL;
            text = cJSON_PrintUnformatted(m);
        }
        cJSON_Delete(d);
        cJSON_Delete(m);
    }
    pthread_mutex_unlock(&app->lock);
    return text;
}

/* ---- JSON views ------------------------------------------------------------ */

typedef struct sbuf {
    char *s;
    size_t len, cap;
    bool oom;
} sbuf;

static void sb_add(sbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *ns = vkf_realloc(b->s, cap);
        if (!ns) {
            b->oom = true;
            return;
        }
        b->s = ns;
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = 0;
}

static void sb_str(sbuf *b, const char *s)
{
    sb_add(b, s, strlen(s));
}

/* A JSON string literal. */
static void sb_quoted(sbuf *b, const char *s)
{
    cJSON *j = cJSON_CreateString(s);
    char *t = j ? cJSON_PrintUnformatted(j) : NULL;
    if (t)
        sb_str(b, t);
    else
        b->oom = true;
    vkf_free(t);
    cJSON_Delete(j);
}

static char *sb_finish(sbuf *b)
{
    if (b->oom) {
        vkf_free(b->s);
        return NULL;
    }
    return b->s;
}

char *vkf_queue_json(vkf_app *app)
{
    sbuf b = {0};
    pthread_mutex_lock(&app->lock);
    sb_str(&b, "{\"queue_running\":[");
    if (app->running)
        sb_str(&b, app->running->item_json);
    sb_str(&b, "],\"queue_pending\":[");
    for (int i = 0; i < app->nb_queue; i++) {
        if (i)
            sb_str(&b, ",");
        sb_str(&b, app->queue[i]->item_json);
    }
    sb_str(&b, "]}");
    pthread_mutex_unlock(&app->lock);
    return sb_finish(&b);
}

char *vkf_history_json(vkf_app *app, const char *prompt_id, long max_items, long offset)
{
    sbuf b = {0};
    int n = 0;
    pthread_mutex_lock(&app->lock);
    sb_str(&b, "{");
    if (prompt_id) {
        for (int i = 0; i < app->nb_history; i++) {
            if (!strcmp(app->history[i].prompt_id, prompt_id)) {
                sb_quoted(&b, prompt_id);
                sb_str(&b, ":");
                sb_str(&b, app->history[i].json);
                break;
            }
        }
    } else {
        /* PromptQueue.get_history, loop for loop. */
        if (offset < 0 && max_items >= 0)
            offset = app->nb_history - max_items;
        for (long i = 0; i < app->nb_history; i++) {
            if (i >= offset) {
                if (n++)
                    sb_str(&b, ",");
                sb_quoted(&b, app->history[i].prompt_id);
                sb_str(&b, ":");
                sb_str(&b, app->history[i].json);
                if (max_items >= 0 && n >= max_items)
                    break;
            }
        }
    }
    sb_str(&b, "}");
    pthread_mutex_unlock(&app->lock);
    return sb_finish(&b);
}

static void history_entry_free(vkf_history_entry *e)
{
    vkf_free(e->prompt_id);
    vkf_free(e->json);
    e->prompt_id = e->json = NULL;
}

void vkf_history_clear(vkf_app *app)
{
    pthread_mutex_lock(&app->lock);
    for (int i = 0; i < app->nb_history; i++)
        history_entry_free(&app->history[i]);
    app->nb_history = 0;
    pthread_mutex_unlock(&app->lock);
}

static void history_remove_locked(vkf_app *app, int i)
{
    history_entry_free(&app->history[i]);
    memmove(&app->history[i], &app->history[i + 1],
            sizeof(*app->history) * (size_t)(app->nb_history - i - 1));
    app->nb_history--;
}

void vkf_history_delete(vkf_app *app, const char *prompt_id)
{
    pthread_mutex_lock(&app->lock);
    for (int i = 0; i < app->nb_history; i++) {
        if (!strcmp(app->history[i].prompt_id, prompt_id)) {
            history_remove_locked(app, i);
            break;
        }
    }
    pthread_mutex_unlock(&app->lock);
}

/* Takes ownership of json. */
static void history_add_locked(vkf_app *app, const char *prompt_id, char *json)
{
    for (int i = 0; i < app->nb_history; i++) {
        if (!strcmp(app->history[i].prompt_id, prompt_id)) {
            /* A Python dict keeps the key's place. */
            vkf_free(app->history[i].json);
            app->history[i].json = json;
            return;
        }
    }
    char *id = vkf_strdup(prompt_id);
    if (!id || vkf_grow(&app->history, &app->cap_history, app->nb_history + 1,
                        sizeof(*app->history)) < 0) {
        vkf_free(id);
        vkf_free(json);
        return;
    }
    app->history[app->nb_history++] = (vkf_history_entry){.prompt_id = id, .json = json};
    while (app->nb_history > app->p.max_history)
        history_remove_locked(app, 0);
}

/* ---- the executor thread ---------------------------------------------------- */

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)(ts.tv_nsec / 1000000);
}

static bool is_status_message(const char *type)
{
    return !strcmp(type, "execution_start") || !strcmp(type, "execution_cached") ||
           !strcmp(type, "execution_success") || !strcmp(type, "execution_error") ||
           !strcmp(type, "execution_interrupted");
}

static void record_message(vkf_app *app, const char *type, const char *data_json)
{
    cJSON *pair = cJSON_CreateArray();
    cJSON *data = cJSON_Parse(data_json);
    if (!pair || !data || !cJSON_AddItemToArray(pair, cJSON_CreateString(type)) ||
        !cJSON_AddItemToArray(pair, data)) {
        cJSON_Delete(pair);
        cJSON_Delete(data);
        return;
    }
    if (!cJSON_AddItemToArray(app->run_messages, pair))
        cJSON_Delete(pair);
}

static void record_output(vkf_app *app, const char *node, const char *data_json)
{
    cJSON *data = cJSON_Parse(data_json);
    cJSON *out = data ? cJSON_DetachItemFromObjectCaseSensitive(data, "output") : NULL;
    cJSON *meta = cJSON_CreateObject();
    cJSON_Delete(data);
    if (!out || !meta || !cJSON_AddStringToObject(meta, "node_id", node) ||
        !cJSON_AddStringToObject(meta, "display_node", node) ||
        !cJSON_AddNullToObject(meta, "parent_node") ||
        !cJSON_AddStringToObject(meta, "real_node_id", node)) {
        cJSON_Delete(out);
        cJSON_Delete(meta);
        return;
    }
    /* A node that ran again in the same prompt replaces its output. */
    cJSON_DeleteItemFromObjectCaseSensitive(app->run_outputs, node);
    cJSON_DeleteItemFromObjectCaseSensitive(app->run_meta, node);
    vkf_json_add(app->run_outputs, node, out);
    vkf_json_add(app->run_meta, node, meta);
}

static char *message_text(const char *type, const char *data_json)
{
    return vkf_asprintf("{\"type\":\"%s\",\"data\":%s}", type, data_json);
}

/* Routing rules of ComfyUI (reference §6.3). */
static void route(vkf_app *app, const char *type, const char *data_json, bool final)
{
    const vkf_queue_item *it = app->running;   /* written by this thread only */
    const char *sid = it ? it->client_id : NULL;
    bool broadcast_without_client = !strcmp(type, "execution_interrupted") ||
                                    !strcmp(type, "progress") || !strcmp(type, "progress_state");
    if (!sid && !broadcast_without_client)
        return;
    char *text = message_text(type, data_json);
    if (!text)
        return;
    if (sid && final) {
        /* "Prompt finished": clients fetch /history on it, so it goes out
         * after the history record is written. */
        vkf_free(app->held_final);
        app->held_final = text;
        return;
    }
    if (app->send)
        app->send(app->send_priv, sid, text);
    vkf_free(text);
}

/*
 * progress_state (comfy_execution/progress.py): every node that started,
 * with its state, sent when a node starts, reports progress and finishes.
 * A node finishes when the next one starts or the prompt succeeds.
 */
static void progress_state(vkf_app *app, const char *prompt_id, const char *node,
                           const char *state, int64_t value, int64_t max)
{
    if (!app->run_progress || !prompt_id)
        return;
    cJSON *n = cJSON_GetObjectItemCaseSensitive(app->run_progress, node);
    if (!n) {
        n = cJSON_CreateObject();
        if (!n || !cJSON_AddNumberToObject(n, "value", 0) || !cJSON_AddNumberToObject(n, "max", 1) ||
            !cJSON_AddStringToObject(n, "state", state) ||
            !cJSON_AddStringToObject(n, "node_id", node) ||
            !cJSON_AddStringToObject(n, "prompt_id", prompt_id) ||
            !cJSON_AddStringToObject(n, "display_node_id", node) ||
            !cJSON_AddNullToObject(n, "parent_node_id") ||
            !cJSON_AddStringToObject(n, "real_node_id", node) ||
            !cJSON_AddItemToObject(app->run_progress, node, n)) {
            cJSON_Delete(n);
            return;
        }
    }
    cJSON *jmax = cJSON_GetObjectItemCaseSensitive(n, "max");
    if (!strcmp(state, "finished")) {
        max = (int64_t)jmax->valuedouble;
        value = max;
    }
    cJSON_SetNumberValue(cJSON_GetObjectItemCaseSensitive(n, "value"), (double)value);
    cJSON_SetNumberValue(jmax, (double)max);
    cJSON_SetValuestring(cJSON_GetObjectItemCaseSensitive(n, "state"), state);
    cJSON *d = cJSON_CreateObject();
    char *json = NULL;
    if (d && cJSON_AddStringToObject(d, "prompt_id", prompt_id) &&
        cJSON_AddItemReferenceToObject(d, "nodes", app->run_progress))
        json = cJSON_PrintUnformatted(d);
    cJSON_Delete(d);
    if (json)
        route(app, "progress_state", json, false);
    vkf_free(json);
}

/* Finishes the node that was running, if any. */
static void progress_finish_running(vkf_app *app, const char *prompt_id)
{
    if (app->run_progress_node) {
        progress_state(app, prompt_id, app->run_progress_node, "finished", 0, 0);
        vkf_free(app->run_progress_node);
        app->run_progress_node = NULL;
    }
}

static void on_event(void *priv, const vkf_event *ev)
{
    vkf_app *app = priv;
    if (ev->blob) {
        send_preview(app, ev);
        return;
    }
    if (is_status_message(ev->type))
        record_message(app, ev->type, ev->data_json);
    if (!strcmp(ev->type, "executed") && ev->node_id)
        record_output(app, ev->node_id, ev->data_json);
    if (!strcmp(ev->type, "executing")) {
        char *node = ev->node_id ? vkf_strdup(ev->node_id) : NULL;
        pthread_mutex_lock(&app->lock);
        vkf_free(app->running_node);
        app->running_node = node;
        pthread_mutex_unlock(&app->lock);
        if (ev->node_id)
            progress_finish_running(app, ev->prompt_id);
    }
    if (!strcmp(ev->type, "execution_success"))
        progress_finish_running(app, ev->prompt_id);
    if (!strcmp(ev->type, "progress") && ev->node_id)
        progress_state(app, ev->prompt_id, ev->node_id, "running", ev->value, ev->max);
    route(app, ev->type, ev->data_json, !strcmp(ev->type, "executing") && !ev->node_id);
    if (!strcmp(ev->type, "executing") && ev->node_id) {
        vkf_free(app->run_progress_node);
        app->run_progress_node = vkf_strdup(ev->node_id);
        progress_state(app, ev->prompt_id, ev->node_id, "running", 0, 1);
    }
}

static void on_print(void *priv, const char *node_id, const char *text)
{
    vkf_app *app = priv;
    vkf_logf(app->p.log, VKF_LOG_DEBUG, "node %s: %s", node_id, text);
}

/* A prompt that passed validation when queued but not when it ran (a model
 * file went away): an execution_error like a failing node. */
static void report_validation_failure(vkf_app *app, const vkf_queue_item *it,
                                      const vkf_validation *val)
{
    char *text = vkf_validation_to_text(val);
    const vkf_node_errors *ne = val->nb_node_errors ? &val->node_errors[0] : NULL;
    cJSON *d = cJSON_CreateObject();
    bool ok = d && cJSON_AddStringToObject(d, "prompt_id", it->prompt_id) &&
              (ne ? cJSON_AddStringToObject(d, "node_id", ne->node_id) != NULL
                  : cJSON_AddNullToObject(d, "node_id") != NULL) &&
              (ne && ne->class_type ? cJSON_AddStringToObject(d, "node_type", ne->class_type) != NULL
                                    : cJSON_AddNullToObject(d, "node_type") != NULL) &&
              cJSON_AddArrayToObject(d, "executed") &&
              cJSON_AddStringToObject(d, "exception_message", text ? text : "validation failed") &&
              cJSON_AddStringToObject(d, "exception_type", "vkflow.ValidationError") &&
              cJSON_AddArrayToObject(d, "traceback") && cJSON_AddObjectToObject(d, "current_inputs") &&
              cJSON_AddArrayToObject(d, "current_outputs") &&
              cJSON_AddNumberToObject(d, "timestamp", now_ms());
    vkf_free(text);
    char *json = ok ? cJSON_PrintUnformatted(d) : NULL;
    cJSON_Delete(d);
    if (!json)
        return;
    vkf_event ev = {.type = "execution_error", .data_json = json, .prompt_id = it->prompt_id};
    on_event(app, &ev);
    vkf_free(json);
    cJSON *e = cJSON_CreateObject();
    if (e && cJSON_AddNullToObject(e, "node") && cJSON_AddNullToObject(e, "display_node") &&
        cJSON_AddStringToObject(e, "prompt_id", it->prompt_id)) {
        char *ej = cJSON_PrintUnformatted(e);
        if (ej) {
            vkf_event fe = {.type = "executing", .data_json = ej, .prompt_id = it->prompt_id};
            on_event(app, &fe);
        }
        vkf_free(ej);
    }
    cJSON_Delete(e);
}

static char *json_text(const cJSON *j, const char *fallback)
{
    char *s = j ? cJSON_PrintUnformatted(j) : NULL;
    return s ? s : vkf_strdup(fallback);
}

static void run_item(vkf_app *app, vkf_queue_item *it)
{
    app->run_outputs = cJSON_CreateObject();
    app->run_meta = cJSON_CreateObject();
    app->run_messages = cJSON_CreateArray();
    app->run_progress = cJSON_CreateObject();
    vkf_validation val = {0};
    int err = VKF_ENOMEM;
    if (app->run_outputs && app->run_meta && app->run_messages)
        err = vkf_executor_run(app->ex, it->graph, &val, NULL);
    if (err == VKF_EVALIDATION)
        report_validation_failure(app, it, &val);
    vkf_validation_clear(&val);

    bool success = err >= 0;
    cJSON *status = cJSON_CreateObject();
    if (status && cJSON_AddStringToObject(status, "status_str", success ? "success" : "error") &&
        cJSON_AddBoolToObject(status, "completed", success)) {
        cJSON_AddItemToObject(status, "messages", app->run_messages);
        app->run_messages = NULL;
    }
    char *outputs = json_text(app->run_outputs, "{}");
    char *st = json_text(status, "null");
    char *meta = json_text(app->run_meta, "{}");
    char *record = outputs && st && meta
                       ? vkf_asprintf("{\"prompt\":%s,\"outputs\":%s,\"status\":%s,\"meta\":%s}",
                                      it->item_json, outputs, st, meta)
                       : NULL;
    vkf_free(outputs);
    vkf_free(st);
    vkf_free(meta);
    cJSON_Delete(status);
    cJSON_Delete(app->run_outputs);
    cJSON_Delete(app->run_meta);
    cJSON_Delete(app->run_messages);
    cJSON_Delete(app->run_progress);
    vkf_free(app->run_progress_node);
    app->run_outputs = app->run_meta = app->run_messages = app->run_progress = NULL;
    app->run_progress_node = NULL;

    pthread_mutex_lock(&app->lock);
    if (record)
        history_add_locked(app, it->prompt_id, record);
    app->running = NULL;
    vkf_free(app->running_node);
    app->running_node = NULL;
    pthread_mutex_unlock(&app->lock);
    vkf_app_queue_changed(app);
    if (app->held_final && app->send)
        app->send(app->send_priv, it->client_id, app->held_final);
    vkf_free(app->held_final);
    app->held_final = NULL;
}

static void *worker_main(void *arg)
{
    vkf_app *app = arg;
    pthread_mutex_lock(&app->lock);
    for (;;) {
        while (!app->stopping && !app->nb_queue && !app->flag_free_memory &&
               !app->flag_unload_models)
            pthread_cond_wait(&app->wake, &app->lock);
        if (app->stopping)
            break;
        if (app->flag_free_memory || app->flag_unload_models) {
            /* Between prompts.  Weights are not cached across prompts yet,
             * so unload_models alone has nothing to drop. */
            if (app->flag_free_memory)
                vkf_executor_clear_cache(app->ex);
            app->flag_free_memory = app->flag_unload_models = false;
            continue;
        }
        vkf_queue_item *it = app->queue[0];
        memmove(&app->queue[0], &app->queue[1], sizeof(*app->queue) * (size_t)(app->nb_queue - 1));
        app->nb_queue--;
        app->running = it;
        pthread_mutex_unlock(&app->lock);
        vkf_app_queue_changed(app);
        run_item(app, it);
        vkf_queue_item_free(&it);
        pthread_mutex_lock(&app->lock);
    }
    pthread_mutex_unlock(&app->lock);
    return NULL;
}

int vkf_queue_start_worker(vkf_app *app)
{
    if (pthread_create(&app->worker, NULL, worker_main, app) != 0)
        return VKF_ENOMEM;
    app->worker_started = true;
    return 0;
}

void vkf_queue_stop_worker(vkf_app *app)
{
    if (!app->worker_started)
        return;
    pthread_mutex_lock(&app->lock);
    app->stopping = true;
    if (app->running)
        vkf_executor_interrupt(app->ex);
    pthread_cond_broadcast(&app->wake);
    pthread_mutex_unlock(&app->lock);
    pthread_join(app->worker, NULL);
    app->worker_started = false;
}

int vkf_app_create(vkf_app **out, const vkf_server_params *params, bool start_worker)
{
    int err = 0;
    vkf_app *app = vkf_calloc(1, sizeof(*app));
    if (!app)
        return VKF_ENOMEM;
    app->p = *params;
    if (app->p.max_body_bytes <= 0)
        app->p.max_body_bytes = VKF_SERVER_DEFAULT_BODY_BYTES;
    if (app->p.max_history <= 0)
        app->p.max_history = VKF_SERVER_DEFAULT_HISTORY;
    vkf_cjson_init();
    if (pthread_mutex_init(&app->lock, NULL) != 0) {
        vkf_free(app);
        return VKF_ENOMEM;
    }
    if (pthread_cond_init(&app->wake, NULL) != 0) {
        pthread_mutex_destroy(&app->lock);
        vkf_free(app);
        return VKF_ENOMEM;
    }
    app->lock_ready = true;
    vkf_executor_params ep = {.registry = params->registry, .paths = params->paths,
                              .log = params->log, .on_event = on_event, .event_priv = app,
                              .print = on_print, .print_priv = app};
    VKF_TRY(vkf_executor_create(&app->ex, &ep));
    if (start_worker)
        VKF_TRY(vkf_queue_start_worker(app));
    *out = app;
    return 0;
fail:
    vkf_app_destroy(&app);
    return err;
}

void vkf_app_destroy(vkf_app **papp)
{
    vkf_app *app = *papp;
    if (!app)
        return;
    vkf_queue_stop_worker(app);
    for (int i = 0; i < app->nb_queue; i++)
        vkf_queue_item_free(&app->queue[i]);
    vkf_free(app->queue);
    for (int i = 0; i < app->nb_history; i++)
        history_entry_free(&app->history[i]);
    vkf_free(app->history);
    vkf_free(app->running_node);
    vkf_free(app->held_final);
    vkf_executor_destroy(&app->ex);
    if (app->lock_ready) {
        pthread_cond_destroy(&app->wake);
        pthread_mutex_destroy(&app->lock);
    }
    vkf_free(app);
    *papp = NULL;
}
