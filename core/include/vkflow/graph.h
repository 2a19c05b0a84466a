/*
 * vkflow — workflows: the in-memory API-format prompt, loading it from the
 * file formats users have, the node registry and validation.
 */
#ifndef VKFLOW_GRAPH_H
#define VKFLOW_GRAPH_H

#include "common.h"
#include "node.h"

/* ---- registry ----------------------------------------------------------- */

typedef struct vkf_registry vkf_registry;

/* A registry preloaded with every built-in node. */
int vkf_registry_create(vkf_registry **out);
void vkf_registry_destroy(vkf_registry **reg);
/* Adds a node definition (borrowed: must outlive the registry).  Refuses a
 * duplicate class name with VKF_EINVAL. */
int vkf_registry_add(vkf_registry *reg, const vkf_node_def *def);
const vkf_node_def *vkf_registry_find(const vkf_registry *reg, const char *name);
int vkf_registry_count(const vkf_registry *reg);
/* i-th definition in name order. */
const vkf_node_def *vkf_registry_at(const vkf_registry *reg, int i);

/* ---- the API-format prompt ---------------------------------------------- */

typedef struct vkf_graph_input {
    char *name;
    bool is_link;
    char *src_id;          /* link: source node id */
    int src_slot;          /* link: source output index */
    vkf_value value;       /* constant (when !is_link) */
    bool bad_link;         /* a JSON list of length != 2: bad_linked_input */
} vkf_graph_input;

typedef struct vkf_graph_node {
    char *id;
    char *class_type;      /* NULL when missing in the file */
    char *title;           /* _meta.title or NULL */
    vkf_graph_input *inputs;
    int nb_inputs;
} vkf_graph_node;

typedef struct vkf_graph {
    vkf_graph_node *nodes;   /* in file order */
    int nb_nodes;
    /* From a POST /prompt body or the embedding file; may be NULL. */
    char *client_id;
    char *prompt_id;
    char **partial_targets;  /* partial_execution_targets */
    int nb_partial_targets;
    /* Canonical JSON text of the API prompt (for metadata in outputs) and
     * of the UI workflow it came from, when known. */
    char *prompt_json;
    char *workflow_json;
    /* Unknown frontend nodes met while converting a UI workflow. */
} vkf_graph;

void vkf_graph_free(vkf_graph **g);
vkf_graph_node *vkf_graph_find(const vkf_graph *g, const char *id);
const vkf_graph_input *vkf_graph_node_input(const vkf_graph_node *n, const char *name);
/* Serialise as API-format JSON (node order kept, "_meta" titles kept). */
int vkf_graph_to_json(const vkf_graph *g, char **json, bool pretty);
/* Set a constant input ("--set ID.INPUT=VALUE"); value text is parsed as
 * JSON if it parses, else taken as a string. */
int vkf_graph_set_input(vkf_graph *g, const char *node_id, const char *input,
                        const char *value_text, char **errmsg);

/* ---- loading ------------------------------------------------------------ */

/*
 * Load errors.  A parse error carries a position; an unknown-nodes error
 * lists every unknown class at once.
 */
typedef struct vkf_load_error {
    int code;              /* VKF_E* */
    char *message;         /* full human message */
    int line, column;      /* 1-based, 0 if not applicable */
    char **unknown_classes;  /* UI conversion: node types vkflow lacks */
    int nb_unknown;
} vkf_load_error;

void vkf_load_error_clear(vkf_load_error *e);

/*
 * Loads any supported workflow file: API-format JSON, a POST /prompt body
 * ({"prompt": ...}), a UI-format workflow (converted with the registry's
 * definitions), or a PNG / WebP with embedded "prompt"/"workflow"
 * metadata (the embedded API prompt is preferred; the UI workflow is
 * converted when there is no prompt).
 */
int vkf_load_workflow_file(const char *path, const vkf_registry *reg,
                           vkf_graph **out, vkf_load_error *err);
int vkf_load_workflow_mem(const void *data, size_t size, const char *name_hint,
                          const vkf_registry *reg, vkf_graph **out,
                          vkf_load_error *err);
/* JSON text in, graph out (API, body or UI format). */
int vkf_load_workflow_json(const char *json, size_t len, const vkf_registry *reg,
                           vkf_graph **out, vkf_load_error *err);

/* ---- validation ---------------------------------------------------------- */

typedef struct vkf_validate_error {
    char *type;            /* ComfyUI error type, e.g. "value_smaller_than_min" */
    char *message;
    char *details;
    char *input_name;      /* NULL for node-level errors */
    char *extra_json;      /* extra_info object as JSON text */
} vkf_validate_error;

typedef struct vkf_node_errors {
    char *node_id;
    char *class_type;
    vkf_validate_error *errors;
    int nb_errors;
    char **dependent_outputs;
    int nb_dependent;
} vkf_node_errors;

typedef struct vkf_validation {
    bool ok;                      /* at least one output validated */
    vkf_validate_error error;     /* top-level error when !ok (type NULL if ok) */
    vkf_node_errors *node_errors;
    int nb_node_errors;
    char **outputs;               /* ids of output nodes that validated */
    int nb_outputs;
} vkf_validation;

void vkf_validation_clear(vkf_validation *v);
/* ComfyUI's {"error": ..., "node_errors": {...}} JSON. */
int vkf_validation_to_json(const vkf_validation *v, char **json, bool pretty);
/* Human-readable multi-line report: "node 3 (KSampler) input 'steps': ...". */
char *vkf_validation_to_text(const vkf_validation *v);

/*
 * Validate g against the registry and the model folders (combo lists).
 * Returns 0 when validation ran (see v->ok), < 0 on allocation failure.
 */
int vkf_validate(const vkf_graph *g, const vkf_registry *reg,
                 const vkf_paths *paths, vkf_validation *v);

/* Link type compatibility (comma sets intersect, "*" matches anything). */
bool vkf_types_match(const char *received, const char *wanted);

#endif /* VKFLOW_GRAPH_H */
