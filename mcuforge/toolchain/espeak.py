"""espeak-ng (Debian's `espeak-ng` package), the offline speech synthesiser behind `dataset.kind: speech_synth`.

`speak` runs one espeak-ng call that says a list of words, each as its own paragraph (so each gets the prosody of a
word said alone: as "yes. no." espeak-ng shortens every word but the last by about a third), separated by a long
word gap (`-g`), and returns the WAV file's bytes (espeak-ng writes 16-bit mono PCM at 22,050 Hz); the caller cuts the words
apart at the pauses. One call per list (rather than per word) keeps the process start-up cost (~60 ms) shared by
a dozen words. `speak_many` runs several such calls in a small thread pool; results come back in order.
"""
from __future__ import annotations

import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from mcuforge.toolchain.process import ToolchainError, run

ESPEAK = "espeak-ng"
INSTALL_HINT = "install espeak-ng: apt-get install --no-install-recommends espeak-ng"
SPEAK_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Utterance:
    """One espeak-ng call: `voice` is a voice file with an optional variant (`gmw/en-US+f4`), `speed` in words per
    minute (-s), `pitch` 0..99 (-p), `amplitude` 0..200 (-a), `word_gap` in units of 10 ms at the default speed (-g)."""

    words: tuple[str, ...]
    voice: str
    speed: int
    pitch: int
    amplitude: int
    word_gap: int = 80


def require_espeak() -> str:
    """The espeak-ng executable; ToolchainError with the install command when it is missing."""
    path = shutil.which(ESPEAK)
    if path is None:
        raise ToolchainError(f"{ESPEAK} not found on PATH (dataset.kind speech_synth synthesises its keywords "
                             f"with it): {INSTALL_HINT}")
    return path


def espeak_version() -> str:
    """First line of `espeak-ng --version` (e.g. "eSpeak NG text-to-speech: 1.51  Data at: ...")."""
    output = run([require_espeak(), "--version"], SPEAK_TIMEOUT_S, "espeak-ng version").stdout
    return output.splitlines()[0].strip() if output.strip() else "espeak-ng (unknown version)"


def data_dir() -> Path:
    """espeak-ng's data folder (from `espeak-ng --version`: "... Data at: <folder>")."""
    version = espeak_version()
    if "Data at:" not in version:
        raise ToolchainError(f"cannot find espeak-ng's data folder in its version line {version!r}")
    return Path(version.split("Data at:", 1)[1].strip())


def check_voices(voices: list[str], variants: list[str]) -> None:
    """ToolchainError naming any voice file (`gmw/en-US`, under lang/ or voices/) or variant (`m3`, under voices/!v/)
    espeak-ng does not have. Needed because espeak-ng ignores an unknown variant silently (same audio, exit code 0),
    which would make two "different" speakers identical."""
    folder = data_dir()
    for voice in voices:
        if not ((folder / "lang" / voice).is_file() or (folder / "voices" / voice).is_file()):
            raise ToolchainError(f"dataset.voices: espeak-ng has no voice {voice!r} (voice files under "
                                 f"{folder / 'lang'}, e.g. gmw/en-US; `espeak-ng --voices=en` lists them)")
    for variant in variants:
        if not (folder / "voices" / "!v" / variant).is_file():
            known = sorted(p.name for p in (folder / "voices" / "!v").glob("*"))
            raise ToolchainError(f"dataset.variants: espeak-ng has no variant {variant!r} (known: {', '.join(known)})")


def speak(utterance: Utterance, executable: str | None = None) -> bytes:
    """The WAV bytes of one utterance (its words as separate paragraphs: "yes.\n\nstop.\n\nhouse.")."""
    executable = executable or require_espeak()
    text = "\n\n".join(f"{word}." for word in utterance.words)  # a paragraph each: every word is said utterance-final
    with tempfile.TemporaryDirectory(prefix="mf_espeak_") as folder:
        out = Path(folder) / "speech.wav"
        run([executable, "-v", utterance.voice, "-s", str(utterance.speed), "-p", str(utterance.pitch),
             "-a", str(utterance.amplitude), "-g", str(utterance.word_gap), "-w", str(out), text],
            SPEAK_TIMEOUT_S, f"espeak-ng voice {utterance.voice}")
        if not out.is_file():
            raise ToolchainError(f"espeak-ng voice {utterance.voice} wrote no audio for {text!r}")
        return out.read_bytes()


def speak_many(utterances: list[Utterance], workers: int = 2) -> list[bytes]:
    """WAV bytes of each utterance, in the given order (calls run in a pool of `workers` threads)."""
    executable = require_espeak()
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        return list(pool.map(lambda u: speak(u, executable), utterances))
