"""What the per-level training scripts share: their common options, random crops and the optimisation loop.

Both train_stack and train_video fit a small network with Adam under a one-cycle schedule on an L1
loss (or mean squared error, or the mean of per-crop PSNRs, e.g. to fine-tune for PSNR), with gradient clipping, logging every 250 iterations and scoring the held-out set every 1000.
"""
from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np


def negative_psnr(out, target):
    """Mean over the batch of each crop's 10 log10(MSE): every crop's dB counts the same, so a nearly
    noiseless static stack (where any error is many dB) weighs as much as a hard turbulent one."""
    import torch

    return 10 * torch.log10(((out - target) ** 2).mean(dim=(1, 2, 3)) + 1e-10).mean()


def _functional(name: str):
    def loss(out, target):
        import torch

        return getattr(torch.nn.functional, name)(out, target)
    return loss


LOSSES = {"l1": _functional("l1_loss"), "mse": _functional("mse_loss"), "psnr": negative_psnr}  # --loss choices


def training_parser(description: str, weights_name: str, *, iters: int, batch: int, crop: int, lr: float,
                    per_level: bool = True) -> argparse.ArgumentParser:
    """The options every training script takes (with its own defaults; ``--level`` when it trains one
    network per noise level); the script adds its data options."""
    from models.interface import NOISE_LEVELS

    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    if per_level:
        parser.add_argument("--level", choices=NOISE_LEVELS, required=True)
    parser.add_argument("--iters", type=int, default=iters)
    parser.add_argument("--batch", type=int, default=batch)
    parser.add_argument("--crop", type=int, default=crop)
    parser.add_argument("--lr", type=float, default=lr)
    parser.add_argument("--loss", choices=LOSSES, default="l1")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (OpenCV gets one: the machine is shared)")
    parser.add_argument("--out", type=Path, default=None, help=f"default models/weights/{weights_name}")
    parser.add_argument("--init", type=Path, default=None, help="start from this weight file (same architecture): a longer run in stages")
    return parser


def invocation(module: str, argv: list[str] | None, args: argparse.Namespace) -> dict[str, Any]:
    """How the run was started, for the weight file: the command line and every option's value."""
    import sys

    return {"command": f"python -m {module} " + " ".join(argv if argv is not None else sys.argv[1:]),
            "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}}


def use_threads(threads: int) -> None:
    """Training threads: ``threads`` for torch, one for OpenCV (pair making runs beside other jobs)."""
    import cv2
    import torch

    torch.set_num_threads(threads)
    cv2.setNumThreads(1)


def log(message: str) -> None:
    print(message, flush=True)


def crops(inputs: np.ndarray, targets: np.ndarray, rng: np.random.Generator, batch: int, size: int):
    """A random batch of ``size`` crops with random flips / 90-degree turns, as float32 tensors."""
    import torch

    n, _, h, w = inputs.shape
    idx = rng.integers(0, n, batch)
    ys, xs = rng.integers(0, h - size + 1, batch), rng.integers(0, w - size + 1, batch)
    x = np.stack([inputs[i, :, y:y + size, xx:xx + size] for i, y, xx in zip(idx, ys, xs)]).astype(np.float32)
    t = np.stack([targets[i, :, y:y + size, xx:xx + size] for i, y, xx in zip(idx, ys, xs)]).astype(np.float32)
    k = int(rng.integers(0, 4))
    x, t = np.rot90(x, k, axes=(2, 3)), np.rot90(t, k, axes=(2, 3))
    if rng.random() < 0.5:
        x, t = x[..., ::-1], t[..., ::-1]
    return torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(np.ascontiguousarray(t))


def train_on_batches(module: str, argv: list[str] | None, args: argparse.Namespace, arch: str, config: dict[str, Any],
                     sampler, held_out: Callable[[Any], Any], meta: dict[str, Any], out: Path, started: float) -> dict[str, Any]:
    """Build ``arch`` (seeded by ``args.seed``), ``fit`` it on ``sampler.batch(args.batch, args.crop)``
    pairs made on the fly, and save it with ``meta`` plus the training record; ``held_out(net)``
    scores it before, during and after. Returns the weight file's metadata."""
    import torch

    from models.archs import build

    torch.manual_seed(args.seed)
    net = build(arch, config)
    if args.init:
        meta = {**meta, "init": start_from(net, args.init)}
    params = sum(p.numel() for p in net.parameters())
    log(f"{arch} {config}: {params} parameters; before: {held_out(net.eval())}")

    def next_batch():
        x, t = sampler.batch(args.batch, args.crop)
        return torch.from_numpy(x), torch.from_numpy(t)

    seconds = fit(net, next_batch, lambda: held_out(net), args.iters, args.lr, log, args.loss)
    meta = {**meta, "arch": arch, "config": config,
            "training": {**invocation(module, argv, args), "parameters": int(params), "train_seconds": round(seconds, 1),
                         "held_out_psnr": held_out(net)}}
    save(out, net, meta, started, log)
    return meta


def start_from(net, path: Path) -> list[dict[str, Any]]:
    """Load the weights of ``path`` (same architecture) into ``net``; returns the training records of
    the stages that made that file, oldest first, which the new file keeps as its ``init``."""
    from models.archs import load_weights

    earlier, earlier_meta = load_weights(path, "cpu")
    net.load_state_dict(earlier.state_dict())
    before = earlier_meta.get("init") or []
    return (before if isinstance(before, list) else [before]) + [earlier_meta.get("training")]


def train(net, evaluate: Callable, data: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray], args, log: Callable[[str], None]) -> dict[str, Any]:
    """Score ``net`` on the held-out pairs, ``fit`` it on random crops, score it again.

    ``data`` is (inputs, targets, held-out inputs, held-out targets); ``args`` the script's seed,
    batch, crop, iters and lr. Returns the weight file's training record fields.
    """
    inputs, targets, held_inputs, held_targets = data
    rng = np.random.default_rng(args.seed)
    params = sum(p.numel() for p in net.parameters())
    log(f"{params} parameters; before: {evaluate(net.eval(), held_inputs, held_targets)}")
    seconds = fit(net, lambda: crops(inputs, targets, rng, args.batch, args.crop),
                  lambda: evaluate(net, held_inputs, held_targets), args.iters, args.lr, log, args.loss)
    return {"pairs": int(len(inputs)), "parameters": int(params), "train_seconds": round(seconds, 1),
            "held_out_psnr": evaluate(net, held_inputs, held_targets)}


def save(out: Path, net, meta: dict[str, Any], started: float, log: Callable[[str], None]) -> None:
    """Write the weight file (float16 state dict + metadata) and say what was written."""
    from models.archs import save_weights

    out.parent.mkdir(parents=True, exist_ok=True)
    save_weights(out, net, meta)
    log(json.dumps(meta["training"], indent=1))
    log(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB) in {time.perf_counter() - started:.0f} s")


def fit(net, next_batch: Callable[[], tuple[Any, Any]], held_out: Callable[[], dict[str, float]], iters: int, lr: float,
        log: Callable[[str], None] = print, loss_name: str = "l1") -> float:
    """Train ``net`` in place for ``iters`` steps on ``next_batch()``; returns the training seconds.

    ``held_out()`` scores the network (called in eval mode, training mode is restored after).
    """
    import torch

    loss_fn = LOSSES[loss_name]
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=iters, pct_start=0.1)
    net.train()
    started = time.perf_counter()
    running, counted = 0.0, 0
    for it in range(1, iters + 1):
        x, t = next_batch()
        loss = loss_fn(net(x), t)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 0.5)
        opt.step()
        sched.step()
        running, counted = running + loss.item(), counted + 1
        if it % 250 == 0 or it == iters:
            msg = f"iter {it}: loss {running / counted:.5f}, {time.perf_counter() - started:.0f} s"
            if it % 1000 == 0 or it == iters:
                net.eval()
                msg += f", held-out {held_out()}"
                net.train()
            log(msg)
            running, counted = 0.0, 0
    net.eval()
    return time.perf_counter() - started
