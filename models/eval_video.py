"""Evaluate video denoising against FFmpeg's own denoisers on seeded clips of VALIDATION images only.

    python -m models.eval_video            # full run, writes benchmarks/results/eval_video.{md,json}
    python -m models.eval_video --quick    # small clips, Restora + two fast filters (tests), eval_video_quick.json
    python -m models.eval_video --tune     # re-tune every FFmpeg filter on the development clips, print TUNED

Clips: 640 x 360, 25 fps, a camera panning, zooming and turning smoothly over a photo while a disc
cut from another photo crosses it (:class:`models.video.synthetic.Scene`), Gaussian noise of sigma
15 or 30 (8-bit units, per RGB channel) stored losslessly (FFV1), and sigma 20 through H.264 at CRF
23 (yuv420p, as phones and editors deliver: the codec has already removed part of the noise and
added its own artefacts; :data:`CASES`), no audio. Evaluation clips use
only validation photos (skimage ``coffee``, ``camera``, ``coins``, ``gravel`` and validation dead
leaves, the split of models/data/sources.py); the development clip that each FFmpeg filter's
strength is tuned on uses training photos and its own seed, so no method sees the test frames first.

Methods, all on the same clips in the same run:

- FFmpeg filters, run by the ``ffmpeg`` binary as a subprocess: ``format=yuv444p,<filter>,format=gbrp``
  (the filters denoise Y'CbCr at full chroma resolution; 4:2:0 would lose colour detail before
  they start), written as FFV1 RGB and decoded losslessly. Strengths: :data:`TUNED`.
- ``bm3d (package)``: per-frame colour BM3D (``bm3d.bm3d_rgb``, the true sigma given) on a few
  frames only, the quality reference for a single-frame method; it is far too slow for clips.
- ``Restora``: ``Pipeline.restore_file`` (what the worker and ``restora run`` execute: classify
  the noise, pick the level's model, restore, write FFV1), decoded the same way; and, as an
  ablation, the same fusion followed by the classical bilateral filter alone
  (models/video/restorer.py), to show what the learned network adds.

PSNR: mean over frames of per-frame RGB PSNR (peak 255). SSIM: skimage, per channel, on every
``SSIM_EVERY``-th frame. fps: frames / wall time of the whole command (decode + filter + encode for
FFmpeg; decode + classify + restore + encode for Restora), both using every core they want.
"""
from __future__ import annotations

import argparse
import math
import os
import platform
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np

from models.interface import NoiseEstimate
from models.io import RESULTS_DIR, write_report
from models.video.synthetic import Scene, make_clip, split_images

if not hasattr(np, "trapz"):  # bm3d 4.0.3 calls np.trapz, removed in numpy 2.4
    np.trapz = np.trapezoid

SEED = 2026

@dataclass(frozen=True)
class Case:
    """Gaussian noise of ``sigma`` (8-bit units) or, with ``photons``, a colour camera's noise (``sigma`` then
    only scales the FFmpeg filters' strength grids), stored losslessly (FFV1) or, with ``crf``, as H.264 (yuv420p)."""

    sigma: int
    crf: int | None = None
    photons: float | None = None
    fade: bool = False  # the scene fades to 30 % of its brightness and back (models.video.synthetic.Scene.fading)

    @property
    def suffix(self) -> str:
        return ".mp4" if self.crf else ".mkv"


# Report keys: the sigma, plus the codec for compressed clips.
CASES = {"5": Case(5), "15": Case(15), "30": Case(30), "20, H.264 CRF 23": Case(20, 23),
         "camera noise, 60 photons": Case(15, photons=60), "15, fade out and in": Case(15, fade=True)}
SIZE = (640, 360)
FPS = 25
SSIM_EVERY = 5
BM3D_FRAMES = (12, 30)  # frame indices of each sigma's first clip given to per-frame BM3D


@dataclass(frozen=True)
class ClipPlan:
    """Which photos make a clip (indices into ``split_images(split)``) and how long it is."""

    split: str
    background: int
    sprite: int
    frames: int
    seed: int


# Validation photos, in split_images order: camera, coffee, coins, gravel, dead leaves 0 and 1.
EVAL_CLIPS = {
    "5": (ClipPlan("val", 3, 1, 50, 7), ClipPlan("val", 4, 0, 50, 8)),
    "15": (ClipPlan("val", 1, 0, 50, 1), ClipPlan("val", 4, 2, 50, 2)),
    "30": (ClipPlan("val", 5, 3, 50, 3), ClipPlan("val", 1, 2, 50, 4)),
    "20, H.264 CRF 23": (ClipPlan("val", 0, 1, 50, 5), ClipPlan("val", 2, 5, 50, 6)),
    "camera noise, 60 photons": (ClipPlan("val", 1, 3, 50, 9), ClipPlan("val", 5, 0, 50, 10)),
    "15, fade out and in": (ClipPlan("val", 0, 4, 50, 11), ClipPlan("val", 3, 1, 50, 12)),
}
# Training photos: astronaut background, chelsea disc (sources.TRAIN_SOURCES order).
DEV_CLIP = ClipPlan("train", 0, 3, 16, 99)


def _atadenoise(a: float) -> str:
    return f"atadenoise=0a={a}:1a={a}:2a={a}:0b={min(2 * a, 5)}:1b={min(2 * a, 5)}:2b={min(2 * a, 5)}"


# Each filter as a function of its strength, and the strengths tried at sigma 15 (scaled by
# sigma / 15 for other sigmas where the knob is in pixel units, capped at the filter's maximum).
FILTERS: dict[str, tuple[Callable[[float], str], tuple[float, ...], bool, float]] = {
    # name: (filter string, grid at sigma 15, scales with sigma, largest allowed)
    "hqdn3d": (lambda k: f"hqdn3d={k}:{k}:{1.5 * k}:{1.5 * k}", (4, 8, 12, 20, 32), True, 255),
    "nlmeans": (lambda k: f"nlmeans=s={k}", (4, 6, 9, 13), True, 30),
    "atadenoise": (_atadenoise, (0.02, 0.04, 0.08, 0.15, 0.3), False, 0.3),
    "vaguedenoiser": (lambda k: f"vaguedenoiser=threshold={k}", (6, 10, 15, 22, 32), True, 1e9),
    "fftdnoiz": (lambda k: f"fftdnoiz=sigma={k}:prev=1:next=1", (4, 6, 10, 16, 24, 30), True, 30),
    "bm3d": (lambda k: f"bm3d=sigma={k}", (10, 20, 30, 45, 60), True, 999),
    "tmix": (lambda k: f"tmix=frames={int(k)}", (2, 3, 5, 7), False, 128),
}
# Best strength per case on DEV_CLIP (made the case's way), from `python -m models.eval_video --tune`.
TUNED: dict[str, dict[str, float]] = {
    "5": {"hqdn3d": 4.0, "nlmeans": 2.0, "atadenoise": 0.04, "vaguedenoiser": 5.0, "fftdnoiz": 3.333, "bm3d": 10.0, "tmix": 2},
    "15": {"hqdn3d": 12, "nlmeans": 6, "atadenoise": 0.15, "vaguedenoiser": 22, "fftdnoiz": 30, "bm3d": 30, "tmix": 2},
    "30": {"hqdn3d": 40, "nlmeans": 12, "atadenoise": 0.3, "vaguedenoiser": 44, "fftdnoiz": 30, "bm3d": 60, "tmix": 2},
    "camera noise, 60 photons": {"hqdn3d": 12, "nlmeans": 6, "atadenoise": 0.08, "vaguedenoiser": 22, "fftdnoiz": 30, "bm3d": 45, "tmix": 2},
    "20, H.264 CRF 23": {"hqdn3d": 10.667, "nlmeans": 8, "atadenoise": 0.08, "vaguedenoiser": 20, "fftdnoiz": 30, "bm3d": 40, "tmix": 2},
    "15, fade out and in": {"hqdn3d": 12, "nlmeans": 6, "atadenoise": 0.08, "vaguedenoiser": 22, "fftdnoiz": 30, "bm3d": 30, "tmix": 2},
}
QUICK_FILTERS = ("hqdn3d", "tmix")
QUICK_CASES = ("15", "30")
ABLATION = "fusion + bilateral, no network (ablation)"


def grid(name: str, sigma: float) -> list[float]:
    _, values, scales, largest = FILTERS[name]
    factor = sigma / 15 if scales else 1.0
    return sorted({min(round(v * factor, 3), largest) for v in values})


# ----------------------------------------------------------------------------- clips and metrics

def make(plan: ClipPlan, case: Case, path: Path, size: tuple[int, int] = SIZE) -> np.ndarray:
    """Write the noisy clip (FFV1, or H.264 for a compressed case; ``path``'s suffix must match) and return its clean frames, uint8 (T, H, W, 3)."""
    photos = split_images(plan.split, seed=SEED)
    rng = np.random.default_rng([SEED, plan.seed, int(case.sigma)])
    scene = Scene.over(photos[plan.background], photos[plan.sprite], rng, *size, plan.frames)
    scene = scene.fading() if case.fade else scene
    make_clip(path, rng, case.sigma, fps=FPS, audio=False, scene=scene, crf=case.crf or 18, photons=case.photons)
    return np.stack([frame.astype(np.uint8) for frame in scene.clean_frames()])


def decode(path: Path) -> Iterator[np.ndarray]:
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            yield frame.to_ndarray(format="rgb24")


def psnr(clean: np.ndarray, estimate: np.ndarray) -> float:
    mse = float(np.mean((estimate.astype(np.float64) - clean) ** 2))
    return 10 * math.log10(255**2 / max(mse, 1e-12))


def ssim(clean: np.ndarray, estimate: np.ndarray) -> float:
    from skimage.metrics import structural_similarity

    return float(structural_similarity(clean, estimate, channel_axis=2, data_range=255))


def score(clean: np.ndarray, frames: Iterator[np.ndarray]) -> dict[str, Any]:
    """Per-frame PSNR of every frame, SSIM of every SSIM_EVERY-th; the frame count must match."""
    psnrs, ssims, count = [], [], 0
    for i, frame in enumerate(frames):
        psnrs.append(psnr(clean[i], frame))
        if i % SSIM_EVERY == 0:
            ssims.append(ssim(clean[i], frame))
        count += 1
    if count != len(clean):
        raise RuntimeError(f"output has {count} frames, the clip {len(clean)}")
    return {"psnr": float(np.mean(psnrs)), "ssim": float(np.mean(ssims)), "frame_psnr": psnrs}


def run_ffmpeg(filter_string: str, src: Path, dst: Path) -> float:
    """Seconds the whole ffmpeg command took (decode, filter, lossless encode)."""
    command = ["ffmpeg", "-v", "error", "-nostdin", "-y", "-i", str(src), "-an",
               "-vf", f"format=yuv444p,{filter_string},format=gbrp", "-c:v", "ffv1", str(dst)]
    started = time.perf_counter()
    subprocess.run(command, check=True)
    return time.perf_counter() - started


# ----------------------------------------------------------------------------- run

def tune(filters: tuple[str, ...] = tuple(FILTERS), cases: tuple[str, ...] = tuple(CASES), log: Callable[[str], None] = print) -> dict[str, dict[str, float]]:
    """Best strength per filter and case by PSNR on the development clip (training photos)."""
    best: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="restora-tune-") as tmp:
        dst = Path(tmp) / "out.mkv"
        for key in cases:
            case = CASES[key]
            src = Path(tmp) / f"dev{case.suffix}"
            clean = make(DEV_CLIP, case, src)
            best[key] = {}
            for name in filters:
                build, scores = FILTERS[name][0], {}
                for k in grid(name, case.sigma):
                    run_ffmpeg(build(k), src, dst)
                    scores[k] = score(clean, decode(dst))["psnr"]
                best[key][name] = max(scores, key=scores.get)
                log(f"sigma {key} {name}: " + ", ".join(f"{k}: {v:.2f}" for k, v in scores.items()) + f" -> {best[key][name]}")
    return best


def bm3d_frames(clean: np.ndarray, src: Path, sigma: float | None, indices: tuple[int, ...]) -> dict[str, Any]:
    """The ``bm3d`` package on some frames, given the true ``sigma`` (None: each frame's measured error std)."""
    import bm3d

    noisy = [frame for i, frame in enumerate(decode(src)) if i in indices]
    psnrs, ssims, seconds = [], [], 0.0
    for index, frame in zip(indices, noisy):
        started = time.perf_counter()
        true_sigma = sigma if sigma is not None else float(np.std(frame.astype(np.float64) - clean[index]))
        out = bm3d.bm3d_rgb(frame / 255.0, true_sigma / 255.0)
        seconds += time.perf_counter() - started
        restored = np.clip(np.rint(np.asarray(out) * 255), 0, 255).astype(np.uint8)
        psnrs.append(psnr(clean[index], restored))
        ssims.append(ssim(clean[index], restored))
    return {"psnr": float(np.mean(psnrs)), "ssim": float(np.mean(ssims)), "fps": len(indices) / seconds, "frames": list(indices)}


def run_ablation(src: Path, dst: Path, noise: NoiseEstimate) -> float:
    """Seconds to restore ``src`` with the fusion and the bilateral filter alone (the network's input, without it)."""
    from models.video.io import VideoReader, VideoWriter
    from models.video.restorer import VideoRestorer

    started = time.perf_counter()
    model = VideoRestorer(noise.level)
    model.setup("cpu")
    with VideoReader(src) as reader, VideoWriter([dst], reader) as writer:
        for frame in model.predict(reader.frames(), noise):
            writer.write(frame)
    return time.perf_counter() - started


def run(quick: bool = False, log: Callable[[str], None] = print) -> dict[str, Any]:
    from models.pipeline import Pipeline

    pipeline = Pipeline(device="cpu", kinds=("video",))
    filters = QUICK_FILTERS if quick else tuple(FILTERS)
    size = (320, 180) if quick else SIZE
    report: dict[str, Any] = {"sigmas": {}}
    with tempfile.TemporaryDirectory(prefix="restora-eval-video-") as tmp:
        dst = Path(tmp) / "out.mkv"
        for sigma in QUICK_CASES if quick else CASES:
            case = CASES[sigma]
            src = Path(tmp) / f"noisy{case.suffix}"
            plans = EVAL_CLIPS[sigma][:1] if quick else EVAL_CLIPS[sigma]
            rows: dict[str, list[dict[str, Any]]] = {}
            extra: dict[str, Any] = {}
            for c, plan in enumerate(plans):
                if quick:
                    plan = ClipPlan(plan.split, plan.background, plan.sprite, 12, plan.seed)
                clean = make(plan, case, src, size)
                frames = len(clean)

                def record(name: str, seconds: float, path: Path, **more):
                    rows.setdefault(name, []).append({**score(clean, decode(path)), "fps": frames / seconds, **more})
                    log(f"sigma {sigma} clip {c} {name}: {rows[name][-1]['psnr']:.2f} dB, SSIM {rows[name][-1]['ssim']:.4f}, {frames / seconds:.2f} fps")

                rows.setdefault("noisy input", []).append({**score(clean, decode(src)), "fps": float("nan")})
                for name in filters:
                    strength = TUNED[sigma][name]
                    record(name, run_ffmpeg(FILTERS[name][0](strength), src, dst), dst, strength=strength)
                summary = pipeline.restore_file(src, [dst])
                record("Restora", summary.seconds, dst, sigma_estimate=summary.noise.sigma, level=summary.noise.level, model=summary.model.name)
                record(ABLATION, run_ablation(src, dst, summary.noise), dst)
                if c == 0 and not quick:
                    extra["bm3d (package)"] = bm3d_frames(clean, src, None if case.photons else case.sigma, BM3D_FRAMES)
                    extra["Restora on the same frames"] = float(np.mean([rows["Restora"][0]["frame_psnr"][i] for i in BM3D_FRAMES]))
                    log(f"sigma {sigma} bm3d (package): {extra['bm3d (package)']['psnr']:.2f} dB vs Restora {extra['Restora on the same frames']:.2f} dB on frames {BM3D_FRAMES}")
            table = {name: {"psnr": float(np.mean([r["psnr"] for r in v])), "ssim": float(np.mean([r["ssim"] for r in v])),
                            "fps": float(np.mean([r["fps"] for r in v])), "strength": v[0].get("strength")} for name, v in rows.items()}
            report["sigmas"][sigma] = {"table": table, "clips": rows, **extra}
    report["meta"] = {"seed": SEED, "quick": quick, "size": list(size), "fps": FPS, "tuned": TUNED, "ffmpeg": _ffmpeg_version(),
                      "models": pipeline.catalog(), "machine": f"{platform.machine()}, {os.cpu_count()} cpus"}
    report["margins"] = margins(report)
    return report


def margins(report: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for sigma, entry in report["sigmas"].items():
        table = entry["table"]
        ffmpeg = [name for name in table if name in FILTERS]
        best = max(ffmpeg, key=lambda n: table[n]["psnr"])
        out[sigma] = {"best_ffmpeg": best, "psnr_gain": table["Restora"]["psnr"] - table[best]["psnr"],
                      "ssim_gain": table["Restora"]["ssim"] - max(table[n]["ssim"] for n in ffmpeg)}
        if "nlmeans" in table:
            out[sigma]["fps_vs_nlmeans"] = table["Restora"]["fps"] / table["nlmeans"]["fps"]
    return out


def _ffmpeg_version() -> str:
    return subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True).stdout.split("\n")[0]


def _named(key: str) -> str:
    """A case's report key as a heading: "sigma 15", "camera noise, 60 photons"."""
    return key if CASES[key].photons else f"sigma {key}"


def markdown(report: dict[str, Any]) -> str:
    meta = report["meta"]
    w, h = meta["size"]
    lines = ["# Video denoising: Restora vs FFmpeg's denoisers", "",
             f"Generated by `restora eval video` (= `python -m models.eval_video`, seed {meta['seed']}) on {meta['machine']}, "
             f"{meta['ffmpeg']}. Two clips per case, {w} x {h}, 50 frames at {meta['fps']} fps, moving camera and a moving "
             "occluder, Gaussian noise per RGB channel (8-bit units) or, in the camera case, a colour camera's noise "
             "(Poisson + read noise on a linear RGGB mosaic, demosaicked, gamma-encoded), lossless FFV1 or, where the case says so, H.264; "
             "in the fade case the scene fades to 30 % of its brightness and back; "
             "made only from VALIDATION photos "
             "(see models/eval_video.py). FFmpeg filters run on yuv444p with the strength tuned per sigma on a separate "
             "development clip of training photos (`--tune`); every output decoded losslessly. PSNR: mean per-frame RGB PSNR; "
             f"SSIM: every {SSIM_EVERY}th frame; fps: frames / wall time of the whole command (decode + denoise + encode), "
             "same run, machine shared with other jobs.", ""]
    for sigma, entry in report["sigmas"].items():
        lines += [f"## {_named(sigma)}", "", "| method | strength | PSNR (dB) | SSIM | fps |", "|---|---:|---:|---:|---:|"]
        for name, v in entry["table"].items():
            bold = "**" if name == "Restora" else ""
            fps = "" if math.isnan(v["fps"]) else f"{v['fps']:.2f}"
            strength = "" if v["strength"] is None else f"{v['strength']:g}"
            lines.append(f"| {bold}{name}{bold} | {strength} | {bold}{v['psnr']:.2f}{bold} | {bold}{v['ssim']:.4f}{bold} | {fps} |")
        if "bm3d (package)" in entry:
            b = entry["bm3d (package)"]
            lines.append(f"| bm3d (package), frames {b['frames']} of clip 0 only | {_named(sigma) if not CASES[sigma].photons else 'true sigma per frame'} | {b['psnr']:.2f} | {b['ssim']:.4f} | {b['fps']:.3f} |")
            lines += ["", f"On those same frames Restora scores {entry['Restora on the same frames']:.2f} dB."]
        g = report["margins"][sigma]
        lines += ["", f"Restora vs best FFmpeg filter ({g['best_ffmpeg']}): {g['psnr_gain']:+.2f} dB PSNR, {g['ssim_gain']:+.4f} SSIM"
                  + (f"; {g['fps_vs_nlmeans']:.1f}x the fps of nlmeans." if "fps_vs_nlmeans" in g else "."), ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description="Evaluate video denoising (Restora vs FFmpeg filters) on validation clips.")
    parser.add_argument("--quick", action="store_true", help="one 320x180 12-frame clip per sigma, Restora + hqdn3d + tmix; writes eval_video_quick.json")
    parser.add_argument("--tune", action="store_true", help="only re-tune the FFmpeg filters on the development clip and print TUNED")
    parser.add_argument("--filters", nargs="+", choices=tuple(FILTERS), default=tuple(FILTERS), help="with --tune: only these")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)
    if args.tune:
        best = tune(tuple(args.filters))
        print(f"TUNED = {best!r}")
        return best
    report = run(quick=args.quick)
    name = "eval_video_quick" if args.quick else "eval_video"
    write_report(args.out, name, report, markdown(report), with_markdown=not args.quick)
    print(markdown(report))
    return report


if __name__ == "__main__":
    main()
