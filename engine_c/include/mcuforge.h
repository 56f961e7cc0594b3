/**
 * @file mcuforge.h
 * @brief mcuforge int8 kernel library (C99, no malloc, no OS).
 *
 * Conventions (see docs/engine_abi.md):
 * - Activations are int8, asymmetric (scale, zero point), NHWC, batch 1.
 * - Weights are int8, symmetric (zero point 0), per output channel.
 *   Conv: [C_out, K_h, K_w, C_in] (OHWI). Depthwise: packed (below). Fully connected: [N_out, N_in].
 * - Bias is int32 with scale x_scale * w_scale[c] and zero point 0.
 * - Fused activations (ReLU, ReLU6, Clip) are an output clamp [act_min, act_max] in the quantized domain.
 *
 * Requantization is chosen at compile time with -DMF_REQUANT_MODE=MF_REQUANT_FLOAT (default) or
 * -DMF_REQUANT_MODE=MF_REQUANT_FIXED:
 * - float mode reproduces ONNX Runtime's CPU kernels (MLAS) bit-exactly; the engine must be compiled with
 *   -ffp-contract=off so that no multiply-add is fused.
 * - fixed mode uses a Q31 multiplier and a power-of-two shift per channel (TFLite semantics) and does not
 *   use floating point in the convolution, fully connected, add, pooling and concat kernels (only softmax
 *   uses float in both modes). It is within +-1 LSB of ONNX Runtime.
 *
 * All kernels return MF_OK or a negative mf_status; they never allocate and never assert.
 *
 * Packed depthwise filter (every depthwise kernel, and the depthwise stage of mf_mbconv_fused_s8): the int8 filter
 * w[K_h][K_w][C] stored as int16 values, 4-byte aligned, in groups of 4 channels so that the SIMD loops read each
 * tap's weights of 4 channels as two words already sign-extended. Group g holds channels 4g .. 4g + 3 (those past C
 * are 0); its K_h * K_w taps t = k_y * K_w + k_x follow each other, 4 int16 a tap, in the order
 * {w[t][4g], w[t][4g + 2], w[t][4g + 1], w[t][4g + 3]}: int16 index (g * K_h * K_w + t) * 4 + lane. Size:
 * ceil(C / 4) * K_h * K_w * 4 int16 (mcuforge/codegen/layout.py writes it at code generation). Kernels take it as
 * `const int8_t *` (its bytes) and return MF_ARG_ERROR when it is not 4-byte aligned.
 */
#ifndef MCUFORGE_H
#define MCUFORGE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MF_REQUANT_FLOAT 1
#define MF_REQUANT_FIXED 2

#ifndef MF_REQUANT_MODE
#define MF_REQUANT_MODE MF_REQUANT_FLOAT
#endif

#if (MF_REQUANT_MODE != MF_REQUANT_FLOAT) && (MF_REQUANT_MODE != MF_REQUANT_FIXED)
#error "MF_REQUANT_MODE must be MF_REQUANT_FLOAT or MF_REQUANT_FIXED"
#endif

/** Status returned by every kernel. */
typedef enum {
    MF_OK = 0,            /**< success */
    MF_ARG_ERROR = -1,    /**< NULL pointer, inconsistent shapes or out-of-range parameter */
    MF_UNSUPPORTED = -2   /**< valid arguments that this kernel does not handle (use the general kernel) */
} mf_status;

/** Shape of an NHWC activation tensor with batch 1 (or a kernel window: h, w; c unused). */
typedef struct {
    int32_t h; /**< height, >= 1 */
    int32_t w; /**< width, >= 1 */
    int32_t c; /**< channels, >= 1 */
} mf_dims;

/** A pair of (vertical, horizontal) values: strides, dilations, kernel sizes. */
typedef struct {
    int32_t h; /**< vertical, >= 1 */
    int32_t w; /**< horizontal, >= 1 */
} mf_tile;

/** Zero padding added around the input, in pixels (ONNX pads = [top, left, bottom, right]). */
typedef struct {
    int32_t top;    /**< >= 0 */
    int32_t left;   /**< >= 0 */
    int32_t bottom; /**< >= 0 */
    int32_t right;  /**< >= 0 */
} mf_padding;

/** Parameters of convolutions (standard, 1x1, depthwise). */
typedef struct {
    int32_t input_zp;   /**< input zero point, [-128, 127] */
    int32_t output_zp;  /**< output zero point, [-128, 127] */
    mf_tile stride;     /**< >= 1 */
    mf_tile dilation;   /**< >= 1 */
    mf_padding padding; /**< >= 0 each */
    int32_t act_min;    /**< fused activation lower bound, [-128, 127] */
    int32_t act_max;    /**< fused activation upper bound, [act_min, 127] */
} mf_conv_params;

/**
 * Per-output-channel requantization of an int32 accumulator to int8.
 * Only the member(s) of the compiled mode are read; the others may be NULL.
 */
typedef struct {
    /** float mode: Format [C_out], float32 (x_scale * w_scale[c]) / y_scale computed in float32 in this
     *  order. Range: finite, > 0. */
    const float *scale;
    /** fixed mode: Format [C_out], Q31 multiplier from quantize_multiplier(). Range: 0 or [2^30, 2^31 - 1]. */
    const int32_t *multiplier;
    /** fixed mode: Format [C_out], power-of-two exponent (left shift if > 0). Range: [-31, 30]. */
    const int32_t *shift;
} mf_quant_params;

/** One scalar requantization (a per-tensor rescale); only the members of the compiled mode are read. */
typedef struct {
    float scale;        /**< float mode: the real multiplier, finite, > 0 */
    int32_t multiplier; /**< fixed mode: Q31 multiplier, 0 or [2^30, 2^31 - 1] */
    int32_t shift;      /**< fixed mode: exponent, [-31, 30] */
} mf_requant;

/** Parameters of mf_fully_connected_s8. */
typedef struct {
    int32_t input_zp;  /**< [-128, 127] */
    int32_t output_zp; /**< [-128, 127] */
    int32_t act_min;   /**< [-128, 127] */
    int32_t act_max;   /**< [act_min, 127] */
} mf_fc_params;

/**
 * Parameters of the element-wise add. Float mode reads the three scales; fixed mode reads the
 * multipliers and shifts computed at code-generation time (TFLite's add preparation: left shift 20).
 */
typedef struct {
    int32_t input1_zp;  /**< [-128, 127] */
    int32_t input2_zp;  /**< [-128, 127] */
    int32_t output_zp;  /**< [-128, 127] */
    float input1_scale; /**< float mode, > 0 */
    float input2_scale; /**< float mode, > 0 */
    float output_scale; /**< float mode, > 0 */
    int32_t left_shift; /**< fixed mode: headroom shift of both inputs, [0, 22] (TFLite uses 20) */
    mf_requant input1;  /**< fixed mode: input1_scale / (2 * max input scale) */
    mf_requant input2;  /**< fixed mode: input2_scale / (2 * max input scale) */
    mf_requant output;  /**< fixed mode: 2 * max input scale / (2^left_shift * output_scale) */
    int32_t act_min;    /**< [-128, 127] */
    int32_t act_max;    /**< [act_min, 127] */
} mf_add_params;

/** Parameters of average and max pooling. */
typedef struct {
    mf_tile kernel;            /**< window size, >= 1 */
    mf_tile stride;            /**< >= 1 */
    mf_padding padding;        /**< >= 0, each smaller than the kernel in its direction */
    int32_t count_include_pad; /**< average pool: 0 divides by the valid pixels, 1 by kernel.h * kernel.w */
    int32_t input_zp;          /**< average pool: [-128, 127] (max pool ignores zero points and scales) */
    int32_t output_zp;         /**< average pool: [-128, 127] */
    float input_scale;         /**< average pool, float mode: > 0 */
    float output_scale;        /**< average pool, float mode: > 0 */
    /** average pool, fixed mode: input_scale / output_scale (the division by the pixel count is exact
     *  integer arithmetic inside the kernel). Global average pool, fixed mode:
     *  input_scale / (output_scale * H * W). */
    mf_requant requant;
    int32_t act_min; /**< [-128, 127] */
    int32_t act_max; /**< [act_min, 127] */
} mf_pool_params;

/** One input of mf_concat_s8. */
typedef struct {
    const int8_t *data; /**< Format [H, W, channels] (NHWC). Range [-128, 127] */
    int32_t channels;   /**< >= 1 */
    int32_t zp;         /**< input zero point, [-128, 127] */
    float scale;        /**< float mode: input scale, > 0 */
    mf_requant requant; /**< fixed mode: input scale / output scale */
} mf_concat_input;

/** Parameters of mf_concat_s8. */
typedef struct {
    float output_scale; /**< float mode: > 0 (an input with this scale and the output zero point is copied) */
    int32_t output_zp;  /**< [-128, 127] */
} mf_concat_params;

/** Parameters of mf_softmax_s8 (ONNX Runtime's QLinearSoftmax, the table computed at code generation). */
typedef struct {
    /** Format [256], exp of each input step x - max(x) + 255, built like ONNX Runtime. Range: finite, > 0. */
    const float *exp_table;
    float output_scale_recip; /**< floor(1 / output_scale) in float32, as ONNX Runtime computes it, [0, 3e38] */
    int32_t output_zp;        /**< [-128, 127] */
} mf_softmax_params;

/** Parameters of mf_softmax_tflm_s8 (TFLite's PreprocessSoftmaxScaling, computed at code generation). */
typedef struct {
    int32_t input_multiplier; /**< Q31 multiplier of beta * input_scale * 2^26, [2^30, 2^31 - 1] */
    int32_t input_left_shift; /**< its exponent, [0, 31] */
    int32_t diff_min;         /**< input differences below this give 0 (output -128), <= 0 */
} mf_softmax_tflm_params;

/* ------------------------------------------------------------------------------------------------ */
/* Requantization helpers                                                                            */
/* ------------------------------------------------------------------------------------------------ */

#if MF_REQUANT_MODE == MF_REQUANT_FLOAT
/**
 * Float requantization, bit-exact with MLAS (MlasRequantizeOutput):
 * v = (float)acc * scale (float32, no fused multiply-add); v is clamped to [qmin - zp, qmax - zp];
 * v is rounded to the nearest integer, ties to even (the float magic-number trick
 * (v + 1.5 * 2^23) - 1.5 * 2^23, exact because |v| <= 255 after the clamp); the result is v + zp.
 * @param acc   int32 accumulator (bias included). Range: full int32.
 * @param scale float32 multiplier. Range: finite (NaN is not supported).
 * @param zp    output zero point, [-128, 127].
 * @param qmin  lower bound, [-128, qmax].
 * @param qmax  upper bound, [qmin, 127].
 * @return the requantized value in [qmin, qmax].
 */
int32_t mf_requantize_float(int32_t acc, float scale, int32_t zp, int32_t qmin, int32_t qmax);

/** Rounds a float32 already clamped to |v| <= 2^22 to the nearest integer, ties to even. */
int32_t mf_round_half_even(float v);
#endif

/**
 * TFLite's MultiplyByQuantizedMultiplier: x * multiplier * 2^(shift - 31) with
 * - the left shift (shift > 0) applied first, saturating to the int32 range (TFLite leaves this overflow
 *   undefined),
 * - SaturatingRoundingDoublingHighMul: (x * m + 2^30) >> 31, rounded to nearest, ties away from zero
 *   (only x == m == INT32_MIN saturates, to INT32_MAX),
 * - RoundingDivideByPOT for shift < 0: rounded to nearest, ties away from zero.
 * @param x          Range: full int32.
 * @param multiplier Range: full int32 (quantize_multiplier gives 0 or [2^30, 2^31 - 1]).
 * @param shift      Range: [-31, 30].
 */
int32_t mf_multiply_by_quantized_multiplier(int32_t x, int32_t multiplier, int32_t shift);

/**
 * Fixed-point requantization: clamp(mf_multiply_by_quantized_multiplier(acc, multiplier, shift) + zp,
 * qmin, qmax), the addition done without overflow.
 * @param acc Range: full int32. @param multiplier see above. @param shift Range: [-31, 30].
 * @param zp [-128, 127]. @param qmin [-128, qmax]. @param qmax [qmin, 127].
 */
int32_t mf_requantize_fixed(int32_t acc, int32_t multiplier, int32_t shift, int32_t zp, int32_t qmin,
                            int32_t qmax);

/* ------------------------------------------------------------------------------------------------ */
/* Kernels                                                                                           */
/* ------------------------------------------------------------------------------------------------ */

/**
 * General int8 2-D convolution (any kernel size, stride, dilation, asymmetric padding), im2col-free.
 * Output size: out.h = (in.h + pad.top + pad.bottom - dilation.h * (kernel.h - 1) - 1) / stride.h + 1
 * (likewise for w); the kernel checks output_dims against it.
 * Matches ONNX QLinearConv (group = 1) in float mode exactly.
 * @param params       zero points, stride, dilation, padding, activation clamp.
 * @param quant        per-output-channel requantization, [output_dims->c] entries.
 * @param input_dims   input shape (h, w, c = C_in).
 * @param input        Format [H, W, C_in] (NHWC). Range [-128, 127].
 * @param filter_dims  kernel shape (h = K_h, w = K_w, c = C_in).
 * @param filter       Format [C_out, K_h, K_w, C_in] (OHWI). Range [-127, 127] (symmetric).
 * @param bias         Format [C_out], int32, or NULL for no bias. Range: full int32 (sums wrap like MLAS).
 * @param output_dims  output shape (h, w, c = C_out).
 * @param output       Format [H_out, W_out, C_out]. Range [act_min, act_max]. Must not overlap input.
 */
mf_status mf_conv2d_s8(const mf_conv_params *params, const mf_quant_params *quant, const mf_dims *input_dims,
                       const int8_t *input, const mf_dims *filter_dims, const int8_t *filter,
                       const int32_t *bias, const mf_dims *output_dims, int8_t *output);

/**
 * 1x1 convolution fast path (pointwise; any stride; padding must be 0; dilation ignored).
 * Same arguments and results as mf_conv2d_s8; returns MF_UNSUPPORTED for a filter other than 1x1 or
 * non-zero padding.
 * @param filter Format [C_out, 1, 1, C_in]. Range [-127, 127].
 * (Other pointers: as mf_conv2d_s8.)
 */
mf_status mf_conv2d_1x1_s8(const mf_conv_params *params, const mf_quant_params *quant, const mf_dims *input_dims,
                           const int8_t *input, const mf_dims *filter_dims, const int8_t *filter,
                           const int32_t *bias, const mf_dims *output_dims, int8_t *output);

/**
 * Depthwise int8 convolution, depth multiplier 1 (C_out == C_in == groups). Matches ONNX QLinearConv
 * with group = C in float mode exactly.
 * @param filter_dims (h = K_h, w = K_w, c = C).
 * @param filter      Packed depthwise filter (file header), 4-byte aligned. Range [-127, 127].
 * @param input       Format [H, W, C]. Range [-128, 127].
 * @param bias        Format [C] or NULL.
 * @param output      Format [H_out, W_out, C]. Range [act_min, act_max]. Must not overlap input.
 * (quant: [C] entries.)
 */
mf_status mf_depthwise_conv2d_s8(const mf_conv_params *params, const mf_quant_params *quant,
                                 const mf_dims *input_dims, const int8_t *input, const mf_dims *filter_dims,
                                 const int8_t *filter, const int32_t *bias, const mf_dims *output_dims,
                                 int8_t *output);

/**
 * Scratch bytes mf_depthwise_conv2d_inplace_s8 needs: a few output rows (H_out x W_out x C layout, row = W_out * C
 * bytes), as many as are computed before the input rows under them are no longer needed (stride 1, pad 1, 3x3:
 * 2 rows; stride 2: 1 row). Returns 0 for invalid dimensions.
 */
int32_t mf_depthwise_conv2d_inplace_s8_get_buffer_size(const mf_conv_params *params, const mf_dims *input_dims,
                                                       const mf_dims *output_dims);

/**
 * Depthwise int8 convolution written over its own input (in place), byte-identical to mf_depthwise_conv2d_s8.
 * NHWC interleaves channels, so the lecture's channel-by-channel scheme (one channel of scratch) does not apply;
 * instead output rows are computed into `scratch` (a ring of rows) and row j is copied to data[j * W_out * C ...]
 * once the first input byte any later output row reads, row (y * stride_h - pad_top), lies at or past its end.
 * Any stride, padding and dilation with H_out <= H and W_out <= W.
 * @param data         In: the input, format [H, W, C]. Out: the output, format [H_out, W_out, C], from data[0].
 * @param scratch      mf_depthwise_conv2d_inplace_s8_get_buffer_size() bytes, not overlapping data.
 * @param scratch_bytes Its size; MF_ARG_ERROR when smaller than needed.
 * (Other arguments: as mf_depthwise_conv2d_s8.)
 */
mf_status mf_depthwise_conv2d_inplace_s8(const mf_conv_params *params, const mf_quant_params *quant,
                                         const mf_dims *input_dims, int8_t *data, const mf_dims *filter_dims,
                                         const int8_t *filter, const int32_t *bias, const mf_dims *output_dims,
                                         int8_t *scratch, int32_t scratch_bytes);

/**
 * Fully connected: output[b, n] = requant(sum_k (input[b, k] - input_zp) * filter[n, k] + bias[n]).
 * Matches com.microsoft QGemm (transB = 1) and ONNX QLinearMatMul in float mode exactly.
 * The shapes are rows of features: h counts rows, w is 1, c counts features. MF_ARG_ERROR unless
 * filter_dims->c == input_dims->c, output_dims->h == input_dims->h and output_dims->c == filter_dims->h.
 * @param params      zero points, activation clamp.
 * @param quant       per-output-feature requantization, [out_features] entries (per-tensor: repeat one value).
 * @param input_dims  (h = batches, w = 1, c = in_features).
 * @param input       Format [batches, in_features]. Range [-128, 127].
 * @param filter_dims (h = out_features, w = 1, c = in_features).
 * @param filter      Format [out_features, in_features]. Range [-127, 127] (symmetric).
 * @param bias        Format [out_features], int32, or NULL for no bias. Range: full int32 (sums wrap like MLAS).
 * @param output_dims (h = batches, w = 1, c = out_features).
 * @param output      Format [batches, out_features]. Range [act_min, act_max]. Must not overlap input.
 */
mf_status mf_fully_connected_s8(const mf_fc_params *params, const mf_quant_params *quant, const mf_dims *input_dims,
                                const int8_t *input, const mf_dims *filter_dims, const int8_t *filter,
                                const int32_t *bias, const mf_dims *output_dims, int8_t *output);

/**
 * Element-wise add of two tensors of the same shape, both inputs rescaled to the output scale.
 * Float mode matches com.microsoft QLinearAdd (MLAS's AVX2 kernel, which ORT runs on x86-64) exactly, in
 * float32 with fused multiply-adds (C99 fmaf from libm; a single VFMA on Cortex-M4F/M7):
 * r_a = s_a / s_y, r_b = s_b / s_y, fixed = (float)zp_y - fmaf(r_a, zp_a, r_b * zp_b),
 * y = saturate(round_half_even(fmaf(a, r_a, fmaf(b, r_b, fixed)))). The zero point is added before rounding.
 * Fixed mode: TFLite's add (inputs shifted left by left_shift, rescaled, summed, requantized).
 * @param input1 Format [size]. Range [-128, 127].
 * @param input2 Format [size]. Range [-128, 127].
 * @param output Format [size]. Range [act_min, act_max]. May alias input1 or input2 (in place).
 */
mf_status mf_add_s8(const mf_add_params *params, int32_t size, const int8_t *input1, const int8_t *input2,
                    int8_t *output);

/**
 * Average pooling. Float mode matches com.microsoft QLinearAveragePool exactly: it dequantizes to float,
 * sums the valid pixels in row-major order, divides by the count, quantizes with
 * round_half_even(avg / output_scale + output_zp). A window covering the whole unpadded input falls back to
 * the global average pool arithmetic, as ONNX Runtime does. Fixed mode: the integer sum of (x - input_zp) times
 * requant (input_scale / output_scale), divided by the count in 64-bit integers, rounded half away from zero.
 * @param input  Format [H, W, C]. Range [-128, 127].
 * @param output Format [H_out, W_out, C], H_out = (H + pad.top + pad.bottom - kernel.h) / stride.h + 1.
 *               Range [act_min, act_max].
 */
mf_status mf_avgpool_s8(const mf_pool_params *params, const mf_dims *input_dims, const int8_t *input,
                        const mf_dims *output_dims, int8_t *output);

/**
 * Global average pool over H and W. Float mode matches com.microsoft QLinearGlobalAveragePool exactly:
 * acc = sum(x) - input_zp * H * W (int32), then mf_requantize_float(acc, input_scale / (output_scale * (H * W))).
 * @param input  Format [H, W, C]. Range [-128, 127]. H * W < 2^24.
 * @param output Format [C]. Range [act_min, act_max].
 */
mf_status mf_global_avgpool_s8(const mf_pool_params *params, const mf_dims *input_dims, const int8_t *input,
                               int8_t *output);

/**
 * Max pooling over the valid pixels of each window (padding never wins), then the activation clamp.
 * Matches ONNX MaxPool on int8 exactly (input and output share scale and zero point).
 * @param input  Format [H, W, C]. Range [-128, 127].
 * @param output Format [H_out, W_out, C]. Range [act_min, act_max].
 */
mf_status mf_maxpool_s8(const mf_pool_params *params, const mf_dims *input_dims, const int8_t *input,
                        const mf_dims *output_dims, int8_t *output);

/**
 * Concatenation along channels (NHWC), each input requantized to the output scale and zero point.
 * Float mode matches com.microsoft QLinearConcat exactly:
 * round_half_even(clamp(((float)(x - zp_x) * s_x) / s_y)) + zp_y; inputs with the output's scale and zero
 * point are copied. Fixed mode: round((x - zp_x) * multiplier * 2^(shift - 31)) + zp_y with one rounding
 * (half away from zero, 64-bit product), within +-1 LSB of ONNX Runtime.
 * @param params      output scale and zero point.
 * @param inputs      Format [num_inputs] descriptors; each data pointer Format [H, W, channels] (NHWC), the
 *                    H and W of output_dims. Range [-128, 127].
 * @param num_inputs  >= 1.
 * @param output_dims output shape (h, w, c = the sum of the inputs' channels; MF_ARG_ERROR otherwise).
 * @param output      Format [H, W, C]. Range [-128, 127]. Must not overlap the inputs.
 */
mf_status mf_concat_s8(const mf_concat_params *params, const mf_concat_input *inputs, int32_t num_inputs,
                       const mf_dims *output_dims, int8_t *output);

/**
 * Softmax along the last axis with ONNX Runtime's QLinearSoftmax lookup-table arithmetic (float32, used in
 * both requantization modes):
 * e_i = exp_table[x_i - max(x) + 255]; sum = e_0 + e_1 + ... (float32, in index order);
 * scale = (1 / sum) * output_scale_recip; y_i = round_half_even(e_i * scale + output_zp), saturated to int8.
 * ONNX Runtime's result depends on the host CPU (MLAS picks an AVX-512, AVX2 or scalar kernel that sum in
 * different orders, the vector ones with a fused multiply-add), so it is matched within +-1 LSB, not bit
 * for bit; argmax of the output is unaffected in practice (see engine_c/src/README.md).
 * @param params lookup table, output scale reciprocal and zero point.
 * @param dims   (h, w, c): softmax over the c values of each of the h * w rows (a vector of depth N: (1, 1, N);
 *               rows x depth: (rows, 1, depth)).
 * @param input  Format [H, W, C]. Range [-128, 127].
 * @param output Format [H, W, C]. Range [-128, 127]. May alias input.
 */
mf_status mf_softmax_s8(const mf_softmax_params *params, const mf_dims *dims, const int8_t *input, int8_t *output);

/**
 * Average pooling exactly as TensorFlow Lite Micro's int8 reference kernel (imported .tflite models; integer
 * only, both requantization modes): the raw int8 sum over the valid pixels of the window (padding excluded),
 * divided by their count rounding half away from zero, clamped to [act_min, act_max]. Input and output share
 * scale and zero point (TFLite requires it), so there is no rescale; zero points and scales are not read.
 * @param input  Format [H, W, C]. Range [-128, 127].
 * @param output Format [H_out, W_out, C]. Range [act_min, act_max].
 */
mf_status mf_avgpool_tflm_s8(const mf_pool_params *params, const mf_dims *input_dims, const int8_t *input,
                             const mf_dims *output_dims, int8_t *output);

/**
 * Softmax along the last axis exactly as TensorFlow Lite Micro's int8 reference kernel (gemmlowp fixed point:
 * exp_on_negative_values of the input difference rescaled to 5 integer bits, a sum with 12 integer bits, its
 * reciprocal by Newton-Raphson); integer only. Output scale 1/256, zero point -128.
 * @param params input multiplier, shift and diff_min.
 * @param dims   (h, w, c): softmax over the c values of each of the h * w rows, as mf_softmax_s8.
 * @param input  Format [H, W, C]. Range [-128, 127].
 * @param output Format [H, W, C]. Range [-128, 127]. Must not overlap input (each row is read twice).
 */
mf_status mf_softmax_tflm_s8(const mf_softmax_tflm_params *params, const mf_dims *dims, const int8_t *input,
                             int8_t *output);

/**
 * Copy `rows` rows of `row_bytes` bytes from rows `src_stride` bytes apart to rows `dst_stride` bytes apart
 * (patch-based inference: a patch's box out of a whole NHWC tensor, a computed tile into the whole output).
 * @param src Format [rows, src_stride]; only the first row_bytes of each row are read.
 * @param dst Format [rows, dst_stride]; only the first row_bytes of each row are written. Must not overlap src.
 */
mf_status mf_copy_rows_s8(const int8_t *src, int32_t src_stride, int8_t *dst, int32_t dst_stride, int32_t rows,
                          int32_t row_bytes);

/**
 * Index of the first maximum (ONNX ArgMax, select_last_index = 0).
 * @param input Format [size]. Range [-128, 127].
 * @param index Format [1]; receives an index in [0, size - 1].
 */
mf_status mf_argmax_s8(const int8_t *input, int32_t size, int32_t *index);

/* ------------------------------------------------------------------------------------------------ */
/* TFLite PAD, PADV2 and MEAN (imported .tflite models)                                              */
/* ------------------------------------------------------------------------------------------------ */

/** Parameters of mf_pad_s8 (TFLite PAD / PADV2 with constant padding). */
typedef struct {
    mf_padding padding;      /**< rows and columns added around the input, >= 0 each */
    int32_t channels_before; /**< channels added before each pixel's channels, >= 0 */
    int32_t channels_after;  /**< channels added after them, >= 0 */
    int32_t pad_value;       /**< the padding byte, [-128, 127]: the output zero point (PAD) or constant_values */
} mf_pad_params;

/** Parameters of mf_mean_tflm_s8 (TFLite's quantized mean, the division by the count folded into the multiplier). */
typedef struct {
    int32_t reduce_h;   /**< 1: averaged over H, 0: kept */
    int32_t reduce_w;   /**< 1: averaged over W, 0: kept */
    int32_t reduce_c;   /**< 1: averaged over C, 0: kept */
    int32_t input_zp;   /**< [-128, 127] */
    int32_t output_zp;  /**< [-128, 127] */
    /** Q31 multiplier of input_scale / output_scale shifted left by s = min(floor(log2(count)), 32, 31 + its
     *  exponent) and divided by the count (truncated): TFLite's quantized mean. Range [0, 2^31 - 1]. */
    int32_t multiplier;
    int32_t shift;      /**< the exponent minus s, [-31, 30] */
} mf_mean_params;

/**
 * Constant padding, exactly as TensorFlow Lite Micro's int8 PAD / PADV2: the input bytes copied unchanged (no
 * requantization) with pad_value around them along H, W and C.
 * @param input_dims  input shape (h, w, c).
 * @param input       Format [H, W, C]. Range [-128, 127].
 * @param output_dims (h + padding.top + padding.bottom, w + padding.left + padding.right,
 *                    c + channels_before + channels_after); MF_ARG_ERROR otherwise.
 * @param output      Format [H_out, W_out, C_out]. Range [-128, 127]. Must not overlap input.
 */
mf_status mf_pad_s8(const mf_pad_params *params, const mf_dims *input_dims, const int8_t *input,
                    const mf_dims *output_dims, int8_t *output);

/**
 * Mean over H, W and/or C, exactly as TensorFlow Lite Micro's int8 MEAN (integer only, both requantization
 * modes): out = saturate(mf_multiply_by_quantized_multiplier(sum - input_zp * count, multiplier, shift) +
 * output_zp), sum the int32 sum of the count = (H if reduce_h) x (W if reduce_w) x (C if reduce_c) values.
 * Returns MF_UNSUPPORTED for a count above 2^23.
 * @param input  Format [H, W, C]. Range [-128, 127].
 * @param output Format [H_out, W_out, C_out] with each reduced axis of size 1 (keep_dims or not: same bytes).
 *               Range [-128, 127]. Must not overlap input.
 */
mf_status mf_mean_tflm_s8(const mf_mean_params *params, const mf_dims *input_dims, const int8_t *input,
                          int8_t *output);

/* ------------------------------------------------------------------------------------------------ */
/* Fused inverted bottleneck                                                                         */
/* ------------------------------------------------------------------------------------------------ */

/** One convolution of a fused block: its parameters, requantization and constants. */
typedef struct {
    mf_conv_params params;  /**< zero points, stride, dilation, padding, activation clamp */
    mf_quant_params quant;  /**< per output channel */
    mf_dims filter_dims;    /**< 1x1: (1, 1, C_in); depthwise: (K_h, K_w, C) */
    const int8_t *filter;   /**< 1x1: Format [C_out, 1, 1, C_in]; depthwise: packed (file header). Range [-127, 127] */
    const int32_t *bias;    /**< Format [C_out], or NULL */
} mf_conv_stage;

/**
 * An inverted bottleneck (MobileNetV2 block without its residual add): expansion 1x1 (C_in -> C_mid), depthwise
 * K_h x K_w (C_mid, any stride, dilation and padding), projection 1x1 (C_mid -> C_out). The 1x1 stages have
 * stride 1 and no padding. Each stage's output zero point is the next stage's input zero point.
 */
typedef struct {
    mf_conv_stage expand;    /**< filter_dims (1, 1, C_in); C_mid = depthwise.filter_dims.c outputs */
    mf_conv_stage depthwise; /**< filter_dims (K_h, K_w, C_mid) */
    mf_conv_stage project;   /**< filter_dims (1, 1, C_mid); C_out = output_dims->c outputs */
} mf_mbconv_params;

/**
 * Scratch bytes mf_mbconv_fused_s8 needs: (R * W + W_out) * C_mid, a ring of R = min(H, dilation.h * (K_h - 1) + 1)
 * expanded rows and one depthwise output row. Returns 0 for invalid dimensions.
 */
int32_t mf_mbconv_fused_s8_get_buffer_size(const mf_mbconv_params *params, const mf_dims *input_dims,
                                           const mf_dims *output_dims);

/**
 * Fused inverted bottleneck computed row by row: for each output row, the expanded rows its depthwise window
 * newly reaches are computed into a ring in scratch (each expanded row once), then one depthwise row, then its
 * projection straight into the output. The expanded tensor (H x W x C_mid) is never materialised. Byte-identical,
 * in both requantization modes, to mf_conv2d_1x1_s8 -> mf_depthwise_conv2d_s8 -> mf_conv2d_1x1_s8.
 * Returns MF_UNSUPPORTED when a 1x1 stage has a stride other than 1 or padding.
 * @param input_dims   (H, W, C_in).
 * @param input        Format [H, W, C_in] (NHWC). Range [-128, 127].
 * @param output_dims  (H_out, W_out, C_out), H_out and W_out those of the depthwise convolution.
 * @param output       Format [H_out, W_out, C_out]. Range [project act_min, act_max]. Must not overlap input or
 *                     scratch.
 * @param scratch      mf_mbconv_fused_s8_get_buffer_size() bytes, not overlapping input or output.
 * @param scratch_bytes Its size; MF_ARG_ERROR when smaller than needed.
 */
mf_status mf_mbconv_fused_s8(const mf_mbconv_params *params, const mf_dims *input_dims, const int8_t *input,
                             const mf_dims *output_dims, int8_t *output, int8_t *scratch, int32_t scratch_bytes);

/** Largest grid multiplier of mf_anomaly_params (2^12). */
#define MF_ANOMALY_MAX_MULTIPLIER 4096
/** Most values one mf_anomaly_accumulate_s8 call takes (2^19). */
#define MF_ANOMALY_MAX_VALUES 524288

/**
 * Parameters of mf_anomaly_accumulate_s8: the input and output tensors' zero points, and their scales expressed on
 * a common grid g = max(input_scale, output_scale) / 2^12 as integers (multiplier = round(scale / g)), computed at
 * code-generation time (mcuforge/ir/anomaly.py, which is also the Python reference).
 */
typedef struct {
    int32_t input_zp;          /**< [-128, 127] */
    int32_t output_zp;         /**< [-128, 127] */
    int32_t input_multiplier;  /**< round(input_scale / g), [1, MF_ANOMALY_MAX_MULTIPLIER] */
    int32_t output_multiplier; /**< round(output_scale / g), [1, MF_ANOMALY_MAX_MULTIPLIER] */
} mf_anomaly_params;

/**
 * Anomaly score of an autoencoder: adds sum_i (d_i)^2 to *acc, with
 * d_i = (output[i] - output_zp) * output_multiplier - (input[i] - input_zp) * input_multiplier,
 * i.e. the reconstruction error on the grid g, exactly in integers (no rounding, so the host, QEMU and the Python
 * reference agree byte for byte). The mean squared error in real units is acc * g^2 / (number of values).
 * Each term is below 2^44, so one call of at most MF_ANOMALY_MAX_VALUES (2^19) values adds less than 2^63; a size
 * above that, or a total that would pass INT64_MAX, returns MF_UNSUPPORTED with *acc unchanged.
 * @param size   Values in input and output, [0, MF_ANOMALY_MAX_VALUES].
 * @param input  The network's int8 input (the features). Format [size]. Range [-128, 127].
 * @param output The network's int8 reconstruction. Format [size]. Range [-128, 127].
 * @param acc    Accumulator, >= 0 (MF_ARG_ERROR otherwise), read and written.
 */
mf_status mf_anomaly_accumulate_s8(const mf_anomaly_params *params, int32_t size, const int8_t *input,
                                   const int8_t *output, int64_t *acc);

#ifdef __cplusplus
}
#endif

#endif /* MCUFORGE_H */
