"""How noisy a clip is, from its first frames: the image estimator (models/image/noise.py) per frame.

Each decoded RGB frame (8-bit units) gets the image estimate (finest diagonal Haar details of the
unclipped, flatter half, clipped RMS); the median over frames ignores a frame with a cut or a flash.
Compression removes part of the noise before we see it, so a compressed clip reads less noisy
than its source was: that lower value is the noise the restorer actually faces.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from models.image.noise import estimate_sigma
from models.interface import NoiseEstimate, NoiseLevel, level_of_sigma_8bit


class VideoNoiseClassifier:
    """Classical: no weights, same on every device."""

    def __init__(self, level: NoiseLevel | None = None, weights: Path | None = None):
        pass

    def setup(self, device: str) -> None:
        pass

    def predict(self, frames: list[np.ndarray]) -> NoiseEstimate:
        if not frames:
            raise ValueError("no frames to estimate noise on")
        sigma = float(np.median([estimate_sigma(frame) for frame in frames]))
        return NoiseEstimate(level=level_of_sigma_8bit(sigma), sigma=sigma)
