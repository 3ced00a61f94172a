"""The public JSON shapes of the API (see shared/API.md)."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from core.jobs import JobRecord, Kind, Status


class NoiseOut(BaseModel):
    level: str = Field(examples=["medium"])
    sigma: float = Field(description="Noise std estimate in input units", examples=[23.4])
    source: str = Field(description="`classifier` or `override`", examples=["classifier"])


class ModelOut(BaseModel):
    name: str = Field(examples=["stack-fusion-medium"])
    version: str = Field(examples=["1"])


class JobOut(BaseModel):
    id: str
    status: Status
    kind: Kind
    progress: float = Field(ge=0.0, le=1.0)
    stage: str
    input: dict[str, Any]
    noise: NoiseOut | None
    model: ModelOut | None
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    expires_at: datetime
    result_url: str | None

    @classmethod
    def from_record(cls, job: JobRecord) -> "JobOut":
        return cls.model_validate(job.public())

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "id": "q3Zk0cVxM1y7w9L2bH8T4A",
                    "status": "running",
                    "kind": "stack",
                    "progress": 0.42,
                    "stage": "registering",
                    "input": {"filename": "scene.npy", "shape": [100, 271, 271], "dtype": "uint16", "layout": "thw"},
                    "noise": {"level": "medium", "sigma": 23.4, "source": "classifier"},
                    "model": {"name": "stack-fusion-medium", "version": "1"},
                    "error": None,
                    "created_at": "2026-11-22T10:00:00Z",
                    "started_at": "2026-11-22T10:00:01Z",
                    "finished_at": None,
                    "expires_at": "2026-11-23T10:00:00Z",
                    "result_url": None,
                }
            ]
        }
    }


class JobList(BaseModel):
    jobs: list[JobOut]


class ModelInfo(BaseModel):
    name: str
    version: str
    kind: Kind
    role: str = Field(description="`classifier` or `restorer`")
    level: str | None = Field(description="Noise level a restorer serves; null for classifiers")


class ModelList(BaseModel):
    models: list[ModelInfo]
    workers: int = Field(description="Live workers that serve these models")


class Health(BaseModel):
    status: str
    detail: str | None = None
