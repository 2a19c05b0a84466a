/* ComfyUI's binary websocket frames: a big-endian event number, then the
 * payload (server.py encode_bytes, send_image, send_image_with_metadata,
 * send_progress_text). */
#include <string.h>

#include "server/server.h"

static void put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/* [be32 event][be32 word][a][b] */
static int frame(uint32_t event, uint32_t word, const void *a, size_t na, const void *b,
                 size_t nb, unsigned char **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    if (na > UINT32_MAX || nb > SIZE_MAX - 8 - na)
        return VKF_EINVAL;
    size_t n = 8 + na + nb;
    unsigned char *buf = vkf_malloc(n ? n : 1);
    if (!buf)
        return VKF_ENOMEM;
    put_be32(buf, event);
    put_be32(buf + 4, word);
    if (na)
        memcpy(buf + 8, a, na);
    if (nb)
        memcpy(buf + 8 + na, b, nb);
    *out = buf;
    *out_len = n;
    return 0;
}

int vkf_ws_frame_preview(int image_type, const void *image, size_t size, unsigned char **out,
                         size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    if (image_type != VKF_WS_IMAGE_JPEG && image_type != VKF_WS_IMAGE_PNG)
        return VKF_EINVAL;
    return frame(VKF_WS_PREVIEW_IMAGE, (uint32_t)image_type, NULL, 0, image, size, out, out_len);
}

int vkf_ws_frame_preview_meta(const char *metadata_json, const void *image, size_t size,
                              unsigned char **out, size_t *out_len)
{
    size_t n = strlen(metadata_json);
    if (n > UINT32_MAX)
        return VKF_EINVAL;
    return frame(VKF_WS_PREVIEW_IMAGE_WITH_METADATA, (uint32_t)n, metadata_json, n, image, size,
                 out, out_len);
}

int vkf_ws_frame_text(const char *node_id, const char *text, unsigned char **out,
                      size_t *out_len)
{
    size_t n = strlen(node_id);
    if (n > UINT32_MAX)
        return VKF_EINVAL;
    return frame(VKF_WS_TEXT, (uint32_t)n, node_id, n, text, strlen(text), out, out_len);
}
