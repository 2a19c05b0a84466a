/*
 * JSON text in and out with exact numbers.
 *
 * cJSON keeps numbers as doubles, which loses seeds above 2^53.  Before
 * handing the text to cJSON we check it strictly ourselves (so a syntax
 * error gets a line, a column and a reason, and a cJSON failure on text we
 * accepted can only be an allocation failure) and record every number
 * literal in document order; the literals are then attached to cJSON's
 * number items, walked in the same order.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph/internal.h"
#include "graph/load.h"

/* cJSON refuses deeper nesting (CJSON_NESTING_LIMIT) and longer numbers. */
#define MAX_DEPTH 512
#define MAX_NUMBER_LEN 63

/* ---- text buffer ----------------------------------------------------------- */

static bool sb_reserve(vkf_sb *sb, size_t extra)
{
    if (sb->failed)
        return false;
    if (sb->len + extra + 1 <= sb->cap)
        return true;
    size_t cap = sb->cap ? sb->cap : 256;
    while (cap < sb->len + extra + 1)
        cap *= 2;
    char *nb = vkf_realloc(sb->buf, cap);
    if (!nb) {
        sb->failed = true;
        return false;
    }
    sb->buf = nb;
    sb->cap = cap;
    return true;
}

void vkf_sb_putn(vkf_sb *sb, const char *s, size_t n)
{
    if (!sb_reserve(sb, n))
        return;
    memcpy(sb->buf + sb->len, s, n);
    sb->len += n;
    sb->buf[sb->len] = 0;
}

void vkf_sb_puts(vkf_sb *sb, const char *s) { vkf_sb_putn(sb, s, strlen(s)); }
void vkf_sb_putc(vkf_sb *sb, char c) { vkf_sb_putn(sb, &c, 1); }

int vkf_sb_finish(vkf_sb *sb, char **out)
{
    if (!sb->failed && !sb->buf)
        sb_reserve(sb, 0);
    if (sb->failed) {
        vkf_sb_free(sb);
        *out = NULL;
        return VKF_ENOMEM;
    }
    sb->buf[sb->len] = 0;
    *out = sb->buf;
    memset(sb, 0, sizeof(*sb));
    return 0;
}

void vkf_sb_free(vkf_sb *sb)
{
    vkf_free(sb->buf);
    memset(sb, 0, sizeof(*sb));
}

/* Decodes one UTF-8 sequence; invalid bytes give U+FFFD and advance 1. */
static uint32_t utf8_next(const unsigned char **p)
{
    const unsigned char *s = *p;
    uint32_t c = s[0];
    int n = c < 0x80 ? 0 : (c & 0xE0) == 0xC0 ? 1 : (c & 0xF0) == 0xE0 ? 2 : (c & 0xF8) == 0xF0 ? 3 : -1;
    if (n < 0) {
        *p = s + 1;
        return 0xFFFD;
    }
    c &= n == 0 ? 0x7F : n == 1 ? 0x1F : n == 2 ? 0x0F : 0x07;
    for (int i = 1; i <= n; i++) {
        if ((s[i] & 0xC0) != 0x80) {
            *p = s + 1;
            return 0xFFFD;
        }
        c = (c << 6) | (s[i] & 0x3F);
    }
    static const uint32_t min[] = {0, 0x80, 0x800, 0x10000};
    *p = s + n + 1;
    if (c < min[n] || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
        return 0xFFFD;
    return c;
}

void vkf_sb_put_json_string(vkf_sb *sb, const char *s)
{
    char esc[16];
    vkf_sb_putc(sb, '"');
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        const unsigned char *run = p;
        while (*p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\')
            p++;
        vkf_sb_putn(sb, (const char *)run, (size_t)(p - run));
        if (!*p)
            break;
        switch (*p) {
        case '"': vkf_sb_puts(sb, "\\\""); p++; continue;
        case '\\': vkf_sb_puts(sb, "\\\\"); p++; continue;
        case '\n': vkf_sb_puts(sb, "\\n"); p++; continue;
        case '\r': vkf_sb_puts(sb, "\\r"); p++; continue;
        case '\t': vkf_sb_puts(sb, "\\t"); p++; continue;
        case '\b': vkf_sb_puts(sb, "\\b"); p++; continue;
        case '\f': vkf_sb_puts(sb, "\\f"); p++; continue;
        default: break;
        }
        uint32_t c = utf8_next(&p);
        if (c >= 0x10000) {
            c -= 0x10000;
            snprintf(esc, sizeof(esc), "\\u%04x\\u%04x", 0xD800 + (unsigned)(c >> 10),
                     0xDC00 + (unsigned)(c & 0x3FF));
        } else {
            snprintf(esc, sizeof(esc), "\\u%04x", (unsigned)c);
        }
        vkf_sb_puts(sb, esc);
    }
    vkf_sb_putc(sb, '"');
}

void vkf_sb_put_json_double(vkf_sb *sb, double f)
{
    char buf[64];
    if (isnan(f)) {
        vkf_sb_puts(sb, "null");
        return;
    }
    if (isinf(f)) {
        vkf_sb_puts(sb, f > 0 ? "1e999" : "-1e999");
        return;
    }
    vkf_format_double(buf, sizeof(buf), f);
    vkf_sb_puts(sb, buf);
}

/* ---- load errors -------------------------------------------------------------- */

int vkf_load_fail(vkf_load_error *err, int code, const char *fmt, ...)
{
    if (!err)
        return code;
    err->code = code;
    vkf_free(err->message);
    va_list ap;
    va_start(ap, fmt);
    err->message = vkf_vasprintf(fmt, ap);
    va_end(ap);
    return code;
}

/* ---- strict checker ------------------------------------------------------------ */

typedef struct span {
    size_t off, len;
} span;

typedef struct checker {
    const char *s;
    size_t len, pos;
    const char *why;       /* set on the first error */
    span *nums;
    int nb_nums, cap_nums;
    bool oom;
} checker;

static bool fail_at(checker *c, size_t pos, const char *why)
{
    c->pos = pos;
    c->why = why;
    return false;
}

static void skip_ws(checker *c)
{
    while (c->pos < c->len) {
        char ch = c->s[c->pos];
        if (ch != ' ' && ch != '\t' && ch != '\n' && ch != '\r')
            break;
        c->pos++;
    }
}

static int hex4(const char *s)
{
    int v = 0;
    for (int i = 0; i < 4; i++) {
        char ch = s[i];
        int d = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
              : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 : -1;
        if (d < 0)
            return -1;
        v = v * 16 + d;
    }
    return v;
}

/* Length of the well-formed UTF-8 sequence at s (no overlongs, surrogates
 * or code points above U+10FFFF), or 0. */
static size_t utf8_len(const unsigned char *s, size_t avail)
{
    unsigned c = s[0];
    size_t n = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
    if (!n || n > avail)
        return 0;
    uint32_t cp = c & (n == 2 ? 0x1F : n == 3 ? 0x0F : 0x07);
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3F);
    }
    static const uint32_t min[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return n;
}

static bool check_string(checker *c)
{
    size_t start = c->pos++;
    while (c->pos < c->len) {
        unsigned char ch = (unsigned char)c->s[c->pos];
        if (ch == '"') {
            c->pos++;
            return true;
        }
        if (ch < 0x20)
            return fail_at(c, c->pos, "control character in string");
        if (ch >= 0x80) {
            size_t n = utf8_len((const unsigned char *)c->s + c->pos, c->len - c->pos);
            if (!n)
                return fail_at(c, c->pos, "invalid UTF-8 in string");
            c->pos += n;
            continue;
        }
        if (ch != '\\') {
            c->pos++;
            continue;
        }
        if (c->pos + 1 >= c->len)
            break;
        char e = c->s[c->pos + 1];
        if (strchr("\"\\/bfnrt", e) && e) {
            c->pos += 2;
            continue;
        }
        if (e != 'u')
            return fail_at(c, c->pos, "invalid escape in string");
        int u = c->pos + 6 <= c->len ? hex4(c->s + c->pos + 2) : -1;
        if (u < 0)
            return fail_at(c, c->pos, "invalid \\u escape in string");
        c->pos += 6;
        if (u >= 0xDC00 && u <= 0xDFFF)
            return fail_at(c, c->pos - 6, "unpaired surrogate in \\u escape");
        if (u >= 0xD800 && u <= 0xDBFF) {
            int lo = c->pos + 6 <= c->len && c->s[c->pos] == '\\' && c->s[c->pos + 1] == 'u'
                         ? hex4(c->s + c->pos + 2) : -1;
            if (lo < 0xDC00 || lo > 0xDFFF)
                return fail_at(c, c->pos - 6, "unpaired surrogate in \\u escape");
            c->pos += 6;
        }
    }
    return fail_at(c, start, "unterminated string");
}

static bool check_number(checker *c)
{
    size_t start = c->pos, p = c->pos;
    const char *s = c->s;
    if (p < c->len && s[p] == '-')
        p++;
    if (p >= c->len || s[p] < '0' || s[p] > '9')
        return fail_at(c, start, "invalid number");
    if (s[p] == '0') {
        p++;
    } else {
        while (p < c->len && s[p] >= '0' && s[p] <= '9')
            p++;
    }
    if (p < c->len && s[p] == '.') {
        p++;
        if (p >= c->len || s[p] < '0' || s[p] > '9')
            return fail_at(c, start, "invalid number");
        while (p < c->len && s[p] >= '0' && s[p] <= '9')
            p++;
    }
    if (p < c->len && (s[p] == 'e' || s[p] == 'E')) {
        p++;
        if (p < c->len && (s[p] == '+' || s[p] == '-'))
            p++;
        if (p >= c->len || s[p] < '0' || s[p] > '9')
            return fail_at(c, start, "invalid number");
        while (p < c->len && s[p] >= '0' && s[p] <= '9')
            p++;
    }
    if (p - start > MAX_NUMBER_LEN)
        return fail_at(c, start, "number literal too long");
    if (vkf_grow(&c->nums, &c->cap_nums, c->nb_nums + 1, sizeof(*c->nums)) < 0) {
        c->oom = true;
        return fail_at(c, start, "out of memory");
    }
    c->nums[c->nb_nums++] = (span){start, p - start};
    c->pos = p;
    return true;
}

static bool check_value(checker *c, int depth)
{
    skip_ws(c);
    if (c->pos >= c->len)
        return fail_at(c, c->pos, "unexpected end of input, expected a value");
    char ch = c->s[c->pos];
    if (ch == '{' || ch == '[') {
        char close = ch == '{' ? '}' : ']';
        if (depth >= MAX_DEPTH)
            return fail_at(c, c->pos, "nesting too deep");
        c->pos++;
        skip_ws(c);
        if (c->pos < c->len && c->s[c->pos] == close) {
            c->pos++;
            return true;
        }
        for (;;) {
            if (ch == '{') {
                skip_ws(c);
                if (c->pos >= c->len)
                    return fail_at(c, c->pos, "unexpected end of input in object");
                if (c->s[c->pos] != '"')
                    return fail_at(c, c->pos, "expected a string key");
                if (!check_string(c))
                    return false;
                skip_ws(c);
                if (c->pos >= c->len || c->s[c->pos] != ':')
                    return fail_at(c, c->pos, "expected ':' after key");
                c->pos++;
            }
            if (!check_value(c, depth + 1))
                return false;
            skip_ws(c);
            if (c->pos >= c->len)
                return fail_at(c, c->pos, ch == '{' ? "unexpected end of input in object"
                                                    : "unexpected end of input in array");
            if (c->s[c->pos] == close) {
                c->pos++;
                return true;
            }
            if (c->s[c->pos] != ',')
                return fail_at(c, c->pos, ch == '{' ? "expected ',' or '}'" : "expected ',' or ']'");
            c->pos++;
        }
    }
    if (ch == '"')
        return check_string(c);
    if (ch == '-' || (ch >= '0' && ch <= '9'))
        return check_number(c);
    static const char *const words[] = {"true", "false", "null"};
    for (size_t i = 0; i < VKF_ARRAY_SIZE(words); i++) {
        size_t n = strlen(words[i]);
        if (c->len - c->pos >= n && !memcmp(c->s + c->pos, words[i], n)) {
            c->pos += n;
            return true;
        }
    }
    return fail_at(c, c->pos, "unexpected character");
}

/* Attaches literals to number items in document order. */
static int attach(cJSON *item, checker *c, int *next)
{
    for (; item; item = item->next) {
        if (cJSON_IsNumber(item)) {
            if (*next >= c->nb_nums)
                return VKF_EPARSE;
            span sp = c->nums[(*next)++];
            char *lit = vkf_strndup(c->s + sp.off, sp.len);
            if (!lit)
                return VKF_ENOMEM;
            item->valuestring = lit;
        } else if (item->child) {
            int err = attach(item->child, c, next);
            if (err < 0)
                return err;
        }
    }
    return 0;
}

int vkf_json_parse(const char *text, size_t len, const char *what, cJSON **out,
                   vkf_load_error *err)
{
    checker c = {.s = text, .len = len};
    cJSON *root = NULL;
    int ret;
    *out = NULL;
    vkf_cjson_init();

    size_t bom = len >= 3 && !memcmp(text, "\xEF\xBB\xBF", 3) ? 3 : 0;
    c.pos = bom;
    bool ok = check_value(&c, 0);
    if (ok) {
        skip_ws(&c);
        if (c.pos < len)
            ok = fail_at(&c, c.pos, "unexpected data after the JSON value");
    }
    if (!ok) {
        if (c.oom) {
            ret = vkf_load_fail(err, VKF_ENOMEM, "out of memory");
            goto done;
        }
        int line = 1, col = 1;
        for (size_t i = 0; i < c.pos && i < len; i++) {
            if (text[i] == '\n') {
                line++;
                col = 1;
            } else if (((unsigned char)text[i] & 0xC0) != 0x80) {
                col++;
            }
        }
        ret = vkf_load_fail(err, VKF_EPARSE, "%s%sline %d, column %d: %s", what ? what : "",
                            what ? ": " : "", line, col, c.why);
        if (err) {
            err->line = line;
            err->column = col;
        }
        goto done;
    }
    root = cJSON_ParseWithLength(text + bom, len - bom);
    if (!root) {
        /* The text passed the strict check: only allocation can fail. */
        ret = vkf_load_fail(err, VKF_ENOMEM, "out of memory while parsing JSON");
        goto done;
    }
    int next = 0;
    ret = attach(root, &c, &next);
    if (ret == 0 && next != c.nb_nums)
        ret = VKF_EPARSE;
    if (ret < 0) {
        cJSON_Delete(root);
        root = NULL;
        ret = ret == VKF_ENOMEM ? vkf_load_fail(err, VKF_ENOMEM, "out of memory")
                                : vkf_load_fail(err, VKF_EPARSE, "%s%snumber literals mismatch",
                                                what ? what : "", what ? ": " : "");
        goto done;
    }
    *out = root;
done:
    vkf_free(c.nums);
    return ret;
}

/* ---- writer ---------------------------------------------------------------------- */

/* A literal in strict JSON number syntax (what the checker accepts). */
static bool strict_number(const char *s)
{
    checker c = {.s = s, .len = strlen(s)};
    if (!c.len || c.len > MAX_NUMBER_LEN)
        return false;
    /* check_number records spans: give it room that cannot fail. */
    span one;
    c.nums = &one;
    c.cap_nums = 1;
    return check_number(&c) && c.pos == c.len;
}

static void newline(vkf_sb *sb, bool pretty, int indent)
{
    if (!pretty)
        return;
    vkf_sb_putc(sb, '\n');
    for (int i = 0; i < indent; i++)
        vkf_sb_puts(sb, "  ");
}

void vkf_json_write(vkf_sb *sb, const cJSON *item, bool pretty, int indent)
{
    if (cJSON_IsNumber(item)) {
        if (item->valuestring && strict_number(item->valuestring))
            vkf_sb_puts(sb, item->valuestring);
        else
            vkf_sb_put_json_double(sb, item->valuedouble);
    } else if (cJSON_IsString(item)) {
        vkf_sb_put_json_string(sb, item->valuestring ? item->valuestring : "");
    } else if (cJSON_IsTrue(item)) {
        vkf_sb_puts(sb, "true");
    } else if (cJSON_IsFalse(item)) {
        vkf_sb_puts(sb, "false");
    } else if (cJSON_IsRaw(item)) {
        vkf_sb_puts(sb, item->valuestring ? item->valuestring : "null");
    } else if (cJSON_IsArray(item) || cJSON_IsObject(item)) {
        bool obj = cJSON_IsObject(item);
        vkf_sb_putc(sb, obj ? '{' : '[');
        const cJSON *ch = item->child;
        for (; ch; ch = ch->next) {
            newline(sb, pretty, indent + 1);
            if (obj) {
                vkf_sb_put_json_string(sb, ch->string ? ch->string : "");
                vkf_sb_puts(sb, pretty ? ": " : ":");
            }
            vkf_json_write(sb, ch, pretty, indent + 1);
            if (ch->next)
                vkf_sb_putc(sb, ',');
        }
        if (item->child)
            newline(sb, pretty, indent);
        vkf_sb_putc(sb, obj ? '}' : ']');
    } else {
        vkf_sb_puts(sb, "null");
    }
}

int vkf_json_to_text(const cJSON *item, char **out)
{
    vkf_sb sb = {0};
    vkf_json_write(&sb, item, false, 0);
    return vkf_sb_finish(&sb, out);
}

const cJSON *vkf_json_get(const cJSON *obj, const char *key)
{
    const cJSON *found = NULL;
    if (!cJSON_IsObject(obj))
        return NULL;
    for (const cJSON *it = obj->child; it; it = it->next)
        if (it->string && !strcmp(it->string, key))
            found = it;
    return found;
}

/* ---- JSON to values ---------------------------------------------------------------- */

/* Integer literal text ("-?digits") as an exact value; false if not one or
 * out of range. */
static bool parse_int_literal(const char *lit, int64_t *i, bool *is_u64)
{
    bool neg = *lit == '-';
    const char *d = lit + neg;
    if (!*d || strspn(d, "0123456789") != strlen(d))
        return false;
    errno = 0;
    unsigned long long u = strtoull(d, NULL, 10);
    if (errno == ERANGE)
        return false;
    if (neg) {
        if (u > (unsigned long long)INT64_MAX + 1)
            return false;
        *i = u == (unsigned long long)INT64_MAX + 1 ? INT64_MIN : -(int64_t)u;
        *is_u64 = false;
        return true;
    }
    *i = (int64_t)(uint64_t)u;
    *is_u64 = u > (unsigned long long)INT64_MAX;
    return true;
}

bool vkf_json_int(const cJSON *item, int64_t *out)
{
    if (!cJSON_IsNumber(item))
        return false;
    bool is_u64;
    if (item->valuestring && parse_int_literal(item->valuestring, out, &is_u64))
        return !is_u64;
    double f = item->valuedouble;
    if (!(f >= -9.2e18 && f <= 9.2e18) || f != floor(f))
        return false;
    *out = (int64_t)f;
    return true;
}

int vkf_json_to_value(const cJSON *item, vkf_value *v)
{
    memset(v, 0, sizeof(*v));
    if (cJSON_IsObject(item)) {
        const cJSON *inner = vkf_json_get(item, "__value__");
        if (inner)
            item = inner;
    }
    if (cJSON_IsNumber(item)) {
        int64_t i;
        bool is_u64;
        if (item->valuestring && parse_int_literal(item->valuestring, &i, &is_u64)) {
            if (is_u64)
                vkf_value_set_u64(v, (uint64_t)i);
            else
                vkf_value_set_int(v, i);
        } else {
            vkf_value_set_float(v, item->valuedouble);
        }
        return 0;
    }
    if (cJSON_IsString(item))
        return vkf_value_set_string(v, item->valuestring ? item->valuestring : "");
    if (cJSON_IsBool(item)) {
        vkf_value_set_bool(v, cJSON_IsTrue(item));
        return 0;
    }
    char *text;
    int err = vkf_json_to_text(item, &text);
    if (err < 0)
        return err;
    v->kind = VKF_VAL_JSON;
    v->u.s = text;
    return 0;
}
