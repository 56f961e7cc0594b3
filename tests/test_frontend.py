"""The audio front end (issue 16): the integer Python reference (mcuforge/audio/features.py), the C front end
(engine_c/src/frontend/mf_frontend.c), the generated tables and the chaining to a network
(mcuforge/codegen/frontend.py).

- C == Python byte for byte: through ctypes for a spread of configurations, and through the code generator, the
  CMake build and the runner on the host, with ASan/UBSan, and under QEMU on Cortex-M4F and Cortex-M3.
- What the features are: cross-checked against python_speech_features (an established MFCC library), and the
  integer maths against its own float64 version, with the tolerances stated in the tests.
- Bad parameters give MF_ARG_ERROR from the C and a FrontendError from Python, never a crash."""
from __future__ import annotations

import math
import shutil

import numpy as np
import pytest
import python_speech_features as psf

from frontend_c import MF_ARG_ERROR, MF_OK, Frontend, build
from mcuforge import toolchain
from mcuforge.audio import features
from mcuforge.audio.tables import FrontendError, build_tables, hz_to_mel, mel_filters
from mcuforge.codegen import frontend as codegen_frontend
from mcuforge.core.errors import McuforgeError
from schemas.frontend import FrontendConfig

HAVE_QEMU = shutil.which("qemu-system-arm") is not None and shutil.which("arm-none-eabi-gcc") is not None

LOG_MEL = FrontendConfig()  # 32 x 32, FFT 512
MFCC = FrontendConfig(kind="mfcc", window_ms=30, hop_ms=20, fft_size=512, mel_bins=40, num_coeffs=10)  # 49 x 10
ANOMALY = FrontendConfig(window_ms=64, hop_ms=32, fft_size=1024, mel_bins=128)  # 30 x 128, FFT 1024
MAIN = {"log_mel": (LOG_MEL, 0.055, 127), "mfcc": (MFCC, 0.45, 60), "anomaly": (ANOMALY, 0.05, 127)}
ODD = {  # corners: smallest and largest FFT, odd window, hop > window, 8 and 48 kHz, all coefficients kept
    "fft64_8k": (FrontendConfig(sample_rate=8000, clip_ms=250, window_ms=8, hop_ms=4, fft_size=64, mel_bins=10,
                                lower_hz=0), 0.06, 100),
    "fft2048_48k": (FrontendConfig(sample_rate=48000, clip_ms=200, window_ms=40, hop_ms=20, fft_size=2048,
                                   mel_bins=64, upper_hz=20000), 0.05, 127),
    "mfcc_all": (FrontendConfig(kind="mfcc", clip_ms=300, window_ms=25, hop_ms=10, fft_size=512, mel_bins=13,
                                num_coeffs=13), 0.5, 0),
    "odd_window": (FrontendConfig(clip_ms=300, window_ms=25.0625, hop_ms=10, fft_size=512, mel_bins=24), 0.06, 127),
    "hop_gt_window": (FrontendConfig(clip_ms=500, window_ms=16, hop_ms=40, fft_size=256, mel_bins=20, log_floor=1e-7),
                       0.06, 127),
}


def signals(samples: int, rate: int) -> dict[str, np.ndarray]:
    """int16 test clips: tones, chirps, noise, silence, full-scale square (saturation), impulses, random."""
    rng = np.random.default_rng(16)
    t = np.arange(samples) / rate
    nyquist = rate / 2

    def pcm(x):
        return np.clip(np.round(x), -32768, 32767).astype(np.int16)

    return {
        "tone_1k": pcm(8000 * np.sin(2 * np.pi * 1000 * t)),
        "tone_full_scale": pcm(32767 * np.sin(2 * np.pi * 440 * t)),
        "chirp": pcm(20000 * np.sin(2 * np.pi * (50 + 0.45 * nyquist * t / t[-1]) * t)),
        "white_noise": pcm(rng.normal(0, 3000, samples)),
        "quiet_noise": pcm(rng.normal(0, 3, samples)),
        "silence": np.zeros(samples, np.int16),
        "square_full_scale": np.where(np.sin(2 * np.pi * 100 * t) >= 0, 32767, -32768).astype(np.int16),
        "dc_negative_full_scale": np.full(samples, -32768, np.int16),
        "impulses": pcm(np.where(np.arange(samples) % 997 == 0, 32767, 0)),
        "random_int16": rng.integers(-32768, 32768, samples, dtype=np.int16),
    }


def clips(frontend: FrontendConfig) -> np.ndarray:
    return np.stack(list(signals(frontend.clip_samples, frontend.sample_rate).values()))


@pytest.fixture(scope="module")
def c_frontend(tmp_path_factory) -> Frontend:
    return Frontend(build(tmp_path_factory.mktemp("frontend")))


# ---- C == Python, byte for byte --------------------------------------------------------------------------------

@pytest.mark.parametrize("name", [*MAIN, *ODD])
def test_c_equals_python_reference(c_frontend, name):
    frontend, scale, zero_point = {**MAIN, **ODD}[name]
    pcm = clips(frontend)
    expected = features.extract(pcm, frontend, scale, zero_point)
    got = c_frontend.run(build_tables(frontend, scale, zero_point), pcm)
    assert expected.shape == (len(pcm), frontend.num_frames, frontend.num_features)
    assert np.count_nonzero(got != expected) == 0
    assert len(np.unique(expected)) > 20  # the scale spreads the features over many int8 codes


@pytest.fixture(scope="module")
def generated_model(tmp_path_factory):
    """The three main front ends generated into one stand-in model (one clip in, the three feature maps out)."""
    work = tmp_path_factory.mktemp("frontend_model")
    fronts = [(codegen_frontend.tables_for(*spec), f"fe_{name}") for name, spec in MAIN.items()]
    for file_name, text in codegen_frontend.standalone_model(fronts).items():
        (work / "model" / file_name).parent.mkdir(exist_ok=True)
        (work / "model" / file_name).write_text(text)
    pcm = clips(LOG_MEL)
    pcm.tofile(work / "inputs.bin")
    expected = np.concatenate([features.extract(pcm, *spec).reshape(len(pcm), -1) for spec in MAIN.values()], axis=1)
    return work, expected


def _outputs(path, expected) -> np.ndarray:
    return np.fromfile(path, dtype=np.int8).reshape(expected.shape)


@pytest.mark.parametrize("sanitize", [False, True], ids=["host", "host_asan_ubsan"])
def test_generated_front_end_on_the_host(generated_model, sanitize):
    """Codegen -> CMake -> runner (optionally with -fsanitize=address,undefined): the reference's bytes."""
    work, expected = generated_model
    exe = toolchain.cmake_build(work / "model", work / f"build_host_{sanitize}", sanitize=sanitize)
    result = toolchain.run_host(exe, work / "inputs.bin", work / f"out_{sanitize}.bin")
    assert "runtime error" not in result.stderr and "Sanitizer" not in result.stderr
    assert np.count_nonzero(_outputs(work / f"out_{sanitize}.bin", expected) != expected) == 0


@pytest.mark.qemu
@pytest.mark.slow
@pytest.mark.skipif(not HAVE_QEMU, reason="qemu-system-arm or arm-none-eabi-gcc is not installed")
@pytest.mark.parametrize("board", ["stm32l4r5", "lpc1768"], ids=["m4f_an386", "m3_an385"])
def test_generated_front_end_under_qemu(generated_model, board):
    from schemas.loader import load_board

    work, expected = generated_model
    spec = load_board(board).model_dump(mode="json")
    elf = toolchain.cmake_build(work / "model", work / f"build_{board}", spec)
    toolchain.run_qemu(elf, spec["qemu"]["machine"], work / "inputs.bin", work / f"out_{board}.bin", timeout=120)
    assert np.count_nonzero(_outputs(work / f"out_{board}.bin", expected) != expected) == 0


def test_generated_table_bytes_match_the_object(generated_model):
    """The flash the code generator reports for the tables is what the compiler puts in .rodata (+ the params)."""
    work, _ = generated_model
    tables = codegen_frontend.tables_for(*MAIN["log_mel"])
    obj = work / "tables.o"
    toolchain.process.run(["gcc", "-c", "-O2", "-std=c99", f"-I{toolchain.ENGINE_DIR / 'include'}",
                           str(work / "model" / "fe_log_mel_frontend.c"), "-o", str(obj)], 60, "gcc")
    params_bytes = 9 * 4 + 8 * 8 + 6 * 4 + 4  # 9 int32, 8 pointers, 6 int32 + padding (x86-64)
    assert toolchain.elf_size(obj)["text"] + toolchain.elf_size(obj)["data"] == \
        codegen_frontend.figures(tables)["table_bytes"] + params_bytes


@pytest.fixture(scope="module")
def kws_network(tmp_path_factory):
    """The MLPerf KWS DS-CNN (49x10 int8 input) generated and built for the host (the plain runner)."""
    from helpers import MLPERF
    from mcuforge import frontends
    from mcuforge.codegen import generate as codegen
    from mcuforge.schedule import planner

    work = tmp_path_factory.mktemp("kws")
    graph = frontends.load(MLPERF / "kws_ref_model.tflite")
    plan = planner.plan(graph)
    sources = codegen.generate(graph, plan, "kws")
    codegen.write(sources, work / "codegen")
    runner = toolchain.cmake_build(work / "codegen", work / "plain", None, "fixed")
    return graph, plan, sources, runner, work


@pytest.mark.slow
@pytest.mark.parametrize("with_table", [False, True], ids=["input_quantization", "input_table"])
def test_front_end_chained_to_the_mlperf_kws_network(kws_network, tmp_path, with_table):
    """codegen.frontend.chain: the runner built with MF_MODEL_PCM takes raw PCM clips through mf_model_invoke_pcm
    (MFCC 49x10 into the DS-CNN's input, the scratch in the arena's free gap) and gives the same class scores as the
    plain runner fed the Python reference's features: quantised with the input tensor's scale and zero point, or
    with other parameters and then mapped through a 256-entry input table (here: requantisation to the input's)."""
    from mcuforge.codegen import generate as codegen

    graph, plan, sources, runner, _ = kws_network
    source = graph.tensors[graph.input]
    if with_table:
        quantization = (0.5, 30)
        q = np.arange(-128, 128)
        table = np.clip(np.round((q - 30) * 0.5 / float(source.scale)) + int(source.zp), -128, 127).astype(np.int8)
        chained, figures = codegen_frontend.chain(MFCC, graph, plan, quantization=quantization, input_table=table)
        assert figures["input_table_bytes"] == 256
    else:
        quantization, table = (float(source.scale), int(source.zp)), None
        chained, figures = codegen_frontend.chain(MFCC, graph, plan)
    assert figures["scratch_in_arena"] and figures["extra_ram_bytes"] == 0
    codegen.write({**sources, **chained}, tmp_path / "codegen")
    pcm = clips(MFCC)
    pcm.tofile(tmp_path / "pcm.bin")
    inputs = features.extract(pcm, MFCC, *quantization)
    if table is not None:
        inputs = table[inputs.astype(np.int32) + 128]
    inputs.tofile(tmp_path / "features.bin")
    with_pcm = toolchain.cmake_build(tmp_path / "codegen", tmp_path / "pcm", None, "fixed", defines=("MF_MODEL_PCM",))
    toolchain.run_host(runner, tmp_path / "features.bin", tmp_path / "scores.bin")
    toolchain.run_host(with_pcm, tmp_path / "pcm.bin", tmp_path / "scores_pcm.bin")
    scores = np.fromfile(tmp_path / "scores.bin", np.int8)
    assert scores.size == len(pcm) * 12
    assert np.array_equal(np.fromfile(tmp_path / "scores_pcm.bin", np.int8), scores)


def test_chain_refuses_a_mismatched_network(kws_network):
    graph, plan, _, _, _ = kws_network
    wrong = FrontendConfig(kind="mfcc", window_ms=30, hop_ms=20, fft_size=512, mel_bins=40, num_coeffs=13)
    with pytest.raises(McuforgeError, match=r"49 frames x 13 features = 637 bytes, but the network's input"):
        codegen_frontend.chain(wrong, graph, plan)
    with pytest.raises(McuforgeError, match="both quantization and input_table"):
        codegen_frontend.chain(MFCC, graph, plan, quantization=(0.5, 0))


# ---- what the features are ----------------------------------------------------------------------------------------

def _psf_arguments(frontend: FrontendConfig) -> dict:
    return dict(samplerate=frontend.sample_rate, winlen=frontend.window_ms / 1000, winstep=frontend.hop_ms / 1000,
                nfilt=frontend.mel_bins, nfft=frontend.fft_size, lowfreq=frontend.lower_hz,
                highfreq=frontend.upper_hz or None, preemph=0.0, winfunc=lambda n: 0.5 - 0.5 * np.cos(
                    2 * np.pi * np.arange(n) / n))


def _psf_offset(frontend: FrontendConfig) -> float:
    """ln(psf energy) - ln(our energy): psf works on raw PCM and divides |rfft|^2 by NFFT; we divide PCM by 32768
    and the energy by (sum of the window)^2 = (W / 2)^2 for the periodic Hann window."""
    return math.log(32768.0 ** 2 * (frontend.window_samples / 2) ** 2 / frontend.fft_size)


@pytest.mark.parametrize("frontend", [LOG_MEL, ANOMALY, MFCC], ids=["log_mel", "anomaly", "mfcc"])
def test_float_version_equals_python_speech_features(frontend):
    """Framing, periodic Hann window, power spectrum, mel energies, natural log and orthonormal DCT-II of our float
    version are python_speech_features' (preemph 0, no lifter, no energy in c0), given psf's own filter bank:
    features agree to 1e-6 after the constant offset of _psf_offset (float64 round-off only). The floor is lowered
    to 1e-12 here: psf has none, and a floored energy would change every MFCC coefficient."""
    frontend = frontend.model_copy(update={"log_floor": 1e-12})
    pcm = clips(frontend)[[3, 9] if frontend.kind == "mfcc" else [0, 2, 3, 9]]  # (tone, chirp,) noise, random
    filters = psf.get_filterbanks(frontend.mel_bins, frontend.fft_size, frontend.sample_rate, frontend.lower_hz,
                                  frontend.upper_hz or frontend.sample_rate / 2)
    ours = features.extract_float(pcm, frontend, filters=filters)
    offset = _psf_offset(frontend)
    for index, clip in enumerate(pcm.astype(np.float64)):
        if frontend.kind == "mfcc":
            theirs = psf.mfcc(clip, numcep=frontend.num_coeffs, ceplifter=0, appendEnergy=False,
                              **_psf_arguments(frontend))[:frontend.num_frames]
            theirs[:, 0] -= offset * math.sqrt(frontend.mel_bins)  # DCT-II (ortho) of a constant: c0 only
            energy, _ = psf.fbank(clip, **_psf_arguments(frontend))
            assert np.log(energy).min() - offset > math.log(frontend.log_floor) + 1
            floored = np.zeros(theirs.shape, dtype=bool)
        else:
            energy, _ = psf.fbank(clip, **_psf_arguments(frontend))
            theirs = np.log(energy[:frontend.num_frames]) - offset
            floored = theirs <= math.log(frontend.log_floor)
        assert theirs.shape == ours[index].shape
        np.testing.assert_allclose(ours[index][~floored], theirs[~floored], atol=1e-6)


def test_mel_filters_follow_the_htk_mel_scale():
    """Our triangles (continuous, peak 1) and python_speech_features' (on whole FFT bins) peak within one FFT bin
    of each other, and the mel scale is HTK's (1000 Hz = 1000 mel, 2595 log10(1 + f / 700))."""
    assert abs(float(hz_to_mel(1000.0)) - 1000.0) < 0.02  # 999.986
    for frontend in (LOG_MEL, MFCC, ANOMALY):
        ours = mel_filters(frontend)
        theirs = psf.get_filterbanks(frontend.mel_bins, frontend.fft_size, frontend.sample_rate, frontend.lower_hz,
                                     frontend.upper_hz or frontend.sample_rate / 2)
        # psf's lowest filters degenerate when mel points fall in the same FFT bin: compare the regular ones
        regular = (np.count_nonzero(theirs, axis=1) >= 3) & (ours.max(axis=1) > 0)
        assert np.count_nonzero(regular) >= 0.7 * frontend.mel_bins  # 93 of 128 for the anomaly bank
        assert np.max(np.abs(np.argmax(ours, 1) - np.argmax(theirs, 1))[regular]) <= 1
        assert np.all(ours <= 1.0) and np.all(ours.max(axis=1)[regular] > 0.5)


@pytest.mark.parametrize("name", [*MAIN, *ODD])
def test_integer_features_track_the_float_ones(name):
    """The fixed-point features are within 0.02 (natural-log units, 0.09 dB) of the float64 ones wherever the float
    energy is above the floor (floors down to ~1e-7: the power spectrum keeps 31 bits below the frame's peak,
    ~90 dB, so a lower floor sees the quantisation of the faintest bins of loud frames): block floating point keeps
    ~29 bits into the FFT, Q31 twiddles round at 2^-31, the
    power keeps 32 bits and the log2 table is accurate to 2e-5, so the error is well under a quarter of one int8
    step at any usable scale (a 14-unit range over 256 codes is 0.055 a step). Quantised, they differ by at most one
    int8 step from the float features quantised the same way."""
    frontend, scale, zero_point = {**MAIN, **ODD}[name]
    pcm = clips(frontend)
    fixed = features.integer_values(pcm, frontend) * math.log(2.0) / 65536
    floating = features.extract_float(pcm, frontend)
    if frontend.kind == "mfcc":
        mask = np.ones_like(floating, dtype=bool)
    else:
        mask = floating > math.log(frontend.log_floor) + 0.05
    error = np.abs(fixed - floating)[mask]
    assert error.max() < 0.02, f"max |integer - float| = {error.max():.4f}"
    quantised_float = np.clip(np.round(floating / scale) + zero_point, -128, 127)
    assert np.abs(features.extract(pcm, frontend, scale, zero_point) - quantised_float).max() <= 1


def test_silence_gives_the_floor_hand_worked():
    """Silence: every log-mel value is ln(1e-6) = -13.8155; with scale 0.25 and zero point 3 the int8 code is
    round(-55.262) + 3 = -52. MFCC of a constant log spectrum: c0 = sqrt(40) * -13.8155 = -87.376, others 0;
    scale 0.5, zero point 10: round(-174.75) + 10 clamps to -128, the others are 10."""
    silence = np.zeros((2, 16000), np.int16)
    assert np.all(features.extract(silence, LOG_MEL, 0.25, 3) == -52)
    low, high = features.feature_range(silence, LOG_MEL)
    assert abs(low - math.log(1e-6)) < 1e-4 and abs(high - math.log(1e-6)) < 1e-4
    mfcc = features.extract(silence, MFCC, 0.5, 10)
    assert np.all(mfcc[..., 0] == -128) and np.all(mfcc[..., 1:] == 10)


def test_full_scale_tone_peaks_near_its_analytic_level():
    """A full-scale 1 kHz sine (bin-centred) under a Hann window: the peak bin's power is (W / 4)^2, a mel filter
    of peak 1 centred near it collects ~1.5 x that (Hann main lobe: 1 + 2 x 0.25^2 x 4 bins), so the largest
    log-mel value is about ln(1.5 / 4) = -0.98 relative to a full-scale DC frame ((W / 2)^2)."""
    t = np.arange(16000) / 16000
    tone = np.round(32767 * np.sin(2 * np.pi * 1000 * t)).astype(np.int16)[None, :]
    values = features.integer_values(tone, LOG_MEL) * math.log(2.0) / 65536
    assert -1.7 < values.max() < -0.7


# ---- errors ---------------------------------------------------------------------------------------------------------

BAD_FIELDS = [("kind", 2), ("fft_size", 48), ("fft_size", 4096), ("fft_size", 500), ("window_samples", 0),
              ("window_samples", 1024), ("hop_samples", 0), ("num_frames", 0), ("num_frames", 33),
              ("clip_samples", 100), ("mel_bins", 0), ("mel_bins", 129), ("headroom_bits", 20),
              ("out_multiplier", 1 << 29), ("out_shift", 0), ("out_shift", 63), ("out_zero_point", 128),
              ("out_zero_point", -129), ("window", None), ("twiddle", None), ("bitrev", None), ("mel_start", None),
              ("mel_len", None), ("mel_weights", None), ("log2_table", None)]


@pytest.mark.parametrize("field,value", BAD_FIELDS, ids=[f"{f}={v}" for f, v in BAD_FIELDS])
def test_c_rejects_bad_parameters(c_frontend, field, value):
    tables = build_tables(LOG_MEL, 0.05, 0)
    params, keep = c_frontend.params(tables)
    setattr(params, field, value)
    pcm = np.zeros(16000, np.int16)
    out = np.full((32, 32), 99, np.int8)
    scratch = np.zeros(tables.scratch_bytes() // 4, np.int32)
    assert c_frontend.call(params, pcm, out, scratch) == MF_ARG_ERROR
    assert np.all(out == 99)  # nothing written
    del keep


def test_c_rejects_bad_mfcc_and_filter_tables(c_frontend):
    tables = build_tables(MFCC, 0.5, 0)
    pcm = np.zeros(16000, np.int16)
    out = np.zeros((49, 10), np.int8)
    scratch = np.zeros(tables.scratch_bytes() // 4, np.int32)
    for field, value in [("num_coeffs", 0), ("num_coeffs", 41), ("dct", None)]:
        params, keep = c_frontend.params(tables)
        setattr(params, field, value)
        assert c_frontend.call(params, pcm, out, scratch) == MF_ARG_ERROR, field
    params, keep = c_frontend.params(tables)
    mel_len = np.array(tables.mel_len)
    mel_len[-1] = 300  # past the M + 1 = 257 bins
    params.mel_len = mel_len.ctypes.data_as(type(params.mel_len))
    assert c_frontend.call(params, pcm, out, scratch) == MF_ARG_ERROR
    params, keep = c_frontend.params(tables)
    assert c_frontend.call(params, pcm, out, scratch) == MF_OK
    misaligned = np.zeros(tables.scratch_bytes() + 4, np.uint8)[1:]
    assert c_frontend.call(params, pcm, out, misaligned) == MF_ARG_ERROR
    assert c_frontend.lib.mf_frontend_run(None, None, None, None) == MF_ARG_ERROR
    assert c_frontend.lib.mf_frontend_get_buffer_size(None) == 0
    assert c_frontend.scratch_bytes(params) == tables.scratch_bytes() == 4 * (512 + 257 + 40)
    del keep


def test_python_rejects_bad_input():
    with pytest.raises(FrontendError, match="clips have 8000 samples"):
        features.extract(np.zeros((1, 8000), np.int16), LOG_MEL, 0.05, 0)
    with pytest.raises(FrontendError, match="int16"):
        features.extract(np.zeros((1, 16000), np.float32), LOG_MEL, 0.05, 0)
    with pytest.raises(FrontendError, match="scale must be positive"):
        features.extract(np.zeros((1, 16000), np.int16), LOG_MEL, 0.0, 0)
    with pytest.raises(FrontendError, match="zero point"):
        features.extract(np.zeros((1, 16000), np.int16), LOG_MEL, 0.05, 300)
