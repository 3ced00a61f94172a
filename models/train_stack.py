"""Train the stack network for one noise level and write ``models/weights/stack-{level}.pt``.

    python -m models.train_stack --level low
    python -m models.train_stack --level medium
    python -m models.train_stack --level high

Seeded end to end: the pair cache (models/data/stack_pairs.py; made on first use, ~0.6 s of
registration per stack, TRAIN images only), crop order, initialisation. The last cache shard is
held out to watch for overfitting; it is never trained on.

Wall times on the 2-core project machine (shared with other jobs), one thread:
(filled in below after the runs that produced the committed weights)
"""
from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from models.data.stack_pairs import CACHE_DIR, build_cache, load_cache
from models.interface import NOISE_LEVELS
from models.registry import WEIGHTS_DIR
from models.stack.learned import LEVEL_REGISTRATION, SHARPNESS_POWER, STD_GAIN, save_weights

VERSION = "2"
ARCH = "resunet"
ARCH_CONFIG = {"in_ch": 3, "widths": [16, 32, 48, 64], "blocks": [1, 1, 2, 2]}


def crops(inputs, targets, rng, batch: int, size: int):
    """A random batch of ``size`` crops with random flips / 90-degree turns, as torch tensors."""
    import torch

    n, _, h, w = inputs.shape
    idx = rng.integers(0, n, batch)
    ys, xs = rng.integers(0, h - size + 1, batch), rng.integers(0, w - size + 1, batch)
    x = np.stack([inputs[i, :, y:y + size, xx:xx + size] for i, y, xx in zip(idx, ys, xs)])
    t = np.stack([targets[i, :, y:y + size, xx:xx + size] for i, y, xx in zip(idx, ys, xs)])
    k = int(rng.integers(0, 4))
    x, t = np.rot90(x, k, axes=(2, 3)), np.rot90(t, k, axes=(2, 3))
    if rng.random() < 0.5:
        x, t = x[..., ::-1], t[..., ::-1]
    return torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(np.ascontiguousarray(t))


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
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--level", choices=NOISE_LEVELS, required=True)
    parser.add_argument("--iters", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--crop", type=int, default=96)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--shards", type=int, default=12, help="cache shards of 24 stacks; the last is held out")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None, help="default models/weights/stack-LEVEL.pt")
    args = parser.parse_args(argv)

    import cv2
    import torch

    from models.archs import build

    torch.set_num_threads(args.threads)
    cv2.setNumThreads(1)
    started = time.perf_counter()
    paths = build_cache(args.level, "train", args.shards, seed=0)
    cache_seconds = time.perf_counter() - started
    inputs, targets, _ = load_cache(paths[:-1])
    held_inputs, held_targets, _ = load_cache(paths[-1:])
    print(f"cache: {len(inputs)} train + {len(held_inputs)} held-out pairs ({cache_seconds:.0f} s)", flush=True)

    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    net = build(ARCH, ARCH_CONFIG)
    params = sum(p.numel() for p in net.parameters())
    opt = torch.optim.Adam(net.parameters(), lr=args.lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=args.iters, pct_start=0.1)
    print(f"{ARCH} {ARCH_CONFIG}: {params} parameters; before: {evaluate(net.eval(), held_inputs, held_targets)}", flush=True)
    net.train()
    train_started = time.perf_counter()
    running, counted = 0.0, 0
    for it in range(1, args.iters + 1):
        x, t = crops(inputs, targets, rng, args.batch, args.crop)
        loss = torch.nn.functional.l1_loss(net(x), t)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 0.5)
        opt.step()
        sched.step()
        running, counted = running + loss.item(), counted + 1
        if it % 250 == 0 or it == args.iters:
            msg = f"iter {it}: loss {running / counted:.5f}, {time.perf_counter() - train_started:.0f} s"
            if it % 1000 == 0 or it == args.iters:
                msg += f", held-out {evaluate(net.eval(), held_inputs, held_targets)}"
                net.train()
            print(msg, flush=True)
            running, counted = 0.0, 0
    train_seconds = time.perf_counter() - train_started
    held = evaluate(net.eval(), held_inputs, held_targets)
    meta = {
        "level": args.level,
        "version": VERSION,
        "arch": ARCH,
        "config": ARCH_CONFIG,
        "inputs": [f"sharpness-weighted registered mean (power {SHARPNESS_POWER})", "registered mean", f"temporal std / sqrt(T) x {STD_GAIN}"],
        "normalisation": "x -> (x - p0.5) / (p99.5 - p0.5) of the temporal mean; output mapped back",
        "registration": asdict(LEVEL_REGISTRATION[args.level]),
        "training": {
            "command": f"python -m models.train_stack --level {args.level}",
            "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            "pairs": int(len(inputs)),
            "parameters": int(params),
            "train_seconds": round(train_seconds, 1),
            "cache_seconds": round(cache_seconds, 1),
            "held_out_psnr": held,
        },
    }
    out = args.out or WEIGHTS_DIR / f"stack-{args.level}.pt"
    out.parent.mkdir(parents=True, exist_ok=True)
    save_weights(out, net, meta)
    print(json.dumps(meta["training"], indent=1), flush=True)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB) in {time.perf_counter() - started:.0f} s", flush=True)
    return meta


if __name__ == "__main__":
    main()
