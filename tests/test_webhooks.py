"""Webhooks: delivered by a worker of their own queue, signed with HMAC-SHA256, retried with backoff;
and every queued payload is JSON (RQ's JSON serializer, never pickle)."""
from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
import redis
from fastapi.testclient import TestClient

from app.main import create_app
from core.jobs import JobStore
from core.queues import PRIORITY_QUEUE, WEBHOOK_QUEUE, enqueue_webhook, queue
from core.settings import Settings
from tests.conftest import start_worker, stop
from tests.helpers import npy_bytes

SECRET = "webhook-test-secret"


class Receiver(BaseHTTPRequestHandler):
    """Fails the first delivery with 500, accepts the next ones; remembers each (time, headers, body)."""

    deliveries: list[tuple[float, dict, bytes]] = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.deliveries.append((time.monotonic(), dict(self.headers), body))
        self.send_response(500 if len(self.deliveries) == 1 else 200)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    Receiver.deliveries = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/hook"
    server.shutdown()


def test_webhook_is_signed_retried_with_backoff_and_sent_by_its_own_worker(redis_url, tmp_path, receiver):
    settings = Settings(redis_url=redis_url.rsplit("/", 1)[0] + "/7", data_dir=tmp_path, webhook_secret=SECRET)
    client = redis.Redis.from_url(settings.redis_url)
    client.flushdb()
    api = TestClient(create_app(settings))
    job_id = api.post("/v1/jobs", files={"file": ("s.npy", npy_bytes(np.full((4, 32, 32), 100, np.uint16)))}, data={"webhook": receiver}).json()["id"]
    JobStore(client).finish(job_id, "failed", settings.result_ttl, error="for the webhook test")  # as a worker would end it
    enqueue_webhook(client, job_id)

    sender = start_worker(settings, WEBHOOK_QUEUE)
    try:
        deadline = time.monotonic() + 60
        while len(Receiver.deliveries) < 2:
            assert time.monotonic() < deadline, f"{len(Receiver.deliveries)} delivery attempt(s) in 60 s"
            time.sleep(0.1)
    finally:
        stop(sender)
    (first, headers, body), (second, _, again) = Receiver.deliveries[:2]
    assert second - first >= 4.5, "the retry waits for its backoff (5 s)"
    assert body == again and json.loads(body) == api.get(f"/v1/jobs/{job_id}").json()
    assert headers["X-Restora-Signature"] == "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert queue(client, PRIORITY_QUEUE).job_ids == [job_id], "the webhook worker never takes restore jobs"

    for rq_job_id in (job_id, *queue(client, WEBHOOK_QUEUE).finished_job_registry.get_job_ids()):
        payload = zlib.decompress(client.hget(f"rq:job:{rq_job_id}", "data"))
        assert json.loads(payload)[0] in ("workers.tasks.restore_job", "workers.webhooks.deliver"), "queued payloads are JSON, not pickle"
