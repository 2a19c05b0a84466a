/*
 * vkflow — command-line front end.
 *
 * Exit codes (docs/cli.md): 0 success, 1 run error, 2 usage error,
 * 3 validation error (including unreadable or unknown workflows),
 * 130 interrupted.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli/cli.h"
#include "graph/internal.h"
#include "lua/vkf_lua.h"
#include "vkflow/preview.h"
#include "vkflow/vkflow.h"

enum {
    EXIT_OK = 0,
    EXIT_RUN = 1,
    EXIT_USAGE = 2,
    EXIT_VALIDATION = 3,
    EXIT_INTERRUPTED = 130,
};

/* ---- configuration: filled in one place from the command line ------------ */

typedef struct cli_config {
    const char **models;       /* --models DIR (repeatable) */
    int nb_models;
    const char **extra_yaml;   /* --extra-model-paths FILE (repeatable) */
    int nb_extra_yaml;
    const char *input_dir;
    const char *output_dir;
    const char *temp_dir;
    const char *events;        /* --events jsonl */
    const char **sets;         /* --set ID.INPUT=VALUE */
    int nb_sets;
    int device;                /* --device N (or VKF_DEVICE) */
    bool json;
    bool quiet;
    bool profile;              /* --profile: GPU time per op kind */
    const char *out_file;      /* convert -o */
    const char *preview_dir;   /* --preview DIR: live preview PNGs */
    const char *preview_method;/* --preview-method */
    const char **nodes;        /* --nodes DIR: Lua node packs (repeatable) */
    int nb_nodes;
    const char *nodes_path;    /* VKF_NODES_PATH */
} cli_config;

static void usage(FILE *f)
{
    fputs("usage: vkflow <command> [options]\n"
          "\n"
          "commands:\n"
          "  run FILE...        run ComfyUI workflows (API or UI JSON, PNG, WebP)\n"
          "      --set ID.INPUT=VALUE   override an input (repeatable)\n"
          "      --models DIR           a ComfyUI models folder (repeatable)\n"
          "      --extra-model-paths F  a ComfyUI extra_model_paths.yaml (repeatable)\n"
          "      --input DIR            input folder (default ./input)\n"
          "      --output DIR           output folder (default ./output)\n"
          "      --temp DIR             temp folder (default OUTPUT/../temp)\n"
          "      --events jsonl         ComfyUI websocket events as JSON lines on stdout\n"
          "      --device N             Vulkan device index (also VKF_DEVICE)\n"
          "      --quiet                no progress display\n"
          "      --profile              GPU time per op kind after each workflow\n"
          "      --preview DIR          write live sampler previews (PNG) into DIR\n"
          "      --preview-method M     none|auto|latent2rgb|taesd (default: auto with\n"
          "                             --preview, else none)\n"
          "      --nodes DIR            Lua node packs in DIR (repeatable; also VKF_NODES_PATH)\n"
          "  validate FILE [--json]     check a workflow without running it\n"
          "  convert FILE [-o OUT]      UI workflow / PNG / WebP -> API-format JSON\n"
          "  nodes [--json]             list nodes (--json: ComfyUI /object_info)\n"
          "  inspect FILE [--json]      tensors, dtypes and model family of a weights file\n"
          "  synth-model --arch A --scale full|tiny --seed N -o FILE\n"
          "                             write a random-weight test checkpoint\n"
          "  serve [--port 8188] ...    ComfyUI-compatible HTTP + WebSocket API\n"
          "  devices                    list Vulkan devices\n"
          "  bench ops                  benchmark the GPU op library\n"
          "  --help, --version\n"
          "\n"
          "exit codes: 0 success, 1 run error, 2 usage error, 3 validation error,\n"
          "            130 interrupted\n",
          f);
}

static int push(const char ***arr, int *n, const char *v)
{
    const char **a = realloc(*arr, sizeof(*a) * (size_t)(*n + 1));
    if (!a)
        return -1;
    a[(*n)++] = v;
    *arr = a;
    return 0;
}

/* Parses options after the command name; positional args collected. */
static int parse_opts(int argc, char **argv, cli_config *cfg, const char ***pos, int *npos)
{
    enum { O_PREVIEW = 512, O_PREVIEW_METHOD };
    enum { O_SET = 256, O_MODELS, O_EXTRA, O_INPUT, O_OUTPUT, O_TEMP, O_EVENTS, O_DEVICE,
           O_JSON, O_QUIET, O_PROFILE, O_NODES };
    static const struct option opts[] = {
        {"set", required_argument, NULL, O_SET},
        {"models", required_argument, NULL, O_MODELS},
        {"extra-model-paths", required_argument, NULL, O_EXTRA},
        {"input", required_argument, NULL, O_INPUT},
        {"output", required_argument, NULL, O_OUTPUT},
        {"temp", required_argument, NULL, O_TEMP},
        {"events", required_argument, NULL, O_EVENTS},
        {"device", required_argument, NULL, O_DEVICE},
        {"json", no_argument, NULL, O_JSON},
        {"quiet", no_argument, NULL, O_QUIET},
        {"profile", no_argument, NULL, O_PROFILE},
        {"nodes", required_argument, NULL, O_NODES},
        {"preview", required_argument, NULL, O_PREVIEW},
        {"preview-method", required_argument, NULL, O_PREVIEW_METHOD},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    optind = 1;
    opterr = 0;
    int c;
    /* GNU getopt permutes: options may come before or after the files. */
    while ((c = getopt_long(argc, argv, "ho:", opts, NULL)) != -1) {
        switch (c) {
        case O_SET: push(&cfg->sets, &cfg->nb_sets, optarg); break;
        case O_MODELS: push(&cfg->models, &cfg->nb_models, optarg); break;
        case O_EXTRA: push(&cfg->extra_yaml, &cfg->nb_extra_yaml, optarg); break;
        case O_INPUT: cfg->input_dir = optarg; break;
        case O_OUTPUT: cfg->output_dir = optarg; break;
        case O_TEMP: cfg->temp_dir = optarg; break;
        case O_EVENTS:
            if (strcmp(optarg, "jsonl")) {
                fprintf(stderr, "vkflow: --events: only 'jsonl' is supported, got '%s'\n", optarg);
                return -1;
            }
            cfg->events = optarg;
            break;
        case O_DEVICE: {
            char *end;
            long d = strtol(optarg, &end, 10);
            if (*end || d < 0 || d > 64) {
                fprintf(stderr, "vkflow: --device: not a device index: '%s'\n", optarg);
                return -1;
            }
            cfg->device = (int)d;
            break;
        }
        case O_JSON: cfg->json = true; break;
        case O_QUIET: cfg->quiet = true; break;
        case O_PROFILE: cfg->profile = true; break;
        case O_NODES: push(&cfg->nodes, &cfg->nb_nodes, optarg); break;
        case 'o': cfg->out_file = optarg; break;
        case O_PREVIEW: cfg->preview_dir = optarg; break;
        case O_PREVIEW_METHOD: cfg->preview_method = optarg; break;
        case 'h': usage(stdout); exit(EXIT_OK);
        default:
            fprintf(stderr, "vkflow: unknown or incomplete option '%s'\n", argv[optind - 1]);
            return -1;
        }
    }
    while (optind < argc)
        push(pos, npos, argv[optind++]);
    return 0;
}

/* ---- shared set-up ------------------------------------------------------ */

static vkf_log g_log;

static int make_paths(const cli_config *cfg, vkf_paths **out)
{
    vkf_paths_config pc = {
        .models = cfg->models, .nb_models = cfg->nb_models,
        .extra_yaml = cfg->extra_yaml, .nb_extra_yaml = cfg->nb_extra_yaml,
        .input_dir = cfg->input_dir, .output_dir = cfg->output_dir, .temp_dir = cfg->temp_dir,
    };
    return vkf_paths_create_from(&pc, &g_log, out);
}

#ifdef VKF_CLI_TEST_NODES
/* The test build of the CLI (tests/cli) adds nodes that only tests use. */
extern const vkf_node_def *const vkf_cli_test_nodes[];
#endif

/* Lua node packs: the host outlives the registry it fills and goes before
 * the executor's device (core/lua/vkf_lua.h). */
static vkf_lua_host *g_lua;
static const cli_config *g_cfg;

static int create_registry(vkf_registry **reg)
{
    int err = vkf_registry_create(reg);
#ifdef VKF_CLI_TEST_NODES
    for (int i = 0; err >= 0 && vkf_cli_test_nodes[i]; i++)
        err = vkf_registry_add(*reg, vkf_cli_test_nodes[i]);
#endif
    if (err >= 0 && !g_lua)
        err = vkf_lua_host_create(&(vkf_lua_params){.log = &g_log}, &g_lua);
    if (err >= 0)
        err = vkf_lua_load_all(g_lua, g_cfg->nodes, g_cfg->nb_nodes, g_cfg->nodes_path, *reg);
    return err;
}

static int load(const char *file, const vkf_registry *reg, vkf_graph **g)
{
    vkf_load_error le = {0};
    int err = vkf_load_workflow_file(file, reg, g, &le);
    if (err < 0) {
        fprintf(stderr, "vkflow: %s: %s\n", file,
                le.message ? le.message : vkf_strerror(err));
        vkf_load_error_clear(&le);
        return err;
    }
    vkf_load_error_clear(&le);
    return 0;
}

/* The XDG cache folder for pipeline and SPIR-V caches (created). */
static int cache_dir(char **pipeline_cache, char **spirv_dir)
{
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    char *base = xdg && *xdg ? vkf_asprintf("%s/vkflow", xdg)
                 : home && *home ? vkf_asprintf("%s/.cache/vkflow", home)
                                 : NULL;
    if (!base)
        return -1;
    char *spirv = vkf_asprintf("%s/spirv", base);
    if (!spirv) {
        vkf_free(base);
        return -1;
    }
    /* mkdir -p base/spirv */
    for (char *p = spirv + 1; *p; p++) {
        if (*p == '/') {
            *p = 0;
            mkdir(spirv, 0755);
            *p = '/';
        }
    }
    mkdir(spirv, 0755);
    *pipeline_cache = vkf_asprintf("%s/pipelines.bin", base);
    vkf_free(base);
    if (!*pipeline_cache) {
        vkf_free(spirv);
        return -1;
    }
    *spirv_dir = spirv;
    return 0;
}

/* ---- events: progress display and JSON lines ----------------------------- */

typedef struct progress {
    bool tty;
    bool jsonl;
    bool quiet;
    char node[64];
    char cls[64];
    double t0;           /* start of the current progress run */
    int64_t last_value;
    bool line_open;
    const char *preview_dir;
} progress;

/* A preview PNG into DIR as <prompt_id>_<node>_<step>.png, atomically;
 * the path (vkf_malloc'ed) or NULL. */
static char *write_preview(const char *dir, const vkf_event *ev)
{
    char *path = vkf_asprintf("%s/%s_%s_%03lld.png", dir, ev->prompt_id ? ev->prompt_id : "run",
                              ev->node_id ? ev->node_id : "node", (long long)ev->value);
    vkf_atomic_file *f = NULL;
    if (!path || vkf_atomic_file_open(&f, path) < 0 ||
        vkf_atomic_file_write(f, ev->blob, ev->blob_size) < 0 || vkf_atomic_file_commit(&f) < 0) {
        if (f)
            vkf_atomic_file_abort(&f);
        fprintf(stderr, "vkflow: cannot write preview %s\n", path ? path : dir);
        vkf_free(path);
        return NULL;
    }
    return path;
}

static double now_s(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (double)tv.tv_sec + tv.tv_usec / 1e6;
}

static void close_line(progress *pr)
{
    if (pr->line_open) {
        fputc('\n', stderr);
        pr->line_open = false;
    }
}

static void on_event(void *priv, const vkf_event *ev)
{
    progress *pr = priv;
    if (ev->blob) {
        /* previews: files under --preview DIR, listed in --events */
        char *path = pr->preview_dir ? write_preview(pr->preview_dir, ev) : NULL;
        if (pr->jsonl && path) {
            cJSON *d = cJSON_Parse(ev->data_json);
            char *js = NULL;
            if (d && cJSON_AddStringToObject(d, "file", path))
                js = cJSON_PrintUnformatted(d);
            if (js)
                printf("{\"type\":\"%s\",\"data\":%s}\n", ev->type, js);
            fflush(stdout);
            cJSON_free(js);
            cJSON_Delete(d);
        }
        vkf_free(path);
        return;
    }
    if (pr->jsonl) {
        printf("{\"type\":\"%s\",\"data\":%s}\n", ev->type, ev->data_json);
        fflush(stdout);
        return;
    }
    if (pr->quiet || !pr->tty)
        return;
    if (!strcmp(ev->type, "executing") && ev->node_id) {
        close_line(pr);
        snprintf(pr->node, sizeof(pr->node), "%s", ev->node_id);
        snprintf(pr->cls, sizeof(pr->cls), "%s", ev->class_type ? ev->class_type : "");
        pr->t0 = 0;
        fprintf(stderr, "\r\033[K[%s] %s", pr->node, pr->cls);
        pr->line_open = true;
    } else if (!strcmp(ev->type, "progress")) {
        double t = now_s();
        if (!pr->t0 || ev->value < pr->last_value) {
            pr->t0 = t;
            pr->last_value = ev->value;
        }
        double el = t - pr->t0;
        int64_t done = ev->value - pr->last_value;
        double rate = el > 0 && done > 0 ? done / el : 0;
        double eta = rate > 0 ? (ev->max - ev->value) / rate : 0;
        int width = 24, fill = ev->max > 0 ? (int)(width * ev->value / ev->max) : 0;
        char bar[32];
        for (int i = 0; i < width; i++)
            bar[i] = i < fill ? '#' : '.';
        bar[width] = 0;
        fprintf(stderr, "\r\033[K[%s] %s %3lld/%lld [%s] %.2f it/s ETA %.0fs", pr->node, pr->cls,
                (long long)ev->value, (long long)ev->max, bar, rate, eta);
        pr->line_open = true;
    } else if (!strcmp(ev->type, "execution_success") || !strcmp(ev->type, "execution_error") ||
               !strcmp(ev->type, "execution_interrupted")) {
        if (pr->line_open)
            fprintf(stderr, "\r\033[K");
        pr->line_open = false;
    }
}

static void print_text(void *priv, const char *node_id, const char *text)
{
    progress *pr = priv;
    close_line(pr);
    /* With --events jsonl, stdout carries only events. */
    FILE *f = pr->jsonl ? stderr : stdout;
    fprintf(f, "%s\n", text);
    fflush(f);
}

/* ---- Ctrl-C ---------------------------------------------------------------- */

static vkf_executor *volatile g_executor;
static atomic_int g_interrupted;

static void on_sigint(int sig)
{
    (void)sig;
    atomic_store(&g_interrupted, 1);
    if (g_executor)
        vkf_executor_interrupt(g_executor);
    /* A second Ctrl-C ends the process at once. */
    signal(SIGINT, SIG_DFL);
}

/* ---- commands -------------------------------------------------------------- */

static int apply_sets(const cli_config *cfg, vkf_graph **graphs, const char **files, int n)
{
    for (int s = 0; s < cfg->nb_sets; s++) {
        const char *spec = cfg->sets[s];
        const char *dot = strchr(spec, '.');
        const char *eq = strchr(spec, '=');
        if (!dot || !eq || eq < dot || dot == spec || eq == dot + 1) {
            fprintf(stderr, "vkflow: --set '%s': expected ID.INPUT=VALUE\n", spec);
            return EXIT_USAGE;
        }
        char *id = vkf_strndup(spec, (size_t)(dot - spec));
        char *input = vkf_strndup(dot + 1, (size_t)(eq - dot - 1));
        bool applied = false;
        int rc = EXIT_OK;
        for (int f = 0; f < n && id && input && rc == EXIT_OK; f++) {
            if (!vkf_graph_find(graphs[f], id))
                continue;
            char *msg = NULL;
            if (vkf_graph_set_input(graphs[f], id, input, eq + 1, &msg) < 0) {
                fprintf(stderr, "vkflow: --set '%s' in %s: %s\n", spec, files[f],
                        msg ? msg : "failed");
                rc = EXIT_USAGE;
            }
            vkf_free(msg);
            applied = true;
        }
        if (rc == EXIT_OK && !applied) {
            fprintf(stderr, "vkflow: --set '%s': no workflow has a node with id '%s'\n", spec, id);
            rc = EXIT_USAGE;
        }
        vkf_free(id);
        vkf_free(input);
        if (rc != EXIT_OK)
            return rc;
    }
    return EXIT_OK;
}

static int cmp_op_time(const void *a, const void *b)
{
    double x = ((const vkf_gpu_op_time *)a)->ms, y = ((const vkf_gpu_op_time *)b)->ms;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* Peak device memory of the run and, with --profile, GPU time per op kind
 * (largest first). */
static void report_gpu(vkf_executor *ex, const cli_config *cfg)
{
    vkf_gpu *gpu = vkf_executor_gpu(ex);
    if (!gpu || cfg->quiet)
        return;
    vkf_gpu_mem_stats ms;
    vkf_gpu_mem_stats_get(gpu, &ms);
    fprintf(stderr, "vkflow: device memory: peak %.1f MiB, now %.1f MiB, reserved %.1f MiB\n",
            ms.peak / 1048576.0, ms.current / 1048576.0, ms.reserved / 1048576.0);
    if (!cfg->profile)
        return;
    vkf_gpu_op_time times[64];
    int n = vkf_gpu_profile_get(gpu, times, 64);
    if (n > 64)
        n = 64;
    qsort(times, (size_t)n, sizeof(times[0]), cmp_op_time);
    double total = 0;
    for (int i = 0; i < n; i++)
        total += times[i].ms;
    fprintf(stderr, "vkflow: GPU time by op (total %.2f ms):\n", total);
    for (int i = 0; i < n && i < 15; i++)
        fprintf(stderr, "  %-24s %10.3f ms %5.1f%% %8ld dispatches\n", times[i].op, times[i].ms,
                total > 0 ? 100 * times[i].ms / total : 0, times[i].dispatches);
}

static int cmd_run(const cli_config *cfg, const char **files, int nfiles)
{
    int rc = EXIT_OK;
    vkf_registry *reg = NULL;
    vkf_paths *paths = NULL;
    vkf_executor *ex = NULL;
    vkf_graph **graphs = NULL;
    char *pipeline_cache = NULL, *spirv_cache = NULL;
    if (nfiles < 1) {
        fprintf(stderr, "vkflow run: no workflow file given\n");
        return EXIT_USAGE;
    }
    progress pr = {.tty = isatty(2), .jsonl = cfg->events != NULL, .quiet = cfg->quiet,
                   .preview_dir = cfg->preview_dir};
    vkf_preview_method pm = cfg->preview_dir ? VKF_PREVIEW_AUTO : VKF_PREVIEW_NONE;
    if (cfg->preview_method && vkf_preview_method_from_name(cfg->preview_method, &pm) < 0) {
        fprintf(stderr, "vkflow: --preview-method: expected none, auto, latent2rgb or taesd\n");
        return EXIT_USAGE;
    }
    if (cfg->preview_dir && mkdir(cfg->preview_dir, 0777) < 0 && errno != EEXIST) {
        fprintf(stderr, "vkflow: --preview %s: %s\n", cfg->preview_dir, strerror(errno));
        return EXIT_USAGE;
    }
    vkf_preview_install(pm);
    if (create_registry(&reg) < 0 || make_paths(cfg, &paths) < 0) {
        rc = EXIT_RUN;
        goto done;
    }
    graphs = vkf_calloc((size_t)nfiles, sizeof(*graphs));
    if (!graphs) {
        rc = EXIT_RUN;
        goto done;
    }
    /* Load everything first: a bad file fails before any work is done. */
    for (int f = 0; f < nfiles; f++) {
        if (load(files[f], reg, &graphs[f]) < 0) {
            rc = EXIT_VALIDATION;
            goto done;
        }
    }
    if ((rc = apply_sets(cfg, graphs, files, nfiles)) != EXIT_OK)
        goto done;

    vkf_gpu_params gp = {.device_index = cfg->device > 0 ? cfg->device : 0,
                         .profile = cfg->profile};
    if (cache_dir(&pipeline_cache, &spirv_cache) == 0) {
        gp.pipeline_cache_path = pipeline_cache;
        gp.spirv_cache_dir = spirv_cache;
    }
    vkf_executor_params ep = {.registry = reg, .paths = paths, .log = &g_log,
                              .on_event = on_event, .event_priv = &pr,
                              .gpu_params = &gp,
                              .print = print_text, .print_priv = &pr};
    if (vkf_executor_create(&ex, &ep) < 0) {
        rc = EXIT_RUN;
        goto done;
    }
    g_executor = ex;
    signal(SIGINT, on_sigint);
    for (int f = 0; f < nfiles; f++) {
        if (atomic_load(&g_interrupted)) {
            rc = EXIT_INTERRUPTED;
            break;
        }
        vkf_validation val = {0};
        char *run_error = NULL;
        double t0 = now_s();
        if (vkf_executor_gpu(ex)) {
            vkf_gpu_mem_reset_peak(vkf_executor_gpu(ex));
            vkf_gpu_profile_reset(vkf_executor_gpu(ex));
        }
        int err = vkf_executor_run(ex, graphs[f], &val, &run_error);
        close_line(&pr);
        if (err == VKF_EVALIDATION) {
            char *text = vkf_validation_to_text(&val);
            fprintf(stderr, "vkflow: %s: validation failed:\n%s", files[f], text ? text : "");
            vkf_free(text);
            rc = EXIT_VALIDATION;
        } else if (err == VKF_EINTERRUPTED) {
            fprintf(stderr, "vkflow: %s: interrupted\n", files[f]);
            rc = EXIT_INTERRUPTED;
        } else if (err < 0) {
            fprintf(stderr, "vkflow: %s: %s\n", files[f],
                    run_error ? run_error : vkf_strerror(err));
            rc = EXIT_RUN;
        } else if (!cfg->quiet && !pr.jsonl) {
            int nexec, ncached;
            vkf_executor_last_stats(ex, &nexec, &ncached);
            fprintf(stderr, "vkflow: %s: done in %.2f s (%d node%s executed, %d cached)\n",
                    files[f], now_s() - t0, nexec, nexec == 1 ? "" : "s", ncached);
        }
        if (err == 0 && !pr.jsonl)
            report_gpu(ex, cfg);
        vkf_free(run_error);
        vkf_validation_clear(&val);
        if (rc != EXIT_OK)
            break;
    }
    signal(SIGINT, SIG_DFL);
    g_executor = NULL;
done:
    if (graphs)
        for (int f = 0; f < nfiles; f++)
            vkf_graph_free(&graphs[f]);
    vkf_free(graphs);
    vkf_preview_shutdown();
    vkf_lua_host_destroy(&g_lua);
    vkf_executor_destroy(&ex);
    vkf_free(pipeline_cache);
    vkf_free(spirv_cache);
    vkf_paths_destroy(&paths);
    vkf_registry_destroy(&reg);
    return rc;
}

static int cmd_validate(const cli_config *cfg, const char **files, int nfiles)
{
    if (nfiles != 1) {
        fprintf(stderr, "vkflow validate: exactly one workflow file expected\n");
        return EXIT_USAGE;
    }
    int rc = EXIT_OK;
    vkf_registry *reg = NULL;
    vkf_paths *paths = NULL;
    vkf_graph *g = NULL;
    vkf_validation val = {0};
    vkf_load_error le = {0};
    if (create_registry(&reg) < 0 || make_paths(cfg, &paths) < 0) {
        rc = EXIT_RUN;
        goto done;
    }
    int err = vkf_load_workflow_file(files[0], reg, &g, &le);
    if (err < 0) {
        if (cfg->json) {
            /* Same shape as ComfyUI's error body. */
            cJSON *root = cJSON_CreateObject(), *e = cJSON_CreateObject();
            cJSON_AddStringToObject(e, "type", le.nb_unknown ? "invalid_prompt" : "invalid_workflow");
            cJSON_AddStringToObject(e, "message", le.message ? le.message : vkf_strerror(err));
            cJSON_AddStringToObject(e, "details", files[0]);
            cJSON *extra = cJSON_AddObjectToObject(e, "extra_info");
            if (le.line) {
                cJSON_AddNumberToObject(extra, "line", le.line);
                cJSON_AddNumberToObject(extra, "column", le.column);
            }
            if (le.nb_unknown) {
                cJSON *u = cJSON_AddArrayToObject(extra, "unknown_classes");
                for (int k = 0; k < le.nb_unknown; k++)
                    cJSON_AddItemToArray(u, cJSON_CreateString(le.unknown_classes[k]));
            }
            cJSON_AddItemToObject(root, "error", e);
            cJSON_AddObjectToObject(root, "node_errors");
            char *s = cJSON_Print(root);
            if (s)
                printf("%s\n", s);
            vkf_free(s);
            cJSON_Delete(root);
        } else {
            fprintf(stderr, "vkflow: %s: %s\n", files[0], le.message ? le.message : vkf_strerror(err));
        }
        rc = EXIT_VALIDATION;
        goto done;
    }
    if (vkf_validate(g, reg, paths, &val) < 0) {
        rc = EXIT_RUN;
        goto done;
    }
    if (cfg->json) {
        char *s = NULL;
        if (val.ok && !val.nb_node_errors) {
            s = vkf_strdup("{\n\t\"node_errors\":\t{\n\t}\n}");
        } else if (vkf_validation_to_json(&val, &s, true) < 0) {
            rc = EXIT_RUN;
            goto done;
        }
        printf("%s\n", s);
        vkf_free(s);
    } else if (!val.ok || val.nb_node_errors) {
        char *text = vkf_validation_to_text(&val);
        fprintf(stderr, "%s", text ? text : "");
        vkf_free(text);
    } else {
        printf("%s: valid (%d output node%s)\n", files[0], val.nb_outputs,
               val.nb_outputs == 1 ? "" : "s");
    }
    if (!val.ok)
        rc = EXIT_VALIDATION;
done:
    vkf_validation_clear(&val);
    vkf_load_error_clear(&le);
    vkf_graph_free(&g);
    vkf_paths_destroy(&paths);
    vkf_registry_destroy(&reg);
    return rc;
}

static int cmd_convert(const cli_config *cfg, const char **files, int nfiles)
{
    if (nfiles != 1) {
        fprintf(stderr, "vkflow convert: exactly one input file expected\n");
        return EXIT_USAGE;
    }
    vkf_registry *reg = NULL;
    vkf_graph *g = NULL;
    char *json = NULL;
    int rc = EXIT_OK;
    if (create_registry(&reg) < 0) {
        rc = EXIT_RUN;
        goto done;
    }
    if (load(files[0], reg, &g) < 0) {
        rc = EXIT_VALIDATION;
        goto done;
    }
    if (vkf_graph_to_json(g, &json, true) < 0) {
        rc = EXIT_RUN;
        goto done;
    }
    if (cfg->out_file) {
        vkf_atomic_file *af;
        if (vkf_atomic_file_open(&af, cfg->out_file) < 0 ||
            vkf_atomic_file_write(af, json, strlen(json)) < 0 ||
            vkf_atomic_file_write(af, "\n", 1) < 0 || vkf_atomic_file_commit(&af) < 0) {
            fprintf(stderr, "vkflow: cannot write %s: %s\n", cfg->out_file, strerror(errno));
            rc = EXIT_RUN;
        }
    } else {
        printf("%s\n", json);
    }
done:
    vkf_free(json);
    vkf_graph_free(&g);
    vkf_registry_destroy(&reg);
    return rc;
}

static int cmd_nodes(const cli_config *cfg)
{
    vkf_registry *reg = NULL;
    vkf_paths *paths = NULL;
    int rc = EXIT_OK;
    if (create_registry(&reg) < 0 || make_paths(cfg, &paths) < 0) {
        rc = EXIT_RUN;
        goto done;
    }
    if (cfg->json) {
        vkf_cjson_init();
        cJSON *root = cJSON_CreateObject();
        for (int i = 0; root && i < vkf_registry_count(reg); i++) {
            const vkf_node_def *def = vkf_registry_at(reg, i);
            cJSON *n = vkf_node_info_json(def, paths);
            if (!n || !cJSON_AddItemToObject(root, def->name, n)) {
                cJSON_Delete(n);
                rc = EXIT_RUN;
            }
        }
        char *s = root && rc == EXIT_OK ? cJSON_Print(root) : NULL;
        if (s)
            printf("%s\n", s);
        else
            rc = EXIT_RUN;
        vkf_free(s);
        cJSON_Delete(root);
    } else {
        for (int i = 0; i < vkf_registry_count(reg); i++) {
            const vkf_node_def *def = vkf_registry_at(reg, i);
            printf("%-32s %-28s %s\n", def->name, def->display_name ? def->display_name : "",
                   def->category ? def->category : "");
        }
    }
done:
    vkf_paths_destroy(&paths);
    vkf_registry_destroy(&reg);
    return rc;
}

int main(int argc, char **argv)
{
    g_log = vkf_log_stderr(VKF_LOG_WARN);
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        usage(stdout);
        return EXIT_OK;
    }
    if (!strcmp(cmd, "--version")) {
        printf("vkflow %s\n", VKF_VERSION_STRING);
        return EXIT_OK;
    }
    if (!strcmp(cmd, "devices"))
        return vkf_cli_devices(argc - 1, argv + 1);
    if (!strcmp(cmd, "bench"))
        return vkf_cli_bench(argc - 1, argv + 1);
    if (!strcmp(cmd, "inspect"))
        return vkf_cli_inspect(argc - 1, argv + 1);
    if (!strcmp(cmd, "synth-model"))
        return vkf_cli_synth(argc - 1, argv + 1);
    if (!strcmp(cmd, "serve"))
        return vkf_cli_serve(argc - 1, argv + 1);

    /* Configuration is read here only: defaults, then environment, then
     * the command line. */
    cli_config cfg = {.device = -1};
    const char *env_dev = getenv("VKF_DEVICE");
    if (env_dev && *env_dev)
        cfg.device = atoi(env_dev);
    cfg.nodes_path = getenv("VKF_NODES_PATH");
    g_cfg = &cfg;
    const char **pos = NULL;
    int npos = 0, rc;
    if (parse_opts(argc - 1, argv + 1, &cfg, &pos, &npos) < 0) {
        rc = EXIT_USAGE;
    } else if (!strcmp(cmd, "run")) {
        rc = cmd_run(&cfg, pos, npos);
    } else if (!strcmp(cmd, "validate")) {
        rc = cmd_validate(&cfg, pos, npos);
    } else if (!strcmp(cmd, "convert")) {
        rc = cmd_convert(&cfg, pos, npos);
    } else if (!strcmp(cmd, "nodes")) {
        rc = cmd_nodes(&cfg);
    } else {
        fprintf(stderr, "vkflow: unknown command '%s' (see vkflow --help)\n", cmd);
        rc = EXIT_USAGE;
    }
    vkf_lua_host_destroy(&g_lua);
    free(cfg.nodes);
    free(pos);
    free(cfg.sets);
    free(cfg.models);
    free(cfg.extra_yaml);
    return rc;
}
