"""What the default MP4 result of a lossy clip costs: restored as MP4 (H.264, the default for such clips)
and as MKV (lossless FFV1), each against the decoded input. Writes benchmarks/results/lossy_result.md.

    python benchmarks/lossy_result.py

Clips: 24 frames of 640 x 360 made as models/eval_video.py makes its clips (validation photos: camera,
coffee, coins and gravel backgrounds, seed 2026), white Gaussian noise of sigma 2, 5, 7 and 10 through
x264 (yuv420p) at CRF 18 and 23, restored by ``Pipeline.restore_file`` as served. PSNR against the clean
source before the codec; Restora - input in dB. The MP4 result is encoded again (4:2:0, CRF 18): that
second encode, not the restoration, is what takes a light-noise clip below its input.
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
from models.video.io import VideoReader  # noqa: E402


def main() -> None:
    pipeline = Pipeline(kinds=("video",))
    lines = ["| clip | sigma read / level | input PSNR | MP4 result - input, dB | MKV result - input, dB |", "|---|---|---:|---:|---:|"]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for crf in (18, 23):
            for sigma in (2, 5, 7, 10):
                for background, name in CLIP_BACKGROUNDS:
                    source = folder / "input.mp4"
                    plan = eval_video.ClipPlan("val", background, (background + 1) % 6, 24, background)
                    clean = eval_video.make(plan, eval_video.Case(sigma, crf), source).astype(np.float32)
                    summary = pipeline.restore_file(source, [folder / "result.mp4", folder / "result.mkv"])
                    quality = {}
                    for path in (source, folder / "result.mp4", folder / "result.mkv"):
                        with VideoReader(path) as reader:
                            quality[path.name] = psnr(clean, np.stack(list(reader.frames())))
                    base = quality["input.mp4"]
                    lines.append(f"| {name}, sigma {sigma}, CRF {crf} | {summary.noise.sigma:.2f} / {summary.noise.level} | {base:.2f} | "
                                 f"{quality['result.mp4'] - base:+.2f} | {quality['result.mkv'] - base:+.2f} |")
                    print(lines[-1], flush=True)
    text = "\n".join(["# The default MP4 result of a lossy clip, against its input", "", __doc__.split("\n\n", 2)[2].strip(), "", *lines, ""])
    (RESULTS_DIR / "lossy_result.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
