"""Post-training static int8 quantization with ONNX Runtime (QDQ format), and accuracy of fp32 vs int8."""
from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import numpy as np

from mcuforge.ml.data import Dataset, to_float_nchw
from mcuforge.core.io import atomic_path
from mcuforge.ml.train import INPUT_NAME


class _Calibration:
    """onnxruntime.quantization CalibrationDataReader over the first N training samples (one per batch)."""

    def __init__(self, x: np.ndarray, ready: bool = False):
        self._inputs = x if ready else to_float_nchw(x)
        self._index = 0

    def get_next(self):
        if self._index >= len(self._inputs):
            return None
        sample = self._inputs[self._index:self._index + 1]
        self._index += 1
        return {INPUT_NAME: sample}

    def rewind(self) -> None:
        self._index = 0


def calibration_samples(data: Dataset, count: int, seed: int) -> np.ndarray:
    """A seeded, class-mixed choice of `count` training images."""
    count = min(count, len(data.y_train))
    order = np.random.default_rng(seed).permutation(len(data.y_train))[:count]
    return data.x_train[np.sort(order)]


def quantize(fp32_path: Path, out_path: Path, calib_x: np.ndarray, granularity: str, fmt: str = "qoperator",
             float_inputs: bool = False, input_quant: tuple[float, int] | None = None) -> None:
    """Static quantization: int8 activations (asymmetric, MinMax calibration), int8 symmetric weights per channel or
    per tensor, int32 biases; Relu/Clip after a conv are absorbed into the conv's output range by ONNX Runtime.
    fmt: "qoperator" (QLinearConv, QLinearAdd, QGemm...) or "qdq". `float_inputs`: calib_x is already the network's
    float input (not uint8 images); `input_quant`: (scale, zero point) imposed on the graph input (e.g. the audio
    front end's, so its int8 features are the network's int8 input byte for byte)."""
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    extra = {"ActivationSymmetric": False, "WeightSymmetric": True}
    if input_quant is not None:
        extra["TensorQuantOverrides"] = {INPUT_NAME: [{"scale": np.array(input_quant[0], np.float32),
                                                       "zero_point": np.array(input_quant[1], np.int8)}]}
    logging.getLogger("root").setLevel(logging.ERROR)  # ORT warns that QOperator is slower on x64: we want it for exactness
    with tempfile.TemporaryDirectory(prefix="mf-quant-") as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(fp32_path), str(prepared), skip_symbolic_shape=True)
        with atomic_path(out_path) as target:
            quantize_static(
                str(prepared), str(target), _Calibration(calib_x, float_inputs),
                quant_format=QuantFormat.QOperator if fmt == "qoperator" else QuantFormat.QDQ,
                per_channel=granularity == "per_channel",
                activation_type=QuantType.QInt8,
                weight_type=QuantType.QInt8,
                calibrate_method=CalibrationMethod.MinMax,
                extra_options=extra,
            )
            model = onnx.load(str(target))
            onnx.checker.check_model(model)
            model.producer_version = ""
            onnx.save(model, str(target))


def ort_predictions(model_path: Path, x: np.ndarray, batch: int = 500) -> np.ndarray:
    """The class ONNX Runtime predicts for each sample (argmax of the logits)."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    predicted = [session.run(None, {INPUT_NAME: to_float_nchw(x[start:start + batch])})[0].argmax(1)
                 for start in range(0, len(x), batch)]
    return np.concatenate(predicted) if predicted else np.zeros(0, np.int64)


def ort_accuracy(model_path: Path, x: np.ndarray, y: np.ndarray, batch: int = 500) -> float:
    return float((ort_predictions(model_path, x, batch) == y).sum()) / max(1, len(y))


def confusion(y: np.ndarray, predicted: np.ndarray, num_classes: int) -> list[list[int]]:
    """counts[true][predicted]."""
    counts = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(counts, (y, predicted), 1)
    return counts.tolist()


def weight_bytes(model_path: Path) -> dict:
    """Bytes of int8 weights and int32 biases stored in the quantized model's initializers."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(model_path))
    sizes = {"int8_weights": 0, "int32_biases": 0}
    for init in model.graph.initializer:
        array = numpy_helper.to_array(init)
        if array.dtype == np.int8 and array.ndim > 1:
            sizes["int8_weights"] += array.nbytes
        elif array.dtype == np.int32:
            sizes["int32_biases"] += array.nbytes
    return sizes
