"""Noise level of a raw stack from the stack itself, immune to turbulence and jitter.

Temporal variance is useless here: a pixel's value changes over time mostly because the scene
wobbles past it. Instead, each frame is high-passed with a separable third difference, which
removes the optically blurred (hence smooth) scene but keeps white noise at its variance. Under the
Poisson-Gaussian model var = a * (level - black) + read^2, the squared high-pass of bright, flat
pixels divided by (level - black) estimates ``a``, the DN per photon; the brightest part of the
scene then collects (bright - black) / a photons, which gives the DATA.md level.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from scipy.stats import chi2

from models.data.synthetic import BRIGHT_PERCENTILE, MAX_DN, level_of
from models.interface import NoiseEstimate, NoiseLevel

_THIRD_DIFFERENCE = np.array([1, -3, 3, -1], np.float32) / np.sqrt(20.0)  # unit gain for white noise
_LOCAL_MEAN = np.full(4, 0.25, np.float32)
_QUANTILE = 0.25
SAMPLED_FRAMES = 32
BLACK_LEVEL_PRIOR_DN = 50.0  # tens of DN (DATA.md); used on bright pixels only, so an error costs ~2 %
READ_VARIANCE_PRIOR = 16.0  # (4 DN)^2
MIN_BRIGHT_PIXELS = 500


def flat_high_pass(stack: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Brightness (N,) and squared high-pass (frames, N) of the flatter half of the scene.

    Flatness is judged on the temporal mean's high-pass; pixels near clipping are left out because
    clipping hides variance.
    """
    sample = np.asarray(stack[:: max(1, len(stack) // SAMPLED_FRAMES)], np.float32)
    mean = np.mean(stack, axis=0, dtype=np.float32)
    high = np.stack([_filter(frame, _THIRD_DIFFERENCE) for frame in sample])
    scene_high = cv2.dilate(np.abs(_filter(mean, _THIRD_DIFFERENCE)), np.ones((5, 5), np.uint8))
    brightness = _filter(mean, _LOCAL_MEAN)
    clipped = cv2.dilate((sample >= MAX_DN).any(axis=0).astype(np.uint8), np.ones((5, 5), np.uint8))
    grid = (slice(4, -4, 2), slice(4, -4, 2))  # off the border, every other pixel
    high, scene_high, brightness, clipped = high[:, grid[0], grid[1]], scene_high[grid], brightness[grid], clipped[grid]
    flat = (scene_high <= np.median(scene_high)) & (clipped == 0)
    return brightness[flat], high[:, flat] ** 2


def _filter(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    return cv2.sepFilter2D(image, cv2.CV_32F, kernel, kernel, borderType=cv2.BORDER_REFLECT)


def dn_per_photon(levels: np.ndarray, squares: np.ndarray, bright: float) -> float:
    """``a`` from the flat pixels in the upper half of the range (else the brightest 10 %).

    The smaller of the mean and a chi-square-corrected low quantile: texture that survives the
    high-pass only ever adds.
    """
    black = min(BLACK_LEVEL_PRIOR_DN, float(levels.min()))
    upper = levels >= black + 0.5 * (bright - black)
    if upper.sum() < MIN_BRIGHT_PIXELS:
        upper = levels >= np.quantile(levels, 0.9)
    above_black = np.maximum(levels[upper] - black, 1.0)
    normalised = squares[:, upper] / above_black
    read_share = float(np.mean(READ_VARIANCE_PRIOR / above_black))
    by_mean = float(normalised.mean())
    by_quantile = float(np.quantile(normalised, _QUANTILE)) / chi2.ppf(_QUANTILE, 1)
    return min(by_mean, by_quantile) - read_share


class StackNoiseClassifier:
    """Photons at the scene's brightest part -> DATA.md noise level; sigma at the median signal."""

    def __init__(self, level: NoiseLevel | None = None, weights: Path | None = None):
        self.photons: float | None = None  # of the last prediction, for reports and checks

    def setup(self, device: str) -> None:
        """Classical: nothing to load."""

    def predict(self, stack: np.ndarray) -> NoiseEstimate:
        mean = np.mean(stack, axis=0, dtype=np.float32)
        bright = float(np.percentile(mean, BRIGHT_PERCENTILE))
        levels, squares = flat_high_pass(stack)
        if levels.size < MIN_BRIGHT_PIXELS:  # (nearly) all clipped: as bright as it gets
            self.photons = float("inf")
            return NoiseEstimate(level="low", sigma=0.0)
        black = min(BLACK_LEVEL_PRIOR_DN, float(levels.min()))
        per_photon = max(dn_per_photon(levels, squares, bright), 1e-6)
        self.photons = (bright - black) / per_photon
        sigma = float(np.sqrt(per_photon * max(float(np.median(mean)) - black, 0.0) + READ_VARIANCE_PRIOR))
        return NoiseEstimate(level=level_of(self.photons), sigma=sigma)
