"""Small shared test helpers: synthetic inputs with ground truth, and PSNR."""
from __future__ import annotations

import io
import subprocess
from pathlib import Path

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


def ffmpeg_testsrc2(path: Path, noise: int = 0, seconds: float = 0.6, lossless: bool = False) -> Path:
    """FFmpeg's testsrc2 (320 x 180, 25 fps) with temporal noise of ``noise`` (its noise filter's strength) and a
    440 Hz tone, through x264 at CRF 18 with AAC; ``lossless``: the picture alone, as RGB FFV1."""
    source = ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", f"testsrc2=size=320x180:rate=25:duration={seconds}"]
    if lossless:
        codec = ["-c:v", "ffv1", "-pix_fmt", "bgr0"]
    else:
        source += ["-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}"]
        codec = ["-c:v", "libx264", "-crf", "18", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest"]
    subprocess.run([*source, *(["-vf", f"noise=alls={noise}:allf=t"] if noise else []), *codec, str(path)], check=True)
    return path


def video_packets(source: Path | bytes) -> list[bytes]:
    """A clip's video packets, as stored (a result that copied its input's stream has the same)."""
    import av

    with av.open(str(source) if isinstance(source, Path) else io.BytesIO(source)) as container:
        return [bytes(p) for p in container.demux(video=0) if p.size]
