"""Raw stacks: the simulator, the noise classifier, registration and the classical restorer."""
from __future__ import annotations

import numpy as np
import pytest

from models.data.families import FAMILIES
from models.data.sources import TRAIN_SOURCES, clean_images, load_source, random_square
from models.data.synthetic import BRIGHT_PERCENTILE, MAX_DN, brightest_part, camera_scene, expose, level_of, make_stack, sample_photons
from models.interface import Canceled, NoiseEstimate
from models.registry import restorer_for
from models.stack.noise import StackNoiseClassifier

SIZE, FRAMES = 128, 30


def psnr(image: np.ndarray, truth: np.ndarray) -> float:
    return float(10 * np.log10(MAX_DN ** 2 / np.mean((image - truth) ** 2)))


@pytest.fixture(scope="module")
def camera() -> np.ndarray:
    """A val-split source image (models.data.sources), cropped small."""
    return random_square(load_source("camera"), SIZE, np.random.default_rng(3))


def test_level_thresholds_and_photon_sampling():
    assert level_of(20000) == level_of(1000) == "low"
    assert level_of(999.9) == level_of(100) == "medium"
    assert level_of(99.9) == level_of(10) == "high"
    rng = np.random.default_rng(0)
    for level in ("low", "medium", "high"):
        assert all(level_of(sample_photons(level, rng)) == level for _ in range(200))


def test_make_stack_units_black_level_and_seed(camera):
    clean = camera.copy()
    clean[:, :16] = 0.0  # a black strip shows the black level
    stack, truth = make_stack(clean, np.random.default_rng(5), photons=2000, frames=FRAMES).pair
    again, _ = make_stack(clean, np.random.default_rng(5), photons=2000, frames=FRAMES).pair
    assert stack.dtype == np.uint16 and stack.shape == (FRAMES, SIZE, SIZE) and truth.shape == (SIZE, SIZE)
    assert truth.dtype == np.float32 and stack.max() <= MAX_DN
    np.testing.assert_array_equal(stack, again)
    black = float(truth[:, :8].mean())
    assert 20 <= black <= 80 and np.ptp(truth[:, :8]) < 1e-3
    assert abs(float(stack[:, :, 2:6].mean()) - black) < 3  # dark pixels: zero-mean noise around black
    exposure = brightest_part(truth - black)
    assert 0.44 * MAX_DN < exposure < 0.86 * MAX_DN
    assert np.percentile(stack.mean(axis=0), BRIGHT_PERCENTILE) > black + 0.8 * exposure


def test_make_stack_noise_follows_photons():
    """Relative noise in the bright part is 1/sqrt(photons): Poisson, read noise aside."""
    half_dark = np.zeros((64, 64), np.float32)
    half_dark[:, 32:] = 0.7
    for photons in (30.0, 3000.0):
        stack, truth = make_stack(half_dark, np.random.default_rng(1), photons=photons, frames=40).pair
        black, bright = float(truth[:, :8].mean()), float(truth[:, -8:].mean())
        relative_std = stack[:, :, -16:-4].astype(np.float64).std(axis=0).mean() / (bright - black)
        assert relative_std == pytest.approx(1 / np.sqrt(photons), rel=0.15)


@pytest.mark.parametrize(("photons", "level"), [(6000, "low"), (300, "medium"), (25, "high")])
def test_classifier_levels_on_clear_stacks(camera, photons, level):
    stack = make_stack(camera, np.random.default_rng(11), photons=photons, frames=FRAMES).stack
    classifier = StackNoiseClassifier()
    classifier.setup("cpu")
    estimate = classifier.predict(stack.astype(np.float32))
    assert estimate.level == level
    assert np.log(classifier.photons / photons) == pytest.approx(0, abs=0.25)
    assert estimate.sigma > 0


def test_classifier_reads_a_stack_its_noise_pushes_past_the_ceiling(camera):
    """A bright scene at 20 photons clips at random all over (22 % of the values): before bands and the
    clipping margin, too few pixels stayed measurable and the stack read as infinitely bright (low)."""
    rng = np.random.default_rng(7)
    scene = camera_scene(0.6 + 0.4 * camera)
    stack = np.stack([expose(scene, rng, 20.0, 0.95 * MAX_DN / 20.0, 40.0, 3.0) for _ in range(FRAMES)])
    assert (stack == MAX_DN).mean() > 0.2
    classifier = StackNoiseClassifier()
    assert classifier.predict(stack.astype(np.float32)).level == "high"
    assert np.log(classifier.photons / 20.0) == pytest.approx(0, abs=0.4)


def test_classifier_reads_a_scene_whose_flatter_half_is_dark():
    """scikit-image's horse (a training image) through the ``wide`` family at 555 photons: the flatter half of
    the whole scene was all dark ground, whose variance is read noise; it read 14 times the photons (low)."""
    clean = clean_images("train", size=192, seed=311110)[TRAIN_SOURCES.index("horse")]
    stack = FAMILIES["wide"](clean, np.random.default_rng([31, 1, 1, 1002]), 555.15).stack
    classifier = StackNoiseClassifier()
    assert classifier.predict(stack.astype(np.float32)).level == "medium"
    assert np.log(classifier.photons / 555.15) == pytest.approx(0, abs=0.4)


@pytest.mark.parametrize("level", ["low", "medium", "high"])
def test_restorer_beats_temporal_mean(camera, level):
    rng = np.random.default_rng({"low": 21, "medium": 22, "high": 23}[level])
    stack, truth = make_stack(camera, rng, photons=sample_photons(level, rng), frames=FRAMES).pair
    stack = stack.astype(np.float32)
    estimate = StackNoiseClassifier().predict(stack)
    restorer = restorer_for("stack", level).build("cpu")
    seen = []
    restored = restorer.predict(stack, estimate, lambda fraction, stage: seen.append(fraction))
    assert restored.shape == truth.shape and restored.dtype == np.float32
    assert psnr(restored, truth) > psnr(stack.mean(axis=0), truth) + 1.0
    assert seen == sorted(seen) and 0 <= seen[0] and seen[-1] < 1


def test_restorer_cancel_propagates(camera):
    stack = make_stack(camera, np.random.default_rng(4), photons=500, frames=10).stack

    def cancel_at_half(fraction: float, stage: str) -> None:
        if fraction > 0.5:
            raise Canceled

    with pytest.raises(Canceled):
        restorer_for("stack", "medium").build("cpu").predict(stack.astype(np.float32), NoiseEstimate("medium", 50.0), cancel_at_half)
