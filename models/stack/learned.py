"""Learned stack restoration: fast local registration, lucky-imaging merge, then a small per-level network.

1. Normalise: ``(stack - p0.5) / (p99.5 - p0.5)`` of the temporal mean (an affine map, undone at the
   end, so the black level and the user's DN scale are kept).
2. Measure the motion between frames (:func:`motion_px`); below ``STATIC_MOTION_PX`` the stack is
   still and step 3 is skipped (flows fitted to noise would only blur it).
3. Register every frame to the temporal mean with a coarse-to-fine Lucas-Kanade flow solved on a
   4-pixel grid with Gaussian windows, then refine it at full resolution against the registered
   mean of that first pass (a sharper reference: +0.2 to +0.9 dB after deblurring) (the turbulent field is smooth, ~24 px correlation length,
   so a dense per-pixel flow such as DIS spends most of its time on detail that is not there).
   Or start from whole-frame shifts found by phase correlation (:func:`global_shifts`: camera
   shake) against the shift-aligned mean. Start and window width (low and medium stacks: also 1.5x
   wider windows) are chosen on a few frames first (:func:`register`).
   Then the flows are centred, i.e. their mean over frames is subtracted at every pixel: the
   displacements are zero-mean by nature, so the true (still) geometry is best estimated by the
   frames' mean position, not by the mean image's slightly-off one (+0.3 to +0.5 dB). A pass
   costs ~0.3 s of CPU for 100 frames of 271 x 271 (DIS at its MEDIUM preset: ~1.4 s).
4. Merge (bicubic resampling): a sharpness-weighted mean (lucky imaging: frames weighted by
   their Laplacian energy to the 16th power, chosen by algorithm), the plain mean and the
   temporal std of the registered frames.
5. Wiener deconvolutions of the plain mean for a few Gaussian blur widths, and its measured
   residual blur (:func:`residual_blur`): the network picks and cleans them per region instead of learning a deconvolution from scratch (an oracle choice of
   one of them alone beat the network trained without them by 0.3 to 1.3 dB).
6. A compact residual U-Net (models/archs/resunet.py), trained per noise level by
   ``python -m models.train_stack --level LEVEL``, removes the remaining blur and noise. It runs on
   the inputs and on their three mirror images, and the four results (mirrored back) are averaged:
   +0.1 dB on held-out pairs for ~0.3 s more per stack (:func:`mirror_ensemble`). A moving stack's
   result is then blurred as much as the mean geometry is uncertain (:func:`geometry_uncertainty_px`: few frames).
7. A still stack's result is the SURE-chosen blend of the plain mean, the network's result and BM3D
   of the mean (:func:`blend_still`); so is a moving stack's whose registered mean is nearly noiseless
   and shows no residual blur (:func:`nothing_to_deblur`). A moving high-noise stack's result must
   explain its plain mean, blurred, within the mean's noise, or it is moved towards the mean until it
   does (:func:`consistent_with_mean`). Every result is clipped to the range of the input's values.

Training (models/data/stack_pairs.py) calls :func:`prepare` below, so the network sees exactly
what it sees here.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np
from scipy.stats import norm

from models.archs import TrainedModel
from models.interface import NoiseEstimate, NoiseLevel, Progress, no_progress
from models.stack import still
from models.stack.noise import clipping_ceiling, units_per_photon
from models.sure import sure_blend, sure_pair_weights

STD_GAIN = 10.0  # the std-of-the-mean channel is scaled up to a useful range for the network
DECONVOLUTION_SIGMAS_PX = (0.5, 0.8, 1.1, 1.6, 2.2)  # Gaussian blur widths the Wiener channels undo
DECONVOLUTION_NSR = 0.5  # regularisation, in units of the measured noise-to-gradient-energy ratio
DECONVOLUTION_NOISE_FLOOR = 1e-3  # normalised units: a nearly noiseless mean (static, bright) must not blow up the widest filters
DECONVOLUTION_PAD_PX = 16  # symmetric padding: FFTs assume a periodic image
SHARPNESS_POWER = 16.0  # frame weights (sharpness / mean) ** power: +0.3 (high) to +1.5 dB (low noise) on the merge
SHARPNESS_PRE_BLUR_PX = 1.0
WINDOW_CHOICE_FRAMES = 16  # frames the registration windows are chosen on (see register)
GLOBAL_SHIFT_ROUNDS = 2  # phase-correlation rounds for whole-frame shifts (see global_shifts)
CLIP_BIAS = 0.25  # in noise stds of the mean: where clipping biases it more, BM3D would keep the bias (see unclipped_pixels)
STATIC_MOTION_PX = 0.15  # measured RMS motion below which a stack is treated as still (see motion_px)
FLATTEST_FRACTION = 0.3  # of the pixels, where motion_px measures the noise curve's constant
BLUR_REBLUR_PX = 1.5  # the known blur the residual-blur estimate compares against
BLUR_WINDOW_PX = 24.0  # the estimate's local window (turbulence blur varies across the field)
BLUR_MAX_PX = 3.0
INPUT_CHANNELS = 3 + len(DECONVOLUTION_SIGMAS_PX) + 1  # merged channels, Wiener channels, residual-blur map


@dataclass(frozen=True)
class RegistrationConfig:
    """Coarse-to-fine Lucas-Kanade on a grid: one entry of ``scales``/``iters``/``prefilter`` per pyramid level."""

    scales: tuple[int, ...] = (4, 2)
    iters: tuple[int, ...] = (3, 3)
    prefilter: tuple[float, ...] = (0.0, 0.5)  # Gaussian sigma on each level's images, in that level's px
    window: float = 8.0  # Gaussian window sigma, full-resolution px
    cell: int = 4  # flow grid spacing, full-resolution px
    ridge: float = 1e-2  # Tikhonov weight, relative to the mean structure tensor trace
    center: bool = True  # subtract the mean flow over frames
    refine_iters: int = 1  # second pass: full-resolution iterations against the first pass's registered mean
    refine_window: float = 6.0  # its Gaussian window sigma (the sharper reference supports a smaller one)
    wider: float = 1.0  # > 1: also try both windows this much wider, keep the better (see register)
    whole_frame_shifts: bool = True  # also try starting from whole-frame shifts (camera shake; see register)

    def refinement(self) -> RegistrationConfig | None:
        """The second pass as a one-level config, or None when switched off."""
        if self.refine_iters <= 0:
            return None
        return replace(self, scales=(1,), iters=(self.refine_iters,), prefilter=(0.0,), window=self.refine_window, refine_iters=0)

    def widened(self) -> RegistrationConfig | None:
        """The same registration with ``wider`` windows, or None when switched off."""
        if self.wider <= 1.0:
            return None
        return replace(self, window=self.window * self.wider, refine_window=self.refine_window * self.wider, wider=1.0)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> RegistrationConfig:
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


# Noisier stacks need wider windows to average the noise out of the flow.
LEVEL_REGISTRATION: dict[NoiseLevel, RegistrationConfig] = {
    "low": RegistrationConfig(window=8.0, wider=1.5),
    "medium": RegistrationConfig(window=8.0, wider=1.5),
    "high": RegistrationConfig(window=12.0, refine_window=9.0),
}


# Where the mean's noise is large enough to judge the network's result by (consistent_with_mean): at
# high noise. At low and medium noise what a Gaussian re-blur cannot explain (turbulence's varying
# blur, misregistration) dominates the noise, and the test undid real deblurring (-0.2 to -1.2 dB on
# average over evaluation stacks for any limit from 4 to 30). At high noise, limit 4 moved 2 of 75
# moving stacks (validation images seed 2024, training images seeds 77-79), by +5.1 and +0.35 dB, and
# no other by 0.01 dB; limit 3 moved one more by -0.01 dB.
CONSISTENCY_LIMIT: dict[NoiseLevel, float] = {"high": 4.0}

# Mean noise variance (normalised units) of a registered mean below which the network's own error
# dominates (~47 dB of the stack's range; see nothing_to_deblur).
NETWORK_PRECISION_VARIANCE = 2e-5
REGISTERED_AGREEMENT = 1.1  # and the registered frames' temporal variance at most this many times that noise's
# Median residual blur (px, residual_blur) above which a still stack's mean counts as blurred. Still
# stacks of sharp scenes read 0.25-0.54 (the one where the network's result was sharper than the mean
# and wrong: 0.29), of scenes blurred by 0.5-1 px 0.45-0.97, of smooth ones whatever their blur 1-3
# (a colour wheel); it matters only where the network's result is sharper than the mean (blur_undone).
SHARP_SCENE_BLUR_PX = 0.4


@dataclass
class Prepared:
    """Merged channels (3, H, W) in normalised units and the affine map back to input units."""

    merged: np.ndarray
    offset: float
    scale: float
    seconds: dict[str, float] = field(default_factory=dict)
    motion_px: float = 0.0  # measured RMS motion between frames; below STATIC_MOTION_PX the frames are not registered
    geometry_px: float = 0.0  # how far the registered mean's geometry is from the scene's (see geometry_uncertainty_px)

    def to_input_units(self, normalised: np.ndarray) -> np.ndarray:
        return (normalised * self.scale + self.offset).astype(np.float32)


def normalise(stack: np.ndarray) -> tuple[np.ndarray, float, float]:
    """float32 frames mapped so the temporal mean's 0.5/99.5 percentiles go to 0/1."""
    mean = np.mean(stack, axis=0, dtype=np.float32)
    lo, hi = np.percentile(mean[::2, ::2], (0.5, 99.5))
    scale = max(float(hi - lo), 1e-3)
    frames = (np.asarray(stack, np.float32) - np.float32(lo)) * np.float32(1.0 / scale)
    return frames, float(lo), scale


def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    return np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))


def _down(image: np.ndarray, s: int) -> np.ndarray:
    if s == 1:
        return image
    h, w = image.shape[:2]
    return cv2.resize(image, (-(-w // s), -(-h // s)), interpolation=cv2.INTER_AREA)


def estimate_flows(frames: np.ndarray, reference: np.ndarray, cfg: RegistrationConfig, progress: Progress = no_progress,
                   initial: np.ndarray | None = None) -> np.ndarray:
    """Flows (T, H, W, 2) in px such that ``frames[t](x + flow[t](x)) ~ reference(x)``, from ``initial`` or zero.

    Where ``x + flow`` leaves the frame, the residual is left out (zero): it compared the reference with
    a replicated edge pixel and pulled the flows near the border wrong (an evaluation stack's registered
    mean scored 28.6 dB in a 16 px edge band, 2.4 below DIS's; 31.4 with those residuals left out)."""
    t_count, h, w = frames.shape
    flows = np.zeros((t_count, h, w, 2), np.float32) if initial is None else initial.copy()
    total = len(cfg.scales)
    for level_index, (s, iters, pre) in enumerate(zip(cfg.scales, cfg.iters, cfg.prefilter)):
        ref = _down(reference, s)
        if pre > 0:
            ref = cv2.GaussianBlur(ref, (0, 0), pre)
        hs, ws = ref.shape
        c = max(1, cfg.cell // s)
        hc, wc = -(-hs // c), -(-ws // c)
        sigma = cfg.window / s / c

        def window(image: np.ndarray) -> np.ndarray:
            pooled = cv2.resize(image, (wc, hc), interpolation=cv2.INTER_AREA) if c > 1 else image
            return cv2.GaussianBlur(pooled, (0, 0), sigma, borderType=cv2.BORDER_REPLICATE)

        gx = cv2.Sobel(ref, cv2.CV_32F, 1, 0, ksize=1, scale=0.5)
        gy = cv2.Sobel(ref, cv2.CV_32F, 0, 1, ksize=1, scale=0.5)
        tensor = window(np.dstack([gx * gx, gx * gy, gy * gy]))
        a, b, d = tensor[..., 0], tensor[..., 1], tensor[..., 2]
        ridge = cfg.ridge * float(np.mean(a + d)) + 1e-12
        a, d = a + ridge, d + ridge
        det = a * d - b * b
        # -(inverse structure tensor): the update is du = ia*Bx + ib*By, dv = ib*Bx + id*By
        ia, ib, id_ = -d / det, b / det, -a / det
        xs, ys = _grid(hs, ws)
        for t in range(t_count):
            frame = _down(frames[t], s)
            if pre > 0:
                frame = cv2.GaussianBlur(frame, (0, 0), pre)
            flow = flows[t] if s == 1 else cv2.resize(flows[t], (ws, hs), interpolation=cv2.INTER_LINEAR) * (1.0 / s)
            for _ in range(iters):
                at_x, at_y = xs + flow[..., 0], ys + flow[..., 1]
                residual = cv2.remap(frame, at_x, at_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
                residual -= ref
                # a sample from outside the frame is a replicated edge pixel, not the scene: no evidence
                residual[(at_x < 0) | (at_x > ws - 1) | (at_y < 0) | (at_y > hs - 1)] = 0.0
                bx, by = cv2.split(window(np.dstack([gx * residual, gy * residual])))
                step = np.dstack([ia * bx + ib * by, ib * bx + id_ * by])
                if c > 1:
                    step = cv2.resize(step, (ws, hs), interpolation=cv2.INTER_LINEAR)
                flow = flow + step
            flows[t] = flow if s == 1 else cv2.resize(flow, (w, h), interpolation=cv2.INTER_LINEAR) * float(s)
            if t % 10 == 0:
                progress((level_index + t / t_count) / total, "registering")
    if cfg.center:
        flows -= flows.mean(axis=0)
    return flows


def frame_weights(frames: np.ndarray, power: float = SHARPNESS_POWER) -> np.ndarray:
    """Weights (T,) summing to 1 favouring sharp frames: (Laplacian energy / its mean) ** power.

    Measured on the raw frames (lightly smoothed so noise does not count as detail); per-frame blur
    varies by +-30 %, and the sharp frames carry detail the others have lost. Noise flattens the
    scores by itself, so noisy stacks keep many frames.
    """
    scores = np.empty(len(frames), np.float64)
    for t, frame in enumerate(frames):
        smoothed = cv2.GaussianBlur(frame, (0, 0), SHARPNESS_PRE_BLUR_PX)
        scores[t] = float(np.mean(np.square(cv2.Laplacian(smoothed, cv2.CV_32F))))
    if not np.all(np.isfinite(scores)) or scores.mean() <= 0:
        return _uniform(len(frames))
    weights = (scores / scores.mean()) ** power
    return weights / weights.sum()


def merge(frames: np.ndarray, flows: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weighted mean, plain mean and std over time of the frames warped (bicubic) by ``flows``.

    Bicubic rather than bilinear resampling: +0.4 to +1 dB on the merge.
    """
    t_count, h, w = frames.shape
    xs, ys = _grid(h, w)
    weighted = np.zeros((h, w), np.float32)
    total = np.zeros((h, w), np.float32)
    squares = np.zeros((h, w), np.float32)
    for t in range(t_count):
        warped = cv2.remap(frames[t], xs + flows[t, ..., 0], ys + flows[t, ..., 1], cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
        weighted += np.float32(weights[t]) * warped
        total += warped
        squares += warped * warped
    mean = total * np.float32(1.0 / t_count)
    std = np.sqrt(np.maximum(squares * np.float32(1.0 / t_count) - mean * mean, 0.0))
    return weighted, mean, std


def prepare(stack: np.ndarray, cfg: RegistrationConfig, progress: Progress = no_progress) -> Prepared:
    """Normalise, register, merge -> merged channels (3, H, W) (what the training cache stores).

    Channels: sharpness-weighted mean (the network adds its residual to this one), plain mean
    (less noisy), temporal std / sqrt(T) x STD_GAIN (noise and registration-failure map).
    """
    import time

    started = time.perf_counter()
    frames, offset, scale = normalise(stack)
    reference = frames.mean(axis=0)
    weights = frame_weights(frames)
    normalised = time.perf_counter()
    motion = motion_px(frames, reference)
    if motion < STATIC_MOTION_PX:  # a still scene: flows fitted to noise would only blur it
        flows = np.zeros((*frames.shape, 2), np.float32)
    else:
        flows = register(frames, frames[int(np.argmax(weights))], cfg, progress)
    registered = time.perf_counter()
    weighted, mean, std = merge(frames, flows, weights)
    std_of_mean = std * np.float32(STD_GAIN / math.sqrt(len(frames)))
    merged = time.perf_counter()
    seconds = {"normalise+weights": normalised - started, "register": registered - normalised, "merge": merged - registered}
    return Prepared(np.stack([weighted, mean, std_of_mean]), offset, scale, seconds, motion, geometry_uncertainty_px(flows))


def register(frames: np.ndarray, sharpest: np.ndarray, cfg: RegistrationConfig, progress: Progress = no_progress) -> np.ndarray:
    """Flows of ``frames`` to their mean geometry: :func:`estimate_flows` against the temporal mean, or
    from whole-frame shifts against the shift-aligned mean (:func:`global_shifts`, from ``sharpest``, one
    of the frames), then again against that pass's registered mean.

    Start and windows (with ``cfg.wider``, also 1.5x wider ones) are chosen on a few frames: those whose
    registered frames vary less around their mean win. Misregistration adds to that variance while the
    noise is the same for all, and the narrower windows' fitting of the noise only biases the choice
    towards them. A smooth, large wobble needs the wider windows: on 28 low- and medium-noise
    evaluation stacks they were chosen 6 times, each time the better (+0.01 to +2.3 dB on the
    registered mean). Camera shake needs the shifts (benchmarks/stack_camera_shake.py: +0.1 to +9.1 dB
    with 5 px of it); a printed pattern's repeats can fool them, and then they lose.
    """
    starts = [(frames.mean(axis=0), None)]  # (reference, initial flows)
    if cfg.whole_frame_shifts:
        shifts, shift_aligned = global_shifts(frames, sharpest)
        starts.append((shift_aligned, np.broadcast_to(shifts[:, None, None, :], (*frames.shape, 2))))
    configs = [cfg] if cfg.widened() is None else [cfg, cfg.widened()]
    pick = slice(None, None, max(1, len(frames) // WINDOW_CHOICE_FRAMES))

    def misregistration(choice: tuple[tuple[np.ndarray, np.ndarray | None], RegistrationConfig]) -> float:
        (reference, initial), config = choice
        return _misregistration(frames[pick], reference, config, None if initial is None else initial[pick])

    (reference, initial), cfg = min(((start, config) for start in starts for config in configs), key=misregistration)  # ties: no shifts, narrower
    return _two_passes(frames, reference, cfg, progress, initial)


def global_shifts(frames: np.ndarray, sharpest: np.ndarray, rounds: int = GLOBAL_SHIFT_ROUNDS) -> tuple[np.ndarray, np.ndarray]:
    """Whole-frame shifts (T, 2) (x, y; centred) by phase correlation, and the mean of the shifted frames.

    Camera shake moves whole frames by more pixels than the local flow's coarsest level catches, and
    blurs the temporal mean into a reference with nothing to lock onto. So the first round correlates
    against one sharp frame, the next against the previous round's shift-aligned mean. Half resolution
    is as accurate (the local flow refines the rest) and four times cheaper. A periodic target (bars,
    lines of text) has peaks at its repeats too (one bar target's repeat won by 45 px), so each frame
    takes whichever of the strongest peaks and its previous shift best matches the reference.
    """
    small = np.stack([_down(frame, 2) for frame in frames])
    reference = _down(sharpest, 2)
    shifts = np.zeros((len(frames), 2), np.float32)
    for round_index in range(rounds):
        if round_index:
            reference = np.mean([_shifted(frame, shift) for frame, shift in zip(small, shifts)], axis=0)
        smooth_reference = cv2.GaussianBlur(reference, (0, 0), 1.0)
        for t, (frame, peaks) in enumerate(zip(small, _phase_correlation_peaks(small, reference))):
            shifts[t] = min([shifts[t], *peaks], key=lambda shift: _mismatch(frame, shift, smooth_reference))
        shifts -= shifts.mean(axis=0)
    return 2.0 * shifts, np.mean([_shifted(frame, 2.0 * shift) for frame, shift in zip(frames, shifts)], axis=0)


def _mismatch(frame: np.ndarray, shift: np.ndarray, smooth_reference: np.ndarray) -> float:
    """Mean squared difference of ``frame(x + shift)``, smoothed, and the smoothed reference, over the
    whole frame: what a shift brings in from beyond the edge (edge pixels, repeated) counts against it."""
    return float(np.mean(np.square(cv2.GaussianBlur(_shifted(frame, shift), (0, 0), 1.0) - smooth_reference)))


def _phase_correlation_peaks(frames: np.ndarray, reference: np.ndarray, count: int = 3, chunk: int = 32) -> list[list[np.ndarray]]:
    """Per frame, the ``count`` highest local maxima of the phase correlation (shifts within a quarter of
    the frame, with ``frames[t](x + shift) ~ reference(x)``), sub-pixel by a parabola through each
    peak and its neighbours."""
    import scipy.fft

    t_count, h, w = frames.shape
    window = cv2.createHanningWindow((w, h), cv2.CV_32F)
    conj_reference = np.conj(scipy.fft.rfft2(reference * window))
    dy = np.fft.fftshift(np.fft.fftfreq(h, 1.0 / h)).astype(np.float32)  # surfaces are fftshifted: no shift at the centre
    dx = np.fft.fftshift(np.fft.fftfreq(w, 1.0 / w)).astype(np.float32)
    within = (np.abs(dx)[None, :] <= w / 4) & (np.abs(dy)[:, None] <= h / 4)  # and so away from the edges
    peaks: list[list[np.ndarray]] = []
    for start in range(0, t_count, chunk):
        cross = scipy.fft.rfft2(frames[start:start + chunk] * window) * conj_reference
        surfaces = np.fft.fftshift(scipy.fft.irfft2(cross / (np.abs(cross) + 1e-12), s=(h, w)), axes=(1, 2)).astype(np.float32)
        for surface in surfaces:
            ys, xs = np.nonzero(within & (surface >= cv2.dilate(surface, np.ones((3, 3), np.uint8))))
            best = np.argsort(surface[ys, xs])[::-1][:count]
            peaks.append([np.float32([dx[ix] + _parabola_peak(*surface[iy, ix - 1:ix + 2]), dy[iy] + _parabola_peak(*surface[iy - 1:iy + 2, ix])])
                          for iy, ix in zip(ys[best], xs[best])])
    return peaks


def _parabola_peak(left: float, centre: float, right: float) -> float:
    """Offset (-0.5..0.5) of the vertex of the parabola through three equally spaced samples."""
    curvature = left - 2 * centre + right
    return float(np.clip(0.5 * (left - right) / curvature, -0.5, 0.5)) if curvature < 0 else 0.0


def _shifted(frame: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """``frame(x + shift)``, bicubic."""
    matrix = np.float32([[1, 0, shift[0]], [0, 1, shift[1]]])
    return cv2.warpAffine(frame, matrix, frame.shape[::-1], flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE)


def _misregistration(frames: np.ndarray, reference: np.ndarray, cfg: RegistrationConfig, initial: np.ndarray | None) -> float:
    """Mean temporal variance of ``frames`` registered with ``cfg``: the noise's, the same for any ``cfg``, plus misregistration's."""
    _, _, std = merge(frames, _two_passes(frames, reference, cfg, initial=initial), _uniform(len(frames)))
    return float(np.mean(np.square(std)))


def _uniform(count: int) -> np.ndarray:
    return np.full(count, 1.0 / count)


def _two_passes(frames: np.ndarray, reference: np.ndarray, cfg: RegistrationConfig, progress: Progress = no_progress,
                initial: np.ndarray | None = None) -> np.ndarray:
    refinement = cfg.refinement()
    flows = estimate_flows(frames, reference, cfg, lambda f, s: progress(f / (2 if refinement else 1), s), initial)
    if refinement is not None:  # the first pass's registered mean is a sharper reference than the temporal mean
        _, sharper_reference, _ = merge(frames, flows, _uniform(len(frames)))
        flows = estimate_flows(frames, sharper_reference, refinement, lambda f, s: progress(0.5 + f / 2, s), initial=flows)
    return flows


def motion_px(frames: np.ndarray, mean: np.ndarray) -> float:
    """RMS displacement of the scene between frames (px), measured where it shows: at the strongest edges.

    A shift d changes a pixel by about gradient . d, so there the temporal variance is the noise
    variance (the stack's own Poisson-Gaussian curve) plus |gradient|^2 var(d). Reads 0 to 0.13 px on
    still stacks (the higher, the noisier) and tracks the simulators' true RMS motion within ~20 %.

    The curve is ``a * level + c``: ``a`` from the frames' high-pass (:func:`units_per_photon`), ``c``
    (read noise, and the black level the normalisation's zero misses) from the flattest 30 % of
    pixels, where motion adds least. Without ``c`` a noisy still stack of the evaluation read 0.20 px
    (its flat pixels vary 17 % more than ``a * level``) and was registered as if it moved.
    """
    t_count = len(frames)
    a = units_per_photon(frames, mean)
    if a is None or t_count < 2:
        return float("inf")  # cannot tell: register
    temporal = np.var(frames, axis=0) * np.float32(t_count / (t_count - 1))
    noise = np.float32(a) * np.maximum(mean, 0.0)
    sharpness = _gradient_energy(mean)
    flattest = sharpness <= np.quantile(sharpness, FLATTEST_FRACTION)
    noise += np.float32(max(float(np.median(temporal[flattest] - noise[flattest])), 0.0))
    gradient = sharpness - noise * np.float32(0.5 / t_count)  # central differences keep half the mean's noise variance
    edges = gradient >= np.quantile(gradient, 0.9)
    return float(np.sqrt(max(float(np.sum(temporal[edges] - noise[edges])), 0.0) / max(float(np.sum(gradient[edges])), 1e-12)))


def geometry_uncertainty_px(flows: np.ndarray) -> float:
    """RMS distortion (px, per axis) of the registered mean's geometry, read from the frames' flows; on the low side.

    The flows are centred, so the result takes the frames' mean position for the scene's; that is off
    by the mean of their displacements, which averages out only over many frames: for T independent
    frames by their spread about the mean over sqrt(T - 1). Where the error is a random shift of this
    size, the estimate closest to the truth on average is the sharp result blurred by a Gaussian of
    this width (the mean of its shifted copies weighted by their likelihood), which predict does. On
    144 moving stacks of unseen images at 8 to 100 frames, three levels (benchmarks/stack_frame_count.py),
    stacks more than 0.2 dB below their aligned mean went 19 -> 14, 17 -> 17 on a second seed, no
    cell's mean lower; at 100 frames the width is 0.05-0.3 px. Only the part that distorts counts: a shift of the whole
    frame (jitter, camera shake) places the picture elsewhere, which no one can see or check, and
    blurring for it would trade sharpness for nothing (a shaken 30-frame stack lost 4.4 dB to it).
    Frames that move like the one before (frozen flow, slow wobble) average out more slowly still, but
    the correlation read from flows is too rough to count on: allowing for it blurred a physics stack
    of 100 frames 2.5 dB below its unblurred result (flow errors widen the spread too). So this is a
    lower bound where frames are correlated, and the network's result is not the sharp truth either.
    Read on the flows' 4 px grid, where they are solved.
    """
    t_count = len(flows)
    if t_count < 2:
        return 0.0
    centred = flows[:, ::4, ::4].astype(np.float64)
    centred -= centred.mean(axis=(1, 2), keepdims=True)  # whole-frame shifts: the picture placed elsewhere, not distorted
    centred -= centred.mean(axis=0)
    spread = float(np.sum(centred * centred)) / (t_count * centred[0].size)  # per axis: centred[0] holds both
    return math.sqrt(spread / (t_count - 1))


def input_bounds(stack: np.ndarray) -> tuple[float, float]:
    """The physical range of a stack: its darkest and brightest raw value. Results stay inside it (no
    values below the black level, none above the sensor's ceiling); so do the evaluation's baselines."""
    return float(np.min(stack)), float(np.max(stack))


def mean_variance(merged: np.ndarray, frames: int | None = None) -> np.ndarray:
    """The plain mean's noise variance per pixel, from the merged std-of-the-mean channel (misregistration
    included). The channel holds the biased temporal variance (over T, not T - 1); given the stack's
    ``frames``, the estimate is unbiased, as SURE needs: where BM3D removes nearly all of a still mean's
    noise, its estimated risk is a small difference of large sums, and 20 frames' 5 % bias was most of it."""
    variance = np.square(merged[2] * np.float32(1 / STD_GAIN))
    return variance if frames is None else variance * np.float32(frames / (frames - 1))


def blend_still(restore: Callable[[np.ndarray], np.ndarray], merged: np.ndarray, restored: np.ndarray, variance: np.ndarray,
                unclipped: np.ndarray | None = None) -> np.ndarray:
    """For a still stack: the SURE-optimal blend (models/sure.py) of the plain mean, ``restored`` and
    BM3D of the mean (models/stack/still.py), where the pixels are ``unclipped`` (default: all).

    The plain mean of a still stack is the truth plus noise of known ``variance`` (:func:`mean_variance`
    with the frame count): pure denoising, where BM3D is strong. Unless the scene itself is
    blurred (out of focus, or long turbulent exposures that hardly move): then SURE is credited with
    the blur the network undid (:func:`blur_undone`). The network's precision is
    finite, and a mean of bright still frames can be better than 50 dB: then the blend goes to the mean.
    Near a clipping ceiling the mean is biased low, which SURE cannot see: BM3D keeps the bias (it took
    one such stack 1.4 dB below the network), the network learned to undo it, so there the result is
    the blend of mean and network alone, and the three-way weights are measured on the other pixels
    (where fewer than a quarter are left, BM3D is not used at all).
    """
    mean = merged[1]

    def rerun(delta: np.ndarray) -> np.ndarray:
        perturbed = merged.copy()
        perturbed[:2] += delta  # both means carry the same noise
        return restore(perturbed)

    bm3d = still.load_bm3d()
    everywhere = np.ones(mean.shape, bool)
    kept = everywhere if unclipped is None else unclipped
    without_bm3d = sure_blend(mean, restored, variance, rerun, blur_undone(mean, restored, everywhere)) if bm3d is None or not kept.all() else None
    if bm3d is None or kept.sum() < 0.25 * kept.size:
        return without_bm3d

    def embedded(delta: np.ndarray) -> np.ndarray:
        full = np.zeros_like(mean)
        full[kept] = delta
        return full

    curve = still.noise_curve(mean[kept], variance[kept])
    denoised = still.bm3d_of_mean(bm3d, mean, curve)
    alpha, beta = sure_pair_weights(mean[kept], restored[kept], denoised[kept], variance[kept], lambda delta: rerun(embedded(delta))[kept],
                                    lambda delta: still.bm3d_of_mean(bm3d, mean + embedded(delta), curve)[kept], blur_undone(mean, restored, kept))
    blended = mean + np.float32(alpha) * (restored - mean) + np.float32(beta) * (denoised - mean)
    return blended if without_bm3d is None else np.where(kept, blended, without_bm3d)


def unclipped_pixels(stack: np.ndarray, ceiling: float) -> np.ndarray:
    """Pixels whose plain mean clipping at ``ceiling`` (the stack's units; inf: it does not clip) biases
    by less than ``CLIP_BIAS`` of the mean's noise std, and further than 4 px from any it biases more.

    A pixel's bias comes from the share p of its frames at the ceiling, as for Gaussian noise of std s
    cut there: s (phi(z) - z p), where p = 1 - Phi(z); averaged over 3x3 px, as one pixel's 20 or so
    frames give a rough share. A noisy stack's brightest pixels reach the ceiling in a few frames
    without the mean moving: the earlier rule (within 2 noise stds of the ceiling) left out a fifth of
    two still evaluation stacks at 16 and 20 photons, where BM3D would have been 0.4 and 0.6 dB better.
    A moving stack's frames are read where they lie, unregistered: the 4 px margin covers a few px of motion.
    """
    if not math.isfinite(ceiling):
        return np.ones(stack.shape[1:], bool)
    share = np.clip(np.mean(stack >= ceiling, axis=0, dtype=np.float32), 1e-6, 1 - 1e-6)
    z = norm.isf(share)
    bias = cv2.blur(norm.pdf(z) - z * share, (3, 3))  # in frame noise stds
    near = (bias * math.sqrt(len(stack)) > CLIP_BIAS).astype(np.uint8)
    return cv2.dilate(near, np.ones((9, 9), np.uint8)) == 0


def nothing_to_deblur(merged: np.ndarray, restored: np.ndarray) -> np.ndarray | None:
    """The registered mean's noise variance (:func:`registered_noise_variance`) where a moving stack's
    mean is, like a still one's, the truth plus noise the network cannot beat; else None.

    That takes three measurements: the mean's noise below the network's own precision
    (``NETWORK_PRECISION_VARIANCE``); the registered frames agreeing up to that noise (their temporal
    variance at most ``REGISTERED_AGREEMENT`` times it: misregistration adds to it); and ``restored``
    explaining the mean better as it is than blurred by any of the Wiener channels' widths (the network
    found no blur to undo). Where one fails, SURE would count what the network undid (blur,
    misregistration) as error, and BM3D would smooth texture that misregistration, not noise, made uneven.
    """
    variance = registered_noise_variance(merged)
    noise = float(np.mean(variance))
    if noise > NETWORK_PRECISION_VARIANCE or float(np.mean(mean_variance(merged))) > REGISTERED_AGREEMENT * noise:
        return None
    return variance if _best_reblur(merged[1], restored) == 0 else None


def blur_undone(mean: np.ndarray, restored: np.ndarray, kept: np.ndarray) -> float:
    """|restored - its best re-blur towards ``mean``|^2 over the ``kept`` pixels: the blur the network
    undid, where the mean measures blurred (median :func:`residual_blur` above ``SHARP_SCENE_BLUR_PX``,
    below its cap ``BLUR_MAX_PX``); else 0.

    Both tests are needed: on one evaluation still stack (sharp, clipping) the network's result,
    20 dB worse than the mean, was sharper than it too, but there the mean measured sharp. A reading
    at the cap means no edge to measure on (a smooth scene: an unseen colour wheel read 3 px, and
    crediting the network's change there cost it 0.2 to 3.4 dB), not a blur.
    """
    sigma = _best_reblur(mean, restored, kept)
    if sigma == 0 or not SHARP_SCENE_BLUR_PX < float(np.median(residual_blur(mean))) < BLUR_MAX_PX:
        return 0.0
    return float(np.sum(np.square(restored - _blurred(restored, sigma))[kept], dtype=np.float64))


def _best_reblur(mean: np.ndarray, restored: np.ndarray, where: np.ndarray | None = None) -> float:
    """The Gaussian width (0 or one of the Wiener channels') that blurs ``restored`` closest to ``mean``,
    away from the border and, if given, ``where``."""
    inner = np.zeros(mean.shape, bool)
    inner[_away_from_border(mean.shape)] = True
    if where is not None:
        inner &= where
    if not inner.any():
        return 0.0
    widths = (0.0, *DECONVOLUTION_SIGMAS_PX)
    misfits = [float(np.mean(np.square(mean - _blurred(restored, sigma))[inner], dtype=np.float64)) for sigma in widths]
    return widths[int(np.argmin(misfits))]


def _away_from_border(shape: tuple[int, ...]) -> tuple[slice, slice]:
    """The frame less a border of three times the widest re-blur, where re-blurs guess beyond the
    frame (tiny frames: all of it)."""
    border = math.ceil(3 * max(DECONVOLUTION_SIGMAS_PX))
    return (slice(border, -border),) * 2 if min(shape) > 4 * border else (slice(None),) * 2


def registered_noise_variance(merged: np.ndarray) -> np.ndarray:
    """The registered plain mean's noise variance per pixel: the line ``a * mean + c`` fitted to the
    std-of-the-mean channel's variance on the flatter half of the pixels, where misregistration,
    which the channel also holds, adds little."""
    mean, variance = merged[1], mean_variance(merged)
    gradient = _gradient_energy(mean)
    flat = gradient <= np.quantile(gradient, 0.5)
    a, c = still.noise_curve(mean[flat], variance[flat])
    return np.maximum(np.float32(a) * mean + np.float32(c), np.float32(1e-3 * a))


def consistent_with_mean(merged: np.ndarray, restored: np.ndarray, limit: float) -> np.ndarray:
    """``restored`` moved towards the plain mean until it explains the mean (the discrepancy principle).

    Were ``restored`` the truth, blurring it like the stack's residual blur would leave only the mean's
    noise. So the best of a few Gaussian blurs (none, and the Wiener channels' widths) must bring
    ``restored`` within ``limit`` times the mean's noise variance of the mean; where it does not (a
    network smoothing a sharp texture it takes for noise), the result is the largest step
    ``mean + beta * (restored - mean)``, beta in [0, 1], that does. See ``CONSISTENCY_LIMIT``.
    """
    mean, change = merged[1], restored - merged[1]
    inner = _away_from_border(mean.shape)
    allowed = limit * float(np.mean(mean_variance(merged)[inner], dtype=np.float64))
    betas = np.linspace(0.0, 1.0, 101)
    misfit = np.full(betas.shape, np.inf)
    for sigma in (0.0, *DECONVOLUTION_SIGMAS_PX):  # |mean - G(mean) - beta G(change)|^2, a quadratic in beta
        residual, step = (mean - _blurred(mean, sigma))[inner], _blurred(change, sigma)[inner]
        rr, rs, ss = (float(np.mean(x * y, dtype=np.float64)) for x, y in ((residual, residual), (residual, step), (step, step)))
        misfit = np.minimum(misfit, rr - 2 * betas * rs + betas ** 2 * ss)
    beta = float(betas[misfit <= allowed].max(initial=0.0))
    return restored if beta == 1.0 else mean + np.float32(beta) * change


def _blurred(image: np.ndarray, sigma: float) -> np.ndarray:
    return image if sigma == 0 else cv2.GaussianBlur(image, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)


def noise_std(image: np.ndarray) -> float:
    """White-noise std of an image: robust spread of its diagonal second difference (variance 4 sigma^2)."""
    d = image[1:, 1:] - image[:-1, 1:] - image[1:, :-1] + image[:-1, :-1]
    return float(np.median(np.abs(d - np.median(d))) / 0.6745 / 2.0)


def wiener_deconvolutions(image: np.ndarray, sigmas: tuple[float, ...] = DECONVOLUTION_SIGMAS_PX) -> list[np.ndarray]:
    """``image`` deconvolved for Gaussian blurs of each width in ``sigmas`` (Wiener, gradient prior).

    Signal spectrum modelled as gradient energy / |gradient operator|^2, so the filter is
    H / (H^2 + NSR * noise^2 * |G|^2 / gradient energy): it sharpens edges and leaves flat noise alone.
    """
    pad = DECONVOLUTION_PAD_PX
    padded = np.pad(image.astype(np.float64), pad, mode="symmetric")
    h, w = padded.shape
    fy, fx = np.meshgrid(np.fft.fftfreq(h), np.fft.rfftfreq(w), indexing="ij")
    gradient_response = (2 - 2 * np.cos(2 * np.pi * fx)) + (2 - 2 * np.cos(2 * np.pi * fy))
    gy, gx = np.gradient(image)
    energy = max(float(np.mean(gx * gx + gy * gy)), 1e-12)
    noise = max(noise_std(image), DECONVOLUTION_NOISE_FLOOR)
    regulariser = DECONVOLUTION_NSR * noise ** 2 * gradient_response / energy
    spectrum = np.fft.rfft2(padded)
    out = []
    for sigma in sigmas:
        blur = np.exp(-2 * np.pi ** 2 * sigma ** 2 * (fx * fx + fy * fy))
        restored = np.fft.irfft2(spectrum * blur / (blur * blur + regulariser), s=(h, w))
        out.append(restored[pad:-pad, pad:-pad].astype(np.float32))
    return out


def _gradient_energy(image: np.ndarray) -> np.ndarray:
    gx = cv2.Sobel(image, cv2.CV_32F, 1, 0, ksize=1, scale=0.5)
    gy = cv2.Sobel(image, cv2.CV_32F, 0, 1, ksize=1, scale=0.5)
    return gx * gx + gy * gy


def residual_blur(mean: np.ndarray) -> np.ndarray:
    """Local blur width (px, Gaussian equivalent) of the registered mean, measured, not assumed.

    Re-blurring a step edge of width b by a known s keeps b / sqrt(b^2 + s^2) of its gradient energy,
    so the ratio of local gradient energies after and before (noise energy taken off) gives b. On
    real content this also counts the scene's own softness, so it is a measurement for the network
    to weigh (0.3-0.5 px on still sharp scenes, 0.5-1 px on turbulent merges), not a PSF.
    """
    mean = np.asarray(mean, np.float32)
    noise = noise_std(mean) ** 2  # white noise: central differences keep sigma^2 of it in the energy
    before = cv2.GaussianBlur(_gradient_energy(mean), (0, 0), BLUR_WINDOW_PX) - np.float32(noise)
    after = cv2.GaussianBlur(_gradient_energy(cv2.GaussianBlur(mean, (0, 0), BLUR_REBLUR_PX)), (0, 0), BLUR_WINDOW_PX)
    ratio = np.clip(after / np.maximum(before, 1e-12), 0.0, 0.995)
    return np.minimum(BLUR_REBLUR_PX * ratio / np.sqrt(1.0 - ratio * ratio), BLUR_MAX_PX).astype(np.float32)


def network_inputs(merged: np.ndarray) -> np.ndarray:
    """(INPUT_CHANNELS, H, W): the merged channels, the plain mean's Wiener deconvolutions, its residual-blur map / BLUR_MAX_PX."""
    blur = residual_blur(merged[1]) * np.float32(1.0 / BLUR_MAX_PX)
    return np.concatenate([merged, np.stack(wiener_deconvolutions(merged[1])), blur[None]])


def mirror_ensemble(net, x):
    """Mean of ``net`` on (1, C, H, W) ``x`` flipped left-right, up-down and both, each flipped back.

    The mirrored inputs are as natural as the original, so the four outputs err partly independently
    and their mean is better than any one. One at a time, so memory stays that of one pass.
    """
    total = None
    for dims in ((), (3,), (2,), (2, 3)):
        y = net(x.flip(dims) if dims else x)
        y = y.flip(dims) if dims else y
        total = y if total is None else total + y
    return total * 0.25


class LearnedStackRestorer(TrainedModel):
    """Registered mean of the stack, deblurred and denoised by the network trained for ``level``, or by
    the mean of it and the networks of ``partners`` (weight files beside ``weights``)."""

    def __init__(self, level: NoiseLevel | None = None, weights: Path | None = None, partners: tuple[str, ...] = ()):
        if level is None:
            raise ValueError("LearnedStackRestorer needs a noise level")
        super().__init__(level, weights)
        self.partners = [TrainedModel(None, self.weights.parent / name) for name in partners]
        self.registration = LEVEL_REGISTRATION[level]
        self.last_seconds: dict[str, float] = {}

    def setup(self, device: str) -> None:
        super().setup(device)
        self.registration = RegistrationConfig.from_dict(self.meta["registration"])
        for partner in self.partners:
            partner.setup(device)
            if RegistrationConfig.from_dict(partner.meta["registration"]) != self.registration:  # defaults filled in: files predating a field still match
                raise ValueError(f"{partner.weights.name} was trained on stacks registered unlike {self.weights.name}'s")

    def network(self, merged: np.ndarray) -> np.ndarray:
        """The (H, W) result, normalised units, from the merged channels: the mirror ensemble of each network, averaged."""
        import torch

        nets = [self.net] + [partner.net for partner in self.partners]
        with torch.inference_mode():
            x = torch.from_numpy(network_inputs(merged))[None].to(self.device)
            return (sum(mirror_ensemble(net, x) for net in nets) / len(nets))[0, 0].float().cpu().numpy()

    def predict(self, stack: np.ndarray, estimate: NoiseEstimate | None = None, progress: Progress = no_progress) -> np.ndarray:
        """float32 (H, W) in the stack's units from a (T, H, W) stack."""
        import time

        if stack.ndim != 3 or stack.shape[0] < 2:
            raise ValueError(f"a stack must be (T, H, W) with T >= 2, got shape {stack.shape}")
        prepared = prepare(stack, self.registration, lambda f, s: progress(0.9 * f, s))
        progress(0.9, "deblurring")
        started = time.perf_counter()
        out = _blurred(self.network(prepared.merged), prepared.geometry_px)  # 0 for a still stack: no flows
        moving = prepared.motion_px >= STATIC_MOTION_PX
        if moving and self.level in CONSISTENCY_LIMIT:
            out = consistent_with_mean(prepared.merged, out, CONSISTENCY_LIMIT[self.level])
        variance = nothing_to_deblur(prepared.merged, out) if moving else None
        if not moving or variance is not None:
            variance = mean_variance(prepared.merged, len(stack)) if variance is None else variance
            out = blend_still(self.network, prepared.merged, out, variance, unclipped_pixels(stack, clipping_ceiling(stack)))
        prepared.seconds["network"] = time.perf_counter() - started
        self.last_seconds = prepared.seconds
        return np.clip(prepared.to_input_units(out), *input_bounds(stack))
