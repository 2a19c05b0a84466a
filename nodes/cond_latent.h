/* Internals shared by nodes/latent.c, nodes/conditioning.c and
 * nodes/text_encode.c, exposed for tests/models/test_cond_latent_nodes.c. */
#ifndef VKF_NODES_COND_LATENT_H
#define VKF_NODES_COND_LATENT_H

#include <stdbool.h>
#include <stdint.h>

#include "vkflow/gpu.h"

/* comfy.utils.common_upscale of the last two dims to (width, height):
 * method "nearest-exact", "bilinear", "area", "bicubic" or "bislerp"
 * (4-D only: VKF_EUNSUPPORTED otherwise); crop_center crops to the target
 * aspect first. */
int vkf_common_upscale(vkf_gpu *gpu, vkf_tensor *x, int64_t width, int64_t height,
                       const char *method, bool crop_center, vkf_tensor **out);
/* Rows idx[0..n) of t along dim 0, concatenated. */
int vkf_batch_gather(vkf_gpu *gpu, vkf_tensor *t, const int64_t *idx, int n, vkf_tensor **out);
/* A MASK [B, H, W] (or [H, W]) resized bilinearly to [B, h, w]. */
int vkf_mask_resize(vkf_gpu *gpu, vkf_tensor *mask, int64_t h, int64_t w, vkf_tensor **out);
/* LatentComposite's feather mask [rh, rw] (latent units), with the edges
 * that are feathered (those not on the border of samples_to). */
void vkf_latent_feather_mask(int64_t rh, int64_t rw, int64_t feather, bool top, bool bottom,
                             bool left, bool right, float *mask);

/* ComfyUI's ClipTokenWeightEncoder weighting on host data: z holds
 * n_chunks × 77 × dim hidden states, weights n_chunks × 77 token weights,
 * z_empty the 77 × dim encoding of the empty (all-pad) chunk.  Tokens with
 * weight != 1 become (z − z_empty)·w + z_empty in f32; others are copied
 * bit for bit. */
void vkf_clip_apply_weights(float *z, int n_chunks, int dim, const float *weights,
                            const float *z_empty);

#endif
