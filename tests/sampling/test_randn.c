/* torch.Generator / torch.randn reproduction against the goldens. */
#include <vkflow/sampling.h>

#include "../test.h"
#include "golden.h"

static void check_mt19937(void)
{
    /* The reference MT19937 (init_genrand(5489)): 10000th output 4123659995. */
    vkf_torch_rng g;
    vkf_torch_rng_seed(&g, 5489);
    CHECK(vkf_torch_rng_random(&g) == 3499211612u);
    for (int i = 1; i < 9999; i++)
        vkf_torch_rng_random(&g);
    CHECK(vkf_torch_rng_random(&g) == 4123659995u);

    /* Only the low 32 bits of the seed reach MT19937; initial_seed keeps all. */
    vkf_torch_rng a, b;
    vkf_torch_rng_seed(&a, 7);
    vkf_torch_rng_seed(&b, (UINT64_C(1) << 32) + 7);
    CHECK(b.seed == (UINT64_C(1) << 32) + 7);
    CHECK(memcmp(a.state, b.state, sizeof(a.state)) == 0);

    /* Reseeding clears the cached normal. */
    vkf_torch_rng_seed(&a, 3);
    vkf_torch_rng_normal_double(&a);
    CHECK(a.has_next_normal);
    vkf_torch_rng_seed(&a, 3);
    CHECK(!a.has_next_normal);
}

static void check_generators(const cJSON *gens)
{
    for (const cJSON *c = gens->child; c; c = c->next) {
        vkf_torch_rng g;
        uint64_t seed = golden_u64(cJSON_GetObjectItem(c, "seed"));
        vkf_torch_rng_seed(&g, seed);
        CHECK(g.seed == golden_u64(cJSON_GetObjectItem(c, "initial_seed")));
        for (const cJSON *v = cJSON_GetObjectItem(c, "random_mod_2_31")->child; v; v = v->next)
            CHECK((vkf_torch_rng_random(&g) & 0x7fffffffu) == golden_u64(v));
        for (const cJSON *v = cJSON_GetObjectItem(c, "random64_mod_2_63")->child; v; v = v->next)
            CHECK((vkf_torch_rng_random64(&g) & INT64_MAX) == golden_u64(v));
        for (const cJSON *v = cJSON_GetObjectItem(c, "uniform_float_bits")->child; v; v = v->next)
            CHECK(f32_bits(vkf_torch_rng_uniform_float(&g)) == (uint32_t)v->valuedouble);
        for (const cJSON *v = cJSON_GetObjectItem(c, "uniform_double")->child; v; v = v->next)
            CHECK(vkf_torch_rng_uniform_double(&g) == v->valuedouble);
        for (const cJSON *v = cJSON_GetObjectItem(c, "normal_double")->child; v; v = v->next)
            CHECK(vkf_torch_rng_normal_double(&g) == v->valuedouble);
    }
}

/* Every case: torch.manual_seed(seed); torch.randn(shape). */
static void check_randn(const cJSON *cases, vkf_randn_kernel kernel, const char *what)
{
    int n_cases = 0, bad_cases = 0;
    size_t values = 0;
    for (const cJSON *c = cases->child; c; c = c->next) {
        size_t n = 1;
        for (const cJSON *d = cJSON_GetObjectItem(c, "shape")->child; d; d = d->next)
            n *= (size_t)d->valuedouble;
        float *out = malloc(n * sizeof(float));
        vkf_torch_rng g;
        vkf_torch_rng_seed(&g, golden_u64(cJSON_GetObjectItem(c, "seed")));
        vkf_torch_randn(&g, out, n, kernel);
        int bad = golden_compare_tensor(c, out, n);
        if (bad) {
            fprintf(stderr, "%s: seed %s, %zu values: %d mismatches\n", what,
                    cJSON_GetObjectItem(c, "seed")->valuestring, n, bad);
            bad_cases++;
        }
        CHECK(bad == 0);
        n_cases++;
        values += n;
        free(out);
    }
    fprintf(stderr, "%s: %d cases, %zu values, %d cases differ\n", what, n_cases, values, bad_cases);
}

int main(void)
{
    cJSON *avx2 = golden_load("sampling_randn.json");
    cJSON *scalar = golden_load("sampling_randn_scalar.json");
    if (!avx2 || !scalar)
        return 77;
    check_mt19937();
    check_generators(cJSON_GetObjectItem(avx2, "generators"));
    check_randn(cJSON_GetObjectItem(avx2, "cases"), VKF_RANDN_AVX2, "randn avx2");
    check_randn(cJSON_GetObjectItem(scalar, "cases"), VKF_RANDN_SCALAR, "randn scalar");
    cJSON_Delete(avx2);
    cJSON_Delete(scalar);
    return test_result("test_randn");
}
