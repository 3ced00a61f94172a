"""How noisy a clip is, from its first frames: the larger of a spatial and a temporal reading.

- Spatial: the image estimator (models/image/noise.py) on the frame: finest diagonal Haar details
  of the unclipped, flatter half, clipped RMS, without the images' second pass away from black and
  white (it read photo clips 5-10 % higher, and the fusion and networks, tuned on this reading, then
  lost 0.2-0.5 dB at sigma 15 and 30). It sees white noise whole but only the finest part
  of spatially correlated noise: a colour camera's noise, demosaicked, reads 3 to 5 times low. Fine
  texture fills the finest details too (a clean 320 x 180 clip over gravel read 8.3, ``medium``, and
  came back 5 levels RMS smoother), so the reading is capped by the noise of the frame's untextured
  patches (:func:`models.image.noise.weak_texture_sigma`), which texture does not reach; on noisy
  clips that reads at or above the finest details (sigma 15 and 30) or the temporal reading is the
  larger anyway (camera noise, H.264), so the cap binds where the picture, not the noise, is busy.
- Temporal: the frame minus the previous frame warped onto it (DIS flow, rounded to whole pixels so
  the warped frame keeps its noise undiluted), over root 2, with the same flat half and clipped
  RMS, channel by channel: a pixel of a saturated colour (FFmpeg's ``testsrc2`` bars, graphics) has
  lost its noise in the clipped channel only, and leaving out whole pixels left the reading to the
  few moving ones, where the flow fails (testsrc2 read 30 % high). Noise is new in every frame
  while the scene is not, so this sees noise at every spatial scale; it reads low where a codec
  copied the previous frame's noise, and high where the scene changes in ways the flow cannot follow.

Both under-read what they miss, so the larger is the estimate; the median over frame pairs ignores
a cut or a flash. Except at low noise, where both over-read texture (grass, foliage, gravel, cell
micrographs: a clip of grass with noise of sigma 1 read 6.6) and the fusion is most sensitive to it:
on training clips at sigma 1, a reading 1.5 times high already cost 0.7 to 1.9 dB, and grass came back
12.9 dB below its input. So a low reading is the smaller of the two, unless the spatial one is a third
of the temporal or less: that is noise the spatial reading cannot see (a demosaicked camera's: 4 to 9
times low on training clips; texture over white noise read at most 2.1 times apart). Noise through a
lossy codec falls in between (1.8 to 2.8 times): the codec quantised away its finest part, which is
what the spatial reading reads. So a clip the worker knows was stored lossy (H.264, HEVC, VP9, ProRes:
``lossy``) takes the smaller of the two temporal readings alone: FFmpeg's testsrc2 with noise=alls=10
through x264 read 1.7, now 3.7, and comes back 2.8 dB above its input instead of 0.7. Chosen on training
clips (10 photos through x264 at CRF 18 to 28, sigma 0 to 8: none worse by over 0.01 dB, up to +2.1 dB;
4 of them at CRF 8 and 12, where fine texture survives the codec: grass up to 0.34 dB worse) and checked on
held-out ones (``benchmarks/light_noise.py``: 4 photos at sigma 0, 2 and 5 through x264 at CRF 8 to 28, up
to +0.34 dB, at worst 0.09 dB less, at CRF 8). A lossless clip keeps the cautious minimum.

That smaller reading is the noise the codec left, not the noise the clip was given: noise of sigma 7 to 20
through x264 / x265 at CRF 18 to 28 reads 3.5 to 7 on training clips, ``low``, while the medium networks
were trained on just such clips (models/data/video_pairs.py: half their clips through H.264) and restore
them better than the low level's fusion alone. So a lossy clip reading low from ``LOSSY_MEDIUM_FROM`` is
``medium`` where two readings show its noise went through the codec: the spatial reading (the finest
details) at most ``CODEC_SMOOTHED_RATIO`` of the temporal one (white noise a high-quality encode kept reads
alike in both, and there the fusion with its reading is right: at CRF 8 and 12 the medium networks lost up
to 1.8 dB), and the temporal reading at most ``READINGS_AGREE`` times the fine one (where the flow misses
fine texture, fast-moving grass, the temporal reading grows; the medium networks wiped such texture, 1.6 dB
worse). Chosen on training clips (``python benchmarks/lossy_level.py --training``: 10 draws of training
photos with Gaussian noise of sigma 0 to 30 or camera noise, through x264 at CRF 8 to 28 and x265 at 23;
42 of 232 clips switch, +0.64 dB on average over the low level, worst -0.05, none below its input) and
checked on held-out ones (``python benchmarks/lossy_level.py``). The reported sigma stays the reading.

The low reading also takes a third, finer one: the frame difference warped by the exact (sub-pixel)
flow, bicubic, each pixel's difference divided by the noise it holds (the interpolation averages the
previous frame's noise variance down by up to half), on the flattest sixteenth of the pixels instead of half.
Warped by whole pixels, texture misses its place by up to half a pixel and its difference reads as
noise; that is what the flatter half of a textured clip holds. On held-out clips (validation photos,
12 frames of 320 x 180; ``benchmarks/light_noise.py``) at sigma 1 a coffee and a gravel clip read 1.76
and 2.14 and came back 1.6 dB below their input; now 1.36 and 1.79, 0.5 dB below (with the true sigma
the fusion gains 0.4 to 0.6). At sigma 10 the same clips read 0 to 3.3 % above the truth this way and
3 to 13 % above it as served, but the fusion and the networks of the higher levels were tuned on the
served reading, so the finer one only serves low noise.

Compression removes part of the noise before we see it, so a compressed clip reads less noisy than
its source was: that lower value is the noise the restorer actually faces.
The fusion re-measures during a clip with :func:`frame_sigma`, the same reading.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from models.image.noise import MIN_SAMPLES, capped_by_untextured, clipped_rms, edge_strength, estimate_sigma, flattest, without_border
from models.interface import NoiseEstimate, NoiseLevel, level_of_sigma_8bit

NOISE_FRAMES = 8  # a clip's first frames, read by the classifier
FLOW_MAX_SIDE = 640  # the temporal reading's flow is computed on frames at most this large
FLOW_GUIDE_BLUR_PX = 1.5  # so the flow follows the picture, not the grain
BORDER_PX = 8  # warped borders repeat edge pixels: left out
FINE_SHARE = 1 / 16  # of the pixels: the flattest, where the flow's errors over texture leave the least (module docstring)
CORRELATED_NOISE_RATIO = 3.0  # temporal / spatial reading above which the noise is spatially correlated (module docstring)
LOSSY_MEDIUM_FROM = 3.5  # a lossy clip's low reading from which the medium networks may restore it (module docstring):
CODEC_SMOOTHED_RATIO = 0.7  # if its spatial reading is at most this times the temporal one (the codec took the finest noise)
READINGS_AGREE = 1.3  # and its temporal reading at most this times the fine one (noise, not texture the flow missed)


class FramePair:
    """A frame and the previous one warped onto it by DIS flow, computed once for both temporal readings."""

    def __init__(self, previous: np.ndarray, current: np.ndarray):
        h, w = current.shape[:2]
        scale = min(1.0, FLOW_MAX_SIDE / max(h, w))

        def guide(rgb: np.ndarray) -> np.ndarray:
            luma = cv2.cvtColor(np.clip(rgb, 0, 255).astype(np.uint8), cv2.COLOR_RGB2GRAY)
            if scale < 1:
                luma = cv2.resize(luma, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            return cv2.GaussianBlur(luma, (0, 0), FLOW_GUIDE_BLUR_PX)

        flow = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM).calc(guide(current), guide(previous), None)
        if scale < 1:
            flow = cv2.resize(flow, (w, h), interpolation=cv2.INTER_LINEAR) * np.float32(1 / scale)
        xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
        self.x, self.y = xs + flow[..., 0], ys + flow[..., 1]
        self.previous, self.current = np.asarray(previous, np.float32), np.asarray(current, np.float32)

    def temporal_sigma(self) -> float:
        """Noise std (8-bit units) of the current frame from its difference with the previous one warped
        by whole pixels (so it keeps its noise undiluted), on the flatter half: the reading at every level."""
        whole = cv2.remap(self.previous, np.rint(self.x), np.rint(self.y), cv2.INTER_NEAREST, borderMode=cv2.BORDER_REPLICATE)
        return _difference_sigma(self.current, whole, 0.5) or 0.0

    def fine_sigma(self) -> float | None:
        """The same from the previous frame warped by the exact flow, each pixel's difference divided by the
        noise it holds, on the flattest sixteenth: low noise's third reading (module docstring); None
        when the frame has too few usable pixels."""
        exact = cv2.remap(self.previous, self.x, self.y, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
        dilution = _cubic_noise_gain(self.x - np.floor(self.x)) * _cubic_noise_gain(self.y - np.floor(self.y))
        return _difference_sigma(self.current, exact, FINE_SHARE, np.sqrt(1 + dilution)[..., None])


def _cubic_noise_gain(fraction: np.ndarray) -> np.ndarray:
    """The share of white noise's variance that survives OpenCV's bicubic interpolation (a = -0.75) at
    this fractional offset: the sum of its four weights squared (1 at whole pixels, 0.72 halfway)."""
    a = np.float32(-0.75)
    gain = np.zeros_like(fraction)
    for offset in (-1, 0, 1, 2):
        t = np.abs(fraction - offset)
        weight = np.where(t <= 1, ((a + 2) * t - (a + 3)) * t * t + 1, ((a * t - 5 * a) * t + 8 * a) * t - 4 * a)
        gain += np.where(t < 2, weight, 0) ** 2
    return gain


def _difference_sigma(current: np.ndarray, warped: np.ndarray, share: float, spread: np.ndarray | float = np.sqrt(2.0)) -> float | None:
    """Noise std from ``current - warped`` over ``spread`` (how much noise the difference holds per unit of
    the frame's), on the unclipped pixels away from the border, the flattest ``share`` of them, channel by
    channel: a saturated colour still carries noise in its other channels. None without enough pixels."""
    low, high = current.min(axis=(0, 1)), current.max(axis=(0, 1))
    unclipped = (current > low) & (current < high) & (warped > low) & (warped < high)
    flatness = edge_strength((current + warped).mean(axis=2) / 2)
    difference = (current - warped) / spread
    samples = []
    for channel in range(current.shape[2]):
        usable = without_border(unclipped[..., channel], BORDER_PX)
        if usable.sum() * share >= MIN_SAMPLES / 2:  # as many as the flatter half of MIN_SAMPLES pixels
            flat = difference[..., channel][flattest(usable, flatness, share)]
            samples.append(np.abs(flat - np.median(flat)))  # a global flicker is not noise
    return clipped_rms(np.concatenate(samples)) if samples else None


def spatial_sigma(frame: np.ndarray) -> float:
    """Noise std (8-bit units) of one RGB float frame: its finest details, capped by its untextured patches (module docstring)."""
    return capped_by_untextured(estimate_sigma(frame, clip_margin=0), frame)


@dataclass(frozen=True)
class FrameReading:
    """One frame's noise reading, with the readings behind it (temporal and fine where they were taken)."""

    sigma: float
    spatial: float
    temporal: float | None = None
    fine: float | None = None


def frame_reading(current: np.ndarray, previous: np.ndarray | None = None, lossy: bool = False) -> FrameReading:
    """The noise reading of one frame: the spatial one, and given the frame before, the larger of it and
    the temporal one, or at low noise the smaller, of the temporal ones alone when the clip was stored
    ``lossy`` (module docstring)."""
    spatial = spatial_sigma(current)
    if previous is None:
        return FrameReading(spatial, spatial)
    pair = FramePair(previous, current)
    temporal = pair.temporal_sigma()
    larger = max(spatial, temporal)
    if level_of_sigma_8bit(larger) != "low":
        return FrameReading(larger, spatial, temporal)
    correlated = temporal > CORRELATED_NOISE_RATIO * spatial
    fine = pair.fine_sigma() if lossy or not correlated else None
    if correlated:
        return FrameReading(larger, spatial, temporal, fine)
    return FrameReading(min(temporal, fine if fine is not None else np.inf, np.inf if lossy else spatial), spatial, temporal, fine)


def frame_sigma(current: np.ndarray, previous: np.ndarray | None = None, lossy: bool = False) -> float:
    """:func:`frame_reading`'s sigma: what the fusion re-measures a clip with."""
    return frame_reading(current, previous, lossy).sigma


def clip_readings(frames: list[np.ndarray], lossy: bool = False) -> list[FrameReading]:
    """Each frame's reading with the one before it (the first alone when it is the only one)."""
    if len(frames) == 1:
        return [frame_reading(frames[0])]
    return [frame_reading(current, previous, lossy) for previous, current in zip(frames[:-1], frames[1:])]


def clip_sigma(frames: list[np.ndarray], lossy: bool = False) -> float:
    """The median reading over the frames."""
    return median_sigma(clip_readings(frames, lossy))


def median_sigma(readings: list[FrameReading]) -> float:
    """The clip's reading: the median over its frames ignores a cut or a flash."""
    return float(np.median([reading.sigma for reading in readings]))


def clip_level(readings: list[FrameReading], sigma: float, lossy: bool) -> NoiseLevel:
    """The level of the clip's reading ``sigma``, except that a lossy clip reading low from
    LOSSY_MEDIUM_FROM is medium where its codec took the finest part of its noise (its spatial reading
    well below the temporal one) and its frame differences are noise, not texture the flow missed (the
    temporal reading near the fine one): module docstring."""
    level = level_of_sigma_8bit(sigma)
    if not lossy or level != "low" or sigma < LOSSY_MEDIUM_FROM:
        return level
    taken = [(r.spatial, r.temporal, r.fine) for r in readings if r.temporal is not None and r.fine is not None]
    if not taken:
        return level
    spatial, temporal, fine = np.median(taken, axis=0)
    codec_took_the_finest = spatial <= CODEC_SMOOTHED_RATIO * temporal
    return "medium" if codec_took_the_finest and temporal <= READINGS_AGREE * fine else level


class VideoNoiseClassifier:
    """Classical: no weights, same on every device."""

    def __init__(self, level: NoiseLevel | None = None, weights: Path | None = None):
        pass

    def setup(self, device: str) -> None:
        pass

    def predict(self, frames: list[np.ndarray], lossy: bool = False) -> NoiseEstimate:
        """``lossy``: the clip was stored by a lossy codec (H.264, HEVC, VP9...; module docstring)."""
        if not frames:
            raise ValueError("no frames to estimate noise on")
        readings = clip_readings(frames, lossy)
        sigma = median_sigma(readings)
        return NoiseEstimate(level=clip_level(readings, sigma, lossy), sigma=sigma)
