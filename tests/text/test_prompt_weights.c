/*
 * ComfyUI prompt weighting: every case of tests/reference/golden/
 * prompt_weights.json (a restatement of ComfyUI's tokenize_with_weights
 * run over hand-written and random prompts), then cases by hand: nested
 * weights, inf/nan weights, chunking, embeddings through a fake lookup,
 * lookup errors, and every allocation failing in turn.
 */
#include <math.h>

#include "../test.h"
#include "text_test_util.h"
#include "vkflow/models.h"

#define DIM 4

static vkf_clip_tokenizer *tok;

/* Mirrors FAKE_EMBEDS in tests/reference/make_prompt_goldens.py. */
static const struct {
    const char *name;
    int rows;
} fake[] = {{"goodstyle", 1}, {"badhands", 3}, {"Neg-Emb", 2}, {"\xc3\xbcn\xc3\xaf", 1}};

typedef struct lookup_state {
    int calls;
    int fail_with;   /* returned for every name when non-zero */
} lookup_state;

static float fake_value(int name, int row, int col)
{
    return (float)(name * 100 + row * 10 + col) + 0.5f;
}

static int fake_index(const char *name)
{
    for (int i = 0; i < (int)VKF_ARRAY_SIZE(fake); i++)
        if (!strcmp(fake[i].name, name))
            return i;
    return -1;
}

static int fake_lookup(void *opaque, const char *name, int dim, float **vectors, int *n)
{
    lookup_state *st = opaque;
    st->calls++;
    if (st->fail_with)
        return st->fail_with;
    int k = fake_index(name);
    if (k < 0 || dim != DIM)
        return VKF_ENOTFOUND;
    float *v = vkf_malloc((size_t)fake[k].rows * DIM * sizeof(float));
    if (!v)
        return VKF_ENOMEM;
    for (int r = 0; r < fake[k].rows; r++)
        for (int c = 0; c < DIM; c++)
            v[r * DIM + c] = fake_value(k, r, c);
    *vectors = v;
    *n = fake[k].rows;
    return 0;
}

static bool token_matches(const vkf_clip_tokens *out, const vkf_clip_token *t, const cJSON *want)
{
    const cJSON *id = cJSON_GetArrayItem(want, 0);
    float w = (float)cJSON_GetArrayItem(want, 1)->valuedouble;
    if (t->weight != w)
        return false;
    if (cJSON_IsNumber(id))
        return t->id == id->valueint;
    /* ["emb", name, row] */
    int k = -1 - t->id;
    int name = fake_index(cJSON_GetArrayItem(id, 1)->valuestring);
    int row = cJSON_GetArrayItem(id, 2)->valueint;
    if (t->id >= 0 || k >= out->n_embeds || name < 0 || out->embed_dim != DIM)
        return false;
    for (int c = 0; c < DIM; c++)
        if (out->embeds[k * DIM + c] != fake_value(name, row, c))
            return false;
    return true;
}

static void test_goldens(void)
{
    cJSON *j = load_json("VKF_SOURCE_ROOT", ".", "tests/reference/golden/prompt_weights.json");
    CHECK(j);
    const cJSON *c;
    int n = 0, ok = 0;
    test_log log;
    test_log_init(&log);
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(j, "cases")) {
        const char *text = cJSON_GetObjectItem(c, "text")->valuestring;
        lookup_state st = {0};
        vkf_clip_tokenize_params p = {
            .pad_with_end = cJSON_IsTrue(cJSON_GetObjectItem(c, "pad_with_end")),
            .embed_dim = DIM,
            .lookup = cJSON_IsTrue(cJSON_GetObjectItem(c, "embeddings")) ? fake_lookup : NULL,
            .opaque = &st,
            .log = &log.log,
        };
        vkf_clip_tokens out;
        test_log_clear(&log);
        int err = vkf_clip_tokenize_weighted(tok, text, &p, &out);
        bool same;
        n++;
        if (cJSON_GetObjectItem(c, "error")) {
            same = err == VKF_EINVAL && out.tok == NULL;
        } else {
            const cJSON *chunks = cJSON_GetObjectItem(c, "chunks");
            const cJSON *missing = cJSON_GetObjectItem(c, "missing");
            same = err == 0 && out.n_chunks == cJSON_GetArraySize(chunks) &&
                   log.count == cJSON_GetArraySize(missing);
            for (int k = 0; same && k < out.n_chunks; k++) {
                const cJSON *ch = cJSON_GetArrayItem(chunks, k);
                same = cJSON_GetArraySize(ch) == VKF_CLIP_CTX;
                for (int i = 0; same && i < VKF_CLIP_CTX; i++)
                    same = token_matches(&out, &out.tok[k * VKF_CLIP_CTX + i],
                                         cJSON_GetArrayItem(ch, i));
            }
            if (same && cJSON_GetArraySize(missing) > 0) {
                char want[512];
                const cJSON *last = cJSON_GetArrayItem(missing, cJSON_GetArraySize(missing) - 1);
                snprintf(want, sizeof(want), "embedding:%s does not exist", last->valuestring);
                same = strstr(log.last, want) != NULL;
            }
        }
        CHECK(same);
        if (!same) {
            fprintf(stderr, "  prompt: \"%s\" (err %d, %d chunks, %d warnings: %s)\n", text, err,
                    out.n_chunks, log.count, log.last);
            for (int i = 0; i < out.n_chunks * VKF_CLIP_CTX && i < 80; i++)
                fprintf(stderr, " %d:%g", out.tok[i].id, out.tok[i].weight);
            fprintf(stderr, "\n");
        }
        ok += same;
        vkf_clip_tokens_free(&out);
    }
    printf("prompt_weights.json: %d of %d cases match\n", ok, n);
    CHECK(n > 300);
    cJSON_Delete(j);
}

static int run(const char *prompt, bool pad_with_end, lookup_state *st, vkf_clip_tokens *out)
{
    vkf_clip_tokenize_params p = {
        .pad_with_end = pad_with_end, .embed_dim = DIM, .lookup = st ? fake_lookup : NULL,
        .opaque = st};
    return vkf_clip_tokenize_weighted(tok, prompt, &p, out);
}

static void test_by_hand(void)
{
    vkf_clip_tokens out;
    /* "a photo of a cat" with nested and explicit weights */
    CHECK_EQ_INT(run("((a photo)) of (a cat:0.5)", true, NULL, &out), 0);
    CHECK_EQ_INT(out.n_chunks, 1);
    const int32_t ids[] = {VKF_CLIP_BOS, 320, 1125, 539, 320, 2368, VKF_CLIP_EOS, VKF_CLIP_EOS};
    const float w[] = {1.0f, (float)(1.1 * 1.1), (float)(1.1 * 1.1), 1.0f, 0.5f, 0.5f, 1.0f, 1.0f};
    for (int i = 0; i < 8; i++) {
        CHECK_EQ_INT(out.tok[i].id, ids[i]);
        CHECK(out.tok[i].weight == w[i]);
    }
    CHECK(out.tok[76].id == VKF_CLIP_EOS && out.tok[76].weight == 1.0f);
    CHECK(out.embeds == NULL && out.n_embeds == 0);
    vkf_clip_tokens_free(&out);
    CHECK(out.tok == NULL && out.n_chunks == 0);

    /* empty prompt: one chunk; padding with 0 for OpenCLIP */
    CHECK_EQ_INT(run("", false, NULL, &out), 0);
    CHECK_EQ_INT(out.n_chunks, 1);
    CHECK(out.tok[0].id == VKF_CLIP_BOS && out.tok[1].id == VKF_CLIP_EOS && out.tok[2].id == 0 &&
          out.tok[76].id == 0);
    vkf_clip_tokens_free(&out);

    /* NULL params: SD1 defaults (pad with the end token) */
    CHECK_EQ_INT(vkf_clip_tokenize_weighted(tok, "x", NULL, &out), 0);
    CHECK(out.n_chunks == 1 && out.tok[3].id == VKF_CLIP_EOS);
    vkf_clip_tokens_free(&out);

    /* weights Python's float() gives: inf and nan */
    CHECK_EQ_INT(run("(a:inf) (b:-Infinity) (c:nan)", true, NULL, &out), 0);
    CHECK(isinf(out.tok[1].weight) && out.tok[1].weight > 0);
    CHECK(isinf(out.tok[2].weight) && out.tok[2].weight < 0);
    CHECK(isnan(out.tok[3].weight));
    vkf_clip_tokens_free(&out);

    /* 75 one-token words fill chunk 0; a 3-token group moves whole */
    char buf[2048] = "";
    for (int i = 0; i < 74; i++)
        strcat(buf, "(a:1.5) ");
    strcat(buf, "(x, y:0.7)");
    CHECK_EQ_INT(run(buf, true, NULL, &out), 0);
    CHECK_EQ_INT(out.n_chunks, 2);
    CHECK(out.tok[74].id == 320 && out.tok[74].weight == 1.5f);
    CHECK(out.tok[75].id == VKF_CLIP_EOS && out.tok[76].id == VKF_CLIP_EOS);
    CHECK(out.tok[77].id == VKF_CLIP_BOS && out.tok[78].weight == 0.7f &&
          out.tok[80].weight == 0.7f && out.tok[81].id == VKF_CLIP_EOS);
    vkf_clip_tokens_free(&out);

    /* embeddings: rows appended in order, ids -1 - row */
    lookup_state st = {0};
    CHECK_EQ_INT(run("embedding:badhands (embedding:goodstyle:1.3)", true, &st, &out), 0);
    CHECK_EQ_INT(out.n_embeds, 4);
    CHECK_EQ_INT(out.embed_dim, DIM);
    CHECK(out.tok[1].id == -1 && out.tok[3].id == -3 && out.tok[4].id == -4);
    CHECK(out.tok[4].weight == 1.3f && out.tok[5].id == VKF_CLIP_EOS);
    CHECK(out.embeds[3 * DIM + 2] == fake_value(0, 0, 2));
    CHECK_EQ_INT(st.calls, 2);
    vkf_clip_tokens_free(&out);

    /* lookup errors: out of memory propagates; others drop the word */
    test_log log;
    test_log_init(&log);
    st = (lookup_state){.fail_with = VKF_ENOMEM};
    vkf_clip_tokenize_params p = {.pad_with_end = true, .embed_dim = DIM, .lookup = fake_lookup,
                                  .opaque = &st, .log = &log.log};
    CHECK_EQ_INT(vkf_clip_tokenize_weighted(tok, "a embedding:x b",
                                            &p, &out), VKF_ENOMEM);
    CHECK(out.tok == NULL);
    st = (lookup_state){.fail_with = VKF_EIO};
    CHECK_EQ_INT(vkf_clip_tokenize_weighted(tok, "a embedding:x b",
                                            &p, &out), 0);
    CHECK(out.tok[1].id == 320 && out.tok[2].id == 321 && out.tok[3].id == VKF_CLIP_EOS);
    CHECK_HAS(log.last, "embedding:x does not exist");
    CHECK_EQ_INT(log.count, 2);
    vkf_clip_tokens_free(&out);
    /* "embedding:" without a name fails, as it does in ComfyUI */
    test_log_clear(&log);
    st = (lookup_state){0};
    CHECK_EQ_INT(vkf_clip_tokenize_weighted(tok, "a embedding:\n",
                                            &p, &out), VKF_EINVAL);
    CHECK_HAS(log.last, "not followed by a name");
    p.embed_dim = 0;
    CHECK_EQ_INT(vkf_clip_tokenize_weighted(tok, "a", &p, &out),
                 VKF_EINVAL);
    CHECK_EQ_INT(vkf_clip_tokenize_weighted(tok, NULL, NULL, &out),
                 VKF_EINVAL);
    vkf_clip_tokens_free(NULL);

    /* nesting: 1000 levels work (1.1^1000 overflows float), deeper fails
     * as it does in ComfyUI (Python's recursion limit) */
    for (int depth = 999; depth <= 1001; depth++) {
        char *deep = malloc((size_t)depth * 2 + 2);
        memset(deep, '(', (size_t)depth);
        deep[depth] = 'a';
        memset(deep + depth + 1, ')', (size_t)depth);
        deep[2 * depth + 1] = 0;
        test_log_clear(&log);
        p = (vkf_clip_tokenize_params){.pad_with_end = true, .log = &log.log};
        int err = vkf_clip_tokenize_weighted(tok, deep, &p, &out);
        if (depth <= 1000) {
            CHECK_EQ_INT(err, 0);
            CHECK(out.tok && out.tok[1].id == 320 && isinf(out.tok[1].weight));
        } else {
            CHECK_EQ_INT(err, VKF_EINVAL);
            CHECK_HAS(log.last, "nested more than 1000 levels");
        }
        vkf_clip_tokens_free(&out);
        free(deep);
    }
    /* unclosed parentheses are text, however many */
    char *open = malloc(5002);
    memset(open, '(', 5000);
    open[5000] = 'a';
    open[5001] = 0;
    CHECK_EQ_INT(run(open, true, NULL, &out), 0);
    CHECK(out.n_chunks > 1 && out.tok[1].weight == 1.0f);
    vkf_clip_tokens_free(&out);
    free(open);
}

static void test_alloc_failures(void)
{
    long live0 = vkf_alloc_live();
    bool done = false;
    for (long k = 0; !done && k < 100000; k++) {
        lookup_state st = {0};
        vkf_clip_tokens out;
        vkf_alloc_fail_at(k);
        int err = run("(masterpiece:1.2), \\(x\\) embedding:badhands, ((Ελληνικά)) "
                      "embedding:missing, a long long long prompt (weight written long:"
                      "                                                                1.5)",
                      true, &st, &out);
        bool failed = vkf_alloc_failed();
        vkf_alloc_fail_at(-1);
        if (failed) {
            CHECK_EQ_INT(err, VKF_ENOMEM);
            CHECK(out.tok == NULL && out.embeds == NULL);
        } else {
            CHECK_EQ_INT(err, 0);
            CHECK_EQ_INT(out.n_embeds, 3);
            done = true;
        }
        vkf_clip_tokens_free(&out);
        CHECK_EQ_INT(vkf_alloc_live(), live0);
    }
    CHECK(done);
}

int main(void)
{
    CHECK_EQ_INT(vkf_clip_tokenizer_create(&tok), 0);
    if (!tok)
        return test_exit_code("test_prompt_weights");
    test_goldens();
    test_by_hand();
    test_alloc_failures();
    vkf_clip_tokenizer_destroy(&tok);
    return test_exit_code("test_prompt_weights");
}
