"""A worker killed mid-job loses nothing: another worker picks the job up and finishes it."""
from __future__ import annotations

import time

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from core.settings import Settings
from models.video.synthetic import make_clip
from tests.conftest import kill_and_replace, start_worker, wait_for


@pytest.fixture
def isolated(redis_url, tmp_path):
    """Own queue namespace is not needed: these tests stop the session worker's competition by using a fresh Redis DB."""
    settings = Settings(redis_url=redis_url.rsplit("/", 1)[0] + "/1", data_dir=tmp_path, worker_heartbeat_s=1, job_retries=1)
    return settings, TestClient(create_app(settings))


def test_sigkill_mid_job_is_recovered_by_another_worker(isolated, tmp_path):
    settings, api = isolated
    clip = tmp_path / "clip.mkv"
    make_clip(clip, np.random.default_rng(2), sigma=15, frames=120, width=320, height=180, audio=False)
    doomed = start_worker(settings)
    job = api.post("/v1/jobs", files={"file": ("clip.mkv", clip.read_bytes())}).json()
    wait_for(api, job["id"], until=("running",), timeout=120)
    deadline = time.monotonic() + 60
    while api.get(f"/v1/jobs/{job['id']}").json()["progress"] < 0.05 and time.monotonic() < deadline:
        time.sleep(0.1)
    final = kill_and_replace(doomed, settings, api, job["id"])
    assert final["status"] == "succeeded", final
    assert api.get(f"/v1/jobs/{job['id']}/result").status_code == 200
