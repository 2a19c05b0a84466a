/*
 * vkflow — the executor: runs validated graphs, keeps a cache of node
 * outputs between runs, reports ComfyUI's events.
 *
 * One executor runs one graph at a time.  vkf_executor_interrupt() may be
 * called from another thread or a signal handler.
 */
#ifndef VKFLOW_EXECUTOR_H
#define VKFLOW_EXECUTOR_H

#include "common.h"
#include "gpu.h"
#include "graph.h"
#include "paths.h"

typedef struct vkf_executor vkf_executor;

/*
 * One event, named and shaped as ComfyUI's websocket messages:
 * execution_start, execution_cached, executing, progress, executed,
 * execution_success, execution_error, execution_interrupted; and
 * "preview" (binary, see blob).
 * data_json is the message's "data" object.  The convenience fields are
 * filled where they apply (else NULL / 0).
 */
typedef struct vkf_event {
    const char *type;
    const char *data_json;
    const char *prompt_id;
    const char *node_id;
    const char *class_type;
    int64_t value, max;          /* progress; preview: step + 1, steps */
    /* "preview": a PNG of the sampler's current estimate (ComfyUI sends it
     * as the binary PREVIEW_IMAGE message); NULL for other events. */
    const uint8_t *blob;
    size_t blob_size;
} vkf_event;

typedef void (*vkf_event_cb)(void *priv, const vkf_event *ev);

typedef struct vkf_executor_params {
    const vkf_registry *registry;  /* borrowed */
    const vkf_paths *paths;        /* borrowed */
    const vkf_log *log;            /* borrowed, may be NULL */
    vkf_event_cb on_event;         /* may be NULL */
    void *event_priv;
    /* How to create the Vulkan device when a node first needs it (copied;
     * NULL = device 0, no caches).  Its log field is replaced by `log`. */
    const vkf_gpu_params *gpu_params;
    /* Where PreviewAny and friends print (NULL = stdout). */
    void (*print)(void *priv, const char *node_id, const char *text);
    void *print_priv;
} vkf_executor_params;

int vkf_executor_create(vkf_executor **out, const vkf_executor_params *params);
void vkf_executor_destroy(vkf_executor **ex);

/*
 * Validates and runs g.  Returns 0 on success; VKF_EVALIDATION with *val
 * filled (val may be NULL); VKF_EINTERRUPTED; VKF_ERUN (the node's message
 * went out in execution_error and is in *run_error if non-NULL);
 * VKF_ENOMEM.  The caller frees *run_error with vkf_free.
 */
int vkf_executor_run(vkf_executor *ex, const vkf_graph *g, vkf_validation *val,
                     char **run_error);
/* Async-signal-safe. */
void vkf_executor_interrupt(vkf_executor *ex);
/* Drop every cached output. */
void vkf_executor_clear_cache(vkf_executor *ex);
/* The Vulkan device, or NULL if no node has needed one yet (borrowed). */
vkf_gpu *vkf_executor_gpu(const vkf_executor *ex);
/* Statistics of the last run: nodes executed and taken from cache. */
void vkf_executor_last_stats(const vkf_executor *ex, int *executed, int *cached);

#endif /* VKFLOW_EXECUTOR_H */
