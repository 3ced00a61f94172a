"""Still stacks: the plain mean, denoised by BM3D under a generalized Anscombe transform.

The mean of a still stack is the truth plus Poisson-Gaussian noise of known variance, a pure denoising
problem, and BM3D there beats the turbulence network by up to 7 dB (flat printed targets, where the
network's precision, not the noise, is the limit). :func:`models.stack.learned.blend_still` lets SURE
weigh it against the network's result and the mean. Also the evaluation's BM3D baselines' transform.
"""
from __future__ import annotations

import functools
import logging
from types import ModuleType

import numpy as np

log = logging.getLogger(__name__)


@functools.cache  # one warning per process where it does not load
def load_bm3d(required: bool = False) -> ModuleType | None:
    """The ``bm3d`` package, or None where its compiled library does not load (it ships x86-64 Linux,
    Windows and macOS builds only: on ARM Linux still stacks get the blend of mean and network); the
    evaluations' baselines pass ``required``, and then it raises."""
    if not hasattr(np, "trapz"):  # bm3d 4.0.3 calls np.trapz, removed in numpy 2.4
        np.trapz = np.trapezoid
    try:
        import bm3d
    except (ImportError, OSError) as error:
        if required:
            raise
        log.warning("BM3D is not available here (%s): still stacks get the blend of mean and network alone", error)
        return None
    return bm3d


def noise_curve(mean: np.ndarray, variance: np.ndarray) -> tuple[float, float]:
    """(a, c) of ``variance = a * mean + c``, least squares over the pixels (a > 0)."""
    design = np.stack([mean.ravel(), np.ones(mean.size, np.float32)], axis=1).astype(np.float64)
    a, c = np.linalg.lstsq(design, variance.ravel().astype(np.float64), rcond=None)[0]
    return max(float(a), 1e-12), float(c)


def anscombe(x: np.ndarray, a: float, c: float) -> np.ndarray:
    """Generalized Anscombe transform for variance a * x + c: unit noise variance."""
    return (2.0 / a) * np.sqrt(np.maximum(a * x + 0.375 * a * a + c, 0.0))


def inverse_anscombe(y: np.ndarray, a: float, c: float) -> np.ndarray:
    """Algebraic inverse (merged frames hold hundreds of photons or more, where it is unbiased enough)."""
    return ((a * y / 2.0) ** 2 - 0.375 * a * a - c) / a


def bm3d_of_mean(bm3d: ModuleType, mean: np.ndarray, curve: tuple[float, float], strength: float = 1.0) -> np.ndarray:
    """BM3D of ``mean`` whose noise variance is ``a * mean + c`` (``curve``), told a noise std of
    ``strength`` (1: the transform's own), float32."""
    a, c = curve
    z = anscombe(mean, a, c)
    return inverse_anscombe(np.asarray(bm3d.bm3d(z, strength)).reshape(z.shape), a, c).astype(np.float32)
