"""Video path: real PyAV encode and decode of small synthetic clips, fixed seeds, no mocks."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from models.interface import Canceled, NoiseEstimate
from models.video.io import VideoReader, VideoWriter
from models.video.noise import VideoNoiseClassifier
from models.video.restorer import VideoRestorer
from models.video.synthetic import make_clip
from tests.helpers import damaged_clip, damaged_copy, ffmpeg_testsrc2, video_packets


def restore(src: Path, outputs: list[Path], stop_after: int | None = None) -> None:
    """What the pipeline does with a clip; raises Canceled after ``stop_after`` frames if given."""
    with VideoReader(src) as reader:
        estimate = VideoNoiseClassifier().predict(reader.head(8))
        restorer = VideoRestorer(estimate.level)
        restorer.setup("cpu")
        with VideoWriter(outputs, reader) as writer:
            for done, frame in enumerate(restorer.predict(reader.frames(), estimate), start=1):
                writer.write(frame)
                if done == stop_after:
                    raise Canceled()


def decoded(path: Path) -> list[np.ndarray]:
    with VideoReader(path) as reader:
        return list(reader.frames())


def psnr(frames: list[np.ndarray], clean: list[np.ndarray]) -> float:
    error = np.mean((np.clip(np.stack(frames), 0, 255) - np.stack(clean)) ** 2)
    return float(10 * np.log10(255**2 / error))


@pytest.mark.parametrize("source", ["clip.mkv", "clip.mp4"])
def test_round_trip_keeps_frames_timing_size_and_audio(tmp_path, source):
    src = tmp_path / source
    make_clip(src, np.random.default_rng(0), sigma=15, frames=20, width=160, height=96)
    outputs = [tmp_path / "out.mp4", tmp_path / "out.mkv"]
    restore(src, outputs)
    with av.open(str(src)) as container:
        source_times = [frame.time for frame in container.decode(video=0)]
    for path in outputs:
        with VideoReader(path) as reader:
            assert len(list(reader.frames())) == 20
            assert (reader.info["width"], reader.info["height"]) == (160, 96)
            assert reader.info["fps"] == pytest.approx(25)
            assert reader.info["has_audio"]
        with av.open(str(path)) as container:
            times = [frame.time for frame in container.decode(video=0)]
        offset = times[0] - source_times[0]  # Matroska may shift a clip so AAC priming is not negative
        assert times == pytest.approx([t + offset for t in source_times], abs=1e-3)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([source, "out.mp4", "out.mkv"])


def test_mkv_output_is_lossless(tmp_path):
    src = tmp_path / "clip.mkv"
    make_clip(src, np.random.default_rng(1), sigma=10, frames=5, width=64, height=48, audio=False)
    known = [np.random.default_rng(i).integers(0, 256, (48, 64, 3)).astype(np.float32) for i in range(5)]
    with VideoReader(src) as reader, VideoWriter([tmp_path / "out.mkv"], reader) as writer:
        for _, frame in zip(reader.frames(), known):
            writer.write(frame)
    assert all(np.array_equal(a, b) for a, b in zip(decoded(tmp_path / "out.mkv"), known, strict=True))


def test_variable_frame_rate_rotation_and_pcm_audio_survive(tmp_path):
    src = tmp_path / "phone.mkv"
    times_ms = [0, 40, 100, 120, 200, 230, 300, 333]
    with av.open(str(src), "w") as container:
        video = container.add_stream("ffv1", rate=25)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        video.codec_context.time_base = Fraction(1, 1000)
        video.set_display_rotation(90)
        audio = container.add_stream("pcm_s16le", rate=48000)
        for i, ms in enumerate(times_ms):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 30 * i, np.uint8), format="rgb24").reformat(format="yuv420p")
            frame.pts, frame.time_base = ms, Fraction(1, 1000)
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
        samples = av.AudioFrame.from_ndarray(np.zeros((1, 2 * 16000), np.int16), format="s16", layout="stereo")
        samples.sample_rate, samples.pts = 48000, 0
        container.mux(audio.encode(samples))
    outputs = [tmp_path / "out.mp4", tmp_path / "out.mkv"]
    restore(src, outputs)
    for path in outputs:
        with av.open(str(path)) as container:
            frames = list(container.decode(video=0))
            assert [round(frame.time * 1000) for frame in frames] == times_ms
            assert frames[0].rotation == 90
            # PCM is not for MP4, so it is re-encoded to AAC there and copied into Matroska.
            assert container.streams.audio[0].codec_context.name == ("aac" if path.suffix == ".mp4" else "pcm_s16le")


def test_an_anamorphic_clip_keeps_its_pixel_shape(tmp_path):
    """A PAL DV / DVD-style clip stores wide pixels (sample aspect ratio 16:15 here); an MP4 result
    without it played squeezed to 4:3 (the Matroska result cannot carry it through PyAV yet)."""
    src = tmp_path / "dv.mp4"
    with av.open(str(src), "w") as container:
        video = container.add_stream("libx264", rate=25)
        video.width, video.height, video.pix_fmt = 96, 64, "yuv420p"
        video.codec_context.sample_aspect_ratio = Fraction(16, 15)
        for i in range(6):
            frame = av.VideoFrame.from_ndarray(np.random.default_rng(i).integers(0, 256, (64, 96, 3), dtype=np.uint8), format="rgb24")
            frame.pts = i
            container.mux(video.encode(frame.reformat(format="yuv420p")))
        container.mux(video.encode(None))
    restore(src, [tmp_path / "out.mp4"])
    with av.open(str(tmp_path / "out.mp4")) as container:
        assert container.streams.video[0].sample_aspect_ratio == Fraction(16, 15)


def test_gray_input_gives_gray_frames_and_restores(tmp_path):
    src = tmp_path / "gray.mkv"
    make_clip(src, np.random.default_rng(2), sigma=15, frames=10, width=96, height=64, color=False)
    with VideoReader(src) as reader:
        assert reader.info["pix_fmt"] == "gray"
        first = reader.head(1)[0]
    assert first.shape == (64, 96, 3) and np.array_equal(first[..., 0], first[..., 2])
    restore(src, [tmp_path / "out.mkv"])
    frames = decoded(tmp_path / "out.mkv")
    assert len(frames) == 10 and np.array_equal(frames[5][..., 0], frames[5][..., 1])


def test_restorer_raises_psnr_at_sigma_15(tmp_path):
    src = tmp_path / "clip.mkv"
    scene = make_clip(src, np.random.default_rng(3), sigma=15, frames=12, width=192, height=108, audio=False)
    clean = list(scene.clean_frames())
    noisy = decoded(src)
    restorer = VideoRestorer("medium")
    restorer.setup("cpu")
    restored = list(restorer.predict(iter(noisy), NoiseEstimate("medium", 15.0)))
    assert len(restored) == len(noisy)
    assert psnr(restored, clean) > psnr(noisy, clean) + 5


def test_restorer_streams_with_bounded_lookahead():
    pulled = []

    def frames():
        for i in range(30):
            pulled.append(i)
            yield np.full((24, 32, 3), 100.0, np.float32)

    restorer = VideoRestorer("low")
    restorer.setup("cpu")
    for done, _ in enumerate(restorer.predict(frames(), NoiseEstimate("low", 3.0)), start=1):
        assert len(pulled) <= done + restorer.settings.ahead
    assert done == 30


@pytest.mark.parametrize(("sigma", "level"), [(4, "low"), (14, "medium"), (30, "high")])
def test_classifier_finds_the_level(tmp_path, sigma, level):
    src = tmp_path / "clip.mkv"
    make_clip(src, np.random.default_rng(sigma), sigma=sigma, frames=8, width=320, height=180, audio=False)
    with VideoReader(src) as reader:
        estimate = VideoNoiseClassifier().predict(reader.head(8))
    assert estimate.level == level
    assert estimate.sigma == pytest.approx(sigma, abs=2 + 0.1 * sigma)  # texture adds a little


def test_a_colour_cameras_correlated_noise_is_read_whole_from_the_frames_differences():
    """Demosaicked camera noise is spatially correlated: one frame alone shows a third of it. The
    temporal reading (each frame minus the one before, warped onto it) sees it at every scale."""
    from models.image.noise import estimate_sigma
    from models.video.synthetic import Scene, camera_frame, split_images

    photos = split_images("val")
    rng = np.random.default_rng(4)
    clean = [frame.astype(np.float32) for frame in Scene.over(photos[1], photos[0], rng, 256, 160, 8).clean_frames()]
    noisy = [camera_frame(c, 60, rng).astype(np.float32) for c in clean]
    true = float(np.mean([np.std(n - c) for n, c in zip(noisy, clean)]))
    estimate = VideoNoiseClassifier().predict(noisy)
    assert float(np.median([estimate_sigma(n) for n in noisy])) < 0.45 * true  # what one frame shows
    assert 0.55 * true < estimate.sigma < 1.2 * true  # 0.64 here; the spatial reading alone: 0.24


def test_a_clean_clip_over_fine_texture_is_not_read_as_noisy():
    """Gravel's grain fills the finest details like noise: a clean 320 x 180 clip over it read 8.3,
    ``medium``, and came back 5 levels RMS smoother (33.6 dB against itself). Its untextured patches
    cap the spatial reading: ``low``, and the fusion leaves it far closer to what it was."""
    from models.image.noise import estimate_sigma
    from models.registry import restorer_for
    from models.video.synthetic import Scene, split_images

    photos = split_images("val")
    scene = Scene.over(photos[3], photos[2], np.random.default_rng(2), 320, 180, 12)
    clean = [np.rint(frame).astype(np.float32) for frame in scene.clean_frames()]
    assert estimate_sigma(clean[1], clip_margin=0) > 8  # the finest details alone: medium
    estimate = VideoNoiseClassifier().predict(clean[:8])
    assert estimate.level == "low" and estimate.sigma < 5
    restored = list(restorer_for("video", "low").build("cpu").predict(iter(clean), estimate))
    assert psnr([np.clip(np.rint(r), 0, 255) for r in restored], clean) > 38


def light_noise_clip(background: int, sprite: int, seed: int, limit: float) -> list[np.ndarray]:
    """12 clean frames of 320 x 180 over training photos, after checking that with white noise of sigma 1
    they read ``low`` below ``limit`` and the fusion restores them above their noisy PSNR."""
    from models.video.synthetic import Scene, split_images

    photos = split_images("train")
    scene = Scene.over(photos[background], photos[sprite], np.random.default_rng(seed), 320, 180, 12)
    clean = [np.rint(frame).astype(np.float32) for frame in scene.clean_frames()]
    rng = np.random.default_rng(1)
    noisy = [np.clip(np.rint(frame + rng.normal(0, 1.0, frame.shape)), 0, 255).astype(np.float32) for frame in clean]
    estimate = VideoNoiseClassifier().predict(noisy[:8])
    assert estimate.level == "low" and estimate.sigma < limit
    restored = [np.clip(np.rint(frame), 0, 255) for frame in VideoRestorer("low").predict(iter(noisy), estimate)]
    assert psnr(restored, clean) > psnr(noisy, clean)
    return clean


def test_light_noise_over_fur_is_read_as_light_and_the_clip_is_not_made_worse():
    """Fur changes between frames in ways the flow cannot follow: the temporal reading of a clip over a
    cat with noise of sigma 1 was 2.2, and the fusion, trusting it, came back 3.2 dB below its input.
    At low noise the smaller reading counts. A camera's noise, spatially correlated, reads far lower
    spatially than temporally, and keeps the temporal reading."""
    from models.video.noise import FramePair, spatial_sigma
    from models.video.synthetic import camera_frame

    clean = light_noise_clip(background=3, sprite=5, seed=43, limit=1.5)
    rng = np.random.default_rng(2)
    camera = [camera_frame(frame, 1000, rng).astype(np.float32) for frame in clean[:8]]
    temporal = float(np.median([FramePair(previous, current).temporal_sigma() for previous, current in zip(camera[:-1], camera[1:])]))
    assert temporal > 3 * spatial_sigma(camera[1])
    assert VideoNoiseClassifier().predict(camera).sigma == pytest.approx(temporal, rel=0.05)


def test_light_noise_over_texture_is_read_from_the_flattest_exactly_aligned_pixels():
    """Warped by whole pixels, texture misses its place by up to half a pixel and its difference reads as
    noise: a clip over a textured photo with noise of sigma 1 read 1.86, and the fusion came back 2.1 dB
    below its input. At low noise the frame difference warped by the exact flow, on its flattest sixteenth,
    counts too: it reads 1.07 and the clip gains."""
    light_noise_clip(background=0, sprite=1, seed=44, limit=1.3)


def test_cancel_between_frames_leaves_no_output(tmp_path):
    src = tmp_path / "clip.mp4"
    make_clip(src, np.random.default_rng(4), sigma=10, frames=20, width=160, height=96)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(Canceled):
        restore(src, [out / "result.mp4", out / "result.mkv"], stop_after=7)
    assert list(out.iterdir()) == []


def test_a_clip_cut_short_is_refused_and_says_so(tmp_path):
    """An interrupted copy of a finished clip: a Matroska file or an MP4 whose index comes first still
    opened and decoded (restored as it was, it came back shorter and said nothing); an MP4 whose index
    comes last did not open ("Invalid data found"). Their containers' sizes say so, however little is missing.
    Other containers: the frames the header lists (an AVI) or the duration it declares, against the data."""
    import subprocess

    whole = tmp_path / "clip.mkv"
    make_clip(whole, np.random.default_rng(3), sigma=5, frames=50, width=160, height=96)

    def converted(name: str, *options: str) -> Path:
        path = tmp_path / name
        subprocess.run(["ffmpeg", "-v", "error", "-i", str(whole), *options, str(path)], check=True)
        return path

    h264 = ("-c:v", "libx264", "-c:a", "aac")
    sources = {whole: r"its container declares \d+ bytes \(its Matroska segment\), but the file has \d+",
               converted("first.mp4", *h264, "-movflags", "+faststart"): r"its container declares at least \d+ bytes \(its 'mdat' box\)",
               converted("last.mp4", *h264): r"its container declares at least \d+ bytes \(its '(mdat|moov)' box\)",
               converted("clip.avi", "-c:v", "mpeg4", "-c:a", "pcm_s16le"): r"its container declares at least \d+ bytes \(its 'AVI ' RIFF chunk\)"}
    for source, reason in sources.items():
        data = source.read_bytes()
        for share in (0.6, 0.995):
            cut = tmp_path / f"cut{source.suffix}"
            cut.write_bytes(data[:int(len(data) * share)])
            with pytest.raises(ValueError, match=rf"cut{source.suffix} is cut short: {reason}.* \(an interrupted upload or copy\?\)"):
                VideoReader(cut)
        with VideoReader(source) as reader:
            assert reader.info["frames"] == 50 and sum(1 for _ in reader.frames()) == 50
    unsized = tmp_path / "unsized.avi"  # the RIFF size zeroed, as a crashed recorder leaves it: the frame count still tells
    data = (tmp_path / "clip.avi").read_bytes()
    unsized.write_bytes(data[:4] + bytes(4) + data[8:int(len(data) * 0.6)])
    with pytest.raises(ValueError, match=r"unsized.avi is cut short: its index lists 50 frames, but only \d\d are in the file"):
        VideoReader(unsized)


def test_playlist_disguised_as_video_is_refused(tmp_path):
    secret = tmp_path / "secret.mkv"
    make_clip(secret, np.random.default_rng(5), sigma=5, frames=2, width=32, height=32, audio=False)
    disguised = tmp_path / "upload.mp4"
    disguised.write_text(f"ffconcat version 1.0\nfile '{secret}'\n")
    with pytest.raises(ValueError, match="not a readable video"):
        VideoReader(disguised)


@pytest.mark.parametrize("source", ["deep.mkv", "deep.mp4"])
def test_ten_bit_clips_restore_and_stay_deep(tmp_path, source):
    """10-bit in, deep out: the outputs keep more than 256 levels and the noise is removed."""
    src = tmp_path / source
    scene = make_clip(src, np.random.default_rng(3), sigma=15, frames=12, width=192, height=108, bits=10, audio=False)
    with VideoReader(src) as reader:
        assert reader.info["pix_fmt"] in ("gbrp10le", "yuv420p10le")
        noisy = list(reader.frames())
    assert any(not np.array_equal(f, np.rint(f)) for f in noisy)  # finer than 8-bit steps
    outputs = [tmp_path / "out.mp4", tmp_path / "out.mkv"]
    restore(src, outputs)
    clean = list(scene.clean_frames())
    for path, pix_fmt in zip(outputs, ("yuv420p10le", "gbrp16le")):
        with VideoReader(path) as reader:
            assert reader.info["pix_fmt"] == pix_fmt
            frames = list(reader.frames())
        assert len(frames) == 12
        assert not np.array_equal(frames[5], np.rint(frames[5]))
        assert psnr(frames, clean) > psnr(noisy, clean) + 3  # H.264 already took part of the noise from the mp4 source


def test_segments_restored_apart_and_joined_match_an_unsplit_run(tmp_path):
    """What workers do with a long clip (segments, each warmed up on the frames before it, then
    joined with the audio) gives the unsplit run's frames, timestamps and audio, in both formats."""
    from models.pipeline import Pipeline

    pipeline = Pipeline(kinds=("video",))
    src = tmp_path / "clip.mp4"
    scene = make_clip(src, np.random.default_rng(5), sigma=20, frames=130, width=96, height=64, fps=25)
    pipeline.restore_file(src, [tmp_path / "whole.mkv", tmp_path / "whole.mp4"])
    plan = pipeline.plan_video(src)
    warmup = pipeline._loaded[plan.model.name].settings.warmup_frames
    bounds = [(0, 60), (60, warmup + 70), (warmup + 70, None)]  # the last segment's warm-up starts after frame 0
    parts: dict[str, list[Path]] = {"mkv": [], "mp4": []}
    for index, (first, stop) in enumerate(bounds):
        outputs = [tmp_path / f"part{index}.{fmt}" for fmt in parts]
        run = pipeline.restore_segment(src, outputs, first=first, stop=stop, noise=plan.noise, model=plan.model.name)
        assert run.frames == (stop or 130) - first
        for fmt, path in zip(parts, outputs):
            parts[fmt].append(path)
    pipeline.join_segments(src, {tmp_path / f"joined.{fmt}": paths for fmt, paths in parts.items()})

    whole, joined = decoded(tmp_path / "whole.mkv"), decoded(tmp_path / "joined.mkv")
    assert len(whole) == len(joined) == 130
    # Not bit-identical (the fusion's per-pixel gates pass on tiny differences of its state), but as good:
    clean = list(scene.clean_frames())
    gain = np.array([psnr([b], [c]) - psnr([a], [c]) for a, b, c in zip(whole, joined, clean)])
    assert abs(gain.mean()) < 0.05 and gain.min() > -0.3, (gain.mean(), gain.min())
    for fmt in parts:
        with av.open(str(tmp_path / f"whole.{fmt}")) as a, av.open(str(tmp_path / f"joined.{fmt}")) as b:
            assert [f.pts for f in a.decode(video=0)] == [f.pts for f in b.decode(video=0)]
        with av.open(str(tmp_path / f"whole.{fmt}")) as a, av.open(str(tmp_path / f"joined.{fmt}")) as b:
            assert [f.samples for f in a.decode(audio=0)] == [f.samples for f in b.decode(audio=0)]


def test_subtitles_are_copied_into_matroska_results_split_or_not(tmp_path):
    """SRT subtitles survive into mkv results (unsplit and joined); MP4 holds only mov_text, so they
    are left out of an mp4 result (the README says to ask for mkv)."""
    import subprocess

    from models.pipeline import Pipeline

    (tmp_path / "subs.srt").write_text("1\n00:00:00,500 --> 00:00:01,500\nHello\n\n2\n00:00:02,000 --> 00:00:02,800\nWorld\n")
    src = tmp_path / "clip.mkv"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=s=64x48:r=25:d=3", "-i", str(tmp_path / "subs.srt"),
                    "-c:v", "ffv1", "-c:s", "srt", str(src)], check=True)
    pipeline = Pipeline(kinds=("video",))
    pipeline.restore_file(src, [tmp_path / "whole.mkv", tmp_path / "whole.mp4"])
    plan = pipeline.plan_video(src)
    parts = [tmp_path / "part0.mkv", tmp_path / "part1.mkv"]
    for path, (first, stop) in zip(parts, [(0, 40), (40, None)]):
        pipeline.restore_segment(src, [path], first=first, stop=stop, noise=plan.noise, model=plan.model.name)
    pipeline.join_segments(src, {tmp_path / "joined.mkv": parts})

    def subtitles(path: Path) -> list[tuple[int, bytes]]:
        with av.open(str(path)) as container:
            return [(p.pts, bytes(p)) for s in container.streams.subtitles for p in container.demux(s) if p.size]

    assert [text for _, text in subtitles(src)] == [b"Hello", b"World"]
    assert subtitles(tmp_path / "whole.mkv") == subtitles(tmp_path / "joined.mkv") == subtitles(src)
    assert subtitles(tmp_path / "whole.mp4") == []


def test_a_clip_of_saturated_colours_is_read_from_its_unclipped_channels():
    """FFmpeg's testsrc2 bars are saturated colours: each pixel has a channel at 0 or 255 where the
    noise is clipped away. Leaving out whole such pixels left the temporal reading to the moving parts,
    where the flow fails (30 % high); reading channel by channel, it is within 20 %."""
    from models.eval_noise import ffmpeg_testsrc2, head_sigma

    clean, noisy, _ = ffmpeg_testsrc2(20, seconds=0.32)
    true = head_sigma(clean, noisy)
    estimate = VideoNoiseClassifier().predict([frame.astype(np.float32) for frame in noisy[:8]])
    assert estimate.level == "medium"
    assert estimate.sigma == pytest.approx(true, rel=0.2)


ALPHA_CLIPS = {  # name: (ffmpeg encoder arguments, pixel format the source is made in, its peak value)
    "overlay.webm": (["-c:v", "libvpx-vp9", "-pix_fmt", "yuva420p"], "yuva420p", 255),  # alpha in a side stream
    "graphics.mov": (["-c:v", "prores_ks", "-profile:v", "4444", "-pix_fmt", "yuva444p10le"], "yuva444p10le", 1023),  # deep
    "animation.mov": (["-c:v", "qtrle", "-pix_fmt", "argb"], "yuva444p", 255),
}


def _alpha_planes(path: Path) -> list[np.ndarray]:
    """Each frame's alpha at its own depth (8 or 16 bits), decoded as FFmpeg's CLI would (libvpx for
    VP9: the native decoder drops it)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        if stream.codec_context.name == "vp9":
            decoder = av.CodecContext.create("libvpx-vp9", "r")
            frames = [frame for packet in container.demux(stream) for frame in decoder.decode(packet)]
        else:
            frames = list(container.decode(stream))
        return [frame.to_ndarray(format="rgba64le" if frame.format.components[0].bits > 8 else "rgba")[..., 3] for frame in frames]


@pytest.mark.parametrize("name", list(ALPHA_CLIPS))
def test_a_transparent_clip_keeps_its_alpha_in_mkv(tmp_path, name):
    """Overlays and titles carry alpha (VP9 WebM, ProRes 4444, QuickTime Animation): the colour is
    restored and the alpha comes back as sent in the MKV result (before: every result was opaque);
    an MP4 result, which cannot hold it, is opaque. Upscaled, the alpha is enlarged with the colour."""
    import subprocess

    from models.pipeline import Pipeline

    encoder, made_in, peak = ALPHA_CLIPS[name]
    scene = (f"testsrc2=s=96x64:r=25:d=0.48,noise=alls=25:allf=t,format={made_in},"
             f"geq=lum='lum(X,Y)':cb='cb(X,Y)':cr='cr(X,Y)':a='X*{peak}/W'")  # alpha: a left-to-right ramp
    src = tmp_path / name
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", scene, *encoder, str(src)], check=True)
    pipeline = Pipeline(kinds=("video",))
    summary = pipeline.restore_file(src, [tmp_path / "out.mkv", tmp_path / "out.mp4"])
    assert summary.input["alpha"] is True
    sent, kept = _alpha_planes(src), _alpha_planes(tmp_path / "out.mkv")
    top = np.iinfo(sent[0].dtype).max
    assert len(kept) == len(sent) == 12 and sent[0].max() - sent[0].min() > 0.8 * top  # a ramp, not opaque
    assert all(a.dtype == b.dtype and np.array_equal(a, b) for a, b in zip(sent, kept))
    with av.open(str(tmp_path / "out.mp4")) as container:
        assert not any(c.is_alpha for c in next(container.decode(video=0)).format.components)
    if name == "overlay.webm":
        pipeline.restore_file(src, [tmp_path / "big.mkv"], task="upscale", scale=2)
        big = _alpha_planes(tmp_path / "big.mkv")[0].astype(np.float64)
        assert big.shape == (128, 192)
        assert np.abs(big[::2, ::2] - sent[0]).mean() < 0.02 * top


def test_a_fade_is_restored_nearly_as_well_as_steady_frames():
    """In a fade (or an exposure change) the frames fused into the current one are brighter or darker:
    fused as they were, they dragged it towards their level (a fade to black: 27 to 31 dB where the
    steady frames before it get 36.5). Matched in brightness first, the fade's frames get 34.7 to 35.8
    (darker frames lose a little to the noise clipped at black), and frames within the tolerance are
    fused as they are."""
    from models.data.image_pairs import load_rgb
    from models.video.restorer import BRIGHTNESS_TOLERANCE, brightness_matched

    scene = load_rgb("grace_hopper")[:120, :160] * 255
    clean = [scene] * 10 + [scene * (1 - k / 6) for k in range(1, 6)]
    rng = np.random.default_rng(2)
    frames = [np.clip(np.rint(f + rng.normal(0, 15, f.shape)), 0, 255).astype(np.float32) for f in clean]
    restored = list(VideoRestorer("medium").predict(iter(frames), NoiseEstimate(level="medium", sigma=15.0)))
    steady = np.mean([psnr([r], [c]) for r, c in zip(restored[6:10], clean[6:10])])
    fading = [psnr([r], [c]) for r, c in zip(restored[10:], clean[10:])]
    assert min(fading) > steady - 2.5, (steady, fading)
    nearly = frames[3] * np.float32(1 + BRIGHTNESS_TOLERANCE / 2)
    assert brightness_matched(nearly, frames[3]) is nearly


@pytest.mark.parametrize("threads", [1, 4])
def test_damaged_data_mid_clip_is_skipped_and_noted(tmp_path, threads, monkeypatch):
    """A damaged H.264 packet half-way: the job failed with PyAV's "[Errno 1094995529] Invalid data found
    when processing input: 'avcodec_send_packet()'", which says neither what nor where. Players skip it."""
    from models import device

    monkeypatch.setattr(device, "_thread_limit", threads)
    damaged, decoded, damage = damaged_clip(tmp_path, 0.02)
    assert 90 <= decoded < 100 and 1 <= len(damage) <= 100 - decoded and all(1.5 < seconds < 2.6 for seconds in damage), damage
    with VideoReader(damaged) as reader:
        assert sum(1 for _ in reader.frames()) == decoded and len(reader.timestamps) == decoded
    with VideoReader(tmp_path / "clip.mp4") as reader:
        assert sum(1 for _ in reader.frames()) == 100 and reader.damaged == []


def test_a_clip_mostly_damaged_fails_saying_where(tmp_path):
    damaged_clip(tmp_path, 0.02)  # writes the whole clip, tmp_path / "clip.mp4", too
    damaged = tmp_path / "mostly.mp4"
    damaged.write_bytes(damaged_copy((tmp_path / "clip.mp4").read_bytes(), 0.3))
    with VideoReader(damaged) as reader, pytest.raises(ValueError, match=r"^mostly.mp4 has damaged data at \d\.\d\d s that its h264 decoder "
                                                                          r"cannot read \(Invalid data found when processing input\), 6 packets so far: repair"):
        for _ in reader.frames():
            pass


def test_light_noise_through_a_lossy_codec_is_read_from_the_frame_differences(tmp_path):
    """x264 quantises away the finest part of a clip's noise, the part the spatial reading reads: FFmpeg's
    testsrc2 with noise=alls=10 read 1.6 of its 6.3 and came back 0.45 dB above its input. Told that the
    clip's codec is lossy, the classifier and the fusion read it from the frame differences alone."""
    import subprocess

    source = ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25:duration=0.48"]
    subprocess.run([*source, "-c:v", "ffv1", "-pix_fmt", "bgr0", str(tmp_path / "clean.mkv")], check=True)
    subprocess.run([*source, "-vf", "noise=alls=10:allf=t", "-c:v", "libx264", "-pix_fmt", "yuv420p", str(tmp_path / "noisy.mp4")], check=True)
    with VideoReader(tmp_path / "clean.mkv") as clean_reader, VideoReader(tmp_path / "noisy.mp4") as reader:
        clean, noisy = np.stack(list(clean_reader.frames())), list(reader.frames())
        assert not reader.info.get("lossless") and clean_reader.info["lossless"]
    truth = float(np.std(np.stack(noisy) - clean))
    gains, readings = {}, {}
    for lossy in (False, True):
        estimate = VideoNoiseClassifier().predict(noisy[:8], lossy=lossy)
        restored = np.stack([np.clip(np.rint(f), 0, 255) for f in VideoRestorer(estimate.level).predict(iter(noisy), estimate, lossy=lossy)])
        readings[lossy], gains[lossy] = estimate.sigma, psnr(clean, restored) - psnr(clean, np.stack(noisy))
    assert 1.5 * readings[False] < readings[True] < truth, readings
    assert gains[True] > gains[False] + 0.5 and gains[True] > 1.0, gains


def test_noise_a_codec_thinned_is_restored_by_the_medium_level_and_noise_it_kept_by_the_low_one(tmp_path):
    """A colour camera's noise through x264 at CRF 23 reads low (the codec took its finest part), though it is
    the noise the medium networks were trained on: it is medium, restored better than by the low level's
    fusion. White noise a CRF 8 encode kept whole reads low and stays low (there the medium networks lost
    1.5 dB on held-out clips)."""
    from models import eval_video
    from models.eval_images import psnr
    from models.interface import LOW_BELOW_8BIT
    from models.registry import restorer_for

    def classified(case: eval_video.Case) -> tuple[NoiseEstimate, np.ndarray, list[np.ndarray]]:
        path = tmp_path / "clip.mp4"
        clean = eval_video.make(eval_video.ClipPlan("val", 1, 0, 12, 1), case, path, size=(320, 180)).astype(np.float32)
        with VideoReader(path) as reader:
            frames = [frame.astype(np.float32) for frame in reader.frames()]
        return VideoNoiseClassifier().predict(frames[:8], lossy=True), clean, frames

    estimate, clean, frames = classified(eval_video.Case(8, crf=23, photons=100))
    assert estimate.level == "medium" and estimate.sigma < LOW_BELOW_8BIT, estimate
    gains = {}
    for level in ("low", "medium"):
        restored = np.stack([np.clip(np.rint(f), 0, 255) for f in restorer_for("video", level).build("cpu").predict(iter(frames), estimate, lossy=True)])
        gains[level] = psnr(clean, restored) - psnr(clean, np.stack(frames))
    assert gains["medium"] > gains["low"] + 0.2, gains
    kept, _, _ = classified(eval_video.Case(8, crf=8))
    assert kept.level == "low" and kept.sigma > 3.5, kept


def test_a_lossy_clips_mp4_result_never_comes_back_further_from_the_clean_clip_than_its_input(tmp_path):
    """Encoding restored frames to H.264 again costs them what a second generation costs: a lightly noisy
    x264 clip came back as MP4 up to 1.75 dB below its input. Where that encode costs more than the
    restoration changed, the MP4 result is the input's own stream and the run says so; a noisy clip is
    restored. The same holds for a clip restored in segments and joined."""
    from models.pipeline import Pipeline

    clean = np.stack(decoded(ffmpeg_testsrc2(tmp_path / "clean.mkv", lossless=True)))
    pipeline = Pipeline(kinds=("video",))
    for noise, kept in ((1, True), (20, False)):
        src = ffmpeg_testsrc2(tmp_path / f"noise{noise}.mp4", noise)
        outputs = [tmp_path / f"restored{noise}.mp4", tmp_path / f"restored{noise}.mkv"]
        summary = pipeline.restore_file(src, outputs)
        base = psnr(decoded(src), clean)
        gain = {path.suffix: psnr(decoded(path), clean) - base for path in outputs}
        assert ("encoding error" in summary.result_notes.get("mp4", "")) == kept and "mkv" not in summary.result_notes, summary.result_notes
        assert (video_packets(outputs[0]) == video_packets(src)) == kept
        with av.open(str(outputs[0])) as result:
            assert result.streams.audio and result.streams.video[0].frames == 15
        assert gain[".mp4"] > (-0.01 if kept else 2.0) and gain[".mkv"] >= 0, gain

    matroska = ffmpeg_testsrc2(tmp_path / "noise1.mkv", 1)  # its packets have no decoding times, which MP4 needs
    assert "mp4" in pipeline.restore_file(matroska, [tmp_path / "from-mkv.mp4"]).result_notes
    assert video_packets(tmp_path / "from-mkv.mp4") == video_packets(matroska) and len(decoded(tmp_path / "from-mkv.mp4")) == 15

    plan = pipeline.plan_video(tmp_path / "noise1.mp4")
    runs = [pipeline.restore_segment(tmp_path / "noise1.mp4", [tmp_path / f"part{i}.mp4"], first=first, stop=stop, noise=plan.noise,
                                     model=plan.model.name) for i, (first, stop) in enumerate([(0, 8), (8, None)])]
    assert [run.frames for run in runs] == [8, 7]
    costs = {"mp4": runs[0].costs["mp4"].add(runs[1].costs["mp4"])}
    notes = pipeline.join_segments(tmp_path / "noise1.mp4", {tmp_path / "joined.mp4": [tmp_path / "part0.mp4", tmp_path / "part1.mp4"]}, costs)
    assert "encoding error" in notes["mp4"] and video_packets(tmp_path / "joined.mp4") == video_packets(tmp_path / "noise1.mp4")


def test_an_mp4_result_keeps_sharp_colour_edges(tmp_path):
    """RGB averaged into 4:2:0 chroma by swscale's default filter took testsrc2's saturated edges through our
    MP4 writer at 32.4 dB; averaged by area (and x264's medium preset) they come through at 39.6."""
    clean_path = ffmpeg_testsrc2(tmp_path / "clean.mkv", lossless=True)
    with VideoReader(clean_path) as reader:
        clean = list(reader.frames())
        with VideoWriter([tmp_path / "written.mp4"], reader) as writer:
            for frame in clean:
                writer.write(frame)
    assert psnr(decoded(tmp_path / "written.mp4"), clean) > 38.5
