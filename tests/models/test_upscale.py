"""The upscalers: committed weights load, reach their recorded quick-eval quality, beat bicubic,
and tile without seams; gray and 16-bit inputs keep their form."""
from __future__ import annotations

import json

import numpy as np
import pytest

from models.eval_upscale import run
from models.image.upscale import LearnedUpscaler
from models.io import RESULTS_DIR
from models.registry import WEIGHTS_DIR

QUICK = RESULTS_DIR / "eval_upscale_quick.json"


@pytest.fixture(scope="module")
def quick_report():
    return run(quick=True, log=lambda _: None)


def test_upscalers_reach_their_recorded_quick_quality_and_beat_bicubic(quick_report):
    """On images, and on a clip through the whole video path (classify, denoise, upscale, encode)."""
    recorded = json.loads(QUICK.read_text())
    for report, record in ((quick_report, recorded), (quick_report["clips"], recorded["clips"])):
        for scale, rows in report["scales"].items():
            assert rows["Restora"]["psnr"] >= record["scales"][scale]["Restora"]["psnr"] - 0.05, scale
            assert rows["Restora"]["psnr"] > rows["bicubic"]["psnr"] + 0.5, (scale, rows)
            assert rows["Restora"]["ssim"] > rows["Lanczos"]["ssim"], (scale, rows)


@pytest.mark.parametrize("scale", [2, 4])
def test_tiles_join_without_seams_and_forms_are_kept(scale):
    model = LearnedUpscaler(weights=WEIGHTS_DIR / f"upscale-x{scale}.pt")
    model.setup("cpu")
    rng = np.random.default_rng(scale)
    image = np.rint(np.clip(rng.normal(30000, 8000, (90, 70, 3)), 0, 65535)).astype(np.float32)  # 16-bit values
    whole = model.predict(image)
    model.net_memory_mb = 0.5  # forces tiles of the minimum side
    tiled = model.predict(image)
    assert whole.shape == (90 * scale, 70 * scale, 3) and np.allclose(whole, tiled, atol=1.0)
    assert whole.max() > 255  # still in 16-bit units
    gray = model.predict(image[..., 0])
    assert gray.shape == (90 * scale, 70 * scale)
