"""Read and write clips with PyAV: frames stream through as float32 RGB in 8-bit units.

Sources deeper than 8 bits (10-bit HEVC/H.264, 16-bit FFV1, ...) are read through 16-bit RGB, so
their extra precision survives as fractions, and written back deep: 10-bit 4:2:0 H.264 in .mp4,
16-bit RGB FFV1 in .mkv.

A transparent clip (ProRes 4444, QuickTime Animation, VP8/VP9 WebM with alpha) keeps its alpha: the
restorers see the colour, the alpha planes wait in a queue next to the timestamps and are written
back into the MKV result (FFV1 with alpha; an MP4's H.264 has none, so MKV is such a clip's default).

Reading is locked down (local files only, a short list of demuxers, bounded probing) because clips
come from users: a playlist or concat script renamed to .mp4 must not make FFmpeg open other files
or URLs. Writing keeps what a user expects to survive: frame count, each frame's timestamp (so
variable frame rate stays variable), size, rotation and the audio track.
"""
from __future__ import annotations

import contextlib
import os
import secrets
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from models.device import thread_limit
from models.formats import VIDEO_ALPHA_DECODERS, VIDEO_MUXERS, VIDEO_OPEN_OPTIONS, cut_short, format_of, video_cut_short, video_has_alpha, video_is_lossless
from models.image.upscale import enlarge_alpha
from models.recompression import EncodingCost

# Audio codecs that common MP4 players take; others are re-encoded to AAC. Matroska takes anything.
MP4_AUDIO_CODECS = {"aac", "mp3", "ac3", "eac3", "alac", "flac", "opus"}
# Matrices we convert RGB with when the source names one; anything else gets BT.709.
YUV_MATRICES = {1: "ITU709", 5: "ITU601", 6: "SMPTE170M", 7: "SMPTE240M", 9: "BT2020"}
BT709 = 1
# Data ending more than this before the declared duration (seconds, or this share of it when larger), or fewer
# frames than the index lists by more than this share, is a file cut short.
CUT_SHORT_TOLERANCE_S, CUT_SHORT_TOLERANCE_SHARE = 0.5, 0.02
DAMAGED_SHARE_LIMIT = 0.05  # of the video's packets: refused by its decoder beyond this, the file is not worth restoring
FFV1_PIXEL_FORMATS = {(False, False): "bgr0", (True, False): "gbrp16le", (False, True): "bgra", (True, True): "gbrap16le"}  # (deep, alpha)
# How RGB is averaged into 4:2:0 chroma: swscale's default (bilinear) took FFmpeg's testsrc2 through RGB ->
# 4:2:0 -> RGB at 34.8 dB, area averaging at 45.8; on photos area is 0.1-0.5 dB better, never worse.
CHROMA_DOWNSAMPLING = "AREA"
# An H.264 output's frames compared with their encode: one in ENCODE_CHECK_EVERY (a mean needs no more; the
# check then takes 0.5 s of a 3 s 720p clip's 37 s, by cProfile), and fewer for large frames, so the frames
# held over the encoder's delay (x264 "medium" holds some 40) stay within about ENCODE_CHECK_BYTES.
ENCODE_CHECK_EVERY, ENCODE_CHECK_BYTES, ENCODER_DELAY_FRAMES = 4, 64 << 20, 40


def open_input(path: Path) -> av.container.InputContainer:
    """Open a user's clip for reading, or raise ValueError saying why it cannot be read."""
    try:
        return av.open(str(path), "r", container_options=VIDEO_OPEN_OPTIONS)
    except (av.FFmpegError, UnicodeDecodeError) as exc:
        raise ValueError(f"{Path(path).name} is not a readable video ({exc})") from exc


def video_stream(container: av.container.InputContainer) -> av.video.stream.VideoStream:
    """The clip's picture: the first video stream that is not cover art."""
    for stream in container.streams.video:
        if not stream.disposition & av.stream.Disposition.attached_pic:
            return stream
    raise ValueError(f"{Path(container.name).name} has no video stream")


@dataclass(frozen=True)
class SourceVideo:
    """What a writer copies from the source's video stream so the result plays like it."""

    time_base: Fraction
    rate: Fraction
    rotation: int  # degrees counter-clockwise, as PyAV reports it
    colorspace: int  # AVColorSpace of the source (2 = unspecified)
    color_primaries: int
    color_trc: int
    bits: int = 8  # bits per component of the decoded picture
    sample_aspect_ratio: Fraction | None = None  # a pixel's width over its height (DV and DVD clips: not 1); None if unknown
    alpha: bool = False  # transparent: every frame has an alpha plane

    @property
    def deep(self) -> bool:
        return self.bits > 8


class VideoReader:
    """A clip's facts up front, then its frames in decode order, one at a time.

    Each pass (``head``, ``frames``) opens its own demuxer, so classifying on the first frames
    does not move the stream the restorer reads. ``timestamps`` receives each frame's pts as
    ``frames()`` yields it, and ``alphas`` a transparent clip's alpha plane (uint8, or uint16 when
    deep); the writer takes them back in order, so output frames keep them.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self.timestamps: deque[int] = deque()
        self.alphas: deque[np.ndarray] = deque()
        self._passes: list[Iterator[np.ndarray]] = []
        # Packets the decoder refused in the latest pass (damaged data): (index of the next frame, seconds; with
        # frame threads the decoder says so a few packets late, so both are a few frames late).
        self.damaged: list[tuple[int, float]] = []
        try:
            self._probe()
        except av.FFmpegError as exc:
            raise ValueError(f"{self.path.name} is not a readable video ({exc})") from exc

    def _probe(self) -> None:
        """Read the facts the job reports and the writer copies; decode the first frame to be sure."""
        missing = video_cut_short(self.path)  # before FFmpeg, which cannot open an MP4 that lost its index
        if missing:
            raise ValueError(cut_short(self.path.name, missing))
        with open_input(self.path) as container:
            stream = video_stream(container)
            first = next(container.decode(stream), None)
            if first is None:
                raise ValueError(f"{self.path.name} has no decodable video frame")
            packets, data_end = _scan_packets(self.path)
            self._packets = packets
            frames = stream.frames or packets
            duration = _duration(container, stream)
            _refuse_cut_short(self.path, container, stream, packets, data_end)
            rate = stream.average_rate or stream.guessed_rate or _rate_from(frames, duration)
            self.source = SourceVideo(
                time_base=stream.time_base,
                rate=rate,
                rotation=first.rotation,
                colorspace=first.colorspace,
                color_primaries=first.color_primaries,
                color_trc=first.color_trc,
                bits=first.format.components[0].bits,
                sample_aspect_ratio=stream.sample_aspect_ratio or stream.codec_context.sample_aspect_ratio or None,
                alpha=video_has_alpha(stream, first),
            )
            self.info = {
                "filename": self.path.name,
                "frames": frames,
                "fps": float(rate),
                "width": stream.width,
                "height": stream.height,
                "has_audio": bool(container.streams.audio),
                "subtitles": len(container.streams.subtitles),  # kept in mkv results (mp4: only mov_text)
                "codec": stream.codec_context.name,
                "pix_fmt": stream.codec_context.pix_fmt,
                "duration": duration,
                **({"alpha": True} if self.source.alpha else {}),
                **({"lossless": True} if video_is_lossless(stream) else {}),
            }

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc) -> None:
        for frames in self._passes:
            frames.close()  # closes its demuxer even when the consumer stopped early
        self._passes.clear()

    def head(self, n: int) -> list[np.ndarray]:
        """The first ``n`` frames (fewer if the clip is shorter), decoded apart from ``frames()``."""
        with contextlib.closing(self._decode()) as frames:
            return [frame for _, frame in zip(range(n), frames)]

    def frames(self, first: int = 0, warmup: int = 0) -> Iterator[np.ndarray]:
        """Every frame from ``first - warmup`` on, in order, as float32 RGB (H, W, 3) in 8-bit units;
        never the whole clip. Timestamps are kept from ``first`` on: the ``warmup`` frames before
        it only prepare a restorer (a segment of a split clip). Earlier frames are decoded, not converted."""
        self.timestamps.clear()
        self.alphas.clear()
        frames = self._decode(record_from=first, yield_from=max(0, first - warmup))
        self._passes.append(frames)
        return frames

    def _decode(self, record_from: int | None = None, yield_from: int = 0) -> Iterator[np.ndarray]:
        step = max(1, round(1 / (self.source.rate * self.source.time_base)))
        last_pts: int | None = None
        self.damaged.clear()
        with open_input(self.path) as container:
            stream = video_stream(container)
            stream.thread_type = "AUTO"
            stream.codec_context.thread_count = thread_limit()  # 0: FFmpeg's choice
            for index, frame in enumerate(self._frames_of(container, stream)):
                recorded = record_from is not None and index >= record_from
                if record_from is not None:  # every frame's pts counts: a missing one is invented from the last
                    last_pts = _next_pts(frame.pts, last_pts, step)
                    if recorded:
                        self.timestamps.append(last_pts)
                if index >= yield_from:
                    rgb, alpha = to_rgb_and_alpha(frame, self.source.alpha)
                    if recorded and alpha is not None:
                        self.alphas.append(alpha)
                    yield rgb

    def _frames_of(self, container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> Iterator[av.VideoFrame]:
        """The stream's frames; a WebM's VP8/VP9 alpha needs libvpx's decoder, which reads its side stream.
        A packet the decoder refuses (damaged data) is skipped, as players do, and noted in ``damaged``;
        past ``DAMAGED_SHARE_LIMIT`` of the packets the clip stops with a ValueError saying where."""
        decoder = VIDEO_ALPHA_DECODERS.get(stream.codec_context.name) if self.source.alpha else None
        if decoder is None:
            context = stream.codec_context
        else:
            context = av.CodecContext.create(decoder, "r")
            context.thread_count = thread_limit()
        decoded = 0
        for packet in container.demux(stream):  # the last, empty packet flushes the decoder
            try:
                frames = context.decode(packet)
            except av.FFmpegError as exc:
                self._note_damage(packet, exc, decoded, context.name)
                continue
            decoded += len(frames)
            yield from frames

    def _note_damage(self, packet: av.Packet, exc: av.FFmpegError, decoded: int, decoder: str) -> None:
        at = float(packet.pts * packet.time_base) if packet.pts is not None and packet.time_base else decoded / float(self.source.rate)
        self.damaged.append((decoded, at))
        if len(self.damaged) > max(1, DAMAGED_SHARE_LIMIT * self._packets):
            raise ValueError(f"{self.path.name} has damaged data at {at:.2f} s that its {decoder} decoder cannot read ({exc.strerror}), "
                             f"{len(self.damaged)} packets so far: repair the file or export it again") from exc


def to_rgb_and_alpha(frame: av.VideoFrame, alpha: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """float32 RGB in 8-bit units (deeper sources keep their extra precision as fractions) and, when
    ``alpha``, the alpha plane as stored (uint8, or uint16 for deeper sources)."""
    deep = frame.format.components[0].bits > 8
    if alpha:
        rgba = frame.to_ndarray(format="rgba64le" if deep else "rgba")
        return rgba[..., :3].astype(np.float32) / np.float32(257 if deep else 1), rgba[..., 3]
    if deep:
        return frame.to_ndarray(format="rgb48le").astype(np.float32) / np.float32(257), None
    return frame.to_ndarray(format="rgb24").astype(np.float32), None


def _next_pts(pts: int | None, last: int | None, step: int) -> int:
    """The frame's pts, made strictly increasing (encoders refuse repeats) and invented when missing."""
    if last is None:
        return 0 if pts is None else pts
    return last + step if pts is None else max(pts, last + 1)


def _scan_packets(path: Path) -> tuple[int, float]:
    """Demux the whole file (no decoding): how many packets the video stream has (for containers that
    do not store a frame count) and where the data of any stream ends, in seconds."""
    count, end = 0, 0.0
    with open_input(path) as container:
        stream = video_stream(container)
        for packet in container.demux():
            if packet.stream is stream and packet.size:
                count += 1
            if packet.pts is not None and packet.time_base:
                end = max(end, float((packet.pts + (packet.duration or 0)) * packet.time_base))
    return count, end


def _refuse_cut_short(path: Path, container: av.container.InputContainer, stream: av.video.stream.VideoStream,
                      packets: int, data_end: float) -> None:
    """Raise ValueError when the tail of a finished recording is missing (an interrupted upload or copy):
    its data ends well before the duration its header declares, or (an MP4 whose index comes first) fewer
    frames are in it than its index lists. Restoring the rest would silently return a shorter clip. A
    recording that was never finished declares neither and is restored as it is. (MP4, MOV, Matroska and AVI
    files were already checked byte for byte by :func:`models.formats.video_cut_short`; this catches the rest.)"""
    missing = ""
    if stream.frames and packets < stream.frames * (1 - CUT_SHORT_TOLERANCE_SHARE):
        missing = f"its index lists {stream.frames} frames, but only {packets} are in the file"
    elif container.duration:
        declared = container.duration / av.time_base
        declared_end = (container.start_time or 0) / av.time_base + declared
        if data_end < declared_end - max(CUT_SHORT_TOLERANCE_S, CUT_SHORT_TOLERANCE_SHARE * declared):
            missing = f"its header says it runs to {declared_end:.1f} s, but its data ends at {data_end:.1f} s"
    if missing:
        raise ValueError(cut_short(path.name, missing))


def _duration(container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> float:
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    return container.duration / av.time_base if container.duration else 0.0


def _rate_from(frames: int, duration: float) -> Fraction:
    return Fraction(frames / duration).limit_denominator(1001) if frames and duration else Fraction(25)


class VideoWriter:
    """Writes restored frames to every output at once; the files appear only when all succeed.

    Each output is written under a temporary name and renamed on success, so a failure or a
    ``Canceled`` mid-clip leaves nothing behind.
    """

    def __init__(self, outputs: list[Path], reader: VideoReader, audio: bool = True, scale: int = 1, compare: bool = False):
        """``audio=False`` for a segment of a split clip: :func:`join_segments` adds the audio once.
        ``scale``: the frames written are that many times the source's width and height. ``compare``: each
        lossy output measures its :class:`EncodingCost` (``costs``), from the input frames :meth:`write` is given."""
        self._reader = reader
        self._scale = scale
        self._outputs: list[_Output] = []
        self.costs: dict[Path, EncodingCost] = {}
        try:
            for path in outputs:
                self._outputs.append(_Output(Path(path), reader, audio, scale, compare))
        except BaseException:
            self._abort()
            raise

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self._abort()

    def write(self, frame: np.ndarray, source: np.ndarray | None = None) -> None:
        """One restored frame (float32 RGB, 8-bit units); it takes the next source timestamp. ``source``:
        the input's frame it was restored from, which a comparing writer needs."""
        if not self._reader.timestamps:
            raise RuntimeError("more frames written than read from the source")
        pts = self._reader.timestamps.popleft()
        deep = self._reader.source.deep
        if deep:
            pixels = np.clip(np.rint(frame * np.float32(257)), 0, 65535).astype(np.uint16)
        else:
            pixels = np.clip(np.rint(frame), 0, 255).astype(np.uint8)
        if self._reader.source.alpha:  # the frame's own alpha plane, enlarged with it
            alpha = enlarge_alpha(self._reader.alphas.popleft()[..., None], self._scale)
            pixels = np.concatenate([pixels, np.rint(alpha).astype(pixels.dtype)], axis=2)
            layout = "rgba64le" if deep else "rgba"
        else:
            layout = "rgb48le" if deep else "rgb24"
        picture = av.VideoFrame.from_ndarray(np.ascontiguousarray(pixels), format=layout)
        for output in self._outputs:
            output.write(picture, pts, pixels, source)

    def close(self) -> None:
        try:
            for output in self._outputs:
                output.finish()
                if output.check is not None:
                    self.costs[output.path] = output.check.cost
        except BaseException:
            self._abort()
            raise
        for output in self._outputs:
            os.replace(output.temp, output.path)
        self._outputs.clear()

    def _abort(self) -> None:
        for output in self._outputs:
            output.discard()
        self._outputs.clear()


def _open_output(path: Path) -> tuple[av.container.OutputContainer, str, Path]:
    """A container for ``path`` written under a temporary name (renamed once complete), its format and that name."""
    if format_of(path) not in VIDEO_MUXERS:
        raise ValueError(f"cannot write video to {path.name}: use " + " or ".join(f".{f}" for f in VIDEO_MUXERS))
    fmt = VIDEO_MUXERS[format_of(path)]
    temp = path.with_name(f".{path.stem}.{secrets.token_hex(4)}.partial{path.suffix}")
    options = {"movflags": "+faststart"} if fmt == "mp4" else {}
    return av.open(str(temp), "w", format=fmt, options=options), fmt, temp


def join_segments(reader: VideoReader, parts: list[Path], output: Path) -> None:
    """One clip from segments restored apart, with the source's audio: each part is a video-only
    file in ``output``'s format whose frames carry the source's timestamps, written with the same
    encoder settings, so its packets are copied as they are (no second encode, no quality lost).
    ``parts = [reader.path]`` copies the source's own video stream."""
    container, fmt, temp = _open_output(Path(output))
    audio: _AudioTrack | None = None
    try:
        with av.open(str(parts[0])) as first:
            video = container.add_stream_from_template(video_stream(first))
        if reader.source.rotation:
            video.set_display_rotation(reader.source.rotation)
        if reader.info["has_audio"]:
            audio = _AudioTrack(reader.path, container, fmt)
        _Subtitles(reader.path, container).mux_all()
        for part in parts:
            with av.open(str(part)) as segment:
                for packet in segment.demux(video_stream(segment)):
                    if packet.size == 0:  # the demuxer's end-of-stream marker
                        continue
                    if audio:
                        audio.mux_until(float(packet.pts * packet.time_base))
                    packet.stream = video
                    container.mux(packet)
        if audio:
            audio.finish()
            audio.close()
        container.close()
    except BaseException:
        with contextlib.suppress(Exception):
            if audio:
                audio.close()
            container.close()
        temp.unlink(missing_ok=True)
        raise
    os.replace(temp, output)


class _Output:
    """One output file: H.264 in .mp4, FFV1 in .mkv, with the source's audio interleaved (unless ``audio=False``)."""

    def __init__(self, path: Path, reader: VideoReader, audio: bool = True, scale: int = 1, compare: bool = False):
        self.path = path
        self.source = reader.source
        self.container, fmt, self.temp = _open_output(path)
        self.audio: _AudioTrack | None = None
        self.check: _EncodeCheck | None = None
        try:
            self.video = self._add_video(fmt, reader.info["width"] * scale, reader.info["height"] * scale)
            if compare and fmt == "mp4":
                self.check = _EncodeCheck(self.video)
            if audio and reader.info["has_audio"]:
                self.audio = _AudioTrack(reader.path, self.container, fmt)
            if audio:
                _Subtitles(reader.path, self.container).mux_all()
        except BaseException:
            self.discard()
            raise

    def _add_video(self, fmt: str, width: int, height: int) -> av.video.stream.VideoStream:
        source = self.source
        if fmt == "mp4":
            stream = self.container.add_stream("libx264", rate=source.rate, options={"crf": "18", "preset": "medium", "threads": str(thread_limit())})
            # 4:2:0 needs even sides; odd-sized clips keep their size in 4:4:4 instead.
            stream.pix_fmt = ("yuv420p" if width % 2 == 0 and height % 2 == 0 else "yuv444p") + ("10le" if source.deep else "")
            stream.codec_context.colorspace = source.colorspace if source.colorspace in YUV_MATRICES else BT709
            stream.codec_context.color_range = 1  # limited ("tv") range, what players assume
            stream.codec_context.color_primaries = source.color_primaries
            stream.codec_context.color_trc = source.color_trc
        else:
            # bgr0 / gbrp16le are stored as RGB (FFV1's reversible colour transform), so they decode
            # to the very RGB we wrote; yuv444p would round in the RGB->YUV step. With alpha: bgra / gbrap16le.
            stream = self.container.add_stream("ffv1", rate=source.rate, options={"level": "3", "slicecrc": "1", "threads": str(thread_limit())})
            stream.pix_fmt = FFV1_PIXEL_FORMATS[(source.deep, source.alpha)]
        stream.width, stream.height = width, height
        if source.sample_aspect_ratio:  # else an anamorphic clip would play squeezed or stretched
            stream.codec_context.sample_aspect_ratio = source.sample_aspect_ratio
        stream.time_base = source.time_base
        stream.codec_context.time_base = source.time_base
        if source.rotation:
            stream.set_display_rotation(source.rotation)
        return stream

    def write(self, picture: av.VideoFrame, pts: int, pixels: np.ndarray, source: np.ndarray | None) -> None:
        if self.check is not None:
            self.check.written(pts, pixels, source)
        if self.audio:
            self.audio.mux_until(float(pts * self.source.time_base))
        if self.video.pix_fmt in FFV1_PIXEL_FORMATS.values():
            frame = picture.reformat(format=self.video.pix_fmt)
        else:
            matrix = YUV_MATRICES[self.video.codec_context.colorspace]
            frame = picture.reformat(format=self.video.pix_fmt, dst_colorspace=matrix, dst_color_range="MPEG", interpolation=CHROMA_DOWNSAMPLING)
        frame.pts = pts
        frame.time_base = self.source.time_base
        self._mux(self.video.encode(frame))

    def _mux(self, packets: list[av.Packet]) -> None:
        if self.check is not None:
            self.check.encoded(packets)
        self.container.mux(packets)

    def finish(self) -> None:
        """Flush the encoders and the rest of the audio, and close the temporary file."""
        self._mux(self.video.encode(None))
        if self.check is not None:
            self.check.encoded(None)
        if self.audio:
            self.audio.finish()
            self.audio.close()
        self.container.close()

    def discard(self) -> None:
        with contextlib.suppress(Exception):
            if self.audio:
                self.audio.close()
        with contextlib.suppress(Exception):
            self.container.close()
        self.temp.unlink(missing_ok=True)


class _EncodeCheck:
    """Measures an output's :class:`EncodingCost` as it is written: its packets are decoded again as the
    encoder hands them out, and the frames held for comparison (one in ``every``) met by timestamp."""

    def __init__(self, stream: av.video.stream.VideoStream):
        self._stream = stream
        self._decoder: av.CodecContext | None = None  # made once the encoder is open (its first packet): it needs the encoder's headers
        self._every = max(ENCODE_CHECK_EVERY, -(-ENCODER_DELAY_FRAMES * stream.width * stream.height * 3 // ENCODE_CHECK_BYTES))
        self._count = 0
        self._held: dict[int, np.ndarray] = {}
        self.cost = EncodingCost()

    def written(self, pts: int, pixels: np.ndarray, source: np.ndarray | None) -> None:
        """A frame handed to the encoder, as written (uint8 or uint16 RGB(A)), and the input frame it was restored from."""
        self._count += 1
        if source is None or (self._count - 1) % self._every:
            return
        restored = _eight_bit(pixels[..., :3])
        self._held[pts] = restored
        self.cost.compare(restored, source=source)

    def encoded(self, packets: list[av.Packet] | None) -> None:
        """The encoder's packets (None: the end, which flushes the decoder)."""
        if self._decoder is None:
            if not packets:
                return
            self._decoder = av.CodecContext.create(self._stream.codec_context.codec.canonical_name, "r")
            self._decoder.extradata = self._stream.codec_context.extradata
            self._decoder.thread_count = thread_limit()
        for packet in [None] if packets is None else packets:
            for frame in self._decoder.decode(packet):
                restored = self._held.pop(frame.pts, None)
                if restored is not None:
                    self.cost.compare(restored, encoded=to_rgb_and_alpha(frame)[0])


def _eight_bit(pixels: np.ndarray) -> np.ndarray:
    """float32 in 8-bit units from uint8 or (deep) uint16 pixels."""
    return pixels.astype(np.float32) / np.float32(257 if pixels.dtype == np.uint16 else 1)


class _Subtitles:
    """The source's subtitle streams that the output container can hold (SRT, ASS, WebVTT in
    Matroska; mov_text in MP4), copied packet for packet with their timestamps. Text subtitles are
    small, so all of them go in before the first frame; the muxer interleaves them."""

    def __init__(self, source_path: Path, container: av.container.OutputContainer):
        self._path, self._output = source_path, container
        with open_input(source_path) as source:
            self._streams = {s.index: container.add_stream_from_template(s) for s in source.streams.subtitles
                             if s.codec_context.name in container.supported_codecs}

    def mux_all(self) -> None:
        if not self._streams:
            return
        with open_input(self._path) as source:
            for packet in source.demux([source.streams[i] for i in self._streams]):
                if packet.dts is not None and packet.size:
                    packet.stream = self._streams[packet.stream.index]
                    self._output.mux(packet)


class _AudioTrack:
    """The source's first audio stream, fed to the output as far as the video has got.

    Packets are copied (no re-encode) when the output container takes the codec, else decoded and
    encoded to AAC. A demuxer of its own keeps audio in step with video without buffering the clip.
    """

    def __init__(self, source_path: Path, container: av.container.OutputContainer, fmt: str):
        self._output = container
        self._input = open_input(source_path)
        self._source = self._input.streams.audio[0]
        codec = self._source.codec_context.name
        self._remux = codec in MP4_AUDIO_CODECS if fmt == "mp4" else codec in container.supported_codecs
        if self._remux:
            self._stream = container.add_stream_from_template(self._source)
        else:
            self._stream = container.add_stream("aac", rate=self._source.rate)
            # By channel count: sources may name no layout ("1 channels"), which the encoder refuses.
            self._stream.layout = av.AudioLayout(f"{self._source.layout.nb_channels}c")
            self._stream.format = "fltp"  # the only sample format FFmpeg's AAC encoder takes
        self._packets = (p for p in self._input.demux(self._source) if p.dts is not None)
        self._pending: av.Packet | None = None

    def mux_until(self, seconds: float) -> None:
        """Write every audio packet that starts before ``seconds`` into the clip."""
        while True:
            packet = next(self._packets, None) if self._pending is None else self._pending
            self._pending = None
            if packet is None:
                return
            if float(packet.dts * packet.time_base) > seconds:
                self._pending = packet
                return
            self._mux(packet)

    def finish(self) -> None:
        self.mux_until(float("inf"))
        if not self._remux:
            self._output.mux(self._stream.encode(None))

    def close(self) -> None:
        self._input.close()

    def _mux(self, packet: av.Packet) -> None:
        if self._remux:
            packet.stream = self._stream
            self._output.mux(packet)
            return
        for frame in packet.decode():
            self._output.mux(self._stream.encode(frame))
