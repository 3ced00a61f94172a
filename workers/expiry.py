"""Deletes the stored files of jobs past their ``expires_at``; run by workers between jobs."""
from __future__ import annotations

import logging

from core.jobs import ACTIVE, JobStore, now
from core.settings import Settings
from core.storage import LocalStorage

log = logging.getLogger("restora.expiry")


def sweep_expired(store: JobStore, storage: LocalStorage, settings: Settings) -> int:
    """Remove expired jobs' files; returns how many jobs were swept. Active jobs are never touched."""
    swept = 0
    for job_id in store.due_for_expiry():
        job = store.get(job_id)
        if job is not None and job.status in ACTIVE:
            store.update(job_id, expires_at=now() + settings.result_ttl)
            continue
        storage.delete_prefix(f"jobs/{job_id}")
        store.mark_expired(job_id)
        swept += 1
    if swept:
        log.info("expired %d job(s)", swept)
    return swept
