/*
 * Reflects every embedded SPIR-V module: bindings (storage buffers and
 * uniform texel buffers) and the push-constant block size must match the
 * host's table for the op (core/gpu/ops/op_util.h: vkf_shader_layout), and
 * every module's push block must fit the 128 bytes Vulkan guarantees.
 * Needs no device.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpu/ops/op_util.h"

static int failures;

#define EXPECT(cond, ...)                                                     \
    do {                                                                      \
        if (!(cond)) {                                                        \
            fprintf(stderr, __VA_ARGS__);                                     \
            fputc('\n', stderr);                                              \
            failures++;                                                       \
        }                                                                     \
    } while (0)

enum {
    OP_TYPE_INT = 21, OP_TYPE_FLOAT = 22, OP_TYPE_VECTOR = 23, OP_TYPE_ARRAY = 28,
    OP_TYPE_STRUCT = 30, OP_TYPE_POINTER = 32, OP_CONSTANT = 43,
    OP_VARIABLE = 59, OP_DECORATE = 71, OP_MEMBER_DECORATE = 72,
    DEC_ARRAY_STRIDE = 6, DEC_BINDING = 33, DEC_OFFSET = 35,
    SC_UNIFORM_CONSTANT = 0, SC_UNIFORM = 2, SC_PUSH_CONSTANT = 9,
    SC_STORAGE_BUFFER = 12,
};

typedef struct reflection {
    int max_binding;               /* -1: none */
    uint32_t push_size;            /* 0: no push block */
} reflection;

/* Byte size of type id.  def[id]: word offset of its definition; stride:
 * ArrayStride decorations; cval: constant values; mem_off: member offsets
 * (only for the one struct asked about; nested structs do not occur). */
static uint32_t size_of(const uint32_t *code, const uint32_t *def, const uint32_t *stride,
                        const uint32_t *cval, const uint32_t *mem_off, uint32_t id)
{
    const uint32_t *in = code + def[id];
    uint32_t op = in[0] & 0xffff, words = in[0] >> 16;
    switch (op) {
    case OP_TYPE_INT:
    case OP_TYPE_FLOAT:
        return in[2] / 8;
    case OP_TYPE_VECTOR:
        return in[3] * size_of(code, def, stride, cval, mem_off, in[2]);
    case OP_TYPE_ARRAY:
        return stride[id] * cval[in[3]];
    case OP_TYPE_STRUCT: {
        uint32_t end = 0;
        for (uint32_t m = 0; m + 2 < words; m++) {
            uint32_t e = mem_off[m] + size_of(code, def, stride, cval, mem_off, in[2 + m]);
            if (e > end)
                end = e;
        }
        return end;
    }
    }
    return 0;
}

static void reflect(const vkf_shader_code *sh, reflection *r)
{
    const uint32_t *code = sh->code;
    uint32_t bound = code[3];
    r->max_binding = -1;
    r->push_size = 0;
    EXPECT(code[0] == 0x07230203u && bound < (1u << 24), "%s: not SPIR-V", sh->name);
    if (code[0] != 0x07230203u || bound >= (1u << 24))
        return;
    /* Indexed by result id: one table per kind of fact. */
    uint32_t *def = calloc(bound, 4), *binding = malloc((size_t)bound * 4);
    uint32_t *stride = calloc(bound, 4), *cval = calloc(bound, 4);
    uint32_t *ptr_type = calloc(bound, 4);
    uint32_t push_off[64] = {0};
    memset(binding, 0xff, (size_t)bound * 4);
    /* Pass 1: definitions and decorations. */
    for (size_t w = 5; w < sh->words;) {
        uint32_t op = code[w] & 0xffff, n = code[w] >> 16;
        if (n == 0)
            break;
        const uint32_t *in = code + w;
        if (op == OP_DECORATE && in[2] == DEC_BINDING)
            binding[in[1]] = in[3];
        else if (op == OP_DECORATE && in[2] == DEC_ARRAY_STRIDE)
            stride[in[1]] = in[3];
        else if (op == OP_TYPE_INT || op == OP_TYPE_FLOAT || op == OP_TYPE_VECTOR ||
                 op == OP_TYPE_ARRAY || op == OP_TYPE_STRUCT)
            def[in[1]] = (uint32_t)w;
        else if (op == OP_TYPE_POINTER)
            ptr_type[in[1]] = in[3];
        else if (op == OP_CONSTANT)
            cval[in[2]] = in[3];
        w += n;
    }
    /* Pass 2: variables. */
    uint32_t push_struct = 0;
    for (size_t w = 5; w < sh->words;) {
        uint32_t op = code[w] & 0xffff, n = code[w] >> 16;
        if (n == 0)
            break;
        const uint32_t *in = code + w;
        if (op == OP_VARIABLE) {
            uint32_t sc = in[3], id = in[2];
            if ((sc == SC_STORAGE_BUFFER || sc == SC_UNIFORM ||
                 sc == SC_UNIFORM_CONSTANT) && binding[id] != 0xffffffffu &&
                (int)binding[id] > r->max_binding)
                r->max_binding = (int)binding[id];
            if (sc == SC_PUSH_CONSTANT)
                push_struct = ptr_type[in[1]];
        }
        w += n;
    }
    if (!push_struct)
        goto done;
    for (size_t w = 5; w < sh->words;) {
        uint32_t op = code[w] & 0xffff, n = code[w] >> 16;
        if (n == 0)
            break;
        const uint32_t *in = code + w;
        if (op == OP_MEMBER_DECORATE && in[1] == push_struct && in[3] == DEC_OFFSET &&
            in[2] < 64)
            push_off[in[2]] = in[4];
        w += n;
    }
    r->push_size = size_of(code, def, stride, cval, push_off, push_struct);
done:
    free(def);
    free(binding);
    free(stride);
    free(cval);
    free(ptr_type);
}

int main(void)
{
    for (int i = 0; i < VKF_SHADERS_COUNT; i++) {
        const vkf_shader_code *sh = vkf_shaders_all[i];
        reflection r;
        reflect(sh, &r);
        EXPECT(r.push_size <= 128, "%s: push block %u bytes > 128", sh->name, r.push_size);
        const vkf_shader_layout *lay = NULL;
        for (int t = 0; vkf_op_layouts[t] && !lay; t++)
            for (int k = 0; vkf_op_layouts[t][k].shader && !lay; k++)
                if (vkf_op_layouts[t][k].shader == sh)
                    lay = &vkf_op_layouts[t][k];
        if (!lay) {
            printf("%-24s push %3u B, max binding %d (no host table)\n", sh->name,
                   r.push_size, r.max_binding);
            continue;
        }
        int nb = lay->slots * VKF_MAX_CHUNKS + lay->texels;
        EXPECT(r.push_size == lay->push_size, "%s: push block %u bytes, host struct %u",
               sh->name, r.push_size, lay->push_size);
        EXPECT(r.max_binding < nb, "%s: binding %d beyond the host's %d", sh->name,
               r.max_binding, nb);
        /* The last slot or texel is what the host binds last: it must exist. */
        EXPECT(r.max_binding >= nb - VKF_MAX_CHUNKS, "%s: max binding %d, host binds %d",
               sh->name, r.max_binding, nb);
        printf("%-24s push %3u B, bindings %d: ok\n", sh->name, r.push_size, nb);
    }
    if (failures)
        fprintf(stderr, "%d reflection mismatch(es)\n", failures);
    return failures ? 1 : 0;
}
