"""restora.client.Client and `restora submit` against the live session service (uvicorn, Redis, a worker)."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from restora.client import Client, Job, RestoraError
from tests.conftest import ROOT
from tests.helpers import synthetic_stack

pytestmark = pytest.mark.usefixtures("worker")


@pytest.fixture
def client(live_url):
    with Client(live_url) as client:
        yield client


def test_submit_wait_download_list(client, tmp_path):
    stack, _ = synthetic_stack("medium", seed=12, frames=10, size=48)
    np.save(tmp_path / "in.npy", stack)
    job = client.submit(tmp_path / "in.npy", noise_level="medium")
    assert isinstance(job, Job) and job.status == "queued" and job.kind == "stack"

    seen: list[Job] = []
    job = client.wait(job.id, on_progress=seen.append, timeout=120)
    assert job.status == "succeeded" and seen[-1] == job
    assert job.noise.level == "medium" and job.noise.source == "override" and "medium" in job.model.name

    result = client.download(job.id, tmp_path / "out.npy")
    assert np.load(result).shape == (48, 48)
    assert client.download(job.id, tmp_path / "out.tiff", "tiff").stat().st_size > 0
    assert job.id in [j.id for j in client.list(status="succeeded", limit=10)]

    assert client.cancel(job.id) is None  # a finished job is deleted
    with pytest.raises(RestoraError) as gone:
        client.get(job.id)
    assert gone.value.status_code == 404


def test_events_stream_every_state_change_to_a_real_client(client, tmp_path, settings):
    """The SSE stream, read by the client, shows queued -> running -> succeeded and the progress in
    between, in order, and ends by itself; every write of the record published after the stream's
    first event is in it (the writes, heard on Redis directly, are the reference)."""
    import redis

    from core.jobs import events_channel

    stack, _ = synthetic_stack("medium", seed=14, frames=30, size=96)
    np.save(tmp_path / "in.npy", stack)
    job = client.submit(tmp_path / "in.npy")
    listener = redis.Redis.from_url(settings.redis_url).pubsub(ignore_subscribe_messages=True)
    listener.subscribe(events_channel(job.id))
    streamed = list(client.events(job.id, timeout=120))
    published = []
    while (message := listener.get_message(timeout=0.5)) is not None:
        published.append(Job.model_validate_json(message["data"]))
    statuses = [j.status for j in streamed]
    assert statuses[-1] == "succeeded" and "running" in statuses and len(streamed) >= 3
    assert statuses == sorted(statuses, key=["queued", "running", "succeeded"].index)  # never backwards
    assert [j.progress for j in streamed] == sorted(j.progress for j in streamed)
    states = [(j.status, j.progress, j.stage) for j in published]
    start = (streamed[0].status, streamed[0].progress, streamed[0].stage)
    first = states.index(start) if start in states else 0  # else the stream began in a state written before the listener
    assert all(state in [(j.status, j.progress, j.stage) for j in streamed] for state in states[first:])
    assert list(client.events(job.id)) == [streamed[-1]]  # a finished job: its final state, then the end


def test_events_of_an_unknown_job_are_404(client):
    with pytest.raises(RestoraError) as missing:
        list(client.events("no-such-job"))
    assert missing.value.status_code == 404


def test_cancel_a_queued_job(client, tmp_path):
    stack, _ = synthetic_stack("low", seed=13, frames=60, size=128)
    np.save(tmp_path / "in.npy", stack)
    job = client.cancel(client.submit(tmp_path / "in.npy").id)
    assert job.status == "canceled" and job.error
    with pytest.raises(RestoraError) as not_ready:
        client.download(job.id, tmp_path / "out.npy")
    assert not_ready.value.status_code == 409 and not (tmp_path / "out.npy").exists()


def test_restora_submit_fails_with_a_clear_message(live_url, tmp_path):
    (tmp_path / "broken.npy").write_bytes(b"not an array")
    done = subprocess.run(
        [sys.executable, "-m", "restora.cli", "submit", str(tmp_path / "broken.npy"), "-o", str(tmp_path / "out.npy"), "--server", live_url],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 1
    assert "server refused (400)" in done.stderr and "not a readable .npy file" in done.stderr
    assert not (tmp_path / "out.npy").exists()
