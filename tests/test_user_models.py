"""Users' own models: real architectures built from spandrel's classes (random weights), saved as
.safetensors, added with `restora models add`, listed by /v1/models and run by name on an image
and a video through the API and a real worker; files Restora must refuse are refused."""
from __future__ import annotations

import io
import os
import subprocess
import sys
import time

import av
import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from PIL import Image
from safetensors.torch import save_file

from app.main import create_app
from models.video.synthetic import make_clip
from tests.conftest import ROOT, wait_for
from tests.helpers import npy_bytes

pytestmark = pytest.mark.usefixtures("worker")


def _small_architectures() -> dict[str, tuple[torch.nn.Module, str, int]]:
    """name -> (network, task, scale): one of each family spandrel's core knows, kept small."""
    from spandrel.architectures.Compact import Compact
    from spandrel.architectures.NAFNet import NAFNet
    from spandrel.architectures.SCUNet import SCUNet
    from spandrel.architectures.SwinIR import SwinIR

    torch.manual_seed(0)
    return {
        "compact-x4": (Compact(num_in_ch=3, num_out_ch=3, num_feat=16, num_conv=4, upscale=4), "upscale", 4),
        "swinir-x2": (SwinIR(upscale=2, in_chans=3, img_size=16, window_size=4, img_range=1.0, depths=[2], embed_dim=12, num_heads=[2],
                             mlp_ratio=2, upsampler="pixelshuffledirect"), "upscale", 2),
        "nafnet-denoise": (NAFNet(img_channel=3, width=8, middle_blk_num=1, enc_blk_nums=[1, 1], dec_blk_nums=[1, 1]), "denoise", 1),
        "scunet-denoise": (SCUNet(in_nc=3, config=[1, 1, 1, 1, 1, 1, 1], dim=64), "denoise", 1),
    }


ARCHITECTURES = {"compact-x4": "RealESRGAN Compact", "swinir-x2": "SwinIR", "nafnet-denoise": "NAFNet", "scunet-denoise": "SCUNet"}


def restora(settings, *args: str) -> subprocess.CompletedProcess:
    env = os.environ | {"RESTORA_DATA_DIR": str(settings.data_dir)}
    return subprocess.run([sys.executable, "-m", "restora.cli", *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)


def listed(api) -> dict[str, dict]:
    return {m["name"]: m for m in api.get("/v1/models").json()["models"] if m["source"] == "user"}


@pytest.fixture(scope="module")
def added(settings, tmp_path_factory) -> dict[str, tuple[str, int]]:
    """The four models, added with the CLI; returned once the worker offers them."""
    api = TestClient(create_app(settings))
    folder = tmp_path_factory.mktemp("downloads")
    tasks = {}
    for name, (net, task, scale) in _small_architectures().items():
        if name == "compact-x4":  # as Real-ESRGAN ships its weights: a pickled {"params_ema": state dict}
            path = folder / f"{name}.pth"
            torch.save({"params_ema": net.state_dict()}, path)
        else:
            path = folder / f"{name}.safetensors"
            save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path))
        done = restora(settings, "models", "add", str(path))
        assert done.returncode == 0, done.stderr
        assert ARCHITECTURES[name] in done.stderr.replace("\n", " ")
        assert (settings.data_dir / "models" / f"{name}.safetensors").is_file()  # a .pth is stored converted
        tasks[name] = (task, scale)
    deadline = time.monotonic() + 60
    while set(listed(api)) < set(tasks):
        assert time.monotonic() < deadline, f"the worker lists only {sorted(listed(api))}"
        time.sleep(0.5)
    return tasks


@pytest.fixture(scope="module")
def clip_bytes(tmp_path_factory) -> bytes:
    path = tmp_path_factory.mktemp("clip") / "clip.mp4"
    make_clip(path, np.random.default_rng(3), sigma=10, frames=6, width=48, height=32, audio=True)
    return path.read_bytes()


def test_models_list_names_architecture_task_and_scale(api, added):
    models = listed(api)
    for name, (task, scale) in added.items():
        entry = models[name]
        assert (entry["architecture"], entry["task"], entry["kinds"]) == (ARCHITECTURES[name], task, ["image", "video"])
        assert entry["scale"] == (scale if task == "upscale" else None)


@pytest.mark.parametrize("name", list(ARCHITECTURES))
def test_each_model_restores_an_image_and_a_video_by_name(api, added, clip_bytes, name):
    task, scale = added[name]
    fields = {"model": name, "task": task} | ({"scale": str(scale)} if task == "upscale" else {})
    rgb = (np.random.default_rng(1).random((40, 44, 3)) * 255).astype(np.uint8)
    png = io.BytesIO()
    Image.fromarray(rgb).save(png, format="PNG")
    image_job = api.post("/v1/jobs", files={"file": ("photo.png", png.getvalue())}, data=fields).json()
    video_job = api.post("/v1/jobs", files={"file": ("clip.mp4", clip_bytes)}, data=fields).json()

    job = wait_for(api, image_job["id"])
    assert job["status"] == "succeeded", job["error"]
    assert job["model"]["name"] == name
    result = Image.open(io.BytesIO(api.get(f"/v1/jobs/{job['id']}/result").content))
    assert (result.format, result.mode, result.size) == ("PNG", "RGB", (44 * scale, 40 * scale))

    job = wait_for(api, video_job["id"])
    assert job["status"] == "succeeded", job["error"]
    with av.open(io.BytesIO(api.get(f"/v1/jobs/{job['id']}/result").content)) as container:
        video = container.streams.video[0]
        assert (video.width, video.height) == (48 * scale, 32 * scale)
        assert len(container.streams.audio) == 1
        assert sum(1 for _ in container.decode(video=0)) == 6


@pytest.mark.parametrize("fields,says", [
    ({"model": "compact-x4"}, "use it with task=upscale with scale=4"),
    ({"model": "compact-x4", "task": "upscale", "scale": "2"}, "enlarges by 4; scale=2 does not fit"),
    ({"model": "nafnet-denoise", "task": "upscale", "scale": "2"}, "use it with task=denoise"),
    ({"model": "no-such-model"}, "not a model the workers serve"),
    ({"model": "stack-noise"}, "noise classifier"),
])
def test_models_that_do_not_fit_the_job_are_422(api, added, fields, says):
    png = io.BytesIO()
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(png, format="PNG")
    response = api.post("/v1/jobs", files={"file": ("p.png", png.getvalue())}, data=fields)
    assert response.status_code == 422 and says in response.json()["detail"], response.json()


def test_a_users_model_is_not_for_stacks(api, added):
    response = api.post("/v1/jobs", files={"file": ("s.npy", npy_bytes(np.zeros((4, 32, 32), np.uint16)))},
                        data={"model": "nafnet-denoise"})
    assert response.status_code == 422 and "not stacks" in response.json()["detail"]


def _evil_pickle(path) -> None:
    class RunsCode:
        def __reduce__(self):
            return (os.system, (f"touch {path.parent / 'ran'}",))

    torch.save({"weight": torch.zeros(2), "payload": RunsCode()}, path)


def test_refused_files_say_why_and_leave_the_worker_serving(settings, api, added, tmp_path):
    unknown = tmp_path / "mystery.safetensors"
    save_file({"encoder.weight": torch.zeros(4, 4), "decoder.bias": torch.zeros(4)}, str(unknown))
    evil = tmp_path / "evil.pth"
    _evil_pickle(evil)
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a model at all")
    script = tmp_path / "scripted.pt"
    script.write_bytes(b"PK")
    cases = {unknown: "does not recognise this architecture", evil: "would call posix.system", garbage: "not a readable model file",
             script: "TorchScript"}
    for path, says in cases.items():
        done = restora(settings, "models", "add", str(path))
        assert done.returncode == 1 and says in done.stderr.replace("\n", " "), done.stderr
    assert not (tmp_path / "ran").exists(), "the pickle's code must never run"
    clash = restora(settings, "models", "add", str(unknown), "--name", "image-denoise-low")
    assert clash.returncode == 1 and "Restora's own models" in clash.stderr.replace("\n", " ")

    # Dropped straight into the folder, they are skipped with the reason; the worker keeps serving.
    folder = settings.data_dir / "models"
    for path in (unknown, evil, garbage):
        (folder / path.name).write_bytes(path.read_bytes())
    shown = restora(settings, "models", "list")
    assert "mystery.safetensors is not offered" in shown.stderr.replace("\n", " ")
    time.sleep(6)  # past the worker's maintenance, which looks at the folder again
    assert not {"mystery", "evil", "garbage"} & set(listed(api)) and set(added) <= set(listed(api))
    assert not (folder / "ran").exists()
    assert api.get("/readyz").status_code == 200
    for path in (unknown, evil, garbage):
        (folder / path.name).unlink()


def test_only_the_most_recently_used_models_stay_loaded(tmp_path):
    from spandrel.architectures.Compact import Compact

    from models.user_models import KEEP_LOADED, UserModels

    weights = {k: v.contiguous() for k, v in Compact(num_in_ch=3, num_out_ch=3, num_feat=8, num_conv=2, upscale=2).state_dict().items()}
    names = [f"m{i}" for i in range(KEEP_LOADED + 2)]
    for name in names:
        save_file(weights, str(tmp_path / f"{name}.safetensors"))
    folder = UserModels(tmp_path, "cpu")
    assert folder.refresh() and len(folder.catalog()) == len(names)
    first = folder.get(names[0])
    for name in names[1:]:
        folder.get(name)
    assert list(folder._loaded) == names[-KEEP_LOADED:]
    assert folder.get(names[0]) is not first  # loaded again when asked for
    (tmp_path / "m1.safetensors").unlink()
    assert folder.refresh() and "m1" not in {m["name"] for m in folder.catalog()}
