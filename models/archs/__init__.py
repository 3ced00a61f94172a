"""Small restoration networks, one file per architecture, built by name from a config dict.

A weight file stores ``{"arch": name, "config": {...}}`` next to its state dict, so
``build(meta["arch"], meta["config"])`` recreates the exact network that was trained.
"""
from __future__ import annotations

from typing import Any


def build(arch: str, config: dict[str, Any]):
    """The network ``arch`` (e.g. ``"resunet"``) with keyword arguments ``config``."""
    if arch == "resunet":
        from models.archs.resunet import ResUNet

        return ResUNet(**config)
    if arch == "videounet":
        from models.archs.videounet import VideoUNet

        return VideoUNet(**config)
    raise ValueError(f"unknown architecture {arch!r}")
