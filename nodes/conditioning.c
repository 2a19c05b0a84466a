/* Conditioning nodes of ComfyUI's nodes.py: ConditioningCombine, -Average,
 * -Concat, -SetArea, -SetAreaPercentage, -SetAreaStrength, -SetMask,
 * -ZeroOut, -SetTimestepRange and InpaintModelConditioning. */
#include <math.h>
#include <string.h>

#include "cond_latent.h"
#include "nodes.h"
#include "vkflow/models.h"
#include "vkflow/types.h"

#define MAX_RES 16384

static int set_cond(vkf_value *out, vkf_conditioning *c)
{
    if (!c)
        return VKF_ENOMEM;
    vkf_value_set_object(out, &c->obj);
    return 0;
}

static const vkf_output_def cond_output[] = {{.type = "CONDITIONING"}};

/* A copy of c (entries share tensors) for nodes that only set fields. */
static vkf_conditioning *cond_copy(vkf_exec_ctx *ctx, const vkf_value *v, const char *node)
{
    vkf_conditioning *c = vkf_value_conditioning(v);
    if (!c) {
        vkf_exec_error(ctx, "%s: conditioning is not a CONDITIONING", node);
        return NULL;
    }
    return vkf_conditioning_clone(c);
}

/* zeros_like(t), f32. */
static int zeros_like(vkf_gpu *gpu, vkf_tensor *t, vkf_tensor **out)
{
    float *z = vkf_calloc((size_t)vkf_tensor_numel(t), sizeof(float));
    if (!z)
        return VKF_ENOMEM;
    int err = vkf_tensor_create(gpu, VKF_DTYPE_F32, vkf_tensor_ndim(t), vkf_tensor_shape(t), out);
    if (err >= 0 && (err = vkf_tensor_upload(*out, z)) < 0)
        vkf_tensor_unref(out);
    vkf_free(z);
    return err;
}

/* a·s + b·(1 − s) as torch computes it (two scalar products, one add). */
static int weighted(vkf_gpu *gpu, vkf_tensor *a, vkf_tensor *b, double s, vkf_tensor **out)
{
    int err = 0;
    vkf_tensor *x = NULL, *y = NULL;
    VKF_TRY(vkf_op_unary(gpu, VKF_UN_SCALE, a, (float)s, 0.0f, &x));
    VKF_TRY(vkf_op_unary(gpu, VKF_UN_SCALE, b, (float)(1.0 - s), 0.0f, &y));
    err = vkf_op_binary(gpu, VKF_BIN_ADD, x, y, out);
fail:
    vkf_tensor_unref(&x);
    vkf_tensor_unref(&y);
    return err;
}

/* ---- ConditioningCombine ------------------------------------------------------ */

static int cond_combine(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    vkf_conditioning *a = vkf_value_conditioning(&in[0]), *b = vkf_value_conditioning(&in[1]);
    if (!a || !b)
        return vkf_exec_error(ctx, "ConditioningCombine: inputs must be CONDITIONING");
    vkf_conditioning *c = vkf_conditioning_new(a->n + b->n);
    if (!c)
        return VKF_ENOMEM;
    for (int i = 0; i < a->n; i++)
        vkf_cond_entry_copy(&c->e[i], &a->e[i]);
    for (int i = 0; i < b->n; i++)
        vkf_cond_entry_copy(&c->e[a->n + i], &b->e[i]);
    return set_cond(&out[0], c);
}

static const vkf_input_def combine_inputs[] = {
    VKF_INPUT_LINK("conditioning_1", "CONDITIONING"),
    VKF_INPUT_LINK("conditioning_2", "CONDITIONING"),
};

const vkf_node_def vkf_node_ConditioningCombine = {
    .name = "ConditioningCombine",
    .display_name = "Conditioning (Combine)",
    .category = "conditioning",
    .python_module = "nodes",
    .inputs = combine_inputs, .nb_inputs = 2,
    .outputs = cond_output, .nb_outputs = 1,
    .execute = cond_combine,
};

/* ---- ConditioningAverage ------------------------------------------------------ */

static int cond_average(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    vkf_conditioning *to = vkf_value_conditioning(&in[0]), *from = vkf_value_conditioning(&in[1]);
    double s = in[2].u.f;
    if (!to || !from || from->n < 1 || !from->e[0].cond)
        return vkf_exec_error(ctx, "ConditioningAverage: conditioning_from is empty");
    if (from->n > 1)
        vkf_logf(vkf_exec_log(ctx), VKF_LOG_WARN,
                 "Warning: ConditioningAverage conditioning_from contains more than 1 cond, only "
                 "the first one will actually be applied to conditioning_to.");
    vkf_gpu *gpu;
    int err = vkf_exec_gpu(ctx, &gpu);
    if (err < 0)
        return err;
    vkf_tensor *cf = from->e[0].cond, *pf = from->e[0].pooled;
    vkf_conditioning *c = vkf_conditioning_clone(to);
    vkf_tensor *t0 = NULL, *tp = NULL, *tw = NULL, *pw = NULL;
    if (!c)
        return VKF_ENOMEM;
    for (int i = 0; i < c->n; i++) {
        vkf_cond_entry *e = &c->e[i];
        const int64_t *s1 = vkf_tensor_shape(e->cond), *s0 = vkf_tensor_shape(cf);
        if (vkf_tensor_ndim(e->cond) != 3 || vkf_tensor_ndim(cf) != 3 || s1[2] != s0[2]) {
            err = vkf_exec_error(ctx, "ConditioningAverage: conditionings of width %lld and %lld",
                                 (long long)s1[vkf_tensor_ndim(e->cond) - 1],
                                 (long long)s0[vkf_tensor_ndim(cf) - 1]);
            goto fail;
        }
        /* cond_from cut or zero-padded to conditioning_to's token count */
        int64_t T1 = s1[1], T0 = s0[1] < T1 ? s0[1] : T1;
        VKF_TRY(vkf_tensor_slice(cf, 1, 0, T0, &t0));
        if (T0 < T1) {
            int64_t pads[6] = {0, 0, 0, T1 - T0, 0, 0};
            VKF_TRY(vkf_op_pad(gpu, t0, pads, 0.0f, &tp));
            vkf_tensor_unref(&t0);
            t0 = tp;
            tp = NULL;
        }
        VKF_TRY(weighted(gpu, e->cond, t0, s, &tw));
        vkf_tensor_unref(&t0);
        vkf_tensor_unref(&e->cond);
        e->cond = tw;
        tw = NULL;
        vkf_tensor *pto = e->pooled ? e->pooled : pf;
        if (pf && pto) {
            VKF_TRY(weighted(gpu, pto, pf, s, &pw));
            vkf_tensor_unref(&e->pooled);
            e->pooled = pw;
            pw = NULL;
        }
    }
    return set_cond(&out[0], c);
fail:
    if (err < 0 && err != VKF_ENOMEM && err != VKF_ERUN)
        err = vkf_exec_error(ctx, "ConditioningAverage: %s", vkf_strerror(err));
    vkf_tensor_unref(&t0);
    vkf_tensor_unref(&tp);
    vkf_tensor_unref(&tw);
    vkf_tensor_unref(&pw);
    vkf_object *o = &c->obj;
    vkf_object_unref(&o);
    return err;
}

static const vkf_input_def average_inputs[] = {
    VKF_INPUT_LINK("conditioning_to", "CONDITIONING"),
    VKF_INPUT_LINK("conditioning_from", "CONDITIONING"),
    VKF_INPUT_FLOAT("conditioning_to_strength", 1.0, 0.0, 1.0, 0.01),
};

const vkf_node_def vkf_node_ConditioningAverage = {
    .name = "ConditioningAverage",
    .category = "conditioning",
    .python_module = "nodes",
    .inputs = average_inputs, .nb_inputs = 3,
    .outputs = cond_output, .nb_outputs = 1,
    .execute = cond_average,
};

/* ---- ConditioningConcat ------------------------------------------------------- */

static int cond_concat(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    vkf_conditioning *to = vkf_value_conditioning(&in[0]), *from = vkf_value_conditioning(&in[1]);
    if (!to || !from || from->n < 1 || !from->e[0].cond)
        return vkf_exec_error(ctx, "ConditioningConcat: conditioning_from is empty");
    if (from->n > 1)
        vkf_logf(vkf_exec_log(ctx), VKF_LOG_WARN,
                 "Warning: ConditioningConcat conditioning_from contains more than 1 cond, only "
                 "the first one will actually be applied to conditioning_to.");
    vkf_gpu *gpu;
    int err = vkf_exec_gpu(ctx, &gpu);
    if (err < 0)
        return err;
    vkf_conditioning *c = vkf_conditioning_clone(to);
    if (!c)
        return VKF_ENOMEM;
    for (int i = 0; i < c->n; i++) {
        vkf_tensor *parts[2] = {c->e[i].cond, from->e[0].cond}, *t = NULL;
        if ((err = vkf_op_concat(gpu, parts, 2, 1, &t)) < 0) {
            vkf_object *o = &c->obj;
            vkf_object_unref(&o);
            return err == VKF_ENOMEM ? err
                                     : vkf_exec_error(ctx,
                                                      "ConditioningConcat: the conditionings "
                                                      "differ in batch or width");
        }
        vkf_tensor_unref(&c->e[i].cond);
        c->e[i].cond = t;
    }
    return set_cond(&out[0], c);
}

static const vkf_input_def concat_inputs[] = {
    VKF_INPUT_LINK("conditioning_to", "CONDITIONING"),
    VKF_INPUT_LINK("conditioning_from", "CONDITIONING"),
};

const vkf_node_def vkf_node_ConditioningConcat = {
    .name = "ConditioningConcat",
    .display_name = "Conditioning (Concat)",
    .category = "conditioning",
    .python_module = "nodes",
    .inputs = concat_inputs, .nb_inputs = 2,
    .outputs = cond_output, .nb_outputs = 1,
    .execute = cond_concat,
};

/* ---- area, strength, mask, timestep range --------------------------------------- */

static int set_area(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    vkf_conditioning *c = cond_copy(ctx, &in[0], "ConditioningSetArea");
    if (!c)
        return vkf_value_conditioning(&in[0]) ? VKF_ENOMEM : VKF_ERUN;
    int64_t w = in[1].u.i, h = in[2].u.i, x = in[3].u.i, y = in[4].u.i;
    for (int i = 0; i < c->n; i++) {
        vkf_cond_entry *e = &c->e[i];
        e->has_area = true;
        e->area_is_percent = false;
        e->area[0] = (double)(h / 8);
        e->area[1] = (double)(w / 8);
        e->area[2] = (double)(y / 8);
        e->area[3] = (double)(x / 8);
        e->strength = (float)in[5].u.f;
        e->set_area_to_bounds = false;
    }
    return set_cond(&out[0], c);
}

static const vkf_input_def set_area_inputs[] = {
    VKF_INPUT_LINK("conditioning", "CONDITIONING"),
    {.name = "width", .type = VKF_T_INT, .idef = 64, .imin = 64, .imax = MAX_RES, .fstep = 8},
    {.name = "height", .type = VKF_T_INT, .idef = 64, .imin = 64, .imax = MAX_RES, .fstep = 8},
    {.name = "x", .type = VKF_T_INT, .idef = 0, .imin = 0, .imax = MAX_RES, .fstep = 8},
    {.name = "y", .type = VKF_T_INT, .idef = 0, .imin = 0, .imax = MAX_RES, .fstep = 8},
    VKF_INPUT_FLOAT("strength", 1.0, 0.0, 10.0, 0.01),
};

const vkf_node_def vkf_node_ConditioningSetArea = {
    .name = "ConditioningSetArea",
    .display_name = "Conditioning (Set Area)",
    .category = "conditioning",
    .python_module = "nodes",
    .inputs = set_area_inputs, .nb_inputs = 6,
    .outputs = cond_output, .nb_outputs = 1,
    .execute = set_area,
};

static int set_area_pct(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    vkf_conditioning *c = cond_copy(ctx, &in[0], "ConditioningSetAreaPercentage");
    if (!c)
        return vkf_value_conditioning(&in[0]) ? VKF_ENOMEM : VKF_ERUN;
    for (int i = 0; i < c->n; i++) {
        vkf_cond_entry *e = &c->e[i];
        e->has_area = true;
        e->area_is_percent = true;
        e->area[0] = in[2].u.f;
        e->area[1] = in[1].u.f;
        e->area[2] = in[4].u.f;
        e->area[3] = in[3].u.f;
        e->strength = (float)in[5].u.f;
        e->set_area_to_bounds = false;
    }
    return set_cond(&out[0], c);
}

static const vkf_input_def set_area_pct_inputs[] = {
    VKF_INPUT_LINK("conditioning", "CONDITIONING"),
    VKF_INPUT_FLOAT("width", 1.0, 0, 1.0, 0.01),
    VKF_INPUT_FLOAT("height", 1.0, 0, 1.0, 0.01),
    VKF_INPUT_FLOAT("x", 0, 0, 1.0, 0.01),
    VKF_INPUT_FLOAT("y", 0, 0, 1.0, 0.01),
    VKF_INPUT_FLOAT("strength", 1.0, 0.0, 10.0, 0.01),
};

const vkf_node_def vkf_node_ConditioningSetAreaPercentage = {
    .name = "ConditioningSetAreaPercentage",
    .display_name = "Conditioning (Set Area with Percentage)",
    .category = "conditioning",
    .python_module = "nodes",
    .inputs = set_area_pct_inputs, .nb_inputs = 6,
    .outputs = cond_output, .nb_outputs = 1,
    .execute = set_area_pct,
};

static int set_area_strength(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    vkf_conditioning *c = cond_copy(ctx, &in[0], "ConditioningSetAreaStrength");
    if (!c)
        return vkf_value_conditioning(&in[0]) ? VKF_ENOMEM : VKF_ERUN;
    for (int i = 0; i < c->n; i++)
        c->e[i].strength = (float)in[1].u.f;
    return set_cond(&out[0], c);
}

static const vkf_input_def set_area_strength_inputs[] = {
    VKF_INPUT_LINK("conditioning", "CONDITIONING"),
    VKF_INPUT_FLOAT("strength", 1.0, 0.0, 10.0, 0.01),
};

const vkf_node_def vkf_node_ConditioningSetAreaStrength = {
    .name = "ConditioningSetAreaStrength",
    .category = "conditioning",
    .python_module = "nodes",
    .inputs = set_area_strength_inputs, .nb_inputs = 2,
    .outputs = cond_output, .nb_outputs = 1,
    .execute = set_area_strength,
};

static int set_mask(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    vkf_tensor *mask = vkf_value_mask(&in[1]), *m3 = NULL;
    if (!mask || vkf_tensor_ndim(mask) < 2 || vkf_tensor_ndim(mask) > 3)
        return vkf_exec_error(ctx, "ConditioningSetMask: mask must be a MASK [B, H, W]");
    if (vkf_tensor_ndim(mask) == 2) {
        const int64_t *s = vkf_tensor_shape(mask);
        if (!vkf_tensor_is_contiguous(mask))
            return vkf_exec_error(ctx, "ConditioningSetMask: mask is not contiguous");
        int err = vkf_tensor_reshape(mask, 3, (int64_t[]){1, s[0], s[1]}, &m3);
        if (err < 0)
            return err;
    } else {
        m3 = vkf_tensor_ref(mask);
    }
    vkf_conditioning *c = cond_copy(ctx, &in[0], "ConditioningSetMask");
    if (!c) {
        vkf_tensor_unref(&m3);
        return vkf_value_conditioning(&in[0]) ? VKF_ENOMEM : VKF_ERUN;
    }
    bool bounds = strcmp(in[3].u.s, "default") != 0;
    for (int i = 0; i < c->n; i++) {
        vkf_cond_entry *e = &c->e[i];
        vkf_tensor_unref(&e->mask);
        e->mask = vkf_tensor_ref(m3);
        e->set_area_to_bounds = bounds;
        e->mask_strength = (float)in[2].u.f;
    }
    vkf_tensor_unref(&m3);
    return set_cond(&out[0], c);
}

static const char *const set_cond_area_opts[] = {"default", "mask bounds", NULL};

static const vkf_input_def set_mask_inputs[] = {
    VKF_INPUT_LINK("conditioning", "CONDITIONING"),
    VKF_INPUT_LINK("mask", "MASK"),
    VKF_INPUT_FLOAT("strength", 1.0, 0.0, 10.0, 0.01),
    {.name = "set_cond_area", .type = VKF_T_COMBO, .options = set_cond_area_opts},
};

const vkf_node_def vkf_node_ConditioningSetMask = {
    .name = "ConditioningSetMask",
    .display_name = "Conditioning (Set Mask)",
    .category = "conditioning",
    .python_module = "nodes",
    .inputs = set_mask_inputs, .nb_inputs = 4,
    .outputs = cond_output, .nb_outputs = 1,
    .execute = set_mask,
};

static int zero_out(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    vkf_conditioning *c = cond_copy(ctx, &in[0], "ConditioningZeroOut");
    if (!c)
        return vkf_value_conditioning(&in[0]) ? VKF_ENOMEM : VKF_ERUN;
    vkf_gpu *gpu;
    int err = vkf_exec_gpu(ctx, &gpu);
    for (int i = 0; err >= 0 && i < c->n; i++) {
        vkf_cond_entry *e = &c->e[i];
        vkf_tensor *z = NULL;
        if (e->pooled && (err = zeros_like(gpu, e->pooled, &z)) >= 0) {
            vkf_tensor_unref(&e->pooled);
            e->pooled = z;
        }
        z = NULL;
        if (err >= 0 && e->cond && (err = zeros_like(gpu, e->cond, &z)) >= 0) {
            vkf_tensor_unref(&e->cond);
            e->cond = z;
        }
    }
    if (err < 0) {
        vkf_object *o = &c->obj;
        vkf_object_unref(&o);
        return err;
    }
    return set_cond(&out[0], c);
}

static const vkf_input_def one_cond_input[] = {
    VKF_INPUT_LINK("conditioning", "CONDITIONING"),
};

const vkf_node_def vkf_node_ConditioningZeroOut = {
    .name = "ConditioningZeroOut",
    .category = "advanced/conditioning",
    .python_module = "nodes",
    .inputs = one_cond_input, .nb_inputs = 1,
    .outputs = cond_output, .nb_outputs = 1,
    .execute = zero_out,
};

static int set_timestep_range(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    vkf_conditioning *c = cond_copy(ctx, &in[0], "ConditioningSetTimestepRange");
    if (!c)
        return vkf_value_conditioning(&in[0]) ? VKF_ENOMEM : VKF_ERUN;
    for (int i = 0; i < c->n; i++) {
        c->e[i].start_percent = in[1].u.f;
        c->e[i].end_percent = in[2].u.f;
    }
    return set_cond(&out[0], c);
}

static const vkf_input_def timestep_range_inputs[] = {
    VKF_INPUT_LINK("conditioning", "CONDITIONING"),
    VKF_INPUT_FLOAT("start", 0.0, 0.0, 1.0, 0.001),
    VKF_INPUT_FLOAT("end", 1.0, 0.0, 1.0, 0.001),
};

const vkf_node_def vkf_node_ConditioningSetTimestepRange = {
    .name = "ConditioningSetTimestepRange",
    .category = "advanced/conditioning",
    .python_module = "nodes",
    .inputs = timestep_range_inputs, .nb_inputs = 3,
    .outputs = cond_output, .nb_outputs = 1,
    .execute = set_timestep_range,
};

/* ---- InpaintModelConditioning ----------------------------------------------------- */

/* IMAGE [B, H, W, ≥3] in [0, 1] → the VAE's latent (VAE.encode: RGB,
 * channels first, x·2 − 1). */
static int vae_encode_image(vkf_gpu *gpu, vkf_vae_model *vae, vkf_tensor *img, vkf_tensor **out)
{
    int err = 0;
    vkf_tensor *rgb = NULL, *chw = NULL, *c = NULL, *s = NULL;
    VKF_TRY(vkf_tensor_slice(img, 3, 0, 3, &rgb));
    VKF_TRY(vkf_tensor_permute(rgb, (const int[]){0, 3, 1, 2}, &chw));
    VKF_TRY(vkf_op_contiguous(gpu, chw, &c));
    VKF_TRY(vkf_op_unary(gpu, VKF_UN_SCALE, c, 2.0f, -1.0f, &s));
    err = vae->encode(vae, s, out);
fail:
    vkf_tensor_unref(&rgb);
    vkf_tensor_unref(&chw);
    vkf_tensor_unref(&c);
    vkf_tensor_unref(&s);
    return err;
}

static int inpaint_cond(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    vkf_conditioning *pos = vkf_value_conditioning(&in[0]), *neg = vkf_value_conditioning(&in[1]);
    vkf_vae *vae = vkf_value_vae(&in[2]);
    vkf_tensor *pixels = vkf_value_image(&in[3]), *mask = vkf_value_mask(&in[4]);
    bool noise_mask = in[5].u.b;
    if (!pos || !neg || !vae || !vae->m || !pixels || !mask)
        return vkf_exec_error(ctx, "InpaintModelConditioning: missing input");
    if (vkf_tensor_ndim(pixels) != 4 || vkf_tensor_shape(pixels)[3] < 3)
        return vkf_exec_error(ctx, "InpaintModelConditioning: pixels must be an IMAGE [B, H, W, C]");
    if (!vae->m->encode)
        return vkf_exec_error(ctx, "InpaintModelConditioning: this VAE (%s) cannot encode",
                              vae->m->arch);
    vkf_gpu *gpu;
    int err = vkf_exec_gpu(ctx, &gpu);
    if (err < 0)
        return err;
    const int64_t *ps = vkf_tensor_shape(pixels);
    int64_t B = ps[0], H = ps[1], W = ps[2];
    int64_t x = H / 8 * 8, y = W / 8 * 8, xo = (H % 8) / 2, yo = (W % 8) / 2;
    vkf_tensor *m3 = NULL, *mc = NULL, *m4 = NULL, *a = NULL, *crop = NULL, *keep = NULL;
    vkf_tensor *t1 = NULL, *t2 = NULL, *masked = NULL, *concat_latent = NULL, *orig_latent = NULL;
    vkf_conditioning *outc[2] = {NULL, NULL};
    float *host = NULL;
    if (x < 8 || y < 8)
        return vkf_exec_error(ctx, "InpaintModelConditioning: image %lldx%lld is too small",
                              (long long)W, (long long)H);
    /* The mask resized to the image, then cropped like the pixels:
     * [Bm, 1, x, y]. */
    VKF_TRY(vkf_mask_resize(gpu, mask, H, W, &m3));
    int64_t Bm = vkf_tensor_shape(m3)[0];
    if (Bm != 1 && Bm != B) {
        err = vkf_exec_error(ctx, "InpaintModelConditioning: %lld masks for %lld images",
                             (long long)Bm, (long long)B);
        goto fail;
    }
    VKF_TRY(vkf_tensor_slice(m3, 1, xo, x, &a));
    VKF_TRY(vkf_tensor_slice(a, 2, yo, y, &crop));
    VKF_TRY(vkf_op_contiguous(gpu, crop, &mc));
    VKF_TRY(vkf_tensor_reshape(mc, 4, (int64_t[]){Bm, 1, x, y}, &m4));
    vkf_tensor_unref(&a);
    vkf_tensor_unref(&crop);
    /* keep = 1 − round(mask) (half to even, as torch.round), [Bm, x, y, 1]. */
    size_t nm = (size_t)(Bm * x * y);
    VKF_CHECK_ALLOC(host = vkf_malloc(sizeof(float) * nm));
    VKF_TRY(vkf_tensor_download(mc, host));
    for (size_t i = 0; i < nm; i++)
        host[i] = 1.0f - nearbyintf(host[i]);
    VKF_TRY(vkf_tensor_create(gpu, VKF_DTYPE_F32, 4, (int64_t[]){Bm, x, y, 1}, &keep));
    VKF_TRY(vkf_tensor_upload(keep, host));
    /* Cropped pixels, masked to 0.5 grey: (p − 0.5)·keep + 0.5. */
    VKF_TRY(vkf_tensor_slice(pixels, 1, xo, x, &a));
    VKF_TRY(vkf_tensor_slice(a, 2, yo, y, &crop));
    vkf_tensor_unref(&a);
    VKF_TRY(vkf_tensor_slice(crop, 3, 0, 3, &a));
    VKF_TRY(vkf_op_unary(gpu, VKF_UN_SCALE, a, 1.0f, -0.5f, &t1));
    VKF_TRY(vkf_op_binary(gpu, VKF_BIN_MUL, t1, keep, &t2));
    VKF_TRY(vkf_op_unary(gpu, VKF_UN_SCALE, t2, 1.0f, 0.5f, &masked));
    if ((err = vae_encode_image(gpu, vae->m, masked, &concat_latent)) < 0 ||
        (err = vae_encode_image(gpu, vae->m, crop, &orig_latent)) < 0) {
        err = err == VKF_ENOMEM ? err
                                : vkf_exec_error(ctx, "InpaintModelConditioning: VAE encode failed: %s",
                                                 vkf_strerror(err));
        goto fail;
    }
    for (int k = 0; k < 2; k++) {
        VKF_CHECK_ALLOC(outc[k] = vkf_conditioning_clone(k ? neg : pos));
        for (int i = 0; i < outc[k]->n; i++) {
            vkf_cond_entry *e = &outc[k]->e[i];
            vkf_tensor_unref(&e->concat_latent_image);
            vkf_tensor_unref(&e->concat_mask);
            e->concat_latent_image = vkf_tensor_ref(concat_latent);
            e->concat_mask = vkf_tensor_ref(m4);
        }
    }
    VKF_TRY(vkf_value_set_latent(&out[2], orig_latent, noise_mask ? vkf_tensor_ref(m4) : NULL,
                                 NULL, 0));
    orig_latent = NULL;
    set_cond(&out[0], outc[0]);
    set_cond(&out[1], outc[1]);
    outc[0] = outc[1] = NULL;
fail:
    if (err < 0 && err != VKF_ENOMEM && err != VKF_ERUN)
        err = vkf_exec_error(ctx, "InpaintModelConditioning: %s", vkf_strerror(err));
    for (int k = 0; k < 2; k++) {
        vkf_object *o = outc[k] ? &outc[k]->obj : NULL;
        vkf_object_unref(&o);
    }
    vkf_free(host);
    vkf_tensor_unref(&m3);
    vkf_tensor_unref(&mc);
    vkf_tensor_unref(&m4);
    vkf_tensor_unref(&a);
    vkf_tensor_unref(&crop);
    vkf_tensor_unref(&keep);
    vkf_tensor_unref(&t1);
    vkf_tensor_unref(&t2);
    vkf_tensor_unref(&masked);
    vkf_tensor_unref(&concat_latent);
    vkf_tensor_unref(&orig_latent);
    return err;
}

static const vkf_input_def inpaint_inputs[] = {
    VKF_INPUT_LINK("positive", "CONDITIONING"),
    VKF_INPUT_LINK("negative", "CONDITIONING"),
    VKF_INPUT_LINK("vae", "VAE"),
    VKF_INPUT_LINK("pixels", "IMAGE"),
    VKF_INPUT_LINK("mask", "MASK"),
    {.name = "noise_mask", .type = VKF_T_BOOLEAN, .bdef = true,
     .tooltip = "Add a noise mask to the latent so sampling will only happen within the mask. "
                "Might improve results or completely break things depending on the model."},
};
static const vkf_output_def inpaint_outputs[] = {
    {.type = "CONDITIONING", .name = "positive"},
    {.type = "CONDITIONING", .name = "negative"},
    {.type = "LATENT", .name = "latent"},
};

const vkf_node_def vkf_node_InpaintModelConditioning = {
    .name = "InpaintModelConditioning",
    .category = "conditioning/inpaint",
    .python_module = "nodes",
    .inputs = inpaint_inputs, .nb_inputs = 6,
    .outputs = inpaint_outputs, .nb_outputs = 3,
    .execute = inpaint_cond,
};
