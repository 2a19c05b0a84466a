-- Test pack: declarations of every input kind, a required module, failing
-- and endless nodes.
local helpers = require("helpers")

vkf.node {
  name = "LuaTestEcho",
  display_name = "Lua Test Echo",
  category = "testing/lua",
  description = "Repeats a string.",
  inputs = {
    required = {
      {"text", "STRING", default = "hi", multiline = true, tooltip = "what to repeat"},
      {"times", "INT", default = 2, min = 1, max = 10, step = 1},
      {"sep", {"-", "+", "/"}, default = "+"},
    },
    optional = {
      {"scale", "FLOAT", default = 1.5, min = 0, max = 4, step = 0.25},
      {"upper", "BOOLEAN", default = false, label_on = "UP", label_off = "as is"},
    },
  },
  outputs = {{"STRING", name = "text", tooltip = "the repeated text"}, "INT"},
  execute = function(text, times, sep, scale, upper)
    local s = helpers.repeat_text(text, times, sep)
    if upper then s = s:upper() end
    return s, #s
  end,
}

vkf.node {
  name = "LuaTestFail",
  category = "testing/lua",
  inputs = {required = {{"text", "STRING", default = ""}}},
  outputs = {"STRING"},
  execute = function(text)
    helpers.fail(text)   -- helpers.lua raises on its line 8
  end,
}

vkf.node {
  name = "LuaTestLoop",
  category = "testing/lua",
  inputs = {required = {{"text", "STRING", default = ""}}},
  outputs = {"STRING"},
  execute = function(text)
    while true do pcall(function() while true do end end) end
  end,
}

vkf.node {
  name = "LuaTestCounter",
  category = "testing/lua",
  inputs = {required = {{"n", "INT", default = 3, min = 0, max = 100}}},
  outputs = {"COUNTER"},
  execute = function(n) return {count = n, label = "c" .. n} end,
}

vkf.node {
  name = "LuaTestCounterShow",
  category = "testing/lua",
  output_node = true,
  inputs = {required = {{"counter", "COUNTER"}}},
  outputs = {"STRING"},
  execute = function(c)
    vkf.ui_text("text", c.label)
    return c.label .. "=" .. c.count
  end,
}
