/*
 * POST /upload/mask: ComfyUI opens the original image, replaces its alpha
 * channel with the alpha of the uploaded mask (both as RGBA), keeps the
 * original's text chunks (the embedded workflow) and saves a PNG with
 * compress_level 4.  Here for PNG originals and PNG masks, with libpng.
 */
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include "server/internal.h"

typedef struct mask_job {
    /* the original, as RGB or RGBA rows */
    png_structp rd;
    png_infop rd_info;
    FILE *in;
    /* the mask, as RGBA */
    png_image mask;
    unsigned char *mask_px;
    /* the result */
    png_structp wr;
    png_infop wr_info;
    vkf_atomic_file *out;
    unsigned char *row;
    const char *error;
} mask_job;

static int read_original(mask_job *j, const char *path, png_uint_32 *w, png_uint_32 *h,
                         int *channels)
{
    if (!(j->in = fopen(path, "rb")))
        return VKF_EIO;
    unsigned char sig[8];
    if (fread(sig, 1, 8, j->in) != 8 || png_sig_cmp(sig, 0, 8))
        return VKF_EUNSUPPORTED;
    j->rd = png_create_read_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    if (!j->rd || !(j->rd_info = png_create_info_struct(j->rd)))
        return VKF_ENOMEM;
    if (setjmp(png_jmpbuf(j->rd))) {
        j->error = "the original image is not a readable PNG";
        return VKF_EPARSE;
    }
    png_init_io(j->rd, j->in);
    png_set_sig_bytes(j->rd, 8);
    png_read_png(j->rd, j->rd_info,
                 PNG_TRANSFORM_EXPAND | PNG_TRANSFORM_STRIP_16 | PNG_TRANSFORM_GRAY_TO_RGB, NULL);
    *w = png_get_image_width(j->rd, j->rd_info);
    *h = png_get_image_height(j->rd, j->rd_info);
    *channels = png_get_channels(j->rd, j->rd_info);
    return *channels == 3 || *channels == 4 ? 0 : VKF_EUNSUPPORTED;
}

static int write_result(mask_job *j, const char *dest, png_uint_32 w, png_uint_32 h, int channels)
{
    int err = vkf_atomic_file_open(&j->out, dest);
    if (err < 0)
        return err;
    if (!(j->row = vkf_malloc((size_t)w * 4)))
        return VKF_ENOMEM;
    j->wr = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    if (!j->wr || !(j->wr_info = png_create_info_struct(j->wr)))
        return VKF_ENOMEM;
    if (setjmp(png_jmpbuf(j->wr))) {
        j->error = "cannot write the masked image";
        return VKF_EIO;
    }
    png_init_io(j->wr, vkf_atomic_file_stream(j->out));
    png_set_compression_level(j->wr, 4);
    png_set_IHDR(j->wr, j->wr_info, w, h, 8, PNG_COLOR_TYPE_RGB_ALPHA, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_textp text = NULL;
    int ntext = png_get_text(j->rd, j->rd_info, &text, NULL);
    if (ntext > 0)
        png_set_text(j->wr, j->wr_info, text, ntext);
    png_write_info(j->wr, j->wr_info);
    png_bytepp rows = png_get_rows(j->rd, j->rd_info);
    for (png_uint_32 y = 0; y < h; y++) {
        for (png_uint_32 x = 0; x < w; x++) {
            memcpy(j->row + 4 * x, rows[y] + (size_t)channels * x, 3);
            j->row[4 * x + 3] = j->mask_px[((size_t)y * w + x) * 4 + 3];
        }
        png_write_row(j->wr, j->row);
    }
    png_write_end(j->wr, NULL);
    return vkf_atomic_file_commit(&j->out);
}

static int run(mask_job *j, const char *original, const void *mask, size_t mask_size,
               const char *dest)
{
    png_uint_32 w, h;
    int channels;
    int err = read_original(j, original, &w, &h, &channels);
    if (err < 0) {
        if (!j->error)
            j->error = "the original image is not a PNG";
        return err;
    }
    j->mask.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_memory(&j->mask, mask, mask_size)) {
        j->error = "the mask is not a PNG image";
        return VKF_EPARSE;
    }
    j->mask.format = PNG_FORMAT_RGBA;
    if (j->mask.width != w || j->mask.height != h) {
        j->error = "the mask and the original image differ in size";
        return VKF_EINVAL;
    }
    if (!(j->mask_px = vkf_malloc(PNG_IMAGE_SIZE(j->mask))))
        return VKF_ENOMEM;
    if (!png_image_finish_read(&j->mask, NULL, j->mask_px, 0, NULL)) {
        j->error = "the mask is not a readable PNG image";
        return VKF_EPARSE;
    }
    return write_result(j, dest, w, h, channels);
}

int vkf_mask_composite(const char *original, const void *mask, size_t mask_size,
                       const char *dest, const char **error)
{
    mask_job j;
    memset(&j, 0, sizeof(j));
    int err = run(&j, original, mask, mask_size, dest);
    *error = j.error ? j.error : err < 0 ? vkf_strerror(err) : NULL;
    png_image_free(&j.mask);
    vkf_free(j.mask_px);
    vkf_free(j.row);
    if (j.rd)
        png_destroy_read_struct(&j.rd, j.rd_info ? &j.rd_info : NULL, NULL);
    if (j.wr)
        png_destroy_write_struct(&j.wr, j.wr_info ? &j.wr_info : NULL);
    vkf_atomic_file_abort(&j.out);
    if (j.in)
        fclose(j.in);
    return err;
}
