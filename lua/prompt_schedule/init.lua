-- Prompt scheduling by frame (the FizzNodes text format):
--   "0": "a cat in the snow",
--   "24": "a dog in the rain"
-- For a frame, returns the prompt in force, the next one and how far the
-- frame is between their keyframes (for ConditioningAverage).
local schedule = require("schedule")

vkf.node {
  name = "LuaPromptSchedule",
  display_name = "Prompt Schedule (Lua)",
  category = "conditioning/lua",
  description = "Picks the prompt for a frame from a keyframed schedule.",
  inputs = {required = {
    {"text", "STRING", multiline = true, default = '"0": "a cat",\n"10": "a dog"'},
    {"frame", "INT", default = 0, min = 0, max = 1000000},
  }},
  outputs = {{"STRING", name = "current"}, {"STRING", name = "next"}, {"FLOAT", name = "blend"}},
  execute = function(text, frame)
    return schedule.at(schedule.parse(text), frame)
  end,
}
