/* LoadImage, SaveImage, PreviewImage (ComfyUI nodes.py): PNG in and out
 * through libpng; LoadImage also decodes JPEG and still WebP with FFmpeg.
 * Other image formats are refused by name. */
#include <dirent.h>
#include <libavcodec/avcodec.h>
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>
#include <errno.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <webp/demux.h>

#include "nodes.h"
#include "vkflow/media.h"
#include "save_naming.h"
#include "vkflow/paths.h"
#include "vkflow/types.h"

/* ---- SHA-256 (LoadImage's IS_CHANGED) ------------------------------------ */

static const uint32_t sha_k[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
    0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
    0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
    0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
    0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
    0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
    0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
    0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
    0xc67178f2,
};

static uint32_t ror(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

static void sha_block(uint32_t h[8], const uint8_t *p)
{
    uint32_t w[64], s[8];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
               (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = ror(w[i - 15], 7) ^ ror(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ror(w[i - 2], 17) ^ ror(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    memcpy(s, h, sizeof(s));
    for (int i = 0; i < 64; i++) {
        uint32_t t1 = s[7] + (ror(s[4], 6) ^ ror(s[4], 11) ^ ror(s[4], 25)) +
                      ((s[4] & s[5]) ^ (~s[4] & s[6])) + sha_k[i] + w[i];
        uint32_t t2 = (ror(s[0], 2) ^ ror(s[0], 13) ^ ror(s[0], 22)) +
                      ((s[0] & s[1]) ^ (s[0] & s[2]) ^ (s[1] & s[2]));
        memmove(s + 1, s, 7 * sizeof(uint32_t));
        s[4] += t1;
        s[0] = t1 + t2;
    }
    for (int i = 0; i < 8; i++)
        h[i] += s[i];
}

/* Hex digest of data into out[65]. */
static void sha256_hex(const uint8_t *data, size_t n, char out[65])
{
    uint32_t h[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                     0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    size_t i = 0;
    for (; i + 64 <= n; i += 64)
        sha_block(h, data + i);
    uint8_t tail[128] = {0};
    size_t rest = n - i, tl = rest + 9 <= 64 ? 64 : 128;
    memcpy(tail, data + i, rest);
    tail[rest] = 0x80;
    uint64_t bits = (uint64_t)n * 8;
    for (int k = 0; k < 8; k++)
        tail[tl - 1 - k] = (uint8_t)(bits >> (8 * k));
    for (size_t off = 0; off < tl; off += 64)
        sha_block(h, tail + off);
    for (int k = 0; k < 8; k++)
        snprintf(out + 8 * k, 9, "%08x", h[k]);
}

/* ---- files ------------------------------------------------------------------ */

static int read_file(const char *path, uint8_t **data, size_t *size)
{
    *data = NULL;
    *size = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return errno == ENOENT ? VKF_ENOTFOUND : VKF_EIO;
    uint8_t *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 65536;
            uint8_t *nb = vkf_realloc(buf, ncap);
            if (!nb) {
                vkf_free(buf);
                fclose(f);
                return VKF_ENOMEM;
            }
            buf = nb;
            cap = ncap;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
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

static bool is_png(const uint8_t *d, size_t n)
{
    return n >= 8 && !png_sig_cmp(d, 0, 8);
}

/* Known image formats LoadImage cannot decode yet (named in the error). */
static const char *other_format(const uint8_t *d, size_t n)
{
    if (n >= 3 && d[0] == 0xff && d[1] == 0xd8 && d[2] == 0xff)
        return "JPEG";
    if (n >= 12 && !memcmp(d, "RIFF", 4) && !memcmp(d + 8, "WEBP", 4))
        return "WebP";
    if (n >= 6 && (!memcmp(d, "GIF87a", 6) || !memcmp(d, "GIF89a", 6)))
        return "GIF";
    if (n >= 2 && d[0] == 'B' && d[1] == 'M')
        return "BMP";
    if (n >= 4 && (!memcmp(d, "II*\0", 4) || !memcmp(d, "MM\0*", 4)))
        return "TIFF";
    return NULL;
}

/* ---- PNG decoding ------------------------------------------------------------ */

typedef struct png_src {
    const uint8_t *data;
    size_t size, pos;
    char msg[200];
    /* Decoded: rows of channels × (depth/8) bytes, big-endian samples. */
    uint8_t *pixels;
    uint8_t **rows;
} png_src;

static void png_on_error(png_structp png, png_const_charp msg)
{
    png_src *s = png_get_error_ptr(png);
    snprintf(s->msg, sizeof(s->msg), "%s", msg);
    png_longjmp(png, 1);
}

static void png_on_warning(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg;
}

static void png_read_mem(png_structp png, png_bytep out, size_t len)
{
    png_src *s = png_get_io_ptr(png);
    if (len > s->size - s->pos)
        png_error(png, "file is truncated");
    memcpy(out, s->data + s->pos, len);
    s->pos += len;
}

typedef struct decoded {
    int w, h, ch;       /* ch: 3 or 4 */
    float *rgb;         /* w*h*3 */
    float *mask;        /* w*h (1 - alpha), NULL if no alpha */
} decoded;

/* The part under setjmp: every object it touches lives in *s or *out. */
static int png_decode_inner(png_structp png, png_infop info, png_src *s, decoded *out)
{
    if (setjmp(png_jmpbuf(png)))
        return VKF_EPARSE;
    png_set_read_fn(png, s, png_read_mem);
    png_set_user_limits(png, 1 << 16, 1 << 16);
    png_read_info(png, info);
    int ct = png_get_color_type(png, info);
    if (ct == PNG_COLOR_TYPE_PALETTE)
        png_set_palette_to_rgb(png);
    if (ct == PNG_COLOR_TYPE_GRAY && png_get_bit_depth(png, info) < 8)
        png_set_expand_gray_1_2_4_to_8(png);
    /* PIL (ComfyUI) makes a mask from tRNS for palette images only. */
    if (ct == PNG_COLOR_TYPE_PALETTE && png_get_valid(png, info, PNG_INFO_tRNS))
        png_set_tRNS_to_alpha(png);
    if (ct == PNG_COLOR_TYPE_GRAY || ct == PNG_COLOR_TYPE_GRAY_ALPHA)
        png_set_gray_to_rgb(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    int w = (int)png_get_image_width(png, info), h = (int)png_get_image_height(png, info);
    int ch = png_get_channels(png, info), depth = png_get_bit_depth(png, info);
    if ((ch != 3 && ch != 4) || (depth != 8 && depth != 16))
        png_error(png, "unexpected pixel layout");
    size_t rowbytes = png_get_rowbytes(png, info);
    s->pixels = vkf_malloc(rowbytes * (size_t)h);
    s->rows = vkf_malloc(sizeof(*s->rows) * (size_t)h);
    out->rgb = vkf_malloc(sizeof(float) * 3 * (size_t)w * (size_t)h);
    if (ch == 4)
        out->mask = vkf_malloc(sizeof(float) * (size_t)w * (size_t)h);
    if (!s->pixels || !s->rows || !out->rgb || (ch == 4 && !out->mask)) {
        snprintf(s->msg, sizeof(s->msg), "out of memory");
        return VKF_ENOMEM;
    }
    for (int y = 0; y < h; y++)
        s->rows[y] = s->pixels + (size_t)y * rowbytes;
    png_read_image(png, s->rows);
    png_read_end(png, NULL);
    size_t npx = (size_t)w * (size_t)h;
    for (size_t i = 0; i < npx; i++) {
        for (int c = 0; c < ch; c++) {
            size_t k = i * (size_t)ch + (size_t)c;
            float v = depth == 8 ? s->pixels[k] / 255.0f
                                 : (float)((s->pixels[2 * k] << 8) | s->pixels[2 * k + 1]) / 65535.0f;
            if (c < 3)
                out->rgb[i * 3 + (size_t)c] = v;
            else
                out->mask[i] = 1.0f - v;
        }
    }
    out->w = w;
    out->h = h;
    out->ch = ch;
    return 0;
}

static int png_decode(const uint8_t *data, size_t size, decoded *out, char *msg, size_t msgsize)
{
    png_src s = {.data = data, .size = size};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &s, png_on_error,
                                             png_on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_read_struct(&png, NULL, NULL);
        snprintf(msg, msgsize, "out of memory");
        return VKF_ENOMEM;
    }
    int err = png_decode_inner(png, info, &s, out);
    png_destroy_read_struct(&png, &info, NULL);
    vkf_free(s.pixels);
    vkf_free(s.rows);
    if (err < 0) {
        vkf_free(out->rgb);
        vkf_free(out->mask);
        *out = (decoded){0};
        snprintf(msg, msgsize, "%s", s.msg[0] ? s.msg : "decoding failed");
    }
    return err;
}

/* ---- JPEG / WebP through FFmpeg -------------------------------------------------- */

/* One still image: the whole file is one packet (as FFmpeg's image2 demuxer
 * does), converted to RGBA by swscale.  EXIF orientation is not applied. */
static int ff_decode(const uint8_t *data, size_t size, enum AVCodecID id, decoded *out,
                     char *msg, size_t msgsize)
{
    const AVCodec *codec = avcodec_find_decoder(id);
    AVCodecContext *c = NULL;
    AVPacket *pkt = NULL;
    AVFrame *fr = NULL;
    struct SwsContext *sws = NULL;
    uint8_t *rgba = NULL;
    int err = 0, ret = 0;
    if (!codec) {
        snprintf(msg, msgsize, "this FFmpeg has no decoder for it");
        return VKF_EUNSUPPORTED;
    }
    if (size > INT32_MAX / 2) {
        snprintf(msg, msgsize, "file too large");
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
    int w = fr->width, h = fr->height;
    if (w < 1 || h < 1 || w > (1 << 16) || h > (1 << 16)) {
        ret = AVERROR_INVALIDDATA;
        goto fail;
    }
    const AVPixFmtDescriptor *desc = av_pix_fmt_desc_get(fr->format);
    bool alpha = desc && (desc->flags & AV_PIX_FMT_FLAG_ALPHA);
    /* The deprecated "J" formats are their YUV twins with full range. */
    static const enum AVPixelFormat jfmt[][2] = {
        {AV_PIX_FMT_YUVJ420P, AV_PIX_FMT_YUV420P}, {AV_PIX_FMT_YUVJ422P, AV_PIX_FMT_YUV422P},
        {AV_PIX_FMT_YUVJ444P, AV_PIX_FMT_YUV444P}, {AV_PIX_FMT_YUVJ440P, AV_PIX_FMT_YUV440P},
        {AV_PIX_FMT_YUVJ411P, AV_PIX_FMT_YUV411P},
    };
    enum AVPixelFormat src_fmt = fr->format;
    int full_range = fr->color_range == AVCOL_RANGE_JPEG;
    for (size_t k = 0; k < VKF_ARRAY_SIZE(jfmt); k++) {
        if (src_fmt == jfmt[k][0]) {
            src_fmt = jfmt[k][1];
            full_range = 1;
        }
    }
    sws = sws_getContext(w, h, src_fmt, w, h, AV_PIX_FMT_RGBA,
                         SWS_BICUBIC | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT, NULL, NULL, NULL);
    if (sws) {
        const int *coefs = sws_getCoefficients(SWS_CS_DEFAULT);
        sws_setColorspaceDetails(sws, coefs, full_range, coefs, 1, 0, 1 << 16, 1 << 16);
    }
    size_t npx = (size_t)w * (size_t)h;
    rgba = vkf_malloc(npx * 4);
    out->rgb = vkf_malloc(sizeof(float) * 3 * npx);
    if (alpha)
        out->mask = vkf_malloc(sizeof(float) * npx);
    if (!sws || !rgba || !out->rgb || (alpha && !out->mask)) {
        err = VKF_ENOMEM;
        goto fail;
    }
    uint8_t *dst[4] = {rgba};
    int dst_ls[4] = {w * 4};
    sws_scale(sws, (const uint8_t *const *)fr->data, fr->linesize, 0, h, dst, dst_ls);
    for (size_t i = 0; i < npx; i++) {
        for (int k = 0; k < 3; k++)
            out->rgb[i * 3 + (size_t)k] = rgba[i * 4 + (size_t)k] / 255.0f;
        if (alpha)
            out->mask[i] = 1.0f - rgba[i * 4 + 3] / 255.0f;
    }
    out->w = w;
    out->h = h;
    out->ch = alpha ? 4 : 3;
fail:
    if (ret < 0) {
        char e[AV_ERROR_MAX_STRING_SIZE] = {0};
        av_strerror(ret, e, sizeof(e));
        snprintf(msg, msgsize, "%s", e);
        err = VKF_EPARSE;
    }
    if (err < 0) {
        vkf_free(out->rgb);
        vkf_free(out->mask);
        *out = (decoded){0};
        if (err == VKF_ENOMEM)
            snprintf(msg, msgsize, "out of memory");
    }
    vkf_free(rgba);
    sws_freeContext(sws);
    av_frame_free(&fr);
    av_packet_free(&pkt);
    avcodec_free_context(&c);
    return err;
}

/* ---- LoadImage ------------------------------------------------------------------ */

static int upload(vkf_gpu *gpu, int ndim, const int64_t *shape, const float *data,
                  vkf_tensor **out)
{
    int err = vkf_tensor_create(gpu, VKF_DTYPE_F32, ndim, shape, out);
    if (err >= 0 && (err = vkf_tensor_upload(*out, data)) < 0)
        vkf_tensor_unref(out);
    return err;
}

/* An APNG: a PNG with an acTL chunk before its first IDAT. */
static bool is_apng(const uint8_t *d, size_t n)
{
    for (size_t off = 8; off + 8 <= n;) {
        uint32_t len = (uint32_t)d[off] << 24 | (uint32_t)d[off + 1] << 16 |
                       (uint32_t)d[off + 2] << 8 | d[off + 3];
        if (!memcmp(d + off + 4, "acTL", 4))
            return true;
        if (!memcmp(d + off + 4, "IDAT", 4) || len > n - off - 8 || n - off - 8 - len < 4)
            return false;
        off += 12 + (size_t)len;
    }
    return false;
}

/*
 * Every frame of an animated or multi-page file (GIF, APNG, BMP, TIFF)
 * through FFmpeg, as ComfyUI's ImageSequence loop: an IMAGE batch of the
 * frames, masks 1 - alpha where the file has alpha.
 */
static int frames_decode(const uint8_t *data, size_t size, decoded *out, int *nframes,
                         char *msg, size_t msgsize)
{
    vkf_video_reader *r = NULL;
    float *rgb = NULL, *alpha = NULL;
    int err = vkf_video_reader_open(NULL, data, size, &r, msg, msgsize);
    if (err < 0)
        return err;
    const vkf_video_info info = *vkf_video_reader_info(r), *vi = &info;
    size_t px = (size_t)vi->width * (size_t)vi->height;
    int n = 0, cap = 0;
    *nframes = 0;
    for (;;) {
        if (n == cap) {
            int ncap = cap ? cap * 2 : 4;
            float *nr = vkf_realloc(rgb, (size_t)ncap * px * 3 * sizeof(float));
            if (nr)
                rgb = nr;
            float *na = !nr ? NULL : vi->has_alpha ? vkf_realloc(alpha, (size_t)ncap * px * sizeof(float))
                                                   : alpha;
            if (!nr || (vi->has_alpha && !na)) {
                err = VKF_ENOMEM;
                break;
            }
            alpha = na;
            cap = ncap;
        }
        err = vkf_video_reader_next(r, rgb + (size_t)n * px * 3,
                                    vi->has_alpha ? alpha + (size_t)n * px : NULL, msg, msgsize);
        if (err <= 0)
            break;
        n++;
    }
    vkf_video_reader_close(&r);
    if (err == 0 && n == 0) {
        snprintf(msg, msgsize, "no frames");
        err = VKF_EPARSE;
    }
    if (err < 0) {
        vkf_free(rgb);
        vkf_free(alpha);
        return err;
    }
    for (size_t i = 0; alpha && i < (size_t)n * px; i++)
        alpha[i] = 1.0f - alpha[i];
    out->rgb = rgb;
    out->mask = alpha;
    out->w = vi->width;
    out->h = vi->height;
    *nframes = n;
    return 0;
}

/* An animated WebP (VP8X with the animation flag). */
static bool is_animated_webp(const uint8_t *d, size_t n)
{
    return n >= 21 && !memcmp(d, "RIFF", 4) && !memcmp(d + 8, "WEBPVP8X", 8) && (d[20] & 0x02);
}

/* Every frame of an animated WebP through libwebpdemux's compositing
 * decoder (FFmpeg 5.1 cannot decode them): RGB plus 1 - alpha. */
static int webp_anim_decode(const uint8_t *data, size_t size, decoded *out, int *nframes,
                            char *msg, size_t msgsize)
{
    WebPAnimDecoderOptions opt;
    if (!WebPAnimDecoderOptionsInit(&opt))
        return VKF_EUNSUPPORTED;
    opt.color_mode = MODE_RGBA;
    opt.use_threads = 0;
    WebPData wd = {data, size};
    WebPAnimDecoder *dec = WebPAnimDecoderNew(&wd, &opt);
    WebPAnimInfo ai;
    if (!dec || !WebPAnimDecoderGetInfo(dec, &ai) || !ai.canvas_width || !ai.canvas_height ||
        ai.canvas_width > (1 << 14) || ai.canvas_height > (1 << 14) || !ai.frame_count ||
        ai.frame_count > 100000) {
        WebPAnimDecoderDelete(dec);
        snprintf(msg, msgsize, "cannot read the animation header");
        return VKF_EPARSE;
    }
    size_t px = (size_t)ai.canvas_width * ai.canvas_height;
    float *rgb = vkf_malloc((size_t)ai.frame_count * px * 3 * sizeof(float));
    float *mask = vkf_malloc((size_t)ai.frame_count * px * sizeof(float));
    int n = 0, err = 0;
    if (!rgb || !mask)
        err = VKF_ENOMEM;
    while (err == 0 && WebPAnimDecoderHasMoreFrames(dec) && n < (int)ai.frame_count) {
        uint8_t *buf;
        int ts;
        if (!WebPAnimDecoderGetNext(dec, &buf, &ts)) {
            snprintf(msg, msgsize, "corrupt frame %d", n + 1);
            err = VKF_EPARSE;
            break;
        }
        for (size_t i = 0; i < px; i++) {
            for (int c = 0; c < 3; c++)
                rgb[((size_t)n * px + i) * 3 + (size_t)c] = buf[i * 4 + (size_t)c] / 255.0f;
            mask[(size_t)n * px + i] = 1.0f - buf[i * 4 + 3] / 255.0f;
        }
        n++;
    }
    WebPAnimDecoderDelete(dec);
    if (err == 0 && n != (int)ai.frame_count) {
        snprintf(msg, msgsize, "%d of %u frames", n, ai.frame_count);
        err = VKF_EPARSE;
    }
    if (err < 0) {
        vkf_free(rgb);
        vkf_free(mask);
        return err;
    }
    out->rgb = rgb;
    out->mask = mask;
    out->w = (int)ai.canvas_width;
    out->h = (int)ai.canvas_height;
    *nframes = n;
    return 0;
}

/* ---- EXIF orientation (PIL's ImageOps.exif_transpose) ---- */

static uint32_t rd16(const uint8_t *p, bool le)
{
    return le ? (uint32_t)p[0] | (uint32_t)p[1] << 8 : (uint32_t)p[0] << 8 | p[1];
}

static uint32_t rd32(const uint8_t *p, bool le)
{
    return le ? rd16(p, true) | rd16(p + 2, true) << 16 : rd16(p, false) << 16 | rd16(p + 2, false);
}

/* Tag 0x0112 of IFD0 in a TIFF-structured EXIF block; 1 if absent. */
static int tiff_orientation(const uint8_t *t, size_t n)
{
    if (n < 8 || (memcmp(t, "II*\0", 4) && memcmp(t, "MM\0*", 4)))
        return 1;
    bool le = t[0] == 'I';
    uint32_t ifd = rd32(t + 4, le);
    if (ifd > n - 2 || ifd < 8)
        return 1;
    uint32_t count = rd16(t + ifd, le);
    for (uint32_t i = 0; i < count; i++) {
        size_t e = (size_t)ifd + 2 + (size_t)i * 12;
        if (e + 12 > n)
            break;
        if (rd16(t + e, le) == 0x0112 && rd16(t + e + 2, le) == 3) {
            uint32_t v = rd16(t + e + 8, le);
            return v >= 1 && v <= 8 ? (int)v : 1;
        }
    }
    return 1;
}

/* The EXIF orientation of a JPEG (APP1 "Exif\0\0") or WebP (EXIF chunk). */
static int exif_orientation(const uint8_t *d, size_t n)
{
    if (n >= 4 && d[0] == 0xff && d[1] == 0xd8) {
        for (size_t off = 2; off + 4 <= n && d[off] == 0xff;) {
            uint8_t m = d[off + 1];
            size_t len = (size_t)d[off + 2] << 8 | d[off + 3];
            if (m == 0xda || m == 0xd9 || len < 2 || off + 2 + len > n)
                break;
            if (m == 0xe1 && len >= 8 && !memcmp(d + off + 4, "Exif\0\0", 6))
                return tiff_orientation(d + off + 10, len - 8);
            off += 2 + len;
        }
        return 1;
    }
    if (n >= 12 && !memcmp(d, "RIFF", 4) && !memcmp(d + 8, "WEBP", 4)) {
        for (size_t off = 12; off + 8 <= n;) {
            size_t len = rd32(d + off + 4, true);
            if (len > n - off - 8)
                break;
            if (!memcmp(d + off, "EXIF", 4)) {
                const uint8_t *t = d + off + 8;
                if (len >= 6 && !memcmp(t, "Exif\0\0", 6))
                    return tiff_orientation(t + 6, len - 6);
                return tiff_orientation(t, len);
            }
            off += 8 + len + (len & 1);
        }
    }
    return 1;
}

/* Applies orientation o (2..8) to one w×h plane of c floats per pixel;
 * returns the new buffer (or NULL) and the new size in *w, *h. */
static float *orient_plane(const float *src, int c, int *w, int *h, int o)
{
    int W = *w, H = *h;
    bool swap = o >= 5;
    int ow = swap ? H : W, oh = swap ? W : H;
    float *dst = vkf_malloc((size_t)ow * (size_t)oh * (size_t)c * sizeof(float));
    if (!dst)
        return NULL;
    for (int y = 0; y < oh; y++)
        for (int x = 0; x < ow; x++) {
            int sx, sy;
            switch (o) {
            case 2: sx = W - 1 - x; sy = y; break;           /* mirror */
            case 3: sx = W - 1 - x; sy = H - 1 - y; break;   /* rotate 180 */
            case 4: sx = x; sy = H - 1 - y; break;           /* flip */
            case 5: sx = y; sy = x; break;                   /* transpose */
            case 6: sx = y; sy = H - 1 - x; break;           /* rotate 90 cw */
            case 7: sx = W - 1 - y; sy = H - 1 - x; break;   /* transverse */
            case 8: sx = W - 1 - y; sy = x; break;           /* rotate 270 cw */
            default: sx = x; sy = y; break;
            }
            memcpy(dst + ((size_t)y * ow + x) * c, src + ((size_t)sy * W + sx) * c,
                   (size_t)c * sizeof(float));
        }
    *w = ow;
    *h = oh;
    return dst;
}

static int apply_orientation(decoded *d, int o)
{
    if (o <= 1)
        return 0;
    int w = d->w, h = d->h;
    float *rgb = orient_plane(d->rgb, 3, &w, &h, o);
    if (!rgb)
        return VKF_ENOMEM;
    if (d->mask) {
        int mw = d->w, mh = d->h;
        float *m = orient_plane(d->mask, 1, &mw, &mh, o);
        if (!m) {
            vkf_free(rgb);
            return VKF_ENOMEM;
        }
        vkf_free(d->mask);
        d->mask = m;
    }
    vkf_free(d->rgb);
    d->rgb = rgb;
    d->w = w;
    d->h = h;
    return 0;
}

static int load_image(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    const char *name = in[0].u.s;
    char *path = NULL;
    uint8_t *data = NULL;
    size_t size = 0;
    decoded d = {0};
    float *zeros = NULL;
    vkf_tensor *img = NULL, *mask = NULL;
    char msg[200];
    int nframes = 1;
    int err = vkf_paths_resolve_input(vkf_exec_paths(ctx), name, &path);
    if (err < 0)
        return vkf_exec_error(ctx, "LoadImage: cannot find image '%s' in the input directory", name);
    err = read_file(path, &data, &size);
    if (err < 0) {
        err = vkf_exec_error(ctx, "LoadImage: cannot read '%s': %s", name, vkf_strerror(err));
        goto fail;
    }
    const char *fmt = is_png(data, size) ? "PNG" : other_format(data, size);
    if (!fmt) {
        err = vkf_exec_error(ctx, "LoadImage: '%s': not an image file", name);
        goto fail;
    }
    if (!strcmp(fmt, "PNG") && is_apng(data, size))
        fmt = "APNG";
    if (!strcmp(fmt, "PNG"))
        err = png_decode(data, size, &d, msg, sizeof(msg));
    else if (!strcmp(fmt, "APNG") || !strcmp(fmt, "GIF") || !strcmp(fmt, "BMP") ||
             !strcmp(fmt, "TIFF"))
        err = frames_decode(data, size, &d, &nframes, msg, sizeof(msg));
    else if (!strcmp(fmt, "WebP") && is_animated_webp(data, size))
        err = webp_anim_decode(data, size, &d, &nframes, msg, sizeof(msg));
    else if (!strcmp(fmt, "JPEG") || !strcmp(fmt, "WebP"))
        err = ff_decode(data, size, fmt[0] == 'J' ? AV_CODEC_ID_MJPEG : AV_CODEC_ID_WEBP, &d,
                        msg, sizeof(msg));
    else
        err = VKF_EUNSUPPORTED;
    if (err == VKF_EUNSUPPORTED) {
        err = vkf_exec_error(ctx, "LoadImage: '%s': unsupported image format (%s)", name, fmt);
        goto fail;
    }
    if (err < 0) {
        err = err == VKF_ENOMEM ? err
                                : vkf_exec_error(ctx, "LoadImage: '%s': corrupt %s: %s", name, fmt, msg);
        goto fail;
    }
    /* PIL's ImageOps.exif_transpose, as ComfyUI's LoadImage */
    if (nframes == 1 && (err = apply_orientation(&d, exif_orientation(data, size))) < 0)
        goto fail;
    vkf_gpu *gpu;
    if ((err = vkf_exec_gpu(ctx, &gpu)) < 0)
        goto fail;
    int64_t ishape[4] = {nframes, d.h, d.w, 3};
    if ((err = upload(gpu, 4, ishape, d.rgb, &img)) < 0)
        goto fail;
    if (d.mask) {
        int64_t mshape[3] = {nframes, d.h, d.w};
        err = upload(gpu, 3, mshape, d.mask, &mask);
    } else {
        int64_t mshape[3] = {nframes, 64, 64};
        zeros = vkf_calloc((size_t)nframes * 64 * 64, sizeof(float));
        err = zeros ? upload(gpu, 3, mshape, zeros, &mask) : VKF_ENOMEM;
    }
    if (err < 0)
        goto fail;
    err = vkf_value_set_image(&out[0], img);
    img = NULL;
    if (err >= 0)
        err = vkf_value_set_mask(&out[1], mask);
    mask = NULL;
fail:
    vkf_tensor_unref(&img);
    vkf_tensor_unref(&mask);
    vkf_free(zeros);
    vkf_free(d.rgb);
    vkf_free(d.mask);
    vkf_free(data);
    vkf_free(path);
    return err;
}

/* IS_CHANGED: SHA-256 of the file, so an edited file reruns the node. */
static int load_fingerprint(vkf_exec_ctx *ctx, const vkf_value *in, char **key)
{
    *key = NULL;
    if (in[0].kind != VKF_VAL_STRING)
        return 0;
    char *path = NULL;
    uint8_t *data = NULL;
    size_t size;
    if (vkf_paths_resolve_input(vkf_exec_paths(ctx), in[0].u.s, &path) < 0)
        return 0;
    int err = read_file(path, &data, &size);
    vkf_free(path);
    if (err == VKF_ENOMEM)
        return err;
    if (err < 0)
        return 0;   /* "always run"; execution reports the error */
    char hex[65];
    sha256_hex(data, size, hex);
    vkf_free(data);
    *key = vkf_strdup(hex);
    return *key ? 0 : VKF_ENOMEM;
}

static char *load_validate(const vkf_paths *paths, const vkf_value *in)
{
    if (in[0].kind != VKF_VAL_STRING)
        return NULL;
    char *path = NULL;
    if (vkf_paths_resolve_input(paths, in[0].u.s, &path) < 0)
        return vkf_asprintf("Invalid image file: %s", in[0].u.s);
    vkf_free(path);
    return NULL;
}

static const vkf_input_def load_inputs[] = {
    {.name = "image", .type = VKF_T_COMBO, .flags = VKF_IN_IMAGE_UPLOAD, .model_folder = "input"},
};
static const vkf_output_def load_outputs[] = {{.type = "IMAGE"}, {.type = "MASK"}};

const vkf_node_def vkf_node_LoadImage = {
    .name = "LoadImage",
    .display_name = "Load Image",
    .category = "image",
    .python_module = "nodes",
    .inputs = load_inputs, .nb_inputs = 1,
    .outputs = load_outputs, .nb_outputs = 2,
    .execute = load_image,
    .fingerprint = load_fingerprint,
    .validate = load_validate,
};

/* ---- SaveImage / PreviewImage ---------------------------------------------------- */

typedef struct sbuf {
    char *s;
    size_t n, cap;
    bool oom;
} sbuf;

static void sb_add(sbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = (b->n + n + 1) * 2;
        char *ns = vkf_realloc(b->s, cap);
        if (!ns) {
            b->oom = true;
            return;
        }
        b->s = ns;
        b->cap = cap;
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = 0;
}


typedef struct png_dst {
    vkf_atomic_file *file;
    char msg[200];
} png_dst;

static void png_write_cb(png_structp png, png_bytep data, size_t len)
{
    png_dst *d = png_get_io_ptr(png);
    if (vkf_atomic_file_write(d->file, data, len) < 0)
        png_error(png, "write failed");
}

static void png_flush_cb(png_structp png)
{
    (void)png;
}

static void png_dst_error(png_structp png, png_const_charp msg)
{
    png_dst *d = png_get_error_ptr(png);
    snprintf(d->msg, sizeof(d->msg), "%s", msg);
    png_longjmp(png, 1);
}

typedef struct png_job {
    int w, h, ch;
    uint8_t *pixels;
    uint8_t **rows;
    png_text *text;
    int ntext;
    int level;
} png_job;

static int png_encode_inner(png_structp png, png_infop info, png_dst *d, const png_job *j)
{
    if (setjmp(png_jmpbuf(png)))
        return VKF_EIO;
    png_set_write_fn(png, d, png_write_cb, png_flush_cb);
    png_set_compression_level(png, j->level);
    png_set_IHDR(png, info, (png_uint_32)j->w, (png_uint_32)j->h, 8,
                 j->ch == 4 ? PNG_COLOR_TYPE_RGBA : PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (j->ntext)
        png_set_text(png, info, j->text, j->ntext);
    png_write_info(png, info);
    png_write_image(png, j->rows);
    png_write_end(png, info);
    return 0;
}

static int write_png(const char *path, const png_job *j, char *msg, size_t msgsize)
{
    png_dst d = {0};
    int err = vkf_atomic_file_open(&d.file, path);
    if (err < 0) {
        snprintf(msg, msgsize, "cannot create file: %s", vkf_strerror(err));
        return err;
    }
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &d, png_dst_error,
                                              png_on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_write_struct(&png, NULL);
        vkf_atomic_file_abort(&d.file);
        snprintf(msg, msgsize, "out of memory");
        return VKF_ENOMEM;
    }
    err = png_encode_inner(png, info, &d, j);
    png_destroy_write_struct(&png, &info);
    if (err >= 0)
        err = vkf_atomic_file_commit(&d.file);
    else
        vkf_atomic_file_abort(&d.file);
    if (err < 0)
        snprintf(msg, msgsize, "%s", d.msg[0] ? d.msg : vkf_strerror(err));
    return err;
}

static int save_common(vkf_exec_ctx *ctx, const vkf_value *in, bool temp)
{
    const char *node = temp ? "PreviewImage" : "SaveImage";
    vkf_tensor *t = vkf_value_image(&in[0]);
    if (!t || vkf_tensor_ndim(t) != 4)
        return vkf_exec_error(ctx, "%s: images must be an IMAGE [B,H,W,C]", node);
    const int64_t *sh = vkf_tensor_shape(t);
    int64_t B = sh[0], H = sh[1], W = sh[2], C = sh[3];
    if (C < 1 || C > 4 || H < 1 || W < 1 || H > (1 << 24) || W > (1 << 24))
        return vkf_exec_error(ctx, "%s: cannot save an image of shape [%lld,%lld,%lld,%lld]", node,
                              (long long)B, (long long)H, (long long)W, (long long)C);
    const vkf_paths *paths = vkf_exec_paths(ctx);
    char prefix_buf[64];
    const char *prefix = in[1].kind == VKF_VAL_STRING ? in[1].u.s : "ComfyUI";
    if (temp) {
        static const char letters[] = "abcdefghijklmnopqrstupvxyz";
        uint64_t r = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 20) ^ (uint64_t)(uintptr_t)ctx;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        r ^= (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ull;
        char rnd[6];
        for (int i = 0; i < 5; i++) {
            r ^= r << 13;
            r ^= r >> 7;
            r ^= r << 17;
            rnd[i] = letters[r % (sizeof(letters) - 1)];
        }
        rnd[5] = 0;
        snprintf(prefix_buf, sizeof(prefix_buf), "ComfyUI_temp_%s", rnd);
        prefix = prefix_buf;
    }
    float *host = NULL;
    char *expanded = NULL, *normed = NULL, *subfolder = NULL, *dirpath = NULL, *fname = NULL,
         *full = NULL, *prompt = NULL, *workflow = NULL;
    png_job j = {.w = (int)W, .h = (int)H, .ch = C == 4 ? 4 : 3, .level = temp ? 1 : 4};
    png_text text[2];
    char msg[200];
    int err = 0;

    expanded = strchr(prefix, '%') ? vkf_save_expand_vars(prefix, W, H) : vkf_strdup(prefix);
    VKF_CHECK_ALLOC(expanded);
    normed = vkf_save_normpath(expanded);
    VKF_CHECK_ALLOC(normed);
    const char *slash = strrchr(normed, '/');
    const char *stem = slash ? slash + 1 : normed;
    subfolder = slash ? vkf_strdup(normed) : vkf_strdup("");
    VKF_CHECK_ALLOC(subfolder);
    if (slash)
        subfolder[slash - normed] = 0;
    if (!*stem || (slash && !*subfolder)) {
        err = vkf_exec_error(ctx, "%s: invalid filename_prefix '%s'", node, prefix);
        goto fail;
    }
    if (!(temp ? vkf_paths_temp_dir(paths) : vkf_paths_output_dir(paths))) {
        err = vkf_exec_error(ctx, "%s: no %s directory configured", node, temp ? "temp" : "output");
        goto fail;
    }
    /* The folder (created, and checked not to escape the root). */
    err = vkf_paths_output_file(paths, temp, subfolder, "probe", &dirpath);
    if (err < 0) {
        err = vkf_exec_error(ctx,
                             "%s: Saving image outside the %s folder is not allowed. "
                             "full_output_folder: %s, filename_prefix: %s",
                             node, temp ? "temp" : "output", subfolder, prefix);
        goto fail;
    }
    *strrchr(dirpath, '/') = 0;
    int counter = vkf_save_next_counter(dirpath, stem);

    const char *pj = vkf_exec_prompt_json(ctx), *wj = vkf_exec_workflow_json(ctx);
    if (pj) {
        prompt = vkf_json_ensure_ascii(pj);
        VKF_CHECK_ALLOC(prompt);
        text[j.ntext++] = (png_text){.compression = PNG_TEXT_COMPRESSION_NONE,
                                     .key = "prompt", .text = prompt};
    }
    if (wj) {
        workflow = vkf_json_ensure_ascii(wj);
        VKF_CHECK_ALLOC(workflow);
        text[j.ntext++] = (png_text){.compression = PNG_TEXT_COMPRESSION_NONE,
                                     .key = "workflow", .text = workflow};
    }
    j.text = text;

    size_t plane = (size_t)H * (size_t)W * (size_t)C;
    host = vkf_malloc(plane * (size_t)B * sizeof(float));
    j.pixels = vkf_malloc((size_t)H * (size_t)W * (size_t)j.ch);
    j.rows = vkf_malloc(sizeof(*j.rows) * (size_t)H);
    if (!host || !j.pixels || !j.rows) {
        err = VKF_ENOMEM;
        goto fail;
    }
    if ((err = vkf_tensor_download(t, host)) < 0) {
        err = vkf_exec_error(ctx, "%s: reading the image from the GPU failed: %s", node,
                             vkf_strerror(err));
        goto fail;
    }
    for (int64_t y = 0; y < H; y++)
        j.rows[y] = j.pixels + (size_t)y * (size_t)W * (size_t)j.ch;
    for (int64_t b = 0; b < B; b++) {
        const float *src = host + (size_t)b * plane;
        for (size_t px = 0; px < (size_t)H * (size_t)W; px++) {
            for (int c = 0; c < j.ch; c++) {
                float v = src[px * (size_t)C + (size_t)(C == 1 ? 0 : c)] * 255.0f;
                v = v > 0.0f ? v : 0.0f;   /* NaN -> 0 as well */
                v = v < 255.0f ? v : 255.0f;
                j.pixels[px * (size_t)j.ch + (size_t)c] = (uint8_t)v;
            }
        }
        /* %batch_num% in the stem is the batch index. */
        sbuf nb = {0};
        sb_add(&nb, "", 0);
        for (const char *p = stem; *p;) {
            if (!strncmp(p, "%batch_num%", 11)) {
                char num[24];
                snprintf(num, sizeof(num), "%lld", (long long)b);
                sb_add(&nb, num, strlen(num));
                p += 11;
            } else {
                sb_add(&nb, p++, 1);
            }
        }
        if (nb.oom) {
            vkf_free(nb.s);
            err = VKF_ENOMEM;
            goto fail;
        }
        fname = vkf_asprintf("%s_%05d_.png", nb.s, counter);
        vkf_free(nb.s);
        VKF_CHECK_ALLOC(fname);
        err = vkf_paths_output_file(paths, temp, subfolder, fname, &full);
        if (err < 0) {
            err = vkf_exec_error(ctx, "%s: invalid output file name '%s'", node, fname);
            goto fail;
        }
        if ((err = write_png(full, &j, msg, sizeof(msg))) < 0) {
            err = err == VKF_ENOMEM ? err
                                    : vkf_exec_error(ctx, "%s: writing '%s' failed: %s", node, full, msg);
            goto fail;
        }
        if ((err = vkf_exec_ui_file(ctx, "images", fname, subfolder, temp ? "temp" : "output")) < 0)
            goto fail;
        vkf_free(fname);
        vkf_free(full);
        fname = full = NULL;
        counter++;
    }
fail:
    vkf_free(host);
    vkf_free(j.pixels);
    vkf_free(j.rows);
    vkf_free(expanded);
    vkf_free(normed);
    vkf_free(subfolder);
    vkf_free(dirpath);
    vkf_free(fname);
    vkf_free(full);
    vkf_free(prompt);
    vkf_free(workflow);
    return err;
}

static int save_image(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    (void)out;
    return save_common(ctx, in, false);
}

static int preview_image(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    (void)out;
    return save_common(ctx, in, true);
}

static const vkf_input_def save_inputs[] = {
    {.name = "images", .type = "IMAGE", .tooltip = "The images to save."},
    {.name = "filename_prefix", .type = VKF_T_STRING, .sdef = "ComfyUI",
     .tooltip = "The prefix for the file to save. This may include formatting information "
                "such as %date:yyyy-MM-dd% or %Empty Latent Image.width% to include values "
                "from nodes."},
    {.name = "prompt", .type = "PROMPT", .flags = VKF_IN_HIDDEN},
    {.name = "extra_pnginfo", .type = "EXTRA_PNGINFO", .flags = VKF_IN_HIDDEN},
};

const vkf_node_def vkf_node_SaveImage = {
    .name = "SaveImage",
    .display_name = "Save Image",
    .category = "image",
    .description = "Saves the input images to your ComfyUI output directory.",
    .python_module = "nodes",
    .inputs = save_inputs, .nb_inputs = 4,
    .flags = VKF_NODE_OUTPUT,
    .execute = save_image,
};

static const vkf_input_def preview_inputs[] = {
    {.name = "images", .type = "IMAGE"},
    {.name = "prompt", .type = "PROMPT", .flags = VKF_IN_HIDDEN},
    {.name = "extra_pnginfo", .type = "EXTRA_PNGINFO", .flags = VKF_IN_HIDDEN},
};

const vkf_node_def vkf_node_PreviewImage = {
    .name = "PreviewImage",
    .display_name = "Preview Image",
    .category = "image",
    .description = "Saves the input images to your ComfyUI output directory.",
    .python_module = "nodes",
    .inputs = preview_inputs, .nb_inputs = 3,
    .flags = VKF_NODE_OUTPUT,
    .execute = preview_image,
};
