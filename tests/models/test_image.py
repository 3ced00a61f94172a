"""Single images: noise level relative to the data range, and denoising that raises PSNR."""
from __future__ import annotations

import numpy as np
import pytest
from skimage import data

from models.image.noise import ImageNoiseClassifier, data_range
from models.image.restorer import ImageRestorer
from models.interface import Canceled, no_progress


def psnr(image: np.ndarray, truth: np.ndarray, peak: float) -> float:
    return float(10 * np.log10(peak ** 2 / np.mean((image.astype(np.float64) - truth) ** 2)))


def noisy(clean: np.ndarray, sigma: float, peak: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(clean + rng.normal(0, sigma, clean.shape), 0, peak).astype(np.float32)


@pytest.fixture(scope="module")
def gray() -> np.ndarray:
    return data.camera()[100:260, 120:280].astype(np.float32)


@pytest.fixture(scope="module")
def colour() -> np.ndarray:
    return data.coffee()[:160, 200:360].astype(np.float32)


def test_data_range():
    assert data_range(np.array([0.0, 255.0])) == 255
    assert data_range(np.array([0.0, 256.0])) == 4095
    assert data_range(np.array([0.0, 4095.0])) == 4095
    assert data_range(np.array([0.0, 4096.0])) == 65535


@pytest.mark.parametrize(("sigma_8bit", "level"), [(3, "low"), (13, "medium"), (35, "high")])
@pytest.mark.parametrize("peak", [255.0, 4095.0])
def test_classifier_levels_scale_with_data_range(gray, sigma_8bit, level, peak):
    scale = peak / 255.0
    estimate = ImageNoiseClassifier().predict(noisy(gray * scale, sigma_8bit * scale, peak))
    assert estimate.level == level
    assert estimate.sigma / scale == pytest.approx(sigma_8bit, rel=0.3)


def test_classifier_colour(colour):
    estimate = ImageNoiseClassifier().predict(noisy(colour, 15, 255))
    assert estimate.level == "medium" and estimate.sigma == pytest.approx(15, rel=0.2)


@pytest.mark.parametrize(("sigma_8bit", "peak"), [(5, 255.0), (15, 255.0), (30, 255.0), (15, 65535.0)])
def test_restorer_raises_psnr_gray(gray, sigma_8bit, peak):
    scale = peak / 255.0
    clean = gray * scale
    degraded = noisy(clean, sigma_8bit * scale, peak)
    estimate = ImageNoiseClassifier().predict(degraded)
    restored = ImageRestorer(estimate.level).predict(degraded, estimate, no_progress)
    assert restored.shape == degraded.shape and restored.dtype == np.float32
    assert psnr(restored, clean, peak) > psnr(degraded, clean, peak) + 2.0


def test_restorer_raises_psnr_colour(colour):
    degraded = noisy(colour, 20, 255)
    estimate = ImageNoiseClassifier().predict(degraded)
    restored = ImageRestorer(estimate.level).predict(degraded, estimate, no_progress)
    assert restored.shape == colour.shape
    assert psnr(restored, colour, 255) > psnr(degraded, colour, 255) + 3.0


def test_restorer_reports_progress_and_can_be_canceled(gray):
    tall = np.concatenate([gray] * 4)  # several strips
    estimate = ImageNoiseClassifier().predict(noisy(tall, 10, 255))
    seen = []
    ImageRestorer("medium").predict(tall, estimate, lambda fraction, stage: seen.append(fraction))
    assert len(seen) >= 2 and seen == sorted(seen)

    def cancel(fraction: float, stage: str) -> None:
        if fraction > 0:
            raise Canceled

    with pytest.raises(Canceled):
        ImageRestorer("medium").predict(tall, estimate, cancel)
