/* KSampler, KSamplerAdvanced (nodes.py) and the custom-sampling nodes
 * SamplerCustom, SamplerCustomAdvanced, BasicGuider, CFGGuider,
 * DualCFGGuider, RandomNoise, DisableNoise
 * (comfy_extras/nodes_custom_sampler.py), on the sampling driver of
 * vkflow/guidance.h. */
#include <string.h>

#include "nodes.h"
#include "vkflow/guidance.h"

/* ComfyUI's KSampler.SAMPLERS and SCHEDULERS, in order (the sampler list
 * is also vkf_sampler_names(); tests/models/test_guidance.c checks they
 * agree). */
static const char *const sampler_options[] = {
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

static const char *const scheduler_options[] = {
    "simple", "sgm_uniform", "karras", "exponential", "ddim_uniform", "beta", "normal",
    "linear_quadratic", "kl_optimal", NULL,
};

const char *const *vkf_ksampler_sampler_options(void);
const char *const *vkf_ksampler_scheduler_options(void);

const char *const *vkf_ksampler_sampler_options(void)
{
    return sampler_options;
}

const char *const *vkf_ksampler_scheduler_options(void)
{
    return scheduler_options;
}


#define SEED_INPUT(nm, tip)                                                       \
    {.name = (nm), .type = VKF_T_INT, .flags = VKF_IN_SEED_CONTROL | VKF_IN_U64,  \
     .idef = 0, .imin = 0, .imax = INT64_MAX, .tooltip = (tip)}
#define CFG_INPUT(nm, tip)                                                        \
    {.name = (nm), .type = VKF_T_FLOAT, .fdef = 8.0, .fmin = 0.0, .fmax = 100.0,  \
     .fstep = 0.1, .fround = 0.01, .tooltip = (tip)}

static int fail(vkf_exec_ctx *ctx, const char *node, int err, const vkf_errbuf *e)
{
    if (err == VKF_EINTERRUPTED)
        return err;
    return vkf_exec_error(ctx, "%s: %s", node, e->msg[0] ? e->msg : vkf_strerror(err));
}

/* common_ksampler */
static int common_ksampler(vkf_exec_ctx *ctx, const char *node, vkf_model *model,
                           uint64_t seed, int steps, double cfg, const char *sampler_name,
                           const char *scheduler, vkf_conditioning *pos, vkf_conditioning *neg,
                           const vkf_latent *latent, double denoise, bool disable_noise,
                           int start_step, int last_step, bool force_full_denoise,
                           vkf_value *out)
{
    vkf_errbuf e = {{0}};
    vkf_scheduler sch;
    if (!model || !pos || !neg || !latent)
        return vkf_exec_error(ctx, "%s: missing model, conditioning or latent", node);
    if (vkf_scheduler_from_name(scheduler, &sch) < 0)
        return vkf_exec_error(ctx, "%s: unknown scheduler '%s'", node, scheduler);
    float *sigmas = NULL;
    int n = 0;
    bool skip = false;
    int err = vkf_ksampler_window_sigmas(model->ms, sch, sampler_name, steps, denoise, start_step,
                                         last_step, force_full_denoise, &sigmas, &n, &skip);
    if (err < 0)
        return vkf_exec_error(ctx, "%s: computing the %s schedule for %d steps failed: %s", node,
                              scheduler, steps, vkf_strerror(err));
    vkf_guide_spec spec = {.model = model, .positive = pos, .negative = neg, .cfg = cfg};
    vkf_latent_sample_params p = {
        .ctx = ctx,
        .guide = &spec,
        .latent = latent,
        .noise = {.disabled = disable_noise, .seed = seed},
        .seed = seed,
        .sampler_name = sampler_name,
        .sigmas = sigmas,
        .n_sigmas = n,
        .skip = skip,
        .kernel = VKF_RANDN_AVX2,
        .log = vkf_exec_log(ctx),
    };
    err = vkf_sample_latent(&p, out, NULL, &e);
    vkf_free(sigmas);
    return err < 0 ? fail(ctx, node, err, &e) : 0;
}

/* ---- KSampler ---- */

static int ksampler_execute(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    return common_ksampler(ctx, "KSampler", vkf_value_model(&in[0]), vkf_value_u64(&in[1]),
                           (int)in[2].u.i, in[3].u.f, in[4].u.s, in[5].u.s,
                           vkf_value_conditioning(&in[6]), vkf_value_conditioning(&in[7]),
                           vkf_value_latent(&in[8]), in[9].u.f, false, -1, -1, false, &out[0]);
}

static const vkf_input_def ksampler_inputs[] = {
    {.name = "model", .type = "MODEL", .tooltip = "The model used for denoising the input latent."},
    SEED_INPUT("seed", "The random seed used for creating the noise."),
    {.name = "steps", .type = VKF_T_INT, .idef = 20, .imin = 1, .imax = 10000,
     .tooltip = "The number of steps used in the denoising process."},
    CFG_INPUT("cfg", "The Classifier-Free Guidance scale balances creativity and adherence to "
                     "the prompt. Higher values result in images more closely matching the "
                     "prompt however too high values will negatively impact quality."),
    {.name = "sampler_name", .type = VKF_T_COMBO, .options = sampler_options,
     .tooltip = "The algorithm used when sampling, this can affect the quality, speed, and "
                "style of the generated output."},
    {.name = "scheduler", .type = VKF_T_COMBO, .options = scheduler_options,
     .tooltip = "The scheduler controls how noise is gradually removed to form the image."},
    {.name = "positive", .type = "CONDITIONING",
     .tooltip = "The conditioning describing the attributes you want to include in the image."},
    {.name = "negative", .type = "CONDITIONING",
     .tooltip = "The conditioning describing the attributes you want to exclude from the image."},
    {.name = "latent_image", .type = "LATENT", .tooltip = "The latent image to denoise."},
    {.name = "denoise", .type = VKF_T_FLOAT, .fdef = 1.0, .fmin = 0.0, .fmax = 1.0, .fstep = 0.01,
     .tooltip = "The amount of denoising applied, lower values will maintain the structure of "
                "the initial image allowing for image to image sampling."},
};
static const vkf_output_def latent_output[] = {
    {.type = "LATENT", .tooltip = "The denoised latent."},
};

const vkf_node_def vkf_node_KSampler = {
    .name = "KSampler",
    .display_name = "KSampler",
    .category = "sampling",
    .description = "Uses the provided model, positive and negative conditioning to denoise the "
                   "latent image.",
    .python_module = "nodes",
    .inputs = ksampler_inputs, .nb_inputs = VKF_ARRAY_SIZE(ksampler_inputs),
    .outputs = latent_output, .nb_outputs = 1,
    .execute = ksampler_execute,
};

/* ---- KSamplerAdvanced ---- */

static const char *const enable_disable[] = {"enable", "disable", NULL};
static const char *const disable_enable[] = {"disable", "enable", NULL};

static int ksampler_adv_execute(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    bool disable_noise = !strcmp(in[1].u.s, "disable");
    bool force_full = strcmp(in[12].u.s, "enable") != 0;
    return common_ksampler(ctx, "KSamplerAdvanced", vkf_value_model(&in[0]),
                           vkf_value_u64(&in[2]), (int)in[3].u.i, in[4].u.f, in[5].u.s, in[6].u.s,
                           vkf_value_conditioning(&in[7]), vkf_value_conditioning(&in[8]),
                           vkf_value_latent(&in[9]), 1.0, disable_noise, (int)in[10].u.i,
                           (int)in[11].u.i, force_full, &out[0]);
}

static const vkf_input_def ksampler_adv_inputs[] = {
    {.name = "model", .type = "MODEL"},
    {.name = "add_noise", .type = VKF_T_COMBO, .options = enable_disable},
    SEED_INPUT("noise_seed", NULL),
    {.name = "steps", .type = VKF_T_INT, .idef = 20, .imin = 1, .imax = 10000},
    CFG_INPUT("cfg", NULL),
    {.name = "sampler_name", .type = VKF_T_COMBO, .options = sampler_options},
    {.name = "scheduler", .type = VKF_T_COMBO, .options = scheduler_options},
    {.name = "positive", .type = "CONDITIONING"},
    {.name = "negative", .type = "CONDITIONING"},
    {.name = "latent_image", .type = "LATENT"},
    {.name = "start_at_step", .type = VKF_T_INT, .idef = 0, .imin = 0, .imax = 10000},
    {.name = "end_at_step", .type = VKF_T_INT, .idef = 10000, .imin = 0, .imax = 10000},
    {.name = "return_with_leftover_noise", .type = VKF_T_COMBO, .options = disable_enable},
};
static const vkf_output_def latent_output_plain[] = {{.type = "LATENT"}};

const vkf_node_def vkf_node_KSamplerAdvanced = {
    .name = "KSamplerAdvanced",
    .display_name = "KSampler (Advanced)",
    .category = "sampling",
    .python_module = "nodes",
    .inputs = ksampler_adv_inputs, .nb_inputs = VKF_ARRAY_SIZE(ksampler_adv_inputs),
    .outputs = latent_output_plain, .nb_outputs = 1,
    .execute = ksampler_adv_execute,
};

/* ---- SamplerCustom / SamplerCustomAdvanced ---- */

static int custom_sample(vkf_exec_ctx *ctx, const char *node, const vkf_guide_spec *spec,
                         vkf_noise_spec noise, uint64_t seed, const vkf_sampler_obj *sampler,
                         const vkf_sigmas *sigmas, const vkf_latent *latent, vkf_value *out)
{
    vkf_errbuf e = {{0}};
    if (!spec->model || !sampler || !sigmas || !latent)
        return vkf_exec_error(ctx, "%s: missing model, sampler, sigmas or latent", node);
    vkf_latent_sample_params p = {
        .ctx = ctx,
        .guide = spec,
        .latent = latent,
        .noise = noise,
        .seed = seed,
        .sampler = sampler,
        .sigmas = sigmas->s,
        .n_sigmas = sigmas->n,
        .kernel = VKF_RANDN_AVX2,
        .log = vkf_exec_log(ctx),
    };
    int err = vkf_sample_latent(&p, &out[0], &out[1], &e);
    return err < 0 ? fail(ctx, node, err, &e) : 0;
}

static int sampler_custom_execute(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    uint64_t seed = vkf_value_u64(&in[2]);
    vkf_guide_spec spec = {
        .model = vkf_value_model(&in[0]),
        .positive = vkf_value_conditioning(&in[4]),
        .negative = vkf_value_conditioning(&in[5]),
        .cfg = in[3].u.f,
    };
    if (!spec.positive || !spec.negative)
        return vkf_exec_error(ctx, "SamplerCustom: missing conditioning");
    vkf_noise_spec noise = {.disabled = !in[1].u.b, .seed = seed};
    return custom_sample(ctx, "SamplerCustom", &spec, noise, seed, vkf_value_sampler(&in[6]),
                         vkf_value_sigmas(&in[7]), vkf_value_latent(&in[8]), out);
}

static const vkf_input_def sampler_custom_inputs[] = {
    {.name = "model", .type = "MODEL"},
    {.name = "add_noise", .type = VKF_T_BOOLEAN, .bdef = true},
    SEED_INPUT("noise_seed", NULL),
    CFG_INPUT("cfg", NULL),
    {.name = "positive", .type = "CONDITIONING"},
    {.name = "negative", .type = "CONDITIONING"},
    {.name = "sampler", .type = "SAMPLER"},
    {.name = "sigmas", .type = "SIGMAS"},
    {.name = "latent_image", .type = "LATENT"},
};
static const vkf_output_def custom_outputs[] = {
    {.type = "LATENT", .name = "output"},
    {.type = "LATENT", .name = "denoised_output"},
};

const vkf_node_def vkf_node_SamplerCustom = {
    .name = "SamplerCustom",
    .display_name = "SamplerCustom",
    .category = "sampling/custom_sampling",
    .python_module = "comfy_extras.nodes_custom_sampler",
    .inputs = sampler_custom_inputs, .nb_inputs = VKF_ARRAY_SIZE(sampler_custom_inputs),
    .outputs = custom_outputs, .nb_outputs = 2,
    .execute = sampler_custom_execute,
};

static int sampler_custom_adv_execute(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    const vkf_noise *nz = vkf_value_noise(&in[0]);
    const vkf_guider *gd = vkf_value_guider(&in[1]);
    if (!nz || !gd || !gd->model || !gd->positive)
        return vkf_exec_error(ctx, "SamplerCustomAdvanced: missing noise or guider");
    vkf_guide_spec spec;
    vkf_guide_spec_from_guider(gd, &spec);
    /* Noise_EmptyNoise has seed 0; the sampler's seed is noise.seed */
    uint64_t seed = nz->disabled ? 0 : nz->seed;
    vkf_noise_spec noise = {.disabled = nz->disabled, .seed = seed};
    return custom_sample(ctx, "SamplerCustomAdvanced", &spec, noise, seed,
                         vkf_value_sampler(&in[2]), vkf_value_sigmas(&in[3]),
                         vkf_value_latent(&in[4]), out);
}

static const vkf_input_def sampler_custom_adv_inputs[] = {
    {.name = "noise", .type = "NOISE"},
    {.name = "guider", .type = "GUIDER"},
    {.name = "sampler", .type = "SAMPLER"},
    {.name = "sigmas", .type = "SIGMAS"},
    {.name = "latent_image", .type = "LATENT"},
};

const vkf_node_def vkf_node_SamplerCustomAdvanced = {
    .name = "SamplerCustomAdvanced",
    .display_name = "SamplerCustomAdvanced",
    .category = "sampling/custom_sampling",
    .python_module = "comfy_extras.nodes_custom_sampler",
    .inputs = sampler_custom_adv_inputs, .nb_inputs = VKF_ARRAY_SIZE(sampler_custom_adv_inputs),
    .outputs = custom_outputs, .nb_outputs = 2,
    .execute = sampler_custom_adv_execute,
};

/* ---- guiders ---- */

static vkf_object *oref(void *o)
{
    return o ? vkf_object_ref((vkf_object *)o) : NULL;
}

static int guider_out(vkf_exec_ctx *ctx, const char *node, vkf_model *model,
                      vkf_conditioning *pos, vkf_conditioning *neg, vkf_conditioning *cond2,
                      double cfg, double cfg2, bool dual, vkf_value *out)
{
    if (!model || !pos || (dual && (!neg || !cond2)))
        return vkf_exec_error(ctx, "%s: missing model or conditioning", node);
    vkf_guider *g = vkf_guider_new();
    if (!g)
        return VKF_ENOMEM;
    g->model = (vkf_model *)oref(model);
    g->positive = (vkf_conditioning *)oref(pos);
    g->negative = (vkf_conditioning *)oref(neg);
    g->cond2 = (vkf_conditioning *)oref(cond2);
    g->cfg = cfg;
    g->cfg_cond2_negative = cfg2;
    g->dual = dual;
    vkf_value_set_object(out, &g->obj);
    return 0;
}

static int basic_guider_execute(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    return guider_out(ctx, "BasicGuider", vkf_value_model(&in[0]),
                      vkf_value_conditioning(&in[1]), NULL, NULL, 1.0, 1.0, false, &out[0]);
}

static const vkf_input_def basic_guider_inputs[] = {
    {.name = "model", .type = "MODEL"},
    {.name = "conditioning", .type = "CONDITIONING"},
};
static const vkf_output_def guider_output[] = {{.type = "GUIDER"}};

const vkf_node_def vkf_node_BasicGuider = {
    .name = "BasicGuider",
    .display_name = "BasicGuider",
    .category = "sampling/custom_sampling/guiders",
    .python_module = "comfy_extras.nodes_custom_sampler",
    .inputs = basic_guider_inputs, .nb_inputs = VKF_ARRAY_SIZE(basic_guider_inputs),
    .outputs = guider_output, .nb_outputs = 1,
    .execute = basic_guider_execute,
};

static int cfg_guider_execute(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    vkf_conditioning *neg = vkf_value_conditioning(&in[2]);
    if (!neg)
        return vkf_exec_error(ctx, "CFGGuider: missing negative conditioning");
    return guider_out(ctx, "CFGGuider", vkf_value_model(&in[0]), vkf_value_conditioning(&in[1]),
                      neg, NULL, in[3].u.f, 1.0, false, &out[0]);
}

static const vkf_input_def cfg_guider_inputs[] = {
    {.name = "model", .type = "MODEL"},
    {.name = "positive", .type = "CONDITIONING"},
    {.name = "negative", .type = "CONDITIONING"},
    CFG_INPUT("cfg", NULL),
};

const vkf_node_def vkf_node_CFGGuider = {
    .name = "CFGGuider",
    .display_name = "CFGGuider",
    .category = "sampling/custom_sampling/guiders",
    .python_module = "comfy_extras.nodes_custom_sampler",
    .inputs = cfg_guider_inputs, .nb_inputs = VKF_ARRAY_SIZE(cfg_guider_inputs),
    .outputs = guider_output, .nb_outputs = 1,
    .execute = cfg_guider_execute,
};

static const char *const dual_styles[] = {"regular", "nested", NULL};

static int dual_guider_execute(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    int err = guider_out(ctx, "DualCFGGuider", vkf_value_model(&in[0]),
                         vkf_value_conditioning(&in[1]), vkf_value_conditioning(&in[3]),
                         vkf_value_conditioning(&in[2]), in[4].u.f, in[5].u.f, true, &out[0]);
    if (err == 0 && in[6].kind == VKF_VAL_STRING && !strcmp(in[6].u.s, "nested"))
        vkf_value_guider(&out[0])->nested = true;
    return err;
}

static const vkf_input_def dual_guider_inputs[] = {
    {.name = "model", .type = "MODEL"},
    {.name = "cond1", .type = "CONDITIONING"},
    {.name = "cond2", .type = "CONDITIONING"},
    {.name = "negative", .type = "CONDITIONING"},
    CFG_INPUT("cfg_conds", NULL),
    CFG_INPUT("cfg_cond2_negative", NULL),
    {.name = "style", .type = VKF_T_COMBO, .options = dual_styles},
};

const vkf_node_def vkf_node_DualCFGGuider = {
    .name = "DualCFGGuider",
    .display_name = "DualCFGGuider",
    .category = "sampling/custom_sampling/guiders",
    .python_module = "comfy_extras.nodes_custom_sampler",
    .inputs = dual_guider_inputs, .nb_inputs = VKF_ARRAY_SIZE(dual_guider_inputs),
    .outputs = guider_output, .nb_outputs = 1,
    .execute = dual_guider_execute,
};

/* ---- noise ---- */

static int noise_out(vkf_value *out, uint64_t seed, bool disabled)
{
    vkf_noise *n = vkf_noise_new(seed, disabled);
    if (!n)
        return VKF_ENOMEM;
    vkf_value_set_object(out, &n->obj);
    return 0;
}

static int random_noise_execute(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    (void)ctx;
    return noise_out(&out[0], vkf_value_u64(&in[0]), false);
}

static const vkf_input_def random_noise_inputs[] = {
    SEED_INPUT("noise_seed", NULL),
};
static const vkf_output_def noise_output[] = {{.type = "NOISE"}};

const vkf_node_def vkf_node_RandomNoise = {
    .name = "RandomNoise",
    .display_name = "RandomNoise",
    .category = "sampling/custom_sampling/noise",
    .python_module = "comfy_extras.nodes_custom_sampler",
    .inputs = random_noise_inputs, .nb_inputs = 1,
    .outputs = noise_output, .nb_outputs = 1,
    .execute = random_noise_execute,
};

static int disable_noise_execute(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    (void)ctx;
    (void)in;
    return noise_out(&out[0], 0, true);
}

const vkf_node_def vkf_node_DisableNoise = {
    .name = "DisableNoise",
    .display_name = "DisableNoise",
    .category = "sampling/custom_sampling/noise",
    .python_module = "comfy_extras.nodes_custom_sampler",
    .inputs = NULL, .nb_inputs = 0,
    .outputs = noise_output, .nb_outputs = 1,
    .execute = disable_noise_execute,
};
