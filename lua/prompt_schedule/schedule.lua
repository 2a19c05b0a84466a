local M = {}

-- Parses '"frame": "prompt"' entries (commas and newlines between them).
function M.parse(text)
  local keys = {}
  for frame, prompt in text:gmatch('"%s*(%d+)%s*"%s*:%s*"(.-)"') do
    keys[#keys + 1] = {frame = math.tointeger(tonumber(frame)), prompt = prompt}
  end
  if #keys == 0 then error("no '\"frame\": \"prompt\"' entries in the schedule") end
  table.sort(keys, function(a, b) return a.frame < b.frame end)
  return keys
end

function M.at(keys, frame)
  local cur, nxt = keys[1], nil
  for i, k in ipairs(keys) do
    if k.frame <= frame then cur, nxt = k, keys[i + 1] end
  end
  if frame < keys[1].frame or not nxt then return cur.prompt, cur.prompt, 0.0 end
  return cur.prompt, nxt.prompt, (frame - cur.frame) / (nxt.frame - cur.frame)
end

return M
