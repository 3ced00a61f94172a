"""The FastAPI application: routes, error shapes, and the shared Redis client and storage."""
from __future__ import annotations

import logging

import redis
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match, Route

from app.metrics import ApiMetrics
from app.routes import jobs, system, web
from app.validation import InvalidInput
from core.queues import connect
from core.settings import Settings, get_settings
from core.storage import StorageError, get_storage

log = logging.getLogger("restora.api")


def _error(request: Request, status_code: int, detail: str, headers: dict | None = None) -> JSONResponse:
    request.app.state.metrics.errors.labels(str(status_code)).inc()
    return JSONResponse({"detail": detail}, status_code=status_code, headers=headers)


def _allowed_methods(app: FastAPI, request: Request) -> list[str]:
    """Every method that some route of the request's path accepts."""
    routes = [r for r in app.router.routes if isinstance(r, Route) and r.matches(request.scope)[0] is not Match.NONE]
    return sorted({method for route in routes for method in route.methods or ()})


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    if not settings.redis_url:
        raise RuntimeError("RESTORA_REDIS_URL is not set (use `restora serve` to start an embedded Redis)")
    app = FastAPI(
        title="Restora",
        version="0.1.0",
        description="Restores 12-bit raw image stacks, video clips and single images. Submit a file, poll the job, download the result. "
        "A web page for trying it is at [/](/).",
    )
    app.state.settings = settings
    app.state.redis = connect(settings.redis_url)
    app.state.storage = get_storage(settings, app.state.redis)
    app.state.metrics = ApiMetrics(app.state.redis)
    app.state.metrics.instrument(app)
    app.include_router(jobs.router)
    app.include_router(web.router)
    app.include_router(system.router)
    app.mount("/static", StaticFiles(directory=web.STATIC_DIR), name="static")

    @app.exception_handler(InvalidInput)
    async def invalid_input(request: Request, exc: InvalidInput):
        return _error(request, exc.status_code, exc.detail)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        headers = getattr(exc, "headers", None)
        if exc.status_code == 405:  # Starlette's Allow names only the first route of the path
            headers = {"Allow": ", ".join(_allowed_methods(app, request))}
        return _error(request, exc.status_code, str(exc.detail), headers)

    @app.exception_handler(RequestValidationError)
    async def bad_parameter(request: Request, exc: RequestValidationError):
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("query", "path", "header", "body"))
        return _error(request, 422, f"invalid {where or 'request'}: {first.get('msg', 'bad value')}")

    @app.exception_handler(redis.RedisError)
    async def redis_down(request: Request, exc: redis.RedisError):
        log.warning("redis unavailable: %s", exc)
        return _error(request, 503, "the job queue is unavailable; retry shortly")

    @app.exception_handler(StorageError)
    async def storage_down(request: Request, exc: StorageError):
        log.warning("storage unavailable: %s", exc)
        return _error(request, 503, "storage is unavailable; retry shortly")

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception):
        log.exception("unhandled error")
        return _error(request, 500, "internal error; the request was not processed")

    return app
