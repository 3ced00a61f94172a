"""What every model looks like from outside, after Replicate's Cog: ``setup()`` once, ``predict()`` many times.

Units: stacks and images stay in their input units (e.g. 12-bit DN with the black level kept);
video frames are float32 RGB in 8-bit units (0..255), whatever the source bit depth.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

from models.formats import Kind  # noqa: F401  (re-exported: what kinds of input there are)

if TYPE_CHECKING:
    import numpy as np

# What a job can ask for. A new task is its name here, its model's file and a registry line;
# the API, the CLI and the pipeline take it from here.
TASKS = ("denoise", "upscale")
Task = Literal[TASKS]  # type: ignore[valid-type]  (Literal of the tuple's values)
UPSCALE_FACTORS = (2, 4)
# Models that work frame by frame (every task but denoising, and users' models) serve images and
# each frame of a video; denoisers are made for one kind (a video's uses the frames around each frame).
FRAME_KINDS = ("image", "video")
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


def model_mismatch(entry: dict, kind: str, task: str, scale: int | None) -> str | None:
    """Why the model catalogue ``entry`` (a ``/v1/models`` item) cannot serve a job of this kind,
    task and scale, in words for the user; None when it can. The API and the workers both ask here."""
    name = entry["name"]
    if entry.get("role") != "restorer":
        return f"{name} is a noise classifier; choose a restoration model from /v1/models"
    kinds = entry.get("kinds") or [entry["kind"]]
    if kind not in kinds:
        return f"model {name} restores {' and '.join(k + 's' for k in kinds)}, not {kind}s"
    if entry["task"] != task:
        fits = f"task=upscale with scale={entry['scale']}" if entry["task"] == "upscale" else "task=denoise"
        return f"model {name} is a{'n' if entry['task'][0] in 'aeiou' else ''} {entry['task']} model: use it with {fits}"
    if task == "upscale" and entry["scale"] != scale:
        return f"model {name} enlarges by {entry['scale']}; scale={scale} does not fit it"
    return None


@dataclass(frozen=True)
class NoiseEstimate:
    """A classifier's verdict: the level picks the model, sigma is the noise std in input units.
    ``lower``: the low end of the range sigma could be in, where the reading cannot tell noise
    from texture (None: no such doubt), for a restorer that must not remove texture as noise."""

    level: NoiseLevel
    sigma: float
    lower: float | None = None


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


class FrameModel(Model, Protocol):
    """A model that runs on one image or video frame after denoising (every task but denoise, and
    users' models): (H, W) or (H, W, 3) float32 in input units, ``peak`` the value of white -> the
    same units, ``scale`` times larger on each side."""

    scale: int

    def predict(self, image: np.ndarray, noise: NoiseEstimate | None = None, progress: Progress = no_progress,
                peak: float | None = None) -> np.ndarray: ...
