"""The learned stack restorer: committed weights, registry wiring, registration, recorded quality."""
from __future__ import annotations

import json

import numpy as np
import pytest

from models.archs import load_weights
from models.data.sources import dead_leaves
from models.data.stack_pairs import PAIR_CODE, pairs_digest
from models.interface import NOISE_LEVELS
from models.registry import WEIGHTS_DIR, restorer_for
from models.stack.learned import LearnedStackRestorer, RegistrationConfig, estimate_flows, mirror_ensemble
from models.train_stack import VERSION

QUICK = WEIGHTS_DIR.parent.parent / "benchmarks" / "results" / "eval_stacks_quick.json"
PSNR_MARGIN_DB = 0.2  # allowed drop below the recorded quick-eval numbers (threads may reorder sums)


@pytest.mark.parametrize("level", NOISE_LEVELS)
def test_committed_weights_load_and_are_small(level):
    path = WEIGHTS_DIR / f"stack-{level}.pt"
    assert path.exists() and path.stat().st_size < 4e6
    net, meta = load_weights(path)
    assert meta["level"] == level and meta["version"] == VERSION
    assert sum(p.numel() for p in net.parameters()) < 1_000_000
    RegistrationConfig.from_dict(meta["registration"])  # readable


@pytest.mark.parametrize(("level", "version"), [("low", "8"), ("medium", "7"), ("high", "7")])
def test_registry_serves_the_learned_restorer(level, version):
    spec = restorer_for("stack", level)
    assert spec.name == f"stack-fusion-{level}" and spec.version == version
    assert spec.target == "models.stack.learned:LearnedStackRestorer" and spec.weights == f"stack-{level}.pt"
    model = spec.build("cpu")
    assert isinstance(model, LearnedStackRestorer) and model.level == level


def test_low_noise_stacks_get_the_mean_of_the_low_and_medium_networks():
    """On stacks of images neither network saw, their mean beat the low network alone on every family
    (benchmarks/stack_unseen_images.py)."""
    rng = np.random.default_rng(2)
    merged = np.stack([dead_leaves(48, rng)] * 2 + [np.full((48, 48), 0.05, np.float32)]).astype(np.float32)
    served = restorer_for("stack", "low").build("cpu")
    alone = [LearnedStackRestorer(level, weights=WEIGHTS_DIR / f"stack-{level}.pt") for level in ("low", "medium")]
    for model in alone:
        model.setup("cpu")
    low, medium = (model.network(merged) for model in alone)
    assert np.abs(low - medium).max() > 1e-3  # two different networks
    np.testing.assert_allclose(served.network(merged), (low + medium) / 2, atol=1e-5)


def test_registration_recovers_known_shifts():
    rng = np.random.default_rng(4)
    scene = (dead_leaves(96, rng) * 0.9 + 0.05).astype(np.float32)
    shifts = [(0.0, 0.0), (1.5, -2.0), (-2.5, 1.0), (2.0, 2.5), (-1.0, -1.5)]
    import cv2

    xs, ys = np.meshgrid(np.arange(96, dtype=np.float32), np.arange(96, dtype=np.float32))
    frames = np.stack([cv2.remap(scene, xs - dx, ys - dy, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT) for dx, dy in shifts])
    flows = estimate_flows(frames, frames.mean(axis=0), RegistrationConfig())
    inner = (slice(16, -16), slice(16, -16))
    mean_shift = np.mean(shifts, axis=0)
    for (dx, dy), flow in zip(shifts, flows):
        # frame(x + flow) ~ reference(x); centred flows put the reference at the mean position
        assert np.median(flow[inner][..., 0]) == pytest.approx(dx - mean_shift[0], abs=0.15)
        assert np.median(flow[inner][..., 1]) == pytest.approx(dy - mean_shift[1], abs=0.15)


def test_mirror_ensemble_treats_a_mirrored_stack_as_a_mirrored_result():
    """The averaged mirror passes make the restorer exactly flip-equivariant, which the network alone is not."""
    import torch

    net, _ = load_weights(WEIGHTS_DIR / "stack-medium.pt")
    x = torch.from_numpy(np.random.default_rng(1).uniform(0, 1, (1, net.head.in_channels, 40, 56)).astype(np.float32))
    with torch.inference_mode():
        assert not torch.allclose(net(x.flip(3)), net(x).flip(3), atol=1e-4)
        assert torch.allclose(mirror_ensemble(net, x.flip(3)), mirror_ensemble(net, x).flip(3), atol=1e-5)
        assert torch.allclose(mirror_ensemble(net, x.flip(2)), mirror_ensemble(net, x).flip(2), atol=1e-5)


def test_predict_keeps_units_and_shape():
    model = restorer_for("stack", "low").build("cpu")
    flat = np.full((12, 40, 48), 1234.0, np.float32) + np.random.default_rng(0).normal(0, 2, (12, 40, 48)).astype(np.float32)
    out = model.predict(flat)
    assert out.shape == (40, 48) and out.dtype == np.float32
    assert abs(float(np.median(out)) - 1234.0) < 5


def test_quick_eval_reaches_recorded_quality():
    """The seeded quick sample (every family and level once, through the Pipeline) still scores what was recorded,
    and no stack comes back more than 0.2 dB below the aligned mean (static: nor below the plain mean)."""
    from models.eval_stacks import ALIGNED, MEAN, QUICK_RUN, RESTORA, run

    recorded = json.loads(QUICK.read_text())
    report = run(**QUICK_RUN, log=lambda _: None)
    assert set(report["table"]) == set(recorded["table"])
    for family, cells in recorded["table"].items():
        for level, then in cells.items():
            now = report["table"][family][level]
            assert now[RESTORA]["psnr"] >= then[RESTORA]["psnr"] - PSNR_MARGIN_DB, (family, level)
            assert now[RESTORA]["ssim"] >= then[RESTORA]["ssim"] - 0.005, (family, level)
            assert now[RESTORA]["psnr"] >= now[ALIGNED]["psnr"] - 0.2, (family, level)
            if family == "static":
                assert now[RESTORA]["psnr"] >= now[MEAN]["psnr"] - 0.2, level
    for family in ("current", "wide"):  # turbulent stacks: a PSNR win at every level, SSIM no lower (tiny 30-frame stacks)
        for level in NOISE_LEVELS:
            cell = report["table"][family][level]
            assert cell[RESTORA]["psnr"] > cell[ALIGNED]["psnr"] + 0.3, (family, level)
            assert cell[RESTORA]["ssim"] > cell[ALIGNED]["ssim"] - 0.005, (family, level)


def test_restora_run_matches_the_evaluation_code_path(tmp_path):
    """`restora run` on a file gives the frame (and PSNR) the evaluation measures for that file."""
    import subprocess
    import sys

    from models.eval_stacks import QUICK_RUN, ValImages, psnr, stack_specs, synth
    from models.pipeline import Pipeline

    # the current-family medium stack of the quick evaluation
    spec = stack_specs(("current",), ("medium",), 1, size=QUICK_RUN["size"], frames=QUICK_RUN["frames"])[0]
    simulated = synth(ValImages(), spec)
    stack, truth = simulated.stack, simulated.truth
    src, via_cli, via_eval = tmp_path / "stack.npy", tmp_path / "cli.npy", tmp_path / "eval.npy"
    np.save(src, stack)
    done = subprocess.run([sys.executable, "-m", "restora.cli", "run", str(src), "-o", str(via_cli)],
                          cwd=WEIGHTS_DIR.parent.parent, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    Pipeline(device="cpu", kinds=("stack",)).restore_file(src, [via_eval])
    a, b = np.load(via_cli), np.load(via_eval)
    np.testing.assert_allclose(a, b, atol=0.05)
    assert psnr(truth, a) == pytest.approx(psnr(truth, b), abs=1e-3)


def test_pair_cache_key_follows_the_code_that_makes_pairs(tmp_path):
    """Editing the simulation or the registration must not reuse pairs the old code made."""
    code = tmp_path / "learned.py"
    code.write_text("registration, first version\n")
    cfg = RegistrationConfig()
    before = pairs_digest(cfg, (code,))
    assert pairs_digest(cfg, (code,)) == before
    assert pairs_digest(RegistrationConfig(window=9.0), (code,)) != before
    code.write_text("registration, edited\n")
    assert pairs_digest(cfg, (code,)) != before
    assert all(path.is_file() for path in PAIR_CODE)
