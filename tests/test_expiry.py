"""Expired jobs lose their files to the sweep and answer 410; active jobs are never swept."""
from __future__ import annotations

import os
import threading
import time
from datetime import timedelta

import numpy as np
from fastapi.testclient import TestClient

from app.main import create_app
from core.jobs import JobStore, now
from core.settings import Settings
from core.storage import get_storage, result_key
from tests.helpers import npy_bytes
from workers.expiry import sweep_expired, sweep_staging


def test_sweep_deletes_expired_files_and_result_answers_410(redis_url, tmp_path):
    settings = Settings(redis_url=redis_url.rsplit("/", 1)[0] + "/2", data_dir=tmp_path)
    api = TestClient(create_app(settings))
    store, storage = JobStore(api.app.state.redis), get_storage(settings)
    upload = npy_bytes(np.zeros((4, 32, 32), np.uint16))
    finished, active = (api.post("/v1/jobs", files={"file": ("s.npy", upload)}).json()["id"] for _ in range(2))
    result = storage.path(result_key(finished, "npy"))
    result.write_bytes(upload)
    store.finish(finished, "succeeded", timedelta(seconds=-1), progress=1.0)
    store.update(active, expires_at=now() - timedelta(seconds=1))

    assert sweep_expired(store, storage, settings) == 1
    assert not result.exists() and not storage.path(f"jobs/{finished}").exists()
    assert api.get(f"/v1/jobs/{finished}/result").status_code == 410
    assert api.get(f"/v1/jobs/{finished}").json()["status"] == "succeeded"
    assert storage.exists(store.get(active).input_key), "a queued job's input must survive the sweep"
    assert store.get(active).expires_at > now()


def test_stale_staged_uploads_are_removed(tmp_path):
    fresh, stale = tmp_path / "fresh", tmp_path / "stale"
    fresh.write_bytes(b"x")
    stale.write_bytes(b"x")
    old = time.time() - 7200
    os.utime(stale, (old, old))
    assert sweep_staging(tmp_path) == 1
    assert fresh.exists() and not stale.exists()


def test_the_staging_sweep_survives_uploads_coming_and_going(tmp_path):
    """The API stages each upload and removes it a moment later; files vanishing under the sweep are
    no error (a FileNotFoundError from it once ended a test worker mid-suite: RQ quits on one)."""
    done = threading.Event()

    def uploads() -> None:
        count = 0
        while not done.is_set():
            staged = tmp_path / f"upload{count}"
            staged.write_bytes(b"x")
            staged.unlink()
            count += 1

    thread = threading.Thread(target=uploads)
    thread.start()
    try:
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            assert sweep_staging(tmp_path) == 0
    finally:
        done.set()
        thread.join()
