"""WAV files -> int16 PCM at the pipeline's sample rate and clip length.

`read_wav` parses the RIFF container itself (a few chunks; the stdlib `wave` module reads neither float WAV nor
tells a truncated data chunk from a short one): mono only; 16-bit PCM as is, 24- and 32-bit integer PCM and 32/64-bit
IEEE float converted to int16 by rounding (half to even) and clamping; WAVE_FORMAT_EXTENSIBLE with a PCM or float
sub-format accepted. Every refusal is a `DataError` naming the file: not readable, not a WAV file, truncated or
corrupt, stereo, 8-bit, compressed, empty.

`resample` converts the rate with scipy.signal.resample_poly (polyphase FIR, Kaiser window beta 5, scipy's default),
deterministically; `fit_length` cuts or pads a clip to the clip length, **start-aligned**: the first samples are
kept, a short clip is padded with zeros at its end.
"""
from __future__ import annotations

import math
import struct
from pathlib import Path

import numpy as np

from mcuforge.core.errors import DataError
from mcuforge.core.io import write_bytes

PCM = 0x0001
IEEE_FLOAT = 0x0003
EXTENSIBLE = 0xFFFE


def _fail(path: Path, why: str) -> DataError:
    return DataError(f"{path}: {why}")


def _chunks(path: Path, raw: bytes) -> dict[bytes, bytes]:
    """RIFF/WAVE -> {chunk id: payload} (first of each id)."""
    if len(raw) < 12 or raw[:4] not in (b"RIFF", b"RIFX") or raw[8:12] != b"WAVE":
        raise _fail(path, "not a WAV file (no RIFF/WAVE header)")
    if raw[:4] == b"RIFX":
        raise _fail(path, "big-endian WAV (RIFX) is not supported: convert it to 16-bit PCM little-endian")
    chunks: dict[bytes, bytes] = {}
    pos = 12
    while pos + 8 <= len(raw):
        chunk_id, size = raw[pos:pos + 4], struct.unpack_from("<I", raw, pos + 4)[0]
        body = raw[pos + 8: pos + 8 + size]
        if len(body) < size:
            if chunk_id != b"data":
                raise _fail(path, f"corrupt or truncated WAV: chunk {chunk_id!r} needs {size} bytes, {len(body)} left")
            raise _fail(path, f"truncated WAV: the data chunk announces {size} bytes but only {len(body)} are present")
        chunks.setdefault(chunk_id, body)
        pos += 8 + size + (size & 1)
    if b"fmt " not in chunks:
        raise _fail(path, "corrupt WAV: no 'fmt ' chunk")
    if b"data" not in chunks:
        raise _fail(path, "corrupt or truncated WAV: no 'data' chunk")
    return chunks


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    """A mono WAV file -> (int16 samples [n], sample rate in Hz). DataError naming the file when it cannot be used."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise _fail(path, f"cannot read: {exc.strerror or exc}") from None
    return parse_wav(raw, path)


def parse_wav(raw: bytes, path: Path) -> tuple[np.ndarray, int]:
    """The bytes of a WAV file -> (int16 samples, sample rate); `path` names it in errors."""
    chunks = _chunks(path, raw)
    fmt = chunks[b"fmt "]
    if len(fmt) < 16:
        raise _fail(path, f"corrupt WAV: 'fmt ' chunk of {len(fmt)} bytes (at least 16 expected)")
    tag, channels, rate, _, block_align, bits = struct.unpack_from("<HHIIHH", fmt)
    if tag == EXTENSIBLE and len(fmt) >= 26:
        tag = struct.unpack_from("<H", fmt, 24)[0]  # first two bytes of the sub-format GUID
    if tag not in (PCM, IEEE_FLOAT):
        raise _fail(path, f"compressed WAV (format tag {tag:#06x}) is not supported: convert it to 16-bit PCM")
    if channels != 1:
        what = "stereo" if channels == 2 else f"{channels} channels"
        raise _fail(path, f"{what}: mix down or pick a channel (mono WAV files are required)")
    if tag == PCM and bits == 8:
        raise _fail(path, "8-bit WAV is not supported: convert it to 16-bit PCM")
    if (tag, bits) not in ((PCM, 16), (PCM, 24), (PCM, 32), (IEEE_FLOAT, 32), (IEEE_FLOAT, 64)):
        raise _fail(path, f"{bits}-bit {'float' if tag == IEEE_FLOAT else 'PCM'} WAV is not supported "
                          "(16/24/32-bit integer or 32/64-bit float)")
    if rate <= 0 or block_align != bits // 8:
        raise _fail(path, f"corrupt WAV: sample rate {rate}, block align {block_align} for {bits}-bit mono")
    data = chunks[b"data"]
    width = bits // 8
    count = len(data) // width
    if count == 0:
        raise _fail(path, "empty WAV: no samples")
    data = data[: count * width]
    return _to_int16(data, tag, bits), rate


def _to_int16(data: bytes, tag: int, bits: int) -> np.ndarray:
    if tag == PCM and bits == 16:
        return np.frombuffer(data, dtype="<i2").astype(np.int16)
    if tag == PCM and bits == 24:
        bytes3 = np.frombuffer(data, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        value = bytes3[:, 0] | (bytes3[:, 1] << 8) | (bytes3[:, 2] << 16)
        value = np.where(value >= 1 << 23, value - (1 << 24), value)
        return to_int16(value / 256.0)
    if tag == PCM:
        return to_int16(np.frombuffer(data, dtype="<i4") / 65536.0)
    return to_int16(np.frombuffer(data, dtype="<f4" if bits == 32 else "<f8").astype(np.float64) * 32768.0)


def to_int16(values: np.ndarray) -> np.ndarray:
    """Real values on the int16 scale -> int16: round half to even, clamp to [-32768, 32767]."""
    return np.clip(np.rint(values), -32768, 32767).astype(np.int16)


def resample(samples: np.ndarray, rate: int, target_rate: int) -> np.ndarray:
    """int16 [n] at `rate` -> int16 at `target_rate` (scipy.signal.resample_poly; identity when the rates agree)."""
    if rate == target_rate:
        return np.asarray(samples, dtype=np.int16)
    from scipy.signal import resample_poly

    common = math.gcd(rate, target_rate)
    out = resample_poly(np.asarray(samples, dtype=np.float64), target_rate // common, rate // common)
    return to_int16(out)


def fit_length(samples: np.ndarray, length: int) -> np.ndarray:
    """Start-aligned cut or zero pad to exactly `length` samples."""
    if len(samples) >= length:
        return np.asarray(samples[:length], dtype=np.int16)
    out = np.zeros(length, dtype=np.int16)
    out[: len(samples)] = samples
    return out


def load_clip(path: Path, sample_rate: int, clip_samples: int) -> np.ndarray:
    """A WAV file as one int16 clip [clip_samples] at `sample_rate`."""
    samples, rate = read_wav(path)
    return fit_length(resample(samples, rate, sample_rate), clip_samples)


def write_wav(path: Path, samples: np.ndarray, sample_rate: int) -> None:
    """int16 mono samples -> a 16-bit PCM WAV file, written atomically (for inspection and tests)."""
    samples = np.asarray(samples, dtype="<i2")
    data = samples.tobytes()
    header = b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVE"
    fmt = b"fmt " + struct.pack("<IHHIIHH", 16, PCM, 1, sample_rate, sample_rate * 2, 2, 16)
    write_bytes(Path(path), header + fmt + b"data" + struct.pack("<I", len(data)) + data)
