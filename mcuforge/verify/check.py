"""Stage `verify`: ONNX Runtime vs the host engine vs the engine under QEMU, byte for byte, per sample and per layer.

Float requantization must match ONNX Runtime exactly; fixed requantization (integer multiplier + shift) must stay
within FIXED_TOLERANCE_LSB of it on every output value, and the count of differing values is reported. The host
build and the QEMU build must always produce identical bytes.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from mcuforge.toolchain import budget
from mcuforge.verify import frontend_check
from mcuforge.verify import onnx_reference as reference
from mcuforge.verify import tflm_reference
from mcuforge import toolchain
from mcuforge.core.errors import McuforgeError
from mcuforge.ir.graph import Graph
from mcuforge.core.io import write_bytes

FIXED_TOLERANCE_LSB = 1
COMPOUND_KINDS = ("patch_stage", "mbconv_fused")  # schedule/rewrite.py


def _reference(graph: Graph):
    """ONNX Runtime for ONNX models; TFLite Micro's interpreter for imported .tflite models."""
    return tflm_reference if graph.format == "tflite" else reference


def model_inputs(graph: Graph, count: int, seed: int) -> np.ndarray:
    """Random inputs for a pipeline given a ready model (deploy.model, no dataset): int8 engine inputs for .tflite
    models, uint8 NHWC images (the ONNX reference quantizes them itself) for ONNX models."""
    rng = np.random.default_rng(seed)
    shape = (count,) + tuple(graph.tensors[graph.input].shape)
    if graph.format == "tflite":
        return rng.integers(-128, 128, size=shape, dtype=np.int8)
    return rng.integers(0, 256, size=shape, dtype=np.uint8)


def compare(a: np.ndarray, b: np.ndarray) -> dict:
    """Counts of differing int8 values between two arrays of the same shape."""
    diff = np.abs(a.astype(np.int16) - b.astype(np.int16))
    per_sample = diff.reshape(len(diff), -1).max(axis=1) if diff.size else np.zeros(0)
    return {
        "values": int(diff.size),
        "differing": int((diff > 0).sum()),
        "max_abs_diff": int(diff.max()) if diff.size else 0,
        "differing_samples": int((per_sample > 0).sum()),
        "off_by_one": int((diff == 1).sum()),
    }


def write_vectors(arrays: dict[str, np.ndarray], out_dir: Path) -> None:
    for name, array in arrays.items():
        write_bytes(out_dir / name, np.ascontiguousarray(array, dtype=np.int8).tobytes())


def read_outputs(path: Path, count: int, shape: tuple) -> np.ndarray:
    raw = np.fromfile(path, dtype=np.int8)
    return raw.reshape((count,) + tuple(shape))


def read_layers(layer_dir: Path, graph: Graph, count: int) -> list[np.ndarray]:
    out = []
    for index, op in enumerate(graph.ops):
        path = layer_dir / f"layer_{index:03d}.bin"
        if not path.is_file():
            raise McuforgeError(f"verify: the engine wrote no dump for layer {index} ({op.name}) in {layer_dir}")
        out.append(read_outputs(path, count, graph.tensors[op.output].shape))
    return out


def _onnx_order(graph: Graph, op, array: np.ndarray) -> np.ndarray:
    """A view that flattens a spatial NHWC tensor holds its bytes in NHWC order; ONNX flattens NCHW. Reorder the
    engine's bytes the ONNX way so both sides compare value for value (the engine permutes the consuming fully
    connected layer's weights instead of moving data)."""
    if op.kind != "view" or graph.format == "tflite":  # TFLite flattens NHWC, like the engine
        return array
    src = graph.tensors[op.inputs[0]]
    if len(src.shape) != 3 or src.shape[0] * src.shape[1] == 1:
        return array
    n = len(array)
    return array.reshape((n,) + src.shape).transpose(0, 3, 1, 2).reshape(array.shape)


def first_bad_layer(layer_results: list[dict], key: str, tolerance: int) -> dict | None:
    for layer in layer_results:
        if layer[key]["max_abs_diff"] > tolerance:
            return layer
    return None


def run_checks(graph: Graph, model_path: Path, x: np.ndarray, y: np.ndarray, layer_samples: int,
               requant: str, builds: dict, machine: str | None, work: Path, timeout: float = 600,
               pcm: np.ndarray | None = None) -> dict:
    """Run everything; return the report (reproducible: counts only) and the wall times (not reproducible).
    Raises nothing on mismatch: see `judge`. pcm: for a model with an audio front end, the raw int16 clips whose
    features are `x` (the engine is fed the clips; the reference the features: mcuforge/verify/frontend_check.py)."""
    ref = _reference(graph).run(model_path, graph, x)
    tflite = graph.format == "tflite"  # TFLite Micro's integer kernels are reproduced exactly: no tolerance
    tolerance = 0 if requant == "float" or tflite else FIXED_TOLERANCE_LSB
    shape = graph.tensors[graph.output].shape
    inputs = work / "inputs.bin"
    write_vectors({"inputs.bin": ref[graph.input], "ort_outputs.bin": ref[graph.output]}, work)
    if pcm is not None:
        frontend_check.write_pcm(pcm, inputs)
    report: dict = {"requant": requant, "tolerance_lsb": tolerance, "samples": int(len(x)),
                    "reference": "tflite-micro" if tflite else "onnxruntime",
                    "ort_accuracy": None if y is None else float((ref["logits"].argmax(1) == y).mean())}
    if tflite:  # what TFLite Micro itself needs for this model, beside our arena and flash in the review
        arena = tflm_reference.arena(model_path)
        report["tflm_arena"] = {key: arena[key] for key in ("total", "head", "tail")}
        report["model_file_bytes"] = Path(model_path).stat().st_size

    def accuracy(outputs: np.ndarray) -> float | None:
        if y is None:  # random inputs (deploy.model): no labels
            return None
        return float((outputs.reshape(len(outputs), -1).argmax(1) == y).mean())

    started = time.perf_counter()
    toolchain.run_host(builds["host"], inputs, work / "host_outputs.bin", timeout=timeout)
    host = read_outputs(work / "host_outputs.bin", len(x), shape)
    report["host"] = {"vs_ort": compare(host, ref[graph.output]), "accuracy": accuracy(host)}
    timing = {"host_seconds": round(time.perf_counter() - started, 3)}
    if pcm is not None:  # the front end's bytes on every clip: host (dump build) == the Python reference
        report["frontend"] = {"host_vs_reference": frontend_check.host_features(graph, builds["host_dump"], pcm, x,
                                                                                 work, timeout)}
    qemu = None
    whole = None
    if machine and "board" in builds:
        result = toolchain.run_qemu(builds["board"], machine, inputs, work / "qemu_outputs.bin", timeout=timeout,
                                    count_instructions=True)
        qemu = read_outputs(work / "qemu_outputs.bin", len(x), shape)
        timing["qemu_seconds_per_sample"] = round(result.seconds / len(x), 4)
        report["qemu"] = {
            "machine": machine,
            "vs_ort": compare(qemu, ref[graph.output]),
            "vs_host": compare(qemu, host),
            "accuracy": accuracy(qemu),
            "instructions_per_inference": result.instructions_per_inference,
            "instructions_min_max": [min(result.instructions), max(result.instructions)],
            "stack_measured_bytes": result.stack_bytes,  # stack painting: whole run, and the inferences alone
            "inference_stack_measured_bytes": result.inference_stack_bytes,
        }
        whole = result.instructions[:layer_samples]
    if layer_samples:
        report["layers"], layer_instructions = _layer_checks(graph, model_path, x[:layer_samples], builds, machine,
                                                             work, timeout, whole,
                                                             None if pcm is None else pcm[:layer_samples])
        if pcm is not None:
            report["frontend"].update(frontend_check.dumped(graph, work, x[:layer_samples], machine, layer_instructions))
        if layer_instructions is not None:
            report["layer_instructions"] = layer_instructions
    return report, timing


def layer_instruction_summary(layers: list[list[int]], tails: list[int], whole: list[int] | None) -> dict:
    """Per-layer instruction counts of the layer-dump build (one list per sample) checked against the normal
    build's whole-inference counts of the same samples.

    A layer's count runs from the previous layer's dump (or the inference's start) to the call of its own dump:
    its kernel call with the argument setup; the dump's file I/O is not counted. Per layer the dump build still
    executes a few instructions the normal build does not (the dump call's arguments and the return path from
    mf_layer_dump), so `difference` = mean over samples of (sum of the layers + tail - whole inference) is small and
    positive: a few instructions per layer (`difference_per_layer`)."""
    samples = len(layers)
    summary = {
        "statistic": "mean over the layer samples",
        "samples": samples,
        "per_layer": [round(sum(sample[i] for sample in layers) / samples) for i in range(len(layers[0]))],
        "layers_sum": round(sum(sum(sample) for sample in layers) / samples),
        "tail": round(sum(tails) / samples),
        "whole_inference": None,
        "difference": None,
        "difference_per_layer": None,
    }
    if whole:
        difference = sum(sum(sample) + tail - count for sample, tail, count in zip(layers, tails, whole)) / samples
        summary["whole_inference"] = round(sum(whole) / samples)
        summary["difference"] = round(difference)
        summary["difference_per_layer"] = round(difference / len(layers[0]), 2)
    return summary


def _layer_checks(graph: Graph, model_path: Path, x: np.ndarray, builds: dict, machine: str | None, work: Path,
                  timeout: float, whole: list[int] | None = None,
                  pcm: np.ndarray | None = None) -> tuple[list[dict], dict | None]:
    """Every layer's output compared (host vs reference, QEMU vs host) and, under QEMU, every layer's instruction
    count (layer_instruction_summary); whole: the normal build's instructions of the same samples, or None."""
    ref = _reference(graph).run(model_path, graph, x, layers=True)
    inputs = work / "layer_inputs.bin"
    write_vectors({"layer_inputs.bin": ref[graph.input]}, work)
    if pcm is not None:
        frontend_check.write_pcm(pcm, inputs)
    segments = len(graph.ops) + (pcm is not None)  # the front end's dump is a segment of its own, the first
    toolchain.run_host(builds["host_dump"], inputs, work / "layer_host_out.bin", work / "layers_host", timeout=timeout)
    host = read_layers(work / "layers_host", graph, len(x))
    qemu = None
    counts = None
    if machine and "board_dump" in builds:
        result = toolchain.run_qemu(builds["board_dump"], machine, inputs, work / "layer_qemu_out.bin",
                                    work / "layers_qemu", timeout=timeout, count_instructions=True)
        qemu = read_layers(work / "layers_qemu", graph, len(x))
        if result.layer_instructions is None or any(len(sample) != segments
                                                    for sample in result.layer_instructions):
            found = None if result.layer_instructions is None else [len(s) for s in result.layer_instructions]
            raise McuforgeError(f"verify: the layer-dump ELF {builds['board_dump']} gave per-layer instruction "
                                f"counts for {found} layers per sample, not {segments}")
        per_sample = result.layer_instructions
        if pcm is not None:
            frontend_counts = [sample[0] for sample in per_sample]
            per_sample = [sample[1:] for sample in per_sample]
            whole = None if whole is None else [w - f for w, f in zip(whole, frontend_counts)]
        counts = layer_instruction_summary(per_sample, result.layer_tail_instructions, whole)
        if pcm is not None:
            counts["frontend"] = round(sum(frontend_counts) / len(frontend_counts))
        per_layer = counts.pop("per_layer")
    host = [_onnx_order(graph, op, array) for op, array in zip(graph.ops, host)]
    if qemu is not None:
        qemu = [_onnx_order(graph, op, array) for op, array in zip(graph.ops, qemu)]
    engine_tensors = {graph.input: ref[graph.input]}
    engine_tensors.update({op.output: host[index] for index, op in enumerate(graph.ops)})
    layers = []
    for index, op in enumerate(graph.ops):
        entry = {"index": index, "name": op.name, "kind": op.kind, "tensor": op.output,
                 "bytes": graph.tensors[op.output].bytes, "host_vs_ort": compare(host[index], ref[op.output])}
        if len(op.nodes) > 1 and op.kind in COMPOUND_KINDS:
            entry["inner_layers"] = len(op.nodes)
        if op.kind != "view" and graph.format != "tflite":  # TFLM: per layer from the same inference already
            # the op alone in ORT, fed the engine's own input tensors: isolates this kernel's arithmetic
            alone = reference.run_layer(model_path, graph, op, engine_tensors)
            entry["host_vs_ort_isolated"] = compare(host[index], alone.reshape(host[index].shape))
        if qemu is not None:
            entry["qemu_vs_host"] = compare(qemu[index], host[index])
        if counts is not None:
            entry["instructions"] = per_layer[index]  # mean over the layer samples
        layers.append(entry)
    return layers, counts


def judge(report: dict) -> list[str]:
    """The reasons the verification fails (empty when it passes).

    The `*_ort` keys compare with the reference: ONNX Runtime, or TFLite Micro for .tflite models (`reference`).
    float, and every .tflite model: every output byte equals the reference's, and every layer's.
    fixed (ONNX models): every layer, fed the engine's own
    inputs, is within FIXED_TOLERANCE_LSB of ONNX Runtime's op (rounding differs by design); end to end the
    differences compound through the layers, so there they are counted and reported, not bounded.
    Both: the QEMU build's bytes equal the host build's.
    """
    problems = []
    tolerance = report["tolerance_lsb"]
    layers = report.get("layers", [])
    # a compound op (patch stage, fused block) alone is several layers in ONNX Runtime: exact in float mode;
    # in fixed mode its layers' roundings compound like end to end, so it is reported, not bounded
    judged = [layer for layer in layers if "host_vs_ort_isolated" in layer
              and not (tolerance and layer.get("inner_layers"))]
    bad = first_bad_layer(judged, "host_vs_ort_isolated", tolerance)
    if bad is not None:
        stats = bad["host_vs_ort_isolated"]
        problems.append(f"layer {bad['index']} ({bad['kind']} '{bad['name']}') alone differs from ONNX Runtime's op: "
                        f"{stats['differing']} values, max |diff| {stats['max_abs_diff']} > {tolerance} LSB")
    exact = report["requant"] == "float" or report.get("reference") == "tflite-micro"
    if exact and report["host"]["vs_ort"]["max_abs_diff"] > tolerance:
        bad = first_bad_layer(layers, "host_vs_ort", tolerance)
        where = f"; first differing layer {bad['index']} ({bad['kind']} '{bad['name']}')" if bad else ""
        name = "TFLite Micro" if report.get("reference") == "tflite-micro" else "ONNX Runtime"
        problems.append(f"host engine differs from {name}: {report['host']['vs_ort']['differing']} values, "
                        f"max |diff| {report['host']['vs_ort']['max_abs_diff']} > {tolerance} LSB{where}")
    if "qemu" in report and report["qemu"]["vs_host"]["differing"]:
        bad = first_bad_layer(layers, "qemu_vs_host", 0) if layers and "qemu_vs_host" in layers[0] else None
        where = f"; first differing layer {bad['index']} ({bad['kind']} '{bad['name']}')" if bad else ""
        problems.append(f"QEMU output differs from the host engine in {report['qemu']['vs_host']['differing']} "
                        f"values{where}")
    for key, who in (("host_vs_reference", "host"), ("qemu_vs_reference", "QEMU")):
        stats = report.get("frontend", {}).get(key)
        if stats and stats["differing"]:
            problems.append(f"audio front end ({who}) differs from its Python reference in {stats['differing']} of "
                            f"{stats['bytes']} feature bytes ({stats['samples_differing']} clips)")
    return problems
