/* General int8 convolution, NHWC input, OHWI weights: small windows in mf_conv2d_window_s8.c, larger ones looping
 * directly over the input (no im2col). */
#include "../mf_internal.h"

mf_status mf_conv2d_s8(const mf_conv_params *params, const mf_quant_params *quant, const mf_dims *input_dims,
                       const int8_t *input, const mf_dims *filter_dims, const int8_t *filter,
                       const int32_t *bias, const mf_dims *output_dims, int8_t *output)
{
    if (!mf_conv_params_ok(params) || !mf_quant_ok(quant) || !mf_dims_ok(input_dims) ||
        !mf_dims_ok(filter_dims) || !mf_dims_ok(output_dims) || input == NULL || filter == NULL ||
        output == NULL || filter_dims->c != input_dims->c ||
        !mf_conv_out_dims_ok(params, input_dims, filter_dims, output_dims)) {
        return MF_ARG_ERROR;
    }
    if ((int64_t)filter_dims->h * filter_dims->w * filter_dims->c <= MF_CONV2D_WINDOW_MAX) {
        return mf_conv2d_window_s8(params, quant, input_dims, input, filter_dims, filter, bias, output_dims, output);
    }
    {
    const int32_t in_h = input_dims->h;
    const int32_t in_w = input_dims->w;
    const int32_t in_c = input_dims->c;
    const int32_t k_h = filter_dims->h;
    const int32_t k_w = filter_dims->w;
    const int32_t out_h = output_dims->h;
    const int32_t out_w = output_dims->w;
    const int32_t out_c = output_dims->c;
    const int32_t stride_h = params->stride.h;
    const int32_t stride_w = params->stride.w;
    const int32_t dil_h = params->dilation.h;
    const int32_t dil_w = params->dilation.w;
    const int32_t pad_top = params->padding.top;
    const int32_t pad_left = params->padding.left;
    const int32_t input_zp = params->input_zp;
    const int32_t output_zp = params->output_zp;
    const int32_t act_min = params->act_min;
    const int32_t act_max = params->act_max;
    int32_t out_y;

    for (out_y = 0; out_y < out_h; out_y++) {
        const int32_t in_y_origin = out_y * stride_h - pad_top;
        int32_t y_first;
        int32_t y_end;
        int32_t out_x;
        mf_window_taps(in_y_origin, dil_h, k_h, in_h, &y_first, &y_end);
        for (out_x = 0; out_x < out_w; out_x++) {
            const int32_t in_x_origin = out_x * stride_w - pad_left;
            int8_t *out_pixel = output + ((size_t)out_y * (size_t)out_w + (size_t)out_x) * (size_t)out_c;
            int32_t x_first;
            int32_t x_end;
            int32_t y_stop;
            int32_t out_ch;
            mf_window_taps(in_x_origin, dil_w, k_w, in_w, &x_first, &x_end);
            y_stop = x_first < x_end ? y_end : y_first; /* no tap inside the input: bias only */
            for (out_ch = 0; out_ch < out_c; out_ch++) {
                const int8_t *filter_ch = filter + (size_t)out_ch * (size_t)k_h * (size_t)k_w * (size_t)in_c;
                int32_t acc = 0;
                int32_t k_y;
                for (k_y = y_first; k_y < y_stop; k_y++) {
                    const int32_t in_y = in_y_origin + k_y * dil_h;
                    const int8_t *in_pixel =
                        input + ((size_t)in_y * (size_t)in_w + (size_t)(in_x_origin + x_first * dil_w)) *
                                    (size_t)in_c;
                    const int8_t *weights = filter_ch + ((size_t)k_y * (size_t)k_w + (size_t)x_first) * (size_t)in_c;
                    int32_t k_x;
                    for (k_x = x_first; k_x < x_end; k_x++) {
                        int32_t in_ch;
                        for (in_ch = 0; in_ch < in_c; in_ch++) {
                            acc += ((int32_t)in_pixel[in_ch] - input_zp) * (int32_t)weights[in_ch];
                        }
                        in_pixel += (size_t)dil_w * (size_t)in_c;
                        weights += in_c;
                    }
                }
                if (bias != NULL) {
                    acc = mf_wrapping_add(acc, bias[out_ch]);
                }
                out_pixel[out_ch] = mf_requant_channel(acc, quant, out_ch, output_zp, act_min, act_max);
            }
        }
    }
}
    return MF_OK;
}
