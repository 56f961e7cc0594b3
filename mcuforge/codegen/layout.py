"""Weights stored in the order the engine's SIMD loops read them (issue 15, point 4): done once here, at code
generation, instead of on every inference.

Depthwise filters (engine_c/include/mcuforge.h, "Packed depthwise filter"): the int8 filter [K_h, K_w, C] becomes
int16 words for groups of 4 channels. Group g (channels 4g .. 4g + 3, those past C zero), tap t = k_y * K_w + k_x:
four int16 at index (g * K_h * K_w + t) * 4: w[t][4g], w[t][4g + 2], w[t][4g + 1], w[t][4g + 3]. Read as two 32-bit
words, they are the lanes SXTB16 gives the input word of the 4 channels ({c0, c2} and {c1, c3}), already
sign-extended, so one LDRD feeds four 16 x 16 multiply-accumulates; a group's taps are contiguous.
"""
from __future__ import annotations

import numpy as np

DEPTHWISE_GROUP = 4  # channels per packed group
DEPTHWISE_LANES = (0, 2, 1, 3)  # the channel of the group each int16 of a tap holds


def depthwise_packed_size(k_h: int, k_w: int, channels: int) -> int:
    """int16 values of a packed depthwise filter (2 bytes each)."""
    groups = -(-channels // DEPTHWISE_GROUP)
    return groups * k_h * k_w * DEPTHWISE_GROUP


def pack_depthwise(weight: np.ndarray) -> np.ndarray:
    """The packed int16 filter (flat) of an int8 depthwise filter [K_h, K_w, C]."""
    k_h, k_w, channels = weight.shape
    groups = -(-channels // DEPTHWISE_GROUP)
    padded = np.zeros((k_h * k_w, groups * DEPTHWISE_GROUP), dtype=np.int16)
    padded[:, :channels] = np.asarray(weight, dtype=np.int16).reshape(k_h * k_w, channels)
    # [taps, groups, 4 channels] -> [groups, taps, 4 lanes]
    packed = padded.reshape(k_h * k_w, groups, DEPTHWISE_GROUP)[:, :, list(DEPTHWISE_LANES)].transpose(1, 0, 2)
    return np.ascontiguousarray(packed).reshape(-1)
