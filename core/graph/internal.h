/* Private declarations shared by the files of core/graph. */
#ifndef VKF_GRAPH_INTERNAL_H
#define VKF_GRAPH_INTERNAL_H

#include "vkflow/node.h"

/* NULL-terminated list of the built-in nodes (nodes/registry.c). */
extern const vkf_node_def *const vkf_builtin_nodes[];

#endif

#include <cjson/cJSON.h>

#include "vkflow/graph.h"
#include "vkflow/paths.h"

/* How one declared input of a planned node gets its value. */
enum { VKF_RIN_ABSENT = 0, VKF_RIN_CONST, VKF_RIN_LINK };

typedef struct vkf_resolved_input {
    int kind;
    vkf_value value;   /* VKF_RIN_CONST: coerced to the declared type */
    int src;           /* VKF_RIN_LINK: index into plan->nodes */
    int slot;
} vkf_resolved_input;

enum { VKF_PN_UNSEEN = 0, VKF_PN_VISITING, VKF_PN_VALID, VKF_PN_INVALID };

typedef struct vkf_plan_node {
    const vkf_graph_node *gn;
    const vkf_node_def *def;
    vkf_resolved_input *in;   /* def->nb_inputs entries */
    int state;                /* VKF_PN_* */
    int nerr;                 /* index into validation->node_errors, or -1 */
} vkf_plan_node;

typedef struct vkf_plan {
    const vkf_graph *graph;
    vkf_plan_node *nodes;     /* graph order */
    int nb;
    int *outputs;             /* validated output nodes */
    int nb_outputs;
} vkf_plan;

/* Validates and, on success (v->ok), returns the resolved plan. */
int vkf_plan_build(const vkf_graph *g, const vkf_registry *reg,
                   const vkf_paths *paths, vkf_validation *v, vkf_plan **out);
void vkf_plan_free(vkf_plan **p);

/* The ComfyUI [TYPE, {options}] config of an input as JSON (object_info,
 * validation extra_info).  Combo lists of model folders are read from
 * paths (may be NULL: empty list). */
cJSON *vkf_input_config_json(const vkf_input_def *in, const vkf_paths *paths);
/* /object_info entry of one node. */
cJSON *vkf_node_info_json(const vkf_node_def *def, const vkf_paths *paths);
/* Option list of a combo (static or from a folder); free with vkf_strv_free. */
int vkf_combo_options(const vkf_input_def *in, const vkf_paths *paths,
                      char ***opts, int *count);
/* Python-like rendering of a value (for messages). */
char *vkf_value_repr(const vkf_value *v);
/* cJSON_AddItemToObject that frees item when it cannot be added. */
bool vkf_json_add(cJSON *obj, const char *key, cJSON *item);
/* Route cJSON's allocations through vkf_malloc (idempotent). */
void vkf_cjson_init(void);
