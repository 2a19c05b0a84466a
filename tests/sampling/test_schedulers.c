/*
 * Model sampling tables and every scheduler against the goldens.
 *
 * Tolerance: each float32 sigma within 1e-6 relative of ComfyUI's (or both
 * exactly 0 / both NaN), with the same count.  On top of that every value is
 * currently bit-identical and the test insists on it; it prints the tally per
 * scheduler and the largest relative error so a drift is easy to locate.
 */
#include <vkflow/sampling.h>

#include "../test.h"
#include "golden.h"
#include "sampling/torch_ops.h"

#define REL_TOL 1e-6

static double max_rel;
static long n_values, n_exact;

/* per node/scheduler tallies, printed at the end */
#define MAX_KINDS 64
static struct {
    char name[64];
    long values, exact;
    double max_rel;
} kinds[MAX_KINDS];
static int n_kinds, cur_kind = -1;

static void set_kind(const char *name)
{
    for (cur_kind = 0; cur_kind < n_kinds; cur_kind++)
        if (!strcmp(kinds[cur_kind].name, name))
            return;
    if (n_kinds == MAX_KINDS) {
        cur_kind = -1;
        return;
    }
    snprintf(kinds[n_kinds].name, sizeof(kinds[0].name), "%s", name);
    cur_kind = n_kinds++;
}

static int close_enough(double want, double got)
{
    n_values++;
    if (cur_kind >= 0)
        kinds[cur_kind].values++;
    if ((isnan(want) && isnan(got)) || want == got) {
        n_exact++;
        if (cur_kind >= 0)
            kinds[cur_kind].exact++;
        return 1;
    }
    if (isnan(want) || isnan(got))
        return 0;
    double rel = fabs(got - want) / fmax(fabs(want), 1e-30);
    if (rel > max_rel)
        max_rel = rel;
    if (cur_kind >= 0 && rel > kinds[cur_kind].max_rel)
        kinds[cur_kind].max_rel = rel;
    return rel <= REL_TOL;
}

static int compare_list(const cJSON *want, const float *got, int count, const char *what)
{
    int n = cJSON_GetArraySize(want), bad = 0;
    if (n != count) {
        fprintf(stderr, "%s: %d sigmas, want %d\n", what, count, n);
        return 1;
    }
    int i = 0;
    for (const cJSON *w = want->child; w; w = w->next, i++) {
        /* goldens hold the shortest decimal of each float32 */
        double wv = cJSON_IsNumber(w) ? (float)w->valuedouble : NAN;
        if (!close_enough(wv, got[i])) {
            fprintf(stderr, "%s: [%d] %.9g, want %.9g\n", what, i, (double)got[i], wv);
            bad++;
        }
    }
    return bad;
}

static vkf_model_sampling *make_model(const char *name)
{
    vkf_model_sampling *ms = NULL;
    if (!strcmp(name, "sd1"))
        vkf_model_sampling_discrete(&ms, VKF_PREDICTION_EPS, 0.00085, 0.012, 1000, false);
    else if (!strcmp(name, "sdxl_zsnr"))
        vkf_model_sampling_discrete(&ms, VKF_PREDICTION_V, 0.00085, 0.012, 1000, true);
    else if (!strcmp(name, "sd3"))
        vkf_model_sampling_flow(&ms, 3.0, 1000.0);
    else if (!strcmp(name, "auraflow"))
        vkf_model_sampling_flow(&ms, 1.73, 1.0);
    else if (!strcmp(name, "flux"))
        vkf_model_sampling_flux(&ms, 1.15);
    return ms;
}

static void check_tables(const cJSON *tables)
{
    for (const cJSON *t = tables->child; t; t = t->next) {
        vkf_model_sampling *ms = make_model(t->string);
        CHECK(ms != NULL);
        if (!ms)
            continue;
        CHECK(ms->count == cJSON_GetObjectItem(t, "count")->valueint);
        uint64_t want = strtoull(cJSON_GetObjectItem(t, "fnv1a64")->valuestring, NULL, 16);
        bool table_exact = fnv1a64_f32(ms->sigmas, (size_t)ms->count) == want;
        fprintf(stderr, "%s: sigma table %s\n", t->string,
                table_exact ? "bit-identical" : "differs (checked by tolerance)");
        const cJSON *idx = cJSON_GetObjectItem(t, "index");
        const cJSON *sig = cJSON_GetObjectItem(t, "sigmas");
        const cJSON *lsig = cJSON_GetObjectItem(t, "log_sigmas");
        const cJSON *s = sig->child, *l = lsig ? lsig->child : NULL;
        for (const cJSON *i = idx->child; i; i = i->next, s = s->next) {
            CHECK(close_enough((float)s->valuedouble, ms->sigmas[i->valueint]));
            if (l) {
                CHECK(close_enough((float)l->valuedouble, ms->log_sigmas[i->valueint]));
                l = l->next;
            }
        }
        if (ms->log_sigmas) {
            uint64_t lw = strtoull(cJSON_GetObjectItem(t, "log_fnv1a64")->valuestring, NULL, 16);
            fprintf(stderr, "%s: log-sigma table %s\n", t->string,
                    fnv1a64_f32(ms->log_sigmas, (size_t)ms->count) == lw ? "bit-identical" : "differs");
        }
        for (const cJSON *p = cJSON_GetObjectItem(t, "sigma_at")->child; p; p = p->next) {
            double tv = p->child->valuedouble, want_s = p->child->next->valuedouble;
            CHECK(close_enough(want_s, vkf_model_sampling_sigma(ms, (float)tv)));
        }
        for (const cJSON *p = cJSON_GetObjectItem(t, "timestep_of")->child; p; p = p->next) {
            double sv = p->child->valuedouble, want_t = p->child->next->valuedouble;
            CHECK(close_enough(want_t, vkf_model_sampling_timestep(ms, (float)sv)));
        }
        for (const cJSON *p = cJSON_GetObjectItem(t, "percent_to_sigma")->child; p; p = p->next) {
            double pv = p->child->valuedouble, want_p = p->child->next->valuedouble;
            CHECK(close_enough(want_p, vkf_model_sampling_percent_to_sigma(ms, pv)));
        }
        vkf_model_sampling_destroy(&ms);
        CHECK(ms == NULL);
    }
}

static char kind_name_buf[64];

static void load_bits(const cJSON *arr, float *v)
{
    int i = 0;
    for (const cJSON *b = arr->child; b && i < 16; b = b->next, i++) {
        uint32_t u = (uint32_t)b->valuedouble;
        memcpy(&v[i], &u, sizeof(u));
    }
}

static int same_bits(const cJSON *want, const float *got)
{
    float w[16];
    load_bits(want, w);
    return memcmp(w, got, sizeof(w)) == 0;
}

/* The prediction-type formulas must be bit-identical (plain IEEE ops). */
static void check_formulas(const cJSON *f)
{
    float x[16], mo[16], noise[16], latent[16], out[16];
    load_bits(cJSON_GetObjectItem(f, "x"), x);
    load_bits(cJSON_GetObjectItem(f, "model_output"), mo);
    load_bits(cJSON_GetObjectItem(f, "noise"), noise);
    load_bits(cJSON_GetObjectItem(f, "latent"), latent);
    vkf_model_sampling *eps = make_model("sd1"), *flow = make_model("sd3"), *v = NULL;
    vkf_model_sampling_discrete(&v, VKF_PREDICTION_V, 0.00085, 0.012, 1000, false);
    for (const cJSON *c = cJSON_GetObjectItem(f, "cases")->child; c; c = c->next) {
        const char *pred = cJSON_GetObjectItem(c, "prediction")->valuestring;
        const vkf_model_sampling *ms = !strcmp(pred, "eps") ? eps : !strcmp(pred, "v") ? v : flow;
        float sigma = (float)cJSON_GetObjectItem(c, "sigma")->valuedouble;
        vkf_model_sampling_calculate_input(ms, sigma, x, out, 16);
        CHECK(same_bits(cJSON_GetObjectItem(c, "input"), out));
        vkf_model_sampling_calculate_denoised(ms, sigma, mo, x, out, 16);
        CHECK(same_bits(cJSON_GetObjectItem(c, "denoised"), out));
        vkf_model_sampling_noise_scaling(ms, sigma, noise, latent, false, out, 16);
        CHECK(same_bits(cJSON_GetObjectItem(c, "noise_scaling"), out));
        vkf_model_sampling_noise_scaling(ms, sigma, noise, latent, true, out, 16);
        CHECK(same_bits(cJSON_GetObjectItem(c, "noise_scaling_max"), out));
        vkf_model_sampling_inverse_noise_scaling(ms, sigma, latent, out, 16);
        CHECK(same_bits(cJSON_GetObjectItem(c, "inverse"), out));
    }
    CHECK(vkf_model_sampling_max_denoise(eps, vkf_model_sampling_sigma_max(eps)));
    CHECK(vkf_model_sampling_max_denoise(eps, 14.6145f));
    CHECK(!vkf_model_sampling_max_denoise(eps, 14.6f));
    CHECK(vkf_model_sampling_max_denoise(eps, 20.0f));
    CHECK(vkf_model_sampling_max_denoise(flow, 1.0f));
    CHECK(!vkf_model_sampling_max_denoise(flow, 0.99f));
    vkf_model_sampling_destroy(&eps);
    vkf_model_sampling_destroy(&flow);
    vkf_model_sampling_destroy(&v);
}

/* torch_expf, SLEEF tanf and powf against torch on 512 inputs each ("x": "same"
 * reuses the previous inputs). */
static void check_functions(const cJSON *fns)
{
    static float x[512], y[512];
    int n = 0;
    for (const cJSON *f = fns->child; f; f = f->next) {
        const char *op = cJSON_GetObjectItem(f, "op")->valuestring;
        const cJSON *xs = cJSON_GetObjectItem(f, "x");
        int bad = 0;
        if (cJSON_IsArray(xs)) {
            n = 0;
            for (const cJSON *b = xs->child; b && n < 512; b = b->next, n++) {
                uint32_t u = (uint32_t)b->valuedouble;
                memcpy(&x[n], &u, sizeof(u));
            }
        }
        if (!strcmp(op, "exp")) {
            for (int i = 0; i < n; i++)
                y[i] = torch_expf(x[i]);
        } else if (!strcmp(op, "tan")) {
            for (int i = 0; i < n; i++)
                y[i] = sleef_tanf(x[i]);
        } else {
            memcpy(y, x, (size_t)n * sizeof(float));
            torch_pow_f32(y, n, cJSON_GetObjectItem(f, "exponent")->valuedouble);
        }
        int i = 0;
        for (const cJSON *b = cJSON_GetObjectItem(f, "y")->child; b && i < n; b = b->next, i++)
            bad += f32_bits(y[i]) != (uint32_t)b->valuedouble;
        if (bad)
            fprintf(stderr, "torch %s: %d of %d values differ\n", op, bad, n);
        CHECK(bad == 0);
    }
}

static double num(const cJSON *c, const char *key)
{
    return cJSON_GetObjectItem(c, key)->valuedouble;
}

static void check_case(const cJSON *c, vkf_model_sampling **models, const char **names, int n_models)
{
    const char *node = cJSON_GetObjectItem(c, "node")->valuestring;
    const cJSON *want = cJSON_GetObjectItem(c, "sigmas");
    const cJSON *model = cJSON_GetObjectItem(c, "model");
    const vkf_model_sampling *ms = NULL;
    for (int i = 0; model && i < n_models; i++)
        if (!strcmp(names[i], model->valuestring))
            ms = models[i];
    int steps = (int)num(c, "steps");
    float fixed[128];
    float *got = NULL;
    int count = 0, err = 0;
    char what[256];
    const cJSON *sched = cJSON_GetObjectItem(c, "scheduler");
    snprintf(what, sizeof(what), "%s %s %s steps %d", node, model ? model->valuestring : "",
             sched ? sched->valuestring : "", steps);
    snprintf(kind_name_buf, sizeof(kind_name_buf), "%s%s%s", node, sched ? " " : "",
             sched ? sched->valuestring : "");
    set_kind(kind_name_buf);

    if (!strcmp(node, "KSampler") || !strcmp(node, "BasicScheduler")) {
        vkf_scheduler s;
        CHECK(vkf_scheduler_from_name(cJSON_GetObjectItem(c, "scheduler")->valuestring, &s) == 0);
        if (!strcmp(node, "KSampler"))
            err = vkf_ksampler_sigmas(ms, s, steps, num(c, "denoise"),
                                      cJSON_IsTrue(cJSON_GetObjectItem(c, "discard_penultimate")),
                                      &got, &count);
        else
            err = vkf_basic_scheduler_sigmas(ms, s, steps, num(c, "denoise"), &got, &count);
        CHECK(err == 0);
        CHECK(compare_list(want, got, count, what) == 0);
        vkf_free(got);
        return;
    }
    if (!strcmp(node, "BetaSamplingScheduler")) {
        err = vkf_sigmas_beta(ms, steps, num(c, "alpha"), num(c, "beta"), &got, &count);
        CHECK(err == 0);
        CHECK(compare_list(want, got, count, what) == 0);
        vkf_free(got);
        return;
    }
    if (!strcmp(node, "KarrasScheduler")) {
        vkf_sigmas_karras(steps, num(c, "sigma_min"), num(c, "sigma_max"), num(c, "rho"), fixed);
        count = steps + 1;
    } else if (!strcmp(node, "ExponentialScheduler")) {
        vkf_sigmas_exponential(steps, num(c, "sigma_min"), num(c, "sigma_max"), fixed);
        count = steps + 1;
    } else if (!strcmp(node, "PolyexponentialScheduler")) {
        vkf_sigmas_polyexponential(steps, num(c, "sigma_min"), num(c, "sigma_max"), num(c, "rho"),
                                   fixed);
        count = steps + 1;
    } else if (!strcmp(node, "SDTurboScheduler")) {
        vkf_sigmas_sd_turbo(ms, steps, num(c, "denoise"), fixed, &count);
    } else if (!strcmp(node, "AlignYourStepsScheduler")) {
        const char *type = cJSON_GetObjectItem(c, "model_type")->valuestring;
        vkf_ays_model m = !strcmp(type, "SD1") ? VKF_AYS_SD1 : !strcmp(type, "SDXL") ? VKF_AYS_SDXL
                                                                                    : VKF_AYS_SVD;
        CHECK(vkf_sigmas_align_your_steps(m, steps, num(c, "denoise"), fixed, &count) == 0);
    } else {
        fprintf(stderr, "unknown node %s\n", node);
        CHECK(0);
        return;
    }
    CHECK(compare_list(want, fixed, count, what) == 0);
}

static void check_split_flip(void)
{
    int hc, lo, lc;
    vkf_split_sigmas(11, 0, &hc, &lo, &lc);
    CHECK(hc == 1 && lo == 0 && lc == 11);
    vkf_split_sigmas(11, 4, &hc, &lo, &lc);
    CHECK(hc == 5 && lo == 4 && lc == 7);
    vkf_split_sigmas(11, 30, &hc, &lo, &lc);
    CHECK(hc == 11 && lo == 11 && lc == 0);

    vkf_split_sigmas_denoise(21, 1.0, &hc, &lo, &lc);   /* total 20 */
    CHECK(hc == 1 && lo == 0 && lc == 21);
    vkf_split_sigmas_denoise(21, 0.5, &hc, &lo, &lc);   /* total 10 */
    CHECK(hc == 11 && lo == 10 && lc == 11);
    vkf_split_sigmas_denoise(21, 0.0, &hc, &lo, &lc);   /* sigmas[:-0] is empty */
    CHECK(hc == 0 && lo == 20 && lc == 1);
    vkf_split_sigmas_denoise(5, 0.625, &hc, &lo, &lc);  /* round(2.5) = 2 */
    CHECK(hc == 3 && lo == 2 && lc == 3);
    vkf_split_sigmas_denoise(0, 0.5, &hc, &lo, &lc);
    CHECK(hc == 0 && lo == 0 && lc == 0);

    float s[4] = {3.0f, 2.0f, 1.0f, 0.0f};
    vkf_flip_sigmas(s, 4);
    CHECK(s[0] == 0.0001f && s[1] == 1.0f && s[2] == 2.0f && s[3] == 3.0f);
    float one[1] = {5.0f};
    vkf_flip_sigmas(one, 1);
    CHECK(one[0] == 5.0f);
    vkf_flip_sigmas(NULL, 0);

    vkf_scheduler sc;
    CHECK(vkf_scheduler_from_name("kl_optimal", &sc) == 0 && sc == VKF_SCHEDULER_KL_OPTIMAL);
    CHECK(vkf_scheduler_from_name("nope", &sc) == VKF_ENOTFOUND);
    CHECK(!strcmp(vkf_scheduler_name(VKF_SCHEDULER_SIMPLE), "simple"));
    CHECK(vkf_scheduler_name(VKF_SCHEDULER_COUNT) == NULL);
}

static void check_errors(void)
{
    vkf_model_sampling *ms = NULL;
    float *out = (float *)1;
    int count = -1;
    long live = vkf_alloc_live();
    CHECK(vkf_model_sampling_discrete(&ms, VKF_PREDICTION_EPS, 0.00085, 0.012, 1, false) == VKF_EINVAL);
    CHECK(vkf_model_sampling_discrete(&ms, VKF_PREDICTION_FLOW, 0.00085, 0.012, 1000, false) == VKF_EINVAL);
    CHECK(vkf_model_sampling_discrete(&ms, VKF_PREDICTION_V, 0.00085, 0.012, 1000, false) == 0);
    CHECK(vkf_calculate_sigmas(ms, VKF_SCHEDULER_SIMPLE, 0, &out, &count) == VKF_EINVAL);
    CHECK(vkf_calculate_sigmas(ms, VKF_SCHEDULER_COUNT, 5, &out, &count) == VKF_EINVAL);
    CHECK(vkf_ksampler_sigmas(ms, VKF_SCHEDULER_SIMPLE, 5, 0.0, false, &out, &count) == 0);
    CHECK(out == NULL && count == 0);

    for (int s = 0; s < VKF_SCHEDULER_COUNT; s++) {
        vkf_alloc_fail_at(0);
        CHECK(vkf_ksampler_sigmas(ms, (vkf_scheduler)s, 5, 1.0, false, &out, &count) == VKF_ENOMEM);
        vkf_alloc_fail_at(-1);
    }
    float ays[6];
    vkf_alloc_fail_at(0);
    CHECK(vkf_sigmas_align_your_steps(VKF_AYS_SD1, 5, 1.0, ays, &count) == VKF_ENOMEM);
    vkf_alloc_fail_at(1);
    CHECK(vkf_sigmas_align_your_steps(VKF_AYS_SD1, 5, 1.0, ays, &count) == VKF_ENOMEM);
    vkf_alloc_fail_at(-1);
    CHECK(vkf_sigmas_align_your_steps(VKF_AYS_SD1, 0, 1.0, ays, &count) == VKF_EINVAL);
    vkf_alloc_fail_at(1);
    CHECK(vkf_model_sampling_flow(&ms, 3.0, 1000.0) == VKF_ENOMEM || ms != NULL);
    vkf_alloc_fail_at(-1);
    vkf_model_sampling_destroy(&ms);
    for (int fail = 0; fail < 3; fail++) {
        vkf_alloc_fail_at(fail);
        CHECK(vkf_model_sampling_discrete(&ms, VKF_PREDICTION_EPS, 0.00085, 0.012, 1000, false) ==
              VKF_ENOMEM);
        CHECK(ms == NULL);
    }
    vkf_alloc_fail_at(-1);
    CHECK(vkf_alloc_live() == live);
    vkf_model_sampling_destroy(&ms);
    vkf_model_sampling_destroy(NULL);
}

/* Out-of-range arguments: no undefined behaviour, Python's answers where
 * it has one (run under UBSan in CI's sanitizer build). */
static void check_edges(void)
{
    vkf_model_sampling *ms = make_model("sd1");
    float out[64], *dyn = NULL;
    int count = 0;

    CHECK(isnan(vkf_model_sampling_sigma(ms, NAN)));
    CHECK(vkf_model_sampling_sigma(ms, -5.0f) == vkf_model_sampling_sigma(ms, 0.0f));
    CHECK(vkf_model_sampling_sigma(ms, 5000.0f) == vkf_model_sampling_sigma(ms, 999.0f));
    CHECK(vkf_ksampler_sigmas(ms, VKF_SCHEDULER_NORMAL, 20, 1e-12, false, &dyn, &count) ==
          VKF_EINVAL);
    CHECK(vkf_basic_scheduler_sigmas(ms, VKF_SCHEDULER_NORMAL, 20, 1e-12, &dyn, &count) ==
          VKF_EINVAL);

    /* ExponentialScheduler accepts sigma_min = 0; ComfyUI's math.log would
     * raise, here the values are just not finite. */
    vkf_sigmas_exponential(5, 0.0, 14.6, out);
    CHECK(out[5] == 0.0f);
    vkf_sigmas_polyexponential(5, 0.0, 14.6, 2.0, out);
    vkf_sigmas_karras(5, 0.0, 14.6, 7.0, out);
    CHECK(out[4] == 0.0f);
    vkf_sigmas_karras(20, 1e-30, 1e30, 7.0, out);
    CHECK(out[0] > 1e29f);

    vkf_sigmas_sd_turbo(ms, 10, 5.0, out, &count);   /* denoise clamped to 1 */
    CHECK(count == 11);
    vkf_sigmas_sd_turbo(ms, 3, -1.0, out, &count);   /* clamped to 0: empty slice */
    CHECK(count == 1 && out[0] == 0.0f);

    int hc, lo, lc;
    vkf_split_sigmas_denoise(11, 1e300, &hc, &lo, &lc);
    CHECK(hc == 0 && lo == 0 && lc == 11);
    vkf_split_sigmas_denoise(11, -0.3, &hc, &lo, &lc);  /* total -3: [:3], [2:] */
    CHECK(hc == 3 && lo == 2 && lc == 9);
    vkf_split_sigmas_denoise(11, NAN, &hc, &lo, &lc);  /* Python raises; stay in range */
    CHECK(hc >= 0 && hc <= 11 && lo >= 0 && lo + lc == 11);
    vkf_model_sampling_destroy(&ms);
}

int main(void)
{
    cJSON *golden = golden_load("sampling_schedulers.json");
    if (!golden)
        return 77;
    check_tables(cJSON_GetObjectItem(golden, "tables"));
    check_formulas(cJSON_GetObjectItem(golden, "formulas"));
    check_functions(cJSON_GetObjectItem(golden, "functions"));

    const char *names[] = {"sd1", "sd3", "auraflow", "flux"};
    vkf_model_sampling *models[4];
    for (int i = 0; i < 4; i++)
        models[i] = make_model(names[i]);
    int n_cases = 0;
    for (const cJSON *c = cJSON_GetObjectItem(golden, "cases")->child; c; c = c->next, n_cases++)
        check_case(c, models, names, 4);
    for (int i = 0; i < 4; i++)
        vkf_model_sampling_destroy(&models[i]);

    cur_kind = -1;
    for (int k = 0; k < n_kinds; k++)
        fprintf(stderr, "  %-40s %5ld values, %5ld bit-identical, max rel %.3g\n", kinds[k].name,
                kinds[k].values, kinds[k].exact, kinds[k].max_rel);
    check_split_flip();
    check_errors();
    check_edges();
    fprintf(stderr, "schedulers: %d cases, %ld values, %ld bit-identical, max relative error %.3g "
                    "(tolerance %.0e)\n", n_cases, n_values, n_exact, max_rel, REL_TOL);
    /* Every value is bit-identical today (docs/sampling.md); a change that
     * stays inside the tolerance still has to be looked at. */
    CHECK(n_exact == n_values);
    cJSON_Delete(golden);
    return test_result("test_schedulers");
}
