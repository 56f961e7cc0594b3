/* Average, global average and max pooling on NHWC int8 tensors. */
#include "../mf_internal.h"

static int mf_pool_params_ok(const mf_pool_params *p)
{
    return p != NULL && p->kernel.h > 0 && p->kernel.w > 0 && p->stride.h > 0 && p->stride.w > 0 &&
           p->padding.top >= 0 && p->padding.left >= 0 && p->padding.bottom >= 0 && p->padding.right >= 0 &&
           p->padding.top < p->kernel.h && p->padding.bottom < p->kernel.h && p->padding.left < p->kernel.w &&
           p->padding.right < p->kernel.w && mf_act_ok(p->act_min, p->act_max);
}

static int mf_pool_out_ok(const mf_pool_params *p, const mf_dims *in, const mf_dims *out)
{
    return out->c == in->c &&
           out->h == mf_window_out_size(in->h, p->padding.top, p->padding.bottom, p->kernel.h, 1, p->stride.h) &&
           out->w == mf_window_out_size(in->w, p->padding.left, p->padding.right, p->kernel.w, 1, p->stride.w);
}

/* sums[k] += the int8 values of channel ch + k (k = 0..3) at p, p + step, ..., count pixels. */
static inline void mf_pool_sum4(const int8_t *p, int32_t count, int32_t step, int32_t *sums)
{
#if MF_DSP
    /* int16 lanes {ch, ch + 2} and {ch + 1, ch + 3}: exact for up to 256 values of [-128, 127] */
    while (count > 0) {
        const int32_t n = count < 256 ? count : 256;
        uint32_t even = 0;
        uint32_t odd = 0;
        int32_t i;
        for (i = 0; i < n; i++) {
            const uint32_t word = mf_read_s8x4(p);
            even = mf_sxtab16(even, word);
            odd = mf_sxtab16_ror8(odd, word);
            p += step;
        }
        sums[0] += (int16_t)(even & 0xFFFFu);
        sums[1] += (int16_t)(odd & 0xFFFFu);
        sums[2] += (int16_t)(even >> 16);
        sums[3] += (int16_t)(odd >> 16);
        count -= n;
    }
#else
    int32_t s0 = sums[0];
    int32_t s1 = sums[1];
    int32_t s2 = sums[2];
    int32_t s3 = sums[3];
    int32_t i;
    for (i = 0; i < count; i++) {
        s0 += p[0];
        s1 += p[1];
        s2 += p[2];
        s3 += p[3];
        p += step;
    }
    sums[0] = s0;
    sums[1] = s1;
    sums[2] = s2;
    sums[3] = s3;
#endif
}

#if MF_REQUANT_MODE == MF_REQUANT_FIXED
/* Rounds num / den to nearest, ties away from zero; den > 0. */
static int64_t mf_round_div(int64_t num, int64_t den)
{
    if (num >= 0) {
        return (num + den / 2) / den;
    }
    return -((-num + den / 2) / den);
}

/* round(sum * multiplier * 2^(shift - 31) / count) + zp, clamped to [lo, hi]. */
static int8_t mf_fixed_average(int32_t sum, int32_t count, const mf_requant *requant, int32_t zp, int32_t lo,
                               int32_t hi)
{
    const int64_t quotient = mf_round_div((int64_t)sum * (int64_t)requant->multiplier, (int64_t)count);
    int64_t v = mf_rounding_shift_right64(quotient, 31 - requant->shift);
    v += zp;
    if (v < lo) {
        v = lo;
    }
    if (v > hi) {
        v = hi;
    }
    return (int8_t)v;
}
#endif

/* The global average of one channel from its sum (including -input_zp * pixels), in the compiled mode. */
#if MF_REQUANT_MODE == MF_REQUANT_FLOAT
#define MF_GLOBAL_OUT(sum) ((int8_t)mf_requant_float((sum), scale, output_zp, act_min, act_max))
#else
#define MF_GLOBAL_OUT(sum) ((int8_t)mf_requant_fixed((sum), multiplier, shift, output_zp, act_min, act_max))
#endif

mf_status mf_global_avgpool_s8(const mf_pool_params *params, const mf_dims *input_dims, const int8_t *input,
                               int8_t *output)
{
    if (params == NULL || !mf_dims_ok(input_dims) || input == NULL || output == NULL ||
        !mf_is_int8(params->input_zp) || !mf_is_int8(params->output_zp) ||
        !mf_act_ok(params->act_min, params->act_max) || (int64_t)input_dims->h * input_dims->w >= 0x1000000) {
        return MF_ARG_ERROR;
    }
    {
        const int32_t pixels = input_dims->h * input_dims->w;
        const int32_t channels = input_dims->c;
        const int32_t bias = -params->input_zp * pixels;
        const int32_t output_zp = params->output_zp;
        const int32_t act_min = params->act_min;
        const int32_t act_max = params->act_max;
        int32_t ch = 0;
#if MF_REQUANT_MODE == MF_REQUANT_FLOAT
        /* MLAS: scale = x_scale / (y_scale * pixels) in float32, then the usual requantization. */
        const float scale = params->input_scale / (params->output_scale * (float)pixels);
        if (!(params->input_scale > 0.0f) || !(params->output_scale > 0.0f)) {
            return MF_ARG_ERROR;
        }
#else
        const int32_t multiplier = params->requant.multiplier;
        const int32_t shift = params->requant.shift;
#endif
        /* four channels per pass over the pixels (word loads), then the remaining ones */
        for (; ch + 4 <= channels; ch += 4) {
            int32_t sums[4] = {bias, bias, bias, bias};
            mf_pool_sum4(input + ch, pixels, channels, sums);
            output[ch] = MF_GLOBAL_OUT(sums[0]);
            output[ch + 1] = MF_GLOBAL_OUT(sums[1]);
            output[ch + 2] = MF_GLOBAL_OUT(sums[2]);
            output[ch + 3] = MF_GLOBAL_OUT(sums[3]);
        }
        for (; ch < channels; ch++) {
            int32_t acc = bias;
            int32_t p;
            for (p = 0; p < pixels; p++) {
                acc += input[(size_t)p * (size_t)channels + (size_t)ch];
            }
            output[ch] = MF_GLOBAL_OUT(acc);
        }
    }
    return MF_OK;
}

#undef MF_GLOBAL_OUT

mf_status mf_avgpool_s8(const mf_pool_params *params, const mf_dims *input_dims, const int8_t *input,
                        const mf_dims *output_dims, int8_t *output)
{
    if (!mf_pool_params_ok(params) || !mf_dims_ok(input_dims) || !mf_dims_ok(output_dims) || input == NULL ||
        output == NULL || !mf_is_int8(params->input_zp) || !mf_is_int8(params->output_zp) ||
        !mf_pool_out_ok(params, input_dims, output_dims)) {
        return MF_ARG_ERROR;
    }
#if MF_REQUANT_MODE == MF_REQUANT_FLOAT
    /* ONNX Runtime computes a window covering the whole unpadded input with the global pool arithmetic. */
    if (params->kernel.h == input_dims->h && params->kernel.w == input_dims->w && params->padding.top == 0 &&
        params->padding.left == 0 && params->padding.bottom == 0 && params->padding.right == 0) {
        return mf_global_avgpool_s8(params, input_dims, input, output);
    }
    if (!(params->input_scale > 0.0f) || !(params->output_scale > 0.0f)) {
        return MF_ARG_ERROR;
    }
#else
    if (params->requant.shift < -31 || params->requant.shift > 30) {
        return MF_ARG_ERROR;
    }
#endif
    {
        const int32_t in_h = input_dims->h;
        const int32_t in_w = input_dims->w;
        const int32_t channels = input_dims->c;
        const int32_t out_h = output_dims->h;
        const int32_t out_w = output_dims->w;
        const int32_t input_zp = params->input_zp;
        const int32_t output_zp = params->output_zp;
        const int32_t act_min = params->act_min;
        const int32_t act_max = params->act_max;
#if MF_REQUANT_MODE == MF_REQUANT_FLOAT
        const float input_scale = params->input_scale;
        const float output_scale = params->output_scale;
        const float lo = (float)act_min;
        const float hi = (float)act_max;
#endif
        int32_t out_y;
        for (out_y = 0; out_y < out_h; out_y++) {
            const int32_t y_origin = out_y * params->stride.h - params->padding.top;
            const int32_t y_start = y_origin > 0 ? y_origin : 0;
            const int32_t y_end = (y_origin + params->kernel.h) < in_h ? (y_origin + params->kernel.h) : in_h;
            int32_t out_x;
            for (out_x = 0; out_x < out_w; out_x++) {
                const int32_t x_origin = out_x * params->stride.w - params->padding.left;
                const int32_t x_start = x_origin > 0 ? x_origin : 0;
                const int32_t x_end = (x_origin + params->kernel.w) < in_w ? (x_origin + params->kernel.w) : in_w;
                const int32_t count = params->count_include_pad ? params->kernel.h * params->kernel.w
                                                                : (y_end - y_start) * (x_end - x_start);
                int8_t *out_pixel = output + ((size_t)out_y * (size_t)out_w + (size_t)out_x) * (size_t)channels;
                int32_t ch = 0;
#if MF_REQUANT_MODE == MF_REQUANT_FIXED
                /* four channels at a time (word loads along each window row), then the remaining ones */
                const int32_t bias = -input_zp * (y_end - y_start) * (x_end - x_start);
                for (; ch + 4 <= channels; ch += 4) {
                    int32_t sums[4] = {bias, bias, bias, bias};
                    int32_t y;
                    int32_t k;
                    for (y = y_start; y < y_end; y++) {
                        mf_pool_sum4(input + ((size_t)y * (size_t)in_w + (size_t)x_start) * (size_t)channels +
                                         (size_t)ch,
                                     x_end - x_start, channels, sums);
                    }
                    for (k = 0; k < 4; k++) {
                        out_pixel[ch + k] =
                            mf_fixed_average(sums[k], count, &params->requant, output_zp, act_min, act_max);
                    }
                }
#endif
                for (; ch < channels; ch++) {
#if MF_REQUANT_MODE == MF_REQUANT_FLOAT
                    /* ONNX Runtime: dequantize, float sum in row-major order, divide, quantize. */
                    float sum = 0.0f;
                    float v;
#else
                    int32_t sum = 0;
#endif
                    int32_t y;
                    for (y = y_start; y < y_end; y++) {
                        int32_t x;
                        for (x = x_start; x < x_end; x++) {
                            const int32_t q =
                                input[((size_t)y * (size_t)in_w + (size_t)x) * (size_t)channels + (size_t)ch];
#if MF_REQUANT_MODE == MF_REQUANT_FLOAT
                            sum += (float)(q - input_zp) * input_scale;
#else
                            sum += q - input_zp;
#endif
                        }
                    }
#if MF_REQUANT_MODE == MF_REQUANT_FLOAT
                    v = (sum / (float)count) / output_scale + (float)output_zp;
                    if (v < lo) {
                        v = lo;
                    }
                    if (v > hi) {
                        v = hi;
                    }
                    out_pixel[ch] = (int8_t)mf_round_half_even_f(v);
#else
                    out_pixel[ch] = mf_fixed_average(sum, count, &params->requant, output_zp, act_min, act_max);
#endif
                }
            }
        }
    }
    return MF_OK;
}

mf_status mf_maxpool_s8(const mf_pool_params *params, const mf_dims *input_dims, const int8_t *input,
                        const mf_dims *output_dims, int8_t *output)
{
    if (!mf_pool_params_ok(params) || !mf_dims_ok(input_dims) || !mf_dims_ok(output_dims) || input == NULL ||
        output == NULL || !mf_pool_out_ok(params, input_dims, output_dims)) {
        return MF_ARG_ERROR;
    }
    {
        const int32_t in_h = input_dims->h;
        const int32_t in_w = input_dims->w;
        const int32_t channels = input_dims->c;
        const int32_t out_h = output_dims->h;
        const int32_t out_w = output_dims->w;
        int32_t out_y;
        for (out_y = 0; out_y < out_h; out_y++) {
            const int32_t y_origin = out_y * params->stride.h - params->padding.top;
            const int32_t y_start = y_origin > 0 ? y_origin : 0;
            const int32_t y_end = (y_origin + params->kernel.h) < in_h ? (y_origin + params->kernel.h) : in_h;
            int32_t out_x;
            for (out_x = 0; out_x < out_w; out_x++) {
                const int32_t x_origin = out_x * params->stride.w - params->padding.left;
                const int32_t x_start = x_origin > 0 ? x_origin : 0;
                const int32_t x_end = (x_origin + params->kernel.w) < in_w ? (x_origin + params->kernel.w) : in_w;
                int8_t *out_pixel = output + ((size_t)out_y * (size_t)out_w + (size_t)out_x) * (size_t)channels;
                int32_t ch = 0;
                /* four channels at a time (word loads), then the remaining ones */
                for (; ch + 4 <= channels; ch += 4) {
                    int32_t k;
                    int32_t y;
#if MF_DSP
                    uint32_t maxima = 0x80808080u;
                    for (y = y_start; y < y_end; y++) {
                        const int8_t *p =
                            input + ((size_t)y * (size_t)in_w + (size_t)x_start) * (size_t)channels + (size_t)ch;
                        int32_t x;
                        for (x = x_start; x < x_end; x++, p += channels) {
                            maxima = mf_max_s8x4(maxima, mf_read_s8x4(p));
                        }
                    }
                    for (k = 0; k < 4; k++) {
                        const int32_t v = (int8_t)(uint8_t)(maxima >> (8 * k));
                        out_pixel[ch + k] = (int8_t)mf_clamp32(v, params->act_min, params->act_max);
                    }
#else
                    int32_t maxima[4] = {MF_INT8_MIN, MF_INT8_MIN, MF_INT8_MIN, MF_INT8_MIN};
                    for (y = y_start; y < y_end; y++) {
                        const int8_t *p =
                            input + ((size_t)y * (size_t)in_w + (size_t)x_start) * (size_t)channels + (size_t)ch;
                        int32_t x;
                        for (x = x_start; x < x_end; x++, p += channels) {
                            for (k = 0; k < 4; k++) {
                                maxima[k] = p[k] > maxima[k] ? p[k] : maxima[k];
                            }
                        }
                    }
                    for (k = 0; k < 4; k++) {
                        out_pixel[ch + k] = (int8_t)mf_clamp32(maxima[k], params->act_min, params->act_max);
                    }
#endif
                }
                for (; ch < channels; ch++) {
                    int32_t max_value = MF_INT8_MIN;
                    int32_t y;
                    for (y = y_start; y < y_end; y++) {
                        int32_t x;
                        for (x = x_start; x < x_end; x++) {
                            const int32_t q =
                                input[((size_t)y * (size_t)in_w + (size_t)x) * (size_t)channels + (size_t)ch];
                            if (q > max_value) {
                                max_value = q;
                            }
                        }
                    }
                    if (max_value < params->act_min) {
                        max_value = params->act_min;
                    }
                    if (max_value > params->act_max) {
                        max_value = params->act_max;
                    }
                    out_pixel[ch] = (int8_t)max_value;
                }
            }
        }
    }
    return MF_OK;
}
