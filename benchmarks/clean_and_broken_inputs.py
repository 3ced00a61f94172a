"""Inputs whose safe answer is plain: clean printed charts (the input itself) and stacks with a black, a
white and a blank frame (the plain mean of the good frames). Writes benchmarks/results/clean_and_broken_inputs.md.

    python benchmarks/clean_and_broken_inputs.py

Charts: text, bar charts and Siemens stars from models/data/targets.py (seed 11, 384 px, 8-bit gray),
each through the image classifier and the restorer for its level; reported: the reading and how far the
result is from the input (RMS and largest change, 8-bit levels), also with the noise-free plateau rule
switched off (models.image.learned.NOISE_FREE_PLATEAU_SHARE above 1: the classifier before it). Stacks:
evaluation stacks of models/eval_stacks.py (validation images, seed 2024) with frames 3, 11 and 17
replaced by black, white and the stack's mean level, through Pipeline.restore_file, also with no frame
left out (models.pipeline.outlier_frames switched off); PSNR (data range 4095) against the ground truth.
"""
from __future__ import annotations

import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models import pipeline as pipeline_module  # noqa: E402
from models.data.synthetic import MAX_DN  # noqa: E402
from models.data.targets import PATTERNS  # noqa: E402
from models.eval_stacks import ValImages, psnr, stack_specs, synth  # noqa: E402
from models.image import learned  # noqa: E402
from models.interface import no_progress  # noqa: E402
from models.io import RESULTS_DIR  # noqa: E402
from models.pipeline import Pipeline  # noqa: E402
from models.registry import classifier_for, restorer_for  # noqa: E402

BAD_FRAMES = (3, 11, 17)


def charts() -> list[str]:
    classifier = classifier_for("image").build("cpu")
    restorers = {level: restorer_for("image", level).build("cpu") for level in ("low", "medium", "high")}
    rng = np.random.default_rng(11)
    lines = ["| chart | sigma read / level | RMS change | largest change | rule off: sigma read / level | RMS change | largest change |",
             "|---|---|---:|---:|---|---:|---:|"]
    for round_ in range(3):
        for pattern in PATTERNS:
            chart = np.rint(pattern(384, rng) * 255).astype(np.float32)
            cells = []
            for share in (learned.NOISE_FREE_PLATEAU_SHARE, 2.0):
                with patched(learned, "NOISE_FREE_PLATEAU_SHARE", share):
                    estimate = classifier.predict(chart)
                change = restorers[estimate.level].predict(chart, estimate, no_progress) - chart
                cells.append(f"{estimate.sigma:.2f} / {estimate.level} | {float(np.sqrt(np.mean(change ** 2))):.2f} | {float(np.abs(change).max()):.1f}")
            lines.append(f"| {pattern.__name__} {round_} | {' | '.join(cells)} |")
    return lines


@contextmanager
def patched(module, name: str, value):
    """``module.name`` set to ``value`` for the block (the ablations above)."""
    kept = getattr(module, name)
    setattr(module, name, value)
    try:
        yield
    finally:
        setattr(module, name, kept)


def stacks() -> list[str]:
    pipeline = Pipeline(kinds=("stack",))
    lines = ["| stack | plain mean, all frames | plain mean, good frames | Restora, all frames | Restora, good frames | "
             "Restora, all frames, none left out | frames left out |", "|---|---:|---:|---:|---:|---:|---|"]
    with tempfile.TemporaryDirectory() as tmp:
        for spec in stack_specs(("static", "current"), ("low", "medium", "high"), 1, frames=24):
            sim = synth(ValImages(), spec)
            bad = sim.stack.copy()
            bad[BAD_FRAMES[0]], bad[BAD_FRAMES[1]], bad[BAD_FRAMES[2]] = 0, MAX_DN, int(sim.stack.mean())
            good = np.delete(bad, BAD_FRAMES, axis=0)
            results = []
            for name, stack, keep_all in (("all", bad, False), ("good", good, False), ("all", bad, True)):
                np.save(Path(tmp) / f"{name}.npy", stack)
                with patched(pipeline_module, "outlier_frames", (lambda _: []) if keep_all else pipeline_module.outlier_frames):
                    summary = pipeline.restore_file(Path(tmp) / f"{name}.npy", [Path(tmp) / f"{name}_out.npy"])
                results.append((psnr(sim.truth, np.load(Path(tmp) / f"{name}_out.npy")), summary.input.get("frames_left_out")))
            lines.append(f"| {spec['family']} {spec['level']} | {psnr(sim.truth, bad.mean(axis=0)):.2f} | {psnr(sim.truth, good.mean(axis=0)):.2f} | "
                         f"{results[0][0]:.2f} | {results[1][0]:.2f} | {results[2][0]:.2f} | {results[0][1]} |")
    return lines


def main() -> None:
    text = "\n".join(["# Clean and broken inputs: against their safe answers", "", __doc__.split("\n\n", 2)[2].strip(), "",
                      "## Clean printed charts (safe answer: the input)", "", *charts(), "",
                      f"## Stacks with frames {list(BAD_FRAMES)} black, white and blank (for a still stack the safe answer is the plain mean of the good frames; for a moving one, their aligned mean, not computed here)", "",
                      *stacks(), ""])
    (RESULTS_DIR / "clean_and_broken_inputs.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
