/* Private declarations shared by the files of core/graph. */
#ifndef VKF_GRAPH_INTERNAL_H
#define VKF_GRAPH_INTERNAL_H

#include "vkflow/node.h"

/* NULL-terminated list of the built-in nodes (nodes/registry.c). */
extern const vkf_node_def *const vkf_builtin_nodes[];

#endif
