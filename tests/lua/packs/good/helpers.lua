local M = {}

function M.repeat_text(text, times, sep)
  local parts = {}
  for i = 1, times do parts[i] = text end
  return table.concat(parts, sep)
end
function M.fail(text) error("asked to fail: " .. text) end

return M
