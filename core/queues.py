"""Queue names and the one way jobs are put on them (RQ, JSON serializer: never pickle)."""
from __future__ import annotations

import json

import redis
from rq import Callback, Queue, Retry, Worker
from rq.job import Dependency
from rq.serializers import JSONSerializer

from core.jobs import JobRecord
from core.settings import Settings

RESTORE_QUEUE = "restora-restore"  # videos longer than a segment, and their segments
PRIORITY_QUEUE = "restora-priority"  # images, stacks and short clips: never stuck behind a long clip
RESTORE_QUEUES = (PRIORITY_QUEUE, RESTORE_QUEUE)  # the order every restore worker checks them in
WEBHOOK_QUEUE = "restora-webhooks"
# Imported by name in the worker, so the API never imports the worker code (or torch).
RESTORE_TASK = "workers.tasks.restore_job"
RESTORE_LOST_CALLBACK = "workers.tasks.on_restore_abandoned"
SEGMENT_TASK = "workers.segments.restore_segment"
JOIN_TASK = "workers.segments.join_segments"
SPLIT_PART_LOST_CALLBACK = "workers.segments.on_part_abandoned"
RESTORE_DONE_CALLBACK = "core.job_metrics.on_restore_done"
WEBHOOK_TASK = "workers.webhooks.deliver"


def connect(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5, health_check_interval=30)


def queue(client: redis.Redis, name: str = RESTORE_QUEUE) -> Queue:
    return Queue(name, connection=client, serializer=JSONSerializer)


def restore_lane(kind: str, seconds: float, settings: Settings) -> str:
    """The queue a new job waits in: images, stacks and clips no longer than one segment go first."""
    if kind != "video":
        return PRIORITY_QUEUE
    short = settings.segment_seconds > 0 and seconds <= settings.segment_seconds
    return PRIORITY_QUEUE if short else RESTORE_QUEUE


def lane_of(job: JobRecord) -> str:
    """The queue a job was put in (records from before lanes had one per kind)."""
    return job.queue or (RESTORE_QUEUE if job.kind == "video" else PRIORITY_QUEUE)


def withdraw_restore(client: redis.Redis, job: JobRecord) -> None:
    """Take a canceled job's task off its queue if no worker has taken it. Taking it off the list is
    atomic, so a worker either never sees it or has it already (and then finds the record canceled
    and stops); only in the first case is RQ told, which files the task as canceled."""
    lane = queue(client, lane_of(job))
    if lane.remove(job.id) and (rq_job := lane.fetch_job(job.id)) is not None:
        rq_job.cancel()


def _restore_options(settings: Settings) -> dict:
    """What every restore task gets: a worker that dies mid-task is replaced up to ``job_retries`` times."""
    return {
        "job_timeout": settings.job_timeout_s,
        "result_ttl": 3600,
        "failure_ttl": 7 * 24 * 3600,
        "retry": Retry(max=settings.job_retries) if settings.job_retries else None,
        "on_success": Callback(RESTORE_DONE_CALLBACK),
    }


def enqueue_restore(client: redis.Redis, settings: Settings, job_id: str, lane: str) -> None:
    """Queue a restore in ``lane`` (see ``restore_lane``)."""
    queue(client, lane).enqueue(RESTORE_TASK, job_id, job_id=job_id, on_failure=Callback(RESTORE_LOST_CALLBACK), **_restore_options(settings))


def enqueue_segments(client: redis.Redis, settings: Settings, job_id: str, bounds: list[tuple[int, int | None]]) -> None:
    """A split video: one task per segment (frames ``first`` to ``stop``) for any worker, then the
    join, which RQ starts once every segment task has finished, first in line."""
    videos = queue(client, RESTORE_QUEUE)
    lost = Callback(SPLIT_PART_LOST_CALLBACK)
    ids = [f"{job_id}-segment{index}" for index in range(len(bounds))]
    for index, (first, stop) in enumerate(bounds):
        videos.enqueue(SEGMENT_TASK, job_id, index, first, stop, job_id=ids[index], on_failure=lost, **_restore_options(settings))
    videos.enqueue(JOIN_TASK, job_id, job_id=f"{job_id}-join", depends_on=Dependency(jobs=ids, enqueue_at_front=True),
                   on_failure=lost, **_restore_options(settings))


def enqueue_webhook(client: redis.Redis, job_id: str) -> None:
    """Deliveries have their own queue and worker, so a slow receiver never holds a restore worker."""
    queue(client, WEBHOOK_QUEUE).enqueue(
        WEBHOOK_TASK, job_id, job_timeout=60, result_ttl=600, failure_ttl=7 * 24 * 3600, retry=Retry(max=5, interval=[5, 15, 60, 300, 900])
    )


def queued_count(client: redis.Redis) -> int:
    return sum(queue(client, name).count for name in RESTORE_QUEUES)


def queue_position(client: redis.Redis, job_id: str, lane: str) -> int | None:
    """1 for the next job a worker takes: the jobs ahead in its lane, and for a long video every
    waiting job of the priority lane too (workers take those first). None when the job is not waiting."""
    index = queue(client, lane).get_job_position(job_id)
    if index is None:
        return None
    ahead = sum(queue(client, name).count for name in RESTORE_QUEUES[:RESTORE_QUEUES.index(lane)])
    return ahead + index + 1


MODELS_KEY = "restora:models"


def publish_models(client: redis.Redis, catalog: list[dict]) -> None:
    """A worker announces the models it has loaded (``GET /v1/models`` reads this)."""
    client.set(MODELS_KEY, json.dumps(catalog))


def published_models(client: redis.Redis) -> list[dict]:
    raw = client.get(MODELS_KEY)
    return json.loads(raw) if raw else []


def live_workers(client: redis.Redis) -> int:
    return Worker.count(connection=client, queue=queue(client, RESTORE_QUEUE))
