"""The ``restora`` command: serve, worker, run, submit, models, eval."""
from __future__ import annotations

import os
import signal
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from core.jobs import Options
from core.logs import configure_logging
from core.queues import RESTORE_QUEUES, WEBHOOK_QUEUE
from core.settings import Settings
from models import formats
from models.interface import TASKS

app = typer.Typer(help="Restora: restoration of raw image stacks, video clips and images.", no_args_is_help=True)
console = Console(stderr=True)


class NoiseLevel(str, Enum):
    auto = "auto"
    low = "low"
    medium = "medium"
    high = "high"


class Layout(str, Enum):
    auto = "auto"
    thw = "thw"
    hwt = "hwt"


class KindChoice(str, Enum):
    auto = "auto"
    stack = "stack"
    image = "image"
    video = "video"


Task = Enum("Task", {task: task for task in TASKS}, type=str)

# The job options `restora run` and `restora submit` share (the API's form fields).
NoiseLevelOption = Annotated[NoiseLevel, typer.Option(help="Override the noise classifier")]
LayoutOption = Annotated[Layout, typer.Option(help="Axis order of a .npy stack")]
KindOption = Annotated[KindChoice, typer.Option(help="What a .npy is when its shape is ambiguous: (H, W, 3|4) is an image unless --kind stack")]
TaskOption = Annotated[Task, typer.Option(help="denoise, or upscale (images and videos; after denoising) by --scale")]
ScaleOption = Annotated[int | None, typer.Option(help="With --task upscale: 2 or 4 (or the --model's own factor)")]
ModelOption = Annotated[str | None, typer.Option(help="A restoration model by name (`restora models list`) instead of the one for the noise level")]


def _progress_bar() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"), TimeElapsedColumn(), console=console)


class _BarReporter:
    """Shows ``restora run``'s progress and what the classifier decided."""

    def __init__(self, bar: Progress):
        self.bar, self.task = bar, bar.add_task("restoring", total=1.0)
        self.sigma_note = ""

    def input(self, info: dict) -> None:
        self.bar.console.print(f"input: {info}")

    def noise(self, estimate, source: str) -> None:
        lower = "" if estimate.lower is None else f"; texture reads like light noise, blended as if {estimate.lower:.2f}"
        self.bar.console.print(f"noise: {estimate.level} (sigma {estimate.sigma:.2f}, {source}{lower})")

    def noise_recheck(self, frame: int, sigma: float) -> None:
        """Shown beside the progress, not printed: a long clip re-checks its noise every 25 frames."""
        self.sigma_note = f" (sigma now {sigma:.2f})"

    def damaged(self, seconds: list[float]) -> None:
        at = ", ".join(f"{t:.2f}" for t in seconds[:10]) + (", ..." if len(seconds) > 10 else "")
        self.bar.console.print(f"[yellow]note:[/yellow] damaged data the decoder could not read was skipped at {at} s: "
                               "the result is missing or marred there as the input is")

    def model(self, name: str, version: str) -> None:
        self.bar.console.print(f"model: {name} v{version}")

    def progress(self, fraction: float, stage: str) -> None:
        self.bar.update(self.task, completed=fraction, description=stage + self.sigma_note)


def _output_format(output: Path) -> str:
    fmt = formats.format_of(output)
    if fmt is None:
        known = sorted({f for kind_formats in formats.RESULT_FORMATS.values() for f in kind_formats})
        raise typer.BadParameter(f"unknown output extension {output.suffix!r}; use one of {', '.join('.' + f for f in known)}", param_hint="-o")
    return fmt


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8000,
    workers: Annotated[int, typer.Option("--workers", min=1, help="Restore worker processes; they split the cores unless RESTORA_WORKER_THREADS says otherwise")] = 1,
) -> None:
    """Run the whole service on this machine: API, restore workers, a webhook sender, and (without RESTORA_REDIS_URL) its own Redis."""
    import uvicorn

    from app.main import create_app
    from restora.redis_server import RedisServer
    from restora.supervisor import WorkerPool

    configure_logging()
    settings = Settings()
    redis_server = None
    if not settings.redis_url:
        redis_server = RedisServer(settings.data_dir / "redis")
        settings.redis_url = redis_server.start()
        console.print(f"embedded Redis at {settings.redis_url}")
    env = os.environ | {"RESTORA_REDIS_URL": settings.redis_url}
    if workers > 1 and not settings.worker_threads:  # workers sharing a machine split its cores
        env["RESTORA_WORKER_THREADS"] = str(max(1, (os.cpu_count() or 1) // workers))
    worker_command = [sys.executable, "-m", "restora.cli", "worker"]
    pool = WorkerPool([worker_command] * workers + [[*worker_command, "--queue", WEBHOOK_QUEUE]], env)
    # uvicorn shuts down gracefully on SIGTERM, then raises it again under the handler it found; left
    # at the default, that kills this process before the finally below stops the workers and Redis.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    try:
        uvicorn.run(create_app(settings), host=host, port=port, log_level="info", log_config=None)
    finally:
        pool.stop()
        if redis_server:
            redis_server.stop()


@app.command()
def worker(
    queue: Annotated[list[str] | None, typer.Option(help=f"Queue(s) to serve, first first (default: {', '.join(RESTORE_QUEUES)})")] = None,
    burst: Annotated[bool, typer.Option(help="Stop when the queues are empty")] = False,
) -> None:
    """Run a worker against RESTORA_REDIS_URL (start more to scale out)."""
    from workers.worker import run_worker

    configure_logging()
    queues = tuple(queue or RESTORE_QUEUES)
    unknown = set(queues) - {*RESTORE_QUEUES, WEBHOOK_QUEUE}
    if unknown:
        raise typer.BadParameter(f"unknown queue(s) {', '.join(sorted(unknown))}; use {', '.join((*RESTORE_QUEUES, WEBHOOK_QUEUE))}", param_hint="--queue")
    run_worker(Settings(), queues, burst=burst)


@app.command()
def run(
    input: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="A .npy stack or frame, a video, or an image")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Result file; its extension picks the format")],
    noise_level: NoiseLevelOption = NoiseLevel.auto,
    layout: LayoutOption = Layout.auto,
    kind: KindOption = KindChoice.auto,
    task: TaskOption = Task.denoise,
    scale: ScaleOption = None,
    model: ModelOption = None,
    device: Annotated[str | None, typer.Option(help="Torch device (default: cuda if present, else cpu)")] = None,
    video_memory_mb: Annotated[float | None, typer.Option(min=1, help="Video network memory budget per frame; larger frames are tiled (default 256)")] = None,
) -> None:
    """Restore one file in this process, no server."""
    from models import io
    from models.device import limit_threads
    from models.pipeline import Pipeline

    fmt = _output_format(output)
    try:
        detected = io.detect_kind(input, kind.value)
        if fmt not in formats.RESULT_FORMATS[detected]:
            raise ValueError(f"{detected} results cannot be written as .{fmt}; use " + ", ".join(f".{f}" for f in formats.RESULT_FORMATS[detected]))
        Options(task=task.value, scale=scale, model=model)  # the service's own check of task, scale and model
    except (ValueError, ValidationError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    limit_threads(os.cpu_count() or 1)  # the video codecs' own defaults take more threads than there are cores
    pipeline = Pipeline(device, kinds=(detected,), video_net_memory_mb=video_memory_mb, models_dir=Settings().user_models_dir)

    with _progress_bar() as bar:
        try:
            summary = pipeline.restore_file(input, [output], noise_level=noise_level.value, layout=layout.value, kind=kind.value,
                                            task=task.value, scale=scale, model=model, report=_BarReporter(bar))
        except ValueError as exc:
            console.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(1) from None
    console.print(f"wrote {output} in {summary.seconds:.2f} s")
    _note_exactness(summary.input, fmt, summary.result_notes)


@app.command()
def submit(
    input: Annotated[Path, typer.Argument(exists=True, dir_okay=False)],
    output: Annotated[Path, typer.Option("-o", "--output", help="Where to save the result; its extension picks the format")],
    server: Annotated[str, typer.Option(envvar="RESTORA_SERVER", help="Restora server URL")] = "http://127.0.0.1:8000",
    api_key: Annotated[str | None, typer.Option(envvar="RESTORA_API_KEY", help="API key, when the server needs one")] = None,
    noise_level: NoiseLevelOption = NoiseLevel.auto,
    layout: LayoutOption = Layout.auto,
    kind: KindOption = KindChoice.auto,
    task: TaskOption = Task.denoise,
    scale: ScaleOption = None,
    model: ModelOption = None,
) -> None:
    """Upload a file to a server, show progress, download the result."""
    import httpx

    from restora.client import Client, RestoraError

    fmt = _output_format(output)
    try:
        with Client(server, api_key) as client, _progress_bar() as bar:
            job = client.submit(input, noise_level=noise_level.value, layout=layout.value, kind=kind.value, formats=fmt,
                                task=task.value, scale=scale, model=model)
            task = bar.add_task(f"job {job.id}", total=1.0)

            def show(j) -> None:
                level = f" [{j.noise.level}]" if j.noise else ""
                place = f" (number {j.queue_position} in line)" if j.queue_position else ""
                eta = f", about {j.eta_s:.0f} s left" if j.status == "running" and j.eta_s is not None else ""
                bar.update(task, completed=j.progress, description=f"{j.status}: {j.stage}{place}{level}{eta}")

            job = client.wait(job.id, on_progress=show)
            if job.status != "succeeded":
                console.print(f"[red]job {job.id} {job.status}:[/red] {job.error or ''}")
                raise typer.Exit(1)
            client.download(job.id, output, fmt)
    except RestoraError as exc:
        console.print(f"[red]server refused ({exc.status_code}):[/red] {exc.detail}")
        raise typer.Exit(1) from None
    except httpx.HTTPError as exc:
        console.print(f"[red]cannot reach {server}:[/red] {exc}")
        raise typer.Exit(1) from None
    console.print(f"wrote {output} (noise {job.noise.level}, sigma {job.noise.sigma:g}, model {job.model.name} v{job.model.version})")
    _note_exactness(job.input, fmt, job.result_notes or {})


def _note_exactness(info: dict, fmt: str, result_notes: dict[str, str]) -> None:
    """What the result written is not: the input's alpha or exact values, or (``result_notes``) the restored frames."""
    for note in (formats.exactness_left_out(info, fmt), result_notes.get(fmt)):
        if note:
            console.print(f"[yellow]note:[/yellow] {note}")


user_models = typer.Typer(help="Your own model files (spandrel architectures): add them, list what the workers offer.", no_args_is_help=True)
app.add_typer(user_models, name="models")


@user_models.command("add")
def models_add(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="A .safetensors file, or a .pth / .ckpt state dict")],
    name: Annotated[str | None, typer.Option(help="The name jobs use (default: the file's name without its extension)")] = None,
    replace: Annotated[bool, typer.Option(help="Overwrite a model of the same name")] = False,
) -> None:
    """Check a model file and put it in RESTORA_MODELS_DIR as NAME.safetensors (a .pth is converted, never
    unpickled again). Workers reading that folder offer it by name within their maintenance interval."""
    from models.registry import REGISTRY
    from models.user_models import ModelFileError, add

    folder = Settings().user_models_dir
    try:
        info = add(file, folder, name, reserved=frozenset(s.name for s in REGISTRY), replace=replace)
    except ModelFileError as exc:
        console.print(f"[red]refused:[/red] {exc}")
        raise typer.Exit(1) from None
    what = f"upscale x{info.scale}" if info.task == "upscale" else info.task
    console.print(f"added {info.name}: {info.architecture}, {what}, {info.channels} channel(s) -> {folder / info.file}")


@user_models.command("list")
def models_list() -> None:
    """Restora's own restorers and the files in RESTORA_MODELS_DIR: what each does, and why a file is refused."""
    from rich.table import Table

    from models.registry import REGISTRY
    from models.user_models import UserModels

    folder = Settings().user_models_dir
    found = UserModels(folder, "cpu", reserved=frozenset(s.name for s in REGISTRY))
    table = Table("name", "source", "task", "scale", "inputs", "architecture / level")
    for entry in [s.describe() for s in REGISTRY if s.role == "restorer"] + found.catalog():
        table.add_row(entry["name"], entry["source"], entry["task"], str(entry["scale"] or ""), ", ".join(entry["kinds"]),
                      entry["architecture"] or entry["level"] or "")
    Console().print(table)
    for file, problem in found.problems.items():
        console.print(f"[yellow]{folder / file} is not offered:[/yellow] {problem}")


evaluate = typer.Typer(help="Measure Restora against strong baselines on seeded synthetic data.", no_args_is_help=True)
app.add_typer(evaluate, name="eval")
PASS_THROUGH = {"allow_extra_args": True, "ignore_unknown_options": True}


@evaluate.command("stacks", context_settings=PASS_THROUGH)
def eval_stacks(ctx: typer.Context) -> None:
    """PSNR/SSIM/seconds per degradation family and level vs temporal mean, DIS-aligned mean, tuned BM3D
    denoising and deblurring, with leave-one-family-out rows, oracle and upper-bound references
    (options: --quick, --stacks N, --families, --levels, --tune-deblur, --out DIR; see python -m models.eval_stacks --help)."""
    from models.eval_stacks import main

    main(ctx.args)


@evaluate.command("video", context_settings=PASS_THROUGH)
def eval_video(ctx: typer.Context) -> None:
    """PSNR/SSIM/fps at sigma 15 and 30 and on an H.264 clip vs FFmpeg's denoisers (tuned) and per-frame BM3D
    (options: --quick, --tune, --out DIR; see python -m models.eval_video --help)."""
    from models.eval_video import main

    main(ctx.args)


@evaluate.command("images", context_settings=PASS_THROUGH)
def eval_images(ctx: typer.Context) -> None:
    """PSNR/SSIM/seconds per megapixel on held-out photos (gray, colour; Gaussian, camera raw, JPEG) vs BM3D
    given the true sigma and tuned non-local means (options: --quick, --tune, --out DIR)."""
    from models.eval_images import main

    main(ctx.args)


@evaluate.command("noise", context_settings=PASS_THROUGH)
def eval_noise(ctx: typer.Context) -> None:
    """The image and video noise classifiers on a varied seeded set with known noise (options: --out DIR;
    --calibrate: what the image classifier's network check reads on clean training images)."""
    from models.eval_noise import main

    main(ctx.args)


@evaluate.command("upscale", context_settings=PASS_THROUGH)
def eval_upscale(ctx: typer.Context) -> None:
    """The x2 / x4 upscalers on held-out photos reduced by area averaging vs bicubic, Lanczos and FFmpeg's
    Lanczos scaler: PSNR/SSIM on luma, seconds per output megapixel (options: --quick, --out DIR)."""
    from models.eval_upscale import main

    main(ctx.args)


synth = typer.Typer(help="Make seeded synthetic inputs with ground truth (to try Restora or measure it).", no_args_is_help=True)
app.add_typer(synth, name="synth")


@synth.command("stack")
def synth_stack(
    output: Annotated[Path, typer.Argument(help="The noisy stack (.npy, uint16)")],
    level: Annotated[NoiseLevel, typer.Option(help="Noise level (photons at the brightest part)")] = NoiseLevel.medium,
    frames: Annotated[int, typer.Option(min=2)] = 100,
    size: Annotated[int, typer.Option(min=32)] = 271,
    layout: Annotated[Layout, typer.Option(help="thw (frames first) or hwt (frames last)")] = Layout.thw,
    seed: int = 0,
    truth: Annotated[Path | None, typer.Option(help="Also save the ground truth frame (.npy, float32 DN)")] = None,
) -> None:
    """A 12-bit raw stack of a validation image with every degradation of DATA.md."""
    import numpy as np

    from models.data.sources import clean_images
    from models.data.synthetic import make_stack, sample_photons

    if level is NoiseLevel.auto:
        raise typer.BadParameter("pick low, medium or high", param_hint="--level")
    rng = np.random.default_rng(seed)
    images = clean_images("val", size=size, seed=seed)
    stack, ground_truth = make_stack(images[seed % len(images)], rng, photons=sample_photons(level.value, rng), frames=frames).pair
    np.save(output, stack if layout is not Layout.hwt else np.ascontiguousarray(stack.transpose(1, 2, 0)))
    if truth:
        np.save(truth, ground_truth)
    console.print(f"wrote {output} {list(np.load(output, mmap_mode='r').shape)} ({level.value} noise)")


@synth.command("video")
def synth_video(
    output: Annotated[Path, typer.Argument(help="The noisy clip (.mp4: H.264 + AAC; .mkv: lossless FFV1)")],
    sigma: Annotated[float, typer.Option(help="Gaussian noise std in 8-bit units")] = 15.0,
    seconds: Annotated[float, typer.Option(min=0.1)] = 5.0,
    width: int = 640,
    height: int = 360,
    fps: int = 25,
    audio: bool = True,
    seed: int = 0,
) -> None:
    """A clip of smooth camera motion over a colour scene, with noise and a tone for audio."""
    import numpy as np

    from models.video.synthetic import make_clip

    frames = max(1, round(seconds * fps))
    make_clip(output, np.random.default_rng(seed), sigma=sigma, frames=frames, width=width, height=height, fps=fps, audio=audio)
    console.print(f"wrote {output}: {frames} frames {width}x{height} at {fps} fps, sigma {sigma}")


if __name__ == "__main__":
    app()
