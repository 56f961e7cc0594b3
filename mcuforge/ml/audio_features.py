"""Audio clips -> the network's input: int16 PCM through the front end's Python reference (mcuforge/audio/features)
into int8 features, stored as the pipeline's uint8 "image" `u = q + 128` (frames x values x 1), so training,
quantization and verification treat them like any other input. The network sees `u / 255`; on the device a
256-entry table maps the front end's int8 output to the network's int8 input (the quantization ONNX Runtime
applies to `u / 255`, read from ONNX Runtime itself at codegen), so the chain is exact.

The int8 scale/zero point of the features is `frontend.output_scale`/`output_zero_point`, or (scale 0) chosen
from the training clips' feature range: scale = (high - low) / 255, zero point = round(-128 - low / scale)."""
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
    scale = (high - low) / 255.0
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
