/* One output row of a depthwise convolution; see mf_internal.h. The taps inside the input are found once per row
 * (vertical) and once per pixel (horizontal), so the inner loop is a plain multiply-accumulate over pointers. */
#include "../mf_internal.h"

void mf_depthwise_row_s8(const mf_conv_stage *stage, const int8_t *rows, int32_t ring_rows, int32_t in_h,
                         int32_t in_w, int32_t channels, int32_t out_y, int32_t out_w, int8_t *out_row)
{
    const mf_conv_params *p = &stage->params;
    const int32_t k_w = stage->filter_dims.w;
    const int32_t dil_h = p->dilation.h;
    const int32_t input_zp = p->input_zp;
    const size_t row_bytes = (size_t)in_w * (size_t)channels;
    const size_t x_step = (size_t)p->dilation.w * (size_t)channels;
    const size_t filter_row = (size_t)k_w * (size_t)channels;
    const int32_t in_y_origin = out_y * p->stride.h - p->padding.top;
    int32_t y_first;
    int32_t y_end;
    int32_t slot_first = 0;
    int32_t out_x;

    mf_window_taps(in_y_origin, dil_h, stage->filter_dims.h, in_h, &y_first, &y_end);
    if (y_first < y_end) {
        slot_first = (in_y_origin + y_first * dil_h) % ring_rows;
    }
    for (out_x = 0; out_x < out_w; out_x++) {
        const int32_t in_x_origin = out_x * p->stride.w - p->padding.left;
        int8_t *out_pixel = out_row + (size_t)out_x * (size_t)channels;
        int32_t x_first;
        int32_t x_end;
        int32_t y_stop;
        size_t x_base = 0;
        int32_t ch;
        mf_window_taps(in_x_origin, p->dilation.w, k_w, in_w, &x_first, &x_end);
        y_stop = x_first < x_end ? y_end : y_first; /* no tap inside the input: bias only */
        if (x_first < x_end) {
            x_base = (size_t)(in_x_origin + x_first * p->dilation.w) * (size_t)channels;
        }
        for (ch = 0; ch < channels; ch++) {
            const size_t w_base = (size_t)x_first * (size_t)channels + (size_t)ch;
            int32_t slot = slot_first;
            int32_t acc = 0;
            int32_t k_y;
            for (k_y = y_first; k_y < y_stop; k_y++) {
                const int8_t *in = rows + (size_t)slot * row_bytes + x_base + (size_t)ch;
                const int8_t *weights = stage->filter + (size_t)k_y * filter_row + w_base;
                int32_t k_x;
                for (k_x = x_first; k_x < x_end; k_x++) {
                    acc += ((int32_t)*in - input_zp) * (int32_t)*weights;
                    in += x_step;
                    weights += channels;
                }
                /* two taps inside the input are less than ring_rows apart (a ring holds a whole window) */
                slot += dil_h;
                if (slot >= ring_rows) {
                    slot -= ring_rows;
                }
            }
            if (stage->bias != NULL) {
                acc = mf_wrapping_add(acc, stage->bias[ch]);
            }
            out_pixel[ch] = mf_requant_channel(acc, &stage->quant, ch, p->output_zp, p->act_min, p->act_max);
        }
    }
}
