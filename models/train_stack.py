"""Train the stack network for one noise level and write ``models/weights/stack-{level}.pt``.

    python -m models.train_stack --level low
    python -m models.train_stack --level medium
    python -m models.train_stack --level high

Seeded end to end: the pair cache (models/data/stack_pairs.py; made on first use, TRAIN images only,
one cache per degradation family: ``current``, ``wide``, ``physics``, ``static``, ``sharp``), crop order,
initialisation. The last cache shard of each family is held out to watch for overfitting; it is
never trained on. ``--exclude FAMILY`` trains without a family, for leave-one-family-out evaluation.

The committed ``models/weights/stack-*.pt`` (version 4) were made by fine-tuning version 2 (runs 1 to
5 below, on the ``current`` family only; each file's metadata keeps that history) on the four first families
(runs 6 and 7: version 3), then on all five (run 8):

6. ``python -m models.train_stack --level LEVEL --init v2-LEVEL.pt --iters 1500 --lr 3e-4 --loss psnr``
   from the version-2 files (``git show 348c858:models/weights/stack-LEVEL.pt > v2-LEVEL.pt``): the new input channels (Wiener at 1.6 and 2.2 px, the
   measured residual blur) start at zero weight; the per-crop PSNR loss weighs a 50 dB still stack as
   much as a 28 dB turbulent one. Pair cache: 3 shards of 30 stacks per family, 208 px (measured on
   2026-12-02: 10 to 30 s a shard, ``physics`` the slowest); training ~15 min per level with two
   trainings sharing the 2 cores.
7. medium only: ``--init RUN6-medium.pt --iters 2000 --lr 2e-4 --loss psnr`` from run 6's file; ~10 min.
   Held-out (last shards, the network alone): current 30.34 -> 30.35, wide 24.84 -> 24.95, physics
   25.71 -> 26.03 dB, worst wide pair -5.06 -> -3.57 dB against the merge. The same run for low
   lost on wide (24.70 -> 24.46 dB, worst pair -1.72 -> -6.55 dB), so low and high stay at run 6.
8. every level: ``--init v3-LEVEL.pt --iters 3000 --lr 2e-4 --loss psnr --shards 5`` from the version-3
   files (``git show 6a595bb:models/weights/stack-LEVEL.pt > v3-LEVEL.pt``), with the ``sharp`` family
   added (the version-3 medium network had turned 240 sharp frames of a smooth portrait, a 43.2 dB
   registered mean, into 35.4 dB) and five shards per family (four trained on); ~9 min per level with
   two trainings sharing the cores.
9. low and medium: ``--init RUN8-LEVEL.pt --iters 1500 --lr 2e-4 --loss psnr --shards 5`` on pairs
   registered with the window choice (``RegistrationConfig.wider``); ~6 min.

On the held-out shard 5, which neither version trained on (the network alone, ``python
benchmarks/stack_held_out.py LEVEL v3-LEVEL.pt models/weights/stack-LEVEL.pt``), version 3 -> 4 in dB
for current / wide / physics / static / sharp:
low 29.55 -> 30.44, 24.98 -> 25.26, 24.90 -> 25.30, 50.26 -> 51.87, 24.01 -> 24.59;
medium 29.92 -> 30.36, 24.82 -> 25.09, 26.15 -> 26.38, 41.99 -> 42.44, 24.29 -> 24.79;
high 27.46 -> 27.65, 25.02 -> 25.40, 25.05 -> 25.20, 34.74 -> 35.43, 22.96 -> 22.98.
Worst pair against the registered mean, medium: sharp -6.94 -> -0.67, current -5.51 -> -0.10 dB.

The registry serves low-noise stacks with the mean of the low and the medium networks
(``stack-fusion-low``). On low-noise stacks of images neither network saw (``python
benchmarks/stack_unseen_images.py --level low``, and ``--stacks 5 --seed 7171``) the mean beats
the low one alone on 7 of the 10 family averages (physics +0.19 / +0.35 dB, static +0.72 / +0.47,
wide +0.37 / -0.05, current -0.06 / +0.18, sharp -0.17 / +0.08), but takes some single stacks
further below the aligned mean than the low one alone (worst of the first seed: wide -0.46 against
-0.29, sharp -0.34 against +0.02).

The leave-one-family-out files ``models/weights/lofo/stack-LEVEL-without-FAMILY.pt`` (for
``restora eval stacks``) start from the same version-2 files, which never saw ``wide`` or ``physics``
(``git show 348c858:models/weights/stack-LEVEL.pt > v2-LEVEL.pt``), and then follow the served
recipe without the family. ``sharp`` stacks share the ``wide`` motion, so the files without ``wide``
are trained without ``sharp`` too:

    python -m models.train_stack --level LEVEL --exclude FAMILY --init v2-LEVEL.pt \
        --iters 800 --lr 3e-4 --loss psnr --out RUN1.pt
    python -m models.train_stack --level LEVEL --exclude FAMILY [--exclude sharp] --init RUN1.pt \
        --iters 3000 --lr 2e-4 --loss psnr --shards 5 --out RUN8.pt
    python -m models.train_stack --level LEVEL --exclude FAMILY [--exclude sharp] --init RUN8.pt \
        --iters 1500 --lr 2e-4 --loss psnr --shards 5 --out models/weights/lofo/stack-LEVEL-without-FAMILY.pt

as the served files: low (both families) had all three runs; high (both) runs 1 and 8 (its registration
did not change); medium had run 1, then run 8 on the window-choice pairs (without ``physics`` with 1500
iterations, not 3000: the time ran out), then run 9. Run 9 on the held-out shard of the family left out
(``python benchmarks/stack_held_out.py medium OLD.pt NEW.pt``): physics 23.91 -> 23.95 dB; wide 24.34 ->
24.37, sharp 23.98 -> 24.10. Then run 10, medium only, so that each medium file has had as many
iterations past version 2 as the served one (8000: runs 6 to 9; the files had 3800 without
``physics`` and 5300 without ``wide``):

    python -m models.train_stack --level medium --exclude physics --init models/weights/lofo/stack-medium-without-physics.pt \
        --iters 4200 --lr 2e-4 --loss psnr --shards 5 --out NEW.pt
    python -m models.train_stack --level medium --exclude wide --exclude sharp --init models/weights/lofo/stack-medium-without-wide.pt \
        --iters 2700 --lr 2e-4 --loss psnr --shards 5 --out NEW.pt

on pairs registered as the pipeline registers now (whole-frame shifts tried, which the earlier runs'
pairs predate: the cache was made again), ~13 and ~8 min with the two sharing the cores. On that
cache's held-out shard, the family left out: physics 23.95 -> 24.06 dB (the served file: 26.38),
wide 24.48 -> 24.52, sharp 24.17 -> 24.18. The low and high files stay 700 iterations short of
theirs (5300 of 6000, 3800 of 4500).

(``current`` has no leave-one-out file: every version-2 run trained on it.)

Version 2, for the record (on ``current`` stacks of 271 px, 100 frames):

1. ``python -m models.train_stack --level LEVEL`` as of commit 4a9eb21: 3000 iterations from
   scratch, three input channels (no Wiener channels), one-pass registration; ~31 min.
2. ``--init FIRST.pt --iters 2000 --lr 5e-4 --shards 7``: the Wiener channels added at zero weight,
   fine-tuned on pairs made with the two-pass registration; ~35 min.
3. low and medium only: ``--init models/weights/stack-LEVEL.pt --iters 3000 --lr 3e-4 --shards 7``; ~18 min.
4. low and medium only: ``--iters 5000 --lr 3e-4 --shards 12 --loss mse``; ~45 min.
5. low only: ``--iters 2500 --lr 2e-4 --shards 12 --loss mse``; ~18 min.

In all, version 2 had 15 500 iterations for low, 13 000 for medium and 5 000 for high at ~0.3 s
an iteration on one idle core.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from models.archs import load_weights
from models.data.stack_pairs import TRAIN_FAMILIES, build_cache, load_cache
from models.registry import WEIGHTS_DIR
from models.stack.learned import (
    BLUR_MAX_PX,
    DECONVOLUTION_NSR,
    DECONVOLUTION_SIGMAS_PX,
    INPUT_CHANNELS,
    LEVEL_REGISTRATION,
    SHARPNESS_POWER,
    STD_GAIN,
    network_inputs,
)
from models.training import invocation, log, save, train, training_parser, use_threads

VERSION = "4"
ARCH = "resunet"
ARCH_CONFIG = {"in_ch": INPUT_CHANNELS, "widths": [16, 32, 48, 64], "blocks": [1, 1, 2, 2]}


def warm_start(net, path: Path, level: str) -> list[dict]:
    """Load ``path``'s weights into ``net`` (input channels it lacks start at zero); return its training history.

    Zero weights on new input channels keep the loaded network's output exactly, so fine-tuning
    starts from where that network was and learns to use the new channels.
    """
    old, meta = load_weights(path)
    if (meta["arch"], meta["level"]) != (ARCH, level):
        raise SystemExit(f"{path} is not a {ARCH} network for level {level}")
    state = old.state_dict()
    head = net.state_dict()["head.weight"].clone().zero_()
    head[:, : state["head.weight"].shape[1]] = state["head.weight"]
    state["head.weight"] = head
    net.load_state_dict(state)
    return meta["training"].get("history", []) + [{k: v for k, v in meta["training"].items() if k != "history"}]


def cropped_psnr(estimate: np.ndarray, target: np.ndarray) -> float:
    """PSNR (normalised units, data range 1) of (C, H, W) arrays, a 4-px border left out."""
    c = (slice(None), slice(4, -4), slice(4, -4))
    return -10 * math.log10(float(np.mean((estimate[c] - target[c]) ** 2)))


def evaluate(net, inputs, targets) -> dict[str, float]:
    """Mean PSNR (in normalised units, data range 1) of merge and network on whole frames."""
    import torch

    out_psnr, in_psnr = [], []
    with torch.inference_mode():
        for x, t in zip(inputs, targets):
            out_psnr.append(cropped_psnr(net(torch.from_numpy(x[None]))[0].numpy(), t))
            in_psnr.append(cropped_psnr(x[:1], t))
    return {"merge": float(np.mean(in_psnr)), "net": float(np.mean(out_psnr))}


def main(argv: list[str] | None = None) -> dict:
    parser = training_parser(__doc__, "stack-LEVEL.pt", iters=3000, batch=8, crop=96, lr=1e-3)
    parser.add_argument("--shards", type=int, default=3, help="cache shards per family (one stack of every train image each); the last is held out")
    parser.add_argument("--exclude", choices=TRAIN_FAMILIES, action="append", default=[],
                        help="leave this degradation family out (leave-one-family-out evaluation); repeatable")
    args = parser.parse_args(argv)

    import torch

    from models.archs import build

    use_threads(args.threads)
    started = time.perf_counter()
    registration = LEVEL_REGISTRATION[args.level]
    families = [f for f in TRAIN_FAMILIES if f not in args.exclude]
    paths = {f: build_cache(args.level, f, "train", args.shards, registration, seed=0, log=log) for f in families}
    cache_seconds = time.perf_counter() - started
    merged, targets, _ = load_cache([p for f in families for p in paths[f][:-1]])
    held_merged, held_targets, _ = load_cache([paths[f][-1] for f in families])
    inputs, held_inputs = (np.stack([network_inputs(m) for m in ms]) for ms in (merged, held_merged))
    log(f"cache: {len(inputs)} train + {len(held_inputs)} held-out pairs ({cache_seconds:.0f} s)")

    torch.manual_seed(args.seed)
    net, history = build(ARCH, ARCH_CONFIG), []
    if args.init:
        history = warm_start(net, args.init, args.level)
    log(f"{ARCH} {ARCH_CONFIG}")
    record = train(net, evaluate, (inputs, targets, held_inputs, held_targets), args, log)
    meta = {
        "level": args.level,
        "version": VERSION,
        "arch": ARCH,
        "config": ARCH_CONFIG,
        "inputs": [f"sharpness-weighted registered mean (power {SHARPNESS_POWER})", "registered mean", f"temporal std / sqrt(T) x {STD_GAIN}"]
                  + [f"Wiener deconvolution of the registered mean, Gaussian sigma {s} px, NSR x{DECONVOLUTION_NSR}" for s in DECONVOLUTION_SIGMAS_PX]
                  + [f"measured residual blur of the registered mean / {BLUR_MAX_PX} px"],
        "families": families,
        "normalisation": "x -> (x - p0.5) / (p99.5 - p0.5) of the temporal mean; output mapped back",
        "registration": asdict(registration),
        "training": {
            **invocation("models.train_stack", argv, args),
            **record,
            "cache_seconds": round(cache_seconds, 1),
            "history": history,  # the runs this one was fine-tuned from, oldest first
        },
    }
    save(args.out or WEIGHTS_DIR / f"stack-{args.level}.pt", net, meta, started, log)
    return meta


if __name__ == "__main__":
    main()
