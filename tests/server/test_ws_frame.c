/* The binary websocket frames, byte for byte as ComfyUI's server.py packs
 * them (struct.pack(">I", ...)). */
#include "../test.h"
#include "server/server.h"

static unsigned be32(const unsigned char *p)
{
    return (unsigned)p[0] << 24 | (unsigned)p[1] << 16 | (unsigned)p[2] << 8 | p[3];
}

int main(void)
{
    unsigned char *f = NULL;
    size_t n = 0;
    const unsigned char png[] = {0x89, 'P', 'N', 'G', 0, 1, 2};

    CHECK(vkf_ws_frame_preview(VKF_WS_IMAGE_PNG, png, sizeof(png), &f, &n) == 0);
    CHECK(n == 8 + sizeof(png));
    CHECK(be32(f) == 1 && be32(f + 4) == 2);
    CHECK(!memcmp(f + 8, png, sizeof(png)));
    vkf_free(f);

    CHECK(vkf_ws_frame_preview(VKF_WS_IMAGE_JPEG, "", 0, &f, &n) == 0);
    CHECK(n == 8 && be32(f) == 1 && be32(f + 4) == 1);
    vkf_free(f);
    CHECK(vkf_ws_frame_preview(3, png, sizeof(png), &f, &n) == VKF_EINVAL && !f);

    const char *meta = "{\"node_id\":\"9\",\"prompt_id\":\"p\",\"display_node_id\":\"9\","
                       "\"parent_node_id\":null,\"real_node_id\":\"9\",\"image_type\":\"image/png\"}";
    CHECK(vkf_ws_frame_preview_meta(meta, png, sizeof(png), &f, &n) == 0);
    CHECK(n == 8 + strlen(meta) + sizeof(png));
    CHECK(be32(f) == 4 && be32(f + 4) == strlen(meta));
    CHECK(!memcmp(f + 8, meta, strlen(meta)));
    CHECK(!memcmp(f + 8 + strlen(meta), png, sizeof(png)));
    vkf_free(f);

    CHECK(vkf_ws_frame_text("12", "héllo", &f, &n) == 0);
    CHECK(n == 8 + 2 + strlen("héllo"));
    CHECK(be32(f) == 3 && be32(f + 4) == 2 && !memcmp(f + 8, "12", 2));
    CHECK(!memcmp(f + 10, "héllo", strlen("héllo")));
    vkf_free(f);

    /* Allocation failure leaves nothing behind. */
    vkf_alloc_fail_at(0);
    CHECK(vkf_ws_frame_text("1", "x", &f, &n) == VKF_ENOMEM && !f && n == 0);
    vkf_alloc_fail_at(-1);
    CHECK(vkf_alloc_live() == 0);
    return test_result("test_ws_frame");
}
