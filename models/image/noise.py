"""Gaussian noise level of a single image, relative to its data range.

sigma is Donoho's robust estimate, the median absolute finest diagonal Haar detail / 0.6745 (as in
skimage's ``estimate_sigma``, without PyWavelets), taken over the flatter half of the image only:
texture inflates it otherwise. Flatness comes from the Haar block means, which for Gaussian noise
are independent of the diagonal details, so choosing by them does not bias the estimate.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from models.interface import NoiseEstimate, NoiseLevel

# Thresholds on sigma in 8-bit units (0..255).
LOW_BELOW_8BIT = 8.0
HIGH_ABOVE_8BIT = 20.0


def data_range(image: np.ndarray) -> float:
    """255 for 8-bit-range data, 4095 for 12-bit-range data, else 65535."""
    peak = float(np.max(image)) if image.size else 0.0
    if peak <= 255:
        return 255.0
    return 4095.0 if peak <= 4095 else 65535.0


def estimate_sigma(image: np.ndarray) -> float:
    """Noise std in the image's units, pooled over channels."""
    x = image if image.ndim == 3 else image[..., None]
    h, w = x.shape[0] // 2 * 2, x.shape[1] // 2 * 2
    x = x[:h, :w].astype(np.float32)
    a, b, c, d = x[0::2, 0::2], x[0::2, 1::2], x[1::2, 0::2], x[1::2, 1::2]
    diagonal = np.abs(a - b - c + d) / 2
    flatness = np.zeros(diagonal.shape, np.float32)
    for block_mean in np.moveaxis((a + b + c + d) / 4, 2, 0):
        smooth = cv2.GaussianBlur(block_mean, (0, 0), 1.0)
        flatness += np.hypot(cv2.Sobel(smooth, cv2.CV_32F, 1, 0), cv2.Sobel(smooth, cv2.CV_32F, 0, 1))[..., None]
    flat = flatness <= np.median(flatness)
    return float(np.median(diagonal[flat]) / 0.6745)


def level_of_sigma(sigma: float, value_range: float) -> NoiseLevel:
    sigma_8bit = sigma * 255.0 / value_range
    if sigma_8bit < LOW_BELOW_8BIT:
        return "low"
    return "medium" if sigma_8bit <= HIGH_ABOVE_8BIT else "high"


class ImageNoiseClassifier:
    """sigma in input units and the level it means for the image's data range."""

    def __init__(self, level: NoiseLevel | None = None, weights: Path | None = None):
        pass

    def setup(self, device: str) -> None:
        """Classical: nothing to load."""

    def predict(self, image: np.ndarray) -> NoiseEstimate:
        sigma = estimate_sigma(image)
        return NoiseEstimate(level=level_of_sigma(sigma, data_range(image)), sigma=sigma)
