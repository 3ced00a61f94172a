"""The web page in a real headless Chromium against a live server, the session Redis and a real worker:
upload a stack, watch the job, see the comparison and the downloads. Saves a screenshot: to pytest's
temporary directory, or where RESTORA_SCREENSHOT says (benchmarks/results/web-page.png was made that way)."""
from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

import httpx
import numpy as np
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.helpers import ffmpeg_testsrc2, synthetic_stack

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")

pytestmark = [
    pytest.mark.usefixtures("worker"),
    pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason="needs Debian's chromium and chromium-driver (make system-deps)"),
]


@pytest.fixture
def browser(tmp_path):
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1100,1250",
                 f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    yield driver
    driver.quit()


def test_upload_a_stack_and_see_before_and_after(live_url, browser, tmp_path):
    stack, _ = synthetic_stack("high", seed=8, frames=16, size=96)
    upload = tmp_path / "scene.npy"
    np.save(upload, stack)

    browser.get(live_url + "/")
    assert browser.title == "Restora"
    browser.find_element(By.ID, "file").send_keys(str(upload))
    status = WebDriverWait(browser, 90, poll_frequency=0.2).until(
        lambda b: (s := b.find_element(By.ID, "job-status").text.lower()) in ("succeeded", "failed", "canceled") and s
    )
    assert status == "succeeded", browser.find_element(By.ID, "job-error").text
    WebDriverWait(browser, 20).until(lambda b: b.execute_script(
        "return ['before', 'after'].every(id => document.getElementById(id).complete && document.getElementById(id).naturalWidth === 96)"
    ))
    job = httpx.get(f"{live_url}/v1/jobs/{browser.find_element(By.ID, 'job-id').text}").json()
    fetched = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert f"{live_url}/v1/jobs/{job['id']}/events" in fetched  # followed live, by Server-Sent Events
    assert f"{live_url}/v1/jobs/{job['id']}" not in fetched  # not by polling
    assert browser.find_element(By.ID, "job-noise").text.startswith(f"{job['noise']['level']} (sigma {job['noise']['sigma']}")
    assert browser.find_element(By.ID, "job-model").text == f"{job['model']['name']} v{job['model']['version']}"
    assert [a.text for a in browser.find_elements(By.CSS_SELECTOR, "#downloads a")] == ["npy", "tiff", "png"]
    assert browser.find_element(By.ID, "compare-image").is_displayed() and not browser.find_element(By.ID, "compare-video").is_displayed()

    browser.execute_script("const s = document.getElementById('slider'); s.value = 60; s.dispatchEvent(new Event('input'));")
    assert "60%" in browser.find_element(By.ID, "after-clip").value_of_css_property("clip-path")
    screenshot = Path(os.environ.get("RESTORA_SCREENSHOT", tmp_path / "web-page.png"))
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(screenshot)) and screenshot.stat().st_size > 0


def test_choose_upscale_x2_for_a_photo(live_url, browser, tmp_path):
    from PIL import Image
    from selenium.webdriver.support.ui import Select

    upload = tmp_path / "small.png"
    Image.fromarray(np.random.default_rng(3).integers(0, 256, (40, 56, 3), dtype=np.uint8)).save(upload)
    browser.get(live_url)
    Select(browser.find_element(By.ID, "task")).select_by_value("upscale 2")
    browser.find_element(By.ID, "file").send_keys(str(upload))
    status = WebDriverWait(browser, 120).until(
        lambda b: (s := b.find_element(By.ID, "job-status").text.lower()) in ("succeeded", "failed", "canceled") and s
    )
    assert status == "succeeded", browser.find_element(By.ID, "job-error").text
    job_id = browser.find_element(By.ID, "job-id").text
    assert "image-upscale-x2" in browser.find_element(By.ID, "job-model").text
    result = httpx.get(f"{live_url}/v1/jobs/{job_id}/result")
    assert Image.open(io.BytesIO(result.content)).size == (112, 80)


def test_choose_a_users_own_model(live_url, browser, settings, tmp_path):
    """A model file added to the workers' folder appears as a choice; picking it sends its task and scale."""
    import time

    import torch
    from PIL import Image
    from safetensors.torch import save_file
    from selenium.webdriver.support.ui import Select
    from spandrel.architectures.Compact import Compact

    from models.user_models import add

    torch.manual_seed(1)
    weights = tmp_path / "web-compact-x2.safetensors"
    save_file(Compact(num_in_ch=3, num_out_ch=3, num_feat=8, num_conv=2, upscale=2).state_dict(), str(weights))
    add(weights, settings.data_dir / "models", replace=True)
    deadline = time.monotonic() + 60
    while "web-compact-x2" not in {m["name"] for m in httpx.get(f"{live_url}/v1/models").json()["models"]}:
        assert time.monotonic() < deadline, "the worker did not offer the model"
        time.sleep(0.5)

    upload = tmp_path / "small.png"
    Image.fromarray(np.random.default_rng(4).integers(0, 256, (24, 32, 3), dtype=np.uint8)).save(upload)
    browser.get(live_url)
    WebDriverWait(browser, 20).until(lambda b: "web-compact-x2" in b.find_element(By.ID, "model").text)
    assert "RealESRGAN Compact, upscale x2" in browser.find_element(By.ID, "model").text
    Select(browser.find_element(By.ID, "model")).select_by_value("web-compact-x2")
    browser.find_element(By.ID, "file").send_keys(str(upload))
    status = WebDriverWait(browser, 120).until(
        lambda b: (s := b.find_element(By.ID, "job-status").text.lower()) in ("succeeded", "failed", "canceled") and s
    )
    assert status == "succeeded", browser.find_element(By.ID, "job-error").text
    assert browser.find_element(By.ID, "job-model").text.startswith("web-compact-x2 v")
    result = httpx.get(f"{live_url}/v1/jobs/{browser.find_element(By.ID, 'job-id').text}/result")
    assert Image.open(io.BytesIO(result.content)).size == (64, 48)


def test_a_clip_that_comes_back_as_its_own_stream_says_why(live_url, browser, tmp_path):
    """A lightly noisy H.264 clip's MP4 result is its own stream: the page's before and after would look the
    same without a word, so it shows the job's result note."""
    clip = ffmpeg_testsrc2(tmp_path / "light.mp4", noise=1)
    browser.get(live_url + "/")
    browser.find_element(By.ID, "file").send_keys(str(clip))
    WebDriverWait(browser, 90, poll_frequency=0.2).until(lambda b: b.find_element(By.ID, "result-notes").is_displayed())
    assert browser.find_element(By.ID, "compare-video").is_displayed()
    assert browser.find_element(By.ID, "result-notes").text.startswith("mp4: this result is the input's own video stream")
