/*
 * Model loaders (ComfyUI nodes.py): CheckpointLoaderSimple, CheckpointLoader
 * (deprecated; the config file is not needed), UNETLoader, CLIPLoader; and
 * ModelSamplingDiscrete (comfy_extras/nodes_model_advanced.py).
 *
 * Loaded models are reused across runs of one process through the
 * executor's output cache: a loader's signature is its inputs plus a
 * fingerprint of the file (size and modification time), so the same file
 * is loaded once and a replaced file is loaded again.
 *
 * What is refused, by name: families other than SD1.x/SD2.x (see
 * vkflow/checkpoint.h), UNETLoader weight_dtype other than "default",
 * CLIPLoader types other than "stable_diffusion", ModelSamplingDiscrete
 * sampling "lcm", "x0" and "img_to_img".
 */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "nodes.h"
#include "vkflow/checkpoint.h"
#include "vkflow/paths.h"

/* ---- shared -------------------------------------------------------------- */

/* IS_CHANGED of a model file: its size and modification time. */
static int file_fingerprint(vkf_exec_ctx *ctx, const char *folder, const vkf_value *name,
                            char **key)
{
    *key = NULL;
    if (name->kind != VKF_VAL_STRING)
        return 0;
    char *path = NULL;
    int err = vkf_paths_resolve(vkf_exec_paths(ctx), folder, name->u.s, &path);
    if (err == VKF_ENOMEM)
        return err;
    if (err < 0)
        return 0;   /* "always run": execution reports the missing file */
    struct stat st;
    if (stat(path, &st) != 0) {
        vkf_free(path);
        return 0;
    }
    *key = vkf_asprintf("%s|%lld|%lld.%09ld", path, (long long)st.st_size,
                        (long long)st.st_mtim.tv_sec, (long)st.st_mtim.tv_nsec);
    vkf_free(path);
    return *key ? 0 : VKF_ENOMEM;
}

static int resolve(vkf_exec_ctx *ctx, const char *folder, const char *name, char **path)
{
    int err = vkf_paths_resolve(vkf_exec_paths(ctx), folder, name, path);
    if (err == VKF_ENOMEM)
        return err;
    if (err == VKF_EPERM)
        return vkf_exec_error(ctx, "%s: refused: the name leaves the %s folder", name, folder);
    if (err < 0)
        return vkf_exec_error(ctx, "%s: not found in the %s folder", name, folder);
    return 0;
}

static int load_checkpoint_file(vkf_exec_ctx *ctx, const char *name, vkf_value *out)
{
    char *path = NULL;
    vkf_gpu *gpu = NULL;
    int err = resolve(ctx, "checkpoints", name, &path);
    if (err < 0)
        return err;
    if ((err = vkf_exec_gpu(ctx, &gpu)) < 0) {
        vkf_free(path);
        return err;
    }
    vkf_checkpoint ck;
    vkf_errbuf e = {{0}};
    err = vkf_checkpoint_load(gpu, path, VKF_CKPT_ALL, vkf_exec_log(ctx), &ck, &e);
    vkf_free(path);
    if (err == VKF_ENOMEM || err == VKF_EDEVICE_OOM)
        return err;
    if (err < 0)
        return vkf_exec_error(ctx, "%s", e.msg[0] ? e.msg : vkf_strerror(err));
    vkf_value_set_object(&out[0], &ck.model->obj);
    vkf_value_set_object(&out[1], &ck.clip->obj);
    vkf_value_set_object(&out[2], &ck.vae->obj);
    return 0;
}

static const vkf_output_def checkpoint_outputs[] = {
    {.type = "MODEL", .tooltip = "The model used for denoising latents."},
    {.type = "CLIP", .tooltip = "The CLIP model used for encoding text prompts."},
    {.type = "VAE",
     .tooltip = "The VAE model used for encoding and decoding images to and from latent space."},
};

/* ---- CheckpointLoaderSimple ---------------------------------------------- */

static int ckpt_simple_execute(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    return load_checkpoint_file(ctx, in[0].u.s, out);
}

static int ckpt_simple_fingerprint(vkf_exec_ctx *ctx, const vkf_value *in, char **key)
{
    return file_fingerprint(ctx, "checkpoints", &in[0], key);
}

static const vkf_input_def ckpt_simple_inputs[] = {
    {.name = "ckpt_name", .type = VKF_T_COMBO, .model_folder = "checkpoints",
     .tooltip = "The name of the checkpoint (model) to load."},
};

const vkf_node_def vkf_node_CheckpointLoaderSimple = {
    .name = "CheckpointLoaderSimple",
    .display_name = "Load Checkpoint",
    .category = "loaders",
    .description = "Loads a diffusion model checkpoint, diffusion models are used to denoise "
                   "latents.",
    .python_module = "nodes",
    .inputs = ckpt_simple_inputs, .nb_inputs = 1,
    .outputs = checkpoint_outputs, .nb_outputs = 3,
    .execute = ckpt_simple_execute,
    .fingerprint = ckpt_simple_fingerprint,
};

/* ---- CheckpointLoader (deprecated) --------------------------------------- */

/* The model configuration is read from the weights, as ComfyUI itself does
 * for every checkpoint; the YAML file is not needed. */
static int ckpt_config_execute(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    vkf_logf(vkf_exec_log(ctx), VKF_LOG_INFO,
             "CheckpointLoader: config '%s' is not used; the configuration is read from the "
             "weights", in[0].u.s);
    return load_checkpoint_file(ctx, in[1].u.s, out);
}

static int ckpt_config_fingerprint(vkf_exec_ctx *ctx, const vkf_value *in, char **key)
{
    return file_fingerprint(ctx, "checkpoints", &in[1], key);
}

static const vkf_input_def ckpt_config_inputs[] = {
    {.name = "config_name", .type = VKF_T_COMBO, .model_folder = "configs"},
    {.name = "ckpt_name", .type = VKF_T_COMBO, .model_folder = "checkpoints"},
};

const vkf_node_def vkf_node_CheckpointLoader = {
    .name = "CheckpointLoader",
    .display_name = "Load Checkpoint With Config (DEPRECATED)",
    .category = "advanced/loaders",
    .python_module = "nodes",
    .inputs = ckpt_config_inputs, .nb_inputs = 2,
    .outputs = checkpoint_outputs, .nb_outputs = 3,
    .flags = VKF_NODE_DEPRECATED,
    .execute = ckpt_config_execute,
    .fingerprint = ckpt_config_fingerprint,
};

/* ---- UNETLoader ---------------------------------------------------------- */

static const char *const unet_dtypes[] = {"default", "fp8_e4m3fn", "fp8_e4m3fn_fast", "fp8_e5m2",
                                          NULL};

static int unet_execute(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    const char *dtype = in[1].u.s;
    if (strcmp(dtype, "default"))
        return vkf_exec_error(ctx,
                              "weight_dtype '%s' is not supported: vkflow does not cast weights "
                              "to fp8 on load (it keeps the file's f32/f16/bf16 weights, and "
                              "reads fp8 files as they are); choose 'default'", dtype);
    char *path = NULL;
    vkf_gpu *gpu = NULL;
    int err = resolve(ctx, "diffusion_models", in[0].u.s, &path);
    if (err < 0)
        return err;
    if ((err = vkf_exec_gpu(ctx, &gpu)) < 0) {
        vkf_free(path);
        return err;
    }
    vkf_model *m = NULL;
    vkf_errbuf e = {{0}};
    err = vkf_diffusion_model_load_file(gpu, path, vkf_exec_log(ctx), &m, &e);
    vkf_free(path);
    if (err == VKF_ENOMEM || err == VKF_EDEVICE_OOM)
        return err;
    if (err < 0)
        return vkf_exec_error(ctx, "%s", e.msg[0] ? e.msg : vkf_strerror(err));
    vkf_value_set_object(&out[0], &m->obj);
    return 0;
}

static int unet_fingerprint(vkf_exec_ctx *ctx, const vkf_value *in, char **key)
{
    return file_fingerprint(ctx, "diffusion_models", &in[0], key);
}

static const vkf_input_def unet_inputs[] = {
    {.name = "unet_name", .type = VKF_T_COMBO, .model_folder = "diffusion_models"},
    {.name = "weight_dtype", .type = VKF_T_COMBO, .options = unet_dtypes},
};
static const vkf_output_def model_output[] = {{.type = "MODEL"}};

const vkf_node_def vkf_node_UNETLoader = {
    .name = "UNETLoader",
    .display_name = "Load Diffusion Model",
    .category = "advanced/loaders",
    .python_module = "nodes",
    .inputs = unet_inputs, .nb_inputs = 2,
    .outputs = model_output, .nb_outputs = 1,
    .execute = unet_execute,
    .fingerprint = unet_fingerprint,
};

/* ---- CLIPLoader ---------------------------------------------------------- */

static const char *const clip_types[] = {
    "stable_diffusion", "stable_cascade", "sd3", "stable_audio", "mochi", "ltxv", "pixart",
    "cosmos", "lumina2", "wan", "hidream", "chroma", "ace", "omnigen2", "qwen_image",
    "hunyuan_image", "flux2", "ovis", "longcat_image", NULL,
};
static const char *const clip_devices[] = {"default", "cpu", NULL};

static int clip_execute(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    const char *type = in[1].u.s;
    if (strcmp(type, "stable_diffusion"))
        return vkf_exec_error(ctx,
                              "CLIPLoader type '%s' is not supported yet; vkflow loads SD1.x "
                              "(CLIP-L) and SD2.x (OpenCLIP-H) text encoders with type "
                              "'stable_diffusion'", type);
    if (in[2].kind == VKF_VAL_STRING && !strcmp(in[2].u.s, "cpu"))
        vkf_logf(vkf_exec_log(ctx), VKF_LOG_INFO,
                 "CLIPLoader: device 'cpu': vkflow runs the text encoder on the Vulkan device");
    char *path = NULL;
    vkf_gpu *gpu = NULL;
    int err = resolve(ctx, "text_encoders", in[0].u.s, &path);
    if (err < 0)
        return err;
    if ((err = vkf_exec_gpu(ctx, &gpu)) < 0) {
        vkf_free(path);
        return err;
    }
    vkf_clip *c = NULL;
    vkf_errbuf e = {{0}};
    err = vkf_text_encoder_load_file(gpu, path, vkf_exec_log(ctx), &c, &e);
    vkf_free(path);
    if (err == VKF_ENOMEM || err == VKF_EDEVICE_OOM)
        return err;
    if (err < 0)
        return vkf_exec_error(ctx, "%s", e.msg[0] ? e.msg : vkf_strerror(err));
    vkf_value_set_object(&out[0], &c->obj);
    return 0;
}

static int clip_fingerprint(vkf_exec_ctx *ctx, const vkf_value *in, char **key)
{
    return file_fingerprint(ctx, "text_encoders", &in[0], key);
}

static const vkf_input_def clip_inputs[] = {
    {.name = "clip_name", .type = VKF_T_COMBO, .model_folder = "text_encoders"},
    {.name = "type", .type = VKF_T_COMBO, .options = clip_types},
    {.name = "device", .type = VKF_T_COMBO, .flags = VKF_IN_OPTIONAL, .options = clip_devices},
};
static const vkf_output_def clip_output[] = {{.type = "CLIP"}};

const vkf_node_def vkf_node_CLIPLoader = {
    .name = "CLIPLoader",
    .display_name = "Load CLIP",
    .category = "advanced/loaders",
    .description = "Loads a text encoder.  Type stable_diffusion: CLIP-L (SD1.x) or OpenCLIP-H "
                   "(SD2.x), told apart by the weights.",
    .python_module = "nodes",
    .inputs = clip_inputs, .nb_inputs = 3,
    .outputs = clip_output, .nb_outputs = 1,
    .execute = clip_execute,
    .fingerprint = clip_fingerprint,
};

/* ---- DualCLIPLoader (type sdxl) ------------------------------------------- */

static const char *const dual_types[] = {"sdxl", "sd3", "flux", "hunyuan_video", "hidream",
                                         "hunyuan_image", "hunyuan_video_15", "kandinsky5",
                                         "kandinsky5_image", "newbie", NULL};

static int dual_clip_execute(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    const char *type = in[2].u.s;
    if (strcmp(type, "sdxl"))
        return vkf_exec_error(ctx, "DualCLIPLoader type '%s' is not supported yet; vkflow "
                              "loads SDXL's CLIP-L + OpenCLIP-bigG with type 'sdxl'", type);
    char *p1 = NULL, *p2 = NULL;
    vkf_gpu *gpu = NULL;
    int err = resolve(ctx, "text_encoders", in[0].u.s, &p1);
    if (err >= 0)
        err = resolve(ctx, "text_encoders", in[1].u.s, &p2);
    if (err >= 0)
        err = vkf_exec_gpu(ctx, &gpu);
    vkf_clip *c = NULL;
    vkf_errbuf e = {{0}};
    if (err >= 0)
        err = vkf_text_encoder_load_sdxl(gpu, p1, p2, vkf_exec_log(ctx), &c, &e);
    vkf_free(p1);
    vkf_free(p2);
    if (err == VKF_ENOMEM || err == VKF_EDEVICE_OOM)
        return err;
    if (err < 0)
        return e.msg[0] ? vkf_exec_error(ctx, "%s", e.msg) : err;
    vkf_value_set_object(&out[0], &c->obj);
    return 0;
}

static const vkf_input_def dual_clip_inputs[] = {
    {.name = "clip_name1", .type = VKF_T_COMBO, .model_folder = "text_encoders"},
    {.name = "clip_name2", .type = VKF_T_COMBO, .model_folder = "text_encoders"},
    {.name = "type", .type = VKF_T_COMBO, .options = dual_types},
    {.name = "device", .type = VKF_T_COMBO, .flags = VKF_IN_OPTIONAL, .options = clip_devices},
};

const vkf_node_def vkf_node_DualCLIPLoader = {
    .name = "DualCLIPLoader",
    .category = "advanced/loaders",
    .description = "Loads two text encoders.  Type sdxl: CLIP-L + OpenCLIP-bigG in either "
                   "order.",
    .python_module = "nodes",
    .inputs = dual_clip_inputs, .nb_inputs = 4,
    .outputs = clip_output, .nb_outputs = 1,
    .execute = dual_clip_execute,
};

/* ---- ModelSamplingDiscrete ----------------------------------------------- */

static const char *const msd_samplings[] = {"eps", "v_prediction", "lcm", "x0", "img_to_img",
                                            NULL};

static int msd_execute(vkf_exec_ctx *ctx, const vkf_value *in, vkf_value *out)
{
    vkf_model *src = vkf_value_model(&in[0]);
    const char *sampling = in[1].u.s;
    bool zsnr = in[2].u.b;
    if (!src)
        return vkf_exec_error(ctx, "model: not a MODEL");
    vkf_prediction pred;
    if (!strcmp(sampling, "eps"))
        pred = VKF_PREDICTION_EPS;
    else if (!strcmp(sampling, "v_prediction"))
        pred = VKF_PREDICTION_V;
    else if (!strcmp(sampling, "lcm"))
        return vkf_exec_error(ctx, "sampling 'lcm' is not supported yet (LCM's distilled "
                                   "schedule and boundary-condition output); 'eps' and "
                                   "'v_prediction' are");
    else if (!strcmp(sampling, "x0"))
        return vkf_exec_error(ctx, "sampling 'x0' (models that predict the clean image) is not "
                                   "supported yet; 'eps' and 'v_prediction' are");
    else
        return vkf_exec_error(ctx, "sampling '%s' is not supported yet; 'eps' and "
                                   "'v_prediction' are", sampling);
    if (src->ms && src->ms->kind != VKF_MODEL_SAMPLING_DISCRETE)
        return vkf_exec_error(ctx, "ModelSamplingDiscrete needs a discrete-time model "
                                   "(SD1.x/SD2.x); this MODEL samples in flow time");
    vkf_model_sampling *ms = NULL;
    /* SD1.x/SD2.x's beta schedule (supported_models sampling_settings). */
    int err = vkf_model_sampling_discrete(&ms, pred, 0.00085, 0.012, 1000, zsnr);
    if (err < 0)
        return err == VKF_ENOMEM ? err : vkf_exec_error(ctx, "model sampling: %s",
                                                        vkf_strerror(err));
    vkf_model *m = vkf_model_new(src->dm, ms, src->latent);
    if (!m) {
        vkf_model_sampling_destroy(&ms);
        return VKF_ENOMEM;
    }
    vkf_value_set_object(&out[0], &m->obj);
    return 0;
}

static const vkf_input_def msd_inputs[] = {
    VKF_INPUT_LINK("model", "MODEL"),
    {.name = "sampling", .type = VKF_T_COMBO, .options = msd_samplings},
    VKF_INPUT_BOOL("zsnr", false),
};

const vkf_node_def vkf_node_ModelSamplingDiscrete = {
    .name = "ModelSamplingDiscrete",
    .display_name = "ModelSamplingDiscrete",
    .category = "advanced/model",
    .python_module = "comfy_extras.nodes_model_advanced",
    .inputs = msd_inputs, .nb_inputs = 3,
    .outputs = model_output, .nb_outputs = 1,
    .execute = msd_execute,
};
