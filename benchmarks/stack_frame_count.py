"""How few frames a stack can have: Restora against the aligned mean, per frame count, on images none saw.

The aligned mean is the safe classical answer: a result should never be clearly below it. A stack of
few frames is where that is hardest: its mean geometry is the mean of a few displacements, not the
scene's, and the network's sharpening puts edges where the frames' mean put them. This makes stacks of
the moving families (``current``, ``wide``, ``sharp``, ``physics``, one per unseen image of
benchmarks/stack_unseen_images.py, the family taking turns) at ``--frames`` counts and ``--level``,
restores each with the served restorer (registry, level as classified) and compares it with the
DIS-aligned mean (models/eval_stacks.py). Writes benchmarks/results/stack_frame_count_LEVEL.{md,json}.

    python benchmarks/stack_frame_count.py --level low
    python benchmarks/stack_frame_count.py --level medium
"""
from __future__ import annotations

import argparse

import cv2
import numpy as np
from stack_unseen_images import unseen_images

from models.data.families import FAMILIES
from models.data.synthetic import sample_photons
from models.eval_stacks import flow_aligned_mean, psnr
from models.interface import NOISE_LEVELS
from models.io import RESULTS_DIR, write_report
from models.registry import restorer_for
from models.stack.noise import StackNoiseClassifier

SEED = 6262
FRAME_COUNTS = (8, 16, 32, 100)
MOVING_FAMILIES = ("current", "wide", "sharp", "physics")
CLEARLY_BELOW_DB = -0.2  # issue 11's bar: no stack more than 0.2 dB below the aligned mean


def run(level: str, frame_counts: tuple[int, ...], seed: int = SEED) -> dict:
    import torch

    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    images = unseen_images(np.random.default_rng([seed, 99]))
    classifier = StackNoiseClassifier()
    restorers = {}
    rows = []
    for frames in frame_counts:
        for i, image in enumerate(images):
            family = MOVING_FAMILIES[i % len(MOVING_FAMILIES)]
            rng = np.random.default_rng([seed, NOISE_LEVELS.index(level), frames, i])
            sim = FAMILIES[family](image, rng, sample_photons(level, rng), frames=frames)
            stack = sim.stack.astype(np.float32)
            classified = classifier.predict(stack).level
            if classified not in restorers:
                restorers[classified] = restorer_for("stack", classified).build("cpu")
            row = {"frames": frames, "family": family, "image": i, "classified": classified,
                   "aligned mean": psnr(sim.truth, flow_aligned_mean(stack)), "Restora": psnr(sim.truth, restorers[classified].predict(stack))}
            rows.append(row)
            print(f"{frames:4d} {family:8s} {i:2d} {classified:6s} aligned {row['aligned mean']:.2f} Restora {row['Restora']:.2f} "
                  f"({row['Restora'] - row['aligned mean']:+.2f})", flush=True)
    return {"rows": rows, "meta": {"level": level, "seed": seed, "frame_counts": list(frame_counts), "families": list(MOVING_FAMILIES)}}


def markdown(report: dict) -> str:
    meta = report["meta"]
    lines = [f"# {meta['level'].capitalize()}-noise stacks of unseen images by frame count: Restora against the aligned mean", "",
             f"Command: `python benchmarks/stack_frame_count.py --level {meta['level']} --seed {meta['seed']}` (see its docstring). "
             f"One stack per unseen image (12) per frame count, families {', '.join(meta['families'])} in turn; PSNR (dB) "
             f"against the sharp truth; Restora = the served restorer for the classified level; below = stacks more than "
             f"{-CLEARLY_BELOW_DB} dB below their DIS-aligned mean.", "",
             "| frames | aligned mean | Restora | mean gain | median gain | below | worst (family) |", "|---:|---:|---:|---:|---:|---:|---|"]
    for frames in meta["frame_counts"]:
        rows = [r for r in report["rows"] if r["frames"] == frames]
        gains = [r["Restora"] - r["aligned mean"] for r in rows]
        worst = rows[int(np.argmin(gains))]
        lines.append(f"| {frames} | {np.mean([r['aligned mean'] for r in rows]):.2f} | {np.mean([r['Restora'] for r in rows]):.2f} | "
                     f"{np.mean(gains):+.2f} | {np.median(gains):+.2f} | {sum(g < CLEARLY_BELOW_DB for g in gains)} of {len(gains)} | "
                     f"{min(gains):+.2f} ({worst['family']}) |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--level", choices=NOISE_LEVELS, default="low", help="the noise level the stacks are made at")
    parser.add_argument("--frames", type=int, nargs="+", default=list(FRAME_COUNTS), help="frame counts")
    parser.add_argument("--seed", type=int, default=SEED, help="another seed writes its own result files")
    args = parser.parse_args()
    report = run(args.level, tuple(args.frames), args.seed)
    text = markdown(report)
    write_report(RESULTS_DIR, f"stack_frame_count_{args.level}" + ("" if args.seed == SEED else f"_seed{args.seed}"), report, text)
    print(text)


if __name__ == "__main__":
    main()
