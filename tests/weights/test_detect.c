/*
 * Model family detection on synthetic key sets (sparse U8 files holding
 * the real key names and shapes of each layout) and on the real TAESD
 * files.
 */
#include "wtest.h"

static char *g_dir;
static test_log g_log;

/* spec: "name:d0,d1,..." entries, NULL-terminated. */
static void detect(const char *const *spec, vkf_detect_result *r)
{
    st_tensor t[128];
    char names[128][160];
    int n = 0;
    for (; spec[n]; n++) {
        const char *colon = strchr(spec[n], ':');
        size_t len = (size_t)(colon - spec[n]);
        memcpy(names[n], spec[n], len);
        names[n][len] = 0;
        t[n] = (st_tensor){names[n], "U8", 0, {0}, NULL, 0};
        for (const char *p = colon + 1; *p;) {
            char *end;
            t[n].shape[t[n].ndim++] = strtoll(p, &end, 10);
            p = *end == ',' ? end + 1 : end;
        }
    }
    char path[4096 + 64];
    snprintf(path, sizeof(path), "%s/detect.safetensors", g_dir);
    st_write(path, t, n, NULL);
    vkf_weights *w = NULL;
    memset(r, 0, sizeof(*r));
    CHECK_EQ_INT(vkf_weights_open(path, &w, &g_log.log), 0);
    if (!w)
        return;
    vkf_weights_detect(w, r);
    if (getenv("VKF_TEST_VERBOSE"))
        printf("  %s | %s | %s | %s\n", r->family, r->variant, r->prefix, r->components);
    vkf_weights_close(&w);
}

#define DETECT(fam, var, ...)                                                 \
    do {                                                                      \
        static const char *const spec_[] = {__VA_ARGS__, NULL};               \
        vkf_detect_result r_;                                                 \
        detect(spec_, &r_);                                                   \
        CHECK_STR(r_.family, fam);                                            \
        CHECK_HAS(r_.variant, var);                                           \
    } while (0)

#define UNET "model.diffusion_model."

static void test_unets(void)
{
    DETECT("SD1.x", "", UNET "input_blocks.0.0.weight:320,4,3,3",
           UNET "input_blocks.1.1.proj_in.weight:320,320,1,1",
           UNET "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight:320,768",
           UNET "out.2.weight:4,320,3,3", "first_stage_model.decoder.conv_in.weight:512,4,3,3",
           "cond_stage_model.transformer.text_model.final_layer_norm.weight:768");
    DETECT("SD1.x", "inpaint (9-ch input)", UNET "input_blocks.0.0.weight:320,9,3,3",
           UNET "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight:320,768");
    DETECT("SD2.x", "768-v or base", UNET "input_blocks.0.0.weight:320,4,3,3",
           UNET "input_blocks.1.1.proj_in.weight:320,320",
           UNET "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight:320,1024");
    DETECT("SDXL base", "", UNET "input_blocks.0.0.weight:320,4,3,3",
           UNET "label_emb.0.0.weight:1280,2816",
           UNET "input_blocks.4.1.transformer_blocks.0.attn2.to_k.weight:640,2048");
    DETECT("SDXL refiner", "", UNET "input_blocks.0.0.weight:384,4,3,3",
           UNET "label_emb.0.0.weight:1536,2560",
           UNET "input_blocks.4.1.transformer_blocks.0.attn2.to_k.weight:768,1280");
    /* Bare diffusion-model-only file. */
    DETECT("SD1.x", "", "input_blocks.0.0.weight:320,4,3,3",
           "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight:320,768");
    DETECT("SDXL base", "diffusers layout", "conv_in.weight:320,4,3,3",
           "time_embedding.linear_1.weight:1280,320", "add_embedding.linear_1.weight:1280,2816",
           "down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k.weight:640,2048");
    DETECT("ControlNet", "for SD1.x", "control_model.input_blocks.0.0.weight:320,4,3,3",
           "control_model.zero_convs.0.0.weight:320,320,1,1",
           "control_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight:320,768",
           "control_model.input_hint_block.0.weight:16,3,3,3");
    DETECT("ControlNet", "for SDXL base", "input_blocks.0.0.weight:320,4,3,3",
           "zero_convs.0.0.weight:320,320,1,1", "label_emb.0.0.weight:1280,2816");
    DETECT("ControlNet", "diffusers", "conv_in.weight:320,4,3,3",
           "time_embedding.linear_1.weight:1280,320",
           "controlnet_cond_embedding.conv_in.weight:16,3,3,3",
           "down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight:320,768");
}

static void test_dits(void)
{
    DETECT("SD3", "SD3 Medium, depth 24", UNET "x_embedder.proj.weight:1536,16,2,2",
           UNET "joint_blocks.0.context_block.attn.qkv.weight:4608,1536");
    DETECT("SD3", "SD3.5 Large, depth 38", "x_embedder.proj.weight:2432,16,2,2",
           "joint_blocks.0.context_block.attn.qkv.weight:7296,2432",
           "joint_blocks.0.x_block.attn.ln_q.weight:64");
    DETECT("Flux", "dev", UNET "img_in.weight:3072,64",
           UNET "double_blocks.0.img_attn.norm.key_norm.scale:128",
           UNET "guidance_in.in_layer.weight:3072,256", UNET "single_blocks.0.linear1.weight:2,2");
    DETECT("Flux", "schnell, Fill", "img_in.weight:3072,384",
           "double_blocks.0.img_attn.norm.key_norm.scale:128");
    DETECT("Wan 2.1", "1.3B t2v", "head.modulation:1,2,1536", "head.head.weight:64,1536",
           "patch_embedding.weight:1536,16,1,2,2", "blocks.0.ffn.0.weight:8960,1536",
           "blocks.1.ffn.0.weight:8960,1536");
    DETECT("Wan 2.1", "14B i2v", UNET "head.modulation:1,2,5120", UNET "head.head.weight:64,5120",
           UNET "patch_embedding.weight:5120,36,1,2,2", UNET "img_emb.proj.0.bias:1280",
           UNET "img_emb.proj.0.weight:1280");
    DETECT("Wan 2.1", "14B t2v", "head.modulation:1,2,5120", "head.head.weight:64,5120",
           "patch_embedding.weight:5120,16,1,2,2");
    DETECT("Wan 2.1", "VACE", "head.modulation:1,2,1536", "head.head.weight:64,1536",
           "patch_embedding.weight:1536,16,1,2,2", "vace_patch_embedding.weight:1536,96,1,2,2");
    DETECT("Wan 2.2", "i2v A14B", "head.modulation:1,2,5120", "head.head.weight:64,5120",
           "patch_embedding.weight:5120,36,1,2,2");
    DETECT("Wan 2.2", "5B TI2V", "head.modulation:1,2,3072", "head.head.weight:192,3072",
           "patch_embedding.weight:3072,48,1,2,2");
}

static void test_parts(void)
{
    DETECT("VAE", "KL-f8 (SD1.x/SD2.x/SDXL)", "decoder.conv_in.weight:512,4,3,3",
           "decoder.up.0.block.0.conv1.weight:128,128,3,3", "encoder.conv_in.weight:128,3,3,3");
    DETECT("VAE", "KL-f8 (SD3/Flux)", "decoder.conv_in.weight:512,16,3,3",
           "decoder.up.0.block.0.conv1.weight:128,128,3,3");
    DETECT("VAE", "diffusers layout", "decoder.conv_in.weight:512,4,3,3",
           "decoder.up_blocks.0.resnets.0.norm1.weight:512");
    DETECT("VAE", "Wan 2.1", "decoder.middle.0.residual.0.gamma:384,1,1,1",
           "decoder.conv1.weight:384,16,3,3,3");
    DETECT("VAE", "Wan 2.2", "decoder.middle.0.residual.0.gamma:1024,1,1,1",
           "decoder.upsamples.0.upsamples.0.residual.2.weight:1024,1024,3,3,3");
    DETECT("CLIP-L", "width 768", "text_model.embeddings.token_embedding.weight:49408,768",
           "text_model.encoder.layers.0.mlp.fc1.weight:3072,768",
           "text_model.encoder.layers.11.mlp.fc1.weight:3072,768");
    DETECT("OpenCLIP-H", "", "text_model.encoder.layers.22.mlp.fc1.weight:4096,1024",
           "text_model.encoder.layers.0.mlp.fc1.weight:4096,1024");
    DETECT("OpenCLIP-bigG", "", "text_model.encoder.layers.30.mlp.fc1.weight:5120,1280");
    DETECT("OpenCLIP-bigG", "32 layers", "conditioner.embedders.1.model.token_embedding.weight:49408,1280",
           "conditioner.embedders.1.model.transformer.resblocks.0.attn.in_proj_weight:3840,1280",
           "conditioner.embedders.1.model.transformer.resblocks.31.attn.in_proj_weight:3840,1280");
    DETECT("T5", "XXL", "shared.weight:32128,4096",
           "encoder.block.0.layer.0.SelfAttention.q.weight:4096,4096",
           "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight:32,64",
           "encoder.block.23.layer.1.DenseReluDense.wi_1.weight:10240,4096");
    DETECT("umT5", "XXL", "shared.weight:256384,4096",
           "encoder.block.0.layer.0.SelfAttention.q.weight:4096,4096",
           "encoder.block.1.layer.0.SelfAttention.relative_attention_bias.weight:32,64");
    DETECT("TAEHV", "", "decoder.22.bias:3", "encoder.0.weight:64,3,3,3");
    DETECT("ESRGAN RRDBNet", "23 RRDB blocks", "conv_first.weight:64,3,3,3",
           "RRDB_trunk.0.RDB1.conv1.weight:32,64,3,3", "RRDB_trunk.22.RDB1.conv1.weight:32,64,3,3",
           "RRDB_trunk.1.RDB1.conv1.weight:32,64,3,3", "RRDB_trunk.2.RDB1.conv1.weight:32,64,3,3",
           "RRDB_trunk.3.RDB1.conv1.weight:32,64,3,3", "RRDB_trunk.4.RDB1.conv1.weight:32,64,3,3",
           "RRDB_trunk.5.RDB1.conv1.weight:32,64,3,3", "RRDB_trunk.6.RDB1.conv1.weight:32,64,3,3",
           "RRDB_trunk.7.RDB1.conv1.weight:32,64,3,3", "RRDB_trunk.8.RDB1.conv1.weight:32,64,3,3",
           "RRDB_trunk.9.RDB1.conv1.weight:32,64,3,3", "RRDB_trunk.10.RDB1.conv1.weight:32,64,3,3",
           "RRDB_trunk.11.RDB1.conv1.weight:32,64,3,3", "RRDB_trunk.12.RDB1.conv1.weight:32,64,3,3",
           "RRDB_trunk.13.RDB1.conv1.weight:32,64,3,3", "RRDB_trunk.14.RDB1.conv1.weight:32,64,3,3",
           "RRDB_trunk.15.RDB1.conv1.weight:32,64,3,3", "RRDB_trunk.16.RDB1.conv1.weight:32,64,3,3",
           "RRDB_trunk.17.RDB1.conv1.weight:32,64,3,3", "RRDB_trunk.18.RDB1.conv1.weight:32,64,3,3",
           "RRDB_trunk.19.RDB1.conv1.weight:32,64,3,3", "RRDB_trunk.20.RDB1.conv1.weight:32,64,3,3",
           "RRDB_trunk.21.RDB1.conv1.weight:32,64,3,3", "conv_up2.weight:64,64,3,3");
    DETECT("ESRGAN RRDBNet", "x4", "params_ema.conv_first.weight:64,3,3,3",
           "params_ema.body.0.rdb1.conv1.weight:32,64,3,3", "params_ema.conv_up2.weight:64,64,3,3");
    DETECT("SRVGG", "x4", "body.0.weight:64,3,3,3", "body.1.weight:64", "body.2.weight:64,64,3,3",
           "body.3.weight:64", "body.4.weight:48,64,3,3");
}

static void test_lora(void)
{
    DETECT("LoRA", "kohya, SD1.x/SD2.x, rank 8",
           "lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight:8,320",
           "lora_unet_down_blocks_0_attentions_0_proj_in.lora_up.weight:320,8",
           "lora_unet_down_blocks_0_attentions_0_proj_in.alpha:");
    DETECT("LoRA", "kohya, SDXL", "lora_te2_text_model_encoder_layers_0_mlp_fc1.lora_down.weight:4,1280",
           "lora_te2_text_model_encoder_layers_0_mlp_fc1.lora_up.weight:5120,4");
    DETECT("LoRA", "PEFT/diffusers, Flux, rank 16",
           "transformer.single_transformer_blocks.0.attn.to_q.lora_A.weight:16,3072",
           "transformer.single_transformer_blocks.0.attn.to_q.lora_B.weight:3072,16");
    DETECT("LoRA", "LyCORIS LoHa", "lora_unet_mid_block_attentions_0_proj_out.hada_w1_a:1280,4",
           "lora_unet_mid_block_attentions_0_proj_out.hada_w1_b:4,1280");
    DETECT("LoRA", "LyCORIS LoKr", "lora_unet_mid_block_attentions_0_proj_out.lokr_w1:8,8");
    DETECT("LoRA", "Wan", "diffusion_model.blocks.0.cross_attn.k.lora_A.weight:32,5120",
           "diffusion_model.blocks.0.ffn.0.lora_A.weight:32,5120");
}

static void test_unknown_and_real(void)
{
    vkf_detect_result r;
    static const char *const spec[] = {"foo.bar.a:1", "foo.bar.b:1", "foo.baz.c:2", "x:1", NULL};
    detect(spec, &r);
    CHECK_STR(r.family, "unknown");
    CHECK_HAS(r.variant, "top prefixes: foo.bar (2)");
    /* Components of an all-in-one SD checkpoint. */
    static const char *const aio[] = {
        UNET "input_blocks.0.0.weight:320,4,3,3",
        UNET "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight:320,768",
        "first_stage_model.decoder.conv_in.weight:512,4,3,3",
        "cond_stage_model.transformer.text_model.final_layer_norm.weight:768", NULL};
    detect(aio, &r);
    CHECK_STR(r.family, "SD1.x");
    CHECK_STR(r.prefix, UNET);
    CHECK_HAS(r.components, "vae");
    CHECK_HAS(r.components, "clip_l");

    const char *root = getenv("VKF_SHARED_DATA");
    static const struct { const char *file, *variant; } real[] = {
        {"taesd_encoder.safetensors", "encoder, 4 latent channels"},
        {"taesdxl_decoder.safetensors", "decoder, 4 latent channels"},
        {"taesd3_decoder.safetensors", "decoder, 16 latent channels"},
        {"taef1_encoder.safetensors", "encoder, 16 latent channels"},
        {"taef2_decoder.safetensors", "decoder, 32 latent channels"},
        {"taesana_encoder.safetensors", "taesana"},
    };
    for (size_t i = 0; root && i < VKF_ARRAY_SIZE(real); i++) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/taesd/%s", root, real[i].file);
        if (access(path, R_OK) != 0)
            continue;
        vkf_weights *w = NULL;
        CHECK_EQ_INT(vkf_weights_open(path, &w, &g_log.log), 0);
        if (!w)
            continue;
        vkf_weights_detect(w, &r);
        CHECK_STR(r.family, "TAESD");
        CHECK_HAS(r.variant, real[i].variant);
        vkf_weights_close(&w);
    }
}

int main(void)
{
    test_log_init(&g_log);
    g_dir = test_mkdtemp("detect");
    test_unets();
    test_dits();
    test_parts();
    test_lora();
    test_unknown_and_real();
    test_rmtree(g_dir);
    free(g_dir);
    return test_exit_code("detect");
}
