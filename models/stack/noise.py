"""Noise level of a raw stack from the stack itself, immune to turbulence, jitter and the array's scale.

Temporal variance is useless here: a pixel's value changes over time mostly because the scene
wobbles past it. Instead, each frame is high-passed with a separable third difference, which
removes the optically blurred (hence smooth) scene but keeps white noise at its variance. On the
flatter half of the scene (per band of brightness), in the upper half of its range, that variance
over the level gives ``a``, the input units per photon of the Poisson-Gaussian model
``var = a * level + read^2``. The brightest part of the scene then collects ``bright / a`` photons,
which gives the noise level (low >= 1000 > medium >= 100 > high). Where the stack clips, the values
left near the ceiling are a truncated sample and are left out.

Nothing here assumes 12-bit DN: every quantity scales with the data, so a stack sent as uint16,
as float DN or as float 0..1 gets the same photon count and level. What is not measured, the black
level (tens of DN) and the read noise (a few DN), costs a few per cent of the photon count at the
level boundaries, and their errors partly cancel.
"""
from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np
from scipy.stats import chi2

from models.data.synthetic import BRIGHT_PERCENTILE, level_of
from models.interface import NoiseEstimate, NoiseLevel

_THIRD_DIFFERENCE = np.array([1, -3, 3, -1], np.float32) / np.sqrt(20.0)  # unit gain for white noise
_LOCAL_MEAN = np.full(4, 0.25, np.float32)
_QUANTILE = 0.25
SAMPLED_FRAMES = 32
MIN_FLAT_PIXELS = 32  # x up to 32 frame pairs: enough values for a variance within ~10 %
PLENTY_PIXELS = 8 * MIN_FLAT_PIXELS  # usable pixels enough to keep only the flatter half of each band
CLIPPED_FRACTION = 1e-3  # of the sampled values at the maximum: the stack clips (else the maximum is noise)
BRIGHTNESS_BANDS = 8  # the flatter half is chosen within each band of brightness
CLIP_MARGIN_SIGMAS = 2.0  # pixels within this many noise stds of a clipping ceiling are left out
_FILTER_SUPPORT = np.ones((4, 4), np.uint8)  # the pixels a high-pass value depends on (dilation anchor = filter anchor)


class FlatHighPass(NamedTuple):
    """What the noise curve is fitted to: flat pixels' brightness (N,), their squared high-pass (pairs, N),
    and the value the stack clips at (inf when it does not clip)."""

    levels: np.ndarray
    squares: np.ndarray
    ceiling: float


def clipping_ceiling(stack: np.ndarray) -> float:
    """The value the stack clips at, in its own units, or inf where it does not clip (see :func:`_clipping`)."""
    return _clipping(*_frame_pairs(stack))[1]


def _frame_pairs(stack: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Up to ``SAMPLED_FRAMES`` frames spread over the stack and the frame after each, float32."""
    starts = np.arange(0, len(stack) - 1, max(1, (len(stack) - 1) // SAMPLED_FRAMES))
    return np.asarray(stack[starts], np.float32), np.asarray(stack[starts + 1], np.float32)


def _clipping(sample: np.ndarray, following: np.ndarray) -> tuple[np.ndarray, float]:
    """Where either frame of a pair is at the pairs' maximum (per pair), and that maximum as the ceiling
    if more than ``CLIPPED_FRACTION`` of the pixels are there (else inf: the maximum is only noise)."""
    top = max(float(sample.max()), float(following.max()))
    at_top = np.stack([(a >= top) | (b >= top) for a, b in zip(sample, following)])
    return at_top, top if at_top.mean() > CLIPPED_FRACTION else float("inf")


def flat_high_pass(stack: np.ndarray, mean: np.ndarray) -> FlatHighPass:
    """The flatter half of the scene, within each band of brightness, high-passed.

    The high-pass is taken of consecutive frames' difference (noise variance doubles, then halved
    back; the scene cancels where it holds still). Flatness is judged on the temporal mean's
    high-pass, per brightness band: the mean's own noise grows with brightness, so one threshold
    over the scene would keep only its darkest part. Pixels at the stack's maximum value (saturation,
    whatever the scale) make the high-pass values that touch them NaN: clipping hides variance. A
    pixel is used where at most half its values are NaN, or, where that leaves too few (a noisy scene
    near the ceiling clips at random everywhere), wherever one is known.
    """
    sample, following = _frame_pairs(stack)
    # consecutive frames' difference: the scene cancels wherever it holds still (static stacks, frozen flow)
    high = np.stack([_filter(a - b, _THIRD_DIFFERENCE) for a, b in zip(sample, following)])
    high *= np.float32(1 / np.sqrt(2.0))
    at_top, ceiling = _clipping(sample, following)
    for i in np.flatnonzero(at_top.any(axis=(1, 2))):
        high[i][cv2.dilate(at_top[i].astype(np.uint8), _FILTER_SUPPORT) > 0] = np.nan
    scene_high = cv2.dilate(np.abs(_filter(mean, _THIRD_DIFFERENCE)), np.ones((5, 5), np.uint8))
    brightness = _filter(mean, _LOCAL_MEAN)
    grid = (slice(4, -4, 2), slice(4, -4, 2))  # off the border, every other pixel
    high, scene_high, brightness = high[:, grid[0], grid[1]].reshape(len(high), -1), scene_high[grid].ravel(), brightness[grid].ravel()
    unknown = np.isnan(high).mean(axis=0)
    usable = unknown < 0.5
    if usable.sum() < PLENTY_PIXELS:
        usable = unknown < 1.0
    flat = _flatter_half(usable, brightness, scene_high)
    return FlatHighPass(brightness[flat], high[:, flat] ** 2, ceiling)


def _flatter_half(usable: np.ndarray, brightness: np.ndarray, scene_high: np.ndarray) -> np.ndarray:
    """Mask of the usable pixels at or below their brightness band's median flatness (all of a band
    when the whole scene has few usable pixels: at least ``4 * MIN_FLAT_PIXELS`` are kept if there)."""
    flat = np.zeros_like(usable)
    candidates = np.flatnonzero(usable)
    keep = 0.5 if candidates.size >= PLENTY_PIXELS else min(1.0, 4 * MIN_FLAT_PIXELS / max(candidates.size, 1))
    for band in np.array_split(candidates[np.argsort(brightness[candidates], kind="stable")], BRIGHTNESS_BANDS):
        if band.size:
            flat[band[scene_high[band] <= np.quantile(scene_high[band], keep)]] = True
    return flat


def _filter(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    return cv2.sepFilter2D(image, cv2.CV_32F, kernel, kernel, borderType=cv2.BORDER_REFLECT)


def dn_per_photon(levels: np.ndarray, squares: np.ndarray) -> float:
    """``a`` (input units per photon) from the flat pixels in the upper half of their range (else the slope over all).

    Variance over level there: read noise and the black level matter little at half the exposure
    and their errors partly cancel (read noise adds variance, the black level adds level). The smaller
    of the mean and a chi-square-corrected low quantile: texture that survives the high-pass only ever adds.
    The range is the flat pixels' own: in a scene that clips, the brightest measurable pixels may lie
    well below the scene's brightest part.
    """
    top = float(levels.max())
    upper = levels >= 0.5 * top
    if upper.sum() >= MIN_FLAT_PIXELS:
        return _robust_variance(squares[:, upper] / np.maximum(levels[upper], 1e-12 * max(top, 1e-30)))
    # little flat signal in the upper half (a dark scene with small bright parts): the slope of variance over level, which
    # the black level and the read noise do not bias, on brightness bins of what there is
    order = np.argsort(levels)
    bins = [part for part in np.array_split(order, 8) if part.size]
    x = np.array([levels[part].mean() for part in bins])
    y = np.array([_robust_variance(squares[:, part]) for part in bins])
    slope = float(np.polyfit(x, y, 1)[0]) if len(bins) > 1 and np.ptp(x) > 0.1 * max(abs(float(x.max())), 1e-30) else 0.0
    if slope > 0:
        return slope
    brightest = order[-MIN_FLAT_PIXELS:]
    return _robust_variance(squares[:, brightest] / np.maximum(levels[brightest], 1e-12 * max(top, 1e-30)))


def _robust_variance(squares: np.ndarray) -> float:
    """The smaller of the mean and a chi-square-corrected low quantile of squared high-pass values."""
    by_mean = float(np.nanmean(squares))
    by_quantile = float(np.nanquantile(squares, _QUANTILE)) / chi2.ppf(_QUANTILE, 1)
    return max(min(by_mean, by_quantile), 1e-30)


def units_per_photon(stack: np.ndarray, mean: np.ndarray) -> float | None:
    """``a`` of the stack's per-frame noise variance ``a * level`` (input units; ``mean`` is its temporal
    mean), or None where too few flat unclipped pixels remain to measure it.

    Where the stack clips, a pixel close to the ceiling shows only its values below it, too little
    variance: such pixels (within ``CLIP_MARGIN_SIGMAS`` of the ceiling at the measured curve) are left
    out and ``a`` measured again, until the set holds still (at most three times).
    """
    levels, squares, ceiling = flat_high_pass(stack, mean)
    if levels.size < MIN_FLAT_PIXELS:
        return None
    a = dn_per_photon(levels, squares)
    for _ in range(3 if np.isfinite(ceiling) else 0):
        below = levels + CLIP_MARGIN_SIGMAS * np.sqrt(a * np.maximum(levels, 0.0)) < ceiling
        if below.sum() < MIN_FLAT_PIXELS or below.all():
            break
        levels, squares = levels[below], squares[:, below]
        a = dn_per_photon(levels, squares)
    return a


class StackNoiseClassifier:
    """Photons at the scene's brightest part -> noise level; sigma at the median signal, in input units."""

    def __init__(self, level: NoiseLevel | None = None, weights: Path | None = None):
        self.photons: float | None = None  # of the last prediction, for reports and checks

    def setup(self, device: str) -> None:
        """Classical: nothing to load."""

    def predict(self, stack: np.ndarray) -> NoiseEstimate:
        mean = np.mean(stack, axis=0, dtype=np.float32)
        a = units_per_photon(stack, mean)
        if a is None:  # (nearly) all clipped: as bright as it gets
            self.photons = float("inf")
            return NoiseEstimate(level="low", sigma=0.0)
        self.photons = max(float(np.percentile(mean, BRIGHT_PERCENTILE)), 0.0) / a
        sigma = float(np.sqrt(max(a * float(np.median(mean)), 0.0)))
        return NoiseEstimate(level=level_of(self.photons), sigma=sigma)
