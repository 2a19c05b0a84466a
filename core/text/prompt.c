/*
 * ComfyUI's prompt weighting (comfy/sd1_clip.py, SDTokenizer
 * tokenize_with_weights with escape_important, token_weights and
 * parse_parentheses), restated over code points:
 *
 *   1. "\(" and "\)" become markers that the parenthesis parser ignores.
 *   2. The prompt is cut at top-level parentheses; a group "( … )"
 *      multiplies the weight by 1.1, or sets it to the number after its
 *      last ':' when that parses as a Python float; groups nest.
 *      Unbalanced parentheses are kept as text exactly where ComfyUI
 *      keeps them.
 *   3. Each weighted segment is cut before every "embedding:" that follows
 *      whitespace; the pieces are tokenized whole (CLIP BPE), embeddings
 *      come from the lookup callback.
 *   4. Token groups fill 77-token chunks (start, 75 tokens, end): a group
 *      of fewer than 8 tokens that does not fit moves whole to the next
 *      chunk (this one is closed and padded), a longer one is split.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "text/text_internal.h"

/* Markers for escaped parentheses: above U+10FFFF, so never text. */
#define ESC_CLOSE 0x110001u
#define ESC_OPEN 0x110002u
#define MAX_WORD_LENGTH 8

typedef struct segment {
    int start, end;
    double weight;
} segment;

typedef struct seg_list {
    segment *v;
    int n, cap;
} seg_list;

static int seg_push(seg_list *l, int start, int end, double w)
{
    if (l->n >= l->cap && vkf_grow(&l->v, &l->cap, l->n + 1, sizeof(segment)) < 0)
        return VKF_ENOMEM;
    l->v[l->n++] = (segment){start, end, w};
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Python's float()                                                          */

static bool py_isspace_ascii(int c)
{
    return c == ' ' || (c >= '\t' && c <= '\r');
}

static bool ascii_ieq(const char *a, const char *b)
{
    for (; *a && *b; a++, b++)
        if ((*a | 0x20) != *b)
            return false;
    return !*a && !*b;
}

/* float(s) as CPython parses a str: Unicode digits and spaces accepted,
 * '_' only between digits, surrounding whitespace stripped, inf/nan.
 * 1 parsed, 0 not a number, VKF_ENOMEM. */
static int py_float(const uint32_t *s, int n, double *out)
{
    char stack[64];
    char *buf = n < (int)sizeof(stack) ? stack : vkf_malloc((size_t)n + 1);
    int ok = 0;
    if (!buf)
        return VKF_ENOMEM;
    int m = 0;
    int prev = 0;
    for (int i = 0; i < n; i++) {
        uint32_t c = s[i];
        int a;
        if (c < 127)
            a = (int)c;
        else if (vkf_uc_isspace(c))
            a = ' ';
        else if (vkf_uc_decimal(c) >= 0)
            a = '0' + vkf_uc_decimal(c);
        else
            goto done;
        if (a == '_') {
            if (!(prev >= '0' && prev <= '9'))
                goto done;
        } else {
            if (prev == '_' && !(a >= '0' && a <= '9'))
                goto done;
            buf[m++] = (char)a;
        }
        prev = a;
    }
    if (prev == '_')
        goto done;
    buf[m] = 0;
    char *p = buf, *end = buf + m;
    while (p < end && py_isspace_ascii(*p))
        p++;
    while (end > p && py_isspace_ascii(end[-1]))
        end--;
    *end = 0;
    if (p == end)
        goto done;
    const char *q = p;
    if (*q == '+' || *q == '-')
        q++;
    if (ascii_ieq(q, "inf") || ascii_ieq(q, "infinity")) {
        *out = *p == '-' ? -INFINITY : INFINITY;
        ok = 1;
        goto done;
    }
    if (ascii_ieq(q, "nan")) {
        *out = *p == '-' ? -NAN : NAN;
        ok = 1;
        goto done;
    }
    int digits = 0;
    while (*q >= '0' && *q <= '9')
        q++, digits++;
    if (*q == '.') {
        q++;
        while (*q >= '0' && *q <= '9')
            q++, digits++;
    }
    if (!digits)
        goto done;
    if (*q == 'e' || *q == 'E') {
        q++;
        if (*q == '+' || *q == '-')
            q++;
        if (!(*q >= '0' && *q <= '9'))
            goto done;
        while (*q >= '0' && *q <= '9')
            q++;
    }
    if (*q)
        goto done;
    *out = strtod(p, NULL);
    ok = 1;
done:
    if (buf != stack)
        vkf_free(buf);
    return ok;
}

/* ------------------------------------------------------------------------ */
/* token_weights / parse_parentheses                                         */

typedef struct item {
    int start, end;
    double weight;   /* the weight of the text around the item */
    int depth;       /* groups around the item */
} item;

/* ComfyUI recurses once per nesting level and Python stops it near 1000
 * levels (RecursionError); refusing deeper prompts also bounds the work,
 * which is O(length × depth). */
#define MAX_NESTING 1000

typedef struct item_stack {
    item *v;
    int n, cap;
} item_stack;

/* Pushes parse_parentheses(c[start..end)) in reverse order, so that
 * popping yields them in text order. */
static int push_items(item_stack *st, const uint32_t *c, int start, int end, double w,
                      int depth)
{
    int first = st->n, cur = start, nesting = 0;
    for (int i = start; i <= end; i++) {
        int cut_end = -1, next = cur;
        if (i == end) {
            if (end > cur)
                cut_end = end;
        } else if (c[i] == '(') {
            if (nesting == 0 && i > cur) {
                cut_end = i;
                next = i;
            } else if (nesting == 0) {
                next = i;
            }
            nesting++;
        } else if (c[i] == ')') {
            nesting--;
            if (nesting == 0) {
                cut_end = i + 1;
                next = i + 1;
            }
        }
        if (cut_end >= 0) {
            if (st->n >= st->cap && vkf_grow(&st->v, &st->cap, st->n + 1, sizeof(item)) < 0)
                return VKF_ENOMEM;
            st->v[st->n++] = (item){cur, cut_end, w, depth};
        }
        cur = next;
    }
    for (int a = first, b = st->n - 1; a < b; a++, b--) {
        item t = st->v[a];
        st->v[a] = st->v[b];
        st->v[b] = t;
    }
    return 0;
}

static int token_weights(const uint32_t *c, int n, seg_list *out, const vkf_log *log)
{
    item_stack st = {0};
    int err = push_items(&st, c, 0, n, 1.0, 0);
    while (!err && st.n) {
        item it = st.v[--st.n];
        if (it.end - it.start >= 2 && c[it.start] == '(' && c[it.end - 1] == ')') {
            if (it.depth >= MAX_NESTING) {
                vkf_logf(log, VKF_LOG_ERROR, "prompt: parentheses nested more than %d levels "
                         "deep (ComfyUI fails on these too)", MAX_NESTING);
                err = VKF_EINVAL;
                break;
            }
            int s = it.start + 1, e = it.end - 1;
            double w = it.weight * 1.1;
            int colon = -1;
            for (int i = e - 1; i >= s; i--)
                if (c[i] == ':') {
                    colon = i;
                    break;
                }
            double v;
            int parsed = colon > s ? py_float(c + colon + 1, e - colon - 1, &v) : 0;
            if (parsed < 0) {
                err = parsed;
                break;
            }
            if (parsed) {
                w = v;
                e = colon;
            }
            err = push_items(&st, c, s, e, w, it.depth + 1);
        } else {
            err = seg_push(out, it.start, it.end, it.weight);
        }
    }
    vkf_free(st.v);
    return err;
}

/* ------------------------------------------------------------------------ */
/* token groups                                                              */

typedef struct groups {
    vkf_clip_token *tok;     /* all tokens, group after group */
    int n, cap;
    int *start;              /* group k = tok[start[k] .. start[k+1]) */
    int n_groups, cap_groups;
    float *embeds;
    int n_embeds;
} groups;

static int group_begin(groups *g)
{
    if (g->n_groups + 1 >= g->cap_groups &&
        vkf_grow(&g->start, &g->cap_groups, g->n_groups + 2, sizeof(int)) < 0)
        return VKF_ENOMEM;
    g->start[g->n_groups++] = g->n;
    g->start[g->n_groups] = g->n;
    return 0;
}

static int group_add(groups *g, int32_t id, float w)
{
    if (g->n >= g->cap && vkf_grow(&g->tok, &g->cap, g->n + 1, sizeof(vkf_clip_token)) < 0)
        return VKF_ENOMEM;
    g->tok[g->n++] = (vkf_clip_token){id, w};
    g->start[g->n_groups] = g->n;
    return 0;
}

typedef struct ctx {
    const vkf_clip_tokenizer *t;
    const vkf_clip_tokenize_params *p;
    groups g;
    int32_t *ids;
    int n_ids, cap_ids;
} ctx;

static int add_word(ctx *x, const uint32_t *w, int n, double weight)
{
    x->n_ids = 0;
    int err = vkf_clip_encode_codepoints(x->t, w, n, &x->ids, &x->n_ids, &x->cap_ids);
    if (err)
        return err;
    VKF_TRY(group_begin(&x->g));
    for (int i = 0; i < x->n_ids; i++)
        VKF_TRY(group_add(&x->g, x->ids[i], (float)weight));
fail:
    return err;
}

/* Looks an embedding up; 1 found (group added), 0 not found, < 0 error. */
static int try_embedding(ctx *x, const uint32_t *name, int n, double weight)
{
    const vkf_clip_tokenize_params *p = x->p;
    if (n <= 0)
        return 0;
    char *utf8 = vkf_malloc((size_t)n * 4 + 1);
    if (!utf8)
        return VKF_ENOMEM;
    vkf_utf8_encode(name, n, utf8);
    float *vec = NULL;
    int rows = 0;
    int r = p->lookup(p->opaque, utf8, p->embed_dim, &vec, &rows);
    if (r == VKF_ENOMEM || (r == 0 && (rows < 0 || (rows > 0 && !vec)))) {
        if (r == 0)
            vkf_logf(p->log, VKF_LOG_ERROR, "prompt: the embedding lookup for \"%s\" "
                     "returned %d rows without vectors", utf8, rows);
        vkf_free(utf8);
        vkf_free(vec);
        return r == 0 ? VKF_EINVAL : r;
    }
    if (r < 0) {
        if (r != VKF_ENOTFOUND)
            vkf_logf(p->log, VKF_LOG_WARN, "prompt: error loading embedding \"%s\" (%s), "
                     "skipping it", utf8, vkf_strerror(r));
        vkf_free(utf8);
        vkf_free(vec);
        return 0;
    }
    vkf_free(utf8);
    int err = 0;
    size_t dim = (size_t)p->embed_dim;
    if (rows > 0) {
        if (rows > (1 << 20) || x->g.n_embeds > (1 << 20)) {
            err = VKF_EINVAL;
            goto fail;
        }
        float *e = vkf_realloc(x->g.embeds, (size_t)(x->g.n_embeds + rows) * dim * sizeof(float));
        VKF_CHECK_ALLOC(e);
        x->g.embeds = e;
        memcpy(e + (size_t)x->g.n_embeds * dim, vec, (size_t)rows * dim * sizeof(float));
    }
    VKF_TRY(group_begin(&x->g));
    for (int i = 0; i < rows; i++)
        VKF_TRY(group_add(&x->g, -1 - (x->g.n_embeds + i), (float)weight));
    x->g.n_embeds += rows;
    vkf_free(vec);
    return 1;
fail:
    vkf_free(vec);
    return err;
}

static int log_missing(ctx *x, const uint32_t *name, int n)
{
    char *utf8 = vkf_malloc((size_t)n * 4 + 1);
    if (!utf8)
        return VKF_ENOMEM;
    vkf_utf8_encode(name, n, utf8);
    vkf_logf(x->p->log, VKF_LOG_WARN, "prompt: embedding:%s does not exist, ignoring it", utf8);
    vkf_free(utf8);
    return 0;
}

/* SDTokenizer._try_get_embedding and what follows it, for one piece that
 * starts with "embedding:".  *rest receives the leftover text. */
static int embedding_word(ctx *x, const uint32_t *w, int n, double weight, vkf_u32buf *rest)
{
    int err = 0;
    int s = 10, e = n;   /* strip('\n') of the name */
    while (s < e && w[s] == '\n')
        s++;
    while (e > s && w[e - 1] == '\n')
        e--;
    /* split(): the first word is the name, the others are joined by ' ' */
    int a = s;
    while (a < e && vkf_uc_isspace(w[a]))
        a++;
    if (a == e) {
        vkf_logf(x->p->log, VKF_LOG_ERROR,
                 "prompt: \"embedding:\" is not followed by a name (ComfyUI fails here too)");
        return VKF_EINVAL;
    }
    int b = a;
    while (b < e && !vkf_uc_isspace(w[b]))
        b++;
    vkf_u32buf left = {0};
    for (int i = b; i < e;) {
        while (i < e && vkf_uc_isspace(w[i]))
            i++;
        if (i == e)
            break;
        if (left.n)
            VKF_TRY(vkf_u32_push(&left, ' '));
        while (i < e && !vkf_uc_isspace(w[i]))
            VKF_TRY(vkf_u32_push(&left, w[i++]));
    }
    /* a '<' or '[' ends the name ("embedding:x<lora:..>") */
    int name_end = b;
    for (int i = a; i < b; i++)
        if (w[i] == '<' || w[i] == '[') {
            name_end = i;
            break;
        }
    rest->n = 0;
    VKF_TRY(vkf_u32_append(rest, w + name_end, b - name_end));
    if (rest->n && left.n)
        VKF_TRY(vkf_u32_push(rest, ' '));
    VKF_TRY(vkf_u32_append(rest, left.v, left.n));

    int found = try_embedding(x, w + a, name_end - a, weight);
    if (found < 0) {
        err = found;
        goto fail;
    }
    if (!found) {
        int sa = a, se = name_end;   /* strip(',') */
        while (sa < se && w[sa] == ',')
            sa++;
        while (se > sa && w[se - 1] == ',')
            se--;
        int stripped_len = se - sa, name_len = name_end - a;
        if (stripped_len < name_len) {
            found = try_embedding(x, w + sa, stripped_len, weight);
            if (found < 0) {
                err = found;
                goto fail;
            }
            /* ComfyUI keeps name[len(stripped):] + " " + the leftover */
            left.n = 0;
            VKF_TRY(vkf_u32_append(&left, w + a + stripped_len, name_len - stripped_len));
            VKF_TRY(vkf_u32_push(&left, ' '));
            VKF_TRY(vkf_u32_append(&left, rest->v, rest->n));
            rest->n = 0;
            VKF_TRY(vkf_u32_append(rest, left.v, left.n));
        }
        if (!found)
            VKF_TRY(log_missing(x, w + a, name_end - a));
    }
fail:
    vkf_u32_free(&left);
    return err;
}

static const uint32_t EMBEDDING_ID[] = {'e', 'm', 'b', 'e', 'd', 'd', 'i', 'n', 'g', ':'};

static bool is_embedding_at(const uint32_t *w, int n, int i)
{
    if (n - i < 10)
        return false;
    for (int k = 0; k < 10; k++)
        if (w[i + k] != EMBEDDING_ID[k])
            return false;
    return true;
}

static int add_piece(ctx *x, const uint32_t *w, int n, double weight, vkf_u32buf *rest)
{
    if (n <= 0)
        return 0;
    if (x->p->lookup && is_embedding_at(w, n, 0)) {
        int err = embedding_word(x, w, n, weight, rest);
        if (err || !rest->n)
            return err;
        vkf_u32buf word = *rest;   /* tokenize the leftover; keep rest's buffer */
        return add_word(x, word.v, word.n, weight);
    }
    return add_word(x, w, n, weight);
}

static int add_segment(ctx *x, const uint32_t *c, const segment *sg, vkf_u32buf *w,
                       vkf_u32buf *rest)
{
    w->n = 0;
    for (int i = sg->start; i < sg->end; i++) {
        uint32_t ch = c[i] == ESC_CLOSE ? ')' : c[i] == ESC_OPEN ? '(' : c[i];
        if (vkf_u32_push(w, ch) < 0)
            return VKF_ENOMEM;
    }
    /* re.split(r'(?<=\s)embedding:'): cut before each such occurrence */
    int piece = 0;
    for (int i = 1; i < w->n;) {
        if (vkf_uc_isspace(w->v[i - 1]) && is_embedding_at(w->v, w->n, i)) {
            int err = add_piece(x, w->v + piece, i - piece, sg->weight, rest);
            if (err)
                return err;
            piece = i;
            i += 10;
        } else {
            i++;
        }
    }
    return add_piece(x, w->v + piece, w->n - piece, sg->weight, rest);
}

/* ------------------------------------------------------------------------ */
/* chunks                                                                    */

typedef struct tok_out {
    vkf_clip_token *v;
    int n, cap;
} tok_out;

static int out_push(tok_out *o, int32_t id, float w)
{
    if (o->n >= o->cap && vkf_grow(&o->v, &o->cap, o->n + 1, sizeof(vkf_clip_token)) < 0)
        return VKF_ENOMEM;
    o->v[o->n++] = (vkf_clip_token){id, w};
    return 0;
}

static int make_chunks(const groups *g, int32_t pad, tok_out *o)
{
    const int body = VKF_CLIP_CTX - 1;   /* room before the end token */
    int err = 0, len = 1;
    VKF_TRY(out_push(o, VKF_CLIP_BOS, 1.0f));
    for (int k = 0; k < g->n_groups; k++) {
        int gl = g->start[k + 1] - g->start[k], pos = 0;
        if (!gl)
            continue;   /* a word of no tokens (whitespace, a 0-row embedding) */
        const vkf_clip_token *t = g->tok + g->start[k];
        bool large = gl >= MAX_WORD_LENGTH;
        while (pos < gl) {
            if (gl - pos + len > body) {
                int remaining = body - len;
                if (large) {
                    for (int i = 0; i < remaining; i++)
                        VKF_TRY(out_push(o, t[pos + i].id, t[pos + i].weight));
                    pos += remaining;
                    VKF_TRY(out_push(o, VKF_CLIP_EOS, 1.0f));
                } else {
                    VKF_TRY(out_push(o, VKF_CLIP_EOS, 1.0f));
                    for (int i = 0; i < remaining; i++)
                        VKF_TRY(out_push(o, pad, 1.0f));
                }
                VKF_TRY(out_push(o, VKF_CLIP_BOS, 1.0f));
                len = 1;
            } else {
                len += gl - pos;
                for (; pos < gl; pos++)
                    VKF_TRY(out_push(o, t[pos].id, t[pos].weight));
            }
        }
    }
    VKF_TRY(out_push(o, VKF_CLIP_EOS, 1.0f));
    while (o->n % VKF_CLIP_CTX)
        VKF_TRY(out_push(o, pad, 1.0f));
fail:
    return err;
}

int vkf_clip_tokenize_weighted(const vkf_clip_tokenizer *t, const char *prompt,
                               const vkf_clip_tokenize_params *params, vkf_clip_tokens *out)
{
    static const vkf_clip_tokenize_params defaults = {.pad_with_end = true};
    const vkf_clip_tokenize_params *p = params ? params : &defaults;
    if (!t || !prompt || !out)
        return VKF_EINVAL;
    memset(out, 0, sizeof(*out));
    if (p->lookup && p->embed_dim <= 0) {
        vkf_logf(p->log, VKF_LOG_ERROR, "prompt: an embedding lookup needs embed_dim > 0");
        return VKF_EINVAL;
    }
    vkf_u32buf c = {0}, w = {0}, rest = {0};
    seg_list segs = {0};
    ctx x = {.t = t, .p = p};
    tok_out o = {0};
    int err = 0;

    VKF_TRY(vkf_utf8_decode(prompt, strlen(prompt), &c));
    /* escape_important: "\)" then "\(" become markers */
    int m = 0;
    for (int i = 0; i < c.n; i++) {
        if (c.v[i] == '\\' && i + 1 < c.n && (c.v[i + 1] == ')' || c.v[i + 1] == '(')) {
            c.v[m++] = c.v[i + 1] == ')' ? ESC_CLOSE : ESC_OPEN;
            i++;
        } else {
            c.v[m++] = c.v[i];
        }
    }
    c.n = m;
    VKF_TRY(token_weights(c.v, c.n, &segs, p->log));
    for (int i = 0; i < segs.n; i++)
        VKF_TRY(add_segment(&x, c.v, &segs.v[i], &w, &rest));
    VKF_TRY(make_chunks(&x.g, p->pad_with_end ? VKF_CLIP_EOS : 0, &o));

    out->n_chunks = o.n / VKF_CLIP_CTX;
    out->tok = o.v;
    o.v = NULL;
    out->n_embeds = x.g.n_embeds;
    out->embed_dim = p->lookup ? p->embed_dim : 0;
    out->embeds = x.g.n_embeds ? x.g.embeds : NULL;
    if (out->embeds)
        x.g.embeds = NULL;
fail:
    vkf_u32_free(&c);
    vkf_u32_free(&w);
    vkf_u32_free(&rest);
    vkf_free(segs.v);
    vkf_free(x.ids);
    vkf_free(x.g.tok);
    vkf_free(x.g.start);
    vkf_free(x.g.embeds);
    vkf_free(o.v);
    return err;
}

void vkf_clip_tokens_free(vkf_clip_tokens *t)
{
    if (!t)
        return;
    vkf_free(t->tok);
    vkf_free(t->embeds);
    memset(t, 0, sizeof(*t));
}
