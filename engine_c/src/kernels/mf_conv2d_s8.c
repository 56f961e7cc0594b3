/*
 * General int8 convolution, NHWC input, OHWI weights. Windows of at most MF_CONV2D_WINDOW_MAX values are gathered on
 * the stack (mf_conv2d_window_s8.c); larger ones are read directly from the input rows (no im2col, no scratch):
 * blocks of 2 output pixels (neighbours in a row) x 2 output channels, four accumulators, each input and weight word
 * loaded once per block. The taps inside the input are found per pixel (mf_window_taps): the taps both pixels of a
 * pair have go through the 2x2 block, a border pixel's other taps through a 1x2 block (taps outside the input
 * contribute nothing, as in the direct loop). On DSP cores the blocks read 4 values per 32-bit load and multiply
 * int16 pairs with SMLAD. The sums are those of the direct loop, (x - input_zp) * w in int32 (wrap-around, so the
 * order does not matter): same bytes in both requantization modes.
 */
#include "../mf_dsp.h"
#include "../mf_internal.h"

/* The blocks' loops get the registers to themselves (inlined into the pixel loop, GCC spills inside them). */
#if defined(__GNUC__)
#define MF_CONV_NOINLINE __attribute__((noinline))
#else
#define MF_CONV_NOINLINE
#endif

/* What the blocks of one convolution share: where the taps of a window are in the input and in the filter. */
typedef struct {
    size_t in_row_step; /* input bytes between window rows: dil_h * in_w * in_c */
    size_t in_tap_step; /* input bytes between taps of a row: dil_w * in_c */
    size_t w_row_step;  /* filter bytes between window rows: k_w * in_c */
    int32_t in_c;
    int32_t dil_w;
    int32_t input_zp;
} mf_conv_taps;

/* acc[0..3] += {x0.w0, x0.w1, x1.w0, x1.w1} over len values of x0 = in0, x1 = in1, w0, w1, input_zp subtracted from
 * every input value (neg_zp: -input_zp in both int16 lanes, for the DSP path). */
static inline void mf_conv_segment_2x2(const int8_t *in0, const int8_t *in1, const int8_t *w0, const int8_t *w1,
                                       int32_t len, int32_t input_zp, uint32_t neg_zp, int32_t acc[4])
{
    int32_t acc00 = acc[0];
    int32_t acc01 = acc[1];
    int32_t acc10 = acc[2];
    int32_t acc11 = acc[3];
    int32_t i;
#if MF_DSP
    /* SXTAB16 of -input_zp gives {x0 - zp, x2 - zp} and {x1 - zp, x3 - zp} in [-255, 255], in the lane order SXTB16
     * gives the weights. One index from -len4 up to 0 for all four rows leaves registers for the accumulators. */
    const int32_t len4 = len & ~3;
    in0 += len4;
    in1 += len4;
    w0 += len4;
    w1 += len4;
    for (i = -len4; i != 0; i += 4) {
        const uint32_t x0 = mf_read_s8x4(in0 + i);
        const uint32_t x1 = mf_read_s8x4(in1 + i);
        const uint32_t wa = mf_read_s8x4(w0 + i);
        const uint32_t wb = mf_read_s8x4(w1 + i);
        mf_smlad_2x2(x0, x1, wa, wb, neg_zp, &acc00, &acc01, &acc10, &acc11);
    }
    len -= len4;
#else
    (void)neg_zp;
#endif
    for (i = 0; i < len; i++) {
        const int32_t x0 = (int32_t)in0[i] - input_zp;
        const int32_t x1 = (int32_t)in1[i] - input_zp;
        const int32_t wa = w0[i];
        const int32_t wb = w1[i];
        acc00 += x0 * wa;
        acc01 += x0 * wb;
        acc10 += x1 * wa;
        acc11 += x1 * wb;
    }
    acc[0] = acc00;
    acc[1] = acc01;
    acc[2] = acc10;
    acc[3] = acc11;
}

/* acc[0..1] += {x.w0, x.w1} over len values (one pixel, two channels), like mf_conv_segment_2x2. */
static inline void mf_conv_segment_1x2(const int8_t *in, const int8_t *w0, const int8_t *w1, int32_t len,
                                       int32_t input_zp, uint32_t neg_zp, int32_t acc[2])
{
    int32_t acc0 = acc[0];
    int32_t acc1 = acc[1];
    int32_t i;
#if MF_DSP
    const int32_t len4 = len & ~3;
    in += len4;
    w0 += len4;
    w1 += len4;
    for (i = -len4; i != 0; i += 4) {
        const uint32_t x = mf_read_s8x4(in + i);
        const uint32_t wa = mf_read_s8x4(w0 + i);
        const uint32_t wb = mf_read_s8x4(w1 + i);
        const uint32_t x_even = mf_sxtab16(neg_zp, x);
        const uint32_t x_odd = mf_sxtab16_ror8(neg_zp, x);
        acc0 = mf_smlad(x_even, mf_sxtb16(wa), acc0);
        acc1 = mf_smlad(x_even, mf_sxtb16(wb), acc1);
        acc0 = mf_smlad(x_odd, mf_sxtb16_ror8(wa), acc0);
        acc1 = mf_smlad(x_odd, mf_sxtb16_ror8(wb), acc1);
    }
    len -= len4;
#else
    (void)neg_zp;
#endif
    for (i = 0; i < len; i++) {
        const int32_t x = (int32_t)in[i] - input_zp;
        acc0 += x * (int32_t)w0[i];
        acc1 += x * (int32_t)w1[i];
    }
    acc[0] = acc0;
    acc[1] = acc1;
}

/* The 2x2 block over `rows` window rows and `taps` taps per row: in and w point at the first tap of the first row
 * (pixel 0 and channel 0), pixel 1's input is at in + in1_offset, channel 1's weights at w + w1_offset. */
static MF_CONV_NOINLINE void mf_conv_taps_2x2(const mf_conv_taps *t, const int8_t *in, size_t in1_offset,
                                              const int8_t *w, size_t w1_offset, int32_t rows, int32_t taps,
                                              int32_t acc[4])
{
    /* with dil_w == 1 a row's taps are contiguous in the input as in the filter: one segment */
    const int32_t segments = t->dil_w == 1 ? 1 : taps;
    const int32_t segment_len = t->dil_w == 1 ? taps * t->in_c : t->in_c;
    const size_t in_tap_step = t->in_tap_step;
    const size_t in_row_step = t->in_row_step;
    const size_t w_row_step = t->w_row_step;
    const size_t w_tap_step = (size_t)t->in_c;
    const int32_t input_zp = t->input_zp;
    /* the low lane only, widened where used: both lanes here cost 0.7 % more on M4 (GCC 12 register allocation) */
    const uint32_t neg_zp = (uint32_t)(-input_zp) & 0xFFFFu;
    int32_t row;
#if MF_DSP
    if (segments == 1 && (segment_len & 3) == 0) {
        /* the common case (3x3 windows over channels in whole words): accumulators and the four row pointers stay
         * in registers from row to row, one index runs over a row */
        const uint32_t neg_zp2 = neg_zp * 0x00010001u;
        const int8_t *in0 = in + segment_len;
        const int8_t *in1 = in0 + in1_offset;
        const int8_t *w0 = w + segment_len;
        const int8_t *w1 = w0 + w1_offset;
        int32_t acc00 = acc[0];
        int32_t acc01 = acc[1];
        int32_t acc10 = acc[2];
        int32_t acc11 = acc[3];
        for (row = 0; row < rows; row++) {
            int32_t i;
            for (i = -segment_len; i != 0; i += 4) {
                const uint32_t x0 = mf_read_s8x4(in0 + i);
                const uint32_t x1 = mf_read_s8x4(in1 + i);
                const uint32_t wa = mf_read_s8x4(w0 + i);
                const uint32_t wb = mf_read_s8x4(w1 + i);
                mf_smlad_2x2(x0, x1, wa, wb, neg_zp2, &acc00, &acc01, &acc10, &acc11);
            }
            in0 += in_row_step;
            in1 += in_row_step;
            w0 += w_row_step;
            w1 += w_row_step;
        }
        acc[0] = acc00;
        acc[1] = acc01;
        acc[2] = acc10;
        acc[3] = acc11;
        return;
    }
#endif
    for (row = 0; row < rows; row++) {
        const int8_t *in_tap = in;
        const int8_t *w_tap = w;
        int32_t segment;
        for (segment = 0; segment < segments; segment++) {
            mf_conv_segment_2x2(in_tap, in_tap + in1_offset, w_tap, w_tap + w1_offset, segment_len, input_zp,
                                neg_zp * 0x00010001u, acc);
            in_tap += in_tap_step;
            w_tap += w_tap_step;
        }
        in += in_row_step;
        w += w_row_step;
    }
}

/* The 1x2 block (one pixel), like mf_conv_taps_2x2. */
static MF_CONV_NOINLINE void mf_conv_taps_1x2(const mf_conv_taps *t, const int8_t *in, const int8_t *w,
                                              size_t w1_offset, int32_t rows, int32_t taps, int32_t acc[2])
{
    const int32_t segments = t->dil_w == 1 ? 1 : taps;
    const int32_t segment_len = t->dil_w == 1 ? taps * t->in_c : t->in_c;
    const int32_t input_zp = t->input_zp;
    const uint32_t neg_zp = mf_dup16(-input_zp);
    int32_t row;
    for (row = 0; row < rows; row++) {
        const int8_t *in_tap = in;
        const int8_t *w_tap = w;
        int32_t segment;
        for (segment = 0; segment < segments; segment++) {
            mf_conv_segment_1x2(in_tap, w_tap, w_tap + w1_offset, segment_len, input_zp, neg_zp, acc);
            in_tap += t->in_tap_step;
            w_tap += t->in_c;
        }
        in += t->in_row_step;
        w += t->w_row_step;
    }
}

/* Taps [first, end) of one pixel's window row: where they start in the input (row y_first) and in the filter. */
typedef struct {
    const int8_t *in;
    size_t w_offset;
    int32_t taps;
} mf_conv_span;

static mf_conv_span mf_conv_make_span(const mf_conv_taps *t, const int8_t *in_row, int32_t in_x_origin,
                                      size_t w_row_offset, int32_t first, int32_t end)
{
    mf_conv_span span;
    span.in = in_row;
    span.w_offset = w_row_offset;
    span.taps = 0;
    if (first < end) { /* the first tap is inside the input */
        span.in = in_row + (size_t)(in_x_origin + first * t->dil_w) * (size_t)t->in_c;
        span.w_offset = w_row_offset + (size_t)first * (size_t)t->in_c;
        span.taps = end - first;
    }
    return span;
}

static inline int32_t mf_max32(int32_t a, int32_t b)
{
    return a > b ? a : b;
}

static inline int32_t mf_min32(int32_t a, int32_t b)
{
    return a < b ? a : b;
}

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
    const size_t window = (size_t)k_h * (size_t)k_w * (size_t)in_c;
    const int32_t out_h = output_dims->h;
    const int32_t out_w = output_dims->w;
    const int32_t out_c = output_dims->c;
    const int32_t stride_h = params->stride.h;
    const int32_t stride_w = params->stride.w;
    const int32_t dil_h = params->dilation.h;
    const int32_t pad_top = params->padding.top;
    const int32_t pad_left = params->padding.left;
    const int32_t output_zp = params->output_zp;
    const int32_t act_min = params->act_min;
    const int32_t act_max = params->act_max;
    mf_conv_taps t;
    int32_t out_y;

    t.in_row_step = (size_t)dil_h * (size_t)in_w * (size_t)in_c;
    t.in_tap_step = (size_t)params->dilation.w * (size_t)in_c;
    t.w_row_step = (size_t)k_w * (size_t)in_c;
    t.in_c = in_c;
    t.dil_w = params->dilation.w;
    t.input_zp = params->input_zp;

    for (out_y = 0; out_y < out_h; out_y++) {
        const int32_t in_y_origin = out_y * stride_h - pad_top;
        int32_t y_first;
        int32_t y_end;
        int32_t rows;
        const int8_t *in_row;
        size_t w_row_offset;
        int32_t out_x;
        mf_window_taps(in_y_origin, dil_h, k_h, in_h, &y_first, &y_end);
        rows = y_end - y_first;
        /* row y_first of the window, when it has rows inside the input */
        in_row = rows > 0 ? input + (size_t)(in_y_origin + y_first * dil_h) * (size_t)in_w * (size_t)in_c : input;
        w_row_offset = (size_t)y_first * t.w_row_step;
        for (out_x = 0; out_x < out_w; out_x += 2) {
            /* a lone last pixel is its own pair: pixel 1 then has no taps and is not written */
            const int32_t pair = out_x + 1 < out_w;
            const int32_t origin0 = out_x * stride_w - pad_left;
            const int32_t origin1 = origin0 + stride_w;
            int8_t *const out0 = output + ((size_t)out_y * (size_t)out_w + (size_t)out_x) * (size_t)out_c;
            int8_t *const out1 = out0 + out_c;
            int32_t first0;
            int32_t end0;
            int32_t first1;
            int32_t end1;
            int32_t common_first;
            int32_t common_end;
            mf_conv_span common;
            mf_conv_span extra[4]; /* pixel 0's taps left and right of the common ones, then pixel 1's */
            int32_t out_ch;
            mf_window_taps(origin0, t.dil_w, k_w, in_w, &first0, &end0);
            if (pair) {
                mf_window_taps(origin1, t.dil_w, k_w, in_w, &first1, &end1);
            } else {
                first1 = 0;
                end1 = 0;
            }
            common_first = mf_max32(first0, first1);
            common_end = mf_min32(end0, end1);
            if (common_first < common_end) {
                common = mf_conv_make_span(&t, in_row, origin0, w_row_offset, common_first, common_end);
                extra[0] = mf_conv_make_span(&t, in_row, origin0, w_row_offset, first0, common_first);
                extra[1] = mf_conv_make_span(&t, in_row, origin0, w_row_offset, common_end, end0);
                extra[2] = mf_conv_make_span(&t, in_row, origin1, w_row_offset, first1, common_first);
                extra[3] = mf_conv_make_span(&t, in_row, origin1, w_row_offset, common_end, end1);
            } else {
                common.taps = 0;
                extra[0] = mf_conv_make_span(&t, in_row, origin0, w_row_offset, first0, end0);
                extra[1].taps = 0;
                extra[2] = mf_conv_make_span(&t, in_row, origin1, w_row_offset, first1, end1);
                extra[3].taps = 0;
            }
            for (out_ch = 0; out_ch < out_c; out_ch += 2) {
                /* a lone last channel is computed twice and written once */
                const int32_t out_ch1 = out_ch + 1 < out_c ? out_ch + 1 : out_ch;
                const int8_t *const filter_ch = filter + (size_t)out_ch * window;
                const size_t w1_offset = (size_t)(out_ch1 - out_ch) * window;
                int32_t acc[4] = {0, 0, 0, 0};
                int32_t extra_index;
                if (common.taps > 0) {
                    mf_conv_taps_2x2(&t, common.in, (size_t)stride_w * (size_t)in_c, filter_ch + common.w_offset,
                                     w1_offset, rows, common.taps, acc);
                }
                for (extra_index = 0; extra_index < 4; extra_index++) {
                    const mf_conv_span *const span = &extra[extra_index];
                    if (span->taps > 0) {
                        mf_conv_taps_1x2(&t, span->in, filter_ch + span->w_offset, w1_offset, rows, span->taps,
                                         acc + (extra_index & 2));
                    }
                }
                if (bias != NULL) {
                    acc[0] = mf_wrapping_add(acc[0], bias[out_ch]);
                    acc[1] = mf_wrapping_add(acc[1], bias[out_ch1]);
                    acc[2] = mf_wrapping_add(acc[2], bias[out_ch]);
                    acc[3] = mf_wrapping_add(acc[3], bias[out_ch1]);
                }
                out0[out_ch] = mf_requant_channel(acc[0], quant, out_ch, output_zp, act_min, act_max);
                out0[out_ch1] = mf_requant_channel(acc[1], quant, out_ch1, output_zp, act_min, act_max);
                if (pair) {
                    out1[out_ch] = mf_requant_channel(acc[2], quant, out_ch, output_zp, act_min, act_max);
                    out1[out_ch1] = mf_requant_channel(acc[3], quant, out_ch1, output_zp, act_min, act_max);
                }
            }
        }
    }
    }
    return MF_OK;
}
