/* ComfyUI's video nodes (comfy_extras/nodes_video.py: LoadVideo,
 * GetVideoComponents, CreateVideo, SaveVideo, SaveWEBM) and animation
 * savers (nodes_images.py: SaveAnimatedWEBP, SaveAnimatedPNG), on FFmpeg's
 * libraries through vkflow/media.h.
 *
 * LoadVideo makes a file-backed VIDEO and decodes nothing: frames are
 * decoded one at a time by the consumer, and only the selected ones
 * (frame_load_cap / skip_first_frames / select_every_nth, the common
 * loaders' inputs, optional here) are kept, so asking for N frames of a
 * long clip holds N frames in memory.  Outputs carry the prompt and the
 * workflow as ComfyUI writes them (container tags, WebP EXIF, APNG "comf"
 * chunks) and are written atomically. */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <zlib.h>

#include "nodes.h"
#include "save_naming.h"
#include "vkflow/media.h"
#include "vkflow/paths.h"
#include "vkflow/types.h"

/* ---- output naming (folder_paths.get_save_image_path) -------------------------- */

typedef struct save_target {
    char *subfolder;     /* relative, "" for the root */
    char *stem;
    char *dir;           /* full path of the folder */
    int counter;
} save_target;

static void target_clear(save_target *t)
{
    vkf_free(t->subfolder);
    vkf_free(t->stem);
    vkf_free(t->dir);
    *t = (save_target){0};
}

static int save_target_make(vkf_exec_ctx *ctx, const char *node, const char *prefix, int64_t w,
                            int64_t h, save_target *t)
{
    *t = (save_target){0};
    const vkf_paths *paths = vkf_exec_paths(ctx);
    char *expanded = vkf_save_expand_vars(prefix, w, h), *normed = expanded ? vkf_save_normpath(expanded) : NULL;
    char *probe = NULL;
    int err = 0;
    VKF_CHECK_ALLOC(normed);
    const char *slash = strrchr(normed, '/');
    t->stem = vkf_strdup(slash ? slash + 1 : normed);
    t->subfolder = slash ? vkf_strndup(normed, (size_t)(slash - normed)) : vkf_strdup("");
    VKF_CHECK_ALLOC(t->stem);
    VKF_CHECK_ALLOC(t->subfolder);
    if (!*t->stem || !strcmp(t->stem, ".") || (slash && !*t->subfolder)) {
        err = vkf_exec_error(ctx, "%s: invalid filename_prefix '%s'", node, prefix);
        goto fail;
    }
    if (!vkf_paths_output_dir(paths)) {
        err = vkf_exec_error(ctx, "%s: no output directory configured", node);
        goto fail;
    }
    if (vkf_paths_output_file(paths, false, t->subfolder, "probe", &probe) < 0) {
        err = vkf_exec_error(ctx,
                             "%s: Saving image outside the output folder is not allowed. "
                             "full_output_folder: %s, filename_prefix: %s",
                             node, t->subfolder, prefix);
        goto fail;
    }
    *strrchr(probe, '/') = 0;
    t->dir = probe;
    probe = NULL;
    t->counter = vkf_save_next_counter(t->dir, t->stem);
fail:
    vkf_free(expanded);
    vkf_free(normed);
    vkf_free(probe);
    if (err < 0)
        target_clear(t);
    return err;
}

/* Writes data to <dir>/<stem>_<counter>_.<ext> atomically and reports it
 * in the UI results. */
static int save_bytes(vkf_exec_ctx *ctx, const char *node, save_target *t, const char *ext,
                      const uint8_t *data, size_t size)
{
    char *fname = vkf_asprintf("%s_%05d_.%s", t->stem, t->counter, ext), *full = NULL;
    vkf_atomic_file *f = NULL;
    int err = 0;
    VKF_CHECK_ALLOC(fname);
    if (vkf_paths_output_file(vkf_exec_paths(ctx), false, t->subfolder, fname, &full) < 0) {
        err = vkf_exec_error(ctx, "%s: invalid output file name '%s'", node, fname);
        goto fail;
    }
    if ((err = vkf_atomic_file_open(&f, full)) < 0 ||
        (err = vkf_atomic_file_write(f, data, size)) < 0 ||
        (err = vkf_atomic_file_commit(&f)) < 0) {
        vkf_atomic_file_abort(&f);
        err = err == VKF_ENOMEM ? err
                                : vkf_exec_error(ctx, "%s: writing '%s' failed: %s", node, full,
                                                 vkf_strerror(err));
        goto fail;
    }
    err = vkf_exec_ui_file(ctx, "images", fname, t->subfolder, "output");
    t->counter++;
fail:
    vkf_free(fname);
    vkf_free(full);
    return err;
}

/* The prompt and workflow as json.dumps gives them (NULL when absent). */
typedef struct meta_json {
    char *prompt, *workflow;
} meta_json;

static int meta_get(vkf_exec_ctx *ctx, meta_json *m)
{
    *m = (meta_json){0};
    const char *pj = vkf_exec_prompt_json(ctx), *wj = vkf_exec_workflow_json(ctx);
    if (pj && !(m->prompt = vkf_json_ensure_ascii(pj)))
        return VKF_ENOMEM;
    if (wj && !(m->workflow = vkf_json_ensure_ascii(wj))) {
        vkf_free(m->prompt);
        m->prompt = NULL;
        return VKF_ENOMEM;
    }
    return 0;
}

static void meta_clear(meta_json *m)
{
    vkf_free(m->prompt);
    vkf_free(m->workflow);
    *m = (meta_json){0};
}

/* IMAGE [B,H,W,C] -> 8-bit frames with 3 or 4 channels (clamped, NaN -> 0,
 * truncated as numpy's astype(uint8)). */
static int image_frames(vkf_exec_ctx *ctx, const char *node, vkf_tensor *t, bool keep_alpha,
                        uint8_t **frames, int64_t *B, int *H, int *W, int *C)
{
    *frames = NULL;
    if (!t || vkf_tensor_ndim(t) != 4)
        return vkf_exec_error(ctx, "%s: images must be an IMAGE [B,H,W,C]", node);
    const int64_t *sh = vkf_tensor_shape(t);
    if (sh[0] < 1 || sh[1] < 1 || sh[2] < 1 || sh[3] < 1 || sh[3] > 4 || sh[1] > 16384 ||
        sh[2] > 16384)
        return vkf_exec_error(ctx, "%s: cannot save images of shape [%lld,%lld,%lld,%lld]", node,
                              (long long)sh[0], (long long)sh[1], (long long)sh[2],
                              (long long)sh[3]);
    int c_in = (int)sh[3], c_out = keep_alpha && c_in == 4 ? 4 : 3;
    size_t npx = (size_t)sh[0] * (size_t)sh[1] * (size_t)sh[2];
    float *host = vkf_malloc(npx * (size_t)c_in * sizeof(float));
    uint8_t *out = vkf_malloc(npx * (size_t)c_out);
    if (!host || !out) {
        vkf_free(host);
        vkf_free(out);
        return VKF_ENOMEM;
    }
    int err = vkf_tensor_download(t, host);
    if (err < 0) {
        vkf_free(host);
        vkf_free(out);
        return vkf_exec_error(ctx, "%s: reading the images from the GPU failed: %s", node,
                              vkf_strerror(err));
    }
    for (size_t i = 0; i < npx; i++)
        for (int c = 0; c < c_out; c++) {
            float v = host[i * (size_t)c_in + (size_t)(c < c_in ? c : 0)] * 255.0f;
            v = v > 0.0f ? v : 0.0f;
            out[i * (size_t)c_out + (size_t)c] = (uint8_t)(v < 255.0f ? v : 255.0f);
        }
    vkf_free(host);
    *frames = out;
    *B = sh[0];
    *H = (int)sh[1];
    *W = (int)sh[2];
    *C = c_out;
    return 0;
}

/* ---- decoding a file VIDEO ------------------------------------------------------ */

static bool selection_active(const vkf_video_select *s)
{
    return s->frame_cap > 0 || s->skip_first > 0 || s->every_nth > 1;
}

/* Decodes the selected frames of a file video: as floats (rgb, for IMAGE)
 * or as 8-bit RGB (bytes, for re-encoding).  Only kept frames are stored. */
static int decode_selected(vkf_exec_ctx *ctx, const char *node, const vkf_video *v, float **rgb,
                           uint8_t **bytes, int64_t *count)
{
    char msg[256];
    vkf_video_reader *r = NULL;
    const char *name = strrchr(v->path, '/') ? strrchr(v->path, '/') + 1 : v->path;
    *count = 0;
    if (rgb)
        *rgb = NULL;
    if (bytes)
        *bytes = NULL;
    int err = vkf_video_reader_open(v->path, NULL, 0, &r, msg, sizeof(msg));
    if (err < 0)
        return err == VKF_ENOMEM ? err : vkf_exec_error(ctx, "%s: '%s': %s", node, name, msg);
    const vkf_video_info *info = vkf_video_reader_info(r);
    size_t npx = (size_t)info->width * (size_t)info->height;
    float *frame = vkf_malloc(npx * 3 * sizeof(float));
    float *keep = NULL;
    uint8_t *keepb = NULL;
    int64_t n = 0, cap = 0, idx = 0;
    int64_t total = v->sel.frame_cap > 0 ? v->sel.frame_cap : info->declared_frames;
    VKF_CHECK_ALLOC(frame);
    for (;; idx++) {
        if (v->sel.frame_cap > 0 && n >= v->sel.frame_cap)
            break;
        bool want = idx >= v->sel.skip_first && (idx - v->sel.skip_first) % v->sel.every_nth == 0;
        int got = vkf_video_reader_next(r, want ? frame : NULL, NULL, msg, sizeof(msg));
        if (got == VKF_ENOMEM) {
            err = got;
            goto fail;
        }
        if (got < 0) {
            err = vkf_exec_error(ctx, "%s: '%s': %s", node, name, msg);
            goto fail;
        }
        if (got == 0)
            break;
        if (!want)
            continue;
        if (n == cap) {
            int64_t ncap = cap ? cap * 2 : 16;
            if (v->sel.frame_cap > 0 && ncap > v->sel.frame_cap)
                ncap = v->sel.frame_cap;
            if (rgb) {
                float *nk = vkf_realloc(keep, (size_t)ncap * npx * 3 * sizeof(float));
                VKF_CHECK_ALLOC(nk);
                keep = nk;
            } else {
                uint8_t *nk = vkf_realloc(keepb, (size_t)ncap * npx * 3);
                VKF_CHECK_ALLOC(nk);
                keepb = nk;
            }
            cap = ncap;
        }
        if (rgb) {
            memcpy(keep + (size_t)n * npx * 3, frame, npx * 3 * sizeof(float));
        } else {
            uint8_t *dst = keepb + (size_t)n * npx * 3;
            for (size_t i = 0; i < npx * 3; i++)
                dst[i] = (uint8_t)lrintf(frame[i] * 255.0f);
        }
        n++;
        if ((err = vkf_exec_progress(ctx, n, total > n ? total : n)) < 0)
            goto fail;
    }
    if (n == 0) {
        err = vkf_exec_error(ctx, "%s: '%s': no frames %s", node, name,
                             selection_active(&v->sel) ? "left after skip_first_frames / "
                                                         "select_every_nth" : "in the video");
        goto fail;
    }
    if (rgb)
        *rgb = keep, keep = NULL;
    else
        *bytes = keepb, keepb = NULL;
    *count = n;
fail:
    vkf_free(frame);
    vkf_free(keep);
    vkf_free(keepb);
    vkf_video_reader_close(&r);
    return err;
}

/* The audio of a file video over the selected frames' time window. */
static int file_audio(vkf_exec_ctx *ctx, const char *node, const vkf_video *v, int64_t frames,
                      vkf_audio **out)
{
    char msg[256];
    double fps = (double)v->fps_num / v->fps_den;
    double start = 0, dur = 0;
    if (selection_active(&v->sel)) {
        start = (double)v->sel.skip_first / fps;
        dur = (double)(frames * v->sel.every_nth) / fps;
    }
    int err = vkf_audio_read(v->path, NULL, 0, start, dur, out, msg, sizeof(msg));
    if (err < 0 && err != VKF_ENOMEM)
        err = vkf_exec_error(ctx, "%s: audio: %s", node, msg);
    return err;
}

/* ---- LoadVideo ----------------------------------------------------------------- */

static int load_video(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    const char *name = in[0].u.s;
    char *path = NULL, msg[256];
    vkf_video *v = NULL;
    vkf_video_select sel = {
        .frame_cap = in[1].kind == VKF_VAL_INT ? in[1].u.i : 0,
        .skip_first = in[2].kind == VKF_VAL_INT ? in[2].u.i : 0,
        .every_nth = in[3].kind == VKF_VAL_INT ? in[3].u.i : 1,
    };
    int err = vkf_paths_resolve_input(vkf_exec_paths(ctx), name, &path);
    if (err < 0)
        return vkf_exec_error(ctx, "LoadVideo: cannot find video '%s' in the input directory", name);
    err = vkf_video_from_file(path, &sel, &v, msg, sizeof(msg));
    vkf_free(path);
    if (err < 0)
        return err == VKF_ENOMEM ? err : vkf_exec_error(ctx, "LoadVideo: '%s': %s", name, msg);
    vkf_value_set_object(&out[0], &v->obj);
    return 0;
}

/* IS_CHANGED: modification time (ComfyUI) and size. */
static int load_video_fingerprint(vkf_exec_ctx *ctx, const vkf_value *in, char **key)
{
    *key = NULL;
    char *path = NULL;
    struct stat st;
    if (in[0].kind != VKF_VAL_STRING ||
        vkf_paths_resolve_input(vkf_exec_paths(ctx), in[0].u.s, &path) < 0)
        return 0;
    int ok = stat(path, &st) == 0;
    vkf_free(path);
    if (!ok)
        return 0;
    *key = vkf_asprintf("%lld.%09ld:%lld", (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec,
                        (long long)st.st_size);
    return *key ? 0 : VKF_ENOMEM;
}

static char *load_video_validate(const vkf_paths *paths, const vkf_value *in)
{
    if (in[0].kind != VKF_VAL_STRING)
        return NULL;
    char *path = NULL;
    if (vkf_paths_resolve_input(paths, in[0].u.s, &path) < 0)
        return vkf_asprintf("Invalid video file: %s", in[0].u.s);
    vkf_free(path);
    return NULL;
}

static const vkf_input_def load_video_inputs[] = {
    /* The frontend saves LoadVideo as [file, "image"]: the upload widget's
     * value follows the file, as for LoadImage. */
    {.name = "file", .type = VKF_T_COMBO, .flags = VKF_IN_IMAGE_UPLOAD, .model_folder = "input"},
    {.name = "frame_load_cap", .type = VKF_T_INT, .flags = VKF_IN_OPTIONAL, .idef = 0, .imin = 0,
     .imax = INT64_C(1) << 40, .tooltip = "At most this many frames (0 = all)."},
    {.name = "skip_first_frames", .type = VKF_T_INT, .flags = VKF_IN_OPTIONAL, .idef = 0,
     .imin = 0, .imax = INT64_C(1) << 40, .tooltip = "Frames dropped from the start."},
    {.name = "select_every_nth", .type = VKF_T_INT, .flags = VKF_IN_OPTIONAL, .idef = 1,
     .imin = 1, .imax = INT64_C(1) << 40,
     .tooltip = "Keep one frame in n after the skipped ones (the frame rate is divided by n)."},
};
static const vkf_output_def video_output[] = {{.type = "VIDEO"}};

const vkf_node_def vkf_node_LoadVideo = {
    .name = "LoadVideo",
    .display_name = "Load Video",
    .category = "image/video",
    .python_module = "comfy_extras.nodes_video",
    .inputs = load_video_inputs, .nb_inputs = 4,
    .outputs = video_output, .nb_outputs = 1,
    .execute = load_video,
    .fingerprint = load_video_fingerprint,
    .validate = load_video_validate,
};

/* ---- GetVideoComponents -------------------------------------------------------- */

static int upload_image(vkf_exec_ctx *ctx, const float *rgb, int64_t n, int h, int w,
                        vkf_value *out)
{
    vkf_gpu *gpu;
    vkf_tensor *t = NULL;
    int err = vkf_exec_gpu(ctx, &gpu);
    if (err < 0)
        return err;
    int64_t shape[4] = {n, h, w, 3};
    if ((err = vkf_tensor_create(gpu, VKF_DTYPE_F32, 4, shape, &t)) < 0 ||
        (err = vkf_tensor_upload(t, rgb)) < 0) {
        vkf_tensor_unref(&t);
        return vkf_exec_error(ctx, "GetVideoComponents: cannot store %lld frames of %dx%d on "
                              "the device: %s", (long long)n, w, h, vkf_strerror(err));
    }
    return vkf_value_set_image(out, t);
}

static int get_components(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    const vkf_video *v = vkf_value_video(&in[0]);
    const char *node = "GetVideoComponents";
    vkf_audio *audio = NULL;
    if (!v)
        return vkf_exec_error(ctx, "%s: video must be a VIDEO", node);
    double fps = (double)v->fps_num / v->fps_den;
    int err;
    if (v->images) {
        if ((err = vkf_value_set_image(&out[0], vkf_tensor_ref(v->images))) < 0)
            return err;
        if (v->audio)
            audio = (vkf_audio *)vkf_object_ref((vkf_object *)&v->audio->obj);
    } else {
        float *rgb = NULL;
        int64_t n = 0;
        if ((err = decode_selected(ctx, node, v, &rgb, NULL, &n)) < 0)
            return err;
        err = upload_image(ctx, rgb, n, v->height, v->width, &out[0]);
        vkf_free(rgb);
        if (err < 0)
            return err;
        if ((err = file_audio(ctx, node, v, n, &audio)) < 0)
            return err;
        fps /= (double)v->sel.every_nth;
    }
    /* No audio: an empty waveform (ComfyUI gives None, which no AUDIO
     * consumer accepts). */
    if (!audio && (err = vkf_audio_create(1, 1, 0, 44100, &audio)) < 0)
        return err;
    vkf_value_set_object(&out[1], &audio->obj);
    vkf_value_set_float(&out[2], fps);
    return 0;
}

static const vkf_input_def components_inputs[] = {
    {.name = "video", .type = "VIDEO", .tooltip = "The video to extract components from."},
};
static const vkf_output_def components_outputs[] = {
    {.type = "IMAGE", .name = "images"},
    {.type = "AUDIO", .name = "audio"},
    {.type = VKF_T_FLOAT, .name = "fps"},
};

const vkf_node_def vkf_node_GetVideoComponents = {
    .name = "GetVideoComponents",
    .display_name = "Extract frame",
    .category = "image/video",
    .description = "Extracts all components from a video: frames, audio, and framerate.",
    .python_module = "comfy_extras.nodes_video",
    .inputs = components_inputs, .nb_inputs = 1,
    .outputs = components_outputs, .nb_outputs = 3,
    .execute = get_components,
};

/* ---- CreateVideo ----------------------------------------------------------------- */

static int create_video(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    vkf_tensor *t = vkf_value_image(&in[0]);
    if (!t || vkf_tensor_ndim(t) != 4 || vkf_tensor_shape(t)[0] < 1)
        return vkf_exec_error(ctx, "CreateVideo: images must be an IMAGE [B,H,W,C]");
    const vkf_audio *a = in[2].kind == VKF_VAL_NONE ? NULL : vkf_value_audio(&in[2]);
    if (in[2].kind != VKF_VAL_NONE && !a)
        return vkf_exec_error(ctx, "CreateVideo: audio must be an AUDIO");
    int num, den;
    vkf_fps_to_fraction(in[1].u.f, &num, &den);
    vkf_video *v;
    int err = vkf_video_from_components(vkf_tensor_ref(t), a, num, den, &v);
    if (err < 0)
        return err;
    vkf_value_set_object(&out[0], &v->obj);
    return 0;
}

static const vkf_input_def create_inputs[] = {
    {.name = "images", .type = "IMAGE", .tooltip = "The images to create a video from."},
    {.name = "fps", .type = VKF_T_FLOAT, .fdef = 30.0, .fmin = 1.0, .fmax = 120.0, .fstep = 1.0},
    {.name = "audio", .type = "AUDIO", .flags = VKF_IN_OPTIONAL,
     .tooltip = "The audio to add to the video."},
};

const vkf_node_def vkf_node_CreateVideo = {
    .name = "CreateVideo",
    .display_name = "Create Video",
    .category = "image/video",
    .description = "Create a video from images.",
    .python_module = "comfy_extras.nodes_video",
    .inputs = create_inputs, .nb_inputs = 3,
    .outputs = video_output, .nb_outputs = 1,
    .execute = create_video,
};

/* ---- SaveVideo ------------------------------------------------------------------ */

static const char *const container_options[] = {"auto", "mp4", "mkv", "webm", NULL};
static const char *const codec_options[] = {"auto", "h264", "av1", NULL};

static int save_video(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    (void)out;
    const char *node = "SaveVideo";
    const vkf_video *v = vkf_value_video(&in[0]);
    if (!v)
        return vkf_exec_error(ctx, "%s: video must be a VIDEO", node);
    const char *prefix = in[1].u.s, *format = in[2].u.s, *codec = in[3].u.s;
    if (!strcmp(format, "auto"))
        format = "mp4";
    if (!strcmp(codec, "auto"))
        codec = !strcmp(format, "webm") ? "av1" : "h264";
    if (!strcmp(format, "webm") && strcmp(codec, "av1"))
        return vkf_exec_error(ctx, "%s: WebM output requires the AV1 codec", node);
    bool av1 = !strcmp(codec, "av1");
    save_target t = {0};
    meta_json m = {0};
    uint8_t *frames = NULL, *file = NULL;
    size_t fsize = 0;
    vkf_audio *audio = NULL;
    int64_t B = 0;
    int H = v->height, W = v->width, C = 3, err;
    char msg[256];
    if (v->images) {
        if ((err = image_frames(ctx, node, v->images, false, &frames, &B, &H, &W, &C)) < 0)
            return err;
        if (v->audio)
            audio = (vkf_audio *)vkf_object_ref((vkf_object *)&v->audio->obj);
    } else {
        if ((err = decode_selected(ctx, node, v, NULL, &frames, &B)) < 0)
            return err;
        if ((err = file_audio(ctx, node, v, B, &audio)) < 0)
            goto fail;
    }
    if ((W & 1) || (H & 1)) {
        err = vkf_exec_error(ctx, "%s: %s needs an even width and height (got %dx%d)", node,
                             codec, W, H);
        goto fail;
    }
    if ((err = save_target_make(ctx, node, prefix, W, H, &t)) < 0 || (err = meta_get(ctx, &m)) < 0)
        goto fail;
    int fps_num = v->fps_num, fps_den = v->fps_den;
    if (!v->images && v->sel.every_nth > 1)
        fps_den *= (int)(v->sel.every_nth > 1000 ? 1000 : v->sel.every_nth);
    const char *meta[6] = {0};
    int k = 0;
    if (m.workflow)
        meta[k++] = "workflow", meta[k++] = m.workflow;
    if (m.prompt)
        meta[k++] = "prompt", meta[k++] = m.prompt;
    const char *mux_opts[] = {"movflags", "use_metadata_tags", NULL};
    const char *av1_opts[] = {"preset", "8", NULL};
    bool webm = !strcmp(format, "webm");
    vkf_video_encode e = {
        .format = webm ? "webm" : !strcmp(format, "mkv") ? "matroska" : "mp4",
        .codec = av1 ? "libsvtav1" : "libx264",
        .pix_fmt = "yuv420p",
        .width = W, .height = H, .channels = C,
        .fps_num = fps_num, .fps_den = fps_den,
        .codec_opts = av1 ? av1_opts : NULL,
        .metadata = meta,
        .mux_opts = !strcmp(format, "mp4") ? mux_opts : NULL,
        .audio = audio && audio->samples > 0 ? audio : NULL,
        .audio_codec = webm ? "libvorbis" : "aac",
    };
    err = vkf_video_encode_mem(&e, frames, B, &file, &fsize, msg, sizeof(msg));
    if (err < 0) {
        err = err == VKF_ENOMEM ? err : vkf_exec_error(ctx, "%s: %s", node, msg);
        goto fail;
    }
    err = save_bytes(ctx, node, &t, !strcmp(format, "mkv") ? "mkv" : format, file, fsize);
fail:
    if (audio) {
        vkf_object *o = &audio->obj;
        vkf_object_unref(&o);
    }
    vkf_free(frames);
    vkf_free(file);
    target_clear(&t);
    meta_clear(&m);
    return err;
}

static const vkf_input_def save_video_inputs[] = {
    {.name = "video", .type = "VIDEO", .tooltip = "The video to save."},
    {.name = "filename_prefix", .type = VKF_T_STRING, .sdef = "video/ComfyUI",
     .tooltip = "The prefix for the file to save. This may include formatting information "
                "such as %date:yyyy-MM-dd% or %Empty Latent Image.width% to include values "
                "from nodes."},
    {.name = "format", .type = VKF_T_COMBO, .options = container_options, .sdef = "auto",
     .tooltip = "The format to save the video as."},
    {.name = "codec", .type = VKF_T_COMBO, .options = codec_options, .sdef = "auto",
     .tooltip = "The codec to use for the video."},
    {.name = "prompt", .type = "PROMPT", .flags = VKF_IN_HIDDEN},
    {.name = "extra_pnginfo", .type = "EXTRA_PNGINFO", .flags = VKF_IN_HIDDEN},
};

const vkf_node_def vkf_node_SaveVideo = {
    .name = "SaveVideo",
    .display_name = "Save Video",
    .category = "image/video",
    .description = "Saves the input images to your ComfyUI output directory.",
    .python_module = "comfy_extras.nodes_video",
    .inputs = save_video_inputs, .nb_inputs = 6,
    .flags = VKF_NODE_OUTPUT,
    .execute = save_video,
};

/* ---- SaveWEBM -------------------------------------------------------------------- */

static const char *const webm_codecs[] = {"vp9", "av1", NULL};

static int save_webm(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    (void)out;
    const char *node = "SaveWEBM";
    uint8_t *frames = NULL, *file = NULL;
    size_t fsize = 0;
    int64_t B;
    int H, W, C, err;
    save_target t = {0};
    meta_json m = {0};
    char msg[256], crf[32];
    if ((err = image_frames(ctx, node, vkf_value_image(&in[0]), false, &frames, &B, &H, &W, &C)) < 0)
        return err;
    bool av1 = !strcmp(in[2].u.s, "av1");
    if ((err = save_target_make(ctx, node, in[1].u.s, W, H, &t)) < 0 || (err = meta_get(ctx, &m)) < 0)
        goto fail;
    if ((W & 1) || (H & 1)) {
        err = vkf_exec_error(ctx, "%s: %s needs an even width and height (got %dx%d)", node,
                             in[2].u.s, W, H);
        goto fail;
    }
    /* Fraction(round(fps * 1000), 1000) */
    int num = (int)llround(in[3].u.f * 1000.0), den = 1000;
    if (num < 1)
        num = 1;
    for (int a = num, b = den; b || (num /= a, den /= a, false);) {
        int r = a % b;
        a = b;
        b = r;
    }
    vkf_format_double(crf, sizeof(crf), in[4].u.f);
    const char *opts_vp9[] = {"crf", crf, "b", "0", NULL};
    const char *opts_av1[] = {"crf", crf, "preset", "6", NULL};
    const char *meta[6] = {0};
    int k = 0;
    if (m.prompt)
        meta[k++] = "prompt", meta[k++] = m.prompt;
    if (m.workflow)
        meta[k++] = "workflow", meta[k++] = m.workflow;
    vkf_video_encode e = {
        .format = "webm", .codec = av1 ? "libsvtav1" : "libvpx-vp9",
        .pix_fmt = av1 ? "yuv420p10le" : "yuv420p",
        .width = W, .height = H, .channels = C, .fps_num = num, .fps_den = den,
        .codec_opts = av1 ? opts_av1 : opts_vp9, .metadata = meta,
    };
    err = vkf_video_encode_mem(&e, frames, B, &file, &fsize, msg, sizeof(msg));
    if (err < 0) {
        err = err == VKF_ENOMEM ? err : vkf_exec_error(ctx, "%s: %s", node, msg);
        goto fail;
    }
    err = save_bytes(ctx, node, &t, "webm", file, fsize);
fail:
    vkf_free(frames);
    vkf_free(file);
    target_clear(&t);
    meta_clear(&m);
    return err;
}

static const vkf_input_def save_webm_inputs[] = {
    {.name = "images", .type = "IMAGE"},
    {.name = "filename_prefix", .type = VKF_T_STRING, .sdef = "ComfyUI"},
    {.name = "codec", .type = VKF_T_COMBO, .options = webm_codecs},
    {.name = "fps", .type = VKF_T_FLOAT, .fdef = 24.0, .fmin = 0.01, .fmax = 1000.0, .fstep = 0.01},
    {.name = "crf", .type = VKF_T_FLOAT, .fdef = 32.0, .fmin = 0, .fmax = 63.0, .fstep = 1,
     .tooltip = "Higher crf means lower quality with a smaller file size, lower crf means "
                "higher quality higher filesize."},
    {.name = "prompt", .type = "PROMPT", .flags = VKF_IN_HIDDEN},
    {.name = "extra_pnginfo", .type = "EXTRA_PNGINFO", .flags = VKF_IN_HIDDEN},
};

const vkf_node_def vkf_node_SaveWEBM = {
    .name = "SaveWEBM",
    .display_name = "SaveWEBM",
    .category = "image/video",
    .python_module = "comfy_extras.nodes_video",
    .inputs = save_webm_inputs, .nb_inputs = 7,
    .flags = VKF_NODE_OUTPUT | VKF_NODE_EXPERIMENTAL,
    .execute = save_webm,
};

/* ---- SaveAnimatedWEBP / SaveAnimatedPNG ---------------------------------------- */

static void put16(uint8_t *p, unsigned v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v) { put16(p, v & 0xffff); put16(p + 2, v >> 16); }
static void put32be(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* PIL's Exif.tobytes(): "Exif\0\0", little-endian TIFF, one IFD of ASCII
 * entries (tag ascending: 0x010f "workflow:...", 0x0110 "prompt:..."). */
static int exif_blob(const meta_json *m, uint8_t **out, size_t *outsize)
{
    char *val[2] = {0};
    uint16_t tags[2];
    int n = 0, err = 0;
    if (m->workflow) {
        tags[n] = 0x010f;
        if (!(val[n++] = vkf_asprintf("workflow:%s", m->workflow)))
            err = VKF_ENOMEM;
    }
    if (m->prompt) {
        tags[n] = 0x0110;
        if (!(val[n++] = vkf_asprintf("prompt:%s", m->prompt)))
            err = VKF_ENOMEM;
    }
    size_t ifd = 8, data = ifd + 2 + 12 * (size_t)n + 4, size = data;
    for (int i = 0; i < n && !err; i++)
        size += strlen(val[i]) + 1;
    uint8_t *b = err ? NULL : vkf_calloc(1, 6 + size);
    if (!b) {
        err = VKF_ENOMEM;
    } else {
        memcpy(b, "Exif\0\0II*\0", 10);
        uint8_t *t = b + 6;
        put32(t + 4, (uint32_t)ifd);
        put16(t + ifd, (unsigned)n);
        size_t off = data;
        for (int i = 0; i < n; i++) {
            uint8_t *e = t + ifd + 2 + 12 * (size_t)i;
            size_t len = strlen(val[i]) + 1;
            put16(e, tags[i]);
            put16(e + 2, 2);
            put32(e + 4, (uint32_t)len);
            put32(e + 8, (uint32_t)off);
            memcpy(t + off, val[i], len);
            off += len;
        }
        *out = b;
        *outsize = 6 + size;
    }
    vkf_free(val[0]);
    vkf_free(val[1]);
    return err;
}

/* Adds an EXIF chunk to a VP8X WebP (and its flag). */
static int webp_add_exif(uint8_t **data, size_t *size, const uint8_t *exif, size_t exif_size)
{
    uint8_t *d = *data;
    if (*size < 30 || memcmp(d, "RIFF", 4) || memcmp(d + 8, "WEBPVP8X", 8))
        return VKF_EPARSE;
    size_t pad = exif_size & 1, ns = *size + 8 + exif_size + pad;
    if (ns > UINT32_MAX)
        return VKF_EUNSUPPORTED;
    uint8_t *nd = vkf_realloc(d, ns);
    if (!nd)
        return VKF_ENOMEM;
    nd[20] |= 0x08;
    memcpy(nd + *size, "EXIF", 4);
    put32(nd + *size + 4, (uint32_t)exif_size);
    memcpy(nd + *size + 8, exif, exif_size);
    if (pad)
        nd[ns - 1] = 0;
    put32(nd + 4, (uint32_t)(ns - 8));
    *data = nd;
    *size = ns;
    return 0;
}

/* Inserts "comf" chunks (key NUL json) before IEND, as PIL's
 * PngInfo.add(b"comf", ..., after_idat=True). */
static int png_add_comf(uint8_t **data, size_t *size, const meta_json *m)
{
    uint8_t *d = *data;
    size_t n = *size;
    if (n < 20 || memcmp(d + n - 12 + 4, "IEND", 4))
        return VKF_EPARSE;
    const char *keys[2] = {"prompt", "workflow"};
    const char *vals[2] = {m->prompt, m->workflow};
    size_t add = 0;
    for (int i = 0; i < 2; i++)
        if (vals[i])
            add += 12 + strlen(keys[i]) + 1 + strlen(vals[i]);
    uint8_t *nd = vkf_realloc(d, n + add);
    if (!nd)
        return VKF_ENOMEM;
    uint8_t iend[12];
    memcpy(iend, nd + n - 12, 12);
    size_t pos = n - 12;
    for (int i = 0; i < 2; i++) {
        if (!vals[i])
            continue;
        size_t kl = strlen(keys[i]), vl = strlen(vals[i]);
        put32be(nd + pos, (uint32_t)(kl + 1 + vl));
        memcpy(nd + pos + 4, "comf", 4);
        memcpy(nd + pos + 8, keys[i], kl + 1);
        memcpy(nd + pos + 8 + kl + 1, vals[i], vl);
        uLong crc = crc32(0L, nd + pos + 4, (uInt)(4 + kl + 1 + vl));
        put32be(nd + pos + 8 + kl + 1 + vl, (uint32_t)crc);
        pos += 12 + kl + 1 + vl;
    }
    memcpy(nd + pos, iend, 12);
    *data = nd;
    *size = pos + 12;
    return 0;
}

static int save_animated(vkf_exec_ctx *ctx, const vkf_value *in, bool webp)
{
    const char *node = webp ? "SaveAnimatedWEBP" : "SaveAnimatedPNG";
    uint8_t *frames = NULL, *file = NULL, *exif = NULL;
    size_t fsize = 0, exif_size = 0;
    int64_t B;
    int H, W, C, err;
    save_target t = {0};
    meta_json m = {0};
    char msg[256], quality[16], level[16];
    if ((err = image_frames(ctx, node, vkf_value_image(&in[0]), true, &frames, &B, &H, &W, &C)) < 0)
        return err;
    if ((err = save_target_make(ctx, node, in[1].u.s, W, H, &t)) < 0 || (err = meta_get(ctx, &m)) < 0)
        goto fail;
    /* duration=int(1000.0 / fps) milliseconds per frame */
    int dur = (int)(1000.0 / in[2].u.f);
    if (dur < 1)
        dur = 1;
    vkf_video_encode e = {
        .width = W, .height = H, .channels = C, .fps_num = 1000, .fps_den = dur,
    };
    const char *webp_opts[8], *png_opts[3], *webp_mux[] = {"loop", "0", NULL},
               *png_mux[] = {"plays", "0", NULL};
    if (webp) {
        static const char *const methods[] = {"default", "4", "fastest", "0", "slowest", "6"};
        const char *method = "4";
        for (int i = 0; i < 6; i += 2)
            if (!strcmp(in[5].u.s, methods[i]))
                method = methods[i + 1];
        snprintf(quality, sizeof(quality), "%lld", (long long)in[4].u.i);
        webp_opts[0] = "lossless";
        webp_opts[1] = in[3].u.b ? "1" : "0";
        webp_opts[2] = "quality";
        webp_opts[3] = quality;
        webp_opts[4] = "compression_level";
        webp_opts[5] = method;
        webp_opts[6] = NULL;
        e.format = "webp";
        e.codec = "libwebp_anim";
        e.pix_fmt = !in[3].u.b && C == 3 ? "yuv420p" : !in[3].u.b ? "yuva420p" : "bgra";
        e.codec_opts = webp_opts;
        e.mux_opts = webp_mux;
    } else {
        snprintf(level, sizeof(level), "%lld", (long long)in[3].u.i);
        png_opts[0] = "compression_level";
        png_opts[1] = level;
        png_opts[2] = NULL;
        e.format = "apng";
        e.codec = "apng";
        e.pix_fmt = C == 4 ? "rgba" : "rgb24";
        e.codec_opts = png_opts;
        e.mux_opts = png_mux;
    }
    err = vkf_video_encode_mem(&e, frames, B, &file, &fsize, msg, sizeof(msg));
    if (err < 0) {
        err = err == VKF_ENOMEM ? err : vkf_exec_error(ctx, "%s: %s", node, msg);
        goto fail;
    }
    if (webp && (m.prompt || m.workflow)) {
        if ((err = exif_blob(&m, &exif, &exif_size)) < 0 ||
            (err = webp_add_exif(&file, &fsize, exif, exif_size)) < 0) {
            err = err == VKF_ENOMEM ? err
                                    : vkf_exec_error(ctx, "%s: unexpected WebP layout from the "
                                                     "encoder", node);
            goto fail;
        }
    }
    if (!webp && (m.prompt || m.workflow) && (err = png_add_comf(&file, &fsize, &m)) < 0) {
        err = err == VKF_ENOMEM ? err
                                : vkf_exec_error(ctx, "%s: unexpected APNG layout from the "
                                                 "encoder", node);
        goto fail;
    }
    err = save_bytes(ctx, node, &t, webp ? "webp" : "png", file, fsize);
fail:
    vkf_free(frames);
    vkf_free(file);
    vkf_free(exif);
    target_clear(&t);
    meta_clear(&m);
    return err;
}

static int save_webp(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    (void)out;
    return save_animated(ctx, in, true);
}

static int save_apng(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    (void)out;
    return save_animated(ctx, in, false);
}

static const char *const webp_methods[] = {"default", "fastest", "slowest", NULL};

static const vkf_input_def save_webp_inputs[] = {
    {.name = "images", .type = "IMAGE"},
    {.name = "filename_prefix", .type = VKF_T_STRING, .sdef = "ComfyUI"},
    {.name = "fps", .type = VKF_T_FLOAT, .fdef = 6.0, .fmin = 0.01, .fmax = 1000.0, .fstep = 0.01},
    {.name = "lossless", .type = VKF_T_BOOLEAN, .bdef = true},
    {.name = "quality", .type = VKF_T_INT, .idef = 80, .imin = 0, .imax = 100},
    {.name = "method", .type = VKF_T_COMBO, .options = webp_methods},
    {.name = "prompt", .type = "PROMPT", .flags = VKF_IN_HIDDEN},
    {.name = "extra_pnginfo", .type = "EXTRA_PNGINFO", .flags = VKF_IN_HIDDEN},
};

const vkf_node_def vkf_node_SaveAnimatedWEBP = {
    .name = "SaveAnimatedWEBP",
    .display_name = "SaveAnimatedWEBP",
    .category = "image/animation",
    .python_module = "comfy_extras.nodes_images",
    .inputs = save_webp_inputs, .nb_inputs = 8,
    .flags = VKF_NODE_OUTPUT,
    .execute = save_webp,
};

static const vkf_input_def save_apng_inputs[] = {
    {.name = "images", .type = "IMAGE"},
    {.name = "filename_prefix", .type = VKF_T_STRING, .sdef = "ComfyUI"},
    {.name = "fps", .type = VKF_T_FLOAT, .fdef = 6.0, .fmin = 0.01, .fmax = 1000.0, .fstep = 0.01},
    {.name = "compress_level", .type = VKF_T_INT, .idef = 4, .imin = 0, .imax = 9},
    {.name = "prompt", .type = "PROMPT", .flags = VKF_IN_HIDDEN},
    {.name = "extra_pnginfo", .type = "EXTRA_PNGINFO", .flags = VKF_IN_HIDDEN},
};

const vkf_node_def vkf_node_SaveAnimatedPNG = {
    .name = "SaveAnimatedPNG",
    .display_name = "SaveAnimatedPNG",
    .category = "image/animation",
    .python_module = "comfy_extras.nodes_images",
    .inputs = save_apng_inputs, .nb_inputs = 6,
    .flags = VKF_NODE_OUTPUT,
    .execute = save_apng,
};
