/*
 * PyTorch zip checkpoints: the committed fixtures of tests/weights/data
 * (made by tests/reference/make_pickle_fixtures.py; torch_f32.pt is a real
 * torch.save), values, strides, the state_dict wrapper, deflate, hostile
 * pickles, and a fail-the-Nth-allocation loop.
 */
#include <math.h>

#include "wtest.h"

static test_log g_log;
static char g_data[4096];

static const char *fixture(const char *name)
{
    static char buf[4][4096 + 256];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof(buf[k]), "%s/%s", g_data, name);
    return buf[k];
}

static void check_values(vkf_weights *w, const char *name, const float *want, int n)
{
    const vkf_weight_info *t = vkf_weights_find(w, name);
    CHECK(t != NULL);
    if (!t)
        return;
    CHECK_EQ_INT(t->numel, n);
    if (t->numel != n || n > 16)
        return;
    float got[16];
    CHECK_EQ_INT(vkf_weights_to_f32(w, t, got), 0);
    for (int i = 0; i < n && i < 16; i++) {
        if (got[i] != want[i])
            fprintf(stderr, "%s[%d]: %g != %g\n", name, i, got[i], want[i]);
        CHECK(got[i] == want[i]);
    }
}

static vkf_weights *open_fixture(const char *name)
{
    vkf_weights *w = NULL;
    int err = vkf_weights_open(fixture(name), &w, &g_log.log);
    if (err)
        fprintf(stderr, "%s: %d %s\n", name, err, g_log.last);
    CHECK_EQ_INT(err, 0);
    return w;
}

static void test_valid(void)
{
    static const float weight[] = {0, 0.5f, 1, 1.5f, 2, 2.5f}, bias[] = {-1, 2, 3.5f};
    static const char *const f32_files[] = {"f32_state.pt", "f32_deflate.pt", "zip64.pt"};
    for (size_t i = 0; i < VKF_ARRAY_SIZE(f32_files); i++) {
        vkf_weights *w = open_fixture(f32_files[i]);
        if (!w)
            continue;
        CHECK_EQ_INT(vkf_weights_get_format(w), VKF_WEIGHTS_PICKLE);
        CHECK_EQ_INT(vkf_weights_count(w), 3);
        const vkf_weight_info *t = vkf_weights_find(w, "layer.weight");
        CHECK(t && t->dtype == VKF_WDT_F32 && t->ndim == 2 && t->shape[0] == 2 && t->shape[1] == 3);
        check_values(w, "layer.weight", weight, 6);
        check_values(w, "layer.bias", bias, 3);
        t = vkf_weights_find(w, "scalar");
        CHECK(t && t->ndim == 0 && t->numel == 1);
        check_values(w, "scalar", (const float[]){3.5f}, 1);
        vkf_weights_close(&w);
    }

    vkf_weights *w = open_fixture("f16_state.pt");
    if (w) {
        const vkf_weight_info *t = vkf_weights_find(w, "w");
        CHECK(t && t->dtype == VKF_WDT_F16 && t->shape[0] == 4 && t->shape[1] == 2);
        check_values(w, "w", (const float[]){0.5f, -2, 65504, 0x1.a38p-14f, 3, 0, -0.25f, 1.5f}, 8);
        check_values(w, "w_tail", (const float[]){3, 0, -0.25f, 1.5f}, 4);
        /* A view at an offset is still zero-copy. */
        const void *a, *b;
        size_t sa, sb;
        vkf_weights_data(w, vkf_weights_find(w, "w"), &a, &sa);
        vkf_weights_data(w, vkf_weights_find(w, "w_tail"), &b, &sb);
        CHECK((const uint8_t *)b == (const uint8_t *)a + 8);
        CHECK_EQ_INT(sb, 8);
        uint16_t h[8];
        CHECK_EQ_INT(vkf_weights_to_f16(w, vkf_weights_find(w, "w_tail"), h), 0);
        CHECK_EQ_INT(h[0], 0x4200);
        vkf_weights_close(&w);
    }

    w = open_fixture("noncontig.pt");
    if (w) {
        check_values(w, "t", (const float[]){1, 4, 2, 5, 3, 6}, 6);
        check_values(w, "col", (const float[]){2, 5}, 2);
        const void *d;
        size_t s;
        CHECK_EQ_INT(vkf_weights_data(w, vkf_weights_find(w, "t"), &d, &s), 0);
        CHECK_EQ_INT(s, 24);
        vkf_weights_close(&w);
    }

    w = open_fixture("wrapper.pt");
    if (w) {
        CHECK_EQ_INT(vkf_weights_count(w), 1);
        check_values(w, "model.x", (const float[]){1, 2}, 2);
        CHECK_STR(vkf_weights_metadata_get(w, "epoch"), "7");
        CHECK_STR(vkf_weights_metadata_get(w, "global_step"), "1234");
        CHECK_STR(vkf_weights_metadata_get(w, "name"), "tiny");
        vkf_weights_close(&w);
    }

    w = open_fixture("mixed.pt");
    if (w) {
        check_values(w, "i64", (const float[]){-3, 1099511627776.0f}, 2);
        check_values(w, "bf16", (const float[]){1, -2.5f}, 2);
        check_values(w, "i8", (const float[]){-128, 127}, 2);
        check_values(w, "bool", (const float[]){1, 0}, 2);
        check_values(w, "f64", (const float[]){0.125f}, 1);
        check_values(w, "i32", (const float[]){-7}, 1);
        CHECK_EQ_INT(vkf_weights_find(w, "i64")->dtype, VKF_WDT_I64);
        CHECK_EQ_INT(vkf_weights_find(w, "bool")->dtype, VKF_WDT_BOOL);
        vkf_weights_close(&w);
    }

    /* Written by torch.save itself (torch 1.13). */
    w = open_fixture("torch_f32.pt");
    if (w) {
        CHECK_EQ_INT(vkf_weights_count(w), 4);
        check_values(w, "layer.weight", weight, 6);
        check_values(w, "layer.bias", bias, 3);
        check_values(w, "half", (const float[]){1, -2, 0.5f, 65504}, 4);
        check_values(w, "t_view", (const float[]){0, 1.5f, 0.5f, 2, 1, 2.5f}, 6);
        const vkf_weight_info *t = vkf_weights_find(w, "t_view");
        CHECK(t && t->shape[0] == 3 && t->shape[1] == 2);
        vkf_detect_result det;
        vkf_weights_detect(w, &det);
        CHECK_STR(det.family, "unknown");
        vkf_weights_close(&w);
    }
}

/* torch.save of {"state_dict": Sequential(Conv2d, BatchNorm2d, Linear)
 * .state_dict(), "epoch": 3, "p": Parameter}: BUILD of `_metadata`. */
static void test_torch_module(void)
{
    vkf_weights *w = open_fixture("torch_module.ckpt");
    if (!w)
        return;
    CHECK_EQ_INT(vkf_weights_count(w), 9);
    const vkf_weight_info *t = vkf_weights_find(w, "0.weight");
    CHECK(t && t->ndim == 4 && t->shape[0] == 4 && t->shape[1] == 3 && t->shape[3] == 3);
    t = vkf_weights_find(w, "1.num_batches_tracked");
    CHECK(t && t->dtype == VKF_WDT_I64 && t->ndim == 0);
    check_values(w, "1.running_var", (const float[]){1, 1, 1, 1}, 4);
    check_values(w, "1.num_batches_tracked", (const float[]){0}, 1);
    t = vkf_weights_find(w, "2.weight");
    CHECK(t && t->shape[0] == 2 && t->shape[1] == 4);
    CHECK_STR(vkf_weights_metadata_get(w, "epoch"), "3");
    CHECK(vkf_weights_find(w, "p") == NULL);
    vkf_weights_close(&w);
}

static void test_hostile(void)
{
    static const struct { const char *file; int err; const char *msg; } cases[] = {
        {"evil_os_system.pt", VKF_EPARSE,
         "refusing to load os.system: not allowed in a weights file"},
        {"evil_posix_system.pt", VKF_EPARSE, "refusing to load posix.system"},
        {"evil_builtins_eval.pt", VKF_EPARSE, "refusing to load builtins.eval"},
        {"evil_stack_global.pt", VKF_EPARSE, "refusing to load os.system"},
        {"evil_nn_module.pt", VKF_EPARSE, "refusing to load torch.nn.modules.linear.Linear"},
        {"huge_memo.pt", VKF_EPARSE, "memo index 4294967295 exceeds the limit"},
        {"bad_memo_get.pt", VKF_EPARSE, "memo index 16 not defined"},
        {"deep_nesting.pt", VKF_EPARSE, "nested deeper than"},
        {"many_marks.pt", VKF_EPARSE, "nested MARKs"},
        {"truncated.pt", VKF_EPARSE, "truncated"},
        {"no_stop.pt", VKF_EPARSE, "truncated (no STOP)"},
        {"bad_opcode.pt", VKF_EPARSE, "opcode 0xff at byte 3 is not supported"},
        {"inst_opcode.pt", VKF_EPARSE, "opcode 0x69"},
        {"build_on_global.pt", VKF_EPARSE, "BUILD on a global"},
        {"reduce_storage_type.pt", VKF_EPARSE, "refusing to call torch.FloatStorage"},
        {"top_is_list.pt", VKF_EPARSE, "top-level object is a list"},
        {"stack_underflow.pt", VKF_EPARSE, "stack underflow"},
        {"storage_oob.pt", VKF_EPARSE, "reaches element 4 of storage '0' with 2 elements"},
        {"storage_missing.pt", VKF_EPARSE, "storage entry 'archive/data/0' missing"},
        {"legacy.pt", VKF_EUNSUPPORTED, "legacy (pre-1.6, non-zip) torch.save format"},
        {"truncated_zip.pt", VKF_EPARSE, "end of central directory not found"},
    };
    for (size_t i = 0; i < VKF_ARRAY_SIZE(cases); i++) {
        vkf_weights *w = NULL;
        g_log.last[0] = 0;
        int err = vkf_weights_open(fixture(cases[i].file), &w, &g_log.log);
        if (err != cases[i].err || !strstr(g_log.last, cases[i].msg))
            fprintf(stderr, "%s: err %d, '%s'\n", cases[i].file, err, g_log.last);
        CHECK_EQ_INT(err, cases[i].err);
        CHECK_HAS(g_log.last, cases[i].msg);
        CHECK_HAS(g_log.last, cases[i].file);
        CHECK(w == NULL);
    }
}

static void test_alloc_failures(void)
{
    static const char *const files[] = {"f32_deflate.pt", "wrapper.pt", "noncontig.pt",
                                        "torch_f32.pt", "torch_module.ckpt",
                                        "evil_os_system.pt"};
    for (size_t f = 0; f < VKF_ARRAY_SIZE(files); f++) {
        long start = vkf_alloc_live();
        int n;
        int final = 0;
        for (n = 0; n < 100000; n++) {
            vkf_alloc_fail_at(n);
            vkf_weights *w = NULL;
            int err = vkf_weights_open(fixture(files[f]), &w, NULL);
            for (int i = 0; err == 0 && i < vkf_weights_count(w); i++) {
                float *out = malloc((size_t)vkf_weights_at(w, i)->numel * sizeof(float) + 4);
                err = vkf_weights_to_f32(w, vkf_weights_at(w, i), out);
                free(out);
            }
            vkf_weights_close(&w);
            bool fired = vkf_alloc_failed();
            vkf_alloc_fail_at(-1);
            CHECK_EQ_INT(vkf_alloc_live(), start);
            if (!fired) {
                final = err;
                break;
            }
            CHECK(err == VKF_ENOMEM || err == VKF_EPARSE);
        }
        printf("%s: %d failing allocations survived, final %d\n", files[f], n, final);
        CHECK(n < 100000);
    }
}

int main(void)
{
    const char *src = getenv("VKF_SOURCE_ROOT");
    snprintf(g_data, sizeof(g_data), "%s/tests/weights/data", src ? src : ".");
    test_log_init(&g_log);
    test_valid();
    test_torch_module();
    test_hostile();
    test_alloc_failures();
    return test_exit_code("pickle");
}
