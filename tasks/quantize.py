"""Task `quantize`: static int8 quantization with ONNX Runtime (mcuforge/ml/quantize.py), fp32 vs int8 accuracy."""
from __future__ import annotations

from mcuforge.core.io import write_json
from mcuforge.ml import anomaly_stages
from mcuforge.ml.data import read_for_arch
from mcuforge.ml.quantize import calibration_samples, confusion, ort_predictions, quantize, weight_bytes


def run(cfg: dict, paths) -> dict:
    """Stage `quantize`: `quantize/model_int8.onnx` and fp32 vs int8 test accuracy in `quantize/metrics.json`."""
    if cfg.get("autoencoder"):
        return anomaly_stages.run_quantize(cfg, paths)
    data = read_for_arch(paths)
    qcfg = cfg["quantize"]
    calib = calibration_samples(data, qcfg["calibration_samples"], cfg["seed"])
    quantize(paths.fp32, paths.int8, calib, qcfg["granularity"], qcfg["format"])
    fp32_predicted = ort_predictions(paths.fp32, data.x_test)
    int8_predicted = ort_predictions(paths.int8, data.x_test)
    fp32 = float((fp32_predicted == data.y_test).mean()) if len(data.y_test) else 0.0
    int8 = float((int8_predicted == data.y_test).mean()) if len(data.y_test) else 0.0
    metrics = {
        "fp32_test_accuracy": fp32,
        "int8_test_accuracy": int8,
        "int8_accuracy_drop": round(fp32 - int8, 6),
        "granularity": qcfg["granularity"],
        "format": qcfg["format"],
        "calibration_samples": int(len(calib)),
        "test_samples": int(len(data.y_test)),
        **weight_bytes(paths.int8),
        "classes": data.classes,
        "int8_confusion": confusion(data.y_test, int8_predicted, len(data.classes)),  # [true][predicted]
    }
    write_json(paths.quant_metrics, metrics)
    return metrics
