"""Simulated raw stacks of a static scene seen through turbulence, with their ground truth.

Implements every degradation listed in shared/DATA.md: exposure over half to most of the 12-bit
range, a black level, per-frame camera jitter, a smooth turbulent displacement field that changes
every frame, mild per-frame blur, Poisson photon noise, Gaussian read noise, 12-bit quantisation.
"The brightest part of the scene" is its 99.5th percentile seen at a 1.5 px scale (a part, not one
hot pixel, and what frames blurred by optics and wobble can still show); ``photons`` is what that
part collects in one frame.
"""
from __future__ import annotations

import math

import cv2
import numpy as np

from models.interface import NoiseLevel

MAX_DN = 4095
BRIGHT_PERCENTILE = 99.5
BRIGHT_SCALE_PX = 1.5
PHOTON_RANGES: dict[NoiseLevel, tuple[float, float]] = {
    "low": (1000.0, 20000.0),
    "medium": (100.0, 1000.0),
    "high": (10.0, 100.0),
}
EXPOSURE_FRACTION = (0.45, 0.85)  # of the 12-bit range, for the brightest part above black
BLACK_LEVEL_DN = (20.0, 80.0)
READ_NOISE_DN = (2.0, 6.0)
JITTER_STD_PX = (0.3, 1.5)  # per stack; per-frame shifts are drawn with this std
WOBBLE_RMS_PX = (0.5, 1.5)
WOBBLE_CELL_PX = 24  # correlation length of the turbulent field
GAUSSIAN_SHOT_NOISE_ABOVE = 20.0  # photons
BLUR_SIGMA_PX = (0.4, 1.0)  # per stack; each frame varies +-30 % around it


def level_of(photons: float) -> NoiseLevel:
    """The DATA.md noise level for a photon count at the brightest part of the scene."""
    if photons >= 1000:
        return "low"
    return "medium" if photons >= 100 else "high"


def sample_photons(level: NoiseLevel, rng: np.random.Generator) -> float:
    """A photon count drawn log-uniformly within ``level``'s range."""
    low, high = PHOTON_RANGES[level]
    return float(math.exp(rng.uniform(math.log(low), math.log(high))))


def smooth_field(shape: tuple[int, int], rms: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A smooth random (dx, dy) displacement field of given RMS, built coarse and upsampled."""
    h, w = shape
    gh, gw = max(2, math.ceil(h / WOBBLE_CELL_PX) + 1), max(2, math.ceil(w / WOBBLE_CELL_PX) + 1)
    coarse = rng.standard_normal((gh, gw, 2)).astype(np.float32)
    field = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
    field *= rms / (np.sqrt(np.mean(field ** 2)) + 1e-6)
    return field[..., 0], field[..., 1]


def brightest_part(image: np.ndarray) -> float:
    """The value of the scene's brightest part: 99.5th percentile at a 1.5 px scale."""
    return float(np.percentile(cv2.GaussianBlur(image, (0, 0), BRIGHT_SCALE_PX), BRIGHT_PERCENTILE))


def shot_noise(expected: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Poisson photon counts: exact where few photons are expected, a rounded normal elsewhere.

    numpy's Poisson sampler costs ~100 ns a value; at 20+ expected photons the normal is close.
    """
    counts = np.rint(expected + np.sqrt(expected) * rng.standard_normal(expected.shape, dtype=np.float32))
    few = expected < GAUSSIAN_SHOT_NOISE_ABOVE
    counts[few] = rng.poisson(expected[few])
    return np.maximum(counts, 0.0, out=counts)


def make_stack(clean01: np.ndarray, rng: np.random.Generator, photons: float, frames: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """A uint16 (T, H, W) raw stack of ``clean01`` and its ground truth, float32 (H, W) in DN.

    Ground truth is the still, sharp scene in the same DN units, black level included.
    """
    scene = clean01.astype(np.float32)
    scene = scene / max(brightest_part(scene), 1e-3)
    black = rng.uniform(*BLACK_LEVEL_DN)
    exposure = rng.uniform(*EXPOSURE_FRACTION) * MAX_DN
    read_noise = rng.uniform(*READ_NOISE_DN)
    jitter_std = rng.uniform(*JITTER_STD_PX)
    wobble_rms = rng.uniform(*WOBBLE_RMS_PX)
    blur = rng.uniform(*BLUR_SIGMA_PX)

    h, w = scene.shape
    gain = exposure / photons  # DN per photon
    grid_x, grid_y = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    stack = np.empty((frames, h, w), np.uint16)
    for t in range(frames):  # frame by frame: small temporaries stay in cache
        shift_x, shift_y = rng.normal(0.0, jitter_std, 2).astype(np.float32)
        wobble_x, wobble_y = smooth_field((h, w), wobble_rms, rng)
        warped = cv2.remap(scene, grid_x + (shift_x + wobble_x), grid_y + (shift_y + wobble_y),
                           cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
        expected = cv2.GaussianBlur(warped, (0, 0), blur * rng.uniform(0.7, 1.3))
        np.clip(expected, 0.0, None, out=expected)
        expected *= photons
        raw = shot_noise(expected, rng) * gain + black
        raw += rng.standard_normal(raw.shape, dtype=np.float32) * read_noise
        stack[t] = np.clip(np.rint(raw), 0, MAX_DN)
    truth = np.minimum(black + exposure * scene, MAX_DN).astype(np.float32)
    return stack, truth
