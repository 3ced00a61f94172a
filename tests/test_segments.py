"""Long videos split into segments: restored by several workers at once, joined with the source's
audio, and after a worker is killed only its segment is restored again."""
from __future__ import annotations

import io
import time

import av
import numpy as np
import pytest
from fastapi.testclient import TestClient
from rq.job import Job
from rq.serializers import JSONSerializer

from app.main import create_app
from core.jobs import JobRecord, now
from core.queues import PRIORITY_QUEUE, RESTORE_QUEUE, connect, restore_lane
from core.settings import Settings
from models.video.synthetic import make_clip
from tests.conftest import kill_and_replace, start_worker, stop, wait_for
from tests.helpers import damaged_clip, ffmpeg_testsrc2, video_packets
from workers.segments import segment_bounds, worth_splitting


@pytest.fixture
def split(redis_url, tmp_path):
    """Settings that split every clip longer than 1.5 s into 1-second segments, on a Redis DB of their own."""
    settings = Settings(redis_url=redis_url.rsplit("/", 1)[0] + "/2", data_dir=tmp_path, worker_heartbeat_s=1, job_retries=1, segment_seconds=1.0)
    connect(settings.redis_url).flushdb()
    return settings, TestClient(create_app(settings))


def media(data: bytes) -> dict:
    with av.open(io.BytesIO(data)) as container:
        video = container.streams.video[0]
        fps = float(video.average_rate)
        pts = [frame.pts for frame in container.decode(video)]
    with av.open(io.BytesIO(data)) as container:
        samples = sum(frame.samples for frame in container.decode(audio=0)) if container.streams.audio else 0
    return {"frames": len(pts), "fps": fps, "audio_samples": samples}


def test_long_clips_are_cut_into_contiguous_segments_and_short_ones_wait_in_the_priority_lane():
    settings = Settings(segment_seconds=20)
    bounds = segment_bounds(3000, 25.0, 20)
    assert len(bounds) == 6 and bounds[0][0] == 0 and bounds[-1][1] is None
    assert all(stop == first for (_, stop), (first, _) in zip(bounds, bounds[1:]))
    assert segment_bounds(10, 25.0, 20) == [(0, None)]
    video = {"kind": "video", "id": "x", "owner": "o", "input_key": "k", "expires_at": now()}
    assert worth_splitting(JobRecord(**video, input={"frames": 3000, "fps": 25.0}), settings)
    assert not worth_splitting(JobRecord(**video, input={"frames": 750, "fps": 25.0}), settings)  # up to 1.5 segments: one piece
    assert not worth_splitting(JobRecord(**{**video, "kind": "image"}, input={"frames": 3000, "fps": 25.0}), settings)
    assert not worth_splitting(JobRecord(**video, input={"frames": 3000, "fps": 25.0}), Settings(segment_seconds=0))
    assert restore_lane("video", 20.0, settings) == PRIORITY_QUEUE and restore_lane("video", 21.0, settings) == RESTORE_QUEUE
    assert restore_lane("image", 0.0, settings) == PRIORITY_QUEUE
    assert restore_lane("video", 5.0, Settings(segment_seconds=0)) == RESTORE_QUEUE


def test_two_workers_restore_the_segments_of_one_clip_and_it_plays_like_the_source(split, tmp_path):
    settings, api = split
    clip = tmp_path / "clip.mp4"
    make_clip(clip, np.random.default_rng(3), sigma=20, frames=100, width=192, height=108, fps=25)
    workers = [start_worker(settings), start_worker(settings)]
    try:
        job = api.post("/v1/jobs", files={"file": ("clip.mp4", clip.read_bytes())}, data={"formats": "mp4,mkv"}).json()
        job = wait_for(api, job["id"], timeout=240)
    finally:
        for worker in workers:
            stop(worker)
    assert job["status"] == "succeeded", job
    assert job["segments"]["total"] == 4 and job["segments"]["done"] == 4 and job["segments"]["redone"] == 0
    assert job["segments"]["frames_done"] == 100
    client = connect(settings.redis_url)
    ran_on = {Job.fetch(f"{job['id']}-segment{i}", connection=client, serializer=JSONSerializer).worker_name for i in range(4)}
    assert len(ran_on) == 2, ran_on  # both workers took segments
    source = media(clip.read_bytes())
    for fmt in ("mp4", "mkv"):
        result = media(api.get(f"/v1/jobs/{job['id']}/result", params={"format": fmt}).content)
        assert (result["frames"], result["fps"]) == (source["frames"], source["fps"]), fmt
        # AAC copied into Matroska keeps its 1024 priming samples, which MP4's edit list hides: one audio frame.
        assert 0 <= result["audio_samples"] - source["audio_samples"] <= (0 if fmt == "mp4" else 1024), fmt
    assert not list((settings.data_dir / "storage" / "jobs" / job["id"] / "segments").glob("*")), "segments are deleted once joined"


def test_a_killed_worker_costs_one_segment_not_the_clip(split, tmp_path):
    settings, api = split
    clip = tmp_path / "clip.mkv"
    make_clip(clip, np.random.default_rng(4), sigma=15, frames=150, width=320, height=180, fps=25, audio=False)
    doomed = start_worker(settings)
    job = api.post("/v1/jobs", files={"file": ("clip.mkv", clip.read_bytes())}).json()
    deadline = time.monotonic() + 120
    while ((api.get(f"/v1/jobs/{job['id']}").json().get("segments") or {}).get("frames_done") or 0) < 5:
        assert time.monotonic() < deadline, "the first segment did not start"
        time.sleep(0.05)
    final = kill_and_replace(doomed, settings, api, job["id"])
    assert final["status"] == "succeeded", final
    assert final["segments"]["redone"] == 1 and final["segments"]["done"] == final["segments"]["total"] == 6
    assert media(api.get(f"/v1/jobs/{job['id']}/result").content)["frames"] == 150


def restored_by_one_worker(settings, api, name: str, body: bytes, data: dict[str, str] | None = None) -> dict:
    """The finished job of a file restored by one worker (its segments and their join)."""
    worker = start_worker(settings)
    try:
        return wait_for(api, api.post("/v1/jobs", files={"file": (name, body)}, data=data or {}).json()["id"], timeout=240)
    finally:
        stop(worker)


def test_a_split_clip_is_upscaled_segment_by_segment_and_joined_at_the_new_size(split, tmp_path):
    settings, api = split
    clip = tmp_path / "clip.mp4"
    make_clip(clip, np.random.default_rng(4), sigma=15, frames=60, width=96, height=64, fps=25)
    job = restored_by_one_worker(settings, api, "clip.mp4", clip.read_bytes(), {"task": "upscale", "scale": "2"})
    assert job["status"] == "succeeded", job
    assert job["segments"]["total"] == 2 and "image-upscale-x2" in job["model"]["name"]
    data = api.get(f"/v1/jobs/{job['id']}/result").content
    with av.open(io.BytesIO(data)) as container:
        assert (container.streams.video[0].width, container.streams.video[0].height) == (192, 128)
    source, result = media(clip.read_bytes()), media(data)
    assert result == source  # frames, fps and audio samples


def test_damaged_data_in_a_split_clip_is_skipped_and_the_job_says_where(split, tmp_path):
    """Each segment notes the damage among its own frames; the join puts all of it in the job's input."""
    settings, api = split
    damaged, decoded, damage = damaged_clip(tmp_path, 0.02)
    job = restored_by_one_worker(settings, api, "damaged.mp4", damaged.read_bytes())
    assert job["status"] == "succeeded", job
    assert job["segments"]["total"] == 4 and job["input"]["damaged_at"] == pytest.approx(damage, abs=0.3)  # decoder threads: a few frames late
    assert media(api.get(f"/v1/jobs/{job['id']}/result").content)["frames"] == decoded


def test_a_lightly_noisy_lossy_clip_split_in_segments_comes_back_as_its_own_stream(split, tmp_path):
    """Each segment measures what its MP4 encode costs against what it restored; the join adds them up and,
    as for an unsplit clip, makes the MP4 result the input's own stream, saying why."""
    settings, api = split
    clip = ffmpeg_testsrc2(tmp_path / "light.mp4", noise=1, seconds=3.0)
    job = restored_by_one_worker(settings, api, "light.mp4", clip.read_bytes())
    assert job["status"] == "succeeded", job
    assert job["segments"]["total"] == 3 and "own video stream" in job["result_notes"]["mp4"]
    result = api.get(f"/v1/jobs/{job['id']}/result").content
    assert video_packets(result) == video_packets(clip) and media(result)["audio_samples"] > 0
