"""What Restora reads and writes: file suffixes per kind (inputs and users' model files), how videos
are opened, how a .npy shape is read, result formats and their media types, how previews are
stretched. Torch-free (numpy only inside the preview stretch): the API, the workers and
``restora run`` all ask here, so a new format is one edit.
"""
from __future__ import annotations

from pathlib import Path
from typing import BinaryIO, Literal

Kind = Literal["stack", "video", "image"]
KindChoice = Literal["auto", "stack", "video", "image"]

STACK_SUFFIXES = (".npy",)
TIFF_SUFFIXES = (".tif", ".tiff")  # read with tifffile; the other image formats with OpenCV / Pillow
HEIF_SUFFIXES = (".heic", ".heif")  # phones' photos (read and written with pillow-heif); AVIF with Pillow's own plugin
IMAGE_SUFFIXES = (".png", *TIFF_SUFFIXES, ".jpg", ".jpeg", ".webp", *HEIF_SUFFIXES, ".avif")
# The picture format (Pillow's name) each image suffix must hold: the worker picks its decoder and the
# result its default format by the suffix, so a renamed file (a JPEG called .png) is refused at upload
# (a 16-bit PNG called .jpg would come back an 8-bit JPEG).
IMAGE_CONTENT = {".png": "PNG", ".tif": "TIFF", ".tiff": "TIFF", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP",
                 ".heic": "HEIF", ".heif": "HEIF", ".avif": "AVIF"}
VIDEO_SUFFIXES = (".mp4", ".mkv", ".mov", ".avi", ".webm")
INPUT_SUFFIXES = STACK_SUFFIXES + IMAGE_SUFFIXES + VIDEO_SUFFIXES
# How every video is opened (the API's probe and the workers' decoder alike): local files only, by
# the demuxers of the accepted containers (no playlists such as hls or concat that could reach
# other files or URLs), with a bounded probe.
VIDEO_DEMUXERS = "mov,mp4,m4a,3gp,3g2,mj2,matroska,webm,avi"
VIDEO_OPEN_OPTIONS = {
    "protocol_whitelist": "file",
    "format_whitelist": VIDEO_DEMUXERS,
    "probesize": str(10_000_000),  # bytes FFmpeg may read to find the streams
    "analyzeduration": str(10_000_000),  # microseconds of media it may read for that
}
# A WebM's VP8/VP9 alpha is a side stream that FFmpeg's own decoders ignore; libvpx's decoders read it.
VIDEO_ALPHA_DECODERS = {"vp8": "libvpx", "vp9": "libvpx-vp9"}
EXACT_VIDEO_FORMAT = "mkv"  # the video result format that keeps transparency and every value (FFV1; H.264 keeps neither)
# Decoders of lossless video codecs: a clip in one of them comes back as EXACT_VIDEO_FORMAT by default.
LOSSLESS_VIDEO_CODECS = frozenset({"ffv1", "huffyuv", "ffvhuff", "utvideo", "magicyuv", "rawvideo", "png", "qtrle", "zlib", "v210", "v410"})
# Users' own model files (models/user_models.py): safetensors, or a pickled state dict read by
# torch's weights-only unpickler. TorchScript (.pt) is refused: loading it can run the file's code.
SAFETENSORS_SUFFIX = ".safetensors"  # how `restora models add` stores every model
MODEL_SUFFIXES = (SAFETENSORS_SUFFIX, ".pth", ".ckpt")
COLOUR_CHANNELS = (3, 4)  # RGB, RGBA: an (H, W, 3|4) .npy is an image unless told otherwise
MIN_SIDE = 8  # px: the smallest side of an image or of a stack's frames that is accepted


def stack_layouts(shape: tuple[int, ...]) -> tuple[Literal["thw", "hwt"], ...]:
    """The layouts of a 3-D stack of ``shape`` (``thw``: frames first, ``hwt``: frames last) whose frames are at least MIN_SIDE x MIN_SIDE."""
    fits = {"thw": min(shape[1:]) >= MIN_SIDE, "hwt": min(shape[:2]) >= MIN_SIDE}
    return tuple(layout for layout, fit in fits.items() if fit)


def is_planar(shape: tuple[int, ...]) -> bool:
    """A decoded picture stored channel by channel, (3|4, H, W), as some TIFFs are."""
    return len(shape) == 3 and shape[0] in COLOUR_CHANNELS and shape[2] not in COLOUR_CHANNELS


def picture_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    """The frame a decoded picture of ``shape`` is restored as: (H, W) gray or (H, W, 3|4) colour.

    Planar channels go last, a single channel is gray, and gray + alpha becomes RGBA with three
    equal channels (as OpenCV reads a gray + alpha PNG), so the alpha comes back too. The API's
    upload check and the workers' reader both ask here; ValueError for any other shape.
    """
    if is_planar(shape):
        shape = (*shape[1:], shape[0])
    if len(shape) == 3 and shape[2] in (1, 2):
        shape = shape[:2] if shape[2] == 1 else (*shape[:2], 4)
    if len(shape) == 2 or (len(shape) == 3 and shape[2] in COLOUR_CHANNELS):
        return tuple(shape)
    raise ValueError(f"image shape {list(shape)} is not accepted: send one gray or colour frame")

# Result formats per kind. Images come back in their own format by default (see default_format),
# stacks as float32 .npy, videos as H.264 .mp4.
RESULT_FORMATS: dict[str, tuple[str, ...]] = {
    "stack": ("npy", "tiff", "png"),
    "image": ("png", "tiff", "jpg", "webp", "npy", "heic", "avif"),
    "video": ("mp4", "mkv"),
}
MEDIA_TYPES = {"npy": "application/octet-stream", "tiff": "image/tiff", "png": "image/png", "jpg": "image/jpeg",
               "webp": "image/webp", "heic": "image/heic", "avif": "image/avif", "mp4": "video/mp4", "mkv": "video/x-matroska"}
# The media type of an uploaded file, by its suffix (fixed here: the system's mime tables vary).
INPUT_MEDIA_TYPES = {".npy": "application/octet-stream", ".png": "image/png", ".tif": "image/tiff", ".tiff": "image/tiff",
                     ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp", ".heic": "image/heic", ".heif": "image/heif",
                     ".avif": "image/avif", ".mp4": "video/mp4",
                     ".mkv": "video/x-matroska", ".mov": "video/quicktime", ".avi": "video/x-msvideo", ".webm": "video/webm"}
VIDEO_MUXERS = {"mp4": "mp4", "mkv": "matroska"}  # video result format -> FFmpeg muxer
MP4_COPYABLE_VIDEO_CODECS = frozenset({"h264", "hevc"})  # an input's video an MP4 result may be, copied as it is
LOSSY_IMAGE_FORMATS = frozenset({"jpg", "webp", "heic", "avif"})  # image result formats that encode with loss (WebP: unless the input was lossless)
_FORMAT_OF_SUFFIX = {".npy": "npy", ".tif": "tiff", ".tiff": "tiff", ".png": "png", ".jpg": "jpg", ".jpeg": "jpg",
                     ".webp": "webp", ".heic": "heic", ".heif": "heic", ".avif": "avif", ".mp4": "mp4", ".mkv": "mkv"}
# What a job produces unless its ``formats`` field asks otherwise: every format for stacks, the
# cheap ones for images (and always their own: HEIC and AVIF take seconds to encode, so only for
# HEIC and AVIF inputs), only H.264 for video (a lossless FFV1 copy is many times larger than a lossy
# clip; on request, and by default for a lossless or transparent clip: see produced_formats).
DEFAULT_PRODUCED: dict[str, tuple[str, ...]] = {"stack": RESULT_FORMATS["stack"], "image": ("png", "tiff", "jpg", "webp", "npy"),
                                                "video": ("mp4",)}
# PNG signature (8 bytes), IHDR length and type (8), width and height (8), then bit depth and colour type.
_PNG_BIT_DEPTH_OFFSET = 24


def stretch_to_8bit(frame):
    """A preview's pixels (uint8) of a frame that is not 8-bit: its 0.1 to 99.9 percentile spread over
    0..255. The API's input previews and the workers' 8-bit results of deep stacks look alike."""
    import numpy as np

    frame = np.asarray(frame, np.float32)
    low, high = np.percentile(frame, [0.1, 99.9])
    scale = 255.0 / (high - low) if high > low else 0.0
    return np.clip(np.rint((frame - low) * scale), 0, 255).astype(np.uint8)


def suffix_of(name: str | Path) -> str:
    return Path(name).suffix.lower()


def format_of(name: str | Path) -> str | None:
    """The result format a file name's extension asks for (``out.jpeg`` -> ``jpg``), or None."""
    return _FORMAT_OF_SUFFIX.get(suffix_of(name))


def kind_of_suffix(name: str | Path) -> Kind | None:
    """The kind a non-.npy file is by its extension; None for .npy (its shape decides) and unknown types."""
    suffix = suffix_of(name)
    if suffix in IMAGE_SUFFIXES:
        return "image"
    if suffix in VIDEO_SUFFIXES:
        return "video"
    return None


def misnamed_picture(name: str, content: str) -> str:
    """What to tell the sender of an image file whose content is not the format its name says."""
    right = next((suffix for suffix, fmt in IMAGE_CONTENT.items() if fmt == content), None)
    if right is None:
        return f"{name} holds a {content} image, which is not accepted; accepted images: {', '.join(IMAGE_SUFFIXES)}"
    return f"{name} holds a {content} image, not {IMAGE_CONTENT[suffix_of(name)]}: name it {Path(name).stem}{right} (the name says how it is read and written back)"


def unsupported_type(name: str | Path) -> str:
    suffix = suffix_of(name)
    return f"unsupported file type {suffix or '(no extension)'!r}; accepted: {', '.join(sorted(INPUT_SUFFIXES))}"


def npy_kind(shape: tuple[int, ...], requested: KindChoice = "auto") -> Kind:
    """What a .npy array of ``shape`` is: 2-D an image; (H, W, 3|4) a colour image unless ``requested``
    says stack; any other 3-D shape a stack of frames (frames first or last). ValueError otherwise."""
    if requested == "video":
        raise ValueError("a .npy file cannot be a video; use kind auto, stack or image")
    if len(shape) == 2:
        if requested == "stack":
            raise ValueError(f"a 2-D array {list(shape)} is one frame, not a stack")
        return "image"
    if len(shape) != 3:
        raise ValueError(f"a {len(shape)}-D array {list(shape)} is not accepted: send (T,H,W), (H,W,T), "
                         "one (H,W) frame or an (H,W,3|4) colour image")
    colour = shape[2] in COLOUR_CHANNELS
    if requested == "image" and not colour:
        raise ValueError(f"shape {list(shape)} is not an image: an image .npy is (H,W), (H,W,3) or (H,W,4)")
    if requested == "stack" or (requested == "auto" and not colour):
        return "stack"
    return "image"


def produced_formats(kind: str, requested: list[str] | None, info: dict | None = None) -> tuple[str, ...]:
    """The result formats a job makes: for a video the ``formats`` asked for (by default MP4, or MKV for
    a clip whose ``info`` says lossless or transparent: only MKV keeps every value and the alpha), for
    an image the default ones and those asked for (HEIC, AVIF), for a stack every one. ValueError names
    what is allowed."""
    unknown = [f for f in requested or () if f not in RESULT_FORMATS[kind]]
    if unknown:
        raise ValueError(f"{', '.join(unknown)} cannot be made for a {kind}; choose from {', '.join(RESULT_FORMATS[kind])}")
    if kind == "video" and requested:
        return tuple(dict.fromkeys(requested))
    if kind == "video" and info and (info.get("alpha") or info.get("lossless")):
        return (EXACT_VIDEO_FORMAT,)
    extra = requested or () if kind == "image" else ()
    return tuple(dict.fromkeys((*DEFAULT_PRODUCED[kind], *extra)))


def default_format(kind: str, input_name: str | Path) -> str:
    """An image's own format (a .jpeg comes back .jpg, an image .npy as .npy); a stack's or video's first."""
    if kind == "image":
        own = format_of(input_name)
        if own in RESULT_FORMATS["image"]:
            return own
    return RESULT_FORMATS[kind][0]


def video_has_alpha(stream, first_frame) -> bool:
    """Whether a clip (a PyAV stream and its first decoded frame) is transparent: its pictures carry an
    alpha plane (ProRes 4444, QuickTime Animation, PNG in .mov) or it is a WebM with VP8/VP9 alpha."""
    return any(c.is_alpha for c in first_frame.format.components) or (
        stream.codec_context.name in VIDEO_ALPHA_DECODERS and stream.metadata.get("alpha_mode") == "1")


def video_is_lossless(stream) -> bool:
    """Whether a clip (a PyAV stream) is stored losslessly (FFV1, HuffYUV, UT Video, raw...)."""
    return stream.codec_context.name in LOSSLESS_VIDEO_CODECS


def exactness_left_out(info: dict, fmt: str) -> str | None:
    """What a user is told when a transparent or lossless clip's result is written as ``fmt``, which keeps neither."""
    if fmt == EXACT_VIDEO_FORMAT:  # only a clip's input says alpha or lossless
        return None
    name = info.get("filename", "the clip")
    if info.get("alpha"):
        return f"{name} is transparent; a .{fmt} result is opaque: ask for .{EXACT_VIDEO_FORMAT} to keep its alpha"
    if info.get("lossless"):
        return f"{name} is lossless; a .{fmt} result is H.264, lossy: ask for .{EXACT_VIDEO_FORMAT} to keep every value"
    return None


ISO_BMFF_LEADING_BOXES = (b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip")  # what an MP4 / MOV / 3GP starts with
EBML_MAGIC, MATROSKA_SEGMENT = b"\x1a\x45\xdf\xa3", b"\x18\x53\x80\x67"


def cut_short(name: str, missing: str) -> str:
    """What a user is told about a file whose tail is missing."""
    return f"{name} is cut short: {missing} (an interrupted upload or copy?); send the whole file"


def video_cut_short(path: Path) -> str | None:
    """What is missing from an MP4 / MOV, Matroska / WebM or AVI file whose container declares more
    bytes than the file holds, read from the container's own sizes (no decoding): a top-level MP4 box
    running past the end, or no index box at all; the Matroska segment or a RIFF chunk running past the
    end. None when the file is whole or its container does not say (a live recording of unknown size)."""
    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(12)
        if head[4:8] in ISO_BMFF_LEADING_BOXES:
            return _iso_bmff_cut_short(f, size)
        if head[:4] == EBML_MAGIC:
            return _matroska_cut_short(f, size)
        if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
            return _avi_cut_short(f, size)
    return None


def _iso_bmff_cut_short(f: BinaryIO, size: int) -> str | None:
    """Walk the top-level boxes (32-bit size and type; size 1: a 64-bit size follows; 0: to the end)."""
    offset, seen = 0, set()
    while offset + 8 <= size:
        f.seek(offset)
        header = f.read(16)
        box_size, box_type = int.from_bytes(header[:4], "big"), header[4:8]
        if box_size == 1:
            box_size = int.from_bytes(header[8:16], "big")
        elif box_size == 0:  # the last box runs to the end of the file, whatever its length
            return None
        if box_size < 8 or not all(32 <= c < 127 for c in box_type):  # not a box chain (trailing bytes?): FFmpeg judges
            return None
        seen.add(box_type)
        if offset + box_size > size:
            return f"its container declares at least {offset + box_size} bytes (its '{box_type.decode('latin-1')}' box), but the file has {size}"
        offset += box_size
    if b"mdat" in seen and b"moov" not in seen:
        return "its index (the 'moov' box, which MP4 and MOV writers add last) is missing"
    return None


def _avi_cut_short(f: BinaryIO, size: int) -> str | None:
    """Walk the RIFF chunks ('AVI ', then 'AVIX' ones past 1 GiB): 32-bit little-endian sizes, padded to even."""
    offset = 0
    while offset + 8 <= size:
        f.seek(offset)
        header = f.read(12)
        declared = int.from_bytes(header[4:8], "little")
        if header[:4] != b"RIFF" or declared == 0:  # trailing bytes, or a size a crashed recorder never wrote
            return None
        end = offset + 8 + declared
        if end > size:
            return f"its container declares at least {end} bytes (its '{header[8:12].decode('latin-1')}' RIFF chunk), but the file has {size}"
        offset = end + (end & 1)
    return None


def _matroska_cut_short(f: BinaryIO, size: int) -> str | None:
    """The EBML header's size, then the segment's: all of the file after them is the segment's."""
    f.seek(4)
    header_size, header_end = _ebml_size(f)
    if header_size is None:
        return None
    f.seek(header_end + header_size)
    if f.read(4) != MATROSKA_SEGMENT:
        return None
    segment_size, segment_start = _ebml_size(f)
    if segment_size is None or segment_start + segment_size <= size:
        return None
    return f"its container declares {segment_start + segment_size} bytes (its Matroska segment), but the file has {size}"


def _ebml_size(f: BinaryIO) -> tuple[int | None, int]:
    """An EBML variable-length size at the file's position (None: "unknown", a live recording's), and where its data starts."""
    first = f.read(1)
    if not first or first[0] == 0:
        return None, f.tell()
    length = 9 - first[0].bit_length()
    value = first[0] & (0xFF >> length)
    rest = f.read(length - 1)
    for byte in rest:
        value = value << 8 | byte
    unknown = value == (1 << 7 * length) - 1
    return (None if unknown else value), f.tell()


def jpeg_step(source: Path | bytes) -> float | None:
    """The mean step of a JPEG's luma quantisation table, in 8-bit units (46 at libjpeg's quality 60, 96
    at 30): how coarsely its encoder rounded, which the image noise reading is told (models.image.learned).
    None for anything else."""
    import io

    from PIL import Image

    try:
        with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as image:
            tables = getattr(image, "quantization", None) or {}
    except Exception:  # not a picture Pillow reads: no table
        return None
    return float(sum(tables[0]) / len(tables[0])) if 0 in tables else None


def png_bit_depth(header: bytes) -> int | None:
    """Bits per sample from a PNG's first 25 bytes (Pillow reports 16-bit colour PNGs as 8-bit)."""
    if len(header) > _PNG_BIT_DEPTH_OFFSET and header[:8] == b"\x89PNG\r\n\x1a\n":
        return header[_PNG_BIT_DEPTH_OFFSET]
    return None


def png_gray_bits(header: bytes) -> int | None:
    """Bits per sample of a gray PNG (colour type 0: 1, 2, 4, 8 or 16) from its first 26 bytes; None for other PNGs
    (a palette PNG's bit depth is its index's, not its colours')."""
    depth = png_bit_depth(header)
    return depth if depth is not None and len(header) > _PNG_BIT_DEPTH_OFFSET + 1 and header[_PNG_BIT_DEPTH_OFFSET + 1] == 0 else None


def png_is_gray_alpha(header: bytes) -> bool:
    """Whether a PNG's first 26 bytes say gray + alpha (colour type 4), which OpenCV reads as RGBA."""
    return png_bit_depth(header) is not None and len(header) > _PNG_BIT_DEPTH_OFFSET + 1 and header[_PNG_BIT_DEPTH_OFFSET + 1] == 4


def avif_bit_depth(data: bytes) -> int | None:
    """Bits per channel of an AVIF's pictures (8, 10 or 12), from the ``pixi`` boxes of its metadata
    (before its media data): Pillow decodes every AVIF to 8 bits, so the depth is read here."""
    end = data.find(b"mdat")
    meta = data if end == -1 else data[:end]
    depths: list[int] = []
    at = meta.find(b"pixi")
    while at != -1 and at + 9 <= len(meta):  # type, version and flags (4), channel count, then bits per channel
        depths += meta[at + 9:at + 9 + meta[at + 8]]
        at = meta.find(b"pixi", at + 4)
    return max(depths) if depths else None


def webp_is_lossless(data: bytes) -> bool:
    """Whether a WebP file holds a lossless (VP8L) picture: its RIFF chunks, walked to the first
    picture chunk (an extended file starts with VP8X and may carry ICC, EXIF or alpha chunks first)."""
    if data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        return False
    offset = 12
    while offset + 8 <= len(data):
        fourcc, size = data[offset:offset + 4], int.from_bytes(data[offset + 4:offset + 8], "little")
        if fourcc in (b"VP8 ", b"VP8L"):
            return fourcc == b"VP8L"
        offset += 8 + size + (size & 1)  # chunks are padded to even sizes
    return False
