"""Live job updates as Server-Sent Events: the job JSON at every change of the record, until it ends.

Every write of a job record is also published on the job's Redis channel, in the same transaction
(core/jobs.py). A stream subscribes first, then reads the record, so no change can fall between
the two; versions already sent are skipped. sse-starlette sends a comment every 15 s to keep
proxies from closing a quiet stream (a job waiting in the queue).
"""
from __future__ import annotations

from collections.abc import AsyncIterator

import redis
import redis.asyncio
from sse_starlette import ServerSentEvent
from starlette.concurrency import run_in_threadpool

from app.schemas import JobOut
from core.jobs import FINISHED, JobRecord, events_channel, job_key

WAIT_S = 1.0  # longest wait for a message before checking again (cancellation is noticed in between)


async def job_events(redis_url: str, sync_client: redis.Redis, job_id: str) -> AsyncIterator[ServerSentEvent]:
    """``job`` events (the job JSON) from the current state to the final one; ends early if the job is deleted.

    A queued job's position changes when jobs ahead of it leave the queue, which writes no record
    of its own: it is looked up at least every ``WAIT_S`` and sent when it moved."""
    client = redis.asyncio.Redis.from_url(redis_url, socket_connect_timeout=5)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    try:
        await pubsub.subscribe(events_channel(job_id))
        raw = await client.get(job_key(job_id))
        sent = (-1, None)
        while raw is not None:
            job = JobRecord.model_validate_json(raw)
            out = await run_in_threadpool(JobOut.from_record, job, sync_client)
            if job.version > sent[0] or (job.version == sent[0] and out.queue_position != sent[1]):
                sent = (job.version, out.queue_position)
                yield ServerSentEvent(out.model_dump_json(), event="job", id=str(job.version))
                if job.status in FINISHED:
                    return
            message = await pubsub.get_message(timeout=WAIT_S)
            raw = message["data"] if message else await client.get(job_key(job_id))
    finally:
        await pubsub.aclose()
        await client.aclose()
