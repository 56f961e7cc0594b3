"""Task `train`: train the architecture on the cached data (mcuforge/ml/train.py), export train/model_fp32.onnx."""
from __future__ import annotations

from mcuforge.core.io import read_json, write_json
from mcuforge.ml import anomaly_stages
from mcuforge.ml.data import read_for_arch
from mcuforge.ml.train import OPSET, compare_with_torch, export_onnx, train
from schemas.arch import ArchSpec


def run(cfg: dict, paths, progress: bool = True) -> dict:
    """Stage `train`: train the arch on the cached data, export `train/model_fp32.onnx`, write `train/metrics.json`."""
    if cfg.get("autoencoder"):
        return anomaly_stages.run_train(cfg, paths, progress)
    spec = ArchSpec.model_validate(read_json(paths.arch))
    data = read_for_arch(paths)
    net, metrics = train(spec, data, cfg["train"], cfg["seed"], progress=progress)
    export_onnx(net, spec, paths.fp32)
    metrics["onnx_vs_torch_max_abs_diff"] = compare_with_torch(net, paths.fp32, data.x_test[:256])
    metrics["opset"] = OPSET
    write_json(paths.train_metrics, metrics)
    return metrics
