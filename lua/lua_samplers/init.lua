-- Samplers and a scheduler written in Lua.  The sampler functions live in
-- samplers.lua (require("samplers")); the scheduler is a node whose SIGMAS
-- output plugs into SamplerCustom / SamplerCustomAdvanced.
local samplers = require("samplers")

vkf.node {
  name = "LuaKarrasScheduler",
  display_name = "Karras Scheduler (Lua)",
  category = "sampling/custom_sampling/schedulers",
  description = "Karras et al. (2022) noise levels, as KarrasScheduler.",
  inputs = {required = {
    {"steps", "INT", default = 20, min = 1, max = 10000},
    {"sigma_max", "FLOAT", default = 14.614642, min = 0.0, max = 5000.0, step = 0.01},
    {"sigma_min", "FLOAT", default = 0.0291675, min = 0.0, max = 5000.0, step = 0.01},
    {"rho", "FLOAT", default = 7.0, min = 0.0, max = 100.0, step = 0.01},
  }},
  outputs = {"SIGMAS"},
  execute = function(steps, sigma_max, sigma_min, rho)
    return samplers.karras(steps, sigma_min, sigma_max, rho)
  end,
}

vkf.node {
  name = "LuaSamplerSelect",
  display_name = "Lua Sampler Select",
  category = "sampling/custom_sampling/samplers",
  description = "A sampler written in Lua, for LuaSamplerCustomAdvanced.",
  inputs = {required = {{"sampler_name", {"euler", "dpmpp_2m"}}}},
  outputs = {"LUA_SAMPLER"},
  execute = function(name) return {name = name, fn = samplers[name]} end,
}

vkf.node {
  name = "LuaSamplerCustomAdvanced",
  display_name = "SamplerCustomAdvanced (Lua sampler)",
  category = "sampling/custom_sampling",
  description = "SamplerCustomAdvanced whose sampler loop is a Lua function.",
  inputs = {required = {
    {"noise", "NOISE"}, {"guider", "GUIDER"}, {"sampler", "LUA_SAMPLER"},
    {"sigmas", "SIGMAS"}, {"latent_image", "LATENT"},
  }},
  outputs = {{"LATENT", name = "output"}, {"LATENT", name = "denoised_output"}},
  execute = function(noise, guider, sampler, sigmas, latent)
    return vkf.sample(noise, guider, function(model, x, s) return sampler.fn(model, x, s) end,
                      sigmas, latent)
  end,
}
