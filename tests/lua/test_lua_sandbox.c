/*
 * Lua host without a GPU: pack loading (broken packs reported by name and
 * skipped), the declaration API as the registry, /object_info and
 * validation see it, execution with errors naming pack, file, line and node
 * id, and every sandbox escape refused.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "../test.h"
#include "graph/internal.h"
#include "lua/vkf_lua.h"
#include "vkflow/vkflow.h"

static vkf_registry *reg;
static vkf_lua_host *host;
static test_log tlog;

static void load_packs(void)
{
    const char *src = getenv("VKF_SOURCE_ROOT");
    char root[1024];
    snprintf(root, sizeof(root), "%s/tests/lua/packs", src ? src : ".");
    int loaded = -1, failed = -1;
    CHECK(vkf_lua_load_root(host, root, reg, &loaded, &failed) == 0);
    CHECK_EQ_INT(loaded, 1);
    CHECK_EQ_INT(failed, 3);
    /* Last failure logged: broken_syntax (name order: decl, dup, syntax). */
    CHECK_HAS(tlog.last, "Lua pack 'broken_syntax'");
    CHECK_HAS(tlog.last, "broken_syntax/init.lua:6:");
    CHECK_EQ_INT(tlog.count, 3);
    CHECK(vkf_registry_find(reg, "LuaTestEcho") != NULL);
    CHECK(vkf_registry_find(reg, "NeverRegistered") == NULL);
    CHECK(vkf_registry_find(reg, "NoExecute") == NULL);
    /* The duplicate of a built-in did not replace it. */
    CHECK(vkf_registry_find(reg, "PrimitiveInt")->execute != vkf_registry_find(reg, "LuaTestEcho")->execute);
    /* Loading the same folder again: refused by pack name. */
    test_log_clear(&tlog);
    char good[1100];
    snprintf(good, sizeof(good), "%s/good", root);
    CHECK(vkf_lua_load_pack(host, good, reg) == VKF_EINVAL);
    CHECK_HAS(tlog.last, "already loaded");
}

static void check_declaration(void)
{
    const vkf_node_def *d = vkf_registry_find(reg, "LuaTestEcho");
    CHECK_STR(d->display_name, "Lua Test Echo");
    CHECK_STR(d->category, "testing/lua");
    CHECK_EQ_INT(d->nb_inputs, 5);
    CHECK_EQ_INT(d->nb_outputs, 2);
    CHECK_STR(d->inputs[2].type, "COMBO");
    CHECK(d->inputs[3].flags & VKF_IN_OPTIONAL);
    CHECK_EQ_INT(d->inputs[1].imax, 10);
    cJSON *j = vkf_node_info_json(d, NULL);
    char *s = cJSON_PrintUnformatted(j);
    CHECK_HAS(s, "\"times\":[\"INT\",{\"default\":2,\"min\":1,\"max\":10");
    CHECK_HAS(s, "\"sep\":[[\"-\",\"+\",\"/\"],{\"default\":\"+\"");
    CHECK_HAS(s, "\"tooltip\":\"what to repeat\"");
    CHECK_HAS(s, "\"python_module\":\"custom_nodes.good\"");
    CHECK_HAS(s, "\"output_name\":[\"text\",\"INT\"]");
    CHECK_HAS(s, "\"label_on\":\"UP\"");
    vkf_free(s);
    cJSON_Delete(j);
}

static vkf_graph *load(const char *json)
{
    vkf_graph *g = NULL;
    vkf_load_error le = {0};
    if (vkf_load_workflow_json(json, strlen(json), reg, &g, &le) < 0)
        fprintf(stderr, "load: %s\n", le.message ? le.message : "?");
    vkf_load_error_clear(&le);
    return g;
}

static char printed[4096];

static void on_print(void *priv, const char *node, const char *text)
{
    (void)priv;
    size_t n = strlen(printed);
    snprintf(printed + n, sizeof(printed) - n, "%s%s=%s", n ? "|" : "", node, text);
}

static int run(const char *json, char **err_text, vkf_validation *val)
{
    vkf_executor_params p = {.registry = reg, .print = on_print, .log = &tlog.log};
    vkf_executor *ex = NULL;
    CHECK(vkf_executor_create(&ex, &p) == 0);
    vkf_graph *g = load(json);
    int err = g ? vkf_executor_run(ex, g, val, err_text) : -100;
    vkf_graph_free(&g);
    vkf_executor_destroy(&ex);
    return err;
}

static void check_execution(void)
{
    printed[0] = 0;
    CHECK_EQ_INT(run("{\"1\":{\"class_type\":\"LuaTestEcho\",\"inputs\":{\"text\":\"ab\",\"times\":3,"
                     "\"sep\":\"/\",\"upper\":true}},"
                     "\"2\":{\"class_type\":\"PreviewAny\",\"inputs\":{\"source\":[\"1\",0]}},"
                     "\"3\":{\"class_type\":\"PreviewAny\",\"inputs\":{\"source\":[\"1\",1]}}}",
                     NULL, NULL),
                 0);
    CHECK_HAS(printed, "AB/AB/AB");
    CHECK_HAS(printed, "=8");

    /* Validation treats Lua nodes like built-ins. */
    vkf_validation v = {0};
    CHECK_EQ_INT(run("{\"1\":{\"class_type\":\"LuaTestEcho\",\"inputs\":{\"text\":\"ab\",\"times\":11,"
                     "\"sep\":\"*\"}},"
                     "\"2\":{\"class_type\":\"PreviewAny\",\"inputs\":{\"source\":[\"1\",0]}}}",
                     NULL, &v),
                 VKF_EVALIDATION);
    char *vj = NULL;
    vkf_validation_to_json(&v, &vj, false);
    CHECK_HAS(vj, "value_bigger_than_max");
    CHECK_HAS(vj, "value_not_in_list");
    vkf_free(vj);
    vkf_validation_clear(&v);

    /* A pack-defined type travels between two nodes of the pack. */
    printed[0] = 0;
    CHECK_EQ_INT(run("{\"1\":{\"class_type\":\"LuaTestCounter\",\"inputs\":{\"n\":7}},"
                     "\"2\":{\"class_type\":\"LuaTestCounterShow\",\"inputs\":{\"counter\":[\"1\",0]}},"
                     "\"3\":{\"class_type\":\"PreviewAny\",\"inputs\":{\"source\":[\"2\",0]}}}",
                     NULL, NULL),
                 0);
    CHECK_HAS(printed, "c7=7");

    /* Errors: pack, file, line, node id. */
    char *msg = NULL;
    CHECK_EQ_INT(run("{\"42\":{\"class_type\":\"LuaTestFail\",\"inputs\":{\"text\":\"boom\"}},"
                     "\"2\":{\"class_type\":\"PreviewAny\",\"inputs\":{\"source\":[\"42\",0]}}}",
                     &msg, NULL),
                 VKF_ERUN);
    CHECK_HAS(msg, "node 42");
    CHECK_HAS(msg, "pack 'good'");
    CHECK_HAS(msg, "good/helpers.lua:8: asked to fail: boom");
    CHECK_HAS(msg, "good/init.lua:35:");
    vkf_free(msg);
    msg = NULL;
    /* An endless loop, even one that pcall-catches its kill, ends. */
    CHECK_EQ_INT(run("{\"7\":{\"class_type\":\"LuaTestLoop\",\"inputs\":{\"text\":\"\"}},"
                     "\"2\":{\"class_type\":\"PreviewAny\",\"inputs\":{\"source\":[\"7\",0]}}}",
                     &msg, NULL),
                 VKF_ERUN);
    CHECK_HAS(msg, "instruction budget");
    CHECK_HAS(msg, "node 7");
    vkf_free(msg);
}

/* Each chunk must fail with an error containing `expect`. */
static void refused(const char *chunk, const char *expect)
{
    char *msg = NULL;
    int err = vkf_lua_run(host, "good", chunk, "=escape", NULL, &msg);
    CHECK_EQ_INT(err, VKF_ERUN);
    CHECK_HAS(msg, expect);
    if (err != VKF_ERUN || !msg || !strstr(msg, expect))
        fprintf(stderr, "  chunk: %s\n  got: %s\n", chunk, msg ? msg : "(success)");
    vkf_free(msg);
}

static void allowed(const char *chunk, double want)
{
    char *msg = NULL;
    double r = -1;
    int err = vkf_lua_run(host, "good", chunk, "=allowed", &r, &msg);
    CHECK_EQ_INT(err, 0);
    if (err)
        fprintf(stderr, "  chunk: %s\n  got: %s\n", chunk, msg ? msg : "?");
    CHECK(r == want);
    vkf_free(msg);
}

static void check_sandbox(const char *tmp)
{
    refused("return io.open('/etc/passwd')", "global 'io'");
    refused("return os.execute('true')", "field 'execute'");
    refused("return os.getenv('HOME')", "field 'getenv'");
    refused("return os.remove('/tmp/x')", "field 'remove'");
    refused("return package.loadlib('libc.so.6', 'system')", "global 'package'");
    refused("return debug.getregistry()", "global 'debug'");
    refused("return dofile('/etc/passwd')", "global 'dofile'");
    refused("return loadfile('/etc/passwd')", "global 'loadfile'");
    refused("return string.dump(print)", "field 'dump'");
    refused("return ('x').dump(print)", "field 'dump'");
    refused("return require('os')", "good/os.lua");
    refused("return require('../../etc/passwd')", "only modules of this pack");
    refused("return require('io')", "good/io.lua");
    refused("local f, e = load('\\27LuaT\\0'); error(e)", "binary chunks are not allowed");
    refused("local f, e = load('return 1', 'x', 'b'); error(e)", "binary chunks are not allowed");
    refused("collectgarbage('stop')", "not allowed");
    refused("collectgarbage('setpause', 1000)", "not allowed");
    refused("while true do end", "instruction budget");
    refused("for i = 1, 1e12 do pcall(error) end", "instruction budget");
    refused("local co = coroutine.wrap(function() while true do end end) co()",
            "instruction budget");
    refused("local t = {} for i = 1, 1e8 do t[i] = i end", "not enough memory");
    refused("return string.rep('x', 1 << 30)", "not enough memory");
    refused("return vkf.node{name = 'Late', outputs = {'INT'}, execute = print}",
            "declared while the pack loads");
    refused("return vkf.weights.open('checkpoints', '../secret.safetensors')",
            "not a safe relative name");
    refused("return vkf.weights.open('checkpoints', '/etc/passwd')", "not a safe relative name");
    refused("return vkf.weights.open('checkpoints', 'link.safetensors')", "vkf.weights.open");
    refused("return vkf.tensor.zeros({2, 2})", "no Vulkan device");
    /* The registry-held os library is not reachable either. */
    allowed("return getmetatable('').__index.dump == nil and 1 or 0", 1);
    allowed("return os.clock() >= 0 and 1 or 0", 1);
    allowed("return type(os.time())", 0);   /* a string: not a number */
    allowed("return collectgarbage('count') > 0 and 1 or 0", 1);
    allowed("local f = load('return 2 + 3') return f()", 5);
    refused("local ok = pcall(function() while true do end end) return 1", "instruction budget");
    (void)tmp;
}

int main(void)
{
    test_log_init(&tlog);
    vkf_cjson_init();
    CHECK(vkf_registry_create(&reg) == 0);
    vkf_lua_params lp = {.log = &tlog.log, .mem_limit = 16u << 20, .instr_budget = 20000000};
    CHECK(vkf_lua_host_create(&lp, &host) == 0);

    /* Model folders for the path checks: a link that leaves the root. */
    char tmp[] = "/tmp/vkf_lua_sandbox_XXXXXX";
    CHECK(mkdtemp(tmp) != NULL);
    char cmd[512];
    snprintf(cmd, sizeof(cmd),
             "mkdir -p %s/models/checkpoints && echo secret > %s/secret.safetensors && "
             "ln -s %s/secret.safetensors %s/models/checkpoints/link.safetensors",
             tmp, tmp, tmp, tmp);
    CHECK(system(cmd) == 0);
    vkf_paths *paths = NULL;
    char models[600];
    snprintf(models, sizeof(models), "%s/models", tmp);
    const char *roots[] = {models};
    vkf_paths_config pc = {.models = roots, .nb_models = 1};
    CHECK(vkf_paths_create_from(&pc, NULL, &paths) == 0);
    vkf_lua_host_set_paths(host, paths);

    load_packs();
    check_declaration();
    check_execution();
    check_sandbox(tmp);

    vkf_lua_host_destroy(&host);
    vkf_registry_destroy(&reg);
    vkf_paths_destroy(&paths);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", tmp);
    CHECK(system(cmd) == 0);
    CHECK_EQ_INT(vkf_alloc_live(), 0);
    return test_exit_code("test_lua_sandbox");
}
