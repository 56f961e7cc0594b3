/*
 * mf_conv2d_s8's path for small windows (k_h * k_w * C_in <= MF_CONV2D_WINDOW_MAX: stems with C_in = 1 or 3, small
 * 3x3 convolutions, padded 1x1 boxes of patch stages). The windows of two output pixels are gathered once into a
 * stack buffer in filter order (a tap outside the input holds input_zp, so its x - input_zp is 0), then each pair of
 * output channels makes one pass over both windows with four accumulators (2 pixels x 2 channels; a lone last pixel
 * or channel is computed twice and written once). On DSP cores that pass reads 4 values per 32-bit load and
 * multiplies int16 pairs with SMLAD. The sums are those of the direct loop, (x - input_zp) * w in int32
 * (wrap-around, so the order does not matter): same bytes. Arguments are checked by mf_conv2d_s8.
 */
#include "../mf_dsp.h"
#include "../mf_internal.h"

static void mf_fill_s8(int8_t *dst, int8_t value, int32_t count)
{
    int32_t i;
    for (i = 0; i < count; i++) {
        dst[i] = value;
    }
}

static void mf_copy_s8(int8_t *dst, const int8_t *src, int32_t count)
{
    int32_t i;
    for (i = 0; i < count; i++) {
        dst[i] = src[i];
    }
}

/* The k_h x k_w x C_in window of output pixel (out_y, out_x) into col, in the filter's [K_h][K_w][C_in] order;
 * taps outside the input hold input_zp. */
static void mf_conv_gather_window(const mf_conv_params *params, const mf_dims *input_dims, const int8_t *input,
                                  const mf_dims *filter_dims, int32_t out_y, int32_t out_x, int8_t *col)
{
    const int32_t in_w = input_dims->w;
    const int32_t in_c = input_dims->c;
    const int32_t k_h = filter_dims->h;
    const int32_t k_w = filter_dims->w;
    const int32_t dil_h = params->dilation.h;
    const int32_t dil_w = params->dilation.w;
    const int8_t pad_value = (int8_t)params->input_zp;
    const int32_t in_y_origin = out_y * params->stride.h - params->padding.top;
    const int32_t in_x_origin = out_x * params->stride.w - params->padding.left;
    const int32_t row_len = k_w * in_c;
    int8_t *dst = col;
    int32_t y_first;
    int32_t y_end;
    int32_t x_first;
    int32_t x_end;
    int32_t k_y;
    mf_window_taps(in_y_origin, dil_h, k_h, input_dims->h, &y_first, &y_end);
    mf_window_taps(in_x_origin, dil_w, k_w, in_w, &x_first, &x_end);
    if (x_first == x_end) {
        y_end = y_first; /* no tap inside the input */
    }
    mf_fill_s8(dst, pad_value, y_first * row_len);
    dst += y_first * row_len;
    for (k_y = y_first; k_y < y_end; k_y++) {
        const int32_t in_y = in_y_origin + k_y * dil_h;
        const int8_t *src =
            input + ((size_t)in_y * (size_t)in_w + (size_t)(in_x_origin + x_first * dil_w)) * (size_t)in_c;
        mf_fill_s8(dst, pad_value, x_first * in_c);
        dst += x_first * in_c;
        if (dil_w == 1) {
            mf_copy_s8(dst, src, (x_end - x_first) * in_c);
            dst += (x_end - x_first) * in_c;
        } else {
            int32_t k_x;
            for (k_x = x_first; k_x < x_end; k_x++) {
                mf_copy_s8(dst, src, in_c);
                dst += in_c;
                src += (size_t)dil_w * (size_t)in_c;
            }
        }
        mf_fill_s8(dst, pad_value, (k_w - x_end) * in_c);
        dst += (k_w - x_end) * in_c;
    }
    mf_fill_s8(dst, pad_value, (k_h - y_end) * row_len);
}

/* acc[0..3] = dot products of the windows col0 = col and col1 = col + MF_CONV2D_WINDOW_MAX with the filter rows w0
 * and w1 = w0 + w1_offset, len values each, input_zp subtracted from every window value:
 * acc = {col0.w0, col0.w1, col1.w0, col1.w1}. (Fixed offsets leave registers for the four accumulators.) */
static inline void mf_conv_dot_2x2(const int8_t *col, const int8_t *w0, size_t w1_offset, int32_t len,
                                   int32_t input_zp, int32_t acc[4])
{
    const int8_t *const col_end = col + len;
    int32_t acc00 = 0;
    int32_t acc01 = 0;
    int32_t acc10 = 0;
    int32_t acc11 = 0;
#if MF_DSP
    /* -input_zp in both int16 lanes: SXTAB16 then gives {x0 - zp, x2 - zp} and {x1 - zp, x3 - zp} in [-255, 255],
     * in the lane order SXTB16 gives the weights */
    const uint32_t neg_zp = mf_dup16(-input_zp);
    const int8_t *const col_end4 = col + (len & ~3);
    while (col != col_end4) {
        const uint32_t x0 = mf_read_s8x4(col);
        const uint32_t x1 = mf_read_s8x4(col + MF_CONV2D_WINDOW_MAX);
        const uint32_t wb = mf_read_s8x4(w0 + w1_offset);
        const uint32_t wa = mf_read_s8x4(w0);
        mf_smlad_2x2(x0, x1, wa, wb, neg_zp, &acc00, &acc01, &acc10, &acc11);
        col += 4;
        w0 += 4;
    }
#endif
    while (col != col_end) {
        const int32_t x0 = (int32_t)col[0] - input_zp;
        const int32_t x1 = (int32_t)col[MF_CONV2D_WINDOW_MAX] - input_zp;
        const int32_t wa = w0[0];
        const int32_t wb = w0[w1_offset];
        acc00 += x0 * wa;
        acc01 += x0 * wb;
        acc10 += x1 * wa;
        acc11 += x1 * wb;
        col++;
        w0++;
    }
    acc[0] = acc00;
    acc[1] = acc01;
    acc[2] = acc10;
    acc[3] = acc11;
}

mf_status mf_conv2d_window_s8(const mf_conv_params *params, const mf_quant_params *quant,
                              const mf_dims *input_dims, const int8_t *input, const mf_dims *filter_dims,
                              const int8_t *filter, const int32_t *bias, const mf_dims *output_dims, int8_t *output)
{
    const int32_t window = filter_dims->h * filter_dims->w * filter_dims->c;
    const int32_t out_w = output_dims->w;
    const int32_t out_c = output_dims->c;
    const int32_t pixels = output_dims->h * out_w;
    const int32_t input_zp = params->input_zp;
    const int32_t output_zp = params->output_zp;
    const int32_t act_min = params->act_min;
    const int32_t act_max = params->act_max;
    uint32_t cols[2 * MF_CONV2D_WINDOW_MAX / 4]; /* two windows, 4-byte aligned for the DSP path's loads */
    int8_t *const col0 = (int8_t *)cols;
    int8_t *const col1 = col0 + MF_CONV2D_WINDOW_MAX;
    int32_t pixel;

    for (pixel = 0; pixel < pixels; pixel += 2) {
        const int32_t pixel1 = pixel + 1 < pixels ? pixel + 1 : pixel;
        int8_t *const out0 = output + (size_t)pixel * (size_t)out_c;
        int8_t *const out1 = output + (size_t)pixel1 * (size_t)out_c;
        int32_t out_ch;
        mf_conv_gather_window(params, input_dims, input, filter_dims, pixel / out_w, pixel % out_w, col0);
        mf_conv_gather_window(params, input_dims, input, filter_dims, pixel1 / out_w, pixel1 % out_w, col1);
        for (out_ch = 0; out_ch < out_c; out_ch += 2) {
            const int32_t out_ch1 = out_ch + 1 < out_c ? out_ch + 1 : out_ch;
            int32_t acc[4];
            mf_conv_dot_2x2(col0, filter + (size_t)out_ch * (size_t)window,
                            (size_t)(out_ch1 - out_ch) * (size_t)window, window, input_zp, acc);
            if (bias != NULL) {
                acc[0] = mf_wrapping_add(acc[0], bias[out_ch]);
                acc[1] = mf_wrapping_add(acc[1], bias[out_ch1]);
                acc[2] = mf_wrapping_add(acc[2], bias[out_ch]);
                acc[3] = mf_wrapping_add(acc[3], bias[out_ch1]);
            }
            out0[out_ch] = mf_requant_channel(acc[0], quant, out_ch, output_zp, act_min, act_max);
            out0[out_ch1] = mf_requant_channel(acc[1], quant, out_ch1, output_zp, act_min, act_max);
            out1[out_ch] = mf_requant_channel(acc[2], quant, out_ch, output_zp, act_min, act_max);
            out1[out_ch1] = mf_requant_channel(acc[3], quant, out_ch1, output_zp, act_min, act_max);
        }
    }
    return MF_OK;
}
