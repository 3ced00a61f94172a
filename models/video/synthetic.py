"""Noisy clips with known clean frames, for tests and measurement.

A camera pans, zooms and turns smoothly (sub-pixel steps) over one of scikit-image's sample photos
while a round cut-out of another photo crosses the view, so a restorer faces both global motion and
an occluding object. Gaussian noise of a chosen sigma (8-bit units) is added per channel and the clip
is encoded: FFV1 in .mkv keeps the noise exactly (for measurement), H.264 in .mp4 is what users send.

Training and evaluation draw their photos by split (:func:`split_images`), the same split by source
image as ``models/data/sources.py``: validation clips are made only of validation photos.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
from skimage import data

from models.data.image_pairs import camera_noise
from models.data.sources import _SPLIT_STREAM, DEAD_LEAVES_PER_SPLIT, TRAIN_SOURCES, VAL_SOURCES, Split

BACKGROUNDS = ("astronaut", "coffee", "rocket", "chelsea", "immunohistochemistry", "hubble_deep_field")
AUDIO_RATE = 48_000
CAMERA_READ_NOISE = 0.01  # of white, for camera-noise clips


@dataclass(frozen=True)
class Scene:
    """A clean clip: a photo, a smooth camera path over it and a moving disc; any frame on demand."""

    background: np.ndarray  # float32 RGB
    sprite: np.ndarray  # float32 RGBA, alpha 0..1
    width: int
    height: int
    frames: int
    color: bool
    path: np.ndarray  # per frame: pan x, pan y (source px), zoom factor, angle (degrees)
    sprite_track: np.ndarray  # per frame: sprite centre x, y (output px)
    brightness: np.ndarray | None = None  # per frame: a gain on the whole view (a fade); None: steady

    def fading(self, lowest: float = 0.3) -> Scene:
        """The same scene through a fade: steady for the first 30 % of the frames, down to ``lowest`` of
        its brightness by 50 %, held to 60 %, back up by 80 % (a fade out and in, or an exposure change)."""
        t = np.arange(self.frames) / max(self.frames - 1, 1)
        gain = np.interp(t, (0.0, 0.3, 0.5, 0.6, 0.8, 1.0), (1.0, 1.0, lowest, lowest, 1.0, 1.0))
        return replace(self, brightness=gain.astype(np.float32))

    @classmethod
    def random(cls, rng: np.random.Generator, width: int, height: int, frames: int, color: bool = True) -> Scene:
        names = rng.permutation(BACKGROUNDS)
        background = getattr(data, names[0])().astype(np.float32)
        return cls.over(background, getattr(data, names[1])().astype(np.float32), rng, width, height, frames, color)

    @classmethod
    def over(cls, background: np.ndarray, photo: np.ndarray, rng: np.random.Generator, width: int, height: int, frames: int, color: bool = True) -> Scene:
        """A random camera path over ``background`` with a disc cut from ``photo`` (float32 RGB, 0..255)."""
        src_h, src_w = background.shape[:2]
        # Magnify so the view, with 15% to spare, always lies on the photo.
        zoom = max(width / src_w, height / src_h) * 1.15
        slack = 0.06 * min(src_w, src_h)
        t = np.arange(frames)[:, None]
        period, phase = rng.uniform(40, 90, 4), rng.uniform(0, 2 * np.pi, 4)
        wave = np.sin(2 * np.pi * t / period + phase)
        path = np.column_stack([
            slack * wave[:, 0],
            slack * wave[:, 1],
            zoom * (1 + 0.04 * wave[:, 2]),
            1.5 * wave[:, 3],
        ])
        radius = max(4, height // 6)
        sprite = _disc(photo, radius)
        start_x, speed = rng.uniform(0, width), rng.uniform(1.0, 3.0) * rng.choice([-1, 1])
        track = np.column_stack([
            (start_x + speed * t[:, 0]) % (width + 2 * radius) - radius,
            height / 2 + 0.25 * height * np.sin(2 * np.pi * t[:, 0] / rng.uniform(30, 60)),
        ])
        return cls(background, sprite, width, height, frames, color, path, track)

    def frame(self, i: int) -> np.ndarray:
        """Clean frame ``i``: float32 RGB with 8-bit integer values, as a clean 8-bit clip holds."""
        pan_x, pan_y, zoom, angle = self.path[i]
        src_h, src_w = self.background.shape[:2]
        to_view = cv2.getRotationMatrix2D((src_w / 2 + pan_x, src_h / 2 + pan_y), angle, zoom)
        to_view[:, 2] += (self.width / 2, self.height / 2) - np.array([src_w / 2 + pan_x, src_h / 2 + pan_y])
        view = cv2.warpAffine(self.background, to_view, (self.width, self.height), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT_101)
        view = self._paste_sprite(view, *self.sprite_track[i])
        if self.brightness is not None:
            view = view * self.brightness[i]
        if not self.color:
            view = np.repeat(cv2.cvtColor(view, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2)
        return np.clip(np.rint(view), 0, 255).astype(np.float32)

    def clean_frames(self) -> Iterator[np.ndarray]:
        return (self.frame(i) for i in range(self.frames))

    def _paste_sprite(self, view: np.ndarray, x: float, y: float) -> np.ndarray:
        size = self.sprite.shape[0]
        shift = np.float32([[1, 0, x - size / 2], [0, 1, y - size / 2]])
        placed = cv2.warpAffine(self.sprite, shift, (self.width, self.height), flags=cv2.INTER_LINEAR, borderValue=0)
        alpha = placed[..., 3:]
        return view * (1 - alpha) + placed[..., :3] * alpha


def split_images(split: Split, seed: int = 0) -> list[np.ndarray]:
    """Float32 RGB photos (0..255) of one split: skimage samples of that split, then colour dead leaves.

    Gray samples are kept gray (R = G = B); the dead leaves, drawn from the split's own seed stream,
    bring saturated colour edges.
    """
    rng = np.random.default_rng([seed, _SPLIT_STREAM[split]])
    names = VAL_SOURCES if split == "val" else TRAIN_SOURCES
    images = [_sample_rgb(name) for name in names]
    images += [dead_leaves_rgb(480, 720, rng) for _ in range(DEAD_LEAVES_PER_SPLIT[split])]
    return images


def _sample_rgb(name: str) -> np.ndarray:
    image = getattr(data, name)()
    if isinstance(image, tuple):  # stereo pairs: keep the left view
        image = image[0]
    if image.dtype == bool:
        image = image.astype(np.uint8) * 255
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    return image[..., :3].astype(np.float32)


def dead_leaves_rgb(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """Occluding discs of random colours with power-law radii (density ~ r^-3), as in sources.dead_leaves."""
    r_min, r_max = 2.0, min(height, width) / 3.0
    canvas = np.empty((height, width, 3), np.float32)
    canvas[:] = rng.uniform(0, 255, 3)
    count = 20 * (height + width)
    radii = (r_min**-2 - rng.uniform(size=count) * (r_min**-2 - r_max**-2)) ** -0.5
    xs = rng.uniform(-r_max / 2, width + r_max / 2, count)
    ys = rng.uniform(-r_max / 2, height + r_max / 2, count)
    colours = rng.uniform(0, 255, (count, 3))
    for x, y, r, c in zip(xs, ys, radii, colours):
        cv2.circle(canvas, (int(x * 16), int(y * 16)), int(r * 16), c.tolist(), -1, cv2.LINE_AA, shift=4)
    return canvas


def _disc(photo: np.ndarray, radius: int) -> np.ndarray:
    """A soft-edged round cut-out of the photo's centre, as RGBA."""
    size = 2 * radius + 2
    h, w = photo.shape[:2]
    scale = size / min(h, w)
    patch = cv2.resize(photo, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    top, left = (patch.shape[0] - size) // 2, (patch.shape[1] - size) // 2
    patch = patch[top:top + size, left:left + size]
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2
    alpha = np.clip(radius - np.hypot(xx, yy) + 0.5, 0, 1).astype(np.float32)
    return np.dstack([patch, alpha])


def make_clip(
    path: Path,
    rng: np.random.Generator,
    sigma: float,
    frames: int = 50,
    width: int = 640,
    height: int = 360,
    fps: int = 25,
    audio: bool | str = True,
    color: bool = True,
    scene: Scene | None = None,
    bits: int = 8,
    crf: int = 18,
    photons: float | None = None,
) -> Scene:
    """Write a noisy clip to ``path`` (.mkv: FFV1 lossless; .mp4: H.264 at ``crf``) and return its clean scene.

    ``audio`` True adds a 440 Hz tone (AAC in mp4, Opus in mkv); a codec name picks another encoder.
    ``bits`` 10 writes a 10-bit colour clip (gbrp10le FFV1 / yuv420p10le H.264); sigma stays in 8-bit units.
    ``photons``: a colour camera's noise instead of ``sigma``'s Gaussian (8-bit colour only): Poisson and
    read noise on a linear RGGB mosaic, demosaicked, gamma-encoded (models/data/image_pairs.py), that
    many photons at white: signal-dependent and spatially correlated, as phones and webcams deliver.
    Seeded by ``rng``: the scene is drawn first (unless ``scene`` is given), then the noise.
    """
    path = Path(path)
    scene = scene or Scene.random(rng, width, height, frames, color)
    width, height, frames = scene.width, scene.height, scene.frames
    lossless = path.suffix.lower() == ".mkv"
    with av.open(str(path), "w") as container:
        video = container.add_stream("ffv1" if lossless else "libx264", rate=Fraction(fps))
        video.width, video.height = width, height
        video.pix_fmt = ("bgr0" if lossless else "yuv420p") if color else "gray"
        if bits == 10:
            video.pix_fmt = "gbrp10le" if lossless else "yuv420p10le"
        if not lossless:
            video.options = {"crf": str(crf), "preset": "veryfast"}
        tone = _add_tone(container, audio, lossless)
        for i, clean in enumerate(scene.clean_frames()):
            noisy = camera_frame(clean, photons, rng) if photons else _add_noise(clean, rng, sigma, color, bits)
            frame = av.VideoFrame.from_ndarray(noisy, format="rgb24" if bits == 8 else "rgb48le").reformat(format=video.pix_fmt)
            frame.pts = i
            container.mux(video.encode(frame))
            if tone:
                container.mux(tone.encode(_tone_frame(i, fps)))
        container.mux(video.encode(None))
        if tone:
            container.mux(tone.encode(None))
    return scene


def camera_frame(clean: np.ndarray, photons: float, rng: np.random.Generator, read: float = CAMERA_READ_NOISE) -> np.ndarray:
    """uint8 RGB: ``clean`` (8-bit units) through a colour camera's raw path (models/data/image_pairs.py)."""
    return np.clip(np.rint(camera_noise(clean / 255, photons, read, rng) * 255), 0, 255).astype(np.uint8)


def _add_noise(clean: np.ndarray, rng: np.random.Generator, sigma: float, color: bool, bits: int = 8) -> np.ndarray:
    """uint8 RGB, or for ``bits`` > 8 uint16 RGB holding values quantised to ``bits`` bits."""
    shape = clean.shape if color else clean.shape[:2] + (1,)
    noisy = clean + rng.normal(0.0, sigma, shape).astype(np.float32)
    if bits == 8:
        return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)
    top = 2**bits - 1
    levels = np.clip(np.rint(noisy * np.float32(top / 255)), 0, top)
    return np.rint(levels * np.float32(65535 / top)).astype(np.uint16)


def _add_tone(container: av.container.OutputContainer, audio: bool | str, lossless: bool) -> av.audio.stream.AudioStream | None:
    if not audio:
        return None
    codec = audio if isinstance(audio, str) else ("libopus" if lossless else "aac")
    stream = container.add_stream(codec, rate=AUDIO_RATE)
    stream.layout = "stereo"
    return stream


def _tone_frame(i: int, fps: int) -> av.AudioFrame:
    """The slice of a 440 Hz tone that plays during video frame ``i``."""
    start, stop = i * AUDIO_RATE // fps, (i + 1) * AUDIO_RATE // fps
    t = np.arange(start, stop) / AUDIO_RATE
    wave = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    frame = av.AudioFrame.from_ndarray(np.stack([wave, wave]), format="fltp", layout="stereo")
    frame.sample_rate = AUDIO_RATE
    frame.pts = start
    return frame
