"""Tiles: the fewest pixels run within the memory budget, and a result that does not show the cuts."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from models.tiling import run_tiled, tile_core


@pytest.mark.parametrize(("height", "width"), [(1024, 1024), (1080, 1920), (1920, 1080), (4000, 3000)])
def test_tiles_fit_the_budget_and_cover_the_frame_once(height, width):
    budget_mb, bytes_per_pixel, margin, align = 256.0, 320, 96, 16
    core = tile_core(budget_mb, bytes_per_pixel, margin, align, height, width)
    assert all(c % align == 0 or c >= n for c, n in zip(core, (height, width)))  # cuts fall on the stride
    shapes = []
    run_tiled(lambda x: shapes.append(x.shape[1:]) or x, np.zeros((1, height, width), np.float32), 1, core, margin)
    assert all(h * w * bytes_per_pixel <= budget_mb * 2**20 for h, w in shapes)
    if height * width <= 2 * budget_mb * 2**20 / bytes_per_pixel:
        assert len(shapes) == 2  # a frame of up to twice the budget: two strips, not four squares


def test_strips_and_squares_give_the_whole_frames_result():
    image = np.random.default_rng(0).random((2, 200, 300)).astype(np.float32)

    def blur(x: np.ndarray) -> np.ndarray:  # a local operator: a tile with 8 px of context sees all it needs
        return np.stack([cv2.GaussianBlur(plane, (9, 9), 0, borderType=cv2.BORDER_REFLECT) for plane in x])

    whole = blur(image)
    for core in (64, (64, 300), (200, 96)):
        tiled = run_tiled(blur, image, 2, core, 8)
        assert np.abs(tiled[:, 8:-8, 8:-8] - whole[:, 8:-8, 8:-8]).max() < 1e-5  # the frame's own border aside
