/* Depthwise convolution over its own input (NHWC, depth multiplier 1), byte-identical to mf_depthwise_conv2d_s8.
 *
 * Output row out_y needs input rows from max(0, out_y * stride_h - pad_top) on, and input reads only move forward
 * as out_y grows. Output rows are computed into a ring of rows in scratch; the oldest pending row j is copied to
 * its final place data[j * row_out, (j + 1) * row_out) as soon as that range ends at or before the first input
 * byte still needed. The rows pending at once (the scratch size) follow from the same walk, done by
 * mf_depthwise_conv2d_inplace_s8_get_buffer_size and mirrored by the memory planner (mcuforge/schedule). */
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
        !mf_dims_ok(filter_dims) || data == NULL || !mf_depthwise_filter_ok(filter) || scratch == NULL ||
        filter_dims->c != input_dims->c) {
        return MF_ARG_ERROR;
    }
    {
        const int32_t out_h = output_dims->h;
        const size_t row_in = (size_t)input_dims->w * (size_t)input_dims->c;
        const size_t row_out = (size_t)output_dims->w * (size_t)output_dims->c;
        const int32_t ring = mf_inplace_rows(input_dims->w, out_h, output_dims->w, output_dims->c, params->stride.h,
                                             params->padding.top);
        const mf_conv_stage stage = {*params, *quant, *filter_dims, filter, bias};
        int32_t flushed = 0;
        int32_t out_y;

        if (!mf_conv_out_dims_ok(params, input_dims, filter_dims, output_dims) || ring <= 0 || (size_t)scratch_bytes < (size_t)ring * row_out) {
            return MF_ARG_ERROR;
        }
        for (out_y = 0; out_y < out_h; out_y++) {
            const int32_t in_y_origin = out_y * params->stride.h - params->padding.top;
            const size_t need = (size_t)(in_y_origin > 0 ? in_y_origin : 0) * row_in;
            while (flushed < out_y && (size_t)(flushed + 1) * row_out <= need) {
                memcpy(data + (size_t)flushed * row_out, scratch + (size_t)(flushed % ring) * row_out, row_out);
                flushed++;
            }
            mf_depthwise_row_s8(&stage, data, input_dims->h, input_dims->h, input_dims->w, input_dims->c, out_y,
                                output_dims->w, scratch + (size_t)(out_y % ring) * row_out);
        }
        for (; flushed < out_h; flushed++) {
            memcpy(data + (size_t)flushed * row_out, scratch + (size_t)(flushed % ring) * row_out, row_out);
        }
    }
    return MF_OK;
}
