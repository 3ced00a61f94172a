"""Stein's unbiased risk estimate, to blend a restorer's output with its noisy input without the truth.

For noisy = truth + white noise of known variance, SURE estimates the squared error of
noisy + lambda (restored - noisy) for every lambda; the best is
lambda = (sum of variance - noise-weighted divergence of the restorer) / |restored - noisy|^2,
clipped to [0, 1]. The divergence comes from one Monte-Carlo probe (Ramani et al. 2008). A
restorer that changes more than the noise explains (smoothing a clean image, sharpening a
noiseless mean) is pulled back towards its input.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

PROBE = 0.1  # size of the probe, in noise stds


def sure_weight(noisy: np.ndarray, restored: np.ndarray, variance: np.ndarray | float,
                rerun: Callable[[np.ndarray], np.ndarray]) -> float:
    """The SURE-optimal lambda in [0, 1] for ``noisy + lambda (restored - noisy)``; ``variance`` is the
    noise variance (per value or one number) and ``rerun(delta)`` the restorer's output for the input
    moved by ``delta``. Any part of an image gives an estimate for the whole (a sample is cheaper)."""
    variance = np.broadcast_to(np.asarray(variance, np.float32), noisy.shape)
    step = PROBE * float(np.sqrt(np.mean(variance))) + 1e-12
    probe = np.random.default_rng(0).standard_normal(noisy.shape).astype(np.float32)
    divergence = float(np.sum(variance * probe * (rerun(np.float32(step) * probe) - restored))) / step
    change = restored - noisy
    energy = float(np.sum(change * change))
    return float(np.clip((float(np.sum(variance)) - divergence) / energy, 0.0, 1.0)) if energy > 0 else 0.0


def sure_blend(noisy: np.ndarray, restored: np.ndarray, variance: np.ndarray | float,
               rerun: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """The SURE-optimal blend of ``noisy`` and ``restored`` (:func:`sure_weight` on all of it)."""
    return noisy + np.float32(sure_weight(noisy, restored, variance, rerun)) * (restored - noisy)
