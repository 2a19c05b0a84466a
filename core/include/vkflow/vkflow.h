/* vkflow — the public SDK in one include. */
#ifndef VKFLOW_VKFLOW_H
#define VKFLOW_VKFLOW_H

#include "common.h"
#include "executor.h"
#include "gpu.h"
#include "graph.h"
#include "node.h"
#include "paths.h"
#include "types.h"
#include "value.h"

#endif
