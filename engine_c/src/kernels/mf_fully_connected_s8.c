/* Fully connected layer: one int32 dot product per (row, output feature). */
#include "../mf_internal.h"

mf_status mf_fully_connected_s8(const mf_fc_params *params, const mf_quant_params *quant, const mf_dims *input_dims,
                                const int8_t *input, const mf_dims *filter_dims, const int8_t *filter,
                                const int32_t *bias, const mf_dims *output_dims, int8_t *output)
{
    if (params == NULL || !mf_quant_ok(quant) || !mf_dims_ok(input_dims) || !mf_dims_ok(filter_dims) ||
        !mf_dims_ok(output_dims) || input == NULL || filter == NULL || output == NULL || input_dims->w != 1 ||
        filter_dims->w != 1 || output_dims->w != 1 || filter_dims->c != input_dims->c ||
        output_dims->h != input_dims->h || output_dims->c != filter_dims->h || !mf_is_int8(params->input_zp) ||
        !mf_is_int8(params->output_zp) || !mf_act_ok(params->act_min, params->act_max)) {
        return MF_ARG_ERROR;
    }
    {
        const int32_t batches = input_dims->h;
        const int32_t in_features = input_dims->c;
        const int32_t out_features = output_dims->c;
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
