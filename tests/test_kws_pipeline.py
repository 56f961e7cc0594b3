"""Keyword spotting from raw audio, end to end and small: espeak-ng clips -> the integer front end -> a CNN -> int8
-> C with the front end chained in front of the network (mf_model_invoke_pcm) -> host and QEMU fed raw PCM.

Independent references: ONNX Runtime for the network (on the features the Python reference computed), the Python
front end for the C front end's bytes (every verify clip on the host, the layer samples under QEMU), and the int8
features recomputed here from the cached test PCM. Accuracy is not asserted (two epochs on a few clips); the full
pipeline's figures are in the issue notes."""
import json
from pathlib import Path

import numpy as np
import pytest

from helpers import have_cross_tools, run_doit

needs_tools = pytest.mark.skipif(not have_cross_tools(), reason="needs arm-none-eabi-gcc and qemu")
SMALL = ["dataset.samples_per_class=20", "train.epochs=2", "deploy.verify_samples=12", "deploy.layer_samples=2",
         "quantize.calibration_samples=64"]


@pytest.fixture(scope="module")
def kws_build(tmp_path_factory) -> Path:
    build = tmp_path_factory.mktemp("kws") / "kws"
    result = run_doit("run", "pipeline=kws", f"build={build}", *SMALL)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return build


@needs_tools
def test_engine_fed_raw_pcm_matches_the_references(kws_build: Path):
    report = json.loads((kws_build / "verify" / "report.json").read_text())
    assert report["passed"], report["problems"]
    assert report["host"]["vs_ort"]["differing"] == 0 and report["qemu"]["vs_host"]["differing"] == 0
    front = report["frontend"]
    assert front["host_vs_reference"]["differing"] == 0 and front["host_vs_reference"]["bytes"] == 12 * 32 * 32
    assert front["qemu_vs_reference"]["differing"] == 0 and front["qemu_vs_reference"]["bytes"] == 2 * 32 * 32
    # the front end is counted apart: a real share of the whole inference, not zero, not all of it
    whole = report["qemu"]["instructions_per_inference"]
    assert 0.02 * whole < front["instructions"] < 0.6 * whole
    review = (kws_build / "review" / "report.md").read_text()
    assert "## Audio front end" in review and f"{front['instructions']:,}" in review


def test_cached_features_are_the_front_end_of_the_cached_clips(kws_build: Path):
    """The network was trained and verified on x = features + 128 of exactly the clips verify feeds the engine."""
    from mcuforge.audio.features import extract
    from schemas.frontend import FrontendConfig

    card = json.loads((kws_build / "data" / "card.json").read_text())
    config = json.loads((kws_build / "config.resolved.json").read_text())
    pcm = np.load(kws_build / "data" / "pcm_test.npy")
    x = np.load(kws_build / "data" / "x_test.npy")
    assert pcm.dtype == np.int16 and pcm.shape == (len(x), 16000)
    features = extract(pcm, FrontendConfig(**config["frontend"]), card["frontend"]["scale"],
                       card["frontend"]["zero_point"])
    assert np.array_equal(features.astype(np.int16) + 128, x[..., 0].astype(np.int16))
    assert set(card["clips"]["info"]["speakers"]["test"]).isdisjoint(card["clips"]["info"]["speakers"]["train"])


def test_export_takes_raw_pcm_standalone(kws_build: Path, tmp_path: Path):
    """The exported library alone (its .mk fragment, -Wall -Wextra -Werror, C99), fed the verify clips' raw PCM through
    kws_invoke_pcm, gives verify's host output bytes."""
    import shutil
    import subprocess

    folder = tmp_path / "kws"
    shutil.copytree(kws_build / "export" / "kws", folder)
    (tmp_path / "main.c").write_text(
        '#include <stdio.h>\n#include "kws.h"\n'
        "int main(int argc, char **argv) {\n"
        "    static int16_t pcm[KWS_PCM_SAMPLES];\n"
        "    FILE *in, *out;\n"
        "    if (argc != 3 || kws_init() != KWS_OK) return 2;\n"
        "    in = fopen(argv[1], \"rb\"); out = fopen(argv[2], \"wb\");\n"
        "    if (!in || !out) return 3;\n"
        "    while (fread(pcm, 2, KWS_PCM_SAMPLES, in) == KWS_PCM_SAMPLES) {\n"
        "        if (kws_invoke_pcm(pcm) != KWS_OK) return 4;\n"
        "        fwrite(kws_output(), 1, KWS_OUTPUT_BYTES, out);\n"
        "    }\n"
        "    fclose(in); return fclose(out) != 0;\n}\n")
    (tmp_path / "Makefile").write_text(
        "KWS_DIR := kws\ninclude kws/kws.mk\n"
        "app: main.c $(KWS_SRCS)\n\tgcc -std=c99 -O2 -Wall -Wextra -Werror $(KWS_CFLAGS) -Ikws/include "
        "main.c $(KWS_SRCS) -o app -lm\n")
    build = subprocess.run(["make", "-s", "app"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr[-3000:]
    pcm = np.load(kws_build / "data" / "pcm_test.npy")[:12]
    pcm.astype("<i2").tofile(tmp_path / "pcm.bin")
    run = subprocess.run(["./app", "pcm.bin", "out.bin"], cwd=tmp_path, capture_output=True, timeout=120)
    assert run.returncode == 0, run.stderr
    expected = (kws_build / "verify" / "work" / "host_outputs.bin").read_bytes()
    assert (tmp_path / "out.bin").read_bytes() == expected
