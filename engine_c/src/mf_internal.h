/* Private helpers shared by the kernels (not part of the public API). */
#ifndef MF_INTERNAL_H
#define MF_INTERNAL_H

#include "mcuforge.h"
#include "mf_arith.h"
#include "mf_dsp.h"

#define MF_INT8_MIN (-128)
#define MF_INT8_MAX 127

static inline int mf_is_int8(int32_t v)
{
    return v >= MF_INT8_MIN && v <= MF_INT8_MAX;
}

static inline int mf_act_ok(int32_t act_min, int32_t act_max)
{
    return mf_is_int8(act_min) && mf_is_int8(act_max) && act_min <= act_max;
}

static inline int mf_dims_ok(const mf_dims *d)
{
    return d != NULL && d->h > 0 && d->w > 0 && d->c > 0;
}

/* Output size of a sliding window; -1 when the window does not fit even once. */
static inline int32_t mf_window_out_size(int32_t in, int32_t pad_a, int32_t pad_b, int32_t kernel,
                                         int32_t dilation, int32_t stride)
{
    const int32_t span = dilation * (kernel - 1) + 1;
    const int32_t padded = in + pad_a + pad_b;
    if (padded < span) {
        return -1;
    }
    return (padded - span) / stride + 1;
}

/* The taps k of a window that land inside the input, 0 <= origin + k * dilation < size: k in [*first, *end)
 * (empty when *first == *end). Kernels loop over these instead of testing every tap against the borders. */
static inline void mf_window_taps(int32_t origin, int32_t dilation, int32_t kernel, int32_t size, int32_t *first,
                                  int32_t *end)
{
    int32_t lo = 0;
    int32_t hi = kernel;
    while (lo < kernel && origin + lo * dilation < 0) {
        lo++;
    }
    while (hi > lo && origin + (hi - 1) * dilation >= size) {
        hi--;
    }
    *first = lo;
    *end = hi;
}

/* Adds with two's complement wrap-around, like MLAS's int32 vector adds (no signed overflow UB). */
static inline int32_t mf_wrapping_add(int32_t a, int32_t b)
{
    const uint32_t sum = (uint32_t)a + (uint32_t)b;
    if (sum <= (uint32_t)INT32_MAX) {
        return (int32_t)sum;
    }
    return (int32_t)(sum - (uint32_t)INT32_MAX - 1u) + INT32_MIN;
}

/* v / 2^exponent rounded to nearest, ties away from zero; exponent in [1, 62]. One rounding only, unlike
 * TFLite's two-step MultiplyByQuantizedMultiplier, which matters for small values (concat, pooling). */
static inline int64_t mf_rounding_shift_right64(int64_t v, int32_t exponent)
{
    const int64_t half = (int64_t)1 << (exponent - 1);
    if (v >= 0) {
        return (v + half) >> exponent;
    }
    return -((-v + half) >> exponent);
}

/* Requantizes accumulator `acc` of output channel `ch` with the mode chosen at compile time. */
static inline int8_t mf_requant_channel(int32_t acc, const mf_quant_params *quant, int32_t ch, int32_t zp,
                                        int32_t act_min, int32_t act_max)
{
#if MF_REQUANT_MODE == MF_REQUANT_FLOAT
    return (int8_t)mf_requant_float(acc, quant->scale[ch], zp, act_min, act_max);
#else
    return (int8_t)mf_requant_fixed_fast(acc, quant->multiplier[ch], quant->shift[ch], zp, act_min, act_max);
#endif
}

/* What a pointwise (1x1) convolution or fully connected layer applies to every pixel. */
typedef struct {
    const int8_t *filter;         /* [out_c, in_c] */
    const int32_t *bias;          /* [out_c], or NULL */
    const mf_quant_params *quant; /* per output channel */
    int32_t in_c;
    int32_t out_c;
    int32_t input_zp;
    int32_t output_zp;
    int32_t act_min;
    int32_t act_max;
} mf_pointwise_args;

/* `pixels` pixels of a pointwise convolution (mf_pointwise_s8.c): pixel i reads in_c values at input + i * in_step
 * and writes out_c values at output + i * out_c (dot products with the filter rows, bias, requantization, clamp).
 * Shared by mf_conv2d_1x1_s8, the fully connected kernel and the fused bottleneck's 1x1 convolutions. */
void mf_pointwise_s8(const mf_pointwise_args *args, const int8_t *input, int32_t in_step, int32_t pixels,
                     int8_t *output);

/* One pixel (or one row of a fully connected layer) through mf_pointwise_s8. */
static inline void mf_pointwise_pixel(const int8_t *in_pixel, int32_t in_c, const int8_t *filter, const int32_t *bias,
                                      const mf_quant_params *quant, int32_t input_zp, int32_t output_zp,
                                      int32_t act_min, int32_t act_max, int32_t out_c, int8_t *out_pixel)
{
    const mf_pointwise_args args = {filter, bias, quant, in_c, out_c, input_zp, output_zp, act_min, act_max};
    mf_pointwise_s8(&args, in_pixel, in_c, 1, out_pixel);
}

static inline int mf_quant_ok(const mf_quant_params *quant)
{
#if MF_REQUANT_MODE == MF_REQUANT_FLOAT
    return quant != NULL && quant->scale != NULL;
#else
    return quant != NULL && quant->multiplier != NULL && quant->shift != NULL;
#endif
}

/* Checks the convolution parameters shared by the conv kernels. */
static inline int mf_conv_params_ok(const mf_conv_params *p)
{
    return p != NULL && mf_is_int8(p->input_zp) && mf_is_int8(p->output_zp) && p->stride.h > 0 &&
           p->stride.w > 0 && p->dilation.h > 0 && p->dilation.w > 0 && p->padding.top >= 0 &&
           p->padding.left >= 0 && p->padding.bottom >= 0 && p->padding.right >= 0 &&
           mf_act_ok(p->act_min, p->act_max);
}

/* Whether output_dims has the height and width a convolution with these parameters and filter gives input_dims
 * (mf_conv2d_s8, the depthwise kernels, the fused bottleneck's depthwise stage). */
static inline int mf_conv_out_dims_ok(const mf_conv_params *p, const mf_dims *input_dims, const mf_dims *filter_dims,
                                      const mf_dims *output_dims)
{
    return output_dims->h == mf_window_out_size(input_dims->h, p->padding.top, p->padding.bottom, filter_dims->h,
                                                p->dilation.h, p->stride.h) &&
           output_dims->w == mf_window_out_size(input_dims->w, p->padding.left, p->padding.right, filter_dims->w,
                                                p->dilation.w, p->stride.w);
}

/* One output row `out_y` of a depthwise convolution (depth multiplier 1): out_w pixels of `channels` into out_row.
 * Input row y (0 <= y < in_h) starts at rows + (y % ring_rows) * in_w * channels: ring_rows = in_h for a whole
 * tensor, fewer for a ring holding the latest rows (the fused bottleneck). stage->filter is the packed depthwise
 * filter (mcuforge.h). Shared by mf_depthwise_conv2d_s8, its in-place variant and mf_mbconv_fused_s8, so all three
 * sum the same products in the same order. */
void mf_depthwise_row_s8(const mf_conv_stage *stage, const int8_t *rows, int32_t ring_rows, int32_t in_h,
                         int32_t in_w, int32_t channels, int32_t out_y, int32_t out_w, int8_t *out_row);

/* Whether a packed depthwise filter is 4-byte aligned, as its word loads need. */
static inline int mf_depthwise_filter_ok(const int8_t *filter)
{
    return filter != NULL && ((uintptr_t)(const void *)filter & 3u) == 0;
}

/* Window values (k_h * k_w * C_in) up to which mf_conv2d_s8 takes mf_conv2d_window_s8, whose stack buffer holds two
 * windows (128 B). */
#define MF_CONV2D_WINDOW_MAX 64

/* mf_conv2d_s8 for windows of at most MF_CONV2D_WINDOW_MAX values (kernels/mf_conv2d_window_s8.c); arguments already
 * checked, returns MF_OK (a tail call, so that mf_conv2d_s8's frame is gone meanwhile). Same bytes as the direct
 * loop. */
mf_status mf_conv2d_window_s8(const mf_conv_params *params, const mf_quant_params *quant,
                              const mf_dims *input_dims, const int8_t *input, const mf_dims *filter_dims,
                              const int8_t *filter, const int32_t *bias, const mf_dims *output_dims, int8_t *output);

#endif /* MF_INTERNAL_H */
