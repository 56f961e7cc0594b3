/*
 * Compares the inline fixed-point requantization of engine_c/src/mf_arith.h (mf_mbqm, mf_requant_fixed,
 * mf_mbqm_right_fast for right shifts of 2 or more and multipliers >= 0, ADD's 32-bit input rescale mf_add_in_fast)
 * with
 * TFLite's two-step arithmetic as the engine computed it before (copied below: the reference), over edge values
 * and `count` pseudo-random inputs. Built and run by tests/engine/test_requant.py (also under UBSan).
 * Usage: requant_compare COUNT SEED; prints the first difference and exits 1, or prints "ok N" and exits 0.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "mf_arith.h"

static int32_t ref_srdhm(int32_t a, int32_t b)
{
    int64_t ab;
    int32_t nudge;
    if (a == INT32_MIN && b == INT32_MIN) {
        return INT32_MAX;
    }
    ab = (int64_t)a * (int64_t)b;
    nudge = ab >= 0 ? (1 << 30) : (1 - (1 << 30));
    return (int32_t)((ab + nudge) / ((int64_t)1 << 31)); /* C's truncating division, as gemmlowp */
}

static int32_t ref_rdbp(int32_t x, int32_t exponent)
{
    const int32_t mask = (int32_t)(((uint32_t)1 << exponent) - 1u);
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

static int32_t ref_mbqm(int32_t x, int32_t multiplier, int32_t shift)
{
    const int32_t left = shift > 0 ? shift : 0;
    const int32_t right = shift > 0 ? 0 : -shift;
    const int64_t shifted = (int64_t)x * ((int64_t)1 << left);
    const int32_t sat = shifted > INT32_MAX ? INT32_MAX : (shifted < INT32_MIN ? INT32_MIN : (int32_t)shifted);
    return ref_rdbp(ref_srdhm(sat, multiplier), right);
}

static int32_t ref_requant(int32_t acc, int32_t multiplier, int32_t shift, int32_t zp, int32_t qmin, int32_t qmax)
{
    const int64_t v = (int64_t)ref_mbqm(acc, multiplier, shift) + zp;
    return (int32_t)(v < qmin ? qmin : (v > qmax ? qmax : v));
}

static uint64_t state;

static uint32_t next_u32(void)
{
    /* xorshift64* */
    state ^= state >> 12;
    state ^= state << 25;
    state ^= state >> 27;
    return (uint32_t)((state * 0x2545F4914F6CDD1DULL) >> 32);
}

static const int32_t edges[] = {0, 1, -1, 2, -2, 3, -3, 127, -128, 255, -255, 1 << 15, -(1 << 15), (1 << 29) - 1,
                                1 << 29, (1 << 30) - 1, 1 << 30, (1 << 30) + 1, -(1 << 30), -(1 << 30) - 1,
                                -(1 << 30) + 1, INT32_MAX, INT32_MAX - 1, INT32_MIN, INT32_MIN + 1, 1518500250,
                                -1518500250, 0x55555555, -0x55555555};
#define N_EDGES ((int)(sizeof(edges) / sizeof(edges[0])))

static int check(int32_t x, int32_t m, int32_t shift, int32_t zp, int32_t qmin, int32_t qmax)
{
    const int32_t want = ref_mbqm(x, m, shift);
    const int32_t got = mf_mbqm(x, m, shift);
    const int32_t want_q = ref_requant(x, m, shift, zp, qmin, qmax);
    const int32_t got_q = mf_requant_fixed(x, m, shift, zp, qmin, qmax);
    if (shift <= -2 && m >= 0) { /* the pointwise and ADD kernels' one-SMLAL form (mf_mbqm_right_fast) */
        const int32_t r = -shift - 1;
        const int32_t fast = mf_mbqm_right_fast(x, m, ((uint32_t)1 << r) >> 1, r);
        if (fast != want) {
            printf("diff x=%" PRId32 " m=%" PRId32 " shift=%" PRId32 ": mbqm_right_fast %" PRId32 " vs %" PRId32 "\n",
                   x, m, shift, fast, want);
            return 1;
        }
    }
    if (want != got || want_q != got_q) {
        printf("diff x=%" PRId32 " m=%" PRId32 " shift=%" PRId32 " zp=%" PRId32 " [%" PRId32 ", %" PRId32
               "]: mbqm %" PRId32 " vs %" PRId32 ", requant %" PRId32 " vs %" PRId32 "\n",
               x, m, shift, zp, qmin, qmax, got, want, got_q, want_q);
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    const long long count = argc > 1 ? atoll(argv[1]) : 1000000;
    long long n = 0;
    long long i;
    int a;
    int b;
    int32_t shift;
    state = (argc > 2 ? strtoull(argv[2], NULL, 10) : 1) * 0x9E3779B97F4A7C15ULL + 1;
    /* every pair of edge values at every shift */
    for (a = 0; a < N_EDGES; a++) {
        for (b = 0; b < N_EDGES; b++) {
            for (shift = -31; shift <= 30; shift++) {
                n++;
                if (check(edges[a], edges[b], shift, 0, -128, 127) || check(edges[a], edges[b], shift, -128, -128, 127) ||
                    check(edges[a], edges[b], shift, 127, -5, 3)) {
                    return 1;
                }
            }
        }
    }
    for (i = 0; i < count; i++) {
        const uint32_t r = next_u32();
        const uint32_t kind = r & 7u;
        int32_t x = (int32_t)next_u32();
        int32_t m = (int32_t)next_u32();
        const int32_t zp = (int32_t)(next_u32() % 256u) - 128;
        int32_t qmin = (int32_t)(next_u32() % 256u) - 128;
        int32_t qmax = (int32_t)(next_u32() % 256u) - 128;
        if (qmin > qmax) {
            const int32_t t = qmin;
            qmin = qmax;
            qmax = t;
        }
        shift = (int32_t)((r >> 3) % 62u) - 31;
        if (kind < 4) {
            m = (int32_t)(0x40000000u | ((uint32_t)m & 0x3FFFFFFFu)); /* QuantizeMultiplier's range */
        }
        if (kind == 1 || kind == 5) {
            x >>= (r >> 9) % 32u; /* small magnitudes: the ties and the rounding near 0 */
        }
        if (kind == 2) {
            /* m = 0.5 or 0.75 (+ 0..3 ulp), small x: exact ties in both roundings */
            x = (int32_t)((r >> 9) % 4096u) - 2048;
            shift = -(int32_t)((r >> 21) % 12u);
            m = (int32_t)(((r >> 25) & 1u ? 0x60000000u : 0x40000000u) + ((r >> 26) & 3u));
        }
        if (kind == 6) {
            x = edges[(r >> 9) % (uint32_t)N_EDGES];
        }
        if (kind == 7) {
            m = edges[(r >> 9) % (uint32_t)N_EDGES];
        }
        n++;
        if (check(x, m, shift, zp, qmin, qmax)) {
            return 1;
        }
    }
    /* ADD's input rescale (mf_add_in_fast): every d in [-255, 255], every headroom shift 8..22 and exponent 0..31, the
     * edge multipliers >= 0 and random Q31 ones */
    for (i = 0; i < 2 * N_EDGES; i++) {
        const int32_t m = i < N_EDGES ? edges[i] : (int32_t)(0x40000000u | (next_u32() & 0x3FFFFFFFu));
        int32_t ls;
        if (m < 0) {
            continue;
        }
        for (ls = 8; ls <= 22; ls++) {
            for (shift = -31; shift <= 0; shift++) {
                const mf_requant rq = {0.0f, m, shift};
                const mf_add_in_fast k = mf_add_in_fast_make(&rq, ls);
                int32_t d;
                for (d = -255; d <= 255; d++) {
                    const int32_t want = ref_mbqm(d * (1 << ls), m, shift);
                    const int32_t got = mf_add_in_fast_apply(d, &k);
                    n++;
                    if (want != got) {
                        printf("diff add rescale d=%" PRId32 " m=%" PRId32 " ls=%" PRId32 " shift=%" PRId32 ": %" PRId32
                               " vs %" PRId32 "\n", d, m, ls, shift, got, want);
                        return 1;
                    }
                }
            }
        }
    }
    printf("ok %lld\n", n);
    return 0;
}
