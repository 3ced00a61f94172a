"""Limits not covered elsewhere: the queue-length cap (429), the storage cap (507) and the video duration and resolution caps (413)."""
from __future__ import annotations

import numpy as np
import pytest
import redis
from fastapi.testclient import TestClient

from app.main import create_app
from core.settings import Settings
from models.video.synthetic import make_clip
from tests.helpers import npy_bytes


@pytest.fixture
def no_worker_settings(redis_url, tmp_path) -> Settings:
    """A Redis database without workers, so queued jobs stay queued."""
    settings = Settings(redis_url=redis_url.rsplit("/", 1)[0] + "/6", data_dir=tmp_path)
    redis.Redis.from_url(settings.redis_url).flushdb()
    return settings


def test_a_full_queue_answers_429(no_worker_settings):
    api = TestClient(create_app(no_worker_settings.model_copy(update={"max_queued_jobs": 2})))
    stack = npy_bytes(np.full((4, 32, 32), 100, np.uint16))
    assert [api.post("/v1/jobs", files={"file": ("s.npy", stack)}).status_code for _ in range(2)] == [202, 202]
    full = api.post("/v1/jobs", files={"file": ("s.npy", stack)})
    assert full.status_code == 429 and "queue is full" in full.json()["detail"]


def test_storage_cap_refuses_uploads_with_507_until_files_are_deleted(no_worker_settings):
    stack = npy_bytes(np.full((4, 128, 128), 100, np.uint16))  # 131 kB
    api = TestClient(create_app(no_worker_settings.model_copy(update={"max_storage_gb": 300e3 / 1e9})))  # 300 kB
    first, second = (api.post("/v1/jobs", files={"file": ("s.npy", stack)}) for _ in range(2))
    assert (first.status_code, second.status_code) == (202, 202)
    full = api.post("/v1/jobs", files={"file": ("s.npy", stack)})
    assert full.status_code == 507 and "storage is full" in full.json()["detail"]
    assert not any(no_worker_settings.staging_dir.glob("*")), "the refused upload must not stay in staging"
    assert api.get("/readyz").status_code in (200, 503)  # the service still answers (no worker here)
    assert api.delete(f"/v1/jobs/{first.json()['id']}").status_code == 200  # canceled: its files stay until deleted
    assert api.delete(f"/v1/jobs/{first.json()['id']}").status_code == 204  # deleted with its files: space is free again
    assert api.post("/v1/jobs", files={"file": ("s.npy", stack)}).status_code == 202


@pytest.mark.parametrize(
    "limit,words", [({"max_video_seconds": 1.0}, "2 s video exceeds"), ({"max_video_pixels": 64 * 48 - 1}, "64x48 exceed")], ids=["duration", "resolution"]
)
def test_videos_over_the_duration_or_resolution_cap_are_413(no_worker_settings, tmp_path, limit, words):
    clip = tmp_path / "clip.mkv"
    make_clip(clip, np.random.default_rng(0), sigma=5, frames=50, width=64, height=48, fps=25, audio=False)
    api = TestClient(create_app(no_worker_settings.model_copy(update=limit)))
    response = api.post("/v1/jobs", files={"file": ("clip.mkv", clip.read_bytes())})
    assert response.status_code == 413 and words in response.json()["detail"], response.text
    relaxed = TestClient(create_app(no_worker_settings))
    assert relaxed.post("/v1/jobs", files={"file": ("clip.mkv", clip.read_bytes())}).status_code == 202
