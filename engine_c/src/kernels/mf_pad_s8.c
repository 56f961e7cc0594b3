/*
 * Constant padding of an int8 NHWC tensor, as TensorFlow Lite Micro's PAD and PADV2 do it for int8: a byte copy of
 * the input with rows, columns and channels of one pad value around it (no requantization: TFLite Micro copies the
 * input bytes whatever the two tensors' quantization). Checked byte for byte against the tflite-micro interpreter
 * by tests/test_tflite.py.
 */
#include <string.h>

#include "../mf_internal.h"

mf_status mf_pad_s8(const mf_pad_params *params, const mf_dims *input_dims, const int8_t *input,
                    const mf_dims *output_dims, int8_t *output)
{
    if (params == NULL || !mf_dims_ok(input_dims) || !mf_dims_ok(output_dims) || input == NULL || output == NULL ||
        !mf_is_int8(params->pad_value) || params->padding.top < 0 || params->padding.left < 0 ||
        params->padding.bottom < 0 || params->padding.right < 0 || params->channels_before < 0 ||
        params->channels_after < 0) {
        return MF_ARG_ERROR;
    }
    if (output_dims->h != input_dims->h + params->padding.top + params->padding.bottom ||
        output_dims->w != input_dims->w + params->padding.left + params->padding.right ||
        output_dims->c != input_dims->c + params->channels_before + params->channels_after) {
        return MF_ARG_ERROR;
    }
    {
        const int32_t in_h = input_dims->h;
        const int32_t in_w = input_dims->w;
        const size_t in_c = (size_t)input_dims->c;
        const size_t out_c = (size_t)output_dims->c;
        const size_t out_row = (size_t)output_dims->w * out_c;
        const int32_t top = params->padding.top;
        const int32_t left = params->padding.left;
        const size_t before = (size_t)params->channels_before;
        const size_t after = (size_t)params->channels_after;
        const int pad_value = (int)params->pad_value;
        int8_t *out = output;
        int32_t out_y;
        for (out_y = 0; out_y < output_dims->h; out_y++) {
            const int32_t in_y = out_y - top;
            int32_t in_x;
            if (in_y < 0 || in_y >= in_h) {
                memset(out, pad_value, out_row);
                out += out_row;
                continue;
            }
            memset(out, pad_value, (size_t)left * out_c);
            out += (size_t)left * out_c;
            for (in_x = 0; in_x < in_w; in_x++) {
                const int8_t *in_pixel = input + ((size_t)in_y * (size_t)in_w + (size_t)in_x) * in_c;
                memset(out, pad_value, before);
                memcpy(out + before, in_pixel, in_c);
                memset(out + before + in_c, pad_value, after);
                out += out_c;
            }
            memset(out, pad_value, (size_t)params->padding.right * out_c);
            out += (size_t)params->padding.right * out_c;
        }
    }
    return MF_OK;
}
