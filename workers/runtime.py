"""What a worker process holds for its whole life: settings, Redis, storage and the loaded models.

RQ calls task functions by name, so tasks find these here rather than as arguments.
"""
from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import redis

from core.jobs import JobStore
from core.settings import Settings
from core.storage import Storage
from models.interface import Canceled

if TYPE_CHECKING:
    from models.pipeline import Pipeline


class WorkerStopping(Canceled):
    """The worker was asked to stop and the job did not finish within the grace period: requeue it."""


@dataclass
class Runtime:
    settings: Settings
    redis: redis.Redis
    storage: Storage
    pipeline: "Pipeline | None" = None
    # Set on SIGTERM (monotonic clock): the running job may go on until then, then it is requeued.
    stop_deadline: float | None = None

    @property
    def store(self) -> JobStore:
        return JobStore(self.redis)

    def scratch(self, prefix: str) -> tempfile.TemporaryDirectory:
        """A directory for one task's files under ``<data_dir>/work``, removed with them when the task ends."""
        work_dir = self.settings.data_dir / "work"
        work_dir.mkdir(parents=True, exist_ok=True)
        return tempfile.TemporaryDirectory(dir=work_dir, prefix=prefix)

    def must_stop(self) -> bool:
        return self.stop_deadline is not None and time.monotonic() >= self.stop_deadline


_current: Runtime | None = None


def install(runtime: Runtime) -> None:
    global _current
    _current = runtime


def current() -> Runtime:
    if _current is None:
        raise RuntimeError("no worker runtime: tasks run only inside `restora worker`")
    return _current
