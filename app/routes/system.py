"""Health, readiness, the model catalogue and metrics."""
from __future__ import annotations

import redis
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST

from app.deps import OwnerDep, RedisDep
from app.schemas import Health, ModelList, error_responses
from core.queues import live_workers, published_models

router = APIRouter()

NOT_READY = {
    503: {
        "model": Health,
        "description": "Redis does not answer or no worker is alive",
        "content": {"application/json": {"example": {"status": "unavailable", "detail": "no worker is alive"}}},
    }
}
METRICS_EXAMPLE = """\
# HELP restora_queue_depth Jobs waiting, by queue
# TYPE restora_queue_depth gauge
restora_queue_depth{queue="restora-restore"} 3.0
# HELP restora_job_duration_seconds Run time of jobs, by kind and noise level
# TYPE restora_job_duration_seconds histogram
restora_job_duration_seconds_bucket{kind="stack",le="10",noise_level="medium"} 12.0
"""


@router.get("/healthz", response_model=Health, tags=["system"], summary="Liveness")
def healthz() -> Health:
    """The API process is up (it does not check Redis or workers; see `/readyz`)."""
    return Health(status="ok")


@router.get("/readyz", response_model=Health, tags=["system"], summary="Readiness", responses=NOT_READY)
def readyz(client: RedisDep):
    """Ready when Redis answers and at least one worker is alive."""
    try:
        client.ping()
        workers = live_workers(client)
    except redis.RedisError as exc:
        return JSONResponse({"status": "unavailable", "detail": f"redis: {exc}"}, status_code=503)
    if workers == 0:
        return JSONResponse({"status": "unavailable", "detail": "no worker is alive"}, status_code=503)
    return Health(status="ready", detail=f"{workers} worker(s)")


@router.get("/v1/models", response_model=ModelList, tags=["models"], summary="List the models", responses=error_responses(401, 503))
def list_models(_: OwnerDep, client: RedisDep) -> ModelList:
    """The noise classifiers and restoration models the live workers serve, with the noise level each restorer serves."""
    return ModelList(models=published_models(client), workers=live_workers(client))


@router.get(
    "/metrics",
    tags=["system"],
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"description": "Prometheus text format", "content": {CONTENT_TYPE_LATEST: {"example": METRICS_EXAMPLE}}}},
)
def prometheus_metrics(request: Request) -> Response:
    """Queue depth per queue, jobs by status, job run time by kind and noise level, upload bytes,
    errors by status code, live workers, and request counts and latencies by route."""
    return Response(request.app.state.metrics.render(), media_type=CONTENT_TYPE_LATEST)
