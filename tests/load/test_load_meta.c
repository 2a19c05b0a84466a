/* Workflow metadata in PNG (tEXt, zTXt, iTXt) and WebP (EXIF) files, built
 * here byte by byte; truncated and corrupt files. */
#include <stdlib.h>
#include <unistd.h>
#include <zlib.h>

#include "io/meta.h"
#include "object_info_registry.h"
#include "test_util.h"

static vkf_registry *reg;

typedef struct buf {
    unsigned char *d;
    size_t n, cap;
} buf;

static void put(buf *b, const void *p, size_t n)
{
    if (!n)
        return;
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2;
        b->d = realloc(b->d, b->cap);
        if (!b->d)
            abort();
    }
    memcpy(b->d + b->n, p, n);
    b->n += n;
}

static void put_be32(buf *b, uint32_t v)
{
    unsigned char x[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16), (unsigned char)(v >> 8), (unsigned char)v};
    put(b, x, 4);
}

static void put_u32(buf *b, uint32_t v, bool le)
{
    unsigned char x[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16), (unsigned char)(v >> 24)};
    if (!le)
        put_be32(b, v);
    else
        put(b, x, 4);
}

static void put_u16(buf *b, uint16_t v, bool le)
{
    unsigned char x[2] = {le ? (unsigned char)v : (unsigned char)(v >> 8), le ? (unsigned char)(v >> 8) : (unsigned char)v};
    put(b, x, 2);
}

static void chunk(buf *b, const char *type, const void *data, size_t n)
{
    put_be32(b, (uint32_t)n);
    size_t start = b->n;
    put(b, type, 4);
    put(b, data, n);
    put_be32(b, (uint32_t)crc32(0, b->d + start, (uInt)(n + 4)));
}

static void zlib_bytes(buf *out, const void *src, size_t n)
{
    uLongf len = compressBound((uLong)n);
    unsigned char *z = malloc(len);
    if (!z || compress2(z, &len, src, (uLong)n, 4) != Z_OK)
        abort();
    put(out, z, len);
    free(z);
}

/* Text chunk of the given kind: 't' tEXt, 'z' zTXt, 'i' iTXt, 'I' iTXt
 * compressed. */
static void text_chunk(buf *png, char kind, const char *key, const char *text)
{
    buf c = {0};
    put(&c, key, strlen(key) + 1);
    if (kind == 't') {
        put(&c, text, strlen(text));
        chunk(png, "tEXt", c.d, c.n);
    } else if (kind == 'z') {
        put(&c, "\0", 1);
        zlib_bytes(&c, text, strlen(text));
        chunk(png, "zTXt", c.d, c.n);
    } else {
        unsigned char hdr[2] = {kind == 'I', 0};
        put(&c, hdr, 2);
        put(&c, "en\0", 3);
        put(&c, key, strlen(key) + 1);
        if (kind == 'I')
            zlib_bytes(&c, text, strlen(text));
        else
            put(&c, text, strlen(text));
        chunk(png, "iTXt", c.d, c.n);
    }
    free(c.d);
}

static buf png_start(void)
{
    buf b = {0};
    put(&b, "\x89PNG\r\n\x1a\n", 8);
    static const unsigned char ihdr[13] = {0, 0, 0, 1, 0, 0, 0, 1, 8, 2, 0, 0, 0};
    chunk(&b, "IHDR", ihdr, sizeof(ihdr));
    return b;
}

static void png_end(buf *b)
{
    static const unsigned char idat[] = {0x78, 0x9c, 0x63, 0x60, 0x60, 0x60, 0, 0, 0, 4, 0, 1};
    chunk(b, "IDAT", idat, sizeof(idat));
    chunk(b, "IEND", NULL, 0);
}

static const char *prompt_text =
    "{\"3\": {\"class_type\": \"KSampler\", \"inputs\": {\"seed\": 18446744073709551615, \"steps\": 20}}}";
static const char *workflow_text =
    "{\"nodes\": [{\"id\": 5, \"type\": \"EmptyLatentImage\", \"widgets_values\": [768, 640, 2]}], \"links\": []}";

static vkf_graph *load(const buf *b, const char *name, vkf_load_error *err)
{
    vkf_graph *g = NULL;
    int r = vkf_load_workflow_mem(b->d, b->n, name, reg, &g, err);
    CHECK(r < 0 ? g == NULL && err->code == r : g != NULL);
    return g;
}

static void check_prompt_graph(const vkf_graph *g, const char *workflow)
{
    CHECK(g && g->nb_nodes == 1);
    const vkf_graph_input *seed = vkf_graph_node_input(vkf_graph_find(g, "3"), "seed");
    CHECK(seed && seed->value.kind == VKF_VAL_INT && vkf_value_u64(&seed->value) == UINT64_MAX);
    if (workflow)
        CHECK_STR(g ? g->workflow_json : NULL, workflow);
}

static void check_workflow_graph(const vkf_graph *g)
{
    CHECK(g && g->nb_nodes == 1);
    const vkf_graph_node *n = vkf_graph_find(g, "5");
    CHECK(n && !strcmp(n->class_type, "EmptyLatentImage"));
    const vkf_graph_input *h = vkf_graph_node_input(n, "height");
    CHECK(h && h->value.kind == VKF_VAL_INT && h->value.u.i == 640);
}

static void test_png(void)
{
    vkf_load_error err = {0};
    static const char kinds[] = {'t', 'z', 'i', 'I'};
    /* Every chunk kind for both texts. */
    for (size_t k = 0; k < sizeof(kinds); k++) {
        buf b = png_start();
        text_chunk(&b, 't', "parameters", "not ours");
        text_chunk(&b, kinds[k], "prompt", prompt_text);
        text_chunk(&b, kinds[(k + 1) % sizeof(kinds)], "workflow", workflow_text);
        png_end(&b);
        char *p = NULL, *w = NULL;
        CHECK(vkf_meta_extract(b.d, b.n, &p, &w, &err) == 0);
        CHECK_STR(p, prompt_text);
        CHECK_STR(w, workflow_text);
        vkf_free(p);
        vkf_free(w);
        vkf_graph *g = load(&b, "x.png", &err);
        check_prompt_graph(g, workflow_text);
        vkf_graph_free(&g);

        /* Only a workflow: converted with the registry. */
        buf c = png_start();
        text_chunk(&c, kinds[k], "workflow", workflow_text);
        png_end(&c);
        g = load(&c, "x.png", &err);
        check_workflow_graph(g);
        vkf_graph_free(&g);
        free(b.d);
        free(c.d);
    }

    /* Latin-1 tEXt becomes UTF-8. */
    buf b = png_start();
    text_chunk(&b, 't', "prompt", "{\"1\": {\"class_type\": \"X\", \"inputs\": {\"t\": \"caf\xe9\"}}}");
    png_end(&b);
    vkf_graph *g = load(&b, NULL, &err);
    const vkf_graph_input *t = g ? vkf_graph_node_input(&g->nodes[0], "t") : NULL;
    CHECK(t && !strcmp(t->value.u.s, "caf\xc3\xa9"));
    vkf_graph_free(&g);

    /* Every truncation of a good file is a named error. */
    buf whole = png_start();
    text_chunk(&whole, 'z', "prompt", prompt_text);
    png_end(&whole);
    for (size_t n = 8; n < whole.n; n++) {
        buf cut = {whole.d, n, n};
        g = load(&cut, "cut.png", &err);
        CHECK(!g && err.code == VKF_EPARSE && err.message && strstr(err.message, "PNG"));
        vkf_load_error_clear(&err);
    }
    free(whole.d);
    free(b.d);

    /* A PNG without metadata. */
    b = png_start();
    png_end(&b);
    g = load(&b, "plain.png", &err);
    CHECK(!g && err.code == VKF_ENOTFOUND && strstr(err.message, "no embedded workflow"));
    vkf_load_error_clear(&err);
    free(b.d);

    /* Corrupt compressed text. */
    b = png_start();
    chunk(&b, "zTXt", "prompt\0\0\x78\x9c\xff\xff\xff\xff", 12);
    png_end(&b);
    g = load(&b, "bad.png", &err);
    CHECK(!g && err.code == VKF_EPARSE && strstr(err.message, "corrupt compressed data"));
    vkf_load_error_clear(&err);
    free(b.d);

    /* Keyword without terminator. */
    b = png_start();
    chunk(&b, "tEXt", "promptpromptpromptpromptpromptpromptpromptpromptpromptpromptpromptpromptpromptprompt", 84);
    png_end(&b);
    g = load(&b, "bad.png", &err);
    CHECK(!g && err.code == VKF_EPARSE && strstr(err.message, "keyword"));
    vkf_load_error_clear(&err);
    free(b.d);

    /* A huge chunk length. */
    b = png_start();
    put_be32(&b, 0xFFFFFFF0u);
    put(&b, "tEXt", 4);
    g = load(&b, "bad.png", &err);
    CHECK(!g && err.code == VKF_EPARSE && strstr(err.message, "invalid length"));
    vkf_load_error_clear(&err);
    free(b.d);

    /* Decompression bomb: more than 64 MiB of text is refused. */
    size_t big = VKF_META_MAX_TEXT + 1024;
    char *zeros = calloc(1, big + 1);
    memset(zeros, ' ', big);
    b = png_start();
    text_chunk(&b, 'z', "workflow", zeros);
    png_end(&b);
    free(zeros);
    g = load(&b, "bomb.png", &err);
    CHECK(!g && err.code == VKF_EPARSE && strstr(err.message, "64 MiB"));
    vkf_load_error_clear(&err);
    free(b.d);

    /* Bad signature for a .png name; JPEG refused. */
    buf junk = {(unsigned char *)"GIF89a....", 10, 10};
    g = load(&junk, "pic.png", &err);
    CHECK(!g && err.code == VKF_EPARSE && strstr(err.message, "not a PNG"));
    vkf_load_error_clear(&err);
    buf jpeg = {(unsigned char *)"\xff\xd8\xff\xe0JFIF", 8, 8};
    g = load(&jpeg, "pic.jpg", &err);
    CHECK(!g && err.code == VKF_EUNSUPPORTED);
    vkf_load_error_clear(&err);

    /* A broken embedded prompt names where it came from. */
    b = png_start();
    text_chunk(&b, 't', "prompt", "{\"1\": ");
    png_end(&b);
    g = load(&b, "x.png", &err);
    CHECK(!g && err.code == VKF_EPARSE && strstr(err.message, "PNG 'prompt' metadata: line 1"));
    vkf_load_error_clear(&err);
    free(b.d);
}

/* RIFF/WEBP with a VP8X chunk and an EXIF chunk holding a TIFF IFD0 like
 * ComfyUI's SaveAnimatedWEBP writes (via Pillow). */
static buf webp_file(bool le, bool exif_prefix, bool with_prompt)
{
    buf tiff = {0};
    put(&tiff, le ? "II*\0" : "MM\0*", 4);
    put_u32(&tiff, 8, le);
    const char *vals[2];
    uint16_t tags[2];
    int n = 0;
    char *pv = NULL, *wv = NULL;
    if (with_prompt) {
        pv = vkf_asprintf("prompt:%s", prompt_text);
        vals[n] = pv;
        tags[n++] = 0x0110;
    }
    wv = vkf_asprintf("workflow:%s", workflow_text);
    vals[n] = wv;
    tags[n++] = 0x010F;
    uint32_t data_off = 8 + 2 + 12u * (uint32_t)(n + 1) + 4;
    put_u16(&tiff, (uint16_t)(n + 1), le);
    for (int i = 0; i < n; i++) {
        put_u16(&tiff, tags[i], le);
        put_u16(&tiff, 2, le);
        put_u32(&tiff, (uint32_t)strlen(vals[i]) + 1, le);
        put_u32(&tiff, data_off, le);
        data_off += (uint32_t)strlen(vals[i]) + 1;
    }
    /* An inline SHORT entry that must be skipped. */
    put_u16(&tiff, 0x0112, le);
    put_u16(&tiff, 3, le);
    put_u32(&tiff, 1, le);
    put_u32(&tiff, 1, le);
    put_u32(&tiff, 0, le);
    for (int i = 0; i < n; i++)
        put(&tiff, vals[i], strlen(vals[i]) + 1);
    vkf_free(pv);
    vkf_free(wv);

    buf body = {0};
    put(&body, "WEBP", 4);
    put(&body, "VP8X", 4);
    put_u32(&body, 10, true);
    put(&body, "\x08\0\0\0\0\0\0\0\0\0", 10);
    size_t exif_len = tiff.n + (exif_prefix ? 6 : 0);
    put(&body, "EXIF", 4);
    put_u32(&body, (uint32_t)exif_len, true);
    if (exif_prefix)
        put(&body, "Exif\0\0", 6);
    put(&body, tiff.d, tiff.n);
    if (exif_len & 1)
        put(&body, "\0", 1);
    buf file = {0};
    put(&file, "RIFF", 4);
    put_u32(&file, (uint32_t)body.n, true);
    put(&file, body.d, body.n);
    free(tiff.d);
    free(body.d);
    return file;
}

static void test_webp(void)
{
    vkf_load_error err = {0};
    for (int v = 0; v < 4; v++) {
        bool le = v & 1, prefix = v & 2;
        buf b = webp_file(le, prefix, true);
        char *p = NULL, *w = NULL;
        CHECK(vkf_meta_extract(b.d, b.n, &p, &w, &err) == 0);
        CHECK_STR(p, prompt_text);
        CHECK_STR(w, workflow_text);
        vkf_free(p);
        vkf_free(w);
        vkf_graph *g = load(&b, "x.webp", &err);
        check_prompt_graph(g, workflow_text);
        vkf_graph_free(&g);
        for (size_t n = 12; n < b.n; n++) {
            buf cut = {b.d, n, n};
            g = load(&cut, "x.webp", &err);
            CHECK(!g && err.code == VKF_EPARSE && err.message && strstr(err.message, "WebP"));
            vkf_load_error_clear(&err);
        }
        free(b.d);
        b = webp_file(le, prefix, false);
        g = load(&b, "x.webp", &err);
        check_workflow_graph(g);
        vkf_graph_free(&g);
        free(b.d);
    }
    /* Corrupt IFD offset. */
    buf b = webp_file(true, false, true);
    size_t exif = 12 + 8 + 10 + 8;
    b.d[exif + 4] = 0xFF;
    b.d[exif + 5] = 0xFF;
    vkf_graph *g = load(&b, "x.webp", &err);
    CHECK(!g && err.code == VKF_EPARSE && strstr(err.message, "IFD"));
    vkf_load_error_clear(&err);
    free(b.d);
}

static void test_file(void)
{
    vkf_load_error err = {0};
    char path[] = "/tmp/vkf_meta_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd < 0)
        return;
    buf b = png_start();
    text_chunk(&b, 'I', "prompt", prompt_text);
    png_end(&b);
    CHECK(write(fd, b.d, b.n) == (ssize_t)b.n);
    close(fd);
    vkf_graph *g = NULL;
    CHECK(vkf_load_workflow_file(path, reg, &g, &err) == 0);
    check_prompt_graph(g, NULL);
    vkf_graph_free(&g);
    unlink(path);
    CHECK_INT(vkf_load_workflow_file(path, reg, &g, &err), VKF_ENOTFOUND);
    CHECK(err.message && strstr(err.message, path));
    vkf_load_error_clear(&err);
    CHECK_INT(vkf_load_workflow_file("/", reg, &g, &err), VKF_EIO);
    CHECK(err.message && strstr(err.message, "/: "));
    vkf_load_error_clear(&err);
    free(b.d);
}

int main(void)
{
    if (vkf_test_sd_registry(&reg) < 0)
        return 1;
    long live = vkf_alloc_live();
    test_png();
    test_webp();
    test_file();
    CHECK_INT(vkf_alloc_live(), live);
    vkf_registry_destroy(&reg);
    vkf_test_object_info_release();
    if (test_failures)
        fprintf(stderr, "%d check(s) failed\n", test_failures);
    return test_failures ? 1 : 0;
}
