"""Pipelines given a ready model (deploy.model): the schema, the resolved config, the doit wiring (no data, search,
train or quantize tasks) and an end-to-end `doit run` of the MLPerf Tiny KWS pipeline against TFLite Micro; a broken
model file gives one clear message and no traceback."""
import json
from pathlib import Path

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


def test_broken_model_file_is_one_message(tmp_path: Path):
    broken = tmp_path / "broken.tflite"
    broken.write_bytes(KWS.read_bytes()[:5000])
    pipeline = _pipeline(tmp_path, f"deploy:\n  board: stm32l4r5\n  model: {broken.name}\n")
    result = run_doit("run", f"pipeline={pipeline}", f"build={tmp_path / 'build'}", "schedule")
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "truncated or corrupt TFLite flatbuffer" in output, output
    assert "Traceback" not in output
