/*
 * Pointwise (1x1) convolution of a run of pixels; see mf_internal.h. Shared by mf_conv2d_1x1_s8, the fully
 * connected kernel and the fused bottleneck's expansion and projection.
 *
 * DSP path: 2 pixels x 2 output channels per step, 4 input channels per 32-bit load. The input bytes minus the
 * zero point go to int16 lanes with SXTAB16 (bytes 0 and 2, then 1 and 3), the weights with SXTB16, and SMLAD adds
 * two products per instruction into each of the 4 accumulators, which start at the channels' biases. An odd last
 * pixel (and a fully connected row) takes 4 filter rows per pass, then 3, 2 or 1; channels beyond a multiple of 4
 * and an odd last output channel of a pair of pixels take the same sums one product at a time. The int32 sums are
 * the plain path's modulo 2^32 (two's complement addition does not depend on the order), so both paths give the
 * same bytes. Fixed mode: when every channel has a right shift of at least 2 and a multiplier >= 0 (checked once
 * per call), the requantization is mf_mbqm_right_fast (one SMLAL) and, without activation, one SSAT.
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

#if defined(__GNUC__)
#define MF_PAIRS_INLINE static inline __attribute__((always_inline))
#else
#define MF_PAIRS_INLINE static inline
#endif

#if MF_REQUANT_MODE == MF_REQUANT_FIXED
/* mf_requant_fixed(acc, multiplier, -e, zp, act_min, act_max) for e >= 2 and multiplier >= 0, bit for bit
 * (mf_mbqm_right_fast; c = 2^(e-2) and r = e - 1 are the channel's constants, MF_PW_CHANNEL, read once per channel
 * and block): |scaled| <= 2^30, so the zero point is added before the clamp. */
static inline int32_t mf_pw_requant_fast(int32_t acc, int32_t multiplier, uint32_t c, int32_t r, int32_t zp,
                                         int32_t act_min, int32_t act_max)
{
    const int32_t v = mf_mbqm_right_fast(acc, multiplier, c, r) + zp;
    return v < act_min ? act_min : (v > act_max ? act_max : v);
}

/* Whether every output channel can take mf_pw_requant_fast (TFLite's multipliers of real scales below 1/4: all
 * usual layers); checked once per call. */
static int mf_pw_fast_ok(const mf_quant_params *quant, int32_t out_c)
{
    int32_t ch;
    for (ch = 0; ch < out_c; ch++) {
        if (quant->shift[ch] > -2 || quant->shift[ch] < -31 || quant->multiplier[ch] < 0) {
            return 0;
        }
    }
    return 1;
}

/* A channel's constants of mf_pw_requant_fast: r = e - 1 = ~shift, c = 2^(e-2) */
#define MF_PW_CHANNEL(quant, ch, m, c, r)                                                                          \
    const int32_t m = (quant)->multiplier[ch];                                                                       \
    const int32_t r = ~(quant)->shift[ch];                                                                           \
    const uint32_t c = ((uint32_t)1 << r) >> 1
#endif

/* Output channel ch of two pixels (sums acc0, acc1, the bias already in them): the channel's constants read once,
 * the two bytes requantized as mf_pointwise_out does. */
static inline void mf_pointwise_out2(const mf_quant_params *quant, int32_t ch, int32_t acc0, int32_t acc1,
                                     int8_t *out0, int8_t *out1, int32_t zp, int32_t act_min, int32_t act_max)
{
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

/* One output value of a single pixel from its sum without the bias (the last pixel, fully connected rows) */
static inline int8_t mf_pointwise_out1(const mf_pointwise_args *a, int32_t acc, int32_t ch, int fast)
{
#if MF_REQUANT_MODE == MF_REQUANT_FIXED
    if (fast) {
        MF_PW_CHANNEL(a->quant, ch, m, c, r);
        if (a->bias != NULL) {
            acc = (int32_t)((uint32_t)acc + (uint32_t)a->bias[ch]);
        }
        return (int8_t)mf_pw_requant_fast(acc, m, c, r, a->output_zp, a->act_min, a->act_max);
    }
#endif
    (void)fast;
    return mf_pointwise_out(a, acc, ch);
}

#if MF_DSP_NATIVE && defined(__OPTIMIZE__)
#define MF_PW_ASM 1
/* One word (4 channels) of the 2x2 dot products in registers (from C, GCC 12 spills 3 of the loop's values to the
 * stack). Pixel 1 and filter row b are n bytes after pixel 0 and row a (contiguous pixels: in_step == in_c), so the
 * two pointers, n, the end, the zero point word and the 4 sums leave 4 of the 13 registers for the values, and the
 * row a word is loaded twice. 5 loads, 8 extensions and 8 SMLAD for 16 MACs: the sums of mf_smlad_2x2. */
#define MF_2X2_WORD_ASM                                                                                               \
    "ldr %[t0], [%[i0], %[n]]\n\t"                                                                                    \
    "ldr %[t1], [%[w0]]\n\t"                                                                                          \
    "sxtab16 %[t2], %[off], %[t0]\n\t"                                                                                \
    "sxtb16 %[t3], %[t1]\n\t"                                                                                         \
    "smlad %[a10], %[t2], %[t3], %[a10]\n\t"                                                                          \
    "sxtab16 %[t0], %[off], %[t0], ror #8\n\t"                                                                        \
    "sxtb16 %[t1], %[t1], ror #8\n\t"                                                                                 \
    "smlad %[a10], %[t0], %[t1], %[a10]\n\t"                                                                          \
    "ldr %[t1], [%[w0], %[n]]\n\t"                                                                                    \
    "sxtb16 %[t3], %[t1]\n\t"                                                                                         \
    "smlad %[a11], %[t2], %[t3], %[a11]\n\t"                                                                          \
    "sxtb16 %[t1], %[t1], ror #8\n\t"                                                                                 \
    "smlad %[a11], %[t0], %[t1], %[a11]\n\t"                                                                          \
    "ldr %[t0], [%[i0]], #4\n\t"                                                                                      \
    "sxtab16 %[t2], %[off], %[t0]\n\t"                                                                                \
    "smlad %[a01], %[t2], %[t3], %[a01]\n\t"                                                                          \
    "sxtab16 %[t0], %[off], %[t0], ror #8\n\t"                                                                        \
    "smlad %[a01], %[t0], %[t1], %[a01]\n\t"                                                                          \
    "ldr %[t1], [%[w0]], #4\n\t"                                                                                      \
    "sxtb16 %[t3], %[t1]\n\t"                                                                                         \
    "smlad %[a00], %[t2], %[t3], %[a00]\n\t"                                                                          \
    "sxtb16 %[t1], %[t1], ror #8\n\t"                                                                                 \
    "smlad %[a00], %[t0], %[t1], %[a00]\n\t"
#define MF_2X2_OPERANDS(in_ptr, w_ptr, sum00, sum01, sum10, sum11)                                                 \
    [a00] "+r"(sum00), [a01] "+r"(sum01), [a10] "+r"(sum10), [a11] "+r"(sum11), [i0] "+r"(in_ptr), [w0] "+r"(w_ptr), \
        [t0] "=&r"(t0_), [t1] "=&r"(t1_), [t2] "=&r"(t2_), [t3] "=&r"(t3_)
#else
#define MF_PW_ASM 0
#endif

/* acc[2 * p + c] = init[c] + pixel p (in0, in1) . filter row c (w0, w0 + in_c) over the in_c channels, modulo 2^32
 * (init: the rows' biases); contiguous: in1 is in0 + in_c (a constant where it is inlined, so that each case
 * compiles to its own loop) */
MF_PAIRS_INLINE void mf_dot_2x2(const int8_t *in0, const int8_t *in1, const int8_t *w0, int32_t in_c,
                                uint32_t offset, int contiguous, int32_t init0, int32_t init1, int32_t acc[4])
{
    const ptrdiff_t step = in1 - in0; /* pixel 1 is `step` bytes after pixel 0, row b in_c bytes after row a */
    const int8_t *const words_end = in0 + (in_c & ~3);
    int32_t acc00 = init0;
    int32_t acc01 = init1;
    int32_t acc10 = init0;
    int32_t acc11 = init1;
    int32_t k;
    (void)contiguous;
#if MF_PW_ASM
    if (contiguous) { /* step == in_c */
        const int8_t *const end8 = in0 + (in_c & ~7);
        uint32_t t0_;
        uint32_t t1_;
        uint32_t t2_;
        uint32_t t3_;
        if (in0 != end8) {
            __asm__ volatile("1:\n\t" MF_2X2_WORD_ASM MF_2X2_WORD_ASM "cmp %[i0], %[end]\n\tbne 1b"
                             : MF_2X2_OPERANDS(in0, w0, acc00, acc01, acc10, acc11)
                             : [end] "r"(end8), [n] "r"(in_c), [off] "r"(offset)
                             : "cc", "memory");
        }
        if (in_c & 4) {
            __asm__ volatile(MF_2X2_WORD_ASM
                             : MF_2X2_OPERANDS(in0, w0, acc00, acc01, acc10, acc11)
                             : [n] "r"(in_c), [off] "r"(offset)
                             : "memory");
        }
    } else
#endif
    {
        while (in0 != words_end) {
            const uint32_t x0 = mf_read_s8x4(in0);
            const uint32_t x1 = mf_read_s8x4(in0 + step);
            const uint32_t wa = mf_read_s8x4(w0);
            const uint32_t wb = mf_read_s8x4(w0 + in_c);
            in0 += 4;
            w0 += 4;
            mf_smlad_2x2(x0, x1, wa, wb, offset, &acc00, &acc01, &acc10, &acc11);
        }
    }
    for (k = 0; k < (in_c & 3); k++) { /* unsigned: the sums wrap like the SMLAD ones (the bias may be any int32) */
        const int32_t x0 = (int32_t)(int16_t)(uint16_t)offset + (int32_t)in0[k];
        const int32_t x1 = (int32_t)(int16_t)(uint16_t)offset + (int32_t)in0[step + k];
        const int32_t wa = (int32_t)w0[k];
        const int32_t wb = (int32_t)w0[in_c + k];
        acc00 = (int32_t)((uint32_t)acc00 + (uint32_t)(x0 * wa));
        acc01 = (int32_t)((uint32_t)acc01 + (uint32_t)(x0 * wb));
        acc10 = (int32_t)((uint32_t)acc10 + (uint32_t)(x1 * wa));
        acc11 = (int32_t)((uint32_t)acc11 + (uint32_t)(x1 * wb));
    }
    acc[0] = acc00;
    acc[1] = acc01;
    acc[2] = acc10;
    acc[3] = acc11;
}

#if MF_PW_ASM
/* One word of 1 pixel x 3 filter rows (w, w + n, w + 2 n: LDR's shifted register offset) in registers: the input
 * word is extended once for the 3 rows; 4 loads, 8 extensions and 6 SMLAD for 12 MACs; 12 registers. */
#define MF_1X3_WORD_ASM                                                                                               \
    "ldr %[t0], [%[in]], #4\n\t"                                                                                      \
    "sxtab16 %[t1], %[off], %[t0]\n\t"                                                                                \
    "sxtab16 %[t0], %[off], %[t0], ror #8\n\t"                                                                        \
    "ldr %[t2], [%[w]]\n\t"                                                                                           \
    "sxtb16 %[t3], %[t2]\n\t"                                                                                         \
    "smlad %[a0], %[t1], %[t3], %[a0]\n\t"                                                                            \
    "sxtb16 %[t2], %[t2], ror #8\n\t"                                                                                 \
    "smlad %[a0], %[t0], %[t2], %[a0]\n\t"                                                                            \
    "ldr %[t2], [%[w], %[n]]\n\t"                                                                                     \
    "sxtb16 %[t3], %[t2]\n\t"                                                                                         \
    "smlad %[a1], %[t1], %[t3], %[a1]\n\t"                                                                            \
    "sxtb16 %[t2], %[t2], ror #8\n\t"                                                                                 \
    "smlad %[a1], %[t0], %[t2], %[a1]\n\t"                                                                            \
    "ldr %[t2], [%[w], %[n], lsl #1]\n\t"                                                                             \
    "sxtb16 %[t3], %[t2]\n\t"                                                                                         \
    "smlad %[a2], %[t1], %[t3], %[a2]\n\t"                                                                            \
    "sxtb16 %[t2], %[t2], ror #8\n\t"                                                                                 \
    "smlad %[a2], %[t0], %[t2], %[a2]\n\t"                                                                            \
    "add %[w], %[w], #4\n\t"
/* 1 pixel x 2 rows (w, w + n): 3 loads, 6 extensions and 4 SMLAD for 8 MACs */
#define MF_1X2_WORD_ASM                                                                                               \
    "ldr %[t0], [%[in]], #4\n\t"                                                                                      \
    "sxtab16 %[t1], %[off], %[t0]\n\t"                                                                                \
    "sxtab16 %[t0], %[off], %[t0], ror #8\n\t"                                                                        \
    "ldr %[t2], [%[w], %[n]]\n\t"                                                                                     \
    "sxtb16 %[t3], %[t2]\n\t"                                                                                         \
    "smlad %[a1], %[t1], %[t3], %[a1]\n\t"                                                                            \
    "sxtb16 %[t2], %[t2], ror #8\n\t"                                                                                 \
    "smlad %[a1], %[t0], %[t2], %[a1]\n\t"                                                                            \
    "ldr %[t2], [%[w]], #4\n\t"                                                                                       \
    "sxtb16 %[t3], %[t2]\n\t"                                                                                         \
    "smlad %[a0], %[t1], %[t3], %[a0]\n\t"                                                                            \
    "sxtb16 %[t2], %[t2], ror #8\n\t"                                                                                 \
    "smlad %[a0], %[t0], %[t2], %[a0]\n\t"
/* 1 pixel x 1 row: 2 loads, 4 extensions and 2 SMLAD for 4 MACs (a1, a2 and n unused) */
#define MF_1X1_WORD_ASM                                                                                               \
    "ldr %[t0], [%[in]], #4\n\t"                                                                                      \
    "ldr %[t2], [%[w]], #4\n\t"                                                                                       \
    "sxtab16 %[t1], %[off], %[t0]\n\t"                                                                                \
    "sxtb16 %[t3], %[t2]\n\t"                                                                                         \
    "smlad %[a0], %[t1], %[t3], %[a0]\n\t"                                                                            \
    "sxtab16 %[t0], %[off], %[t0], ror #8\n\t"                                                                        \
    "sxtb16 %[t2], %[t2], ror #8\n\t"                                                                                 \
    "smlad %[a0], %[t0], %[t2], %[a0]\n\t"
/* 1 pixel x 4 rows (w, w + n, w2 = w + 2 n, w2 + n): 5 loads, 10 extensions and 8 SMLAD for 16 MACs; with the
 * zero point word, 13 registers, so the loop's end is read from memory (one load per 2 words) */
#define MF_1X4_ROWS_ASM(ptr, acc_lo, acc_hi)                                                                          \
    "ldr %[t2], [%[" ptr "], %[n]]\n\t"                                                                             \
    "sxtb16 %[t3], %[t2]\n\t"                                                                                       \
    "smlad %[" acc_hi "], %[t1], %[t3], %[" acc_hi "]\n\t"                                                          \
    "sxtb16 %[t2], %[t2], ror #8\n\t"                                                                               \
    "smlad %[" acc_hi "], %[t0], %[t2], %[" acc_hi "]\n\t"                                                          \
    "ldr %[t2], [%[" ptr "]], #4\n\t"                                                                               \
    "sxtb16 %[t3], %[t2]\n\t"                                                                                       \
    "smlad %[" acc_lo "], %[t1], %[t3], %[" acc_lo "]\n\t"                                                          \
    "sxtb16 %[t2], %[t2], ror #8\n\t"                                                                               \
    "smlad %[" acc_lo "], %[t0], %[t2], %[" acc_lo "]\n\t"
#define MF_1X4_WORD_ASM                                                                                               \
    "ldr %[t0], [%[in]], #4\n\t"                                                                                    \
    "sxtab16 %[t1], %[off], %[t0]\n\t"                                                                              \
    "sxtab16 %[t0], %[off], %[t0], ror #8\n\t" MF_1X4_ROWS_ASM("w", "a0", "a1") MF_1X4_ROWS_ASM("w2", "a2", "a3")
#define MF_1X4_OPERANDS                                                                                               \
    [a0] "+r"(acc0), [a1] "+r"(acc1), [a2] "+r"(acc2), [a3] "+r"(acc3), [in] "+r"(in), [w] "+r"(w0), [w2] "+r"(w2), \
        [t0] "=&r"(t0_), [t1] "=&r"(t1_), [t2] "=&r"(t2_), [t3] "=&r"(t3_)
#define MF_1XR_OPERANDS(in_ptr, w_ptr, sum0, sum1, sum2)                                                              \
    [a0] "+r"(sum0), [a1] "+r"(sum1), [a2] "+r"(sum2), [in] "+r"(in_ptr), [w] "+r"(w_ptr), [t0] "=&r"(t0_),          \
        [t1] "=&r"(t1_), [t2] "=&r"(t2_), [t3] "=&r"(t3_)
/* two words of `rows` (1, 2 or 3, a constant where inlined) rows per pass, then one */
#define MF_1XR_LOOP(WORD_ASM)                                                                                         \
    do {                                                                                                              \
        if (in != end8) {                                                                                             \
            __asm__ volatile("1:\n\t" WORD_ASM WORD_ASM "cmp %[in], %[end]\n\tbne 1b"                                 \
                             : MF_1XR_OPERANDS(in, w0, acc0, acc1, acc2)                                             \
                             : [end] "r"(end8), [n] "r"(in_c), [off] "r"(offset)                                     \
                             : "cc", "memory");                                                                       \
        }                                                                                                             \
        if (in_c & 4) {                                                                                               \
            __asm__ volatile(WORD_ASM                                                                                 \
                             : MF_1XR_OPERANDS(in, w0, acc0, acc1, acc2)                                             \
                             : [n] "r"(in_c), [off] "r"(offset)                                                      \
                             : "memory");                                                                             \
        }                                                                                                             \
    } while (0)
#endif

/* acc[c] = pixel in . filter row c (rows w0 + c * in_c, c < rows, rows 1 to 4) over the in_c channels */
MF_PAIRS_INLINE void mf_dot_1xr(const int8_t *in, const int8_t *w0, int32_t in_c, uint32_t offset, int rows,
                                int32_t acc[4])
{
    const int8_t *const words_end = in + (in_c & ~3);
    const int8_t *w2 = w0 + 2 * in_c;
    int32_t acc0 = 0;
    int32_t acc1 = 0;
    int32_t acc2 = 0;
    int32_t acc3 = 0;
    int32_t k;
#if MF_PW_ASM
    if (in != words_end) {
        const int8_t *const end8 = in + (in_c & ~7);
        uint32_t t0_;
        uint32_t t1_;
        uint32_t t2_;
        uint32_t t3_;
        if (rows == 4) {
            if (in != end8) {
                __asm__ volatile("1:\n\t" MF_1X4_WORD_ASM MF_1X4_WORD_ASM "ldr %[t0], %[end]\n\tcmp %[in], %[t0]\n\t"
                                 "bne 1b"
                                 : MF_1X4_OPERANDS
                                 : [end] "m"(end8), [n] "r"(in_c), [off] "r"(offset)
                                 : "cc", "memory");
            }
            if (in_c & 4) {
                __asm__ volatile(MF_1X4_WORD_ASM : MF_1X4_OPERANDS : [n] "r"(in_c), [off] "r"(offset) : "memory");
            }
        } else if (rows == 3) {
            MF_1XR_LOOP(MF_1X3_WORD_ASM);
        } else if (rows == 2) {
            MF_1XR_LOOP(MF_1X2_WORD_ASM);
        } else {
            MF_1XR_LOOP(MF_1X1_WORD_ASM);
        }
        w2 = w0 + 2 * in_c;
    }
#endif
    while (in != words_end) {
        const uint32_t x = mf_read_s8x4(in);
        const uint32_t even = mf_sxtab16(offset, x);
        const uint32_t odd = mf_sxtab16_ror8(offset, x);
        const uint32_t wa = mf_read_s8x4(w0);
        in += 4;
        acc0 = mf_smlad(odd, mf_sxtb16_ror8(wa), mf_smlad(even, mf_sxtb16(wa), acc0));
        if (rows > 1) {
            const uint32_t wb = mf_read_s8x4(w0 + in_c);
            acc1 = mf_smlad(odd, mf_sxtb16_ror8(wb), mf_smlad(even, mf_sxtb16(wb), acc1));
        }
        if (rows > 2) {
            const uint32_t wc = mf_read_s8x4(w2);
            acc2 = mf_smlad(odd, mf_sxtb16_ror8(wc), mf_smlad(even, mf_sxtb16(wc), acc2));
        }
        if (rows > 3) {
            const uint32_t wd = mf_read_s8x4(w2 + in_c);
            acc3 = mf_smlad(odd, mf_sxtb16_ror8(wd), mf_smlad(even, mf_sxtb16(wd), acc3));
        }
        w0 += 4;
        w2 += 4;
    }
    for (k = 0; k < (in_c & 3); k++) {
        const int32_t x = (int32_t)(int16_t)(uint16_t)offset + (int32_t)in[k];
        acc0 += x * (int32_t)w0[k];
        if (rows > 1) {
            acc1 += x * (int32_t)w0[in_c + k];
        }
        if (rows > 2) {
            acc2 += x * (int32_t)w2[k];
        }
        if (rows > 3) {
            acc3 += x * (int32_t)w2[in_c + k];
        }
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

/* The last pixel of an odd run (or a fully connected row): 4 output channels per pass, then the 1 to 3 left */
static void mf_pointwise_last(const mf_pointwise_args *a, const int8_t *in, int8_t *out, int fast)
{
    const int32_t in_c = a->in_c;
    const int32_t out_c = a->out_c;
    const uint32_t offset = mf_dup16(-a->input_zp);
    const int8_t *w = a->filter;
    int32_t out_ch = 0;
    int32_t acc[4];
    int32_t j;
    for (; out_ch + 4 <= out_c; out_ch += 4) {
        mf_dot_1xr(in, w, in_c, offset, 4, acc);
        w += 4 * (size_t)in_c;
        for (j = 0; j < 4; j++) {
            out[out_ch + j] = mf_pointwise_out1(a, acc[j], out_ch + j, fast);
        }
    }
    switch (out_c - out_ch) {
    case 3:
        mf_dot_1xr(in, w, in_c, offset, 3, acc);
        break;
    case 2:
        mf_dot_1xr(in, w, in_c, offset, 2, acc);
        break;
    case 1:
        mf_dot_1xr(in, w, in_c, offset, 1, acc);
        break;
    default:
        return;
    }
    for (j = 0; out_ch + j < out_c; j++) {
        out[out_ch + j] = mf_pointwise_out1(a, acc[j], out_ch + j, fast);
    }
}

/* Pixels 0 .. 2 * pairs - 1 in pairs, 2 output channels at a time, the biases the sums' start (an odd last channel
 * one at a time); inlined once per value of contiguous and fast (fixed mode: mf_pw_requant_fast for every channel). */
MF_PAIRS_INLINE void mf_pointwise_pairs(const mf_pointwise_args *a, const int8_t *input, int32_t in_step,
                                       int32_t pairs, int8_t *output, int contiguous, int fast)
{
    const int32_t in_c = a->in_c;
    const int32_t out_c = a->out_c;
    const int32_t output_zp = a->output_zp;
    const int32_t act_min = a->act_min;
    const int32_t act_max = a->act_max;
    const int32_t *const bias = a->bias;
    const mf_quant_params *const quant = a->quant;
    const uint32_t offset = mf_dup16(-a->input_zp);
    const int full = act_min == MF_INT8_MIN && act_max == MF_INT8_MAX;
    int32_t pair;
    (void)fast;
    (void)full;
    for (pair = 0; pair < pairs; pair++) {
        const int8_t *in0 = input + (size_t)(2 * pair) * (size_t)in_step;
        const int8_t *in1 = in0 + in_step;
        int8_t *out0 = output + (size_t)(2 * pair) * (size_t)out_c;
        int8_t *out1 = out0 + out_c;
        const int8_t *w0 = a->filter;
        int32_t out_ch = 0;
        for (; out_ch + 2 <= out_c; out_ch += 2) {
            int32_t acc[4];
            mf_dot_2x2(in0, in1, w0, in_c, offset, contiguous, bias != NULL ? bias[out_ch] : 0,
                       bias != NULL ? bias[out_ch + 1] : 0, acc);
            w0 += 2 * in_c;
#if MF_REQUANT_MODE == MF_REQUANT_FIXED
            if (fast) {
                int32_t v00;
                int32_t v01;
                int32_t v10;
                int32_t v11;
                {
                    MF_PW_CHANNEL(quant, out_ch, m, c, r);
                    v00 = mf_mbqm_right_fast(acc[0], m, c, r) + output_zp;
                    v10 = mf_mbqm_right_fast(acc[2], m, c, r) + output_zp;
                }
                {
                    MF_PW_CHANNEL(quant, out_ch + 1, m, c, r);
                    v01 = mf_mbqm_right_fast(acc[1], m, c, r) + output_zp;
                    v11 = mf_mbqm_right_fast(acc[3], m, c, r) + output_zp;
                }
                if (full) { /* no activation: one SSAT each */
                    v00 = mf_sat8(v00);
                    v01 = mf_sat8(v01);
                    v10 = mf_sat8(v10);
                    v11 = mf_sat8(v11);
                } else {
                    v00 = mf_clamp32(v00, act_min, act_max);
                    v01 = mf_clamp32(v01, act_min, act_max);
                    v10 = mf_clamp32(v10, act_min, act_max);
                    v11 = mf_clamp32(v11, act_min, act_max);
                }
                out0[out_ch] = (int8_t)v00;
                out0[out_ch + 1] = (int8_t)v01;
                out1[out_ch] = (int8_t)v10;
                out1[out_ch + 1] = (int8_t)v11;
                continue;
            }
#endif
            mf_pointwise_out2(quant, out_ch, acc[0], acc[2], out0 + out_ch, out1 + out_ch, output_zp, act_min,
                              act_max);
            mf_pointwise_out2(quant, out_ch + 1, acc[1], acc[3], out0 + out_ch + 1, out1 + out_ch + 1, output_zp,
                              act_min, act_max);
        }
        if (out_ch < out_c) {
            out0[out_ch] = mf_pointwise_out(a, mf_dot_1x1(in0, w0, in_c, a->input_zp), out_ch);
            out1[out_ch] = mf_pointwise_out(a, mf_dot_1x1(in1, w0, in_c, a->input_zp), out_ch);
        }
    }
}

void mf_pointwise_s8(const mf_pointwise_args *args, const int8_t *input, int32_t in_step, int32_t pixels,
                     int8_t *output)
{
    /* local copies: the int8 stores may alias any memory the arguments point to, locals they cannot (so the
     * filter, bias and requantization pointers are not reloaded after every output byte) */
    const mf_quant_params quant = *args->quant;
    mf_pointwise_args local = *args;
    const int32_t pairs = pixels / 2;
#if MF_REQUANT_MODE == MF_REQUANT_FIXED
    const int fast = mf_pw_fast_ok(&quant, local.out_c);
#else
    const int fast = 0;
#endif
    local.quant = &quant;
    if (pairs > 0) {
        if (in_step == local.in_c) {
            if (fast) {
                mf_pointwise_pairs(&local, input, in_step, pairs, output, 1, 1);
            } else {
                mf_pointwise_pairs(&local, input, in_step, pairs, output, 1, 0);
            }
        } else { /* strided 1x1 convolutions (rare): one copy, the general requantization */
            mf_pointwise_pairs(&local, input, in_step, pairs, output, 0, 0);
        }
    }
    if (pixels % 2 != 0) {
        const int8_t *last_in = input + (size_t)(pixels - 1) * (size_t)in_step;
        int8_t *last_out = output + (size_t)(pixels - 1) * (size_t)local.out_c;
        mf_pointwise_last(&local, last_in, last_out, fast);
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
