"""How a network that takes 1 or 3 planes in 0..1 meets an image in input units (the upscalers and
users' models): one conversion for every per-frame model."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from models.image.noise import data_range


def run_on_planes(image: np.ndarray, channels: int, run: Callable[[np.ndarray, Callable[[float], None]], np.ndarray],
                  progress: Callable[[float], None], peak: float | None = None) -> np.ndarray:
    """``image`` (H, W) or (H, W, 3) in input units through ``run`` ((C, h, w) in 0..1 and a progress
    callback -> (C, s h, s w)), a network of ``channels`` (1 or 3) planes: gray goes through an RGB
    network as three equal planes (their mean comes back), colour through a gray one plane by plane.
    ``peak``: the value of white (None: guessed from the data). The result is in input units, clipped
    to 0..peak."""
    image = np.asarray(image, np.float32)
    peak = peak or data_range(image)
    gray = image.ndim == 2
    planes = (image[None] if gray else image.transpose(2, 0, 1)) * np.float32(1 / peak)
    if channels == 3 and gray:
        planes = np.repeat(planes, 3, axis=0)
    groups = [planes] if channels == len(planes) else [planes[c:c + 1] for c in range(len(planes))]
    out = np.concatenate([run(np.ascontiguousarray(group), lambda f, i=i: progress((i + f) / len(groups)))
                          for i, group in enumerate(groups)])
    out = np.clip(out, 0.0, 1.0) * np.float32(peak)
    return out.mean(axis=0) if gray else np.ascontiguousarray(out.transpose(1, 2, 0))
