/*
 * MEAN over any of the H, W and C axes of an int8 NHWC tensor, as TensorFlow Lite Micro's int8 reference kernel
 * computes it (TFLite's integer QuantizedMeanOrSum): the int32 sum of the reduced values, minus input_zp times
 * their count, through MultiplyByQuantizedMultiplier with a multiplier that already holds the division by the
 * count (mcuforge/ir/quant.py:mean_params), plus output_zp, saturated to int8. Checked byte for byte against
 * the tflite-micro interpreter by tests/test_tflite.py.
 */
#include "../mf_internal.h"

/* Keeps the accumulator inside int32: |sum - zp * count| <= 256 * count. */
#define MF_MEAN_MAX_COUNT (1 << 23)

mf_status mf_mean_tflm_s8(const mf_mean_params *params, const mf_dims *input_dims, const int8_t *input,
                          int8_t *output)
{
    if (params == NULL || !mf_dims_ok(input_dims) || input == NULL || output == NULL ||
        !mf_is_int8(params->input_zp) || !mf_is_int8(params->output_zp) || params->shift < -31 ||
        params->shift > 30 || params->multiplier < 0) {
        return MF_ARG_ERROR;
    }
    {
        const int32_t in_w = input_dims->w;
        const int32_t in_c = input_dims->c;
        /* the window of one output value: the whole axis where it is reduced, one index where it is kept */
        const int32_t span_h = params->reduce_h ? input_dims->h : 1;
        const int32_t span_w = params->reduce_w ? input_dims->w : 1;
        const int32_t span_c = params->reduce_c ? input_dims->c : 1;
        const int32_t out_h = input_dims->h / span_h;
        const int32_t out_w = input_dims->w / span_w;
        const int32_t out_c = input_dims->c / span_c;
        const int64_t count = (int64_t)span_h * span_w * span_c;
        int8_t *out = output;
        int32_t out_y;
        if (count > MF_MEAN_MAX_COUNT) {
            return MF_UNSUPPORTED;
        }
        for (out_y = 0; out_y < out_h; out_y++) {
            int32_t out_x;
            for (out_x = 0; out_x < out_w; out_x++) {
                int32_t out_ch;
                for (out_ch = 0; out_ch < out_c; out_ch++) {
                    int32_t sum = 0;
                    int32_t y;
                    int32_t result;
                    for (y = out_y * span_h; y < out_y * span_h + span_h; y++) {
                        int32_t x;
                        for (x = out_x * span_w; x < out_x * span_w + span_w; x++) {
                            const int8_t *pixel = input + ((size_t)y * (size_t)in_w + (size_t)x) * (size_t)in_c;
                            int32_t ch;
                            for (ch = out_ch * span_c; ch < out_ch * span_c + span_c; ch++) {
                                sum += pixel[ch];
                            }
                        }
                    }
                    sum -= params->input_zp * (int32_t)count;
                    result = mf_mbqm(sum, params->multiplier, params->shift) +
                             params->output_zp;
                    if (result < MF_INT8_MIN) {
                        result = MF_INT8_MIN;
                    }
                    if (result > MF_INT8_MAX) {
                        result = MF_INT8_MAX;
                    }
                    *out++ = (int8_t)result;
                }
            }
        }
    }
    return MF_OK;
}
