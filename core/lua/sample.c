/*
 * vkf.sample(noise, guider, sampler, sigmas, latent): SamplerCustomAdvanced
 * with a sampler written in Lua.  The built-in driver (vkf_sample_latent:
 * noise, guidance, inpaint masks, process_in/out) runs as usual and calls
 * the Lua function in place of vkf_sample:
 *     sampler(model, x, sigmas) -> x
 * with x a GPU tensor of the latent's shape, sigmas a list and model(x,
 * sigma) the guided denoiser returning a tensor.
 */
#include <string.h>

#include "lua/lua_internal.h"
#include "vkflow/guidance.h"
#include "vkflow/types.h"

/* vkf_sample_fn has no user pointer: the running call's state, one per
 * thread (the executor runs one node at a time). */
static _Thread_local struct {
    lua_State *L;
    int fn;              /* registry reference of the Lua sampler */
    char err[1024];
} cur;

typedef struct model_ud {
    const vkf_denoiser *d;
    const vkf_sample_params *p;
} model_ud;

static int model_call(lua_State *L)
{
    model_ud *m = lua_touserdata(L, lua_upvalueindex(1));
    vkf_tensor *x = vkf_lua_check_tensor(L, 1);
    float sigma = (float)luaL_checknumber(L, 2);
    if ((size_t)vkf_tensor_numel(x) != m->p->n)
        return luaL_error(L, "model: x has %I elements, the latent %I",
                          (lua_Integer)vkf_tensor_numel(x), (lua_Integer)m->p->n);
    float *buf = lua_newuserdatauv(L, 2 * m->p->n * sizeof(float), 0);
    int err = vkf_tensor_download(x, buf);
    if (err >= 0)
        err = m->d->denoise(m->d->opaque, buf, sigma, buf + m->p->n, NULL);
    if (err < 0)
        return vkf_lua_fail(L, err, "model");
    vkf_tensor *out = NULL;
    err = vkf_tensor_create(vkf_lua_gpu(L), VKF_DTYPE_F32, m->p->ndim, m->p->shape, &out);
    if (err >= 0)
        err = vkf_tensor_upload(out, buf + m->p->n);
    if (err < 0) {
        vkf_tensor_unref(&out);
        return vkf_lua_fail(L, err, "model");
    }
    vkf_lua_push_tensor(L, out);
    return 1;
}

typedef struct run_args {
    const vkf_sample_params *p;
    const vkf_denoiser *d;
    const float *sigmas;
    int n;
    float *x;
} run_args;

static int run_sampler(lua_State *L)
{
    run_args *a = lua_touserdata(L, 1);
    lua_rawgeti(L, LUA_REGISTRYINDEX, cur.fn);
    model_ud *m = lua_newuserdatauv(L, sizeof(*m), 0);
    m->d = a->d;
    m->p = a->p;
    lua_pushcclosure(L, model_call, 1);
    vkf_tensor *x = NULL;
    int err = vkf_tensor_create(vkf_lua_gpu(L), VKF_DTYPE_F32, a->p->ndim, a->p->shape, &x);
    if (err >= 0)
        err = vkf_tensor_upload(x, a->x);
    if (err < 0) {
        vkf_tensor_unref(&x);
        return vkf_lua_fail(L, err, "sampler input");
    }
    vkf_lua_push_tensor(L, x);
    lua_createtable(L, a->n, 0);
    for (int i = 0; i < a->n; i++) {
        lua_pushnumber(L, a->sigmas[i]);
        lua_rawseti(L, -2, i + 1);
    }
    lua_call(L, 3, 1);
    vkf_tensor *res = vkf_lua_to_tensor(L, -1);
    if (!res || (size_t)vkf_tensor_numel(res) != a->p->n)
        return luaL_error(L, "the sampler must return a tensor of the latent's size");
    err = vkf_tensor_download(res, a->x);
    if (err < 0)
        return vkf_lua_fail(L, err, "sampler output");
    return 0;
}

static int lua_sample_fn(const vkf_sample_params *p, const vkf_denoiser *model,
                         const float *sigmas, int n_sigmas, float *x, const vkf_log *log)
{
    (void)log;
    lua_State *L = cur.L;
    run_args a = {p, model, sigmas, n_sigmas, x};
    lua_pushcfunction(L, run_sampler);
    lua_pushlightuserdata(L, &a);
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
        const char *m = lua_tostring(L, -1);
        snprintf(cur.err, sizeof(cur.err), "%s", m ? m : "sampler failed");
        lua_pop(L, 1);
        return VKF_ERUN;
    }
    return 0;
}

static int l_sample(lua_State *L)
{
    lua_pack *pk = pack_of(L);
    if (!pk->ctx)
        return luaL_error(L, "vkf.sample runs inside a node's execute");
    vkf_value noise_v = {0}, guider_v = {0}, latent_v = {0};
    luaL_checktype(L, 3, LUA_TFUNCTION);
    luaL_checktype(L, 4, LUA_TTABLE);
    vkf_lua_to_value(L, 1, "NOISE", &noise_v);
    vkf_lua_to_value(L, 2, "GUIDER", &guider_v);
    vkf_noise *noise = vkf_value_noise(&noise_v);
    vkf_guider *guider = vkf_value_guider(&guider_v);
    int n = (int)luaL_len(L, 4);
    float *sig = lua_newuserdatauv(L, sizeof(float) * (size_t)(n ? n : 1), 0);
    for (int i = 0; i < n; i++) {
        lua_rawgeti(L, 4, i + 1);
        sig[i] = (float)lua_tonumber(L, -1);
        lua_pop(L, 1);
    }
    if (!noise || !guider) {
        vkf_value_clear(&noise_v);
        vkf_value_clear(&guider_v);
        return luaL_error(L, "vkf.sample(noise, guider, sampler, sigmas, latent): need NOISE and GUIDER objects");
    }
    /* The latent table back into a LATENT value (raises only before any
     * allocation that would leak: the two objects above are held by the
     * Lua stack's userdata as well). */
    vkf_lua_to_value(L, 5, "LATENT", &latent_v);
    vkf_guide_spec spec;
    vkf_guide_spec_from_guider(guider, &spec);
    vkf_latent_sample_params sp = {
        .ctx = pk->ctx, .guide = &spec, .latent = vkf_value_latent(&latent_v),
        .noise = {.disabled = noise->disabled, .seed = noise->seed}, .seed = noise->seed,
        .sampler_name = "euler", .sigmas = sig, .n_sigmas = n,
        .sample_fn = lua_sample_fn, .log = pk->log,
    };
    vkf_value out = {0}, den = {0};
    vkf_errbuf e = {{0}};
    lua_State *prev_L = cur.L;
    int prev_fn = cur.fn;
    cur.L = L;
    lua_pushvalue(L, 3);
    cur.fn = luaL_ref(L, LUA_REGISTRYINDEX);
    cur.err[0] = 0;
    int err = vkf_sample_latent(&sp, &out, &den, &e);
    luaL_unref(L, LUA_REGISTRYINDEX, cur.fn);
    cur.L = prev_L;
    cur.fn = prev_fn;
    vkf_value_clear(&noise_v);
    vkf_value_clear(&guider_v);
    vkf_value_clear(&latent_v);
    if (err < 0) {
        vkf_value_clear(&out);
        vkf_value_clear(&den);
        return luaL_error(L, "vkf.sample: %s", cur.err[0] ? cur.err : e.msg[0] ? e.msg : vkf_strerror(err));
    }
    vkf_lua_push_value(L, &out);
    vkf_lua_push_value(L, &den);
    vkf_value_clear(&out);
    vkf_value_clear(&den);
    return 2;
}

void vkf_lua_open_sample(lua_State *L)
{
    lua_pushcfunction(L, l_sample);
    lua_setfield(L, -2, "sample");
}
