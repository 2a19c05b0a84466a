/*
 * Tensors: reference-counted views over chunked storage, host transfers.
 *
 * Storage is split into chunks of 2^chunk_shift elements (one VkBuffer
 * each, at most maxStorageBufferRange bytes at 4 bytes per element), so a
 * tensor may exceed the largest binding.  Shaders see each tensor as up to
 * VKF_MAX_CHUNKS bindings and index across them (shaders/common/tensor.glsl).
 */
#include <math.h>
#include <string.h>

#include "gpu/gpu_internal.h"
#include "gpu/half.h"

static void storage_unref(vkf_storage **pst)
{
    vkf_storage *st = *pst;
    *pst = NULL;
    if (!st || --st->refs > 0)
        return;
    for (int c = 0; c < st->nchunks; c++)
        vkf_buffer_destroy(st->gpu, &st->chunks[c]);
    vkf_free(st);
}

static void contiguous_strides(vkf_tensor *t)
{
    int64_t s = 1;
    for (int d = t->ndim - 1; d >= 0; d--) {
        t->strides[d] = s;
        s *= t->shape[d];
    }
}

int vkf_tensor_create(vkf_gpu *gpu, vkf_dtype dtype, int ndim,
                      const int64_t *shape, vkf_tensor **out)
{
    int err = 0;
    vkf_tensor *t = NULL;
    vkf_storage *st = NULL;
    VKF_REQUIRE(gpu, ndim >= 1 && ndim <= VKF_TENSOR_MAX_DIMS);
    VKF_REQUIRE(gpu, dtype >= VKF_DTYPE_F32 && dtype <= VKF_DTYPE_BF16);
    uint64_t numel = 1;
    for (int d = 0; d < ndim; d++) {
        VKF_REQUIRE(gpu, shape[d] >= 1);
        numel *= (uint64_t)shape[d];
    }
    uint64_t chunk_elems = 1ull << gpu->chunk_shift;
    uint64_t nchunks = (numel + chunk_elems - 1) / chunk_elems;
    if (numel >= (1ull << 32) || nchunks > VKF_MAX_CHUNKS) {
        vkf_logf(gpu->log, VKF_LOG_ERROR,
                 "tensor of %llu elements exceeds %d chunks of %llu elements "
                 "(or 2^32 elements)", (unsigned long long)numel, VKF_MAX_CHUNKS,
                 (unsigned long long)chunk_elems);
        err = VKF_EUNSUPPORTED;
        goto fail;
    }
    st = vkf_calloc(1, sizeof(*st));
    VKF_CHECK_ALLOC(st);
    st->refs = 1;
    st->gpu = gpu;
    st->dtype = dtype;
    st->numel = numel;
    for (uint64_t c = 0; c < nchunks; c++) {
        uint64_t n = numel - c * chunk_elems;
        if (n > chunk_elems)
            n = chunk_elems;
        /* Round up to 16 bytes so vec4 loads of a tail stay in bounds. */
        uint64_t bytes = (n * vkf_dtype_size(dtype) + 15) & ~15ull;
        VKF_TRY(vkf_buffer_create(gpu, VKF_MEM_DEVICE, bytes, &st->chunks[c]));
        st->nchunks++;
    }
    t = vkf_calloc(1, sizeof(*t));
    VKF_CHECK_ALLOC(t);
    t->refs = 1;
    t->st = st;
    t->dtype = dtype;
    t->ndim = ndim;
    memcpy(t->shape, shape, (size_t)ndim * sizeof(*shape));
    contiguous_strides(t);
    *out = t;
    return 0;
fail:
    storage_unref(&st);
    return err;
}

vkf_tensor *vkf_tensor_ref(vkf_tensor *t)
{
    t->refs++;
    return t;
}

void vkf_tensor_unref(vkf_tensor **pt)
{
    vkf_tensor *t = pt ? *pt : NULL;
    if (!t)
        return;
    *pt = NULL;
    if (--t->refs > 0)
        return;
    storage_unref(&t->st);
    vkf_free(t);
}

int vkf_tensor_ndim(const vkf_tensor *t) { return t->ndim; }
const int64_t *vkf_tensor_shape(const vkf_tensor *t) { return t->shape; }
const int64_t *vkf_tensor_strides(const vkf_tensor *t) { return t->strides; }
vkf_dtype vkf_tensor_dtype(const vkf_tensor *t) { return t->dtype; }

int64_t vkf_tensor_numel(const vkf_tensor *t)
{
    int64_t n = 1;
    for (int d = 0; d < t->ndim; d++)
        n *= t->shape[d];
    return n;
}

bool vkf_tensor_is_contiguous(const vkf_tensor *t)
{
    int64_t s = 1;
    for (int d = t->ndim - 1; d >= 0; d--) {
        if (t->shape[d] != 1 && t->strides[d] != s)
            return false;
        s *= t->shape[d];
    }
    return true;
}

static int view_of(vkf_tensor *t, vkf_tensor **out)
{
    vkf_tensor *v = vkf_malloc(sizeof(*v));
    if (!v)
        return VKF_ENOMEM;
    *v = *t;
    v->refs = 1;
    v->st->refs++;
    *out = v;
    return 0;
}

int vkf_tensor_slice(vkf_tensor *t, int dim, int64_t start, int64_t len,
                     vkf_tensor **out)
{
    int err = 0;
    vkf_gpu *gpu = t->st->gpu;
    VKF_REQUIRE(gpu, dim >= 0 && dim < t->ndim);
    VKF_REQUIRE(gpu, start >= 0 && len >= 1 && start + len <= t->shape[dim]);
    VKF_TRY(view_of(t, out));
    (*out)->shape[dim] = len;
    (*out)->offset += start * t->strides[dim];
fail:
    return err;
}

int vkf_tensor_permute(vkf_tensor *t, const int *perm, vkf_tensor **out)
{
    int err = 0;
    vkf_gpu *gpu = t->st->gpu;
    unsigned seen = 0;
    for (int d = 0; d < t->ndim; d++) {
        VKF_REQUIRE(gpu, perm[d] >= 0 && perm[d] < t->ndim);
        VKF_REQUIRE(gpu, !(seen & (1u << perm[d])));
        seen |= 1u << perm[d];
    }
    VKF_TRY(view_of(t, out));
    for (int d = 0; d < t->ndim; d++) {
        (*out)->shape[d] = t->shape[perm[d]];
        (*out)->strides[d] = t->strides[perm[d]];
    }
fail:
    return err;
}

int vkf_tensor_reshape(vkf_tensor *t, int ndim, const int64_t *shape,
                       vkf_tensor **out)
{
    int err = 0;
    vkf_gpu *gpu = t->st->gpu;
    VKF_REQUIRE(gpu, ndim >= 1 && ndim <= VKF_TENSOR_MAX_DIMS);
    VKF_REQUIRE(gpu, vkf_tensor_is_contiguous(t));
    int64_t n = 1;
    for (int d = 0; d < ndim; d++)
        n *= shape[d];
    VKF_REQUIRE(gpu, n == vkf_tensor_numel(t));
    VKF_TRY(view_of(t, out));
    (*out)->ndim = ndim;
    memcpy((*out)->shape, shape, (size_t)ndim * sizeof(*shape));
    contiguous_strides(*out);
fail:
    return err;
}

static void to_storage(vkf_dtype dt, const float *src, void *dst, size_t n)
{
    if (dt == VKF_DTYPE_F32) {
        memcpy(dst, src, n * 4);
    } else if (dt == VKF_DTYPE_F16) {
        uint16_t *h = dst;
        for (size_t i = 0; i < n; i++)
            h[i] = vkf_f32_to_f16(src[i]);
    } else {
        uint16_t *h = dst;
        for (size_t i = 0; i < n; i++)
            h[i] = vkf_f32_to_bf16(src[i]);
    }
}

static void from_storage(vkf_dtype dt, const void *src, float *dst, size_t n)
{
    if (dt == VKF_DTYPE_F32) {
        memcpy(dst, src, n * 4);
    } else if (dt == VKF_DTYPE_F16) {
        const uint16_t *h = src;
        for (size_t i = 0; i < n; i++)
            dst[i] = vkf_f16_to_f32(h[i]);
    } else {
        const uint16_t *h = src;
        for (size_t i = 0; i < n; i++)
            dst[i] = vkf_bf16_to_f32(h[i]);
    }
}

#define STAGING_BYTES (32ull << 20)

static int ensure_staging(vkf_gpu *gpu)
{
    if (gpu->staging)
        return 0;
    return vkf_buffer_create(gpu, VKF_MEM_STAGING, STAGING_BYTES, &gpu->staging);
}

/*
 * Moves elements [first, first+count) of storage to or from host memory:
 * `raw` is in the storage dtype, else `f` is floats converted on the way.
 */
static int transfer(vkf_tensor *t, bool up, uint64_t first, uint64_t count,
                    float *f, const void *raw)
{
    int err = 0;
    vkf_gpu *gpu = t->st->gpu;
    size_t es = vkf_dtype_size(t->dtype);
    uint64_t chunk_elems = 1ull << gpu->chunk_shift;
    /* The GPU may still use the memory: finish recorded work first. */
    if (vkf_gpu_busy(gpu))
        VKF_TRY(vkf_gpu_flush(gpu));
    if (!t->st->chunks[0]->mapped)
        VKF_TRY(ensure_staging(gpu));
    uint64_t done = 0;
    while (done < count) {
        uint64_t e = first + done;
        vkf_buffer *b = t->st->chunks[e / chunk_elems];
        uint64_t in_chunk = e % chunk_elems;
        uint64_t n = count - done;
        if (n > chunk_elems - in_chunk)
            n = chunk_elems - in_chunk;
        if (!b->mapped && n > STAGING_BYTES / es)
            n = STAGING_BYTES / es;
        char *dst = b->mapped ? (char *)b->mapped + in_chunk * es
                              : (char *)gpu->staging->mapped;
        if (up) {
            if (raw)
                memcpy(dst, (const char *)raw + done * es, n * es);
            else
                to_storage(t->dtype, f + done, dst, n);
            if (!b->mapped)
                VKF_TRY(vkf_gpu_one_shot_copy(gpu, gpu->staging->buf, 0, b->buf,
                                              in_chunk * es, n * es));
        } else {
            if (!b->mapped)
                VKF_TRY(vkf_gpu_one_shot_copy(gpu, b->buf, in_chunk * es,
                                              gpu->staging->buf, 0, n * es));
            from_storage(t->dtype, dst, f + done, n);
        }
        done += n;
    }
fail:
    return err;
}

int vkf_tensor_upload(vkf_tensor *t, const float *data)
{
    int err = 0;
    vkf_gpu *gpu = t->st->gpu;
    VKF_REQUIRE(gpu, vkf_tensor_is_contiguous(t));
    err = transfer(t, true, (uint64_t)t->offset, (uint64_t)vkf_tensor_numel(t),
                   (float *)data, NULL);
fail:
    return err;
}

int vkf_tensor_upload_raw(vkf_tensor *t, const void *data, size_t bytes)
{
    int err = 0;
    vkf_gpu *gpu = t->st->gpu;
    VKF_REQUIRE(gpu, vkf_tensor_is_contiguous(t));
    VKF_REQUIRE(gpu, bytes == (size_t)vkf_tensor_numel(t) * vkf_dtype_size(t->dtype));
    err = transfer(t, true, (uint64_t)t->offset, (uint64_t)vkf_tensor_numel(t),
                   NULL, data);
fail:
    return err;
}

int vkf_tensor_download(vkf_tensor *t, float *data)
{
    int err = 0;
    vkf_tensor *c = NULL;
    VKF_TRY(vkf_op_contiguous(t->st->gpu, t, &c));
    err = transfer(c, false, (uint64_t)c->offset, (uint64_t)vkf_tensor_numel(c),
                   data, NULL);
fail:
    vkf_tensor_unref(&c);
    return err;
}
