/*
 * KL-f8 VAE against tests/reference/ref_vae.py (independent PyTorch
 * float64 implementation) on the tiny synthesized checkpoint
 * (vkf_synth_vae TINY, seed 1234):
 *   - decode (B = 2) and encode (posterior mean, B = 2), f32 weights;
 *   - f16 weights (stay f16 on the device) on a gpu with 256 KiB storage
 *     chunks, so every large activation spans several bindings;
 *   - attention projections stored as [C, C] (linear) give the same result;
 *   - the same weights under diffusers names;
 *   - bf16 weights: relative RMS error < 2% against the f32 golden;
 *   - tiled decode (VAEDecodeTiled tile 64, overlap 16) and tiled encode
 *     (VAEEncodeTiled tile 64, overlap 16) with ComfyUI's three passes;
 *   - peak device memory of a tiled decode is that of a tile (< half of
 *     the whole 128x128 decode);
 *   - errors name the missing tensor / wrong shape.
 * Tolerance: |Δ| <= 1e-4 + 1e-4·|ref| (measured: 9e-6) (f32 activations vs float64; the
 * reference's inputs and weights are the same f32/f16 values).
 *
 *   test_vae --write PATH [--f16]   writes the tiny checkpoint (for ref_vae.py)
 *   test_vae --bench [--f16]        times a 512x512 decode of the FULL-size
 *                                   synthesized VAE (docs/performance.md)
 */
#include <time.h>
#include <unistd.h>

#include "../gpu/gpu_test.h"
#include "models/vae_internal.h"
#include "vkflow/models.h"

#define SEED 1234
#define PREFIX "first_stage_model."

static char tmpdir[256];

static int write_ckpt(const char *path, vkf_synth_scale sc, vkf_wdtype dt, bool linear_attn)
{
    vkf_st_writer *w = NULL;
    vkf_errbuf e = {{0}};
    int err = vkf_st_writer_create(SEED, &w);
    if (err >= 0)
        err = vkf_synth_vae_ex(w, PREFIX, sc, dt, linear_attn);
    if (err >= 0)
        err = vkf_st_writer_save(w, path, &e);
    if (err < 0)
        fprintf(stderr, "writing %s: %s %s\n", path, vkf_strerror(err), e.msg);
    vkf_st_writer_destroy(&w);
    return err;
}

static vkf_vae_model *load_model(vkf_gpu *gpu, const char *path, const char *prefix)
{
    vkf_weights *w = NULL;
    CHECK_OK(vkf_weights_open(path, &w, &gt_log));
    vkf_vae_model *m = NULL;
    vkf_errbuf e = {{0}};
    int err = vkf_vae_kl_load(gpu, w, prefix, &m, &e);
    if (err < 0)
        fprintf(stderr, "load %s: %s\n", path, e.msg);
    CHECK_OK(err);
    vkf_weights_close(&w);
    return m;
}

typedef struct golden {
    vkf_weights *w;
} golden;

static float *gold(golden *g, const char *name, int64_t shape[4])
{
    const vkf_weight_info *t = vkf_weights_find(g->w, name);
    CHECK(t && t->ndim == 4);
    if (!t)
        exit(1);
    float *p = malloc((size_t)t->numel * sizeof(float));
    CHECK_OK(vkf_weights_to_f32(g->w, t, p));
    for (int d = 0; d < 4; d++)
        shape[d] = t->shape[d];
    return p;
}

static int64_t numel4(const int64_t s[4])
{
    return s[0] * s[1] * s[2] * s[3];
}

static float maxdiff(const float *a, const float *b, int64_t n)
{
    float m = 0;
    for (int64_t i = 0; i < n; i++)
        m = fabsf(a[i] - b[i]) > m ? fabsf(a[i] - b[i]) : m;
    return m;
}

/* Runs decode (or encode, or the tiled forms) of input `in` and compares
 * with `want`. mode: 0 decode, 1 encode, 2 tiled decode, 3 tiled encode. */
static void check_case(vkf_gpu *gpu, vkf_vae_model *m, golden *g, const char *in,
                       const char *want, int mode, const char *what)
{
    int64_t is[4], ws[4];
    float *x = gold(g, in, is), *y = gold(g, want, ws);
    vkf_tensor *t = gt_tensor(gpu, VKF_DTYPE_F32, 4, is, x), *o = NULL;
    int err = mode == 0 ? m->decode(m, t, &o)
              : mode == 1 ? m->encode(m, t, &o)
              : mode == 2 ? vkf_vae_decode_tiled(m, t, 64, 16, &o)
                          : vkf_vae_encode_tiled(m, t, 64, 16, &o);
    CHECK_OK(err);
    const int64_t *os = vkf_tensor_shape(o);
    CHECK(vkf_tensor_ndim(o) == 4 && !memcmp(os, ws, sizeof(ws)));
    float *got = gt_download(o);
    gt_compare(what, got, y, numel4(ws), 1e-4f, 1e-4f);
    printf("%s: max |diff| %.3g\n", what, maxdiff(got, y, numel4(ws)));
    free(got);
    free(x);
    free(y);
    vkf_tensor_unref(&t);
    vkf_tensor_unref(&o);
}

/* Device memory of a tiled decode is that of one tile: decode the 16x16
 * latent whole and in 8-latent-pixel tiles and compare the peaks above the
 * resident weights. */
static void test_tiled_memory(vkf_gpu *gpu, vkf_vae_model *m)
{
    int64_t ls[4] = {1, 4, 16, 16};
    gt_seed(11);
    float *z = gt_random(4 * 16 * 16);
    vkf_tensor *t = gt_tensor(gpu, VKF_DTYPE_F32, 4, ls, z), *o = NULL;
    vkf_gpu_mem_stats ms;
    uint64_t peak[2];
    for (int tiled = 0; tiled < 2; tiled++) {
        CHECK_OK(vkf_gpu_flush(gpu));
        vkf_gpu_mem_stats_get(gpu, &ms);
        uint64_t base = ms.current;
        vkf_gpu_mem_reset_peak(gpu);
        CHECK_OK(tiled ? vkf_vae_decode_tiled(m, t, 64, 16, &o) : m->decode(m, t, &o));
        CHECK_OK(vkf_gpu_flush(gpu));
        vkf_gpu_mem_stats_get(gpu, &ms);
        peak[tiled] = ms.peak - base;
        vkf_tensor_unref(&o);
    }
    printf("decode 128x128 peak activations: whole %.2f MiB, tiles of 64 px %.2f MiB\n",
           peak[0] / 1048576.0, peak[1] / 1048576.0);
    CHECK(peak[1] * 2 < peak[0]);
    vkf_tensor_unref(&t);
    free(z);
}

static void open_golden(golden *g, const char *name)
{
    char p[1200];
    const char *root = getenv("VKF_SOURCE_ROOT");
    snprintf(p, sizeof(p), "%s/tests/reference/golden/vae/%s", root ? root : ".", name);
    CHECK_OK(vkf_weights_open(p, &g->w, &gt_log));
}

static void test_f32(vkf_gpu *gpu)
{
    char p[400];
    snprintf(p, sizeof(p), "%s/vae_f32.safetensors", tmpdir);
    CHECK_OK(write_ckpt(p, VKF_SYNTH_TINY, VKF_WDT_F32, false));
    vkf_vae_model *m = load_model(gpu, p, PREFIX);
    CHECK(!strcmp(m->arch, "KL-f8") && m->latent_channels == 4 && m->downscale == 8);
    golden g = {0};
    open_golden(&g, "kl_tiny_f32.safetensors");
    check_case(gpu, m, &g, "dec_latent", "dec_image", 0, "f32 decode");
    check_case(gpu, m, &g, "enc_image", "enc_latent", 1, "f32 encode");
    check_case(gpu, m, &g, "tdec_latent", "tdec_image", 2, "f32 tiled decode");
    check_case(gpu, m, &g, "tenc_image", "tenc_latent", 3, "f32 tiled encode");
    test_tiled_memory(gpu, m);
    vkf_vae_model_unref(&m);

    /* [C, C] attention projections: same values (the synthesizer's values
     * depend on name and index only), same result. */
    snprintf(p, sizeof(p), "%s/vae_lin.safetensors", tmpdir);
    CHECK_OK(write_ckpt(p, VKF_SYNTH_TINY, VKF_WDT_F32, true));
    vkf_weights *w = NULL;
    CHECK_OK(vkf_weights_open(p, &w, NULL));
    const vkf_weight_info *q = vkf_weights_find(w, PREFIX "decoder.mid.attn_1.q.weight");
    CHECK(q && q->ndim == 2);
    vkf_weights_close(&w);
    m = load_model(gpu, p, PREFIX);
    check_case(gpu, m, &g, "dec_latent", "dec_image", 0, "linear-attn decode");
    vkf_vae_model_unref(&m);
    vkf_weights_close(&g.w);
}

/* The f32 checkpoint rewritten under diffusers names (no prefix, as a
 * diffusers vae/ file). */
static void test_diffusers(vkf_gpu *gpu)
{
    char buf[256];
    CHECK(vkf_vae_diffusers_name("decoder.up.3.block.0.conv1.weight", 4, false, buf,
                                 sizeof(buf)) == 0 &&
          !strcmp(buf, "decoder.up_blocks.0.resnets.0.conv1.weight"));
    CHECK(vkf_vae_diffusers_name("decoder.up.1.upsample.conv.bias", 4, false, buf,
                                 sizeof(buf)) == 0 &&
          !strcmp(buf, "decoder.up_blocks.2.upsamplers.0.conv.bias"));
    CHECK(vkf_vae_diffusers_name("encoder.down.1.block.0.nin_shortcut.weight", 4, false, buf,
                                 sizeof(buf)) == 0 &&
          !strcmp(buf, "encoder.down_blocks.1.resnets.0.conv_shortcut.weight"));
    CHECK(vkf_vae_diffusers_name("encoder.mid.attn_1.proj_out.weight", 4, false, buf,
                                 sizeof(buf)) == 0 &&
          !strcmp(buf, "encoder.mid_block.attentions.0.to_out.0.weight"));
    CHECK(vkf_vae_diffusers_name("decoder.mid.attn_1.q.bias", 4, true, buf, sizeof(buf)) == 0 &&
          !strcmp(buf, "decoder.mid_block.attentions.0.query.bias"));
    CHECK(vkf_vae_diffusers_name("decoder.mid.block_2.norm1.weight", 4, false, buf,
                                 sizeof(buf)) == 0 &&
          !strcmp(buf, "decoder.mid_block.resnets.1.norm1.weight"));
    CHECK(vkf_vae_diffusers_name("encoder.norm_out.bias", 4, false, buf, sizeof(buf)) == 0 &&
          !strcmp(buf, "encoder.conv_norm_out.bias"));
    CHECK(vkf_vae_diffusers_name("quant_conv.weight", 4, false, buf, sizeof(buf)) == 0 &&
          !strcmp(buf, "quant_conv.weight"));

    char src[400], dst[400];
    snprintf(src, sizeof(src), "%s/vae_f32.safetensors", tmpdir);
    snprintf(dst, sizeof(dst), "%s/vae_diffusers.safetensors", tmpdir);
    vkf_weights *w = NULL;
    CHECK_OK(vkf_weights_open(src, &w, NULL));
    vkf_st_writer *sw = NULL;
    CHECK_OK(vkf_st_writer_create(1, &sw));
    for (int i = 0; i < vkf_weights_count(w); i++) {
        const vkf_weight_info *t = vkf_weights_at(w, i);
        float *d = malloc((size_t)t->numel * sizeof(float));
        CHECK_OK(vkf_weights_to_f32(w, t, d));
        CHECK_OK(vkf_vae_diffusers_name(t->name + strlen(PREFIX), 4, true, buf, sizeof(buf)));
        /* diffusers stores attention projections as linear [C, C] */
        int nd = t->ndim;
        if (strstr(buf, "attentions.0.") && !strstr(buf, "group_norm") && nd == 4)
            nd = 2;
        CHECK_OK(vkf_st_writer_add_data(sw, buf, VKF_WDT_F32, nd, t->shape, d));
        free(d);
    }
    vkf_errbuf e = {{0}};
    CHECK_OK(vkf_st_writer_save(sw, dst, &e));
    vkf_st_writer_destroy(&sw);
    vkf_weights_close(&w);
    vkf_vae_model *m = load_model(gpu, dst, "");
    golden g = {0};
    open_golden(&g, "kl_tiny_f32.safetensors");
    check_case(gpu, m, &g, "dec_latent", "dec_image", 0, "diffusers-names decode");
    check_case(gpu, m, &g, "enc_image", "enc_latent", 1, "diffusers-names encode");
    vkf_weights_close(&g.w);
    vkf_vae_model_unref(&m);
}

static void test_f16_chunked(void)
{
    vkf_gpu *gpu = gt_gpu_open((vkf_gpu_params){.max_chunk_bytes = 256 << 10});
    char p[400];
    snprintf(p, sizeof(p), "%s/vae_f16.safetensors", tmpdir);
    CHECK_OK(write_ckpt(p, VKF_SYNTH_TINY, VKF_WDT_F16, false));
    vkf_weights *w = NULL;
    CHECK_OK(vkf_weights_open(p, &w, NULL));
    vkf_vae_model *m = NULL;
    vkf_errbuf e = {{0}};
    CHECK_OK(vkf_vae_kl_load(gpu, w, PREFIX, &m, &e));
    vkf_weights_close(&w);
    golden g = {0};
    open_golden(&g, "kl_tiny_f16.safetensors");
    check_case(gpu, m, &g, "dec_latent", "dec_image", 0, "f16 decode (chunked)");
    check_case(gpu, m, &g, "enc_image", "enc_latent", 1, "f16 encode (chunked)");
    vkf_weights_close(&g.w);
    vkf_vae_model_unref(&m);
    int rc = gt_finish(&gpu);
    (void)rc;
}

/* bf16 weights (kept bf16 on the device): the f32 golden with the error
 * that rounding every weight to 8 mantissa bits brings (loose bound; the
 * exact-weights paths are checked above). */
static void test_bf16(vkf_gpu *gpu)
{
    char p[400];
    snprintf(p, sizeof(p), "%s/vae_bf16.safetensors", tmpdir);
    CHECK_OK(write_ckpt(p, VKF_SYNTH_TINY, VKF_WDT_BF16, false));
    vkf_vae_model *m = load_model(gpu, p, PREFIX);
    golden g = {0};
    open_golden(&g, "kl_tiny_f32.safetensors");
    int64_t is[4], ws[4];
    float *x = gold(&g, "dec_latent", is), *y = gold(&g, "dec_image", ws);
    vkf_tensor *t = gt_tensor(gpu, VKF_DTYPE_F32, 4, is, x), *o = NULL;
    CHECK_OK(m->decode(m, t, &o));
    float *got = gt_download(o);
    float md = maxdiff(got, y, numel4(ws));
    double se = 0, sy = 0;
    for (int64_t i = 0; i < numel4(ws); i++) {
        se += (got[i] - y[i]) * (double)(got[i] - y[i]);
        sy += y[i] * (double)y[i];
    }
    printf("bf16 decode vs f32 golden: max |diff| %.3g, relative RMS %.3g\n", md,
           sqrt(se / sy));
    CHECK(sqrt(se / sy) < 0.02 && md < 0.1);
    free(got);
    free(x);
    free(y);
    vkf_tensor_unref(&t);
    vkf_tensor_unref(&o);
    vkf_weights_close(&g.w);
    vkf_vae_model_unref(&m);
}

static void test_errors(vkf_gpu *gpu)
{
    char src[400], dst[400];
    snprintf(src, sizeof(src), "%s/vae_f32.safetensors", tmpdir);
    snprintf(dst, sizeof(dst), "%s/vae_bad.safetensors", tmpdir);
    for (int pass = 0; pass < 2; pass++) {
        vkf_weights *w = NULL;
        CHECK_OK(vkf_weights_open(src, &w, NULL));
        vkf_st_writer *sw = NULL;
        CHECK_OK(vkf_st_writer_create(1, &sw));
        for (int i = 0; i < vkf_weights_count(w); i++) {
            const vkf_weight_info *t = vkf_weights_at(w, i);
            bool target = !strcmp(t->name, PREFIX "decoder.up.2.block.1.conv2.weight");
            if (target && pass == 0)
                continue;     /* missing */
            float *d = malloc((size_t)t->numel * sizeof(float));
            CHECK_OK(vkf_weights_to_f32(w, t, d));
            int64_t shape[4];
            memcpy(shape, t->shape, sizeof(shape));
            if (target) {       /* [128,128,3,3] → [128,128,1,9]: wrong shape */
                shape[2] = 1;
                shape[3] = 9;
            }
            CHECK_OK(vkf_st_writer_add_data(sw, t->name, VKF_WDT_F32, t->ndim, shape, d));
            free(d);
        }
        vkf_errbuf e = {{0}};
        CHECK_OK(vkf_st_writer_save(sw, dst, &e));
        vkf_st_writer_destroy(&sw);
        vkf_weights_close(&w);
        CHECK_OK(vkf_weights_open(dst, &w, NULL));
        vkf_vae_model *m = NULL;
        CHECK(vkf_vae_kl_load(gpu, w, PREFIX, &m, &e) == VKF_EINVAL && !m);
        CHECK(strstr(e.msg, "decoder.up.2.block.1.conv2.weight") != NULL);
        CHECK(strstr(e.msg, pass == 0 ? "missing" : "[128,128,1,9]") != NULL);
        /* no VAE under a wrong prefix */
        CHECK(vkf_vae_kl_load(gpu, w, "vae.", &m, &e) == VKF_EINVAL && !m);
        CHECK(strstr(e.msg, "vae.") != NULL);
        vkf_weights_close(&w);
    }
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* 512x512 decode of the full-size synthesized VAE: time and peak memory. */
static int bench(bool f16)
{
    vkf_gpu *gpu = gt_gpu_open((vkf_gpu_params){0});
    char p[400];
    snprintf(p, sizeof(p), "%s/vae_full.safetensors", tmpdir);
    CHECK_OK(write_ckpt(p, VKF_SYNTH_FULL, f16 ? VKF_WDT_F16 : VKF_WDT_F32, false));
    vkf_vae_model *m = load_model(gpu, p, PREFIX);
    unlink(p);
    int64_t ls[4] = {1, 4, 64, 64};
    gt_seed(3);
    float *z = gt_random(4 * 64 * 64);
    vkf_tensor *t = gt_tensor(gpu, VKF_DTYPE_F32, 4, ls, z), *o = NULL;
    vkf_gpu_mem_stats ms;
    vkf_gpu_mem_stats_get(gpu, &ms);
    uint64_t base = ms.current;
    vkf_gpu_mem_reset_peak(gpu);
    clock_t c0 = clock();
    double t0 = now();
    CHECK_OK(m->decode(m, t, &o));
    CHECK_OK(vkf_gpu_flush(gpu));
    double t1 = now();
    clock_t c1 = clock();
    vkf_gpu_mem_stats_get(gpu, &ms);
    float *img = gt_download(o);
    double mean = 0;
    for (int64_t i = 0; i < 3 * 512 * 512; i++)
        mean += img[i];
    printf("full KL-f8 %s weights, 512x512 decode: %.1f s wall, %.1f s CPU-time/2 cores; weights "
           "%.0f MiB, peak activations %.0f MiB (mean %.4f)\n",
           f16 ? "f16" : "f32", t1 - t0, (double)(c1 - c0) / CLOCKS_PER_SEC / 2,
           base / 1048576.0, (ms.peak - base) / 1048576.0, mean / (3 * 512 * 512));
    free(img);
    free(z);
    vkf_tensor_unref(&t);
    vkf_tensor_unref(&o);
    vkf_vae_model_unref(&m);
    return gt_finish(&gpu);
}

int main(int argc, char **argv)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/vkf-vae-XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    bool f16 = argc > 2 && !strcmp(argv[argc - 1], "--f16");
    if (argc >= 3 && !strcmp(argv[1], "--write")) {
        int err = write_ckpt(argv[2], VKF_SYNTH_TINY, f16 ? VKF_WDT_F16 : VKF_WDT_F32, false);
        rmdir(tmpdir);
        return err < 0 ? 1 : 0;
    }
    int rc;
    if (argc >= 2 && !strcmp(argv[1], "--bench")) {
        rc = bench(f16);
    } else {
        vkf_gpu *gpu = gt_gpu_open((vkf_gpu_params){0});
        test_f32(gpu);
        test_diffusers(gpu);
        test_bf16(gpu);
        test_errors(gpu);
        rc = gt_finish(&gpu);
        test_f16_chunked();
        rc = rc || gt_failures;
    }
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        rc = 1;
    return rc ? 1 : 0;
}
