"""The HTTP round trip against a real Redis and a real worker process, for every input kind."""
from __future__ import annotations

import io

import numpy as np
import pytest
import tifffile
from PIL import Image

from tests.conftest import wait_for
from tests.helpers import npy_bytes, psnr, synthetic_stack

pytestmark = pytest.mark.usefixtures("worker")


def submit(api, name: str, data: bytes, **fields) -> dict:
    response = api.post("/v1/jobs", files={"file": (name, data)}, data=fields)
    assert response.status_code == 202, response.text
    assert response.headers["location"] == f"/v1/jobs/{response.json()['id']}"
    return response.json()


def result_array(api, job_id: str) -> np.ndarray:
    response = api.get(f"/v1/jobs/{job_id}/result")
    assert response.status_code == 200, response.text
    return np.load(io.BytesIO(response.content), allow_pickle=False)


@pytest.mark.parametrize("level", ["low", "medium", "high"])
def test_stack_beats_temporal_mean_and_reports_level(api, level):
    stack, truth = synthetic_stack(level, seed=3)
    job = wait_for(api, submit(api, "scene.npy", npy_bytes(stack))["id"])
    assert job["status"] == "succeeded", job["error"]
    assert job["noise"]["level"] == level and job["noise"]["source"] == "classifier"
    assert job["model"]["name"] == f"stack-fusion-{level}"
    assert job["input"]["layout"] == "thw" and job["input"]["shape"] == list(stack.shape)
    restored = result_array(api, job["id"])
    assert restored.shape == truth.shape and restored.dtype == np.float32
    assert psnr(restored, truth, 4095) > psnr(stack.mean(axis=0), truth, 4095)


def test_frames_last_layout_gives_the_same_result(api):
    stack, _ = synthetic_stack("medium", seed=5)
    first = wait_for(api, submit(api, "thw.npy", npy_bytes(stack))["id"])
    second = wait_for(api, submit(api, "hwt.npy", npy_bytes(np.ascontiguousarray(stack.transpose(1, 2, 0))))["id"])
    assert second["input"]["layout"] == "hwt"
    np.testing.assert_allclose(result_array(api, first["id"]), result_array(api, second["id"]), atol=1e-3)


def test_noise_level_override_picks_that_model(api):
    stack, _ = synthetic_stack("low", seed=1)
    job = wait_for(api, submit(api, "s.npy", npy_bytes(stack), noise_level="high")["id"])
    assert job["noise"]["level"] == "high" and job["noise"]["source"] == "override"
    assert job["model"]["name"] == "stack-fusion-high"


def test_stack_result_formats(api):
    stack, _ = synthetic_stack("low", seed=2, frames=10, size=64)
    job = wait_for(api, submit(api, "s.npy", npy_bytes(stack))["id"])
    tiff = api.get(f"/v1/jobs/{job['id']}/result", params={"format": "tiff"})
    assert tifffile.imread(io.BytesIO(tiff.content)).dtype == np.uint16
    png = api.get(f"/v1/jobs/{job['id']}/result", params={"format": "png"})
    assert Image.open(io.BytesIO(png.content)).size == (64, 64)
    assert api.get(f"/v1/jobs/{job['id']}/result", params={"format": "mp4"}).status_code == 422


@pytest.mark.parametrize("kind", ["npy2d", "png_gray", "png_colour", "tif16"])
def test_single_images(api, kind):
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:96, 0:128]
    clean = 128 + 80 * np.sin(x / 9.0) * np.cos(y / 13.0)
    noisy = np.clip(clean + rng.normal(0, 20, clean.shape), 0, 255)
    if kind == "npy2d":
        name, data, truth = "frame.npy", npy_bytes(noisy.astype(np.float32)), clean
    elif kind == "tif16":
        buffer = io.BytesIO()
        tifffile.imwrite(buffer, (noisy * 16).astype(np.uint16))
        name, data, truth = "frame.tif", buffer.getvalue(), clean * 16
    else:
        image = noisy.astype(np.uint8) if kind == "png_gray" else np.stack([noisy, noisy[::-1], noisy[:, ::-1]], -1).astype(np.uint8)
        truth = clean if kind == "png_gray" else np.stack([clean, clean[::-1], clean[:, ::-1]], -1)
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="PNG")
        name, data = "frame.png", buffer.getvalue()
    job = wait_for(api, submit(api, name, data)["id"])
    assert job["status"] == "succeeded", job["error"]
    assert job["kind"] == "image"
    restored = result_array(api, job["id"])
    scale = 4095 if kind == "tif16" else 255
    noisy_in = np.asarray(Image.open(io.BytesIO(data)), dtype=np.float64) if kind.startswith("png") else None
    baseline = noisy_in if noisy_in is not None else (noisy * 16 if kind == "tif16" else noisy)
    assert restored.shape == truth.shape
    assert psnr(restored, truth, scale) > psnr(baseline, truth, scale) + 1.0


def test_listing_and_delete(api):
    stack, _ = synthetic_stack("low", seed=4, frames=8, size=48)
    job = wait_for(api, submit(api, "s.npy", npy_bytes(stack))["id"])
    listed = api.get("/v1/jobs", params={"status": "succeeded", "limit": 500}).json()["jobs"]
    assert job["id"] in [j["id"] for j in listed]
    assert api.delete(f"/v1/jobs/{job['id']}").status_code == 204
    assert api.get(f"/v1/jobs/{job['id']}").status_code == 404


def test_models_endpoint_lists_every_level(api):
    body = api.get("/v1/models").json()
    assert body["workers"] >= 1
    restorers = {(m["kind"], m["level"]) for m in body["models"] if m["role"] == "restorer"}
    assert {(k, l) for k in ("stack", "image", "video") for l in ("low", "medium", "high")} <= restorers
