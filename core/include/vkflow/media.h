/*
 * vkflow — the VIDEO and AUDIO link types (ComfyUI's comfy_api video and
 * audio inputs) and the FFmpeg-backed video reader / writer behind them.
 *
 *   AUDIO   {waveform [B, C, S] f32, sample_rate}; kept in host memory
 *           (audio is small next to frames and is never computed on).
 *   VIDEO   either a file (LoadVideo: decoded lazily, frame by frame, when a
 *           consumer asks for components — ComfyUI's VideoFromFile) or
 *           components (CreateVideo: an IMAGE batch, optional AUDIO and a
 *           frame rate — ComfyUI's VideoFromComponents).
 *
 * Objects are immutable once made.  Constructors that take references say
 * so.
 */
#ifndef VKFLOW_MEDIA_H
#define VKFLOW_MEDIA_H

#include "gpu.h"
#include "value.h"

extern const vkf_object_type vkf_type_audio;   /* "AUDIO" */
extern const vkf_object_type vkf_type_video;   /* "VIDEO" */

typedef struct vkf_audio {
    vkf_object obj;
    int batch, channels;
    int64_t samples;         /* per channel */
    int sample_rate;
    float *waveform;         /* batch * channels * samples, planar */
} vkf_audio;

/* A zero-filled waveform [batch, channels, samples]. */
int vkf_audio_create(int batch, int channels, int64_t samples, int sample_rate,
                     vkf_audio **out);
/* The AUDIO of a value (borrowed), or NULL. */
const vkf_audio *vkf_value_audio(const vkf_value *v);

/* Frame selection of a file video (the common loaders' inputs): drop the
 * first skip_first frames, then keep every every_nth-th frame, at most
 * frame_cap of them (0 = all). */
typedef struct vkf_video_select {
    int64_t frame_cap, skip_first, every_nth;
} vkf_video_select;

typedef struct vkf_video {
    vkf_object obj;
    /* File-backed: path, selection; width/height/frame rate probed. */
    char *path;
    vkf_video_select sel;
    /* Component-backed: images [B,H,W,C]; audio may be NULL. */
    vkf_tensor *images;
    vkf_audio *audio;
    int width, height;
    int fps_num, fps_den;    /* frame rate as a fraction (kept exact) */
} vkf_video;

/* VIDEO from a file: probes it (a named error in msg if it is not a video
 * FFmpeg can read). */
int vkf_video_from_file(const char *path, const vkf_video_select *sel, vkf_video **out,
                        char *msg, size_t msgsize);
/* VIDEO from components: takes images' reference; adds one to audio. */
int vkf_video_from_components(vkf_tensor *images, const vkf_audio *audio, int fps_num,
                              int fps_den, vkf_video **out);
const vkf_video *vkf_value_video(const vkf_value *v);
/* Frame rate as a fraction (n/d, reduced; d <= 1001000 or exact). */
void vkf_fps_to_fraction(double fps, int *num, int *den);

/* ---- streaming decode (core/io/video.c) ---------------------------------- */

typedef struct vkf_video_reader vkf_video_reader;

typedef struct vkf_video_info {
    int width, height;
    int fps_num, fps_den;    /* average frame rate; 1/1 if the file has none */
    int64_t declared_frames; /* the container's frame count, 0 if unknown */
    bool has_audio, has_alpha;
    const char *format;      /* demuxer name */
    const char *codec;       /* video decoder name */
} vkf_video_info;

/* Opens a file (path) or a memory buffer (path NULL: data/size, which must
 * outlive the reader).  Errors: VKF_ENOTFOUND, VKF_EPARSE (not a video,
 * corrupt header), VKF_EUNSUPPORTED (no decoder), with a message. */
int vkf_video_reader_open(const char *path, const uint8_t *data, size_t size,
                          vkf_video_reader **out, char *msg, size_t msgsize);
const vkf_video_info *vkf_video_reader_info(const vkf_video_reader *r);
/* Decodes the next frame.  rgb (width*height*3, 0..1) and alpha
 * (width*height, 0..1, may be NULL) receive it unless both are NULL (the
 * frame is skipped without conversion).  Returns 1 for a frame, 0 at the
 * end, VKF_EPARSE for corrupt or truncated data (message says which). */
int vkf_video_reader_next(vkf_video_reader *r, float *rgb, float *alpha, char *msg,
                          size_t msgsize);
/* Frames decoded so far. */
int64_t vkf_video_reader_frames(const vkf_video_reader *r);
void vkf_video_reader_close(vkf_video_reader **r);

/* The audio of a file (the last decodable audio stream), from start_s for
 * duration_s seconds (0 = to the end), as [1, C, S].  *out is NULL when the
 * file has no audio. */
int vkf_audio_read(const char *path, const uint8_t *data, size_t size, double start_s,
                   double duration_s, vkf_audio **out, char *msg, size_t msgsize);

/* ---- encoding (core/io/video.c) ----------------------------------------- */

typedef struct vkf_video_encode {
    const char *format;      /* muxer: "mp4", "webm", "matroska", "webp", "apng" */
    const char *codec;       /* encoder: "libx264", "libvpx-vp9", "libsvtav1", ... */
    const char *pix_fmt;     /* "yuv420p", "rgba", "rgb24", ... */
    int width, height, channels;   /* channels of the frames given: 3 or 4 */
    int fps_num, fps_den;
    const char *const *codec_opts; /* key, value, ..., NULL */
    const char *const *metadata;   /* container tags: key, value, ..., NULL */
    const char *const *mux_opts;   /* key, value, ..., NULL */
    const vkf_audio *audio;        /* muxed as audio_codec, or NULL */
    const char *audio_codec;       /* "aac", "libopus", ... */
} vkf_video_encode;

/* Encodes nframes frames of 8-bit pixels (frames: nframes * h * w *
 * channels) into memory: *data (vkf_malloc'ed), *size. */
int vkf_video_encode_mem(const vkf_video_encode *e, const uint8_t *frames, int64_t nframes,
                         uint8_t **data, size_t *size, char *msg, size_t msgsize);

#endif /* VKFLOW_MEDIA_H */
