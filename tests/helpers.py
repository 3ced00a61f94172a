"""Small shared test helpers: synthetic inputs with ground truth, and PSNR."""
from __future__ import annotations

import io

import numpy as np


def psnr(estimate: np.ndarray, truth: np.ndarray, data_range: float) -> float:
    mse = float(np.mean((estimate.astype(np.float64) - truth.astype(np.float64)) ** 2))
    return 10 * np.log10(data_range**2 / mse)


def synthetic_stack(level: str, seed: int = 0, frames: int = 40, size: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """A (T,H,W) uint16 stack of a validation image at ``level`` and its ground truth."""
    from models.data.sources import clean_images
    from models.data.synthetic import make_stack, sample_photons

    rng = np.random.default_rng(seed)
    clean = clean_images("val", size=size, seed=seed)[seed % 3]
    return make_stack(clean, rng, photons=sample_photons(level, rng), frames=frames).pair


def npy_bytes(array: np.ndarray, allow_pickle: bool = False) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=allow_pickle)
    return buffer.getvalue()


def damaged_copy(data: bytes, share: float = 0.0, seed: int = 0) -> bytes:
    """A file's bytes with ``share`` of them (at least 2000), from the middle on, replaced by random ones."""
    damaged = bytearray(data)
    start, count = len(damaged) // 2, max(2000, int(len(damaged) * share))
    damaged[start:start + count] = np.random.default_rng(seed).integers(0, 256, count, dtype=np.uint8).tobytes()
    return bytes(damaged)


def damaged_clip(folder, share: float):
    """A 100-frame H.264 clip (192 x 108, 4 s) with ``share`` of its bytes damaged half-way; the frames a
    full read decodes, and where (seconds, rounded as jobs show them) its decoder refused data."""
    from models.video.io import VideoReader
    from models.video.synthetic import make_clip

    clip, damaged = folder / "clip.mp4", folder / "damaged.mp4"
    make_clip(clip, np.random.default_rng(5), sigma=15, frames=100, width=192, height=108, fps=25, audio=False)
    damaged.write_bytes(damaged_copy(clip.read_bytes(), share))
    with VideoReader(damaged) as reader:
        decoded = sum(1 for _ in reader.frames())
        damage = sorted(round(seconds, 2) for _, seconds in reader.damaged)
    assert decoded < 100 and damage
    return damaged, decoded, damage
