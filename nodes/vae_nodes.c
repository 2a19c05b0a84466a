/* VAEDecode, VAEEncode, VAEDecodeTiled, VAEEncodeTiled, VAEEncodeForInpaint
 * and VAELoader as ComfyUI's nodes.py defines them (inputs, defaults,
 * ranges, behaviour).  IMAGE [B, H, W, C] in 0..1 ⇄ the VAE's
 * [B, 3, H, W] in [-1, 1] through permuted views and the unary ops. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "nodes.h"
#include "vkflow/models.h"
#include "vkflow/paths.h"
#include "vkflow/types.h"

/* ---- conversions ------------------------------------------------------------ */

/* pixels [B, H, W, C] → [B, 3, h, w] in [-1, 1], cropped to the rows/cols
 * [y0, y0+h) × [x0, x0+w) (ComfyUI's vae_encode_crop_pixels). */
static int image_to_vae(vkf_gpu *gpu, vkf_tensor *img, int64_t y0, int64_t h, int64_t x0,
                        int64_t w, vkf_tensor **out)
{
    int err = 0;
    const int perm[4] = {0, 3, 1, 2};
    vkf_tensor *p = NULL, *a = NULL, *b = NULL, *c = NULL;
    VKF_TRY(vkf_tensor_permute(img, perm, &p));
    VKF_TRY(vkf_tensor_slice(p, 1, 0, 3, &a));
    VKF_TRY(vkf_tensor_slice(a, 2, y0, h, &b));
    VKF_TRY(vkf_tensor_slice(b, 3, x0, w, &c));
    VKF_TRY(vkf_op_unary(gpu, VKF_UN_SCALE, c, 2.0f, -1.0f, out));
fail:
    vkf_tensor_unref(&p);
    vkf_tensor_unref(&a);
    vkf_tensor_unref(&b);
    vkf_tensor_unref(&c);
    return err;
}

/* [B, 3, H, W] in [-1, 1] → IMAGE: clamp((x + 1) / 2, 0, 1), [B, H, W, 3]. */
static int vae_to_image(vkf_gpu *gpu, vkf_tensor *x, vkf_tensor **out)
{
    int err = 0;
    const int perm[4] = {0, 2, 3, 1};
    vkf_tensor *s = NULL, *r1 = NULL, *r2 = NULL, *sh = NULL, *d = NULL, *p = NULL;
    VKF_TRY(vkf_op_unary(gpu, VKF_UN_SCALE, x, 0.5f, 0.5f, &s));
    /* clamp(s, 0, 1) = relu(s) - relu(s - 1) */
    VKF_TRY(vkf_op_unary(gpu, VKF_UN_RELU, s, 0, 0, &r1));
    VKF_TRY(vkf_op_unary(gpu, VKF_UN_SCALE, s, 1.0f, -1.0f, &sh));
    VKF_TRY(vkf_op_unary(gpu, VKF_UN_RELU, sh, 0, 0, &r2));
    VKF_TRY(vkf_op_binary(gpu, VKF_BIN_SUB, r1, r2, &d));
    VKF_TRY(vkf_tensor_permute(d, perm, &p));
    VKF_TRY(vkf_op_contiguous(gpu, p, out));
fail:
    vkf_tensor_unref(&s);
    vkf_tensor_unref(&r1);
    vkf_tensor_unref(&r2);
    vkf_tensor_unref(&sh);
    vkf_tensor_unref(&d);
    vkf_tensor_unref(&p);
    return err;
}

static vkf_vae_model *get_vae(vkf_exec_ctx *ctx, const vkf_value *v)
{
    vkf_vae *vae = vkf_value_vae(v);
    if (!vae || !vae->m) {
        vkf_exec_error(ctx, "vae input is not a VAE");
        return NULL;
    }
    return vae->m;
}

static vkf_tensor *get_samples(vkf_exec_ctx *ctx, const vkf_value *v, vkf_vae_model *m)
{
    const vkf_latent *l = vkf_value_latent(v);
    if (!l || !l->samples) {
        vkf_exec_error(ctx, "samples input is not a LATENT");
        return NULL;
    }
    const int64_t *s = vkf_tensor_shape(l->samples);
    if (vkf_tensor_ndim(l->samples) != 4 || s[1] != m->latent_channels) {
        vkf_exec_error(ctx,
                       "%s VAE decodes [B, %d, h, w] latents; got %d-D samples with %lld channels",
                       m->arch, m->latent_channels, vkf_tensor_ndim(l->samples),
                       (long long)s[1]);
        return NULL;
    }
    return l->samples;
}

static vkf_tensor *get_pixels(vkf_exec_ctx *ctx, const vkf_value *v, vkf_vae_model *m)
{
    vkf_tensor *t = vkf_value_image(v);
    if (!t || vkf_tensor_ndim(t) != 4 || vkf_tensor_shape(t)[3] < 3) {
        vkf_exec_error(ctx, "pixels input is not an RGB IMAGE");
        return NULL;
    }
    const int64_t *s = vkf_tensor_shape(t);
    if (s[1] < m->downscale || s[2] < m->downscale) {
        vkf_exec_error(ctx, "image of %lldx%lld is smaller than the VAE's %d-pixel cell",
                       (long long)s[2], (long long)s[1], m->downscale);
        return NULL;
    }
    return t;
}

static int vae_failed(vkf_exec_ctx *ctx, const char *what, vkf_vae_model *m, int err)
{
    return vkf_exec_error(ctx, "%s with the %s VAE failed: %s", what, m->arch,
                          vkf_strerror(err));
}

/* ---- VAEDecode / VAEDecodeTiled ------------------------------------------- */

static int decode_common(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out, bool tiled)
{
    vkf_vae_model *m = get_vae(ctx, &in[1]);
    if (!m)
        return VKF_ERUN;
    vkf_tensor *z = get_samples(ctx, &in[0], m);
    if (!z)
        return VKF_ERUN;
    vkf_gpu *gpu;
    int err = vkf_exec_gpu(ctx, &gpu);
    if (err < 0)
        return err;
    vkf_tensor *x = NULL, *img = NULL;
    if (tiled) {
        int64_t tile = in[2].u.i, overlap = in[3].u.i;
        /* VAEDecodeTiled.decode: the overlap is at most a quarter tile
         * (temporal_size/temporal_overlap only matter for video VAEs). */
        if (tile < overlap * 4)
            overlap = tile / 4;
        err = vkf_vae_decode_tiled(m, z, (int)tile, (int)overlap, &x);
    } else {
        err = m->decode(m, z, &x);
    }
    if (err < 0)
        return err == VKF_EINTERRUPTED ? err : vae_failed(ctx, "decoding", m, err);
    err = vae_to_image(gpu, x, &img);
    vkf_tensor_unref(&x);
    if (err < 0)
        return vae_failed(ctx, "decoding", m, err);
    return vkf_value_set_image(&out[0], img);
}

static int vae_decode_exec(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    return decode_common(ctx, in, out, false);
}

static int vae_decode_tiled_exec(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    return decode_common(ctx, in, out, true);
}

static const vkf_input_def vae_decode_inputs[] = {
    {.name = "samples", .type = "LATENT", .tooltip = "The latent to be decoded."},
    {.name = "vae", .type = "VAE", .tooltip = "The VAE model used for decoding the latent."},
};
static const vkf_output_def vae_decode_outputs[] = {
    {.type = "IMAGE", .tooltip = "The decoded image."},
};

const vkf_node_def vkf_node_VAEDecode = {
    .name = "VAEDecode",
    .display_name = "VAE Decode",
    .category = "latent",
    .description = "Decodes latent images back into pixel space images.",
    .python_module = "nodes",
    .inputs = vae_decode_inputs,
    .nb_inputs = 2,
    .outputs = vae_decode_outputs,
    .nb_outputs = 1,
    .execute = vae_decode_exec,
};

static const vkf_input_def vae_decode_tiled_inputs[] = {
    {.name = "samples", .type = "LATENT"},
    {.name = "vae", .type = "VAE"},
    {.name = "tile_size", .type = VKF_T_INT, .idef = 512, .imin = 64, .imax = 4096, .fstep = 32},
    {.name = "overlap", .type = VKF_T_INT, .idef = 64, .imin = 0, .imax = 4096, .fstep = 32},
    {.name = "temporal_size", .type = VKF_T_INT, .idef = 64, .imin = 8, .imax = 4096, .fstep = 4,
     .tooltip = "Only used for video VAEs: Amount of frames to decode at a time."},
    {.name = "temporal_overlap", .type = VKF_T_INT, .idef = 8, .imin = 4, .imax = 4096,
     .fstep = 4, .tooltip = "Only used for video VAEs: Amount of frames to overlap."},
};
static const vkf_output_def image_output[] = {{.type = "IMAGE"}};

const vkf_node_def vkf_node_VAEDecodeTiled = {
    .name = "VAEDecodeTiled",
    .display_name = "VAE Decode (Tiled)",
    .category = "_for_testing",
    .python_module = "nodes",
    .inputs = vae_decode_tiled_inputs,
    .nb_inputs = 6,
    .outputs = image_output,
    .nb_outputs = 1,
    .execute = vae_decode_tiled_exec,
};

/* ---- VAEEncode / VAEEncodeTiled --------------------------------------------- */

/* vae_encode_crop_pixels: centred crop of each spatial dim to a multiple of
 * the downscale. */
static void crop_box(int64_t n, int d, int64_t *off, int64_t *len)
{
    *len = n / d * d;
    *off = (n % d) / 2;
}

static int encode_common(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out, bool tiled)
{
    vkf_vae_model *m = get_vae(ctx, &in[1]);
    if (!m)
        return VKF_ERUN;
    vkf_tensor *px = get_pixels(ctx, &in[0], m);
    if (!px)
        return VKF_ERUN;
    vkf_gpu *gpu;
    int err = vkf_exec_gpu(ctx, &gpu);
    if (err < 0)
        return err;
    const int64_t *s = vkf_tensor_shape(px);
    int64_t y0, h, x0, w;
    crop_box(s[1], m->downscale, &y0, &h);
    crop_box(s[2], m->downscale, &x0, &w);
    vkf_tensor *x = NULL, *z = NULL;
    err = image_to_vae(gpu, px, y0, h, x0, w, &x);
    if (err >= 0)
        err = tiled ? vkf_vae_encode_tiled(m, x, (int)in[2].u.i, (int)in[3].u.i, &z)
                    : m->encode(m, x, &z);
    vkf_tensor_unref(&x);
    if (err < 0) {
        if (tiled && err == VKF_EINVAL)
            return vkf_exec_error(ctx, "tile_size %lld leaves no room for overlap %lld",
                                  (long long)in[2].u.i, (long long)in[3].u.i);
        return vae_failed(ctx, "encoding", m, err);
    }
    return vkf_value_set_latent(&out[0], z, NULL, NULL, 0);
}

static int vae_encode_exec(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    return encode_common(ctx, in, out, false);
}

static int vae_encode_tiled_exec(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    return encode_common(ctx, in, out, true);
}

static const vkf_input_def vae_encode_inputs[] = {
    {.name = "pixels", .type = "IMAGE"},
    {.name = "vae", .type = "VAE"},
};
static const vkf_output_def latent_output[] = {{.type = "LATENT"}};

const vkf_node_def vkf_node_VAEEncode = {
    .name = "VAEEncode",
    .display_name = "VAE Encode",
    .category = "latent",
    .python_module = "nodes",
    .inputs = vae_encode_inputs,
    .nb_inputs = 2,
    .outputs = latent_output,
    .nb_outputs = 1,
    .execute = vae_encode_exec,
};

static const vkf_input_def vae_encode_tiled_inputs[] = {
    {.name = "pixels", .type = "IMAGE"},
    {.name = "vae", .type = "VAE"},
    {.name = "tile_size", .type = VKF_T_INT, .idef = 512, .imin = 64, .imax = 4096, .fstep = 64},
    {.name = "overlap", .type = VKF_T_INT, .idef = 64, .imin = 0, .imax = 4096, .fstep = 32},
    {.name = "temporal_size", .type = VKF_T_INT, .idef = 64, .imin = 8, .imax = 4096, .fstep = 4,
     .tooltip = "Only used for video VAEs: Amount of frames to encode at a time."},
    {.name = "temporal_overlap", .type = VKF_T_INT, .idef = 8, .imin = 4, .imax = 4096,
     .fstep = 4, .tooltip = "Only used for video VAEs: Amount of frames to overlap."},
};

const vkf_node_def vkf_node_VAEEncodeTiled = {
    .name = "VAEEncodeTiled",
    .display_name = "VAE Encode (Tiled)",
    .category = "_for_testing",
    .python_module = "nodes",
    .inputs = vae_encode_tiled_inputs,
    .nb_inputs = 6,
    .outputs = latent_output,
    .nb_outputs = 1,
    .execute = vae_encode_tiled_exec,
};

/* ---- VAEEncodeForInpaint ------------------------------------------------------ */

static int inpaint_exec(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    vkf_vae_model *m = get_vae(ctx, &in[1]);
    if (!m)
        return VKF_ERUN;
    vkf_tensor *px = get_pixels(ctx, &in[0], m);
    vkf_tensor *mask = vkf_value_mask(&in[2]);
    if (!px)
        return VKF_ERUN;
    if (!mask || vkf_tensor_ndim(mask) < 2)
        return vkf_exec_error(ctx, "mask input is not a MASK");
    int64_t grow = in[3].u.i;
    vkf_gpu *gpu;
    int err = vkf_exec_gpu(ctx, &gpu);
    if (err < 0)
        return err;
    const int64_t *ps = vkf_tensor_shape(px);
    int64_t B = ps[0], H = ps[1], W = ps[2], C = ps[3];
    int mnd = vkf_tensor_ndim(mask);
    const int64_t *ms = vkf_tensor_shape(mask);
    int64_t mh = ms[mnd - 2], mw = ms[mnd - 1], BM = vkf_tensor_numel(mask) / (mh * mw);
    if (BM != B && BM != 1)
        return vkf_exec_error(ctx, "mask batch %lld does not match the image batch %lld",
                              (long long)BM, (long long)B);
    int d = m->downscale;
    int64_t x = H / d * d, y = W / d * d, xo = 0, yo = 0;
    if (x != H || y != W) {
        xo = (H % d) / 2;
        yo = (W % d) / 2;
    }
    vkf_tensor *mr = NULL, *mi = NULL, *pt = NULL, *enc_in = NULL, *z = NULL, *nm = NULL;
    float *mk = NULL, *pix = NULL, *er = NULL, *pc = NULL;
    /* mask → [BM, 1, H, W], bilinear (align_corners False) to the image size */
    int64_t m4[4] = {BM, 1, mh, mw};
    vkf_tensor *mc = NULL;
    VKF_TRY(vkf_op_contiguous(gpu, mask, &mc));
    err = vkf_tensor_reshape(mc, 4, m4, &mr);
    vkf_tensor_unref(&mc);
    if (err < 0)
        goto fail;
    vkf_upsample_params up = {.mode = VKF_UPSAMPLE_BILINEAR, .size = {H, W}};
    VKF_TRY(vkf_op_upsample(gpu, mr, &up, &mi));
    mk = vkf_malloc((size_t)(BM * H * W) * sizeof(float));
    pix = vkf_malloc((size_t)(B * H * W * C) * sizeof(float));
    VKF_CHECK_ALLOC(mk);
    VKF_CHECK_ALLOC(pix);
    VKF_TRY(vkf_tensor_download(mi, mk));
    VKF_TRY(vkf_tensor_download(px, pix));
    /* crop to multiples of the downscale (centred), then
     * pixels = (pixels - 0.5) · (1 - round(mask)) + 0.5 on the RGB channels */
    pc = vkf_malloc((size_t)(B * x * y * 3) * sizeof(float));
    VKF_CHECK_ALLOC(pc);
    for (int64_t b = 0; b < B; b++) {
        const float *mb = mk + (BM == 1 ? 0 : b) * H * W;
        for (int64_t i = 0; i < x; i++) {
            for (int64_t j = 0; j < y; j++) {
                float keep = 1.0f - nearbyintf(mb[(i + xo) * W + (j + yo)]);
                for (int c = 0; c < 3; c++) {
                    float v = pix[((b * H + i + xo) * W + j + yo) * C + c];
                    pc[((b * x + i) * y + j) * 3 + c] = (v - 0.5f) * keep + 0.5f;
                }
            }
        }
    }
    /* grow: clamp(conv2d(round(mask), ones(g, g), padding=ceil((g-1)/2)), 0, 1),
     * then [:x, :y] and round */
    er = vkf_malloc((size_t)(BM * x * y) * sizeof(float));
    VKF_CHECK_ALLOC(er);
    int64_t pad = grow > 0 ? (grow - 1 + 1) / 2 : 0;
    for (int64_t b = 0; b < BM; b++) {
        const float *mb = mk + b * H * W;
        for (int64_t i = 0; i < x; i++) {
            for (int64_t j = 0; j < y; j++) {
                float v;
                if (grow == 0) {
                    v = mb[(i + xo) * W + j + yo];
                } else {
                    float sum = 0;
                    for (int64_t a = 0; a < grow; a++) {
                        int64_t ii = i + a - pad;
                        if (ii < 0 || ii >= x)
                            continue;
                        for (int64_t c = 0; c < grow; c++) {
                            int64_t jj = j + c - pad;
                            if (jj < 0 || jj >= y)
                                continue;
                            sum += nearbyintf(mb[(ii + xo) * W + jj + yo]);
                        }
                    }
                    v = sum < 0 ? 0 : sum > 1 ? 1 : sum;
                }
                er[(b * x + i) * y + j] = nearbyintf(v);
            }
        }
    }
    int64_t p4[4] = {B, x, y, 3}, n4[4] = {BM, 1, x, y};
    VKF_TRY(vkf_tensor_create(gpu, VKF_DTYPE_F32, 4, p4, &pt));
    VKF_TRY(vkf_tensor_upload(pt, pc));
    VKF_TRY(vkf_tensor_create(gpu, VKF_DTYPE_F32, 4, n4, &nm));
    VKF_TRY(vkf_tensor_upload(nm, er));
    VKF_TRY(image_to_vae(gpu, pt, 0, x, 0, y, &enc_in));
    err = m->encode(m, enc_in, &z);
    if (err < 0) {
        err = vae_failed(ctx, "encoding", m, err);
        goto fail;
    }
    err = vkf_value_set_latent(&out[0], z, nm, NULL, 0);
    z = nm = NULL;
fail:
    vkf_tensor_unref(&mr);
    vkf_tensor_unref(&mi);
    vkf_tensor_unref(&pt);
    vkf_tensor_unref(&enc_in);
    vkf_tensor_unref(&z);
    vkf_tensor_unref(&nm);
    vkf_free(mk);
    vkf_free(pix);
    vkf_free(er);
    vkf_free(pc);
    if (err < 0 && err != VKF_ERUN)
        return vae_failed(ctx, "inpaint encoding", m, err);
    return err;
}

static const vkf_input_def inpaint_inputs[] = {
    {.name = "pixels", .type = "IMAGE"},
    {.name = "vae", .type = "VAE"},
    {.name = "mask", .type = "MASK"},
    {.name = "grow_mask_by", .type = VKF_T_INT, .idef = 6, .imin = 0, .imax = 64, .fstep = 1},
};

const vkf_node_def vkf_node_VAEEncodeForInpaint = {
    .name = "VAEEncodeForInpaint",
    .display_name = "VAE Encode (for Inpainting)",
    .category = "latent/inpaint",
    .python_module = "nodes",
    .inputs = inpaint_inputs,
    .nb_inputs = 4,
    .outputs = latent_output,
    .nb_outputs = 1,
    .execute = inpaint_exec,
};

/* ---- VAELoader ------------------------------------------------------------------ */

/* TAESD variants VAELoader offers when vae_approx holds both files, with
 * ComfyUI's scale/shift (VAELoader.load_taesd). */
static const struct {
    const char *name;
    float scale, shift;
} taesd_variants[] = {
    {"taesd", 0.18215f, 0.0f},
    {"taesdxl", 0.13025f, 0.0f},
    {"taesd3", 1.5305f, 0.0609f},
    {"taef1", 0.3611f, 0.1159f},
};

/* The first vae_approx file named "<name>_<part>.*", or NULL. */
static char *approx_file(char **files, int n, const char *name, const char *part)
{
    char pre[64];
    snprintf(pre, sizeof(pre), "%s_%s.", name, part);
    for (int i = 0; i < n; i++)
        if (!strncmp(files[i], pre, strlen(pre)))
            return files[i];
    return NULL;
}

int vkf_vae_loader_list(const vkf_paths *paths, char ***names, int *count);

/* VAELoader.vae_list: the vae folder, then each TAESD variant whose
 * encoder and decoder are both in vae_approx. */
int vkf_vae_loader_list(const vkf_paths *paths, char ***names, int *count)
{
    char **v = NULL, **a = NULL;
    int nv = 0, na = 0;
    int err = vkf_paths_list(paths, "vae", &v, &nv);
    if (err == VKF_ENOTFOUND)
        err = 0;
    if (err < 0)
        return err;
    err = vkf_paths_list(paths, "vae_approx", &a, &na);
    if (err == VKF_ENOTFOUND)
        err = 0;
    if (err < 0) {
        vkf_strv_free(&v, nv);
        return err;
    }
    char **out = vkf_calloc((size_t)nv + VKF_ARRAY_SIZE(taesd_variants) + 1, sizeof(*out));
    if (!out) {
        err = VKF_ENOMEM;
        goto done;
    }
    int n = 0;
    for (int i = 0; i < nv; i++) {
        out[n++] = v[i];
        v[i] = NULL;
    }
    for (size_t k = 0; k < VKF_ARRAY_SIZE(taesd_variants); k++) {
        if (approx_file(a, na, taesd_variants[k].name, "encoder") &&
            approx_file(a, na, taesd_variants[k].name, "decoder")) {
            if (!(out[n] = vkf_strdup(taesd_variants[k].name))) {
                vkf_strv_free(&out, n);
                err = VKF_ENOMEM;
                goto done;
            }
            n++;
        }
    }
    *names = out;
    *count = n;
done:
    vkf_strv_free(&v, nv);
    vkf_strv_free(&a, na);
    return err;
}

static int open_weights(vkf_exec_ctx *ctx, const char *folder, const char *name,
                        vkf_weights **w)
{
    char *full = NULL;
    int err = vkf_paths_resolve(vkf_exec_paths(ctx), folder, name, &full);
    if (err < 0)
        return vkf_exec_error(ctx, "%s model \"%s\" not found: %s", folder, name,
                              vkf_strerror(err));
    err = vkf_weights_open(full, w, vkf_exec_log(ctx));
    if (err < 0)
        vkf_exec_error(ctx, "cannot read %s: %s", full, vkf_strerror(err));
    vkf_free(full);
    return err < 0 ? VKF_ERUN : 0;
}

static int load_taesd(vkf_exec_ctx *ctx, vkf_gpu *gpu, int k, vkf_vae_model **m)
{
    char **a = NULL;
    int na = 0, err = vkf_paths_list(vkf_exec_paths(ctx), "vae_approx", &a, &na);
    vkf_weights *we = NULL, *wd = NULL;
    const char *name = taesd_variants[k].name;
    if (err < 0 && err != VKF_ENOTFOUND)
        return vkf_exec_error(ctx, "cannot list vae_approx: %s", vkf_strerror(err));
    const char *fe = approx_file(a, na, name, "encoder"), *fd = approx_file(a, na, name, "decoder");
    if (!fe || !fd) {
        err = vkf_exec_error(ctx, "%s needs %s_encoder and %s_decoder files in vae_approx",
                             name, name, name);
        goto done;
    }
    if ((err = open_weights(ctx, "vae_approx", fe, &we)) < 0 ||
        (err = open_weights(ctx, "vae_approx", fd, &wd)) < 0)
        goto done;
    vkf_errbuf e = {{0}};
    err = vkf_taesd_load(gpu, we, wd, taesd_variants[k].scale, taesd_variants[k].shift, m, &e);
    if (err < 0)
        err = vkf_exec_error(ctx, "%s: %s", name, e.msg);
done:
    vkf_weights_close(&we);
    vkf_weights_close(&wd);
    vkf_strv_free(&a, na);
    return err;
}

static int vae_loader_exec(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    const char *name = in[0].u.s;
    vkf_gpu *gpu;
    int err = vkf_exec_gpu(ctx, &gpu);
    if (err < 0)
        return err;
    vkf_vae_model *m = NULL;
    int k = -1;
    for (size_t i = 0; i < VKF_ARRAY_SIZE(taesd_variants); i++)
        if (!strcmp(name, taesd_variants[i].name))
            k = (int)i;
    if (k >= 0) {
        err = load_taesd(ctx, gpu, k, &m);
    } else {
        vkf_weights *w = NULL;
        err = open_weights(ctx, "vae", name, &w);
        if (err >= 0) {
            /* VAE files carry bare names; accept a checkpoint's prefix too. */
            const char *prefix =
                vkf_weights_find(w, "first_stage_model.decoder.conv_in.weight")
                    ? "first_stage_model."
                    : "";
            vkf_errbuf e = {{0}};
            err = vkf_vae_kl_load(gpu, w, prefix, &m, &e);
            if (err < 0)
                err = vkf_exec_error(ctx, "%s: %s", name, e.msg);
            vkf_weights_close(&w);
        }
    }
    if (err < 0)
        return err;
    vkf_vae *v = vkf_vae_new(m);
    vkf_vae_model_unref(&m);
    if (!v)
        return VKF_ENOMEM;
    vkf_value_set_object(&out[0], &v->obj);
    return 0;
}

static const vkf_input_def vae_loader_inputs[] = {
    {.name = "vae_name", .type = VKF_T_COMBO, .model_folder = "vae",
     .list_options = vkf_vae_loader_list},
};
static const vkf_output_def vae_output[] = {{.type = "VAE"}};

const vkf_node_def vkf_node_VAELoader = {
    .name = "VAELoader",
    .display_name = "Load VAE",
    .category = "loaders",
    .python_module = "nodes",
    .inputs = vae_loader_inputs,
    .nb_inputs = 1,
    .outputs = vae_output,
    .nb_outputs = 1,
    .execute = vae_loader_exec,
};
