/* Unit tests of the YAML-subset parser (core/yaml.c). */
#include "harness.h"
#include "yaml.h"

static test_log tl;

static vkf_yaml_node *parse_ok(const char *text)
{
    vkf_yaml_node *n = NULL;
    test_log_clear(&tl);
    int err = vkf_yaml_parse(text, strlen(text), "t.yaml", &tl.log, &n);
    if (err != 0)
        fprintf(stderr, "  unexpected error %d (%s) for:\n%s\n", err, tl.last, text);
    CHECK_EQ_INT(err, 0);
    return n;
}

/* Expects VKF_EPARSE with "t.yaml:<line>:" in the logged message. */
static void parse_bad(const char *text, size_t len, int line)
{
    vkf_yaml_node *n = NULL;
    char want[64];
    test_log_clear(&tl);
    int err = vkf_yaml_parse(text, len, "t.yaml", &tl.log, &n);
    CHECK_EQ_INT(err, VKF_EPARSE);
    CHECK(n == NULL);
    snprintf(want, sizeof(want), "t.yaml:%d:", line);
    if (strncmp(tl.last, want, strlen(want)) != 0) {
        fprintf(stderr, "  expected '%s...' got '%s' for:\n%s\n", want, tl.last, text);
        CHECK(!"error names file and line");
    }
    vkf_yaml_free(&n);
}

static const char *get_str(const vkf_yaml_node *map, const char *key)
{
    const vkf_yaml_node *v = vkf_yaml_map_get(map, key);
    return v && v->type == VKF_YAML_SCALAR ? v->scalar : NULL;
}

static void test_maps_and_comments(void)
{
    vkf_yaml_node *n = parse_ok("# leading comment\n"
                                "---\n"
                                "a111:\n"
                                "    base_path: /srv/sd   # trailing comment\n"
                                "\n"
                                "    checkpoints: models/Stable-diffusion\n"
                                "    url: http://x/y#frag\n"
                                "    win: C:\\models\\x\n"
                                "comfyui:\n"
                                "  is_default: true\n"
                                "  'quoted key': \"a\\tb\\u00e9\"\n"
                                "  single: 'it''s # not a comment'\n"
                                "  empty:\n"
                                "  nul: ~\n"
                                "  n2: null\n"
                                "  dup: first\n"
                                "  dup: second\n"
                                "...\n");
    CHECK(n && n->type == VKF_YAML_MAP);
    if (!n)
        return;
    CHECK_EQ_INT(n->n, 2);
    CHECK_STR(n->entries[0].key, "a111");
    const vkf_yaml_node *a = vkf_yaml_map_get(n, "a111");
    CHECK_STR(get_str(a, "base_path"), "/srv/sd");
    CHECK_STR(get_str(a, "checkpoints"), "models/Stable-diffusion");
    CHECK_STR(get_str(a, "url"), "http://x/y#frag");
    CHECK_STR(get_str(a, "win"), "C:\\models\\x");
    CHECK_EQ_INT(vkf_yaml_map_get(a, "checkpoints")->line, 6);
    const vkf_yaml_node *c = vkf_yaml_map_get(n, "comfyui");
    CHECK(vkf_yaml_is_true(vkf_yaml_map_get(c, "is_default")));
    CHECK(!vkf_yaml_is_true(vkf_yaml_map_get(c, "single")));
    CHECK_STR(get_str(c, "quoted key"), "a\tb\xc3\xa9");
    CHECK_STR(get_str(c, "single"), "it's # not a comment");
    CHECK_EQ_INT(vkf_yaml_map_get(c, "empty")->type, VKF_YAML_NULL);
    CHECK_EQ_INT(vkf_yaml_map_get(c, "nul")->type, VKF_YAML_NULL);
    CHECK_EQ_INT(vkf_yaml_map_get(c, "n2")->type, VKF_YAML_NULL);
    CHECK_STR(get_str(c, "dup"), "second");
    int dups = 0;
    for (int i = 0; i < c->n; i++)
        dups += strcmp(c->entries[i].key, "dup") == 0;
    CHECK_EQ_INT(dups, 1);
    vkf_yaml_free(&n);
    CHECK(n == NULL);

    /* quoted "true" is a string, not a boolean */
    n = parse_ok("a: \"true\"\nb: yes\nc: True\n");
    CHECK(!vkf_yaml_is_true(vkf_yaml_map_get(n, "a")));
    CHECK(vkf_yaml_is_true(vkf_yaml_map_get(n, "b")));
    CHECK(vkf_yaml_is_true(vkf_yaml_map_get(n, "c")));
    vkf_yaml_free(&n);
}

static void test_block_scalars(void)
{
    vkf_yaml_node *n = parse_ok("s:\n"
                                "  lit: |\n"
                                "    one/path\n"
                                "    two/path\n"
                                "\n"
                                "      indented\n"
                                "    # not a comment\n"
                                "\n"
                                "\n"
                                "  strip: |-\n"
                                "    a\n"
                                "    b\n"
                                "  keep: |+\n"
                                "    a\n"
                                "\n"
                                "  fold: >\n"
                                "    a\n"
                                "    b\n"
                                "\n"
                                "    c\n"
                                "  ind: |2\n"
                                "      x\n"
                                "  empty: |\n"
                                "  after: z\n");
    const vkf_yaml_node *s = vkf_yaml_map_get(n, "s");
    CHECK_STR(get_str(s, "lit"), "one/path\ntwo/path\n\n  indented\n# not a comment\n");
    CHECK_STR(get_str(s, "strip"), "a\nb");
    CHECK_STR(get_str(s, "keep"), "a\n\n");
    CHECK_STR(get_str(s, "fold"), "a b\nc\n");
    CHECK_STR(get_str(s, "ind"), "  x\n");
    CHECK_STR(get_str(s, "empty"), "");
    CHECK_STR(get_str(s, "after"), "z");
    vkf_yaml_free(&n);

    /* CRLF, BOM, block scalar at the end of the file without a newline */
    n = parse_ok("\xEF\xBB\xBFk:\r\n  v: |\r\n    p1\r\n    p2");
    CHECK_STR(get_str(vkf_yaml_map_get(n, "k"), "v"), "p1\np2\n");
    vkf_yaml_free(&n);
}

static void test_sequences(void)
{
    vkf_yaml_node *n = parse_ok("a:\n"
                                "- x\n"
                                "- 'y'\n"
                                "b:\n"
                                "  - k: 1\n"
                                "    l: 2\n"
                                "  -\n"
                                "    nested\n"
                                "  - - inner\n"
                                "c: 3\n");
    const vkf_yaml_node *a = vkf_yaml_map_get(n, "a");
    CHECK(a && a->type == VKF_YAML_SEQ && a->n == 2);
    if (a && a->n == 2) {
        CHECK_STR(a->entries[0].value->scalar, "x");
        CHECK_STR(a->entries[1].value->scalar, "y");
    }
    const vkf_yaml_node *b = vkf_yaml_map_get(n, "b");
    CHECK(b && b->type == VKF_YAML_SEQ && b->n == 3);
    if (b && b->n == 3) {
        CHECK_STR(get_str(b->entries[0].value, "k"), "1");
        CHECK_STR(get_str(b->entries[0].value, "l"), "2");
        CHECK_STR(b->entries[1].value->scalar, "nested");
        CHECK(b->entries[2].value->type == VKF_YAML_SEQ);
    }
    CHECK_STR(get_str(n, "c"), "3");
    vkf_yaml_free(&n);
}

static void test_empty(void)
{
    vkf_yaml_node *n = parse_ok("# only comments\n\n   \n");
    CHECK(n && n->type == VKF_YAML_NULL);
    vkf_yaml_free(&n);
    n = parse_ok("");
    CHECK(n && n->type == VKF_YAML_NULL);
    vkf_yaml_free(&n);
}

static void test_errors(void)
{
#define BAD(text, line) parse_bad(text, strlen(text), line)
    BAD("a:\n  b: 1\n   c: 2\n", 3);              /* deeper indentation */
    BAD("a: 1\n  b: 2\n", 2);                     /* continuation of a plain value */
    BAD("a:\n\tb: 1\n", 2);                       /* tab indentation */
    BAD("a: [1, 2]\n", 1);                        /* flow sequence */
    BAD("a:\n  b: {x: 1}\n", 2);                  /* flow mapping */
    BAD("a: &anchor x\n", 1);
    BAD("a: \"unterminated\n", 1);
    BAD("a: 'x' y\n", 1);
    BAD("a: \"bad \\q escape\"\n", 1);
    BAD("a: b: c\n", 1);
    BAD("a: 1\njust text\n", 2);
    BAD("a: 1\n---\nb: 2\n", 2);
    BAD("%YAML 1.2\n---\na: 1\n", 1);
    BAD("  a: 1\nb: 2\n", 2);
    BAD("a:\n  - x\n  y: 1\n", 3);
    BAD("a: |x\n  t\n", 1);
    BAD("? complex\n", 1);
    BAD("a: \"\\u0000\"\n", 1);
    parse_bad("a: 1\nb: x\0y\n", 12, 2);          /* NUL byte */
    char deep[4096] = "";
    for (int i = 0; i < 80; i++) {
        char line[200];
        snprintf(line, sizeof(line), "%*sk%d:\n", i, "", i);
        strcat(deep, line);
    }
    BAD(deep, 65);
#undef BAD
}

static void test_alloc_failures(void)
{
    const char *text = "a111:\n"
                       "  base_path: ~/sd\n"
                       "  checkpoints: |\n"
                       "    a\n"
                       "    b\n"
                       "  list:\n"
                       "    - 'x'\n"
                       "    - \"y\\u00e9\"\n"
                       "    - k: v\n"
                       "  fold: >-\n"
                       "    p\n"
                       "    q\n"
                       "dup: 1\n"
                       "dup: 2\n";
    long live0 = vkf_alloc_live();
    int n_fail = 0;
    for (long i = 0; i < 10000; i++) {
        vkf_yaml_node *n = NULL;
        vkf_alloc_fail_at(i);
        int err = vkf_yaml_parse(text, strlen(text), "t.yaml", NULL, &n);
        bool fired = vkf_alloc_failed();
        vkf_alloc_fail_at(-1);
        if (!fired) {
            CHECK_EQ_INT(err, 0);
            CHECK(n != NULL);
            vkf_yaml_free(&n);
            CHECK_EQ_INT(vkf_alloc_live(), live0);
            break;
        }
        n_fail++;
        if (err != VKF_ENOMEM || n != NULL)
            fprintf(stderr, "  allocation %ld: err %d\n", i, err);
        CHECK_EQ_INT(err, VKF_ENOMEM);
        CHECK(n == NULL);
        vkf_yaml_free(&n);
        CHECK_EQ_INT(vkf_alloc_live(), live0);
    }
    CHECK(n_fail > 10);
}

static void test_file(void)
{
    char *dir = test_mkdtemp("yaml");
    char path[4200];
    vkf_yaml_node *n = NULL;
    test_write(dir, "x.yaml", "k: v\n");
    snprintf(path, sizeof(path), "%s/x.yaml", dir);
    CHECK_EQ_INT(vkf_yaml_parse_file(path, &tl.log, &n), 0);
    CHECK_STR(get_str(n, "k"), "v");
    vkf_yaml_free(&n);
    snprintf(path, sizeof(path), "%s/missing.yaml", dir);
    CHECK_EQ_INT(vkf_yaml_parse_file(path, &tl.log, &n), VKF_ENOTFOUND);
    CHECK_EQ_INT(vkf_yaml_parse_file(dir, &tl.log, &n), VKF_EIO);
    test_rmtree(dir);
    free(dir);
}

int main(void)
{
    test_log_init(&tl);
    long live0 = vkf_alloc_live();
    test_maps_and_comments();
    test_block_scalars();
    test_sequences();
    test_empty();
    test_errors();
    test_file();
    test_alloc_failures();
    CHECK_EQ_INT(vkf_alloc_live(), live0);
    return test_exit_code("test_yaml");
}
