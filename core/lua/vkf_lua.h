/*
 * vkflow — the sandboxed Lua 5.4 host: node packs written in Lua
 * (docs/lua-nodes.md).
 *
 * A pack is a folder with an init.lua.  Each pack gets its own lua_State
 * with an allow-listed standard library, a memory cap (a counting
 * lua_Alloc) and an instruction budget per execute call (a count hook that
 * keeps firing once the budget is spent, so pcall cannot swallow it).
 * Nodes a pack declares with vkf.node{...} become ordinary vkf_node_defs
 * in the registry: validation, /object_info and execution treat them like
 * built-ins.
 *
 * Lifetime: the registry borrows the definitions, so the host must outlive
 * every use of the registry.  Values a Lua node returns (tensors, objects
 * of pack-defined types) keep their pack alive on their own, so the host
 * may be destroyed while an executor cache still holds them; destroy the
 * host before the vkf_gpu its tensors live on (the executor's).
 *
 * Thread-safety: one thread at a time (as the executor).
 */
#ifndef VKF_LUA_H
#define VKF_LUA_H

#include "vkflow/graph.h"
#include "vkflow/paths.h"

typedef struct vkf_lua_host vkf_lua_host;

typedef struct vkf_lua_params {
    const vkf_log *log;        /* borrowed; must outlive the host */
    size_t mem_limit;          /* bytes of Lua heap per pack; 0: 256 MiB */
    long instr_budget;         /* VM instructions per execute call;
                                  0: 2e9 (about a minute on a slow CPU) */
    long load_budget;          /* instructions for loading a pack; 0: 1e8 */
} vkf_lua_params;

int vkf_lua_host_create(const vkf_lua_params *params, vkf_lua_host **out);
void vkf_lua_host_destroy(vkf_lua_host **h);

/* Loads the pack in folder `dir` (its init.lua) and adds its nodes to reg.
 * On failure nothing is registered, the reason is logged naming the pack
 * and returned (VKF_EINVAL for Lua errors, VKF_ENOTFOUND without
 * init.lua). */
int vkf_lua_load_pack(vkf_lua_host *h, const char *dir, vkf_registry *reg);
/* Loads every pack folder directly under root (name order).  A broken pack
 * is logged by name and skipped; *loaded and *failed (may be NULL) count
 * them.  A missing root is not an error. */
int vkf_lua_load_root(vkf_lua_host *h, const char *root, vkf_registry *reg,
                      int *loaded, int *failed);
/* The front ends' set-up: the shipped packs (the source tree's lua/ when
 * it exists, else the installed copy), then each of dirs, then every
 * entry of env_path (the VKF_NODES_PATH value, ':'-separated; may be
 * NULL).  Returns < 0 only for allocation failures. */
int vkf_lua_load_all(vkf_lua_host *h, const char *const *dirs, int ndirs,
                     const char *env_path, vkf_registry *reg);

/* Outside a workflow (tests, tools): the device and folders that Lua code
 * uses when no node is executing.  Both borrowed. */
void vkf_lua_host_set_gpu(vkf_lua_host *h, vkf_gpu *gpu);
void vkf_lua_host_set_paths(vkf_lua_host *h, const vkf_paths *paths);

/*
 * Runs a chunk of Lua text inside a loaded pack's sandbox (same budget and
 * cap as an execute call).  Its first return value, if a number, goes to
 * *result (may be NULL); a string error message (pack, file, line and a
 * traceback) to *errmsg (vkf_malloc'ed; may be NULL).  Returns 0,
 * VKF_ENOTFOUND (no such pack) or VKF_ERUN.
 */
int vkf_lua_run(vkf_lua_host *h, const char *pack, const char *chunk,
                const char *chunkname, double *result, char **errmsg);
/* Same, and every return value that is a number into results[0..cap-1];
 * *count receives how many values were returned. */
int vkf_lua_run_n(vkf_lua_host *h, const char *pack, const char *chunk,
                  const char *chunkname, double *results, int cap, int *count,
                  char **errmsg);

#endif
