"""Pipelines given a ready model (deploy.model): the schema, the resolved config, the doit wiring (no data, search,
train or quantize tasks), an end-to-end `doit run` of the MLPerf Tiny KWS pipeline against TFLite Micro, an int8 ONNX
model quantized by ONNX Runtime outside the project (host vs ONNX Runtime, and the manifest naming the model when it
changes); a broken model file gives one clear message and no traceback."""
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from helpers import MLPERF, ROOT, have_cross_tools, run_doit
from schemas.loader import ConfigError
from tasks import config as config_stage

KWS = MLPERF / "kws_ref_model.tflite"
MODEL = {"mlperf_kws": KWS, "mlperf_vww": MLPERF / "vww_96_int8.tflite"}
pytestmark = pytest.mark.skipif(not KWS.is_file(), reason="needs ../shared/models/mlperf-tiny")


def _pipeline(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "p.yaml"
    path.write_text("name: p\n" + body)
    return path


def test_mlperf_pipelines_resolve():
    for name in ("mlperf_kws", "mlperf_vww"):
        cfg = config_stage.resolve(name, {"deploy.model": str(MODEL[name])})
        assert cfg["dataset"] is None and cfg["search"] is None and cfg["train"] is None
        assert cfg["resolved"]["requant"] == "fixed"  # TFLite arithmetic on a board with an FPU too
        model = config_stage.absolute(cfg["resolved"]["model_file"])
        assert model.is_file() and model.suffix == ".tflite"
        assert config_stage.paths(cfg, Path("/tmp/x")).int8 == model


@pytest.mark.parametrize("body, expected", [
    ("deploy:\n  board: stm32l4r5\n  model: missing.tflite\n", ["p.yaml:4", "deploy.model: no such file"]),
    ("deploy:\n  board: stm32l4r5\n  model: m.bin\n", ["deploy.model", "should match pattern"]),
    ("dataset:\n  kind: sklearn_digits\n  resolution: 8\ndeploy:\n  board: stm32l4r5\n  model: "
     f"{KWS}\n", ["replaces data, search, training and quantization: remove dataset"]),
    ("deploy:\n  board: stm32l4r5\n", ["missing required field 'dataset'", "unless deploy.model is set"]),
])
def test_model_pipeline_errors(tmp_path: Path, body: str, expected: list[str]):
    with pytest.raises(ConfigError) as info:
        config_stage.resolve(str(_pipeline(tmp_path, body)), {})
    for text in expected:
        assert text in str(info.value), str(info.value)


def test_doit_list_has_no_training_tasks():
    result = run_doit("list", "pipeline=mlperf_kws", f"deploy.model={KWS}")
    assert result.returncode == 0, result.stderr
    tasks = {line.split()[0] for line in result.stdout.splitlines() if line.strip()}
    assert {"schedule", "codegen", "build_host", "verify"} <= tasks
    assert not tasks & {"data", "search", "train", "quantize"}


@pytest.mark.slow
@pytest.mark.qemu
@pytest.mark.skipif(not have_cross_tools(), reason="needs arm-none-eabi-gcc and qemu")
def test_doit_run_kws_pipeline(tmp_path: Path):
    result = run_doit("run", "pipeline=mlperf_kws", f"build={tmp_path}", "deploy.verify_samples=20",
                      f"deploy.model={KWS}")  # the default tasks, review included
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "host vs TFLite Micro 0 differing bytes" in result.stdout
    review = (tmp_path / "review" / "report.md").read_text()
    assert review.startswith("# Review: mlperf_kws on stm32l4r5") and (tmp_path / "review" / "report.html").is_file()
    report = json.loads((tmp_path / "verify" / "report.json").read_text())
    assert report["reference"] == "tflite-micro" and report["passed"]
    assert report["host"]["vs_ort"]["differing"] == 0 and report["qemu"]["vs_ort"]["differing"] == 0
    assert report["samples"] == 20
    tflm = report["tflm_arena"]  # TFLite Micro's own arena for the model, beside ours in the review
    assert tflm["total"] == tflm["head"] + tflm["tail"] > 0
    assert report["model_file_bytes"] == KWS.stat().st_size
    budget = json.loads((tmp_path / "budget.json").read_text())  # the static stack bound covers the measured stack
    assert budget["stack_bytes"] >= report["qemu"]["stack_measured_bytes"] > 0
    plan = json.loads((tmp_path / "schedule" / "plan.json").read_text())
    assert plan["arena_bytes"] <= tflm["head"] < tflm["total"]
    assert f"its arena {tflm['total']:,} B (head {tflm['head']:,} B" in review
    assert f"Model file {KWS.stat().st_size:,} B" in review


def test_broken_model_file_is_one_message(tmp_path: Path):
    broken = tmp_path / "broken.tflite"
    broken.write_bytes(KWS.read_bytes()[:5000])
    pipeline = _pipeline(tmp_path, f"deploy:\n  board: stm32l4r5\n  model: {broken.name}\n")
    result = run_doit("run", f"pipeline={pipeline}", f"build={tmp_path / 'build'}", "schedule")
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "truncated or corrupt TFLite flatbuffer" in output, output
    assert "Traceback" not in output


# ---- an already-quantized ONNX model (QOperator), as a user brings it -------------------------------------------
def _quantized_onnx(path: Path) -> Path:
    """A small float CNN (conv-relu, strided conv-relu, global average pool, flatten, gemm) written with onnx.helper,
    quantized by ONNX Runtime's quantize_static (QOperator, int8 activations, int8 symmetric per-channel weights) on
    random images in [0, 1]."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    rng = np.random.default_rng(0)
    shapes = {"w1": (8, 3, 3, 3), "b1": (8,), "w2": (16, 8, 3, 3), "b2": (16,), "w3": (4, 16), "b3": (4,)}
    weights = [numpy_helper.from_array((rng.standard_normal(shape) * 0.3).astype(np.float32), name)
               for name, shape in shapes.items()]
    nodes = [
        helper.make_node("Conv", ["images", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], pads=[1, 1, 1, 1], strides=[2, 2]),
        helper.make_node("Relu", ["c2"], ["r2"]),
        helper.make_node("GlobalAveragePool", ["r2"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["features"]),
        helper.make_node("Gemm", ["features", "w3", "b3"], ["logits"], transB=1),
    ]
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 12, 12])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 4])], weights)
    fp32 = path.with_name("tiny_fp32.onnx")
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8), fp32)

    class Images(CalibrationDataReader):
        def __init__(self):
            self.batches = iter(rng.random((16, 1, 3, 12, 12), dtype=np.float32))

        def get_next(self):
            batch = next(self.batches, None)
            return None if batch is None else {"images": batch}

    quantize_static(str(fp32), str(path), Images(), quant_format=QuantFormat.QOperator, per_channel=True,
                    activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                    extra_options={"ActivationSymmetric": False, "WeightSymmetric": True})
    return path


@pytest.fixture(scope="module")
def onnx_pipeline(tmp_path_factory) -> dict:
    """pipelines/tiny.yaml with `deploy.model: ../models/tiny_int8.onnx` (relative to the YAML), run by doit up to
    the manifest on the host (QEMU off; the board build only cross-compiles)."""
    root = tmp_path_factory.mktemp("onnx_model")
    (root / "models").mkdir()
    (root / "pipelines").mkdir()
    model = _quantized_onnx(root / "models" / "tiny_int8.onnx")
    pipeline = root / "pipelines" / "tiny.yaml"
    pipeline.write_text("name: tiny_onnx\ndeploy:\n  board: stm32l4r5\n  model: ../models/tiny_int8.onnx\n"
                        "  verify_samples: 30\n  layer_samples: 2\n  emulate: false\n")
    build = root / "build"
    result = run_doit("run", f"pipeline={pipeline}", f"build={build}", "manifest")
    return {"model": model, "pipeline": pipeline, "build": build, "result": result}


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="the board build needs arm-none-eabi-gcc")
def test_doit_run_quantized_onnx_model(onnx_pipeline: dict):
    result = onnx_pipeline["result"]
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    build = onnx_pipeline["build"]
    assert not any((build / stage).exists() for stage in ("data", "search", "train", "quantize"))
    report = json.loads((build / "verify" / "report.json").read_text())
    assert report["reference"] == "onnxruntime" and report["requant"] == "float" and report["passed"]
    assert report["samples"] == 30 and "qemu" not in report
    assert report["host"]["vs_ort"]["differing"] == 0, report["host"]
    assert [layer["host_vs_ort"]["differing"] for layer in report["layers"]] == [0] * len(report["layers"])
    kinds = [layer["kind"] for layer in report["layers"]]
    assert kinds[:2] == ["conv", "conv"] and "fc" in kinds


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="the board build needs arm-none-eabi-gcc")
def test_manifest_names_the_changed_model(onnx_pipeline: dict):
    import onnx

    assert onnx_pipeline["result"].returncode == 0, onnx_pipeline["result"].stdout[-3000:]
    model_path, pipeline, build = onnx_pipeline["model"], onnx_pipeline["pipeline"], onnx_pipeline["build"]
    manifest = json.loads((build / "manifest.json").read_text())
    assert manifest["model"]["path"] == "../models/tiny_int8.onnx"
    assert manifest["model"]["bytes"] == model_path.stat().st_size
    assert manifest["tools"]["onnxruntime"] and manifest["tools"]["tflite-micro"]
    check = ("check_manifest", f"pipeline={pipeline}", f"build={build}")
    assert run_doit(*check).returncode == 0
    original = model_path.read_bytes()
    try:
        model = onnx.load(str(model_path))
        model.doc_string = "re-quantized elsewhere"
        onnx.save(model, str(model_path))
        result = run_doit(*check)
        output = result.stdout + result.stderr
        assert result.returncode != 0
        assert "deploy.model ../models/tiny_int8.onnx" in output and "changed" in output, output
        assert "Traceback" not in output
    finally:
        model_path.write_bytes(original)
    assert run_doit(*check).returncode == 0
