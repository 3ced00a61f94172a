"""Evaluate single-image restoration against BM3D / CBM3D, tuned non-local means and the input.

    python -m models.eval_images            # full run, writes benchmarks/results/eval_images.{md,json}
    python -m models.eval_images --quick    # two small gray crops, Restora and the input only (tests), eval_images_quick.json
    python -m models.eval_images --tune     # re-tune the non-local means strength on TRAINING images, print NLM_FACTOR

Images: centre crops (``CROP`` px) of held-out photos only, never used in training
(:mod:`models.data.image_pairs`): gray: skimage ``camera``, ``coins``, ``gravel`` and the gray
versions of ``coffee`` and matplotlib's ``grace_hopper``; colour: two crops each of ``coffee`` and
``grace_hopper``. Degradations (8-bit files, clipped and rounded; seeded): Gaussian noise of sigma
15, 25 and 50; camera raw noise (Poisson-Gaussian on linear light, RGGB mosaic, demosaicked,
gamma-encoded) at 30 and 300 photons at white; JPEG at quality 30 and 60; Gaussian sigma 10
then JPEG 50 (``mixed``); and none (``clean``: a restorer must leave it alone).

Methods, same images, same run:

- ``input``: the degraded image itself.
- ``BM3D (true sigma)``: the ``bm3d`` package (``bm3d_rgb`` for colour), given the TRUE standard
  deviation of the degradation's error (for JPEG and camera noise: the std of degraded - clean):
  an oracle in its favour.
- ``NLM (tuned)``: OpenCV ``fastNlMeansDenoising`` / ``fastNlMeansDenoisingColored`` with
  ``h = NLM_FACTOR x`` the true sigma, the factor tuned on training images (``--tune``).
- ``Restora``: the served path: the image noise classifier, then the registry's restorer for
  that level (models/image/learned.py).

PSNR (peak 255) and SSIM on all channels; seconds per megapixel of each method on this machine
(wall time, same run; BM3D and NLM use the cores they want, Restora the torch threads it is given).
"""
from __future__ import annotations

import argparse
import math
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from models.data.image_pairs import add_gaussian, camera_noise, clean_images, jpeg, jpeg_step_at, load_rgb
from models.io import RESULTS_DIR, write_report
from models.registry import classifier_for, restorer_for
from models.stack.still import load_bm3d

SEED = 2026
CROP = 256
GRAY_PHOTOS = ("camera", "coins", "gravel", "coffee", "grace_hopper")
COLOUR_PHOTOS = ("coffee", "grace_hopper")
# Best h / sigma per channel count on training crops, from `python -m models.eval_images --tune`.
NLM_FACTOR = {"gray": 1.0, "colour": 0.8}
TUNE_FACTORS = (0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.2)
NLM_TEMPLATE, NLM_SEARCH = 7, 21
SPEED_SIGMA = 15  # level medium: the network and the SURE pass, the slowest path


def _eight_bit(image: np.ndarray) -> np.ndarray:
    return (np.rint(np.clip(image, 0.0, 1.0) * 255) / 255).astype(np.float32)


JPEG_QUALITY = {"jpeg q60": 60, "jpeg q30": 30, "mixed: sigma 10 + jpeg q50": 50}  # the classifier is told their files' quantisation


def degradations(rng: np.random.Generator) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    """Name -> function of a clean RGB 0..1 image giving the 8-bit degraded file's values (0..1)."""
    return {
        "sigma 15": lambda c: _eight_bit(add_gaussian(c, 15, rng)),
        "sigma 25": lambda c: _eight_bit(add_gaussian(c, 25, rng)),
        "sigma 50": lambda c: _eight_bit(add_gaussian(c, 50, rng)),
        "camera 300 photons": lambda c: _eight_bit(camera_noise(c, 300, 0.002, rng)),
        "camera 30 photons": lambda c: _eight_bit(camera_noise(c, 30, 0.004, rng)),
        "jpeg q60": lambda c: jpeg(c, JPEG_QUALITY["jpeg q60"]),
        "jpeg q30": lambda c: jpeg(c, JPEG_QUALITY["jpeg q30"]),
        "mixed: sigma 10 + jpeg q50": lambda c: jpeg(_eight_bit(add_gaussian(c, 10, rng)), JPEG_QUALITY["mixed: sigma 10 + jpeg q50"]),
        "clean": lambda c: _eight_bit(c),
    }


def held_out_images(quick: bool) -> dict[str, list[tuple[str, np.ndarray]]]:
    """'gray' and 'colour' lists of (name, clean image in 8-bit units): gray (H, W), colour (H, W, 3)."""
    crop = 96 if quick else CROP

    def crops(image: np.ndarray, count: int) -> list[np.ndarray]:
        h, w = image.shape[:2]
        ys = [(h - crop) // 2] if count == 1 else [h // 4 - crop // 4, h - crop - (h // 4 - crop // 4)]
        return [image[max(0, y):max(0, y) + crop, (w - crop) // 2:(w - crop) // 2 + crop] for y in ys]

    photos = {name: load_rgb(name) for name in set(GRAY_PHOTOS + COLOUR_PHOTOS)}
    photos = {k: np.rint(v * 255) for k, v in photos.items() if v is not None}
    gray = [(n, crops(photos[n].mean(axis=2), 1)[0]) for n in GRAY_PHOTOS if n in photos]
    colour = [(f"{n} {i}", c) for n in COLOUR_PHOTOS if n in photos for i, c in enumerate(crops(photos[n], 2))]
    if quick:
        return {"gray": gray[:2], "colour": []}
    return {"gray": gray, "colour": colour}


def psnr(clean: np.ndarray, estimate: np.ndarray) -> float:
    mse = float(np.mean((np.asarray(estimate, np.float64) - clean) ** 2))
    return 10 * math.log10(255**2 / max(mse, 1e-12))


def ssim(clean: np.ndarray, estimate: np.ndarray) -> float:
    from skimage.metrics import structural_similarity

    return float(structural_similarity(clean.astype(np.float64), np.asarray(estimate, np.float64), data_range=255,
                                       channel_axis=2 if clean.ndim == 3 else None))


def bm3d_denoise(noisy: np.ndarray, sigma: float) -> np.ndarray:
    bm3d = load_bm3d(required=True)
    if sigma <= 0:
        return noisy.copy()
    if noisy.ndim == 3:
        return np.asarray(bm3d.bm3d_rgb(noisy / 255, sigma / 255)) * 255
    return np.asarray(bm3d.bm3d(noisy / 255, sigma / 255)).reshape(noisy.shape) * 255


def nlm_denoise(noisy: np.ndarray, sigma: float, factor: float) -> np.ndarray:
    import cv2

    if sigma <= 0:
        return noisy.copy()
    pixels = np.clip(np.rint(noisy), 0, 255).astype(np.uint8)
    h = factor * sigma
    if noisy.ndim == 3:
        return cv2.fastNlMeansDenoisingColored(pixels, None, h, h, NLM_TEMPLATE, NLM_SEARCH).astype(np.float32)
    return cv2.fastNlMeansDenoising(pixels, None, h, NLM_TEMPLATE, NLM_SEARCH).astype(np.float32)


def timed(fn: Callable[[], np.ndarray]) -> tuple[np.ndarray, float]:
    started = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - started


def as_rgb(image: np.ndarray) -> np.ndarray:
    return image / 255 if image.ndim == 3 else np.repeat(image[..., None] / 255, 3, axis=2)


def degraded_image(make: Callable[[np.ndarray], np.ndarray], clean: np.ndarray) -> np.ndarray:
    """The degraded file's values in 8-bit units, gray (H, W) for a gray clean image."""
    out = make(as_rgb(clean).astype(np.float32)) * 255
    return out[..., 0] if clean.ndim == 2 else out


def run(quick: bool = False, log: Callable[[str], None] = print) -> dict[str, Any]:
    from models.interface import no_progress

    classifier = classifier_for("image").build("cpu")
    restorers: dict[str, Any] = {}
    rng = np.random.default_rng(SEED)
    makers = degradations(rng)
    if quick:
        makers = {k: makers[k] for k in ("sigma 25", "jpeg q30", "clean")}
    results: dict[str, Any] = {}
    for group, images in held_out_images(quick).items():
        if not images:
            continue
        for degradation, make in makers.items():
            rows = []
            for name, clean in images:
                noisy = degraded_image(make, clean)
                true_sigma = float(np.std(noisy - clean))
                row: dict[str, Any] = {"image": name, "true_sigma": true_sigma, "methods": {}}

                def record(method: str, out: np.ndarray, seconds: float) -> None:
                    row["methods"][method] = {"psnr": psnr(clean, out), "ssim": ssim(clean, out),
                                              "s_per_mp": seconds / (clean.shape[0] * clean.shape[1] / 1e6)}

                record("input", noisy, 0.0)
                if not quick:
                    record("BM3D (true sigma)", *timed(lambda: bm3d_denoise(noisy, true_sigma)))
                    record("NLM (tuned)", *timed(lambda: nlm_denoise(noisy, true_sigma, NLM_FACTOR[group])))
                started = time.perf_counter()
                facts = {"jpeg_step": jpeg_step_at(JPEG_QUALITY[degradation])} if degradation in JPEG_QUALITY else {}
                estimate = classifier.predict(noisy, **facts)
                if estimate.level not in restorers:
                    restorers[estimate.level] = restorer_for("image", estimate.level).build("cpu")
                out = restorers[estimate.level].predict(noisy, estimate, no_progress)
                record("Restora", out, time.perf_counter() - started)
                row["level"], row["sigma_estimate"] = estimate.level, estimate.sigma
                rows.append(row)
            methods = list(rows[0]["methods"])
            summary = {m: {k: float(np.mean([r["methods"][m][k] for r in rows])) for k in ("psnr", "ssim", "s_per_mp")} for m in methods}
            results.setdefault(group, {})[degradation] = {"mean": summary, "images": rows}
            log(f"{group:6s} {degradation:28s} " + "  ".join(f"{m} {v['psnr']:.2f}" for m, v in summary.items()))
    import torch

    speed = {} if quick else megapixel_speed(classifier, restorers.get("medium") or restorer_for("image", "medium").build("cpu"))
    if speed:
        log(f"1-megapixel colour image: {speed['median_s']:.2f} s median of {speed['runs']}")
    return {"results": results, "margins": margins(results), "speed": speed,
            "meta": {"seed": SEED, "quick": quick, "crop": 96 if quick else CROP, "nlm_factor": NLM_FACTOR,
                     "torch_threads": torch.get_num_threads(), "cpu_count": os.cpu_count(), "machine": platform.machine()}}


def megapixel_speed(classifier, restorer, runs: int = 3) -> dict[str, Any]:
    """Median seconds of classify + restore on a 1024 x 1024 colour image with noise of sigma
    ``SPEED_SIGMA`` (model load excluded)."""
    from models.interface import no_progress

    rng = np.random.default_rng(SEED)
    noisy = np.clip(rng.normal(128, SPEED_SIGMA, (1024, 1024, 3)), 0, 255).astype(np.float32)
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        restorer.predict(noisy, classifier.predict(noisy), no_progress)
        seconds.append(time.perf_counter() - started)
    return {"megapixels": 1024 * 1024 / 1e6, "runs": runs, "median_s": float(np.median(seconds)), "seconds": seconds}


def margins(results: dict[str, Any]) -> dict[str, Any]:
    """Restora minus the best baseline (input included) per group and degradation, and minus BM3D."""
    out: dict[str, Any] = {}
    for group, table in results.items():
        for degradation, entry in table.items():
            mean = entry["mean"]
            baselines = {m: v["psnr"] for m, v in mean.items() if m != "Restora"}
            best = max(baselines, key=baselines.get)
            margin = {"best_baseline": best, "vs_best_db": mean["Restora"]["psnr"] - baselines[best],
                      "ssim_vs_best": mean["Restora"]["ssim"] - mean[best]["ssim"]}
            if "BM3D (true sigma)" in mean:
                margin["vs_bm3d_db"] = mean["Restora"]["psnr"] - mean["BM3D (true sigma)"]["psnr"]
            out.setdefault(group, {})[degradation] = margin
    return out


def tune(log: Callable[[str], None] = print) -> dict[str, float]:
    """The NLM factor per group that maximises mean PSNR over Gaussian sigma 15/25/50 on training crops."""
    rng = np.random.default_rng(SEED + 1)
    train = [np.rint(image[:CROP, :CROP] * 255) for image in clean_images("train", seed=SEED)[:7]]
    groups = {"gray": [t.mean(axis=2) for t in train], "colour": train}
    best = {}
    for group, images in groups.items():
        scores = {}
        for factor in TUNE_FACTORS:
            values = []
            for sigma in (15, 25, 50):
                for clean in images:
                    noisy = degraded_image(lambda c: _eight_bit(add_gaussian(c, sigma, rng)), clean)
                    values.append(psnr(clean, nlm_denoise(noisy, float(np.std(noisy - clean)), factor)))
            scores[factor] = float(np.mean(values))
            log(f"{group} factor {factor}: {scores[factor]:.2f} dB")
        best[group] = max(scores, key=scores.get)
    return best


def markdown(report: dict[str, Any]) -> str:
    meta = report["meta"]
    lines = ["# Single-image restoration: held-out photos", "",
             f"Command: `python -m models.eval_images` (seed {meta['seed']}, {meta['crop']} px centre crops of held-out photos; "
             "see models/eval_images.py). BM3D gets the TRUE sigma of each degradation's error (an oracle in its favour); "
             f"NLM uses h = factor x true sigma with the factor tuned on training images ({meta['nlm_factor']}). "
             "PSNR peak 255; s/MP: wall seconds per megapixel, same run.", ""]
    for group, table in report["results"].items():
        methods = list(next(iter(table.values()))["mean"])
        lines += [f"## {group}", "", "| degradation | " + " | ".join(f"{m} PSNR / SSIM" for m in methods) + " | Restora vs best baseline |",
                  "|---|" + "---:|" * (len(methods) + 1)]
        for degradation, entry in table.items():
            cells = [f"{v['psnr']:.2f} / {v['ssim']:.3f}" for v in entry["mean"].values()]
            m = report["margins"][group][degradation]
            lines.append(f"| {degradation} | " + " | ".join(cells) + f" | {m['vs_best_db']:+.2f} dB ({m['best_baseline']}) |")
        speeds = {m: np.mean([e["mean"][m]["s_per_mp"] for e in table.values()]) for m in methods if m != "input"}
        lines += ["", "Seconds per megapixel (256 px crops, per-call overhead included): "
                  + ", ".join(f"{m} {v:.2f}" for m, v in speeds.items()), ""]
    if report.get("speed"):
        sp = report["speed"]
        lines += [f"Restora on a 1024 x 1024 colour image at sigma {SPEED_SIGMA} (level medium, the slowest path; "
                  f"classify + restore, model loaded): {sp['median_s']:.2f} s, "
                  f"median of {sp['runs']} ({sp['median_s'] / sp['megapixels']:.2f} s per megapixel).", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description="Evaluate single-image restoration on held-out photos.")
    parser.add_argument("--quick", action="store_true", help="two small gray crops, Restora and input only; writes eval_images_quick.json")
    parser.add_argument("--tune", action="store_true", help="only re-tune the NLM factor on training images and print it")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)
    if args.tune:
        best = tune()
        print(f"NLM_FACTOR = {best!r}")
        return best
    report = run(quick=args.quick)
    write_report(args.out, "eval_images_quick" if args.quick else "eval_images", report, markdown(report), with_markdown=not args.quick)
    print(markdown(report))
    return report


if __name__ == "__main__":
    main()
