/*
 * `vkflow devices` and `vkflow bench ops`.  argv[0] is the subcommand name
 * ("devices" / "bench"), options follow.  Return the process exit code.
 */
#ifndef VKF_CLI_GPU_CLI_H
#define VKF_CLI_GPU_CLI_H

#include "vkflow/gpu.h"

int vkf_cli_devices(int argc, char **argv);
int vkf_cli_bench(int argc, char **argv);
/* `vkflow bench sd15` (core/cli/bench_sd15.c). */
int vkf_cli_bench_sd15(int argc, char **argv);

/* Fills params from --device N / --validation in argv and VKF_DEVICE /
 * VKF_VALIDATION in the environment (flags win); cache paths under
 * $XDG_CACHE_HOME/vkflow (else ~/.cache/vkflow), stored in the caller's
 * buffers.  Returns 0 or VKF_EINVAL for a malformed value. */
int vkf_cli_gpu_params(int argc, char **argv, vkf_gpu_params *params,
                       char *pcache, size_t pcache_size, char *spvdir,
                       size_t spvdir_size);

#endif
