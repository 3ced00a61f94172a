"""Inputs and results in an S3-compatible bucket: the API and a real worker process share only Redis
and the bucket (a local S3 server, moto's, stands in for AWS or MinIO)."""
from __future__ import annotations

import io
import time
from datetime import timedelta

import boto3
import numpy as np
import pytest
from fastapi.testclient import TestClient
from moto.server import ThreadedMotoServer

from app.main import create_app
from core.jobs import JobRecord, JobStore, now
from core.queues import connect
from core.settings import Settings
from core.storage import S3Storage, get_storage
from restora.redis_server import free_port
from tests.conftest import start_worker, stop, wait_for
from tests.helpers import npy_bytes, synthetic_stack
from workers.expiry import sweep_expired

BUCKET, PREFIX = "restora-test", "restora"
AWS_ENV = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture(scope="module")
def s3_endpoint():
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    with pytest.MonkeyPatch.context() as env:
        for name, value in AWS_ENV.items():
            env.setenv(name, value)
        endpoint = f"http://127.0.0.1:{port}"
        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=BUCKET)
        yield endpoint
    server.stop()


@pytest.fixture(scope="module")
def s3_service(s3_endpoint, redis_url, tmp_path_factory):
    """API + a real worker with RESTORA_STORAGE_URL=s3://..., on their own Redis database."""
    settings = Settings(
        redis_url=redis_url.rsplit("/", 1)[0] + "/5",
        data_dir=tmp_path_factory.mktemp("s3-data"),
        storage_url=f"s3://{BUCKET}/{PREFIX}",
        s3_endpoint_url=s3_endpoint,
        worker_heartbeat_s=1,
    )
    worker = start_worker(settings)
    api = TestClient(create_app(settings))
    deadline = time.monotonic() + 120
    while api.get("/readyz").status_code != 200:
        assert worker.poll() is None and time.monotonic() < deadline, "the S3 worker did not become ready"
        time.sleep(0.2)
    yield api, settings
    stop(worker)


def bucket_keys(settings: Settings, job_id: str) -> set[str]:
    s3 = boto3.client("s3", endpoint_url=settings.s3_endpoint_url)
    listing = s3.list_objects_v2(Bucket=BUCKET, Prefix=f"{PREFIX}/jobs/{job_id}/")
    return {obj["Key"].removeprefix(f"{PREFIX}/jobs/{job_id}/") for obj in listing.get("Contents", [])}


def test_s3_round_trip_then_delete(s3_service):
    api, settings = s3_service
    stack, _ = synthetic_stack("medium", seed=4, frames=12, size=64)
    job_id = api.post("/v1/jobs", files={"file": ("scene.npy", npy_bytes(stack))}).json()["id"]
    job = wait_for(api, job_id)
    assert job["status"] == "succeeded", job["error"]

    assert bucket_keys(settings, job_id) == {"input.npy", "result.npy", "result.tiff", "result.png"}
    assert not (settings.data_dir / "storage").exists(), "nothing may land on the API's local disk"
    response = api.get(f"/v1/jobs/{job_id}/result")
    assert response.status_code == 200 and int(response.headers["content-length"]) == len(response.content)
    restored = np.load(io.BytesIO(response.content))
    assert restored.shape == (64, 64) and restored.dtype == np.float32

    assert api.delete(f"/v1/jobs/{job_id}").status_code == 204
    assert bucket_keys(settings, job_id) == set()


def test_expiry_sweep_deletes_the_objects(s3_service):
    api, settings = s3_service
    stack, _ = synthetic_stack("low", seed=6, frames=8, size=48)
    job_id = api.post("/v1/jobs", files={"file": ("scene.npy", npy_bytes(stack))}).json()["id"]
    assert wait_for(api, job_id)["status"] == "succeeded"
    store = JobStore(api.app.state.redis)
    store.update(job_id, expires_at=store.get(job_id).finished_at - timedelta(seconds=1))

    sweep_expired(store, get_storage(settings), settings)
    assert bucket_keys(settings, job_id) == set()
    assert api.get(f"/v1/jobs/{job_id}/result").status_code == 410


def test_unreachable_bucket_answers_503(redis_url, tmp_path):
    settings = Settings(
        redis_url=redis_url.rsplit("/", 1)[0] + "/6", data_dir=tmp_path, storage_url="s3://nowhere", s3_endpoint_url=f"http://127.0.0.1:{free_port()}"
    )
    with pytest.MonkeyPatch.context() as env:
        for name, value in AWS_ENV.items():
            env.setenv(name, value)
        api = TestClient(create_app(settings))
        response = api.post("/v1/jobs", files={"file": ("scene.npy", npy_bytes(np.zeros((4, 16, 16), np.uint16)))})
    assert response.status_code == 503 and "storage" in response.json()["detail"]
    assert isinstance(get_storage(settings), S3Storage)


def test_expiry_sweep_retries_while_the_bucket_is_unreachable(redis_url, tmp_path):
    settings = Settings(
        redis_url=redis_url.rsplit("/", 1)[0] + "/6", data_dir=tmp_path, storage_url="s3://nowhere", s3_endpoint_url=f"http://127.0.0.1:{free_port()}"
    )
    store = JobStore(connect(settings.redis_url))
    expired = JobRecord(
        id="expired-job", owner="anonymous", status="succeeded", kind="stack", input={}, input_key="jobs/expired-job/input.npy", expires_at=now() - timedelta(seconds=1)
    )
    store.create(expired)
    with pytest.MonkeyPatch.context() as env:
        for name, value in AWS_ENV.items():
            env.setenv(name, value)
        assert sweep_expired(store, get_storage(settings), settings) == 0
    assert "expired-job" in store.due_for_expiry(), "the job must stay due until its files are deleted"
    store.delete(store.get("expired-job"))
