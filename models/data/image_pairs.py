"""Clean colour images and the degradations real photos have, for the single-image restorer.

Clean images (RGB float32 in 0..1), split by source as in :mod:`models.data.sources`: the colour
skimage samples of the training split (gray ones as three equal planes), colour dead-leaves images
and printed patterns on tinted paper. Held out: skimage ``coffee``, ``camera``, ``coins``,
``gravel`` and matplotlib's ``grace_hopper`` portrait (when matplotlib is installed; it comes
with the ``eval`` extra).

Degradations (:data:`DEGRADATIONS`), all drawn from one ``rng``:

- ``gaussian``: white Gaussian noise, sigma 0-55 in 8-bit units, independent per channel;
- ``camera``: a camera's raw path: linear light (gamma 2.2), an RGGB mosaic, Poisson photon noise
  (8 to 3000 photons at white) plus Gaussian read noise, bilinear demosaicking and the gamma
  again: signal-dependent and spatially correlated, like a phone photo at high ISO;
- ``jpeg``: JPEG at quality 30-95 (OpenCV, 4:2:0 chroma) of the clean image;
- ``mixed``: gaussian (sigma up to 30) or camera noise, then JPEG;
- ``clean``: nothing (a restorer must leave a clean image alone).

Gray images get gray noise (one plane, repeated), as a gray file would carry. Results are clipped
to 0..1 like any file's values; most are rounded to 8 bits as an 8-bit file would be, the rest stay
float (16-bit files).
"""
from __future__ import annotations

from typing import Literal

import cv2
import numpy as np
from skimage import data

from models.data.sources import TRAIN_SOURCES, VAL_SOURCES, Split, dead_leaves
from models.data.targets import printed_targets

Degradation = Literal["gaussian", "camera", "jpeg", "mixed", "clean"]
DEGRADATIONS: dict[Degradation, float] = {"gaussian": 0.35, "camera": 0.25, "jpeg": 0.15, "mixed": 0.2, "clean": 0.05}
GAMMA = 2.2
EXTRA_VAL_PHOTOS = ("grace_hopper",)  # matplotlib's sample portrait
_SPLIT_STREAM = {"train": 10, "val": 11}
PRINTED_PATTERNS = {"train": 12, "val": 3}  # the last images of clean_images(split)


def load_rgb(name: str) -> np.ndarray | None:
    """A bundled sample as float32 RGB in 0..1, or None when it is not available offline."""
    if name == "grace_hopper":
        try:
            import matplotlib.cbook as cbook
        except ImportError:
            return None
        with cbook.get_sample_data("grace_hopper.jpg") as f:
            image = cv2.imdecode(np.frombuffer(f.read(), np.uint8), cv2.IMREAD_COLOR)[..., ::-1]
    else:
        image = getattr(data, name)()
        if isinstance(image, tuple):  # stereo pairs: keep the left view
            image = image[0]
    image = np.asarray(image)
    if image.dtype == bool:
        image = image.astype(np.float32)
    elif image.dtype == np.uint8:
        image = image / 255.0
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    return np.ascontiguousarray(np.clip(image[..., :3], 0.0, 1.0), dtype=np.float32)


def _tinted(gray: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A gray pattern printed in a random ink on a random paper colour."""
    paper, ink = rng.uniform(0.7, 1.0, 3), rng.uniform(0.0, 0.6, 3)
    return (ink + (paper - ink) * gray[..., None]).astype(np.float32)


def colour_dead_leaves(size: int, rng: np.random.Generator) -> np.ndarray:
    """Dead leaves with a random colour per disc: three channels drawn from one occlusion pattern."""
    labels = dead_leaves(size, np.random.default_rng(rng.integers(2**32)), texture=0.0)
    palette = rng.uniform(0.0, 1.0, (256, 3)).astype(np.float32)
    shade = cv2.GaussianBlur(rng.standard_normal((size, size)).astype(np.float32), (0, 0), 3.0)
    image = palette[np.clip(labels * 255, 0, 255).astype(np.uint8)] * (1 + 0.02 * shade / (shade.std() + 1e-6))[..., None]
    return np.clip(image, 0.0, 1.0)


def clean_images(split: Split, size: int = 384, seed: int = 0) -> list[np.ndarray]:
    """Every source photo of ``split`` (whole, RGB), then ``split``'s colour dead leaves and printed patterns."""
    rng = np.random.default_rng([seed, _SPLIT_STREAM[split]])
    names = VAL_SOURCES + EXTRA_VAL_PHOTOS if split == "val" else TRAIN_SOURCES
    photos = [image for image in map(load_rgb, names) if image is not None]
    synthetic = [colour_dead_leaves(size, rng) for _ in range(4 if split == "val" else 16)]
    synthetic += [_tinted(t, rng) for t in printed_targets(size, rng, PRINTED_PATTERNS[split])]
    return photos + synthetic


def is_gray(image: np.ndarray) -> bool:
    return bool(np.array_equal(image[..., 0], image[..., 1]) and np.array_equal(image[..., 1], image[..., 2]))


def _per_plane_noise(shape: tuple[int, ...], gray: bool, rng: np.random.Generator) -> np.ndarray:
    noise = rng.standard_normal(shape[:2] + (1 if gray else shape[2],)).astype(np.float32)
    return np.broadcast_to(noise, shape)


def add_gaussian(image: np.ndarray, sigma_8bit: float, rng: np.random.Generator) -> np.ndarray:
    return image + sigma_8bit / 255.0 * _per_plane_noise(image.shape, is_gray(image), rng)


def camera_noise(image: np.ndarray, photons: float, read: float, rng: np.random.Generator) -> np.ndarray:
    """The raw path of a camera: linear light, RGGB mosaic (colour only), Poisson + read noise, demosaic, gamma."""
    linear = np.clip(image, 0.0, 1.0) ** GAMMA
    gray = is_gray(image)
    if gray:
        raw = linear[..., 0]
    else:
        h, w = linear.shape[0] // 2 * 2, linear.shape[1] // 2 * 2
        linear = linear[:h, :w]
        raw = np.empty((h, w), np.float32)
        raw[0::2, 0::2], raw[0::2, 1::2] = linear[0::2, 0::2, 0], linear[0::2, 1::2, 1]
        raw[1::2, 0::2], raw[1::2, 1::2] = linear[1::2, 0::2, 1], linear[1::2, 1::2, 2]
    raw = rng.poisson(raw * photons) / photons + read * rng.standard_normal(raw.shape)
    raw = np.clip(raw, 0.0, 1.0).astype(np.float32)
    if gray:
        out = np.repeat(raw[..., None], 3, axis=2)
    else:
        out = cv2.cvtColor(np.rint(raw * 65535).astype(np.uint16), cv2.COLOR_BayerBG2RGB).astype(np.float32) / 65535
        out = np.pad(out, ((0, image.shape[0] - out.shape[0]), (0, image.shape[1] - out.shape[1]), (0, 0)), mode="edge")
    return out ** (1 / GAMMA)


def jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    """A JPEG round trip of the 8-bit image (colour with 4:2:0 chroma, gray as gray)."""
    gray = is_gray(image)
    pixels = np.clip(np.rint(image * 255), 0, 255).astype(np.uint8)
    pixels = pixels[..., 0] if gray else pixels[..., ::-1]
    ok, encoded = cv2.imencode(".jpg", np.ascontiguousarray(pixels), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    decoded = cv2.imdecode(encoded, cv2.IMREAD_UNCHANGED)
    decoded = np.repeat(decoded[..., None], 3, axis=2) if gray else decoded[..., ::-1]
    return decoded.astype(np.float32) / 255


def jpeg_step_at(quality: int) -> float:
    """The mean luma quantisation step :func:`jpeg` leaves in its file at ``quality`` (what the service reads from a JPEG's header)."""
    from models.formats import jpeg_step

    ok, encoded = cv2.imencode(".jpg", np.zeros((8, 8), np.uint8), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    return jpeg_step(encoded.tobytes())


def degrade(clean: np.ndarray, kind: Degradation, rng: np.random.Generator, quantise: bool = True) -> np.ndarray:
    """``clean`` (RGB 0..1) with degradation ``kind`` drawn at random strength; 8-bit rounded if ``quantise``."""
    if kind == "gaussian":
        out = add_gaussian(clean, rng.uniform(0, 55), rng)
    elif kind == "camera":
        out = camera_noise(clean, float(np.exp(rng.uniform(np.log(8), np.log(3000)))), rng.uniform(0.0005, 0.01), rng)
    elif kind == "jpeg":
        return jpeg(clean, int(rng.integers(30, 96)))
    elif kind == "mixed":
        noisy = add_gaussian(clean, rng.uniform(0, 30), rng) if rng.random() < 0.5 else \
            camera_noise(clean, float(np.exp(rng.uniform(np.log(20), np.log(3000)))), rng.uniform(0.0005, 0.005), rng)
        return jpeg(noisy, int(rng.integers(30, 96)))
    else:
        out = clean.copy()
    out = np.clip(out, 0.0, 1.0)  # a file holds 0..255 (or 0..65535): noise clips at black and white
    return (np.rint(out * 255) / 255 if quantise else out).astype(np.float32)


class CropSampler:
    """Random training pairs: crops of random scale (0.35-1x, area-downsampled: cleaner than the
    JPEG-compressed samples themselves), a random degradation, 30 % made gray, 25 % left unrounded.
    ``turns``: each clean crop also gets a random quarter turn, mirror and order of its colour
    channels (16 training photos become 48 times as many views)."""

    def __init__(self, images: list[np.ndarray], rng: np.random.Generator, turns: bool = False):
        self.images, self.rng, self.turns = images, rng, turns
        self.kinds, self.weights = list(DEGRADATIONS), np.array(list(DEGRADATIONS.values()))

    def clean_crop(self, size: int) -> np.ndarray:
        rng = self.rng
        image = self.images[int(rng.integers(len(self.images)))]
        h, w = image.shape[:2]
        scale = rng.uniform(max(0.35, size / min(h, w)), 1.0)
        side = min(int(np.ceil(size / scale)), h, w)
        y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
        crop = cv2.resize(image[y:y + side, x:x + side], (size, size), interpolation=cv2.INTER_AREA)
        if rng.random() < 0.3:
            crop = np.repeat(crop.mean(axis=2, keepdims=True), 3, axis=2)
        return np.clip(crop, 0.0, 1.0).astype(np.float32)

    def batch(self, count: int, size: int) -> tuple[np.ndarray, np.ndarray]:
        """(degraded, clean), each (count, 3, size, size) float32."""
        pairs = []
        for _ in range(count):
            clean = self.clean_crop(size)
            if self.turns:
                clean = self._turned(clean)
            kind = self.kinds[int(self.rng.choice(len(self.kinds), p=self.weights))]
            noisy = degrade(clean, kind, self.rng, quantise=self.rng.random() < 0.75)
            pairs.append((noisy.transpose(2, 0, 1), clean.transpose(2, 0, 1)))
        return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])

    def _turned(self, crop: np.ndarray) -> np.ndarray:
        rng = self.rng
        crop = np.rot90(crop, int(rng.integers(4)))
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        return np.ascontiguousarray(crop[..., rng.permutation(3)])
