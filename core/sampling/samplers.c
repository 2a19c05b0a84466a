/*
 * The samplers of ComfyUI's KSampler list (comfy/k_diffusion/sampling.py,
 * comfy/samplers.py), on host float32 arrays.  Each sampler follows
 * ComfyUI's step formulas in the order torch evaluates them: scalar
 * coefficients are 0-d float32 tensors there (sigmas[i] and everything
 * computed from it) and are computed in float here, Python floats (eta,
 * r, s_noise) in double and rounded when they meet a tensor; every tensor op
 * is one rounding per element.  docs/sampling.md says what is exact.
 *
 * Noise: default_noise_sampler (a torch CPU generator seeded with seed + 1,
 * one randn of the latent per call) and the SDE samplers'
 * BrownianTreeNoiseSampler (torchsde's BrownianTree, see bt_*), both bit
 * for bit.
 */
#include "fp_strict.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vkflow/samplers.h>

#include "torch_ops.h"

/* ------------------------------------------------------------------------ */
/* names                                                                     */

/* comfy/samplers.py SAMPLER_NAMES (KSAMPLER_NAMES + ddim, uni_pc,
 * uni_pc_bh2) as of the ComfyUI this project follows (a125cd84,
 * ../shared/docs/comfyui-reference.md §9.1), in order: KSampler's and
 * KSamplerSelect's combo. */
static const char *const sampler_names[] = {
    "euler", "euler_cfg_pp", "euler_ancestral", "euler_ancestral_cfg_pp", "heun", "heunpp2",
    "dpm_2", "dpm_2_ancestral", "lms", "dpm_fast", "dpm_adaptive", "dpmpp_2s_ancestral",
    "dpmpp_2s_ancestral_cfg_pp", "dpmpp_sde", "dpmpp_sde_gpu", "dpmpp_2m", "dpmpp_2m_cfg_pp",
    "dpmpp_2m_sde", "dpmpp_2m_sde_gpu", "dpmpp_2m_sde_heun", "dpmpp_2m_sde_heun_gpu",
    "dpmpp_3m_sde", "dpmpp_3m_sde_gpu", "ddpm", "lcm", "ipndm", "ipndm_v", "deis",
    "res_multistep", "res_multistep_cfg_pp", "res_multistep_ancestral",
    "res_multistep_ancestral_cfg_pp", "gradient_estimation", "gradient_estimation_cfg_pp",
    "er_sde", "seeds_2", "seeds_3", "sa_solver", "sa_solver_pece", "ddim", "uni_pc",
    "uni_pc_bh2",
};
#define N_SAMPLERS ((int)(sizeof(sampler_names) / sizeof(sampler_names[0])))

/* Newer ComfyUI samplers, accepted by name but not in the list above. */
static const char *const extra_names[] = {"exp_heun_2_x0", "exp_heun_2_x0_sde", NULL};

static bool in_list(const char *const *l, const char *name)
{
    for (int i = 0; l[i]; i++)
        if (strcmp(l[i], name) == 0)
            return true;
    return false;
}

const char *const *vkf_sampler_names(int *n)
{
    if (n)
        *n = N_SAMPLERS;
    return sampler_names;
}

/* true for every name vkf_sample runs */
bool vkf_sampler_exists(const char *name)
{
    if (!name)
        return false;
    if (in_list(extra_names, name))
        return true;
    for (int i = 0; i < N_SAMPLERS; i++)
        if (strcmp(name, sampler_names[i]) == 0)
            return true;
    return false;
}

/* ------------------------------------------------------------------------ */
/* state shared by the samplers                                              */

typedef struct vkf_brownian_tree bt;

typedef struct smp {
    const vkf_sample_params *p;
    const vkf_denoiser *model;
    const vkf_log *log;
    size_t n;
    int total;                /* steps reported to the callback */
    bool flow;                /* CONST model sampling (RF variants, logit λ) */
    bool want_uncond;         /* CFG++: the model fills s->uncond */
    float *uncond;
    double eta, s_noise, r;
    /* default_noise_sampler */
    vkf_torch_rng rng;
    /* BrownianTreeNoiseSampler */
    bt *tree;
    bool use_tree;
    int noise_err;            /* a failed tree query (VKF_ENOMEM) */
} smp;

static int model_call(smp *s, const float *x, float sigma, float *den)
{
    return s->model->denoise(s->model->opaque, x, sigma, den,
                             s->want_uncond ? s->uncond : NULL);
}

static int step_cb(smp *s, int i, const float *x, const float *den)
{
    if (!s->p->callback)
        return 0;
    return s->p->callback(s->p->cb_opaque, i, s->total, x, den);
}

/* ---- Brownian tree (torchsde's BrownianTree, as ComfyUI uses it) -------- */

/*
 * ComfyUI's BrownianTreeNoiseSampler builds torchsde.BrownianTree(t0, w0 = 0,
 * t1, entropy = seed) on the CPU: a BrownianInterval with tol 1e-6 (times
 * rounded to 6 decimals), pool_size 24 and the "halfway" dependency tree.
 * Every node [s, e] of that binary tree splits at round(0.5·(s + e), 6); its
 * increment W is known from its parent's: left = (ld·W)·(1/h) +
 * √(ld·rd/h)·z, right = W − left, with z a float32 torch.randn of the
 * latent from a generator seeded with the first word of
 * numpy SeedSequence(entropy, spawn_key = (key, depth), pool_size 24)
 * .generate_state(4) of the parent; the root's W is randn(first word of
 * SeedSequence(entropy, pool_size 24).generate_state(3))·√(t1 − t0).  A
 * query [ta, tb] is the sum, left to right, of the tree nodes that tile it.
 * Everything below reproduces those steps (numpy's SeedSequence hash, Python's
 * round(x, 6), the float32 tensor ops in torch's order), so the noise is
 * torchsde's, bit for bit (tests/sampling/test_samplers.c checks it against
 * torchsde itself).
 */

#define SS_POOL 24

struct vkf_brownian_tree {
    double start, end;        /* rounded, as torchsde keeps them */
    uint32_t entropy[2];
    int n_entropy;
    size_t n;
    vkf_randn_kernel kernel;
    float *w_root, *w, *l, *r, *z, *acc, *wa;
    float **pieces;           /* left-boundary pieces of a query */
    int n_pieces_alloc;
    /* split results (children's increments) of recently used nodes, as
     * torchsde's LRU cache keeps them: consecutive steps share a boundary */
    struct bt_cached {
        uint64_t key;
        uint32_t depth;
        bool valid;
        uint64_t stamp;
        double mid;
        float *lr;            /* 2n: left, right */
    } *cache;
    int n_cache;
    uint64_t clock;
};

static uint32_t ss_hashmix(uint32_t v, uint32_t *hc)
{
    v ^= *hc;
    *hc *= 0x931e8875u;
    v *= *hc;
    v ^= v >> 16;
    return v;
}

static uint32_t ss_mix(uint32_t x, uint32_t y)
{
    uint32_t r = 0xca01f9ddu * x - 0x4973f715u * y;
    return r ^ (r >> 16);
}

/* numpy.random.SeedSequence(entropy, spawn_key, pool_size = 24)
 * .generate_state(nwords) as uint32 words. */
static void seed_sequence(const uint32_t *ent, int nent, const uint32_t *spawn, int nspawn,
                          int nwords, uint32_t *out)
{
    uint32_t a[SS_POOL + 8];
    int na = 0;
    for (int i = 0; i < nent; i++)
        a[na++] = ent[i];
    if (nspawn > 0)
        while (na < SS_POOL)
            a[na++] = 0;
    for (int i = 0; i < nspawn; i++)
        a[na++] = spawn[i];
    uint32_t pool[SS_POOL];
    uint32_t hc = 0x43b0d7e5u;
    for (int i = 0; i < SS_POOL; i++)
        pool[i] = ss_hashmix(i < na ? a[i] : 0u, &hc);
    for (int src = 0; src < SS_POOL; src++)
        for (int dst = 0; dst < SS_POOL; dst++)
            if (src != dst)
                pool[dst] = ss_mix(pool[dst], ss_hashmix(pool[src], &hc));
    for (int src = SS_POOL; src < na; src++)
        for (int dst = 0; dst < SS_POOL; dst++)
            pool[dst] = ss_mix(pool[dst], ss_hashmix(a[src], &hc));
    uint32_t hb = 0x8b51f9ddu;
    for (int i = 0; i < nwords; i++) {
        uint32_t v = pool[i % SS_POOL];
        v ^= hb;
        hb *= 0x58f38dedu;
        v *= hb;
        v ^= v >> 16;
        out[i] = v;
    }
}

/* Python's round(x, 6): the correctly rounded decimal, read back. */
static double round6(double x)
{
    char buf[64];
    snprintf(buf, sizeof(buf), "%.6f", x);
    return strtod(buf, NULL);
}

static void bt_randn(bt *t, uint32_t seed, float *out)
{
    vkf_torch_rng g;
    vkf_torch_rng_seed(&g, seed);
    vkf_torch_randn(&g, out, t->n, t->kernel);
}

static void bt_destroy(bt **tp)
{
    bt *t = *tp;
    if (!t)
        return;
    for (int i = 0; i < t->n_pieces_alloc; i++)
        vkf_free(t->pieces[i]);
    vkf_free(t->pieces);
    for (int i = 0; i < t->n_cache; i++)
        vkf_free(t->cache[i].lr);
    vkf_free(t->cache);
    vkf_free(t->w_root);
    vkf_free(t);
    *tp = NULL;
}

static int bt_create(double t0, double t1, uint64_t seed, size_t n, vkf_randn_kernel kernel,
                     bt **out)
{
    bt *t = vkf_calloc(1, sizeof(*t));
    if (!t)
        return VKF_ENOMEM;
    double lo = t0 < t1 ? t0 : t1, hi = t0 < t1 ? t1 : t0;
    t->start = round6(lo);
    t->end = round6(hi);
    t->entropy[0] = (uint32_t)seed;
    t->entropy[1] = (uint32_t)(seed >> 32);
    t->n_entropy = seed >> 32 ? 2 : 1;
    t->n = n;
    t->kernel = kernel;
    t->w_root = vkf_malloc(7 * (n ? n : 1) * sizeof(float));
    if (!t->w_root) {
        vkf_free(t);
        return VKF_ENOMEM;
    }
    t->w = t->w_root + n;
    t->l = t->w + n;
    t->r = t->l + n;
    t->z = t->r + n;
    t->acc = t->z + n;
    t->wa = t->acc + n;
    /* up to 64 cached splits, at most 256 MiB of them */
    size_t per = 2 * (n ? n : 1) * sizeof(float);
    size_t cap = ((size_t)256 << 20) / per;
    t->n_cache = cap > 64 ? 64 : (int)cap;
    if (t->n_cache > 0 && !(t->cache = vkf_calloc((size_t)t->n_cache, sizeof(*t->cache))))
        t->n_cache = 0;
    uint32_t st[3];
    seed_sequence(t->entropy, t->n_entropy, NULL, 0, 3, st);
    bt_randn(t, st[0], t->z);
    float c = (float)sqrt(hi - lo);
    for (size_t i = 0; i < n; i++)
        t->w_root[i] = t->z[i] * c;
    *out = t;
    return 0;
}

typedef struct bt_node {
    double s, e;
    uint64_t key;
    uint32_t depth;
} bt_node;

/* Splits node (increment t->w) at its rounded halfway point: the children's
 * increments into t->l, t->r; returns the midpoint. */
static double bt_split(bt *t, const bt_node *nd)
{
    size_t n = t->n;
    t->clock++;
    for (int k = 0; k < t->n_cache; k++) {
        struct bt_cached *ce = &t->cache[k];
        if (ce->valid && ce->key == nd->key && ce->depth == nd->depth) {
            memcpy(t->l, ce->lr, n * sizeof(float));
            memcpy(t->r, ce->lr + n, n * sizeof(float));
            ce->stamp = t->clock;
            return ce->mid;
        }
    }
    double m = round6(0.5 * (nd->e + nd->s));
    uint32_t spawn[3], st[4];
    int ns = 0;
    spawn[ns++] = (uint32_t)nd->key;
    if (nd->key >> 32)
        spawn[ns++] = (uint32_t)(nd->key >> 32);
    spawn[ns++] = nd->depth;
    seed_sequence(t->entropy, t->n_entropy, spawn, ns, 4, st);
    bt_randn(t, st[0], t->z);
    double hr = 1.0 / (nd->e - nd->s);
    double ld = m - nd->s, rd = nd->e - m;
    float fld = (float)ld, fhr = (float)hr, c = (float)sqrt(ld * rd * hr);
    for (size_t i = 0; i < t->n; i++) {
        float left = (fld * t->w[i]) * fhr + c * t->z[i];
        t->l[i] = left;
        t->r[i] = t->w[i] - left;
    }
    if (t->n_cache > 0) {
        int victim = 0;
        for (int k = 0; k < t->n_cache; k++) {
            if (!t->cache[k].valid) {
                victim = k;
                break;
            }
            if (t->cache[k].stamp < t->cache[victim].stamp)
                victim = k;
        }
        struct bt_cached *ce = &t->cache[victim];
        if (!ce->lr)
            ce->lr = vkf_malloc(2 * n * sizeof(float));
        if (ce->lr) {
            memcpy(ce->lr, t->l, n * sizeof(float));
            memcpy(ce->lr + n, t->r, n * sizeof(float));
            ce->key = nd->key;
            ce->depth = nd->depth;
            ce->mid = m;
            ce->stamp = t->clock;
            ce->valid = true;
        }
    }
    return m;
}

static bt_node bt_child(const bt_node *nd, double m, bool right)
{
    bt_node c = {right ? m : nd->s, right ? nd->e : m, 2 * nd->key + (right ? 1 : 0),
                 nd->depth + 1};
    return c;
}

static int bt_piece(bt *t, int k, float **out)
{
    if (k >= t->n_pieces_alloc) {
        int na = t->n_pieces_alloc ? 2 * t->n_pieces_alloc : 32;
        float **p = vkf_calloc((size_t)na, sizeof(float *));
        if (!p)
            return VKF_ENOMEM;
        for (int i = 0; i < t->n_pieces_alloc; i++)
            p[i] = t->pieces[i];
        vkf_free(t->pieces);
        t->pieces = p;
        t->n_pieces_alloc = na;
    }
    if (!t->pieces[k] && !(t->pieces[k] = vkf_malloc(t->n * sizeof(float))))
        return VKF_ENOMEM;
    *out = t->pieces[k];
    return 0;
}

static void acc_add(bt *t, bool *first, const float *v)
{
    if (*first) {
        memcpy(t->acc, v, t->n * sizeof(float));
        *first = false;
    } else {
        for (size_t i = 0; i < t->n; i++)
            t->acc[i] = t->acc[i] + v[i];
    }
}

/* The increment over [ta, tb] (BrownianInterval.__call__(ta, tb)) into out. */
static int bt_increment(bt *t, double ta, double tb, float *out)
{
    size_t n = t->n;
    if (ta < t->start)
        ta = t->start;
    if (tb < t->start)
        tb = t->start;
    if (ta > t->end)
        ta = t->end;
    if (tb > t->end)
        tb = t->end;
    if (ta == tb) {
        memset(out, 0, n * sizeof(float));
        return 0;
    }
    ta = round6(ta);
    tb = round6(tb);
    if (ta == tb) {
        /* closer than the tolerance: torchsde recurses without end here */
        memset(out, 0, n * sizeof(float));
        return 0;
    }
    bt_node nd = {t->start, t->end, 0, 0};
    memcpy(t->w, t->w_root, n * sizeof(float));
    /* the common path */
    for (;;) {
        if (ta == nd.s && tb == nd.e) {
            memcpy(out, t->w, n * sizeof(float));
            return 0;
        }
        double m = bt_split(t, &nd);
        if (tb <= m) {
            nd = bt_child(&nd, m, false);
            memcpy(t->w, t->l, n * sizeof(float));
        } else if (ta >= m) {
            nd = bt_child(&nd, m, true);
            memcpy(t->w, t->r, n * sizeof(float));
        } else {
            break;
        }
    }
    /* split at m: [ta, m] in the left child, [m, tb] in the right child */
    double m = round6(0.5 * (nd.e + nd.s));
    bt_node right = bt_child(&nd, m, true);
    float *wr;
    int np = 0, err;
    if ((err = bt_piece(t, np++, &wr)))
        return err;
    memcpy(wr, t->r, n * sizeof(float));
    nd = bt_child(&nd, m, false);
    memcpy(t->w, t->l, n * sizeof(float));
    /* left boundary: pieces come right to left */
    int nleft = 0;
    float *lp[128];
    for (;;) {
        if (ta == nd.s) {
            float *p;
            if ((err = bt_piece(t, np++, &p)))
                return err;
            memcpy(p, t->w, n * sizeof(float));
            lp[nleft++] = p;
            break;
        }
        double mm = bt_split(t, &nd);
        if (ta >= mm) {
            nd = bt_child(&nd, mm, true);
            memcpy(t->w, t->r, n * sizeof(float));
        } else {
            float *p;
            if ((err = bt_piece(t, np++, &p)))
                return err;
            memcpy(p, t->r, n * sizeof(float));
            lp[nleft++] = p;
            nd = bt_child(&nd, mm, false);
            memcpy(t->w, t->l, n * sizeof(float));
        }
        if (nleft >= 127)
            return VKF_EINVAL;
    }
    bool first = true;
    for (int i = nleft - 1; i >= 0; i--)
        acc_add(t, &first, lp[i]);
    /* right boundary: pieces come left to right */
    nd = right;
    memcpy(t->w, wr, n * sizeof(float));
    for (int guard = 0;; guard++) {
        if (tb == nd.e) {
            acc_add(t, &first, t->w);
            break;
        }
        double mm = bt_split(t, &nd);
        if (tb <= mm) {
            nd = bt_child(&nd, mm, false);
            memcpy(t->w, t->l, n * sizeof(float));
        } else {
            acc_add(t, &first, t->l);
            nd = bt_child(&nd, mm, true);
            memcpy(t->w, t->r, n * sizeof(float));
        }
        if (guard > 200)
            return VKF_EINVAL;
    }
    memcpy(out, t->acc, n * sizeof(float));
    return 0;
}

/* W(t) − W(start) */
static int bt_eval(bt *t, double tq, float *out)
{
    return bt_increment(t, t->start, tq, out);
}

/* BrownianTreeNoiseSampler(sigma, sigma_next): BatchedBrownianTree sorts the
 * two times, multiplies by the direction's sign and ComfyUI divides by
 * √|σ_next − σ| (float32 tensors). */
static int bt_noise(bt *t, float sigma, float sigma_next, float *out)
{
    float a = sigma, b = sigma_next;
    float sign = 1.0f;
    if (!(a < b)) {
        a = sigma_next;
        b = sigma;
        sign = -1.0f;
    }
    int err = bt_increment(t, (double)a, (double)b, out);
    if (err)
        return err;
    float div = sqrtf(fabsf(sigma_next - sigma));
    for (size_t i = 0; i < t->n; i++)
        out[i] = (out[i] * sign) / div;
    return 0;
}

/* noise_sampler(sigma, sigma_next) */
static void draw_noise(smp *s, float sigma, float sigma_next, float *out)
{
    if (s->use_tree) {
        int err = bt_noise(s->tree, sigma, sigma_next, out);
        if (err) {
            memset(out, 0, s->n * sizeof(float));
            if (!s->noise_err)
                s->noise_err = err;
        }
    }
    else
        vkf_torch_randn(&s->rng, out, s->n, s->p->kernel);
}

/* ---- scalar helpers (0-d float32 tensors) ------------------------------- */

static float f_exp(float v) { return torch_expf(v); }
static float f_log(float v) { return logf(v); }

/* torch.lerp on floats */
static float f_lerp(float a, float b, float w)
{
    return w < 0.5f ? a + w * (b - a) : b - (b - a) * (1.0f - w);
}

/* get_ancestral_step with 0-d tensor sigmas. */
static void anc_step(float sf, float st, double eta, float *down, float *up)
{
    if (eta == 0) {
        *down = st;
        *up = 0;
        return;
    }
    float v = st * st * (sf * sf - st * st) / (sf * sf);
    float u = (float)eta * sqrtf(v);
    if (!(u < st))
        u = st;
    *up = u;
    *down = sqrtf(st * st - u * u);
}

/* sigma_to_half_log_snr / half_log_snr_to_sigma */
static float lambda_of(const smp *s, float sigma)
{
    if (s->flow)
        return -logf(sigma / (1.0f - sigma));
    return -f_log(sigma);
}

static float sigma_of(const smp *s, float lam)
{
    if (s->flow)
        return 1.0f / (1.0f + f_exp(lam));   /* sigmoid(−λ) */
    return f_exp(-lam);
}

/* offset_first_sigma_for_snr, on a private copy of the sigmas. */
static void offset_first_sigma(const smp *s, float *sig, int ns)
{
    if (ns <= 1 || !s->flow || !s->p->ms)
        return;
    if (sig[0] >= 1.0f)
        sig[0] = (float)vkf_model_sampling_percent_to_sigma(s->p->ms, 1e-4);
}

/* ---- elementwise helpers ------------------------------------------------ */

/* d = (x − den)/σ */
static void to_d(const float *x, const float *den, float sigma, float *d, size_t n)
{
    for (size_t i = 0; i < n; i++)
        d[i] = (x[i] - den[i]) / sigma;
}

/* ------------------------------------------------------------------------ */
/* samplers                                                                  */

#define CHECK(e)                  \
    do {                          \
        int rc_ = (e);            \
        if (rc_)                  \
            return rc_;           \
    } while (0)

typedef struct bufs {
    float *b[8];
} bufs;

/* euler, ddim */
static int s_euler(smp *s, const float *sig, int ns, float *x, float *const *w)
{
    float *den = w[0];
    size_t n = s->n;
    for (int i = 0; i < ns - 1; i++) {
        CHECK(model_call(s, x, sig[i], den));
        CHECK(step_cb(s, i, x, den));
        float dt = sig[i + 1] - sig[i];
        for (size_t k = 0; k < n; k++)
            x[k] = x[k] + ((x[k] - den[k]) / sig[i]) * dt;
    }
    return 0;
}

/* euler_ancestral (+ the RF variant for CONST models) */
static int s_euler_ancestral(smp *s, const float *sig, int ns, float *x, float *const *w)
{
    float *den = w[0], *nz = w[1];
    size_t n = s->n;
    float sn_f = (float)s->s_noise;
    for (int i = 0; i < ns - 1; i++) {
        CHECK(model_call(s, x, sig[i], den));
        float a = sig[i], b = sig[i + 1];
        if (!s->flow) {
            float sd, su;
            anc_step(a, b, s->eta, &sd, &su);
            CHECK(step_cb(s, i, x, den));
            if (sd == 0) {
                memcpy(x, den, n * sizeof(float));
            } else {
                draw_noise(s, a, b, nz);
                float dt = sd - a;
                for (size_t k = 0; k < n; k++)
                    x[k] = (x[k] + ((x[k] - den[k]) / a) * dt) + (nz[k] * sn_f) * su;
            }
        } else {
            CHECK(step_cb(s, i, x, den));
            if (b == 0) {
                memcpy(x, den, n * sizeof(float));
                continue;
            }
            float ratio = 1.0f + (b / a - 1.0f) * (float)s->eta;
            float sd = b * ratio;
            float a1 = 1.0f - b, ad = 1.0f - sd;
            float renoise = sqrtf(b * b - sd * sd * (a1 * a1) / (ad * ad));
            float q = sd / a, q1 = 1.0f - q;
            for (size_t k = 0; k < n; k++)
                x[k] = q * x[k] + q1 * den[k];
            if (s->eta > 0) {
                draw_noise(s, a, b, nz);
                float ra = a1 / ad;
                for (size_t k = 0; k < n; k++)
                    x[k] = ra * x[k] + (nz[k] * sn_f) * renoise;
            }
        }
    }
    return 0;
}

/* euler_ancestral_cfg_pp, euler_cfg_pp (eta = s_noise = 0) */
static int s_euler_ancestral_cfg_pp(smp *s, const float *sig, int ns, float *x, float *const *w)
{
    float *den = w[0], *nz = w[1];
    size_t n = s->n;
    float *un = s->uncond;
    for (int i = 0; i < ns - 1; i++) {
        CHECK(model_call(s, x, sig[i], den));
        CHECK(step_cb(s, i, x, den));
        if (sig[i + 1] == 0) {
            memcpy(x, den, n * sizeof(float));
            continue;
        }
        float a = sig[i], b = sig[i + 1];
        float alpha_s = a * f_exp(lambda_of(s, a));
        float alpha_t = b * f_exp(lambda_of(s, b));
        float sd, su;
        anc_step(a / alpha_s, b / alpha_t, s->eta, &sd, &su);
        sd = alpha_t * sd;
        for (size_t k = 0; k < n; k++) {
            float d = (x[k] - alpha_s * un[k]) / a;
            x[k] = alpha_t * den[k] + sd * d;
        }
        if (s->eta > 0 && s->s_noise > 0) {
            draw_noise(s, a, b, nz);
            float sn_f = (float)s->s_noise;
            for (size_t k = 0; k < n; k++)
                x[k] = x[k] + ((alpha_t * nz[k]) * sn_f) * su;
        }
    }
    return 0;
}

/* heun */
static int s_heun(smp *s, const float *sig, int ns, float *x, float *const *w)
{
    float *den = w[0], *d = w[1], *x2 = w[2], *den2 = w[3];
    size_t n = s->n;
    for (int i = 0; i < ns - 1; i++) {
        float a = sig[i], b = sig[i + 1];
        CHECK(model_call(s, x, a, den));
        to_d(x, den, a, d, n);
        CHECK(step_cb(s, i, x, den));
        float dt = b - a;
        if (b == 0) {
            for (size_t k = 0; k < n; k++)
                x[k] = x[k] + d[k] * dt;
        } else {
            for (size_t k = 0; k < n; k++)
                x2[k] = x[k] + d[k] * dt;
            CHECK(model_call(s, x2, b, den2));
            for (size_t k = 0; k < n; k++) {
                float d2 = (x2[k] - den2[k]) / b;
                x[k] = x[k] + ((d[k] + d2) / 2.0f) * dt;
            }
        }
    }
    return 0;
}

/* heunpp2 */
static int s_heunpp2(smp *s, const float *sig, int ns, float *x, float *const *w)
{
    float *den = w[0], *d = w[1], *x2 = w[2], *den2 = w[3], *d2 = w[4], *x3 = w[5];
    size_t n = s->n;
    float s_end = sig[ns - 1];
    for (int i = 0; i < ns - 1; i++) {
        float a = sig[i], b = sig[i + 1];
        CHECK(model_call(s, x, a, den));
        to_d(x, den, a, d, n);
        CHECK(step_cb(s, i, x, den));
        float dt = b - a;
        if (b == s_end) {
            for (size_t k = 0; k < n; k++)
                x[k] = x[k] + d[k] * dt;
        } else if (sig[i + 2] == s_end) {
            for (size_t k = 0; k < n; k++)
                x2[k] = x[k] + d[k] * dt;
            CHECK(model_call(s, x2, b, den2));
            float wv = 2.0f * sig[0];
            float w2 = b / wv, w1 = 1.0f - w2;
            for (size_t k = 0; k < n; k++) {
                float dd2 = (x2[k] - den2[k]) / b;
                x[k] = x[k] + (d[k] * w1 + dd2 * w2) * dt;
            }
        } else {
            float c = sig[i + 2];
            for (size_t k = 0; k < n; k++)
                x2[k] = x[k] + d[k] * dt;
            CHECK(model_call(s, x2, b, den2));
            to_d(x2, den2, b, d2, n);
            float dt2 = c - b;
            for (size_t k = 0; k < n; k++)
                x3[k] = x2[k] + d2[k] * dt2;
            CHECK(model_call(s, x3, c, den2));
            float wv = 3.0f * sig[0];
            float w2 = b / wv, w3 = c / wv;
            float w1 = 1.0f - w2 - w3;
            for (size_t k = 0; k < n; k++) {
                float d3 = (x3[k] - den2[k]) / c;
                x[k] = x[k] + ((w1 * d[k] + w2 * d2[k]) + w3 * d3) * dt;
            }
        }
    }
    return 0;
}

/* dpm_2 */
static int s_dpm_2(smp *s, const float *sig, int ns, float *x, float *const *w)
{
    float *den = w[0], *d = w[1], *x2 = w[2], *den2 = w[3];
    size_t n = s->n;
    for (int i = 0; i < ns - 1; i++) {
        float a = sig[i], b = sig[i + 1];
        CHECK(model_call(s, x, a, den));
        to_d(x, den, a, d, n);
        CHECK(step_cb(s, i, x, den));
        if (b == 0) {
            float dt = b - a;
            for (size_t k = 0; k < n; k++)
                x[k] = x[k] + d[k] * dt;
        } else {
            float mid = f_exp(f_lerp(f_log(a), f_log(b), 0.5f));
            float dt1 = mid - a, dt2 = b - a;
            for (size_t k = 0; k < n; k++)
                x2[k] = x[k] + d[k] * dt1;
            CHECK(model_call(s, x2, mid, den2));
            for (size_t k = 0; k < n; k++)
                x[k] = x[k] + ((x2[k] - den2[k]) / mid) * dt2;
        }
    }
    return 0;
}

/* dpm_2_ancestral (+ RF) */
static int s_dpm_2_ancestral(smp *s, const float *sig, int ns, float *x, float *const *w)
{
    float *den = w[0], *d = w[1], *x2 = w[2], *den2 = w[3], *nz = w[4];
    size_t n = s->n;
    float sn_f = (float)s->s_noise;
    for (int i = 0; i < ns - 1; i++) {
        float a = sig[i], b = sig[i + 1];
        CHECK(model_call(s, x, a, den));
        float sd, su = 0, a1 = 0, ad = 0;
        if (s->flow) {
            float ratio = 1.0f + (b / a - 1.0f) * (float)s->eta;
            sd = b * ratio;
            a1 = 1.0f - b;
            ad = 1.0f - sd;
            su = sqrtf(b * b - sd * sd * (a1 * a1) / (ad * ad));
        } else {
            anc_step(a, b, s->eta, &sd, &su);
        }
        CHECK(step_cb(s, i, x, den));
        to_d(x, den, a, d, n);
        if (sd == 0) {
            float dt = sd - a;
            for (size_t k = 0; k < n; k++)
                x[k] = x[k] + d[k] * dt;
        } else {
            float mid = f_exp(f_lerp(f_log(a), f_log(sd), 0.5f));
            float dt1 = mid - a, dt2 = sd - a;
            for (size_t k = 0; k < n; k++)
                x2[k] = x[k] + d[k] * dt1;
            CHECK(model_call(s, x2, mid, den2));
            for (size_t k = 0; k < n; k++)
                x[k] = x[k] + ((x2[k] - den2[k]) / mid) * dt2;
            draw_noise(s, a, b, nz);
            if (s->flow) {
                float ra = a1 / ad;
                for (size_t k = 0; k < n; k++)
                    x[k] = ra * x[k] + (nz[k] * sn_f) * su;
            } else {
                for (size_t k = 0; k < n; k++)
                    x[k] = x[k] + (nz[k] * sn_f) * su;
            }
        }
    }
    return 0;
}

/* lms: ∫ of the Lagrange basis polynomial over [t_i, t_{i+1}] (scipy's quad
 * is exact on these polynomials; Gauss–Legendre with 4 nodes is too). */
static double lms_coeff(int order, const float *t, int i, int j)
{
    static const double gx[4] = {-0.8611363115940526, -0.3399810435848563,
                                 0.3399810435848563, 0.8611363115940526};
    static const double gw[4] = {0.3478548451374538, 0.6521451548625461,
                                 0.6521451548625461, 0.3478548451374538};
    double a = t[i], b = t[i + 1];
    double sum = 0;
    for (int q = 0; q < 4; q++) {
        double tau = 0.5 * (b - a) * gx[q] + 0.5 * (a + b);
        double prod = 1.0;
        for (int k = 0; k < order; k++) {
            if (k == j)
                continue;
            prod *= (tau - (double)t[i - k]) / ((double)t[i - j] - (double)t[i - k]);
        }
        sum += gw[q] * prod;
    }
    return 0.5 * (b - a) * sum;
}

static int s_lms(smp *s, const float *sig, int ns, float *x, float *const *w)
{
    float *den = w[0], *acc = w[1];
    float *ds[4] = {w[2], w[3], w[4], w[5]};   /* ring, newest at (cnt-1) % order */
    size_t n = s->n;
    int order = s->p->has_params && s->p->order > 0 ? s->p->order : 4;
    if (order > 4) {
        vkf_logf(s->log, VKF_LOG_ERROR, "lms: order %d is above 4", order);
        return VKF_EUNSUPPORTED;
    }
    int cnt = 0;
    for (int i = 0; i < ns - 1; i++) {
        CHECK(model_call(s, x, sig[i], den));
        float *dnew = ds[cnt % order];
        to_d(x, den, sig[i], dnew, n);
        cnt++;
        CHECK(step_cb(s, i, x, den));
        if (sig[i + 1] == 0) {
            memcpy(x, den, n * sizeof(float));
            continue;
        }
        int cur = i + 1 < order ? i + 1 : order;
        for (int j = 0; j < cur; j++) {
            float c = (float)lms_coeff(cur, sig, i, j);
            const float *dj = ds[(cnt - 1 - j) % order];
            if (j == 0)
                for (size_t k = 0; k < n; k++)
                    acc[k] = 0.0f + c * dj[k];
            else
                for (size_t k = 0; k < n; k++)
                    acc[k] = acc[k] + c * dj[k];
        }
        for (size_t k = 0; k < n; k++)
            x[k] = x[k] + acc[k];
    }
    return 0;
}

/* ---- DPM-Solver (dpm_fast, dpm_adaptive) -------------------------------- */

typedef struct dpms {
    smp *s;
    float *eps, *eps_r1, *eps_r2, *u, *den;
    bool has_eps, has_r1, has_r2;
} dpms;

static float dsig(float t) { return f_exp(-t); }

/* eps at (x, t) into out */
static int dpm_eps(dpms *d, const float *x, float t, float *out)
{
    float sg = dsig(t);
    CHECK(model_call(d->s, x, sg, d->den));
    for (size_t k = 0; k < d->s->n; k++)
        out[k] = (x[k] - d->den[k]) / sg;
    return 0;
}

static int dpm_first_eps(dpms *d, const float *x, float t)
{
    if (!d->has_eps) {
        CHECK(dpm_eps(d, x, t, d->eps));
        d->has_eps = true;
    }
    return 0;
}

static int dpm_1(dpms *d, const float *x, float t, float tn, float *out)
{
    float h = tn - t;
    CHECK(dpm_first_eps(d, x, t));
    float c = dsig(tn) * expm1f(h);
    for (size_t k = 0; k < d->s->n; k++)
        out[k] = x[k] - c * d->eps[k];
    return 0;
}

static int dpm_2s(dpms *d, const float *x, float t, float tn, float r1, float *out)
{
    size_t n = d->s->n;
    float h = tn - t;
    CHECK(dpm_first_eps(d, x, t));
    float s1 = t + r1 * h;
    float c1 = dsig(s1) * expm1f(r1 * h);
    for (size_t k = 0; k < n; k++)
        d->u[k] = x[k] - c1 * d->eps[k];
    if (!d->has_r1) {
        CHECK(dpm_eps(d, d->u, s1, d->eps_r1));
        d->has_r1 = true;
    }
    float c = dsig(tn) * expm1f(h);
    float c2 = dsig(tn) / (2.0f * r1) * expm1f(h);
    for (size_t k = 0; k < n; k++)
        out[k] = (x[k] - c * d->eps[k]) - c2 * (d->eps_r1[k] - d->eps[k]);
    return 0;
}

static int dpm_3s(dpms *d, const float *x, float t, float tn, float *out)
{
    size_t n = d->s->n;
    const float r1 = 1.0f / 3.0f, r2 = 2.0f / 3.0f;
    float h = tn - t;
    CHECK(dpm_first_eps(d, x, t));
    float s1 = t + r1 * h, s2 = t + r2 * h;
    float c1 = dsig(s1) * expm1f(r1 * h);
    for (size_t k = 0; k < n; k++)
        d->u[k] = x[k] - c1 * d->eps[k];
    if (!d->has_r1) {
        CHECK(dpm_eps(d, d->u, s1, d->eps_r1));
        d->has_r1 = true;
    }
    float r2h = r2 * h;
    float ca = dsig(s2) * expm1f(r2h);
    float cb = dsig(s2) * (r2 / r1) * (expm1f(r2h) / r2h - 1.0f);
    for (size_t k = 0; k < n; k++)
        d->u[k] = (x[k] - ca * d->eps[k]) - cb * (d->eps_r1[k] - d->eps[k]);
    if (!d->has_r2) {
        CHECK(dpm_eps(d, d->u, s2, d->eps_r2));
        d->has_r2 = true;
    }
    float c = dsig(tn) * expm1f(h);
    float c3 = dsig(tn) / r2 * (expm1f(h) / h - 1.0f);
    for (size_t k = 0; k < n; k++)
        out[k] = (x[k] - c * d->eps[k]) - c3 * (d->eps_r2[k] - d->eps[k]);
    return 0;
}

static void dpm_reset(dpms *d)
{
    d->has_eps = d->has_r1 = d->has_r2 = false;
}

/* last non-zero sigma, as ComfyUI's dpm_fast/dpm_adaptive wrappers pick it */
static float dpm_sigma_min(const float *sig, int ns)
{
    float m = sig[ns - 1];
    if (m == 0)
        m = sig[ns - 2];
    return m;
}

static int s_dpm_fast(smp *s, const float *sig, int ns, float *x, float *const *w)
{
    size_t n = s->n;
    dpms d = {.s = s, .eps = w[0], .eps_r1 = w[1], .eps_r2 = w[2], .u = w[3], .den = w[4]};
    float *den_out = w[5], *nz = w[6];
    float smin = dpm_sigma_min(sig, ns), smax = sig[0];
    if (!(smin > 0) || !(smax > 0)) {
        vkf_logf(s->log, VKF_LOG_ERROR, "dpm_fast: sigma_min and sigma_max must not be 0");
        return VKF_EINVAL;
    }
    int nfe = ns - 1;
    float t_start = -f_log(smax), t_end = -f_log(smin);
    int m = nfe / 3 + 1;
    float *ts = vkf_malloc((size_t)(m + 1) * sizeof(float));
    if (!ts)
        return VKF_ENOMEM;
    torch_linspace_f32(t_start, t_end, m + 1, ts);
    int rc = 0;
    for (int i = 0; i < m && !rc; i++) {
        int ord;
        if (nfe % 3 == 0)
            ord = i < m - 2 ? 3 : (i == m - 2 ? 2 : 1);
        else
            ord = i < m - 1 ? 3 : nfe % 3;
        dpm_reset(&d);
        float t = ts[i], tn = ts[i + 1];
        float tn_ = tn, su = 0;
        if (s->eta != 0) {
            float sd, su0;
            anc_step(dsig(t), dsig(tn), s->eta, &sd, &su0);
            float tsd = -f_log(sd);
            tn_ = t_end < tsd ? t_end : tsd;
            su = sqrtf(dsig(tn) * dsig(tn) - dsig(tn_) * dsig(tn_));
        }
        if ((rc = dpm_first_eps(&d, x, t)))
            break;
        float st = dsig(t);
        for (size_t k = 0; k < n; k++)
            den_out[k] = x[k] - st * d.eps[k];
        if ((rc = step_cb(s, i, x, den_out)))
            break;
        if (ord == 1)
            rc = dpm_1(&d, x, t, tn_, x);
        else if (ord == 2)
            rc = dpm_2s(&d, x, t, tn_, 0.5f, x);
        else
            rc = dpm_3s(&d, x, t, tn_, x);
        if (!rc && su != 0) {
            draw_noise(s, dsig(t), dsig(tn), nz);
            float c = su * (float)s->s_noise;
            for (size_t k = 0; k < n; k++)
                x[k] = x[k] + c * nz[k];
        }
    }
    vkf_free(ts);
    return rc;
}

static int s_dpm_adaptive(smp *s, const float *sig, int ns, float *x, float *const *w)
{
    size_t n = s->n;
    dpms d = {.s = s, .eps = w[0], .eps_r1 = w[1], .eps_r2 = w[2], .u = w[3], .den = w[4]};
    float *den_out = w[5], *nz = w[6], *x_low = w[7], *x_high;
    float smin = dpm_sigma_min(sig, ns), smax = sig[0];
    if (!(smin > 0) || !(smax > 0)) {
        vkf_logf(s->log, VKF_LOG_ERROR, "dpm_adaptive: sigma_min and sigma_max must not be 0");
        return VKF_EINVAL;
    }
    /* defaults of sample_dpm_adaptive */
    int order = 3;
    double rtol = 0.05, atol = 0.0078, h_init = 0.05, pcoeff = 0, icoeff = 1, dcoeff = 0;
    double accept_safety = 0.81, eps_pid = 1e-8;
    double eta = s->p->has_params ? s->eta : 0.0;
    float *x_prev = vkf_malloc(2 * n * sizeof(float));
    if (!x_prev)
        return VKF_ENOMEM;
    x_high = x_prev + n;
    memcpy(x_prev, x, n * sizeof(float));
    float t_start = -f_log(smax), t_end = -f_log(smin);
    double pid_order = eta != 0 ? 1.5 : order;
    double ph = h_init;   /* t_end > t_start: forward */
    double b1 = (pcoeff + icoeff + dcoeff) / pid_order, b2 = -(pcoeff + 2 * dcoeff) / pid_order;
    double b3 = dcoeff / pid_order;
    double errs[3] = {0, 0, 0};
    bool have_errs = false;
    float fs = t_start;
    float fatol = (float)atol, frtol = (float)rtol;
    int steps = 0, rc = 0;
    while (fs < t_end - 1e-5f) {
        dpm_reset(&d);
        float cand = fs + (float)ph;
        float t = t_end < cand ? t_end : cand;
        float t_ = t, su = 0;
        if (eta != 0) {
            float sd, su0;
            anc_step(dsig(fs), dsig(t), eta, &sd, &su0);
            float tsd = -f_log(sd);
            t_ = t_end < tsd ? t_end : tsd;
            su = sqrtf(dsig(t) * dsig(t) - dsig(t_) * dsig(t_));
        }
        if ((rc = dpm_first_eps(&d, x, fs)))
            break;
        float sg = dsig(fs);
        for (size_t k = 0; k < n; k++)
            den_out[k] = x[k] - sg * d.eps[k];
        if ((rc = dpm_2s(&d, x, fs, t_, 1.0f / 3.0f, x_low)))
            break;
        if ((rc = dpm_3s(&d, x, fs, t_, x_high)))
            break;
        double sq = 0;
        for (size_t k = 0; k < n; k++) {
            float ax = fabsf(x_low[k]), ap = fabsf(x_prev[k]);
            float mx = ax > ap ? ax : ap;
            float delta = frtol * mx;
            if (!(delta > fatol))
                delta = fatol;
            float e = (x_low[k] - x_high[k]) / delta;
            sq += (double)e * e;
        }
        float error = (float)sqrt(sq) / (float)sqrt((double)n);
        /* PIDStepSizeController.propose_step */
        double inv = 1.0 / ((double)error + eps_pid);
        if (!have_errs) {
            errs[0] = errs[1] = errs[2] = inv;
            have_errs = true;
        }
        errs[0] = inv;
        double factor = pow(errs[0], b1) * pow(errs[1], b2) * pow(errs[2], b3);
        factor = 1 + atan(factor - 1);
        bool accept = factor >= accept_safety;
        if (accept) {
            errs[2] = errs[1];
            errs[1] = errs[0];
        }
        ph *= factor;
        if (accept) {
            memcpy(x_prev, x_low, n * sizeof(float));
            memcpy(x, x_high, n * sizeof(float));
            if (su != 0) {
                draw_noise(s, dsig(fs), dsig(t), nz);
                float c = su * (float)s->s_noise;
                for (size_t k = 0; k < n; k++)
                    x[k] = x[k] + c * nz[k];
            }
            fs = t;
        }
        steps++;
        if ((rc = step_cb(s, steps - 1, x, den_out)))
            break;
        if (steps > 100000) {
            vkf_logf(s->log, VKF_LOG_ERROR, "dpm_adaptive: no convergence after %d steps", steps);
            rc = VKF_ERUN;
            break;
        }
    }
    vkf_free(x_prev);
    return rc;
}

/* dpmpp_2s_ancestral (+ RF) and dpmpp_2s_ancestral_cfg_pp */
static int s_dpmpp_2s_ancestral(smp *s, const float *sig, int ns, float *x, float *const *w,
                                bool cfg_pp)
{
    float *den = w[0], *x2 = w[1], *den2 = w[2], *nz = w[3];
    size_t n = s->n;
    float sn_f = (float)s->s_noise;
    const float *un = s->uncond;
    bool rf = s->flow && !cfg_pp;
    for (int i = 0; i < ns - 1; i++) {
        float a = sig[i], b = sig[i + 1];
        CHECK(model_call(s, x, a, den));
        float sd, su = 0, a1 = 0, ad = 0;
        if (rf) {
            float ratio = 1.0f + (b / a - 1.0f) * (float)s->eta;
            sd = b * ratio;
            a1 = 1.0f - b;
            ad = 1.0f - sd;
            su = sqrtf(b * b - sd * sd * (a1 * a1) / (ad * ad));
        } else {
            anc_step(a, b, s->eta, &sd, &su);
        }
        CHECK(step_cb(s, i, x, den));
        if (rf) {
            if (b == 0) {
                float dt = sd - a;
                for (size_t k = 0; k < n; k++)
                    x[k] = x[k] + ((x[k] - den[k]) / a) * dt;
            } else {
                float sig_s;
                if (a == 1.0f) {
                    sig_s = 0.9999f;
                } else {
                    float ti = logf((1.0f - a) / a), td = logf((1.0f - sd) / sd);
                    float h = td - ti;
                    float st = ti + 0.5f * h;
                    sig_s = 1.0f / (f_exp(st) + 1.0f);
                }
                float q = sig_s / a, q1 = 1.0f - q;
                for (size_t k = 0; k < n; k++)
                    x2[k] = q * x[k] + q1 * den[k];
                CHECK(model_call(s, x2, sig_s, den2));
                float qd = sd / a, qd1 = 1.0f - qd;
                for (size_t k = 0; k < n; k++)
                    x[k] = qd * x[k] + qd1 * den2[k];
            }
            if (b > 0 && s->eta > 0) {
                draw_noise(s, a, b, nz);
                float ra = a1 / ad;
                for (size_t k = 0; k < n; k++)
                    x[k] = ra * x[k] + (nz[k] * sn_f) * su;
            }
            continue;
        }
        if (sd == 0) {
            if (cfg_pp) {
                for (size_t k = 0; k < n; k++)
                    x[k] = den[k] + ((x[k] - un[k]) / a) * sd;
            } else {
                float dt = sd - a;
                for (size_t k = 0; k < n; k++)
                    x[k] = x[k] + ((x[k] - den[k]) / a) * dt;
            }
        } else {
            float t = -f_log(a), tn = -f_log(sd);
            float h = tn - t;
            float st = t + 0.5f * h;
            float q = dsig(st) / dsig(t);
            float c = expm1f(-h * 0.5f);
            if (cfg_pp)
                for (size_t k = 0; k < n; k++)
                    x2[k] = q * (x[k] + (den[k] - un[k])) - c * den[k];
            else
                for (size_t k = 0; k < n; k++)
                    x2[k] = q * x[k] - c * den[k];
            CHECK(model_call(s, x2, dsig(st), den2));
            float qn = dsig(tn) / dsig(t);
            float cn = expm1f(-h);
            /* CFG++: ComfyUI's uncond holder now has the second call's
             * uncond, and that is what it adds here */
            if (cfg_pp)
                for (size_t k = 0; k < n; k++)
                    x[k] = qn * (x[k] + (den[k] - un[k])) - cn * den2[k];
            else
                for (size_t k = 0; k < n; k++)
                    x[k] = qn * x[k] - cn * den2[k];
        }
        if (b > 0) {
            draw_noise(s, a, b, nz);
            for (size_t k = 0; k < n; k++)
                x[k] = x[k] + (nz[k] * sn_f) * su;
        }
    }
    return 0;
}

/* dpmpp_sde (+ _gpu) */
static int s_dpmpp_sde(smp *s, const float *sig, int ns, float *x, float *const *w)
{
    float *den = w[0], *x2 = w[1], *den2 = w[2], *nz = w[3];
    size_t n = s->n;
    double r = s->r;
    float fr = (float)r;
    double fac = 1.0 / (2.0 * r);
    float ffac = (float)fac, f1fac = (float)(1.0 - fac);
    float sn_f = (float)s->s_noise;
    bool noise = s->eta > 0 && s->s_noise > 0;
    for (int i = 0; i < ns - 1; i++) {
        float a = sig[i], b = sig[i + 1];
        CHECK(model_call(s, x, a, den));
        CHECK(step_cb(s, i, x, den));
        if (b == 0) {
            memcpy(x, den, n * sizeof(float));
            continue;
        }
        float ls = lambda_of(s, a), lt = lambda_of(s, b);
        float h = lt - ls;
        float ls1 = ls + fr * h;
        float s1 = sigma_of(s, ls1);
        float alpha_s = a * f_exp(ls), alpha_s1 = s1 * f_exp(ls1), alpha_t = b * f_exp(lt);
        float sd, su;
        anc_step(f_exp(-ls), f_exp(-ls1), s->eta, &sd, &su);
        float h_ = -f_log(sd) - ls;
        float c1 = (alpha_s1 / alpha_s) * f_exp(-h_), c2 = alpha_s1 * expm1f(-h_);
        for (size_t k = 0; k < n; k++)
            x2[k] = c1 * x[k] - c2 * den[k];
        if (noise) {
            draw_noise(s, a, s1, nz);
            for (size_t k = 0; k < n; k++)
                x2[k] = x2[k] + ((alpha_s1 * nz[k]) * sn_f) * su;
        }
        CHECK(model_call(s, x2, s1, den2));
        anc_step(f_exp(-ls), f_exp(-lt), s->eta, &sd, &su);
        h_ = -f_log(sd) - ls;
        c1 = (alpha_t / alpha_s) * f_exp(-h_);
        c2 = alpha_t * expm1f(-h_);
        for (size_t k = 0; k < n; k++) {
            float dd = f1fac * den[k] + ffac * den2[k];
            x[k] = c1 * x[k] - c2 * dd;
        }
        if (noise) {
            draw_noise(s, a, b, nz);
            for (size_t k = 0; k < n; k++)
                x[k] = x[k] + ((alpha_t * nz[k]) * sn_f) * su;
        }
    }
    return 0;
}

/* dpmpp_2m */
static int s_dpmpp_2m(smp *s, const float *sig, int ns, float *x, float *const *w)
{
    float *den = w[0], *old = w[1];
    size_t n = s->n;
    bool has_old = false;
    for (int i = 0; i < ns - 1; i++) {
        float a = sig[i], b = sig[i + 1];
        CHECK(model_call(s, x, a, den));
        CHECK(step_cb(s, i, x, den));
        float t = -f_log(a), tn = -f_log(b);
        float h = tn - t;
        float q = dsig(tn) / dsig(t), c = expm1f(-h);
        if (!has_old || b == 0) {
            for (size_t k = 0; k < n; k++)
                x[k] = q * x[k] - c * den[k];
        } else {
            float hl = t - (-f_log(sig[i - 1]));
            float rr = hl / h;
            float inv = 1.0f / (2.0f * rr);
            float c0 = 1.0f + inv;
            for (size_t k = 0; k < n; k++) {
                float dd = c0 * den[k] - inv * old[k];
                x[k] = q * x[k] - c * dd;
            }
        }
        memcpy(old, den, n * sizeof(float));
        has_old = true;
    }
    return 0;
}

/* dpmpp_2m_cfg_pp */
static int s_dpmpp_2m_cfg_pp(smp *s, const float *sig, int ns, float *x, float *const *w)
{
    float *den = w[0], *old = w[1];
    const float *un = s->uncond;
    size_t n = s->n;
    bool has_old = false;
    for (int i = 0; i < ns - 1; i++) {
        float a = sig[i], b = sig[i + 1];
        CHECK(model_call(s, x, a, den));
        CHECK(step_cb(s, i, x, den));
        float t = -f_log(a), tn = -f_log(b);
        float h = tn - t;
        float e = f_exp(-h);
        if (!has_old || b == 0) {
            for (size_t k = 0; k < n; k++) {
                float mix = -e * un[k];
                x[k] = (den[k] + mix) + e * x[k];
            }
        } else {
            float hl = t - (-f_log(sig[i - 1]));
            float rr = hl / h;
            float c = expm1f(-h) * (1.0f / (2.0f * rr));
            for (size_t k = 0; k < n; k++) {
                float mix = -e * un[k] - c * (den[k] - old[k]);
                x[k] = (den[k] + mix) + e * x[k];
            }
        }
        memcpy(old, un, n * sizeof(float));
        has_old = true;
    }
    return 0;
}

/* dpmpp_2m_sde (+ _gpu, _heun, _heun_gpu) */
static int s_dpmpp_2m_sde(smp *s, const float *sig, int ns, float *x, float *const *w,
                          bool heun)
{
    float *den = w[0], *old = w[1], *nz = w[2];
    size_t n = s->n;
    float eta = (float)s->eta, sn_f = (float)s->s_noise;
    bool has_old = false, noise = s->eta > 0 && s->s_noise > 0;
    float h = 0, h_last = 0;
    for (int i = 0; i < ns - 1; i++) {
        float a = sig[i], b = sig[i + 1];
        CHECK(model_call(s, x, a, den));
        CHECK(step_cb(s, i, x, den));
        if (b == 0) {
            memcpy(x, den, n * sizeof(float));
        } else {
            float ls = lambda_of(s, a), lt = lambda_of(s, b);
            h = lt - ls;
            float h_eta = h * (float)(s->eta + 1.0);
            float alpha_t = b * f_exp(lt);
            float c1 = b / a * f_exp(-h * eta);
            float em = -expm1f(-h_eta);
            float c2 = alpha_t * em;
            for (size_t k = 0; k < n; k++)
                x[k] = c1 * x[k] + c2 * den[k];
            if (has_old) {
                float rr = h_last / h;
                float c;
                if (heun)
                    c = alpha_t * (em / (-h_eta) + 1.0f) * (1.0f / rr);
                else
                    c = 0.5f * alpha_t * em * (1.0f / rr);
                for (size_t k = 0; k < n; k++)
                    x[k] = x[k] + c * (den[k] - old[k]);
            }
            if (noise) {
                draw_noise(s, a, b, nz);
                float q = sqrtf(-expm1f(-2.0f * h * eta));
                for (size_t k = 0; k < n; k++)
                    x[k] = x[k] + ((nz[k] * b) * q) * sn_f;
            }
        }
        memcpy(old, den, n * sizeof(float));
        has_old = true;
        h_last = h;
    }
    return 0;
}

/* dpmpp_3m_sde (+ _gpu) */
static int s_dpmpp_3m_sde(smp *s, const float *sig, int ns, float *x, float *const *w)
{
    float *den = w[0], *d1b = w[1], *d2b = w[2], *nz = w[3];
    size_t n = s->n;
    float eta = (float)s->eta, sn_f = (float)s->s_noise;
    bool noise = s->eta > 0 && s->s_noise > 0;
    int nd = 0;   /* how many of denoised_1, denoised_2 are set */
    bool has_h1 = false, has_h2 = false;
    float h = 0, h1 = 0, h2 = 0;
    bool has_h = false;
    for (int i = 0; i < ns - 1; i++) {
        float a = sig[i], b = sig[i + 1];
        CHECK(model_call(s, x, a, den));
        CHECK(step_cb(s, i, x, den));
        if (b == 0) {
            memcpy(x, den, n * sizeof(float));
        } else {
            float ls = lambda_of(s, a), lt = lambda_of(s, b);
            h = lt - ls;
            has_h = true;
            float h_eta = h * (float)(s->eta + 1.0);
            float alpha_t = b * f_exp(lt);
            float c1 = b / a * f_exp(-h * eta);
            float c2 = alpha_t * -expm1f(-h_eta);
            for (size_t k = 0; k < n; k++)
                x[k] = c1 * x[k] + c2 * den[k];
            if (has_h2) {
                float r0 = h1 / h, r1 = h2 / h;
                float phi2 = expm1f(-h_eta) / h_eta + 1.0f;
                float phi3 = phi2 / h_eta - 0.5f;
                float ca = alpha_t * phi2, cb = alpha_t * phi3;
                float rs = r0 + r1;
                for (size_t k = 0; k < n; k++) {
                    float d10 = (den[k] - d1b[k]) / r0;
                    float d11 = (d1b[k] - d2b[k]) / r1;
                    float dd1 = d10 + ((d10 - d11) * r0) / rs;
                    float dd2 = (d10 - d11) / rs;
                    x[k] = (x[k] + ca * dd1) - cb * dd2;
                }
            } else if (has_h1) {
                float rr = h1 / h;
                float phi2 = expm1f(-h_eta) / h_eta + 1.0f;
                float ca = alpha_t * phi2;
                for (size_t k = 0; k < n; k++)
                    x[k] = x[k] + ca * ((den[k] - d1b[k]) / rr);
            }
            if (noise) {
                draw_noise(s, a, b, nz);
                float q = sqrtf(-expm1f(-2.0f * h * eta));
                for (size_t k = 0; k < n; k++)
                    x[k] = x[k] + ((nz[k] * b) * q) * sn_f;
            }
        }
        /* denoised_1, denoised_2 = denoised, denoised_1; h_1, h_2 = h, h_1 */
        memcpy(d2b, d1b, n * sizeof(float));
        memcpy(d1b, den, n * sizeof(float));
        nd++;
        has_h2 = has_h1;
        h2 = h1;
        has_h1 = has_h;
        h1 = h;
    }
    (void)nd;
    return 0;
}

/* ddpm (generic_step_sampler + DDPMSampler_step) */
static int s_ddpm(smp *s, const float *sig, int ns, float *x, float *const *w)
{
    float *den = w[0], *nz = w[1];
    size_t n = s->n;
    for (int i = 0; i < ns - 1; i++) {
        float a = sig[i], b = sig[i + 1];
        CHECK(model_call(s, x, a, den));
        CHECK(step_cb(s, i, x, den));
        float sc = sqrtf(1.0f + a * a);
        float ac = 1.0f / (a * a + 1.0f), acp = 1.0f / (b * b + 1.0f);
        float alpha = ac / acp;
        float c0 = sqrtf(1.0f / alpha), c1 = 1.0f - alpha, c2 = sqrtf(1.0f - ac);
        for (size_t k = 0; k < n; k++) {
            float xs = x[k] / sc;
            float eps = (x[k] - den[k]) / a;
            x[k] = c0 * (xs - (c1 * eps) / c2);
        }
        if (b > 0) {
            draw_noise(s, a, b, nz);
            float cn = sqrtf((1.0f - alpha) * (1.0f - acp) / (1.0f - ac));
            for (size_t k = 0; k < n; k++)
                x[k] += cn * nz[k];
        }
        if (b != 0) {
            float m = sqrtf(1.0f + b * b);
            for (size_t k = 0; k < n; k++)
                x[k] *= m;
        }
    }
    return 0;
}

/* lcm */
static int s_lcm(smp *s, const float *sig, int ns, float *x, float *const *w)
{
    float *den = w[0], *nz = w[1];
    size_t n = s->n;
    for (int i = 0; i < ns - 1; i++) {
        float b = sig[i + 1];
        CHECK(model_call(s, x, sig[i], den));
        CHECK(step_cb(s, i, x, den));
        memcpy(x, den, n * sizeof(float));
        if (b > 0) {
            draw_noise(s, sig[i], b, nz);
            if (s->p->ms)
                vkf_model_sampling_noise_scaling(s->p->ms, b, nz, den, false, x, n);
            else
                for (size_t k = 0; k < n; k++)
                    x[k] = nz[k] * b + den[k];
        }
    }
    return 0;
}

/* ipndm, ipndm_v (max_order 4) */
static int s_ipndm(smp *s, const float *sig, int ns, float *x, float *const *w, bool v)
{
    float *den = w[0], *dc = w[1];
    float *buf[3] = {w[2], w[3], w[4]};   /* buf[0] oldest … buf[nb-1] newest */
    const int max_order = 4;
    int nb = 0;
    size_t n = s->n;
    for (int i = 0; i < ns - 1; i++) {
        float tc = sig[i], tn = sig[i + 1];
        CHECK(model_call(s, x, tc, den));
        CHECK(step_cb(s, i, x, den));
        to_d(x, den, tc, dc, n);
        int order = i + 1 < max_order ? i + 1 : max_order;
        float dt = tn - tc;
        const float *b1 = nb >= 1 ? buf[nb - 1] : NULL;
        const float *b2 = nb >= 2 ? buf[nb - 2] : NULL;
        const float *b3 = nb >= 3 ? buf[nb - 3] : NULL;
        if (tn == 0) {
            memcpy(x, den, n * sizeof(float));
        } else if (order == 1) {
            for (size_t k = 0; k < n; k++)
                x[k] = x[k] + dt * dc[k];
        } else if (!v) {
            if (order == 2)
                for (size_t k = 0; k < n; k++)
                    x[k] = x[k] + (dt * (3.0f * dc[k] - b1[k])) / 2.0f;
            else if (order == 3)
                for (size_t k = 0; k < n; k++)
                    x[k] = x[k] + (dt * ((23.0f * dc[k] - 16.0f * b1[k]) + 5.0f * b2[k])) / 12.0f;
            else
                for (size_t k = 0; k < n; k++)
                    x[k] = x[k] + (dt * (((55.0f * dc[k] - 59.0f * b1[k]) + 37.0f * b2[k]) -
                                         9.0f * b3[k])) / 24.0f;
        } else {
            float hn = tn - tc, hn1 = tc - sig[i - 1];
            float c1, c2, c3 = 0, c4 = 0;
            if (order == 2) {
                c1 = (2.0f + hn / hn1) / 2.0f;
                c2 = -(hn / hn1) / 2.0f;
            } else if (order == 3) {
                float hn2 = sig[i - 1] - sig[i - 2];
                float temp = (1.0f - hn / (3.0f * (hn + hn1)) * (hn * (hn + hn1)) /
                                         (hn1 * (hn1 + hn2))) / 2.0f;
                c1 = (2.0f + hn / hn1) / 2.0f + temp;
                c2 = -(hn / hn1) / 2.0f - (1.0f + hn1 / hn2) * temp;
                c3 = temp * hn1 / hn2;
            } else {
                float hn2 = sig[i - 1] - sig[i - 2], hn3 = sig[i - 2] - sig[i - 3];
                float temp1 = (1.0f - hn / (3.0f * (hn + hn1)) * (hn * (hn + hn1)) /
                                          (hn1 * (hn1 + hn2))) / 2.0f;
                float temp2 = ((1.0f - hn / (3.0f * (hn + hn1))) / 2.0f +
                               (1.0f - hn / (2.0f * (hn + hn1))) * hn / (6.0f * (hn + hn1 + hn2))) *
                              (hn * (hn + hn1) * (hn + hn1 + hn2)) /
                              (hn1 * (hn1 + hn2) * (hn1 + hn2 + hn3));
                float q = hn1 * (hn1 + hn2) / (hn2 * (hn2 + hn3));
                c1 = (2.0f + hn / hn1) / 2.0f + temp1 + temp2;
                c2 = -(hn / hn1) / 2.0f - (1.0f + hn1 / hn2) * temp1 -
                     (1.0f + hn1 / hn2 + q) * temp2;
                c3 = temp1 * hn1 / hn2 + (hn1 / hn2 + q * (1.0f + hn2 / hn3)) * temp2;
                c4 = -temp2 * q * hn1 / hn2;
            }
            for (size_t k = 0; k < n; k++) {
                float acc = c1 * dc[k] + c2 * b1[k];
                if (order >= 3)
                    acc = acc + c3 * b2[k];
                if (order >= 4)
                    acc = acc + c4 * b3[k];
                x[k] = x[k] + dt * acc;
            }
        }
        if (nb == max_order - 1) {
            float *oldest = buf[0];
            for (int k = 0; k < max_order - 2; k++)
                buf[k] = buf[k + 1];
            buf[max_order - 2] = oldest;
            memcpy(oldest, dc, n * sizeof(float));
        } else {
            memcpy(buf[nb++], dc, n * sizeof(float));
        }
    }
    return 0;
}

/* res_multistep family */
static int s_res_multistep(smp *s, const float *sig, int ns, float *x, float *const *w,
                           double eta, bool cfg_pp)
{
    float *den = w[0], *old = w[1], *nz = w[2];
    const float *un = s->uncond;
    size_t n = s->n;
    float sn_f = (float)s->s_noise;
    bool has_old = false;
    float old_sd = 0;
    for (int i = 0; i < ns - 1; i++) {
        float a = sig[i], b = sig[i + 1];
        CHECK(model_call(s, x, a, den));
        float sd, su;
        anc_step(a, b, eta, &sd, &su);
        CHECK(step_cb(s, i, x, den));
        if (sd == 0 || !has_old) {
            if (cfg_pp) {
                for (size_t k = 0; k < n; k++)
                    x[k] = den[k] + ((x[k] - un[k]) / a) * sd;
            } else {
                float dt = sd - a;
                for (size_t k = 0; k < n; k++)
                    x[k] = x[k] + ((x[k] - den[k]) / a) * dt;
            }
        } else {
            float t = -f_log(a), t_old = -f_log(old_sd), t_next = -f_log(sd),
                  t_prev = -f_log(sig[i - 1]);
            float h = t_next - t;
            float c2 = (t_prev - t_old) / h;
            float mh = -h;
            float phi1 = expm1f(mh) / mh;
            float phi2 = (phi1 - 1.0f) / mh;
            float bb1 = phi1 - phi2 / c2, bb2 = phi2 / c2;
            if (isnan(bb1))
                bb1 = 0;
            if (isnan(bb2))
                bb2 = 0;
            float e = f_exp(-h);
            if (cfg_pp) {
                for (size_t k = 0; k < n; k++) {
                    float xx = x[k] + (den[k] - un[k]);
                    x[k] = e * xx + h * (bb1 * un[k] + bb2 * old[k]);
                }
            } else {
                for (size_t k = 0; k < n; k++)
                    x[k] = e * x[k] + h * (bb1 * den[k] + bb2 * old[k]);
            }
        }
        if (b > 0 && su != 0) {
            draw_noise(s, a, b, nz);
            for (size_t k = 0; k < n; k++)
                x[k] = x[k] + (nz[k] * sn_f) * su;
        }
        memcpy(old, cfg_pp ? un : den, n * sizeof(float));
        has_old = true;
        old_sd = sd;
    }
    return 0;
}

/* gradient_estimation (ge_gamma 2) (+ cfg_pp) */
static int s_gradient_estimation(smp *s, const float *sig, int ns, float *x, float *const *w,
                                 bool cfg_pp)
{
    float *den = w[0], *d = w[1], *old_d = w[2];
    const float *un = s->uncond;
    size_t n = s->n;
    const float ge_gamma = 2.0f;
    for (int i = 0; i < ns - 1; i++) {
        float a = sig[i], b = sig[i + 1];
        CHECK(model_call(s, x, a, den));
        to_d(x, cfg_pp ? un : den, a, d, n);
        CHECK(step_cb(s, i, x, den));
        float dt = b - a;
        if (b == 0) {
            memcpy(x, den, n * sizeof(float));
        } else {
            if (cfg_pp)
                for (size_t k = 0; k < n; k++)
                    x[k] = den[k] + d[k] * b;
            else
                for (size_t k = 0; k < n; k++)
                    x[k] = x[k] + d[k] * dt;
            if (i >= 1)
                for (size_t k = 0; k < n; k++)
                    x[k] = x[k] + ((ge_gamma - 1.0f) * (d[k] - old_d[k])) * dt;
        }
        memcpy(old_d, d, n * sizeof(float));
    }
    return 0;
}

/* er_sde (max_stage 3) */
static float er_noise_scaler(float v)
{
    return v * (f_exp(powf(v, 0.3f)) + 10.0f);
}

static int s_er_sde(smp *s, float *sig, int ns, float *x, float *const *w)
{
    float *den = w[0], *old = w[1], *dd = w[2], *old_dd = w[3], *nz = w[4];
    size_t n = s->n;
    float sn_f = (float)s->s_noise;
    float *lam = vkf_malloc((size_t)ns * sizeof(float));
    if (!lam)
        return VKF_ENOMEM;
    offset_first_sigma(s, sig, ns);
    for (int i = 0; i < ns; i++)
        lam[i] = f_exp(-lambda_of(s, sig[i]));
    const int max_stage = 3;
    int rc = 0;
    for (int i = 0; i < ns - 1; i++) {
        float a = sig[i], b = sig[i + 1];
        if ((rc = model_call(s, x, a, den)) || (rc = step_cb(s, i, x, den)))
            break;
        int stage = i + 1 < max_stage ? i + 1 : max_stage;
        if (b == 0) {
            memcpy(x, den, n * sizeof(float));
        } else {
            float ls = lam[i], lt = lam[i + 1];
            float alpha_s = a / ls, alpha_t = b / lt;
            float r_alpha = alpha_t / alpha_s;
            float r = er_noise_scaler(lt) / er_noise_scaler(ls);
            float c1 = r_alpha * r, c2 = alpha_t * (1.0f - r);
            for (size_t k = 0; k < n; k++)
                x[k] = c1 * x[k] + c2 * den[k];
            if (stage >= 2) {
                float dt = lt - ls;
                float step = -dt / 200.0f;
                double s1 = 0, s2 = 0;
                for (int q = 0; q < 200; q++) {
                    float pos = lt + (float)q * step;
                    float sp = er_noise_scaler(pos);
                    s1 += (double)(1.0f / sp);
                    s2 += (double)((pos - ls) / sp);
                }
                float sum1 = (float)s1 * step;
                float nst = er_noise_scaler(lt);
                float dl = ls - lam[i - 1];
                float cc = alpha_t * (dt + sum1 * nst);
                for (size_t k = 0; k < n; k++) {
                    dd[k] = (den[k] - old[k]) / dl;
                    x[k] = x[k] + cc * dd[k];
                }
                if (stage >= 3) {
                    float su = (float)s2 * step;
                    float dl2 = (ls - lam[i - 2]) / 2.0f;
                    float cu = alpha_t * ((dt * dt) / 2.0f + su * nst);
                    for (size_t k = 0; k < n; k++)
                        x[k] = x[k] + cu * ((dd[k] - old_dd[k]) / dl2);
                }
                memcpy(old_dd, dd, n * sizeof(float));
            }
            if (s->s_noise > 0) {
                draw_noise(s, a, b, nz);
                float sd = sqrtf(lt * lt - ls * ls * (r * r));
                if (isnan(sd))
                    sd = 0;
                for (size_t k = 0; k < n; k++)
                    x[k] = x[k] + ((alpha_t * nz[k]) * sn_f) * sd;
            }
        }
        memcpy(old, den, n * sizeof(float));
    }
    vkf_free(lam);
    return rc;
}

/* seeds_2 / exp_heun_2_x0(_sde) (phi_1 or phi_2), seeds_3 */
static float ei_phi1(float h) { return expm1f(h); }
static float ei_phi2(float h) { return (expm1f(h) - h) / h; }

static int s_seeds_2(smp *s, float *sig, int ns, float *x, float *const *w, double eta,
                     double s_noise, double r, bool phi2)
{
    float *den = w[0], *x2 = w[1], *den2 = w[2], *nz = w[3], *sde = w[4];
    size_t n = s->n;
    bool inject = eta > 0 && s_noise > 0;
    float feta = (float)eta, fsn = (float)s_noise, fr = (float)r;
    float fac = (float)(1.0 / (2.0 * r));
    offset_first_sigma(s, sig, ns);
    for (int i = 0; i < ns - 1; i++) {
        float a = sig[i], b = sig[i + 1];
        CHECK(model_call(s, x, a, den));
        CHECK(step_cb(s, i, x, den));
        if (b == 0) {
            memcpy(x, den, n * sizeof(float));
            continue;
        }
        float ls = lambda_of(s, a), lt = lambda_of(s, b);
        float h = lt - ls;
        float h_eta = h * (float)(eta + 1.0);
        float ls1 = f_lerp(ls, lt, fr);
        float s1 = sigma_of(s, ls1);
        float alpha_s1 = s1 * f_exp(ls1), alpha_t = b * f_exp(lt);
        float c1 = s1 / a * f_exp((float)(-r) * h * feta);
        float c2 = alpha_s1 * ei_phi1((float)(-r) * h_eta);
        for (size_t k = 0; k < n; k++)
            x2[k] = c1 * x[k] - c2 * den[k];
        if (inject) {
            draw_noise(s, a, s1, nz);
            float q = sqrtf(-expm1f((float)(-2.0 * r) * h * feta));
            for (size_t k = 0; k < n; k++) {
                sde[k] = q * nz[k];
                x2[k] = x2[k] + (sde[k] * s1) * fsn;
            }
        }
        CHECK(model_call(s, x2, s1, den2));
        float cx = b / a * f_exp(-h * feta);
        if (!phi2) {
            float c = alpha_t * ei_phi1(-h_eta);
            for (size_t k = 0; k < n; k++) {
                float ddk = f_lerp(den[k], den2[k], fac);
                x[k] = cx * x[k] - c * ddk;
            }
        } else {
            float bb2 = ei_phi2(-h_eta) / fr;
            float bb1 = ei_phi1(-h_eta) - bb2;
            for (size_t k = 0; k < n; k++)
                x[k] = cx * x[k] - alpha_t * (bb1 * den[k] + bb2 * den2[k]);
        }
        if (inject) {
            float seg = (float)(r - 1.0) * h * feta;
            float es = f_exp(seg), q = sqrtf(-expm1f(seg * 2.0f));
            draw_noise(s, s1, b, nz);
            for (size_t k = 0; k < n; k++) {
                float v = sde[k] * es;
                v = v + q * nz[k];
                x[k] = x[k] + (v * b) * fsn;
            }
        }
    }
    return 0;
}

static int s_seeds_3(smp *s, float *sig, int ns, float *x, float *const *w)
{
    float *den = w[0], *x2 = w[1], *den2 = w[2], *nz = w[3], *sde = w[4], *den3 = w[5];
    size_t n = s->n;
    double eta = s->eta, s_noise = s->s_noise;
    const double r1 = 1.0 / 3, r2 = 2.0 / 3;
    bool inject = eta > 0 && s_noise > 0;
    float feta = (float)eta, fsn = (float)s_noise;
    offset_first_sigma(s, sig, ns);
    for (int i = 0; i < ns - 1; i++) {
        float a = sig[i], b = sig[i + 1];
        CHECK(model_call(s, x, a, den));
        CHECK(step_cb(s, i, x, den));
        if (b == 0) {
            memcpy(x, den, n * sizeof(float));
            continue;
        }
        float ls = lambda_of(s, a), lt = lambda_of(s, b);
        float h = lt - ls;
        float h_eta = h * (float)(eta + 1.0);
        float ls1 = f_lerp(ls, lt, (float)r1), ls2 = f_lerp(ls, lt, (float)r2);
        float s1 = sigma_of(s, ls1), s2 = sigma_of(s, ls2);
        float alpha_s1 = s1 * f_exp(ls1), alpha_s2 = s2 * f_exp(ls2), alpha_t = b * f_exp(lt);
        /* step 1 */
        float c1 = s1 / a * f_exp((float)(-r1) * h * feta);
        float c2 = alpha_s1 * ei_phi1((float)(-r1) * h_eta);
        for (size_t k = 0; k < n; k++)
            x2[k] = c1 * x[k] - c2 * den[k];
        if (inject) {
            draw_noise(s, a, s1, nz);
            float q = sqrtf(-expm1f((float)(-2.0 * r1) * h * feta));
            for (size_t k = 0; k < n; k++) {
                sde[k] = q * nz[k];
                x2[k] = x2[k] + (sde[k] * s1) * fsn;
            }
        }
        CHECK(model_call(s, x2, s1, den2));
        /* step 2 */
        float a32 = (float)(r2 / r1) * ei_phi2((float)(-r2) * h_eta);
        float a31 = ei_phi1((float)(-r2) * h_eta) - a32;
        float c3 = s2 / a * f_exp((float)(-r2) * h * feta);
        for (size_t k = 0; k < n; k++)
            x2[k] = c3 * x[k] - alpha_s2 * (a31 * den[k] + a32 * den2[k]);
        if (inject) {
            float seg = (float)(r1 - r2) * h * feta;
            float es = f_exp(seg), q = sqrtf(-expm1f(seg * 2.0f));
            draw_noise(s, s1, s2, nz);
            for (size_t k = 0; k < n; k++) {
                sde[k] = sde[k] * es;
                sde[k] = sde[k] + q * nz[k];
                x2[k] = x2[k] + (sde[k] * s2) * fsn;
            }
        }
        CHECK(model_call(s, x2, s2, den3));
        /* step 3 */
        float bb3 = ei_phi2(-h_eta) / (float)r2;
        float bb1 = ei_phi1(-h_eta) - bb3;
        float cx = b / a * f_exp(-h * feta);
        for (size_t k = 0; k < n; k++)
            x[k] = cx * x[k] - alpha_t * (bb1 * den[k] + bb3 * den3[k]);
        if (inject) {
            float seg = (float)(r2 - 1.0) * h * feta;
            float es = f_exp(seg), q = sqrtf(-expm1f(seg * 2.0f));
            draw_noise(s, s2, b, nz);
            for (size_t k = 0; k < n; k++) {
                float v = sde[k] * es;
                v = v + q * nz[k];
                x[k] = x[k] + (v * b) * fsn;
            }
        }
    }
    return 0;
}

/* ---- deis (comfy/k_diffusion/deis.py, 'tab' mode, max_order 3) ---------- */

#define DEIS_N 10000

/* edm2t: the VP time of each sigma; beta_0, beta_1 of the VP schedule */
static void deis_edm2t(const float *sig, int ns, float *t, float *beta_0, float *beta_1)
{
    const float eps_s = 1e-3f;
    float smin = 0.002f, smax = 80.0f;
    float lmin = logf(smin * smin + 1.0f), lmax = logf(smax * smax + 1.0f);
    float bd = 2.0f * (lmin / eps_s - lmax) / (float)(1e-3 - 1.0);
    float bmin = lmax - 0.5f * bd;
    for (int i = 0; i < ns; i++) {
        float v = sqrtf(bmin * bmin + (2.0f * bd) * logf(sig[i] * sig[i] + 1.0f));
        t[i] = (v - bmin) / bd;
    }
    *beta_0 = bmin;
    *beta_1 = bd + bmin;
}

/* coefficients of step i (order 2..4) into c[0..order-1] */
static int deis_coeffs(const float *t, int i, int order, float b0, float b1, float *c)
{
    float *taus = vkf_malloc(DEIS_N * sizeof(float));
    if (!taus)
        return VKF_ENOMEM;
    torch_linspace_f32(t[i], t[i + 1], DEIS_N, taus);
    float dtau = (t[i + 1] - t[i]) / (float)DEIS_N;
    float prev[4];
    for (int k = 0; k < order; k++)
        prev[k] = t[i - k];
    float db = b1 - b0;
    double sum[4] = {0, 0, 0, 0};
    for (int q = 0; q < DEIS_N; q++) {
        float tau = taus[q];
        float u = ((-0.5f * (tau * tau)) * db) - tau * b0;
        float alpha = f_exp(u);
        /* d log(alpha)/dτ as autograd computes it */
        float gu = (1.0f / alpha) * alpha;
        float gt2 = (gu * db) * -0.5f;
        float g = gt2 * (2.0f * tau) + (-gu) * b0;
        float integrand = (-0.5f * g) / sqrtf(alpha * (1.0f - alpha));
        for (int j = 0; j < order; j++) {
            float poly = 1.0f;
            for (int k = 0; k < order; k++) {
                if (k == j)
                    continue;
                poly = poly * ((tau - prev[k]) / (prev[j] - prev[k]));
            }
            sum[j] += (double)(integrand * poly);
        }
    }
    for (int j = 0; j < order; j++)
        c[j] = (float)sum[j] * dtau;
    vkf_free(taus);
    return 0;
}

static int s_deis(smp *s, const float *sig, int ns, float *x, float *const *w)
{
    float *den = w[0], *dc = w[1];
    float *buf[3] = {w[2], w[3], w[4]};
    const int max_order = 3;
    int nb = 0;
    size_t n = s->n;
    float *t = vkf_malloc((size_t)ns * sizeof(float));
    if (!t)
        return VKF_ENOMEM;
    float b0, b1;
    deis_edm2t(sig, ns, t, &b0, &b1);
    int rc = 0;
    for (int i = 0; i < ns - 1; i++) {
        float tc = sig[i], tn = sig[i + 1];
        if ((rc = model_call(s, x, tc, den)) || (rc = step_cb(s, i, x, den)))
            break;
        to_d(x, den, tc, dc, n);
        int order = i + 1 < max_order ? i + 1 : max_order;
        if (tn <= 0)
            order = 1;
        if (order == 1) {
            float dt = tn - tc;
            for (size_t k = 0; k < n; k++)
                x[k] = x[k] + dt * dc[k];
        } else {
            float c[4];
            if ((rc = deis_coeffs(t, i, i + 1 < max_order ? i + 1 : max_order, b0, b1, c)))
                break;
            for (size_t k = 0; k < n; k++) {
                float v = x[k] + c[0] * dc[k];
                v = v + c[1] * buf[nb - 1][k];
                if (order >= 3)
                    v = v + c[2] * buf[nb - 2][k];
                x[k] = v;
            }
        }
        if (nb == max_order - 1) {
            float *oldest = buf[0];
            for (int k = 0; k < max_order - 2; k++)
                buf[k] = buf[k + 1];
            buf[max_order - 2] = oldest;
            memcpy(oldest, dc, n * sizeof(float));
        } else {
            memcpy(buf[nb++], dc, n * sizeof(float));
        }
    }
    vkf_free(t);
    return rc;
}

/* ---- sa_solver, sa_solver_pece (comfy/k_diffusion/sa_solver.py) -------- */

/* compute_exponential_coeffs: (1 + τ²)·∫ exp((1 + τ²)x)·x^p dx over [s, t]
 * with exp((1 + τ²)t) factored out, p = 0 .. order−1 */
static void sa_exp_coeffs(float s, float t, int order, double tau, float *out)
{
    double tau_mul = 1.0 + tau * tau;
    float h = t - s;
    float e = f_exp((float)(-tau_mul) * h);
    float prod[4], lf[4];
    for (int p = 0; p < order; p++) {
        float tp = p == 0 ? 1.0f : (p == 1 ? t : powf(t, (float)p));
        float sp = p == 0 ? 1.0f : (p == 1 ? s : powf(s, (float)p));
        prod[p] = tp - sp * e;
        lf[p] = lgammaf((float)p + 1.0f);
    }
    float lt = (float)log(tau_mul);
    for (int i = 0; i < order; i++) {
        float acc = 0.0f;
        for (int j = 0; j <= i; j++) {
            float c = lf[i] - lf[j];
            if (tau > 0)
                c = c - (float)(i - j) * lt;
            float m = f_exp(c) * ((i - j) % 2 == 0 ? 1.0f : -1.0f);
            acc = j == 0 ? m * prod[j] : acc + m * prod[j];
        }
        out[i] = acc;
    }
}

/* compute_stochastic_adams_b_coeffs (simple_order_2 off) */
static void sa_b_coeffs(float sigma_next, const float *lams, int nl, float ls, float lt,
                        double tau, float *b)
{
    float ec[4], vt[16], li[4];
    sa_exp_coeffs(ls, lt, nl, tau, ec);
    /* vander(lams, increasing).T: row i holds λ_j^i */
    for (int i = 0; i < nl; i++)
        for (int j = 0; j < nl; j++) {
            float v = 1.0f;
            for (int k = 0; k < i; k++)
                v = v * lams[j];
            vt[i * 4 + j] = v;
        }
    /* solve in double (torch: float32 LU) */
    double m[4][5];
    for (int i = 0; i < nl; i++) {
        for (int j = 0; j < nl; j++)
            m[i][j] = vt[i * 4 + j];
        m[i][nl] = ec[i];
    }
    for (int c = 0; c < nl; c++) {
        int p = c;
        for (int r = c + 1; r < nl; r++)
            if (fabs(m[r][c]) > fabs(m[p][c]))
                p = r;
        for (int j = 0; j <= nl; j++) {
            double t = m[c][j];
            m[c][j] = m[p][j];
            m[p][j] = t;
        }
        for (int r = c + 1; r < nl; r++) {
            double f = m[r][c] / m[c][c];
            for (int j = c; j <= nl; j++)
                m[r][j] -= f * m[c][j];
        }
    }
    for (int i = nl - 1; i >= 0; i--) {
        double v = m[i][nl];
        for (int j = i + 1; j < nl; j++)
            v -= m[i][j] * li[j];
        li[i] = (float)(v / m[i][i]);
    }
    float alpha_t = sigma_next * f_exp(lt);
    for (int i = 0; i < nl; i++)
        b[i] = alpha_t * li[i];
}

static int s_sa_solver(smp *s, float *sig, int ns, float *x, bool pece)
{
    size_t n = s->n;
    const int pred_order = 3, corr_order = 4, max_used = 4;
    float *mem = vkf_malloc((size_t)(max_used + 3) * n * sizeof(float) + (size_t)ns * sizeof(float));
    if (!mem)
        return VKF_ENOMEM;
    float *pl[4];
    for (int i = 0; i < 4; i++)
        pl[i] = mem + (size_t)i * n;
    float *xp = mem + 4 * n, *noise = mem + 5 * n, *nz = mem + 6 * n;
    float *lam = mem + 7 * n;
    offset_first_sigma(s, sig, ns);
    for (int i = 0; i < ns; i++)
        lam[i] = lambda_of(s, sig[i]);
    /* tau_func: eta 1 between percent_to_sigma(0.2) and percent_to_sigma(0.8) */
    double start_sigma = 0, end_sigma = 0;
    if (s->p->ms) {
        start_sigma = vkf_model_sampling_percent_to_sigma(s->p->ms, 0.2);
        end_sigma = vkf_model_sampling_percent_to_sigma(s->p->ms, 0.8);
    }
    float sn_f = (float)s->s_noise;
    memcpy(xp, x, n * sizeof(float));
    float h = 0.0f;
    double tau_t = 0.0;
    bool has_noise = false;
    int npl = 0;   /* entries in pl, oldest first */
    bool lower_to_end = sig[ns - 1] == 0;
    int rc = 0;
    for (int i = 0; i < ns - 1; i++) {
        /* evaluation, into a fresh slot (the oldest beyond max_used) */
        float *slot;
        if (npl == max_used) {
            slot = pl[0];
            for (int k = 0; k < max_used - 1; k++)
                pl[k] = pl[k + 1];
            pl[max_used - 1] = slot;
        } else {
            slot = pl[npl++];
        }
        if ((rc = model_call(s, xp, sig[i], slot)) || (rc = step_cb(s, i, xp, slot)))
            break;
        int pou = pred_order < npl ? pred_order : npl;
        int cou = (i == 0 || (sig[i + 1] == 0 && !pece)) ? 0 : (corr_order < npl ? corr_order : npl);
        if (lower_to_end) {
            if (pou > ns - 2 - i)
                pou = ns - 2 - i;
            if (cou > ns - 1 - i)
                cou = ns - 1 - i;
        }
        /* corrector */
        if (cou == 0) {
            memcpy(x, xp, n * sizeof(float));
        } else {
            float b[4];
            sa_b_coeffs(sig[i], lam + i - cou + 1, cou, lam[i - 1], lam[i], tau_t, b);
            float c = sig[i] / sig[i - 1] * f_exp((float)(-(tau_t * tau_t)) * h);
            const float *const *pm = (const float *const *)(pl + npl - cou);
            for (size_t k = 0; k < n; k++) {
                float acc = pm[0][k] * b[0];
                for (int q = 1; q < cou; q++)
                    acc = acc + pm[q][k] * b[q];
                x[k] = c * x[k] + acc;
            }
            if (tau_t > 0 && s->s_noise > 0 && has_noise)
                for (size_t k = 0; k < n; k++)
                    x[k] = x[k] + noise[k];
            if (pece && (rc = model_call(s, x, sig[i], pl[npl - 1])))
                break;
        }
        /* predictor */
        if (sig[i + 1] == 0) {
            memcpy(xp, pl[npl - 1], n * sizeof(float));
        } else {
            double sv = sig[i + 1];
            tau_t = (start_sigma >= sv && sv > end_sigma) ? 1.0 : 0.0;
            float b[4];
            sa_b_coeffs(sig[i + 1], lam + i - pou + 1, pou, lam[i], lam[i + 1], tau_t, b);
            const float *const *pm = (const float *const *)(pl + npl - pou);
            h = lam[i + 1] - lam[i];
            float c = sig[i + 1] / sig[i] * f_exp((float)(-(tau_t * tau_t)) * h);
            for (size_t k = 0; k < n; k++) {
                float acc = pm[0][k] * b[0];
                for (int q = 1; q < pou; q++)
                    acc = acc + pm[q][k] * b[q];
                xp[k] = c * x[k] + acc;
            }
            if (tau_t > 0 && s->s_noise > 0) {
                draw_noise(s, sig[i], sig[i + 1], nz);
                float q = sqrtf(-expm1f((float)(-2.0 * tau_t * tau_t) * h));
                for (size_t k = 0; k < n; k++) {
                    noise[k] = ((nz[k] * sig[i + 1]) * q) * sn_f;
                    xp[k] = xp[k] + noise[k];
                }
                has_noise = true;
            }
        }
    }
    if (!rc)
        memcpy(x, xp, n * sizeof(float));
    vkf_free(mem);
    return rc;
}

/* ---- uni_pc, uni_pc_bh2 (comfy/extra_samplers/uni_pc.py) ---------------- */

/* SigmaConvert: the VP view of a VE sigma */
static float uc_mlmc(float sg) { return 0.5f * logf(1.0f / (sg * sg + 1.0f)); }
static float uc_alpha(float sg) { return f_exp(uc_mlmc(sg)); }
static float uc_std(float sg) { return sqrtf(1.0f - f_exp(2.0f * uc_mlmc(sg))); }
static float uc_lambda(float sg)
{
    float m = uc_mlmc(sg);
    return m - 0.5f * logf(1.0f - f_exp(2.0f * m));
}

/* Solves the k×k system a·x = b (k <= 3) in double, partial pivoting. */
static void solve_small(int k, const float *a, const float *b, float *x)
{
    double m[3][4];
    for (int i = 0; i < k; i++) {
        for (int j = 0; j < k; j++)
            m[i][j] = a[i * 3 + j];
        m[i][k] = b[i];
    }
    for (int c = 0; c < k; c++) {
        int p = c;
        for (int r = c + 1; r < k; r++)
            if (fabs(m[r][c]) > fabs(m[p][c]))
                p = r;
        for (int j = 0; j <= k; j++) {
            double t = m[c][j];
            m[c][j] = m[p][j];
            m[p][j] = t;
        }
        for (int r = c + 1; r < k; r++) {
            double f = m[r][c] / m[c][c];
            for (int j = c; j <= k; j++)
                m[r][j] -= f * m[c][j];
        }
    }
    for (int i = k - 1; i >= 0; i--) {
        double v = m[i][k];
        for (int j = i + 1; j < k; j++)
            v -= m[i][j] * x[j];
        x[i] = (float)(v / m[i][i]);
    }
}

typedef struct unipc {
    smp *s;
    bool bh2;
    float *inp, *den, *xt_, *d1[2];
    float *m[3];       /* model_prev_list, oldest first */
    float tl[3];       /* t_prev_list */
    int nl;
    float *mt;         /* model_t of the last update */
} unipc;

/* data_prediction_fn of the noise model built from D (predict_eps_sigma) */
static int uc_model(unipc *u, const float *x, float t, float *out)
{
    size_t n = u->s->n;
    float sc = sqrtf(t * t + 1.0f);
    for (size_t k = 0; k < n; k++)
        u->inp[k] = x[k] * sc;
    CHECK(model_call(u->s, u->inp, t, u->den));
    float sd = uc_std(t), al = uc_alpha(t);
    for (size_t k = 0; k < n; k++) {
        float eps = (u->inp[k] - u->den[k]) / t;
        out[k] = (x[k] - sd * eps) / al;
    }
    return 0;
}

/* multistep_uni_pc_bh_update; *has_mt tells whether u->mt was computed */
static int uc_update(unipc *u, float *x, float t, int order, bool use_corrector, bool *has_mt)
{
    size_t n = u->s->n;
    float tp0 = u->tl[u->nl - 1];
    const float *mp0 = u->m[u->nl - 1];
    float lp0 = uc_lambda(tp0), lt = uc_lambda(t);
    float sp0 = uc_std(tp0), st = uc_std(t);
    float alpha_t = f_exp(uc_mlmc(t));
    float h = lt - lp0;
    float rks[3];
    int nd = order - 1;
    for (int i = 1; i < order; i++) {
        float rk = (uc_lambda(u->tl[u->nl - 1 - i]) - lp0) / h;
        rks[i - 1] = rk;
        const float *mi = u->m[u->nl - 1 - i];
        for (size_t k = 0; k < n; k++)
            u->d1[i - 1][k] = (mi[k] - mp0[k]) / rk;
    }
    rks[order - 1] = 1.0f;
    float hh = -h;
    float h_phi_1 = expm1f(hh);
    float B_h = u->bh2 ? expm1f(hh) : hh;
    /* b in float64 as ComfyUI computes it (near-cancelling recurrence) */
    double hh64 = hh, hpk = expm1(hh64) / hh64 - 1.0, B64 = u->bh2 ? expm1(hh64) : hh64;
    double fact = 1;
    float b[3], R[9];
    for (int i = 1; i <= order; i++) {
        for (int j = 0; j < order; j++)
            R[(i - 1) * 3 + j] = i == 1 ? 1.0f : (i == 2 ? rks[j] : rks[j] * rks[j]);
        b[i - 1] = (float)(hpk * fact / B64);
        fact *= (i + 1);
        hpk = hpk / hh64 - 1.0 / fact;
    }
    float rp[3] = {0}, rc[3] = {0};
    if (nd > 0) {
        if (order == 2)
            rp[0] = 0.5f;
        else
            solve_small(order - 1, R, b, rp);
    }
    if (use_corrector) {
        if (order == 1)
            rc[0] = 0.5f;
        else
            solve_small(order, R, b, rc);
    }
    float c0 = st / sp0, c1 = alpha_t * h_phi_1, cb = alpha_t * B_h;
    for (size_t k = 0; k < n; k++) {
        u->xt_[k] = c0 * x[k] - c1 * mp0[k];
        float pr = 0.0f;
        if (nd > 0) {
            pr = u->d1[0][k] * rp[0];
            if (nd > 1)
                pr = pr + u->d1[1][k] * rp[1];
        }
        x[k] = nd > 0 ? u->xt_[k] - cb * pr : u->xt_[k];
    }
    *has_mt = false;
    if (use_corrector) {
        CHECK(uc_model(u, x, t, u->mt));
        *has_mt = true;
        float rlast = rc[order - 1];
        for (size_t k = 0; k < n; k++) {
            float cr = 0.0f;
            if (nd > 0) {
                cr = u->d1[0][k] * rc[0];
                if (nd > 1)
                    cr = cr + u->d1[1][k] * rc[1];
            }
            float d1t = u->mt[k] - mp0[k];
            x[k] = u->xt_[k] - cb * (cr + rlast * d1t);
        }
    }
    return 0;
}

static int s_uni_pc(smp *s, float *sig, int ns, float *x, bool bh2)
{
    size_t n = s->n;
    float *mem = vkf_malloc(10 * n * sizeof(float));
    if (!mem)
        return VKF_ENOMEM;
    unipc u = {.s = s, .bh2 = bh2};
    u.inp = mem;
    u.den = mem + n;
    u.xt_ = mem + 2 * n;
    u.d1[0] = mem + 3 * n;
    u.d1[1] = mem + 4 * n;
    for (int i = 0; i < 3; i++)
        u.m[i] = mem + (5 + (size_t)i) * n;
    u.mt = mem + 8 * n;
    float *spare = mem + 9 * n;
    if (sig[ns - 1] == 0)
        sig[ns - 1] = 0.001f;
    float sc = sqrtf(1.0f + sig[0] * sig[0]);
    for (size_t k = 0; k < n; k++)
        x[k] = x[k] / sc;
    int steps = ns - 1;
    int order = ns - 2 < 3 ? ns - 2 : 3;
    int rc = 0;
    for (int si = 0; si < steps && !rc; si++) {
        bool has_mt;
        if (si == 0) {
            rc = uc_model(&u, x, sig[0], u.m[0]);
            u.tl[0] = sig[0];
            u.nl = 1;
        } else if (si < order) {
            float t = sig[si];
            if ((rc = uc_update(&u, x, t, si, true, &has_mt)))
                break;
            float *slot = u.m[u.nl];
            if (has_mt)
                memcpy(slot, u.mt, n * sizeof(float));
            else if ((rc = uc_model(&u, x, t, slot)))
                break;
            u.tl[u.nl++] = t;
        } else {
            int extra = si == steps - 1 ? 1 : 0;
            for (int st = si; st <= si + extra && !rc; st++) {
                float t = sig[st];
                int so = order < steps + 1 - st ? order : steps + 1 - st;
                bool corr = st != steps;
                if ((rc = uc_update(&u, x, t, so, corr, &has_mt)))
                    break;
                /* shift the lists; the oldest buffer is reused */
                float *old = u.m[0];
                for (int i = 0; i < order - 1; i++) {
                    u.tl[i] = u.tl[i + 1];
                    u.m[i] = u.m[i + 1];
                }
                u.m[order - 1] = old;
                u.tl[order - 1] = t;
                if (st < steps) {
                    if (has_mt)
                        memcpy(u.m[order - 1], u.mt, n * sizeof(float));
                    else if ((rc = uc_model(&u, x, t, u.m[order - 1])))
                        break;
                } else {
                    /* model_prev_list[-1] keeps the shifted-in entry */
                    memcpy(spare, u.m[order - 2 >= 0 ? order - 2 : 0], n * sizeof(float));
                    memcpy(u.m[order - 1], spare, n * sizeof(float));
                }
            }
        }
        if (!rc)
            rc = step_cb(s, si, x, u.m[u.nl > 0 ? (si < order ? u.nl - 1 : order - 1) : 0]);
    }
    if (!rc) {
        float al = uc_alpha(sig[ns - 1]);
        for (size_t k = 0; k < n; k++)
            x[k] = x[k] / al;
    }
    vkf_free(mem);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* dispatch                                                                  */

static bool is(const char *a, const char *b) { return strcmp(a, b) == 0; }

static bool needs_uncond(const char *name)
{
    size_t l = strlen(name);
    return l > 7 && strcmp(name + l - 7, "_cfg_pp") == 0;
}

static bool uses_tree(const char *name)
{
    return strncmp(name, "dpmpp_sde", 9) == 0 || strncmp(name, "dpmpp_2m_sde", 12) == 0 ||
           strncmp(name, "dpmpp_3m_sde", 12) == 0;
}

int vkf_sample(const vkf_sample_params *p, const vkf_denoiser *model, const float *sigmas,
               int n_sigmas, float *x, const vkf_log *log)
{
    if (!p || !model || !model->denoise || !x || n_sigmas < 0 || (n_sigmas > 0 && !sigmas))
        return VKF_EINVAL;
    const char *name = p->sampler ? p->sampler : "";
    if (!vkf_sampler_exists(name)) {
        vkf_logf(log, VKF_LOG_ERROR, "unknown sampler \"%s\"", name);
        return VKF_ENOTFOUND;
    }
    if (n_sigmas <= 1 || p->n == 0)
        return 0;

    smp s = {0};
    s.p = p;
    s.model = model;
    s.log = log;
    s.n = p->n;
    s.total = n_sigmas - 1;
    s.flow = p->ms && p->ms->prediction == VKF_PREDICTION_FLOW;
    s.eta = 1.0;
    s.s_noise = 1.0;
    s.r = 0.5;
    if (p->has_params) {
        s.eta = p->eta;
        s.s_noise = p->s_noise;
        s.r = p->r;
    }
    /* default_noise_sampler: a CPU generator seeded with seed + 1 */
    vkf_torch_rng_seed(&s.rng, p->seed + 1);
    s.want_uncond = needs_uncond(name);

    size_t n = p->n;
    enum { NBUF = 8 };
    float *mem = vkf_malloc((NBUF + 1) * n * sizeof(float) + (size_t)n_sigmas * sizeof(float));
    if (!mem)
        return VKF_ENOMEM;
    float *w[NBUF];
    for (int i = 0; i < NBUF; i++)
        w[i] = mem + (size_t)i * n;
    s.uncond = mem + (size_t)NBUF * n;
    float *sig = s.uncond + n;
    memcpy(sig, sigmas, (size_t)n_sigmas * sizeof(float));
    int rc = 0;

    if (uses_tree(name)) {
        /* BrownianTreeNoiseSampler(x, sigma_min, sigma_max, seed) */
        float smin = INFINITY, smax = -INFINITY;
        for (int i = 0; i < n_sigmas; i++) {
            if (sig[i] > 0 && sig[i] < smin)
                smin = sig[i];
            if (sig[i] > smax)
                smax = sig[i];
        }
        if (!(smin < INFINITY)) {
            vkf_free(mem);
            return 0;   /* no positive sigma: nothing to sample (x returned) */
        }
        rc = bt_create(smin, smax, p->seed, n, p->kernel, &s.tree);
        if (rc) {
            vkf_free(mem);
            return rc;
        }
        s.use_tree = true;
    }

    if (is(name, "euler") || is(name, "ddim"))
        rc = s_euler(&s, sig, n_sigmas, x, w);
    else if (is(name, "euler_cfg_pp")) {
        s.eta = 0;
        s.s_noise = 0;
        rc = s_euler_ancestral_cfg_pp(&s, sig, n_sigmas, x, w);
    } else if (is(name, "euler_ancestral"))
        rc = s_euler_ancestral(&s, sig, n_sigmas, x, w);
    else if (is(name, "euler_ancestral_cfg_pp"))
        rc = s_euler_ancestral_cfg_pp(&s, sig, n_sigmas, x, w);
    else if (is(name, "heun"))
        rc = s_heun(&s, sig, n_sigmas, x, w);
    else if (is(name, "heunpp2"))
        rc = s_heunpp2(&s, sig, n_sigmas, x, w);
    else if (is(name, "exp_heun_2_x0"))
        rc = s_seeds_2(&s, sig, n_sigmas, x, w, 0.0, 0.0, 1.0, true);
    else if (is(name, "exp_heun_2_x0_sde"))
        rc = s_seeds_2(&s, sig, n_sigmas, x, w, s.eta, s.s_noise, 1.0, true);
    else if (is(name, "dpm_2"))
        rc = s_dpm_2(&s, sig, n_sigmas, x, w);
    else if (is(name, "dpm_2_ancestral"))
        rc = s_dpm_2_ancestral(&s, sig, n_sigmas, x, w);
    else if (is(name, "lms"))
        rc = s_lms(&s, sig, n_sigmas, x, w);
    else if (is(name, "dpm_fast")) {
        if (!p->has_params)
            s.eta = 0;   /* sample_dpm_fast's default */
        rc = s_dpm_fast(&s, sig, n_sigmas, x, w);
    } else if (is(name, "dpm_adaptive"))
        rc = s_dpm_adaptive(&s, sig, n_sigmas, x, w);
    else if (is(name, "dpmpp_2s_ancestral"))
        rc = s_dpmpp_2s_ancestral(&s, sig, n_sigmas, x, w, false);
    else if (is(name, "dpmpp_2s_ancestral_cfg_pp"))
        rc = s_dpmpp_2s_ancestral(&s, sig, n_sigmas, x, w, true);
    else if (is(name, "dpmpp_sde") || is(name, "dpmpp_sde_gpu")) {
        offset_first_sigma(&s, sig, n_sigmas);
        rc = s_dpmpp_sde(&s, sig, n_sigmas, x, w);
    } else if (is(name, "dpmpp_2m"))
        rc = s_dpmpp_2m(&s, sig, n_sigmas, x, w);
    else if (is(name, "dpmpp_2m_cfg_pp"))
        rc = s_dpmpp_2m_cfg_pp(&s, sig, n_sigmas, x, w);
    else if (is(name, "dpmpp_2m_sde") || is(name, "dpmpp_2m_sde_gpu") ||
             is(name, "dpmpp_2m_sde_heun") || is(name, "dpmpp_2m_sde_heun_gpu")) {
        bool heun = strstr(name, "heun") != NULL;
        if (p->has_params && p->solver_type && p->solver_type[0]) {
            if (is(p->solver_type, "heun"))
                heun = true;
            else if (is(p->solver_type, "midpoint"))
                heun = false;
            else {
                vkf_logf(log, VKF_LOG_ERROR, "solver_type must be 'heun' or 'midpoint'");
                rc = VKF_EINVAL;
            }
        }
        if (!rc) {
            offset_first_sigma(&s, sig, n_sigmas);
            rc = s_dpmpp_2m_sde(&s, sig, n_sigmas, x, w, heun);
        }
    } else if (is(name, "dpmpp_3m_sde") || is(name, "dpmpp_3m_sde_gpu")) {
        offset_first_sigma(&s, sig, n_sigmas);
        rc = s_dpmpp_3m_sde(&s, sig, n_sigmas, x, w);
    } else if (is(name, "ddpm"))
        rc = s_ddpm(&s, sig, n_sigmas, x, w);
    else if (is(name, "lcm"))
        rc = s_lcm(&s, sig, n_sigmas, x, w);
    else if (is(name, "ipndm"))
        rc = s_ipndm(&s, sig, n_sigmas, x, w, false);
    else if (is(name, "ipndm_v"))
        rc = s_ipndm(&s, sig, n_sigmas, x, w, true);
    else if (is(name, "res_multistep"))
        rc = s_res_multistep(&s, sig, n_sigmas, x, w, 0.0, false);
    else if (is(name, "res_multistep_cfg_pp"))
        rc = s_res_multistep(&s, sig, n_sigmas, x, w, 0.0, true);
    else if (is(name, "res_multistep_ancestral"))
        rc = s_res_multistep(&s, sig, n_sigmas, x, w, s.eta, false);
    else if (is(name, "res_multistep_ancestral_cfg_pp"))
        rc = s_res_multistep(&s, sig, n_sigmas, x, w, s.eta, true);
    else if (is(name, "gradient_estimation"))
        rc = s_gradient_estimation(&s, sig, n_sigmas, x, w, false);
    else if (is(name, "gradient_estimation_cfg_pp"))
        rc = s_gradient_estimation(&s, sig, n_sigmas, x, w, true);
    else if (is(name, "er_sde"))
        rc = s_er_sde(&s, sig, n_sigmas, x, w);
    else if (is(name, "seeds_2"))
        rc = s_seeds_2(&s, sig, n_sigmas, x, w, s.eta, s.s_noise, s.r, false);
    else if (is(name, "seeds_3"))
        rc = s_seeds_3(&s, sig, n_sigmas, x, w);
    else if (is(name, "sa_solver") || is(name, "sa_solver_pece"))
        rc = s_sa_solver(&s, sig, n_sigmas, x, is(name, "sa_solver_pece"));
    else if (is(name, "deis"))
        rc = s_deis(&s, sig, n_sigmas, x, w);
    else if (is(name, "uni_pc") || is(name, "uni_pc_bh2"))
        rc = s_uni_pc(&s, sig, n_sigmas, x, is(name, "uni_pc_bh2"));
    else
        rc = VKF_ENOTFOUND;

    if (!rc && s.noise_err)
        rc = s.noise_err;
    bt_destroy(&s.tree);
    vkf_free(mem);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* the Brownian tree, public for tests and other noise users                 */

int vkf_brownian_tree_create(double t0, double t1, uint64_t seed, size_t n,
                             vkf_randn_kernel kernel, vkf_brownian_tree **out)
{
    if (!out || n == 0 || !(t0 != t1) || !isfinite(t0) || !isfinite(t1))
        return VKF_EINVAL;
    return bt_create(t0, t1, seed, n, kernel, out);
}

void vkf_brownian_tree_destroy(vkf_brownian_tree **t)
{
    if (t)
        bt_destroy(t);
}

int vkf_brownian_tree_w(vkf_brownian_tree *t, double tq, float *out)
{
    return bt_eval(t, tq, out);
}

int vkf_brownian_tree_increment(vkf_brownian_tree *t, double ta, double tb, float *out)
{
    if (!(ta <= tb))
        return VKF_EINVAL;
    return bt_increment(t, ta, tb, out);
}

int vkf_brownian_tree_noise(vkf_brownian_tree *t, float sigma, float sigma_next, float *out)
{
    return bt_noise(t, sigma, sigma_next, out);
}
