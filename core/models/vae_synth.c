/* vkf_synth_vae: a KL-f8 VAE with random weights and the exact CompVis key
 * names (full: ch 128, mult 1,2,4,4, z 4; tiny: ch 32, same keys).  Conv
 * weights are uniform with std 1/sqrt(fan_in) so activations stay O(1);
 * GroupNorm scales are 1 ± 0.1. */
#include <math.h>
#include <stdio.h>

#include "models/vae_internal.h"

typedef struct synth {
    vkf_st_writer *w;
    const char *prefix;
    vkf_wdtype dt;
    bool linear_attn;
} synth;

static int add(synth *s, const char *name, int nd, const int64_t *shape, float mean, float std)
{
    char full[300];
    snprintf(full, sizeof(full), "%s%s", s->prefix, name);
    return vkf_st_writer_add_random(s->w, full, s->dt, nd, shape, mean, std);
}

static int sconv(synth *s, const char *name, int cout, int cin, int k)
{
    char n[200];
    int err = 0;
    int64_t ws[4] = {cout, cin, k, k}, bs[1] = {cout};
    float std = 1.0f / sqrtf((float)(cin * k * k));
    snprintf(n, sizeof(n), "%s.weight", name);
    VKF_TRY(add(s, n, 4, ws, 0.0f, std));
    snprintf(n, sizeof(n), "%s.bias", name);
    VKF_TRY(add(s, n, 1, bs, 0.0f, 0.05f));
fail:
    return err;
}

static int snorm(synth *s, const char *name, int c)
{
    char n[200];
    int err = 0;
    int64_t sh[1] = {c};
    snprintf(n, sizeof(n), "%s.weight", name);
    VKF_TRY(add(s, n, 1, sh, 1.0f, 0.1f));
    snprintf(n, sizeof(n), "%s.bias", name);
    VKF_TRY(add(s, n, 1, sh, 0.0f, 0.1f));
fail:
    return err;
}

static int sres(synth *s, const char *name, int cin, int cout)
{
    char n[200];
    int err = 0;
    snprintf(n, sizeof(n), "%s.norm1", name);
    VKF_TRY(snorm(s, n, cin));
    snprintf(n, sizeof(n), "%s.conv1", name);
    VKF_TRY(sconv(s, n, cout, cin, 3));
    snprintf(n, sizeof(n), "%s.norm2", name);
    VKF_TRY(snorm(s, n, cout));
    snprintf(n, sizeof(n), "%s.conv2", name);
    VKF_TRY(sconv(s, n, cout, cout, 3));
    if (cin != cout) {
        snprintf(n, sizeof(n), "%s.nin_shortcut", name);
        VKF_TRY(sconv(s, n, cout, cin, 1));
    }
fail:
    return err;
}

static int sattn(synth *s, const char *name, int c)
{
    char n[200];
    int err = 0;
    const char *parts[4] = {"q", "k", "v", "proj_out"};
    snprintf(n, sizeof(n), "%s.norm", name);
    VKF_TRY(snorm(s, n, c));
    for (int i = 0; i < 4; i++) {
        snprintf(n, sizeof(n), "%s.%s", name, parts[i]);
        if (s->linear_attn) {
            int64_t ws[2] = {c, c}, bs[1] = {c};
            char k[220];
            snprintf(k, sizeof(k), "%s.weight", n);
            VKF_TRY(add(s, k, 2, ws, 0.0f, 1.0f / sqrtf((float)c)));
            snprintf(k, sizeof(k), "%s.bias", n);
            VKF_TRY(add(s, k, 1, bs, 0.0f, 0.05f));
        } else {
            VKF_TRY(sconv(s, n, c, c, 1));
        }
    }
fail:
    return err;
}

int vkf_synth_vae_ex(vkf_st_writer *w, const char *prefix, vkf_synth_scale scale,
                     vkf_wdtype dtype, bool linear_attn)
{
    if (!w || (dtype != VKF_WDT_F32 && dtype != VKF_WDT_F16 && dtype != VKF_WDT_BF16))
        return VKF_EINVAL;
    synth s = {.w = w, .prefix = prefix ? prefix : "", .dt = dtype, .linear_attn = linear_attn};
    const int ch = scale == VKF_SYNTH_TINY ? 32 : 128, z = 4, nlev = 4;
    const int mult[4] = {1, 2, 4, 4};
    const int top = ch * mult[nlev - 1];
    char n[200];
    int err = 0;
    /* encoder */
    VKF_TRY(sconv(&s, "encoder.conv_in", ch, 3, 3));
    int cin = ch;
    for (int i = 0; i < nlev; i++) {
        int co = ch * mult[i];
        for (int j = 0; j < 2; j++) {
            snprintf(n, sizeof(n), "encoder.down.%d.block.%d", i, j);
            VKF_TRY(sres(&s, n, j ? co : cin, co));
        }
        if (i != nlev - 1) {
            snprintf(n, sizeof(n), "encoder.down.%d.downsample.conv", i);
            VKF_TRY(sconv(&s, n, co, co, 3));
        }
        cin = co;
    }
    VKF_TRY(sres(&s, "encoder.mid.block_1", top, top));
    VKF_TRY(sattn(&s, "encoder.mid.attn_1", top));
    VKF_TRY(sres(&s, "encoder.mid.block_2", top, top));
    VKF_TRY(snorm(&s, "encoder.norm_out", top));
    VKF_TRY(sconv(&s, "encoder.conv_out", 2 * z, top, 3));
    VKF_TRY(sconv(&s, "quant_conv", 2 * z, 2 * z, 1));
    /* decoder */
    VKF_TRY(sconv(&s, "post_quant_conv", z, z, 1));
    VKF_TRY(sconv(&s, "decoder.conv_in", top, z, 3));
    VKF_TRY(sres(&s, "decoder.mid.block_1", top, top));
    VKF_TRY(sattn(&s, "decoder.mid.attn_1", top));
    VKF_TRY(sres(&s, "decoder.mid.block_2", top, top));
    cin = top;
    for (int i = nlev - 1; i >= 0; i--) {
        int co = ch * mult[i];
        for (int j = 0; j < 3; j++) {
            snprintf(n, sizeof(n), "decoder.up.%d.block.%d", i, j);
            VKF_TRY(sres(&s, n, j ? co : cin, co));
        }
        if (i != 0) {
            snprintf(n, sizeof(n), "decoder.up.%d.upsample.conv", i);
            VKF_TRY(sconv(&s, n, co, co, 3));
        }
        cin = co;
    }
    VKF_TRY(snorm(&s, "decoder.norm_out", ch));
    VKF_TRY(sconv(&s, "decoder.conv_out", 3, ch, 3));
fail:
    return err;
}

int vkf_synth_vae(vkf_st_writer *w, const char *prefix, vkf_synth_scale scale, vkf_wdtype dtype)
{
    return vkf_synth_vae_ex(w, prefix, scale, dtype, false);
}
