"""Quantization parameters for the C engine, and numpy references of its requantization arithmetic.

Codegen imports this module to turn ONNX scales into the constants the kernels take:

- float mode (``MF_REQUANT_FLOAT``): :func:`float_multiplier` gives the per-channel float32 scale in the
  exact order ONNX Runtime computes it, so that the engine reproduces ORT bit for bit.
- fixed mode (``MF_REQUANT_FIXED``): :func:`quantize_multiplier` gives TFLite's Q31 multiplier and shift;
  :func:`requantize_fixed` is the exact integer reference of ``mf_requantize_fixed``.

Everything here is plain Python/numpy and independent of the C code, so the tests use it as a reference.
"""

from __future__ import annotations

import math

import numpy as np

from mcuforge.core.errors import McuforgeError

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1
Q31_ONE = 2**31


def quantize_multiplier(real: float) -> tuple[int, int]:
    """TFLite's ``QuantizeMultiplier``: ``real ~= multiplier * 2**(shift - 31)``.

    ``multiplier`` is in ``[2**30, 2**31 - 1]`` (or 0 for ``real == 0`` and for values too small to
    represent, ``shift < -31``); ``shift`` is in ``[-31, 30]`` (values above are clamped to the largest
    representable multiplier, as TFLite does). The mantissa is rounded half away from zero.
    """
    real = float(real)
    if real < 0 or not math.isfinite(real):
        raise ValueError(f"quantize_multiplier needs a finite, non-negative real, got {real!r}")
    if real == 0.0:
        return 0, 0
    mantissa, shift = math.frexp(real)  # real = mantissa * 2**shift, mantissa in [0.5, 1)
    q_fixed = math.floor(mantissa * Q31_ONE + 0.5)  # exact in float64: mantissa has 53 bits
    if q_fixed == Q31_ONE:
        q_fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    if shift > 30:
        return INT32_MAX, 30
    return int(q_fixed), int(shift)


def float_multiplier(x_scale: float, w_scales, y_scale: float) -> np.ndarray:
    """Per-channel float32 requantization scale ``(x_scale * w_scale[c]) / y_scale``.

    Computed in float32, in the order ONNX Runtime's QLinearConv / QLinearMatMul / QGemm (alpha = 1) use.
    """
    x = np.float32(x_scale)
    w = np.atleast_1d(np.asarray(w_scales, dtype=np.float32))
    y = np.float32(y_scale)
    with np.errstate(over="ignore", under="ignore"):
        return ((x * w).astype(np.float32) / y).astype(np.float32)


def requantize_float(acc, scale, zp: int, qmin: int = -128, qmax: int = 127) -> np.ndarray:
    """numpy float32 reference of ``mf_requantize_float`` (and MLAS's MlasRequantizeOutput)."""
    acc = np.asarray(acc, dtype=np.int64).astype(np.int32)
    scale = np.asarray(scale, dtype=np.float32)
    with np.errstate(over="ignore", invalid="ignore"):
        v = acc.astype(np.float32) * scale
    v = np.minimum(np.maximum(v, np.float32(qmin - zp)), np.float32(qmax - zp))
    return np.rint(v).astype(np.int32) + np.int32(zp)  # np.rint: round half to even


def _floor_shift(x: np.ndarray, exponent) -> np.ndarray:
    return np.right_shift(x, exponent)  # numpy's >> on signed ints is a floor (arithmetic) shift


def saturating_rounding_doubling_high_mul(a, b) -> np.ndarray:
    """TFLite's SaturatingRoundingDoublingHighMul on int32 values (numpy, exact, int64 inside)."""
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    ab = a * b  # |ab| <= 2**62: fits
    nudge = np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    s = ab + nudge
    # C's truncating division by 2**31
    q = np.where(s >= 0, s >> 31, -((-s) >> 31))
    overflow = (a == INT32_MIN) & (b == INT32_MIN)
    return np.where(overflow, INT32_MAX, q).astype(np.int64)


def rounding_divide_by_pot(x, exponent) -> np.ndarray:
    """TFLite's RoundingDivideByPOT: x / 2**exponent rounded to nearest, ties away from zero."""
    x = np.asarray(x, dtype=np.int64)
    exponent = np.asarray(exponent, dtype=np.int64)
    mask = (np.int64(1) << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return _floor_shift(x, exponent) + (remainder > threshold)


def multiply_by_quantized_multiplier(x, multiplier, shift) -> np.ndarray:
    """Reference of ``mf_multiply_by_quantized_multiplier`` (left shift saturated to int32)."""
    x = np.asarray(x, dtype=np.int64)
    shift = np.asarray(shift, dtype=np.int64)
    left = np.maximum(shift, 0)
    right = np.maximum(-shift, 0)
    shifted = np.clip(x << left, INT32_MIN, INT32_MAX)
    return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(shifted, multiplier), right)


def requantize_fixed(acc, mult, shift, zp: int, qmin: int = -128, qmax: int = 127) -> np.ndarray:
    """Reference of ``mf_requantize_fixed``: clamp(MultiplyByQuantizedMultiplier(acc) + zp, qmin, qmax)."""
    v = multiply_by_quantized_multiplier(acc, mult, shift) + np.int64(zp)
    return np.clip(v, qmin, qmax).astype(np.int32)


def quantize_multipliers(reals) -> tuple[np.ndarray, np.ndarray]:
    """Vector form of :func:`quantize_multiplier`: int32 arrays (multipliers, shifts)."""
    pairs = [quantize_multiplier(float(r)) for r in np.atleast_1d(reals)]
    mult = np.array([p[0] for p in pairs], dtype=np.int32)
    shift = np.array([p[1] for p in pairs], dtype=np.int32)
    return mult, shift


def add_fixed_params(input1_scale: float, input2_scale: float, output_scale: float, left_shift: int = 20) -> dict:
    """Fixed-mode constants of ``mf_add_s8`` (TFLite's add: common scale 2 * max input scale)."""
    s1 = float(np.float32(input1_scale))
    s2 = float(np.float32(input2_scale))
    so = float(np.float32(output_scale))
    twice_max = 2.0 * max(s1, s2)
    params = {"left_shift": left_shift}
    for name, real in (
        ("input1", s1 / twice_max),
        ("input2", s2 / twice_max),
        ("output", twice_max / ((1 << left_shift) * so)),
    ):
        params[name] = quantize_multiplier(real)
    return params


def softmax_exp_table(x_scale: float, depth: int) -> np.ndarray:
    """The 256-entry float32 table of ``mf_softmax_s8``, built like ONNX Runtime's QLinearSoftmax.

    Entry ``i`` is ``exp((i - 255 + bit_shift) * x_scale)`` for ``i = x - max(x) + 255``, with
    ``bit_shift = max(0, log(FLT_MAX / depth) - 5) / x_scale`` (double precision, like ORT).
    """
    xs = float(np.float32(x_scale))
    flt_max_over_depth = np.float32(np.finfo(np.float32).max) / np.float32(depth)
    bit_shift = max(0.0, math.log(float(flt_max_over_depth)) - 5.0) / xs
    table = [math.exp(((i - 255) + bit_shift) * xs) for i in range(256)]
    return np.array(table, dtype=np.float64).astype(np.float32)


def softmax_output_scale_recip(y_scale: float) -> np.float32:
    """``floor(1 / y_scale)`` in float32, as ONNX Runtime's QLinearSoftmax computes it."""
    return np.float32(math.floor(np.float32(1.0) / np.float32(y_scale)))


def softmax_reference(x, x_scale: float, y_scale: float, y_zp: int) -> np.ndarray:
    """numpy float32 model of ``mf_softmax_s8`` along the last axis (exact, documents its arithmetic)."""
    x = np.asarray(x, dtype=np.int8)
    table = softmax_exp_table(x_scale, x.shape[-1])
    recip = softmax_output_scale_recip(y_scale)
    e = table[x.astype(np.int32) - x.max(axis=-1, keepdims=True).astype(np.int32) + 255]
    total = np.zeros(x.shape[:-1], np.float32)
    for i in range(x.shape[-1]):  # float32 sum in index order
        total = (total + e[..., i]).astype(np.float32)
    scale = ((np.float32(1.0) / total).astype(np.float32) * recip).astype(np.float32)
    v = (e * scale[..., None]).astype(np.float32) + np.float32(y_zp)
    return np.clip(np.rint(v), -128, 127).astype(np.int8)


# ---------------------------------------------------------------- TFLite's parameter maths (imported .tflite models)

def quantize_multiplier_tflite(real: float) -> tuple[int, int]:
    """TFLite's QuantizeMultiplier without the engine's clamp of shift > 30 (softmax multipliers reach 2^31)."""
    if real == 0.0:
        return 0, 0
    mantissa, shift = math.frexp(real)
    q_fixed = round(mantissa * (1 << 31))  # std::round: half away from zero (mantissa > 0)
    if q_fixed == (1 << 31):
        q_fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    return int(q_fixed), int(shift)


def mean_params(input_scale: float, output_scale: float, count: int) -> dict:
    """TFLite's integer quantized mean (reference QuantizedMeanOrSum, which the tflite-micro interpreter runs):
    QuantizeMultiplier(input_scale / output_scale) in double, then the division by the count folded in:
    s = min(floor(log2(count)), 32, 31 + shift), multiplier = (multiplier << s) // count, shift -= s.
    {multiplier, shift}: out = MultiplyByQuantizedMultiplier(sum - input_zp * count, multiplier, shift) + zp."""
    real = float(np.float32(input_scale)) / float(np.float32(output_scale))
    multiplier, shift = quantize_multiplier_tflite(real)
    if shift > 30:
        raise McuforgeError(f"mean: input scale {input_scale} / output scale {output_scale} is too large")
    folded = min(count.bit_length() - 1, 32, 31 + shift)
    return {"multiplier": (multiplier << folded) // count, "shift": shift - folded}


def softmax_params(input_scale: float, beta: float = 1.0) -> dict:
    """TFLite Micro's CalculateSoftmaxParams for int8 -> int8 (PreprocessSoftmaxScaling with 5 integer bits and
    CalculateInputRadius): {input_multiplier, input_left_shift, diff_min}."""
    integer_bits = 5
    real = min(float(np.float32(beta)) * float(np.float32(input_scale)) * (1 << (31 - integer_bits)),
               float((1 << 31) - 1))
    multiplier, left_shift = quantize_multiplier_tflite(real)
    if left_shift < 0:
        raise McuforgeError(f"softmax: input scale {input_scale} x beta {beta} is too small for TFLite's softmax")
    radius = math.floor(((1 << integer_bits) - 1) * (1 << (31 - integer_bits)) / (1 << left_shift))
    return {"input_multiplier": multiplier, "input_left_shift": left_shift, "diff_min": -int(radius)}


def activation_range_tflite(code: int, scale: float, zp: int) -> tuple[int, int]:
    """TFLite's CalculateActivationRangeQuantized: the int8 clamp of fused activation `code` (0 NONE, 1 RELU,
    2 RELU_N1_TO_1, 3 RELU6) on an output of `scale` and `zp`: zp + round(f / scale) in float32, rounded half away
    from zero."""
    def quantize(value: float) -> int:
        q = float(np.float32(value) / np.float32(scale))
        return zp + int(math.floor(abs(q) + 0.5)) * (1 if q >= 0 else -1)

    if code == 0:  # NONE
        return -128, 127
    if code == 1:  # RELU
        return max(-128, quantize(0.0)), 127
    if code == 2:  # RELU_N1_TO_1
        return max(-128, quantize(-1.0)), min(127, quantize(1.0))
    if code == 3:  # RELU6
        return max(-128, quantize(0.0)), min(127, quantize(6.0))
    raise ValueError(code)
