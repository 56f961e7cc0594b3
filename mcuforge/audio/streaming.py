"""Streaming keyword spotting (issue 16, point 5): the Python reference of the C streaming front end
(mf_frontend_stream_push in engine_c/src/frontend/mf_frontend.c) and a posterior-smoothing detector.

Interface:
    stream_features(signal, frontend, scale, zero_point) -> int8 [K, num_features]: the frame at t = k hop for
        every k with k hop + window_samples <= len(signal). The front end's frames are independent (block floating
        point per frame), so the map the network sees after the clip starting at sample j hop is rows j .. j +
        num_frames - 1, byte-identical to `features.extract` of that clip; the C stream (history = the first
        window - hop samples, then hop samples per push) gives row k at push k.
    softmax_int8(logits, scale, zero_point) -> float posteriors of int8 logits (dequantised, then softmax)
    Detector(num_classes, config, ...): push one posterior vector per classifier run, get a class or None
    detect(frames, classify, frontend, config) -> [(time_s, class)]: run `classify` on the window of num_frames
        frames every `stride` hops, average its posteriors over the last `smooth` runs and report a keyword class
        whose average exceeds `threshold`, at most once per `refractory_s`.

A detection's time is the end of the window that triggered it (when a device would fire): the keyword lies in the
second before it, plus up to (smooth - 1) stride hops of smoothing delay."""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import numpy as np

from mcuforge.audio.features import extract_frames
from mcuforge.audio.tables import FrontendError

if TYPE_CHECKING:
    from schemas.frontend import FrontendConfig


def stream_keep(frontend: "FrontendConfig") -> int:
    """Samples the stream keeps between pushes (the history given to init): max(window - hop, 0)."""
    return max(frontend.window_samples - frontend.hop_samples, 0)


def stream_features(signal: np.ndarray, frontend: "FrontendConfig", scale: float, zero_point: int) -> np.ndarray:
    """int16 [S] -> int8 [K, num_features], frame k over samples [k hop, k hop + window), K = 1 + (S - W) // hop."""
    signal = np.asarray(signal)
    if signal.ndim != 1 or signal.dtype != np.int16:
        raise FrontendError(f"streaming: the signal must be 1-D int16, got {signal.dtype} {list(signal.shape)}")
    window, hop = frontend.window_samples, frontend.hop_samples
    if signal.size < window:
        return np.zeros((0, frontend.num_features), dtype=np.int8)
    count = 1 + (signal.size - window) // hop
    frames = np.lib.stride_tricks.as_strided(signal, shape=(count, window),
                                             strides=(hop * signal.strides[0], signal.strides[0]))
    return extract_frames(np.ascontiguousarray(frames), frontend, scale, zero_point)


def softmax_int8(logits: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """Posteriors (float64, sum 1 on the last axis) of int8 logits with the output's scale and zero point."""
    real = (np.asarray(logits, dtype=np.float64) - zero_point) * scale
    real -= real.max(axis=-1, keepdims=True)
    exp = np.exp(real)
    return exp / exp.sum(axis=-1, keepdims=True)


@dataclass(frozen=True)
class DetectorConfig:
    """stride: hops between classifier runs (>= 1); smooth: runs averaged (>= 1); threshold: the averaged posterior
    a keyword needs, (0, 1); refractory_s: no detection within this time after one; ignore: class indices never
    reported (unknown, silence)."""

    stride: int = 2
    smooth: int = 3
    threshold: float = 0.6
    refractory_s: float = 1.0
    ignore: tuple[int, ...] = ()

    def __post_init__(self):
        if self.stride < 1 or self.smooth < 1:
            raise FrontendError(f"detector: stride and smooth must be >= 1, got {self.stride}, {self.smooth}")
        if not 0.0 < self.threshold < 1.0:
            raise FrontendError(f"detector: threshold must be in (0, 1), got {self.threshold}")
        if self.refractory_s < 0.0:
            raise FrontendError(f"detector: refractory_s must be >= 0, got {self.refractory_s}")


class Detector:
    """Posterior smoothing and thresholding over successive classifier runs (one `push` per run)."""

    def __init__(self, num_classes: int, config: DetectorConfig):
        self.config = config
        self.history: deque[np.ndarray] = deque(maxlen=config.smooth)
        self.keywords = np.array([c not in config.ignore for c in range(num_classes)])
        self.last_time = -np.inf

    def push(self, posteriors: np.ndarray, time_s: float) -> int | None:
        """The class detected at `time_s` (the end of the window the posteriors are of), or None."""
        posteriors = np.asarray(posteriors, dtype=np.float64)
        if posteriors.shape != self.keywords.shape:
            raise FrontendError(f"detector: expected {self.keywords.size} posteriors, got {list(posteriors.shape)}")
        self.history.append(posteriors)
        average = np.mean(self.history, axis=0)
        scores = np.where(self.keywords, average, -np.inf)
        best = int(np.argmax(scores))
        if scores[best] <= self.config.threshold or time_s - self.last_time < self.config.refractory_s:
            return None
        self.last_time = time_s
        return best


def detect(frames: np.ndarray, classify: Callable[[np.ndarray], np.ndarray], frontend: "FrontendConfig",
           config: DetectorConfig, num_classes: int) -> list[tuple[float, int]]:
    """Detections [(time_s, class)] over stream frames [K, num_features]: `classify` maps an int8 window
    [num_frames, num_features] to posteriors [num_classes]; it runs on windows starting at 0, stride, 2 stride ..."""
    detector = Detector(num_classes, config)
    found = []
    rate, hop, window = frontend.sample_rate, frontend.hop_samples, frontend.window_samples
    for start in range(0, frames.shape[0] - frontend.num_frames + 1, config.stride):
        end_s = ((start + frontend.num_frames - 1) * hop + window) / rate
        label = detector.push(classify(frames[start:start + frontend.num_frames]), end_s)
        if label is not None:
            found.append((end_s, label))
    return found
