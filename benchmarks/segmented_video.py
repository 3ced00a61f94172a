"""Segmented video jobs on one machine: 1 vs 2 workers, a worker killed mid-clip, an image behind a clip.

Makes a seeded 2-minute 640x360 25 fps H.264 clip with an AAC tone (sigma 20 noise over a known
clean scene), then runs `restora serve` (its own Redis and data directory) several times:

1. ``unsplit``: 1 worker, RESTORA_SEGMENT_SECONDS=0 (the clip restored in one piece): the
   reference for quality and for the overhead of splitting;
2. ``1 worker``: the defaults (20 s segments), while it runs an image is submitted: when it starts
   and the queue positions it showed while waiting;
3. ``2 workers``: `restora serve --workers 2` (each worker one core);
4. ``2 workers, one killed``: SIGKILL of one worker when the job is 40 % done; the job must succeed
   with at most one segment restored twice (the job JSON's ``segments.redone``).

Each result is checked against the source (frame count, fps, duration, audio samples) and scored
against the clean scene (PSNR per frame, mean). Writes benchmarks/results/segmented_video.{md,json}.

    python benchmarks/segmented_video.py            # about 35 minutes here
    python benchmarks/segmented_video.py --seconds 30 --segment-seconds 6   # a quick look
"""
from __future__ import annotations

import argparse
import json
import math
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import av
import numpy as np

from models.video.synthetic import Scene, make_clip
from restora.client import Client

RESULTS = Path(__file__).resolve().parent / "results"
SEED = 14
SIGMA = 20.0
SIZE = (640, 360)
FPS = 25


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def media_facts(path: Path) -> dict:
    """Frames, fps, video duration and decoded audio samples of a clip."""
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        fps, size = float(video.average_rate), [video.width, video.height]  # read before demuxing, which can change them
        seconds = float(video.duration * video.time_base) if video.duration else container.duration / av.time_base
        frames = sum(1 for packet in container.demux(video) if packet.size)
    samples = 0
    with av.open(str(path)) as container:
        if container.streams.audio:
            samples = sum(frame.samples for frame in container.decode(audio=0))
    return {"frames": frames, "fps": fps, "seconds": round(seconds, 3), "audio_samples": samples, "size": size}


def frame_psnrs(scene: Scene, path: Path) -> list[float]:
    scores = []
    with av.open(str(path)) as container:
        for clean, frame in zip(scene.clean_frames(), container.decode(video=0)):
            mse = float(np.mean((frame.to_ndarray(format="rgb24").astype(np.float64) - clean) ** 2))
            scores.append(10 * math.log10(255**2 / max(mse, 1e-12)))
    return scores


class Server:
    """`restora serve` in a process group of its own, on a free port, with its own data directory."""

    def __init__(self, workdir: Path, workers: int, env: dict[str, str]):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        data = workdir / f"data-{self.port}"
        restora = Path(sys.executable).with_name("restora")
        self.log = open(workdir / f"serve-{self.port}.log", "w")
        self.process = subprocess.Popen([str(restora), "serve", "--port", str(self.port), "--workers", str(workers)],
                                        env=os.environ | {"RESTORA_DATA_DIR": str(data)} | env, stdout=self.log, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        self.workers = workers

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 180
        with Client(self.url) as client:
            while time.monotonic() < deadline:
                try:
                    if client.http.get("/v1/models").json().get("workers", 0) >= self.workers:
                        return
                except Exception:
                    pass
                time.sleep(1)
        raise SystemExit(f"server on {self.url} did not get {self.workers} workers ready")

    def worker_pids(self) -> list[int]:
        """The restore workers (not the webhook sender) of this server."""
        out = subprocess.run(["pgrep", "-f", "-g", str(os.getpgid(self.process.pid)), "restora.cli worker$"], capture_output=True, text=True)
        return [int(pid) for pid in out.stdout.split()]

    def stop(self) -> None:
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(90)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.log.close()


def run(name: str, workdir: Path, clip: Path, scene: Scene, workers: int, env: dict[str, str], *, image: Path | None = None,
        kill_at: float | None = None) -> dict:
    print(f"== {name}", flush=True)
    server = Server(workdir, workers, env)
    try:
        server.wait_ready()
        with Client(server.url, timeout=600) as client:
            started = time.perf_counter()
            job = client.submit(clip)
            extra: dict = {}
            watcher = None
            if image is not None:
                watcher = threading.Thread(target=_image_behind_clip, args=(client, job.id, image, extra))
                watcher.start()
            if kill_at is not None:
                while (job := client.get(job.id)).progress < kill_at and not job.finished:
                    time.sleep(0.5)
                victim = server.worker_pids()[0]
                os.kill(victim, signal.SIGKILL)
                extra["killed"] = {"pid": victim, "at_progress": job.progress, "segments": job.segments}
                print(f"   SIGKILL worker {victim} at progress {job.progress:.2f}", flush=True)
            job = client.wait(job.id)
            seconds = time.perf_counter() - started
            if watcher:
                watcher.join()
            if job.status != "succeeded":
                raise SystemExit(f"{name}: job {job.status}: {job.error}")
            out = workdir / f"{name.replace(' ', '_').replace(',', '')}.mp4"
            client.download(job.id, out)
            record = client.http.get(f"/v1/jobs/{job.id}").json()
    finally:
        server.stop()
    psnrs = frame_psnrs(scene, out)
    result = {"seconds": round(seconds, 1), "psnr": round(float(np.mean(psnrs)), 3), "min_frame_psnr": round(min(psnrs), 2),
              "segments": record.get("segments"), "media": media_facts(out), **extra}
    print(f"   {json.dumps(result)}", flush=True)
    result["frame_psnr"] = psnrs
    return result


def _image_behind_clip(client: Client, clip_job: str, image: Path, extra: dict) -> None:
    """Once the clip's segments run, submit an image; record its queue positions and when it starts."""
    while not (client.get(clip_job).segments or {}).get("running"):
        time.sleep(0.2)
    time.sleep(5)  # well inside a segment
    submitted = time.perf_counter()
    photo = client.submit(image)
    positions = []
    while (photo := client.get(photo.id)).status == "queued":
        positions.append(client.http.get(f"/v1/jobs/{photo.id}").json()["queue_position"])
        time.sleep(0.2)
    waited = time.perf_counter() - submitted
    photo = client.wait(photo.id)
    extra["image"] = {"waited_s": round(waited, 1), "queue_positions_seen": sorted(set(positions)), "status": photo.status}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=120.0, help="clip length")
    parser.add_argument("--segment-seconds", type=float, default=20.0)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/restora-segmented"))
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    frames = round(args.seconds * FPS)
    rng = np.random.default_rng(SEED)
    clip = args.workdir / "clip.mp4"
    scene = make_clip(clip, rng, SIGMA, frames=frames, width=SIZE[0], height=SIZE[1], fps=FPS, audio=True)
    image = args.workdir / "photo.png"
    import cv2

    cv2.imwrite(str(image), np.clip(scene.frame(0) + rng.normal(0, SIGMA, scene.frame(0).shape), 0, 255).astype(np.uint8)[..., ::-1])
    source = media_facts(clip)
    noisy_psnr = float(np.mean(frame_psnrs(scene, clip)))
    print(f"clip: {source}, noisy PSNR {noisy_psnr:.2f} dB", flush=True)
    segments = {"RESTORA_SEGMENT_SECONDS": str(args.segment_seconds)}
    runs = {
        "unsplit": run("unsplit", args.workdir, clip, scene, 1, {"RESTORA_SEGMENT_SECONDS": "0"}),
        "1 worker": run("1 worker", args.workdir, clip, scene, 1, segments, image=image),
        "2 workers": run("2 workers", args.workdir, clip, scene, 2, segments),
        "2 workers, one killed": run("2 workers, one killed", args.workdir, clip, scene, 2, segments, kill_at=0.4),
    }
    reference = runs["unsplit"]
    for result in runs.values():
        result["psnr_vs_unsplit"] = round(result["psnr"] - reference["psnr"], 3)
        result["worst_frame_vs_unsplit"] = round(min(a - b for a, b in zip(result["frame_psnr"], reference["frame_psnr"])), 3)
        result["same_media"] = {key: result["media"][key] == source[key] for key in ("frames", "fps", "seconds", "audio_samples", "size")}
    report = {
        "command": f"python benchmarks/segmented_video.py --seconds {args.seconds:g} --segment-seconds {args.segment_seconds:g}",
        "machine": {"cores": os.cpu_count()},
        "clip": {**source, "sigma": SIGMA, "codec": "H.264 CRF 18 + AAC", "noisy_psnr": round(noisy_psnr, 3)},
        "segment_seconds": args.segment_seconds,
        "speedup_2_workers": round(runs["1 worker"]["seconds"] / runs["2 workers"]["seconds"], 3),
        "split_overhead_1_worker": round(runs["1 worker"]["seconds"] / runs["unsplit"]["seconds"] - 1, 3),
        "runs": {name: {k: v for k, v in result.items() if k != "frame_psnr"} for name, result in runs.items()},
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "segmented_video.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out / "segmented_video.md").write_text(markdown(report))
    print(markdown(report))


def markdown(report: dict) -> str:
    clip = report["clip"]
    lines = [
        "# Segmented video jobs",
        "",
        f"`{report['command']}`: a {clip['seconds']:.0f} s {clip['size'][0]}x{clip['size'][1]} {clip['fps']:g} fps clip "
        f"({clip['frames']} frames, {clip['codec']}, sigma {clip['sigma']:g}, noisy {clip['noisy_psnr']:.2f} dB), "
        f"{report['machine']['cores']} cores, segments of {report['segment_seconds']:g} s.",
        "",
        f"- 2 workers vs 1 worker: **{report['speedup_2_workers']:.2f}x** faster",
        f"- splitting on 1 worker costs {100 * report['split_overhead_1_worker']:+.1f} % time (warm-up frames, the join) vs the unsplit run",
        "",
        "| run | seconds | PSNR dB | vs unsplit dB | worst frame vs unsplit dB | segments done / redone | same frames, fps, duration, audio samples |",
        "| --- | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    for name, run in report["runs"].items():
        seg = run.get("segments") or {}
        same = "yes" if all(run["same_media"].values()) else ", ".join(k for k, ok in run["same_media"].items() if not ok) + " differ"
        lines.append(f"| {name} | {run['seconds']:.0f} | {run['psnr']:.3f} | {run['psnr_vs_unsplit']:+.3f} | {run['worst_frame_vs_unsplit']:+.3f} | "
                     f"{seg.get('done', '-')}/{seg.get('total', '-')} / {seg.get('redone', '-')} | {same} |")
    image = report["runs"]["1 worker"].get("image")
    if image:
        lines += ["", f"An image submitted while the 1-worker run restored a segment waited {image['waited_s']} s before it started "
                      f"(queue positions shown while it waited: {image['queue_positions_seen']})."]
    killed = report["runs"]["2 workers, one killed"].get("killed")
    if killed:
        lines += [f"SIGKILL of one worker at {100 * killed['at_progress']:.0f} %: the job succeeded, "
                  f"{report['runs']['2 workers, one killed']['segments']['redone']} segment(s) restored twice."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
