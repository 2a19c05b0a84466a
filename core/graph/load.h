/*
 * Private declarations of the workflow loader (core/graph/parse.c,
 * json_text.c, ui_convert.c, graph.c and core/io/meta.c).
 */
#ifndef VKF_GRAPH_LOAD_H
#define VKF_GRAPH_LOAD_H

#include <cjson/cJSON.h>

#include "vkflow/graph.h"

/* ---- growable text buffer ------------------------------------------------
 * Appends never fail visibly: an allocation failure sets `failed` and
 * vkf_sb_finish() reports VKF_ENOMEM. */
typedef struct vkf_sb {
    char *buf;
    size_t len, cap;
    bool failed;
} vkf_sb;

void vkf_sb_putn(vkf_sb *sb, const char *s, size_t n);
void vkf_sb_puts(vkf_sb *sb, const char *s);
void vkf_sb_putc(vkf_sb *sb, char c);
/* A JSON string literal, ASCII-only (\uXXXX escapes, like Python's
 * json.dumps), so the text fits a Latin-1 PNG tEXt chunk. */
void vkf_sb_put_json_string(vkf_sb *sb, const char *s);
/* A FLOAT as JSON: Python repr digits; non-finite as 1e999 / -1e999 / null. */
void vkf_sb_put_json_double(vkf_sb *sb, double f);
/* Hands over the text (NUL-terminated) or returns VKF_ENOMEM. */
int vkf_sb_finish(vkf_sb *sb, char **out);
void vkf_sb_free(vkf_sb *sb);

/* ---- JSON with exact numbers ---------------------------------------------- */

/*
 * Strictly checks `len` bytes of JSON text, then parses it with cJSON and
 * attaches to every number item its literal text in item->valuestring
 * (freed by cJSON_Delete through the vkf allocation hooks).  A syntax error
 * is VKF_EPARSE with err->line/column set and the message
 * "line L, column C: ..."; `what` (may be NULL) prefixes the message.
 */
int vkf_json_parse(const char *text, size_t len, const char *what, cJSON **out,
                   vkf_load_error *err);
/* obj[key] as JavaScript and Python read it: case-sensitive, the last of
 * duplicate keys wins.  NULL if absent or obj is not an object. */
const cJSON *vkf_json_get(const cJSON *obj, const char *key);
/* Writes item as JSON (numbers from their literal when they have one). */
void vkf_json_write(vkf_sb *sb, const cJSON *item, bool pretty, int indent);
int vkf_json_to_text(const cJSON *item, char **out);
/*
 * A JSON constant as a vkf_value: integer literals as exact INT (u64 above
 * INT64_MAX; FLOAT beyond 2^64-1), other numbers FLOAT, strings, booleans;
 * arrays, objects and null as VKF_VAL_JSON text.  {"__value__": x} unwraps x.
 */
int vkf_json_to_value(const cJSON *item, vkf_value *v);
/* An integer-valued number item (exact literal when present) into *out. */
bool vkf_json_int(const cJSON *item, int64_t *out);

/* ---- load errors ------------------------------------------------------------ */

/* Records code and message in err (if non-NULL); returns code. */
int vkf_load_fail(vkf_load_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- graph building ----------------------------------------------------------- */

vkf_graph_node *vkf_graph_add_node(vkf_graph *g, const char *id);
/* Sets input `name` of n, replacing an existing one in place (like a
 * Python dict).  Takes ownership of in->value/src_id; in->name is copied. */
int vkf_graph_node_put(vkf_graph_node *n, const char *name, vkf_graph_input *in);
void vkf_graph_node_remove_input(vkf_graph_node *n, int idx);
void vkf_graph_input_clear(vkf_graph_input *in);
/* Input value from an API-format JSON item (link, bad link or constant). */
int vkf_graph_input_from_json(const cJSON *item, vkf_graph_input *in);

/* An API-format prompt object into g (nodes appended). */
int vkf_graph_from_api(const cJSON *prompt, vkf_graph *g, vkf_load_error *err);
/* A UI-format workflow into g, using reg for the widget layouts. */
int vkf_ui_convert(const cJSON *workflow, const vkf_registry *reg, vkf_graph *g,
                   vkf_load_error *err);

#endif
