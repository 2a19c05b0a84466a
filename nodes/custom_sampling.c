/*
 * The sampler and sigma nodes of comfy_extras/nodes_custom_sampler.py and
 * nodes_align_your_steps.py: KSamplerSelect, the Sampler* nodes with
 * parameters, the schedulers (BasicScheduler, KarrasScheduler,
 * ExponentialScheduler, PolyexponentialScheduler, SDTurboScheduler,
 * AlignYourStepsScheduler, BetaSamplingScheduler) and the SIGMAS helpers
 * (SplitSigmas, SplitSigmasDenoise, FlipSigmas).  Same input names,
 * defaults, ranges and outputs as ComfyUI; the math is vkflow/sampling.h
 * and vkflow/samplers.h.
 */
#include <stdio.h>
#include <string.h>

#include "nodes.h"
#include "vkflow/models.h"
#include "vkflow/samplers.h"

#define CAT_SAMPLERS "sampling/custom_sampling/samplers"
#define CAT_SCHEDULERS "sampling/custom_sampling/schedulers"
#define CAT_SIGMAS "sampling/custom_sampling/sigmas"
#define MODULE "comfy_extras.nodes_custom_sampler"

/* FLOAT input with round: False (fround 0 = not given) */
#define FLOAT_IN(nm, def, mn, mx, st) VKF_INPUT_FLOAT(nm, def, mn, mx, st)

static int set_sigmas(vkf_value *out, const float *v, int n)
{
    vkf_sigmas *s = vkf_sigmas_new(n);
    if (!s)
        return VKF_ENOMEM;
    if (n > 0)
        memcpy(s->s, v, (size_t)n * sizeof(float));
    vkf_value_set_object(out, &s->obj);
    return 0;
}

static int fail(vkf_exec_ctx *ctx, int err, const char *what)
{
    if (!ctx)
        return err;
    if (err == VKF_ENOMEM)
        return err;
    return vkf_exec_error(ctx, "%s: %s", what, vkf_strerror(err));
}

/* ---- KSamplerSelect ------------------------------------------------------ */

static int ksampler_select(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    const char *name = in[0].u.s;
    if (!vkf_sampler_exists(name))
        return ctx ? vkf_exec_error(ctx, "KSamplerSelect: unknown sampler \"%s\"", name)
                   : VKF_ENOTFOUND;
    vkf_sampler_obj *s = vkf_sampler_obj_new(name);
    if (!s)
        return VKF_ENOMEM;
    vkf_value_set_object(&out[0], &s->obj);
    return 0;
}

static const vkf_output_def sampler_out[] = {{.type = "SAMPLER"}};

static const char *const ksampler_names_static[] = {
    "euler", "euler_cfg_pp", "euler_ancestral", "euler_ancestral_cfg_pp", "heun", "heunpp2",
    "dpm_2", "dpm_2_ancestral", "lms", "dpm_fast", "dpm_adaptive", "dpmpp_2s_ancestral",
    "dpmpp_2s_ancestral_cfg_pp", "dpmpp_sde", "dpmpp_sde_gpu", "dpmpp_2m", "dpmpp_2m_cfg_pp",
    "dpmpp_2m_sde", "dpmpp_2m_sde_gpu", "dpmpp_2m_sde_heun", "dpmpp_2m_sde_heun_gpu",
    "dpmpp_3m_sde", "dpmpp_3m_sde_gpu", "ddpm", "lcm", "ipndm", "ipndm_v", "deis",
    "res_multistep", "res_multistep_cfg_pp", "res_multistep_ancestral",
    "res_multistep_ancestral_cfg_pp", "gradient_estimation", "gradient_estimation_cfg_pp",
    "er_sde", "seeds_2", "seeds_3", "sa_solver", "sa_solver_pece", "ddim", "uni_pc",
    "uni_pc_bh2", NULL,
};

/* The node table needs a constant initializer; the combo is the same list
 * as vkf_sampler_names() (checked by tests/sampling/test_samplers_nodes.c). */
static const vkf_input_def ksampler_select_in[] = {
    {.name = "sampler_name", .type = VKF_T_COMBO, .options = ksampler_names_static},
};

const char *const *vkf_custom_sampling_sampler_options(void);
const char *const *vkf_custom_sampling_sampler_options(void)
{
    return ksampler_names_static;
}

const vkf_node_def vkf_node_KSamplerSelect = {
    .name = "KSamplerSelect", .display_name = "KSamplerSelect", .category = CAT_SAMPLERS,
    .python_module = MODULE,
    .inputs = ksampler_select_in, .nb_inputs = 1,
    .outputs = sampler_out, .nb_outputs = 1,
    .execute = ksampler_select,
};

/* ---- Sampler* nodes with parameters --------------------------------------- */

static int make_sampler(const char *name, double eta, double s_noise, double r,
                        const char *solver_type, int order, vkf_value *out)
{
    vkf_sampler_obj *s = vkf_sampler_obj_new(name);
    if (!s)
        return VKF_ENOMEM;
    s->eta = eta;
    s->s_noise = s_noise;
    s->r = r;
    if (solver_type)
        snprintf(s->solver_type, sizeof(s->solver_type), "%s", solver_type);
    if (order > 0)
        s->order = order;
    s->has_params = true;
    vkf_value_set_object(&out[0], &s->obj);
    return 0;
}

static const vkf_input_def eta_noise_in[] = {
    FLOAT_IN("eta", 1.0, 0.0, 100.0, 0.01),
    FLOAT_IN("s_noise", 1.0, 0.0, 100.0, 0.01),
};

static int euler_ancestral_exec(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    (void)ctx;
    return make_sampler("euler_ancestral", in[0].u.f, in[1].u.f, 0.5, NULL, 0, out);
}

const vkf_node_def vkf_node_SamplerEulerAncestral = {
    .name = "SamplerEulerAncestral", .display_name = "SamplerEulerAncestral",
    .category = CAT_SAMPLERS, .python_module = MODULE,
    .inputs = eta_noise_in, .nb_inputs = 2, .outputs = sampler_out, .nb_outputs = 1,
    .execute = euler_ancestral_exec,
};

static const vkf_input_def euler_anc_cfgpp_in[] = {
    FLOAT_IN("eta", 1.0, 0.0, 1.0, 0.01),
    FLOAT_IN("s_noise", 1.0, 0.0, 10.0, 0.01),
};

static int euler_anc_cfgpp_exec(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    (void)ctx;
    return make_sampler("euler_ancestral_cfg_pp", in[0].u.f, in[1].u.f, 0.5, NULL, 0, out);
}

const vkf_node_def vkf_node_SamplerEulerAncestralCFGPP = {
    .name = "SamplerEulerAncestralCFGPP", .display_name = "SamplerEulerAncestralCFG++",
    .category = CAT_SAMPLERS, .python_module = MODULE,
    .inputs = euler_anc_cfgpp_in, .nb_inputs = 2, .outputs = sampler_out, .nb_outputs = 1,
    .execute = euler_anc_cfgpp_exec,
};

static int dpmpp_2s_exec(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    (void)ctx;
    return make_sampler("dpmpp_2s_ancestral", in[0].u.f, in[1].u.f, 0.5, NULL, 0, out);
}

const vkf_node_def vkf_node_SamplerDPMPP_2S_Ancestral = {
    .name = "SamplerDPMPP_2S_Ancestral", .display_name = "SamplerDPMPP_2S_Ancestral",
    .category = CAT_SAMPLERS, .python_module = MODULE,
    .inputs = eta_noise_in, .nb_inputs = 2, .outputs = sampler_out, .nb_outputs = 1,
    .execute = dpmpp_2s_exec,
};

static const char *const noise_device_opts[] = {"gpu", "cpu", NULL};
static const char *const solver_type_opts[] = {"midpoint", "heun", NULL};

static const vkf_input_def dpmpp_3m_in[] = {
    FLOAT_IN("eta", 1.0, 0.0, 100.0, 0.01),
    FLOAT_IN("s_noise", 1.0, 0.0, 100.0, 0.01),
    {.name = "noise_device", .type = VKF_T_COMBO, .options = noise_device_opts},
};

static bool on_cpu(const vkf_value *v)
{
    return strcmp(v->u.s, "cpu") == 0;
}

static int dpmpp_3m_exec(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    (void)ctx;
    return make_sampler(on_cpu(&in[2]) ? "dpmpp_3m_sde" : "dpmpp_3m_sde_gpu", in[0].u.f,
                        in[1].u.f, 0.5, NULL, 0, out);
}

const vkf_node_def vkf_node_SamplerDPMPP_3M_SDE = {
    .name = "SamplerDPMPP_3M_SDE", .display_name = "SamplerDPMPP_3M_SDE",
    .category = CAT_SAMPLERS, .python_module = MODULE,
    .inputs = dpmpp_3m_in, .nb_inputs = 3, .outputs = sampler_out, .nb_outputs = 1,
    .execute = dpmpp_3m_exec,
};

static const vkf_input_def dpmpp_2m_in[] = {
    {.name = "solver_type", .type = VKF_T_COMBO, .options = solver_type_opts},
    FLOAT_IN("eta", 1.0, 0.0, 100.0, 0.01),
    FLOAT_IN("s_noise", 1.0, 0.0, 100.0, 0.01),
    {.name = "noise_device", .type = VKF_T_COMBO, .options = noise_device_opts},
};

static int dpmpp_2m_exec(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    (void)ctx;
    return make_sampler(on_cpu(&in[3]) ? "dpmpp_2m_sde" : "dpmpp_2m_sde_gpu", in[1].u.f,
                        in[2].u.f, 0.5, in[0].u.s, 0, out);
}

const vkf_node_def vkf_node_SamplerDPMPP_2M_SDE = {
    .name = "SamplerDPMPP_2M_SDE", .display_name = "SamplerDPMPP_2M_SDE",
    .category = CAT_SAMPLERS, .python_module = MODULE,
    .inputs = dpmpp_2m_in, .nb_inputs = 4, .outputs = sampler_out, .nb_outputs = 1,
    .execute = dpmpp_2m_exec,
};

static const vkf_input_def dpmpp_sde_in[] = {
    FLOAT_IN("eta", 1.0, 0.0, 100.0, 0.01),
    FLOAT_IN("s_noise", 1.0, 0.0, 100.0, 0.01),
    FLOAT_IN("r", 0.5, 0.0, 100.0, 0.01),
    {.name = "noise_device", .type = VKF_T_COMBO, .options = noise_device_opts},
};

static int dpmpp_sde_exec(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    (void)ctx;
    return make_sampler(on_cpu(&in[3]) ? "dpmpp_sde" : "dpmpp_sde_gpu", in[0].u.f, in[1].u.f,
                        in[2].u.f, NULL, 0, out);
}

const vkf_node_def vkf_node_SamplerDPMPP_SDE = {
    .name = "SamplerDPMPP_SDE", .display_name = "SamplerDPMPP_SDE",
    .category = CAT_SAMPLERS, .python_module = MODULE,
    .inputs = dpmpp_sde_in, .nb_inputs = 4, .outputs = sampler_out, .nb_outputs = 1,
    .execute = dpmpp_sde_exec,
};

static const vkf_input_def lms_in[] = {VKF_INPUT_INT("order", 4, 1, 100)};

static int lms_exec(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    /* ComfyUI accepts up to 100 and fails inside sampling (scipy integrates
     * any order); vkflow's LMS stops at 4 and says so here */
    if (in[0].u.i > 4)
        return ctx ? vkf_exec_error(ctx, "SamplerLMS: order %lld is not supported by vkflow "
                                         "(1 to 4)", (long long)in[0].u.i)
                   : VKF_EUNSUPPORTED;
    return make_sampler("lms", 1.0, 1.0, 0.5, NULL, (int)in[0].u.i, out);
}

const vkf_node_def vkf_node_SamplerLMS = {
    .name = "SamplerLMS", .display_name = "SamplerLMS",
    .category = CAT_SAMPLERS, .python_module = MODULE,
    .inputs = lms_in, .nb_inputs = 1, .outputs = sampler_out, .nb_outputs = 1,
    .execute = lms_exec,
};

/* ---- schedulers ------------------------------------------------------------ */

static const vkf_output_def sigmas_out[] = {{.type = "SIGMAS"}};

static const char *const scheduler_opts[] = {
    "simple", "sgm_uniform", "karras", "exponential", "ddim_uniform", "beta", "normal",
    "linear_quadratic", "kl_optimal", NULL,
};

static int basic_scheduler(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    vkf_model *m = vkf_value_model(&in[0]);
    if (!m || !m->ms)
        return fail(ctx, VKF_EINVAL, "BasicScheduler: model");
    vkf_scheduler sch;
    if (vkf_scheduler_from_name(in[1].u.s, &sch))
        return fail(ctx, VKF_EINVAL, "BasicScheduler: scheduler");
    float *s = NULL;
    int n = 0;
    int err = vkf_basic_scheduler_sigmas(m->ms, sch, (int)in[2].u.i, in[3].u.f, &s, &n);
    if (err)
        return fail(ctx, err, "BasicScheduler");
    err = set_sigmas(&out[0], s, n);
    vkf_free(s);
    return err;
}

static const vkf_input_def basic_in[] = {
    VKF_INPUT_LINK("model", "MODEL"),
    {.name = "scheduler", .type = VKF_T_COMBO, .options = scheduler_opts},
    VKF_INPUT_INT("steps", 20, 1, 10000),
    VKF_INPUT_FLOAT("denoise", 1.0, 0.0, 1.0, 0.01),
};

const vkf_node_def vkf_node_BasicScheduler = {
    .name = "BasicScheduler", .display_name = "BasicScheduler", .category = CAT_SCHEDULERS,
    .python_module = MODULE,
    .inputs = basic_in, .nb_inputs = 4, .outputs = sigmas_out, .nb_outputs = 1,
    .execute = basic_scheduler,
};

/* Karras / Exponential / Polyexponential: n + 1 values */
static int custom_sched(vkf_value *out, int kind, const vkf_value *in)
{
    int steps = (int)in[0].u.i;
    double smax = in[1].u.f, smin = in[2].u.f;
    float *v = vkf_malloc(((size_t)steps + 1) * sizeof(float));
    if (!v)
        return VKF_ENOMEM;
    if (kind == 0)
        vkf_sigmas_karras(steps, smin, smax, in[3].u.f, v);
    else if (kind == 1)
        vkf_sigmas_exponential(steps, smin, smax, v);
    else
        vkf_sigmas_polyexponential(steps, smin, smax, in[3].u.f, v);
    int err = set_sigmas(out, v, steps + 1);
    vkf_free(v);
    return err;
}

static int karras_exec(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    (void)ctx;
    return custom_sched(&out[0], 0, in);
}
static int exponential_exec(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    (void)ctx;
    return custom_sched(&out[0], 1, in);
}
static int polyexp_exec(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    (void)ctx;
    return custom_sched(&out[0], 2, in);
}

static const vkf_input_def karras_in[] = {
    VKF_INPUT_INT("steps", 20, 1, 10000),
    FLOAT_IN("sigma_max", 14.614642, 0.0, 5000.0, 0.01),
    FLOAT_IN("sigma_min", 0.0291675, 0.0, 5000.0, 0.01),
    FLOAT_IN("rho", 7.0, 0.0, 100.0, 0.01),
};
static const vkf_input_def poly_in[] = {
    VKF_INPUT_INT("steps", 20, 1, 10000),
    FLOAT_IN("sigma_max", 14.614642, 0.0, 5000.0, 0.01),
    FLOAT_IN("sigma_min", 0.0291675, 0.0, 5000.0, 0.01),
    FLOAT_IN("rho", 1.0, 0.0, 100.0, 0.01),
};

const vkf_node_def vkf_node_KarrasScheduler = {
    .name = "KarrasScheduler", .display_name = "KarrasScheduler", .category = CAT_SCHEDULERS,
    .python_module = MODULE,
    .inputs = karras_in, .nb_inputs = 4, .outputs = sigmas_out, .nb_outputs = 1,
    .execute = karras_exec,
};

const vkf_node_def vkf_node_ExponentialScheduler = {
    .name = "ExponentialScheduler", .display_name = "ExponentialScheduler",
    .category = CAT_SCHEDULERS, .python_module = MODULE,
    .inputs = karras_in, .nb_inputs = 3, .outputs = sigmas_out, .nb_outputs = 1,
    .execute = exponential_exec,
};

const vkf_node_def vkf_node_PolyexponentialScheduler = {
    .name = "PolyexponentialScheduler", .display_name = "PolyexponentialScheduler",
    .category = CAT_SCHEDULERS, .python_module = MODULE,
    .inputs = poly_in, .nb_inputs = 4, .outputs = sigmas_out, .nb_outputs = 1,
    .execute = polyexp_exec,
};

static int sd_turbo_exec(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    vkf_model *m = vkf_value_model(&in[0]);
    if (!m || !m->ms)
        return fail(ctx, VKF_EINVAL, "SDTurboScheduler: model");
    int steps = (int)in[1].u.i, n = 0;
    float v[16];
    if (steps < 1 || steps > 10)
        return fail(ctx, VKF_EINVAL, "SDTurboScheduler: steps");
    vkf_sigmas_sd_turbo(m->ms, steps, in[2].u.f, v, &n);
    return set_sigmas(&out[0], v, n);
}

static const vkf_input_def sd_turbo_in[] = {
    VKF_INPUT_LINK("model", "MODEL"),
    VKF_INPUT_INT("steps", 1, 1, 10),
    VKF_INPUT_FLOAT("denoise", 1.0, 0.0, 1.0, 0.01),
};

const vkf_node_def vkf_node_SDTurboScheduler = {
    .name = "SDTurboScheduler", .display_name = "SDTurboScheduler", .category = CAT_SCHEDULERS,
    .python_module = MODULE,
    .inputs = sd_turbo_in, .nb_inputs = 3, .outputs = sigmas_out, .nb_outputs = 1,
    .execute = sd_turbo_exec,
};

static const char *const ays_opts[] = {"SD1", "SDXL", "SVD", NULL};

static int ays_exec(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    vkf_ays_model mt = VKF_AYS_SD1;
    if (!strcmp(in[0].u.s, "SDXL"))
        mt = VKF_AYS_SDXL;
    else if (!strcmp(in[0].u.s, "SVD"))
        mt = VKF_AYS_SVD;
    else if (strcmp(in[0].u.s, "SD1"))
        return fail(ctx, VKF_EINVAL, "AlignYourStepsScheduler: model_type");
    int steps = (int)in[1].u.i, n = 0;
    float *v = vkf_malloc(((size_t)steps + 1) * sizeof(float));
    if (!v)
        return VKF_ENOMEM;
    int err = vkf_sigmas_align_your_steps(mt, steps, in[2].u.f, v, &n);
    if (!err)
        err = set_sigmas(&out[0], v, n);
    vkf_free(v);
    return err ? fail(ctx, err, "AlignYourStepsScheduler") : 0;
}

static const vkf_input_def ays_in[] = {
    {.name = "model_type", .type = VKF_T_COMBO, .options = ays_opts},
    VKF_INPUT_INT("steps", 10, 1, 10000),
    VKF_INPUT_FLOAT("denoise", 1.0, 0.0, 1.0, 0.01),
};

const vkf_node_def vkf_node_AlignYourStepsScheduler = {
    .name = "AlignYourStepsScheduler", .display_name = "AlignYourStepsScheduler",
    .category = CAT_SCHEDULERS, .python_module = "comfy_extras.nodes_align_your_steps",
    .inputs = ays_in, .nb_inputs = 3, .outputs = sigmas_out, .nb_outputs = 1,
    .execute = ays_exec,
};

static int beta_exec(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    vkf_model *m = vkf_value_model(&in[0]);
    if (!m || !m->ms)
        return fail(ctx, VKF_EINVAL, "BetaSamplingScheduler: model");
    float *s = NULL;
    int n = 0;
    int err = vkf_sigmas_beta(m->ms, (int)in[1].u.i, in[2].u.f, in[3].u.f, &s, &n);
    if (err)
        return fail(ctx, err, "BetaSamplingScheduler");
    err = set_sigmas(&out[0], s, n);
    vkf_free(s);
    return err;
}

static const vkf_input_def beta_in[] = {
    VKF_INPUT_LINK("model", "MODEL"),
    VKF_INPUT_INT("steps", 20, 1, 10000),
    FLOAT_IN("alpha", 0.6, 0.0, 50.0, 0.01),
    FLOAT_IN("beta", 0.6, 0.0, 50.0, 0.01),
};

const vkf_node_def vkf_node_BetaSamplingScheduler = {
    .name = "BetaSamplingScheduler", .display_name = "BetaSamplingScheduler",
    .category = CAT_SCHEDULERS, .python_module = MODULE,
    .inputs = beta_in, .nb_inputs = 4, .outputs = sigmas_out, .nb_outputs = 1,
    .execute = beta_exec,
};

/* ---- SIGMAS helpers --------------------------------------------------------- */

static const vkf_output_def split_out[] = {
    {.type = "SIGMAS", .name = "high_sigmas"},
    {.type = "SIGMAS", .name = "low_sigmas"},
};

static int split_exec(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    vkf_sigmas *s = vkf_value_sigmas(&in[0]);
    if (!s)
        return fail(ctx, VKF_EINVAL, "SplitSigmas: sigmas");
    int hc, lo, lc;
    int64_t step = in[1].u.i;
    vkf_split_sigmas(s->n, step > 1000000 ? 1000000 : (int)step, &hc, &lo, &lc);
    int err = set_sigmas(&out[0], s->s, hc);
    if (!err)
        err = set_sigmas(&out[1], s->s + lo, lc);
    return err;
}

static const vkf_input_def split_in[] = {
    VKF_INPUT_LINK("sigmas", "SIGMAS"),
    VKF_INPUT_INT("step", 0, 0, 10000),
};

const vkf_node_def vkf_node_SplitSigmas = {
    .name = "SplitSigmas", .display_name = "SplitSigmas", .category = CAT_SIGMAS,
    .python_module = MODULE,
    .inputs = split_in, .nb_inputs = 2, .outputs = split_out, .nb_outputs = 2,
    .execute = split_exec,
};

static int split_denoise_exec(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    vkf_sigmas *s = vkf_value_sigmas(&in[0]);
    if (!s)
        return fail(ctx, VKF_EINVAL, "SplitSigmasDenoise: sigmas");
    int hc, lo, lc;
    vkf_split_sigmas_denoise(s->n, in[1].u.f, &hc, &lo, &lc);
    int err = set_sigmas(&out[0], s->s, hc);
    if (!err)
        err = set_sigmas(&out[1], s->s + lo, lc);
    return err;
}

static const vkf_input_def split_denoise_in[] = {
    VKF_INPUT_LINK("sigmas", "SIGMAS"),
    VKF_INPUT_FLOAT("denoise", 1.0, 0.0, 1.0, 0.01),
};

const vkf_node_def vkf_node_SplitSigmasDenoise = {
    .name = "SplitSigmasDenoise", .display_name = "SplitSigmasDenoise", .category = CAT_SIGMAS,
    .python_module = MODULE,
    .inputs = split_denoise_in, .nb_inputs = 2, .outputs = split_out, .nb_outputs = 2,
    .execute = split_denoise_exec,
};

static int flip_exec(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    vkf_sigmas *s = vkf_value_sigmas(&in[0]);
    if (!s)
        return fail(ctx, VKF_EINVAL, "FlipSigmas: sigmas");
    int err = set_sigmas(&out[0], s->s, s->n);
    if (!err)
        vkf_flip_sigmas(vkf_value_sigmas(&out[0])->s, s->n);
    return err;
}

static const vkf_input_def flip_in[] = {VKF_INPUT_LINK("sigmas", "SIGMAS")};

const vkf_node_def vkf_node_FlipSigmas = {
    .name = "FlipSigmas", .display_name = "FlipSigmas", .category = CAT_SIGMAS,
    .python_module = MODULE,
    .inputs = flip_in, .nb_inputs = 1, .outputs = sigmas_out, .nb_outputs = 1,
    .execute = flip_exec,
};
