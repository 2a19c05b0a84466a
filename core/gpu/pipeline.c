/*
 * Compute pipelines keyed by (shader, specialization constants), the
 * on-disk VkPipelineCache, and runtime GLSL compilation with a SPIR-V cache
 * keyed by a content hash.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <shaderc/shaderc.h>

#include "gpu/gpu_internal.h"

struct vkf_spirv_entry {
    uint64_t key;
    uint32_t *code;
    size_t words;
};

int vkf_pipeline_get(vkf_gpu *gpu, const vkf_shader_code *shader,
                     const uint32_t *spec, int nspec, int nbindings,
                     int ntexels, uint32_t push_size, vkf_pipeline **out)
{
    int err = 0;
    for (int i = 0; i < gpu->npipes; i++) {
        vkf_pipeline *p = gpu->pipes[i];
        if (p->shader == shader && p->nspec == nspec &&
            !memcmp(p->spec, spec, (size_t)nspec * sizeof(*spec))) {
            *out = p;
            return 0;
        }
    }
    VkShaderModule mod = VK_NULL_HANDLE;
    vkf_pipeline *p = vkf_calloc(1, sizeof(*p));
    VKF_CHECK_ALLOC(p);
    VKF_TRY(vkf_grow(&gpu->pipes, &gpu->pipes_cap, gpu->npipes + 1, sizeof(*gpu->pipes)));
    p->shader = shader;
    p->nspec = nspec;
    memcpy(p->spec, spec, (size_t)nspec * sizeof(*spec));
    p->nbindings = nbindings;
    p->ntexels = ntexels;
    p->push_size = push_size;

    VkDescriptorSetLayoutBinding binds[VKF_MAX_SLOTS * VKF_MAX_CHUNKS + 2];
    for (int i = 0; i < nbindings + ntexels; i++)
        binds[i] = (VkDescriptorSetLayoutBinding){
            .binding = (uint32_t)i,
            .descriptorType = i < nbindings ? VK_DESCRIPTOR_TYPE_STORAGE_BUFFER
                                            : VK_DESCRIPTOR_TYPE_UNIFORM_TEXEL_BUFFER,
            .descriptorCount = 1,
            .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT,
        };
    VkDescriptorSetLayoutCreateInfo dci = {
        .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO,
        .bindingCount = (uint32_t)(nbindings + ntexels),
        .pBindings = binds,
    };
    VKF_VK(gpu, vkCreateDescriptorSetLayout(gpu->dev, &dci, NULL, &p->dsl),
           "vkCreateDescriptorSetLayout");
    VkPushConstantRange pcr = {
        .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT,
        .size = push_size,
    };
    VkPipelineLayoutCreateInfo lci = {
        .sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO,
        .setLayoutCount = 1,
        .pSetLayouts = &p->dsl,
        .pushConstantRangeCount = push_size ? 1 : 0,
        .pPushConstantRanges = &pcr,
    };
    VKF_VK(gpu, vkCreatePipelineLayout(gpu->dev, &lci, NULL, &p->layout),
           "vkCreatePipelineLayout");
    VkShaderModuleCreateInfo smci = {
        .sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO,
        .codeSize = shader->words * 4,
        .pCode = shader->code,
    };
    VKF_VK(gpu, vkCreateShaderModule(gpu->dev, &smci, NULL, &mod),
           "vkCreateShaderModule");
    VkSpecializationMapEntry map[VKF_MAX_SPEC];
    for (int i = 0; i < nspec; i++)
        map[i] = (VkSpecializationMapEntry){(uint32_t)i, (uint32_t)i * 4, 4};
    VkSpecializationInfo si = {
        .mapEntryCount = (uint32_t)nspec,
        .pMapEntries = map,
        .dataSize = (size_t)nspec * 4,
        .pData = p->spec,
    };
    VkComputePipelineCreateInfo pci = {
        .sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO,
        .stage = {
            .sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO,
            .stage = VK_SHADER_STAGE_COMPUTE_BIT,
            .module = mod,
            .pName = "main",
            .pSpecializationInfo = nspec ? &si : NULL,
        },
        .layout = p->layout,
    };
    VKF_VK(gpu, vkCreateComputePipelines(gpu->dev, gpu->pcache, 1, &pci, NULL, &p->pipe),
           shader->name);
    vkDestroyShaderModule(gpu->dev, mod, NULL);
    gpu->pipes[gpu->npipes++] = p;
    *out = p;
    return 0;
fail:
    if (mod)
        vkDestroyShaderModule(gpu->dev, mod, NULL);
    if (p) {
        if (p->layout)
            vkDestroyPipelineLayout(gpu->dev, p->layout, NULL);
        if (p->dsl)
            vkDestroyDescriptorSetLayout(gpu->dev, p->dsl, NULL);
        vkf_free(p);
    }
    return err;
}

void vkf_pipelines_destroy(vkf_gpu *gpu)
{
    for (int i = 0; i < gpu->npipes; i++) {
        vkf_pipeline *p = gpu->pipes[i];
        vkDestroyPipeline(gpu->dev, p->pipe, NULL);
        vkDestroyPipelineLayout(gpu->dev, p->layout, NULL);
        vkDestroyDescriptorSetLayout(gpu->dev, p->dsl, NULL);
        vkf_free(p);
    }
    vkf_free(gpu->pipes);
    gpu->pipes = NULL;
    gpu->npipes = gpu->pipes_cap = 0;
    for (int i = 0; i < gpu->nspirv; i++)
        vkf_free(gpu->spirv[i].code);
    vkf_free(gpu->spirv);
    gpu->spirv = NULL;
    gpu->nspirv = gpu->spirv_cap = 0;
}

static int read_file(const char *path, void **data, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return errno == ENOENT ? VKF_ENOTFOUND : VKF_EIO;
    int err = VKF_EIO;
    char *buf = NULL;
    long n;
    if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0)
        goto done;
    buf = vkf_malloc((size_t)n + 1);
    if (!buf) {
        err = VKF_ENOMEM;
        goto done;
    }
    if (fread(buf, 1, (size_t)n, f) != (size_t)n)
        goto done;
    *data = buf;
    *size = (size_t)n;
    buf = NULL;
    err = 0;
done:
    vkf_free(buf);
    fclose(f);
    return err;
}

/* Write to a temporary name, then rename: readers never see half a file. */
static int write_file(const vkf_log *log, const char *path, const void *data,
                      size_t size)
{
    char *tmp = vkf_asprintf("%s.tmp", path);
    if (!tmp)
        return VKF_ENOMEM;
    int err = 0;
    FILE *f = fopen(tmp, "wb");
    if (!f || fwrite(data, 1, size, f) != size) {
        vkf_logf(log, VKF_LOG_WARN, "cannot write %s: %s", tmp, strerror(errno));
        err = VKF_EIO;
    }
    if (f && fclose(f) != 0)
        err = VKF_EIO;
    if (err == 0 && rename(tmp, path) != 0) {
        vkf_logf(log, VKF_LOG_WARN, "cannot rename %s: %s", tmp, strerror(errno));
        err = VKF_EIO;
    }
    if (err)
        remove(tmp);
    vkf_free(tmp);
    return err;
}

int vkf_pipeline_cache_open(vkf_gpu *gpu)
{
    int err = 0;
    void *data = NULL;
    size_t size = 0;
    if (gpu->pipeline_cache_path) {
        int rerr = read_file(gpu->pipeline_cache_path, &data, &size);
        if (rerr == VKF_ENOMEM)
            return rerr;
        /* The driver validates the header (vendor, device, UUID) and ignores
         * a cache made by another driver, so a stale file is harmless. */
        if (rerr == 0)
            vkf_logf(gpu->log, VKF_LOG_DEBUG, "pipeline cache: %zu bytes from %s",
                     size, gpu->pipeline_cache_path);
    }
    VkPipelineCacheCreateInfo ci = {
        .sType = VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO,
        .initialDataSize = size,
        .pInitialData = data,
    };
    VKF_VK(gpu, vkCreatePipelineCache(gpu->dev, &ci, NULL, &gpu->pcache),
           "vkCreatePipelineCache");
fail:
    vkf_free(data);
    return err;
}

void vkf_pipeline_cache_close(vkf_gpu *gpu)
{
    if (!gpu->pcache)
        return;
    size_t size = 0;
    void *data = NULL;
    if (gpu->pipeline_cache_path &&
        vkGetPipelineCacheData(gpu->dev, gpu->pcache, &size, NULL) == VK_SUCCESS &&
        size && (data = vkf_malloc(size)) &&
        vkGetPipelineCacheData(gpu->dev, gpu->pcache, &size, data) == VK_SUCCESS)
        write_file(gpu->log, gpu->pipeline_cache_path, data, size);
    vkf_free(data);
    vkDestroyPipelineCache(gpu->dev, gpu->pcache, NULL);
    gpu->pcache = VK_NULL_HANDLE;
}

/* FNV-1a, 64-bit: the cache key only needs to separate distinct sources. */
static uint64_t fnv1a(uint64_t h, const void *data, size_t n)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

static int remember(vkf_gpu *gpu, uint64_t key, const void *code, size_t words,
                    const uint32_t **spirv)
{
    int err = 0;
    uint32_t *copy = vkf_malloc(words * 4);
    VKF_CHECK_ALLOC(copy);
    memcpy(copy, code, words * 4);
    VKF_TRY(vkf_grow(&gpu->spirv, &gpu->spirv_cap, gpu->nspirv + 1, sizeof(*gpu->spirv)));
    gpu->spirv[gpu->nspirv++] = (struct vkf_spirv_entry){key, copy, words};
    *spirv = copy;
    return 0;
fail:
    vkf_free(copy);
    return err;
}

int vkf_gpu_compile_glsl(vkf_gpu *gpu, const char *name, const char *source,
                         const char *const *defines, const uint32_t **spirv,
                         size_t *words)
{
    int err = 0;
    shaderc_compiler_t comp = NULL;
    shaderc_compile_options_t opts = NULL;
    shaderc_compilation_result_t res = NULL;
    char *path = NULL;
    void *data = NULL;
    size_t size = 0;

    uint64_t key = fnv1a(0xcbf29ce484222325ull, source, strlen(source) + 1);
    for (int i = 0; defines && defines[i]; i++)
        key = fnv1a(key, defines[i], strlen(defines[i]) + 1);
    for (int i = 0; i < gpu->nspirv; i++) {
        if (gpu->spirv[i].key == key) {
            *spirv = gpu->spirv[i].code;
            *words = gpu->spirv[i].words;
            return 0;
        }
    }
    if (gpu->spirv_cache_dir) {
        path = vkf_asprintf("%s/%016llx.spv", gpu->spirv_cache_dir,
                            (unsigned long long)key);
        VKF_CHECK_ALLOC(path);
        int rerr = read_file(path, &data, &size);
        if (rerr == VKF_ENOMEM) {
            err = rerr;
            goto fail;
        }
        /* A truncated or foreign file is ignored and rewritten. */
        if (rerr == 0 && size >= 20 && size % 4 == 0 &&
            ((uint32_t *)data)[0] == 0x07230203) {
            err = remember(gpu, key, data, size / 4, spirv);
            if (err == 0)
                *words = size / 4;
            goto fail;    /* the common cleanup, on success too */
        }
    }

    comp = shaderc_compiler_initialize();
    opts = shaderc_compile_options_initialize();
    if (!comp || !opts) {
        err = VKF_ENOMEM;
        goto fail;
    }
    shaderc_compile_options_set_target_env(opts, shaderc_target_env_vulkan,
                                           shaderc_env_version_vulkan_1_2);
    shaderc_compile_options_set_optimization_level(opts,
                                                   shaderc_optimization_level_performance);
    for (int i = 0; defines && defines[i]; i++) {
        const char *eq = strchr(defines[i], '=');
        size_t nlen = eq ? (size_t)(eq - defines[i]) : strlen(defines[i]);
        const char *val = eq ? eq + 1 : "";
        shaderc_compile_options_add_macro_definition(opts, defines[i], nlen, val,
                                                     strlen(val));
    }
    res = shaderc_compile_into_spv(comp, source, strlen(source),
                                   shaderc_compute_shader, name, "main", opts);
    if (shaderc_result_get_compilation_status(res) != shaderc_compilation_status_success) {
        vkf_logf(gpu->log, VKF_LOG_ERROR, "GLSL compile of %s failed:\n%s", name,
                 shaderc_result_get_error_message(res));
        err = VKF_EINVAL;
        goto fail;
    }
    size = shaderc_result_get_length(res);
    VKF_TRY(remember(gpu, key, shaderc_result_get_bytes(res), size / 4, spirv));
    *words = size / 4;
    if (path) {
        mkdir(gpu->spirv_cache_dir, 0755);
        write_file(gpu->log, path, shaderc_result_get_bytes(res), size);
    }
fail:
    if (res)
        shaderc_result_release(res);
    if (opts)
        shaderc_compile_options_release(opts);
    if (comp)
        shaderc_compiler_release(comp);
    vkf_free(data);
    vkf_free(path);
    return err;
}
