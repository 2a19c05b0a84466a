/*
 * Checkpoint loading (vkflow/checkpoint.h) on synthesized tiny checkpoints:
 * SD1.5, SD2 (eps), SD2 768-v and SD1.5 inpainting load into MODEL + CLIP +
 * VAE with ComfyUI's defaults for the family; the single-part loaders
 * (UNETLoader / CLIPLoader paths) work on bare files and on checkpoints;
 * other families, lone parts, unknown and corrupt files are refused with a
 * message that names what was found.  The loader nodes (CheckpointLoaderSimple,
 * CheckpointLoader, UNETLoader, CLIPLoader, ModelSamplingDiscrete) through
 * the executor: outputs, refusals, and the cache keyed on the file's size
 * and mtime.  The example graphs (graphs/sd15_*.json) run end to end on a
 * tiny synthesized SD1.5.  Exit 77 without a Vulkan device.
 */
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include "../gpu/gpu_test.h"
#include "graph/internal.h"
#include "vkflow/checkpoint.h"
#include "vkflow/vkflow.h"

#define CHECK_HAS(s, sub)                                                     \
    do {                                                                      \
        const char *s_ = (s), *u_ = (sub);                                    \
        if (!s_ || !strstr(s_, u_)) {                                         \
            fprintf(stderr, "%s:%d: \"%s\" lacks \"%s\"\n", __FILE__,         \
                    __LINE__, s_ ? s_ : "(null)", u_);                        \
            gt_failures++;                                                    \
        }                                                                     \
    } while (0)

static char g_dir[4096];
static vkf_log g_quiet = {.level = VKF_LOG_ERROR};

static const char *tmp_path(const char *name)
{
    static char buf[8][4200];
    static int k;
    char *b = buf[k++ % 8];
    snprintf(b, 4200, "%s/%s", g_dir, name);
    return b;
}

static int rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

typedef struct arch_case {
    const char *name;
    vkf_synth_arch arch;
    const char *clip_prefix;
    const char *family;
    int in_channels;
    vkf_prediction pred;
    bool open_h;
} arch_case;

static const arch_case cases[] = {
    {"sd15", VKF_SYNTH_SD15, "cond_stage_model.transformer.", "SD1.x", 4, VKF_PREDICTION_EPS,
     false},
    {"sd2", VKF_SYNTH_SD2, "cond_stage_model.model.", "SD2.x", 4, VKF_PREDICTION_EPS, true},
    {"sd2-v", VKF_SYNTH_SD2_V, "cond_stage_model.model.", "SD2.x", 4, VKF_PREDICTION_V, true},
    {"sd15-inpaint", VKF_SYNTH_SD15_INPAINT, "cond_stage_model.transformer.", "SD1.x", 9,
     VKF_PREDICTION_EPS, false},
};

/* Writes a tiny synthesized checkpoint (or only some parts of it). */
static int write_synth(const arch_case *c, uint64_t seed, const char *path, bool unet, bool clip,
                       bool vae, const char *unet_prefix, const char *clip_prefix)
{
    vkf_st_writer *w = NULL;
    vkf_errbuf e = {{0}};
    int err = vkf_st_writer_create(seed, &w);
    if (!err && unet)
        err = vkf_synth_unet(w, unet_prefix, c->arch, VKF_SYNTH_TINY, VKF_WDT_F32);
    if (!err && clip)
        err = vkf_synth_clip_text(w, clip_prefix, c->arch, VKF_SYNTH_TINY, VKF_WDT_F32);
    if (!err && vae)
        err = vkf_synth_vae(w, "first_stage_model.", VKF_SYNTH_TINY, VKF_WDT_F32);
    if (!err)
        err = vkf_st_writer_save(w, path, &e);
    if (err)
        fprintf(stderr, "synthesizing %s: %s %s\n", c->name, vkf_strerror(err), e.msg);
    vkf_st_writer_destroy(&w);
    return err;
}

static bool files_equal(const char *a, const char *b)
{
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    bool eq = fa && fb;
    while (eq) {
        int ca = fgetc(fa), cb = fgetc(fb);
        if (ca != cb)
            eq = false;
        if (ca == EOF || cb == EOF)
            break;
    }
    if (fa)
        fclose(fa);
    if (fb)
        fclose(fb);
    return eq;
}

static void check_model(const arch_case *c, const vkf_model *m)
{
    CHECK(m != NULL);
    if (!m)
        return;
    CHECK(m->dm != NULL);
    if (m->dm) {
        if (strcmp(m->dm->arch, c->family))
            fprintf(stderr, "%s: arch %s\n", c->name, m->dm->arch);
        CHECK(!strcmp(m->dm->arch, c->family));
        CHECK(m->dm->in_channels == c->in_channels);
        CHECK(m->dm->prediction == c->pred);
        CHECK(m->dm->latent_channels == 4);
    }
    CHECK(m->ms != NULL);
    if (m->ms) {
        CHECK(m->ms->kind == VKF_MODEL_SAMPLING_DISCRETE);
        CHECK(m->ms->prediction == c->pred);
        CHECK(m->ms->count == 1000);
        /* ComfyUI's SD sigma range for linear betas 0.00085 .. 0.012 */
        CHECK(fabsf(vkf_model_sampling_sigma_min(m->ms) - 0.0292f) < 1e-3f);
        CHECK(fabsf(vkf_model_sampling_sigma_max(m->ms) - 14.6146f) < 1e-3f);
    }
    CHECK(m->latent.channels == 4);
    CHECK(m->latent.scale_factor == 0.18215f);
    CHECK(m->latent.shift == 0.0f);
}

static void check_clip(const arch_case *c, const vkf_clip *clip)
{
    CHECK(clip != NULL);
    if (!clip)
        return;
    CHECK(clip->tok != NULL && clip->text != NULL);
    CHECK(clip->default_layer_idx == (c->open_h ? -2 : 0));
    CHECK(clip->layer_idx == 0);
    CHECK(clip->pad_with_end == !c->open_h);
    const vkf_clip_text_config *cfg = clip->text ? vkf_clip_text_get_config(clip->text) : NULL;
    CHECK(cfg && cfg->kind == (c->open_h ? VKF_CLIP_OPEN_H : VKF_CLIP_L));
}

static void test_arch(vkf_gpu *gpu, const arch_case *c)
{
    char name[64], name2[64];
    snprintf(name, sizeof(name), "%s.safetensors", c->name);
    snprintf(name2, sizeof(name2), "%s-again.safetensors", c->name);
    const char *path = tmp_path(name);
    CHECK(write_synth(c, 11, path, true, true, true, "model.diffusion_model.", c->clip_prefix) == 0);
    /* synthesis is a pure function of the seed */
    CHECK(write_synth(c, 11, tmp_path(name2), true, true, true, "model.diffusion_model.",
                      c->clip_prefix) == 0);
    CHECK(files_equal(path, tmp_path(name2)));

    vkf_checkpoint ck;
    vkf_errbuf e = {{0}};
    int err = vkf_checkpoint_load(gpu, path, VKF_CKPT_ALL, &g_quiet, &ck, &e);
    if (err)
        fprintf(stderr, "%s: %s: %s\n", c->name, vkf_strerror(err), e.msg);
    CHECK(err == 0);
    if (!err) {
        CHECK(!strcmp(ck.layout.unet_prefix, "model.diffusion_model."));
        CHECK(!strcmp(ck.layout.clip_prefix, c->clip_prefix));
        CHECK(!strcmp(ck.layout.vae_prefix, "first_stage_model."));
        CHECK(!ck.layout.diffusers);
        check_model(c, ck.model);
        check_clip(c, ck.clip);
        CHECK(ck.vae && ck.vae->m);
        if (ck.vae && ck.vae->m) {
            CHECK(ck.vae->m->latent_channels == 4);
            CHECK(ck.vae->m->downscale == 8);
        }
        /* a MODEL copy through ModelSamplingDiscrete's path shares dm */
        vkf_model *clone = vkf_model_clone(ck.model);
        CHECK(clone && clone->dm == ck.model->dm && clone->ms != ck.model->ms);
        vkf_object *o = clone ? &clone->obj : NULL;
        vkf_object_unref(&o);
    }
    vkf_checkpoint_clear(&ck);
    CHECK(!ck.model && !ck.clip && !ck.vae);

    /* parts on request only */
    err = vkf_checkpoint_load(gpu, path, VKF_CKPT_CLIP, &g_quiet, &ck, &e);
    CHECK(err == 0 && !ck.model && ck.clip && !ck.vae);
    vkf_checkpoint_clear(&ck);

    /* UNETLoader and CLIPLoader paths accept the checkpoint too */
    vkf_model *m = NULL;
    err = vkf_diffusion_model_load_file(gpu, path, &g_quiet, &m, &e);
    if (err)
        fprintf(stderr, "%s unet: %s\n", c->name, e.msg);
    CHECK(err == 0);
    check_model(c, m);
    vkf_object *o = m ? &m->obj : NULL;
    vkf_object_unref(&o);
    vkf_clip *clip = NULL;
    err = vkf_text_encoder_load_file(gpu, path, &g_quiet, &clip, &e);
    if (err)
        fprintf(stderr, "%s clip: %s\n", c->name, e.msg);
    CHECK(err == 0);
    check_clip(c, clip);
    o = clip ? &clip->obj : NULL;
    vkf_object_unref(&o);
}

/* A bare UNet (UNETLoader file) and a bare text encoder (CLIPLoader file). */
static void test_parts(vkf_gpu *gpu)
{
    const arch_case *sd15 = &cases[0], *sd2v = &cases[2];
    vkf_errbuf e = {{0}};
    const char *unet = tmp_path("unet_sd2v.safetensors");
    CHECK(write_synth(sd2v, 5, unet, true, false, false, "", "") == 0);
    vkf_model *m = NULL;
    int err = vkf_diffusion_model_load_file(gpu, unet, &g_quiet, &m, &e);
    if (err)
        fprintf(stderr, "bare unet: %s\n", e.msg);
    CHECK(err == 0);
    check_model(sd2v, m);
    vkf_object *o = m ? &m->obj : NULL;
    vkf_object_unref(&o);
    /* ... which is not a checkpoint */
    vkf_checkpoint ck;
    err = vkf_checkpoint_load(gpu, unet, VKF_CKPT_ALL, &g_quiet, &ck, &e);
    CHECK(err == VKF_EUNSUPPORTED && !ck.model);
    CHECK_HAS(e.msg, "unet_sd2v.safetensors");
    CHECK_HAS(e.msg, "only a diffusion model");
    CHECK_HAS(e.msg, "UNETLoader");

    const char *te = tmp_path("clip_l.safetensors");
    CHECK(write_synth(sd15, 6, te, false, true, false, "", "") == 0);
    vkf_clip *clip = NULL;
    err = vkf_text_encoder_load_file(gpu, te, &g_quiet, &clip, &e);
    if (err)
        fprintf(stderr, "bare clip: %s\n", e.msg);
    CHECK(err == 0);
    check_clip(sd15, clip);
    o = clip ? &clip->obj : NULL;
    vkf_object_unref(&o);
    err = vkf_checkpoint_load(gpu, te, VKF_CKPT_ALL, &g_quiet, &ck, &e);
    CHECK(err == VKF_EUNSUPPORTED);
    CHECK_HAS(e.msg, "text encoder");
    CHECK_HAS(e.msg, "CLIPLoader");
    /* a text encoder is not a diffusion model */
    err = vkf_diffusion_model_load_file(gpu, te, &g_quiet, &m, &e);
    CHECK(err == VKF_EUNSUPPORTED && !m);
    CHECK_HAS(e.msg, "not a diffusion model");

    /* a diffusers pipeline folder: model_index.json + unet/ text_encoder/ vae/ */
    char sub[4400];
    const char *pipe = tmp_path("pipe");
    CHECK(mkdir(pipe, 0755) == 0);
    const char *comps[] = {"unet", "text_encoder", "vae"};
    for (int i = 0; i < 3; i++) {
        snprintf(sub, sizeof(sub), "%s/%s", pipe, comps[i]);
        CHECK(mkdir(sub, 0755) == 0);
    }
    snprintf(sub, sizeof(sub), "%s/model_index.json", pipe);
    FILE *mi = fopen(sub, "w");
    CHECK(mi != NULL);
    if (mi) {
        fputs("{\"_class_name\": \"StableDiffusionPipeline\", "
              "\"unet\": [\"diffusers\", \"UNet2DConditionModel\"], "
              "\"text_encoder\": [\"transformers\", \"CLIPTextModel\"], "
              "\"vae\": [\"diffusers\", \"AutoencoderKL\"]}\n", mi);
        fclose(mi);
    }
    snprintf(sub, sizeof(sub), "%s/unet/diffusion_pytorch_model.safetensors", pipe);
    CHECK(write_synth(sd15, 8, sub, true, false, false, "", "") == 0);
    snprintf(sub, sizeof(sub), "%s/text_encoder/model.safetensors", pipe);
    CHECK(write_synth(sd15, 8, sub, false, true, false, "", "") == 0);
    vkf_st_writer *vw = NULL;
    snprintf(sub, sizeof(sub), "%s/vae/diffusion_pytorch_model.safetensors", pipe);
    CHECK(vkf_st_writer_create(8, &vw) == 0);
    CHECK(vkf_synth_vae(vw, "", VKF_SYNTH_TINY, VKF_WDT_F16) == 0);
    CHECK(vkf_st_writer_save(vw, sub, &e) == 0);
    vkf_st_writer_destroy(&vw);
    err = vkf_checkpoint_load(gpu, pipe, VKF_CKPT_ALL, &g_quiet, &ck, &e);
    if (err)
        fprintf(stderr, "diffusers folder: %s\n", e.msg);
    CHECK(err == 0);
    CHECK(ck.layout.diffusers);
    CHECK(!strcmp(ck.layout.unet_prefix, "unet.") && !strcmp(ck.layout.clip_prefix, "text_encoder.") &&
          !strcmp(ck.layout.vae_prefix, "vae."));
    check_model(sd15, ck.model);
    check_clip(sd15, ck.clip);
    CHECK(ck.vae != NULL);
    vkf_checkpoint_clear(&ck);

    /* a checkpoint without its VAE: MODEL and CLIP load, the VAE is refused */
    const char *novae = tmp_path("novae.safetensors");
    CHECK(write_synth(sd15, 7, novae, true, true, false, "model.diffusion_model.",
                      sd15->clip_prefix) == 0);
    err = vkf_checkpoint_load(gpu, novae, VKF_CKPT_MODEL | VKF_CKPT_CLIP, &g_quiet, &ck, &e);
    CHECK(err == 0 && ck.model && ck.clip && !ck.vae);
    vkf_checkpoint_clear(&ck);
    err = vkf_checkpoint_load(gpu, novae, VKF_CKPT_ALL, &g_quiet, &ck, &e);
    CHECK(err == VKF_EUNSUPPORTED && !ck.model && !ck.clip && !ck.vae);
    CHECK_HAS(e.msg, "has no VAE");
}

/* Key sets of other families: refused by name, without touching the GPU. */
static void test_refusals(vkf_gpu *gpu)
{
    vkf_st_writer *w = NULL;
    vkf_errbuf e = {{0}};
    vkf_checkpoint ck;
    const int64_t conv_in[4] = {320, 4, 3, 3}, adm[2] = {8, 2816}, tok[2] = {8, 2048};
    const int64_t vec[1] = {16};

    /* SDXL base: ADM width 2816, context 2048 */
    CHECK(vkf_st_writer_create(1, &w) == 0);
    CHECK(vkf_st_writer_add_random(w, "model.diffusion_model.input_blocks.0.0.weight",
                                   VKF_WDT_F16, 4, conv_in, 0, 0.02f) == 0);
    CHECK(vkf_st_writer_add_random(w, "model.diffusion_model.label_emb.0.0.weight", VKF_WDT_F16,
                                   2, adm, 0, 0.02f) == 0);
    CHECK(vkf_st_writer_add_random(
              w, "model.diffusion_model.input_blocks.4.1.transformer_blocks.0.attn2.to_k.weight",
              VKF_WDT_F16, 2, tok, 0, 0.02f) == 0);
    CHECK(vkf_st_writer_add_const(w, "conditioner.embedders.1.model.ln_final.weight",
                                  VKF_WDT_F16, 1, vec, 1) == 0);
    CHECK(vkf_st_writer_add_const(w, "first_stage_model.decoder.conv_in.bias", VKF_WDT_F16, 1,
                                  vec, 0) == 0);
    CHECK(vkf_st_writer_save(w, tmp_path("sdxl.safetensors"), &e) == 0);
    vkf_st_writer_destroy(&w);
    e.msg[0] = 0;
    int err = vkf_checkpoint_load(gpu, tmp_path("sdxl.safetensors"), VKF_CKPT_ALL, &g_quiet, &ck,
                                  &e);
    /* SDXL is loaded (test_sdxl); this key set's UNet is incomplete */
    CHECK(err == VKF_EUNSUPPORTED && !ck.model && !ck.clip && !ck.vae);
    CHECK_HAS(e.msg, "sdxl.safetensors: diffusion model: ");
    CHECK_HAS(e.msg, "label_emb.0.0.weight has shape [8, 2816]");
    vkf_model *m = NULL;
    err = vkf_diffusion_model_load_file(gpu, tmp_path("sdxl.safetensors"), &g_quiet, &m, &e);
    CHECK(err == VKF_EUNSUPPORTED && !m);
    CHECK_HAS(e.msg, "label_emb.0.0.weight has shape [8, 2816]");

    /* Flux */
    CHECK(vkf_st_writer_create(1, &w) == 0);
    CHECK(vkf_st_writer_add_const(w, "double_blocks.0.img_attn.norm.key_norm.scale",
                                  VKF_WDT_BF16, 1, vec, 1) == 0);
    CHECK(vkf_st_writer_add_const(w, "img_in.weight", VKF_WDT_BF16, 2, adm, 0) == 0);
    CHECK(vkf_st_writer_save(w, tmp_path("flux.safetensors"), &e) == 0);
    vkf_st_writer_destroy(&w);
    err = vkf_checkpoint_load(gpu, tmp_path("flux.safetensors"), VKF_CKPT_ALL, &g_quiet, &ck, &e);
    CHECK(err == VKF_EUNSUPPORTED);
    CHECK_HAS(e.msg, "this is a Flux checkpoint");
    CHECK_HAS(e.msg, "Flux is not supported yet");

    /* a lone VAE */
    CHECK(write_synth(&cases[0], 3, tmp_path("vae.safetensors"), false, false, true, "", "") == 0);
    err = vkf_checkpoint_load(gpu, tmp_path("vae.safetensors"), VKF_CKPT_ALL, &g_quiet, &ck, &e);
    CHECK(err == VKF_EUNSUPPORTED);
    CHECK_HAS(e.msg, "VAELoader");

    /* unrelated tensors */
    CHECK(vkf_st_writer_create(1, &w) == 0);
    CHECK(vkf_st_writer_add_const(w, "encoder.layer.0.dense.weight", VKF_WDT_F32, 1, vec, 1) == 0);
    CHECK(vkf_st_writer_save(w, tmp_path("other.safetensors"), &e) == 0);
    vkf_st_writer_destroy(&w);
    err = vkf_checkpoint_load(gpu, tmp_path("other.safetensors"), VKF_CKPT_ALL, &g_quiet, &ck, &e);
    CHECK(err == VKF_EUNSUPPORTED);
    CHECK_HAS(e.msg, "other.safetensors: not a model checkpoint vkflow recognises");
    vkf_clip *clip = NULL;
    err = vkf_text_encoder_load_file(gpu, tmp_path("other.safetensors"), &g_quiet, &clip, &e);
    CHECK(err == VKF_EUNSUPPORTED && !clip);
    CHECK_HAS(e.msg, "not a CLIP-L (SD1.x) or OpenCLIP-H (SD2.x) text encoder");

    /* garbage bytes, an empty file, a missing file */
    FILE *f = fopen(tmp_path("garbage.safetensors"), "wb");
    CHECK(f != NULL);
    if (f) {
        for (int i = 0; i < 4096; i++)
            fputc((i * 7919 + 13) & 0xff, f);
        fclose(f);
    }
    err = vkf_checkpoint_load(gpu, tmp_path("garbage.safetensors"), VKF_CKPT_ALL, &g_quiet, &ck,
                              &e);
    CHECK(err < 0 && !ck.model);
    CHECK_HAS(e.msg, "garbage.safetensors");
    f = fopen(tmp_path("empty.ckpt"), "wb");
    if (f)
        fclose(f);
    err = vkf_checkpoint_load(gpu, tmp_path("empty.ckpt"), VKF_CKPT_ALL, &g_quiet, &ck, &e);
    CHECK(err < 0);
    CHECK_HAS(e.msg, "empty.ckpt");
    err = vkf_checkpoint_load(gpu, tmp_path("absent.safetensors"), VKF_CKPT_ALL, &g_quiet, &ck,
                              &e);
    CHECK(err == VKF_ENOTFOUND);
    CHECK_HAS(e.msg, "absent.safetensors");
}


/* Host allocations failing at points spread over a whole load: an error
 * each time, no objects, nothing leaked. */
static void test_alloc_failures(vkf_gpu *gpu)
{
    const char *path = tmp_path("sd2-v.safetensors");
    vkf_checkpoint ck;
    vkf_errbuf e = {{0}};
    long live = vkf_alloc_live(), before = vkf_alloc_count();
    CHECK(vkf_checkpoint_load(gpu, path, VKF_CKPT_ALL, &g_quiet, &ck, &e) == 0);
    long total = vkf_alloc_count() - before;
    vkf_checkpoint_clear(&ck);
    CHECK(vkf_alloc_live() == live);
    CHECK(total > 10);
    int points = 0, failed = 0;
    for (long k = 0; k < total; k += total / 37 + 1) {
        vkf_alloc_fail_at(k);
        int err = vkf_checkpoint_load(gpu, path, VKF_CKPT_ALL, &g_quiet, &ck, &e);
        bool fired = vkf_alloc_failed();
        vkf_alloc_fail_at(-1);
        points++;
        if (fired) {
            failed++;
            if (err == 0)
                fprintf(stderr, "alloc %ld failed but the load succeeded\n", k);
            CHECK(err < 0);
            CHECK(!ck.model && !ck.clip && !ck.vae);
        }
        vkf_checkpoint_clear(&ck);
        if (vkf_alloc_live() != live)
            fprintf(stderr, "alloc %ld: %ld blocks leaked\n", k, vkf_alloc_live() - live);
        CHECK(vkf_alloc_live() == live);
    }
    CHECK(failed > points / 2);
    printf("allocation failures: %d points over %ld allocations\n", points, total);
}

/* ---- the nodes, through the executor -------------------------------------- */

typedef struct capture {
    int runs;
    vkf_diffusion_model *dm;     /* identity only, not referenced */
    vkf_prediction model_pred, ms_pred;
    float sigma_max;
    int in_channels;
    bool has_clip, has_vae;
    int clip_default_layer;
    bool clip_pad_with_end;
} capture;

static capture cap;

static int capture_exec(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    (void)ctx;
    (void)out;
    memset(&cap, 0, sizeof(cap));
    vkf_model *m = vkf_value_model(&in[0]);
    vkf_clip *c = in[1].kind == VKF_VAL_OBJECT ? vkf_value_clip(&in[1]) : NULL;
    vkf_vae *v = in[2].kind == VKF_VAL_OBJECT ? vkf_value_vae(&in[2]) : NULL;
    cap.runs = 1;
    if (m && m->dm && m->ms) {
        cap.dm = m->dm;
        cap.model_pred = m->dm->prediction;
        cap.ms_pred = m->ms->prediction;
        cap.sigma_max = vkf_model_sampling_sigma_max(m->ms);
        cap.in_channels = m->dm->in_channels;
    }
    cap.has_clip = c && c->text && c->tok;
    if (c) {
        cap.clip_default_layer = c->default_layer_idx;
        cap.clip_pad_with_end = c->pad_with_end;
    }
    cap.has_vae = v && v->m;
    return 0;
}

static const vkf_input_def capture_inputs[] = {
    {.name = "model", .type = "MODEL"},
    {.name = "clip", .type = "CLIP", .flags = VKF_IN_OPTIONAL},
    {.name = "vae", .type = "VAE", .flags = VKF_IN_OPTIONAL},
};

static const vkf_node_def capture_def = {
    .name = "TestCaptureModel",
    .inputs = capture_inputs, .nb_inputs = 3,
    .flags = VKF_NODE_OUTPUT | VKF_NODE_NOT_IDEMPOTENT,
    .execute = capture_exec,
};

static vkf_registry *g_reg;
static vkf_executor *g_ex;

static int run_json(const char *json, char **run_error)
{
    vkf_graph *g = NULL;
    vkf_load_error le = {0};
    if (run_error)
        *run_error = NULL;
    if (vkf_load_workflow_json(json, strlen(json), g_reg, &g, &le) < 0) {
        fprintf(stderr, "load: %s\n", le.message ? le.message : "?");
        vkf_load_error_clear(&le);
        return -100;
    }
    vkf_validation val = {0};
    int err = vkf_executor_run(g_ex, g, &val, run_error);
    if (err == VKF_EVALIDATION) {
        for (int i = 0; i < val.nb_node_errors; i++)
            for (int k = 0; k < val.node_errors[i].nb_errors; k++)
                fprintf(stderr, "validation: %s: %s\n", val.node_errors[i].errors[k].message,
                        val.node_errors[i].errors[k].details);
    }
    vkf_validation_clear(&val);
    vkf_graph_free(&g);
    return err;
}

static void copy_file(const char *src, const char *dst)
{
    FILE *a = fopen(src, "rb"), *b = fopen(dst, "wb");
    CHECK(a && b);
    char buf[65536];
    size_t n;
    while (a && b && (n = fread(buf, 1, sizeof(buf), a)) > 0)
        CHECK(fwrite(buf, 1, n, b) == n);
    if (a)
        fclose(a);
    if (b)
        fclose(b);
}

static void test_nodes(void)
{
    char models[4300], dir[4400];
    snprintf(models, sizeof(models), "%s/models", g_dir);
    mkdir(models, 0755);
    const char *sub[] = {"checkpoints", "diffusion_models", "text_encoders", "configs"};
    for (int i = 0; i < 4; i++) {
        snprintf(dir, sizeof(dir), "%s/%s", models, sub[i]);
        mkdir(dir, 0755);
    }
    char p[4600];
    snprintf(p, sizeof(p), "%s/checkpoints/sd2v.safetensors", models);
    copy_file(tmp_path("sd2-v.safetensors"), p);
    snprintf(p, sizeof(p), "%s/checkpoints/sdxl.safetensors", models);
    copy_file(tmp_path("sdxl.safetensors"), p);
    snprintf(p, sizeof(p), "%s/diffusion_models/unet_sd2v.safetensors", models);
    copy_file(tmp_path("unet_sd2v.safetensors"), p);
    snprintf(p, sizeof(p), "%s/text_encoders/clip_l.safetensors", models);
    copy_file(tmp_path("clip_l.safetensors"), p);
    snprintf(p, sizeof(p), "%s/configs/v2-inference-v.yaml", models);
    FILE *f = fopen(p, "w");
    if (f) {
        fputs("model: {}\n", f);
        fclose(f);
    }

    vkf_paths *paths = NULL;
    CHECK_OK(vkf_paths_create(&paths, &g_quiet));
    CHECK_OK(vkf_paths_add_models_root(paths, models));
    CHECK_OK(vkf_registry_create(&g_reg));
    CHECK_OK(vkf_registry_add(g_reg, &capture_def));
    const char *v = getenv("VKF_VALIDATION");
    vkf_gpu_params gp = {.validation = !(v && !strcmp(v, "0"))};
    vkf_gpu *probe = NULL;
    if (gp.validation && vkf_gpu_create(&gp, &probe) == VKF_EUNSUPPORTED)
        gp.validation = false;
    vkf_gpu_destroy(&probe);
    vkf_executor_params ep = {.registry = g_reg, .paths = paths, .log = &g_quiet,
                              .gpu_params = &gp};
    CHECK_OK(vkf_executor_create(&g_ex, &ep));

    static const char *simple =
        "{\"1\":{\"class_type\":\"CheckpointLoaderSimple\",\"inputs\":{\"ckpt_name\":"
        "\"sd2v.safetensors\"}},"
        "\"2\":{\"class_type\":\"TestCaptureModel\",\"inputs\":{\"model\":[\"1\",0],"
        "\"clip\":[\"1\",1],\"vae\":[\"1\",2]}}}";
    char *msg = NULL;
    int executed = -1, cached = -1;
    CHECK(run_json(simple, &msg) == 0);
    if (msg)
        fprintf(stderr, "run: %s\n", msg);
    vkf_free(msg);
    CHECK(cap.runs == 1 && cap.dm && cap.has_clip && cap.has_vae);
    CHECK(cap.model_pred == VKF_PREDICTION_V && cap.ms_pred == VKF_PREDICTION_V);
    CHECK(cap.clip_default_layer == -2 && !cap.clip_pad_with_end);
    vkf_diffusion_model *first = cap.dm;

    /* same file: the loaded model is reused (nothing executes) */
    cap.runs = 0;
    CHECK(run_json(simple, NULL) == 0);
    vkf_executor_last_stats(g_ex, &executed, &cached);
    CHECK(executed == 0 && cached == 2);

    /* a new modification time: loaded again */
    snprintf(p, sizeof(p), "%s/checkpoints/sd2v.safetensors", models);
    struct timeval tv[2] = {{.tv_sec = 1000000000}, {.tv_sec = 1000000000}};
    CHECK(utimes(p, tv) == 0);
    CHECK(run_json(simple, NULL) == 0);
    vkf_executor_last_stats(g_ex, &executed, &cached);
    CHECK(executed == 2 && cached == 0);
    CHECK(cap.runs == 1 && cap.dm && cap.model_pred == VKF_PREDICTION_V);
    (void)first;

    /* CheckpointLoader: the config is accepted and not needed */
    CHECK(run_json("{\"1\":{\"class_type\":\"CheckpointLoader\",\"inputs\":{\"config_name\":"
                   "\"v2-inference-v.yaml\",\"ckpt_name\":\"sd2v.safetensors\"}},"
                   "\"2\":{\"class_type\":\"TestCaptureModel\",\"inputs\":{\"model\":[\"1\",0],"
                   "\"clip\":[\"1\",1],\"vae\":[\"1\",2]}}}", NULL) == 0);
    CHECK(cap.runs == 1 && cap.model_pred == VKF_PREDICTION_V && cap.has_clip && cap.has_vae);

    /* ModelSamplingDiscrete: eps over a v model; zsnr; refused kinds */
    static const char *msd =
        "{\"1\":{\"class_type\":\"CheckpointLoaderSimple\",\"inputs\":{\"ckpt_name\":"
        "\"sd2v.safetensors\"}},"
        "\"3\":{\"class_type\":\"ModelSamplingDiscrete\",\"inputs\":{\"model\":[\"1\",0],"
        "\"sampling\":\"%s\",\"zsnr\":%s}},"
        "\"2\":{\"class_type\":\"TestCaptureModel\",\"inputs\":{\"model\":[\"3\",0]}}}";
    char json[2048];
    snprintf(json, sizeof(json), msd, "eps", "false");
    CHECK(run_json(json, NULL) == 0);
    CHECK(cap.runs == 1 && cap.model_pred == VKF_PREDICTION_V && cap.ms_pred == VKF_PREDICTION_EPS);
    CHECK(fabsf(cap.sigma_max - 14.6146f) < 1e-3f);
    CHECK(!cap.has_clip && !cap.has_vae);
    snprintf(json, sizeof(json), msd, "v_prediction", "true");
    CHECK(run_json(json, NULL) == 0);
    CHECK(cap.ms_pred == VKF_PREDICTION_V);
    CHECK(cap.sigma_max > 1000.0f);   /* zero terminal SNR: sigma_max ~ 4500 */
    const char *refused[] = {"lcm", "x0", "img_to_img"};
    for (int i = 0; i < 3; i++) {
        snprintf(json, sizeof(json), msd, refused[i], "false");
        CHECK(run_json(json, &msg) == VKF_ERUN);
        CHECK_HAS(msg, refused[i]);
        CHECK_HAS(msg, "is not supported yet");
        vkf_free(msg);
    }

    /* UNETLoader */
    static const char *unet =
        "{\"1\":{\"class_type\":\"UNETLoader\",\"inputs\":{\"unet_name\":"
        "\"unet_sd2v.safetensors\",\"weight_dtype\":\"%s\"}},"
        "\"2\":{\"class_type\":\"TestCaptureModel\",\"inputs\":{\"model\":[\"1\",0]}}}";
    snprintf(json, sizeof(json), unet, "default");
    CHECK(run_json(json, &msg) == 0);
    if (msg)
        fprintf(stderr, "unet: %s\n", msg);
    vkf_free(msg);
    CHECK(cap.runs == 1 && cap.dm && cap.ms_pred == cap.model_pred);
    snprintf(json, sizeof(json), unet, "fp8_e4m3fn");
    CHECK(run_json(json, &msg) == VKF_ERUN);
    CHECK_HAS(msg, "weight_dtype 'fp8_e4m3fn' is not supported");
    vkf_free(msg);

    /* CLIPLoader (+ a model so the capture node has its required input) */
    static const char *clip =
        "{\"1\":{\"class_type\":\"UNETLoader\",\"inputs\":{\"unet_name\":"
        "\"unet_sd2v.safetensors\",\"weight_dtype\":\"default\"}},"
        "\"4\":{\"class_type\":\"CLIPLoader\",\"inputs\":{\"clip_name\":\"clip_l.safetensors\","
        "\"type\":\"%s\"}},"
        "\"2\":{\"class_type\":\"TestCaptureModel\",\"inputs\":{\"model\":[\"1\",0],"
        "\"clip\":[\"4\",0]}}}";
    snprintf(json, sizeof(json), clip, "stable_diffusion");
    CHECK(run_json(json, &msg) == 0);
    if (msg)
        fprintf(stderr, "clip: %s\n", msg);
    vkf_free(msg);
    CHECK(cap.has_clip && cap.clip_default_layer == 0 && cap.clip_pad_with_end);
    snprintf(json, sizeof(json), clip, "sd3");
    CHECK(run_json(json, &msg) == VKF_ERUN);
    CHECK_HAS(msg, "CLIPLoader type 'sd3' is not supported yet");
    vkf_free(msg);

    /* other families: a run error naming them */
    CHECK(run_json("{\"1\":{\"class_type\":\"CheckpointLoaderSimple\",\"inputs\":{\"ckpt_name\":"
                   "\"sdxl.safetensors\"}},"
                   "\"2\":{\"class_type\":\"TestCaptureModel\",\"inputs\":{\"model\":[\"1\",0]}}}",
                   &msg) == VKF_ERUN);
    CHECK_HAS(msg, "sdxl.safetensors: diffusion model: ");
    vkf_free(msg);
    /* a name that is not in the folder fails validation */
    CHECK(run_json("{\"1\":{\"class_type\":\"CheckpointLoaderSimple\",\"inputs\":{\"ckpt_name\":"
                   "\"nope.safetensors\"}},"
                   "\"2\":{\"class_type\":\"TestCaptureModel\",\"inputs\":{\"model\":[\"1\",0]}}}",
                   NULL) == VKF_EVALIDATION);

    vkf_gpu *egpu = vkf_executor_gpu(g_ex);
    CHECK(egpu && vkf_gpu_validation_messages(egpu) == 0);
    vkf_executor_destroy(&g_ex);
    vkf_registry_destroy(&g_reg);
    vkf_paths_destroy(&paths);
}

/* ---- graphs/sd15_*.json on a synthesized checkpoint ----------------------- */

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void png_chunk(FILE *f, const char *type, const uint8_t *data, uint32_t n)
{
    uint8_t b[4];
    put_be32(b, n);
    fwrite(b, 1, 4, f);
    fwrite(type, 1, 4, f);
    if (n)
        fwrite(data, 1, n, f);
    uLong crc = crc32(0, (const Bytef *)type, 4);
    if (n)
        crc = crc32(crc, data, n);
    put_be32(b, (uint32_t)crc);
    fwrite(b, 1, 4, f);
}

/* A 64x64 RGBA PNG whose centre is transparent (the inpainting mask). */
static void write_example_png(const char *path)
{
    enum { W = 64, H = 64 };
    static uint8_t raw[H * (1 + 4 * W)];
    for (int y = 0; y < H; y++) {
        uint8_t *r = raw + y * (1 + 4 * W);
        r[0] = 0;
        for (int x = 0; x < W; x++) {
            r[1 + 4 * x] = (uint8_t)(4 * x);
            r[2 + 4 * x] = (uint8_t)(4 * y);
            r[3 + 4 * x] = 128;
            r[4 + 4 * x] = (x >= 16 && x < 48 && y >= 16 && y < 48) ? 0 : 255;
        }
    }
    static uint8_t z[sizeof(raw) + 1024];
    uLongf zn = sizeof(z);
    CHECK(compress(z, &zn, raw, sizeof(raw)) == Z_OK);
    uint8_t ihdr[13] = {0};
    put_be32(ihdr, W);
    put_be32(ihdr + 4, H);
    ihdr[8] = 8;
    ihdr[9] = 6;   /* RGBA */
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (!f)
        return;
    fwrite("\x89PNG\r\n\x1a\n", 1, 8, f);
    png_chunk(f, "IHDR", ihdr, 13);
    png_chunk(f, "IDAT", z, (uint32_t)zn);
    png_chunk(f, "IEND", NULL, 0);
    fclose(f);
}

/* Width and height of the PNG <dir>/<prefix>_00001_.png, or -1. */
static void png_size(const char *dir, const char *prefix, int *w, int *h)
{
    char p[4600];
    snprintf(p, sizeof(p), "%s/%s_00001_.png", dir, prefix);
    uint8_t b[24];
    FILE *f = fopen(p, "rb");
    *w = *h = -1;
    if (f && fread(b, 1, 24, f) == 24 && !memcmp(b + 12, "IHDR", 4)) {
        *w = (int)((uint32_t)b[16] << 24 | (uint32_t)b[17] << 16 | (uint32_t)b[18] << 8 | b[19]);
        *h = (int)((uint32_t)b[20] << 24 | (uint32_t)b[21] << 16 | (uint32_t)b[22] << 8 | b[23]);
    }
    if (f)
        fclose(f);
}

typedef struct graph_case {
    const char *file, *prefix;
    const char *sets[12];       /* "ID.INPUT=VALUE" */
    const char *needs;          /* a node class the graph needs, or NULL */
    int w, h;
} graph_case;

/* Every example graph runs end to end (2 sampling steps, small sizes) on a
 * tiny synthesized SD1.5 checkpoint and saves an image of the right size. */
static void test_graphs(void)
{
    static const graph_case graphs[] = {
        {"sd15_txt2img.json", "ComfyUI", {"5.width=64", "5.height=64", "3.steps=2"}, NULL, 64, 64},
        {"sd15_img2img.json", "img2img", {"3.steps=2"}, NULL, 64, 64},
        {"sd15_inpaint.json", "inpaint", {"3.steps=2"}, NULL, 64, 64},
        {"sd15_outpaint.json", "outpaint", {"3.steps=2", "12.top=16", "12.right=8", "12.bottom=8",
                                            "12.feathering=8"}, "ImagePadForOutpaint", 72, 88},
        {"sd15_hires_fix.json", "hires", {"5.width=64", "5.height=64", "10.width=96",
                                          "10.height=96", "3.steps=2", "11.steps=2"}, NULL, 96, 96},
        {"sd15_area_composition.json", "area", {"5.width=128", "5.height=64", "12.width=64",
                                                "12.height=64", "14.width=64", "14.height=64",
                                                "14.x=64", "3.steps=2"}, NULL, 128, 64},
    };
    const char *src = getenv("VKF_SOURCE_ROOT");
    if (!src) {
        fprintf(stderr, "VKF_SOURCE_ROOT unset: skipping the graphs check\n");
        return;
    }
    char models[4300], in_dir[4300], out_dir[4300], p[4600];
    snprintf(models, sizeof(models), "%s/gmodels", g_dir);
    snprintf(in_dir, sizeof(in_dir), "%s/input", g_dir);
    snprintf(out_dir, sizeof(out_dir), "%s/output", g_dir);
    mkdir(models, 0755);
    mkdir(in_dir, 0755);
    mkdir(out_dir, 0755);
    snprintf(p, sizeof(p), "%s/checkpoints", models);
    mkdir(p, 0755);
    snprintf(p, sizeof(p), "%s/checkpoints/sd15_synth.safetensors", models);
    copy_file(tmp_path("sd15.safetensors"), p);
    snprintf(p, sizeof(p), "%s/example.png", in_dir);
    write_example_png(p);

    vkf_paths *paths = NULL;
    CHECK_OK(vkf_paths_create(&paths, &g_quiet));
    CHECK_OK(vkf_paths_add_models_root(paths, models));
    CHECK_OK(vkf_paths_set_input_dir(paths, in_dir));
    CHECK_OK(vkf_paths_set_output_dir(paths, out_dir));
    CHECK_OK(vkf_paths_set_temp_dir(paths, tmp_path("temp")));
    CHECK_OK(vkf_registry_create(&g_reg));
    const char *v = getenv("VKF_VALIDATION");
    vkf_gpu_params gp = {.validation = !(v && !strcmp(v, "0"))};
    vkf_gpu *probe = NULL;
    if (gp.validation && vkf_gpu_create(&gp, &probe) == VKF_EUNSUPPORTED)
        gp.validation = false;
    vkf_gpu_destroy(&probe);
    vkf_executor_params ep = {.registry = g_reg, .paths = paths, .log = &g_quiet,
                              .gpu_params = &gp};
    CHECK_OK(vkf_executor_create(&g_ex, &ep));

    for (size_t i = 0; i < sizeof(graphs) / sizeof(graphs[0]); i++) {
        const graph_case *gc = &graphs[i];
        if (gc->needs && !vkf_registry_find(g_reg, gc->needs)) {
            fprintf(stderr, "%s: no %s node yet: skipped\n", gc->file, gc->needs);
            continue;
        }
        snprintf(p, sizeof(p), "%s/graphs/%s", src, gc->file);
        vkf_graph *g = NULL;
        vkf_load_error le = {0};
        int err = vkf_load_workflow_file(p, g_reg, &g, &le);
        if (err < 0)
            fprintf(stderr, "%s: %s\n", gc->file, le.message ? le.message : "?");
        vkf_load_error_clear(&le);
        CHECK(err == 0);
        if (err < 0)
            continue;
        for (int k = 0; k < 12 && gc->sets[k]; k++) {
            char id[16], input[64];
            const char *dot = strchr(gc->sets[k], '.'), *eq = strchr(gc->sets[k], '=');
            snprintf(id, sizeof(id), "%.*s", (int)(dot - gc->sets[k]), gc->sets[k]);
            snprintf(input, sizeof(input), "%.*s", (int)(eq - dot - 1), dot + 1);
            char *emsg = NULL;
            CHECK(vkf_graph_set_input(g, id, input, eq + 1, &emsg) == 0);
            vkf_free(emsg);
        }
        vkf_validation val = {0};
        char *run_error = NULL;
        err = vkf_executor_run(g_ex, g, &val, &run_error);
        if (err)
            fprintf(stderr, "%s: %s %s\n", gc->file, vkf_strerror(err),
                    run_error ? run_error : val.nb_node_errors ? "(validation)" : "");
        for (int n = 0; n < val.nb_node_errors; n++)
            for (int k = 0; k < val.node_errors[n].nb_errors; k++)
                fprintf(stderr, "  %s: %s\n", val.node_errors[n].errors[k].message,
                        val.node_errors[n].errors[k].details);
        CHECK(err == 0);
        vkf_free(run_error);
        vkf_validation_clear(&val);
        vkf_graph_free(&g);
        int w, h;
        png_size(out_dir, gc->prefix, &w, &h);
        if (w != gc->w || h != gc->h)
            fprintf(stderr, "%s: saved %dx%d, expected %dx%d\n", gc->file, w, h, gc->w, gc->h);
        CHECK(w == gc->w && h == gc->h);
    }
    vkf_gpu *egpu = vkf_executor_gpu(g_ex);
    CHECK(egpu && vkf_gpu_validation_messages(egpu) == 0);
    vkf_executor_destroy(&g_ex);
    vkf_registry_destroy(&g_reg);
    vkf_paths_destroy(&paths);
}

/* `vkflow synth-model`: exit codes, the file it writes loads, its metadata,
 * the same bytes for the same seed. */
static void test_synth_cli(vkf_gpu *gpu)
{
    const char *build = getenv("VKF_BUILD_ROOT");
    char exe[4200], cmd[9000];
    snprintf(exe, sizeof(exe), "%s/vkflow", build ? build : "");
    if (!build || access(exe, X_OK) != 0) {
        fprintf(stderr, "no vkflow binary: skipping the synth-model check\n");
        return;
    }
    const char *a = tmp_path("cli_a.safetensors"), *b = tmp_path("cli_b.safetensors");
    snprintf(cmd, sizeof(cmd), "'%s' synth-model --arch sd2-v --scale tiny --seed 9 -o '%s' >/dev/null",
             exe, a);
    CHECK(system(cmd) == 0);
    snprintf(cmd, sizeof(cmd), "'%s' synth-model --seed 9 -o '%s' --scale tiny --arch sd2-v >/dev/null",
             exe, b);
    CHECK(system(cmd) == 0);
    CHECK(files_equal(a, b));
    vkf_weights *w = NULL;
    CHECK(vkf_weights_open(a, &w, &g_quiet) == 0);
    if (w) {
        const char *m = vkf_weights_metadata_get(w, "vkflow.synth.arch");
        CHECK(m && !strcmp(m, "sd2-v"));
        m = vkf_weights_metadata_get(w, "vkflow.synth.seed");
        CHECK(m && !strcmp(m, "9"));
        const vkf_weight_info *t = vkf_weights_at(w, 0);
        CHECK(t && t->dtype == VKF_WDT_F32);   /* tiny defaults to f32 */
        vkf_weights_close(&w);
    }
    vkf_checkpoint ck;
    vkf_errbuf e = {{0}};
    CHECK(vkf_checkpoint_load(gpu, a, VKF_CKPT_ALL, &g_quiet, &ck, &e) == 0);
    check_model(&cases[2], ck.model);
    check_clip(&cases[2], ck.clip);
    vkf_checkpoint_clear(&ck);
    /* --dtype bf16 */
    snprintf(cmd, sizeof(cmd), "'%s' synth-model --arch sd15 --scale tiny --seed 1 --dtype bf16 "
             "-o '%s' >/dev/null", exe, b);
    CHECK(system(cmd) == 0);
    CHECK(vkf_weights_open(b, &w, &g_quiet) == 0);
    if (w) {
        const vkf_weight_info *t = vkf_weights_find(w, "model.diffusion_model.out.2.weight");
        CHECK(t && t->dtype == VKF_WDT_BF16);
        vkf_weights_close(&w);
    }
    /* usage errors: exit 2, nothing written; an unwritable path: exit 1 */
    const char *c = tmp_path("cli_c.safetensors");
    const char *bad[] = {"--arch sd3 --scale tiny --seed 1", "--arch sd15 --seed 1",
                         "--arch sd15 --scale big --seed 1", "--arch sd15 --scale tiny --seed -3",
                         "--arch sd15 --scale tiny", "--arch sd15 --scale tiny --seed 1 --dtype f8"};
    for (int i = 0; i < 6; i++) {
        snprintf(cmd, sizeof(cmd), "'%s' synth-model %s -o '%s' 2>/dev/null", exe, bad[i], c);
        int rc = system(cmd);
        CHECK(WIFEXITED(rc) && WEXITSTATUS(rc) == 2);
        CHECK(access(c, F_OK) != 0);
    }
    snprintf(cmd, sizeof(cmd), "'%s' synth-model --arch sd15 --scale tiny --seed 1 -o '%s/no/dir/x' "
             "2>/dev/null", exe, g_dir);
    int rc = system(cmd);
    CHECK(WIFEXITED(rc) && WEXITSTATUS(rc) == 1);
}

int main(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(g_dir, sizeof(g_dir), "%s/vkf-ckpt-XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
    if (!mkdtemp(g_dir)) {
        perror("mkdtemp");
        return 1;
    }
    vkf_gpu *gpu = gt_gpu_open((vkf_gpu_params){0});
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        test_arch(gpu, &cases[i]);
    test_parts(gpu);
    test_refusals(gpu);
    test_alloc_failures(gpu);
    test_synth_cli(gpu);
    test_nodes();
    test_graphs();
    nftw(g_dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    int rc = gt_finish(&gpu);
    if (!rc)
        printf("test_checkpoint: all checks passed\n");
    return rc;
}
