"""Learned upscaling of single images (and video frames) by 2 or 4: gray and colour, 8 and 16 bits.

The network (models/archs/upscaler.py, trained by ``python -m models.train_upscale --scale S`` on
area-reduced crops of the training photos) sees RGB in 0..1; a gray image runs as three equal
planes and comes back as their mean. Values are scaled by the image's data range, so results stay
in input units. It expects a clean input: the pipeline denoises a noisy one first. Large images
run in overlapping tiles under a memory budget, with the same result.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from models.archs import TrainedModel
from models.image.noise import data_range
from models.image.planes import run_on_planes
from models.interface import NoiseEstimate, Progress, no_progress
from models.tiling import run_within_budget

NET_MEMORY_MB = 256.0
NET_BYTES_PER_PIXEL = 1200  # per INPUT pixel: activations at 32 channels plus the scale^2-times larger output (x4)
TILE_MARGIN = 16  # context on each side of a tile, in input pixels (the network sees 15 px around a pixel)


class LearnedUpscaler(TrainedModel):
    """(H, W) or (H, W, 3) float32 in input units -> ``scale`` times larger on each side, same units."""

    def __init__(self, level: str | None = None, weights: Path | None = None, net_memory_mb: float = NET_MEMORY_MB):
        super().__init__(None, weights)
        self.net_memory_mb = net_memory_mb

    @property
    def scale(self) -> int:
        return int(self.meta["config"]["scale"])

    def predict(self, image: np.ndarray, noise: NoiseEstimate | None = None, progress: Progress = no_progress, peak: float | None = None) -> np.ndarray:
        """``noise`` is not used (the input is already denoised); it keeps the restorers' signature.
        ``peak``: the value of white (default: guessed from the data; video frames pass 255)."""
        return run_on_planes(image, 3, self._run_within_budget, lambda f: progress(f, "upscaling"), peak)

    def _run_within_budget(self, planes: np.ndarray, progress) -> np.ndarray:
        return run_within_budget(self._run, planes, 3, self.net_memory_mb, NET_BYTES_PER_PIXEL, TILE_MARGIN, 1, progress,
                                 scale=self.scale)

    def _run(self, planes: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(planes))[None].to(self.device).contiguous(memory_format=torch.channels_last)
            return self.net(x)[0].float().cpu().numpy()


def enlarge_alpha(alpha: np.ndarray, scale: int) -> np.ndarray:
    """An image's alpha plane (H, W, 1) enlarged to go with its upscaled colour (bicubic, kept in range)."""
    if scale == 1:
        return alpha
    h, w = alpha.shape[:2]
    peak = data_range(alpha)
    big = cv2.resize(np.asarray(alpha[..., 0], np.float32), (w * scale, h * scale), interpolation=cv2.INTER_CUBIC)
    return np.clip(big, 0, peak)[..., None]
