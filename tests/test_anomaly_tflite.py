"""A ready int8 autoencoder `.tflite` (deploy.model) scored on the device from raw PCM, like MLPerf Tiny's anomaly
detection model: 640-128-128-128-128-8-128-128-128-128-640, FULLY_CONNECTED + ReLU, int8 in and out, built here
with the flatbuffer object API (seeded random weights; activation scales from a float pass over real features).

The references are independent of the engine: TFLite Micro's interpreter (the tflite-micro package) on the windows
of the features the Python front end computes from the same PCM, and the mean squared error of its dequantised
output computed here in float64."""
import json
from pathlib import Path

import numpy as np
import pytest

from helpers import have_cross_tools, run_doit
from test_tflite import new_tensor, op_code_index, quantization, schema, write_model

FRONTEND = {"kind": "log_mel", "window_ms": 64, "hop_ms": 32, "fft_size": 1024, "mel_bins": 128,
            "log_floor": 1.0e-9}
FRONTEND_YAML = "{kind: log_mel, window_ms: 64, hop_ms: 32, fft_size: 1024, mel_bins: 128, log_floor: 1.0e-9}"
MLPERF_AD = (128, 128, 128, 128, 8, 128, 128, 128, 128)
INPUT_QUANT = (0.09, 100)  # features in natural-log units: [-20.7, 2.5]


def _frontend(frontend: dict | None = None):
    from schemas.frontend import FrontendConfig

    return FrontendConfig(**(frontend or FRONTEND))


def _clips(count: int, seed: int, frontend=None) -> tuple[np.ndarray, np.ndarray]:
    """machine_synth PCM of one machine (half normal, half anomalous) and its int8 features at INPUT_QUANT."""
    from mcuforge.audio import features, machine_synth

    front = _frontend(frontend)
    counts = {"train": (0, 0), "val": (0, 0), "test": ((count + 1) // 2, count // 2)}
    pcm = machine_synth.generate(["id_00"], counts, [], 1.0, seed, front.sample_rate, front.clip_samples)["test"].pcm
    return pcm, features.extract(pcm, front, *INPUT_QUANT)


def _windows(clips: np.ndarray, frames: int) -> np.ndarray:
    vectors = clips.shape[1] - frames + 1
    return np.stack([clips[:, v:v + frames].reshape(len(clips), -1) for v in range(vectors)], axis=1)


def autoencoder_model(path: Path, seed: int, widths=MLPERF_AD, frames: int = 5, values: int = 128,
                      output_values: int | None = None) -> Path:
    """An int8 dense autoencoder .tflite: frames x values -> widths (ReLU) -> output_values (linear)."""
    s = schema()
    rng = np.random.default_rng(seed)
    model = s.ModelT()
    model.version = 3
    model.buffers = [s.BufferT()]
    model.operatorCodes = []
    fc = op_code_index(model, s.BuiltinOperator.FULLY_CONNECTED)
    graph = s.SubGraphT()
    graph.tensors, graph.operators = [], []

    def tensor(shape, type_name: str, name: str, quant, data=None) -> int:
        return new_tensor(model, graph, shape, type_name, name, quant, data)

    inputs = frames * values
    dims = [inputs, *widths, output_values or inputs]
    _, clips = _clips(4, seed + 1, None) if values == 128 else (None, None)
    if clips is not None:  # real features set the activation ranges
        x = (_windows(clips, frames).reshape(-1, inputs).astype(np.float64) - INPUT_QUANT[1]) * INPUT_QUANT[0]
    else:
        x = rng.uniform(-10, 2, (64, inputs))
    scale, zero_point = INPUT_QUANT
    current = tensor([1, inputs], "INT8", "input", quantization(scale, zero_point))
    first = current
    for layer, (fan_in, fan_out) in enumerate(zip(dims[:-1], dims[1:])):
        last = layer == len(dims) - 2
        w = rng.normal(0.0, np.sqrt(2.0 / fan_in), (fan_out, fan_in))
        w_scale = float(np.float32(np.abs(w).max() / 127))
        wq = np.clip(np.round(w / w_scale), -127, 127).astype(np.int8)
        b = rng.normal(0.0, 0.2, fan_out)
        bq = np.round(b / (scale * w_scale)).astype(np.int32)
        y = x @ (wq.astype(np.float64) * w_scale).T + bq * scale * w_scale
        if last:
            out_scale, out_zp = float(np.float32(max(np.abs(y).max(), 1e-3) / 127)), 0
        else:
            y = np.maximum(y, 0.0)
            out_scale, out_zp = float(np.float32(max(y.max(), 1e-3) / 255)), -128
        weights = tensor([fan_out, fan_in], "INT8", f"w{layer}", quantization(w_scale, 0), wq)
        bias = tensor([fan_out], "INT32", f"b{layer}", quantization(scale * w_scale, 0), bq)
        out = tensor([1, fan_out], "INT8", "output" if last else f"h{layer}", quantization(out_scale, out_zp))
        options = s.FullyConnectedOptionsT()
        options.fusedActivationFunction = s.ActivationFunctionType.NONE if last else s.ActivationFunctionType.RELU
        op = s.OperatorT()
        op.opcodeIndex = fc
        op.inputs = np.array([current, weights, bias], dtype=np.int32)
        op.outputs = np.array([out], dtype=np.int32)
        op.builtinOptionsType = s.BuiltinOptions.FullyConnectedOptions
        op.builtinOptions = options
        graph.operators.append(op)
        current, scale, x = out, out_scale, y
    graph.inputs = np.array([first], dtype=np.int32)
    graph.outputs = np.array([current], dtype=np.int32)
    model.subgraphs = [graph]
    return write_model(model, path)


def _yaml(model: str, threshold: float, frames: int = 5, samples: int = 4) -> str:
    return (f"name: ad_tflite\nseed: 7\nfrontend: {FRONTEND_YAML}\n"
            f"autoencoder: {{frames: {frames}, threshold: {threshold:.9e}}}\n"
            f"deploy: {{board: stm32l4r5, model: {model}, verify_samples: {samples}, layer_samples: 1}}\n")


def _tflm_mse(model: Path, clips: np.ndarray, frames: int = 5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """TFLite Micro's int8 output for every window, and each clip's float64 MSE of the dequantised output."""
    from tflite_micro.python.tflite_micro import runtime

    interp = runtime.Interpreter.from_file(str(model), arena_size=1 << 20)
    windows = _windows(clips, frames)
    out = np.zeros_like(windows)
    for c in range(windows.shape[0]):
        for v in range(windows.shape[1]):
            interp.set_input(windows[c, v].reshape(1, -1), 0)
            interp.invoke()
            out[c, v] = interp.get_output(0).reshape(-1)
    o = interp.get_output_details(0)["quantization_parameters"]
    real_out = (out.astype(np.float64) - o["zero_points"][0]) * np.float64(o["scales"][0])
    real_in = (windows.astype(np.float64) - INPUT_QUANT[1]) * np.float64(np.float32(INPUT_QUANT[0]))
    return windows, out - o["zero_points"][0], ((real_out - real_in) ** 2).mean(axis=(1, 2))


@pytest.mark.slow
@pytest.mark.skipif(not have_cross_tools(), reason="needs arm-none-eabi-gcc and qemu")
def test_ready_autoencoder_scored_from_pcm(tmp_path: Path):
    model = autoencoder_model(tmp_path / "ad.tflite", seed=11)
    pcm, clips = _clips(4, 7)  # the clips verify draws (seed 7, 4 samples)
    windows, centred_out, mse = _tflm_mse(model, clips)
    threshold = float(np.sort(mse)[1:3].mean())  # between the 2nd and 3rd score: both decisions occur
    (tmp_path / "p.yaml").write_text(_yaml("ad.tflite", threshold))
    build = tmp_path / "build"
    result = run_doit("run", f"pipeline={tmp_path / 'p.yaml'}", f"build={build}")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads((build / "verify" / "report.json").read_text())
    assert report["passed"], report["problems"]
    assert report["reference"] == "tflite-micro"
    assert report["host"]["vs_ort"]["differing"] == 0 and report["qemu"]["vs_host"]["differing"] == 0
    score, front = report["anomaly_score"], report["frontend"]
    assert score["host_pcm_acc_equal_reference"] == score["clips"] == 4
    assert score["qemu_bytes_differing_vs_host"] == 0 and score["qemu_input"] == "pcm"
    assert front["host_vs_reference"]["differing"] == 0 and front["qemu_vs_reference"]["differing"] == 0

    work = build / "verify" / "work"
    assert np.array_equal(np.fromfile(work / "pcm_clips.bin", dtype="<i2").reshape(pcm.shape), pcm)
    host = np.fromfile(work / "host_pcm_scores.bin", dtype=[("acc", "<i8"), ("anomalous", "u1")])
    assert (work / "qemu_scores.bin").read_bytes() == (work / "host_pcm_scores.bin").read_bytes()
    # the device's integer grid carries each scale as a multiple m of g (mcuforge/ir/anomaly.py): each difference is
    # off by at most |q_in - zp_in| |m_in g - s_in| + |q_out - zp_out| |m_out g - s_out|
    g, multipliers = score["grid"]["grid"], (score["grid"]["input_multiplier"], score["grid"]["output_multiplier"])
    from tflite_micro.python.tflite_micro import runtime

    out_scale = float(runtime.Interpreter.from_file(str(model), arena_size=1 << 20)
                      .get_output_details(0)["quantization_parameters"]["scales"][0])
    error = (np.abs(windows.astype(np.float64) - INPUT_QUANT[1]) * abs(multipliers[0] * g - np.float32(INPUT_QUANT[0]))
             + np.abs(centred_out.astype(np.float64)) * abs(multipliers[1] * g - out_scale))
    real_in = (windows.astype(np.float64) - INPUT_QUANT[1]) * np.float64(np.float32(INPUT_QUANT[0]))
    d = centred_out * out_scale - real_in
    bound = (2 * np.abs(d) * error + error ** 2).mean(axis=(1, 2))
    assert np.all(np.abs(host["acc"] * g ** 2 / (clips.shape[1] - 4) / 640 - mse) <= bound + 1e-12)
    assert np.all(bound <= 0.01 * mse)
    assert list(host["anomalous"]) == [int(m > threshold) for m in mse]
    export = (build / "export" / "ad_tflite" / "include" / "ad_tflite.h").read_text()
    assert "int ad_tflite_score_pcm(const int16_t *pcm, int64_t *acc, int *anomalous);" in export


def test_ready_autoencoder_config_errors(tmp_path: Path):
    from mcuforge.core.errors import ConfigError
    from tasks import config as config_stage

    small = (16, 4, 16)
    autoencoder_model(tmp_path / "ad.tflite", seed=1, widths=small)
    (tmp_path / "p.yaml").write_text(_yaml("ad.tflite", 0.5, frames=4))
    with pytest.raises(ConfigError, match=r"ad.tflite takes 640 int8 values \([0-9x]+\), but .*p.yaml:\d+:\d+: "
                                          r"autoencoder.frames x the front end's values per frame = 4 x 128 = 512"):
        config_stage.resolve(str(tmp_path / "p.yaml"), {})
    autoencoder_model(tmp_path / "half.tflite", seed=1, widths=small, output_values=320)
    (tmp_path / "p.yaml").write_text(_yaml("half.tflite", 0.5))
    with pytest.raises(ConfigError, match=r"half.tflite is not an autoencoder: its output \([1x]*320\) differs from "
                                          r"its input \([1x]*640\)"):
        config_stage.resolve(str(tmp_path / "p.yaml"), {})
    (tmp_path / "p.yaml").write_text(_yaml("ad.tflite", 0.0))
    with pytest.raises(ConfigError, match="autoencoder.threshold: a ready model"):
        config_stage.resolve(str(tmp_path / "p.yaml"), {})
    (tmp_path / "p.yaml").write_text(_yaml("ad.tflite", 0.5))
    cfg = config_stage.resolve(str(tmp_path / "p.yaml"), {})
    assert cfg["resolved"]["requant"] == "fixed" and cfg["autoencoder"]["threshold"] == 0.5
