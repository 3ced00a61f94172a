"""Printed test patterns like the challenge's targets: text of several sizes, bar charts, Siemens stars.

Each is a gray image in 0..1 drawn at 4x and area-downsampled (anti-aliased like a printed target
seen by a camera), with a random paper and ink level so contrast varies. Fonts are OpenCV's
Hershey fonts (built into OpenCV: no font files needed). Everything is drawn from ``rng``.
"""
from __future__ import annotations

import math
import string

import cv2
import numpy as np

SUPERSAMPLE = 4
_FONTS = (cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX, cv2.FONT_HERSHEY_COMPLEX, cv2.FONT_HERSHEY_TRIPLEX,
          cv2.FONT_HERSHEY_PLAIN)
_CHARACTERS = string.ascii_letters + string.digits + "  .,-"


def _paper_and_ink(rng: np.random.Generator) -> tuple[float, float]:
    paper = rng.uniform(0.6, 1.0)
    return paper, paper * rng.uniform(0.02, 0.5)


def _finish(canvas: np.ndarray, size: int) -> np.ndarray:
    return np.clip(cv2.resize(canvas, (size, size), interpolation=cv2.INTER_AREA), 0.0, 1.0).astype(np.float32)


def text_chart(size: int, rng: np.random.Generator) -> np.ndarray:
    """Lines of random text, line heights from ~6 to ~40 px."""
    paper, ink = _paper_and_ink(rng)
    big = size * SUPERSAMPLE
    mask = np.zeros((big, big), np.uint8)  # OpenCV draws text on 8-bit images only
    y = 0.0
    while True:
        height_px = rng.uniform(6, 40)  # in output pixels
        scale = height_px * SUPERSAMPLE / 22.0  # Hershey fonts are ~22 units tall at scale 1
        y += height_px * SUPERSAMPLE * 1.5
        if y > big:
            break
        line = "".join(rng.choice(list(_CHARACTERS), size=int(rng.integers(8, 60))))
        thickness = max(1, int(round(scale * rng.uniform(1.0, 2.5))))
        cv2.putText(mask, line, (int(rng.uniform(-big / 4, big / 8)), int(y)), int(rng.choice(_FONTS)), scale, 255,
                    thickness, cv2.LINE_AA)
    return _finish(paper + (ink - paper) * mask.astype(np.float32) / 255.0, size)


def bar_chart(size: int, rng: np.random.Generator) -> np.ndarray:
    """USAF-1951-like groups of three bars (horizontal and vertical) whose width shrinks group by group."""
    paper, ink = _paper_and_ink(rng)
    big = size * SUPERSAMPLE
    canvas = np.full((big, big), paper, np.float32)
    width = rng.uniform(4.0, 10.0) * SUPERSAMPLE  # bar width of the first group, supersampled px
    x = y = int(rng.uniform(0.02, 0.1) * big)
    while width >= 0.6 * SUPERSAMPLE:
        length = int(5 * width)
        if x + 2 * length + 4 * width > big:
            x = int(rng.uniform(0.02, 0.1) * big)
            y += int(2 * length)
        if y + length > big:
            break
        for bar in range(3):  # vertical bars, then horizontal bars beside them
            left = int(x + 2 * bar * width)
            cv2.rectangle(canvas, (left, y), (int(left + width), y + length), ink, -1)
            top = int(y + 2 * bar * width)
            cv2.rectangle(canvas, (int(x + 6 * width), top), (int(x + 6 * width) + length, int(top + width)), ink, -1)
        x += int(6 * width + length + 3 * width)
        width /= 2 ** (1 / rng.uniform(2, 6))
    return _finish(canvas, size)


def siemens_star(size: int, rng: np.random.Generator) -> np.ndarray:
    """A Siemens star (16 to 72 sectors) at a random place, on a plain background."""
    paper, ink = _paper_and_ink(rng)
    big = size * SUPERSAMPLE
    ys, xs = np.mgrid[0:big, 0:big].astype(np.float32)
    cx, cy = rng.uniform(0.3, 0.7, 2) * big
    radius = rng.uniform(0.3, 0.6) * big
    sectors = int(rng.integers(8, 37)) * 2
    angle = np.arctan2(ys - cy, xs - cx) + rng.uniform(0, math.pi)
    inside = np.hypot(xs - cx, ys - cy) <= radius
    dark = (np.floor(angle * sectors / (2 * math.pi)) % 2 == 0) & inside
    canvas = np.where(dark, ink, paper).astype(np.float32)
    return _finish(canvas, size)


PATTERNS = (text_chart, bar_chart, siemens_star)


def printed_targets(size: int, rng: np.random.Generator, count: int) -> list[np.ndarray]:
    """``count`` patterns cycling through text, bars and stars."""
    return [PATTERNS[i % len(PATTERNS)](size, rng) for i in range(count)]
