"""Train the x2 or x4 upscaler and write ``models/weights/upscale-x{scale}.pt``.

    python -m models.train_upscale --scale 2

Seeded end to end (the crops, their reduction, the initialisation). Pairs come from
:mod:`models.data.upscale_pairs` on the fly: clean crops of the TRAINING photos, patterns and dead
leaves, reduced by area averaging. Held out: centre crops of the validation photos, scored against
bicubic every 1000 iterations; the final score is recorded in the weight file.

The committed weights came from ``python -m models.train_upscale --scale 2 --threads 1`` (5000
iterations of 16 crops of 48 px, about 30 minutes) and ``--scale 4 --crop 32 --threads 1`` (the
x4 crops are 32 px so that their 128-px targets fit every training image), run side by side on the
2-core machine.
"""
from __future__ import annotations

import math
import time

import numpy as np

from models.data.image_pairs import clean_images
from models.data.upscale_pairs import UpscalePairs, reduce
from models.registry import WEIGHTS_DIR
from models.training import train_on_batches, training_parser, use_threads

VERSION = "1"
ARCH = "upscaler"
HELD_OUT_CROP = 192


def held_out_pairs(scale: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(small, large) centre crops of the validation images, (N, 3, S, S) and (N, 3, scale S, scale S)."""
    smalls, larges = [], []
    for image in clean_images("val", seed=seed):
        h, w = image.shape[:2]
        y, x = (h - HELD_OUT_CROP) // 2, (w - HELD_OUT_CROP) // 2
        large = image[y:y + HELD_OUT_CROP, x:x + HELD_OUT_CROP]
        smalls.append(np.rint(np.clip(reduce(large, scale), 0, 1) * 255).transpose(2, 0, 1) / 255)
        larges.append(large.transpose(2, 0, 1))
    return np.stack(smalls).astype(np.float32), np.stack(larges).astype(np.float32)


def evaluate(net, pairs: tuple[np.ndarray, np.ndarray], scale: int) -> str:
    """Mean PSNR (data range 1, 8-px border left out) of bicubic -> network on the held-out crops."""
    import torch
    import torch.nn.functional as F

    def psnr(a, b):
        a, b = a[..., 8:-8, 8:-8], b[..., 8:-8, 8:-8]
        return float(np.mean([-10 * math.log10(max(float(np.mean((x - y) ** 2)), 1e-10)) for x, y in zip(a, b)]))

    small, large = pairs
    with torch.inference_mode():
        x = torch.from_numpy(small)
        bicubic = np.clip(F.interpolate(x, scale_factor=scale, mode="bicubic", align_corners=False).numpy(), 0, 1)
        out = np.clip(net(x).numpy(), 0, 1)
    return f"bicubic {psnr(bicubic, large):.2f} -> {psnr(out, large):.2f}"


def main(argv: list[str] | None = None) -> dict:
    parser = training_parser(__doc__, "upscale-x{scale}.pt", iters=6000, batch=16, crop=48, lr=1e-3, per_level=False)
    parser.add_argument("--scale", type=int, choices=(2, 4), required=True)
    args = parser.parse_args(argv)

    use_threads(args.threads)
    started = time.perf_counter()
    rng = np.random.default_rng([args.seed, args.scale])
    pairs = UpscalePairs(clean_images("train", seed=args.seed), args.scale, rng)
    held = held_out_pairs(args.scale, args.seed)
    config = {"scale": args.scale, "channels": 3, "width": 32, "blocks": 6}
    return train_on_batches("models.train_upscale", argv, args, ARCH, config, pairs, lambda net: evaluate(net, held, args.scale),
                            {"version": VERSION, "inputs": ["RGB in 0..1 (gray as three equal planes)"]},
                            args.out or WEIGHTS_DIR / f"upscale-x{args.scale}.pt", started)


if __name__ == "__main__":
    main()
