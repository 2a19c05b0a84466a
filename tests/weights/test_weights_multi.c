/*
 * Multi-file models: sharded safetensors with an index JSON, folders of
 * shards, diffusers pipelines (model_index.json + component folders), and
 * their error cases.
 */
#include "wtest.h"

static char *g_dir;
static test_log g_log;

static const char *path_in(const char *rel)
{
    static char buf[8][4096 + 256];
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof(buf[k]), "%s/%s", g_dir, rel);
    return buf[k];
}

static void write_text(const char *rel, const char *text)
{
    test_write_file(path_in(rel), text, strlen(text));
}

static void make_shards(const char *dir)
{
    char rel[512];
    float a[2] = {1, 2}, b[3] = {3, 4, 5}, c[1] = {6};
    st_tensor s1[] = {{"layers.0.w", "F32", 1, {2}, a, 8}, {"layers.0.b", "F32", 1, {1}, c, 4}};
    st_tensor s2[] = {{"layers.1.w", "F32", 1, {3}, b, 12}};
    snprintf(rel, sizeof(rel), "%s", dir);
    mkdir(path_in(rel), 0755);
    snprintf(rel, sizeof(rel), "%s/model-00001-of-00002.safetensors", dir);
    st_write(path_in(rel), s1, 2, "{\"part\":\"1\"}");
    snprintf(rel, sizeof(rel), "%s/model-00002-of-00002.safetensors", dir);
    st_write(path_in(rel), s2, 1, NULL);
    snprintf(rel, sizeof(rel), "%s/model.safetensors.index.json", dir);
    write_text(rel, "{\"metadata\":{\"total_size\":24},\"weight_map\":{"
                    "\"layers.0.w\":\"model-00001-of-00002.safetensors\","
                    "\"layers.0.b\":\"model-00001-of-00002.safetensors\","
                    "\"layers.1.w\":\"model-00002-of-00002.safetensors\"}}");
}

static void test_sharded(void)
{
    make_shards("sharded");
    const char *paths[] = {path_in("sharded"), path_in("sharded/model.safetensors.index.json")};
    for (int p = 0; p < 2; p++) {
        vkf_weights *w = NULL;
        CHECK_EQ_INT(vkf_weights_open(paths[p], &w, &g_log.log), 0);
        if (!w)
            continue;
        CHECK_EQ_INT(vkf_weights_get_format(w), VKF_WEIGHTS_SHARDED);
        CHECK_EQ_INT(vkf_weights_count(w), 3);
        CHECK_EQ_INT(vkf_weights_file_count(w), 2);
        const vkf_weight_info *t = vkf_weights_find(w, "layers.1.w");
        CHECK(t != NULL);
        float v[3];
        if (t) {
            CHECK_EQ_INT(vkf_weights_to_f32(w, t, v), 0);
            CHECK(v[0] == 3 && v[2] == 5);
            CHECK_HAS(vkf_weights_file_path(w, t->file), "model-00002-of-00002.safetensors");
        }
        int f = vkf_weights_file_for_prefix(w, "layers.0.");
        CHECK_HAS(vkf_weights_file_path(w, f), "model-00001-of-00002.safetensors");
        CHECK_HAS(vkf_weights_file_path(w, vkf_weights_file_for_prefix(w, "layers.1")),
                  "00002-of");
        CHECK_EQ_INT(vkf_weights_file_for_prefix(w, "nope"), -1);
        CHECK_STR(vkf_weights_metadata_get(w, "total_size"), "24");
        CHECK_STR(vkf_weights_metadata_get(w, "part"), "1");
        vkf_weights_close(&w);
    }

    /* A folder of shards without an index. */
    make_shards("noindex");
    remove(path_in("noindex/model.safetensors.index.json"));
    vkf_weights *w = NULL;
    CHECK_EQ_INT(vkf_weights_open(path_in("noindex"), &w, &g_log.log), 0);
    if (w) {
        CHECK_EQ_INT(vkf_weights_count(w), 3);
        vkf_weights_close(&w);
    }

    /* Index errors. */
    make_shards("bad");
    write_text("bad/model.safetensors.index.json",
               "{\"weight_map\":{\"layers.1.w\":\"model-00001-of-00002.safetensors\"}}");
    CHECK_EQ_INT(vkf_weights_open(path_in("bad"), &w, &g_log.log), VKF_EPARSE);
    CHECK_HAS(g_log.last, "weight_map puts 'layers.1.w' in model-00001-of-00002.safetensors");
    write_text("bad/model.safetensors.index.json",
               "{\"weight_map\":{\"x\":\"../../etc/passwd\"}}");
    CHECK_EQ_INT(vkf_weights_open(path_in("bad"), &w, &g_log.log), VKF_EPARSE);
    CHECK_HAS(g_log.last, "bad shard file name");
    write_text("bad/model.safetensors.index.json",
               "{\"weight_map\":{\"x\":\"model-00003-of-00002.safetensors\"}}");
    CHECK_EQ_INT(vkf_weights_open(path_in("bad"), &w, &g_log.log), VKF_ENOTFOUND);
    CHECK_HAS(g_log.last, "model-00003-of-00002.safetensors: cannot open");
    write_text("bad/model.safetensors.index.json", "{\"weight_map\":[]}");
    CHECK_EQ_INT(vkf_weights_open(path_in("bad"), &w, &g_log.log), VKF_EPARSE);
    CHECK_HAS(g_log.last, "no \"weight_map\" object");
    write_text("bad/model.safetensors.index.json", "{\"weight_map\":");
    CHECK_EQ_INT(vkf_weights_open(path_in("bad"), &w, &g_log.log), VKF_EPARSE);
    CHECK_HAS(g_log.last, "malformed JSON");

    /* The same name in two shards. */
    mkdir(path_in("dup"), 0755);
    float a[1] = {1};
    st_tensor t = {"x", "F32", 1, {1}, a, 4};
    st_write(path_in("dup/a.safetensors"), &t, 1, NULL);
    st_write(path_in("dup/b.safetensors"), &t, 1, NULL);
    CHECK_EQ_INT(vkf_weights_open(path_in("dup"), &w, &g_log.log), VKF_EPARSE);
    CHECK_HAS(g_log.last, "tensor 'x' is also in");

    mkdir(path_in("empty"), 0755);
    CHECK_EQ_INT(vkf_weights_open(path_in("empty"), &w, &g_log.log), VKF_ENOTFOUND);
    CHECK_HAS(g_log.last, "folder holds no weight files");
}

static void test_diffusers(void)
{
    mkdir(path_in("pipe"), 0755);
    mkdir(path_in("pipe/unet"), 0755);
    mkdir(path_in("pipe/vae"), 0755);
    mkdir(path_in("pipe/scheduler"), 0755);
    mkdir(path_in("pipe/text_encoder"), 0755);
    write_text("pipe/model_index.json",
               "{\"_class_name\":\"StableDiffusionPipeline\",\"_diffusers_version\":\"0.21\","
               "\"unet\":[\"diffusers\",\"UNet2DConditionModel\"],"
               "\"vae\":[\"diffusers\",\"AutoencoderKL\"],"
               "\"scheduler\":[\"diffusers\",\"PNDMScheduler\"],"
               "\"text_encoder\":[\"transformers\",\"CLIPTextModel\"],"
               "\"safety_checker\":[null,null]}");
    write_text("pipe/scheduler/scheduler_config.json", "{\"prediction_type\":\"epsilon\"}");
    float one[1] = {1}, two[2] = {2, 3};
    uint16_t h[1] = {0x3c00};
    st_tensor u[] = {{"conv_in.weight", "F32", 1, {1}, one, 4}};
    st_tensor u16[] = {{"conv_in.weight", "F16", 1, {1}, h, 2}};
    st_tensor v[] = {{"decoder.conv_in.weight", "F32", 1, {2}, two, 8}};
    st_write(path_in("pipe/unet/diffusion_pytorch_model.safetensors"), u, 1, NULL);
    /* The fp16 variant must not be picked up next to the main file. */
    st_write(path_in("pipe/unet/diffusion_pytorch_model.fp16.safetensors"), u16, 1, NULL);
    st_write(path_in("pipe/vae/diffusion_pytorch_model.safetensors"), v, 1, NULL);
    make_shards("pipe/text_encoder");
    vkf_weights *w = NULL;
    CHECK_EQ_INT(vkf_weights_open(path_in("pipe"), &w, &g_log.log), 0);
    if (!w)
        return;
    CHECK_EQ_INT(vkf_weights_get_format(w), VKF_WEIGHTS_DIFFUSERS);
    CHECK_EQ_INT(vkf_weights_count(w), 5);
    CHECK_EQ_INT(vkf_weights_file_count(w), 4);
    const vkf_weight_info *t = vkf_weights_find(w, "unet.conv_in.weight");
    CHECK(t && t->dtype == VKF_WDT_F32);
    CHECK(vkf_weights_find(w, "vae.decoder.conv_in.weight") != NULL);
    CHECK(vkf_weights_find(w, "text_encoder.layers.1.w") != NULL);
    CHECK_HAS(vkf_weights_file_path(w, vkf_weights_file_for_prefix(w, "vae.")),
              "vae/diffusion_pytorch_model.safetensors");
    CHECK_HAS(vkf_weights_file_path(w, vkf_weights_file_for_prefix(w, "text_encoder.layers.1")),
              "text_encoder/model-00002-of-00002.safetensors");
    vkf_weights_close(&w);

    /* Only the fp16 variant present: used. */
    remove(path_in("pipe/unet/diffusion_pytorch_model.safetensors"));
    CHECK_EQ_INT(vkf_weights_open(path_in("pipe/unet"), &w, &g_log.log), 0);
    if (w) {
        CHECK_EQ_INT(vkf_weights_find(w, "conv_in.weight")->dtype, VKF_WDT_F16);
        vkf_weights_close(&w);
    }

    /* Allocation failures over the whole folder. */
    long start = vkf_alloc_live();
    int n;
    for (n = 0; n < 100000; n++) {
        vkf_alloc_fail_at(n);
        int err = vkf_weights_open(path_in("pipe"), &w, NULL);
        vkf_weights_close(&w);
        bool fired = vkf_alloc_failed();
        vkf_alloc_fail_at(-1);
        CHECK_EQ_INT(vkf_alloc_live(), start);
        if (!fired) {
            CHECK_EQ_INT(err, 0);
            break;
        }
        CHECK(err == VKF_ENOMEM || err == VKF_EIO);
    }
    printf("diffusers folder: %d failing allocations survived\n", n);

    write_text("pipe/model_index.json", "{\"unet\":");
    CHECK_EQ_INT(vkf_weights_open(path_in("pipe"), &w, &g_log.log), VKF_EPARSE);
    CHECK_HAS(g_log.last, "model_index.json: malformed JSON");
}

int main(void)
{
    test_log_init(&g_log);
    g_dir = test_mkdtemp("wmulti");
    test_sharded();
    test_diffusers();
    test_rmtree(g_dir);
    free(g_dir);
    return test_exit_code("weights_multi");
}
