"""Checks an uploaded file before anything is queued: type, structure, dtype and size limits.

Reads headers only (the npy header, the image header, the first video frame), never whole files,
and never unpickles. Video probing is bounded: FFmpeg's own probe is capped (``formats.VIDEO_OPEN_OPTIONS``), and
the search for a first frame gives up after ``PROBE_MAX_PACKETS`` packets or ``PROBE_MAX_SECONDS``. Every refusal is an ``InvalidInput`` with the status and a message a user
can act on.
"""
from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import av
import numpy as np
import tifffile
from numpy.lib import format as npy_format
from PIL import Image

from core.settings import Settings
from models import formats, metadata
from models.formats import MIN_SIDE, Kind, KindChoice

PROBE_MAX_PACKETS = 1000  # packets (of any stream) read while looking for the first video frame
PROBE_MAX_SECONDS = 10.0
NPY_VERSIONS = ((1, 0), (2, 0), (3, 0))  # what numpy itself can load
AVIF_HEADER_BYTES = 1 << 16  # where an AVIF's metadata boxes (with its bit depth) are found, before its media data
Image.MAX_IMAGE_PIXELS = None  # our own limit (max_elements) applies instead of Pillow's warning


class InvalidInput(Exception):
    def __init__(self, status_code: int, detail: str):
        super().__init__(detail)
        self.status_code = status_code
        self.detail = detail


def suffix_of(filename: str) -> str:
    suffix = formats.suffix_of(filename)
    if suffix not in formats.INPUT_SUFFIXES:
        raise InvalidInput(415, formats.unsupported_type(filename))
    return suffix


def inspect_upload(path: Path, filename: str, settings: Settings, requested: KindChoice = "auto") -> tuple[Kind, dict[str, Any]]:
    """Return the job kind and the job's ``input`` JSON, or raise ``InvalidInput``.

    ``requested`` (the ``kind`` form field) settles an ambiguous .npy shape; for other files it must
    match what the file is."""
    suffix = suffix_of(filename)
    if path.stat().st_size == 0:
        raise InvalidInput(400, "the uploaded file is empty")
    if suffix in formats.STACK_SUFFIXES:
        return _inspect_npy(path, filename, settings, requested)
    kind = formats.kind_of_suffix(filename)
    if requested not in ("auto", kind):
        raise InvalidInput(422, f"a {suffix} file is a {kind}, not a {requested}; kind={requested} is for .npy files")
    if kind == "image":
        return "image", _inspect_image(path, filename, suffix, settings)
    return "video", _inspect_video(path, filename, settings)


def _reason(exc: Exception, path: Path, filename: str) -> str:
    """The library's message, with our staging path replaced by the user's file name."""
    return str(exc).replace(str(path), filename)


def _check_elements(shape: tuple[int, ...], settings: Settings) -> None:
    elements = math.prod(shape)
    if elements > settings.max_elements:
        raise InvalidInput(413, f"{elements} values (shape {list(shape)}) exceed the limit of {settings.max_elements}")


def _inspect_npy(path: Path, filename: str, settings: Settings, requested: KindChoice) -> tuple[Kind, dict[str, Any]]:
    with path.open("rb") as f:
        try:
            version = npy_format.read_magic(f)
            if version not in NPY_VERSIONS:
                raise ValueError(f"format version {version} is not one of {NPY_VERSIONS}")
            read_header = npy_format.read_array_header_1_0 if version == (1, 0) else npy_format.read_array_header_2_0
            shape, _fortran_order, dtype = read_header(f, max_header_size=10_000)
        except Exception as exc:  # numpy's header parser raises many types (ValueError, SyntaxError, tokenize errors...)
            raise InvalidInput(400, f"not a readable .npy file: {_reason(exc, path, filename)}") from None
        data_offset = f.tell()
    if dtype.hasobject or dtype.fields is not None or dtype.kind not in "uif":
        raise InvalidInput(400, f"dtype {dtype} is not accepted: use an integer or float array (object arrays and pickles are refused)")
    try:
        kind = formats.npy_kind(shape, requested)
    except ValueError as exc:
        raise InvalidInput(400 if len(shape) not in (2, 3) else 422, str(exc)) from None
    frames_fit = bool(formats.stack_layouts(shape)) if kind == "stack" else min(shape[:2]) >= MIN_SIDE
    if min(shape) < 1 or not frames_fit:
        raise InvalidInput(400, f"shape {list(shape)} is too small: frames must be at least {MIN_SIDE}x{MIN_SIDE} (frames first or last)")
    expected = math.prod(shape) * dtype.itemsize
    actual = path.stat().st_size - data_offset
    if actual != expected:
        raise InvalidInput(400, f"the .npy header promises {expected} bytes of data but the file holds {actual}: truncated or corrupt")
    _check_elements(shape, settings)
    return kind, {"filename": filename, "shape": list(shape), "dtype": str(dtype), "layout": None}


def _picture_format(path: Path) -> str | None:
    """The format Pillow finds in the file's header (``PNG``, ``JPEG``...), or None if it finds none."""
    try:
        with Image.open(path) as im:
            return im.format
    except Exception:  # not a picture Pillow knows: the checks that follow say what is wrong
        return None


def _inspect_image(path: Path, filename: str, suffix: str, settings: Settings) -> dict[str, Any]:
    content = _picture_format(path)  # None: Pillow cannot tell (a BigTIFF, a broken file); the checks below can
    if content is not None and content != formats.IMAGE_CONTENT[suffix]:
        raise InvalidInput(400, formats.misnamed_picture(filename, content))
    try:
        # A picture cut short (an interrupted upload or copy) whose header is whole is refused here,
        # not in the worker: a TIFF's strips must lie inside the file, a JPEG or HEIC must decode (a
        # JPEG at an eighth of its size: cheap, yet every coded block is read). PNG, WebP and AVIF
        # fail on their headers already.
        if suffix in formats.TIFF_SUFFIXES:
            with tifffile.TiffFile(path) as tif:
                series, page = tif.series[0], tif.pages[0]
                shape, dtype = tuple(series.shape), np.dtype(series.dtype)
                if any(offset + count > path.stat().st_size for offset, count in zip(page.dataoffsets, page.databytecounts)):
                    raise ValueError("the file ends before its picture data does (truncated)")
        else:
            with Image.open(path) as im:
                im.verify()
                with Image.open(path) as im2:
                    arr_shape = (im2.height, im2.width) + ((len(im2.getbands()),) if len(im2.getbands()) > 1 else ())
                    with path.open("rb") as f:
                        header = f.read(AVIF_HEADER_BYTES)
                    deep_avif = suffix == ".avif" and (formats.avif_bit_depth(header) or 8) > 8  # Pillow says 8 bits
                    sixteen = im2.mode.startswith("I;16") or formats.png_bit_depth(header) == 16 or deep_avif
                    shape, dtype = arr_shape, np.dtype("uint16" if sixteen else "uint8")
                    if suffix in (".jpg", ".jpeg", *formats.HEIF_SUFFIXES):
                        im2.draft(im2.mode, (max(1, im2.width // 8), max(1, im2.height // 8)))  # JPEG only: DCT scaling
                        im2.load()
        problem = metadata.picture_problem(path, filename)
    except Exception as exc:  # Pillow and tifffile raise many types for corrupt files
        raise InvalidInput(400, f"not a readable {suffix[1:]} image: {_reason(exc, path, filename)}") from None
    if problem:
        raise InvalidInput(400, problem)
    try:
        shape = formats.picture_shape(shape)
    except ValueError as exc:
        raise InvalidInput(400, str(exc)) from None
    shape = metadata.upright_shape(shape, metadata.read(path).orientation)  # as the worker will read it
    if min(shape[:2]) < MIN_SIDE:
        raise InvalidInput(400, f"image {shape[1]}x{shape[0]} is too small: at least {MIN_SIDE}x{MIN_SIDE}")
    _check_elements(shape, settings)
    return {"filename": filename, "shape": list(shape), "dtype": str(dtype), "layout": None}


def _first_frame(container: av.container.InputContainer, stream: av.VideoStream) -> av.VideoFrame:
    """Decode the first frame, reading no more than ``PROBE_MAX_PACKETS`` packets or ``PROBE_MAX_SECONDS``."""
    deadline = time.monotonic() + PROBE_MAX_SECONDS
    for count, packet in enumerate(container.demux(), start=1):
        if packet.stream is stream:
            for frame in packet.decode():
                return frame
        if count >= PROBE_MAX_PACKETS or time.monotonic() > deadline:
            raise InvalidInput(400, f"no video frame could be decoded within the first {count} packets")
    raise InvalidInput(400, "no frame of the video could be decoded")


def _check_pixels(width: int, height: int, settings: Settings) -> None:
    if width * height > settings.max_video_pixels:
        raise InvalidInput(413, f"video frames of {width}x{height} exceed the limit of {settings.max_video_pixels} pixels")


def _inspect_video(path: Path, filename: str, settings: Settings) -> dict[str, Any]:
    missing = formats.video_cut_short(path)  # the container's own sizes: an interrupted upload of an MP4 or MKV is refused here
    if missing:
        raise InvalidInput(400, formats.cut_short(filename, missing))
    try:
        with av.open(str(path), options=formats.VIDEO_OPEN_OPTIONS) as container:
            if not container.streams.video:
                raise InvalidInput(400, "the file has no video stream")
            stream = container.streams.video[0]
            if stream.codec_context is None:
                raise InvalidInput(400, "the video's codec is not one this service can decode")
            _check_pixels(stream.codec_context.width, stream.codec_context.height, settings)  # before decoding any
            first = _first_frame(container, stream)
            width, height = first.width, first.height
            rate = stream.average_rate or stream.guessed_rate
            fps = float(rate) if rate else 0.0
            duration = float(stream.duration * stream.time_base) if stream.duration else (container.duration or 0) / 1e6
            frames = stream.frames or round(duration * fps)
            alpha = formats.video_has_alpha(stream, first)
            lossless = formats.video_is_lossless(stream)
    except InvalidInput:
        raise
    except Exception as exc:  # PyAV and FFmpeg raise many types for corrupt files
        raise InvalidInput(400, f"not a readable video: {_reason(exc, path, filename)}") from None
    _check_pixels(width, height, settings)
    if duration > settings.max_video_seconds:
        raise InvalidInput(413, f"a {duration:.0f} s video exceeds the limit of {settings.max_video_seconds:.0f} s")
    return {
        "filename": filename,
        "shape": [frames, height, width],
        "dtype": "uint8",
        "layout": None,
        "frames": frames,
        "fps": fps,
        "width": width,
        "height": height,
        **({"alpha": True} if alpha else {}),
        **({"lossless": True} if lossless else {}),
    }
