"""``restora serve``'s worker processes, each started again when it exits while the service runs.

A worker exits on an error RQ does not handle (RQ's loop quits on one), on a crash, or when the
kernel kills it for memory. In containers the runtime's restart policy starts it again (see
docker-compose.yml); on one machine under ``restora serve`` this does, so queued jobs are not left
waiting for a worker that is gone. A worker that keeps dying at start is retried less and less often.
"""
from __future__ import annotations

import logging
import shlex
import signal
import subprocess
import threading
import time

log = logging.getLogger("restora.serve")
CHECK_S = 1.0  # how often the processes are looked at
STABLE_S = 60.0  # a process that ran this long was healthy: its next restart is immediate
MAX_BACKOFF_S = 60.0  # the longest wait before restarting one that keeps dying young


class Slot:
    """One command and its current process."""

    def __init__(self, command: list[str], env: dict[str, str]):
        self.command, self.env = command, env
        self.backoff_s = 0.0
        self.start()

    def start(self) -> None:
        self.process = subprocess.Popen(self.command, env=self.env)
        self.started, self.restart_at = time.monotonic(), None

    def restart_if_due(self) -> None:
        """Start the command again once its process has exited and its back-off has passed."""
        if self.process.poll() is None:
            return
        now = time.monotonic()
        if self.restart_at is None:
            lived = now - self.started
            self.backoff_s = 0.0 if lived >= STABLE_S else min(max(2 * self.backoff_s, CHECK_S), MAX_BACKOFF_S)
            self.restart_at = now + self.backoff_s
            log.warning("%s exited with code %s after %.0f s; starting it again in %.0f s",
                        shlex.join(self.command), self.process.returncode, lived, self.backoff_s)
        if now >= self.restart_at:
            self.start()


class WorkerPool:
    """Starts one process per command and keeps each running until :meth:`stop`."""

    def __init__(self, commands: list[list[str]], env: dict[str, str]):
        self.slots = [Slot(command, env) for command in commands]
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="worker-supervisor", daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stopping.wait(CHECK_S):
            for slot in self.slots:
                slot.restart_if_due()

    def stop(self, timeout_s: float = 60.0) -> None:
        """SIGTERM to every process (RQ's warm shutdown), then SIGKILL to any still running after ``timeout_s``."""
        self._stopping.set()
        self._thread.join()
        processes = [slot.process for slot in self.slots]
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
