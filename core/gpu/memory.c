/*
 * Device memory: a first-fit suballocator over large VkDeviceMemory blocks,
 * buffers bound into them, and release deferred until the GPU is done.
 *
 * Why blocks: drivers limit the number of allocations (maxMemoryAllocationCount
 * can be 4096) and vkAllocateMemory is slow; a tensor-heavy graph makes
 * thousands of short-lived buffers.  Requests larger than half a block get a
 * dedicated allocation so one big tensor doesn't pin a mostly-empty block.
 */
#include <string.h>

#include "gpu/gpu_internal.h"

#define BLOCK_SIZE (256ull << 20)

typedef struct free_range {
    VkDeviceSize off, size;
} free_range;

struct vkf_mem_block {
    vkf_mem_block *next;
    VkDeviceMemory mem;
    VkDeviceSize size;
    vkf_mem_kind kind;
    uint32_t type;                 /* memory type index */
    bool dedicated;
    void *mapped;
    free_range *free;
    int nfree, free_cap;
    int live;
};

static int find_type(vkf_gpu *gpu, uint32_t bits, VkMemoryPropertyFlags want,
                     uint32_t *out)
{
    for (uint32_t i = 0; i < gpu->memprops.memoryTypeCount; i++) {
        if ((bits & (1u << i)) &&
            (gpu->memprops.memoryTypes[i].propertyFlags & want) == want) {
            *out = i;
            return 0;
        }
    }
    return VKF_EUNSUPPORTED;
}

static int pick_type(vkf_gpu *gpu, vkf_mem_kind kind, uint32_t bits,
                     uint32_t *out, bool *mappable)
{
    const VkMemoryPropertyFlags hv = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT |
                                     VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
    int err;
    if (kind == VKF_MEM_STAGING) {
        /* Cached host memory makes downloads fast; fall back to coherent. */
        err = find_type(gpu, bits, hv | VK_MEMORY_PROPERTY_HOST_CACHED_BIT, out);
        if (err < 0)
            err = find_type(gpu, bits, hv, out);
        *mappable = true;
        return err;
    }
    err = find_type(gpu, bits, VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT, out);
    if (err < 0)
        err = find_type(gpu, bits, 0, out);
    if (err == 0)
        *mappable = !gpu->params.force_staging &&
                    (gpu->memprops.memoryTypes[*out].propertyFlags & hv) == hv;
    return err;
}

static void block_free(vkf_gpu *gpu, vkf_mem_block *b)
{
    if (b->mapped)
        vkUnmapMemory(gpu->dev, b->mem);
    vkFreeMemory(gpu->dev, b->mem, NULL);
    gpu->mem_reserved -= b->size;
    gpu->mem_allocations--;
    vkf_free(b->free);
    vkf_free(b);
}

static int block_new(vkf_gpu *gpu, vkf_mem_kind kind, VkDeviceSize size,
                     uint32_t type, bool map, bool dedicated,
                     vkf_mem_block **out)
{
    int err = 0;
    vkf_mem_block *b = vkf_calloc(1, sizeof(*b));
    VKF_CHECK_ALLOC(b);
    VkMemoryAllocateInfo ai = {
        .sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO,
        .allocationSize = size,
        .memoryTypeIndex = type,
    };
    VkResult r = vkAllocateMemory(gpu->dev, &ai, NULL, &b->mem);
    if (r != VK_SUCCESS) {
        vkf_free(b);
        b = NULL;
        if (r == VK_ERROR_OUT_OF_DEVICE_MEMORY) {
            vkf_logf(gpu->log, VKF_LOG_ERROR,
                     "out of device memory allocating %.1f MiB (%.1f MiB in use,"
                     " %.1f MiB reserved)", size / 1048576.0,
                     gpu->mem_current / 1048576.0, gpu->mem_reserved / 1048576.0);
            return VKF_EDEVICE_OOM;
        }
        return vkf_gpu_vk_error(gpu, r, "vkAllocateMemory");
    }
    b->size = size;
    b->kind = kind;
    b->type = type;
    b->dedicated = dedicated;
    gpu->mem_reserved += size;
    gpu->mem_allocations++;
    if (map)
        VKF_VK(gpu, vkMapMemory(gpu->dev, b->mem, 0, VK_WHOLE_SIZE, 0, &b->mapped),
               "vkMapMemory");
    VKF_TRY(vkf_grow(&b->free, &b->free_cap, 1, sizeof(free_range)));
    b->free[0] = (free_range){0, size};
    b->nfree = 1;
    b->next = gpu->blocks;
    gpu->blocks = b;
    *out = b;
    return 0;
fail:
    if (b)
        block_free(gpu, b);
    return err;
}

static bool block_take(vkf_mem_block *b, VkDeviceSize size, VkDeviceSize align,
                       VkDeviceSize *off)
{
    /* Room for a split up front, so a failure leaves the list untouched. */
    if (vkf_grow(&b->free, &b->free_cap, b->nfree + 1, sizeof(free_range)) < 0)
        return false;
    for (int i = 0; i < b->nfree; i++) {
        free_range *f = &b->free[i];
        VkDeviceSize start = (f->off + align - 1) / align * align;
        VkDeviceSize end = f->off + f->size;
        if (start + size > end)
            continue;
        if (start > f->off) {
            /* Alignment padding at the front stays free as its own range,
             * the tail (if any) becomes a new one after it. */
            f->size = start - f->off;
            if (start + size < end) {
                memmove(&b->free[i + 2], &b->free[i + 1],
                        (size_t)(b->nfree - i - 1) * sizeof(free_range));
                b->free[i + 1] = (free_range){start + size, end - start - size};
                b->nfree++;
            }
        } else if (start + size < end) {
            f->off = start + size;
            f->size = end - f->off;
        } else {
            memmove(&b->free[i], &b->free[i + 1],
                    (size_t)(b->nfree - i - 1) * sizeof(free_range));
            b->nfree--;
        }
        *off = start;
        b->live++;
        return true;
    }
    return false;
}

static int block_give(vkf_mem_block *b, VkDeviceSize off, VkDeviceSize size)
{
    int i = 0;
    while (i < b->nfree && b->free[i].off < off)
        i++;
    bool merge_prev = i > 0 && b->free[i - 1].off + b->free[i - 1].size == off;
    bool merge_next = i < b->nfree && off + size == b->free[i].off;
    if (merge_prev && merge_next) {
        b->free[i - 1].size += size + b->free[i].size;
        memmove(&b->free[i], &b->free[i + 1],
                (size_t)(b->nfree - i - 1) * sizeof(free_range));
        b->nfree--;
    } else if (merge_prev) {
        b->free[i - 1].size += size;
    } else if (merge_next) {
        b->free[i].off = off;
        b->free[i].size += size;
    } else {
        int err = vkf_grow(&b->free, &b->free_cap, b->nfree + 1, sizeof(free_range));
        if (err < 0)
            return err;
        memmove(&b->free[i + 1], &b->free[i],
                (size_t)(b->nfree - i) * sizeof(free_range));
        b->free[i] = (free_range){off, size};
        b->nfree++;
    }
    b->live--;
    return 0;
}

static void buffer_release(vkf_gpu *gpu, vkf_buffer *b);

int vkf_buffer_create(vkf_gpu *gpu, vkf_mem_kind kind, VkDeviceSize size,
                      vkf_buffer **out)
{
    int err = 0;
    vkf_buffer *b = vkf_calloc(1, sizeof(*b));
    VKF_CHECK_ALLOC(b);
    b->kind = kind;
    b->size = size ? size : 4;
    VkBufferCreateInfo bci = {
        .sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
        .size = b->size,
        .usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT |
                 VK_BUFFER_USAGE_UNIFORM_TEXEL_BUFFER_BIT |
                 VK_BUFFER_USAGE_TRANSFER_SRC_BIT |
                 VK_BUFFER_USAGE_TRANSFER_DST_BIT,
        .sharingMode = VK_SHARING_MODE_EXCLUSIVE,
    };
    VKF_VK(gpu, vkCreateBuffer(gpu->dev, &bci, NULL, &b->buf), "vkCreateBuffer");
    VkMemoryRequirements req;
    vkGetBufferMemoryRequirements(gpu->dev, b->buf, &req);
    uint32_t type;
    bool mappable;
    if (pick_type(gpu, kind, req.memoryTypeBits, &type, &mappable) < 0) {
        vkf_logf(gpu->log, VKF_LOG_ERROR, "no suitable memory type for a buffer");
        err = VKF_EDEVICE;
        goto fail;
    }
    VkDeviceSize block_size = BLOCK_SIZE;
    if (gpu->info.max_allocation_size && gpu->info.max_allocation_size < block_size)
        block_size = gpu->info.max_allocation_size;

    vkf_mem_block *blk = NULL;
    VkDeviceSize off = 0;
    /* Staging buffers are few and long-lived: exact-size allocations. */
    if (req.size > block_size / 2 || kind == VKF_MEM_STAGING) {
        VKF_TRY(block_new(gpu, kind, req.size, type, mappable, true, &blk));
        if (!block_take(blk, req.size, 1, &off)) {
            gpu->blocks = blk->next;       /* block_new put it first */
            block_free(gpu, blk);
            err = VKF_ENOMEM;
            goto fail;
        }
    } else {
        for (vkf_mem_block *c = gpu->blocks; c && !blk; c = c->next)
            if (!c->dedicated && c->kind == kind && c->type == type &&
                block_take(c, req.size, req.alignment, &off))
                blk = c;
        if (!blk) {
            VKF_TRY(block_new(gpu, kind, block_size, type, mappable, false, &blk));
            if (!block_take(blk, req.size, req.alignment, &off)) {
                err = VKF_ENOMEM;
                goto fail;
            }
        }
    }
    b->block = blk;
    b->offset = off;
    b->size = req.size;
    if (blk->mapped)
        b->mapped = (char *)blk->mapped + off;
    gpu->mem_current += b->size;
    VkResult r = vkBindBufferMemory(gpu->dev, b->buf, blk->mem, off);
    if (r != VK_SUCCESS) {
        err = vkf_gpu_vk_error(gpu, r, "vkBindBufferMemory");
        buffer_release(gpu, b);    /* never used by the GPU: no deferral */
        return err;
    }
    if (gpu->mem_current > gpu->mem_peak)
        gpu->mem_peak = gpu->mem_current;
    *out = b;
    return 0;
fail:
    if (b && b->buf)
        vkDestroyBuffer(gpu->dev, b->buf, NULL);
    vkf_free(b);
    return err;
}

int vkf_buffer_view(vkf_gpu *gpu, vkf_buffer *b, vkf_texel_format fmt,
                    VkBufferView *out)
{
    static const VkFormat formats[] = {
        VK_FORMAT_R32_SFLOAT, VK_FORMAT_R32G32B32A32_SFLOAT,
        VK_FORMAT_R16_SFLOAT, VK_FORMAT_R16G16B16A16_SFLOAT,
        VK_FORMAT_R16_UINT, VK_FORMAT_R16G16B16A16_UINT,
    };
    _Static_assert(VKF_ARRAY_SIZE(formats) == VKF_ARRAY_SIZE(b->views), "views");
    int err = 0;
    if (!b->views[fmt]) {
        VkBufferViewCreateInfo ci = {
            .sType = VK_STRUCTURE_TYPE_BUFFER_VIEW_CREATE_INFO,
            .buffer = b->buf,
            .format = formats[fmt],
            .range = VK_WHOLE_SIZE,
        };
        VKF_VK(gpu, vkCreateBufferView(gpu->dev, &ci, NULL, &b->views[fmt]),
               "vkCreateBufferView");
    }
    *out = b->views[fmt];
fail:
    return err;
}

static void buffer_release(vkf_gpu *gpu, vkf_buffer *b)
{
    for (size_t i = 0; i < VKF_ARRAY_SIZE(b->views); i++)
        if (b->views[i])
            vkDestroyBufferView(gpu->dev, b->views[i], NULL);
    vkDestroyBuffer(gpu->dev, b->buf, NULL);
    vkf_mem_block *blk = b->block;
    if (blk) {
        gpu->mem_current -= b->size;
        /* A failed grow leaks the range but keeps the block consistent. */
        block_give(blk, b->offset, b->size);
        if (blk->live == 0 && (blk->dedicated || blk->kind == VKF_MEM_STAGING)) {
            vkf_mem_block **pp = &gpu->blocks;
            while (*pp != blk)
                pp = &(*pp)->next;
            *pp = blk->next;
            block_free(gpu, blk);
        }
    }
    vkf_free(b);
}

void vkf_buffer_destroy(vkf_gpu *gpu, vkf_buffer **pb)
{
    vkf_buffer *b = pb ? *pb : NULL;
    if (!b)
        return;
    *pb = NULL;
    if (vkf_gpu_busy(gpu)) {
        if (vkf_gpu_defer_release(gpu, b) == 0)
            return;
        /* No room to defer: wait for the GPU instead. */
        vkf_gpu_flush(gpu);
    }
    buffer_release(gpu, b);
}

void vkf_buffer_release_now(vkf_gpu *gpu, vkf_buffer *b)
{
    buffer_release(gpu, b);
}

void vkf_mem_release_all(vkf_gpu *gpu)
{
    while (gpu->blocks) {
        vkf_mem_block *b = gpu->blocks;
        gpu->blocks = b->next;
        if (b->live)
            vkf_logf(gpu->log, VKF_LOG_WARN,
                     "%d buffer(s) still alive at device destroy", b->live);
        block_free(gpu, b);
    }
}

void vkf_gpu_mem_stats_get(const vkf_gpu *gpu, vkf_gpu_mem_stats *out)
{
    out->current = gpu->mem_current;
    out->peak = gpu->mem_peak;
    out->reserved = gpu->mem_reserved;
    out->allocations = gpu->mem_allocations;
}

void vkf_gpu_mem_reset_peak(vkf_gpu *gpu)
{
    gpu->mem_peak = gpu->mem_current;
}
