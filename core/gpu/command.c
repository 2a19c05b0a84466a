/*
 * The command batches: ops record dispatches into the current command
 * buffer; a full one is submitted without waiting and recording goes on in
 * the other (the CPU records while the device runs); flush, or the host
 * needing results, submits and waits for both.
 *
 * Barriers come from tracked buffer state.  Every barrier (and submit)
 * starts a new epoch; a buffer remembers the epoch of its last read and
 * write.  A dispatch needs a barrier only if it reads or writes a buffer
 * written in the current epoch, or writes one read in it (RAW, WAW, WAR).
 * Independent dispatches — e.g. the Q, K and V projections — therefore run
 * without barriers between them.
 */
#include <string.h>

#include "gpu/gpu_internal.h"

static void full_barrier(vkf_gpu *gpu);

static vkf_batch *cur(vkf_gpu *gpu)
{
    return &gpu->batches[gpu->cur];
}

static int batch_objects(vkf_gpu *gpu, vkf_batch *b)
{
    int err = 0;
    VkCommandBufferAllocateInfo cbai = {
        .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
        .commandPool = gpu->cmd_pool,
        .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
        .commandBufferCount = 1,
    };
    VKF_VK(gpu, vkAllocateCommandBuffers(gpu->dev, &cbai, &b->cmd),
           "vkAllocateCommandBuffers");
    VkFenceCreateInfo fci = {.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
    VKF_VK(gpu, vkCreateFence(gpu->dev, &fci, NULL, &b->fence), "vkCreateFence");
    VkDescriptorPoolSize ps[2] = {
        {VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
         VKF_BATCH_DISPATCHES * VKF_MAX_SLOTS * VKF_MAX_CHUNKS},
        {VK_DESCRIPTOR_TYPE_UNIFORM_TEXEL_BUFFER, VKF_BATCH_DISPATCHES * 2},
    };
    VkDescriptorPoolCreateInfo dpci = {
        .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO,
        .maxSets = VKF_BATCH_DISPATCHES,
        .poolSizeCount = 2,
        .pPoolSizes = ps,
    };
    VKF_VK(gpu, vkCreateDescriptorPool(gpu->dev, &dpci, NULL, &b->desc_pool),
           "vkCreateDescriptorPool");
    if (gpu->params.profile && gpu->info.timestamps) {
        VkQueryPoolCreateInfo qci = {
            .sType = VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO,
            .queryType = VK_QUERY_TYPE_TIMESTAMP,
            .queryCount = VKF_BATCH_DISPATCHES + 1,
        };
        VKF_VK(gpu, vkCreateQueryPool(gpu->dev, &qci, NULL, &b->query_pool),
               "vkCreateQueryPool");
    }
fail:
    return err;
}

static int begin_batch(vkf_gpu *gpu)
{
    int err = 0;
    if (!gpu->cmd_pool) {
        VkCommandPoolCreateInfo cpci = {
            .sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
            .flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT,
            .queueFamilyIndex = gpu->queue_family,
        };
        VKF_VK(gpu, vkCreateCommandPool(gpu->dev, &cpci, NULL, &gpu->cmd_pool),
               "vkCreateCommandPool");
        for (int i = 0; i < 2; i++)
            VKF_TRY(batch_objects(gpu, &gpu->batches[i]));
    }
    vkf_batch *b = cur(gpu);
    VkCommandBufferBeginInfo bi = {
        .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
        .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT,
    };
    VKF_VK(gpu, vkBeginCommandBuffer(b->cmd, &bi), "vkBeginCommandBuffer");
    if (b->query_pool) {
        vkCmdResetQueryPool(b->cmd, b->query_pool, 0, VKF_BATCH_DISPATCHES + 1);
        vkCmdWriteTimestamp(b->cmd, VK_PIPELINE_STAGE_TOP_OF_PIPE_BIT, b->query_pool, 0);
    }
    gpu->recording = true;
    b->ndispatch = 0;
    gpu->epoch++;
    /* Earlier submissions may still run, and even a waited-for fence
     * orders nothing for later device accesses: make their writes visible
     * to this batch. */
    if (gpu->stats.dispatches)
        full_barrier(gpu);
fail:
    return err;
}

int vkf_gpu_cmd_begin(vkf_gpu *gpu)
{
    return begin_batch(gpu);
}

static void add_profile(vkf_gpu *gpu, const char *op, double ms)
{
    for (int i = 0; i < gpu->nprof; i++) {
        if (gpu->prof[i].op == op || !strcmp(gpu->prof[i].op, op)) {
            gpu->prof[i].ms += ms;
            gpu->prof[i].dispatches++;
            return;
        }
    }
    if (vkf_grow(&gpu->prof, &gpu->prof_cap, gpu->nprof + 1, sizeof(*gpu->prof)) < 0)
        return;
    gpu->prof[gpu->nprof++] = (vkf_prof_entry){op, ms, 1};
}

static void collect_timestamps(vkf_gpu *gpu, vkf_batch *b)
{
    uint64_t ts[VKF_BATCH_DISPATCHES + 1];
    uint32_t n = (uint32_t)b->ndispatch + 1;
    if (vkGetQueryPoolResults(gpu->dev, b->query_pool, 0, n, sizeof(ts), ts,
                              sizeof(uint64_t),
                              VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT) !=
        VK_SUCCESS)
        return;
    /* Each dispatch's timestamp is taken when it (and all before it)
     * completed, so the difference to the previous one is its share. */
    double period = gpu->info.timestamp_period_ns * 1e-6;
    for (int i = 0; i < b->ndispatch; i++)
        add_profile(gpu, b->ops[i], (double)(ts[i + 1] - ts[i]) * period);
}

static int submit(vkf_gpu *gpu)
{
    int err = 0;
    vkf_batch *b = cur(gpu);
    VKF_VK(gpu, vkEndCommandBuffer(b->cmd), "vkEndCommandBuffer");
    gpu->recording = false;
    VkSubmitInfo si = {
        .sType = VK_STRUCTURE_TYPE_SUBMIT_INFO,
        .commandBufferCount = 1,
        .pCommandBuffers = &b->cmd,
    };
    VKF_VK(gpu, vkQueueSubmit(gpu->queue, 1, &si, b->fence), "vkQueueSubmit");
    b->pending = true;
    gpu->stats.submits++;
fail:
    return err;
}

/* Waits for a submitted batch, then recycles it. */
static int retire(vkf_gpu *gpu, vkf_batch *b)
{
    int err = 0;
    if (!b->pending)
        return 0;
    VKF_VK(gpu, vkWaitForFences(gpu->dev, 1, &b->fence, VK_TRUE, UINT64_MAX),
           "waiting for GPU work");
    VKF_VK(gpu, vkResetFences(gpu->dev, 1, &b->fence), "vkResetFences");
    b->pending = false;
    if (b->query_pool && b->ndispatch)
        collect_timestamps(gpu, b);
    b->ndispatch = 0;
    vkResetDescriptorPool(gpu->dev, b->desc_pool, 0);
    vkResetCommandBuffer(b->cmd, 0);
    for (int i = 0; i < b->ndeferred; i++)
        vkf_buffer_release_now(gpu, b->deferred[i]);
    b->ndeferred = 0;
fail:
    return err;
}

int vkf_gpu_flush(vkf_gpu *gpu)
{
    int err = 0;
    if (gpu->lost)
        return VKF_EDEVICE_LOST;
    if (!gpu->recording)
        VKF_TRY(begin_batch(gpu));
    VKF_TRY(submit(gpu));
    /* The other batch was submitted first: retire it first. */
    VKF_TRY(retire(gpu, &gpu->batches[1 - gpu->cur]));
    VKF_TRY(retire(gpu, cur(gpu)));
    VKF_TRY(begin_batch(gpu));
fail:
    return err;
}

/* The current batch is full: submit it and go on recording in the other
 * one once that has finished. */
static int rotate(vkf_gpu *gpu)
{
    int err = 0;
    VKF_TRY(submit(gpu));
    gpu->cur = 1 - gpu->cur;
    VKF_TRY(retire(gpu, cur(gpu)));
    VKF_TRY(begin_batch(gpu));
fail:
    return err;
}

bool vkf_gpu_busy(const vkf_gpu *gpu)
{
    const vkf_batch *b = &gpu->batches[gpu->cur];
    return (gpu->recording && b->ndispatch > 0) || gpu->batches[0].pending ||
           gpu->batches[1].pending;
}

int vkf_gpu_defer_release(vkf_gpu *gpu, vkf_buffer *buf)
{
    vkf_batch *b = cur(gpu);
    int err = vkf_grow(&b->deferred, &b->deferred_cap, b->ndeferred + 1,
                       sizeof(*b->deferred));
    if (err == 0)
        b->deferred[b->ndeferred++] = buf;
    return err;
}

void vkf_gpu_batches_destroy(vkf_gpu *gpu)
{
    if (gpu->recording && cur(gpu)->ndispatch && !gpu->lost)
        vkf_gpu_flush(gpu);
    vkDeviceWaitIdle(gpu->dev);
    for (int i = 0; i < 2; i++) {
        vkf_batch *b = &gpu->batches[i];
        for (int k = 0; k < b->ndeferred; k++)
            vkf_buffer_release_now(gpu, b->deferred[k]);
        vkf_free(b->deferred);
        if (b->query_pool)
            vkDestroyQueryPool(gpu->dev, b->query_pool, NULL);
        if (b->desc_pool)
            vkDestroyDescriptorPool(gpu->dev, b->desc_pool, NULL);
        if (b->fence)
            vkDestroyFence(gpu->dev, b->fence, NULL);
        *b = (vkf_batch){0};
    }
    if (gpu->cmd_pool)
        vkDestroyCommandPool(gpu->dev, gpu->cmd_pool, NULL);
    gpu->cmd_pool = VK_NULL_HANDLE;
}

static void full_barrier(vkf_gpu *gpu)
{
    VkMemoryBarrier mb = {
        .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
        .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
        .dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT |
                         VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
    };
    vkCmdPipelineBarrier(cur(gpu)->cmd,
                         VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT |
                             VK_PIPELINE_STAGE_TRANSFER_BIT,
                         VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT |
                             VK_PIPELINE_STAGE_TRANSFER_BIT,
                         0, 1, &mb, 0, NULL, 0, NULL);
    gpu->epoch++;
    gpu->stats.barriers++;
}

int vkf_gpu_one_shot_copy(vkf_gpu *gpu, VkBuffer src, VkDeviceSize src_off,
                          VkBuffer dst, VkDeviceSize dst_off, VkDeviceSize size)
{
    int err = 0;
    if (!gpu->recording)
        VKF_TRY(vkf_gpu_cmd_begin(gpu));
    full_barrier(gpu);
    VkBufferCopy bc = {src_off, dst_off, size};
    vkCmdCopyBuffer(cur(gpu)->cmd, src, dst, 1, &bc);
    full_barrier(gpu);
    VKF_TRY(vkf_gpu_flush(gpu));
fail:
    return err;
}

int vkf_gpu_tensor_spec(vkf_gpu *gpu, vkf_tensor *const *slots, int n,
                        uint32_t *spec)
{
    int k = 0;
    for (int i = 0; i < VKF_MAX_SLOTS; i++) {
        spec[k++] = i < n ? (uint32_t)slots[i]->dtype : 0;
        spec[k++] = i < n ? (uint32_t)slots[i]->st->nchunks : 1;
    }
    spec[k++] = (uint32_t)gpu->chunk_shift;
    return k;
}

static bool written_now(const vkf_gpu *gpu, const vkf_tensor *t)
{
    for (int c = 0; c < t->st->nchunks; c++)
        if (t->st->chunks[c]->write_epoch == gpu->epoch)
            return true;
    return false;
}

static bool read_now(const vkf_gpu *gpu, const vkf_tensor *t)
{
    for (int c = 0; c < t->st->nchunks; c++)
        if (t->st->chunks[c]->read_epoch == gpu->epoch)
            return true;
    return false;
}

int vkf_gpu_dispatch(vkf_gpu *gpu, const vkf_dispatch *d)
{
    int err = 0;
    if (gpu->lost)
        return VKF_EDEVICE_LOST;
    if (!gpu->recording)
        VKF_TRY(begin_batch(gpu));
    if (cur(gpu)->ndispatch >= VKF_BATCH_DISPATCHES)
        VKF_TRY(rotate(gpu));
    vkf_batch *batch = cur(gpu);

    bool need = false;
    for (int i = 0; i < d->nreads && !need; i++)
        need = written_now(gpu, d->reads[i]);
    for (int i = 0; i < d->ntexels && !need; i++)
        need = written_now(gpu, d->texels[i]);
    for (int i = 0; i < d->nwrites && !need; i++)
        need = written_now(gpu, d->writes[i]) || read_now(gpu, d->writes[i]);
    if (need)
        full_barrier(gpu);

    VkDescriptorSet set;
    VkDescriptorSetAllocateInfo dsai = {
        .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO,
        .descriptorPool = batch->desc_pool,
        .descriptorSetCount = 1,
        .pSetLayouts = &d->pipe->dsl,
    };
    VKF_VK(gpu, vkAllocateDescriptorSets(gpu->dev, &dsai, &set),
           "vkAllocateDescriptorSets");
    VkDescriptorBufferInfo infos[VKF_MAX_SLOTS * VKF_MAX_CHUNKS];
    VkBufferView views[2];
    VkWriteDescriptorSet writes[VKF_MAX_SLOTS * VKF_MAX_CHUNKS + 2];
    int nslots = d->nwrites + d->nreads;
    int nb = 0;
    for (int s = 0; s < nslots; s++) {
        vkf_tensor *t = s < d->nwrites ? d->writes[s] : d->reads[s - d->nwrites];
        for (int c = 0; c < VKF_MAX_CHUNKS; c++) {
            /* Unused chunk bindings repeat chunk 0 so every binding is valid. */
            vkf_buffer *b = t->st->chunks[c < t->st->nchunks ? c : 0];
            infos[nb] = (VkDescriptorBufferInfo){b->buf, 0, VK_WHOLE_SIZE};
            writes[nb] = (VkWriteDescriptorSet){
                .sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET,
                .dstSet = set,
                .dstBinding = (uint32_t)nb,
                .descriptorCount = 1,
                .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
                .pBufferInfo = &infos[nb],
            };
            nb++;
        }
    }
    if (nb != d->pipe->nbindings || d->ntexels != d->pipe->ntexels) {
        vkf_logf(gpu->log, VKF_LOG_ERROR, "%s: %d+%d bindings given, pipeline has %d+%d",
                 d->op, nb, d->ntexels, d->pipe->nbindings, d->pipe->ntexels);
        return VKF_EINVAL;
    }
    for (int i = 0; i < d->ntexels; i++) {
        vkf_tensor *t = d->texels[i];
        VKF_REQUIRE(gpu, t->st->nchunks == 1);
        VKF_TRY(vkf_buffer_view(gpu, t->st->chunks[0], d->texel_formats[i], &views[i]));
        writes[nb] = (VkWriteDescriptorSet){
            .sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET,
            .dstSet = set,
            .dstBinding = (uint32_t)nb,
            .descriptorCount = 1,
            .descriptorType = VK_DESCRIPTOR_TYPE_UNIFORM_TEXEL_BUFFER,
            .pTexelBufferView = &views[i],
        };
        nb++;
        t->st->chunks[0]->read_epoch = gpu->epoch;
    }
    vkUpdateDescriptorSets(gpu->dev, (uint32_t)nb, writes, 0, NULL);

    for (int s = 0; s < nslots; s++) {
        vkf_tensor *t = s < d->nwrites ? d->writes[s] : d->reads[s - d->nwrites];
        for (int c = 0; c < t->st->nchunks; c++) {
            if (s < d->nwrites)
                t->st->chunks[c]->write_epoch = gpu->epoch;
            else
                t->st->chunks[c]->read_epoch = gpu->epoch;
        }
    }

    vkCmdBindPipeline(batch->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, d->pipe->pipe);
    vkCmdBindDescriptorSets(batch->cmd, VK_PIPELINE_BIND_POINT_COMPUTE,
                            d->pipe->layout, 0, 1, &set, 0, NULL);
    if (d->pipe->push_size)
        vkCmdPushConstants(batch->cmd, d->pipe->layout, VK_SHADER_STAGE_COMPUTE_BIT,
                           0, d->pipe->push_size, d->push);
    uint32_t gx = d->groups[0], gy = d->groups[1] ? d->groups[1] : 1;
    uint32_t gz = d->groups[2] ? d->groups[2] : 1;
    /* 1-D grids beyond the 65535 limit fold into y; shaders linearise
     * gl_WorkGroupID with gl_NumWorkGroups.x. */
    if (gx > 65535 && gy == 1 && gz == 1) {
        gy = (gx + 65535 - 1) / 65535;
        gx = (gx + gy - 1) / gy;
    }
    vkCmdDispatch(batch->cmd, gx, gy, gz);
    if (batch->query_pool)
        vkCmdWriteTimestamp(batch->cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT,
                            batch->query_pool, (uint32_t)batch->ndispatch + 1);
    batch->ops[batch->ndispatch++] = d->op;
    gpu->stats.dispatches++;
fail:
    return err;
}

int vkf_gpu_profile_get(const vkf_gpu *gpu, vkf_gpu_op_time *out, int cap)
{
    for (int i = 0; i < gpu->nprof && i < cap; i++)
        out[i] = (vkf_gpu_op_time){gpu->prof[i].op, gpu->prof[i].ms,
                                   gpu->prof[i].dispatches};
    return gpu->nprof;
}

void vkf_gpu_batch_stats_get(const vkf_gpu *gpu, vkf_gpu_batch_stats *out)
{
    *out = gpu->stats;
}

void vkf_gpu_profile_reset(vkf_gpu *gpu)
{
    gpu->nprof = 0;
}
