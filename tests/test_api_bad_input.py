"""Every bad input gets the contract's 4xx with a clear message, and the service stays ready."""
from __future__ import annotations

import io

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from app.main import create_app
from tests.helpers import npy_bytes

pytestmark = pytest.mark.usefixtures("worker")


def npy_with_header(shape: tuple, descr: str = "<u2") -> bytes:
    """A .npy header that claims ``shape`` followed by a few bytes of data."""
    header = repr({"descr": descr, "fortran_order": False, "shape": shape}).encode()
    header += b" " * (63 - (len(header) + 10) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + b"\x00" * 64


GOOD = npy_bytes(np.zeros((4, 32, 32), np.uint16))


def cmyk_tiff() -> bytes:
    """A print-ready CMYK TIFF: its four planes are not RGBA, so it is refused rather than misread."""
    buffer = io.BytesIO()
    Image.fromarray(np.full((64, 80, 3), 90, np.uint8)).convert("CMYK").save(buffer, format="TIFF")
    return buffer.getvalue()


def several_pictures(fmt: str) -> bytes:
    """Four 64x80 frames in one image file (a multi-page TIFF, an animated PNG or WebP): only the first
    would be restored, so they are refused."""
    frames = [Image.fromarray(np.full((64, 80), 60 * i, np.uint8)) for i in range(4)]
    buffer = io.BytesIO()
    frames[0].save(buffer, format=fmt, save_all=True, append_images=frames[1:])
    return buffer.getvalue()


def cut_short(fmt: str) -> bytes:
    """A photo whose upload stopped at 90 %: JPEG, TIFF and HEIC headers are whole then, so only
    decoding shows it (the worker failed on it after it had been queued)."""
    import pillow_heif

    pixels = np.random.default_rng(1).integers(0, 256, (64, 80, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    if fmt == "HEIF":
        pillow_heif.from_bytes(mode="RGB", size=(80, 64), data=pixels.tobytes()).save(buffer, quality=90)
    else:
        Image.fromarray(pixels).save(buffer, format=fmt)
    return buffer.getvalue()[: int(buffer.tell() * 0.9)]


def picture(fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(2).integers(0, 256, (64, 80, 3), dtype=np.uint8)).save(buffer, format=fmt)
    return buffer.getvalue()


CASES = {
    "truncated npy": ("s.npy", GOOD[: len(GOOD) // 2], 400, "truncated"),
    "pickled object npy": ("s.npy", npy_bytes(np.array([{"a": 1}, None], dtype=object), allow_pickle=True), 400, "object"),
    "4-D array": ("s.npy", npy_bytes(np.zeros((2, 3, 16, 16), np.uint16)), 400, "4-D"),
    "header claiming terabytes": ("s.npy", npy_with_header((100000, 100000, 100000)), 400, "promises"),
    "not npy at all": ("s.npy", b"hello world, not an array" * 10, 400, ".npy"),
    "complex dtype": ("s.npy", npy_bytes(np.zeros((4, 16, 16), np.complex64)), 400, "dtype"),
    "text named .mp4": ("clip.mp4", b"this is just text pretending to be a video\n" * 50, 400, "video"),
    "text named .png": ("x.png", b"not a png" * 20, 400, "png"),
    "empty upload": ("s.npy", b"", 400, "empty"),
    "unsupported type": ("notes.txt", b"hello", 415, "unsupported"),
    "tiny frame": ("s.npy", npy_bytes(np.zeros((10, 4, 4), np.uint16)), 400, "too small"),
    # its two largest sides (8 and 100) belong to no one frame: 2 x 100 frames first, 8 x 2 last (was queued, and failed in the worker)
    "frames a few pixels wide either way": ("s.npy", npy_bytes(np.zeros((8, 2, 100), np.uint16)), 400, "too small"),
    "multi-page TIFF": ("frames.tif", several_pictures("TIFF"), 400, "holds 4 pages"),
    "animated PNG": ("loop.png", several_pictures("PNG"), 400, "animation of 4 frames"),
    "animated WebP": ("loop.webp", several_pictures("WEBP"), 400, "animation of 4 frames"),
    "CMYK TIFF": ("print.tif", cmyk_tiff(), 400, "CMYK TIFF"),
    "truncated JPEG": ("photo.jpg", cut_short("JPEG"), 400, "truncated"),
    "truncated TIFF": ("scan.tif", cut_short("TIFF"), 400, "truncated"),
    "truncated HEIC": ("IMG_0001.heic", cut_short("HEIF"), 400, "end of file"),
    # decoders and the default result format go by the name: a renamed file is refused, with the right name
    "JPEG named .png": ("photo.png", picture("JPEG"), 400, "holds a JPEG image, not PNG: name it photo.jpg"),
    "WebP named .avif": ("photo.avif", picture("WEBP"), 400, "name it photo.webp"),
    "PNG named .jpg": ("photo.jpg", picture("PNG"), 400, "name it photo.png"),
    "GIF named .png": ("anim.png", picture("GIF"), 400, "GIF image, which is not accepted"),
    "JPEG named .tif": ("scan.tif", picture("JPEG"), 400, "name it scan.jpg"),
    "TIFF named .png": ("scan.png", picture("TIFF"), 400, "name it scan.tif"),
}


@pytest.mark.parametrize("name,data,status,words", CASES.values(), ids=CASES.keys())
def test_bad_upload_is_refused_clearly(api, name, data, status, words):
    response = api.post("/v1/jobs", files={"file": (name, data)})
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, str) and words.lower() in detail.lower()
    assert "Traceback" not in response.text
    assert api.get("/readyz").status_code == 200


def test_oversize_upload_is_refused_while_streaming(settings):
    small = TestClient(create_app(settings.model_copy(update={"max_upload_mb": 1})))
    response = small.post("/v1/jobs", files={"file": ("big.npy", npy_bytes(np.zeros((3, 512, 512), np.uint16)))})
    assert response.status_code == 413 and "limit" in response.json()["detail"]
    assert not any((settings.staging_dir).glob("*")), "the refused upload must not stay in staging"


def test_too_many_elements_is_413(settings):
    strict = TestClient(create_app(settings.model_copy(update={"max_elements": 1000})))
    response = strict.post("/v1/jobs", files={"file": ("s.npy", npy_bytes(np.zeros((4, 32, 32), np.uint16)))})
    assert response.status_code == 413


@pytest.mark.parametrize("field,value", [("noise_level", "extreme"), ("layout", "xyz"), ("webhook", "ftp://example.com/x"), ("webhook", "file:///etc/passwd"),
                                         ("kind", "sound"), ("kind", "video"), ("task", "upscale"), ("task", "sharpen"), ("scale", "2"),
                                         ("model", "my-esrgan"), ("formats", "mkv")])
def test_bad_parameters_are_422(api, field, value):
    response = api.post("/v1/jobs", files={"file": ("s.npy", GOOD)}, data={field: value})
    assert response.status_code == 422 and field in response.json()["detail"]


def test_not_multipart_is_415(api):
    response = api.post("/v1/jobs", content=GOOD, headers={"content-type": "application/octet-stream"})
    assert response.status_code == 415


def test_form_without_file_is_400(api):
    response = api.post("/v1/jobs", data={"noise_level": "low"}, files={"other": ("x.txt", b"x")})
    assert response.status_code == 400 and "file" in response.json()["detail"]


def test_unknown_job_404_and_unready_result_409(api):
    assert api.get("/v1/jobs/does-not-exist").status_code == 404
    assert api.get("/v1/jobs/does-not-exist/result").status_code == 404
    job = api.post("/v1/jobs", files={"file": ("s.npy", npy_bytes(np.zeros((60, 200, 200), np.uint16) + 100))}).json()
    response = api.get(f"/v1/jobs/{job['id']}/result")
    assert response.status_code == 409 and "succeeded" in response.json()["detail"]
    api.delete(f"/v1/jobs/{job['id']}")


def test_bad_query_parameters_are_422(api):
    assert api.get("/v1/jobs", params={"limit": 0}).status_code == 422
    assert api.get("/v1/jobs", params={"status": "weird"}).status_code == 422


def test_idempotency_key_returns_the_first_job(api):
    headers = {"Idempotency-Key": "retry-me-123"}
    first = api.post("/v1/jobs", files={"file": ("s.npy", GOOD)}, headers=headers).json()
    again = api.post("/v1/jobs", files={"file": ("s.npy", GOOD)}, headers=headers).json()
    assert first["id"] == again["id"]
