"""Classical stack restoration: register, merge the sharpest frames robustly, deblur.

The strongest known recipe for turbulent stacks (shared/DATA.md) minus the learned deblurring,
which a network will take over: it gets ``merge``'s output plus ``temporal_std``.
Per-level settings were tuned on synthetic stacks of the train split (models.data.sources).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.interface import NoiseEstimate, NoiseLevel, Progress
from models.stack.merge import effective_frames, frame_weights, merge, temporal_std, wiener_deblur
from models.stack.registration import register_stack


@dataclass(frozen=True)
class LevelSettings:
    sharpness_power: float  # 0: plain mean; higher: favour the sharpest frames more
    psf_sigma: float  # Gaussian blur left after merging, in pixels
    regularisation: float  # Wiener noise-to-signal scale


LEVEL_SETTINGS: dict[NoiseLevel, LevelSettings] = {
    "low": LevelSettings(sharpness_power=8, psf_sigma=0.8, regularisation=8),
    "medium": LevelSettings(sharpness_power=8, psf_sigma=0.7, regularisation=2),
    "high": LevelSettings(sharpness_power=8, psf_sigma=0.7, regularisation=4),
}


class StackRestorer:
    """One restored frame (H, W) float32 in the stack's units (DN, black level kept)."""

    def __init__(self, level: NoiseLevel, weights: Path | None = None):
        self.level = level
        self.settings = LEVEL_SETTINGS[level]

    def setup(self, device: str) -> None:
        """Classical: nothing to load."""

    def predict(self, stack: np.ndarray, noise: NoiseEstimate, progress: Progress) -> np.ndarray:
        stack = np.asarray(stack, np.float32)
        registered = register_stack(stack, progress=progress, span=(0.0, 0.9))
        progress(0.9, "merging")
        weights = frame_weights(registered, self.settings.sharpness_power)
        merged = merge(registered, weights, temporal_std(registered))
        progress(0.95, "deblurring")
        noise_var = noise.sigma ** 2 / effective_frames(weights)
        return wiener_deblur(merged, self.settings.psf_sigma, noise_var, self.settings.regularisation)
