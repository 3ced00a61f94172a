"""Single-image denoising: OpenCV non-local means on 16-bit data, strength from the noise sigma.

Measured on noisy crops of skimage samples (sigma 5..40 in 8-bit units): the 16-bit, L1-norm path
with all colour channels weighted jointly beats OpenCV's 8-bit Lab "Colored" variant by 1-3 dB on
colour and matches the 8-bit path on gray, so one path serves every bit depth.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from models.image.noise import data_range
from models.interface import NoiseEstimate, NoiseLevel, Progress

# h = factor * sigma (joint weights over 3 channels need a larger h).
STRENGTH = {1: 0.75, 3: 1.35}
TEMPLATE_PX, SEARCH_PX = 7, 21
STRIP_ROWS = 256
STRIP_OVERLAP = (TEMPLATE_PX + SEARCH_PX) // 2 + 2


class ImageRestorer:
    """Same shape float32 in input units."""

    def __init__(self, level: NoiseLevel, weights: Path | None = None):
        self.level = level

    def setup(self, device: str) -> None:
        """Classical: nothing to load."""

    def predict(self, image: np.ndarray, noise: NoiseEstimate, progress: Progress) -> np.ndarray:
        image = np.asarray(image, np.float32)
        if noise.sigma <= 0:
            return image.copy()
        scale = 65535.0 / data_range(image)
        channels = 1 if image.ndim == 2 else image.shape[2]
        h = [STRENGTH[1 if channels == 1 else 3] * noise.sigma * scale] * channels
        scaled = np.clip(np.rint(image * scale), 0, 65535).astype(np.uint16)
        out = np.empty_like(image)
        rows = image.shape[0]
        for top in range(0, rows, STRIP_ROWS):  # strips, so progress and cancel work on big images
            progress(top / rows, "denoising")
            lo, hi = max(top - STRIP_OVERLAP, 0), min(top + STRIP_ROWS + STRIP_OVERLAP, rows)
            strip = cv2.fastNlMeansDenoising(scaled[lo:hi], h=h, templateWindowSize=TEMPLATE_PX,
                                             searchWindowSize=SEARCH_PX, normType=cv2.NORM_L1)
            out[top:min(top + STRIP_ROWS, rows)] = strip[top - lo:top - lo + min(STRIP_ROWS, rows - top)] / scale
        return out
