"""Frames a stack is better without: a black, blown-out or blank frame (a dropped frame, a flash, a
shutter or read-out glitch) pulls the mean, the registration's reference and the noise reading far
off; restored without them, a 20-frame stack with one black and one white frame came back at
55.6 dB instead of 35.7 (the plain mean of the good frames: 49.5).

A frame is an outlier when its mean level or its contrast (spatial std) lies far outside the other
frames': more than :data:`OUTLIER_SPREADS` robust spreads (MAD as a Gaussian's std) from their median, the
spread floored at :data:`LEVEL_FLOOR` of the scene's range and :data:`CONTRAST_FLOOR` of the median
contrast, so a steady stack, whose frames differ by noise alone, keeps frames that differ a little
more (turbulence's scintillation, exposure flicker). At most half the frames can go (else there is
no telling which are the odd ones), and at least :data:`MIN_FRAMES` stay.
"""
from __future__ import annotations

import numpy as np

from models.image.noise import MAD_TO_STD

OUTLIER_SPREADS = 6.0
LEVEL_FLOOR = 0.03  # of the scene's range (0.5 to 99.5 percentile of its values)
CONTRAST_FLOOR = 0.1  # of the frames' median spatial std
MIN_FRAMES = 4


def _far(values: np.ndarray, floor: float) -> np.ndarray:
    centre = np.median(values)
    spread = max(MAD_TO_STD * float(np.median(np.abs(values - centre))), floor)
    return np.abs(values - centre) > OUTLIER_SPREADS * spread


def outlier_frames(stack: np.ndarray) -> list[int]:
    """Indices of the frames of a (T, H, W) stack to leave out (see the module docstring)."""
    count = len(stack)
    if count <= MIN_FRAMES:
        return []
    flat = stack.reshape(count, -1)
    sample = flat[:, :: max(1, flat.shape[1] // 65536)].astype(np.float64)  # enough pixels for a frame's level and contrast
    levels, contrasts = sample.mean(axis=1), sample.std(axis=1)
    low, high = np.percentile(sample, (0.5, 99.5))
    odd = _far(levels, LEVEL_FLOOR * (high - low)) | _far(contrasts, CONTRAST_FLOOR * float(np.median(contrasts)))
    dropped = np.flatnonzero(odd)
    if len(dropped) > count // 2 or count - len(dropped) < MIN_FRAMES:
        return []
    return dropped.tolist()
