/*
 * SD1.x / SD2.x UNet internals shared by unet.c, unet_synth.c and
 * tests/models/test_unet.c: the key layout (CompVis names, optionally
 * mapped to diffusers names), detection, the synthesized configurations.
 */
#ifndef VKF_MODELS_UNET_INTERNAL_H
#define VKF_MODELS_UNET_INTERNAL_H

#include "vkflow/models.h"

/* Where the UNet's tensors are and how they are named. */
typedef struct vkf_unet_layout {
    char prefix[128];         /* prepended to every (mapped) key */
    bool diffusers;           /* UNet2DConditionModel names */
    int nrb;                  /* res blocks per level (diffusers mapping) */
} vkf_unet_layout;

/*
 * The file name of a CompVis key ("input_blocks.4.0.skip_connection.weight",
 * no prefix) under layout l: prefix + the key, or prefix + its diffusers
 * name ("down_blocks.1.resnets.0.conv_shortcut.weight").  Returns false if
 * the key has no diffusers counterpart or does not fit in cap.
 */
bool vkf_unet_key(const vkf_unet_layout *l, const char *key, char *out, size_t cap);

/* Family decided from the shapes (and, for non-standard sizes, the text
 * tower / projection kind), layout found under prefix (diffusers names are
 * also tried under prefix and "unet."). */
typedef struct vkf_unet_detected {
    vkf_unet_config cfg;
    vkf_unet_layout layout;
    char arch[32];            /* "SD1.x", "SD2.x", "SDXL", "SDXL Refiner" */
    bool sd2;
    bool xl;                  /* label_emb (SDXL class) */
} vkf_unet_detected;

int vkf_unet_detect(const vkf_weights *w, const char *prefix, vkf_unet_detected *out,
                    vkf_errbuf *e);

/* ComfyUI's SD20.model_type: with 4 input channels, population std of
 * output_blocks.11.1.transformer_blocks.0.norm1.bias > 0.09 → v.  EPS for
 * SD1.x and inpaint models. */
#define VKF_UNET_VPRED_STD 0.09
int vkf_unet_detect_prediction(vkf_weights *w, const vkf_unet_detected *d,
                               vkf_prediction *out, vkf_errbuf *e);

/* The configuration vkf_synth_unet writes for (arch, scale). */
void vkf_unet_synth_config(vkf_synth_arch arch, vkf_synth_scale scale, vkf_unet_config *cfg);

#endif
