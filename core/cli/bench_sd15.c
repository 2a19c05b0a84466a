/*
 * `vkflow bench sd15`: the cost of one SD1.5 txt2img on a synthesized
 * full-size checkpoint (or a real one given with --ckpt): text encoding,
 * ms per sampling step (cond + uncond as one batch of 2, as ComfyUI runs
 * CFG), VAE decode, peak device memory and peak host RSS.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "cli/gpu_cli.h"
#include "vkflow/models.h"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static double peak_rss_mib(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024.0;     /* Linux: KiB */
}

static int make_tensor(vkf_gpu *gpu, int ndim, const int64_t *shape, float scale,
                       uint32_t seed, vkf_tensor **out)
{
    int err = vkf_tensor_create(gpu, VKF_DTYPE_F32, ndim, shape, out);
    if (err < 0)
        return err;
    int64_t n = vkf_tensor_numel(*out);
    float *h = vkf_malloc((size_t)n * sizeof(float));
    if (!h) {
        vkf_tensor_unref(out);
        return VKF_ENOMEM;
    }
    uint32_t s = seed;
    for (int64_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        h[i] = ((float)(s >> 8) / 16777216.0f - 0.5f) * scale;
    }
    err = vkf_tensor_upload(*out, h);
    vkf_free(h);
    if (err < 0)
        vkf_tensor_unref(out);
    return err;
}

static void print_mem(vkf_gpu *gpu, const char *what)
{
    vkf_gpu_mem_stats ms;
    vkf_gpu_mem_stats_get(gpu, &ms);
    printf("  %-22s device peak %7.1f MiB, host peak RSS %7.1f MiB\n", what,
           ms.peak / 1048576.0, peak_rss_mib());
}

static int usage(void)
{
    fprintf(stderr, "usage: vkflow bench sd15 [--size 256|512|N] [--steps N] [--dtype f16|f32]\n"
                    "                         [--ckpt FILE] [--keep FILE] [--device N]\n");
    return 2;
}

int vkf_cli_bench_sd15(int argc, char **argv)
{
    int size = 256, steps = 2;
    const char *ckpt = NULL, *keep = NULL, *dtype_s = "f16";
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--size") && i + 1 < argc)
            size = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--steps") && i + 1 < argc)
            steps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--ckpt") && i + 1 < argc)
            ckpt = argv[++i];
        else if (!strcmp(argv[i], "--keep") && i + 1 < argc)
            keep = argv[++i];
        else if (!strcmp(argv[i], "--dtype") && i + 1 < argc)
            dtype_s = argv[++i];
        else if (!strcmp(argv[i], "--device") && i + 1 < argc)
            i++;
        else
            return usage();
    }
    if (size < 64 || size % 64 || steps < 1)
        return usage();
    vkf_wdtype wdt;
    if (!strcmp(dtype_s, "f16"))
        wdt = VKF_WDT_F16;
    else if (!strcmp(dtype_s, "f32"))
        wdt = VKF_WDT_F32;
    else
        return usage();

    vkf_log log = vkf_log_stderr(VKF_LOG_WARN);
    vkf_errbuf eb = {{0}};
    char tmp[512] = "";
    int err = 0;
    vkf_gpu *gpu = NULL;
    vkf_weights *w = NULL;
    vkf_clip_text *clip = NULL;
    vkf_diffusion_model *dm = NULL;
    vkf_vae_model *vae = NULL;
    vkf_tensor *hidden = NULL, *x = NULL, *ctx = NULL, *out = NULL, *lat = NULL, *img = NULL;
    vkf_clip_tokens tok = {0};
    vkf_st_writer *sw = NULL;

    if (!ckpt) {
        /* A full-size SD1.5 layout with random weights. */
        if (keep)
            snprintf(tmp, sizeof(tmp), "%s", keep);
        else
            snprintf(tmp, sizeof(tmp), "%s/vkflow-bench-sd15-%ld.safetensors",
                     getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", (long)getpid());
        if (keep && access(keep, R_OK) == 0) {
            printf("checkpoint: %s (kept from an earlier run)\n", keep);
        } else {
            double t0 = now_ms();
            VKF_TRY(vkf_st_writer_create(1, &sw));
            VKF_TRY(vkf_synth_unet(sw, "model.diffusion_model.", VKF_SYNTH_SD15, VKF_SYNTH_FULL, wdt));
            VKF_TRY(vkf_synth_clip_text(sw, "cond_stage_model.transformer.", VKF_SYNTH_SD15,
                                        VKF_SYNTH_FULL, wdt));
            VKF_TRY(vkf_synth_vae(sw, "first_stage_model.", VKF_SYNTH_FULL, wdt));
            VKF_TRY(vkf_st_writer_save(sw, tmp, &eb));
            vkf_st_writer_destroy(&sw);
            printf("checkpoint: synthesized full-size SD1.5 (%s) in %.1f s\n", dtype_s,
                   (now_ms() - t0) / 1e3);
        }
        ckpt = tmp;
    }
    VKF_TRY(vkf_weights_open(ckpt, &w, &log));

    vkf_gpu_params params = {.log = &log};
    char pcache[1100] = "", spvdir[1100] = "";
    if (vkf_cli_gpu_params(argc, argv, &params, pcache, sizeof(pcache), spvdir,
                           sizeof(spvdir)) < 0) {
        err = VKF_EINVAL;
        goto fail;
    }
    VKF_TRY(vkf_gpu_create(&params, &gpu));
    printf("device: %s (%s)\n", vkf_gpu_info(gpu)->name, vkf_gpu_info(gpu)->driver_info);
    printf("image %dx%d, latent %dx%d, %d steps timed\n", size, size, size / 8, size / 8, steps);

    double t0 = now_ms();
    VKF_TRY(vkf_clip_text_load(gpu, w, "cond_stage_model.transformer.", &clip, &eb));
    VKF_TRY(vkf_unet_load(gpu, w, "model.diffusion_model.", &dm, &eb));
    VKF_TRY(vkf_vae_kl_load(gpu, w, "first_stage_model.", &vae, &eb));
    VKF_TRY(vkf_gpu_flush(gpu));
    printf("  load                   %9.1f ms\n", now_ms() - t0);
    print_mem(gpu, "after load:");

    /* Text encoding: two prompts of one chunk each (positive, negative). */
    const vkf_clip_text_config *cc = vkf_clip_text_get_config(clip);
    tok.n_chunks = 2;
    VKF_CHECK_ALLOC(tok.tok = vkf_calloc(2 * VKF_CLIP_CTX, sizeof(*tok.tok)));
    for (int c = 0; c < 2; c++)
        for (int i = 0; i < VKF_CLIP_CTX; i++) {
            vkf_clip_token *t = &tok.tok[c * VKF_CLIP_CTX + i];
            t->id = i == 0 ? VKF_CLIP_BOS : i < 20 ? 320 + i + c : VKF_CLIP_EOS;
            t->weight = 1.0f;
        }
    t0 = now_ms();
    VKF_TRY(vkf_clip_text_encode(clip, &tok, 0, &hidden, NULL));
    VKF_TRY(vkf_gpu_flush(gpu));
    printf("  text encode (2×77)     %9.1f ms\n", now_ms() - t0);

    /* Sampling steps: one batch-2 UNet forward each. */
    int64_t xs[4] = {2, dm->in_channels, size / 8, size / 8};
    int64_t cs[3] = {2, VKF_CLIP_CTX, cc->width};
    VKF_TRY(make_tensor(gpu, 4, xs, 2.0f, 7, &x));
    VKF_TRY(make_tensor(gpu, 3, cs, 2.0f, 9, &ctx));
    float ts[2] = {999.0f, 999.0f};
    vkf_dm_input in = {.x = x, .timesteps = ts, .context = ctx};
    vkf_gpu_mem_reset_peak(gpu);
    double first = 0, total = 0;
    for (int s = 0; s <= steps; s++) {
        t0 = now_ms();
        VKF_TRY(dm->forward(dm, &in, &out));
        VKF_TRY(vkf_gpu_flush(gpu));
        double ms = now_ms() - t0;
        vkf_tensor_unref(&out);
        if (s == 0)
            first = ms;
        else
            total += ms;
        ts[0] = ts[1] = 999.0f - 50.0f * (float)(s + 1);
    }
    printf("  sampling step (B=2)    %9.1f ms   (first, with pipeline creation: %.1f ms)\n",
           total / steps, first);
    print_mem(gpu, "UNet:");

    /* VAE decode of one latent. */
    int64_t ls[4] = {1, 4, size / 8, size / 8};
    VKF_TRY(make_tensor(gpu, 4, ls, 8.0f, 11, &lat));
    vkf_gpu_mem_reset_peak(gpu);
    for (int rep = 0; rep < 2; rep++) {
        t0 = now_ms();
        VKF_TRY(vae->decode(vae, lat, &img));
        VKF_TRY(vkf_gpu_flush(gpu));
        double ms = now_ms() - t0;
        vkf_tensor_unref(&img);
        printf("  VAE decode %-11s %9.1f ms\n", rep ? "" : "(first)", ms);
    }
    print_mem(gpu, "VAE:");

fail:
    if (err < 0)
        fprintf(stderr, "vkflow: bench sd15 failed: %s%s%s\n", vkf_strerror(err),
                eb.msg[0] ? ": " : "", eb.msg);
    vkf_st_writer_destroy(&sw);
    vkf_free(tok.tok);
    vkf_tensor_unref(&hidden);
    vkf_tensor_unref(&x);
    vkf_tensor_unref(&ctx);
    vkf_tensor_unref(&out);
    vkf_tensor_unref(&lat);
    vkf_tensor_unref(&img);
    vkf_clip_text_destroy(&clip);
    vkf_diffusion_model_unref(&dm);
    vkf_vae_model_unref(&vae);
    vkf_weights_close(&w);
    vkf_gpu_destroy(&gpu);
    if (tmp[0] && !keep)
        unlink(tmp);
    return err < 0 ? 1 : 0;
}
