"""API keys: no key 401, someone else's job 404 (never 403)."""
from __future__ import annotations

import numpy as np
from fastapi.testclient import TestClient

from app.main import create_app
from tests.helpers import npy_bytes


def test_keys_are_required_and_jobs_are_private(settings):
    api = TestClient(create_app(settings.model_copy(update={"api_keys": "key-alice,key-bob"})))
    data = npy_bytes(np.zeros((4, 32, 32), np.uint16))
    assert api.post("/v1/jobs", files={"file": ("s.npy", data)}).status_code == 401
    assert api.get("/v1/jobs", headers={"Authorization": "Bearer wrong"}).status_code == 401
    alice, bob = {"Authorization": "Bearer key-alice"}, {"Authorization": "Bearer key-bob"}
    job = api.post("/v1/jobs", files={"file": ("s.npy", data)}, headers=alice).json()
    for path in (f"/v1/jobs/{job['id']}", f"/v1/jobs/{job['id']}/result"):
        assert api.get(path, headers=bob).status_code == 404
    assert api.delete(f"/v1/jobs/{job['id']}", headers=bob).status_code == 404
    assert job["id"] not in [j["id"] for j in api.get("/v1/jobs", headers=bob).json()["jobs"]]
    assert api.get(f"/v1/jobs/{job['id']}", headers=alice).status_code == 200
    api.delete(f"/v1/jobs/{job['id']}", headers=alice)
    assert api.get("/healthz").status_code == 200  # liveness needs no key
