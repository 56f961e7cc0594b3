/* Concatenation along the channel axis of NHWC tensors, requantizing inputs to the output scale. */
#include <string.h>

#include "../mf_internal.h"

mf_status mf_concat_s8(const mf_concat_params *params, const mf_concat_input *inputs, int32_t num_inputs,
                       const mf_dims *output_dims, int8_t *output)
{
    int32_t out_channels = 0;
    int32_t i;
    if (params == NULL || inputs == NULL || num_inputs <= 0 || !mf_dims_ok(output_dims) || output == NULL ||
        !mf_is_int8(params->output_zp)) {
        return MF_ARG_ERROR;
    }
#if MF_REQUANT_MODE == MF_REQUANT_FLOAT
    if (!(params->output_scale > 0.0f)) {
        return MF_ARG_ERROR;
    }
#endif
    for (i = 0; i < num_inputs; i++) {
#if MF_REQUANT_MODE == MF_REQUANT_FIXED
        if (inputs[i].requant.shift < -31 || inputs[i].requant.shift > 30) {
            return MF_ARG_ERROR;
        }
#endif
        if (inputs[i].data == NULL || inputs[i].channels <= 0 || inputs[i].channels > output_dims->c - out_channels ||
            !mf_is_int8(inputs[i].zp)) {
            return MF_ARG_ERROR;
        }
        out_channels += inputs[i].channels;
    }
    if (out_channels != output_dims->c) {
        return MF_ARG_ERROR;
    }
    {
        const size_t pixels = (size_t)output_dims->h * (size_t)output_dims->w;
        const int32_t output_zp = params->output_zp;
#if MF_REQUANT_MODE == MF_REQUANT_FLOAT
        const float output_scale = params->output_scale;
#endif
        int32_t channel_offset = 0;
        for (i = 0; i < num_inputs; i++) {
            const mf_concat_input in = inputs[i];
            const int32_t zp = in.zp;
#if MF_REQUANT_MODE == MF_REQUANT_FLOAT
            const int is_copy = (in.scale == output_scale) && (zp == output_zp);
            const float lo = (float)(MF_INT8_MIN - output_zp);
            const float hi = (float)(MF_INT8_MAX - output_zp);
#else
            const int is_copy = (in.requant.multiplier == 1073741824 && in.requant.shift == 1) && (zp == output_zp);
#endif
            size_t p;
            for (p = 0; p < pixels; p++) {
                const int8_t *src = in.data + p * (size_t)in.channels;
                int8_t *dst = output + p * (size_t)out_channels + (size_t)channel_offset;
                int32_t ch;
                if (is_copy) {
                    memcpy(dst, src, (size_t)in.channels);
                    continue;
                }
                for (ch = 0; ch < in.channels; ch++) {
#if MF_REQUANT_MODE == MF_REQUANT_FLOAT
                    /* ONNX Runtime: dequantize (x_scale * (x - zp)), then MlasQuantizeLinear (divide by
                     * the output scale, clamp, round half to even, add the zero point). */
                    float v = ((float)((int32_t)src[ch] - zp) * in.scale) / output_scale;
                    if (v < lo) {
                        v = lo;
                    }
                    if (v > hi) {
                        v = hi;
                    }
                    dst[ch] = (int8_t)(mf_round_half_even(v) + output_zp);
#else
                    /* (x - zp) * multiplier * 2^(shift - 31) with a single rounding (half away from zero). */
                    int64_t v = mf_rounding_shift_right64(((int64_t)src[ch] - zp) * (int64_t)in.requant.multiplier,
                                                          31 - in.requant.shift) +
                                output_zp;
                    if (v < MF_INT8_MIN) {
                        v = MF_INT8_MIN;
                    }
                    if (v > MF_INT8_MAX) {
                        v = MF_INT8_MAX;
                    }
                    dst[ch] = (int8_t)v;
#endif
                }
            }
            channel_offset += in.channels;
        }
    }
    return MF_OK;
}
