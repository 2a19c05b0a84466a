vkf.node {
  name = "PrimitiveInt",
  outputs = {"INT"},
  execute = function() return 1 end,
}
