"""Merge registered frames into one, then undo the blur that optics, wobble and merging leave.

Measured on synthetic stacks (train split): weighting whole frames by sharpness (power 16) gains
0.3-1 dB over the plain mean; a Wiener deconvolution with a Gaussian PSF gains 1.5-3.5 dB more,
because after good registration the merged frame is mostly blurred, not noisy.
"""
from __future__ import annotations

import cv2
import numpy as np

SHARPNESS_PRE_BLUR_PX = 1.0  # keeps noise out of the sharpness measure
OUTLIER_CLIP_STD = 2.5
DEBLUR_PAD_PX = 16
DEBLUR_MAX_GAIN = 8.0  # no frequency is amplified more: bounds ringing from what registration missed


def sharpness(frame: np.ndarray) -> float:
    """Mean Laplacian energy of the lightly smoothed frame: higher when the frame is less blurred."""
    smoothed = cv2.GaussianBlur(frame, (0, 0), SHARPNESS_PRE_BLUR_PX)
    return float(np.mean(cv2.Laplacian(smoothed, cv2.CV_32F) ** 2))


def frame_weights(registered: np.ndarray, power: float) -> np.ndarray:
    """Weights (T,) summing to 1 that favour the sharpest frames (lucky imaging, chosen by algorithm)."""
    scores = np.array([sharpness(frame) for frame in registered])
    if scores.mean() <= 0:  # featureless frames: nothing to prefer
        return np.full(len(registered), 1.0 / len(registered))
    weights = (scores / scores.mean()) ** power
    return weights / weights.sum()


def effective_frames(weights: np.ndarray) -> float:
    """How many equally weighted frames would average away as much noise."""
    return float(1.0 / np.sum(weights ** 2))


def temporal_std(registered: np.ndarray) -> np.ndarray:
    """Per-pixel spread of the registered frames: noise plus what registration missed."""
    return np.std(registered, axis=0, dtype=np.float32)


def merge(registered: np.ndarray, weights: np.ndarray, spread: np.ndarray | None = None) -> np.ndarray:
    """Weighted mean after clipping each pixel's outliers to +-2.5 temporal std around its mean."""
    mean = np.tensordot(weights, registered, axes=1).astype(np.float32)
    spread = temporal_std(registered) if spread is None else spread
    low, high = mean - OUTLIER_CLIP_STD * spread, mean + OUTLIER_CLIP_STD * spread
    merged = np.zeros_like(mean)
    for w, frame in zip(weights, registered):
        merged += w * np.clip(frame, low, high)
    return merged


def wiener_deblur(image: np.ndarray, psf_sigma: float, noise_var: float, regularisation: float) -> np.ndarray:
    """Wiener deconvolution by a Gaussian PSF, with a 1/f^2 image spectrum prior.

    ``noise_var`` is the merged frame's noise variance; ``regularisation`` scales the
    noise-to-signal ratio (larger: smoother, safer). The gain is capped at ``DEBLUR_MAX_GAIN``
    (measured: 8 changes PSNR by < 0.05 dB on train and val stacks; 4 gains 0.4 dB on train but
    loses 0.3 dB on val at low noise).
    """
    padded = cv2.copyMakeBorder(image, *(DEBLUR_PAD_PX,) * 4, cv2.BORDER_REFLECT)
    fy = np.fft.fftfreq(padded.shape[0])[:, None]
    fx = np.fft.rfftfreq(padded.shape[1])[None, :]
    f2 = fx ** 2 + fy ** 2
    transfer = np.exp(-2.0 * np.pi ** 2 * psf_sigma ** 2 * f2)
    signal_scale = max(float(np.var(image)) * 0.02, 1e-6)  # image power ~ var * 0.02 / f^2
    noise_to_signal = np.maximum(regularisation * noise_var * f2 / signal_scale,
                                 transfer / DEBLUR_MAX_GAIN - transfer ** 2)
    restored = np.fft.irfft2(np.fft.rfft2(padded) * transfer / (transfer ** 2 + noise_to_signal), s=padded.shape)
    p = DEBLUR_PAD_PX
    return restored[p:-p, p:-p].astype(np.float32)
