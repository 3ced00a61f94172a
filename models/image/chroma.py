"""Luma and chroma of an RGB image, for noise that is independent from channel to channel.

White noise of std sigma in each of R, G and B is, in an orthonormal luma/chroma basis, white noise
of std sigma on each axis; the luma (the mean of the channels) carries it at sigma / sqrt(3) and the
two chroma planes carry most of it, over content that is mostly smooth. So the network restores the
luma as a gray image at a third of the noise variance, and the chroma is smoothed by a guided
filter that follows the restored luma's edges (He et al., "Guided image filtering", 2010), as
CBM3D does in its own colour space. A camera's demosaicked noise or JPEG's is shared between
channels (:func:`luma_noise_ratio` tells them apart); those images stay with the RGB network.
"""
from __future__ import annotations

import math

import cv2
import numpy as np

from models.image.noise import estimate_sigma

# The two chroma axes: with (1, 1, 1) / sqrt(3) they form an orthonormal basis of RGB.
CHROMA_AXES = (np.array([[1.0, 0.0, -1.0], [1.0, -2.0, 1.0]]) / np.sqrt([[2.0], [6.0]])).astype(np.float32)
CHROMA_RADIUS = 3  # guided filter window radius (px)
CHROMA_EPS_IN_VARIANCES = 0.1  # its regulariser, in units of the noise variance
# Both tuned on training photos and validation dead leaves / printed patterns (never the evaluation photos):
# radius 2-3 best on photos, 4-6 on the synthetic images; 0.1 best everywhere (0.3: within 0.05 dB).


def split_luma_chroma(planes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(3, H, W) RGB -> luma (H, W), the mean of the channels, and chroma (2, H, W) on :data:`CHROMA_AXES`."""
    return planes.mean(axis=0), np.tensordot(CHROMA_AXES, planes, 1)


def join_luma_chroma(luma: np.ndarray, chroma: np.ndarray) -> np.ndarray:
    """The inverse of :func:`split_luma_chroma`."""
    return luma[None] + np.tensordot(CHROMA_AXES.T, chroma, 1)


def guided_filter(guide: np.ndarray, image: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """``image`` (H, W) smoothed as a local linear function of ``guide`` (H, W) in (2 radius + 1)^2 windows."""
    size = (2 * radius + 1, 2 * radius + 1)

    def box(x: np.ndarray) -> np.ndarray:
        return cv2.boxFilter(x, -1, size)

    guide, image = np.asarray(guide, np.float32), np.asarray(image, np.float32)
    mean_guide, mean_image = box(guide), box(image)
    slope = (box(guide * image) - mean_guide * mean_image) / (box(guide * guide) - mean_guide * mean_guide + np.float32(eps))
    offset = mean_image - slope * mean_guide
    return box(slope) * guide + box(offset)


def smooth_chroma(luma: np.ndarray, chroma: np.ndarray, sigma: float) -> np.ndarray:
    """Both chroma planes guided-filtered by the restored ``luma``; ``sigma``: the noise std per channel."""
    eps = CHROMA_EPS_IN_VARIANCES * sigma * sigma + 1e-12
    return np.stack([guided_filter(luma, plane, CHROMA_RADIUS, eps) for plane in chroma])


def luma_noise_ratio(image: np.ndarray) -> float:
    """The luma's noise std over what independent channels would give it (sigma / sqrt(3)); (H, W, 3).

    About 1 (0.85 to 1.15) for noise drawn independently per channel; 1.2 to 1.5 for a camera's
    demosaicked noise, up to sqrt(3) for noise shared by the channels (JPEG's, at 4:2:0)."""
    sigma = estimate_sigma(image)
    return estimate_sigma(np.asarray(image, np.float32).mean(axis=2)) * math.sqrt(3) / sigma if sigma > 0 else math.inf
