"""Anomaly detection end to end through doit on a small DCASE-layout folder (machine_sound_folder, written from
machine_synth clips), and the clear errors of bad machine sound input. The device's clip scores (from int8 features
and from raw PCM through the front end on the device, host and QEMU, and through the exported library) are checked
against the mean squared error computed here from ONNX Runtime's float output (an independent reference), the
front end's bytes against the Python front end, the metrics against scikit-learn."""
import json
import wave
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from helpers import have_cross_tools, run_doit
from mcuforge.audio import machine_synth
from mcuforge.core.errors import McuforgeError

YAML = """
name: anomaly_small
seed: 3
dataset: {kind: machine_sound_folder, path: sounds, val_fraction: 0.5}
frontend: {kind: log_mel, window_ms: 32, hop_ms: 32, fft_size: 512, mel_bins: 32, log_floor: 1.0e-9}
autoencoder: {kind: dense, frames: 3, width: 32, depth: 2, bottleneck: 4}
train: {epochs: 3, batch_size: 64, lr: 0.002, weight_decay: 0.0001, threads: 1}
quantize: {calibration_samples: 256}
deploy: {board: stm32l4r5, verify_samples: 4, layer_samples: 1}
"""


def _write_wav(path: Path, pcm: np.ndarray, rate: int = 16000, channels: int = 1) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(pcm.astype("<i2").tobytes())


def _folder(root: Path, train: int = 24, test: int = 12) -> Path:
    counts = {"train": (train, 0), "val": (1, 1), "test": (test, test)}
    sets = machine_synth.generate(["id_00", "id_01"], counts, [], 1.0, 5, 16000, 16000)
    for split in ("train", "test"):
        s = sets[split]
        for index, (pcm, machine, label) in enumerate(zip(s.pcm, s.machine, s.label)):
            name = "anomaly" if label else "normal"
            _write_wav(root / split / name / f"{name}_id_{machine:02d}_{index:05d}.wav", pcm)
    return root


@pytest.fixture(scope="module")
def folder_build(tmp_path_factory) -> Path:
    """One `doit run` of YAML on a small DCASE-layout folder (host, QEMU, export)."""
    root = tmp_path_factory.mktemp("anomaly_folder")
    _folder(root / "sounds")
    (root / "p.yaml").write_text(YAML)
    build = root / "build"
    result = run_doit("run", f"pipeline={root / 'p.yaml'}", f"build={build}")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "AUC        fp32" in result.stdout
    return build


def _ort_clip_mse(build: Path, clips: np.ndarray, frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Each clip's mean squared reconstruction error of its windows through ONNX Runtime's float output (float64),
    and the most the device's integer grid may differ from it: the grid carries each scale as an integer multiplier
    m of g (docs in mcuforge/ir/anomaly.py), so each difference is off by at most
    e = |q_in - zp_in| |m_in g - s_in| + |q_out - zp_out| |m_out g - s_out|, each squared error by 2 |d| e + e^2."""
    import onnxruntime as ort

    card = json.loads((build / "data" / "card.json").read_text())
    grid = json.loads((build / "verify" / "report.json").read_text())["anomaly_score"]["grid"]
    scale, zp = card["feature_scale"], card["feature_zero_point"]
    vectors = clips.shape[1] - frames + 1
    windows = np.stack([clips[:, v:v + frames].reshape(len(clips), -1) for v in range(vectors)], axis=1)
    real = (windows.astype(np.float32) - np.float32(zp)) * np.float32(scale)
    model = build / "quantize" / "model_int8.onnx"
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    out = session.run(None, {"input": real.reshape(-1, real.shape[-1])})[0].reshape(real.shape).astype(np.float64)
    import onnx
    from onnx import numpy_helper

    inits = {i.name: numpy_helper.to_array(i) for i in onnx.load(str(model)).graph.initializer}
    out_node = [n for n in onnx.load(str(model)).graph.node if n.op_type == "DequantizeLinear"][-1]
    out_scale = float(inits[out_node.input[1]])
    g = grid["grid"]
    d = out - real.astype(np.float64)
    error = (np.abs(windows.astype(np.float64) - zp) * abs(grid["input_multiplier"] * g - np.float32(scale))
             + np.abs(np.round(out / out_scale)) * abs(grid["output_multiplier"] * g - out_scale))
    return (d ** 2).mean(axis=(1, 2)), (2 * np.abs(d) * error + error ** 2).mean(axis=(1, 2))


RECORD = [("acc", "<i8"), ("anomalous", "u1")]


@pytest.mark.slow
@pytest.mark.skipif(not have_cross_tools(), reason="needs arm-none-eabi-gcc and qemu")
def test_folder_pipeline_end_to_end(folder_build):
    build = folder_build
    report = json.loads((build / "verify" / "report.json").read_text())
    assert report["passed"], report["problems"]
    assert report["host"]["vs_ort"]["differing"] == 0 and report["qemu"]["vs_host"]["differing"] == 0
    score = report["anomaly_score"]
    assert score["features_equal_ort_input"]
    assert score["host_acc_equal_reference"] == score["clips"] == score["host_decision_equal_reference"]
    assert score["qemu_bytes_differing_vs_host"] == 0 and score["qemu_score_bytes"] == 9 * score["clips"]

    # the device's scores against ORT's float reconstruction of the same clips, in float64 here
    card = json.loads((build / "data" / "card.json").read_text())
    host = np.fromfile(build / "verify" / "work" / "host_scores.bin", dtype=RECORD)
    clips = np.fromfile(build / "verify" / "work" / "clips.bin", dtype=np.int8).reshape(len(host), *card["shape"])
    frames = 3
    mse, bound = _ort_clip_mse(build, clips, frames)
    grid = score["grid"]["grid"]
    values = (clips.shape[1] - frames + 1) * frames * clips.shape[2]
    assert np.all(np.abs(host["acc"] * grid ** 2 / values - mse) <= bound + 1e-12)
    assert np.all(bound <= 0.01 * mse)  # the grid's error: under 1 % of the score
    quant = json.loads((build / "quantize" / "metrics.json").read_text())
    assert list(host["anomalous"]) == [int(a > quant["threshold_acc"]) for a in host["acc"]]

    # metrics against scikit-learn on the saved test scores
    scores = json.loads((build / "quantize" / "scores.json").read_text())
    label, machine, int8 = (np.asarray(scores[k]) for k in ("label", "machine", "int8"))
    for index, name in enumerate(card["machine_ids"]):
        mine = machine == index
        assert quant["int8_test"]["per_machine_id"][name]["auc"] == pytest.approx(
            roc_auc_score(label[mine], int8[mine]), abs=1e-9)
    # severity 1 (plainly audible faults) but 24 training clips and 3 epochs: well above chance (0.5), not a figure of
    # merit (pipelines/anomaly.yaml's is in the review and the issue notes)
    assert quant["int8_test"]["mean_over_ids"]["auc"] > 0.7
    assert "## Anomaly detection" in (build / "review" / "report.md").read_text()


@pytest.mark.slow
@pytest.mark.skipif(not have_cross_tools(), reason="needs arm-none-eabi-gcc and qemu")
def test_device_scores_raw_pcm(folder_build):
    """The front end on the device: the clips' raw PCM through mf_model_anomaly_score_pcm on the host and under QEMU.
    Its features equal the Python front end's (mcuforge.audio.features, an independent implementation) computed here
    from the same PCM, and its scores the MSE of ONNX Runtime's float reconstruction of those features."""
    from mcuforge.audio import features
    from schemas.frontend import FrontendConfig

    build = folder_build
    work = build / "verify" / "work"
    report = json.loads((build / "verify" / "report.json").read_text())
    score, front = report["anomaly_score"], report["frontend"]
    assert score["pcm_clips"] == score["clips"] == score["host_pcm_acc_equal_reference"]
    assert score["host_pcm_decision_equal_reference"] == score["clips"] and score["qemu_input"] == "pcm"
    assert front["host_vs_reference"]["differing"] == 0 and front["qemu_vs_reference"]["differing"] == 0
    assert front["instructions"] > 0 and score["instructions_per_clip"] > front["instructions"]

    cfg = json.loads((build / "config.resolved.json").read_text())
    card = json.loads((build / "data" / "card.json").read_text())
    frontend = FrontendConfig(**cfg["frontend"])
    pcm = np.fromfile(work / "pcm_clips.bin", dtype="<i2").reshape(score["clips"], frontend.clip_samples)
    clips = features.extract(pcm, frontend, card["feature_scale"], card["feature_zero_point"])
    dumped = np.fromfile(work / "frontend_host" / f"layer_{len(report['layers']):03d}.bin", dtype=np.int8)
    assert np.array_equal(dumped.reshape(clips.shape), clips)
    host = np.fromfile(work / "host_pcm_scores.bin", dtype=RECORD)
    qemu = np.fromfile(work / "qemu_scores.bin", dtype=RECORD)
    assert np.array_equal(host, qemu)
    values = (clips.shape[1] - 3 + 1) * 3 * clips.shape[2]
    mse, bound = _ort_clip_mse(build, clips, 3)
    assert np.all(np.abs(host["acc"] * score["grid"]["grid"] ** 2 / values - mse) <= bound + 1e-12)
    review = (build / "review" / "report.md").read_text()
    assert "instructions per clip (every window and its score) (QEMU)" in review
    assert "the clip's features in the arena" in review


@pytest.mark.slow
@pytest.mark.skipif(not have_cross_tools(), reason="needs arm-none-eabi-gcc and qemu")
def test_export_scores_raw_pcm_standalone(folder_build, tmp_path):
    """The exported library alone (its .mk, C99, -Wall -Wextra -Werror), fed the verify clips' raw PCM through
    anomaly_small_score_pcm, gives verify's host score records; anomaly_small_score on their features the same."""
    import shutil
    import subprocess

    folder = tmp_path / "anomaly_small"
    shutil.copytree(folder_build / "export" / "anomaly_small", folder)
    (tmp_path / "main.c").write_text(
        '#include <stdio.h>\n#include "anomaly_small.h"\n'
        "static int16_t pcm[ANOMALY_SMALL_PCM_SAMPLES];\n"
        "int main(int argc, char **argv) {\n"
        "    FILE *in, *out;\n"
        "    int64_t acc; int anomalous; unsigned char record[9]; int i;\n"
        "    if (argc != 3 || anomaly_small_init() != ANOMALY_SMALL_OK) return 2;\n"
        "    in = fopen(argv[1], \"rb\"); out = fopen(argv[2], \"wb\");\n"
        "    if (!in || !out) return 3;\n"
        "    while (fread(pcm, 2, ANOMALY_SMALL_PCM_SAMPLES, in) == ANOMALY_SMALL_PCM_SAMPLES) {\n"
        "        if (anomaly_small_score_pcm(pcm, &acc, &anomalous) != ANOMALY_SMALL_OK) return 4;\n"
        "        for (i = 0; i < 8; i++) record[i] = (unsigned char)(((uint64_t)acc >> (8 * i)) & 0xFFu);\n"
        "        record[8] = (unsigned char)(anomalous != 0);\n"
        "        fwrite(record, 1, 9, out);\n"
        "    }\n"
        "    fclose(in); return fclose(out) != 0;\n}\n")
    (tmp_path / "Makefile").write_text(
        "ANOMALY_SMALL_DIR := anomaly_small\ninclude anomaly_small/anomaly_small.mk\n"
        "app: main.c $(ANOMALY_SMALL_SRCS)\n\tgcc -std=c99 -O2 -Wall -Wextra -Werror $(ANOMALY_SMALL_CFLAGS) "
        "-Ianomaly_small/include main.c $(ANOMALY_SMALL_SRCS) -o app -lm\n")
    built = subprocess.run(["make", "-s", "app"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr[-3000:]
    work = folder_build / "verify" / "work"
    ran = subprocess.run(["./app", str(work / "pcm_clips.bin"), "out.bin"], cwd=tmp_path, capture_output=True,
                         timeout=120)
    assert ran.returncode == 0, ran.stderr
    assert (tmp_path / "out.bin").read_bytes() == (work / "host_pcm_scores.bin").read_bytes()


def test_folder_errors_name_the_folder_or_file(tmp_path):
    from mcuforge.audio.wav import load_clip
    from mcuforge.ml.audio_folders import check_machine_folder

    root = _folder(tmp_path / "sounds", train=1, test=1)
    check_machine_folder(root)
    (root / "val" / "normal").mkdir(parents=True)
    with pytest.raises(McuforgeError, match=r"sounds/val exists but has no normal WAV files"):
        check_machine_folder(root)
    (root / "val" / "normal").rmdir()
    (root / "val").rmdir()
    for wav in (root / "test" / "anomaly").glob("*.wav"):
        wav.unlink()
    with pytest.raises(McuforgeError, match=r"no anomaly WAV files for test in .*sounds/test/anomaly"):
        check_machine_folder(root)
    with pytest.raises(McuforgeError, match="does not exist"):
        check_machine_folder(tmp_path / "nowhere")
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x10\x00\x00\x00WAVEnot a wav")
    with pytest.raises(McuforgeError, match=r"corrupt.wav: corrupt"):
        load_clip(corrupt, 16000, 16000)
    stereo = tmp_path / "stereo.wav"
    _write_wav(stereo, np.zeros(200, np.int16), channels=2)
    with pytest.raises(McuforgeError, match=r"stereo.wav: .*mono WAV files are required"):
        load_clip(stereo, 16000, 16000)


def test_config_errors(tmp_path):
    from mcuforge.core.errors import ConfigError
    from tasks import config as config_stage

    (tmp_path / "p.yaml").write_text(YAML)
    with pytest.raises(ConfigError, match=r"dataset.path: .*sounds does not exist \(machine_sound_folder needs train/normal"):
        config_stage.resolve(str(tmp_path / "p.yaml"), {})
    _folder(tmp_path / "sounds", train=1, test=1)
    with pytest.raises(ConfigError, match=r"autoencoder.frames \(40\) is more than the front end's 31 frames"):
        config_stage.resolve(str(tmp_path / "p.yaml"), {"autoencoder.frames": "40"})
    cfg = config_stage.resolve(str(tmp_path / "p.yaml"), {})
    assert cfg["dataset"]["resolution"] is None and cfg["search"] is None
