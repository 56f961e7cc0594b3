/* One output row of a depthwise convolution; see mf_internal.h.
 *
 * Channels are the inner-most loop, four at a time: in NHWC four consecutive channels are one 32-bit word of the
 * input and of the filter ([k_h, k_w, C]), and four int32 accumulators stay in registers across the window's taps.
 * The C % 4 channels left over go one at a time. The taps inside the input are found once per row (vertical) and
 * once per pixel (horizontal), so no tap is tested against the borders. A pixel whose whole 3x3 window lies inside
 * the input takes an unrolled path over three row pointers found once per row.
 *
 * DSP path (mf_dsp.h), per tap and four channels: one word load of input and of filter, SXTAB16 twice (adds
 * -input_zp to two int8 lanes: x - zp in [-255, 255] is exact in int16), SXTB16 twice, one SMLABB or SMLATT per
 * channel. Plain path: the same loops on bytes. The int32 sums wrap, and any order of summation gives the same
 * result modulo 2^32, so both paths give the bytes of the single-accumulator loop they replace. */
#include "../mf_internal.h"

/* What every pixel reads, copied out of the stage once per row (stores to int8 outputs may alias any pointed-to
 * object, so values read through the stage pointer would be reloaded after every output byte). */
typedef struct {
    const int8_t *filter;
    const int32_t *bias;
    mf_quant_params quant;
    int32_t input_zp;
    int32_t output_zp;
    int32_t act_min;
    int32_t act_max;
    int32_t scaled_min; /* act_min - output_zp */
    int32_t scaled_max; /* act_max - output_zp */
} mf_dw_ctx;

/* The four accumulators of channels ch .. ch + 3. */
typedef struct {
    int32_t c0;
    int32_t c1;
    int32_t c2;
    int32_t c3;
} mf_acc4;

#if MF_DSP
typedef uint32_t mf_dw_zp; /* -input_zp in both int16 lanes */

static inline mf_dw_zp mf_dw_zp_make(int32_t input_zp)
{
    const uint32_t lane = (uint32_t)(-input_zp) & 0xFFFFu;
    return lane | (lane << 16);
}

/* The bias is the accumulators' start: the DSP instructions wrap modulo 2^32 like mf_wrapping_add. */
static inline mf_acc4 mf_dw_acc_start(const int32_t *bias, int32_t ch)
{
    mf_acc4 acc = {0, 0, 0, 0};
    if (bias != NULL) {
        acc.c0 = bias[ch];
        acc.c1 = bias[ch + 1];
        acc.c2 = bias[ch + 2];
        acc.c3 = bias[ch + 3];
    }
    return acc;
}

static inline int32_t mf_dw_acc_end(int32_t acc, const int32_t *bias, int32_t ch)
{
    (void)bias;
    (void)ch;
    return acc;
}

static inline void mf_dw_tap4(const int8_t *in, const int8_t *weights, mf_dw_zp zp, mf_acc4 *acc)
{
    const uint32_t x = mf_read_s8x4(in);
    const uint32_t w = mf_read_s8x4(weights);
    const uint32_t x_even = mf_sxtab16(zp, x); /* channels 0 and 2, minus the zero point */
    const uint32_t x_odd = mf_sxtab16_ror8(zp, x);
    const uint32_t w_even = mf_sxtb16(w);
    const uint32_t w_odd = mf_sxtb16_ror8(w);
    acc->c0 = mf_smlabb(x_even, w_even, acc->c0);
    acc->c1 = mf_smlabb(x_odd, w_odd, acc->c1);
    acc->c2 = mf_smlatt(x_even, w_even, acc->c2);
    acc->c3 = mf_smlatt(x_odd, w_odd, acc->c3);
}
#else
typedef int32_t mf_dw_zp;

static inline mf_dw_zp mf_dw_zp_make(int32_t input_zp)
{
    return input_zp;
}

/* The bias is added after the sums with mf_wrapping_add (plain int32 sums would overflow from a large bias). */
static inline mf_acc4 mf_dw_acc_start(const int32_t *bias, int32_t ch)
{
    const mf_acc4 acc = {0, 0, 0, 0};
    (void)bias;
    (void)ch;
    return acc;
}

static inline int32_t mf_dw_acc_end(int32_t acc, const int32_t *bias, int32_t ch)
{
    return bias != NULL ? mf_wrapping_add(acc, bias[ch]) : acc;
}

static inline void mf_dw_tap4(const int8_t *in, const int8_t *weights, mf_dw_zp zp, mf_acc4 *acc)
{
    acc->c0 += ((int32_t)in[0] - zp) * (int32_t)weights[0];
    acc->c1 += ((int32_t)in[1] - zp) * (int32_t)weights[1];
    acc->c2 += ((int32_t)in[2] - zp) * (int32_t)weights[2];
    acc->c3 += ((int32_t)in[3] - zp) * (int32_t)weights[3];
}
#endif

#if MF_REQUANT_MODE == MF_REQUANT_FIXED
static inline int32_t mf_dw_requant(int32_t acc, const mf_dw_ctx *ctx, int32_t ch)
{
    return mf_requant_fixed_fast(acc, ctx->quant.multiplier[ch], ctx->quant.shift[ch], ctx->output_zp, ctx->act_min,
                                 ctx->act_max);
}
#else
static inline int32_t mf_dw_requant(int32_t acc, const mf_dw_ctx *ctx, int32_t ch)
{
    return mf_requant_float(acc, ctx->quant.scale[ch], ctx->output_zp, ctx->act_min, ctx->act_max);
}
#endif

/* Bias (plain path), requantization and clamp of channels ch .. ch + 3 into out. */
static inline void mf_dw_store4(const mf_acc4 *acc, const mf_dw_ctx *ctx, int32_t ch, int8_t *out)
{
    const int32_t v0 = mf_dw_requant(mf_dw_acc_end(acc->c0, ctx->bias, ch), ctx, ch);
    const int32_t v1 = mf_dw_requant(mf_dw_acc_end(acc->c1, ctx->bias, ch + 1), ctx, ch + 1);
    const int32_t v2 = mf_dw_requant(mf_dw_acc_end(acc->c2, ctx->bias, ch + 2), ctx, ch + 2);
    const int32_t v3 = mf_dw_requant(mf_dw_acc_end(acc->c3, ctx->bias, ch + 3), ctx, ch + 3);
    out[0] = (int8_t)v0;
    out[1] = (int8_t)v1;
    out[2] = (int8_t)v2;
    out[3] = (int8_t)v3;
}

/* One channel of one pixel, the taps k_y in [y_first, y_stop) x k_x in [x_first, x_end); the input row of k_y is
 * rows + slot * row_bytes, slot starting at slot_first and stepping by dil_h around a ring of ring_rows. */
static inline int8_t mf_dw_channel(const mf_dw_ctx *ctx, const int8_t *rows, size_t row_bytes, int32_t slot_first,
                                   int32_t dil_h, int32_t ring_rows, int32_t y_first, int32_t y_stop,
                                   size_t x_base, size_t x_step, int32_t x_first, int32_t x_end,
                                   size_t filter_row, int32_t channels, int32_t ch)
{
    const int8_t *filter = ctx->filter + (size_t)x_first * (size_t)channels + (size_t)ch;
    int32_t slot = slot_first;
    int32_t acc = 0;
    int32_t k_y;
    for (k_y = y_first; k_y < y_stop; k_y++) {
        const int8_t *in = rows + (size_t)slot * row_bytes + x_base + (size_t)ch;
        const int8_t *weights = filter + (size_t)k_y * filter_row;
        int32_t k_x;
        for (k_x = x_first; k_x < x_end; k_x++) {
            acc += ((int32_t)*in - ctx->input_zp) * (int32_t)*weights;
            in += x_step;
            weights += channels;
        }
        /* two taps inside the input are less than ring_rows apart (a ring holds a whole window) */
        slot += dil_h;
        if (slot >= ring_rows) {
            slot -= ring_rows;
        }
    }
    if (ctx->bias != NULL) {
        acc = mf_wrapping_add(acc, ctx->bias[ch]);
    }
    return (int8_t)mf_dw_requant(acc, ctx, ch);
}

#if MF_DSP_NATIVE && defined(__OPTIMIZE__)
#define MF_DW_ASM 1
/* The 3 taps of one filter row for 4 channels in registers (from C, GCC 12 keeps the 9 tap addresses of the 3x3
 * window on the stack), for an undilated window, whose step between taps along x is the filter's (s = channels): tap
 * k_x reads the input row at r + k_x * s (LDR's shifted register offset gives 2 * s) and the filter at w + k_x * s.
 * The 4 sums, r, w, s and the zero point word leave 3 registers for the values (11 in all), so each filter word is
 * loaded twice: 3 loads, 4 extensions and 4 multiply-accumulates per tap, mf_dw_tap4's MACs. */
#define MF_DW_ROW3_ASM                                                                                                \
    "ldr %[t0], [%[r]]\n\t"                                                                                           \
    "sxtab16 %[t1], %[off], %[t0]\n\t"                                                                                \
    "sxtab16 %[t0], %[off], %[t0], ror #8\n\t"                                                                        \
    "ldr %[t2], [%[w]]\n\t"                                                                                           \
    "sxtb16 %[t2], %[t2]\n\t"                                                                                         \
    "smlabb %[a0], %[t1], %[t2], %[a0]\n\t"                                                                           \
    "smlatt %[a2], %[t1], %[t2], %[a2]\n\t"                                                                           \
    "ldr %[t2], [%[w]]\n\t"                                                                                           \
    "sxtb16 %[t2], %[t2], ror #8\n\t"                                                                                 \
    "smlabb %[a1], %[t0], %[t2], %[a1]\n\t"                                                                           \
    "smlatt %[a3], %[t0], %[t2], %[a3]\n\t"                                                                           \
    "ldr %[t0], [%[r], %[s]]\n\t"                                                                                     \
    "sxtab16 %[t1], %[off], %[t0]\n\t"                                                                                \
    "sxtab16 %[t0], %[off], %[t0], ror #8\n\t"                                                                        \
    "ldr %[t2], [%[w], %[s]]\n\t"                                                                                     \
    "sxtb16 %[t2], %[t2]\n\t"                                                                                         \
    "smlabb %[a0], %[t1], %[t2], %[a0]\n\t"                                                                           \
    "smlatt %[a2], %[t1], %[t2], %[a2]\n\t"                                                                           \
    "ldr %[t2], [%[w], %[s]]\n\t"                                                                                     \
    "sxtb16 %[t2], %[t2], ror #8\n\t"                                                                                 \
    "smlabb %[a1], %[t0], %[t2], %[a1]\n\t"                                                                           \
    "smlatt %[a3], %[t0], %[t2], %[a3]\n\t"                                                                           \
    "ldr %[t0], [%[r], %[s], lsl #1]\n\t"                                                                             \
    "sxtab16 %[t1], %[off], %[t0]\n\t"                                                                                \
    "sxtab16 %[t0], %[off], %[t0], ror #8\n\t"                                                                        \
    "ldr %[t2], [%[w], %[s], lsl #1]\n\t"                                                                             \
    "sxtb16 %[t2], %[t2]\n\t"                                                                                         \
    "smlabb %[a0], %[t1], %[t2], %[a0]\n\t"                                                                           \
    "smlatt %[a2], %[t1], %[t2], %[a2]\n\t"                                                                           \
    "ldr %[t2], [%[w], %[s], lsl #1]\n\t"                                                                             \
    "sxtb16 %[t2], %[t2], ror #8\n\t"                                                                                 \
    "smlabb %[a1], %[t0], %[t2], %[a1]\n\t"                                                                           \
    "smlatt %[a3], %[t0], %[t2], %[a3]\n\t"
#define MF_DW_ROW3(row_, w_, s_, zp_, s0_, s1_, s2_, s3_)                                                          \
    __asm__ volatile(MF_DW_ROW3_ASM                                                                                   \
                     : [a0] "+r"(s0_), [a1] "+r"(s1_), [a2] "+r"(s2_), [a3] "+r"(s3_), [t0] "=&r"(t0), [t1] "=&r"(t1), \
                       [t2] "=&r"(t2)                                                                                 \
                     : [r] "r"(row_), [w] "r"(w_), [s] "r"(s_), [off] "r"(zp_)                                        \
                     : "memory")
#else
#define MF_DW_ASM 0
#endif

/* One pixel whose 3x3 window is wholly inside the input: rows[k_y] + x_step * k_x is tap (k_y, k_x) of channel 0. */
static inline void mf_dw_pixel_3x3(const mf_dw_ctx *ctx, const int8_t *r0, const int8_t *r1, const int8_t *r2,
                                   size_t x_step, int32_t channels, mf_dw_zp zp, int8_t *out_pixel)
{
    const size_t w_step = (size_t)channels;
    const int8_t *weights = ctx->filter;
    int32_t ch;
#if MF_DW_ASM
    uint32_t t0;
    uint32_t t1;
    uint32_t t2;
#endif
    for (ch = 0; ch + 4 <= channels; ch += 4) {
        mf_acc4 acc = mf_dw_acc_start(ctx->bias, ch);
#if MF_DW_ASM
        if (x_step == w_step) {
            const int8_t *w = weights;
            int32_t a0 = acc.c0;
            int32_t a1 = acc.c1;
            int32_t a2 = acc.c2;
            int32_t a3 = acc.c3;
            MF_DW_ROW3(r0, w, w_step, zp, a0, a1, a2, a3);
            w += 3 * w_step;
            MF_DW_ROW3(r1, w, w_step, zp, a0, a1, a2, a3);
            w += 3 * w_step;
            MF_DW_ROW3(r2, w, w_step, zp, a0, a1, a2, a3);
            acc.c0 = a0;
            acc.c1 = a1;
            acc.c2 = a2;
            acc.c3 = a3;
        } else
#endif
        {
            const int8_t *in = r0;
            const int8_t *w = weights;
            mf_dw_tap4(in, w, zp, &acc);
            mf_dw_tap4(in + x_step, w + w_step, zp, &acc);
            mf_dw_tap4(in + 2 * x_step, w + 2 * w_step, zp, &acc);
            in = r1;
            w += 3 * w_step;
            mf_dw_tap4(in, w, zp, &acc);
            mf_dw_tap4(in + x_step, w + w_step, zp, &acc);
            mf_dw_tap4(in + 2 * x_step, w + 2 * w_step, zp, &acc);
            in = r2;
            w += 3 * w_step;
            mf_dw_tap4(in, w, zp, &acc);
            mf_dw_tap4(in + x_step, w + w_step, zp, &acc);
            mf_dw_tap4(in + 2 * x_step, w + 2 * w_step, zp, &acc);
        }
        mf_dw_store4(&acc, ctx, ch, out_pixel + ch);
        r0 += 4;
        r1 += 4;
        r2 += 4;
        weights += 4;
    }
    for (; ch < channels; ch++) {
        int32_t acc = 0;
        int32_t k;
        for (k = 0; k < 3; k++) {
            const int8_t *in = (k == 0 ? r0 : (k == 1 ? r1 : r2)) + (size_t)(ch & 3);
            const int8_t *w = weights + (size_t)(3 * k) * w_step + (size_t)(ch & 3);
            acc += ((int32_t)in[0] - ctx->input_zp) * (int32_t)w[0];
            acc += ((int32_t)in[x_step] - ctx->input_zp) * (int32_t)w[w_step];
            acc += ((int32_t)in[2 * x_step] - ctx->input_zp) * (int32_t)w[2 * w_step];
        }
        if (ctx->bias != NULL) {
            acc = mf_wrapping_add(acc, ctx->bias[ch]);
        }
        out_pixel[ch] = (int8_t)mf_dw_requant(acc, ctx, ch);
    }
}

void mf_depthwise_row_s8(const mf_conv_stage *stage, const int8_t *rows, int32_t ring_rows, int32_t in_h,
                         int32_t in_w, int32_t channels, int32_t out_y, int32_t out_w, int8_t *out_row)
{
    const mf_conv_params *p = &stage->params;
    const mf_dw_ctx ctx = {stage->filter, stage->bias, stage->quant, p->input_zp, p->output_zp, p->act_min,
                           p->act_max, p->act_min - p->output_zp, p->act_max - p->output_zp};
    const int32_t k_w = stage->filter_dims.w;
    const int32_t dil_h = p->dilation.h;
    const int32_t dil_w = p->dilation.w;
    const int32_t stride_w = p->stride.w;
    const int32_t pad_left = p->padding.left;
    const mf_dw_zp zp = mf_dw_zp_make(p->input_zp);
    const size_t row_bytes = (size_t)in_w * (size_t)channels;
    const size_t x_step = (size_t)dil_w * (size_t)channels;
    const size_t filter_row = (size_t)k_w * (size_t)channels;
    const int32_t in_y_origin = out_y * p->stride.h - p->padding.top;
    const int8_t *rows_3x3[3] = {NULL, NULL, NULL};
    int fast_3x3;
    int32_t y_first;
    int32_t y_end;
    int32_t slot_first = 0;
    int32_t out_x;

    mf_window_taps(in_y_origin, dil_h, stage->filter_dims.h, in_h, &y_first, &y_end);
    if (y_first < y_end) {
        slot_first = (in_y_origin + y_first * dil_h) % ring_rows;
    }
    fast_3x3 = stage->filter_dims.h == 3 && k_w == 3 && y_first == 0 && y_end == 3;
    if (fast_3x3) {
        int32_t slot = slot_first;
        int32_t k_y;
        for (k_y = 0; k_y < 3; k_y++) {
            rows_3x3[k_y] = rows + (size_t)slot * row_bytes;
            slot += dil_h;
            if (slot >= ring_rows) {
                slot -= ring_rows;
            }
        }
    }
    for (out_x = 0; out_x < out_w; out_x++) {
        const int32_t in_x_origin = out_x * stride_w - pad_left;
        int8_t *out_pixel = out_row + (size_t)out_x * (size_t)channels;
        int32_t x_first;
        int32_t x_end;
        int32_t y_stop;
        size_t x_base = 0;
        int32_t ch;
        mf_window_taps(in_x_origin, dil_w, k_w, in_w, &x_first, &x_end);
        y_stop = x_first < x_end ? y_end : y_first; /* no tap inside the input: bias only */
        if (x_first < x_end) {
            x_base = (size_t)(in_x_origin + x_first * dil_w) * (size_t)channels;
        }
        if (fast_3x3 && x_first == 0 && x_end == 3) {
            mf_dw_pixel_3x3(&ctx, rows_3x3[0] + x_base, rows_3x3[1] + x_base, rows_3x3[2] + x_base, x_step, channels,
                            zp, out_pixel);
            continue;
        }
        for (ch = 0; ch + 4 <= channels; ch += 4) {
            const int8_t *filter = ctx.filter + (size_t)x_first * (size_t)channels + (size_t)ch;
            mf_acc4 acc = mf_dw_acc_start(ctx.bias, ch);
            int32_t slot = slot_first;
            int32_t k_y;
            for (k_y = y_first; k_y < y_stop; k_y++) {
                const int8_t *in = rows + (size_t)slot * row_bytes + x_base + (size_t)ch;
                const int8_t *weights = filter + (size_t)k_y * filter_row;
                int32_t k_x;
                for (k_x = x_first; k_x < x_end; k_x++) {
                    mf_dw_tap4(in, weights, zp, &acc);
                    in += x_step;
                    weights += channels;
                }
                /* two taps inside the input are less than ring_rows apart (a ring holds a whole window) */
                slot += dil_h;
                if (slot >= ring_rows) {
                    slot -= ring_rows;
                }
            }
            mf_dw_store4(&acc, &ctx, ch, out_pixel + ch);
        }
        for (; ch < channels; ch++) {
            out_pixel[ch] = mf_dw_channel(&ctx, rows, row_bytes, slot_first, dil_h, ring_rows, y_first, y_stop, x_base,
                                          x_step, x_first, x_end, filter_row, channels, ch);
        }
    }
}
