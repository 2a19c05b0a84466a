/*
 * `vkflow synth-model --arch A --scale full|tiny --seed N [--dtype D] -o FILE`:
 * writes a synthesized single-file checkpoint (UNet + text encoder + VAE
 * with the key names of a CompVis/A1111 checkpoint, random weights that are
 * a pure function of the seed) for tests, demos and benchmarks without
 * downloading a model.  Exit codes: 0 written, 1 error, 2 usage error.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "vkflow/models.h"

typedef struct synth_arch_info {
    const char *name;
    vkf_synth_arch arch;
    const char *clip_prefix;   /* SD1: CLIP-L (HF names); SD2: OpenCLIP-H */
    const char *title;
} synth_arch_info;

static const synth_arch_info arches[] = {
    {"sd15", VKF_SYNTH_SD15, "cond_stage_model.transformer.", "SD1.5 (eps)"},
    {"sd2", VKF_SYNTH_SD2, "cond_stage_model.model.", "SD2.x 512 (eps)"},
    {"sd2-v", VKF_SYNTH_SD2_V, "cond_stage_model.model.", "SD2.x 768-v (v-prediction)"},
    {"sd15-inpaint", VKF_SYNTH_SD15_INPAINT, "cond_stage_model.transformer.",
     "SD1.5 inpainting (9 input channels)"},
    {"sdxl", VKF_SYNTH_SDXL, "conditioner.embedders.", "SDXL base (CLIP-L + OpenCLIP bigG)"},
};

static void synth_usage(FILE *f)
{
    fputs("usage: vkflow synth-model --arch sd15|sd2|sd2-v|sd15-inpaint|sdxl --scale full|tiny\n"
          "                          --seed N [--dtype f32|f16|bf16] -o FILE\n"
          "  Writes a single-file checkpoint with random weights (a pure function of\n"
          "  the seed) and the key layout of a real one.  --scale full: the real\n"
          "  shapes (about 1 G parameters); tiny: the same keys, few channels.\n"
          "  Default dtype: f16 for full, f32 for tiny.\n",
          f);
}

int vkf_cli_synth(int argc, char **argv)
{
    enum { O_ARCH = 256, O_SCALE, O_SEED, O_DTYPE };
    static const struct option opts[] = {
        {"arch", required_argument, NULL, O_ARCH},
        {"scale", required_argument, NULL, O_SCALE},
        {"seed", required_argument, NULL, O_SEED},
        {"dtype", required_argument, NULL, O_DTYPE},
        {"output", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const synth_arch_info *arch = NULL;
    int scale = -1;
    bool have_seed = false, have_dtype = false;
    uint64_t seed = 0;
    vkf_wdtype dtype = VKF_WDT_F32;
    const char *out = NULL;
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "ho:", opts, NULL)) != -1) {
        switch (c) {
        case O_ARCH:
            arch = NULL;
            for (size_t i = 0; i < VKF_ARRAY_SIZE(arches); i++)
                if (!strcmp(optarg, arches[i].name))
                    arch = &arches[i];
            if (!arch) {
                fprintf(stderr, "vkflow synth-model: --arch: unknown '%s' (sd15, sd2, sd2-v, "
                                "sd15-inpaint)\n", optarg);
                return 2;
            }
            break;
        case O_SCALE:
            if (!strcmp(optarg, "full")) {
                scale = VKF_SYNTH_FULL;
            } else if (!strcmp(optarg, "tiny")) {
                scale = VKF_SYNTH_TINY;
            } else {
                fprintf(stderr, "vkflow synth-model: --scale: 'full' or 'tiny', got '%s'\n",
                        optarg);
                return 2;
            }
            break;
        case O_SEED: {
            char *end;
            if (!optarg[0] || optarg[0] == '-') {
                fprintf(stderr, "vkflow synth-model: --seed: not a non-negative integer: '%s'\n",
                        optarg);
                return 2;
            }
            unsigned long long v = strtoull(optarg, &end, 10);
            if (*end) {
                fprintf(stderr, "vkflow synth-model: --seed: not a non-negative integer: '%s'\n",
                        optarg);
                return 2;
            }
            seed = v;
            have_seed = true;
            break;
        }
        case O_DTYPE:
            if (!strcmp(optarg, "f32")) {
                dtype = VKF_WDT_F32;
            } else if (!strcmp(optarg, "f16")) {
                dtype = VKF_WDT_F16;
            } else if (!strcmp(optarg, "bf16")) {
                dtype = VKF_WDT_BF16;
            } else {
                fprintf(stderr, "vkflow synth-model: --dtype: f32, f16 or bf16, got '%s'\n",
                        optarg);
                return 2;
            }
            have_dtype = true;
            break;
        case 'o': out = optarg; break;
        case 'h': synth_usage(stdout); return 0;
        default:
            fprintf(stderr, "vkflow synth-model: unknown or incomplete option '%s'\n",
                    argv[optind - 1]);
            synth_usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "vkflow synth-model: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (!arch || scale < 0 || !have_seed || !out) {
        fprintf(stderr, "vkflow synth-model: missing %s\n",
                !arch ? "--arch" : scale < 0 ? "--scale" : !have_seed ? "--seed" : "-o FILE");
        synth_usage(stderr);
        return 2;
    }
    if (!have_dtype)
        dtype = scale == VKF_SYNTH_FULL ? VKF_WDT_F16 : VKF_WDT_F32;

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    vkf_st_writer *w = NULL;
    vkf_errbuf e = {{0}};
    const char *part = "the writer";
    char seed_s[32];
    snprintf(seed_s, sizeof(seed_s), "%llu", (unsigned long long)seed);
    int err = vkf_st_writer_create(seed, &w);
    if (!err) {
        part = "the UNet";
        err = vkf_synth_unet(w, "model.diffusion_model.", arch->arch,
                             (vkf_synth_scale)scale, dtype);
    }
    if (!err) {
        part = "the text encoder";
        err = vkf_synth_clip_text(w, arch->clip_prefix, arch->arch, (vkf_synth_scale)scale,
                                  dtype);
    }
    if (!err) {
        part = "the VAE";
        err = vkf_synth_vae(w, "first_stage_model.", (vkf_synth_scale)scale, dtype);
    }
    if (!err) {
        part = "the metadata";
        err = vkf_st_writer_add_metadata(w, "format", "pt");
        if (!err)
            err = vkf_st_writer_add_metadata(w, "vkflow.synth.arch", arch->name);
        if (!err)
            err = vkf_st_writer_add_metadata(w, "vkflow.synth.scale",
                                             scale == VKF_SYNTH_FULL ? "full" : "tiny");
        if (!err)
            err = vkf_st_writer_add_metadata(w, "vkflow.synth.seed", seed_s);
        if (!err)
            err = vkf_st_writer_add_metadata(w, "vkflow.synth.note",
                                             "synthesized random weights: not a trained model");
    }
    if (err < 0) {
        fprintf(stderr, "vkflow synth-model: could not synthesize %s: %s\n", part,
                vkf_strerror(err));
        vkf_st_writer_destroy(&w);
        return 1;
    }
    int n = vkf_st_writer_count(w);
    err = vkf_st_writer_save(w, out, &e);
    vkf_st_writer_destroy(&w);
    if (err < 0) {
        fprintf(stderr, "vkflow synth-model: %s\n", e.msg[0] ? e.msg : vkf_strerror(err));
        return 1;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
    printf("wrote %s: %s, %s scale, %s, seed %s, %d tensors (%.1f s)\n", out, arch->title,
           scale == VKF_SYNTH_FULL ? "full" : "tiny", vkf_wdtype_name(dtype), seed_s, n, secs);
    return 0;
}
