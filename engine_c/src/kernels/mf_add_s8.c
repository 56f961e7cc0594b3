/* Element-wise add with both inputs rescaled to the output scale. */
#include "../mf_internal.h"

#if MF_REQUANT_MODE == MF_REQUANT_FLOAT
#include <math.h> /* fmaf: ORT's kernel uses fused multiply-adds */
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
        int32_t i;
#if MF_REQUANT_MODE == MF_REQUANT_FLOAT
        /* MLAS (MlasQLinearAddKernelAvx2Helper, what ORT runs on x86-64 with AVX2): with r1 = s1 / s_y,
         * r2 = s2 / s_y and fixed = (float)zp_y - fma(r1, zp1, r2 * zp2),
         * v = fma(q1, r1, fma(q2, r2, fixed)), rounded half to even and saturated. The fused multiply-adds
         * (single rounding) are needed for bit-exactness: C99 fmaf, one VFMA instruction on Cortex-M4F/M7. */
        const float ratio1 = params->input1_scale / params->output_scale;
        const float ratio2 = params->input2_scale / params->output_scale;
        const float fixed_part = (float)output_zp - fmaf(ratio1, (float)zp1, ratio2 * (float)zp2);
        const float lo = (float)act_min;
        const float hi = (float)act_max;
        if (!(params->input1_scale > 0.0f) || !(params->input2_scale > 0.0f) || !(params->output_scale > 0.0f)) {
            return MF_ARG_ERROR;
        }
        for (i = 0; i < size; i++) {
            float v = fmaf((float)input1[i], ratio1, fmaf((float)input2[i], ratio2, fixed_part));
            if (v < lo) {
                v = lo;
            }
            if (v > hi) {
                v = hi;
            }
            output[i] = (int8_t)mf_round_half_even(v);
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
                mf_mbqm(a, params->input1.multiplier, params->input1.shift);
            const int32_t b_scaled =
                mf_mbqm(b, params->input2.multiplier, params->input2.shift);
            output[i] = (int8_t)mf_requant_fixed(mf_wrapping_add(a_scaled, b_scaled), params->output.multiplier,
                                                    params->output.shift, output_zp, act_min, act_max);
        }
#endif
    }
    return MF_OK;
}
