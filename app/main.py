"""The FastAPI application: routes, error shapes, and the shared Redis client and storage."""
from __future__ import annotations

import logging
import time

import redis
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from app import metrics
from app.routes import jobs, system
from app.validation import InvalidInput
from core.queues import connect
from core.settings import Settings, get_settings
from core.storage import StorageError, get_storage

log = logging.getLogger("restora.api")


def _error(status_code: int, detail: str, headers: dict | None = None) -> JSONResponse:
    metrics.errors.labels(str(status_code)).inc()
    return JSONResponse({"detail": detail}, status_code=status_code, headers=headers)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    if not settings.redis_url:
        raise RuntimeError("RESTORA_REDIS_URL is not set (use `restora serve` to start an embedded Redis)")
    app = FastAPI(
        title="Restora",
        version="0.1.0",
        description="Restores 12-bit raw image stacks, video clips and single images. Submit a file, poll the job, download the result.",
    )
    app.state.settings = settings
    app.state.redis = connect(settings.redis_url)
    app.state.storage = get_storage(settings)
    metrics.queue_collector.client = app.state.redis
    app.include_router(jobs.router)
    app.include_router(system.router)

    @app.middleware("http")
    async def time_requests(request: Request, call_next):
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        metrics.request_seconds.labels(request.method, getattr(route, "path", "unmatched")).observe(time.perf_counter() - started)
        return response

    @app.exception_handler(InvalidInput)
    async def invalid_input(_: Request, exc: InvalidInput):
        return _error(exc.status_code, exc.detail)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException):
        return _error(exc.status_code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def bad_parameter(_: Request, exc: RequestValidationError):
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("query", "path", "header", "body"))
        return _error(422, f"invalid {where or 'request'}: {first.get('msg', 'bad value')}")

    @app.exception_handler(redis.RedisError)
    async def redis_down(_: Request, exc: redis.RedisError):
        log.warning("redis unavailable: %s", exc)
        return _error(503, "the job queue is unavailable; retry shortly")

    @app.exception_handler(StorageError)
    async def storage_down(_: Request, exc: StorageError):
        log.warning("storage unavailable: %s", exc)
        return _error(503, "storage is unavailable; retry shortly")

    @app.exception_handler(Exception)
    async def internal(_: Request, exc: Exception):
        log.exception("unhandled error")
        return _error(500, "internal error; the request was not processed")

    return app
