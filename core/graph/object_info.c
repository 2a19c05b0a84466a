/* ComfyUI's /object_info description of nodes, and input configs. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "graph/internal.h"

static void *hook_malloc(size_t size) { return vkf_malloc(size); }
static void hook_free(void *p) { vkf_free(p); }

void vkf_cjson_init(void)
{
    static cJSON_Hooks hooks = {hook_malloc, hook_free};
    cJSON_InitHooks(&hooks);
}

int vkf_combo_options(const vkf_input_def *in, const vkf_paths *paths,
                      char ***opts, int *count)
{
    *opts = NULL;
    *count = 0;
    if (in->options) {
        int n = 0;
        while (in->options[n])
            n++;
        char **v = vkf_calloc((size_t)n + 1, sizeof(*v));
        if (!v)
            return VKF_ENOMEM;
        for (int i = 0; i < n; i++) {
            if (!(v[i] = vkf_strdup(in->options[i]))) {
                vkf_strv_free(&v, i);
                return VKF_ENOMEM;
            }
        }
        *opts = v;
        *count = n;
        return 0;
    }
    if (in->list_options)
        return paths ? in->list_options(paths, opts, count) : 0;
    if (in->model_folder && paths && !strcmp(in->model_folder, "input"))
        return vkf_paths_list_input_images(paths, opts, count);
    if (in->model_folder && paths) {
        int err = vkf_paths_list(paths, in->model_folder, opts, count);
        /* A folder nobody configured is an empty list, not an error. */
        return err == VKF_ENOTFOUND ? 0 : err;
    }
    return 0;
}

/* cJSON numbers are doubles; exact 64-bit integers go in as raw text. */
static cJSON *int_json(int64_t v)
{
    char buf[32];
    snprintf(buf, sizeof(buf), "%" PRId64, v);
    return cJSON_CreateRaw(buf);
}

static cJSON *float_json(double v)
{
    char buf[64];
    vkf_format_double(buf, sizeof(buf), v);
    if (!isfinite(v))
        snprintf(buf, sizeof(buf), "%s", v > 0 ? "1e308" : "-1e308");
    return cJSON_CreateRaw(buf);
}

bool vkf_json_add(cJSON *obj, const char *key, cJSON *item)
{
    if (!item)
        return false;
    if (!cJSON_AddItemToObject(obj, key, item)) {
        cJSON_Delete(item);
        return false;
    }
    return true;
}

cJSON *vkf_input_config_json(const vkf_input_def *in, const vkf_paths *paths)
{
    cJSON *arr = cJSON_CreateArray();
    cJSON *opt = cJSON_CreateObject();
    char **opts = NULL;
    int nopts = 0;
    bool ok = arr && opt;
    const char *t = in->type;
    bool is_combo = !strcmp(t, VKF_T_COMBO);

    if (ok && is_combo) {
        ok = vkf_combo_options(in, paths, &opts, &nopts) >= 0;
        cJSON *list = ok ? cJSON_CreateArray() : NULL;
        for (int i = 0; ok && list && i < nopts; i++)
            ok = cJSON_AddItemToArray(list, cJSON_CreateString(opts[i]));
        ok = ok && list && cJSON_AddItemToArray(arr, list);
        if (!ok)
            cJSON_Delete(list);
    } else if (ok) {
        ok = cJSON_AddItemToArray(arr, cJSON_CreateString(t));
    }

    if (ok && !strcmp(t, VKF_T_INT)) {
        ok = vkf_json_add(opt, "default", int_json(in->idef));
        if (ok && (in->imin || in->imax || (in->flags & VKF_IN_U64))) {
            ok = vkf_json_add(opt, "min", int_json(in->imin));
            if (ok && (in->flags & VKF_IN_U64))
                ok = vkf_json_add(opt, "max", cJSON_CreateRaw("18446744073709551615"));
            else if (ok)
                ok = vkf_json_add(opt, "max", int_json(in->imax));
        }
        if (ok && in->fstep > 0)
            ok = vkf_json_add(opt, "step", float_json(in->fstep));
        if (ok && (in->flags & VKF_IN_SEED_CONTROL))
            ok = vkf_json_add(opt, "control_after_generate", cJSON_CreateTrue());
    } else if (ok && !strcmp(t, VKF_T_FLOAT)) {
        ok = vkf_json_add(opt, "default", float_json(in->fdef));
        if (ok && (in->fmin != 0 || in->fmax != 0)) {
            ok = vkf_json_add(opt, "min", float_json(in->fmin));
            ok = ok && vkf_json_add(opt, "max", float_json(in->fmax));
        }
        if (ok && in->fstep > 0)
            ok = vkf_json_add(opt, "step", float_json(in->fstep));
        if (ok && in->fround != 0)
            ok = vkf_json_add(opt, "round", float_json(in->fround));
    } else if (ok && !strcmp(t, VKF_T_STRING)) {
        ok = vkf_json_add(opt, "default", cJSON_CreateString(in->sdef ? in->sdef : ""));
        if (ok && (in->flags & VKF_IN_MULTILINE))
            ok = vkf_json_add(opt, "multiline", cJSON_CreateTrue());
        if (ok && (in->flags & VKF_IN_DYNAMIC_PROMPTS))
            ok = vkf_json_add(opt, "dynamicPrompts", cJSON_CreateTrue());
    } else if (ok && !strcmp(t, VKF_T_BOOLEAN)) {
        ok = vkf_json_add(opt, "default", cJSON_CreateBool(in->bdef));
        if (ok && in->label_on)
            ok = vkf_json_add(opt, "label_on", cJSON_CreateString(in->label_on));
        if (ok && in->label_off)
            ok = vkf_json_add(opt, "label_off", cJSON_CreateString(in->label_off));
    } else if (ok && is_combo) {
        if (in->sdef)
            ok = vkf_json_add(opt, "default", cJSON_CreateString(in->sdef));
        if (ok && (in->flags & VKF_IN_IMAGE_UPLOAD))
            ok = vkf_json_add(opt, "image_upload", cJSON_CreateTrue());
        if (ok && (in->flags & VKF_IN_COMBO_CONTROL))
            ok = vkf_json_add(opt, "control_after_generate", cJSON_CreateTrue());
    }
    if (ok && (in->flags & VKF_IN_FORCE_INPUT))
        ok = vkf_json_add(opt, "forceInput", cJSON_CreateTrue());
    if (ok && (in->flags & VKF_IN_LAZY))
        ok = vkf_json_add(opt, "lazy", cJSON_CreateTrue());
    if (ok && in->tooltip)
        ok = vkf_json_add(opt, "tooltip", cJSON_CreateString(in->tooltip));
    vkf_strv_free(&opts, nopts);

    if (ok && cJSON_AddItemToArray(arr, opt))
        return arr;
    if (!ok || opt)
        cJSON_Delete(opt);
    cJSON_Delete(arr);
    return NULL;
}

cJSON *vkf_node_info_json(const vkf_node_def *def, const vkf_paths *paths)
{
    static const char *const sections[] = {"required", "optional", "hidden"};
    /* vkf_json_add consumes its item, attached or freed, so each piece is
     * handed over as soon as it exists. */
    cJSON *node = cJSON_CreateObject();
    cJSON *input = cJSON_CreateObject();
    cJSON *order = cJSON_CreateObject();
    bool ok = vkf_json_add(node, "input", input);
    ok = vkf_json_add(node, "input_order", order) && ok;
    if (!ok) {
        cJSON_Delete(node);
        return NULL;
    }
    for (int s = 0; ok && s < 3; s++) {
        cJSON *sec = cJSON_CreateObject(), *sec_order = cJSON_CreateArray();
        int count = 0;
        ok = sec && sec_order;
        for (int i = 0; ok && i < def->nb_inputs; i++) {
            const vkf_input_def *in = &def->inputs[i];
            int which = (in->flags & VKF_IN_HIDDEN) ? 2 : (in->flags & VKF_IN_OPTIONAL) ? 1 : 0;
            if (which != s)
                continue;
            ok = vkf_json_add(sec, in->name, vkf_input_config_json(in, paths)) &&
                 cJSON_AddItemToArray(sec_order, cJSON_CreateString(in->name));
            count++;
        }
        if (ok && (count || s == 0)) {
            ok = vkf_json_add(input, sections[s], sec);
            ok = vkf_json_add(order, sections[s], sec_order) && ok;
        } else {
            cJSON_Delete(sec);
            cJSON_Delete(sec_order);
        }
    }

    cJSON *out = cJSON_CreateArray(), *is_list = cJSON_CreateArray();
    cJSON *names = cJSON_CreateArray(), *tips = cJSON_CreateArray();
    bool any_tip = false;
    ok = vkf_json_add(node, "output", out) && ok;
    ok = vkf_json_add(node, "output_is_list", is_list) && ok;
    ok = vkf_json_add(node, "output_name", names) && ok;
    for (int j = 0; ok && j < def->nb_outputs; j++) {
        const vkf_output_def *o = &def->outputs[j];
        ok = cJSON_AddItemToArray(out, cJSON_CreateString(o->type)) &&
             cJSON_AddItemToArray(is_list, cJSON_CreateBool(o->is_list)) &&
             cJSON_AddItemToArray(names, cJSON_CreateString(o->name ? o->name : o->type)) &&
             tips && cJSON_AddItemToArray(tips, cJSON_CreateString(o->tooltip ? o->tooltip : ""));
        any_tip |= o->tooltip != NULL;
    }
    ok = ok && vkf_json_add(node, "name", cJSON_CreateString(def->name));
    ok = ok && vkf_json_add(node, "display_name",
                            cJSON_CreateString(def->display_name ? def->display_name : def->name));
    ok = ok && vkf_json_add(node, "description",
                            cJSON_CreateString(def->description ? def->description : ""));
    ok = ok && vkf_json_add(node, "python_module",
                            cJSON_CreateString(def->python_module ? def->python_module : "nodes"));
    ok = ok && vkf_json_add(node, "category", cJSON_CreateString(def->category ? def->category : ""));
    ok = ok && vkf_json_add(node, "output_node", cJSON_CreateBool(def->flags & VKF_NODE_OUTPUT));
    if (ok && any_tip) {
        ok = vkf_json_add(node, "output_tooltips", tips);
        tips = NULL;
    }
    cJSON_Delete(tips);
    if (ok && (def->flags & VKF_NODE_DEPRECATED))
        ok = vkf_json_add(node, "deprecated", cJSON_CreateTrue());
    if (ok && (def->flags & VKF_NODE_EXPERIMENTAL))
        ok = vkf_json_add(node, "experimental", cJSON_CreateTrue());
    if (ok)
        return node;
    cJSON_Delete(node);
    return NULL;
}
