/*
 * /view?preview=webp;90 — an image re-encoded as WebP or JPEG for display,
 * as ComfyUI's view route does with PIL: first frame of the file, RGB (or
 * RGBA kept for WebP), the quality given after ';' (default 90).
 * Decoding and encoding go through FFmpeg (libavformat's image demuxers,
 * libavcodec's mjpeg and libwebp encoders, libswscale).
 */
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/imgutils.h>
#include <libavutil/opt.h>
#include <libswscale/swscale.h>
#include <string.h>

#include "server/internal.h"

/* The first video frame of path, or an error. */
static int decode_first(const char *path, AVFrame **out)
{
    AVFormatContext *fmt = NULL;
    AVCodecContext *dec = NULL;
    AVPacket *pkt = av_packet_alloc();
    AVFrame *fr = av_frame_alloc();
    int err = VKF_EIO, si;
    *out = NULL;
    if (!pkt || !fr) {
        err = VKF_ENOMEM;
        goto done;
    }
    if (avformat_open_input(&fmt, path, NULL, NULL) < 0 ||
        avformat_find_stream_info(fmt, NULL) < 0)
        goto done;
    const AVCodec *codec = NULL;
    si = av_find_best_stream(fmt, AVMEDIA_TYPE_VIDEO, -1, -1, &codec, 0);
    if (si < 0 || !codec || !(dec = avcodec_alloc_context3(codec)) ||
        avcodec_parameters_to_context(dec, fmt->streams[si]->codecpar) < 0 ||
        avcodec_open2(dec, codec, NULL) < 0)
        goto done;
    while (av_read_frame(fmt, pkt) >= 0) {
        int r = pkt->stream_index == si ? avcodec_send_packet(dec, pkt) : 0;
        av_packet_unref(pkt);
        if (r < 0)
            break;
        if (avcodec_receive_frame(dec, fr) == 0) {
            *out = fr;
            fr = NULL;
            err = 0;
            goto done;
        }
    }
    if (avcodec_send_packet(dec, NULL) >= 0 && avcodec_receive_frame(dec, fr) == 0) {
        *out = fr;
        fr = NULL;
        err = 0;
    }
done:
    av_frame_free(&fr);
    av_packet_free(&pkt);
    avcodec_free_context(&dec);
    avformat_close_input(&fmt);
    return err;
}

static bool has_alpha(enum AVPixelFormat f)
{
    const AVPixFmtDescriptor *d = av_pix_fmt_desc_get(f);
    return d && (d->flags & AV_PIX_FMT_FLAG_ALPHA);
}

int vkf_view_convert(const char *path, const char *preview, const char *channel,
                     char **out, size_t *out_len, const char **content_type)
{
    *out = NULL;
    *out_len = 0;
    /* "webp;90", "jpeg;75", "jpeg": anything else is webp; quality if the
     * last field is digits. */
    char fmt[16] = "";
    const char *semi = strchr(preview, ';');
    size_t flen = semi ? (size_t)(semi - preview) : strlen(preview);
    if (flen < sizeof(fmt))
        memcpy(fmt, preview, flen), fmt[flen] = 0;
    bool jpeg = !strcmp(fmt, "jpeg") && !(channel && strchr(channel, 'a'));
    const char *last = strrchr(preview, ';');
    last = last ? last + 1 : preview;
    int quality = 90;
    if (*last && strspn(last, "0123456789") == strlen(last) && strlen(last) < 4)
        quality = atoi(last);
    if (quality > 100)
        quality = 100;
    bool rgb_only = jpeg || (channel && !strcmp(channel, "rgb"));

    AVFrame *src = NULL, *dst = NULL;
    AVCodecContext *enc = NULL;
    AVPacket *pkt = NULL;
    struct SwsContext *sws = NULL;
    int err = decode_first(path, &src);
    if (err < 0)
        return err;
    const AVCodec *codec = jpeg ? avcodec_find_encoder(AV_CODEC_ID_MJPEG)
                                : avcodec_find_encoder_by_name("libwebp");
    enum AVPixelFormat pf = jpeg ? AV_PIX_FMT_YUVJ420P
                            : (!rgb_only && has_alpha(src->format)) ? AV_PIX_FMT_YUVA420P
                                                                    : AV_PIX_FMT_YUV420P;
    err = VKF_EUNSUPPORTED;
    if (!codec || !(enc = avcodec_alloc_context3(codec)))
        goto done;
    enc->width = src->width;
    enc->height = src->height;
    enc->pix_fmt = pf;
    enc->time_base = (AVRational){1, 25};
    if (jpeg) {
        /* PIL's quality 1..95 → a JPEG quantiser scale 31..2 */
        int q = 2 + (100 - (quality < 1 ? 1 : quality)) * 29 / 99;
        enc->flags |= AV_CODEC_FLAG_QSCALE;
        enc->global_quality = FF_QP2LAMBDA * q;
        enc->color_range = AVCOL_RANGE_JPEG;
    } else {
        /* the libwebp wrapper takes its quality from global_quality */
        enc->global_quality = FF_QP2LAMBDA * quality;
        av_opt_set_double(enc->priv_data, "quality", quality, 0);
    }
    if (avcodec_open2(enc, codec, NULL) < 0)
        goto done;
    err = VKF_ENOMEM;
    if (!(dst = av_frame_alloc()) || !(pkt = av_packet_alloc()))
        goto done;
    dst->format = pf;
    dst->width = src->width;
    dst->height = src->height;
    if (av_frame_get_buffer(dst, 0) < 0)
        goto done;
    err = VKF_EIO;
    sws = sws_getContext(src->width, src->height, src->format, dst->width, dst->height, pf,
                         SWS_BICUBIC, NULL, NULL, NULL);
    if (!sws || sws_scale(sws, (const uint8_t *const *)src->data, src->linesize, 0,
                          src->height, dst->data, dst->linesize) < 0)
        goto done;
    if (jpeg)
        dst->quality = enc->global_quality;
    if (avcodec_send_frame(enc, dst) < 0 || avcodec_send_frame(enc, NULL) < 0 ||
        avcodec_receive_packet(enc, pkt) < 0)
        goto done;
    err = VKF_ENOMEM;
    if (!(*out = vkf_malloc(pkt->size ? (size_t)pkt->size : 1)))
        goto done;
    memcpy(*out, pkt->data, (size_t)pkt->size);
    *out_len = (size_t)pkt->size;
    *content_type = jpeg ? "image/jpeg" : "image/webp";
    err = 0;
done:
    sws_freeContext(sws);
    av_packet_free(&pkt);
    av_frame_free(&dst);
    av_frame_free(&src);
    avcodec_free_context(&enc);
    return err;
}
