"""Run a network on overlapping tiles, so a large frame needs no more memory than one tile.

Each tile is the network's input cut with ``margin`` pixels of context on every side; only its core
is kept. Window origins stay on multiples of ``align`` (the network's total stride), so the
strided layers see the same pixel phases as on the whole frame and tiles join without seams.
"""
from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np


def tile_side(memory_mb: float, bytes_per_pixel: float, margin: int, align: int, minimum: int = 64) -> int:
    """Side of the square tile core (a multiple of ``align``) that fits the budget together with its margins."""
    side = int(math.sqrt(memory_mb * 2**20 / bytes_per_pixel)) - 2 * margin
    return max(minimum, side // align * align)


def run_tiled(run: Callable[[np.ndarray], np.ndarray], inputs: np.ndarray, out_channels: int, side: int, margin: int,
              progress: Callable[[float], None] | None = None, scale: int = 1) -> np.ndarray:
    """``run`` ((C, h, w) -> (out_channels, scale h, scale w)) over (C, H, W) ``inputs`` in tiles of ``side`` + margins."""
    _, h, w = inputs.shape
    out = np.empty((out_channels, h * scale, w * scale), np.float32)
    origins = [(y, x) for y in range(0, h, side) for x in range(0, w, side)]
    for done, (y, x) in enumerate(origins):
        if progress is not None:
            progress(done / len(origins))
        top, left = max(0, y - margin), max(0, x - margin)
        window = run(inputs[:, top:min(h, y + side + margin), left:min(w, x + side + margin)])
        core = window[:, (y - top) * scale:(y - top + side) * scale, (x - left) * scale:(x - left + side) * scale]
        out[:, y * scale:y * scale + core.shape[1], x * scale:x * scale + core.shape[2]] = core
    return out
