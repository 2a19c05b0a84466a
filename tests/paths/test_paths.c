/* Unit tests of core/paths.c: model folders, extra_model_paths.yaml, path
 * safety, output confinement and atomic files. */
#include <dirent.h>
#include <limits.h>

#include "harness.h"
#include "vkflow/paths.h"

static test_log tl;
static char *tmp;   /* per-run scratch directory */

static char *at(const char *rel)
{
    static char bufs[8][PATH_MAX];
    static int k;
    char *b = bufs[k++ % 8];
    snprintf(b, PATH_MAX, "%s/%s", tmp, rel);
    return b;
}

/* Checks a listing against a NULL-terminated list of expected names. */
static void check_list(const vkf_paths *p, const char *folder, const char *const *want,
                       int line)
{
    char **names = NULL;
    int count = -1;
    int err = vkf_paths_list(p, folder, &names, &count);
    int nwant = 0;
    while (want[nwant])
        nwant++;
    bool same = err == 0 && count == nwant;
    for (int i = 0; same && i < count; i++)
        same = strcmp(names[i], want[i]) == 0;
    test_checks++;
    if (!same) {
        test_failures++;
        fprintf(stderr, "FAIL %s:%d: listing of '%s' (err %d):\n", __FILE__, line,
                folder, err);
        for (int i = 0; i < count; i++)
            fprintf(stderr, "    got  %s\n", names[i]);
        for (int i = 0; i < nwant; i++)
            fprintf(stderr, "    want %s\n", want[i]);
    }
    vkf_strv_free(&names, count);
    CHECK(names == NULL);
}
#define CHECK_LIST(p, folder, ...)                                            \
    check_list(p, folder, (const char *const[]){__VA_ARGS__, NULL}, __LINE__)

static void check_resolve(const vkf_paths *p, const char *folder, const char *name,
                          int want_err, const char *want_path, int line)
{
    char *full = (char *)"unset";
    int err = vkf_paths_resolve(p, folder, name, &full);
    test_checks++;
    if (err != want_err || (want_path && (!full || strcmp(full, want_path) != 0)) ||
        (!want_path && full)) {
        test_failures++;
        fprintf(stderr, "FAIL %s:%d: resolve('%s', '%s') = %d '%s', want %d '%s'\n",
                __FILE__, line, folder, name ? name : "(null)", err,
                full ? full : "(null)", want_err, want_path ? want_path : "(null)");
    }
    vkf_free(full);
}
#define CHECK_RESOLVE(p, folder, name, err, path)                             \
    check_resolve(p, folder, name, err, path, __LINE__)

/* Two ComfyUI-style roots: A has a models/ subfolder, B is a models dir. */
static void make_roots(void)
{
    test_write(tmp, "A/models/checkpoints/b.safetensors", "b");
    test_write(tmp, "A/models/checkpoints/a.ckpt", "a-from-A");
    test_write(tmp, "A/models/checkpoints/sub/c.pt", "c");
    test_write(tmp, "A/models/checkpoints/sub/deeper/d.PTH", "d");
    test_write(tmp, "A/models/checkpoints/notes.txt", "not a model");
    test_write(tmp, "A/models/checkpoints/cfg.yaml", "not a model");
    test_write(tmp, "A/models/checkpoints/.safetensors", "no extension");
    test_write(tmp, "A/models/checkpoints/.git/objects/x.safetensors", "git");
    test_write(tmp, "A/models/configs/v1.yaml", "cfg");
    test_write(tmp, "A/models/configs/v1.ckpt", "not a config");
    test_write(tmp, "A/models/clip/clip_l.safetensors", "c");
    test_write(tmp, "A/models/text_encoders/t5.safetensors", "t");
    test_write(tmp, "A/models/unet/flux.sft", "u");
    test_write(tmp, "A/models/diffusion_models/wan.safetensors", "d");
    test_write(tmp, "A/models/controlnet/canny.pth", "c");
    test_write(tmp, "A/models/t2i_adapter/depth.pth", "t");
    test_write(tmp, "A/models/diffusers/sd15/model_index.json", "{}");
    test_write(tmp, "A/models/diffusers/sd15/unet/x.bin", "");
    test_write(tmp, "A/models/diffusers/not_a_pipeline/x.bin", "");
    test_write(tmp, "A/models/classifiers/plain", "");
    test_write(tmp, "A/models/classifiers/x.bin", "");
    test_write(tmp, "B/checkpoints/a.ckpt", "a-from-B");
    test_write(tmp, "B/checkpoints/z.SFT", "z");
    test_write(tmp, "B/checkpoints/sub/c.pt", "c2");
    test_write(tmp, "outside/secret.safetensors", "secret");
    test_write(tmp, "outside/dir/e.safetensors", "e");
    /* symlinks: escaping (file and dir), inside the root, a loop, dangling */
    test_symlink(at("outside/secret.safetensors"), tmp,
                 "A/models/checkpoints/evil.safetensors");
    test_symlink("../../../outside/dir", tmp, "A/models/checkpoints/evil_dir");
    test_symlink("sub/c.pt", tmp, "A/models/checkpoints/link.pt");
    test_symlink("..", tmp, "A/models/checkpoints/sub/loop");
    test_symlink("nowhere.safetensors", tmp, "A/models/checkpoints/dangling.safetensors");
    /* a whole folder symlinked to another disk is fine */
    test_write(tmp, "otherdisk/loras/style.safetensors", "s");
    test_symlink(at("otherdisk/loras"), tmp, "A/models/loras");
}

static vkf_paths *new_paths(void)
{
    vkf_paths *p = NULL;
    CHECK_EQ_INT(vkf_paths_create(&p, &tl.log), 0);
    CHECK_EQ_INT(vkf_paths_add_models_root(p, at("A")), 0);
    CHECK_EQ_INT(vkf_paths_add_models_root(p, at("B")), 0);
    return p;
}

static void test_listing(void)
{
    vkf_paths *p = new_paths();
    CHECK_LIST(p, "checkpoints", "a.ckpt", "b.safetensors", "link.pt", "sub/c.pt",
               "sub/deeper/d.PTH", "z.SFT");
    CHECK_LIST(p, "configs", "v1.yaml");
    CHECK_LIST(p, "loras", "style.safetensors");
    CHECK_LIST(p, "clip", "clip_l.safetensors", "t5.safetensors");
    CHECK_LIST(p, "text_encoders", "clip_l.safetensors", "t5.safetensors");
    CHECK_LIST(p, "unet", "flux.sft", "wan.safetensors");
    CHECK_LIST(p, "controlnet", "canny.pth", "depth.pth");
    CHECK_LIST(p, "diffusers", "sd15");
    CHECK_LIST(p, "classifiers", "plain");
    vkf_paths_destroy(&p);
    CHECK(p == NULL);
    vkf_paths_destroy(&p);
    vkf_paths_destroy(NULL);
}

static void test_empty_and_unknown(void)
{
    vkf_paths *p = new_paths();
    char **names = (char **)1;
    int count = -1;
    CHECK_EQ_INT(vkf_paths_list(p, "vae", &names, &count), 0);
    CHECK_EQ_INT(count, 0);
    vkf_strv_free(&names, count);
    test_log_clear(&tl);
    CHECK_EQ_INT(vkf_paths_list(p, "no_such_folder", &names, &count), VKF_ENOTFOUND);
    CHECK(strstr(tl.last, "no_such_folder") != NULL);
    vkf_paths_destroy(&p);
}

static void test_aliases(void)
{
    vkf_paths *p = NULL;
    CHECK_EQ_INT(vkf_paths_create(&p, &tl.log), 0);
    CHECK_STR(vkf_paths_canonical_folder(p, "clip"), "text_encoders");
    CHECK_STR(vkf_paths_canonical_folder(p, "unet"), "diffusion_models");
    CHECK_STR(vkf_paths_canonical_folder(p, "checkpoints"), "checkpoints");
    CHECK_STR(vkf_paths_canonical_folder(p, "audio_encoders"), "audio_encoders");
    CHECK(vkf_paths_canonical_folder(p, "t2i_adapter") == NULL);
    CHECK(vkf_paths_canonical_folder(p, "bogus") == NULL);
    CHECK(vkf_paths_canonical_folder(p, NULL) == NULL);
    CHECK_EQ_INT(vkf_paths_add_folder_dir(p, "ipadapter", at("ip"), false), 0);
    CHECK_STR(vkf_paths_canonical_folder(p, "ipadapter"), "ipadapter");
    vkf_paths_destroy(&p);
}

static void test_lookup(void)
{
    vkf_paths *p = new_paths();
    char want[PATH_MAX];
    snprintf(want, sizeof(want), "%s/A/models/checkpoints/a.ckpt", tmp);
    CHECK_RESOLVE(p, "checkpoints", "a.ckpt", 0, want);
    snprintf(want, sizeof(want), "%s/B/checkpoints/z.SFT", tmp);
    CHECK_RESOLVE(p, "checkpoints", "z.SFT", 0, want);
    snprintf(want, sizeof(want), "%s/A/models/checkpoints/sub/c.pt", tmp);
    CHECK_RESOLVE(p, "checkpoints", "sub/c.pt", 0, want);
    CHECK_RESOLVE(p, "checkpoints", "sub\\c.pt", 0, want);     /* Windows workflow */
    CHECK_RESOLVE(p, "checkpoints", "./sub//c.pt", 0, want);
    snprintf(want, sizeof(want), "%s/A/models/checkpoints/link.pt", tmp);
    CHECK_RESOLVE(p, "checkpoints", "link.pt", 0, want);        /* symlink inside */
    snprintf(want, sizeof(want), "%s/A/models/unet/flux.sft", tmp);
    CHECK_RESOLVE(p, "diffusion_models", "flux.sft", 0, want);
    CHECK_RESOLVE(p, "unet", "flux.sft", 0, want);
    snprintf(want, sizeof(want), "%s/A/models/loras/style.safetensors", tmp);
    CHECK_RESOLVE(p, "loras", "style.safetensors", 0, want);    /* folder symlink */

    test_log_clear(&tl);
    CHECK_RESOLVE(p, "checkpoints", "missing.safetensors", VKF_ENOTFOUND, NULL);
    CHECK_STR(tl.last, "Model in folder 'checkpoints' with filename "
                       "'missing.safetensors' not found.");
    CHECK_RESOLVE(p, "checkpoints", "sub", VKF_ENOTFOUND, NULL);  /* a directory */
    CHECK_RESOLVE(p, "checkpoints", "dangling.safetensors", VKF_ENOTFOUND, NULL);
    test_log_clear(&tl);
    CHECK_RESOLVE(p, "bogus", "a.ckpt", VKF_ENOTFOUND, NULL);
    CHECK_STR(tl.last, "Model in folder 'bogus' with filename 'a.ckpt' not found.");
    vkf_paths_destroy(&p);
}

static void test_refusals(void)
{
    vkf_paths *p = new_paths();
    static const char *const bad[] = {
        "../x.ckpt", "sub/../../x.ckpt", "sub/..", "..", "..\\x.ckpt",
        "sub\\..\\..\\x", "/etc/passwd", "\\x.ckpt", "\\\\server\\share\\x.ckpt",
        "C:\\models\\x.ckpt", "c:x.ckpt", "C:/x.ckpt", "", ".", "./", "//",
    };
    for (size_t i = 0; i < VKF_ARRAY_SIZE(bad); i++) {
        CHECK(!vkf_path_name_is_safe(bad[i]));
        CHECK_RESOLVE(p, "checkpoints", bad[i], VKF_EPERM, NULL);
    }
    CHECK_RESOLVE(p, "checkpoints", NULL, VKF_EPERM, NULL);
    CHECK(!vkf_path_name_is_safe(NULL));
    CHECK(vkf_path_name_is_safe("a.ckpt"));
    CHECK(vkf_path_name_is_safe("sub/a..b.ckpt"));
    CHECK(vkf_path_name_is_safe("..a/b"));
    CHECK(vkf_path_name_is_safe("a\\b"));
    /* symlinks leading out of the root */
    test_log_clear(&tl);
    CHECK_RESOLVE(p, "checkpoints", "evil.safetensors", VKF_EPERM, NULL);
    CHECK(strstr(tl.last, "outside") != NULL);
    CHECK_RESOLVE(p, "checkpoints", "evil_dir/e.safetensors", VKF_EPERM, NULL);

    CHECK(vkf_path_is_inside(at("A"), at("A/models/checkpoints/a.ckpt")));
    CHECK(vkf_path_is_inside(at("A"), at("A")));
    CHECK(vkf_path_is_inside(at("A/models/checkpoints"), at("A/models/checkpoints/link.pt")));
    CHECK(!vkf_path_is_inside(at("A/models/checkpoints"),
                              at("A/models/checkpoints/evil.safetensors")));
    CHECK(!vkf_path_is_inside(at("A/models/checkpoints"), at("A/models/checkpoints/nope")));
    CHECK(!vkf_path_is_inside(at("A"), at("B/checkpoints/a.ckpt")));
    CHECK(!vkf_path_is_inside(at("A/mod"), at("A/models")));   /* prefix, not parent */
    CHECK(vkf_path_is_inside("/", at("A")));
    CHECK(!vkf_path_is_inside(NULL, at("A")));
    vkf_paths_destroy(&p);
}

static void test_extra_yaml(void)
{
    setenv("HOME", at("home"), 1);
    setenv("VKF_TEST_DISK", at("disk"), 1);
    test_write(tmp, "cfg/extra_model_paths.yaml",
               "# ComfyUI example layout\n"
               "a111:\n"
               "    base_path: ../sd/   # relative to this file\n"
               "    checkpoints: models/Stable-diffusion\n"
               "    configs: models/Stable-diffusion\n"
               "    vae: models/VAE\n"
               "    loras: |\n"
               "         models/Lora\n"
               "         models/LyCORIS\n"
               "    upscale_models: |\n"
               "                  models/ESRGAN\n"
               "                  models/RealESRGAN\n"
               "    unet: models/unet   # legacy name\n"
               "    clip: models/clip\n"
               "\n"
               "home:\n"
               "    base_path: ~/comfy\n"
               "    checkpoints: ckpt\n"
               "    ipadapter: ipa\n"
               "\n"
               "env:\n"
               "    base_path: ${VKF_TEST_DISK}/x\n"
               "    vae: $VKF_TEST_DISK/vae\n"
               "    controlnet: /abs/controlnet\n"
               "\n"
               "default_first:\n"
               "    is_default: true\n"
               "    checkpoints: |\n"
               "        first1\n"
               "        first2\n"
               "    vae: \"quoted vae\"\n"
               "\n"
               "no_base:\n"
               "    embeddings: emb\n"
               "    gligen: /abs/gligen\n"
               "    hypernetworks:\n"
               "      - hn1\n"
               "      - 'hn2'\n"
               "    style_models:\n"
               "empty_section:\n");
    test_write(tmp, "sd/models/Stable-diffusion/sd15.safetensors", "x");
    test_write(tmp, "sd/models/Stable-diffusion/sd15.yaml", "x");
    test_write(tmp, "sd/models/LyCORIS/ly.safetensors", "x");
    test_write(tmp, "home/comfy/ipa/ip.bin", "x");
    test_write(tmp, "home/comfy/ipa/readme.md", "x");

    vkf_paths *p = NULL;
    CHECK_EQ_INT(vkf_paths_create(&p, &tl.log), 0);
    CHECK_EQ_INT(vkf_paths_add_models_root(p, at("A")), 0);
    char ypath[PATH_MAX];
    snprintf(ypath, sizeof(ypath), "%s", at("cfg/extra_model_paths.yaml"));
    test_log_clear(&tl);
    CHECK_EQ_INT(vkf_paths_load_extra_yaml(p, ypath), 0);
    CHECK(strstr(tl.last, "style_models") != NULL);   /* warning: no path */

    CHECK_LIST(p, "checkpoints", "a.ckpt", "b.safetensors", "link.pt", "sd15.safetensors",
               "sub/c.pt", "sub/deeper/d.PTH");
    CHECK_LIST(p, "configs", "sd15.yaml", "v1.yaml");
    CHECK_LIST(p, "loras", "ly.safetensors", "style.safetensors");
    CHECK_LIST(p, "ipadapter", "ip.bin", "readme.md");   /* new folder: any file */

    /* Search order: is_default dirs first (each inserted at the front, as
     * ComfyUI does), then the models root, then the sections in order. */
    char want[PATH_MAX];
    test_write(tmp, "cfg/first2/dup.safetensors", "first2");
    test_write(tmp, "cfg/first1/dup.safetensors", "first1");
    test_write(tmp, "A/models/checkpoints/dup.safetensors", "A");
    snprintf(want, sizeof(want), "%s/cfg/first2/dup.safetensors", tmp);
    CHECK_RESOLVE(p, "checkpoints", "dup.safetensors", 0, want);
    test_write(tmp, "home/comfy/ckpt/h.safetensors", "h");
    test_write(tmp, "A/models/checkpoints/h.safetensors", "A");
    snprintf(want, sizeof(want), "%s/A/models/checkpoints/h.safetensors", tmp);
    CHECK_RESOLVE(p, "checkpoints", "h.safetensors", 0, want);
    test_write(tmp, "home/comfy/ckpt/h2.safetensors", "h");
    snprintf(want, sizeof(want), "%s/home/comfy/ckpt/h2.safetensors", tmp);
    CHECK_RESOLVE(p, "checkpoints", "h2.safetensors", 0, want);

    test_write(tmp, "sd/models/unet/u.safetensors", "u");
    snprintf(want, sizeof(want), "%s/sd/models/unet/u.safetensors", tmp);
    CHECK_RESOLVE(p, "diffusion_models", "u.safetensors", 0, want);
    test_write(tmp, "sd/models/clip/c.safetensors", "c");
    snprintf(want, sizeof(want), "%s/sd/models/clip/c.safetensors", tmp);
    CHECK_RESOLVE(p, "text_encoders", "c.safetensors", 0, want);
    test_write(tmp, "sd/models/RealESRGAN/r.pth", "r");
    snprintf(want, sizeof(want), "%s/sd/models/RealESRGAN/r.pth", tmp);
    CHECK_RESOLVE(p, "upscale_models", "r.pth", 0, want);
    /* ${VAR} is expanded in base_path; values are taken literally (ComfyUI) */
    test_write(tmp, "disk/vae/v.safetensors", "v");
    CHECK_RESOLVE(p, "vae", "v.safetensors", VKF_ENOTFOUND, NULL);
    test_write(tmp, "disk/x/$VKF_TEST_DISK/vae/w.safetensors", "w");
    snprintf(want, sizeof(want), "%s/disk/x/$VKF_TEST_DISK/vae/w.safetensors", tmp);
    CHECK_RESOLVE(p, "vae", "w.safetensors", 0, want);
    test_write(tmp, "cfg/quoted vae/q.safetensors", "q");
    snprintf(want, sizeof(want), "%s/cfg/quoted vae/q.safetensors", tmp);
    CHECK_RESOLVE(p, "vae", "q.safetensors", 0, want);
    test_write(tmp, "cfg/emb/e.pt", "e");
    snprintf(want, sizeof(want), "%s/cfg/emb/e.pt", tmp);
    CHECK_RESOLVE(p, "embeddings", "e.pt", 0, want);
    test_write(tmp, "cfg/hn2/h.pt", "h");
    snprintf(want, sizeof(want), "%s/cfg/hn2/h.pt", tmp);
    CHECK_RESOLVE(p, "hypernetworks", "h.pt", 0, want);

    /* Loading the same file again adds nothing new. */
    char **before = NULL, **after = NULL;
    int nb = 0, na = 0;
    CHECK_EQ_INT(vkf_paths_list(p, "checkpoints", &before, &nb), 0);
    CHECK_EQ_INT(vkf_paths_load_extra_yaml(p, ypath), 0);
    CHECK_EQ_INT(vkf_paths_list(p, "checkpoints", &after, &na), 0);
    CHECK_EQ_INT(na, nb);
    vkf_strv_free(&before, nb);
    vkf_strv_free(&after, na);
    vkf_paths_destroy(&p);
}

static void expect_yaml_error(const char *text, int want_err, const char *want_in_msg)
{
    test_write(tmp, "bad/extra.yaml", text);
    vkf_paths *p = NULL;
    CHECK_EQ_INT(vkf_paths_create(&p, &tl.log), 0);
    test_log_clear(&tl);
    CHECK_EQ_INT(vkf_paths_load_extra_yaml(p, at("bad/extra.yaml")), want_err);
    if (!strstr(tl.last, want_in_msg)) {
        fprintf(stderr, "  message '%s' lacks '%s'\n", tl.last, want_in_msg);
        CHECK(!"yaml error message");
    }
    CHECK(vkf_paths_canonical_folder(p, "newfolder") == NULL);   /* nothing added */
    vkf_paths_destroy(&p);
}

static void test_extra_yaml_errors(void)
{
    char msg[PATH_MAX + 16];
    snprintf(msg, sizeof(msg), "%s:3:", at("bad/extra.yaml"));
    expect_yaml_error("a:\n  newfolder: x\n   bad: indent\n", VKF_EPARSE, msg);
    snprintf(msg, sizeof(msg), "%s:2:", at("bad/extra.yaml"));
    expect_yaml_error("a:\n\tnewfolder: x\n", VKF_EPARSE, msg);
    expect_yaml_error("a:\n  newfolder: [x, y]\n", VKF_EPARSE, msg);
    expect_yaml_error("a: just a string\n", VKF_EPARSE, "bad/extra.yaml:1:");
    expect_yaml_error("a:\n  newfolder:\n    nested: map\n", VKF_EPARSE,
                      "bad/extra.yaml:3:");
    expect_yaml_error("- a\n- b\n", VKF_EPARSE, "bad/extra.yaml:1:");

    vkf_paths *p = NULL;
    CHECK_EQ_INT(vkf_paths_create(&p, &tl.log), 0);
    test_log_clear(&tl);
    CHECK_EQ_INT(vkf_paths_load_extra_yaml(p, at("bad/missing.yaml")), VKF_ENOTFOUND);
    CHECK(strstr(tl.last, "missing.yaml") != NULL);
    test_write(tmp, "bad/empty.yaml", "# nothing configured\n");
    CHECK_EQ_INT(vkf_paths_load_extra_yaml(p, at("bad/empty.yaml")), 0);
    vkf_paths_destroy(&p);
}

static void test_add_folder_dir(void)
{
    vkf_paths *p = NULL;
    char want[PATH_MAX];
    CHECK_EQ_INT(vkf_paths_create(&p, &tl.log), 0);
    test_write(tmp, "fd/one/m.safetensors", "1");
    test_write(tmp, "fd/two/m.safetensors", "2");
    CHECK_EQ_INT(vkf_paths_add_folder_dir(p, "vae", at("fd/one"), false), 0);
    CHECK_EQ_INT(vkf_paths_add_folder_dir(p, "vae", at("fd/two"), false), 0);
    snprintf(want, sizeof(want), "%s/fd/one/m.safetensors", tmp);
    CHECK_RESOLVE(p, "vae", "m.safetensors", 0, want);
    CHECK_EQ_INT(vkf_paths_add_folder_dir(p, "vae", at("fd/./two/"), true), 0);
    snprintf(want, sizeof(want), "%s/fd/two/m.safetensors", tmp);
    CHECK_RESOLVE(p, "vae", "m.safetensors", 0, want);
    CHECK_LIST(p, "vae", "m.safetensors");
    CHECK_EQ_INT(vkf_paths_add_folder_dir(p, "vae", "", false), VKF_EINVAL);
    CHECK_EQ_INT(vkf_paths_add_folder_dir(p, NULL, at("x"), false), VKF_EINVAL);
    vkf_paths_destroy(&p);
}

static void test_input(void)
{
    vkf_paths *p = NULL;
    char *full = NULL;
    CHECK_EQ_INT(vkf_paths_create(&p, &tl.log), 0);
    CHECK_EQ_INT(vkf_paths_resolve_input(p, "x.png", &full), VKF_EINVAL);
    CHECK_EQ_INT(vkf_paths_set_input_dir(p, at("io/input")), 0);
    CHECK_EQ_INT(vkf_paths_set_output_dir(p, at("io/output")), 0);
    CHECK_EQ_INT(vkf_paths_set_temp_dir(p, at("io/temp")), 0);
    CHECK_STR(vkf_paths_input_dir(p), at("io/input"));
    CHECK_STR(vkf_paths_output_dir(p), at("io/output"));
    CHECK_STR(vkf_paths_temp_dir(p), at("io/temp"));
    test_write(tmp, "io/input/x.png", "i");
    test_write(tmp, "io/input/sub/y.png", "i");
    test_write(tmp, "io/output/ComfyUI_00001_.png", "o");
    test_write(tmp, "io/temp/t.png", "t");
    test_write(tmp, "io/secret.png", "s");
    test_symlink("../secret.png", tmp, "io/input/escape.png");

    struct { const char *name; int err; const char *path; } cases[] = {
        {"x.png", 0, "io/input/x.png"},
        {"x.png [input]", 0, "io/input/x.png"},
        {"sub/y.png", 0, "io/input/sub/y.png"},
        {"sub\\y.png", 0, "io/input/sub/y.png"},
        {"ComfyUI_00001_.png [output]", 0, "io/output/ComfyUI_00001_.png"},
        {"t.png [temp]", 0, "io/temp/t.png"},
        {"x.png [output]", VKF_ENOTFOUND, NULL},
        {"nope.png", VKF_ENOTFOUND, NULL},
        {"../secret.png", VKF_EPERM, NULL},
        {"../secret.png [output]", VKF_EPERM, NULL},
        {"/etc/passwd [input]", VKF_EPERM, NULL},
        {"escape.png", VKF_EPERM, NULL},
        {" [output]", VKF_EPERM, NULL},
    };
    for (size_t i = 0; i < VKF_ARRAY_SIZE(cases); i++) {
        full = NULL;
        int err = vkf_paths_resolve_input(p, cases[i].name, &full);
        if (err != cases[i].err)
            fprintf(stderr, "  resolve_input('%s') = %d\n", cases[i].name, err);
        CHECK_EQ_INT(err, cases[i].err);
        if (cases[i].path)
            CHECK_STR(full, at(cases[i].path));
        else
            CHECK(full == NULL);
        vkf_free(full);
    }
    vkf_paths_destroy(&p);
}

static void test_output_files(void)
{
    vkf_paths *p = NULL;
    char *full = NULL;
    struct stat st;
    CHECK_EQ_INT(vkf_paths_create(&p, &tl.log), 0);
    CHECK_EQ_INT(vkf_paths_output_file(p, false, "", "x.png", &full), VKF_EINVAL);
    CHECK_EQ_INT(vkf_paths_set_output_dir(p, at("out/new/output")), 0);
    CHECK_EQ_INT(vkf_paths_set_temp_dir(p, at("out/temp")), 0);

    CHECK_EQ_INT(vkf_paths_output_file(p, false, "", "x.png", &full), 0);
    CHECK_STR(full, at("out/new/output/x.png"));
    CHECK(stat(at("out/new/output"), &st) == 0 && S_ISDIR(st.st_mode));
    vkf_free(full);
    CHECK_EQ_INT(vkf_paths_output_file(p, false, NULL, "y.png", &full), 0);
    CHECK_STR(full, at("out/new/output/y.png"));
    vkf_free(full);

    mode_t old = umask(022);
    CHECK_EQ_INT(vkf_paths_output_file(p, false, "a/b\\c", "x.png", &full), 0);
    umask(old);
    CHECK_STR(full, at("out/new/output/a/b/c/x.png"));
    CHECK(stat(at("out/new/output/a/b/c"), &st) == 0 && S_ISDIR(st.st_mode) &&
          (st.st_mode & 0777) == 0755);
    vkf_free(full);
    CHECK_EQ_INT(vkf_paths_output_file(p, true, "prev", "p.png", &full), 0);
    CHECK_STR(full, at("out/temp/prev/p.png"));
    vkf_free(full);
    CHECK_EQ_INT(vkf_paths_output_file(p, false, "d", "sub/z.png", &full), 0);
    CHECK_STR(full, at("out/new/output/d/sub/z.png"));
    vkf_free(full);

    test_mkdirs(tmp, "out/elsewhere");
    test_symlink(at("out/elsewhere"), tmp, "out/new/output/link_out");
    test_symlink("a/b", tmp, "out/new/output/link_in");
    test_symlink(at("out/elsewhere/f.png"), tmp, "out/new/output/f.png");
    CHECK_EQ_INT(vkf_paths_output_file(p, false, "link_in", "ok.png", &full), 0);
    vkf_free(full);
    struct { const char *sub, *file; } bad[] = {
        {"..", "x.png"}, {"../new", "x.png"}, {"a/../..", "x.png"},
        {"/tmp", "x.png"}, {"C:\\Windows", "x.png"}, {"\\x", "x.png"},
        {"", "../x.png"}, {"", "/etc/x.png"}, {"", ""}, {"", "."}, {"a", "b/"},
        {"link_out", "x.png"}, {"link_out/deeper", "x.png"}, {"", "f.png"},
        {"", "a"},   /* an existing directory */
    };
    for (size_t i = 0; i < VKF_ARRAY_SIZE(bad); i++) {
        full = NULL;
        int err = vkf_paths_output_file(p, false, bad[i].sub, bad[i].file, &full);
        if (err != VKF_EPERM)
            fprintf(stderr, "  output_file('%s', '%s') = %d\n", bad[i].sub, bad[i].file,
                    err);
        CHECK_EQ_INT(err, VKF_EPERM);
        CHECK(full == NULL);
    }
    CHECK(stat(at("out/elsewhere/deeper"), &st) != 0);   /* nothing created outside */
    vkf_paths_destroy(&p);
}

static int count_tmp_files(const char *dir)
{
    int n = 0;
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d)))
        n += strstr(e->d_name, ".tmp") != NULL;
    if (d)
        closedir(d);
    return n;
}

static void read_file(const char *path, char *buf, size_t size)
{
    buf[0] = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return;
    size_t n = fread(buf, 1, size - 1, f);
    buf[n] = 0;
    fclose(f);
}

static void test_atomic_file(void)
{
    char buf[256];
    struct stat st;
    vkf_atomic_file *f = NULL;
    test_mkdirs(tmp, "atomic");
    const char *target = at("atomic/result.json");

    CHECK_EQ_INT(vkf_atomic_file_open(&f, target), 0);
    CHECK(f != NULL);
    CHECK_EQ_INT(count_tmp_files(at("atomic")), 1);
    CHECK(stat(target, &st) != 0);          /* not visible before commit */
    CHECK_EQ_INT(vkf_atomic_file_write(f, "hello ", 6), 0);
    CHECK(fprintf(vkf_atomic_file_stream(f), "world %d", 42) > 0);
    CHECK_EQ_INT(vkf_atomic_file_write(f, NULL, 0), 0);
    CHECK_EQ_INT(vkf_atomic_file_commit(&f), 0);
    CHECK(f == NULL);
    read_file(target, buf, sizeof(buf));
    CHECK_STR(buf, "hello world 42");
    CHECK(stat(target, &st) == 0 && (st.st_mode & 0777) == 0644);
    CHECK_EQ_INT(count_tmp_files(at("atomic")), 0);

    /* replacing keeps the old content until commit; abort keeps it */
    CHECK_EQ_INT(vkf_atomic_file_open(&f, target), 0);
    CHECK_EQ_INT(vkf_atomic_file_write(f, "partial", 7), 0);
    read_file(target, buf, sizeof(buf));
    CHECK_STR(buf, "hello world 42");
    vkf_atomic_file_abort(&f);
    CHECK(f == NULL);
    vkf_atomic_file_abort(&f);
    vkf_atomic_file_abort(NULL);
    read_file(target, buf, sizeof(buf));
    CHECK_STR(buf, "hello world 42");
    CHECK_EQ_INT(count_tmp_files(at("atomic")), 0);

    /* abort of a new file leaves nothing at all */
    CHECK_EQ_INT(vkf_atomic_file_open(&f, at("atomic/never.png")), 0);
    CHECK_EQ_INT(vkf_atomic_file_write(f, "x", 1), 0);
    vkf_atomic_file_abort(&f);
    CHECK(stat(at("atomic/never.png"), &st) != 0);
    CHECK_EQ_INT(count_tmp_files(at("atomic")), 0);

    /* a target that cannot be renamed over (a directory) fails cleanly */
    test_mkdirs(tmp, "atomic/adir/inner");
    CHECK_EQ_INT(vkf_atomic_file_open(&f, at("atomic/adir")), 0);
    CHECK_EQ_INT(vkf_atomic_file_write(f, "x", 1), 0);
    CHECK_EQ_INT(vkf_atomic_file_commit(&f), VKF_EIO);
    CHECK(f == NULL);
    CHECK_EQ_INT(count_tmp_files(at("atomic")), 0);

    CHECK_EQ_INT(vkf_atomic_file_open(&f, at("atomic/missing_dir/x.png")), VKF_EIO);
    CHECK(f == NULL);
    CHECK_EQ_INT(vkf_atomic_file_open(&f, ""), VKF_EINVAL);
    CHECK_EQ_INT(vkf_atomic_file_commit(&f), VKF_EINVAL);
    CHECK(vkf_atomic_file_stream(NULL) == NULL);

    /* a very long file name still gets a temporary within NAME_MAX */
    char longname[300];
    memset(longname, 'n', 240);
    strcpy(longname + 240, ".png");
    char lpath[PATH_MAX];
    snprintf(lpath, sizeof(lpath), "%s/%s", at("atomic"), longname);
    CHECK_EQ_INT(vkf_atomic_file_open(&f, lpath), 0);
    CHECK_EQ_INT(vkf_atomic_file_commit(&f), 0);
    CHECK(stat(lpath, &st) == 0);
}

/* Make every allocation of a full set-up + use cycle fail in turn. */
static int alloc_cycle(void)
{
    int err = 0;
    vkf_paths *p = NULL;
    char **names = NULL;
    int count = 0;
    char *full = NULL;
    vkf_atomic_file *f = NULL;
    VKF_TRY(vkf_paths_create(&p, NULL));
    VKF_TRY(vkf_paths_add_models_root(p, at("A")));
    VKF_TRY(vkf_paths_add_models_root(p, at("B")));
    VKF_TRY(vkf_paths_load_extra_yaml(p, at("cfg/extra_model_paths.yaml")));
    VKF_TRY(vkf_paths_add_folder_dir(p, "clip", at("fd/one"), true));
    VKF_TRY(vkf_paths_list(p, "checkpoints", &names, &count));
    vkf_strv_free(&names, count);
    VKF_TRY(vkf_paths_list(p, "diffusers", &names, &count));
    vkf_strv_free(&names, count);
    VKF_TRY(vkf_paths_resolve(p, "checkpoints", "sub/c.pt", &full));
    vkf_free(full);
    full = NULL;
    VKF_TRY(vkf_paths_set_input_dir(p, at("io/input")));
    VKF_TRY(vkf_paths_set_output_dir(p, at("io/output")));
    VKF_TRY(vkf_paths_set_temp_dir(p, at("io/temp")));
    VKF_TRY(vkf_paths_resolve_input(p, "ComfyUI_00001_.png [output]", &full));
    vkf_free(full);
    full = NULL;
    VKF_TRY(vkf_paths_output_file(p, false, "alloc", "x.png", &full));
    VKF_TRY(vkf_atomic_file_open(&f, full));
    VKF_TRY(vkf_atomic_file_write(f, "x", 1));
    VKF_TRY(vkf_atomic_file_commit(&f));
fail:
    vkf_atomic_file_abort(&f);
    vkf_strv_free(&names, count);
    vkf_free(full);
    vkf_paths_destroy(&p);
    return err;
}

static void test_alloc_failures(void)
{
    long live0 = vkf_alloc_live();
    int failures = 0;
    bool finished = false;
    for (long i = 0; i < 100000; i++) {
        vkf_alloc_fail_at(i);
        int err = alloc_cycle();
        bool fired = vkf_alloc_failed();
        vkf_alloc_fail_at(-1);
        if (vkf_alloc_live() != live0) {
            fprintf(stderr, "  allocation %ld: %ld blocks leaked (err %d)\n", i,
                    vkf_alloc_live() - live0, err);
            CHECK(!"no leak after a failed allocation");
            live0 = vkf_alloc_live();
        }
        if (!fired) {
            CHECK_EQ_INT(err, 0);
            finished = true;
            break;
        }
        failures++;
        if (err != VKF_ENOMEM) {
            fprintf(stderr, "  allocation %ld: err %d\n", i, err);
            CHECK_EQ_INT(err, VKF_ENOMEM);
        }
    }
    CHECK(finished);
    CHECK(failures > 50);
    CHECK_EQ_INT(count_tmp_files(at("io/output/alloc")), 0);
}

int main(void)
{
    test_log_init(&tl);
    tmp = test_mkdtemp("paths");
    long live0 = vkf_alloc_live();
    make_roots();
    test_listing();
    test_empty_and_unknown();
    test_aliases();
    test_lookup();
    test_refusals();
    test_extra_yaml();
    test_extra_yaml_errors();
    test_add_folder_dir();
    test_input();
    test_output_files();
    test_atomic_file();
    test_alloc_failures();
    CHECK_EQ_INT(vkf_alloc_live(), live0);
    if (!test_failures || !getenv("VKF_TEST_KEEP"))
        test_rmtree(tmp);
    else
        fprintf(stderr, "kept %s\n", tmp);
    free(tmp);
    return test_exit_code("test_paths");
}
