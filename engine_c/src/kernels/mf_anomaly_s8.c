/* Anomaly score: squared reconstruction error of int8 vectors on a common integer grid, accumulated in int64. */
#include "../mf_internal.h"

mf_status mf_anomaly_accumulate_s8(const mf_anomaly_params *params, int32_t size, const int8_t *input,
                                   const int8_t *output, int64_t *acc)
{
    if (params == NULL || input == NULL || output == NULL || acc == NULL || size < 0 || *acc < 0 ||
        !mf_is_int8(params->input_zp) || !mf_is_int8(params->output_zp) || params->input_multiplier < 1 ||
        params->input_multiplier > MF_ANOMALY_MAX_MULTIPLIER || params->output_multiplier < 1 ||
        params->output_multiplier > MF_ANOMALY_MAX_MULTIPLIER) {
        return MF_ARG_ERROR;
    }
    if (size > MF_ANOMALY_MAX_VALUES) {
        return MF_UNSUPPORTED;
    }
    {
        const int32_t input_zp = params->input_zp;
        const int32_t output_zp = params->output_zp;
        const int32_t input_mult = params->input_multiplier;
        const int32_t output_mult = params->output_multiplier;
        uint64_t sum = 0; /* < 2^19 terms of < 2^44: < 2^63 */
        int32_t i;
        for (i = 0; i < size; i++) {
            /* |diff| <= 255 * 2^12 * 2 < 2^22: int32; diff^2 < 2^44 */
            const int32_t diff = ((int32_t)output[i] - output_zp) * output_mult -
                                 ((int32_t)input[i] - input_zp) * input_mult;
            sum += (uint64_t)((int64_t)diff * (int64_t)diff);
        }
        if (sum > (uint64_t)(INT64_MAX - *acc)) {
            return MF_UNSUPPORTED; /* the total would overflow: *acc unchanged */
        }
        *acc += (int64_t)sum;
    }
    return MF_OK;
}
