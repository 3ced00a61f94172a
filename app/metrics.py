"""Prometheus metrics of one API app: its own counters, HTTP request metrics from
prometheus-fastapi-instrumentator, and what Redis knows at scrape time (queue depths, jobs by status,
workers, and the job run times that workers on any host record in Redis, see ``core.job_metrics``).

Each app has its own registry, so several apps in one process (tests) never clash.
"""
from __future__ import annotations

import redis
from fastapi import FastAPI
from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_fastapi_instrumentator import Instrumentator
from rq.registry import StartedJobRegistry

from core.job_metrics import duration_histograms, finished_counts
from core.queues import RESTORE_QUEUES, WEBHOOK_QUEUE, live_workers, queue

NAMESPACE = "restora"


class ApiMetrics:
    def __init__(self, client: redis.Redis):
        self.registry = CollectorRegistry()
        self.jobs_submitted = Counter("restora_jobs_submitted_total", "Jobs accepted, by kind", ["kind"], registry=self.registry)
        self.upload_bytes = Counter("restora_upload_bytes_total", "Bytes of accepted uploads", registry=self.registry)
        self.errors = Counter("restora_http_errors_total", "Error answers, by status code", ["code"], registry=self.registry)
        self.registry.register(RedisCollector(client))

    def instrument(self, app: FastAPI) -> None:
        """Request counts, latencies and sizes by route, method and status."""
        Instrumentator(excluded_handlers=["/metrics"], should_group_status_codes=False, registry=self.registry).instrument(app, metric_namespace=NAMESPACE)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class RedisCollector:
    """Reads the shared state from Redis when Prometheus scrapes; reports nothing while Redis is down."""

    def __init__(self, client: redis.Redis):
        self.client = client

    def collect(self):
        try:
            families = self._families()
        except redis.RedisError:
            return
        yield from families

    def _families(self) -> list:
        depth = GaugeMetricFamily("restora_queue_depth", "Jobs waiting, by queue", labels=["queue"])
        for name in (*RESTORE_QUEUES, WEBHOOK_QUEUE):
            depth.add_metric([name], queue(self.client, name).count)
        active = GaugeMetricFamily("restora_jobs_active", "Restore jobs queued or running", labels=["status"])
        active.add_metric(["queued"], sum(queue(self.client, name).count for name in RESTORE_QUEUES))
        active.add_metric(["running"], sum(StartedJobRegistry(queue=queue(self.client, name)).count for name in RESTORE_QUEUES))
        finished = CounterMetricFamily("restora_jobs_finished", "Jobs that ended, by kind and status", labels=["kind", "status"])
        for (kind, status), count in sorted(finished_counts(self.client).items()):
            finished.add_metric([kind, status], count)
        seconds = HistogramMetricFamily("restora_job_duration_seconds", "Run time of jobs, by kind and noise level", labels=["kind", "noise_level"])
        for histogram in duration_histograms(self.client):
            seconds.add_metric([histogram.kind, histogram.level], histogram.buckets, histogram.sum)
        workers = GaugeMetricFamily("restora_workers", "Live restore workers")
        workers.add_metric([], live_workers(self.client))
        return [depth, active, finished, seconds, workers]
