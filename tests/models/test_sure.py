"""SURE weights against the truth they never see: a perfect restorer gets the weight, a useless one none."""
from __future__ import annotations

import numpy as np
import pytest

from models.data.sources import dead_leaves
from models.sure import sure_pair_weights, sure_weight


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(3)
    clean = dead_leaves(96, rng).astype(np.float32)
    variance = np.full(clean.shape, 0.05 ** 2, np.float32)
    noisy = clean + rng.normal(0.0, 0.05, clean.shape).astype(np.float32)
    return clean, noisy, variance


def test_the_truth_takes_all_the_weight(problem):
    clean, noisy, variance = problem
    oracle = lambda delta: clean  # noqa: E731 - ignores its input: divergence 0
    identity = lambda delta: noisy + delta  # noqa: E731 - the input itself: divergence = the noise
    assert sure_weight(noisy, clean, variance, oracle) == pytest.approx(1.0, abs=0.05)
    assert sure_pair_weights(noisy, noisy, clean, variance, identity, oracle) == pytest.approx((0.0, 1.0), abs=0.05)
    assert sure_pair_weights(noisy, clean, noisy, variance, oracle, identity) == pytest.approx((1.0, 0.0), abs=0.05)


def test_two_half_right_restorers_are_averaged(problem):
    """Two restorers with independent errors of the same size: their mean is better than either."""
    clean, noisy, variance = problem
    rng = np.random.default_rng(4)
    first, second = (clean + rng.normal(0.0, 0.03, clean.shape).astype(np.float32) for _ in range(2))
    alpha, beta = sure_pair_weights(noisy, first, second, variance, lambda delta: first, lambda delta: second)
    assert alpha == pytest.approx(beta, abs=0.1) and alpha + beta > 0.8
