"""The stack restorer on what it was not tuned to: still stacks, rescaled arrays, few frames, the range of its input."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from models.data.families import FAMILIES, camera_shake
from models.data.sources import clean_images
from models.data.synthetic import MAX_DN, brightest_part, ground_truth, sample_photons
from models.eval_stacks import ValImages, centred_mean, flow_aligned_mean, stack_specs, synth, unwarped_mean
from models.registry import restorer_for
from models.stack import still
from models.stack.learned import (
    STATIC_MOTION_PX,
    STD_GAIN,
    blur_undone,
    consistent_with_mean,
    frame_weights,
    geometry_uncertainty_px,
    global_shifts,
    mean_variance,
    motion_px,
    normalise,
    nothing_to_deblur,
    prepare,
    unclipped_pixels,
)
from models.stack.noise import StackNoiseClassifier

SIZE = 128


def psnr(image: np.ndarray, truth: np.ndarray) -> float:
    return float(10 * np.log10(MAX_DN ** 2 / np.mean((image.astype(np.float64) - truth) ** 2)))


@pytest.fixture(scope="module")
def scene() -> np.ndarray:
    return clean_images("val", size=SIZE, seed=4)[1]


def _restore(stack: np.ndarray) -> tuple[np.ndarray, str]:
    estimate = StackNoiseClassifier().predict(stack)
    return restorer_for("stack", estimate.level).build("cpu").predict(stack, estimate), estimate.level


@pytest.mark.parametrize("level", ["low", "medium", "high"])
def test_a_still_stack_is_never_worse_than_its_plain_mean(scene, level):
    """No motion, no blur: the mean is right up to its noise; whatever the network does, the result keeps that."""
    rng = np.random.default_rng(["low", "medium", "high"].index(level))
    simulated = FAMILIES["static"](scene, rng, sample_photons(level, rng), 20)
    restored, _ = _restore(simulated.stack.astype(np.float32))
    assert psnr(restored, simulated.truth) >= psnr(simulated.stack.mean(axis=0), simulated.truth) - 0.2


@pytest.mark.parametrize("bm3d", [True, False], ids=["with-bm3d", "where-bm3d-does-not-load"])
def test_a_still_stack_of_a_blurred_scene_is_deblurred(scene, bm3d, monkeypatch):
    """Still frames of an out-of-focus scene: the still path's SURE blend is credited with the blur the
    network undid, so the result is sharper than the plain mean, which SURE alone would keep; also
    where the blend is of the mean and the network alone (no bm3d, as on ARM)."""
    if not bm3d:
        monkeypatch.setattr(still, "load_bm3d", lambda required=False: None)
    rng = np.random.default_rng(5)
    blurred = cv2.GaussianBlur(scene.astype(np.float32), (0, 0), 0.7)
    simulated = FAMILIES["static"](blurred, rng, sample_photons("low", rng), 20)
    truth = ground_truth(scene / max(brightest_part(blurred), 1e-3), simulated.params["black"], simulated.params["exposure"])
    restored, _ = _restore(simulated.stack.astype(np.float32))
    assert psnr(restored, truth) >= psnr(simulated.stack.mean(axis=0), truth) + 1.0


def test_blur_undone_is_credited_only_where_the_mean_measures_blurred(scene):
    """The credit needs a mean that measures blurred: not a sharp one (the network's sharper result may
    be wrong there), and not a smooth one, where the blur reading sits at its cap (no edge to measure on)."""
    sharp = scene.astype(np.float32) / np.float32(scene.max())
    everywhere = np.ones(sharp.shape, bool)
    fine = np.random.default_rng(0).standard_normal(sharp.shape).astype(np.float32) * np.float32(0.02)
    assert blur_undone(cv2.GaussianBlur(sharp, (0, 0), 0.8), sharp, everywhere) > 0  # the network undid a real blur
    assert blur_undone(sharp, sharp + fine, everywhere) == 0  # a sharp mean: nothing to credit
    ys, xs = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    smooth = 0.5 + 0.3 * np.sin(xs / 40) * np.cos(ys / 50)
    assert blur_undone(smooth, smooth + fine, everywhere) == 0  # no edges: the reading is at its cap


def test_motion_is_measured_not_assumed(scene):
    still = FAMILIES["static"](scene, np.random.default_rng(0), 500.0, 20).stack
    moving = FAMILIES["current"](scene, np.random.default_rng(0), 500.0, 20)
    true_rms = float(np.sqrt(np.mean(np.square(moving.displacements - moving.displacements.mean(axis=0)))))
    for stack, expected in ((still, 0.0), (moving.stack, true_rms)):
        frames, _, _ = normalise(stack)
        measured = motion_px(frames, frames.mean(axis=0))
        assert measured == pytest.approx(expected, abs=0.1 + 0.3 * expected)
    frames, _, _ = normalise(still)
    assert motion_px(frames, frames.mean(axis=0)) < STATIC_MOTION_PX


def test_noisy_still_stacks_read_as_still(scene):
    """Read noise lifts a dark still stack's temporal variance above ``a * level``: measured on the
    flattest pixels, it is not taken for motion (without that, 3 of these 8 read 0.16 to 0.19 px)."""
    for photons in (10.0, 40.0):
        for seed in range(4):
            frames, _, _ = normalise(FAMILIES["static"](scene, np.random.default_rng(seed), photons, 20).stack)
            assert motion_px(frames, frames.mean(axis=0)) < STATIC_MOTION_PX, (photons, seed)


def test_rescaled_copies_give_the_same_level_and_result(scene):
    """uint16, float DN and float 0..1: the same level, and the same frame once scaled back."""
    rng = np.random.default_rng(5)
    stack = FAMILIES["current"](scene, rng, sample_photons("medium", rng), 16).stack
    results = [_restore(copy) for copy in (stack, stack.astype(np.float32), stack.astype(np.float32) / np.float32(MAX_DN))]
    assert len({level for _, level in results}) == 1
    np.testing.assert_allclose(results[2][0] * MAX_DN, results[0][0], atol=0.5)
    np.testing.assert_allclose(results[1][0], results[0][0], atol=0.01)


def test_four_frames_restore_inside_the_input_range(scene):
    rng = np.random.default_rng(6)
    simulated = FAMILIES["wide"](scene, rng, sample_photons("high", rng), 4)
    restored, _ = _restore(simulated.stack)
    assert restored.shape == (SIZE, SIZE) and np.isfinite(restored).all()
    assert simulated.stack.min() <= restored.min() and restored.max() <= simulated.stack.max()
    assert psnr(restored, simulated.truth) > psnr(simulated.stack.mean(axis=0), simulated.truth)


def test_a_result_that_explains_its_mean_is_kept_one_that_does_not_is_moved_back(scene):
    """consistent_with_mean: the truth, given a blurred noisy mean of it, passes unchanged; a smoothed-out
    version, which no blur of it explains, is moved most of the way back to the mean."""
    rng = np.random.default_rng(8)
    truth = scene.astype(np.float32)
    noise = np.float32(0.02)
    mean = cv2.GaussianBlur(truth, (0, 0), 0.8) + noise * rng.standard_normal(truth.shape, dtype=np.float32)
    merged = np.stack([mean, mean, np.full_like(mean, noise * STD_GAIN)])
    np.testing.assert_array_equal(consistent_with_mean(merged, truth, 4.0), truth)
    smoothed = cv2.GaussianBlur(truth, (0, 0), 4.0)
    moved = consistent_with_mean(merged, smoothed, 4.0)
    assert np.mean(np.square(moved - truth)) < 0.5 * np.mean(np.square(smoothed - truth))


def test_only_a_nearly_noiseless_registered_unblurred_mean_is_weighed_like_a_still_one(scene):
    """nothing_to_deblur: a moving stack's registered mean goes to the still stacks' SURE blend only
    when its noise is below the network's precision, its frames agree up to that noise and the
    network's result shows no blur undone (misregistration adds |gradient|^2 var(d) to the frames'
    temporal variance)."""
    rng = np.random.default_rng(9)
    truth = scene.astype(np.float32)

    def merged(mean: np.ndarray, noise: float, misregistration_px: float = 0.0) -> np.ndarray:
        gy, gx = np.gradient(truth)
        std = np.sqrt(noise ** 2 + (gx * gx + gy * gy) * misregistration_px ** 2) * STD_GAIN
        return np.stack([mean, mean, std.astype(np.float32)])

    def noisy(noise: float) -> np.ndarray:
        return truth + np.float32(noise) * rng.standard_normal(truth.shape, dtype=np.float32)

    variance = nothing_to_deblur(merged(noisy(0.002), 0.002), truth)
    assert variance is not None and np.median(variance) == pytest.approx(0.002 ** 2, rel=0.2)
    assert nothing_to_deblur(merged(cv2.GaussianBlur(noisy(0.002), (0, 0), 1.0), 0.002), truth) is None  # blur undone
    assert nothing_to_deblur(merged(noisy(0.02), 0.02), truth) is None  # noisier than the network is precise
    assert nothing_to_deblur(merged(noisy(0.002), 0.002, 0.5), truth) is None  # frames that disagree by more than noise


def test_a_sharp_textured_high_noise_stack_is_not_smoothed_below_its_registered_mean():
    """Evaluation stack `sharp` high 2 (gravel, 224 nearly still, sharp frames, 75 photons): the high network
    alone came back 3.4 dB below the registered mean it started from (34.6 against 38.0 dB)."""
    spec = next(s for s in stack_specs(("sharp",), ("high",), 3) if s["index"] == 2)
    simulated = synth(ValImages(), spec)
    stack = simulated.stack.astype(np.float32)
    restorer = restorer_for("stack", "high").build("cpu")
    prepared = prepare(stack, restorer.registration)
    registered_mean = prepared.to_input_units(prepared.merged[1])
    assert psnr(restorer.predict(stack), simulated.truth) >= psnr(registered_mean, simulated.truth) - 0.2


def test_camera_shake_beyond_the_local_flows_reach_is_undone(scene):
    """Whole frames moved by 10 px (std) on top of the turbulence: registration starts from whole-frame
    shifts, so the result is the unshaken stack's (without them: -5.6 dB here, -5 to -9 dB on
    evaluation stacks with 5 px). Compared inside a margin the shaken frames' edges never covered."""
    rng = np.random.default_rng(6)
    simulated = FAMILIES["current"](scene, rng, sample_photons("low", rng), 30)
    steady, _ = _restore(simulated.stack)
    shaken, _ = _restore(camera_shake(simulated.stack, 10.0, np.random.default_rng(7)))
    inner = (slice(24, -24),) * 2
    assert psnr(shaken[inner], simulated.truth[inner]) >= psnr(steady[inner], simulated.truth[inner]) - 0.5


def test_a_repeating_bar_target_does_not_fool_the_whole_frame_shifts():
    """An evaluation stack of a bar target with small motion: the phase correlation's strongest peak
    for some frames was a repeat of the bar groups 45 px away; the shifts stay within the motion."""
    spec = stack_specs(("sharp",), ("medium",), 1)[0]
    simulated = synth(ValImages(), spec)
    frames, _, _ = normalise(simulated.stack)
    shifts, _ = global_shifts(frames, frames[int(np.argmax(frame_weights(frames)))])
    true_motion = np.abs(simulated.displacements).max()
    assert np.abs(shifts).max() <= true_motion + 1.0


def test_registration_holds_along_the_frame_edges():
    """An evaluation stack with 1.9 px of wobble: where a frame's samples came from outside it
    (replicated edge pixels), they pulled the flows near the border wrong: the registered mean's
    16 px edge band scored 28.6 dB, 2.4 below the DIS-aligned mean's; now 31.4, no worse than it."""
    spec = next(s for s in stack_specs(("sharp",), ("high",), 3) if s["index"] == 1)
    simulated = synth(ValImages(), spec)
    prepared = prepare(simulated.stack, restorer_for("stack", "high").build("cpu").registration)
    registered = prepared.to_input_units(prepared.merged[1])
    band = np.ones(registered.shape, bool)
    band[16:-16, 16:-16] = False
    assert psnr(registered[band], simulated.truth[band]) >= psnr(flow_aligned_mean(simulated.stack)[band], simulated.truth[band])


@pytest.mark.parametrize("correlation", [0.0, 0.8])
def test_the_mean_geometrys_uncertainty_is_read_from_the_flows(correlation):
    """Displacements of std 1 px per axis over 16 independent frames: their mean is off by about
    1 / sqrt(16). Where each frame moves like the one before (frozen flow) it is off by more, and the
    reading stays on the low side: it never blurs for more error than there is."""
    rng = np.random.default_rng(5)
    frames, grid = 16, (32, 32)
    shifts = [rng.normal(0, 1.0, (*grid, 2))]
    for _ in range(frames - 1):
        shifts.append(correlation * shifts[-1] + np.sqrt(1 - correlation ** 2) * rng.normal(0, 1.0, (*grid, 2)))
    shifts = np.stack(shifts)
    flows = np.repeat(np.repeat(shifts.astype(np.float32), 4, axis=1), 4, axis=2)  # solved on a 4 px grid
    mean_off_by = np.sqrt(np.mean(np.square(shifts.mean(axis=0))))  # 2048 independent series: close to its expectation
    reading = geometry_uncertainty_px(flows)
    if correlation:
        assert mean_off_by > 0.5 and reading < mean_off_by
    else:
        assert reading == pytest.approx(mean_off_by, rel=0.1)


def test_a_few_frame_stack_is_not_sharpened_past_what_its_mean_geometry_knows():
    """Evaluation stack `wide` low 1: twelve frames moving 2.4 px (RMS); their mean's geometry is off by
    0.84 px (RMS), and the sharp result put its edges there, 0.46 dB below the DIS-aligned mean (now +0.03)."""
    spec = next(s for s in stack_specs(("wide",), ("low",), 3) if s["index"] == 1)
    simulated = synth(ValImages(), spec)
    restored, level = _restore(simulated.stack)
    assert level == "low"
    assert psnr(restored, simulated.truth) >= psnr(flow_aligned_mean(simulated.stack), simulated.truth) - 0.2


def test_a_still_stack_of_a_printed_target_is_denoised_like_bm3d_would():
    """Pure denoising of a flat printed target (an evaluation stack): BM3D of the mean beat the network
    alone by 7 dB; the served result keeps up with it (within 0.5 dB or above)."""
    simulated = synth(ValImages(), stack_specs(("static",), ("medium",), 2)[1])
    restored, _ = _restore(simulated.stack)
    prepared = prepare(simulated.stack, restorer_for("stack", "medium").build("cpu").registration)
    curve = still.noise_curve(prepared.merged[1], mean_variance(prepared.merged))
    alone = prepared.to_input_units(still.bm3d_of_mean(still.load_bm3d(required=True), prepared.merged[1], curve))
    assert psnr(restored, simulated.truth) >= psnr(alone, simulated.truth) - 0.5


def test_pixels_near_a_clipping_ceiling_are_not_trusted(scene):
    rng = np.random.default_rng(9)
    simulated = FAMILIES["static"](scene, rng, 20.0, 20)
    stack = np.minimum(simulated.stack, np.percentile(simulated.stack, 90)).astype(np.uint16)  # the brightest tenth clips
    kept = unclipped_pixels(stack, float(stack.max()))
    mean = stack.mean(axis=0)
    bright = mean >= np.percentile(mean, 95)
    assert not kept[bright].any() and 0.25 < kept.mean() < 0.95


def test_a_noisy_stack_touching_its_ceiling_in_a_few_frames_is_trusted(scene):
    """At 16 photons the brightest pixels of an unsaturated stack reach the 12-bit ceiling in a few frames;
    their mean hardly moves, and BM3D of it is the best answer there too."""
    simulated = FAMILIES["static"](scene, np.random.default_rng(9), 16.0, 20)
    top = float(np.percentile(simulated.stack, 99.9))
    stack = np.minimum(simulated.stack, top).astype(np.uint16)  # one value in a thousand clips: noise, not saturation
    assert unclipped_pixels(stack, top).mean() > 0.95


def test_centred_bound_keeps_the_frames_mean_geometry():
    """A displacement every frame shares (the scene seen off its place in all of them) is beyond any
    registration: the centred bound keeps it, the upper bound (true displacements) undoes it."""
    rng = np.random.default_rng(3)
    truth = cv2.GaussianBlur(rng.uniform(0, 4095, (96, 96)).astype(np.float32), (0, 0), 2.0)
    xs, ys = np.meshgrid(np.arange(96, dtype=np.float32), np.arange(96, dtype=np.float32))
    jitter = rng.normal(0, 1.0, (8, 1, 1, 2)).astype(np.float32)
    displacements = np.broadcast_to(jitter - jitter.mean(axis=0) + np.float32([1.5, -1.0]), (8, 96, 96, 2)).copy()
    stack = np.stack([cv2.remap(truth, xs + d[..., 0], ys + d[..., 1], cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT) for d in displacements])
    inner = (slice(8, -8),) * 2
    seen_off = cv2.remap(truth, xs + 1.5, ys - 1.0, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
    centred, upper = centred_mean(stack, displacements), unwarped_mean(stack, displacements)
    assert psnr(seen_off[inner], centred[inner]) > 40 > psnr(truth[inner], centred[inner])
    assert psnr(truth[inner], upper[inner]) > 40


def test_black_white_and_blank_frames_are_left_out(tmp_path):
    """A dropped (black) frame, a flash (white) and a blank read-out in a turbulent stack pulled the
    mean, the registration and the noise reading off (20 dB lost on a still stack). They are left
    out, the job says which, and the result is that of the good frames; a stack whose brightness
    flickers by 10 % keeps every frame."""
    from models.pipeline import Pipeline
    from models.stack.frames import outlier_frames

    spec = stack_specs(("current",), ("medium",), 1, size=SIZE, frames=24)[0]
    good = synth(ValImages(), spec).stack
    bad = good.copy()
    bad[3], bad[11], bad[17] = 0, MAX_DN, int(good.mean())
    pipeline = Pipeline(kinds=("stack",))
    np.save(tmp_path / "bad.npy", bad)
    np.save(tmp_path / "good.npy", np.delete(good, [3, 11, 17], axis=0))
    summary = pipeline.restore_file(tmp_path / "bad.npy", [tmp_path / "bad_out.npy"])
    pipeline.restore_file(tmp_path / "good.npy", [tmp_path / "good_out.npy"])
    assert summary.input["frames_left_out"] == [3, 11, 17]
    assert np.array_equal(np.load(tmp_path / "bad_out.npy"), np.load(tmp_path / "good_out.npy"))
    flicker = good * np.random.default_rng(1).uniform(0.9, 1.1, (len(good), 1, 1))
    assert outlier_frames(flicker) == [] and outlier_frames(good) == []
