"""Restore one file: read it, classify its noise, run the model for that level, write the result.

The one code path behind the worker and ``restora run``, so both give the same numbers.
"""
from __future__ import annotations

import itertools
import shutil
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

from models import io
from models.device import pick_device
from models.formats import LOSSY_IMAGE_FORMATS, MP4_COPYABLE_VIDEO_CODECS, KindChoice, format_of, jpeg_step
from models.image.noise import data_range
from models.image.upscale import enlarge_alpha
from models.interface import FrameModel, Kind, NoiseEstimate, NoiseLevel, Task, model_mismatch, no_progress
from models.recompression import EncodingCost, kept_input_note
from models.registry import REGISTRY, ModelSpec, classifier_for, model_for, restorer_for, spec_named
from models.stack.frames import outlier_frames
from models.user_models import UserModels
from models.video.noise import NOISE_FRAMES

NoiseChoice = Literal["auto", "low", "medium", "high"]


class Reporter(Protocol):
    """What a caller hears while a file is restored. ``progress`` may raise ``Canceled``."""

    def input(self, info: dict[str, Any]) -> None: ...
    def noise(self, estimate: NoiseEstimate, source: str) -> None: ...
    def model(self, name: str, version: str) -> None: ...
    def progress(self, fraction: float, stage: str) -> None: ...
    def noise_recheck(self, frame: int, sigma: float) -> None: ...
    def damaged(self, seconds: list[float]) -> None:
        """Where a clip's decoder refused damaged data (skipped, as players do: those frames are missing or marred)."""


class SilentReporter:
    def input(self, info: dict[str, Any]) -> None: ...
    def noise(self, estimate: NoiseEstimate, source: str) -> None: ...
    def noise_recheck(self, frame: int, sigma: float) -> None: ...
    def damaged(self, seconds: list[float]) -> None: ...
    def model(self, name: str, version: str) -> None: ...
    def progress(self, fraction: float, stage: str) -> None: ...


@dataclass
class Chain:
    """The models one job runs, in order: a denoiser for the noise level (none when a user's model
    replaces it), then a per-frame model after it (an upscaler, or the user's model), or neither."""

    denoiser: ModelSpec | None
    after: FrameModel | None
    name: str
    version: str

    @property
    def scale(self) -> int:
        return self.after.scale if self.after is not None else 1


@dataclass
class RunSummary:
    kind: Kind
    input: dict[str, Any]
    noise: NoiseEstimate
    noise_source: str
    model: Chain
    seconds: float
    result_notes: dict[str, str] = field(default_factory=dict)  # format -> what its result is, when not the restored frames


@dataclass
class SegmentRun:
    """What restoring a segment of a split clip made: the frames written and, for each lossy result
    format, what its encode cost (the join adds them up)."""
    frames: int
    costs: dict[str, EncodingCost]


class Pipeline:
    """Holds every classifier and restoration model, loaded once, on one device; users' model files
    from ``models_dir`` are detected when the catalogue is first asked for (a run that names no model
    never reads them) and loaded on first use."""

    def __init__(self, device: str | None = None, kinds: tuple[Kind, ...] = ("stack", "image", "video"), video_net_memory_mb: float | None = None,
                 models_dir: Path | None = None):
        """``video_net_memory_mb``: the video network's memory budget per frame (default: the model's own)."""
        self.device = pick_device(device)
        self.specs = [s for s in REGISTRY if set(s.kinds) & set(kinds)]
        video_options = {"net_memory_mb": video_net_memory_mb} if video_net_memory_mb else {}
        self._loaded = {spec.name: spec.build(self.device, **(video_options if (spec.kind, spec.role) == ("video", "restorer") and spec.weights else {}))
                        for spec in self.specs}
        self.user_models = UserModels(models_dir, self.device, reserved=frozenset(s.name for s in REGISTRY)) if models_dir else None

    def catalog(self) -> list[dict[str, Any]]:
        """Restora's own models, then the users' (as ``/v1/models`` lists them)."""
        return [spec.describe() for spec in self.specs] + (self.user_models.catalog() if self.user_models else [])

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
        model: str | None = None,
        report: Reporter | None = None,
    ) -> RunSummary:
        """Restore ``src`` into each of ``outputs`` (format by extension); ``kind`` settles an ambiguous .npy.
        ``task="upscale"`` enlarges by ``scale`` after denoising; ``model`` names the restorer to use
        (one of :meth:`catalog`) instead of the one for the noise level."""
        report = report or SilentReporter()
        started = time.perf_counter()
        kind = io.detect_kind(src, kind)
        self.check(kind, task, scale, model)
        if kind == "video":
            from models.video.io import VideoReader

            with VideoReader(src) as reader:
                estimate, source, chain = self._classify_clip(reader, noise_level, task, scale, model, report)
                _, costs = self._stream_video(reader, chain, estimate, outputs, 0, None, report)
                notes = _keep_input_where_cheaper(reader, costs)
            info = reader.info
        else:
            info, estimate, source, chain, notes = self._restore_frame(kind, src, outputs, noise_level, layout, task, scale, model, report)
        report.progress(1.0, "done")
        return RunSummary(kind, info, estimate, source, chain, time.perf_counter() - started, notes)

    def check(self, kind: Kind, task: Task, scale: int | None, model: str | None) -> None:
        """ValueError, in words, when nothing here serves this kind, task, scale and model."""
        if model is not None:
            entry = next((e for e in self.catalog() if e["name"] == model), None)
            if entry is None:
                raise ValueError(f"there is no model named {model!r} here (see /v1/models or `restora models list`)")
            problem = model_mismatch(entry, kind, task, scale)
            if problem:
                raise ValueError(problem)
        elif task != "denoise":
            spec = model_for(kind, task, scale)
            if spec.name not in self._loaded:
                raise ValueError(f"{spec.name} is not loaded here")

    def _chain(self, kind: Kind, level: NoiseLevel, task: Task, scale: int | None, model: str | None) -> Chain:
        named = spec_named(model) if model else None
        if model and named is None:  # a user's model: it replaces Restora's own
            user = self.user_models.get(model)
            return Chain(None, user, user.name, user.info.sha256[:12])
        if named is not None and named.task == "denoise":
            return Chain(named, None, named.name, named.version)
        denoiser = restorer_for(kind, level)
        if task == "denoise":
            return Chain(denoiser, None, denoiser.name, denoiser.version)
        after = named or model_for(kind, task, scale)  # after denoising: enlarged noise would be harder to remove
        return Chain(denoiser, self._loaded[after.name], f"{denoiser.name}+{after.name}", f"{denoiser.version}+{after.version}")

    def _classify(self, kind: Kind, sample: Any, noise_level: NoiseChoice, task: Task, scale: int | None, model: str | None,
                  report: Reporter, **facts: Any) -> tuple[NoiseEstimate, str, Chain]:
        """``facts``: what the classifier is told besides the sample (a clip: whether it was stored lossy; a JPEG: its quantisation step)."""
        report.progress(0.0, "classifying noise")
        estimate: NoiseEstimate = self._loaded[classifier_for(kind).name].predict(sample, **facts)
        source = "classifier"
        if noise_level != "auto":
            estimate = replace(estimate, level=noise_level)
            source = "override"
        report.noise(estimate, source)
        chain = self._chain(kind, estimate.level, task, scale, model)
        report.model(chain.name, chain.version)
        return estimate, source, chain

    def _restore_frame(self, kind: Kind, src: Path, outputs: list[Path], noise_level: NoiseChoice, layout: io.Layout, task: Task,
                       scale: int | None, model: str | None, report: Reporter):
        report.progress(0.0, "reading")
        tags = io.picture_tags(src) if kind == "image" else None  # read once: the result carries them
        data, info = io.read_stack(src, layout) if kind == "stack" else io.read_image(src, tags)
        sent = data  # as read: the restored picture ends up in its shape (alpha back, gray repeated)
        if kind == "stack" and (dropped := outlier_frames(data)):  # black, blown-out or blank frames
            data = np.delete(data, dropped, axis=0)
            info["frames_left_out"] = dropped
        report.input(info)
        alpha = None
        if data.ndim == 3 and kind == "image" and data.shape[2] == 4:  # restore the colour, keep the alpha as sent
            data, alpha = data[..., :3], data[..., 3:]
        gray_in_colour = kind == "image" and data.ndim == 3 and bool((data == data[..., :1]).all())
        if gray_in_colour:  # a gray picture stored as RGB (or gray + alpha, which OpenCV reads as RGBA): restored as gray, it gains no false colour
            data = data[..., 0]
        facts = {"jpeg_step": jpeg_step(src)} if kind == "image" and format_of(src) == "jpg" else {}
        estimate, source, chain = self._classify(kind, data, noise_level, task, scale, model, report, **facts)
        restored = data
        if chain.denoiser is not None:
            restored = self._loaded[chain.denoiser.name].predict(data, estimate, report.progress)
        if chain.after is not None:
            restored = chain.after.predict(restored, estimate, report.progress, peak=data_range(data))
        if gray_in_colour:
            restored = np.repeat(restored[..., None], 3, axis=2)
        if alpha is not None:
            restored = np.concatenate([restored, enlarge_alpha(alpha, chain.scale)], axis=2)
        report.progress(0.99, "writing")
        for path in outputs:
            io.write_frame(path, restored, info, kind, tags)
        notes = _keep_picture_where_cheaper(src, outputs, sent, restored, info) if kind == "image" and chain.scale == 1 else {}
        return info, estimate, source, chain, notes

    def _classify_clip(self, reader, noise_level: NoiseChoice, task: Task, scale: int | None, model: str | None, report: Reporter):
        """Report the clip's facts and classify its noise on its first frames."""
        report.input(reader.info)
        return self._classify("video", reader.head(NOISE_FRAMES), noise_level, task, scale, model, report, lossy=_lossy(reader))

    def plan_video(self, src: Path, noise_level: NoiseChoice = "auto", task: Task = "denoise", scale: int | None = None,
                   model: str | None = None, report: Reporter | None = None) -> RunSummary:
        """What a split clip's segments share: the clip's facts, its noise and the models for it
        (classified once, on the clip's first frames, as an unsplit run does)."""
        from models.video.io import VideoReader

        report = report or SilentReporter()
        started = time.perf_counter()
        self.check("video", task, scale, model)
        with VideoReader(src) as reader:
            estimate, source, chain = self._classify_clip(reader, noise_level, task, scale, model, report)
            return RunSummary("video", reader.info, estimate, source, chain, time.perf_counter() - started)

    def restore_segment(self, src: Path, outputs: list[Path], *, first: int, stop: int | None, noise: NoiseEstimate,
                        task: Task = "denoise", scale: int | None = None, model: str | None = None, report: Reporter | None = None) -> SegmentRun:
        """Frames ``first`` to ``stop`` (None: the end) of a clip, restored as :meth:`plan_video` planned
        into video-only files for :meth:`join_segments`; the frames before ``first`` that the denoiser's
        temporal estimate needs are fused first, so the frames match an unsplit run's."""
        from models.video.io import VideoReader

        chain = self._chain("video", noise.level, task, scale, model)
        with VideoReader(src) as reader:
            frames, costs = self._stream_video(reader, chain, noise, outputs, first, stop, report or SilentReporter(), audio=False)
        return SegmentRun(frames, {format_of(path): cost for path, cost in costs.items()})

    def join_segments(self, src: Path, parts: dict[Path, list[Path]], costs: dict[str, EncodingCost] | None = None) -> dict[str, str]:
        """Each output from its segments, in order, with the source clip's audio (see :func:`models.video.io.join_segments`),
        or, where the segments' summed ``costs`` (by format) say so, the source's own video stream. Returns the result notes."""
        from models.video.io import VideoReader, join_segments

        costs = costs or {}
        with VideoReader(src) as reader:
            notes = _keep_input_where_cheaper(reader, {path: costs[format_of(path)] for path in parts if format_of(path) in costs})
            for output, segments in parts.items():
                if format_of(output) not in notes:
                    join_segments(reader, segments, output)
            return notes

    def _stream_video(self, reader, chain: Chain, noise: NoiseEstimate, outputs: list[Path], first: int, stop: int | None,
                      report: Reporter, audio: bool = True) -> tuple[int, dict[Path, EncodingCost]]:
        """Restore and write the frames; returns how many, and each lossy output's encoding cost where the
        result could be the input's own stream (:func:`_input_could_be_kept`, :func:`_keep_input_where_cheaper`)."""
        from models.video.io import VideoWriter

        denoiser = self._loaded[chain.denoiser.name] if chain.denoiser is not None else None
        warmup = min(first, denoiser.settings.warmup_frames) if denoiser is not None else 0
        end = int(reader.info["frames"]) if stop is None else stop
        total = max(end - first, 1)
        compare = _input_could_be_kept(reader, chain)
        sources: deque[np.ndarray] = deque()
        frames = _kept(reader.frames(first, warmup), sources, warmup) if compare else reader.frames(first, warmup)
        restored = denoiser.predict(frames, noise, report.noise_recheck, start=first - warmup, warmup=warmup, lossy=_lossy(reader)) \
            if denoiser is not None else frames
        done = 0
        with VideoWriter(outputs, reader, audio, chain.scale, compare) as writer:
            for done, frame in enumerate(itertools.islice(restored, None if stop is None else stop - first), start=1):
                if chain.after is not None:
                    frame = chain.after.predict(frame, noise, no_progress, peak=255.0)  # video frames are in 8-bit units
                writer.write(frame, sources.popleft() if compare else None)
                report.progress(min(done / total, 0.99), f"frame {first + done}/{int(reader.info['frames'])}")
        damaged = sorted(round(seconds, 2) for index, seconds in reader.damaged if index >= first and (stop is None or index < stop))
        if damaged:
            report.damaged(damaged)
        return done, writer.costs


def _kept(frames: Iterator[np.ndarray], into: deque[np.ndarray], warmup: int) -> Iterator[np.ndarray]:
    """``frames``, each after the first ``warmup`` (which only warm the restorer up) also kept in ``into``
    until the writer takes it with its restored frame."""
    for index, frame in enumerate(frames):
        if index >= warmup:
            into.append(frame)
        yield frame


def _input_could_be_kept(reader, chain: Chain) -> bool:
    """Whether an MP4 result could be the input's own stream (a lossy clip restored at its own size, in a codec
    MP4 holds): only then does the writer measure what its encode costs."""
    return _lossy(reader) and chain.scale == 1 and reader.info["codec"] in MP4_COPYABLE_VIDEO_CODECS


def _keep_input_where_cheaper(reader, costs: dict[Path, EncodingCost]) -> dict[str, str]:
    """Video outputs whose second encode costs at least what the restoration changed (a lightly noisy lossy
    clip, whose MP4 result would come back further from the clean picture than the input) become the input's
    own video stream, copied with its audio (costs are measured only where MP4 can hold it:
    :func:`_input_could_be_kept`). Returns what each such result is, by format."""
    from models.video.io import join_segments

    notes = {}
    for path, cost in costs.items():
        if cost.outweighs_restoration:
            join_segments(reader, [reader.path], path)
            notes[format_of(path)] = kept_input_note(cost, "video stream")
    return notes


def _keep_picture_where_cheaper(src: Path, outputs: list[Path], sent: np.ndarray, restored: np.ndarray, info: dict[str, Any]) -> dict[str, str]:
    """The image counterpart: a result in the input's own lossy format (a JPEG's .jpg, a lossy WebP's .webp,
    HEIC, AVIF) whose encode costs at least what the restoration changed becomes a copy of the input file.
    Not a photo stored sideways (an EXIF orientation): its results are upright, as documented."""
    notes = {}
    fmt = format_of(src)
    if fmt not in LOSSY_IMAGE_FORMATS or info.get("lossless") or info.get("orientation"):
        return notes
    for path in outputs:
        if format_of(path) != fmt:
            continue
        cost = EncodingCost()
        cost.compare(_colour(restored), encoded=_colour(io.read_image(path)[0]), source=_colour(sent))
        if cost.outweighs_restoration:
            shutil.copyfile(src, path)
            notes[fmt] = kept_input_note(cost, "file")
    return notes


def _colour(image: np.ndarray) -> np.ndarray:
    """A picture without its alpha (JPEG has none, and the alpha was kept as sent)."""
    return image[..., :3] if image.ndim == 3 else image


def _lossy(reader) -> bool:
    """Whether a clip was stored by a lossy codec, which the video noise reading is told (models.video.noise)."""
    return not reader.info.get("lossless")
