/*
 * The Lua diffusion model (lua/slim_ddpm): the real trained Slim-Diffusion
 * MNIST UNet written on the Lua tensor API, loaded from
 * ../shared/data/denoisers through the model folders.  ε at the probe
 * timesteps must match eps_probe and the 50-step DDIM run from x_T must
 * reproduce ddim50_x0 (PyTorch, tools/slim_ddpm_ref.py).
 */
#include <sys/stat.h>

#include "../gpu/gpu_test.h"
#include "lua/vkf_lua.h"
#include "vkflow/graph.h"
#include "vkflow/paths.h"

static const char chunk[] =
    "local slim = require('slim')\n"
    "local net = slim.load(vkf.weights.open('diffusion_models', 'slim_diffusion_mnist.safetensors'))\n"
    "local ref = vkf.weights.open('diffusion_models', 'ref/slim_mnist_ref.safetensors')\n"
    "local function maxdiff(a, b)\n"
    "  local d, m = (a - b):totable(), 0\n"
    "  for i = 1, #d do m = math.max(m, math.abs(d[i])) end\n"
    "  return m\n"
    "end\n"
    "local function maxabs(a)\n"
    "  local d, m = a:totable(), 0\n"
    "  for i = 1, #d do m = math.max(m, math.abs(d[i])) end\n"
    "  return m\n"
    "end\n"
    "local xT = ref:tensor('x_T')\n"
    "local want_eps = ref:tensor('eps_probe')\n"
    "local eps = net:eps(xT, ref:tensor('t_probe'):totable())\n"
    "local abar = ref:tensor('alphas_cumprod'):totable()\n"
    "local own = slim.alphas_cumprod()\n"
    "local abar_diff = 0\n"
    "for i = 1, 200 do abar_diff = math.max(abar_diff, math.abs(own[i] - abar[i])) end\n"
    "local ts = slim.ddim_timesteps(50)\n"
    "local want_x0 = ref:tensor('ddim50_x0')\n"
    "local x0 = slim.ddim(net, xT, 50, abar)\n"
    "return maxdiff(eps, want_eps), maxabs(want_eps), maxdiff(x0, want_x0), maxabs(want_x0),\n"
    "       abar_diff, ts[1], ts[2], ts[50]\n";

int main(void)
{
    const char *data = getenv("VKF_SHARED_DATA"), *src = getenv("VKF_SOURCE_ROOT");
    char dir[1024], pack[1024], file[1100];
    snprintf(dir, sizeof(dir), "%s/denoisers", data ? data : "../shared/data");
    snprintf(file, sizeof(file), "%s/slim_diffusion_mnist.safetensors", dir);
    snprintf(pack, sizeof(pack), "%s/lua/slim_ddpm", src ? src : ".");
    struct stat st;
    if (stat(file, &st) != 0) {
        fprintf(stderr, "%s missing: skipping\n", file);
        return 77;
    }
    vkf_gpu *gpu = gt_gpu_open((vkf_gpu_params){0});
    vkf_registry *reg = NULL;
    vkf_paths *paths = NULL;
    vkf_lua_host *host = NULL;
    CHECK_OK(vkf_registry_create(&reg));
    CHECK_OK(vkf_paths_create(&paths, &gt_log));
    CHECK_OK(vkf_paths_add_folder_dir(paths, "diffusion_models", dir, false));
    CHECK_OK(vkf_lua_host_create(&(vkf_lua_params){.log = &gt_log}, &host));
    CHECK_OK(vkf_lua_load_pack(host, pack, reg));
    CHECK(vkf_registry_find(reg, "SlimDDPMLoader") != NULL);
    CHECK(vkf_registry_find(reg, "SlimDDPMSample") != NULL);
    vkf_lua_host_set_gpu(host, gpu);
    vkf_lua_host_set_paths(host, paths);

    double r[8] = {0};
    int n = 0;
    char *msg = NULL;
    int err = vkf_lua_run_n(host, "slim_ddpm", chunk, "=test_lua_slim", r, 8, &n, &msg);
    if (err)
        fprintf(stderr, "%s\n", msg ? msg : "?");
    CHECK(err == 0 && n == 8);
    fprintf(stderr, "eps: max |diff| %.3g (max |eps| %.3g); ddim50 x0: max |diff| %.3g "
                    "(max |x0| %.3g); alphas_cumprod max diff %.3g; t = %g, %g ... %g\n",
            r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7]);
    CHECK(r[1] > 0.5 && r[0] < 1e-4);      /* f32 conv order only */
    CHECK(r[3] > 0.5 && r[2] < 2e-3);      /* 50 steps of it */
    CHECK(r[4] < 1e-6);
    CHECK(r[5] == 199 && r[7] == 1);
    vkf_free(msg);

    vkf_lua_host_destroy(&host);
    vkf_registry_destroy(&reg);
    vkf_paths_destroy(&paths);
    return gt_finish(&gpu);
}
