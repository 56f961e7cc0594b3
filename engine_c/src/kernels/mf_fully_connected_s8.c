/* Fully connected layer: one int32 dot product per (row, output feature). */
#include "../mf_internal.h"

mf_status mf_fully_connected_s8(const mf_fc_params *params, const mf_quant_params *quant, int32_t batches,
                                int32_t in_features, int32_t out_features, const int8_t *input,
                                const int8_t *filter, const int32_t *bias, int8_t *output)
{
    if (params == NULL || !mf_quant_ok(quant) || input == NULL || filter == NULL || output == NULL ||
        batches <= 0 || in_features <= 0 || out_features <= 0 || !mf_is_int8(params->input_zp) ||
        !mf_is_int8(params->output_zp) || !mf_act_ok(params->act_min, params->act_max)) {
        return MF_ARG_ERROR;
    }
    {
        const int32_t input_zp = params->input_zp;
        const int32_t output_zp = params->output_zp;
        const int32_t act_min = params->act_min;
        const int32_t act_max = params->act_max;
        int32_t row;
        for (row = 0; row < batches; row++) {
            const int8_t *in_row = input + (size_t)row * (size_t)in_features;
            int8_t *out_row = output + (size_t)row * (size_t)out_features;
            mf_pointwise_pixel(in_row, in_features, filter, bias, quant, input_zp, output_zp, act_min, act_max,
                               out_features, out_row);
        }
    }
    return MF_OK;
}
