/*
 * vkf_synth_unet: an SD1.x / SD2.x UNet with random weights and the exact
 * CompVis key names and layout (4 levels, 2 ResBlocks each, attention at
 * levels 0-2, the same block indices as the real models).
 *
 *   full:  the real shapes (model_channels 320, mult 1,2,4,4; context 768
 *          for SD1.x, 1024 and Linear projections for SD2.x).
 *   tiny:  SD1.x model_channels 32, mult 1,2,4,4 (8.6 M parameters);
 *          SD2.x model_channels 64, mult 1,2,3,3 (its heads are 64 wide,
 *          so every attention width must be a multiple of 64); context 64
 *          (the tiny CLIP width) for both.
 *
 * SDXL (base): full = model_channels 320, mult 1,2,4, transformer depth
 * 0/2/10 (middle 10), context 2048, label_emb 2816 → 1280; tiny =
 * model_channels 64, mult 1,2,2, depth 0/1/2 (middle 2), context 128 (two
 * 64-wide tiny towers concatenated), adm 64 + 6·256 = 1600 (the tiny
 * bigG's pooled width plus the six Fourier size embeddings).
 *
 * Weights are uniform with std 1/sqrt(fan_in) (activations keep their
 * scale), biases std 0.02, norm weights 1 ± 0.1, norm biases std 0.05.
 * SD2 v-prediction is what ComfyUI infers from the population std of
 * output_blocks.11.1.transformer_blocks.0.norm1.bias (> 0.09): sd2_v gives
 * that tensor std 0.15, the other archs 0.05.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "models/unet_internal.h"

void vkf_unet_synth_config(vkf_synth_arch arch, vkf_synth_scale scale, vkf_unet_config *c)
{
    bool sd2 = arch == VKF_SYNTH_SD2 || arch == VKF_SYNTH_SD2_V;
    memset(c, 0, sizeof(*c));
    if (arch == VKF_SYNTH_SDXL) {
        bool full = scale == VKF_SYNTH_FULL;
        static const int d_full[3] = {0, 2, 10}, d_tiny[3] = {0, 1, 2};
        c->in_channels = c->out_channels = 4;
        c->num_res_blocks = 2;
        c->n_levels = 3;
        c->model_channels = full ? 320 : 64;
        c->channel_mult[0] = 1;
        c->channel_mult[1] = 2;
        c->channel_mult[2] = full ? 4 : 2;
        for (int i = 0; i < 3; i++) {
            c->level_depth[i] = full ? d_full[i] : d_tiny[i];
            c->attn_level[i] = c->level_depth[i] > 0;
        }
        c->middle_depth = full ? 10 : 2;
        c->transformer_depth = 0;   /* differs between levels */
        c->use_linear_proj = true;
        c->num_head_channels = 64;
        c->context_dim = full ? 2048 : 128;
        c->adm_in_channels = full ? 2816 : 64 + 6 * 256;
        return;
    }
    c->in_channels = arch == VKF_SYNTH_SD15_INPAINT ? 9 : 4;
    c->out_channels = 4;
    c->num_res_blocks = 2;
    c->n_levels = 4;
    c->transformer_depth = 1;
    c->use_linear_proj = sd2;
    for (int i = 0; i < 4; i++)
        c->attn_level[i] = i < 3;
    static const int mult[4] = {1, 2, 4, 4}, mult_sd2_tiny[4] = {1, 2, 3, 3};
    if (scale == VKF_SYNTH_FULL) {
        c->model_channels = 320;
        c->context_dim = sd2 ? 1024 : 768;
    } else {
        c->model_channels = sd2 ? 64 : 32;
        c->context_dim = 64;
    }
    memcpy(c->channel_mult, sd2 && scale != VKF_SYNTH_FULL ? mult_sd2_tiny : mult, sizeof(mult));
    c->num_heads = sd2 ? 0 : 8;
    c->num_head_channels = sd2 ? 64 : 0;
    for (int i = 0; i < 4; i++)
        c->level_depth[i] = c->attn_level[i] ? 1 : 0;
    c->middle_depth = 1;
}

typedef struct syn {
    vkf_st_writer *w;
    const char *prefix;
    vkf_wdtype dt;
    int err;
} syn;

static void add(syn *s, const char *name, int ndim, const int64_t *shape, float mean, float std)
{
    char full[512];
    if (s->err < 0)
        return;
    if (snprintf(full, sizeof(full), "%s%s", s->prefix, name) >= (int)sizeof(full)) {
        s->err = VKF_EINVAL;
        return;
    }
    int err = vkf_st_writer_add_random(s->w, full, s->dt, ndim, shape, mean, std);
    if (err < 0)
        s->err = err;
}

static void s_conv(syn *s, const char *base, int64_t co, int64_t ci, int64_t k)
{
    char n[256];
    snprintf(n, sizeof(n), "%s.weight", base);
    add(s, n, 4, (int64_t[]){co, ci, k, k}, 0, (float)(1.0 / sqrt((double)(ci * k * k))));
    snprintf(n, sizeof(n), "%s.bias", base);
    add(s, n, 1, (int64_t[]){co}, 0, 0.02f);
}

static void s_lin(syn *s, const char *base, int64_t nout, int64_t k, bool bias)
{
    char n[256];
    snprintf(n, sizeof(n), "%s.weight", base);
    add(s, n, 2, (int64_t[]){nout, k}, 0, (float)(1.0 / sqrt((double)k)));
    if (bias) {
        snprintf(n, sizeof(n), "%s.bias", base);
        add(s, n, 1, (int64_t[]){nout}, 0, 0.02f);
    }
}

static void s_norm(syn *s, const char *base, int64_t c, float bias_std)
{
    char n[256];
    snprintf(n, sizeof(n), "%s.weight", base);
    add(s, n, 1, (int64_t[]){c}, 1.0f, 0.1f);
    snprintf(n, sizeof(n), "%s.bias", base);
    add(s, n, 1, (int64_t[]){c}, 0, bias_std);
}

static void s_res(syn *s, const char *base, int64_t ci, int64_t co, int64_t temb)
{
    char n[256];
    snprintf(n, sizeof(n), "%s.in_layers.0", base);
    s_norm(s, n, ci, 0.05f);
    snprintf(n, sizeof(n), "%s.in_layers.2", base);
    s_conv(s, n, co, ci, 3);
    snprintf(n, sizeof(n), "%s.emb_layers.1", base);
    s_lin(s, n, co, temb, true);
    snprintf(n, sizeof(n), "%s.out_layers.0", base);
    s_norm(s, n, co, 0.05f);
    snprintf(n, sizeof(n), "%s.out_layers.3", base);
    s_conv(s, n, co, co, 3);
    if (ci != co) {
        snprintf(n, sizeof(n), "%s.skip_connection", base);
        s_conv(s, n, co, ci, 1);
    }
}

static void s_st(syn *s, const char *base, int64_t c, const vkf_unet_config *cfg, int depth,
                 float norm1_bias_std)
{
    char n[256], tb[200];
    snprintf(n, sizeof(n), "%s.norm", base);
    s_norm(s, n, c, 0.05f);
    const char *proj[2] = {"proj_in", "proj_out"};
    for (int i = 0; i < 2; i++) {
        snprintf(n, sizeof(n), "%s.%s", base, proj[i]);
        if (cfg->use_linear_proj)
            s_lin(s, n, c, c, true);
        else
            s_conv(s, n, c, c, 1);
    }
    for (int d = 0; d < depth; d++) {
        snprintf(tb, sizeof(tb), "%s.transformer_blocks.%d", base, d);
        for (int a = 1; a <= 2; a++) {
            int64_t kdim = a == 1 ? c : cfg->context_dim;
            snprintf(n, sizeof(n), "%s.attn%d.to_q", tb, a);
            s_lin(s, n, c, c, false);
            snprintf(n, sizeof(n), "%s.attn%d.to_k", tb, a);
            s_lin(s, n, c, kdim, false);
            snprintf(n, sizeof(n), "%s.attn%d.to_v", tb, a);
            s_lin(s, n, c, kdim, false);
            snprintf(n, sizeof(n), "%s.attn%d.to_out.0", tb, a);
            s_lin(s, n, c, c, true);
        }
        for (int i = 1; i <= 3; i++) {
            snprintf(n, sizeof(n), "%s.norm%d", tb, i);
            s_norm(s, n, c, i == 1 ? norm1_bias_std : 0.05f);
        }
        snprintf(n, sizeof(n), "%s.ff.net.0.proj", tb);
        s_lin(s, n, 8 * c, c, true);
        snprintf(n, sizeof(n), "%s.ff.net.2", tb);
        s_lin(s, n, c, 4 * c, true);
    }
}

int vkf_synth_unet(vkf_st_writer *w, const char *prefix, vkf_synth_arch arch,
                   vkf_synth_scale scale, vkf_wdtype dtype)
{
    if (!w || (arch != VKF_SYNTH_SD15 && arch != VKF_SYNTH_SD2 && arch != VKF_SYNTH_SD2_V &&
               arch != VKF_SYNTH_SD15_INPAINT && arch != VKF_SYNTH_SDXL) ||
        (scale != VKF_SYNTH_FULL && scale != VKF_SYNTH_TINY) ||
        (dtype != VKF_WDT_F32 && dtype != VKF_WDT_F16 && dtype != VKF_WDT_BF16))
        return VKF_EINVAL;
    vkf_unet_config c;
    vkf_unet_synth_config(arch, scale, &c);
    syn s = {w, prefix ? prefix : "", dtype, 0};
    int64_t mc = c.model_channels, temb = 4 * mc;
    int nrb = c.num_res_blocks, lv = c.n_levels;
    int last_out = lv * (nrb + 1) - 1;
    char b[128];

    s_lin(&s, "time_embed.0", temb, mc, true);
    s_lin(&s, "time_embed.2", temb, temb, true);
    if (c.adm_in_channels > 0) {
        s_lin(&s, "label_emb.0.0", temb, c.adm_in_channels, true);
        s_lin(&s, "label_emb.0.2", temb, temb, true);
    }
    s_conv(&s, "input_blocks.0.0", mc, c.in_channels, 3);
    int64_t chans[64], ch = mc;
    int nch = 0, bi = 1;
    chans[nch++] = mc;
    for (int l = 0; l < lv; l++) {
        int64_t co = mc * c.channel_mult[l];
        for (int j = 0; j < nrb; j++, bi++) {
            snprintf(b, sizeof(b), "input_blocks.%d.0", bi);
            s_res(&s, b, ch, co, temb);
            ch = co;
            if (c.attn_level[l]) {
                snprintf(b, sizeof(b), "input_blocks.%d.1", bi);
                s_st(&s, b, ch, &c, c.level_depth[l], 0.05f);
            }
            chans[nch++] = ch;
        }
        if (l != lv - 1) {
            snprintf(b, sizeof(b), "input_blocks.%d.0.op", bi++);
            s_conv(&s, b, ch, ch, 3);
            chans[nch++] = ch;
        }
    }
    s_res(&s, "middle_block.0", ch, ch, temb);
    s_st(&s, "middle_block.1", ch, &c, c.middle_depth, 0.05f);
    s_res(&s, "middle_block.2", ch, ch, temb);
    int oi = 0;
    for (int l = lv - 1; l >= 0; l--) {
        int64_t co = mc * c.channel_mult[l];
        for (int j = 0; j <= nrb; j++, oi++) {
            int64_t skip = chans[--nch];
            snprintf(b, sizeof(b), "output_blocks.%d.0", oi);
            s_res(&s, b, ch + skip, co, temb);
            ch = co;
            int sub = 1;
            if (c.attn_level[l]) {
                snprintf(b, sizeof(b), "output_blocks.%d.1", oi);
                s_st(&s, b, ch, &c, c.level_depth[l],
                     oi == last_out && arch == VKF_SYNTH_SD2_V ? 0.15f : 0.05f);
                sub = 2;
            }
            if (l > 0 && j == nrb) {
                snprintf(b, sizeof(b), "output_blocks.%d.%d.conv", oi, sub);
                s_conv(&s, b, ch, ch, 3);
            }
        }
    }
    s_norm(&s, "out.0", ch, 0.05f);
    s_conv(&s, "out.2", c.out_channels, ch, 3);
    return s.err;
}
