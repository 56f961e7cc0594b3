/* Internal constants and helpers of the audio front end (engine_c/src/frontend/). */
#ifndef MF_FRONTEND_INTERNAL_H
#define MF_FRONTEND_INTERNAL_H

#include <stdint.h>

#define MF_FRONTEND_MIN_FFT 64
#define MF_FRONTEND_MAX_FFT 2048
#define MF_FRONTEND_MAX_MEL_BINS 128
#define MF_FRONTEND_POWER_SHIFT 27 /* P = |2X|^2 >> 27 (mcuforge/audio/tables.py: POWER_SHIFT) */

/* 65536 log2(energy) for energy > 0: exponent plus the 257-entry table with linear interpolation. */
int32_t mf_frontend_log2_q16(uint64_t energy, const int32_t *table);

#endif /* MF_FRONTEND_INTERNAL_H */
