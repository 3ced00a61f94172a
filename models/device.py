"""One rule for where models run: CUDA when present, else CPU. Same code on both."""
from __future__ import annotations


def pick_device(requested: str | None = None) -> str:
    """``requested`` ("cpu", "cuda", "cuda:1") wins; otherwise CUDA if torch sees one."""
    if requested:
        return requested
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


_thread_limit = 0  # 0: every library picks its own (all cores)


def limit_threads(threads: int) -> None:
    """Cap the CPU threads of torch, OpenCV and the video codecs: workers sharing a machine
    otherwise each take every core."""
    global _thread_limit
    import cv2
    import torch

    torch.set_num_threads(threads)
    cv2.setNumThreads(threads)
    _thread_limit = threads


def thread_limit() -> int:
    """The cap set by :func:`limit_threads`, or 0 when none was."""
    return _thread_limit
