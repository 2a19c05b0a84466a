/*
 * Private to core/text: code-point strings and the Python string semantics
 * the CLIP tokenizer and ComfyUI's prompt parser are defined by (their
 * references are Python programs, so "a character" is a code point and
 * lower(), isspace(), float() and html.unescape() are CPython's).
 */
#ifndef VKF_TEXT_INTERNAL_H
#define VKF_TEXT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vkflow/models.h"

/* A growable code-point string. */
typedef struct vkf_u32buf {
    uint32_t *v;
    int n, cap;
} vkf_u32buf;

int vkf_u32_push(vkf_u32buf *b, uint32_t c);
int vkf_u32_append(vkf_u32buf *b, const uint32_t *s, int n);
void vkf_u32_free(vkf_u32buf *b);

/* UTF-8 → code points, appended to out.  Invalid sequences (overlong,
 * surrogates, truncated, stray bytes) become U+FFFD, one per bad byte. */
int vkf_utf8_decode(const char *s, size_t len, vkf_u32buf *out);
/* Code points → UTF-8 into buf of cap bytes (cap >= 4·n + 1 suffices);
 * returns the byte length, NUL-terminated. */
size_t vkf_utf8_encode(const uint32_t *s, int n, char *buf);

/* Unicode properties as CPython (the Unicode version of the Python that
 * generated unicode_data.h). */
/* How CLIP's case-insensitive pattern classifies c: [\p{L}], [\p{N}],
 * [^\s\p{L}\p{N}] (or space), or none of them (U+0345). */
enum { VKF_UC_OTHER = 0, VKF_UC_LETTER = 1, VKF_UC_NUMBER = 2, VKF_UC_NONE = 3 };
int vkf_uc_clip_class(uint32_t c);
bool vkf_uc_isspace(uint32_t c);       /* str.isspace() */
int vkf_uc_decimal(uint32_t c);        /* unicodedata.decimal(c, -1) */

/* out = the transformation of s[0..n) (out is cleared first). */
int vkf_uc_nfc(const uint32_t *s, int n, vkf_u32buf *out);
int vkf_uc_lower(const uint32_t *s, int n, vkf_u32buf *out);     /* str.lower() */
int vkf_uc_html_unescape(const uint32_t *s, int n, vkf_u32buf *out);

/* CLIP's tokenize of code points (no BOS/EOS): ids appended to *ids
 * (vkf_grow'n array with *n entries, *cap capacity). */
int vkf_clip_encode_codepoints(const vkf_clip_tokenizer *t, const uint32_t *s, int n,
                               int32_t **ids, int *n_ids, int *cap);

#endif
