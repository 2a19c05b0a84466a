/* The routes under allocation failure: POST /prompt (valid and invalid),
 * /queue, /history, GET views and /object_info with the n-th allocation
 * failing, for every n until the request gets through.  Nothing may leak
 * or crash, and a failed allocation must show as a 500 or a clean reply. */
#include <stdlib.h>

#include "../test.h"
#include "server/internal.h"

static const char *const prompts[] = {
    "{\"prompt\":{\"1\":{\"class_type\":\"PrimitiveString\",\"inputs\":{\"value\":\"x\"}},"
    "\"2\":{\"class_type\":\"PreviewAny\",\"inputs\":{\"source\":[\"1\",0]}}},"
    "\"client_id\":\"c\",\"extra_data\":{\"api_key_comfy_org\":\"k\"},\"front\":true}",
    "{\"prompt\":{\"1\":{\"class_type\":\"PrimitiveInt\",\"inputs\":{\"value\":\"x\"}},"
    "\"2\":{\"class_type\":\"PreviewAny\",\"inputs\":{\"source\":[\"1\",0]}}}}",
};

static void run(vkf_app *app, const char *method, const char *path, const char *body)
{
    /* Once without failures: arrays that keep their capacity (the queue)
     * are then part of the baseline. */
    vkf_http_request warm = {.method = method, .path = path, .body = body,
                             .body_len = body ? strlen(body) : 0};
    vkf_http_response wresp;
    CHECK(vkf_app_handle(app, &warm, &wresp) == 0);
    vkf_http_response_clear(&wresp);
    vkf_queue_clear(app);
    long base = vkf_alloc_live();
    bool through = false;
    for (long n = 0; n < 100000 && !through; n++) {
        vkf_http_request req = {.method = method, .path = path, .body = body,
                                .body_len = body ? strlen(body) : 0};
        vkf_http_response resp;
        vkf_alloc_fail_at(n);
        int err = vkf_app_handle(app, &req, &resp);
        bool failed = vkf_alloc_failed();
        vkf_alloc_fail_at(-1);
        through = !failed;
        if (err == 0 && resp.status == 200 && !failed)
            CHECK(resp.body != NULL || resp.file_path != NULL);
        vkf_http_response_clear(&resp);
        vkf_queue_clear(app);
        if (vkf_alloc_live() != base) {
            fprintf(stderr, "%s %s: leak with allocation %ld failing\n", method, path, n);
            CHECK(false);
            return;
        }
    }
    CHECK(through);
}

int main(void)
{
    char dir[] = "/tmp/vkf-routes-alloc-XXXXXX";
    if (!mkdtemp(dir))
        return 77;
    vkf_registry *reg = NULL;
    vkf_paths *paths = NULL;
    vkf_app *app = NULL;
    char *in = vkf_asprintf("%s/input", dir), *out = vkf_asprintf("%s/output", dir);
    CHECK(vkf_registry_create(&reg) == 0 && vkf_paths_create(&paths, NULL) == 0);
    CHECK(vkf_paths_set_input_dir(paths, in) == 0 && vkf_paths_set_output_dir(paths, out) == 0);
    vkf_server_params p = {.registry = reg, .paths = paths};
    CHECK(vkf_app_create(&app, &p, false) == 0);

    for (size_t i = 0; i < VKF_ARRAY_SIZE(prompts); i++)
        run(app, "POST", "/prompt", prompts[i]);
    run(app, "POST", "/prompt", "{\"client_id\":1}");
    run(app, "POST", "/queue", "{\"clear\":true,\"delete\":[\"a\"]}");
    run(app, "POST", "/history", "{\"delete\":[\"a\"]}");
    run(app, "POST", "/interrupt", "{\"prompt_id\":\"a\"}");
    run(app, "GET", "/queue", NULL);
    run(app, "GET", "/history", NULL);
    run(app, "GET", "/object_info", NULL);
    run(app, "GET", "/system_stats", NULL);
    run(app, "GET", "/nowhere", NULL);

    vkf_app_destroy(&app);
    vkf_paths_destroy(&paths);
    vkf_registry_destroy(&reg);
    vkf_free(in);
    vkf_free(out);
    CHECK(vkf_alloc_live() == 0);
    return test_result("test_routes_alloc");
}
