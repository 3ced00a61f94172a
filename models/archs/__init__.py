"""Small restoration networks, one file per architecture, built by name from a config dict.

A weight file stores ``{"arch": name, "config": {...}}`` next to its state dict, so
``build(meta["arch"], meta["config"])`` recreates the exact network that was trained.
"""
from __future__ import annotations

from typing import Any


def build(arch: str, config: dict[str, Any]):
    """The network ``arch`` (e.g. ``"resunet"``) with keyword arguments ``config``."""
    from models.archs.resunet import ResUNet

    if arch == "resunet":
        return ResUNet(**config)
    if arch == "videounet":  # the video refiner: the same network with an RGB head
        return ResUNet(**config, out_ch=3)
    raise ValueError(f"unknown architecture {arch!r}")
