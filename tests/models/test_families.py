"""Degradation families: seeded, in the camera's units, each doing what its docstring says; the
classifier measures the noise the same way whatever the array's scale."""
from __future__ import annotations

import numpy as np
import pytest

from models.data.families import FAMILIES, SHARP_BLUR_PX, make_sharp_stack, make_wide_stack, psf_kernel
from models.data.sources import clean_images
from models.data.synthetic import MAX_DN, sample_photons
from models.data.targets import PATTERNS
from models.stack.noise import StackNoiseClassifier

SIZE = 96


@pytest.fixture(scope="module")
def scene() -> np.ndarray:
    return clean_images("val", size=SIZE, seed=1)[0]


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_family_is_seeded_and_in_camera_units(family, scene):
    first = FAMILIES[family](scene, np.random.default_rng(3), 500.0, 12)
    again = FAMILIES[family](scene, np.random.default_rng(3), 500.0, 12)
    np.testing.assert_array_equal(first.stack, again.stack)
    assert first.stack.dtype == np.uint16 and first.stack.shape == (12, SIZE, SIZE) and first.stack.max() <= MAX_DN
    assert first.truth.dtype == np.float32 and first.truth.shape == (SIZE, SIZE)
    assert first.displacements.shape == (12, SIZE, SIZE, 2)
    assert first.params["photons"] == 500.0 and 20 <= first.params["black"] <= 80


def test_static_family_does_not_move_and_its_mean_is_the_truth(scene):
    simulated = FAMILIES["static"](scene, np.random.default_rng(0), 5000.0, 40)
    assert not simulated.displacements.any()
    error = simulated.stack.mean(axis=0) - simulated.truth
    assert abs(float(error.mean())) < 2 and float(error.std()) < 10  # noise of a 40-frame mean only


def test_wide_family_spans_its_ranges(scene):
    params = [make_wide_stack(scene, np.random.default_rng(seed), 300.0).params for seed in range(40)]
    frames = [p["frames"] for p in params]
    assert min(frames) < 20 and max(frames) > 150 and all(8 <= f <= 300 for f in frames)
    assert {p["psf"] for p in params} == {0, 1, 2}
    assert any(p["static"] for p in params) and max(p["blur_max"] for p in params) > 1.5


def test_sharp_family_always_moves_with_nearly_sharp_frames(scene):
    params = [make_sharp_stack(scene, np.random.default_rng(seed), 300.0, 8).params for seed in range(20)]
    assert not any(p["static"] for p in params)
    assert all(p["blur_max"] <= SHARP_BLUR_PX[1] for p in params) and max(p["wobble_rms"] + p["jitter_std"] for p in params) > 1.0


@pytest.mark.parametrize("shape", ["disc", "moffat"])
def test_non_gaussian_psfs_are_normalised_and_widen_with_width(shape):
    narrow, wide = psf_kernel(shape, 0.5), psf_kernel(shape, 1.5)
    assert narrow.sum() == pytest.approx(1, abs=1e-5) and wide.sum() == pytest.approx(1, abs=1e-5)
    assert wide.max() < narrow.max()


def test_physics_family_gets_stronger_with_d_over_r0(scene):
    from models.data.physics import make_stack

    mild = make_stack(scene, np.random.default_rng(1), 1000.0, 6, d_over_r0=1.0).params
    strong = make_stack(scene, np.random.default_rng(1), 1000.0, 6, d_over_r0=6.0).params
    assert strong["rms_displacement_px"] > 2 * mild["rms_displacement_px"]
    assert strong["psf_sigma_px"] > 1.5 * mild["psf_sigma_px"]


def test_printed_targets_have_paper_and_ink():
    rng = np.random.default_rng(0)
    for pattern in PATTERNS:
        image = pattern(128, rng)
        assert image.shape == (128, 128) and 0 <= image.min() and image.max() <= 1
        assert np.percentile(image, 95) - np.percentile(image, 2) > 0.2, pattern.__name__


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_classifier_is_scale_free(family, scene):
    """uint16, float DN and float 0..1 copies of one stack: the same photon count, level and (scaled) sigma."""
    rng = np.random.default_rng(7)
    simulated = FAMILIES[family](scene, rng, sample_photons("medium", rng), 24)
    classifier = StackNoiseClassifier()
    results = []
    for copy, unit in ((simulated.stack, 1.0), (simulated.stack.astype(np.float32), 1.0), (simulated.stack / np.float32(MAX_DN), MAX_DN)):
        estimate = classifier.predict(copy)
        results.append((estimate.level, classifier.photons, estimate.sigma * unit))
    levels, photons, sigmas = zip(*results)
    assert len(set(levels)) == 1
    assert max(photons) / min(photons) == pytest.approx(1, abs=1e-3)
    assert max(sigmas) / min(sigmas) == pytest.approx(1, abs=1e-3)
