/* Depthwise convolution with depth multiplier 1: output channel c only reads input channel c. */
#include "../mf_internal.h"

mf_status mf_depthwise_conv2d_s8(const mf_conv_params *params, const mf_quant_params *quant,
                                 const mf_dims *input_dims, const int8_t *input, const mf_dims *filter_dims,
                                 const int8_t *filter, const int32_t *bias, const mf_dims *output_dims,
                                 int8_t *output)
{
    if (!mf_conv_params_ok(params) || !mf_quant_ok(quant) || !mf_dims_ok(input_dims) ||
        !mf_dims_ok(filter_dims) || !mf_dims_ok(output_dims) || input == NULL || !mf_depthwise_filter_ok(filter) ||
        output == NULL || filter_dims->c != input_dims->c || output_dims->c != input_dims->c) {
        return MF_ARG_ERROR;
    }
    if (!mf_conv_out_dims_ok(params, input_dims, filter_dims, output_dims)) {
        return MF_ARG_ERROR;
    }
    {
        const mf_conv_stage stage = {*params, *quant, *filter_dims, filter, bias};
        const size_t row_out = (size_t)output_dims->w * (size_t)output_dims->c;
        int32_t out_y;
        for (out_y = 0; out_y < output_dims->h; out_y++) {
            mf_depthwise_row_s8(&stage, input, input_dims->h, input_dims->h, input_dims->w, input_dims->c, out_y,
                                output_dims->w, output + (size_t)out_y * row_out);
        }
    }
    return MF_OK;
}
