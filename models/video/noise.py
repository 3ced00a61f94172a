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
lossy codec falls in between (1.8 to 2.8 times) and is read the cautious way: FFmpeg's testsrc2 with
noise=alls=10 through x264 read 1.7 instead of 3.7, and gains 0.7 dB instead of 2.8, where grass at
sigma 1 through x264 (CRF 18) loses 0.2 dB instead of 1.6.

Compression removes part of the noise before we see it, so a compressed clip reads less noisy than
its source was: that lower value is the noise the restorer actually faces.
The fusion re-measures during a clip with :func:`frame_sigma`, the same reading.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from models.image.noise import MIN_SAMPLES, capped_by_untextured, clipped_rms, edge_strength, estimate_sigma, flattest_half, without_border
from models.interface import NoiseEstimate, NoiseLevel, level_of_sigma_8bit

NOISE_FRAMES = 8  # a clip's first frames, read by the classifier
FLOW_MAX_SIDE = 640  # the temporal reading's flow is computed on frames at most this large
FLOW_GUIDE_BLUR_PX = 1.5  # so the flow follows the picture, not the grain
BORDER_PX = 8  # warped borders repeat edge pixels: left out
CORRELATED_NOISE_RATIO = 3.0  # temporal / spatial reading above which the noise is spatially correlated (module docstring)


def temporal_sigma(previous: np.ndarray, current: np.ndarray) -> float:
    """Noise std (8-bit units) of ``current`` from its difference with ``previous`` warped onto it; RGB float frames."""
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
    current = np.asarray(current, np.float32)
    warped = cv2.remap(np.asarray(previous, np.float32), xs + np.rint(flow[..., 0]), ys + np.rint(flow[..., 1]),
                       cv2.INTER_NEAREST, borderMode=cv2.BORDER_REPLICATE)
    low, high = current.min(axis=(0, 1)), current.max(axis=(0, 1))
    unclipped = (current > low) & (current < high) & (warped > low) & (warped < high)
    flatness = edge_strength((current + warped).mean(axis=2) / 2)
    difference = current - warped
    samples = []
    for channel in range(current.shape[2]):  # per channel: a saturated colour still carries noise in its other channels
        usable = without_border(unclipped[..., channel], BORDER_PX)
        if usable.sum() >= MIN_SAMPLES:
            flat = difference[..., channel][flattest_half(usable, flatness)]
            samples.append(np.abs(flat - np.median(flat)))  # a global flicker is not noise
    return clipped_rms(np.concatenate(samples) / np.sqrt(2.0)) if samples else 0.0


def spatial_sigma(frame: np.ndarray) -> float:
    """Noise std (8-bit units) of one RGB float frame: its finest details, capped by its untextured patches (module docstring)."""
    return capped_by_untextured(estimate_sigma(frame, clip_margin=0), frame)


def frame_sigma(current: np.ndarray, previous: np.ndarray | None = None) -> float:
    """The noise reading of one frame: the spatial one, and given the frame before, the larger of it and
    the temporal one, or at low noise the smaller (module docstring)."""
    spatial = spatial_sigma(current)
    if previous is None:
        return spatial
    temporal = temporal_sigma(previous, current)
    larger = max(spatial, temporal)
    if level_of_sigma_8bit(larger) == "low" and temporal <= CORRELATED_NOISE_RATIO * spatial:
        return min(spatial, temporal)
    return larger


def clip_sigma(frames: list[np.ndarray]) -> float:
    """The median reading over the frames (each with the one before it, the first alone when it is the only one)."""
    if len(frames) == 1:
        return spatial_sigma(frames[0])
    return float(np.median([frame_sigma(current, previous) for previous, current in zip(frames[:-1], frames[1:])]))


class VideoNoiseClassifier:
    """Classical: no weights, same on every device."""

    def __init__(self, level: NoiseLevel | None = None, weights: Path | None = None):
        pass

    def setup(self, device: str) -> None:
        pass

    def predict(self, frames: list[np.ndarray]) -> NoiseEstimate:
        if not frames:
            raise ValueError("no frames to estimate noise on")
        sigma = clip_sigma(frames)
        return NoiseEstimate(level=level_of_sigma_8bit(sigma), sigma=sigma)
