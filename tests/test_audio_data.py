"""Audio data sets: WAV reading against the stdlib `wave` / scipy.io.wavfile readers and writers and analytic tones,
clear errors naming the file, speech_synth determinism and held-out voices, the folder kinds on tiny trees, the cache
and card, and the dataset schema for audio kinds."""
from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest
import scipy.io.wavfile

from mcuforge.audio.mix import active_segments, mix_at_snr, rms, synth_noise
from mcuforge.audio.wav import fit_length, load_clip, read_wav, resample
from mcuforge.core.errors import ConfigError, DataError
from mcuforge.ml import audio_data
from mcuforge.ml.audio_data import load_audio, load_audio_cached, read_audio_cache
from mcuforge.ml.speech_synth import split_speakers
from mcuforge.toolchain.process import ToolchainError


def _write(path: Path, frames: bytes, rate: int = 16000, width: int = 2, channels: int = 1) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(channels)
        handle.setsampwidth(width)
        handle.setframerate(rate)
        handle.writeframes(frames)
    return path


def _tone(freq: float, rate: int, seconds: float, amplitude: float = 10000.0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return amplitude * np.sin(2 * np.pi * freq * t)


def _pcm16(values: np.ndarray) -> bytes:
    return np.round(values).astype("<i2").tobytes()


def _dataset(**fields) -> dict:
    from schemas.pipeline import DatasetConfig

    return DatasetConfig(**fields).model_dump(mode="json")


# ---- WAV reading ------------------------------------------------------------------------------------------------
def test_16bit_matches_stdlib_wave(tmp_path):
    samples = np.random.default_rng(0).integers(-32768, 32768, 5000).astype(np.int16)
    path = _write(tmp_path / "a.wav", samples.astype("<i2").tobytes(), rate=22050)
    with wave.open(str(path)) as handle:
        expected = np.frombuffer(handle.readframes(handle.getnframes()), dtype="<i2")
        rate = handle.getframerate()
    got, got_rate = read_wav(path)
    assert got.dtype == np.int16 and got_rate == rate == 22050
    assert np.array_equal(got, expected)


def test_24_32bit_and_float_wav_to_int16(tmp_path):
    """Wider formats hold int16 values scaled exactly (plus a sub-LSB offset that rounds away)."""
    samples = np.random.default_rng(1).integers(-32768, 32768, 3000).astype(np.int64)
    as24 = samples * 256 + 100  # +100/256 < 0.5 LSB: rounds back to the int16 value
    raw24 = b"".join(int(v).to_bytes(3, "little", signed=True) for v in as24)
    got24, _ = read_wav(_write(tmp_path / "s24.wav", raw24, width=3))
    assert np.array_equal(got24, samples)
    got32, _ = read_wav(_write(tmp_path / "s32.wav", (samples * 65536 - 30000).astype("<i4").tobytes(), width=4))
    assert np.array_equal(got32, samples)
    float_path = tmp_path / "f32.wav"
    scipy.io.wavfile.write(float_path, 16000, (samples / 32768.0).astype(np.float32))  # IEEE float WAV
    got_float, rate = read_wav(float_path)
    assert rate == 16000 and np.array_equal(got_float, samples)
    reference_rate, reference = scipy.io.wavfile.read(_write(tmp_path / "r.wav", samples.astype("<i2").tobytes()))
    assert np.array_equal(read_wav(tmp_path / "r.wav")[0], reference)


@pytest.mark.parametrize("source_rate,freq", [(44100, 1000.0), (8000, 440.0), (22050, 3000.0)])
def test_resampling_keeps_the_tone(tmp_path, source_rate, freq):
    """A tone resampled to 16 kHz equals the same tone sampled analytically at 16 kHz (away from the edges)."""
    path = _write(tmp_path / "tone.wav", _pcm16(_tone(freq, source_rate, 0.5)), rate=source_rate)
    clip = load_clip(path, 16000, 16000)
    expected = _tone(freq, 16000, 0.5)
    middle = slice(800, 7200)
    assert clip.dtype == np.int16 and clip.shape == (16000,)
    assert np.max(np.abs(clip[middle] - expected[middle])) < 0.01 * 10000  # < 1 % of the amplitude
    assert np.all(clip[8000 + 50:] == 0)  # 0.5 s source: zero padding at the end (start-aligned)
    spectrum = np.abs(np.fft.rfft(clip[:8000]))
    assert abs(np.argmax(spectrum) * 16000 / 8000 - freq) <= 2.0


def test_fit_length_is_start_aligned():
    x = np.arange(1, 6, dtype=np.int16)
    assert fit_length(x, 3).tolist() == [1, 2, 3]
    assert fit_length(x, 7).tolist() == [1, 2, 3, 4, 5, 0, 0]
    assert resample(x, 16000, 16000).tolist() == x.tolist()


def _bad_files(tmp_path: Path) -> list[tuple[Path, str]]:
    good = _write(tmp_path / "good.wav", _pcm16(_tone(440, 16000, 0.1)))
    cases = [(tmp_path / "missing.wav", "cannot read")]
    (tmp_path / "folder.wav").mkdir()
    cases.append((tmp_path / "folder.wav", "cannot read"))
    (tmp_path / "text.wav").write_text("hello, I am not audio\n")
    cases.append((tmp_path / "text.wav", "not a WAV file"))
    truncated = tmp_path / "truncated.wav"
    truncated.write_bytes(good.read_bytes()[:-500])
    cases.append((truncated, "truncated WAV"))
    headless = tmp_path / "headless.wav"
    headless.write_bytes(good.read_bytes()[:30])
    cases.append((headless, "truncated"))
    cases.append((_write(tmp_path / "stereo.wav", _pcm16(np.zeros(200)), channels=2), "stereo: mix down or pick a channel"))
    cases.append((_write(tmp_path / "eight.wav", bytes(100), width=1), "8-bit WAV"))
    cases.append((_write(tmp_path / "empty.wav", b""), "empty WAV"))
    return cases


def test_every_bad_file_is_named(tmp_path):
    for path, fragment in _bad_files(tmp_path):
        with pytest.raises(DataError) as info:
            read_wav(path)
        assert str(path) in str(info.value) and fragment in str(info.value), (path, str(info.value))


# ---- mixing -------------------------------------------------------------------------------------------------------
def test_noise_kinds_and_snr():
    rng = np.random.default_rng(0)
    for kind in ("white", "pink", "brown", "hum"):
        noise = synth_noise(kind, 16000, 16000, rng)
        assert abs(rms(noise) - 1.0) < 1e-9
    pink = np.abs(np.fft.rfft(synth_noise("pink", 1 << 16, 16000, rng))) ** 2
    low, high = pink[100:200].mean(), pink[10000:20000].mean()  # ~24-49 Hz vs ~2.4-4.9 kHz: 1/f -> about 100x
    assert 30 < low / high < 300
    signal = _tone(1000, 16000, 1.0)
    noise = rng.standard_normal(16000)
    mixed = mix_at_snr(signal, noise, 10.0)
    assert abs(20 * np.log10(rms(signal) / rms(mixed - signal)) - 10.0) < 1e-9


def test_active_segments_hand_case():
    rate = 1000  # 10-sample frames
    x = np.zeros(3000)
    x[100:300] = 1000.0
    x[320:400] = 1000.0  # 20 ms pause: same word
    x[1000:1200] = 1000.0  # 600 ms pause: next word
    assert active_segments(x, rate, margin_ms=0) == [(100, 400), (1000, 1200)]


# ---- speech_synth ----------------------------------------------------------------------------------------------
TINY_SYNTH = dict(kind="speech_synth", samples_per_class=5, voices=["gmw/en", "gmw/en-US"],
                  variants=["m1", "f2", "klatt"], test_fraction=0.34, val_fraction=0.17)


def test_speech_synth_deterministic_held_out_voices(tmp_path):
    dataset = _dataset(**TINY_SYNTH)
    first = load_audio(dataset, tmp_path, seed=3)
    second = load_audio(dataset, tmp_path, seed=3)
    speakers = split_speakers(dataset, 3)
    assert [len(speakers[s]) for s in ("train", "val", "test")] == [3, 1, 2]
    assert first.classes == ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go", "unknown", "silence"]
    counts = {"train": 2, "val": 1, "test": 2}  # 5 per class: round(5 * 0.34) test, round(5 * 0.17) val, the rest
    voices = {}
    for split, per_class in counts.items():
        x, y, meta = first.split(split)
        x2, y2, meta2 = second.split(split)
        assert x.dtype == np.int16 and x.shape == (12 * per_class, 16000)
        assert np.array_equal(x, x2) and np.array_equal(y, y2)
        assert all(np.array_equal(meta[c], meta2[c], equal_nan=meta[c].dtype.kind == "f") for c in meta)
        assert np.bincount(y, minlength=12).tolist() == [per_class] * 12
        voices[split] = set(meta["voice"][meta["word"] != ""])
        assert voices[split] <= set(speakers[split])
        spoken = y != first.classes.index("silence")
        assert np.all(np.abs(x[spoken]).max(axis=1) > 1000)  # every word clip holds speech
    assert not (voices["train"] & voices["test"]) and not (voices["train"] & voices["val"])
    assert not (voices["val"] & voices["test"])
    other_seed = load_audio(dataset, tmp_path, seed=4)
    assert not np.array_equal(other_seed.x_train, first.x_train)


def test_unknown_voice_or_variant_is_refused(tmp_path):
    """espeak-ng itself ignores an unknown variant (same audio): two 'speakers' would be one."""
    with pytest.raises(ToolchainError, match=r"dataset.variants: espeak-ng has no variant 'm99' \(known: .*klatt"):
        load_audio(_dataset(**dict(TINY_SYNTH, variants=["m1", "m99"])), tmp_path, seed=0)
    with pytest.raises(ToolchainError, match=r"dataset.voices: espeak-ng has no voice 'gmw/en-XX'"):
        load_audio(_dataset(**dict(TINY_SYNTH, voices=["gmw/en-XX"])), tmp_path, seed=0)


def test_missing_espeak_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ToolchainError, match=r"install espeak-ng: apt-get install --no-install-recommends espeak-ng"):
        load_audio(_dataset(**TINY_SYNTH), tmp_path, seed=0)


# ---- audio_folder ----------------------------------------------------------------------------------------------
def _speech_tree(root: Path, speakers=("aa", "bb", "cc", "dd", "ee")) -> Path:
    rng = np.random.default_rng(0)
    for word, freq in (("yes", 500.0), ("no", 900.0), ("cat", 1300.0), ("dog", 1700.0)):
        for speaker in speakers:
            for n in range(2):
                _write(root / word / f"{speaker}_nohash_{n}.wav", _pcm16(_tone(freq, 8000, 0.6)), rate=8000)
    _write(root / "_background_noise_" / "white.wav", _pcm16(3000 * rng.standard_normal(40000)), rate=16000)
    return root


def test_audio_folder_split_by_speaker_with_unknown_and_silence(tmp_path):
    root = _speech_tree(tmp_path / "sc")
    dataset = _dataset(kind="audio_folder", path=str(root), classes=["yes", "no", "unknown", "silence"],
                       test_fraction=0.2, val_fraction=0.2, noise_prob=1.0)
    data = load_audio(dataset, tmp_path, seed=0)
    assert data.classes == ["yes", "no", "unknown", "silence"] and data.clip_samples == 16000
    seen = {}
    for split in ("train", "val", "test"):
        x, y, meta = data.split(split)
        for speaker in set(meta["speaker"]) - {""}:
            assert seen.setdefault(speaker, split) == split, f"speaker {speaker} in two splits"
    assert {len(set(data.split(s)[2]["speaker"]) - {""}) for s in ("val", "test")} == {1}  # 1 of 5 speakers each
    total = sum(np.bincount(data.split(s)[1], minlength=4) for s in ("train", "val", "test"))
    assert total.tolist() == [10, 10, 10, 10]  # unknown: cat+dog (20 files) pooled down to the median 10
    assert set(data.meta_train["noise"][data.y_train < 3]) == {"white.wav"}  # every training word got noise
    assert set(data.meta_test["noise"][data.y_test < 3]) == {"none"}
    x, y, _ = data.split("test")
    tone = _tone(500, 16000, 0.6)
    first_yes = x[y == 0][0]
    assert np.max(np.abs(first_yes[800:8800] - tone[800:8800])) < 100  # 8 kHz -> 16 kHz, test clips un-noised


def test_audio_folder_lists_are_honoured(tmp_path):
    root = _speech_tree(tmp_path / "sc", speakers=("aa", "bb", "cc"))
    (root / "validation_list.txt").write_text("yes/bb_nohash_0.wav\nno/bb_nohash_1.wav\n")
    (root / "testing_list.txt").write_text("yes/cc_nohash_0.wav\n")
    data = load_audio(_dataset(kind="audio_folder", path=str(root), classes=["yes", "no"]), tmp_path, seed=0)
    assert sorted(data.meta_val["file"]) == ["no/bb_nohash_1.wav", "yes/bb_nohash_0.wav"]
    assert list(data.meta_test["file"]) == ["yes/cc_nohash_0.wav"]
    assert len(data.y_train) == 12 - 3


def test_audio_folder_errors_name_the_folder_or_file(tmp_path):
    def error(path, **fields) -> str:
        with pytest.raises(DataError) as info:
            load_audio(_dataset(kind="audio_folder", path=str(path), **fields), tmp_path, seed=0)
        return str(info.value)

    assert "does not exist" in error(tmp_path / "nowhere") and "nowhere" in error(tmp_path / "nowhere")
    root = _speech_tree(tmp_path / "sc")
    (root / "maybe").mkdir()
    message = error(root, classes=["yes", "maybe"])
    assert f"{root / 'maybe'}" in message and "no WAV files" in message
    assert "missing left" in error(root, classes=["yes", "left"])
    _write(root / "no" / "zz_nohash_0.wav", _pcm16(np.zeros(400)), channels=2)
    message = error(root, classes=["yes", "no"])
    assert str(root / "no" / "zz_nohash_0.wav") in message and "stereo" in message
    empty = tmp_path / "empty"
    (empty / "a").mkdir(parents=True)
    (empty / "b").mkdir()
    assert "no WAV files" in error(empty)


# ---- machine_sound_folder --------------------------------------------------------------------------------------
def _machine_tree(root: Path) -> Path:
    for machine in ("00", "02"):
        for n in range(4):
            _write(root / "train" / "normal" / f"normal_id_{machine}_{n:08d}.wav", _pcm16(_tone(100, 16000, 0.3)))
            _write(root / "test" / "normal" / f"normal_id_{machine}_{n:08d}.wav", _pcm16(_tone(100, 16000, 0.3)))
            _write(root / "test" / "anomaly" / f"anomaly_id_{machine}_{n:08d}.wav", _pcm16(_tone(150, 16000, 0.3)))
    return root


def test_machine_sound_folder(tmp_path):
    root = _machine_tree(tmp_path / "fan")
    data = load_audio(_dataset(kind="machine_sound_folder", path=str(root), val_fraction=0.25, clip_ms=500),
                      tmp_path, seed=0)
    assert data.classes == ["normal", "anomaly"] and data.x_train.shape == (8, 8000)
    assert data.y_train.tolist() == [0] * 8
    for split, per_group in (("val", 1), ("test", 3)):  # 4 clips per (label, machine): 1 to validation
        _, y, meta = data.split(split)
        for label in (0, 1):
            for machine in ("id_00", "id_02"):
                assert int(np.sum((y == label) & (meta["machine_id"] == machine))) == per_group
    assert not set(data.meta_val["file"]) & set(data.meta_test["file"])
    limited = load_audio(_dataset(kind="machine_sound_folder", path=str(root), val_fraction=0.25, clip_ms=500,
                                  max_train=3, max_test=5), tmp_path, seed=0)
    assert (len(limited.y_train), len(limited.y_test), len(limited.meta_test["file"])) == (3, 5, 5)
    assert set(limited.meta_test["file"]) <= set(data.meta_test["file"])


def test_machine_sound_folder_errors(tmp_path):
    root = _machine_tree(tmp_path / "fan")
    for wav in (root / "test" / "anomaly").iterdir():
        wav.unlink()
    with pytest.raises(DataError, match=r"no anomaly WAV files for test in .*fan/test/anomaly"):
        load_audio(_dataset(kind="machine_sound_folder", path=str(root)), tmp_path, seed=0)
    _write(root / "test" / "anomaly" / "anomaly_id_00_0.wav", b"")
    with pytest.raises(DataError, match=r"anomaly_id_00_0.wav: empty WAV"):
        load_audio(_dataset(kind="machine_sound_folder", path=str(root)), tmp_path, seed=0)


# ---- cache and card --------------------------------------------------------------------------------------------
def test_cache_is_keyed_and_deterministic(tmp_path, monkeypatch):
    root = _machine_tree(tmp_path / "fan")
    dataset = _dataset(kind="machine_sound_folder", path=str(root), clip_ms=300)
    first = load_audio_cached(dataset, tmp_path, 0, tmp_path / "c1")
    load_audio_cached(dataset, tmp_path, 0, tmp_path / "c2")
    assert (tmp_path / "c1" / "audio.npz").read_bytes() == (tmp_path / "c2" / "audio.npz").read_bytes()
    card = audio_data.read_json(tmp_path / "c1" / "card.json")
    assert card["counts"]["train"]["per_class"] == {"normal": 8, "anomaly": 0}
    assert card["machine_ids"]["test"] == ["id_00", "id_02"] and card["clip_samples"] == 4800
    assert "| anomaly | 0 |" in (tmp_path / "c1" / "card.md").read_text()
    cached = read_audio_cache(tmp_path / "c1")
    assert np.array_equal(cached.x_test, first.x_test) and list(cached.meta_test["file"]) == list(first.meta_test["file"])

    def refuse(*args):
        raise AssertionError("regenerated although the cache matches")

    monkeypatch.setattr(audio_data, "load_audio", refuse)
    load_audio_cached(dataset, tmp_path, 0, tmp_path / "c1")
    monkeypatch.undo()
    changed = load_audio_cached(dict(dataset, clip_ms=200), tmp_path, 0, tmp_path / "c1")
    assert changed.clip_samples == 3200 and read_audio_cache(tmp_path / "c1").clip_samples == 3200


# ---- schema ------------------------------------------------------------------------------------------------------
PIPELINE = """name: kws_test
dataset:
  kind: speech_synth
  samples_per_class: 10
search:
  model:
    input: {resolution: 32, channels: 1}
    num_classes: 12
    stem: {channels: 8, kernel: 3, stride: 2}
    stages:
      - {channels: 8, depth: 1, stride: 1, expansion: 1}
train:
  epochs: 1
deploy:
  board: stm32f746
frontend:
  kind: log_mel
"""


def _load(tmp_path: Path, text: str):
    from schemas.loader import load_pipeline

    path = tmp_path / "p.yaml"
    path.write_text(text)
    return load_pipeline(str(path))


def test_schema_audio_kinds(tmp_path):
    dataset = _load(tmp_path, PIPELINE).pipeline.dataset
    assert (dataset.kind, dataset.resolution, dataset.sample_rate, dataset.clip_ms) == ("speech_synth", None, 16000, 1000)
    with pytest.raises(ConfigError, match=r"p.yaml:2:\d+: dataset: .*resolution: for image datasets, not kind speech_synth"):
        _load(tmp_path, PIPELINE.replace("  samples_per_class: 10", "  resolution: 16"))
    with pytest.raises(ConfigError, match=r"p.yaml:2:\d+: dataset: .*missing required field 'resolution' for kind sklearn_digits"):
        _load(tmp_path, PIPELINE.replace("speech_synth\n  samples_per_class: 10", "sklearn_digits"))
    with pytest.raises(ConfigError, match=r"samples_per_class: for audio datasets, not kind sklearn_digits"):
        _load(tmp_path, PIPELINE.replace("speech_synth", "sklearn_digits\n  resolution: 16"))
    with pytest.raises(ConfigError, match=r"dataset.path is required for kind audio_folder"):
        _load(tmp_path, PIPELINE.replace("speech_synth", "audio_folder"))
    with pytest.raises(ConfigError, match=r"snr_db \[20.0, 5.0\]: low must not exceed high"):
        _load(tmp_path, PIPELINE.replace("  samples_per_class: 10", "  snr_db: [20, 5]"))
    with pytest.raises(ConfigError, match=r"differ from the frontend's \(8000 Hz, 1000 ms\)"):
        _load(tmp_path, PIPELINE + "  sample_rate: 8000\n")  # 32 frames x 32 mel bins at 8 kHz too
    with pytest.raises(ConfigError, match=r"dataset.kind speech_synth needs a frontend: section"):
        _load(tmp_path, PIPELINE.replace("frontend:\n  kind: log_mel\n", ""))


def test_config_time_check_names_the_yaml_line(tmp_path):
    """tasks/config.py runs the audio kinds' presence check before any task: a missing folder is a ConfigError."""
    from tasks.config import resolve

    path = tmp_path / "p.yaml"
    path.write_text(PIPELINE.replace("speech_synth\n  samples_per_class: 10", "audio_folder\n  path: no/such/sc"))
    with pytest.raises(ConfigError, match=r"p.yaml:4:3: dataset.path: .*no/such/sc does not exist \(audio_folder needs"):
        resolve(str(path), {})
