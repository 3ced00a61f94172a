"""Video denoising by motion-compensated temporal fusion, streamed frame by frame.

Noise is independent from frame to frame while the scene is not, so averaging a frame with others,
once they are warped onto it, removes noise without blurring what moves. Two sources are fused:

- the past, recursively: the previous frame's estimate (itself a fusion of many earlier frames) is
  warped onto the current frame and merged with it, so every frame inherits the averaging of up to
  ``memory`` earlier frames for the price of one optical flow;
- the next ``ahead`` frames, each warped onto the current frame, so a frame's estimate does not
  depend on the past alone (it would start noisy after every cut or uncovered region).

Warping uses dense optical flow (OpenCV DIS) on luma smoothed in proportion to the noise, so the
flow follows the picture, not the grain. Each warped pixel gets a weight that falls off once its
patch differs from the current frame's by more than noise explains (occlusions, flow errors, cuts),
so those pixels fall back to the frame itself; in a fade or an exposure change the other frames
are first matched to the current one's brightness (:func:`brightness_matched`: a fade to black
came out 30 to 33 dB where its steady frames got 36.5, now 35.7 to 37.5). The fused frame is then smoothed in space by an
edge-preserving bilateral filter as strong as the noise the fusion leaves. Colour: flow on luma,
weights and fusion on RGB. Memory: the ``ahead`` frames plus one estimate, whatever the clip length.
"""
from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import cv2
import numpy as np

from models.image.noise import MAD_TO_STD
from models.interface import HIGH_ABOVE_8BIT, LOW_BELOW_8BIT, NoiseEstimate, NoiseLevel, SigmaUpdate, no_sigma_update
from models.video.noise import frame_sigma

T = TypeVar("T")
LUMA = np.array([[0.299, 0.587, 0.114]], np.float32)
CHANNEL_MEAN = np.full((1, 3), 1 / 3, np.float32)
MIN_FLOW_SIDE = 12  # DIS refuses smaller frames; those are treated as still
FLOW_MAX_SIDE = 960  # larger frames get their flow computed smaller, for speed (720p, 1080p)
RECHECK_EVERY = 25  # frames between noise measurements during a clip
RECHECK_WINDOW = 8  # measurements the running sigma is the median of
RECHECK_MIN = 3  # measurements needed before they replace the classifier's sigma
BRIGHTNESS_TOLERANCE = 0.02  # frames whose brightness differs by less are fused as they are (see brightness_matched)
MIN_GAIN_PIXELS = 64  # values of the reduced copies needed to tell a cut
SAME_SCENE_CORRELATION = 0.5  # frames correlated less are another scene (a cut): no gain between them
# The sigma range each level serves: an overridden level moves the measured sigma into its range.
SIGMA_RANGE: dict[NoiseLevel, tuple[float, float]] = {
    "low": (0.5, LOW_BELOW_8BIT),
    "medium": (LOW_BELOW_8BIT, HIGH_ABOVE_8BIT),
    "high": (HIGH_ABOVE_8BIT, 80.0),
}


@dataclass(frozen=True)
class FusionSettings:
    """Knobs of the fusion, tuned on synthetic clips at sigma 5, 15 and 30 (FFV1 and H.264).

    The same values came out best, within 0.1 dB, at every level, so the levels share them and
    differ only in the sigma range they accept.
    """

    ahead: int = 2  # future frames fused into each frame
    memory: float = 8.0  # at most this many frames' worth of past in the recursive estimate
    guide_blur: float = 0.05  # blur of the flow guide, in pixels per unit of luma noise
    tolerance: float = 1.0  # patch difference beyond noise that still counts, in noise variances
    patch: int = 5  # side of the patch that differences are averaged over
    spatial: float = 4.0  # bilateral colour sigma, in units of the noise left after fusion
    spatial_size: int = 5  # bilateral diameter (its spatial sigma is diameter / 2.5)

    @property
    def warmup_frames(self) -> int:
        """Frames of a clip's past that a segment fuses before its first frame, so its temporal
        estimate matches an unsplit run's: each frame keeps at most ``1 - 1 / memory`` of the
        past, so what the segment's cold start leaves falls below 0.1 % after this many."""
        return math.ceil(math.log(1e-3) / math.log(1 - 1 / self.memory))


class VideoRestorer:
    """Fusion and bilateral filter alone, no weights: the first stage of the served
    :class:`models.video.learned.LearnedVideoRestorer`, kept whole as the evaluation's ablation and
    for fast tests of the streaming. The level bounds the sigma the fusion trusts; the measured sigma sets it."""

    def __init__(self, level: NoiseLevel, weights: Path | None = None, settings: FusionSettings = FusionSettings()):
        self.level = level
        self.settings = settings

    def setup(self, device: str) -> None:
        """Nothing to load: OpenCV runs on the CPU whatever ``device`` says."""

    def predict(self, frames: Iterator[np.ndarray], noise: NoiseEstimate, on_sigma: SigmaUpdate = no_sigma_update,
                *, start: int = 0, warmup: int = 0, lossy: bool = False) -> Iterator[np.ndarray]:
        """One restored frame per input frame after the first ``warmup`` (those only warm the
        temporal estimate up), in order, holding ``ahead + 1`` frames at a time. ``start``: the
        clip's index of the first frame (a segment's noise re-checks fall where an unsplit run's do).
        ``lossy``: the clip was stored by a lossy codec, as the classifier was told."""
        fusion = _Fusion(self.settings, noise.sigma, self.level, on_sigma, start, lossy)
        for index, (frame, following) in enumerate(lookahead(map(fusion.prepare, frames), self.settings.ahead)):
            if index < warmup:
                fusion.fuse(frame, following)
            else:
                yield fusion.restore(frame, following)


def brightness_matched(image: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``image`` (another frame or the past estimate, warped onto ``reference``) scaled channel by
    channel to the reference's brightness when they show the same scene (their 4x reduced copies,
    where noise is small, correlate at least :data:`SAME_SCENE_CORRELATION`: not across a cut) at
    levels that differ by more than :data:`BRIGHTNESS_TOLERANCE`: in a fade or an exposure change
    the other frames are darker or brighter than the current one, and fused as they are they would
    drag it towards their level.

    Both the ratio of the whole frames' means and that over the pixels whose difference is ordinary
    (within 3 robust spreads of its median) must say so: the first alone moves with a large object,
    the second alone with skewed noise (a camera's, clipped at black) that its choice of pixels cuts
    unevenly; the second is the gain. Pixels are never chosen by either frame's values, nor a median
    of ratios taken: both are biased by the noise and its clipping."""
    ours, theirs = image.reshape(-1, 3), reference.reshape(-1, 3)
    overall = theirs.mean(axis=0) / np.maximum(ours.mean(axis=0), 1e-3)
    if np.all(np.abs(overall - 1) <= BRIGHTNESS_TOLERANCE):
        return image
    difference = theirs - ours * overall
    deviation = np.abs(difference - np.median(difference, axis=0))
    ordinary = deviation <= 3 * MAD_TO_STD * np.median(deviation, axis=0)
    gains = (theirs * ordinary).sum(axis=0) / np.maximum((ours * ordinary).sum(axis=0), 1e-3)
    if np.all(np.abs(gains - 1) <= BRIGHTNESS_TOLERANCE):  # only what moves differed
        return image
    ours_small, theirs_small = (cv2.resize(x, None, fx=0.25, fy=0.25, interpolation=cv2.INTER_AREA).ravel() for x in (image, reference))
    if ours_small.size < MIN_GAIN_PIXELS or _correlation(ours_small, theirs_small) < SAME_SCENE_CORRELATION:
        return image
    return image * gains.astype(np.float32)


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two arrays; 0 when either is flat (a black frame shows no scene)."""
    a, b = a - a.mean(), b - b.mean()
    norm = float(np.sqrt(np.dot(a, a) * np.dot(b, b)))
    return float(np.dot(a, b)) / norm if norm > 0 else 0.0


def lookahead(items: Iterator[T], count: int) -> Iterator[tuple[T, list[T]]]:
    """Each item with the (up to) ``count`` items that follow it."""
    window: deque[T] = deque()
    for item in items:
        window.append(item)
        if len(window) > count:
            yield window.popleft(), list(window)
    while window:
        yield window.popleft(), list(window)


@dataclass
class _Frame:
    rgb: np.ndarray  # float32 (H, W, 3), 8-bit units
    guide: np.ndarray  # uint8 smoothed luma, what the flow is computed on


@dataclass
class _Estimate(_Frame):
    count: np.ndarray  # float32 (H, W): how many noisy frames' worth the pixel averages


class _Fusion:
    """Restores the frames of one clip in order; keeps the last temporal estimate between calls."""

    def __init__(self, settings: FusionSettings, sigma: float, level: NoiseLevel, on_sigma: SigmaUpdate = no_sigma_update, start: int = 0,
                 lossy: bool = False):
        self.settings = settings
        self.on_sigma = on_sigma
        self.lossy = lossy  # the clip's codec: its noise re-checks read as the classifier's did
        # One flow engine per clip: DIS keeps buffers between calls, so it is not shared across threads.
        self.flow = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST)
        self.level = level
        self._set_sigma(sigma)
        self.past: _Estimate | None = None
        self._grid: np.ndarray | None = None
        self._seen = start  # the clip's index of the next frame
        self._recent_sigmas: deque[float] = deque(maxlen=RECHECK_WINDOW)
        self._previous: np.ndarray | None = None  # the last frame prepared, for the temporal noise reading

    def _set_sigma(self, sigma: float) -> None:
        self.sigma = float(np.clip(sigma, *SIGMA_RANGE[self.level]))
        self.variance = self.sigma**2
        self.guide_blur = self.settings.guide_blur * self.sigma * float(np.linalg.norm(LUMA))

    def prepare(self, rgb: np.ndarray) -> _Frame:
        rgb = np.ascontiguousarray(rgb, dtype=np.float32)
        self._recheck(rgb)
        return _Frame(rgb, self._guide(rgb))

    def _recheck(self, rgb: np.ndarray) -> None:
        """Long clips change (light, gain): every RECHECK_EVERY frames the noise is measured again.

        The median of the last RECHECK_WINDOW measurements replaces the sigma the clip started
        with, kept inside the level's range (the model was picked for that level), and is passed to
        ``on_sigma``. Each measurement is the classifier's reading of the frame and the one before it.
        """
        if self._seen % RECHECK_EVERY == 0 and self._seen > 0:
            self._recent_sigmas.append(frame_sigma(rgb, self._previous, self.lossy))
            if len(self._recent_sigmas) >= RECHECK_MIN:
                self._set_sigma(float(np.median(self._recent_sigmas)))
                self.on_sigma(self._seen, self.sigma)
        self._previous = rgb
        self._seen += 1

    def restore(self, frame: _Frame, following: list[_Frame]) -> np.ndarray:
        return self.smooth(*self.fuse(frame, following))

    def smooth(self, fused: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """The fused frame through a bilateral filter as strong as the noise the fusion left."""
        left = float(np.sqrt(np.mean(1 / weights) * self.variance))
        size = self.settings.spatial_size
        return cv2.bilateralFilter(fused, size, self.settings.spatial * left, size / 2.5)

    def fuse(self, frame: _Frame, following: list[_Frame]) -> tuple[np.ndarray, np.ndarray]:
        """The temporal average around ``frame`` and, per pixel, how many noisy frames' worth it holds."""
        estimate = self._merge_past(frame)
        total = estimate.rgb * estimate.count[..., None]
        weights = estimate.count.copy()
        for other in following:
            warped = brightness_matched(self._warp(other.rgb, self._flow_to(frame, other)), frame.rgb)
            weight = self._similarity(warped, estimate.rgb, 1 + 1 / estimate.count)
            total += warped * weight[..., None]
            weights += weight
        return total / weights[..., None], weights

    def _merge_past(self, frame: _Frame) -> _Estimate:
        """The frame averaged with the warped past estimate where they agree; becomes the new past."""
        if self.past is None:
            rgb, count = frame.rgb, np.ones(frame.rgb.shape[:2], np.float32)
        else:
            flow = self._flow_to(frame, self.past)
            past_rgb = brightness_matched(self._warp(self.past.rgb, flow), frame.rgb)
            past_count = self._warp(self.past.count, flow, cv2.INTER_LINEAR)
            weight = past_count * self._similarity(past_rgb, frame.rgb, 1 + 1 / past_count)
            rgb = (frame.rgb + past_rgb * weight[..., None]) / (1 + weight)[..., None]
            count = np.minimum(1 + weight, self.settings.memory)
        self.past = _Estimate(rgb, self._guide(rgb), count)
        return self.past

    def _guide(self, rgb: np.ndarray) -> np.ndarray:
        luma = cv2.transform(rgb, LUMA)
        scale = min(1.0, FLOW_MAX_SIDE / max(luma.shape))
        if scale < 1:
            luma = cv2.resize(luma, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        if self.guide_blur * scale > 0.3:
            luma = cv2.GaussianBlur(luma, (0, 0), self.guide_blur * scale)
        return np.clip(luma + 0.5, 0, 255).astype(np.uint8)

    def _flow_to(self, frame: _Frame, other: _Frame) -> np.ndarray:
        """Per pixel of ``frame``, where it lies in ``other``."""
        h, w = frame.rgb.shape[:2]
        if max(frame.guide.shape) < MIN_FLOW_SIDE:
            return np.zeros((h, w, 2), np.float32)
        flow = self.flow.calc(frame.guide, other.guide, None)
        if flow.shape[:2] != (h, w):
            flow *= np.float32([w / flow.shape[1], h / flow.shape[0]])
            flow = cv2.resize(flow, (w, h), interpolation=cv2.INTER_LINEAR)
        return flow

    def _warp(self, image: np.ndarray, flow: np.ndarray, interpolation: int = cv2.INTER_CUBIC) -> np.ndarray:
        return cv2.remap(image, self._pixel_grid(flow.shape[:2]) + flow, None, interpolation, borderMode=cv2.BORDER_REPLICATE)

    def _similarity(self, warped: np.ndarray, reference: np.ndarray, expected: np.ndarray) -> np.ndarray:
        """1 where the patches differ as noise alone would (``expected`` noise variances), falling to 0 beyond."""
        difference = cv2.subtract(warped, reference)
        distance = cv2.transform(cv2.multiply(difference, difference), CHANNEL_MEAN)
        distance = cv2.boxFilter(distance, -1, (self.settings.patch, self.settings.patch))
        excess = np.maximum(distance - expected * self.variance, 0)
        return cv2.exp(excess * np.float32(-1 / (self.settings.tolerance * self.variance)))

    def _pixel_grid(self, shape: tuple[int, int]) -> np.ndarray:
        """(H, W, 2) float32 x, y of every pixel: a flow added to it is a map for ``cv2.remap``."""
        if self._grid is None or self._grid.shape[:2] != shape:
            h, w = shape
            self._grid = np.dstack(np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32)))
        return self._grid
