"""The public JSON shapes of the API (see docs/API.md)."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import redis
from pydantic import BaseModel, Field

from core.jobs import JobRecord, Kind, Status
from core.queues import lane_of, queue_position
from models.formats import unsupported_type


class NoiseRecheckOut(BaseModel):
    frame: int = Field(description="Frame of the latest re-measurement", examples=[250])
    sigma: float = Field(description="Noise std the model uses from that frame on (8-bit units), kept within the level", examples=[14.8])
    min: float = Field(description="Lowest sigma used so far", examples=[14.2])
    max: float = Field(description="Highest sigma used so far", examples=[15.3])
    count: int = Field(description="Re-measurements so far", examples=[8])


class NoiseOut(BaseModel):
    level: str = Field(examples=["medium"])
    sigma: float = Field(description="Noise std estimate in input units", examples=[23.4])
    source: str = Field(description="`classifier` or `override`", examples=["classifier"])
    lower: float | None = Field(
        default=None, description="Images only, where fine texture and light noise read alike: the low end of sigma's range, which the restorer's blend is told")
    recheck: NoiseRecheckOut | None = Field(
        default=None, description="Videos only: the noise is measured again every 25 frames (from the 75th on) and the model follows it")


class ModelOut(BaseModel):
    name: str = Field(examples=["stack-fusion-medium"])
    version: str = Field(examples=["1"])


class SegmentsOut(BaseModel):
    total: int = Field(description="Segments the video was split into", examples=[6])
    done: int = Field(description="Segments restored and stored", examples=[2])
    running: int = Field(description="Segments being restored now", examples=[2])
    redone: int = Field(description="Segment runs started again after a worker stopped mid-segment", examples=[0])
    frames_done: int = Field(description="Frames restored so far, over all segments", examples=[1400])
    frames: int = Field(description="Frames in the clip", examples=[3000])
    fps: float | None = Field(description="Frames restored per second so far, over all workers", examples=[8.7])


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
    segments: SegmentsOut | None = Field(
        default=None, description="A long video split into segments that workers restore in parallel (RESTORA_SEGMENT_SECONDS)")
    eta_s: float | None = Field(default=None, description="While running: seconds left, from the speed so far", examples=[95.0])
    formats: list[str] = Field(description="The result formats this job makes (`?format=`), its default first", examples=[["mp4"]])
    result_notes: dict[str, str] | None = Field(
        default=None, description="Result format -> what that result is when it is not the restored frames: a lightly noisy "
                                  "lossy clip's MP4 is its own video stream, copied, when encoding the restored frames again "
                                  "would cost more than restoring them gained")
    queue_position: int | None = Field(
        default=None, description="While queued: 1 = the next job a worker takes (images, stacks and short clips go before long videos)", examples=[2])

    @classmethod
    def from_record(cls, job: JobRecord, client: redis.Redis | None = None) -> "JobOut":
        """The job JSON; with ``client``, a queued job's place in the queue too."""
        data = job.public()
        if client is not None and job.status == "queued":
            data["queue_position"] = queue_position(client, job.id, lane_of(job))
        return cls.model_validate(data)

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

    model_config = {"json_schema_extra": {"examples": [{"jobs": JobOut.model_config["json_schema_extra"]["examples"]}]}}


class ModelInfo(BaseModel):
    name: str
    version: str
    kind: Kind
    role: str = Field(description="`classifier` or `restorer`")
    task: str = Field(default="denoise", description="`denoise` or `upscale` (restorers)")
    scale: int | None = Field(default=None, description="Upscalers: the factor each side grows by")
    level: str | None = Field(description="Noise level a denoiser serves; null for classifiers, upscalers and users' models")
    kinds: list[Kind] = Field(default_factory=list, description="The inputs it restores (image upscalers and users' models: images and each frame of videos)")
    source: Literal["builtin", "user"] = Field("builtin", description="`builtin`: Restora's own; `user`: a file in the workers' RESTORA_MODELS_DIR")
    architecture: str | None = Field(None, description="Users' models: the architecture spandrel recognised")


class ModelList(BaseModel):
    models: list[ModelInfo]
    workers: int = Field(description="Live workers that serve these models")

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "models": [
                        {"name": "stack-noise", "version": "1", "kind": "stack", "role": "classifier", "level": None},
                        {"name": "stack-fusion-medium", "version": "1", "kind": "stack", "role": "restorer", "level": "medium"},
                        {"name": "my-esrgan-x4", "version": "3f2a9c1b0d4e", "kind": "image", "kinds": ["image", "video"], "role": "restorer",
                         "task": "upscale", "scale": 4, "level": None, "source": "user", "architecture": "RealESRGAN Compact"},
                    ],
                    "workers": 2,
                }
            ]
        }
    }


class Health(BaseModel):
    status: str = Field(examples=["ready"])
    detail: str | None = Field(None, examples=["2 worker(s)"])

    model_config = {"json_schema_extra": {"examples": [{"status": "ready", "detail": "2 worker(s)"}]}}


class ErrorOut(BaseModel):
    """Every error answer: one message a user can act on, never a traceback."""

    detail: str


ERROR_EXAMPLES = {
    400: "not a readable .npy file: the magic string is not correct",
    401: "missing or invalid API key: send 'Authorization: Bearer <key>'",
    404: "no job 'q3Zk0cVxM1y7w9L2bH8T4A'",
    409: "job is running; the result exists only once it succeeded",
    410: "the result expired at 2026-11-23T10:00:00+00:00 and was deleted",
    413: "upload exceeds the limit of 2048 MB",
    415: unsupported_type("scan.bmp"),
    422: "invalid noise_level: Input should be 'auto', 'low', 'medium' or 'high'",
    429: "the queue is full (1000 jobs waiting); retry later",
    503: "the job queue is unavailable; retry shortly",
    507: "storage is full: 100.0 GB of 100.0 GB in use by stored inputs and results; retry once older results expire (within 24 h)",
}


def error_responses(*codes: int) -> dict[int, dict]:
    """OpenAPI ``responses`` for these error codes, each with the JSON shape and an example."""
    return {
        code: {"model": ErrorOut, "description": ERROR_EXAMPLES[code].split(";")[0], "content": {"application/json": {"example": {"detail": ERROR_EXAMPLES[code]}}}}
        for code in codes
    }
