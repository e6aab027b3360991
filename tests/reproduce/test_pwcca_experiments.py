"""The PWCCA experiments' statistics on hand-made inputs (no training)."""

import jax
import numpy as np
import pytest

pytest.importorskip("flax")
pytest.importorskip("sklearn")

from reproduce.experiments import _common as K  # noqa: E402
from reproduce.experiments import dynamics, learning_rate, lstm_dynamics, width  # noqa: E402


@pytest.fixture(autouse=True)
def standard_promotion():
    with jax.numpy_dtype_promotion("standard"):
        yield


def test_threshold_keeps_shape_and_the_variance_asked_for():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((200, 3)) @ rng.standard_normal((3, 12))
    a = a + 1e-3 * rng.standard_normal((200, 12))
    t = K.threshold_variance(a, 0.99)
    assert t.shape == (200, 12)
    kept = int((np.abs(t).sum(0) > 0).sum())
    assert kept == 3  # three strong directions hold > 99% of the variance
    centred = a - a.mean(0)
    assert np.isclose((t.astype(np.float64) ** 2).sum(), (centred**2).sum(), rtol=1e-3)


def test_distance_matrices_ignore_zero_padding():
    rng = np.random.default_rng(1)
    reps = [rng.standard_normal((150, 8)) @ rng.standard_normal((8, 8)) for _ in range(3)]
    for fn in (K.pwcca_distance_matrix, K.mean_cca_distance_matrix):
        plain, padded = fn(reps, keep=None), fn(reps, keep=None, pad_to=20)
        np.testing.assert_allclose(plain, padded, atol=1e-5)
        np.testing.assert_allclose(plain, plain.T, atol=1e-6)


def test_unconverged_counts_valid_coefficients_only():
    # 4 valid coefficients, all converged, then zero padding past min(rank_x, rank_y)
    net = {
        "converged_index": 0,
        "valid_coefficients": [4],
        "sorted_cca_to_final": [[0.99, 0.98, 0.97, 0.95, 0.0, 0.0, 0.0, 0.0]],
    }
    assert dynamics.unconverged(net) == 0.0
    net["sorted_cca_to_final"] = [[0.99, 0.98, 0.5, 0.4, 0.0, 0.0, 0.0, 0.0]]
    assert dynamics.unconverged(net) == 0.5


def test_stable_directions_statistic_on_made_up_curves():
    net = {
        "early_index": 1,
        "stable_curve": [0.2, 0.9, 0.9, 1.0],
        "unstable_curve": [0, 0.1, 0.3, 1],
    }
    assert np.isclose(dynamics.stable_minus_unstable(net), (0.8 + 0.6 + 0.0) / 3)


def test_unit_subset_is_fixed_per_width_and_of_the_asked_size():
    a, b = width.unit_subset(64, 16), width.unit_subset(64, 16)
    np.testing.assert_array_equal(a, b)
    assert len(set(a.tolist())) == 16 and a.max() < 64


def test_clustering_statistics_see_perfect_clusters_and_not_permuted_ones():
    labels = np.repeat([0, 1, 2], 3)
    dist = np.where(labels[:, None] == labels[None, :], 0.1, 0.9)
    np.fill_diagonal(dist, 0.0)
    assert learning_rate.ari(dist, labels) == 1.0
    assert learning_rate.ratio(dist, labels) == pytest.approx(0.1 / 0.9)
    rng = np.random.default_rng(0)
    assert np.mean([learning_rate.ari(dist, rng.permutation(labels)) for _ in range(50)]) < 0.5


def test_bottom_up_and_ordering_consistency():
    t = np.linspace(1, 0, 6)
    curves = np.stack([t**3, t**2, t])  # lower layers closer to final at every checkpoint
    assert lstm_dynamics.bottom_up(curves) == pytest.approx(1.0)
    np.testing.assert_array_equal(lstm_dynamics.consistency(curves)[1:], 1.0)
    assert lstm_dynamics.bottom_up(curves[::-1]) == pytest.approx(-1.0)
