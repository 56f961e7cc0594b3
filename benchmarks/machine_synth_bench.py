"""machine_synth speed (issue 17): wall seconds to generate the default anomaly pipeline's clips (4 machine ids,
train 200 + val 40/40 + test 100/100 per id: 2,240 clips of 1 s at 16 kHz) and the float stand-in front end's
log-mel (1024-point FFT, 128 mel bins) on them. Prints a Markdown table; run by hand:

    .venv/bin/python benchmarks/machine_synth_bench.py
"""
import time

from mcuforge.audio import features, machine_synth
from schemas.frontend import FrontendConfig


def main() -> None:
    ids = ["id_00", "id_01", "id_02", "id_03"]
    counts = {"train": (200, 0), "val": (40, 40), "test": (100, 100)}
    started = time.perf_counter()
    sets = machine_synth.generate(ids, counts, ["rubbing", "noise_floor"], 0.5, 0, 16000, 16000)
    synth = time.perf_counter() - started
    clips = sum(len(s.pcm) for s in sets.values())
    frontend = FrontendConfig(window_ms=64, hop_ms=32, fft_size=1024, mel_bins=128, log_floor=1e-9)
    started = time.perf_counter()
    for s in sets.values():
        features.extract(s.pcm, frontend, 0.3, 0)
    feats = time.perf_counter() - started
    print("| step | clips | seconds | clips/s |\n|---|---:|---:|---:|")
    print(f"| machine_synth | {clips} | {synth:.2f} | {clips / synth:,.0f} |")
    print(f"| log-mel (float stand-in) | {clips} | {feats:.2f} | {clips / feats:,.0f} |")


if __name__ == "__main__":
    main()
