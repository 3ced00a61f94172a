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
WINDOW = 512  # window_weight estimates on a centred window of at most this side


def sure_weight(noisy: np.ndarray, restored: np.ndarray, variance: np.ndarray | float,
                rerun: Callable[[np.ndarray], np.ndarray], blur_undone: float = 0.0) -> float:
    """The SURE-optimal lambda in [0, 1] for ``noisy + lambda (restored - noisy)``; ``variance`` is the
    noise variance (per value or one number) and ``rerun(delta)`` the restorer's output for the input
    moved by ``delta``. Any part of an image gives an estimate for the whole (a sample is cheaper).
    ``blur_undone``: credit for the blur ``restored`` undid, as in :func:`sure_pair_weights`."""
    variance = np.broadcast_to(np.asarray(variance, np.float32), noisy.shape)
    divergence = _divergence(noisy, restored, variance, rerun) - blur_undone
    change = restored - noisy
    energy = float(np.sum(change * change))
    return float(np.clip((float(np.sum(variance)) - divergence) / energy, 0.0, 1.0)) if energy > 0 else 0.0


def sure_pair_weights(noisy: np.ndarray, first: np.ndarray, second: np.ndarray, variance: np.ndarray,
                      rerun_first: Callable[[np.ndarray], np.ndarray], rerun_second: Callable[[np.ndarray], np.ndarray],
                      first_blur_undone: float = 0.0) -> tuple[float, float]:
    """The SURE-optimal (alpha, beta), both >= 0 with alpha + beta <= 1, for
    ``noisy + alpha (first - noisy) + beta (second - noisy)``: two restorers' results and the input,
    weighed together. The estimate is a quadratic in (alpha, beta), minimised on a 0.005 grid.

    SURE measures the error against the input's expectation. Where that is the truth blurred and
    ``first`` undoes the blur, it counts the blur undone, energy ``first_blur_undone`` (|first - its
    re-blur|^2), as error: the true risk is lower by about 2 alpha of it, credited here."""
    total = float(np.sum(variance))
    changes = (first - noisy, second - noisy)
    d1, d2 = (_divergence(noisy, out, variance, rerun) for out, rerun in ((first, rerun_first), (second, rerun_second)))
    d1 -= first_blur_undone
    e11, e12, e22 = (float(np.sum(x * y)) for x, y in ((changes[0], changes[0]), (changes[0], changes[1]), (changes[1], changes[1])))
    alpha, beta = np.meshgrid(np.linspace(0.0, 1.0, 201), np.linspace(0.0, 1.0, 201), indexing="ij")
    risk = alpha ** 2 * e11 + 2 * alpha * beta * e12 + beta ** 2 * e22 + 2 * (alpha * (d1 - total) + beta * (d2 - total))
    risk[alpha + beta > 1 + 1e-9] = np.inf
    best = np.unravel_index(int(np.argmin(risk)), risk.shape)
    return float(alpha[best]), float(beta[best])


def _divergence(noisy: np.ndarray, restored: np.ndarray, variance: np.ndarray,
                rerun: Callable[[np.ndarray], np.ndarray]) -> float:
    """The noise-weighted divergence of the restorer, sum of variance * d restored / d noisy, from one probe."""
    step = PROBE * float(np.sqrt(np.mean(variance))) + 1e-12
    probe = np.random.default_rng(0).standard_normal(noisy.shape).astype(np.float32)
    return float(np.sum(variance * probe * (rerun(np.float32(step) * probe) - restored))) / step


def sure_blend(noisy: np.ndarray, restored: np.ndarray, variance: np.ndarray | float,
               rerun: Callable[[np.ndarray], np.ndarray], blur_undone: float = 0.0) -> np.ndarray:
    """The SURE-optimal blend of ``noisy`` and ``restored`` (:func:`sure_weight` on all of it)."""
    return blend(noisy, restored, sure_weight(noisy, restored, variance, rerun, blur_undone))


def blend(noisy: np.ndarray, restored: np.ndarray, weight: float) -> np.ndarray:
    """``noisy + weight (restored - noisy)``."""
    return noisy + np.float32(weight) * (restored - noisy)


def window_weight(noisy: np.ndarray, restored: np.ndarray, variance: float,
                  run: Callable[[np.ndarray, tuple[slice, ...]], np.ndarray], margin: int) -> float:
    """:func:`sure_weight` of (..., H, W) arrays estimated on their :func:`window` only: ``run(x,
    context)`` is the restorer on ``x``, the window grown by ``margin`` px of context (``context``
    indexes it in the whole), so a large image costs one rerun of a fraction of it."""
    if variance <= 0:
        return 0.0
    inside, context, inner = window(noisy.shape, margin)

    def rerun(delta: np.ndarray) -> np.ndarray:
        moved = noisy[context].copy()
        moved[inner] += delta
        return run(moved, context)[inner]

    return sure_weight(noisy[inside], restored[inside], variance, rerun)


def window(shape: tuple[int, ...], margin: int = 0) -> tuple[tuple[slice, ...], tuple[slice, ...], tuple[slice, ...]]:
    """Index tuples (leading axes kept) of the centred window of at most ``WINDOW`` px a side of an
    array whose last two axes are ``shape[-2:]``, of that window grown by ``margin`` px of context
    (inside the array), and of the window inside the context."""
    h, w = shape[-2:]
    y0, x0 = max(0, (h - WINDOW) // 2), max(0, (w - WINDOW) // 2)
    y1, x1 = min(h, y0 + WINDOW), min(w, x0 + WINDOW)
    cy0, cx0, cy1, cx1 = max(0, y0 - margin), max(0, x0 - margin), min(h, y1 + margin), min(w, x1 + margin)
    return ((..., slice(y0, y1), slice(x0, x1)), (..., slice(cy0, cy1), slice(cx0, cx1)),
            (..., slice(y0 - cy0, y1 - cy0), slice(x0 - cx0, x1 - cx0)))
