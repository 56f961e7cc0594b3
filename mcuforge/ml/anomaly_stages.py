"""The data, search, train and quantize stages of an anomaly detection pipeline (an `autoencoder:` section).

- data: machine_synth clips -> front end int8 features per split (anomaly_data.py).
- search: the fixed autoencoder, or every (width, bottleneck) of autoencoder.space that fits the board's SRAM and
  flash budgets (arena planner + constants, as the image search costs candidates), each trained for space.epochs on
  the training normals and scored by its validation AUC (mean over machine ids; validation holds only the anomaly
  kinds that are not held out). The best AUC wins (fewer MACs on a tie); the test split is never looked at.
- train: MSE on the normal training vectors, ONNX export (BatchNorm and standardisation folded).
- quantize: ONNX Runtime static int8 with the front end's scale and zero point imposed on the input; the anomaly
  score of every validation and test clip from ORT's fp32 and int8 outputs; the decision threshold from the int8
  validation normals (anomaly_metrics.threshold_for_fpr); AUC/pAUC per machine id and per kind, fp32 vs int8.
"""
from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np

from mcuforge.core.errors import McuforgeError
from mcuforge.core.io import read_json, write_json, write_text
from mcuforge.ir import anomaly
from mcuforge.ml import anomaly_data, anomaly_metrics, archgraph, autoencoder
from mcuforge.ml.train import INPUT_NAME

ARCH_KEYS = ("kind", "frames", "width", "depth", "bottleneck")


def run_data(cfg: dict, paths) -> dict:
    data = anomaly_data.build(cfg)
    source = cfg["resolved"]["dataset_path"] or "machine_synth (mcuforge/audio/machine_synth.py)"
    card = anomaly_data.write_cache(data, paths.data, source)
    return {split: card["counts"][split]["normal"] + card["counts"][split]["anomalous"] for split in anomaly_data.SPLITS}


def _vectors(data: anomaly_data.AnomalyData, split: str, frames: int) -> np.ndarray:
    """float32 [clips, vectors, frames * features] network inputs of a split."""
    return anomaly_data.dequantize(anomaly_data.vectors(data.x[split], frames), data.scale, data.zero_point)


def _normal_train(data: anomaly_data.AnomalyData, frames: int) -> np.ndarray:
    x = _vectors(data, "train", frames)[data.y["train"] == 0]
    return x.reshape(-1, x.shape[-1])


def _evaluate(data: anomaly_data.AnomalyData, split: str, scores: np.ndarray, threshold: float | None = None) -> dict:
    return anomaly_metrics.evaluate(scores, data.y[split], data.machine[split], data.kind[split], data.machine_ids,
                                    tuple(data.kinds), threshold)


def _torch_scores(net, data: anomaly_data.AnomalyData, split: str, frames: int) -> np.ndarray:
    x = _vectors(data, split, frames)
    out = autoencoder.reconstruct(net, x.reshape(-1, x.shape[-1])).reshape(x.shape)
    return autoencoder.clip_scores(x, out)


def run_search(cfg: dict, paths) -> dict:
    ae = cfg["autoencoder"]
    data = anomaly_data.read_cache(paths.data)
    features = data.x["train"].shape[2]
    fixed = {key: ae[key] for key in ARCH_KEYS}
    space = ae["space"]
    sram, flash = cfg["resolved"]["sram_budget_bytes"], cfg["resolved"]["flash_budget_bytes"]
    log = []
    if space is None:
        best = fixed
    else:
        x = _normal_train(data, ae["frames"])
        for width, bottleneck in itertools.product(space["widths"], space["bottlenecks"]):
            candidate = {**fixed, "width": width, "bottleneck": bottleneck}
            cost = autoencoder.cost(candidate, features)
            entry = {"width": width, "bottleneck": bottleneck, "macs": cost.macs, "peak_sram_bytes":
                     cost.peak_sram_bytes, "flash_bytes": cost.flash_bytes,
                     "fits": archgraph.fits(cost, sram, flash)}
            if entry["fits"]:
                net = autoencoder.train(candidate, x, cfg["train"], cfg["seed"], epochs=space["epochs"],
                                        progress=False)
                entry["val_auc"] = _evaluate(data, "val", _torch_scores(net, data, "val", ae["frames"]))[
                    "mean_over_ids"]["auc"]
            log.append(entry)
        scored = [e for e in log if "val_auc" in e]
        if not scored:
            raise McuforgeError(f"autoencoder.space: no (width, bottleneck) fits the budgets (SRAM {sram:,} B, flash "
                                f"{flash:,} B); smallest flash needed: {min(e['flash_bytes'] for e in log):,} B")
        winner = max(scored, key=lambda e: (round(e["val_auc"], 4), -e["macs"]))
        best = {**fixed, "width": winner["width"], "bottleneck": winner["bottleneck"]}
    cost = autoencoder.cost(best, features)
    arch = {**best, "features": features, "macs": cost.macs, "params": cost.params}
    write_json(paths.arch, arch)
    write_text(paths.arch.parent / "log.jsonl", "".join(json.dumps(e) + "\n" for e in log))
    return {"width": best["width"], "bottleneck": best["bottleneck"], "macs": cost.macs, "candidates": len(log)}


def run_train(cfg: dict, paths, progress: bool = True) -> dict:
    arch = read_json(paths.arch)
    ae = {key: arch[key] for key in ARCH_KEYS}
    data = anomaly_data.read_cache(paths.data)
    net = autoencoder.train(ae, _normal_train(data, ae["frames"]), cfg["train"], cfg["seed"], progress=progress)
    metrics = {split: _evaluate(data, split, _torch_scores(net, data, split, ae["frames"]))["mean_over_ids"]
               for split in ("val", "test")}
    autoencoder.export_onnx(net, paths.fp32)
    result = {"fp32_torch_auc": metrics, "macs": arch["macs"], "params": arch["params"],
              "train_vectors": int(len(_normal_train(data, ae["frames"])))}
    write_json(paths.train_metrics, result)
    return {"fp32_test_auc": round(metrics["test"]["auc"], 4)}


def _ort_outputs(model: Path, x: np.ndarray, kind: str, frames: int, batch: int = 4096) -> np.ndarray:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
    flat = x.reshape(-1, x.shape[-1])
    if kind == "conv":
        flat = flat.reshape(len(flat), 1, frames, -1)
    out = [session.run(None, {INPUT_NAME: flat[s:s + batch]})[0] for s in range(0, len(flat), batch)]
    return np.concatenate(out).reshape(x.shape)


def int8_scores(model: Path, data: anomaly_data.AnomalyData, split: str, arch: dict) -> tuple[np.ndarray, anomaly.Grid]:
    """Integer accumulators of every clip of a split from ORT's int8 output (its DequantizeLinear output mapped
    back to the int8 grid exactly) and the int8 features (the network's int8 input), and the score grid."""
    from mcuforge.frontends import load

    graph = load(model)
    src, dst = graph.tensors[graph.input], graph.tensors[graph.output]
    if abs(src.scale - data.scale) > 1e-12 * data.scale or src.zp != data.zero_point:
        raise McuforgeError(f"quantize: the model's input quantisation ({src.scale}, {src.zp}) is not the front "
                            f"end's ({data.scale}, {data.zero_point})")
    real = _ort_outputs(model, _vectors(data, split, arch["frames"]), arch["kind"], arch["frames"])
    q_out = np.clip(np.round(real / np.float32(dst.scale)) + dst.zp, -128, 127).astype(np.int8)
    q_in = anomaly_data.vectors(data.x[split], arch["frames"])
    params = anomaly.grid(src.scale, src.zp, dst.scale, dst.zp)
    return anomaly.accumulate(q_in, q_out, params), params


def run_quantize(cfg: dict, paths) -> dict:
    from mcuforge.ml.quantize import quantize, weight_bytes

    arch = read_json(paths.arch)
    data = anomaly_data.read_cache(paths.data)
    x = _normal_train(data, arch["frames"])
    count = min(cfg["quantize"]["calibration_samples"], len(x))
    calib = x[np.sort(np.random.default_rng(cfg["seed"]).permutation(len(x))[:count])]
    if arch["kind"] == "conv":
        calib = calib.reshape(len(calib), 1, arch["frames"], -1)
    quantize(paths.fp32, paths.int8, calib, cfg["quantize"]["granularity"], cfg["quantize"]["format"],
             float_inputs=True, input_quant=(data.scale, data.zero_point))
    values = anomaly_data.vectors(data.x["val"][:1], arch["frames"]).size
    val_acc, params = int8_scores(paths.int8, data, "val", arch)
    val_scores = anomaly.score(val_acc, values, params)
    threshold = anomaly_metrics.threshold_for_fpr(val_scores[data.y["val"] == 0], cfg["autoencoder"]["threshold_fpr"])
    test_acc, _ = int8_scores(paths.int8, data, "test", arch)
    threshold_acc = anomaly.threshold_acc(threshold, values, params)
    int8 = _evaluate(data, "test", anomaly.score(test_acc, values, params), threshold)
    int8["confusion_integer"] = {"anomalous_called": int((test_acc > threshold_acc).sum())}
    fp32, fp32_scores = {}, {}
    for split in ("val", "test"):
        v = _vectors(data, split, arch["frames"])
        fp32_scores[split] = autoencoder.clip_scores(v, _ort_outputs(paths.fp32, v, arch["kind"], arch["frames"]))
        fp32[split] = _evaluate(data, split, fp32_scores[split])
    write_json(paths.quant_metrics.parent / "scores.json", {
        "split": "test", "fp32": fp32_scores["test"].round(6).tolist(),
        "int8": anomaly.score(test_acc, values, params).round(6).tolist(), "int8_acc": test_acc.tolist(),
        "label": data.y["test"].tolist(), "machine": data.machine["test"].tolist(), "kind": data.kind["test"].tolist()})
    metrics = {
        "fp32_test": fp32["test"], "int8_test": int8,
        "int8_val_auc": _evaluate(data, "val", val_scores)["mean_over_ids"],
        "fp32_val_auc": fp32["val"]["mean_over_ids"],
        "int8_auc_drop": round(fp32["test"]["mean_over_ids"]["auc"] - int8["mean_over_ids"]["auc"], 6),
        "threshold": threshold, "threshold_rule": f"false-alarm rate {cfg['autoencoder']['threshold_fpr']} on the "
        "int8 validation normal clips", "threshold_acc": threshold_acc, "values_per_clip": int(values),
        "vectors_per_clip": int(values // (arch["frames"] * data.x["val"].shape[2])),
        "grid": {"grid": params.grid, "input_zp": params.input_zp, "output_zp": params.output_zp,
                 "input_multiplier": params.input_multiplier, "output_multiplier": params.output_multiplier},
        "calibration_samples": int(count), **weight_bytes(paths.int8),
    }
    write_json(paths.quant_metrics, metrics)
    return {"fp32_test_auc": round(fp32["test"]["mean_over_ids"]["auc"], 4),
            "int8_test_auc": round(int8["mean_over_ids"]["auc"], 4), "threshold": round(threshold, 4)}


def codegen_constants(cfg: dict, paths) -> dict:
    """What mf_model_anomaly_score needs: clip layout, score grid and integer threshold (quantize/metrics.json; for
    a ready model, deploy.model, from the model's scales, the front end and autoencoder.threshold)."""
    if cfg["deploy"]["model"]:
        return _ready_constants(cfg, paths)
    metrics = read_json(paths.quant_metrics)
    card = read_json(paths.card)
    frames_per_clip, features = card["shape"]
    return {"clip_bytes": frames_per_clip * features, "frame_bytes": features, "frames": cfg["autoencoder"]["frames"],
            "vectors_per_clip": metrics["vectors_per_clip"], "values_per_clip": metrics["values_per_clip"],
            "threshold_acc": metrics["threshold_acc"], "grid": metrics["grid"]}


def _ready_constants(cfg: dict, paths) -> dict:
    from mcuforge.frontends import load

    graph = load(paths.int8)
    src, dst = graph.tensors[graph.input], graph.tensors[graph.output]
    front = anomaly_data.frontend_model(cfg)
    frames = cfg["autoencoder"]["frames"]
    vectors = front.num_frames - frames + 1
    values = vectors * frames * front.num_features
    params = anomaly.grid(src.scale, src.zp, dst.scale, dst.zp)
    return {"clip_bytes": front.num_frames * front.num_features, "frame_bytes": front.num_features, "frames": frames,
            "vectors_per_clip": vectors, "values_per_clip": values,
            "threshold_acc": anomaly.threshold_acc(cfg["autoencoder"]["threshold"], values, params),
            "grid": {"grid": params.grid, "input_zp": params.input_zp, "output_zp": params.output_zp,
                     "input_multiplier": params.input_multiplier, "output_multiplier": params.output_multiplier}}


def ready_verify_clips(cfg: dict, graph) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A ready autoencoder (deploy.model, no data set): deploy.verify_samples machine_synth clips of one machine, half
    normal, half anomalous (every kind, severity 1, seed), through the Python front end at the model's input
    quantization: their int8 features, the model's int8 inputs of their windows, and their raw PCM."""
    from mcuforge.audio import features, machine_synth

    front = anomaly_data.frontend_model(cfg)
    count = cfg["deploy"]["verify_samples"]
    counts = {"train": (0, 0), "val": (0, 0), "test": ((count + 1) // 2, count // 2)}
    pcm = machine_synth.generate(["id_00"], counts, [], 1.0, cfg["seed"], front.sample_rate,
                                 front.clip_samples)["test"].pcm
    src = graph.tensors[graph.input]
    clips = features.extract(pcm, front, float(src.scale), int(src.zp))
    x = anomaly_data.vectors(clips, cfg["autoencoder"]["frames"])
    return clips, x.reshape((-1,) + tuple(src.shape)), pcm


def verify_clips(cfg: dict, paths) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """deploy.verify_samples test clips spread over the clips whose PCM the data stage kept (anomaly_data.pcm_pool:
    every machine id, normal and anomalous): their int8 features [clips, frames, features], the network's float
    inputs of their windows [clips x vectors, ...] and their raw PCM int16 [clips, samples] (the device's input)."""
    arch = read_json(paths.arch)
    data = anomaly_data.read_cache(paths.data)
    pool = np.asarray(read_json(paths.card)["pcm_test_clips"], dtype=np.int64)
    pcm = np.load(paths.pcm_test, allow_pickle=False)
    if len(pool) != len(pcm) or len(pool) == 0:
        raise McuforgeError(f"verify: {paths.pcm_test} holds {len(pcm)} clips, the card lists {len(pool)} "
                            "(rebuild the data: `doit forget data`)")
    chosen = np.unique(np.linspace(0, len(pool) - 1, min(cfg["deploy"]["verify_samples"], len(pool)))
                       .round().astype(int))
    clips = data.x["test"][pool[chosen]]
    x = anomaly_data.dequantize(anomaly_data.vectors(clips, arch["frames"]), data.scale, data.zero_point)
    x = x.reshape(-1, x.shape[-1])
    if arch["kind"] == "conv":
        x = x.reshape(len(x), 1, arch["frames"], -1)
    return clips, x, pcm[chosen]
