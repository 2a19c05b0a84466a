/*
 * Workflow files: JSON, and PNG / WebP images carrying ComfyUI's embedded
 * "prompt" and "workflow" metadata.  Every length read from the file is
 * checked against the bytes that are really there: these parsers see
 * hostile input.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

#include "io/meta.h"

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint32_t rd32(const uint8_t *p, bool le)
{
    return le ? (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0] : be32(p);
}

static uint16_t rd16(const uint8_t *p, bool le)
{
    return le ? (uint16_t)(p[1] << 8 | p[0]) : (uint16_t)(p[0] << 8 | p[1]);
}

static int fail(vkf_load_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(vkf_load_error *err, int code, const char *fmt, ...)
{
    if (!err)
        return code;
    va_list ap;
    va_start(ap, fmt);
    char *msg = vkf_vasprintf(fmt, ap);
    va_end(ap);
    vkf_free(err->message);
    err->message = msg;
    err->code = code;
    return code;
}

vkf_meta_format vkf_meta_detect(const void *data, size_t size)
{
    const uint8_t *d = data;
    if (size >= 8 && !memcmp(d, "\x89PNG\r\n\x1a\n", 8))
        return VKF_META_PNG;
    if (size >= 12 && !memcmp(d, "RIFF", 4) && !memcmp(d + 8, "WEBP", 4))
        return VKF_META_WEBP;
    return VKF_META_JSON;
}

/* ---- text helpers ---------------------------------------------------------- */

static voidpf z_alloc(voidpf opaque, uInt items, uInt size)
{
    return vkf_malloc((size_t)items * size);
}

static void z_free(voidpf opaque, voidpf p) { vkf_free(p); }

/* zlib stream -> NUL-terminated bytes, at most VKF_META_MAX_TEXT. */
static int inflate_text(const uint8_t *src, size_t n, const char *what, char **out, size_t *out_len,
                        vkf_load_error *err)
{
    z_stream zs = {.zalloc = z_alloc, .zfree = z_free};
    char *buf = NULL;
    size_t cap = 0, len = 0;
    int ret, zr;
    *out = NULL;
    if (inflateInit(&zs) != Z_OK)
        return fail(err, VKF_ENOMEM, "out of memory");
    zs.next_in = (Bytef *)src;
    zs.avail_in = (uInt)n;
    do {
        if (cap - len < 4096) {
            size_t ncap = cap ? cap * 2 : (n * 4 > 4096 ? n * 4 : 4096);
            if (ncap > VKF_META_MAX_TEXT + 1)
                ncap = VKF_META_MAX_TEXT + 1;
            if (ncap <= len) {
                ret = fail(err, VKF_EPARSE, "%s: decompressed text is larger than %u MiB", what,
                           VKF_META_MAX_TEXT >> 20);
                goto done;
            }
            char *nb = vkf_realloc(buf, ncap);
            if (!nb) {
                ret = fail(err, VKF_ENOMEM, "out of memory");
                goto done;
            }
            buf = nb;
            cap = ncap;
        }
        zs.next_out = (Bytef *)buf + len;
        zs.avail_out = (uInt)(cap - len);
        zr = inflate(&zs, Z_NO_FLUSH);
        len = cap - zs.avail_out;
        if (zr == Z_MEM_ERROR) {
            ret = fail(err, VKF_ENOMEM, "out of memory");
            goto done;
        }
        if (zr == Z_DATA_ERROR || zr == Z_NEED_DICT || zr == Z_STREAM_ERROR) {
            ret = fail(err, VKF_EPARSE, "%s: corrupt compressed data", what);
            goto done;
        }
        if (zr == Z_BUF_ERROR && zs.avail_in == 0) {
            ret = fail(err, VKF_EPARSE, "%s: truncated compressed data", what);
            goto done;
        }
    } while (zr != Z_STREAM_END);
    if (len > VKF_META_MAX_TEXT) {
        ret = fail(err, VKF_EPARSE, "%s: decompressed text is larger than %u MiB", what,
                   VKF_META_MAX_TEXT >> 20);
        goto done;
    }
    if (len == cap) {
        char *nb = vkf_realloc(buf, len + 1);
        if (!nb) {
            ret = fail(err, VKF_ENOMEM, "out of memory");
            goto done;
        }
        buf = nb;
    }
    buf[len] = 0;
    *out = buf;
    *out_len = len;
    buf = NULL;
    ret = 0;
done:
    inflateEnd(&zs);
    vkf_free(buf);
    return ret;
}

static char *latin1_to_utf8(const uint8_t *s, size_t n)
{
    size_t extra = 0;
    for (size_t i = 0; i < n; i++)
        extra += s[i] >= 0x80;
    char *out = vkf_malloc(n + extra + 1);
    if (!out)
        return NULL;
    char *p = out;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < 0x80) {
            *p++ = (char)s[i];
        } else {
            *p++ = (char)(0xC0 | s[i] >> 6);
            *p++ = (char)(0x80 | (s[i] & 0x3F));
        }
    }
    *p = 0;
    return out;
}

typedef struct texts {
    char *prompt, *workflow;
} texts;

/* The slot for a keyword we want, or NULL (also when already found). */
static char **slot_for(texts *t, const char *key, size_t key_len)
{
    if (key_len == 6 && !memcmp(key, "prompt", 6))
        return t->prompt ? NULL : &t->prompt;
    if (key_len == 8 && !memcmp(key, "workflow", 8))
        return t->workflow ? NULL : &t->workflow;
    return NULL;
}

/* ---- PNG --------------------------------------------------------------------- */

static void chunk_name(const uint8_t *type, char out[16])
{
    bool printable = true;
    for (int i = 0; i < 4; i++)
        printable &= (type[i] >= 'A' && type[i] <= 'Z') || (type[i] >= 'a' && type[i] <= 'z');
    if (printable)
        snprintf(out, 16, "%.4s", (const char *)type);
    else
        snprintf(out, 16, "0x%08x", be32(type));
}

static int png_text_chunk(const uint8_t *type, const uint8_t *d, size_t n, size_t off, texts *t,
                          vkf_load_error *err)
{
    char what[64], name[16];
    chunk_name(type, name);
    const uint8_t *nul = memchr(d, 0, n < 80 ? n : 80);
    if (!nul)
        return fail(err, VKF_EPARSE, "PNG: %s chunk at offset %zu has no keyword terminator", name, off);
    size_t key_len = (size_t)(nul - d);
    char **slot = slot_for(t, (const char *)d, key_len);
    if (!slot)
        return 0;
    snprintf(what, sizeof(what), "PNG %s chunk '%.*s'", name, (int)key_len, (const char *)d);
    const uint8_t *p = nul + 1, *end = d + n;
    size_t text_len;
    char *raw = NULL;
    int ret;

    if (!memcmp(type, "tEXt", 4)) {
        *slot = latin1_to_utf8(p, (size_t)(end - p));
        return *slot ? 0 : fail(err, VKF_ENOMEM, "out of memory");
    }
    if (!memcmp(type, "zTXt", 4)) {
        if (end - p < 1)
            return fail(err, VKF_EPARSE, "%s: truncated header", what);
        if (*p != 0)
            return fail(err, VKF_EPARSE, "%s: unknown compression method %u", what, *p);
        if ((ret = inflate_text(p + 1, (size_t)(end - p - 1), what, &raw, &text_len, err)) < 0)
            return ret;
        *slot = latin1_to_utf8((const uint8_t *)raw, text_len);
        vkf_free(raw);
        return *slot ? 0 : fail(err, VKF_ENOMEM, "out of memory");
    }
    /* iTXt: flag, method, language\0, translated keyword\0, text. */
    if (end - p < 2)
        return fail(err, VKF_EPARSE, "%s: truncated header", what);
    uint8_t compressed = p[0], method = p[1];
    p += 2;
    for (int field = 0; field < 2; field++) {
        const uint8_t *z = memchr(p, 0, (size_t)(end - p));
        if (!z)
            return fail(err, VKF_EPARSE, "%s: truncated header", what);
        p = z + 1;
    }
    if (compressed) {
        if (method != 0)
            return fail(err, VKF_EPARSE, "%s: unknown compression method %u", what, method);
        return inflate_text(p, (size_t)(end - p), what, slot, &text_len, err);
    }
    *slot = vkf_strndup((const char *)p, (size_t)(end - p));
    return *slot ? 0 : fail(err, VKF_ENOMEM, "out of memory");
}

static int png_extract(const uint8_t *d, size_t n, texts *t, vkf_load_error *err)
{
    size_t pos = 8;
    char name[16];
    for (;;) {
        if (n - pos < 8)
            return fail(err, VKF_EPARSE, "PNG: truncated file: no IEND chunk after %zu bytes", n);
        uint32_t len = be32(d + pos);
        const uint8_t *type = d + pos + 4;
        chunk_name(type, name);
        if (len > 0x7FFFFFFFu)
            return fail(err, VKF_EPARSE, "PNG: chunk %s at offset %zu has an invalid length %u", name, pos, len);
        if (n - pos - 8 < (size_t)len + 4)
            return fail(err, VKF_EPARSE, "PNG: truncated chunk %s at offset %zu (%u bytes declared, %zu present)",
                        name, pos, len, n - pos - 8);
        if (!memcmp(type, "IEND", 4))
            return 0;
        if (!memcmp(type, "tEXt", 4) || !memcmp(type, "zTXt", 4) || !memcmp(type, "iTXt", 4)) {
            int ret = png_text_chunk(type, d + pos + 8, len, pos, t, err);
            if (ret < 0)
                return ret;
        }
        pos += 12 + (size_t)len;
    }
}

/* ---- WebP -------------------------------------------------------------------- */

static int exif_extract(const uint8_t *d, size_t n, texts *t, vkf_load_error *err)
{
    if (n >= 6 && !memcmp(d, "Exif\0\0", 6)) {
        d += 6;
        n -= 6;
    }
    if (n < 8 || !((!memcmp(d, "II*\0", 4)) || !memcmp(d, "MM\0*", 4)))
        return fail(err, VKF_EPARSE, "WebP: the EXIF chunk does not hold TIFF data");
    bool le = d[0] == 'I';
    uint32_t ifd = rd32(d + 4, le);
    if (ifd > n || n - ifd < 2)
        return fail(err, VKF_EPARSE, "WebP: EXIF IFD offset %u is outside the %zu-byte EXIF data", ifd, n);
    uint16_t count = rd16(d + ifd, le);
    if ((n - ifd - 2) / 12 < count)
        return fail(err, VKF_EPARSE, "WebP: truncated EXIF IFD (%u entries declared)", count);
    for (uint16_t i = 0; i < count; i++) {
        const uint8_t *e = d + ifd + 2 + (size_t)i * 12;
        uint16_t tag = rd16(e, le), type = rd16(e + 2, le);
        uint32_t cnt = rd32(e + 4, le);
        /* Byte-sized types only: ASCII (2), BYTE (1), UNDEFINED (7). */
        if (type != 1 && type != 2 && type != 7)
            continue;
        const uint8_t *val;
        if (cnt <= 4) {
            val = e + 8;
        } else {
            uint32_t off = rd32(e + 8, le);
            if (off > n || n - off < cnt)
                return fail(err, VKF_EPARSE, "WebP: EXIF entry 0x%04x points outside the EXIF data", tag);
            val = d + off;
        }
        size_t len = cnt;
        while (len && !val[len - 1])
            len--;
        const uint8_t *colon = memchr(val, ':', len);
        if (!colon)
            continue;
        char **slot = slot_for(t, (const char *)val, (size_t)(colon - val));
        if (!slot)
            continue;
        if (!(*slot = vkf_strndup((const char *)colon + 1, len - (size_t)(colon + 1 - val))))
            return fail(err, VKF_ENOMEM, "out of memory");
    }
    return 0;
}

static int webp_extract(const uint8_t *d, size_t n, texts *t, vkf_load_error *err)
{
    uint32_t riff = rd32(d + 4, true);
    if (riff < 4 || riff > n - 8)
        return fail(err, VKF_EPARSE, "WebP: truncated file (RIFF size %u, %zu bytes present)", riff, n - 8);
    size_t end = 8 + (size_t)riff, pos = 12;
    char name[16];
    while (end - pos >= 8) {
        uint32_t len = rd32(d + pos + 4, true);
        chunk_name(d + pos, name);
        if (len > end - pos - 8)
            return fail(err, VKF_EPARSE, "WebP: truncated chunk %s at offset %zu (%u bytes declared)", name, pos, len);
        if (!memcmp(d + pos, "EXIF", 4))
            return exif_extract(d + pos + 8, len, t, err);
        pos += 8 + (size_t)len + (len & 1);
        if (pos > end)
            break;
    }
    return 0;
}

int vkf_meta_extract(const void *data, size_t size, char **prompt, char **workflow,
                     vkf_load_error *err)
{
    texts t = {0};
    int ret;
    *prompt = *workflow = NULL;
    switch (vkf_meta_detect(data, size)) {
    case VKF_META_PNG:
        ret = png_extract(data, size, &t, err);
        break;
    case VKF_META_WEBP:
        ret = webp_extract(data, size, &t, err);
        break;
    default:
        return fail(err, VKF_EUNSUPPORTED, "not a PNG or WebP file");
    }
    if (ret < 0) {
        vkf_free(t.prompt);
        vkf_free(t.workflow);
        return ret;
    }
    *prompt = t.prompt;
    *workflow = t.workflow;
    return 0;
}

/* ---- loading ------------------------------------------------------------------- */

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcasecmp(s + a - b, suffix);
}

static void prefix_message(vkf_load_error *err, const char *prefix)
{
    if (!err || !err->message)
        return;
    char *msg = vkf_asprintf("%s: %s", prefix, err->message);
    if (msg) {
        vkf_free(err->message);
        err->message = msg;
    }
}

int vkf_load_workflow_mem(const void *data, size_t size, const char *name_hint,
                          const vkf_registry *reg, vkf_graph **out, vkf_load_error *err)
{
    char *prompt = NULL, *workflow = NULL;
    int ret;
    *out = NULL;
    if (err)
        vkf_load_error_clear(err);
    vkf_meta_format fmt = vkf_meta_detect(data, size);
    const char *kind = fmt == VKF_META_PNG ? "PNG" : "WebP";
    if (fmt == VKF_META_JSON) {
        const uint8_t *d = data;
        if (name_hint && (ends_with(name_hint, ".png") || ends_with(name_hint, ".webp")))
            return fail(err, VKF_EPARSE, "%s: not a %s file (bad signature)", name_hint,
                        ends_with(name_hint, ".png") ? "PNG" : "WebP");
        if (size >= 3 && d[0] == 0xFF && d[1] == 0xD8 && d[2] == 0xFF)
            return fail(err, VKF_EUNSUPPORTED, "JPEG files carry no ComfyUI workflow metadata vkflow can read");
        return vkf_load_workflow_json(data, size, reg, out, err);
    }
    if ((ret = vkf_meta_extract(data, size, &prompt, &workflow, err)) < 0)
        return ret;
    /* Blank texts count as absent. */
    if (prompt && !prompt[strspn(prompt, " \t\r\n")]) {
        vkf_free(prompt);
        prompt = NULL;
    }
    if (workflow && !workflow[strspn(workflow, " \t\r\n")]) {
        vkf_free(workflow);
        workflow = NULL;
    }
    if (prompt) {
        ret = vkf_load_workflow_json(prompt, strlen(prompt), reg, out, err);
        if (ret < 0) {
            prefix_message(err, fmt == VKF_META_PNG ? "PNG 'prompt' metadata" : "WebP 'prompt' metadata");
            goto done;
        }
        if (workflow && !(*out)->workflow_json) {
            (*out)->workflow_json = workflow;
            workflow = NULL;
        }
    } else if (workflow) {
        ret = vkf_load_workflow_json(workflow, strlen(workflow), reg, out, err);
        if (ret < 0)
            prefix_message(err, fmt == VKF_META_PNG ? "PNG 'workflow' metadata" : "WebP 'workflow' metadata");
    } else {
        ret = fail(err, VKF_ENOTFOUND, "%s file has no embedded workflow (no 'prompt' or 'workflow' metadata)",
                   kind);
    }
done:
    vkf_free(prompt);
    vkf_free(workflow);
    return ret;
}

#define MAX_FILE_SIZE ((size_t)1 << 30)

int vkf_load_workflow_file(const char *path, const vkf_registry *reg, vkf_graph **out,
                           vkf_load_error *err)
{
    uint8_t *buf = NULL;
    size_t len = 0, cap = 0;
    int ret;
    *out = NULL;
    if (err)
        vkf_load_error_clear(err);
    FILE *f = fopen(path, "rb");
    if (!f)
        return fail(err, errno == ENOENT ? VKF_ENOTFOUND : VKF_EIO, "%s: %s", path, strerror(errno));
    for (;;) {
        if (cap - len < 65536) {
            size_t ncap = cap ? cap * 2 : 65536;
            if (ncap > MAX_FILE_SIZE + 1) {
                ret = fail(err, VKF_EUNSUPPORTED, "%s: file larger than %zu MiB", path, MAX_FILE_SIZE >> 20);
                goto done;
            }
            uint8_t *nb = vkf_realloc(buf, ncap);
            if (!nb) {
                ret = fail(err, VKF_ENOMEM, "out of memory");
                goto done;
            }
            buf = nb;
            cap = ncap;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0)
            break;
    }
    if (ferror(f)) {
        ret = fail(err, VKF_EIO, "%s: %s", path, strerror(errno));
        goto done;
    }
    ret = vkf_load_workflow_mem(buf, len, path, reg, out, err);
done:
    fclose(f);
    vkf_free(buf);
    return ret;
}
