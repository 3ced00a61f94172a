"""Small restoration networks, one file per architecture, built by name from a config dict, and
the one place weight files are written and read.

A weight file stores ``{"arch": name, "config": {...}}`` next to its state dict, so
``build(meta["arch"], meta["config"])`` recreates the exact network that was trained. An
architecture's name is its file's (``models/archs/NAME.py``), whose ``NETWORK`` is the class: a new
architecture is that one file.
"""
from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Any

# Names kept by weight files written before an architecture had a file of its own: name -> (file, extra options).
ALIASES = {"videounet": ("resunet", {"out_ch": 3})}  # the video refiner: the stack network with an RGB head


def build(arch: str, config: dict[str, Any]):
    """The network ``arch`` (e.g. ``"resunet"``) with keyword arguments ``config``."""
    module, extra = ALIASES.get(arch, (arch, {}))
    name = f"models.archs.{module}"
    try:
        if not re.fullmatch(r"[a-z][a-z0-9_]*", module):  # a name, never a path
            raise ModuleNotFoundError(name=name)
        found = importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name != name:  # the architecture's file needs a package that is missing
            raise
        raise ValueError(f"unknown architecture {arch!r}") from None
    return found.NETWORK(**config, **extra)


def save_weights(path: Path, net, meta: dict[str, Any]) -> None:
    """A small file: float16 state dict plus the metadata needed to rebuild and feed the network."""
    import torch

    state = {k: v.detach().to(torch.float16) if v.is_floating_point() else v for k, v in net.state_dict().items()}
    torch.save({"meta": meta, "state_dict": state}, path)


def load_weights(path: Path, device: str = "cpu"):
    """(network in eval mode, metadata) from a file written by :func:`save_weights`; never unpickles code.

    Weights are kept channels-last: oneDNN's convolutions run ~1.5x faster so on the CPU (and
    cuDNN's no slower on a GPU), with the same results to float rounding.
    """
    import torch

    blob = torch.load(path, map_location="cpu", weights_only=True)
    meta = blob["meta"]
    net = build(meta["arch"], meta["config"])
    net.load_state_dict({k: v.float() for k, v in blob["state_dict"].items()})
    return net.to(device).eval().to(memory_format=torch.channels_last), meta


_LOADED: dict[tuple[str, str, int], tuple[Any, dict[str, Any]]] = {}  # (file, device, mtime) -> (network, metadata)


class TrainedModel:
    """A model whose network comes from a weight file, after Cog: ``setup`` loads it once on a device.

    ``level``, when given, must be the level the file was trained for (its metadata says)."""

    def __init__(self, level: str | None, weights: Path | None):
        if weights is None:
            raise ValueError(f"{type(self).__name__} needs a weight file")
        self.level = level
        self.weights = Path(weights)
        self.net = None
        self.meta: dict[str, Any] = {}
        self.device = "cpu"

    def setup(self, device: str) -> None:
        """Loads the weight file once per device: models that share a file (the image network serves
        three levels and the image classifier's check) share its network, which serving only reads."""
        key = (str(self.weights.resolve()), device, self.weights.stat().st_mtime_ns)
        if key not in _LOADED:
            _LOADED[key] = load_weights(self.weights, device)
        self.net, self.meta = _LOADED[key]
        self.device = device
        if self.level is not None and "level" in self.meta and self.meta["level"] != self.level:
            raise ValueError(f"{self.weights.name} was trained for level {self.meta['level']!r}, not {self.level!r}")
