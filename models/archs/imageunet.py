"""The single-image restorer: a ResUNet run at half resolution on pixel-unshuffled planes (as in FFDNet).

Folding each 2x2 block of RGB pixels into 12 planes quarters the cost of every convolution and
doubles the receptive field, which is what a CPU budget of about a second per megapixel needs;
the fold is a permutation, so the ResUNet's residual head still makes an untrained network the
identity on the image.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from models.archs.resunet import ResUNet


class ImageUNet(nn.Module):
    """(N, ``channels``, H, W) in 0..1 -> restored, same shape; any H and W."""

    def __init__(self, channels: int = 3, widths: tuple[int, ...] | list[int] = (32, 64, 96, 128),
                 blocks: tuple[int, ...] | list[int] = (1, 2, 2, 2)):
        super().__init__()
        self.unshuffle, self.shuffle = nn.PixelUnshuffle(2), nn.PixelShuffle(2)
        self.body = ResUNet(in_ch=4 * channels, widths=widths, blocks=blocks, out_ch=4 * channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        padded = F.pad(x, (0, w % 2, 0, h % 2), mode="replicate") if h % 2 or w % 2 else x
        return self.shuffle(self.body(self.unshuffle(padded)))[..., :h, :w]


NETWORK = ImageUNet
