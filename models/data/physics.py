"""Physically simulated raw stacks of a static scene seen through atmospheric turbulence.

Where ``synthetic.make_stack`` draws wobble and blur as ad-hoc random fields, this module derives them
from optics (aotools): the pupil phase is the sum of three von Karman phase screens (outer scale 5 to
20 apertures; their r0^(-5/3) add up to the requested D/r0), one at the aperture and two farther out.
Each drifts with its own wind (frozen flow, 0.02 to 0.1 aperture per frame: consecutive frames'
displacements correlate at about 0.98, and 100 frames move the screens 2 to 10 apertures). Each image
point sees the screens through a footprint shifted by its field angle, the more so the farther the
screen (anisoplanatism: wobble decorrelates over tens to a few hundred px). The Zernike tilt of that
footprint's phase displaces the point (computed on an 8 px grid, interpolated bicubically); the rest
of the phase spreads it into a speckled, long-tailed PSF |FFT(pupil * exp(i * phase))|^2 (one per
patch of about 40 to 72 px, blended smoothly across the field). One pixel is lambda / D, so a frame
without turbulence is diffraction limited (Airy FWHM 1 px). Photon, read and quantisation noise are
those of ``synthetic.make_stack``.

Measured over 6 stacks of 271 x 271 px and 100 frames per D/r0 (RMS of the displacement field; per-frame
tilt-free PSFs, pixel integration included: "sigma" is the Gaussian of equal sharpness sum(psf^2),
"RMS width" the second moment over the 25 x 25 px kernel, dominated by the tails: 1.51 px for the
diffraction-limited PSF, whose sigma is 0.50 px):

    D/r0   RMS displacement px   PSF sigma px   PSF RMS width px
      1      0.37 (0.27-0.47)        0.56             1.59
      2      0.66 (0.49-0.84)        0.71             1.76
      4      1.18 (0.87-1.50)        1.16             2.19
      6      1.66 (1.22-2.11)        1.67             2.68
      8      2.11 (1.55-2.68)        2.15             3.18
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
from aotools import circle
from aotools.turbulence.phasescreen import ft_phase_screen
from scipy import fft
from scipy.signal import fftconvolve

from models.data.synthetic import SimulatedStack, camera_scene, draw_camera, expose, ground_truth

PUPIL_SAMPLES = 25  # phase samples across the aperture D; also the PSF kernel's width in px (1 px = lambda / D)
PSF_OVERSAMPLING = 3  # the PSF is computed at lambda / (3 D), then summed over each pixel
D_OVER_R0 = (1.0, 6.0)  # drawn log-uniformly when not given
OUTER_SCALE_D = (5.0, 20.0)  # von Karman outer scale L0, in apertures
INNER_SCALE_D = 0.01  # below the phase sampling: no effect
LAYER_CONCENTRATION = 2.0  # Dirichlet parameter of the layers' shares of r0^(-5/3)
MIDDLE_LAYER_DISTANCE = (0.3, 0.7)  # of the far layer's; the near layer sits at the aperture
FAR_LAYER_SHIFT_D_PER_100PX = (0.5, 4.0)  # how far the far layer's footprint moves across the field
WIND_D_PER_FRAME = (0.02, 0.1)
TILT_GRID_PX = 8
PATCH_PX = (40.0, 72.0)  # spacing of the PSFs blended across the field
PSF_TRANSITION = 0.5  # of the spacing: where neighbouring PSFs blend

_PUPIL = circle(PUPIL_SAMPLES / 2, PUPIL_SAMPLES).astype(np.float32)
_PUPIL_Y, _PUPIL_X = (np.mgrid[:PUPIL_SAMPLES, :PUPIL_SAMPLES].astype(np.float32) - (PUPIL_SAMPLES - 1) / 2) * _PUPIL
_TILT_MODES = np.stack([_PUPIL_Y / np.sum(_PUPIL_Y ** 2), _PUPIL_X / np.sum(_PUPIL_X ** 2)])  # phase -> rad/sample
_RAD_PER_SAMPLE_TO_PX = PUPIL_SAMPLES / (2 * math.pi)
_PUPIL_OFFSETS = np.stack(np.mgrid[:PUPIL_SAMPLES, :PUPIL_SAMPLES], axis=-1).astype(np.float64)  # (n, n, 2)
_KERNEL_OFFSETS = np.mgrid[:PUPIL_SAMPLES, :PUPIL_SAMPLES].astype(np.float32) - PUPIL_SAMPLES // 2


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(math.exp(rng.uniform(math.log(low), math.log(high))))


def _sample_bilinear(grid: np.ndarray, points: np.ndarray) -> np.ndarray:
    """``grid`` (..., N, M) at fractional ``points`` (..., 2) given as (y, x) samples."""
    whole = np.floor(points).astype(np.intp)
    fraction = (points - whole).astype(np.float32)
    y, x, fy, fx = whole[..., 0], whole[..., 1], fraction[..., 0], fraction[..., 1]
    top = grid[..., y, x] * (1 - fx) + grid[..., y, x + 1] * fx
    bottom = grid[..., y + 1, x] * (1 - fx) + grid[..., y + 1, x + 1] * fx
    return top * (1 - fy) + bottom * fy


def _node_centres(length: int, count: int) -> np.ndarray:
    """Centres of ``count`` equal cells along ``length`` px: where cv2.resize puts a grid's samples."""
    return (np.arange(count) + 0.5) * (length / count) - 0.5


@dataclass(frozen=True)
class Layer:
    """One frozen-flow phase screen, sampled PUPIL_SAMPLES times per aperture diameter."""

    screen: np.ndarray  # float32 (N, N) rad
    tilt: np.ndarray  # float32 (2, N - n + 1, N - n + 1) rad/sample: Zernike (y, x) tilt of the footprint there
    samples_per_px: float  # footprint shift per image pixel of field angle
    wind: np.ndarray  # (2,) samples per frame
    origin: np.ndarray  # (2,) footprint corner of image pixel (0, 0) at frame 0

    def footprints(self, points_px: np.ndarray, t: int) -> np.ndarray:
        """Footprint corners (..., 2) on the screen of image points (..., 2) at frame ``t``."""
        return self.origin + points_px * self.samples_per_px + self.wind * t


def _draw_layer(rng: np.random.Generator, r0_d: float, outer_scale_d: float, samples_per_px: float,
                wind_d_per_frame: float, shape: tuple[int, int], frames: int) -> Layer:
    """A screen large enough for every footprint of the field over all frames, and at least L0 wide."""
    n = PUPIL_SAMPLES
    angle = rng.uniform(0.0, 2 * math.pi)
    wind = wind_d_per_frame * n * np.array([math.sin(angle), math.cos(angle)])
    travel = wind * (frames - 1)
    extent = (np.array(shape) - 1) * samples_per_px + np.abs(travel)
    size = fft.next_fast_len(max(math.ceil(extent.max()) + n + 2, math.ceil(outer_scale_d * n)))
    screen = ft_phase_screen(r0_d, size, 1.0 / n, outer_scale_d, INNER_SCALE_D, seed=rng).astype(np.float32)
    tilt = np.stack([fftconvolve(screen, mode[::-1, ::-1], mode="valid") for mode in _TILT_MODES])
    return Layer(screen, tilt, samples_per_px, wind, -np.minimum(travel, 0.0))


def _blend_tiles(length: int, count: int, margin: int) -> tuple[np.ndarray, np.ndarray]:
    """Per node along a reflect-padded axis: its tile's indices and weights, flat around the node with
    raised-cosine transitions half a spacing wide to the next nodes, summing to 1 everywhere."""
    spacing = length / count
    transition = spacing * PSF_TRANSITION
    centres = _node_centres(length, count)
    half_support = (spacing + transition) / 2
    size = math.ceil(max(2 * half_support, centres[0] + margin + half_support)) + 2
    starts = np.clip(np.floor(centres + margin - half_support).astype(np.intp), 0, length + 2 * margin - size)
    indices = starts[:, None] + np.arange(size)
    distances = np.abs(indices - margin - centres[:, None])
    ramp = np.clip((distances - (spacing - transition) / 2) / transition, 0.0, 1.0)
    weights = 0.5 + 0.5 * np.cos(math.pi * ramp)
    weights[0, indices[0] - margin < centres[0]] = 1.0
    weights[-1, indices[-1] - margin > centres[-1]] = 1.0
    return indices, weights.astype(np.float32)


class FieldBlur:
    """Blur by a PSF that varies smoothly over the image: each patch's PSF spreads its weighted tile."""

    def __init__(self, shape: tuple[int, int], patch_px: float):
        h, w = shape
        self.shape = shape
        self.margin = PUPIL_SAMPLES // 2
        self.grid = (max(2, round(h / patch_px)), max(2, round(w / patch_px)))
        self.centres = np.stack(np.meshgrid(_node_centres(h, self.grid[0]), _node_centres(w, self.grid[1]),
                                            indexing="ij"), axis=-1).reshape(-1, 2)
        self.rows, row_weights = _blend_tiles(h, self.grid[0], self.margin)
        self.cols, col_weights = _blend_tiles(w, self.grid[1], self.margin)
        self.weights = row_weights[:, None, :, None] * col_weights[None, :, None, :]

    def __call__(self, image: np.ndarray, psfs: np.ndarray) -> np.ndarray:
        """``image`` (H, W) blurred by ``psfs`` (patches, n, n), one per node of ``self.centres``."""
        h, w = self.shape
        m = self.margin
        padded = cv2.copyMakeBorder(image, m, m, m, m, cv2.BORDER_REFLECT)
        tiles = padded[self.rows[:, None, :, None], self.cols[None, :, None, :]] * self.weights
        spread = fftconvolve(tiles.reshape(-1, *tiles.shape[2:]), psfs, axes=(1, 2))
        out = np.zeros((h + 4 * m, w + 4 * m), np.float32)
        th, tw = spread.shape[1:]
        for (i, j), tile in zip(np.ndindex(*self.grid), spread):
            out[self.rows[i, 0]:self.rows[i, 0] + th, self.cols[j, 0]:self.cols[j, 0] + tw] += tile
        return out[2 * m:2 * m + h, 2 * m:2 * m + w]


def _tilt_free_psfs(phases: np.ndarray) -> np.ndarray:
    """Pixel-integrated PSFs (P, n, n), each summing to 1, of pupil phases (P, n, n) with their tilt removed."""
    n, q = PUPIL_SAMPLES, PSF_OVERSAMPLING
    tilt_y, tilt_x = np.einsum("pij,kij->kp", phases, _TILT_MODES)
    residual = phases - tilt_y[:, None, None] * _PUPIL_Y - tilt_x[:, None, None] * _PUPIL_X
    field = _PUPIL * np.exp(1j * residual).astype(np.complex64)
    intensity = np.abs(fft.fftshift(fft.fft2(field, s=(q * n, q * n)), axes=(1, 2))) ** 2
    psfs = intensity.reshape(-1, n, q, n, q).sum(axis=(2, 4))
    return psfs / psfs.sum(axis=(1, 2), keepdims=True)


def _psf_widths(psfs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per PSF, px: its RMS width (second-moment sigma, tails included) and the sigma of the Gaussian of
    equal sharpness sum(psf^2), 1 / sqrt(4 pi sum(psf^2))."""
    centroid = np.einsum("pij,kij->pk", psfs, _KERNEL_OFFSETS)
    spread = np.einsum("pij,kij->pk", psfs, _KERNEL_OFFSETS ** 2) - centroid ** 2
    return np.sqrt(spread.sum(axis=1) / 2), 1 / np.sqrt(4 * math.pi * np.sum(psfs ** 2, axis=(1, 2)))


class Turbulence:
    """Drawn turbulence over an image of ``shape``: per frame, the displacement field and the patches' PSFs."""

    def __init__(self, shape: tuple[int, int], frames: int, d_over_r0: float, rng: np.random.Generator):
        self.shape = shape
        self.d_over_r0 = float(d_over_r0)
        self.outer_scale_d = _log_uniform(rng, *OUTER_SCALE_D)
        self.strengths = rng.dirichlet([LAYER_CONCENTRATION] * 3)
        self.distances = np.array([0.0, rng.uniform(*MIDDLE_LAYER_DISTANCE), 1.0])
        self.far_shift_d_per_100px = _log_uniform(rng, *FAR_LAYER_SHIFT_D_PER_100PX)
        self.winds = [_log_uniform(rng, *WIND_D_PER_FRAME) for _ in range(3)]
        self.patch_px = rng.uniform(*PATCH_PX)
        self.layers = [
            _draw_layer(rng, strength ** -0.6 / d_over_r0, self.outer_scale_d,
                        distance * self.far_shift_d_per_100px / 100 * PUPIL_SAMPLES, wind, shape, frames)
            for strength, distance, wind in zip(self.strengths, self.distances, self.winds)]
        h, w = shape
        tilt_grid = (math.ceil(h / TILT_GRID_PX), math.ceil(w / TILT_GRID_PX))
        self.tilt_nodes = np.stack(np.meshgrid(_node_centres(h, tilt_grid[0]), _node_centres(w, tilt_grid[1]),
                                               indexing="ij"), axis=-1)
        self.blur = FieldBlur(shape, self.patch_px)
        self.pixels = np.stack(np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32)), axis=-1)

    def displacement(self, t: int) -> np.ndarray:
        """(H, W, 2) float32 (dx, dy) px: frame ``t``'s pixel x shows the scene at x + displacement[x]."""
        tilt = sum(_sample_bilinear(layer.tilt, layer.footprints(self.tilt_nodes, t)) for layer in self.layers)
        # a tilt moves the image by +tilt: frame pixel x shows the scene at x - tilt
        shift_xy = np.ascontiguousarray(-_RAD_PER_SAMPLE_TO_PX * tilt[::-1].transpose(1, 2, 0))
        return cv2.resize(shift_xy, self.shape[::-1], interpolation=cv2.INTER_CUBIC)

    def psfs(self, t: int) -> np.ndarray:
        """(patches, n, n) tilt-free PSFs at the blur patches' centres for frame ``t``."""
        corners = [layer.footprints(self.blur.centres, t) for layer in self.layers]
        phases = sum(_sample_bilinear(layer.screen, corner[:, None, None, :] + _PUPIL_OFFSETS)
                     for layer, corner in zip(self.layers, corners))
        return _tilt_free_psfs(phases)

    def params(self) -> dict[str, float]:
        """What was drawn, as floats."""
        params = {"d_over_r0": self.d_over_r0, "outer_scale_d": self.outer_scale_d,
                  "middle_layer_distance": float(self.distances[1]),
                  "far_layer_shift_d_per_100px": self.far_shift_d_per_100px, "patch_px": self.patch_px,
                  "patches": float(len(self.blur.centres))}
        for i, (strength, wind) in enumerate(zip(self.strengths, self.winds)):
            params[f"layer{i}_strength"] = float(strength)
            params[f"layer{i}_wind_d_per_frame"] = wind
        return params


def make_stack(clean01: np.ndarray, rng: np.random.Generator, photons: float, frames: int = 100,
               d_over_r0: float | None = None) -> SimulatedStack:
    """A uint16 (T, H, W) raw stack of ``clean01`` through simulated turbulence of strength ``d_over_r0``.

    Ground truth, noise and exposure follow ``synthetic.make_stack``; ``d_over_r0`` is drawn log-uniformly
    from 1 to 6 when not given.
    """
    scene = camera_scene(clean01)
    black, exposure, read_noise = draw_camera(rng)
    if d_over_r0 is None:
        d_over_r0 = _log_uniform(rng, *D_OVER_R0)
    turbulence = Turbulence(scene.shape, frames, d_over_r0, rng)

    h, w = scene.shape
    gain = exposure / photons  # DN per photon
    stack = np.empty((frames, h, w), np.uint16)
    displacements = np.empty((frames, h, w, 2), np.float32)
    sigmas, rms_widths = [], []
    for t in range(frames):
        displacements[t] = turbulence.displacement(t)
        warped = cv2.remap(scene, turbulence.pixels + displacements[t], None, cv2.INTER_CUBIC,
                           borderMode=cv2.BORDER_REFLECT)
        psfs = turbulence.psfs(t)
        rms_width, sigma = _psf_widths(psfs)
        rms_widths.append(rms_width)
        sigmas.append(sigma)
        stack[t] = expose(turbulence.blur(warped, psfs), rng, photons, gain, black, read_noise)
    truth = ground_truth(scene, black, exposure)
    params = {"photons": float(photons), "black": black, "exposure": exposure, "read_noise": read_noise,
              **turbulence.params(),
              "rms_displacement_px": float(np.sqrt(np.mean(np.sum(displacements ** 2, axis=-1)))),
              "psf_sigma_px": float(np.mean(sigmas)), "psf_rms_width_px": float(np.mean(rms_widths))}
    return SimulatedStack(stack, truth, displacements, params)
