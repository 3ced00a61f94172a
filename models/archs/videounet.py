"""The residual U-Net of resunet.py with a colour head: three output planes added to input planes 0-2.

The video refiner feeds its base RGB frame as planes 0-2, so an untrained network returns it
unchanged and training learns only the correction.
"""
from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F

from models.archs.resunet import ResUNet


class VideoUNet(ResUNet):
    def __init__(self, in_ch: int = 10, widths: tuple[int, ...] | list[int] = (8, 16, 32, 48), blocks: tuple[int, ...] | list[int] = (0, 1, 1, 2)):
        super().__init__(in_ch, widths, blocks)
        self.tail = nn.Conv2d(list(widths)[0], 3, 3, padding=1)
        nn.init.zeros_(self.tail.weight)
        nn.init.zeros_(self.tail.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        ph, pw = (-h) % self.factor, (-w) % self.factor
        xp = F.pad(x, (0, pw, 0, ph), mode="replicate") if ph or pw else x
        feat = self.head(xp)
        skips = []
        for enc, down in zip(self.enc, self.down):
            feat = enc(feat)
            skips.append(feat)
            feat = down(feat)
        feat = self.mid(feat)
        for up, dec, skip in zip(reversed(self.up), reversed(self.dec), reversed(skips)):
            feat = dec(up(feat) + skip)
        return (xp[:, :3] + self.tail(feat))[..., :h, :w]
