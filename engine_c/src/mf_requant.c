/*
 * Requantization of int32 accumulators to int8, one function per mode (see mcuforge.h for the exact
 * rounding of each).
 */
#include "mcuforge.h"

#if MF_REQUANT_MODE == MF_REQUANT_FLOAT

int32_t mf_round_half_even(float v)
{
    /* Adding 1.5 * 2^23 leaves no fraction bits: the FPU rounds to nearest, ties to even (the default
     * mode), and the integer sits in the low mantissa bits. Valid for |v| <= 2^22. */
    union {
        float f;
        uint32_t u;
    } bits;
    bits.f = v + 12582912.0f;
    return (int32_t)bits.u - (int32_t)0x4B400000;
}

int32_t mf_requantize_float(int32_t acc, float scale, int32_t zp, int32_t qmin, int32_t qmax)
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
    return mf_round_half_even(v) + zp;
}

#endif /* MF_REQUANT_MODE == MF_REQUANT_FLOAT */

/* Floor of x / 2^exponent without relying on the implementation-defined shift of negative values. */
static int64_t mf_floor_shift(int64_t x, int32_t exponent)
{
    if (x >= 0) {
        return x >> exponent;
    }
    return -((-(x + 1)) >> exponent) - 1;
}

int32_t mf_saturating_rounding_doubling_high_mul(int32_t a, int32_t b)
{
    int64_t ab;
    if (a == INT32_MIN && b == INT32_MIN) {
        return INT32_MAX;
    }
    ab = (int64_t)a * (int64_t)b;
    /* TFLite: (ab + nudge) / 2^31 with C's truncating division; nudge = 2^30 or 1 - 2^30. */
    if (ab >= 0) {
        return (int32_t)((ab + ((int64_t)1 << 30)) >> 31);
    }
    return (int32_t)(-((-ab + ((int64_t)1 << 30) - 1) >> 31));
}

static int32_t mf_rounding_divide_by_pot(int32_t x, int32_t exponent)
{
    const int64_t mask = ((int64_t)1 << exponent) - 1;
    const int64_t remainder = (int64_t)x - mf_floor_shift(x, exponent) * ((int64_t)1 << exponent);
    const int64_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (int32_t)(mf_floor_shift(x, exponent) + (remainder > threshold ? 1 : 0));
}

int32_t mf_multiply_by_quantized_multiplier(int32_t x, int32_t multiplier, int32_t shift)
{
    const int32_t left_shift = shift > 0 ? shift : 0;
    const int32_t right_shift = shift > 0 ? 0 : -shift;
    int64_t shifted = (int64_t)x * ((int64_t)1 << left_shift);
    if (shifted > INT32_MAX) {
        shifted = INT32_MAX;
    }
    if (shifted < INT32_MIN) {
        shifted = INT32_MIN;
    }
    return mf_rounding_divide_by_pot(mf_saturating_rounding_doubling_high_mul((int32_t)shifted, multiplier),
                                     right_shift);
}

int32_t mf_requantize_fixed(int32_t acc, int32_t multiplier, int32_t shift, int32_t zp, int32_t qmin,
                            int32_t qmax)
{
    int64_t v = (int64_t)mf_multiply_by_quantized_multiplier(acc, multiplier, shift) + zp;
    if (v < qmin) {
        v = qmin;
    }
    if (v > qmax) {
        v = qmax;
    }
    return (int32_t)v;
}
