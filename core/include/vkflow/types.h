/*
 * vkflow — the tensor-carrying link types, as ComfyUI defines them:
 *
 *   IMAGE   tensor [B, H, W, C], C = 3 (or 4), values 0..1, f32
 *   MASK    tensor [B, H, W], values 0..1 (1 = region to change), f32
 *   LATENT  samples [B, C, h, w] or [B, C, T, h, w] (raw VAE space), an
 *           optional noise_mask [B, 1, H, W] and optional batch_index list
 *
 * Objects are immutable once made: a node that changes an image makes a
 * new tensor.  Constructors take over the caller's tensor references.
 */
#ifndef VKFLOW_TYPES_H
#define VKFLOW_TYPES_H

#include "gpu.h"
#include "value.h"

extern const vkf_object_type vkf_type_image;
extern const vkf_object_type vkf_type_mask;
extern const vkf_object_type vkf_type_latent;

typedef struct vkf_latent {
    vkf_object obj;
    vkf_tensor *samples;
    vkf_tensor *noise_mask;     /* NULL if none */
    int64_t *batch_index;       /* NULL if none */
    int nb_batch_index;
} vkf_latent;

/* IMAGE / MASK values: on success v holds a new object owning t's
 * reference; on failure t's reference is dropped. */
int vkf_value_set_image(vkf_value *v, vkf_tensor *t);
int vkf_value_set_mask(vkf_value *v, vkf_tensor *t);
/* The tensor of an IMAGE / MASK value (borrowed), or NULL. */
vkf_tensor *vkf_value_image(const vkf_value *v);
vkf_tensor *vkf_value_mask(const vkf_value *v);

/* LATENT: takes samples' and noise_mask's references; batch_index is
 * copied.  On failure the references are dropped. */
int vkf_value_set_latent(vkf_value *v, vkf_tensor *samples, vkf_tensor *noise_mask,
                         const int64_t *batch_index, int nb_batch_index);
const vkf_latent *vkf_value_latent(const vkf_value *v);

#endif /* VKFLOW_TYPES_H */
