"""One rule for where models run: CUDA when present, else CPU. Same code on both."""
from __future__ import annotations


def pick_device(requested: str | None = None) -> str:
    """``requested`` ("cpu", "cuda", "cuda:1") wins; otherwise CUDA if torch sees one."""
    if requested:
        return requested
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def limit_threads(threads: int) -> None:
    """Cap the CPU threads of torch and OpenCV: workers sharing a machine otherwise each take every core."""
    import cv2
    import torch

    torch.set_num_threads(threads)
    cv2.setNumThreads(threads)
