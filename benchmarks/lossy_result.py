"""What a lossy clip's results are worth against its input: restored as MKV (lossless FFV1), as MP4 (H.264,
the default for such clips) as served, and as the restored frames encoded to MP4 whatever that costs.
Writes benchmarks/results/lossy_result.md.

    python benchmarks/lossy_result.py

Clips: 24 frames of 640 x 360 made as models/eval_video.py makes its clips (validation photos: camera,
coffee, coins and gravel backgrounds, seed 2026), white Gaussian noise of sigma 2, 5, 7 and 10 through
x264 (yuv420p) at CRF 18 and 23, restored by ``Pipeline.restore_file`` as served. PSNR against the clean
source before the codec; Restora - input in dB. Encoding restored frames to H.264 again costs them a second
generation; where that costs more than the restoration changed, the served MP4 is the input's own stream
("kept input"), so it is never below the input. "MP4 encoded" is the restored frames (the MKV) written
to MP4 regardless: what the served MP4 would have been without that rule.
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from light_noise import CLIP_BACKGROUNDS  # noqa: E402

from models import eval_video  # noqa: E402
from models.eval_images import psnr  # noqa: E402
from models.io import RESULTS_DIR  # noqa: E402
from models.pipeline import Pipeline  # noqa: E402
from models.video.io import VideoReader, VideoWriter  # noqa: E402


def encoded_anyway(restored: Path, source: Path, output: Path) -> None:
    """The restored frames (a lossless MKV) written to MP4 as the pipeline writes them, with no rule."""
    with VideoReader(source) as timing, VideoReader(restored) as reader:
        frames = reader.frames()
        with VideoWriter([output], timing) as writer:
            for _ in timing.frames():
                writer.write(next(frames))


def main() -> None:
    pipeline = Pipeline(kinds=("video",))
    lines = ["| clip | sigma read / level | input PSNR | MKV result - input, dB | MP4 encoded - input, dB | MP4 served - input, dB | MP4 served as |",
             "|---|---|---:|---:|---:|---:|---|"]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for crf in (18, 23):
            for sigma in (2, 5, 7, 10):
                for background, name in CLIP_BACKGROUNDS:
                    source = folder / "input.mp4"
                    plan = eval_video.ClipPlan("val", background, (background + 1) % 6, 24, background)
                    clean = eval_video.make(plan, eval_video.Case(sigma, crf), source).astype(np.float32)
                    summary = pipeline.restore_file(source, [folder / "result.mp4", folder / "result.mkv"])
                    encoded_anyway(folder / "result.mkv", source, folder / "encoded.mp4")
                    quality = {}
                    for path in (source, folder / "result.mkv", folder / "encoded.mp4", folder / "result.mp4"):
                        with VideoReader(path) as reader:
                            quality[path.name] = psnr(clean, np.stack(list(reader.frames()))) - (quality.get("input.mp4") or 0.0)
                    served = "kept input" if "mp4" in summary.result_notes else "restored"
                    lines.append(f"| {name}, sigma {sigma}, CRF {crf} | {summary.noise.sigma:.2f} / {summary.noise.level} | {quality['input.mp4']:.2f} | "
                                 f"{quality['result.mkv']:+.2f} | {quality['encoded.mp4']:+.2f} | {quality['result.mp4']:+.2f} | {served} |")
                    print(lines[-1], flush=True)
    text = "\n".join(["# A lossy clip's results against its input", "", __doc__.split("\n\n", 2)[2].strip(), "", *lines, ""])
    (RESULTS_DIR / "lossy_result.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
