/* Test support: vkf_node_def tables from ComfyUI /object_info JSON. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph/internal.h"
#include "object_info_registry.h"

/* Everything built here, freed by vkf_test_object_info_release(). */
static void **owned;
static int nb_owned, cap_owned;

static void *keep(void *p)
{
    if (p && vkf_grow(&owned, &cap_owned, nb_owned + 1, sizeof(*owned)) < 0) {
        vkf_free(p);
        return NULL;
    }
    if (p)
        owned[nb_owned++] = p;
    return p;
}

static const char *kstr(const char *s) { return s ? keep(vkf_strdup(s)) : NULL; }

void vkf_test_object_info_release(void)
{
    for (int i = 0; i < nb_owned; i++)
        vkf_free(owned[i]);
    vkf_free(owned);
    owned = NULL;
    nb_owned = cap_owned = 0;
}

static const char *str_item(const cJSON *o, const char *key)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(it) ? it->valuestring : NULL;
}

static bool true_item(const cJSON *o, const char *key)
{
    return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, key));
}

static int fill_input(vkf_input_def *in, const char *name, const cJSON *spec, unsigned section_flags)
{
    /* Hidden inputs are listed as a bare type string. */
    const cJSON *type = cJSON_IsString(spec) ? spec : cJSON_GetArrayItem(spec, 0);
    const cJSON *opts = cJSON_IsString(spec) ? NULL : cJSON_GetArrayItem(spec, 1);
    const cJSON *options = NULL;
    if (!cJSON_IsObject(opts))
        opts = NULL;
    in->name = kstr(name);
    in->flags = section_flags;
    if (cJSON_IsArray(type)) {
        in->type = "COMBO";
        options = type;
    } else if (cJSON_IsString(type)) {
        in->type = kstr(type->valuestring);
        if (!strcmp(type->valuestring, "COMBO") && opts)
            options = cJSON_GetObjectItemCaseSensitive(opts, "options");
    } else {
        return VKF_EINVAL;
    }
    if (!in->name || !in->type)
        return VKF_ENOMEM;
    if (options) {
        int n = cJSON_GetArraySize(options);
        const char **list = keep(vkf_calloc((size_t)n + 1, sizeof(*list)));
        if (!list)
            return VKF_ENOMEM;
        int k = 0;
        for (const cJSON *o = options->child; o; o = o->next)
            if (cJSON_IsString(o) && !(list[k++] = kstr(o->valuestring)))
                return VKF_ENOMEM;
        in->options = (const char *const *)list;
    }
    in->imin = INT64_MIN;
    in->imax = INT64_MAX;
    if (!opts)
        return 0;
    const cJSON *def = cJSON_GetObjectItemCaseSensitive(opts, "default");
    const cJSON *mn = cJSON_GetObjectItemCaseSensitive(opts, "min");
    const cJSON *mx = cJSON_GetObjectItemCaseSensitive(opts, "max");
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(opts, "step");
    const cJSON *rd = cJSON_GetObjectItemCaseSensitive(opts, "round");
    const cJSON *cag = cJSON_GetObjectItemCaseSensitive(opts, "control_after_generate");
    bool is_int = !strcmp(in->type, "INT"), is_float = !strcmp(in->type, "FLOAT");
    if (is_int) {
        if (cJSON_IsNumber(def))
            in->idef = (int64_t)def->valuedouble;
        if (cJSON_IsNumber(mn))
            in->imin = (int64_t)mn->valuedouble;
        if (cJSON_IsNumber(mx)) {
            if (mx->valuedouble > 9.2e18) {
                in->flags |= VKF_IN_U64;
                in->imax = INT64_MAX;
            } else {
                in->imax = (int64_t)mx->valuedouble;
            }
        }
        if (cJSON_IsNumber(st))
            in->fstep = st->valuedouble;
        if (cag && !cJSON_IsFalse(cag))
            in->flags |= VKF_IN_SEED_CONTROL;
        if (cJSON_IsFalse(cag))
            in->flags |= VKF_IN_NO_SEED_CONTROL;
    } else if (is_float) {
        if (cJSON_IsNumber(def))
            in->fdef = def->valuedouble;
        in->fmin = cJSON_IsNumber(mn) ? mn->valuedouble : -1e308;
        in->fmax = cJSON_IsNumber(mx) ? mx->valuedouble : 1e308;
        if (cJSON_IsNumber(st))
            in->fstep = st->valuedouble;
        if (cJSON_IsNumber(rd))
            in->fround = rd->valuedouble;
    } else if (!strcmp(in->type, "BOOLEAN")) {
        in->bdef = cJSON_IsTrue(def);
        in->label_on = kstr(str_item(opts, "label_on"));
        in->label_off = kstr(str_item(opts, "label_off"));
    } else if (cJSON_IsString(def)) {
        if (!(in->sdef = kstr(def->valuestring)))
            return VKF_ENOMEM;
    }
    if (!strcmp(in->type, "COMBO") && cag && !cJSON_IsFalse(cag))
        in->flags |= VKF_IN_COMBO_CONTROL;
    if (true_item(opts, "forceInput"))
        in->flags |= VKF_IN_FORCE_INPUT;
    if (true_item(opts, "image_upload"))
        in->flags |= VKF_IN_IMAGE_UPLOAD;
    if (true_item(opts, "dynamicPrompts"))
        in->flags |= VKF_IN_DYNAMIC_PROMPTS;
    if (true_item(opts, "multiline"))
        in->flags |= VKF_IN_MULTILINE;
    if (true_item(opts, "lazy"))
        in->flags |= VKF_IN_LAZY;
    in->tooltip = kstr(str_item(opts, "tooltip"));
    return 0;
}

static int build_def(const char *cls, const cJSON *info, vkf_node_def **out)
{
    static const char *const sections[] = {"required", "optional", "hidden"};
    static const unsigned section_flags[] = {0, VKF_IN_OPTIONAL, VKF_IN_HIDDEN};
    const cJSON *input = cJSON_GetObjectItemCaseSensitive(info, "input");
    const cJSON *order = cJSON_GetObjectItemCaseSensitive(info, "input_order");
    vkf_node_def *def = keep(vkf_calloc(1, sizeof(*def)));
    if (!def)
        return VKF_ENOMEM;
    int total = 0;
    for (int s = 0; s < 3; s++)
        total += cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(input, sections[s]));
    vkf_input_def *ins = keep(vkf_calloc((size_t)total + 1, sizeof(*ins)));
    if (!ins)
        return VKF_ENOMEM;
    int n = 0;
    for (int s = 0; s < 3; s++) {
        const cJSON *sec = cJSON_GetObjectItemCaseSensitive(input, sections[s]);
        const cJSON *names = cJSON_GetObjectItemCaseSensitive(order, sections[s]);
        if (!cJSON_IsObject(sec))
            continue;
        if (cJSON_IsArray(names)) {
            for (const cJSON *nm = names->child; nm; nm = nm->next) {
                const cJSON *spec = cJSON_IsString(nm) ? cJSON_GetObjectItemCaseSensitive(sec, nm->valuestring) : NULL;
                if (spec && n < total) {
                    int err = fill_input(&ins[n++], nm->valuestring, spec, section_flags[s]);
                    if (err < 0)
                        return err;
                }
            }
        } else {
            for (const cJSON *spec = sec->child; spec; spec = spec->next) {
                int err = fill_input(&ins[n++], spec->string, spec, section_flags[s]);
                if (err < 0)
                    return err;
            }
        }
    }
    const cJSON *outs = cJSON_GetObjectItemCaseSensitive(info, "output");
    const cJSON *onames = cJSON_GetObjectItemCaseSensitive(info, "output_name");
    const cJSON *olist = cJSON_GetObjectItemCaseSensitive(info, "output_is_list");
    int nout = cJSON_GetArraySize(outs);
    vkf_output_def *od = keep(vkf_calloc((size_t)nout + 1, sizeof(*od)));
    if (!od)
        return VKF_ENOMEM;
    for (int i = 0; i < nout; i++) {
        const cJSON *t = cJSON_GetArrayItem(outs, i);
        const cJSON *nm = cJSON_GetArrayItem(onames, i);
        od[i].type = kstr(cJSON_IsString(t) ? t->valuestring : "*");
        od[i].name = cJSON_IsString(nm) ? kstr(nm->valuestring) : NULL;
        od[i].is_list = cJSON_IsTrue(cJSON_GetArrayItem(olist, i));
    }
    def->name = kstr(cls);
    def->display_name = kstr(str_item(info, "display_name"));
    def->category = kstr(str_item(info, "category"));
    def->description = kstr(str_item(info, "description"));
    def->python_module = kstr(str_item(info, "python_module"));
    def->inputs = ins;
    def->nb_inputs = n;
    def->outputs = od;
    def->nb_outputs = nout;
    if (true_item(info, "output_node"))
        def->flags |= VKF_NODE_OUTPUT;
    if (!def->name)
        return VKF_ENOMEM;
    *out = def;
    return 0;
}

int vkf_registry_add_object_info(vkf_registry *reg, const char *object_info_json)
{
    vkf_cjson_init();
    cJSON *root = cJSON_Parse(object_info_json);
    int err = 0;
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return VKF_EPARSE;
    }
    for (const cJSON *cls = root->child; cls; cls = cls->next) {
        vkf_node_def *def;
        if (vkf_registry_find(reg, cls->string))
            continue;   /* a built-in node: the real definition wins */
        if ((err = build_def(cls->string, cls, &def)) < 0)
            break;
        if ((err = vkf_registry_add(reg, def)) < 0)
            break;
    }
    cJSON_Delete(root);
    return err;
}

char *vkf_test_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (cap - n < 4096) {
            char *nb = vkf_realloc(buf, cap = cap * 2 + 8192);
            if (!nb)
                break;
            buf = nb;
        }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (!got)
            break;
    }
    fclose(f);
    if (buf)
        buf[n] = 0;
    if (len)
        *len = n;
    return buf;
}

char *vkf_test_source_path(const char *rel)
{
    const char *root = getenv("VKF_SOURCE_ROOT");
    return vkf_asprintf("%s/%s", root ? root : ".", rel);
}

int vkf_test_sd_registry(vkf_registry **out)
{
    char *path = vkf_test_source_path("tests/load/data/object_info_sd.json");
    char *json = path ? vkf_test_read_file(path, NULL) : NULL;
    int err = vkf_registry_create(out);
    if (err == 0)
        err = json ? vkf_registry_add_object_info(*out, json) : VKF_EIO;
    if (err < 0)
        vkf_registry_destroy(out);
    vkf_free(path);
    vkf_free(json);
    return err;
}
