"""Cross-key access: every way another key (or no key) could reach a job is tried and counted;
none may reveal it. Also: ids are unguessable and stored names never come from the client."""
from __future__ import annotations

import re

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from core.jobs import new_job_id
from core.storage import get_storage
from tests.conftest import wait_for
from tests.helpers import npy_bytes

pytestmark = pytest.mark.usefixtures("worker")
ALICE, BOB = {"Authorization": "Bearer key-alice"}, {"Authorization": "Bearer key-bob"}
STRANGERS = {"bob": (BOB, 404), "no key": ({}, 401), "wrong key": ({"Authorization": "Bearer key-alicE"}, 401), "basic auth": ({"Authorization": "Basic a2V5LWFsaWNl"}, 401)}


def attempts_on(job_id: str) -> list[tuple[str, str, dict]]:
    """(method, path, params) of every request that names or could list ``job_id``."""
    single = [("GET", f"/v1/jobs/{job_id}", {}), ("DELETE", f"/v1/jobs/{job_id}", {})]
    single += [("GET", f"/v1/jobs/{job_id}/result", {"format": fmt} if fmt else {}) for fmt in (None, "npy", "tiff", "png", "mp4")]
    return single + [("GET", "/v1/jobs", {"status": status} if status else {}) for status in (None, "queued", "running", "succeeded", "failed")]


def test_no_other_key_can_see_touch_or_list_a_job(settings):
    api = TestClient(create_app(settings.model_copy(update={"api_keys": "key-alice,key-bob"})))
    finished = api.post("/v1/jobs", files={"file": ("s.npy", npy_bytes(np.full((4, 32, 32), 300, np.uint16)))}, headers=ALICE).json()["id"]
    alice = TestClient(api.app, headers=ALICE)
    assert wait_for(alice, finished)["status"] == "succeeded"
    just_submitted = api.post("/v1/jobs", files={"file": ("t.npy", npy_bytes(np.full((8, 64, 64), 300, np.uint16)))}, headers=ALICE).json()["id"]

    tried = leaked = 0
    for job_id in (finished, just_submitted):
        for who, (headers, expected) in STRANGERS.items():
            for method, path, params in attempts_on(job_id):
                response = api.request(method, path, params=params, headers=headers)
                tried += 1
                if job_id in path:  # must answer exactly as for an id that does not exist
                    unknown = new_job_id()
                    control = api.request(method, path.replace(job_id, unknown), params=params, headers=headers)
                    revealed = response.status_code != expected or response.text.replace(job_id, "ID") != control.text.replace(unknown, "ID")
                else:  # a listing must not contain it
                    revealed = job_id in response.text or response.status_code not in (200, expected)
                if revealed:
                    leaked += 1
                    print(f"LEAK: {who} {method} {path} {params} -> {response.status_code} {response.text[:200]}")
    print(f"\ncross-key access: {tried} attempts, {leaked} leaked")
    assert leaked == 0
    assert tried == 2 * len(STRANGERS) * len(attempts_on(finished))
    assert alice.get(f"/v1/jobs/{finished}/result").status_code == 200, "the owner's job survived the strangers' DELETEs"
    assert alice.get(f"/v1/jobs/{just_submitted}").json()["status"] != "canceled", "the strangers' DELETEs did nothing"
    alice.delete(f"/v1/jobs/{just_submitted}")


def test_ids_are_unguessable():
    ids = {new_job_id() for _ in range(10_000)}
    assert len(ids) == 10_000
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{22}", i) for i in ids), "22 URL-safe characters: 128 random bits"


def test_stored_names_never_come_from_the_client(api, settings):
    hostile = "../../../../tmp/evil name;rm -rf.npy"
    job = api.post("/v1/jobs", files={"file": (hostile, npy_bytes(np.full((4, 32, 32), 300, np.uint16)))}).json()
    assert job["input"]["filename"] == hostile  # reported back as given, but never used as a path
    stored = get_storage(settings).path(f"jobs/{job['id']}/input.npy")
    assert stored.is_file()
    assert sorted(p.name for p in stored.parent.iterdir()) == ["input.npy"]
    api.delete(f"/v1/jobs/{job['id']}")
