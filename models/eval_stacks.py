"""Evaluate stack restoration against baselines on seeded synthetic stacks of VALIDATION images only.

    python -m models.eval_stacks            # full run, writes benchmarks/results/eval_stacks.{md,json}
    python -m models.eval_stacks --quick    # 1 stack a level (used by tests), writes eval_stacks_quick.json

Stacks: :func:`models.data.synthetic.make_stack` (100 x 271 x 271, 12-bit) of the validation images
of :func:`models.data.sources.clean_images` (``camera``, ``coffee``, ``coins``, ``gravel`` and
validation dead leaves; never used in training), photons drawn log-uniformly within each level.

Methods, all on the same stacks in the same run (seconds are per stack, wall clock):

- ``frame 0``: the first raw frame.
- ``temporal mean``: the plain mean over frames.
- ``flow-aligned mean``: every frame registered to the temporal mean with OpenCV's DIS optical flow
  (MEDIUM preset), then a second pass registering every frame to that first aligned mean (DATA.md's
  "two passes of OpenCV's DIS"), then the mean.
- ``BM3D (GAT)``: BM3D of the flow-aligned mean under a generalized Anscombe transform. The
  Poisson-Gaussian noise curve (variance = a * signal + c) is measured on raw frames (high-pass
  of flat regions, binned by brightness) and divided by the frame count for the mean.
- ``BM3D deblur``: ``bm3d.bm3d_deblurring`` of the flow-aligned mean (symmetric-padded, since it
  deconvolves with FFTs), same transform, with a Gaussian PSF whose width is fitted per stack to
  the residual blur against the ground truth (an oracle fit that favours this baseline) and a
  per-level strength (noise std multiplier) tuned on TRAIN stacks (``--tune-deblur``).
- ``Restora``: ``models.pipeline.Pipeline.restore_file`` on the stack saved as .npy, exactly what
  the worker and ``restora run`` execute (classifier picks the level, registry picks the model).

Also measured: the stack noise classifier's accuracy and confusion matrix (the restoration stacks
plus extra classification-only stacks), on stacks near the level boundaries, and its photon and
sigma relative errors against the generator's truth.
"""
from __future__ import annotations

import argparse
import copy
import math
import platform
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np

from models.data.sources import clean_images
from models.data.synthetic import BLACK_LEVEL_DN, EXPOSURE_FRACTION, MAX_DN, READ_NOISE_DN, level_of, make_stack, sample_photons
from models.interface import NOISE_LEVELS
from models.io import write_report

if not hasattr(np, "trapz"):  # bm3d 4.0.3 calls np.trapz, removed in numpy 2.4
    np.trapz = np.trapezoid

RESULTS_DIR = Path(__file__).resolve().parent.parent / "benchmarks" / "results"
DATA_RANGE = 4095.0
METHODS = ("frame 0", "temporal mean", "flow-aligned mean", "BM3D (GAT)", "BM3D deblur", "Restora")
BASELINES = METHODS[:-1]
SEED = 2024


# ----------------------------------------------------------------------------- baselines

def _to_u8(image: np.ndarray, lo: float, hi: float) -> np.ndarray:
    return np.clip((image - lo) * (255.0 / max(hi - lo, 1e-6)), 0, 255).astype(np.uint8)


def dis_aligned_mean(stack: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Mean of every frame warped onto ``reference`` with DIS (MEDIUM) optical flow."""
    lo, hi = np.percentile(reference, (0.5, 99.5))
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    ref8 = _to_u8(reference, lo, hi)
    h, w = reference.shape
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    total = np.zeros((h, w), np.float64)
    for frame in stack:
        flow = dis.calc(ref8, _to_u8(frame, lo, hi), None)
        total += cv2.remap(frame, xs + flow[..., 0], ys + flow[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return (total / len(stack)).astype(np.float32)


def flow_aligned_mean(stack: np.ndarray) -> np.ndarray:
    """Two passes of DIS: to the temporal mean, then to that aligned mean."""
    stack = np.asarray(stack, np.float32)
    first = dis_aligned_mean(stack, stack.mean(axis=0))
    return dis_aligned_mean(stack, first)


_THIRD_DIFFERENCE = np.array([1, -3, 3, -1], np.float32) / np.sqrt(20.0)  # unit gain for white noise


def noise_model(image: np.ndarray, bins: int = 12) -> tuple[float, float]:
    """(a, c) of variance = a * signal + c, measured on one (merged) frame.

    Separable third-difference high-pass (removes the smooth scene, keeps white noise at its
    variance) on the flatter half of the image, a chi-square-corrected 25 % quantile of its square
    per brightness bin, then a straight-line fit.
    """
    from scipy.stats import chi2

    image = np.asarray(image, np.float32)
    high = cv2.sepFilter2D(image, cv2.CV_32F, _THIRD_DIFFERENCE, _THIRD_DIFFERENCE, borderType=cv2.BORDER_REFLECT)
    texture = cv2.dilate(np.abs(high), np.ones((5, 5), np.uint8))
    brightness = cv2.blur(image, (4, 4))
    inner = (slice(4, -4), slice(4, -4))
    high, texture, brightness = high[inner].ravel(), texture[inner].ravel(), brightness[inner].ravel()
    flat = texture <= np.median(texture)
    order = np.argsort(brightness[flat])
    levels, squares = brightness[flat][order], high[flat][order] ** 2
    scale = chi2.ppf(0.25, 1)
    x = np.array([part.mean() for part in np.array_split(levels, bins)])
    y = np.array([np.quantile(part, 0.25) / scale for part in np.array_split(squares, bins)])
    keep = x < MAX_DN - 200
    x, y = (x[keep], y[keep]) if keep.sum() >= 2 else (x, y)
    a, c = np.polyfit(x, y, 1) if len(x) >= 2 else (0.0, float(np.mean(y)))
    a = max(float(a), 1e-6)
    c = float(c)
    floor = 0.25 * float(np.min(y))  # keep the variance positive over the whole range
    if a * float(np.min(image)) + c < floor:
        c = floor - a * float(np.min(image))
    return a, c


def anscombe(x: np.ndarray, a: float, c: float) -> np.ndarray:
    """Generalized Anscombe transform for variance a * x + c: unit noise variance."""
    return (2.0 / a) * np.sqrt(np.maximum(a * x + 0.375 * a * a + c, 0.0))


def inverse_anscombe(y: np.ndarray, a: float, c: float) -> np.ndarray:
    """Algebraic inverse (merged frames hold hundreds of photons or more, where it is unbiased enough)."""
    return ((a * y / 2.0) ** 2 - 0.375 * a * a - c) / a


def mean_noise_model(frames: np.ndarray, sampled: int = 8) -> tuple[float, float]:
    """(a, c) for the mean of ``frames``: the raw frames' curve (white noise there) divided by T."""
    picked = frames[:: max(1, len(frames) // sampled)][:sampled]
    models = [noise_model(frame) for frame in picked]
    return float(np.mean([m[0] for m in models])) / len(frames), float(np.mean([m[1] for m in models])) / len(frames)


def bm3d_gat(image: np.ndarray, noise: tuple[float, float]) -> np.ndarray:
    import bm3d

    a, c = noise
    return inverse_anscombe(bm3d.bm3d(anscombe(image, a, c), 1.0), a, c).astype(np.float32)


def fit_psf_sigma(blurred: np.ndarray, truth: np.ndarray) -> float:
    """Gaussian sigma (px) that best turns ``truth`` into ``blurred`` (least squares over a grid)."""
    best, best_err = 0.0, float(np.mean((blurred - truth) ** 2))
    for sigma in np.arange(0.3, 3.01, 0.1):
        err = float(np.mean((cv2.GaussianBlur(truth, (0, 0), sigma) - blurred) ** 2))
        if err < best_err:
            best, best_err = float(sigma), err
    return best


DEBLUR_PAD_PX = 16  # symmetric padding: bm3d_deblurring assumes a periodic image, raw borders ring badly
# Noise std multiplier per level, tuned on TRAIN stacks by `python -m models.eval_stacks --tune-deblur`
# (the merged frame is mostly blurred, not noisy, so weaker regularisation than the noise std wins).
DEBLUR_STRENGTH = {"low": 0.12, "medium": 0.12, "high": 0.12}


def bm3d_deblur(image: np.ndarray, truth: np.ndarray, noise: tuple[float, float], strength: float) -> tuple[np.ndarray, dict[str, float]]:
    """BM3D deblurring under the GAT, Gaussian PSF fitted to the residual blur against the truth (oracle)."""
    import bm3d

    sigma = fit_psf_sigma(image, truth)
    if sigma <= 0:
        return bm3d_gat(image, noise), {"psf_sigma": 0.0, "strength": strength}
    radius = int(math.ceil(4 * sigma))
    psf = bm3d.gaussian_kernel((2 * radius + 1, 2 * radius + 1), sigma)
    a, c = noise
    pad = DEBLUR_PAD_PX
    z = np.pad(anscombe(image, a, c), pad, mode="symmetric")[..., None]  # 3-D: bm3d 4.0.3 fails on 2-D input
    out = np.asarray(bm3d.bm3d_deblurring(z, strength, psf)).reshape(z.shape[:2])[pad:-pad, pad:-pad]
    return inverse_anscombe(out, a, c).astype(np.float32), {"psf_sigma": sigma, "strength": strength}


def tune_deblur(stacks_per_level: int = 4, strengths: tuple[float, ...] = (0.03, 0.06, 0.12, 0.25, 0.5), seed: int = 7, log=print) -> dict[str, float]:
    """Best BM3D-deblur strength per level on TRAIN-image stacks (never the validation images)."""
    best = {}
    for li, level in enumerate(NOISE_LEVELS):
        images = clean_images("train", seed=seed + li)
        scores = {k: [] for k in strengths}
        for i in range(stacks_per_level):
            rng = np.random.default_rng([seed, li, i])
            stack, truth = make_stack(images[(5 * i + li) % len(images)], rng, sample_photons(level, rng))
            frames = stack.astype(np.float32)
            fam, noise = flow_aligned_mean(frames), mean_noise_model(frames)
            for k in strengths:
                scores[k].append(psnr(truth, bm3d_deblur(fam, truth, noise, k)[0]))
        means = {k: float(np.mean(v)) for k, v in scores.items()}
        best[level] = max(means, key=means.get)
        log(f"{level}: " + ", ".join(f"x{k}: {v:.2f} dB" for k, v in means.items()) + f" -> {best[level]}")
    return best


# ----------------------------------------------------------------------------- metrics

def psnr(truth: np.ndarray, estimate: np.ndarray) -> float:
    mse = float(np.mean((np.asarray(estimate, np.float64) - truth) ** 2))
    return 10 * math.log10(DATA_RANGE ** 2 / max(mse, 1e-12))


def ssim(truth: np.ndarray, estimate: np.ndarray) -> float:
    from skimage.metrics import structural_similarity

    return float(structural_similarity(truth.astype(np.float64), np.asarray(estimate, np.float64), data_range=DATA_RANGE))


# ----------------------------------------------------------------------------- data

def replay_truth(rng: np.random.Generator, photons: float, truth: np.ndarray, clean01: np.ndarray) -> dict[str, float] | None:
    """The generator's hidden draws (black, exposure, read noise), replayed from a copy of its rng.

    Checked against the returned ground truth; None if make_stack's draw order ever changes.
    """
    black = rng.uniform(*BLACK_LEVEL_DN)
    exposure = rng.uniform(*EXPOSURE_FRACTION) * MAX_DN
    read_noise = rng.uniform(*READ_NOISE_DN)
    from models.data import synthetic

    scene = clean01.astype(np.float32)
    scene = scene / max(synthetic.brightest_part(scene), 1e-3)
    if not np.allclose(np.minimum(black + exposure * scene, MAX_DN), truth, atol=0.05):
        return None
    return {"black": black, "gain": exposure / photons, "read_noise": read_noise}


def true_sigma(stack: np.ndarray, hidden: dict[str, float]) -> float:
    """Noise std at the median signal of the temporal mean (the classifier's definition of sigma)."""
    signal = float(np.median(np.mean(stack, axis=0, dtype=np.float32)))
    return math.sqrt(hidden["gain"] * max(signal - hidden["black"], 0.0) + hidden["read_noise"] ** 2 + 1 / 12)


def stack_specs(n_per_level: int, seed: int) -> list[dict[str, Any]]:
    """Which image and photon count each restoration stack uses: val images in turn, seeded."""
    specs = []
    for li, level in enumerate(NOISE_LEVELS):
        rng = np.random.default_rng([seed, li])
        for i in range(n_per_level):
            specs.append({"level": level, "image": (i + 2 * li) % 6, "crop_seed": seed + i // 6 + 10 * li, "photons": sample_photons(level, rng), "stack_seed": [seed, li, i]})
    return specs


def classifier_specs(n_per_level: int, boundary_factors: tuple[float, ...], seed: int) -> list[dict[str, Any]]:
    """Extra classification-only stacks: n per level (log-uniform) and some near each boundary."""
    specs = []
    for li, level in enumerate(NOISE_LEVELS):
        rng = np.random.default_rng([seed, 100 + li])
        for i in range(n_per_level):
            specs.append({"set": "levels", "image": i % 6, "crop_seed": seed + 50 + i // 6, "photons": sample_photons(level, rng), "stack_seed": [seed, 100 + li, i]})
    for bi, boundary in enumerate((1000.0, 100.0)):
        for fi, factor in enumerate(boundary_factors):
            specs.append({"set": "boundary", "image": (fi + bi) % 6, "crop_seed": seed + 80 + bi, "photons": boundary * factor, "stack_seed": [seed, 200 + bi, fi]})
    return specs


class ValImages:
    def __init__(self):
        self._cache: dict[int, list[np.ndarray]] = {}

    def get(self, crop_seed: int, index: int) -> np.ndarray:
        if crop_seed not in self._cache:
            self._cache[crop_seed] = clean_images("val", seed=crop_seed)
        return self._cache[crop_seed][index]


def synth(images: ValImages, spec: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, dict[str, float] | None]:
    clean = images.get(spec["crop_seed"], spec["image"])
    rng = np.random.default_rng(spec["stack_seed"])
    replay = copy.deepcopy(rng)
    stack, truth = make_stack(clean, rng, spec["photons"])
    return stack, truth, replay_truth(replay, spec["photons"], truth, clean)


# ----------------------------------------------------------------------------- run

def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - started


def run(n_per_level: int = 8, n_classifier: int = 24, boundary_factors: tuple[float, ...] = (0.8, 0.9, 0.95, 1.05, 1.1, 1.25),
        baselines: tuple[str, ...] = BASELINES, seed: int = SEED, log: Callable[[str], None] = print) -> dict[str, Any]:
    from models.pipeline import Pipeline

    images = ValImages()
    pipeline, load_seconds = timed(lambda: Pipeline(device="cpu", kinds=("stack",)))
    classifier = next(m for name, m in pipeline._loaded.items() if name == "stack-noise")
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="restora-eval-") as tmp:
        src, dst = Path(tmp) / "stack.npy", Path(tmp) / "restored.npy"
        for k, spec in enumerate(stack_specs(n_per_level, seed)):
            stack, truth, hidden = synth(images, spec)
            row: dict[str, Any] = {**spec, "methods": {}}
            frames = stack.astype(np.float32)

            def record(name: str, estimate: np.ndarray, seconds: float, **extra):
                row["methods"][name] = {"psnr": psnr(truth, estimate), "ssim": ssim(truth, estimate), "seconds": seconds, **extra}

            np.save(src, stack)
            summary = pipeline.restore_file(src, [dst])
            record("Restora", np.load(dst), summary.seconds, level_used=summary.noise.level)
            row["classified"] = summary.noise.level
            row["photons_estimate"] = classifier.photons if summary.noise_source == "classifier" else None
            row["sigma_estimate"] = summary.noise.sigma
            row["sigma_true"] = true_sigma(stack, hidden) if hidden else None
            if "frame 0" in baselines:
                record("frame 0", frames[0], 0.0)
            if "temporal mean" in baselines:
                mean, s = timed(lambda: frames.mean(axis=0))
                record("temporal mean", mean, s)
            if any(b in baselines for b in ("flow-aligned mean", "BM3D (GAT)", "BM3D deblur")):
                fam, s_fam = timed(lambda: flow_aligned_mean(frames))
                record("flow-aligned mean", fam, s_fam)
                noise, s_noise = timed(lambda: mean_noise_model(frames))
                if "BM3D (GAT)" in baselines:
                    out, s = timed(lambda: bm3d_gat(fam, noise))
                    record("BM3D (GAT)", out, s_fam + s_noise + s)
                if "BM3D deblur" in baselines:
                    (out, info), s = timed(lambda: bm3d_deblur(fam, truth, noise, DEBLUR_STRENGTH[spec["level"]]))
                    record("BM3D deblur", out, s_fam + s_noise + s, **info)
            results.append(row)
            m = row["methods"]
            log(f"[{k + 1}] {spec['level']:>6} photons {spec['photons']:8.1f} -> {row['classified']:>6}: "
                + ", ".join(f"{n} {v['psnr']:.2f}" for n, v in m.items()) + f" | Restora {m['Restora']['seconds']:.2f} s")

        cls_rows = []
        for spec in classifier_specs(n_classifier, boundary_factors, seed):
            stack, truth, hidden = synth(images, spec)
            estimate, s = timed(lambda: classifier.predict(stack.astype(np.float32)))
            cls_rows.append({**spec, "true": level_of(spec["photons"]), "classified": estimate.level, "seconds": s,
                             "photons_estimate": classifier.photons, "sigma_estimate": estimate.sigma,
                             "sigma_true": true_sigma(stack, hidden) if hidden else None})
    report = summarise(results, cls_rows)
    report["meta"] = {"seed": seed, "stacks_per_level": n_per_level, "classifier_stacks_per_level": n_classifier,
                      "boundary_factors": list(boundary_factors), "pipeline_load_seconds": load_seconds,
                      "models": pipeline.catalog(), "machine": f"{platform.machine()}, {__import__('os').cpu_count()} cpus",
                      "stack_shape": [100, 271, 271]}
    report["stacks"] = results
    report["classifier_stacks"] = cls_rows
    return report


def summarise(results: list[dict[str, Any]], cls_rows: list[dict[str, Any]]) -> dict[str, Any]:
    table: dict[str, dict[str, dict[str, float]]] = {}
    for level in NOISE_LEVELS:
        rows = [r for r in results if r["level"] == level]
        table[level] = {}
        for method in METHODS:
            values = [r["methods"][method] for r in rows if method in r["methods"]]
            if values:
                table[level][method] = {
                    "psnr": float(np.mean([v["psnr"] for v in values])),
                    "ssim": float(np.mean([v["ssim"] for v in values])),
                    "seconds": float(np.median([v["seconds"] for v in values])),
                    "n": len(values),
                }
    margins = {}
    for level, methods in table.items():
        base = [m for m in methods if m != "Restora"]
        if base and "Restora" in methods:
            best = max(base, key=lambda m: methods[m]["psnr"])
            best_ssim = max(methods[m]["ssim"] for m in base)
            margins[level] = {"best_baseline": best, "psnr_gain": methods["Restora"]["psnr"] - methods[best]["psnr"],
                              "ssim_gain": methods["Restora"]["ssim"] - best_ssim}
    all_rows = [{"true": r["level"], "classified": r["classified"], "photons": r["photons"], "photons_estimate": r["photons_estimate"],
                 "sigma_estimate": r["sigma_estimate"], "sigma_true": r["sigma_true"]} for r in results]
    all_rows += [r for r in cls_rows if r["set"] == "levels"]
    boundary = [r for r in cls_rows if r["set"] == "boundary"]
    restora_seconds = [r["methods"]["Restora"]["seconds"] for r in results]
    deblur_seconds = [r["methods"]["BM3D deblur"]["seconds"] for r in results if "BM3D deblur" in r["methods"]]
    return {
        "table": table,
        "margins": margins,
        "timing": {
            "restora_median_seconds": float(np.median(restora_seconds)),
            "restora_max_seconds": float(np.max(restora_seconds)),
            "bm3d_deblur_median_seconds": float(np.median(deblur_seconds)) if deblur_seconds else None,
            "speedup_vs_bm3d_deblur": float(np.median(deblur_seconds) / np.median(restora_seconds)) if deblur_seconds else None,
        },
        "classifier": {"levels": classifier_summary(all_rows), "boundary": classifier_summary(boundary)},
    }


def classifier_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    if not rows:
        return {}
    confusion = {t: {p: 0 for p in NOISE_LEVELS} for t in NOISE_LEVELS}
    for r in rows:
        confusion[r["true"]][r["classified"]] += 1
    correct = sum(confusion[level][level] for level in NOISE_LEVELS)
    photon_err = [abs(r["photons_estimate"] / r["photons"] - 1) for r in rows if r.get("photons_estimate") not in (None, float("inf"))]
    sigma_err = [abs(r["sigma_estimate"] / r["sigma_true"] - 1) for r in rows if r.get("sigma_true")]
    return {
        "n": len(rows),
        "accuracy": correct / len(rows),
        "confusion": confusion,
        "photons_rel_error_median": float(np.median(photon_err)) if photon_err else None,
        "photons_rel_error_p90": float(np.percentile(photon_err, 90)) if photon_err else None,
        "sigma_rel_error_median": float(np.median(sigma_err)) if sigma_err else None,
        "sigma_rel_error_p90": float(np.percentile(sigma_err, 90)) if sigma_err else None,
    }


def markdown(report: dict[str, Any]) -> str:
    meta = report["meta"]
    lines = ["# Stack restoration: Restora vs baselines", "",
             f"Generated by `python -m models.eval_stacks` (seed {meta['seed']}). {meta['stacks_per_level']} stacks per level, "
             f"each {meta['stack_shape'][0]} x {meta['stack_shape'][1]} x {meta['stack_shape'][2]}, 12-bit, made by "
             "`models.data.synthetic.make_stack` from VALIDATION images only (skimage camera, coffee, coins, gravel and "
             "validation dead leaves; see models/data/sources.py). PSNR (data range 4095) and SSIM (skimage, data_range 4095) "
             "against the still, sharp ground truth, averaged over stacks; seconds = median wall time per stack on "
             f"{meta['machine']} (Restora: `Pipeline.restore_file`, i.e. read + classify + restore + write; model load "
             f"{meta['pipeline_load_seconds']:.2f} s excluded). Baselines are described in models/eval_stacks.py.", ""]
    for level, methods in report["table"].items():
        lines += [f"## {level} noise", "", "| method | PSNR (dB) | SSIM | s / stack |", "|---|---:|---:|---:|"]
        for name, v in methods.items():
            bold = "**" if name == "Restora" else ""
            lines.append(f"| {bold}{name}{bold} | {bold}{v['psnr']:.2f}{bold} | {bold}{v['ssim']:.4f}{bold} | {v['seconds']:.2f} |")
        if level in report["margins"]:
            g = report["margins"][level]
            lines.append("")
            lines.append(f"Restora vs best baseline ({g['best_baseline']}): {g['psnr_gain']:+.2f} dB PSNR, {g['ssim_gain']:+.4f} SSIM.")
        lines.append("")
    t = report["timing"]
    lines += ["## Speed", "", f"Restora median {t['restora_median_seconds']:.2f} s per stack (max {t['restora_max_seconds']:.2f} s)"
              + (f"; BM3D deblur median {t['bm3d_deblur_median_seconds']:.2f} s, Restora {t['speedup_vs_bm3d_deblur']:.1f}x faster." if t["bm3d_deblur_median_seconds"] else "."), ""]
    for name, title in (("levels", "validation stacks (restoration set + classification-only set)"), ("boundary", "stacks near the level boundaries (photons = boundary x factor)")):
        c = report["classifier"].get(name)
        if not c:
            continue
        lines += [f"## Noise classifier: {title}", "", f"Accuracy {100 * c['accuracy']:.1f} % of {c['n']} stacks.", "",
                  "| true \\ classified | " + " | ".join(NOISE_LEVELS) + " |", "|---|" + "---:|" * len(NOISE_LEVELS)]
        for level in NOISE_LEVELS:
            lines.append(f"| {level} | " + " | ".join(str(c["confusion"][level][p]) for p in NOISE_LEVELS) + " |")
        if c["photons_rel_error_median"] is not None:
            lines.append("")
            lines.append(f"Photon estimate relative error: median {100 * c['photons_rel_error_median']:.1f} %, 90th percentile {100 * c['photons_rel_error_p90']:.1f} %.")
        if c["sigma_rel_error_median"] is not None:
            lines.append(f"Sigma (noise std at the median signal) relative error: median {100 * c['sigma_rel_error_median']:.1f} %, 90th percentile {100 * c['sigma_rel_error_p90']:.1f} %.")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description="Evaluate stack restoration (Restora vs baselines) on validation stacks.")
    parser.add_argument("--quick", action="store_true", help="1 stack a level, no BM3D, small classifier set; writes eval_stacks_quick.json")
    parser.add_argument("--stacks", type=int, default=8, help="restoration stacks per level")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    parser.add_argument("--tune-deblur", action="store_true", help="only tune the BM3D-deblur strength per level on train stacks")
    args = parser.parse_args(argv)
    if args.tune_deblur:
        return tune_deblur()
    if args.quick:
        report = run(n_per_level=1, n_classifier=2, boundary_factors=(0.8, 1.25), baselines=("frame 0", "temporal mean", "flow-aligned mean"))
        name = "eval_stacks_quick"
    else:
        report = run(n_per_level=args.stacks)
        name = "eval_stacks"
    write_report(args.out, name, report, markdown(report), with_markdown=not args.quick)
    print(markdown(report))
    return report


if __name__ == "__main__":
    main()
