"""Physics-based turbulence by strength, up to beyond what the networks trained on, on images none saw.

The ``physics`` family draws D/r0 from 1 to 6 (models/data/physics.py); real captures can be worse.
This makes ``physics`` stacks at D/r0 = 2, 4 and 8 (von Karman layers, frozen flow, anisoplanatic
PSFs) of the unseen images of benchmarks/stack_unseen_images.py, at every noise level, and restores
each with the served restorer for its classified level, beside the temporal mean, the DIS-aligned
mean and BM3D deblurring of it (PSF width and strength tuned per level on training stacks,
models/eval_stacks.py). Writes benchmarks/results/stack_turbulence_strength.{md,json}.

    python benchmarks/stack_turbulence_strength.py --stacks 2
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from stack_unseen_images import unseen_images

from models.data import physics
from models.data.synthetic import sample_photons
from models.eval_stacks import ALIGNED, MEAN, TUNED, flow_aligned_mean, psnr, tuned_deblur
from models.interface import NOISE_LEVELS
from models.registry import restorer_for
from models.stack.noise import StackNoiseClassifier

RESULTS = Path(__file__).resolve().parent / "results"
SEED = 31
D_OVER_R0 = (2.0, 4.0, 8.0)
SIZE, FRAMES = 192, 60
METHODS = (MEAN, ALIGNED, TUNED, "Restora")


def run(stacks: int) -> dict:
    classifier = StackNoiseClassifier()
    models = {level: restorer_for("stack", level).build("cpu") for level in NOISE_LEVELS}
    images = unseen_images(np.random.default_rng([SEED, 99]))
    rows = []
    for d_over_r0 in D_OVER_R0:
        for level_index, level in enumerate(NOISE_LEVELS):
            for i in range(stacks):
                rng = np.random.default_rng([SEED, int(d_over_r0), level_index, i])
                image = images[int(rng.integers(len(images)))][:SIZE, :SIZE]
                sim = physics.make_stack(image, rng, sample_photons(level, rng), FRAMES, d_over_r0=d_over_r0)
                stack = sim.stack.astype(np.float32)
                estimate = classifier.predict(sim.stack)
                aligned = flow_aligned_mean(stack)
                deblurred = tuned_deblur(aligned, stack, estimate.level)
                restored = models[estimate.level].predict(sim.stack, estimate)
                row = {"d_over_r0": d_over_r0, "level": level, "classified": estimate.level, "index": i}
                row |= {name: psnr(sim.truth, x) for name, x in zip(METHODS, (stack.mean(axis=0), aligned, deblurred, restored))}
                rows.append(row)
                print(f"D/r0 {d_over_r0:.0f} {level:6s} {i} -> {estimate.level:6s} " + ", ".join(f"{m} {row[m]:.2f}" for m in METHODS), flush=True)
    return {"rows": rows, "meta": {"seed": SEED, "stacks_per_cell": stacks, "size": SIZE, "frames": FRAMES}}


def markdown(report: dict) -> str:
    meta = report["meta"]
    lines = ["# Physics-based turbulence by strength, on unseen images", "",
             f"Command: `python benchmarks/stack_turbulence_strength.py --stacks {meta['stacks_per_cell']}` (see its docstring). "
             f"`physics` stacks of {meta['frames']} x {meta['size']} x {meta['size']} at D/r0 = 2, 4 and 8 (the networks trained on 1 to 6), "
             "each through the served restorer for its classified level; PSNR (dB), mean over the stacks; worst = the lowest "
             "single stack of Restora minus the best baseline's.", "",
             "| D/r0 | level | classified right | " + " | ".join(METHODS) + " | Restora - best baseline | worst |",
             "|---:|---|---:|" + "---:|" * (len(METHODS) + 2)]
    for d_over_r0 in D_OVER_R0:
        for level in NOISE_LEVELS:
            rows = [r for r in report["rows"] if r["d_over_r0"] == d_over_r0 and r["level"] == level]
            means = {m: float(np.mean([r[m] for r in rows])) for m in METHODS}
            best = max(means[m] for m in METHODS[:-1])
            worst = min(r["Restora"] - max(r[m] for m in METHODS[:-1]) for r in rows)
            right = sum(r["classified"] == level for r in rows)
            lines.append(f"| {d_over_r0:.0f} | {level} | {right}/{len(rows)} | " + " | ".join(f"{means[m]:.2f}" for m in METHODS)
                         + f" | {means['Restora'] - best:+.2f} | {worst:+.2f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stacks", type=int, default=2, help="stacks per strength and level")
    report = run(parser.parse_args().stacks)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "stack_turbulence_strength.json").write_text(json.dumps(report, indent=1))
    (RESULTS / "stack_turbulence_strength.md").write_text(markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    main()
