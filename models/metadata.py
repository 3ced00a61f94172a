"""What an image file says besides its pixel values: the EXIF orientation, the ICC colour profile
and the camera's EXIF record (make, model, capture time, exposure, location).

A phone stores a portrait photo sideways with an orientation tag, and a camera or editor may tag
its pixels as Display P3, Adobe RGB or ProPhoto RGB. OpenCV's unchanged read (the only one that
keeps 16-bit colour and alpha) ignores both and OpenCV's writer keeps neither, so a result would
come back turned on its side, with washed-out colours and without the date it was taken. So the
reader turns the pixels upright (:func:`upright`) and the writer embeds the input's profile and
EXIF record (:func:`embed`): OpenCV has no option for them and Pillow cannot write 16-bit colour,
so they go in as the format's own chunks (PNG ``iCCP`` and ``eXIf``, JPEG ``APP2 ICC_PROFILE`` and
``APP1 Exif``, WebP ``ICCP`` and ``EXIF``; HEIC and AVIF through their encoders; TIFF gets the
profile through tifffile, not the EXIF record).
"""
from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pillow_heif
import tifffile
from PIL import ExifTags, Image, ImageCms

from models import formats

pillow_heif.register_heif_opener()  # Pillow opens HEIC wherever pictures are checked or read (API, previews, workers)

TIFF_ORIENTATION_TAG, TIFF_ICC_TAG = 274, 34675
# TIFF colour models read as gray or RGB levels (and YCbCr when JPEG-compressed: it decodes to RGB);
# CMYK, Lab, YCbCr samples, camera raw (CFA) and the rest are refused rather than taken for RGB.
TIFF_PHOTOMETRICS_READ = (tifffile.PHOTOMETRIC.MINISBLACK, tifffile.PHOTOMETRIC.MINISWHITE, tifffile.PHOTOMETRIC.RGB,
                          tifffile.PHOTOMETRIC.PALETTE)
# How to turn stored pixels upright for each EXIF orientation (2-8; 1 is upright), as Pillow's
# ImageOps.exif_transpose does (a test compares them).
_UPRIGHT = {
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.swapaxes(0, 1),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: a.swapaxes(0, 1)[::-1, ::-1],
    8: lambda a: np.rot90(a, 1),
}
_JPEG_ICC_HEADER = b"ICC_PROFILE\0"
_JPEG_ICC_CHUNK = 65535 - 2 - len(_JPEG_ICC_HEADER) - 2  # an APP2 segment's payload after its length, header and numbering
EXIF_HEADER = b"Exif\0\0"  # how JPEG's APP1 (and Pillow) start an EXIF record; PNG and WebP store the TIFF data after it
# What a result keeps of the input's EXIF record: who and what took it, when, and the directories
# that hold the exposure and the location. Left out: the orientation (the result's pixels are
# upright), how the samples are stored (a TIFF's first directory is also its image's: strips, bits,
# compression), and what the writing program put there (software, description, resolution: tifffile
# writes its own).
EXIF_KEPT_TAGS = (ExifTags.Base.Make, ExifTags.Base.Model, ExifTags.Base.DateTime, ExifTags.Base.Artist, ExifTags.Base.Copyright,
                  ExifTags.IFD.Exif, ExifTags.IFD.GPSInfo)
_JPEG_SEGMENT_PAYLOAD = 65535 - 2  # an APP segment's bytes after its length field


@dataclass(frozen=True)
class Tags:
    """What a result keeps of its input besides the pixels (and how the input's pixels are turned)."""

    orientation: int = 1  # EXIF orientation, 1 when upright or untagged
    profile: bytes | None = None  # ICC colour profile
    exif: bytes | None = None  # the camera's EXIF record to copy (EXIF_HEADER + TIFF data), orientation left out


def read(path: Path) -> Tags:
    """The file's orientation, ICC profile and EXIF record. Unreadable tags count as absent: they must
    not cost the user the pixels, which were readable."""
    try:
        if formats.suffix_of(path) in formats.TIFF_SUFFIXES:
            with tifffile.TiffFile(path) as tif:
                tags = tif.pages[0].tags
                orientation, profile = tags.get(TIFF_ORIENTATION_TAG), tags.get(TIFF_ICC_TAG)
                turn = int(orientation.value) if orientation else 1
            try:  # the EXIF record through Pillow, which opens most TIFFs but not all
                with Image.open(path) as image:
                    exif = _exif_record(image)
            except Exception:
                exif = None
            return Tags(turn if turn in _UPRIGHT else 1, bytes(profile.value) if profile else None, exif)
        with Image.open(path) as image:
            orientation = int(image.getexif().get(ExifTags.Base.Orientation, 1))
            return Tags(orientation if orientation in _UPRIGHT else 1, image.info.get("icc_profile") or None, _exif_record(image))
    except Exception:  # Pillow and tifffile raise many types for broken tags
        return Tags()


def _exif_record(image: Image.Image) -> bytes | None:
    """The picture's EXIF record as far as a result keeps it (EXIF_KEPT_TAGS), or None (also when broken:
    the pixels still count)."""
    try:
        exif = image.getexif()
        for tag in list(exif):
            if tag not in EXIF_KEPT_TAGS:
                del exif[tag]
        return exif.tobytes() if len(exif) else None
    except Exception:  # Pillow raises many types for broken records
        return None


def picture_problem(path: Path, name: str) -> str | None:
    """Why the file at ``path`` (sent as ``name``) cannot be restored as one picture, or None: it holds
    several (a multi-page TIFF, an animated PNG or WebP: only the first would be read, the rest dropped
    without a word), or it is a TIFF in a colour model whose values are not gray or RGB levels."""
    tiff = formats.suffix_of(name) in formats.TIFF_SUFFIXES
    if tiff:
        with tifffile.TiffFile(path) as tif:
            frames = len(tif.series[0].pages)  # a series leaves out thumbnails and reduced-resolution copies
            page = tif.pages[0]
            photometric, floating = page.photometric, np.dtype(page.dtype).kind == "f"
            decoded_to_rgb = photometric == tifffile.PHOTOMETRIC.YCBCR and page.compression == tifffile.COMPRESSION.JPEG
        if not (photometric in TIFF_PHOTOMETRICS_READ or decoded_to_rgb) or (photometric == tifffile.PHOTOMETRIC.MINISWHITE and floating):
            model = {"SEPARATED": "CMYK", "MINISWHITE": "white-is-zero gray"}.get(photometric.name, photometric.name)
            return (f"{name} is a {model} TIFF{' of floats' if floating else ''}; Restora reads gray, RGB and palette "
                    "TIFFs: save it as gray or RGB")
    else:
        with Image.open(path) as image:
            frames, mode = getattr(image, "n_frames", 1), image.mode
        if mode == "CMYK":
            return f"{name} is a CMYK image; Restora reads gray and RGB ones: save it as RGB"
    if frames == 1:
        return None
    held = f"{frames} pages" if tiff else f"an animation of {frames} frames"
    return (f"{name} holds {held}; an image file must hold one picture: send a stack of frames as a .npy "
            "(T, H, W), a clip as a video file, or one frame")


def tiff_as_seen(raw: np.ndarray, page: tifffile.TiffPage) -> np.ndarray:
    """A TIFF page's samples as the gray or RGB levels they show: white-is-zero gray inverted, palette
    indices looked up (8-bit colour when the palette is 8-bit at heart, as Pillow writes it)."""
    if page.photometric == tifffile.PHOTOMETRIC.MINISWHITE:
        return ~raw if raw.dtype == bool else (2 ** page.bitspersample - 1) - raw
    if page.photometric == tifffile.PHOTOMETRIC.PALETTE:
        colormap = page.colormap
        for step in (256, 257):  # 8-bit levels stored as v * 256 (Pillow) or v * 257
            if (colormap % step == 0).all():
                colormap = (colormap // step).astype(np.uint8)
                break
        return np.moveaxis(colormap[:, raw], 0, -1)
    return raw


def upright(pixels: np.ndarray, orientation: int) -> np.ndarray:
    """``pixels`` (H, W[, C]) as they are meant to be seen."""
    turn = _UPRIGHT.get(orientation)
    return pixels if turn is None else np.ascontiguousarray(turn(pixels))


def upright_shape(shape: tuple[int, ...], orientation: int) -> tuple[int, ...]:
    """The shape :func:`upright` gives pixels of ``shape``: orientations 5 to 8 swap height and width."""
    return (shape[1], shape[0], *shape[2:]) if 5 <= orientation <= 8 else shape


def describe(profile: bytes) -> str:
    """The profile's own name (e.g. "Display P3"), for the job's record of what was read."""
    try:
        return ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(profile))).strip() or "unnamed"
    except (ImageCms.PyCMSError, OSError):
        return "unreadable profile (kept as sent)"


def profile_fits(profile: bytes, colour: bool) -> bool:
    """Whether an ICC profile describes the result's samples (its header names their colour space at
    bytes 16-19): an RGB profile for colour, a gray one for gray; any other would mislead a viewer."""
    return profile[16:20] == (b"RGB " if colour else b"GRAY")


def embed(encoded: bytes, fmt: str, shape: tuple[int, ...], profile: bytes | None = None, exif: bytes | None = None) -> bytes:
    """``encoded`` (PNG, JPEG or WebP bytes of a frame of ``shape``) with ``profile`` and ``exif`` (see
    :func:`exif_for`) embedded."""
    if fmt == "png":
        return _png_with(encoded, profile, exif)
    if fmt == "jpg":
        return _jpeg_with(encoded, profile, exif)
    if fmt == "webp":
        return _webp_with(encoded, shape, profile, exif)
    raise ValueError(f"no colour profile or EXIF record can be embedded in {fmt}")


def exif_for(exif: bytes, shape: tuple[int, ...]) -> bytes | None:
    """The input's EXIF record for a result of ``shape``: the pixel dimensions it states are the
    result's (an upscaled or turned picture has others). A record too large for one JPEG segment (a
    maker's note can be) loses the maker's note; None if it still does not fit, or if Pillow cannot
    write it back (the restored pixels matter more than the record)."""
    try:
        record = Image.Exif()
        record.load(exif)
        details = record.get_ifd(ExifTags.IFD.Exif)
        for tag, size in ((ExifTags.Base.ExifImageWidth, shape[1]), (ExifTags.Base.ExifImageHeight, shape[0])):
            if tag in details:
                details[tag] = size
        written = record.tobytes()
        if len(written) > _JPEG_SEGMENT_PAYLOAD:
            details.pop(ExifTags.Base.MakerNote, None)
            written = record.tobytes()
    except Exception:  # Pillow raises many types for records it cannot write
        return None
    return written if len(written) <= _JPEG_SEGMENT_PAYLOAD else None


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png_with(png: bytes, profile: bytes | None, exif: bytes | None) -> bytes:
    """An ``iCCP`` chunk (name, compression method 0, deflated profile) and an ``eXIf`` chunk right
    after ``IHDR``, before the image data as the format asks."""
    chunks = b""
    if profile is not None:
        chunks += _png_chunk(b"iCCP", b"ICC profile\0\0" + zlib.compress(profile))
    if exif is not None:
        chunks += _png_chunk(b"eXIf", exif[len(EXIF_HEADER):])
    after_header = 8 + 8 + 13 + 4  # signature, IHDR length and type, its 13 bytes, CRC
    return png[:after_header] + chunks + png[after_header:]


def _jpeg_segment(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", 2 + len(payload)) + payload


def _jpeg_with(jpeg: bytes, profile: bytes | None, exif: bytes | None) -> bytes:
    """An ``APP1 Exif`` segment and ``APP2 ICC_PROFILE`` segments (numbered, at most 64 KiB each) after
    the JFIF ``APP0`` segment."""
    segments = b"" if exif is None else _jpeg_segment(0xE1, exif)
    if profile is not None:
        pieces = [profile[i:i + _JPEG_ICC_CHUNK] for i in range(0, len(profile), _JPEG_ICC_CHUNK)]
        segments += b"".join(_jpeg_segment(0xE2, _JPEG_ICC_HEADER + bytes([number, len(pieces)]) + piece)
                             for number, piece in enumerate(pieces, start=1))
    at = 2  # after SOI
    if jpeg[2:4] == b"\xff\xe0":
        at += 2 + struct.unpack(">H", jpeg[4:6])[0]
    return jpeg[:at] + segments + jpeg[at:]


def _riff_chunk(kind: bytes, data: bytes) -> bytes:
    return kind + struct.pack("<I", len(data)) + data + (b"\0" if len(data) % 2 else b"")


def _webp_with(webp: bytes, shape: tuple[int, ...], profile: bytes | None, exif: bytes | None) -> bytes:
    """An ``ICCP`` chunk before the image data and an ``EXIF`` chunk after it, announced by the flags
    of a ``VP8X`` header (a simple WebP gets one)."""
    icc_flag, alpha_flag, exif_flag = 0x20, 0x10, 0x08
    flags = (icc_flag if profile is not None else 0) | (exif_flag if exif is not None else 0)
    first, rest = webp[12:16], webp[12:]
    if first == b"VP8X":
        header_size = 8 + 10
        vp8x, rest = bytearray(rest[:header_size]), rest[header_size:]
        vp8x[8] |= flags
    else:
        flags |= alpha_flag if len(shape) == 3 and shape[2] == 4 else 0
        height, width = shape[:2]
        vp8x = b"VP8X" + struct.pack("<I", 10) + bytes([flags, 0, 0, 0]) + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    chunks = (bytes(vp8x) + (b"" if profile is None else _riff_chunk(b"ICCP", profile)) + rest
              + (b"" if exif is None else _riff_chunk(b"EXIF", exif[len(EXIF_HEADER):])))
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WEBP" + chunks
