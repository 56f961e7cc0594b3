"""Audio clips -> the network's input: int16 PCM through the front end's Python reference (mcuforge/audio/features)
into int8 features, stored as the pipeline's uint8 "image" `u = q + 128` (frames x values x 1), so training,
quantization and verification treat them like any other input. The network sees `u / 255`; on the device a
256-entry table maps the front end's int8 output to the network's int8 input (the quantization ONNX Runtime
applies to `u / 255`, read from ONNX Runtime itself at codegen), so the chain is exact.

The int8 scale/zero point of the features is `frontend.output_scale`/`output_zero_point`, or (scale 0) chosen
from the training clips' feature range widened to hold 0 (low = min(low, 0), high = max(high, 0), as ONNX Runtime's
calibration does): scale = float32((high - low) / 255), zero point = round(-128 - low / scale). One rule for the
classifiers' and the autoencoders' features (anomaly_data); float32, because an autoencoder's network input takes
this scale as its own (an ONNX float32)."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from mcuforge.audio import features

if TYPE_CHECKING:
    from schemas.frontend import FrontendConfig


def quantization(pcm_train: np.ndarray, frontend: "FrontendConfig") -> tuple[float, int]:
    """The features' int8 (scale, zero point): given, or from the training clips' range (stated above)."""
    if frontend.output_scale > 0:
        return float(frontend.output_scale), int(frontend.output_zero_point)
    low, high = features.feature_range(pcm_train, frontend)
    low, high = min(float(low), 0.0), max(float(high), 0.0)
    if high - low <= 0:
        return 1.0, 0
    scale = float(np.float32((high - low) / 255.0))
    zero_point = int(np.clip(round(-128 - low / scale), -128, 127))
    return scale, zero_point


def as_images(pcm: np.ndarray, frontend: "FrontendConfig", scale: float, zero_point: int) -> np.ndarray:
    """int16 PCM (N, samples) -> uint8 (N, frames, values, 1): the int8 features + 128."""
    if len(pcm) == 0:
        return np.zeros((0, frontend.num_frames, frontend.num_features, 1), np.uint8)
    q = features.extract(pcm, frontend, scale, zero_point)
    return (q.astype(np.int16) + 128).astype(np.uint8)[..., None]


def fit_clips(pcm: np.ndarray, samples: int) -> np.ndarray:
    """Clips cut or zero-padded at the end to `samples` (the front end's clip length)."""
    if pcm.shape[1] >= samples:
        return np.ascontiguousarray(pcm[:, :samples])
    return np.pad(pcm, ((0, 0), (0, samples - pcm.shape[1])))


def feature_dataset(audio, frontend: "FrontendConfig", max_train: int = 0, max_test: int = 0, seed: int = 0):
    """An AudioDataset (int16 PCM splits) -> (the pipeline's Dataset of uint8 feature maps, the test clips' PCM in
    the same order, the front end's facts for the card). Training uses the train and validation clips (the test clips
    are the held-out ones: voices or speakers training never heard, when the dataset knows them)."""
    from mcuforge.ml.data import Dataset

    x_train = np.concatenate([audio.x_train, audio.x_val]) if len(audio.x_val) else audio.x_train
    y_train = np.concatenate([audio.y_train, audio.y_val]) if len(audio.y_val) else audio.y_train
    x_test, y_test = audio.x_test, audio.y_test
    rng = np.random.default_rng(seed + 1)
    if max_train and len(y_train) > max_train:
        keep = np.sort(rng.permutation(len(y_train))[:max_train])
        x_train, y_train = x_train[keep], y_train[keep]
    if max_test and len(y_test) > max_test:
        keep = np.sort(rng.permutation(len(y_test))[:max_test])
        x_test, y_test = x_test[keep], y_test[keep]
    x_train = fit_clips(x_train, frontend.clip_samples)
    x_test = fit_clips(x_test, frontend.clip_samples)
    scale, zero_point = quantization(x_train, frontend)
    data = Dataset(x_train=as_images(x_train, frontend, scale, zero_point), y_train=y_train.astype(np.int64),
                   x_test=as_images(x_test, frontend, scale, zero_point), y_test=y_test.astype(np.int64),
                   classes=list(audio.classes), source=f"{audio.kind}: {audio.source}")
    facts = {"kind": frontend.kind, "scale": scale, "zero_point": zero_point,
             "shape": [frontend.num_frames, frontend.num_features], "sample_rate": frontend.sample_rate,
             "clip_samples": frontend.clip_samples,
             "layout": "x = int8 features + 128 as uint8 [N, frames, values, 1]; pcm_test.npy: int16 [N, clip_samples]"}
    return data, np.ascontiguousarray(x_test, dtype=np.int16), facts
