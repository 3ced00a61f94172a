"""Read stacks and images into float32 in their input units, write one restored frame.

Values are never rescaled on read, so results stay in the user's units (e.g. 12-bit DN), and a
frame is written back with the input's bit depth and channels (see :func:`write_frame`). Which
suffixes, shapes and result formats exist is :mod:`models.formats`' business.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Literal

import cv2
import imagecodecs
import numpy as np
import pillow_heif
import tifffile
from PIL import Image

from models import formats, metadata
from models.formats import Kind, KindChoice

Layout = Literal["auto", "thw", "hwt"]
RESULTS_DIR = Path(__file__).resolve().parent.parent / "benchmarks" / "results"  # where evaluations write their reports
JPEG_QUALITY = 95
# Colour JPEG results keep full-resolution chroma: OpenCV's default 4:2:0 took a restored colour photo, on
# its own, 0.6-1.6 dB below its JPEG input at quality 90-95 (the chroma averaged again, a second generation).
JPEG_CHROMA_444 = [cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444]
WEBP_QUALITY = 95
HEIF_QUALITY = AVIF_QUALITY = 90  # their encoders' scales: 90 keeps a restored photo's detail at a fraction of PNG's size
# Encoder speed: x265's "ultrafast" wrote a 4-megapixel photo in 0.6 s instead of 3.8 s, as small and as
# close (48.2 dB); AVIF speed 8 in 0.36 s instead of 1.0 s, 0.4 dB further at 46 dB, 15 % larger.
HEIF_ENCODER = {"preset": "ultrafast"}
AVIF_SPEED = 8
HEIF_OR_AVIF = (*formats.HEIF_SUFFIXES, ".avif")
# A gray + alpha picture is restored as RGBA with equal channels and written back as gray + alpha
# where the format has it (WebP and the rest get the RGBA, JPEG the gray).
GRAY_ALPHA_CHANNELS = 2
GRAY_ALPHA_FORMATS = ("png", "tiff")  # not npy: an (H, W, 2) array is not an image Restora reads
WEBP_LOSSLESS = 101  # OpenCV writes lossless WebP for a quality above 100


def detect_kind(path: Path, requested: KindChoice = "auto") -> Kind:
    """What a file is: by its extension, and for .npy by the array header (never the data) and ``requested``."""
    path = Path(path)
    if formats.suffix_of(path) in formats.STACK_SUFFIXES:
        try:
            return formats.npy_kind(_npy_header(path)[0], requested)
        except ValueError as exc:
            raise ValueError(f"{path.name}: {exc}") from None
    kind = formats.kind_of_suffix(path)
    if kind is None:
        raise ValueError(f"{path.name}: {formats.unsupported_type(path)}")
    if requested not in ("auto", kind):
        raise ValueError(f"{path.name}: a {formats.suffix_of(path)} file is a {kind}, not a {requested}")
    return kind


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

    By size when only one of them leaves frames of at least :data:`models.formats.MIN_SIDE` px (the
    other's would be a few pixels wide); by shape when one of them stands out from two equal others;
    else by content: two slices along the frames axis show the same scene (they differ by noise), two
    along a spatial axis are unrelated rows.
    """
    fitting = formats.stack_layouts(array.shape)
    if len(fitting) == 1:
        return fitting[0]
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
    if used not in formats.stack_layouts(array.shape):
        raise ValueError(f"{path.name}: frames of shape {list(array.shape)} taken {'first' if used == 'thw' else 'last'} are smaller than "
                         f"{formats.MIN_SIDE}x{formats.MIN_SIDE} px")
    frames = array if used == "thw" else np.moveaxis(array, 2, 0)
    info = {"filename": path.name, "shape": list(array.shape), "dtype": str(array.dtype), "layout": used}
    return np.ascontiguousarray(frames, dtype=np.float32), info


def read_image(path: Path, tags: metadata.Tags | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """One frame as float32 (H, W) gray, (H, W, 3) RGB or (H, W, 4) RGBA, in input units, and what
    was read: dtype, bits per sample and channels (the job JSON shows them). ``tags``: the file's
    :func:`picture_tags`, when the caller has them already (it writes them into the result)."""
    path = Path(path)
    suffix = formats.suffix_of(path)
    if suffix in formats.STACK_SUFFIXES:
        raw = _load_npy(path)
        if raw.ndim == 3 and raw.shape[2] == 1:
            raw = raw[..., 0]
        if not (raw.ndim == 2 or (raw.ndim == 3 and raw.shape[2] in formats.COLOUR_CHANNELS)):
            raise ValueError(f"{path.name}: an image .npy is (H,W), (H,W,3) or (H,W,4), got shape {raw.shape}")
    elif suffix in formats.IMAGE_SUFFIXES:
        read = _read_tiff if suffix in formats.TIFF_SUFFIXES else _read_heif_or_avif if suffix in HEIF_OR_AVIF else _read_encoded
        raw = read(path)
        try:
            problem = metadata.picture_problem(path, path.name)
        except Exception as exc:  # its header readers raise many types for broken files
            raise ValueError(f"{path.name}: unreadable {suffix[1:]} image ({exc})") from None
        if problem:
            raise ValueError(problem)
    else:
        raise ValueError(f"{path.name}: unsupported image type {suffix}")
    gray_alpha = (raw.ndim == 3 and raw.shape[2] == 2) or (suffix == ".png" and formats.png_is_gray_alpha(_head(path)))
    raw = _gray_or_colour(raw, path)
    tags = tags or picture_tags(path)
    raw = metadata.upright(raw, tags.orientation)
    bits = raw.dtype.itemsize * 8
    if suffix == ".png":  # a 1-, 2- or 4-bit gray PNG (line art, a scanned page) is read, and written back, as 8 bits
        bits = min(bits, formats.png_gray_bits(_head(path)) or bits)
    info = {"filename": path.name, "shape": list(raw.shape), "dtype": str(raw.dtype), "layout": None,
            "bits": bits, "channels": GRAY_ALPHA_CHANNELS if gray_alpha else 1 if raw.ndim == 2 else raw.shape[2]}
    if tags.orientation != 1:
        info["orientation"] = tags.orientation
    if tags.profile is not None:
        info["colour_profile"] = metadata.describe(tags.profile)
    if tags.exif is not None:
        info["exif"] = True
    if suffix == ".webp":
        info["lossless"] = formats.webp_is_lossless(path.read_bytes())
    return np.ascontiguousarray(raw, dtype=np.float32), info


def _head(path: Path, size: int = 32) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(size)


def picture_tags(path: Path) -> metadata.Tags:
    """An image file's orientation, ICC profile and EXIF record (a ``.npy`` has none), for
    :func:`write_frame` to give its result."""
    return metadata.Tags() if formats.suffix_of(path) in formats.STACK_SUFFIXES else metadata.read(Path(path))


def _read_tiff(path: Path) -> np.ndarray:
    try:
        with tifffile.TiffFile(path) as tif:
            page = tif.pages[0]
            raw = metadata.tiff_as_seen(page.asarray(), page)
    except Exception as exc:  # tifffile raises many types for broken files
        raise ValueError(f"{path.name}: unreadable TIFF ({exc})") from None
    if formats.is_planar(raw.shape):
        raw = np.moveaxis(raw, 0, 2)
    if raw.dtype.kind not in "iufb":
        raise ValueError(f"{path.name}: TIFF sample type {raw.dtype} is not supported")
    return raw


def _read_heif_or_avif(path: Path) -> np.ndarray:
    """HEIC with pillow-heif, AVIF with imagecodecs (Pillow decodes it to 8 bits): 10 and 12 bits as
    16-bit values, shifted up as pillow-heif gives them (HEIC transforms applied; an AVIF's EXIF
    orientation, as Pillow reports it, is applied by the caller)."""
    try:
        if formats.suffix_of(path) in formats.HEIF_SUFFIXES:
            return np.asarray(pillow_heif.open_heif(path, convert_hdr_to_8bit=False))
        data = path.read_bytes()
        pixels = imagecodecs.avif_decode(data, index=0)
        if pixels.dtype == np.uint16:
            pixels = pixels << np.uint16(16 - (formats.avif_bit_depth(data) or 16))
        return pixels
    except Exception as exc:  # the decoders raise many types for broken files
        raise ValueError(f"{path.name}: unreadable {formats.suffix_of(path)[1:]} image ({exc})") from None


def _read_encoded(path: Path) -> np.ndarray:
    """PNG, JPEG, WebP through OpenCV, which keeps 16 bits per channel (Pillow cuts 16-bit colour to 8)."""
    data = np.fromfile(path, np.uint8)
    raw = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if raw is None:
        raise ValueError(f"{path.name}: unreadable {formats.suffix_of(path)[1:]} image")
    if raw.ndim == 3 and raw.shape[2] >= 3:
        raw = cv2.cvtColor(raw, cv2.COLOR_BGR2RGB if raw.shape[2] == 3 else cv2.COLOR_BGRA2RGBA)
    return raw


def _gray_or_colour(raw: np.ndarray, path: Path) -> np.ndarray:
    """``raw`` (channels last) as the frame :func:`models.formats.picture_shape` says it is restored as."""
    if raw.dtype == bool:
        raw = raw.astype(np.uint8) * 255
    try:
        formats.picture_shape(raw.shape)
    except ValueError as exc:
        raise ValueError(f"{path.name}: {exc}") from None
    if raw.ndim == 3 and raw.shape[2] == 1:
        raw = raw[..., 0]
    elif raw.ndim == 3 and raw.shape[2] == 2:  # gray + alpha: RGBA with equal channels
        raw = raw[..., [0, 0, 0, 1]]
    return raw


def write_frame(path: Path, frame: np.ndarray, info: dict[str, Any], kind: Kind = "image", tags: metadata.Tags | None = None) -> None:
    """Write one restored frame, format by extension, atomically (temp file, then rename), with the
    input's ICC colour profile (every format but ``.npy``) and EXIF record (also not in ``.tif``)
    from ``tags`` (see :func:`picture_tags`) embedded when it had them.

    ``.npy`` is float32 in input units. ``.tif`` keeps 8 or 16 bits (other integers become 16 bits,
    floats a float32 TIFF); an image's ``.png`` keeps 8 or 16 bits; ``.jpg`` and ``.webp`` hold 8 bits (16-bit values are
    scaled by 1/257); ``.webp`` is lossless when the input was (``info["lossless"]``), else quality 95; ``.heic`` keeps
    16-bit input at 10 bits, ``.avif`` holds 8 (both quality 90). A stack's ``.png``, and any float frame in an 8-bit format,
    is a preview stretched from the 0.1 to the 99.9 percentile.
    """
    path = Path(path)
    fmt = formats.format_of(path)
    if fmt not in formats.RESULT_FORMATS[kind]:
        allowed = ", ".join(f".{f}" for f in formats.RESULT_FORMATS[kind])
        raise ValueError(f"{path.name}: cannot write {kind} results as {formats.suffix_of(path) or '(none)'}; use {allowed}")
    frame = np.asarray(frame, dtype=np.float32)
    if info.get("channels") == GRAY_ALPHA_CHANNELS and frame.ndim == 3 and frame.shape[2] == 4 and fmt in GRAY_ALPHA_FORMATS:
        frame = frame[..., [0, 3]]  # restored as RGBA with equal channels, written back as it came
    dtype = np.dtype(info.get("dtype", "float32"))
    tags = tags or metadata.Tags()
    colour = (frame.ndim == 3 and frame.shape[2] >= 3) or fmt == "webp"  # WebP is always colour
    profile = tags.profile if tags.profile is not None and metadata.profile_fits(tags.profile, colour) else None
    exif = None if tags.exif is None else metadata.exif_for(tags.exif, frame.shape)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    os.close(fd)
    try:
        with open(tmp, "wb") as fh:
            if fmt == "npy":
                np.save(fh, frame)
            elif fmt == "tiff":
                if dtype in (np.uint8, np.uint16):
                    stored = _as_integers(frame, dtype)
                else:  # other integers as 16 bits, floats as float32
                    stored = _as_integers(frame, np.dtype(np.uint16)) if dtype.kind in "iu" else frame
                tifffile.imwrite(fh, stored, photometric="rgb" if colour else "minisblack", iccprofile=profile,
                                 extrasamples=("unassalpha",) if frame.ndim == 3 and frame.shape[2] in (2, 4) else None)
            elif fmt in ("heic", "avif"):
                _write_heif_or_avif(fh, frame, dtype, fmt, kind, profile, exif)
            else:
                encoded = _encode(frame, dtype, fmt, kind, bool(info.get("lossless")))
                fh.write(encoded if profile is None and exif is None else metadata.embed(encoded, fmt, frame.shape, profile, exif))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _write_heif_or_avif(fh, frame: np.ndarray, dtype: np.dtype, fmt: str, kind: Kind, profile: bytes | None, exif: bytes | None) -> None:
    """HEIC keeps 16-bit input deep (10 bits); AVIF (Pillow's encoder) holds 8 bits. Both carry the profile and EXIF record."""
    pixels = _pixels(frame, dtype, kind, keep_16_bits=fmt == "heic")
    if fmt == "heic":
        mode = {1: "L", 3: "RGB", 4: "RGBA"}[1 if pixels.ndim == 2 else pixels.shape[2]] + (";16" if pixels.dtype == np.uint16 else "")
        picture = pillow_heif.from_bytes(mode=mode, size=pixels.shape[1::-1], data=np.ascontiguousarray(pixels).tobytes())
        picture.save(fh, quality=HEIF_QUALITY, enc_params=HEIF_ENCODER, icc_profile=profile, exif=exif)
    else:
        Image.fromarray(pixels).save(fh, format="AVIF", quality=AVIF_QUALITY, speed=AVIF_SPEED, icc_profile=profile, exif=exif)


def _pixels(frame: np.ndarray, dtype: np.dtype, kind: Kind, keep_16_bits: bool) -> np.ndarray:
    """The integers a frame is encoded as: an image's 16 bits where the format holds them, else 8
    (16-bit values scaled by 1/257); a stack's or a float frame's stretched preview."""
    if kind == "image" and dtype == np.uint16 and keep_16_bits:
        return _as_integers(frame, dtype)
    if kind == "image" and dtype in (np.uint8, np.uint16):
        return _as_integers(frame / 257 if dtype == np.uint16 else frame, np.dtype(np.uint8))
    return _preview8(frame, {"dtype": str(dtype)})


def _as_integers(frame: np.ndarray, dtype: np.dtype) -> np.ndarray:
    top = np.iinfo(dtype).max
    return np.clip(np.rint(frame), 0, top).astype(dtype)


def _encode(frame: np.ndarray, dtype: np.dtype, fmt: str, kind: Kind, lossless: bool = False) -> bytes:
    """PNG / JPEG / WebP bytes through OpenCV (16-bit PNG; alpha where the format has it; WebP lossless if told)."""
    pixels = _pixels(frame, dtype, kind, keep_16_bits=fmt == "png")
    if pixels.ndim == 3 and pixels.shape[2] == GRAY_ALPHA_CHANNELS:  # PNG only (GRAY_ALPHA_FORMATS): OpenCV writes no gray + alpha
        return imagecodecs.png_encode(np.ascontiguousarray(pixels))
    if pixels.ndim == 3:
        if fmt == "jpg":
            pixels = pixels[..., :3]
        pixels = cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR if pixels.shape[2] == 3 else cv2.COLOR_RGBA2BGRA)
    webp_quality = WEBP_LOSSLESS if lossless else WEBP_QUALITY
    params = {"jpg": [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY, *JPEG_CHROMA_444], "webp": [cv2.IMWRITE_WEBP_QUALITY, webp_quality]}.get(fmt, [])
    ok, encoded = cv2.imencode(f".{fmt}", np.ascontiguousarray(pixels), params)
    if not ok:
        raise ValueError(f"OpenCV could not encode a {pixels.shape} {pixels.dtype} frame as {fmt}")
    return encoded.tobytes()


def _preview8(frame: np.ndarray, info: dict[str, Any]) -> np.ndarray:
    """8-bit inputs keep their values; anything else is stretched (:func:`models.formats.stretch_to_8bit`)."""
    if info.get("dtype") == "uint8":
        return np.clip(np.rint(frame), 0, 255).astype(np.uint8)
    return formats.stretch_to_8bit(frame)


def write_report(out_dir: Path, name: str, report: dict[str, Any], markdown: str, with_markdown: bool = True) -> None:
    """An evaluation's results: ``name.json`` always, ``name.md`` (the printed table) unless told not to."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{name}.json").write_text(json.dumps(report, indent=1, default=float) + "\n")
    if with_markdown:
        (out_dir / f"{name}.md").write_text(markdown)
