"""Checks an uploaded file before anything is queued: type, structure, dtype and size limits.

Reads headers only (the npy header, the image header, the first video frame), never whole files,
and never unpickles. Video probing is bounded: FFmpeg's own probe reads at most ``PROBE_BYTES``, and
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

from core.jobs import Kind
from core.settings import Settings

STACK_SUFFIXES = {".npy"}
IMAGE_SUFFIXES = {".png", ".tif", ".tiff", ".jpg", ".jpeg"}
VIDEO_SUFFIXES = {".mp4", ".mkv", ".mov", ".avi", ".webm"}
# Demuxers a video may be opened with: no playlists (hls, concat) that could reach other files or URLs.
VIDEO_FORMATS = "mov,mp4,m4a,3gp,3g2,mj2,matroska,webm,avi"
PROBE_BYTES = 5_000_000  # what FFmpeg may read to find the streams (its probesize)
PROBE_MAX_PACKETS = 1000  # packets (of any stream) read while looking for the first video frame
PROBE_MAX_SECONDS = 10.0
MIN_SIDE = 8
NPY_VERSIONS = ((1, 0), (2, 0), (3, 0))  # what numpy itself can load
Image.MAX_IMAGE_PIXELS = None  # our own limit (max_elements) applies instead of Pillow's warning


class InvalidInput(Exception):
    def __init__(self, status_code: int, detail: str):
        super().__init__(detail)
        self.status_code = status_code
        self.detail = detail


def suffix_of(filename: str) -> str:
    suffix = Path(filename).suffix.lower()
    if suffix not in STACK_SUFFIXES | IMAGE_SUFFIXES | VIDEO_SUFFIXES:
        accepted = ", ".join(sorted(STACK_SUFFIXES | IMAGE_SUFFIXES | VIDEO_SUFFIXES))
        raise InvalidInput(415, f"unsupported file type {suffix or '(no extension)'!r}; accepted: {accepted}")
    return suffix


def inspect_upload(path: Path, filename: str, settings: Settings) -> tuple[Kind, dict[str, Any]]:
    """Return the job kind and the job's ``input`` JSON, or raise ``InvalidInput``."""
    suffix = suffix_of(filename)
    if path.stat().st_size == 0:
        raise InvalidInput(400, "the uploaded file is empty")
    if suffix in STACK_SUFFIXES:
        return _inspect_npy(path, filename, settings)
    if suffix in IMAGE_SUFFIXES:
        return "image", _inspect_image(path, filename, suffix, settings)
    return "video", _inspect_video(path, filename, settings)


def _reason(exc: Exception, path: Path, filename: str) -> str:
    """The library's message, with our staging path replaced by the user's file name."""
    return str(exc).replace(str(path), filename)


def _check_elements(shape: tuple[int, ...], settings: Settings) -> None:
    elements = math.prod(shape)
    if elements > settings.max_elements:
        raise InvalidInput(413, f"{elements} values (shape {list(shape)}) exceed the limit of {settings.max_elements}")


def _inspect_npy(path: Path, filename: str, settings: Settings) -> tuple[Kind, dict[str, Any]]:
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
    if len(shape) not in (2, 3):
        raise InvalidInput(400, f"a {len(shape)}-D array {list(shape)} is not accepted: send (T,H,W), (H,W,T) or a single (H,W) frame")
    if min(shape) < 1 or sorted(shape)[-2] < MIN_SIDE:
        raise InvalidInput(400, f"shape {list(shape)} is too small: frames must be at least {MIN_SIDE}x{MIN_SIDE}")
    expected = math.prod(shape) * dtype.itemsize
    actual = path.stat().st_size - data_offset
    if actual != expected:
        raise InvalidInput(400, f"the .npy header promises {expected} bytes of data but the file holds {actual}: truncated or corrupt")
    _check_elements(shape, settings)
    kind: Kind = "stack" if len(shape) == 3 else "image"
    return kind, {"filename": filename, "shape": list(shape), "dtype": str(dtype), "layout": None}


def _inspect_image(path: Path, filename: str, suffix: str, settings: Settings) -> dict[str, Any]:
    try:
        if suffix in (".tif", ".tiff"):
            with tifffile.TiffFile(path) as tif:
                series = tif.series[0]
                shape, dtype = tuple(series.shape), np.dtype(series.dtype)
        else:
            with Image.open(path) as im:
                im.verify()
                with Image.open(path) as im2:
                    arr_shape = (im2.height, im2.width) + ((len(im2.getbands()),) if len(im2.getbands()) > 1 else ())
                    shape, dtype = arr_shape, np.dtype("uint16" if im2.mode.startswith("I;16") else "uint8")
    except Exception as exc:  # Pillow and tifffile raise many types for corrupt files
        raise InvalidInput(400, f"not a readable {suffix[1:]} image: {_reason(exc, path, filename)}") from None
    if len(shape) not in (2, 3) or (len(shape) == 3 and shape[2] not in (3, 4)):
        raise InvalidInput(400, f"image shape {list(shape)} is not accepted: send one gray or colour frame")
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
    options = {"format_whitelist": VIDEO_FORMATS, "protocol_whitelist": "file", "probesize": str(PROBE_BYTES)}
    try:
        with av.open(str(path), options=options) as container:
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
    }
