"""Synthetic stacks turned into (merged channels, target) pairs, cached on disk for training.

Each pair: a stack from one degradation family (:data:`models.data.families.FAMILIES`) of one
clean image (``TRAIN_SIZE`` square), passed through :func:`models.stack.learned.prepare` (normalise, register, merge: the exact code the
restorer runs) -> merged channels (3, H, W) = sharpness-weighted mean, plain mean and scaled std of the mean; target (H, W) =
the ground truth in the same normalised units. The trainer adds the Wiener channels on loading
(:func:`models.stack.learned.network_inputs`, cheap), as the restorer does.

Registration costs ~0.6 s a stack, so pairs are made once and stored in shards under ``CACHE_DIR``
(outside the repository; override with RESTORA_CACHE). Every stack has its own seed
(``[seed, level, family, shard, index]``), so a shard is the same whichever order shards are made in,
and a half-made cache resumes where it stopped. Shards are per family, so a model can be trained
without one family (leave-one-family-out) from the same cache.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from models.data.families import FAMILIES
from models.data.sources import Split, clean_images
from models.data.synthetic import PHOTON_RANGES
from models.interface import NOISE_LEVELS, NoiseLevel
from models.stack import learned, noise
from models.stack.learned import LEVEL_REGISTRATION, RegistrationConfig, prepare

CACHE_DIR = Path(os.environ.get("RESTORA_CACHE", "/tmp/restora-cache")) / "stack-pairs"
# Train slightly past each level's edges: the classifier may send a boundary stack either way.
TRAIN_MARGIN = 1.25
TRAIN_SIZE = 208  # px: every pair the same size, so shards stack into one array
TRAIN_FAMILIES = tuple(FAMILIES)  # their order seeds the pairs
# The code a pair is made by (simulation, registration, merge): the cache key covers its text.
PAIR_CODE = tuple(Path(__file__).with_name(name) for name in ("stack_pairs.py", "families.py", "physics.py", "synthetic.py", "sources.py", "targets.py")) + (
    Path(learned.__file__), Path(noise.__file__))


def training_photons(level: NoiseLevel, rng: np.random.Generator, margin: float = TRAIN_MARGIN) -> float:
    """Log-uniform photons over ``level``'s range widened by ``margin`` at both ends."""
    low, high = PHOTON_RANGES[level]
    return float(math.exp(rng.uniform(math.log(low / margin), math.log(high * margin))))


def make_pair(clean01: np.ndarray, rng: np.random.Generator, photons: float, cfg: RegistrationConfig, family: str) -> tuple[np.ndarray, np.ndarray]:
    """(inputs (C, H, W), target (H, W)) in normalised units for one synthetic stack of ``family``."""
    simulated = FAMILIES[family](clean01, rng, photons)
    prepared = prepare(simulated.stack, cfg)
    target = (simulated.truth - np.float32(prepared.offset)) / np.float32(prepared.scale)
    return prepared.merged, target.astype(np.float32)


def pairs_digest(cfg: RegistrationConfig, code: tuple[Path, ...] = PAIR_CODE) -> str:
    """Digest of the registration settings and of the code that makes pairs: changing either never
    reuses stale pairs (a cache keyed on the settings alone once kept pairs registered by replaced code)."""
    digest = hashlib.sha1(json.dumps(asdict(cfg), sort_keys=True).encode())
    for path in code:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:8]


def shard_path(level: NoiseLevel, split: Split, shard: int, cfg: RegistrationConfig, family: str, root: Path = CACHE_DIR) -> Path:
    """Shards live under :func:`pairs_digest`."""
    return root / f"{level}-{split}-{family}-{TRAIN_SIZE}-{pairs_digest(cfg)}" / f"shard{shard:03d}.npz"


def build_shard(level: NoiseLevel, split: Split, shard: int, cfg: RegistrationConfig, family: str, seed: int = 0,
                root: Path = CACHE_DIR) -> Path:
    """One shard of ``family``: every source image of ``split`` (cropped with seed ``[seed, shard]``) once."""
    path = shard_path(level, split, shard, cfg, family, root)
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    images = clean_images(split, size=TRAIN_SIZE, seed=seed * 1000 + shard)
    inputs, targets, photons = [], [], []
    for index, clean in enumerate(images):
        rng = np.random.default_rng([seed, NOISE_LEVELS.index(level), TRAIN_FAMILIES.index(family), shard, index])
        count = training_photons(level, rng)
        x, y = make_pair(clean, rng, count, cfg, family)
        inputs.append(x)
        targets.append(y)
        photons.append(count)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, inputs=np.stack(inputs), targets=np.stack(targets), photons=np.array(photons))
    tmp.rename(path)
    return path


def build_cache(level: NoiseLevel, family: str, split: Split = "train", shards: int = 3, cfg: RegistrationConfig | None = None,
                seed: int = 0, root: Path = CACHE_DIR, log=print) -> list[Path]:
    """Shards ``0 .. shards-1`` of ``level``'s pairs of ``family``, registered with ``cfg`` (default: the level's)."""
    cfg = cfg or LEVEL_REGISTRATION[level]
    paths = []
    for shard in range(shards):
        started = time.perf_counter()
        existed = shard_path(level, split, shard, cfg, family, root).exists()
        paths.append(build_shard(level, split, shard, cfg, family, seed, root))
        if not existed:
            log(f"{level}/{split}/{family} shard {shard + 1}/{shards}: {time.perf_counter() - started:.0f} s")
    return paths


def load_cache(paths: list[Path]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(inputs (N, C, H, W), targets (N, 1, H, W), photons (N,)) from shards."""
    parts = [np.load(p) for p in paths]
    inputs = np.concatenate([p["inputs"] for p in parts]).astype(np.float32)
    targets = np.concatenate([p["targets"] for p in parts])[:, None].astype(np.float32)
    photons = np.concatenate([p["photons"] for p in parts])
    return inputs, targets, photons


if __name__ == "__main__":  # python -m models.data.stack_pairs LEVEL FAMILY [SHARDS]: fill the cache only
    import sys

    import cv2

    cv2.setNumThreads(1)
    build_cache(sys.argv[1], sys.argv[2], shards=int(sys.argv[3]) if len(sys.argv) > 3 else 3)
