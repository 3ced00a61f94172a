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
    response = api.get(f"/v1/jobs/{job_id}/result", params={"format": "npy"})
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


def _smooth_rgb(height: int, width: int, peak: float) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width]
    base = 0.5 + 0.35 * np.sin(x / 9.0) * np.cos(y / 13.0)
    return np.stack([base, base[::-1], base[:, ::-1]], axis=2) * peak


def _decode(content: bytes) -> np.ndarray:
    """Any encoded image as OpenCV reads it unchanged (keeps 16 bits), in RGB order."""
    import cv2

    decoded = cv2.imdecode(np.frombuffer(content, np.uint8), cv2.IMREAD_UNCHANGED)
    return decoded[..., ::-1] if decoded.ndim == 3 else decoded


def test_sixteen_bit_rgb_png_comes_back_sixteen_bit_rgb(api):
    import cv2

    clean = _smooth_rgb(96, 128, 65535)
    noisy = np.clip(clean + np.random.default_rng(1).normal(0, 20 * 257, clean.shape), 0, 65535).astype(np.uint16)
    ok, png = cv2.imencode(".png", noisy[..., ::-1])
    job = wait_for(api, submit(api, "photo.png", png.tobytes())["id"])
    assert job["status"] == "succeeded", job["error"]
    assert (job["kind"], job["input"]["dtype"], job["input"]["bits"], job["input"]["channels"]) == ("image", "uint16", 16, 3)
    response = api.get(f"/v1/jobs/{job['id']}/result")  # default: the input's own format
    assert response.headers["content-type"] == "image/png"
    restored = _decode(response.content)
    assert restored.dtype == np.uint16 and restored.shape == noisy.shape
    assert len(np.unique(restored)) > 1024  # real 16-bit values, not 8-bit ones scaled up
    assert psnr(restored, clean, 65535) > psnr(noisy, clean, 65535) + 3.0


def test_colour_npy_is_an_image_unless_kind_says_stack(api):
    rgb = np.clip(_smooth_rgb(64, 80, 255) + np.random.default_rng(2).normal(0, 15, (64, 80, 3)), 0, 255).astype(np.uint8)
    job = wait_for(api, submit(api, "photo.npy", npy_bytes(rgb))["id"])
    assert job["status"] == "succeeded", job["error"]
    assert job["kind"] == "image" and job["input"]["channels"] == 3 and job["model"]["name"].startswith("image-")
    restored = np.load(io.BytesIO(api.get(f"/v1/jobs/{job['id']}/result").content))  # an .npy comes back .npy
    assert restored.shape == (64, 80, 3) and restored.dtype == np.float32
    as_stack = submit(api, "frames.npy", npy_bytes(np.repeat(rgb[..., :1], 6, axis=2)), kind="stack")
    assert as_stack["kind"] == "stack"
    refused = api.post("/v1/jobs", files={"file": ("frames.npy", npy_bytes(np.zeros((64, 80, 6), np.uint8)))}, data={"kind": "image"})
    assert refused.status_code == 422 and "not an image" in refused.json()["detail"]


def test_jpeg_comes_back_jpeg_and_other_formats_on_request(api):
    noisy = np.clip(_smooth_rgb(96, 128, 255) + np.random.default_rng(3).normal(0, 20, (96, 128, 3)), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(noisy).save(buffer, format="JPEG", quality=90)
    job = wait_for(api, submit(api, "holiday.jpeg", buffer.getvalue())["id"])
    assert job["status"] == "succeeded", job["error"]
    response = api.get(f"/v1/jobs/{job['id']}/result")
    assert response.headers["content-type"] == "image/jpeg"
    assert 'filename="restora-' in response.headers["content-disposition"] and ".jpg" in response.headers["content-disposition"]
    with Image.open(io.BytesIO(response.content)) as image:
        assert image.format == "JPEG" and image.size == (128, 96) and image.mode == "RGB"
    for fmt, media in (("webp", "image/webp"), ("png", "image/png"), ("tiff", "image/tiff")):
        other = api.get(f"/v1/jobs/{job['id']}/result", params={"format": fmt})
        assert other.status_code == 200 and other.headers["content-type"] == media
    assert api.get(f"/v1/jobs/{job['id']}/result", params={"format": "mp4"}).status_code == 422


def test_a_clean_jpeg_comes_back_as_itself_and_the_job_says_why(api):
    """Restoring a clean JPEG changes less than encoding it again costs: its .jpg result is the file it
    was (metadata and all) and ``result_notes`` says why; the PNG holds the restored picture."""
    buffer = io.BytesIO()
    Image.fromarray(np.rint(_smooth_rgb(96, 128, 255)).astype(np.uint8)).save(buffer, format="JPEG", quality=92)
    job = wait_for(api, submit(api, "clean.jpg", buffer.getvalue())["id"])
    assert job["status"] == "succeeded", job["error"]
    assert list(job["result_notes"]) == ["jpg"] and "own file" in job["result_notes"]["jpg"]
    assert api.get(f"/v1/jobs/{job['id']}/result").content == buffer.getvalue()
    assert api.get(f"/v1/jobs/{job['id']}/result", params={"format": "png"}).content[:8] == b"\x89PNG\r\n\x1a\n"


def test_grass_with_light_noise_says_its_reading_is_uncertain_and_keeps_its_blades(api):
    """Grass reads like noise of sigma 5 whatever light noise it has: the job shows that reading and its
    low end, which the blend was told (told 5, it smoothed the blades 5 dB below the input)."""
    from skimage import data

    clean = data.grass()[128:384, 128:384].astype(np.float64)
    noisy = np.clip(np.rint(clean + np.random.default_rng(1).normal(0, 1, clean.shape)), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(noisy).save(buffer, format="PNG")
    job = wait_for(api, submit(api, "grass.png", buffer.getvalue())["id"])
    assert job["status"] == "succeeded", job["error"]
    assert job["noise"]["level"] == "low" and job["noise"]["lower"] < 0.8 * job["noise"]["sigma"]
    with Image.open(io.BytesIO(api.get(f"/v1/jobs/{job['id']}/result").content)) as image:
        restored = np.asarray(image).astype(np.float64)
    assert psnr(restored, clean, 255) > psnr(noisy, clean, 255) - 2.5


def test_a_phone_photo_comes_back_upright_and_in_its_colour_profile(api):
    """A portrait JPEG stored sideways (EXIF orientation 6) with a colour profile: the result and the
    input preview are upright and carry the profile (before: sideways and untagged, so off-colour);
    results but TIFF keep the camera's EXIF record."""
    from PIL import ImageCms

    stored = np.clip(_smooth_rgb(96, 128, 255) + np.random.default_rng(5).normal(0, 20, (96, 128, 3)), 0, 255).astype(np.uint8)
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    photo = Image.fromarray(stored)
    exif = photo.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to view
    exif[0x0110] = "Pixel 9"  # the camera model
    buffer = io.BytesIO()
    photo.save(buffer, format="JPEG", quality=90, exif=exif.tobytes(), icc_profile=profile)
    queued = submit(api, "portrait.jpg", buffer.getvalue())
    assert queued["input"]["shape"] == [128, 96, 3]  # upright from the start, as the worker reports it
    job = wait_for(api, queued["id"])
    assert job["status"] == "succeeded", job["error"]
    assert job["input"]["shape"] == [128, 96, 3] and job["input"]["orientation"] == 6 and job["input"]["colour_profile"] == "sRGB built-in"
    assert job["input"]["exif"] is True
    upright = np.rot90(stored, -1)
    for fmt in ("jpg", "png", "webp", "tiff"):
        response = api.get(f"/v1/jobs/{job['id']}/result", params={"format": fmt})
        with Image.open(io.BytesIO(response.content)) as image:
            assert image.size == (96, 128) and image.getexif().get(0x0112, 1) == 1, fmt
            assert image.getexif().get(0x0110) == (None if fmt == "tiff" else "Pixel 9"), fmt
            assert image.info.get("icc_profile") == profile, fmt
            assert np.abs(np.asarray(image.convert("RGB"), np.float64) - upright).mean() < 20, fmt  # upright, not only its size
    preview = api.get(f"/v1/jobs/{job['id']}/input", params={"format": "png"})
    with Image.open(io.BytesIO(preview.content)) as image:
        assert image.size == (96, 128) and image.info.get("icc_profile") == profile


def test_a_heic_photo_comes_back_heic_and_only_heic_inputs_pay_for_it(api):
    """An iPhone-style HEIC is accepted, restored and comes back HEIC by default (with its preview); the
    slow HEIC and AVIF encoders run only for inputs of their own format."""
    import pillow_heif

    noisy = np.clip(_smooth_rgb(96, 128, 255) + np.random.default_rng(7).normal(0, 20, (96, 128, 3)), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    pillow_heif.from_bytes(mode="RGB", size=(128, 96), data=noisy.tobytes()).save(buffer, quality=95)
    job = wait_for(api, submit(api, "IMG_0001.HEIC", buffer.getvalue())["id"])
    assert job["status"] == "succeeded", job["error"]
    assert job["formats"][0] == "heic" and "avif" not in job["formats"]
    response = api.get(f"/v1/jobs/{job['id']}/result")
    assert response.headers["content-type"] == "image/heic"
    restored = np.asarray(pillow_heif.open_heif(io.BytesIO(response.content)))
    assert psnr(restored, _smooth_rgb(96, 128, 255), 255) > psnr(noisy, _smooth_rgb(96, 128, 255), 255) + 3.0
    assert api.get(f"/v1/jobs/{job['id']}/input", params={"format": "png"}).status_code == 200
    png_job = submit(api, "photo.png", _png_bytes(noisy))
    assert "heic" not in png_job["formats"] and "avif" not in png_job["formats"]
    refused = api.get(f"/v1/jobs/{png_job['id']}/result", params={"format": "avif"})
    assert refused.status_code == 422 and "formats=" in refused.json()["detail"]
    asked = wait_for(api, submit(api, "photo.png", _png_bytes(noisy), formats="avif")["id"])  # as the 422 says
    assert asked["formats"][0] == "png" and "avif" in asked["formats"]
    assert api.get(f"/v1/jobs/{asked['id']}/result", params={"format": "avif"}).headers["content-type"] == "image/avif"


def _png_bytes(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize("kind", ["gray_alpha_png", "planar_rgb_tiff", "white_is_zero_tiff"])
def test_images_the_worker_reads_are_accepted_by_the_api(api, kind):
    """Gray + alpha PNGs and planar (channel-first) RGB TIFFs were refused at upload although the worker
    reads them; a white-is-zero TIFF (scanned documents) came back inverted."""
    gray = np.clip(_smooth_rgb(64, 80, 255)[..., 0] + np.random.default_rng(6).normal(0, 15, (64, 80)), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    if kind == "gray_alpha_png":
        Image.fromarray(np.stack([gray, np.full_like(gray, 200)], axis=2), "LA").save(buffer, format="PNG")
        name, channels = "logo.png", 4  # restored as RGBA with equal channels, read as 2
    elif kind == "planar_rgb_tiff":
        tifffile.imwrite(buffer, np.stack([gray, gray[::-1], gray[:, ::-1]]), photometric="rgb", planarconfig="separate")
        name, channels = "scan.tif", 3
    else:
        tifffile.imwrite(buffer, 255 - gray, photometric="miniswhite")  # stored inverted, looks like ``gray``
        name, channels = "document.tif", 1
    job = wait_for(api, submit(api, name, buffer.getvalue())["id"])
    assert job["status"] == "succeeded", job["error"]
    read_channels = 2 if kind == "gray_alpha_png" else channels
    assert job["input"]["channels"] == read_channels and job["input"]["shape"] == ([64, 80] if channels == 1 else [64, 80, channels])
    restored = result_array(api, job["id"])
    assert restored.shape == ((64, 80) if channels == 1 else (64, 80, channels))
    preview = Image.open(io.BytesIO(api.get(f"/v1/jobs/{job['id']}/input", params={"format": "png"}).content))
    looks = np.asarray(preview.convert("RGB" if channels == 3 else "L"), np.float64)
    assert np.abs(looks - (np.stack([gray, gray[::-1], gray[:, ::-1]], axis=2) if channels == 3 else gray)).mean() < 1  # as it looks
    if kind == "white_is_zero_tiff":
        assert np.abs(restored - gray).mean() < 15  # restored as it looks: inverted would be ~100 off
    if kind == "gray_alpha_png":
        assert np.array_equal(restored[..., 0], restored[..., 2]) and (restored[..., 3] == 200).all()
        with Image.open(io.BytesIO(api.get(f"/v1/jobs/{job['id']}/result").content)) as image:
            assert image.mode == "LA" and np.array_equal(np.asarray(image)[..., 0], np.rint(restored[..., 0]))  # back as it came


def test_a_ten_bit_avif_keeps_its_depth_where_the_result_can_hold_it(api):
    """A 10-bit AVIF is queued and read as 16-bit (it was cut to 8 bits), and its PNG result is 16-bit;
    its own-format result is an 8-bit AVIF, as the docs say (no encoder here writes deeper AVIF with its
    profile)."""
    import imagecodecs

    noisy = np.clip(_smooth_rgb(64, 80, 1023) + np.random.default_rng(9).normal(0, 60, (64, 80, 3)), 0, 1023).astype(np.uint16)
    queued = submit(api, "hdr.avif", imagecodecs.avif_encode(noisy, level=95, bitspersample=10))
    assert queued["input"]["dtype"] == "uint16"
    job = wait_for(api, queued["id"])
    assert job["status"] == "succeeded", job["error"]
    assert job["input"]["dtype"] == "uint16" and job["formats"][0] == "avif"
    restored = _decode(api.get(f"/v1/jobs/{job['id']}/result", params={"format": "png"}).content)
    assert restored.dtype == np.uint16 and len(np.unique(restored)) > 256
    with Image.open(io.BytesIO(api.get(f"/v1/jobs/{job['id']}/result").content)) as image:
        assert image.format == "AVIF" and image.size == (80, 64)


def test_listing_and_delete(api):
    stack, _ = synthetic_stack("low", seed=4, frames=8, size=48)
    job = wait_for(api, submit(api, "s.npy", npy_bytes(stack))["id"])
    listed = api.get("/v1/jobs", params={"status": "succeeded", "limit": 500}).json()["jobs"]
    assert job["id"] in [j["id"] for j in listed]
    assert api.delete(f"/v1/jobs/{job['id']}").status_code == 204
    assert api.get(f"/v1/jobs/{job['id']}").status_code == 404


def test_models_endpoint_lists_every_level_and_the_upscalers(api):
    body = api.get("/v1/models").json()
    assert body["workers"] >= 1
    restorers = {(m["kind"], m["level"]) for m in body["models"] if m["role"] == "restorer" and m["task"] == "denoise"}
    assert {(k, l) for k in ("stack", "image", "video") for l in ("low", "medium", "high")} <= restorers
    upscalers = [m for m in body["models"] if m["task"] == "upscale" and m["source"] == "builtin"]
    assert {(m["kind"], m["scale"]) for m in upscalers} == {("image", 2), ("image", 4)}
    assert all(m["kinds"] == ["image", "video"] for m in upscalers)


def test_upscaled_sixteen_bit_rgba_png_keeps_depth_channels_and_alpha(api):
    import cv2

    rgb = np.clip(_smooth_rgb(48, 64, 65535) + np.random.default_rng(2).normal(0, 10 * 257, (48, 64, 3)), 0, 65535)
    alpha = np.tile(np.linspace(0, 65535, 64), (48, 1))[..., None]
    ok, png = cv2.imencode(".png", np.concatenate([rgb[..., ::-1], alpha], axis=2).astype(np.uint16))
    job = wait_for(api, submit(api, "logo.png", png.tobytes(), task="upscale", scale="4")["id"])
    assert job["status"] == "succeeded", job["error"]
    assert "image-upscale-x4" in job["model"]["name"] and job["eta_s"] is None
    restored = cv2.imdecode(np.frombuffer(api.get(f"/v1/jobs/{job['id']}/result").content, np.uint8), cv2.IMREAD_UNCHANGED)  # BGRA
    assert restored.dtype == np.uint16 and restored.shape == (192, 256, 4)
    assert np.abs(restored[::4, ::4, 3].astype(float) - alpha[..., 0]).mean() < 1000  # alpha enlarged with the colour


@pytest.mark.parametrize("fields,says", [({"task": "upscale"}, "scale=2 or 4"), ({"task": "upscale", "scale": "3"}, "scale=2 or 4"),
                                         ({"scale": "2"}, "task=upscale"), ({"task": "upscale", "scale": "2", "kind": "stack"}, "for images")])
def test_upscale_options_that_do_not_fit_are_422(api, fields, says):
    response = api.post("/v1/jobs", files={"file": ("s.npy", npy_bytes(np.zeros((4, 32, 32), np.uint16)))}, data=fields)
    assert response.status_code == 422 and says in response.json()["detail"], response.json()
