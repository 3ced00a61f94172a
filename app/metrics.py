"""Prometheus metrics of the API process; queue depth and workers are read from Redis at scrape time."""
from __future__ import annotations

import redis
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily

from core.queues import RESTORE_QUEUE, WEBHOOK_QUEUE, live_workers, queue

registry = CollectorRegistry()
jobs_submitted = Counter("restora_jobs_submitted_total", "Jobs accepted, by kind", ["kind"], registry=registry)
upload_bytes = Counter("restora_upload_bytes_total", "Bytes of accepted uploads", registry=registry)
errors = Counter("restora_http_errors_total", "Error answers, by status code", ["code"], registry=registry)
request_seconds = Histogram("restora_http_request_seconds", "Request latency", ["method", "route"], registry=registry)


class QueueCollector:
    """Reads queue depths and the live worker count from Redis when Prometheus scrapes."""

    client: redis.Redis | None = None

    def collect(self):
        if self.client is None:
            return
        depth = GaugeMetricFamily("restora_queue_depth", "Jobs waiting, by queue", labels=["queue"])
        workers = GaugeMetricFamily("restora_workers", "Live workers")
        try:
            for name in (RESTORE_QUEUE, WEBHOOK_QUEUE):
                depth.add_metric([name], queue(self.client, name).count)
            workers.add_metric([], live_workers(self.client))
        except redis.RedisError:
            return
        yield depth
        yield workers


queue_collector = QueueCollector()
registry.register(queue_collector)
