"""Test setup: a real Redis on a free port, real worker processes, the real API in-process."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import uvicorn
from fastapi.testclient import TestClient

from app.main import create_app
from core.settings import Settings
from restora.redis_server import RedisServer, free_port

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory) -> str:
    with RedisServer(tmp_path_factory.mktemp("redis")) as url:
        yield url


def start_worker(settings: Settings, *queues: str) -> subprocess.Popen:
    """A real `restora worker` process with the test's settings."""
    env = os.environ | {
        "RESTORA_REDIS_URL": settings.redis_url,
        "RESTORA_DATA_DIR": str(settings.data_dir),
        "RESTORA_WORKER_HEARTBEAT_S": str(settings.worker_heartbeat_s),
        "RESTORA_WORKER_STOP_GRACE_S": str(settings.worker_stop_grace_s),
        "RESTORA_SEGMENT_SECONDS": str(settings.segment_seconds),
        "RESTORA_WEBHOOK_SECRET": settings.webhook_secret or "",
    }
    if settings.storage_url:
        env |= {"RESTORA_STORAGE_URL": settings.storage_url, "RESTORA_S3_ENDPOINT_URL": settings.s3_endpoint_url or ""}
    args = [sys.executable, "-m", "restora.cli", "worker"] + [a for q in queues for a in ("--queue", q)]
    return subprocess.Popen(args, env=env, cwd=ROOT)


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="session")
def settings(redis_url, tmp_path_factory) -> Settings:
    return Settings(redis_url=redis_url, data_dir=tmp_path_factory.mktemp("data"), worker_heartbeat_s=1, max_upload_mb=64)


@pytest.fixture(scope="session")
def worker(settings):
    """One restore worker for the whole session, ready once it has published its models."""
    process = start_worker(settings)
    api = TestClient(create_app(settings))
    deadline = time.monotonic() + 120
    while api.get("/readyz").status_code != 200:
        if process.poll() is not None or time.monotonic() > deadline:
            stop(process)
            pytest.fail("the worker did not become ready")
        time.sleep(0.2)
    yield process
    stop(process)


@pytest.fixture
def api(settings) -> TestClient:
    return TestClient(create_app(settings))


@pytest.fixture(scope="session")
def live_url(settings) -> str:
    """The API served for real by uvicorn on a free port (in a thread), for browsers and HTTP clients."""
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=free_port(), log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{server.config.port}"
    server.should_exit = True
    thread.join(10)


def wait_for(api: TestClient, job_id: str, timeout: float = 120, until=("succeeded", "failed", "canceled")) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        job = api.get(f"/v1/jobs/{job_id}").json()
        if job["status"] in until:
            return job
        assert time.monotonic() < deadline, f"job still {job['status']} ({job['stage']}) after {timeout} s"
        time.sleep(0.1)


def kill_and_replace(doomed: subprocess.Popen, settings: Settings, api: TestClient, job_id: str, timeout: float = 240) -> dict:
    """SIGKILL ``doomed`` mid-job, start a new worker, and return the job once it has ended."""
    doomed.send_signal(signal.SIGKILL)
    doomed.wait()
    killed_at = time.monotonic()
    rescuer = start_worker(settings)
    try:
        final = wait_for(api, job_id, timeout=timeout)
    finally:
        stop(rescuer)
    print(f"job ended {time.monotonic() - killed_at:.1f} s after the kill")
    return final
