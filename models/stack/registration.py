"""Align every frame of a stack to a robust reference with dense optical flow (OpenCV DIS).

Measured on synthetic stacks: flow at half resolution (DIS finest scale 1) beats the quarter-
resolution presets by ~1.5 dB after merging, and pre-blurring the frames before flow buys nothing,
even at high noise (DIS's patches already average). Two passes: the second aligns to the mean of
a first pass's registered frames, which is sharper than the plain temporal mean.
"""
from __future__ import annotations

import cv2
import numpy as np

from models.interface import Progress, no_progress

PRE_BLUR_PX = 0.5


def flow_estimator() -> cv2.DISOpticalFlow:
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST)
    dis.setFinestScale(1)
    dis.setPatchSize(8)
    dis.setPatchStride(6)
    dis.setGradientDescentIterations(12)
    dis.setVariationalRefinementIterations(0)
    return dis


def to_uint8(image: np.ndarray, low: float, high: float) -> np.ndarray:
    """What DIS needs: 8-bit, stretched over [low, high], lightly blurred."""
    blurred = cv2.GaussianBlur(image, (0, 0), PRE_BLUR_PX)
    return cv2.convertScaleAbs(blurred - low, alpha=255.0 / max(high - low, 1e-6))


def warp(frame: np.ndarray, flow: np.ndarray, grid: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """``frame`` resampled so that it lines up with the reference the flow was computed against."""
    return cv2.remap(frame, grid[0] + flow[..., 0], grid[1] + flow[..., 1], cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REFLECT)


def pixel_grid(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    h, w = shape
    x, y = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return x, y


def register_to(reference: np.ndarray, stack: np.ndarray, progress: Progress = no_progress,
                span: tuple[float, float] = (0.0, 1.0)) -> np.ndarray:
    """Every frame warped onto ``reference``, then the result re-centred on the frames' mean geometry.

    The mean flow over all frames is where the reference sits relative to the frames' centroid
    (the true, undistorted scene when the wobble averages out); it is removed from every flow.
    """
    low, high = (float(v) for v in np.percentile(reference, [0.5, 99.5]))
    reference8 = to_uint8(reference, low, high)
    dis = flow_estimator()
    flows = np.empty(stack.shape + (2,), np.float32)
    for t, frame in enumerate(stack):
        progress(span[0] + (span[1] - span[0]) * t / len(stack), "registering")
        flows[t] = dis.calc(reference8, to_uint8(frame, low, high), None)
    flows -= flows.mean(axis=0)
    grid = pixel_grid(reference.shape)
    return np.stack([warp(frame, flow, grid) for frame, flow in zip(stack, flows)])


def register_stack(stack: np.ndarray, reference_stride: int = 3, progress: Progress = no_progress,
                   span: tuple[float, float] = (0.0, 1.0)) -> np.ndarray:
    """``stack`` (T, H, W) float32, every frame registered to a sharp reference of the scene.

    Pass 1 aligns every ``reference_stride``-th frame to the temporal mean; their registered mean is
    the reference for pass 2, which aligns all frames. (Aligning all frames in pass 1 measured the
    same PSNR at 1.5x the time.)
    """
    subset = stack[::reference_stride]
    middle = span[0] + (span[1] - span[0]) * len(subset) / (len(subset) + len(stack))
    reference = register_to(np.mean(stack, axis=0, dtype=np.float32), subset, progress, (span[0], middle)).mean(axis=0)
    return register_to(reference, stack, progress, (middle, span[1]))
