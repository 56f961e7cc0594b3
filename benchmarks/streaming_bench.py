"""Streaming keyword spotting end to end (issue 16, point 5): espeak-ng recordings with keywords at known times,
the streaming front end (mcuforge/audio/streaming.py, byte-identical to the C mf_frontend_stream_push), the int8 KWS
network of a `doit run pipeline=kws` build (ONNX Runtime on quantize/model_int8.onnx) every `stride` hops, and the
posterior-smoothing detector. Reports, per recording and in total, keywords detected with the right class, wrong
class, missed, and false alarms (detections matching no word, or a non-keyword word), and the detection latency.
Writes benchmarks/results/streaming.json.

A detection matches a word when its time (the end of the window that fired) lies in
[word start, word stop + 1 s window + smoothing delay + one stride].

    .venv/bin/python benchmarks/streaming_bench.py [--build build/kws] [--voices 6] [--stride 2] [--smooth 3]
        [--threshold 0.7]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mcuforge.audio.streaming import DetectorConfig, detect, stream_features  # noqa: E402
from mcuforge.core.io import write_json  # noqa: E402
from mcuforge.ml.data import to_float_nchw  # noqa: E402
from mcuforge.ml.speech_stream import long_utterance  # noqa: E402
from schemas.frontend import FrontendConfig  # noqa: E402

WORDS = ["yes", "stop", "house", "go", "left", "no", "marvin", "down", "up", "right", "on", "off"]


def softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max())
    return e / e.sum()


def score(found, spans, classes, keywords, tolerance_s):
    hits = wrong = false = 0
    latencies = []
    used = set()
    for time_s, label in found:
        match = [i for i, (start, stop, _) in enumerate(spans) if start < time_s <= stop + tolerance_s and i not in used]
        if not match:
            false += 1
            continue
        i = match[0]
        used.add(i)
        word = spans[i][2]
        if word not in keywords:
            false += 1
        elif classes[label] == word:
            hits += 1
            latencies.append(time_s - spans[i][1])
        else:
            wrong += 1
    missed = sum(1 for i, span in enumerate(spans) if span[2] in keywords and i not in used)
    return hits, wrong, missed, false, latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", type=Path, default=ROOT / "build" / "kws")
    parser.add_argument("--voices", type=int, default=6, help="test-split speakers used (never heard in training)")
    parser.add_argument("--stride", type=int, default=2)
    parser.add_argument("--smooth", type=int, default=3)
    parser.add_argument("--threshold", type=float, default=0.7)
    parser.add_argument("--refractory", type=float, default=1.0)
    args = parser.parse_args()
    import onnxruntime as ort

    card = json.loads((args.build / "data" / "card.json").read_text())
    config = json.loads((args.build / "config.resolved.json").read_text())
    frontend = FrontendConfig(**config["frontend"])
    scale, zero_point = card["frontend"]["scale"], card["frontend"]["zero_point"]
    classes = card["classes"]
    keywords = [c for c in classes if c not in ("unknown", "silence")]
    ignore = tuple(i for i, c in enumerate(classes) if c not in keywords)
    session = ort.InferenceSession(str(args.build / "quantize" / "model_int8.onnx"), providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name

    def classify(window: np.ndarray) -> np.ndarray:
        x = (window.astype(np.int16) + 128).astype(np.uint8)[None, :, :, None]
        return softmax(session.run(None, {input_name: to_float_nchw(x)})[0][0].astype(np.float64))

    detector = DetectorConfig(stride=args.stride, smooth=args.smooth, threshold=args.threshold,
                              refractory_s=args.refractory, ignore=ignore)
    tolerance = 1.0 + (args.smooth - 1) * args.stride * frontend.hop_samples / frontend.sample_rate + \
        args.stride * frontend.hop_samples / frontend.sample_rate
    voices = card["clips"]["info"]["speakers"]["test"][:args.voices]
    rows = []
    totals = np.zeros(4, np.int64)
    latencies: list[float] = []
    seconds = 0.0
    started = time.perf_counter()
    for index, voice in enumerate(voices):
        words = WORDS[index % len(WORDS):] + WORDS[:index % len(WORDS)]
        pcm, spans = long_utterance(words, voice=voice, gap_s=1.5, snr_db=20.0, seed=index)
        frames = stream_features(pcm, frontend, scale, zero_point)
        found = detect(frames, classify, frontend, detector, len(classes))
        hits, wrong, missed, false, lat = score(found, spans, classes, keywords, tolerance)
        totals += (hits, wrong, missed, false)
        latencies += lat
        seconds += len(pcm) / frontend.sample_rate
        rows.append({"voice": voice, "words": [s[2] for s in spans], "word_times_s": [s[:2] for s in spans],
                     "detections": [(round(t, 3), classes[c]) for t, c in found], "hits": hits, "wrong_class": wrong,
                     "missed": missed, "false_alarms": false})
        print(f"{voice:28s} hits {hits} wrong {wrong} missed {missed} false {false}: "
              f"{[(round(t, 2), classes[c]) for t, c in found]}")
    keyword_count = int(totals[0] + totals[1] + totals[2])
    result = {
        "build": str(args.build), "detector": vars(detector) | {"ignore": list(ignore)}, "tolerance_s": tolerance,
        "recordings": len(rows), "audio_s": round(seconds, 1), "keywords": keyword_count,
        "hits": int(totals[0]), "wrong_class": int(totals[1]), "missed": int(totals[2]),
        "false_alarms": int(totals[3]), "hit_rate": round(float(totals[0]) / max(1, keyword_count), 3),
        "false_alarms_per_hour": round(float(totals[3]) / max(seconds, 1e-9) * 3600, 1),
        "median_latency_after_word_s": round(float(np.median(latencies)), 3) if latencies else None,
        "front_end_frames_per_inference": {"streaming": args.stride, "batch": frontend.num_frames},
        "wall_s": round(time.perf_counter() - started, 1), "runs": rows,
    }
    write_json(ROOT / "benchmarks" / "results" / "streaming.json", result)
    print(json.dumps({k: v for k, v in result.items() if k != "runs"}, indent=1))


if __name__ == "__main__":
    main()
