/*
 * mf_frontend_run: int16 PCM -> int8 log-mel / MFCC features, integer only (see mf_frontend.h and the algorithm in
 * mcuforge/audio/tables.py, which mcuforge/audio/features.py implements in numpy with the same integers).
 *
 * Per frame: window + block normalisation into the complex buffer (bit-reversed), radix-2 DIT FFT of M = N/2
 * points (Q31 twiddles, products rounded down), real split to the power spectrum, Q15 mel filter bank (uint64),
 * table log2 (Q16), optional Q15 DCT-II, int8 quantisation by multiplier and shift.
 *
 * Signed right shifts of negative values are arithmetic (as gcc, clang and armcc define them), like numpy's >>.
 */
#include "mf_frontend.h"

#include <string.h>

#include "mf_frontend_internal.h"

/* Number of significant bits of x (0 for 0). */
static int32_t mf_bit_length32(uint32_t x)
{
#if defined(__GNUC__)
    return x == 0u ? 0 : 32 - __builtin_clz(x);
#else
    int32_t bits = 0;
    while (x != 0u) {
        x >>= 1;
        bits++;
    }
    return bits;
#endif
}

static int32_t mf_bit_length64(uint64_t x)
{
    const uint32_t high = (uint32_t)(x >> 32);
    return high != 0u ? 32 + mf_bit_length32(high) : mf_bit_length32((uint32_t)x);
}

/* mul_q31 of one part: (2 b0 w0 + 2 b1 w1) >> 32, the high word of a 64-bit multiply-accumulate. */
static int32_t mf_mul_q31(int32_t b0, int32_t w0, int32_t b1, int32_t w1)
{
    return (int32_t)(((int64_t)(2 * b0) * w0 + (int64_t)(2 * b1) * w1) >> 32);
}

int32_t mf_frontend_log2_q16(uint64_t energy, const int32_t *table)
{
    const int32_t exponent = mf_bit_length64(energy) - 1;
    uint32_t fraction;
    int32_t index;
    int32_t remainder;

    if (exponent >= 30) {
        fraction = (uint32_t)(energy >> (exponent - 30)) - (1u << 30);
    } else {
        fraction = (uint32_t)(energy << (30 - exponent)) - (1u << 30);
    }
    index = (int32_t)(fraction >> 22);
    remainder = (int32_t)((fraction >> 6) & 0xFFFFu);
    return exponent * 65536 + table[index] + (((table[index + 1] - table[index]) * remainder + 32768) >> 16);
}

/*
 * Window and normalise one frame (returns the shift s), store it as the bit-reversed complex sequence
 * z[m] = x[2m] + i x[2m+1] and do the FFT's first stage (size 2, w = 1) on the way: z[2r], z[2r+1] are the pair
 * of complex values the first stage combines.
 */
static int32_t mf_window_frame(const mf_frontend_params *p, const int16_t *pcm, int32_t *z)
{
    const int32_t window_samples = p->window_samples;
    const int32_t fft_size = p->fft_size;
    const int16_t *window = p->window;
    const uint16_t *bitrev = p->bitrev;
    uint32_t ored = 0u;
    int32_t shift;
    int32_t n;

    for (n = 0; n + 1 < window_samples; n += 2) { /* complex value n / 2 = (x[n], x[n + 1]) */
        int32_t *out = z + 2 * (int32_t)bitrev[n >> 1];
        const int32_t re = (int32_t)pcm[n] * (int32_t)window[n];
        const int32_t im = (int32_t)pcm[n + 1] * (int32_t)window[n + 1];
        ored |= (uint32_t)(re ^ (re >> 31)) | (uint32_t)(im ^ (im >> 31)); /* |v| or |v| - 1 */
        out[0] = re;
        out[1] = im;
    }
    if (n < window_samples) { /* odd window: the last sample pairs with the zero padding */
        int32_t *out = z + 2 * (int32_t)bitrev[n >> 1];
        const int32_t re = (int32_t)pcm[n] * (int32_t)window[n];
        ored |= (uint32_t)(re ^ (re >> 31));
        out[0] = re;
        out[1] = 0;
        n += 2;
    }
    for (; n < fft_size; n += 2) {
        int32_t *out = z + 2 * (int32_t)bitrev[n >> 1];
        out[0] = 0;
        out[1] = 0;
    }
    shift = ored == 0u ? 0 : p->headroom_bits - mf_bit_length32(ored);
    if (shift >= 0) {
        const int32_t factor = (int32_t)1 << shift;
        for (n = 0; n < fft_size; n += 4) {
            const int32_t ar = z[n] * factor;
            const int32_t ai = z[n + 1] * factor;
            const int32_t br = z[n + 2] * factor;
            const int32_t bi = z[n + 3] * factor;
            z[n] = ar + br;
            z[n + 1] = ai + bi;
            z[n + 2] = ar - br;
            z[n + 3] = ai - bi;
        }
    } else {
        const int32_t right = -shift;
        const int32_t half = (int32_t)1 << (right - 1);
        for (n = 0; n < fft_size; n += 4) {
            const int32_t ar = (z[n] + half) >> right;
            const int32_t ai = (z[n + 1] + half) >> right;
            const int32_t br = (z[n + 2] + half) >> right;
            const int32_t bi = (z[n + 3] + half) >> right;
            z[n] = ar + br;
            z[n + 1] = ai + bi;
            z[n + 2] = ar - br;
            z[n + 3] = ai - bi;
        }
    }
    return shift;
}

/* a, b = a + t, a - t with t = mul_q31(w, b). */
static void mf_butterfly(int32_t *a, int32_t *b, int32_t wr, int32_t wi)
{
    const int32_t br = b[0];
    const int32_t bi = b[1];
    const int32_t tr = mf_mul_q31(br, wr, bi, -wi);
    const int32_t ti = mf_mul_q31(br, wi, bi, wr);
    const int32_t ar = a[0];
    const int32_t ai = a[1];
    b[0] = ar - tr;
    b[1] = ai - ti;
    a[0] = ar + tr;
    a[1] = ai + ti;
}

/* One radix-2 stage of `size` (half = size / 2): the pairs (a, a + half) of every group, t = w * b. */
static void mf_fft_stage(int32_t *z, int32_t points, const int32_t *twiddle, int32_t size, int32_t step)
{
    const int32_t half = size >> 1;
    int32_t *a;
    int32_t j;

    for (a = z; a < z + 2 * points; a += 2 * size) { /* j = 0: w = 1, t = b exactly */
        int32_t *b = a + 2 * half;
        const int32_t ar = a[0];
        const int32_t ai = a[1];
        const int32_t tr = b[0];
        const int32_t ti = b[1];
        b[0] = ar - tr;
        b[1] = ai - ti;
        a[0] = ar + tr;
        a[1] = ai + ti;
    }
    if (points / size >= half) { /* many groups: twiddle outer, groups inner */
        for (j = 1; j < half; j++) {
            const int32_t wr = twiddle[j * step];
            const int32_t wi = twiddle[j * step + 1];
            for (a = z + 2 * j; a < z + 2 * points; a += 2 * size) {
                mf_butterfly(a, a + 2 * half, wr, wi);
            }
        }
        return;
    }
    for (a = z; a < z + 2 * points; a += 2 * size) { /* few groups: groups outer, twiddles inner */
        int32_t *pa = a + 2;
        int32_t *pb = a + 2 * half + 2;
        const int32_t *w = twiddle + step;
        for (j = 1; j < half; j++) {
            mf_butterfly(pa, pb, w[0], w[1]);
            pa += 2;
            pb += 2;
            w += step;
        }
    }
}

/* The FFT stages of size 4 .. points (size 2 is done by mf_window_frame), natural order out. */
static void mf_fft(int32_t *z, int32_t points, const int32_t *twiddle, int32_t fft_size)
{
    int32_t size;

    for (size = 4; size <= points; size <<= 1) {
        mf_fft_stage(z, points, twiddle, size, 2 * (fft_size / size));
    }
}

/* Bins k and M - k of the real split from A = Z[a], B = Z[b] (a = k, b = M - k mod M); mirror < 0: bin k only. */
static void mf_power_pair(const int32_t *a, const int32_t *b, const int32_t *w, const int32_t *w_mirror, uint32_t *bin,
                          uint32_t *bin_mirror)
{
    const int32_t sr = a[0] + b[0];
    const int32_t si = a[1] - b[1];
    const int32_t dr = a[0] - b[0];
    const int32_t di = a[1] + b[1];
    /* t = W_N^k * (-i D) = W_N^k * (di - i dr); for M - k, S and D become conj(S) and -conj(D) */
    int32_t xr = sr + mf_mul_q31(di, w[0], dr, w[1]);
    int32_t xi = si + mf_mul_q31(di, w[1], -dr, w[0]);
    *bin = (uint32_t)(((int64_t)xr * xr + (int64_t)xi * xi) >> MF_FRONTEND_POWER_SHIFT);
    if (bin_mirror != NULL) {
        xr = sr + mf_mul_q31(di, w_mirror[0], -dr, w_mirror[1]);
        xi = mf_mul_q31(di, w_mirror[1], dr, w_mirror[0]) - si;
        *bin_mirror = (uint32_t)(((int64_t)xr * xr + (int64_t)xi * xi) >> MF_FRONTEND_POWER_SHIFT);
    }
}

/*
 * Real split of the M-point complex spectrum into the power spectrum P[0..M] of the N-point real frame. Bins k and
 * M - k read the same two values, so they are computed together (each with its own twiddle from the table: the
 * same integers as the per-bin formula of mcuforge/audio/fft.py).
 */
static void mf_power(const int32_t *z, int32_t points, const int32_t *twiddle, uint32_t *power)
{
    int32_t k;

    mf_power_pair(z, z, twiddle, twiddle + 2 * points, power, power + points); /* bins 0 and M: A = B = Z[0] */
    for (k = 1; k < points / 2; k++) {
        mf_power_pair(z + 2 * k, z + 2 * (points - k), twiddle + 2 * k, twiddle + 2 * (points - k), power + k,
                      power + points - k);
    }
    mf_power_pair(z + points, z + points, twiddle + points, NULL, power + points / 2, NULL); /* bin M / 2 */
}

/* Mel energies, log2 in Q16 with the frame's shift, the offset and the floor. */
static void mf_log_mel(const mf_frontend_params *p, const uint32_t *power, int32_t shift, int32_t *logs)
{
    const uint16_t *weights = p->mel_weights;
    int32_t j;

    for (j = 0; j < p->mel_bins; j++) {
        const uint32_t *bins = power + p->mel_start[j];
        const int32_t length = p->mel_len[j];
        uint64_t energy = 0u;
        int32_t k;
        for (k = 0; k < length; k++) {
            energy += (uint64_t)bins[k] * weights[k];
        }
        weights += length;
        if (energy == 0u) {
            logs[j] = p->log_floor;
        } else {
            const int32_t value = mf_frontend_log2_q16(energy, p->log2_table) - 2 * 65536 * shift + p->log_offset;
            logs[j] = value > p->log_floor ? value : p->log_floor;
        }
    }
}

static int8_t mf_quantize(int32_t value, const mf_frontend_params *p)
{
    const int64_t rounding = (int64_t)1 << (p->out_shift - 1);
    int64_t q = (((int64_t)value * p->out_multiplier + rounding) >> p->out_shift) + p->out_zero_point;
    if (q < -128) {
        q = -128;
    }
    if (q > 127) {
        q = 127;
    }
    return (int8_t)q;
}

static int mf_frontend_params_ok(const mf_frontend_params *p)
{
    int32_t j;

    if (p == NULL || p->window == NULL || p->twiddle == NULL || p->bitrev == NULL || p->mel_start == NULL ||
        p->mel_len == NULL || p->mel_weights == NULL || p->log2_table == NULL) {
        return 0;
    }
    if (p->kind != MF_FRONTEND_LOG_MEL && p->kind != MF_FRONTEND_MFCC) {
        return 0;
    }
    if (p->fft_size < MF_FRONTEND_MIN_FFT || p->fft_size > MF_FRONTEND_MAX_FFT || (p->fft_size & (p->fft_size - 1))) {
        return 0;
    }
    if (p->window_samples < 1 || p->window_samples > p->fft_size || p->hop_samples < 1 || p->num_frames < 1 ||
        p->clip_samples < p->window_samples ||
        (int64_t)(p->num_frames - 1) * p->hop_samples + p->window_samples > p->clip_samples) {
        return 0;
    }
    if (p->headroom_bits != 28 - (mf_bit_length32((uint32_t)p->fft_size) - 1)) {
        return 0;
    }
    if (p->mel_bins < 1 || p->mel_bins > MF_FRONTEND_MAX_MEL_BINS) {
        return 0;
    }
    if (p->kind == MF_FRONTEND_MFCC && (p->dct == NULL || p->num_coeffs < 1 || p->num_coeffs > p->mel_bins)) {
        return 0;
    }
    if (p->out_multiplier < (1 << 30) || p->out_shift < 1 || p->out_shift > 62 || p->out_zero_point < -128 ||
        p->out_zero_point > 127) {
        return 0;
    }
    for (j = 0; j < p->mel_bins; j++) {
        if ((int32_t)p->mel_start[j] + (int32_t)p->mel_len[j] > p->fft_size / 2 + 1) {
            return 0;
        }
    }
    return 1;
}

size_t mf_frontend_get_buffer_size(const mf_frontend_params *p)
{
    if (p == NULL) {
        return 0u;
    }
    return (size_t)MF_FRONTEND_SCRATCH_BYTES(p->fft_size, p->mel_bins);
}

/* One frame from `pcm` [window_samples] into `out` [num_features]; `p` already checked. */
static void mf_frontend_frame_unchecked(const mf_frontend_params *p, const int16_t *pcm, int8_t *out, void *scratch)
{
    const int32_t points = p->fft_size / 2;
    int32_t *z = (int32_t *)scratch;
    uint32_t *power = (uint32_t *)(z + p->fft_size);
    int32_t *logs = (int32_t *)(power + points + 1);
    const int32_t shift = mf_window_frame(p, pcm, z);
    int32_t i;

    mf_fft(z, points, p->twiddle, p->fft_size);
    mf_power(z, points, p->twiddle, power);
    mf_log_mel(p, power, shift, logs);
    if (p->kind == MF_FRONTEND_MFCC) {
        for (i = 0; i < p->num_coeffs; i++) {
            const int16_t *row = p->dct + i * p->mel_bins;
            int64_t acc = 0;
            int32_t j;
            for (j = 0; j < p->mel_bins; j++) {
                acc += (int64_t)row[j] * logs[j];
            }
            out[i] = mf_quantize((int32_t)((acc + (1 << 14)) >> 15), p);
        }
    } else {
        for (i = 0; i < p->mel_bins; i++) {
            out[i] = mf_quantize(logs[i], p);
        }
    }
}

static int mf_frontend_pointers_ok(const void *a, const void *b, const void *scratch)
{
    return a != NULL && b != NULL && scratch != NULL && ((uintptr_t)scratch & 3u) == 0u;
}

static int32_t mf_frontend_num_features(const mf_frontend_params *p)
{
    return p->kind == MF_FRONTEND_MFCC ? p->num_coeffs : p->mel_bins;
}

mf_status mf_frontend_run(const mf_frontend_params *p, const int16_t *pcm, int8_t *features, void *scratch)
{
    int32_t features_per_frame;
    int32_t frame;

    if (!mf_frontend_pointers_ok(pcm, features, scratch) || !mf_frontend_params_ok(p)) {
        return MF_ARG_ERROR;
    }
    features_per_frame = mf_frontend_num_features(p);
    for (frame = 0; frame < p->num_frames; frame++) {
        mf_frontend_frame_unchecked(p, pcm + frame * p->hop_samples, features + frame * features_per_frame, scratch);
    }
    return MF_OK;
}

mf_status mf_frontend_frame(const mf_frontend_params *p, const int16_t *window_pcm, int8_t *frame_features,
                            void *scratch)
{
    if (!mf_frontend_pointers_ok(window_pcm, frame_features, scratch) || !mf_frontend_params_ok(p)) {
        return MF_ARG_ERROR;
    }
    mf_frontend_frame_unchecked(p, window_pcm, frame_features, scratch);
    return MF_OK;
}

/* ---- streaming -------------------------------------------------------------------------------------------------- */

static int32_t mf_frontend_stream_keep(const mf_frontend_params *p)
{
    return p->window_samples > p->hop_samples ? p->window_samples - p->hop_samples : 0;
}

mf_status mf_frontend_stream_init(mf_frontend_stream *state, const mf_frontend_params *p, int16_t *buffer,
                                  const int16_t *history)
{
    int32_t keep;
    int32_t n;

    if (state == NULL || buffer == NULL || !mf_frontend_params_ok(p)) {
        return MF_ARG_ERROR;
    }
    keep = mf_frontend_stream_keep(p);
    for (n = 0; n < keep; n++) {
        buffer[n] = history != NULL ? history[n] : (int16_t)0;
    }
    state->buffer = buffer;
    state->frames = 0;
    return MF_OK;
}

mf_status mf_frontend_stream_push(mf_frontend_stream *state, const mf_frontend_params *p, const int16_t *hop_samples,
                                  int8_t *features, void *scratch)
{
    int16_t *buffer;
    int32_t keep;
    int32_t features_per_frame;
    int32_t n;

    if (state == NULL || state->buffer == NULL || !mf_frontend_pointers_ok(hop_samples, features, scratch) ||
        !mf_frontend_params_ok(p)) {
        return MF_ARG_ERROR;
    }
    buffer = state->buffer;
    keep = mf_frontend_stream_keep(p);
    /* buffer = the kept samples then the new ones; the frame is its first window_samples samples */
    for (n = 0; n < p->window_samples - keep; n++) {
        buffer[keep + n] = hop_samples[n];
    }
    features_per_frame = mf_frontend_num_features(p);
    memmove(features, features + features_per_frame, (size_t)(p->num_frames - 1) * (size_t)features_per_frame);
    mf_frontend_frame_unchecked(p, buffer, features + (p->num_frames - 1) * features_per_frame, scratch);
    /* keep the last `keep` samples of the window (they start the next one) */
    for (n = 0; n < keep; n++) {
        buffer[n] = buffer[p->hop_samples + n];
    }
    if (state->frames < INT32_MAX) {
        state->frames++;
    }
    return MF_OK;
}
