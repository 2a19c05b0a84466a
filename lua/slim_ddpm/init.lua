-- A diffusion model written entirely in Lua: the Slim-Diffusion MNIST UNet.
-- The pack ships no weights: put slim_diffusion_mnist.safetensors in a
-- diffusion_models folder (or pass --models) and pick it in the loader.
local slim = require("slim")

vkf.node {
  name = "SlimDDPMLoader",
  display_name = "Load Slim DDPM (Lua)",
  category = "lua/slim_ddpm",
  description = "Loads the Slim-Diffusion 32x32 DDPM UNet weights for the Lua model.",
  inputs = {required = {
    {"unet_name", "COMBO", model_folder = "diffusion_models",
     tooltip = "slim_diffusion_mnist.safetensors"},
  }},
  outputs = {{"SLIM_DDPM", name = "model"}},
  execute = function(unet_name)
    return slim.load(vkf.weights.open("diffusion_models", unet_name))
  end,
}

vkf.node {
  name = "SlimDDPMSample",
  display_name = "Slim DDPM DDIM Sample (Lua)",
  category = "lua/slim_ddpm",
  description = "Deterministic DDIM from torch.randn noise; returns the samples as an image batch.",
  inputs = {required = {
    {"model", "SLIM_DDPM"},
    {"seed", "INT", default = 1234, min = 0, max = 0x7fffffffffffffff, control_after_generate = true},
    {"steps", "INT", default = 50, min = 1, max = 200},
    {"batch_size", "INT", default = 16, min = 1, max = 256},
  }},
  outputs = {"IMAGE"},
  execute = function(model, seed, steps, batch_size)
    local x = vkf.tensor.randn({batch_size, 1, 32, 32}, seed)
    x = slim.ddim(model, x, steps, slim.alphas_cumprod(), vkf.progress)
    -- [-1, 1] -> [0, 1], clamped: relu(y) - relu(y - 1)
    local y = x * 0.5 + 0.5
    y = vkf.op.relu(y) - vkf.op.relu(y - 1)
    y = y:permute({1, 3, 4, 2})          -- [B, 32, 32, 1]
    return vkf.op.concat({y, y, y}, 4)
  end,
}
