"""Learned single-image restoration: one blind network for gray and colour, 8 and 16 bits.

The network (models/archs/imageunet.py, trained by ``python -m models.train_image`` on Gaussian,
camera raw and JPEG degradations and their mixes) sees RGB in 0..1; a gray image runs as three
equal planes and comes back as their mean. Values are scaled by the image's data range (1, 255,
4095 or 65535, :func:`models.image.noise.data_range`), so results stay in input units. It is
blind, so one weight file serves every level; the registry lists it per level like every kind.

Images the classifier calls ``low`` or ``medium`` keep only the part of the network's change that
Stein's unbiased risk estimate says the noise explains (models/sure.py; one more network pass
over a centred window of at most 512 px: 1.6 s instead of 1.0 s for a megapixel): a clean photo is
not smoothed, and fine texture under moderate noise is not wiped out (on held-out photos: +0.17 dB
at sigma 15, +1.0 dB on gray camera noise at 300 photons, never more than 0.3 dB lower). At high
noise the blend kept the whole change on every held-out photo, so it is skipped there. The price:
a JPEG with little noise is mostly left as it is.

Colour noise drawn independently per channel (white Gaussian noise; told from a camera's or JPEG's
shared noise by :func:`models.image.chroma.luma_noise_ratio`) up to sigma
:data:`LUMA_CHROMA_MAX_SIGMA_8BIT` goes through luma and chroma instead (models/image/chroma.py): the
network restores the luma as a gray image, which carries a third of the noise variance, and a
guided filter that follows the restored luma smooths the chroma, each SURE-blended with its input
(the chroma's blend always: it costs no network pass). A few per cent more CPU than the RGB path;
on the held-out colour crops +1.4 dB at sigma 15 and +1.1 dB at sigma 25 over it. Above sigma 30 the RGB network
is better (sigma 35 and 50 on training and validation images), and a camera's noise stays with it.

Frames larger than the memory budget (256 MB of activations, about 0.8 megapixels) run in
overlapping tiles (:mod:`models.tiling`), with progress per tile.

The image noise classifier (:class:`LearnedImageNoiseClassifier`) reads the noise classically
first (models/image/noise.py: finest details, exact for white noise). That reading sees a third or
less of spatially correlated noise (a colour camera's demosaicked grain) and almost none of JPEG's,
so where it says ``low`` the network checks it: what the network removes from the flattest half
of a few sample tiles is noise of every spatial scale. The check wins when it is clearly larger:
above twice the classical reading and above :data:`CLEAN_CHANGE_8BIT`, a little over the most the
network removes from flat areas of clean training images (3.7 levels, ``python -m models.eval_noise
--calibrate``; printed patterns aside, where the classical reading is the larger). The check runs
the network its thresholds were calibrated on, image-denoise v2's (``image-noise.pt``), not the
restorer's retrained one, whose change on clean JPEG and camera photos differs (models/train_image.py).

A clean chart, document or screenshot is mostly exact plateaus of paper and ink, the picture's
extremes, which the classical reading leaves out as clipped; only anti-aliased edges remain, and a
clean Siemens star read 26 (``high``), changed by up to 53 levels. Noise leaves no plateaus, so a
picture one exact colour covers in :data:`models.image.noise.NOISE_FREE_PLATEAU_SHARE` of its blocks
is read as noise-free and comes back unchanged (:func:`models.image.noise.plateau_share`).

The other way round, fine texture (gravel, grass, a printed pattern's hatching) fills the finest
details, and the classical reading takes it for noise: clean grass read 10.9, a clean printed chart up
to 44 (``high``: restored with no blend). White noise fills the horizontal, vertical and diagonal
details alike, texture does not (:func:`models.image.noise.finest_details`' balance), so where they
differ the network checks at every level, and where it removes less than :data:`TEXTURE_RATIO` of
the classical reading, the estimate is their geometric mean: the truth lies between the two (the
network keeps part of the noise in texture), and the geometric mean is the estimate whose worst
ratio to anything in that range is smallest. Thresholds: ``python -m models.eval_noise --calibrate``.

At low noise, texture can outweigh the noise in the finest details without unbalancing them (a cat's
fur: clean, it read 4; with noise of sigma 1, 4.1), and SURE, told of more noise than there is,
kept a smoothing that wiped the fur: 7.8 dB below the input. So a ``low`` reading is capped by
:func:`models.image.noise.weak_texture_sigma`, the noise of the picture's untextured patches, which
does not see texture (nor a camera's correlated noise, which the network check reads first). On
held-out photos (``python benchmarks/light_noise.py``): white noise of sigma 1 came back 1.28 dB below
the input on average, then 0.73 (gravel, whose grain leaves no untextured patch, stayed 4.15 below:
next paragraph; the other photos' worst went from 1.89 to 0.61 below); sigma 3 from +0.50 to +0.77 dB
over it (worst -0.57 to +0.17); clean photos are changed by 0.30 levels RMS instead of 0.51, three of
nine not at all; camera noise at 1000 photons gains 0.06 dB less.

Gravel or grass leave no untextured patch, and no reading tells their grain from light noise (clean
gravel read 3.3, with noise of sigma 1 3.4). SURE's weight grows with the square of the sigma it is
told: told too much, it removes texture (gravel at sigma 1: 4.3 dB below the input); told too little,
it only leaves noise in. So where the network check found texture, a ``low`` estimate also gives the
low end of its range, what the network removes (``NoiseEstimate.lower``), and the blend is told that;
the estimate itself (the job's sigma, the level) is unchanged. Chosen on training photos (grass at
sigma 1: -5.1 to -1.9 dB against the input; the worst at sigma 2 and 3: -2.4 and -1.2 to -0.8 and
+0.0; the mean at sigma 5 and 7 0.05 dB lower), then measured on the held-out ones (``python
benchmarks/light_noise.py``): sigma 1 worst -4.29 to -0.77 dB, mean -0.73 to -0.33; sigma 2 worst -1.16
to +0.10; clean photos changed by at most 0.56 levels RMS instead of 1.43. The price: gravel gains 0.5
to 0.8 dB less at sigma 5 and 7 and under camera noise (still 0.77 dB or more over its input).

A JPEG's own error hardly reaches the finest details either (its encoder rounded them away), so a
JPEG with little noise read about 0 and came back as it was. Its file says how coarsely it was
rounded: the mean step of its luma quantisation table (:func:`models.formats.jpeg_step`; 46 at
quality 60, 96 at 30), and the estimate is at least :data:`JPEG_ERROR_SHARE` of it (2.3 at quality
60; 4.8 at 30), which SURE is told. Chosen on training photos at quality 30 to 90 and with noise of
sigma 5 and 10 under it (share 0.03 / 0.05 / 0.07 / 0.1: mean gain at quality 60 +0.20 / +0.27 / +0.28 /
+0.13 dB, with noise +3.38 / +3.68 / +4.01 / +4.07 at sigma 10 and quality 50, but up to 0.57 and 1.52 dB
below the input from 0.07 on), then measured on held-out ones (``python -m models.eval_images``).
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from models import sure
from models.archs import TrainedModel
from models.image.chroma import CHROMA_RADIUS, join_luma_chroma, luma_noise_ratio, smooth_chroma, split_luma_chroma
from models.image.noise import (
    MIN_SAMPLES,
    NOISE_FREE_PLATEAU_SHARE,
    capped_by_untextured,
    clipped_rms,
    data_range,
    edge_strength,
    finest_details,
    flattest,
    level_of_sigma,
    plateau_share,
    without_border,
)
from models.interface import NoiseEstimate, NoiseLevel, Progress
from models.tiling import run_within_budget

NET_MEMORY_MB = 256.0
NET_BYTES_PER_PIXEL = 320  # peak RSS growth of the forward pass per input pixel (measured ~300 at 512 px)
TILE_MARGIN = 128  # context on each side of a tile (px, a multiple of the network's 16-px stride; 48 left seams up to 5 of 255, 96 up to 1.4 with image-denoise v3)
NET_STRIDE = 16  # pixel unshuffle (2) x three 2x downsamplings
CLEAN_CHANGE_8BIT = 5.0  # the network's removal on flat areas of clean training images peaks at 3.7 (8-bit units)
WHITE_BALANCE_TOLERANCE = 0.05  # finest_details' balance under white noise on training images: 0.99 to 1.075 (5th to 95th percentile)
JPEG_ERROR_SHARE = 0.05  # of a JPEG's mean quantisation step: the least noise it is read to have (module docstring)
TEXTURE_RATIO = 0.6  # the check over the classical reading on training images: >= 0.71 under white noise of sigma 20+, <= 0.49 on clean textures and patterns
SAMPLE_TILE, SAMPLE_GRID = 192, 3  # the classifier's check runs on at most 3 x 3 tiles of 192 px (0.33 megapixels)
SAMPLE_BORDER = 16  # tile edges lack context: left out of the reading
SURE_LEVELS = ("low", "medium")  # levels whose result is blended with the input (module docstring)
LUMA_CHROMA_MAX_SIGMA_8BIT = 30.0  # above, the RGB network does better (sigma 35 and 50 on training and validation images)
LUMA_CHROMA_MAX_RATIO = 1.15  # luma_noise_ratio of noise independent per channel (models/image/chroma.py)


def planes_of(image: np.ndarray) -> tuple[np.ndarray, float]:
    """(3, H, W) float32 planes in 0..1 for the network (gray as three equal planes) and the data range they were divided by."""
    image = np.asarray(image, np.float32)
    scale = data_range(image)
    planes = np.repeat(image[None], 3, axis=0) if image.ndim == 2 else image.transpose(2, 0, 1)
    return np.ascontiguousarray(planes, dtype=np.float32) * np.float32(1 / scale), scale


class LearnedImageRestorer(TrainedModel):
    """Same shape float32 in input units: (H, W) gray or (H, W, 3) colour."""

    def __init__(self, level: NoiseLevel | None = None, weights: Path | None = None, net_memory_mb: float = NET_MEMORY_MB):
        super().__init__(None, weights)  # one blind network serves every level
        self.level = level
        self.net_memory_mb = net_memory_mb

    def predict(self, image: np.ndarray, noise: NoiseEstimate, progress: Progress) -> np.ndarray:
        blend = noise.level in SURE_LEVELS
        sigma = noise.lower if blend and noise.lower is not None else noise.sigma  # SURE is told the safe end (module docstring)
        if blend and sigma <= 0:  # SURE would keep none of the network's change: spare the pass
            return np.array(image, np.float32)
        planes, scale = planes_of(image)
        sigma /= scale
        if np.ndim(image) == 2:
            return np.clip(self._restored(planes[0], sigma**2, blend, self._gray, progress), 0.0, 1.0) * np.float32(scale)
        if sigma * 255 <= LUMA_CHROMA_MAX_SIGMA_8BIT and self._noise_independent_per_channel(image):
            luma, chroma = split_luma_chroma(planes)
            restored_luma = self._restored(luma, sigma**2 / 3, blend, self._gray, progress)
            restored = join_luma_chroma(restored_luma, self._chroma(restored_luma, chroma, sigma))
        else:  # a blind network also smooths a clean photo's fine texture: blended where the level says
            restored = self._restored(planes, sigma**2, blend, self._network, progress)
        return np.ascontiguousarray((np.clip(restored, 0.0, 1.0) * np.float32(scale)).transpose(1, 2, 0))

    @staticmethod
    def _noise_independent_per_channel(image: np.ndarray) -> bool:
        """:func:`models.image.chroma.luma_noise_ratio` at most ``LUMA_CHROMA_MAX_RATIO``, read on the
        SURE window (:func:`models.sure.window`: a quarter of a megapixel is plenty)."""
        rows, columns = sure.window(image.shape[:2])[0][1:]
        return luma_noise_ratio(image[rows, columns]) <= LUMA_CHROMA_MAX_RATIO

    def _restored(self, x: np.ndarray, variance: float, blend: bool, run: Callable[[np.ndarray, Progress], np.ndarray],
                  progress: Progress) -> np.ndarray:
        """``run`` (the network on planes, or on a gray plane) on ``x`` with white noise of ``variance``,
        SURE-blended with ``x`` when ``blend`` (its weight from the SURE window, rerun with ``TILE_MARGIN``
        of context: one more pass over a small image, a fraction of a pass over a large one)."""
        restored = run(x, (lambda f, stage: progress(0.7 * f, stage)) if blend else progress)
        if not blend:
            return restored
        weight = sure.window_weight(x, restored, variance, lambda moved, _: run(moved, lambda f, stage: progress(0.7 + 0.3 * f, stage)),
                                    TILE_MARGIN)
        return sure.blend(x, restored, weight)

    def _gray(self, plane: np.ndarray, progress: Progress) -> np.ndarray:
        """The network on a gray plane (H, W), as three equal planes."""
        return self._network(np.repeat(plane[None], 3, axis=0), progress).mean(axis=0)

    @staticmethod
    def _chroma(luma: np.ndarray, chroma: np.ndarray, sigma: float) -> np.ndarray:
        """The chroma guided-filtered by the restored ``luma``, SURE-blended with its input (no network pass)."""
        if sigma <= 0:
            return chroma
        smoothed = smooth_chroma(luma, chroma, sigma)
        weight = sure.window_weight(chroma, smoothed, sigma**2, lambda moved, context: smooth_chroma(luma[context[1:]], moved, sigma),
                                    2 * CHROMA_RADIUS)
        return sure.blend(chroma, smoothed, weight)

    def _network(self, planes: np.ndarray, progress: Progress) -> np.ndarray:
        return run_within_budget(self.run_network, planes, 3, self.net_memory_mb, NET_BYTES_PER_PIXEL, TILE_MARGIN, NET_STRIDE,
                                 lambda f: progress(f, "restoring"))

    def run_network(self, planes: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(planes))[None].to(self.device).contiguous(memory_format=torch.channels_last)
            return self.net(x)[0].float().cpu().numpy()


class LearnedImageNoiseClassifier:
    """The classical reading, checked by a restorer network (its own weight file) where it says ``low`` (module docstring)."""

    def __init__(self, level: NoiseLevel | None = None, weights: Path | None = None):
        self.network = LearnedImageRestorer(None, weights)

    def setup(self, device: str) -> None:
        self.network.setup(device)

    def predict(self, image: np.ndarray, jpeg_step: float | None = None) -> NoiseEstimate:
        """``jpeg_step``: the image came as a JPEG with this mean luma quantisation step (module docstring)."""
        scale = data_range(image)
        if plateau_share(image) >= NOISE_FREE_PLATEAU_SHARE:  # a clean chart, document or screenshot
            return NoiseEstimate(level=level_of_sigma(0.0, scale), sigma=0.0)
        estimate = self._reading(image, scale)
        if not jpeg_step:
            return estimate
        floor = JPEG_ERROR_SHARE * jpeg_step * scale / 255
        sigma = max(estimate.sigma, floor)
        return NoiseEstimate(level_of_sigma(sigma, scale), sigma, None if estimate.lower is None else max(estimate.lower, floor))

    def _reading(self, image: np.ndarray, scale: float) -> NoiseEstimate:
        sigma, balance = finest_details(image)
        low = level_of_sigma(sigma, scale) == "low"
        texture = None
        if low or abs(balance - 1) > WHITE_BALANCE_TOLERANCE:
            removed = self.removed_sigma(image)
            if low and removed > max(2 * sigma, CLEAN_CHANGE_8BIT * scale / 255):  # correlated noise
                return NoiseEstimate(level=level_of_sigma(removed, scale), sigma=removed)
            if 0 < removed < TEXTURE_RATIO * sigma:  # texture in the finest details (0: too few usable pixels to check)
                sigma, texture = float(np.sqrt(sigma * removed)), removed
        if level_of_sigma(sigma, scale) != "low":
            return NoiseEstimate(level=level_of_sigma(sigma, scale), sigma=sigma)
        sigma = capped_by_untextured(sigma, image)  # at low noise texture can outweigh it in the finest details
        return NoiseEstimate(level="low", sigma=sigma, lower=None if texture is None else min(sigma, texture))

    def removed_sigma(self, image: np.ndarray) -> float:
        """Std (image units) of what the network removes from the flattest unclipped half of up to
        ``SAMPLE_GRID`` x ``SAMPLE_GRID`` evenly spread tiles that do not overlap (so it never costs
        more than one pass over the image); 0 when too little of the image is usable."""
        planes, scale = planes_of(image)
        h, w = planes.shape[1:]
        low, high = planes.min(axis=(1, 2), keepdims=True), planes.max(axis=(1, 2), keepdims=True)
        removed = []
        for y in _tile_starts(h):
            for x in _tile_starts(w):
                tile = planes[:, y:y + SAMPLE_TILE, x:x + SAMPLE_TILE]
                restored = self.network.run_network(tile)
                usable = without_border(((tile > low) & (tile < high)).all(axis=0), SAMPLE_BORDER)
                if usable.sum() >= MIN_SAMPLES:
                    flat = flattest(usable, sum(edge_strength(plane) for plane in restored))
                    removed.append(np.abs(tile - restored)[:, flat].ravel())
        return clipped_rms(np.concatenate(removed)) * scale if removed else 0.0


def _tile_starts(length: int) -> np.ndarray:
    """Evenly spread starts of as many whole sample tiles as fit along ``length`` (at most SAMPLE_GRID; one when none fits)."""
    count = max(1, min(SAMPLE_GRID, length // SAMPLE_TILE))
    return np.linspace(0, max(length - SAMPLE_TILE, 0), count).astype(int)
