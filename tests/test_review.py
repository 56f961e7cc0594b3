"""`doit review` and `doit diff` as a person uses them: the report of a real build (Markdown and one-file HTML,
opened in headless Chromium), a partial build, the lecture's energy and FLOPs figures, and the CI gate of `doit diff`."""
import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from helpers import ROOT, have_cross_tools, run_doit
from mcuforge import frontends
from mcuforge.codegen.layout import depthwise_packed_size
from mcuforge.report import energy

needs_tools = pytest.mark.skipif(not have_cross_tools(), reason="needs arm-none-eabi-gcc and qemu")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


# ---------------------------------------------------------------- the lecture's figures, by hand

def test_energy_model_reproduces_the_lectures_battery_example():
    """100 mW for 1 s = 0.1 J per inference; a 3.7 V 500 mAh battery: 3.7 x 0.5 x 3600 / 0.1 = 66,600 inferences."""
    board = {"clock_mhz": 100.0, "energy": {"active_mw": 100.0, "sleep_uw": 10.0, "voltage_v": 3.7}}
    deploy = {"battery_mah": 500.0, "inferences_per_day": 24}
    result = energy.estimate(board, deploy, instructions=None, macs=100_000_000)  # 1 MAC/cycle -> 1 s
    assert result["seconds"] == pytest.approx(1.0)
    assert result["joules_per_inference"] == pytest.approx(0.1)
    assert result["inferences_per_battery"] == pytest.approx(66_600)
    # a day: 24 x 0.1 J + 10 uW x (86400 - 24) s
    assert result["joules_per_day"] == pytest.approx(2.4 + 10e-6 * (86400 - 24))
    assert result["battery_days"] == pytest.approx(6660 / result["joules_per_day"])


def test_instruction_count_sets_the_time_when_measured():
    board = {"clock_mhz": 216.0, "energy": {"active_mw": 336.0, "sleep_uw": 1300.0, "voltage_v": 3.3}}
    result = energy.estimate(board, {"battery_mah": 500.0, "inferences_per_day": 1}, instructions=2_160_000, macs=1)
    assert result["seconds"] == pytest.approx(0.01)
    assert "QEMU" in result["basis"]


def test_data_movement_costs_more_than_arithmetic():
    from mcuforge.ir.graph import Op, Tensor

    tensors = {"x": Tensor("x", (8, 8, 4), 0.1, 0), "y": Tensor("y", (8, 8, 16), 0.1, 0)}
    import numpy as np

    conv = Op("conv1x1", "c", "QLinearConv", ["x"], "y", consts={"weight": np.zeros((16, 1, 1, 4), np.int8)})
    result = energy.data_movement([conv], tensors, "float")
    macs = 8 * 8 * 16 * 4
    assert result["bytes"] == {"macs": macs, "flash_read": macs + 8 * 8 * 16 * 8, "sram_read": macs,
                               "sram_write": 8 * 8 * 16}
    assert result["movement_over_arithmetic"] > 10


# ---------------------------------------------------------------- a partial build

def test_review_of_a_build_where_nothing_ran_names_the_tasks(tmp_path):
    result = run_doit("review", "pipeline=digits", f"build={tmp_path}")
    assert result.returncode == 0, result.stdout + result.stderr
    ran = set(re.findall(r"^\.  (\S+)", result.stdout, flags=re.M))
    assert ran == {"review"}, result.stdout  # the review never runs the stages it reads
    report = (tmp_path / "review" / "report.md").read_text()
    assert "not run — run `doit schedule pipeline=pipelines/digits.yaml`" in report
    assert "not run — run `doit verify pipeline=pipelines/digits.yaml`" in report
    assert (tmp_path / "review" / "report.html").is_file()


# ---------------------------------------------------------------- a real build

@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    build = tmp_path_factory.mktemp("review") / "digits"
    result = run_doit("run", "pipeline=digits", f"build={build}", "deploy.latency_ms=100")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    # `doit run` ends with the key figures and the report's path
    tail = result.stdout[-1500:]
    assert "accuracy   fp32" in tail and "SRAM" in tail and "flash" in tail and "verify     PASSED" in tail
    assert str(build / "review" / "report.md") in tail
    return build


def _load(path: Path):
    return json.loads(path.read_text())


@needs_tools
def test_report_figures_match_the_artifacts(built: Path):
    report = (built / "review" / "report.md").read_text()
    plan = _load(built / "schedule" / "plan.json")
    sizes = _load(built / "size.json")
    verify = _load(built / "verify" / "report.json")
    # budgets: the lecture's FLOPs budget, 216 MHz x 100 ms = 21.6 M cycles = 21.6 M MACs at 1 MAC/cycle
    assert "216 MHz x 100 ms = 21,600,000 cycles -> 21,600,000 MACs allowed" in report
    assert f"| flash (ELF text + data) | {sizes['flash']:,} B | {sizes['flash_budget_bytes']:,} B | pass |" in report
    assert f"| activation arena alone | {plan['arena_bytes']:,} B |" in report
    instructions = verify["qemu"]["instructions_per_inference"]
    assert f"{instructions:,} instr." in report
    latency = instructions / 216e6 * 1000
    assert f"| latency (ms) | {latency:,.3f} ms | 100.000 ms | pass |" in report
    # the per-layer table: one row per op, MACs adding up to the plan's
    rows = re.findall(r"^\| (\d+) \| (\w+) \| `", report, flags=re.M)
    assert len(rows) == len(verify["layers"]) == len(plan["order"])
    assert f"**{plan['macs']:,}**" in report
    # per-layer instructions (verify's layer-dump run under QEMU) in the table, their sum and the overhead below it
    for layer in verify["layers"]:
        row = rf"^\| {layer['index']} \| \w+ \| `[^`]*` \| [^|]* \| [^|]* \| [\d,]+ \| {layer['instructions']:,} \| "
        assert re.search(row, report, flags=re.M), layer
    counts = verify["layer_instructions"]
    assert f"**{sum(layer['instructions'] for layer in verify['layers']):,}**" in report
    assert f"The layers sum to {counts['layers_sum']:,}, plus {counts['tail']:,}" in report
    assert 0 <= counts["difference"] <= 40 * len(verify["layers"]), counts
    # size breakdown: weights from the ELF equal the quantized model's
    quant = _load(built / "quantize" / "metrics.json")
    # (depthwise filters are stored packed, 2 bytes a weight and their channels padded to 4: mcuforge/codegen/layout.py)
    graph = frontends.load(built / "quantize" / "model_int8.onnx")
    packing = sum(2 * depthwise_packed_size(*op.consts["weight"].shape) - op.consts["weight"].size
                  for op in graph.ops if op.kind == "depthwise")
    assert f"| flash | weights (int8) | {quant['int8_weights'] + packing:,} |" in report
    # verification and accuracy
    assert "Result: **PASSED**" in report and "| host engine vs ONNX Runtime | 500 | 0 |" in report
    assert f"| int8, engine under QEMU | {100 * verify['qemu']['accuracy']:.2f} % |" in report
    assert "battery life" in report and "Moving data costs" in report
    for image in ("memory.png", "layers.png", "size.png"):
        assert f"({image})" in report and (built / "review" / image).is_file()


def test_per_class_accuracy_and_confusion_matrix(built: Path):
    """The int8 confusion matrix equals scikit-learn's on ONNX Runtime's own predictions over the cached test set,
    and the per-class rows of the report follow from it."""
    import numpy as np
    import onnxruntime as ort
    from sklearn.metrics import confusion_matrix

    quant = _load(built / "quantize" / "metrics.json")
    x = np.load(built / "data" / "x_test.npy")
    y = np.load(built / "data" / "y_test.npy")
    session = ort.InferenceSession(str(built / "quantize" / "model_int8.onnx"), providers=["CPUExecutionProvider"])
    inputs = np.ascontiguousarray(x.transpose(0, 3, 1, 2), dtype=np.float32) / np.float32(255.0)
    predicted = np.concatenate([session.run(None, {session.get_inputs()[0].name: inputs[i:i + 1]})[0].argmax(1)
                                for i in range(len(x))])
    expected = confusion_matrix(y, predicted, labels=list(range(len(quant["classes"]))))
    assert quant["int8_confusion"] == expected.tolist()
    assert np.trace(expected) / len(y) == pytest.approx(quant["int8_test_accuracy"])
    report = (built / "review" / "report.md").read_text()
    for i, name in enumerate(quant["classes"]):
        row = expected[i]
        assert f"| {name} | {row.sum()} | {100 * row[i] / row.sum():.2f} % |" in report
    assert "(confusion.png)" in report and (built / "review" / "confusion.png").is_file()


@needs_tools
def test_review_is_reproducible(built: Path, tmp_path):
    first = {p.name: p.read_bytes() for p in (built / "review").iterdir()}
    shutil.rmtree(built / "review")
    result = run_doit("review", "pipeline=digits", f"build={built}", "deploy.latency_ms=100")
    assert result.returncode == 0, result.stderr
    again = {p.name: p.read_bytes() for p in (built / "review").iterdir()}
    assert first == again
    # and up to date when nothing changed
    result = run_doit("review", "pipeline=digits", f"build={built}", "deploy.latency_ms=100")
    assert "-- review" in result.stdout


CHECK_SCRIPT = """<script>
window.addEventListener('load', function () {
  var images = Array.prototype.slice.call(document.images);
  var out = document.createElement('pre');
  out.id = 'mf-check';
  out.textContent = JSON.stringify({
    images: images.length,
    loaded: images.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length,
    budget_rows: document.querySelectorAll('table#budgets tr').length,
    budget_heading: document.getElementById('budgets-heading').textContent
  });
  document.body.appendChild(out);
});
</script>
"""
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars"]


@needs_tools
@pytest.mark.skipif(CHROMIUM is None, reason="needs chromium (Debian package chromium; scripts/system-deps.sh)")
def test_html_report_in_headless_chromium(built: Path, tmp_path):
    page = built / "review" / "report.html"
    text = page.read_text()
    assert 'src="data:image/png;base64,' in text and "<img" in text
    assert not re.search(r'src="(?!data:)', text)  # one file: nothing to fetch
    checked = tmp_path / "checked.html"
    checked.write_text(text.replace("</body>", CHECK_SCRIPT + "</body>"))
    common = [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([*common, "--virtual-time-budget=5000", "--dump-dom", checked.as_uri()],
                         capture_output=True, text=True, timeout=120)
    found = re.search(r'<pre id="mf-check">(.*?)</pre>', dom.stdout, flags=re.S)
    assert found, dom.stdout[-2000:] + dom.stderr[-2000:]
    result = json.loads(html.unescape(found.group(1)))
    assert result["images"] >= 3
    assert result["loaded"] == result["images"], result
    assert result["budget_rows"] >= 6 and result["budget_heading"] == "Budgets"
    shot = tmp_path / "report.png"
    subprocess.run([*common, "--window-size=1200,3000", f"--screenshot={shot}", page.as_uri()],
                   capture_output=True, text=True, timeout=120)
    assert shot.is_file() and shot.stat().st_size > 50_000  # a rendered page, not a blank one
    from PIL import Image

    with Image.open(shot) as image:
        assert image.size == (1200, 3000)
        assert len(image.convert("L").getcolors(maxcolors=1 << 16) or range(1 << 16)) > 16


# ---------------------------------------------------------------- doit diff

def _pipeline(tmp_path: Path, name: str, **deploy) -> Path:
    text = (ROOT / "pipelines" / "digits.yaml").read_text().replace("name: digits", f"name: {name}")
    for key, value in deploy.items():
        if key == "board":
            text = text.replace("board: stm32f746", f"board: {value}")
        else:
            text = text.replace("deploy:\n", f"deploy:\n  {key}: {value}\n")
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return path


@needs_tools
def test_diff_of_two_boards(built: Path, tmp_path):
    b_yaml = _pipeline(tmp_path, "digits_m3", board="lpc1768", latency_ms=100)
    b_build = tmp_path / "m3"
    result = run_doit("run", f"pipeline={b_yaml}", f"build={b_build}")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    a_yaml = _pipeline(tmp_path, "digits", latency_ms=100)
    diff = run_doit("diff", f"a={a_yaml}", f"b={b_yaml}", f"build_a={built}", f"build_b={b_build}")
    assert diff.returncode == 0, diff.stdout + diff.stderr
    out = diff.stdout
    assert "| `deploy.board` | stm32f746 | lpc1768 |" in out
    assert "| `resolved.requant` | float | fixed |" in out
    assert "| `board.clock_mhz` | 216.0 | 100.0 |" in out
    assert re.search(r"^\| flash \(ELF\) \| [\d,]+ B \| [\d,]+ B \| [+-][\d,]+", out, flags=re.M), out
    assert "b breaks no budget that a met." in out


@needs_tools
def test_diff_fails_when_b_breaks_a_budget_a_met(built: Path, tmp_path):
    a_yaml = _pipeline(tmp_path, "digits", latency_ms=100)
    b_yaml = _pipeline(tmp_path, "digits_tight", latency_ms=0.5)  # same artifacts, a latency budget it cannot meet
    diff = run_doit("diff", f"a={a_yaml}", f"b={b_yaml}", f"build_a={built}", f"build_b={built}")
    assert diff.returncode != 0
    assert "| `deploy.latency_ms` | 100.0 | 0.5 |" in diff.stdout
    assert "b breaks budgets that a met" in diff.stdout + diff.stderr
    assert "latency (ms)" in diff.stderr + diff.stdout


def test_diff_names_the_missing_build(tmp_path):
    a_yaml = _pipeline(tmp_path, "digits")
    diff = run_doit("diff", f"a={a_yaml}", f"b={a_yaml}", f"build_a={tmp_path / 'none'}", f"build_b={tmp_path / 'none'}")
    assert diff.returncode != 0
    assert "doit run pipeline=" in diff.stdout + diff.stderr
    assert "Traceback" not in diff.stderr
