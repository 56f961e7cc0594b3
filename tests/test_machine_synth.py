"""machine_synth: deterministic by seed, the split rules (held-out kinds only in test), and the physics it claims,
checked with standard vibration-analysis tools (spectrum peak, envelope spectrum) rather than its own code."""
import numpy as np
import pytest
from scipy.signal import butter, hilbert, sosfiltfilt

from mcuforge.audio import machine_synth as ms
from schemas.anomaly import ANOMALY_KINDS, MachineSynthConfig

RATE = 16000
COUNTS = {"train": (6, 0), "val": (4, 6), "test": (4, 10)}


@pytest.fixture(scope="module")
def sets():
    return ms.generate(["fan", "pump"], COUNTS, ["rubbing", "noise_floor"], 1.0, 7, RATE, RATE)


def test_kinds_match_the_schema():
    assert tuple(ms.KINDS) == ANOMALY_KINDS


def test_deterministic_by_seed(sets):
    again = ms.generate(["fan", "pump"], COUNTS, ["rubbing", "noise_floor"], 1.0, 7, RATE, RATE)
    other = ms.generate(["fan", "pump"], COUNTS, ["rubbing", "noise_floor"], 1.0, 8, RATE, RATE)
    for split in ms.SPLITS:
        assert sets[split].pcm.dtype == np.int16
        assert np.array_equal(sets[split].pcm, again[split].pcm)
        assert not np.array_equal(sets[split].pcm, other[split].pcm)


def test_splits_and_held_out_kinds(sets):
    held = {ms.KINDS.index("rubbing"), ms.KINDS.index("noise_floor")}
    for split, (normal, anomalous) in COUNTS.items():
        s = sets[split]
        assert len(s.pcm) == 2 * (normal + anomalous)
        assert (s.label == (s.kind >= 0)).all()
        assert [(s.label[s.machine == m] == 0).sum() for m in (0, 1)] == [normal, normal]
    assert (sets["train"].label == 0).all()
    val_kinds = set(sets["val"].kind[sets["val"].kind >= 0].tolist())
    assert val_kinds and not val_kinds & held
    assert set(sets["test"].kind[sets["test"].kind >= 0].tolist()) == set(range(len(ms.KINDS)))


def test_fundamental_is_the_spectrum_peak(sets):
    """The strongest spectral line of a normal clip is the machine's fundamental (within its +-1.5 % speed range
    and 1 % drift)."""
    for m, name in enumerate(["fan", "pump"]):
        clip = sets["train"].pcm[sets["train"].machine == m][0].astype(np.float64)
        spectrum = np.abs(np.fft.rfft(clip * np.hanning(len(clip))))
        peak_hz = np.argmax(spectrum) * RATE / len(clip)
        assert abs(peak_hz / ms.machine(name, 7).f0 - 1) < 0.03


def test_bearing_fault_shows_in_the_envelope_spectrum(sets):
    """Envelope analysis (band-pass around the resonance, Hilbert envelope, its spectrum), the textbook bearing
    diagnostic: a faulty clip has a line at bearing_ratio x f0 far above a normal clip's."""
    test = sets["test"]
    m = ms.machine("fan", 7)
    sos = butter(4, [m.bearing_hz * 0.7, min(m.bearing_hz * 1.3, RATE / 2 - 100)], "bandpass", fs=RATE, output="sos")

    def line(clip: np.ndarray) -> float:
        envelope = np.abs(hilbert(sosfiltfilt(sos, clip.astype(np.float64))))
        spectrum = np.abs(np.fft.rfft(envelope - envelope.mean()))
        freqs = np.fft.rfftfreq(len(clip), 1 / RATE)
        band = np.abs(freqs - m.bearing_ratio * m.f0) < 0.03 * m.bearing_ratio * m.f0
        return spectrum[band].max() / np.median(spectrum[(freqs > 20) & (freqs < 2000)])

    faulty = test.pcm[(test.machine == 0) & (test.kind == ms.KINDS.index("bearing"))]
    normal = test.pcm[(test.machine == 0) & (test.label == 0)]
    assert min(line(c) for c in faulty) > 3 * max(line(c) for c in normal)


def test_noise_floor_anomaly_raises_high_band_energy(sets):
    test = sets["test"]
    sos = butter(4, 6000, "highpass", fs=RATE, output="sos")

    def high(clip):
        return np.sqrt(np.mean(sosfiltfilt(sos, clip.astype(np.float64)) ** 2))

    for m in (0, 1):
        louder = [high(c) for c in test.pcm[(test.machine == m) & (test.kind == ms.KINDS.index("noise_floor"))]]
        normal = [high(c) for c in test.pcm[(test.machine == m) & (test.label == 0)]]
        assert min(louder) > max(normal)


def test_schema_refuses_holding_out_every_kind():
    with pytest.raises(ValueError, match="validation needs at least one anomaly kind"):
        MachineSynthConfig(held_out_kinds=list(ANOMALY_KINDS))
