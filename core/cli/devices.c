/* `vkflow devices`: every Vulkan device and what it can do. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/gpu_cli.h"

static int parse_int(const char *s, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < 0 || v > 1000)
        return VKF_EINVAL;
    *out = (int)v;
    return 0;
}

int vkf_cli_gpu_params(int argc, char **argv, vkf_gpu_params *params,
                       char *pcache, size_t pcache_size, char *spvdir,
                       size_t spvdir_size)
{
    const char *dev = getenv("VKF_DEVICE");
    const char *val = getenv("VKF_VALIDATION");
    params->validation = val && !strcmp(val, "1");
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--device") && i + 1 < argc)
            dev = argv[++i];
        else if (!strcmp(argv[i], "--validation"))
            params->validation = true;
    }
    if (dev && parse_int(dev, &params->device_index) < 0) {
        fprintf(stderr, "vkflow: bad device index '%s'\n", dev);
        return VKF_EINVAL;
    }
    const char *xdg = getenv("XDG_CACHE_HOME");
    const char *home = getenv("HOME");
    char base[1024];
    if (xdg && *xdg)
        snprintf(base, sizeof(base), "%s/vkflow", xdg);
    else if (home && *home)
        snprintf(base, sizeof(base), "%s/.cache/vkflow", home);
    else
        return 0;
    /* Best effort: without the directory the caches simply stay cold. */
    char parent[1024];
    snprintf(parent, sizeof(parent), "%s", base);
    char *slash = strrchr(parent, '/');
    if (slash) {
        *slash = 0;
        mkdir(parent, 0755);
    }
    mkdir(base, 0755);
    snprintf(pcache, pcache_size, "%s/pipelines.bin", base);
    snprintf(spvdir, spvdir_size, "%s/spirv", base);
    params->pipeline_cache_path = pcache;
    params->spirv_cache_dir = spvdir;
    return 0;
}

static const char *yes(bool b)
{
    return b ? "yes" : "no";
}

int vkf_cli_devices(int argc, char **argv)
{
    vkf_log log = vkf_log_stderr(VKF_LOG_WARN);
    vkf_gpu_params params = {.log = &log};
    vkf_gpu_device_info *infos = NULL;
    int n = 0;
    int err = vkf_gpu_list_devices(&params, &infos, &n);
    if (err < 0) {
        fprintf(stderr, "vkflow: cannot list Vulkan devices: %s\n", vkf_strerror(err));
        return 1;
    }
    if (n == 0)
        printf("no Vulkan devices\n");
    for (int i = 0; i < n; i++) {
        const vkf_gpu_device_info *d = &infos[i];
        printf("device %d: %s\n", i, d->name);
        printf("  vendor 0x%04x  device 0x%04x  type %s  Vulkan %u.%u.%u\n",
               d->vendor_id, d->device_id, d->type, d->api_version >> 22,
               (d->api_version >> 12) & 0x3ff, d->api_version & 0xfff);
        printf("  driver %s (%s)\n", d->driver_name, d->driver_info);
        for (int h = 0; h < d->heap_count; h++) {
            const vkf_gpu_heap_info *hp = &d->heaps[h];
            printf("  heap %d: %.0f MiB%s", h, hp->size / 1048576.0,
                   hp->device_local ? " device-local" : "");
            if (d->has_memory_budget)
                printf(", budget %.0f MiB, used %.0f MiB", hp->budget / 1048576.0,
                       hp->usage / 1048576.0);
            printf("\n");
        }
        if (!d->has_memory_budget)
            printf("  memory budget: not reported (no VK_EXT_memory_budget)\n");
        printf("  subgroup size %u, max workgroup %u, push constants %u B\n",
               d->subgroup_size, d->max_workgroup_invocations, d->max_push_constants);
        printf("  max storage buffer range %.0f MiB, max allocation %.0f MiB\n",
               d->max_storage_buffer_range / 1048576.0,
               d->max_allocation_size / 1048576.0);
        printf("  arithmetic: fp16 %s, bf16 %s, int8 %s\n", yes(d->fp16_arith),
               yes(d->bf16_arith), yes(d->int8_arith));
        printf("  storage: 16-bit %s, 8-bit %s\n", yes(d->storage_16bit),
               yes(d->storage_8bit));
        printf("  cooperative matrix %s, timestamps %s\n", yes(d->cooperative_matrix),
               yes(d->timestamps));
    }
    vkf_free(infos);
    (void)argc;
    (void)argv;
    return 0;
}
