/*
 * vkflow — diffusion-model building blocks and the link types that carry
 * them between nodes (ComfyUI's MODEL, CLIP, VAE, CONDITIONING, SAMPLER,
 * SIGMAS, NOISE, GUIDER).
 *
 * Sections, each implemented in its own file:
 *   errors                       core/models/common.c
 *   safetensors writer           core/io/st_write.c
 *   CLIP tokenizer + weighting   core/text/clip_tokenizer.c, prompt.c
 *   CLIP text model              core/models/clip_text.c
 *   diffusion models (UNet)      core/models/unet.c
 *   VAE (KL-f8) and TAESD        core/models/vae.c, core/models/taesd.c
 *   link-type objects            core/models/objects.c
 *   checkpoint loading, synth    core/models/checkpoint.c, core/models/synth.c
 *
 * Conventions: GPU tensors are NCHW f32 unless stated; every function
 * returns 0 or a VKF_E* code.  A function that can fail for a reason the
 * user must read takes a vkf_errbuf and fills it with one sentence (file,
 * tensor name, what was expected, what was found).
 */
#ifndef VKFLOW_MODELS_H
#define VKFLOW_MODELS_H

#include "common.h"
#include "gpu.h"
#include "sampling.h"
#include "value.h"
#include "weights.h"

/* ------------------------------------------------------------------------ */
/* errors                                                                    */

typedef struct vkf_errbuf {
    char msg[1024];
} vkf_errbuf;

/* Sets e->msg (if e is non-NULL) and returns code, so
 * `return vkf_errbuf_set(e, VKF_EUNSUPPORTED, "...")` reads naturally. */
int vkf_errbuf_set(vkf_errbuf *e, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ------------------------------------------------------------------------ */
/* safetensors writer (synthesized test models, SaveLatent)                 */

/*
 * Records tensors, writes them at save time (streamed; nothing is held in
 * memory except VKF_ST_DATA copies).  Random tensors are a pure function of
 * (writer seed, tensor name): uniform in [mean - std·√3, mean + std·√3]
 * from a counter-based integer generator, identical on every machine, so a
 * synthesized model is byte-identical everywhere.  Tensors are written in
 * name order (as safetensors' Python writer does).
 */
typedef struct vkf_st_writer vkf_st_writer;

int vkf_st_writer_create(uint64_t seed, vkf_st_writer **out);
void vkf_st_writer_destroy(vkf_st_writer **w);
/* dtype: F32, F16 or BF16.  Duplicate names are VKF_EINVAL. */
int vkf_st_writer_add_random(vkf_st_writer *w, const char *name, vkf_wdtype dtype,
                             int ndim, const int64_t *shape, float mean, float std);
int vkf_st_writer_add_const(vkf_st_writer *w, const char *name, vkf_wdtype dtype,
                            int ndim, const int64_t *shape, float value);
/* data: prod(shape) floats, copied. */
int vkf_st_writer_add_data(vkf_st_writer *w, const char *name, vkf_wdtype dtype,
                           int ndim, const int64_t *shape, const float *data);
int vkf_st_writer_add_metadata(vkf_st_writer *w, const char *key, const char *value);
int vkf_st_writer_count(const vkf_st_writer *w);
/* Atomic: a temp file renamed into place; never a half-written file. */
int vkf_st_writer_save(vkf_st_writer *w, const char *path, vkf_errbuf *e);

/* ------------------------------------------------------------------------ */
/* CLIP tokenizer and ComfyUI prompt weighting                               */

#define VKF_CLIP_VOCAB 49408
#define VKF_CLIP_BOS 49406
#define VKF_CLIP_EOS 49407
#define VKF_CLIP_CTX 77

typedef struct vkf_clip_tokenizer vkf_clip_tokenizer;

/* The BPE vocabulary embedded in the binary (openai/CLIP, MIT).  A
 * tokenizer is immutable once created: threads may share it. */
int vkf_clip_tokenizer_create(vkf_clip_tokenizer **out);
void vkf_clip_tokenizer_destroy(vkf_clip_tokenizer **t);
/* CLIP's tokenize of text without BOS/EOS: *ids vkf_malloc'ed (never NULL
 * on success, even for 0 ids), *n entries.  Cleaning as openai/CLIP without
 * ftfy (docs/models.md "Text encoding"); invalid UTF-8 reads as U+FFFD. */
int vkf_clip_tokenize(const vkf_clip_tokenizer *t, const char *text, int32_t **ids, int *n);

/* A token of a weighted prompt: id < VKF_CLIP_VOCAB is a vocabulary id;
 * id = -1 - k is row k of vkf_clip_tokens.embeds (a textual inversion). */
typedef struct vkf_clip_token {
    int32_t id;
    float weight;
} vkf_clip_token;

typedef struct vkf_clip_tokens {
    int n_chunks;             /* >= 1; each VKF_CLIP_CTX tokens: BOS .. EOS pad */
    vkf_clip_token *tok;      /* n_chunks * VKF_CLIP_CTX */
    int n_embeds;             /* rows of embeds */
    int embed_dim;
    float *embeds;            /* n_embeds * embed_dim, or NULL */
} vkf_clip_tokens;

/* Finds embeddings/<name>(.safetensors|.pt|.bin) vectors of width dim for
 * `embedding:name`: *vectors vkf_malloc'ed n * dim floats.  VKF_ENOTFOUND
 * if there is none (the word is then dropped with a warning, as ComfyUI). */
typedef int (*vkf_embedding_lookup_fn)(void *opaque, const char *name, int dim,
                                       float **vectors, int *n);

typedef struct vkf_clip_tokenize_params {
    bool pad_with_end;        /* SD1 CLIP-L: pad with EOS; OpenCLIP (SD2): with 0 */
    int embed_dim;            /* width of the text model (for embeddings) */
    vkf_embedding_lookup_fn lookup;   /* NULL: `embedding:` is plain text */
    void *opaque;
    const vkf_log *log;
} vkf_clip_tokenize_params;

/* ComfyUI's SDTokenizer.tokenize_with_weights: (word:1.2), ((word)), [x]
 * is plain text, \( \) escapes, embedding:name, words kept whole across
 * 77-token chunks where ComfyUI keeps them.  p NULL: pad_with_end, no
 * lookup.  On failure *out is zeroed; VKF_EINVAL (logged) for
 * "embedding:" without a name or a lookup with embed_dim <= 0. */
int vkf_clip_tokenize_weighted(const vkf_clip_tokenizer *t, const char *prompt,
                               const vkf_clip_tokenize_params *p, vkf_clip_tokens *out);
void vkf_clip_tokens_free(vkf_clip_tokens *t);

/* ------------------------------------------------------------------------ */
/* CLIP text model                                                           */

typedef enum vkf_clip_kind {
    VKF_CLIP_L = 0,           /* OpenAI ViT-L/14 text tower, HF key names (SD1) */
    VKF_CLIP_OPEN_H = 1,      /* OpenCLIP ViT-H/14 text tower, open_clip names (SD2) */
} vkf_clip_kind;

typedef struct vkf_clip_text_config {
    vkf_clip_kind kind;
    int width, heads, layers, n_ctx, vocab;
    int proj_dim;             /* text_projection out dim, 0 if absent */
    bool quick_gelu;          /* CLIP-L: x·σ(1.702x); OpenCLIP-H: erf GELU */
} vkf_clip_text_config;

typedef struct vkf_clip_text vkf_clip_text;

/*
 * Reads the text tower under prefix (e.g. "cond_stage_model.transformer."
 * for SD1 single files, "cond_stage_model.model." for SD2, "" for a bare
 * text-encoder file or diffusers text_encoder/), infers the config from
 * shapes and uploads the weights (f16 weights stay f16 on the device).
 */
int vkf_clip_text_load(vkf_gpu *gpu, vkf_weights *w, const char *prefix,
                       vkf_clip_text **out, vkf_errbuf *e);
void vkf_clip_text_destroy(vkf_clip_text **m);
const vkf_clip_text_config *vkf_clip_text_get_config(const vkf_clip_text *m);

/*
 * Encodes tok->n_chunks chunks (embeddings rows substituted).
 *   layer_idx: 0 = the final layer with final_layer_norm (ComfyUI "last");
 *              -k (k >= 1) = output of hidden layer layers-k, then
 *              final_layer_norm (ComfyUI's CLIPSetLastLayer(-k) with
 *              layer_norm_hidden_state; -1 equals 0; -k beyond the layer
 *              count equals 0).  Diffusers exports of SD2's encoder hold
 *              23 of OpenCLIP-H's 24 blocks: there k counts from 24 as in
 *              ComfyUI, so -2 is the last block present.
 *   *hidden: [n_chunks, 77, width] f32, raw (no prompt weights applied).
 *   *pooled: [n_chunks, proj_dim or width]: final-layer-normed hidden state
 *            at the EOS (argmax id) position through text_projection; NULL
 *            pooled pointer means not wanted.
 */
int vkf_clip_text_encode(vkf_clip_text *m, const vkf_clip_tokens *tok, int layer_idx,
                         vkf_tensor **hidden, vkf_tensor **pooled);
/* The same with ComfyUI's layer_norm_hidden_state: false leaves a hidden
 * layer (-k within the layer count) without final_layer_norm, as SDXL's
 * towers (comfy/sdxl_clip.py: CLIP-L and bigG, layer "hidden" -2) use it;
 * layer_idx 0 ("last") is always normed.  true = vkf_clip_text_encode. */
int vkf_clip_text_encode_ex(vkf_clip_text *m, const vkf_clip_tokens *tok, int layer_idx,
                            bool layer_norm_hidden, vkf_tensor **hidden, vkf_tensor **pooled);

/* ------------------------------------------------------------------------ */
/* Diffusion models (UNet for SD1/SD2; later SDXL, Wan ...) behind a vtable  */

typedef struct vkf_dm_input {
    vkf_tensor *x;            /* [B, C_in, h, w]: c_in-scaled latent (+ concat channels) */
    const float *timesteps;   /* B model timesteps (ms->timestep(sigma)) */
    vkf_tensor *context;      /* [B, T, ctx_dim] cross-attention context */
    vkf_tensor *y;            /* [B, adm_in] class/pooled vector or NULL */
    /* ControlNet residuals (later): NULL */
    vkf_tensor *const *control_in;   /* per input block, or NULL */
    vkf_tensor *control_mid;
    vkf_tensor *const *control_out;  /* per output block, or NULL */
} vkf_dm_input;

typedef struct vkf_diffusion_model vkf_diffusion_model;
struct vkf_diffusion_model {
    long refs;
    char arch[32];            /* "SD1.x", "SD2.x", ... */
    int in_channels;          /* 4, or 9 for inpaint models */
    int latent_channels;      /* 4 */
    int out_channels;
    int context_dim;
    int adm_in_channels;      /* 0 if no y */
    vkf_prediction prediction;/* as detected from the weights */
    vkf_gpu *gpu;
    int (*forward)(vkf_diffusion_model *m, const vkf_dm_input *in, vkf_tensor **out);
    void (*destroy)(vkf_diffusion_model *m);
};

vkf_diffusion_model *vkf_diffusion_model_ref(vkf_diffusion_model *m);
void vkf_diffusion_model_unref(vkf_diffusion_model **m);

typedef struct vkf_unet_config {
    int in_channels, out_channels, model_channels;
    int num_res_blocks;
    int n_levels;
    int channel_mult[4];
    bool attn_level[4];       /* transformer blocks at this level */
    int num_heads;            /* > 0: fixed heads (SD1: 8) */
    int num_head_channels;    /* > 0: fixed head width (SD2: 64) */
    int context_dim;
    int transformer_depth;
    bool use_linear_proj;     /* SD2: proj_in/out are Linear */
    int adm_in_channels;      /* > 0: label_emb.0.{0,2} adds y to the time embedding */
    int level_depth[4];       /* transformer blocks per SpatialTransformer at each level
                                 (0 where attn_level is false); SDXL: 0, 2, 10 */
    int middle_depth;         /* middle_block.1 depth (SD1/SD2: 1, SDXL: 10) */
} vkf_unet_config;

/*
 * SD1.x / SD2.x UNet under prefix ("model.diffusion_model." in single
 * files, "" in UNETLoader files; diffusers unet/ folders by their names).
 * Config inferred from shapes: SD2 (64-channel heads, linear proj) when
 * context_dim is 1024 or the weights carry an OpenCLIP text tower; v
 * prediction detected as ComfyUI does for SD2.  Anything else is refused
 * naming what was found.
 */
int vkf_unet_load(vkf_gpu *gpu, vkf_weights *w, const char *prefix,
                  vkf_diffusion_model **out, vkf_errbuf *e);
int vkf_unet_infer_config(const vkf_weights *w, const char *prefix, vkf_unet_config *cfg,
                          vkf_errbuf *e);

/* ------------------------------------------------------------------------ */
/* VAE: KL-f8 and TAESD behind one interface                                 */

typedef struct vkf_vae_model vkf_vae_model;
struct vkf_vae_model {
    long refs;
    char arch[32];            /* "KL-f8", "TAESD" */
    int latent_channels;      /* 4 */
    int downscale;            /* 8 */
    vkf_gpu *gpu;
    /* latent [B, 4, h, w] raw VAE space → image [B, 3, 8h, 8w] in [-1, 1]
     * (not clamped) */
    int (*decode)(vkf_vae_model *m, vkf_tensor *latent, vkf_tensor **image);
    /* image [B, 3, H, W] in [-1, 1] → latent (mean of the posterior) */
    int (*encode)(vkf_vae_model *m, vkf_tensor *image, vkf_tensor **latent);
    void (*destroy)(vkf_vae_model *m);
};

vkf_vae_model *vkf_vae_model_ref(vkf_vae_model *m);
void vkf_vae_model_unref(vkf_vae_model **m);

/* KL-f8 under prefix ("first_stage_model." in checkpoints, "" in VAE files;
 * diffusers vae/ names too). */
int vkf_vae_kl_load(vkf_gpu *gpu, vkf_weights *w, const char *prefix,
                    vkf_vae_model **out, vkf_errbuf *e);
/* TAESD from its encoder and decoder files (either may be NULL; that
 * direction then fails clearly).  scale/shift as ComfyUI's VAELoader uses
 * for taesd (0.18215, 0): decode(z) = dec((z - shift)·scale)·2 - 1. */
int vkf_taesd_load(vkf_gpu *gpu, vkf_weights *enc, vkf_weights *dec, float scale,
                   float shift, vkf_vae_model **out, vkf_errbuf *e);
/* TAESD decoder on diffusion-space latents (live previews):
 * [B, 4, h, w] → [B, 3, 8h, 8w] in [0, 1]. */
int vkf_taesd_preview(vkf_vae_model *taesd, vkf_tensor *x0, vkf_tensor **image);

/* Tiled decode/encode (VAEDecodeTiled / VAEEncodeTiled semantics, ComfyUI's
 * blended overlaps); tile sizes in pixels.  Decode divides tile and overlap
 * by m->downscale (the node's `tile_size // compression`; the node also
 * applies VAEDecodeTiled's overlap = tile/4 rule); three passes with tiles
 * (2t, t/2), (t/2, 2t), (t, t) (encode: (t, t), (t/2, 2t), (2t, t/2)) are
 * averaged, as comfy/sd.py decode_tiled_/encode_tiled_.  Output as
 * decode/encode.  VKF_EINVAL when a tile leaves no room for the overlap.
 * decode/encode themselves fall back to these (ComfyUI's defaults) when one
 * activation would not fit on the device. */
int vkf_vae_decode_tiled(vkf_vae_model *m, vkf_tensor *latent, int tile, int overlap,
                         vkf_tensor **image);
int vkf_vae_encode_tiled(vkf_vae_model *m, vkf_tensor *image, int tile, int overlap,
                         vkf_tensor **latent);

/* ------------------------------------------------------------------------ */
/* link-type objects                                                         */

/* ComfyUI latent_format of a model family. */
typedef struct vkf_latent_format {
    int channels;             /* 4 */
    float scale_factor;       /* SD1: 0.18215, SD2: 0.18215 */
    float shift;              /* 0 */
} vkf_latent_format;

/* MODEL: a diffusion model plus how to sample it (ModelPatcher's view).
 * Nodes that change sampling make a new object sharing dm. */
typedef struct vkf_model {
    vkf_object obj;
    vkf_diffusion_model *dm;
    vkf_model_sampling *ms;   /* owned */
    vkf_latent_format latent;
} vkf_model;

/* CLIP: tokenizer + text model + the layer to take. */
typedef struct vkf_clip {
    vkf_object obj;
    vkf_clip_tokenizer *tok;  /* shared, never changed after creation */
    vkf_clip_text *text;      /* shared */
    long *shared_refs;        /* refcount of tok+text across CLIP copies */
    int layer_idx;            /* CLIPSetLastLayer: 0 = ComfyUI default */
    int default_layer_idx;    /* SD1: 0 ("last"); SD2: -2 (penultimate) */
    bool pad_with_end;
    /* SDXL (comfy/sdxl_clip.py): base = text (CLIP-L, pad with EOS) +
     * text_g (OpenCLIP bigG, pad with 0), hidden states concatenated, pooled
     * from bigG; refiner = text (bigG) alone.  Both use layer -2 without
     * final_layer_norm (layer_norm_hidden_state False). */
    vkf_clip_text *text_g;    /* shared like text; NULL unless SDXL base */
    bool sdxl;                /* layer_norm_hidden_state False (SDXL towers) */
} vkf_clip;

/* VAE */
typedef struct vkf_vae {
    vkf_object obj;
    vkf_vae_model *m;
} vkf_vae;

/* One CONDITIONING entry ([tensor, dict] in ComfyUI). */
typedef struct vkf_cond_entry {
    vkf_tensor *cond;         /* [1, T, D] */
    vkf_tensor *pooled;       /* [1, P] or NULL */
    bool has_area;
    bool area_is_percent;
    double area[4];           /* h, w, y, x: latent pixels (÷8) or fractions */
    float strength;           /* 1 */
    bool set_area_to_bounds;
    vkf_tensor *mask;         /* [1, H, W] or NULL */
    float mask_strength;      /* 1 */
    double start_percent;     /* 0 */
    double end_percent;       /* 1 */
    vkf_tensor *concat_latent_image;   /* InpaintModelConditioning, or NULL */
    vkf_tensor *concat_mask;
    /* SDXL size conditioning (CLIPTextEncodeSDXL / ...Refiner), pixels;
     * 0 = unset: width/height default to the latent size x 8, targets to
     * width/height (comfy/samplers.py encode_model_conds, SDXL.encode_adm) */
    int width, height, crop_w, crop_h, target_width, target_height;
    bool has_aesthetic_score; /* refiner: else 6 (positive) or 2.5 (negative) */
    float aesthetic_score;
} vkf_cond_entry;

typedef struct vkf_conditioning {
    vkf_object obj;
    int n;
    vkf_cond_entry *e;
} vkf_conditioning;

/* SAMPLER (KSamplerSelect and the parameterised sampler nodes). */
typedef struct vkf_sampler_obj {
    vkf_object obj;
    char name[48];            /* ComfyUI sampler name */
    double eta, s_noise, r;   /* defaults of the sampler when not set */
    char solver_type[16];     /* "midpoint" / "heun" (dpmpp_2m_sde) */
    int order;                /* lms */
    bool has_params;          /* set by a Sampler* node */
} vkf_sampler_obj;

/* SIGMAS: a host float vector. */
typedef struct vkf_sigmas {
    vkf_object obj;
    int n;
    float *s;
} vkf_sigmas;

/* NOISE (RandomNoise / DisableNoise). */
typedef struct vkf_noise {
    vkf_object obj;
    uint64_t seed;
    bool disabled;
} vkf_noise;

/* GUIDER (BasicGuider, CFGGuider, DualCFGGuider). */
typedef struct vkf_guider {
    vkf_object obj;
    vkf_model *model;         /* referenced */
    vkf_conditioning *positive, *negative, *cond2;   /* referenced or NULL */
    double cfg;               /* 1 for BasicGuider */
    double cfg_cond2_negative;
    bool dual;
    bool nested;              /* DualCFGGuider style "nested" */
} vkf_guider;

extern const vkf_object_type vkf_type_model, vkf_type_clip, vkf_type_vae,
    vkf_type_conditioning, vkf_type_sampler, vkf_type_sigmas, vkf_type_noise,
    vkf_type_guider;

/* Typed access to an input value: NULL if it is not an object of that type. */
vkf_model *vkf_value_model(const vkf_value *v);
vkf_clip *vkf_value_clip(const vkf_value *v);
vkf_vae *vkf_value_vae(const vkf_value *v);
vkf_conditioning *vkf_value_conditioning(const vkf_value *v);
vkf_sampler_obj *vkf_value_sampler(const vkf_value *v);
vkf_sigmas *vkf_value_sigmas(const vkf_value *v);
vkf_noise *vkf_value_noise(const vkf_value *v);
vkf_guider *vkf_value_guider(const vkf_value *v);

/* Constructors: a new object with one reference (fields zeroed, refs of the
 * pointed-to members taken by the caller's assignment). */
vkf_model *vkf_model_new(vkf_diffusion_model *dm /* ref taken */, vkf_model_sampling *ms /* owned */,
                         vkf_latent_format lf);
/* A copy sharing dm with a copy of ms. */
vkf_model *vkf_model_clone(const vkf_model *m);
vkf_clip *vkf_clip_new(vkf_clip_tokenizer *tok, vkf_clip_text *text, int default_layer_idx,
                       bool pad_with_end); /* takes ownership of tok, text */
vkf_clip *vkf_clip_clone(const vkf_clip *c);
/* SDXL CLIP: text_l (may be NULL: the refiner's bigG alone) and text_g
 * (required); layer -2, no final norm on the hidden layer.  Takes
 * ownership of all three (freed on failure). */
vkf_clip *vkf_clip_new_sdxl(vkf_clip_tokenizer *tok, vkf_clip_text *text_l,
                            vkf_clip_text *text_g);
vkf_vae *vkf_vae_new(vkf_vae_model *m /* ref taken */);
vkf_conditioning *vkf_conditioning_new(int n);     /* entries zeroed with defaults */
/* Deep copy of the entry list; tensors referenced. */
vkf_conditioning *vkf_conditioning_clone(const vkf_conditioning *c);
void vkf_cond_entry_defaults(vkf_cond_entry *e);
/* Drops the tensor references of an entry. */
void vkf_cond_entry_clear(vkf_cond_entry *e);
/* Copies an entry, taking new tensor references. */
void vkf_cond_entry_copy(vkf_cond_entry *dst, const vkf_cond_entry *src);
vkf_sampler_obj *vkf_sampler_obj_new(const char *name);
vkf_sigmas *vkf_sigmas_new(int n);
vkf_noise *vkf_noise_new(uint64_t seed, bool disabled);
vkf_guider *vkf_guider_new(void);

/* ------------------------------------------------------------------------ */
/* checkpoints and synthesized test models                                   */

typedef enum vkf_synth_arch {
    VKF_SYNTH_SD15 = 0,
    VKF_SYNTH_SD2,
    VKF_SYNTH_SD2_V,
    VKF_SYNTH_SD15_INPAINT,
    VKF_SYNTH_SDXL,           /* SDXL base: CLIP-L + OpenCLIP bigG, label_emb */
} vkf_synth_arch;

typedef enum vkf_synth_scale {
    VKF_SYNTH_FULL = 0,       /* the real shapes */
    VKF_SYNTH_TINY = 1,       /* same key layout, few channels (tests) */
} vkf_synth_scale;

/* Each component adds its tensors, with the exact key names of a
 * CompVis/A1111 single-file checkpoint, under prefix. */
int vkf_synth_unet(vkf_st_writer *w, const char *prefix, vkf_synth_arch arch,
                   vkf_synth_scale scale, vkf_wdtype dtype);
int vkf_synth_clip_text(vkf_st_writer *w, const char *prefix, vkf_synth_arch arch,
                        vkf_synth_scale scale, vkf_wdtype dtype);
int vkf_synth_vae(vkf_st_writer *w, const char *prefix, vkf_synth_scale scale,
                  vkf_wdtype dtype);

#endif /* VKFLOW_MODELS_H */
