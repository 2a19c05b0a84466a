/* Latent nodes of ComfyUI's nodes.py (EmptyLatentImage, LatentUpscale,
 * LatentUpscaleBy, LatentComposite, LatentBlend, LatentFromBatch,
 * RepeatLatentBatch, SetLatentNoiseMask, SaveLatent, LoadLatent),
 * comfy_extras/nodes_latent.py (LatentBatch) and nodes_mask.py
 * (LatentCompositeMasked).  Tensors stay on the GPU; resampling follows
 * comfy.utils.common_upscale. */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cond_latent.h"
#include "nodes.h"
#include "save_naming.h"
#include "vkflow/models.h"
#include "vkflow/paths.h"
#include "vkflow/types.h"
#include "vkflow/weights.h"

#define MAX_RES 16384

static const char *const upscale_methods[] = {"nearest-exact", "bilinear", "area", "bicubic",
                                              "bislerp", NULL};
static const char *const crop_methods[] = {"disabled", "center", NULL};

static vkf_tensor *tref(vkf_tensor *t)
{
    return t ? vkf_tensor_ref(t) : NULL;
}

/* The LATENT input or an error naming it. */
static const vkf_latent *latent_arg(vkf_exec_ctx *ctx, const vkf_value *v)
{
    const vkf_latent *l = vkf_value_latent(v);
    return l && l->samples ? l : NULL;
}

/* out = {samples (taken), noise_mask (new ref of mask), batch_index (copied)}. */
static int set_latent_like(vkf_value *out, vkf_tensor *samples, vkf_tensor *mask,
                           const int64_t *bi, int nbi)
{
    return vkf_value_set_latent(out, samples, tref(mask), bi, nbi);
}

int vkf_common_upscale(vkf_gpu *gpu, vkf_tensor *x, int64_t width, int64_t height,
                       const char *method, bool crop_center, vkf_tensor **out)
{
    int err = 0;
    vkf_tensor *a = NULL, *b = NULL;
    int nd = vkf_tensor_ndim(x);
    if (nd < 3 || width < 1 || height < 1)
        return VKF_EINVAL;
    const int64_t *sh = vkf_tensor_shape(x);
    int64_t ow = sh[nd - 1], oh = sh[nd - 2];
    vkf_tensor *s = x;
    if (crop_center) {
        /* Centre crop to the target aspect (Python round: half to even). */
        double old_aspect = (double)ow / (double)oh, new_aspect = (double)width / (double)height;
        int64_t cx = 0, cy = 0;
        if (old_aspect > new_aspect)
            cx = (int64_t)nearbyint((ow - ow * (new_aspect / old_aspect)) / 2);
        else if (old_aspect < new_aspect)
            cy = (int64_t)nearbyint((oh - oh * (old_aspect / new_aspect)) / 2);
        if (cx || cy) {
            VKF_TRY(vkf_tensor_slice(x, nd - 2, cy, oh - 2 * cy, &a));
            VKF_TRY(vkf_tensor_slice(a, nd - 1, cx, ow - 2 * cx, &b));
            s = b;
        }
    }
    if (!strcmp(method, "nearest-exact") || !strcmp(method, "bilinear")) {
        vkf_upsample_params p = {
            .mode = method[0] == 'n' ? VKF_UPSAMPLE_NEAREST_EXACT : VKF_UPSAMPLE_BILINEAR,
            .size = {height, width},
        };
        err = vkf_op_upsample(gpu, s, &p, out);
    } else if (!strcmp(method, "area")) {
        err = vkf_op_resample_ext(gpu, s, VKF_RESAMPLE_AREA, height, width, out);
    } else if (!strcmp(method, "bicubic")) {
        err = vkf_op_resample_ext(gpu, s, VKF_RESAMPLE_BICUBIC, height, width, out);
    } else if (!strcmp(method, "bislerp")) {
        err = nd == 4 ? vkf_op_resample_ext(gpu, s, VKF_RESAMPLE_BISLERP, height, width, out)
                      : VKF_EUNSUPPORTED;
    } else {
        err = VKF_EINVAL;
    }
fail:
    vkf_tensor_unref(&a);
    vkf_tensor_unref(&b);
    return err;
}

int vkf_batch_gather(vkf_gpu *gpu, vkf_tensor *t, const int64_t *idx, int n, vkf_tensor **out)
{
    int err = 0;
    if (n < 1)
        return VKF_EINVAL;
    vkf_tensor **parts = vkf_calloc((size_t)n, sizeof(*parts));
    if (!parts)
        return VKF_ENOMEM;
    for (int i = 0; i < n; i++)
        VKF_TRY(vkf_tensor_slice(t, 0, idx[i], 1, &parts[i]));
    err = vkf_op_concat(gpu, parts, n, 0, out);
fail:
    for (int i = 0; i < n; i++)
        vkf_tensor_unref(&parts[i]);
    vkf_free(parts);
    return err;
}

static int upscale_error(vkf_exec_ctx *ctx, const char *node, const char *method, int err)
{
    if (err == VKF_EUNSUPPORTED)
        return vkf_exec_error(ctx, "%s: upscale_method '%s' works on 4-D image latents only", node,
                              method);
    return vkf_exec_error(ctx, "%s: resampling failed: %s", node, vkf_strerror(err));
}

/* ---- EmptyLatentImage ------------------------------------------------------ */

static int zeros(vkf_gpu *gpu, int ndim, const int64_t *shape, vkf_tensor **out)
{
    int64_t n = 1;
    for (int i = 0; i < ndim; i++)
        n *= shape[i];
    float *z = vkf_calloc((size_t)n, sizeof(float));
    if (!z)
        return VKF_ENOMEM;
    int err = vkf_tensor_create(gpu, VKF_DTYPE_F32, ndim, shape, out);
    if (err >= 0 && (err = vkf_tensor_upload(*out, z)) < 0)
        vkf_tensor_unref(out);
    vkf_free(z);
    return err;
}

static int empty_latent(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    vkf_gpu *gpu;
    vkf_tensor *t = NULL;
    int err = vkf_exec_gpu(ctx, &gpu);
    if (err < 0)
        return err;
    int64_t shape[4] = {in[2].u.i, 4, in[1].u.i / 8, in[0].u.i / 8};
    if ((err = zeros(gpu, 4, shape, &t)) < 0)
        return err == VKF_ENOMEM ? err
                                 : vkf_exec_error(ctx, "EmptyLatentImage: cannot allocate: %s",
                                                  vkf_strerror(err));
    return vkf_value_set_latent(&out[0], t, NULL, NULL, 0);
}

static const vkf_input_def empty_inputs[] = {
    {.name = "width", .type = VKF_T_INT, .idef = 512, .imin = 16, .imax = MAX_RES, .fstep = 8,
     .tooltip = "The width of the latent images in pixels."},
    {.name = "height", .type = VKF_T_INT, .idef = 512, .imin = 16, .imax = MAX_RES, .fstep = 8,
     .tooltip = "The height of the latent images in pixels."},
    {.name = "batch_size", .type = VKF_T_INT, .idef = 1, .imin = 1, .imax = 4096,
     .tooltip = "The number of latent images in the batch."},
};
static const vkf_output_def empty_outputs[] = {
    {.type = "LATENT", .tooltip = "The empty latent image batch."},
};

const vkf_node_def vkf_node_EmptyLatentImage = {
    .name = "EmptyLatentImage",
    .display_name = "Empty Latent Image",
    .category = "latent",
    .description = "Create a new batch of empty latent images to be denoised via sampling.",
    .python_module = "nodes",
    .inputs = empty_inputs, .nb_inputs = 3,
    .outputs = empty_outputs, .nb_outputs = 1,
    .execute = empty_latent,
};

/* ---- LatentUpscale / LatentUpscaleBy ---------------------------------------- */

static int latent_upscale(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    const vkf_latent *l = latent_arg(ctx, &in[0]);
    const char *method = in[1].u.s;
    int64_t width = in[2].u.i, height = in[3].u.i;
    bool center = !strcmp(in[4].u.s, "center");
    if (!l)
        return vkf_exec_error(ctx, "LatentUpscale: samples is not a LATENT");
    int nd = vkf_tensor_ndim(l->samples);
    const int64_t *sh = vkf_tensor_shape(l->samples);
    if (width == 0 && height == 0)
        return set_latent_like(&out[0], vkf_tensor_ref(l->samples), l->noise_mask, l->batch_index,
                               l->nb_batch_index);
    int64_t lh = sh[nd - 2], lw = sh[nd - 1];
    if (width == 0) {
        height = height > 64 ? height : 64;
        width = (int64_t)nearbyint((double)lw * (double)height / (double)lh);
        width = width > 64 ? width : 64;
    } else if (height == 0) {
        width = width > 64 ? width : 64;
        height = (int64_t)nearbyint((double)lh * (double)width / (double)lw);
        height = height > 64 ? height : 64;
    } else {
        width = width > 64 ? width : 64;
        height = height > 64 ? height : 64;
    }
    vkf_gpu *gpu;
    vkf_tensor *t = NULL;
    int err = vkf_exec_gpu(ctx, &gpu);
    if (err < 0)
        return err;
    if ((err = vkf_common_upscale(gpu, l->samples, width / 8, height / 8, method, center, &t)) < 0)
        return upscale_error(ctx, "LatentUpscale", method, err);
    return set_latent_like(&out[0], t, l->noise_mask, l->batch_index, l->nb_batch_index);
}

static const vkf_input_def upscale_inputs[] = {
    VKF_INPUT_LINK("samples", "LATENT"),
    {.name = "upscale_method", .type = VKF_T_COMBO, .options = upscale_methods},
    {.name = "width", .type = VKF_T_INT, .idef = 512, .imin = 0, .imax = MAX_RES, .fstep = 8},
    {.name = "height", .type = VKF_T_INT, .idef = 512, .imin = 0, .imax = MAX_RES, .fstep = 8},
    {.name = "crop", .type = VKF_T_COMBO, .options = crop_methods},
};
static const vkf_output_def latent_output[] = {{.type = "LATENT"}};

const vkf_node_def vkf_node_LatentUpscale = {
    .name = "LatentUpscale",
    .display_name = "Upscale Latent",
    .category = "latent",
    .python_module = "nodes",
    .inputs = upscale_inputs, .nb_inputs = 5,
    .outputs = latent_output, .nb_outputs = 1,
    .execute = latent_upscale,
};

static int latent_upscale_by(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    const vkf_latent *l = latent_arg(ctx, &in[0]);
    const char *method = in[1].u.s;
    double scale = in[2].u.f;
    if (!l)
        return vkf_exec_error(ctx, "LatentUpscaleBy: samples is not a LATENT");
    int nd = vkf_tensor_ndim(l->samples);
    const int64_t *sh = vkf_tensor_shape(l->samples);
    int64_t width = (int64_t)nearbyint((double)sh[nd - 1] * scale);
    int64_t height = (int64_t)nearbyint((double)sh[nd - 2] * scale);
    if (width < 1 || height < 1)
        return vkf_exec_error(ctx, "LatentUpscaleBy: scale_by %g makes a %lldx%lld latent empty",
                              scale, (long long)sh[nd - 1], (long long)sh[nd - 2]);
    vkf_gpu *gpu;
    vkf_tensor *t = NULL;
    int err = vkf_exec_gpu(ctx, &gpu);
    if (err < 0)
        return err;
    if ((err = vkf_common_upscale(gpu, l->samples, width, height, method, false, &t)) < 0)
        return upscale_error(ctx, "LatentUpscaleBy", method, err);
    return set_latent_like(&out[0], t, l->noise_mask, l->batch_index, l->nb_batch_index);
}

static const vkf_input_def upscale_by_inputs[] = {
    VKF_INPUT_LINK("samples", "LATENT"),
    {.name = "upscale_method", .type = VKF_T_COMBO, .options = upscale_methods},
    {.name = "scale_by", .type = VKF_T_FLOAT, .fdef = 1.5, .fmin = 0.01, .fmax = 8.0,
     .fstep = 0.01},
};

const vkf_node_def vkf_node_LatentUpscaleBy = {
    .name = "LatentUpscaleBy",
    .display_name = "Upscale Latent By",
    .category = "latent",
    .python_module = "nodes",
    .inputs = upscale_by_inputs, .nb_inputs = 3,
    .outputs = latent_output, .nb_outputs = 1,
    .execute = latent_upscale_by,
};

/* ---- LatentComposite -------------------------------------------------------- */

/* Python's slice [a:b] of a sequence of length len → [*s, *e). */
static void py_slice(int64_t a, int64_t b, int64_t len, int64_t *s, int64_t *e)
{
    if (a < 0)
        a += len;
    if (b < 0)
        b += len;
    a = a < 0 ? 0 : a > len ? len : a;
    b = b < 0 ? 0 : b > len ? len : b;
    *s = a;
    *e = b > a ? b : a;
}

void vkf_latent_feather_mask(int64_t rh, int64_t rw, int64_t feather, bool top, bool bottom,
                             bool left, bool right, float *mask)
{
    for (int64_t i = 0; i < rh * rw; i++)
        mask[i] = 1.0f;
    for (int64_t t = 0; t < feather; t++) {
        float f = (float)((1.0 / (double)feather) * (double)(t + 1));
        int64_t s, e;
        if (top) {
            py_slice(t, t + 1, rh, &s, &e);
            for (int64_t y = s; y < e; y++)
                for (int64_t x = 0; x < rw; x++)
                    mask[y * rw + x] *= f;
        }
        if (bottom) {
            py_slice(rh - 1 - t, rh - t, rh, &s, &e);
            for (int64_t y = s; y < e; y++)
                for (int64_t x = 0; x < rw; x++)
                    mask[y * rw + x] *= f;
        }
        if (left) {
            py_slice(t, t + 1, rw, &s, &e);
            for (int64_t y = 0; y < rh; y++)
                for (int64_t x = s; x < e; x++)
                    mask[y * rw + x] *= f;
        }
        if (right) {
            py_slice(rw - 1 - t, rw - t, rw, &s, &e);
            for (int64_t y = 0; y < rh; y++)
                for (int64_t x = s; x < e; x++)
                    mask[y * rw + x] *= f;
        }
    }
}

static int latent_composite(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    const vkf_latent *to = latent_arg(ctx, &in[0]), *from = latent_arg(ctx, &in[1]);
    int64_t x = in[2].u.i / 8, y = in[3].u.i / 8, feather = in[4].u.i / 8;
    if (!to || !from)
        return vkf_exec_error(ctx, "LatentComposite: samples_to and samples_from must be LATENTs");
    if (vkf_tensor_ndim(to->samples) != 4 || vkf_tensor_ndim(from->samples) != 4)
        return vkf_exec_error(ctx, "LatentComposite: 4-D image latents only");
    const int64_t *ts = vkf_tensor_shape(to->samples), *fs = vkf_tensor_shape(from->samples);
    if (ts[1] != fs[1] || (fs[0] != ts[0] && fs[0] != 1))
        return vkf_exec_error(ctx,
                              "LatentComposite: samples_from [%lld, %lld, ...] does not fit "
                              "samples_to [%lld, %lld, ...]",
                              (long long)fs[0], (long long)fs[1], (long long)ts[0], (long long)ts[1]);
    vkf_gpu *gpu;
    vkf_tensor *src = NULL, *m = NULL, *t = NULL;
    float *host = NULL;
    int err = vkf_exec_gpu(ctx, &gpu);
    if (err < 0)
        return err;
    /* The part of samples_from that lands inside samples_to (a placement
     * entirely outside leaves samples_to unchanged). */
    int64_t rh = y < ts[2] ? (fs[2] < ts[2] - y ? fs[2] : ts[2] - y) : 0;
    int64_t rw = x < ts[3] ? (fs[3] < ts[3] - x ? fs[3] : ts[3] - x) : 0;
    if (rh == 0 || rw == 0) {
        err = vkf_op_contiguous(gpu, to->samples, &t);
        goto done;
    }
    vkf_tensor *a = NULL;
    VKF_TRY(vkf_tensor_slice(from->samples, 2, 0, rh, &a));
    err = vkf_tensor_slice(a, 3, 0, rw, &src);
    vkf_tensor_unref(&a);
    if (err < 0)
        goto fail;
    if (feather > 0) {
        VKF_CHECK_ALLOC(host = vkf_malloc(sizeof(float) * (size_t)(rh * rw)));
        vkf_latent_feather_mask(rh, rw, feather, y != 0, y + rh < ts[2], x != 0, x + rw < ts[3],
                                host);
        VKF_TRY(vkf_tensor_create(gpu, VKF_DTYPE_F32, 3, (int64_t[]){1, rh, rw}, &m));
        VKF_TRY(vkf_tensor_upload(m, host));
    }
    err = vkf_op_composite(gpu, to->samples, src, m, x, y, &t);
done:
    if (err >= 0) {
        err = set_latent_like(&out[0], t, to->noise_mask, to->batch_index, to->nb_batch_index);
        t = NULL;
    }
fail:
    if (err < 0 && err != VKF_ENOMEM && err != VKF_ERUN)
        err = vkf_exec_error(ctx, "LatentComposite: %s", vkf_strerror(err));
    vkf_tensor_unref(&t);
    vkf_tensor_unref(&src);
    vkf_tensor_unref(&m);
    vkf_free(host);
    return err;
}

static const vkf_input_def composite_inputs[] = {
    VKF_INPUT_LINK("samples_to", "LATENT"),
    VKF_INPUT_LINK("samples_from", "LATENT"),
    {.name = "x", .type = VKF_T_INT, .idef = 0, .imin = 0, .imax = MAX_RES, .fstep = 8},
    {.name = "y", .type = VKF_T_INT, .idef = 0, .imin = 0, .imax = MAX_RES, .fstep = 8},
    {.name = "feather", .type = VKF_T_INT, .idef = 0, .imin = 0, .imax = MAX_RES, .fstep = 8},
};

const vkf_node_def vkf_node_LatentComposite = {
    .name = "LatentComposite",
    .display_name = "Latent Composite",
    .category = "latent",
    .python_module = "nodes",
    .inputs = composite_inputs, .nb_inputs = 5,
    .outputs = latent_output, .nb_outputs = 1,
    .execute = latent_composite,
};

/* ---- LatentCompositeMasked (comfy_extras/nodes_mask.py) ------------------------ */

/* A MASK [B, H, W] (or [H, W]) resized bilinearly to (h, w): [B, h, w]. */
int vkf_mask_resize(vkf_gpu *gpu, vkf_tensor *mask, int64_t h, int64_t w, vkf_tensor **out)
{
    int err = 0;
    vkf_tensor *mc = NULL, *m4 = NULL, *r = NULL;
    int nd = vkf_tensor_ndim(mask);
    const int64_t *ms = vkf_tensor_shape(mask);
    if (nd < 2)
        return VKF_EINVAL;
    int64_t mh = ms[nd - 2], mw = ms[nd - 1], mb = vkf_tensor_numel(mask) / (mh * mw);
    VKF_TRY(vkf_op_contiguous(gpu, mask, &mc));
    VKF_TRY(vkf_tensor_reshape(mc, 4, (int64_t[]){mb, 1, mh, mw}, &m4));
    vkf_upsample_params p = {.mode = VKF_UPSAMPLE_BILINEAR, .size = {h, w}};
    VKF_TRY(vkf_op_upsample(gpu, m4, &p, &r));
    VKF_TRY(vkf_tensor_reshape(r, 3, (int64_t[]){mb, h, w}, out));
fail:
    vkf_tensor_unref(&mc);
    vkf_tensor_unref(&m4);
    vkf_tensor_unref(&r);
    return err;
}

static int latent_composite_masked(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    const vkf_latent *dst = latent_arg(ctx, &in[0]), *srcl = latent_arg(ctx, &in[1]);
    int64_t x = in[2].u.i, y = in[3].u.i;
    bool resize = in[4].u.b;
    vkf_tensor *mask = vkf_value_mask(&in[5]);
    if (!dst || !srcl)
        return vkf_exec_error(ctx, "LatentCompositeMasked: destination and source must be LATENTs");
    if (vkf_tensor_ndim(dst->samples) != 4 || vkf_tensor_ndim(srcl->samples) != 4)
        return vkf_exec_error(ctx, "LatentCompositeMasked: 4-D image latents only");
    const int64_t *ds = vkf_tensor_shape(dst->samples);
    if (vkf_tensor_shape(srcl->samples)[1] != ds[1])
        return vkf_exec_error(ctx, "LatentCompositeMasked: source has %lld channels, destination %lld",
                              (long long)vkf_tensor_shape(srcl->samples)[1], (long long)ds[1]);
    vkf_gpu *gpu;
    vkf_tensor *src = NULL, *m = NULL, *t = NULL;
    int err = vkf_exec_gpu(ctx, &gpu);
    if (err < 0)
        return err;
    if (resize) {
        vkf_upsample_params p = {.mode = VKF_UPSAMPLE_BILINEAR, .size = {ds[2], ds[3]}};
        VKF_TRY(vkf_op_upsample(gpu, srcl->samples, &p, &src));
    } else {
        src = vkf_tensor_ref(srcl->samples);
    }
    const int64_t *ss = vkf_tensor_shape(src);
    /* composite(): x, y clamped to the destination (multiplier 8). */
    x = x < ds[3] * 8 ? x : ds[3] * 8;
    y = y < ds[2] * 8 ? y : ds[2] * 8;
    if (mask)
        VKF_TRY(vkf_mask_resize(gpu, mask, ss[2], ss[3], &m));
    VKF_TRY(vkf_op_composite(gpu, dst->samples, src, m, x / 8, y / 8, &t));
    err = set_latent_like(&out[0], t, dst->noise_mask, dst->batch_index, dst->nb_batch_index);
    t = NULL;
fail:
    if (err < 0 && err != VKF_ENOMEM && err != VKF_ERUN)
        err = vkf_exec_error(ctx, "LatentCompositeMasked: %s", vkf_strerror(err));
    vkf_tensor_unref(&t);
    vkf_tensor_unref(&src);
    vkf_tensor_unref(&m);
    return err;
}

static const vkf_input_def composite_masked_inputs[] = {
    VKF_INPUT_LINK("destination", "LATENT"),
    VKF_INPUT_LINK("source", "LATENT"),
    {.name = "x", .type = VKF_T_INT, .idef = 0, .imin = 0, .imax = MAX_RES, .fstep = 8},
    {.name = "y", .type = VKF_T_INT, .idef = 0, .imin = 0, .imax = MAX_RES, .fstep = 8},
    VKF_INPUT_BOOL("resize_source", false),
    {.name = "mask", .type = "MASK", .flags = VKF_IN_OPTIONAL},
};

const vkf_node_def vkf_node_LatentCompositeMasked = {
    .name = "LatentCompositeMasked",
    .category = "latent",
    .python_module = "comfy_extras.nodes_mask",
    .inputs = composite_masked_inputs, .nb_inputs = 6,
    .outputs = latent_output, .nb_outputs = 1,
    .execute = latent_composite_masked,
};

/* ---- LatentBlend ------------------------------------------------------------- */

static int latent_blend(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    const vkf_latent *l1 = latent_arg(ctx, &in[0]), *l2 = latent_arg(ctx, &in[1]);
    double f = in[2].u.f;
    if (!l1 || !l2)
        return vkf_exec_error(ctx, "LatentBlend: samples1 and samples2 must be LATENTs");
    vkf_gpu *gpu;
    vkf_tensor *s2 = NULL, *a = NULL, *b = NULL, *t = NULL;
    int err = vkf_exec_gpu(ctx, &gpu);
    if (err < 0)
        return err;
    vkf_tensor *s1 = l1->samples;
    int n1 = vkf_tensor_ndim(s1), n2 = vkf_tensor_ndim(l2->samples);
    const int64_t *sh1 = vkf_tensor_shape(s1), *sh2 = vkf_tensor_shape(l2->samples);
    bool same = n1 == n2;
    for (int d = 0; same && d < n1; d++)
        same = sh1[d] == sh2[d];
    if (!same) {
        err = vkf_common_upscale(gpu, l2->samples, sh1[n1 - 1], sh1[n1 - 2], "bicubic", true, &s2);
        if (err < 0)
            return upscale_error(ctx, "LatentBlend", "bicubic", err);
    } else {
        s2 = vkf_tensor_ref(l2->samples);
    }
    VKF_TRY(vkf_op_unary(gpu, VKF_UN_SCALE, s1, (float)f, 0.0f, &a));
    VKF_TRY(vkf_op_unary(gpu, VKF_UN_SCALE, s2, (float)(1.0 - f), 0.0f, &b));
    VKF_TRY(vkf_op_binary(gpu, VKF_BIN_ADD, a, b, &t));
    err = set_latent_like(&out[0], t, l1->noise_mask, l1->batch_index, l1->nb_batch_index);
    t = NULL;
fail:
    if (err < 0 && err != VKF_ENOMEM && err != VKF_ERUN)
        err = vkf_exec_error(ctx, "LatentBlend: samples2 does not broadcast to samples1: %s",
                             vkf_strerror(err));
    vkf_tensor_unref(&s2);
    vkf_tensor_unref(&a);
    vkf_tensor_unref(&b);
    vkf_tensor_unref(&t);
    return err;
}

static const vkf_input_def blend_inputs[] = {
    VKF_INPUT_LINK("samples1", "LATENT"),
    VKF_INPUT_LINK("samples2", "LATENT"),
    VKF_INPUT_FLOAT("blend_factor", 0.5, 0, 1, 0.01),
};

const vkf_node_def vkf_node_LatentBlend = {
    .name = "LatentBlend",
    .display_name = "Latent Blend",
    .category = "_for_testing",
    .python_module = "nodes",
    .inputs = blend_inputs, .nb_inputs = 3,
    .outputs = latent_output, .nb_outputs = 1,
    .execute = latent_blend,
};

/* ---- LatentFromBatch / RepeatLatentBatch / LatentBatch --------------------------- */

static int from_batch(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    const vkf_latent *l = latent_arg(ctx, &in[0]);
    if (!l)
        return vkf_exec_error(ctx, "LatentFromBatch: samples is not a LATENT");
    int64_t B = vkf_tensor_shape(l->samples)[0];
    int64_t bi = in[1].u.i < B - 1 ? in[1].u.i : B - 1;
    int64_t len = in[2].u.i < B - bi ? in[2].u.i : B - bi;
    vkf_gpu *gpu;
    vkf_tensor *s = NULL, *mask = NULL;
    int64_t *idx = NULL;
    int err = vkf_exec_gpu(ctx, &gpu);
    if (err < 0)
        return err;
    VKF_CHECK_ALLOC(idx = vkf_malloc(sizeof(int64_t) * (size_t)(len > B ? len : B) + 1));
    VKF_TRY(vkf_tensor_slice(l->samples, 0, bi, len, &s));
    if (l->noise_mask) {
        int64_t mb = vkf_tensor_shape(l->noise_mask)[0];
        if (mb == 1) {
            mask = vkf_tensor_ref(l->noise_mask);
        } else if (mb < B) {
            /* masks repeated to the batch, then the same slice */
            for (int64_t i = 0; i < len; i++)
                idx[i] = (bi + i) % mb;
            VKF_TRY(vkf_batch_gather(gpu, l->noise_mask, idx, (int)len, &mask));
        } else {
            VKF_TRY(vkf_tensor_slice(l->noise_mask, 0, bi, len, &mask));
        }
    }
    /* batch_index: a fresh range, or the Python slice of the one given. */
    int nbi = 0;
    if (!l->batch_index) {
        for (int64_t i = 0; i < len; i++)
            idx[nbi++] = bi + i;
    } else {
        int64_t s0, e0;
        py_slice(bi, bi + len, l->nb_batch_index, &s0, &e0);
        for (int64_t i = s0; i < e0; i++)
            idx[nbi++] = l->batch_index[i];
    }
    err = vkf_value_set_latent(&out[0], s, mask, idx, nbi);
    s = mask = NULL;
fail:
    vkf_tensor_unref(&s);
    vkf_tensor_unref(&mask);
    vkf_free(idx);
    return err;
}

static const vkf_input_def from_batch_inputs[] = {
    VKF_INPUT_LINK("samples", "LATENT"),
    VKF_INPUT_INT("batch_index", 0, 0, 63),
    VKF_INPUT_INT("length", 1, 1, 64),
};

const vkf_node_def vkf_node_LatentFromBatch = {
    .name = "LatentFromBatch",
    .display_name = "Latent From Batch",
    .category = "latent/batch",
    .python_module = "nodes",
    .inputs = from_batch_inputs, .nb_inputs = 3,
    .outputs = latent_output, .nb_outputs = 1,
    .execute = from_batch,
};

/* t repeated n times along dim 0. */
static int repeat_batch(vkf_gpu *gpu, vkf_tensor *t, int64_t n, vkf_tensor **out)
{
    vkf_tensor **parts = vkf_calloc((size_t)n, sizeof(*parts));
    if (!parts)
        return VKF_ENOMEM;
    for (int64_t i = 0; i < n; i++)
        parts[i] = t;
    int err = vkf_op_concat(gpu, parts, (int)n, 0, out);
    vkf_free(parts);
    return err;
}

static int repeat_latent(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    const vkf_latent *l = latent_arg(ctx, &in[0]);
    int64_t amount = in[1].u.i;
    if (!l)
        return vkf_exec_error(ctx, "RepeatLatentBatch: samples is not a LATENT");
    vkf_gpu *gpu;
    vkf_tensor *s = NULL, *mask = NULL;
    int64_t *bi = NULL;
    int nbi = 0;
    int err = vkf_exec_gpu(ctx, &gpu);
    if (err < 0)
        return err;
    VKF_TRY(repeat_batch(gpu, l->samples, amount, &s));
    if (l->noise_mask && vkf_tensor_shape(l->noise_mask)[0] > 1)
        VKF_TRY(repeat_batch(gpu, l->noise_mask, amount, &mask));
    else
        mask = tref(l->noise_mask);
    if (l->batch_index && l->nb_batch_index > 0) {
        int64_t mx = l->batch_index[0], mn = l->batch_index[0];
        for (int i = 1; i < l->nb_batch_index; i++) {
            mx = l->batch_index[i] > mx ? l->batch_index[i] : mx;
            mn = l->batch_index[i] < mn ? l->batch_index[i] : mn;
        }
        int64_t offset = mx - mn + 1;
        VKF_CHECK_ALLOC(bi = vkf_malloc(sizeof(int64_t) * (size_t)(l->nb_batch_index * amount)));
        for (int64_t r = 0; r < amount; r++)
            for (int i = 0; i < l->nb_batch_index; i++)
                bi[nbi++] = l->batch_index[i] + r * offset;
    }
    err = vkf_value_set_latent(&out[0], s, mask, bi, nbi);
    s = mask = NULL;
fail:
    vkf_tensor_unref(&s);
    vkf_tensor_unref(&mask);
    vkf_free(bi);
    if (err < 0 && err != VKF_ENOMEM)
        err = vkf_exec_error(ctx, "RepeatLatentBatch: %s", vkf_strerror(err));
    return err;
}

static const vkf_input_def repeat_inputs[] = {
    VKF_INPUT_LINK("samples", "LATENT"),
    VKF_INPUT_INT("amount", 1, 1, 64),
};

const vkf_node_def vkf_node_RepeatLatentBatch = {
    .name = "RepeatLatentBatch",
    .display_name = "Repeat Latent Batch",
    .category = "latent/batch",
    .python_module = "nodes",
    .inputs = repeat_inputs, .nb_inputs = 2,
    .outputs = latent_output, .nb_outputs = 1,
    .execute = repeat_latent,
};

static int latent_batch(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    const vkf_latent *l1 = latent_arg(ctx, &in[0]), *l2 = latent_arg(ctx, &in[1]);
    if (!l1 || !l2)
        return vkf_exec_error(ctx, "LatentBatch: samples1 and samples2 must be LATENTs");
    vkf_gpu *gpu;
    vkf_tensor *s2 = NULL, *s = NULL;
    int64_t *bi = NULL;
    int err = vkf_exec_gpu(ctx, &gpu);
    if (err < 0)
        return err;
    vkf_tensor *s1 = l1->samples;
    int nd = vkf_tensor_ndim(s1);
    const int64_t *sh1 = vkf_tensor_shape(s1), *sh2 = vkf_tensor_shape(l2->samples);
    bool same = vkf_tensor_ndim(l2->samples) == nd;
    for (int d = 1; same && d < nd; d++)
        same = sh1[d] == sh2[d];
    /* reshape_latent_to: bilinear, centre crop to samples1's size. */
    if (!same) {
        err = vkf_common_upscale(gpu, l2->samples, sh1[nd - 1], sh1[nd - 2], "bilinear", true, &s2);
        if (err < 0)
            return upscale_error(ctx, "LatentBatch", "bilinear", err);
    } else {
        s2 = vkf_tensor_ref(l2->samples);
    }
    vkf_tensor *parts[2] = {s1, s2};
    VKF_TRY(vkf_op_concat(gpu, parts, 2, 0, &s));
    int64_t b1 = sh1[0], b2 = vkf_tensor_shape(s2)[0];
    int n1 = l1->batch_index ? l1->nb_batch_index : (int)b1;
    int n2 = l2->batch_index ? l2->nb_batch_index : (int)b2;
    VKF_CHECK_ALLOC(bi = vkf_malloc(sizeof(int64_t) * (size_t)(n1 + n2 + 1)));
    for (int i = 0; i < n1; i++)
        bi[i] = l1->batch_index ? l1->batch_index[i] : i;
    for (int i = 0; i < n2; i++)
        bi[n1 + i] = l2->batch_index ? l2->batch_index[i] : i;
    err = set_latent_like(&out[0], s, l1->noise_mask, bi, n1 + n2);
    s = NULL;
fail:
    if (err < 0 && err != VKF_ENOMEM && err != VKF_ERUN)
        err = vkf_exec_error(ctx, "LatentBatch: samples2 cannot join samples1: %s",
                             vkf_strerror(err));
    vkf_tensor_unref(&s2);
    vkf_tensor_unref(&s);
    vkf_free(bi);
    return err;
}

static const vkf_input_def latent_batch_inputs[] = {
    VKF_INPUT_LINK("samples1", "LATENT"),
    VKF_INPUT_LINK("samples2", "LATENT"),
};

const vkf_node_def vkf_node_LatentBatch = {
    .name = "LatentBatch",
    .category = "latent/batch",
    .python_module = "comfy_extras.nodes_latent",
    .inputs = latent_batch_inputs, .nb_inputs = 2,
    .outputs = latent_output, .nb_outputs = 1,
    .execute = latent_batch,
};

/* ---- SetLatentNoiseMask --------------------------------------------------------- */

static int set_noise_mask(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    const vkf_latent *l = latent_arg(ctx, &in[0]);
    vkf_tensor *mask = vkf_value_mask(&in[1]);
    if (!l || !mask)
        return vkf_exec_error(ctx, "SetLatentNoiseMask: needs a LATENT and a MASK");
    vkf_gpu *gpu;
    vkf_tensor *mc = NULL, *m4 = NULL;
    int err = vkf_exec_gpu(ctx, &gpu);
    if (err < 0)
        return err;
    int nd = vkf_tensor_ndim(mask);
    const int64_t *ms = vkf_tensor_shape(mask);
    if (nd < 2)
        return vkf_exec_error(ctx, "SetLatentNoiseMask: mask must be [B, H, W]");
    int64_t h = ms[nd - 2], w = ms[nd - 1];
    VKF_TRY(vkf_op_contiguous(gpu, mask, &mc));
    VKF_TRY(vkf_tensor_reshape(mc, 4, (int64_t[]){vkf_tensor_numel(mask) / (h * w), 1, h, w}, &m4));
    err = vkf_value_set_latent(&out[0], vkf_tensor_ref(l->samples), m4, l->batch_index,
                               l->nb_batch_index);
    m4 = NULL;
fail:
    vkf_tensor_unref(&mc);
    vkf_tensor_unref(&m4);
    return err;
}

static const vkf_input_def noise_mask_inputs[] = {
    VKF_INPUT_LINK("samples", "LATENT"),
    VKF_INPUT_LINK("mask", "MASK"),
};

const vkf_node_def vkf_node_SetLatentNoiseMask = {
    .name = "SetLatentNoiseMask",
    .display_name = "Set Latent Noise Mask",
    .category = "latent/inpaint",
    .python_module = "nodes",
    .inputs = noise_mask_inputs, .nb_inputs = 2,
    .outputs = latent_output, .nb_outputs = 1,
    .execute = set_noise_mask,
};

/* ---- SaveLatent ---------------------------------------------------------------- */

/* %year% ... as compute_vars (width and height are 0 for latents). */
static void expand_vars(const char *in, char *out, size_t size)
{
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    static const char *const keys[] = {"%width%", "%height%", "%year%", "%month%",
                                       "%day%", "%hour%", "%minute%", "%second%"};
    int vals[8] = {0, 0, tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                   tm.tm_sec};
    size_t n = 0;
    for (const char *p = in; *p && n + 1 < size;) {
        size_t k = 0;
        for (; k < 8; k++)
            if (!strncmp(p, keys[k], strlen(keys[k])))
                break;
        if (k < 8) {
            n += (size_t)snprintf(out + n, size - n, k >= 3 ? "%02d" : "%d", vals[k]);
            if (n >= size)
                n = size - 1;
            p += strlen(keys[k]);
        } else {
            out[n++] = *p++;
        }
    }
    out[n] = 0;
}

/* os.path.normpath of a relative prefix; false if it escapes ("..") or is
 * absolute. */
static bool norm_prefix(const char *in, char *out, size_t size)
{
    char tmp[1024];
    snprintf(tmp, sizeof(tmp), "%s", in);
    for (char *p = tmp; *p; p++)
        if (*p == '\\')
            *p = '/';
    if (tmp[0] == '/')
        return false;
    const char *parts[256];
    int np = 0;
    char *save = NULL;
    for (char *c = strtok_r(tmp, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
        if (!strcmp(c, "."))
            continue;
        if (!strcmp(c, "..")) {
            if (!np)
                return false;
            np--;
            continue;
        }
        if (np == 256)
            return false;
        parts[np++] = c;
    }
    size_t n = 0;
    out[0] = 0;
    for (int i = 0; i < np && n < size; i++)
        n += (size_t)snprintf(out + n, size - n, "%s%s", i ? "/" : "", parts[i]);
    return np > 0 && n < size;
}

static int save_latent(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    (void)out;
    const vkf_latent *l = latent_arg(ctx, &in[0]);
    const char *prefix = in[1].kind == VKF_VAL_STRING ? in[1].u.s : "ComfyUI";
    if (!l)
        return vkf_exec_error(ctx, "SaveLatent: samples is not a LATENT");
    const vkf_paths *paths = vkf_exec_paths(ctx);
    if (!vkf_paths_output_dir(paths))
        return vkf_exec_error(ctx, "SaveLatent: no output directory configured");
    char expanded[1024], normed[1024];
    expand_vars(prefix, expanded, sizeof(expanded));
    if (!norm_prefix(expanded, normed, sizeof(normed)))
        return vkf_exec_error(ctx,
                              "SaveLatent: Saving image outside the output folder is not allowed. "
                              "filename_prefix: %s",
                              prefix);
    char *slash = strrchr(normed, '/');
    const char *stem = slash ? slash + 1 : normed;
    const char *subfolder = slash ? normed : "";
    if (slash)
        *slash = 0;
    char *dirpath = NULL, *full = NULL, *fname = NULL;
    float *host = NULL;
    vkf_st_writer *w = NULL;
    vkf_errbuf eb = {{0}};
    int err = vkf_paths_output_file(paths, false, subfolder, "probe", &dirpath);
    if (err < 0) {
        err = vkf_exec_error(ctx,
                             "SaveLatent: Saving image outside the output folder is not allowed. "
                             "filename_prefix: %s",
                             prefix);
        goto fail;
    }
    *strrchr(dirpath, '/') = 0;
    VKF_CHECK_ALLOC(fname = vkf_asprintf("%s_%05d_.latent", stem, vkf_save_next_counter(dirpath, stem)));
    VKF_TRY(vkf_paths_output_file(paths, false, subfolder, fname, &full));

    vkf_tensor *t = l->samples;
    int nd = vkf_tensor_ndim(t);
    VKF_CHECK_ALLOC(host = vkf_malloc(sizeof(float) * (size_t)vkf_tensor_numel(t)));
    if ((err = vkf_tensor_download(t, host)) < 0) {
        err = vkf_exec_error(ctx, "SaveLatent: reading the latent from the GPU failed: %s",
                             vkf_strerror(err));
        goto fail;
    }
    VKF_TRY(vkf_st_writer_create(0, &w));
    VKF_TRY(vkf_st_writer_add_data(w, "latent_tensor", VKF_WDT_F32, nd, vkf_tensor_shape(t), host));
    VKF_TRY(vkf_st_writer_add_const(w, "latent_format_version_0", VKF_WDT_F32, 1,
                                    (int64_t[]){0}, 0.0f));
    /* Metadata as ComfyUI: the prompt JSON ("" without one) and the
     * extra_pnginfo entries (the workflow). */
    const char *pj = vkf_exec_prompt_json(ctx), *wj = vkf_exec_workflow_json(ctx);
    VKF_TRY(vkf_st_writer_add_metadata(w, "prompt", pj ? pj : ""));
    if (wj)
        VKF_TRY(vkf_st_writer_add_metadata(w, "workflow", wj));
    if ((err = vkf_st_writer_save(w, full, &eb)) < 0) {
        err = err == VKF_ENOMEM ? err
                                : vkf_exec_error(ctx, "SaveLatent: writing '%s' failed: %s", full,
                                                 eb.msg);
        goto fail;
    }
    err = vkf_exec_ui_file(ctx, "latents", fname, subfolder, "output");
fail:
    if (err < 0 && err != VKF_ENOMEM && err != VKF_ERUN)
        err = vkf_exec_error(ctx, "SaveLatent: %s", vkf_strerror(err));
    vkf_st_writer_destroy(&w);
    vkf_free(host);
    vkf_free(dirpath);
    vkf_free(full);
    vkf_free(fname);
    return err;
}

static const vkf_input_def save_latent_inputs[] = {
    VKF_INPUT_LINK("samples", "LATENT"),
    VKF_INPUT_STRING("filename_prefix", "latents/ComfyUI"),
    {.name = "prompt", .type = "PROMPT", .flags = VKF_IN_HIDDEN},
    {.name = "extra_pnginfo", .type = "EXTRA_PNGINFO", .flags = VKF_IN_HIDDEN},
};

const vkf_node_def vkf_node_SaveLatent = {
    .name = "SaveLatent",
    .category = "_for_testing",
    .python_module = "nodes",
    .inputs = save_latent_inputs, .nb_inputs = 4,
    .flags = VKF_NODE_OUTPUT,
    .execute = save_latent,
};

/* ---- LoadLatent ------------------------------------------------------------------ */

static bool is_latent_name(const char *s)
{
    /* " [input]" style annotations are allowed after the name. */
    const char *end = strstr(s, ".latent");
    return end && (end[7] == 0 || end[7] == ' ');
}

static int load_latent(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    const char *name = in[0].u.s;
    char *path = NULL;
    vkf_weights *w = NULL;
    float *host = NULL;
    vkf_tensor *t = NULL;
    if (!is_latent_name(name) || vkf_paths_resolve_input(vkf_exec_paths(ctx), name, &path) < 0)
        return vkf_exec_error(ctx, "LoadLatent: Invalid latent file: %s", name);
    int err = vkf_weights_open(path, &w, vkf_exec_log(ctx));
    if (err < 0) {
        err = err == VKF_ENOMEM ? err
                                : vkf_exec_error(ctx, "LoadLatent: cannot read '%s': %s", name,
                                                 vkf_strerror(err));
        goto fail;
    }
    const vkf_weight_info *ti = vkf_weights_find(w, "latent_tensor");
    if (!ti || ti->ndim < 1 || ti->ndim > VKF_TENSOR_MAX_DIMS || ti->numel < 1) {
        err = vkf_exec_error(ctx, "LoadLatent: '%s' has no usable latent_tensor", name);
        goto fail;
    }
    /* Files from before the version marker stored scaled latents. */
    float mul = vkf_weights_find(w, "latent_format_version_0") ? 1.0f : (float)(1.0 / 0.18215);
    VKF_CHECK_ALLOC(host = vkf_malloc(sizeof(float) * (size_t)ti->numel));
    VKF_TRY(vkf_weights_to_f32(w, ti, host));
    if (mul != 1.0f)
        for (int64_t i = 0; i < ti->numel; i++)
            host[i] *= mul;
    vkf_gpu *gpu;
    VKF_TRY(vkf_exec_gpu(ctx, &gpu));
    VKF_TRY(vkf_tensor_create(gpu, VKF_DTYPE_F32, ti->ndim, ti->shape, &t));
    VKF_TRY(vkf_tensor_upload(t, host));
    err = vkf_value_set_latent(&out[0], t, NULL, NULL, 0);
    t = NULL;
fail:
    if (err < 0 && err != VKF_ENOMEM && err != VKF_ERUN)
        err = vkf_exec_error(ctx, "LoadLatent: '%s': %s", name, vkf_strerror(err));
    vkf_tensor_unref(&t);
    vkf_free(host);
    vkf_weights_close(&w);
    vkf_free(path);
    return err;
}

/* IS_CHANGED: the file's size and modification time join the cache key. */
static int load_latent_fingerprint(vkf_exec_ctx *ctx, const vkf_value *in, char **key)
{
    *key = NULL;
    if (in[0].kind != VKF_VAL_STRING)
        return 0;
    char *path = NULL;
    if (vkf_paths_resolve_input(vkf_exec_paths(ctx), in[0].u.s, &path) < 0)
        return 0;
    FILE *f = fopen(path, "rb");
    vkf_free(path);
    if (!f)
        return 0;
    /* FNV-1a of the bytes: any change reruns the node. */
    uint64_t h = 1469598103934665603ull;
    unsigned char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
        for (size_t i = 0; i < n; i++)
            h = (h ^ buf[i]) * 1099511628211ull;
    fclose(f);
    *key = vkf_asprintf("%016llx", (unsigned long long)h);
    return *key ? 0 : VKF_ENOMEM;
}

static char *load_latent_validate(const vkf_paths *paths, const vkf_value *in)
{
    if (in[0].kind != VKF_VAL_STRING)
        return NULL;
    char *path = NULL;
    if (!is_latent_name(in[0].u.s) || vkf_paths_resolve_input(paths, in[0].u.s, &path) < 0)
        return vkf_asprintf("Invalid latent file: %s", in[0].u.s);
    vkf_free(path);
    return NULL;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* LoadLatent's list: the .latent files directly in the input directory,
 * sorted (nodes.py LoadLatent.INPUT_TYPES). */
static int list_latents(const vkf_paths *paths, char ***names, int *count)
{
    *names = NULL;
    *count = 0;
    const char *dir = vkf_paths_input_dir(paths);
    DIR *d = dir ? opendir(dir) : NULL;
    if (!d)
        return 0;
    char **v = NULL;
    int n = 0, cap = 0, err = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!is_latent_name(de->d_name))
            continue;
        char *full = vkf_asprintf("%s/%s", dir, de->d_name);
        struct stat st;
        bool file = full && stat(full, &st) == 0 && S_ISREG(st.st_mode);
        vkf_free(full);
        if (!file)
            continue;
        if ((err = vkf_grow(&v, &cap, n + 2, sizeof(*v))) < 0)
            break;
        if (!(v[n] = vkf_strdup(de->d_name))) {
            err = VKF_ENOMEM;
            break;
        }
        v[++n] = NULL;
    }
    closedir(d);
    if (err < 0) {
        vkf_strv_free(&v, n);
        return err;
    }
    if (n > 1)
        qsort(v, (size_t)n, sizeof(*v), cmp_names);
    *names = v;
    *count = n;
    return 0;
}

static const vkf_input_def load_latent_inputs[] = {
    /* .latent files of the input directory; the validator re-checks. */
    {.name = "latent", .type = VKF_T_COMBO, .list_options = list_latents},
};

const vkf_node_def vkf_node_LoadLatent = {
    .name = "LoadLatent",
    .category = "_for_testing",
    .python_module = "nodes",
    .inputs = load_latent_inputs, .nb_inputs = 1,
    .outputs = latent_output, .nb_outputs = 1,
    .execute = load_latent,
    .fingerprint = load_latent_fingerprint,
    .validate = load_latent_validate,
};
