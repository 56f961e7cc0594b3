/* Element-wise add with both inputs rescaled to the output scale. */
#include "../mf_internal.h"

#if MF_REQUANT_MODE == MF_REQUANT_FLOAT
#include <math.h> /* fmaf: ORT's kernel uses fused multiply-adds */

/* MLAS (MlasQLinearAddKernelAvx2Helper, what ORT runs on x86-64 with AVX2): with r1 = s1 / s_y, r2 = s2 / s_y and
 * fixed = (float)zp_y - fma(r1, zp1, r2 * zp2), v = fma(q1, r1, fma(q2, r2, fixed)), clamped, rounded half to even.
 * The fused multiply-adds (single rounding) are needed for bit-exactness: C99 fmaf, one VFMA instruction on
 * Cortex-M4F/M7. */
typedef struct {
    float ratio1;
    float ratio2;
    float fixed_part;
    float lo;
    float hi;
} mf_add_float;

static inline uint32_t mf_add_float_one(const mf_add_float *k, int32_t q1, int32_t q2)
{
    float v = fmaf((float)q1, k->ratio1, fmaf((float)q2, k->ratio2, k->fixed_part));
    if (v < k->lo) {
        v = k->lo;
    }
    if (v > k->hi) {
        v = k->hi;
    }
    return (uint32_t)mf_round_half_even_f(v) & 0xFFu;
}
#else

/* The usual case, TFLite's parameters (left shift 20, input exponents <= 0, output exponent <= -2, multipliers >= 0):
 * each input's rescale exactly in 32-bit arithmetic (mf_add_in_fast, mf_arith.h), the input whose multiplier is 2^30
 * with exponent 0 (the larger scale, in TFLite's preparation) exactly d * 2^(ls-1), the output's rescale one SMLAL
 * on a sum started at its rounding and sign terms (mf_mbqm_right_fast). */
static inline uint32_t mf_add_word(const int8_t *p)
{
    uint32_t word;
    memcpy(&word, p, sizeof(word));
    return word;
}

/* The even (0, 2) and odd (1, 3) int8 values of a word minus the zero point, as int16 lanes */
static inline void mf_add_lanes(uint32_t word, int32_t zp, uint32_t *even, uint32_t *odd)
{
#if MF_DSP
    const uint32_t neg_zp = mf_dup16(-zp);
    *even = mf_sxtab16(neg_zp, word);
    *odd = mf_sxtab16_ror8(neg_zp, word);
#else
    const uint32_t b0 = (uint32_t)((int32_t)(int8_t)(uint8_t)word - zp) & 0xFFFFu;
    const uint32_t b1 = (uint32_t)((int32_t)(int8_t)(uint8_t)(word >> 8) - zp) & 0xFFFFu;
    const uint32_t b2 = (uint32_t)((int32_t)(int8_t)(uint8_t)(word >> 16) - zp) & 0xFFFFu;
    const uint32_t b3 = (uint32_t)((int32_t)(int8_t)(uint8_t)(word >> 24) - zp) & 0xFFFFu;
    *even = b0 | (b2 << 16);
    *odd = b1 | (b3 << 16);
#endif
}

/* the low and high int16 lanes */
#define MF_LANE_LO(x) ((int32_t)(int16_t)(uint16_t)(x))
#define MF_LANE_HI(x) ((int32_t)(int16_t)(uint16_t)((x) >> 16))

#if defined(__GNUC__)
#define MF_ADD_INLINE static inline __attribute__((always_inline))
#define MF_ADD_NOINLINE static __attribute__((noinline))
#else
#define MF_ADD_INLINE static inline
#define MF_ADD_NOINLINE static
#endif

/* The add of `size` elements on the fast path; a_shift: input a's rescale is d * 2^(left_shift - 1); full: the clamp
 * is the int8 range (one SSAT). Both flags are constants where it is inlined. */
MF_ADD_INLINE void mf_add_fast_loop(const int8_t *in_a, int32_t zp_a, const int8_t *in_b, int32_t zp_b,
                                    const mf_add_in_fast *kb, int32_t left_shift, const mf_requant *out_rq,
                                    int32_t output_zp, int32_t act_min, int32_t act_max, int32_t size,
                                    int8_t *output, int a_shift, int full, const mf_add_in_fast *ka)
{
    const int32_t m = out_rq->multiplier;
    const int32_t r = -out_rq->shift - 1;
    const uint32_t c = ((uint32_t)1 << r) >> 1;
    const int32_t a_left = left_shift - 1;
    const int32_t lo = act_min;
    const int32_t hi = act_max;
    int32_t i = 0;
#define MF_ADD_FAST_ONE(da, db)                                                                                       \
    mf_mbqm_right_fast(mf_wrapping_add(a_shift ? (da) * (1 << a_left) : mf_add_in_fast_apply((da), ka),           \
                                       mf_add_in_fast_apply((db), kb)),                                               \
                       m, c, r) +                                                                                     \
        output_zp
#define MF_ADD_FAST_CLAMP(v) ((int8_t)(full ? mf_sat8(v) : ((v) < lo ? lo : ((v) > hi ? hi : (v)))))
    for (; i + 4 <= size; i += 4) { /* 4 elements: one word of each input, the zero points off in int16 lanes */
        uint32_t a_even;
        uint32_t a_odd;
        uint32_t b_even;
        uint32_t b_odd;
        int32_t v0;
        int32_t v1;
        int32_t v2;
        int32_t v3;
        mf_add_lanes(mf_add_word(in_a + i), zp_a, &a_even, &a_odd);
        mf_add_lanes(mf_add_word(in_b + i), zp_b, &b_even, &b_odd);
        v0 = MF_ADD_FAST_ONE(MF_LANE_LO(a_even), MF_LANE_LO(b_even));
        v1 = MF_ADD_FAST_ONE(MF_LANE_LO(a_odd), MF_LANE_LO(b_odd));
        v2 = MF_ADD_FAST_ONE(MF_LANE_HI(a_even), MF_LANE_HI(b_even));
        v3 = MF_ADD_FAST_ONE(MF_LANE_HI(a_odd), MF_LANE_HI(b_odd));
        output[i] = MF_ADD_FAST_CLAMP(v0);
        output[i + 1] = MF_ADD_FAST_CLAMP(v1);
        output[i + 2] = MF_ADD_FAST_CLAMP(v2);
        output[i + 3] = MF_ADD_FAST_CLAMP(v3);
    }
    for (; i < size; i++) {
        const int32_t v = MF_ADD_FAST_ONE((int32_t)in_a[i] - zp_a, (int32_t)in_b[i] - zp_b);
        output[i] = MF_ADD_FAST_CLAMP(v);
    }
#undef MF_ADD_FAST_ONE
#undef MF_ADD_FAST_CLAMP
}

/* Whether the fast path computes this add: see above */
static int mf_add_fast_ok(const mf_add_params *p)
{
    return p->left_shift >= 8 && p->left_shift <= 22 && mf_add_in_fast_ok(&p->input1) &&
           mf_add_in_fast_ok(&p->input2) && p->output.multiplier >= 0 && p->output.shift <= -2 &&
           p->output.shift >= -31;
}

MF_ADD_NOINLINE void mf_add_fast(const mf_add_params *p, int32_t size, const int8_t *input1, const int8_t *input2,
                        int8_t *output)
{
    const mf_add_in_fast k1 = mf_add_in_fast_make(&p->input1, p->left_shift);
    const mf_add_in_fast k2 = mf_add_in_fast_make(&p->input2, p->left_shift);
    const int full = p->act_min == MF_INT8_MIN && p->act_max == MF_INT8_MAX;
    const int shift1 = p->input1.multiplier == 0x40000000 && p->input1.shift == 0;
    const int shift2 = p->input2.multiplier == 0x40000000 && p->input2.shift == 0;
    /* input a: the exact shift when one of them is (the add commutes: same int32 sum) */
    const int8_t *in_a = shift2 && !shift1 ? input2 : input1;
    const int8_t *in_b = shift2 && !shift1 ? input1 : input2;
    const int32_t zp_a = shift2 && !shift1 ? p->input2_zp : p->input1_zp;
    const int32_t zp_b = shift2 && !shift1 ? p->input1_zp : p->input2_zp;
    const mf_add_in_fast *ka = shift2 && !shift1 ? &k2 : &k1;
    const mf_add_in_fast *kb = shift2 && !shift1 ? &k1 : &k2;
    if (shift1 || shift2) {
        if (full) {
            mf_add_fast_loop(in_a, zp_a, in_b, zp_b, kb, p->left_shift, &p->output, p->output_zp, p->act_min,
                             p->act_max, size, output, 1, 1, ka);
        } else {
            mf_add_fast_loop(in_a, zp_a, in_b, zp_b, kb, p->left_shift, &p->output, p->output_zp, p->act_min,
                             p->act_max, size, output, 1, 0, ka);
        }
    } else if (full) {
        mf_add_fast_loop(in_a, zp_a, in_b, zp_b, kb, p->left_shift, &p->output, p->output_zp, p->act_min,
                         p->act_max, size, output, 0, 1, ka);
    } else {
        mf_add_fast_loop(in_a, zp_a, in_b, zp_b, kb, p->left_shift, &p->output, p->output_zp, p->act_min,
                         p->act_max, size, output, 0, 0, ka);
    }
}
#endif

mf_status mf_add_s8(const mf_add_params *params, int32_t size, const int8_t *input1, const int8_t *input2,
                    int8_t *output)
{
    if (params == NULL || input1 == NULL || input2 == NULL || output == NULL || size < 0 ||
        !mf_is_int8(params->input1_zp) || !mf_is_int8(params->input2_zp) || !mf_is_int8(params->output_zp) ||
        !mf_act_ok(params->act_min, params->act_max)) {
        return MF_ARG_ERROR;
    }
    {
        const int32_t zp1 = params->input1_zp;
        const int32_t zp2 = params->input2_zp;
        const int32_t output_zp = params->output_zp;
        const int32_t act_min = params->act_min;
        const int32_t act_max = params->act_max;
        int32_t i = 0;
#if MF_REQUANT_MODE == MF_REQUANT_FLOAT
        const float ratio1 = params->input1_scale / params->output_scale;
        const float ratio2 = params->input2_scale / params->output_scale;
        const mf_add_float k = {ratio1, ratio2, (float)output_zp - fmaf(ratio1, (float)zp1, ratio2 * (float)zp2),
                                (float)act_min, (float)act_max};
        if (!(params->input1_scale > 0.0f) || !(params->input2_scale > 0.0f) || !(params->output_scale > 0.0f)) {
            return MF_ARG_ERROR;
        }
#define MF_ADD_ONE(q1, q2) mf_add_float_one(&k, (q1), (q2))
#else
        /* TFLite: both inputs shifted left for headroom, rescaled to a common scale, summed, requantized. */
        const int32_t left_shift = params->left_shift;
        if (left_shift < 0 || left_shift > 22) {
            return MF_ARG_ERROR;
        }
        if (mf_add_fast_ok(params)) { /* TFLite's parameters */
            mf_add_fast(params, size, input1, input2, output);
            return MF_OK;
        }
        /* other parameters (a left shift, a small headroom, negative multipliers): the general arithmetic */
        for (i = 0; i < size; i++) {
            const int32_t a = ((int32_t)input1[i] - zp1) * (1 << left_shift);
            const int32_t b = ((int32_t)input2[i] - zp2) * (1 << left_shift);
            const int32_t a_scaled = mf_mbqm(a, params->input1.multiplier, params->input1.shift);
            const int32_t b_scaled = mf_mbqm(b, params->input2.multiplier, params->input2.shift);
            output[i] = (int8_t)mf_requant_fixed(mf_wrapping_add(a_scaled, b_scaled), params->output.multiplier,
                                                 params->output.shift, output_zp, act_min, act_max);
        }
        return MF_OK;
#endif
#if MF_REQUANT_MODE == MF_REQUANT_FLOAT
        /* four elements per iteration: one word load per input, one word store */
        for (; i + 4 <= size; i += 4) {
            uint32_t w1;
            uint32_t w2;
            uint32_t out;
            memcpy(&w1, input1 + i, sizeof(w1));
            memcpy(&w2, input2 + i, sizeof(w2));
            out = MF_ADD_ONE((int8_t)w1, (int8_t)w2);
            out |= MF_ADD_ONE((int8_t)(w1 >> 8), (int8_t)(w2 >> 8)) << 8;
            out |= MF_ADD_ONE((int8_t)(w1 >> 16), (int8_t)(w2 >> 16)) << 16;
            out |= MF_ADD_ONE((int8_t)(w1 >> 24), (int8_t)(w2 >> 24)) << 24;
            memcpy(output + i, &out, sizeof(out));
        }
        for (; i < size; i++) {
            output[i] = (int8_t)MF_ADD_ONE(input1[i], input2[i]);
        }
#undef MF_ADD_ONE
#endif
    }
    return MF_OK;
}
