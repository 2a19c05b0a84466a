/*
 * SD1.x / SD2.x UNet (core/models/unet.c) against PyTorch goldens made by
 * tests/reference/ref_unet.py from the same synthesized tiny checkpoints.
 *
 *   test_unet                          run the tests (gpu suite: exit 77
 *                                      without a Vulkan device)
 *   test_unet --write ARCH PATH [DT]   write the tiny checkpoint ARCH
 *                                      (sd15, sd2, sd2_v, sd15_inpaint;
 *                                      DT f16 (default), f32, bf16) under
 *                                      "model.diffusion_model."
 *   VKF_UNET_BENCH=1 test_unet         instead of the tests: full-size
 *                                      SD1.5 (f16) at a 32x32 latent, ms
 *                                      per forward for B = 1 and 2
 *                                      (VKF_UNET_BENCH=64: a 64x64 latent)
 *
 * Tolerances: the reference computes in f32 from the same (f16/f32) weight
 * values; the GPU also computes in f32, so only summation order and the
 * shaders' exp/erf differ: |got - want| <= 2e-3 · max|want| + 2e-3 ·
 * |want|.  Same-device comparisons (B=1 against a row of B=2, diffusers
 * names against CompVis names) are 1e-5 · max|want| (the kernels may pick
 * other tiles for other shapes).
 */
#include <errno.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../gpu/gpu_test.h"
#include "models/unet_internal.h"
#include "vkflow/models.h"

#define PFX "model.diffusion_model."

static vkf_log quiet_log;

static const struct {
    const char *name;
    vkf_synth_arch arch;
} archs[] = {
    {"sd15", VKF_SYNTH_SD15},
    {"sd2", VKF_SYNTH_SD2},
    {"sd2_v", VKF_SYNTH_SD2_V},
    {"sd15_inpaint", VKF_SYNTH_SD15_INPAINT},
    {"sdxl", VKF_SYNTH_SDXL},
};

static int arch_of(const char *name, vkf_synth_arch *out)
{
    for (size_t i = 0; i < VKF_ARRAY_SIZE(archs); i++)
        if (!strcmp(archs[i].name, name)) {
            *out = archs[i].arch;
            return 0;
        }
    return -1;
}

static int dtype_of(const char *s, vkf_wdtype *out)
{
    if (!s || !strcmp(s, "f16"))
        *out = VKF_WDT_F16;
    else if (!strcmp(s, "f32"))
        *out = VKF_WDT_F32;
    else if (!strcmp(s, "bf16"))
        *out = VKF_WDT_BF16;
    else
        return -1;
    return 0;
}

static int write_ckpt(vkf_synth_arch arch, vkf_synth_scale scale, vkf_wdtype dt,
                      const char *path)
{
    vkf_st_writer *w = NULL;
    vkf_errbuf e = {{0}};
    int err = vkf_st_writer_create(0x5eed0000u + (uint64_t)arch, &w);
    if (err >= 0)
        err = vkf_synth_unet(w, PFX, arch, scale, dt);
    if (err >= 0)
        err = vkf_st_writer_save(w, path, &e);
    if (err < 0)
        fprintf(stderr, "writing %s: %s %s\n", path, vkf_strerror(err), e.msg);
    vkf_st_writer_destroy(&w);
    return err;
}

static char tmpdir[256];

static void tmp_path(char *buf, size_t cap, const char *name)
{
    snprintf(buf, cap, "%s/%s", tmpdir, name);
}

static vkf_weights *open_w(const char *path)
{
    vkf_weights *w = NULL;
    CHECK_OK(vkf_weights_open(path, &w, &quiet_log));
    return w;
}

static float *read_f32(vkf_weights *w, const char *name, int64_t *shape, int *ndim)
{
    const vkf_weight_info *t = vkf_weights_find(w, name);
    if (!t)
        return NULL;
    float *p = malloc((size_t)t->numel * sizeof(float));
    CHECK_OK(vkf_weights_to_f32(w, t, p));
    if (shape)
        memcpy(shape, t->shape, (size_t)t->ndim * sizeof(int64_t));
    if (ndim)
        *ndim = t->ndim;
    return p;
}

static vkf_tensor *upload(vkf_gpu *gpu, const float *p, int ndim, const int64_t *shape)
{
    vkf_tensor *t = NULL;
    CHECK_OK(vkf_tensor_create(gpu, VKF_DTYPE_F32, ndim, shape, &t));
    CHECK_OK(vkf_tensor_upload(t, p));
    return t;
}

/* Inputs of a golden file (or of a run made from one) on the device. */
typedef struct run_in {
    vkf_dm_input in;
    float ts[8];
    vkf_tensor *ctrl_in[64], *ctrl_out[64];
    int nctrl;
} run_in;

static void run_in_free(run_in *r)
{
    vkf_tensor_unref(&r->in.x);
    vkf_tensor_unref(&r->in.context);
    vkf_tensor_unref(&r->in.y);
    vkf_tensor_unref(&r->in.control_mid);
    for (int i = 0; i < 64; i++) {
        vkf_tensor_unref(&r->ctrl_in[i]);
        vkf_tensor_unref(&r->ctrl_out[i]);
    }
}

static void run_in_load(vkf_gpu *gpu, vkf_weights *g, run_in *r)
{
    memset(r, 0, sizeof(*r));
    int64_t shape[8];
    int nd;
    float *p = read_f32(g, "x", shape, &nd);
    r->in.x = upload(gpu, p, nd, shape);
    free(p);
    int64_t nb = shape[0];
    p = read_f32(g, "timesteps", NULL, NULL);
    memcpy(r->ts, p, (size_t)nb * sizeof(float));
    free(p);
    r->in.timesteps = r->ts;
    p = read_f32(g, "context", shape, &nd);
    r->in.context = upload(gpu, p, nd, shape);
    free(p);
    if ((p = read_f32(g, "y", shape, &nd))) {
        r->in.y = upload(gpu, p, nd, shape);
        free(p);
    }
    bool any_in = false, any_out = false;
    for (int i = 0; i < 64; i++) {
        char name[64];
        snprintf(name, sizeof(name), "control_in.%d", i);
        if ((p = read_f32(g, name, shape, &nd))) {
            r->ctrl_in[i] = upload(gpu, p, nd, shape);
            any_in = true;
            free(p);
        }
        snprintf(name, sizeof(name), "control_out.%d", i);
        if ((p = read_f32(g, name, shape, &nd))) {
            r->ctrl_out[i] = upload(gpu, p, nd, shape);
            any_out = true;
            free(p);
        }
    }
    if ((p = read_f32(g, "control_mid", shape, &nd))) {
        r->in.control_mid = upload(gpu, p, nd, shape);
        free(p);
    }
    r->in.control_in = any_in ? r->ctrl_in : NULL;
    r->in.control_out = any_out ? r->ctrl_out : NULL;
}

static float *forward(vkf_diffusion_model *dm, const vkf_dm_input *in, int64_t *numel)
{
    vkf_tensor *o = NULL;
    CHECK_OK(dm->forward(dm, in, &o));
    float *p = gt_download(o);
    *numel = vkf_tensor_numel(o);
    vkf_tensor_unref(&o);
    return p;
}

static float max_abs(const float *p, int64_t n)
{
    float m = 0;
    for (int64_t i = 0; i < n; i++)
        m = fmaxf(m, fabsf(p[i]));
    return m;
}

static vkf_diffusion_model *load_model(vkf_gpu *gpu, const char *path)
{
    vkf_weights *w = open_w(path);
    vkf_diffusion_model *dm = NULL;
    vkf_errbuf e = {{0}};
    int err = vkf_unet_load(gpu, w, PFX, &dm, &e);
    if (err < 0)
        fprintf(stderr, "vkf_unet_load(%s): %s: %s\n", path, vkf_strerror(err), e.msg);
    CHECK_OK(err);
    vkf_weights_close(&w);
    return dm;
}

/* ---- goldens ------------------------------------------------------------ */

static void test_golden(vkf_gpu *gpu, const char *name)
{
    char gpath[1024], cpath[1024];
    const char *root = getenv("VKF_SOURCE_ROOT");
    snprintf(gpath, sizeof(gpath), "%s/tests/reference/golden/unet/%s.safetensors",
             root ? root : ".", name);
    vkf_weights *g = open_w(gpath);
    const char *arch_s = vkf_weights_metadata_get(g, "arch");
    const char *dt_s = vkf_weights_metadata_get(g, "dtype");
    vkf_synth_arch arch;
    vkf_wdtype dt;
    CHECK(arch_s && dt_s && arch_of(arch_s, &arch) == 0 && dtype_of(dt_s, &dt) == 0);
    if (gt_failures)
        exit(1);
    tmp_path(cpath, sizeof(cpath), name);
    CHECK_OK(write_ckpt(arch, VKF_SYNTH_TINY, dt, cpath));
    vkf_diffusion_model *dm = load_model(gpu, cpath);

    const char *want_arch = vkf_weights_metadata_get(g, "model_arch");
    const char *want_pred = vkf_weights_metadata_get(g, "prediction");
    CHECK(want_arch && !strcmp(dm->arch, want_arch));
    CHECK(want_pred && dm->prediction == (!strcmp(want_pred, "v") ? VKF_PREDICTION_V
                                                                   : VKF_PREDICTION_EPS));
    CHECK(dm->in_channels == (arch == VKF_SYNTH_SD15_INPAINT ? 9 : 4));
    vkf_unet_config sc;
    vkf_unet_synth_config(arch, VKF_SYNTH_TINY, &sc);
    CHECK(dm->out_channels == 4 && dm->context_dim == sc.context_dim &&
          dm->adm_in_channels == sc.adm_in_channels);

    run_in r;
    run_in_load(gpu, g, &r);
    int64_t n;
    float *got = forward(dm, &r.in, &n);
    int64_t wshape[8];
    float *want = read_f32(g, "out", wshape, NULL);
    CHECK(n == wshape[0] * wshape[1] * wshape[2] * wshape[3]);
    float mx = max_abs(want, n);
    fprintf(stderr, "%s: max |out| %.4g, ", name, mx);
    float worst = 0;
    for (int64_t i = 0; i < n; i++)
        worst = fmaxf(worst, fabsf(got[i] - want[i]));
    fprintf(stderr, "max |err| %.3g\n", worst);
    gt_compare(name, got, want, n, 2e-3f, 2e-3f * mx);

    /* B = 1 on the first sample equals row 0 of the batch. */
    const int64_t *xs = vkf_tensor_shape(r.in.x);
    if (xs[0] > 1 && !r.in.control_in && !r.in.control_out && !r.in.control_mid) {
        run_in r1 = r;
        const int64_t *cs = vkf_tensor_shape(r.in.context);
        CHECK_OK(vkf_tensor_slice(r.in.x, 0, 0, 1, &r1.in.x));
        CHECK_OK(vkf_tensor_slice(r.in.context, 0, 0, 1, &r1.in.context));
        if (r.in.y) {
            vkf_tensor *ys = NULL;
            CHECK_OK(vkf_tensor_slice(r.in.y, 0, 0, 1, &ys));
            CHECK_OK(vkf_op_contiguous(gpu, ys, &r1.in.y));
            vkf_tensor_unref(&ys);
        }
        (void)cs;
        vkf_tensor *xc = NULL;
        CHECK_OK(vkf_op_contiguous(gpu, r1.in.x, &xc));
        vkf_tensor_unref(&r1.in.x);
        r1.in.x = xc;
        int64_t n1;
        float *got1 = forward(dm, &r1.in, &n1);
        CHECK(n1 * xs[0] == n);
        gt_compare("B=1 vs row 0 of B=2", got1, got, n1, 0, 1e-5f * mx);
        free(got1);
        vkf_tensor_unref(&r1.in.x);
        vkf_tensor_unref(&r1.in.context);
        if (r.in.y)
            vkf_tensor_unref(&r1.in.y);
    }

    /* Wrong inputs are refused. */
    if (!r.in.control_in) {
        vkf_dm_input bad = r.in;
        vkf_tensor *o = NULL;
        bad.context = NULL;
        CHECK(dm->forward(dm, &bad, &o) == VKF_EINVAL && !o);
        /* y present exactly when the model has label_emb */
        bad = r.in;
        bad.y = r.in.y ? NULL : r.in.x;
        CHECK(dm->forward(dm, &bad, &o) == VKF_EINVAL && !o);
    }

    free(got);
    free(want);
    run_in_free(&r);
    vkf_diffusion_model_unref(&dm);
    vkf_weights_close(&g);
    unlink(cpath);
}

/* ---- detection ---------------------------------------------------------- */

static void test_tiny_configs(void)
{
    for (size_t i = 0; i < VKF_ARRAY_SIZE(archs); i++) {
        char path[1024];
        tmp_path(path, sizeof(path), "cfg.safetensors");
        CHECK_OK(write_ckpt(archs[i].arch, VKF_SYNTH_TINY, VKF_WDT_F16, path));
        vkf_weights *w = open_w(path);
        vkf_unet_config got, want;
        vkf_errbuf e = {{0}};
        CHECK_OK(vkf_unet_infer_config(w, PFX, &got, &e));
        vkf_unet_synth_config(archs[i].arch, VKF_SYNTH_TINY, &want);
        CHECK(!memcmp(&got, &want, sizeof(got)));
        vkf_unet_detected d;
        vkf_prediction p;
        CHECK_OK(vkf_unet_detect(w, PFX, &d, &e));
        CHECK_OK(vkf_unet_detect_prediction(w, &d, &p, &e));
        CHECK(p == (archs[i].arch == VKF_SYNTH_SD2_V ? VKF_PREDICTION_V : VKF_PREDICTION_EPS));
        CHECK(!strcmp(d.arch, archs[i].arch == VKF_SYNTH_SDXL ? "SDXL"
                              : archs[i].arch == VKF_SYNTH_SD2 || archs[i].arch == VKF_SYNTH_SD2_V
                                  ? "SD2.x" : "SD1.x"));
        CHECK(d.xl == (archs[i].arch == VKF_SYNTH_SDXL));
        /* no UNet under another prefix */
        CHECK(vkf_unet_infer_config(w, "first_stage_model.", &got, &e) == VKF_EUNSUPPORTED);
        CHECK(strstr(e.msg, "first_stage_model.input_blocks.0.0.weight") != NULL);
        vkf_weights_close(&w);
        unlink(path);
    }
}

/* A copy of src with tensors renamed / dropped (rename returns false) and
 * extra tensors added. */
typedef bool (*rename_fn)(const char *name, char *out, size_t cap, void *ctx);
typedef void (*extra_fn)(vkf_st_writer *w, void *ctx);

static void copy_ckpt(const char *src, const char *dst, rename_fn rn, extra_fn ex, void *ctx)
{
    vkf_weights *w = open_w(src);
    vkf_st_writer *sw = NULL;
    CHECK_OK(vkf_st_writer_create(7, &sw));
    for (int i = 0; i < vkf_weights_count(w); i++) {
        const vkf_weight_info *t = vkf_weights_at(w, i);
        char name[512];
        if (!rn(t->name, name, sizeof(name), ctx))
            continue;
        float *p = malloc((size_t)t->numel * sizeof(float));
        CHECK_OK(vkf_weights_to_f32(w, t, p));
        CHECK_OK(vkf_st_writer_add_data(sw, name, t->dtype, t->ndim, t->shape, p));
        free(p);
    }
    if (ex)
        ex(sw, ctx);
    vkf_errbuf e = {{0}};
    CHECK_OK(vkf_st_writer_save(sw, dst, &e));
    vkf_st_writer_destroy(&sw);
    vkf_weights_close(&w);
}

static bool rn_skip(const char *name, char *out, size_t cap, void *ctx)
{
    if (ctx && !strcmp(name, (const char *)ctx))
        return false;
    snprintf(out, cap, "%s", name);
    return true;
}

static bool rn_diffusers(const char *name, char *out, size_t cap, void *ctx)
{
    vkf_unet_layout l = {.prefix = "unet.", .diffusers = true, .nrb = 2};
    if (strncmp(name, PFX, strlen(PFX)))
        return false;
    bool ok = vkf_unet_key(&l, name + strlen(PFX), out, cap);
    CHECK(ok);
    return ok;
}

static void ex_label_emb(vkf_st_writer *w, void *ctx)
{
    CHECK_OK(vkf_st_writer_add_random(w, PFX "label_emb.0.0.weight", VKF_WDT_F16, 2,
                                      (int64_t[]){128, 2816}, 0, 0.02f));
}

static void ex_in8(vkf_st_writer *w, void *ctx)
{
    CHECK_OK(vkf_st_writer_add_random(w, PFX "input_blocks.0.0.weight", VKF_WDT_F16, 4,
                                      (int64_t[]){32, 8, 3, 3}, 0, 0.1f));
}

static void ex_openclip(vkf_st_writer *w, void *ctx)
{
    CHECK_OK(vkf_st_writer_add_const(w, "cond_stage_model.model.positional_embedding",
                                     VKF_WDT_F16, 2, (int64_t[]){77, 64}, 0));
}

static void expect_refusal(vkf_gpu *gpu, const char *path, const char *what)
{
    vkf_weights *w = open_w(path);
    vkf_diffusion_model *dm = NULL;
    vkf_errbuf e = {{0}};
    int err = vkf_unet_load(gpu, w, PFX, &dm, &e);
    CHECK(err == VKF_EUNSUPPORTED && !dm);
    if (!strstr(e.msg, what)) {
        fprintf(stderr, "refusal message \"%s\" lacks \"%s\"\n", e.msg, what);
        gt_failures++;
    }
    vkf_weights_close(&w);
}

static void test_refusals_and_diffusers(vkf_gpu *gpu)
{
    char base[1024], path[1024];
    tmp_path(base, sizeof(base), "base.safetensors");
    tmp_path(path, sizeof(path), "variant.safetensors");
    CHECK_OK(write_ckpt(VKF_SYNTH_SD15, VKF_SYNTH_TINY, VKF_WDT_F16, base));

    const char *gone = PFX "output_blocks.5.1.transformer_blocks.0.attn2.to_v.weight";
    copy_ckpt(base, path, rn_skip, NULL, (void *)gone);
    expect_refusal(gpu, path, gone);

    copy_ckpt(base, path, rn_skip, ex_label_emb, NULL);
    expect_refusal(gpu, path, "label_emb.0.0.weight");

    copy_ckpt(base, path, rn_skip, ex_in8, (void *)(PFX "input_blocks.0.0.weight"));
    expect_refusal(gpu, path, "8 input channels");

    /* an SD1 (1x1-conv proj) UNet next to an OpenCLIP tower: neither */
    copy_ckpt(base, path, rn_skip, ex_openclip, NULL);
    expect_refusal(gpu, path, "1x1 Conv2d proj_in");

    /* SDXL-like: no attention at level 0 */
    const char *no_attn = PFX "input_blocks.1.1.proj_in.weight";
    copy_ckpt(base, path, rn_skip, NULL, (void *)no_attn);
    expect_refusal(gpu, path, "input_blocks.2 differs");

    /* diffusers names (unet/ of a pipeline): same model, same output */
    copy_ckpt(base, path, rn_diffusers, NULL, NULL);
    vkf_weights *w = open_w(path);
    vkf_unet_config cd, cc;
    vkf_errbuf e = {{0}};
    CHECK_OK(vkf_unet_infer_config(w, PFX, &cd, &e));
    vkf_weights_close(&w);
    w = open_w(base);
    CHECK_OK(vkf_unet_infer_config(w, PFX, &cc, &e));
    vkf_weights_close(&w);
    CHECK(!memcmp(&cd, &cc, sizeof(cd)));

    vkf_diffusion_model *a = load_model(gpu, base), *b = load_model(gpu, path);
    gt_seed(11);
    int64_t xs[4] = {1, 4, 6, 6}, cs[3] = {1, 5, 64};
    float *x = gt_random(144), *ctx = gt_random(320);
    float ts[1] = {421.5f};
    vkf_dm_input in = {.x = upload(gpu, x, 4, xs), .timesteps = ts,
                       .context = upload(gpu, ctx, 3, cs)};
    int64_t na, nb;
    float *oa = forward(a, &in, &na), *ob = forward(b, &in, &nb);
    CHECK(na == nb && na == 144);
    gt_compare("diffusers names vs CompVis", ob, oa, na, 0, 1e-5f * max_abs(oa, na));
    free(oa);
    free(ob);
    free(x);
    free(ctx);
    vkf_tensor_unref(&in.x);
    vkf_tensor_unref(&in.context);
    vkf_diffusion_model_unref(&a);
    vkf_diffusion_model_unref(&b);
    unlink(base);
    unlink(path);
}

/* ---- host allocation failures ------------------------------------------- */

/* Fails host allocation n of load + forward for a spread of n (every one
 * of the first 16, then about 40 more across the whole range): each run
 * returns an error, leaves no block behind, and nothing crashes. */
static void test_alloc_failures(vkf_gpu *gpu)
{
    char path[1024];
    tmp_path(path, sizeof(path), "alloc.safetensors");
    CHECK_OK(write_ckpt(VKF_SYNTH_SD15_INPAINT, VKF_SYNTH_TINY, VKF_WDT_F16, path));
    vkf_weights *w = open_w(path);
    int64_t xs[4] = {2, 9, 5, 3}, cs[3] = {2, 3, 64};
    gt_seed(5);
    float *x = gt_random(2 * 9 * 5 * 3), *ctx = gt_random(2 * 3 * 64);
    float ts[2] = {10, 900};
    vkf_dm_input in = {.x = upload(gpu, x, 4, xs), .timesteps = ts,
                       .context = upload(gpu, ctx, 3, cs)};
    long c0 = vkf_alloc_count(), total;
    {
        vkf_diffusion_model *dm = NULL;
        vkf_tensor *o = NULL;
        CHECK_OK(vkf_unet_load(gpu, w, PFX, &dm, NULL));
        CHECK_OK(dm->forward(dm, &in, &o));
        total = vkf_alloc_count() - c0;
        vkf_tensor_unref(&o);
        vkf_diffusion_model_unref(&dm);
        CHECK_OK(vkf_gpu_flush(gpu));
    }
    /* after the warm run: pipelines and the gpu's tables stay */
    long live0 = vkf_alloc_live();
    int fired = 0;
    long step = total / 40 > 1 ? total / 40 : 1;
    for (long n = 0; n < total + step; n = n < 16 ? n + 1 : n + step) {
        vkf_diffusion_model *dm = NULL;
        vkf_tensor *o = NULL;
        vkf_errbuf e = {{0}};
        vkf_alloc_fail_at(n);
        int err = vkf_unet_load(gpu, w, PFX, &dm, &e);
        if (err >= 0)
            err = dm->forward(dm, &in, &o);
        bool hit = vkf_alloc_failed();
        vkf_alloc_fail_at(-1);
        if (hit) {
            fired++;
            CHECK(err < 0 && !o);
        } else {
            CHECK(err >= 0 && o);
        }
        vkf_tensor_unref(&o);
        vkf_diffusion_model_unref(&dm);
        CHECK_OK(vkf_gpu_flush(gpu));
        if (vkf_alloc_live() != live0) {
            fprintf(stderr, "alloc failure %ld: %ld blocks leaked\n", n, vkf_alloc_live() - live0);
            gt_failures++;
            break;
        }
    }
    fprintf(stderr, "allocations of load + forward: %ld; failures injected: %d\n", total, fired);
    CHECK(fired >= 40);
    free(x);
    free(ctx);
    vkf_tensor_unref(&in.x);
    vkf_tensor_unref(&in.context);
    vkf_weights_close(&w);
    unlink(path);
}

/* ---- bench (VKF_UNET_BENCH=1) ------------------------------------------- */

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static int bench(vkf_gpu *gpu, int size)
{
    char path[1024];
    setvbuf(stdout, NULL, _IOLBF, 0);
    tmp_path(path, sizeof(path), "sd15_full_f16.safetensors");
    double t0 = now_ms();
    CHECK_OK(write_ckpt(VKF_SYNTH_SD15, VKF_SYNTH_FULL, VKF_WDT_F16, path));
    double t1 = now_ms();
    vkf_diffusion_model *dm = load_model(gpu, path);
    double t2 = now_ms();
    printf("bench: device %s\n", vkf_gpu_info(gpu)->name);
    printf("bench: synth full SD1.5 f16 %.0f ms, load %.0f ms\n", t1 - t0, t2 - t1);
    vkf_gpu_profile_reset(gpu);
    for (int b = 1; b <= 2; b++) {
        int64_t xs[4] = {b, 4, size, size}, cs[3] = {b, 77, 768};
        gt_seed(3);
        float *x = gt_random(b * 4 * size * size), *ctx = gt_random(b * 77 * 768);
        float ts[2] = {999, 999};
        vkf_dm_input in = {.x = upload(gpu, x, 4, xs), .timesteps = ts,
                           .context = upload(gpu, ctx, 3, cs)};
        int iters = size > 32 ? 1 : 3;
        for (int i = 0; i <= iters; i++) {
            vkf_gpu_mem_reset_peak(gpu);
            double s = now_ms();
            clock_t c0 = clock();
            vkf_tensor *o = NULL;
            CHECK_OK(dm->forward(dm, &in, &o));
            CHECK_OK(vkf_gpu_flush(gpu));
            double e = now_ms();
            double cpu = (double)(clock() - c0) / CLOCKS_PER_SEC * 1e3;
            vkf_gpu_mem_stats st;
            vkf_gpu_mem_stats_get(gpu, &st);
            long cores = sysconf(_SC_NPROCESSORS_ONLN);
            printf("bench: B=%d %dx%d forward %s: %.0f ms wall, %.0f ms CPU-time/%ld cores "
                   "= %.0f ms, peak device memory %.0f MiB\n",
                   b, size, size, i == 0 ? "(first, pipelines)" : "", e - s, cpu, cores,
                   cpu / cores,
                   st.peak / 1048576.0);
            vkf_tensor_unref(&o);
        }
        vkf_gpu_op_time ops[64];
        int nops = vkf_gpu_profile_get(gpu, ops, 64);
        for (int i = 0; i < nops && i < 64; i++)
            printf("bench: B=%d, %d forwards: %-20s %9.0f ms %7ld dispatches\n", b, iters + 1,
                   ops[i].op, ops[i].ms, ops[i].dispatches);
        vkf_gpu_profile_reset(gpu);
        free(x);
        free(ctx);
        vkf_tensor_unref(&in.x);
        vkf_tensor_unref(&in.context);
    }
    vkf_diffusion_model_unref(&dm);
    unlink(path);

    /* full-size detection: SD1.5 above; SD2 v and SD1.5 inpainting here */
    const vkf_synth_arch full[2] = {VKF_SYNTH_SD2_V, VKF_SYNTH_SD15_INPAINT};
    for (int i = 0; i < 2; i++) {
        CHECK_OK(write_ckpt(full[i], VKF_SYNTH_FULL, VKF_WDT_F16, path));
        vkf_weights *w = open_w(path);
        vkf_unet_detected d;
        vkf_prediction p;
        vkf_unet_config want;
        vkf_errbuf e = {{0}};
        CHECK_OK(vkf_unet_detect(w, PFX, &d, &e));
        CHECK_OK(vkf_unet_detect_prediction(w, &d, &p, &e));
        vkf_unet_synth_config(full[i], VKF_SYNTH_FULL, &want);
        CHECK(!memcmp(&d.cfg, &want, sizeof(want)));
        printf("bench: full %s: %s, in %d, context %d, heads %d / head width %d, %s\n",
               full[i] == VKF_SYNTH_SD2_V ? "sd2_v" : "sd15_inpaint", d.arch, d.cfg.in_channels,
               d.cfg.context_dim, d.cfg.num_heads, d.cfg.num_head_channels,
               p == VKF_PREDICTION_V ? "v-prediction" : "eps");
        vkf_weights_close(&w);
        unlink(path);
    }
    return 0;
}

int main(int argc, char **argv)
{
    quiet_log = vkf_log_stderr(VKF_LOG_ERROR);
    if (argc >= 2 && !strcmp(argv[1], "--write")) {
        vkf_synth_arch arch;
        vkf_wdtype dt;
        if (argc < 4 || arch_of(argv[2], &arch) < 0 || dtype_of(argc > 4 ? argv[4] : NULL, &dt)) {
            fprintf(stderr, "usage: %s --write sd15|sd2|sd2_v|sd15_inpaint PATH [f16|f32|bf16]\n",
                    argv[0]);
            return 2;
        }
        return write_ckpt(arch, VKF_SYNTH_TINY, dt, argv[3]) < 0 ? 1 : 0;
    }
    const char *tmp = getenv("TMPDIR");
    snprintf(tmpdir, sizeof(tmpdir), "%s/vkf_unet_XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    const char *b = getenv("VKF_UNET_BENCH");
    vkf_gpu *gpu = gt_gpu_open((vkf_gpu_params){.profile = b && *b && strcmp(b, "0")});
    if (b && *b && strcmp(b, "0")) {
        int size = atoi(b);
        bench(gpu, size >= 8 ? size : 32);
    } else {
        double t0 = now_ms();
        test_tiny_configs();
        double t1 = now_ms();
        test_golden(gpu, "sd15");
        test_golden(gpu, "sd2_v");
        test_golden(gpu, "sd15_inpaint");
        test_golden(gpu, "sdxl");
        double t2 = now_ms();
        test_refusals_and_diffusers(gpu);
        double t3 = now_ms();
        test_alloc_failures(gpu);
        fprintf(stderr, "configs %.0f ms, goldens %.0f ms, refusals + diffusers %.0f ms, "
                "allocation failures %.0f ms\n", t1 - t0, t2 - t1, t3 - t2, now_ms() - t3);
    }
    rmdir(tmpdir);
    return gt_finish(&gpu);
}
