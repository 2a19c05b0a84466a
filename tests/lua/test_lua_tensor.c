/*
 * The Lua tensor API on the GPU: construction and transfers, arithmetic
 * against host references, views and concat, a run-time GLSL kernel, the
 * shipped image_tools ops; the Lua euler and dpmpp_2m samplers
 * (lua/lua_samplers) against vkflow's built-in ones (vkf_sample) on the
 * same analytic denoiser.
 */
#include <math.h>

#include "../gpu/gpu_test.h"
#include "lua/vkf_lua.h"
#include "vkflow/graph.h"
#include "vkflow/samplers.h"

static vkf_lua_host *host;

static double run1(const char *pack, const char *chunk)
{
    double r = -1;
    char *msg = NULL;
    int err = vkf_lua_run(host, pack, chunk, "=chunk", &r, &msg);
    if (err)
        fprintf(stderr, "chunk failed: %s\n", msg ? msg : "?");
    CHECK(err == 0);
    vkf_free(msg);
    return r;
}

static const char tensor_chunk[] =
    "local a = vkf.tensor.new({1, 2, 3, 4, 5, 6}, {2, 3})\n"
    "local b = vkf.tensor.new({10, 20, 30}, {3})\n"
    "local c = ((a + b) * 2 - 1) / 4\n"              /* broadcast */
    "local v = c:totable()\n"
    "local want = {5.25, 10.75, 16.25, 6.75, 12.25, 17.75}\n"
    "local bad = 0\n"
    "for i = 1, 6 do if math.abs(v[i] - want[i]) > 1e-6 then bad = bad + 1 end end\n"
    "assert(c.shape[1] == 2 and c.shape[2] == 3 and c.dtype == 'f32' and c.ndim == 2)\n"
    "local t = a:permute({2, 1}):contiguous():totable()\n"   /* [[1,4],[2,5],[3,6]] */
    "if t[2] ~= 4 or t[3] ~= 2 then bad = bad + 1 end\n"
    "local s = a:slice(2, 2, 2):totable()\n"                 /* {2,3,5,6} */
    "if s[1] ~= 2 or s[4] ~= 6 then bad = bad + 1 end\n"
    "local cat = vkf.op.concat({a, a}, 1)\n"
    "if cat.shape[1] ~= 4 or cat:totable()[7] ~= 1 then bad = bad + 1 end\n"
    "local m = vkf.op.matmul(a, vkf.tensor.new({1, 0, 0, 1, 1, 1}, {3, 2})):totable()\n"
    "if m[1] ~= 4 or m[2] ~= 5 or m[3] ~= 10 or m[4] ~= 11 then bad = bad + 1 end\n"
    "if (5 - a):totable()[6] ~= -1 or (12 / a):totable()[4] ~= 3 then bad = bad + 1 end\n"
    "local ok, err = pcall(function() return a + vkf.tensor.new({1, 2}, {2}) end)\n"
    "if ok then bad = bad + 1 end\n"
    "local k = vkf.kernel{name = 'clamp_scale',\n"
    "  bindings = {{'y', 'write'}, {'x', 'read'}},\n"
    "  push = {{'n', 'uint'}, {'lo', 'float'}, {'hi', 'float'}},\n"
    "  source = [[void main() { uint i = gl_GlobalInvocationID.x; if (i >= p.n) return;\n"
    "             y[i] = clamp(x[i], p.lo, p.hi) * 10.0; }]]}\n"
    "local x = vkf.tensor.new({-3, -0.5, 0, 0.25, 2, 7, 1}, {7})\n"
    "local y = vkf.tensor.empty({7})\n"
    "k:run({y = y, x = x:cast('f16')}, {n = 7, lo = -1, hi = 1}, {1, 1, 1})\n"
    "local yv = y:totable()\n"
    "local yw = {-10, -5, 0, 2.5, 10, 10, 10}\n"
    "for i = 1, 7 do if yv[i] ~= yw[i] then bad = bad + 1 end end\n"
    "local ok2 = pcall(vkf.kernel, {name = 'broken', bindings = {{'y', 'write'}},\n"
    "  source = 'void main() { y[0] = undefined_thing; }'})\n"
    "if ok2 then bad = bad + 1 end\n"
    "local r = vkf.tensor.randn({2, 3}, 42):totable()\n"       /* torch.manual_seed(42) */
    "if math.abs(r[1] - 0.33669036626815796) > 1e-7 then bad = bad + 1 end\n"
    "return bad\n";

static const char sampler_chunk[] =
    "local S = require('samplers')\n"
    "local function f32(x) return (string.unpack('f', string.pack('f', x))) end\n"
    "local sig = S.karras(10, 0.0291675, 14.614642, 7)\n"
    "local x0 = {}\n"
    "for i = 1, 64 do x0[i] = math.sin(i) * 14.614642 end\n"
    "local model = function(x, s) return x * f32(1 / (1 + s * s)) + 0.25 end\n"
    "local out = {}\n"
    "for _, v in ipairs(sig) do out[#out + 1] = v end\n"
    "for _, v in ipairs(S.euler(model, vkf.tensor.new(x0, {1, 4, 4, 4}), sig):totable()) do out[#out + 1] = v end\n"
    "for _, v in ipairs(S.dpmpp_2m(model, vkf.tensor.new(x0, {1, 4, 4, 4}), sig):totable()) do out[#out + 1] = v end\n"
    "return table.unpack(out)\n";

static int denoise(void *opaque, const float *x, float sigma, float *den, float *unc)
{
    (void)opaque;
    (void)unc;
    float s = (float)(1.0 / (1.0 + (double)sigma * (double)sigma));
    for (int i = 0; i < 64; i++)
        den[i] = x[i] * s + 0.25f;
    return 0;
}

int main(void)
{
    const char *src = getenv("VKF_SOURCE_ROOT");
    char root[1024];
    snprintf(root, sizeof(root), "%s/lua", src ? src : ".");
    vkf_gpu *gpu = gt_gpu_open((vkf_gpu_params){0});
    vkf_registry *reg = NULL;
    CHECK_OK(vkf_registry_create(&reg));
    CHECK_OK(vkf_lua_host_create(&(vkf_lua_params){.log = &gt_log}, &host));
    int loaded = 0, failed = 0;
    CHECK_OK(vkf_lua_load_root(host, root, reg, &loaded, &failed));
    CHECK(failed == 0 && loaded >= 4);
    static const char *const shipped[] = {"LuaImageGrid", "LuaColorMatch", "LuaPromptSchedule",
                                          "LuaKarrasScheduler", "SlimDDPMLoader", "SlimDDPMSample"};
    for (size_t i = 0; i < VKF_ARRAY_SIZE(shipped); i++)
        CHECK(vkf_registry_find(reg, shipped[i]) != NULL);
    vkf_lua_host_set_gpu(host, gpu);

    CHECK(run1("image_tools", tensor_chunk) == 0);

    double r[11 + 128];
    int n = 0;
    char *msg = NULL;
    CHECK(vkf_lua_run_n(host, "lua_samplers", sampler_chunk, "=samplers", r, 139, &n, &msg) == 0);
    if (msg)
        fprintf(stderr, "%s\n", msg);
    vkf_free(msg);
    CHECK(n == 139);
    float sig[11];
    for (int i = 0; i < 11; i++)
        sig[i] = (float)r[i];
    CHECK(sig[0] == 14.614642f && sig[10] == 0);
    static const char *const names[] = {"euler", "dpmpp_2m"};
    for (int s = 0; s < 2; s++) {
        float x[64];
        for (int i = 0; i < 64; i++)
            x[i] = (float)(sin(i + 1) * 14.614642);
        int64_t shape[4] = {1, 4, 4, 4};
        vkf_sample_params p = {.sampler = names[s], .shape = shape, .ndim = 4, .n = 64};
        vkf_denoiser d = {denoise, NULL};
        CHECK(vkf_sample(&p, &d, sig, 11, x, &gt_log) == 0);
        double maxd = 0, maxv = 0;
        for (int i = 0; i < 64; i++) {
            maxd = fmax(maxd, fabs(x[i] - r[11 + 64 * s + i]));
            maxv = fmax(maxv, fabs(x[i]));
        }
        fprintf(stderr, "%s: Lua vs built-in max |diff| %.3g (max |x| %.3g)\n", names[s], maxd, maxv);
        CHECK(maxv > 0.01 && maxd <= 2e-6 * fmax(1.0, maxv));
    }
    vkf_lua_host_destroy(&host);
    vkf_registry_destroy(&reg);
    return gt_finish(&gpu);
}
