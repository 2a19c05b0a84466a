/*
 * TAESD (madebyollin's Tiny AutoEncoder, MIT) as ComfyUI wraps it
 * (comfy/taesd/taesd.py): two nn.Sequential stacks whose weights are named
 * by index ("3.conv.0.weight").  The taesd/taesdxl/taesd3/taef1 layouts;
 * taef2's mid-block GroupNorm branch is refused by name.
 *
 *   Block(x) = relu(conv(relu(conv(relu(conv(x))))) + skip(x))
 *   encoder: conv 3→64 | Block | conv s2 | 3 Block | conv s2 | 3 Block | conv s2
 *            | 3 Block | conv 64→C
 *   decoder: tanh(x/3)·3 | conv C→64 | ReLU | 3 Block | ×2 | conv | 3 Block | ×2
 *            | conv | 3 Block | ×2 | conv | Block | conv 64→3
 */
#include <stdio.h>
#include <string.h>

#include "models/vae_internal.h"

enum layer_kind { L_CONV, L_CONV_S2, L_BLOCK, L_RELU, L_UP, L_CLAMP };

typedef struct layer {
    enum layer_kind kind;
    vkf_tensor *w, *b;                  /* conv */
    vkf_tensor *cw[3], *cb[3], *skip;   /* block */
} layer;

#define ENC_LAYERS 15
#define DEC_LAYERS 20

static const enum layer_kind enc_kinds[ENC_LAYERS] = {
    L_CONV, L_BLOCK, L_CONV_S2, L_BLOCK, L_BLOCK, L_BLOCK, L_CONV_S2, L_BLOCK,
    L_BLOCK, L_BLOCK, L_CONV_S2, L_BLOCK, L_BLOCK, L_BLOCK, L_CONV,
};
static const enum layer_kind dec_kinds[DEC_LAYERS] = {
    L_CLAMP, L_CONV, L_RELU, L_BLOCK, L_BLOCK, L_BLOCK, L_UP, L_CONV, L_BLOCK, L_BLOCK,
    L_BLOCK, L_UP, L_CONV, L_BLOCK, L_BLOCK, L_BLOCK, L_UP, L_CONV, L_BLOCK, L_CONV,
};

typedef struct taesd {
    vkf_vae_model base;
    float scale, shift;
    bool has_enc, has_dec;
    layer enc[ENC_LAYERS], dec[DEC_LAYERS];
} taesd;

static void layers_free(layer *l, int n)
{
    for (int i = 0; i < n; i++) {
        vkf_tensor_unref(&l[i].w);
        vkf_tensor_unref(&l[i].b);
        vkf_tensor_unref(&l[i].skip);
        for (int k = 0; k < 3; k++) {
            vkf_tensor_unref(&l[i].cw[k]);
            vkf_tensor_unref(&l[i].cb[k]);
        }
    }
}

static void taesd_destroy(vkf_vae_model *m)
{
    taesd *t = (taesd *)m;
    layers_free(t->enc, ENC_LAYERS);
    layers_free(t->dec, DEC_LAYERS);
    vkf_free(t);
}

static int ld(vkf_gpu *gpu, vkf_weights *w, const char *which, const char *name, bool optional,
              int ndim, vkf_tensor **out, vkf_errbuf *e)
{
    const vkf_weight_info *t = vkf_weights_find(w, name);
    if (!t) {
        if (optional)
            return 0;
        return vkf_errbuf_set(e, VKF_EINVAL, "TAESD %s: tensor %s is missing", which, name);
    }
    if (t->ndim != ndim)
        return vkf_errbuf_set(e, VKF_EINVAL, "TAESD %s: tensor %s has %d dims, expected %d",
                              which, name, t->ndim, ndim);
    int err = vkf_weights_load_tensor(w, t, gpu, out);
    if (err < 0)
        return vkf_errbuf_set(e, err, "TAESD %s: cannot load %s: %s", which, name,
                              vkf_strerror(err));
    return 0;
}

static int load_layers(vkf_gpu *gpu, vkf_weights *w, const char *which,
                       const enum layer_kind *kinds, int n, layer *l, vkf_errbuf *e)
{
    char name[64];
    int err = 0;
    for (int i = 0; i < n; i++) {
        l[i].kind = kinds[i];
        if (kinds[i] == L_CONV || kinds[i] == L_CONV_S2) {
            snprintf(name, sizeof(name), "%d.weight", i);
            VKF_TRY(ld(gpu, w, which, name, false, 4, &l[i].w, e));
            snprintf(name, sizeof(name), "%d.bias", i);
            VKF_TRY(ld(gpu, w, which, name, true, 1, &l[i].b, e));
        } else if (kinds[i] == L_BLOCK) {
            snprintf(name, sizeof(name), "%d.pool.0.weight", i);
            if (vkf_weights_find(w, name)) {
                err = vkf_errbuf_set(e, VKF_EUNSUPPORTED,
                                     "TAESD %s: block %d has a GroupNorm branch (taef2), which "
                                     "is not supported",
                                     which, i);
                goto fail;
            }
            for (int k = 0; k < 3; k++) {
                snprintf(name, sizeof(name), "%d.conv.%d.weight", i, 2 * k);
                VKF_TRY(ld(gpu, w, which, name, false, 4, &l[i].cw[k], e));
                snprintf(name, sizeof(name), "%d.conv.%d.bias", i, 2 * k);
                VKF_TRY(ld(gpu, w, which, name, false, 1, &l[i].cb[k], e));
            }
            snprintf(name, sizeof(name), "%d.skip.weight", i);
            VKF_TRY(ld(gpu, w, which, name, true, 4, &l[i].skip, e));
        }
    }
    snprintf(name, sizeof(name), "%d.weight", n);
    if (vkf_weights_find(w, name)) {
        err = vkf_errbuf_set(e, VKF_EUNSUPPORTED,
                             "TAESD %s: more layers than the TAESD layout (%s exists)", which,
                             name);
        goto fail;
    }
fail:
    return err;
}

static int conv(vkf_gpu *gpu, vkf_tensor *x, vkf_tensor *w, vkf_tensor *b, int stride,
                vkf_tensor **out)
{
    int k = (int)vkf_tensor_shape(w)[2];
    vkf_conv2d_params p = {.stride = {stride, stride}, .padding = {k / 2, k / 2}};
    return vkf_op_conv2d(gpu, x, w, b, &p, out);
}

/* Replaces x by the call's result nx_. */
#define STEP(call)                                                            \
    do {                                                                      \
        vkf_tensor *nx_ = NULL;                                               \
        err = (call);                                                         \
        if (err < 0)                                                          \
            goto fail;                                                        \
        vkf_tensor_unref(&x);                                                 \
        x = nx_;                                                              \
    } while (0)

static int block(vkf_gpu *gpu, const layer *l, vkf_tensor *in, vkf_tensor **out)
{
    int err = 0;
    vkf_tensor *x = vkf_tensor_ref(in), *s = NULL, *sum = NULL;
    for (int k = 0; k < 3; k++) {
        STEP(conv(gpu, x, l->cw[k], l->cb[k], 1, &nx_));
        if (k < 2)
            STEP(vkf_op_unary(gpu, VKF_UN_RELU, x, 0, 0, &nx_));
    }
    if (l->skip) {
        VKF_TRY(conv(gpu, in, l->skip, NULL, 1, &s));
        VKF_TRY(vkf_op_binary(gpu, VKF_BIN_ADD, x, s, &sum));
    } else {
        VKF_TRY(vkf_op_binary(gpu, VKF_BIN_ADD, x, in, &sum));
    }
    VKF_TRY(vkf_op_unary(gpu, VKF_UN_RELU, sum, 0, 0, out));
fail:
    vkf_tensor_unref(&x);
    vkf_tensor_unref(&s);
    vkf_tensor_unref(&sum);
    return err;
}

static int run_layers(vkf_gpu *gpu, const layer *l, int n, vkf_tensor *in, vkf_tensor **out)
{
    int err = 0;
    vkf_tensor *x = vkf_tensor_ref(in);
    for (int i = 0; i < n; i++) {
        switch (l[i].kind) {
        case L_CONV:
            STEP(conv(gpu, x, l[i].w, l[i].b, 1, &nx_));
            break;
        case L_CONV_S2:
            STEP(conv(gpu, x, l[i].w, l[i].b, 2, &nx_));
            break;
        case L_BLOCK:
            STEP(block(gpu, &l[i], x, &nx_));
            break;
        case L_RELU:
            STEP(vkf_op_unary(gpu, VKF_UN_RELU, x, 0, 0, &nx_));
            break;
        case L_UP: {
            vkf_upsample_params up = {.mode = VKF_UPSAMPLE_NEAREST, .scale = {2.0, 2.0}};
            STEP(vkf_op_upsample(gpu, x, &up, &nx_));
            break;
        }
        case L_CLAMP:
            STEP(vkf_op_unary(gpu, VKF_UN_SCALE, x, 1.0f / 3.0f, 0, &nx_));
            STEP(vkf_op_unary(gpu, VKF_UN_TANH, x, 0, 0, &nx_));
            STEP(vkf_op_unary(gpu, VKF_UN_SCALE, x, 3.0f, 0, &nx_));
            break;
        }
        /* Released buffers live until their batch completes: at image
         * resolution submit after each layer to keep memory to a few
         * activations. */
        if (vkf_tensor_numel(x) >= (4 << 20))
            VKF_TRY(vkf_gpu_flush(gpu));
    }
    *out = x;
    x = NULL;
fail:
    vkf_tensor_unref(&x);
    return err;
}

static int check4(vkf_tensor *x, int c, int mult)
{
    const int64_t *s = vkf_tensor_shape(x);
    return vkf_tensor_ndim(x) == 4 && s[1] == c && s[2] % mult == 0 && s[3] % mult == 0
               ? 0
               : VKF_EINVAL;
}

static int taesd_decode(vkf_vae_model *m, vkf_tensor *latent, vkf_tensor **image)
{
    taesd *t = (taesd *)m;
    if (!t->has_dec || check4(latent, m->latent_channels, 1) < 0)
        return VKF_EINVAL;
    int err = 0;
    vkf_tensor *x = NULL;
    VKF_TRY(vkf_op_unary(m->gpu, VKF_UN_SCALE, latent, t->scale, -t->shift * t->scale, &x));
    STEP(run_layers(m->gpu, t->dec, DEC_LAYERS, x, &nx_));
    VKF_TRY(vkf_op_unary(m->gpu, VKF_UN_SCALE, x, 2.0f, -1.0f, image));
fail:
    vkf_tensor_unref(&x);
    return err;
}

static int taesd_encode(vkf_vae_model *m, vkf_tensor *image, vkf_tensor **latent)
{
    taesd *t = (taesd *)m;
    if (!t->has_enc || check4(image, 3, 8) < 0)
        return VKF_EINVAL;
    int err = 0;
    vkf_tensor *x = NULL;
    VKF_TRY(vkf_op_unary(m->gpu, VKF_UN_SCALE, image, 0.5f, 0.5f, &x));
    STEP(run_layers(m->gpu, t->enc, ENC_LAYERS, x, &nx_));
    VKF_TRY(vkf_op_unary(m->gpu, VKF_UN_SCALE, x, 1.0f / t->scale, t->shift, latent));
fail:
    vkf_tensor_unref(&x);
    return err;
}

int vkf_taesd_preview(vkf_vae_model *m, vkf_tensor *x0, vkf_tensor **image)
{
    if (!m || strcmp(m->arch, "TAESD") || !((taesd *)m)->has_dec ||
        check4(x0, m->latent_channels, 1) < 0)
        return VKF_EINVAL;
    int err = 0;
    vkf_tensor *x = NULL;
    VKF_TRY(run_layers(m->gpu, ((taesd *)m)->dec, DEC_LAYERS, x0, &x));
    VKF_TRY(vkf_vae_clamp01(m->gpu, x, image));
fail:
    vkf_tensor_unref(&x);
    return err;
}

int vkf_taesd_load(vkf_gpu *gpu, vkf_weights *enc, vkf_weights *dec, float scale, float shift,
                   vkf_vae_model **out, vkf_errbuf *e)
{
    *out = NULL;
    if (!enc && !dec)
        return vkf_errbuf_set(e, VKF_EINVAL, "TAESD: neither encoder nor decoder weights given");
    if (!(scale != 0))
        return vkf_errbuf_set(e, VKF_EINVAL, "TAESD: scale must be non-zero");
    taesd *t = vkf_calloc(1, sizeof(*t));
    if (!t)
        return VKF_ENOMEM;
    int err = 0;
    t->base.refs = 1;
    snprintf(t->base.arch, sizeof(t->base.arch), "TAESD");
    t->base.downscale = 8;
    t->base.gpu = gpu;
    t->base.decode = taesd_decode;
    t->base.encode = taesd_encode;
    t->base.destroy = taesd_destroy;
    t->scale = scale;
    t->shift = shift;
    int lc_enc = 0, lc_dec = 0;
    if (enc) {
        VKF_TRY(load_layers(gpu, enc, "encoder", enc_kinds, ENC_LAYERS, t->enc, e));
        const int64_t *s0 = vkf_tensor_shape(t->enc[0].w);
        if (s0[1] != 3) {
            err = vkf_errbuf_set(e, VKF_EINVAL,
                                 "TAESD encoder: 0.weight takes %lld channels, expected 3",
                                 (long long)s0[1]);
            goto fail;
        }
        lc_enc = (int)vkf_tensor_shape(t->enc[ENC_LAYERS - 1].w)[0];
        t->has_enc = true;
    }
    if (dec) {
        VKF_TRY(load_layers(gpu, dec, "decoder", dec_kinds, DEC_LAYERS, t->dec, e));
        lc_dec = (int)vkf_tensor_shape(t->dec[1].w)[1];
        t->has_dec = true;
    }
    if (enc && dec && lc_enc != lc_dec) {
        err = vkf_errbuf_set(e, VKF_EINVAL,
                             "TAESD: encoder makes %d latent channels but the decoder takes %d",
                             lc_enc, lc_dec);
        goto fail;
    }
    t->base.latent_channels = dec ? lc_dec : lc_enc;
    *out = &t->base;
    return 0;
fail:
    taesd_destroy(&t->base);
    return err;
}
