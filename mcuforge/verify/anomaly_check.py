"""Anomaly models: the clip score computed by the engine (mf_model_anomaly_score) on the host and under QEMU,
against the Python reference (mcuforge/ir/anomaly.py) computed from ONNX Runtime's int8 output on the same bytes.

Each clip's record is 9 bytes: the int64 accumulator (little-endian) and the decision. Host and QEMU must agree on
every byte; the host's accumulator must equal the reference's and its decision the reference's acc > threshold_acc.

With the front end on the device (pcm given), the engine is fed the clips' raw PCM (`score_pcm`,
mf_model_anomaly_score_pcm): its scores must equal the same reference (computed from ORT's output on the features the
Python front end gave), on the host and under QEMU; the front end's bytes (the layer-dump build's
layer_<num_layers>.bin) must equal the Python reference's features on every clip on the host and on the layer
samples under QEMU, whose first instruction-count segment is the front end's instructions per clip.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from mcuforge import toolchain
from mcuforge.core.errors import McuforgeError
from mcuforge.core.io import write_bytes
from mcuforge.ir import anomaly
from mcuforge.ir.graph import Graph
from mcuforge.verify import frontend_check
from mcuforge.verify import onnx_reference as reference
from mcuforge.verify import tflm_reference

RECORD = np.dtype([("acc", "<i8"), ("anomalous", "u1")])


def _records(path: Path) -> np.ndarray:
    return np.fromfile(path, dtype=RECORD)


def check(graph: Graph, model_path: Path, clips: np.ndarray, network_input: np.ndarray, constants: dict,
          builds: dict, machine: str | None, work: Path, timeout: float = 600, pcm: np.ndarray | None = None,
          layer_samples: int = 1, engine_output: np.ndarray | None = None) -> tuple[dict, dict | None]:
    """clips: int8 [N, frames, features] features; network_input: float32 [N * vectors, ...] the same windows as the
    network's float input (int8 engine inputs for a .tflite model, whose reference is TFLite Micro); pcm: int16
    [N, samples] the clips' raw sound (the front end on the device) or None. engine_output: with fixed
    requantization of an ONNX model (within 1 LSB of ONNX Runtime per layer, by design), the host engine's network
    output for those windows: the score's arithmetic is then checked exactly on it, and its distance to the score
    of ONNX Runtime's output is reported. Returns the report's score section (counts and the instructions per clip)
    and its front-end section (None without pcm)."""
    ref = (tflm_reference if graph.format == "tflite" else reference).run(model_path, graph, network_input)
    vectors = constants["vectors_per_clip"]
    q_in = ref[graph.input].reshape(len(clips), vectors, -1)
    q_out = ref[graph.output].reshape(len(clips), vectors, -1)
    src, dst = graph.tensors[graph.input], graph.tensors[graph.output]
    params = anomaly.grid(src.scale, src.zp, dst.scale, dst.zp)
    expected = anomaly.accumulate(q_in, q_out, params)
    vs_reference = None
    if engine_output is not None:
        from_reference = expected
        expected = anomaly.accumulate(q_in, engine_output.reshape(q_out.shape), params)
        vs_reference = {"max_relative_difference": float(np.max(np.abs(expected - from_reference)
                                                                 / np.maximum(from_reference, 1))),
                        "decisions_differing": int(((expected > constants["threshold_acc"])
                                                    != (from_reference > constants["threshold_acc"])).sum())}
    expected_decision = (expected > constants["threshold_acc"]).astype(np.uint8)
    window = np.arange(vectors)[:, None] + np.arange(constants["frames"])[None, :]
    features_match = bool(np.array_equal(clips[:, window, :].reshape(q_in.shape), q_in))
    write_bytes(work / "clips.bin", np.ascontiguousarray(clips, dtype=np.int8).tobytes())
    toolchain.run_host(builds["host"], work / "clips.bin", work / "host_scores.bin", timeout=timeout, command="score")
    host = _records(work / "host_scores.bin")
    section = {
        "clips": int(len(clips)), "vectors_per_clip": int(vectors), "threshold_acc": int(constants["threshold_acc"]),
        "grid": constants["grid"],
        "features_equal_ort_input": features_match,
        "host_acc_equal_reference": int((host["acc"] == expected).sum()),
        "host_decision_equal_reference": int((host["anomalous"] == expected_decision).sum()),
        "reference": ("the host engine's network output (fixed requantization)" if vs_reference else
                      "TFLite Micro's output" if graph.format == "tflite" else "ONNX Runtime's output"),
        **({"fixed_vs_onnxruntime": vs_reference} if vs_reference else {}),
        "reference_scores": anomaly.score(expected, constants["values_per_clip"], params).round(6).tolist(),
        "reference_decisions": expected_decision.tolist(),
    }
    frontend = None
    if pcm is not None:
        frontend = _pcm_checks(graph, clips, pcm, expected, expected_decision, builds, machine, work, timeout,
                               layer_samples, section)
    if machine and "board" in builds:
        source, name = ("pcm_clips.bin", "score_pcm") if pcm is not None else ("clips.bin", "score")
        result = toolchain.run_qemu(builds["board"], machine, work / source, work / "qemu_scores.bin",
                                    timeout=timeout, count_instructions=True, command=name)
        host_bytes = (work / ("host_pcm_scores.bin" if pcm is not None else "host_scores.bin")).read_bytes()
        qemu_bytes = (work / "qemu_scores.bin").read_bytes()
        section["qemu_bytes_differing_vs_host"] = sum(a != b for a, b in zip(host_bytes, qemu_bytes)) + abs(
            len(host_bytes) - len(qemu_bytes))
        section["qemu_score_bytes"] = len(qemu_bytes)
        section["instructions_per_clip"] = round(sum(result.instructions) / len(result.instructions))
        section["qemu_input"] = "pcm" if pcm is not None else "features"
    return section, frontend


def _compare(engine: np.ndarray, reference: np.ndarray) -> dict:
    differing = engine != reference
    return {"bytes": int(engine.size), "differing": int(differing.sum()),
            "samples_differing": int(differing.any(axis=1).sum())}


def _dumped_features(layer_dir: Path, graph: Graph, count: int) -> np.ndarray:
    path = layer_dir / f"layer_{len(graph.ops):03d}.bin"
    if not path.is_file():
        raise McuforgeError(f"verify: the engine wrote no front-end dump ({path.name}) in {layer_dir}")
    return np.fromfile(path, dtype=np.int8).reshape(count, -1)


def _pcm_checks(graph: Graph, clips: np.ndarray, pcm: np.ndarray, expected: np.ndarray, expected_decision: np.ndarray,
                builds: dict, machine: str | None, work: Path, timeout: float, layer_samples: int,
                section: dict) -> dict:
    """The PCM path on the host (scores, and the front end's bytes of every clip) and the front end's bytes and
    instructions on the layer samples under QEMU; the host's scores are added to `section`."""
    reference = clips.reshape(len(clips), -1)
    frontend_check.write_pcm(pcm, work / "pcm_clips.bin")
    toolchain.run_host(builds["host"], work / "pcm_clips.bin", work / "host_pcm_scores.bin", timeout=timeout,
                       command="score_pcm")
    host = _records(work / "host_pcm_scores.bin")
    section["pcm_clips"] = int(len(pcm))
    section["host_pcm_acc_equal_reference"] = int((host["acc"] == expected).sum())
    section["host_pcm_decision_equal_reference"] = int((host["anomalous"] == expected_decision).sum())
    toolchain.run_host(builds["host_dump"], work / "pcm_clips.bin", work / "host_pcm_dump_scores.bin",
                       work / "frontend_host", timeout=timeout, command="score_pcm")
    frontend = {"host_vs_reference": _compare(_dumped_features(work / "frontend_host", graph, len(pcm)), reference)}
    count = max(1, min(layer_samples, len(pcm)))
    if machine and "board_dump" in builds:
        frontend_check.write_pcm(pcm[:count], work / "pcm_layer_clips.bin")
        result = toolchain.run_qemu(builds["board_dump"], machine, work / "pcm_layer_clips.bin",
                                    work / "qemu_pcm_dump_scores.bin", work / "frontend_qemu", timeout=timeout,
                                    count_instructions=True, command="score_pcm")
        frontend["qemu_vs_reference"] = _compare(_dumped_features(work / "frontend_qemu", graph, count),
                                                 reference[:count])
        if result.layer_instructions:  # the first segment of each clip: the front end, up to its dump
            frontend["instructions"] = round(sum(s[0] for s in result.layer_instructions) / count)
    return frontend


def problems(section: dict) -> list[str]:
    found = []
    clips = section["clips"]
    if not section["features_equal_ort_input"]:
        found.append("anomaly score: the clip features are not ONNX Runtime's int8 network input (input quantisation "
                     "differs from the front end's)")
    if section["host_acc_equal_reference"] != clips or section["host_decision_equal_reference"] != clips:
        found.append(f"anomaly score: the host engine's score equals the reference from ONNX Runtime's output on "
                     f"{section['host_acc_equal_reference']} of {clips} clips (decision on "
                     f"{section['host_decision_equal_reference']})")
    if "pcm_clips" in section and (section["host_pcm_acc_equal_reference"] != section["pcm_clips"]
                                   or section["host_pcm_decision_equal_reference"] != section["pcm_clips"]):
        found.append(f"anomaly score from raw PCM (front end on the device): the host engine's score equals the "
                     f"reference from ONNX Runtime's output on {section['host_pcm_acc_equal_reference']} of "
                     f"{section['pcm_clips']} clips (decision on {section['host_pcm_decision_equal_reference']})")
    if section.get("qemu_bytes_differing_vs_host"):
        found.append(f"anomaly score: QEMU's score bytes differ from the host's in "
                     f"{section['qemu_bytes_differing_vs_host']} bytes")
    return found
