/*
 * vkflow — private YAML-subset parser, enough for ComfyUI configuration files
 * such as extra_model_paths.yaml.
 *
 * Supported: block mappings and block sequences nested by indentation (spaces
 * only), plain / 'single' / "double" quoted scalars on one line, literal (|)
 * and folded (>) block scalars with chomping (-, +) and indentation
 * indicators, comments, blank lines, a leading "---", CRLF line ends and a
 * UTF-8 BOM.  Plain "null", "Null", "NULL", "~" and empty values are nulls.
 *
 * Refused with VKF_EPARSE and a logged "<name>:<line>: <reason>": flow
 * collections ([...] {...}), anchors, aliases, tags, directives, complex
 * keys, multi-line quoted or plain scalars, tabs in indentation, NUL bytes,
 * and anything whose indentation does not fit the structure.
 *
 * A duplicate key keeps its first position and takes the last value, as
 * PyYAML's safe_load does.
 */
#ifndef VKFLOW_YAML_H
#define VKFLOW_YAML_H

#include "vkflow/common.h"

typedef enum vkf_yaml_type {
    VKF_YAML_NULL = 0,
    VKF_YAML_SCALAR,
    VKF_YAML_MAP,
    VKF_YAML_SEQ,
} vkf_yaml_type;

typedef struct vkf_yaml_node vkf_yaml_node;

typedef struct vkf_yaml_entry {
    char *key;              /* MAP: the key; SEQ: NULL */
    vkf_yaml_node *value;   /* never NULL (a null value is a VKF_YAML_NULL node) */
} vkf_yaml_entry;

struct vkf_yaml_node {
    vkf_yaml_type type;
    int line;               /* 1-based line where the node starts */
    char *scalar;           /* SCALAR: text; block scalars keep their '\n's */
    bool plain;             /* SCALAR: was unquoted (so "true" is a boolean) */
    vkf_yaml_entry *entries;/* MAP / SEQ: n entries in document order */
    int n, cap;
};

/* Parses `len` bytes of `text`; `name` (a file name) prefixes error messages.
 * *out is a tree owned by the caller (an empty document gives a NULL node). */
int vkf_yaml_parse(const char *text, size_t len, const char *name,
                   const vkf_log *log, vkf_yaml_node **out);
/* Reads and parses a file.  VKF_ENOTFOUND if it does not exist, VKF_EIO on
 * other file errors (both logged). */
int vkf_yaml_parse_file(const char *path, const vkf_log *log, vkf_yaml_node **out);
void vkf_yaml_free(vkf_yaml_node **node);

/* Value of `key` in a MAP node, or NULL (not a map / no such key). */
const vkf_yaml_node *vkf_yaml_map_get(const vkf_yaml_node *map, const char *key);
/* A plain scalar true/True/TRUE/yes/Yes/YES/on/On/ON (YAML 1.1, as PyYAML). */
bool vkf_yaml_is_true(const vkf_yaml_node *node);

#endif /* VKFLOW_YAML_H */
