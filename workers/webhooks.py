"""Webhook delivery: POST the final job JSON to the client's URL, signed, with a timeout.

Runs on its own queue; a failed delivery raises so RQ retries it with backoff (see ``enqueue_webhook``).
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging

import httpx

from workers.runtime import current

log = logging.getLogger("restora.webhooks")
SIGNATURE_HEADER = "X-Restora-Signature"
TIMEOUT_S = 10.0


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def deliver(job_id: str) -> int:
    rt = current()
    job = rt.store.get(job_id)
    if job is None or not job.options.webhook:
        return 0
    body = json.dumps(job.public()).encode()
    headers = {"Content-Type": "application/json", "User-Agent": "restora-webhook"}
    if rt.settings.webhook_secret:
        headers[SIGNATURE_HEADER] = sign(rt.settings.webhook_secret, body)
    response = httpx.post(job.options.webhook, content=body, headers=headers, timeout=TIMEOUT_S, follow_redirects=False)
    response.raise_for_status()
    log.info("job %s: webhook delivered (%d)", job_id, response.status_code)
    return response.status_code
