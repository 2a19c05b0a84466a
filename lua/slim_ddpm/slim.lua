-- The Slim-Diffusion MNIST DDPM UNet (channels 16/32/64/128, T = 200),
-- written on vkflow's tensor API.  Architecture: ../shared/data/README.md
-- "denoisers"; reference: ../shared/data/tools/slim_ddpm_ref.py.
local op = vkf.op
local M = {}
M.T = 200

-- Rounds a Lua number to float32 (torch does the DDIM scalars in f32).
local function f32(x) return (string.unpack("f", string.pack("f", x))) end
M.f32 = f32

-- Loads every tensor of an opened weights file (vkf.weights.open).
function M.load(w)
  local p = {}
  for _, name in ipairs(w:names()) do p[name] = w:tensor(name) end
  for i = 0, 2 do
    -- pixel_unshuffle(x, 2) then a 1x1 conv over 4c channels equals a 2x2
    -- stride-2 conv whose weight is the 1x1 weight viewed as [o, c, 2, 2]
    -- (channel c*4 + i*2 + j reads x[c, 2h+i, 2w+j]).
    local k = "encoder_conv_down." .. i .. ".layer.1.weight"
    local s = p[k].shape
    p[k .. ".2x2"] = p[k]:reshape({s[1], s[2] // 4, 2, 2})
  end
  local temb = w:tensor("time_embendding.weight"):totable()
  return setmetatable({p = p, temb = temb}, {__index = M})
end

local function conv(net, x, k)
  local w = net.p[k .. ".weight"]
  return op.conv2d(x, w, net.p[k .. ".bias"], {padding = w.shape[4] // 2})
end

local function gn(net, x, k)
  return op.group_norm(x, 8, net.p[k .. ".weight"], net.p[k .. ".bias"], 1e-5)
end

local function double_conv(net, x, k)
  local h = op.silu(gn(net, conv(net, x, k .. ".first_conv"), k .. ".first_norm"))
  h = gn(net, conv(net, h, k .. ".second_conv"), k .. ".second_norm")
  return op.silu(h + x)
end

-- Predicted noise for x [B, 1, 32, 32] at integer timesteps ts (a table of
-- B values in 0..199, or one number for the whole batch).
function M.eps(net, x, ts)
  local B = x.shape[1]
  local tv = {}
  for i = 1, B do
    local t = type(ts) == "table" and ts[i] or ts
    tv[i] = net.temb[math.tointeger(t) + 1]
  end
  local temb = vkf.tensor.new(tv, {B, 1, 1, 1})
  x = op.silu(gn(net, conv(net, x, "first_conv.0"), "first_conv.1"))
  local skips = {}
  for i = 0, 2 do
    x = double_conv(net, x + temb, "encoder_double_conv." .. i)
    skips[i + 1] = x
    local k = "encoder_conv_down." .. i .. ".layer.1"
    x = op.conv2d(x, net.p[k .. ".weight.2x2"], net.p[k .. ".bias"], {stride = 2})
  end
  x = double_conv(net, x, "bottleneck")
  for i = 0, 2 do
    x = conv(net, op.upsample(x, {scale = 2, mode = "nearest"}), "decoder_conv_up." .. i .. ".layer.1")
    x = double_conv(net, x + skips[3 - i], "decoder_double_conv." .. i)
  end
  x = op.silu(conv(net, x, "last_conv.0"))
  return conv(net, x, "last_conv.2")
end

-- The training schedule: beta_t = 1e-4 + (0.02 - 1e-4) * t / 200 (f32),
-- alphas_cumprod as torch.cumprod in float32.
function M.alphas_cumprod()
  local abar, acc = {}, f32(1)
  for t = 0, M.T - 1 do
    local beta = f32(f32(1e-4) + f32(f32(f32(0.02 - 1e-4) * t) / M.T))
    acc = f32(acc * f32(1 - beta))
    abar[t + 1] = acc
  end
  return abar
end

-- The DDIM timesteps: round(linspace(199, 1, steps)).
function M.ddim_timesteps(steps)
  local ts = {}
  for i = 0, steps - 1 do
    local v = steps > 1 and (M.T - 1) + (1 - (M.T - 1)) * i / (steps - 1) or M.T - 1
    ts[i + 1] = math.floor(v + 0.5)
  end
  return ts
end

-- Deterministic DDIM (eta 0) from x_T; the last step jumps to x0.
-- abar: alphas_cumprod (table of 200); progress(i, n) is called per step.
function M.ddim(net, x, steps, abar, progress)
  local ts = M.ddim_timesteps(steps)
  for i, t in ipairs(ts) do
    local eps = net:eps(x, t)
    local a_t = abar[t + 1]
    local x0 = (x - eps * f32(math.sqrt(f32(1 - a_t)))) / f32(math.sqrt(a_t))
    local a_prev = ts[i + 1] and abar[ts[i + 1] + 1] or 1
    x = x0 * f32(math.sqrt(a_prev)) + eps * f32(math.sqrt(f32(1 - a_prev)))
    if progress then progress(i, #ts) end
  end
  return x
end

return M
