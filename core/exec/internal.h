/* Private declarations of core/exec. */
#ifndef VKF_EXEC_INTERNAL_H
#define VKF_EXEC_INTERNAL_H

#include "vkflow/executor.h"

#endif
