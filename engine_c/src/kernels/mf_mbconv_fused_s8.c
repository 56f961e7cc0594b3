/* Fused inverted bottleneck (1x1 expansion -> depthwise -> 1x1 projection), one output row at a time, so the
 * expanded tensor never exists whole. Byte-identical to mf_conv2d_1x1_s8, mf_depthwise_conv2d_s8 and
 * mf_conv2d_1x1_s8 run one after the other: every value goes through the same int32 sums and mf_requant_channel.
 *
 * Scratch: a ring of R = min(H, dilation_h * (K_h - 1) + 1) expanded rows (row r lives in slot r % R) and one
 * depthwise output row. Output row y of the depthwise needs expanded rows first..last (its window, clipped to the
 * image); they are computed in increasing order, each once, when a window first reaches them. Windows only move
 * down, and a window spans at most R rows, so a row still needed is never overwritten. Rows no window covers (below
 * the last window, or between windows when the stride exceeds the window) are never computed; the walk is
 * mirrored by the fused-bottleneck rewrite (mcuforge/schedule/fuse.py), which counts the MACs. */
#include "../mf_internal.h"

static int mf_stage_ok(const mf_conv_stage *stage)
{
    return stage != NULL && mf_conv_params_ok(&stage->params) && mf_quant_ok(&stage->quant) &&
           mf_dims_ok(&stage->filter_dims) && stage->filter != NULL;
}

static int mf_pointwise_supported(const mf_conv_stage *stage)
{
    const mf_conv_params *p = &stage->params;
    return stage->filter_dims.h == 1 && stage->filter_dims.w == 1 && p->stride.h == 1 && p->stride.w == 1 &&
           p->padding.top == 0 && p->padding.left == 0 && p->padding.bottom == 0 && p->padding.right == 0;
}

static int32_t mf_ring_rows(int32_t in_h, const mf_conv_stage *depthwise)
{
    const int32_t span = depthwise->params.dilation.h * (depthwise->filter_dims.h - 1) + 1;
    return span < in_h ? span : in_h;
}

static int mf_block_dims_ok(const mf_mbconv_params *params, const mf_dims *input_dims, const mf_dims *output_dims)
{
    const mf_conv_stage *dw;
    if (params == NULL || !mf_dims_ok(input_dims) || !mf_dims_ok(output_dims)) {
        return 0;
    }
    dw = &params->depthwise;
    return dw->filter_dims.h > 0 && dw->filter_dims.w > 0 && dw->filter_dims.c > 0 && dw->params.stride.h > 0 &&
           dw->params.stride.w > 0 && dw->params.dilation.h > 0 && dw->params.dilation.w > 0 &&
           dw->params.padding.top >= 0 && dw->params.padding.left >= 0 && dw->params.padding.bottom >= 0 &&
           dw->params.padding.right >= 0 &&
           mf_conv_out_dims_ok(&dw->params, input_dims, &dw->filter_dims, output_dims);
}

/* A 1x1 convolution over `pixels` consecutive pixels, as mf_conv2d_1x1_s8 computes each of them. */
static void mf_pointwise_pixels(const mf_conv_stage *stage, const int8_t *input, int32_t pixels, int32_t in_c,
                                int32_t out_c, int8_t *output)
{
    const mf_pointwise_args args = {stage->filter,          stage->bias,           &stage->quant,
                                    in_c,                   out_c,                 stage->params.input_zp,
                                    stage->params.output_zp, stage->params.act_min, stage->params.act_max};
    mf_pointwise_s8(&args, input, in_c, pixels, output);
}

int32_t mf_mbconv_fused_s8_get_buffer_size(const mf_mbconv_params *params, const mf_dims *input_dims,
                                           const mf_dims *output_dims)
{
    int32_t mid_c;
    if (!mf_block_dims_ok(params, input_dims, output_dims)) {
        return 0;
    }
    mid_c = params->depthwise.filter_dims.c;
    return (mf_ring_rows(input_dims->h, &params->depthwise) * input_dims->w + output_dims->w) * mid_c;
}

mf_status mf_mbconv_fused_s8(const mf_mbconv_params *params, const mf_dims *input_dims, const int8_t *input,
                             const mf_dims *output_dims, int8_t *output, int8_t *scratch, int32_t scratch_bytes)
{
    if (!mf_block_dims_ok(params, input_dims, output_dims) || !mf_stage_ok(&params->expand) ||
        !mf_stage_ok(&params->depthwise) || !mf_depthwise_filter_ok(params->depthwise.filter) ||
        !mf_stage_ok(&params->project) || input == NULL || output == NULL || scratch == NULL ||
        params->expand.filter_dims.c != input_dims->c ||
        params->project.filter_dims.c != params->depthwise.filter_dims.c ||
        params->expand.params.output_zp != params->depthwise.params.input_zp ||
        params->depthwise.params.output_zp != params->project.params.input_zp) {
        return MF_ARG_ERROR;
    }
    if (!mf_pointwise_supported(&params->expand) || !mf_pointwise_supported(&params->project)) {
        return MF_UNSUPPORTED;
    }
    {
        const int32_t in_h = input_dims->h;
        const int32_t in_w = input_dims->w;
        const int32_t in_c = input_dims->c;
        const int32_t mid_c = params->depthwise.filter_dims.c;
        const int32_t out_h = output_dims->h;
        const int32_t out_w = output_dims->w;
        const int32_t out_c = output_dims->c;
        const int32_t stride_h = params->depthwise.params.stride.h;
        const int32_t pad_top = params->depthwise.params.padding.top;
        const int32_t reach = params->depthwise.params.dilation.h * (params->depthwise.filter_dims.h - 1);
        const int32_t ring_rows = mf_ring_rows(in_h, &params->depthwise);
        const size_t mid_row = (size_t)in_w * (size_t)mid_c;
        int8_t *const ring = scratch;
        int8_t *const dw_row = scratch + (size_t)ring_rows * mid_row;
        int32_t next_row = 0; /* the first expanded row not computed yet */
        int32_t out_y;

        if (scratch_bytes < mf_mbconv_fused_s8_get_buffer_size(params, input_dims, output_dims)) {
            return MF_ARG_ERROR;
        }
        for (out_y = 0; out_y < out_h; out_y++) {
            const int32_t top = out_y * stride_h - pad_top;
            const int32_t first = top > 0 ? top : 0;
            const int32_t last = top + reach < in_h - 1 ? top + reach : in_h - 1;
            if (next_row < first) {
                next_row = first; /* rows above this window that no window reads */
            }
            for (; next_row <= last; next_row++) {
                mf_pointwise_pixels(&params->expand, input + (size_t)next_row * (size_t)in_w * (size_t)in_c, in_w,
                                    in_c, mid_c, ring + (size_t)(next_row % ring_rows) * mid_row);
            }
            mf_depthwise_row_s8(&params->depthwise, ring, ring_rows, in_h, in_w, mid_c, out_y, out_w, dw_row);
            mf_pointwise_pixels(&params->project, dw_row, out_w, mid_c, out_c,
                                output + (size_t)out_y * (size_t)out_w * (size_t)out_c);
        }
    }
    return MF_OK;
}
