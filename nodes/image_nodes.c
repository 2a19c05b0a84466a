/*
 * Image nodes of ComfyUI's nodes.py (ImageScale, ImageScaleBy, ImageInvert,
 * ImageBatch, EmptyImage, ImagePadForOutpaint), comfy_extras/nodes_images.py
 * (ImageCrop), nodes_post_processing.py (ImageBlend, ImageBlur,
 * ImageSharpen, ImageScaleToTotalPixels), nodes_mask.py
 * (ImageCompositeMasked) and nodes_canny.py (Canny).  IMAGE tensors
 * [B, H, W, C] stay on the GPU; resampling follows comfy.utils.common_upscale
 * with 'lanczos' as PIL's filter on float (core/gpu/ops/image_ops.c).
 */
#include <math.h>
#include <string.h>

#include "cond_latent.h"
#include "nodes.h"
#include "vkflow/types.h"

#define MAX_RES 16384

static const char *const scale_methods[] = {"nearest-exact", "bilinear", "area", "bicubic",
                                            "lanczos", NULL};
static const char *const crop_methods[] = {"disabled", "center", NULL};

/* The IMAGE input k ([B, H, W, C]) or NULL after an error naming it. */
static vkf_tensor *image_in(vkf_exec_ctx *ctx, const char *node, const char *name,
                            const vkf_value *v)
{
    vkf_tensor *t = vkf_value_image(v);
    if (!t || vkf_tensor_ndim(t) != 4) {
        vkf_exec_error(ctx, "%s: input '%s' must be an IMAGE [B, H, W, C]", node, name);
        return NULL;
    }
    return t;
}

static int set_image(vkf_exec_ctx *ctx, vkf_value *out, vkf_tensor *t)
{
    (void)ctx;
    return vkf_value_set_image(out, t);
}

static int op_error(vkf_exec_ctx *ctx, const char *node, int err)
{
    if (err == VKF_ENOMEM || err == VKF_EDEVICE_OOM || err == VKF_EDEVICE_LOST)
        return vkf_exec_error(ctx, "%s: %s", node, vkf_strerror(err));
    return vkf_exec_error(ctx, "%s: GPU op failed: %s", node, vkf_strerror(err));
}

/* common_upscale of an IMAGE to (width, height). */
int vkf_image_upscale(vkf_gpu *gpu, vkf_tensor *img, int64_t width, int64_t height,
                      const char *method, bool crop_center, vkf_tensor **out);
int vkf_image_upscale(vkf_gpu *gpu, vkf_tensor *img, int64_t width, int64_t height,
                      const char *method, bool crop_center, vkf_tensor **out)
{
    int err = 0;
    vkf_tensor *a = NULL, *b = NULL, *r = NULL, *rp = NULL;
    const int64_t *sh = vkf_tensor_shape(img);
    if (vkf_tensor_ndim(img) != 4 || width < 1 || height < 1)
        return VKF_EINVAL;
    if (!strcmp(method, "lanczos")) {
        vkf_tensor *s = img;
        int64_t ow = sh[2], oh = sh[1];
        if (crop_center) {
            double old_aspect = (double)ow / (double)oh, new_aspect = (double)width / (double)height;
            int64_t cx = 0, cy = 0;
            if (old_aspect > new_aspect)
                cx = (int64_t)nearbyint((ow - ow * (new_aspect / old_aspect)) / 2);
            else if (old_aspect < new_aspect)
                cy = (int64_t)nearbyint((oh - oh * (old_aspect / new_aspect)) / 2);
            if (cx || cy) {
                VKF_TRY(vkf_tensor_slice(img, 1, cy, oh - 2 * cy, &a));
                VKF_TRY(vkf_tensor_slice(a, 2, cx, ow - 2 * cx, &b));
                s = b;
            }
        }
        err = vkf_op_lanczos(gpu, s, height, width, out);
        goto fail;
    }
    VKF_TRY(vkf_tensor_permute(img, (const int[]){0, 3, 1, 2}, &a));
    VKF_TRY(vkf_common_upscale(gpu, a, width, height, method, crop_center, &r));
    VKF_TRY(vkf_tensor_permute(r, (const int[]){0, 2, 3, 1}, &rp));
    err = vkf_op_contiguous(gpu, rp, out);
fail:
    vkf_tensor_unref(&a);
    vkf_tensor_unref(&b);
    vkf_tensor_unref(&r);
    vkf_tensor_unref(&rp);
    return err;
}

static int scale_to(vkf_exec_ctx *ctx, const char *node, vkf_tensor *img, int64_t w, int64_t h,
                    const char *method, bool crop, vkf_value *out)
{
    vkf_gpu *gpu;
    vkf_tensor *r = NULL;
    int err = vkf_exec_gpu(ctx, &gpu);
    if (err < 0)
        return err;
    if (w > MAX_RES * 8 || h > MAX_RES * 8)
        return vkf_exec_error(ctx, "%s: output size %lldx%lld is too large", node, (long long)w,
                              (long long)h);
    err = vkf_image_upscale(gpu, img, w, h, method, crop, &r);
    if (err < 0)
        return op_error(ctx, node, err);
    return set_image(ctx, out, r);
}

/* node_helpers.image_alpha_fix for `src` against a destination with dc
 * channels: extra channels dropped, missing ones (alpha) added as 1.
 * *out is a new reference (src itself when nothing changes). */
static int alpha_fix(vkf_gpu *gpu, vkf_tensor *src, int64_t dc, vkf_tensor **out)
{
    int64_t sc = vkf_tensor_shape(src)[3];
    if (dc < sc)
        return vkf_tensor_slice(src, 3, 0, dc, out);
    if (dc > sc) {
        int64_t pads[8] = {0, 0, 0, 0, 0, 0, 0, dc - sc};
        return vkf_op_pad(gpu, src, pads, 1.0f, out);
    }
    *out = vkf_tensor_ref(src);
    return 0;
}

/* ---- ImageScale / ImageScaleBy / ImageScaleToTotalPixels --------------------- */

static int image_scale(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    vkf_tensor *img = image_in(ctx, "ImageScale", "image", &in[0]);
    if (!img)
        return VKF_ERUN;
    int64_t w = in[2].u.i, h = in[3].u.i;
    const int64_t *sh = vkf_tensor_shape(img);
    if (w == 0 && h == 0)
        return set_image(ctx, out, vkf_tensor_ref(img));
    if (w == 0) {
        w = (int64_t)nearbyint((double)sh[2] * (double)h / (double)sh[1]);
        w = w < 1 ? 1 : w;
    } else if (h == 0) {
        h = (int64_t)nearbyint((double)sh[1] * (double)w / (double)sh[2]);
        h = h < 1 ? 1 : h;
    }
    return scale_to(ctx, "ImageScale", img, w, h, in[1].u.s, !strcmp(in[4].u.s, "center"), out);
}

static int image_scale_by(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    vkf_tensor *img = image_in(ctx, "ImageScaleBy", "image", &in[0]);
    if (!img)
        return VKF_ERUN;
    double s = vkf_value_number(&in[2]);
    const int64_t *sh = vkf_tensor_shape(img);
    int64_t w = (int64_t)nearbyint((double)sh[2] * s), h = (int64_t)nearbyint((double)sh[1] * s);
    if (w < 1 || h < 1)
        return vkf_exec_error(ctx, "ImageScaleBy: scale_by %g makes the %lldx%lld image empty "
                              "(%lldx%lld)", s, (long long)sh[2], (long long)sh[1],
                              (long long)w, (long long)h);
    return scale_to(ctx, "ImageScaleBy", img, w, h, in[1].u.s, false, out);
}

static int image_scale_total(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    vkf_tensor *img = image_in(ctx, "ImageScaleToTotalPixels", "image", &in[0]);
    if (!img)
        return VKF_ERUN;
    double mp = vkf_value_number(&in[2]);
    int64_t steps = in[3].u.i;
    const int64_t *sh = vkf_tensor_shape(img);
    double total = mp * 1024 * 1024;   /* not truncated (nodes_post_processing) */
    double scale_by = sqrt(total / (double)(sh[2] * sh[1]));
    int64_t w = (int64_t)nearbyint((double)sh[2] * scale_by / (double)steps) * steps;
    int64_t h = (int64_t)nearbyint((double)sh[1] * scale_by / (double)steps) * steps;
    if (w < 1 || h < 1)
        return vkf_exec_error(ctx, "ImageScaleToTotalPixels: resolution_steps %lld rounds the "
                              "size to %lldx%lld", (long long)steps, (long long)w, (long long)h);
    return scale_to(ctx, "ImageScaleToTotalPixels", img, w, h, in[1].u.s, false, out);
}

static const vkf_input_def scale_inputs[] = {
    VKF_INPUT_LINK("image", "IMAGE"),
    {.name = "upscale_method", .type = VKF_T_COMBO, .options = scale_methods},
    VKF_INPUT_INT("width", 512, 0, MAX_RES),
    VKF_INPUT_INT("height", 512, 0, MAX_RES),
    {.name = "crop", .type = VKF_T_COMBO, .options = crop_methods},
};
static const vkf_input_def scale_by_inputs[] = {
    VKF_INPUT_LINK("image", "IMAGE"),
    {.name = "upscale_method", .type = VKF_T_COMBO, .options = scale_methods},
    VKF_INPUT_FLOAT("scale_by", 1.0, 0.01, 8.0, 0.01),
};
static const vkf_input_def scale_total_inputs[] = {
    VKF_INPUT_LINK("image", "IMAGE"),
    {.name = "upscale_method", .type = VKF_T_COMBO, .options = scale_methods},
    VKF_INPUT_FLOAT("megapixels", 1.0, 0.01, 16.0, 0.01),
    VKF_INPUT_INT("resolution_steps", 1, 1, 256),
};
static const vkf_output_def image_out[] = {{.type = "IMAGE"}};

const vkf_node_def vkf_node_ImageScale = {
    .name = "ImageScale", .display_name = "Upscale Image", .category = "image/upscaling",
    .python_module = "nodes", .inputs = scale_inputs, .nb_inputs = 5,
    .outputs = image_out, .nb_outputs = 1, .execute = image_scale,
};
const vkf_node_def vkf_node_ImageScaleBy = {
    .name = "ImageScaleBy", .display_name = "Upscale Image By", .category = "image/upscaling",
    .python_module = "nodes", .inputs = scale_by_inputs, .nb_inputs = 3,
    .outputs = image_out, .nb_outputs = 1, .execute = image_scale_by,
};
const vkf_node_def vkf_node_ImageScaleToTotalPixels = {
    .name = "ImageScaleToTotalPixels", .display_name = "Scale Image to Total Pixels",
    .category = "image/upscaling", .python_module = "comfy_extras.nodes_post_processing",
    .inputs = scale_total_inputs, .nb_inputs = 4, .outputs = image_out, .nb_outputs = 1,
    .execute = image_scale_total,
};

/* ---- ImageInvert / ImageBatch / EmptyImage ---------------------------------- */

static int image_invert(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    vkf_tensor *img = image_in(ctx, "ImageInvert", "image", &in[0]), *r = NULL;
    vkf_gpu *gpu;
    if (!img)
        return VKF_ERUN;
    int err = vkf_exec_gpu(ctx, &gpu);
    if (err < 0)
        return err;
    if ((err = vkf_op_unary(gpu, VKF_UN_SCALE, img, -1.0f, 1.0f, &r)) < 0)
        return op_error(ctx, "ImageInvert", err);
    return set_image(ctx, out, r);
}

static int image_batch(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    vkf_tensor *a = image_in(ctx, "ImageBatch", "image1", &in[0]);
    vkf_tensor *b = a ? image_in(ctx, "ImageBatch", "image2", &in[1]) : NULL;
    vkf_tensor *rs = NULL, *r = NULL;
    vkf_gpu *gpu;
    if (!a || !b)
        return VKF_ERUN;
    vkf_tensor *pa = NULL, *pb = NULL;
    int err = vkf_exec_gpu(ctx, &gpu);
    if (err < 0)
        return err;
    /* different channel counts: the narrower one gets alpha = 1 */
    int64_t ca = vkf_tensor_shape(a)[3], cb = vkf_tensor_shape(b)[3];
    int64_t cmax = ca > cb ? ca : cb;
    if ((err = alpha_fix(gpu, a, cmax, &pa)) >= 0 && (err = alpha_fix(gpu, b, cmax, &pb)) >= 0) {
        const int64_t *sa = vkf_tensor_shape(pa), *sb = vkf_tensor_shape(pb);
        if (sa[1] != sb[1] || sa[2] != sb[2])
            err = vkf_image_upscale(gpu, pb, sa[2], sa[1], "bilinear", true, &rs);
        if (err >= 0)
            err = vkf_op_concat(gpu, (vkf_tensor *const[]){pa, rs ? rs : pb}, 2, 0, &r);
    }
    vkf_tensor_unref(&pa);
    vkf_tensor_unref(&pb);
    vkf_tensor_unref(&rs);
    if (err < 0)
        return op_error(ctx, "ImageBatch", err);
    return set_image(ctx, out, r);
}

static int empty_image(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    int64_t w = in[0].u.i, h = in[1].u.i, n = in[2].u.i, color = in[3].u.i;
    vkf_gpu *gpu;
    vkf_tensor *r = NULL;
    int err = vkf_exec_gpu(ctx, &gpu);
    if (err < 0)
        return err;
    float rgb[3] = {(float)(((color >> 16) & 0xFF) / 255.0), (float)(((color >> 8) & 0xFF) / 255.0),
                    (float)((color & 0xFF) / 255.0)};
    int64_t shape[4] = {n, h, w, 3};
    if ((err = vkf_op_image_fill(gpu, 4, shape, rgb, &r)) < 0)
        return op_error(ctx, "EmptyImage", err);
    return set_image(ctx, out, r);
}

static const vkf_input_def image_only[] = {VKF_INPUT_LINK("image", "IMAGE")};
static const vkf_input_def batch_inputs[] = {
    VKF_INPUT_LINK("image1", "IMAGE"), VKF_INPUT_LINK("image2", "IMAGE"),
};
static const vkf_input_def empty_inputs[] = {
    VKF_INPUT_INT("width", 512, 1, MAX_RES),
    VKF_INPUT_INT("height", 512, 1, MAX_RES),
    VKF_INPUT_INT("batch_size", 1, 1, 4096),
    VKF_INPUT_INT("color", 0, 0, 0xFFFFFF),
};

const vkf_node_def vkf_node_ImageInvert = {
    .name = "ImageInvert", .display_name = "Invert Image", .category = "image",
    .python_module = "nodes", .inputs = image_only, .nb_inputs = 1,
    .outputs = image_out, .nb_outputs = 1, .execute = image_invert,
};
const vkf_node_def vkf_node_ImageBatch = {
    .name = "ImageBatch", .display_name = "Batch Images", .category = "image",
    .python_module = "nodes", .inputs = batch_inputs, .nb_inputs = 2,
    .outputs = image_out, .nb_outputs = 1, .execute = image_batch,
    .flags = VKF_NODE_DEPRECATED,   /* DEPRECATED = True in current nodes.py */
};
const vkf_node_def vkf_node_EmptyImage = {
    .name = "EmptyImage", .display_name = "EmptyImage", .category = "image",
    .python_module = "nodes", .inputs = empty_inputs, .nb_inputs = 4,
    .outputs = image_out, .nb_outputs = 1, .execute = empty_image,
};

/* ---- ImagePadForOutpaint / ImageCrop ----------------------------------------- */

static int pad_outpaint(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    vkf_tensor *img = image_in(ctx, "ImagePadForOutpaint", "image", &in[0]);
    vkf_tensor *r = NULL, *m = NULL;
    vkf_gpu *gpu;
    if (!img)
        return VKF_ERUN;
    int64_t l = in[1].u.i, t = in[2].u.i, rt = in[3].u.i, b = in[4].u.i, f = in[5].u.i;
    const int64_t *sh = vkf_tensor_shape(img);
    int err = vkf_exec_gpu(ctx, &gpu);
    if (err < 0)
        return err;
    int64_t pads[8] = {0, 0, t, b, l, rt, 0, 0};
    err = vkf_op_pad(gpu, img, pads, 0.5f, &r);
    if (err >= 0)
        err = vkf_op_outpaint_mask(gpu, sh[1], sh[2], l, t, rt, b, f, &m);
    if (err < 0) {
        vkf_tensor_unref(&r);
        return op_error(ctx, "ImagePadForOutpaint", err);
    }
    err = set_image(ctx, &out[0], r);
    if (err < 0) {
        vkf_tensor_unref(&m);
        return err;
    }
    return vkf_value_set_mask(&out[1], m);
}

static int image_crop(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    vkf_tensor *img = image_in(ctx, "ImageCrop", "image", &in[0]), *a = NULL, *b = NULL, *r = NULL;
    vkf_gpu *gpu;
    if (!img)
        return VKF_ERUN;
    int64_t w = in[1].u.i, h = in[2].u.i, x = in[3].u.i, y = in[4].u.i;
    const int64_t *sh = vkf_tensor_shape(img);
    x = x < sh[2] - 1 ? x : sh[2] - 1;
    y = y < sh[1] - 1 ? y : sh[1] - 1;
    int64_t cw = w < sh[2] - x ? w : sh[2] - x, ch = h < sh[1] - y ? h : sh[1] - y;
    int err = vkf_exec_gpu(ctx, &gpu);
    if (err < 0)
        return err;
    if ((err = vkf_tensor_slice(img, 1, y, ch, &a)) >= 0 &&
        (err = vkf_tensor_slice(a, 2, x, cw, &b)) >= 0)
        err = vkf_op_contiguous(gpu, b, &r);
    vkf_tensor_unref(&a);
    vkf_tensor_unref(&b);
    if (err < 0)
        return op_error(ctx, "ImageCrop", err);
    return set_image(ctx, out, r);
}

static const vkf_input_def pad_inputs[] = {
    VKF_INPUT_LINK("image", "IMAGE"),
    {.name = "left", .type = VKF_T_INT, .idef = 0, .imin = 0, .imax = MAX_RES, .fstep = 8},
    {.name = "top", .type = VKF_T_INT, .idef = 0, .imin = 0, .imax = MAX_RES, .fstep = 8},
    {.name = "right", .type = VKF_T_INT, .idef = 0, .imin = 0, .imax = MAX_RES, .fstep = 8},
    {.name = "bottom", .type = VKF_T_INT, .idef = 0, .imin = 0, .imax = MAX_RES, .fstep = 8},
    VKF_INPUT_INT("feathering", 40, 0, MAX_RES),
};
static const vkf_output_def pad_outputs[] = {{.type = "IMAGE"}, {.type = "MASK"}};
static const vkf_input_def crop_inputs[] = {
    VKF_INPUT_LINK("image", "IMAGE"),
    VKF_INPUT_INT("width", 512, 1, MAX_RES),
    VKF_INPUT_INT("height", 512, 1, MAX_RES),
    VKF_INPUT_INT("x", 0, 0, MAX_RES),
    VKF_INPUT_INT("y", 0, 0, MAX_RES),
};

const vkf_node_def vkf_node_ImagePadForOutpaint = {
    .name = "ImagePadForOutpaint", .display_name = "Pad Image for Outpainting",
    .category = "image", .python_module = "nodes", .inputs = pad_inputs, .nb_inputs = 6,
    .outputs = pad_outputs, .nb_outputs = 2, .execute = pad_outpaint,
};
const vkf_node_def vkf_node_ImageCrop = {
    .name = "ImageCrop", .display_name = "Image Crop", .category = "image/transform",
    .python_module = "comfy_extras.nodes_images", .inputs = crop_inputs, .nb_inputs = 5,
    .outputs = image_out, .nb_outputs = 1, .execute = image_crop,
};

/* ---- ImageCompositeMasked --------------------------------------------------------- */

static int composite_masked(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    const char *node = "ImageCompositeMasked";
    vkf_tensor *dst = image_in(ctx, node, "destination", &in[0]);
    vkf_tensor *src = dst ? image_in(ctx, node, "source", &in[1]) : NULL;
    vkf_tensor *mask = vkf_value_mask(&in[5]);
    vkf_tensor *s2 = NULL, *s3 = NULL, *dn = NULL, *sn = NULL, *mr = NULL, *o = NULL, *op = NULL,
               *r = NULL;
    vkf_gpu *gpu;
    if (!dst || !src)
        return VKF_ERUN;
    int64_t x = in[2].u.i, y = in[3].u.i;
    bool resize = in[4].u.b;
    int err = vkf_exec_gpu(ctx, &gpu);
    if (err < 0)
        return err;
    const int64_t *ds = vkf_tensor_shape(dst);
    VKF_TRY(alpha_fix(gpu, src, ds[3], &s2));
    vkf_tensor *s = s2;
    if (resize) {
        VKF_TRY(vkf_image_upscale(gpu, s, ds[2], ds[1], "bilinear", false, &s3));
        s = s3;
    }
    const int64_t *sz = vkf_tensor_shape(s);
    VKF_TRY(vkf_tensor_permute(dst, (const int[]){0, 3, 1, 2}, &dn));
    VKF_TRY(vkf_tensor_permute(s, (const int[]){0, 3, 1, 2}, &sn));
    if (mask)
        VKF_TRY(vkf_mask_resize(gpu, mask, sz[1], sz[2], &mr));
    VKF_TRY(vkf_op_composite(gpu, dn, sn, mr, x < ds[2] ? x : ds[2], y < ds[1] ? y : ds[1], &o));
    VKF_TRY(vkf_tensor_permute(o, (const int[]){0, 2, 3, 1}, &op));
    VKF_TRY(vkf_op_contiguous(gpu, op, &r));
fail:
    vkf_tensor_unref(&s2);
    vkf_tensor_unref(&s3);
    vkf_tensor_unref(&dn);
    vkf_tensor_unref(&sn);
    vkf_tensor_unref(&mr);
    vkf_tensor_unref(&o);
    vkf_tensor_unref(&op);
    if (err < 0)
        return op_error(ctx, node, err);
    return set_image(ctx, out, r);
}

static const vkf_input_def composite_inputs[] = {
    VKF_INPUT_LINK("destination", "IMAGE"),
    VKF_INPUT_LINK("source", "IMAGE"),
    VKF_INPUT_INT("x", 0, 0, MAX_RES),
    VKF_INPUT_INT("y", 0, 0, MAX_RES),
    VKF_INPUT_BOOL("resize_source", false),
    {.name = "mask", .type = "MASK", .flags = VKF_IN_OPTIONAL},
};

const vkf_node_def vkf_node_ImageCompositeMasked = {
    .name = "ImageCompositeMasked", .display_name = "ImageCompositeMasked", .category = "image",
    .python_module = "comfy_extras.nodes_mask", .inputs = composite_inputs, .nb_inputs = 6,
    .outputs = image_out, .nb_outputs = 1, .execute = composite_masked,
};

/* ---- ImageBlend / ImageBlur / ImageSharpen ----------------------------------------- */

static const char *const blend_modes[] = {"normal", "multiply", "screen", "overlay",
                                          "soft_light", "difference", NULL};

static int image_blend(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    vkf_tensor *a = image_in(ctx, "ImageBlend", "image1", &in[0]);
    vkf_tensor *b = a ? image_in(ctx, "ImageBlend", "image2", &in[1]) : NULL;
    vkf_tensor *rs = NULL, *r = NULL;
    vkf_gpu *gpu;
    if (!a || !b)
        return VKF_ERUN;
    double f = vkf_value_number(&in[2]);
    int mode = 0;
    while (blend_modes[mode] && strcmp(blend_modes[mode], in[3].u.s))
        mode++;
    if (!blend_modes[mode])
        return vkf_exec_error(ctx, "ImageBlend: unsupported blend_mode '%s'", in[3].u.s);
    const int64_t *sa = vkf_tensor_shape(a), *sb = vkf_tensor_shape(b);
    if (sa[0] != sb[0])
        return vkf_exec_error(ctx, "ImageBlend: image2 has batch %lld, image1 %lld",
                              (long long)sb[0], (long long)sa[0]);
    vkf_tensor *fb = NULL;
    int err = vkf_exec_gpu(ctx, &gpu);
    if (err < 0)
        return err;
    err = alpha_fix(gpu, b, sa[3], &fb);
    if (err >= 0 && (sa[1] != sb[1] || sa[2] != sb[2]))
        err = vkf_image_upscale(gpu, fb, sa[2], sa[1], "bicubic", true, &rs);
    if (err >= 0)
        err = vkf_op_image_blend(gpu, a, rs ? rs : fb, (vkf_image_blend_mode)mode, f, &r);
    vkf_tensor_unref(&fb);
    vkf_tensor_unref(&rs);
    if (err < 0)
        return op_error(ctx, "ImageBlend", err);
    return set_image(ctx, out, r);
}

static int image_blur(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    vkf_tensor *img = image_in(ctx, "ImageBlur", "image", &in[0]), *r = NULL;
    vkf_gpu *gpu;
    if (!img)
        return VKF_ERUN;
    int64_t rad = in[1].u.i;
    const int64_t *sh = vkf_tensor_shape(img);
    if (rad >= sh[1] || rad >= sh[2])
        return vkf_exec_error(ctx, "ImageBlur: blur_radius %lld needs an image larger than "
                              "%lldx%lld (reflect padding)", (long long)rad, (long long)sh[2],
                              (long long)sh[1]);
    int err = vkf_exec_gpu(ctx, &gpu);
    if (err < 0)
        return err;
    if ((err = vkf_op_image_blur(gpu, img, (int)rad, vkf_value_number(&in[2]), &r)) < 0)
        return op_error(ctx, "ImageBlur", err);
    return set_image(ctx, out, r);
}

static int image_sharpen(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    vkf_tensor *img = image_in(ctx, "ImageSharpen", "image", &in[0]), *r = NULL;
    vkf_gpu *gpu;
    if (!img)
        return VKF_ERUN;
    int64_t rad = in[1].u.i;
    const int64_t *sh = vkf_tensor_shape(img);
    if (rad >= sh[1] || rad >= sh[2])
        return vkf_exec_error(ctx, "ImageSharpen: sharpen_radius %lld needs an image larger "
                              "than %lldx%lld (reflect padding)", (long long)rad,
                              (long long)sh[2], (long long)sh[1]);
    int err = vkf_exec_gpu(ctx, &gpu);
    if (err < 0)
        return err;
    err = vkf_op_image_sharpen(gpu, img, (int)rad, vkf_value_number(&in[2]),
                               vkf_value_number(&in[3]), &r);
    if (err < 0)
        return op_error(ctx, "ImageSharpen", err);
    return set_image(ctx, out, r);
}

static const vkf_input_def blend_inputs[] = {
    VKF_INPUT_LINK("image1", "IMAGE"),
    VKF_INPUT_LINK("image2", "IMAGE"),
    VKF_INPUT_FLOAT("blend_factor", 0.5, 0.0, 1.0, 0.01),
    {.name = "blend_mode", .type = VKF_T_COMBO, .options = blend_modes},
};
static const vkf_input_def blur_inputs[] = {
    VKF_INPUT_LINK("image", "IMAGE"),
    VKF_INPUT_INT("blur_radius", 1, 1, 31),
    VKF_INPUT_FLOAT("sigma", 1.0, 0.1, 10.0, 0.1),
};
static const vkf_input_def sharpen_inputs[] = {
    VKF_INPUT_LINK("image", "IMAGE"),
    VKF_INPUT_INT("sharpen_radius", 1, 1, 31),
    VKF_INPUT_FLOAT("sigma", 1.0, 0.1, 10.0, 0.01),
    VKF_INPUT_FLOAT("alpha", 1.0, 0.0, 5.0, 0.01),
};

const vkf_node_def vkf_node_ImageBlend = {
    .name = "ImageBlend", .display_name = "Image Blend", .category = "image/postprocessing",
    .python_module = "comfy_extras.nodes_post_processing", .inputs = blend_inputs,
    .nb_inputs = 4, .outputs = image_out, .nb_outputs = 1, .execute = image_blend,
};
const vkf_node_def vkf_node_ImageBlur = {
    .name = "ImageBlur", .display_name = "Image Blur", .category = "image/postprocessing",
    .python_module = "comfy_extras.nodes_post_processing", .inputs = blur_inputs,
    .nb_inputs = 3, .outputs = image_out, .nb_outputs = 1, .execute = image_blur,
};
const vkf_node_def vkf_node_ImageSharpen = {
    .name = "ImageSharpen", .display_name = "Image Sharpen", .category = "image/postprocessing",
    .python_module = "comfy_extras.nodes_post_processing", .inputs = sharpen_inputs,
    .nb_inputs = 4, .outputs = image_out, .nb_outputs = 1, .execute = image_sharpen,
};

/* ---- Canny -------------------------------------------------------------------------- */

static int canny(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    vkf_tensor *img = image_in(ctx, "Canny", "image", &in[0]), *e = NULL, *m = NULL, *r = NULL;
    float *host = NULL;
    int64_t *stack = NULL;
    vkf_gpu *gpu;
    if (!img)
        return VKF_ERUN;
    double lo = vkf_value_number(&in[1]), hi = vkf_value_number(&in[2]);
    const int64_t *sh = vkf_tensor_shape(img);
    if (lo > hi)
        return vkf_exec_error(ctx, "Canny: low_threshold %g is above high_threshold %g "
                              "(kornia refuses it)", lo, hi);
    if (sh[3] != 3)
        return vkf_exec_error(ctx, "Canny: input 'image' must have 3 channels, not %lld",
                              (long long)sh[3]);
    if (sh[1] < 3 || sh[2] < 3)
        return vkf_exec_error(ctx, "Canny: input 'image' must be at least 3x3 (reflect padding "
                              "of the 5x5 blur), not %lldx%lld", (long long)sh[2],
                              (long long)sh[1]);
    int err = vkf_exec_gpu(ctx, &gpu);
    if (err < 0)
        return err;
    int64_t n = sh[0] * sh[1] * sh[2];
    host = vkf_malloc(sizeof(float) * (size_t)n);
    stack = vkf_malloc(sizeof(int64_t) * (size_t)(sh[1] * sh[2] + 1));
    if (!host || !stack) {
        err = VKF_ENOMEM;
        goto fail;
    }
    VKF_TRY(vkf_op_canny_edges(gpu, img, (float)lo, (float)hi, &e));
    VKF_TRY(vkf_tensor_download(e, host));
    vkf_canny_hysteresis(host, sh[0], sh[1], sh[2], stack);
    VKF_TRY(vkf_tensor_create(gpu, VKF_DTYPE_F32, 3, sh, &m));
    VKF_TRY(vkf_tensor_upload(m, host));
    VKF_TRY(vkf_op_mask_to_image(gpu, m, &r));
fail:
    vkf_free(host);
    vkf_free(stack);
    vkf_tensor_unref(&e);
    vkf_tensor_unref(&m);
    if (err < 0)
        return op_error(ctx, "Canny", err);
    return set_image(ctx, out, r);
}

static const vkf_input_def canny_inputs[] = {
    VKF_INPUT_LINK("image", "IMAGE"),
    VKF_INPUT_FLOAT("low_threshold", 0.4, 0.01, 0.99, 0.01),
    VKF_INPUT_FLOAT("high_threshold", 0.8, 0.01, 0.99, 0.01),
};

const vkf_node_def vkf_node_Canny = {
    .name = "Canny", .display_name = "Canny", .category = "image/preprocessors",
    .python_module = "comfy_extras.nodes_canny", .inputs = canny_inputs, .nb_inputs = 3,
    .outputs = image_out, .nb_outputs = 1, .execute = canny,
};
