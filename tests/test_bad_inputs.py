"""A corpus of bad inputs (issue 18): every one ends in one clear message with the exit code of its kind, never a
traceback, and leaves nothing behind.

Each case is a pipeline (and maybe a board, data or model file) written into tmp_path, command-line overrides, the
expected exit code (mcuforge/core/errors.py: 2 configuration, 4 input, 5 budget) and fragments the message must hold:
the file's name and the field (or op) it is about. Most cases run in-process through what `dodo.py` runs when it
loads (tasks/config.py: resolve, then the build-root check), and the data/model cases through the stage that reads
the file; a few run the `doit` command line to check the reporter (one line, exit code, no doit frame). Positive
controls at the end show the hardened reader still accepts what it should.
"""
from __future__ import annotations

import json
import os
import struct
import sys
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from helpers import MLPERF, ROOT, run_doit

from mcuforge.core.errors import EXIT_BUDGET, EXIT_CONFIG, EXIT_INPUT, McuforgeError
from tasks import config as config_stage

GOOD = (ROOT / "pipelines" / "digits.yaml").read_text()
NAS = (ROOT / "pipelines" / "digits_nas.yaml").read_text()
BOARD = (ROOT / "boards" / "stm32f746.yaml").read_text().replace("name: stm32f746", "name: myboard")
KWS = MLPERF / "kws_ref_model.tflite"


def sub(old: str, new: str, text: str = GOOD) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


def with_board(board_text: str) -> dict:
    return {"bad.yaml": sub("board: stm32f746", "board: myboard.yaml"), "myboard.yaml": board_text}


def board_sub(old: str, new: str) -> dict:
    return with_board(sub(old, new, BOARD))


def model_pipeline(model_name: str) -> str:
    return f"name: m\ndeploy:\n  model: {model_name}\n  board: stm32l4r5\n"


def image_pipeline(extra: str = "") -> str:
    return sub("  kind: sklearn_digits\n", f"  kind: image_folder\n  path: imgs\n{extra}")


@dataclass
class Case:
    id: str
    category: str
    files: dict                   # name -> str | bytes | callable(tmp_path) (written into tmp_path)
    code: int                     # expected exit code
    fragments: list               # must all appear in the message
    overrides: dict = field(default_factory=dict)
    stage: str = "config"         # config | data | schedule | manifest


def deep_flow(depth: int) -> str:
    return "[" * depth + "1" + "]" * depth


def billion_laughs() -> str:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 9):
        prev, cur = chr(ord("a") + i - 1), chr(ord("a") + i)
        lines.append(f"{cur}: &{cur} [{', '.join(['*' + prev] * 9)}]")
    return "\n".join(lines) + "\n"


def png(width: int, height: int, idat: bytes | None = None) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = zlib.compress(b"\x00" + b"\x80" * width) * 1 if idat is None else idat
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", raw) + chunk(b"IEND", b""))


def good_png() -> bytes:
    from io import BytesIO

    from PIL import Image

    out = BytesIO()
    Image.new("L", (8, 8), 100).save(out, "PNG")
    return out.getvalue()


def image_tree(extra: dict | None = None, classes=("a", "b")):
    """A callable writing imgs/<class>/0.png for each class, then `extra` {relative path: bytes | ('link', target)}."""

    def make(root: Path):
        for name in classes:
            (root / "imgs" / name).mkdir(parents=True, exist_ok=True)
            (root / "imgs" / name / "0.png").write_bytes(good_png())
        for rel, content in (extra or {}).items():
            path = root / "imgs" / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, tuple):
                os.symlink(content[1], path)
            else:
                path.write_bytes(content)

    return make


def onnx_relu() -> bytes:
    """A valid float ONNX model (Relu): parses, but is not an int8 model the engine runs."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"], name="relu0")], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]).SerializeToString()


def kws_bytes() -> bytes:
    return KWS.read_bytes()


def kws_index_out_of_range() -> bytes:
    import tflite

    data = bytearray(kws_bytes())
    inputs = tflite.Model.GetRootAsModel(data, 0).Subgraphs(0).Operators(1).InputsAsNumpy()
    inputs[0] = 9999  # a view into `data`
    return bytes(data)


def idx_garbage(root: Path):
    folder = root / "fm"
    folder.mkdir()
    for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
                 "t10k-labels-idx1-ubyte.gz"):
        (folder / name).write_bytes(b"not gzip at all")


def idx_truncated(root: Path):
    import gzip

    folder = root / "fm"
    folder.mkdir()
    for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
                 "t10k-labels-idx1-ubyte.gz"):
        header = struct.pack(">IIII", 0x0803, 100, 28, 28)  # claims 100 images, holds 10 bytes
        (folder / name).write_bytes(gzip.compress(header + b"\x00" * 10))


FASHION = sub("  kind: sklearn_digits\n", "  kind: fashion_mnist\n  path: fm\n")

# audio: an audio_folder pipeline (pipelines/kws_speech_commands.yaml with two words in sc/) and the WAV files in it
SPEECH = (ROOT / "pipelines" / "kws_speech_commands.yaml").read_text()
AUDIO = sub("num_classes: 10", "num_classes: 2",
            sub('classes: ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"]', 'classes: ["yes", "no"]',
                sub("path: data/speech_commands", "path: sc", SPEECH)))


def wav(rate: int = 16000, channels: int = 1, bits: int = 16, frames: int = 1600, tag: int = 1,
        data_bytes: int | None = None, cut: int = 0) -> bytes:
    """A RIFF/WAVE file written by hand (so that its header can say anything); `cut` bytes removed from its end."""
    block = channels * bits // 8
    data = bytes((i * 37) & 0xFF for i in range(frames * block))
    fmt = struct.pack("<HHIIHH", tag, channels, rate, rate * block, block, bits)
    size = len(data) if data_bytes is None else data_bytes
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", size) + data
    out = b"RIFF" + struct.pack("<I", len(body)) + body
    return out[:len(out) - cut] if cut else out


def speech_tree(extra: dict | None = None, classes=("yes", "no")):
    """A callable writing sc/<word>/spk<i>_nohash_0.wav (4 speakers) for each word, then `extra`."""

    def make(root: Path):
        for word in classes:
            (root / "sc" / word).mkdir(parents=True, exist_ok=True)
            for speaker in range(4):
                (root / "sc" / word / f"spk{speaker}_nohash_0.wav").write_bytes(wav())
        for rel, content in (extra or {}).items():
            path = root / "sc" / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, tuple):
                os.symlink(content[1], path)
            elif content is None:
                path.mkdir()
            else:
                path.write_bytes(content)

    return make

# ---- the corpus ---------------------------------------------------------------------------------------------------
C, I, B = EXIT_CONFIG, EXIT_INPUT, EXIT_BUDGET
CASES = [
    # YAML: syntax, encoding, structure, limits
    Case("yaml-unclosed-flow", "yaml", {"bad.yaml": sub("  epochs: 8", "  epochs: [8")}, C, ["bad.yaml", "YAML syntax error"]),
    Case("yaml-tab-indent", "yaml", {"bad.yaml": sub("  epochs: 8", "\tepochs: 8")}, C, ["bad.yaml:", "YAML syntax error"]),
    Case("yaml-dup-section", "yaml", {"bad.yaml": GOOD + "\ntrain:\n  epochs: 1\n"}, C,
         ["bad.yaml:", "train: duplicate key (first at line"]),
    Case("yaml-dup-nested", "yaml", {"bad.yaml": sub("  epochs: 8", "  epochs: 8\n  epochs: 9")}, C,
         ["bad.yaml:", "epochs: duplicate key"]),
    Case("yaml-dup-flow", "yaml", {"bad.yaml": sub("{resolution: 16, channels: 1}", "{resolution: 16, resolution: 8}")},
         C, ["bad.yaml:", "resolution: duplicate key"]),
    Case("yaml-dup-board-section", "yaml", {"bad.yaml": GOOD + "\ndeploy:\n  board: nrf52840\n"}, C,
         ["bad.yaml:", "deploy: duplicate key"]),
    Case("yaml-dup-name", "yaml", {"bad.yaml": "name: a\n" + GOOD}, C, ["bad.yaml:", "name: duplicate key"]),
    Case("yaml-latin1", "yaml", {"bad.yaml": GOOD.replace("# Small", "# Sm\u00e9ll").encode("latin-1")}, C,
         ["bad.yaml:1:", "not UTF-8", "offset"]),
    Case("yaml-binary", "yaml", {"bad.yaml": bytes(range(256)) * 4}, C, ["bad.yaml:", "not UTF-8"]),
    Case("yaml-utf16", "yaml", {"bad.yaml": GOOD.encode("utf-16")}, C, ["bad.yaml:1:1", "not UTF-8"]),
    Case("yaml-control-char", "yaml", {"bad.yaml": sub("name: digits", "name: dig\x07its")}, C,
         ["bad.yaml:", "not allowed in YAML"]),
    Case("yaml-nul", "yaml", {"bad.yaml": GOOD + "\x00"}, C, ["bad.yaml:", "not allowed in YAML"]),
    Case("yaml-alias-bomb", "yaml", {"bad.yaml": billion_laughs() + GOOD}, C, ["bad.yaml:1:", "anchors and aliases"]),
    Case("yaml-alias", "yaml", {"bad.yaml": sub("seed: 0", "seed: &s 0\nx: *s")}, C, ["bad.yaml:", "anchor '&s'"]),
    Case("yaml-merge-key", "yaml", {"bad.yaml": sub("train:\n", "base: &b {epochs: 1}\ntrain:\n  <<: *b\n")}, C,
         ["bad.yaml:", "anchors and aliases"]),
    Case("yaml-deep-flow-1000", "yaml", {"bad.yaml": "name: x\ndeep: " + deep_flow(1000) + "\n"}, C,
         ["bad.yaml:2:", "nest"]),  # libyaml's own limit (1,000) or ours (32), whichever comes first
    Case("yaml-deep-flow-100", "yaml", {"bad.yaml": "name: x\ndeep: " + deep_flow(100) + "\n"}, C,
         ["bad.yaml:2:", "nested deeper than 32 levels"]),
    Case("yaml-deep-block-40", "yaml",
         {"bad.yaml": "name: x\n" + "".join("  " * i + f"k{i}:\n" for i in range(40)) + "  " * 40 + "v: 1\n"}, C,
         ["bad.yaml:", "nested deeper than"]),
    Case("yaml-5mb-list", "yaml", {"bad.yaml": GOOD + "big:\n" + "- 1\n" * 1_300_000}, C,
         ["bad.yaml", "over the 65,536-byte limit"]),
    Case("yaml-many-nodes", "yaml", {"bad.yaml": GOOD + "big: [" + ",".join(["1"] * 30000) + "]\n"}, C,
         ["bad.yaml:", "more than 20,000 YAML values"]),
    Case("yaml-empty", "yaml", {"bad.yaml": ""}, C, ["bad.yaml:1:1", "must be a mapping", "NoneType"]),
    Case("yaml-comments-only", "yaml", {"bad.yaml": "# nothing\n"}, C, ["bad.yaml:1:1", "must be a mapping"]),
    Case("yaml-list-doc", "yaml", {"bad.yaml": "- a\n- b\n"}, C, ["bad.yaml:1:1", "must be a mapping", "list"]),
    Case("yaml-scalar-doc", "yaml", {"bad.yaml": "hello\n"}, C, ["bad.yaml:1:1", "must be a mapping", "str"]),
    Case("yaml-two-documents", "yaml", {"bad.yaml": GOOD + "---\nname: other\n"}, C, ["bad.yaml:", "YAML syntax error"]),
    Case("yaml-complex-key", "yaml", {"bad.yaml": GOOD + "? [a, b]\n: 1\n"}, C, ["bad.yaml:", "key must be a plain name"]),
    Case("yaml-python-tag", "yaml", {"bad.yaml": sub("name: digits", "name: !!python/object:os.system x")}, C,
         ["bad.yaml:", "YAML syntax error", "constructor"]),
    Case("yaml-binary-tag", "yaml", {"bad.yaml": sub("name: digits", "name: !!binary aGVsbG8=")}, C,
         ["bad.yaml:", "name", "valid string"]),
    Case("yaml-date-name", "yaml", {"bad.yaml": sub("name: digits", "name: 2024-01-01")}, C,
         ["bad.yaml:", "name", "valid string"]),
    Case("yaml-unknown-section", "yaml", {"bad.yaml": GOOD + "trian:\n  epochs: 3\n"}, C, ["bad.yaml:", "unknown field 'trian'"]),
    # schema fields: type, range, NaN/inf, strictness
    Case("train-epochs-string", "schema", {"bad.yaml": sub("  epochs: 8", '  epochs: "8"')}, C,
         ["bad.yaml:", "train.epochs", "valid integer", "'8'"]),
    Case("train-epochs-float", "schema", {"bad.yaml": sub("  epochs: 8", "  epochs: 8.0")}, C,
         ["bad.yaml:", "train.epochs", "valid integer"]),
    Case("train-epochs-bool", "schema", {"bad.yaml": sub("  epochs: 8", "  epochs: true")}, C,
         ["bad.yaml:", "train.epochs", "valid integer"]),
    Case("train-epochs-inf", "schema", {"bad.yaml": sub("  epochs: 8", "  epochs: .inf")}, C,
         ["bad.yaml:", "train.epochs", "valid integer"]),
    Case("train-epochs-huge", "schema", {"bad.yaml": sub("  epochs: 8", "  epochs: " + "9" * 100)}, C,
         ["bad.yaml:", "train.epochs", "less than or equal to 1000"]),
    Case("train-lr-nan", "schema", {"bad.yaml": sub("  lr: 0.01", "  lr: .nan")}, C, ["bad.yaml:", "train.lr", "finite number"]),
    Case("train-lr-inf", "schema", {"bad.yaml": sub("  lr: 0.01", "  lr: .inf")}, C, ["bad.yaml:", "train.lr", "finite number"]),
    Case("train-lr-string", "schema", {"bad.yaml": sub("  lr: 0.01", '  lr: "0.01"')}, C, ["bad.yaml:", "train.lr", "valid number"]),
    Case("train-lr-negative", "schema", {"bad.yaml": sub("  lr: 0.01", "  lr: -1")}, C, ["bad.yaml:", "train.lr", "greater than 0"]),
    Case("train-weight-decay-inf", "schema", {"bad.yaml": sub("  lr: 0.01", "  lr: 0.01\n  weight_decay: .inf")}, C,
         ["bad.yaml:", "train.weight_decay", "finite number"]),
    Case("train-threads-100000", "schema", {"bad.yaml": sub("  lr: 0.01", "  lr: 0.01\n  threads: 100000")}, C,
         ["bad.yaml:", "train.threads", "less than or equal to 256"]),
    Case("train-threads-negative", "schema", {"bad.yaml": sub("  lr: 0.01", "  lr: 0.01\n  threads: -1")}, C,
         ["bad.yaml:", "train.threads", "greater than or equal to 0"]),
    Case("train-batch-zero", "schema", {"bad.yaml": sub("  batch_size: 64", "  batch_size: 0")}, C,
         ["bad.yaml:", "train.batch_size"]),
    Case("train-label-smoothing-1", "schema", {"bad.yaml": sub("  lr: 0.01", "  lr: 0.01\n  label_smoothing: 1.0")}, C,
         ["bad.yaml:", "train.label_smoothing", "less than 1"]),
    Case("train-optimizer", "schema", {"bad.yaml": sub("  optimizer: adamw", "  optimizer: sgdd")}, C,
         ["bad.yaml:", "train.optimizer", "'sgd'"]),
    Case("dataset-resolution-string", "schema", {"bad.yaml": sub("  resolution: 16\n", '  resolution: "16"\n')}, C,
         ["bad.yaml:", "dataset.resolution", "valid integer"]),
    Case("dataset-resolution-huge", "schema", {"bad.yaml": sub("  resolution: 16\n", "  resolution: 1e9\n")}, C,
         ["bad.yaml:", "dataset.resolution", "valid integer"]),
    Case("dataset-test-fraction-nan", "schema", {"bad.yaml": sub("  test_fraction: 0.2", "  test_fraction: .nan")}, C,
         ["bad.yaml:", "dataset.test_fraction", "finite number"]),
    Case("dataset-test-fraction-1", "schema", {"bad.yaml": sub("  test_fraction: 0.2", "  test_fraction: 1")}, C,
         ["bad.yaml:", "dataset.test_fraction", "less than 1"]),
    Case("dataset-channels-2", "schema", {"bad.yaml": sub("  channels: 1\n  test", "  channels: 2\n  test")}, C,
         ["bad.yaml:", "dataset.channels"]),
    Case("dataset-max-train-negative", "schema", {"bad.yaml": sub("  test_fraction: 0.2", "  test_fraction: 0.2\n  max_train: -1")},
         C, ["bad.yaml:", "dataset.max_train"]),
    Case("seed-too-big", "schema", {"bad.yaml": sub("seed: 0", "seed: 2147483648")}, C, ["bad.yaml:", "seed", "less than or equal"]),
    Case("seed-float", "schema", {"bad.yaml": sub("seed: 0", "seed: 1.5")}, C, ["bad.yaml:", "seed", "valid integer"]),
    Case("seed-string", "schema", {"bad.yaml": sub("seed: 0", 'seed: "0"')}, C, ["bad.yaml:", "seed", "valid integer"]),
    Case("name-pattern", "schema", {"bad.yaml": sub("name: digits", "name: bad name!")}, C, ["bad.yaml:", "name", "pattern"]),
    Case("name-int", "schema", {"bad.yaml": sub("name: digits", "name: 123")}, C, ["bad.yaml:", "name", "valid string"]),
    Case("quantize-calibration-zero", "schema", {"bad.yaml": sub("  calibration_samples: 128", "  calibration_samples: 0")}, C,
         ["bad.yaml:", "quantize.calibration_samples"]),
    Case("quantize-format", "schema", {"bad.yaml": sub("  calibration_samples: 128", "  calibration_samples: 128\n  format: qxx")},
         C, ["bad.yaml:", "quantize.format", "'qoperator'"]),
    Case("schedule-planner", "schema", {"bad.yaml": GOOD + "schedule:\n  planner: bogus\n"}, C, ["bad.yaml:", "schedule.planner"]),
    Case("schedule-overhead-inf", "schema", {"bad.yaml": GOOD + "schedule:\n  patch_max_macs_overhead: .inf\n"}, C,
         ["bad.yaml:", "schedule.patch_max_macs_overhead", "finite number"]),
    Case("schedule-patch-grid", "schema", {"bad.yaml": GOOD + "schedule:\n  patch: {layers: 1, grid: [1, 1]}\n"}, C,
         ["bad.yaml:", "schedule.patch", "not both 1"]),
    Case("deploy-verify-samples-zero", "schema", {"bad.yaml": sub("verify_samples: 50", "verify_samples: 0")},
         C, ["bad.yaml:", "deploy.verify_samples"]),
    Case("deploy-verify-samples-string", "schema",
         {"bad.yaml": sub("verify_samples: 50", 'verify_samples: "100"')}, C,
         ["bad.yaml:", "deploy.verify_samples", "valid integer"]),
    Case("deploy-latency-inf", "schema", {"bad.yaml": sub("board: stm32f746", "board: stm32f746\n  latency_ms: .inf")}, C,
         ["bad.yaml:", "deploy.latency_ms", "finite number"]),
    Case("deploy-latency-nan", "schema", {"bad.yaml": sub("board: stm32f746", "board: stm32f746\n  latency_ms: .nan")}, C,
         ["bad.yaml:", "deploy.latency_ms", "finite number"]),
    Case("deploy-battery-inf", "schema", {"bad.yaml": sub("board: stm32f746", "board: stm32f746\n  battery_mah: .inf")}, C,
         ["bad.yaml:", "deploy.battery_mah", "finite number"]),
    Case("deploy-inferences-zero", "schema",
         {"bad.yaml": sub("board: stm32f746", "board: stm32f746\n  inferences_per_day: 0")}, C,
         ["bad.yaml:", "deploy.inferences_per_day"]),
    Case("deploy-emulate-string", "schema", {"bad.yaml": sub("board: stm32f746", 'board: stm32f746\n  emulate: "yes"')}, C,
         ["bad.yaml:", "deploy.emulate", "valid boolean"]),
    Case("deploy-model-suffix", "schema", {"bad.yaml": model_pipeline("model.bin")}, C, ["bad.yaml:", "deploy.model", "pattern"]),
    Case("model-num-classes-vs-digits", "schema", {"bad.yaml": sub("num_classes: 10", "num_classes: 12")}, C,
         ["bad.yaml:14:", "search.model.num_classes is 12 but dataset.kind sklearn_digits has 10 classes"]),
    Case("model-num-classes-1", "schema", {"bad.yaml": sub("num_classes: 10", "num_classes: 1")}, C,
         ["bad.yaml:", "search.model.num_classes", "greater than or equal to 2"]),
    Case("model-width-inf", "schema", {"bad.yaml": sub("width_multiplier: 0.5", "width_multiplier: .inf")}, C,
         ["bad.yaml:", "search.model.width_multiplier", "finite number"]),
    Case("model-no-stages", "schema",
         {"bad.yaml": GOOD.split("    stages:")[0] + "    stages: []\n    head: {channels: 0}\n" + "\ntrain:" + GOOD.split("\ntrain:")[1]},
         C, ["bad.yaml:", "search.model.stages", "at least 1"]),
    Case("model-stem-kernel", "schema", {"bad.yaml": sub("kernel: 3, stride: 2}", "kernel: 4, stride: 2}")}, C,
         ["bad.yaml:", "search.model.stem.kernel"]),
    Case("model-depth-9", "schema", {"bad.yaml": sub("{channels: 16, depth: 1,", "{channels: 16, depth: 9,")}, C,
         ["bad.yaml:", "search.model.stages.0.depth"]),
    Case("model-channels-huge", "schema", {"bad.yaml": sub("{channels: 16, depth: 1,", "{channels: 100000, depth: 1,")}, C,
         ["bad.yaml:", "search.model.stages.0.channels", "less than or equal to 4096"]),
    Case("model-input-channels-vs-data", "schema",
         {"bad.yaml": sub("input: {resolution: 16, channels: 1}", "input: {resolution: 16, channels: 3}")}, C,
         ["bad.yaml", "search.model.input.channels (3) differs from dataset.channels (1)"]),
    Case("search-workers-1000", "schema", {"bad.yaml": sub("search:\n", "search:\n  workers: 1000\n")}, C,
         ["bad.yaml:", "search.workers", "less than or equal to 64"]),
    Case("nas-num-classes-vs-data", "schema", {"bad.yaml": sub("num_classes: 10", "num_classes: 11", NAS)}, C,
         ["bad.yaml:", "search.space.num_classes is 11 but dataset.kind sklearn_digits has 10"]),
    Case("nas-width-inf", "schema", {"bad.yaml": NAS.replace("width_multipliers: [", "width_multipliers: [.inf, ", 1)}, C,
         ["bad.yaml:", "search.space.width_multipliers", "finite number"]),
    Case("nas-proxy-samples-huge", "schema", {"bad.yaml": sub("train_samples: 1000,", "train_samples: 1000000000,", NAS)},
         C, ["bad.yaml:", "search.proxy.train_samples", "less than or equal"]),
    Case("nas-stage1-samples-zero", "schema", {"bad.yaml": sub("stage1: {samples: 40}", "stage1: {samples: 0}", NAS)}, C,
         ["bad.yaml:", "search.stage1.samples"]),
    Case("image-classes-vs-num-classes", "schema",
         {"bad.yaml": image_pipeline("  classes: [a, b, c]\n"), "tree": image_tree(classes=("a", "b", "c"))}, C,
         ["bad.yaml:", "search.model.num_classes is 10 but dataset.classes (a, b, c) has 3 classes"]),
    # command-line overrides
    Case("ov-latency-inf-word", "override", {"bad.yaml": GOOD}, C,
         ["command line: deploy.latency_ms=inf", "valid number", "'inf'"], {"deploy.latency_ms": "inf"}),
    Case("ov-latency-dot-inf", "override", {"bad.yaml": GOOD}, C,
         ["command line: deploy.latency_ms=.inf", "finite number"], {"deploy.latency_ms": ".inf"}),
    Case("ov-seed-1e400", "override", {"bad.yaml": GOOD}, C, ["command line: seed=1e400", "valid integer"], {"seed": "1e400"}),
    Case("ov-threads-100000", "override", {"bad.yaml": GOOD}, C,
         ["command line: train.threads=100000", "less than or equal to 256"], {"train.threads": "100000"}),
    Case("ov-epochs-quoted", "override", {"bad.yaml": GOOD}, C,
         ["command line: train.epochs=\"3\"", "valid integer"], {"train.epochs": '"3"'}),
    Case("ov-lr-nan", "override", {"bad.yaml": GOOD}, C, ["command line: train.lr=.nan", "finite number"], {"train.lr": ".nan"}),
    Case("ov-unknown-field", "override", {"bad.yaml": GOOD}, C, ["command line: train.epoch=3", "unknown field 'epoch'"],
         {"train.epoch": "3"}),
    Case("ov-into-scalar", "override", {"bad.yaml": GOOD}, C, ["command line: seed.x=1", "seed is not a section"], {"seed.x": "1"}),
    Case("ov-empty-part", "override", {"bad.yaml": GOOD}, C, ["command line: train..epochs=1", "empty field name"],
         {"train..epochs": "1"}),
    Case("ov-alias", "override", {"bad.yaml": GOOD}, C, ["command line: name=*x", "alias"], {"name": "*x"}),
    Case("ov-deep", "override", {"bad.yaml": GOOD}, C, ["command line: seed=", "nested deeper than"], {"seed": deep_flow(200)}),
    Case("ov-long", "override", {"bad.yaml": GOOD}, C, ["command line: name=", "longer than 4,096"], {"name": "x" * 5000}),
    Case("ov-bad-yaml", "override", {"bad.yaml": GOOD}, C, ["command line: name=[", "YAML syntax error"], {"name": "["}),
    Case("ov-board-missing-file", "override", {"bad.yaml": GOOD}, C,
         ["command line: board=nope.yaml", "board file", "not found"], {"board": "nope.yaml"}),
    Case("ov-name-pattern", "override", {"bad.yaml": GOOD}, C, ["command line: name=a/b", "pattern"], {"name": "a/b"}),
    Case("ov-list-index", "override", {"bad.yaml": GOOD}, C,
         ["command line: search.model.stages.7.depth=1", "is not an index of a list of 2"], {"search.model.stages.7.depth": "1"}),
    # boards
    Case("board-clock-inf", "board", board_sub("clock_mhz: 216", "clock_mhz: .inf"), C,
         ["myboard.yaml:", "clock_mhz", "finite number"]),
    Case("board-clock-zero", "board", board_sub("clock_mhz: 216", "clock_mhz: 0"), C, ["myboard.yaml:", "clock_mhz", "greater than 0"]),
    Case("board-clock-string", "board", board_sub("clock_mhz: 216", 'clock_mhz: "216"'), C,
         ["myboard.yaml:", "clock_mhz", "valid number"]),
    Case("board-sram-nan", "board", board_sub("sram_bytes: 327680", "sram_bytes: .nan"), C,
         ["myboard.yaml:", "sram_bytes", "valid integer"]),
    Case("board-sram-huge", "board", board_sub("sram_bytes: 327680", "sram_bytes: 1099511627776"), C,
         ["myboard.yaml:", "sram_bytes", "less than or equal"]),
    Case("board-m7-on-m3-machine", "board", board_sub("machine: mps2-an500", "machine: mps2-an385"), C,
         ["myboard.yaml:13:", "qemu.machine mps2-an385 emulates a cortex-m3, not this board's cortex-m7", "mps2-an500"]),
    Case("board-m4-on-m55-machine", "board", board_sub("machine: mps2-an500", "machine: mps3-an547"), C,
         ["myboard.yaml:", "qemu.machine mps3-an547 emulates a cortex-m55"]),
    Case("board-fpu-not-on-core", "board", board_sub("fpu: fpv5-sp-d16", "fpu: fpv4-sp-d16"), C,
         ["myboard.yaml:", "fpu fpv4-sp-d16 does not exist on a cortex-m7"]),
    Case("board-soft-abi-with-fpu", "board", board_sub("-mfloat-abi=hard", "-mfloat-abi=soft"), C,
         ["myboard.yaml:", "lacks -mfloat-abi=hard"]),
    Case("board-hard-abi-without-fpu", "board", board_sub("fpu: fpv5-sp-d16", "fpu: none"), C,
         ["myboard.yaml:", "-mfloat-abi=hard but fpu is none"]),
    Case("board-mcpu-missing", "board", board_sub("-mcpu=cortex-m7, ", ""), C, ["myboard.yaml:", "-mcpu=cortex-m7"]),
    Case("board-name-mismatch", "board", board_sub("name: myboard", "name: other"), C,
         ["myboard.yaml:", "must equal the file name"]),
    Case("board-dup-key", "board", board_sub("clock_mhz: 216", "clock_mhz: 216\nclock_mhz: 100"), C,
         ["myboard.yaml:", "clock_mhz: duplicate key"]),
    Case("board-latin1", "board", with_board(BOARD.replace("kit", "k\u00eft").encode("latin-1")), C,
         ["myboard.yaml:1:", "not UTF-8"]),
    Case("board-directory", "board", {"bad.yaml": sub("board: stm32f746", "board: myboard.yaml"),
                                       "myboard.yaml/x": "y"}, C, ["myboard.yaml", "directory"]),
    Case("board-unknown-field", "board", board_sub("clock_mhz: 216", "clock_mhz: 216\nclock_ghz: 1"), C,
         ["myboard.yaml:", "unknown field 'clock_ghz'"]),
    Case("board-voltage-negative", "board", board_sub("voltage_v: 3.3", "voltage_v: -3.3"), C,
         ["myboard.yaml:", "energy.voltage_v"]),
    Case("board-alias", "board", board_sub("clock_mhz: 216", "clock_mhz: &c 216\nx: *c"), C, ["myboard.yaml:", "anchor"]),
    # data sets (image_folder, idx files): found when the config is loaded, or by the data stage
    Case("img-folder-missing", "data", {"bad.yaml": image_pipeline()}, C, ["bad.yaml:", "dataset.path", "does not exist"]),
    Case("img-one-class", "data", {"bad.yaml": image_pipeline(), "tree": image_tree(classes=("a",))}, C,
         ["bad.yaml:", "dataset.path", "one sub-folder per class"]),
    Case("img-bomb", "data", {"bad.yaml": image_pipeline(), "tree": image_tree({"a/bomb.png": png(100_000, 100_000)})}, I,
         ["bomb.png", "decompression bomb"], stage="data"),
    Case("img-truncated", "data", {"bad.yaml": image_pipeline(), "tree": image_tree({"a/cut.png": good_png()[:40]})}, I,
         ["cut.png", "cannot read image"], stage="data"),
    Case("img-text-as-png", "data", {"bad.yaml": image_pipeline(), "tree": image_tree({"b/x.png": b"hello"})}, I,
         ["x.png", "cannot read image"], stage="data"),
    Case("img-symlink-loop-dir", "data", {"bad.yaml": image_pipeline(), "tree": image_tree({"a/loop": ("link", "..")})}, I,
         ["loop", "symbolic link loop"], stage="data"),
    Case("img-symlink-self", "data", {"bad.yaml": image_pipeline(), "tree": image_tree({"a/self.png": ("link", "self.png")})},
         I, ["self.png", "broken or looping symbolic link"], stage="data"),
    Case("img-empty-class", "data", {"bad.yaml": image_pipeline(), "tree": image_tree({"b/notes.txt": b"x"}, classes=("a",))},
         I, ["dataset.path", "no images"], stage="data"),
    Case("fashion-not-gzip", "data", {"bad.yaml": FASHION, "tree": idx_garbage}, I,
         ["train-images-idx3-ubyte.gz", "not a readable gzip file"], stage="data"),
    Case("fashion-truncated-idx", "data", {"bad.yaml": FASHION, "tree": idx_truncated}, I,
         ["train-images-idx3-ubyte.gz", "truncated or padded idx file"], stage="data"),
    # audio: WAV files and folders of an audio_folder dataset, the front end's fields
    Case("audio-folder-missing", "audio", {"bad.yaml": AUDIO}, C, ["bad.yaml:", "dataset.path", "sc does not exist"], stage="data"),
    Case("audio-class-missing", "audio", {"bad.yaml": AUDIO, "tree": speech_tree(classes=("yes",))}, C,
         ["bad.yaml:", "dataset.path", "missing no"], stage="data"),
    Case("audio-class-empty", "audio", {"bad.yaml": AUDIO, "tree": speech_tree({"no/notes.txt": b"x"}, ("yes",))}, C,
         ["bad.yaml:", "dataset.path", "no holds no WAV files"], stage="data"),
    Case("wav-not-riff", "audio", {"bad.yaml": AUDIO, "tree": speech_tree({"no/bad.wav": b"hello, not audio"})}, I,
         ["bad.wav", "not a WAV file"], stage="data"),
    Case("wav-truncated", "audio", {"bad.yaml": AUDIO, "tree": speech_tree({"no/cut.wav": wav(cut=1000)})}, I,
         ["cut.wav", "truncated WAV"], stage="data"),
    Case("wav-header-only", "audio", {"bad.yaml": AUDIO, "tree": speech_tree({"no/h.wav": wav()[:20]})}, I,
         ["h.wav", "WAV"], stage="data"),
    Case("wav-empty-file", "audio", {"bad.yaml": AUDIO, "tree": speech_tree({"no/e.wav": b""})}, I,
         ["e.wav", "not a WAV file"], stage="data"),
    Case("wav-no-samples", "audio", {"bad.yaml": AUDIO, "tree": speech_tree({"no/z.wav": wav(frames=0)})}, I,
         ["z.wav", "empty WAV"], stage="data"),
    Case("wav-stereo", "audio", {"bad.yaml": AUDIO, "tree": speech_tree({"no/st.wav": wav(channels=2)})}, I,
         ["st.wav", "mono"], stage="data"),
    Case("wav-8bit", "audio", {"bad.yaml": AUDIO, "tree": speech_tree({"no/b8.wav": wav(bits=8)})}, I,
         ["b8.wav", "8-bit WAV is not supported"], stage="data"),
    Case("wav-12bit", "audio", {"bad.yaml": AUDIO, "tree": speech_tree({"no/b12.wav": wav(bits=12)})}, I,
         ["b12.wav", "12-bit PCM WAV is not supported"], stage="data"),
    Case("wav-adpcm", "audio", {"bad.yaml": AUDIO, "tree": speech_tree({"no/ad.wav": wav(tag=2)})}, I,
         ["ad.wav", "compressed WAV"], stage="data"),
    Case("wav-zero-rate", "audio", {"bad.yaml": AUDIO, "tree": speech_tree({"no/r0.wav": wav(rate=0)})}, I,
         ["r0.wav", "sample rate 0"], stage="data"),
    Case("wav-data-size-lies", "audio", {"bad.yaml": AUDIO, "tree": speech_tree({"no/big.wav": wav(data_bytes=10**9)})}, I,
         ["big.wav", "truncated WAV"], stage="data"),
    Case("wav-directory", "audio", {"bad.yaml": AUDIO, "tree": speech_tree({"no/dir.wav": None})}, C,
         ["bad.yaml:", "dir.wav", "is a directory"], stage="data"),
    Case("wav-symlink-loop", "audio", {"bad.yaml": AUDIO, "tree": speech_tree({"no/self.wav": ("link", "self.wav")})}, C,
         ["bad.yaml:", "self.wav", "broken or looping symbolic link"], stage="data"),
    Case("wav-symlink-broken", "audio", {"bad.yaml": AUDIO, "tree": speech_tree({"no/gone.wav": ("link", "nowhere.wav")})},
         C, ["bad.yaml:", "gone.wav", "broken or looping symbolic link"], stage="data"),
    Case("frontend-fft-not-power-of-2", "audio", {"bad.yaml": sub("fft_size: 512", "fft_size: 500", AUDIO)}, C,
         ["bad.yaml:", "frontend", "fft_size=500 is not a power of two"]),
    Case("frontend-window-over-fft", "audio", {"bad.yaml": sub("window_ms: 32", "window_ms: 64", AUDIO)}, C,
         ["bad.yaml:", "frontend", "window"]),
    Case("frontend-mel-over-bins", "audio", {"bad.yaml": sub("mel_bins: 32", "mel_bins: 300", AUDIO)}, C,
         ["bad.yaml:", "frontend.mel_bins"]),
    Case("frontend-upper-over-nyquist", "audio", {"bad.yaml": sub("upper_hz: 7600", "upper_hz: 9000", AUDIO)}, C,
         ["bad.yaml:", "frontend", "upper_hz"]),
    Case("frontend-hop-zero", "audio", {"bad.yaml": sub("hop_ms: 31", "hop_ms: 0", AUDIO)}, C,
         ["bad.yaml:", "frontend.hop_ms"]),
    Case("frontend-unknown-kind", "audio", {"bad.yaml": sub("kind: log_mel", "kind: wavelet", AUDIO)}, C,
         ["bad.yaml:", "frontend.kind"]),
    Case("frontend-not-square", "audio", {"bad.yaml": sub("mel_bins: 32", "mel_bins: 40", AUDIO)}, C,
         ["bad.yaml:", "frontend"]),
    Case("frontend-rate-nan", "audio", {"bad.yaml": sub("sample_rate: 16000", "sample_rate: .nan", AUDIO)}, C,
         ["bad.yaml:", "dataset.sample_rate"]),
    # model files (deploy.model)
    Case("onnx-random-bytes", "model", {"bad.yaml": model_pipeline("m.onnx"), "m.onnx": os.urandom(4096)}, I,
         ["bad.yaml:", "deploy.model", "m.onnx", "not a valid ONNX model"]),
    Case("onnx-truncated", "model", {"bad.yaml": model_pipeline("m.onnx"), "m.onnx": lambda: onnx_relu()[:-20]}, I,
         ["bad.yaml:", "m.onnx", "not a valid ONNX model"]),
    Case("onnx-empty", "model", {"bad.yaml": model_pipeline("m.onnx"), "m.onnx": b""}, I, ["m.onnx", "the graph has no nodes"]),
    Case("onnx-directory", "model", {"bad.yaml": model_pipeline("m.onnx"), "m.onnx/x": "y"}, C,
         ["bad.yaml:", "deploy.model", "m.onnx is a directory"]),
    Case("onnx-missing", "model", {"bad.yaml": model_pipeline("m.onnx")}, C, ["bad.yaml:", "deploy.model", "no such file"]),
    Case("onnx-float-model", "model", {"bad.yaml": model_pipeline("m.onnx"), "m.onnx": onnx_relu}, I,
         ["m.onnx", "graph input 'x'"], stage="schedule"),
    Case("tflite-random-bytes", "model", {"bad.yaml": model_pipeline("m.tflite"), "m.tflite": os.urandom(4096)}, I,
         ["bad.yaml:", "m.tflite", "not a TFLite model"]),
    Case("tflite-truncated-half", "model",
         {"bad.yaml": model_pipeline("m.tflite"), "m.tflite": lambda: kws_bytes()[: len(kws_bytes()) // 2]}, I,
         ["m.tflite", "truncated or corrupt TFLite flatbuffer"]),
    Case("tflite-truncated-header", "model", {"bad.yaml": model_pipeline("m.tflite"), "m.tflite": lambda: kws_bytes()[:12]}, I,
         ["m.tflite", "not a TFLite model"]),
    Case("tflite-index-out-of-range", "model", {"bad.yaml": model_pipeline("m.tflite"), "m.tflite": kws_index_out_of_range}, I,
         ["m.tflite", "operator 1 (", "input tensor index 9999 is out of range"]),
    Case("tflite-directory", "model", {"bad.yaml": model_pipeline("m.tflite"), "m.tflite/x": "y"}, C,
         ["bad.yaml:", "m.tflite is a directory"]),
    # budgets known before training
    Case("model-over-flash", "budget",
         {"bad.yaml": sub("{channels: 24, depth: 2, stride: 2, expansion: 3}", "{channels: 2048, depth: 4, stride: 2, expansion: 6}")},
         B, ["bad.yaml:", "search.model", "flash budget exceeded on board 'stm32f746'", "over by", "the biggest is layer"]),
    Case("model-input-over-sram", "budget",
         {"bad.yaml": sub("resolution: 16, channels: 1}", "resolution: 512, channels: 1}").replace("resolution: 16\n", "resolution: 512\n"),
          }, B, ["bad.yaml:", "SRAM budget exceeded", "input tensor"], {"board": "lpc1768"}),
    # paths
    Case("pipeline-is-directory", "path", {"bad.yaml/x": "y"}, C, ["bad.yaml", "is a directory"]),
    Case("pipeline-is-device", "path", {}, C, ["/dev/zero", "not a regular file"], {"pipeline": "/dev/zero"}),
    Case("pipeline-empty-value", "path", {}, C, ["pipeline= needs a file"], {"pipeline": ""}),
    Case("build-is-file", "path", {"bad.yaml": GOOD, "afile": "x"}, C, ["build=", "afile", "is a file"], {"build": "afile"}),
    Case("build-under-file", "path", {"bad.yaml": GOOD, "afile": "x"}, C, ["build=", "afile is a file"],
         {"build": "afile/sub"}),
    Case("build-under-proc", "path", {"bad.yaml": GOOD}, C, ["build=/proc/", "virtual file system"], {"build": "/proc/mcuforge"}),
    Case("build-under-sys", "path", {"bad.yaml": GOOD}, C, ["build=/sys/", "virtual file system"], {"build": "/sys/x/y"}),
    # check_manifest
    Case("manifest-never-built", "manifest", {"bad.yaml": GOOD}, I, ["build=", "no build here"], stage="check_manifest"),
    Case("manifest-missing", "manifest", {"bad.yaml": GOOD, "build/data/x.npy": b"x"}, I, ["manifest.json", "no manifest"],
         stage="check_manifest"),
    Case("manifest-corrupt-json", "manifest", {"bad.yaml": GOOD, "build/manifest.json": '{"artifacts": '}, I,
         ["manifest.json", "corrupt manifest"], stage="check_manifest"),
    Case("manifest-not-object", "manifest", {"bad.yaml": GOOD, "build/manifest.json": "[1, 2]"}, I,
         ["manifest.json", "corrupt manifest"], stage="check_manifest"),
    Case("manifest-binary", "manifest", {"bad.yaml": GOOD, "build/manifest.json": b"\xff\xfe\x00"}, I,
         ["manifest.json", "corrupt manifest"], stage="check_manifest"),
]


def _write(tmp_path: Path, files: dict) -> None:
    for name, content in files.items():
        if name == "tree":
            content(tmp_path)
            continue
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if callable(content):
            content = content()
        path.write_bytes(content.encode() if isinstance(content, str) else content)


def _snapshot(build: Path) -> set:
    return {p.relative_to(build) for p in build.rglob("*")} if build.exists() else set()


def run_case(case: Case, tmp_path: Path) -> tuple[int, str]:
    """What `doit run` / `doit check_manifest` would do up to the failing stage, in-process: (exit code, message)."""
    from tasks import data as data_stage
    from tasks import manifest as manifest_stage
    from tasks import schedule as schedule_stage

    variables = {"pipeline": str(tmp_path / "bad.yaml"), "build": str(tmp_path / "build")}
    variables.update({k: (str(tmp_path / v) if k == "build" and not v.startswith("/") else v)
                      for k, v in case.overrides.items()})
    try:
        pipeline, build, overrides = config_stage.split_vars(variables)
        cfg = config_stage.resolve(pipeline, overrides)
        paths = config_stage.paths(cfg, build)
        config_stage.prepare_build(paths.root, create=case.stage != "check_manifest")
        if case.stage == "data":
            data_stage.run(cfg, paths)
        elif case.stage == "schedule":
            schedule_stage.run(cfg, paths)
        elif case.stage == "check_manifest":
            manifest_stage.check_action(paths)
    except McuforgeError as exc:
        return exc.exit_code, str(exc)
    return 0, ""


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _write(tmp_path, case.files)
    build = tmp_path / "build"
    before = _snapshot(build)
    code, message = run_case(case, tmp_path)
    assert code == case.code, f"exit {code}, expected {case.code}: {message}"
    for fragment in case.fragments:
        assert fragment in message, f"{fragment!r} not in:\n{message}"
    assert "Traceback" not in message and len(message.splitlines()) <= 20
    after = _snapshot(build)
    if case.stage in ("config", "check_manifest"):
        assert after == before, f"written: {sorted(map(str, after - before))}"  # nothing, not even the build root
    else:  # the build root is made before the stage runs; the failing stage leaves nothing in it
        assert not [p for p in after - before if p.suffix in (".npy", ".json", ".tmp") or ".tmp" in p.name], after


def test_corpus_size_and_categories():
    categories = {case.category for case in CASES}
    assert len(CASES) >= 100, len(CASES)
    assert categories >= {"yaml", "schema", "override", "board", "data", "model", "budget", "path", "manifest", "audio"}
    assert len({case.id for case in CASES}) == len(CASES)


def test_the_size_limit_is_checked_before_reading(tmp_path: Path):
    """A file over the limit is refused from its size alone: a sparse 5 GB file costs nothing to refuse."""
    from schemas.loader import read_yaml

    big = tmp_path / "huge.yaml"
    with open(big, "wb") as handle:
        handle.truncate(5 * 1024**3)
    with pytest.raises(McuforgeError, match=r"huge.yaml: 5,368,709,120 bytes, over the 65,536-byte limit"):
        read_yaml(big)


# ---- what the hardened reader still accepts -------------------------------------------------------------------------
def test_positive_controls(tmp_path: Path):
    from schemas.loader import load_pipeline

    (tmp_path / "bom.yaml").write_bytes(b"\xef\xbb\xbf" + GOOD.encode())
    assert load_pipeline(str(tmp_path / "bom.yaml")).pipeline.name == "digits"
    (tmp_path / "e.yaml").write_text(sub("  lr: 0.01", "  lr: 1e-2"))  # YAML 1.2 float (PyYAML alone: a string)
    assert load_pipeline(str(tmp_path / "e.yaml")).pipeline.train.lr == 0.01
    (tmp_path / "i.yaml").write_text(sub("  lr: 0.01", "  lr: 1"))  # an int where a float is expected
    assert load_pipeline(str(tmp_path / "i.yaml")).pipeline.train.lr == 1.0
    loaded = load_pipeline(str(tmp_path / "i.yaml"), {"deploy.latency_ms": "2.5", "train.threads": "2"})
    assert loaded.pipeline.deploy.latency_ms == 2.5 and loaded.pipeline.train.threads == 2


# ---- the command line: one line, the exit code of its kind, no doit frame, nothing written -------------------------
def _cli(tmp_path: Path, *args: str):
    result = run_doit(*args, cwd=tmp_path)
    out = result.stdout + result.stderr
    assert "Traceback" not in out and "TaskFailed" not in out and "taskid:" not in out, out
    return result


def test_cli_duplicate_key_is_a_config_error(tmp_path: Path):
    (tmp_path / "bad.yaml").write_text(GOOD + "\ntrain:\n  epochs: 1\n")
    result = _cli(tmp_path, "run", f"pipeline={tmp_path / 'bad.yaml'}", f"build={tmp_path / 'b'}")
    assert result.returncode == EXIT_CONFIG
    assert "bad.yaml:" in result.stderr and "train: duplicate key" in result.stderr
    assert not (tmp_path / "b").exists()


def test_cli_check_manifest_never_built_is_an_input_error(tmp_path: Path):
    result = _cli(tmp_path, "check_manifest", "pipeline=digits", f"build={tmp_path / 'never'}")
    assert result.returncode == EXIT_INPUT, result.stderr
    assert "no build here" in result.stderr
    assert not (tmp_path / "never").exists()


def test_cli_data_stage_failure_is_one_line(tmp_path: Path):
    """A failure inside a task: `mcuforge: data: <message>` and the input-error exit code, no doit frame."""
    (tmp_path / "bad.yaml").write_text(image_pipeline())
    image_tree({"a/bomb.png": png(100_000, 100_000)})(tmp_path)
    result = _cli(tmp_path, "run", f"pipeline={tmp_path / 'bad.yaml'}", f"build={tmp_path / 'b'}", "data")
    assert result.returncode == EXIT_INPUT, result.stdout + result.stderr
    line = next(line for line in result.stderr.splitlines() if line.startswith("mcuforge: "))
    assert line.startswith("mcuforge: data: dataset.path: ") and "bomb.png" in line and "decompression bomb" in line
    assert not list((tmp_path / "b").rglob("*.npy")) and not list((tmp_path / "b").rglob("*.tmp"))


def test_cli_budget_before_training(tmp_path: Path):
    (tmp_path / "bad.yaml").write_text(CASES[[c.id for c in CASES].index("model-over-flash")].files["bad.yaml"])
    result = _cli(tmp_path, "run", f"pipeline={tmp_path / 'bad.yaml'}", f"build={tmp_path / 'b'}")
    assert result.returncode == EXIT_BUDGET, result.stderr
    assert "flash budget exceeded" in result.stderr and not (tmp_path / "b").exists()


if __name__ == "__main__":  # a table of the corpus by category
    counts: dict = {}
    for case in CASES:
        counts[case.category] = counts.get(case.category, 0) + 1
    json.dump(counts, sys.stdout, indent=1)


# ---- budgets name need, budget and the biggest contributor; the reporter's one line and exit codes ------------------
def _ops():
    import numpy as np

    from mcuforge.ir.graph import Op

    return [Op("conv", "stem", "Conv", ["x"], "a", {}, {"weight": np.zeros((8, 3, 3, 1), np.int8),
                                                          "bias": np.zeros(8, np.int32)}),
            Op("fc", "classifier", "Gemm", ["a"], "y", {}, {"weight": np.zeros((10, 1000), np.int8)})]


def test_flash_budget_names_need_budget_and_biggest_layer():
    from mcuforge.core.errors import BudgetError
    from mcuforge.toolchain import budget

    # constants: stem 72 + 32 = 104 B, classifier 10,000 B -> 10,104 B
    with pytest.raises(BudgetError, match=r"needs 10,104 B of constants alone .* budget is 10,000 B .* over by 104 B; "
                                          r"the biggest is layer 'classifier' \(fc\) with 10,000 B \(99 %\)"):
        budget.check_constants(_ops(), 10_000, "tiny", "the model")
    budget.check_constants(_ops(), 10_104, "tiny", "the model")  # exactly the budget: fits
    numbers = {"sram_fits": True, "flash_fits": False, "flash_bytes": 60_104, "flash_budget_bytes": 32_768}
    with pytest.raises(BudgetError, match=r"needs 60,104 B .* budget is 32,768 B .* over by 27,336 B\. Model constants "
                                          r"10,104 B \(the biggest: layer 'classifier' \(fc\) 10,000 B\), code, runtime "
                                          r"and data 50,000 B"):
        budget.check(numbers, "tiny", _ops())


def test_reporter_one_line_and_exit_codes():
    import io

    from doit.exceptions import TaskError

    from mcuforge.core.errors import BudgetError, ConfigError, EXIT_INTERNAL, VerificationError
    from tasks.doit_support import Reporter, StageFailed, one_line

    class Task:
        name = "verify"
        executed = True
        verbosity = 2
        actions = []

    assert one_line("verify", "verify: 3 bytes differ") == "mcuforge: verify: 3 bytes differ"
    assert one_line("build_stm32f746", "build failed: x") == "mcuforge: build_stm32f746: build failed: x"
    for error, code in ((ConfigError("c"), 2), (VerificationError("v"), 6), (BudgetError("b"), 5)):
        reporter = Reporter(io.StringIO(), {"failure_verbosity": 0})
        reporter.add_failure(Task(), StageFailed(error))
        with pytest.raises(SystemExit) as stop:
            reporter.complete_run()
        assert stop.value.code == code
        assert "TaskFailed" not in reporter.outstream.getvalue()
    try:
        raise KeyError("boom")
    except KeyError as exc:
        bug = TaskError("Python Task error", exc)
    reporter = Reporter(io.StringIO(), {"failure_verbosity": 0})
    reporter.add_failure(Task(), bug)
    with pytest.raises(SystemExit) as stop:
        reporter.complete_run()
    assert stop.value.code == EXIT_INTERNAL and "Traceback" in reporter.outstream.getvalue() + "".join(bug.traceback)
    quiet = Reporter(io.StringIO(), {"failure_verbosity": 0})
    quiet.complete_run()  # no failure: returns (doit's exit code 0)


def test_unwritable_build_dir_is_a_config_error(tmp_path: Path, monkeypatch):
    """Root ignores permission bits, so the write probe is made to fail the way a read-only directory would."""
    target = tmp_path / "ro" / "build"

    def denied(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "write_bytes", denied)
    with pytest.raises(McuforgeError, match=r"command line: build=.*ro/build: cannot write there \(Permission denied\)") as info:
        config_stage.prepare_build(target)
    assert info.value.exit_code == EXIT_CONFIG
    assert not (tmp_path / "ro").exists()  # the folders the check made are removed again
