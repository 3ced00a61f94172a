"""Learned video restoration: the motion-compensated fusion of restorer.py, then a small network per level.

The fusion averages each frame with its warped neighbours where they agree, so what it leaves is
uneven: clean where many frames matched, nearly raw noise where none did (occlusions, the first
frames, fast motion). The classical path smooths that with one bilateral filter of one strength
per frame. The network (models/archs/resunet.py with a 3-plane head, trained per level by
``python -m models.train_video --level LEVEL``) sees that classical result, the fused frame, the
noisy frame and a per-pixel map of the noise the fusion left, and predicts a colour correction of
the classical result: untrained, it returns the classical result unchanged. Gray clips keep the
classical result: the network was trained on colour noise, independent in R, G and B.

This is what the worker serves for medium and high noise (registry ``video-fusion-{level}`` v2);
low noise gets the fusion alone (models/train_video.py says why). ``restora eval video`` measures it
next to the fusion and bilateral filter alone (the ablation row), and ``python -m models.train_video``
records each network's held-out gain in its weight file.

Memory: the network runs on overlapping tiles when a frame's activations would exceed a budget
(``net_memory_mb``, 256 MB unless the worker's ``RESTORA_VIDEO_NET_MEMORY_MB`` or ``restora run
--video-memory-mb`` says otherwise), so 1080p needs no more than that for
the network; the fusion holds ``ahead + 2`` frames whatever the clip length.
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from models.archs import TrainedModel
from models.interface import NoiseEstimate, NoiseLevel, SigmaUpdate, no_sigma_update
from models.tiling import run_within_budget
from models.video.restorer import FusionSettings, _Fusion, lookahead

NOISE_GAIN = 10.0  # the noise map (std in 0..1 units) scaled to the range of the other planes
DEFAULT_NET_MEMORY_MB = 256.0  # 720p runs whole, 1080p in tiles
# Peak memory of the network's forward pass per input pixel (float32 activations, workspaces and
# output): the growth of peak RSS on a 1920 x 1080 frame was 138 bytes a pixel; rounded up.
NET_BYTES_PER_PIXEL = 160
TILE_MARGIN = 48  # context on each side of a tile (px, a multiple of the network's 8-px stride)
NET_STRIDE = 8


def net_inputs(fusion: _Fusion, fused: np.ndarray, weights: np.ndarray, noisy: np.ndarray) -> np.ndarray:
    """(10, H, W) float32: classical result, fused and noisy RGB (0..1), and the std the fusion left per pixel."""
    left = (fusion.sigma / 255.0 * NOISE_GAIN) / np.sqrt(weights)
    planes = np.concatenate([fusion.smooth(fused, weights), fused, noisy], axis=2) * np.float32(1 / 255)
    return np.ascontiguousarray(np.concatenate([planes, left[..., None]], axis=2).transpose(2, 0, 1), dtype=np.float32)


def is_gray(rgb: np.ndarray) -> bool:
    """True for a frame whose three channels are the same (a gray source decoded to RGB)."""
    return bool(np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 1], rgb[..., 2]))


class LearnedVideoRestorer(TrainedModel):
    """Fusion, then the network trained for ``level``; frames stream through like VideoRestorer."""

    def __init__(self, level: NoiseLevel | None = None, weights: Path | None = None, net_memory_mb: float | None = None,
                 settings: FusionSettings = FusionSettings()):
        if level is None:
            raise ValueError("LearnedVideoRestorer needs a noise level")
        super().__init__(level, weights)
        self.settings = settings
        self.net_memory_mb = net_memory_mb or DEFAULT_NET_MEMORY_MB

    def predict(self, frames: Iterator[np.ndarray], noise: NoiseEstimate, on_sigma: SigmaUpdate = no_sigma_update,
                *, start: int = 0, warmup: int = 0, lossy: bool = False) -> Iterator[np.ndarray]:
        """One restored frame (float32 RGB, 8-bit units) per input frame after the first ``warmup``,
        in order; ``start``, ``warmup`` and ``lossy`` as in :meth:`VideoRestorer.predict` (warm-up frames skip the network)."""
        fusion = _Fusion(self.settings, noise.sigma, self.level, on_sigma, start, lossy)
        for index, (frame, following) in enumerate(lookahead(map(fusion.prepare, frames), self.settings.ahead)):
            fused, weights = fusion.fuse(frame, following)
            if index < warmup:
                continue
            if is_gray(frame.rgb):  # trained on colour noise, the network mistakes gray noise (equal in R, G, B) for detail
                yield fusion.smooth(fused, weights)
            else:
                yield self.refine(net_inputs(fusion, fused, weights, frame.rgb))

    def refine(self, inputs: np.ndarray) -> np.ndarray:
        """The network on (10, H, W) inputs -> (H, W, 3) in 8-bit units, tiled above the memory budget."""
        out = run_within_budget(self._run, inputs, 3, self.net_memory_mb, NET_BYTES_PER_PIXEL, TILE_MARGIN, NET_STRIDE)
        return out.transpose(1, 2, 0) * np.float32(255)

    def _run(self, inputs: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            return self.net(torch.from_numpy(np.ascontiguousarray(inputs))[None].to(self.device))[0].float().cpu().numpy()
