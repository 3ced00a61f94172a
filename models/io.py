"""Read stacks and images into float32 in their input units, write one restored frame.

Only numpy, tifffile and Pillow: the API imports this to check uploads without pulling in torch or
OpenCV. Values are never rescaled on read, so results stay in the user's units (e.g. 12-bit DN).
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Literal

import numpy as np
import tifffile
from PIL import Image

from models.interface import Kind

Layout = Literal["auto", "thw", "hwt"]

IMAGE_SUFFIXES = {".png", ".tif", ".tiff", ".jpg", ".jpeg"}
VIDEO_SUFFIXES = {".mp4", ".mkv", ".mov", ".avi", ".webm"}
WRITE_SUFFIXES = {".npy", ".tif", ".tiff", ".png"}


def detect_kind(path: Path) -> Kind:
    """What a file is, from its extension (and, for .npy, the array header, never the data)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".npy":
        ndim = len(_npy_header(path)[0])
        if ndim == 3:
            return "stack"
        if ndim == 2:
            return "image"
        raise ValueError(f"{path.name}: a .npy input must be 2-D (one frame) or 3-D (a stack), not {ndim}-D")
    if suffix in IMAGE_SUFFIXES:
        return "image"
    if suffix in VIDEO_SUFFIXES:
        return "video"
    known = sorted({".npy"} | IMAGE_SUFFIXES | VIDEO_SUFFIXES)
    raise ValueError(f"{path.name}: unsupported file type {suffix or '(none)'}; expected one of {', '.join(known)}")


def _npy_header(path: Path) -> tuple[tuple[int, ...], np.dtype]:
    with open(path, "rb") as fh:
        try:
            version = np.lib.format.read_magic(fh)
            read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, _, dtype = read_header(fh)
        except ValueError as exc:
            raise ValueError(f"{path.name}: not a valid .npy file ({exc})") from None
    return shape, dtype


def _load_npy(path: Path) -> np.ndarray:
    try:
        array = np.load(path, allow_pickle=False)
    except ValueError as exc:  # object arrays need pickle
        raise ValueError(f"{path.name}: refused, object arrays and pickles are not accepted ({exc})") from None
    if array.dtype.kind not in "iuf":
        raise ValueError(f"{path.name}: dtype {array.dtype} is not a real number type (integer or float)")
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise ValueError(f"{path.name}: contains NaN or infinite values")
    return array


def detect_layout(array: np.ndarray) -> Literal["thw", "hwt"]:
    """Which of axis 0 / axis 2 holds frames.

    By shape when one of them stands out from two equal others; else by content: two slices along
    the frames axis show the same scene (they differ by noise), two along a spatial axis are
    unrelated rows.
    """
    n0, n1, n2 = array.shape
    if n1 == n2 != n0:
        return "thw"
    if n0 == n1 != n2:
        return "hwt"
    return "thw" if _slice_difference(array, 0) <= _slice_difference(array, 2) else "hwt"


def _slice_difference(array: np.ndarray, axis: int) -> float:
    n = array.shape[axis]
    first = np.take(array, 0, axis=axis).astype(np.float64)
    middle = np.take(array, n // 2, axis=axis).astype(np.float64)
    spread = first.var() + middle.var()
    return float(np.mean((first - middle) ** 2) / spread) if spread > 0 else 0.0


def read_stack(path: Path, layout: Layout = "auto") -> tuple[np.ndarray, dict[str, Any]]:
    """A 3-D .npy as float32 (T, H, W) in input units, and what was read."""
    path = Path(path)
    array = _load_npy(path)
    if array.ndim != 3:
        raise ValueError(f"{path.name}: a stack must be 3-D, got shape {array.shape}")
    if layout not in ("auto", "thw", "hwt"):
        raise ValueError(f"layout must be auto, thw or hwt, not {layout!r}")
    used = detect_layout(array) if layout == "auto" else layout
    frames = array if used == "thw" else np.moveaxis(array, 2, 0)
    info = {"filename": path.name, "shape": list(array.shape), "dtype": str(array.dtype), "layout": used}
    return np.ascontiguousarray(frames, dtype=np.float32), info


def read_image(path: Path) -> tuple[np.ndarray, dict[str, Any]]:
    """One frame as float32 (H, W) gray or (H, W, 3) colour, in input units, alpha dropped."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".npy":
        raw = _load_npy(path)
        if raw.ndim != 2:
            raise ValueError(f"{path.name}: a single-frame .npy must be 2-D, got shape {raw.shape}")
    elif suffix in (".tif", ".tiff"):
        raw = _read_tiff(path)
    elif suffix in IMAGE_SUFFIXES:
        raw = _read_pillow(path)
    else:
        raise ValueError(f"{path.name}: unsupported image type {suffix}")
    info = {"filename": path.name, "shape": list(raw.shape), "dtype": str(raw.dtype), "layout": None}
    return np.ascontiguousarray(_gray_or_rgb(raw, path), dtype=np.float32), info


def _read_tiff(path: Path) -> np.ndarray:
    try:
        raw = tifffile.imread(path, key=0)
    except Exception as exc:  # tifffile raises many types for broken files
        raise ValueError(f"{path.name}: unreadable TIFF ({exc})") from None
    if raw.ndim == 3 and raw.shape[0] in (3, 4) and raw.shape[2] not in (3, 4):  # planar RGB(A)
        raw = np.moveaxis(raw, 0, 2)
    if raw.dtype.kind not in "iufb":
        raise ValueError(f"{path.name}: TIFF sample type {raw.dtype} is not supported")
    return raw


def _read_pillow(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as img:
            if img.mode in ("P", "PA", "CMYK", "YCbCr", "LAB", "HSV"):
                img = img.convert("RGBA" if "A" in img.mode or "transparency" in img.info else "RGB")
            elif img.mode == "1":
                img = img.convert("L")
            return np.asarray(img)
    except (OSError, SyntaxError) as exc:
        raise ValueError(f"{path.name}: unreadable image ({exc})") from None


def _gray_or_rgb(raw: np.ndarray, path: Path) -> np.ndarray:
    if raw.dtype == bool:
        raw = raw.astype(np.uint8) * 255
    if raw.ndim == 2:
        return raw
    if raw.ndim == 3 and raw.shape[2] in (1, 2):  # gray, gray + alpha
        return raw[:, :, 0]
    if raw.ndim == 3 and raw.shape[2] in (3, 4):  # RGB, RGBA
        return raw[:, :, :3]
    raise ValueError(f"{path.name}: expected a gray or colour image, got shape {raw.shape}")


def write_frame(path: Path, frame: np.ndarray, info: dict[str, Any]) -> None:
    """Write one restored frame, format by extension, atomically (temp file, then rename)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in WRITE_SUFFIXES:
        raise ValueError(f"{path.name}: cannot write {suffix or '(none)'}; use .npy, .tif or .png")
    frame = np.asarray(frame, dtype=np.float32)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    os.close(fd)
    try:
        with open(tmp, "wb") as fh:
            if suffix == ".npy":
                np.save(fh, frame)
            elif suffix in (".tif", ".tiff"):
                tifffile.imwrite(fh, np.clip(np.rint(frame), 0, 65535).astype(np.uint16),
                                 photometric="rgb" if frame.ndim == 3 else "minisblack")
            else:
                Image.fromarray(_preview8(frame, info)).save(fh, format="PNG")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _preview8(frame: np.ndarray, info: dict[str, Any]) -> np.ndarray:
    """8-bit inputs keep their values; anything else is stretched from the 0.1 to 99.9 percentile."""
    if info.get("dtype") == "uint8":
        return np.clip(np.rint(frame), 0, 255).astype(np.uint8)
    low, high = np.percentile(frame, [0.1, 99.9])
    scale = 255.0 / (high - low) if high > low else 0.0
    return np.clip(np.rint((frame - low) * scale), 0, 255).astype(np.uint8)


def write_report(out_dir: Path, name: str, report: dict[str, Any], markdown: str, with_markdown: bool = True) -> None:
    """An evaluation's results: ``name.json`` always, ``name.md`` (the printed table) unless told not to."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{name}.json").write_text(json.dumps(report, indent=1, default=float) + "\n")
    if with_markdown:
        (out_dir / f"{name}.md").write_text(markdown)
