/* The model link types: MODEL, CLIP, VAE, CONDITIONING, SAMPLER, SIGMAS,
 * NOISE, GUIDER (vkflow/models.h). */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "vkflow/models.h"

/* ---- MODEL ---- */

static void model_destroy(vkf_object *o)
{
    vkf_model *m = (vkf_model *)o;
    vkf_diffusion_model_unref(&m->dm);
    vkf_model_sampling_destroy(&m->ms);
    vkf_free(m);
}

static const char *prediction_name(vkf_prediction p)
{
    switch (p) {
    case VKF_PREDICTION_EPS: return "eps";
    case VKF_PREDICTION_V: return "v";
    case VKF_PREDICTION_FLOW: return "flow";
    }
    return "?";
}

static char *model_describe(const vkf_object *o)
{
    const vkf_model *m = (const vkf_model *)o;
    return vkf_asprintf("MODEL %s (%s prediction)", m->dm ? m->dm->arch : "?",
                        m->ms ? prediction_name(m->ms->prediction) : "?");
}

const vkf_object_type vkf_type_model = {
    .name = "MODEL", .destroy = model_destroy, .describe = model_describe,
};

vkf_model *vkf_model_new(vkf_diffusion_model *dm, vkf_model_sampling *ms, vkf_latent_format lf)
{
    vkf_model *m = vkf_calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    vkf_object_init(&m->obj, &vkf_type_model);
    m->dm = vkf_diffusion_model_ref(dm);
    m->ms = ms;
    m->latent = lf;
    return m;
}

/* A deep copy of the sampling tables (they are small: 1000 or 10000 floats). */
static vkf_model_sampling *ms_copy(const vkf_model_sampling *src)
{
    vkf_model_sampling *ms = vkf_calloc(1, sizeof(*ms));
    if (!ms)
        return NULL;
    *ms = *src;
    ms->sigmas = NULL;
    ms->log_sigmas = NULL;
    size_t bytes = (size_t)src->count * sizeof(float);
    if (src->sigmas && !(ms->sigmas = vkf_malloc(bytes)))
        goto fail;
    if (src->sigmas)
        memcpy(ms->sigmas, src->sigmas, bytes);
    if (src->log_sigmas && !(ms->log_sigmas = vkf_malloc(bytes)))
        goto fail;
    if (src->log_sigmas)
        memcpy(ms->log_sigmas, src->log_sigmas, bytes);
    return ms;
fail:
    vkf_model_sampling_destroy(&ms);
    return NULL;
}

vkf_model *vkf_model_clone(const vkf_model *src)
{
    vkf_model_sampling *ms = NULL;
    if (src->ms && !(ms = ms_copy(src->ms)))
        return NULL;
    vkf_model *m = vkf_model_new(src->dm, ms, src->latent);
    if (!m)
        vkf_model_sampling_destroy(&ms);
    return m;
}

/* ---- CLIP ---- */

/* tok and text are shared by every copy made with vkf_clip_clone; the
 * last copy frees them. */
static void clip_destroy(vkf_object *o)
{
    vkf_clip *c = (vkf_clip *)o;
    if (c->shared_refs && __atomic_sub_fetch(c->shared_refs, 1, __ATOMIC_ACQ_REL) == 0) {
        vkf_clip_tokenizer_destroy(&c->tok);
        vkf_clip_text_destroy(&c->text);
        vkf_clip_text_destroy(&c->text_g);
        vkf_free(c->shared_refs);
    }
    vkf_free(c);
}

static char *clip_describe(const vkf_object *o)
{
    const vkf_clip *c = (const vkf_clip *)o;
    const vkf_clip_text_config *cfg = c->text ? vkf_clip_text_get_config(c->text) : NULL;
    if (!cfg)
        return vkf_strdup("CLIP");
    return vkf_asprintf("CLIP %s (width %d, %d layers, layer %d)",
                        cfg->kind == VKF_CLIP_L ? "ViT-L/14" : "OpenCLIP ViT-H/14",
                        cfg->width, cfg->layers, c->layer_idx);
}

const vkf_object_type vkf_type_clip = {
    .name = "CLIP", .destroy = clip_destroy, .describe = clip_describe,
};

vkf_clip *vkf_clip_new(vkf_clip_tokenizer *tok, vkf_clip_text *text, int default_layer_idx,
                       bool pad_with_end)
{
    vkf_clip *c = vkf_calloc(1, sizeof(*c));
    long *refs = vkf_malloc(sizeof(*refs));
    if (!c || !refs) {
        vkf_free(c);
        vkf_free(refs);
        vkf_clip_tokenizer_destroy(&tok);
        vkf_clip_text_destroy(&text);
        return NULL;
    }
    *refs = 1;
    vkf_object_init(&c->obj, &vkf_type_clip);
    c->tok = tok;
    c->text = text;
    c->shared_refs = refs;
    c->default_layer_idx = default_layer_idx;
    c->layer_idx = 0;
    c->pad_with_end = pad_with_end;
    return c;
}

vkf_clip *vkf_clip_new_sdxl(vkf_clip_tokenizer *tok, vkf_clip_text *text_l,
                            vkf_clip_text *text_g)
{
    if (!text_g) {
        vkf_clip_tokenizer_destroy(&tok);
        vkf_clip_text_destroy(&text_l);
        return NULL;
    }
    /* base: CLIP-L first (pads with EOS); refiner: bigG alone (pads with 0) */
    vkf_clip *c = text_l ? vkf_clip_new(tok, text_l, -2, true) : vkf_clip_new(tok, text_g, -2, false);
    if (!c) {
        if (text_l)
            vkf_clip_text_destroy(&text_g);
        return NULL;
    }
    c->text_g = text_l ? text_g : NULL;
    c->sdxl = true;
    return c;
}

vkf_clip *vkf_clip_clone(const vkf_clip *src)
{
    vkf_clip *c = vkf_calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    *c = *src;
    vkf_object_init(&c->obj, &vkf_type_clip);
    __atomic_add_fetch(c->shared_refs, 1, __ATOMIC_RELAXED);
    return c;
}

/* ---- VAE ---- */

static void vae_destroy(vkf_object *o)
{
    vkf_vae *v = (vkf_vae *)o;
    vkf_vae_model_unref(&v->m);
    vkf_free(v);
}

static char *vae_describe(const vkf_object *o)
{
    const vkf_vae *v = (const vkf_vae *)o;
    return vkf_asprintf("VAE %s", v->m ? v->m->arch : "?");
}

const vkf_object_type vkf_type_vae = {
    .name = "VAE", .destroy = vae_destroy, .describe = vae_describe,
};

vkf_vae *vkf_vae_new(vkf_vae_model *m)
{
    vkf_vae *v = vkf_calloc(1, sizeof(*v));
    if (!v)
        return NULL;
    vkf_object_init(&v->obj, &vkf_type_vae);
    v->m = vkf_vae_model_ref(m);
    return v;
}

/* ---- CONDITIONING ---- */

void vkf_cond_entry_defaults(vkf_cond_entry *e)
{
    memset(e, 0, sizeof(*e));
    e->strength = 1.0f;
    e->mask_strength = 1.0f;
    e->start_percent = 0.0;
    e->end_percent = 1.0;
}

void vkf_cond_entry_clear(vkf_cond_entry *e)
{
    vkf_tensor_unref(&e->cond);
    vkf_tensor_unref(&e->pooled);
    vkf_tensor_unref(&e->mask);
    vkf_tensor_unref(&e->concat_latent_image);
    vkf_tensor_unref(&e->concat_mask);
}

static vkf_tensor *tref(vkf_tensor *t)
{
    return t ? vkf_tensor_ref(t) : NULL;
}

void vkf_cond_entry_copy(vkf_cond_entry *dst, const vkf_cond_entry *src)
{
    *dst = *src;
    dst->cond = tref(src->cond);
    dst->pooled = tref(src->pooled);
    dst->mask = tref(src->mask);
    dst->concat_latent_image = tref(src->concat_latent_image);
    dst->concat_mask = tref(src->concat_mask);
}

static void cond_destroy(vkf_object *o)
{
    vkf_conditioning *c = (vkf_conditioning *)o;
    for (int i = 0; i < c->n; i++)
        vkf_cond_entry_clear(&c->e[i]);
    vkf_free(c->e);
    vkf_free(c);
}

static char *cond_describe(const vkf_object *o)
{
    const vkf_conditioning *c = (const vkf_conditioning *)o;
    char buf[256];
    int n = snprintf(buf, sizeof(buf), "CONDITIONING (%d entr%s", c->n, c->n == 1 ? "y" : "ies");
    if (c->n > 0 && c->e[0].cond && n < (int)sizeof(buf)) {
        const int64_t *s = vkf_tensor_shape(c->e[0].cond);
        int nd = vkf_tensor_ndim(c->e[0].cond);
        n += snprintf(buf + n, sizeof(buf) - (size_t)n, ", first [");
        for (int d = 0; d < nd && n < (int)sizeof(buf) - 24; d++)
            n += snprintf(buf + n, sizeof(buf) - (size_t)n, "%s%" PRId64, d ? ", " : "", s[d]);
        if (n < (int)sizeof(buf))
            n += snprintf(buf + n, sizeof(buf) - (size_t)n, "]");
    }
    if (n < (int)sizeof(buf))
        snprintf(buf + n, sizeof(buf) - (size_t)n, ")");
    return vkf_strdup(buf);
}

const vkf_object_type vkf_type_conditioning = {
    .name = "CONDITIONING", .destroy = cond_destroy, .describe = cond_describe,
};

vkf_conditioning *vkf_conditioning_new(int n)
{
    if (n < 0)
        return NULL;
    vkf_conditioning *c = vkf_calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    if (n > 0 && !(c->e = vkf_calloc((size_t)n, sizeof(*c->e)))) {
        vkf_free(c);
        return NULL;
    }
    vkf_object_init(&c->obj, &vkf_type_conditioning);
    c->n = n;
    for (int i = 0; i < n; i++)
        vkf_cond_entry_defaults(&c->e[i]);
    return c;
}

vkf_conditioning *vkf_conditioning_clone(const vkf_conditioning *src)
{
    vkf_conditioning *c = vkf_conditioning_new(src->n);
    if (!c)
        return NULL;
    for (int i = 0; i < src->n; i++)
        vkf_cond_entry_copy(&c->e[i], &src->e[i]);
    return c;
}

/* ---- SAMPLER, SIGMAS, NOISE ---- */

static void plain_destroy(vkf_object *o)
{
    vkf_free(o);
}

static char *sampler_describe(const vkf_object *o)
{
    return vkf_asprintf("SAMPLER %s", ((const vkf_sampler_obj *)o)->name);
}

const vkf_object_type vkf_type_sampler = {
    .name = "SAMPLER", .destroy = plain_destroy, .describe = sampler_describe,
};

vkf_sampler_obj *vkf_sampler_obj_new(const char *name)
{
    if (!name || strlen(name) >= sizeof(((vkf_sampler_obj *)0)->name))
        return NULL;
    vkf_sampler_obj *s = vkf_calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    vkf_object_init(&s->obj, &vkf_type_sampler);
    snprintf(s->name, sizeof(s->name), "%s", name);
    s->eta = 1.0;
    s->s_noise = 1.0;
    s->r = 0.5;
    snprintf(s->solver_type, sizeof(s->solver_type), "midpoint");
    s->order = 4;
    return s;
}

static void sigmas_destroy(vkf_object *o)
{
    vkf_sigmas *s = (vkf_sigmas *)o;
    vkf_free(s->s);
    vkf_free(s);
}

static char *sigmas_describe(const vkf_object *o)
{
    const vkf_sigmas *s = (const vkf_sigmas *)o;
    if (s->n == 0)
        return vkf_strdup("SIGMAS []");
    return vkf_asprintf("SIGMAS [%d] %.6g .. %.6g", s->n, (double)s->s[0],
                        (double)s->s[s->n - 1]);
}

const vkf_object_type vkf_type_sigmas = {
    .name = "SIGMAS", .destroy = sigmas_destroy, .describe = sigmas_describe,
};

vkf_sigmas *vkf_sigmas_new(int n)
{
    if (n < 0)
        return NULL;
    vkf_sigmas *s = vkf_calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    if (!(s->s = vkf_calloc((size_t)(n > 0 ? n : 1), sizeof(float)))) {
        vkf_free(s);
        return NULL;
    }
    vkf_object_init(&s->obj, &vkf_type_sigmas);
    s->n = n;
    return s;
}

static char *noise_describe(const vkf_object *o)
{
    const vkf_noise *n = (const vkf_noise *)o;
    if (n->disabled)
        return vkf_strdup("NOISE (disabled)");
    return vkf_asprintf("NOISE seed %" PRIu64, n->seed);
}

const vkf_object_type vkf_type_noise = {
    .name = "NOISE", .destroy = plain_destroy, .describe = noise_describe,
};

vkf_noise *vkf_noise_new(uint64_t seed, bool disabled)
{
    vkf_noise *n = vkf_calloc(1, sizeof(*n));
    if (!n)
        return NULL;
    vkf_object_init(&n->obj, &vkf_type_noise);
    n->seed = seed;
    n->disabled = disabled;
    return n;
}

/* ---- GUIDER ---- */

static void guider_destroy(vkf_object *o)
{
    vkf_guider *g = (vkf_guider *)o;
    vkf_object *p;
    if ((p = (vkf_object *)g->model))
        vkf_object_unref(&p);
    if ((p = (vkf_object *)g->positive))
        vkf_object_unref(&p);
    if ((p = (vkf_object *)g->negative))
        vkf_object_unref(&p);
    if ((p = (vkf_object *)g->cond2))
        vkf_object_unref(&p);
    vkf_free(g);
}

static char *guider_describe(const vkf_object *o)
{
    const vkf_guider *g = (const vkf_guider *)o;
    return vkf_asprintf("GUIDER %s cfg %g", g->dual ? "dual-CFG" : g->negative ? "CFG" : "basic",
                        g->cfg);
}

const vkf_object_type vkf_type_guider = {
    .name = "GUIDER", .destroy = guider_destroy, .describe = guider_describe,
};

vkf_guider *vkf_guider_new(void)
{
    vkf_guider *g = vkf_calloc(1, sizeof(*g));
    if (!g)
        return NULL;
    vkf_object_init(&g->obj, &vkf_type_guider);
    g->cfg = 1.0;
    return g;
}

/* ---- typed access ---- */

static vkf_object *as_type(const vkf_value *v, const vkf_object_type *type)
{
    if (!v || v->kind != VKF_VAL_OBJECT || !v->u.obj || v->u.obj->type != type)
        return NULL;
    return v->u.obj;
}

vkf_model *vkf_value_model(const vkf_value *v)
{
    return (vkf_model *)as_type(v, &vkf_type_model);
}

vkf_clip *vkf_value_clip(const vkf_value *v)
{
    return (vkf_clip *)as_type(v, &vkf_type_clip);
}

vkf_vae *vkf_value_vae(const vkf_value *v)
{
    return (vkf_vae *)as_type(v, &vkf_type_vae);
}

vkf_conditioning *vkf_value_conditioning(const vkf_value *v)
{
    return (vkf_conditioning *)as_type(v, &vkf_type_conditioning);
}

vkf_sampler_obj *vkf_value_sampler(const vkf_value *v)
{
    return (vkf_sampler_obj *)as_type(v, &vkf_type_sampler);
}

vkf_sigmas *vkf_value_sigmas(const vkf_value *v)
{
    return (vkf_sigmas *)as_type(v, &vkf_type_sigmas);
}

vkf_noise *vkf_value_noise(const vkf_value *v)
{
    return (vkf_noise *)as_type(v, &vkf_type_noise);
}

vkf_guider *vkf_value_guider(const vkf_value *v)
{
    return (vkf_guider *)as_type(v, &vkf_type_guider);
}
