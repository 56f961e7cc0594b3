"""Anomaly detection end to end through doit on a small DCASE-layout folder (machine_sound_folder, written from
machine_synth clips), and the clear errors of bad machine sound input. The device's clip scores are checked
against the mean squared error computed here from ONNX Runtime's float output (an independent reference), the
metrics against scikit-learn."""
import json
import wave
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from helpers import have_cross_tools, run_doit
from mcuforge.audio import machine_folder, machine_synth
from mcuforge.core.errors import McuforgeError

YAML = """
name: anomaly_small
seed: 3
dataset: {kind: machine_sound_folder, path: sounds}
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


@pytest.mark.slow
@pytest.mark.skipif(not have_cross_tools(), reason="needs arm-none-eabi-gcc and qemu")
def test_folder_pipeline_end_to_end(tmp_path):
    import onnxruntime as ort

    _folder(tmp_path / "sounds")
    (tmp_path / "p.yaml").write_text(YAML)
    build = tmp_path / "build"
    result = run_doit("run", f"pipeline={tmp_path / 'p.yaml'}", f"build={build}")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "AUC        fp32" in result.stdout
    report = json.loads((build / "verify" / "report.json").read_text())
    assert report["passed"], report["problems"]
    assert report["host"]["vs_ort"]["differing"] == 0 and report["qemu"]["vs_host"]["differing"] == 0
    score = report["anomaly_score"]
    assert score["features_equal_ort_input"]
    assert score["host_acc_equal_reference"] == score["clips"] == score["host_decision_equal_reference"]
    assert score["qemu_bytes_differing_vs_host"] == 0 and score["qemu_score_bytes"] == 9 * score["clips"]

    # the device's scores against ORT's float reconstruction of the same clips, in float64 here
    card = json.loads((build / "data" / "card.json").read_text())
    scale, zp = card["feature_scale"], card["feature_zero_point"]
    host = np.fromfile(build / "verify" / "work" / "host_scores.bin", dtype=[("acc", "<i8"), ("anomalous", "u1")])
    clips = np.fromfile(build / "verify" / "work" / "clips.bin", dtype=np.int8).reshape(len(host), *card["shape"])
    frames = 3
    vectors = clips.shape[1] - frames + 1
    windows = np.stack([clips[:, v:v + frames].reshape(len(clips), -1) for v in range(vectors)], axis=1)
    real = (windows.astype(np.float32) - np.float32(zp)) * np.float32(scale)
    session = ort.InferenceSession(str(build / "quantize" / "model_int8.onnx"), providers=["CPUExecutionProvider"])
    out = session.run(None, {"input": real.reshape(-1, real.shape[-1])})[0].reshape(real.shape)
    mse = ((out.astype(np.float64) - real.astype(np.float64)) ** 2).mean(axis=(1, 2))
    grid = score["grid"]["grid"]
    assert host["acc"] * grid ** 2 / real[0].size == pytest.approx(mse, rel=2e-3)
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


def test_folder_errors_name_the_folder_or_file(tmp_path):
    root = _folder(tmp_path / "sounds", train=1, test=1)
    machine_folder.check(root)
    for wav in (root / "test" / "anomaly").glob("*.wav"):
        wav.unlink()
    with pytest.raises(McuforgeError, match=r"test/anomaly has no \.wav files \(anomalous test clips\)"):
        machine_folder.check(root)
    with pytest.raises(McuforgeError, match="does not exist"):
        machine_folder.check(tmp_path / "nowhere")
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x10\x00\x00\x00WAVEnot a wav")
    with pytest.raises(McuforgeError, match="cannot read .*corrupt.wav"):
        machine_folder.read_wav(corrupt, 16000, 16000)
    stereo = tmp_path / "stereo.wav"
    _write_wav(stereo, np.zeros(200, np.int16), channels=2)
    with pytest.raises(McuforgeError, match="stereo.wav is 2 channel"):
        machine_folder.read_wav(stereo, 16000, 16000)


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
