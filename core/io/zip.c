/*
 * Read-only zip directory over a mapped file: end of central directory
 * (zip64 too), central directory entries, local headers, stored and
 * deflated entries.  Every offset and size is checked against the file.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "io/weights_internal.h"

static uint16_t le16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static uint64_t le64(const uint8_t *p) { return le32(p) | (uint64_t)le32(p + 4) << 32; }

bool vkf_zip_is_zip(const uint8_t *p, size_t size)
{
    return size >= 4 && p[0] == 'P' && p[1] == 'K' &&
           ((p[2] == 3 && p[3] == 4) || (p[2] == 5 && p[3] == 6));
}

/* Zip64 extended information: the fields that are 0xffffffff in the
 * central record appear in this order. */
static int zip64_extra(const wt_file *f, const uint8_t *extra, size_t len,
                       wt_zip_entry *e, bool need_size, bool need_comp, bool need_off)
{
    size_t i = 0;
    while (i + 4 <= len) {
        uint16_t id = le16(extra + i), sz = le16(extra + i + 2);
        if (i + 4 + sz > len)
            break;
        if (id == 1) {
            const uint8_t *p = extra + i + 4;
            size_t k = 0;
            if (need_size) {
                if (k + 8 > sz)
                    goto bad;
                e->size = le64(p + k);
                k += 8;
            }
            if (need_comp) {
                if (k + 8 > sz)
                    goto bad;
                e->comp_size = le64(p + k);
                k += 8;
            }
            if (need_off) {
                if (k + 8 > sz)
                    goto bad;
                e->local_offset = le64(p + k);
            }
            return 0;
        }
        i += 4 + (size_t)sz;
    }
    if (!need_size && !need_comp && !need_off)
        return 0;
bad:
    return wt_fail(f, VKF_EPARSE, "zip: bad zip64 extra field");
}

static int name_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);
    return c ? c : (alen > blen) - (alen < blen);
}

static int entry_cmp(const void *x, const void *y)
{
    const wt_zip_entry *a = x, *b = y;
    return name_cmp(a->name, a->name_len, b->name, b->name_len);
}

int vkf_zip_open(const wt_file *f, wt_zip *z)
{
    const uint8_t *b = f->base;
    size_t size = f->size;
    int err = 0, cap = 0;
    memset(z, 0, sizeof(*z));
    if (size < 22)
        return wt_fail(f, VKF_EPARSE, "zip: truncated (no end of central directory)");
    size_t eocd = SIZE_MAX;
    size_t lo = size > 22 + 65535 ? size - 22 - 65535 : 0;
    for (size_t i = size - 22 + 1; i-- > lo;) {
        if (le32(b + i) == 0x06054b50 && i + 22 + le16(b + i + 20) <= size) {
            eocd = i;
            break;
        }
    }
    if (eocd == SIZE_MAX)
        return wt_fail(f, VKF_EPARSE, "zip: end of central directory not found (truncated?)");
    uint64_t n = le16(b + eocd + 10);
    uint64_t cd_size = le32(b + eocd + 12), cd_off = le32(b + eocd + 16);
    if (eocd >= 20 && le32(b + eocd - 20) == 0x07064b50) {
        uint64_t z64 = le64(b + eocd - 20 + 8);
        if (size < 56 || z64 > size - 56 || le32(b + z64) != 0x06064b50)
            return wt_fail(f, VKF_EPARSE, "zip: bad zip64 end of central directory");
        n = le64(b + z64 + 32);
        cd_size = le64(b + z64 + 40);
        cd_off = le64(b + z64 + 48);
    }
    if (cd_off > size || cd_size > size - cd_off)
        return wt_fail(f, VKF_EPARSE, "zip: central directory is past the end of the file");
    if (n > WT_MAX_ZIP_ENTRIES || n > cd_size / 46 + 1)
        return wt_fail(f, VKF_EPARSE, "zip: implausible entry count %llu",
                       (unsigned long long)n);
    const uint8_t *p = b + cd_off, *end = p + cd_size;
    for (uint64_t k = 0; k < n; k++) {
        if (end - p < 46 || le32(p) != 0x02014b50) {
            err = wt_fail(f, VKF_EPARSE, "zip: bad central directory entry %llu",
                          (unsigned long long)k);
            goto fail;
        }
        size_t nlen = le16(p + 28), xlen = le16(p + 30), clen = le16(p + 32);
        if ((size_t)(end - p) < 46 + nlen + xlen + clen) {
            err = wt_fail(f, VKF_EPARSE, "zip: central directory entry %llu truncated",
                          (unsigned long long)k);
            goto fail;
        }
        VKF_TRY(vkf_grow(&z->e, &cap, z->count + 1, sizeof(*z->e)));
        wt_zip_entry *e = &z->e[z->count++];
        memset(e, 0, sizeof(*e));
        e->method = le16(p + 10);
        e->crc = le32(p + 16);
        e->comp_size = le32(p + 20);
        e->size = le32(p + 24);
        e->local_offset = le32(p + 42);
        e->name = (const char *)p + 46;
        e->name_len = nlen;
        VKF_TRY(zip64_extra(f, p + 46 + nlen, xlen, e, e->size == 0xffffffffu,
                            e->comp_size == 0xffffffffu, e->local_offset == 0xffffffffu));
        if (le16(p + 8) & 1) {
            err = wt_fail(f, VKF_EUNSUPPORTED, "zip: entry '%.*s' is encrypted",
                          (int)nlen, e->name);
            goto fail;
        }
        uint64_t lo_off = e->local_offset;
        if (lo_off > size || size - lo_off < 30 || le32(b + lo_off) != 0x04034b50) {
            err = wt_fail(f, VKF_EPARSE, "zip: entry '%.*s': bad local header offset",
                          (int)nlen, e->name);
            goto fail;
        }
        uint64_t data = lo_off + 30 + le16(b + lo_off + 26) + le16(b + lo_off + 28);
        if (data > size || e->comp_size > size - data) {
            err = wt_fail(f, VKF_EPARSE, "zip: entry '%.*s' is past the end of the file "
                          "(truncated?)", (int)nlen, e->name);
            goto fail;
        }
        if (e->method != 0 && e->method != 8) {
            err = wt_fail(f, VKF_EUNSUPPORTED, "zip: entry '%.*s' uses compression method %d",
                          (int)nlen, e->name, e->method);
            goto fail;
        }
        if (e->method == 0 && e->size != e->comp_size) {
            err = wt_fail(f, VKF_EPARSE, "zip: stored entry '%.*s' has differing sizes",
                          (int)nlen, e->name);
            goto fail;
        }
        e->data = b + data;
        p += 46 + nlen + xlen + clen;
    }
    if (z->count > 1)
        qsort(z->e, (size_t)z->count, sizeof(*z->e), entry_cmp);
    return 0;
fail:
    vkf_zip_close(z);
    return err;
}

void vkf_zip_close(wt_zip *z)
{
    vkf_free(z->e);
    memset(z, 0, sizeof(*z));
}

const wt_zip_entry *vkf_zip_find(const wt_zip *z, const char *name)
{
    size_t n = strlen(name);
    int lo = 0, hi = z->count;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        int c = name_cmp(z->e[mid].name, z->e[mid].name_len, name, n);
        if (c == 0)
            return &z->e[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static voidpf z_alloc(voidpf opaque, uInt items, uInt size)
{
    (void)opaque;
    return vkf_calloc(items, size);
}

static void z_free(voidpf opaque, voidpf p)
{
    (void)opaque;
    vkf_free(p);
}

int vkf_zip_inflate(const wt_file *f, const char *what, const uint8_t *comp,
                    uint64_t comp_size, uint64_t size, uint8_t **out)
{
    *out = NULL;
    if (size > WT_MAX_INFLATE || size > SIZE_MAX - 1)
        return wt_fail(f, VKF_EPARSE, "zip: entry '%s' claims %llu bytes", what,
                       (unsigned long long)size);
    /* Deflate expands at most 1032:1; a larger claim is a corrupt (or
     * hostile) header, refused before allocating for it. */
    if (size / 1032 > comp_size + 64)
        return wt_fail(f, VKF_EPARSE,
                       "zip: entry '%s' claims %llu bytes from %llu compressed bytes", what,
                       (unsigned long long)size, (unsigned long long)comp_size);
    uint8_t *buf = vkf_malloc((size_t)size + 1);
    if (!buf)
        return VKF_ENOMEM;
    z_stream zs = {.zalloc = z_alloc, .zfree = z_free};
    if (inflateInit2(&zs, -MAX_WBITS) != Z_OK) {
        vkf_free(buf);
        return VKF_ENOMEM;
    }
    uint64_t in_left = comp_size, out_left = size + 1;
    zs.next_in = (Bytef *)comp;
    zs.next_out = buf;
    int zr;
    for (;;) {
        if (zs.avail_in == 0 && in_left) {
            zs.avail_in = in_left > (1u << 30) ? (1u << 30) : (uInt)in_left;
            in_left -= zs.avail_in;
        }
        if (zs.avail_out == 0 && out_left) {
            zs.avail_out = out_left > (1u << 30) ? (1u << 30) : (uInt)out_left;
            out_left -= zs.avail_out;
        }
        zr = inflate(&zs, Z_NO_FLUSH);
        if (zr != Z_OK)
            break;
    }
    uint64_t out_done = size + 1 - out_left - zs.avail_out;
    inflateEnd(&zs);
    if (zr == Z_MEM_ERROR) {
        vkf_free(buf);
        return VKF_ENOMEM;
    }
    if (zr != Z_STREAM_END || out_done != size) {
        vkf_free(buf);
        return wt_fail(f, VKF_EPARSE, "zip: entry '%s': corrupt deflate data", what);
    }
    *out = buf;
    return 0;
}

int vkf_zip_read(const wt_file *f, const wt_zip_entry *e, uint64_t max,
                 const uint8_t **data, uint8_t **owned)
{
    char name[256];
    snprintf(name, sizeof(name), "%.*s", (int)(e->name_len > 200 ? 200 : e->name_len),
             e->name);
    *owned = NULL;
    *data = NULL;
    if (e->size > max)
        return wt_fail(f, VKF_EPARSE, "zip: entry '%s' is %llu bytes (limit %llu)", name,
                       (unsigned long long)e->size, (unsigned long long)max);
    if (e->method == 0) {
        *data = e->data;
        return 0;
    }
    int err = vkf_zip_inflate(f, name, e->data, e->comp_size, e->size, owned);
    *data = *owned;
    return err;
}
