"""Evaluate stack restoration per degradation family and noise level, against strong baselines in the
same run, on seeded synthetic stacks of VALIDATION images only.

    python -m models.eval_stacks                # full run: benchmarks/results/eval_stacks.{md,json}
    python -m models.eval_stacks --quick        # small and fast (used by the tests): eval_stacks_quick.json
    python -m models.eval_stacks --tune-deblur  # tune the BM3D baseline's PSF width and strength on TRAIN stacks

Stacks: ``--stacks N`` (default 3) per family and level, for every family of
:data:`models.data.families.FAMILIES` (``current``, ``wide``, ``physics``, ``static``, ``sharp``) and every level,
made from the validation images of :func:`models.data.sources.clean_images` (skimage ``camera``,
``coffee``, ``coins``, ``gravel``, validation dead leaves and printed patterns: never used in
training), photons drawn log-uniformly within the level, every stack from its own seed. Shapes:
``current`` and ``physics`` 100 x 271 x 271, ``static`` 20 x 271 x 271 (noise only), ``wide`` its own
frame count (8 to 300) at sizes cycling through 128, 192, 271 and 384 px, ``sharp`` its own frame count
at 271 px.

Methods (PSNR with data range 4095 and SSIM against the still, sharp truth; seconds = wall clock per stack):

- ``temporal mean``: the mean over frames.
- ``aligned mean (DIS x2)``: every frame registered to the temporal mean with OpenCV's DIS flow (MEDIUM
  preset), then again to that first aligned mean (two passes of OpenCV's DIS: the classical recipe), then the mean.
- ``BM3D denoise (tuned)``: BM3D of the aligned mean under a generalized Anscombe transform (noise
  curve measured on the stack by :func:`models.stack.noise.units_per_photon`, divided by the frame
  count), ONE strength per level tuned on TRAINING stacks of every family by ``--tune-deblur``.
- ``BM3D denoise of the temporal mean``: the same BM3D (same strength) of the plain temporal mean: on a
  still stack the classical answer needs no registration, whose flows fitted to noise blur the mean a little.
- ``BM3D deblur (tuned PSF)``: ``bm3d.bm3d_deblurring`` of the aligned mean under the same transform,
  with ONE Gaussian PSF width and ONE strength per level, tuned on TRAINING stacks of the turbulent
  families (all but ``static``) by ``--tune-deblur`` (re-run on 2026-12-02 with every family and
  the clipping below: the recorded settings again; high's 0.7 px x0.5 at 27.16 dB on the training
  stacks against 0.4 px x0.25 at 27.08). Neither BM3D row is fitted to the evaluated stack; both are
  given the level the stack was made at (spared classifier errors), and both are clipped to the
  stack's raw range, as Restora's result is (a fixed PSF rings far outside it on a sharp, nearly
  noiseless mean: up to 7x the 12-bit ceiling on one still evaluation stack).
- ``Restora``: :meth:`models.pipeline.Pipeline.restore_file` on the stack saved as .npy, what the
  worker and ``restora run`` execute (the classifier picks the level, the registry the model).
- ``Restora LOFO`` (``wide`` and ``physics`` only): the same restorer with the level's network (and its
  partners, where the registry averages several) trained WITHOUT that family
  (``models/weights/lofo/stack-{level}-without-{family}.pt``), at the level the pipeline's classifier
  reported; skipped, and the report says so, where such a file does not exist.

Reference rows, never counted as "best baseline" (they use what no real capture comes with):

- ``BM3D deblur (oracle PSF)``: as the tuned row, but the Gaussian PSF width fitted per stack to the
  residual blur against the ground truth, and the strength (or the tuned pair) that scores best against it.
- ``upper bound (true displacements)``: the mean of the frames unwarped with the simulator's true
  displacements: perfect registration, still blurred and noisy. (Restora - aligned mean) /
  (upper bound - aligned mean) is the share of the registration headroom that Restora closes.
- ``centred bound (true displacements less their mean)``: the same with each pixel's displacements less
  their mean over the frames: the frames registered perfectly to their mean geometry, which is all the
  frames themselves can tell (a scene seen only moving cannot show where it stands still). Where the
  displacements do not average out (few frames, slow wobble), this is far below the upper bound; the
  gap between the two is headroom no registration can close.

Also reported: per family and level, Restora's and LOFO's margins over the best non-reference
baseline and the worst single-stack difference Restora - aligned mean (``static``: also Restora -
temporal mean); per family, the noise classifier's accuracy and confusion matrix on the evaluation
stacks plus ``--classifier-stacks K`` classification-only stacks (192 px) per family and level, and
its photon and sigma errors against the generator's truth; scale-freedom (the first stack of each
family and level restored as uint16, float32 DN and float32 / 4095: same level, PSNR within 0.05 dB);
speed (median Restora seconds on three 100 x 271 x 271 and three 100 x 512 x 512 ``current`` stacks,
measured after the quality runs with nothing else running, model load excluded, and as seconds
per megapixel-frame). ``--jobs 2`` runs the quality part in two processes (one thread each).
"""
from __future__ import annotations

import argparse
import math
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np

from models.data.families import FAMILIES
from models.data.sources import DEAD_LEAVES_PER_SPLIT, PRINTED_TARGETS_PER_SPLIT, VAL_SOURCES, clean_images
from models.data.synthetic import MAX_DN, SimulatedStack, level_of, sample_photons
from models.interface import NOISE_LEVELS
from models.io import RESULTS_DIR, write_report
from models.registry import REGISTRY, restorer_for
from models.stack.learned import input_bounds
from models.stack.noise import units_per_photon
from models.stack.still import anscombe, bm3d_of_mean, inverse_anscombe, load_bm3d

LOFO_DIR = Path(__file__).resolve().parent / "weights" / "lofo"
DATA_RANGE = 4095.0
SEED = 2024

FAMILY_NAMES = tuple(FAMILIES)
LOFO_FAMILIES = ("wide", "physics")
STACK_SIZE = 271
WIDE_SIZES = (128, 192, 271, 384)
CLASSIFIER_SIZE = 192
SPEED_SHAPE = (100, 512, 512)
N_VAL_IMAGES = len(VAL_SOURCES) + DEAD_LEAVES_PER_SPLIT["val"] + PRINTED_TARGETS_PER_SPLIT["val"]

MEAN, ALIGNED, DENOISED = "temporal mean", "aligned mean (DIS x2)", "BM3D denoise (tuned)"
MEAN_DENOISED = "BM3D denoise of the temporal mean"
TUNED, ORACLE = "BM3D deblur (tuned PSF)", "BM3D deblur (oracle PSF)"
UPPER, CENTRED = "upper bound (true displacements)", "centred bound (true displacements less their mean)"
RESTORA, LOFO = "Restora", "Restora LOFO"
METHODS = (MEAN, ALIGNED, DENOISED, MEAN_DENOISED, TUNED, ORACLE, UPPER, CENTRED, RESTORA, LOFO)
BASELINES = (MEAN, ALIGNED, DENOISED, MEAN_DENOISED, TUNED)  # candidates for "best baseline"
REFERENCES = (ORACLE, UPPER, CENTRED)  # use the ground truth or the simulator's hidden state
HEADROOM_BOUNDS = (("headroom", UPPER, "upper bound"), ("centred_headroom", CENTRED, "centred bound"))  # margin key, row, short name
SCALE_TOLERANCE_DB = 0.05
# What --quick runs: every family and level once, small (128 px, 30 frames), no BM3D, LOFO, scale or speed checks.
QUICK_RUN: dict[str, Any] = {"stacks": 1, "classifier_stacks": 0, "size": 128, "frames": 30,
                             "methods": (MEAN, ALIGNED, UPPER, RESTORA), "scale_check": False, "speed_stacks": 0}

# BM3D baselines, per level: the denoising strength and the deblurring PSF width (px) and strength (the
# noise std passed to BM3D, in units of the transformed noise std), as printed by
# `python -m models.eval_stacks --tune-deblur` (train stacks, 128 px, 2 per family and level, seed 7).
DENOISE_STRENGTH = {"low": 0.5, "medium": 1.0, "high": 1.0}
DEBLUR_PSF_PX = {"low": 0.4, "medium": 0.7, "high": 0.7}
DEBLUR_STRENGTH = {"low": 0.5, "medium": 0.25, "high": 0.5}
TUNE_PSF_PX = (0.4, 0.7, 1.0)
TUNE_STRENGTHS = (0.12, 0.25, 0.5, 1.0)
ORACLE_STRENGTHS = (0.25, 0.5)  # the oracle row tries each with its fitted PSF (and the tuned pair) and keeps the best
DEBLUR_PAD_PX = 16  # symmetric padding: bm3d_deblurring assumes a periodic image, raw borders ring badly


# ----------------------------------------------------------------------------- baselines

def _to_u8(image: np.ndarray, lo: float, hi: float) -> np.ndarray:
    return np.clip((image - lo) * (255.0 / max(hi - lo, 1e-6)), 0, 255).astype(np.uint8)


def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    return np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))


def dis_aligned_mean(stack: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Mean of every frame warped onto ``reference`` with DIS (MEDIUM) optical flow."""
    lo, hi = np.percentile(reference, (0.5, 99.5))
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    ref8 = _to_u8(reference, lo, hi)
    xs, ys = _grid(*reference.shape)
    total = np.zeros(reference.shape, np.float64)
    for frame in stack:
        flow = dis.calc(ref8, _to_u8(frame, lo, hi), None)
        total += cv2.remap(frame, xs + flow[..., 0], ys + flow[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return (total / len(stack)).astype(np.float32)


def flow_aligned_mean(stack: np.ndarray) -> np.ndarray:
    """Two passes of DIS: to the temporal mean, then to that aligned mean."""
    stack = np.asarray(stack, np.float32)
    first = dis_aligned_mean(stack, stack.mean(axis=0))
    return dis_aligned_mean(stack, first)


def unwarped_mean(stack: np.ndarray, displacements: np.ndarray, iterations: int = 4) -> np.ndarray:
    """Mean of the frames unwarped with the true displacements (the registration upper bound).

    Frame t at y shows the scene at y + d_t(y); the scene at x is the frame at y = x + u with
    u = -d_t(x + u), solved by fixed-point iteration.
    """
    xs, ys = _grid(*stack.shape[1:])
    total = np.zeros(stack.shape[1:], np.float64)
    for frame, d in zip(stack, displacements):
        u = -d
        for _ in range(iterations - 1):
            u = -cv2.remap(d, xs + u[..., 0], ys + u[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        total += cv2.remap(np.asarray(frame, np.float32), xs + u[..., 0], ys + u[..., 1], cv2.INTER_CUBIC,
                           borderMode=cv2.BORDER_REPLICATE)
    return (total / len(stack)).astype(np.float32)


def centred_mean(stack: np.ndarray, displacements: np.ndarray) -> np.ndarray:
    """Mean of the frames registered perfectly to their mean geometry (the centred bound): unwarped with
    each pixel's displacements less their mean over the frames, which is all the frames can show."""
    return unwarped_mean(stack, displacements - displacements.mean(axis=0))


def mean_noise(frames: np.ndarray) -> tuple[float, float]:
    """(a, c) of variance = a * signal + c for the mean of ``frames``: the stack's per-frame curve / T (c = 0:
    the read noise is not measured)."""
    mean = frames.mean(axis=0)
    a = units_per_photon(frames, mean)
    if a is None:  # (nearly) all clipped: frame-difference variance, taken as proportional to the signal
        a = max(float(np.var(frames[1] - frames[0])) / 2 / max(float(np.median(mean)), 1e-6), 1e-12)
    return a / len(frames), 0.0


def bm3d_deblur(image: np.ndarray, noise: tuple[float, float], psf_px: float, strength: float, bounds: tuple[float, float]) -> np.ndarray:
    """BM3D deblurring (Gaussian PSF of ``psf_px``; 0: plain BM3D) under the GAT, noise std x ``strength``,
    clipped to ``bounds`` (:func:`input_bounds` of the stack, as Restora's result is: a fixed PSF rings far
    outside the sensor's range on a sharp, nearly noiseless mean)."""
    bm3d = load_bm3d(required=True)
    if psf_px <= 0:
        return np.clip(bm3d_of_mean(bm3d, image, noise, strength), *bounds)
    a, c = noise
    z = anscombe(image, a, c)
    radius = int(math.ceil(4 * psf_px))
    psf = bm3d.gaussian_kernel((2 * radius + 1, 2 * radius + 1), psf_px)
    pad = DEBLUR_PAD_PX
    padded = np.pad(z, pad, mode="symmetric")[..., None]  # 3-D: bm3d 4.0.3 fails on 2-D input
    out = np.asarray(bm3d.bm3d_deblurring(padded, strength, psf)).reshape(padded.shape[:2])[pad:-pad, pad:-pad]
    return np.clip(inverse_anscombe(out, a, c), *bounds).astype(np.float32)


def tuned_deblur(image: np.ndarray, stack: np.ndarray, level: str) -> np.ndarray:
    """The ``TUNED`` baseline for one of ``stack``'s means: :func:`bm3d_deblur` with the PSF width and
    strength tuned for ``level`` on training stacks, its noise and bounds read from the stack."""
    return bm3d_deblur(image, mean_noise(stack), DEBLUR_PSF_PX[level], DEBLUR_STRENGTH[level], input_bounds(stack))


def fit_psf_sigma(blurred: np.ndarray, truth: np.ndarray) -> float:
    """Gaussian sigma (px) that best turns ``truth`` into ``blurred`` (least squares over a grid; 0: none)."""
    best, best_err = 0.0, float(np.mean((blurred - truth) ** 2))
    for sigma in np.arange(0.3, 3.01, 0.1):
        err = float(np.mean((cv2.GaussianBlur(truth, (0, 0), sigma) - blurred) ** 2))
        if err < best_err:
            best, best_err = float(sigma), err
    return best


def tune_deblur(stacks_per_family: int = 2, size: int = 128, widths: tuple[float, ...] = TUNE_PSF_PX,
                strengths: tuple[float, ...] = TUNE_STRENGTHS, seed: int = 7, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Per level, on TRAIN-image stacks (never validation images): the best BM3D denoising strength over
    every family, and the best (PSF width, strength) for BM3D deblurring over the turbulent families
    (a user deblurs turbulence; still stacks have the denoising row)."""
    chosen: dict[str, Any] = {}
    for li, level in enumerate(NOISE_LEVELS):
        denoise: dict[float, list[float]] = {s: [] for s in strengths}
        deblur: dict[tuple[float, float], list[float]] = {(w, s): [] for w in widths for s in strengths}
        for fi, family in enumerate(FAMILY_NAMES):
            images = clean_images("train", size=size, seed=seed * 100 + 10 * fi + li)
            for i in range(stacks_per_family):
                rng = np.random.default_rng([seed, fi, li, i])
                sim = FAMILIES[family](images[(7 * i + 3 * li + fi) % len(images)], rng, sample_photons(level, rng))
                frames = sim.stack.astype(np.float32)
                aligned, noise, bounds = flow_aligned_mean(frames), mean_noise(frames), input_bounds(frames)
                for k in denoise:
                    denoise[k].append(psnr(sim.truth, bm3d_deblur(aligned, noise, 0.0, k, bounds)))
                if family != "static":
                    for w, k in deblur:
                        deblur[(w, k)].append(psnr(sim.truth, bm3d_deblur(aligned, noise, w, k, bounds)))
                log(f"{level} {family} {i + 1}/{stacks_per_family} done")
        denoise_means = {k: float(np.mean(v)) for k, v in denoise.items()}
        deblur_means = {k: float(np.mean(v)) for k, v in deblur.items()}
        best_denoise, best_deblur = max(denoise_means, key=denoise_means.get), max(deblur_means, key=deblur_means.get)
        chosen[level] = {"denoise_strength": best_denoise, "psf_px": best_deblur[0], "strength": best_deblur[1],
                         "denoise_grid": {f"x{k}": v for k, v in denoise_means.items()},
                         "deblur_grid": {f"{w}px x{k}": v for (w, k), v in deblur_means.items()}}
        log(f"{level}: denoise " + ", ".join(f"x{k}: {v:.2f}" for k, v in denoise_means.items())
            + " | deblur " + ", ".join(f"{w}px x{k}: {v:.2f}" for (w, k), v in deblur_means.items()))
    log("DENOISE_STRENGTH = " + repr({lv: chosen[lv]["denoise_strength"] for lv in NOISE_LEVELS}))
    log("DEBLUR_PSF_PX = " + repr({lv: chosen[lv]["psf_px"] for lv in NOISE_LEVELS}))
    log("DEBLUR_STRENGTH = " + repr({lv: chosen[lv]["strength"] for lv in NOISE_LEVELS}))
    return chosen


# ----------------------------------------------------------------------------- metrics

def psnr(truth: np.ndarray, estimate: np.ndarray) -> float:
    mse = float(np.mean((np.asarray(estimate, np.float64) - truth) ** 2))
    return 10 * math.log10(DATA_RANGE ** 2 / max(mse, 1e-12))


def ssim(truth: np.ndarray, estimate: np.ndarray) -> float:
    from skimage.metrics import structural_similarity

    return float(structural_similarity(truth.astype(np.float64), np.asarray(estimate, np.float64), data_range=DATA_RANGE))


def true_sigma(stack: np.ndarray, params: dict[str, Any]) -> float:
    """Noise std at the median of the temporal mean (the classifier's sigma), from the generator's parameters."""
    gain = params["exposure"] / params["photons"]
    signal = float(np.median(np.mean(stack, axis=0, dtype=np.float32)))
    return math.sqrt(gain * max(signal - params["black"], 0.0) + params["read_noise"] ** 2 + 1 / 12)


# ----------------------------------------------------------------------------- data

def stack_size(family: str, index: int) -> int:
    return WIDE_SIZES[index % len(WIDE_SIZES)] if family == "wide" else STACK_SIZE


def stack_frames(family: str, frames: int | None) -> int | None:
    """Frame count passed to the family: ``frames`` (default 100) for current / physics, 20 for static, drawn for wide and sharp."""
    if family in ("current", "physics"):
        return frames or 100
    return 20 if family == "static" else None


def stack_specs(families: tuple[str, ...], levels: tuple[str, ...], n: int, seed: int = SEED, size: int | None = None,
                frames: int | None = None, classification: bool = False) -> list[dict[str, Any]]:
    """What each stack is made of: validation image, crop, size, frames, photons, seed (evaluation or classification-only set)."""
    specs = []
    for family in families:
        fi = FAMILY_NAMES.index(family)
        for level in levels:
            li = NOISE_LEVELS.index(level)
            for i in range(n):
                stream = [seed, fi, li, 1000 * classification + i]
                specs.append({
                    "family": family, "level": level, "index": i, "image": (i + 3 * li + fi) % N_VAL_IMAGES,
                    "crop_seed": seed * 10000 + 1000 * classification + 100 * fi + 10 * li + i // N_VAL_IMAGES,
                    "size": size or (CLASSIFIER_SIZE if classification else stack_size(family, i + li)),
                    "frames": stack_frames(family, frames),
                    "photons": sample_photons(level, np.random.default_rng(stream + [0])), "stack_seed": stream})
    return specs


class ValImages:
    """Validation crops, made once per (size, crop seed)."""

    def __init__(self):
        self._cache: dict[tuple[int, int], list[np.ndarray]] = {}

    def get(self, size: int, crop_seed: int, index: int) -> np.ndarray:
        if (size, crop_seed) not in self._cache:
            self._cache[(size, crop_seed)] = clean_images("val", size=size, seed=crop_seed)
        return self._cache[(size, crop_seed)][index]


def synth(images: ValImages, spec: dict[str, Any]) -> SimulatedStack:
    clean = images.get(spec["size"], spec["crop_seed"], spec["image"])
    kwargs = {} if spec["frames"] is None else {"frames": spec["frames"]}
    return FAMILIES[spec["family"]](clean, np.random.default_rng(spec["stack_seed"]), spec["photons"], **kwargs)


# ----------------------------------------------------------------------------- run

def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - started


class LofoModels:
    """Leave-one-family-out restorers, loaded on first use; remembers which weight files are missing."""

    def __init__(self):
        self._models: dict[Path, Any] = {}
        self.missing: set[str] = set()

    def get(self, family: str, level: str):
        from models.stack.learned import LearnedStackRestorer

        served = restorer_for("stack", level)  # its weight file and the partners' whose networks are averaged in
        names = [served.weights, *served.options.get("partners", ())]
        path, *partner_paths = (LOFO_DIR / name.replace(".pt", f"-without-{family}.pt") for name in names)
        missing = [p for p in (path, *partner_paths) if not p.exists()]
        root = Path(__file__).resolve().parent.parent
        self.missing.update(str(p.relative_to(root)) if p.is_relative_to(root) else str(p) for p in missing)
        if missing:
            return None
        if path not in self._models:
            model = LearnedStackRestorer(level, weights=path, partners=tuple(p.name for p in partner_paths))
            model.setup("cpu")
            self._models[path] = model
        return self._models[path]


class Evaluator:
    """Runs every method on one stack; holds the pipeline, the classifier and the LOFO models."""

    def __init__(self, methods: tuple[str, ...], tmp: Path):
        from models.stack.noise import StackNoiseClassifier

        self.methods, self.tmp = methods, tmp
        self.pipeline, self.load_seconds = None, 0.0
        if RESTORA in methods or LOFO in methods:
            from models.pipeline import Pipeline

            self.pipeline, self.load_seconds = timed(lambda: Pipeline(device="cpu", kinds=("stack",)))
        self.classifier = self.pipeline._loaded["stack-noise"] if self.pipeline else StackNoiseClassifier()
        self.lofo = LofoModels()

    def restore(self, array: np.ndarray) -> tuple[np.ndarray, Any]:
        """``Pipeline.restore_file`` on ``array`` saved as .npy: (restored frame, run summary)."""
        src, dst = self.tmp / "stack.npy", self.tmp / "restored.npy"
        np.save(src, array)
        summary = self.pipeline.restore_file(src, [dst])
        return np.load(dst), summary

    def classify(self, stack: np.ndarray, params: dict[str, Any]) -> dict[str, Any]:
        estimate = self.classifier.predict(stack.astype(np.float32))
        return self.noise_fields(estimate, stack, params)

    def noise_fields(self, estimate, stack: np.ndarray, params: dict[str, Any]) -> dict[str, Any]:
        photons = self.classifier.photons
        return {"true": level_of(params["photons"]), "classified": estimate.level, "photons": float(params["photons"]),
                "photons_estimate": None if photons is None or math.isinf(photons) else float(photons),
                "sigma_estimate": float(estimate.sigma), "sigma_true": true_sigma(stack, params)}

    def evaluate(self, spec: dict[str, Any], sim: SimulatedStack, scale_check: bool) -> dict[str, Any]:
        truth, frames = sim.truth, sim.stack.astype(np.float32)
        row: dict[str, Any] = {**spec, "shape": list(sim.stack.shape), "params": sim.params, "methods": {}}

        def record(name: str, estimate: np.ndarray, seconds: float, **extra):
            row["methods"][name] = {"psnr": psnr(truth, estimate), "ssim": ssim(truth, estimate), "seconds": seconds, **extra}

        if RESTORA in self.methods:
            out, summary = self.restore(sim.stack)
            record(RESTORA, out, summary.seconds, level_used=summary.noise.level)
            row["noise"] = self.noise_fields(summary.noise, sim.stack, sim.params)
            if scale_check and spec["index"] == 0:
                row["scale_free"] = self.scale_copies(sim, summary.noise.level, row["methods"][RESTORA]["psnr"])
        else:
            row["noise"] = self.classify(sim.stack, sim.params)
        level = row["noise"]["classified"]
        if LOFO in self.methods and spec["family"] in LOFO_FAMILIES:
            model = self.lofo.get(spec["family"], level)
            if model is not None:
                out, s = timed(lambda: model.predict(frames))
                record(LOFO, out, s, level_used=level, weights=model.weights.name)
        mean, s_mean = timed(lambda: frames.mean(axis=0))
        if MEAN in self.methods:
            record(MEAN, mean, s_mean)
        lv = spec["level"]  # the level the stack was made at (the BM3D baselines are given the truth here, to their advantage)
        if any(m in self.methods for m in (DENOISED, MEAN_DENOISED, TUNED, ORACLE)):
            noise, s_noise = timed(lambda: mean_noise(frames))
            bounds = input_bounds(frames)
        if MEAN_DENOISED in self.methods:
            out, s = timed(lambda: bm3d_deblur(mean, noise, 0.0, DENOISE_STRENGTH[lv], bounds))
            record(MEAN_DENOISED, out, s_mean + s_noise + s, strength=DENOISE_STRENGTH[lv])
        if any(m in self.methods for m in (ALIGNED, DENOISED, TUNED, ORACLE)):
            aligned, s_aligned = timed(lambda: flow_aligned_mean(frames))
            record(ALIGNED, aligned, s_aligned)
            candidates = []  # (psnr, output, seconds, psf, strength) for the oracle's pick
            if DENOISED in self.methods:
                out, s = timed(lambda: bm3d_deblur(aligned, noise, 0.0, DENOISE_STRENGTH[lv], bounds))
                record(DENOISED, out, s_aligned + s_noise + s, strength=DENOISE_STRENGTH[lv])
            if TUNED in self.methods:
                out, s = timed(lambda: bm3d_deblur(aligned, noise, DEBLUR_PSF_PX[lv], DEBLUR_STRENGTH[lv], bounds))
                record(TUNED, out, s_aligned + s_noise + s, psf_px=DEBLUR_PSF_PX[lv], strength=DEBLUR_STRENGTH[lv])
                candidates.append((row["methods"][TUNED]["psnr"], out, s, DEBLUR_PSF_PX[lv], DEBLUR_STRENGTH[lv]))
            if ORACLE in self.methods:
                width = fit_psf_sigma(aligned, truth)
                for strength in ORACLE_STRENGTHS:
                    out, s = timed(lambda: bm3d_deblur(aligned, noise, width, strength, bounds))
                    candidates.append((psnr(truth, out), out, s, width, strength))
                _, out, s, width, strength = max(candidates, key=lambda c: c[0])
                record(ORACLE, out, s_aligned + s_noise + s, psf_px=width, strength=strength)
        if UPPER in self.methods:
            out, s = timed(lambda: unwarped_mean(sim.stack, sim.displacements))
            record(UPPER, out, s)
        if CENTRED in self.methods:
            out, s = timed(lambda: centred_mean(sim.stack, sim.displacements))
            record(CENTRED, out, s)
        return row

    def scale_copies(self, sim: SimulatedStack, level_u16: str, psnr_u16: float) -> dict[str, Any]:
        """The same stack as float32 DN and float32 / 4095 through the pipeline: level and PSNR (result x 4095)."""
        levels, psnrs = {"uint16": level_u16}, {"uint16": psnr_u16}
        for name, array, back in (("float32 DN", sim.stack.astype(np.float32), 1.0),
                                  ("float32 0..1", sim.stack.astype(np.float32) / np.float32(MAX_DN), float(MAX_DN))):
            out, summary = self.restore(array)
            levels[name], psnrs[name] = summary.noise.level, psnr(sim.truth, out * back)
        return {"levels": levels, "psnr": psnrs, "levels_agree": len(set(levels.values())) == 1,
                "max_psnr_difference_db": max(psnrs.values()) - min(psnrs.values())}


def _evaluate_part(specs: list[dict[str, Any]], cls_specs: list[dict[str, Any]], methods: tuple[str, ...],
                   scale_check: bool, log: Callable[[str], None] = print) -> tuple[list, list, float, set[str]]:
    """Evaluation rows and classification rows of some specs (one process): (rows, cls_rows, load seconds, missing LOFO files)."""
    cv2.setNumThreads(1)
    images = ValImages()
    with tempfile.TemporaryDirectory(prefix="restora-eval-") as tmp:
        ev = Evaluator(methods, Path(tmp))
        if ev.pipeline is not None:
            import torch

            torch.set_num_threads(1)
        rows = []
        for spec in specs:
            row = ev.evaluate(spec, synth(images, spec), scale_check)
            rows.append(row)
            log(f"{spec['family']:>7} {spec['level']:>6} #{spec['index']} {'x'.join(map(str, row['shape']))} photons {spec['photons']:8.1f}"
                f" -> {row['noise']['classified']:>6}: " + ", ".join(f"{n} {v['psnr']:.2f}" for n, v in row["methods"].items()))
        cls_rows = []
        for spec in cls_specs:
            sim = synth(images, spec)
            fields, s = timed(lambda: ev.classify(sim.stack, sim.params))
            cls_rows.append({**spec, **fields, "seconds": s})
    return rows, cls_rows, ev.load_seconds, ev.lofo.missing


def speed(stacks: int, seed: int, log: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """Restora alone on the machine (after the quality runs): ``stacks`` 100 x 271 x 271 and 100 x 512 x 512
    ``current`` stacks through the pipeline, model load excluded."""
    from models.pipeline import Pipeline

    images, out_rows = ValImages(), []
    pipeline = Pipeline(device="cpu", kinds=("stack",))
    with tempfile.TemporaryDirectory(prefix="restora-speed-") as tmp:
        src, dst = Path(tmp) / "stack.npy", Path(tmp) / "restored.npy"
        for size in (STACK_SIZE, SPEED_SHAPE[1]):
            for k in range(stacks):
                level = NOISE_LEVELS[k % len(NOISE_LEVELS)]
                spec = {**stack_specs(("current",), (level,), 1, seed + 1, size, SPEED_SHAPE[0])[0], "index": k}
                sim = synth(images, spec)
                np.save(src, sim.stack)
                summary = pipeline.restore_file(src, [dst])
                out_rows.append({**spec, "shape": list(sim.stack.shape), "seconds": summary.seconds, "psnr": psnr(sim.truth, np.load(dst))})
                log(f"[speed] {'x'.join(map(str, sim.stack.shape))}: Restora {summary.seconds:.2f} s")
    return out_rows


def run(families: tuple[str, ...] = FAMILY_NAMES, levels: tuple[str, ...] = NOISE_LEVELS, stacks: int = 3,
        classifier_stacks: int = 8, methods: tuple[str, ...] = METHODS, size: int | None = None, frames: int | None = None,
        scale_check: bool = True, speed_stacks: int = 3, jobs: int = 1, seed: int = SEED, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Evaluate ``stacks`` stacks per family and level with ``methods``, in ``jobs`` processes; ``size`` / ``frames``
    override the defaults (frames: current and physics only). Scale and speed checks need the ``Restora`` method;
    speed is measured last, with nothing else running."""
    methods = tuple(methods)
    specs = stack_specs(families, levels, stacks, seed, size, frames)
    cls_specs = stack_specs(families, levels, classifier_stacks, seed, size, frames, classification=True)
    parts = [(specs[i::jobs], cls_specs[i::jobs], methods, scale_check) for i in range(jobs)]
    if jobs == 1:
        results = [_evaluate_part(*parts[0], log=log)]
    else:
        from concurrent.futures import ProcessPoolExecutor
        from multiprocessing import get_context

        with ProcessPoolExecutor(jobs, mp_context=get_context("spawn")) as pool:  # spawn: no torch state crosses a fork
            results = list(pool.map(_evaluate_part, *zip(*parts)))
    rows = sorted((r for part in results for r in part[0]), key=lambda r: (FAMILY_NAMES.index(r["family"]), NOISE_LEVELS.index(r["level"]), r["index"]))
    cls_rows = [r for part in results for r in part[1]]
    speed_rows = speed(speed_stacks, seed, log) if RESTORA in methods and speed_stacks else []
    report = summarise(rows, cls_rows, speed_rows)
    report["lofo"] = {"families": list(LOFO_FAMILIES), "missing_weights": sorted(set().union(*(part[3] for part in results)))}
    report["meta"] = {
        "seed": seed, "families": list(families), "levels": list(levels), "stacks_per_cell": stacks,
        "classifier_stacks_per_cell": classifier_stacks, "methods": list(methods), "size_override": size, "frames_override": frames,
        "jobs": jobs, "denoise_strength": DENOISE_STRENGTH, "deblur_psf_px": DEBLUR_PSF_PX, "deblur_strength": DEBLUR_STRENGTH,
        "pipeline_load_seconds": max(part[2] for part in results),
        "models": [spec.describe() for spec in REGISTRY if spec.kind == "stack"], "machine": f"{platform.machine()}, {os.cpu_count()} cpus"}
    report["stacks"] = rows
    report["classifier_stacks"] = cls_rows
    report["speed_stacks"] = speed_rows
    return report


# ----------------------------------------------------------------------------- summary

def _mean(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


def cell_summary(rows: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(method -> mean PSNR / SSIM / median seconds, margins) of one family and level."""
    table = {}
    for method in METHODS:
        values = [r["methods"][method] for r in rows if method in r["methods"]]
        if values:
            table[method] = {"psnr": _mean([v["psnr"] for v in values]), "ssim": _mean([v["ssim"] for v in values]),
                             "seconds": float(np.median([v["seconds"] for v in values])), "n": len(values)}
    base = [m for m in BASELINES if m in table]
    margins: dict[str, Any] = {}
    if base:
        best = max(base, key=lambda m: table[m]["psnr"])
        best_ssim = max(base, key=lambda m: table[m]["ssim"])
        margins.update(best_baseline=best, best_ssim_baseline=best_ssim)
        for name, key in ((RESTORA, "restora"), (LOFO, "lofo")):
            if name in table:
                margins[f"{key}_psnr_gain"] = table[name]["psnr"] - table[best]["psnr"]
                margins[f"{key}_ssim_gain"] = table[name]["ssim"] - table[best_ssim]["ssim"]
    for name, key in ((RESTORA, "restora"), (LOFO, "lofo")):
        for ref, ref_key in ((ALIGNED, "aligned"), (MEAN, "mean")):
            if ref == MEAN and rows and rows[0]["family"] != "static":
                continue
            diffs = [(r["methods"][name]["psnr"] - r["methods"][ref]["psnr"], r["index"]) for r in rows
                     if name in r["methods"] and ref in r["methods"]]
            if diffs:
                worst = min(diffs)
                margins[f"{key}_worst_vs_{ref_key}_db"], margins[f"{key}_worst_vs_{ref_key}_stack"] = worst
    for key, bound, _ in HEADROOM_BOUNDS:
        if {RESTORA, ALIGNED, bound} <= set(table):
            headroom = table[bound]["psnr"] - table[ALIGNED]["psnr"]
            margins[f"{key}_db"] = headroom
            margins[f"{key}_closed"] = (table[RESTORA]["psnr"] - table[ALIGNED]["psnr"]) / headroom if headroom > 0.05 else None
    return table, margins


def summarise(rows: list[dict[str, Any]], cls_rows: list[dict[str, Any]], speed_rows: list[dict[str, Any]]) -> dict[str, Any]:
    table: dict[str, Any] = {}
    margins: dict[str, Any] = {}
    for family in dict.fromkeys(r["family"] for r in rows):
        for level in NOISE_LEVELS:
            cell = [r for r in rows if r["family"] == family and r["level"] == level]
            if cell:
                table.setdefault(family, {})[level], margins.setdefault(family, {})[level] = cell_summary(cell)
    noise_rows = [r["noise"] | {"family": r["family"]} for r in rows] + cls_rows
    classifier = {family: classifier_summary([r for r in noise_rows if r["family"] == family])
                  for family in dict.fromkeys(r["family"] for r in noise_rows)}
    classifier["all"] = classifier_summary(noise_rows)
    scale = [{"family": r["family"], "level": r["level"], **r["scale_free"]} for r in rows if "scale_free" in r]
    return {"table": table, "margins": margins, "classifier": classifier,
            "scale_free": {"stacks": scale, "levels_agree": all(s["levels_agree"] for s in scale) if scale else None,
                           "max_psnr_difference_db": max((s["max_psnr_difference_db"] for s in scale), default=None),
                           "tolerance_db": SCALE_TOLERANCE_DB},
            "timing": timing_summary(rows, speed_rows)}


def _per_mpixel_frame(seconds: float, shape: list[int]) -> float:
    return seconds / (shape[0] * shape[1] * shape[2] / 1e6)


def timing_summary(rows: list[dict[str, Any]], speed_rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Restora's median seconds on the speed stacks (100 x 271 x 271 and 100 x 512 x 512, run alone), and per megapixel-frame."""
    std = [(r["seconds"], r["shape"]) for r in speed_rows if r["shape"] == [100, STACK_SIZE, STACK_SIZE]]
    big = [(r["seconds"], r["shape"]) for r in speed_rows if r["shape"] == list(SPEED_SHAPE)]
    out: dict[str, Any] = {}
    for key, items in (("100x271x271", std), ("100x512x512", big)):
        if items:
            out[key] = {"n": len(items), "median_seconds": float(np.median([s for s, _ in items])),
                        "max_seconds": float(np.max([s for s, _ in items])),
                        "seconds_per_mpixel_frame": float(np.median([_per_mpixel_frame(s, sh) for s, sh in items]))}
    if len(out) == 2:
        out["per_mpixel_frame_ratio_512_vs_271"] = out["100x512x512"]["seconds_per_mpixel_frame"] / out["100x271x271"]["seconds_per_mpixel_frame"]
    tuned = [r["methods"][TUNED]["seconds"] for r in rows if TUNED in r["methods"] and r["shape"] == [100, STACK_SIZE, STACK_SIZE]]
    if tuned:
        out["bm3d_deblur_tuned_median_seconds_100x271x271"] = float(np.median(tuned))
    return out


def classifier_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    if not rows:
        return {}
    confusion = {t: {p: 0 for p in NOISE_LEVELS} for t in NOISE_LEVELS}
    for r in rows:
        confusion[r["true"]][r["classified"]] += 1
    photon_err = [abs(r["photons_estimate"] / r["photons"] - 1) for r in rows if r["photons_estimate"] is not None]
    sigma_err = [abs(r["sigma_estimate"] / r["sigma_true"] - 1) for r in rows]

    def spread(errors: list[float]) -> dict[str, float | None]:
        return {"median": float(np.median(errors)) if errors else None, "p90": float(np.percentile(errors, 90)) if errors else None}

    return {"n": len(rows), "accuracy": sum(confusion[lv][lv] for lv in NOISE_LEVELS) / len(rows), "confusion": confusion,
            "photons_rel_error": spread(photon_err), "sigma_rel_error": spread(sigma_err)}


# ----------------------------------------------------------------------------- markdown

def _f(value: float | None, fmt: str) -> str:
    return "n/a" if value is None else format(value, fmt)


def markdown(report: dict[str, Any]) -> str:
    meta, margins = report["meta"], report["margins"]
    lines = ["# Stack restoration per degradation family: Restora vs baselines", "",
             f"Generated by `python -m models.eval_stacks` (seed {meta['seed']}); stacks per family and level: {meta['stacks_per_cell']}, made "
             "from VALIDATION images only (skimage camera, coffee, coins, gravel, validation dead leaves and printed patterns). "
             "Families (models/data/families.py): `current` and `physics` 100 x 271 x 271, `static` 20 x 271 x 271, `wide` 8-300 frames "
             "at 128-384 px, `sharp` (wide motion, frames nearly sharp) 8-300 frames at 271 px. PSNR (data range 4095) and SSIM against the still, sharp ground truth, averaged over stacks; seconds = "
             f"median wall time per stack on {meta['machine']} (Restora: `Pipeline.restore_file`, read + classify + restore + write; "
             f"model load {meta['pipeline_load_seconds']:.2f} s excluded). BM3D deblur (tuned PSF): PSF "
             f"{meta['deblur_psf_px']} px, strength {meta['deblur_strength']} (per level, from `--tune-deblur` on train stacks). "
             "Rows marked *reference* use the ground truth or the simulator's true displacements and are never the \"best baseline\". "
             "Methods are described in models/eval_stacks.py.", ""]
    lines += ["## Summary", "", "Gains are over the best non-reference baseline (PSNR dB / SSIM); worst = the single stack where "
              "Restora - aligned mean (DIS x2) is lowest (static: also Restora - temporal mean); headroom closed = "
              "(Restora - aligned mean) / (upper bound - aligned mean), and the same for the centred bound (n/a: the bound is "
              "within 0.05 dB of the aligned mean or below it).", "",
              "| family | level | best baseline | Restora gain | LOFO gain | worst vs aligned (dB) | worst vs mean (dB) | headroom closed | centred headroom closed |",
              "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for family, cells in margins.items():
        for level, m in cells.items():
            gain = lambda k: f"{m[k + '_psnr_gain']:+.2f} / {m[k + '_ssim_gain']:+.4f}" if k + "_psnr_gain" in m else "n/a"
            lines.append(f"| {family} | {level} | {m.get('best_baseline', 'n/a')} | {gain('restora')} | {gain('lofo')} | "
                         f"{_f(m.get('restora_worst_vs_aligned_db'), '+.2f')} | {_f(m.get('restora_worst_vs_mean_db'), '+.2f')} | "
                         f"{_f(m.get('headroom_closed'), '.2f')} | {_f(m.get('centred_headroom_closed'), '.2f')} |")
    if report["lofo"]["missing_weights"]:
        lines += ["", "LOFO rows skipped where these weight files do not exist: "
                  + ", ".join(f"`{p}`" for p in report["lofo"]["missing_weights"]) + "."]
    lines.append("")
    for family, cells in report["table"].items():
        lines += [f"## Family `{family}`", ""]
        for level, methods in cells.items():
            m = margins[family][level]
            lines += [f"### {family}, {level} noise", "", "| method | PSNR (dB) | SSIM | s / stack | stacks |", "|---|---:|---:|---:|---:|"]
            for name, v in methods.items():
                label = f"{name} (*reference*)" if name in REFERENCES else name
                bold = "**" if name in (RESTORA, LOFO) else ""
                lines.append(f"| {bold}{label}{bold} | {bold}{v['psnr']:.2f}{bold} | {bold}{v['ssim']:.4f}{bold} | {v['seconds']:.2f} | {v['n']} |")
            lines.append("")
            for key, name in (("restora", RESTORA), ("lofo", LOFO)):
                if f"{key}_psnr_gain" in m:
                    lines.append(f"{name} vs best baseline ({m['best_baseline']}): {m[key + '_psnr_gain']:+.2f} dB PSNR, "
                                 f"{m[key + '_ssim_gain']:+.4f} SSIM (vs {m['best_ssim_baseline']}).")
                if f"{key}_worst_vs_aligned_db" in m:
                    lines.append(f"{name} worst stack vs aligned mean: {m[key + '_worst_vs_aligned_db']:+.2f} dB (stack {m[key + '_worst_vs_aligned_stack']})"
                                 + (f"; vs temporal mean: {m[key + '_worst_vs_mean_db']:+.2f} dB" if f"{key}_worst_vs_mean_db" in m else "") + ".")
            for key, _, bound in HEADROOM_BOUNDS:
                if f"{key}_db" in m:
                    lines.append(f"Registration headroom ({bound} - aligned mean) {m[key + '_db']:.2f} dB; Restora closes "
                                 f"{_f(m[key + '_closed'], '.2f')} of it.")
            lines.append("")
    lines += classifier_markdown(report["classifier"])
    lines += scale_markdown(report["scale_free"])
    lines += speed_markdown(report["timing"])
    return "\n".join(lines)


def classifier_markdown(classifier: dict[str, Any]) -> list[str]:
    lines = ["## Noise classifier", "", "Evaluation stacks plus the classification-only stacks; photon and sigma errors "
             "relative to the generator's truth (sigma: noise std at the median of the temporal mean).", "",
             "| family | stacks | accuracy | photons error median / p90 | sigma error median / p90 |", "|---|---:|---:|---:|---:|"]
    for family, c in classifier.items():
        if c:
            pe, se = c["photons_rel_error"], c["sigma_rel_error"]
            lines.append(f"| {family} | {c['n']} | {100 * c['accuracy']:.1f} % | {_f(pe['median'] and 100 * pe['median'], '.1f')} / "
                         f"{_f(pe['p90'] and 100 * pe['p90'], '.1f')} % | {_f(se['median'] and 100 * se['median'], '.1f')} / {_f(se['p90'] and 100 * se['p90'], '.1f')} % |")
    for family, c in classifier.items():
        if c and family != "all":
            lines += ["", f"Confusion, `{family}` (rows: true level, columns: classified):", "",
                      "| true \\ classified | " + " | ".join(NOISE_LEVELS) + " |", "|---|" + "---:|" * len(NOISE_LEVELS)]
            lines += [f"| {t} | " + " | ".join(str(c["confusion"][t][p]) for p in NOISE_LEVELS) + " |" for t in NOISE_LEVELS]
    return lines + [""]


def scale_markdown(scale: dict[str, Any]) -> list[str]:
    if not scale["stacks"]:
        return []
    copies = list(scale["stacks"][0]["levels"])
    lines = ["## Scale-free inputs", "", f"The first stack of each family and level restored as {', '.join(copies)} (that result x 4095). "
             f"Levels agree on all: {'yes' if scale['levels_agree'] else 'NO'}; largest PSNR difference between copies "
             f"{scale['max_psnr_difference_db']:.3f} dB (must be <= {scale['tolerance_db']} dB).", "",
             "| family | level | levels | PSNR (dB) | max difference (dB) |", "|---|---|---|---|---:|"]
    for s in scale["stacks"]:
        lines.append(f"| {s['family']} | {s['level']} | {' / '.join(s['levels'].values())} | "
                     f"{' / '.join(f'{v:.3f}' for v in s['psnr'].values())} | {s['max_psnr_difference_db']:.3f} |")
    return lines + [""]


def speed_markdown(timing: dict[str, Any]) -> list[str]:
    lines = ["## Speed", ""]
    for key in ("100x271x271", "100x512x512"):
        if key in timing:
            t = timing[key]
            lines.append(f"- Restora on {key} ({t['n']} stacks): median {t['median_seconds']:.2f} s (max {t['max_seconds']:.2f} s), "
                         f"{t['seconds_per_mpixel_frame']:.3f} s per megapixel-frame.")
    if "per_mpixel_frame_ratio_512_vs_271" in timing:
        lines.append(f"- Seconds per megapixel-frame, 512 vs 271 px: x{timing['per_mpixel_frame_ratio_512_vs_271']:.2f} (1 = linear in frames x pixels).")
    if "bm3d_deblur_tuned_median_seconds_100x271x271" in timing:
        lines.append(f"- BM3D deblur (tuned PSF), aligned mean included: median {timing['bm3d_deblur_tuned_median_seconds_100x271x271']:.2f} s.")
    return lines + [""]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description="Evaluate stack restoration (Restora vs baselines) per degradation family and noise level.")
    parser.add_argument("--quick", action="store_true", help="every family and level once, 128 px, no BM3D / LOFO / scale / speed; writes eval_stacks_quick.json")
    parser.add_argument("--stacks", type=int, default=3, help="evaluation stacks per family and level")
    parser.add_argument("--classifier-stacks", type=int, default=8, help="extra classification-only stacks per family and level")
    parser.add_argument("--families", default=",".join(FAMILY_NAMES), help="comma-separated subset of " + ", ".join(FAMILY_NAMES))
    parser.add_argument("--levels", default=",".join(NOISE_LEVELS), help="comma-separated subset of " + ", ".join(NOISE_LEVELS))
    parser.add_argument("--no-restora", action="store_true", help="baselines and classifier only (no Restora, LOFO, scale or speed checks)")
    parser.add_argument("--jobs", type=int, default=1, help="evaluate in this many processes (speed is measured afterwards, alone)")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    parser.add_argument("--tune-deblur", action="store_true", help="only tune the BM3D-deblur PSF width and strength per level on train stacks")
    args = parser.parse_args(argv)
    if args.tune_deblur:
        return tune_deblur()
    families, levels = tuple(args.families.split(",")), tuple(args.levels.split(","))
    options: dict[str, Any] = dict(QUICK_RUN) if args.quick else {"stacks": args.stacks, "classifier_stacks": args.classifier_stacks}
    if args.no_restora:
        options["methods"] = tuple(m for m in options.get("methods", METHODS) if m not in (RESTORA, LOFO))
    report = run(families=families, levels=levels, seed=args.seed, jobs=1 if args.quick else args.jobs, **options)
    name = "eval_stacks_quick" if args.quick else "eval_stacks"
    write_report(args.out, name, report, markdown(report), with_markdown=not args.quick)
    print(markdown(report))
    return report


if __name__ == "__main__":
    main()
