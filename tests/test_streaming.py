"""Streaming keyword spotting (issue 16, point 5): the C streaming front end (mf_frontend_stream_push), its Python
reference (mcuforge/audio/streaming.py) and the posterior-smoothing detector.

- C stream == Python stream byte for byte, and every window of num_frames stream frames == the batch front end
  (`features.extract`) of the 1 s clip starting at that hop: an independent check that only new frames need computing.
- The detector: a hand-worked posterior sequence, and espeak-ng words at known times in noise, classified by an
  energy stub (stated below: it is not the KWS network; the network end to end is benchmarks/streaming_bench.py)."""
from __future__ import annotations

import ctypes as C
import shutil

import numpy as np
import pytest

from frontend_c import MF_ARG_ERROR, Frontend, StreamState, build
from mcuforge import toolchain
from mcuforge.audio import features, streaming
from mcuforge.audio.streaming import Detector, DetectorConfig, detect, stream_features
from mcuforge.audio.tables import FrontendError, build_tables
from mcuforge.codegen import frontend as codegen_frontend
from schemas.frontend import FrontendConfig

HAVE_QEMU = shutil.which("qemu-system-arm") is not None and shutil.which("arm-none-eabi-gcc") is not None

KWS = FrontendConfig(kind="log_mel", window_ms=32, hop_ms=31, fft_size=512, mel_bins=32, lower_hz=20,
                     upper_hz=7600)  # pipelines/kws.yaml: 32 frames x 32 bins, window 512, hop 496
CONFIGS = {
    "kws": (KWS, 0.055, 127),
    "mfcc": (FrontendConfig(kind="mfcc", window_ms=30, hop_ms=20, fft_size=512, mel_bins=40, num_coeffs=10), 0.45, 60),
    "hop_gt_window": (FrontendConfig(clip_ms=500, window_ms=16, hop_ms=40, fft_size=256, mel_bins=20), 0.06, 127),
}


def long_signal(seconds: float, rate: int) -> np.ndarray:
    """int16: a chirp, then a 1 kHz tone, white noise, silence and full-scale random samples, in turn."""
    rng = np.random.default_rng(5)
    n = int(seconds * rate)
    t = np.arange(n) / rate
    part = n // 5
    x = 12000 * np.sin(2 * np.pi * (100 + 1500 * t) * t)
    x[part:2 * part] = 8000 * np.sin(2 * np.pi * 1000 * t[part:2 * part])
    x[2 * part:3 * part] = rng.normal(0, 3000, part)
    x[3 * part:4 * part] = 0
    x[4 * part:] = rng.integers(-32768, 32768, n - 4 * part)
    return np.clip(np.round(x), -32768, 32767).astype(np.int16)


@pytest.fixture(scope="module")
def c_frontend(tmp_path_factory) -> Frontend:
    return Frontend(build(tmp_path_factory.mktemp("stream")))


@pytest.mark.parametrize("name", list(CONFIGS))
def test_c_stream_equals_python_stream_and_batch_clips(name: str, c_frontend: Frontend):
    frontend, scale, zero_point = CONFIGS[name]
    signal = long_signal(3.0, frontend.sample_rate)
    tables = build_tables(frontend, scale, zero_point)
    reference = stream_features(signal, frontend, scale, zero_point)
    new_frames, maps = c_frontend.stream(tables, signal, streaming.stream_keep(frontend))
    count = min(len(reference), len(new_frames))
    assert count >= 2 * frontend.num_frames
    assert np.array_equal(new_frames[:count], reference[:count])  # C == Python, byte for byte
    nf = frontend.num_frames
    for k in range(nf - 1, count):  # the rolling map after push k holds frames k - nf + 1 .. k, in time order
        assert np.array_equal(maps[k], reference[k - nf + 1:k + 1]), k
    # independent: the batch front end of the clip starting at j hop == frames j .. j + nf - 1 of the stream
    hop, clip = frontend.hop_samples, frontend.clip_samples
    starts = np.arange(0, count - nf + 1)
    starts = starts[starts * hop + clip <= signal.size]
    batch = features.extract(np.stack([signal[j * hop:j * hop + clip] for j in starts]), frontend, scale, zero_point)
    for j, clip_features in zip(starts, batch):
        assert np.array_equal(clip_features, reference[j:j + nf]), j


def test_stream_rejects_bad_arguments(c_frontend: Frontend):
    frontend, scale, zero_point = CONFIGS["kws"]
    params, keep = c_frontend.params(build_tables(frontend, scale, zero_point))
    state = StreamState()
    buffer = np.zeros(frontend.window_samples, np.int16)
    lib = c_frontend.lib
    assert lib.mf_frontend_stream_init(None, C.byref(params), buffer.ctypes.data_as(C.POINTER(C.c_int16)),
                                       None) == MF_ARG_ERROR
    assert lib.mf_frontend_stream_init(C.byref(state), C.byref(params), None, None) == MF_ARG_ERROR
    # a push before init (NULL buffer) and a misaligned scratch are refused
    scratch = np.zeros(c_frontend.scratch_bytes(params) // 4 + 1, np.int32)
    hop = np.zeros(frontend.hop_samples, np.int16)
    out = np.zeros((frontend.num_frames, frontend.num_features), np.int8)
    args = (hop.ctypes.data_as(C.POINTER(C.c_int16)), out.ctypes.data_as(C.POINTER(C.c_int8)))
    assert lib.mf_frontend_stream_push(C.byref(StreamState()), C.byref(params), *args,
                                       scratch.ctypes.data_as(C.c_void_p)) == MF_ARG_ERROR
    assert lib.mf_frontend_stream_init(C.byref(state), C.byref(params), buffer.ctypes.data_as(C.POINTER(C.c_int16)),
                                       None) == 0
    assert lib.mf_frontend_stream_push(C.byref(state), C.byref(params), *args,
                                       C.c_void_p(scratch.ctypes.data + 2)) == MF_ARG_ERROR
    assert state.frames == 0 and not out.any()
    del keep


def test_stream_features_rejects_non_int16():
    with pytest.raises(FrontendError, match="1-D int16"):
        stream_features(np.zeros(20000, np.float32), KWS, 0.055, 127)
    with pytest.raises(FrontendError, match="threshold"):
        DetectorConfig(threshold=1.5)


# ---- the generated build: host (ASan/UBSan) and QEMU ----------------------------------------------------------

def streaming_model(frontend: FrontendConfig, scale: float, zero_point: int) -> dict[str, str]:
    """A runner-ABI model streaming one clip: init with its first window - hop samples, one push per hop; the output
    is the rolling map after the last push (= the batch front end of the clip when the pushes fill the map)."""
    tables = build_tables(frontend, scale, zero_point)
    keep = streaming.stream_keep(frontend)
    pushes = (frontend.clip_samples - keep) // frontend.hop_samples
    out = frontend.num_frames * frontend.num_features
    header = "\n".join([
        "#ifndef MF_MODEL_H", "#define MF_MODEL_H", "#include <stddef.h>", "#include <stdint.h>",
        f"#define MF_MODEL_INPUT_BYTES {2 * frontend.clip_samples}", f"#define MF_MODEL_OUTPUT_BYTES {out}",
        f"#define MF_MODEL_ARENA_BYTES {tables.scratch_bytes()}", "#define MF_MODEL_NUM_LAYERS 1",
        "int8_t *mf_model_input(void);", "const int8_t *mf_model_output(void);", "int mf_model_invoke(void);",
        "#ifdef MF_LAYER_DUMP", "void mf_layer_dump(int layer_index, const int8_t *data, size_t bytes);", "#endif",
        "#endif", ""])
    source = "\n".join([
        '#include "model.h"', '#include "st_frontend.h"', "",
        f"static int16_t mf_pcm[{frontend.clip_samples}] __attribute__((aligned(4)));",
        f"static int8_t mf_features[{out}] __attribute__((aligned(4)));",
        f"static int32_t mf_scratch[{tables.scratch_bytes() // 4}];",
        f"static int16_t mf_window[MF_FRONTEND_STREAM_BUFFER_SAMPLES({frontend.window_samples})];",
        "int8_t *mf_model_input(void) { return (int8_t *)mf_pcm; }",
        "const int8_t *mf_model_output(void) { return mf_features; }",
        "int mf_model_invoke(void)", "{", "    mf_frontend_stream stream;", "    int32_t k;",
        "    if (mf_frontend_stream_init(&stream, &st_frontend_params, mf_window, mf_pcm) != MF_OK) return -1;",
        f"    for (k = 0; k < {pushes}; k++) {{",
        f"        if (mf_frontend_stream_push(&stream, &st_frontend_params, mf_pcm + {keep} + k * "
        f"{frontend.hop_samples}, mf_features, mf_scratch) != MF_OK) return -1;",
        "    }",
        f"    return stream.frames == {pushes} ? 0 : -1;", "}", ""])
    return {"model.h": header, "model.c": source, **codegen_frontend.sources(tables, "st")}


@pytest.fixture(scope="module")
def stream_build(tmp_path_factory):
    frontend, scale, zero_point = CONFIGS["kws"]
    work = tmp_path_factory.mktemp("stream_model")
    (work / "model").mkdir()
    for name, text in streaming_model(frontend, scale, zero_point).items():
        (work / "model" / name).write_text(text)
    pcm = np.stack([long_signal(1.0, 16000), np.roll(long_signal(1.0, 16000), 5000)])
    pcm.tofile(work / "inputs.bin")
    return work, features.extract(pcm, frontend, scale, zero_point).reshape(len(pcm), -1)


def test_generated_stream_on_the_host_with_sanitizers(stream_build):
    """32 pushes of 496 samples after a 16-sample history fill the map with the batch front end's bytes."""
    work, expected = stream_build
    exe = toolchain.cmake_build(work / "model", work / "build_host", sanitize=True)
    result = toolchain.run_host(exe, work / "inputs.bin", work / "out_host.bin")
    assert "runtime error" not in result.stderr and "Sanitizer" not in result.stderr
    assert np.array_equal(np.fromfile(work / "out_host.bin", np.int8).reshape(expected.shape), expected)


@pytest.mark.qemu
@pytest.mark.slow
@pytest.mark.skipif(not HAVE_QEMU, reason="qemu-system-arm or arm-none-eabi-gcc is not installed")
@pytest.mark.parametrize("board", ["stm32l4r5", "lpc1768"], ids=["m4f_an386", "m3_an385"])
def test_generated_stream_under_qemu(stream_build, board):
    from schemas.loader import load_board

    work, expected = stream_build
    spec = load_board(board).model_dump(mode="json")
    elf = toolchain.cmake_build(work / "model", work / f"build_{board}", spec)
    toolchain.run_qemu(elf, spec["qemu"]["machine"], work / "inputs.bin", work / f"out_{board}.bin", timeout=120)
    assert np.array_equal(np.fromfile(work / f"out_{board}.bin", np.int8).reshape(expected.shape), expected)


@pytest.mark.slow
def test_pipeline_model_streaming_entry_points_give_invoke_pcm_bytes(tmp_path):
    """codegen.chain with -DMF_MODEL_STREAM (the MLPerf KWS DS-CNN behind an MFCC 49 x 10 front end, through a
    non-identity input table): the runner streaming every clip (reset, 49 pushes, invoke) writes the same class
    scores as the runner calling mf_model_invoke_pcm on the clip, with ASan/UBSan."""
    from helpers import MLPERF
    from mcuforge import frontends
    from mcuforge.codegen import chain
    from mcuforge.codegen import generate as codegen
    from mcuforge.schedule import planner

    mfcc, _, _ = CONFIGS["mfcc"]
    graph = frontends.load(MLPERF / "kws_ref_model.tflite")
    plan = planner.plan(graph)
    source = graph.tensors[graph.input]
    tables = build_tables(mfcc, float(source.scale), int(source.zp))
    table = np.clip(np.arange(-128, 128) + 3, -128, 127).astype(np.int8)
    sources = codegen.generate(graph, plan, "kws", frontend=(tables, table))
    assert "mf_model_stream_push" in sources["model.c"] and f"#define MF_MODEL_STREAM_RAM_BYTES " \
        f"{chain.stream_ram_bytes(tables)}" in sources["model.h"]
    codegen.write(sources, tmp_path / "codegen")
    pcm = np.stack([long_signal(1.0, 16000), np.roll(long_signal(1.0, 16000), 7000)])
    pcm.tofile(tmp_path / "pcm.bin")
    scores = {}
    for name, defines in (("pcm", ()), ("stream", ("MF_MODEL_STREAM",))):
        exe = toolchain.cmake_build(tmp_path / "codegen", tmp_path / name, None, "fixed", sanitize=bool(defines),
                                    defines=defines)
        result = toolchain.run_host(exe, tmp_path / "pcm.bin", tmp_path / f"scores_{name}.bin")
        assert "runtime error" not in result.stderr and "Sanitizer" not in result.stderr
        scores[name] = np.fromfile(tmp_path / f"scores_{name}.bin", np.int8)
    assert scores["pcm"].size == 2 * 12 and not np.array_equal(scores["pcm"][:12], scores["pcm"][12:])
    assert np.array_equal(scores["stream"], scores["pcm"])


# ---- the detector ---------------------------------------------------------------------------------------------

def test_detector_hand_worked_sequence():
    """3 classes (0 = silence, ignored; 1, 2 keywords), smooth 2, threshold 0.6, refractory 1 s, one run per 0.5 s.
    Averages of class 1 by hand: t=0.5 0.5 | t=1.0 (0.5+0.9)/2 = 0.7 -> detect 1 | t=1.5 0.9 but within 1 s ->
    suppressed | t=2.0 0.9 -> detect 1 (1 s after) | t=2.5 class 2 (0.1+0.8)/2 = 0.45 | t=3.0 0.8 but 1 s refractory
    from 2.0 -> detect 2 | t=3.5 silence 0.95: ignored, class 2 averages (0.8+0.05)/2 -> nothing."""
    rows = [(0.5, 0.5, 0.0), (0.1, 0.9, 0.0), (0.1, 0.9, 0.0), (0.1, 0.9, 0.0), (0.1, 0.1, 0.8), (0.1, 0.1, 0.8),
            (0.95, 0.0, 0.05)]
    detector = Detector(3, DetectorConfig(stride=1, smooth=2, threshold=0.6, refractory_s=1.0, ignore=(0,)))
    found = [(0.5 * (i + 1), detector.push(np.array(p), 0.5 * (i + 1))) for i, p in enumerate(rows)]
    assert [(t, c) for t, c in found if c is not None] == [(1.0, 1), (2.0, 1), (3.0, 2)]


def test_softmax_int8_matches_scipy():
    from scipy.special import softmax

    logits = np.array([[-128, 0, 50, 127], [3, 3, 3, 3]], np.int8)
    assert np.allclose(streaming.softmax_int8(logits, 0.1, -10), softmax((logits.astype(float) + 10) * 0.1, axis=1))


def energy_stub(window: np.ndarray) -> np.ndarray:
    """A stand-in classifier (NOT a keyword model): posteriors [quiet, loud] from the loudest frame of the middle half
    of the window (mean int8 log-mel level over the bins), a logistic step around -90 (measured on this recording:
    the words peak at -55 .. -49, the 20 dB-down noise between them at -123 .. -117)."""
    frames = window.shape[0]
    level = window[frames // 4:3 * frames // 4].astype(np.float64).mean(axis=1).max()
    loud = 1.0 / (1.0 + np.exp(-(level + 90.0) / 5.0))
    return np.array([1.0 - loud, loud])


def test_detections_of_espeak_words_at_known_times():
    from mcuforge.ml.speech_stream import long_utterance

    pcm, spans = long_utterance(["yes", "stop", "go"], gap_s=1.5, snr_db=20.0, seed=1)
    frontend, scale, zero_point = CONFIGS["kws"]
    frames = stream_features(pcm, frontend, scale, zero_point)
    config = DetectorConfig(stride=2, smooth=3, threshold=0.8, refractory_s=1.2, ignore=(0,))
    found = detect(frames, energy_stub, frontend, config, num_classes=2)
    hop_s = frontend.hop_samples / frontend.sample_rate
    delay = (config.smooth - 1) * config.stride * hop_s
    # every word detected once, inside [word start, word stop + 1 s window + smoothing delay]
    assert len(found) == len(spans), (found, spans)
    for (time_s, label), (start, stop, word) in zip(found, spans):
        assert label == 1
        assert start < time_s <= stop + 1.0 + delay + hop_s, (word, time_s, start, stop)
