/*
 * Mask nodes of ComfyUI's nodes.py (LoadImageMask) and
 * comfy_extras/nodes_mask.py (SolidMask, InvertMask, MaskToImage,
 * ImageToMask, CropMask, GrowMask, FeatherMask, ThresholdMask,
 * MaskComposite).  MASK tensors [B, H, W] stay on the GPU.
 */
#include <errno.h>
#include <libavcodec/avcodec.h>
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>
#include <png.h>
#include <stdio.h>
#include <string.h>

#include "nodes.h"
#include "vkflow/paths.h"
#include "vkflow/types.h"

#define MAX_RES 16384

/* The MASK input as [B, H, W] (a 2-D mask gets a batch of 1; new
 * reference) or NULL after an error naming it. */
static vkf_tensor *mask_in(vkf_exec_ctx *ctx, vkf_gpu *gpu, const char *node, const char *name,
                           const vkf_value *v)
{
    vkf_tensor *t = vkf_value_mask(v), *c = NULL, *r = NULL;
    int nd = t ? vkf_tensor_ndim(t) : 0;
    if (!t || nd < 2) {
        vkf_exec_error(ctx, "%s: input '%s' must be a MASK [B, H, W]", node, name);
        return NULL;
    }
    const int64_t *s = vkf_tensor_shape(t);
    if (nd == 3)
        return vkf_tensor_ref(t);
    int64_t shape[3] = {vkf_tensor_numel(t) / (s[nd - 2] * s[nd - 1]), s[nd - 2], s[nd - 1]};
    int err = vkf_op_contiguous(gpu, t, &c);
    if (err >= 0)
        err = vkf_tensor_reshape(c, 3, shape, &r);
    vkf_tensor_unref(&c);
    if (err < 0)
        vkf_exec_error(ctx, "%s: %s", node, vkf_strerror(err));
    return r;
}

static int done(vkf_exec_ctx *ctx, const char *node, int err, vkf_tensor *r, vkf_value *out)
{
    if (err < 0) {
        vkf_tensor_unref(&r);
        return vkf_exec_error(ctx, "%s: GPU op failed: %s", node, vkf_strerror(err));
    }
    return vkf_value_set_mask(out, r);
}

static const vkf_output_def mask_out[] = {{.type = "MASK"}};
static const vkf_output_def image_out[] = {{.type = "IMAGE"}};

/* ---- LoadImageMask ----------------------------------------------------------- */

typedef struct png_mem {
    const uint8_t *data;
    size_t size, pos;
    char msg[160];
    uint8_t *pixels;
    uint8_t **rows;
} png_mem;

static void on_error(png_structp png, png_const_charp msg)
{
    png_mem *m = png_get_error_ptr(png);
    snprintf(m->msg, sizeof(m->msg), "%s", msg);
    png_longjmp(png, 1);
}

static void on_warning(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg;
}

static void read_mem(png_structp png, png_bytep out, size_t len)
{
    png_mem *m = png_get_io_ptr(png);
    if (len > m->size - m->pos)
        png_error(png, "file is truncated");
    memcpy(out, m->data + m->pos, len);
    m->pos += len;
}

/* Decodes to 8-bit RGBA as PIL's convert("RGBA") sees it (16-bit samples
 * keep their high byte, tRNS becomes alpha) and extracts channel ch
 * (0..3) as float; alpha is inverted. */
static int png_channel(png_structp png, png_infop info, png_mem *m, int ch, float **out,
                       int *w, int *h)
{
    if (setjmp(png_jmpbuf(png)))
        return VKF_EPARSE;
    png_set_read_fn(png, m, read_mem);
    png_set_user_limits(png, 1 << 16, 1 << 16);
    png_read_info(png, info);
    int ct = png_get_color_type(png, info);
    png_set_strip_16(png);
    png_set_packing(png);
    if (ct == PNG_COLOR_TYPE_PALETTE)
        png_set_palette_to_rgb(png);
    if (ct == PNG_COLOR_TYPE_GRAY && png_get_bit_depth(png, info) < 8)
        png_set_expand_gray_1_2_4_to_8(png);
    if (png_get_valid(png, info, PNG_INFO_tRNS))
        png_set_tRNS_to_alpha(png);
    if (ct == PNG_COLOR_TYPE_GRAY || ct == PNG_COLOR_TYPE_GRAY_ALPHA)
        png_set_gray_to_rgb(png);
    png_set_filler(png, 0xff, PNG_FILLER_AFTER);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    *w = (int)png_get_image_width(png, info);
    *h = (int)png_get_image_height(png, info);
    if (png_get_channels(png, info) != 4 || png_get_bit_depth(png, info) != 8)
        png_error(png, "unexpected pixel layout");
    size_t rb = png_get_rowbytes(png, info), npx = (size_t)*w * (size_t)*h;
    m->pixels = vkf_malloc(rb * (size_t)*h);
    m->rows = vkf_malloc(sizeof(*m->rows) * (size_t)*h);
    *out = vkf_malloc(sizeof(float) * npx);
    if (!m->pixels || !m->rows || !*out) {
        snprintf(m->msg, sizeof(m->msg), "out of memory");
        return VKF_ENOMEM;
    }
    for (int y = 0; y < *h; y++)
        m->rows[y] = m->pixels + (size_t)y * rb;
    png_read_image(png, m->rows);
    png_read_end(png, NULL);
    for (size_t i = 0; i < npx; i++) {
        float v = (float)m->pixels[i * 4 + (size_t)ch] / 255.0f;
        (*out)[i] = ch == 3 ? 1.0f - v : v;
    }
    return 0;
}

/* JPEG / still WebP through FFmpeg: the file is one packet, converted to
 * RGBA by swscale (full-range JPEG planes as such); channel ch as float,
 * alpha inverted (no alpha plane: 255, so 0). */
static int ff_channel(const uint8_t *data, size_t size, enum AVCodecID id, int ch, float **out,
                      int *w, int *h, char *msg, size_t msgsize)
{
    const AVCodec *codec = avcodec_find_decoder(id);
    AVCodecContext *c = NULL;
    AVPacket *pkt = NULL;
    AVFrame *fr = NULL;
    struct SwsContext *sws = NULL;
    uint8_t *rgba = NULL;
    int err = 0, ret = 0;
    if (!codec || size > INT32_MAX / 2) {
        snprintf(msg, msgsize, "no decoder for it");
        return VKF_EUNSUPPORTED;
    }
    c = avcodec_alloc_context3(codec);
    pkt = av_packet_alloc();
    fr = av_frame_alloc();
    if (!c || !pkt || !fr || av_new_packet(pkt, (int)size) < 0) {
        err = VKF_ENOMEM;
        goto fail;
    }
    memcpy(pkt->data, data, size);
    c->thread_count = 1;
    if ((ret = avcodec_open2(c, codec, NULL)) < 0 || (ret = avcodec_send_packet(c, pkt)) < 0 ||
        (ret = avcodec_send_packet(c, NULL)) < 0 || (ret = avcodec_receive_frame(c, fr)) < 0)
        goto fail;
    if (fr->width < 1 || fr->height < 1 || fr->width > (1 << 16) || fr->height > (1 << 16)) {
        ret = AVERROR_INVALIDDATA;
        goto fail;
    }
    static const enum AVPixelFormat jfmt[][2] = {
        {AV_PIX_FMT_YUVJ420P, AV_PIX_FMT_YUV420P}, {AV_PIX_FMT_YUVJ422P, AV_PIX_FMT_YUV422P},
        {AV_PIX_FMT_YUVJ444P, AV_PIX_FMT_YUV444P}, {AV_PIX_FMT_YUVJ440P, AV_PIX_FMT_YUV440P},
        {AV_PIX_FMT_YUVJ411P, AV_PIX_FMT_YUV411P},
    };
    enum AVPixelFormat fmt = fr->format;
    int full = fr->color_range == AVCOL_RANGE_JPEG;
    for (size_t k = 0; k < VKF_ARRAY_SIZE(jfmt); k++)
        if (fmt == jfmt[k][0]) {
            fmt = jfmt[k][1];
            full = 1;
        }
    *w = fr->width;
    *h = fr->height;
    sws = sws_getContext(*w, *h, fmt, *w, *h, AV_PIX_FMT_RGBA,
                         SWS_BICUBIC | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT, NULL, NULL, NULL);
    if (sws) {
        const int *coefs = sws_getCoefficients(SWS_CS_DEFAULT);
        sws_setColorspaceDetails(sws, coefs, full, coefs, 1, 0, 1 << 16, 1 << 16);
    }
    size_t npx = (size_t)*w * (size_t)*h;
    rgba = vkf_malloc(npx * 4);
    *out = vkf_malloc(sizeof(float) * npx);
    if (!sws || !rgba || !*out) {
        err = VKF_ENOMEM;
        goto fail;
    }
    uint8_t *dst[4] = {rgba};
    int dst_ls[4] = {*w * 4};
    sws_scale(sws, (const uint8_t *const *)fr->data, fr->linesize, 0, *h, dst, dst_ls);
    const AVPixFmtDescriptor *desc = av_pix_fmt_desc_get(fr->format);
    bool alpha = desc && (desc->flags & AV_PIX_FMT_FLAG_ALPHA);
    for (size_t i = 0; i < npx; i++) {
        float v = (ch == 3 && !alpha ? 255 : rgba[i * 4 + (size_t)ch]) / 255.0f;
        (*out)[i] = ch == 3 ? 1.0f - v : v;
    }
fail:
    if (ret < 0) {
        char e[AV_ERROR_MAX_STRING_SIZE] = {0};
        av_strerror(ret, e, sizeof(e));
        snprintf(msg, msgsize, "%s", e);
        err = VKF_EPARSE;
    }
    if (err < 0) {
        vkf_free(*out);
        *out = NULL;
    }
    vkf_free(rgba);
    sws_freeContext(sws);
    av_frame_free(&fr);
    av_packet_free(&pkt);
    avcodec_free_context(&c);
    return err;
}

static int read_all(const char *path, uint8_t **data, size_t *size)
{
    FILE *f = fopen(path, "rb");
    *data = NULL;
    *size = 0;
    if (!f)
        return errno == ENOENT ? VKF_ENOTFOUND : VKF_EIO;
    size_t cap = 0, n = 0;
    uint8_t *buf = NULL;
    for (;;) {
        if (n == cap) {
            cap = cap ? cap * 2 : 65536;
            uint8_t *nb = vkf_realloc(buf, cap);
            if (!nb) {
                vkf_free(buf);
                fclose(f);
                return VKF_ENOMEM;
            }
            buf = nb;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (!got)
            break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        vkf_free(buf);
        return VKF_EIO;
    }
    *data = buf;
    *size = n;
    return 0;
}

static const char *const channels[] = {"alpha", "red", "green", "blue", NULL};

static int load_image_mask(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    const char *name = in[0].u.s, *chn = in[1].u.s;
    char *path = NULL;
    uint8_t *data = NULL;
    size_t size = 0;
    float *px = NULL;
    vkf_tensor *t = NULL;
    int w = 0, h = 0, ch;
    /* "alpha" → A (3), red/green/blue → 0/1/2 */
    if (!strcmp(chn, "alpha"))
        ch = 3;
    else if (!strcmp(chn, "red"))
        ch = 0;
    else if (!strcmp(chn, "green"))
        ch = 1;
    else if (!strcmp(chn, "blue"))
        ch = 2;
    else
        return vkf_exec_error(ctx, "LoadImageMask: invalid color channel: %s", chn);
    int err = vkf_paths_resolve_input(vkf_exec_paths(ctx), name, &path);
    if (err < 0)
        return vkf_exec_error(ctx, "LoadImageMask: cannot find image '%s' in the input directory",
                              name);
    err = read_all(path, &data, &size);
    vkf_free(path);
    if (err < 0)
        return vkf_exec_error(ctx, "LoadImageMask: cannot read '%s': %s", name, vkf_strerror(err));
    bool jpeg = size >= 3 && data[0] == 0xff && data[1] == 0xd8 && data[2] == 0xff;
    bool webp = size >= 12 && !memcmp(data, "RIFF", 4) && !memcmp(data + 8, "WEBP", 4);
    if (jpeg || webp) {
        char msg[160];
        err = ff_channel(data, size, jpeg ? AV_CODEC_ID_MJPEG : AV_CODEC_ID_WEBP, ch, &px, &w, &h,
                         msg, sizeof(msg));
        vkf_free(data);
        if (err < 0)
            return err == VKF_ENOMEM ? err
                                     : vkf_exec_error(ctx, "LoadImageMask: '%s': corrupt %s: %s",
                                                      name, jpeg ? "JPEG" : "WebP", msg);
        goto upload;
    }
    if (size < 8 || png_sig_cmp(data, 0, 8)) {
        vkf_free(data);
        return vkf_exec_error(ctx, "LoadImageMask: '%s': not a PNG, JPEG or WebP file", name);
    }
    png_mem m = {.data = data, .size = size};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &m, on_error, on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_read_struct(&png, NULL, NULL);
        vkf_free(data);
        return VKF_ENOMEM;
    }
    err = png_channel(png, info, &m, ch, &px, &w, &h);
    png_destroy_read_struct(&png, &info, NULL);
    vkf_free(m.pixels);
    vkf_free(m.rows);
    vkf_free(data);
    if (err < 0) {
        vkf_free(px);
        return err == VKF_ENOMEM ? err
                                 : vkf_exec_error(ctx, "LoadImageMask: '%s': corrupt PNG: %s",
                                                  name, m.msg[0] ? m.msg : "decoding failed");
    }
upload:;
    vkf_gpu *gpu;
    if ((err = vkf_exec_gpu(ctx, &gpu)) < 0) {
        vkf_free(px);
        return err;
    }
    int64_t shape[3] = {1, h, w};
    if ((err = vkf_tensor_create(gpu, VKF_DTYPE_F32, 3, shape, &t)) >= 0)
        err = vkf_tensor_upload(t, px);
    vkf_free(px);
    return done(ctx, "LoadImageMask", err, t, out);
}

/* IS_CHANGED: FNV-1a of the file, so an edited file reruns the node. */
static int load_mask_fingerprint(vkf_exec_ctx *ctx, const vkf_value *in, char **key)
{
    *key = NULL;
    if (in[0].kind != VKF_VAL_STRING)
        return 0;
    char *path = NULL;
    uint8_t *data = NULL;
    size_t size = 0;
    if (vkf_paths_resolve_input(vkf_exec_paths(ctx), in[0].u.s, &path) < 0)
        return 0;
    int err = read_all(path, &data, &size);
    vkf_free(path);
    if (err == VKF_ENOMEM)
        return err;
    if (err < 0)
        return 0;
    uint64_t hsh = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < size; i++)
        hsh = (hsh ^ data[i]) * 0x100000001b3ull;
    vkf_free(data);
    *key = vkf_asprintf("%016llx:%zu", (unsigned long long)hsh, size);
    return *key ? 0 : VKF_ENOMEM;
}

static char *load_mask_validate(const vkf_paths *paths, const vkf_value *in)
{
    if (in[0].kind != VKF_VAL_STRING)
        return NULL;
    char *path = NULL;
    if (vkf_paths_resolve_input(paths, in[0].u.s, &path) < 0)
        return vkf_asprintf("Invalid image file: %s", in[0].u.s);
    vkf_free(path);
    return NULL;
}

static const vkf_input_def load_mask_inputs[] = {
    {.name = "image", .type = VKF_T_COMBO, .flags = VKF_IN_IMAGE_UPLOAD, .model_folder = "input"},
    {.name = "channel", .type = VKF_T_COMBO, .options = channels},
};

const vkf_node_def vkf_node_LoadImageMask = {
    .name = "LoadImageMask", .display_name = "Load Image (as Mask)", .category = "mask",
    .python_module = "nodes", .inputs = load_mask_inputs, .nb_inputs = 2,
    .outputs = mask_out, .nb_outputs = 1, .execute = load_image_mask,
    .fingerprint = load_mask_fingerprint, .validate = load_mask_validate,
};

/* ---- SolidMask / InvertMask / MaskToImage / ImageToMask ---------------------- */

static int solid_mask(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    vkf_gpu *gpu;
    vkf_tensor *r = NULL;
    int err = vkf_exec_gpu(ctx, &gpu);
    if (err < 0)
        return err;
    float v = (float)vkf_value_number(&in[0]);
    int64_t shape[3] = {1, in[2].u.i, in[1].u.i};
    err = vkf_op_image_fill(gpu, 3, shape, &v, &r);
    return done(ctx, "SolidMask", err, r, out);
}

static int invert_mask(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    vkf_gpu *gpu;
    vkf_tensor *r = NULL, *m;
    int err = vkf_exec_gpu(ctx, &gpu);
    if (err < 0)
        return err;
    if (!(m = vkf_value_mask(&in[0])))
        return vkf_exec_error(ctx, "InvertMask: input 'mask' must be a MASK");
    err = vkf_op_unary(gpu, VKF_UN_SCALE, m, -1.0f, 1.0f, &r);
    return done(ctx, "InvertMask", err, r, out);
}

static int mask_to_image(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    vkf_gpu *gpu;
    vkf_tensor *r = NULL, *m;
    int err = vkf_exec_gpu(ctx, &gpu);
    if (err < 0)
        return err;
    if (!(m = mask_in(ctx, gpu, "MaskToImage", "mask", &in[0])))
        return VKF_ERUN;
    err = vkf_op_mask_to_image(gpu, m, &r);
    vkf_tensor_unref(&m);
    if (err < 0)
        return vkf_exec_error(ctx, "MaskToImage: GPU op failed: %s", vkf_strerror(err));
    return vkf_value_set_image(out, r);
}

static int image_to_mask(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    vkf_gpu *gpu;
    vkf_tensor *img = vkf_value_image(&in[0]), *s = NULL, *c = NULL, *r = NULL;
    int err = vkf_exec_gpu(ctx, &gpu);
    if (err < 0)
        return err;
    if (!img || vkf_tensor_ndim(img) != 4)
        return vkf_exec_error(ctx, "ImageToMask: input 'image' must be an IMAGE [B, H, W, C]");
    static const char *const names[] = {"red", "green", "blue", "alpha"};
    int ch = 0;
    while (ch < 4 && strcmp(names[ch], in[1].u.s))
        ch++;
    const int64_t *sh = vkf_tensor_shape(img);
    if (ch >= sh[3])
        return vkf_exec_error(ctx, "ImageToMask: channel '%s' is not in the %lld-channel image",
                              in[1].u.s, (long long)sh[3]);
    int64_t shape[3] = {sh[0], sh[1], sh[2]};
    if ((err = vkf_tensor_slice(img, 3, ch, 1, &s)) >= 0 &&
        (err = vkf_op_contiguous(gpu, s, &c)) >= 0)
        err = vkf_tensor_reshape(c, 3, shape, &r);
    vkf_tensor_unref(&s);
    vkf_tensor_unref(&c);
    return done(ctx, "ImageToMask", err, r, out);
}

static const vkf_input_def solid_inputs[] = {
    VKF_INPUT_FLOAT("value", 1.0, 0.0, 1.0, 0.01),
    VKF_INPUT_INT("width", 512, 1, MAX_RES),
    VKF_INPUT_INT("height", 512, 1, MAX_RES),
};
static const vkf_input_def mask_only[] = {VKF_INPUT_LINK("mask", "MASK")};
static const char *const image_channels[] = {"red", "green", "blue", "alpha", NULL};
static const vkf_input_def image_to_mask_inputs[] = {
    VKF_INPUT_LINK("image", "IMAGE"),
    {.name = "channel", .type = VKF_T_COMBO, .options = image_channels},
};

const vkf_node_def vkf_node_SolidMask = {
    .name = "SolidMask", .display_name = "SolidMask", .category = "mask",
    .python_module = "comfy_extras.nodes_mask", .inputs = solid_inputs, .nb_inputs = 3,
    .outputs = mask_out, .nb_outputs = 1, .execute = solid_mask,
};
const vkf_node_def vkf_node_InvertMask = {
    .name = "InvertMask", .display_name = "InvertMask", .category = "mask",
    .python_module = "comfy_extras.nodes_mask", .inputs = mask_only, .nb_inputs = 1,
    .outputs = mask_out, .nb_outputs = 1, .execute = invert_mask,
};
const vkf_node_def vkf_node_MaskToImage = {
    .name = "MaskToImage", .display_name = "Convert Mask to Image", .category = "mask",
    .python_module = "comfy_extras.nodes_mask", .inputs = mask_only, .nb_inputs = 1,
    .outputs = image_out, .nb_outputs = 1, .execute = mask_to_image,
};
const vkf_node_def vkf_node_ImageToMask = {
    .name = "ImageToMask", .display_name = "Convert Image to Mask", .category = "mask",
    .python_module = "comfy_extras.nodes_mask", .inputs = image_to_mask_inputs, .nb_inputs = 2,
    .outputs = mask_out, .nb_outputs = 1, .execute = image_to_mask,
};

/* ---- CropMask / GrowMask / FeatherMask / ThresholdMask / MaskComposite -------- */

static int crop_mask(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    vkf_gpu *gpu;
    vkf_tensor *m, *a = NULL, *b = NULL, *r = NULL;
    int err = vkf_exec_gpu(ctx, &gpu);
    if (err < 0)
        return err;
    if (!(m = mask_in(ctx, gpu, "CropMask", "mask", &in[0])))
        return VKF_ERUN;
    int64_t x = in[1].u.i, y = in[2].u.i, w = in[3].u.i, h = in[4].u.i;
    const int64_t *sh = vkf_tensor_shape(m);
    if (x >= sh[2] || y >= sh[1]) {
        err = vkf_exec_error(ctx, "CropMask: %s %lld is outside the %lldx%lld mask (the crop "
                             "would be empty)", x >= sh[2] ? "x" : "y",
                             (long long)(x >= sh[2] ? x : y), (long long)sh[2], (long long)sh[1]);
        vkf_tensor_unref(&m);
        return err;
    }
    int64_t cw = w < sh[2] - x ? w : sh[2] - x, ch = h < sh[1] - y ? h : sh[1] - y;
    if ((err = vkf_tensor_slice(m, 1, y, ch, &a)) >= 0 &&
        (err = vkf_tensor_slice(a, 2, x, cw, &b)) >= 0)
        err = vkf_op_contiguous(gpu, b, &r);
    vkf_tensor_unref(&a);
    vkf_tensor_unref(&b);
    vkf_tensor_unref(&m);
    return done(ctx, "CropMask", err, r, out);
}

static int grow_mask(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    vkf_gpu *gpu;
    vkf_tensor *m, *r = NULL;
    int err = vkf_exec_gpu(ctx, &gpu);
    if (err < 0)
        return err;
    if (!(m = mask_in(ctx, gpu, "GrowMask", "mask", &in[0])))
        return VKF_ERUN;
    err = vkf_op_mask_grow(gpu, m, in[1].u.i, in[2].u.b, &r);
    vkf_tensor_unref(&m);
    return done(ctx, "GrowMask", err, r, out);
}

static int feather_mask(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    vkf_gpu *gpu;
    vkf_tensor *m, *r = NULL;
    int err = vkf_exec_gpu(ctx, &gpu);
    if (err < 0)
        return err;
    if (!(m = mask_in(ctx, gpu, "FeatherMask", "mask", &in[0])))
        return VKF_ERUN;
    err = vkf_op_mask_feather(gpu, m, in[1].u.i, in[2].u.i, in[3].u.i, in[4].u.i, &r);
    vkf_tensor_unref(&m);
    return done(ctx, "FeatherMask", err, r, out);
}

static int threshold_mask(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    vkf_gpu *gpu;
    vkf_tensor *m = vkf_value_mask(&in[0]), *r = NULL;
    int err = vkf_exec_gpu(ctx, &gpu);
    if (err < 0)
        return err;
    if (!m)
        return vkf_exec_error(ctx, "ThresholdMask: input 'mask' must be a MASK");
    err = vkf_op_mask_threshold(gpu, m, (float)vkf_value_number(&in[1]), &r);
    return done(ctx, "ThresholdMask", err, r, out);
}

static const char *const mask_ops[] = {"multiply", "add", "subtract", "and", "or", "xor", NULL};

static int mask_composite(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    vkf_gpu *gpu;
    vkf_tensor *d = NULL, *s = NULL, *r = NULL;
    int err = vkf_exec_gpu(ctx, &gpu);
    if (err < 0)
        return err;
    if (!(d = mask_in(ctx, gpu, "MaskComposite", "destination", &in[0])))
        return VKF_ERUN;
    if (!(s = mask_in(ctx, gpu, "MaskComposite", "source", &in[1]))) {
        vkf_tensor_unref(&d);
        return VKF_ERUN;
    }
    int op = 0;
    while (mask_ops[op] && strcmp(mask_ops[op], in[4].u.s))
        op++;
    int64_t bd = vkf_tensor_shape(d)[0], bs = vkf_tensor_shape(s)[0];
    if (!mask_ops[op])
        err = vkf_exec_error(ctx, "MaskComposite: unknown operation '%s'", in[4].u.s);
    else if (bs != bd && bs != 1)
        err = vkf_exec_error(ctx, "MaskComposite: source batch %lld does not broadcast to the "
                             "destination batch %lld", (long long)bs, (long long)bd);
    else
        err = vkf_op_mask_composite(gpu, d, s, in[2].u.i, in[3].u.i, (vkf_mask_op)op, &r);
    vkf_tensor_unref(&d);
    vkf_tensor_unref(&s);
    if (err == VKF_ERUN)
        return err;
    return done(ctx, "MaskComposite", err, r, out);
}

static const vkf_input_def crop_mask_inputs[] = {
    VKF_INPUT_LINK("mask", "MASK"),
    VKF_INPUT_INT("x", 0, 0, MAX_RES),
    VKF_INPUT_INT("y", 0, 0, MAX_RES),
    VKF_INPUT_INT("width", 512, 1, MAX_RES),
    VKF_INPUT_INT("height", 512, 1, MAX_RES),
};
static const vkf_input_def grow_inputs[] = {
    VKF_INPUT_LINK("mask", "MASK"),
    VKF_INPUT_INT("expand", 0, -MAX_RES, MAX_RES),
    VKF_INPUT_BOOL("tapered_corners", true),
};
static const vkf_input_def feather_inputs[] = {
    VKF_INPUT_LINK("mask", "MASK"),
    VKF_INPUT_INT("left", 0, 0, MAX_RES),
    VKF_INPUT_INT("top", 0, 0, MAX_RES),
    VKF_INPUT_INT("right", 0, 0, MAX_RES),
    VKF_INPUT_INT("bottom", 0, 0, MAX_RES),
};
static const vkf_input_def threshold_inputs[] = {
    VKF_INPUT_LINK("mask", "MASK"),
    VKF_INPUT_FLOAT("value", 0.5, 0.0, 1.0, 0.01),
};
static const vkf_input_def composite_inputs[] = {
    VKF_INPUT_LINK("destination", "MASK"),
    VKF_INPUT_LINK("source", "MASK"),
    VKF_INPUT_INT("x", 0, 0, MAX_RES),
    VKF_INPUT_INT("y", 0, 0, MAX_RES),
    {.name = "operation", .type = VKF_T_COMBO, .options = mask_ops},
};

const vkf_node_def vkf_node_CropMask = {
    .name = "CropMask", .display_name = "CropMask", .category = "mask",
    .python_module = "comfy_extras.nodes_mask", .inputs = crop_mask_inputs, .nb_inputs = 5,
    .outputs = mask_out, .nb_outputs = 1, .execute = crop_mask,
};
const vkf_node_def vkf_node_GrowMask = {
    .name = "GrowMask", .display_name = "GrowMask", .category = "mask",
    .python_module = "comfy_extras.nodes_mask", .inputs = grow_inputs, .nb_inputs = 3,
    .outputs = mask_out, .nb_outputs = 1, .execute = grow_mask,
};
const vkf_node_def vkf_node_FeatherMask = {
    .name = "FeatherMask", .display_name = "FeatherMask", .category = "mask",
    .python_module = "comfy_extras.nodes_mask", .inputs = feather_inputs, .nb_inputs = 5,
    .outputs = mask_out, .nb_outputs = 1, .execute = feather_mask,
};
const vkf_node_def vkf_node_ThresholdMask = {
    .name = "ThresholdMask", .display_name = "ThresholdMask", .category = "mask",
    .python_module = "comfy_extras.nodes_mask", .inputs = threshold_inputs, .nb_inputs = 2,
    .outputs = mask_out, .nb_outputs = 1, .execute = threshold_mask,
};
const vkf_node_def vkf_node_MaskComposite = {
    .name = "MaskComposite", .display_name = "MaskComposite", .category = "mask",
    .python_module = "comfy_extras.nodes_mask", .inputs = composite_inputs, .nb_inputs = 5,
    .outputs = mask_out, .nb_outputs = 1, .execute = mask_composite,
};
