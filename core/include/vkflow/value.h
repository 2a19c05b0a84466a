/*
 * vkflow — values that travel on links and sit in widget inputs.
 *
 * Scalars (INT, FLOAT, STRING, BOOLEAN) are stored inline; JSON constants
 * that are not scalars (arrays given as {"__value__": [...]}, objects, null)
 * are kept as their JSON text; everything else (IMAGE, LATENT, MODEL, ...)
 * is a reference-counted vkf_object.
 *
 * A vkf_value owns what it points to: vkf_value_clear() frees the string or
 * drops the object reference.  Copies take their own reference.
 */
#ifndef VKFLOW_VALUE_H
#define VKFLOW_VALUE_H

#include "common.h"

typedef struct vkf_object vkf_object;

typedef struct vkf_object_type {
    const char *name;                     /* link type, e.g. "IMAGE" */
    void (*destroy)(vkf_object *obj);     /* frees the object itself too */
    /* Optional: a short human description (PreviewAny, errors).  Returns a
     * vkf_malloc'ed string or NULL. */
    char *(*describe)(const vkf_object *obj);
} vkf_object_type;

struct vkf_object {
    const vkf_object_type *type;
    long refs;                            /* atomically updated */
};

/* Set up a freshly allocated object with one reference. */
void vkf_object_init(vkf_object *obj, const vkf_object_type *type);
vkf_object *vkf_object_ref(vkf_object *obj);
/* Drops one reference, destroys at zero, sets *obj to NULL. NULL-safe. */
void vkf_object_unref(vkf_object **obj);

typedef enum vkf_value_kind {
    VKF_VAL_NONE = 0,   /* absent (an optional input not given) */
    VKF_VAL_INT,
    VKF_VAL_FLOAT,
    VKF_VAL_STRING,
    VKF_VAL_BOOL,
    VKF_VAL_JSON,       /* non-scalar JSON constant, kept as text in .s */
    VKF_VAL_OBJECT,
} vkf_value_kind;

typedef struct vkf_value {
    vkf_value_kind kind;
    /* INT only: the value is (uint64_t)i and lies above INT64_MAX (seeds
     * run to 2^64-1). */
    bool is_u64;
    union {
        int64_t i;
        double f;
        bool b;
        char *s;          /* STRING and JSON */
        vkf_object *obj;
    } u;
} vkf_value;

void vkf_value_clear(vkf_value *v);
int vkf_value_copy(vkf_value *dst, const vkf_value *src);
/* Constructors: dst must be clear (or NONE) on entry. */
void vkf_value_set_int(vkf_value *v, int64_t i);
void vkf_value_set_u64(vkf_value *v, uint64_t u);
void vkf_value_set_float(vkf_value *v, double f);
void vkf_value_set_bool(vkf_value *v, bool b);
int vkf_value_set_string(vkf_value *v, const char *s);
/* Takes ownership of obj's reference. */
void vkf_value_set_object(vkf_value *v, vkf_object *obj);

/* Unsigned view of an INT (seeds). */
uint64_t vkf_value_u64(const vkf_value *v);
/* Numeric view of INT or FLOAT. */
double vkf_value_number(const vkf_value *v);
/* Exact equality (used by the cache): same kind, same bits/text/object. */
bool vkf_value_equal(const vkf_value *a, const vkf_value *b);
/*
 * Text rendering: INT as decimal, FLOAT as the shortest repr that reads
 * back exactly (like Python's repr), STRING raw, BOOL as "True"/"False"
 * (Python's str()), JSON its text, OBJECT the type's describe() or
 * "<TYPE object>".  Returns a vkf_malloc'ed string or NULL.
 */
char *vkf_value_to_text(const vkf_value *v);
/* Shortest round-tripping decimal text of a double into buf (>= 32). */
void vkf_format_double(char *buf, size_t size, double f);

#endif /* VKFLOW_VALUE_H */
