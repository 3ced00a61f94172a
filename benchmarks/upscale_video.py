"""Videos upscaled x2 through `restora run`: the result's size, frames, fps and audio, and peak memory.

    .venv/bin/python benchmarks/upscale_video.py     # about 10 minutes on 2 cores; writes results/upscale_video.{md,json}

1. A seeded 5 s 480x270 25 fps H.264 clip with an AAC tone (sigma 15), upscaled x2: the result must
   be 960x540 with the source's frame count, fps, duration and decoded audio sample count.
2. Seeded 720p clips of 1 s and 3 s, upscaled x2 to 2560x1440, and the 3 s clip denoised only: peak
   resident memory (``/usr/bin/time -v``) of each `restora run` process. Frames stream through
   (decode, denoise, enlarge in tiles, encode), so memory must not grow with the clip's length.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import av
import numpy as np

from models.video.synthetic import make_clip

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def media(path: Path) -> dict:
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        facts = {"width": video.width, "height": video.height, "fps": float(video.average_rate),
                 "frames": sum(1 for _ in container.decode(video=0))}
    with av.open(str(path)) as container:
        facts["audio_samples"] = sum(f.samples for f in container.decode(audio=0)) if container.streams.audio else 0
        facts["duration_s"] = round(container.duration / 1e6, 3) if container.duration else None
    return facts


def timed_run(src: Path, dst: Path, *args: str) -> dict:
    """`restora run` under /usr/bin/time -v: wall seconds and peak RSS."""
    done = subprocess.run(["/usr/bin/time", "-v", sys.executable, "-m", "restora.cli", "run", str(src), "-o", str(dst), *args],
                          cwd=ROOT, capture_output=True, text=True, check=True)
    rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr).group(1))
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", done.stderr).group(1)
    seconds = sum(float(part) * 60**i for i, part in enumerate(reversed(wall.split(":"))))
    return {"seconds": round(seconds, 1), "peak_rss_mb": round(rss_kb / 1024, 1)}


def main() -> None:
    report: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        small, big = tmp / "small.mp4", tmp / "small-x2.mp4"
        make_clip(small, np.random.default_rng(11), sigma=15, frames=125, width=480, height=270, fps=25)
        run = timed_run(small, big, "--task", "upscale", "--scale", "2")
        source, result = media(small), media(big)
        report["480x270 x2"] = {"source": source, "result": result, **run,
                                "same_frames_fps_audio": all(source[k] == result[k] for k in ("frames", "fps", "audio_samples", "duration_s")),
                                "doubled": (result["width"], result["height"]) == (2 * source["width"], 2 * source["height"])}
        print(report["480x270 x2"], flush=True)
        for seconds in (1, 3):
            clip = tmp / f"hd-{seconds}s.mp4"
            make_clip(clip, np.random.default_rng(12), sigma=15, frames=25 * seconds, width=1280, height=720, fps=25)
            report[f"720p {seconds} s x2"] = {**timed_run(clip, tmp / f"hd-{seconds}s-x2.mp4", "--task", "upscale", "--scale", "2"),
                                               "result": media(tmp / f"hd-{seconds}s-x2.mp4")}
            print(seconds, report[f"720p {seconds} s x2"], flush=True)
        report["720p 3 s denoise only"] = timed_run(tmp / "hd-3s.mp4", tmp / "hd-3s-denoised.mp4")
        print(report["720p 3 s denoise only"], flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "upscale_video.json").write_text(json.dumps(report, indent=1) + "\n")
    lines = ["# Videos upscaled x2 (`restora run --task upscale --scale 2`)", "",
             "Command: `.venv/bin/python benchmarks/upscale_video.py` (2-core machine, CPU). Peak RSS of the `restora run` process.", "",
             "| run | result | frames | fps | audio samples | seconds | peak RSS MB |", "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    first = report["480x270 x2"]
    lines.append(f"| 480x270 5 s, source | {first['source']['width']}x{first['source']['height']} | {first['source']['frames']} | "
                 f"{first['source']['fps']:g} | {first['source']['audio_samples']} | | |")
    lines.append(f"| 480x270 5 s, x2 | {first['result']['width']}x{first['result']['height']} | {first['result']['frames']} | "
                 f"{first['result']['fps']:g} | {first['result']['audio_samples']} | {first['seconds']} | {first['peak_rss_mb']} |")
    for name in ("720p 1 s x2", "720p 3 s x2"):
        row = report[name]
        lines.append(f"| {name} | {row['result']['width']}x{row['result']['height']} | {row['result']['frames']} | {row['result']['fps']:g} | "
                     f"{row['result']['audio_samples']} | {row['seconds']} | {row['peak_rss_mb']} |")
    row = report["720p 3 s denoise only"]
    lines.append(f"| 720p 3 s denoise only | 1280x720 | | | | {row['seconds']} | {row['peak_rss_mb']} |")
    (RESULTS / "upscale_video.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
