"""Finished job records, their owner's job list and the expiry schedule survive a Redis restart (AOF)."""
from __future__ import annotations

import numpy as np
from fastapi.testclient import TestClient

from app.main import create_app
from core.jobs import EXPIRY_KEY, JobStore
from core.settings import Settings
from restora.redis_server import RedisServer
from tests.helpers import npy_bytes


def test_finished_jobs_survive_a_redis_restart(tmp_path):
    server = RedisServer(tmp_path / "redis")
    url = server.start()
    try:
        settings = Settings(redis_url=url, data_dir=tmp_path / "data")
        api = TestClient(create_app(settings))
        store = JobStore(api.app.state.redis)
        ids = [api.post("/v1/jobs", files={"file": ("s.npy", npy_bytes(np.zeros((4, 32, 32), np.uint16)))}).json()["id"] for _ in range(3)]
        for job_id, status in zip(ids, ("succeeded", "failed", "canceled")):
            store.finish(job_id, status, settings.result_ttl, error=None if status == "succeeded" else f"it {status}")
        before = {job_id: api.get(f"/v1/jobs/{job_id}").json() for job_id in ids}

        server.stop()
        assert api.get(f"/v1/jobs/{ids[0]}").status_code == 503
        server.start()

        assert {job_id: api.get(f"/v1/jobs/{job_id}").json() for job_id in ids} == before
        assert [job["id"] for job in api.get("/v1/jobs").json()["jobs"]] == ids[::-1]
        assert api.app.state.redis.zcard(EXPIRY_KEY) == 3, "the expiry sweep still knows when to delete their files"
        print(f"\nredis restart: {len(before)} finished job records before, {sum(store.get(i) is not None for i in ids)} after")
    finally:
        server.stop()
