"""Train the stack network for one noise level and write ``models/weights/stack-{level}.pt``.

    python -m models.train_stack --level low
    python -m models.train_stack --level medium
    python -m models.train_stack --level high

Seeded end to end: the pair cache (models/data/stack_pairs.py; made on first use, ~0.6 s of
registration per stack, TRAIN images only), crop order, initialisation. The last cache shard is
held out to watch for overfitting; it is never trained on.

The committed ``models/weights/stack-*.pt`` were made in these runs (each file's
metadata records them all; ``training.history`` holds the earlier ones):

1. ``python -m models.train_stack --level LEVEL`` as of commit 4a9eb21: 3000 iterations from
   scratch, three input channels (no Wiener channels), one-pass registration; ~31 min.
2. ``python -m models.train_stack --level LEVEL --init FIRST.pt --iters 2000 --lr 5e-4 --shards 7``
   with this file: the first run's weights, the Wiener channels added at zero weight, fine-tuned
   on pairs made with the two-pass registration; ~35 min, pair cache (~15 min) not included.
3. low and medium only: ``--init models/weights/stack-LEVEL.pt --iters 3000 --lr 3e-4 --shards 7``
   from run 2's weights; ~18 min (two levels at once on an otherwise idle machine).
4. low and medium only: ``--init models/weights/stack-LEVEL.pt --iters 5000 --lr 3e-4 --shards 12 --loss mse``
   from run 3's weights: 11 training shards and a mean-squared-error loss (PSNR is what is
   measured); ~45 min beside other training, pair cache for the 5 new shards ~4 min. Held-out
   (shard 11): low 34.29 -> 34.62, medium 32.90 -> 33.31 dB.
5. low only: ``--init models/weights/stack-LEVEL.pt --iters 2500 --lr 2e-4 --shards 12 --loss mse``
   from run 4's weights; ~18 min. Held-out: low 34.62 -> 34.68 dB.

In all, 15 500 iterations for low, 13 000 for medium and 5 000 for high: at ~0.3 s an iteration
on one idle core, about 78, 65 and 25 minutes of one core.

Wall times on the 2-core project machine, one thread each, three levels at once beside other jobs.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from models.data.stack_pairs import build_cache, load_cache
from models.registry import WEIGHTS_DIR
from models.training import invocation, log, save, train, training_parser, use_threads
from models.stack.learned import (DECONVOLUTION_NSR, DECONVOLUTION_SIGMAS_PX, LEVEL_REGISTRATION, SHARPNESS_POWER, STD_GAIN,
                                  load_weights, network_inputs)

VERSION = "2"
ARCH = "resunet"
ARCH_CONFIG = {"in_ch": 3 + len(DECONVOLUTION_SIGMAS_PX), "widths": [16, 32, 48, 64], "blocks": [1, 1, 2, 2]}


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


def evaluate(net, inputs, targets) -> dict[str, float]:
    """Mean PSNR (in normalised units, data range 1) of merge and network on whole frames."""
    import torch

    out_psnr, in_psnr = [], []
    with torch.inference_mode():
        for x, t in zip(inputs, targets):
            y = net(torch.from_numpy(x[None]))[0].numpy()
            c = (slice(None), slice(4, -4), slice(4, -4))
            out_psnr.append(-10 * math.log10(float(np.mean((y[c] - t[c]) ** 2))))
            in_psnr.append(-10 * math.log10(float(np.mean((x[:1][c] - t[c]) ** 2))))
    return {"merge": float(np.mean(in_psnr)), "net": float(np.mean(out_psnr))}


def main(argv: list[str] | None = None) -> dict:
    parser = training_parser(__doc__, "stack-LEVEL.pt", iters=3000, batch=8, crop=96, lr=1e-3)
    parser.add_argument("--shards", type=int, default=12, help="cache shards of 24 stacks; the last is held out")
    parser.add_argument("--init", type=Path, default=None, help="start from these weights (fine-tuning) instead of at random")
    args = parser.parse_args(argv)

    import torch

    from models.archs import build

    use_threads(args.threads)
    started = time.perf_counter()
    registration = LEVEL_REGISTRATION[args.level]
    paths = build_cache(args.level, "train", args.shards, registration, seed=0)
    cache_seconds = time.perf_counter() - started
    merged, targets, _ = load_cache(paths[:-1])
    held_merged, held_targets, _ = load_cache(paths[-1:])
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
                  + [f"Wiener deconvolution of the registered mean, Gaussian sigma {s} px, NSR x{DECONVOLUTION_NSR}" for s in DECONVOLUTION_SIGMAS_PX],
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
