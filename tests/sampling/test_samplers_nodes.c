/*
 * The custom-sampling nodes (nodes/custom_sampling.c), called through the
 * built-in registry: input tables as ComfyUI declares them, KSamplerSelect
 * and the Sampler* nodes' SAMPLER objects, the scheduler nodes against the
 * scheduler goldens (bit for bit, as test_schedulers checks the functions),
 * and the SIGMAS helpers.
 */
#include <math.h>

#include <vkflow/models.h>
#include <vkflow/samplers.h>

#include "../test.h"
#include "golden.h"
#include "graph/internal.h"

static const vkf_node_def *node(const char *name)
{
    for (int i = 0; vkf_builtin_nodes[i]; i++)
        if (!strcmp(vkf_builtin_nodes[i]->name, name))
            return vkf_builtin_nodes[i];
    fprintf(stderr, "node %s not registered\n", name);
    return NULL;
}

static const vkf_input_def *input(const vkf_node_def *d, const char *name)
{
    for (int i = 0; d && i < d->nb_inputs; i++)
        if (!strcmp(d->inputs[i].name, name))
            return &d->inputs[i];
    return NULL;
}

static vkf_value vint(int64_t i)
{
    vkf_value v = {0};
    vkf_value_set_int(&v, i);
    return v;
}
static vkf_value vflt(double f)
{
    vkf_value v = {0};
    vkf_value_set_float(&v, f);
    return v;
}
static vkf_value vstr(const char *s)
{
    return (vkf_value){.kind = VKF_VAL_STRING, .u.s = (char *)s};
}
static vkf_value vobj(vkf_object *o)
{
    return (vkf_value){.kind = VKF_VAL_OBJECT, .u.obj = o};
}

static int run(const char *name, const vkf_value *in, vkf_value *out)
{
    const vkf_node_def *d = node(name);
    if (!d)
        return VKF_ENOTFOUND;
    return d->execute(NULL, in, out);
}

static bool same_bits(const vkf_sigmas *s, const cJSON *want)
{
    if (!s || s->n != cJSON_GetArraySize(want))
        return false;
    int i = 0;
    for (const cJSON *e = want->child; e; e = e->next, i++)
        if (f32_bits(s->s[i]) != f32_bits((float)e->valuedouble))
            return false;
    return true;
}

static void test_tables(void)
{
    const vkf_node_def *d = node("KarrasScheduler");
    CHECK(d != NULL);
    const vkf_input_def *in = input(d, "sigma_max");
    CHECK(in && in->fdef == 14.614642 && in->fmax == 5000.0);
    CHECK(input(d, "sigma_min") && input(d, "sigma_min")->fdef == 0.0291675);
    CHECK(input(d, "rho") && input(d, "rho")->fdef == 7.0);
    CHECK(input(d, "steps") && input(d, "steps")->idef == 20 && input(d, "steps")->imax == 10000);
    CHECK(input(node("PolyexponentialScheduler"), "rho")->fdef == 1.0);
    CHECK_EQ_INT(node("ExponentialScheduler")->nb_inputs, 3);
    d = node("SDTurboScheduler");
    CHECK(d && input(d, "steps")->idef == 1 && input(d, "steps")->imax == 10);
    d = node("AlignYourStepsScheduler");
    CHECK(d && input(d, "steps")->idef == 10);
    CHECK_STR(input(d, "model_type")->options[2], "SVD");
    d = node("BasicScheduler");
    CHECK(d && !strcmp(d->inputs[0].type, "MODEL"));
    CHECK_STR(input(d, "scheduler")->options[0], "simple");
    CHECK_STR(d->outputs[0].type, "SIGMAS");
    d = node("SplitSigmas");
    CHECK(d && d->nb_outputs == 2);
    CHECK_STR(d->outputs[0].name, "high_sigmas");
    CHECK_STR(d->outputs[1].name, "low_sigmas");
    d = node("SamplerEulerAncestralCFGPP");
    CHECK(d && input(d, "eta")->fmax == 1.0 && input(d, "s_noise")->fmax == 10.0);
    CHECK_STR(d->display_name, "SamplerEulerAncestralCFG++");
    d = node("SamplerDPMPP_2M_SDE");
    CHECK(d && !strcmp(d->inputs[0].name, "solver_type"));
    CHECK_STR(input(d, "noise_device")->options[0], "gpu");
    CHECK(input(node("SamplerDPMPP_SDE"), "r")->fdef == 0.5);
    CHECK(input(node("SamplerLMS"), "order")->idef == 4);
    /* KSamplerSelect offers exactly vkf_sampler_names(), in order */
    d = node("KSamplerSelect");
    const char *const *opts = d ? d->inputs[0].options : NULL;
    int n = 0;
    const char *const *names = vkf_sampler_names(&n);
    int k = 0;
    while (opts && opts[k] && k < n && !strcmp(opts[k], names[k]))
        k++;
    CHECK(opts && k == n && opts[n] == NULL);
}

static void test_sampler_nodes(void)
{
    vkf_value in[4], out[2] = {{0}};
    in[0] = vstr("dpmpp_2m");
    CHECK_EQ_INT(run("KSamplerSelect", in, out), 0);
    vkf_sampler_obj *s = vkf_value_sampler(&out[0]);
    CHECK(s && !strcmp(s->name, "dpmpp_2m") && !s->has_params);
    vkf_value_clear(&out[0]);
    in[0] = vstr("uni_pc_bh2");
    int rc = run("KSamplerSelect", in, out);
    CHECK_EQ_INT(rc, 0);
    vkf_value_clear(&out[0]);

    in[0] = vflt(0.5);
    in[1] = vflt(0.8);
    CHECK_EQ_INT(run("SamplerEulerAncestral", in, out), 0);
    s = vkf_value_sampler(&out[0]);
    CHECK(s && !strcmp(s->name, "euler_ancestral") && s->has_params && s->eta == 0.5 &&
          s->s_noise == 0.8);
    vkf_value_clear(&out[0]);

    in[0] = vstr("heun");
    in[1] = vflt(0.7);
    in[2] = vflt(1.0);
    in[3] = vstr("cpu");
    CHECK_EQ_INT(run("SamplerDPMPP_2M_SDE", in, out), 0);
    s = vkf_value_sampler(&out[0]);
    CHECK(s && !strcmp(s->name, "dpmpp_2m_sde") && !strcmp(s->solver_type, "heun") &&
          s->eta == 0.7);
    vkf_value_clear(&out[0]);
    in[3] = vstr("gpu");
    CHECK_EQ_INT(run("SamplerDPMPP_2M_SDE", in, out), 0);
    s = vkf_value_sampler(&out[0]);
    CHECK(s && !strcmp(s->name, "dpmpp_2m_sde_gpu"));
    vkf_value_clear(&out[0]);

    in[0] = vflt(1.0);
    in[1] = vflt(0.9);
    in[2] = vflt(0.3);
    in[3] = vstr("cpu");
    CHECK_EQ_INT(run("SamplerDPMPP_SDE", in, out), 0);
    s = vkf_value_sampler(&out[0]);
    CHECK(s && !strcmp(s->name, "dpmpp_sde") && s->r == 0.3 && s->s_noise == 0.9);
    vkf_value_clear(&out[0]);

    in[2] = vstr("gpu");
    CHECK_EQ_INT(run("SamplerDPMPP_3M_SDE", in, out), 0);
    s = vkf_value_sampler(&out[0]);
    CHECK(s && !strcmp(s->name, "dpmpp_3m_sde_gpu"));
    vkf_value_clear(&out[0]);

    CHECK_EQ_INT(run("SamplerDPMPP_2S_Ancestral", in, out), 0);
    s = vkf_value_sampler(&out[0]);
    CHECK(s && !strcmp(s->name, "dpmpp_2s_ancestral"));
    vkf_value_clear(&out[0]);
    CHECK_EQ_INT(run("SamplerEulerAncestralCFGPP", in, out), 0);
    s = vkf_value_sampler(&out[0]);
    CHECK(s && !strcmp(s->name, "euler_ancestral_cfg_pp"));
    vkf_value_clear(&out[0]);

    in[0] = vint(3);
    CHECK_EQ_INT(run("SamplerLMS", in, out), 0);
    s = vkf_value_sampler(&out[0]);
    CHECK(s && !strcmp(s->name, "lms") && s->order == 3);
    vkf_value_clear(&out[0]);
    in[0] = vint(5);
    CHECK_EQ_INT(run("SamplerLMS", in, out), VKF_EUNSUPPORTED);
    CHECK(out[0].kind == VKF_VAL_NONE);
}

static void test_scheduler_goldens(void)
{
    cJSON *g = golden_load("sampling_schedulers.json");
    if (!g) {
        CHECK(!"sampling_schedulers.json");
        return;
    }
    vkf_model_sampling *ms = NULL;
    CHECK_EQ_INT(vkf_model_sampling_discrete(&ms, VKF_PREDICTION_EPS, 0.00085, 0.012, 1000, false),
                 0);
    vkf_model *m = ms ? vkf_model_new(NULL, ms, (vkf_latent_format){4, 0.18215f, 0}) : NULL;
    CHECK(m != NULL);
    int ran = 0, good = 0;
    for (const cJSON *c = cJSON_GetObjectItem(g, "cases")->child; c; c = c->next) {
        const char *nd = cJSON_GetObjectItem(c, "node")->valuestring;
        const cJSON *model = cJSON_GetObjectItem(c, "model");
        if (model && strcmp(model->valuestring, "sd1"))
            continue;
        vkf_value in[4], out[1] = {{0}};
        int steps = (int)cJSON_GetObjectItem(c, "steps")->valuedouble;
        int rc;
        if (!strcmp(nd, "KarrasScheduler") || !strcmp(nd, "PolyexponentialScheduler") ||
            !strcmp(nd, "ExponentialScheduler")) {
            in[0] = vint(steps);
            in[1] = vflt(cJSON_GetObjectItem(c, "sigma_max")->valuedouble);
            in[2] = vflt(cJSON_GetObjectItem(c, "sigma_min")->valuedouble);
            const cJSON *rho = cJSON_GetObjectItem(c, "rho");
            in[3] = vflt(rho ? rho->valuedouble : 0);
            rc = run(nd, in, out);
        } else if (!strcmp(nd, "AlignYourStepsScheduler")) {
            in[0] = vstr(cJSON_GetObjectItem(c, "model_type")->valuestring);
            in[1] = vint(steps);
            in[2] = vflt(cJSON_GetObjectItem(c, "denoise")->valuedouble);
            rc = run(nd, in, out);
        } else if (!strcmp(nd, "BasicScheduler") && m) {
            in[0] = vobj(&m->obj);
            in[1] = vstr(cJSON_GetObjectItem(c, "scheduler")->valuestring);
            in[2] = vint(steps);
            in[3] = vflt(cJSON_GetObjectItem(c, "denoise")->valuedouble);
            rc = run(nd, in, out);
        } else if (!strcmp(nd, "SDTurboScheduler") && m) {
            in[0] = vobj(&m->obj);
            in[1] = vint(steps);
            in[2] = vflt(cJSON_GetObjectItem(c, "denoise")->valuedouble);
            rc = run(nd, in, out);
        } else if (!strcmp(nd, "BetaSamplingScheduler") && m) {
            in[0] = vobj(&m->obj);
            in[1] = vint(steps);
            in[2] = vflt(cJSON_GetObjectItem(c, "alpha")->valuedouble);
            in[3] = vflt(cJSON_GetObjectItem(c, "beta")->valuedouble);
            rc = run(nd, in, out);
        } else {
            continue;
        }
        ran++;
        bool ok = rc == 0 && same_bits(vkf_value_sigmas(&out[0]), cJSON_GetObjectItem(c, "sigmas"));
        good += ok;
        if (!ok)
            fprintf(stderr, "  %s steps %d differs (rc %d)\n", nd, steps, rc);
        vkf_value_clear(&out[0]);
    }
    CHECK(ran >= 100);
    CHECK_EQ_INT(good, ran);
    printf("scheduler nodes: %d of %d golden cases bit-identical\n", good, ran);
    if (m) {
        vkf_object *o = &m->obj;
        vkf_object_unref(&o);
    } else {
        vkf_model_sampling_destroy(&ms);
    }
    cJSON_Delete(g);
}

static vkf_sigmas *mk(const float *v, int n)
{
    vkf_sigmas *s = vkf_sigmas_new(n);
    if (s && n)
        memcpy(s->s, v, (size_t)n * sizeof(float));
    return s;
}

static void test_sigma_helpers(void)
{
    const float v[5] = {14.6f, 4.0f, 1.0f, 0.3f, 0.0f};
    vkf_sigmas *s = mk(v, 5);
    vkf_value in[2], out[2] = {{0}};
    in[0] = vobj(&s->obj);
    in[1] = vint(2);
    CHECK_EQ_INT(run("SplitSigmas", in, out), 0);
    vkf_sigmas *hi = vkf_value_sigmas(&out[0]), *lo = vkf_value_sigmas(&out[1]);
    CHECK(hi && hi->n == 3 && hi->s[2] == 1.0f);
    CHECK(lo && lo->n == 3 && lo->s[0] == 1.0f && lo->s[2] == 0.0f);
    vkf_value_clear(&out[0]);
    vkf_value_clear(&out[1]);
    in[1] = vint(100);   /* past the end: everything high, low empty */
    CHECK_EQ_INT(run("SplitSigmas", in, out), 0);
    CHECK(vkf_value_sigmas(&out[0])->n == 5 && vkf_value_sigmas(&out[1])->n == 0);
    vkf_value_clear(&out[0]);
    vkf_value_clear(&out[1]);

    in[1] = vflt(0.5);   /* total = round(4·0.5) = 2: high [:-2], low [-3:] */
    CHECK_EQ_INT(run("SplitSigmasDenoise", in, out), 0);
    hi = vkf_value_sigmas(&out[0]);
    lo = vkf_value_sigmas(&out[1]);
    CHECK(hi && hi->n == 3 && hi->s[2] == 1.0f);
    CHECK(lo && lo->n == 3 && lo->s[0] == 1.0f);
    vkf_value_clear(&out[0]);
    vkf_value_clear(&out[1]);
    in[1] = vflt(0.0);   /* total 0: high = sigmas[:-0] = empty, low = last */
    CHECK_EQ_INT(run("SplitSigmasDenoise", in, out), 0);
    CHECK(vkf_value_sigmas(&out[0])->n == 0 && vkf_value_sigmas(&out[1])->n == 1);
    vkf_value_clear(&out[0]);
    vkf_value_clear(&out[1]);

    CHECK_EQ_INT(run("FlipSigmas", in, out), 0);
    vkf_sigmas *f = vkf_value_sigmas(&out[0]);
    CHECK(f && f->n == 5 && f->s[0] == 0.0001f && f->s[4] == 14.6f && f->s[1] == 0.3f);
    CHECK(s->s[0] == 14.6f);   /* the input is not touched */
    vkf_value_clear(&out[0]);
    vkf_object *o = &s->obj;
    vkf_object_unref(&o);

    vkf_sigmas *e = mk(NULL, 0);
    in[0] = vobj(&e->obj);
    CHECK_EQ_INT(run("FlipSigmas", in, out), 0);
    CHECK(vkf_value_sigmas(&out[0]) && vkf_value_sigmas(&out[0])->n == 0);
    vkf_value_clear(&out[0]);
    o = &e->obj;
    vkf_object_unref(&o);
}

int main(void)
{
    test_tables();
    test_sampler_nodes();
    test_scheduler_goldens();
    test_sigma_helpers();
    return test_exit_code("test_samplers_nodes");
}
