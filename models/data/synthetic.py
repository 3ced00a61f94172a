"""Simulated raw stacks of a static scene seen through turbulence, with their ground truth.

The degradations of a challenge-style raw capture (docs/stacks.md): exposure over half to most of the 12-bit
range, a black level, per-frame camera jitter, a smooth turbulent displacement field that changes
every frame, mild per-frame blur, Poisson photon noise, Gaussian read noise, 12-bit quantisation.
"The brightest part of the scene" is its 99.5th percentile seen at a 1.5 px scale (a part, not one
hot pixel, and what frames blurred by optics and wobble can still show); ``photons`` is what that
part collects in one frame.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

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


@dataclass
class SimulatedStack:
    """A simulated raw stack with everything an evaluation needs to know about how it was made.

    ``displacements[t]`` (H, W, 2) is where frame ``t`` looks: its pixel x shows the still scene at
    ``x + displacements[t, x]`` (before blur), so unwarping by it gives the registration upper bound.
    """

    stack: np.ndarray  # uint16 (T, H, W) raw DN
    truth: np.ndarray  # float32 (H, W) DN: the still, sharp scene, black level included
    displacements: np.ndarray  # float32 (T, H, W, 2) px
    params: dict[str, float] = field(default_factory=dict)

    @property
    def pair(self) -> tuple[np.ndarray, np.ndarray]:
        """(stack, truth): what a restorer gets and what it is measured against."""
        return self.stack, self.truth


def level_of(photons: float) -> NoiseLevel:
    """The noise level for a photon count at the brightest part of the scene (docs/stacks.md, step 1)."""
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


def camera_scene(clean01: np.ndarray) -> np.ndarray:
    """``clean01`` scaled so its brightest part is 1 (``photons`` are counted there)."""
    scene = clean01.astype(np.float32)
    return scene / max(brightest_part(scene), 1e-3)


def draw_camera(rng: np.random.Generator, exposure_fraction: tuple[float, float] = EXPOSURE_FRACTION) -> tuple[float, float, float]:
    """(black level, exposure of the brightest part above black, read noise), all DN."""
    black = rng.uniform(*BLACK_LEVEL_DN)
    exposure = rng.uniform(*exposure_fraction) * MAX_DN
    return black, exposure, rng.uniform(*READ_NOISE_DN)


def ground_truth(scene: np.ndarray, black: float, exposure: float) -> np.ndarray:
    """The still, sharp scene in DN, black level included, clipped like the sensor."""
    return np.minimum(black + exposure * scene, MAX_DN).astype(np.float32)


def expose(scene: np.ndarray, rng: np.random.Generator, photons: float, gain: float, black: float, read_noise: float) -> np.ndarray:
    """One 12-bit raw frame (uint16) of ``scene`` (1 = the brightest part): Poisson photons, gain, black level, read noise."""
    expected = np.clip(scene, 0.0, None) * np.float32(photons)
    raw = shot_noise(expected, rng) * np.float32(gain) + np.float32(black)
    raw += rng.standard_normal(raw.shape, dtype=np.float32) * np.float32(read_noise)
    return np.clip(np.rint(raw), 0, MAX_DN).astype(np.uint16)


def make_stack(clean01: np.ndarray, rng: np.random.Generator, photons: float, frames: int = 100) -> SimulatedStack:
    """A uint16 (T, H, W) raw stack of ``clean01`` (the ``current`` family) and its ground truth, float32 (H, W) in DN.

    Ground truth is the still, sharp scene in the same DN units, black level included.
    """
    scene = camera_scene(clean01)
    black, exposure, read_noise = draw_camera(rng)
    jitter_std = rng.uniform(*JITTER_STD_PX)
    wobble_rms = rng.uniform(*WOBBLE_RMS_PX)
    blur = rng.uniform(*BLUR_SIGMA_PX)

    h, w = scene.shape
    gain = exposure / photons  # DN per photon
    grid_x, grid_y = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    stack = np.empty((frames, h, w), np.uint16)
    displacements = np.empty((frames, h, w, 2), np.float32)
    for t in range(frames):  # frame by frame: small temporaries stay in cache
        shift_x, shift_y = rng.normal(0.0, jitter_std, 2).astype(np.float32)
        wobble_x, wobble_y = smooth_field((h, w), wobble_rms, rng)
        displacements[t, ..., 0] = shift_x + wobble_x
        displacements[t, ..., 1] = shift_y + wobble_y
        warped = cv2.remap(scene, grid_x + displacements[t, ..., 0], grid_y + displacements[t, ..., 1],
                           cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
        stack[t] = expose(cv2.GaussianBlur(warped, (0, 0), blur * rng.uniform(0.7, 1.3)), rng, photons, gain, black, read_noise)
    truth = ground_truth(scene, black, exposure)
    params = {"photons": photons, "black": black, "exposure": exposure, "read_noise": read_noise, "jitter_std": jitter_std,
              "wobble_rms": wobble_rms, "blur": blur}
    return SimulatedStack(stack, truth, displacements, params)
