"""Clean gray images in 0..1 for training and evaluation, split by SOURCE image.

Sources are scikit-image's bundled sample images (no download), procedural dead-leaves images and
printed test patterns (:mod:`models.data.targets`: text, bar charts, Siemens stars).
Validation uses only these, never seen in training:

- skimage samples: ``camera``, ``coffee``, ``coins``, ``gravel``
- dead leaves and printed patterns drawn from the ``val`` seed stream (training draws from a disjoint stream)

Every other listed sample image is training data.
"""
from __future__ import annotations

from typing import Literal

import cv2
import numpy as np
from skimage import color, data

from models.data.targets import printed_targets

Split = Literal["train", "val"]

VAL_SOURCES = ("camera", "coffee", "coins", "gravel")
TRAIN_SOURCES = (
    "astronaut", "brick", "cell", "chelsea", "clock", "grass", "horse", "hubble_deep_field",
    "immunohistochemistry", "moon", "page", "retina", "rocket", "shepp_logan_phantom",
    "stereo_motorcycle", "text",
)
DEAD_LEAVES_PER_SPLIT = {"train": 8, "val": 2}
PRINTED_TARGETS_PER_SPLIT = {"train": 6, "val": 3}
_SPLIT_STREAM = {"train": 0, "val": 1}


def load_source(name: str) -> np.ndarray:
    """One bundled skimage sample as float32 gray in 0..1."""
    image = getattr(data, name)()
    if isinstance(image, tuple):  # stereo pairs: keep the left view
        image = image[0]
    if image.ndim == 3:
        image = color.rgb2gray(image[..., :3])
    elif image.dtype == bool:
        image = image.astype(np.float32)
    elif image.dtype == np.uint8:
        image = image / 255.0
    return np.clip(image, 0.0, 1.0).astype(np.float32)


def random_square(image: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """A random square crop of random scale, resized to ``size`` x ``size``."""
    h, w = image.shape
    side = int(rng.integers(min(size, h, w), min(h, w) + 1))
    y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
    crop = image[y:y + side, x:x + side]
    interpolation = cv2.INTER_AREA if side > size else cv2.INTER_CUBIC
    return np.clip(cv2.resize(crop, (size, size), interpolation=interpolation), 0.0, 1.0)


def dead_leaves(size: int, rng: np.random.Generator, texture: float = 0.02) -> np.ndarray:
    """Occluding discs with power-law radii (density ~ r^-3) and random gray levels, mild texture.

    Scale-invariant edge statistics like natural images: a standard prior for restoration training.
    The texture is a multiplicative shading (like reflectance) of ``texture`` contrast at a 3 px scale.
    """
    r_min, r_max = 2.0, size / 3.0
    canvas = np.full((size, size), rng.uniform(), np.float32)
    n_discs = 40 * size
    u = rng.uniform(size=n_discs)
    radii = (r_min ** -2 - u * (r_min ** -2 - r_max ** -2)) ** -0.5
    centres = rng.uniform(-r_max / 2, size + r_max / 2, size=(n_discs, 2))
    grays = rng.uniform(size=n_discs)
    for (cx, cy), r, g in zip(centres, radii, grays):
        cv2.circle(canvas, (int(cx * 16), int(cy * 16)), int(r * 16), float(g), -1, cv2.LINE_AA, shift=4)
    if texture > 0:
        grain = cv2.GaussianBlur(rng.standard_normal((size, size)).astype(np.float32), (0, 0), 3.0)
        canvas *= 1.0 + texture * grain / (grain.std() + 1e-6)
    return np.clip(canvas, 0.0, 1.0)


def clean_images(split: Split, size: int = 271, seed: int = 0) -> list[np.ndarray]:
    """One random crop of every source image of ``split``, then the split's dead-leaves images and printed patterns."""
    rng = np.random.default_rng([seed, _SPLIT_STREAM[split]])
    names = VAL_SOURCES if split == "val" else TRAIN_SOURCES
    images = [random_square(load_source(name), size, rng) for name in names]
    images += [dead_leaves(size, rng) for _ in range(DEAD_LEAVES_PER_SPLIT[split])]
    images += printed_targets(size, rng, PRINTED_TARGETS_PER_SPLIT[split])
    return images
