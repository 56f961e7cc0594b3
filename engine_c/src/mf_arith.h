/*
 * Private: the requantization arithmetic, inline so that every kernel's inner loop calls no function per output
 * value. mf_requant.c exports the same functions under the public names of mcuforge.h (tests call those).
 *
 * Fixed mode is TFLite's MultiplyByQuantizedMultiplier, bit for bit:
 *   SaturatingRoundingDoublingHighMul: (a * b + nudge) / 2^31 with C's truncating division, nudge = 2^30 for a
 *   non-negative product, 1 - 2^30 otherwise; INT32_MIN * INT32_MIN saturates to INT32_MAX.
 *   RoundingDivideByPOT: x / 2^exponent rounded to nearest, ties away from zero.
 * The 32x32->64 product compiles to one SMULL on Cortex-M3/M4/M7. Right shifts of negative values are arithmetic
 * (GCC and Clang define them so; the Arm C Language Extensions require it).
 */
#ifndef MF_ARITH_H
#define MF_ARITH_H

#include "mcuforge.h"

static inline int32_t mf_srdhm(int32_t a, int32_t b)
{
    int64_t ab;
    if (a == INT32_MIN && b == INT32_MIN) {
        return INT32_MAX;
    }
    ab = (int64_t)a * (int64_t)b;
    if (ab >= 0) {
        return (int32_t)((ab + ((int64_t)1 << 30)) >> 31);
    }
    /* truncating division of a negative sum: floor((x + 2^31 - 1) / 2^31) */
    return (int32_t)((ab + (1 - ((int64_t)1 << 30)) + (((int64_t)1 << 31) - 1)) >> 31);
}

static inline int32_t mf_rounding_divide_by_pot(int32_t x, int32_t exponent)
{
    const int32_t mask = (int32_t)(((uint32_t)1 << exponent) - 1u);
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

/* MultiplyByQuantizedMultiplier for a right shift by e = -shift in [1, 31], bit for bit, as one 64-bit sum and one
 * shift (SMLAL + ASR on Cortex-M3/M4/M7). SRDHM is x = floor((ab + 2^30) / 2^31) for both signs of ab = a * b (the
 * truncating division of TFLite's negative branch is that floor), and RoundingDivideByPOT rounds half away from
 * zero: floor((x + 2^(e-1) - s) / 2^e) with s = [x < 0]. Nested floors of integer divisions compose, so the result
 * is floor((ab + 2^30 + 2^(30+e) - s * 2^31) / 2^(31+e)), the high word of that sum shifted right by e - 1. s may be
 * taken as the sign of a ^ b: where the two differ (-2^30 <= ab <= 0, x = 0) the result is 0 with either
 * (e >= 1). INT32_MIN * INT32_MIN needs no case: TFLite's saturated INT32_MAX and this sum's 2^31 divide by 2^e,
 * rounded, to the same value. tests/engine/test_requant.py compares it with TFLite's two-step arithmetic. */
static inline uint64_t mf_mbqm_round(int32_t e)
{
    const uint32_t pow2 = (uint32_t)1 << e;
    return ((uint64_t)(pow2 >> 2) << 32) | ((pow2 << 30) | 0x40000000u); /* 2^30 + 2^(30+e) */
}

/* mf_mbqm_right with its constants given: round = mf_mbqm_round(e), rshift = e - 1 (kernels compute them once per
 * output channel, not once per output value). */
static inline int32_t mf_mbqm_right_with(int32_t x, int32_t multiplier, uint64_t round, int32_t rshift)
{
    const uint32_t neg = (uint32_t)((x ^ multiplier) >> 31); /* 0 or all ones: -s * 2^31 is {lo: neg << 31, hi: neg} */
    const uint64_t sum = round + (((uint64_t)neg << 32) | (uint64_t)(neg << 31)) +
                         (uint64_t)((int64_t)x * (int64_t)multiplier);
    return (int32_t)(uint32_t)(sum >> 32) >> rshift;
}

static inline int32_t mf_mbqm_right(int32_t x, int32_t multiplier, int32_t e)
{
    return mf_mbqm_right_with(x, multiplier, mf_mbqm_round(e), e - 1);
}

/* mf_mbqm_right(x, multiplier, e) for e >= 2 and multiplier >= 0 (then the sign of x ^ multiplier is that of x), with
 * r = e - 1 and c = 2^(e-2) given: the 64-bit sum starts at hi = c - s, lo = 2^30 + s * 2^31 (s = [x < 0]; together
 * mf_mbqm_round(e) - s * 2^31), one SMLAL adds x * multiplier, the high word is shifted right by r. */
static inline int32_t mf_mbqm_right_fast(int32_t x, int32_t multiplier, uint32_t c, int32_t r)
{
    const uint32_t hi = c + (uint32_t)(x >> 31);
    const uint32_t lo = ((uint32_t)x & 0x80000000u) | 0x40000000u;
    const uint64_t sum = (((uint64_t)hi << 32) | lo) + (uint64_t)((int64_t)x * (int64_t)multiplier);
    return (int32_t)(uint32_t)(sum >> 32) >> r;
}

/* ADD's input rescale mf_mbqm(d * 2^ls, m, -e) for d = q - zp in [-255, 255], 8 <= ls <= 22, 0 <= e <= 31 and
 * m >= 0 (mf_add_in_fast_ok), exactly in 32-bit arithmetic (mf_add_s8.c; checked against TFLite's two-step arithmetic
 * by tests/engine/requant_compare.c for every d): SRDHM(d * 2^ls, m) = floor((d * m + 2^(k-1)) / 2^k) with k = 31 - ls (mf_srdhm is floor((ab + 2^30) / 2^31);
 * |d * 2^ls| < 2^31, so never INT32_MIN), and with m = m_hi * 2^k + m_lo that is d * m_hi + floor((d * m_lo +
 * 2^(k-1)) / 2^k), both products below 2^31 for 8 <= ls <= 22; RoundingDivideByPOT by 2^e is
 * floor((x + 2^(e-1) - [x < 0]) / 2^e) (x itself for e = 0: half and sign mask 0). */
typedef struct {
    int32_t m_hi;
    int32_t m_lo;
    int32_t half_k; /* 2^(k-1) */
    int32_t k;
    int32_t half_e; /* 2^(e-1), 0 for e = 0 */
    uint32_t sign_mask; /* 1, 0 for e = 0 */
    int32_t e;
} mf_add_in_fast;

static inline int mf_add_in_fast_ok(const mf_requant *r)
{
    return r->multiplier >= 0 && r->shift <= 0 && r->shift >= -31;
}

static inline mf_add_in_fast mf_add_in_fast_make(const mf_requant *r, int32_t left_shift)
{
    mf_add_in_fast k;
    k.k = 31 - left_shift;
    k.m_hi = r->multiplier >> k.k;
    k.m_lo = r->multiplier & (int32_t)(((uint32_t)1 << k.k) - 1u);
    k.half_k = (int32_t)((uint32_t)1 << (k.k - 1));
    k.e = -r->shift;
    k.half_e = k.e > 0 ? (int32_t)((uint32_t)1 << (k.e - 1)) : 0;
    k.sign_mask = k.e > 0 ? 1u : 0u;
    return k;
}

static inline int32_t mf_add_in_fast_apply(int32_t d, const mf_add_in_fast *k)
{
    const int32_t x = d * k->m_hi + ((d * k->m_lo + k->half_k) >> k->k);
    return (x + k->half_e - (int32_t)(((uint32_t)x >> 31) & k->sign_mask)) >> k->e;
}

static inline int32_t mf_mbqm(int32_t x, int32_t multiplier, int32_t shift)
{
    if (shift < 0) {
        return mf_mbqm_right(x, multiplier, -shift);
    }
    if (shift > 0) {
        /* the left shift saturates to the int32 range (TFLite leaves this overflow undefined) */
        const int64_t shifted = (int64_t)x * ((int64_t)1 << shift);
        const int32_t sat = shifted > INT32_MAX ? INT32_MAX : (shifted < INT32_MIN ? INT32_MIN : (int32_t)shifted);
        return mf_srdhm(sat, multiplier);
    }
    return mf_srdhm(x, multiplier);
}

static inline int32_t mf_clamp32(int32_t v, int32_t lo, int32_t hi)
{
    return v < lo ? lo : (v > hi ? hi : v);
}

/* v saturated to [-128, 127]: one SSAT where the core has it (Armv7-M and later; GCC does not find it in the
 * compares) */
#if defined(__ARM_FEATURE_SAT) && __ARM_FEATURE_SAT
#include <arm_acle.h>
static inline int32_t mf_sat8(int32_t v)
{
    return __ssat(v, 8);
}
#else
static inline int32_t mf_sat8(int32_t v)
{
    return v < -128 ? -128 : (v > 127 ? 127 : v);
}
#endif

static inline int32_t mf_requant_fixed(int32_t acc, int32_t multiplier, int32_t shift, int32_t zp, int32_t qmin,
                                       int32_t qmax)
{
    const int32_t scaled = mf_mbqm(acc, multiplier, shift);
    /* scaled + zp may leave the int32 range only when it is far outside [qmin, qmax] anyway */
    if (scaled > qmax - zp) {
        return qmax;
    }
    if (scaled < qmin - zp) {
        return qmin;
    }
    return scaled + zp;
}

/* mf_requant_fixed, bit for bit, with the usual right shift inline and without branches but the clamp (|scaled|
 * <= 2^30 for a right shift, so zp may be added before the clamp), and the rare left shift (or none) out of line:
 * the kernels' inner loops keep fewer registers for it. */
#if defined(__GNUC__)
#define MF_COLD static __attribute__((noinline, cold, unused))
#else
#define MF_COLD static
#endif

/* mf_requant_fixed out of line (a static function: the compiler knows which registers it uses) */
MF_COLD int32_t mf_requant_fixed_cold(int32_t acc, int32_t multiplier, int32_t shift, int32_t zp, int32_t qmin,
                                      int32_t qmax)
{
    return mf_requant_fixed(acc, multiplier, shift, zp, qmin, qmax);
}

static inline int32_t mf_requant_fixed_fast(int32_t acc, int32_t multiplier, int32_t shift, int32_t zp, int32_t qmin,
                                            int32_t qmax)
{
    if (shift < 0) {
        const int32_t v = mf_mbqm_right(acc, multiplier, -shift) + zp;
        return v < qmin ? qmin : (v > qmax ? qmax : v);
    }
    return mf_requant_fixed_cold(acc, multiplier, shift, zp, qmin, qmax);
}

#if MF_REQUANT_MODE == MF_REQUANT_FLOAT
/* Round to nearest, ties to even: adding 1.5 * 2^23 leaves no fraction bits, the FPU rounds in its default mode
 * and the integer sits in the low mantissa bits. Valid for |v| <= 2^22. */
static inline int32_t mf_round_half_even_f(float v)
{
    union {
        float f;
        uint32_t u;
    } bits;
    bits.f = v + 12582912.0f;
    return (int32_t)bits.u - (int32_t)0x4B400000;
}

/* ONNX Runtime's QLinearConv requantization: float32 acc * scale, clamped to [qmin - zp, qmax - zp], rounded half
 * to even, + zp. */
static inline int32_t mf_requant_float(int32_t acc, float scale, int32_t zp, int32_t qmin, int32_t qmax)
{
    const float lo = (float)(qmin - zp);
    const float hi = (float)(qmax - zp);
    float v = (float)acc * scale;
    if (v < lo) {
        v = lo;
    }
    if (v > hi) {
        v = hi;
    }
    return mf_round_half_even_f(v) + zp;
}
#endif

#endif /* MF_ARITH_H */
