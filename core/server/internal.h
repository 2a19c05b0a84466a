/* Private declarations shared by the files of core/server. */
#ifndef VKF_SERVER_INTERNAL_H
#define VKF_SERVER_INTERNAL_H

#include <pthread.h>

#include <cjson/cJSON.h>

#include "server/server.h"

#define VKF_SERVER_DEFAULT_BODY_BYTES (100 * 1024 * 1024)
#define VKF_SERVER_DEFAULT_HISTORY 10000

/* Where the app's websocket messages go: called from any thread.  sid NULL
 * = every socket.  text is a complete {"type", "data"} message. */
typedef void (*vkf_app_send_fn)(void *priv, const char *sid, const char *text);
/* Binary messages (ComfyUI's BinaryEventTypes frames: previews). */
typedef void (*vkf_app_send_bin_fn)(void *priv, const char *sid, const void *data, size_t len);

/* ---- queue.c: the prompt queue, history and the executor thread -------- */

typedef struct vkf_queue_item {
    double number;
    char *prompt_id;
    char *client_id;         /* NULL: events are not routed to a socket */
    char *item_json;         /* [number, prompt_id, prompt, extra_data, outputs] */
    vkf_graph *graph;
} vkf_queue_item;

typedef struct vkf_history_entry {
    char *prompt_id;
    char *json;              /* the record (§5.6) as JSON text */
} vkf_history_entry;

struct vkf_app {
    vkf_server_params p;
    vkf_executor *ex;
    vkf_app_send_fn send;
    vkf_app_send_bin_fn send_bin;
    void *send_priv;

    pthread_mutex_t lock;    /* everything below */
    pthread_cond_t wake;
    bool lock_ready;
    bool stopping;
    bool worker_started;
    pthread_t worker;
    vkf_queue_item **queue;  /* sorted: lowest (number, prompt_id) first */
    int nb_queue, cap_queue;
    vkf_queue_item *running;
    char *running_node;      /* last "executing" node of the running prompt */
    double counter;          /* ComfyUI's self.number */
    bool flag_free_memory, flag_unload_models;
    vkf_history_entry *history;  /* oldest first */
    int nb_history, cap_history;

    /* Executor thread only: the record being built for the running prompt. */
    cJSON *run_outputs, *run_meta, *run_messages;
    cJSON *run_progress;     /* progress_state's "nodes" */
    char *run_progress_node; /* the node running now */
    char *held_final;        /* the final "executing" message, sent last */
};

/* Sets the message sink (before the worker starts). */
void vkf_app_set_sink(vkf_app *app, vkf_app_send_fn send, void *priv);
/* /view?preview=FORMAT[;QUALITY]: the file's first image re-encoded as
 * WebP or JPEG (view_convert.c).  *out vkf_malloc'ed. */
int vkf_view_convert(const char *path, const char *preview, const char *channel,
                     char **out, size_t *out_len, const char **content_type);
/* Sets the binary sink (same priv as the text sink). */
void vkf_app_set_bin_sink(vkf_app *app, vkf_app_send_bin_fn send_bin);
/* Takes ownership of item; the queue orders it. */
int vkf_queue_put(vkf_app *app, vkf_queue_item *item);
void vkf_queue_item_free(vkf_queue_item **item);
int vkf_app_queue_remaining(vkf_app *app);
/* {"exec_info": {"queue_remaining": n}} */
cJSON *vkf_app_queue_info(vkf_app *app);
/* Broadcasts the "status" message (the queue changed). */
void vkf_app_queue_changed(vkf_app *app);
/* The "executing" message to replay to a reconnecting client, or NULL. */
char *vkf_app_replay_executing(vkf_app *app, const char *sid);
/* Sends {"type": type, "data": data} (consumes data) to sid / everyone. */
void vkf_app_send(vkf_app *app, const char *sid, const char *type, cJSON *data);

int vkf_queue_start_worker(vkf_app *app);
void vkf_queue_stop_worker(vkf_app *app);
/* JSON of GET /queue, GET /history (max_items < 0: all; offset < 0: the
 * newest max_items), GET /history/{id}. */
char *vkf_queue_json(vkf_app *app);
char *vkf_history_json(vkf_app *app, const char *prompt_id, long max_items, long offset);
void vkf_queue_clear(vkf_app *app);
bool vkf_queue_delete(vkf_app *app, const char *prompt_id);
void vkf_history_clear(vkf_app *app);
void vkf_history_delete(vkf_app *app, const char *prompt_id);
/* POST /interrupt: prompt_id NULL = whatever runs. */
void vkf_app_interrupt(vkf_app *app, const char *prompt_id);
void vkf_app_set_free_flags(vkf_app *app, bool unload_models, bool free_memory);

/* ---- routes.c ------------------------------------------------------------ */

/* Multipart upload fields (POST /upload/image and /upload/mask). */
typedef struct vkf_upload {
    bool mask;
    const char *filename;    /* the image part's file name (NULL: no file) */
    const void *data;
    size_t size;
    const char *type;        /* NULL = "input" */
    const char *subfolder;   /* NULL = "" */
    const char *overwrite;
    const char *original_ref;  /* mask only */
} vkf_upload;

int vkf_app_upload(vkf_app *app, const vkf_upload *up, vkf_http_response *resp);
/* mask.c: original (PNG) with its alpha replaced by the mask's, written
 * atomically to dest; *error says why it failed. */
int vkf_mask_composite(const char *original, const void *mask, size_t mask_size,
                       const char *dest, const char **error);
/* A JSON response: {"error": {"type", "message", "details", "extra_info"}}. */
int vkf_http_error(vkf_http_response *resp, int status, const char *type, const char *message);
int vkf_http_json(vkf_http_response *resp, int status, cJSON *body);   /* consumes body */
const char *vkf_http_query_get(const vkf_http_query *q, const char *name);
const char *vkf_mime_type(const char *filename, bool *dangerous);

#endif
