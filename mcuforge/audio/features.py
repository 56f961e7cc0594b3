"""The audio front end's Python reference: int16 PCM clips -> int8 features (frames x values per frame).

Interface (the data stage, training, codegen and verify use only this):
    extract(pcm, frontend, scale, zero_point) -> int8 array (N, frontend.num_frames, frontend.num_features)
    feature_range(pcm, frontend) -> (low, high): the real-valued range of the features, to choose scale/zero point

PLACEHOLDER until the integer implementation lands (it must equal the C front end byte for byte)."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from schemas.frontend import FrontendConfig


def extract(pcm: np.ndarray, frontend: "FrontendConfig", scale: float, zero_point: int) -> np.ndarray:
    raise NotImplementedError("the integer audio front end is not implemented yet")


def feature_range(pcm: np.ndarray, frontend: "FrontendConfig") -> tuple[float, float]:
    raise NotImplementedError("the integer audio front end is not implemented yet")
