"""Python client for a Restora server (httpx). ``restora submit`` is built on it."""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import httpx
from httpx_sse import connect_sse
from pydantic import BaseModel

FINISHED = ("succeeded", "failed", "canceled")


class RestoraError(Exception):
    """The server refused a request; ``detail`` is its message."""

    def __init__(self, status_code: int, detail: str):
        super().__init__(f"{status_code}: {detail}")
        self.status_code, self.detail = status_code, detail


Status = Literal["queued", "running", "succeeded", "failed", "canceled"]


class Noise(BaseModel):
    level: Literal["low", "medium", "high"]
    sigma: float
    source: Literal["classifier", "override"]
    lower: float | None = None


class ModelRef(BaseModel):
    name: str
    version: str


class Job(BaseModel):
    """The job JSON of the API (see API.md), typed."""

    id: str
    status: Status
    kind: Literal["stack", "video", "image"]
    progress: float
    stage: str
    input: dict[str, Any]
    noise: Noise | None = None
    model: ModelRef | None = None
    error: str | None = None
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    expires_at: datetime
    result_url: str | None = None
    formats: list[str] = []
    queue_position: int | None = None
    segments: dict[str, Any] | None = None  # a long video split into segments: total, done, running, redone, frames_done, frames, fps
    eta_s: float | None = None
    result_notes: dict[str, str] | None = None  # result format -> what that result is, when not the restored frames

    @property
    def finished(self) -> bool:
        return self.status in FINISHED


class Client:
    """A Restora server's API: ``submit``, ``get``, ``list``, ``wait``, ``download``, ``cancel``.
    Refusals raise ``RestoraError`` with the server's message."""

    def __init__(self, base_url: str = "http://127.0.0.1:8000", api_key: str | None = None, timeout: float = 300.0):
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.http = httpx.Client(base_url=base_url, headers=headers, timeout=timeout)

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.http.close()

    def _check(self, response: httpx.Response) -> httpx.Response:
        if response.is_error:
            try:
                detail = response.json().get("detail", response.text)
            except ValueError:
                detail = response.text
            raise RestoraError(response.status_code, str(detail))
        return response

    def submit(self, path: Path, *, noise_level: str = "auto", layout: str = "auto", kind: str = "auto", formats: str | None = None,
               webhook: str | None = None, idempotency_key: str | None = None, task: str = "denoise", scale: int | None = None,
               model: str | None = None) -> Job:
        """Upload ``path``; ``kind`` settles an ambiguous .npy shape ((H, W, 3|4) is an image unless ``"stack"``),
        ``formats`` (e.g. ``"mp4,mkv"``) the result formats a video job makes (default ``mp4``), or for an image ``"heic"`` / ``"avif"`` in addition;
        ``task="upscale"`` with ``scale`` 2 or 4 enlarges an image or video after denoising it; ``model``
        names a restorer from :meth:`models` to use instead of the one for the noise level."""
        data = {"noise_level": noise_level, "layout": layout, "kind": kind, "task": task} | ({"formats": formats} if formats else {}) \
            | ({"webhook": webhook} if webhook else {}) | ({"scale": str(scale)} if scale else {}) | ({"model": model} if model else {})
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        with Path(path).open("rb") as f:
            response = self.http.post("/v1/jobs", files={"file": (Path(path).name, f)}, data=data, headers=headers)
        return Job.model_validate(self._check(response).json())

    def get(self, job_id: str) -> Job:
        return Job.model_validate(self._check(self.http.get(f"/v1/jobs/{job_id}")).json())

    def models(self) -> list[dict]:
        """The models the live workers offer (``/v1/models``): Restora's own and users' files, by name."""
        return self._check(self.http.get("/v1/models")).json()["models"]

    def list(self, status: Status | None = None, limit: int = 50) -> list[Job]:
        """The caller's recent jobs, newest first."""
        params = {"limit": limit} | ({"status": status} if status else {})
        return [Job.model_validate(j) for j in self._check(self.http.get("/v1/jobs", params=params)).json()["jobs"]]

    def events(self, job_id: str, timeout: float | None = None) -> Iterator[Job]:
        """The job at every change, live (Server-Sent Events), from its current state to the final one."""
        timeouts = httpx.Timeout(self.http.timeout.connect, read=timeout or None)
        with connect_sse(self.http, "GET", f"/v1/jobs/{job_id}/events", timeout=timeouts) as source:
            if source.response.is_error:
                source.response.read()
                self._check(source.response)
            for event in source.iter_sse():
                if event.event == "job":
                    yield Job.model_validate_json(event.data)

    def wait(self, job_id: str, on_progress: Callable[[Job], None] | None = None, timeout: float | None = None) -> Job:
        """Follow the job's events until it finishes; ``on_progress`` sees every change. A dropped
        stream is reopened (it starts again from the current state)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                for job in self.events(job_id, timeout=None if deadline is None else max(deadline - time.monotonic(), 0.1)):
                    if on_progress:
                        on_progress(job)
                    if job.finished:
                        return job
            except (httpx.ReadTimeout, httpx.RemoteProtocolError, httpx.ReadError):
                pass
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} did not finish within {timeout} s")
            time.sleep(0.5)

    def download(self, job_id: str, dest: Path, format: str | None = None) -> Path:
        """Stream the result to ``dest`` (written whole or not at all)."""
        params = {"format": format} if format else {}
        dest = Path(dest)
        tmp = dest.with_name(dest.name + ".part")
        with self.http.stream("GET", f"/v1/jobs/{job_id}/result", params=params) as response:
            if response.is_error:
                response.read()
                self._check(response)
            with tmp.open("wb") as f:
                for chunk in response.iter_bytes():
                    f.write(chunk)
        tmp.replace(dest)
        return dest

    def cancel(self, job_id: str) -> Job | None:
        """Cancel an active job (returns it) or delete a finished one (returns None)."""
        response = self._check(self.http.delete(f"/v1/jobs/{job_id}"))
        return Job.model_validate(response.json()) if response.status_code == 200 else None
