/*
 * vkflow serve: a ComfyUI-compatible HTTP + websocket API (docs/server.md).
 *
 * Private to vkflow (the CLI and tests include it).  The server owns one
 * executor thread that takes prompts from a priority queue; the HTTP and
 * websocket side runs on libwebsockets' event loop in the thread that calls
 * vkf_server_run().
 */
#ifndef VKF_SERVER_H
#define VKF_SERVER_H

#include <stdint.h>

#include "vkflow/executor.h"
#include "vkflow/graph.h"
#include "vkflow/paths.h"

typedef struct vkf_server_params {
    const vkf_registry *registry;  /* borrowed, outlives the server */
    const vkf_paths *paths;        /* borrowed, outlives the server */
    const vkf_log *log;            /* borrowed, may be NULL */
    const char *listen;            /* address, default "127.0.0.1" */
    int port;                      /* default 8188 */
    const char *auth_token;        /* NULL = no authentication */
    const char *cors_origin;       /* NULL = no Access-Control-* headers */
    int64_t max_body_bytes;        /* request bodies and uploads; 0 = 100 MiB */
    int max_history;               /* history entries kept; 0 = 10000 */
    /* argv reported by /system_stats (borrowed, may be NULL). */
    int argc;
    char **argv;
} vkf_server_params;

typedef struct vkf_server vkf_server;

int vkf_server_create(vkf_server **out, const vkf_server_params *params);
/* Serves until vkf_server_stop(); returns 0 or a VKF_E* code (e.g. the port
 * could not be bound). */
int vkf_server_run(vkf_server *srv);
/* Async-signal-safe: interrupts the running prompt and makes
 * vkf_server_run() return. */
void vkf_server_stop(vkf_server *srv);
/* Joins the executor thread and frees everything.  NULL-safe. */
void vkf_server_destroy(vkf_server **srv);

/* ---- the HTTP-independent part, also used by the fuzz target ------------- */

typedef struct vkf_app vkf_app;

typedef struct vkf_http_query {
    const char *const *names;
    const char *const *values;
    int count;
} vkf_http_query;

typedef struct vkf_http_request {
    const char *method;      /* "GET", "POST", ... */
    const char *path;        /* "/prompt" ("/api" prefix already removed) */
    vkf_http_query query;    /* url-decoded arguments */
    const char *body;        /* JSON routes: the body (may be NULL) */
    size_t body_len;
} vkf_http_request;

typedef struct vkf_http_response {
    int status;
    const char *content_type;  /* static string */
    char *body;                /* vkf_malloc'ed */
    size_t body_len;
    char *file_path;           /* /view: send this file instead of body */
    char *file_name;           /* Content-Disposition file name */
    bool attachment;           /* Content-Disposition: attachment */
} vkf_http_response;

void vkf_http_response_clear(vkf_http_response *r);

/* Creates the app (queue, history, executor) without starting its thread
 * when start_worker is false (fuzzing, unit tests). */
int vkf_app_create(vkf_app **out, const vkf_server_params *params, bool start_worker);
void vkf_app_destroy(vkf_app **app);
/* Routes a request whose body is fully known (everything but uploads). */
int vkf_app_handle(vkf_app *app, const vkf_http_request *req, vkf_http_response *resp);

/* ---- websocket binary frames (ComfyUI's BinaryEventTypes) ---------------- */

enum {
    VKF_WS_PREVIEW_IMAGE = 1,
    VKF_WS_UNENCODED_PREVIEW_IMAGE = 2,
    VKF_WS_TEXT = 3,
    VKF_WS_PREVIEW_IMAGE_WITH_METADATA = 4,
};
enum { VKF_WS_IMAGE_JPEG = 1, VKF_WS_IMAGE_PNG = 2 };

/* [be32 1][be32 image_type][image] */
int vkf_ws_frame_preview(int image_type, const void *image, size_t size,
                         unsigned char **out, size_t *out_len);
/* [be32 4][be32 len][metadata JSON][image]; metadata_json is the complete
 * {node_id, prompt_id, display_node_id, parent_node_id, real_node_id,
 * image_type} object. */
int vkf_ws_frame_preview_meta(const char *metadata_json, const void *image, size_t size,
                              unsigned char **out, size_t *out_len);
/* [be32 3][be32 len(node_id)][node_id][text] */
int vkf_ws_frame_text(const char *node_id, const char *text, unsigned char **out,
                      size_t *out_len);

#endif
