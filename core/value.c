/* Values on links and widgets; reference-counted objects; value lists. */
#include <inttypes.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vkflow/node.h"
#include "vkflow/value.h"

void vkf_object_init(vkf_object *obj, const vkf_object_type *type)
{
    obj->type = type;
    atomic_store((_Atomic long *)&obj->refs, 1);
}

vkf_object *vkf_object_ref(vkf_object *obj)
{
    if (obj)
        atomic_fetch_add((_Atomic long *)&obj->refs, 1);
    return obj;
}

void vkf_object_unref(vkf_object **pobj)
{
    vkf_object *obj = *pobj;
    if (!obj)
        return;
    *pobj = NULL;
    if (atomic_fetch_sub((_Atomic long *)&obj->refs, 1) == 1)
        obj->type->destroy(obj);
}

void vkf_value_clear(vkf_value *v)
{
    if (!v)
        return;
    if (v->kind == VKF_VAL_STRING || v->kind == VKF_VAL_JSON)
        vkf_free(v->u.s);
    else if (v->kind == VKF_VAL_OBJECT)
        vkf_object_unref(&v->u.obj);
    memset(v, 0, sizeof(*v));
}

int vkf_value_copy(vkf_value *dst, const vkf_value *src)
{
    vkf_value tmp = *src;
    if (src->kind == VKF_VAL_STRING || src->kind == VKF_VAL_JSON) {
        tmp.u.s = vkf_strdup(src->u.s);
        if (!tmp.u.s)
            return VKF_ENOMEM;
    } else if (src->kind == VKF_VAL_OBJECT) {
        vkf_object_ref(src->u.obj);
    }
    *dst = tmp;
    return 0;
}

void vkf_value_set_int(vkf_value *v, int64_t i)
{
    *v = (vkf_value){.kind = VKF_VAL_INT, .u.i = i};
}

void vkf_value_set_u64(vkf_value *v, uint64_t u)
{
    *v = (vkf_value){.kind = VKF_VAL_INT, .is_u64 = u > (uint64_t)INT64_MAX,
                     .u.i = (int64_t)u};
}

void vkf_value_set_float(vkf_value *v, double f)
{
    *v = (vkf_value){.kind = VKF_VAL_FLOAT, .u.f = f};
}

void vkf_value_set_bool(vkf_value *v, bool b)
{
    *v = (vkf_value){.kind = VKF_VAL_BOOL, .u.b = b};
}

int vkf_value_set_string(vkf_value *v, const char *s)
{
    char *d = vkf_strdup(s);
    if (!d)
        return VKF_ENOMEM;
    *v = (vkf_value){.kind = VKF_VAL_STRING, .u.s = d};
    return 0;
}

void vkf_value_set_object(vkf_value *v, vkf_object *obj)
{
    *v = (vkf_value){.kind = VKF_VAL_OBJECT, .u.obj = obj};
}

uint64_t vkf_value_u64(const vkf_value *v)
{
    if (v->kind == VKF_VAL_INT)
        return (uint64_t)v->u.i;
    if (v->kind == VKF_VAL_FLOAT && v->u.f >= 0)
        return (uint64_t)v->u.f;
    return 0;
}

double vkf_value_number(const vkf_value *v)
{
    switch (v->kind) {
    case VKF_VAL_INT:
        return v->is_u64 ? (double)(uint64_t)v->u.i : (double)v->u.i;
    case VKF_VAL_FLOAT:
        return v->u.f;
    case VKF_VAL_BOOL:
        return v->u.b;
    default:
        return 0;
    }
}

bool vkf_value_equal(const vkf_value *a, const vkf_value *b)
{
    if (a->kind != b->kind)
        return false;
    switch (a->kind) {
    case VKF_VAL_NONE:
        return true;
    case VKF_VAL_INT:
        return a->u.i == b->u.i && a->is_u64 == b->is_u64;
    case VKF_VAL_FLOAT:
        return memcmp(&a->u.f, &b->u.f, sizeof(double)) == 0;
    case VKF_VAL_BOOL:
        return a->u.b == b->u.b;
    case VKF_VAL_STRING:
    case VKF_VAL_JSON:
        return strcmp(a->u.s, b->u.s) == 0;
    case VKF_VAL_OBJECT:
        return a->u.obj == b->u.obj;
    }
    return false;
}

void vkf_format_double(char *buf, size_t size, double f)
{
    if (isnan(f)) {
        snprintf(buf, size, "nan");
        return;
    }
    if (isinf(f)) {
        snprintf(buf, size, f > 0 ? "inf" : "-inf");
        return;
    }
    /* Shortest precision that reads back exactly, as Python's repr. */
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, size, "%.*g", prec, f);
        if (strtod(buf, NULL) == f)
            break;
    }
    /* Python prints integral floats with ".0". */
    if (!strpbrk(buf, ".eEn") && strlen(buf) + 3 <= size)
        strcat(buf, ".0");
}

char *vkf_value_to_text(const vkf_value *v)
{
    char buf[64];
    switch (v->kind) {
    case VKF_VAL_NONE:
        return vkf_strdup("None");
    case VKF_VAL_INT:
        if (v->is_u64)
            snprintf(buf, sizeof(buf), "%" PRIu64, (uint64_t)v->u.i);
        else
            snprintf(buf, sizeof(buf), "%" PRId64, v->u.i);
        return vkf_strdup(buf);
    case VKF_VAL_FLOAT:
        vkf_format_double(buf, sizeof(buf), v->u.f);
        return vkf_strdup(buf);
    case VKF_VAL_BOOL:
        return vkf_strdup(v->u.b ? "True" : "False");
    case VKF_VAL_STRING:
    case VKF_VAL_JSON:
        return vkf_strdup(v->u.s);
    case VKF_VAL_OBJECT:
        if (v->u.obj->type->describe)
            return v->u.obj->type->describe(v->u.obj);
        return vkf_asprintf("<%s object>", v->u.obj->type->name);
    }
    return NULL;
}

void vkf_list_clear(vkf_list *l)
{
    for (int i = 0; i < l->n; i++)
        vkf_value_clear(&l->v[i]);
    vkf_free(l->v);
    l->v = NULL;
    l->n = 0;
}

int vkf_list_append(vkf_list *l, const vkf_value *v)
{
    vkf_value *nv = vkf_realloc(l->v, sizeof(*nv) * (size_t)(l->n + 1));
    if (!nv)
        return VKF_ENOMEM;
    l->v = nv;
    int err = vkf_value_copy(&l->v[l->n], v);
    if (err < 0)
        return err;
    l->n++;
    return 0;
}

int vkf_list_copy(vkf_list *dst, const vkf_list *src)
{
    vkf_list tmp = {0};
    for (int i = 0; i < src->n; i++) {
        int err = vkf_list_append(&tmp, &src->v[i]);
        if (err < 0) {
            vkf_list_clear(&tmp);
            return err;
        }
    }
    *dst = tmp;
    return 0;
}
