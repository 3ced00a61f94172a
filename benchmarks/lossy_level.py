"""Lossy clips that read low: the low level's fusion against the medium level's networks, and the rule that
picks between them (models.video.noise.clip_level). Writes benchmarks/results/lossy_level.md.

    python benchmarks/lossy_level.py              # held-out clips: the rule on and off
    python benchmarks/lossy_level.py --training   # training clips: the grid the rule's thresholds come from

Held out: 12 frames of 320 x 180 made as models/eval_video.py makes its clips (validation photos: camera,
coffee, coins and gravel backgrounds, seed 2026), white Gaussian noise of sigma 0, 2, 5, 8 and 12 through x264
(yuv420p) at CRF 8, 18, 23 and 28; FFmpeg's ``testsrc2`` with ``noise=alls=5|10|20:allf=t`` through x264's
defaults; and models/eval_noise.py's lossy clips (a 640 x 360 photo pan with Gaussian or camera noise
through x264 / x265). Each classified as lossy and restored by the restorer of its level, with the rule
(served) and without it (``LOSSY_MEDIUM_FROM`` at infinity: the classifier before it); rows where both
agree are restored once.

Training: 12 frames of 320 x 192 over TRAINING photos (models.video.synthetic.split_images("train")), 10
seeded draws of background and disc, Gaussian noise of sigma 0, 3, 7, 12, 20 and 30 or a colour camera's
noise at 100 and 300 photons, through x264 at CRF 8, 12, 18, 23 and 28 and x265 at CRF 23. Each clip whose
reading is low (at least 1) is restored by the low and by the medium restorer; the table gives, for
thresholds around the chosen ones, the clips the rule would switch and what switching gains.

PSNR against the clean source before the codec (for camera noise: the same camera path without noise).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from clean_and_broken_inputs import patched  # noqa: E402
from light_noise import held_out_compressed_clips  # noqa: E402

from models import eval_noise  # noqa: E402
from models.data.video_pairs import compress  # noqa: E402
from models.eval_images import psnr  # noqa: E402
from models.io import RESULTS_DIR  # noqa: E402
from models.registry import classifier_for, restorer_for  # noqa: E402
from models.video import noise as video_noise  # noqa: E402
from models.video.synthetic import Scene, camera_frame, split_images  # noqa: E402

TITLE = "Lossy clips that read low: the low level's fusion or the medium level's networks"
TRAINING_SEED = 77
TRAINING_NOISES = (("gaussian", 0), ("gaussian", 3), ("gaussian", 7), ("gaussian", 12), ("gaussian", 20), ("gaussian", 30),
                   ("camera", 100), ("camera", 300))
TRAINING_CODECS = (("libx264", 8), ("libx264", 12), ("libx264", 18), ("libx264", 23), ("libx264", 28), ("libx265", 23))


class Restorers:
    """The video classifier and the served restorer of each level, loaded once."""

    def __init__(self):
        self.classifier = classifier_for("video").build("cpu")
        self.by_level = {level: restorer_for("video", level).build("cpu") for level in ("low", "medium", "high")}

    def gain(self, level: str, estimate, clean: np.ndarray, frames: list[np.ndarray]) -> float:
        """Restora - input, dB, for the restorer of ``level`` told ``estimate`` and that the clip is lossy."""
        out = np.stack([np.clip(np.rint(f), 0, 255) for f in self.by_level[level].predict(iter(frames), estimate, lossy=True)])
        return psnr(clean, out) - psnr(clean, np.stack(frames))


def held_out() -> list[str]:
    """Table rows: each held-out lossy clip classified and restored with the rule and without it."""
    restorers = Restorers()
    lines = ["| clip | sigma read | without the rule: level / Restora - input, dB | served: level / Restora - input, dB | served - without |",
             "|---|---:|---|---|---:|"]

    def row(name: str, clean: np.ndarray, frames: list[np.ndarray]) -> None:
        with patched(video_noise, "LOSSY_MEDIUM_FROM", float("inf")):
            before = restorers.classifier.predict(frames[:video_noise.NOISE_FRAMES], lossy=True)
        served = restorers.classifier.predict(frames[:video_noise.NOISE_FRAMES], lossy=True)
        gain_before = restorers.gain(before.level, before, clean, frames)
        gain_served = gain_before if served.level == before.level else restorers.gain(served.level, served, clean, frames)
        lines.append(f"| {name} | {served.sigma:.2f} | {before.level} / {gain_before:+.2f} | {served.level} / {gain_served:+.2f} | "
                     f"{gain_served - gain_before:+.2f} |")
        print(lines[-1], flush=True)

    for name, clean, frames in held_out_compressed_clips((0, 2, 5, 8, 12)):
        row(name, clean, frames)
    rng = np.random.default_rng(eval_noise.SEED)
    eval_noise.image_cases(rng)  # the same random stream as eval_noise, so the clips are its clips
    for name, clean, noisy, coded in eval_noise.video_cases(rng):
        if coded is not None:
            row(f"eval_noise: {name}", np.stack(clean).astype(np.float32), [f.astype(np.float32) for f in noisy])
    return lines


def training_clip(photos: list[np.ndarray], draw: int, noise: tuple[str, int], codec: tuple[str, int]) -> tuple[np.ndarray, list[np.ndarray]]:
    """(clean frames, decoded noisy frames) of one seeded training clip."""
    (family, strength), (name, crf) = noise, codec
    rng = np.random.default_rng([TRAINING_SEED, draw, strength, crf, len(name)])
    background, disc = rng.choice(len(photos), 2, replace=False)
    clean = [f.astype(np.uint8) for f in Scene.over(photos[background], photos[disc], rng, 320, 192, 12).clean_frames()]
    if family == "gaussian":
        noisy = [np.clip(np.rint(c + rng.normal(0, strength, c.shape)), 0, 255).astype(np.uint8) for c in clean]
    else:
        noisy = [camera_frame(c, strength, rng) for c in clean]
        clean = [camera_frame(c, 1e12, rng, read=0.0) for c in clean]  # the same camera path without noise
    return np.stack(clean).astype(np.float32), [f.astype(np.float32) for f in compress(noisy, crf, name)]


def training() -> list[str]:
    """Table rows: for thresholds around the chosen ones, what switching the training clips would gain."""
    restorers = Restorers()
    photos = split_images("train", seed=5)
    clips = []
    with patched(video_noise, "LOSSY_MEDIUM_FROM", float("inf")):
        for draw in range(10):
            for noise in TRAINING_NOISES:
                for codec in TRAINING_CODECS:
                    clean, frames = training_clip(photos, draw, noise, codec)
                    readings = video_noise.clip_readings(frames[:video_noise.NOISE_FRAMES], lossy=True)
                    estimate = restorers.classifier.predict(frames[:video_noise.NOISE_FRAMES], lossy=True)
                    if estimate.level != "low" or estimate.sigma < 1:
                        continue
                    taken = [(r.spatial, r.temporal, r.fine) for r in readings if r.temporal is not None and r.fine is not None]
                    spatial, temporal, fine = np.median(taken, axis=0) if taken else (np.nan, np.nan, np.nan)
                    low, medium = (restorers.gain(level, estimate, clean, frames) for level in ("low", "medium"))
                    clips.append({"sigma": estimate.sigma, "spatial": spatial, "temporal": temporal, "fine": fine, "low": low, "medium": medium})
                    print(f"draw {draw} {noise} {codec}: read {estimate.sigma:.2f} spatial {spatial:.2f} temporal {temporal:.2f} "
                          f"fine {fine:.2f}, low {low:+.2f}, medium {medium:+.2f} dB", flush=True)
    lines = [f"{len(clips)} training clips read low (1 or more). Switched to medium where the reading is at least `from`, spatial <= "
             "`smoothed` x temporal and temporal <= `agree` x fine; gains over the low level's fusion, and the switched clips' result "
             "against their input.", "",
             "| from | smoothed | agree | switched | mean gain, dB | worst gain, dB | gains | worst switched - input, dB |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    chosen = (video_noise.LOSSY_MEDIUM_FROM, video_noise.CODEC_SMOOTHED_RATIO, video_noise.READINGS_AGREE)
    for start in (2.5, 3.5, 4.5):
        for smoothed in (0.5, 0.7, 0.9, np.inf):
            for agree in (1.3, np.inf):
                switched = [c for c in clips if c["sigma"] >= start and c["spatial"] <= smoothed * c["temporal"] and c["temporal"] <= agree * c["fine"]]
                if not switched:
                    continue
                gains = np.array([c["medium"] - c["low"] for c in switched])
                mark = " (chosen)" if (start, smoothed, agree) == chosen else ""
                lines.append(f"| {start:g}{mark} | {smoothed:g} | {agree:g} | {len(switched)} | {gains.mean():+.2f} | {gains.min():+.2f} | "
                             f"{(gains > 0).sum()} | {min(c['medium'] for c in switched):+.2f} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=TITLE)
    parser.add_argument("--training", action="store_true", help="the training-clip grid the thresholds come from")
    args = parser.parse_args()
    name = "lossy_level_training" if args.training else "lossy_level"
    lines = [f"# {TITLE}", "", f"Command: `python benchmarks/lossy_level.py{' --training' if args.training else ''}` "
             "(see the script's docstring for the clips).", ""]
    lines += training() if args.training else held_out()
    path = RESULTS_DIR / f"{name}.md"
    path.write_text("\n".join(lines) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
