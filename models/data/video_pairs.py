"""Synthetic clips turned into (network inputs, clean frame) pairs for the video refiner, cached on disk.

Each clip: a smooth camera path over a random crop of a TRAINING photo (skimage samples and colour
dead leaves, :func:`models.video.synthetic.split_images`) or, in a fraction of the clips
(``dead_leaves``, default ``FRESH_DEAD_LEAVES``), over colour dead leaves drawn for that clip (flat
colours and hard edges, as in graphics and animation: a refiner trained mostly on photos put noise
back into such content), with a disc of a photo crossing it, noise of a sigma drawn across the level
(a little past its edges), and, for half the clips, a round trip through H.264 at a mild CRF, as
users' clips arrive. The noise is then measured the way the classifier does and the clip goes
through :class:`models.video.restorer._Fusion`, the code the restorer runs, so the network trains on
exactly what it will see. Kept: a random crop of every other frame, inputs as
:func:`models.video.learned.net_inputs`, target the clean crop in 0..1.
"""
from __future__ import annotations

import io
import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from models.interface import NoiseLevel
from models.video.learned import net_inputs
from models.video.noise import NOISE_FRAMES, clip_sigma
from models.video.restorer import FusionSettings, _Fusion, lookahead
from models.video.synthetic import Scene, dead_leaves_rgb, split_images

CACHE_DIR = Path(os.environ.get("RESTORA_CACHE", "/tmp/restora-cache")) / "video-pairs"
# low starts at 0: clean clips must come back as they came, so the network also learns to leave them alone
TRAIN_SIGMA: dict[NoiseLevel, tuple[float, float]] = {"low": (0.0, 9.0), "medium": (7.0, 22.0), "high": (18.0, 40.0)}
CLIP_SIZE = 256  # rendered clip side: motion and magnification like a 640x360 view of a photo
CROP = 128  # stored crop side
CLIP_FRAMES = 12
CRF_RANGE = (12, 23)
FRESH_DEAD_LEAVES = 0.5  # default fraction of clips over dead leaves drawn for the clip


def compress(frames: list[np.ndarray], crf: int, codec: str = "libx264") -> list[np.ndarray]:
    """An H.264 (or ``codec``) yuv420p encode and decode in memory; frames uint8 RGB."""
    buffer = io.BytesIO()
    quiet = {"x265-params": "log-level=error"} if codec == "libx265" else {}
    with av.open(buffer, "w", format="mp4") as container:
        stream = container.add_stream(codec, rate=Fraction(25), options={"crf": str(crf), "preset": "veryfast"} | quiet)
        stream.width, stream.height, stream.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        for i, frame in enumerate(frames):
            picture = av.VideoFrame.from_ndarray(frame, format="rgb24")
            picture.pts = i
            container.mux(stream.encode(picture))
        container.mux(stream.encode(None))
    buffer.seek(0)
    with av.open(buffer, "r") as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def make_clip_pairs(photos: list[np.ndarray], level: NoiseLevel, rng: np.random.Generator,
                    dead_leaves: float) -> tuple[np.ndarray, np.ndarray]:
    """(inputs (K, 10, CROP, CROP), targets (K, 3, CROP, CROP)) float16 from one synthetic clip;
    with probability ``dead_leaves`` its background is dead leaves drawn for it."""
    background, sprite = (photos[i] for i in rng.choice(len(photos), 2, replace=False))
    if rng.random() < dead_leaves:
        background = dead_leaves_rgb(*background.shape[:2], rng)
    h, w = background.shape[:2]
    side = int(rng.integers(min(200, h, w), min(420, h, w) + 1))
    y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
    scene = Scene.over(background[y:y + side, x:x + side], sprite, rng, CLIP_SIZE, CLIP_SIZE, CLIP_FRAMES)
    clean = [frame.astype(np.uint8) for frame in scene.clean_frames()]
    sigma = rng.uniform(*TRAIN_SIGMA[level])
    noisy = [np.clip(np.rint(c + rng.normal(0, sigma, c.shape)), 0, 255).astype(np.uint8) for c in clean]
    lossy = rng.random() < 0.5
    if lossy:
        noisy = compress(noisy, int(rng.integers(*CRF_RANGE)))
    frames = [f.astype(np.float32) for f in noisy]
    measured = clip_sigma(frames[:NOISE_FRAMES], lossy)
    fusion = _Fusion(FusionSettings(), measured, level, lossy=lossy)
    inputs, targets = [], []
    for i, (frame, following) in enumerate(lookahead(map(fusion.prepare, frames), FusionSettings().ahead)):
        fused, weights = fusion.fuse(frame, following)
        if i % 2:
            continue
        cy, cx = (int(v) for v in rng.integers(0, CLIP_SIZE - CROP + 1, 2))
        window = (slice(None), slice(cy, cy + CROP), slice(cx, cx + CROP))
        inputs.append(net_inputs(fusion, fused, weights, frame.rgb)[window])
        targets.append((clean[i].transpose(2, 0, 1) / 255.0)[window])
    return np.stack(inputs).astype(np.float16), np.stack(targets).astype(np.float16)


def build(level: NoiseLevel, clips: int, seed: int, dead_leaves: float = FRESH_DEAD_LEAVES) -> tuple[np.ndarray, np.ndarray]:
    """``clips`` clips' pairs, made once per (level, its sigma and CRF ranges, dead-leaves fraction, clips, seed)
    and cached as .npz."""
    low, high = TRAIN_SIGMA[level]
    path = CACHE_DIR / (f"{level}-sigma{low:g}-{high:g}-crf{CRF_RANGE[0]}-{CRF_RANGE[1]}-leaves{dead_leaves:g}"
                        f"-{clips}-{seed}.npz")  # new data, new file
    if path.exists():
        with np.load(path) as cached:
            return cached["inputs"], cached["targets"]
    photos = split_images("train", seed=seed)
    pairs = [make_clip_pairs(photos, level, np.random.default_rng([seed, i]), dead_leaves) for i in range(clips)]
    inputs, targets = np.concatenate([p[0] for p in pairs]), np.concatenate([p[1] for p in pairs])
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, inputs=inputs, targets=targets)
    return inputs, targets
