/*
 * vkflow — node definitions (the SDK a node file includes).
 *
 * A node is data: a static vkf_node_def with a table of inputs (in
 * declaration order: required first, then optional, then hidden — the same
 * order ComfyUI's /object_info "input_order" lists) and outputs, plus an
 * execute function.  Generic code parses, coerces and range-checks the JSON
 * values and hands execute() typed vkf_values, one per declared input, in
 * the same order as the table.
 *
 * Adding a node: write nodes/<name>.c exporting one `const vkf_node_def`,
 * then add one line to nodes/registry.c.
 */
#ifndef VKFLOW_NODE_H
#define VKFLOW_NODE_H

#include "common.h"
#include "value.h"

/* Input flags. */
enum {
    VKF_IN_OPTIONAL = 1 << 0,      /* may be absent (value kind NONE) */
    VKF_IN_HIDDEN = 1 << 1,        /* filled by the runtime, never in prompts */
    VKF_IN_MULTILINE = 1 << 2,     /* STRING shown as a text box */
    VKF_IN_DYNAMIC_PROMPTS = 1 << 3, /* STRING with {a|b} dynamic prompts */
    VKF_IN_FORCE_INPUT = 1 << 4,   /* a widget type that is a socket: no widget */
    VKF_IN_SEED_CONTROL = 1 << 5,  /* INT with control_after_generate */
    VKF_IN_NO_SEED_CONTROL = 1 << 6, /* an INT named seed without the control */
    VKF_IN_U64 = 1 << 7,           /* INT range is [imin, 2^64-1] (seeds) */
    VKF_IN_IMAGE_UPLOAD = 1 << 8,  /* COMBO followed by the "upload" widget */
    VKF_IN_LAZY = 1 << 9,
    VKF_IN_COMBO_CONTROL = 1 << 10, /* COMBO with control_after_generate */
};

/* Well-known type strings. */
#define VKF_T_INT "INT"
#define VKF_T_FLOAT "FLOAT"
#define VKF_T_STRING "STRING"
#define VKF_T_BOOLEAN "BOOLEAN"
#define VKF_T_COMBO "COMBO"
#define VKF_T_ANY "*"

typedef struct vkf_exec_ctx vkf_exec_ctx;
typedef struct vkf_paths vkf_paths;
typedef struct vkf_gpu vkf_gpu;

typedef struct vkf_input_def {
    const char *name;
    const char *type;          /* VKF_T_* or a socket type ("MODEL", ...) */
    unsigned flags;            /* VKF_IN_* */
    const char *tooltip;
    /* INT: default, min, max; step in fstep (0 = 1). */
    int64_t idef, imin, imax;
    /* FLOAT: default, min, max, step, round (0 = not given). */
    double fdef, fmin, fmax, fstep, fround;
    /* STRING default; COMBO default (NULL = first option). */
    const char *sdef;
    /* BOOLEAN default and labels (labels may be NULL). */
    bool bdef;
    const char *label_on, *label_off;
    /* COMBO: static NULL-terminated option list, or a model folder whose
     * file list are the options (e.g. "checkpoints"), or the special folder
     * "input" (image files in the input directory). */
    const char *const *options;
    const char *model_folder;
    /* COMBO: options computed from the paths (VAELoader's vae list with the
     * TAESD variants, LoadLatent's .latent files); wins over the above.
     * *names vkf_malloc'ed (vkf_strv_free). */
    int (*list_options)(const vkf_paths *paths, char ***names, int *count);
} vkf_input_def;

typedef struct vkf_output_def {
    const char *type;
    const char *name;          /* NULL = the type */
    const char *tooltip;
    bool is_list;              /* OUTPUT_IS_LIST */
} vkf_output_def;

/* Node flags. */
enum {
    VKF_NODE_OUTPUT = 1 << 0,        /* OUTPUT_NODE */
    VKF_NODE_INPUT_IS_LIST = 1 << 1, /* execute_list receives whole lists */
    VKF_NODE_NOT_IDEMPOTENT = 1 << 2, /* never shares cache across node ids */
    VKF_NODE_DEPRECATED = 1 << 3,
    VKF_NODE_EXPERIMENTAL = 1 << 4,
};

/* A list of values: what one output slot holds after a node ran. */
typedef struct vkf_list {
    int n;
    vkf_value *v;
} vkf_list;

void vkf_list_clear(vkf_list *l);
int vkf_list_append(vkf_list *l, const vkf_value *v);   /* copies v */
int vkf_list_copy(vkf_list *dst, const vkf_list *src);

typedef struct vkf_node_def {
    const char *name;           /* class_type */
    const char *display_name;
    const char *category;
    const char *description;
    const char *python_module;  /* reported in /object_info, e.g. "nodes" */
    const vkf_input_def *inputs;
    int nb_inputs;
    const vkf_output_def *outputs;
    int nb_outputs;
    unsigned flags;             /* VKF_NODE_* */

    /*
     * Called once per list index (ComfyUI's list semantics): in[k] is the
     * value of inputs[k] (kind NONE when an optional input is absent);
     * out[j] for outputs[j] starts as NONE and must be set on success.
     * Return 0 or a VKF_E* code after vkf_exec_error().  On error the node
     * releases what it made; the executor clears out[].
     */
    int (*execute)(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out);
    /* VKF_NODE_INPUT_IS_LIST: called once with whole lists; out[j] are
     * lists to fill. */
    int (*execute_list)(vkf_exec_ctx *ctx, const vkf_list *in, vkf_list *out);
    /*
     * Optional IS_CHANGED: given the constant inputs only (linked ones are
     * NONE), return in *key a vkf_malloc'ed string that joins the cache key
     * (e.g. a file hash), or NULL for "always run".
     */
    int (*fingerprint)(vkf_exec_ctx *ctx, const vkf_value *in, char **key);
    /*
     * Optional VALIDATE_INPUTS on constant inputs: return NULL if fine or a
     * vkf_malloc'ed message (a custom_validation_failed error).
     */
    char *(*validate)(const vkf_paths *paths, const vkf_value *in);
} vkf_node_def;

/* ---- services a running node may use ---------------------------------- */

const char *vkf_exec_node_id(const vkf_exec_ctx *ctx);
const vkf_node_def *vkf_exec_node_def(const vkf_exec_ctx *ctx);
const vkf_log *vkf_exec_log(const vkf_exec_ctx *ctx);
const vkf_paths *vkf_exec_paths(const vkf_exec_ctx *ctx);
/* The API prompt JSON and the UI workflow JSON (extra_pnginfo.workflow),
 * for embedding in outputs; either may be NULL. */
const char *vkf_exec_prompt_json(const vkf_exec_ctx *ctx);
const char *vkf_exec_workflow_json(const vkf_exec_ctx *ctx);
/* The Vulkan device of this run, created on first use (workflows that
 * need no GPU never touch Vulkan).  On failure the node's error message is
 * set (return the code). */
int vkf_exec_gpu(vkf_exec_ctx *ctx, vkf_gpu **gpu);
/* Record the failure message shown with execution_error; returns VKF_ERUN
 * so `return vkf_exec_error(ctx, ...)` reads naturally. */
int vkf_exec_error(vkf_exec_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Report progress (a sampler step, a tile).  Returns VKF_EINTERRUPTED if
 * the user asked to stop: the node must clean up and return it. */
int vkf_exec_progress(vkf_exec_ctx *ctx, int64_t value, int64_t max);
/* A live preview image (PNG bytes, copied by the receiver if kept) of
 * sampler step `step` of `total`: sent as a "preview" event. */
void vkf_exec_preview(vkf_exec_ctx *ctx, const uint8_t *png, size_t size, int step,
                      int total);
/* Non-zero if an interrupt is pending (checked at step boundaries). */
bool vkf_exec_interrupted(const vkf_exec_ctx *ctx);
/* Output-node UI results: appends to the list under key (e.g. "text",
 * "images"). */
int vkf_exec_ui_text(vkf_exec_ctx *ctx, const char *key, const char *text);
int vkf_exec_ui_file(vkf_exec_ctx *ctx, const char *key, const char *filename,
                     const char *subfolder, const char *type);
/* Print a line to the user (PreviewAny): goes to the run's text sink. */
void vkf_exec_print(vkf_exec_ctx *ctx, const char *text);

/* Convenience macros for input tables. */
#define VKF_INPUT_LINK(nm, ty) {.name = (nm), .type = (ty)}
#define VKF_INPUT_INT(nm, def, mn, mx) \
    {.name = (nm), .type = VKF_T_INT, .idef = (def), .imin = (mn), .imax = (mx)}
#define VKF_INPUT_FLOAT(nm, def, mn, mx, st) \
    {.name = (nm), .type = VKF_T_FLOAT, .fdef = (def), .fmin = (mn), .fmax = (mx), .fstep = (st)}
#define VKF_INPUT_STRING(nm, def) {.name = (nm), .type = VKF_T_STRING, .sdef = (def)}
#define VKF_INPUT_BOOL(nm, def) {.name = (nm), .type = VKF_T_BOOLEAN, .bdef = (def)}

#endif /* VKFLOW_NODE_H */
