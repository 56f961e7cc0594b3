/*
 * Kernels whose arithmetic is TensorFlow Lite Micro's reference kernels' (tensorflow/lite/kernels/internal/
 * reference/integer_ops/pooling.h and reference/softmax.h with gemmlowp's fixedpoint.h), for imported .tflite
 * models. Integer only, in both requantization modes. Checked byte for byte against the tflite-micro interpreter
 * by tests/test_tflite.py.
 */
#include "../mf_internal.h"

mf_status mf_avgpool_tflm_s8(const mf_pool_params *params, const mf_dims *input_dims, const int8_t *input,
                             const mf_dims *output_dims, int8_t *output)
{
    if (params == NULL || !mf_dims_ok(input_dims) || !mf_dims_ok(output_dims) || input == NULL ||
        output == NULL || params->kernel.h <= 0 || params->kernel.w <= 0 || params->stride.h <= 0 ||
        params->stride.w <= 0 || params->padding.top < 0 || params->padding.left < 0 ||
        !mf_act_ok(params->act_min, params->act_max) || output_dims->c != input_dims->c) {
        return MF_ARG_ERROR;
    }
    {
        const int32_t in_h = input_dims->h;
        const int32_t in_w = input_dims->w;
        const int32_t channels = input_dims->c;
        const int32_t out_h = output_dims->h;
        const int32_t out_w = output_dims->w;
        const int32_t act_min = params->act_min;
        const int32_t act_max = params->act_max;
        int32_t out_y;
        for (out_y = 0; out_y < out_h; out_y++) {
            const int32_t y_origin = out_y * params->stride.h - params->padding.top;
            const int32_t y_start = y_origin > 0 ? y_origin : 0;
            const int32_t y_end = (y_origin + params->kernel.h) < in_h ? (y_origin + params->kernel.h) : in_h;
            int32_t out_x;
            for (out_x = 0; out_x < out_w; out_x++) {
                const int32_t x_origin = out_x * params->stride.w - params->padding.left;
                const int32_t x_start = x_origin > 0 ? x_origin : 0;
                const int32_t x_end = (x_origin + params->kernel.w) < in_w ? (x_origin + params->kernel.w) : in_w;
                const int32_t count = (y_end - y_start) * (x_end - x_start);
                int8_t *out_pixel = output + ((size_t)out_y * (size_t)out_w + (size_t)out_x) * (size_t)channels;
                int32_t ch;
                if (count <= 0) {
                    return MF_ARG_ERROR;
                }
                for (ch = 0; ch < channels; ch++) {
                    int32_t acc = 0;
                    int32_t y;
                    for (y = y_start; y < y_end; y++) {
                        int32_t x;
                        for (x = x_start; x < x_end; x++) {
                            acc += input[((size_t)y * (size_t)in_w + (size_t)x) * (size_t)channels + (size_t)ch];
                        }
                    }
                    /* TFLM: the raw int8 sum (no zero point, input and output share it), divided by the count with
                     * C's truncating division after adding +-count/2: round half away from zero. */
                    acc = acc > 0 ? (acc + count / 2) / count : (acc - count / 2) / count;
                    if (acc < act_min) {
                        acc = act_min;
                    }
                    if (acc > act_max) {
                        acc = act_max;
                    }
                    out_pixel[ch] = (int8_t)acc;
                }
            }
        }
    }
    return MF_OK;
}

/* ---- gemmlowp fixed point (int32 raw values), as TFLite's reference softmax uses it ------------------------- */

static int32_t mf_fp_add(int32_t a, int32_t b)
{
    return mf_wrapping_add(a, b);
}

static int32_t mf_fp_sub(int32_t a, int32_t b)
{
    return (int32_t)((uint32_t)a - (uint32_t)b);
}

static int32_t mf_fp_rounding_divide_by_pot(int32_t x, int32_t exponent)
{
    const int32_t mask = (int32_t)(((int64_t)1 << exponent) - 1);
    const int32_t remainder = (int32_t)((uint32_t)x & (uint32_t)mask);
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    const int32_t floor_value = (int32_t)(x >= 0 ? x >> exponent : -((-((int64_t)x + 1)) >> exponent) - 1);
    return floor_value + (remainder > threshold ? 1 : 0);
}

/* SaturatingRoundingMultiplyByPOT with a positive exponent: a saturating left shift. */
static int32_t mf_fp_saturating_shift_left(int32_t x, int32_t exponent)
{
    const int32_t threshold = (int32_t)(((int64_t)1 << (31 - exponent)) - 1);
    if (x > threshold) {
        return INT32_MAX;
    }
    if (x < -threshold) {
        return INT32_MIN;
    }
    return (int32_t)((uint32_t)x << exponent);
}

/* exp(a) for a in [-1/4, 0), 0 integer bits in and out: exp(-1/8) * (1 + x + x^2/2 + x^3/6 + x^4/24), x = a + 1/8. */
static int32_t mf_fp_exp_quarter(int32_t a)
{
    const int32_t constant_term = 1895147668;  /* exp(-1/8) */
    const int32_t constant_1_over_3 = 715827883;
    const int32_t x = mf_fp_add(a, 1 << 28);   /* a + 1/8 */
    const int32_t x2 = mf_srdhm(x, x);
    const int32_t x3 = mf_srdhm(x2, x);
    const int32_t x4 = mf_srdhm(x2, x2);
    const int32_t x4_over_4 = mf_fp_rounding_divide_by_pot(x4, 2);
    const int32_t poly =
        mf_fp_rounding_divide_by_pot(mf_fp_add(mf_srdhm(mf_fp_add(x4_over_4, x3), constant_1_over_3), x2), 1);
    return mf_fp_add(constant_term, mf_srdhm(constant_term, mf_fp_add(x, poly)));
}

/* exp(a) for a <= 0 with 5 integer bits (26 fractional); the result has 0 integer bits. */
static int32_t mf_fp_exp_on_negative_values(int32_t a)
{
    static const int32_t multipliers[7] = {1672461947, 1302514674, 790015084, 290630308, 39332535, 720401, 242};
    const int32_t fractional_bits = 26;
    const int32_t one_quarter = 1 << (fractional_bits - 2);
    const int32_t mask = one_quarter - 1;
    const int32_t a_mod_quarter_minus_one_quarter = mf_fp_sub((int32_t)((uint32_t)a & (uint32_t)mask), one_quarter);
    int32_t result = mf_fp_exp_quarter(mf_fp_saturating_shift_left(a_mod_quarter_minus_one_quarter, 5));
    const int32_t remainder = mf_fp_sub(a_mod_quarter_minus_one_quarter, a);
    int32_t exponent;
    for (exponent = -2; exponent <= 4; exponent++) { /* kIntegerBits (5) > exponent for all of them */
        if ((uint32_t)remainder & ((uint32_t)1 << (fractional_bits + exponent))) {
            result = mf_srdhm(result, multipliers[exponent + 2]);
        }
    }
    return a == 0 ? INT32_MAX : result;
}

/* 1 / (1 + a) for a in [0, 1), 0 integer bits in and out (Newton-Raphson, 3 iterations). */
static int32_t mf_fp_one_over_one_plus_x(int32_t a)
{
    const int64_t sum = (int64_t)a + INT32_MAX;
    const int32_t half_denominator = (int32_t)((sum + (sum >= 0 ? 1 : -1)) / 2); /* RoundingHalfSum */
    const int32_t constant_48_over_17 = 1515870810;   /* 2 integer bits */
    const int32_t constant_neg_32_over_17 = -1010580540;
    int32_t x = mf_fp_add(constant_48_over_17, mf_srdhm(half_denominator, constant_neg_32_over_17));
    int32_t i;
    for (i = 0; i < 3; i++) {
        const int32_t half_denominator_times_x = mf_srdhm(half_denominator, x);
        const int32_t one_minus = mf_fp_sub(1 << 29, half_denominator_times_x);
        x = mf_fp_add(x, mf_fp_saturating_shift_left(mf_srdhm(x, one_minus), 2));
    }
    return mf_fp_saturating_shift_left(x, 1);
}

static int32_t mf_count_leading_zeros(uint32_t x)
{
    int32_t n = 0;
    if (x == 0) {
        return 32;
    }
    while (!(x & 0x80000000u)) {
        x <<= 1;
        n++;
    }
    return n;
}

mf_status mf_softmax_tflm_s8(const mf_softmax_tflm_params *params, const mf_dims *dims, const int8_t *input,
                             int8_t *output)
{
    if (params == NULL || !mf_dims_ok(dims) || input == NULL || output == NULL || params->input_left_shift < 0 ||
        params->input_left_shift > 31) {
        return MF_ARG_ERROR;
    }
    {
        const size_t rows = (size_t)dims->h * (size_t)dims->w;
        const int32_t depth = dims->c;
        const int32_t input_multiplier = params->input_multiplier;
        const int32_t input_left_shift = params->input_left_shift;
        const int32_t diff_min = params->diff_min;
        size_t row;
        for (row = 0; row < rows; row++) {
            const int8_t *in_row = input + row * (size_t)depth;
            int8_t *out_row = output + row * (size_t)depth;
            int32_t max_in_row = MF_INT8_MIN;
            int32_t sum_of_exps = 0; /* 12 integer bits */
            int32_t headroom_plus_one;
            int32_t num_bits_over_unit;
            int32_t shifted_scale;
            int32_t c;
            for (c = 0; c < depth; c++) {
                if (in_row[c] > max_in_row) {
                    max_in_row = in_row[c];
                }
            }
            for (c = 0; c < depth; c++) {
                const int32_t diff = (int32_t)in_row[c] - max_in_row;
                if (diff >= diff_min) {
                    const int32_t rescaled = mf_srdhm(
                        (int32_t)((uint32_t)diff << input_left_shift), input_multiplier);
                    sum_of_exps = mf_fp_add(sum_of_exps,
                                            mf_fp_rounding_divide_by_pot(mf_fp_exp_on_negative_values(rescaled), 12));
                }
            }
            /* GetReciprocal(sum_of_exps, 12 integer bits) */
            headroom_plus_one = mf_count_leading_zeros((uint32_t)sum_of_exps);
            num_bits_over_unit = 12 - headroom_plus_one;
            shifted_scale = mf_fp_one_over_one_plus_x(
                (int32_t)(((uint32_t)sum_of_exps << headroom_plus_one) - ((uint32_t)1 << 31)));
            for (c = 0; c < depth; c++) {
                const int32_t diff = (int32_t)in_row[c] - max_in_row;
                if (diff >= diff_min) {
                    const int32_t rescaled = mf_srdhm(
                        (int32_t)((uint32_t)diff << input_left_shift), input_multiplier);
                    const int32_t exp_in_0 = mf_fp_exp_on_negative_values(rescaled);
                    const int32_t unsat = mf_fp_rounding_divide_by_pot(
                        mf_srdhm(shifted_scale, exp_in_0), num_bits_over_unit + 31 - 8);
                    int32_t shifted = unsat - 128;
                    if (shifted > MF_INT8_MAX) {
                        shifted = MF_INT8_MAX;
                    }
                    if (shifted < MF_INT8_MIN) {
                        shifted = MF_INT8_MIN;
                    }
                    out_row[c] = (int8_t)shifted;
                } else {
                    out_row[c] = MF_INT8_MIN;
                }
            }
        }
    }
    return MF_OK;
}
