"""FastAPI dependencies: settings, Redis, job store, storage and the caller's identity."""
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
JobDep = Annotated[JobRecord, Depends(get_own_job)]
