/*
 * Pointwise (1x1) convolution of a run of pixels; see mf_internal.h. Shared by mf_conv2d_1x1_s8, the fully
 * connected kernel and the fused bottleneck's expansion and projection.
 *
 * DSP path: 2 pixels x 2 output channels per step, 4 input channels per 32-bit load. The input bytes minus the
 * zero point go to int16 lanes with SXTAB16 (bytes 0 and 2, then 1 and 3), the weights with SXTB16, and SMLAD adds
 * two products per instruction into each of the 4 accumulators. Channels beyond a multiple of 4, an odd last
 * output channel and an odd last pixel take the same sums one product at a time. The int32 sums are the plain
 * path's (two's complement addition does not depend on the order), so both paths give the same bytes.
 */
#include "../mf_internal.h"

static inline int8_t mf_pointwise_out(const mf_pointwise_args *a, int32_t acc, int32_t out_ch)
{
    if (a->bias != NULL) {
        acc = mf_wrapping_add(acc, a->bias[out_ch]);
    }
    return mf_requant_channel(acc, a->quant, out_ch, a->output_zp, a->act_min, a->act_max);
}

#if MF_DSP

/* acc[p][c] for pixels in0, in1 and filter rows w0, w1 over the in_c channels */
static inline void mf_dot_2x2(const int8_t *in0, const int8_t *in1, const int8_t *w0, const int8_t *w1,
                              int32_t in_c, int32_t input_zp, int32_t acc[2][2])
{
    const uint32_t offset = mf_dup16(-input_zp);
    int32_t acc00 = 0;
    int32_t acc01 = 0;
    int32_t acc10 = 0;
    int32_t acc11 = 0;
    int32_t k = 0;
    for (; k + 4 <= in_c; k += 4) {
        const uint32_t x0 = mf_read_s8x4(in0 + k);
        const uint32_t x1 = mf_read_s8x4(in1 + k);
        mf_smlad_2x2(x0, x1, mf_read_s8x4(w0 + k), mf_read_s8x4(w1 + k), offset, &acc00, &acc01, &acc10, &acc11);
    }
    for (; k < in_c; k++) {
        const int32_t x0 = (int32_t)in0[k] - input_zp;
        const int32_t x1 = (int32_t)in1[k] - input_zp;
        acc00 += x0 * (int32_t)w0[k];
        acc01 += x0 * (int32_t)w1[k];
        acc10 += x1 * (int32_t)w0[k];
        acc11 += x1 * (int32_t)w1[k];
    }
    acc[0][0] = acc00;
    acc[0][1] = acc01;
    acc[1][0] = acc10;
    acc[1][1] = acc11;
}

/* one pixel, one filter row */
static inline int32_t mf_dot_1x1(const int8_t *in, const int8_t *w, int32_t in_c, int32_t input_zp)
{
    const uint32_t offset = mf_dup16(-input_zp);
    int32_t acc = 0;
    int32_t k = 0;
    for (; k + 4 <= in_c; k += 4) {
        const uint32_t x = mf_read_s8x4(in + k);
        const uint32_t wv = mf_read_s8x4(w + k);
        acc = mf_smlad(mf_sxtab16(offset, x), mf_sxtb16(wv), acc);
        acc = mf_smlad(mf_sxtab16_ror8(offset, x), mf_sxtb16_ror8(wv), acc);
    }
    for (; k < in_c; k++) {
        acc += ((int32_t)in[k] - input_zp) * (int32_t)w[k];
    }
    return acc;
}

/* one pixel, two filter rows */
static inline void mf_dot_1x2(const int8_t *in, const int8_t *w0, const int8_t *w1, int32_t in_c, int32_t input_zp,
                              int32_t acc[2])
{
    const uint32_t offset = mf_dup16(-input_zp);
    int32_t acc0 = 0;
    int32_t acc1 = 0;
    int32_t k = 0;
    for (; k + 4 <= in_c; k += 4) {
        const uint32_t x = mf_read_s8x4(in + k);
        const uint32_t x_even = mf_sxtab16(offset, x);
        const uint32_t x_odd = mf_sxtab16_ror8(offset, x);
        uint32_t w = mf_read_s8x4(w0 + k);
        acc0 = mf_smlad(x_even, mf_sxtb16(w), acc0);
        acc0 = mf_smlad(x_odd, mf_sxtb16_ror8(w), acc0);
        w = mf_read_s8x4(w1 + k);
        acc1 = mf_smlad(x_even, mf_sxtb16(w), acc1);
        acc1 = mf_smlad(x_odd, mf_sxtb16_ror8(w), acc1);
    }
    for (; k < in_c; k++) {
        const int32_t x = (int32_t)in[k] - input_zp;
        acc0 += x * (int32_t)w0[k];
        acc1 += x * (int32_t)w1[k];
    }
    acc[0] = acc0;
    acc[1] = acc1;
}

void mf_pointwise_s8(const mf_pointwise_args *args, const int8_t *input, int32_t in_step, int32_t pixels,
                     int8_t *output)
{
    /* local copies: the int8 stores may alias any memory the arguments point to, locals they cannot (so the
     * filter, bias and requantization pointers are not reloaded after every output byte) */
    const mf_quant_params quant = *args->quant;
    mf_pointwise_args local = *args;
    const mf_pointwise_args *a = &local;
    const int32_t in_c = a->in_c;
    const int32_t out_c = a->out_c;
    const int32_t input_zp = a->input_zp;
    int32_t pixel = 0;
    local.quant = &quant;
    for (; pixel + 2 <= pixels; pixel += 2) {
        const int8_t *in0 = input + (size_t)pixel * (size_t)in_step;
        const int8_t *in1 = in0 + in_step;
        int8_t *out0 = output + (size_t)pixel * (size_t)out_c;
        int8_t *out1 = out0 + out_c;
        int32_t out_ch = 0;
        for (; out_ch + 2 <= out_c; out_ch += 2) {
            const int8_t *w0 = a->filter + (size_t)out_ch * (size_t)in_c;
            int32_t acc[2][2];
            mf_dot_2x2(in0, in1, w0, w0 + in_c, in_c, input_zp, acc);
            out0[out_ch] = mf_pointwise_out(a, acc[0][0], out_ch);
            out0[out_ch + 1] = mf_pointwise_out(a, acc[0][1], out_ch + 1);
            out1[out_ch] = mf_pointwise_out(a, acc[1][0], out_ch);
            out1[out_ch + 1] = mf_pointwise_out(a, acc[1][1], out_ch + 1);
        }
        if (out_ch < out_c) {
            const int8_t *w = a->filter + (size_t)out_ch * (size_t)in_c;
            out0[out_ch] = mf_pointwise_out(a, mf_dot_1x1(in0, w, in_c, input_zp), out_ch);
            out1[out_ch] = mf_pointwise_out(a, mf_dot_1x1(in1, w, in_c, input_zp), out_ch);
        }
    }
    if (pixel < pixels) {
        const int8_t *in = input + (size_t)pixel * (size_t)in_step;
        int8_t *out = output + (size_t)pixel * (size_t)out_c;
        int32_t out_ch = 0;
        for (; out_ch + 2 <= out_c; out_ch += 2) {
            const int8_t *w0 = a->filter + (size_t)out_ch * (size_t)in_c;
            int32_t acc[2];
            mf_dot_1x2(in, w0, w0 + in_c, in_c, input_zp, acc);
            out[out_ch] = mf_pointwise_out(a, acc[0], out_ch);
            out[out_ch + 1] = mf_pointwise_out(a, acc[1], out_ch + 1);
        }
        if (out_ch < out_c) {
            out[out_ch] = mf_pointwise_out(a, mf_dot_1x1(in, a->filter + (size_t)out_ch * (size_t)in_c, in_c,
                                                         input_zp), out_ch);
        }
    }
}

#else /* plain C: one pixel and one output channel at a time */

void mf_pointwise_s8(const mf_pointwise_args *args, const int8_t *input, int32_t in_step, int32_t pixels,
                     int8_t *output)
{
    /* local copies: the int8 stores may alias any memory the arguments point to, locals they cannot (so the
     * filter, bias and requantization pointers are not reloaded after every output byte) */
    const mf_quant_params quant = *args->quant;
    mf_pointwise_args local = *args;
    const mf_pointwise_args *a = &local;
    const int32_t in_c = a->in_c;
    const int32_t out_c = a->out_c;
    const int32_t input_zp = a->input_zp;
    int32_t pixel;
    local.quant = &quant;
    for (pixel = 0; pixel < pixels; pixel++) {
        const int8_t *in = input + (size_t)pixel * (size_t)in_step;
        int8_t *out = output + (size_t)pixel * (size_t)out_c;
        int32_t out_ch;
        for (out_ch = 0; out_ch < out_c; out_ch++) {
            const int8_t *weights = a->filter + (size_t)out_ch * (size_t)in_c;
            int32_t acc = 0;
            int32_t in_ch;
            for (in_ch = 0; in_ch < in_c; in_ch++) {
                acc += ((int32_t)in[in_ch] - input_zp) * (int32_t)weights[in_ch];
            }
            out[out_ch] = mf_pointwise_out(a, acc, out_ch);
        }
    }
}

#endif /* MF_DSP */
