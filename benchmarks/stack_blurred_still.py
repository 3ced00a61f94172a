"""Still stacks of blurred scenes (out of focus, or long exposures through turbulence that hardly move):
the still path's SURE blend with and without its credit for the blur the network undid
(models/stack/learned.py: blend_still, blur_undone).

The ``static`` family's evaluation stacks (validation images, ``python -m models.eval_stacks``'s seeds
and cameras), each made again from its scene blurred by a Gaussian, defocus disc or Moffat PSF of
0.5 to 1 px (drawn per stack); and the unblurred stacks themselves, where the credit must change
nothing. Beside them, BM3D deblurring of the plain mean with the evaluation's per-level PSF width and
strength (tuned on training stacks). The truth is the sharp scene in the blurred stack's exposure. Writes
benchmarks/results/stack_blurred_still.{md,json}.

    python benchmarks/stack_blurred_still.py --stacks 3
    python benchmarks/stack_blurred_still.py --stacks 3 --without-bm3d   # Restora as where bm3d does not load (ARM)
    python benchmarks/stack_blurred_still.py --stacks 3 --seed 9090      # a fresh seed (the thresholds were set on 2024)

``--without-bm3d`` runs Restora as on machines where the ``bm3d`` package does not load (it ships no
ARM Linux build): the still path's blend is then of the mean and the network alone (the BM3D
baseline column still uses it). Writes ``stack_blurred_still_without_bm3d.{md,json}``.
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np

from models.data.families import FAMILIES, blur
from models.data.synthetic import brightest_part, ground_truth
from models.eval_stacks import SEED, TUNED, ValImages, psnr, stack_specs, tuned_deblur
from models.interface import NOISE_LEVELS
from models.registry import restorer_for
from models.stack import learned, still
from models.stack.noise import StackNoiseClassifier

RESULTS = Path(__file__).resolve().parent / "results"
BLUR_SEED = 31
PSFS = ("gaussian", "disc", "moffat")
BLUR_PX = (0.5, 1.0)
VARIANTS = ("plain mean", TUNED, "without the credit", "Restora")


def run(stacks: int, seed: int = SEED) -> dict:
    classifier, images, rows = StackNoiseClassifier(), ValImages(), []
    models = {level: restorer_for("stack", level).build("cpu") for level in NOISE_LEVELS}  # loaded once
    for spec in stack_specs(("static",), NOISE_LEVELS, stacks, seed):
        clean = images.get(spec["size"], spec["crop_seed"], spec["image"]).astype(np.float32)
        stream = [NOISE_LEVELS.index(spec["level"]), spec["index"]]  # the default seed keeps the stream its results were drawn with
        draw = np.random.default_rng([BLUR_SEED, *([] if seed == SEED else [seed]), *stream])
        psf, width = PSFS[int(draw.integers(len(PSFS)))], float(draw.uniform(*BLUR_PX))
        for blurred in (False, True):
            scene = blur(clean, psf, width) if blurred else clean
            simulated = FAMILIES["static"](scene, np.random.default_rng(spec["stack_seed"]), spec["photons"])
            truth = ground_truth(clean / max(brightest_part(scene), 1e-3), simulated.params["black"], simulated.params["exposure"])
            stack = simulated.stack.astype(np.float32)
            mean, level = stack.mean(axis=0), spec["level"]
            model = models[classifier.predict(stack).level]
            deblurred = tuned_deblur(mean, stack, level)
            row = {"level": level, "index": spec["index"], "image": spec["image"], "psf": psf if blurred else "none",
                   "blur_px": width if blurred else 0.0, "plain mean": psnr(truth, mean), "Restora": psnr(truth, model.predict(stack)),
                   TUNED: psnr(truth, deblurred)}
            threshold, learned.SHARP_SCENE_BLUR_PX = learned.SHARP_SCENE_BLUR_PX, math.inf  # ablation: no credit
            try:
                row["without the credit"] = psnr(truth, model.predict(stack))
            finally:
                learned.SHARP_SCENE_BLUR_PX = threshold
            rows.append(row)
            print(f"{row['level']:6s} {row['index']} {row['psf']:8s} {row['blur_px']:.2f} px: " + ", ".join(f"{k} {row[k]:.2f}" for k in VARIANTS), flush=True)
    return {"rows": rows, "meta": {"stacks_per_level": stacks, "seed": seed, "blur_seed": BLUR_SEED, "psfs": PSFS, "blur_px": BLUR_PX}}


def markdown(report: dict) -> str:
    meta = report["meta"]
    options = ("" if meta.get("seed", SEED) == SEED else f" --seed {meta['seed']}") + (" --without-bm3d" if meta.get("without_bm3d") else "")
    lines = ["# Still stacks of blurred scenes: the credit for blur undone", "",
             f"Command: `python benchmarks/stack_blurred_still.py --stacks {meta['stacks_per_level']}{options}` (see its docstring"
             + ("; Restora as where the bm3d package does not load). " if meta.get("without_bm3d") else "). ") +
             "The `static` evaluation stacks, unblurred and made again from their scene blurred by a Gaussian, disc or Moffat PSF "
             "of 0.5-1 px; BM3D deblurring with the evaluation's tuned PSF; PSNR (dB) against the sharp scene, mean over the stacks; worst = the lowest single stack minus its plain mean.", "",
             "| scene | level | " + " | ".join(VARIANTS) + " | worst vs plain mean: " + " | ".join(VARIANTS[1:]) + " |",
             "|---|---|" + "---:|" * (2 * len(VARIANTS) - 1)]
    for blurred in (False, True):
        for level in NOISE_LEVELS:
            rows = [r for r in report["rows"] if r["level"] == level and (r["psf"] != "none") == blurred]
            means = [np.mean([r[n] for r in rows]) for n in VARIANTS]
            worst = [min(r[n] - r["plain mean"] for r in rows) for n in VARIANTS[1:]]
            lines.append(f"| {'blurred' if blurred else 'sharp'} | {level} | " + " | ".join(f"{m:.2f}" for m in means)
                         + " | " + " | ".join(f"{w:+.2f}" for w in worst) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stacks", type=int, default=3, help="stacks per level")
    parser.add_argument("--without-bm3d", action="store_true", help="Restora as where the bm3d package does not load")
    parser.add_argument("--seed", type=int, default=SEED, help="other crops, noise and blurs of the validation images; writes its own result files")
    args = parser.parse_args()
    name = "stack_blurred_still" + ("" if args.seed == SEED else f"_seed{args.seed}")
    if args.without_bm3d:
        name += "_without_bm3d"
        loaded = still.load_bm3d
        still.load_bm3d = lambda required=False: loaded(True) if required else None  # the baseline keeps it
    report = run(args.stacks, args.seed)
    report["meta"]["without_bm3d"] = args.without_bm3d
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(report, indent=1))
    (RESULTS / f"{name}.md").write_text(markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    main()
