"""What a lossy input's results are worth against the input: a clip restored as MKV (lossless FFV1), as MP4
(H.264, the default for such clips) as served, and as the restored frames encoded to MP4 whatever that costs;
a JPEG photo restored as PNG, as JPEG as served (its default) and as the restored picture encoded to JPEG
whatever that costs. Writes benchmarks/results/lossy_result.md.

    python benchmarks/lossy_result.py

Clips: 24 frames of 640 x 360 made as models/eval_video.py makes its clips (validation photos: camera,
coffee, coins and gravel backgrounds, seed 2026), white Gaussian noise of sigma 2, 5, 7 and 10 through
x264 (yuv420p) at CRF 18 and 23, restored by ``Pipeline.restore_file`` as served. PSNR against the clean
source before the codec; Restora - input in dB. Encoding restored frames to H.264 again costs them a second
generation; where that costs more than the restoration changed, the served MP4 is the input's own stream
("kept input"), so it is never below the input. "MP4 encoded" is the restored frames (the MKV) written
to MP4 regardless: what the served MP4 would have been without that rule.

Photos: the held-out crops of ``restora eval images`` (5 gray, 4 colour), white Gaussian noise of sigma 0, 2
and 5, saved by OpenCV as JPEG at quality 95, 90, 75 and 60 (4:2:0 colour), restored by ``Pipeline.restore_file``.
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from light_noise import CLIP_BACKGROUNDS  # noqa: E402

from models import eval_video, io  # noqa: E402
from models.eval_images import held_out_images, psnr  # noqa: E402
from models.pipeline import Pipeline  # noqa: E402
from models.video.io import VideoReader, VideoWriter  # noqa: E402


def encoded_anyway(restored: Path, source: Path, output: Path) -> None:
    """The restored frames (a lossless MKV) written to MP4 as the pipeline writes them, with no rule."""
    with VideoReader(source) as timing, VideoReader(restored) as reader:
        frames = reader.frames()
        with VideoWriter([output], timing) as writer:
            for _ in timing.frames():
                writer.write(next(frames))


def clip_rows(folder: Path) -> list[str]:
    pipeline = Pipeline(kinds=("video",))
    lines = ["| clip | sigma read / level | input PSNR | MKV result - input, dB | MP4 encoded - input, dB | MP4 served - input, dB | MP4 served as |",
             "|---|---|---:|---:|---:|---:|---|"]
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
    return lines


def photo_rows(folder: Path) -> list[str]:
    pipeline = Pipeline(kinds=("image",))
    rng = np.random.default_rng(2026)
    lines = ["| photo | sigma read / level | input PSNR | PNG result - input, dB | JPEG encoded - input, dB | JPEG served - input, dB | JPEG served as |",
             "|---|---|---:|---:|---:|---:|---|"]
    for kind, photos in held_out_images(quick=False).items():
        for name, clean in photos:
            for sigma in (0, 2, 5):
                for quality in (95, 90, 75, 60):
                    noisy = np.clip(np.rint(clean + rng.normal(0, sigma, clean.shape)), 0, 255).astype(np.uint8)
                    source = folder / "input.jpg"
                    cv2.imwrite(str(source), noisy[..., ::-1] if noisy.ndim == 3 else noisy, [cv2.IMWRITE_JPEG_QUALITY, quality])
                    summary = pipeline.restore_file(source, [folder / "result.jpg", folder / "result.png"])
                    restored, info = io.read_image(folder / "result.png")
                    io.write_frame(folder / "encoded.jpg", restored, info)
                    gains = {}
                    for path in (source, folder / "result.png", folder / "encoded.jpg", folder / "result.jpg"):
                        gains[path.name] = psnr(clean, io.read_image(path)[0]) - (gains.get("input.jpg") or 0.0)
                    served = "kept input" if "jpg" in summary.result_notes else "restored"
                    lines.append(f"| {kind} {name}, sigma {sigma}, q{quality} | {summary.noise.sigma:.2f} / {summary.noise.level} | "
                                 f"{gains['input.jpg']:.2f} | {gains['result.png']:+.2f} | {gains['encoded.jpg']:+.2f} | {gains['result.jpg']:+.2f} | {served} |")
                    print(lines[-1], flush=True)
    return lines


def summary_line(rows: list[str], what: str) -> str:
    """How many results land below their input, encoded regardless and as served, and the worst of each."""
    encoded, served = ([float(row.split("|")[column]) for row in rows[2:]] for column in (5, 6))
    return (f"{what}: encoded regardless, {sum(g < -0.005 for g in encoded)} of {len(rows) - 2} below the input (worst {min(encoded):+.2f}, "
            f"mean {np.mean(encoded):+.2f} dB); as served, {sum(g < -0.005 for g in served)} (worst {min(served):+.2f}, mean {np.mean(served):+.2f} dB).")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        photos = photo_rows(Path(tmp))
        clips = clip_rows(Path(tmp))
    intro = __doc__.split("\n\n", 2)[2].strip()
    text = "\n".join(["# Lossy inputs' results against the input", "", intro, "", summary_line(clips, "Clips"), "",
                      summary_line(photos, "Photos"), "", "## Clips", "", *clips, "", "## Photos", "", *photos, ""])
    (io.RESULTS_DIR / "lossy_result.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
