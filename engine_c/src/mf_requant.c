/*
 * Requantization of int32 accumulators to int8, one function per mode (see mcuforge.h for the exact rounding of
 * each): the public names of the inline arithmetic in mf_arith.h, which the kernels use directly.
 */
#include "mf_arith.h"

#if MF_REQUANT_MODE == MF_REQUANT_FLOAT

int32_t mf_round_half_even(float v)
{
    return mf_round_half_even_f(v);
}

int32_t mf_requantize_float(int32_t acc, float scale, int32_t zp, int32_t qmin, int32_t qmax)
{
    return mf_requant_float(acc, scale, zp, qmin, qmax);
}

#endif /* MF_REQUANT_MODE == MF_REQUANT_FLOAT */

int32_t mf_saturating_rounding_doubling_high_mul(int32_t a, int32_t b)
{
    return mf_srdhm(a, b);
}

int32_t mf_multiply_by_quantized_multiplier(int32_t x, int32_t multiplier, int32_t shift)
{
    return mf_mbqm(x, multiplier, shift);
}

int32_t mf_requantize_fixed(int32_t acc, int32_t multiplier, int32_t shift, int32_t zp, int32_t qmin, int32_t qmax)
{
    return mf_requant_fixed(acc, multiplier, shift, zp, qmin, qmax);
}
