/* Softmax with ONNX Runtime's QLinearSoftmax lookup-table arithmetic, and argmax. */
#include "../mf_internal.h"

/* Round half to even of a float in [-2^22, 2^22] (the same magic-number trick as mf_round_half_even,
 * repeated here because softmax uses float in both requantization modes). */
static int32_t mf_softmax_round(float v)
{
    union {
        float f;
        uint32_t u;
    } bits;
    bits.f = v + 12582912.0f;
    return (int32_t)bits.u - (int32_t)0x4B400000;
}

mf_status mf_softmax_s8(const mf_softmax_params *params, const mf_dims *dims, const int8_t *input, int8_t *output)
{
    if (params == NULL || params->exp_table == NULL || !mf_dims_ok(dims) || input == NULL || output == NULL ||
        !mf_is_int8(params->output_zp) || !(params->output_scale_recip >= 0.0f) ||
        !(params->output_scale_recip <= 3.0e38f)) {
        return MF_ARG_ERROR;
    }
    {
        const float *exp_table = params->exp_table;
        const float output_scale_recip = params->output_scale_recip;
        const int32_t output_zp = params->output_zp;
        const size_t rows = (size_t)dims->h * (size_t)dims->w;
        const int32_t depth = dims->c;
        size_t row;
        for (row = 0; row < rows; row++) {
            const int8_t *in_row = input + row * (size_t)depth;
            int8_t *out_row = output + row * (size_t)depth;
            const float zp = (float)output_zp;
            int32_t max_value = MF_INT8_MIN;
            float sum = 0.0f;
            float scale;
            int32_t i;
            for (i = 0; i < depth; i++) {
                if (in_row[i] > max_value) {
                    max_value = in_row[i];
                }
            }
            for (i = 0; i < depth; i++) {
                sum += exp_table[(int32_t)in_row[i] - max_value + 255];
            }
            if (!(sum > 0.0f)) {
                return MF_ARG_ERROR;
            }
            /* Like MLAS's vector kernels: one reciprocal of the sum, then a multiply per element (no overflow,
             * unlike e * recip / sum). */
            scale = (1.0f / sum) * output_scale_recip;
            for (i = 0; i < depth; i++) {
                float v = exp_table[(int32_t)in_row[i] - max_value + 255] * scale + zp;
                if (v < (float)MF_INT8_MIN) {
                    v = (float)MF_INT8_MIN;
                }
                if (v > (float)MF_INT8_MAX) {
                    v = (float)MF_INT8_MAX;
                }
                out_row[i] = (int8_t)mf_softmax_round(v);
            }
        }
    }
    return MF_OK;
}

mf_status mf_argmax_s8(const int8_t *input, int32_t size, int32_t *index)
{
    int32_t best = 0;
    int32_t i;
    if (input == NULL || index == NULL || size <= 0) {
        return MF_ARG_ERROR;
    }
    for (i = 1; i < size; i++) {
        if (input[i] > input[best]) {
            best = i;
        }
    }
    *index = best;
    return MF_OK;
}
