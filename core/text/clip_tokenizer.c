/*
 * CLIP's byte-level BPE tokenizer (openai/CLIP SimpleTokenizer, the same
 * vocabulary as Hugging Face's CLIPTokenizer that ComfyUI uses).
 *
 * Text is cleaned as the reference does without ftfy: NFC, html.unescape
 * twice, whitespace runs collapsed to one space, lower-cased; then split
 * by CLIP's pattern
 *   <|startoftext|>|<|endoftext|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
 * (case-insensitive); each piece's UTF-8 bytes become the GPT-2 byte
 * alphabet, its last byte marked end-of-word, and merges are applied lowest
 * rank first.  Merge ranks live in one open-addressing hash keyed by the
 * pair of token ids, so a merge step is one look-up per adjacent pair.
 *
 * The tokenizer is immutable after creation: any number of threads may
 * tokenize with it at once.
 */
#include <limits.h>
#include <string.h>
#include <zlib.h>

#include "text/text_internal.h"

extern const unsigned char vkf_clip_vocab_gz[];
extern const size_t vkf_clip_vocab_gz_size;

/* CLIP uses the first 49152 - 256 - 2 merge lines of the file. */
#define N_MERGES (VKF_CLIP_VOCAB - 512 - 2)

typedef struct merge_slot {
    uint32_t key;      /* left id << 16 | right id; EMPTY_KEY if unused */
    int32_t rank;
    int32_t merged;    /* id of the concatenation */
} merge_slot;

#define EMPTY_KEY 0xFFFFFFFFu

struct vkf_clip_tokenizer {
    merge_slot *merges;
    uint32_t mask;               /* slots - 1 */
    uint16_t byte_id[256];       /* id of a byte's alphabet symbol */
    /* every merge's parts are older tokens than its result, so merging one
     * lowest-rank pair at a time equals the reference's all-at-once passes */
    bool ranks_monotone;
};

static uint32_t hash32(uint32_t k)
{
    k ^= k >> 16;
    k *= 0x7feb352dU;
    k ^= k >> 15;
    k *= 0x846ca68bU;
    k ^= k >> 16;
    return k;
}

static const merge_slot *merge_find(const vkf_clip_tokenizer *t, uint32_t a, uint32_t b)
{
    uint32_t key = a << 16 | b;
    for (uint32_t h = hash32(key) & t->mask;; h = (h + 1) & t->mask) {
        const merge_slot *s = &t->merges[h];
        if (s->key == key)
            return s;
        if (s->key == EMPTY_KEY)
            return NULL;
    }
}

/* ------------------------------------------------------------------------ */
/* creation                                                                  */

/* GPT-2's byte alphabet: printable Latin-1 bytes map to themselves, the
 * other 68 to U+0100.. in byte order; vocabulary order is the printable
 * ones first, then the others. */
static void byte_alphabet(uint32_t cp_of_byte[256], uint16_t id_of_byte[256])
{
    int id = 0, extra = 0;
    bool printable[256] = {0};
    for (int b = '!'; b <= '~'; b++)
        printable[b] = true;
    for (int b = 0xA1; b <= 0xAC; b++)
        printable[b] = true;
    for (int b = 0xAE; b <= 0xFF; b++)
        printable[b] = true;
    for (int b = 0; b < 256; b++)
        if (printable[b]) {
            cp_of_byte[b] = (uint32_t)b;
            id_of_byte[b] = (uint16_t)id++;
        }
    for (int b = 0; b < 256; b++)
        if (!printable[b]) {
            cp_of_byte[b] = 256u + (uint32_t)extra++;
            id_of_byte[b] = (uint16_t)id++;
        }
}

/* Inflates the embedded gzip file up to the last merge line CLIP uses. */
static int inflate_vocab(char **text, size_t *len)
{
    z_stream zs = {0};
    size_t cap = 1 << 20, n = 0;
    int lines = 0, err = 0;
    char *buf = vkf_malloc(cap);
    if (!buf)
        return VKF_ENOMEM;
    if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) {
        vkf_free(buf);
        return VKF_ENOMEM;
    }
    zs.next_in = (unsigned char *)vkf_clip_vocab_gz;
    zs.avail_in = (uInt)vkf_clip_vocab_gz_size;
    while (lines <= N_MERGES) {
        if (cap - n < 65536) {
            char *nb = vkf_realloc(buf, cap * 2);
            VKF_CHECK_ALLOC(nb);
            buf = nb;
            cap *= 2;
        }
        zs.next_out = (unsigned char *)buf + n;
        zs.avail_out = (uInt)(cap - n - 1);
        int zr = inflate(&zs, Z_NO_FLUSH);
        size_t got = (size_t)(zs.next_out - (unsigned char *)buf) - n;
        for (size_t i = n; i < n + got; i++)
            lines += buf[i] == '\n';
        n += got;
        if (zr == Z_STREAM_END)
            break;
        if (zr != Z_OK) {
            err = zr == Z_MEM_ERROR ? VKF_ENOMEM : VKF_EPARSE;
            goto fail;
        }
    }
    if (lines <= N_MERGES) {
        err = VKF_EPARSE;
        goto fail;
    }
    buf[n] = 0;
    inflateEnd(&zs);
    *text = buf;
    *len = n;
    return 0;
fail:
    inflateEnd(&zs);
    vkf_free(buf);
    return err;
}

/* Build-time string → id map for resolving merge lines (later ids win, as
 * in the reference's dict built from the vocabulary list). */
typedef struct str_map {
    const char **key;
    int *klen;
    int32_t *id;
    uint32_t mask;
} str_map;

static uint32_t hash_bytes(const char *s, int n)
{
    uint32_t h = 2166136261u;
    for (int i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

static void str_map_put(str_map *m, const char *s, int n, int32_t id)
{
    for (uint32_t h = hash_bytes(s, n) & m->mask;; h = (h + 1) & m->mask) {
        if (!m->key[h] || (m->klen[h] == n && !memcmp(m->key[h], s, (size_t)n))) {
            m->key[h] = s;
            m->klen[h] = n;
            m->id[h] = id;
            return;
        }
    }
}

static int32_t str_map_get(const str_map *m, const char *s, int n)
{
    for (uint32_t h = hash_bytes(s, n) & m->mask;; h = (h + 1) & m->mask) {
        if (!m->key[h])
            return -1;
        if (m->klen[h] == n && !memcmp(m->key[h], s, (size_t)n))
            return m->id[h];
    }
}

int vkf_clip_tokenizer_create(vkf_clip_tokenizer **out)
{
    int err = 0;
    char *text = NULL, *arena = NULL;
    size_t text_len = 0;
    str_map map = {0};
    const char **left = NULL, **right = NULL;
    int *llen = NULL, *rlen = NULL;
    vkf_clip_tokenizer *t = NULL;
    if (!out)
        return VKF_EINVAL;
    *out = NULL;

    t = vkf_calloc(1, sizeof(*t));
    VKF_CHECK_ALLOC(t);
    uint32_t cp_of_byte[256];
    byte_alphabet(cp_of_byte, t->byte_id);
    VKF_TRY(inflate_vocab(&text, &text_len));

    left = vkf_malloc(N_MERGES * sizeof(*left));
    right = vkf_malloc(N_MERGES * sizeof(*right));
    llen = vkf_malloc(N_MERGES * sizeof(int));
    rlen = vkf_malloc(N_MERGES * sizeof(int));
    VKF_CHECK_ALLOC(left && right && llen && rlen);
    /* merge lines 1..N_MERGES: "a b" */
    char *p = strchr(text, '\n');
    for (int i = 0; i < N_MERGES; i++) {
        if (!p) {
            err = VKF_EPARSE;
            goto fail;
        }
        char *line = p + 1, *eol = strchr(line, '\n'), *sp = strchr(line, ' ');
        if (!eol || !sp || sp > eol || sp == line || sp + 1 == eol) {
            err = VKF_EPARSE;
            goto fail;
        }
        left[i] = line;
        llen[i] = (int)(sp - line);
        right[i] = sp + 1;
        rlen[i] = (int)(eol - sp - 1);
        p = eol;
    }

    /* vocabulary strings: 256 bytes, 256 bytes + "</w>", merges, specials */
    size_t arena_size = 512 * 12 + (size_t)text_len + 64;
    arena = vkf_malloc(arena_size);
    uint32_t slots = 1u << 17;   /* > 2 × 49408 */
    map.key = vkf_calloc(slots, sizeof(*map.key));
    map.klen = vkf_malloc(slots * sizeof(int));
    map.id = vkf_malloc(slots * sizeof(int32_t));
    VKF_CHECK_ALLOC(arena && map.key && map.klen && map.id);
    map.mask = slots - 1;
    char *a = arena;
    for (int k = 0; k < 2; k++)
        for (int b = 0; b < 256; b++) {
            int id = k * 256 + t->byte_id[b];
            char *s = a;
            a += vkf_utf8_encode(&cp_of_byte[b], 1, a);
            if (k) {
                memcpy(a, "</w>", 4);
                a += 4;
            }
            str_map_put(&map, s, (int)(a - s), id);
        }
    for (int i = 0; i < N_MERGES; i++) {
        char *s = a;
        memcpy(a, left[i], (size_t)llen[i]);
        memcpy(a + llen[i], right[i], (size_t)rlen[i]);
        a += llen[i] + rlen[i];
        str_map_put(&map, s, (int)(a - s), 512 + i);
    }

    t->merges = vkf_malloc(slots * sizeof(merge_slot));
    VKF_CHECK_ALLOC(t->merges);
    t->mask = slots - 1;
    bool monotone = true;
    for (uint32_t i = 0; i < slots; i++)
        t->merges[i].key = EMPTY_KEY;
    for (int i = 0; i < N_MERGES; i++) {
        int32_t ia = str_map_get(&map, left[i], llen[i]);
        int32_t ib = str_map_get(&map, right[i], rlen[i]);
        char tmp[256];
        int32_t im = -1;
        if (llen[i] + rlen[i] <= (int)sizeof(tmp)) {
            memcpy(tmp, left[i], (size_t)llen[i]);
            memcpy(tmp + llen[i], right[i], (size_t)rlen[i]);
            im = str_map_get(&map, tmp, llen[i] + rlen[i]);
        }
        if (ia < 0 || ib < 0 || im < 0) {
            err = VKF_EPARSE;
            goto fail;
        }
        if (ia >= 512 + i || ib >= 512 + i || im != 512 + i)
            monotone = false;
        uint32_t key = (uint32_t)ia << 16 | (uint32_t)ib;
        for (uint32_t h = hash32(key) & t->mask;; h = (h + 1) & t->mask) {
            merge_slot *s = &t->merges[h];
            if (s->key == EMPTY_KEY || s->key == key) {
                *s = (merge_slot){key, i, im};
                break;
            }
        }
    }
    t->ranks_monotone = monotone;
    *out = t;
    t = NULL;
fail:
    vkf_free(text);
    vkf_free(arena);
    vkf_free(map.key);
    vkf_free(map.klen);
    vkf_free(map.id);
    vkf_free(left);
    vkf_free(right);
    vkf_free(llen);
    vkf_free(rlen);
    vkf_clip_tokenizer_destroy(&t);
    return err;
}

void vkf_clip_tokenizer_destroy(vkf_clip_tokenizer **pt)
{
    if (!pt || !*pt)
        return;
    vkf_free((*pt)->merges);
    vkf_free(*pt);
    *pt = NULL;
}

/* ------------------------------------------------------------------------ */
/* BPE                                                                       */

static int push_id(int32_t **ids, int *n, int *cap, int32_t id)
{
    if (*n >= *cap && vkf_grow(ids, cap, *n + 1, sizeof(int32_t)) < 0)
        return VKF_ENOMEM;
    (*ids)[(*n)++] = id;
    return 0;
}

/* Merges the symbols of one pre-token (UTF-8 bytes b[0..len)) in place
 * in sym (len entries); returns the number of symbols left. */
static int bpe(const vkf_clip_tokenizer *t, const unsigned char *b, int len, int32_t *sym)
{
    int n = len;
    for (int i = 0; i < len; i++)
        sym[i] = t->byte_id[b[i]];
    sym[len - 1] += 256;   /* end-of-word form of the last byte */
    while (n > 1) {
        int32_t best_rank = INT32_MAX, a = 0, c = 0, merged = 0;
        for (int i = 0; i + 1 < n; i++) {
            const merge_slot *s = merge_find(t, (uint32_t)sym[i], (uint32_t)sym[i + 1]);
            if (s && s->rank < best_rank) {
                best_rank = s->rank;
                a = sym[i];
                c = sym[i + 1];
                merged = s->merged;
            }
        }
        if (best_rank == INT32_MAX)
            break;
        int w = 0;
        for (int i = 0; i < n;) {
            if (i + 1 < n && sym[i] == a && sym[i + 1] == c) {
                sym[w++] = merged;
                i += 2;
            } else {
                sym[w++] = sym[i++];
            }
        }
        n = w;
    }
    return n;
}

/*
 * The same merges for long pieces in O(n log n): symbols in a linked list,
 * candidate pairs in a min-heap ordered by (rank, position), stale entries
 * skipped when popped.  Taking the leftmost lowest-rank pair one at a time
 * gives the reference's result because a merge only creates pairs of
 * higher rank (ranks_monotone).  Returns the symbol count or VKF_ENOMEM.
 */
typedef struct pair_ent {
    int32_t rank, left, right, a, b, merged;
} pair_ent;

static bool ent_less(const pair_ent *x, const pair_ent *y)
{
    return x->rank < y->rank || (x->rank == y->rank && x->left < y->left);
}

static void heap_push(pair_ent *h, int *n, pair_ent e)
{
    int i = (*n)++;
    while (i > 0) {
        int parent = (i - 1) / 2;
        if (!ent_less(&e, &h[parent]))
            break;
        h[i] = h[parent];
        i = parent;
    }
    h[i] = e;
}

static pair_ent heap_pop(pair_ent *h, int *n)
{
    pair_ent top = h[0], last = h[--(*n)];
    int i = 0;
    for (;;) {
        int c = 2 * i + 1;
        if (c >= *n)
            break;
        if (c + 1 < *n && ent_less(&h[c + 1], &h[c]))
            c++;
        if (!ent_less(&h[c], &last))
            break;
        h[i] = h[c];
        i = c;
    }
    if (*n > 0)
        h[i] = last;
    return top;
}

static void push_pair(const vkf_clip_tokenizer *t, pair_ent *h, int *n, const int32_t *sym,
                      int left, int right)
{
    const merge_slot *s = merge_find(t, (uint32_t)sym[left], (uint32_t)sym[right]);
    if (s)
        heap_push(h, n, (pair_ent){s->rank, left, right, sym[left], sym[right], s->merged});
}

static int bpe_long(const vkf_clip_tokenizer *t, const unsigned char *b, int len, int32_t *sym)
{
    int32_t *next = vkf_malloc((size_t)len * 2 * sizeof(int32_t));
    pair_ent *heap = vkf_malloc((size_t)len * 3 * sizeof(pair_ent));
    if (!next || !heap) {
        vkf_free(next);
        vkf_free(heap);
        return VKF_ENOMEM;
    }
    int32_t *prev = next + len;
    int nh = 0;
    for (int i = 0; i < len; i++) {
        sym[i] = t->byte_id[b[i]];
        next[i] = i + 1 < len ? i + 1 : -1;
        prev[i] = i - 1;
    }
    sym[len - 1] += 256;
    for (int i = 0; i + 1 < len; i++)
        push_pair(t, heap, &nh, sym, i, i + 1);
    while (nh > 0) {
        pair_ent e = heap_pop(heap, &nh);
        if (sym[e.left] != e.a || next[e.left] != e.right || sym[e.right] != e.b)
            continue;   /* stale: one side was merged since */
        sym[e.left] = e.merged;
        sym[e.right] = -1;
        next[e.left] = next[e.right];
        if (next[e.right] >= 0)
            prev[next[e.right]] = e.left;
        if (prev[e.left] >= 0)
            push_pair(t, heap, &nh, sym, prev[e.left], e.left);
        if (next[e.left] >= 0)
            push_pair(t, heap, &nh, sym, e.left, next[e.left]);
    }
    int n = 0;
    for (int i = 0; i >= 0; i = next[i])
        sym[n++] = sym[i];
    vkf_free(next);
    vkf_free(heap);
    return n;
}

/* Pieces up to this many bytes take the reference's own algorithm. */
#define BPE_SHORT 64

static const char SOT[] = "<|startoftext|>", EOT[] = "<|endoftext|>";

/* The pattern matches case-insensitively; of the letters it spells out
 * only U+017F (long s) case-folds onto one after lower-casing. */
static uint32_t fold(uint32_t c)
{
    return c == 0x17F ? 's' : c;
}

static int match_literal(const uint32_t *s, int n, int i, const char *lit)
{
    int k = 0;
    for (; lit[k]; k++)
        if (i + k >= n || fold(s[i + k]) != (uint32_t)(unsigned char)lit[k])
            return 0;
    return k;
}

static bool exact_literal(const uint32_t *s, int n, const char *lit)
{
    int k = 0;
    for (; lit[k]; k++)
        if (k >= n || s[k] != (uint32_t)(unsigned char)lit[k])
            return false;
    return k == n;
}

/* Length of the match of CLIP's pattern at s[i] (0: no match here). */
static int pretoken_at(const uint32_t *s, int n, int i)
{
    int k;
    if ((k = match_literal(s, n, i, SOT)) || (k = match_literal(s, n, i, EOT)))
        return k;
    if (s[i] == '\'') {
        static const char *const contractions[] = {"'s", "'t", "'re", "'ve", "'m", "'ll", "'d"};
        for (size_t c = 0; c < VKF_ARRAY_SIZE(contractions); c++)
            if ((k = match_literal(s, n, i, contractions[c])))
                return k;
    }
    int cls = vkf_uc_clip_class(s[i]);
    if (cls == VKF_UC_LETTER) {
        for (k = i + 1; k < n && vkf_uc_clip_class(s[k]) == VKF_UC_LETTER;)
            k++;
        return k - i;
    }
    if (cls == VKF_UC_NUMBER)
        return 1;
    if (cls == VKF_UC_NONE || vkf_uc_isspace(s[i]))
        return 0;
    for (k = i + 1; k < n && !vkf_uc_isspace(s[k]) && vkf_uc_clip_class(s[k]) == VKF_UC_OTHER;)
        k++;
    return k - i;
}

int vkf_clip_encode_codepoints(const vkf_clip_tokenizer *t, const uint32_t *s, int n,
                               int32_t **ids, int *n_ids, int *cap)
{
    vkf_u32buf a = {0}, b = {0};
    unsigned char small[256];
    int32_t small_sym[256];
    unsigned char *bytes = NULL;
    int32_t *sym = NULL;
    int err = 0;

    /* clean: NFC, html.unescape ×2, collapse whitespace, lower() */
    VKF_TRY(vkf_uc_nfc(s, n, &a));
    VKF_TRY(vkf_uc_html_unescape(a.v, a.n, &b));
    VKF_TRY(vkf_uc_html_unescape(b.v, b.n, &a));
    b.n = 0;
    for (int i = 0; i < a.n;) {
        while (i < a.n && vkf_uc_isspace(a.v[i]))
            i++;
        if (i == a.n)
            break;
        if (b.n)
            VKF_TRY(vkf_u32_push(&b, ' '));
        while (i < a.n && !vkf_uc_isspace(a.v[i]))
            VKF_TRY(vkf_u32_push(&b, a.v[i++]));
    }
    VKF_TRY(vkf_uc_lower(b.v, b.n, &a));

    const uint32_t *c = a.v;
    int m = a.n;
    for (int i = 0; i < m;) {
        int k = pretoken_at(c, m, i);
        if (!k) {
            i++;
            continue;
        }
        if (exact_literal(c + i, k, SOT) || exact_literal(c + i, k, EOT)) {
            VKF_TRY(push_id(ids, n_ids, cap, c[i + 2] == 's' ? VKF_CLIP_BOS : VKF_CLIP_EOS));
            i += k;
            continue;
        }
        unsigned char *bb = small;
        int32_t *ss = small_sym;
        if ((size_t)k * 4 + 1 > sizeof(small)) {
            vkf_free(bytes);
            vkf_free(sym);
            bytes = vkf_malloc((size_t)k * 4 + 1);
            sym = vkf_malloc((size_t)k * 4 * sizeof(int32_t));
            VKF_CHECK_ALLOC(bytes && sym);
            bb = bytes;
            ss = sym;
        }
        int len = (int)vkf_utf8_encode(c + i, k, (char *)bb);
        int ns = len <= BPE_SHORT || !t->ranks_monotone ? bpe(t, bb, len, ss)
                                                         : bpe_long(t, bb, len, ss);
        if (ns < 0) {
            err = ns;
            goto fail;
        }
        if (*n_ids + ns > *cap)
            VKF_TRY(vkf_grow(ids, cap, *n_ids + ns, sizeof(int32_t)));
        memcpy(*ids + *n_ids, ss, (size_t)ns * sizeof(int32_t));
        *n_ids += ns;
        i += k;
    }
fail:
    vkf_u32_free(&a);
    vkf_u32_free(&b);
    vkf_free(bytes);
    vkf_free(sym);
    return err;
}

int vkf_clip_tokenize(const vkf_clip_tokenizer *t, const char *text, int32_t **ids, int *n)
{
    if (!t || !text || !ids || !n)
        return VKF_EINVAL;
    *ids = NULL;
    *n = 0;
    vkf_u32buf cps = {0};
    int32_t *out = NULL;
    int cnt = 0, cap = 0;
    int err = vkf_utf8_decode(text, strlen(text), &cps);
    if (!err)
        err = vkf_clip_encode_codepoints(t, cps.v, cps.n, &out, &cnt, &cap);
    if (!err && !out) {
        out = vkf_malloc(sizeof(int32_t));   /* never NULL on success */
        if (!out)
            err = VKF_ENOMEM;
    }
    vkf_u32_free(&cps);
    if (err) {
        vkf_free(out);
        return err;
    }
    *ids = out;
    *n = cnt;
    return 0;
}
