/* The AUDIO and VIDEO object types (vkflow/media.h). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "vkflow/media.h"

/* ---- AUDIO ------------------------------------------------------------------ */

static void audio_destroy(vkf_object *o)
{
    vkf_audio *a = (vkf_audio *)o;
    vkf_free(a->waveform);
    vkf_free(a);
}

static char *audio_describe(const vkf_object *o)
{
    const vkf_audio *a = (const vkf_audio *)o;
    return vkf_asprintf("AUDIO waveform [%d, %d, %lld] at %d Hz", a->batch, a->channels,
                        (long long)a->samples, a->sample_rate);
}

const vkf_object_type vkf_type_audio = {
    .name = "AUDIO", .destroy = audio_destroy, .describe = audio_describe,
};

int vkf_audio_create(int batch, int channels, int64_t samples, int sample_rate,
                     vkf_audio **out)
{
    *out = NULL;
    if (batch < 1 || channels < 1 || samples < 0 || sample_rate < 1 ||
        (uint64_t)samples > (SIZE_MAX / sizeof(float)) / (size_t)batch / (size_t)channels)
        return VKF_EINVAL;
    vkf_audio *a = vkf_calloc(1, sizeof(*a));
    size_t n = (size_t)batch * (size_t)channels * (size_t)samples;
    float *w = vkf_calloc(n ? n : 1, sizeof(float));
    if (!a || !w) {
        vkf_free(a);
        vkf_free(w);
        return VKF_ENOMEM;
    }
    vkf_object_init(&a->obj, &vkf_type_audio);
    a->batch = batch;
    a->channels = channels;
    a->samples = samples;
    a->sample_rate = sample_rate;
    a->waveform = w;
    *out = a;
    return 0;
}

const vkf_audio *vkf_value_audio(const vkf_value *v)
{
    if (v->kind != VKF_VAL_OBJECT || v->u.obj->type != &vkf_type_audio)
        return NULL;
    return (const vkf_audio *)v->u.obj;
}

/* ---- VIDEO ------------------------------------------------------------------ */

static void video_destroy(vkf_object *o)
{
    vkf_video *v = (vkf_video *)o;
    vkf_free(v->path);
    vkf_tensor_unref(&v->images);
    vkf_object *a = v->audio ? &v->audio->obj : NULL;
    vkf_object_unref(&a);
    vkf_free(v);
}

static char *video_describe(const vkf_object *o)
{
    const vkf_video *v = (const vkf_video *)o;
    if (v->path)
        return vkf_asprintf("VIDEO file %dx%d at %d/%d fps", v->width, v->height, v->fps_num,
                            v->fps_den);
    const int64_t *s = vkf_tensor_shape(v->images);
    return vkf_asprintf("VIDEO %lld frames %dx%d at %d/%d fps%s", (long long)s[0], v->width,
                        v->height, v->fps_num, v->fps_den, v->audio ? " with audio" : "");
}

const vkf_object_type vkf_type_video = {
    .name = "VIDEO", .destroy = video_destroy, .describe = video_describe,
};

int vkf_video_from_file(const char *path, const vkf_video_select *sel, vkf_video **out,
                        char *msg, size_t msgsize)
{
    *out = NULL;
    vkf_video_reader *r = NULL;
    int err = vkf_video_reader_open(path, NULL, 0, &r, msg, msgsize);
    if (err < 0)
        return err;
    const vkf_video_info *info = vkf_video_reader_info(r);
    vkf_video *v = vkf_calloc(1, sizeof(*v));
    char *p = vkf_strdup(path);
    if (!v || !p) {
        vkf_free(v);
        vkf_free(p);
        vkf_video_reader_close(&r);
        snprintf(msg, msgsize, "out of memory");
        return VKF_ENOMEM;
    }
    vkf_object_init(&v->obj, &vkf_type_video);
    v->path = p;
    v->sel = sel ? *sel : (vkf_video_select){0};
    if (v->sel.every_nth < 1)
        v->sel.every_nth = 1;
    v->width = info->width;
    v->height = info->height;
    v->fps_num = info->fps_num;
    v->fps_den = info->fps_den;
    vkf_video_reader_close(&r);
    *out = v;
    return 0;
}

int vkf_video_from_components(vkf_tensor *images, const vkf_audio *audio, int fps_num,
                              int fps_den, vkf_video **out)
{
    *out = NULL;
    if (!images || vkf_tensor_ndim(images) != 4 || fps_num < 1 || fps_den < 1) {
        vkf_tensor_unref(&images);
        return VKF_EINVAL;
    }
    vkf_video *v = vkf_calloc(1, sizeof(*v));
    if (!v) {
        vkf_tensor_unref(&images);
        return VKF_ENOMEM;
    }
    vkf_object_init(&v->obj, &vkf_type_video);
    v->images = images;
    v->audio = audio ? (vkf_audio *)vkf_object_ref((vkf_object *)&audio->obj) : NULL;
    v->width = (int)vkf_tensor_shape(images)[2];
    v->height = (int)vkf_tensor_shape(images)[1];
    v->fps_num = fps_num;
    v->fps_den = fps_den;
    *out = v;
    return 0;
}

const vkf_video *vkf_value_video(const vkf_value *v)
{
    if (v->kind != VKF_VAL_OBJECT || v->u.obj->type != &vkf_type_video)
        return NULL;
    return (const vkf_video *)v->u.obj;
}

static int64_t gcd64(int64_t a, int64_t b)
{
    while (b) {
        int64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* Python's Fraction(fps) is exact for a double; frame rates are given with
 * at most 3 decimals in practice, so n/1000 reduced keeps them exact
 * (29.97 -> 2997/100) and 30000/1001-style rates come from files as
 * fractions already. */
void vkf_fps_to_fraction(double fps, int *num, int *den)
{
    if (!(fps > 0) || fps > 1e6) {
        *num = 1;
        *den = 1;
        return;
    }
    int64_t n = llround(fps * 1000.0), d = 1000;
    if (n < 1)
        n = 1;
    int64_t g = gcd64(n, d);
    *num = (int)(n / g);
    *den = (int)(d / g);
}
