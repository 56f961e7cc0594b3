"""Verification of the audio front end chained in front of the network (mcuforge/codegen/chain.py).

The engine is fed raw int16 PCM clips; ONNX Runtime the features the Python reference computed from the same clips
(the pipeline's cached x = int8 features + 128). The front end's own bytes are checked directly: the layer-dump
build writes them as layer MF_MODEL_NUM_LAYERS (`layer_<n>.bin`), compared with the reference on every verify clip
on the host, and on the layer samples under QEMU. Its instructions are the first segment of the layer-dump run."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from mcuforge import toolchain
from mcuforge.core.errors import McuforgeError
from mcuforge.core.io import write_bytes
from mcuforge.ir.graph import Graph


def write_pcm(pcm: np.ndarray, path: Path) -> None:
    """Clips as the runner reads them: int16 little endian, one clip after the other."""
    write_bytes(path, np.ascontiguousarray(pcm, dtype="<i2").tobytes())


def reference_features(x: np.ndarray) -> np.ndarray:
    """The Python reference's int8 features from the cached uint8 input (u = q + 128)."""
    return (x.astype(np.int16) - 128).astype(np.int8).reshape(len(x), -1)


def _read(layer_dir: Path, graph: Graph, count: int) -> np.ndarray:
    path = layer_dir / f"layer_{len(graph.ops):03d}.bin"
    if not path.is_file():
        raise McuforgeError(f"verify: the engine wrote no front-end dump ({path.name}) in {layer_dir}")
    return np.fromfile(path, dtype=np.int8).reshape(count, -1)


def _compare(engine: np.ndarray, reference: np.ndarray) -> dict:
    differing = engine != reference
    return {"bytes": int(engine.size), "differing": int(differing.sum()),
            "samples_differing": int(differing.any(axis=1).sum())}


def host_features(graph: Graph, dump_build: Path, pcm: np.ndarray, x: np.ndarray, work: Path, timeout: float) -> dict:
    """Every clip through the host's layer-dump build: its front-end bytes vs the Python reference's."""
    inputs = work / "frontend_inputs.bin"
    write_pcm(pcm, inputs)
    layer_dir = work / "frontend_host"
    layer_dir.mkdir(parents=True, exist_ok=True)
    toolchain.run_host(dump_build, inputs, work / "frontend_host_out.bin", layer_dir, timeout=timeout)
    return _compare(_read(layer_dir, graph, len(pcm)), reference_features(x))


def dumped(graph: Graph, work: Path, x: np.ndarray, machine: str | None, counts: dict | None) -> dict:
    """The layer samples' front-end bytes under QEMU vs the reference, and the front end's instructions."""
    out: dict = {}
    if machine and (work / "layers_qemu").is_dir():
        out["qemu_vs_reference"] = _compare(_read(work / "layers_qemu", graph, len(x)), reference_features(x))
    if counts and "frontend" in counts:
        out["instructions"] = counts.pop("frontend")
    return out
