/* YAML-subset parser for configuration files (see yaml.h for the subset). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "yaml.h"

#define MAX_DEPTH 64
#define MAX_FILE_SIZE (16 << 20)

typedef struct line {
    const char *raw;     /* start of the line */
    int rawlen;          /* without the line break */
    const char *text;    /* content after the indentation */
    int len;
    int indent;          /* leading spaces */
    int no;              /* 1-based line number */
    bool blank;          /* only spaces / tabs */
    bool comment;        /* first non-blank character is '#' */
    bool tab_indent;     /* a tab precedes the content */
} line;

typedef struct parser {
    line *lines;
    int n, cap;
    int pos;
    int depth;
    const char *name;
    const vkf_log *log;
} parser;

__attribute__((format(printf, 3, 4)))
static int perr(const parser *p, int no, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    vkf_logf(p->log, VKF_LOG_ERROR, "%s:%d: %s", p->name, no, msg);
    return VKF_EPARSE;
}

static void set_content(line *l, int indent)
{
    l->indent = indent;
    l->text = l->raw + indent;
    l->len = l->rawlen - indent;
}

static int split_lines(parser *p, const char *text, size_t size)
{
    int err = 0;
    size_t i = 0;
    int no = 0;
    if (size >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
        i = 3;
    while (i < size) {
        const char *s = text + i;
        const char *nl = memchr(s, '\n', size - i);
        size_t len = nl ? (size_t)(nl - s) : size - i;
        i += len + (nl ? 1 : 0);
        no++;
        if (len > 0 && s[len - 1] == '\r')
            len--;
        if (len > (1u << 24))
            return perr(p, no, "line too long");
        if (memchr(s, '\0', len))
            return perr(p, no, "NUL byte in file");
        VKF_TRY(vkf_grow(&p->lines, &p->cap, p->n + 1, sizeof(line)));
        line *l = &p->lines[p->n++];
        *l = (line){.raw = s, .rawlen = (int)len, .no = no};
        int sp = 0;
        while (sp < l->rawlen && s[sp] == ' ')
            sp++;
        set_content(l, sp);
        int k = sp;
        while (k < l->rawlen && (s[k] == ' ' || s[k] == '\t'))
            k++;
        l->blank = k == l->rawlen;
        l->comment = !l->blank && s[k] == '#';
        l->tab_indent = !l->blank && k > sp;
    }
    return 0;
fail:
    return err;
}

static bool at_eof(const parser *p) { return p->pos >= p->n; }
static line *cur(parser *p) { return &p->lines[p->pos]; }

static void skip_blank(parser *p)
{
    while (!at_eof(p) && (cur(p)->blank || cur(p)->comment))
        p->pos++;
}

static bool is_seq_item(const line *l)
{
    return l->len >= 1 && l->text[0] == '-' &&
           (l->len == 1 || l->text[1] == ' ' || l->text[1] == '\t');
}

static bool is_space(char c) { return c == ' ' || c == '\t'; }

static vkf_yaml_node *new_node(vkf_yaml_type type, int no)
{
    vkf_yaml_node *n = vkf_calloc(1, sizeof(*n));
    if (n) {
        n->type = type;
        n->line = no;
    }
    return n;
}

void vkf_yaml_free(vkf_yaml_node **node)
{
    if (!node || !*node)
        return;
    vkf_yaml_node *n = *node;
    for (int i = 0; i < n->n; i++) {
        vkf_free(n->entries[i].key);
        vkf_yaml_free(&n->entries[i].value);
    }
    vkf_free(n->entries);
    vkf_free(n->scalar);
    vkf_free(n);
    *node = NULL;
}

/* Takes ownership of key and value, also on failure.  A duplicate key keeps
 * its position and takes the new value (PyYAML behaviour). */
static int add_entry(vkf_yaml_node *n, char *key, vkf_yaml_node *value)
{
    int err = 0;
    if (key) {
        for (int i = 0; i < n->n; i++) {
            if (strcmp(n->entries[i].key, key) == 0) {
                vkf_yaml_free(&n->entries[i].value);
                n->entries[i].value = value;
                vkf_free(key);
                return 0;
            }
        }
    }
    VKF_TRY(vkf_grow(&n->entries, &n->cap, n->n + 1, sizeof(vkf_yaml_entry)));
    n->entries[n->n++] = (vkf_yaml_entry){.key = key, .value = value};
    return 0;
fail:
    vkf_free(key);
    vkf_yaml_free(&value);
    return err;
}

static int utf8_put(char *o, unsigned long cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* s[0] is the opening quote.  On success *out is the unescaped text and
 * *used the number of bytes up to and including the closing quote. */
static int parse_quoted(parser *p, int no, const char *s, int len, char **out,
                        int *used)
{
    int err = 0;
    char q = s[0];
    /* Every escape shrinks or keeps the length, so len bytes suffice. */
    char *o = vkf_malloc((size_t)len + 1);
    VKF_CHECK_ALLOC(o);
    int k = 0;
    int i = 1;
    for (;; i++) {
        if (i >= len) {
            err = perr(p, no, "unterminated quoted string (multi-line quoted "
                              "scalars are not supported)");
            goto fail;
        }
        char c = s[i];
        if (c == q) {
            if (q == '\'' && i + 1 < len && s[i + 1] == '\'') {
                o[k++] = '\'';
                i++;
                continue;
            }
            break;
        }
        if (q == '\'' || c != '\\') {
            o[k++] = c;
            continue;
        }
        if (++i >= len)
            continue; /* reported as unterminated on the next round */
        static const char simple_in[] = "0abtnvfre \"/\\\t";
        static const char simple_out[] = "\0\a\b\t\n\v\f\r\x1b \"/\\\t";
        const char *hit = memchr(simple_in, s[i], sizeof(simple_in) - 1);
        if (hit) {
            o[k++] = simple_out[hit - simple_in];
            continue;
        }
        int digits = s[i] == 'x' ? 2 : s[i] == 'u' ? 4 : s[i] == 'U' ? 8 : 0;
        if (!digits || i + digits >= len) {
            err = perr(p, no, "invalid escape '\\%c' in double-quoted string", s[i]);
            goto fail;
        }
        unsigned long cp = 0;
        for (int d = 1; d <= digits; d++) {
            int h = hex_value(s[i + d]);
            if (h < 0) {
                err = perr(p, no, "invalid hex digit in escape");
                goto fail;
            }
            cp = cp * 16 + (unsigned long)h;
        }
        if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
            err = perr(p, no, "escape gives an invalid or NUL character");
            goto fail;
        }
        k += utf8_put(o + k, cp);
        i += digits;
    }
    if (memchr(o, '\0', (size_t)k)) {
        err = perr(p, no, "NUL character in string");
        goto fail;
    }
    o[k] = 0;
    *out = o;
    *used = i + 1;
    return 0;
fail:
    vkf_free(o);
    return err;
}

/* Offset of the ':' that ends a mapping key in s, or -1.  Keys are plain
 * text or a quoted string; the colon must be followed by a blank or end. */
static int key_colon(const char *s, int len)
{
    int i = 0;
    if (len > 0 && (s[0] == '"' || s[0] == '\'')) {
        char q = s[0];
        for (i = 1; i < len; i++) {
            if (q == '"' && s[i] == '\\') {
                i++;
            } else if (s[i] == q) {
                if (q == '\'' && i + 1 < len && s[i + 1] == '\'') {
                    i++;
                    continue;
                }
                break;
            }
        }
        if (i >= len)
            return -1;
        i++;
        while (i < len && is_space(s[i]))
            i++;
        return i < len && s[i] == ':' && (i + 1 == len || is_space(s[i + 1])) ? i : -1;
    }
    for (i = 0; i < len; i++) {
        if (s[i] == '#' && i > 0 && is_space(s[i - 1]))
            return -1;
        if (s[i] == ':' && (i + 1 == len || is_space(s[i + 1])))
            return i;
    }
    return -1;
}

static int parse_block(parser *p, int min_indent, vkf_yaml_node **out);

static bool is_null_word(const char *s)
{
    return !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") ||
           !strcmp(s, "NULL");
}

/* Literal or folded block scalar; s points at the '|' or '>' header. */
static int parse_block_scalar(parser *p, int no, const char *s, int len,
                              int parent_indent, vkf_yaml_node **out)
{
    int err = 0;
    vkf_yaml_node *n = NULL;
    bool folded = s[0] == '>';
    char chomp = 0;
    int explicit_indent = 0;
    int i = 1;
    for (; i < len && !is_space(s[i]); i++) {
        if ((s[i] == '-' || s[i] == '+') && !chomp)
            chomp = s[i];
        else if (s[i] >= '1' && s[i] <= '9' && !explicit_indent)
            explicit_indent = s[i] - '0';
        else
            return perr(p, no, "bad block scalar header");
    }
    while (i < len && is_space(s[i]))
        i++;
    if (i < len && s[i] != '#')
        return perr(p, no, "text after a block scalar header");

    int bi = explicit_indent ? parent_indent + explicit_indent : -1;
    int first = p->pos;
    if (bi < 0) {
        bi = parent_indent + 1;
        for (int k = first; k < p->n; k++) {
            if (!p->lines[k].blank) {
                if (p->lines[k].indent > parent_indent)
                    bi = p->lines[k].indent;
                break;
            }
        }
    }
    int end = first;
    size_t total = 2;
    while (end < p->n) {
        const line *l = &p->lines[end];
        if (!l->blank && l->indent < bi)
            break;
        total += (size_t)l->rawlen + 1;
        end++;
    }
    /* Trailing blank lines belong to the block only for chomping; the
     * indentation they carry is not content. */
    int last = end;
    while (last > first && p->lines[last - 1].blank)
        last--;
    int trailing = end - last;

    n = new_node(VKF_YAML_SCALAR, no);
    VKF_CHECK_ALLOC(n);
    char *o = n->scalar = vkf_malloc(total + (size_t)trailing);
    VKF_CHECK_ALLOC(o);
    size_t k = 0;
    enum { NONE, EMPTY, NORMAL, MORE } prev = NONE;
    for (int li = first; li < last; li++) {
        const line *l = &p->lines[li];
        const char *c = l->rawlen > bi ? l->raw + bi : "";
        size_t cl = l->rawlen > bi ? (size_t)(l->rawlen - bi) : 0;
        if (!folded) {
            if (li > first)
                o[k++] = '\n';
        } else if (l->blank) {
            o[k++] = '\n';
        } else {
            bool more = is_space(c[0]);
            if (prev == NORMAL && !more)
                o[k++] = ' ';
            else if (prev == NORMAL || prev == MORE)
                o[k++] = '\n';
        }
        memcpy(o + k, c, cl);
        k += cl;
        prev = l->blank ? EMPTY : is_space(c[0]) ? MORE : NORMAL;
    }
    if (last > first && chomp != '-')
        o[k++] = '\n';
    for (int t = 0; chomp == '+' && t < trailing; t++)
        o[k++] = '\n';
    o[k] = 0;
    p->pos = end;
    *out = n;
    return 0;
fail:
    vkf_yaml_free(&n);
    return err;
}

/* The value part of "key: value" or "- value" on the current line (`no`),
 * which this consumes.  parent_indent is the indentation of the key or dash;
 * in_map allows "key:" to be followed by a sequence at the key's own
 * indentation. */
static int parse_value(parser *p, int no, const char *s, int len,
                       int parent_indent, bool in_map, vkf_yaml_node **out)
{
    int err = 0;
    vkf_yaml_node *n = NULL;
    p->pos++;
    while (len > 0 && is_space(s[0])) {
        s++;
        len--;
    }
    if (len == 0 || s[0] == '#') {
        skip_blank(p);
        if (!at_eof(p) && cur(p)->indent > parent_indent)
            return parse_block(p, parent_indent + 1, out);
        if (in_map && !at_eof(p) && cur(p)->indent == parent_indent &&
            is_seq_item(cur(p)))
            return parse_block(p, parent_indent, out);
        n = new_node(VKF_YAML_NULL, no);
        VKF_CHECK_ALLOC(n);
        *out = n;
        return 0;
    }
    switch (s[0]) {
    case '|':
    case '>':
        return parse_block_scalar(p, no, s, len, parent_indent, out);
    case '[':
    case '{':
        return perr(p, no, "flow collections ([...] / {...}) are not supported");
    case '&':
    case '*':
    case '!':
        return perr(p, no, "anchors, aliases and tags are not supported");
    case '@':
    case '`':
        return perr(p, no, "a plain value cannot start with '%c'", s[0]);
    case '?':
        if (len == 1 || is_space(s[1]))
            return perr(p, no, "complex mapping keys are not supported");
        break;
    default:
        break;
    }
    n = new_node(VKF_YAML_SCALAR, no);
    VKF_CHECK_ALLOC(n);
    if (s[0] == '"' || s[0] == '\'') {
        int used = 0;
        VKF_TRY(parse_quoted(p, no, s, len, &n->scalar, &used));
        while (used < len && is_space(s[used]))
            used++;
        if (used < len && s[used] != '#') {
            err = perr(p, no, "text after a quoted string");
            goto fail;
        }
    } else {
        int end = len;
        for (int i = 1; i < len; i++) {
            if (s[i] == '#' && is_space(s[i - 1])) {
                end = i;
                break;
            }
        }
        while (end > 0 && is_space(s[end - 1]))
            end--;
        if (key_colon(s, end) >= 0) {
            err = perr(p, no, "unexpected ':' in a plain value (quote the value, or "
                              "fix the indentation)");
            goto fail;
        }
        n->plain = true;
        n->scalar = vkf_strndup(s, (size_t)end);
        VKF_CHECK_ALLOC(n->scalar);
        if (is_null_word(n->scalar)) {
            vkf_free(n->scalar);
            n->scalar = NULL;
            n->type = VKF_YAML_NULL;
        }
    }
    *out = n;
    return 0;
fail:
    vkf_yaml_free(&n);
    return err;
}

static bool line_is(const line *l, const char *marker)
{
    size_t m = strlen(marker);
    if (l->indent != 0 || (size_t)l->len < m || memcmp(l->text, marker, m) != 0)
        return false;
    for (int i = (int)m; i < l->len; i++) {
        if (l->text[i] == '#' && is_space(l->text[i - 1]))
            return true;
        if (!is_space(l->text[i]))
            return false;
    }
    return true;
}

static int check_structural(parser *p, const line *l)
{
    if (l->tab_indent)
        return perr(p, l->no, "tab character in indentation");
    return 0;
}

static int parse_key(parser *p, const line *l, int colon, char **key)
{
    const char *s = l->text;
    if (s[0] == '"' || s[0] == '\'') {
        int used = 0;
        return parse_quoted(p, l->no, s, colon, key, &used);
    }
    if (strchr("[]{}&*!|>%@`?,", s[0]) || (s[0] == '-' && colon == 1))
        return perr(p, l->no, "unsupported mapping key starting with '%c'", s[0]);
    int end = colon;
    while (end > 0 && is_space(s[end - 1]))
        end--;
    if (end == 0)
        return perr(p, l->no, "empty mapping key");
    *key = vkf_strndup(s, (size_t)end);
    return *key ? 0 : VKF_ENOMEM;
}

static int parse_map(parser *p, int indent, vkf_yaml_node **out)
{
    int err = 0;
    vkf_yaml_node *n = new_node(VKF_YAML_MAP, cur(p)->no);
    VKF_CHECK_ALLOC(n);
    for (;;) {
        skip_blank(p);
        if (at_eof(p))
            break;
        line *l = cur(p);
        if (l->indent < indent || line_is(l, "---") || line_is(l, "..."))
            break;
        if (l->indent > indent) {
            err = perr(p, l->no, "unexpected indentation (multi-line plain values "
                                 "are not supported; use a '|' block)");
            goto fail;
        }
        VKF_TRY(check_structural(p, l));
        if (is_seq_item(l)) {
            err = perr(p, l->no, "sequence item where a mapping key was expected");
            goto fail;
        }
        int colon = key_colon(l->text, l->len);
        if (colon < 0) {
            err = perr(p, l->no, "expected 'key: value'");
            goto fail;
        }
        char *key = NULL;
        vkf_yaml_node *value = NULL;
        VKF_TRY(parse_key(p, l, colon, &key));
        int no = l->no;
        const char *rest = l->text + colon + 1;
        int rest_len = l->len - colon - 1;
        err = parse_value(p, no, rest, rest_len, indent, true, &value);
        if (err < 0) {
            vkf_free(key);
            goto fail;
        }
        VKF_TRY(add_entry(n, key, value));
    }
    *out = n;
    return 0;
fail:
    vkf_yaml_free(&n);
    return err;
}

static int parse_seq(parser *p, int indent, vkf_yaml_node **out)
{
    int err = 0;
    vkf_yaml_node *n = new_node(VKF_YAML_SEQ, cur(p)->no);
    VKF_CHECK_ALLOC(n);
    for (;;) {
        skip_blank(p);
        if (at_eof(p))
            break;
        line *l = cur(p);
        if (l->indent < indent || line_is(l, "---") || line_is(l, "..."))
            break;
        if (l->indent > indent) {
            err = perr(p, l->no, "unexpected indentation");
            goto fail;
        }
        VKF_TRY(check_structural(p, l));
        if (!is_seq_item(l))
            break;
        int off = 1;
        while (off < l->len && l->text[off] == ' ')
            off++;
        const char *rest = l->text + off;
        int rest_len = l->len - off;
        vkf_yaml_node *item = NULL;
        if (rest_len > 0 && rest[0] != '#' &&
            (key_colon(rest, rest_len) >= 0 ||
             (rest[0] == '-' && (rest_len == 1 || is_space(rest[1]))))) {
            /* "- key: v" or "- - v": the rest of the line starts a nested
             * block whose indentation is the column of its first character. */
            if (rest[0] == '\t') {
                err = perr(p, l->no, "tab character in indentation");
                goto fail;
            }
            set_content(l, indent + off);
            err = parse_block(p, indent + off, &item);
        } else {
            int no = l->no;
            err = parse_value(p, no, rest, rest_len, indent, false, &item);
        }
        if (err < 0)
            goto fail;
        VKF_TRY(add_entry(n, NULL, item));
    }
    *out = n;
    return 0;
fail:
    vkf_yaml_free(&n);
    return err;
}

static int parse_block(parser *p, int min_indent, vkf_yaml_node **out)
{
    int err = 0;
    skip_blank(p);
    if (at_eof(p) || cur(p)->indent < min_indent) {
        vkf_yaml_node *n = new_node(VKF_YAML_NULL, at_eof(p) ? 0 : cur(p)->no);
        *out = n;
        return n ? 0 : VKF_ENOMEM;
    }
    if (p->depth >= MAX_DEPTH)
        return perr(p, cur(p)->no, "nesting deeper than %d levels", MAX_DEPTH);
    line *l = cur(p);
    VKF_TRY(check_structural(p, l));
    p->depth++;
    if (is_seq_item(l))
        err = parse_seq(p, l->indent, out);
    else if (key_colon(l->text, l->len) >= 0)
        err = parse_map(p, l->indent, out);
    else /* a lone scalar on its own line, e.g. "key:\n  /some/path" */
        err = parse_value(p, l->no, l->text, l->len, min_indent - 1, false, out);
    p->depth--;
fail:
    return err;
}


int vkf_yaml_parse(const char *text, size_t len, const char *name,
                   const vkf_log *log, vkf_yaml_node **out)
{
    int err = 0;
    parser p = {.name = name ? name : "<yaml>", .log = log};
    vkf_yaml_node *root = NULL;
    if (!out || (!text && len))
        return VKF_EINVAL;
    *out = NULL;
    VKF_TRY(split_lines(&p, text ? text : "", len));
    skip_blank(&p);
    if (!at_eof(&p) && cur(&p)->indent == 0 && cur(&p)->text[0] == '%') {
        err = perr(&p, cur(&p)->no, "YAML directives are not supported");
        goto fail;
    }
    if (!at_eof(&p) && line_is(cur(&p), "---"))
        p.pos++;
    VKF_TRY(parse_block(&p, 0, &root));
    skip_blank(&p);
    if (!at_eof(&p) && line_is(cur(&p), "...")) {
        p.pos++;
        skip_blank(&p);
    }
    if (!at_eof(&p)) {
        line *l = cur(&p);
        if (line_is(l, "---"))
            err = perr(&p, l->no, "multiple documents are not supported");
        else if (l->tab_indent)
            err = perr(&p, l->no, "tab character in indentation");
        else
            err = perr(&p, l->no, "unexpected indentation");
        goto fail;
    }
    vkf_free(p.lines);
    *out = root;
    return 0;
fail:
    vkf_yaml_free(&root);
    vkf_free(p.lines);
    return err;
}

int vkf_yaml_parse_file(const char *path, const vkf_log *log, vkf_yaml_node **out)
{
    int err = 0;
    char *buf = NULL;
    struct stat st;
    if (!path || !out)
        return VKF_EINVAL;
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        vkf_logf(log, VKF_LOG_ERROR, "cannot open '%s': %s", path, strerror(e));
        return e == ENOENT ? VKF_ENOTFOUND : VKF_EIO;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        vkf_logf(log, VKF_LOG_ERROR, "'%s' is not a regular file", path);
        err = VKF_EIO;
        goto fail;
    }
    if (st.st_size > MAX_FILE_SIZE) {
        vkf_logf(log, VKF_LOG_ERROR, "'%s' is larger than %d bytes", path,
                 MAX_FILE_SIZE);
        err = VKF_EPARSE;
        goto fail;
    }
    size_t size = (size_t)st.st_size;
    buf = vkf_malloc(size + 1);
    VKF_CHECK_ALLOC(buf);
    size_t got = 0;
    while (got < size) {
        ssize_t r = read(fd, buf + got, size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            vkf_logf(log, VKF_LOG_ERROR, "cannot read '%s': %s", path, strerror(errno));
            err = VKF_EIO;
            goto fail;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    VKF_TRY(vkf_yaml_parse(buf, got, path, log, out));
fail:
    vkf_free(buf);
    close(fd);
    return err;
}

const vkf_yaml_node *vkf_yaml_map_get(const vkf_yaml_node *map, const char *key)
{
    if (!map || map->type != VKF_YAML_MAP || !key)
        return NULL;
    for (int i = 0; i < map->n; i++)
        if (strcmp(map->entries[i].key, key) == 0)
            return map->entries[i].value;
    return NULL;
}

bool vkf_yaml_is_true(const vkf_yaml_node *node)
{
    static const char *const words[] = {"true", "True", "TRUE", "yes", "Yes",
                                        "YES",  "on",   "On",   "ON"};
    if (!node || node->type != VKF_YAML_SCALAR || !node->plain)
        return false;
    for (size_t i = 0; i < VKF_ARRAY_SIZE(words); i++)
        if (strcmp(node->scalar, words[i]) == 0)
            return true;
    return false;
}
