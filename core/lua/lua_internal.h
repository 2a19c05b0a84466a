/* Private to core/lua: the pack state shared by host.c (sandbox, packs,
 * node declarations, execute) and tensor.c (tensors, ops, kernels,
 * weights, typed values). */
#ifndef VKF_LUA_INTERNAL_H
#define VKF_LUA_INTERNAL_H

#include <lauxlib.h>
#include <lua.h>

#include "lua/vkf_lua.h"
#include "vkflow/gpu.h"
#include "vkflow/node.h"

typedef struct lua_pack lua_pack;

typedef struct lua_node {
    vkf_node_def def;              /* first: the executor hands us &def */
    lua_pack *pack;
    int fn_ref;                    /* execute function in the registry */
} lua_node;

struct lua_pack {
    long refs;
    char *name;
    char *dir;
    lua_State *L;
    const vkf_log *log;
    size_t mem_used, mem_limit;
    long instr_used, instr_budget;
    bool killed;                   /* budget spent: the hook keeps erroring */
    /* While running: */
    vkf_exec_ctx *ctx;
    vkf_gpu *gpu;                  /* host default or the executor's */
    const vkf_paths *paths;
    /* GPU bytes made by Lua since the last full collection (tensors are
     * tiny userdata to Lua's collector, so it is told explicitly). */
    uint64_t gpu_bytes_since_gc;
    lua_node **nodes;
    int nb_nodes, cap_nodes;
    bool registering;              /* vkf.node allowed (loading init.lua) */
};

static inline lua_pack *pack_of(lua_State *L)
{
    return *(lua_pack **)lua_getextraspace(L);
}

void vkf_lua_pack_ref(lua_pack *p);
void vkf_lua_pack_unref(lua_pack **p);

/* tensor.c */
#define VKF_LUA_TENSOR "vkf.Tensor"
#define VKF_LUA_OBJECT "vkf.Object"
/* Registers vkf.tensor, vkf.op, vkf.kernel, vkf.weights, vkf.randn ...
 * into the table on top of the stack. */
void vkf_lua_open_tensor(lua_State *L);
/* The gpu to use (raises a Lua error if none can be had). */
vkf_gpu *vkf_lua_gpu(lua_State *L);
/* Pushes a tensor userdata taking over t's reference. */
void vkf_lua_push_tensor(lua_State *L, vkf_tensor *t);
vkf_tensor *vkf_lua_check_tensor(lua_State *L, int idx);
vkf_tensor *vkf_lua_to_tensor(lua_State *L, int idx);
/* Raises a Lua error naming what failed for a VKF_E* code. */
int vkf_lua_fail(lua_State *L, int err, const char *what);
/* Typed values across the node boundary. */
void vkf_lua_push_value(lua_State *L, const vkf_value *v);
/* Converts the Lua value at idx into *out for a declared output type
 * (raises a Lua error when it does not fit). */
void vkf_lua_to_value(lua_State *L, int idx, const char *type, vkf_value *out);
/* sample.c: vkf.sample into the table on top of the stack. */
void vkf_lua_open_sample(lua_State *L);

#endif
