/* Live previews while sampling (vkflow/preview.h). */
#include <png.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "vkflow/node.h"
#include "vkflow/paths.h"
#include "vkflow/preview.h"

static const char *const method_names[] = {"none", "auto", "latent2rgb", "taesd"};

int vkf_preview_method_from_name(const char *name, vkf_preview_method *out)
{
    for (int i = 0; i < (int)VKF_ARRAY_SIZE(method_names); i++)
        if (!strcmp(name, method_names[i])) {
            *out = (vkf_preview_method)i;
            return 0;
        }
    return VKF_ENOTFOUND;
}

const char *vkf_preview_method_name(vkf_preview_method m)
{
    return (unsigned)m < VKF_ARRAY_SIZE(method_names) ? method_names[m] : "?";
}

/* ---- Latent2RGB ---- */

/* comfy/latent_formats.py SD15.latent_rgb_factors (no bias). */
static const float sd15_rgb[4][3] = {
    {0.3512f, 0.2297f, 0.3227f},
    {0.3250f, 0.4974f, 0.2350f},
    {-0.2829f, 0.1762f, 0.2721f},
    {-0.2120f, -0.2616f, -0.7177f},
};

static uint8_t to_u8(float v)
{
    /* ((v + 1) / 2).clamp(0, 1).mul(255).to(uint8): truncation. */
    float x = (v + 1.0f) / 2.0f;
    x = x < 0.0f ? 0.0f : x > 1.0f ? 1.0f : x;
    return (uint8_t)(x * 255.0f);
}

int vkf_preview_latent2rgb(const float *x0, const int64_t *shape, int ndim, uint8_t **rgb)
{
    *rgb = NULL;
    if (ndim != 4 || shape[1] != 4 || shape[2] <= 0 || shape[3] <= 0)
        return VKF_EUNSUPPORTED;
    int64_t hw = shape[2] * shape[3];
    uint8_t *o = vkf_malloc((size_t)hw * 3);
    if (!o)
        return VKF_ENOMEM;
    for (int64_t p = 0; p < hw; p++)
        for (int c = 0; c < 3; c++) {
            /* F.linear sums the channels in order. */
            float s = 0.0f;
            for (int k = 0; k < 4; k++)
                s += x0[k * hw + p] * sd15_rgb[k][c];
            o[p * 3 + c] = to_u8(s);
        }
    *rgb = o;
    return 0;
}

/* ---- PNG in memory ---- */

typedef struct membuf {
    uint8_t *data;
    size_t size, cap;
    bool failed;
} membuf;

static void mem_write(png_structp png, png_bytep data, size_t len)
{
    membuf *b = png_get_io_ptr(png);
    if (b->failed)
        return;
    if (b->size + len > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 4096;
        while (cap < b->size + len)
            cap *= 2;
        uint8_t *n = vkf_realloc(b->data, cap);
        if (!n) {
            b->failed = true;
            return;
        }
        b->data = n;
        b->cap = cap;
    }
    memcpy(b->data + b->size, data, len);
    b->size += len;
}

static void mem_flush(png_structp png)
{
    (void)png;
}

static void png_err(png_structp png, png_const_charp msg)
{
    (void)msg;
    png_longjmp(png, 1);
}

static void png_warn(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg;
}

static int encode_rows(png_structp png, png_infop info, const uint8_t *rgb, int w, int h)
{
    if (setjmp(png_jmpbuf(png)))
        return VKF_EIO;
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8, PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_set_compression_level(png, 1);
    png_write_info(png, info);
    for (int y = 0; y < h; y++)
        png_write_row(png, (png_const_bytep)(rgb + (size_t)y * (size_t)w * 3));
    png_write_end(png, info);
    return 0;
}

int vkf_png_encode_rgb8(const uint8_t *rgb, int width, int height, uint8_t **png_out,
                        size_t *size)
{
    *png_out = NULL;
    *size = 0;
    if (width <= 0 || height <= 0)
        return VKF_EINVAL;
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, png_err, png_warn);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_write_struct(&png, NULL);
        return VKF_ENOMEM;
    }
    membuf b = {0};
    png_set_write_fn(png, &b, mem_write, mem_flush);
    int err = encode_rows(png, info, rgb, width, height);
    png_destroy_write_struct(&png, &info);
    if (err == 0 && b.failed)
        err = VKF_ENOMEM;
    if (err < 0) {
        vkf_free(b.data);
        return err;
    }
    *png_out = b.data;
    *size = b.size;
    return 0;
}

/* ---- the hook ---- */

/* The TAESD decoder, loaded on first use; tied to the device it was
 * loaded on.  `missing` remembers that vae_approx had no decoder, so
 * "auto" does not look again every step. */
static struct {
    pthread_mutex_t lock;
    vkf_preview_method method;
    vkf_vae_model *taesd;
    vkf_gpu *gpu;
    bool missing;
} pv = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* The first vae_approx file named taesd_decoder.* (ComfyUI's
 * taesd_decoder_name for SD1/SD2 latents). */
static int find_decoder(const vkf_paths *paths, char **full)
{
    char **names = NULL;
    int n = 0, err = vkf_paths_list(paths, "vae_approx", &names, &n);
    *full = NULL;
    if (err < 0)
        return err;
    err = VKF_ENOTFOUND;
    for (int i = 0; i < n; i++)
        if (!strncmp(names[i], "taesd_decoder.", 14)) {
            err = vkf_paths_resolve(paths, "vae_approx", names[i], full);
            break;
        }
    vkf_strv_free(&names, n);
    return err;
}

static int load_taesd(vkf_exec_ctx *ctx, vkf_gpu *gpu)
{
    char *path = NULL;
    vkf_weights *w = NULL;
    int err = find_decoder(vkf_exec_paths(ctx), &path);
    if (err < 0) {
        pv.missing = true;
        return err;
    }
    err = vkf_weights_open(path, &w, vkf_exec_log(ctx));
    if (err >= 0) {
        vkf_errbuf e = {{0}};
        err = vkf_taesd_load(gpu, NULL, w, 0.18215f, 0.0f, &pv.taesd, &e);
        if (err < 0)
            vkf_logf(vkf_exec_log(ctx), VKF_LOG_WARN, "previews: %s: %s", path, e.msg);
        else
            pv.gpu = gpu;
    }
    if (err < 0)
        pv.missing = true;
    vkf_weights_close(&w);
    vkf_free(path);
    return err;
}

/* TAESD decode of x0[0] → RGB bytes of 8h × 8w. */
static int taesd_rgb(vkf_gpu *gpu, const float *x0, const int64_t *shape, uint8_t **rgb,
                     int *w, int *h)
{
    int64_t s[4] = {1, shape[1], shape[2], shape[3]};
    vkf_tensor *x = NULL, *img = NULL;
    float *host = NULL;
    int err = vkf_tensor_create(gpu, VKF_DTYPE_F32, 4, s, &x);
    if (err < 0)
        return err;
    VKF_TRY(vkf_tensor_upload(x, x0));
    VKF_TRY(vkf_taesd_preview(pv.taesd, x, &img));
    const int64_t *is = vkf_tensor_shape(img);
    int64_t hw = is[2] * is[3];
    VKF_CHECK_ALLOC(host = vkf_malloc((size_t)vkf_tensor_numel(img) * sizeof(float)));
    VKF_TRY(vkf_tensor_download(img, host));
    VKF_CHECK_ALLOC(*rgb = vkf_malloc((size_t)hw * 3));
    for (int64_t p = 0; p < hw; p++)
        for (int c = 0; c < 3; c++) {
            /* decoder output in [0, 1]: ComfyUI maps it to [-1, 1] and back */
            float v = host[c * hw + p] * 2.0f - 1.0f;
            (*rgb)[p * 3 + c] = to_u8(v);
        }
    *w = (int)is[3];
    *h = (int)is[2];
fail:
    vkf_free(host);
    vkf_tensor_unref(&x);
    vkf_tensor_unref(&img);
    return err;
}

static int preview_hook(void *opaque, vkf_exec_ctx *ctx, const vkf_model *model, int step,
                        int total, const float *x0, const int64_t *shape, int ndim)
{
    (void)opaque;
    (void)model;
    if (!ctx || ndim != 4 || shape[1] != 4)
        return 0;   /* previews cover SD-style 4-channel latents */
    uint8_t *rgb = NULL, *png = NULL;
    size_t png_size = 0;
    int w = 0, h = 0, err = 0;
    pthread_mutex_lock(&pv.lock);
    vkf_preview_method m = pv.method;
    if (m == VKF_PREVIEW_AUTO || m == VKF_PREVIEW_TAESD) {
        vkf_gpu *gpu = NULL;
        if (vkf_exec_gpu(ctx, &gpu) >= 0) {
            if (pv.taesd && pv.gpu != gpu)
                vkf_vae_model_unref(&pv.taesd);
            if (!pv.taesd && !pv.missing)
                load_taesd(ctx, gpu);
            if (pv.taesd)
                err = taesd_rgb(gpu, x0, shape, &rgb, &w, &h);
        }
        if (!rgb && m == VKF_PREVIEW_TAESD && pv.missing && step == 0)
            vkf_logf(vkf_exec_log(ctx), VKF_LOG_WARN,
                     "previews: no taesd_decoder in vae_approx; no previews");
    }
    pthread_mutex_unlock(&pv.lock);
    if (!rgb && err >= 0 && (m == VKF_PREVIEW_AUTO || m == VKF_PREVIEW_LATENT2RGB)) {
        err = vkf_preview_latent2rgb(x0, shape, ndim, &rgb);
        w = (int)shape[3];
        h = (int)shape[2];
    }
    if (rgb && err >= 0)
        err = vkf_png_encode_rgb8(rgb, w, h, &png, &png_size);
    if (png && err >= 0)
        vkf_exec_preview(ctx, png, png_size, step, total);
    vkf_free(rgb);
    vkf_free(png);
    /* A failed preview never stops sampling. */
    if (err < 0 && err != VKF_EUNSUPPORTED)
        vkf_logf(vkf_exec_log(ctx), VKF_LOG_WARN, "previews: step %d: %s", step,
                 vkf_strerror(err));
    return 0;
}

void vkf_preview_install(vkf_preview_method m)
{
    pthread_mutex_lock(&pv.lock);
    pv.method = m;
    pthread_mutex_unlock(&pv.lock);
    vkf_guidance_set_preview_hook(m == VKF_PREVIEW_NONE ? NULL : preview_hook, NULL);
}

void vkf_preview_release(const vkf_gpu *gpu)
{
    pthread_mutex_lock(&pv.lock);
    if (pv.gpu == gpu) {
        vkf_vae_model_unref(&pv.taesd);
        pv.gpu = NULL;
    }
    pthread_mutex_unlock(&pv.lock);
}

void vkf_preview_shutdown(void)
{
    vkf_guidance_set_preview_hook(NULL, NULL);
    pthread_mutex_lock(&pv.lock);
    vkf_vae_model_unref(&pv.taesd);
    pv.gpu = NULL;
    pv.missing = false;
    pthread_mutex_unlock(&pv.lock);
}
