-- Image nodes in Lua: a grid of a batch, and colour matching to a reference
-- (per-channel mean/std, or 256-bin histogram matching through a run-time
-- GLSL kernel).
local op = vkf.op

vkf.node {
  name = "LuaImageGrid",
  display_name = "Image Grid (Lua)",
  category = "image/lua",
  description = "Lays the images of a batch out in a grid.",
  inputs = {required = {
    {"images", "IMAGE"},
    {"columns", "INT", default = 4, min = 1, max = 256},
    {"padding", "INT", default = 0, min = 0, max = 256},
    {"background", "FLOAT", default = 0.0, min = 0.0, max = 1.0, step = 0.01},
  }},
  outputs = {"IMAGE"},
  execute = function(images, columns, padding, background)
    local B, H, W, C = table.unpack(images.shape)
    columns = math.min(columns, B)
    local rows = (B + columns - 1) // columns
    local row_images = {}
    for r = 0, rows - 1 do
      local cells = {}
      for c = 0, columns - 1 do
        local i = r * columns + c
        local cell
        if i < B then cell = images:slice(1, i + 1, 1)
        else cell = vkf.tensor.full({1, H, W, C}, background) end
        if padding > 0 then
          cell = op.pad(cell, {0, 0, padding, 0, padding, 0, 0, 0}, background)
        end
        cells[#cells + 1] = cell
      end
      row_images[#row_images + 1] = op.concat(cells, 3)
    end
    local grid = op.concat(row_images, 2)
    if padding > 0 then
      grid = op.pad(grid, {0, 0, 0, padding, 0, padding, 0, 0}, background)
    end
    return grid
  end,
}

-- Per-channel statistics on the host (images are small next to models).
local function channel_stats(img, C)
  local v = img:totable()
  local sum, sq, n = {}, {}, #v // C
  for c = 1, C do sum[c], sq[c] = 0, 0 end
  for i = 0, n - 1 do
    for c = 1, C do
      local x = v[i * C + c]
      sum[c] = sum[c] + x
      sq[c] = sq[c] + x * x
    end
  end
  local mean, std = {}, {}
  for c = 1, C do
    mean[c] = sum[c] / n
    std[c] = math.sqrt(math.max(sq[c] / n - mean[c] * mean[c], 0))
  end
  return mean, std, v
end

local BINS = 256

-- CDF of each channel over BINS bins of [0, 1].
local function channel_cdf(v, C)
  local n = #v // C
  local cdf = {}
  for c = 1, C do
    local h = {}
    for b = 1, BINS do h[b] = 0 end
    for i = 0, n - 1 do
      local x = math.min(math.max(v[i * C + c], 0), 1)
      local b = math.min(math.floor(x * BINS), BINS - 1) + 1
      h[b] = h[b] + 1
    end
    local acc = 0
    cdf[c] = {}
    for b = 1, BINS do acc = acc + h[b]; cdf[c][b] = acc / n end
  end
  return cdf
end

local lut_kernel
local function get_lut_kernel()
  lut_kernel = lut_kernel or vkf.kernel {
    name = "histogram_lut",
    bindings = {{"dst", "write"}, {"src", "read"}, {"lut", "read"}},
    push = {{"n", "uint"}, {"channels", "uint"}, {"bins", "uint"}},
    local_size = 64,
    source = [[
void main() {
    uint i = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * 64u;
    if (i >= p.n) return;
    uint c = i % p.channels;
    float x = clamp(src[i], 0.0, 1.0) * float(p.bins - 1u);
    uint b = min(uint(x), p.bins - 2u);
    float f = x - float(b);
    dst[i] = mix(lut[c * p.bins + b], lut[c * p.bins + b + 1u], f);
}
]],
  }
  return lut_kernel
end

vkf.node {
  name = "LuaColorMatch",
  display_name = "Color Match (Lua)",
  category = "image/lua",
  description = "Matches the colours of image to a reference: per-channel mean and standard deviation, or histograms.",
  inputs = {required = {
    {"image", "IMAGE"},
    {"reference", "IMAGE"},
    {"method", {"mean_std", "histogram"}, default = "mean_std"},
    {"strength", "FLOAT", default = 1.0, min = 0.0, max = 1.0, step = 0.01},
  }},
  outputs = {"IMAGE"},
  execute = function(image, reference, method, strength)
    local C = image.shape[4]
    if reference.shape[4] ~= C then error("image and reference differ in channels") end
    local out
    if method == "mean_std" then
      local m1, s1 = channel_stats(image, C)
      local m2, s2 = channel_stats(reference, C)
      local a, b = {}, {}
      for c = 1, C do
        a[c] = s1[c] > 1e-8 and s2[c] / s1[c] or 1
        b[c] = m2[c] - a[c] * m1[c]
      end
      out = image * vkf.tensor.new(a, {C}) + vkf.tensor.new(b, {C})
    else
      local src = image:totable()
      local cs, cr = channel_cdf(src, C), channel_cdf(reference:totable(), C)
      -- lut[c][b]: the reference value whose CDF reaches the source CDF at b
      local lut = {}
      for c = 1, C do
        local j = 1
        for b = 1, BINS do
          while j < BINS and cr[c][j] < cs[c][b] do j = j + 1 end
          lut[(c - 1) * BINS + b] = (j - 0.5) / BINS
        end
      end
      local n = image:numel()
      out = vkf.tensor.empty(image.shape)
      local groups = (n + 63) // 64
      local gy = (groups + 65534) // 65535
      get_lut_kernel():run({dst = out, src = image, lut = vkf.tensor.new(lut, {C * BINS})},
                           {n = n, channels = C, bins = BINS},
                           {(groups + gy - 1) // gy, gy, 1})
    end
    if strength < 1 then out = out * strength + image * (1 - strength) end
    return vkf.op.relu(out) - vkf.op.relu(out - 1)
  end,
}
