/* Vulkan instance and device: creation, capability query, error mapping. */
#include <stdio.h>
#include <string.h>

#include "gpu/gpu_internal.h"

static const char *validation_layer = "VK_LAYER_KHRONOS_validation";

const char *vkf_dtype_name(vkf_dtype dt)
{
    switch (dt) {
    case VKF_DTYPE_F32: return "f32";
    case VKF_DTYPE_F16: return "f16";
    case VKF_DTYPE_BF16: return "bf16";
    }
    return "?";
}

size_t vkf_dtype_size(vkf_dtype dt)
{
    return dt == VKF_DTYPE_F32 ? 4 : 2;
}

int vkf_gpu_vk_error(vkf_gpu *gpu, VkResult r, const char *what)
{
    const vkf_log *log = gpu ? gpu->log : NULL;
    switch (r) {
    case VK_ERROR_OUT_OF_DEVICE_MEMORY:
        vkf_logf(log, VKF_LOG_ERROR, "%s: out of device memory", what);
        return VKF_EDEVICE_OOM;
    case VK_ERROR_OUT_OF_HOST_MEMORY:
        vkf_logf(log, VKF_LOG_ERROR, "%s: out of host memory (Vulkan)", what);
        return VKF_ENOMEM;
    case VK_ERROR_DEVICE_LOST:
        vkf_logf(log, VKF_LOG_ERROR,
                 "%s: Vulkan device lost (driver reset or crash); the device "
                 "can no longer be used", what);
        if (gpu)
            gpu->lost = true;
        return VKF_EDEVICE_LOST;
    default:
        vkf_logf(log, VKF_LOG_ERROR, "%s: Vulkan error %d", what, (int)r);
        return VKF_EDEVICE;
    }
}

static VKAPI_ATTR VkBool32 VKAPI_CALL
debug_cb(VkDebugUtilsMessageSeverityFlagBitsEXT sev,
         VkDebugUtilsMessageTypeFlagsEXT type,
         const VkDebugUtilsMessengerCallbackDataEXT *data, void *priv)
{
    vkf_gpu *gpu = priv;
    if (!(sev & (VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT |
                 VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT)))
        return VK_FALSE;
    gpu->validation_messages++;
    vkf_logf(gpu->log, VKF_LOG_ERROR, "vulkan validation: %s",
             data->pMessage ? data->pMessage : "(no message)");
    return VK_FALSE;
}

static bool has_layer(const char *name)
{
    uint32_t n = 0;
    vkEnumerateInstanceLayerProperties(&n, NULL);
    VkLayerProperties props[64];
    if (n > 64)
        n = 64;
    vkEnumerateInstanceLayerProperties(&n, props);
    for (uint32_t i = 0; i < n; i++)
        if (!strcmp(props[i].layerName, name))
            return true;
    return false;
}

static bool has_instance_ext(const char *name)
{
    uint32_t n = 0;
    vkEnumerateInstanceExtensionProperties(NULL, &n, NULL);
    VkExtensionProperties props[128];
    if (n > 128)
        n = 128;
    vkEnumerateInstanceExtensionProperties(NULL, &n, props);
    for (uint32_t i = 0; i < n; i++)
        if (!strcmp(props[i].extensionName, name))
            return true;
    return false;
}

static int create_instance(vkf_gpu *gpu, bool validation, VkInstance *out)
{
    int err = 0;
    const char *layers[1];
    const char *exts[2];
    uint32_t nlayers = 0, nexts = 0;
    VkInstanceCreateFlags flags = 0;

    if (validation) {
        if (!has_layer(validation_layer)) {
            vkf_logf(gpu->log, VKF_LOG_ERROR,
                     "validation requested but %s is not installed",
                     validation_layer);
            return VKF_EUNSUPPORTED;
        }
        layers[nlayers++] = validation_layer;
        exts[nexts++] = VK_EXT_DEBUG_UTILS_EXTENSION_NAME;
    }
    if (has_instance_ext(VK_KHR_PORTABILITY_ENUMERATION_EXTENSION_NAME)) {
        exts[nexts++] = VK_KHR_PORTABILITY_ENUMERATION_EXTENSION_NAME;
        flags |= VK_INSTANCE_CREATE_ENUMERATE_PORTABILITY_BIT_KHR;
    }
    VkApplicationInfo app = {
        .sType = VK_STRUCTURE_TYPE_APPLICATION_INFO,
        .pApplicationName = "vkflow",
        .pEngineName = "vkflow",
        .apiVersion = VK_API_VERSION_1_2,
    };
    VkDebugUtilsMessengerCreateInfoEXT dbg = {
        .sType = VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT,
        .messageSeverity = VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT |
                           VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT,
        .messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT |
                       VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT |
                       VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT,
        .pfnUserCallback = debug_cb,
        .pUserData = gpu,
    };
    VkInstanceCreateInfo ci = {
        .sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO,
        .pNext = validation ? &dbg : NULL,
        .flags = flags,
        .pApplicationInfo = &app,
        .enabledLayerCount = nlayers,
        .ppEnabledLayerNames = layers,
        .enabledExtensionCount = nexts,
        .ppEnabledExtensionNames = exts,
    };
    VKF_VK(gpu, vkCreateInstance(&ci, NULL, out), "vkCreateInstance");
    if (validation) {
        PFN_vkCreateDebugUtilsMessengerEXT create =
            (PFN_vkCreateDebugUtilsMessengerEXT)vkGetInstanceProcAddr(
                *out, "vkCreateDebugUtilsMessengerEXT");
        if (create)
            VKF_VK(gpu, create(*out, &dbg, NULL, &gpu->messenger),
                   "vkCreateDebugUtilsMessengerEXT");
    }
    return 0;
fail:
    return err;
}

static bool has_device_ext(VkPhysicalDevice pd, const char *name)
{
    uint32_t n = 0;
    vkEnumerateDeviceExtensionProperties(pd, NULL, &n, NULL);
    VkExtensionProperties *props = vkf_calloc(n ? n : 1, sizeof(*props));
    if (!props)
        return false;
    vkEnumerateDeviceExtensionProperties(pd, NULL, &n, props);
    bool found = false;
    for (uint32_t i = 0; i < n && !found; i++)
        found = !strcmp(props[i].extensionName, name);
    vkf_free(props);
    return found;
}

static const char *type_name(VkPhysicalDeviceType t)
{
    switch (t) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return "discrete";
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return "integrated";
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return "virtual";
    case VK_PHYSICAL_DEVICE_TYPE_CPU: return "cpu";
    default: return "other";
    }
}

static void query_info(VkPhysicalDevice pd, vkf_gpu_device_info *info)
{
    memset(info, 0, sizeof(*info));
    VkPhysicalDeviceDriverProperties drv = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DRIVER_PROPERTIES,
    };
    VkPhysicalDeviceSubgroupProperties sub = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES,
        .pNext = &drv,
    };
    VkPhysicalDeviceProperties2 p2 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2,
        .pNext = &sub,
    };
    vkGetPhysicalDeviceProperties2(pd, &p2);
    const VkPhysicalDeviceProperties *p = &p2.properties;
    snprintf(info->name, sizeof(info->name), "%s", p->deviceName);
    snprintf(info->driver_name, sizeof(info->driver_name), "%s", drv.driverName);
    snprintf(info->driver_info, sizeof(info->driver_info), "%s", drv.driverInfo);
    info->type = type_name(p->deviceType);
    info->vendor_id = p->vendorID;
    info->device_id = p->deviceID;
    info->api_version = p->apiVersion;
    info->subgroup_size = sub.subgroupSize;
    info->max_storage_buffer_range = p->limits.maxStorageBufferRange;
    info->max_push_constants = p->limits.maxPushConstantsSize;
    info->max_workgroup_invocations = p->limits.maxComputeWorkGroupInvocations;
    info->timestamps = p->limits.timestampComputeAndGraphics;
    info->timestamp_period_ns = p->limits.timestampPeriod;

    VkPhysicalDeviceMaintenance3Properties m3 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_3_PROPERTIES,
    };
    VkPhysicalDeviceProperties2 p2b = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2,
        .pNext = &m3,
    };
    vkGetPhysicalDeviceProperties2(pd, &p2b);
    info->max_allocation_size = m3.maxMemoryAllocationSize;

    VkPhysicalDeviceShaderFloat16Int8Features f16 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES,
    };
    VkPhysicalDevice16BitStorageFeatures s16 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_16BIT_STORAGE_FEATURES,
        .pNext = &f16,
    };
    VkPhysicalDevice8BitStorageFeatures s8 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_8BIT_STORAGE_FEATURES,
        .pNext = &s16,
    };
    VkPhysicalDeviceFeatures2 f2 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2,
        .pNext = &s8,
    };
    vkGetPhysicalDeviceFeatures2(pd, &f2);
    info->fp16_arith = f16.shaderFloat16;
    info->int8_arith = f16.shaderInt8;
    info->storage_16bit = s16.storageBuffer16BitAccess;
    info->storage_8bit = s8.storageBuffer8BitAccess;
    info->cooperative_matrix = has_device_ext(pd, "VK_KHR_cooperative_matrix") ||
                               has_device_ext(pd, "VK_NV_cooperative_matrix");
    info->bf16_arith = has_device_ext(pd, "VK_KHR_shader_bfloat16");

    VkPhysicalDeviceMemoryBudgetPropertiesEXT budget = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MEMORY_BUDGET_PROPERTIES_EXT,
    };
    info->has_memory_budget = has_device_ext(pd, VK_EXT_MEMORY_BUDGET_EXTENSION_NAME);
    VkPhysicalDeviceMemoryProperties2 mp = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MEMORY_PROPERTIES_2,
        .pNext = info->has_memory_budget ? &budget : NULL,
    };
    vkGetPhysicalDeviceMemoryProperties2(pd, &mp);
    uint32_t nheaps = mp.memoryProperties.memoryHeapCount;
    if (nheaps > VKF_ARRAY_SIZE(info->heaps))
        nheaps = VKF_ARRAY_SIZE(info->heaps);
    info->heap_count = (int)nheaps;
    for (uint32_t i = 0; i < nheaps; i++) {
        const VkMemoryHeap *h = &mp.memoryProperties.memoryHeaps[i];
        info->heaps[i].size = h->size;
        info->heaps[i].device_local = h->flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT;
        info->heaps[i].budget = info->has_memory_budget ? budget.heapBudget[i] : h->size;
        info->heaps[i].usage = info->has_memory_budget ? budget.heapUsage[i] : 0;
    }
}

int vkf_gpu_list_devices(const vkf_gpu_params *params,
                         vkf_gpu_device_info **out, int *count)
{
    int err = 0;
    vkf_gpu tmp = {.log = params ? params->log : NULL};
    VkInstance inst = VK_NULL_HANDLE;
    VkPhysicalDevice *pds = NULL;
    vkf_gpu_device_info *infos = NULL;
    uint32_t n = 0;

    *out = NULL;
    *count = 0;
    VKF_TRY(create_instance(&tmp, false, &inst));
    VKF_VK(&tmp, vkEnumeratePhysicalDevices(inst, &n, NULL),
           "vkEnumeratePhysicalDevices");
    pds = vkf_calloc(n ? n : 1, sizeof(*pds));
    infos = vkf_calloc(n ? n : 1, sizeof(*infos));
    VKF_CHECK_ALLOC(pds);
    VKF_CHECK_ALLOC(infos);
    VKF_VK(&tmp, vkEnumeratePhysicalDevices(inst, &n, pds),
           "vkEnumeratePhysicalDevices");
    for (uint32_t i = 0; i < n; i++)
        query_info(pds[i], &infos[i]);
    *out = infos;
    *count = (int)n;
    infos = NULL;
fail:
    vkf_free(infos);
    vkf_free(pds);
    if (inst)
        vkDestroyInstance(inst, NULL);
    return err;
}

static int pick_device(vkf_gpu *gpu)
{
    int err = 0;
    uint32_t n = 0;
    VkPhysicalDevice *pds = NULL;
    VKF_VK(gpu, vkEnumeratePhysicalDevices(gpu->instance, &n, NULL),
           "vkEnumeratePhysicalDevices");
    if (n == 0) {
        vkf_logf(gpu->log, VKF_LOG_ERROR, "no Vulkan device found");
        return VKF_ENOTFOUND;
    }
    int idx = gpu->params.device_index;
    if (idx < 0 || (uint32_t)idx >= n) {
        vkf_logf(gpu->log, VKF_LOG_ERROR,
                 "device index %d out of range (%u device%s)", idx, n,
                 n == 1 ? "" : "s");
        return VKF_EINVAL;
    }
    pds = vkf_calloc(n, sizeof(*pds));
    VKF_CHECK_ALLOC(pds);
    VKF_VK(gpu, vkEnumeratePhysicalDevices(gpu->instance, &n, pds),
           "vkEnumeratePhysicalDevices");
    gpu->phys = pds[idx];
fail:
    vkf_free(pds);
    return err;
}

static int create_device(vkf_gpu *gpu)
{
    int err = 0;
    uint32_t nq = 0;
    VkQueueFamilyProperties qf[16];
    vkGetPhysicalDeviceQueueFamilyProperties(gpu->phys, &nq, NULL);
    if (nq > 16)
        nq = 16;
    vkGetPhysicalDeviceQueueFamilyProperties(gpu->phys, &nq, qf);
    int family = -1;
    /* Prefer a compute queue without graphics (async compute), then any. */
    for (uint32_t i = 0; i < nq && family < 0; i++)
        if ((qf[i].queueFlags & VK_QUEUE_COMPUTE_BIT) &&
            !(qf[i].queueFlags & VK_QUEUE_GRAPHICS_BIT) && qf[i].timestampValidBits)
            family = (int)i;
    for (uint32_t i = 0; i < nq && family < 0; i++)
        if (qf[i].queueFlags & VK_QUEUE_COMPUTE_BIT)
            family = (int)i;
    if (family < 0) {
        vkf_logf(gpu->log, VKF_LOG_ERROR, "%s has no compute queue", gpu->info.name);
        return VKF_EUNSUPPORTED;
    }
    gpu->queue_family = (uint32_t)family;
    if (!qf[family].timestampValidBits)
        gpu->info.timestamps = false;

    const char *exts[4];
    uint32_t next = 0;
    if (gpu->info.has_memory_budget)
        exts[next++] = VK_EXT_MEMORY_BUDGET_EXTENSION_NAME;

    VkPhysicalDevice16BitStorageFeatures s16 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_16BIT_STORAGE_FEATURES,
        .storageBuffer16BitAccess = gpu->info.storage_16bit,
    };
    VkPhysicalDeviceShaderFloat16Int8Features f16 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES,
        .pNext = &s16,
        .shaderFloat16 = gpu->info.fp16_arith,
        .shaderInt8 = gpu->info.int8_arith,
    };
    VkPhysicalDeviceFeatures2 f2 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2,
        .pNext = &f16,
    };
    VkPhysicalDeviceFeatures supported;
    vkGetPhysicalDeviceFeatures(gpu->phys, &supported);
    f2.features.shaderInt16 = supported.shaderInt16;
    f2.features.shaderInt64 = supported.shaderInt64;

    float prio = 1.0f;
    VkDeviceQueueCreateInfo qci = {
        .sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO,
        .queueFamilyIndex = gpu->queue_family,
        .queueCount = 1,
        .pQueuePriorities = &prio,
    };
    VkDeviceCreateInfo dci = {
        .sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO,
        .pNext = &f2,
        .queueCreateInfoCount = 1,
        .pQueueCreateInfos = &qci,
        .enabledExtensionCount = next,
        .ppEnabledExtensionNames = exts,
    };
    VKF_VK(gpu, vkCreateDevice(gpu->phys, &dci, NULL, &gpu->dev), "vkCreateDevice");
    vkGetDeviceQueue(gpu->dev, gpu->queue_family, 0, &gpu->queue);
fail:
    return err;
}

static uint64_t floor_pow2(uint64_t v)
{
    uint64_t p = 1;
    while (p * 2 <= v)
        p *= 2;
    return p;
}

int vkf_gpu_create(const vkf_gpu_params *params, vkf_gpu **out)
{
    int err = 0;
    vkf_gpu *gpu = vkf_calloc(1, sizeof(*gpu));
    VKF_CHECK_ALLOC(gpu);
    gpu->params = *params;
    gpu->log = params->log;
    if (params->pipeline_cache_path) {
        gpu->pipeline_cache_path = vkf_strdup(params->pipeline_cache_path);
        VKF_CHECK_ALLOC(gpu->pipeline_cache_path);
    }
    if (params->spirv_cache_dir) {
        gpu->spirv_cache_dir = vkf_strdup(params->spirv_cache_dir);
        VKF_CHECK_ALLOC(gpu->spirv_cache_dir);
    }
    gpu->params.pipeline_cache_path = gpu->pipeline_cache_path;
    gpu->params.spirv_cache_dir = gpu->spirv_cache_dir;

    VKF_TRY(create_instance(gpu, params->validation, &gpu->instance));
    VKF_TRY(pick_device(gpu));
    query_info(gpu->phys, &gpu->info);
    if (!gpu->info.storage_16bit) {
        vkf_logf(gpu->log, VKF_LOG_ERROR,
                 "%s lacks storageBuffer16BitAccess, which vkflow's shaders need",
                 gpu->info.name);
        err = VKF_EUNSUPPORTED;
        goto fail;
    }
    VKF_TRY(create_device(gpu));

    /* One chunk holds 2^chunk_shift elements at 4 bytes each, so chunk
     * boundaries fall on the same element for every dtype. */
    uint64_t lim = gpu->info.max_storage_buffer_range;
    if (gpu->info.max_allocation_size && gpu->info.max_allocation_size < lim)
        lim = gpu->info.max_allocation_size;
    if (params->max_chunk_bytes && params->max_chunk_bytes < lim)
        lim = params->max_chunk_bytes;
    if (lim > (1ull << 32))
        lim = 1ull << 32;
    gpu->chunk_bytes = floor_pow2(lim);
    gpu->chunk_shift = 0;
    while ((4ull << gpu->chunk_shift) < gpu->chunk_bytes)
        gpu->chunk_shift++;

    vkGetPhysicalDeviceMemoryProperties(gpu->phys, &gpu->memprops);
    VKF_TRY(vkf_pipeline_cache_open(gpu));
    VKF_TRY(vkf_gpu_cmd_begin(gpu));
    vkf_logf(gpu->log, VKF_LOG_INFO, "using %s (%s, %s)", gpu->info.name,
             gpu->info.type, gpu->info.driver_name);
    *out = gpu;
    return 0;
fail:
    vkf_gpu_destroy(&gpu);
    return err;
}

void vkf_gpu_destroy(vkf_gpu **pgpu)
{
    vkf_gpu *gpu = pgpu ? *pgpu : NULL;
    if (!gpu)
        return;
    if (gpu->dev) {
        vkf_gpu_batches_destroy(gpu);
        gpu->recording = false;
        vkf_buffer_destroy(gpu, &gpu->staging);
        vkf_pipelines_destroy(gpu);
        vkf_pipeline_cache_close(gpu);
        vkf_mem_release_all(gpu);
        vkDestroyDevice(gpu->dev, NULL);
    }
    vkf_free(gpu->prof);
    if (gpu->messenger) {
        PFN_vkDestroyDebugUtilsMessengerEXT destroy =
            (PFN_vkDestroyDebugUtilsMessengerEXT)vkGetInstanceProcAddr(
                gpu->instance, "vkDestroyDebugUtilsMessengerEXT");
        if (destroy)
            destroy(gpu->instance, gpu->messenger, NULL);
    }
    if (gpu->instance)
        vkDestroyInstance(gpu->instance, NULL);
    vkf_free(gpu->pipeline_cache_path);
    vkf_free(gpu->spirv_cache_dir);
    vkf_free(gpu);
    *pgpu = NULL;
}

const vkf_gpu_device_info *vkf_gpu_info(const vkf_gpu *gpu)
{
    return &gpu->info;
}

long vkf_gpu_validation_messages(const vkf_gpu *gpu)
{
    return gpu->validation_messages;
}
