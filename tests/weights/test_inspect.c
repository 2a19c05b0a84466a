/*
 * `vkflow inspect`: text and --json output on a generated file and on the
 * real TAESD decoder, usage errors and unreadable files.  inspect.c is
 * compiled into this test (it belongs to the CLI sources).
 */
#include <cjson/cJSON.h>

#include "cli/cli.h"
#include "wtest.h"

static char *g_dir;

/* Runs vkf_cli_inspect with stdout captured into *out (malloc'd). */
static int run_inspect(char **argv, int argc, char **out)
{
    char path[4096 + 64];
    snprintf(path, sizeof(path), "%s/stdout.txt", g_dir);
    fflush(stdout);
    int saved = dup(1);
    FILE *f = fopen(path, "wb");
    dup2(fileno(f), 1);
    int rc = vkf_cli_inspect(argc, argv);
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    fclose(f);
    f = fopen(path, "rb");
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    *out = calloc(1, (size_t)n + 1);
    if (n > 0 && fread(*out, 1, (size_t)n, f) != (size_t)n)
        (*out)[0] = 0;
    fclose(f);
    return rc;
}

static void test_generated(void)
{
    char path[4096 + 64];
    snprintf(path, sizeof(path), "%s/m.safetensors", g_dir);
    float v[6] = {0};
    uint16_t h[4] = {0};
    st_tensor t[] = {
        {"model.diffusion_model.a.weight", "F32", 2, {2, 3}, v, sizeof(v)},
        {"model.diffusion_model.b.weight", "F16", 1, {4}, h, sizeof(h)},
        {"vae.x", "F32", 0, {0}, v, 4},
    };
    st_write(path, t, 3, "{\"ss_network_dim\":\"8\",\"format\":\"pt\"}");
    char *out = NULL;
    char *argv[] = {"inspect", path, NULL};
    CHECK_EQ_INT(run_inspect(argv, 2, &out), 0);
    CHECK_HAS(out, "tensors:     3");
    CHECK_HAS(out, "parameters:  11");
    CHECK_HAS(out, "F32 2 F16 1");
    CHECK_HAS(out, "model.diffusion_model");
    CHECK_HAS(out, "metadata keys (2): format, ss_network_dim");
    CHECK_HAS(out, "components:  vae");
    free(out);

    char *jargv[] = {"inspect", "--json", path, NULL};
    CHECK_EQ_INT(run_inspect(jargv, 3, &out), 0);
    cJSON *j = cJSON_Parse(out);
    CHECK(j != NULL);
    CHECK_EQ_INT(cJSON_GetObjectItem(j, "tensors")->valuedouble, 3);
    CHECK_EQ_INT(cJSON_GetObjectItem(j, "parameters")->valuedouble, 11);
    CHECK_EQ_INT(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "dtypes"), "F16")->valuedouble, 1);
    cJSON *pre = cJSON_GetObjectItem(j, "key_prefixes");
    CHECK_EQ_INT(cJSON_GetObjectItem(pre, "model.diffusion_model")->valuedouble, 2);
    CHECK(cJSON_GetObjectItem(pre, "vae") && cJSON_GetObjectItem(pre, "vae")->valuedouble == 1);
    CHECK_STR(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "metadata"), "format")->valuestring, "pt");
    CHECK_STR(cJSON_GetObjectItem(j, "format")->valuestring, "safetensors");
    cJSON_Delete(j);
    free(out);
}

static void test_real(void)
{
    const char *root = getenv("VKF_SHARED_DATA");
    char path[4096];
    snprintf(path, sizeof(path), "%s/taesd/taesd_decoder.safetensors", root ? root : "");
    if (!root || access(path, R_OK) != 0)
        return;
    char *out = NULL;
    char *argv[] = {"inspect", "--json", path, NULL};
    CHECK_EQ_INT(run_inspect(argv, 3, &out), 0);
    cJSON *j = cJSON_Parse(out);
    CHECK(j != NULL);
    if (j) {
        CHECK_EQ_INT(cJSON_GetObjectItem(j, "tensors")->valuedouble, 67);
        CHECK_EQ_INT(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "dtypes"), "BF16")->valuedouble, 67);
        cJSON *det = cJSON_GetObjectItem(j, "detected");
        CHECK_STR(cJSON_GetObjectItem(det, "family")->valuestring, "TAESD");
        CHECK_HAS(cJSON_GetObjectItem(det, "variant")->valuestring, "decoder");
    }
    cJSON_Delete(j);
    free(out);
}

static void test_errors(void)
{
    char *out = NULL;
    char *none[] = {"inspect", NULL};
    CHECK_EQ_INT(run_inspect(none, 1, &out), 2);
    free(out);
    char *bad[] = {"inspect", "--frobnicate", "x", NULL};
    CHECK_EQ_INT(run_inspect(bad, 3, &out), 2);
    free(out);
    char path[4096 + 64];
    snprintf(path, sizeof(path), "%s/absent.safetensors", g_dir);
    char *missing[] = {"inspect", path, NULL};
    CHECK_EQ_INT(run_inspect(missing, 2, &out), 1);
    free(out);
}

int main(void)
{
    g_dir = test_mkdtemp("inspect");
    test_generated();
    test_real();
    test_errors();
    test_rmtree(g_dir);
    free(g_dir);
    return test_exit_code("inspect");
}
