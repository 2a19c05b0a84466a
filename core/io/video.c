/* Video and audio through FFmpeg's libraries (vkflow/media.h): a streaming
 * frame reader, an audio reader and an in-memory encoder/muxer. */
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/channel_layout.h>
#include <libavutil/opt.h>
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "vkflow/media.h"

#if LIBAVFORMAT_VERSION_MAJOR >= 61
#define AVIO_WBUF const uint8_t *
#else
#define AVIO_WBUF uint8_t *
#endif

static void av_msg(char *msg, size_t msgsize, const char *what, int ret)
{
    char e[AV_ERROR_MAX_STRING_SIZE] = {0};
    av_strerror(ret, e, sizeof(e));
    snprintf(msg, msgsize, "%s: %s", what, e);
}

/* ---- memory I/O -------------------------------------------------------------- */

typedef struct membuf {
    uint8_t *d;
    size_t size, cap, pos;
    bool oom;
} membuf;

static int mem_read(void *opaque, uint8_t *buf, int n)
{
    membuf *m = opaque;
    if (m->pos >= m->size)
        return AVERROR_EOF;
    size_t k = m->size - m->pos < (size_t)n ? m->size - m->pos : (size_t)n;
    memcpy(buf, m->d + m->pos, k);
    m->pos += k;
    return (int)k;
}

static int mem_write(void *opaque, AVIO_WBUF buf, int n)
{
    membuf *m = opaque;
    if (n < 0)
        return AVERROR(EINVAL);
    if (m->pos + (size_t)n > m->cap) {
        size_t cap = (m->pos + (size_t)n) * 2 + 4096;
        uint8_t *nd = vkf_realloc(m->d, cap);
        if (!nd) {
            m->oom = true;
            return AVERROR(ENOMEM);
        }
        m->d = nd;
        m->cap = cap;
    }
    if (m->pos > m->size)
        memset(m->d + m->size, 0, m->pos - m->size);
    memcpy(m->d + m->pos, buf, (size_t)n);
    m->pos += (size_t)n;
    if (m->pos > m->size)
        m->size = m->pos;
    return n;
}

static int64_t mem_seek(void *opaque, int64_t off, int whence)
{
    membuf *m = opaque;
    int64_t base;
    switch (whence & ~AVSEEK_FORCE) {
    case AVSEEK_SIZE: return (int64_t)m->size;
    case SEEK_SET: base = 0; break;
    case SEEK_CUR: base = (int64_t)m->pos; break;
    case SEEK_END: base = (int64_t)m->size; break;
    default: return AVERROR(EINVAL);
    }
    if (base + off < 0 || base + off > (int64_t)1 << 40)
        return AVERROR(EINVAL);
    m->pos = (size_t)(base + off);
    return (int64_t)m->pos;
}

/* An AVFormatContext reading path or data.  The format is probed first so
 * that "not a media file" and "a media file with a broken header" get
 * different messages.  The AVIOContext is always ours (custom I/O). */
static int open_input(const char *path, const uint8_t *data, size_t size, membuf *mem,
                      AVFormatContext **out, char *msg, size_t msgsize)
{
    *out = NULL;
    AVIOContext *pb = NULL;
    AVFormatContext *fmt = NULL;
    const AVInputFormat *ifmt = NULL;
    int ret;
    if (path) {
        if ((ret = avio_open(&pb, path, AVIO_FLAG_READ)) < 0) {
            if (ret == AVERROR(ENOENT)) {
                snprintf(msg, msgsize, "file not found");
                return VKF_ENOTFOUND;
            }
            av_msg(msg, msgsize, "cannot open the file", ret);
            return VKF_EIO;
        }
    } else {
        *mem = (membuf){.d = (uint8_t *)data, .size = size};
        uint8_t *iobuf = av_malloc(32768);
        pb = iobuf ? avio_alloc_context(iobuf, 32768, 0, mem, mem_read, NULL, mem_seek) : NULL;
        if (!pb) {
            av_free(iobuf);
            snprintf(msg, msgsize, "out of memory");
            return VKF_ENOMEM;
        }
    }
    /* A score at or below AVPROBE_SCORE_EXTENSION is the file name alone. */
    if ((ret = av_probe_input_buffer2(pb, &ifmt, path ? path : "", NULL, 0, 0)) <=
            AVPROBE_SCORE_EXTENSION || !ifmt) {
        if (ret == AVERROR(ENOMEM)) {
            snprintf(msg, msgsize, "out of memory");
            ret = VKF_ENOMEM;
        } else {
            snprintf(msg, msgsize, "not a media file FFmpeg can read");
            ret = VKF_EPARSE;
        }
        goto fail;
    }
    if (!(fmt = avformat_alloc_context())) {
        snprintf(msg, msgsize, "out of memory");
        ret = VKF_ENOMEM;
        goto fail;
    }
    fmt->pb = pb;
    fmt->flags |= AVFMT_FLAG_CUSTOM_IO;
    fmt->error_recognition |= AV_EF_EXPLODE;
    if ((ret = avformat_open_input(&fmt, path ? path : "", ifmt, NULL)) < 0) {
        char what[128];
        snprintf(what, sizeof(what), "truncated or corrupt %s file (bad header)", ifmt->name);
        av_msg(msg, msgsize, what, ret);
        ret = ret == AVERROR(ENOMEM) ? VKF_ENOMEM : VKF_EPARSE;
        goto fail;
    }
    if ((ret = avformat_find_stream_info(fmt, NULL)) < 0) {
        char what[128];
        snprintf(what, sizeof(what), "truncated or corrupt %s file (stream info)", ifmt->name);
        av_msg(msg, msgsize, what, ret);
        avformat_close_input(&fmt);
        ret = VKF_EPARSE;
        goto fail;
    }
    *out = fmt;
    return 0;
fail:
    if (pb) {
        if (path) {
            avio_closep(&pb);
        } else {
            av_freep(&pb->buffer);
            avio_context_free(&pb);
        }
    }
    return ret;
}

static void close_input(AVFormatContext **fmt, bool custom)
{
    if (!*fmt)
        return;
    AVIOContext *pb = (*fmt)->pb;
    avformat_close_input(fmt);
    if (!custom) {
        avio_closep(&pb);
    } else if (pb) {
        av_freep(&pb->buffer);
        avio_context_free(&pb);
    }
}

/* ---- video reader --------------------------------------------------------------- */

struct vkf_video_reader {
    AVFormatContext *fmt;
    bool custom_io;
    membuf mem;
    AVCodecContext *dec;
    int vstream;
    AVPacket *pkt;
    AVFrame *fr;
    struct SwsContext *sws;
    uint8_t *pix;        /* width*height*4 */
    vkf_video_info info;
    int64_t frames;
    bool sent_eof, corrupt_pkt, done;
    double data_end;     /* latest packet end seen in any stream, seconds */
    char demux_err[160]; /* first error the demuxer logged (it resyncs past damage) */
};

/* Demuxers skip damaged data with only a log line (matroska resyncs to the
 * next cluster): a log callback, chained to FFmpeg's, records the first
 * error a reader's demuxer logs while that reader reads on this thread. */
static _Thread_local vkf_video_reader *tl_reader;
static pthread_once_t log_once = PTHREAD_ONCE_INIT;

static void log_cb(void *avcl, int level, const char *fmt, va_list vl)
{
    vkf_video_reader *r = tl_reader;
    if (r && avcl == r->fmt && level <= AV_LOG_ERROR && !r->demux_err[0]) {
        va_list c;
        va_copy(c, vl);
        vsnprintf(r->demux_err, sizeof(r->demux_err), fmt, c);
        va_end(c);
        size_t n = strlen(r->demux_err);
        while (n && (r->demux_err[n - 1] == '\n' || r->demux_err[n - 1] == ' '))
            r->demux_err[--n] = 0;
        if (!n)
            snprintf(r->demux_err, sizeof(r->demux_err), "error");
    }
    av_log_default_callback(avcl, level, fmt, vl);
}

static void log_init(void)
{
    av_log_set_callback(log_cb);
}

int vkf_video_reader_open(const char *path, const uint8_t *data, size_t size,
                          vkf_video_reader **out, char *msg, size_t msgsize)
{
    *out = NULL;
    vkf_video_reader *r = vkf_calloc(1, sizeof(*r));
    if (!r) {
        snprintf(msg, msgsize, "out of memory");
        return VKF_ENOMEM;
    }
    r->custom_io = !path;
    int err = open_input(path, data, size, &r->mem, &r->fmt, msg, msgsize);
    if (err < 0) {
        vkf_free(r);
        return err;
    }
    const AVCodec *codec = NULL;
    int ret = av_find_best_stream(r->fmt, AVMEDIA_TYPE_VIDEO, -1, -1, &codec, 0);
    if (ret == AVERROR_STREAM_NOT_FOUND) {
        snprintf(msg, msgsize, "the file has no video stream");
        err = VKF_EPARSE;
        goto fail;
    }
    if (ret >= 0 && r->fmt->streams[ret]->codecpar->codec_id == AV_CODEC_ID_NONE) {
        snprintf(msg, msgsize, "truncated or corrupt %s file (video codec unknown)",
                 r->fmt->iformat->name);
        err = VKF_EPARSE;
        goto fail;
    }
    if (ret < 0 || !codec) {
        AVStream *st = NULL;
        for (unsigned i = 0; i < r->fmt->nb_streams; i++)
            if (r->fmt->streams[i]->codecpar->codec_type == AVMEDIA_TYPE_VIDEO)
                st = r->fmt->streams[i];
        if (st && st->codecpar->codec_id == AV_CODEC_ID_NONE) {
            snprintf(msg, msgsize, "truncated or corrupt %s file (video codec unknown)",
                     r->fmt->iformat->name);
            err = VKF_EPARSE;
            goto fail;
        }
        snprintf(msg, msgsize, "this FFmpeg has no decoder for the video codec (%s)",
                 st ? avcodec_get_name(st->codecpar->codec_id) : "unknown");
        err = VKF_EUNSUPPORTED;
        goto fail;
    }
    r->vstream = ret;
    AVStream *st = r->fmt->streams[ret];
    /* libvpx decodes VP8/VP9 alpha (a side channel the native decoders
     * ignore). */
    AVDictionaryEntry *alpha = av_dict_get(st->metadata, "alpha_mode", NULL, 0);
    if (alpha && !strcmp(alpha->value, "1")) {
        const AVCodec *vpx = avcodec_find_decoder_by_name(
            st->codecpar->codec_id == AV_CODEC_ID_VP9 ? "libvpx-vp9" : "libvpx");
        if (vpx && (st->codecpar->codec_id == AV_CODEC_ID_VP8 ||
                    st->codecpar->codec_id == AV_CODEC_ID_VP9))
            codec = vpx;
    }
    r->dec = avcodec_alloc_context3(codec);
    r->pkt = av_packet_alloc();
    r->fr = av_frame_alloc();
    if (!r->dec || !r->pkt || !r->fr) {
        snprintf(msg, msgsize, "out of memory");
        err = VKF_ENOMEM;
        goto fail;
    }
    if ((ret = avcodec_parameters_to_context(r->dec, st->codecpar)) < 0 ||
        (r->dec->thread_count = 1, r->dec->pkt_timebase = st->time_base,
         r->dec->err_recognition |= AV_EF_EXPLODE,
         ret = avcodec_open2(r->dec, codec, NULL)) < 0) {
        av_msg(msg, msgsize, "cannot open the video decoder", ret);
        err = VKF_EPARSE;
        goto fail;
    }
    int w = r->dec->width, h = r->dec->height;
    if (w < 1 || h < 1 || w > (1 << 14) || h > (1 << 14)) {
        snprintf(msg, msgsize, "invalid frame size %dx%d", w, h);
        err = VKF_EPARSE;
        goto fail;
    }
    AVRational fps = st->avg_frame_rate;
    if (fps.num <= 0 || fps.den <= 0)
        fps = st->r_frame_rate;
    if (fps.num <= 0 || fps.den <= 0)
        fps = (AVRational){1, 1};
    av_reduce(&fps.num, &fps.den, fps.num, fps.den, INT32_MAX);
    const AVPixFmtDescriptor *desc = av_pix_fmt_desc_get(r->dec->pix_fmt);
    r->info = (vkf_video_info){
        .width = w, .height = h, .fps_num = fps.num, .fps_den = fps.den,
        .declared_frames = st->nb_frames > 0 ? st->nb_frames : 0,
        .has_alpha = (desc && (desc->flags & AV_PIX_FMT_FLAG_ALPHA)) || alpha != NULL,
        .format = r->fmt->iformat->name, .codec = codec->name,
    };
    for (unsigned i = 0; i < r->fmt->nb_streams; i++) {
        if (r->fmt->streams[i]->codecpar->codec_type == AVMEDIA_TYPE_AUDIO)
            r->info.has_audio = true;
        else if ((int)i != r->vstream)
            r->fmt->streams[i]->discard = AVDISCARD_ALL;
    }
    r->pix = vkf_malloc((size_t)w * (size_t)h * 4);
    if (!r->pix) {
        snprintf(msg, msgsize, "out of memory");
        err = VKF_ENOMEM;
        goto fail;
    }
    *out = r;
    return 0;
fail:
    vkf_video_reader_close(&r);
    return err;
}

const vkf_video_info *vkf_video_reader_info(const vkf_video_reader *r)
{
    return &r->info;
}

int64_t vkf_video_reader_frames(const vkf_video_reader *r)
{
    return r->frames;
}

void vkf_video_reader_close(vkf_video_reader **rp)
{
    vkf_video_reader *r = *rp;
    if (!r)
        return;
    sws_freeContext(r->sws);
    av_frame_free(&r->fr);
    av_packet_free(&r->pkt);
    avcodec_free_context(&r->dec);
    close_input(&r->fmt, r->custom_io);
    vkf_free(r->pix);
    vkf_free(r);
    *rp = NULL;
}

/* Packets of every stream move data_end: a file whose streams all stop
 * well before the declared duration was cut short. */
static void track_end(vkf_video_reader *r)
{
    const AVPacket *p = r->pkt;
    int64_t ts = p->pts != AV_NOPTS_VALUE ? p->pts : p->dts;
    if (ts == AV_NOPTS_VALUE || p->stream_index < 0 || p->stream_index >= (int)r->fmt->nb_streams)
        return;
    AVRational tb = r->fmt->streams[p->stream_index]->time_base;
    double end = (double)(ts + (p->duration > 0 ? p->duration : 0)) * av_q2d(tb);
    if (r->fmt->start_time != AV_NOPTS_VALUE)
        end -= r->fmt->start_time / (double)AV_TIME_BASE;
    if (end > r->data_end)
        r->data_end = end;
}

static int convert(vkf_video_reader *r, float *rgb, float *alpha, char *msg, size_t msgsize)
{
    static const enum AVPixelFormat jfmt[][2] = {
        {AV_PIX_FMT_YUVJ420P, AV_PIX_FMT_YUV420P}, {AV_PIX_FMT_YUVJ422P, AV_PIX_FMT_YUV422P},
        {AV_PIX_FMT_YUVJ444P, AV_PIX_FMT_YUV444P}, {AV_PIX_FMT_YUVJ440P, AV_PIX_FMT_YUV440P},
        {AV_PIX_FMT_YUVJ411P, AV_PIX_FMT_YUV411P},
    };
    AVFrame *f = r->fr;
    enum AVPixelFormat src = f->format;
    int full = f->color_range == AVCOL_RANGE_JPEG;
    for (size_t k = 0; k < VKF_ARRAY_SIZE(jfmt); k++)
        if (src == jfmt[k][0]) {
            src = jfmt[k][1];
            full = 1;
        }
    int w = r->info.width, h = r->info.height;
    r->sws = sws_getCachedContext(r->sws, f->width, f->height, src, w, h, AV_PIX_FMT_RGBA,
                                  SWS_BICUBIC | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT, NULL,
                                  NULL, NULL);
    if (!r->sws) {
        snprintf(msg, msgsize, "cannot convert pixel format %s", av_get_pix_fmt_name(src));
        return VKF_EUNSUPPORTED;
    }
    int cs = f->colorspace == AVCOL_SPC_UNSPECIFIED || f->colorspace == AVCOL_SPC_RGB
                 ? SWS_CS_DEFAULT : (int)f->colorspace;
    const int *coefs = sws_getCoefficients(cs);
    sws_setColorspaceDetails(r->sws, coefs, full, sws_getCoefficients(SWS_CS_DEFAULT), 1, 0,
                             1 << 16, 1 << 16);
    uint8_t *dst[4] = {r->pix};
    int dst_ls[4] = {w * 4};
    sws_scale(r->sws, (const uint8_t *const *)f->data, f->linesize, 0, f->height, dst, dst_ls);
    size_t npx = (size_t)w * (size_t)h;
    for (size_t i = 0; i < npx; i++) {
        for (int c = 0; c < 3; c++)
            rgb[i * 3 + (size_t)c] = r->pix[i * 4 + (size_t)c] / 255.0f;
        if (alpha)
            alpha[i] = r->pix[i * 4 + 3] / 255.0f;
    }
    return 0;
}

int vkf_video_reader_next(vkf_video_reader *r, float *rgb, float *alpha, char *msg,
                          size_t msgsize)
{
    if (r->done)
        return 0;
    for (;;) {
        int ret = avcodec_receive_frame(r->dec, r->fr);
        if (ret == 0) {
            int err = 0;
            if (r->fr->decode_error_flags || (r->fr->flags & AV_FRAME_FLAG_CORRUPT)) {
                snprintf(msg, msgsize, "corrupt video data in frame %lld",
                         (long long)r->frames + 1);
                err = VKF_EPARSE;
            } else if (rgb) {
                err = convert(r, rgb, alpha, msg, msgsize);
            }
            av_frame_unref(r->fr);
            if (err < 0)
                return err;
            r->frames++;
            return 1;
        }
        if (ret == AVERROR_EOF) {
            r->done = true;
            if (r->corrupt_pkt) {
                snprintf(msg, msgsize, "truncated video: the file ends inside frame data "
                         "(after %lld frames)", (long long)r->frames);
                return VKF_EPARSE;
            }
            double dur = r->fmt->duration > 0 ? r->fmt->duration / (double)AV_TIME_BASE : 0;
            double slack = 0.5 + 2.0 * r->info.fps_den / r->info.fps_num;
            if (dur > 0 && r->data_end < dur - slack) {
                snprintf(msg, msgsize, "truncated video: the data ends at %.2f s of the %.2f s "
                         "the container declares (after %lld frames)", r->data_end, dur,
                         (long long)r->frames);
                return VKF_EPARSE;
            }
            if (r->info.declared_frames > r->frames) {
                snprintf(msg, msgsize, "truncated video: %lld of the %lld frames the "
                         "container declares", (long long)r->frames,
                         (long long)r->info.declared_frames);
                return VKF_EPARSE;
            }
            return 0;
        }
        if (ret != AVERROR(EAGAIN)) {
            av_msg(msg, msgsize, "truncated or corrupt video data", ret);
            return VKF_EPARSE;
        }
        if (r->sent_eof) {
            r->done = true;
            return 0;
        }
        pthread_once(&log_once, log_init);
        tl_reader = r;
        ret = av_read_frame(r->fmt, r->pkt);
        tl_reader = NULL;
        if (r->demux_err[0]) {
            av_packet_unref(r->pkt);
            snprintf(msg, msgsize, "truncated or corrupt %s data after frame %lld: %s", r->info.format,
                     (long long)r->frames, r->demux_err);
            r->done = true;
            return VKF_EPARSE;
        }
        if (ret == AVERROR_EOF) {
            r->sent_eof = true;
            avcodec_send_packet(r->dec, NULL);
            continue;
        }
        if (ret == AVERROR(ENOMEM)) {
            snprintf(msg, msgsize, "out of memory");
            return VKF_ENOMEM;
        }
        if (ret < 0) {
            av_msg(msg, msgsize, "corrupt or truncated container", ret);
            return VKF_EPARSE;
        }
        track_end(r);
        if (r->pkt->stream_index != r->vstream) {
            av_packet_unref(r->pkt);
            continue;
        }
        if (r->pkt->flags & AV_PKT_FLAG_CORRUPT)
            r->corrupt_pkt = true;
        ret = avcodec_send_packet(r->dec, r->pkt);
        av_packet_unref(r->pkt);
        if (ret < 0 && ret != AVERROR(EAGAIN)) {
            char what[64];
            snprintf(what, sizeof(what), "truncated or corrupt video data after frame %lld",
                     (long long)r->frames);
            av_msg(msg, msgsize, what, ret);
            return ret == AVERROR(ENOMEM) ? VKF_ENOMEM : VKF_EPARSE;
        }
    }
}

/* ---- audio reader -------------------------------------------------------------- */

static double sample_at(const AVFrame *f, int ch, int i)
{
    enum AVSampleFormat fmt = f->format;
    int planar = av_sample_fmt_is_planar(fmt);
    int nch = f->ch_layout.nb_channels;
    const uint8_t *p = planar ? f->extended_data[ch] : f->extended_data[0];
    size_t idx = planar ? (size_t)i : (size_t)i * (size_t)nch + (size_t)ch;
    switch (av_get_packed_sample_fmt(fmt)) {
    case AV_SAMPLE_FMT_U8: return (p[idx] - 128) / 128.0;
    case AV_SAMPLE_FMT_S16: return ((const int16_t *)p)[idx] / 32768.0;
    case AV_SAMPLE_FMT_S32: return ((const int32_t *)p)[idx] / 2147483648.0;
    case AV_SAMPLE_FMT_S64: return (double)((const int64_t *)p)[idx] / 9223372036854775808.0;
    case AV_SAMPLE_FMT_FLT: return ((const float *)p)[idx];
    case AV_SAMPLE_FMT_DBL: return ((const double *)p)[idx];
    default: return 0.0;
    }
}

int vkf_audio_read(const char *path, const uint8_t *data, size_t size, double start_s,
                   double duration_s, vkf_audio **out, char *msg, size_t msgsize)
{
    *out = NULL;
    membuf mem;
    AVFormatContext *fmt = NULL;
    AVCodecContext *dec = NULL;
    AVPacket *pkt = NULL;
    AVFrame *fr = NULL;
    float *buf = NULL;
    int64_t n = 0, cap = 0;
    int err = open_input(path, data, size, &mem, &fmt, msg, msgsize);
    if (err < 0)
        return err;
    /* The last audio stream FFmpeg can decode (as ComfyUI picks it). */
    int si = -1;
    const AVCodec *codec = NULL;
    for (int i = (int)fmt->nb_streams - 1; i >= 0 && si < 0; i--) {
        AVCodecParameters *par = fmt->streams[i]->codecpar;
        if (par->codec_type == AVMEDIA_TYPE_AUDIO && (codec = avcodec_find_decoder(par->codec_id)))
            si = i;
    }
    if (si < 0)
        goto done;
    for (unsigned i = 0; i < fmt->nb_streams; i++)
        if ((int)i != si)
            fmt->streams[i]->discard = AVDISCARD_ALL;
    dec = avcodec_alloc_context3(codec);
    pkt = av_packet_alloc();
    fr = av_frame_alloc();
    if (!dec || !pkt || !fr) {
        err = VKF_ENOMEM;
        goto done;
    }
    int ret;
    if ((ret = avcodec_parameters_to_context(dec, fmt->streams[si]->codecpar)) < 0 ||
        (ret = avcodec_open2(dec, codec, NULL)) < 0) {
        av_msg(msg, msgsize, "cannot open the audio decoder", ret);
        err = VKF_EPARSE;
        goto done;
    }
    int rate = 0, nch = 0;
    int64_t skip = 0, want = -1, seen = 0;
    bool eof = false;
    while (!eof || ret != AVERROR_EOF) {
        ret = avcodec_receive_frame(dec, fr);
        if (ret == AVERROR(EAGAIN)) {
            if (eof)
                break;
            ret = av_read_frame(fmt, pkt);
            if (ret < 0) {
                eof = true;
                avcodec_send_packet(dec, NULL);
                ret = 0;
                continue;
            }
            if (pkt->stream_index == si)
                avcodec_send_packet(dec, pkt);   /* bad audio packets are dropped */
            av_packet_unref(pkt);
            continue;
        }
        if (ret == AVERROR_EOF)
            break;
        if (ret < 0) {
            ret = 0;
            continue;
        }
        if (!rate) {
            rate = fr->sample_rate;
            nch = fr->ch_layout.nb_channels;
            if (rate < 1 || nch < 1 || nch > 64) {
                snprintf(msg, msgsize, "invalid audio parameters");
                err = VKF_EPARSE;
                goto done;
            }
            skip = (int64_t)llround(start_s * rate);
            want = duration_s > 0 ? (int64_t)llround(duration_s * rate) : -1;
        }
        if (fr->sample_rate == rate && fr->ch_layout.nb_channels == nch) {
            for (int i = 0; i < fr->nb_samples; i++, seen++) {
                if (seen < skip || (want >= 0 && n >= want))
                    continue;
                if (n == cap) {
                    int64_t ncap = cap ? cap * 2 : 65536;
                    float *nb = vkf_realloc(buf, (size_t)ncap * (size_t)nch * sizeof(float));
                    if (!nb) {
                        err = VKF_ENOMEM;
                        goto done;
                    }
                    buf = nb;
                    cap = ncap;
                }
                for (int c = 0; c < nch; c++)
                    buf[n * nch + c] = (float)sample_at(fr, c, i);
                n++;
            }
        }
        av_frame_unref(fr);
        if (want >= 0 && n >= want)
            break;
    }
    if (rate) {
        vkf_audio *a;
        if ((err = vkf_audio_create(1, nch, n, rate, &a)) < 0)
            goto done;
        for (int64_t i = 0; i < n; i++)
            for (int c = 0; c < nch; c++)
                a->waveform[(size_t)c * (size_t)n + (size_t)i] = buf[i * nch + c];
        *out = a;
    }
done:
    if (err == VKF_ENOMEM)
        snprintf(msg, msgsize, "out of memory");
    vkf_free(buf);
    av_frame_free(&fr);
    av_packet_free(&pkt);
    avcodec_free_context(&dec);
    close_input(&fmt, !path);
    return err;
}

/* ---- encoder --------------------------------------------------------------------- */

static int dict_from(AVDictionary **d, const char *const *kv)
{
    for (; kv && kv[0] && kv[1]; kv += 2)
        if (av_dict_set(d, kv[0], kv[1], 0) < 0)
            return VKF_ENOMEM;
    return 0;
}

typedef struct enc_state {
    AVFormatContext *oc;
    AVCodecContext *venc, *aenc;
    AVStream *vst, *ast;
    AVPacket *pkt;
    AVFrame *afr;
    int64_t apos;     /* audio samples sent */
} enc_state;

static int drain(enc_state *s, AVCodecContext *enc, AVStream *st)
{
    for (;;) {
        int ret = avcodec_receive_packet(enc, s->pkt);
        if (ret == AVERROR(EAGAIN) || ret == AVERROR_EOF)
            return 0;
        if (ret < 0)
            return ret;
        av_packet_rescale_ts(s->pkt, enc->time_base, st->time_base);
        s->pkt->stream_index = st->index;
        if ((ret = av_interleaved_write_frame(s->oc, s->pkt)) < 0)
            return ret;
    }
}

/* Sends audio up to sample `upto` (or everything and a flush if upto < 0). */
static int send_audio(enc_state *s, const vkf_audio *a, int64_t upto)
{
    int64_t end = upto < 0 || upto > a->samples ? a->samples : upto;
    int fs = s->aenc->frame_size > 0 ? s->aenc->frame_size : 1024;
    int ret;
    while (s->apos < end && (upto < 0 || end - s->apos >= fs)) {
        int k = (int)(end - s->apos < fs ? end - s->apos : fs);
        AVFrame *f = s->afr;
        av_frame_unref(f);
        f->format = s->aenc->sample_fmt;
        f->nb_samples = (s->aenc->codec->capabilities & AV_CODEC_CAP_VARIABLE_FRAME_SIZE) ||
                                s->aenc->frame_size <= 0 ? k : fs;
        f->sample_rate = s->aenc->sample_rate;
        if ((ret = av_channel_layout_copy(&f->ch_layout, &s->aenc->ch_layout)) < 0 ||
            (ret = av_frame_get_buffer(f, 0)) < 0)
            return ret;
        av_samples_set_silence(f->extended_data, 0, f->nb_samples, a->channels, f->format);
        bool planar = av_sample_fmt_is_planar(f->format);
        enum AVSampleFormat pf = av_get_packed_sample_fmt(f->format);
        for (int c = 0; c < a->channels; c++) {
            const float *src = a->waveform + (size_t)c * (size_t)a->samples + (size_t)s->apos;
            for (int i = 0; i < k; i++) {
                float v = src[i] < -1.0f ? -1.0f : src[i] > 1.0f ? 1.0f : src[i];
                size_t idx = planar ? (size_t)i : (size_t)i * (size_t)a->channels + (size_t)c;
                uint8_t *p = planar ? f->extended_data[c] : f->extended_data[0];
                if (pf == AV_SAMPLE_FMT_FLT)
                    ((float *)p)[idx] = v;
                else if (pf == AV_SAMPLE_FMT_S16)
                    ((int16_t *)p)[idx] = (int16_t)lrintf(v * 32767.0f);
                else if (pf == AV_SAMPLE_FMT_S32)
                    ((int32_t *)p)[idx] = (int32_t)lrint(v * 2147483647.0);
                else if (pf == AV_SAMPLE_FMT_DBL)
                    ((double *)p)[idx] = v;
            }
        }
        f->pts = s->apos;
        s->apos += k;
        if ((ret = avcodec_send_frame(s->aenc, f)) < 0 || (ret = drain(s, s->aenc, s->ast)) < 0)
            return ret;
    }
    if (upto < 0) {
        if ((ret = avcodec_send_frame(s->aenc, NULL)) < 0 ||
            (ret = drain(s, s->aenc, s->ast)) < 0)
            return ret;
    }
    return 0;
}

int vkf_video_encode_mem(const vkf_video_encode *e, const uint8_t *frames, int64_t nframes,
                         uint8_t **data, size_t *size, char *msg, size_t msgsize)
{
    *data = NULL;
    *size = 0;
    enc_state s = {0};
    membuf mem = {0};
    AVIOContext *pb = NULL;
    AVDictionary *copts = NULL, *mopts = NULL;
    AVFrame *vf = NULL;
    struct SwsContext *sws = NULL;
    int err = 0, ret = 0;
    const char *what = "encoding failed";
    const AVCodec *vc = avcodec_find_encoder_by_name(e->codec);
    const AVCodec *ac = e->audio ? avcodec_find_encoder_by_name(e->audio_codec) : NULL;
    enum AVPixelFormat pf = av_get_pix_fmt(e->pix_fmt);
    if (!vc || (e->audio && !ac) || pf == AV_PIX_FMT_NONE) {
        snprintf(msg, msgsize, "this FFmpeg has no %s encoder",
                 !vc ? e->codec : pf == AV_PIX_FMT_NONE ? e->pix_fmt : e->audio_codec);
        return VKF_EUNSUPPORTED;
    }
    if (nframes < 1 || e->width < 1 || e->height < 1 || (e->channels != 3 && e->channels != 4)) {
        snprintf(msg, msgsize, "nothing to encode");
        return VKF_EINVAL;
    }
    if ((ret = avformat_alloc_output_context2(&s.oc, NULL, e->format, NULL)) < 0) {
        what = "cannot create the container";
        goto fail;
    }
    uint8_t *iobuf = av_malloc(65536);
    pb = iobuf ? avio_alloc_context(iobuf, 65536, 1, &mem, NULL, mem_write, mem_seek) : NULL;
    s.pkt = av_packet_alloc();
    s.afr = av_frame_alloc();
    vf = av_frame_alloc();
    s.venc = avcodec_alloc_context3(vc);
    if (!pb || !s.pkt || !s.afr || !vf || !s.venc) {
        if (!pb)
            av_free(iobuf);
        err = VKF_ENOMEM;
        goto fail;
    }
    s.oc->pb = pb;
    s.oc->flags |= AVFMT_FLAG_CUSTOM_IO;
    s.venc->width = e->width;
    s.venc->height = e->height;
    s.venc->pix_fmt = pf;
    s.venc->time_base = (AVRational){e->fps_den, e->fps_num};
    s.venc->framerate = (AVRational){e->fps_num, e->fps_den};
    s.venc->thread_count = 2;
    if (pf == AV_PIX_FMT_YUV420P || pf == AV_PIX_FMT_YUV420P10LE) {
        s.venc->color_range = AVCOL_RANGE_MPEG;
        s.venc->colorspace = AVCOL_SPC_BT709;
        s.venc->color_primaries = AVCOL_PRI_BT709;
        s.venc->color_trc = AVCOL_TRC_IEC61966_2_1;
    }
    if (s.oc->oformat->flags & AVFMT_GLOBALHEADER)
        s.venc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    if ((err = dict_from(&copts, e->codec_opts)) < 0 || (err = dict_from(&mopts, e->mux_opts)) < 0 ||
        (err = dict_from(&s.oc->metadata, e->metadata)) < 0)
        goto fail;
    if ((ret = avcodec_open2(s.venc, vc, &copts)) < 0) {
        what = "cannot open the video encoder";
        goto fail;
    }
    if (!(s.vst = avformat_new_stream(s.oc, NULL))) {
        err = VKF_ENOMEM;
        goto fail;
    }
    s.vst->time_base = s.venc->time_base;
    s.vst->avg_frame_rate = s.venc->framerate;
    if ((ret = avcodec_parameters_from_context(s.vst->codecpar, s.venc)) < 0)
        goto fail;
    if (e->audio) {
        const vkf_audio *a = e->audio;
        s.aenc = avcodec_alloc_context3(ac);
        if (!s.aenc) {
            err = VKF_ENOMEM;
            goto fail;
        }
        s.aenc->sample_rate = a->sample_rate;
        av_channel_layout_default(&s.aenc->ch_layout, a->channels);
        s.aenc->sample_fmt = ac->sample_fmts ? ac->sample_fmts[0] : AV_SAMPLE_FMT_FLTP;
        s.aenc->time_base = (AVRational){1, a->sample_rate};
        if (ac->supported_samplerates) {
            bool ok = false;
            for (const int *r = ac->supported_samplerates; *r; r++)
                ok |= *r == a->sample_rate;
            if (!ok) {
                snprintf(msg, msgsize, "the %s encoder does not take %d Hz audio",
                         e->audio_codec, a->sample_rate);
                err = VKF_EUNSUPPORTED;
                goto fail;
            }
        }
        if (s.oc->oformat->flags & AVFMT_GLOBALHEADER)
            s.aenc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
        if ((ret = avcodec_open2(s.aenc, ac, NULL)) < 0) {
            what = "cannot open the audio encoder";
            goto fail;
        }
        if (!(s.ast = avformat_new_stream(s.oc, NULL))) {
            err = VKF_ENOMEM;
            goto fail;
        }
        s.ast->time_base = s.aenc->time_base;
        if ((ret = avcodec_parameters_from_context(s.ast->codecpar, s.aenc)) < 0)
            goto fail;
    }
    if ((ret = avformat_write_header(s.oc, &mopts)) < 0) {
        what = "cannot write the container header";
        goto fail;
    }
    enum AVPixelFormat in_fmt = e->channels == 4 ? AV_PIX_FMT_RGBA : AV_PIX_FMT_RGB24;
    sws = sws_getContext(e->width, e->height, in_fmt, e->width, e->height, pf,
                         SWS_BICUBIC | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT, NULL, NULL, NULL);
    if (!sws) {
        snprintf(msg, msgsize, "cannot convert to %s", e->pix_fmt);
        err = VKF_EUNSUPPORTED;
        goto fail;
    }
    if (pf == AV_PIX_FMT_YUV420P || pf == AV_PIX_FMT_YUV420P10LE) {
        const int *c709 = sws_getCoefficients(SWS_CS_ITU709);
        sws_setColorspaceDetails(sws, c709, 1, c709, 0, 0, 1 << 16, 1 << 16);
    }
    size_t fbytes = (size_t)e->width * (size_t)e->height * (size_t)e->channels;
    for (int64_t i = 0; i < nframes; i++) {
        av_frame_unref(vf);
        vf->format = pf;
        vf->width = e->width;
        vf->height = e->height;
        if ((ret = av_frame_get_buffer(vf, 0)) < 0)
            goto fail;
        const uint8_t *src[4] = {frames + (size_t)i * fbytes};
        int src_ls[4] = {e->width * e->channels};
        sws_scale(sws, src, src_ls, 0, e->height, vf->data, vf->linesize);
        vf->pts = i;
        if ((ret = avcodec_send_frame(s.venc, vf)) < 0 || (ret = drain(&s, s.venc, s.vst)) < 0)
            goto fail;
        if (e->audio) {
            int64_t upto = (int64_t)((i + 1) * (int64_t)e->audio->sample_rate * e->fps_den /
                                     e->fps_num);
            if ((ret = send_audio(&s, e->audio, upto)) < 0)
                goto fail;
        }
    }
    if ((ret = avcodec_send_frame(s.venc, NULL)) < 0 || (ret = drain(&s, s.venc, s.vst)) < 0)
        goto fail;
    if (e->audio && (ret = send_audio(&s, e->audio, -1)) < 0)
        goto fail;
    if ((ret = av_write_trailer(s.oc)) < 0) {
        what = "cannot finish the container";
        goto fail;
    }
    avio_flush(pb);
    if (mem.oom) {
        err = VKF_ENOMEM;
        goto fail;
    }
    *data = mem.d;
    *size = mem.size;
    mem.d = NULL;
fail:
    if (err == 0 && ret < 0) {
        av_msg(msg, msgsize, what, ret);
        err = ret == AVERROR(ENOMEM) ? VKF_ENOMEM : VKF_EIO;
    }
    if (err == VKF_ENOMEM)
        snprintf(msg, msgsize, "out of memory");
    sws_freeContext(sws);
    av_frame_free(&vf);
    av_frame_free(&s.afr);
    av_packet_free(&s.pkt);
    avcodec_free_context(&s.venc);
    avcodec_free_context(&s.aenc);
    av_dict_free(&copts);
    av_dict_free(&mopts);
    if (s.oc)
        avformat_free_context(s.oc);
    if (pb) {
        av_freep(&pb->buffer);
        avio_context_free(&pb);
    }
    vkf_free(mem.d);
    return err;
}
