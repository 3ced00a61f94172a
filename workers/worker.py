"""The worker process: loads every model once, then runs jobs from the queue in this same process.

RQ's forking worker would lose CUDA in the child, so Restora runs jobs in-process (``SimpleWorker``)
and adds the heartbeat that ``SimpleWorker`` lacks: a thread renews the job's lease every few
seconds, so a worker killed mid-job is noticed within ``4 x heartbeat`` and its job is retried by
the next worker's maintenance pass instead of RQ's default ten minutes.

SIGTERM is RQ's warm shutdown: the worker takes no new job, and the current one gets
``worker_stop_grace_s`` to finish; past that it stops at its next progress checkpoint and is put
back at the front of the queue (see ``workers.tasks``). The heartbeat thread ends with the job.
A second SIGTERM (RQ's cold shutdown) stops the job at once; it is retried like a job whose
worker died (using up one of ``job_retries``). Should RQ's loop quit on an error of its own, the
process exits with an error, for its supervisor (``restora serve``, the container runtime) to start another.
"""
from __future__ import annotations

import logging
import os
import threading
import time

from rq import SimpleWorker
from rq.job import Job
from rq.queue import Queue
from rq.serializers import JSONSerializer
from rq.worker import WorkerStatus

from core.queues import RESTORE_QUEUES, WEBHOOK_QUEUE, connect, publish_models
from core.settings import Settings
from core.storage import get_storage
from workers import runtime
from workers.expiry import sweep_expired, sweep_staging

log = logging.getLogger("restora.worker")


class RestoraWorker(SimpleWorker):
    heartbeat_s: int = 5
    stop_grace_s: float = 8.0
    asked_to_stop: bool = False  # SIGTERM or SIGINT: work() returning then is no failure

    def get_heartbeat_ttl(self, job: Job, working_time: float = 0.0) -> int:
        return self.heartbeat_s * 4

    def execute_job(self, job: Job, queue: Queue) -> None:
        execution = self.prepare_execution(job)
        done = threading.Event()

        def beat() -> None:
            while not done.wait(self.heartbeat_s):
                try:
                    self.maintain_heartbeats(job, execution)
                except Exception:  # a missed beat is retried next time; the lease has slack
                    log.warning("heartbeat failed", exc_info=True)

        thread = threading.Thread(target=beat, name="heartbeat", daemon=True)
        thread.start()
        try:
            self.perform_job(job, queue, execution)
        finally:
            done.set()
            thread.join()
        self.set_state(WorkerStatus.IDLE)

    def handle_warm_shutdown_request(self) -> None:
        super().handle_warm_shutdown_request()
        self.asked_to_stop = True
        runtime.current().stop_deadline = time.monotonic() + self.stop_grace_s

    def run_maintenance_tasks(self) -> None:
        """RQ's, then Restora's: model files, expired jobs, stale uploads. RQ's loop quits on anything
        raised here, so a failed pass of Restora's is logged and left to the next pass."""
        super().run_maintenance_tasks()
        rt = runtime.current()
        try:
            if rt.pipeline is not None and rt.pipeline.user_models.refresh():  # model files added or removed meanwhile
                publish_models(rt.redis, rt.pipeline.catalog())
            sweep_expired(rt.store, rt.storage, rt.settings)
            sweep_staging(rt.settings.staging_dir)
        except Exception:
            log.exception("maintenance failed; the next pass tries again")


def run_worker(settings: Settings, queues: tuple[str, ...] = RESTORE_QUEUES, burst: bool = False) -> None:
    """Serve ``queues`` until stopped, the first listed first. Models are loaded only by restore workers."""
    if not settings.redis_url:
        raise RuntimeError("RESTORA_REDIS_URL is not set")
    client = connect(settings.redis_url)
    pipeline = None
    if set(queues) & set(RESTORE_QUEUES):
        from models.device import limit_threads
        from models.pipeline import Pipeline

        limit_threads(settings.worker_threads or os.cpu_count() or 1)  # codecs included, or they take more than the cores
        pipeline = Pipeline(settings.device, video_net_memory_mb=settings.video_net_memory_mb, models_dir=settings.user_models_dir)
        log.info("models loaded on %s: %s", pipeline.device, ", ".join(s.name for s in pipeline.specs))
        publish_models(client, pipeline.catalog())
    runtime.install(runtime.Runtime(settings, client, get_storage(settings, client), pipeline))
    worker = RestoraWorker(
        list(queues),
        connection=client,
        serializer=JSONSerializer,
        worker_ttl=max(3 * settings.worker_heartbeat_s, 20),
        job_monitoring_interval=settings.worker_heartbeat_s,
        maintenance_interval=4 * settings.worker_heartbeat_s,
    )
    worker.heartbeat_s = settings.worker_heartbeat_s
    worker.stop_grace_s = settings.worker_stop_grace_s
    worker.work(burst=burst, with_scheduler=WEBHOOK_QUEUE in queues, logging_level="INFO")
    if not burst and not worker.asked_to_stop:  # RQ's loop quit on an error (logged above)
        raise SystemExit("the worker stopped on an error; its supervisor (restora serve, the container runtime) starts another")
