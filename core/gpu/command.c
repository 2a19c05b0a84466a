/*
 * The command batch: ops record dispatches into one command buffer, which
 * is submitted when full, when the host needs results, or on flush.
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

static int batch_objects(vkf_gpu *gpu)
{
    int err = 0;
    VkCommandPoolCreateInfo cpci = {
        .sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
        .flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT,
        .queueFamilyIndex = gpu->queue_family,
    };
    VKF_VK(gpu, vkCreateCommandPool(gpu->dev, &cpci, NULL, &gpu->cmd_pool),
           "vkCreateCommandPool");
    VkCommandBufferAllocateInfo cbai = {
        .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
        .commandPool = gpu->cmd_pool,
        .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
        .commandBufferCount = 1,
    };
    VKF_VK(gpu, vkAllocateCommandBuffers(gpu->dev, &cbai, &gpu->cmd),
           "vkAllocateCommandBuffers");
    VkFenceCreateInfo fci = {.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
    VKF_VK(gpu, vkCreateFence(gpu->dev, &fci, NULL, &gpu->fence), "vkCreateFence");
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
    VKF_VK(gpu, vkCreateDescriptorPool(gpu->dev, &dpci, NULL, &gpu->desc_pool),
           "vkCreateDescriptorPool");
    if (gpu->params.profile && gpu->info.timestamps) {
        VkQueryPoolCreateInfo qci = {
            .sType = VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO,
            .queryType = VK_QUERY_TYPE_TIMESTAMP,
            .queryCount = VKF_BATCH_DISPATCHES + 1,
        };
        VKF_VK(gpu, vkCreateQueryPool(gpu->dev, &qci, NULL, &gpu->query_pool),
               "vkCreateQueryPool");
    }
fail:
    return err;
}

int vkf_gpu_cmd_begin(vkf_gpu *gpu)
{
    int err = 0;
    if (!gpu->cmd_pool)
        VKF_TRY(batch_objects(gpu));
    VkCommandBufferBeginInfo bi = {
        .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
        .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT,
    };
    VKF_VK(gpu, vkBeginCommandBuffer(gpu->cmd, &bi), "vkBeginCommandBuffer");
    if (gpu->query_pool) {
        vkCmdResetQueryPool(gpu->cmd, gpu->query_pool, 0, VKF_BATCH_DISPATCHES + 1);
        vkCmdWriteTimestamp(gpu->cmd, VK_PIPELINE_STAGE_TOP_OF_PIPE_BIT,
                            gpu->query_pool, 0);
    }
    gpu->recording = true;
    gpu->ndispatch = 0;
    gpu->epoch++;
    /* Work of the previous submission is complete (we waited on its
     * fence), but a fence orders nothing for later device accesses: make
     * its writes visible to this batch. */
    if (gpu->stats.dispatches)
        full_barrier(gpu);
fail:
    return err;
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

static void collect_timestamps(vkf_gpu *gpu)
{
    uint64_t ts[VKF_BATCH_DISPATCHES + 1];
    uint32_t n = (uint32_t)gpu->ndispatch + 1;
    if (vkGetQueryPoolResults(gpu->dev, gpu->query_pool, 0, n, sizeof(ts), ts,
                              sizeof(uint64_t),
                              VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT) !=
        VK_SUCCESS)
        return;
    /* Each dispatch's timestamp is taken when it (and all before it)
     * completed, so the difference to the previous one is its share. */
    double period = gpu->info.timestamp_period_ns * 1e-6;
    for (int i = 0; i < gpu->ndispatch; i++)
        add_profile(gpu, gpu->batch_ops[i],
                    (double)(ts[i + 1] - ts[i]) * period);
}

int vkf_gpu_flush(vkf_gpu *gpu)
{
    int err = 0;
    if (gpu->lost)
        return VKF_EDEVICE_LOST;
    if (!gpu->recording)
        VKF_TRY(vkf_gpu_cmd_begin(gpu));
    VKF_VK(gpu, vkEndCommandBuffer(gpu->cmd), "vkEndCommandBuffer");
    gpu->recording = false;
    VkSubmitInfo si = {
        .sType = VK_STRUCTURE_TYPE_SUBMIT_INFO,
        .commandBufferCount = 1,
        .pCommandBuffers = &gpu->cmd,
    };
    VKF_VK(gpu, vkQueueSubmit(gpu->queue, 1, &si, gpu->fence), "vkQueueSubmit");
    gpu->stats.submits++;
    VKF_VK(gpu, vkWaitForFences(gpu->dev, 1, &gpu->fence, VK_TRUE, UINT64_MAX),
           "waiting for GPU work");
    VKF_VK(gpu, vkResetFences(gpu->dev, 1, &gpu->fence), "vkResetFences");
    if (gpu->query_pool && gpu->ndispatch)
        collect_timestamps(gpu);
    vkResetDescriptorPool(gpu->dev, gpu->desc_pool, 0);
    vkResetCommandBuffer(gpu->cmd, 0);
    vkf_mem_free_deferred(gpu);
    VKF_TRY(vkf_gpu_cmd_begin(gpu));
fail:
    return err;
}

static void full_barrier(vkf_gpu *gpu)
{
    VkMemoryBarrier mb = {
        .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
        .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
        .dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT |
                         VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
    };
    vkCmdPipelineBarrier(gpu->cmd,
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
    vkCmdCopyBuffer(gpu->cmd, src, dst, 1, &bc);
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
        VKF_TRY(vkf_gpu_cmd_begin(gpu));
    if (gpu->ndispatch >= VKF_BATCH_DISPATCHES)
        VKF_TRY(vkf_gpu_flush(gpu));

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
        .descriptorPool = gpu->desc_pool,
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

    vkCmdBindPipeline(gpu->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, d->pipe->pipe);
    vkCmdBindDescriptorSets(gpu->cmd, VK_PIPELINE_BIND_POINT_COMPUTE,
                            d->pipe->layout, 0, 1, &set, 0, NULL);
    if (d->pipe->push_size)
        vkCmdPushConstants(gpu->cmd, d->pipe->layout, VK_SHADER_STAGE_COMPUTE_BIT,
                           0, d->pipe->push_size, d->push);
    uint32_t gx = d->groups[0], gy = d->groups[1] ? d->groups[1] : 1;
    uint32_t gz = d->groups[2] ? d->groups[2] : 1;
    /* 1-D grids beyond the 65535 limit fold into y; shaders linearise
     * gl_WorkGroupID with gl_NumWorkGroups.x. */
    if (gx > 65535 && gy == 1 && gz == 1) {
        gy = (gx + 65535 - 1) / 65535;
        gx = (gx + gy - 1) / gy;
    }
    vkCmdDispatch(gpu->cmd, gx, gy, gz);
    if (gpu->query_pool)
        vkCmdWriteTimestamp(gpu->cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT,
                            gpu->query_pool, (uint32_t)gpu->ndispatch + 1);
    gpu->batch_ops[gpu->ndispatch++] = d->op;
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
