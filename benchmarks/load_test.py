"""Load test: many small jobs submitted at once to a one-machine Restora, on loopback only.

Starts its own service (an embedded Redis, the API under uvicorn, N restore workers) unless
``--server`` names one, submits ``--jobs`` small inputs (each different: 4x32x32 stacks, or 64x64
frames with ``--input frame``, which cost the models far less) with at most
``--concurrency`` uploads in flight, waits until every job has ended, and reports how many
succeeded, were lost or duplicated, the submit latency p50/p99 and the throughput. Stops by itself:
everything is bounded by ``--timeout``.

    python benchmarks/load_test.py --jobs 200 --workers 2 [--input frame]
    python benchmarks/load_test.py --jobs 200 --server http://127.0.0.1:8000 --api-key KEY
"""
from __future__ import annotations

import argparse
import asyncio
import io
import os
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
FINISHED = ("succeeded", "failed", "canceled")
SUBMIT_TRIES = 3


@dataclass
class Report:
    submitted: int
    succeeded: int
    failed: int
    lost: int  # accepted, but never ended or missing from the service
    duplicated: int  # ids handed out twice, or jobs of this run that the service has but never accepted
    p50_ms: float
    p99_ms: float
    seconds: float  # from the first submit until the last job ended
    refusals: tuple[str, ...] = ()  # "status: detail" of each submit that did not get 202

    @property
    def refused(self) -> int:
        return len(self.refusals)

    @property
    def jobs_per_s(self) -> float:
        return self.succeeded / self.seconds if self.seconds else 0.0

    def markdown_row(self, workers: int | str) -> str:
        return (
            f"| {workers} | {self.submitted} | {self.succeeded} | {self.failed} | {self.lost} | {self.duplicated} | "
            f"{self.p50_ms:.0f} | {self.p99_ms:.0f} | {self.jobs_per_s:.1f} | {self.seconds:.1f} |"
        )


MARKDOWN_HEADER = (
    "| workers | submitted | succeeded | failed | lost | duplicated | submit p50 ms | submit p99 ms | jobs/s | seconds |\n"
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
)


SHAPES = {"stack": (4, 32, 32), "frame": (64, 64)}


def small_input(seed: int, kind: str) -> bytes:
    """A uint16 .npy of ``SHAPES[kind]``: a bright square on a noisy background, different for every job."""
    rng = np.random.default_rng(seed)
    data = rng.poisson(200, SHAPES[kind]).astype(np.uint16)
    data[..., 8:24, 8:24] += 1500
    buffer = io.BytesIO()
    np.save(buffer, data)
    return buffer.getvalue()


async def run(client: httpx.AsyncClient, jobs: int, concurrency: int, timeout: float, kind: str = "stack") -> Report:
    """Submit ``jobs`` inputs of ``kind`` through ``client`` and wait for all of them to end."""
    limit = asyncio.Semaphore(concurrency)
    run_tag = os.urandom(4).hex()  # marks this run's uploads among the key's other jobs
    latencies: list[float] = []
    ids: list[str] = []
    refusals: list[str] = []

    async def submit(seed: int) -> None:
        """One upload; a dropped connection is retried with the same Idempotency-Key, so it never makes a second job."""
        name, headers = f"load-{run_tag}-{seed}.npy", {"Idempotency-Key": f"load-{run_tag}-{seed}"}
        async with limit:
            started = time.perf_counter()
            for tries_left in reversed(range(SUBMIT_TRIES)):
                try:
                    response = await client.post("/v1/jobs", files={"file": (name, small_input(seed, kind))}, headers=headers)
                    break
                except httpx.TransportError:
                    if not tries_left:
                        raise
            latencies.append(time.perf_counter() - started)
        if response.status_code == 202:
            ids.append(response.json()["id"])
        else:
            refusals.append(f"{response.status_code}: {response.text[:200]}")

    started = time.monotonic()
    await asyncio.wait_for(asyncio.gather(*(submit(seed) for seed in range(jobs))), timeout)
    statuses: dict[str, str] = {}
    while time.monotonic() - started < timeout:
        listed = (await client.get("/v1/jobs", params={"limit": 500})).json()["jobs"]
        statuses = {job["id"]: job["status"] for job in listed if job["input"]["filename"].startswith(f"load-{run_tag}-")}
        if all(statuses.get(job_id) in FINISHED for job_id in ids):
            break
        await asyncio.sleep(0.2)
    seconds = time.monotonic() - started
    ended = [statuses.get(job_id) for job_id in ids]
    p50, p99 = np.percentile(latencies, [50, 99]) * 1000 if latencies else (0.0, 0.0)
    return Report(
        submitted=jobs,
        succeeded=ended.count("succeeded"),
        failed=ended.count("failed") + ended.count("canceled"),
        lost=sum(status not in FINISHED for status in ended),
        duplicated=(len(ids) - len(set(ids))) + len(set(statuses) - set(ids)),
        p50_ms=float(p50),
        p99_ms=float(p99),
        seconds=seconds,
        refusals=tuple(refusals),
    )


@contextmanager
def local_service(workers: int, port: int):
    """Redis, the API and ``workers`` restore workers on this machine; yields the API's URL."""
    from restora.redis_server import RedisServer, free_port

    port = port or free_port()
    with tempfile.TemporaryDirectory(prefix="restora-load-") as tmp, RedisServer(Path(tmp) / "redis") as redis_url:
        env = os.environ | {
            "RESTORA_REDIS_URL": redis_url,
            "RESTORA_DATA_DIR": str(Path(tmp) / "data"),
            "RESTORA_RATE_LIMIT_SUBMITS": "0",  # this test is the one client: measure the service, not the limit
            "RESTORA_MAX_QUEUED_JOBS": "100000",
            "RESTORA_WORKER_THREADS": str(max(1, (os.cpu_count() or 1) // workers)),  # the cores, shared out
        }
        log = open(Path(tmp) / "service.log", "w")
        processes = [subprocess.Popen([sys.executable, "-m", "uvicorn", "app.asgi:app", "--host", "127.0.0.1", "--port", str(port)], env=env, cwd=ROOT, stdout=log, stderr=log)]
        processes += [subprocess.Popen([sys.executable, "-m", "restora.cli", "worker"], env=env, cwd=ROOT, stdout=log, stderr=log) for _ in range(workers)]
        url = f"http://127.0.0.1:{port}"
        try:
            wait_ready(url, workers, processes)
            yield url
        except BaseException:
            log.flush()
            print("service log (last lines):", *(Path(tmp) / "service.log").read_text().splitlines()[-40:], sep="\n", file=sys.stderr)
            raise
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    process.kill()
            log.close()


def wait_ready(url: str, workers: int, processes: list[subprocess.Popen], timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in processes):
            raise RuntimeError("a service process exited during start-up")
        try:
            ready = httpx.get(f"{url}/readyz", timeout=2)
            if ready.status_code == 200 and ready.json()["detail"] == f"{workers} worker(s)":
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"the service at {url} was not ready with {workers} worker(s) within {timeout} s")


async def against(url: str, api_key: str | None, jobs: int, concurrency: int, timeout: float, kind: str) -> Report:
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=60) as client:
        return await run(client, jobs, concurrency, timeout, kind)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2, help="restore workers of the local service")
    parser.add_argument("--input", choices=sorted(SHAPES), default="stack", help="what each job restores")
    parser.add_argument("--concurrency", type=int, default=50, help="uploads in flight at once")
    parser.add_argument("--timeout", type=float, default=600, help="give up after this many seconds")
    parser.add_argument("--server", help="an existing service (loopback) instead of starting one")
    parser.add_argument("--api-key")
    parser.add_argument("--port", type=int, default=0, help="port of the local service's API (default: a free one)")
    args = parser.parse_args()
    if args.server:
        if httpx.URL(args.server).host not in ("127.0.0.1", "localhost", "::1"):
            parser.error("--server must be on loopback")
        report = asyncio.run(against(args.server, args.api_key, args.jobs, args.concurrency, args.timeout, args.input))
        workers: int | str = "?"
    else:
        with local_service(args.workers, args.port) as url:
            report = asyncio.run(against(url, None, args.jobs, args.concurrency, args.timeout, args.input))
        workers = args.workers
    print(MARKDOWN_HEADER)
    print(report.markdown_row(workers))
    if report.refused:
        print(f"{report.refused} submit(s) were refused: " + "; ".join(report.refusals))
    sys.exit(0 if report.succeeded == report.submitted and not report.duplicated else 1)


if __name__ == "__main__":
    main()
