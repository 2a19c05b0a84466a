/* The node registry: built-in definitions plus ones added at run time
 * (Lua packs), kept sorted by class name. */
#include <stdlib.h>
#include <string.h>

#include "graph/internal.h"
#include "vkflow/graph.h"

struct vkf_registry {
    const vkf_node_def **defs;   /* sorted by name */
    int nb, cap;
};

static int find_index(const vkf_registry *reg, const char *name, bool *found)
{
    int lo = 0, hi = reg->nb;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        int c = strcmp(reg->defs[mid]->name, name);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

int vkf_registry_add(vkf_registry *reg, const vkf_node_def *def)
{
    bool found;
    int idx = find_index(reg, def->name, &found);
    if (found)
        return VKF_EINVAL;
    int err = vkf_grow(&reg->defs, &reg->cap, reg->nb + 1, sizeof(*reg->defs));
    if (err < 0)
        return err;
    memmove(&reg->defs[idx + 1], &reg->defs[idx],
            sizeof(*reg->defs) * (size_t)(reg->nb - idx));
    reg->defs[idx] = def;
    reg->nb++;
    return 0;
}

int vkf_registry_create(vkf_registry **out)
{
    int err;
    vkf_registry *reg = vkf_calloc(1, sizeof(*reg));
    if (!reg)
        return VKF_ENOMEM;
    for (int i = 0; vkf_builtin_nodes[i]; i++)
        VKF_TRY(vkf_registry_add(reg, vkf_builtin_nodes[i]));
    *out = reg;
    return 0;
fail:
    vkf_registry_destroy(&reg);
    return err;
}

void vkf_registry_destroy(vkf_registry **preg)
{
    vkf_registry *reg = *preg;
    if (!reg)
        return;
    vkf_free(reg->defs);
    vkf_free(reg);
    *preg = NULL;
}

const vkf_node_def *vkf_registry_find(const vkf_registry *reg, const char *name)
{
    bool found;
    if (!name)
        return NULL;
    int idx = find_index(reg, name, &found);
    return found ? reg->defs[idx] : NULL;
}

int vkf_registry_count(const vkf_registry *reg)
{
    return reg->nb;
}

const vkf_node_def *vkf_registry_at(const vkf_registry *reg, int i)
{
    return i >= 0 && i < reg->nb ? reg->defs[i] : NULL;
}
