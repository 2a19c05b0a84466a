/*
 * libFuzzer target: the JSON request bodies of vkflow serve (POST /prompt,
 * /queue, /history, /interrupt, /free) through the HTTP-independent router,
 * without sockets and without the executor thread.  The first byte picks
 * the route, the rest is the body.  Every reply must be a status the server
 * documents with a JSON body; a queued prompt must answer with its id.
 *
 * Built with -DVKF_FUZZ_REPLAY it gets a main() that replays the files
 * given on the command line (tests/server runs the seed corpus that way).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "server/internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static vkf_app *fuzz_app(void)
{
    static vkf_app *app;
    static vkf_registry *reg;
    static vkf_paths *paths;
    if (app)
        return app;
    char dir[] = "/tmp/vkf-fuzz-http-XXXXXX";
    if (!mkdtemp(dir) || vkf_registry_create(&reg) < 0 || vkf_paths_create(&paths, NULL) < 0)
        abort();
    char *in = vkf_asprintf("%s/input", dir), *out = vkf_asprintf("%s/output", dir);
    if (!in || !out || vkf_paths_set_input_dir(paths, in) < 0 ||
        vkf_paths_set_output_dir(paths, out) < 0)
        abort();
    vkf_free(in);
    vkf_free(out);
    vkf_server_params p = {.registry = reg, .paths = paths, .max_history = 16};
    if (vkf_app_create(&app, &p, false) < 0)
        abort();
    return app;
}

static const char *route_path(uint8_t selector)
{
    switch (selector) {
    case 'q': return "/queue";
    case 'h': return "/history";
    case 'i': return "/interrupt";
    case 'f': return "/free";
    default: return "/prompt";
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    vkf_app *app = fuzz_app();
    vkf_http_request req = {.method = "POST", .path = route_path(data[0]),
                            .body = (const char *)data + 1, .body_len = size - 1};
    vkf_http_response resp;
    if (vkf_app_handle(app, &req, &resp) < 0)
        abort();
    if (resp.status != 200 && resp.status != 400 && resp.status != 500)
        abort();
    if (resp.body_len) {
        cJSON *j = cJSON_ParseWithLength(resp.body, resp.body_len);
        if (!j)
            abort();
        if (!strcmp(req.path, "/prompt") && resp.status == 200 &&
            !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(j, "prompt_id")))
            abort();
        cJSON_Delete(j);
    }
    vkf_http_response_clear(&resp);
    /* The views of the queue and history stay valid JSON. */
    char *q = vkf_queue_json(app), *h = vkf_history_json(app, NULL, -1, -1);
    cJSON *jq = q ? cJSON_Parse(q) : NULL, *jh = h ? cJSON_Parse(h) : NULL;
    if ((q && !jq) || (h && !jh))
        abort();
    cJSON_Delete(jq);
    cJSON_Delete(jh);
    vkf_free(q);
    vkf_free(h);
    vkf_queue_clear(app);
    return 0;
}

#ifdef VKF_FUZZ_REPLAY
#include <dirent.h>

/* Replays every file of the directories given. */
int main(int argc, char **argv)
{
    static uint8_t buf[1 << 20];
    int n = 0;
    for (int a = 1; a < argc; a++) {
        DIR *d = opendir(argv[a]);
        if (!d) {
            fprintf(stderr, "cannot open %s\n", argv[a]);
            return 1;
        }
        for (struct dirent *e; (e = readdir(d));) {
            if (e->d_name[0] == '.')
                continue;
            char *path = vkf_asprintf("%s/%s", argv[a], e->d_name);
            FILE *f = path ? fopen(path, "rb") : NULL;
            vkf_free(path);
            if (!f)
                continue;
            size_t len = fread(buf, 1, sizeof(buf), f);
            fclose(f);
            LLVMFuzzerTestOneInput(buf, len);
            n++;
        }
        closedir(d);
    }
    fprintf(stderr, "fuzz_http_body replay: %d inputs\n", n);
    printf("%d passed, 0 failed\n", n);
    return n > 0 ? 0 : 1;
}
#endif
