/* Element-wise add with both inputs rescaled to the output scale. */
#include "../mf_internal.h"

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
        int32_t i;
#if MF_REQUANT_MODE == MF_REQUANT_FLOAT
        /* MLAS (AVX2 QLinearAdd kernel): float sum of the dequantized inputs, divided by the output scale,
         * rounded half to even, clamped, plus the zero point. Clamping before rounding is the same for
         * integer bounds. */
        const float scale1 = params->input1_scale;
        const float scale2 = params->input2_scale;
        const float output_scale = params->output_scale;
        const float lo = (float)(act_min - output_zp);
        const float hi = (float)(act_max - output_zp);
        if (!(scale1 > 0.0f) || !(scale2 > 0.0f) || !(output_scale > 0.0f)) {
            return MF_ARG_ERROR;
        }
        for (i = 0; i < size; i++) {
            const float a = (float)((int32_t)input1[i] - zp1) * scale1;
            const float b = (float)((int32_t)input2[i] - zp2) * scale2;
            float v = (a + b) / output_scale;
            if (v < lo) {
                v = lo;
            }
            if (v > hi) {
                v = hi;
            }
            output[i] = (int8_t)(mf_round_half_even(v) + output_zp);
        }
#else
        /* TFLite: both inputs shifted left for headroom, rescaled to a common scale, summed, requantized. */
        const int32_t left_shift = params->left_shift;
        if (left_shift < 0 || left_shift > 22) {
            return MF_ARG_ERROR;
        }
        for (i = 0; i < size; i++) {
            const int32_t a = ((int32_t)input1[i] - zp1) * (1 << left_shift);
            const int32_t b = ((int32_t)input2[i] - zp2) * (1 << left_shift);
            const int32_t a_scaled =
                mf_multiply_by_quantized_multiplier(a, params->input1.multiplier, params->input1.shift);
            const int32_t b_scaled =
                mf_multiply_by_quantized_multiplier(b, params->input2.multiplier, params->input2.shift);
            output[i] = (int8_t)mf_requantize_fixed(mf_wrapping_add(a_scaled, b_scaled), params->output.multiplier,
                                                    params->output.shift, output_zp, act_min, act_max);
        }
#endif
    }
    return MF_OK;
}
