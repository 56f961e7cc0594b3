/* One output row of a depthwise convolution; see mf_internal.h.
 *
 * The filter is packed (mcuforge.h, "Packed depthwise filter"; mcuforge/codegen/layout.py): per group of 4 channels
 * and per tap, two words of two int16, {w_c0, w_c2} and {w_c1, w_c3}, the lanes SXTB16 gives the input word of the
 * 4 channels. The loops run group by group and, inside a group, pixel by pixel: the group's requantization constants
 * are prepared once per row (mf_dw_group), not once per output, and its taps are contiguous.
 *
 * Per row, the filter rows inside the input are found once (their input rows in a small table), and the pixels split
 * into three runs: left border, interior (every column of the window inside the input), right border. Interior
 * pixels take the window routine (mf_dw_window4: per filter row one block over its K_w taps, inline assembly for
 * K_w = 3, 5, 7 on a DSP core); border pixels the general one (mf_dw_taps4: only the taps inside the input).
 * Channels past the last whole group (C % 4) go one at a time.
 *
 * DSP path (mf_dsp.h), per tap and 4 channels: one word load of input, one LDRD of the packed weights, SXTAB16 twice
 * (adds -input_zp to two int8 lanes: x - zp in [-255, 255] is exact in int16), one SMLABB or SMLATT per channel: 8
 * instructions for 4 MACs. Requantization of the group's 4 outputs: fixed mode, per output one 64-bit multiply-add
 * with the channel's rounding constant (which holds the output zero point too) and one shift (mf_arith.h,
 * mf_mbqm_right_with); float mode, the float product rounded half to even (VCVTR) plus the zero point; then SSAT to
 * int8, the 4 bytes packed into a word, clamped with SSUB8/SEL and stored at once. Plain path: the same loops on
 * bytes and int16 values. The int32 sums wrap, and any order of summation gives the same result modulo 2^32, so
 * both paths give the bytes of the single-accumulator loop. */
#include "../mf_internal.h"

#define MF_DW_GROUP 4
#define MF_DW_MAX_ROWS 16 /* filter rows inside the input up to which the window routine is used */
#define MF_DW_ZP_SHIFT_MAX 21 /* right shifts e - 1 up to which the output zero point rides in the rounding constant */
#define MF_DW_BORDER 4 /* border pixels on each side whose window columns are found once per row */
#define MF_DW_FOLD_MIN_PIXELS 3 /* plain path: interior runs from which the input zero point leaves the taps */

#if defined(__GNUC__)
#define MF_DW_ALWAYS_INLINE static inline __attribute__((always_inline))
#else
#define MF_DW_ALWAYS_INLINE static inline
#endif

/* The int16 of a tap that holds channel c (0..3) of its group: {c0, c2, c1, c3}. */
static inline int32_t mf_dw_lane(int32_t c)
{
    return ((c & 1) << 1) | ((c >> 1) & 1);
}

/* Fixed-mode requantization of one channel: TFLite's rounding constant (mf_arith.h, mf_mbqm_round) with the output
 * zero point in its high word, the multiplier and the final shift. */
typedef struct {
    uint32_t round_lo;
    uint32_t round_hi;
    int32_t multiplier;
    int32_t rshift; /* -shift - 1 */
} mf_dw_rq;

/* What the outputs of one group of 4 channels need, prepared once per row (the assembly reads it at fixed offsets:
 * rq at 0, act_min4 at 64). */
typedef struct {
#if MF_REQUANT_MODE == MF_REQUANT_FIXED
    mf_dw_rq rq[MF_DW_GROUP];
#else
    float scale[MF_DW_GROUP];
#endif
    uint32_t act_min4; /* act_min in each byte */
    uint32_t act_max4;
    int32_t bias[MF_DW_GROUP]; /* 0 without bias */
    int32_t right; /* fixed mode: every rq holds a right shift (the inline path); otherwise mf_requant_fixed */
} mf_dw_group;

#if MF_REQUANT_MODE == MF_REQUANT_FIXED
typedef char mf_dw_group_layout[(offsetof(mf_dw_group, act_min4) == 64 && sizeof(mf_dw_rq) == 16) ? 1 : -1];
#endif

/* What every pixel reads, copied out of the stage once per row (stores to int8 outputs may alias any pointed-to
 * object, so values read through the stage pointer would be reloaded after every output byte). */
typedef struct {
    const int16_t *filter; /* packed */
    const int32_t *bias;
    mf_quant_params quant;
    int32_t taps; /* K_h * K_w */
    int32_t k_w;
    int32_t input_zp;
    int32_t output_zp;
    int32_t act_min;
    int32_t act_max;
} mf_dw_ctx;

/* The four accumulators of channels ch .. ch + 3. */
typedef struct {
    int32_t c0;
    int32_t c1;
    int32_t c2;
    int32_t c3;
} mf_acc4;

static inline void mf_dw_group_make(const mf_dw_ctx *ctx, int32_t ch, mf_dw_group *group)
{
    int32_t k;
    group->right = 1;
#if MF_REQUANT_MODE == MF_REQUANT_FIXED
    for (k = 0; k < MF_DW_GROUP; k++) {
        const int32_t shift = ctx->quant.shift[ch + k];
        mf_dw_rq *rq = &group->rq[k];
        rq->multiplier = ctx->quant.multiplier[ch + k];
        rq->round_lo = 0;
        rq->round_hi = 0;
        rq->rshift = 0;
        if (shift < 0 && shift >= -MF_DW_ZP_SHIFT_MAX - 1) {
            /* + zp * 2^rshift in the high word: |high word| < 2^30 + 2^20 + 1 for e = -shift <= 22 and
             * |zp * 2^rshift| <= 2^28, so the sum stays inside int32 and (high + zp * 2^rshift) >> rshift =
             * (high >> rshift) + zp */
            const uint64_t round = mf_mbqm_round(-shift);
            rq->rshift = -shift - 1;
            rq->round_lo = (uint32_t)round;
            rq->round_hi = (uint32_t)(round >> 32) + (uint32_t)(ctx->output_zp * ((int32_t)1 << rq->rshift));
        } else {
            group->right = 0; /* a left shift (or none), or an unusually large right shift: the general path */
        }
    }
#else
    for (k = 0; k < MF_DW_GROUP; k++) {
        group->scale[k] = ctx->quant.scale[ch + k];
    }
#endif
    group->act_min4 = (uint32_t)(uint8_t)ctx->act_min * 0x01010101u;
    group->act_max4 = (uint32_t)(uint8_t)ctx->act_max * 0x01010101u;
    for (k = 0; k < MF_DW_GROUP; k++) {
        group->bias[k] = ctx->bias != NULL ? ctx->bias[ch + k] : 0;
    }
}

#if MF_DSP
typedef uint32_t mf_dw_zp; /* -input_zp in both int16 lanes */

static inline mf_dw_zp mf_dw_zp_make(int32_t input_zp)
{
    return mf_dup16(-input_zp);
}

/* Two words of the packed filter (4-byte aligned: one LDRD). */
static inline uint32_t mf_dw_word(const int16_t *p)
{
    uint32_t word;
    memcpy(&word, p, sizeof(word));
    return word;
}

static inline void mf_dw_tap4(const int8_t *in, const int16_t *weights, mf_dw_zp zp, mf_acc4 *acc)
{
    const uint32_t x = mf_read_s8x4(in);
    const uint32_t w_even = mf_dw_word(weights);     /* {w_c0, w_c2} */
    const uint32_t w_odd = mf_dw_word(weights + 2); /* {w_c1, w_c3} */
    const uint32_t x_even = mf_sxtab16(zp, x);       /* {x_c0, x_c2} minus the zero point */
    const uint32_t x_odd = mf_sxtab16_ror8(zp, x);
    acc->c0 = mf_smlabb(x_even, w_even, acc->c0);
    acc->c2 = mf_smlatt(x_even, w_even, acc->c2);
    acc->c1 = mf_smlabb(x_odd, w_odd, acc->c1);
    acc->c3 = mf_smlatt(x_odd, w_odd, acc->c3);
}

/* Saturates each value to int8 and packs the 4 bytes into a word (v0 lowest). */
#if MF_DSP_NATIVE
static inline uint32_t mf_dw_pack_sat(int32_t v0, int32_t v1, int32_t v2, int32_t v3)
{
    const uint32_t b0 = (uint32_t)__ssat(v0, 8) & 0xFFu;
    const uint32_t b1 = (uint32_t)__ssat(v1, 8) & 0xFFu;
    const uint32_t b2 = (uint32_t)__ssat(v2, 8) & 0xFFu;
    const uint32_t b3 = (uint32_t)__ssat(v3, 8);
    return b0 | (b1 << 8) | (b2 << 16) | (b3 << 24);
}

/* Per byte lane, the smaller of the int8 values of x and y: SSUB8 sets GE where y >= x, SEL takes x there. */
static inline uint32_t mf_dw_min_s8x4(uint32_t x, uint32_t y)
{
    uint32_t result;
    __asm__("ssub8 %0, %2, %1\n\tsel %0, %1, %2" : "=&r"(result) : "r"(x), "r"(y) : "cc");
    return result;
}
#else
static inline uint32_t mf_dw_sat8(int32_t v)
{
    return (uint32_t)(v < MF_INT8_MIN ? MF_INT8_MIN : (v > MF_INT8_MAX ? MF_INT8_MAX : v)) & 0xFFu;
}

static inline uint32_t mf_dw_pack_sat(int32_t v0, int32_t v1, int32_t v2, int32_t v3)
{
    return mf_dw_sat8(v0) | (mf_dw_sat8(v1) << 8) | (mf_dw_sat8(v2) << 16) | (mf_dw_sat8(v3) << 24);
}

static inline uint32_t mf_dw_min_s8x4(uint32_t x, uint32_t y)
{
    uint32_t result = 0;
    int lane;
    for (lane = 0; lane < 4; lane++) {
        const uint32_t mask = 0xFFu << (8 * lane);
        result |= ((int8_t)(uint8_t)(x >> (8 * lane)) <= (int8_t)(uint8_t)(y >> (8 * lane)) ? x : y) & mask;
    }
    return result;
}
#endif
#else
typedef int32_t mf_dw_zp;

static inline mf_dw_zp mf_dw_zp_make(int32_t input_zp)
{
    return input_zp;
}

static inline void mf_dw_tap4(const int8_t *in, const int16_t *weights, mf_dw_zp zp, mf_acc4 *acc)
{
    acc->c0 += ((int32_t)in[0] - zp) * (int32_t)weights[0];
    acc->c2 += ((int32_t)in[2] - zp) * (int32_t)weights[1];
    acc->c1 += ((int32_t)in[1] - zp) * (int32_t)weights[2];
    acc->c3 += ((int32_t)in[3] - zp) * (int32_t)weights[3];
}
#endif

/* The accumulators' start. DSP: the bias (the instructions wrap modulo 2^32 like mf_wrapping_add); plain: 0, the
 * bias added after the sums with mf_wrapping_add (plain int32 sums would overflow from a large bias). */
static inline mf_acc4 mf_dw_acc_start(const mf_dw_group *group)
{
#if MF_DSP
    const mf_acc4 acc = {group->bias[0], group->bias[1], group->bias[2], group->bias[3]};
#else
    const mf_acc4 acc = {0, 0, 0, 0};
    (void)group;
#endif
    return acc;
}

static inline int32_t mf_dw_acc_end(int32_t acc, const mf_dw_group *group, int32_t k)
{
#if MF_DSP
    (void)group;
    (void)k;
    return acc;
#else
    return mf_wrapping_add(acc, group->bias[k]);
#endif
}

/* Requantized and clamped value of accumulator acc (bias included) of channel k of the group (the general path:
 * any shift, any mode). */
static inline int32_t mf_dw_requant(int32_t acc, const mf_dw_ctx *ctx, const mf_dw_group *group, int32_t ch,
                                    int32_t k)
{
#if MF_REQUANT_MODE == MF_REQUANT_FIXED
    (void)group;
    return mf_requant_fixed_fast(acc, ctx->quant.multiplier[ch + k], ctx->quant.shift[ch + k], ctx->output_zp,
                                 ctx->act_min, ctx->act_max);
#else
    (void)ch;
    return mf_requant_float(acc, group->scale[k], ctx->output_zp, ctx->act_min, ctx->act_max);
#endif
}

#if MF_REQUANT_MODE == MF_REQUANT_FIXED
/* mf_requant_fixed_fast's right-shift branch before its clamp, with the group's constants: the output zero point is
 * in the rounding constant (mf_dw_group_make: zp * 2^rshift added to the high word, exact after the shift). */
static inline int32_t mf_dw_scale(int32_t acc, const mf_dw_group *group, int32_t k)
{
    const mf_dw_rq *rq = &group->rq[k];
    return mf_mbqm_right_with(acc, rq->multiplier, ((uint64_t)rq->round_hi << 32) | rq->round_lo, rq->rshift);
}
#elif MF_DSP
/* round_half_even(acc * scale) + zp; outside the int8 range only its side matters (the caller saturates). Rounding
 * and clamping commute (both monotonic, the bounds are integers), so this is mf_requant_float before its clamp. */
static inline int32_t mf_dw_scale_float(int32_t acc, float scale, int32_t zp)
{
    const float v = (float)acc * scale;
#if MF_DSP_NATIVE && defined(__ARM_FP) && (__ARM_FP & 4)
    /* VCVTR rounds with the FPSCR mode, round to nearest even by default, and saturates to int32 */
    float rounded;
    int32_t r;
    __asm__("vcvtr.s32.f32 %0, %1" : "=t"(rounded) : "t"(v));
    memcpy(&r, &rounded, sizeof(r));
    return __qadd(r, zp);
#else
    const float limit = 4194304.0f; /* 2^22, mf_round_half_even_f's range; past it the int8 result saturates */
    return mf_round_half_even_f(v < -limit ? -limit : (v > limit ? limit : v)) + zp;
#endif
}
#endif

/* Bias (plain path), requantization and clamp of the group's 4 channels into out. */
MF_DW_ALWAYS_INLINE void mf_dw_store4(const mf_acc4 *acc, const mf_dw_ctx *ctx, const mf_dw_group *group, int32_t ch,
                                int8_t *out)
{
#if MF_REQUANT_MODE == MF_REQUANT_FIXED || MF_DSP
    int32_t v0;
    int32_t v1;
    int32_t v2;
    int32_t v3;
#if MF_REQUANT_MODE == MF_REQUANT_FIXED
    if (group->right) {
        v0 = mf_dw_scale(mf_dw_acc_end(acc->c0, group, 0), group, 0);
        v1 = mf_dw_scale(mf_dw_acc_end(acc->c1, group, 1), group, 1);
        v2 = mf_dw_scale(mf_dw_acc_end(acc->c2, group, 2), group, 2);
        v3 = mf_dw_scale(mf_dw_acc_end(acc->c3, group, 3), group, 3);
#else
    {
        v0 = mf_dw_scale_float(acc->c0, group->scale[0], ctx->output_zp);
        v1 = mf_dw_scale_float(acc->c1, group->scale[1], ctx->output_zp);
        v2 = mf_dw_scale_float(acc->c2, group->scale[2], ctx->output_zp);
        v3 = mf_dw_scale_float(acc->c3, group->scale[3], ctx->output_zp);
#endif
#if MF_DSP
        {
            /* clamp(v) = clamp(sat8(v)): [act_min, act_max] lies inside the int8 range */
            uint32_t word = mf_dw_pack_sat(v0, v1, v2, v3);
            word = mf_max_s8x4(word, group->act_min4);
            word = mf_dw_min_s8x4(word, group->act_max4);
            memcpy(out, &word, sizeof(word));
        }
#else
        out[0] = (int8_t)mf_clamp32(v0, ctx->act_min, ctx->act_max);
        out[1] = (int8_t)mf_clamp32(v1, ctx->act_min, ctx->act_max);
        out[2] = (int8_t)mf_clamp32(v2, ctx->act_min, ctx->act_max);
        out[3] = (int8_t)mf_clamp32(v3, ctx->act_min, ctx->act_max);
#endif
        return;
    }
#endif
    out[0] = (int8_t)mf_dw_requant(mf_dw_acc_end(acc->c0, group, 0), ctx, group, ch, 0);
    out[1] = (int8_t)mf_dw_requant(mf_dw_acc_end(acc->c1, group, 1), ctx, group, ch, 1);
    out[2] = (int8_t)mf_dw_requant(mf_dw_acc_end(acc->c2, group, 2), ctx, group, ch, 2);
    out[3] = (int8_t)mf_dw_requant(mf_dw_acc_end(acc->c3, group, 3), ctx, group, ch, 3);
}

/* Where the filter rows inside the input start, for the output row being computed. */
typedef struct {
    const int8_t *rows; /* the rows argument of mf_depthwise_row_s8 */
    size_t row_bytes;
    int32_t ring_rows;
    int32_t dil_h;
    int32_t y_first; /* filter rows y_first .. y_end - 1 are inside the input */
    int32_t y_end;
    int32_t slot_first; /* ring slot of filter row y_first */
    const int8_t *start[MF_DW_MAX_ROWS]; /* input row of filter row y_first + i, when y_end - y_first fits */
} mf_dw_window_rows;

/* The interior pixels of one group: `count` pixels from input column x_base (bytes into a row, channel ch included)
 * on by pixel_step, outputs from out on by out_step; w_first: the group's packed weights of filter row y_first. */
typedef struct {
    const int16_t *w_first;
    size_t x_base;
    size_t pixel_step;
    size_t x_step; /* between the taps of a filter row: dilation.w * C */
    int32_t count;
    int8_t *out;
    size_t out_step;
} mf_dw_run;

#if MF_DSP_NATIVE && defined(__OPTIMIZE__)
/* Taps of one filter row for 4 channels in registers (12: the 4 sums, r, w, s, the zero point word and 4 values).
 * Tap k_x reads the input at r + k_x * s (LDR's shifted register offset reaches 2 * s; K_w = 5 and 7 move r on by
 * 2 * s) and the next 8 bytes of packed weights (LDRD, w post-incremented: w ends at the next filter row's). */
#define MF_DW_TAP_ASM(address)                                                                                        \
    "ldr %[x], " address "\n\t"                                                                                       \
    "ldrd %[we], %[wo], [%[w]], #8\n\t"                                                                               \
    "sxtab16 %[xe], %[off], %[x]\n\t"                                                                                 \
    "sxtab16 %[x], %[off], %[x], ror #8\n\t"                                                                          \
    "smlabb %[a0], %[xe], %[we], %[a0]\n\t"                                                                           \
    "smlatt %[a2], %[xe], %[we], %[a2]\n\t"                                                                           \
    "smlabb %[a1], %[x], %[wo], %[a1]\n\t"                                                                            \
    "smlatt %[a3], %[x], %[wo], %[a3]\n\t"
#define MF_DW_TAPS3_ASM MF_DW_TAP_ASM("[%[r]]") MF_DW_TAP_ASM("[%[r], %[s]]") MF_DW_TAP_ASM("[%[r], %[s], lsl #1]")
#define MF_DW_NEXT2_ASM                                                                                               \
    "add %[r], %[r], %[s], lsl #1\n\t" MF_DW_TAP_ASM("[%[r], %[s]]") MF_DW_TAP_ASM("[%[r], %[s], lsl #1]")
#define MF_DW_ROW_ASM(code, r_, w_, s_, zp_)                                                                        \
    do {                                                                                                              \
        const int8_t *row_ = (r_);                                                                                    \
        uint32_t x;                                                                                                   \
        uint32_t xe;                                                                                                  \
        uint32_t we;                                                                                                  \
        uint32_t wo;                                                                                                  \
        __asm__ volatile(code                                                                                         \
                         : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [r] "+r"(row_),             \
                           [w] "+r"(w_), [x] "=&r"(x), [xe] "=&r"(xe), [we] "=&r"(we), [wo] "=&r"(wo)                 \
                         : [s] "r"(s_), [off] "r"(zp_)                                                                \
                         : "memory");                                                                                 \
    } while (0)

#if MF_REQUANT_MODE == MF_REQUANT_FIXED
/* Fixed-mode requantization of one sum (mf_dw_scale, bit for bit), 8 instructions: SMLAL adds acc * multiplier to
 * the rounding constant; TFLite's sign term, -2^31 when acc * multiplier < 0, only lowers the high word, by one
 * when the low word is below 2^31 (a borrow): (acc ^ multiplier) & ~low, its sign bit; then the shift and SSAT. */
#define MF_DW_RQ_ASM(a, round, multiplier)                                                                            \
    "ldrd %[lo], %[hi], [%[g], #" round "]\n\t"                                                                       \
    "ldrd %[m], %[rs], [%[g], #" multiplier "]\n\t"                                                                  \
    "smlal %[lo], %[hi], %[" a "], %[m]\n\t"                                                                          \
    "eor %[m], %[" a "], %[m]\n\t"                                                                                    \
    "bic %[m], %[m], %[lo]\n\t"                                                                                       \
    "sub %[hi], %[hi], %[m], lsr #31\n\t"                                                                             \
    "asr %[hi], %[hi], %[rs]\n\t"                                                                                     \
    "ssat %[" a "], #8, %[hi]\n\t"
/* The 4 sums of a group requantized, packed into a word (BFI), clamped to [act_min, act_max] (SSUB8/SEL) and stored:
 * mf_dw_store4's fixed right-shift path in 41 instructions. */
#define MF_DW_STORE_ASM(group_, out_)                                                                                \
    do {                                                                                                              \
        uint32_t lo;                                                                                                  \
        uint32_t hi;                                                                                                  \
        uint32_t m;                                                                                                   \
        uint32_t rs;                                                                                                  \
        __asm__ volatile(MF_DW_RQ_ASM("a0", "0", "8") MF_DW_RQ_ASM("a1", "16", "24") MF_DW_RQ_ASM("a2", "32", "40")  \
                             MF_DW_RQ_ASM("a3", "48", "56")                                                           \
                         "bfi %[a0], %[a1], #8, #8\n\t"                                                               \
                         "bfi %[a0], %[a2], #16, #8\n\t"                                                              \
                         "bfi %[a0], %[a3], #24, #8\n\t"                                                              \
                         "ldrd %[lo], %[hi], [%[g], #64]\n\t"                                                         \
                         "ssub8 %[m], %[a0], %[lo]\n\t"                                                               \
                         "sel %[a0], %[a0], %[lo]\n\t"                                                                \
                         "ssub8 %[m], %[hi], %[a0]\n\t"                                                               \
                         "sel %[a0], %[a0], %[hi]\n\t"                                                                \
                         "str %[a0], [%[out]]\n\t"                                                                    \
                         : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [lo] "=&r"(lo),             \
                           [hi] "=&r"(hi), [m] "=&r"(m), [rs] "=&r"(rs)                                               \
                         : [g] "r"(group_), [out] "r"(out_)                                                           \
                         : "memory", "cc");                                                                           \
    } while (0)
#endif

/* The interior pixels of one group in assembly blocks, one per filter row; k_w, rows and fast are constants where
 * the caller specialises (3, 3, 1: the 3x3 window in three blocks, the fixed-mode store in assembly). */
MF_DW_ALWAYS_INLINE void mf_dw_interior_asm(const mf_dw_ctx *ctx, const mf_dw_window_rows *wr,
                                            const mf_dw_group *group, int32_t ch, const mf_dw_run *run, mf_dw_zp zp,
                                            int32_t k_w, int32_t rows, int fast)
{
    const size_t s = run->x_step;
    size_t x_base = run->x_base;
    int8_t *out = run->out;
    int32_t n;
    for (n = 0; n < run->count; n++) {
        int32_t a0 = group->bias[0];
        int32_t a1 = group->bias[1];
        int32_t a2 = group->bias[2];
        int32_t a3 = group->bias[3];
        const int16_t *w = run->w_first;
        if (k_w == 3 && rows == 3) {
            MF_DW_ROW_ASM(MF_DW_TAPS3_ASM, wr->start[0] + x_base, w, s, zp);
            MF_DW_ROW_ASM(MF_DW_TAPS3_ASM, wr->start[1] + x_base, w, s, zp);
            MF_DW_ROW_ASM(MF_DW_TAPS3_ASM, wr->start[2] + x_base, w, s, zp);
        } else {
            int32_t i;
            for (i = 0; i < rows; i++) {
                const int8_t *r = wr->start[i] + x_base;
                if (k_w == 3) {
                    MF_DW_ROW_ASM(MF_DW_TAPS3_ASM, r, w, s, zp);
                } else if (k_w == 5) {
                    MF_DW_ROW_ASM(MF_DW_TAPS3_ASM MF_DW_NEXT2_ASM, r, w, s, zp);
                } else if (k_w == 7) {
                    MF_DW_ROW_ASM(MF_DW_TAPS3_ASM MF_DW_NEXT2_ASM MF_DW_NEXT2_ASM, r, w, s, zp);
                } else {
                    int32_t k_x;
                    for (k_x = 0; k_x < k_w; k_x++) {
                        MF_DW_ROW_ASM(MF_DW_TAP_ASM("[%[r]]"), r, w, s, zp);
                        r += s;
                    }
                }
            }
        }
#if MF_REQUANT_MODE == MF_REQUANT_FIXED
        if (fast || group->right) {
            MF_DW_STORE_ASM(group, out);
        } else
#endif
        {
            const mf_acc4 acc = {a0, a1, a2, a3};
            (void)fast;
            mf_dw_store4(&acc, ctx, group, ch, out);
        }
        x_base += run->pixel_step;
        out += run->out_step;
    }
}

static void mf_dw_interior(const mf_dw_ctx *ctx, const mf_dw_window_rows *wr, const mf_dw_group *group, int32_t ch,
                           const mf_dw_run *run, mf_dw_zp zp)
{
    const int32_t rows = wr->y_end - wr->y_first;
    if (ctx->k_w == 3 && rows == 3 && MF_REQUANT_MODE == MF_REQUANT_FIXED && group->right) {
        mf_dw_interior_asm(ctx, wr, group, ch, run, zp, 3, 3, 1);
    } else if (ctx->k_w == 3 && rows == 3) {
        mf_dw_interior_asm(ctx, wr, group, ch, run, zp, 3, 3, 0);
    } else {
        mf_dw_interior_asm(ctx, wr, group, ch, run, zp, ctx->k_w, rows, 0);
    }
}
#else
#if !MF_DSP
/* Plain path, interior pixels: x * w summed without the zero point, which the start takes instead (mf_dw_fold). */
static inline void mf_dw_tap4_raw(const int8_t *in, const int16_t *weights, mf_acc4 *acc)
{
    acc->c0 += (int32_t)in[0] * (int32_t)weights[0];
    acc->c2 += (int32_t)in[2] * (int32_t)weights[1];
    acc->c1 += (int32_t)in[1] * (int32_t)weights[2];
    acc->c3 += (int32_t)in[3] * (int32_t)weights[3];
}

/* The accumulators' start that moves the input zero point out of the taps: -input_zp x the sum of the weights of
 * `taps` taps from w_first (sum (x - zp) * w = sum x * w - zp * sum w, for a window whose taps all lie inside the
 * input; |start| <= 128 * 127 * taps, and the bias is added at the end as always). */
static inline mf_acc4 mf_dw_fold(const int16_t *w_first, int32_t taps, int32_t input_zp)
{
    int32_t s0 = 0;
    int32_t s1 = 0;
    int32_t s2 = 0;
    int32_t s3 = 0;
    mf_acc4 start;
    int32_t t;
    for (t = 0; t < taps; t++) {
        s0 += w_first[0];
        s2 += w_first[1];
        s1 += w_first[2];
        s3 += w_first[3];
        w_first += MF_DW_GROUP;
    }
    start.c0 = -input_zp * s0;
    start.c1 = -input_zp * s1;
    start.c2 = -input_zp * s2;
    start.c3 = -input_zp * s3;
    return start;
}
#endif

/* The interior pixels of one group in C (the plain path, and the DSP path with its portable instructions); k_w and
 * rows are constants where the caller specialises (3, 3: the taps unrolled). */
MF_DW_ALWAYS_INLINE void mf_dw_interior_c(const mf_dw_ctx *ctx, const mf_dw_window_rows *wr, const mf_dw_group *group,
                                          int32_t ch, const mf_dw_run *run, mf_dw_zp zp, int32_t k_w, int32_t rows,
                                          int fold)
{
    size_t x_base = run->x_base;
    int8_t *out = run->out;
    int32_t n;
    mf_acc4 start = mf_dw_acc_start(group);
#if MF_DSP
    (void)fold;
#else
    if (fold) {
        start = mf_dw_fold(run->w_first, rows * k_w, ctx->input_zp);
    }
#endif
    for (n = 0; n < run->count; n++) {
        mf_acc4 acc = start;
        const int16_t *w = run->w_first;
        int32_t i;
        for (i = 0; i < rows; i++) {
            const int8_t *r = wr->start[i] + x_base;
            int32_t k_x;
            for (k_x = 0; k_x < k_w; k_x++) {
#if !MF_DSP
                if (fold) {
                    mf_dw_tap4_raw(r, w, &acc);
                } else
#endif
                {
                    mf_dw_tap4(r, w, zp, &acc);
                }
                r += run->x_step;
                w += MF_DW_GROUP;
            }
        }
        mf_dw_store4(&acc, ctx, group, ch, out);
        x_base += run->pixel_step;
        out += run->out_step;
    }
}

static void mf_dw_interior(const mf_dw_ctx *ctx, const mf_dw_window_rows *wr, const mf_dw_group *group, int32_t ch,
                           const mf_dw_run *run, mf_dw_zp zp)
{
    const int32_t rows = wr->y_end - wr->y_first;
    /* plain path: the zero point out of the taps pays from a few pixels on (the fold reads the window once); up to
     * 4096 taps the start and the sums stay far inside int32 (2^15 x taps) */
    const int fold = !MF_DSP && run->count >= MF_DW_FOLD_MIN_PIXELS && rows * ctx->k_w <= 4096;
    if (ctx->k_w == 3 && rows == 3 && fold) {
        mf_dw_interior_c(ctx, wr, group, ch, run, zp, 3, 3, 1);
    } else if (ctx->k_w == 3 && rows == 3) {
        mf_dw_interior_c(ctx, wr, group, ch, run, zp, 3, 3, 0);
    } else {
        mf_dw_interior_c(ctx, wr, group, ch, run, zp, ctx->k_w, rows, fold);
    }
}
#endif

/* Group `ch` of one pixel, the taps k_y in [y_first, y_end) x k_x in [x_first, x_end) (any window). */
static inline void mf_dw_taps4(const mf_dw_ctx *ctx, const mf_dw_window_rows *wr, size_t x_base, size_t x_step,
                               int32_t x_first, int32_t x_end, const int16_t *group_filter, mf_dw_zp zp, mf_acc4 *acc)
{
    int32_t slot = wr->slot_first;
    int32_t k_y;
    for (k_y = wr->y_first; k_y < wr->y_end; k_y++) {
        const int8_t *in = wr->rows + (size_t)slot * wr->row_bytes + x_base;
        const int16_t *w = group_filter + (size_t)(k_y * ctx->k_w + x_first) * MF_DW_GROUP;
        int32_t k_x;
        for (k_x = x_first; k_x < x_end; k_x++) {
            mf_dw_tap4(in, w, zp, acc);
            in += x_step;
            w += MF_DW_GROUP;
        }
        /* two taps inside the input are less than ring_rows apart (a ring holds a whole window) */
        slot += wr->dil_h;
        if (slot >= wr->ring_rows) {
            slot -= wr->ring_rows;
        }
    }
}

/* One channel ch (past the last whole group) of one pixel, the taps of mf_dw_taps4. */
static inline int8_t mf_dw_channel(const mf_dw_ctx *ctx, const mf_dw_window_rows *wr, size_t x_base, size_t x_step,
                                   int32_t x_first, int32_t x_end, int32_t ch)
{
    const int16_t *filter = ctx->filter + (size_t)(ch / MF_DW_GROUP) * (size_t)ctx->taps * MF_DW_GROUP +
                            mf_dw_lane(ch % MF_DW_GROUP);
    int32_t slot = wr->slot_first;
    int32_t acc = 0;
    int32_t k_y;
    for (k_y = wr->y_first; k_y < wr->y_end; k_y++) {
        const int8_t *in = wr->rows + (size_t)slot * wr->row_bytes + x_base + (size_t)ch;
        const int16_t *w = filter + (size_t)(k_y * ctx->k_w + x_first) * MF_DW_GROUP;
        int32_t k_x;
        for (k_x = x_first; k_x < x_end; k_x++) {
            acc += ((int32_t)*in - ctx->input_zp) * (int32_t)*w;
            in += x_step;
            w += MF_DW_GROUP;
        }
        slot += wr->dil_h;
        if (slot >= wr->ring_rows) {
            slot -= wr->ring_rows;
        }
    }
    if (ctx->bias != NULL) {
        acc = mf_wrapping_add(acc, ctx->bias[ch]);
    }
#if MF_REQUANT_MODE == MF_REQUANT_FIXED
    return (int8_t)mf_requant_fixed_fast(acc, ctx->quant.multiplier[ch], ctx->quant.shift[ch], ctx->output_zp,
                                         ctx->act_min, ctx->act_max);
#else
    return (int8_t)mf_requant_float(acc, ctx->quant.scale[ch], ctx->output_zp, ctx->act_min, ctx->act_max);
#endif
}

/* The geometry of one output row: which pixels have their whole window's width inside the input. */
typedef struct {
    int32_t k_w;
    int32_t in_w;
    int32_t stride_w;
    int32_t dil_w;
    int32_t pad_left;
    int32_t channels;
} mf_dw_columns;

/* Where a border pixel's window lies inside the input: taps k_x in [x_first, x_end), the first at column byte x_base
 * (channel 0); found once per row for up to MF_DW_BORDER pixels on each side. */
typedef struct {
    int32_t x_first;
    int32_t x_end;
    size_t x_base;
} mf_dw_border;

static void mf_dw_border_make(const mf_dw_columns *cols, int32_t out_x, mf_dw_border *border)
{
    const int32_t in_x_origin = out_x * cols->stride_w - cols->pad_left;
    mf_window_taps(in_x_origin, cols->dil_w, cols->k_w, cols->in_w, &border->x_first, &border->x_end);
    border->x_base = 0;
    if (border->x_first < border->x_end) {
        border->x_base = (size_t)(in_x_origin + border->x_first * cols->dil_w) * (size_t)cols->channels;
    }
}

/* Pixel out_x of group ch by the general routine (border pixels, or every pixel when the window has more rows
 * inside the input than the table holds); known: its mf_dw_border, or NULL. */
static void mf_dw_border4(const mf_dw_ctx *ctx, const mf_dw_window_rows *wr, const mf_dw_columns *cols,
                          const mf_dw_group *group, const int16_t *group_filter, mf_dw_zp zp, int32_t ch,
                          int32_t out_x, const mf_dw_border *known, int8_t *out_row)
{
    mf_acc4 acc = mf_dw_acc_start(group);
    mf_dw_border border;
    if (known == NULL) {
        mf_dw_border_make(cols, out_x, &border);
        known = &border;
    }
    if (known->x_first < known->x_end) {
        mf_dw_taps4(ctx, wr, known->x_base + (size_t)ch, (size_t)cols->dil_w * (size_t)cols->channels,
                    known->x_first, known->x_end, group_filter, zp, &acc);
    }
    mf_dw_store4(&acc, ctx, group, ch, out_row + (size_t)out_x * (size_t)cols->channels + (size_t)ch);
}

void mf_depthwise_row_s8(const mf_conv_stage *stage, const int8_t *rows, int32_t ring_rows, int32_t in_h,
                         int32_t in_w, int32_t channels, int32_t out_y, int32_t out_w, int8_t *out_row)
{
    const mf_conv_params *p = &stage->params;
    const int32_t k_w = stage->filter_dims.w;
    const mf_dw_ctx ctx = {(const int16_t *)(const void *)stage->filter, stage->bias, stage->quant,
                           stage->filter_dims.h * k_w, k_w, p->input_zp, p->output_zp, p->act_min, p->act_max};
    const mf_dw_columns cols = {k_w, in_w, p->stride.w, p->dilation.w, p->padding.left, channels};
    const mf_dw_zp zp = mf_dw_zp_make(p->input_zp);
    const int32_t in_y_origin = out_y * p->stride.h - p->padding.top;
    const size_t group_filter_step = (size_t)ctx.taps * MF_DW_GROUP;
    mf_dw_window_rows wr;
    mf_dw_border left[MF_DW_BORDER];
    mf_dw_border right[MF_DW_BORDER];
    int32_t interior_first = 0; /* pixels [interior_first, interior_end) have every window column inside */
    int32_t interior_end = out_w;
    int32_t ch;
    int32_t out_x;

    wr.rows = rows;
    wr.row_bytes = (size_t)in_w * (size_t)channels;
    wr.ring_rows = ring_rows;
    wr.dil_h = p->dilation.h;
    wr.slot_first = 0;
    mf_window_taps(in_y_origin, p->dilation.h, stage->filter_dims.h, in_h, &wr.y_first, &wr.y_end);
    if (wr.y_first < wr.y_end) {
        wr.slot_first = (in_y_origin + wr.y_first * p->dilation.h) % ring_rows;
    }
    if (wr.y_first < wr.y_end && wr.y_end - wr.y_first <= MF_DW_MAX_ROWS) {
        int32_t slot = wr.slot_first;
        int32_t i;
        for (i = 0; i < wr.y_end - wr.y_first; i++) {
            wr.start[i] = rows + (size_t)slot * wr.row_bytes;
            slot += wr.dil_h;
            if (slot >= ring_rows) {
                slot -= ring_rows;
            }
        }
        /* interior: in_x_origin >= 0 and in_x_origin + dil_w * (k_w - 1) < in_w, a run of consecutive out_x */
        while (interior_first < out_w && interior_first * p->stride.w < p->padding.left) {
            interior_first++;
        }
        while (interior_end > interior_first &&
               (interior_end - 1) * p->stride.w - p->padding.left + p->dilation.w * (k_w - 1) >= in_w) {
            interior_end--;
        }
    } else {
        interior_first = interior_end = out_w; /* the general routine for every pixel */
    }

    for (out_x = 0; out_x < interior_first && out_x < MF_DW_BORDER; out_x++) {
        mf_dw_border_make(&cols, out_x, &left[out_x]);
    }
    for (out_x = interior_end; out_x < out_w && out_x - interior_end < MF_DW_BORDER; out_x++) {
        mf_dw_border_make(&cols, out_x, &right[out_x - interior_end]);
    }
    for (ch = 0; ch + MF_DW_GROUP <= channels; ch += MF_DW_GROUP) {
        const int16_t *group_filter = ctx.filter + (size_t)(ch / MF_DW_GROUP) * group_filter_step;
        mf_dw_group group;
        mf_dw_group_make(&ctx, ch, &group);
        for (out_x = 0; out_x < interior_first; out_x++) {
            mf_dw_border4(&ctx, &wr, &cols, &group, group_filter, zp, ch, out_x,
                          out_x < MF_DW_BORDER ? &left[out_x] : NULL, out_row);
        }
        if (interior_first < interior_end) {
            const mf_dw_run run = {
                group_filter + (size_t)wr.y_first * (size_t)k_w * MF_DW_GROUP,
                (size_t)(interior_first * p->stride.w - p->padding.left) * (size_t)channels + (size_t)ch,
                (size_t)p->stride.w * (size_t)channels, (size_t)p->dilation.w * (size_t)channels,
                interior_end - interior_first, out_row + (size_t)interior_first * (size_t)channels + (size_t)ch,
                (size_t)channels};
            mf_dw_interior(&ctx, &wr, &group, ch, &run, zp);
        }
        for (out_x = interior_end; out_x < out_w; out_x++) {
            mf_dw_border4(&ctx, &wr, &cols, &group, group_filter, zp, ch, out_x,
                          out_x - interior_end < MF_DW_BORDER ? &right[out_x - interior_end] : NULL, out_row);
        }
    }
    for (; ch < channels; ch++) {
        for (out_x = 0; out_x < out_w; out_x++) {
            const int32_t in_x_origin = out_x * p->stride.w - p->padding.left;
            int32_t x_first;
            int32_t x_end;
            size_t x_base = 0;
            mf_window_taps(in_x_origin, p->dilation.w, k_w, in_w, &x_first, &x_end);
            if (x_first < x_end) {
                x_base = (size_t)(in_x_origin + x_first * p->dilation.w) * (size_t)channels;
            }
            /* (no tap inside the input: x_first == x_end, the bias only) */
            out_row[(size_t)out_x * (size_t)channels + (size_t)ch] =
                mf_dw_channel(&ctx, &wr, x_base, (size_t)p->dilation.w * (size_t)channels, x_first, x_end, ch);
        }
    }
}
