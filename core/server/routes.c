/*
 * The routes of ComfyUI's server.py, HTTP-independent: a request with its
 * whole body in, a status and a body (or a file to send) out.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <time.h>
#include <unistd.h>

#include "graph/internal.h"
#include "server/internal.h"

void vkf_http_response_clear(vkf_http_response *r)
{
    vkf_free(r->body);
    vkf_free(r->file_path);
    vkf_free(r->file_name);
    memset(r, 0, sizeof(*r));
}

const char *vkf_http_query_get(const vkf_http_query *q, const char *name)
{
    for (int i = 0; i < q->count; i++)
        if (!strcmp(q->names[i], name))
            return q->values[i];
    return NULL;
}

static int set_body(vkf_http_response *resp, int status, const char *type, char *body)
{
    if (!body)
        return VKF_ENOMEM;
    vkf_free(resp->body);
    resp->status = status;
    resp->content_type = type;
    resp->body = body;
    resp->body_len = strlen(body);
    return 0;
}

int vkf_http_json(vkf_http_response *resp, int status, cJSON *body)
{
    char *s = body ? cJSON_PrintUnformatted(body) : NULL;
    cJSON_Delete(body);
    return set_body(resp, status, "application/json", s);
}

static cJSON *error_object(const char *type, const char *message, const char *details)
{
    cJSON *e = cJSON_CreateObject();
    if (!e || !cJSON_AddStringToObject(e, "type", type) ||
        !cJSON_AddStringToObject(e, "message", message) ||
        !cJSON_AddStringToObject(e, "details", details ? details : "") ||
        !cJSON_AddObjectToObject(e, "extra_info")) {
        cJSON_Delete(e);
        return NULL;
    }
    return e;
}

/* {"error": {...}, "node_errors": {}}: the shape of POST /prompt's errors,
 * used for every JSON error so clients need one parser. */
static int error_reply(vkf_http_response *resp, int status, const char *type,
                       const char *message, const char *details)
{
    cJSON *root = cJSON_CreateObject();
    if (!root || !vkf_json_add(root, "error", error_object(type, message, details)) ||
        !cJSON_AddObjectToObject(root, "node_errors")) {
        cJSON_Delete(root);
        return VKF_ENOMEM;
    }
    return vkf_http_json(resp, status, root);
}

int vkf_http_error(vkf_http_response *resp, int status, const char *type, const char *message)
{
    return error_reply(resp, status, type, message, message);
}

static int empty_ok(vkf_http_response *resp)
{
    return set_body(resp, 200, "text/plain; charset=utf-8", vkf_strdup(""));
}

/* ---- helpers -------------------------------------------------------------- */

/* Python truthiness of a JSON value. */
static bool truthy(const cJSON *j)
{
    if (!j || cJSON_IsNull(j) || cJSON_IsFalse(j))
        return false;
    if (cJSON_IsNumber(j))
        return j->valuedouble != 0;
    if (cJSON_IsString(j))
        return j->valuestring[0] != 0;
    if (cJSON_IsArray(j) || cJSON_IsObject(j))
        return j->child != NULL;
    return true;
}

/* Parses the body as a JSON object; on failure fills resp with a 400. */
static int parse_object(const vkf_http_request *req, vkf_http_response *resp, cJSON **out)
{
    *out = NULL;
    const char *end = NULL;
    cJSON *j = req->body && req->body_len
                   ? cJSON_ParseWithLengthOpts(req->body, req->body_len, &end, false)
                   : NULL;
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        error_reply(resp, 400, "invalid_json", "The request body is not a JSON object",
                    req->body_len ? "malformed JSON or not an object" : "empty body");
        return VKF_EPARSE;
    }
    *out = j;
    return 0;
}

static bool parse_long(const char *s, long *v)
{
    if (!s || !*s)
        return false;
    char *end;
    errno = 0;
    long x = strtol(s, &end, 10);
    if (*end || errno)
        return false;
    *v = x;
    return true;
}

/* os.path.splitext on a base name: the extension starts at the last dot
 * that is not part of the leading dots. */
static size_t stem_len(const char *name)
{
    size_t n = strlen(name), lead = 0;
    while (name[lead] == '.')
        lead++;
    const char *dot = strrchr(name, '.');
    if (!dot || (size_t)(dot - name) < lead)
        return n;
    return (size_t)(dot - name);
}

/* ---- routes --------------------------------------------------------------- */

typedef int (*route_fn)(vkf_app *app, const vkf_http_request *req, const char *arg,
                        vkf_http_response *resp);

static int get_root(vkf_app *app, const vkf_http_request *req, const char *arg,
                    vkf_http_response *resp)
{
    return set_body(resp, 200, "text/html; charset=utf-8",
                    vkf_strdup("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
                               "<title>vkflow</title></head><body>\n"
                               "<h1>vkflow " VKF_VERSION_STRING "</h1>\n"
                               "<p>This is vkflow's ComfyUI-compatible API (POST /prompt, "
                               "/ws, /history, /view, /object_info...). There is no web "
                               "frontend here: point a ComfyUI API client at this address.</p>\n"
                               "</body></html>\n"));
}

static int get_prompt(vkf_app *app, const vkf_http_request *req, const char *arg,
                      vkf_http_response *resp)
{
    return vkf_http_json(resp, 200, vkf_app_queue_info(app));
}

static const char *const sensitive_keys[] = {"auth_token_comfy_org", "api_key_comfy_org"};

static int post_prompt(vkf_app *app, const vkf_http_request *req, const char *arg,
                       vkf_http_response *resp)
{
    int err = 0;
    cJSON *body = NULL, *extra = NULL, *item = NULL, *reply = NULL, *node_errors = NULL;
    vkf_graph *g = NULL;
    vkf_validation val = {0};
    vkf_load_error le = {0};
    vkf_queue_item *qi = NULL;
    char *prompt_id = NULL, *val_json = NULL;
    if (parse_object(req, resp, &body) < 0)
        return 0;

    double number = 0;
    const cJSON *jnum = cJSON_GetObjectItemCaseSensitive(body, "number");
    if (jnum) {
        /* float(json_data["number"]): a number or a numeric string. */
        char *end = NULL;
        if (cJSON_IsNumber(jnum))
            number = jnum->valuedouble;
        else if (cJSON_IsString(jnum))
            number = strtod(jnum->valuestring, &end);
        if (!cJSON_IsNumber(jnum) &&
            (!cJSON_IsString(jnum) || end == jnum->valuestring || *end)) {
            err = error_reply(resp, 400, "invalid_prompt", "\"number\" must be a number",
                              "number");
            goto done;
        }
    } else {
        pthread_mutex_lock(&app->lock);
        number = app->counter++;
        pthread_mutex_unlock(&app->lock);
        if (truthy(cJSON_GetObjectItemCaseSensitive(body, "front")))
            number = -number;
    }

    cJSON *prompt = cJSON_GetObjectItemCaseSensitive(body, "prompt");
    if (!prompt) {
        err = error_reply(resp, 400, "no_prompt", "No prompt provided", "No prompt provided");
        goto done;
    }
    const cJSON *jpid = cJSON_GetObjectItemCaseSensitive(body, "prompt_id");
    if (cJSON_IsString(jpid)) {
        prompt_id = vkf_strdup(jpid->valuestring);
    } else if (cJSON_IsNumber(jpid)) {
        char buf[64];
        vkf_format_double(buf, sizeof(buf), jpid->valuedouble);
        prompt_id = vkf_strdup(buf);
    } else if (!jpid || cJSON_IsNull(jpid)) {
        prompt_id = vkf_uuid4(true);
    } else {
        err = error_reply(resp, 400, "invalid_prompt", "\"prompt_id\" must be a string",
                          "prompt_id");
        goto done;
    }
    VKF_CHECK_ALLOC(prompt_id);
    const cJSON *jextra = cJSON_GetObjectItemCaseSensitive(body, "extra_data");
    if (jextra && !cJSON_IsObject(jextra)) {
        err = error_reply(resp, 400, "invalid_prompt", "\"extra_data\" must be an object",
                          "extra_data");
        goto done;
    }

    err = vkf_load_workflow_json(req->body, req->body_len, app->p.registry, &g, &le);
    if (err == VKF_ENOMEM)
        goto fail;
    if (err < 0) {
        err = error_reply(resp, 400, "invalid_prompt", "Invalid prompt",
                          le.message ? le.message : vkf_strerror(err));
        goto done;
    }
    vkf_free(g->prompt_id);
    VKF_CHECK_ALLOC(g->prompt_id = vkf_strdup(prompt_id));
    VKF_TRY(vkf_validate(g, app->p.registry, app->p.paths, &val));
    VKF_TRY(vkf_validation_to_json(&val, &val_json, false));
    cJSON *vj = cJSON_Parse(val_json);
    VKF_CHECK_ALLOC(vj);
    if (!val.ok) {
        vkf_logf(app->p.log, VKF_LOG_WARN, "invalid prompt %s", prompt_id);
        err = vkf_http_json(resp, 400, vj);
        goto done;
    }
    node_errors = cJSON_DetachItemFromObjectCaseSensitive(vj, "node_errors");
    cJSON_Delete(vj);
    if (!node_errors)
        VKF_CHECK_ALLOC(node_errors = cJSON_CreateObject());

    extra = jextra ? cJSON_Duplicate(jextra, true) : cJSON_CreateObject();
    VKF_CHECK_ALLOC(extra);
    const cJSON *jcid = cJSON_GetObjectItemCaseSensitive(body, "client_id");
    if (jcid) {
        cJSON_DeleteItemFromObjectCaseSensitive(extra, "client_id");
        if (!vkf_json_add(extra, "client_id", cJSON_Duplicate(jcid, true)))
            goto oom;
    }
    for (size_t k = 0; k < VKF_ARRAY_SIZE(sensitive_keys); k++)
        cJSON_DeleteItemFromObjectCaseSensitive(extra, sensitive_keys[k]);

    item = cJSON_CreateArray();
    cJSON *outputs = cJSON_CreateArray();
    if (!item || !outputs || !cJSON_AddItemToArray(item, cJSON_CreateNumber(number)) ||
        !cJSON_AddItemToArray(item, cJSON_CreateString(prompt_id)) ||
        !cJSON_AddItemToArray(item, cJSON_Duplicate(prompt, true)) ||
        !cJSON_AddItemToArray(item, extra)) {
        cJSON_Delete(outputs);
        goto oom;
    }
    extra = NULL;
    for (int i = 0; i < val.nb_outputs; i++)
        cJSON_AddItemToArray(outputs, cJSON_CreateString(val.outputs[i]));
    if (!cJSON_AddItemToArray(item, outputs)) {
        cJSON_Delete(outputs);
        goto oom;
    }

    qi = vkf_calloc(1, sizeof(*qi));
    VKF_CHECK_ALLOC(qi);
    qi->number = number;
    qi->prompt_id = vkf_strdup(prompt_id);
    qi->client_id = cJSON_IsString(jcid) ? vkf_strdup(jcid->valuestring) : NULL;
    qi->item_json = cJSON_PrintUnformatted(item);
    VKF_CHECK_ALLOC(qi->prompt_id);
    VKF_CHECK_ALLOC(qi->item_json);
    if (cJSON_IsString(jcid))
        VKF_CHECK_ALLOC(qi->client_id);
    qi->graph = g;
    g = NULL;

    reply = cJSON_CreateObject();
    VKF_CHECK_ALLOC(reply);
    if (!cJSON_AddStringToObject(reply, "prompt_id", prompt_id) ||
        !cJSON_AddNumberToObject(reply, "number", number) ||
        !cJSON_AddItemToObject(reply, "node_errors", node_errors))
        goto oom;
    node_errors = NULL;
    VKF_TRY(vkf_queue_put(app, qi));
    qi = NULL;
    err = vkf_http_json(resp, 200, reply);
    reply = NULL;
    goto done;
oom:
    err = VKF_ENOMEM;
fail:
done:
    vkf_queue_item_free(&qi);
    cJSON_Delete(reply);
    cJSON_Delete(node_errors);
    cJSON_Delete(item);
    cJSON_Delete(extra);
    cJSON_Delete(body);
    vkf_free(val_json);
    vkf_free(prompt_id);
    vkf_validation_clear(&val);
    vkf_load_error_clear(&le);
    vkf_graph_free(&g);
    return err;
}

static int get_queue(vkf_app *app, const vkf_http_request *req, const char *arg,
                     vkf_http_response *resp)
{
    return set_body(resp, 200, "application/json", vkf_queue_json(app));
}

/* {"clear": true} and/or {"delete": [ids]} for POST /queue and /history. */
static int clear_delete(vkf_app *app, const vkf_http_request *req, vkf_http_response *resp,
                        bool history)
{
    cJSON *body;
    if (parse_object(req, resp, &body) < 0)
        return 0;
    const cJSON *del = cJSON_GetObjectItemCaseSensitive(body, "delete");
    if (del && !cJSON_IsArray(del)) {
        cJSON_Delete(body);
        return error_reply(resp, 400, "invalid_request", "\"delete\" must be a list of prompt ids",
                           "delete");
    }
    if (truthy(cJSON_GetObjectItemCaseSensitive(body, "clear"))) {
        if (history)
            vkf_history_clear(app);
        else
            vkf_queue_clear(app);
    }
    for (const cJSON *d = del ? del->child : NULL; d; d = d->next) {
        if (!cJSON_IsString(d))
            continue;
        if (history)
            vkf_history_delete(app, d->valuestring);
        else
            vkf_queue_delete(app, d->valuestring);
    }
    cJSON_Delete(body);
    return empty_ok(resp);
}

static int post_queue(vkf_app *app, const vkf_http_request *req, const char *arg,
                      vkf_http_response *resp)
{
    return clear_delete(app, req, resp, false);
}

static int post_history(vkf_app *app, const vkf_http_request *req, const char *arg,
                        vkf_http_response *resp)
{
    return clear_delete(app, req, resp, true);
}

static int get_history(vkf_app *app, const vkf_http_request *req, const char *arg,
                       vkf_http_response *resp)
{
    long max_items = -1, offset = -1;
    const char *mi = vkf_http_query_get(&req->query, "max_items");
    const char *of = vkf_http_query_get(&req->query, "offset");
    if ((mi && !parse_long(mi, &max_items)) || (of && !parse_long(of, &offset)))
        return error_reply(resp, 400, "invalid_request", "max_items and offset must be integers",
                           mi && !parse_long(mi, &max_items) ? "max_items" : "offset");
    if (mi && max_items < 0)
        max_items = 0;
    return set_body(resp, 200, "application/json", vkf_history_json(app, NULL, max_items, offset));
}

static int get_history_id(vkf_app *app, const vkf_http_request *req, const char *arg,
                          vkf_http_response *resp)
{
    return set_body(resp, 200, "application/json", vkf_history_json(app, arg, -1, -1));
}

static int post_interrupt(vkf_app *app, const vkf_http_request *req, const char *arg,
                          vkf_http_response *resp)
{
    /* ComfyUI treats an unreadable body as {}: a global interrupt. */
    cJSON *body = req->body_len ? cJSON_ParseWithLength(req->body, req->body_len) : NULL;
    const cJSON *pid = cJSON_IsObject(body) ? cJSON_GetObjectItemCaseSensitive(body, "prompt_id")
                                            : NULL;
    if (truthy(pid))
        vkf_app_interrupt(app, cJSON_IsString(pid) ? pid->valuestring : "");
    else
        vkf_app_interrupt(app, NULL);
    cJSON_Delete(body);
    return empty_ok(resp);
}

static int post_free(vkf_app *app, const vkf_http_request *req, const char *arg,
                     vkf_http_response *resp)
{
    cJSON *body;
    if (parse_object(req, resp, &body) < 0)
        return 0;
    vkf_app_set_free_flags(app, truthy(cJSON_GetObjectItemCaseSensitive(body, "unload_models")),
                           truthy(cJSON_GetObjectItemCaseSensitive(body, "free_memory")));
    cJSON_Delete(body);
    return empty_ok(resp);
}

static int get_object_info(vkf_app *app, const vkf_http_request *req, const char *arg,
                           vkf_http_response *resp)
{
    cJSON *root = cJSON_CreateObject();
    for (int i = 0; root && i < vkf_registry_count(app->p.registry); i++) {
        const vkf_node_def *def = vkf_registry_at(app->p.registry, i);
        if (arg && strcmp(arg, def->name))
            continue;
        if (!vkf_json_add(root, def->name, vkf_node_info_json(def, app->p.paths))) {
            cJSON_Delete(root);
            root = NULL;
        }
    }
    return root ? vkf_http_json(resp, 200, root) : VKF_ENOMEM;
}

static int get_object_info_class(vkf_app *app, const vkf_http_request *req, const char *arg,
                                 vkf_http_response *resp)
{
    return get_object_info(app, req, arg, resp);
}

/* ComfyUI's folder_names_and_paths keys, in its order. */
static const char *const model_folders[] = {
    "checkpoints", "configs", "loras", "vae", "text_encoders", "diffusion_models",
    "clip_vision", "style_models", "embeddings", "diffusers", "vae_approx", "controlnet",
    "gligen", "upscale_models", "hypernetworks", "photomaker", "classifiers",
    "model_patches", "audio_encoders",
};

static int list_folder(vkf_app *app, const char *folder, bool strip_ext, vkf_http_response *resp)
{
    char **names = NULL;
    int n = 0;
    int err = vkf_paths_list(app->p.paths, folder, &names, &n);
    if (err < 0 && err != VKF_ENOTFOUND)
        return err;
    cJSON *arr = cJSON_CreateArray();
    for (int i = 0; arr && i < n; i++) {
        char *s = strip_ext ? vkf_strndup(names[i], stem_len(names[i])) : vkf_strdup(names[i]);
        cJSON *item = s ? cJSON_CreateString(s) : NULL;
        vkf_free(s);
        if (!item || !cJSON_AddItemToArray(arr, item)) {
            cJSON_Delete(item);
            cJSON_Delete(arr);
            arr = NULL;
        }
    }
    vkf_strv_free(&names, n);
    return arr ? vkf_http_json(resp, 200, arr) : VKF_ENOMEM;
}

static int get_embeddings(vkf_app *app, const vkf_http_request *req, const char *arg,
                          vkf_http_response *resp)
{
    return list_folder(app, "embeddings", true, resp);
}

static int get_models(vkf_app *app, const vkf_http_request *req, const char *arg,
                      vkf_http_response *resp)
{
    cJSON *arr = cJSON_CreateStringArray(model_folders, (int)VKF_ARRAY_SIZE(model_folders));
    return arr ? vkf_http_json(resp, 200, arr) : VKF_ENOMEM;
}

static int get_models_folder(vkf_app *app, const vkf_http_request *req, const char *arg,
                             vkf_http_response *resp)
{
    const char *folder = vkf_paths_canonical_folder(app->p.paths, arg);
    if (!folder)
        return error_reply(resp, 404, "not_found", "Unknown model folder", arg);
    return list_folder(app, folder, false, resp);
}

static cJSON *server_features(const vkf_app *app)
{
    cJSON *f = cJSON_CreateObject();
    if (!f || !cJSON_AddBoolToObject(f, "supports_preview_metadata", true) ||
        !cJSON_AddNumberToObject(f, "max_upload_size", (double)app->p.max_body_bytes)) {
        cJSON_Delete(f);
        return NULL;
    }
    return f;
}

static int get_features(vkf_app *app, const vkf_http_request *req, const char *arg,
                        vkf_http_response *resp)
{
    cJSON *f = server_features(app);
    return f ? vkf_http_json(resp, 200, f) : VKF_ENOMEM;
}

static int get_system_stats(vkf_app *app, const vkf_http_request *req, const char *arg,
                            vkf_http_response *resp)
{
    struct sysinfo si;
    double ram_total = 0, ram_free = 0;
    if (sysinfo(&si) == 0) {
        ram_total = (double)si.totalram * si.mem_unit;
        ram_free = (double)(si.freeram + si.bufferram) * si.mem_unit;
    }
    cJSON *root = cJSON_CreateObject();
    cJSON *sys = root ? cJSON_AddObjectToObject(root, "system") : NULL;
    cJSON *devs = root ? cJSON_AddArrayToObject(root, "devices") : NULL;
    cJSON *argv = sys ? cJSON_AddArrayToObject(sys, "argv") : NULL;
    cJSON *dev = cJSON_CreateObject();
    if (!devs || !dev || !cJSON_AddItemToArray(devs, dev)) {
        cJSON_Delete(dev);
        cJSON_Delete(root);
        return VKF_ENOMEM;
    }
    for (int i = 0; argv && i < app->p.argc; i++)
        cJSON_AddItemToArray(argv, cJSON_CreateString(app->p.argv[i]));
    bool ok = argv && cJSON_AddStringToObject(sys, "os", "linux") &&
              cJSON_AddNumberToObject(sys, "ram_total", ram_total) &&
              cJSON_AddNumberToObject(sys, "ram_free", ram_free) &&
              cJSON_AddStringToObject(sys, "comfyui_version", "vkflow-" VKF_VERSION_STRING) &&
              cJSON_AddStringToObject(sys, "vkflow_version", VKF_VERSION_STRING) &&
              cJSON_AddStringToObject(sys, "required_frontend_version", "") &&
              cJSON_AddStringToObject(sys, "python_version", "") &&
              cJSON_AddStringToObject(sys, "pytorch_version", "") &&
              cJSON_AddBoolToObject(sys, "embedded_python", false);
    /* The Vulkan device the prompts run on, once a prompt has created it
     * (the server does not open Vulkan before it is needed): its
     * device-local heap is the "VRAM"; torch_vram_* report what vkflow
     * holds on it.  Before that, the host as a "cpu" device. */
    vkf_gpu *gpu = app->ex ? vkf_executor_gpu(app->ex) : NULL;
    vkf_gpu_device_info info;
    bool have = false;
    if (gpu) {
        info = *vkf_gpu_info(gpu);
        have = true;
    }
    double vram_total = ram_total, vram_free = ram_free, held = 0, reserved = 0;
    if (have) {
        double total = 0, budget = 0, usage = 0;
        for (int h = 0; h < info.heap_count; h++)
            if (info.heaps[h].device_local) {
                total += (double)info.heaps[h].size;
                budget += (double)info.heaps[h].budget;
                usage += (double)info.heaps[h].usage;
            }
        if (total > 0) {
            vram_total = total;
            vram_free = info.has_memory_budget ? budget - usage : total;
        }
    }
    if (gpu) {
        vkf_gpu_mem_stats ms;
        vkf_gpu_mem_stats_get(gpu, &ms);
        held = (double)ms.current;
        reserved = (double)ms.reserved;
    }
    char name[300];
    snprintf(name, sizeof(name), "%s%s", have ? "vulkan:0 " : "cpu", have ? info.name : "");
    ok = ok && cJSON_AddStringToObject(dev, "name", name) &&
         cJSON_AddStringToObject(dev, "type", have ? "vulkan" : "cpu") &&
         (have ? cJSON_AddNumberToObject(dev, "index", 0) != NULL
               : cJSON_AddNullToObject(dev, "index") != NULL) &&
         cJSON_AddNumberToObject(dev, "vram_total", vram_total) &&
         cJSON_AddNumberToObject(dev, "vram_free", vram_free) &&
         cJSON_AddNumberToObject(dev, "torch_vram_total", reserved) &&
         cJSON_AddNumberToObject(dev, "torch_vram_free", reserved - held);
    if (!ok) {
        cJSON_Delete(root);
        return VKF_ENOMEM;
    }
    return vkf_http_json(resp, 200, root);
}

/* ---- files: /view and uploads ----------------------------------------------- */

static const struct {
    const char *ext, *type;
    bool dangerous;   /* can run script in the page's origin: download only */
} mime_types[] = {
    {"png", "image/png", false},      {"jpg", "image/jpeg", false},
    {"jpeg", "image/jpeg", false},    {"webp", "image/webp", false},
    {"gif", "image/gif", false},      {"bmp", "image/bmp", false},
    {"tif", "image/tiff", false},     {"tiff", "image/tiff", false},
    {"avif", "image/avif", false},    {"ico", "image/vnd.microsoft.icon", false},
    {"mp4", "video/mp4", false},      {"webm", "video/webm", false},
    {"mov", "video/quicktime", false}, {"mkv", "video/x-matroska", false},
    {"avi", "video/x-msvideo", false}, {"mp3", "audio/mpeg", false},
    {"wav", "audio/x-wav", false},    {"flac", "audio/flac", false},
    {"ogg", "audio/ogg", false},      {"opus", "audio/opus", false},
    {"m4a", "audio/mp4", false},      {"json", "application/json", false},
    {"txt", "text/plain", false},     {"csv", "text/csv", false},
    {"glb", "model/gltf-binary", false}, {"pdf", "application/pdf", false},
    {"svg", "image/svg+xml", true},   {"html", "text/html", true},
    {"htm", "text/html", true},       {"xhtml", "application/xhtml+xml", true},
    {"xml", "text/xml", true},        {"js", "application/javascript", true},
    {"mjs", "application/javascript", true}, {"css", "text/css", true},
};

const char *vkf_mime_type(const char *filename, bool *dangerous)
{
    const char *dot = strrchr(filename, '.');
    *dangerous = false;
    if (dot) {
        for (size_t i = 0; i < VKF_ARRAY_SIZE(mime_types); i++) {
            if (!strcasecmp(dot + 1, mime_types[i].ext)) {
                *dangerous = mime_types[i].dangerous;
                return mime_types[i].type;
            }
        }
    }
    return "application/octet-stream";
}

static const char *dir_by_type(const vkf_app *app, const char *type)
{
    if (!strcmp(type, "output"))
        return vkf_paths_output_dir(app->p.paths);
    if (!strcmp(type, "input"))
        return vkf_paths_input_dir(app->p.paths);
    if (!strcmp(type, "temp"))
        return vkf_paths_temp_dir(app->p.paths);
    return NULL;
}

/* os.path.abspath(os.path.join(base, rel)), lexically. */
static char *lexical_join(const char *base, const char *rel)
{
    char *joined = rel[0] == '/' ? vkf_strdup(rel) : vkf_asprintf("%s/%s", base, rel);
    if (!joined)
        return NULL;
    char *out = vkf_malloc(strlen(joined) + 2);
    if (!out) {
        vkf_free(joined);
        return NULL;
    }
    size_t len = 0;
    for (char *p = joined; *p;) {
        while (*p == '/')
            p++;
        char *seg = p;
        while (*p && *p != '/')
            p++;
        size_t n = (size_t)(p - seg);
        if (n == 0 || (n == 1 && seg[0] == '.'))
            continue;
        if (n == 2 && seg[0] == '.' && seg[1] == '.') {
            while (len > 0 && out[len - 1] != '/')
                len--;
            if (len > 0)
                len--;
            continue;
        }
        out[len++] = '/';
        memcpy(out + len, seg, n);
        len += n;
    }
    if (len == 0)
        out[len++] = '/';
    out[len] = 0;
    vkf_free(joined);
    return out;
}

static bool under_root(const char *root, const char *path)
{
    size_t n = strlen(root);
    while (n > 1 && root[n - 1] == '/')
        n--;
    return !strncmp(root, path, n) && (path[n] == 0 || path[n] == '/');
}

/* "name [output]" and friends: the directory type of an annotated name. */
static const char *strip_annotation(char *name)
{
    static const char *const types[] = {"output", "input", "temp"};
    size_t n = strlen(name);
    for (size_t i = 0; i < VKF_ARRAY_SIZE(types); i++) {
        size_t t = strlen(types[i]);
        if (n >= t + 3 && name[n - 1] == ']' && name[n - t - 2] == '[' &&
            name[n - t - 3] == ' ' && !strncmp(name + n - t - 1, types[i], t)) {
            name[n - t - 3] = 0;
            return types[i];
        }
    }
    return NULL;
}

static int get_view(vkf_app *app, const vkf_http_request *req, const char *arg,
                    vkf_http_response *resp)
{
    int err = 0;
    const char *qname = vkf_http_query_get(&req->query, "filename");
    char *name = NULL, *dir_path = NULL, *file = NULL;
    if (!qname)
        return error_reply(resp, 404, "not_found", "No such file", "filename missing");
    VKF_CHECK_ALLOC(name = vkf_strdup(qname));
    const char *ann = strip_annotation(name);
    if (!name[0] || name[0] == '/' || strstr(name, "..")) {
        err = error_reply(resp, 400, "invalid_filename", "Invalid file name", qname);
        goto done;
    }
    const char *type = ann ? ann : vkf_http_query_get(&req->query, "type");
    const char *root = dir_by_type(app, type ? type : "output");
    if (!root) {
        err = error_reply(resp, 400, "invalid_type", "Unknown or unconfigured directory type",
                          type ? type : "output");
        goto done;
    }
    const char *sub = vkf_http_query_get(&req->query, "subfolder");
    VKF_CHECK_ALLOC(dir_path = sub ? lexical_join(root, sub) : vkf_strdup(root));
    if (!under_root(root, dir_path)) {
        err = error_reply(resp, 403, "forbidden", "The subfolder leads outside its directory",
                          sub);
        goto done;
    }
    const char *base = strrchr(name, '/');
    base = base ? base + 1 : name;
    VKF_CHECK_ALLOC(file = vkf_asprintf("%s/%s", dir_path, base));
    struct stat st;
    if (!base[0] || stat(file, &st) != 0 || !S_ISREG(st.st_mode)) {
        err = error_reply(resp, 404, "not_found", "No such file", qname);
        goto done;
    }
    /* A symlink that leads out of the directory is refused too. */
    if (!vkf_path_is_inside(root, file)) {
        err = error_reply(resp, 403, "forbidden", "The file lies outside its directory", qname);
        goto done;
    }
    bool dangerous;
    resp->status = 200;
    resp->content_type = vkf_mime_type(base, &dangerous);
    if (dangerous) {
        resp->content_type = "application/octet-stream";
        resp->attachment = true;
    }
    VKF_CHECK_ALLOC(resp->file_name = vkf_strdup(base));
    const char *preview = vkf_http_query_get(&req->query, "preview");
    if (preview && !dangerous && !strncmp(resp->content_type, "image/", 6)) {
        /* re-encoded for display; a file FFmpeg cannot read goes out as is */
        char *body = NULL;
        size_t len = 0;
        const char *ct = NULL;
        int cerr = vkf_view_convert(file, preview, vkf_http_query_get(&req->query, "channel"),
                                    &body, &len, &ct);
        if (cerr == VKF_ENOMEM) {
            err = cerr;
            goto done;
        }
        if (cerr == 0) {
            resp->body = body;
            resp->body_len = len;
            resp->content_type = ct;
            goto done;
        }
    }
    resp->file_path = file;
    file = NULL;
    goto done;
fail:
done:
    vkf_free(name);
    vkf_free(dir_path);
    vkf_free(file);
    return err;
}

static bool same_bytes(const char *path, const void *data, size_t size)
{
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode) || (size_t)st.st_size != size)
        return false;
    FILE *f = fopen(path, "rb");
    if (!f)
        return false;
    char buf[65536];
    size_t off = 0, n;
    bool same = true;
    while (same && (n = fread(buf, 1, sizeof(buf), f)) > 0) {
        same = off + n <= size && !memcmp(buf, (const char *)data + off, n);
        off += n;
    }
    fclose(f);
    return same && off == size;
}

static int make_dirs(const char *path)
{
    char *buf = vkf_strdup(path);
    if (!buf)
        return VKF_ENOMEM;
    int err = 0;
    for (char *p = buf + 1;; p++) {
        if (*p == '/' || *p == 0) {
            char saved = *p;
            *p = 0;
            if (mkdir(buf, 0755) != 0 && errno != EEXIST) {
                err = VKF_EIO;
                break;
            }
            *p = saved;
            if (!saved)
                break;
        }
    }
    vkf_free(buf);
    return err;
}

/* The image a mask upload applies to (ComfyUI's original_ref); on a bad
 * reference resp is filled with a 400 or 403. */
static int mask_original(vkf_app *app, const char *ref_json, vkf_http_response *resp,
                         char **path)
{
    int err = 0;
    char *name = NULL, *dir = NULL;
    cJSON *ref = ref_json ? cJSON_Parse(ref_json) : NULL;
    const cJSON *fn = cJSON_GetObjectItemCaseSensitive(ref, "filename");
    const cJSON *jtype = cJSON_GetObjectItemCaseSensitive(ref, "type");
    const cJSON *jsub = cJSON_GetObjectItemCaseSensitive(ref, "subfolder");
    if (!cJSON_IsString(fn) || (jtype && !cJSON_IsString(jtype)) ||
        (jsub && !cJSON_IsString(jsub))) {
        err = error_reply(resp, 400, "invalid_original_ref",
                          "original_ref must be a JSON object with a filename", "original_ref");
        goto done;
    }
    VKF_CHECK_ALLOC(name = vkf_strdup(fn->valuestring));
    const char *ann = strip_annotation(name);
    if (!name[0] || name[0] == '/' || strstr(name, "..")) {
        err = error_reply(resp, 400, "invalid_filename", "Invalid file name", fn->valuestring);
        goto done;
    }
    const char *type = ann ? ann : jtype ? jtype->valuestring : "output";
    const char *root = dir_by_type(app, type);
    if (!root) {
        err = error_reply(resp, 400, "invalid_type", "Unknown or unconfigured directory type", type);
        goto done;
    }
    const char *sub = jsub ? jsub->valuestring : "";
    VKF_CHECK_ALLOC(dir = sub[0] ? lexical_join(root, sub) : vkf_strdup(root));
    if (!under_root(root, dir)) {
        err = error_reply(resp, 403, "forbidden", "The subfolder leads outside its directory", sub);
        goto done;
    }
    VKF_CHECK_ALLOC(*path = vkf_asprintf("%s/%s", dir, name));
    struct stat st;
    if (stat(*path, &st) == 0 && !vkf_path_is_inside(root, *path)) {
        vkf_free(*path);
        *path = NULL;
        err = error_reply(resp, 403, "forbidden", "The file lies outside its directory", name);
    }
    goto done;
fail:
done:
    cJSON_Delete(ref);
    vkf_free(name);
    vkf_free(dir);
    return err;
}

int vkf_app_upload(vkf_app *app, const vkf_upload *up, vkf_http_response *resp)
{
    int err = 0;
    char *folder = NULL, *path = NULL, *name = NULL, *original = NULL;
    vkf_atomic_file *af = NULL;
    const char *type = up->type ? up->type : "input";
    const char *sub = up->subfolder ? up->subfolder : "";
    if (!up->filename || !up->filename[0])
        return error_reply(resp, 400, "invalid_upload", "No image file in the request", "image");
    const char *root = dir_by_type(app, type);
    if (!root)
        return error_reply(resp, 400, "invalid_type", "Unknown or unconfigured directory type",
                           type);
    /* Stricter than ComfyUI: the file name is a plain name. */
    if (strchr(up->filename, '/') || strchr(up->filename, '\\') || !strcmp(up->filename, ".") ||
        !strcmp(up->filename, ".."))
        return error_reply(resp, 400, "invalid_filename", "Invalid file name", up->filename);
    if (sub[0] && !vkf_path_name_is_safe(sub))
        return error_reply(resp, 400, "invalid_subfolder",
                           "The subfolder leads outside its directory", sub);
    if (up->mask) {
        err = mask_original(app, up->original_ref, resp, &original);
        if (err < 0 || resp->status)
            goto done;
    }
    VKF_CHECK_ALLOC(folder = lexical_join(root, sub));
    if (!under_root(root, folder) || make_dirs(folder) < 0 || !vkf_path_is_inside(root, folder)) {
        err = error_reply(resp, 400, "invalid_subfolder", "Cannot use that subfolder", sub);
        goto done;
    }
    VKF_CHECK_ALLOC(name = vkf_strdup(up->filename));
    VKF_CHECK_ALLOC(path = vkf_asprintf("%s/%s", folder, name));
    bool overwrite = up->overwrite && (!strcmp(up->overwrite, "true") || !strcmp(up->overwrite, "1"));
    bool duplicate = false;
    if (!overwrite) {
        size_t stem = stem_len(up->filename);
        struct stat st;
        for (int i = 1; lstat(path, &st) == 0; i++) {
            if (same_bytes(path, up->data, up->size)) {
                duplicate = true;
                break;
            }
            vkf_free(name);
            vkf_free(path);
            path = NULL;
            VKF_CHECK_ALLOC(name = vkf_asprintf("%.*s (%d)%s", (int)stem, up->filename, i,
                                                up->filename + stem));
            VKF_CHECK_ALLOC(path = vkf_asprintf("%s/%s", folder, name));
        }
    }
    struct stat ost;
    if (duplicate) {
        /* ComfyUI keeps the file that is already there. */
    } else if (up->mask) {
        /* As ComfyUI: nothing is written when the original is missing. */
        const char *why = NULL;
        if (original && stat(original, &ost) == 0 && S_ISREG(ost.st_mode) &&
            vkf_mask_composite(original, up->data, up->size, path, &why) < 0) {
            err = error_reply(resp, 400, "invalid_mask", "Cannot apply the mask", why);
            goto done;
        }
    } else if ((err = vkf_atomic_file_open(&af, path)) < 0 ||
               (err = vkf_atomic_file_write(af, up->data, up->size)) < 0 ||
               (err = vkf_atomic_file_commit(&af)) < 0) {
        vkf_atomic_file_abort(&af);
        err = error_reply(resp, 500, "io_error", "Cannot write the uploaded file", name);
        goto done;
    }
    cJSON *r = cJSON_CreateObject();
    if (!r || !cJSON_AddStringToObject(r, "name", name) ||
        !cJSON_AddStringToObject(r, "subfolder", sub) || !cJSON_AddStringToObject(r, "type", type)) {
        cJSON_Delete(r);
        err = VKF_ENOMEM;
        goto done;
    }
    err = vkf_http_json(resp, 200, r);
    goto done;
fail:
done:
    vkf_free(folder);
    vkf_free(path);
    vkf_free(name);
    vkf_free(original);
    return err;
}

static int post_upload_plain(vkf_app *app, const vkf_http_request *req, const char *arg,
                             vkf_http_response *resp)
{
    /* Reached only without a multipart body (server.c parses those). */
    return error_reply(resp, 400, "invalid_upload", "Expected a multipart/form-data body",
                       "Content-Type");
}

static int get_ws_plain(vkf_app *app, const vkf_http_request *req, const char *arg,
                        vkf_http_response *resp)
{
    return error_reply(resp, 400, "not_websocket", "Expected a websocket upgrade", "/ws");
}

/* ---- dispatch ------------------------------------------------------------------ */

typedef struct route {
    const char *path;     /* exact, or a prefix ending in '/' taking one segment */
    bool prefix;
    route_fn get, post;
} route;

static const route routes[] = {
    {"/", false, get_root, NULL},
    {"/ws", false, get_ws_plain, NULL},
    {"/prompt", false, get_prompt, post_prompt},
    {"/queue", false, get_queue, post_queue},
    {"/interrupt", false, NULL, post_interrupt},
    {"/free", false, NULL, post_free},
    {"/history", false, get_history, post_history},
    {"/history/", true, get_history_id, NULL},
    {"/object_info", false, get_object_info, NULL},
    {"/object_info/", true, get_object_info_class, NULL},
    {"/system_stats", false, get_system_stats, NULL},
    {"/embeddings", false, get_embeddings, NULL},
    {"/models", false, get_models, NULL},
    {"/models/", true, get_models_folder, NULL},
    {"/features", false, get_features, NULL},
    {"/view", false, get_view, NULL},
    {"/upload/image", false, NULL, post_upload_plain},
    {"/upload/mask", false, NULL, post_upload_plain},
};

int vkf_app_handle(vkf_app *app, const vkf_http_request *req, vkf_http_response *resp)
{
    const char *path = req->path;
    memset(resp, 0, sizeof(*resp));
    for (size_t i = 0; i < VKF_ARRAY_SIZE(routes); i++) {
        const route *r = &routes[i];
        const char *arg = NULL;
        if (r->prefix) {
            size_t n = strlen(r->path);
            if (strncmp(path, r->path, n) || !path[n] || strchr(path + n, '/'))
                continue;
            arg = path + n;
        } else if (strcmp(path, r->path)) {
            continue;
        }
        route_fn fn = !strcmp(req->method, "GET") ? r->get : !strcmp(req->method, "POST") ? r->post : NULL;
        if (!fn)
            return error_reply(resp, 405, "method_not_allowed", "Method not allowed", req->method);
        int err = fn(app, req, arg, resp);
        if (err < 0) {
            vkf_http_response_clear(resp);
            return error_reply(resp, 500, "internal_error", vkf_strerror(err), "");
        }
        return 0;
    }
    return error_reply(resp, 404, "not_found", "Not found", path);
}
