vkf.node {
  name = "NeverRegistered",
  outputs = {"INT"},
  execute = function() return 1 end,
}
local x = = 2
