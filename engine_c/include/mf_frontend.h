/**
 * @file mf_frontend.h
 * @brief mcuforge audio front end: int16 PCM -> int8 log-mel or MFCC features (C99, integer only, no malloc).
 *
 * The algorithm is stated step by step in mcuforge/audio/tables.py; mcuforge/audio/features.py is its Python
 * reference and gives the same bytes. Every table is computed by the code generator
 * (mcuforge/codegen/frontend.py) and emitted as const arrays with the parameter struct; no floating point is used,
 * so the output is identical on any core (host x86-64, Cortex-M4F, Cortex-M3).
 */
#ifndef MF_FRONTEND_H
#define MF_FRONTEND_H

#include <stddef.h>
#include <stdint.h>

#include "mcuforge.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MF_FRONTEND_LOG_MEL 0 /**< features are the log-mel energies */
#define MF_FRONTEND_MFCC 1    /**< features are the DCT-II of the log-mel energies */

/** Parameters and tables of one front end configuration (generated). */
typedef struct {
    int32_t kind;           /**< MF_FRONTEND_LOG_MEL or MF_FRONTEND_MFCC */
    int32_t clip_samples;   /**< PCM samples of one clip, >= window_samples */
    int32_t window_samples; /**< frame length W, [1, fft_size] */
    int32_t hop_samples;    /**< frame step, >= 1 */
    int32_t num_frames;     /**< frames, 1 + (clip_samples - W) / hop_samples */
    int32_t fft_size;       /**< N, a power of two in [64, 2048]; M = N / 2 */
    int32_t mel_bins;       /**< [1, 128] */
    int32_t num_coeffs;     /**< mfcc: [1, mel_bins]; log_mel: 0 */
    int32_t headroom_bits;  /**< T = 28 - log2(N): bits of the loudest windowed sample after normalisation */
    const int16_t *window;  /**< Format [W], Q15 Hann window. Range [0, 32767] */
    const int32_t *twiddle; /**< Format [M + 1][2] (re, im) of exp(-2 pi i k / N), Q31. Range [-(2^31 - 1), 2^31 - 1] */
    const uint16_t *bitrev; /**< Format [M], bit reversal permutation of log2(M) bits */
    const uint16_t *mel_start;   /**< Format [mel_bins], first FFT bin of each filter. Range [0, M] */
    const uint16_t *mel_len;     /**< Format [mel_bins], bins of each filter, start + len <= M + 1 */
    const uint16_t *mel_weights; /**< Format [sum(mel_len)], Q15 weights, filter after filter. Range [0, 32768] */
    const int32_t *log2_table;   /**< Format [257], 65536 log2(1 + i / 256) */
    int32_t log_offset;          /**< Q16 log2 offset to the energy relative to a full-scale frame */
    int32_t log_floor;           /**< Q16 log2 floor of the log-mel values */
    const int16_t *dct;          /**< mfcc: Format [num_coeffs, mel_bins], Q15 orthonormal DCT-II; log_mel: NULL */
    int32_t out_multiplier;      /**< int8 quantisation multiplier, [2^30, 2^31 - 1] */
    int32_t out_shift;           /**< right shift of the quantisation, [1, 62] */
    int32_t out_zero_point;      /**< [-128, 127] */
} mf_frontend_params;

/** Scratch bytes mf_frontend_run needs for `p` (4-byte aligned): 4 * (fft_size + fft_size / 2 + 1 + mel_bins). */
#define MF_FRONTEND_SCRATCH_BYTES(fft_size, mel_bins) (4u * ((uint32_t)(fft_size) + (uint32_t)(fft_size) / 2u + 1u + \
                                                              (uint32_t)(mel_bins)))

/** Scratch bytes of `p` (0 for NULL). */
size_t mf_frontend_get_buffer_size(const mf_frontend_params *p);

/**
 * Computes the features of one clip.
 *
 * @param p        parameters and tables (checked; MF_ARG_ERROR when inconsistent)
 * @param pcm      Format [clip_samples], int16 PCM. Range [-32768, 32767]
 * @param features Format [num_frames, num_features] (num_features = num_coeffs for mfcc, mel_bins for log_mel),
 *                 int8. Range [-128, 127]
 * @param scratch  mf_frontend_get_buffer_size(p) bytes, 4-byte aligned, not overlapping pcm or features
 * @return MF_OK, or MF_ARG_ERROR for a NULL pointer, misaligned scratch or out-of-range parameter (features are
 *         then not written)
 */
mf_status mf_frontend_run(const mf_frontend_params *p, const int16_t *pcm, int8_t *features, void *scratch);

/**
 * Computes the features of ONE frame (the frames of the front end are independent: block floating point per frame).
 *
 * @param p              parameters and tables (checked)
 * @param window_pcm     Format [window_samples], int16 PCM of the frame
 * @param frame_features Format [num_features], int8
 * @param scratch        mf_frontend_get_buffer_size(p) bytes, 4-byte aligned
 * @return MF_OK or MF_ARG_ERROR (nothing written)
 */
mf_status mf_frontend_frame(const mf_frontend_params *p, const int16_t *window_pcm, int8_t *frame_features,
                            void *scratch);

/**
 * Streaming: the caller pushes hop_samples new samples at a time; each push computes one new frame, shifts the
 * rolling feature map [num_frames, num_features] up by one frame (oldest dropped) and writes the new frame into the
 * last row, so the map is always in time order and is the network's input. Only the new frame is computed.
 *
 * Frame k (k-th push, from 0) covers the samples [k hop, k hop + window_samples) of the signal
 * history ++ pushed samples, where history is the MF_FRONTEND_STREAM_KEEP(window, hop) samples given to init
 * (or zeros): after num_frames pushes the map equals mf_frontend_run of that signal's first clip, and after
 * num_frames + j pushes that of the clip starting at sample j hop.
 */
typedef struct {
    int16_t *buffer; /**< Format [window_samples] (caller memory, MF_FRONTEND_STREAM_BUFFER_SAMPLES) */
    int32_t frames;  /**< frames computed since init (saturates at INT32_MAX); the map is full once >= num_frames */
} mf_frontend_stream;

/** Samples kept between pushes: max(window - hop, 0). */
#define MF_FRONTEND_STREAM_KEEP(window_samples, hop_samples) \
    ((window_samples) > (hop_samples) ? (window_samples) - (hop_samples) : 0)
/** int16 samples of the stream buffer: window_samples. */
#define MF_FRONTEND_STREAM_BUFFER_SAMPLES(window_samples) (window_samples)

/**
 * Starts a stream.
 *
 * @param state   the stream
 * @param p       parameters and tables (checked)
 * @param buffer  Format [window_samples] int16, owned by the caller for the stream's life
 * @param history Format [MF_FRONTEND_STREAM_KEEP(window_samples, hop_samples)], the samples before the first push,
 *                or NULL for zeros (silence)
 * @return MF_OK or MF_ARG_ERROR
 */
mf_status mf_frontend_stream_init(mf_frontend_stream *state, const mf_frontend_params *p, int16_t *buffer,
                                  const int16_t *history);

/**
 * Pushes hop_samples new samples: computes one frame and rolls the feature map by one frame.
 *
 * @param state       a stream started by mf_frontend_stream_init with the same `p`
 * @param p           parameters and tables (checked)
 * @param hop_samples Format [hop_samples], int16 PCM, the next samples of the signal
 * @param features    Format [num_frames, num_features], int8, the rolling map (not overlapping the others)
 * @param scratch     mf_frontend_get_buffer_size(p) bytes, 4-byte aligned
 * @return MF_OK or MF_ARG_ERROR (state and features then unchanged)
 */
mf_status mf_frontend_stream_push(mf_frontend_stream *state, const mf_frontend_params *p, const int16_t *hop_samples,
                                  int8_t *features, void *scratch);

#ifdef __cplusplus
}
#endif

#endif /* MF_FRONTEND_H */
