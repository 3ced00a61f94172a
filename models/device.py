"""One rule for where models run: CUDA when present, else CPU. Same code on both."""
from __future__ import annotations


def pick_device(requested: str | None = None) -> str:
    """``requested`` ("cpu", "cuda", "cuda:1") wins; otherwise CUDA if torch sees one."""
    if requested:
        return requested
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
