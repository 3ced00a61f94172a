"""/v1/jobs: submit, poll, list, download, cancel or delete."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Query, Request, Response, status
from fastapi.responses import StreamingResponse
from sse_starlette import EventSourceResponse
from starlette.concurrency import run_in_threadpool

from app.deps import JobDep, OwnerDep, RedisDep, SettingsDep, StorageDep, StoreDep, SubmitterDep
from app.events import job_events
from app.schemas import JobList, JobOut, error_responses
from app.streaming import stream_file
from app.submit import check_capacity, claim_idempotency, create_job, parse_options, release_idempotency
from app.uploads import receive_upload
from core.job_metrics import record_finished
from core.jobs import ACTIVE, Status, new_job_id
from core.queues import withdraw_restore
from core.storage import result_key
from models.formats import MEDIA_TYPES, RESULT_FORMATS
from models.interface import TASKS, UPSCALE_FACTORS

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])

RESULT_EXAMPLES = {media: {"example": f"({fmt} bytes)"} for fmt, media in MEDIA_TYPES.items()}
UPLOAD_FORM = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary", "description": ".npy stack or frame, video clip, or image"},
                        "noise_level": {"type": "string", "enum": ["auto", "low", "medium", "high"], "default": "auto"},
                        "layout": {"type": "string", "enum": ["auto", "thw", "hwt"], "default": "auto"},
                        "formats": {"type": "string", "description": "comma-separated result formats to make, for video (default mp4; e.g. mp4,mkv); for an image heic and/or avif in addition to the usual ones",
                                    "example": "mp4"},
                        "kind": {"type": "string", "enum": ["auto", "stack", "image", "video"], "default": "auto",
                                 "description": "settles an ambiguous .npy shape: (H, W, 3|4) is an image unless kind=stack"},
                        "webhook": {"type": "string", "format": "uri", "description": "http(s) URL that receives the final job JSON"},
                        "task": {"type": "string", "enum": list(TASKS), "default": "denoise",
                                 "description": "denoise, or upscale (images and videos: denoised, then enlarged by scale)"},
                        "scale": {"type": "integer", "minimum": 1, "maximum": 16,
                                  "description": f"with task=upscale: the factor each side grows by ({' or '.join(map(str, UPSCALE_FACTORS))}, or the chosen model's own)"},
                        "model": {"type": "string", "maxLength": 64,
                                  "description": "a restorer from /v1/models (e.g. a user's model) instead of the one for the noise level; it must fit task and scale"},
                    },
                }
            }
        },
    }
}


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobOut,
    openapi_extra=UPLOAD_FORM,
    summary="Submit a file for restoration",
    responses=error_responses(400, 401, 409, 413, 415, 422, 429, 503, 507),
)
async def submit(
    request: Request,
    response: Response,
    owner: SubmitterDep,
    settings: SettingsDep,
    client: RedisDep,
    store: StoreDep,
    storage: StorageDep,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> JobOut:
    """Upload a file and queue it. The upload streams to storage and is checked before it is queued."""
    check_capacity(client, settings)
    job_id = new_job_id()
    earlier = await run_in_threadpool(claim_idempotency, client, store, owner, idempotency_key, job_id)
    if earlier is None:
        try:
            upload = await receive_upload(request, settings.staging_dir, settings.max_upload_mb * 2**20)
            try:
                # Probing a video or moving a large file must not hold up the event loop.
                job = await run_in_threadpool(create_job, upload, parse_options(upload.fields), owner, job_id, settings, store, storage, client)
            finally:
                upload.path.unlink(missing_ok=True)
        except BaseException:
            release_idempotency(client, owner, idempotency_key)
            raise
        request.app.state.metrics.jobs_submitted.labels(job.kind).inc()
        request.app.state.metrics.upload_bytes.inc(upload.size)
    else:
        job = earlier
    response.headers["Location"] = f"/v1/jobs/{job.id}"
    return JobOut.from_record(job, client)


@router.get("", response_model=JobList, summary="List your recent jobs", responses=error_responses(401, 422, 503))
def list_jobs(
    owner: OwnerDep,
    store: StoreDep,
    client: RedisDep,
    status_filter: Annotated[Status | None, Query(alias="status")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> JobList:
    """The caller's recent jobs, newest first."""
    return JobList(jobs=[JobOut.from_record(j, client) for j in store.list(owner, status_filter, limit)])


@router.get("/{job_id}", response_model=JobOut, summary="Get a job", responses=error_responses(401, 404, 422, 503))
def get_job(job: JobDep, client: RedisDep) -> JobOut:
    """The job: status, progress, stage, its place in the queue while queued, the noise level and model chosen, and the result URL once it succeeded."""
    return JobOut.from_record(job, client)


@router.get(
    "/{job_id}/events",
    response_class=EventSourceResponse,
    summary="Follow a job live",
    responses={200: {"description": "Server-Sent Events: a `job` event with the job JSON at every change, from the current "
                                    "state to the final one, then the stream ends",
                     "content": {"text/event-stream": {"example": "event: job\nid: 3\ndata: {\"id\": \"...\", \"status\": \"running\", ...}\n\n"}}},
               **error_responses(401, 404, 422, 503)},
)
def follow_job(job: JobDep, settings: SettingsDep, client: RedisDep) -> EventSourceResponse:
    """Every change of status, progress, stage and queue position as it happens, without polling; ends after the final state."""
    return EventSourceResponse(job_events(settings.redis_url, client, job.id), ping=15)


@router.get(
    "/{job_id}/result",
    response_class=StreamingResponse,
    summary="Download the result",
    responses={200: {"description": "The result file", "content": RESULT_EXAMPLES}, **error_responses(401, 404, 409, 410, 422, 503)},
)
def get_result(job: JobDep, storage: StorageDep,
               format: Annotated[str | None, Query(description="stack: npy/tiff/png; image: png/tiff/jpg/webp/npy, and heic/avif for HEIC/AVIF input (default: its own); video: mp4/mkv")] = None):
    """The result file; 409 until the job succeeded, 410 once it expired."""
    fmt = format or job.formats[0]
    if fmt not in job.formats:
        also = f" (submit with formats={','.join((*job.formats, fmt))} to have it made)" if fmt in RESULT_FORMATS[job.kind] else ""
        raise HTTPException(422, f"format {fmt!r} is not available for this {job.kind} job; choose one of {', '.join(job.formats)}{also}")
    if job.expired:
        raise HTTPException(status.HTTP_410_GONE, f"the result expired at {job.expires_at.isoformat()} and was deleted")
    if job.status != "succeeded":
        reason = f": {job.error}" if job.error else ""
        raise HTTPException(status.HTTP_409_CONFLICT, f"job is {job.status}{reason}; the result exists only once it succeeded")
    try:
        stored = storage.open(result_key(job.id, fmt))
    except FileNotFoundError:
        raise HTTPException(status.HTTP_410_GONE, "the result files are gone (expired or deleted)") from None
    return stream_file(stored, MEDIA_TYPES[fmt], f"restora-{job.id}.{fmt}")


@router.delete(
    "/{job_id}",
    summary="Cancel or delete a job",
    responses={200: {"model": JobOut, "description": "Canceled; the job JSON"}, 204: {"description": "Deleted with its files"}, **error_responses(401, 404, 422, 503)},
)
def cancel_or_delete(job: JobDep, store: StoreDep, storage: StorageDep, client: RedisDep, settings: SettingsDep):
    """Cancel a queued or running job (200, its JSON), or delete a finished one and its files (204)."""
    if job.status in ACTIVE:
        canceled = store.finish(job.id, "canceled", settings.result_ttl, stage="canceled", error="canceled by the client")
        if canceled is not None:
            record_finished(client, canceled)
            withdraw_restore(client, job)
            return JobOut.from_record(canceled)
        job = store.get(job.id) or job  # it finished meanwhile: delete it below
    storage.delete_prefix(f"jobs/{job.id}")
    store.delete(job)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
