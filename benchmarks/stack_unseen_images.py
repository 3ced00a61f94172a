"""The low and the medium stack networks, each alone and their mean, on images neither saw: why low-noise stacks get the mean.

The stack networks were trained on the training images (models/data/sources.py) and evaluated on the
validation ones (models/eval_stacks.py); this compares them on a third set: Matplotlib's portrait of
Grace Hopper (three crops; a smooth photo), scikit-image's colorwheel, logo and binary blobs, and dead
leaves and printed targets drawn with a seed no split uses. Stacks of every degradation family at ``--level``, each through the
served predict (registration, still-stack SURE blend, clipping) with the low network alone, the
medium network alone and their mean (what the registry serves for low), beside the DIS-aligned
mean and BM3D deblurring of it (the PSF width and strength tuned per level on training stacks,
models/eval_stacks.py). Writes benchmarks/results/stack_unseen_images_LEVEL.{md,json}.

    python benchmarks/stack_unseen_images.py --level low --stacks 6
    python benchmarks/stack_unseen_images.py --level medium --stacks 6
"""
from __future__ import annotations

import argparse

import cv2
import numpy as np
from skimage import data

from models.data.families import FAMILIES
from models.data.image_pairs import load_rgb
from models.data.sources import dead_leaves, load_source, random_square
from models.data.synthetic import sample_photons
from models.data.targets import printed_targets
from models.eval_stacks import TUNED, flow_aligned_mean, psnr, stack_frames, tuned_deblur
from models.io import RESULTS_DIR, write_report
from models.registry import WEIGHTS_DIR, restorer_for
from models.stack.learned import LearnedStackRestorer

SEED = 5151
SIZE = 271
UNSEEN_PHOTOS = ("colorwheel", "logo")  # scikit-image samples in no split of models/data/sources.py
BLOBS_SEED = 0
PORTRAIT_CROPS = 3  # of Grace Hopper's portrait (skimage's cat is chelsea, a training image)
VARIANTS = ("low alone", "medium alone", "mean of both")


def unseen_images(rng: np.random.Generator) -> list[np.ndarray]:
    portrait = load_rgb("grace_hopper").mean(axis=2)
    photos = [random_square(portrait, SIZE, rng) for _ in range(PORTRAIT_CROPS)]
    photos += [random_square(load_source(name), SIZE, rng) for name in UNSEEN_PHOTOS]
    photos.append(random_square(data.binary_blobs(rng=BLOBS_SEED).astype(np.float32), SIZE, rng))  # seeded: skimage draws new blobs per call
    return photos + [dead_leaves(SIZE, rng) for _ in range(3)] + printed_targets(SIZE, rng, 3)


def run(level: str, stacks: int, seed: int = SEED) -> dict:
    import torch

    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    images = unseen_images(np.random.default_rng([seed, 99]))
    models = {f"{trained_for} alone": LearnedStackRestorer(trained_for, weights=WEIGHTS_DIR / f"stack-{trained_for}.pt")
              for trained_for in ("low", "medium")}
    for model in models.values():
        model.setup("cpu")
    models["mean of both"] = restorer_for("stack", "low").build("cpu")  # what the registry serves for low
    rows = []
    for family_index, family in enumerate(FAMILIES):
        for i in range(stacks):
            rng = np.random.default_rng([seed, family_index, i])
            image = images[int(rng.integers(len(images)))]
            frames = stack_frames(family, None)
            sim = FAMILIES[family](image, rng, sample_photons(level, rng), **({} if frames is None else {"frames": frames}))
            stack = sim.stack.astype(np.float32)
            aligned = flow_aligned_mean(stack)
            deblurred = tuned_deblur(aligned, stack, level)
            row = {"family": family, "index": i, "frames": int(stack.shape[0]), "aligned mean": psnr(sim.truth, aligned), TUNED: psnr(sim.truth, deblurred)}
            row |= {name: psnr(sim.truth, model.predict(stack)) for name, model in models.items()}
            rows.append(row)
            print(f"{family:8s} {i} " + ", ".join(f"{k} {v:.2f}" for k, v in row.items() if isinstance(v, float)), flush=True)
    return {"rows": rows, "meta": {"level": level, "seed": seed, "size": SIZE, "stacks_per_family": stacks, "photos": ["grace_hopper"] * PORTRAIT_CROPS + list(UNSEEN_PHOTOS) + ["binary_blobs"]}}


def markdown(report: dict) -> str:
    names = ["aligned mean", TUNED, *VARIANTS]
    level = report["meta"]["level"]
    lines = [f"# {level.capitalize()}-noise stacks of unseen images: the low network, the medium network and their mean", "",
             f"Command: `python benchmarks/stack_unseen_images.py --level {level} --stacks {report['meta']['stacks_per_family']} --seed {report['meta']['seed']}` (see its docstring). {level.capitalize()}-noise stacks of every family "
             f"from images no network trained or was evaluated on; PSNR (dB), mean over {report['meta']['stacks_per_family']} "
             "stacks per family; worst = the lowest single stack minus its aligned mean. Served (models/registry.py): "
             "low-noise stacks get the mean of both, medium-noise stacks the medium network alone.", "",
             "| family | " + " | ".join(names) + " | worst vs aligned: low alone | medium alone | mean of both |",
             "|---|" + "---:|" * (len(names) + 3)]
    for family in FAMILIES:
        rows = [r for r in report["rows"] if r["family"] == family]
        means = [np.mean([r[n] for r in rows]) for n in names]
        worst = [min(r[n] - r["aligned mean"] for r in rows) for n in VARIANTS]
        lines.append(f"| {family} | " + " | ".join(f"{m:.2f}" for m in means) + " | " + " | ".join(f"{w:+.2f}" for w in worst) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--level", choices=("low", "medium"), default="low", help="the noise level of the stacks")
    parser.add_argument("--stacks", type=int, default=6, help="stacks per family")
    parser.add_argument("--seed", type=int, default=SEED, help="another seed writes its own result files")
    args = parser.parse_args()
    report = run(args.level, args.stacks, args.seed)
    text = markdown(report)
    write_report(RESULTS_DIR, f"stack_unseen_images_{args.level}" + ("" if args.seed == SEED else f"_seed{args.seed}"), report, text)
    print(text)


if __name__ == "__main__":
    main()
