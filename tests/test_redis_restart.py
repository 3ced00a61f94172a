"""With the production Redis settings, jobs survive a Redis restart; meanwhile the API answers 503."""
from __future__ import annotations

import numpy as np
from fastapi.testclient import TestClient

from app.main import create_app
from core.queues import PRIORITY_QUEUE, queue
from core.settings import Settings
from restora.redis_server import RedisServer
from tests.helpers import npy_bytes


def test_queued_jobs_survive_a_redis_restart_and_the_api_says_503_meanwhile(tmp_path):
    server = RedisServer(tmp_path / "redis")
    url = server.start()
    try:
        api = TestClient(create_app(Settings(redis_url=url, data_dir=tmp_path / "data")))
        ids = [api.post("/v1/jobs", files={"file": ("s.npy", npy_bytes(np.zeros((4, 32, 32), np.uint16)))}).json()["id"] for _ in range(3)]
        server.stop()
        down = api.get(f"/v1/jobs/{ids[0]}")
        assert down.status_code == 503 and "unavailable" in down.json()["detail"]
        assert api.post("/v1/jobs", files={"file": ("s.npy", npy_bytes(np.zeros((4, 32, 32), np.uint16)))}).status_code == 503
        assert api.get("/readyz").status_code == 503
        assert api.get("/healthz").status_code == 200
        server.start()
        for job_id in ids:
            assert api.get(f"/v1/jobs/{job_id}").json()["status"] == "queued"
        assert queue(api.app.state.redis, PRIORITY_QUEUE).job_ids == ids
    finally:
        server.stop()
