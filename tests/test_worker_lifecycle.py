"""Worker stops and stalls lose nothing and never produce a job twice (real Redis, real worker processes).

- SIGTERM: the current job finishes within the stop grace period, or is requeued first in line;
  the worker takes no new job and exits cleanly.
- A worker that stalls past its lease (SIGSTOP) has its job retried elsewhere; when it wakes up it
  can neither overwrite, delete nor finish the job a second time.
"""
from __future__ import annotations

import signal
import subprocess
import time
from datetime import datetime

import numpy as np
import pytest
import redis
from fastapi.testclient import TestClient
from rq import Worker

from app.main import create_app
from core.jobs import JobStore
from core.queues import PRIORITY_QUEUE, queue
from core.settings import Settings
from models.video.synthetic import make_clip
from tests.conftest import start_worker, stop, wait_for
from tests.helpers import npy_bytes


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> bytes:
    """A clip that takes a worker a few seconds, with a progress checkpoint per frame."""
    path = tmp_path_factory.mktemp("clip") / "clip.mkv"
    make_clip(path, np.random.default_rng(5), sigma=15, frames=80, width=224, height=128, audio=False)
    return path.read_bytes()


@pytest.fixture
def isolated(redis_url, tmp_path):
    """A Redis database of its own, so the session worker cannot take these jobs."""
    settings = Settings(redis_url=redis_url.rsplit("/", 1)[0] + "/3", data_dir=tmp_path, worker_heartbeat_s=1, job_retries=1)
    redis.Redis.from_url(settings.redis_url).flushdb()
    return settings, TestClient(create_app(settings))


def running_mid_job(api: TestClient, job_id: str) -> None:
    wait_for(api, job_id, until=("running",), timeout=120)
    deadline = time.monotonic() + 60
    while api.get(f"/v1/jobs/{job_id}").json()["progress"] < 0.05:
        assert time.monotonic() < deadline, "the job made no progress"
        time.sleep(0.05)


def start_workers(*settings: Settings) -> list[subprocess.Popen]:
    """Worker processes, returned once all of them are listening (so each takes one job in turn)."""
    workers = [start_worker(s) for s in settings]
    client = redis.Redis.from_url(settings[0].redis_url)
    deadline = time.monotonic() + 120
    while Worker.count(connection=client) < len(workers):
        if time.monotonic() > deadline or any(w.poll() is not None for w in workers):
            for worker in workers:
                stop(worker)
            pytest.fail("the workers did not start")
        time.sleep(0.1)
    return workers


def worker_running(api: TestClient, job_id: str, workers: list[subprocess.Popen]) -> tuple[subprocess.Popen, subprocess.Popen]:
    """(the worker process running ``job_id``, the other one)."""
    pids = {w.pid for w in Worker.all(connection=api.app.state.redis) if any(e.job_id == job_id for e in w.get_current_executions(refresh=True))}
    busy = [w for w in workers if w.pid in pids]
    assert len(busy) == 1, f"expected one worker on the job, found pids {pids}"
    return busy[0], next(w for w in workers if w is not busy[0])


def exit_code(worker: subprocess.Popen, timeout: float) -> int:
    try:
        return worker.wait(timeout)
    except subprocess.TimeoutExpired:
        stop(worker)
        pytest.fail(f"the worker did not exit within {timeout} s of SIGTERM")


def test_sigterm_finishes_the_job_within_the_grace_period_or_requeues_it_first_in_line(isolated, clip):
    settings, api = isolated
    patient, hasty = workers = start_workers(settings.model_copy(update={"worker_stop_grace_s": 120}), settings.model_copy(update={"worker_stop_grace_s": 0}))
    try:
        jobs = [api.post("/v1/jobs", files={"file": ("clip.mkv", clip)}).json()["id"] for _ in range(2)]
        waiting = api.post("/v1/jobs", files={"file": ("s.npy", npy_bytes(np.full((4, 32, 32), 100, np.uint16)))}).json()["id"]
        for job_id in jobs:
            running_mid_job(api, job_id)
        finished, requeued = sorted(jobs, key=lambda job_id: worker_running(api, job_id, workers)[0] is hasty)
        signaled_at = datetime.now().astimezone()
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        assert exit_code(hasty, timeout=30) == 0
        assert exit_code(patient, timeout=120) == 0
    finally:
        for worker in workers:
            stop(worker)
    store, lane = JobStore(api.app.state.redis), queue(api.app.state.redis, PRIORITY_QUEUE)  # short clips share the images' lane

    done = api.get(f"/v1/jobs/{finished}").json()
    assert done["status"] == "succeeded", done
    assert datetime.fromisoformat(done["finished_at"]) > signaled_at, "the job must have been mid-run at SIGTERM"
    assert store.get(finished).attempts == 1 and api.get(f"/v1/jobs/{finished}/result").status_code == 200

    again = api.get(f"/v1/jobs/{requeued}").json()
    assert (again["status"], again["stage"]) == ("queued", "requeued: its worker stopped"), again
    assert lane.job_ids == [requeued, waiting], "the requeued job goes back first in line; stopping workers take no new job"
    assert lane.fetch_job(requeued).retries_left == settings.job_retries, "a graceful stop must not use up a crash retry"
    assert Worker.count(connection=api.app.state.redis) == 0, "stopped workers deregister"


def test_a_stalled_worker_cannot_finish_or_undo_a_job_retried_elsewhere(isolated, clip):
    settings, api = isolated
    workers = start_workers(settings, settings)
    try:
        job = api.post("/v1/jobs", files={"file": ("clip.mkv", clip)}).json()
        running_mid_job(api, job["id"])
        stalled, rescuer = worker_running(api, job["id"], workers)
        stalled.send_signal(signal.SIGSTOP)  # its lease runs out; the job is retried by the rescuer
        done = wait_for(api, job["id"], timeout=180)
        assert done["status"] == "succeeded", done
        result = api.get(f"/v1/jobs/{job['id']}/result")
        assert result.status_code == 200

        stalled.send_signal(signal.SIGCONT)  # wakes up mid-job, on an attempt that is no longer current
        stalled.send_signal(signal.SIGTERM)
        assert exit_code(stalled, timeout=60) == 0
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGCONT)
            stop(worker)
    after = api.get(f"/v1/jobs/{job['id']}").json()
    assert after == done, "the stale run must not change the finished job"
    assert JobStore(api.app.state.redis).get(job["id"]).attempts == 2
    again = api.get(f"/v1/jobs/{job['id']}/result")
    assert again.status_code == 200 and again.content == result.content, "the stale run must not touch the stored result"


def test_a_worker_whose_queue_loop_fails_exits_with_an_error(redis_url, tmp_path):
    """RQ's loop quits on an error it does not handle (here Redis refusing the queue's key, which holds
    the wrong type). The process then exits non-zero, for its supervisor to start another; exiting 0
    looked like a requested stop, and `restart: on-failure` or a systemd unit would have left it down."""
    settings = Settings(redis_url=redis_url.rsplit("/", 1)[0] + "/9", data_dir=tmp_path, worker_heartbeat_s=1)
    client = redis.Redis.from_url(settings.redis_url)
    client.flushdb()
    client.set(queue(client, PRIORITY_QUEUE).key, "not a list")
    worker = start_worker(settings)
    try:
        code = worker.wait(180)
    except subprocess.TimeoutExpired:
        stop(worker)
        pytest.fail("the worker kept running on a queue it cannot read")
    finally:
        client.flushdb()
    assert code != 0
