/*
 * PyTorch zip checkpoints (torch.save since 1.6): `<archive>/data.pkl`, a
 * pickle of the state dict, and one zip entry `<archive>/data/<key>` per
 * storage.  data.pkl is run by a small pickle VM that implements only the
 * opcodes a state dict needs and builds plain data: globals are looked up
 * in an allow-list modelled on torch's weights_only unpickler and nothing
 * is ever called, imported or executed.  REDUCE on an allowed global is
 * interpreted by us (an OrderedDict, a tensor description, a tuple).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/weights_internal.h"

/* Limits (docs/weights.md). */
#define PK_MAX_OBJECTS (1 << 22)
#define PK_MAX_STACK (1 << 20)
#define PK_MAX_MARKS 4096
#define PK_MAX_MEMO (1 << 20)
#define PK_MAX_DEPTH 64

enum ptype {
    P_NONE, P_BOOL, P_INT, P_FLOAT, P_STR, P_BYTES, P_TUPLE, P_LIST, P_DICT,
    P_GLOBAL, P_STORAGE, P_TENSOR,
};

static const char *const ptype_names[] = {
    "None", "bool", "int", "float", "str", "bytes", "tuple", "list", "dict",
    "global", "storage", "tensor",
};

enum gkind {
    G_ODICT, G_REBUILD_TENSOR, G_REBUILD_PARAM, G_REBUILD_PARAM_STATE,
    G_REBUILD_FROM_TYPE, G_SIZE, G_ENCODE, G_STORAGE, G_TYPE,
};

static const struct allowed {
    const char *module, *name;
    enum gkind kind;
    vkf_wdtype dtype;
} allowed[] = {
    {"collections", "OrderedDict", G_ODICT, 0},
    {"torch._utils", "_rebuild_tensor_v2", G_REBUILD_TENSOR, 0},
    {"torch._utils", "_rebuild_parameter", G_REBUILD_PARAM, 0},
    {"torch._utils", "_rebuild_parameter_with_state", G_REBUILD_PARAM_STATE, 0},
    {"torch._tensor", "_rebuild_from_type_v2", G_REBUILD_FROM_TYPE, 0},
    {"torch", "Size", G_SIZE, 0},
    {"_codecs", "encode", G_ENCODE, 0},
    {"torch", "FloatStorage", G_STORAGE, VKF_WDT_F32},
    {"torch", "HalfStorage", G_STORAGE, VKF_WDT_F16},
    {"torch", "BFloat16Storage", G_STORAGE, VKF_WDT_BF16},
    {"torch", "DoubleStorage", G_STORAGE, VKF_WDT_F64},
    {"torch", "LongStorage", G_STORAGE, VKF_WDT_I64},
    {"torch", "IntStorage", G_STORAGE, VKF_WDT_I32},
    {"torch", "ShortStorage", G_STORAGE, VKF_WDT_I16},
    {"torch", "CharStorage", G_STORAGE, VKF_WDT_I8},
    {"torch", "ByteStorage", G_STORAGE, VKF_WDT_U8},
    {"torch", "BoolStorage", G_STORAGE, VKF_WDT_BOOL},
    {"torch", "Float8_e4m3fnStorage", G_STORAGE, VKF_WDT_F8_E4M3},
    {"torch", "Float8_e5m2Storage", G_STORAGE, VKF_WDT_F8_E5M2},
    {"torch", "Tensor", G_TYPE, 0},
    {"torch.nn.parameter", "Parameter", G_TYPE, 0},
    {"torch", "FloatTensor", G_TYPE, 0},
    {"torch", "HalfTensor", G_TYPE, 0},
    {"torch", "BFloat16Tensor", G_TYPE, 0},
    {"torch", "DoubleTensor", G_TYPE, 0},
    {"torch", "LongTensor", G_TYPE, 0},
    {"torch", "IntTensor", G_TYPE, 0},
};

typedef struct ptensor {
    int storage;
    int64_t offset;
    int ndim;
    int64_t shape[VKF_WEIGHTS_MAX_DIMS], stride[VKF_WEIGHTS_MAX_DIMS];
} ptensor;

typedef struct pobj {
    uint8_t type;
    uint8_t depth;            /* nesting: 0 for scalars */
    int64_t i;                /* INT, BOOL; GLOBAL: allow-list index;
                                 STORAGE: index in file->st */
    double d;
    const char *s;            /* STR, BYTES: into the pickle bytes */
    size_t len;
    struct pobj **items;      /* TUPLE, LIST; DICT: key, value, key, ... */
    int n, cap;
    ptensor *t;
} pobj;

typedef struct vm {
    wt_file *f;
    const wt_zip *zip;
    const char *prefix;       /* "archive/" */
    size_t prefix_len;
    const uint8_t *start, *p, *end;
    pobj **all;
    int nall, allcap;
    pobj **stack;
    int sp, stackcap;
    int *marks;
    int nmarks, markcap;
    pobj **memo;
    int memocap;
    int nmemo;                /* defined memo slots: MEMOIZE's index */
    int *storage_of_entry;    /* zip entry index -> file->st index, or -1 */
} vm;

static int vfail(vm *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int vfail(vm *m, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    return wt_fail(m->f, VKF_EPARSE, "data.pkl: %s", buf);
}

static pobj *new_obj(vm *m, int type)
{
    if (m->nall >= PK_MAX_OBJECTS) {
        vfail(m, "more than %d objects", PK_MAX_OBJECTS);
        return NULL;
    }
    if (vkf_grow(&m->all, &m->allcap, m->nall + 1, sizeof(*m->all)) < 0)
        return NULL;
    pobj *o = vkf_calloc(1, sizeof(*o));
    if (!o)
        return NULL;
    o->type = (uint8_t)type;
    m->all[m->nall++] = o;
    return o;
}

/* new_obj returns NULL after logging a limit, or on ENOMEM (not logged). */
static int obj_err(void)
{
    return vkf_alloc_failed() ? VKF_ENOMEM : VKF_EPARSE;
}

static int push(vm *m, pobj *o)
{
    if (!o)
        return obj_err();
    if (m->sp >= PK_MAX_STACK)
        return vfail(m, "stack deeper than %d", PK_MAX_STACK);
    if (vkf_grow(&m->stack, &m->stackcap, m->sp + 1, sizeof(*m->stack)) < 0)
        return VKF_ENOMEM;
    m->stack[m->sp++] = o;
    return 0;
}

static int pop(vm *m, pobj **out)
{
    int floor_ = m->nmarks ? m->marks[m->nmarks - 1] : 0;
    if (m->sp <= floor_)
        return vfail(m, "stack underflow");
    *out = m->stack[--m->sp];
    return 0;
}

static int top(vm *m, pobj **out)
{
    int floor_ = m->nmarks ? m->marks[m->nmarks - 1] : 0;
    if (m->sp <= floor_)
        return vfail(m, "stack underflow");
    *out = m->stack[m->sp - 1];
    return 0;
}

static int add_item(vm *m, pobj *c, pobj *item)
{
    if (item->depth + 1 > PK_MAX_DEPTH)
        return vfail(m, "objects nested deeper than %d", PK_MAX_DEPTH);
    if (vkf_grow(&c->items, &c->cap, c->n + 1, sizeof(*c->items)) < 0)
        return VKF_ENOMEM;
    c->items[c->n++] = item;
    if (item->depth + 1 > c->depth)
        c->depth = (uint8_t)(item->depth + 1);
    return 0;
}

/* Pops everything above the last mark into a new container. */
static int pop_mark(vm *m, int type, pobj **out)
{
    if (!m->nmarks)
        return vfail(m, "no MARK on the stack");
    int from = m->marks[--m->nmarks];
    pobj *c = new_obj(m, type);
    if (!c)
        return obj_err();
    for (int i = from; i < m->sp; i++) {
        int err = add_item(m, c, m->stack[i]);
        if (err < 0)
            return err;
    }
    m->sp = from;
    *out = c;
    return 0;
}

static int need(vm *m, size_t n)
{
    if ((size_t)(m->end - m->p) < n)
        return vfail(m, "truncated");
    return 0;
}

static uint64_t rd_le(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static int memo_put(vm *m, uint64_t idx)
{
    pobj *o;
    int err = top(m, &o);
    if (err < 0)
        return err;
    if (idx >= PK_MAX_MEMO)
        return vfail(m, "memo index %llu exceeds the limit of %d",
                     (unsigned long long)idx, PK_MAX_MEMO);
    int old = m->memocap;
    if (vkf_grow(&m->memo, &m->memocap, (int)idx + 1, sizeof(*m->memo)) < 0)
        return VKF_ENOMEM;
    if (m->memocap > old)
        memset(m->memo + old, 0, (size_t)(m->memocap - old) * sizeof(*m->memo));
    if (!m->memo[idx])
        m->nmemo++;
    m->memo[idx] = o;
    return 0;
}

static int memo_get(vm *m, uint64_t idx)
{
    if (idx >= (uint64_t)m->memocap || !m->memo[idx])
        return vfail(m, "memo index %llu not defined", (unsigned long long)idx);
    return push(m, m->memo[idx]);
}

static bool str_is(const pobj *o, const char *s)
{
    return o->type == P_STR && o->len == strlen(s) && !memcmp(o->s, s, o->len);
}

static int find_global(vm *m, const char *mod, size_t mlen, const char *name, size_t nlen)
{
    for (size_t i = 0; i < VKF_ARRAY_SIZE(allowed); i++) {
        if (strlen(allowed[i].module) == mlen && !memcmp(allowed[i].module, mod, mlen) &&
            strlen(allowed[i].name) == nlen && !memcmp(allowed[i].name, name, nlen)) {
            pobj *g = new_obj(m, P_GLOBAL);
            if (!g)
                return obj_err();
            g->i = (int64_t)i;
            return push(m, g);
        }
    }
    int ml = mlen > 100 ? 100 : (int)mlen, nl = nlen > 100 ? 100 : (int)nlen;
    return wt_fail(m->f, VKF_EPARSE,
                   "data.pkl: refusing to load %.*s.%.*s: not allowed in a weights file",
                   ml, mod, nl, name);
}

/* ('storage', <Storage type>, key, location, numel) */
static int persistent_load(vm *m, pobj *pid)
{
    if (pid->type != P_TUPLE || pid->n != 5 || !str_is(pid->items[0], "storage"))
        return vfail(m, "unsupported persistent id (expected a storage tuple)");
    pobj *type = pid->items[1], *key = pid->items[2], *numel = pid->items[4];
    if (type->type != P_GLOBAL || allowed[type->i].kind != G_STORAGE)
        return vfail(m, "persistent id: storage type is not a torch Storage");
    if (key->type != P_STR || key->len == 0 || key->len > 64 ||
        !wt_utf8_valid(key->s, key->len))
        return vfail(m, "persistent id: bad storage key");
    if (numel->type != P_INT || numel->i < 0)
        return vfail(m, "persistent id: bad element count");
    vkf_wdtype dt = allowed[type->i].dtype;
    wt_file *f = m->f;
    char entry[256];
    snprintf(entry, sizeof(entry), "%.*sdata/%.*s", (int)m->prefix_len, m->prefix,
             (int)key->len, key->s);
    const wt_zip_entry *e = vkf_zip_find(m->zip, entry);
    if (!e)
        return vfail(m, "storage entry '%s' missing from the archive", entry);
    int idx = m->storage_of_entry[e - m->zip->e];
    if (idx >= 0) {
        if (f->st[idx].dtype != dt || f->st[idx].numel != (uint64_t)numel->i)
            return vfail(m, "storage '%s' used with two different types", f->st[idx].key);
    } else {
        uint64_t es = vkf_wdtype_size(dt);
        if ((uint64_t)numel->i > e->size / es)
            return vfail(m, "storage '%s' holds %llu bytes, fewer than %lld %s elements",
                         entry, (unsigned long long)e->size, (long long)numel->i,
                         vkf_wdtype_name(dt));
        if (vkf_grow(&f->st, &f->stcap, f->nst + 1, sizeof(*f->st)) < 0)
            return VKF_ENOMEM;
        wt_storage *s = &f->st[f->nst];
        memset(s, 0, sizeof(*s));
        if (!(s->key = vkf_strndup(key->s, key->len)))
            return VKF_ENOMEM;
        f->nst++;
        s->dtype = dt;
        s->numel = (uint64_t)numel->i;
        s->size = e->size;
        s->method = e->method;
        s->comp = e->data;
        s->comp_size = e->comp_size;
        if (e->method == 0)
            s->data = e->data;
        idx = f->nst - 1;
        m->storage_of_entry[e - m->zip->e] = idx;
    }
    pobj *o = new_obj(m, P_STORAGE);
    if (!o)
        return obj_err();
    o->i = idx;
    return push(m, o);
}

static bool int_tuple(const pobj *o, int max)
{
    if (o->type != P_TUPLE || o->n > max)
        return false;
    for (int i = 0; i < o->n; i++)
        if (o->items[i]->type != P_INT || o->items[i]->i < 0)
            return false;
    return true;
}

/* _rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, meta]) */
static int rebuild_tensor(vm *m, const pobj *args, pobj **out)
{
    if (args->type != P_TUPLE || args->n < 4 || args->items[0]->type != P_STORAGE ||
        args->items[1]->type != P_INT || args->items[1]->i < 0)
        return vfail(m, "_rebuild_tensor_v2: bad arguments");
    const pobj *size = args->items[2], *stride = args->items[3];
    if (!int_tuple(size, VKF_WEIGHTS_MAX_DIMS) || !int_tuple(stride, VKF_WEIGHTS_MAX_DIMS) ||
        size->n != stride->n)
        return vfail(m, "_rebuild_tensor_v2: size/stride must be tuples of at most %d "
                     "non-negative ints of equal length", VKF_WEIGHTS_MAX_DIMS);
    const wt_storage *s = &m->f->st[args->items[0]->i];
    ptensor *t = vkf_calloc(1, sizeof(*t));
    pobj *o = t ? new_obj(m, P_TENSOR) : NULL;
    if (!o) {
        vkf_free(t);
        return obj_err();
    }
    o->t = t;
    t->storage = (int)args->items[0]->i;
    t->offset = args->items[1]->i;
    t->ndim = size->n;
    /* Highest element index touched, overflow-checked. */
    uint64_t last = (uint64_t)t->offset;
    bool empty = false;
    for (int d = 0; d < t->ndim; d++) {
        t->shape[d] = size->items[d]->i;
        t->stride[d] = stride->items[d]->i;
        if (t->shape[d] == 0)
            empty = true;
        else if ((uint64_t)t->stride[d] > (UINT64_C(1) << 62) / (uint64_t)t->shape[d] ||
                 last > (UINT64_C(1) << 62))
            return vfail(m, "_rebuild_tensor_v2: extent overflows");
        else
            last += (uint64_t)(t->shape[d] - 1) * (uint64_t)t->stride[d];
    }
    if (!empty && last >= s->numel)
        return vfail(m, "tensor reaches element %llu of storage '%s' with %llu elements",
                     (unsigned long long)last, s->key, (unsigned long long)s->numel);
    *out = o;
    return 0;
}

static int reduce(vm *m, const pobj *fn, const pobj *args, pobj **out)
{
    if (fn->type != P_GLOBAL)
        return vfail(m, "REDUCE on a %s", ptype_names[fn->type]);
    if (args->type != P_TUPLE)
        return vfail(m, "REDUCE arguments are not a tuple");
    const struct allowed *a = &allowed[fn->i];
    pobj *o;
    switch (a->kind) {
    case G_ODICT:
        if (args->n != 0)
            return vfail(m, "OrderedDict with arguments");
        if (!(o = new_obj(m, P_DICT)))
            return obj_err();
        *out = o;
        return 0;
    case G_REBUILD_TENSOR:
        return rebuild_tensor(m, args, out);
    case G_REBUILD_PARAM:
    case G_REBUILD_PARAM_STATE:
        if (args->n < 1 || args->items[0]->type != P_TENSOR)
            return vfail(m, "%s: bad arguments", a->name);
        *out = args->items[0];
        return 0;
    case G_REBUILD_FROM_TYPE:
        /* (func, type, args, state): func must itself be allowed. */
        if (args->n != 4 || args->items[0]->type != P_GLOBAL ||
            args->items[0]->i == fn->i)
            return vfail(m, "_rebuild_from_type_v2: bad arguments");
        return reduce(m, args->items[0], args->items[2], out);
    case G_SIZE:
        if (args->n != 1 || !int_tuple(args->items[0], VKF_WEIGHTS_MAX_DIMS))
            return vfail(m, "torch.Size: bad arguments");
        *out = args->items[0];
        return 0;
    case G_ENCODE:
        if (args->n < 1 || args->items[0]->type != P_STR)
            return vfail(m, "_codecs.encode: bad arguments");
        if (!(o = new_obj(m, P_BYTES)))
            return obj_err();
        o->s = args->items[0]->s;
        o->len = args->items[0]->len;
        *out = o;
        return 0;
    default:
        return vfail(m, "refusing to call %s.%s", a->module, a->name);
    }
}

static int op_setitems(vm *m, pobj *d, int from)
{
    if (d->type != P_DICT)
        return vfail(m, "SETITEM on a %s", ptype_names[d->type]);
    if ((m->sp - from) % 2)
        return vfail(m, "SETITEMS with an odd number of items");
    for (int i = from; i < m->sp; i += 2) {
        pobj *k = m->stack[i];
        if (k->type != P_STR && k->type != P_INT && k->type != P_NONE)
            return vfail(m, "dict key of type %s", ptype_names[k->type]);
        int err = add_item(m, d, k);
        if (err >= 0)
            err = add_item(m, d, m->stack[i + 1]);
        if (err < 0)
            return err;
    }
    m->sp = from;
    return 0;
}

static int op_appends(vm *m, pobj *l, int from)
{
    if (l->type != P_LIST)
        return vfail(m, "APPEND on a %s", ptype_names[l->type]);
    for (int i = from; i < m->sp; i++) {
        int err = add_item(m, l, m->stack[i]);
        if (err < 0)
            return err;
    }
    m->sp = from;
    return 0;
}

static int push_str(vm *m, int type, size_t len_bytes)
{
    int err = need(m, len_bytes);
    if (err < 0)
        return err;
    uint64_t len = rd_le(m->p, (int)len_bytes);
    m->p += len_bytes;
    if (len > (uint64_t)(m->end - m->p))
        return vfail(m, "truncated string");
    if (type == P_STR && !wt_utf8_valid((const char *)m->p, (size_t)len))
        return vfail(m, "string is not valid UTF-8");
    pobj *o = new_obj(m, type);
    if (!o)
        return obj_err();
    o->s = (const char *)m->p;
    o->len = (size_t)len;
    m->p += len;
    return push(m, o);
}

static int push_int(vm *m, int64_t v)
{
    pobj *o = new_obj(m, P_INT);
    if (!o)
        return obj_err();
    o->i = v;
    return push(m, o);
}

/* GLOBAL: "module\nname\n" */
static int op_global_text(vm *m)
{
    const uint8_t *nl1 = memchr(m->p, '\n', (size_t)(m->end - m->p));
    const uint8_t *nl2 = nl1 ? memchr(nl1 + 1, '\n', (size_t)(m->end - nl1 - 1)) : NULL;
    if (!nl2)
        return vfail(m, "truncated GLOBAL");
    const char *mod = (const char *)m->p, *name = (const char *)nl1 + 1;
    m->p = nl2 + 1;
    return find_global(m, mod, (size_t)((const char *)nl1 - mod),
                       name, (size_t)((const char *)nl2 - name));
}

static int run(vm *m, pobj **result)
{
    int err = 0;
    pobj *a, *b, *c, *o;
    while (m->p < m->end) {
        uint8_t op = *m->p++;
        switch (op) {
        case 0x80: /* PROTO */
            VKF_TRY(need(m, 1));
            if (*m->p > 5)
                return vfail(m, "unsupported pickle protocol %d", *m->p);
            m->p++;
            break;
        case 0x95: /* FRAME: a size hint only */
            VKF_TRY(need(m, 8));
            m->p += 8;
            break;
        case '}': VKF_TRY(push(m, new_obj(m, P_DICT))); break;
        case ']': VKF_TRY(push(m, new_obj(m, P_LIST))); break;
        case ')': VKF_TRY(push(m, new_obj(m, P_TUPLE))); break;
        case 'N': VKF_TRY(push(m, new_obj(m, P_NONE))); break;
        case 0x88:
        case 0x89:
            if (!(o = new_obj(m, P_BOOL)))
                return obj_err();
            o->i = op == 0x88;
            VKF_TRY(push(m, o));
            break;
        case '(': /* MARK */
            if (m->nmarks >= PK_MAX_MARKS)
                return vfail(m, "more than %d nested MARKs", PK_MAX_MARKS);
            VKF_TRY(vkf_grow(&m->marks, &m->markcap, m->nmarks + 1, sizeof(*m->marks)));
            m->marks[m->nmarks++] = m->sp;
            break;
        case 'J':
            VKF_TRY(need(m, 4));
            VKF_TRY(push_int(m, (int32_t)(uint32_t)rd_le(m->p, 4)));
            m->p += 4;
            break;
        case 'K':
            VKF_TRY(need(m, 1));
            VKF_TRY(push_int(m, *m->p++));
            break;
        case 'M':
            VKF_TRY(need(m, 2));
            VKF_TRY(push_int(m, (int64_t)rd_le(m->p, 2)));
            m->p += 2;
            break;
        case 0x8a: { /* LONG1 */
            VKF_TRY(need(m, 1));
            int n = *m->p++;
            if (n > 8)
                return vfail(m, "integer of %d bytes is too large", n);
            VKF_TRY(need(m, (size_t)n));
            uint64_t v = n ? rd_le(m->p, n) : 0;
            if (n && n < 8 && (m->p[n - 1] & 0x80))
                v |= ~UINT64_C(0) << (8 * n);
            m->p += n;
            VKF_TRY(push_int(m, (int64_t)v));
            break;
        }
        case 'G': {
            VKF_TRY(need(m, 8));
            uint64_t v = 0;
            for (int i = 0; i < 8; i++)
                v = v << 8 | m->p[i];
            m->p += 8;
            if (!(o = new_obj(m, P_FLOAT)))
                return obj_err();
            memcpy(&o->d, &v, 8);
            VKF_TRY(push(m, o));
            break;
        }
        case 'X': VKF_TRY(push_str(m, P_STR, 4)); break;
        case 0x8c: VKF_TRY(push_str(m, P_STR, 1)); break;
        case 0x8d: VKF_TRY(push_str(m, P_STR, 8)); break;
        case 'U': VKF_TRY(push_str(m, P_BYTES, 1)); break;
        case 'T': VKF_TRY(push_str(m, P_BYTES, 4)); break;
        case 'C': VKF_TRY(push_str(m, P_BYTES, 1)); break;
        case 'B': VKF_TRY(push_str(m, P_BYTES, 4)); break;
        case 0x85:
        case 0x86:
        case 0x87: { /* TUPLE1..3 */
            int n = op - 0x84;
            if (!(o = new_obj(m, P_TUPLE)))
                return obj_err();
            pobj *items[3];
            for (int i = n - 1; i >= 0; i--)
                VKF_TRY(pop(m, &items[i]));
            for (int i = 0; i < n; i++)
                VKF_TRY(add_item(m, o, items[i]));
            VKF_TRY(push(m, o));
            break;
        }
        case 't': VKF_TRY(pop_mark(m, P_TUPLE, &o)); VKF_TRY(push(m, o)); break;
        case 'l': VKF_TRY(pop_mark(m, P_LIST, &o)); VKF_TRY(push(m, o)); break;
        case 'd': {
            if (!m->nmarks)
                return vfail(m, "no MARK on the stack");
            int from = m->marks[--m->nmarks];
            if (!(o = new_obj(m, P_DICT)))
                return obj_err();
            VKF_TRY(op_setitems(m, o, from));
            VKF_TRY(push(m, o));
            break;
        }
        case 's':
            VKF_TRY(pop(m, &b));
            VKF_TRY(pop(m, &a));
            VKF_TRY(top(m, &c));
            VKF_TRY(push(m, a));
            VKF_TRY(push(m, b));
            VKF_TRY(op_setitems(m, c, m->sp - 2));
            break;
        case 'u':
        case 'e': {
            if (!m->nmarks)
                return vfail(m, "no MARK on the stack");
            int from = m->marks[m->nmarks - 1];
            if (from == 0)
                return vfail(m, "nothing below the MARK");
            m->nmarks--;
            c = m->stack[from - 1];
            VKF_TRY(op == 'u' ? op_setitems(m, c, from) : op_appends(m, c, from));
            break;
        }
        case 'a':
            VKF_TRY(pop(m, &a));
            VKF_TRY(top(m, &c));
            VKF_TRY(push(m, a));
            VKF_TRY(op_appends(m, c, m->sp - 1));
            break;
        case 'q':
            VKF_TRY(need(m, 1));
            VKF_TRY(memo_put(m, *m->p++));
            break;
        case 'r':
            VKF_TRY(need(m, 4));
            VKF_TRY(memo_put(m, rd_le(m->p, 4)));
            m->p += 4;
            break;
        case 0x94: /* MEMOIZE */
            VKF_TRY(memo_put(m, (uint64_t)m->nmemo));
            break;
        case 'h':
            VKF_TRY(need(m, 1));
            VKF_TRY(memo_get(m, *m->p++));
            break;
        case 'j':
            VKF_TRY(need(m, 4));
            VKF_TRY(memo_get(m, rd_le(m->p, 4)));
            m->p += 4;
            break;
        case 'c': VKF_TRY(op_global_text(m)); break;
        case 0x93: /* STACK_GLOBAL */
            VKF_TRY(pop(m, &b));
            VKF_TRY(pop(m, &a));
            if (a->type != P_STR || b->type != P_STR)
                return vfail(m, "STACK_GLOBAL needs two strings");
            VKF_TRY(find_global(m, a->s, a->len, b->s, b->len));
            break;
        case 'R':
            VKF_TRY(pop(m, &b));
            VKF_TRY(pop(m, &a));
            VKF_TRY(reduce(m, a, b, &o));
            VKF_TRY(push(m, o));
            break;
        case 'b': /* BUILD: state is data we do not need; never setattr */
            VKF_TRY(pop(m, &b));
            VKF_TRY(top(m, &a));
            if (a->type != P_DICT && a->type != P_TENSOR)
                return vfail(m, "BUILD on a %s", ptype_names[a->type]);
            break;
        case 'Q':
            VKF_TRY(pop(m, &a));
            VKF_TRY(persistent_load(m, a));
            break;
        case '.':
            VKF_TRY(pop(m, result));
            return 0;
        default:
            return vfail(m, "opcode 0x%02x at byte %ld is not supported", op,
                         (long)(m->p - 1 - m->start));
        }
    }
    return vfail(m, "truncated (no STOP)");
fail:
    return err;
}

static const pobj *dict_get(const pobj *d, const char *key)
{
    for (int i = 0; i + 1 < d->n; i += 2)
        if (str_is(d->items[i], key))
            return d->items[i + 1];
    return NULL;
}

static bool has_tensor(const pobj *d)
{
    for (int i = 1; i < d->n; i += 2)
        if (d->items[i]->type == P_TENSOR)
            return true;
    return false;
}

static int add_tensors(vm *m, const pobj *sd)
{
    wt_file *f = m->f;
    int err = 0;
    for (int i = 0; i + 1 < sd->n; i += 2) {
        const pobj *k = sd->items[i], *v = sd->items[i + 1];
        if (v->type != P_TENSOR || k->type != P_STR) {
            vkf_logf(f->log, VKF_LOG_DEBUG, "%s: skipping non-tensor entry", f->path);
            continue;
        }
        const ptensor *p = v->t;
        const wt_storage *s = &f->st[p->storage];
        wt_tensor *t;
        VKF_TRY(wt_add_tensor(f, k->s, k->len, &t));
        t->info.dtype = s->dtype;
        t->info.ndim = p->ndim;
        t->storage = p->storage;
        t->offset = p->offset;
        int64_t expect = 1;
        t->contiguous = true;
        for (int d = p->ndim - 1; d >= 0; d--) {
            t->info.shape[d] = p->shape[d];
            t->strides[d] = p->stride[d];
            if (p->shape[d] != 1 && p->stride[d] != expect)
                t->contiguous = false;
            expect *= p->shape[d] ? p->shape[d] : 1;
        }
        VKF_TRY(wt_finish_info(f, t));
    }
fail:
    return err;
}

static int tensor_name_cmp(const void *a, const void *b)
{
    const wt_tensor *x = a, *y = b;
    return strcmp(x->name, y->name);
}

int vkf_pickle_parse(wt_file *f)
{
    static const char *const wrappers[] = {"state_dict", "params_ema", "params", "model",
                                           "module"};
    wt_zip zip = {0};
    vm m = {.f = f};
    uint8_t *owned = NULL;
    int err;
    VKF_TRY(vkf_zip_open(f, &zip));
    const wt_zip_entry *pkl = NULL;
    for (int i = 0; i < zip.count && !pkl; i++) {
        const wt_zip_entry *e = &zip.e[i];
        if (e->name_len >= 8 && !memcmp(e->name + e->name_len - 8, "data.pkl", 8)) {
            const char *slash = memchr(e->name, '/', e->name_len);
            if (e->name_len == 8 || (slash && slash == e->name + e->name_len - 9))
                pkl = e;
        }
    }
    if (!pkl) {
        bool ts = false;
        for (int i = 0; i < zip.count; i++)
            ts |= zip.e[i].name_len >= 13 &&
                  !memcmp(zip.e[i].name + zip.e[i].name_len - 13, "constants.pkl", 13);
        err = wt_fail(f, ts ? VKF_EUNSUPPORTED : VKF_EPARSE,
                      ts ? "TorchScript archives are not supported"
                         : "zip archive without data.pkl: not a PyTorch checkpoint");
        goto fail;
    }
    m.zip = &zip;
    VKF_CHECK_ALLOC(m.storage_of_entry = vkf_malloc((size_t)zip.count * sizeof(int) + 1));
    for (int i = 0; i < zip.count; i++)
        m.storage_of_entry[i] = -1;
    m.prefix = pkl->name;
    m.prefix_len = pkl->name_len - 8;
    char bo[256];
    snprintf(bo, sizeof(bo), "%.*sbyteorder", (int)m.prefix_len, m.prefix);
    const wt_zip_entry *byteorder = vkf_zip_find(&zip, bo);
    if (byteorder && byteorder->method == 0 && byteorder->size == 3 &&
        !memcmp(byteorder->data, "big", 3)) {
        err = wt_fail(f, VKF_EUNSUPPORTED, "big-endian checkpoints are not supported");
        goto fail;
    }
    const uint8_t *data;
    VKF_TRY(vkf_zip_read(f, pkl, WT_MAX_PICKLE, &data, &owned));
    m.start = m.p = data;
    m.end = data + pkl->size;
    pobj *root = NULL;
    VKF_TRY(run(&m, &root));
    if (root->type != P_DICT) {
        err = wt_fail(f, VKF_EPARSE, "data.pkl: top-level object is a %s, not a state dict",
                      ptype_names[root->type]);
        goto fail;
    }
    const pobj *sd = root;
    for (size_t i = 0; i < VKF_ARRAY_SIZE(wrappers) && sd == root; i++) {
        const pobj *inner = dict_get(root, wrappers[i]);
        if (inner && inner->type == P_DICT && has_tensor(inner))
            sd = inner;
    }
    if (sd != root) {
        for (int i = 0; i + 1 < root->n; i += 2) {
            const pobj *k = root->items[i], *v = root->items[i + 1];
            char buf[64];
            if (k->type != P_STR)
                continue;
            char *key = vkf_strndup(k->s, k->len), *val = NULL;
            VKF_CHECK_ALLOC(key);
            if (v->type == P_STR)
                val = vkf_strndup(v->s, v->len);
            else if (v->type == P_INT || v->type == P_BOOL || v->type == P_FLOAT) {
                if (v->type == P_FLOAT)
                    snprintf(buf, sizeof(buf), "%.17g", v->d);
                else
                    snprintf(buf, sizeof(buf), "%lld", (long long)v->i);
                val = vkf_strdup(buf);
            } else {
                vkf_free(key);
                continue;
            }
            err = val ? wt_add_meta(f, key, val) : VKF_ENOMEM;
            vkf_free(key);
            vkf_free(val);
            if (err < 0)
                goto fail;
        }
    }
    VKF_TRY(add_tensors(&m, sd));
    if (f->count > 1)
        qsort(f->t, (size_t)f->count, sizeof(*f->t), tensor_name_cmp);
    for (int i = 1; i < f->count; i++) {
        if (!strcmp(f->t[i - 1].name, f->t[i].name)) {
            err = wt_fail(f, VKF_EPARSE, "duplicate tensor name '%s'", f->t[i].name);
            goto fail;
        }
    }
fail:
    for (int i = 0; i < m.nall; i++) {
        vkf_free(m.all[i]->items);
        vkf_free(m.all[i]->t);
        vkf_free(m.all[i]);
    }
    vkf_free(m.all);
    vkf_free(m.stack);
    vkf_free(m.marks);
    vkf_free(m.memo);
    vkf_free(m.storage_of_entry);
    vkf_free(owned);
    vkf_zip_close(&zip);
    return err;
}

int vkf_pickle_storage_load(wt_file *f, wt_storage *s)
{
    if (s->data)
        return 0;
    if (s->size == 0) {
        s->data = (const uint8_t *)"";
        return 0;
    }
    int err = vkf_zip_inflate(f, s->key, s->comp, s->comp_size, s->size, &s->owned);
    if (err < 0)
        return err;
    s->data = s->owned;
    return 0;
}
