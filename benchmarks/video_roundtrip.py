"""Against a running server: a seeded noisy 640x360 clip with audio goes through the service.

Prints the input's and the result's frame count, fps, size and audio streams, and the PSNR of the
noisy input and of the restored result against the clean frames.
    .venv/bin/python benchmarks/video_roundtrip.py [--server URL] [--sigma 15] [--seconds 5]
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import av
import numpy as np

from models.video.synthetic import make_clip
from restora.client import Client


def probe(path: Path) -> tuple[dict, list[np.ndarray]]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = [f.to_ndarray(format="rgb24").astype(np.float64) for f in container.decode(stream)]
        return {"frames": len(frames), "fps": float(stream.average_rate), "size": f"{stream.width}x{stream.height}", "audio": len(container.streams.audio)}, frames


def psnr(frames: list[np.ndarray], clean: list[np.ndarray]) -> float:
    mse = np.mean([np.mean((f - c) ** 2) for f, c in zip(frames, clean, strict=True)])
    return float(10 * np.log10(255**2 / mse))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--server", default="http://127.0.0.1:8000")
    parser.add_argument("--sigma", type=float, default=15.0)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, Client(args.server) as client:
        clip = Path(tmp) / "clip.mp4"
        scene = make_clip(clip, np.random.default_rng(0), sigma=args.sigma, frames=round(25 * args.seconds), width=640, height=360, fps=25)
        clean = [c.astype(np.float64) for c in scene.clean_frames()]
        job = client.wait(client.submit(clip, formats="mp4,mkv").id)
        assert job.status == "succeeded", job.error
        client.download(job.id, Path(tmp) / "out.mp4")
        client.download(job.id, Path(tmp) / "out.mkv", "mkv")
        (info_in, noisy), (info_out, _), (_, restored) = probe(clip), probe(Path(tmp) / "out.mp4"), probe(Path(tmp) / "out.mkv")
        print(f"noise: {job.noise}  model: {job.model}")
        print(f"input : {info_in}  PSNR {psnr(noisy, clean):.2f} dB")
        print(f"result: {info_out}  PSNR {psnr(restored, clean):.2f} dB (lossless mkv)")


if __name__ == "__main__":
    main()
