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


def tile_core(memory_mb: float, bytes_per_pixel: float, margin: int, align: int, height: int, width: int,
              minimum: int = 64) -> tuple[int, int]:
    """Core (height, width) of the tiles that cover a ``height`` x ``width`` frame within the budget
    with the fewest pixels run: squares of :func:`tile_side`, or full-width (full-height) strips of
    equal height (width) when those fit; margins cost least where the frame is not cut."""
    budget = memory_mb * 2**20 / bytes_per_pixel
    side = tile_side(memory_mb, bytes_per_pixel, margin, align, minimum)
    candidates = [(side, side)]
    for across, along, strip in ((width, height, lambda c: (c, width)), (height, width, lambda c: (height, c))):
        longest = (int(budget / across) - 2 * margin) // align * align
        if longest >= minimum:
            equal = math.ceil(along / math.ceil(along / longest))  # as many strips as needed, of equal size
            candidates.append(strip(math.ceil(equal / align) * align))
    return min(candidates, key=lambda core: _pixels_run(core, margin, height, width))


def _pixels_run(core: tuple[int, int], margin: int, height: int, width: int) -> int:
    def extent(length: int, step: int) -> int:
        return sum(min(length, start + step + margin) - max(0, start - margin) for start in range(0, length, step))

    return extent(height, core[0]) * extent(width, core[1])


def run_tiled(run: Callable[[np.ndarray], np.ndarray], inputs: np.ndarray, out_channels: int, core: int | tuple[int, int], margin: int,
              progress: Callable[[float], None] | None = None, scale: int = 1) -> np.ndarray:
    """``run`` ((C, h, w) -> (out_channels, scale h, scale w)) over (C, H, W) ``inputs`` in tiles of
    ``core`` (a side, or height and width) + margins."""
    _, h, w = inputs.shape
    core_h, core_w = (core, core) if isinstance(core, int) else core
    out = np.empty((out_channels, h * scale, w * scale), np.float32)
    origins = [(y, x) for y in range(0, h, core_h) for x in range(0, w, core_w)]
    for done, (y, x) in enumerate(origins):
        if progress is not None:
            progress(done / len(origins))
        top, left = max(0, y - margin), max(0, x - margin)
        window = run(inputs[:, top:min(h, y + core_h + margin), left:min(w, x + core_w + margin)])
        kept = window[:, (y - top) * scale:(y - top + core_h) * scale, (x - left) * scale:(x - left + core_w) * scale]
        out[:, y * scale:y * scale + kept.shape[1], x * scale:x * scale + kept.shape[2]] = kept
    return out


def run_within_budget(run: Callable[[np.ndarray], np.ndarray], inputs: np.ndarray, out_channels: int, memory_mb: float,
                      bytes_per_pixel: float, margin: int, align: int, progress: Callable[[float], None] | None = None,
                      scale: int = 1) -> np.ndarray:
    """``run`` on the whole of (C, H, W) ``inputs`` when its activations fit ``memory_mb``, else on
    the tiles of :func:`tile_core` (:func:`run_tiled`); ``progress`` as in :func:`run_tiled`."""
    _, h, w = inputs.shape
    if h * w * bytes_per_pixel <= memory_mb * 2**20:
        if progress is not None:
            progress(0.0)
        return run(inputs)
    core = tile_core(memory_mb, bytes_per_pixel, margin, align, h, w)
    return run_tiled(run, inputs, out_channels, core, margin, progress, scale=scale)
