"""Degradation families: independent simulators of raw turbulence stacks, so quality is also measured
on a family a model never saw (leave-one-family-out).

- ``current``: :func:`models.data.synthetic.make_stack`, the project's first simulator (Gaussian
  blur 0.4-1 px per stack, +-30 % per frame; jitter 0.3-1.5 px; one wobble model).
- ``wide``: :func:`make_wide_stack`, every range wider than any one simulator: per-frame blur from
  none to 2 px, drawn per frame or per stack, Gaussian, defocus-disc or long-tailed Moffat PSFs;
  jitter 0-3 px; wobble 0-2.5 px from three field models, independent or correlated in time;
  saturation; 8 to 300 frames; one stack in ten static (noise only).
- ``physics``: :func:`models.data.physics.make_stack`, von Karman phase screens (aotools) with frozen
  flow and anisoplanatic tilts and PSFs, D/r0 from 1 to 6.
- ``static``: :func:`make_static_stack`, no motion and no blur at all: the right answer is the plain
  mean, and any "deblurring" only hurts.
- ``sharp``: :func:`make_sharp_stack`, the ``wide`` motion with (nearly) sharp frames, per-frame blur
  0-0.5 px: the registered mean is already sharp, so the right answer is it, denoised, not sharpened.
  (Lucky frames and short exposures give such stacks; on 240 sharp frames of a smooth portrait the
  medium network trained without this family over-sharpened to 4.5 dB below the aligned mean.)

Every family has the signature ``(clean01, rng, photons, frames=None) -> SimulatedStack``; a family
whose frame count varies draws it when ``frames`` is None. All draw only from ``rng`` (seeded).
"""
from __future__ import annotations

import math
from typing import Callable

import cv2
import numpy as np

from models.data.synthetic import BLACK_LEVEL_DN, EXPOSURE_FRACTION, MAX_DN, READ_NOISE_DN, SimulatedStack, camera_scene, expose, ground_truth, make_stack

WIDE_BLUR_PX = (0.0, 2.0)  # equivalent Gaussian sigma of a frame's PSF
WIDE_JITTER_STD_PX = (0.0, 3.0)
WIDE_WOBBLE_RMS_PX = (0.0, 2.5)
WIDE_FRAMES = (8, 300)
SHARP_BLUR_PX = (0.0, 0.5)  # the ``sharp`` family's frames: below what a deblurring can gain from
SATURATED_EXPOSURE_FRACTION = (0.9, 1.4)  # of the 12-bit range: the brightest parts clip
KERNEL_RADIUS_PX = 12  # long-tailed kernels are cut here and renormalised
Family = Callable[..., SimulatedStack]


def psf_kernel(shape: str, width: float, beta: float = 2.5) -> np.ndarray:
    """A normalised non-Gaussian PSF of equivalent Gaussian sigma ``width`` px (Gaussians go to cv2.GaussianBlur).

    ``disc``: defocus, a uniform disc of radius 2 x width (a disc's per-axis std is radius / 2).
    ``moffat``: (1 + r^2 / alpha^2)^-beta with the FWHM of a Gaussian of that width: long tails (turbulence).
    """
    r = KERNEL_RADIUS_PX
    ys, xs = np.mgrid[-r:r + 1, -r:r + 1].astype(np.float32)
    radius2 = xs * xs + ys * ys
    if shape == "disc":
        sub = 8  # supersampled coverage of the disc's edge
        fine = (np.arange(sub, dtype=np.float32) + 0.5) / sub - 0.5
        fy, fx = np.meshgrid(fine, fine, indexing="ij")
        covered = ((xs[..., None, None] + fx) ** 2 + (ys[..., None, None] + fy) ** 2 <= (2 * width) ** 2).mean(axis=(2, 3))
        kernel = covered.astype(np.float32) if covered.sum() > 0 else (radius2 == 0).astype(np.float32)
    else:
        fwhm = 2.3548 * width
        alpha = fwhm / (2 * math.sqrt(2 ** (1 / beta) - 1))
        kernel = (1 + radius2 / alpha ** 2) ** -beta
    return (kernel / kernel.sum()).astype(np.float32)


def blur(image: np.ndarray, shape: str, width: float, beta: float = 2.5) -> np.ndarray:
    if width < 0.05:
        return image
    if shape == "gaussian":
        return cv2.GaussianBlur(image, (0, 0), width, borderType=cv2.BORDER_REFLECT)
    return cv2.filter2D(image, -1, psf_kernel(shape, width, beta), borderType=cv2.BORDER_REFLECT)


def wobble_field(shape: tuple[int, int], rms: float, model: str, scale_px: float, rng: np.random.Generator) -> np.ndarray:
    """A smooth (H, W, 2) displacement field of RMS ``rms``: ``grid`` (cubic-upsampled random grid of
    ``scale_px`` cells), ``filtered`` (white noise under a Gaussian of ``scale_px / 2``) or ``multiscale``
    (a grid field plus a finer one at a third of its size and half its strength)."""
    h, w = shape
    if rms <= 0:
        return np.zeros((h, w, 2), np.float32)
    if model == "filtered":
        field = cv2.GaussianBlur(rng.standard_normal((h, w, 2)).astype(np.float32), (0, 0), scale_px / 2, borderType=cv2.BORDER_REFLECT)
    else:
        def grid(cell: float) -> np.ndarray:
            gh, gw = max(2, math.ceil(h / cell) + 1), max(2, math.ceil(w / cell) + 1)
            return cv2.resize(rng.standard_normal((gh, gw, 2)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)

        field = grid(scale_px)
        if model == "multiscale":
            coarse_rms = np.sqrt(np.mean(field ** 2)) + 1e-6
            fine = grid(max(4.0, scale_px / 3))
            field = field / coarse_rms + 0.5 * fine / (np.sqrt(np.mean(fine ** 2)) + 1e-6)
    return field * np.float32(rms / (np.sqrt(np.mean(field ** 2)) + 1e-6))


def _camera(rng: np.random.Generator) -> tuple[float, float, float]:
    """(black, exposure, read noise) in DN; one stack in five exposed into saturation."""
    black = rng.uniform(*BLACK_LEVEL_DN)
    fraction = rng.uniform(*SATURATED_EXPOSURE_FRACTION) if rng.uniform() < 0.2 else rng.uniform(*EXPOSURE_FRACTION)
    return black, fraction * MAX_DN, rng.uniform(*READ_NOISE_DN)


def make_wide_stack(clean01: np.ndarray, rng: np.random.Generator, photons: float, frames: int | None = None,
                    blur_px: tuple[float, float] = WIDE_BLUR_PX, static_fraction: float = 0.1) -> SimulatedStack:
    """The ``wide`` family: see the module docstring for its ranges (``blur_px``: of the largest frame blur)."""
    if frames is None:
        frames = int(round(math.exp(rng.uniform(math.log(WIDE_FRAMES[0]), math.log(WIDE_FRAMES[1])))))
    scene = camera_scene(clean01)
    black, exposure, read_noise = _camera(rng)
    static = rng.uniform() < static_fraction
    jitter_std = 0.0 if static else rng.uniform(*WIDE_JITTER_STD_PX)
    wobble_rms = 0.0 if static else rng.uniform(*WIDE_WOBBLE_RMS_PX)
    wobble_model = str(rng.choice(["grid", "filtered", "multiscale"]))
    wobble_scale = rng.uniform(12.0, 48.0)
    wobble_memory = rng.uniform(0.0, 0.95) if rng.uniform() < 0.5 else 0.0  # AR(1) correlation between frames
    psf = str(rng.choice(["gaussian", "disc", "moffat"]))
    beta = rng.uniform(1.5, 4.0)
    blur_max = 0.0 if static else rng.uniform(*blur_px)
    blur_per_frame = rng.uniform() < 0.5  # else one width per stack, +-30 % per frame

    h, w = scene.shape
    grid_x, grid_y = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    stack = np.empty((frames, h, w), np.uint16)
    displacements = np.empty((frames, h, w, 2), np.float32)
    wobble = wobble_field((h, w), wobble_rms, wobble_model, wobble_scale, rng)
    for t in range(frames):
        fresh = wobble_field((h, w), wobble_rms, wobble_model, wobble_scale, rng)
        wobble = wobble_memory * wobble + math.sqrt(1 - wobble_memory ** 2) * fresh
        displacements[t] = wobble + rng.normal(0.0, jitter_std, 2).astype(np.float32)
        warped = cv2.remap(scene, grid_x + displacements[t, ..., 0], grid_y + displacements[t, ..., 1], cv2.INTER_CUBIC,
                           borderMode=cv2.BORDER_REFLECT)
        width = rng.uniform(0.0, blur_max) if blur_per_frame else blur_max * rng.uniform(0.7, 1.3)
        stack[t] = expose(blur(warped, psf, width, beta), rng, photons, exposure / photons, black, read_noise)
    truth = ground_truth(scene, black, exposure)
    params = {"photons": photons, "black": black, "exposure": exposure, "read_noise": read_noise, "frames": frames,
              "static": float(static), "jitter_std": jitter_std, "wobble_rms": wobble_rms, "wobble_scale": wobble_scale,
              "wobble_memory": wobble_memory, "blur_max": blur_max, "blur_per_frame": float(blur_per_frame), "moffat_beta": beta,
              "psf": ("gaussian", "disc", "moffat").index(psf)}
    return SimulatedStack(stack, truth, displacements, params)


def make_static_stack(clean01: np.ndarray, rng: np.random.Generator, photons: float, frames: int | None = None) -> SimulatedStack:
    """The ``static`` family: the still, sharp scene with noise only (20 frames unless told)."""
    frames = 20 if frames is None else frames
    scene = camera_scene(clean01)
    black, exposure, read_noise = _camera(rng)
    stack = np.stack([expose(scene, rng, photons, exposure / photons, black, read_noise) for _ in range(frames)])
    truth = ground_truth(scene, black, exposure)
    params = {"photons": photons, "black": black, "exposure": exposure, "read_noise": read_noise, "frames": frames}
    return SimulatedStack(stack, truth, np.zeros((frames, *scene.shape, 2), np.float32), params)


def make_sharp_stack(clean01: np.ndarray, rng: np.random.Generator, photons: float, frames: int | None = None) -> SimulatedStack:
    """The ``sharp`` family: ``wide`` stacks that always move and whose frames are (nearly) sharp."""
    return make_wide_stack(clean01, rng, photons, frames, blur_px=SHARP_BLUR_PX, static_fraction=0.0)


def make_physics_stack(clean01: np.ndarray, rng: np.random.Generator, photons: float, frames: int | None = None) -> SimulatedStack:
    """The ``physics`` family (imported on first use: it loads the optics library)."""
    from models.data import physics

    return physics.make_stack(clean01, rng, photons, 100 if frames is None else frames)


def camera_shake(stack: np.ndarray, std_px: float, rng: np.random.Generator) -> np.ndarray:
    """``stack`` (uint16) with every frame moved as a whole by a Gaussian shift of ``std_px`` (a shaking
    camera), the shifts summing to zero so the scene's mean position, and so the truth, stay put.
    Edges are mirrored in: compare results inside a margin of a few ``std_px``."""
    shifts = rng.normal(0.0, std_px, (len(stack), 2)).astype(np.float32)
    shifts -= shifts.mean(axis=0)
    frames = [cv2.warpAffine(frame.astype(np.float32), np.float32([[1, 0, dx], [0, 1, dy]]), frame.shape[::-1],
                             flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT) for frame, (dx, dy) in zip(stack, shifts)]
    return np.clip(np.round(frames), 0, MAX_DN).astype(np.uint16)


FAMILIES: dict[str, Family] = {
    "current": make_stack,
    "wide": make_wide_stack,
    "physics": make_physics_stack,
    "static": make_static_stack,
    "sharp": make_sharp_stack,  # last: the order seeds the training pairs and evaluation stacks
}
