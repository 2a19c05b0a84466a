/* Rotary position embeddings, 1-D and Wan's 3-D (shaders/rope.comp). */
#include <math.h>
#include <stdlib.h>

#include "gpu/ops/op_util.h"
#include "gpu/ops/ref.h"

struct rope_push {
    uint32_t total, ntok, heads, half_d;
    uint32_t off_x, sb, sn, sh, sd;
    uint32_t seq_len, grid1, grid2;
    uint32_t pairs[3];
    int32_t pos[3];
    float coef[3];
};
_Static_assert(sizeof(struct rope_push) <= 128, "push constants");

const vkf_shader_layout vkf_rope_layouts[] = {
    {&vkf_shader_rope, 2, 0, sizeof(struct rope_push)},
    {0},
};

void vkf_rope_params_wan(int head_dim, int64_t f, int64_t h, int64_t w,
                         vkf_rope_params *out)
{
    int s = 2 * (head_dim / 6);
    *out = (vkf_rope_params){
        .mode = VKF_ROPE_INTERLEAVED,
        .theta = 10000.0,
        .naxes = 3,
        .axis_dim = {head_dim - 2 * s, s, s},
        .grid = {f, h, w},
    };
}

/* params with the zero defaults filled in for a head dim D and N tokens. */
static vkf_rope_params resolved(const vkf_rope_params *params, int64_t D, int64_t N)
{
    vkf_rope_params r = params ? *params : (vkf_rope_params){0};
    if (r.theta == 0.0)
        r.theta = 10000.0;
    if (r.naxes == 0) {
        r.naxes = 1;
        r.axis_dim[0] = (int)D;
        r.grid[0] = N;
    }
    for (int a = r.naxes; a < 3; a++) {
        r.axis_dim[a] = 0;
        r.grid[a] = 1;
        r.pos_offset[a] = 0;
    }
    return r;
}

int vkf_op_rope(vkf_gpu *gpu, vkf_tensor *x, const vkf_rope_params *params,
                vkf_tensor **out)
{
    int err = 0;
    vkf_tensor *o = NULL;
    VKF_REQUIRE(gpu, x->ndim == 4);
    int64_t B = x->shape[0], N = x->shape[1], H = x->shape[2], D = x->shape[3];
    VKF_REQUIRE(gpu, D % 2 == 0);
    VKF_REQUIRE(gpu, !params || (params->naxes >= 0 && params->naxes <= 3));
    vkf_rope_params r = resolved(params, D, N);
    int64_t rot = 0, seq = 1;
    for (int a = 0; a < 3; a++) {
        VKF_REQUIRE(gpu, r.axis_dim[a] >= 0 && r.axis_dim[a] % 2 == 0);
        VKF_REQUIRE(gpu, r.grid[a] >= 1);
        VKF_REQUIRE(gpu, llabs(r.pos_offset[a]) <= INT32_MAX);
        rot += r.axis_dim[a];
        seq *= r.grid[a];
    }
    VKF_REQUIRE(gpu, rot <= D && r.theta > 0.0);
    VKF_REQUIRE(gpu, vkf_tensor_numel(x) <= UINT32_MAX && x->st->numel <= UINT32_MAX);
    VKF_TRY(vkf_tensor_create(gpu, VKF_DTYPE_F32, 4, x->shape, &o));
    struct rope_push pc = {
        .total = (uint32_t)(B * N * H * (D / 2)),
        .ntok = (uint32_t)N, .heads = (uint32_t)H, .half_d = (uint32_t)(D / 2),
        .off_x = (uint32_t)x->offset,
        .sb = (uint32_t)x->strides[0], .sn = (uint32_t)x->strides[1],
        .sh = (uint32_t)x->strides[2], .sd = (uint32_t)x->strides[3],
        .seq_len = (uint32_t)(seq < N ? seq : N),
        .grid1 = (uint32_t)r.grid[1], .grid2 = (uint32_t)r.grid[2],
    };
    for (int a = 0; a < 3; a++) {
        pc.pairs[a] = (uint32_t)(r.axis_dim[a] / 2);
        pc.pos[a] = (int32_t)r.pos_offset[a];
        pc.coef[a] = r.axis_dim[a] ? (float)(2.0 * log2(r.theta) / r.axis_dim[a]) : 0.0f;
    }
    vkf_tensor *slots[2] = {o, x};
    uint32_t extra[1] = {r.mode == VKF_ROPE_HALF};
    vkf_pipeline *pipe;
    VKF_TRY(vkf_op_pipeline(gpu, &vkf_shader_rope, slots, 2, extra, 1, sizeof(pc),
                            &pipe));
    VKF_TRY(vkf_gpu_dispatch(gpu, &(vkf_dispatch){
        .op = "rope", .pipe = pipe, .writes = {o}, .nwrites = 1,
        .reads = {x}, .nreads = 1, .push = &pc,
        .groups = {vkf_div_up(pc.total, 64), 1, 1}}));
    *out = o;
    o = NULL;
fail:
    vkf_tensor_unref(&o);
    return err;
}

void vkf_ref_rope(const float *x, int64_t B, int64_t N, int64_t H, int64_t D,
                  const vkf_rope_params *params, float *out)
{
    vkf_rope_params r = resolved(params, D, N);
    int64_t seq = r.grid[0] * r.grid[1] * r.grid[2];
    for (int64_t b = 0; b < B; b++) {
        for (int64_t n = 0; n < N; n++) {
            int64_t coord[3] = {n / (r.grid[1] * r.grid[2]), (n / r.grid[2]) % r.grid[1],
                                n % r.grid[2]};
            for (int64_t h = 0; h < H; h++) {
                const float *xv = x + ((b * N + n) * H + h) * D;
                float *ov = out + ((b * N + n) * H + h) * D;
                for (int64_t d = 0; d < D; d++)
                    ov[d] = xv[d];
                if (n >= seq)
                    continue;
                int64_t seg = 0;
                for (int a = 0; a < r.naxes; a++) {
                    int64_t pairs = r.axis_dim[a] / 2;
                    for (int64_t j = 0; j < pairs; j++) {
                        double ang = (double)(coord[a] + r.pos_offset[a]) *
                                     pow(r.theta, -2.0 * (double)j / r.axis_dim[a]);
                        int64_t e0 = r.mode == VKF_ROPE_HALF ? seg + j : seg + 2 * j;
                        int64_t e1 = r.mode == VKF_ROPE_HALF ? seg + j + pairs : e0 + 1;
                        double c = cos(ang), s = sin(ang);
                        ov[e0] = (float)(xv[e0] * c - xv[e1] * s);
                        ov[e1] = (float)(xv[e0] * s + xv[e1] * c);
                    }
                    seg += r.axis_dim[a];
                }
            }
        }
    }
}
