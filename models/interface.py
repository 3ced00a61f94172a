"""What every model looks like from outside, after Replicate's Cog: ``setup()`` once, ``predict()`` many times.

Units: stacks and images stay in their input units (e.g. 12-bit DN with the black level kept);
video frames are float32 RGB in 8-bit units (0..255), whatever the source bit depth.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from models.formats import Kind  # noqa: F401  (re-exported: what kinds of input there are)

Task = Literal["denoise", "upscale"]
TASKS: tuple[Task, ...] = ("denoise", "upscale")
UPSCALE_FACTORS = (2, 4)
NoiseLevel = Literal["low", "medium", "high"]
NOISE_LEVELS: tuple[NoiseLevel, ...] = ("low", "medium", "high")
# Images and videos: the level of a noise std in 8-bit units (0..255). Stacks count photons instead
# (models/stack/noise.py).
LOW_BELOW_8BIT = 8.0
HIGH_ABOVE_8BIT = 20.0


def level_of_sigma_8bit(sigma: float) -> NoiseLevel:
    if sigma < LOW_BELOW_8BIT:
        return "low"
    return "medium" if sigma <= HIGH_ABOVE_8BIT else "high"


@dataclass(frozen=True)
class NoiseEstimate:
    """A classifier's verdict: the level picks the model, sigma is the noise std in input units."""

    level: NoiseLevel
    sigma: float


class Canceled(Exception):
    """Raised by a progress callback to stop work between frames or tiles."""


class Progress(Protocol):
    """Called with the fraction done (0..1) and a short stage name; may raise ``Canceled``."""

    def __call__(self, fraction: float, stage: str) -> None: ...


def no_progress(fraction: float, stage: str) -> None:
    """The progress callback for callers that do not watch."""


class SigmaUpdate(Protocol):
    """Called by a video restorer when it re-measures the noise during a clip: the frame index and the sigma it now uses."""

    def __call__(self, frame: int, sigma: float) -> None: ...


def no_sigma_update(frame: int, sigma: float) -> None:
    """The re-check callback for callers that do not watch."""


class Model(Protocol):
    """A loaded model. ``device`` is a torch device string ("cuda" or "cpu"); classical models ignore it."""

    def setup(self, device: str) -> None: ...
