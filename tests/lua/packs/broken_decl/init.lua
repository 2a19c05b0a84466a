vkf.node {
  name = "NoExecute",
  outputs = {"INT"},
}
