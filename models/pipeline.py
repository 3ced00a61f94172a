"""Restore one file: read it, classify its noise, run the model for that level, write the result.

The one code path behind the worker and ``restora run``, so both give the same numbers.
"""
from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

from models import io
from models.device import pick_device
from models.formats import KindChoice
from models.interface import Kind, NoiseEstimate, Task
from models.registry import REGISTRY, ModelSpec, classifier_for, restorer_for, upscaler_for

NoiseChoice = Literal["auto", "low", "medium", "high"]
# Video noise is classified on the first frames of the clip.
VIDEO_NOISE_FRAMES = 8


class Reporter(Protocol):
    """What a caller hears while a file is restored. ``progress`` may raise ``Canceled``."""

    def input(self, info: dict[str, Any]) -> None: ...
    def noise(self, estimate: NoiseEstimate, source: str) -> None: ...
    def model(self, name: str, version: str) -> None: ...
    def progress(self, fraction: float, stage: str) -> None: ...
    def noise_recheck(self, frame: int, sigma: float) -> None: ...


class SilentReporter:
    def input(self, info: dict[str, Any]) -> None: ...
    def noise(self, estimate: NoiseEstimate, source: str) -> None: ...
    def noise_recheck(self, frame: int, sigma: float) -> None: ...
    def model(self, name: str, version: str) -> None: ...
    def progress(self, fraction: float, stage: str) -> None: ...


@dataclass
class RunSummary:
    kind: Kind
    input: dict[str, Any]
    noise: NoiseEstimate
    noise_source: str
    model: ModelSpec
    seconds: float


class Pipeline:
    """Holds every classifier and restoration model, loaded once, on one device."""

    def __init__(self, device: str | None = None, kinds: tuple[Kind, ...] = ("stack", "image", "video"), video_net_memory_mb: float | None = None):
        """``video_net_memory_mb``: the video network's memory budget per frame (default: the model's own)."""
        self.device = pick_device(device)
        self.specs = [s for s in REGISTRY if s.kind in kinds]
        video_options = {"net_memory_mb": video_net_memory_mb} if video_net_memory_mb else {}
        self._loaded = {spec.name: spec.build(self.device, **(video_options if (spec.kind, spec.role) == ("video", "restorer") else {}))
                        for spec in self.specs}

    def catalog(self) -> list[dict[str, Any]]:
        return [spec.describe() for spec in self.specs]

    def restore_file(
        self,
        src: Path,
        outputs: list[Path],
        *,
        noise_level: NoiseChoice = "auto",
        layout: io.Layout = "auto",
        kind: KindChoice = "auto",
        task: Task = "denoise",
        scale: int | None = None,
        report: Reporter | None = None,
    ) -> RunSummary:
        """Restore ``src`` into each of ``outputs`` (format by extension); ``kind`` settles an ambiguous .npy.
        ``task="upscale"`` enlarges by ``scale`` after denoising (images)."""
        report = report or SilentReporter()
        started = time.perf_counter()
        kind = io.detect_kind(src, kind)
        upscaler = self._upscaler(kind, scale) if task == "upscale" else None
        if kind == "video":
            info, estimate, source, spec = self._restore_video(src, outputs, noise_level, report)
        else:
            info, estimate, source, spec = self._restore_frame(kind, src, outputs, noise_level, layout, report, upscaler)
        report.progress(1.0, "done")
        return RunSummary(kind, info, estimate, source, spec, time.perf_counter() - started)

    def _classify(self, kind: Kind, sample: Any, noise_level: NoiseChoice, report: Reporter) -> tuple[NoiseEstimate, str, ModelSpec, Any]:
        report.progress(0.0, "classifying noise")
        estimate: NoiseEstimate = self._loaded[classifier_for(kind).name].predict(sample)
        source = "classifier"
        if noise_level != "auto":
            estimate = NoiseEstimate(level=noise_level, sigma=estimate.sigma)
            source = "override"
        report.noise(estimate, source)
        spec = restorer_for(kind, estimate.level)
        report.model(spec.name, spec.version)
        return estimate, source, spec, self._loaded[spec.name]

    def _upscaler(self, kind: Kind, scale: int | None) -> ModelSpec:
        if kind != "image":
            raise ValueError(f"upscaling is built for images; not for {kind}s yet")
        spec = upscaler_for(kind, scale or 0)
        if spec.name not in self._loaded:
            raise ValueError(f"{spec.name} is not loaded here")
        return spec

    def _restore_frame(self, kind: Kind, src: Path, outputs: list[Path], noise_level: NoiseChoice, layout: io.Layout, report: Reporter,
                       upscaler: ModelSpec | None = None):
        report.progress(0.0, "reading")
        data, info = io.read_stack(src, layout) if kind == "stack" else io.read_image(src)
        report.input(info)
        alpha = None
        if data.ndim == 3 and kind == "image" and data.shape[2] == 4:  # restore the colour, keep the alpha as sent
            data, alpha = data[..., :3], data[..., 3:]
        estimate, source, spec, model = self._classify(kind, data, noise_level, report)
        restored = model.predict(data, estimate, report.progress)
        if upscaler is not None:  # after denoising: enlarged noise would be harder to remove
            report.model(f"{spec.name}+{upscaler.name}", f"{spec.version}+{upscaler.version}")
            restored = self._loaded[upscaler.name].predict(restored, estimate, report.progress)
            if alpha is not None:
                from models.image.upscale import enlarge_alpha

                alpha = enlarge_alpha(alpha, upscaler.scale)
        if alpha is not None:
            restored = np.concatenate([restored, alpha], axis=2)
        report.progress(0.99, "writing")
        for path in outputs:
            io.write_frame(path, restored, info, kind)
        return info, estimate, source, spec

    def _restore_video(self, src: Path, outputs: list[Path], noise_level: NoiseChoice, report: Reporter):
        from models.video.io import VideoReader

        with VideoReader(src) as reader:
            estimate, source, spec, model = self._classify_clip(reader, noise_level, report)
            self._stream_video(reader, model, estimate, outputs, 0, None, report)
        return reader.info, estimate, source, spec

    def _classify_clip(self, reader, noise_level: NoiseChoice, report: Reporter):
        """Report the clip's facts and classify its noise on its first frames."""
        report.input(reader.info)
        return self._classify("video", reader.head(VIDEO_NOISE_FRAMES), noise_level, report)

    def plan_video(self, src: Path, noise_level: NoiseChoice = "auto", report: Reporter | None = None) -> RunSummary:
        """What a split clip's segments share: the clip's facts, its noise and the model for it
        (classified once, on the clip's first frames, as an unsplit run does)."""
        from models.video.io import VideoReader

        report = report or SilentReporter()
        started = time.perf_counter()
        with VideoReader(src) as reader:
            estimate, source, spec, _ = self._classify_clip(reader, noise_level, report)
            return RunSummary("video", reader.info, estimate, source, spec, time.perf_counter() - started)

    def restore_segment(self, src: Path, outputs: list[Path], *, first: int, stop: int | None, noise: NoiseEstimate,
                        model: str, report: Reporter | None = None) -> int:
        """Frames ``first`` to ``stop`` (None: the end) of a clip, restored by ``model`` into video-only
        files for :meth:`join_segments`; the frames before ``first`` that the restorer's temporal
        estimate needs are fused first, so the frames match an unsplit run's. Returns the frames written."""
        from models.video.io import VideoReader

        with VideoReader(src) as reader:
            return self._stream_video(reader, self._loaded[model], noise, outputs, first, stop, report or SilentReporter(), audio=False)

    def join_segments(self, src: Path, parts: dict[Path, list[Path]]) -> None:
        """Each output from its segments, in order, with the source clip's audio (see :func:`models.video.io.join_segments`)."""
        from models.video.io import VideoReader, join_segments

        with VideoReader(src) as reader:
            for output, segments in parts.items():
                join_segments(reader, segments, output)

    @staticmethod
    def _stream_video(reader, model, noise: NoiseEstimate, outputs: list[Path], first: int, stop: int | None,
                      report: Reporter, audio: bool = True) -> int:
        from models.video.io import VideoWriter

        warmup = min(first, model.settings.warmup_frames)
        end = int(reader.info["frames"]) if stop is None else stop
        total = max(end - first, 1)
        restored = model.predict(reader.frames(first, warmup), noise, report.noise_recheck, start=first - warmup, warmup=warmup)
        done = 0
        with VideoWriter(outputs, reader, audio) as writer:
            for done, frame in enumerate(itertools.islice(restored, None if stop is None else stop - first), start=1):
                writer.write(frame)
                report.progress(min(done / total, 0.99), f"frame {first + done}/{int(reader.info['frames'])}")
        return done
