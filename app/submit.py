"""Turning an upload into a queued job: validate the options, check the file, store it, queue it."""
from __future__ import annotations

import hashlib
import time
from datetime import timedelta
from urllib.parse import urlsplit

import numpy as np
import redis
from pydantic import ValidationError

from app.uploads import Upload
from app.validation import InvalidInput, inspect_upload, suffix_of
from core.jobs import JobRecord, JobStore, Options, now
from core.queues import enqueue_restore, published_models, queued_count, restore_lane
from core.settings import Settings
from core.storage import Storage, bytes_in_use, input_key
from models.formats import produced_formats
from models.interface import FRAME_KINDS, model_mismatch

IDEMPOTENCY_TTL = timedelta(hours=24)


def parse_options(fields: dict[str, str]) -> Options:
    try:
        options = Options.model_validate({k: v for k, v in fields.items() if k in Options.model_fields and v != ""})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = f"invalid {'.'.join(map(str, first['loc']))}: " if first["loc"] else ""
        raise InvalidInput(422, where + first["msg"].removeprefix("Value error, ")) from None
    if options.webhook:
        parts = urlsplit(options.webhook)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidInput(422, "webhook must be an http:// or https:// URL")
    return options


def check_task(client: redis.Redis, kind: str, info: dict, options: Options, settings: Settings) -> None:
    """The task, scale and model fit this input and a model the workers serve, and the result fits the limits."""
    if options.model:
        entry = next((e for e in published_models(client) if e["name"] == options.model), None)
        if entry is None:
            raise InvalidInput(422, f"model={options.model!r} is not a model the workers serve; see /v1/models")
        problem = model_mismatch(entry, kind, options.task, options.scale)
        if problem:
            raise InvalidInput(422, problem)
    elif options.task != "denoise" and kind not in FRAME_KINDS:
        raise InvalidInput(422, f"task={options.task} is available for {' and '.join(k + 's' for k in FRAME_KINDS)}; not for {kind}s")
    scale = options.scale or 1
    if kind == "video":
        pixels = info["width"] * info["height"] * scale**2
        if pixels > settings.max_upscaled_video_pixels:
            raise InvalidInput(413, f"x{scale} frames of {info['width'] * scale}x{info['height'] * scale} exceed the limit of "
                                    f"{settings.max_upscaled_video_pixels} pixels for results")
    elif scale > 1:
        elements = scale**2 * int(np.prod(info["shape"]))
        if elements > settings.max_elements:
            raise InvalidInput(413, f"the x{scale} result would have {elements} values, above the limit of {settings.max_elements}")


def check_capacity(client: redis.Redis, settings: Settings) -> None:
    if queued_count(client) >= settings.max_queued_jobs:
        raise InvalidInput(429, f"the queue is full ({settings.max_queued_jobs} jobs waiting); retry later")


def check_storage(client: redis.Redis, settings: Settings, upload_bytes: int) -> None:
    """507 once the stored inputs and results would pass ``max_storage_gb`` with this upload (results
    of jobs already queued still come on top: keep a margin below the disk's size)."""
    if not settings.max_storage_gb:
        return
    used, cap = bytes_in_use(client), settings.max_storage_gb * 1e9
    if used + upload_bytes > cap:
        raise InvalidInput(507, f"storage is full: {used / 1e9:.2f} GB of {cap / 1e9:.2f} GB in use by stored inputs and results; "
                                f"retry once older results expire (within {settings.result_ttl_hours:g} h)")


def _idempotency_key(owner: str, key: str) -> str:
    return f"restora:idempotency:{owner}:{hashlib.sha256(key.encode()).hexdigest()}"


def claim_idempotency(client: redis.Redis, store: JobStore, owner: str, key: str | None, job_id: str) -> JobRecord | None:
    """Reserve ``key`` for ``job_id``; if an earlier submit holds it, return that job instead."""
    if not key:
        return None
    redis_key = _idempotency_key(owner, key)
    if client.set(redis_key, job_id, nx=True, ex=int(IDEMPOTENCY_TTL.total_seconds())):
        return None
    earlier = client.get(redis_key).decode()
    for _ in range(50):  # the first submit may still be storing its upload
        job = store.get(earlier)
        if job is not None:
            return job
        time.sleep(0.1)
    raise InvalidInput(409, "a submit with this Idempotency-Key is still in progress; retry shortly")


def release_idempotency(client: redis.Redis, owner: str, key: str | None) -> None:
    if key:
        client.delete(_idempotency_key(owner, key))


def create_job(upload: Upload, options: Options, owner: str, job_id: str, settings: Settings, store: JobStore, storage: Storage, client: redis.Redis) -> JobRecord:
    """Check the staged upload, move it into storage and queue it. Raises ``InvalidInput``."""
    kind, info = inspect_upload(upload.path, upload.filename, settings, options.kind)
    try:
        produced_formats(kind, options.formats)
    except ValueError as exc:
        raise InvalidInput(422, f"invalid formats: {exc}") from None
    if kind == "stack":
        info["layout"] = options.layout
    check_task(client, kind, info, options, settings)
    check_storage(client, settings, upload.size)
    key = input_key(job_id, suffix_of(upload.filename))
    storage.put(key, upload.path)
    lane = restore_lane(kind, info["frames"] / info["fps"] if kind == "video" and info.get("fps") else 0.0, settings)
    job = JobRecord(
        id=job_id,
        queue=lane,
        owner=owner,
        kind=kind,
        input=info,
        options=options,
        input_key=key,
        expires_at=now() + timedelta(hours=settings.result_ttl_hours) + timedelta(seconds=settings.job_timeout_s),
    )
    store.create(job)
    enqueue_restore(client, settings, job_id, lane)
    return job
