"""Held-out photos and clips with little or no noise, whose safe answer is the input itself. Writes benchmarks/results/light_noise.md.

    python benchmarks/light_noise.py

Photos: models/eval_images.py's held-out crops (256 px; gray: camera, coins, gravel, coffee, grace_hopper;
colour: two crops each of coffee and grace_hopper), never used in training. Degradations (8-bit, seed 27):
none, white Gaussian noise of sigma 1, 2, 3, 5 and 7, camera raw noise at 1000 and 300 photons at white,
JPEG quality 60. Each through the image classifier and the restorer for its level, as served, and again
with the weak-texture cap of a low reading switched off (models.image.noise.weak_texture_sigma giving
no reading: the classifier before it). Reported per degradation: mean and worst of Restora's PSNR minus the
input's (for clean photos: the RMS change in 8-bit levels, and how many come back unchanged), and the mean
sigma read against the true one.

Clips: 12 frames of 320 x 180 made as models/eval_video.py makes its clips (validation photos: a camera, coffee,
coins and gravel background, seed 2026), white Gaussian noise of sigma 0, 1, 2, 3 and 5, stored losslessly;
each through the video classifier and the restorer for its level, as served; without the fine temporal reading
(models.video.noise.FINE_SHARE at 0: the classifier before it); with the larger of the spatial and temporal
readings at low noise too (models.video.noise.CORRELATED_NOISE_RATIO at -inf: the classifier before the
low-noise rule); and without the same cap on the spatial reading (models.image.noise.weak_texture_sigma
giving no reading).

Compressed clips: the same clips (sigma 0, 2 and 5) through H.264 (yuv420p) at CRF 8, 18, 23 and 28, and FFmpeg's
``testsrc2`` with its ``noise=alls=5|10|20:allf=t`` filter through x264's defaults (models/eval_noise.py, 1280 x 720),
each as served (the classifier and the fusion told the clip was stored lossy) and as if it were lossless (the
classifier before it knew). Restora - input: PSNR against the clean source before the codec, of the result minus the decoded input's.
"""
from __future__ import annotations

import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from clean_and_broken_inputs import patched  # noqa: E402

from models import eval_noise, eval_video  # noqa: E402
from models.data.image_pairs import add_gaussian, camera_noise, jpeg, jpeg_step_at  # noqa: E402
from models.eval_images import _eight_bit, degraded_image, held_out_images, psnr  # noqa: E402
from models.image import noise as image_noise  # noqa: E402
from models.interface import no_progress  # noqa: E402
from models.io import RESULTS_DIR  # noqa: E402
from models.registry import classifier_for, restorer_for  # noqa: E402
from models.video import noise as video_noise  # noqa: E402
from models.video.io import VideoReader  # noqa: E402

SEED = 27
CLIP_BACKGROUNDS = ((0, "camera"), (1, "coffee"), (2, "coins"), (3, "gravel"))  # validation photos, split_images order
JPEG_QUALITY = 60  # the classifier is told the file's quantisation, as the service reads it from a JPEG


def degradations(rng: np.random.Generator) -> dict:
    makers = {"clean": lambda c: _eight_bit(c)}
    makers |= {f"sigma {s}": (lambda s: lambda c: _eight_bit(add_gaussian(c, s, rng)))(s) for s in (1, 2, 3, 5, 7)}
    makers |= {f"camera {p} photons": (lambda p: lambda c: _eight_bit(camera_noise(c, p, 0.002, rng)))(p) for p in (1000, 300)}
    makers[f"jpeg q{JPEG_QUALITY}"] = lambda c: jpeg(c, JPEG_QUALITY)
    return makers


def clips() -> list[str]:
    classifier = classifier_for("video").build("cpu")
    restorers = {level: restorer_for("video", level).build("cpu") for level in ("low", "medium", "high")}
    variants = {"served": (video_noise, "CORRELATED_NOISE_RATIO", video_noise.CORRELATED_NOISE_RATIO),
                "fine reading off": (video_noise, "FINE_SHARE", 0.0),
                "larger reading": (video_noise, "CORRELATED_NOISE_RATIO", float("-inf")),
                "cap off": (image_noise, "weak_texture_sigma", lambda _: None)}
    lines = ["| clip | true sigma | " + " | ".join(f"{variant}: sigma read / level | Restora - input, dB" for variant in variants) + " |",
             "|---|---:|" + "---|---:|" * len(variants)]
    with tempfile.TemporaryDirectory() as tmp:
        for sigma in (0, 1, 2, 3, 5):
            for background, name in CLIP_BACKGROUNDS:
                path = Path(tmp) / "clip.mkv"
                plan = eval_video.ClipPlan("val", background, 0, 12, background)
                clean = eval_video.make(plan, eval_video.Case(sigma), path, size=(320, 180)).astype(np.float32)
                with VideoReader(path) as reader:
                    frames = [frame.astype(np.float32) for frame in reader.frames()]
                cells = []
                for module, attribute, value in variants.values():
                    with patched(module, attribute, value):
                        estimate = classifier.predict(frames[:video_noise.NOISE_FRAMES])
                        out = np.stack([np.clip(np.rint(f), 0, 255) for f in restorers[estimate.level].predict(iter(frames), estimate)])
                    change = (f"RMS change {np.sqrt(np.mean((out - np.stack(frames)) ** 2)):.2f}" if sigma == 0
                              else f"{psnr(clean, out) - psnr(clean, np.stack(frames)):+.2f}")
                    cells.append(f"{estimate.sigma:.2f} / {estimate.level} | {change}")
                lines.append(f"| {name}, sigma {sigma} | {float(np.std(np.stack(frames) - clean)):.2f} | {' | '.join(cells)} |")
                print(lines[-1], flush=True)
    return lines


def compressed_clips() -> list[str]:
    classifier = classifier_for("video").build("cpu")
    restorers = {level: restorer_for("video", level).build("cpu") for level in ("low", "medium", "high")}
    variants = {"served": True, "as if lossless": False}
    lines = ["| clip | true sigma (with the codec's error) | " + " | ".join(f"{v}: sigma read / level | Restora - input, dB" for v in variants) + " |",
             "|---|---:|" + "---|---:|" * len(variants)]

    def row(name: str, clean: np.ndarray, frames: list[np.ndarray]) -> None:
        cells = []
        for lossy in variants.values():
            estimate = classifier.predict(frames[:video_noise.NOISE_FRAMES], lossy=lossy)
            out = np.stack([np.clip(np.rint(f), 0, 255) for f in restorers[estimate.level].predict(iter(frames), estimate, lossy=lossy)])
            cells.append(f"{estimate.sigma:.2f} / {estimate.level} | {psnr(clean, out) - psnr(clean, np.stack(frames)):+.2f}")
        lines.append(f"| {name} | {float(np.std(np.stack(frames) - clean)):.2f} | {' | '.join(cells)} |")
        print(lines[-1], flush=True)

    for name, clean, frames in held_out_compressed_clips((0, 2, 5)):
        row(name, clean, frames)
    return lines


def held_out_compressed_clips(sigmas: tuple[int, ...]) -> Iterator[tuple[str, np.ndarray, list[np.ndarray]]]:
    """(name, clean frames, decoded frames), float32: the clips above with noise of ``sigmas`` through x264 at
    CRF 8, 18, 23 and 28, then FFmpeg's testsrc2 with its noise filter through x264's defaults."""
    with tempfile.TemporaryDirectory() as tmp:
        for crf in (8, 18, 23, 28):
            for sigma in sigmas:
                for background, name in CLIP_BACKGROUNDS:
                    path = Path(tmp) / "clip.mp4"
                    plan = eval_video.ClipPlan("val", background, 0, 12, background)
                    clean = eval_video.make(plan, eval_video.Case(sigma, crf), path, size=(320, 180)).astype(np.float32)
                    with VideoReader(path) as reader:
                        yield f"{name}, sigma {sigma}, CRF {crf}", clean, [frame.astype(np.float32) for frame in reader.frames()]
    for strength in (5, 10, 20):
        pattern, noisy, _ = eval_noise.ffmpeg_testsrc2(strength)
        yield f"testsrc2, noise=alls={strength}, x264 defaults", np.stack(pattern).astype(np.float32), [f.astype(np.float32) for f in noisy]


def main() -> None:
    classifier = classifier_for("image").build("cpu")
    restorers = {level: restorer_for("image", level).build("cpu") for level in ("low", "medium", "high")}
    images = [(name, np.rint(clean)) for group in held_out_images(False).values() for name, clean in group]
    rng = np.random.default_rng(SEED)
    lines = ["| degradation | photos | true sigma | sigma read: served / cap off | Restora - input, dB: mean / worst | cap off: mean / worst |",
             "|---|---:|---:|---|---|---|"]
    for degradation, make in degradations(rng).items():
        cells = {"served": [], "cap off": []}
        truths, readings = [], {"served": [], "cap off": []}
        for name, clean in images:
            noisy = degraded_image(make, clean)
            truths.append(float(np.std(noisy - clean)))
            facts = {"jpeg_step": jpeg_step_at(JPEG_QUALITY)} if degradation.startswith("jpeg") else {}
            for variant in cells:
                with patched(image_noise, "weak_texture_sigma", image_noise.weak_texture_sigma if variant == "served" else lambda _: None):
                    estimate = classifier.predict(noisy, **facts)
                out = np.rint(np.clip(restorers[estimate.level].predict(noisy, estimate, no_progress), 0, 255))
                readings[variant].append(estimate.sigma)
                cells[variant].append(float(np.sqrt(np.mean((out - noisy) ** 2))) if degradation == "clean" else psnr(clean, out) - psnr(clean, noisy))
            print(degradation, name, " ".join(f"{v}: {cells[v][-1]:+.2f} ({readings[v][-1]:.2f})" for v in cells), flush=True)
        if degradation == "clean":
            summary = [f"RMS change {np.mean(c):.2f} / {np.max(c):.2f}, unchanged {sum(v == 0 for v in c)}" for c in cells.values()]
        else:
            summary = [f"{np.mean(c):+.2f} / {np.min(c):+.2f}" for c in cells.values()]
        lines.append(f"| {degradation} | {len(images)} | {np.mean(truths):.2f} | {np.mean(readings['served']):.2f} / {np.mean(readings['cap off']):.2f} | "
                     f"{summary[0]} | {summary[1]} |")
    text = "\n".join(["# Light noise on held-out photos and clips: against the input", "", __doc__.split("\n\n", 2)[2].strip(), "",
                      "## Photos", "", *lines, "", "## Clips", "", *clips(), "",
                      "## Compressed clips", "", *compressed_clips(), ""])
    (RESULTS_DIR / "light_noise.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
