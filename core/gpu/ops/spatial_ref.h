/*
 * Convolution, pooling and resampling internals shared by the ops
 * (core/gpu/ops/conv.c, pool.c, resample.c), their plain-C references and
 * the tests/bench that reach into them.  Private to core/gpu.
 */
#ifndef VKF_GPU_OPS_SPATIAL_REF_H
#define VKF_GPU_OPS_SPATIAL_REF_H

#include "vkflow/gpu.h"

/* One convolution, 2-D when t == kt == 1.  x [n, cin, t, h, w] (any cache
 * frames already prepended), w [cout, cin/groups, kt, kh, kw]. */
typedef struct vkf_conv_geom {
    int64_t n, cin, cout, groups;
    int64_t t, h, w;
    int kt, kh, kw;
    int st, sh, sw;                /* stride */
    int dt, dh, dw;                /* dilation */
    int pt0, pt1;                  /* zero frames before / after */
    int ph, pw;                    /* zero rows / columns on both sides */
} vkf_conv_geom;

/* Output extent along each axis; < 1 when the kernel does not fit. */
void vkf_conv_out_dims(const vkf_conv_geom *g, int64_t *to, int64_t *ho,
                       int64_t *wo);
/* out [n, cout, to, ho, wo]; bias may be NULL; double accumulation. */
void vkf_ref_conv(const float *x, const float *w, const float *bias,
                  const vkf_conv_geom *g, float *out);

/* Register tile of shaders/conv.comp: an invocation owns tm output channels
 * × tn output pixels; wg invocations per workgroup.  tex: read w, and x
 * too, through texel buffers where they allow it (one chunk, not bf16).
 * With wg == subgroup size == 8 and tn % 8 == 0 input pixels are shared
 * by subgroupBroadcast. */
typedef struct vkf_conv_tile {
    uint32_t tm, tn, wg;
    bool tex;
    bool no_bcast;                 /* disable the subgroup-broadcast path */
    bool no_wpack;                 /* disable the packed-weight path */
} vkf_conv_tile;

void vkf_conv_default_tile(const vkf_gpu *gpu, const vkf_conv_geom *g,
                           vkf_conv_tile *tile);
/* x: contiguous-able [n, cin, h, w] (t == 1) or [n, cin, t, h, w]; out has
 * x's rank. */
int vkf_op_conv_tiled(vkf_gpu *gpu, vkf_tensor *x, vkf_tensor *w,
                      vkf_tensor *bias, const vkf_conv_geom *g,
                      const vkf_conv_tile *tile, vkf_tensor **out);

/* x [planes, h, w] → out [planes, ho, wo] (see vkf_op_avg_pool2d). */
void vkf_ref_pool2d(bool max, const float *x, int64_t planes, int64_t h,
                    int64_t w, const vkf_pool2d_params *p, float *out);
/* Output extent of vkf_op_upsample for one axis (size or floor(in*scale)). */
int64_t vkf_upsample_out_size(int64_t in, int64_t size, double scale);
/* x [planes, h, w] → out [planes, ho, wo] with torch's index rules. */
void vkf_ref_upsample(const float *x, int64_t planes, int64_t h, int64_t w,
                      const vkf_upsample_params *p, float *out);

#endif
