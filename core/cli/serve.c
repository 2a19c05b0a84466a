/*
 * vkflow serve: the ComfyUI-compatible HTTP + websocket server
 * (core/server, docs/server.md).
 */
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "lua/vkf_lua.h"
#include "server/server.h"
#include "vkflow/preview.h"
#include "vkflow/vkflow.h"

enum { SERVE_OK = 0, SERVE_ERROR = 1, SERVE_USAGE = 2 };

typedef struct serve_config {
    const char **models;
    int nb_models;
    const char **extra_yaml;
    int nb_extra_yaml;
    const char *input_dir, *output_dir, *temp_dir;
    vkf_server_params sp;
    bool verbose;
    const char *preview_method;   /* --preview-method (default auto) */
    const char **nodes;        /* --nodes DIR: Lua node packs */
    int nb_nodes;
} serve_config;

static void serve_usage(FILE *f)
{
    fputs("usage: vkflow serve [options]\n"
          "  --listen ADDR              address to listen on (default 127.0.0.1)\n"
          "  --port N                   port (default 8188)\n"
          "  --models DIR               a ComfyUI models folder (repeatable)\n"
          "  --nodes DIR                Lua node packs in DIR (repeatable; also VKF_NODES_PATH)\n"
          "  --extra-model-paths F      a ComfyUI extra_model_paths.yaml (repeatable)\n"
          "  --input DIR                input folder (default ./input)\n"
          "  --output DIR               output folder (default ./output)\n"
          "  --temp DIR                 temp folder (default OUTPUT/../temp)\n"
          "  --auth-token T             require 'Authorization: Bearer T' or ?token=T\n"
          "  --enable-cors-header ORIGIN  send Access-Control-* headers for ORIGIN\n"
          "  --max-upload-mb N          largest request body / upload (default 100)\n"
          "  --max-history N            history entries kept (default 10000)\n"
          "  --verbose                  log every request-level event\n"
          "  --preview-method M         live previews: none|auto|latent2rgb|taesd (default auto)\n",
          f);
}

static int push_arg(const char ***arr, int *n, const char *v)
{
    const char **a = realloc(*arr, sizeof(*a) * (size_t)(*n + 1));
    if (!a)
        return -1;
    a[(*n)++] = v;
    *arr = a;
    return 0;
}

static bool parse_int(const char *s, long min, long max, long *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < min || v > max)
        return false;
    *out = v;
    return true;
}

static int parse_serve_opts(int argc, char **argv, serve_config *cfg)
{
    enum { O_PREVIEW_METHOD = 512 };
    enum { O_LISTEN = 256, O_PORT, O_MODELS, O_EXTRA, O_INPUT, O_OUTPUT, O_TEMP, O_TOKEN,
           O_CORS, O_MAX_UPLOAD, O_MAX_HISTORY, O_VERBOSE, O_NODES };
    static const struct option opts[] = {
        {"preview-method", required_argument, NULL, O_PREVIEW_METHOD},
        {"listen", required_argument, NULL, O_LISTEN},
        {"port", required_argument, NULL, O_PORT},
        {"models", required_argument, NULL, O_MODELS},
        {"nodes", required_argument, NULL, O_NODES},
        {"extra-model-paths", required_argument, NULL, O_EXTRA},
        {"input", required_argument, NULL, O_INPUT},
        {"output", required_argument, NULL, O_OUTPUT},
        {"temp", required_argument, NULL, O_TEMP},
        {"auth-token", required_argument, NULL, O_TOKEN},
        {"enable-cors-header", required_argument, NULL, O_CORS},
        {"max-upload-mb", required_argument, NULL, O_MAX_UPLOAD},
        {"max-history", required_argument, NULL, O_MAX_HISTORY},
        {"verbose", no_argument, NULL, O_VERBOSE},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    optind = 1;
    opterr = 0;
    int c;
    long v;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case O_LISTEN: cfg->sp.listen = optarg; break;
        case O_PORT:
            if (!parse_int(optarg, 1, 65535, &v)) {
                fprintf(stderr, "vkflow serve: --port: not a port number: '%s'\n", optarg);
                return -1;
            }
            cfg->sp.port = (int)v;
            break;
        case O_MODELS: push_arg(&cfg->models, &cfg->nb_models, optarg); break;
        case O_NODES: push_arg(&cfg->nodes, &cfg->nb_nodes, optarg); break;
        case O_EXTRA: push_arg(&cfg->extra_yaml, &cfg->nb_extra_yaml, optarg); break;
        case O_INPUT: cfg->input_dir = optarg; break;
        case O_OUTPUT: cfg->output_dir = optarg; break;
        case O_TEMP: cfg->temp_dir = optarg; break;
        case O_TOKEN:
            if (!optarg[0]) {
                fprintf(stderr, "vkflow serve: --auth-token: empty token\n");
                return -1;
            }
            cfg->sp.auth_token = optarg;
            break;
        case O_CORS: cfg->sp.cors_origin = optarg; break;
        case O_MAX_UPLOAD:
            if (!parse_int(optarg, 1, 1L << 20, &v)) {
                fprintf(stderr, "vkflow serve: --max-upload-mb: expected 1..1048576, got '%s'\n",
                        optarg);
                return -1;
            }
            cfg->sp.max_body_bytes = (int64_t)v * 1024 * 1024;
            break;
        case O_MAX_HISTORY:
            if (!parse_int(optarg, 1, INT_MAX, &v)) {
                fprintf(stderr, "vkflow serve: --max-history: expected a positive number, got '%s'\n",
                        optarg);
                return -1;
            }
            cfg->sp.max_history = (int)v;
            break;
        case O_VERBOSE: cfg->verbose = true; break;
        case O_PREVIEW_METHOD: cfg->preview_method = optarg; break;
        case 'h': serve_usage(stdout); exit(SERVE_OK);
        default:
            fprintf(stderr, "vkflow serve: unknown or incomplete option '%s'\n", argv[optind - 1]);
            return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "vkflow serve: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    return 0;
}

static int serve_paths(const serve_config *cfg, const vkf_log *log, vkf_paths **out)
{
    vkf_paths_config pc = {
        .models = cfg->models, .nb_models = cfg->nb_models,
        .extra_yaml = cfg->extra_yaml, .nb_extra_yaml = cfg->nb_extra_yaml,
        .input_dir = cfg->input_dir, .output_dir = cfg->output_dir, .temp_dir = cfg->temp_dir,
    };
    return vkf_paths_create_from(&pc, log, out);
}

#ifdef VKF_CLI_TEST_NODES
extern const vkf_node_def *const vkf_cli_test_nodes[];
#endif

static vkf_server *volatile g_server;

static void on_stop_signal(int sig)
{
    (void)sig;
    if (g_server)
        vkf_server_stop(g_server);
}

int vkf_cli_serve(int argc, char **argv)
{
    serve_config cfg = {0};
    vkf_registry *reg = NULL;
    vkf_paths *paths = NULL;
    vkf_server *srv = NULL;
    vkf_lua_host *lua = NULL;
    int rc = SERVE_OK;
    if (parse_serve_opts(argc, argv, &cfg) < 0) {
        rc = SERVE_USAGE;
        goto done;
    }
    vkf_log log = vkf_log_stderr(cfg.verbose ? VKF_LOG_DEBUG : VKF_LOG_INFO);
    int err = vkf_registry_create(&reg);
#ifdef VKF_CLI_TEST_NODES
    for (int i = 0; err >= 0 && vkf_cli_test_nodes[i]; i++)
        err = vkf_registry_add(reg, vkf_cli_test_nodes[i]);
#endif
    if (err >= 0)
        err = vkf_lua_host_create(&(vkf_lua_params){.log = &log}, &lua);
    if (err >= 0)
        err = vkf_lua_load_all(lua, cfg.nodes, cfg.nb_nodes, getenv("VKF_NODES_PATH"), reg);
    if (err >= 0)
        err = serve_paths(&cfg, &log, &paths);
    cfg.sp.registry = reg;
    cfg.sp.paths = paths;
    cfg.sp.log = &log;
    cfg.sp.argc = argc;
    cfg.sp.argv = argv;
    if (err >= 0)
        err = vkf_server_create(&srv, &cfg.sp);
    if (err < 0) {
        fprintf(stderr, "vkflow serve: %s\n", vkf_strerror(err));
        rc = SERVE_ERROR;
        goto done;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    g_server = srv;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    vkf_preview_method pm = VKF_PREVIEW_AUTO;
    if (cfg.preview_method && vkf_preview_method_from_name(cfg.preview_method, &pm) < 0)
        vkf_logf(&log, VKF_LOG_WARN, "--preview-method %s: unknown; using auto",
                 cfg.preview_method);
    vkf_preview_install(pm);
    err = vkf_server_run(srv);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    g_server = NULL;
    if (err < 0) {
        fprintf(stderr, "vkflow serve: %s\n", vkf_strerror(err));
        rc = SERVE_ERROR;
    } else {
        vkf_logf(&log, VKF_LOG_INFO, "shutting down");
    }
    vkf_lua_host_destroy(&lua);
    vkf_server_destroy(&srv);
    vkf_preview_shutdown();
done:
    vkf_lua_host_destroy(&lua);
    vkf_paths_destroy(&paths);
    vkf_registry_destroy(&reg);
    free(cfg.nodes);
    free(cfg.models);
    free(cfg.extra_yaml);
    return rc;
}
