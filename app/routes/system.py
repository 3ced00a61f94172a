"""Health, readiness, the model catalogue and metrics."""
from __future__ import annotations

import redis
from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app import metrics
from app.deps import OwnerDep, RedisDep
from app.schemas import Health, ModelList
from core.queues import live_workers, published_models

router = APIRouter()


@router.get("/healthz", response_model=Health, tags=["system"])
def healthz() -> Health:
    """The API process is up."""
    return Health(status="ok")


@router.get("/readyz", response_model=Health, tags=["system"], responses={503: {"model": Health}})
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


@router.get("/v1/models", response_model=ModelList, tags=["models"])
def list_models(_: OwnerDep, client: RedisDep) -> ModelList:
    """The noise classifiers and restoration models the live workers serve."""
    return ModelList(models=published_models(client), workers=live_workers(client))


@router.get("/metrics", tags=["system"], response_class=Response)
def prometheus_metrics() -> Response:
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)
