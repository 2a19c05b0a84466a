/*
 * Model folders (ComfyUI's folder_paths.py), extra_model_paths.yaml,
 * input/output/temp directories, path safety and atomic file output.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vkflow/paths.h"
#include "yaml.h"

#define MAX_WALK_DEPTH 64

/* Which directory entries a folder lists. */
typedef enum ext_set {
    EXT_MODEL,      /* supported_pt_extensions */
    EXT_YAML,       /* configs */
    EXT_NO_EXT,     /* classifiers: files without an extension */
    EXT_ANY,        /* folders created by extra_model_paths.yaml */
    EXT_DIFFUSERS,  /* directories holding a model_index.json */
} ext_set;

static const struct {
    const char *name;
    ext_set exts;
    const char *dirs[2];   /* directory names under a models root, in order */
} known_folders[] = {
    {"checkpoints", EXT_MODEL, {"checkpoints"}},
    {"configs", EXT_YAML, {"configs"}},
    {"loras", EXT_MODEL, {"loras"}},
    {"vae", EXT_MODEL, {"vae"}},
    {"text_encoders", EXT_MODEL, {"text_encoders", "clip"}},
    {"diffusion_models", EXT_MODEL, {"unet", "diffusion_models"}},
    {"clip_vision", EXT_MODEL, {"clip_vision"}},
    {"style_models", EXT_MODEL, {"style_models"}},
    {"embeddings", EXT_MODEL, {"embeddings"}},
    {"diffusers", EXT_DIFFUSERS, {"diffusers"}},
    {"vae_approx", EXT_MODEL, {"vae_approx"}},
    {"controlnet", EXT_MODEL, {"controlnet", "t2i_adapter"}},
    {"gligen", EXT_MODEL, {"gligen"}},
    {"upscale_models", EXT_MODEL, {"upscale_models"}},
    {"hypernetworks", EXT_MODEL, {"hypernetworks"}},
    {"photomaker", EXT_MODEL, {"photomaker"}},
    {"classifiers", EXT_NO_EXT, {"classifiers"}},
    {"model_patches", EXT_MODEL, {"model_patches"}},
    {"audio_encoders", EXT_MODEL, {"audio_encoders"}},
};

static const char *const model_extensions[] = {
    ".ckpt", ".pt", ".pt2", ".bin", ".pth", ".safetensors", ".pkl", ".sft",
};

typedef struct folder {
    char *name;
    ext_set exts;
    char **dirs;    /* absolute, normalised; searched in this order */
    int ndirs, cap;
} folder;

struct vkf_paths {
    const vkf_log *log;
    folder *folders;
    int nfolders, cap;
    char *input_dir, *output_dir, *temp_dir;
};

/* ---- small path helpers ------------------------------------------------ */

static bool is_sep(char c) { return c == '/' || c == '\\'; }

/* Lexical normalisation like Python's os.path.normpath, in place. */
static void normpath(char *s)
{
    bool abs = s[0] == '/';
    char *out = s + (abs ? 1 : 0);
    size_t n = 0;           /* bytes written after the leading '/' */
    size_t fixed = 0;       /* leading "../" run of a relative path */
    const char *r = out;
    while (*r) {
        while (*r == '/')
            r++;
        if (!*r)
            break;
        const char *e = r;
        while (*e && *e != '/')
            e++;
        size_t len = (size_t)(e - r);
        if (len == 1 && r[0] == '.') {
            /* drop */
        } else if (len == 2 && r[0] == '.' && r[1] == '.') {
            if (n > fixed) {
                while (n > 0 && out[n - 1] != '/')
                    n--;
                if (n > 0)
                    n--;
            } else if (!abs) {
                if (n)
                    out[n++] = '/';
                memcpy(out + n, "..", 2);
                n += 2;
                fixed = n;
            }
        } else {
            if (n)
                out[n++] = '/';
            memmove(out + n, r, len);
            n += len;
        }
        r = e;
    }
    out[n] = 0;
    if (!abs && n == 0)
        strcpy(s, ".");
}

/* join(base, rel) as os.path.join: an absolute rel wins. */
static char *path_join(const char *base, const char *rel)
{
    if (rel[0] == '/' || !base || !base[0])
        return vkf_strdup(rel);
    size_t bl = strlen(base);
    return vkf_asprintf("%s%s%s", base, base[bl - 1] == '/' ? "" : "/", rel);
}

/* Absolute, normalised copy of path; relative paths are taken from base
 * (or the working directory when base is NULL). */
static int abspath(const char *path, const char *base, char **out)
{
    char cwd[PATH_MAX];
    if (path[0] != '/' && !base) {
        if (!getcwd(cwd, sizeof(cwd)))
            return VKF_EIO;
        base = cwd;
    }
    char *s = path_join(base, path);
    if (!s)
        return VKF_ENOMEM;
    normpath(s);
    *out = s;
    return 0;
}

static bool is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Is real path q equal to or below real directory r? */
static bool real_under(const char *r, const char *q)
{
    size_t n = strlen(r);
    if (n == 1 && r[0] == '/')
        return q[0] == '/';
    return strncmp(r, q, n) == 0 && (q[n] == 0 || q[n] == '/');
}

bool vkf_path_is_inside(const char *root, const char *path)
{
    char r[PATH_MAX], q[PATH_MAX];
    if (!root || !path || !realpath(root, r) || !realpath(path, q))
        return false;
    return real_under(r, q);
}

bool vkf_path_name_is_safe(const char *name)
{
    if (!name || !name[0] || is_sep(name[0]))
        return false;
    if (isalpha((unsigned char)name[0]) && name[1] == ':')
        return false;
    bool has_part = false;
    const char *s = name;
    while (*s) {
        const char *e = s;
        while (*e && !is_sep(*e))
            e++;
        size_t len = (size_t)(e - s);
        if (len == 2 && s[0] == '.' && s[1] == '.')
            return false;
        if (len > 0 && !(len == 1 && s[0] == '.'))
            has_part = true;
        s = *e ? e + 1 : e;
    }
    return has_part;
}

/* Safe relative name -> "a/b/c" (backslashes as separators, empty and "."
 * parts dropped) in out[size].  VKF_EPERM (logged) if unsafe. */
static int clean_name(const vkf_paths *p, const char *what, const char *name,
                      char *out, size_t size)
{
    if (!vkf_path_name_is_safe(name)) {
        vkf_logf(p->log, VKF_LOG_ERROR,
                 "refusing %s '%s': names must be relative paths without '..'",
                 what, name ? name : "(null)");
        return VKF_EPERM;
    }
    size_t n = 0;
    const char *s = name;
    while (*s) {
        const char *e = s;
        while (*e && !is_sep(*e))
            e++;
        size_t len = (size_t)(e - s);
        if (len > 0 && !(len == 1 && s[0] == '.')) {
            if (n + len + 2 > size) {
                vkf_logf(p->log, VKF_LOG_ERROR, "%s '%s' is too long", what, name);
                return VKF_EINVAL;
            }
            if (n)
                out[n++] = '/';
            memcpy(out + n, s, len);
            n += len;
        }
        s = *e ? e + 1 : e;
    }
    out[n] = 0;
    return 0;
}

/* ---- folders ------------------------------------------------------------ */

static const char *map_legacy(const char *name)
{
    if (strcmp(name, "clip") == 0)
        return "text_encoders";
    if (strcmp(name, "unet") == 0)
        return "diffusion_models";
    return name;
}

static folder *find_folder(const vkf_paths *p, const char *name)
{
    if (!name)
        return NULL;
    name = map_legacy(name);
    for (int i = 0; i < p->nfolders; i++)
        if (strcmp(p->folders[i].name, name) == 0)
            return &p->folders[i];
    return NULL;
}

static int new_folder(vkf_paths *p, const char *name, ext_set exts, folder **out)
{
    int err = 0;
    char *dup = vkf_strdup(name);
    VKF_CHECK_ALLOC(dup);
    VKF_TRY(vkf_grow(&p->folders, &p->cap, p->nfolders + 1, sizeof(folder)));
    folder *f = &p->folders[p->nfolders++];
    *f = (folder){.name = dup, .exts = exts};
    *out = f;
    return 0;
fail:
    vkf_free(dup);
    return err;
}

/* ComfyUI's add_model_folder_path on an absolute normalised path, which this
 * function owns from now on: a known path only moves to the front when
 * `first`; a new one goes to the front or the back. */
static int folder_add_dir(folder *f, char *path, bool first)
{
    int err = 0;
    for (int i = 0; i < f->ndirs; i++) {
        if (strcmp(f->dirs[i], path) == 0) {
            if (first && i > 0) {
                char *known = f->dirs[i];
                memmove(f->dirs + 1, f->dirs, (size_t)i * sizeof(char *));
                f->dirs[0] = known;
            }
            vkf_free(path);
            return 0;
        }
    }
    VKF_TRY(vkf_grow(&f->dirs, &f->cap, f->ndirs + 1, sizeof(char *)));
    if (first) {
        memmove(f->dirs + 1, f->dirs, (size_t)f->ndirs * sizeof(char *));
        f->dirs[0] = path;
    } else {
        f->dirs[f->ndirs] = path;
    }
    f->ndirs++;
    return 0;
fail:
    vkf_free(path);
    return err;
}

static int add_dir_owned(vkf_paths *p, const char *folder_name, char *path, bool first)
{
    int err = 0;
    folder *f = find_folder(p, folder_name);
    if (!f)
        VKF_TRY(new_folder(p, map_legacy(folder_name), EXT_ANY, &f));
    return folder_add_dir(f, path, first);
fail:
    vkf_free(path);
    return err;
}

int vkf_paths_create(vkf_paths **out, const vkf_log *log)
{
    int err = 0;
    vkf_paths *p = NULL;
    if (!out)
        return VKF_EINVAL;
    *out = NULL;
    p = vkf_calloc(1, sizeof(*p));
    VKF_CHECK_ALLOC(p);
    p->log = log;
    for (size_t i = 0; i < VKF_ARRAY_SIZE(known_folders); i++) {
        folder *f;
        VKF_TRY(new_folder(p, known_folders[i].name, known_folders[i].exts, &f));
    }
    *out = p;
    return 0;
fail:
    vkf_paths_destroy(&p);
    return err;
}

void vkf_paths_destroy(vkf_paths **pp)
{
    if (!pp || !*pp)
        return;
    vkf_paths *p = *pp;
    for (int i = 0; i < p->nfolders; i++) {
        for (int j = 0; j < p->folders[i].ndirs; j++)
            vkf_free(p->folders[i].dirs[j]);
        vkf_free(p->folders[i].dirs);
        vkf_free(p->folders[i].name);
    }
    vkf_free(p->folders);
    vkf_free(p->input_dir);
    vkf_free(p->output_dir);
    vkf_free(p->temp_dir);
    vkf_free(p);
    *pp = NULL;
}

const char *vkf_paths_canonical_folder(const vkf_paths *p, const char *name)
{
    const folder *f = p ? find_folder(p, name) : NULL;
    return f ? f->name : NULL;
}

int vkf_paths_add_models_root(vkf_paths *p, const char *dir)
{
    int err = 0;
    char *root = NULL, *sub = NULL;
    if (!p || !dir || !dir[0])
        return VKF_EINVAL;
    VKF_TRY(abspath(dir, NULL, &root));
    sub = path_join(root, "models");
    VKF_CHECK_ALLOC(sub);
    if (is_dir(sub)) {
        vkf_free(root);
        root = sub;
        sub = NULL;
    }
    for (size_t i = 0; i < VKF_ARRAY_SIZE(known_folders); i++) {
        for (size_t d = 0; d < 2 && known_folders[i].dirs[d]; d++) {
            char *path = path_join(root, known_folders[i].dirs[d]);
            VKF_CHECK_ALLOC(path);
            VKF_TRY(add_dir_owned(p, known_folders[i].name, path, false));
        }
    }
    vkf_logf(p->log, VKF_LOG_DEBUG, "models root %s", root);
fail:
    vkf_free(sub);
    vkf_free(root);
    return err;
}

int vkf_paths_add_folder_dir(vkf_paths *p, const char *folder_name, const char *dir,
                             bool first)
{
    int err = 0;
    char *path = NULL;
    if (!p || !folder_name || !folder_name[0] || !dir || !dir[0])
        return VKF_EINVAL;
    VKF_TRY(abspath(dir, NULL, &path));
    return add_dir_owned(p, folder_name, path, first);
fail:
    return err;
}

/* ---- input / output / temp directories ----------------------------------- */

static int set_dir(vkf_paths *p, char **slot, const char *dir)
{
    int err = 0;
    char *path = NULL;
    if (!p || !dir || !dir[0])
        return VKF_EINVAL;
    VKF_TRY(abspath(dir, NULL, &path));
    vkf_free(*slot);
    *slot = path;
fail:
    return err;
}

int vkf_paths_set_input_dir(vkf_paths *p, const char *dir)
{
    return set_dir(p, p ? &p->input_dir : NULL, dir);
}
int vkf_paths_set_output_dir(vkf_paths *p, const char *dir)
{
    return set_dir(p, p ? &p->output_dir : NULL, dir);
}
int vkf_paths_set_temp_dir(vkf_paths *p, const char *dir)
{
    return set_dir(p, p ? &p->temp_dir : NULL, dir);
}
const char *vkf_paths_input_dir(const vkf_paths *p) { return p ? p->input_dir : NULL; }
const char *vkf_paths_output_dir(const vkf_paths *p) { return p ? p->output_dir : NULL; }
const char *vkf_paths_temp_dir(const vkf_paths *p) { return p ? p->temp_dir : NULL; }

int vkf_paths_create_from(const vkf_paths_config *cfg, const vkf_log *log, vkf_paths **out)
{
    vkf_paths *p;
    int err = vkf_paths_create(&p, log);
    if (err < 0)
        return err;
    for (int i = 0; i < cfg->nb_models && err >= 0; i++)
        err = vkf_paths_add_models_root(p, cfg->models[i]);
    for (int i = 0; i < cfg->nb_extra_yaml && err >= 0; i++)
        err = vkf_paths_load_extra_yaml(p, cfg->extra_yaml[i]);
    if (err >= 0)
        err = vkf_paths_set_input_dir(p, cfg->input_dir ? cfg->input_dir : "input");
    if (err >= 0)
        err = vkf_paths_set_output_dir(p, cfg->output_dir ? cfg->output_dir : "output");
    if (err >= 0 && cfg->temp_dir) {
        err = vkf_paths_set_temp_dir(p, cfg->temp_dir);
    } else if (err >= 0) {
        /* ComfyUI keeps temp/ beside output/. */
        const char *o = p->output_dir;
        const char *slash = strrchr(o, '/');
        char *t = vkf_asprintf("%.*s/temp", (int)(slash && slash != o ? slash - o : 0), o);
        err = t ? vkf_paths_set_temp_dir(p, t) : VKF_ENOMEM;
        vkf_free(t);
    }
    if (err < 0) {
        vkf_paths_destroy(&p);
        return err;
    }
    *out = p;
    return 0;
}

/* ---- listing ------------------------------------------------------------- */

typedef struct walk {
    const vkf_paths *p;
    ext_set exts;
    char root[PATH_MAX];        /* real path of the folder dir being walked */
    size_t root_len;
    char path[PATH_MAX];        /* entry being looked at; starts with root */
    char scratch[PATH_MAX];
    struct { dev_t dev; ino_t ino; } open_dirs[MAX_WALK_DEPTH + 1];
    int depth;
    char **names;
    int n, cap;
} walk;

static bool wanted_file(ext_set exts, const char *base)
{
    while (*base == '.')    /* like os.path.splitext: ".x" has no extension */
        base++;
    const char *ext = strrchr(base, '.');
    switch (exts) {
    case EXT_ANY:
        return true;
    case EXT_NO_EXT:
        return !ext;
    case EXT_YAML:
        return ext && strcasecmp(ext, ".yaml") == 0;
    case EXT_MODEL:
        for (size_t i = 0; ext && i < VKF_ARRAY_SIZE(model_extensions); i++)
            if (strcasecmp(ext, model_extensions[i]) == 0)
                return true;
        return false;
    case EXT_DIFFUSERS:
        return false;
    }
    return false;
}

static int push_name(walk *w, const char *rel)
{
    int err = 0;
    char *dup = vkf_strdup(rel);
    VKF_CHECK_ALLOC(dup);
    VKF_TRY(vkf_grow(&w->names, &w->cap, w->n + 1, sizeof(char *)));
    w->names[w->n++] = dup;
    return 0;
fail:
    vkf_free(dup);
    return err;
}

static int walk_dir(walk *w, size_t len);

/* w->path (length len) names entry `base` of the directory being walked. */
static int walk_entry(walk *w, size_t len, const char *base)
{
    struct stat lst, st;
    if (lstat(w->path, &lst) != 0 || stat(w->path, &st) != 0)
        return 0;   /* vanished, or a dangling symlink */
    if (S_ISLNK(lst.st_mode) &&
        (!realpath(w->path, w->scratch) || !real_under(w->root, w->scratch))) {
        vkf_logf(w->p->log, VKF_LOG_WARN,
                 "skipping '%s': symlink leads outside its models folder", w->path);
        return 0;
    }
    if (S_ISDIR(st.st_mode)) {
        if (strcmp(base, ".git") == 0)
            return 0;
        for (int i = 0; i <= w->depth; i++) {
            if (w->open_dirs[i].dev == st.st_dev && w->open_dirs[i].ino == st.st_ino) {
                vkf_logf(w->p->log, VKF_LOG_WARN,
                         "skipping '%s': directory loop", w->path);
                return 0;
            }
        }
        if (w->depth >= MAX_WALK_DEPTH) {
            vkf_logf(w->p->log, VKF_LOG_WARN,
                     "skipping '%s': deeper than %d levels", w->path, MAX_WALK_DEPTH);
            return 0;
        }
        w->depth++;
        w->open_dirs[w->depth].dev = st.st_dev;
        w->open_dirs[w->depth].ino = st.st_ino;
        int err = walk_dir(w, len);
        w->depth--;
        return err;
    }
    if (S_ISREG(st.st_mode) && wanted_file(w->exts, base))
        return push_name(w, w->path + w->root_len + 1);
    return 0;
}

static int walk_dir(walk *w, size_t len)
{
    int err = 0;
    DIR *d = opendir(w->path);
    if (!d) {
        vkf_logf(w->p->log, VKF_LOG_DEBUG, "cannot list '%s': %s", w->path,
                 strerror(errno));
        return 0;
    }
    if (w->exts == EXT_DIFFUSERS && len > w->root_len) {
        if (len + sizeof("/model_index.json") <= sizeof(w->path)) {
            struct stat st;
            memcpy(w->path + len, "/model_index.json", sizeof("/model_index.json"));
            bool found = stat(w->path, &st) == 0 && S_ISREG(st.st_mode);
            w->path[len] = 0;
            if (found)
                VKF_TRY(push_name(w, w->path + w->root_len + 1));
        }
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *base = e->d_name;
        if (strcmp(base, ".") == 0 || strcmp(base, "..") == 0)
            continue;
        size_t bl = strlen(base);
        if (len + 1 + bl >= sizeof(w->path)) {
            vkf_logf(w->p->log, VKF_LOG_WARN, "skipping '%s/%s': path too long",
                     w->path, base);
            continue;
        }
        w->path[len] = '/';
        memcpy(w->path + len + 1, base, bl + 1);
        err = walk_entry(w, len + 1 + bl, base);
        w->path[len] = 0;
        if (err < 0)
            goto fail;
    }
fail:
    closedir(d);
    return err;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int vkf_paths_list(const vkf_paths *p, const char *folder_name, char ***names,
                   int *count)
{
    int err = 0;
    walk *w = NULL;
    if (!p || !folder_name || !names || !count)
        return VKF_EINVAL;
    *names = NULL;
    *count = 0;
    const folder *f = find_folder(p, folder_name);
    if (!f) {
        vkf_logf(p->log, VKF_LOG_ERROR, "unknown model folder '%s'", folder_name);
        return VKF_ENOTFOUND;
    }
    w = vkf_calloc(1, sizeof(*w));
    VKF_CHECK_ALLOC(w);
    w->p = p;
    w->exts = f->exts;
    for (int i = 0; i < f->ndirs; i++) {
        struct stat st;
        if (!realpath(f->dirs[i], w->root) || stat(w->root, &st) != 0 ||
            !S_ISDIR(st.st_mode))
            continue;
        w->root_len = strlen(w->root);
        if (w->root_len == 1) {
            vkf_logf(p->log, VKF_LOG_WARN, "not listing '/' as a model folder");
            continue;
        }
        memcpy(w->path, w->root, w->root_len + 1);
        w->depth = 0;
        w->open_dirs[0].dev = st.st_dev;
        w->open_dirs[0].ino = st.st_ino;
        VKF_TRY(walk_dir(w, w->root_len));
    }
    if (w->n > 1) {
        qsort(w->names, (size_t)w->n, sizeof(char *), cmp_str);
        int k = 1;
        for (int i = 1; i < w->n; i++) {
            if (strcmp(w->names[i], w->names[k - 1]) == 0)
                vkf_free(w->names[i]);
            else
                w->names[k++] = w->names[i];
        }
        w->n = k;
    }
    *names = w->names;
    *count = w->n;
    vkf_free(w);
    return 0;
fail:
    if (w)
        vkf_strv_free(&w->names, w->n);
    vkf_free(w);
    return err;
}

void vkf_strv_free(char ***v, int count)
{
    if (!v || !*v)
        return;
    for (int i = 0; i < count; i++)
        vkf_free((*v)[i]);
    vkf_free(*v);
    *v = NULL;
}

/* ---- lookup -------------------------------------------------------------- */

/* Regular file `clean` (a cleaned relative name) under dir: 0 and *out,
 * VKF_ENOTFOUND (not logged), or VKF_EPERM if it resolves outside dir. */
static int lookup_in(const vkf_paths *p, const char *dir, const char *clean,
                     char **out)
{
    char full[PATH_MAX], rroot[PATH_MAX], rfile[PATH_MAX];
    struct stat st;
    int len = snprintf(full, sizeof(full), "%s/%s", dir, clean);
    if (len < 0 || (size_t)len >= sizeof(full))
        return VKF_ENOTFOUND;
    if (stat(full, &st) != 0) {
        if (lstat(full, &st) == 0 && S_ISLNK(st.st_mode))
            vkf_logf(p->log, VKF_LOG_WARN,
                     "path %s exists but doesn't link anywhere, skipping", full);
        return VKF_ENOTFOUND;
    }
    if (!S_ISREG(st.st_mode))
        return VKF_ENOTFOUND;
    if (!realpath(dir, rroot) || !realpath(full, rfile) || !real_under(rroot, rfile)) {
        vkf_logf(p->log, VKF_LOG_ERROR,
                 "refusing '%s': it resolves outside '%s'", full, dir);
        return VKF_EPERM;
    }
    *out = vkf_strdup(full);
    return *out ? 0 : VKF_ENOMEM;
}

int vkf_paths_resolve(const vkf_paths *p, const char *folder_name, const char *name,
                      char **full_path)
{
    int err = 0;
    char clean[PATH_MAX];
    if (!p || !folder_name || !full_path)
        return VKF_EINVAL;
    *full_path = NULL;
    const folder *f = find_folder(p, folder_name);
    if (f) {
        VKF_TRY(clean_name(p, "model name", name, clean, sizeof(clean)));
        for (int i = 0; i < f->ndirs; i++) {
            err = lookup_in(p, f->dirs[i], clean, full_path);
            if (err != VKF_ENOTFOUND)
                return err;
        }
    }
    vkf_logf(p->log, VKF_LOG_ERROR,
             "Model in folder '%s' with filename '%s' not found.", folder_name,
             name ? name : "");
    return VKF_ENOTFOUND;
fail:
    return err;
}

int vkf_paths_resolve_input(const vkf_paths *p, const char *name, char **full_path)
{
    static const struct { const char *tag; int which; } tags[] = {
        {"[output]", 1}, {"[input]", 0}, {"[temp]", 2},
    };
    int err = 0;
    char stripped[PATH_MAX], clean[PATH_MAX];
    if (!p || !name || !full_path)
        return VKF_EINVAL;
    *full_path = NULL;
    size_t len = strlen(name);
    if (len >= sizeof(stripped)) {
        vkf_logf(p->log, VKF_LOG_ERROR, "input name is too long");
        return VKF_EINVAL;
    }
    memcpy(stripped, name, len + 1);
    int which = 0;
    for (size_t i = 0; i < VKF_ARRAY_SIZE(tags); i++) {
        size_t tl = strlen(tags[i].tag);
        if (len >= tl && strcmp(name + len - tl, tags[i].tag) == 0) {
            which = tags[i].which;
            len -= tl;
            if (len > 0 && stripped[len - 1] == ' ')
                len--;
            stripped[len] = 0;
            break;
        }
    }
    const char *dir = which == 1 ? p->output_dir : which == 2 ? p->temp_dir : p->input_dir;
    static const char *const dir_names[] = {"input", "output", "temp"};
    if (!dir) {
        vkf_logf(p->log, VKF_LOG_ERROR, "no %s directory configured", dir_names[which]);
        return VKF_EINVAL;
    }
    VKF_TRY(clean_name(p, "file name", stripped, clean, sizeof(clean)));
    err = lookup_in(p, dir, clean, full_path);
    if (err == VKF_ENOTFOUND)
        vkf_logf(p->log, VKF_LOG_ERROR, "Invalid image file: %s", name);
fail:
    return err;
}

/* ---- output files -------------------------------------------------------- */

/* mkdir -p for an absolute path. */
static int make_dirs(const vkf_paths *p, const char *path)
{
    char buf[PATH_MAX];
    size_t len = strlen(path);
    if (len >= sizeof(buf))
        return VKF_EINVAL;
    memcpy(buf, path, len + 1);
    for (size_t i = 1; i <= len; i++) {
        if (buf[i] != '/' && buf[i] != 0)
            continue;
        char saved = buf[i];
        buf[i] = 0;
        if (mkdir(buf, 0755) != 0 && errno != EEXIST) {
            vkf_logf(p->log, VKF_LOG_ERROR, "cannot create directory '%s': %s", buf,
                     strerror(errno));
            return VKF_EIO;
        }
        buf[i] = saved;
    }
    return 0;
}

int vkf_paths_output_file(const vkf_paths *p, bool temp, const char *subfolder,
                          const char *filename, char **full_path)
{
    int err = 0;
    char rel[PATH_MAX], clean[PATH_MAX], path[PATH_MAX], real[PATH_MAX];
    if (!p || !filename || !full_path)
        return VKF_EINVAL;
    *full_path = NULL;
    const char *root = temp ? p->temp_dir : p->output_dir;
    if (!root) {
        vkf_logf(p->log, VKF_LOG_ERROR, "no %s directory configured",
                 temp ? "temp" : "output");
        return VKF_EINVAL;
    }
    if (!subfolder)
        subfolder = "";
    if (subfolder[0] && !vkf_path_name_is_safe(subfolder)) {
        vkf_logf(p->log, VKF_LOG_ERROR,
                 "refusing subfolder '%s': it must stay inside the %s directory",
                 subfolder, temp ? "temp" : "output");
        return VKF_EPERM;
    }
    const char *last = filename + strlen(filename);
    while (last > filename && !is_sep(last[-1]))
        last--;
    if (!last[0] || strcmp(last, ".") == 0) {
        vkf_logf(p->log, VKF_LOG_ERROR, "refusing output file name '%s'", filename);
        return VKF_EPERM;
    }
    int n = snprintf(rel, sizeof(rel), "%s%s%s", subfolder, subfolder[0] ? "/" : "",
                     filename);
    if (n < 0 || (size_t)n >= sizeof(rel)) {
        vkf_logf(p->log, VKF_LOG_ERROR, "output path is too long");
        return VKF_EINVAL;
    }
    VKF_TRY(clean_name(p, "output file name", rel, clean, sizeof(clean)));
    VKF_TRY(make_dirs(p, root));
    if (!realpath(root, path)) {
        vkf_logf(p->log, VKF_LOG_ERROR, "cannot resolve '%s': %s", root, strerror(errno));
        return VKF_EIO;
    }
    char root_real[PATH_MAX];
    memcpy(root_real, path, sizeof(root_real));
    /* Walk the directory part one component at a time, creating what is
     * missing and checking that nothing (a symlink) leads out of the root. */
    size_t len = strlen(path);
    const char *s = clean;
    for (;;) {
        const char *e = strchr(s, '/');
        size_t cl = e ? (size_t)(e - s) : strlen(s);
        if (len + 1 + cl >= sizeof(path)) {
            vkf_logf(p->log, VKF_LOG_ERROR, "output path is too long");
            return VKF_EINVAL;
        }
        path[len] = '/';
        memcpy(path + len + 1, s, cl);
        len += 1 + cl;
        path[len] = 0;
        struct stat st;
        if (!e) {
            if (lstat(path, &st) == 0) {
                if (S_ISDIR(st.st_mode) ||
                    (S_ISLNK(st.st_mode) &&
                     (!realpath(path, real) || !real_under(root_real, real)))) {
                    vkf_logf(p->log, VKF_LOG_ERROR,
                             "refusing to write '%s': it is a directory or leads "
                             "outside '%s'", path, root);
                    return VKF_EPERM;
                }
            }
            break;
        }
        if (mkdir(path, 0755) != 0 && errno != EEXIST) {
            vkf_logf(p->log, VKF_LOG_ERROR, "cannot create directory '%s': %s", path,
                     strerror(errno));
            return VKF_EIO;
        }
        if (!realpath(path, real) || !real_under(root_real, real) || !is_dir(real)) {
            vkf_logf(p->log, VKF_LOG_ERROR,
                     "refusing subfolder '%s': it leads outside '%s'", path, root);
            return VKF_EPERM;
        }
        s = e + 1;
    }
    *full_path = vkf_strdup(path);
    VKF_CHECK_ALLOC(*full_path);
fail:
    return err;
}

/* ---- extra_model_paths.yaml ---------------------------------------------- */

typedef struct sbuf {
    char *s;
    size_t len, cap;
} sbuf;

static int sbuf_add(sbuf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *ns = vkf_realloc(b->s, cap);
        if (!ns)
            return VKF_ENOMEM;
        b->s = ns;
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = 0;
    return 0;
}

/* os.path.expandvars(os.path.expanduser(s)): "~" / "~user" at the start,
 * then $NAME and ${NAME}; unknown variables stay as they are.  The
 * environment is read here because extra_model_paths.yaml is defined to
 * expand it (the one getenv in the library). */
static int expand_path(const char *s, char **out)
{
    int err = 0;
    sbuf b = {0};
    if (s[0] == '~') {
        size_t ul = strcspn(s + 1, "/");
        const char *home = NULL;
        if (ul == 0) {
            home = getenv("HOME");
            if (!home) {
                struct passwd *pw = getpwuid(getuid());
                home = pw ? pw->pw_dir : NULL;
            }
        } else {
            char user[256];
            if (ul < sizeof(user)) {
                memcpy(user, s + 1, ul);
                user[ul] = 0;
                struct passwd *pw = getpwnam(user);
                home = pw ? pw->pw_dir : NULL;
            }
        }
        if (home) {
            size_t hl = strlen(home);
            while (hl > 1 && home[hl - 1] == '/')
                hl--;
            VKF_TRY(sbuf_add(&b, home, hl));
            s += 1 + ul;
        }
    }
    while (*s) {
        if (s[0] != '$') {
            size_t run = strcspn(s, "$");
            VKF_TRY(sbuf_add(&b, s, run));
            s += run;
            continue;
        }
        const char *name = s + 1;
        size_t nl = 0, used = 0;
        if (s[1] == '{') {
            const char *close = strchr(s + 2, '}');
            if (close) {
                name = s + 2;
                nl = (size_t)(close - name);
                used = nl + 3;
            }
        } else {
            while (isalnum((unsigned char)name[nl]) || name[nl] == '_')
                nl++;
            used = nl + 1;
        }
        const char *value = NULL;
        char var[256];
        if (nl > 0 && nl < sizeof(var)) {
            memcpy(var, name, nl);
            var[nl] = 0;
            value = getenv(var);
        }
        if (value) {
            VKF_TRY(sbuf_add(&b, value, strlen(value)));
            s += used;
        } else {
            VKF_TRY(sbuf_add(&b, s, used ? used : 1));
            s += used ? used : 1;
        }
    }
    if (!b.s)
        VKF_TRY(sbuf_add(&b, "", 0));
    *out = b.s;
    return 0;
fail:
    vkf_free(b.s);
    return err;
}

static int yaml_error(const vkf_paths *p, const char *file, const vkf_yaml_node *n,
                      const char *what)
{
    vkf_logf(p->log, VKF_LOG_ERROR, "%s:%d: %s", file, n->line, what);
    return VKF_EPARSE;
}

static bool is_reserved_key(const char *key)
{
    return strcmp(key, "base_path") == 0 || strcmp(key, "is_default") == 0;
}

/* Checks the shape before anything is added, so a bad file changes nothing
 * (short of running out of memory half-way). */
static int check_extra_yaml(const vkf_paths *p, const char *file,
                            const vkf_yaml_node *root)
{
    if (root->type == VKF_YAML_NULL)
        return 0;
    if (root->type != VKF_YAML_MAP)
        return yaml_error(p, file, root, "expected sections (name: followed by "
                                         "indented 'folder: path' entries)");
    for (int i = 0; i < root->n; i++) {
        const vkf_yaml_node *sec = root->entries[i].value;
        if (sec->type == VKF_YAML_NULL)
            continue;
        if (sec->type != VKF_YAML_MAP)
            return yaml_error(p, file, sec, "a section must hold 'folder: path' entries");
        for (int j = 0; j < sec->n; j++) {
            const vkf_yaml_node *v = sec->entries[j].value;
            if (strcmp(sec->entries[j].key, "is_default") == 0)
                continue;
            if (v->type == VKF_YAML_MAP)
                return yaml_error(p, file, v, "expected a path, not a mapping");
            if (v->type == VKF_YAML_SEQ) {
                if (strcmp(sec->entries[j].key, "base_path") == 0)
                    return yaml_error(p, file, v, "base_path must be a single path");
                for (int k = 0; k < v->n; k++)
                    if (v->entries[k].value->type != VKF_YAML_SCALAR)
                        return yaml_error(p, file, v->entries[k].value,
                                          "expected a path in the list");
            }
        }
    }
    return 0;
}

/* Each non-empty line of `value` is one search directory. */
static int add_yaml_paths(vkf_paths *p, const char *folder_name, const char *value,
                          const char *base, const char *yaml_dir, bool first)
{
    int err = 0;
    char *one = NULL, *full = NULL;
    const char *s = value;
    while (*s) {
        size_t len = strcspn(s, "\n");
        size_t trimmed = len;
        while (trimmed > 0 && isspace((unsigned char)s[trimmed - 1]))
            trimmed--;
        if (trimmed > 0) {
            one = vkf_strndup(s, trimmed);
            VKF_CHECK_ALLOC(one);
            VKF_TRY(abspath(one, base ? base : yaml_dir, &full));
            vkf_logf(p->log, VKF_LOG_INFO, "Adding extra search path %s %s",
                     folder_name, full);
            err = add_dir_owned(p, folder_name, full, first);
            full = NULL;
            if (err < 0)
                goto fail;
            vkf_free(one);
            one = NULL;
        }
        s += len + (s[len] ? 1 : 0);
    }
fail:
    vkf_free(one);
    return err;
}

int vkf_paths_load_extra_yaml(vkf_paths *p, const char *yaml_path)
{
    int err = 0;
    vkf_yaml_node *root = NULL;
    char *yaml_dir = NULL, *base = NULL;
    if (!p || !yaml_path)
        return VKF_EINVAL;
    VKF_TRY(vkf_yaml_parse_file(yaml_path, p->log, &root));
    VKF_TRY(check_extra_yaml(p, yaml_path, root));
    VKF_TRY(abspath(yaml_path, NULL, &yaml_dir));
    char *slash = strrchr(yaml_dir, '/');
    slash[slash == yaml_dir ? 1 : 0] = 0;

    for (int i = 0; root->type == VKF_YAML_MAP && i < root->n; i++) {
        const vkf_yaml_node *sec = root->entries[i].value;
        if (sec->type != VKF_YAML_MAP)
            continue;
        const vkf_yaml_node *bp = vkf_yaml_map_get(sec, "base_path");
        if (bp && bp->type == VKF_YAML_SCALAR) {
            char *expanded = NULL;
            VKF_TRY(expand_path(bp->scalar, &expanded));
            err = abspath(expanded, yaml_dir, &base);
            vkf_free(expanded);
            if (err < 0)
                goto fail;
        }
        bool first = vkf_yaml_is_true(vkf_yaml_map_get(sec, "is_default"));
        for (int j = 0; j < sec->n; j++) {
            const char *key = sec->entries[j].key;
            const vkf_yaml_node *v = sec->entries[j].value;
            if (is_reserved_key(key))
                continue;
            if (v->type == VKF_YAML_NULL) {
                vkf_logf(p->log, VKF_LOG_WARN, "%s:%d: '%s' has no path, ignored",
                         yaml_path, v->line, key);
            } else if (v->type == VKF_YAML_SCALAR) {
                VKF_TRY(add_yaml_paths(p, key, v->scalar, base, yaml_dir, first));
            } else {
                for (int k = 0; k < v->n; k++)
                    VKF_TRY(add_yaml_paths(p, key, v->entries[k].value->scalar, base,
                                           yaml_dir, first));
            }
        }
        vkf_free(base);
        base = NULL;
    }
fail:
    vkf_free(base);
    vkf_free(yaml_dir);
    vkf_yaml_free(&root);
    return err;
}

/* ---- atomic files --------------------------------------------------------- */

struct vkf_atomic_file {
    FILE *fp;
    char *tmp_path;
    char *final_path;
    bool failed;
};

int vkf_atomic_file_open(vkf_atomic_file **out, const char *final_path)
{
    int err = 0;
    vkf_atomic_file *f = NULL;
    int fd = -1;
    if (!out || !final_path || !final_path[0])
        return VKF_EINVAL;
    *out = NULL;
    f = vkf_calloc(1, sizeof(*f));
    VKF_CHECK_ALLOC(f);
    f->final_path = vkf_strdup(final_path);
    VKF_CHECK_ALLOC(f->final_path);
    const char *slash = strrchr(final_path, '/');
    const char *base = slash ? slash + 1 : final_path;
    int dir_len = (int)(base - final_path);
    /* Keep the temporary's name within NAME_MAX however long the target's. */
    f->tmp_path = vkf_asprintf("%.*s.%.200s.XXXXXX.tmp", dir_len, final_path, base);
    VKF_CHECK_ALLOC(f->tmp_path);
    fd = mkstemps(f->tmp_path, 4);
    if (fd < 0) {
        vkf_free(f->tmp_path);
        f->tmp_path = NULL;
        err = VKF_EIO;
        goto fail;
    }
    /* mkstemp makes 0600 files; outputs get the usual 0644 (reading the
     * umask would change it process-wide for a moment, racing threads). */
    if (fchmod(fd, 0644) != 0) {
        err = VKF_EIO;
        goto fail;
    }
    f->fp = fdopen(fd, "wb");
    if (!f->fp) {
        err = VKF_EIO;
        goto fail;
    }
    fd = -1;
    *out = f;
    return 0;
fail:
    if (fd >= 0)
        close(fd);
    vkf_atomic_file_abort(&f);
    return err;
}

int vkf_atomic_file_write(vkf_atomic_file *f, const void *data, size_t size)
{
    if (!f || !f->fp || (!data && size))
        return VKF_EINVAL;
    if (size && fwrite(data, 1, size, f->fp) != size) {
        f->failed = true;
        return VKF_EIO;
    }
    return 0;
}

void *vkf_atomic_file_stream(vkf_atomic_file *f)
{
    return f ? f->fp : NULL;
}

int vkf_atomic_file_commit(vkf_atomic_file **pf)
{
    int err = 0;
    if (!pf || !*pf)
        return VKF_EINVAL;
    vkf_atomic_file *f = *pf;
    if (f->failed || fflush(f->fp) != 0 || ferror(f->fp) || fsync(fileno(f->fp)) != 0) {
        err = VKF_EIO;
        goto fail;
    }
    int rc = fclose(f->fp);
    f->fp = NULL;
    if (rc != 0 || rename(f->tmp_path, f->final_path) != 0) {
        err = VKF_EIO;
        goto fail;
    }
    vkf_free(f->tmp_path);
    f->tmp_path = NULL;
    /* Make the rename itself durable; the file is already in place, so a
     * failure here is not reported. */
    char *slash = strrchr(f->final_path, '/');
    if (slash)
        *(slash == f->final_path ? slash + 1 : slash) = 0;
    int dfd = open(slash ? f->final_path : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        (void)fsync(dfd);
        close(dfd);
    }
fail:
    vkf_atomic_file_abort(pf);
    return err;
}

void vkf_atomic_file_abort(vkf_atomic_file **pf)
{
    if (!pf || !*pf)
        return;
    vkf_atomic_file *f = *pf;
    if (f->fp)
        fclose(f->fp);
    if (f->tmp_path)
        unlink(f->tmp_path);
    vkf_free(f->tmp_path);
    vkf_free(f->final_path);
    vkf_free(f);
    *pf = NULL;
}

static int cmp_image_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* LoadImage's list: the image files directly in the input directory
 * (os.listdir + filter_files_content_types "image"), sorted. */
int vkf_paths_list_input_images(const vkf_paths *paths, char ***opts, int *count)
{
    static const char *const exts[] = {".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp",
                                       ".tif", ".tiff", ".avif", ".jxl", ".ico", ".apng"};
    const char *dir = vkf_paths_input_dir(paths);
    DIR *d = dir ? opendir(dir) : NULL;
    if (!d)
        return 0;
    char **v = NULL;
    int n = 0, cap = 0, err = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *ext = strrchr(e->d_name, '.');
        bool image = false;
        for (size_t k = 0; ext && ext != e->d_name && k < VKF_ARRAY_SIZE(exts); k++)
            image = image || strcasecmp(ext, exts[k]) == 0;
        char *full = image ? vkf_asprintf("%s/%s", dir, e->d_name) : NULL;
        struct stat st;
        if (image && !full) {
            err = VKF_ENOMEM;
            break;
        }
        if (full && stat(full, &st) == 0 && S_ISREG(st.st_mode)) {
            char *name = vkf_strdup(e->d_name);
            if (!name || (err = vkf_grow(&v, &cap, n + 1, sizeof(*v))) < 0) {
                vkf_free(name);
                vkf_free(full);
                err = err < 0 ? err : VKF_ENOMEM;
                break;
            }
            v[n++] = name;
        }
        vkf_free(full);
    }
    closedir(d);
    if (err < 0) {
        vkf_strv_free(&v, n);
        return err;
    }
    if (n > 1)
        qsort(v, (size_t)n, sizeof(*v), cmp_image_name);
    *opts = v;
    *count = n;
    return 0;
}
