/* Pointwise (1x1, unpadded) convolution: one dot product of C_in per output value, through mf_pointwise_s8. */
#include "../mf_internal.h"

mf_status mf_conv2d_1x1_s8(const mf_conv_params *params, const mf_quant_params *quant, const mf_dims *input_dims,
                           const int8_t *input, const mf_dims *filter_dims, const int8_t *filter,
                           const int32_t *bias, const mf_dims *output_dims, int8_t *output)
{
    if (!mf_conv_params_ok(params) || !mf_quant_ok(quant) || !mf_dims_ok(input_dims) ||
        !mf_dims_ok(filter_dims) || !mf_dims_ok(output_dims) || input == NULL || filter == NULL ||
        output == NULL || filter_dims->c != input_dims->c) {
        return MF_ARG_ERROR;
    }
    if (filter_dims->h != 1 || filter_dims->w != 1 || params->padding.top != 0 || params->padding.left != 0 ||
        params->padding.bottom != 0 || params->padding.right != 0) {
        return MF_UNSUPPORTED;
    }
    {
        const int32_t in_w = input_dims->w;
        const int32_t in_c = input_dims->c;
        const int32_t out_h = output_dims->h;
        const int32_t out_w = output_dims->w;
        const int32_t out_c = output_dims->c;
        const int32_t stride_h = params->stride.h;
        const int32_t stride_w = params->stride.w;
        const mf_pointwise_args args = {filter, bias, quant, in_c, out_c, params->input_zp, params->output_zp,
                                        params->act_min, params->act_max};
        int32_t out_y;

        if (out_h != mf_window_out_size(input_dims->h, 0, 0, 1, 1, stride_h) ||
            out_w != mf_window_out_size(in_w, 0, 0, 1, 1, stride_w)) {
            return MF_ARG_ERROR;
        }
        if (stride_h == 1 && stride_w == 1) { /* one run of all the pixels */
            mf_pointwise_s8(&args, input, in_c, out_h * out_w, output);
            return MF_OK;
        }
        for (out_y = 0; out_y < out_h; out_y++) {
            mf_pointwise_s8(&args, input + (size_t)(out_y * stride_h) * (size_t)in_w * (size_t)in_c,
                            stride_w * in_c, out_w, output + (size_t)out_y * (size_t)out_w * (size_t)out_c);
        }
    }
    return MF_OK;
}
