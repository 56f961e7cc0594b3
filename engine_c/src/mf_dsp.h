/*
 * Private: the few Armv7E-M DSP (SIMD32) instructions the kernels use, and their portable C definitions.
 *
 * MF_DSP is 1 when kernels take their SIMD path:
 *   - on a core with the DSP extension (__ARM_FEATURE_DSP: Cortex-M4, M7, M33, M55) through the ACLE intrinsics of
 *     <arm_acle.h>, unless MF_NO_DSP is defined (the plain path, for comparison);
 *   - anywhere with MF_DSP_EMULATE defined: the same algorithm with the C definitions below (bit for bit the
 *     instructions' semantics), so the host tests run exactly the SIMD path under ASan/UBSan.
 * Otherwise (Cortex-M0+/M3, the host's default build) MF_DSP is 0 and kernels take their plain C path. Both paths
 * compute the same sums in int32 (wrap-around) arithmetic, so they give the same bytes.
 *
 * Lanes: a 32-bit word holds four int8 values b0..b3 (b0 lowest, little-endian memory order) or two int16 values
 * (low half first). mf_sxtb16(x) = {b0, b2} sign-extended to 16 bits, mf_sxtb16_ror8(x) = {b1, b3}.
 */
#ifndef MF_DSP_H
#define MF_DSP_H

#include <stdint.h>
#include <string.h>

#if defined(MF_DSP_EMULATE)
#define MF_DSP 1
#define MF_DSP_NATIVE 0
#elif defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP && !defined(MF_NO_DSP)
#define MF_DSP 1
#define MF_DSP_NATIVE 1
#include <arm_acle.h>
#else
#define MF_DSP 0
#define MF_DSP_NATIVE 0
#endif

/* Both int16 lanes set to v (e.g. -input_zp, added to the input bytes by mf_sxtab16) */
static inline uint32_t mf_dup16(int32_t v)
{
    return ((uint32_t)v & 0xFFFFu) * 0x00010001u;
}

#if MF_DSP

/* Four int8 values from any address (memcpy: no alignment assumption; one LDR on Cortex-M3 and later). */
static inline uint32_t mf_read_s8x4(const int8_t *p)
{
    uint32_t word;
    memcpy(&word, p, sizeof(word));
    return word;
}

#if MF_DSP_NATIVE

static inline uint32_t mf_sxtb16(uint32_t x)
{
    return (uint32_t)__sxtb16((int8x4_t)x);
}

static inline uint32_t mf_sxtb16_ror8(uint32_t x)
{
    uint32_t result;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(result) : "r"(x));
    return result;
}

/* acc + lo16(x) * lo16(y) + hi16(x) * hi16(y) (the Q flag it may set is not read) */
static inline int32_t mf_smlad(uint32_t x, uint32_t y, int32_t acc)
{
    return __smlad((int16x2_t)x, (int16x2_t)y, acc);
}

/* {lo16(a) + b0, hi16(a) + b2}, each lane modulo 2^16 */
static inline uint32_t mf_sxtab16(uint32_t a, uint32_t x)
{
    return (uint32_t)__sxtab16((int16x2_t)a, (int8x4_t)x);
}

/* {lo16(a) + b1, hi16(a) + b3}, each lane modulo 2^16 */
static inline uint32_t mf_sxtab16_ror8(uint32_t a, uint32_t x)
{
    uint32_t result;
    __asm__("sxtab16 %0, %1, %2, ror #8" : "=r"(result) : "r"(a), "r"(x));
    return result;
}

/* acc + lo16(x) * lo16(y), modulo 2^32 (the Q flag it may set is not read) */
static inline int32_t mf_smlabb(uint32_t x, uint32_t y, int32_t acc)
{
    return __smlabb((int32_t)x, (int32_t)y, acc);
}

/* acc + hi16(x) * hi16(y), modulo 2^32 */
static inline int32_t mf_smlatt(uint32_t x, uint32_t y, int32_t acc)
{
    return __smlatt((int32_t)x, (int32_t)y, acc);
}

#else /* portable definitions: the instructions' results, bit for bit */

static inline uint32_t mf_lanes16(int32_t lo, int32_t hi)
{
    return ((uint32_t)lo & 0xFFFFu) | ((uint32_t)hi << 16);
}

static inline int32_t mf_lane16(uint32_t x, int lane)
{
    return (int32_t)(int16_t)(uint16_t)(x >> (16 * lane));
}

static inline int32_t mf_byte(uint32_t x, int index)
{
    return (int32_t)(int8_t)(uint8_t)(x >> (8 * index));
}

static inline uint32_t mf_sxtb16(uint32_t x)
{
    return mf_lanes16(mf_byte(x, 0), mf_byte(x, 2));
}

static inline uint32_t mf_sxtb16_ror8(uint32_t x)
{
    return mf_lanes16(mf_byte(x, 1), mf_byte(x, 3));
}

static inline int32_t mf_smlad(uint32_t x, uint32_t y, int32_t acc)
{
    const uint32_t lo = (uint32_t)(mf_lane16(x, 0) * mf_lane16(y, 0));
    const uint32_t hi = (uint32_t)(mf_lane16(x, 1) * mf_lane16(y, 1));
    return (int32_t)((uint32_t)acc + lo + hi);
}

static inline uint32_t mf_sxtab16(uint32_t a, uint32_t x)
{
    return mf_lanes16(mf_lane16(a, 0) + mf_byte(x, 0), mf_lane16(a, 1) + mf_byte(x, 2));
}

static inline uint32_t mf_sxtab16_ror8(uint32_t a, uint32_t x)
{
    return mf_lanes16(mf_lane16(a, 0) + mf_byte(x, 1), mf_lane16(a, 1) + mf_byte(x, 3));
}

static inline int32_t mf_smlabb(uint32_t x, uint32_t y, int32_t acc)
{
    return (int32_t)((uint32_t)acc + (uint32_t)(mf_lane16(x, 0) * mf_lane16(y, 0)));
}

static inline int32_t mf_smlatt(uint32_t x, uint32_t y, int32_t acc)
{
    return (int32_t)((uint32_t)acc + (uint32_t)(mf_lane16(x, 1) * mf_lane16(y, 1)));
}

#endif /* MF_DSP_NATIVE */

/* Per byte lane, the larger of the int8 values of x and y (max pooling): SSUB8 sets the GE flags, SEL reads them. */
#if MF_DSP_NATIVE
static inline uint32_t mf_max_s8x4(uint32_t x, uint32_t y)
{
    uint32_t result;
    __asm__("ssub8 %0, %1, %2\n\tsel %0, %1, %2" : "=&r"(result) : "r"(x), "r"(y) : "cc");
    return result;
}
#else
static inline uint32_t mf_max_s8x4(uint32_t x, uint32_t y)
{
    uint32_t result = 0;
    int lane;
    for (lane = 0; lane < 4; lane++) {
        const uint32_t mask = 0xFFu << (8 * lane);
        result |= ((int8_t)(uint8_t)(x >> (8 * lane)) >= (int8_t)(uint8_t)(y >> (8 * lane)) ? x : y) & mask;
    }
    return result;
}
#endif

/* The 2 pixels x 2 filter rows step on 4 int8 values, shared by the pointwise and general convolutions: x0, x1
 * are the two pixels' input words, wa, wb the two rows' weight words, neg_zp is -input_zp in both lanes (SXTAB16
 * gives {x0 - zp, x2 - zp}, {x1 - zp, x3 - zp} in [-255, 255], in the lane order SXTB16 gives the weights).
 * *acc_ij += pixel i . row j over the 4 values: 8 SMLAD for 16 MACs. */
static inline void mf_smlad_2x2(uint32_t x0, uint32_t x1, uint32_t wa, uint32_t wb, uint32_t neg_zp,
                                int32_t *acc00, int32_t *acc01, int32_t *acc10, int32_t *acc11)
{
    const uint32_t x0_even = mf_sxtab16(neg_zp, x0);
    const uint32_t x1_even = mf_sxtab16(neg_zp, x1);
    const uint32_t wa_even = mf_sxtb16(wa);
    const uint32_t wb_even = mf_sxtb16(wb);
    uint32_t x0_odd;
    uint32_t x1_odd;
    uint32_t wa_odd;
    uint32_t wb_odd;
    *acc00 = mf_smlad(x0_even, wa_even, *acc00);
    *acc01 = mf_smlad(x0_even, wb_even, *acc01);
    *acc10 = mf_smlad(x1_even, wa_even, *acc10);
    *acc11 = mf_smlad(x1_even, wb_even, *acc11);
    x0_odd = mf_sxtab16_ror8(neg_zp, x0);
    x1_odd = mf_sxtab16_ror8(neg_zp, x1);
    wa_odd = mf_sxtb16_ror8(wa);
    wb_odd = mf_sxtb16_ror8(wb);
    *acc00 = mf_smlad(x0_odd, wa_odd, *acc00);
    *acc01 = mf_smlad(x0_odd, wb_odd, *acc01);
    *acc10 = mf_smlad(x1_odd, wa_odd, *acc10);
    *acc11 = mf_smlad(x1_odd, wb_odd, *acc11);
}

#endif /* MF_DSP */

#endif /* MF_DSP_H */
