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

/* Output channel ch of two pixels (sums acc0, acc1 without the bias): the channel's constants read once, the two
 * bytes requantized as mf_pointwise_out does. */
static inline void mf_pointwise_out2(const int32_t *bias, const mf_quant_params *quant, int32_t ch, int32_t acc0,
                                     int32_t acc1, int8_t *out0, int8_t *out1, int32_t zp, int32_t act_min,
                                     int32_t act_max)
{
    if (bias != NULL) {
        const int32_t b = bias[ch];
        acc0 = mf_wrapping_add(acc0, b);
        acc1 = mf_wrapping_add(acc1, b);
    }
#if MF_REQUANT_MODE == MF_REQUANT_FLOAT
    {
        const float scale = quant->scale[ch];
        *out0 = (int8_t)mf_requant_float(acc0, scale, zp, act_min, act_max);
        *out1 = (int8_t)mf_requant_float(acc1, scale, zp, act_min, act_max);
    }
#else
    {
        const int32_t multiplier = quant->multiplier[ch];
        const int32_t shift = quant->shift[ch];
        if (shift < 0) {
            /* mf_requant_fixed's right-shift case with its constants computed once; |scaled| <= 2^30, so the
             * zero point added before the clamp cannot overflow */
            const uint64_t round = mf_mbqm_round(-shift);
            const int32_t rshift = -shift - 1;
            int32_t v0 = mf_mbqm_right_with(acc0, multiplier, round, rshift) + zp;
            int32_t v1 = mf_mbqm_right_with(acc1, multiplier, round, rshift) + zp;
            v0 = v0 < act_min ? act_min : (v0 > act_max ? act_max : v0);
            v1 = v1 < act_min ? act_min : (v1 > act_max ? act_max : v1);
            *out0 = (int8_t)v0;
            *out1 = (int8_t)v1;
        } else {
            *out0 = (int8_t)mf_requant_fixed_cold(acc0, multiplier, shift, zp, act_min, act_max);
            *out1 = (int8_t)mf_requant_fixed_cold(acc1, multiplier, shift, zp, act_min, act_max);
        }
    }
#endif
}

#if MF_DSP_NATIVE
/* One word (4 channels) of the 2x2 dot products in registers (GCC 12 spills 3 of the loop's 14 values to the stack
 * from C): 4 pointers, the end, the zero point word and the 4 sums leave 4 registers for the values, so the filter
 * row a word is loaded twice. 5 loads, 8 extensions and 8 SMLAD for 16 MACs. */
#define MF_2X2_WORD_ASM                                                                                               \
    "ldr %[t0], [%[i0]], #4\n\t"                                                                                      \
    "ldr %[t1], [%[w0]]\n\t"                                                                                          \
    "sxtab16 %[t2], %[off], %[t0]\n\t"                                                                                \
    "sxtb16 %[t3], %[t1]\n\t"                                                                                         \
    "smlad %[a00], %[t2], %[t3], %[a00]\n\t"                                                                          \
    "sxtab16 %[t0], %[off], %[t0], ror #8\n\t"                                                                        \
    "sxtb16 %[t1], %[t1], ror #8\n\t"                                                                                 \
    "smlad %[a00], %[t0], %[t1], %[a00]\n\t"                                                                          \
    "ldr %[t1], [%[w1]], #4\n\t"                                                                                      \
    "sxtb16 %[t3], %[t1]\n\t"                                                                                         \
    "smlad %[a01], %[t2], %[t3], %[a01]\n\t"                                                                          \
    "sxtb16 %[t1], %[t1], ror #8\n\t"                                                                                 \
    "smlad %[a01], %[t0], %[t1], %[a01]\n\t"                                                                          \
    "ldr %[t0], [%[i1]], #4\n\t"                                                                                      \
    "sxtab16 %[t2], %[off], %[t0]\n\t"                                                                                \
    "smlad %[a11], %[t2], %[t3], %[a11]\n\t"                                                                          \
    "sxtab16 %[t0], %[off], %[t0], ror #8\n\t"                                                                        \
    "smlad %[a11], %[t0], %[t1], %[a11]\n\t"                                                                          \
    "ldr %[t1], [%[w0]], #4\n\t"                                                                                      \
    "sxtb16 %[t3], %[t1]\n\t"                                                                                         \
    "smlad %[a10], %[t2], %[t3], %[a10]\n\t"                                                                          \
    "sxtb16 %[t1], %[t1], ror #8\n\t"                                                                                 \
    "smlad %[a10], %[t0], %[t1], %[a10]\n\t"
#define MF_2X2_OPERANDS(in0, in1, w0, w1, acc00, acc01, acc10, acc11)                                                 \
    [a00] "+r"(acc00), [a01] "+r"(acc01), [a10] "+r"(acc10), [a11] "+r"(acc11), [i0] "+r"(in0), [i1] "+r"(in1),      \
        [w0] "+r"(w0), [w1] "+r"(w1), [t0] "=&r"(t0_), [t1] "=&r"(t1_), [t2] "=&r"(t2_), [t3] "=&r"(t3_)
/* The words up to end8 two per pass (in0 != end8, end8 - in0 a multiple of 8), then one more when four_more. */
#define MF_DOT_2X2_WORDS(in0, in1, w0, w1, end8, four_more, offset, acc00, acc01, acc10, acc11)                       \
    do {                                                                                                              \
        uint32_t t0_, t1_, t2_, t3_;                                                                                  \
        if (in0 != end8) {                                                                                            \
            __asm__ volatile("1:\n\t" MF_2X2_WORD_ASM MF_2X2_WORD_ASM "cmp %[i0], %[end]\n\tbne 1b"                  \
                             : MF_2X2_OPERANDS(in0, in1, w0, w1, acc00, acc01, acc10, acc11)                          \
                             : [end] "r"(end8), [off] "r"(offset)                                                     \
                             : "cc", "memory");                                                                       \
        }                                                                                                             \
        if (four_more) {                                                                                              \
            __asm__ volatile(MF_2X2_WORD_ASM                                                                          \
                             : MF_2X2_OPERANDS(in0, in1, w0, w1, acc00, acc01, acc10, acc11)                          \
                             : [off] "r"(offset)                                                                      \
                             : "memory");                                                                             \
        }                                                                                                             \
    } while (0)
#else
#define MF_DOT_2X2_WORDS(in0, in1, w0, w1, end8, four_more, offset, acc00, acc01, acc10, acc11)                       \
    do {                                                                                                              \
        const int8_t *const end_ = (end8) + ((four_more) ? 4 : 0);                                                    \
        while (in0 != end_) {                                                                                         \
            const uint32_t x0_ = mf_read_s8x4(in0);                                                                   \
            const uint32_t x1_ = mf_read_s8x4(in1);                                                                   \
            const uint32_t wa_ = mf_read_s8x4(w0);                                                                    \
            const uint32_t wb_ = mf_read_s8x4(w1);                                                                    \
            in0 += 4;                                                                                                 \
            in1 += 4;                                                                                                 \
            w0 += 4;                                                                                                  \
            w1 += 4;                                                                                                  \
            mf_smlad_2x2(x0_, x1_, wa_, wb_, offset, &acc00, &acc01, &acc10, &acc11);                                 \
        }                                                                                                             \
    } while (0)
#endif

/* acc[2 * p + c] = pixel p (in0, in1) . filter row c (w0, w1) over the in_c channels */
static inline void mf_dot_2x2(const int8_t *in0, const int8_t *in1, const int8_t *w0, const int8_t *w1,
                              int32_t in_c, uint32_t offset, int32_t acc[4])
{
    const int8_t *const end8 = in0 + (in_c & ~7);
    int32_t acc00 = 0;
    int32_t acc01 = 0;
    int32_t acc10 = 0;
    int32_t acc11 = 0;
    int32_t k;
    MF_DOT_2X2_WORDS(in0, in1, w0, w1, end8, in_c & 4, offset, acc00, acc01, acc10, acc11);
    for (k = 0; k < (in_c & 3); k++) {
        const int32_t x0 = (int32_t)(int16_t)(uint16_t)offset + (int32_t)in0[k];
        const int32_t x1 = (int32_t)(int16_t)(uint16_t)offset + (int32_t)in1[k];
        acc00 += x0 * (int32_t)w0[k];
        acc01 += x0 * (int32_t)w1[k];
        acc10 += x1 * (int32_t)w0[k];
        acc11 += x1 * (int32_t)w1[k];
    }
    acc[0] = acc00;
    acc[1] = acc01;
    acc[2] = acc10;
    acc[3] = acc11;
}

#if MF_DSP_NATIVE
/* The 1x4 loop in registers: rows a, b at w01 and w01 + in_c, rows c, d at w23 and w23 + in_c; the input word is
 * extended once for the 4 rows. 5 loads, 10 extensions and 8 SMLAD for 16 MACs. Requires in != end. */
#define MF_DOT_1X4_WORDS(in, w01, w23, in_c, end, offset, acc0, acc1, acc2, acc3)                                     \
    do {                                                                                                              \
        uint32_t t0_, t1_, t2_, t3_;                                                                                  \
        __asm__ volatile("1:\n\t"                                                                                     \
                         "ldr %[t0], [%[in]], #4\n\t"                                                                 \
                         "sxtab16 %[t1], %[off], %[t0]\n\t"                                                           \
                         "sxtab16 %[t0], %[off], %[t0], ror #8\n\t"                                                   \
                         "ldr %[t2], [%[wa], %[n]]\n\t"                                                               \
                         "sxtb16 %[t3], %[t2]\n\t"                                                                    \
                         "smlad %[a1], %[t1], %[t3], %[a1]\n\t"                                                       \
                         "sxtb16 %[t2], %[t2], ror #8\n\t"                                                            \
                         "smlad %[a1], %[t0], %[t2], %[a1]\n\t"                                                       \
                         "ldr %[t2], [%[wa]], #4\n\t"                                                                 \
                         "sxtb16 %[t3], %[t2]\n\t"                                                                    \
                         "smlad %[a0], %[t1], %[t3], %[a0]\n\t"                                                       \
                         "sxtb16 %[t2], %[t2], ror #8\n\t"                                                            \
                         "smlad %[a0], %[t0], %[t2], %[a0]\n\t"                                                       \
                         "ldr %[t2], [%[wc], %[n]]\n\t"                                                               \
                         "sxtb16 %[t3], %[t2]\n\t"                                                                    \
                         "smlad %[a3], %[t1], %[t3], %[a3]\n\t"                                                       \
                         "sxtb16 %[t2], %[t2], ror #8\n\t"                                                            \
                         "smlad %[a3], %[t0], %[t2], %[a3]\n\t"                                                       \
                         "ldr %[t2], [%[wc]], #4\n\t"                                                                 \
                         "sxtb16 %[t3], %[t2]\n\t"                                                                    \
                         "smlad %[a2], %[t1], %[t3], %[a2]\n\t"                                                       \
                         "sxtb16 %[t2], %[t2], ror #8\n\t"                                                            \
                         "smlad %[a2], %[t0], %[t2], %[a2]\n\t"                                                       \
                         "cmp %[in], %[end]\n\t"                                                                      \
                         "bne 1b"                                                                                     \
                         : [a0] "+r"(acc0), [a1] "+r"(acc1), [a2] "+r"(acc2), [a3] "+r"(acc3), [in] "+r"(in),         \
                           [wa] "+r"(w01), [wc] "+r"(w23), [t0] "=&r"(t0_), [t1] "=&r"(t1_), [t2] "=&r"(t2_),        \
                           [t3] "=&r"(t3_)                                                                            \
                         : [n] "r"(in_c), [end] "r"(end), [off] "r"(offset)                                           \
                         : "cc", "memory");                                                                           \
    } while (0)
#else
#define MF_DOT_1X4_WORDS(in, w01, w23, in_c, end, offset, acc0, acc1, acc2, acc3)                                     \
    do {                                                                                                              \
        while (in != end) {                                                                                           \
            const uint32_t x_ = mf_read_s8x4(in);                                                                     \
            const uint32_t even_ = mf_sxtab16(offset, x_);                                                            \
            const uint32_t odd_ = mf_sxtab16_ror8(offset, x_);                                                        \
            const uint32_t wa_ = mf_read_s8x4(w01);                                                                   \
            const uint32_t wb_ = mf_read_s8x4(w01 + in_c);                                                            \
            const uint32_t wc_ = mf_read_s8x4(w23);                                                                   \
            const uint32_t wd_ = mf_read_s8x4(w23 + in_c);                                                            \
            in += 4;                                                                                                  \
            w01 += 4;                                                                                                 \
            w23 += 4;                                                                                                 \
            acc0 = mf_smlad(odd_, mf_sxtb16_ror8(wa_), mf_smlad(even_, mf_sxtb16(wa_), acc0));                        \
            acc1 = mf_smlad(odd_, mf_sxtb16_ror8(wb_), mf_smlad(even_, mf_sxtb16(wb_), acc1));                        \
            acc2 = mf_smlad(odd_, mf_sxtb16_ror8(wc_), mf_smlad(even_, mf_sxtb16(wc_), acc2));                        \
            acc3 = mf_smlad(odd_, mf_sxtb16_ror8(wd_), mf_smlad(even_, mf_sxtb16(wd_), acc3));                        \
        }                                                                                                             \
    } while (0)
#endif

/* acc[c] = pixel in . filter row c (rows w0 + c * in_c, c < 4) over the in_c channels */
static inline void mf_dot_1x4(const int8_t *in, const int8_t *w0, int32_t in_c, uint32_t offset, int32_t acc[4])
{
    const int8_t *w2 = w0 + 2 * in_c;
    const int8_t *const end = in + (in_c & ~3);
    int32_t acc0 = 0;
    int32_t acc1 = 0;
    int32_t acc2 = 0;
    int32_t acc3 = 0;
    int32_t k;
    if (in != end) {
        MF_DOT_1X4_WORDS(in, w0, w2, in_c, end, offset, acc0, acc1, acc2, acc3);
    }
    for (k = 0; k < (in_c & 3); k++) {
        const int32_t x = (int32_t)(int16_t)(uint16_t)offset + (int32_t)in[k];
        acc0 += x * (int32_t)w0[k];
        acc1 += x * (int32_t)w0[in_c + k];
        acc2 += x * (int32_t)w2[k];
        acc3 += x * (int32_t)w2[in_c + k];
    }
    acc[0] = acc0;
    acc[1] = acc1;
    acc[2] = acc2;
    acc[3] = acc3;
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

/* The last pixel of an odd run (or a fully connected row): 4 output channels per pass, then one at a time. */
static void mf_pointwise_last(const mf_pointwise_args *a, const int8_t *in, int8_t *out)
{
    const int32_t in_c = a->in_c;
    const int32_t out_c = a->out_c;
    const uint32_t offset = mf_dup16(-a->input_zp);
    int32_t out_ch = 0;
    for (; out_ch + 4 <= out_c; out_ch += 4) {
        int32_t acc[4];
        int32_t j;
        mf_dot_1x4(in, a->filter + (size_t)out_ch * (size_t)in_c, in_c, offset, acc);
        for (j = 0; j < 4; j++) {
            out[out_ch + j] = mf_pointwise_out(a, acc[j], out_ch + j);
        }
    }
    for (; out_ch < out_c; out_ch++) {
        out[out_ch] = mf_pointwise_out(a, mf_dot_1x1(in, a->filter + (size_t)out_ch * (size_t)in_c, in_c,
                                                     a->input_zp), out_ch);
    }
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
    const int32_t output_zp = a->output_zp;
    const int32_t act_min = a->act_min;
    const int32_t act_max = a->act_max;
    const uint32_t offset = mf_dup16(-a->input_zp);
    int32_t pixel = 0;
    local.quant = &quant;
    for (; pixel + 2 <= pixels; pixel += 2) {
        const int8_t *in0 = input + (size_t)pixel * (size_t)in_step;
        const int8_t *in1 = in0 + in_step;
        int8_t *out0 = output + (size_t)pixel * (size_t)out_c;
        int8_t *out1 = out0 + out_c;
        const int8_t *w0 = a->filter;
        int32_t out_ch = 0;
        for (; out_ch + 2 <= out_c; out_ch += 2) {
            int32_t acc[4];
            mf_dot_2x2(in0, in1, w0, w0 + in_c, in_c, offset, acc);
            w0 += 2 * in_c;
            mf_pointwise_out2(a->bias, &quant, out_ch, acc[0], acc[2], out0 + out_ch, out1 + out_ch, output_zp,
                              act_min, act_max);
            mf_pointwise_out2(a->bias, &quant, out_ch + 1, acc[1], acc[3], out0 + out_ch + 1, out1 + out_ch + 1,
                              output_zp, act_min, act_max);
        }
        if (out_ch < out_c) {
            out0[out_ch] = mf_pointwise_out(a, mf_dot_1x1(in0, w0, in_c, a->input_zp), out_ch);
            out1[out_ch] = mf_pointwise_out(a, mf_dot_1x1(in1, w0, in_c, a->input_zp), out_ch);
        }
    }
    if (pixel < pixels) {
        mf_pointwise_last(a, input + (size_t)pixel * (size_t)in_step, output + (size_t)pixel * (size_t)out_c);
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
