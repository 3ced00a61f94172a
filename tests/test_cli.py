"""The command line: `restora serve` with its own Redis, `restora submit` against it, `restora run` in-process."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx
import numpy as np
import pytest

from models.video.io import VideoReader
from models.video.synthetic import make_clip
from restora.redis_server import free_port
from tests.helpers import psnr, synthetic_stack

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def restora(*args: str, env: dict | None = None, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "restora.cli", *args], env=env, cwd=ROOT, capture_output=True, text=True, **kwargs)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """`restora serve` as the README runs it (no RESTORA_REDIS_URL, so it starts its own Redis), with two workers."""
    data = tmp_path_factory.mktemp("serve")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESTORA_")} | {"RESTORA_DATA_DIR": str(data)}
    process = subprocess.Popen([sys.executable, "-m", "restora.cli", "serve", "--port", str(port), "--workers", "2"], env=env, cwd=ROOT,
                               start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(f"{url}/readyz").status_code == 200:
                break
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            os.killpg(process.pid, signal.SIGKILL)
            pytest.fail("restora serve did not become ready")
        time.sleep(0.3)
    yield url, env, process.pid
    process.send_signal(signal.SIGTERM)  # what kill, systemd and container runtimes send (Ctrl-C's SIGINT takes the same path)
    try:
        process.wait(60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        pytest.fail("restora serve did not stop on SIGTERM")
    leftovers = subprocess.run(["pgrep", "-g", str(process.pid)], capture_output=True, text=True).stdout.split()
    assert leftovers == [], "serve left its Redis or workers running"


def test_submit_downloads_a_restored_stack(served, tmp_path):
    url, env, _ = served
    stack, truth = synthetic_stack("medium", seed=11)
    np.save(tmp_path / "in.npy", stack)
    done = restora("submit", str(tmp_path / "in.npy"), "-o", str(tmp_path / "out.npy"), "--server", url, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "medium" in done.stderr
    restored = np.load(tmp_path / "out.npy")
    assert psnr(restored, truth, 4095) > psnr(stack.mean(axis=0), truth, 4095)
    wait_for_two_restore_workers(url)  # the second may still be loading its models


def wait_for_two_restore_workers(url: str, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while httpx.get(f"{url}/v1/models").json()["workers"] < 2:
        assert time.monotonic() < deadline, "restora serve --workers 2 did not start two restore workers"
        time.sleep(0.5)


def restore_workers(serve_pid: int) -> list[int]:
    """The restore worker processes `restora serve` started (its children running `restora worker` without --queue)."""
    children = subprocess.run(["pgrep", "-P", str(serve_pid), "-f", "restora.cli worker$"], capture_output=True, text=True).stdout.split()
    return [int(pid) for pid in children]


def test_a_worker_that_dies_is_started_again(served, tmp_path):
    """RQ ends a worker on an error it does not handle, the kernel on memory: serve starts another."""
    url, env, serve_pid = served
    wait_for_two_restore_workers(url)  # the other tests may not have run first
    doomed = restore_workers(serve_pid)
    assert len(doomed) == 2, doomed
    os.kill(doomed[0], signal.SIGKILL)
    deadline = time.monotonic() + 180  # a new one loads its models and registers
    while True:
        alive, registered = restore_workers(serve_pid), httpx.get(f"{url}/v1/models").json()["workers"]
        if doomed[0] not in alive and len(alive) == 2 and registered == 2:
            break
        assert time.monotonic() < deadline, f"no second restore worker again: {alive}, /v1/models lists {registered}"
        time.sleep(0.5)
    stack, _ = synthetic_stack("high", seed=13)
    np.save(tmp_path / "in.npy", stack)
    done = restora("submit", str(tmp_path / "in.npy"), "-o", str(tmp_path / "out.npy"), "--server", url, env=env, timeout=300)
    assert done.returncode == 0, done.stderr


def test_submit_fails_clearly_on_bad_input(served, tmp_path):
    url, env, _ = served
    (tmp_path / "bad.npy").write_bytes(b"not an array")
    done = restora("submit", str(tmp_path / "bad.npy"), "-o", str(tmp_path / "out.npy"), "--server", url, env=env, timeout=60)
    assert done.returncode == 1 and "400" in done.stderr and "npy" in done.stderr


def test_run_matches_the_service(tmp_path):
    stack, truth = synthetic_stack("high", seed=12)
    np.save(tmp_path / "in.npy", np.ascontiguousarray(stack.transpose(1, 2, 0)))
    done = restora("run", str(tmp_path / "in.npy"), "-o", str(tmp_path / "out.tif"), timeout=300)
    assert done.returncode == 0, done.stderr
    assert "high" in done.stderr and "hwt" in done.stderr
    import tifffile

    restored = tifffile.imread(tmp_path / "out.tif")
    assert restored.shape == truth.shape and restored.dtype == np.uint16
    assert psnr(restored, truth, 4095) > psnr(stack.mean(axis=0), truth, 4095)


def test_run_refuses_unknown_output_extension(tmp_path):
    np.save(tmp_path / "in.npy", np.zeros((4, 16, 16), np.uint16))
    done = restora("run", str(tmp_path / "in.npy"), "-o", str(tmp_path / "out.gif"), timeout=60)
    assert done.returncode == 2 and "extension" in done.stderr


def test_run_writes_an_image_in_the_format_asked_for(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(3)
    y, x = np.mgrid[0:96, 0:128]
    clean = np.stack([128 + 80 * np.sin(x / 9.0), 128 + 80 * np.cos(y / 13.0), np.full(x.shape, 120.0)], axis=2)
    noisy = np.clip(clean + rng.normal(0, 20, clean.shape), 0, 255).astype(np.uint8)
    Image.fromarray(noisy).save(tmp_path / "photo.jpg", quality=95)
    done = restora("run", str(tmp_path / "photo.jpg"), "-o", str(tmp_path / "restored.jpg"), timeout=300)
    assert done.returncode == 0, done.stderr
    with Image.open(tmp_path / "restored.jpg") as restored:
        assert restored.format == "JPEG" and restored.size == (128, 96) and restored.mode == "RGB"
        assert psnr(np.asarray(restored), clean, 255) > psnr(noisy, clean, 255) + 2.0
    refused = restora("run", str(tmp_path / "photo.jpg"), "-o", str(tmp_path / "restored.mp4"), timeout=60)
    assert refused.returncode == 2 and "image results cannot be written as .mp4" in refused.stderr


def test_run_restores_a_video_in_tiles_under_a_small_memory_budget(tmp_path):
    """`--video-memory-mb` caps the network's memory: the clip is restored in tiles, to the same frames."""
    make_clip(tmp_path / "in.mkv", np.random.default_rng(2), sigma=25, frames=6, width=320, height=192, audio=False)
    for name, extra in (("whole.mkv", ()), ("tiled.mkv", ("--video-memory-mb", "2"))):
        done = restora("run", str(tmp_path / "in.mkv"), "-o", str(tmp_path / name), *extra, timeout=300)
        assert done.returncode == 0, done.stderr
    with VideoReader(tmp_path / "whole.mkv") as whole, VideoReader(tmp_path / "tiled.mkv") as tiled:
        pairs = list(zip(whole.frames(), tiled.frames(), strict=True))
    assert len(pairs) == 6
    assert max(float(np.abs(a - b).max()) for a, b in pairs) <= 1.0  # 8-bit steps: rounding of tile seams at most


def test_run_says_when_a_transparent_or_lossless_clip_is_written_lossy(tmp_path):
    """A WebM with alpha written as .mp4 (which cannot hold it) is opaque, and an FFV1 clip written as
    .mp4 is lossy: `restora run` says so and how to keep it; as .mkv each keeps it and says nothing."""
    scene = "testsrc2=s=96x64:r=25:d=0.2,format=yuva420p,geq=lum='lum(X,Y)':cb='cb(X,Y)':cr='cr(X,Y)':a='X*255/W'"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", scene, "-c:v", "libvpx-vp9", "-pix_fmt", "yuva420p",
                    str(tmp_path / "overlay.webm")], check=True)
    make_clip(tmp_path / "master.mkv", np.random.default_rng(3), sigma=10, frames=5, width=96, height=64, audio=False)
    notes = {"overlay.webm": "overlay.webm is transparent; a .mp4 result is opaque: ask for .mkv",
             "master.mkv": "master.mkv is lossless; a .mp4 result is H.264, lossy: ask for .mkv"}
    for source, note in notes.items():
        for name, noted in (("out.mp4", True), ("out.mkv", False)):
            done = restora("run", str(tmp_path / source), "-o", str(tmp_path / name), timeout=300, env={**os.environ, "COLUMNS": "200"})
            assert done.returncode == 0, done.stderr
            assert (note in done.stderr) is noted, done.stderr


def test_run_says_when_a_result_is_the_input_itself(tmp_path):
    """A clean JPEG written back as .jpg gains less from restoring than a second encode would cost it:
    `restora run` writes the input file itself and says why; as .png it writes the restored picture."""
    import cv2
    from skimage import data

    cv2.imwrite(str(tmp_path / "clean.jpg"), data.astronaut()[:128, 160:288, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 92])
    for name, kept in (("out.jpg", True), ("out.png", False)):
        done = restora("run", str(tmp_path / "clean.jpg"), "-o", str(tmp_path / name), timeout=300, env={**os.environ, "COLUMNS": "300"})
        assert done.returncode == 0, done.stderr
        assert ("this result is the input's own file, copied" in done.stderr) is kept, done.stderr
    assert (tmp_path / "out.jpg").read_bytes() == (tmp_path / "clean.jpg").read_bytes()
