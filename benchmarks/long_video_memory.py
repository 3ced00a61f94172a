"""Peak memory of restoring a long 720p (or ``--size``) clip with `restora run`, measured by /usr/bin/time -v.

Generates a seeded noisy 1280x720 (by default) H.264 clip with an AAC tone for the whole duration, restores it
in a separate process (`restora run clip.mp4 -o restored.mp4`) under `/usr/bin/time -v`, then
checks that the result has the same frame count, duration and fps, and its audio stream copied
(same codec, packet count and duration). Writes benchmarks/results/long_video_memory.{md,json}.

    python benchmarks/long_video_memory.py --minutes 10 --fps 2

The frame rate is a parameter because restoring 720p here runs at about 1-2 frames per second
(2 shared cores): 15 000 frames of a 25 fps clip would take hours. Memory does not depend on the
clip length (frames stream through a window of a few), which a shorter run can also show.
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np

from models.video.synthetic import make_clip

RESULTS = Path(__file__).resolve().parent / "results"


def describe(path: Path) -> dict:
    """Frame count (packets), duration, fps and audio facts, read by demuxing only."""
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        audio = container.streams.audio[0] if container.streams.audio else None
        frames, audio_packets, last_video, last_audio = 0, 0, 0.0, 0.0
        for packet in container.demux():
            if packet.dts is None or not packet.size:
                continue
            end = float((packet.pts + (packet.duration or 0)) * packet.time_base)
            if packet.stream.type == "video":
                frames += 1
                last_video = max(last_video, end)
            elif packet.stream.type == "audio":
                audio_packets += 1
                last_audio = max(last_audio, end)
        return {
            "frames": frames,
            "fps": float(video.average_rate),
            "width": video.width,
            "height": video.height,
            "video_seconds": round(last_video, 3),
            "audio_codec": audio.codec_context.name if audio else None,
            "audio_packets": audio_packets,
            "audio_seconds": round(last_audio, 3),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--fps", type=int, default=2)
    parser.add_argument("--sigma", type=float, default=15.0)
    parser.add_argument("--size", default="1280x720", help="WxH; other sizes than 720p write long_video_memory_<H>p.*")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/restora-long-video"))
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    clip, restored = args.workdir / "clip.mp4", args.workdir / "restored.mp4"
    frames = round(args.minutes * 60 * args.fps)
    width, height = (int(v) for v in args.size.split("x"))
    name = "long_video_memory" if (width, height) == (1280, 720) else f"long_video_memory_{height}p"
    started = time.perf_counter()
    make_clip(clip, np.random.default_rng(10), args.sigma, frames=frames, width=width, height=height, fps=args.fps)
    generate_seconds = time.perf_counter() - started
    source = describe(clip)
    print(f"generated {clip}: {source} in {generate_seconds:.0f} s", flush=True)

    restora = Path(sys.executable).with_name("restora")
    command = ["/usr/bin/time", "-v", str(restora), "run", str(clip), "-o", str(restored)]
    started = time.perf_counter()
    run = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if run.returncode != 0:
        raise SystemExit(f"restora run failed:\n{run.stdout}\n{run.stderr}")
    peak_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", run.stderr).group(1))
    result = describe(restored)
    checks = {
        "frames": result["frames"] == source["frames"] == frames,
        "fps": abs(result["fps"] - source["fps"]) < 1e-6,
        "duration": abs(result["video_seconds"] - source["video_seconds"]) <= 1 / args.fps,
        "size": (result["width"], result["height"]) == (source["width"], source["height"]),
        "audio": result["audio_codec"] == source["audio_codec"] and result["audio_packets"] == source["audio_packets"]
        and abs(result["audio_seconds"] - source["audio_seconds"]) < 0.05,
        "peak_under_2_GiB": peak_kb * 1024 < 2 * 2**30,
    }
    report = {
        "command": " ".join(["/usr/bin/time", "-v", "restora", "run", "clip.mp4", "-o", "restored.mp4"]),
        "clip": {"minutes": args.minutes, "fps": args.fps, "sigma": args.sigma, "size": args.size, "codec": "H.264 + AAC"},
        "source": source,
        "result": result,
        "peak_rss_mib": round(peak_kb / 1024, 1),
        "restore_seconds": round(seconds, 1),
        "restore_fps": round(frames / seconds, 3),
        "generate_seconds": round(generate_seconds, 1),
        "checks": checks,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{name}.json").write_text(json.dumps(report, indent=1) + "\n")
    (args.out / f"{name}.md").write_text(markdown(report, args))
    print(json.dumps(report, indent=1))
    if not all(checks.values()):
        raise SystemExit(f"failed checks: {[k for k, ok in checks.items() if not ok]}")


def markdown(report: dict, args: argparse.Namespace) -> str:
    s, r = report["source"], report["result"]
    return "\n".join([
        "# Long clip in bounded memory", "",
        f"`python benchmarks/long_video_memory.py --minutes {args.minutes:g} --fps {args.fps} --size {args.size}`: a seeded {args.minutes:g}-minute "
        f"{args.size} clip at **{args.fps} fps** (H.264 + AAC, sigma {args.sigma:g}), restored by `{report['command']}` "
        "(the video network's memory budget at its default, 256 MB: larger frames are restored in tiles). "
        f"The frame rate is low only so the run fits the time here ({args.size} restores at ~{report['restore_fps']:.1f} fps on 2 shared cores); "
        "memory does not grow with the frame count.", "",
        "| | source | restored |", "|---|---:|---:|",
        f"| frames | {s['frames']} | {r['frames']} |",
        f"| fps | {s['fps']:g} | {r['fps']:g} |",
        f"| video duration (s) | {s['video_seconds']} | {r['video_seconds']} |",
        f"| size | {s['width']}x{s['height']} | {r['width']}x{r['height']} |",
        f"| audio | {s['audio_codec']}, {s['audio_packets']} packets, {s['audio_seconds']} s | {r['audio_codec']}, {r['audio_packets']} packets, {r['audio_seconds']} s |",
        "",
        f"Peak resident memory (`Maximum resident set size`): **{report['peak_rss_mib']:.0f} MiB**; restore took "
        f"{report['restore_seconds']:.0f} s ({report['restore_fps']:.2f} fps). Checks: "
        + ", ".join(f"{k} {'ok' if v else 'FAILED'}" for k, v in report["checks"].items()) + ".", "",
    ])


if __name__ == "__main__":
    main()
