"""Metrics at /metrics, JSON logs with the job id, and an OpenAPI document with examples everywhere."""
from __future__ import annotations

import io
import json
import logging

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families
from rq import SimpleWorker
from rq.serializers import JSONSerializer

from app.main import create_app
from core.logs import json_handler
from core.queues import connect, queue
from core.settings import Settings
from models.video.synthetic import make_clip
from tests.conftest import wait_for
from tests.helpers import npy_bytes, synthetic_stack


def samples(api) -> dict[tuple[str, frozenset], float]:
    text = api.get("/metrics").text
    return {(s.name, frozenset(s.labels.items())): s.value for family in text_string_to_metric_families(text) for s in family.samples}


@pytest.mark.usefixtures("worker")
def test_metrics_cover_queues_jobs_uploads_errors_workers_and_requests(api):
    stack, _ = synthetic_stack("low", seed=9, frames=8, size=48)
    upload = npy_bytes(stack)
    job = wait_for(api, api.post("/v1/jobs", files={"file": ("s.npy", upload)}).json()["id"])
    assert job["status"] == "succeeded"
    assert api.get("/v1/jobs/no-such-job").status_code == 404

    metrics = samples(api)
    assert metrics[("restora_queue_depth", frozenset({("queue", "restora-restore")}))] >= 0
    assert ("restora_queue_depth", frozenset({("queue", "restora-webhooks")})) in metrics
    assert ("restora_jobs_active", frozenset({("status", "running")})) in metrics
    assert metrics[("restora_jobs_finished_total", frozenset({("kind", "stack"), ("status", "succeeded")}))] >= 1
    series = {("kind", "stack"), ("noise_level", job["noise"]["level"])}
    assert metrics[("restora_job_duration_seconds_count", frozenset(series))] >= 1
    assert metrics[("restora_job_duration_seconds_bucket", frozenset(series | {("le", "+Inf")}))] >= 1
    assert metrics[("restora_upload_bytes_total", frozenset())] == len(upload)
    assert metrics[("restora_jobs_submitted_total", frozenset({("kind", "stack")}))] == 1
    assert metrics[("restora_http_errors_total", frozenset({("code", "404")}))] == 1
    assert metrics[("restora_workers", frozenset())] >= 1
    assert metrics[("restora_http_requests_total", frozenset({("handler", "/v1/jobs"), ("method", "POST"), ("status", "202")}))] == 1


def log_two_lines(job_id: str) -> None:
    logging.getLogger("restora.worker").info("working on it")
    logging.getLogger("models.pipeline").warning("deep in the pipeline")


def test_every_log_line_of_a_job_is_json_with_its_job_id(redis_url):
    client = connect(redis_url.rsplit("/", 1)[0] + "/7")
    client.flushdb()
    buffer = io.StringIO()
    handler = json_handler(buffer)
    root, level = logging.getLogger(), logging.getLogger().level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        logging.getLogger("restora.worker").warning("between jobs")
        queue(client, "restora-log-test").enqueue("tests.test_observability.log_two_lines", "job-123")
        SimpleWorker([queue(client, "restora-log-test")], connection=client, serializer=JSONSerializer).work(burst=True)
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    lines = [json.loads(line) for line in buffer.getvalue().splitlines()]
    assert {"time", "level", "logger", "message"} <= set(lines[0]) and "job_id" not in lines[0]
    in_job = [line for line in lines if line["message"] in ("working on it", "deep in the pipeline")]
    assert len(in_job) == 2 and all(line["job_id"] == "job-123" for line in in_job)


def resolve(spec: dict, schema: dict) -> dict:
    ref = schema.get("$ref")
    return spec["components"]["schemas"][ref.rsplit("/", 1)[1]] if ref else schema


def test_every_operation_is_documented_with_examples(api):
    spec = api.get("/openapi.json").json()
    operations = [(path, method, op) for path, item in spec["paths"].items() for method, op in item.items()]
    assert len(operations) >= 9
    for path, method, op in operations:
        where = f"{method.upper()} {path}"
        assert op.get("summary") and op.get("description"), f"{where} needs a summary and a description"
        for code, response in op["responses"].items():
            if code == "204":
                continue
            assert response.get("content"), f"{where} {code} documents no content"
            for media, body in response["content"].items():
                schema = resolve(spec, body.get("schema", {}))
                assert body.get("example") or body.get("examples") or schema.get("examples"), f"{where} {code} {media} has no example"


@pytest.fixture
def queue_only_api(redis_url, tmp_path) -> TestClient:
    """An API whose jobs stay queued (no worker on its Redis database): previews need no worker."""
    return TestClient(create_app(Settings(redis_url=redis_url.rsplit("/", 1)[0] + "/8", data_dir=tmp_path)))


def test_previews_of_an_image_and_a_video(queue_only_api, tmp_path):
    rgb = np.random.default_rng(0).integers(0, 255, (30, 50, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG")
    make_clip(tmp_path / "clip.mp4", np.random.default_rng(0), sigma=10.0, frames=5, width=64, height=48, fps=10, audio=False)
    inputs = [("frame.png", buffer.getvalue(), (50, 30), "image/png"), ("clip.mp4", (tmp_path / "clip.mp4").read_bytes(), (64, 48), "video/mp4")]
    for name, data, size, media in inputs:
        job_id = queue_only_api.post("/v1/jobs", files={"file": (name, data)}).json()["id"]
        assert queue_only_api.get(f"/v1/jobs/{job_id}/input").headers["content-type"] == media
        preview = queue_only_api.get(f"/v1/jobs/{job_id}/input", params={"format": "png"})
        assert preview.status_code == 200 and Image.open(io.BytesIO(preview.content)).size == size


def test_input_preview_and_original(api):
    stack, _ = synthetic_stack("medium", seed=2, frames=6, size=40)
    upload = npy_bytes(stack.transpose(1, 2, 0).copy())
    job_id = api.post("/v1/jobs", files={"file": ("hwt.npy", upload)}, data={"layout": "hwt"}).json()["id"]
    original = api.get(f"/v1/jobs/{job_id}/input")
    assert original.status_code == 200 and original.content == upload
    preview = api.get(f"/v1/jobs/{job_id}/input", params={"format": "png"})
    assert preview.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(preview.content)).size == (40, 40)
    assert api.get(f"/v1/jobs/{job_id}/input", params={"format": "gif"}).status_code == 422
    assert api.get("/v1/jobs/nope/input").status_code == 404
