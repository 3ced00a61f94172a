"""What every worker task writes when it ends a job: the final state (and its webhook), or no results."""
from __future__ import annotations

from typing import Any

from core.jobs import JobRecord
from core.queues import enqueue_webhook
from core.storage import result_key
from models.formats import RESULT_FORMATS
from workers.runtime import current

PROGRESS_EVERY_S = 0.5  # how often progress is written (and a cancel is noticed)
# Requeues because a worker was stopped (SIGTERM) do not use up the crash retries; this only bounds them.
MAX_SHUTDOWN_REQUEUES = 20


def finish(job_id: str, attempt: int | None, status: str, **fields: Any) -> JobRecord | None:
    """Move a running job to ``status`` (only while on ``attempt``, unless None) and send its webhook."""
    rt = current()
    fields = {"eta_s": None, **fields}  # nothing is left to wait for
    job = rt.store.finish(job_id, status, rt.settings.result_ttl, allowed_from=("running",), attempt=attempt, **fields)
    if job is not None and job.options.webhook:
        enqueue_webhook(rt.redis, job_id)
    return job


def drop_results(job_id: str) -> None:
    """Delete whatever results a job stored (it was canceled as they were stored)."""
    rt = current()
    for fmt in {f for formats in RESULT_FORMATS.values() for f in formats}:
        rt.storage.delete(result_key(job_id, fmt))
