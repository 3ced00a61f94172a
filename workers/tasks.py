"""The restore job as RQ runs it: fetch the input, run the pipeline, store the results.

The job record in Redis is the truth a client sees; this module moves it through
queued -> running -> succeeded/failed, and stops when a client cancels (status ``canceled``).

Each run of a job is one numbered attempt, and every write of a run is conditional on the record
still being on that attempt: a worker that stalled past its lease (its job was meanwhile retried
elsewhere) can neither report progress, nor store results, nor finish the job a second time.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from rq import Retry, get_current_job

from core.jobs import ACTIVE, JobStore, now
from core.queues import enqueue_webhook
from core.storage import result_key
from models.interface import Canceled, NoiseEstimate
from workers import segments
from workers.records import MAX_SHUTDOWN_REQUEUES, PROGRESS_EVERY_S, drop_results, finish
from workers.runtime import Runtime, WorkerStopping, current

log = logging.getLogger("restora.worker")


class JobReporter:
    """Carries the pipeline's progress into the job record; raises ``Canceled`` once this run may no
    longer go on (the client canceled, or the job was retried elsewhere), ``WorkerStopping`` once
    the worker's stop grace period is over."""

    def __init__(self, runtime: Runtime, job_id: str, attempt: int):
        self.runtime, self.store, self.job_id, self.attempt = runtime, runtime.store, job_id, attempt
        self._last_write = 0.0
        self._started = time.monotonic()
        self._noise: dict[str, Any] = {}

    def _write(self, **fields: Any) -> None:
        if self.store.update(self.job_id, allowed_from=("running",), attempt=self.attempt, **fields) is None:
            raise Canceled(self.job_id)
        self._last_write = time.monotonic()

    def input(self, info: dict[str, Any]) -> None:
        job = self.store.get(self.job_id)
        if job is not None:
            self._write(input={**job.input, **{k: v for k, v in info.items() if k != "filename"}})

    def damaged(self, seconds: list[float]) -> None:
        self.input({"damaged_at": seconds})

    def noise(self, estimate: NoiseEstimate, source: str) -> None:
        self._noise = {"level": estimate.level, "sigma": round(float(estimate.sigma), 4), "source": source}
        if estimate.lower is not None:
            self._noise["lower"] = round(float(estimate.lower), 4)
        self._write(noise=self._noise)

    def noise_recheck(self, frame: int, sigma: float) -> None:
        """A long clip's noise measured again: the job shows the sigma in use now and its range so far."""
        sigma = round(float(sigma), 4)
        before = self._noise.get("recheck")
        low, high = (min(before["min"], sigma), max(before["max"], sigma)) if before else (sigma, sigma)
        self._noise = {**self._noise, "recheck": {"frame": frame, "sigma": sigma, "min": low, "max": high, "count": (before["count"] if before else 0) + 1}}
        self._write(noise=self._noise)

    def model(self, name: str, version: str) -> None:
        self._write(model={"name": name, "version": version})

    def checkpoint(self, stage: str) -> None:
        """Write ``stage`` now, unthrottled: raises ``Canceled`` unless this run still owns the job."""
        self._write(stage=stage)

    def progress(self, fraction: float, stage: str) -> None:
        if self.runtime.must_stop():
            raise WorkerStopping(self.job_id)
        if time.monotonic() - self._last_write >= PROGRESS_EVERY_S:
            fraction = min(max(fraction, 0.0), 1.0)
            elapsed = time.monotonic() - self._started
            eta = round(elapsed * (1 - fraction) / fraction, 1) if fraction >= 0.02 else None
            self._write(progress=round(fraction, 4), stage=stage, eta_s=eta)


def restore_job(job_id: str) -> str | Retry:
    """Run one restore job. Returns the final status; failures are recorded, not raised, so RQ
    retries only jobs whose worker died (see ``on_restore_abandoned``). Returns a ``Retry`` (RQ puts
    the job back at the front of the queue) when the worker stopped before the job was done."""
    rt = current()
    store = rt.store
    job = store.get(job_id)
    if job is None or job.status not in ACTIVE:
        return job.status if job else "gone"
    attempt = job.attempts + 1
    job = store.update(job_id, allowed_from=ACTIVE, attempt=job.attempts, status="running", started_at=now(), stage="starting", attempts=attempt)
    if job is None:
        return "taken"  # canceled, or another worker started it meanwhile
    log.info("job %s: %s %s, attempt %d", job_id, job.kind, job.input.get("shape"), attempt)
    if job.segments is not None:
        return "split"  # an earlier attempt split it; its segments are queued or done
    reporter = JobReporter(rt, job_id, attempt)
    with rt.scratch(f"{job_id}-") as tmp:
        outputs = {fmt: Path(tmp) / f"result.{fmt}" for fmt in job.formats}
        try:
            source = rt.storage.local_copy(job.input_key, Path(tmp))
            if segments.worth_splitting(job, rt.settings):
                return segments.split(job, attempt, source, reporter)
            summary = rt.pipeline.restore_file(
                source,
                list(outputs.values()),
                noise_level=job.options.noise_level,
                layout=job.options.layout,
                kind=job.kind,
                task=job.options.task,
                scale=job.options.scale,
                model=job.options.model,
                report=reporter,
            )
            reporter.checkpoint("storing the result")
            for fmt, path in outputs.items():
                rt.storage.put(result_key(job_id, fmt), path)
        except WorkerStopping:
            return _requeue_for_shutdown(job_id, attempt)
        except Canceled:
            log.info("job %s: attempt %d stopped (canceled, or retried elsewhere)", job_id, attempt)
            return "stopped"
        except Exception as exc:  # any failure of the input or the model ends this job, not the worker
            log.exception("job %s: failed", job_id)
            message = str(exc) if isinstance(exc, ValueError) else f"{type(exc).__name__}: {exc}"
            finish(job_id, attempt, "failed", error=f"restoration failed: {message}", stage="failed")
            return "failed"
    if finish(job_id, attempt, "succeeded", progress=1.0, stage="done", result_notes=summary.result_notes or None) is None:
        if (job := store.get(job_id)) is not None and job.status == "canceled":
            drop_results(job_id)  # canceled at the last moment
        return "stopped"
    log.info("job %s: succeeded", job_id)
    return "succeeded"


def _requeue_for_shutdown(job_id: str, attempt: int) -> str | Retry:
    """Put the job back, first in line, for the next worker (RQ re-enqueues on a returned ``Retry``)."""
    store = current().store
    requeues = get_current_job().number_of_retries or 0
    if requeues >= MAX_SHUTDOWN_REQUEUES:
        finish(job_id, attempt, "failed", stage="failed", error=f"its worker was stopped {requeues + 1} times during the job")
        return "failed"
    if store.update(job_id, allowed_from=("running",), attempt=attempt, status="queued", stage="requeued: its worker stopped", progress=0.0) is None:
        return "stopped"
    log.info("job %s: requeued, the worker is stopping", job_id)
    return Retry(max=MAX_SHUTDOWN_REQUEUES, enqueue_at_front=True)


def on_restore_abandoned(rq_job, connection, exc_type, exc_value, traceback) -> None:
    """RQ's failure callback, called when a job's worker died mid-job (or it raised out of ``restore_job``).

    With retries left the job goes back to ``queued``; otherwise it fails with the reason.
    """
    store = JobStore(connection)
    job_id = rq_job.id
    if rq_job.retries_left:
        store.update(job_id, allowed_from=ACTIVE, status="queued", stage="requeued: the worker running it stopped", progress=0.0)
        return
    rt_ttl = current().settings.result_ttl
    job = store.finish(job_id, "failed", rt_ttl, stage="failed", error=f"the worker stopped during the job on each of its attempts ({exc_type.__name__ if exc_type else 'lost'})")
    if job is not None and job.options.webhook:
        enqueue_webhook(connection, job_id)
