-- k-diffusion samplers in Lua on GPU tensors, step for step as ComfyUI's
-- (comfy/k_diffusion/sampling.py): model(x, sigma) returns the denoised
-- estimate; sigmas is a table (descending, usually ending in 0).
local M = {}
local function f32(x) return (string.unpack("f", string.pack("f", x))) end

function M.euler(model, x, sigmas, callback)
  for i = 1, #sigmas - 1 do
    local denoised = model(x, sigmas[i])
    local d = (x - denoised) / sigmas[i]
    if callback then callback(i, x, denoised) end
    local dt = f32(sigmas[i + 1] - sigmas[i])
    x = x + d * dt
  end
  return x
end

-- DPM-Solver++(2M); the scalars in float32 as torch computes them on
-- 0-d tensors.
function M.dpmpp_2m(model, x, sigmas, callback)
  local function t_fn(s) return f32(-f32(math.log(s))) end
  local function sigma_fn(t) return f32(math.exp(-t)) end
  local old_denoised
  for i = 1, #sigmas - 1 do
    local denoised = model(x, sigmas[i])
    if callback then callback(i, x, denoised) end
    local t, t_next = t_fn(sigmas[i]), t_fn(sigmas[i + 1])
    local h = f32(t_next - t)
    local ratio = f32(sigma_fn(t_next) / sigma_fn(t))
    local em1 = f32(math.exp(-h) - 1)      -- (-h).expm1()
    if old_denoised == nil or sigmas[i + 1] == 0 then
      x = x * ratio - denoised * em1
    else
      local h_last = f32(t - t_fn(sigmas[i - 1]))
      local r = f32(h_last / h)
      local a = f32(1 + f32(1 / f32(2 * r)))
      local b = f32(1 / f32(2 * r))
      local denoised_d = denoised * a - old_denoised * b
      x = x * ratio - denoised_d * em1
    end
    old_denoised = denoised
  end
  return x
end

-- Karras et al. (2022) schedule as ComfyUI's get_sigmas_karras (float32).
function M.karras(n, sigma_min, sigma_max, rho)
  rho = rho or 7.0
  local min_inv, max_inv = sigma_min ^ (1 / rho), sigma_max ^ (1 / rho)
  local s = {}
  for i = 0, n - 1 do
    local ramp = n > 1 and i / (n - 1) or 0
    s[i + 1] = f32((max_inv + ramp * (min_inv - max_inv)) ^ rho)
  end
  s[n + 1] = 0.0
  return s
end

return M
