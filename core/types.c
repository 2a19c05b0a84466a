/* IMAGE, MASK and LATENT objects over GPU tensors. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "vkflow/types.h"

typedef struct tensor_obj {
    vkf_object obj;
    vkf_tensor *t;
} tensor_obj;

static void tensor_obj_destroy(vkf_object *o)
{
    tensor_obj *to = (tensor_obj *)o;
    vkf_tensor_unref(&to->t);
    vkf_free(to);
}

/* "IMAGE [1, 512, 512, 3] f32" */
static char *describe_tensor(const char *type, const vkf_tensor *t)
{
    char buf[256];
    int n = snprintf(buf, sizeof(buf), "%s [", type);
    const int64_t *shape = vkf_tensor_shape(t);
    for (int d = 0; d < vkf_tensor_ndim(t) && n < (int)sizeof(buf) - 32; d++)
        n += snprintf(buf + n, sizeof(buf) - (size_t)n, "%s%" PRId64, d ? ", " : "", shape[d]);
    snprintf(buf + n, sizeof(buf) - (size_t)n, "] %s", vkf_dtype_name(vkf_tensor_dtype(t)));
    return vkf_strdup(buf);
}

static char *tensor_obj_describe(const vkf_object *o)
{
    return describe_tensor(o->type->name, ((const tensor_obj *)o)->t);
}

const vkf_object_type vkf_type_image = {
    .name = "IMAGE", .destroy = tensor_obj_destroy, .describe = tensor_obj_describe,
};
const vkf_object_type vkf_type_mask = {
    .name = "MASK", .destroy = tensor_obj_destroy, .describe = tensor_obj_describe,
};

static int set_tensor_obj(vkf_value *v, const vkf_object_type *type, vkf_tensor *t)
{
    tensor_obj *to = vkf_calloc(1, sizeof(*to));
    if (!to) {
        vkf_tensor_unref(&t);
        return VKF_ENOMEM;
    }
    vkf_object_init(&to->obj, type);
    to->t = t;
    vkf_value_set_object(v, &to->obj);
    return 0;
}

int vkf_value_set_image(vkf_value *v, vkf_tensor *t)
{
    return set_tensor_obj(v, &vkf_type_image, t);
}

int vkf_value_set_mask(vkf_value *v, vkf_tensor *t)
{
    return set_tensor_obj(v, &vkf_type_mask, t);
}

static vkf_tensor *tensor_of(const vkf_value *v, const vkf_object_type *type)
{
    if (v->kind != VKF_VAL_OBJECT || v->u.obj->type != type)
        return NULL;
    return ((const tensor_obj *)v->u.obj)->t;
}

vkf_tensor *vkf_value_image(const vkf_value *v)
{
    return tensor_of(v, &vkf_type_image);
}

vkf_tensor *vkf_value_mask(const vkf_value *v)
{
    return tensor_of(v, &vkf_type_mask);
}

static void latent_destroy(vkf_object *o)
{
    vkf_latent *l = (vkf_latent *)o;
    vkf_tensor_unref(&l->samples);
    vkf_tensor_unref(&l->noise_mask);
    vkf_free(l->batch_index);
    vkf_free(l);
}

static char *latent_describe(const vkf_object *o)
{
    const vkf_latent *l = (const vkf_latent *)o;
    char *s = describe_tensor("LATENT", l->samples);
    if (s && l->noise_mask) {
        char *n = vkf_asprintf("%s with noise_mask", s);
        vkf_free(s);
        s = n;
    }
    return s;
}

const vkf_object_type vkf_type_latent = {
    .name = "LATENT", .destroy = latent_destroy, .describe = latent_describe,
};

int vkf_value_set_latent(vkf_value *v, vkf_tensor *samples, vkf_tensor *noise_mask,
                         const int64_t *batch_index, int nb_batch_index)
{
    vkf_latent *l = vkf_calloc(1, sizeof(*l));
    int64_t *bi = NULL;
    if (l && nb_batch_index > 0) {
        bi = vkf_malloc(sizeof(*bi) * (size_t)nb_batch_index);
        if (bi)
            memcpy(bi, batch_index, sizeof(*bi) * (size_t)nb_batch_index);
    }
    if (!l || (nb_batch_index > 0 && !bi)) {
        vkf_free(l);
        vkf_tensor_unref(&samples);
        vkf_tensor_unref(&noise_mask);
        return VKF_ENOMEM;
    }
    vkf_object_init(&l->obj, &vkf_type_latent);
    l->samples = samples;
    l->noise_mask = noise_mask;
    l->batch_index = bi;
    l->nb_batch_index = bi ? nb_batch_index : 0;
    vkf_value_set_object(v, &l->obj);
    return 0;
}

const vkf_latent *vkf_value_latent(const vkf_value *v)
{
    if (v->kind != VKF_VAL_OBJECT || v->u.obj->type != &vkf_type_latent)
        return NULL;
    return (const vkf_latent *)v->u.obj;
}
