/* Depthwise convolution over its own input (NHWC, depth multiplier 1), byte-identical to mf_depthwise_conv2d_s8.
 *
 * Output row out_y needs input rows from max(0, out_y * stride_h - pad_top) on, and input reads only move forward
 * as out_y grows. Output rows are computed into a ring of rows in scratch; the oldest pending row j is copied to
 * its final place data[j * row_out, (j + 1) * row_out) as soon as that range ends at or before the first input
 * byte still needed. The rows pending at once (the scratch size) follow from the same walk, done by
 * mf_depthwise_conv2d_inplace_s8_get_buffer_size and mirrored by tasks/planner.py:inplace_scratch_rows. */
#include <string.h>

#include "../mf_internal.h"

static int32_t mf_inplace_rows(int32_t in_w, int32_t out_h, int32_t out_w, int32_t channels, int32_t stride_h,
                               int32_t pad_top)
{
    const int32_t row_in = in_w * channels;
    const int32_t row_out = out_w * channels;
    int32_t flushed = 0;
    int32_t rows = 0;
    int32_t out_y;
    for (out_y = 0; out_y < out_h; out_y++) {
        const int32_t first_row = out_y * stride_h - pad_top;
        const int32_t need = (first_row > 0 ? first_row : 0) * row_in;
        while (flushed < out_y && (flushed + 1) * row_out <= need) {
            flushed++;
        }
        if (out_y - flushed + 1 > rows) {
            rows = out_y - flushed + 1;
        }
    }
    return rows;
}

static int mf_inplace_dims_ok(const mf_conv_params *params, const mf_dims *input_dims, const mf_dims *output_dims)
{
    return params != NULL && mf_dims_ok(input_dims) && mf_dims_ok(output_dims) &&
           output_dims->c == input_dims->c && output_dims->h <= input_dims->h && output_dims->w <= input_dims->w &&
           params->stride.h > 0 && params->padding.top >= 0;
}

int32_t mf_depthwise_conv2d_inplace_s8_get_buffer_size(const mf_conv_params *params, const mf_dims *input_dims,
                                                       const mf_dims *output_dims)
{
    if (!mf_inplace_dims_ok(params, input_dims, output_dims)) {
        return 0;
    }
    return mf_inplace_rows(input_dims->w, output_dims->h, output_dims->w, output_dims->c, params->stride.h,
                           params->padding.top) * output_dims->w * output_dims->c;
}

mf_status mf_depthwise_conv2d_inplace_s8(const mf_conv_params *params, const mf_quant_params *quant,
                                         const mf_dims *input_dims, int8_t *data, const mf_dims *filter_dims,
                                         const int8_t *filter, const int32_t *bias, const mf_dims *output_dims,
                                         int8_t *scratch, int32_t scratch_bytes)
{
    if (!mf_conv_params_ok(params) || !mf_quant_ok(quant) || !mf_inplace_dims_ok(params, input_dims, output_dims) ||
        !mf_dims_ok(filter_dims) || data == NULL || filter == NULL || scratch == NULL ||
        filter_dims->c != input_dims->c) {
        return MF_ARG_ERROR;
    }
    {
        const int32_t in_h = input_dims->h;
        const int32_t in_w = input_dims->w;
        const int32_t channels = input_dims->c;
        const int32_t k_h = filter_dims->h;
        const int32_t k_w = filter_dims->w;
        const int32_t out_h = output_dims->h;
        const int32_t out_w = output_dims->w;
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
        const size_t row_in = (size_t)in_w * (size_t)channels;
        const size_t row_out = (size_t)out_w * (size_t)channels;
        const int32_t ring = mf_inplace_rows(in_w, out_h, out_w, channels, stride_h, pad_top);
        int32_t flushed = 0;
        int32_t out_y;

        if (out_h != mf_window_out_size(in_h, pad_top, params->padding.bottom, k_h, dil_h, stride_h) ||
            out_w != mf_window_out_size(in_w, pad_left, params->padding.right, k_w, dil_w, stride_w) ||
            ring <= 0 || (size_t)scratch_bytes < (size_t)ring * row_out) {
            return MF_ARG_ERROR;
        }
        for (out_y = 0; out_y < out_h; out_y++) {
            const int32_t in_y_origin = out_y * stride_h - pad_top;
            const size_t need = (size_t)(in_y_origin > 0 ? in_y_origin : 0) * row_in;
            int8_t *out_row = scratch + (size_t)(out_y % ring) * row_out;
            int32_t out_x;
            while (flushed < out_y && (size_t)(flushed + 1) * row_out <= need) {
                memcpy(data + (size_t)flushed * row_out, scratch + (size_t)(flushed % ring) * row_out, row_out);
                flushed++;
            }
            for (out_x = 0; out_x < out_w; out_x++) {
                const int32_t in_x_origin = out_x * stride_w - pad_left;
                int8_t *out_pixel = out_row + (size_t)out_x * (size_t)channels;
                int32_t ch;
                for (ch = 0; ch < channels; ch++) {
                    int32_t acc = 0;
                    int32_t k_y;
                    for (k_y = 0; k_y < k_h; k_y++) {
                        const int32_t in_y = in_y_origin + k_y * dil_h;
                        int32_t k_x;
                        if (in_y < 0 || in_y >= in_h) {
                            continue;
                        }
                        for (k_x = 0; k_x < k_w; k_x++) {
                            const int32_t in_x = in_x_origin + k_x * dil_w;
                            size_t in_index;
                            size_t w_index;
                            if (in_x < 0 || in_x >= in_w) {
                                continue;
                            }
                            in_index = (size_t)in_y * row_in + (size_t)in_x * (size_t)channels + (size_t)ch;
                            w_index = ((size_t)k_y * (size_t)k_w + (size_t)k_x) * (size_t)channels + (size_t)ch;
                            acc += ((int32_t)data[in_index] - input_zp) * (int32_t)filter[w_index];
                        }
                    }
                    if (bias != NULL) {
                        acc = mf_wrapping_add(acc, bias[ch]);
                    }
                    out_pixel[ch] = mf_requant_channel(acc, quant, ch, output_zp, act_min, act_max);
                }
            }
        }
        for (; flushed < out_h; flushed++) {
            memcpy(data + (size_t)flushed * row_out, scratch + (size_t)(flushed % ring) * row_out, row_out);
        }
    }
    return MF_OK;
}
