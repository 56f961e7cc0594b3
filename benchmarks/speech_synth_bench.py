"""How long `dataset.kind: speech_synth` takes to generate (issue 16, point 1), and what it produces.

For each samples_per_class given (default: the schema's default) and each espeak-ng thread count, generates the data
set from scratch (no cache) and records the wall time, the time inside espeak-ng calls, the clip counts per split,
the speakers per split and the sessions re-spoken word by word (their pauses did not separate the words); then
checks that a second generation with the same seed is identical. Writes benchmarks/results/speech_synth.json.

    .venv/bin/python benchmarks/speech_synth_bench.py [--samples 200 400] [--workers 1 2]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mcuforge.core.io import write_json  # noqa: E402
from mcuforge.ml import speech_synth  # noqa: E402
from mcuforge.ml.audio_data import SPLITS, load_audio  # noqa: E402
from schemas.pipeline import DatasetConfig  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = DatasetConfig.model_fields["samples_per_class"].default
    parser.add_argument("--samples", type=int, nargs="+", default=[default], help="samples_per_class values")
    parser.add_argument("--workers", type=int, nargs="+", default=[2], help="espeak-ng threads")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    runs = []
    for samples in args.samples:
        dataset = DatasetConfig(kind="speech_synth", samples_per_class=samples).model_dump(mode="json")
        for workers in args.workers:
            original = speech_synth.generate
            speech_synth.generate = lambda d, s, w=workers: original(d, s, workers=w)
            try:
                started = time.monotonic()
                data = load_audio(dataset, Path(tempfile.gettempdir()), args.seed)
                seconds = time.monotonic() - started
                again = load_audio(dataset, Path(tempfile.gettempdir()), args.seed)
            finally:
                speech_synth.generate = original
            identical = all(np.array_equal(data.split(s)[0], again.split(s)[0]) for s in SPLITS)
            run = {
                "samples_per_class": samples, "workers": workers, "seconds": round(seconds, 2),
                "espeak_seconds": data.info["espeak_seconds"],
                "clips": {s: int(len(data.split(s)[1])) for s in SPLITS},
                "speakers": {s: len(data.info["speakers"][s]) for s in SPLITS},
                "respoken_sessions": data.info["respoken_sessions"],
                "identical_on_regeneration": identical,
                "mbytes": round(sum(data.split(s)[0].nbytes for s in SPLITS) / 1e6, 1),
            }
            runs.append(run)
            print(run)
    write_json(ROOT / "benchmarks" / "results" / "speech_synth.json",
               {"espeak_ng": data.info["espeak_ng"], "classes": data.classes, "runs": runs})


if __name__ == "__main__":
    main()
