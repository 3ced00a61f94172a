"""Job outcome metrics kept in Redis, so every worker on every host adds to the same numbers and any
API replica can expose them at ``/metrics`` (Prometheus' multiprocess mode would only cover one host).

Two hashes: finished jobs by kind and status, and a cumulative histogram of run time by kind and
noise level (fields ``kind|level|<le>``, ``kind|level|sum``, ``kind|level|count``).
"""
from __future__ import annotations

from collections import defaultdict
from typing import NamedTuple

import redis

from core.jobs import JobRecord, JobStore

FINISHED_KEY = "restora:metrics:jobs_finished"
DURATION_KEY = "restora:metrics:job_seconds"
DURATION_BUCKETS = (1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400, float("inf"))


class DurationHistogram(NamedTuple):
    kind: str
    level: str
    buckets: list[tuple[str, float]]  # (le, cumulative count)
    sum: float


def record_finished(client: redis.Redis, job: JobRecord) -> None:
    """Count a job that reached a final status and, if it ran to an end (not canceled), how long it ran."""
    with client.pipeline(transaction=False) as pipe:
        pipe.hincrby(FINISHED_KEY, f"{job.kind}|{job.status}", 1)
        if job.status != "canceled" and job.started_at and job.finished_at:
            seconds = (job.finished_at - job.started_at).total_seconds()
            series = f"{job.kind}|{(job.noise or {}).get('level', 'unknown')}"
            for bound in DURATION_BUCKETS:
                if seconds <= bound:
                    pipe.hincrby(DURATION_KEY, f"{series}|{_le(bound)}", 1)
            pipe.hincrbyfloat(DURATION_KEY, f"{series}|sum", seconds)
        pipe.execute()


def finished_counts(client: redis.Redis) -> dict[tuple[str, str], int]:
    """(kind, status) -> jobs finished."""
    return {tuple(field.decode().split("|")): int(count) for field, count in client.hgetall(FINISHED_KEY).items()}


def duration_histograms(client: redis.Redis) -> list[DurationHistogram]:
    series: dict[tuple[str, str], dict[str, float]] = defaultdict(dict)
    for field, value in client.hgetall(DURATION_KEY).items():
        kind, level, name = field.decode().split("|")
        series[kind, level][name] = float(value)
    return [
        DurationHistogram(kind, level, [(_le(b), values.get(_le(b), 0.0)) for b in DURATION_BUCKETS], values.get("sum", 0.0))
        for (kind, level), values in sorted(series.items())
    ]


def _le(bound: float) -> str:
    return "+Inf" if bound == float("inf") else str(bound)


def on_restore_done(rq_job, connection: redis.Redis, result) -> None:
    """RQ's success callback of restore jobs, run by the worker: counts the jobs it finished itself
    (a cancel is counted by the API that made it)."""
    if result in ("succeeded", "failed"):
        job = JobStore(connection).get(rq_job.id)
        if job is not None and job.status == result:
            record_finished(connection, job)
