"""Job records: one JSON document per job in Redis, the single source of truth for the job JSON.

RQ only carries the job id to a worker; everything a client sees lives here. Status changes go
through ``transition`` (a WATCH/MULTI compare-and-set) so a cancel and a worker can never both win.
"""
from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import redis
from pydantic import BaseModel, Field, field_validator, model_validator

from models.formats import Kind, KindChoice, default_format, produced_formats
from models.interface import UPSCALE_FACTORS, Task

Status = Literal["queued", "running", "succeeded", "failed", "canceled"]
ACTIVE: tuple[Status, ...] = ("queued", "running")
FINISHED: tuple[Status, ...] = ("succeeded", "failed", "canceled")
# A finished job's record outlives its files by this long, so a late poll gets 410, not 404.
RECORD_GRACE = timedelta(days=7)

PREFIX = "restora"
EXPIRY_KEY = f"{PREFIX}:expiry"


def now() -> datetime:
    return datetime.now(UTC)


def new_job_id() -> str:
    """128 random bits, URL-safe: ids cannot be guessed."""
    return secrets.token_urlsafe(16)


def owner_of(api_key: str | None) -> str:
    """Jobs are filed under a hash of the key that made them, never the key itself."""
    return hashlib.sha256(api_key.encode()).hexdigest()[:32] if api_key else "anonymous"


class Options(BaseModel):
    noise_level: Literal["auto", "low", "medium", "high"] = "auto"
    layout: Literal["auto", "thw", "hwt"] = "auto"
    kind: KindChoice = "auto"
    formats: list[str] | None = None  # result formats to make (videos); None: the kind's default
    webhook: str | None = None
    task: Task = "denoise"
    scale: int | None = None  # with task "upscale": 2 or 4 (or the chosen model's own factor)
    model: str | None = Field(None, max_length=64, description="A restoration model from /v1/models instead of the one for the noise level")

    @field_validator("formats", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        """The form field is one string, ``mp4,mkv``."""
        return [f.strip().lower() for f in value.split(",") if f.strip()] if isinstance(value, str) else value

    @model_validator(mode="after")
    def _scale_goes_with_upscale(self) -> "Options":
        factors = " or ".join(map(str, UPSCALE_FACTORS))
        if self.task == "upscale" and self.scale is None:
            raise ValueError(f"task=upscale needs scale={factors}")
        if self.task == "upscale" and self.scale not in UPSCALE_FACTORS and self.model is None:
            raise ValueError(f"task=upscale needs scale={factors} (other factors only with a model that has them)")
        if self.task != "upscale" and self.scale is not None:
            raise ValueError("scale is for task=upscale")
        return self


class JobRecord(BaseModel):
    id: str
    owner: str
    status: Status = "queued"
    kind: Kind
    progress: float = 0.0
    stage: str = "queued"
    input: dict[str, Any]
    noise: dict[str, Any] | None = None
    model: dict[str, Any] | None = None
    error: str | None = None
    created_at: datetime = Field(default_factory=now)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    expires_at: datetime
    options: Options = Field(default_factory=Options)
    segments: dict[str, Any] | None = None  # a split video: its segments' counts, frames done and fps
    eta_s: float | None = None  # seconds left, from the speed so far (while running)
    result_notes: dict[str, str] | None = None  # result format -> what that result is, when not the restored frames
    attempts: int = 0
    input_key: str
    queue: str | None = None  # the RQ queue it was put in
    version: int = 0  # +1 on every write: event streams skip what they have already sent

    @property
    def formats(self) -> tuple[str, ...]:
        """The result formats this job makes, the default first."""
        made = produced_formats(self.kind, self.options.formats, self.input)
        first = default_format(self.kind, self.input.get("filename", ""))
        own = first in made or self.kind == "image"  # an image always gets its own format (HEIC, AVIF: not made by default)
        return (first, *[f for f in made if f != first]) if own else made

    @property
    def expired(self) -> bool:
        return now() >= self.expires_at

    def public(self) -> dict[str, Any]:
        """The job JSON of the API contract (also the body of webhooks)."""
        data = self.model_dump(mode="json", exclude={"owner", "options", "attempts", "input_key", "version", "queue"})
        data["result_url"] = f"/v1/jobs/{self.id}/result" if self.status == "succeeded" else None
        data["formats"] = list(self.formats)
        data["queue_position"] = None  # the API fills it in for a queued job (it lives in the queue, not here)
        return data


def job_key(job_id: str) -> str:
    """The Redis key of a job's record."""
    return f"{PREFIX}:job:{job_id}"


def _owner_key(owner: str) -> str:
    return f"{PREFIX}:owner:{owner}"


def segments_key(job_id: str) -> str:
    """A Redis hash with the state of a split video's segments (per segment: runs, state, frames done)."""
    return f"{PREFIX}:segments:{job_id}"


def events_channel(job_id: str) -> str:
    """The Redis pub/sub channel that carries every new version of a job's record (for SSE)."""
    return f"{PREFIX}:events:{job_id}"


class JobStore:
    """Job records in Redis; every write is also published on the job's events channel."""

    def __init__(self, client: redis.Redis):
        self.redis = client

    def create(self, job: JobRecord) -> None:
        with self.redis.pipeline() as pipe:
            record = job.model_dump_json()
            pipe.set(job_key(job.id), record)
            pipe.publish(events_channel(job.id), record)
            pipe.zadd(_owner_key(job.owner), {job.id: job.created_at.timestamp()})
            pipe.zadd(EXPIRY_KEY, {job.id: job.expires_at.timestamp()})
            pipe.execute()

    def get(self, job_id: str) -> JobRecord | None:
        raw = self.redis.get(job_key(job_id))
        return JobRecord.model_validate_json(raw) if raw else None

    def list(self, owner: str, status: Status | None, limit: int) -> list[JobRecord]:
        """Newest first. Ids whose record is gone are dropped from the index on the way."""
        jobs: list[JobRecord] = []
        start = 0
        while len(jobs) < limit:
            ids = self.redis.zrevrange(_owner_key(owner), start, start + 4 * limit - 1)
            if not ids:
                break
            start += len(ids)
            for job_id, raw in zip(ids, self.redis.mget([job_key(i.decode()) for i in ids])):
                if raw is None:
                    self.redis.zrem(_owner_key(owner), job_id)
                    continue
                job = JobRecord.model_validate_json(raw)
                if status is None or job.status == status:
                    jobs.append(job)
        return jobs[:limit]

    def update(
        self, job_id: str, *, allowed_from: tuple[Status, ...] | None = None, attempt: int | None = None, **fields: Any
    ) -> JobRecord | None:
        """Set ``fields`` atomically, only if the job's status is in ``allowed_from`` (any when None)
        and, when ``attempt`` is given, the job is still on that attempt (a superseded run must not write).

        Returns the new record, or None when the job is gone, in another status or on another attempt.
        """
        key = job_key(job_id)
        with self.redis.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(key)
                    raw = pipe.get(key)
                    if raw is None:
                        return None
                    job = JobRecord.model_validate_json(raw)
                    if allowed_from is not None and job.status not in allowed_from:
                        return None
                    if attempt is not None and job.attempts != attempt:
                        return None
                    job = job.model_copy(update={**fields, "version": job.version + 1})
                    pipe.multi()
                    record = job.model_dump_json()
                    pipe.set(key, record, keepttl=True)
                    pipe.publish(events_channel(job_id), record)  # in the same transaction: no change unheard
                    if "expires_at" in fields:
                        pipe.zadd(EXPIRY_KEY, {job_id: job.expires_at.timestamp()})
                    pipe.execute()
                    return job
                except redis.WatchError:
                    continue

    def finish(
        self, job_id: str, status: Status, ttl: timedelta, *, allowed_from: tuple[Status, ...] = ACTIVE, attempt: int | None = None, **fields: Any
    ) -> JobRecord | None:
        """Move an active job to a final status; its files expire ``ttl`` from now."""
        finished = now()
        return self.update(
            job_id, allowed_from=allowed_from, attempt=attempt, status=status, finished_at=finished, expires_at=finished + ttl, **fields
        )

    def due_for_expiry(self, limit: int = 100) -> list[str]:
        return [i.decode() for i in self.redis.zrangebyscore(EXPIRY_KEY, 0, now().timestamp(), start=0, num=limit)]

    def mark_expired(self, job_id: str) -> None:
        """Files are gone: drop the job from the sweep and let its record lapse after a grace period."""
        with self.redis.pipeline() as pipe:
            pipe.zrem(EXPIRY_KEY, job_id)
            pipe.expire(job_key(job_id), int(RECORD_GRACE.total_seconds()))
            pipe.execute()

    def delete(self, job: JobRecord) -> None:
        with self.redis.pipeline() as pipe:
            pipe.delete(job_key(job.id))
            pipe.zrem(_owner_key(job.owner), job.id)
            pipe.zrem(EXPIRY_KEY, job.id)
            pipe.execute()
