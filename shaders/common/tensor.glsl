/*
 * Tensor access across storage chunks (see core/gpu/tensor.c).
 *
 * Slot S of a shader owns bindings S*4 .. S*4+3, one per storage chunk.
 * Specialization constants, set by the host from the bound tensors:
 *   id 2S   DT<S>  storage dtype: 0 f32, 1 f16, 2 bf16
 *   id 2S+1 NC<S>  number of chunks actually used (1..4)
 *   id 8    CHUNK_SHIFT  log2(elements per chunk)
 * Constant folding after specialization removes the unused branches, so a
 * single-chunk f32 tensor costs one plain load.
 *
 */
#extension GL_EXT_shader_16bit_storage : require

layout(constant_id = 0) const uint DT0 = 0;
layout(constant_id = 1) const uint NC0 = 1;
layout(constant_id = 2) const uint DT1 = 0;
layout(constant_id = 3) const uint NC1 = 1;
layout(constant_id = 4) const uint DT2 = 0;
layout(constant_id = 5) const uint NC2 = 1;
layout(constant_id = 6) const uint DT3 = 0;
layout(constant_id = 7) const uint NC3 = 1;
layout(constant_id = 8) const uint CHUNK_SHIFT = 30;

#define CHUNK_MASK ((1u << CHUNK_SHIFT) - 1u)

/* Declares slot S as tensor N: N_ld(i), N_ld4(i), N_st(i, v), N_st4(i, v)
 * (the 4-wide ones need i % 4 == 0). */
#define TENSOR(S, N) \
layout(binding = S * 4 + 0) buffer N##_f0_blk { float N##_f0[]; }; \
layout(binding = S * 4 + 0) buffer N##_h0_blk { float16_t N##_h0[]; }; \
layout(binding = S * 4 + 0) buffer N##_b0_blk { uint16_t N##_b0[]; }; \
layout(binding = S * 4 + 0) buffer N##_v0_blk { vec4 N##_v0[]; }; \
layout(binding = S * 4 + 0) buffer N##_hv0_blk { f16vec4 N##_hv0[]; }; \
layout(binding = S * 4 + 0) buffer N##_bv0_blk { u16vec4 N##_bv0[]; }; \
layout(binding = S * 4 + 1) buffer N##_f1_blk { float N##_f1[]; }; \
layout(binding = S * 4 + 1) buffer N##_h1_blk { float16_t N##_h1[]; }; \
layout(binding = S * 4 + 1) buffer N##_b1_blk { uint16_t N##_b1[]; }; \
layout(binding = S * 4 + 1) buffer N##_v1_blk { vec4 N##_v1[]; }; \
layout(binding = S * 4 + 1) buffer N##_hv1_blk { f16vec4 N##_hv1[]; }; \
layout(binding = S * 4 + 1) buffer N##_bv1_blk { u16vec4 N##_bv1[]; }; \
layout(binding = S * 4 + 2) buffer N##_f2_blk { float N##_f2[]; }; \
layout(binding = S * 4 + 2) buffer N##_h2_blk { float16_t N##_h2[]; }; \
layout(binding = S * 4 + 2) buffer N##_b2_blk { uint16_t N##_b2[]; }; \
layout(binding = S * 4 + 2) buffer N##_v2_blk { vec4 N##_v2[]; }; \
layout(binding = S * 4 + 2) buffer N##_hv2_blk { f16vec4 N##_hv2[]; }; \
layout(binding = S * 4 + 2) buffer N##_bv2_blk { u16vec4 N##_bv2[]; }; \
layout(binding = S * 4 + 3) buffer N##_f3_blk { float N##_f3[]; }; \
layout(binding = S * 4 + 3) buffer N##_h3_blk { float16_t N##_h3[]; }; \
layout(binding = S * 4 + 3) buffer N##_b3_blk { uint16_t N##_b3[]; }; \
layout(binding = S * 4 + 3) buffer N##_v3_blk { vec4 N##_v3[]; }; \
layout(binding = S * 4 + 3) buffer N##_hv3_blk { f16vec4 N##_hv3[]; }; \
layout(binding = S * 4 + 3) buffer N##_bv3_blk { u16vec4 N##_bv3[]; }; \
float N##_ld(uint i) { \
    uint c = NC##S == 1u ? 0u : i >> CHUNK_SHIFT; \
    uint o = NC##S == 1u ? i : i & CHUNK_MASK; \
    if (DT##S == 0u) { \
        if (c == 0u) return N##_f0[o]; \
        if (c == 1u) return N##_f1[o]; \
        if (c == 2u) return N##_f2[o]; \
        return N##_f3[o]; \
    } \
    if (DT##S == 1u) { \
        if (c == 0u) return float(N##_h0[o]); \
        if (c == 1u) return float(N##_h1[o]); \
        if (c == 2u) return float(N##_h2[o]); \
        return float(N##_h3[o]); \
    } \
    if (DT##S == 2u) { \
        if (c == 0u) return uintBitsToFloat(uint(N##_b0[o]) << 16); \
        if (c == 1u) return uintBitsToFloat(uint(N##_b1[o]) << 16); \
        if (c == 2u) return uintBitsToFloat(uint(N##_b2[o]) << 16); \
        return uintBitsToFloat(uint(N##_b3[o]) << 16); \
    } \
    return 0.0; \
} \
vec4 N##_ld4(uint i) { \
    uint c = NC##S == 1u ? 0u : i >> CHUNK_SHIFT; \
    uint o = (NC##S == 1u ? i : i & CHUNK_MASK) >> 2; \
    if (DT##S == 0u) { \
        if (c == 0u) return N##_v0[o]; \
        if (c == 1u) return N##_v1[o]; \
        if (c == 2u) return N##_v2[o]; \
        return N##_v3[o]; \
    } \
    if (DT##S == 1u) { \
        if (c == 0u) return vec4(N##_hv0[o]); \
        if (c == 1u) return vec4(N##_hv1[o]); \
        if (c == 2u) return vec4(N##_hv2[o]); \
        return vec4(N##_hv3[o]); \
    } \
    if (DT##S == 2u) { \
        if (c == 0u) return uintBitsToFloat(uvec4(N##_bv0[o]) << 16); \
        if (c == 1u) return uintBitsToFloat(uvec4(N##_bv1[o]) << 16); \
        if (c == 2u) return uintBitsToFloat(uvec4(N##_bv2[o]) << 16); \
        return uintBitsToFloat(uvec4(N##_bv3[o]) << 16); \
    } \
    return vec4(0.0); \
} \
void N##_st(uint i, float v) { \
    uint c = NC##S == 1u ? 0u : i >> CHUNK_SHIFT; \
    uint o = NC##S == 1u ? i : i & CHUNK_MASK; \
    if (DT##S == 0u) { \
        if (c == 0u) { N##_f0[o] = v; return; } \
        if (c == 1u) { N##_f1[o] = v; return; } \
        if (c == 2u) { N##_f2[o] = v; return; } \
        if (c == 3u) { N##_f3[o] = v; return; } \
    } \
    if (DT##S == 1u) { \
        if (c == 0u) { N##_h0[o] = float16_t(v); return; } \
        if (c == 1u) { N##_h1[o] = float16_t(v); return; } \
        if (c == 2u) { N##_h2[o] = float16_t(v); return; } \
        if (c == 3u) { N##_h3[o] = float16_t(v); return; } \
    } \
    if (DT##S == 2u) { \
        if (c == 0u) { N##_b0[o] = uint16_t((floatBitsToUint(v) + 0x7fffu + ((floatBitsToUint(v) >> 16) & 1u)) >> 16); return; } \
        if (c == 1u) { N##_b1[o] = uint16_t((floatBitsToUint(v) + 0x7fffu + ((floatBitsToUint(v) >> 16) & 1u)) >> 16); return; } \
        if (c == 2u) { N##_b2[o] = uint16_t((floatBitsToUint(v) + 0x7fffu + ((floatBitsToUint(v) >> 16) & 1u)) >> 16); return; } \
        if (c == 3u) { N##_b3[o] = uint16_t((floatBitsToUint(v) + 0x7fffu + ((floatBitsToUint(v) >> 16) & 1u)) >> 16); return; } \
    } \
} \
void N##_st4(uint i, vec4 v) { \
    uint c = NC##S == 1u ? 0u : i >> CHUNK_SHIFT; \
    uint o = (NC##S == 1u ? i : i & CHUNK_MASK) >> 2; \
    if (DT##S == 0u) { \
        if (c == 0u) { N##_v0[o] = v; return; } \
        if (c == 1u) { N##_v1[o] = v; return; } \
        if (c == 2u) { N##_v2[o] = v; return; } \
        if (c == 3u) { N##_v3[o] = v; return; } \
    } \
    if (DT##S == 1u) { \
        if (c == 0u) { N##_hv0[o] = f16vec4(v); return; } \
        if (c == 1u) { N##_hv1[o] = f16vec4(v); return; } \
        if (c == 2u) { N##_hv2[o] = f16vec4(v); return; } \
        if (c == 3u) { N##_hv3[o] = f16vec4(v); return; } \
    } \
    if (DT##S == 2u) { \
        if (c == 0u) { N##_bv0[o] = u16vec4((floatBitsToUint(v) + 0x7fffu + ((floatBitsToUint(v) >> 16) & 1u)) >> 16); return; } \
        if (c == 1u) { N##_bv1[o] = u16vec4((floatBitsToUint(v) + 0x7fffu + ((floatBitsToUint(v) >> 16) & 1u)) >> 16); return; } \
        if (c == 2u) { N##_bv2[o] = u16vec4((floatBitsToUint(v) + 0x7fffu + ((floatBitsToUint(v) >> 16) & 1u)) >> 16); return; } \
        if (c == 3u) { N##_bv3[o] = u16vec4((floatBitsToUint(v) + 0x7fffu + ((floatBitsToUint(v) >> 16) & 1u)) >> 16); return; } \
    } \
}

/* Flat invocation index of a 1-D grid that may be folded into y. */
uint flat_index(uint local_size)
{
    uint g = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    return g * local_size + gl_LocalInvocationID.x;
}
