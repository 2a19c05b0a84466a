/*
 * Lua's view of the GPU: tensor userdata (shape, dtype, arithmetic, views,
 * small host transfers), the op library (vkf.op.*), run-time GLSL kernels
 * (vkf.kernel), weight files opened through the model folders
 * (vkf.weights.open) and the typed values that cross the node boundary
 * (IMAGE, MASK, LATENT, CONDITIONING, SIGMAS and objects).
 *
 * Conventions for Lua code: dims and slice starts are 1-based (negative
 * dims count from the end); shapes are Lua arrays; ops return new tensors.
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpu/gpu_internal.h"
#include "lua/lua_internal.h"
#include "vkflow/models.h"
#include "vkflow/paths.h"
#include "vkflow/sampling.h"
#include "vkflow/types.h"
#include "vkflow/weights.h"

#define MAX_TABLE_ELEMS (16 << 20)     /* upload/download through Lua tables */
#define GC_GPU_BYTES (256ull << 20)    /* full collection after this much */
#define KERNEL_MT "vkf.Kernel"
#define WEIGHTS_MT "vkf.Weights"

typedef struct lua_tensor {
    vkf_tensor *t;
} lua_tensor;

int vkf_lua_fail(lua_State *L, int err, const char *what)
{
    return luaL_error(L, "%s: %s", what, vkf_strerror(err));
}

vkf_gpu *vkf_lua_gpu(lua_State *L)
{
    lua_pack *p = pack_of(L);
    if (!p->gpu && p->ctx) {
        vkf_gpu *g = NULL;
        if (vkf_exec_gpu(p->ctx, &g) < 0)
            luaL_error(L, "no Vulkan device");
        p->gpu = g;
    }
    if (!p->gpu)
        luaL_error(L, "no Vulkan device (tensor code runs inside a node's execute)");
    return p->gpu;
}

void vkf_lua_push_tensor(lua_State *L, vkf_tensor *t)
{
    lua_pack *p = pack_of(L);
    lua_tensor *u = lua_newuserdatauv(L, sizeof(*u), 0);
    u->t = t;
    luaL_setmetatable(L, VKF_LUA_TENSOR);
    p->gpu_bytes_since_gc += (uint64_t)vkf_tensor_numel(t) * 4;
    if (p->gpu_bytes_since_gc > GC_GPU_BYTES) {
        p->gpu_bytes_since_gc = 0;
        lua_gc(L, LUA_GCCOLLECT);
    }
}

vkf_tensor *vkf_lua_to_tensor(lua_State *L, int idx)
{
    lua_tensor *u = luaL_testudata(L, idx, VKF_LUA_TENSOR);
    return u ? u->t : NULL;
}

vkf_tensor *vkf_lua_check_tensor(lua_State *L, int idx)
{
    lua_tensor *u = luaL_checkudata(L, idx, VKF_LUA_TENSOR);
    if (!u->t)
        luaL_argerror(L, idx, "tensor was freed");
    return u->t;
}

/* A tensor argument that may be nil. */
static vkf_tensor *opt_tensor(lua_State *L, int idx)
{
    return lua_isnoneornil(L, idx) ? NULL : vkf_lua_check_tensor(L, idx);
}

/* Pushes the result of an op or raises its error. */
static int result(lua_State *L, int err, vkf_tensor **out, const char *what)
{
    if (err < 0)
        return vkf_lua_fail(L, err, what);
    vkf_lua_push_tensor(L, *out);
    return 1;
}

static int read_shape(lua_State *L, int idx, int64_t *shape)
{
    luaL_checktype(L, idx, LUA_TTABLE);
    int n = (int)luaL_len(L, idx);
    if (n < 1 || n > VKF_TENSOR_MAX_DIMS)
        luaL_argerror(L, idx, "a shape has 1 to 5 dims");
    for (int i = 0; i < n; i++) {
        lua_rawgeti(L, idx, i + 1);
        int isint = 0;
        lua_Integer v = lua_tointegerx(L, -1, &isint);
        if (!isint || v < 1 || v > (lua_Integer)1 << 40)
            luaL_argerror(L, idx, "shape entries are positive integers");
        shape[i] = v;
        lua_pop(L, 1);
    }
    return n;
}

static int check_dim(lua_State *L, int arg, int ndim)
{
    lua_Integer d = luaL_checkinteger(L, arg);
    if (d < 0)
        d += ndim + 1;
    if (d < 1 || d > ndim)
        luaL_argerror(L, arg, "dim out of range");
    return (int)d - 1;
}

static vkf_dtype parse_dtype(lua_State *L, int idx)
{
    static const char *const names[] = {"f32", "f16", "bf16", NULL};
    return (vkf_dtype)luaL_checkoption(L, idx, "f32", names);
}

/* ---- tensor construction and transfers ------------------------------------ */

static int new_tensor(lua_State *L, vkf_dtype dt, int nd, const int64_t *shape, vkf_tensor **t)
{
    int64_t n = 1;
    for (int i = 0; i < nd; i++)
        n *= shape[i];
    int err = vkf_tensor_create(vkf_lua_gpu(L), dt, nd, shape, t);
    if (err < 0)
        return vkf_lua_fail(L, err, "tensor");
    return 0;
}

/* Uploads n floats from a host buffer held by a Lua userdata (so a Lua
 * error cannot leak it). */
static float *scratch(lua_State *L, int64_t n)
{
    if (n > MAX_TABLE_ELEMS)
        luaL_error(L, "%I elements: tables hold at most %d", (lua_Integer)n, MAX_TABLE_ELEMS);
    return lua_newuserdatauv(L, (size_t)n * sizeof(float), 0);
}

/* vkf.tensor(data, shape [, dtype]): data a flat table of numbers. */
static int l_tensor_new(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    int64_t shape[VKF_TENSOR_MAX_DIMS];
    int nd;
    int64_t n;
    if (lua_isnoneornil(L, 2)) {
        shape[0] = (int64_t)luaL_len(L, 1);
        nd = 1;
    } else {
        nd = read_shape(L, 2, shape);
    }
    n = 1;
    for (int i = 0; i < nd; i++)
        n *= shape[i];
    if ((int64_t)luaL_len(L, 1) != n)
        return luaL_error(L, "vkf.tensor: %I values for a shape of %I elements",
                          (lua_Integer)luaL_len(L, 1), (lua_Integer)n);
    vkf_dtype dt = parse_dtype(L, 3);
    float *buf = scratch(L, n);
    for (int64_t i = 0; i < n; i++) {
        lua_rawgeti(L, 1, (lua_Integer)i + 1);
        int isnum = 0;
        buf[i] = (float)lua_tonumberx(L, -1, &isnum);
        if (!isnum)
            return luaL_error(L, "vkf.tensor: value %I is not a number", (lua_Integer)i + 1);
        lua_pop(L, 1);
    }
    vkf_tensor *t = NULL;
    new_tensor(L, dt, nd, shape, &t);
    int err = vkf_tensor_upload(t, buf);
    if (err < 0) {
        vkf_tensor_unref(&t);
        return vkf_lua_fail(L, err, "upload");
    }
    vkf_lua_push_tensor(L, t);
    return 1;
}

static int fill(lua_State *L, float v, vkf_dtype dt)
{
    int64_t shape[VKF_TENSOR_MAX_DIMS];
    int nd = read_shape(L, 1, shape);
    int64_t n = 1;
    for (int i = 0; i < nd; i++)
        n *= shape[i];
    vkf_tensor *t = NULL;
    new_tensor(L, dt, nd, shape, &t);
    /* Constant fill on the device: x·0 + v of a one-element tensor,
     * broadcast through a binary add. */
    int64_t one = 1;
    vkf_tensor *c = NULL, *z = NULL, *o = NULL;
    int err = vkf_tensor_create(vkf_lua_gpu(L), VKF_DTYPE_F32, 1, &one, &c);
    if (err >= 0)
        err = vkf_tensor_upload(c, &v);
    if (err >= 0)
        err = vkf_op_unary(vkf_lua_gpu(L), VKF_UN_SCALE, t, 0.0f, 0.0f, &z);
    if (err >= 0)
        err = vkf_op_binary(vkf_lua_gpu(L), VKF_BIN_ADD, z, c, &o);
    vkf_tensor_unref(&c);
    vkf_tensor_unref(&z);
    vkf_tensor_unref(&t);
    (void)n;
    return result(L, err, &o, "fill");
}

static int l_zeros(lua_State *L)
{
    return fill(L, 0.0f, parse_dtype(L, 2));
}

static int l_full(lua_State *L)
{
    return fill(L, (float)luaL_checknumber(L, 2), parse_dtype(L, 3));
}

/* vkf.randn(shape, seed): ComfyUI's prepare_noise (torch.randn, CPU
 * generator), bit-exact. */
static int l_randn(lua_State *L)
{
    int64_t shape[VKF_TENSOR_MAX_DIMS];
    int nd = read_shape(L, 1, shape);
    lua_Integer seed = luaL_checkinteger(L, 2);
    int64_t n = 1;
    for (int i = 0; i < nd; i++)
        n *= shape[i];
    float *buf = scratch(L, n);
    int err = vkf_prepare_noise((uint64_t)seed, shape, nd, NULL, 0, VKF_RANDN_AVX2, buf);
    if (err < 0)
        return vkf_lua_fail(L, err, "randn");
    vkf_tensor *t = NULL;
    new_tensor(L, VKF_DTYPE_F32, nd, shape, &t);
    err = vkf_tensor_upload(t, buf);
    if (err < 0)
        vkf_tensor_unref(&t);
    return result(L, err, &t, "randn");
}

static int t_totable(lua_State *L)
{
    vkf_tensor *t = vkf_lua_check_tensor(L, 1);
    int64_t n = vkf_tensor_numel(t);
    float *buf = scratch(L, n);
    int err = vkf_tensor_download(t, buf);
    if (err < 0)
        return vkf_lua_fail(L, err, "download");
    lua_createtable(L, (int)n, 0);
    for (int64_t i = 0; i < n; i++) {
        lua_pushnumber(L, buf[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    return 1;
}

static int t_item(lua_State *L)
{
    vkf_tensor *t = vkf_lua_check_tensor(L, 1);
    if (vkf_tensor_numel(t) != 1)
        return luaL_error(L, "item: tensor has %I elements", (lua_Integer)vkf_tensor_numel(t));
    float v;
    int err = vkf_tensor_download(t, &v);
    if (err < 0)
        return vkf_lua_fail(L, err, "download");
    lua_pushnumber(L, v);
    return 1;
}

/* ---- tensor methods ---------------------------------------------------------- */

static void push_shape(lua_State *L, vkf_tensor *t)
{
    int nd = vkf_tensor_ndim(t);
    lua_createtable(L, nd, 0);
    for (int i = 0; i < nd; i++) {
        lua_pushinteger(L, vkf_tensor_shape(t)[i]);
        lua_rawseti(L, -2, i + 1);
    }
}

static int t_gc(lua_State *L)
{
    lua_tensor *u = luaL_checkudata(L, 1, VKF_LUA_TENSOR);
    vkf_tensor_unref(&u->t);
    return 0;
}

static int t_tostring(lua_State *L)
{
    lua_tensor *u = luaL_checkudata(L, 1, VKF_LUA_TENSOR);
    if (!u->t) {
        lua_pushliteral(L, "tensor(freed)");
        return 1;
    }
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    luaL_addstring(&b, "tensor(");
    for (int i = 0; i < vkf_tensor_ndim(u->t); i++) {
        char s[32];
        snprintf(s, sizeof(s), i ? "x%lld" : "%lld", (long long)vkf_tensor_shape(u->t)[i]);
        luaL_addstring(&b, s);
    }
    luaL_addstring(&b, ", ");
    luaL_addstring(&b, vkf_dtype_name(vkf_tensor_dtype(u->t)));
    luaL_addstring(&b, ")");
    luaL_pushresult(&b);
    return 1;
}

static int t_free(lua_State *L)
{
    lua_tensor *u = luaL_checkudata(L, 1, VKF_LUA_TENSOR);
    vkf_tensor_unref(&u->t);
    return 0;
}

static int t_numel(lua_State *L)
{
    lua_pushinteger(L, vkf_tensor_numel(vkf_lua_check_tensor(L, 1)));
    return 1;
}

static int t_reshape(lua_State *L)
{
    vkf_tensor *t = vkf_lua_check_tensor(L, 1), *out = NULL, *c = NULL;
    int64_t shape[VKF_TENSOR_MAX_DIMS];
    int nd = read_shape(L, 2, shape);
    int err = vkf_op_contiguous(vkf_lua_gpu(L), t, &c);
    if (err >= 0)
        err = vkf_tensor_reshape(c, nd, shape, &out);
    vkf_tensor_unref(&c);
    return result(L, err, &out, "reshape");
}

static int t_permute(lua_State *L)
{
    vkf_tensor *t = vkf_lua_check_tensor(L, 1), *out = NULL;
    luaL_checktype(L, 2, LUA_TTABLE);
    int nd = vkf_tensor_ndim(t);
    if (luaL_len(L, 2) != nd)
        return luaL_argerror(L, 2, "permute needs one entry per dim");
    int perm[VKF_TENSOR_MAX_DIMS];
    for (int i = 0; i < nd; i++) {
        lua_rawgeti(L, 2, i + 1);
        lua_Integer d = lua_tointeger(L, -1);
        lua_pop(L, 1);
        if (d < 1 || d > nd)
            return luaL_argerror(L, 2, "dims are 1-based");
        perm[i] = (int)d - 1;
    }
    return result(L, vkf_tensor_permute(t, perm, &out), &out, "permute");
}

/* t:slice(dim, start [, len]): 1-based start; len defaults to the rest. */
static int t_slice(lua_State *L)
{
    vkf_tensor *t = vkf_lua_check_tensor(L, 1), *out = NULL;
    int d = check_dim(L, 2, vkf_tensor_ndim(t));
    int64_t size = vkf_tensor_shape(t)[d];
    lua_Integer start = luaL_checkinteger(L, 3);
    lua_Integer len = luaL_optinteger(L, 4, size - start + 1);
    if (start < 1 || len < 1 || start - 1 + len > size)
        return luaL_error(L, "slice: [%I, %I] outside 1..%I", (lua_Integer)start,
                          (lua_Integer)(start + len - 1), (lua_Integer)size);
    return result(L, vkf_tensor_slice(t, d, start - 1, len, &out), &out, "slice");
}

static int t_contiguous(lua_State *L)
{
    vkf_tensor *out = NULL;
    return result(L, vkf_op_contiguous(vkf_lua_gpu(L), vkf_lua_check_tensor(L, 1), &out), &out,
                  "contiguous");
}

static int t_cast(lua_State *L)
{
    vkf_tensor *out = NULL;
    return result(L, vkf_op_cast(vkf_lua_gpu(L), vkf_lua_check_tensor(L, 1), parse_dtype(L, 2), &out),
                  &out, "cast");
}

static int t_index(lua_State *L)
{
    lua_tensor *u = luaL_checkudata(L, 1, VKF_LUA_TENSOR);
    const char *k = luaL_checkstring(L, 2);
    if (u->t && !strcmp(k, "shape")) {
        push_shape(L, u->t);
        return 1;
    }
    if (u->t && !strcmp(k, "dtype")) {
        lua_pushstring(L, vkf_dtype_name(vkf_tensor_dtype(u->t)));
        return 1;
    }
    if (u->t && !strcmp(k, "ndim")) {
        lua_pushinteger(L, vkf_tensor_ndim(u->t));
        return 1;
    }
    luaL_getmetatable(L, VKF_LUA_TENSOR);
    lua_getfield(L, -1, "methods");
    lua_getfield(L, -1, k);
    return 1;
}

/* ---- arithmetic ------------------------------------------------------------------ */

static vkf_tensor *scalar_tensor(lua_State *L, float v)
{
    int64_t one = 1;
    vkf_tensor *c = NULL;
    int err = vkf_tensor_create(vkf_lua_gpu(L), VKF_DTYPE_F32, 1, &one, &c);
    if (err >= 0)
        err = vkf_tensor_upload(c, &v);
    if (err < 0) {
        vkf_tensor_unref(&c);
        vkf_lua_fail(L, err, "scalar");
    }
    return c;
}

static int arith(lua_State *L, vkf_binary_op op)
{
    vkf_gpu *gpu = vkf_lua_gpu(L);
    vkf_tensor *a = vkf_lua_to_tensor(L, 1), *b = vkf_lua_to_tensor(L, 2), *out = NULL;
    int err;
    if (a && b) {
        err = vkf_op_binary(gpu, op, a, b, &out);
    } else if (a) {
        float s = (float)luaL_checknumber(L, 2);
        if (op == VKF_BIN_ADD || op == VKF_BIN_SUB) {
            err = vkf_op_unary(gpu, VKF_UN_SCALE, a, 1.0f, op == VKF_BIN_ADD ? s : -s, &out);
        } else if (op == VKF_BIN_MUL) {
            err = vkf_op_unary(gpu, VKF_UN_SCALE, a, s, 0.0f, &out);
        } else {
            /* x / s exactly as torch (not x * (1/s)). */
            vkf_tensor *c = scalar_tensor(L, s);
            err = vkf_op_binary(gpu, op, a, c, &out);
            vkf_tensor_unref(&c);
        }
    } else {
        float s = (float)luaL_checknumber(L, 1);
        b = vkf_lua_check_tensor(L, 2);
        if (op == VKF_BIN_ADD || op == VKF_BIN_MUL) {
            err = op == VKF_BIN_ADD ? vkf_op_unary(gpu, VKF_UN_SCALE, b, 1.0f, s, &out)
                                    : vkf_op_unary(gpu, VKF_UN_SCALE, b, s, 0.0f, &out);
        } else if (op == VKF_BIN_SUB) {
            err = vkf_op_unary(gpu, VKF_UN_SCALE, b, -1.0f, s, &out);
        } else {
            vkf_tensor *c = scalar_tensor(L, s);
            err = vkf_op_binary(gpu, op, c, b, &out);
            vkf_tensor_unref(&c);
        }
    }
    return result(L, err, &out, "arithmetic");
}

static int t_add(lua_State *L) { return arith(L, VKF_BIN_ADD); }
static int t_sub(lua_State *L) { return arith(L, VKF_BIN_SUB); }
static int t_mul(lua_State *L) { return arith(L, VKF_BIN_MUL); }
static int t_div(lua_State *L) { return arith(L, VKF_BIN_DIV); }

static int t_unm(lua_State *L)
{
    vkf_tensor *out = NULL;
    return result(L, vkf_op_unary(vkf_lua_gpu(L), VKF_UN_SCALE, vkf_lua_check_tensor(L, 1), -1.0f,
                                  0.0f, &out),
                  &out, "negate");
}

/* ---- op library -------------------------------------------------------------------- */

static int opt_int_field(lua_State *L, int t, const char *k, int def)
{
    if (!lua_istable(L, t))
        return def;
    lua_getfield(L, t, k);
    int v = lua_isnil(L, -1) ? def : (int)luaL_checkinteger(L, -1);
    lua_pop(L, 1);
    return v;
}

static double opt_num_field(lua_State *L, int t, const char *k, double def)
{
    if (!lua_istable(L, t))
        return def;
    lua_getfield(L, t, k);
    double v = lua_isnil(L, -1) ? def : luaL_checknumber(L, -1);
    lua_pop(L, 1);
    return v;
}

static bool opt_bool_field(lua_State *L, int t, const char *k)
{
    if (!lua_istable(L, t))
        return false;
    lua_getfield(L, t, k);
    bool v = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return v;
}

/* A pair field: a number (both) or {h, w}. */
static void pair_field(lua_State *L, int t, const char *k, int out[2])
{
    if (!lua_istable(L, t))
        return;
    lua_getfield(L, t, k);
    if (lua_isnumber(L, -1)) {
        out[0] = out[1] = (int)lua_tointeger(L, -1);
    } else if (lua_istable(L, -1)) {
        lua_rawgeti(L, -1, 1);
        lua_rawgeti(L, -2, 2);
        out[0] = (int)lua_tointeger(L, -2);
        out[1] = (int)lua_tointeger(L, -1);
        lua_pop(L, 2);
    }
    lua_pop(L, 1);
}

static int unary(lua_State *L, vkf_unary_op op)
{
    vkf_tensor *out = NULL;
    return result(L, vkf_op_unary(vkf_lua_gpu(L), op, vkf_lua_check_tensor(L, 1), 0, 0, &out), &out,
                  "unary op");
}

static int op_silu(lua_State *L) { return unary(L, VKF_UN_SILU); }
static int op_gelu(lua_State *L) { return unary(L, VKF_UN_GELU_ERF); }
static int op_gelu_tanh(lua_State *L) { return unary(L, VKF_UN_GELU_TANH); }
static int op_relu(lua_State *L) { return unary(L, VKF_UN_RELU); }
static int op_sigmoid(lua_State *L) { return unary(L, VKF_UN_SIGMOID); }
static int op_tanh(lua_State *L) { return unary(L, VKF_UN_TANH); }

static int op_scale(lua_State *L)
{
    vkf_tensor *out = NULL;
    return result(L, vkf_op_unary(vkf_lua_gpu(L), VKF_UN_SCALE, vkf_lua_check_tensor(L, 1),
                                  (float)luaL_checknumber(L, 2), (float)luaL_optnumber(L, 3, 0), &out),
                  &out, "scale");
}

/* matmul(a, b [, {trans_b=, bias=}]) */
static int op_matmul(lua_State *L)
{
    vkf_tensor *a = vkf_lua_check_tensor(L, 1), *b = vkf_lua_check_tensor(L, 2), *out = NULL;
    vkf_tensor *bias = NULL;
    if (lua_istable(L, 3)) {
        lua_getfield(L, 3, "bias");
        bias = opt_tensor(L, -1);
        lua_pop(L, 1);
    }
    return result(L, vkf_op_matmul(vkf_lua_gpu(L), a, b, opt_bool_field(L, 3, "trans_b"), bias, &out),
                  &out, "matmul");
}

static int op_linear(lua_State *L)
{
    vkf_tensor *out = NULL;
    return result(L, vkf_op_linear(vkf_lua_gpu(L), vkf_lua_check_tensor(L, 1),
                                   vkf_lua_check_tensor(L, 2), opt_tensor(L, 3), &out),
                  &out, "linear");
}

/* conv2d(x, w [, bias [, {stride=, padding=, dilation=, groups=}]]) */
static int op_conv2d(lua_State *L)
{
    vkf_conv2d_params p = {0};
    pair_field(L, 4, "stride", p.stride);
    pair_field(L, 4, "padding", p.padding);
    pair_field(L, 4, "dilation", p.dilation);
    p.groups = opt_int_field(L, 4, "groups", 0);
    vkf_tensor *out = NULL;
    return result(L, vkf_op_conv2d(vkf_lua_gpu(L), vkf_lua_check_tensor(L, 1),
                                   vkf_lua_check_tensor(L, 2), opt_tensor(L, 3), &p, &out),
                  &out, "conv2d");
}

/* group_norm(x, groups [, weight [, bias [, eps]]]) */
static int op_group_norm(lua_State *L)
{
    vkf_tensor *out = NULL;
    return result(L, vkf_op_group_norm(vkf_lua_gpu(L), vkf_lua_check_tensor(L, 1),
                                       (int)luaL_checkinteger(L, 2), opt_tensor(L, 3),
                                       opt_tensor(L, 4), (float)luaL_optnumber(L, 5, 1e-5), &out),
                  &out, "group_norm");
}

static int op_layer_norm(lua_State *L)
{
    vkf_tensor *out = NULL;
    return result(L, vkf_op_layer_norm(vkf_lua_gpu(L), vkf_lua_check_tensor(L, 1), opt_tensor(L, 2),
                                       opt_tensor(L, 3), (float)luaL_optnumber(L, 4, 1e-5), &out),
                  &out, "layer_norm");
}

static int op_rms_norm(lua_State *L)
{
    vkf_tensor *out = NULL;
    return result(L, vkf_op_rms_norm(vkf_lua_gpu(L), vkf_lua_check_tensor(L, 1), opt_tensor(L, 2),
                                     (float)luaL_optnumber(L, 3, 1e-6), &out),
                  &out, "rms_norm");
}

static int op_softmax(lua_State *L)
{
    vkf_tensor *out = NULL;
    return result(L, vkf_op_softmax(vkf_lua_gpu(L), vkf_lua_check_tensor(L, 1), &out), &out,
                  "softmax");
}

/* attention(q, k, v [, {scale=, causal=, mask=, heads=}]): with heads the
 * [B, N, H·D] layout, else [B, H, N, D]. */
static int op_attention(lua_State *L)
{
    vkf_attention_params p = {0};
    p.scale = (float)opt_num_field(L, 4, "scale", 0);
    p.causal = opt_bool_field(L, 4, "causal");
    if (lua_istable(L, 4)) {
        lua_getfield(L, 4, "mask");
        p.mask = opt_tensor(L, -1);
        lua_pop(L, 1);
    }
    int heads = opt_int_field(L, 4, "heads", 0);
    vkf_tensor *q = vkf_lua_check_tensor(L, 1), *k = vkf_lua_check_tensor(L, 2),
               *v = vkf_lua_check_tensor(L, 3), *out = NULL;
    int err = heads > 0 ? vkf_op_attention_heads(vkf_lua_gpu(L), q, k, v, heads, &p, &out)
                        : vkf_op_attention(vkf_lua_gpu(L), q, k, v, &p, &out);
    return result(L, err, &out, "attention");
}

/* upsample(x, {size={h,w} | scale=s | scale={sh,sw}, mode="nearest"|
 * "nearest-exact"|"bilinear", align_corners=}) */
static int op_upsample(lua_State *L)
{
    luaL_checktype(L, 2, LUA_TTABLE);
    vkf_upsample_params p = {0};
    lua_getfield(L, 2, "mode");
    const char *mode = luaL_optstring(L, -1, "nearest");
    p.mode = !strcmp(mode, "nearest")         ? VKF_UPSAMPLE_NEAREST
             : !strcmp(mode, "nearest-exact") ? VKF_UPSAMPLE_NEAREST_EXACT
             : !strcmp(mode, "bilinear")      ? VKF_UPSAMPLE_BILINEAR
                                              : (vkf_upsample_mode)-1;
    if ((int)p.mode < 0)
        return luaL_error(L, "upsample: unknown mode '%s'", mode);
    lua_pop(L, 1);
    int size[2] = {0, 0};
    pair_field(L, 2, "size", size);
    p.size[0] = size[0];
    p.size[1] = size[1];
    lua_getfield(L, 2, "scale");
    if (lua_isnumber(L, -1)) {
        p.scale[0] = p.scale[1] = lua_tonumber(L, -1);
    } else if (lua_istable(L, -1)) {
        lua_rawgeti(L, -1, 1);
        lua_rawgeti(L, -2, 2);
        p.scale[0] = lua_tonumber(L, -2);
        p.scale[1] = lua_tonumber(L, -1);
        lua_pop(L, 2);
    }
    lua_pop(L, 1);
    p.align_corners = opt_bool_field(L, 2, "align_corners");
    vkf_tensor *out = NULL;
    return result(L, vkf_op_upsample(vkf_lua_gpu(L), vkf_lua_check_tensor(L, 1), &p, &out), &out,
                  "upsample");
}

/* resample(x, "area"|"bicubic"|"bislerp", h, w) */
static int op_resample(lua_State *L)
{
    static const char *const modes[] = {"area", "bicubic", "bislerp", NULL};
    vkf_tensor *out = NULL;
    return result(L, vkf_op_resample_ext(vkf_lua_gpu(L), vkf_lua_check_tensor(L, 1),
                                         (vkf_resample_ext)luaL_checkoption(L, 2, NULL, modes),
                                         luaL_checkinteger(L, 3), luaL_checkinteger(L, 4), &out),
                  &out, "resample");
}

static int pool(lua_State *L, bool max)
{
    vkf_pool2d_params p = {0};
    pair_field(L, 2, "kernel", p.kernel);
    pair_field(L, 2, "stride", p.stride);
    pair_field(L, 2, "padding", p.padding);
    p.exclude_pad = opt_bool_field(L, 2, "exclude_pad");
    vkf_tensor *out = NULL, *x = vkf_lua_check_tensor(L, 1);
    int err = max ? vkf_op_max_pool2d(vkf_lua_gpu(L), x, &p, &out)
                  : vkf_op_avg_pool2d(vkf_lua_gpu(L), x, &p, &out);
    return result(L, err, &out, "pool2d");
}

static int op_avg_pool2d(lua_State *L) { return pool(L, false); }
static int op_max_pool2d(lua_State *L) { return pool(L, true); }

/* concat({t1, t2, ...}, dim) */
static int op_concat(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    int n = (int)luaL_len(L, 1);
    if (n < 1 || n > 4096)
        return luaL_argerror(L, 1, "1 to 4096 tensors");
    vkf_tensor **xs = lua_newuserdatauv(L, sizeof(*xs) * (size_t)n, 0);
    for (int i = 0; i < n; i++) {
        lua_rawgeti(L, 1, i + 1);
        xs[i] = vkf_lua_check_tensor(L, -1);
        lua_pop(L, 1);   /* still referenced by the table */
    }
    int d = check_dim(L, 2, vkf_tensor_ndim(xs[0]));
    vkf_tensor *out = NULL;
    return result(L, vkf_op_concat(vkf_lua_gpu(L), xs, n, d, &out), &out, "concat");
}

/* pad(x, {before1, after1, before2, after2, ...} [, value]) in dim order */
static int op_pad(lua_State *L)
{
    vkf_tensor *x = vkf_lua_check_tensor(L, 1), *out = NULL;
    luaL_checktype(L, 2, LUA_TTABLE);
    int nd = vkf_tensor_ndim(x);
    if (luaL_len(L, 2) != 2 * nd)
        return luaL_argerror(L, 2, "two entries per dim");
    int64_t pads[2 * VKF_TENSOR_MAX_DIMS];
    for (int i = 0; i < 2 * nd; i++) {
        lua_rawgeti(L, 2, i + 1);
        pads[i] = lua_tointeger(L, -1);
        lua_pop(L, 1);
    }
    return result(L, vkf_op_pad(vkf_lua_gpu(L), x, pads, (float)luaL_optnumber(L, 3, 0), &out), &out,
                  "pad");
}

static int op_timestep_embedding(lua_State *L)
{
    vkf_timestep_embed_params p = {0};
    p.dim = (int)luaL_checkinteger(L, 2);
    p.max_period = opt_num_field(L, 3, "max_period", 0);
    p.freq_shift = opt_num_field(L, 3, "freq_shift", 0);
    p.sin_first = opt_bool_field(L, 3, "sin_first");
    vkf_tensor *out = NULL;
    return result(L, vkf_op_timestep_embedding(vkf_lua_gpu(L), vkf_lua_check_tensor(L, 1), &p, &out),
                  &out, "timestep_embedding");
}

static int op_geglu(lua_State *L)
{
    vkf_tensor *out = NULL;
    return result(L, vkf_op_geglu(vkf_lua_gpu(L), vkf_lua_check_tensor(L, 1), &out), &out, "geglu");
}

/* ---- run-time GLSL kernels ------------------------------------------------------------ */

/* Pipelines are cached by shader-descriptor address, so descriptors are
 * never freed: one per distinct SPIR-V buffer, process-wide. */
static pthread_mutex_t shader_lock = PTHREAD_MUTEX_INITIALIZER;
static vkf_shader_code **shader_table;
static int nb_shaders, cap_shaders;

static const vkf_shader_code *shader_for(const uint32_t *code, size_t words)
{
    const vkf_shader_code *found = NULL;
    pthread_mutex_lock(&shader_lock);
    for (int i = 0; i < nb_shaders && !found; i++)
        if (shader_table[i]->code == code) {
            shader_table[i]->words = words;
            found = shader_table[i];
        }
    if (!found && nb_shaders == cap_shaders) {
        int ncap = cap_shaders ? cap_shaders * 2 : 16;
        vkf_shader_code **nt = realloc(shader_table, sizeof(*nt) * (size_t)ncap);
        if (nt) {
            shader_table = nt;
            cap_shaders = ncap;
        }
    }
    if (!found && nb_shaders < cap_shaders) {
        vkf_shader_code *s = malloc(sizeof(*s));
        if (s) {
            *s = (vkf_shader_code){"lua_kernel", code, words};
            shader_table[nb_shaders++] = s;
            found = s;
        }
    }
    pthread_mutex_unlock(&shader_lock);
    return found;
}

typedef struct lua_kernel {
    char name[64];
    int nslots;
    char slot_name[VKF_MAX_SLOTS][32];
    bool slot_write[VKF_MAX_SLOTS];
    int npush;
    char push_name[32][32];
    char push_type[32];            /* 'u', 'i', 'f' */
    int local[3];
    int source_ref;                /* full GLSL text in the registry */
} lua_kernel;

static bool is_ident(const char *s)
{
    if (!s || !*s || strlen(s) >= 32 || (*s >= '0' && *s <= '9'))
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_'))
            return false;
    return true;
}

/* vkf.kernel{name=, source=, bindings={{"y","write"},{"x","read"}},
 *            push={{"n","uint"},{"s","float"}}, local_size={64,1,1}} */
static int l_kernel(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_kernel *k = lua_newuserdatauv(L, sizeof(*k), 0);
    memset(k, 0, sizeof(*k));
    k->source_ref = LUA_NOREF;
    luaL_setmetatable(L, KERNEL_MT);
    int ku = lua_gettop(L);
    lua_getfield(L, 1, "name");
    snprintf(k->name, sizeof(k->name), "%s", luaL_optstring(L, -1, "kernel"));
    lua_pop(L, 1);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    lua_getfield(L, 1, "local_size");
    k->local[0] = 64;
    k->local[1] = k->local[2] = 1;
    if (lua_isnumber(L, -1)) {
        k->local[0] = (int)lua_tointeger(L, -1);
    } else if (lua_istable(L, -1)) {
        for (int i = 0; i < 3; i++) {
            lua_rawgeti(L, -1, i + 1);
            if (lua_isnumber(L, -1))
                k->local[i] = (int)lua_tointeger(L, -1);
            lua_pop(L, 1);
        }
    }
    lua_pop(L, 1);
    for (int i = 0; i < 3; i++)
        if (k->local[i] < 1 || k->local[i] > 1024)
            return luaL_error(L, "vkf.kernel '%s': local_size entries are 1..1024", k->name);
    char line[256];
    snprintf(line, sizeof(line),
             "#version 450\nlayout(local_size_x = %d, local_size_y = %d, local_size_z = %d) in;\n",
             k->local[0], k->local[1], k->local[2]);
    luaL_addstring(&b, line);
    lua_getfield(L, 1, "bindings");
    luaL_checktype(L, -1, LUA_TTABLE);
    k->nslots = (int)luaL_len(L, -1);
    if (k->nslots < 1 || k->nslots > VKF_MAX_SLOTS)
        return luaL_error(L, "vkf.kernel '%s': 1 to %d bindings", k->name, VKF_MAX_SLOTS);
    for (int i = 0; i < k->nslots; i++) {
        lua_rawgeti(L, -1, i + 1);
        luaL_checktype(L, -1, LUA_TTABLE);
        lua_rawgeti(L, -1, 1);
        lua_rawgeti(L, -2, 2);
        const char *nm = lua_tostring(L, -2), *access = luaL_optstring(L, -1, "read");
        if (!is_ident(nm))
            return luaL_error(L, "vkf.kernel '%s': binding %d needs a GLSL name", k->name, i + 1);
        snprintf(k->slot_name[i], 32, "%s", nm);
        k->slot_write[i] = !strcmp(access, "write");
        if (!k->slot_write[i] && strcmp(access, "read"))
            return luaL_error(L, "vkf.kernel '%s': access is 'read' or 'write'", k->name);
        if (i > 0 && k->slot_write[i] && !k->slot_write[i - 1])
            return luaL_error(L, "vkf.kernel '%s': list the written bindings first", k->name);
        lua_pop(L, 3);
    }
    lua_pop(L, 1);
    for (int i = 0; i < k->nslots; i++) {
        snprintf(line, sizeof(line), "layout(std430, binding = %d) %sbuffer %s_blk { float %s[]; };\n",
                 i * VKF_MAX_CHUNKS, k->slot_write[i] ? "" : "readonly ", k->slot_name[i],
                 k->slot_name[i]);
        luaL_addstring(&b, line);
    }
    lua_getfield(L, 1, "push");
    if (lua_istable(L, -1)) {
        k->npush = (int)luaL_len(L, -1);
        if (k->npush > 32)
            return luaL_error(L, "vkf.kernel '%s': at most 32 push constants (128 bytes)", k->name);
        if (k->npush)
            luaL_addstring(&b, "layout(push_constant) uniform Push {\n");
        for (int i = 0; i < k->npush; i++) {
            lua_rawgeti(L, -1, i + 1);
            luaL_checktype(L, -1, LUA_TTABLE);
            lua_rawgeti(L, -1, 1);
            lua_rawgeti(L, -2, 2);
            const char *nm = lua_tostring(L, -2), *ty = luaL_optstring(L, -1, "float");
            if (!is_ident(nm))
                return luaL_error(L, "vkf.kernel '%s': push constant %d needs a name", k->name, i + 1);
            snprintf(k->push_name[i], 32, "%s", nm);
            k->push_type[i] = !strcmp(ty, "uint") ? 'u' : !strcmp(ty, "int") ? 'i'
                              : !strcmp(ty, "float") ? 'f' : 0;
            if (!k->push_type[i])
                return luaL_error(L, "vkf.kernel '%s': push type is uint, int or float", k->name);
            snprintf(line, sizeof(line), "    %s %s;\n", ty, nm);
            luaL_addstring(&b, line);
            lua_pop(L, 3);
        }
        if (k->npush)
            luaL_addstring(&b, "} p;\n");
    }
    lua_pop(L, 1);
    luaL_addstring(&b, "#line 1\n");
    lua_getfield(L, 1, "source");
    if (lua_type(L, -1) != LUA_TSTRING)
        return luaL_error(L, "vkf.kernel '%s': 'source' (GLSL text) is required", k->name);
    luaL_addvalue(&b);
    luaL_pushresult(&b);
    k->source_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    /* Compile now so errors point at the declaration. */
    const uint32_t *code;
    size_t words;
    lua_rawgeti(L, LUA_REGISTRYINDEX, k->source_ref);
    int err = vkf_gpu_compile_glsl(vkf_lua_gpu(L), k->name, lua_tostring(L, -1), NULL, &code, &words);
    lua_pop(L, 1);
    if (err < 0)
        return luaL_error(L, "vkf.kernel '%s': GLSL compile failed (see the log): %s", k->name,
                          vkf_strerror(err));
    lua_settop(L, ku);
    return 1;
}

static int k_gc(lua_State *L)
{
    lua_kernel *k = luaL_checkudata(L, 1, KERNEL_MT);
    luaL_unref(L, LUA_REGISTRYINDEX, k->source_ref);
    k->source_ref = LUA_NOREF;
    return 0;
}

/* k:run({name = tensor, ...}, {push values by name}, {gx, gy, gz}) */
static int k_run(lua_State *L)
{
    lua_kernel *k = luaL_checkudata(L, 1, KERNEL_MT);
    luaL_checktype(L, 2, LUA_TTABLE);
    vkf_gpu *gpu = vkf_lua_gpu(L);
    vkf_tensor *slots[VKF_MAX_SLOTS] = {0};
    for (int i = 0; i < k->nslots; i++) {
        lua_getfield(L, 2, k->slot_name[i]);
        vkf_tensor *t = vkf_lua_to_tensor(L, -1);
        if (!t)
            return luaL_error(L, "kernel '%s': binding '%s' needs a tensor", k->name,
                              k->slot_name[i]);
        bool plain = vkf_tensor_dtype(t) == VKF_DTYPE_F32 && vkf_tensor_is_contiguous(t) &&
                     t->offset == 0 && t->st->nchunks == 1;
        if (!plain && k->slot_write[i])
            return luaL_error(L, "kernel '%s': written binding '%s' must be a contiguous f32 tensor "
                                 "of one chunk (make it with vkf.tensor.empty)",
                              k->name, k->slot_name[i]);
        if (!plain) {
            vkf_tensor *c = NULL;
            int err = vkf_op_cast(gpu, t, VKF_DTYPE_F32, &c);
            if (err < 0)
                return vkf_lua_fail(L, err, "kernel input");
            vkf_lua_push_tensor(L, c);   /* owned by the stack */
            if (c->st->nchunks != 1)
                return luaL_error(L, "kernel '%s': binding '%s' is larger than one storage chunk",
                                  k->name, k->slot_name[i]);
            t = c;
        }
        slots[i] = t;
    }
    union {
        uint32_t u;
        int32_t i;
        float f;
    } push[32];
    memset(push, 0, sizeof(push));
    for (int i = 0; i < k->npush; i++) {
        if (!lua_istable(L, 3))
            return luaL_error(L, "kernel '%s': push constants expected", k->name);
        lua_getfield(L, 3, k->push_name[i]);
        if (!lua_isnumber(L, -1))
            return luaL_error(L, "kernel '%s': push constant '%s' missing", k->name, k->push_name[i]);
        if (k->push_type[i] == 'f')
            push[i].f = (float)lua_tonumber(L, -1);
        else if (k->push_type[i] == 'u')
            push[i].u = (uint32_t)lua_tointeger(L, -1);
        else
            push[i].i = (int32_t)lua_tointeger(L, -1);
        lua_pop(L, 1);
    }
    uint32_t groups[3] = {1, 1, 1};
    luaL_checktype(L, 4, LUA_TTABLE);
    for (int i = 0; i < 3; i++) {
        lua_rawgeti(L, 4, i + 1);
        if (lua_isnumber(L, -1))
            groups[i] = (uint32_t)lua_tointeger(L, -1);
        lua_pop(L, 1);
        if (groups[i] < 1 || groups[i] > 65535)
            return luaL_error(L, "kernel '%s': group counts are 1..65535", k->name);
    }
    const uint32_t *code;
    size_t words;
    lua_rawgeti(L, LUA_REGISTRYINDEX, k->source_ref);
    int err = vkf_gpu_compile_glsl(gpu, k->name, lua_tostring(L, -1), NULL, &code, &words);
    lua_pop(L, 1);
    if (err < 0)
        return vkf_lua_fail(L, err, "kernel compile");
    const vkf_shader_code *sc = shader_for(code, words);
    if (!sc)
        return luaL_error(L, "out of memory");
    uint32_t spec[VKF_MAX_SPEC];
    int nspec = vkf_gpu_tensor_spec(gpu, slots, k->nslots, spec);
    vkf_pipeline *pipe = NULL;
    err = vkf_pipeline_get(gpu, sc, spec, nspec, k->nslots * VKF_MAX_CHUNKS, 0,
                           (uint32_t)k->npush * 4, &pipe);
    if (err < 0)
        return vkf_lua_fail(L, err, "kernel pipeline");
    vkf_dispatch d = {.op = "lua_kernel", .pipe = pipe, .push = k->npush ? push : NULL};
    for (int i = 0; i < k->nslots; i++) {
        if (k->slot_write[i])
            d.writes[d.nwrites++] = slots[i];
        else
            d.reads[d.nreads++] = slots[i];
    }
    memcpy(d.groups, groups, sizeof(groups));
    err = vkf_gpu_dispatch(gpu, &d);
    if (err < 0)
        return vkf_lua_fail(L, err, "kernel dispatch");
    return 0;
}

/* vkf.tensor.empty(shape [, dtype]): contents undefined. */
static int l_empty(lua_State *L)
{
    int64_t shape[VKF_TENSOR_MAX_DIMS];
    int nd = read_shape(L, 1, shape);
    vkf_tensor *t = NULL;
    new_tensor(L, parse_dtype(L, 2), nd, shape, &t);
    vkf_lua_push_tensor(L, t);
    return 1;
}

/* ---- weights through the model folders ------------------------------------------------ */

typedef struct lua_weights {
    vkf_weights *w;
} lua_weights;

/* vkf.weights.open(folder, name): name resolved in the model folder with
 * vkflow's path checks (no absolute paths, no "..", no escaping links). */
static int l_weights_open(lua_State *L)
{
    lua_pack *p = pack_of(L);
    const char *folder = luaL_checkstring(L, 1), *name = luaL_checkstring(L, 2);
    if (!p->paths)
        return luaL_error(L, "vkf.weights.open: no model folders configured");
    if (!vkf_path_name_is_safe(name))
        return luaL_error(L, "vkf.weights.open: '%s' is not a safe relative name", name);
    char *full = NULL;
    int err = vkf_paths_resolve(p->paths, folder, name, &full);
    if (err < 0)
        return luaL_error(L, "vkf.weights.open: %s/%s: %s", folder, name, vkf_strerror(err));
    lua_weights *u = lua_newuserdatauv(L, sizeof(*u), 0);
    u->w = NULL;
    luaL_setmetatable(L, WEIGHTS_MT);
    err = vkf_weights_open(full, &u->w, p->log);
    vkf_free(full);
    if (err < 0)
        return luaL_error(L, "vkf.weights.open: %s/%s: %s", folder, name, vkf_strerror(err));
    return 1;
}

static vkf_weights *check_weights(lua_State *L)
{
    lua_weights *u = luaL_checkudata(L, 1, WEIGHTS_MT);
    if (!u->w)
        luaL_error(L, "weights file was closed");
    return u->w;
}

static int w_gc(lua_State *L)
{
    lua_weights *u = luaL_checkudata(L, 1, WEIGHTS_MT);
    vkf_weights_close(&u->w);
    return 0;
}

static int w_names(lua_State *L)
{
    vkf_weights *w = check_weights(L);
    int n = vkf_weights_count(w);
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        lua_pushstring(L, vkf_weights_at(w, i)->name);
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

static const vkf_weight_info *find_weight(lua_State *L, vkf_weights *w)
{
    const char *name = luaL_checkstring(L, 2);
    const vkf_weight_info *t = vkf_weights_find(w, name);
    if (!t)
        luaL_error(L, "weights: no tensor '%s'", name);
    return t;
}

static int w_info(lua_State *L)
{
    vkf_weights *w = check_weights(L);
    const vkf_weight_info *t = find_weight(L, w);
    lua_createtable(L, 0, 2);
    lua_createtable(L, t->ndim, 0);
    for (int i = 0; i < t->ndim; i++) {
        lua_pushinteger(L, t->shape[i]);
        lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, -2, "shape");
    lua_pushstring(L, vkf_wdtype_name(t->dtype));
    lua_setfield(L, -2, "dtype");
    return 1;
}

static int w_tensor(lua_State *L)
{
    vkf_weights *w = check_weights(L);
    const vkf_weight_info *t = find_weight(L, w);
    vkf_tensor *out = NULL;
    return result(L, vkf_weights_load_tensor(w, t, vkf_lua_gpu(L), &out), &out, "weights");
}

static int w_close(lua_State *L)
{
    return w_gc(L);
}

/* ---- objects (MODEL, VAE, CLIP, ... from other nodes) --------------------------------- */

typedef struct lua_object {
    vkf_object *obj;
} lua_object;

static void push_object(lua_State *L, vkf_object *obj)
{
    lua_object *u = lua_newuserdatauv(L, sizeof(*u), 0);
    u->obj = vkf_object_ref(obj);
    luaL_setmetatable(L, VKF_LUA_OBJECT);
}

static int o_gc(lua_State *L)
{
    lua_object *u = luaL_checkudata(L, 1, VKF_LUA_OBJECT);
    vkf_object_unref(&u->obj);
    return 0;
}

static int o_tostring(lua_State *L)
{
    lua_object *u = luaL_checkudata(L, 1, VKF_LUA_OBJECT);
    lua_pushfstring(L, "%s object", u->obj ? u->obj->type->name : "released");
    return 1;
}

static int vae_call(lua_State *L, bool decode)
{
    lua_object *u = luaL_checkudata(L, 1, VKF_LUA_OBJECT);
    vkf_value v = {.kind = VKF_VAL_OBJECT, .u.obj = u->obj};
    vkf_vae *vae = vkf_value_vae(&v);
    if (!vae)
        return luaL_error(L, "not a VAE");
    vkf_tensor *out = NULL;
    int err = decode ? vae->m->decode(vae->m, vkf_lua_check_tensor(L, 2), &out)
                     : vae->m->encode(vae->m, vkf_lua_check_tensor(L, 2), &out);
    return result(L, err, &out, decode ? "VAE decode" : "VAE encode");
}

static int o_vae_decode(lua_State *L) { return vae_call(L, true); }
static int o_vae_encode(lua_State *L) { return vae_call(L, false); }

static int o_index(lua_State *L)
{
    lua_object *u = luaL_checkudata(L, 1, VKF_LUA_OBJECT);
    const char *k = luaL_checkstring(L, 2);
    vkf_value v = {.kind = VKF_VAL_OBJECT, .u.obj = u->obj};
    if (!strcmp(k, "type")) {
        lua_pushstring(L, u->obj->type->name);
        return 1;
    }
    vkf_model *m = vkf_value_model(&v);
    if (m) {
        if (!strcmp(k, "arch"))
            lua_pushstring(L, m->dm->arch);
        else if (!strcmp(k, "in_channels"))
            lua_pushinteger(L, m->dm->in_channels);
        else if (!strcmp(k, "latent_channels"))
            lua_pushinteger(L, m->latent.channels);
        else if (!strcmp(k, "scale_factor"))
            lua_pushnumber(L, m->latent.scale_factor);
        else
            lua_pushnil(L);
        return 1;
    }
    vkf_vae *vae = vkf_value_vae(&v);
    if (vae) {
        if (!strcmp(k, "arch"))
            lua_pushstring(L, vae->m->arch);
        else if (!strcmp(k, "downscale"))
            lua_pushinteger(L, vae->m->downscale);
        else if (!strcmp(k, "decode"))
            lua_pushcfunction(L, o_vae_decode);
        else if (!strcmp(k, "encode"))
            lua_pushcfunction(L, o_vae_encode);
        else
            lua_pushnil(L);
        return 1;
    }
    vkf_clip *clip = vkf_value_clip(&v);
    if (clip) {
        if (!strcmp(k, "layer_idx"))
            lua_pushinteger(L, clip->layer_idx);
        else
            lua_pushnil(L);
        return 1;
    }
    vkf_noise *noise = vkf_value_noise(&v);
    if (noise) {
        if (!strcmp(k, "seed"))
            lua_pushinteger(L, (lua_Integer)noise->seed);
        else if (!strcmp(k, "disabled"))
            lua_pushboolean(L, noise->disabled);
        else
            lua_pushnil(L);
        return 1;
    }
    vkf_sampler_obj *s = vkf_value_sampler(&v);
    if (s) {
        if (!strcmp(k, "name"))
            lua_pushstring(L, s->name);
        else
            lua_pushnil(L);
        return 1;
    }
    lua_pushnil(L);
    return 1;
}

/* ---- values of pack-defined types ------------------------------------------------------ */

typedef struct lua_value_obj {
    vkf_object obj;
    vkf_object_type type;
    char type_name[64];
    lua_pack *pack;
    int ref;
} lua_value_obj;

static void lua_value_destroy(vkf_object *o)
{
    lua_value_obj *v = (lua_value_obj *)o;
    luaL_unref(v->pack->L, LUA_REGISTRYINDEX, v->ref);
    vkf_lua_pack_unref(&v->pack);
    vkf_free(v);
}

static char *lua_value_describe(const vkf_object *o)
{
    const lua_value_obj *v = (const lua_value_obj *)o;
    return vkf_asprintf("<%s from Lua pack %s>", v->type_name, v->pack->name);
}

/* ---- typed values ------------------------------------------------------------------------ */

static void push_cond(lua_State *L, const vkf_conditioning *c)
{
    lua_createtable(L, c->n, 0);
    for (int i = 0; i < c->n; i++) {
        const vkf_cond_entry *e = &c->e[i];
        lua_createtable(L, 0, 8);
        vkf_lua_push_tensor(L, vkf_tensor_ref(e->cond));
        lua_setfield(L, -2, "cond");
        if (e->pooled) {
            vkf_lua_push_tensor(L, vkf_tensor_ref(e->pooled));
            lua_setfield(L, -2, "pooled");
        }
        if (e->mask) {
            vkf_lua_push_tensor(L, vkf_tensor_ref(e->mask));
            lua_setfield(L, -2, "mask");
        }
        lua_pushnumber(L, e->strength);
        lua_setfield(L, -2, "strength");
        lua_pushnumber(L, e->mask_strength);
        lua_setfield(L, -2, "mask_strength");
        lua_pushnumber(L, e->start_percent);
        lua_setfield(L, -2, "start_percent");
        lua_pushnumber(L, e->end_percent);
        lua_setfield(L, -2, "end_percent");
        lua_rawseti(L, -2, i + 1);
    }
}

void vkf_lua_push_value(lua_State *L, const vkf_value *v)
{
    switch (v->kind) {
    case VKF_VAL_NONE: lua_pushnil(L); return;
    case VKF_VAL_INT: lua_pushinteger(L, (lua_Integer)v->u.i); return;
    case VKF_VAL_FLOAT: lua_pushnumber(L, v->u.f); return;
    case VKF_VAL_STRING:
    case VKF_VAL_JSON: lua_pushstring(L, v->u.s); return;
    case VKF_VAL_BOOL: lua_pushboolean(L, v->u.b); return;
    case VKF_VAL_OBJECT: break;
    }
    vkf_object *o = v->u.obj;
    if (o->type->destroy == lua_value_destroy && ((lua_value_obj *)o)->pack == pack_of(L)) {
        lua_rawgeti(L, LUA_REGISTRYINDEX, ((lua_value_obj *)o)->ref);
        return;
    }
    vkf_tensor *t = vkf_value_image(v);
    if (!t)
        t = vkf_value_mask(v);
    if (t) {
        vkf_lua_push_tensor(L, vkf_tensor_ref(t));
        return;
    }
    const vkf_latent *lat = vkf_value_latent(v);
    if (lat) {
        lua_createtable(L, 0, 3);
        vkf_lua_push_tensor(L, vkf_tensor_ref(lat->samples));
        lua_setfield(L, -2, "samples");
        if (lat->noise_mask) {
            vkf_lua_push_tensor(L, vkf_tensor_ref(lat->noise_mask));
            lua_setfield(L, -2, "noise_mask");
        }
        if (lat->batch_index) {
            lua_createtable(L, lat->nb_batch_index, 0);
            for (int i = 0; i < lat->nb_batch_index; i++) {
                lua_pushinteger(L, lat->batch_index[i]);
                lua_rawseti(L, -2, i + 1);
            }
            lua_setfield(L, -2, "batch_index");
        }
        return;
    }
    const vkf_conditioning *c = vkf_value_conditioning(v);
    if (c) {
        push_cond(L, c);
        return;
    }
    const vkf_sigmas *s = vkf_value_sigmas(v);
    if (s) {
        lua_createtable(L, s->n, 0);
        for (int i = 0; i < s->n; i++) {
            lua_pushnumber(L, s->s[i]);
            lua_rawseti(L, -2, i + 1);
        }
        return;
    }
    push_object(L, o);
}

static vkf_tensor *field_tensor(lua_State *L, int t, const char *k, bool required)
{
    lua_getfield(L, t, k);
    vkf_tensor *x = vkf_lua_to_tensor(L, -1);
    if (!x && (required || !lua_isnil(L, -1)))
        luaL_error(L, "field '%s' must be a tensor", k);
    lua_pop(L, 1);
    return x;
}

static void to_conditioning(lua_State *L, int idx, vkf_value *out)
{
    luaL_checktype(L, idx, LUA_TTABLE);
    int n = (int)luaL_len(L, idx);
    /* Check everything first: nothing below raises once c exists. */
    for (int i = 0; i < n; i++) {
        lua_rawgeti(L, idx, i + 1);
        luaL_checktype(L, -1, LUA_TTABLE);
        int e = lua_gettop(L);
        field_tensor(L, e, "cond", true);
        field_tensor(L, e, "pooled", false);
        field_tensor(L, e, "mask", false);
        lua_pop(L, 1);
    }
    vkf_conditioning *c = vkf_conditioning_new(n);
    if (!c)
        luaL_error(L, "out of memory");
    for (int i = 0; i < n; i++) {
        lua_rawgeti(L, idx, i + 1);
        int e = lua_gettop(L);
        vkf_cond_entry *ce = &c->e[i];
        vkf_cond_entry_defaults(ce);
        ce->cond = vkf_tensor_ref(field_tensor(L, e, "cond", true));
        vkf_tensor *x = field_tensor(L, e, "pooled", false);
        ce->pooled = x ? vkf_tensor_ref(x) : NULL;
        x = field_tensor(L, e, "mask", false);
        ce->mask = x ? vkf_tensor_ref(x) : NULL;
        ce->strength = (float)opt_num_field(L, e, "strength", 1.0);
        ce->mask_strength = (float)opt_num_field(L, e, "mask_strength", 1.0);
        ce->start_percent = opt_num_field(L, e, "start_percent", 0.0);
        ce->end_percent = opt_num_field(L, e, "end_percent", 1.0);
        lua_pop(L, 1);
    }
    vkf_value_set_object(out, &c->obj);
}

void vkf_lua_to_value(lua_State *L, int idx, const char *type, vkf_value *out)
{
    idx = lua_absindex(L, idx);
    lua_object *ou = luaL_testudata(L, idx, VKF_LUA_OBJECT);
    if (ou) {
        if (strcmp(type, VKF_T_ANY) && !vkf_types_match(ou->obj->type->name, type))
            luaL_error(L, "returned a %s where the output is %s", ou->obj->type->name, type);
        vkf_value_set_object(out, vkf_object_ref(ou->obj));
        return;
    }
    if (!strcmp(type, VKF_T_INT)) {
        int isint = 0;
        lua_Integer i = lua_tointegerx(L, idx, &isint);
        if (!isint)
            luaL_error(L, "output INT needs an integer");
        vkf_value_set_int(out, i);
    } else if (!strcmp(type, VKF_T_FLOAT)) {
        if (!lua_isnumber(L, idx))
            luaL_error(L, "output FLOAT needs a number");
        vkf_value_set_float(out, lua_tonumber(L, idx));
    } else if (!strcmp(type, VKF_T_STRING)) {
        const char *s = lua_tostring(L, idx);
        if (!s)
            luaL_error(L, "output STRING needs a string");
        if (vkf_value_set_string(out, s) < 0)
            luaL_error(L, "out of memory");
    } else if (!strcmp(type, VKF_T_BOOLEAN)) {
        vkf_value_set_bool(out, lua_toboolean(L, idx));
    } else if (!strcmp(type, "IMAGE") || !strcmp(type, "MASK")) {
        vkf_tensor *t = vkf_lua_to_tensor(L, idx);
        if (!t)
            luaL_error(L, "output %s needs a tensor", type);
        int nd = vkf_tensor_ndim(t);
        if (!strcmp(type, "IMAGE") && nd != 4)
            luaL_error(L, "output IMAGE needs a [B, H, W, C] tensor, got %d dims", nd);
        if (!strcmp(type, "MASK") && nd != 3)
            luaL_error(L, "output MASK needs a [B, H, W] tensor, got %d dims", nd);
        vkf_tensor *c = NULL;
        int err = vkf_op_cast(vkf_lua_gpu(L), t, VKF_DTYPE_F32, &c);
        if (err < 0)
            vkf_lua_fail(L, err, "output");
        err = !strcmp(type, "IMAGE") ? vkf_value_set_image(out, c) : vkf_value_set_mask(out, c);
        if (err < 0)
            vkf_lua_fail(L, err, "output");
    } else if (!strcmp(type, "LATENT")) {
        vkf_tensor *s = vkf_lua_to_tensor(L, idx), *mask = NULL;
        int64_t bi[4096];
        int nbi = 0;
        if (!s) {
            luaL_checktype(L, idx, LUA_TTABLE);
            s = field_tensor(L, idx, "samples", true);
            mask = field_tensor(L, idx, "noise_mask", false);
            lua_getfield(L, idx, "batch_index");
            if (lua_istable(L, -1)) {
                nbi = (int)luaL_len(L, -1);
                if (nbi > 4096)
                    luaL_error(L, "batch_index too long");
                for (int i = 0; i < nbi; i++) {
                    lua_rawgeti(L, -1, i + 1);
                    bi[i] = lua_tointeger(L, -1);
                    lua_pop(L, 1);
                }
            }
            lua_pop(L, 1);
        }
        int err = vkf_value_set_latent(out, vkf_tensor_ref(s), mask ? vkf_tensor_ref(mask) : NULL,
                                       nbi ? bi : NULL, nbi);
        if (err < 0)
            vkf_lua_fail(L, err, "output");
    } else if (!strcmp(type, "CONDITIONING")) {
        to_conditioning(L, idx, out);
    } else if (!strcmp(type, "SIGMAS")) {
        luaL_checktype(L, idx, LUA_TTABLE);
        int n = (int)luaL_len(L, idx);
        for (int i = 0; i < n; i++) {
            lua_rawgeti(L, idx, i + 1);
            if (!lua_isnumber(L, -1))
                luaL_error(L, "output SIGMAS needs a list of numbers");
            lua_pop(L, 1);
        }
        vkf_sigmas *s = vkf_sigmas_new(n);
        if (!s)
            luaL_error(L, "out of memory");
        for (int i = 0; i < n; i++) {
            lua_rawgeti(L, idx, i + 1);
            s->s[i] = (float)lua_tonumber(L, -1);
            lua_pop(L, 1);
        }
        vkf_value_set_object(out, &s->obj);
    } else {
        /* A pack-defined type: the Lua value itself travels on the link. */
        lua_pack *p = pack_of(L);
        lua_value_obj *v = vkf_calloc(1, sizeof(*v));
        if (!v)
            luaL_error(L, "out of memory");
        snprintf(v->type_name, sizeof(v->type_name), "%s", type);
        v->type = (vkf_object_type){v->type_name, lua_value_destroy, lua_value_describe};
        lua_pushvalue(L, idx);
        v->ref = luaL_ref(L, LUA_REGISTRYINDEX);
        v->pack = p;
        vkf_lua_pack_ref(p);
        vkf_object_init(&v->obj, &v->type);
        vkf_value_set_object(out, &v->obj);
    }
}

/* ---- registration ---------------------------------------------------------------------------- */

void vkf_lua_open_tensor(lua_State *L)
{
    static const luaL_Reg tmeta[] = {
        {"__gc", t_gc},   {"__tostring", t_tostring}, {"__index", t_index},
        {"__add", t_add}, {"__sub", t_sub},           {"__mul", t_mul},
        {"__div", t_div}, {"__unm", t_unm},           {NULL, NULL},
    };
    static const luaL_Reg tmethods[] = {
        {"totable", t_totable},   {"item", t_item},         {"numel", t_numel},
        {"reshape", t_reshape},   {"permute", t_permute},   {"slice", t_slice},
        {"contiguous", t_contiguous}, {"cast", t_cast},     {"free", t_free},
        {NULL, NULL},
    };
    luaL_newmetatable(L, VKF_LUA_TENSOR);
    luaL_setfuncs(L, tmeta, 0);
    luaL_newlib(L, tmethods);
    lua_setfield(L, -2, "methods");
    lua_pushliteral(L, "tensor");
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 1);

    static const luaL_Reg kmeta[] = {{"__gc", k_gc}, {NULL, NULL}};
    luaL_newmetatable(L, KERNEL_MT);
    luaL_setfuncs(L, kmeta, 0);
    lua_newtable(L);
    lua_pushcfunction(L, k_run);
    lua_setfield(L, -2, "run");
    lua_setfield(L, -2, "__index");
    lua_pushliteral(L, "kernel");
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 1);

    static const luaL_Reg wmeta[] = {{"__gc", w_gc}, {NULL, NULL}};
    static const luaL_Reg wmethods[] = {{"names", w_names}, {"info", w_info},
                                        {"tensor", w_tensor}, {"close", w_close},
                                        {NULL, NULL}};
    luaL_newmetatable(L, WEIGHTS_MT);
    luaL_setfuncs(L, wmeta, 0);
    luaL_newlib(L, wmethods);
    lua_setfield(L, -2, "__index");
    lua_pushliteral(L, "weights");
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 1);

    static const luaL_Reg ometa[] = {{"__gc", o_gc}, {"__tostring", o_tostring},
                                     {"__index", o_index}, {NULL, NULL}};
    luaL_newmetatable(L, VKF_LUA_OBJECT);
    luaL_setfuncs(L, ometa, 0);
    lua_pushliteral(L, "object");
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 1);

    static const luaL_Reg tfns[] = {{"new", l_tensor_new}, {"zeros", l_zeros},
                                    {"full", l_full},       {"empty", l_empty},
                                    {"randn", l_randn},     {NULL, NULL}};
    luaL_newlib(L, tfns);
    lua_setfield(L, -2, "tensor");

    static const luaL_Reg ops[] = {
        {"matmul", op_matmul},       {"linear", op_linear},
        {"conv2d", op_conv2d},       {"group_norm", op_group_norm},
        {"layer_norm", op_layer_norm}, {"rms_norm", op_rms_norm},
        {"softmax", op_softmax},     {"attention", op_attention},
        {"upsample", op_upsample},   {"resample", op_resample},
        {"avg_pool2d", op_avg_pool2d}, {"max_pool2d", op_max_pool2d},
        {"concat", op_concat},       {"pad", op_pad},
        {"silu", op_silu},           {"gelu", op_gelu},
        {"gelu_tanh", op_gelu_tanh}, {"relu", op_relu},
        {"sigmoid", op_sigmoid},     {"tanh", op_tanh},
        {"scale", op_scale},         {"timestep_embedding", op_timestep_embedding},
        {"geglu", op_geglu},         {NULL, NULL},
    };
    luaL_newlib(L, ops);
    lua_setfield(L, -2, "op");
    lua_pushcfunction(L, l_kernel);
    lua_setfield(L, -2, "kernel");
    static const luaL_Reg wfns[] = {{"open", l_weights_open}, {NULL, NULL}};
    luaL_newlib(L, wfns);
    lua_setfield(L, -2, "weights");
    vkf_lua_open_sample(L);
}
