"""Evaluate upscaling by 2 and 4 against bicubic, Lanczos and FFmpeg's Lanczos scaler.

    python -m models.eval_upscale            # writes benchmarks/results/eval_upscale.{md,json}
    python -m models.eval_upscale --quick    # two small gray crops (tests), eval_upscale_quick.json
    python -m models.eval_upscale --reduction bicubic   # a reduction the upscalers never trained on: eval_upscale_bicubic.*

Images: centre crops (``CROP`` px, gray and colour) of the held-out photos of
:mod:`models.data.image_pairs`, never used in training, reduced by 2 or 4 with area averaging and
rounded to 8 bits (what a small file is); with ``--reduction bicubic`` by Pillow's antialiased
bicubic instead (sharper small images, a degradation family the upscalers never trained on). Methods, same images, same run: OpenCV bicubic and
Lanczos (``cv2.INTER_CUBIC``, ``cv2.INTER_LANCZOS4``), FFmpeg's ``scale`` filter with
``flags=lanczos`` (PNG in, 16-bit PNG out), and Restora's upscaler for that scale
(models/image/upscale.py). PSNR (peak 255) and SSIM on luma (BT.601), ``BORDER`` px left out on
every side; seconds per output megapixel (wall time on this machine, same run).

Clips: seeded camera paths over the held-out photos (:class:`models.video.synthetic.Scene`), each
frame reduced the same way and stored as a lossless 8-bit FFV1 clip. Restora runs its whole video
path on that file (``Pipeline.restore_file(task="upscale")``: noise classified, the video denoiser,
then the upscaler per frame, written as FFV1); FFmpeg's scaler runs on the same file; OpenCV's
bicubic and Lanczos on its frames. Scores are per frame on luma, averaged over every frame.
"""
from __future__ import annotations

import argparse
import math
import platform
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from models.data.image_pairs import load_rgb
from models.data.upscale_pairs import reduce
from models.eval_images import COLOUR_PHOTOS, GRAY_PHOTOS
from models.io import RESULTS_DIR, write_report
from models.registry import WEIGHTS_DIR

CROP = 384  # a multiple of 4
BORDER = 8
SCALES = (2, 4)
CLIP_SIZE, CLIP_FRAMES = (256, 192), 24  # clean clip width, height (multiples of 4) and length
CLIP_SEEDS = (901, 902, 903)  # camera paths over the held-out photos


def reduce_bicubic(image: np.ndarray, scale: int) -> np.ndarray:
    """Pillow's antialiased bicubic reduction (the classic super-resolution benchmark's), per channel."""
    from PIL import Image

    h, w = image.shape[0] // scale, image.shape[1] // scale
    planes = image[..., None] if image.ndim == 2 else image
    small = [np.asarray(Image.fromarray(np.ascontiguousarray(planes[..., c], np.float32), mode="F").resize((w, h), Image.BICUBIC))
             for c in range(planes.shape[2])]
    return np.stack(small, axis=2)[..., 0] if image.ndim == 2 else np.stack(small, axis=2)


REDUCTIONS = {"area": reduce, "bicubic": reduce_bicubic}


def held_out_images(quick: bool) -> list[tuple[str, np.ndarray]]:
    """(name, clean image in 8-bit units): gray (H, W) and colour (H, W, 3) centre crops."""
    crop = 128 if quick else CROP
    images = []
    for name in dict.fromkeys(GRAY_PHOTOS + COLOUR_PHOTOS):
        photo = load_rgb(name)
        if photo is None:
            continue
        h, w = photo.shape[:2]
        side = min(crop, h // 4 * 4, w // 4 * 4)
        y, x = (h - side) // 2, (w - side) // 2
        image = np.rint(photo[y:y + side, x:x + side] * 255).astype(np.float32)
        if name in GRAY_PHOTOS:
            images.append((f"{name} (gray)", np.rint(image.mean(axis=2))))
        if name in COLOUR_PHOTOS:
            images.append((name, image))
    return images[:2] if quick else images


def luma(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image, np.float64)
    return image if image.ndim == 2 else image @ np.array([0.299, 0.587, 0.114])


def scores(clean: np.ndarray, estimate: np.ndarray) -> tuple[float, float]:
    """(PSNR, SSIM) on luma, border left out."""
    from skimage.metrics import structural_similarity

    a = luma(clean)[BORDER:-BORDER, BORDER:-BORDER]
    b = luma(np.clip(estimate, 0, 255))[BORDER:-BORDER, BORDER:-BORDER]
    mse = float(np.mean((a - b) ** 2))
    return 10 * math.log10(255**2 / max(mse, 1e-12)), float(structural_similarity(a, b, data_range=255))


def opencv(interpolation: int) -> Callable[[np.ndarray, int], np.ndarray]:
    def enlarge(small: np.ndarray, scale: int) -> np.ndarray:
        h, w = small.shape[:2]
        return cv2.resize(small, (w * scale, h * scale), interpolation=interpolation)
    return enlarge


def ffmpeg_lanczos(small: np.ndarray, scale: int) -> np.ndarray:
    """FFmpeg's ``scale=iw*S:ih*S:flags=lanczos`` on an 8-bit PNG, read back from a 16-bit PNG."""
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "in.png", Path(tmp) / "out.png"
        pixels = small.astype(np.uint8)
        cv2.imwrite(str(src), pixels if pixels.ndim == 2 else pixels[..., ::-1])
        fmt = "gray16be" if small.ndim == 2 else "rgb48be"
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(src), "-vf", f"scale=iw*{scale}:ih*{scale}:flags=lanczos,format={fmt}",
                        str(dst)], check=True)
        out = cv2.imread(str(dst), cv2.IMREAD_UNCHANGED).astype(np.float32) / 257
        return out if out.ndim == 2 else out[..., ::-1]


def restora(scale: int) -> Callable[[np.ndarray, int], np.ndarray]:
    from models.image.upscale import LearnedUpscaler

    model = LearnedUpscaler(weights=WEIGHTS_DIR / f"upscale-x{scale}.pt")
    model.setup("cpu")
    model.predict(np.zeros((32, 32, 3), np.float32))  # the first call sets torch up: not part of the timing
    return lambda small, _: model.predict(small)


def held_out_clips(quick: bool) -> list[tuple[str, np.ndarray]]:
    """(name, clean frames (T, H, W, 3) in 8-bit units): camera paths over the held-out photos."""
    from models.video.synthetic import Scene

    photos = [p for p in (load_rgb(n) for n in COLOUR_PHOTOS) if p is not None]
    (width, height), frames = ((128, 96), 6) if quick else (CLIP_SIZE, CLIP_FRAMES)
    clips = []
    for seed in CLIP_SEEDS[:1] if quick else CLIP_SEEDS:
        rng = np.random.default_rng(seed)
        background, sprite = (photos[i % len(photos)] * 255 for i in (seed, seed + 1))
        scene = Scene.over(background.astype(np.float32), sprite.astype(np.float32), rng, width, height, frames)
        clips.append((f"clip {seed}", np.rint(np.stack(list(scene.clean_frames())))))
    return clips


def write_ffv1(path: Path, frames: np.ndarray) -> None:
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("ffv1", rate=25)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "bgr0"
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame.astype(np.uint8), format="rgb24")))
        container.mux(stream.encode())


def read_frames(path: Path) -> np.ndarray:
    import av

    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)]).astype(np.float32)


def clip_methods(quick: bool) -> dict[str, Callable[[int], Callable[[Path, np.ndarray, int], np.ndarray]]]:
    """Per scale, a function (small clip file, its frames, scale) -> enlarged frames."""
    from models.pipeline import Pipeline

    pipeline = Pipeline("cpu", kinds=("video",))

    def per_frame(interpolation: int):
        return lambda s: lambda path, small, scale: np.stack([opencv(interpolation)(f, scale) for f in small])

    def ffmpeg_clip(path: Path, small: np.ndarray, scale: int) -> np.ndarray:
        out = path.with_name(f"ffmpeg-x{scale}.mkv")
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(path), "-vf", f"scale=iw*{scale}:ih*{scale}:flags=lanczos",
                        "-c:v", "ffv1", "-pix_fmt", "bgr0", str(out)], check=True)
        return read_frames(out)

    def restora_clip(path: Path, small: np.ndarray, scale: int) -> np.ndarray:
        out = path.with_name(f"restora-x{scale}.mkv")
        pipeline.restore_file(path, [out], task="upscale", scale=scale)
        return read_frames(out)

    methods = {"bicubic": per_frame(cv2.INTER_CUBIC), "Lanczos": per_frame(cv2.INTER_LANCZOS4)}
    if not quick:
        methods["FFmpeg scale (lanczos)"] = lambda s: ffmpeg_clip
    return methods | {"Restora": lambda s: restora_clip}


def measure(enlarge: Callable[..., np.ndarray], cases: list[tuple[tuple, np.ndarray]], per: str) -> dict[str, Any]:
    """One method's row: ``enlarge(*args)`` for each case's arguments, scored against its clean
    frames (T, H, W[, 3]) frame by frame, averaged per case and then over the cases (``per``: what a case is)."""
    psnrs, ssims, seconds, pixels = [], [], 0.0, 0
    for args, clean in cases:
        started = time.perf_counter()
        out = enlarge(*args)
        seconds += time.perf_counter() - started
        pixels += out.shape[0] * out.shape[1] * out.shape[2]
        per_frame = [scores(c, o) for c, o in zip(clean, out, strict=True)]
        psnrs.append(float(np.mean([p for p, _ in per_frame])))
        ssims.append(float(np.mean([s for _, s in per_frame])))
    return {"psnr": float(np.mean(psnrs)), "ssim": float(np.mean(ssims)), "s_per_mp": seconds / (pixels / 1e6),
            f"per_{per}_psnr": [round(p, 3) for p in psnrs]}


def log_row(log: Callable[[str], None], what: str, row: dict[str, Any]) -> None:
    log(f"{what}: {row['psnr']:.2f} dB, SSIM {row['ssim']:.4f}, {row['s_per_mp']:.2f} s/MP")


def run_clips(quick: bool, log: Callable[[str], None], reduction: str) -> dict[str, Any]:
    clips = held_out_clips(quick)
    methods = clip_methods(quick)
    report: dict[str, Any] = {"clips": [name for name, _ in clips], "size": list(clips[0][1].shape[2:0:-1]), "frames": len(clips[0][1]), "scales": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for scale in SCALES:
            cases = []
            for i, (_, clean) in enumerate(clips):
                small = np.rint(np.clip(np.stack([REDUCTIONS[reduction](f, scale) for f in clean]), 0, 255))
                path = Path(tmp) / f"clip{i}-x{scale}.mkv"
                write_ffv1(path, small)
                cases.append(((path, small, scale), clean))
            rows: dict[str, Any] = {}
            for method, make in methods.items():
                rows[method] = measure(make(scale), cases, "clip")
                log_row(log, f"clips x{scale} {method}", rows[method])
            report["scales"][f"x{scale}"] = rows
    return report


def run(quick: bool = False, log: Callable[[str], None] = print, reduction: str = "area") -> dict[str, Any]:
    images = held_out_images(quick)
    methods: dict[str, Callable[[int], Callable[[np.ndarray, int], np.ndarray]]] = {
        "bicubic": lambda s: opencv(cv2.INTER_CUBIC),
        "Lanczos": lambda s: opencv(cv2.INTER_LANCZOS4),
    }
    if not quick:
        methods["FFmpeg scale (lanczos)"] = lambda s: ffmpeg_lanczos
    methods["Restora"] = restora
    report: dict[str, Any] = {"reduction": reduction, "images": [name for name, _ in images], "crop": CROP if not quick else 128, "border": BORDER,
                              "machine": platform.processor() or platform.machine(), "scales": {}}
    for scale in SCALES:
        # an image is a clip of one frame to measure()
        cases = [((np.rint(np.clip(REDUCTIONS[reduction](clean, scale), 0, 255)), scale), clean[None]) for _, clean in images]
        rows: dict[str, Any] = {}
        for method, make in methods.items():
            enlarge = make(scale)
            rows[method] = measure(lambda small, s, enlarge=enlarge: enlarge(small, s)[None], cases, "image")
            log_row(log, f"x{scale} {method}", rows[method])
        report["scales"][f"x{scale}"] = rows
    report["clips"] = run_clips(quick, log, reduction)
    return report


def markdown(report: dict[str, Any]) -> str:
    how = {"area": "area averaging", "bicubic": "antialiased bicubic (never trained on)"}[report.get("reduction", "area")]
    lines = [f"# Upscaling: held-out photos reduced by {how}, then enlarged", "",
             f"Command: `python -m models.eval_upscale --reduction {report.get('reduction', 'area')}`. Images: {', '.join(report['images'])} ({report['crop']} px crops). "
             f"PSNR / SSIM on luma, {report['border']} px border left out; seconds per output megapixel on this machine.", "",
             "| scale | method | PSNR dB | SSIM | s / output MP |", "| --- | --- | ---: | ---: | ---: |"]
    for scale, rows in report["scales"].items():
        for method, row in rows.items():
            lines.append(f"| {scale} | {method} | {row['psnr']:.2f} | {row['ssim']:.4f} | {row['s_per_mp']:.2f} |")
    clips = report["clips"]
    lines += ["", f"Clips: {', '.join(clips['clips'])} ({clips['size'][0]}x{clips['size'][1]}, {clips['frames']} frames each; Restora's "
              "time includes its noise classification and video denoiser). Per-frame scores on luma, averaged.", "",
              "| scale | method | PSNR dB | SSIM | s / output MP |", "| --- | --- | ---: | ---: | ---: |"]
    for scale, rows in clips["scales"].items():
        for method, row in rows.items():
            lines.append(f"| {scale} | {method} | {row['psnr']:.2f} | {row['ssim']:.4f} | {row['s_per_mp']:.2f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--reduction", choices=REDUCTIONS, default="area")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)
    report = run(args.quick, reduction=args.reduction)
    text = markdown(report)
    name = "eval_upscale" + ("" if args.reduction == "area" else f"_{args.reduction}") + ("_quick" if args.quick else "")
    write_report(args.out, name, report, text, with_markdown=not args.quick)
    print(text)
    return report


if __name__ == "__main__":
    main()
