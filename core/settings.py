"""All configuration, from environment variables prefixed ``RESTORA_`` (documented in the README)."""
from __future__ import annotations

from datetime import timedelta
from functools import lru_cache
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RESTORA_", env_file=".env", extra="ignore")

    redis_url: str | None = Field(None, description="Redis for the queue and job records; unset: `restora serve` starts its own")
    data_dir: Path = Field(Path("restora-data"), description="Local working directory (uploads being checked, local storage)")
    storage_url: str | None = Field(None, description="Where inputs and results live: file:///path or s3://bucket[/prefix] (unset: <data_dir>/storage)")
    s3_endpoint_url: str | None = Field(None, description="S3 endpoint for an S3-compatible store such as MinIO (unset: AWS)")
    api_keys: str = Field("", description="Comma-separated API keys; empty = no auth")
    webhook_secret: str | None = Field(None, description="HMAC-SHA256 key for the X-Restora-Signature webhook header")

    max_upload_mb: int = Field(2048, description="Largest upload accepted (413 above it)")
    max_elements: int = Field(400_000_000, description="Largest frames x height x width of a stack or image")
    max_video_seconds: float = Field(600.0, description="Longest video accepted")
    max_video_pixels: int = Field(1920 * 1088, description="Largest video frame (width x height)")
    max_upscaled_video_pixels: int = Field(3840 * 2160, description="Largest frame of an upscaled video result (width x height)")
    max_queued_jobs: int = Field(1000, description="Queue length at which submits get 429")
    max_storage_gb: float = Field(0.0, ge=0, description="Stored inputs and results at which new uploads get 507 (0 = no cap)")
    rate_limit_submits: int = Field(120, description="Submits one API key may make per rate_limit_window_s (429 above it); 0 = no limit")
    rate_limit_window_s: int = Field(60, description="Window of the per-key submit rate limit, in seconds")

    result_ttl_hours: float = Field(24.0, description="Stored files are deleted this long after a job ends")
    job_timeout_s: int = Field(4 * 3600, description="A single job is failed after running this long")
    job_retries: int = Field(2, description="How often a job whose worker died is run again")
    worker_heartbeat_s: int = Field(5, description="How often a busy worker says it is alive")
    worker_stop_grace_s: float = Field(8.0, description="On SIGTERM, how long the current job may run on before it is requeued")
    device: str | None = Field(None, description="Torch device for workers; unset = cuda if present, else cpu")
    segment_seconds: float = Field(20.0, ge=0, description="Videos longer than 1.5 x this are split into segments of about this length, restored in parallel by any workers (0 = never split); clips no longer than it go to the priority lane")
    video_net_memory_mb: float = Field(256.0, gt=0, description="Memory the video network may use per frame; larger frames (1080p) are restored in overlapping tiles")
    models_dir: Path | None = Field(None, description="Users' own model files (.safetensors, .pth) the workers offer by name (unset: <data_dir>/models); `restora models add` puts them here")
    worker_threads: int | None = Field(None, ge=1, description="CPU threads each worker's models and video codecs use; unset = every core (`restora serve --workers N` sets cores / N)")

    @field_validator("storage_url")
    @classmethod
    def _known_storage(cls, url: str | None) -> str | None:
        if url and not (url.startswith("file://") or (url.startswith("s3://") and len(url) > len("s3://"))):
            raise ValueError("storage URL must be file:///path or s3://bucket[/prefix]")
        return url

    @property
    def api_key_set(self) -> frozenset[str]:
        return frozenset(k.strip() for k in self.api_keys.split(",") if k.strip())

    @property
    def result_ttl(self) -> timedelta:
        return timedelta(hours=self.result_ttl_hours)

    @property
    def storage_root(self) -> Path:
        """Root directory of local storage."""
        if self.storage_url and self.storage_url.startswith("file://"):
            return Path(self.storage_url.removeprefix("file://"))
        return self.data_dir / "storage"

    @property
    def user_models_dir(self) -> Path:
        return self.models_dir or self.data_dir / "models"

    @property
    def staging_dir(self) -> Path:
        return self.data_dir / "staging"


@lru_cache
def get_settings() -> Settings:
    return Settings()
