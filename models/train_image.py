"""Train the single-image restorer (one blind network for every level) and write ``models/weights/image.pt``.

    python -m models.train_image

Seeded end to end: the clean images (models/data/image_pairs.py, TRAINING sources only), every
random crop and degradation, the initialisation. Pairs are made on the fly (a crop, a random
degradation: Gaussian, camera raw noise, JPEG, mixed, none), so no cache. Held out: the
validation photos and patterns under fixed degradations, scored every 1000 iterations.

The committed weights came in four stages, each ``--init`` the one before (the weight file records
them all, ``meta["init"]`` and ``meta["training"]``, with the held-out PSNR each printed):

1. ``python -m models.train_image --threads 2``: the defaults, 5000 iterations of 16 crops of 96 px,
   L1 loss, peak learning rate 5e-4 (1e-3 diverged at iteration 750), about 25 minutes;
2. ``--iters 8000 --lr 2.5e-4 --seed 1 --threads 1``, 77 minutes: image-denoise v2, whose weights
   the image classifier's network check keeps (``models/weights/image-noise.pt``);
3. ``--iters 15000 --lr 3e-4 --seed 3 --turns --threads 2``, 66 minutes (random quarter turns, mirrors
   and channel orders of the clean crops): held out 29.38 / 24.04 / 27.14 / 28.36 ->
   30.05 / 24.63 / 27.68 / 28.76 dB (sigma 15, sigma 50, camera, JPEG 40). In ``python -m
   models.eval_images`` it gains gray Gaussian noise 0.16 to 0.23 dB, gray camera noise at 30 photons
   0.95, colour sigma 50 0.50, and is within 0.1 dB elsewhere;
4. ``--iters 14000 --lr 2e-4 --seed 4 --turns --threads 2``, 80 minutes (sharing the machine at times):
   held out 30.40 / 24.86 / 27.98 / 28.93 -> 30.66 / 25.09 / 28.21 / 28.93 dB (this seed's draws of
   the same four). In ``eval_images``: gray sigma 50 +0.23 dB, gray camera noise at 30 photons +0.16,
   colour sigma 50 +0.15, colour sigma 25 -0.05, every other row within 0.06 dB (image-denoise v4).

An earlier third stage (``--seed 2 --lr 2e-4``, no turns) was dropped for losing colour camera noise,
JPEG and the mix in ``eval_images``; this one did too at first, and the cause was not the restorer:
the classifier checks a ``low`` reading with the network, and the new network removes more of the
grain of a clean JPEG photo (grace_hopper: 1.45 -> 6.23) and less of a camera photo's (coffee: 5.10 ->
0.60). With the check kept on the network its thresholds were calibrated on, they went away (to within 0.1 dB).
"""
from __future__ import annotations

import math
import time

import numpy as np

from models.data.image_pairs import CropSampler, add_gaussian, camera_noise, clean_images, degrade, jpeg
from models.registry import WEIGHTS_DIR
from models.training import train_on_batches, training_parser, use_threads

VERSION = "1"
ARCH = "imageunet"
ARCH_CONFIG = {"channels": 3, "widths": [32, 64, 96, 128], "blocks": [1, 2, 2, 2]}
HELD_OUT_CROP = 128


def held_out_pairs(seed: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Fixed degradations of centre crops of the validation images: name -> (degraded, clean), (N, 3, S, S)."""
    rng = np.random.default_rng([seed, 99])
    cleans = []
    for image in clean_images("val", seed=seed):
        h, w = image.shape[:2]
        y, x = (h - HELD_OUT_CROP) // 2, (w - HELD_OUT_CROP) // 2
        cleans.append(image[y:y + HELD_OUT_CROP, x:x + HELD_OUT_CROP])
    makers = {
        "sigma15": lambda c: np.rint(np.clip(add_gaussian(c, 15, rng), 0, 1) * 255) / 255,
        "sigma50": lambda c: np.rint(np.clip(add_gaussian(c, 50, rng), 0, 1) * 255) / 255,
        "camera": lambda c: np.rint(np.clip(camera_noise(c, 100, 0.002, rng), 0, 1) * 255) / 255,
        "jpeg40": lambda c: jpeg(c, 40),
        "clean": lambda c: degrade(c, "clean", rng),
    }
    return {name: (np.stack([make(c).transpose(2, 0, 1) for c in cleans]).astype(np.float32),
                   np.stack([c.transpose(2, 0, 1) for c in cleans]).astype(np.float32)) for name, make in makers.items()}


def evaluate(net, pairs: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict[str, str]:
    """Mean PSNR (data range 1) of input -> network per held-out degradation."""
    import torch

    def psnr(a, b):
        return float(np.mean([-10 * math.log10(max(float(np.mean((x - y) ** 2)), 1e-10)) for x, y in zip(a, b)]))

    scores = {}
    with torch.inference_mode():
        for name, (noisy, clean) in pairs.items():
            out = np.clip(net(torch.from_numpy(noisy)).numpy(), 0, 1)
            scores[name] = f"{psnr(noisy, clean):.2f}->{psnr(out, clean):.2f}"
    return scores


def main(argv: list[str] | None = None) -> dict:
    parser = training_parser(__doc__, "image.pt", iters=5000, batch=16, crop=96, lr=5e-4, per_level=False)
    parser.add_argument("--turns", action="store_true", help="random quarter turns, mirrors and channel orders of the clean crops")
    args = parser.parse_args(argv)

    use_threads(args.threads)
    started = time.perf_counter()
    rng = np.random.default_rng(args.seed)
    sampler = CropSampler(clean_images("train", seed=args.seed), rng, turns=args.turns)
    held = held_out_pairs(args.seed)
    return train_on_batches("models.train_image", argv, args, ARCH, ARCH_CONFIG, sampler, lambda net: evaluate(net, held),
                            {"version": VERSION, "inputs": ["RGB in 0..1 (gray as three equal planes)"]},
                            args.out or WEIGHTS_DIR / "image.pt", started)


if __name__ == "__main__":
    main()
