"""The upscaler: residual blocks on the low-resolution grid, then a sub-pixel convolution (after
ESPCN / EDSR), adding detail to a bicubic enlargement of the input.

Working at the input's resolution keeps the cost per output pixel small (1 / scale^2 of the work
happens per output pixel); the bicubic skip means an untrained network already returns bicubic.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class _Residual(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(width, width, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(width, width, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class Upscaler(nn.Module):
    """(N, channels, H, W) in 0..1 -> (N, channels, scale H, scale W)."""

    def __init__(self, scale: int = 2, channels: int = 3, width: int = 32, blocks: int = 6):
        super().__init__()
        self.scale = scale
        self.head = nn.Conv2d(channels, width, 3, padding=1)
        self.body = nn.Sequential(*[_Residual(width) for _ in range(blocks)], nn.Conv2d(width, width, 3, padding=1))
        self.tail = nn.Sequential(nn.Conv2d(width, channels * scale**2, 3, padding=1), nn.PixelShuffle(scale))
        nn.init.zeros_(self.tail[0].weight)
        nn.init.zeros_(self.tail[0].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.head(x)
        base = F.interpolate(x, scale_factor=self.scale, mode="bicubic", align_corners=False)
        return base + self.tail(features + self.body(features))


NETWORK = Upscaler
