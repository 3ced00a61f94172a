"""Long videos split into segments that any worker restores, then joined: one job id for the user.

The job's first run (``workers.tasks.restore_job``) classifies the clip's noise once, records the
plan in the job record and queues one RQ task per segment plus a join that RQ starts once every
segment task has finished. A segment decodes the clip from its start but restores only its own
frames, after fusing the ``warmup_frames`` before them, so its frames match an unsplit run's.
Each finished segment is stored (``jobs/<id>/segments/``) and marked done in a Redis hash, so a
segment whose worker died is the only one run again (RQ retries it; the hash counts the redone
runs). The join copies the segments' packets into the results with the source's audio (or, for an MP4
result whose encode cost more than the restoration changed, over all segments, the source's own stream).

Progress: every segment writes its frames done into the hash and the job record's ``segments``
(total / done / running / redone, frames done, fps) and ``eta_s`` from all of them.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict
from pathlib import Path

from rq import Retry, get_current_job

from core.jobs import JobRecord, JobStore, segments_key
from core.queues import enqueue_segments
from core.settings import Settings
from core.storage import result_key, segment_key
from models.interface import Canceled, NoiseEstimate
from models.pipeline import SilentReporter
from models.recompression import EncodingCost
from workers.records import MAX_SHUTDOWN_REQUEUES, PROGRESS_EVERY_S, drop_results, finish
from workers.runtime import WorkerStopping, current

log = logging.getLogger("restora.worker")
SPLIT_ABOVE = 1.5  # clips longer than this many segments are split (a shorter tail joins the last segment)


def worth_splitting(job: JobRecord, settings: Settings) -> bool:
    """A video longer than SPLIT_ABOVE segments (by the frame count the upload check estimated)."""
    fps = float(job.input.get("fps") or 0)
    return job.kind == "video" and settings.segment_seconds > 0 and fps > 0 and \
        int(job.input.get("frames") or 0) > SPLIT_ABOVE * settings.segment_seconds * fps


def segment_bounds(frames: int, fps: float, seconds: float) -> list[tuple[int, int | None]]:
    """Frame ranges ``[first, stop)`` of about ``seconds`` each covering ``frames`` (the last runs to the end)."""
    count = max(1, round(frames / max(1.0, seconds * fps)))
    starts = [round(i * frames / count) for i in range(count)]
    return [(first, stop) for first, stop in zip(starts, [*starts[1:], None])]


def split(job: JobRecord, attempt: int, source: Path, report) -> str:
    """Classify the clip once, record the plan and queue its segments and their join."""
    rt = current()
    options = job.options
    summary = rt.pipeline.plan_video(source, options.noise_level, options.task, options.scale, options.model, report)
    frames = int(summary.input["frames"])
    bounds = segment_bounds(frames, float(summary.input["fps"]), rt.settings.segment_seconds)
    rt.redis.hset(segments_key(job.id), mapping={"started": time.time(), "frames": frames, "total": len(bounds)})
    rt.redis.expire(segments_key(job.id), rt.settings.job_timeout_s + int(rt.settings.result_ttl.total_seconds()))
    state = {"total": len(bounds), "done": 0, "running": 0, "redone": 0, "frames_done": 0, "frames": frames, "fps": None}
    if rt.store.update(job.id, allowed_from=("running",), attempt=attempt, segments=state, stage=f"queued as {len(bounds)} segments") is None:
        return "stopped"
    enqueue_segments(rt.redis, rt.settings, job.id, bounds)
    log.info("job %s: split into %d segments", job.id, len(bounds))
    return "split"


class SegmentReporter(SilentReporter):
    """A segment's progress into the Redis hash and the job record (the clip's facts, noise and
    model are there already); raises ``Canceled`` once the job is no longer running (canceled, or
    failed in another segment), ``WorkerStopping`` on shutdown."""

    def __init__(self, job_id: str, index: int, frames: int):
        self.rt, self.job_id, self.index, self.frames = current(), job_id, index, frames
        self._last_write = 0.0

    def progress(self, fraction: float, stage: str) -> None:
        if self.rt.must_stop():
            raise WorkerStopping(self.job_id)
        if time.monotonic() - self._last_write >= PROGRESS_EVERY_S:
            self.write(round(fraction * self.frames), "running")

    def damaged(self, seconds: list[float]) -> None:
        """Kept in the hash: the join writes every segment's into the job's input."""
        self.rt.redis.hset(segments_key(self.job_id), f"damaged:{self.index}", json.dumps(seconds))

    def write(self, frames_done: int, state: str) -> None:
        """Record this segment's frames done and state, and the job's totals from every segment."""
        key = segments_key(self.job_id)
        self.rt.redis.hset(key, mapping={f"frames:{self.index}": frames_done, f"state:{self.index}": state})
        if publish_totals(self.rt.store, self.rt.redis.hgetall(key), self.job_id) is None:  # not running any more
            raise Canceled(self.job_id)
        self._last_write = time.monotonic()


def publish_totals(store: JobStore, fields: dict[bytes, bytes], job_id: str) -> JobRecord | None:
    """Write the segments' totals (from the hash ``fields``), progress and ETA into the job record
    (None: it is not running)."""
    values = {k.decode(): v.decode() for k, v in fields.items()}
    states = [v for k, v in values.items() if k.startswith("state:")]
    frames_done = sum(int(v) for k, v in values.items() if k.startswith("frames:"))
    frames, total = int(values["frames"]), int(values["total"])
    elapsed = time.time() - float(values["started"])
    fps = frames_done / elapsed if elapsed > 0 else 0.0
    done, running = states.count("done"), states.count("running")
    segments = {"total": total, "done": done, "running": running, "redone": int(values.get("redone", 0)),
                "frames_done": frames_done, "frames": frames, "fps": round(fps, 2)}
    return store.update(job_id, allowed_from=("running",), segments=segments,
                        progress=round(min(frames_done / max(frames, 1), 0.99), 4),
                        stage=f"restoring: {done} of {total} segments done, {running} running",
                        eta_s=round((frames - frames_done) / fps, 1) if fps > 0 else None)


def restore_segment(job_id: str, index: int, first: int, stop: int | None) -> str | Retry:
    """Restore frames ``first`` to ``stop`` of a split job into stored video-only segment files."""
    rt = current()
    key = segments_key(job_id)
    job = rt.store.get(job_id)
    if job is None or job.status != "running" or job.segments is None:
        return "stopped"
    if rt.redis.hget(key, f"state:{index}") == b"done":
        return "done"  # delivered twice: its files are stored already
    if rt.redis.hincrby(key, f"runs:{index}", 1) > 1:
        rt.redis.hincrby(key, "redone", 1)
    frames = (job.segments["frames"] if stop is None else stop) - first
    report = SegmentReporter(job_id, index, frames)
    with rt.scratch(f"{job_id}-{index}-") as tmp:
        outputs = {fmt: Path(tmp) / f"segment.{fmt}" for fmt in job.formats}
        try:
            report.write(0, "running")
            noise = NoiseEstimate(job.noise["level"], job.noise["sigma"])
            run = rt.pipeline.restore_segment(rt.storage.local_copy(job.input_key, Path(tmp)), list(outputs.values()),
                                              first=first, stop=stop, noise=noise, task=job.options.task, scale=job.options.scale,
                                              model=job.options.model, report=report)
            for fmt, path in outputs.items():
                rt.storage.put(segment_key(job_id, index, fmt), path)
            if run.costs:
                rt.redis.hset(key, f"costs:{index}", json.dumps({fmt: asdict(cost) for fmt, cost in run.costs.items()}))
            report.write(run.frames, "done")
        except WorkerStopping:
            rt.redis.hset(key, f"state:{index}", "requeued")
            requeues = get_current_job().number_of_retries or 0
            if requeues >= MAX_SHUTDOWN_REQUEUES:
                finish(job_id, None, "failed", stage="failed", error=f"its workers were stopped {requeues + 1} times during segment {index}")
                return "failed"
            return Retry(max=MAX_SHUTDOWN_REQUEUES, enqueue_at_front=True)
        except Canceled:
            return "stopped"
        except Exception as exc:  # the segment cannot be restored: the job fails, the other segments stop
            log.exception("job %s: segment %d failed", job_id, index)
            message = str(exc) if isinstance(exc, ValueError) else f"{type(exc).__name__}: {exc}"
            finish(job_id, None, "failed", stage="failed", error=f"restoration failed in segment {index}: {message}")
            return "failed"
    return "done"


def join_segments(job_id: str) -> str:
    """Join the stored segments into each result format, with the source's audio; the job succeeds."""
    rt = current()
    job = rt.store.get(job_id)
    if job is None or job.status != "running" or job.segments is None:
        return "stopped"
    if rt.store.update(job_id, allowed_from=("running",), stage="joining the segments", eta_s=None) is None:
        return "stopped"
    count = job.segments["total"]
    with rt.scratch(f"{job_id}-join-") as tmp:
        try:
            parts = {}
            for fmt in job.formats:
                folder = Path(tmp) / fmt
                folder.mkdir()
                parts[Path(tmp) / f"result.{fmt}"] = [rt.storage.local_copy(segment_key(job_id, i, fmt), folder) for i in range(count)]
            fields = rt.redis.hgetall(segments_key(job_id))
            notes = rt.pipeline.join_segments(rt.storage.local_copy(job.input_key, Path(tmp)), parts, _summed_costs(fields))
            damaged = sorted(t for k, v in fields.items() if k.startswith(b"damaged:") for t in json.loads(v))
            if damaged and rt.store.update(job_id, allowed_from=("running",), input={**job.input, "damaged_at": damaged}) is None:
                return "stopped"
            for path in parts:
                rt.storage.put(result_key(job_id, path.suffix[1:]), path)
        except Exception as exc:
            log.exception("job %s: join failed", job_id)
            finish(job_id, None, "failed", stage="failed", error=f"joining the segments failed: {type(exc).__name__}: {exc}")
            return "failed"
    _drop_segments(job_id, job)
    if finish(job_id, None, "succeeded", progress=1.0, stage="done", result_notes=notes or None) is None:
        drop_results(job_id)  # canceled while joining
        return "stopped"
    log.info("job %s: %d segments joined", job_id, count)
    return "succeeded"


def _summed_costs(fields: dict[bytes, bytes]) -> dict[str, EncodingCost]:
    """Each lossy result format's encoding cost over every segment (each stored its own in the hash)."""
    total: dict[str, EncodingCost] = {}
    for key, value in fields.items():
        if key.startswith(b"costs:"):
            for fmt, cost in json.loads(value).items():
                total[fmt] = total.get(fmt, EncodingCost()).add(EncodingCost(**cost))
    return total


def _drop_segments(job_id: str, job: JobRecord) -> None:
    rt = current()
    for index in range(job.segments["total"]):
        for fmt in job.formats:
            rt.storage.delete(segment_key(job_id, index, fmt))


def on_part_abandoned(rq_job, connection, exc_type, exc_value, traceback) -> None:
    """RQ's failure callback of segment and join tasks: with retries left RQ runs the task again
    (the job stays running); otherwise the job fails with the reason."""
    if rq_job.retries_left:
        return
    finish(rq_job.args[0], None, "failed", stage="failed",
           error=f"a worker stopped during a part of the job on each of its attempts ({exc_type.__name__ if exc_type else 'lost'})")
