"""Camera shake: evaluation stacks with their frames moved as a whole, restored with and without the
registration's whole-frame shifts (models/stack/learned.py: register, global_shifts).

Every family but ``static`` at every level, ``--stacks`` per cell, made from validation images exactly
as ``python -m models.eval_stacks`` makes them; then each stack again with a Gaussian whole-frame shift
of ``--shake`` px (std, summing to zero so the truth stays where it was; models/data/families.py:
camera_shake). Each goes through the served restorer for its classified level; the shaken one also
with ``whole_frame_shifts`` off (the registration before it existed). PSNR (dB) inside a margin of
four ``--shake`` that the shaken frames' mirrored edges never reach. Writes
benchmarks/results/stack_camera_shake.{md,json}.

    python benchmarks/stack_camera_shake.py --shake 5 --stacks 1
"""
from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from models.data.families import camera_shake
from models.eval_stacks import ValImages, psnr, stack_specs, synth
from models.interface import NOISE_LEVELS
from models.registry import restorer_for
from models.stack.noise import StackNoiseClassifier

RESULTS = Path(__file__).resolve().parent / "results"
FAMILIES = ("current", "wide", "physics", "sharp")  # static stacks do not move, so they are not registered
SHAKE_SEED = 77
VARIANTS = ("steady", "shaken, without whole-frame shifts", "shaken")


def run(shake_px: float, stacks: int) -> dict:
    classifier, images, rows = StackNoiseClassifier(), ValImages(), []
    models = {level: restorer_for("stack", level).build("cpu") for level in NOISE_LEVELS}  # loaded once
    for spec in stack_specs(FAMILIES, NOISE_LEVELS, stacks):
        simulated = synth(images, spec)
        shaken = camera_shake(simulated.stack, shake_px, np.random.default_rng([SHAKE_SEED, len(rows)]))
        margin = int(4 * shake_px)
        inner = (slice(margin, -margin),) * 2
        scores = {}
        for variant, stack, shifts in zip(VARIANTS, (simulated.stack, shaken, shaken), (True, False, True)):
            estimate = classifier.predict(stack)
            model = models[estimate.level]
            model.registration = replace(model.registration, whole_frame_shifts=shifts)
            scores[variant] = psnr(simulated.truth[inner], model.predict(stack, estimate)[inner])
        rows.append({"family": spec["family"], "level": spec["level"], "index": spec["index"], "frames": len(simulated.stack),
                     "size": spec["size"], "psnr": scores})
        print(spec["family"], spec["level"], spec["index"], {k: round(v, 2) for k, v in scores.items()}, flush=True)
    gains = [r["psnr"]["shaken"] - r["psnr"][VARIANTS[1]] for r in rows]
    losses = [r["psnr"]["shaken"] - r["psnr"]["steady"] for r in rows]
    return {"shake_px": shake_px, "stacks_per_cell": stacks, "rows": rows,
            "gain_over_without": {"mean": float(np.mean(gains)), "min": float(np.min(gains)), "max": float(np.max(gains))},
            "shaken_vs_steady": {"mean": float(np.mean(losses)), "min": float(np.min(losses)), "max": float(np.max(losses))}}


def markdown(report: dict, command: str) -> str:
    lines = ["# Camera shake: whole-frame shifts in the stack registration", "",
             f"Command: `{command}` (see its docstring). Evaluation stacks (validation images), each also with "
             f"{report['shake_px']:g} px (std) of whole-frame shake; PSNR (dB) inside a margin of {int(4 * report['shake_px'])} px.", "",
             "| family | level | stack | frames x size | steady | shaken, without whole-frame shifts | **shaken** |",
             "|---|---|---:|---|---:|---:|---:|"]
    for r in report["rows"]:
        p = r["psnr"]
        lines.append(f"| {r['family']} | {r['level']} | {r['index']} | {r['frames']} x {r['size']} | {p['steady']:.2f} | "
                     f"{p[VARIANTS[1]]:.2f} | **{p['shaken']:.2f}** |")
    gain, loss = report["gain_over_without"], report["shaken_vs_steady"]
    lines += ["", f"Shaken, with the shifts minus without: mean {gain['mean']:+.2f} dB (min {gain['min']:+.2f}, max {gain['max']:+.2f}).",
              f"Shaken minus steady (what the shake still costs): mean {loss['mean']:+.2f} dB (min {loss['min']:+.2f}, max {loss['max']:+.2f}).", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shake", type=float, default=5.0, help="whole-frame shift std, px")
    parser.add_argument("--stacks", type=int, default=1, help="stacks per family and level")
    args = parser.parse_args(argv)
    report = run(args.shake, args.stacks)
    command = f"python benchmarks/stack_camera_shake.py --shake {args.shake:g} --stacks {args.stacks}"
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "stack_camera_shake.json").write_text(json.dumps(report, indent=1))
    (RESULTS / "stack_camera_shake.md").write_text(markdown(report, command))
    print(markdown(report, command))
    return report


if __name__ == "__main__":
    main()
