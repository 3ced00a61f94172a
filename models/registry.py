"""Every model Restora serves, by name: its kind and task, the level (denoisers) or scale
(upscalers) it serves, its class and weight file.

After BasicSR's registry: a name maps to a class (imported lazily, so listing the registry needs no
torch) and a weight file under ``models/weights``. Adding a model is one line here; the pipeline
picks denoisers by (kind, level) and the models of other tasks by (kind, task, scale), or any
restorer by name. A new task is a new ``Task`` name in models/interface.py, its model's file and its
line here. Users' own model files are listed beside these (models/user_models.py).
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from models.interface import FRAME_KINDS, NOISE_LEVELS, UPSCALE_FACTORS, Kind, NoiseLevel, Task

WEIGHTS_DIR = Path(__file__).parent / "weights"
Role = Literal["classifier", "restorer"]


@dataclass(frozen=True)
class ModelSpec:
    name: str
    version: str  # changes whenever the same input gets a different result (weights or pipeline code): jobs name it
    kind: Kind
    role: Role
    target: str  # "package.module:Class"
    level: NoiseLevel | None = None  # None for classifiers
    weights: str | None = None  # file name under WEIGHTS_DIR
    options: dict[str, Any] = field(default_factory=dict)
    task: Task = "denoise"
    scale: int | None = None  # upscalers: the factor each side grows by

    def build(self, device: str, **options: Any) -> Any:
        """Instantiate the class with its level, weights and options (``options`` override the spec's), and set it up on ``device``."""
        module_name, class_name = self.target.split(":")
        cls = getattr(importlib.import_module(module_name), class_name)
        weights = WEIGHTS_DIR / self.weights if self.weights else None
        model = cls(level=self.level, weights=weights, **{**self.options, **options})
        model.setup(device)
        return model

    @property
    def kinds(self) -> tuple[Kind, ...]:
        """What it restores: image models for tasks after denoising (upscaling) also run on each frame of a video."""
        return FRAME_KINDS if self.kind == "image" and self.task != "denoise" else (self.kind,)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "kind": self.kind, "kinds": list(self.kinds), "role": self.role,
                "task": self.task, "scale": self.scale, "level": self.level, "source": "builtin", "architecture": None}


def _per_level(kind: Kind, name: str, version: str | dict[NoiseLevel, str], target: str, weights: str | None = None,
               levels: tuple[NoiseLevel, ...] = NOISE_LEVELS) -> list[ModelSpec]:
    """One restorer per level; ``version`` is every level's, or a mapping from the levels served to their versions."""
    versions = version if isinstance(version, dict) else dict.fromkeys(levels, version)
    return [
        ModelSpec(
            name=f"{name}-{level}",
            version=level_version,
            kind=kind,
            role="restorer",
            target=target,
            level=level,
            weights=weights.format(level=level) if weights else None,
        )
        for level, level_version in versions.items()
    ]


REGISTRY: tuple[ModelSpec, ...] = (
    ModelSpec("stack-noise", "2", "stack", "classifier", "models.stack.noise:StackNoiseClassifier"),
    # Low-noise stacks get the mean of the networks trained for low and for medium: on low-noise stacks of
    # images neither saw, it beat the low one alone on 7 of 10 family averages (physics by 0.2 to
    # 0.3 dB), at the cost of a few single stacks slightly further below the aligned mean
    # (benchmarks/stack_unseen_images.py, models/train_stack.py).
    ModelSpec("stack-fusion-low", "8", "stack", "restorer", "models.stack.learned:LearnedStackRestorer", level="low",
              weights="stack-low.pt", options={"partners": ("stack-medium.pt",)}),
    *_per_level("stack", "stack-fusion", "7", "models.stack.learned:LearnedStackRestorer", "stack-{level}.pt", ("medium", "high")),
    # The classifier's check keeps the network its thresholds were calibrated on (why: models/image/learned.py).
    ModelSpec("image-noise", "6", "image", "classifier", "models.image.learned:LearnedImageNoiseClassifier", weights="image-noise.pt"),
    *_per_level("image", "image-denoise", "4", "models.image.learned:LearnedImageRestorer", "image.pt"),
    ModelSpec("video-noise", "7", "video", "classifier", "models.video.noise:VideoNoiseClassifier"),
    # Low-noise video gets the fusion alone: there the refiner network did not beat it (models/train_video.py).
    ModelSpec("video-fusion-low", "5", "video", "restorer", "models.video.restorer:VideoRestorer", level="low"),
    # Retrained (medium v3 and v4, high v3) so they no longer lose to the fusion alone on flat colours (models/train_video.py);
    # medium v5, high v4 and low v4: the fusion matches the other frames' brightness in fades (models/video/restorer.py)
    *_per_level("video", "video-fusion", {"medium": "5", "high": "4"}, "models.video.learned:LearnedVideoRestorer", "video-{level}.pt"),
    *(ModelSpec(f"image-upscale-x{s}", "1", "image", "restorer", "models.image.upscale:LearnedUpscaler", weights=f"upscale-x{s}.pt",
                task="upscale", scale=s) for s in UPSCALE_FACTORS),
)


def spec_named(name: str) -> ModelSpec | None:
    return next((s for s in REGISTRY if s.name == name), None)


def classifier_for(kind: Kind) -> ModelSpec:
    return next(s for s in REGISTRY if s.kind == kind and s.role == "classifier")


def restorer_for(kind: Kind, level: NoiseLevel) -> ModelSpec:
    """The denoiser for ``kind`` at ``level``."""
    return next(s for s in REGISTRY if s.kind == kind and s.task == "denoise" and s.role == "restorer" and s.level == level)


def model_for(kind: Kind, task: Task, scale: int | None = None) -> ModelSpec:
    """The model that does ``task`` (after denoising) for ``kind``, by ``scale`` for upscalers; ValueError says what there is."""
    found = [s for s in REGISTRY if kind in s.kinds and s.task == task]
    for spec in found:
        if spec.scale == scale:
            return spec
    have = ", ".join(f"x{s.scale}" if s.scale else s.name for s in found) or "none"
    raise ValueError(f"no {task} model for {kind}s{f' by {scale}' if scale else ''} (there is: {have})")
