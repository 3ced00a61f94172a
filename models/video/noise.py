"""How noisy a clip is, from its first frames: a robust per-channel estimate of Gaussian noise.

The finest diagonal Haar band of a frame holds little of a natural picture (edges mostly cancel in
it) and all of white noise, so the median of its magnitudes (Donoho's MAD) measures the noise
standard deviation while texture and motion barely move it. Per frame, averaged over the RGB
channels; the median over frames ignores a frame with a cut or a flash. Compression removes part of
the noise before we see it, so a compressed clip reads less noisy than its source was: that lower
value is the noise the restorer actually faces.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from models.interface import NoiseEstimate, NoiseLevel

# Level boundaries, in 8-bit units of per-channel noise std.
LOW_BELOW = 8.0
HIGH_ABOVE = 20.0
MAD_TO_STD = 1 / 0.6745  # a Gaussian's std over its median absolute value


def level_for(sigma: float) -> NoiseLevel:
    if sigma < LOW_BELOW:
        return "low"
    return "high" if sigma > HIGH_ABOVE else "medium"


def frame_sigma(frame: np.ndarray) -> float:
    """Noise std of one float RGB frame (8-bit units), the mean of its channels' estimates."""
    h, w = frame.shape[0] // 2 * 2, frame.shape[1] // 2 * 2
    x = frame[:h, :w].astype(np.float32)
    diagonal = (x[0::2, 0::2] - x[0::2, 1::2] - x[1::2, 0::2] + x[1::2, 1::2]) / 2
    return float(np.median(np.abs(diagonal), axis=(0, 1)).mean() * MAD_TO_STD)


class VideoNoiseClassifier:
    """Classical: no weights, same on every device."""

    def __init__(self, level: NoiseLevel | None = None, weights: Path | None = None):
        pass

    def setup(self, device: str) -> None:
        pass

    def predict(self, frames: list[np.ndarray]) -> NoiseEstimate:
        if not frames:
            raise ValueError("no frames to estimate noise on")
        sigma = float(np.median([frame_sigma(frame) for frame in frames]))
        return NoiseEstimate(level=level_for(sigma), sigma=sigma)
