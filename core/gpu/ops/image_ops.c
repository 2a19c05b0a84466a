/*
 * Ops of ComfyUI's image and mask nodes (shaders/image_ops.comp): blends,
 * mask composites and morphology, separable filters, PIL's Lanczos
 * resampling and the stages of kornia's Canny.  Inputs may be any dtype
 * and view (made contiguous here); outputs are contiguous f32.
 */
#include <math.h>
#include <string.h>

#include "gpu/ops/op_util.h"

struct image_push {
    uint32_t n;
    uint32_t B, H, W, C;
    uint32_t b2, h2, w2, c2;
    int32_t ox, oy;
    uint32_t u0, u1, u2, u3;
    float f0, f1, f2;
    uint32_t off1, off2, off3;
};
_Static_assert(sizeof(struct image_push) <= 128, "push constants");

/* VKF_REQUIRE for functions without a fail label. */
#define REQ(gpu, expr)                                                        \
    do {                                                                      \
        if (!(expr)) {                                                        \
            vkf_logf((gpu)->log, VKF_LOG_ERROR, "%s: requirement failed: %s", \
                     __func__, #expr);                                        \
            return VKF_EINVAL;                                                \
        }                                                                     \
    } while (0)

enum {
    M_BLEND = 0, M_MASKCOMP, M_THRESHOLD, M_FEATHER, M_OUTPAINT, M_GROW, M_EXPAND3,
    M_FILTER, M_LANCZOS, M_GRAY, M_SOBEL, M_NMS, M_FILL,
};

const vkf_shader_layout vkf_image_layouts[] = {
    {&vkf_shader_image_ops, 4, 0, sizeof(struct image_push)},
    {0},
};

static const char *const mode_names[] = {
    "image_blend", "mask_composite", "mask_threshold", "mask_feather", "outpaint_mask",
    "mask_grow", "mask_to_image", "image_filter", "image_lanczos", "image_gray",
    "canny_sobel", "canny_nms", "image_fill",
};

/* One dispatch: o (new, shape oshape) from up to three contiguous inputs. */
static int run(vkf_gpu *gpu, uint32_t mode, int ond, const int64_t *oshape, vkf_tensor *a,
               vkf_tensor *b, vkf_tensor *c, struct image_push *pc, vkf_tensor **out)
{
    int err = 0;
    vkf_tensor *in[3] = {a, b, c}, *ic[3] = {0}, *o = NULL;
    for (int k = 0; k < 3; k++)
        if (in[k])
            VKF_TRY(vkf_op_contiguous(gpu, in[k], &ic[k]));
    VKF_TRY(vkf_tensor_create(gpu, VKF_DTYPE_F32, ond, oshape, &o));
    int64_t n = vkf_tensor_numel(o);
    VKF_REQUIRE(gpu, n <= UINT32_MAX);
    if (mode == M_SOBEL)
        n /= 2;
    pc->n = (uint32_t)n;
    pc->off1 = ic[0] ? (uint32_t)ic[0]->offset : 0;
    pc->off2 = ic[1] ? (uint32_t)ic[1]->offset : 0;
    pc->off3 = ic[2] ? (uint32_t)ic[2]->offset : 0;
    /* Bindings: the output, then slots 1..3 in order; an unused slot is
     * bound to another operand (never read). */
    vkf_tensor *any = ic[0] ? ic[0] : ic[1] ? ic[1] : ic[2] ? ic[2] : o;
    vkf_tensor *slots[4] = {o, ic[0] ? ic[0] : any, ic[1] ? ic[1] : any, ic[2] ? ic[2] : any};
    vkf_dispatch d = {
        .op = mode_names[mode], .writes = {o}, .nwrites = 1,
        .reads = {slots[1], slots[2], slots[3]}, .nreads = 3, .push = pc,
        .groups = {vkf_div_up((uint64_t)n, 64), 1, 1},
    };
    uint32_t extra[1] = {mode};
    VKF_TRY(vkf_op_pipeline(gpu, &vkf_shader_image_ops, slots, 4, extra, 1, sizeof(*pc), &d.pipe));
    VKF_TRY(vkf_gpu_dispatch(gpu, &d));
    *out = o;
    o = NULL;
fail:
    vkf_tensor_unref(&o);
    for (int k = 0; k < 3; k++)
        vkf_tensor_unref(&ic[k]);
    return err;
}

static bool same_shape(const vkf_tensor *a, const vkf_tensor *b)
{
    return a->ndim == b->ndim && !memcmp(a->shape, b->shape, sizeof(int64_t) * (size_t)a->ndim);
}

int vkf_op_image_blend(vkf_gpu *gpu, vkf_tensor *a, vkf_tensor *b, vkf_image_blend_mode mode,
                       double factor, vkf_tensor **out)
{
    REQ(gpu, same_shape(a, b) && mode >= VKF_BLEND_NORMAL && mode <= VKF_BLEND_DIFFERENCE);
    struct image_push pc = {.u0 = (uint32_t)mode, .f0 = (float)(1.0 - factor), .f1 = (float)factor};
    return run(gpu, M_BLEND, a->ndim, a->shape, a, b, NULL, &pc, out);
}

int vkf_op_mask_composite(vkf_gpu *gpu, vkf_tensor *dst, vkf_tensor *src, int64_t x, int64_t y,
                          vkf_mask_op op, vkf_tensor **out)
{
    REQ(gpu, dst->ndim == 3 && src->ndim == 3 && op >= VKF_MASK_MULTIPLY &&
                         op <= VKF_MASK_XOR && x >= 0 && y >= 0);
    REQ(gpu, x <= INT32_MAX && y <= INT32_MAX);
    struct image_push pc = {
        .B = (uint32_t)dst->shape[0], .H = (uint32_t)dst->shape[1], .W = (uint32_t)dst->shape[2],
        .b2 = (uint32_t)src->shape[0], .h2 = (uint32_t)src->shape[1],
        .w2 = (uint32_t)src->shape[2], .ox = (int32_t)x, .oy = (int32_t)y, .u0 = (uint32_t)op,
    };
    return run(gpu, M_MASKCOMP, 3, dst->shape, dst, src, NULL, &pc, out);
}

int vkf_op_mask_threshold(vkf_gpu *gpu, vkf_tensor *x, float value, vkf_tensor **out)
{
    struct image_push pc = {.f0 = value};
    return run(gpu, M_THRESHOLD, x->ndim, x->shape, x, NULL, NULL, &pc, out);
}

int vkf_op_mask_feather(vkf_gpu *gpu, vkf_tensor *mask, int64_t left, int64_t top, int64_t right,
                        int64_t bottom, vkf_tensor **out)
{
    REQ(gpu, mask->ndim == 3 && left >= 0 && top >= 0 && right >= 0 && bottom >= 0);
    int64_t H = mask->shape[1], W = mask->shape[2];
    struct image_push pc = {
        .B = (uint32_t)mask->shape[0], .H = (uint32_t)H, .W = (uint32_t)W,
        .u0 = (uint32_t)(left < W ? left : W), .u1 = (uint32_t)(top < H ? top : H),
        .u2 = (uint32_t)(right < W ? right : W), .u3 = (uint32_t)(bottom < H ? bottom : H),
    };
    return run(gpu, M_FEATHER, 3, mask->shape, mask, NULL, NULL, &pc, out);
}

int vkf_op_outpaint_mask(vkf_gpu *gpu, int64_t h, int64_t w, int64_t left, int64_t top,
                         int64_t right, int64_t bottom, int64_t feathering, vkf_tensor **out)
{
    REQ(gpu, h >= 1 && w >= 1 && left >= 0 && top >= 0 && right >= 0 && bottom >= 0 &&
                         feathering >= 0);
    REQ(gpu, h + top + bottom <= INT32_MAX && w + left + right <= INT32_MAX &&
                         feathering <= INT32_MAX);
    int64_t shape[3] = {1, h + top + bottom, w + left + right};
    struct image_push pc = {
        .B = 1, .H = (uint32_t)shape[1], .W = (uint32_t)shape[2], .h2 = (uint32_t)h,
        .w2 = (uint32_t)w, .c2 = (uint32_t)feathering, .ox = (int32_t)left, .oy = (int32_t)top,
        .u2 = (uint32_t)right, .u3 = (uint32_t)bottom,
    };
    return run(gpu, M_OUTPAINT, 3, shape, NULL, NULL, NULL, &pc, out);
}

int vkf_op_mask_grow(vkf_gpu *gpu, vkf_tensor *mask, int64_t expand, bool tapered,
                     vkf_tensor **out)
{
    int err = 0;
    vkf_tensor *cur = NULL, *next = NULL;
    VKF_REQUIRE(gpu, mask->ndim == 3);
    int64_t H = mask->shape[1], W = mask->shape[2];
    struct image_push pc = {
        .B = (uint32_t)mask->shape[0], .H = (uint32_t)H, .W = (uint32_t)W,
        .u0 = expand > 0, .u1 = tapered,
    };
    /* After H + W steps every value is the max (min) of its whole plane:
     * further steps change nothing. */
    int64_t steps = expand < 0 ? -expand : expand;
    if (steps > H + W)
        steps = H + W;
    VKF_TRY(vkf_op_contiguous(gpu, mask, &cur));
    for (int64_t s = 0; s < steps; s++) {
        VKF_TRY(run(gpu, M_GROW, 3, mask->shape, cur, NULL, NULL, &pc, &next));
        vkf_tensor_unref(&cur);
        cur = next;
        next = NULL;
    }
    *out = cur;
    cur = NULL;
fail:
    vkf_tensor_unref(&cur);
    return err;
}

int vkf_op_mask_to_image(vkf_gpu *gpu, vkf_tensor *mask, vkf_tensor **out)
{
    REQ(gpu, mask->ndim == 3);
    int64_t shape[4] = {mask->shape[0], mask->shape[1], mask->shape[2], 3};
    struct image_push pc = {0};
    return run(gpu, M_EXPAND3, 4, shape, mask, NULL, NULL, &pc, out);
}

int vkf_op_image_fill(vkf_gpu *gpu, int ndim, const int64_t *shape, const float *values,
                      vkf_tensor **out)
{
    REQ(gpu, ndim == 3 || ndim == 4);
    struct image_push pc = {
        .C = ndim == 4 ? (uint32_t)shape[3] : 1, .f0 = values[0],
        .f1 = ndim == 4 ? values[1] : 0, .f2 = ndim == 4 ? values[2] : 0,
    };
    REQ(gpu, ndim == 3 || shape[3] == 3);
    return run(gpu, M_FILL, ndim, shape, NULL, NULL, NULL, &pc, out);
}

/* View x ([B,H,W] or [B,H,W,C]) as B, H, W, C. */
static void bhwc(const vkf_tensor *x, uint32_t d[4])
{
    d[0] = (uint32_t)x->shape[0];
    d[1] = (uint32_t)x->shape[1];
    d[2] = (uint32_t)x->shape[2];
    d[3] = x->ndim == 4 ? (uint32_t)x->shape[3] : 1;
}

/* One separable pass; sharpen_x: NULL or the original for the sharpen
 * combine (gain, amount). */
static int filter_pass(vkf_gpu *gpu, vkf_tensor *x, vkf_tensor *w, int taps, int axis,
                       bool replicate, vkf_tensor *sharpen_x, float gain, float amount,
                       vkf_tensor **out)
{
    uint32_t d[4];
    bhwc(x, d);
    struct image_push pc = {
        .B = d[0], .H = d[1], .W = d[2], .C = d[3], .u0 = (uint32_t)axis, .u1 = (uint32_t)taps,
        .u2 = replicate, .u3 = sharpen_x != NULL, .f0 = gain, .f1 = amount,
    };
    return run(gpu, M_FILTER, x->ndim, x->shape, x, w, sharpen_x, &pc, out);
}

int vkf_op_separable_filter(vkf_gpu *gpu, vkf_tensor *x, const float *weights, int taps,
                            bool replicate, vkf_tensor **out)
{
    int err = 0;
    vkf_tensor *w = NULL, *mid = NULL;
    VKF_REQUIRE(gpu, (x->ndim == 3 || x->ndim == 4) && taps >= 1 && taps % 2 == 1);
    VKF_REQUIRE(gpu, replicate || (taps / 2 < x->shape[1] && taps / 2 < x->shape[2]));
    int64_t ws = taps;
    VKF_TRY(vkf_tensor_create(gpu, VKF_DTYPE_F32, 1, &ws, &w));
    VKF_TRY(vkf_tensor_upload(w, weights));
    VKF_TRY(filter_pass(gpu, x, w, taps, 0, replicate, NULL, 0, 0, &mid));
    VKF_TRY(filter_pass(gpu, mid, w, taps, 1, replicate, NULL, 0, 0, out));
fail:
    vkf_tensor_unref(&w);
    vkf_tensor_unref(&mid);
    return err;
}

/* ComfyUI's gaussian_kernel row: exp(-t²/(2σ²)) at linspace(-1, 1, n),
 * normalised (the 2-D kernel is the outer product of two such rows). */
static void comfy_gauss_row(int n, double sigma, float *w)
{
    double sum = 0, g[128];
    for (int i = 0; i < n; i++) {
        double t = n == 1 ? -1.0 : -1.0 + 2.0 * i / (n - 1);
        g[i] = exp(-(t * t) / (2.0 * sigma * sigma));
        sum += g[i];
    }
    for (int i = 0; i < n; i++)
        w[i] = (float)(g[i] / sum);
}

int vkf_op_image_blur(vkf_gpu *gpu, vkf_tensor *image, int radius, double sigma,
                      vkf_tensor **out)
{
    REQ(gpu, radius >= 1 && radius <= 63);
    float w[127];
    comfy_gauss_row(2 * radius + 1, sigma, w);
    return vkf_op_separable_filter(gpu, image, w, 2 * radius + 1, false, out);
}

int vkf_op_image_sharpen(vkf_gpu *gpu, vkf_tensor *image, int radius, double sigma,
                         double alpha, vkf_tensor **out)
{
    int err = 0;
    vkf_tensor *w = NULL, *mid = NULL, *xc = NULL;
    VKF_REQUIRE(gpu, image->ndim == 4 && radius >= 1 && radius <= 63);
    VKF_REQUIRE(gpu, radius < image->shape[1] && radius < image->shape[2]);
    int taps = 2 * radius + 1;
    float wt[127];
    comfy_gauss_row(taps, sigma, wt);
    int64_t ws = taps;
    /* kernel = −10α·G with 1 + 10α added at the centre (the kernel sums
     * to 1): out = (1 + 10α)·x − 10α·(G ∗ x). */
    float amount = (float)(alpha * 10.0), gain = (float)(1.0 + alpha * 10.0);
    VKF_TRY(vkf_op_contiguous(gpu, image, &xc));
    VKF_TRY(vkf_tensor_create(gpu, VKF_DTYPE_F32, 1, &ws, &w));
    VKF_TRY(vkf_tensor_upload(w, wt));
    VKF_TRY(filter_pass(gpu, xc, w, taps, 0, false, NULL, 0, 0, &mid));
    VKF_TRY(filter_pass(gpu, mid, w, taps, 1, false, xc, gain, amount, out));
fail:
    vkf_tensor_unref(&w);
    vkf_tensor_unref(&mid);
    vkf_tensor_unref(&xc);
    return err;
}

/* ---- PIL's Lanczos ------------------------------------------------------ */

static double sinc(double x)
{
    if (x == 0.0)
        return 1.0;
    x *= M_PI;
    return sin(x) / x;
}

static double lanczos3(double x)
{
    return -3.0 <= x && x < 3.0 ? sinc(x) * sinc(x / 3.0) : 0.0;
}

int vkf_lanczos_coeffs(int64_t in, int64_t out, double *w, int64_t *xmin, int64_t *count)
{
    double scale = (double)in / (double)out, filterscale = scale < 1.0 ? 1.0 : scale;
    double support = 3.0 * filterscale, ss = 1.0 / filterscale;
    int ksize = (int)ceil(support) * 2 + 1;
    if (!w)
        return ksize;
    for (int64_t xx = 0; xx < out; xx++) {
        double center = ((double)xx + 0.5) * scale, ww = 0.0;
        int64_t lo = (int64_t)(center - support + 0.5), hi = (int64_t)(center + support + 0.5);
        if (lo < 0)
            lo = 0;
        if (hi > in)
            hi = in;
        hi -= lo;
        double *k = w + xx * ksize;
        for (int64_t x = 0; x < ksize; x++)
            k[x] = 0;
        for (int64_t x = 0; x < hi; x++) {
            k[x] = lanczos3(((double)(x + lo) - center + 0.5) * ss);
            ww += k[x];
        }
        for (int64_t x = 0; x < hi && ww != 0.0; x++)
            k[x] /= ww;
        xmin[xx] = lo;
        count[xx] = hi;
    }
    return ksize;
}

static int lanczos_pass(vkf_gpu *gpu, vkf_tensor *x, int axis, int64_t out_len, vkf_tensor **out)
{
    int err = 0;
    vkf_tensor *ct = NULL;
    double *w = NULL;
    int64_t *lo = NULL, *cnt = NULL;
    float *rows = NULL;
    int64_t in_len = x->shape[axis == 0 ? 2 : 1];
    int ks = vkf_lanczos_coeffs(in_len, out_len, NULL, NULL, NULL);
    w = vkf_malloc(sizeof(double) * (size_t)(out_len * ks));
    lo = vkf_malloc(sizeof(int64_t) * (size_t)out_len);
    cnt = vkf_malloc(sizeof(int64_t) * (size_t)out_len);
    rows = vkf_malloc(sizeof(float) * (size_t)(out_len * (ks + 2)));
    if (!w || !lo || !cnt || !rows) {
        err = VKF_ENOMEM;
        goto fail;
    }
    vkf_lanczos_coeffs(in_len, out_len, w, lo, cnt);
    for (int64_t i = 0; i < out_len; i++) {
        float *r = rows + i * (ks + 2);
        r[0] = (float)lo[i];
        r[1] = (float)cnt[i];
        for (int k = 0; k < ks; k++)
            r[2 + k] = (float)w[i * ks + k];
    }
    int64_t cs = out_len * (ks + 2);
    VKF_TRY(vkf_tensor_create(gpu, VKF_DTYPE_F32, 1, &cs, &ct));
    VKF_TRY(vkf_tensor_upload(ct, rows));
    int64_t shape[4] = {x->shape[0], x->shape[1], x->shape[2], x->ndim == 4 ? x->shape[3] : 1};
    shape[axis == 0 ? 2 : 1] = out_len;
    struct image_push pc = {
        .B = (uint32_t)shape[0], .H = (uint32_t)shape[1], .W = (uint32_t)shape[2],
        .C = (uint32_t)shape[3], .h2 = (uint32_t)x->shape[1], .w2 = (uint32_t)x->shape[2],
        .u0 = (uint32_t)axis, .u1 = (uint32_t)ks,
    };
    VKF_TRY(run(gpu, M_LANCZOS, x->ndim, shape, x, ct, NULL, &pc, out));
fail:
    vkf_tensor_unref(&ct);
    vkf_free(w);
    vkf_free(lo);
    vkf_free(cnt);
    vkf_free(rows);
    return err;
}

int vkf_op_lanczos(vkf_gpu *gpu, vkf_tensor *x, int64_t ho, int64_t wo, vkf_tensor **out)
{
    int err = 0;
    vkf_tensor *mid = NULL;
    VKF_REQUIRE(gpu, (x->ndim == 3 || x->ndim == 4) && ho >= 1 && wo >= 1);
    VKF_REQUIRE(gpu, ho < (1 << 24) && wo < (1 << 24));
    bool hz = wo != x->shape[2], vt = ho != x->shape[1];
    if (!hz && !vt)
        return vkf_op_contiguous(gpu, x, out);
    if (hz)
        VKF_TRY(lanczos_pass(gpu, x, 0, wo, vt ? &mid : out));
    if (vt)
        VKF_TRY(lanczos_pass(gpu, hz ? mid : x, 1, ho, out));
fail:
    vkf_tensor_unref(&mid);
    return err;
}

/* ---- Canny stages -------------------------------------------------------- */

int vkf_op_canny_edges(vkf_gpu *gpu, vkf_tensor *image, float low, float high,
                       vkf_tensor **out)
{
    int err = 0;
    vkf_tensor *gray = NULL, *blur = NULL, *grad = NULL;
    VKF_REQUIRE(gpu, image->ndim == 4 && image->shape[3] >= 3);
    VKF_REQUIRE(gpu, image->shape[1] >= 3 && image->shape[2] >= 3);
    uint32_t d[4];
    bhwc(image, d);
    int64_t gshape[3] = {image->shape[0], image->shape[1], image->shape[2]};
    struct image_push pg = {.B = d[0], .H = d[1], .W = d[2], .C = d[3]};
    VKF_TRY(run(gpu, M_GRAY, 3, gshape, image, NULL, NULL, &pg, &gray));
    /* kornia get_gaussian_kernel1d(5, 1.0): exp(-x²/2) at x = -2..2 */
    float w[5];
    double g[5], sum = 0;
    for (int i = 0; i < 5; i++) {
        g[i] = exp(-((i - 2.0) * (i - 2.0)) / 2.0);
        sum += g[i];
    }
    for (int i = 0; i < 5; i++)
        w[i] = (float)(g[i] / sum);
    VKF_TRY(vkf_op_separable_filter(gpu, gray, w, 5, false, &blur));
    int64_t sshape[4] = {gshape[0], gshape[1], gshape[2], 2};
    struct image_push ps = {.B = d[0], .H = d[1], .W = d[2], .C = 1};
    VKF_TRY(run(gpu, M_SOBEL, 4, sshape, blur, NULL, NULL, &ps, &grad));
    struct image_push pn = {.B = d[0], .H = d[1], .W = d[2], .C = 1, .f0 = low, .f1 = high};
    VKF_TRY(run(gpu, M_NMS, 3, gshape, grad, NULL, NULL, &pn, out));
fail:
    vkf_tensor_unref(&gray);
    vkf_tensor_unref(&blur);
    vkf_tensor_unref(&grad);
    return err;
}

void vkf_canny_hysteresis(float *edges, int64_t B, int64_t H, int64_t W, int64_t *stack)
{
    /* kornia iterates "a weak pixel with a strong 8-neighbour becomes
     * strong" to a fixed point and then drops the remaining weak pixels:
     * the strong pixels plus the weak ones 8-connected to them through weak
     * pixels.  A flood fill from every strong pixel reaches the same set. */
    for (int64_t b = 0; b < B; b++) {
        float *e = edges + b * H * W;
        int64_t top = 0;
        for (int64_t i = 0; i < H * W; i++)
            if (e[i] == 1.0f)
                stack[top++] = i;
        while (top > 0) {
            int64_t i = stack[--top], y = i / W, x = i % W;
            for (int dy = -1; dy <= 1; dy++)
                for (int dx = -1; dx <= 1; dx++) {
                    int64_t yy = y + dy, xx = x + dx;
                    if (yy < 0 || xx < 0 || yy >= H || xx >= W)
                        continue;
                    if (e[yy * W + xx] == 0.5f) {
                        e[yy * W + xx] = 1.0f;
                        stack[top++] = yy * W + xx;
                    }
                }
        }
        for (int64_t i = 0; i < H * W; i++)
            if (e[i] != 1.0f)
                e[i] = 0.0f;
    }
}
