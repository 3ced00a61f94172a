"""Learned single-image restoration: one blind network for gray and colour, 8 and 16 bits.

The network (models/archs/imageunet.py, trained by ``python -m models.train_image`` on Gaussian,
camera raw and JPEG degradations and their mixes) sees RGB in 0..1; a gray image runs as three
equal planes and comes back as their mean. Values are scaled by the image's data range (1, 255,
4095 or 65535, :func:`models.image.noise.data_range`), so results stay in input units. It is
blind, so one weight file serves every level; the registry lists it per level like every kind.

Images the classifier calls ``low`` (nearly clean) keep only the part of the network's change that
Stein's unbiased risk estimate says the noise explains (models/sure.py; one more network pass): a
clean photo is not smoothed. The price: a JPEG with little noise is mostly left as it is.

Frames larger than the memory budget (256 MB of activations, about 0.8 megapixels) run in
overlapping tiles (:mod:`models.tiling`), with progress per tile.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from models.archs import TrainedModel
from models.image.noise import data_range
from models.interface import NoiseEstimate, NoiseLevel, Progress, no_progress
from models.sure import sure_blend
from models.tiling import run_tiled, tile_side

NET_MEMORY_MB = 256.0
NET_BYTES_PER_PIXEL = 320  # peak RSS growth of the forward pass per input pixel (measured ~300 at 512 px)
TILE_MARGIN = 96  # context on each side of a tile (px, a multiple of the network's 16-px stride; 48 left seams up to 5 of 255)
NET_STRIDE = 16  # pixel unshuffle (2) x three 2x downsamplings


class LearnedImageRestorer(TrainedModel):
    """Same shape float32 in input units: (H, W) gray or (H, W, 3) colour."""

    def __init__(self, level: NoiseLevel | None = None, weights: Path | None = None, net_memory_mb: float = NET_MEMORY_MB):
        super().__init__(None, weights)  # one blind network serves every level
        self.level = level
        self.net_memory_mb = net_memory_mb

    def predict(self, image: np.ndarray, noise: NoiseEstimate, progress: Progress) -> np.ndarray:
        image = np.asarray(image, np.float32)
        scale = data_range(image)
        gray = image.ndim == 2
        planes = np.repeat(image[None], 3, axis=0) if gray else image.transpose(2, 0, 1)
        planes = np.ascontiguousarray(planes, dtype=np.float32) * np.float32(1 / scale)
        restored = self._network(planes, progress)
        sigma = noise.sigma / scale
        if noise.level == "low":  # nearly clean: a blind network also smooths a clean photo's fine texture
            rerun = lambda delta: self._network(planes + delta, no_progress)  # noqa: E731
            restored = sure_blend(planes, restored, sigma**2, rerun) if sigma > 0 else planes
        out = np.clip(restored, 0.0, 1.0) * np.float32(scale)
        return out.mean(axis=0) if gray else np.ascontiguousarray(out.transpose(1, 2, 0))

    def _network(self, planes: np.ndarray, progress: Progress) -> np.ndarray:
        h, w = planes.shape[1:]
        if h * w * NET_BYTES_PER_PIXEL <= self.net_memory_mb * 2**20:
            progress(0.0, "restoring")
            return self._run(planes)
        side = tile_side(self.net_memory_mb, NET_BYTES_PER_PIXEL, TILE_MARGIN, NET_STRIDE)
        return run_tiled(self._run, planes, 3, side, TILE_MARGIN, lambda f: progress(f, "restoring"))

    def _run(self, planes: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(planes))[None].to(self.device).contiguous(memory_format=torch.channels_last)
            return self.net(x)[0].float().cpu().numpy()
