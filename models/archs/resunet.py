"""A compact residual U-Net for CPU inference on one frame (about 0.1-0.5 M parameters).

Three scales (full, 1/2, 1/4 resolution and a bottleneck at 1/8), each scale a pair of residual
blocks of plain 3x3 convolutions with LeakyReLU (cheap on CPU, no normalisation layers so any
input size works), strided-conv downsampling, pixel-shuffle upsampling and additive skips. The
head predicts a residual added to the first ``out_ch`` input planes (the registered merge for
stacks, the fused RGB frame for video), so an untrained network is the identity on them.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ResBlock(nn.Module):
    def __init__(self, ch: int):
        super().__init__()
        self.conv1 = nn.Conv2d(ch, ch, 3, padding=1)
        self.conv2 = nn.Conv2d(ch, ch, 3, padding=1)
        self.act = nn.LeakyReLU(0.1, inplace=True)
        with torch.no_grad():  # small residual branches at the start keep deep stacks stable
            self.conv2.weight.mul_(0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(self.act(self.conv1(x)))


def _stage(ch: int, blocks: int) -> nn.Sequential:
    return nn.Sequential(*[ResBlock(ch) for _ in range(blocks)])


class ResUNet(nn.Module):
    """``in_ch`` input planes -> ``out_ch`` output planes = input planes ``0 .. out_ch-1`` + predicted residual."""

    def __init__(self, in_ch: int = 3, widths: tuple[int, ...] | list[int] = (16, 32, 48, 64), blocks: tuple[int, ...] | list[int] = (1, 1, 2, 2),
                 out_ch: int = 1):
        super().__init__()
        assert len(widths) == len(blocks)
        widths = list(widths)
        self.head = nn.Conv2d(in_ch, widths[0], 3, padding=1)
        self.enc = nn.ModuleList(_stage(w, b) for w, b in zip(widths[:-1], blocks[:-1]))
        self.down = nn.ModuleList(nn.Conv2d(a, b, 2, stride=2) for a, b in zip(widths[:-1], widths[1:]))
        self.mid = _stage(widths[-1], blocks[-1])
        self.up = nn.ModuleList(nn.Sequential(nn.Conv2d(b, 4 * a, 1), nn.PixelShuffle(2)) for a, b in zip(widths[:-1], widths[1:]))
        self.dec = nn.ModuleList(_stage(w, b) for w, b in zip(widths[:-1], blocks[:-1]))
        self.out_ch = out_ch
        self.tail = nn.Conv2d(widths[0], out_ch, 3, padding=1)
        self.factor = 2 ** (len(blocks) - 1)
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
        out = xp[:, :self.out_ch] + self.tail(feat)
        return out[..., :h, :w]


NETWORK = ResUNet
