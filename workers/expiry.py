"""Deletes the stored files of jobs past their ``expires_at``, and uploads an API left half-staged
(it crashed mid-upload); run by workers between jobs."""
from __future__ import annotations

import logging
import time
from pathlib import Path

from core.jobs import ACTIVE, JobStore, now
from core.settings import Settings
from core.storage import Storage, StorageError

log = logging.getLogger("restora.expiry")
STAGING_MAX_AGE_S = 3600  # no upload takes this long to receive and check


def sweep_expired(store: JobStore, storage: Storage, settings: Settings) -> int:
    """Remove expired jobs' files; returns how many jobs were swept. Active jobs are never touched."""
    swept = 0
    for job_id in store.due_for_expiry():
        job = store.get(job_id)
        if job is not None and job.status in ACTIVE:
            store.update(job_id, expires_at=now() + settings.result_ttl)
            continue
        try:
            storage.delete_prefix(f"jobs/{job_id}")
        except StorageError:  # the bucket is unreachable: the job stays due and the next pass tries again
            log.warning("job %s: cannot delete its files yet", job_id, exc_info=True)
            continue
        store.mark_expired(job_id)
        swept += 1
    if swept:
        log.info("expired %d job(s)", swept)
    return swept


def sweep_staging(staging_dir: Path, max_age_s: float = STAGING_MAX_AGE_S) -> int:
    """Remove staged uploads older than ``max_age_s``; returns how many.

    The API stages and removes uploads all the while: a file listed here may be gone a moment later
    (tens of times a second under a burst of uploads), and that is no error."""
    cutoff = time.time() - max_age_s
    swept = 0
    for path in staging_dir.glob("*") if staging_dir.is_dir() else ():
        try:
            if path.is_file() and path.stat().st_mtime < cutoff:
                path.unlink()
                swept += 1
        except FileNotFoundError:
            continue
    return swept
