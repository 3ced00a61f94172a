"""Pairs for the upscaler: clean crops of the single-image training photos and their reduction.

The low-resolution side is what ``restora eval upscale`` and users' small images are: the clean
image reduced by area averaging (``cv2.INTER_AREA``), rounded to 8 bits three times in four (the
rest stay float, as 16-bit files), 30 % gray. Held out: the validation photos of
:mod:`models.data.image_pairs`.
"""
from __future__ import annotations

import cv2
import numpy as np

from models.data.image_pairs import CropSampler


def reduce(image: np.ndarray, scale: int) -> np.ndarray:
    """``image`` (H, W, C) made ``scale`` times smaller by area averaging (sides cut to multiples of ``scale``)."""
    h, w = image.shape[0] // scale * scale, image.shape[1] // scale * scale
    small = cv2.resize(image[:h, :w], (w // scale, h // scale), interpolation=cv2.INTER_AREA)
    return small.reshape(h // scale, w // scale, *image.shape[2:])


class UpscalePairs:
    """Random (small, large) training pairs, (count, 3, S, S) and (count, 3, scale S, scale S) float32."""

    def __init__(self, images: list[np.ndarray], scale: int, rng: np.random.Generator):
        self.crops, self.scale, self.rng = CropSampler(images, rng), scale, rng

    def batch(self, count: int, size: int) -> tuple[np.ndarray, np.ndarray]:
        small, large = [], []
        for _ in range(count):
            clean = self.crops.clean_crop(size * self.scale)
            low = np.clip(reduce(clean, self.scale), 0, 1)
            if self.rng.random() < 0.75:
                low = np.rint(low * 255) / 255
            small.append(low.transpose(2, 0, 1))
            large.append(clean.transpose(2, 0, 1))
        return np.stack(small).astype(np.float32), np.stack(large).astype(np.float32)
