"""Anomaly models: the clip score computed by the engine (mf_model_anomaly_score) on the host and under QEMU,
against the Python reference (mcuforge/ir/anomaly.py) computed from ONNX Runtime's int8 output on the same bytes.

Each clip's record is 9 bytes: the int64 accumulator (little-endian) and the decision. Host and QEMU must agree on
every byte; the host's accumulator must equal the reference's and its decision the reference's acc > threshold_acc.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from mcuforge import toolchain
from mcuforge.core.io import write_bytes
from mcuforge.ir import anomaly
from mcuforge.ir.graph import Graph
from mcuforge.verify import onnx_reference as reference

RECORD = np.dtype([("acc", "<i8"), ("anomalous", "u1")])


def _records(path: Path) -> np.ndarray:
    return np.fromfile(path, dtype=RECORD)


def check(graph: Graph, model_path: Path, clips: np.ndarray, network_input: np.ndarray, constants: dict,
          builds: dict, machine: str | None, work: Path, timeout: float = 600) -> dict:
    """clips: int8 [N, frames, features] features; network_input: float32 [N * vectors, ...] the same windows as the
    network's float input. Returns the report section (counts and the instructions per clip)."""
    ref = reference.run(model_path, graph, network_input)
    vectors = constants["vectors_per_clip"]
    q_in = ref[graph.input].reshape(len(clips), vectors, -1)
    q_out = ref[graph.output].reshape(len(clips), vectors, -1)
    src, dst = graph.tensors[graph.input], graph.tensors[graph.output]
    params = anomaly.grid(src.scale, src.zp, dst.scale, dst.zp)
    expected = anomaly.accumulate(q_in, q_out, params)
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
        "reference_scores": anomaly.score(expected, constants["values_per_clip"], params).round(6).tolist(),
        "reference_decisions": expected_decision.tolist(),
    }
    if machine and "board" in builds:
        result = toolchain.run_qemu(builds["board"], machine, work / "clips.bin", work / "qemu_scores.bin",
                                    timeout=timeout, count_instructions=True, command="score")
        host_bytes = (work / "host_scores.bin").read_bytes()
        qemu_bytes = (work / "qemu_scores.bin").read_bytes()
        section["qemu_bytes_differing_vs_host"] = sum(a != b for a, b in zip(host_bytes, qemu_bytes)) + abs(
            len(host_bytes) - len(qemu_bytes))
        section["qemu_score_bytes"] = len(qemu_bytes)
        section["instructions_per_clip"] = round(sum(result.instructions) / len(result.instructions))
    return section


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
    if section.get("qemu_bytes_differing_vs_host"):
        found.append(f"anomaly score: QEMU's score bytes differ from the host's in "
                     f"{section['qemu_bytes_differing_vs_host']} bytes")
    return found
