"""Canceling a queued job takes its task off the queue, and a worker taking the task at the same
instant changes nothing for the client (the race that once answered 500)."""
from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient
from rq.job import JobStatus

from app.main import create_app
from core.queues import PRIORITY_QUEUE, connect, queue
from core.settings import Settings
from tests.helpers import npy_bytes


@pytest.fixture
def api_without_workers(redis_url, tmp_path) -> TestClient:
    settings = Settings(redis_url=redis_url.rsplit("/", 1)[0] + "/8", data_dir=tmp_path)
    connect(settings.redis_url).flushdb()
    return TestClient(create_app(settings))


def submit(api: TestClient) -> str:
    response = api.post("/v1/jobs", files={"file": ("s.npy", npy_bytes(np.full((4, 32, 32), 100, np.uint16)))})
    assert response.status_code == 202, response.text
    return response.json()["id"]


def test_cancel_takes_the_task_off_its_queue(api_without_workers):
    job_id = submit(api_without_workers)
    lane = queue(connect(api_without_workers.app.state.settings.redis_url), PRIORITY_QUEUE)
    assert lane.job_ids == [job_id]
    canceled = api_without_workers.delete(f"/v1/jobs/{job_id}")
    assert canceled.status_code == 200 and canceled.json()["status"] == "canceled"
    assert lane.job_ids == [] and lane.fetch_job(job_id).get_status() == JobStatus.CANCELED


def test_cancel_while_a_worker_takes_the_task(api_without_workers):
    job_id = submit(api_without_workers)
    lane = queue(connect(api_without_workers.app.state.settings.redis_url), PRIORITY_QUEUE)
    assert lane.pop_job_id() == job_id  # what a worker does first when it takes a task
    canceled = api_without_workers.delete(f"/v1/jobs/{job_id}")
    assert canceled.status_code == 200 and canceled.json()["status"] == "canceled"
    assert lane.fetch_job(job_id).get_status() == JobStatus.QUEUED  # the worker's to finish; it finds the record canceled
