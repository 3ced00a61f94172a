"""Noise level of a single image (and of video frames, models/video/noise.py), relative to its data range.

sigma comes from the finest diagonal Haar detail (a - b - c + d) / 2 of each 2x2 block, which holds
little of a picture (edges mostly cancel in it) and all of white noise, in three steps:

- clipped blocks are left out: a block holding a channel's minimum or maximum value (0 or 255 in a
  saturated colour, the sensor's white) has lost its noise there, and flat saturated areas would
  otherwise read as clean;
- of the rest, only the flatter half counts (block-mean gradient; texture inflates it otherwise);
- the spread is a clipped RMS: the median absolute detail / 0.6745 (Donoho's MAD) sets a cut at 3
  of its sigmas, and the RMS of the details under the cut, corrected for the cut, is the estimate.
  The MAD alone under-reads heavy-tailed noise (FFmpeg's ``noise`` filter: 30 % low); the cut keeps
  edges that pass the flatness test from inflating it.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from models.interface import NoiseEstimate, NoiseLevel, level_of_sigma_8bit

MAD_TO_STD = 1 / 0.6745  # a Gaussian's std over its median absolute value
CUT_IN_SIGMAS = 3.0
CUT_CORRECTION = 1 / 0.9866  # a Gaussian's std over its RMS when clipped at 3 sigma


def data_range(image: np.ndarray) -> float:
    """1 for float data in 0..1, 255 for 8-bit-range data, 4095 for 12-bit-range data, else 65535."""
    peak = float(np.max(image)) if image.size else 0.0
    if peak <= 1.0:
        return 1.0
    if peak <= 255:
        return 255.0
    return 4095.0 if peak <= 4095 else 65535.0


def estimate_sigma(image: np.ndarray) -> float:
    """Noise std in the image's units, pooled over channels; (H, W) or (H, W, C)."""
    x = image if image.ndim == 3 else image[..., None]
    h, w = x.shape[0] // 2 * 2, x.shape[1] // 2 * 2
    x = x[:h, :w].astype(np.float32)
    a, b, c, d = x[0::2, 0::2], x[0::2, 1::2], x[1::2, 0::2], x[1::2, 1::2]
    diagonal = np.abs(a - b - c + d) / 2
    low, high = x.min(axis=(0, 1)), x.max(axis=(0, 1))
    unclipped = np.minimum(np.minimum(a, b), np.minimum(c, d)) > low
    unclipped &= np.maximum(np.maximum(a, b), np.maximum(c, d)) < high
    flatness = sum(edge_strength(block_mean) for block_mean in np.moveaxis((a + b + c + d) / 4, 2, 0))
    flatness = np.broadcast_to(flatness[..., None], diagonal.shape)
    if not unclipped.any():
        return 0.0
    flat = unclipped & (flatness <= np.median(flatness[unclipped]))
    return clipped_rms(diagonal[flat])


def edge_strength(plane: np.ndarray) -> np.ndarray:
    """Gradient magnitude of ``plane`` lightly smoothed (sigma 1 px): what tells texture from flat areas."""
    smooth = cv2.GaussianBlur(np.asarray(plane, np.float32), (0, 0), 1.0)
    return np.hypot(cv2.Sobel(smooth, cv2.CV_32F, 1, 0), cv2.Sobel(smooth, cv2.CV_32F, 0, 1))


def clipped_rms(details: np.ndarray) -> float:
    """Noise std from absolute noise samples of unit gain: their RMS below a cut at CUT_IN_SIGMAS of
    the MAD's sigma, corrected for the cut (the MAD alone under-reads heavy tails, the RMS alone
    counts edges)."""
    mad_sigma = float(np.median(details)) * MAD_TO_STD if details.size else 0.0
    if mad_sigma <= 0:
        return 0.0
    kept = details[details <= CUT_IN_SIGMAS * mad_sigma]
    return float(np.sqrt(np.mean(kept.astype(np.float64) ** 2)) * CUT_CORRECTION)


def level_of_sigma(sigma: float, value_range: float) -> NoiseLevel:
    return level_of_sigma_8bit(sigma * 255.0 / value_range)


class ImageNoiseClassifier:
    """sigma in input units and the level it means for the image's data range."""

    def __init__(self, level: NoiseLevel | None = None, weights: Path | None = None):
        pass

    def setup(self, device: str) -> None:
        """Classical: nothing to load."""

    def predict(self, image: np.ndarray) -> NoiseEstimate:
        sigma = estimate_sigma(image)
        return NoiseEstimate(level=level_of_sigma(sigma, data_range(image)), sigma=sigma)
