/*
 * The Lua host: one sandboxed lua_State per pack, the node declaration
 * API (vkf.node), pack loading and execute().  Tensors, ops, kernels and
 * typed values are in tensor.c.
 *
 * Sandbox (docs/lua-nodes.md "Sandbox"): only the allow-listed parts of the
 * base, string, table, math, utf8 and coroutine libraries and os.clock /
 * os.time / os.date; no io, os.execute, package, debug, dofile, loadfile,
 * string.dump; load() takes text only; require() reads modules of the
 * pack's own folder only; collectgarbage() answers "count" only.  A
 * counting allocator caps each pack's heap; a count hook bounds the
 * instructions of each call and, once the budget is spent, fires again on
 * every count so pcall cannot swallow the kill.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <lualib.h>

#include "lua/lua_internal.h"
#include "vkf_config.h"
#include "vkflow/graph.h"

#define HOOK_COUNT 1000
#define MAX_SOURCE_BYTES (8u << 20)

struct vkf_lua_host {
    vkf_lua_params params;
    lua_pack **packs;
    int nb_packs, cap_packs;
    vkf_gpu *gpu;
    const vkf_paths *paths;
};

/* ---- allocation and instruction budget ---------------------------------- */

static void *pack_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    lua_pack *p = ud;
    size_t old = ptr ? osize : 0;
    if (nsize == 0) {
        vkf_free(ptr);
        p->mem_used -= old;
        return NULL;
    }
    if (nsize > old && p->mem_used - old + nsize > p->mem_limit)
        return NULL;
    void *n = vkf_realloc(ptr, nsize);
    if (n)
        p->mem_used = p->mem_used - old + nsize;
    return n;
}

static void count_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    lua_pack *p = pack_of(L);
    p->instr_used += HOOK_COUNT;
    if (p->killed || p->instr_used > p->instr_budget) {
        /* From now on every instruction raises, so a pcall that catches
         * the error dies on the next instruction outside it. */
        if (!p->killed)
            lua_sethook(L, count_hook, LUA_MASKCOUNT, 1);
        p->killed = true;
        luaL_error(L, "instruction budget of %I exceeded (endless loop?)", (lua_Integer)p->instr_budget);
    }
}

static void arm_budget(lua_pack *p, long budget)
{
    p->instr_used = 0;
    p->instr_budget = budget;
    p->killed = false;
    lua_sethook(p->L, count_hook, LUA_MASKCOUNT, HOOK_COUNT);
}

static void disarm_budget(lua_pack *p)
{
    lua_sethook(p->L, NULL, 0, 0);
}

/* ---- sandboxed library ---------------------------------------------------- */

static int read_source(const char *path, char **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return errno == ENOENT ? VKF_ENOTFOUND : VKF_EIO;
    char *buf = NULL;
    size_t n = 0, cap = 0;
    int err = 0;
    for (;;) {
        if (n + 4096 > cap) {
            cap = cap ? cap * 2 : 65536;
            if (cap > MAX_SOURCE_BYTES + 65536) {
                err = VKF_EINVAL;
                break;
            }
            char *nb = vkf_realloc(buf, cap);
            if (!nb) {
                err = VKF_ENOMEM;
                break;
            }
            buf = nb;
        }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0)
            break;
    }
    if (!err && ferror(f))
        err = VKF_EIO;
    fclose(f);
    if (err) {
        vkf_free(buf);
        return err;
    }
    buf[n] = 0;
    *out = buf;
    *len = n;
    return 0;
}

/* Loads pack file `rel` (text only) as a function on the stack. */
static int load_pack_file(lua_State *L, const char *rel)
{
    lua_pack *p = pack_of(L);
    char *path = vkf_asprintf("%s/%s", p->dir, rel);
    char *chunkname = vkf_asprintf("@%s/%s", p->name, rel);
    char *src = NULL;
    size_t len = 0;
    int err = path && chunkname ? read_source(path, &src, &len) : VKF_ENOMEM;
    vkf_free(path);
    if (err < 0) {
        vkf_free(chunkname);
        return luaL_error(L, "%s/%s: %s", p->name, rel, vkf_strerror(err));
    }
    if (len && src[0] == LUA_SIGNATURE[0]) {
        vkf_free(src);
        vkf_free(chunkname);
        return luaL_error(L, "%s/%s: binary chunks are not allowed", p->name, rel);
    }
    int rc = luaL_loadbufferx(L, src, len, chunkname, "t");
    vkf_free(src);
    vkf_free(chunkname);
    if (rc != LUA_OK)
        return lua_error(L);
    return 1;
}

/* require(name): a module of this pack, name of [A-Za-z0-9_] words joined
 * by dots (dots become '/'), file name.lua; loaded once. */
static int sb_require(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    size_t n = strlen(name);
    bool ok = n > 0 && n < 200 && name[0] != '.' && name[n - 1] != '.';
    for (size_t i = 0; ok && i < n; i++) {
        char c = name[i];
        ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
             c == '_' || (c == '.' && name[i + 1] != '.');
    }
    if (!ok)
        return luaL_error(L, "require '%s': only modules of this pack can be required "
                             "(names of letters, digits, '_' and '.')", name);
    lua_getfield(L, LUA_REGISTRYINDEX, "vkf.loaded");
    lua_getfield(L, -1, name);
    if (!lua_isnil(L, -1))
        return 1;
    lua_pop(L, 1);
    char rel[256];
    snprintf(rel, sizeof(rel), "%s.lua", name);
    for (char *c = rel; *c && strcmp(c, ".lua"); c++)
        if (*c == '.')
            *c = '/';
    load_pack_file(L, rel);
    lua_pushstring(L, name);
    lua_call(L, 1, 1);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        lua_pushboolean(L, 1);
    }
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, name);
    return 1;
}

/* load(chunk [, chunkname [, mode [, env]]]): text chunks only. */
static int sb_load(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    const char *name = luaL_optstring(L, 2, "=(load)");
    const char *mode = luaL_optstring(L, 3, "t");
    if (strcmp(mode, "t") || (len && s[0] == LUA_SIGNATURE[0])) {
        lua_pushnil(L);
        lua_pushstring(L, "load: binary chunks are not allowed");
        return 2;
    }
    bool has_env = !lua_isnone(L, 4);
    if (luaL_loadbufferx(L, s, len, name, "t") != LUA_OK) {
        lua_pushnil(L);
        lua_insert(L, -2);
        return 2;
    }
    if (has_env) {
        lua_pushvalue(L, 4);
        if (!lua_setupvalue(L, -2, 1))
            lua_pop(L, 1);
    }
    return 1;
}

static int sb_collectgarbage(lua_State *L)
{
    const char *opt = luaL_optstring(L, 1, "collect");
    if (strcmp(opt, "count"))
        return luaL_error(L, "collectgarbage('%s') is not allowed (only 'count')", opt);
    int kb = lua_gc(L, LUA_GCCOUNT), b = lua_gc(L, LUA_GCCOUNTB);
    lua_pushnumber(L, kb + b / 1024.0);
    return 1;
}

static int sb_print(lua_State *L)
{
    lua_pack *p = pack_of(L);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    int n = lua_gettop(L);
    for (int i = 1; i <= n; i++) {
        luaL_tolstring(L, i, NULL);
        luaL_addvalue(&b);
        if (i < n)
            luaL_addchar(&b, '\t');
    }
    luaL_pushresult(&b);
    if (p->ctx)
        vkf_exec_print(p->ctx, lua_tostring(L, -1));
    else
        vkf_logf(p->log, VKF_LOG_INFO, "[%s] %s", p->name, lua_tostring(L, -1));
    return 0;
}

static void keep_fields(lua_State *L, const char *lib, const char *const *keep)
{
    lua_getglobal(L, lib);
    lua_newtable(L);
    for (int i = 0; keep[i]; i++) {
        lua_getfield(L, -2, keep[i]);
        lua_setfield(L, -2, keep[i]);
    }
    lua_setglobal(L, lib);
    lua_pop(L, 1);
}

static void open_sandbox(lua_State *L)
{
    static const luaL_Reg libs[] = {
        {LUA_GNAME, luaopen_base},       {LUA_STRLIBNAME, luaopen_string},
        {LUA_TABLIBNAME, luaopen_table}, {LUA_MATHLIBNAME, luaopen_math},
        {LUA_UTF8LIBNAME, luaopen_utf8}, {LUA_COLIBNAME, luaopen_coroutine},
        {LUA_OSLIBNAME, luaopen_os},     {NULL, NULL},
    };
    for (const luaL_Reg *l = libs; l->name; l++) {
        luaL_requiref(L, l->name, l->func, 1);
        lua_pop(L, 1);
    }
    /* The string metatable's __index is the string table itself: dump
     * must go from that table, not from a copy. */
    lua_getglobal(L, "string");
    lua_pushnil(L);
    lua_setfield(L, -2, "dump");
    lua_pop(L, 1);
    static const char *const os_keep[] = {"clock", "time", "date", "difftime", NULL};
    keep_fields(L, "os", os_keep);
    static const char *const drop[] = {"dofile", "loadfile", "require", "collectgarbage",
                                       "load", "print", NULL};
    for (int i = 0; drop[i]; i++) {
        lua_pushnil(L);
        lua_setglobal(L, drop[i]);
    }
    /* Libraries opened with luaL_requiref live in the registry's _LOADED:
     * clear it so nothing reaches the full os table through it. */
    lua_pushnil(L);
    lua_setfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    lua_register(L, "require", sb_require);
    lua_register(L, "load", sb_load);
    lua_register(L, "collectgarbage", sb_collectgarbage);
    lua_register(L, "print", sb_print);
    lua_newtable(L);
    lua_setfield(L, LUA_REGISTRYINDEX, "vkf.loaded");
}

/* ---- node declarations ----------------------------------------------------- */

static char *pack_strdup(lua_State *L, const char *s)
{
    if (!s)
        return NULL;
    char *d = vkf_strdup(s);
    if (!d)
        luaL_error(L, "out of memory");
    return d;
}

static void *pack_calloc(lua_State *L, size_t n, size_t size)
{
    void *d = vkf_calloc(n ? n : 1, size);
    if (!d)
        luaL_error(L, "out of memory");
    return d;
}

static const char *opt_string(lua_State *L, int t, const char *key)
{
    lua_getfield(L, t, key);
    const char *s = NULL;
    if (!lua_isnil(L, -1)) {
        if (lua_type(L, -1) != LUA_TSTRING)
            luaL_error(L, "field '%s' must be a string", key);
        s = pack_strdup(L, lua_tostring(L, -1));
    }
    lua_pop(L, 1);
    return s;
}

static bool opt_bool(lua_State *L, int t, const char *key, bool def)
{
    lua_getfield(L, t, key);
    bool b = lua_isnil(L, -1) ? def : lua_toboolean(L, -1);
    lua_pop(L, 1);
    return b;
}

static bool opt_number(lua_State *L, int t, const char *key, double *out)
{
    lua_getfield(L, t, key);
    bool has = !lua_isnil(L, -1);
    if (has) {
        if (!lua_isnumber(L, -1))
            luaL_error(L, "field '%s' must be a number", key);
        *out = lua_tonumber(L, -1);
    }
    lua_pop(L, 1);
    return has;
}

static bool opt_integer(lua_State *L, int t, const char *key, int64_t *out)
{
    lua_getfield(L, t, key);
    bool has = !lua_isnil(L, -1);
    if (has) {
        int isint = 0;
        lua_Integer v = lua_tointegerx(L, -1, &isint);
        if (!isint)
            luaL_error(L, "field '%s' must be an integer", key);
        *out = v;
    }
    lua_pop(L, 1);
    return has;
}

/* Frees what parse_input/parse_node allocated for one node. */
static void node_free(lua_node *n)
{
    if (!n)
        return;
    vkf_node_def *d = &n->def;
    vkf_free((char *)d->name);
    vkf_free((char *)d->display_name);
    vkf_free((char *)d->category);
    vkf_free((char *)d->description);
    vkf_free((char *)d->python_module);
    for (int i = 0; d->inputs && i < d->nb_inputs; i++) {
        vkf_input_def *in = (vkf_input_def *)&d->inputs[i];
        vkf_free((char *)in->name);
        vkf_free((char *)in->type);
        vkf_free((char *)in->tooltip);
        vkf_free((char *)in->sdef);
        vkf_free((char *)in->label_on);
        vkf_free((char *)in->label_off);
        vkf_free((char *)in->model_folder);
        if (in->options) {
            for (int k = 0; in->options[k]; k++)
                vkf_free((char *)in->options[k]);
            vkf_free((void *)in->options);
        }
    }
    vkf_free((void *)d->inputs);
    for (int i = 0; d->outputs && i < d->nb_outputs; i++) {
        vkf_output_def *o = (vkf_output_def *)&d->outputs[i];
        vkf_free((char *)o->type);
        vkf_free((char *)o->name);
        vkf_free((char *)o->tooltip);
    }
    vkf_free((void *)d->outputs);
    vkf_free(n);
}

/* One input spec {name, type, key = value...} at stack index t. */
static void parse_input(lua_State *L, int t, vkf_input_def *in, unsigned flags)
{
    t = lua_absindex(L, t);
    luaL_checktype(L, t, LUA_TTABLE);
    lua_rawgeti(L, t, 1);
    if (lua_type(L, -1) != LUA_TSTRING)
        luaL_error(L, "an input needs a name as its first element");
    in->name = pack_strdup(L, lua_tostring(L, -1));
    lua_pop(L, 1);
    lua_rawgeti(L, t, 2);
    if (lua_type(L, -1) == LUA_TTABLE) {
        /* ComfyUI's combo form: {"mode", {"a", "b"}} */
        in->type = pack_strdup(L, VKF_T_COMBO);
        lua_setfield(L, t, "options");
    } else if (lua_type(L, -1) == LUA_TSTRING) {
        in->type = pack_strdup(L, lua_tostring(L, -1));
        lua_pop(L, 1);
    } else {
        luaL_error(L, "input '%s' needs a type as its second element", in->name);
    }
    in->flags = flags;
    in->tooltip = opt_string(L, t, "tooltip");
    if (opt_bool(L, t, "force_input", false))
        in->flags |= VKF_IN_FORCE_INPUT;
    if (opt_bool(L, t, "multiline", false))
        in->flags |= VKF_IN_MULTILINE;
    if (opt_bool(L, t, "control_after_generate", false))
        in->flags |= !strcmp(in->type, VKF_T_COMBO) ? VKF_IN_COMBO_CONTROL : VKF_IN_SEED_CONTROL;
    if (opt_bool(L, t, "lazy", false))
        in->flags |= VKF_IN_LAZY;
    const char *ty = in->type;
    if (!strcmp(ty, VKF_T_INT)) {
        in->imin = INT64_MIN;
        in->imax = INT64_MAX;
        opt_integer(L, t, "default", &in->idef);
        opt_integer(L, t, "min", &in->imin);
        opt_integer(L, t, "max", &in->imax);
        int64_t step = 0;
        if (opt_integer(L, t, "step", &step))
            in->fstep = (double)step;
        if (in->imin > in->imax || in->idef < in->imin || in->idef > in->imax)
            luaL_error(L, "input '%s': default %I outside [min, max]", in->name,
                       (lua_Integer)in->idef);
    } else if (!strcmp(ty, VKF_T_FLOAT)) {
        in->fmin = -1.7976931348623157e308;
        in->fmax = 1.7976931348623157e308;
        opt_number(L, t, "default", &in->fdef);
        opt_number(L, t, "min", &in->fmin);
        opt_number(L, t, "max", &in->fmax);
        opt_number(L, t, "step", &in->fstep);
        opt_number(L, t, "round", &in->fround);
        if (in->fmin > in->fmax || in->fdef < in->fmin || in->fdef > in->fmax)
            luaL_error(L, "input '%s': default outside [min, max]", in->name);
    } else if (!strcmp(ty, VKF_T_STRING)) {
        in->sdef = opt_string(L, t, "default");
        if (opt_bool(L, t, "dynamic_prompts", false))
            in->flags |= VKF_IN_DYNAMIC_PROMPTS;
    } else if (!strcmp(ty, VKF_T_BOOLEAN)) {
        in->bdef = opt_bool(L, t, "default", false);
        in->label_on = opt_string(L, t, "label_on");
        in->label_off = opt_string(L, t, "label_off");
    } else if (!strcmp(ty, VKF_T_COMBO)) {
        in->model_folder = opt_string(L, t, "model_folder");
        lua_getfield(L, t, "options");
        if (lua_istable(L, -1)) {
            int n = (int)luaL_len(L, -1);
            const char **opts = pack_calloc(L, (size_t)n + 1, sizeof(*opts));
            in->options = opts;
            for (int k = 0; k < n; k++) {
                lua_rawgeti(L, -1, k + 1);
                if (lua_type(L, -1) != LUA_TSTRING)
                    luaL_error(L, "input '%s': combo options must be strings", in->name);
                opts[k] = pack_strdup(L, lua_tostring(L, -1));
                lua_pop(L, 1);
            }
        } else if (!in->model_folder) {
            luaL_error(L, "input '%s': a COMBO needs options or model_folder", in->name);
        }
        lua_pop(L, 1);
        in->sdef = opt_string(L, t, "default");
        if (in->sdef && in->options) {
            bool found = false;
            for (int k = 0; in->options[k]; k++)
                found |= !strcmp(in->options[k], in->sdef);
            if (!found)
                luaL_error(L, "input '%s': default '%s' is not an option", in->name, in->sdef);
        }
    }
}

static int count_list(lua_State *L, int t, const char *key)
{
    lua_getfield(L, t, key);
    int n = 0;
    if (!lua_isnil(L, -1)) {
        luaL_checktype(L, -1, LUA_TTABLE);
        n = (int)luaL_len(L, -1);
    }
    lua_pop(L, 1);
    return n;
}

static int lua_node_execute(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out);

/* vkf.node{ name=, display_name=, category=, description=,
 *           inputs = {required = {...}, optional = {...}, hidden = {...}},
 *           outputs = {{"IMAGE", name=, tooltip=, is_list=}, ...},
 *           output_node=, not_idempotent=, deprecated=, experimental=,
 *           execute = function(...) ... end } */
static int l_node(lua_State *L)
{
    lua_pack *p = pack_of(L);
    if (!p->registering)
        return luaL_error(L, "vkf.node: nodes are declared while the pack loads");
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_node *n = pack_calloc(L, 1, sizeof(*n));
    /* Owned by the pack from here on, so a Lua error frees it later. */
    if (vkf_grow(&p->nodes, &p->cap_nodes, p->nb_nodes + 1, sizeof(*p->nodes)) < 0) {
        vkf_free(n);
        return luaL_error(L, "out of memory");
    }
    p->nodes[p->nb_nodes++] = n;
    n->pack = p;
    n->fn_ref = LUA_NOREF;
    vkf_node_def *d = &n->def;
    d->name = opt_string(L, 1, "name");
    if (!d->name || !*d->name)
        return luaL_error(L, "vkf.node: 'name' (the class name) is required");
    d->display_name = opt_string(L, 1, "display_name");
    d->category = opt_string(L, 1, "category");
    if (!d->category)
        d->category = pack_strdup(L, "lua");
    d->description = opt_string(L, 1, "description");
    d->python_module = vkf_asprintf("custom_nodes.%s", p->name);
    if (!d->python_module)
        return luaL_error(L, "out of memory");
    if (opt_bool(L, 1, "output_node", false))
        d->flags |= VKF_NODE_OUTPUT;
    if (opt_bool(L, 1, "not_idempotent", false))
        d->flags |= VKF_NODE_NOT_IDEMPOTENT;
    if (opt_bool(L, 1, "deprecated", false))
        d->flags |= VKF_NODE_DEPRECATED;
    if (opt_bool(L, 1, "experimental", false))
        d->flags |= VKF_NODE_EXPERIMENTAL;

    lua_getfield(L, 1, "inputs");
    int nin = 0;
    if (!lua_isnil(L, -1)) {
        luaL_checktype(L, -1, LUA_TTABLE);
        int it = lua_gettop(L);
        static const char *const groups[] = {"required", "optional", "hidden"};
        static const unsigned gflags[] = {0, VKF_IN_OPTIONAL, VKF_IN_HIDDEN};
        int total = 0;
        for (int g = 0; g < 3; g++)
            total += count_list(L, it, groups[g]);
        d->inputs = pack_calloc(L, (size_t)total, sizeof(vkf_input_def));
        for (int g = 0; g < 3; g++) {
            lua_getfield(L, it, groups[g]);
            int cnt = lua_isnil(L, -1) ? 0 : (int)luaL_len(L, -1);
            for (int k = 0; k < cnt; k++) {
                lua_rawgeti(L, -1, k + 1);
                d->nb_inputs = nin + 1;
                parse_input(L, -1, (vkf_input_def *)&d->inputs[nin++], gflags[g]);
                lua_pop(L, 1);
            }
            lua_pop(L, 1);
        }
        for (int a = 0; a < nin; a++)
            for (int b = a + 1; b < nin; b++)
                if (!strcmp(d->inputs[a].name, d->inputs[b].name))
                    return luaL_error(L, "vkf.node '%s': input '%s' declared twice", d->name,
                                      d->inputs[a].name);
    }
    lua_pop(L, 1);

    lua_getfield(L, 1, "outputs");
    if (!lua_isnil(L, -1)) {
        luaL_checktype(L, -1, LUA_TTABLE);
        int no = (int)luaL_len(L, -1);
        d->outputs = pack_calloc(L, (size_t)no, sizeof(vkf_output_def));
        for (int k = 0; k < no; k++) {
            vkf_output_def *o = (vkf_output_def *)&d->outputs[k];
            d->nb_outputs = k + 1;
            lua_rawgeti(L, -1, k + 1);
            if (lua_type(L, -1) == LUA_TSTRING) {
                o->type = pack_strdup(L, lua_tostring(L, -1));
            } else if (lua_istable(L, -1)) {
                lua_rawgeti(L, -1, 1);
                if (lua_type(L, -1) != LUA_TSTRING)
                    return luaL_error(L, "vkf.node '%s': output %d needs a type", d->name, k + 1);
                o->type = pack_strdup(L, lua_tostring(L, -1));
                lua_pop(L, 1);
                o->name = opt_string(L, -1, "name");
                o->tooltip = opt_string(L, -1, "tooltip");
                o->is_list = opt_bool(L, -1, "is_list", false);
            } else {
                return luaL_error(L, "vkf.node '%s': output %d must be a type or a table",
                                  d->name, k + 1);
            }
            lua_pop(L, 1);
        }
    }
    lua_pop(L, 1);
    if (!d->nb_outputs && !(d->flags & VKF_NODE_OUTPUT))
        return luaL_error(L, "vkf.node '%s': a node without outputs must be an output_node",
                          d->name);

    lua_getfield(L, 1, "execute");
    if (!lua_isfunction(L, -1))
        return luaL_error(L, "vkf.node '%s': 'execute' must be a function", d->name);
    n->fn_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    d->execute = lua_node_execute;
    return 0;
}

/* ---- execution -------------------------------------------------------------- */

static int traceback(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);
    if (!msg)
        msg = luaL_tolstring(L, 1, NULL);
    luaL_traceback(L, L, msg, 1);
    return 1;
}

typedef struct exec_args {
    lua_node *node;
    const vkf_value *in;
    vkf_value *out;
} exec_args;

static int exec_protected(lua_State *L)
{
    exec_args *a = lua_touserdata(L, 1);
    const vkf_node_def *d = &a->node->def;
    lua_rawgeti(L, LUA_REGISTRYINDEX, a->node->fn_ref);
    luaL_checkstack(L, d->nb_inputs + 4, "too many inputs");
    for (int i = 0; i < d->nb_inputs; i++)
        vkf_lua_push_value(L, &a->in[i]);
    lua_call(L, d->nb_inputs, d->nb_outputs);
    int base = lua_gettop(L) - d->nb_outputs;
    for (int j = 0; j < d->nb_outputs; j++) {
        if (lua_isnil(L, base + 1 + j))
            return luaL_error(L, "execute returned no value for output %d (%s)", j + 1,
                              d->outputs[j].type);
        vkf_lua_to_value(L, base + 1 + j, d->outputs[j].type, &a->out[j]);
    }
    return 0;
}

/* Runs fn (pushed by `push`) under the budget; on error *msg holds the
 * traceback text (vkf_malloc'ed). */
static int run_protected(lua_pack *p, lua_CFunction fn, void *ud, int nres, char **msg)
{
    lua_State *L = p->L;
    lua_pushcfunction(L, traceback);
    int h = lua_gettop(L);
    lua_pushcfunction(L, fn);
    lua_pushlightuserdata(L, ud);
    arm_budget(p, p->instr_budget);
    int rc = lua_pcall(L, 1, nres, h);
    disarm_budget(p);
    if (rc != LUA_OK) {
        const char *m = lua_tostring(L, -1);
        if (msg)
            *msg = vkf_strdup(m ? m : "(error object is not a string)");
        lua_settop(L, h - 1);
        return VKF_ERUN;
    }
    lua_remove(L, h);
    return 0;
}

static void collect_if_needed(lua_pack *p)
{
    /* Drops the tensors this call let go of now rather than whenever the
     * collector next runs. */
    lua_gc(p->L, LUA_GCCOLLECT);
    p->gpu_bytes_since_gc = 0;
}

static int lua_node_execute(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    lua_node *n = (lua_node *)vkf_exec_node_def(ctx);
    lua_pack *p = n->pack;
    vkf_exec_ctx *prev_ctx = p->ctx;
    vkf_gpu *prev_gpu = p->gpu;
    const vkf_paths *prev_paths = p->paths;
    p->ctx = ctx;
    p->paths = vkf_exec_paths(ctx);
    exec_args a = {n, in, out};
    char *msg = NULL;
    int top = lua_gettop(p->L);
    long saved_budget = p->instr_budget;
    int err = run_protected(p, exec_protected, &a, 0, &msg);
    p->instr_budget = saved_budget;
    lua_settop(p->L, top);
    collect_if_needed(p);
    p->ctx = prev_ctx;
    p->gpu = prev_gpu;
    p->paths = prev_paths;
    if (err < 0) {
        err = vkf_exec_error(ctx, "Lua node %s (node %s, pack '%s'): %s", n->def.name,
                             vkf_exec_node_id(ctx), p->name, msg ? msg : "out of memory");
        vkf_free(msg);
        return err;
    }
    return 0;
}

/* ---- services for Lua: vkf.node_id, vkf.progress, vkf.ui_text ------------------ */

static int l_node_id(lua_State *L)
{
    lua_pack *p = pack_of(L);
    if (!p->ctx)
        return 0;
    lua_pushstring(L, vkf_exec_node_id(p->ctx));
    return 1;
}

static int l_progress(lua_State *L)
{
    lua_pack *p = pack_of(L);
    lua_Integer v = luaL_checkinteger(L, 1), m = luaL_checkinteger(L, 2);
    if (p->ctx && vkf_exec_progress(p->ctx, v, m) == VKF_EINTERRUPTED)
        return luaL_error(L, "interrupted");
    return 0;
}

static int l_ui_text(lua_State *L)
{
    lua_pack *p = pack_of(L);
    const char *key = luaL_checkstring(L, 1), *text = luaL_checkstring(L, 2);
    if (p->ctx && vkf_exec_ui_text(p->ctx, key, text) < 0)
        return luaL_error(L, "out of memory");
    return 0;
}

static int l_interrupted(lua_State *L)
{
    lua_pack *p = pack_of(L);
    lua_pushboolean(L, p->ctx && vkf_exec_interrupted(p->ctx));
    return 1;
}

static int open_vkf(lua_State *L)
{
    static const luaL_Reg fns[] = {
        {"node", l_node},         {"node_id", l_node_id},
        {"progress", l_progress}, {"ui_text", l_ui_text},
        {"interrupted", l_interrupted}, {NULL, NULL},
    };
    luaL_newlib(L, fns);
    lua_pushstring(L, pack_of(L)->name);
    lua_setfield(L, -2, "pack");
    lua_pushstring(L, VKF_VERSION_STRING);
    lua_setfield(L, -2, "version");
    vkf_lua_open_tensor(L);
    lua_setglobal(L, "vkf");
    return 0;
}

/* ---- packs ------------------------------------------------------------------- */

void vkf_lua_pack_ref(lua_pack *p)
{
    p->refs++;
}

void vkf_lua_pack_unref(lua_pack **pp)
{
    lua_pack *p = *pp;
    if (!p)
        return;
    *pp = NULL;
    if (--p->refs > 0)
        return;
    if (p->L)
        lua_close(p->L);
    for (int i = 0; i < p->nb_nodes; i++)
        node_free(p->nodes[i]);
    vkf_free(p->nodes);
    vkf_free(p->name);
    vkf_free(p->dir);
    vkf_free(p);
}

static int pack_init(lua_State *L)
{
    open_sandbox(L);
    open_vkf(L);
    load_pack_file(L, "init.lua");
    lua_call(L, 0, 0);
    return 0;
}

static int pack_create(vkf_lua_host *h, const char *dir, lua_pack **out, char **msg)
{
    int err = 0;
    lua_pack *p = vkf_calloc(1, sizeof(*p));
    VKF_CHECK_ALLOC(p);
    p->refs = 1;
    p->log = h->params.log;
    p->mem_limit = h->params.mem_limit;
    p->gpu = h->gpu;
    p->paths = h->paths;
    size_t len = strlen(dir);
    while (len > 1 && dir[len - 1] == '/')
        len--;
    p->dir = vkf_strndup(dir, len);
    VKF_CHECK_ALLOC(p->dir);
    const char *base = strrchr(p->dir, '/');
    p->name = vkf_strdup(base ? base + 1 : p->dir);
    VKF_CHECK_ALLOC(p->name);
    p->L = lua_newstate(pack_alloc, p);
    VKF_CHECK_ALLOC(p->L);
    *(lua_pack **)lua_getextraspace(p->L) = p;
    p->registering = true;
    p->instr_budget = h->params.load_budget;
    lua_State *L = p->L;
    lua_pushcfunction(L, traceback);
    lua_pushcfunction(L, pack_init);
    arm_budget(p, h->params.load_budget);
    int rc = lua_pcall(L, 0, 0, -2);
    disarm_budget(p);
    p->registering = false;
    p->instr_budget = h->params.instr_budget;
    if (rc != LUA_OK) {
        const char *m = lua_tostring(L, -1);
        *msg = vkf_strdup(m ? m : rc == LUA_ERRMEM ? "out of memory" : "error");
        err = VKF_EINVAL;
        goto fail;
    }
    lua_settop(L, 0);
    lua_gc(L, LUA_GCCOLLECT);
    *out = p;
    return 0;
fail:
    vkf_lua_pack_unref(&p);
    return err;
}

int vkf_lua_host_create(const vkf_lua_params *params, vkf_lua_host **out)
{
    vkf_lua_host *h = vkf_calloc(1, sizeof(*h));
    if (!h)
        return VKF_ENOMEM;
    if (params)
        h->params = *params;
    if (!h->params.mem_limit)
        h->params.mem_limit = 256u << 20;
    if (!h->params.instr_budget)
        h->params.instr_budget = 2000000000L;
    if (!h->params.load_budget)
        h->params.load_budget = 100000000L;
    *out = h;
    return 0;
}

void vkf_lua_host_destroy(vkf_lua_host **ph)
{
    vkf_lua_host *h = *ph;
    if (!h)
        return;
    for (int i = 0; i < h->nb_packs; i++)
        vkf_lua_pack_unref(&h->packs[i]);
    vkf_free(h->packs);
    vkf_free(h);
    *ph = NULL;
}

void vkf_lua_host_set_gpu(vkf_lua_host *h, vkf_gpu *gpu)
{
    h->gpu = gpu;
    for (int i = 0; i < h->nb_packs; i++)
        h->packs[i]->gpu = gpu;
}

void vkf_lua_host_set_paths(vkf_lua_host *h, const vkf_paths *paths)
{
    h->paths = paths;
    for (int i = 0; i < h->nb_packs; i++)
        h->packs[i]->paths = paths;
}

int vkf_lua_load_pack(vkf_lua_host *h, const char *dir, vkf_registry *reg)
{
    char *msg = NULL;
    lua_pack *p = NULL;
    int err = pack_create(h, dir, &p, &msg);
    const char *base = strrchr(dir, '/');
    base = base && base[1] ? base + 1 : dir;
    if (err < 0) {
        vkf_logf(h->params.log, VKF_LOG_ERROR, "Lua pack '%s' (%s) skipped: %s", base, dir,
                 msg ? msg : vkf_strerror(err));
        vkf_free(msg);
        return err;
    }
    for (int i = 0; i < h->nb_packs; i++) {
        if (!strcmp(h->packs[i]->name, p->name)) {
            vkf_logf(h->params.log, VKF_LOG_ERROR,
                     "Lua pack '%s' (%s) skipped: a pack of that name is already loaded from %s",
                     p->name, dir, h->packs[i]->dir);
            vkf_lua_pack_unref(&p);
            return VKF_EINVAL;
        }
    }
    for (int i = 0; i < p->nb_nodes; i++) {
        const char *name = p->nodes[i]->def.name;
        bool dup = vkf_registry_find(reg, name) != NULL;
        for (int k = 0; k < i && !dup; k++)
            dup = !strcmp(p->nodes[k]->def.name, name);
        if (dup) {
            vkf_logf(h->params.log, VKF_LOG_ERROR,
                     "Lua pack '%s' (%s) skipped: node class '%s' already exists", p->name, dir,
                     name);
            vkf_lua_pack_unref(&p);
            return VKF_EINVAL;
        }
    }
    err = vkf_grow(&h->packs, &h->cap_packs, h->nb_packs + 1, sizeof(*h->packs));
    int added = 0;
    for (; err >= 0 && added < p->nb_nodes; added++)
        err = vkf_registry_add(reg, &p->nodes[added]->def);
    if (err < 0) {
        /* Only allocation failures get here; the registry cannot drop
         * entries, so the pack stays owned by the host when any were added. */
        if (added == 0 || vkf_grow(&h->packs, &h->cap_packs, h->nb_packs + 1,
                                   sizeof(*h->packs)) < 0) {
            vkf_lua_pack_unref(&p);
            return err;
        }
    }
    h->packs[h->nb_packs++] = p;
    vkf_logf(h->params.log, VKF_LOG_DEBUG, "Lua pack '%s': %d node(s)", p->name, p->nb_nodes);
    return err;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int vkf_lua_load_root(vkf_lua_host *h, const char *root, vkf_registry *reg, int *loaded,
                      int *failed)
{
    int nl = 0, nf = 0, err = 0;
    char **names = NULL;
    int nn = 0, cap = 0;
    DIR *d = opendir(root);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (e->d_name[0] == '.')
                continue;
            char *path = vkf_asprintf("%s/%s", root, e->d_name);
            struct stat st;
            if (!path || vkf_grow(&names, &cap, nn + 1, sizeof(*names)) < 0) {
                vkf_free(path);
                err = VKF_ENOMEM;
                break;
            }
            if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
                names[nn++] = path;
            else
                vkf_free(path);
        }
        closedir(d);
    }
    if (nn)
        qsort(names, (size_t)nn, sizeof(*names), cmp_str);
    for (int i = 0; i < nn; i++) {
        if (err >= 0) {
            int rc = vkf_lua_load_pack(h, names[i], reg);
            if (rc == VKF_ENOMEM)
                err = rc;
            else if (rc < 0)
                nf++;
            else
                nl++;
        }
        vkf_free(names[i]);
    }
    vkf_free(names);
    if (loaded)
        *loaded = nl;
    if (failed)
        *failed = nf;
    return err;
}

int vkf_lua_load_all(vkf_lua_host *h, const char *const *dirs, int ndirs,
                     const char *env_path, vkf_registry *reg)
{
    struct stat st;
    const char *shipped = stat(VKF_SOURCE_ROOT "/lua", &st) == 0 ? VKF_SOURCE_ROOT "/lua"
                                                                  : VKF_LUA_DIR;
    int err = vkf_lua_load_root(h, shipped, reg, NULL, NULL);
    for (int i = 0; err >= 0 && i < ndirs; i++)
        err = vkf_lua_load_root(h, dirs[i], reg, NULL, NULL);
    if (err >= 0 && env_path && *env_path) {
        char *copy = vkf_strdup(env_path), *save = NULL;
        if (!copy)
            return VKF_ENOMEM;
        for (char *tok = strtok_r(copy, ":", &save); tok && err >= 0;
             tok = strtok_r(NULL, ":", &save))
            err = vkf_lua_load_root(h, tok, reg, NULL, NULL);
        vkf_free(copy);
    }
    return err;
}

/* ---- running text chunks in a pack (tests, tools) ------------------------------ */

typedef struct run_args {
    const char *chunk, *name;
} run_args;

static int run_chunk(lua_State *L)
{
    run_args *a = lua_touserdata(L, 1);
    if (luaL_loadbufferx(L, a->chunk, strlen(a->chunk), a->name, "t") != LUA_OK)
        return lua_error(L);
    lua_call(L, 0, LUA_MULTRET);
    return lua_gettop(L) - 1;
}

int vkf_lua_run_n(vkf_lua_host *h, const char *pack, const char *chunk, const char *chunkname,
                  double *results, int cap, int *count, char **errmsg)
{
    lua_pack *p = NULL;
    for (int i = 0; i < h->nb_packs && !p; i++)
        if (!strcmp(h->packs[i]->name, pack))
            p = h->packs[i];
    if (count)
        *count = 0;
    if (!p)
        return VKF_ENOTFOUND;
    lua_State *L = p->L;
    int top = lua_gettop(L);
    run_args a = {chunk, chunkname ? chunkname : "=(run)"};
    int err = run_protected(p, run_chunk, &a, LUA_MULTRET, errmsg);
    if (err == 0) {
        int n = lua_gettop(L) - top;
        for (int i = 0; i < n && i < cap; i++)
            results[i] = lua_tonumber(L, top + 1 + i);
        if (count)
            *count = n;
    }
    lua_settop(L, top);
    collect_if_needed(p);
    return err;
}

int vkf_lua_run(vkf_lua_host *h, const char *pack, const char *chunk, const char *chunkname,
                double *result, char **errmsg)
{
    double r = 0;
    int n = 0;
    int err = vkf_lua_run_n(h, pack, chunk, chunkname, &r, 1, &n, errmsg);
    if (result)
        *result = r;
    return err;
}
