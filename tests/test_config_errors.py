"""Bad input gets a clear error: file, line and column, dotted field path, what is allowed; exit code 2; no traceback;
nothing written under the build directory. Each case runs `doit` as a user would."""
import textwrap
from pathlib import Path

import pytest

from helpers import ROOT, run_doit

GOOD = (ROOT / "pipelines" / "digits.yaml").read_text()


def _replace(old: str, new: str) -> str:
    assert old in GOOD, old
    return GOOD.replace(old, new, 1)


def _line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


BOARD_OK = (ROOT / "boards" / "stm32f746.yaml").read_text().replace("name: stm32f746", "name: myboard")

# (id, pipeline text, extra files {name: text}, overrides, expected substrings (with {line} of a marker), marker)
CASES = [
    ("yaml-syntax", _replace("  epochs: 8", "  epochs: [8"), {}, [], ["YAML syntax error"], None),
    ("unknown-top-key", GOOD + "trian:\n  epochs: 3\n", {}, [],
     ["trian", "unknown field 'trian'", "allowed here: name, seed, dataset, search, train"], "trian:"),
    ("unknown-nested-key", _replace("  epochs: 8", "  epoch: 8"), {}, [],
     ["train.epoch", "unknown field 'epoch'", "epochs, batch_size"], "  epoch: 8"),
    ("wrong-type", _replace("  epochs: 8", "  epochs: eight"), {}, [],
     ["train.epochs", "valid integer", "'eight'"], "  epochs: eight"),
    ("missing-required", _replace("  kind: sklearn_digits\n", ""), {}, [],
     ["dataset.kind", "missing required field 'kind'", "Dataset loader"], "dataset:"),
    ("missing-section", GOOD.split("deploy:")[0], {}, [], ["deploy", "missing required field 'deploy'"], None),
    ("unknown-board", _replace("board: stm32f746", "board: stm32f999"), {}, [],
     ["deploy.board", "unknown board 'stm32f999'", "stm32f746", "nrf52840"], "board: stm32f999"),
    ("zero-lr", _replace("  lr: 0.01", "  lr: 0"), {}, [], ["train.lr", "greater than 0"], "  lr: 0"),
    ("negative-epochs", _replace("  epochs: 8", "  epochs: -2"), {}, [],
     ["train.epochs", "greater than or equal to 1", "-2"], "  epochs: -2"),
    ("zero-board-sram", _replace("board: stm32f746", "board: myboard.yaml"),
     {"myboard.yaml": BOARD_OK.replace("sram_bytes: 327680", "sram_bytes: 0")}, [],
     ["myboard.yaml", "sram_bytes", "greater than 0"], None),
    ("board-reserved-too-big", _replace("board: stm32f746", "board: myboard.yaml"),
     {"myboard.yaml": BOARD_OK.replace("  sram_bytes: 8192 ", "  sram_bytes: 900000 ")}, [],
     ["myboard.yaml", "reserved.sram_bytes must be smaller than sram_bytes"], None),
    ("bad-resolution-range", _replace("  resolution: 16\n", "  resolution: 2\n"), {}, [],
     ["dataset.resolution", "greater than or equal to 4"], "  resolution: 2"),
    ("resolution-vs-strides", _replace("    input: {resolution: 16, channels: 1}", "    input: {resolution: 18, channels: 1}")
     .replace("  resolution: 16\n", "  resolution: 18\n"), {}, [],
     ["search.model", "resolution 18 is not divisible by the network's total stride 4"], None),
    ("resolution-mismatch", _replace("  resolution: 16\n", "  resolution: 32\n"), {}, [],
     ["search.model.input.resolution (16) differs from dataset.resolution (32)"], None),
    ("unknown-dataset-kind", _replace("kind: sklearn_digits", "kind: cifar10"), {}, [],
     ["dataset.kind", "'fashion_mnist', 'sklearn_digits', 'image_folder', 'audio_folder', 'speech_synth', "
     "'machine_sound_folder' or 'machine_synth'", "cifar10"], "kind: cifar10"),
    ("missing-dataset-folder", _replace("kind: sklearn_digits", "kind: image_folder\n  path: no/such/folder"), {}, [],
     ["dataset.path", "no/such/folder", "does not exist", "one sub-folder per class"], None),
    ("bad-enum", _replace("  calibration_samples: 128", "  calibration_samples: 128\n  granularity: per_layer"), {}, [],
     ["quantize.granularity", "'per_channel' or 'per_tensor'"], "granularity: per_layer"),
    ("per-block-list-length", _replace("{channels: 24, depth: 2, stride: 2, expansion: 3}",
                                       "{channels: 24, depth: 2, stride: 2, expansion: [3, 3, 3]}"), {}, [],
     ["search.model.stages.1", "expansion has 3 entries but depth is 2"], None),
    ("not-a-mapping", "- just\n- a list\n", {}, [], ["must be a mapping of sections"], None),
    ("override-unknown-field", GOOD, {}, ["train.epoch=3"],
     ["command line: train.epoch=3", "unknown field 'epoch'", "epochs"], None),
    ("override-bad-value", GOOD, {}, ["seed=-1"], ["command line: seed=-1", "seed", "greater than or equal to 0"], None),
    ("override-bad-type", GOOD, {}, ["train.batch_size=big"], ["command line: train.batch_size=big", "valid integer"], None),
    ("override-unknown-board", GOOD, {}, ["board=nosuch"], ["command line: board=nosuch", "unknown board 'nosuch'"], None),
    ("override-into-scalar", GOOD, {}, ["seed.x=1"], ["command line: seed.x=1", "seed is not a section"], None),
    ("search-neither-model-nor-space", GOOD.split("search:")[0] + "search:\n  workers: 1\n\ntrain:"
     + GOOD.split("\ntrain:")[1], {}, [], ["search: give exactly one of `model`"], "search:"),
]

NAS = (ROOT / "pipelines" / "digits_nas.yaml").read_text()
NAS_CASES = [
    ("empty-choice-list", NAS.replace("depths: [1, 2], kernels: [3, 5]", "depths: [], kernels: [3, 5]", 1),
     ["search.space.stages.1.depths", "at least 1 item"], "depths: [], kernels"),
    ("resolution-not-divisible", NAS.replace("resolutions: [8, 12, 16]", "resolutions: [8, 10, 16]"),
     ["search.space", "resolutions [10] are not divisible by the network's total stride 4"], None),
    ("bad-kernel-choice", NAS.replace("kernels: [3, 5], expansions: [3, 4, 6]}", "kernels: [3, 4], expansions: [3, 4, 6]}", 1),
     ["search.space.stages.1.kernels.1", "3, 5 or 7"], None),
    ("parents-vs-population", NAS.replace("parents: 2", "parents: 4"),
     ["search.evolution", "parents (4) must be smaller than population (4)"], None),
    ("negative-budget", NAS.replace("sram_bytes: 12000", "sram_bytes: -5"),
     ["search.constraints.sram_bytes", "greater than or equal to 0"], "sram_bytes: -5"),
]


@pytest.mark.parametrize("case", NAS_CASES, ids=[c[0] for c in NAS_CASES])
def test_bad_search_space(case, tmp_path: Path):
    name, text, expected, marker = case
    pipeline = tmp_path / "bad.yaml"
    pipeline.write_text(text)
    result = run_doit("list", f"pipeline={pipeline}", f"build={tmp_path / 'b'}")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    for fragment in expected:
        assert fragment in result.stderr, f"{fragment!r} not in:\n{result.stderr}"
    if marker is not None:
        assert f"bad.yaml:{_line_of(text, marker)}:" in result.stderr, result.stderr


def test_search_budget_nothing_can_meet(tmp_path: Path):
    pipeline = tmp_path / "tiny.yaml"
    pipeline.write_text(NAS.replace("sram_bytes: 12000", "sram_bytes: 2000"))
    result = run_doit("run", f"pipeline={pipeline}", f"build={tmp_path / 'b'}")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr + result.stdout
    assert "no sampled architecture fits the budgets (peak SRAM 2,000 B" in result.stderr


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_gives_clear_error(case, tmp_path: Path):
    name, text, extra, overrides, expected, marker = case
    pipeline = tmp_path / "bad.yaml"
    pipeline.write_text(text)
    for file_name, content in extra.items():
        (tmp_path / file_name).write_text(content)
    build = tmp_path / "build"
    result = run_doit("run", f"pipeline={pipeline}", f"build={build}", *overrides)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    for fragment in expected:
        assert fragment in result.stderr, f"{fragment!r} not in:\n{result.stderr}"
    if marker is not None:
        line = _line_of(text, marker)
        assert f"bad.yaml:{line}:" in result.stderr, result.stderr
    elif not overrides and name not in ("zero-board-sram", "board-reserved-too-big"):
        assert "bad.yaml" in result.stderr
    assert not build.exists() or not any(p.is_file() for p in build.rglob("*")), "half-written artifacts"


def test_yaml_syntax_error_names_line_and_column(tmp_path: Path):
    pipeline = tmp_path / "p.yaml"
    pipeline.write_text("name: x\ndataset:\n  kind: [fashion\n")
    result = run_doit("list", f"pipeline={pipeline}", f"build={tmp_path / 'b'}")
    assert result.returncode == 2
    assert "p.yaml:4:1: YAML syntax error" in result.stderr or "p.yaml:3:" in result.stderr, result.stderr


def test_unknown_pipeline_lists_available(tmp_path: Path):
    result = run_doit("list", "pipeline=nosuch", f"build={tmp_path}")
    assert result.returncode == 2
    assert "pipeline 'nosuch': file not found" in result.stderr
    assert "fashion.yaml" in result.stderr and "digits.yaml" in result.stderr


def test_every_shipped_pipeline_and_board_validates():
    from schemas.loader import available_boards, load_board, load_pipeline

    for board in available_boards():
        assert load_board(board).name == board
    for pipeline in sorted((ROOT / "pipelines").glob("*.yaml")):
        loaded = load_pipeline(str(pipeline))
        assert loaded.pipeline.name == pipeline.stem


def test_every_schema_field_is_documented():
    from pydantic import BaseModel

    from schemas.arch import ArchSpec
    from schemas.board import Board
    from schemas.pipeline import PipelineConfig

    seen = set()

    def walk(model: type[BaseModel]):
        if model in seen:
            return
        seen.add(model)
        assert model.model_config.get("extra") == "forbid", model
        for name, info in model.model_fields.items():
            assert info.description, f"{model.__name__}.{name} has no description"
            for arg in getattr(info.annotation, "__args__", ()) + (info.annotation,):
                if isinstance(arg, type) and issubclass(arg, BaseModel):
                    walk(arg)

    for model in (PipelineConfig, Board, ArchSpec):
        walk(model)
    assert len(seen) >= 12
