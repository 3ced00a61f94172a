"""FastAPI dependencies: settings, Redis, job store, storage, the caller's identity and rate limit."""
from __future__ import annotations

from typing import Annotated

import redis
from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from core.jobs import JobRecord, JobStore, owner_of
from core.settings import Settings
from core.storage import Storage

bearer = HTTPBearer(auto_error=False, description="An API key from RESTORA_API_KEYS (only when keys are configured)")


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_redis(request: Request) -> redis.Redis:
    return request.app.state.redis


def get_store(client: Annotated[redis.Redis, Depends(get_redis)]) -> JobStore:
    return JobStore(client)


def get_storage(request: Request) -> Storage:
    return request.app.state.storage


def get_owner(
    settings: Annotated[Settings, Depends(get_settings)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> str:
    """Who is calling: the hash of their API key, or ``anonymous`` when no keys are configured."""
    keys = settings.api_key_set
    if not keys:
        return owner_of(None)
    if credentials is None or credentials.credentials not in keys:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "missing or invalid API key: send 'Authorization: Bearer <key>'", headers={"WWW-Authenticate": "Bearer"}
        )
    return owner_of(credentials.credentials)


def get_submitter(
    owner: Annotated[str, Depends(get_owner)],
    settings: Annotated[Settings, Depends(get_settings)],
    client: Annotated[redis.Redis, Depends(get_redis)],
) -> str:
    """The caller of a submit, within its per-key rate limit.

    A window of ``rate_limit_window_s`` opens at a key's first submit; counted in Redis (one MULTI),
    so the limit holds across API replicas and needs no clock of their own.
    """
    if not settings.rate_limit_submits:
        return owner
    key = f"restora:rate:{owner}"
    with client.pipeline() as pipe:
        _, count, ttl = pipe.set(key, 0, ex=settings.rate_limit_window_s, nx=True).incr(key).ttl(key).execute()
    if count > settings.rate_limit_submits:
        retry_after = max(ttl, 1)
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            f"rate limit: at most {settings.rate_limit_submits} submits per {settings.rate_limit_window_s} s per API key; retry in {retry_after} s",
            headers={"Retry-After": str(retry_after)},
        )
    return owner


def get_own_job(job_id: str, owner: Annotated[str, Depends(get_owner)], store: Annotated[JobStore, Depends(get_store)]) -> JobRecord:
    """The job, if the caller made it. Someone else's job is reported as unknown (404), never 403."""
    job = store.get(job_id)
    if job is None or job.owner != owner:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no job {job_id!r}")
    return job


SettingsDep = Annotated[Settings, Depends(get_settings)]
RedisDep = Annotated[redis.Redis, Depends(get_redis)]
StoreDep = Annotated[JobStore, Depends(get_store)]
StorageDep = Annotated[Storage, Depends(get_storage)]
OwnerDep = Annotated[str, Depends(get_owner)]
SubmitterDep = Annotated[str, Depends(get_submitter)]
JobDep = Annotated[JobRecord, Depends(get_own_job)]
