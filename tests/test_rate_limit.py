"""Per-key submit rate limit: 429 with Retry-After, per key, shared by every API replica through Redis."""
from __future__ import annotations

import numpy as np
import redis
from fastapi.testclient import TestClient

from app.main import create_app
from core.settings import Settings
from tests.helpers import npy_bytes

STACK = npy_bytes(np.full((4, 32, 32), 100, np.uint16))


def test_submits_over_the_limit_get_429_per_key_across_replicas(redis_url, tmp_path):
    settings = Settings(
        redis_url=redis_url.rsplit("/", 1)[0] + "/5", data_dir=tmp_path, api_keys="key-a,key-b", rate_limit_submits=3, rate_limit_window_s=600
    )
    redis.Redis.from_url(settings.redis_url).flushdb()
    replica_1, replica_2 = TestClient(create_app(settings)), TestClient(create_app(settings))
    a, b = {"Authorization": "Bearer key-a"}, {"Authorization": "Bearer key-b"}

    def submit(api: TestClient, headers: dict):
        return api.post("/v1/jobs", files={"file": ("s.npy", STACK)}, headers=headers)

    assert [submit(api, a).status_code for api in (replica_1, replica_2, replica_1)] == [202, 202, 202]
    refused = submit(replica_2, a)
    assert refused.status_code == 429, refused.text
    assert "rate limit" in refused.json()["detail"]
    assert 1 <= int(refused.headers["Retry-After"]) <= 600
    assert submit(replica_1, b).status_code == 202, "another key has its own budget"
    assert replica_1.get("/v1/jobs", headers=a).status_code == 200, "only submits are limited"
