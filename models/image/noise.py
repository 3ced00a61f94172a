"""Noise level of a single image (and of video frames, models/video/noise.py), relative to its data range.

The classical reading; the image classifier checks it with the restorer network (models/image/learned.py).

sigma comes from the finest diagonal Haar detail (a - b - c + d) / 2 of each 2x2 block, which holds
little of a picture (edges mostly cancel in it) and all of white noise, in three steps:

- clipped blocks are left out: a block holding a channel's minimum or maximum value (0 or 255 in a
  saturated colour, the sensor's white) has lost its noise there, and flat saturated areas would
  otherwise read as clean; so, after a first reading, is a block whose mean lies within two of its
  sigmas of them: the few blocks of a saturated colour that escape clipping kept only the noise
  that points inwards, and a flat saturated picture would read low;
- of the rest, only the flatter half counts (block-mean gradient; texture inflates it otherwise);
- the spread is a clipped RMS: the median absolute detail / 0.6745 (Donoho's MAD) sets a cut at 3
  of its sigmas, and the RMS of the details under the cut, corrected for the cut, is the estimate.
  The MAD alone under-reads heavy-tailed noise (FFmpeg's ``noise`` filter: 30 % low); the cut keeps
  edges that pass the flatness test from inflating it.

Fine texture (fur, grass, gravel) also fills the finest details, and at low noise it outweighs the
noise there: a clean cat photo read 4.0, the same with noise of sigma 1 read 4.1. :func:`weak_texture_sigma`
reads the noise where the picture has no texture at all instead (Liu, Tanaka and Okutomi, "Single-image
noise level estimation for blind denoising", IEEE TIP 2013): of the patches whose gradient energy
white noise alone explains, the smallest variance of any direction in patch space. It does not see
noise that neighbouring pixels share (a demosaicked camera's), which the image classifier reads otherwise.
"""
from __future__ import annotations

import cv2
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy.special import gammaincinv

from models.interface import NoiseLevel, level_of_sigma_8bit

MAD_TO_STD = 1 / 0.6745  # a Gaussian's std over its median absolute value
CUT_IN_SIGMAS = 3.0
CUT_CORRECTION = 1 / 0.9866  # a Gaussian's std over its RMS when clipped at 3 sigma
CLIP_MARGIN_IN_SIGMAS = 2.0  # blocks this close to black or white lost part of their noise to clipping
MIN_SAMPLES = 64  # fewer usable blocks or pixels than this give no reading (or keep the first one)
# A picture one exact colour covers in this share of its 2 x 2 blocks is noise-free there (see plateau_share).
NOISE_FREE_PLATEAU_SHARE = 0.3
WEAK_TEXTURE_PATCH = 7  # px, as in Liu et al.
WEAK_TEXTURE_CONFIDENCE = 1 - 1e-6  # a patch of pure noise passes the gradient test with this probability
WEAK_TEXTURE_PATCHES = 60_000  # per channel at most: larger images are sampled on a coarser grid
WEAK_TEXTURE_ROUNDS = 3
WEAK_TEXTURE_SAMPLES = 10  # weak patches per patch dimension at least, for a smallest eigenvalue worth correcting


def data_range(image: np.ndarray) -> float:
    """1 for float data in 0..1, 255 for 8-bit-range data, 4095 for 12-bit-range data, else 65535."""
    peak = float(np.max(image)) if image.size else 0.0
    if peak <= 1.0:
        return 1.0
    if peak <= 255:
        return 255.0
    return 4095.0 if peak <= 4095 else 65535.0


def estimate_sigma(image: np.ndarray, clip_margin: float = CLIP_MARGIN_IN_SIGMAS) -> float:
    """Noise std in the image's units, pooled over channels; (H, W) or (H, W, C). ``clip_margin`` 0
    skips the second pass (video frames: the fusion and the video networks were tuned on that reading)."""
    return finest_details(image, clip_margin)[0]


def finest_details(image: np.ndarray, clip_margin: float = CLIP_MARGIN_IN_SIGMAS) -> tuple[float, float]:
    """(sigma, balance): :func:`estimate_sigma`'s reading, and on the same blocks the clipped RMS of the
    horizontal and vertical finest details over the diagonal one's. White noise puts the same energy in
    all three (balance 0.99 to 1.075 on training images under sigma 20 to 50, 5th to 95th percentile); texture, printed patterns
    and demosaicked or compressed noise do not, and there the diagonal reading may hold more than noise."""
    blocks = _blocks(image)
    if blocks is None:  # a single row or column has no 2 x 2 block
        return 0.0, 1.0
    a, b, c, d = (corner.astype(np.float32) for corner in blocks)
    diagonal = np.abs(a - b - c + d) / 2
    low = np.minimum.reduce([corner.min(axis=(0, 1)) for corner in (a, b, c, d)])  # per channel, over the blocks' pixels
    high = np.maximum.reduce([corner.max(axis=(0, 1)) for corner in (a, b, c, d)])
    unclipped = np.minimum(np.minimum(a, b), np.minimum(c, d)) > low
    unclipped &= np.maximum(np.maximum(a, b), np.maximum(c, d)) < high
    block_mean = (a + b + c + d) / 4
    flatness = sum(edge_strength(plane) for plane in np.moveaxis(block_mean, 2, 0))
    flatness = np.broadcast_to(flatness[..., None], diagonal.shape)
    if not unclipped.any():
        return 0.0, 1.0
    used = flattest(unclipped, flatness)
    sigma = clipped_rms(diagonal[used])
    inside = unclipped & (block_mean > low + clip_margin * sigma) & (block_mean < high - clip_margin * sigma)
    if clip_margin > 0 and inside.sum() >= MIN_SAMPLES:
        used = flattest(inside, flatness)
        sigma = clipped_rms(diagonal[used])
    if sigma <= 0:
        return 0.0, 1.0
    axial = np.concatenate([np.abs(a + b - c - d)[used], np.abs(a - b + c - d)[used]]) / 2
    return sigma, clipped_rms(axial) / sigma


def weak_texture_sigma(image: np.ndarray) -> float | None:
    """Noise std (image units, pooled over channels) of white noise, from the picture's untextured
    patches (module docstring). On 256-px gray crops of training photos at sigma 3 to 20 it reads 1.00
    to 1.03 of the truth on smooth ones, up to 1.1 on busier ones; a cat's fur reads 0.9 clean and 1.45
    at sigma 1 where :func:`finest_details` reads 4.0 and 4.1. Gravel's grain leaves no untextured patch
    (3.3 clean). Patches touching a channel's extremes (clipped, noise lost) are left out; None when too
    few patches are usable (a picture under about 30 x 30 px)."""
    x = image if image.ndim == 3 else image[..., None]
    size = WEAK_TEXTURE_PATCH
    if min(x.shape[:2]) < size:
        return None
    stride = max(1, int(np.ceil(np.sqrt((x.shape[0] - size + 1) * (x.shape[1] - size + 1) / WEAK_TEXTURE_PATCHES))))
    dimension = size * size
    # Gradient energy of a patch of unit white noise (central differences, 2 x size x (size - 2) of
    # them, each of variance 1/2) follows a gamma law: the threshold is its CONFIDENCE quantile.
    threshold = gammaincinv(dimension / 2, WEAK_TEXTURE_CONFIDENCE) * 2.0 * size * (size - 2) / dimension
    variances = []
    for plane in np.moveaxis(x, 2, 0):
        plane = np.ascontiguousarray(plane, np.float32)
        horizontal = np.square(plane[:, 2:] - plane[:, :-2]) / 4  # central differences
        vertical = np.square(plane[2:] - plane[:-2]) / 4
        patches = sliding_window_view(plane, (size, size))[::stride, ::stride]
        rows, columns = patches.shape[:2]
        energy = (sliding_window_view(horizontal, (size, size - 2))[::stride, ::stride][:rows, :columns].sum(axis=(2, 3))
                  + sliding_window_view(vertical, (size - 2, size))[::stride, ::stride][:rows, :columns].sum(axis=(2, 3)))
        patches = patches.reshape(-1, dimension).astype(np.float64)
        unclipped = (patches.min(axis=1) > plane.min()) & (patches.max(axis=1) < plane.max())
        patches, energy = patches[unclipped], energy.ravel()[unclipped]
        if len(patches) < WEAK_TEXTURE_SAMPLES * dimension:
            continue
        variance = _smallest_variance(patches)
        for _ in range(WEAK_TEXTURE_ROUNDS):
            weak = energy < variance * threshold
            if weak.sum() < WEAK_TEXTURE_SAMPLES * dimension:
                break
            variance = _smallest_variance(patches[weak])
        variances.append(variance)
    return float(np.sqrt(np.mean(variances))) if variances else None


def capped_by_untextured(sigma: float, image: np.ndarray) -> float:
    """``sigma``, a finest-detail reading of ``image``, no larger than :func:`weak_texture_sigma`'s
    reading (where it gives one): texture can outweigh the noise in the finest details, not there."""
    untextured = weak_texture_sigma(image)
    return sigma if untextured is None else min(sigma, untextured)


def _smallest_variance(patches: np.ndarray) -> float:
    """The noise variance from the smallest eigenvalue of the patches' covariance (rows are patches):
    for n samples of white noise in p dimensions that eigenvalue sits at (1 - sqrt(p / n))^2 of the
    variance (the Marchenko-Pastur edge), which is divided out (uncorrected, 200 weak patches of a
    gravel photo at sigma 5 read 1.8)."""
    count, dimension = patches.shape
    centred = patches - patches.mean(axis=0)
    smallest = max(float(np.linalg.eigvalsh(centred.T @ centred / count)[0]), 0.0)
    return smallest / (1 - np.sqrt(dimension / count)) ** 2


def _blocks(image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """The four corners (top left, top right, bottom left, bottom right) of every 2 x 2 block, each
    (H/2, W/2, C) as views of ``image`` (gray gets a channel axis); None when there is no block."""
    x = image if image.ndim == 3 else image[..., None]
    h, w = x.shape[0] // 2 * 2, x.shape[1] // 2 * 2
    if h == 0 or w == 0:
        return None
    return x[0:h:2, 0:w:2], x[0:h:2, 1:w:2], x[1:h:2, 0:w:2], x[1:h:2, 1:w:2]


def plateau_share(image: np.ndarray) -> float:
    """The share of 2 x 2 blocks that hold one exact colour, the most common one among such blocks.

    Noise leaves no two neighbouring values equal for long: a synthetic or scanned chart's paper, a
    document's or screenshot's background are such plateaus, and nothing else in them is noise
    (the finest details there are anti-aliased edges, which the reading would take for noise; and
    the paper and ink are the picture's extremes, which it leaves out as clipped). A noisy photo
    has them only where it is clipped, at black or white: rarely over a large share (a letterboxed
    frame's bars cover a quarter)."""
    blocks = _blocks(image)
    if blocks is None:
        return 0.0
    a, b, c, d = blocks
    flat = ((a == b) & (b == c) & (c == d)).all(axis=2)
    if not flat.any():
        return 0.0
    colours = a[flat].astype(np.float64) @ (1.0 + np.arange(a.shape[2]) * np.pi)  # one number per colour
    return float(np.unique(colours, return_counts=True)[1].max()) / flat.size


def flattest(usable: np.ndarray, flatness: np.ndarray, share: float = 0.5) -> np.ndarray:
    """The ``usable`` samples whose ``flatness`` (an :func:`edge_strength`) is at most its ``share`` quantile over them (default: the flatter half)."""
    return usable & (flatness <= np.quantile(flatness[usable], share))


def without_border(mask: np.ndarray, px: int) -> np.ndarray:
    """``mask`` (H, W) with ``px`` rows and columns at each edge set False (in place, returned)."""
    mask[:px], mask[-px:], mask[:, :px], mask[:, -px:] = False, False, False, False
    return mask


def edge_strength(plane: np.ndarray) -> np.ndarray:
    """Gradient magnitude of ``plane`` lightly smoothed (sigma 1 px): what tells texture from flat areas."""
    smooth = cv2.GaussianBlur(np.asarray(plane, np.float32), (0, 0), 1.0)
    return np.hypot(cv2.Sobel(smooth, cv2.CV_32F, 1, 0), cv2.Sobel(smooth, cv2.CV_32F, 0, 1))


def clipped_rms(details: np.ndarray) -> float:
    """Noise std from absolute noise samples of unit gain: their RMS below a cut at CUT_IN_SIGMAS of
    the MAD's sigma, corrected for the cut (the MAD alone under-reads heavy tails, the RMS alone
    counts edges)."""
    mad_sigma = float(np.median(details)) * MAD_TO_STD if details.size else 0.0
    if mad_sigma <= 0:
        return 0.0
    kept = details[details <= CUT_IN_SIGMAS * mad_sigma]
    return float(np.sqrt(np.mean(kept.astype(np.float64) ** 2)) * CUT_CORRECTION)


def level_of_sigma(sigma: float, value_range: float) -> NoiseLevel:
    return level_of_sigma_8bit(sigma * 255.0 / value_range)
