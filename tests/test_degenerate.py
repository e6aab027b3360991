"""Dead, constant and duplicated neurons; more neurons than samples; NaN input."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxcca

from . import reference as ref


def base(rng, n=300, d=8):
    x = rng.standard_normal((n, d)) + 1.0
    y = np.tanh(x @ rng.standard_normal((d, 6))) + 0.4 * rng.standard_normal((n, 6))
    return x, y


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dead_and_constant_neurons_are_masked(rng, dtype):
    x, y = base(rng)
    dead = np.concatenate([x, np.zeros((300, 1)), np.full((300, 2), 3.25)], axis=1)
    res = jaxcca.cca(dead.astype(dtype), y.astype(dtype))
    assert int(res.rank_x) == 8
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(res.rho, ref.canonical_correlations(x, y), atol=tol)
    np.testing.assert_allclose(
        jaxcca.pwcca_similarity(dead.astype(dtype), y.astype(dtype)),
        ref.pwcca_paper(x, y)[0],
        atol=tol,
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_duplicated_neurons_do_not_add_directions(rng, dtype):
    x, y = base(rng)
    dup = np.concatenate([x, x[:, :3], 2 * x[:, 1:2] - x[:, 4:5]], axis=1)
    res = jaxcca.cca(dup.astype(dtype), y.astype(dtype))
    assert int(res.rank_x) == 8
    tol = 1e-5 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(res.rho, ref.canonical_correlations(x, y), atol=tol)
    assert np.all(np.isfinite(np.asarray(res.x_weights)))


def test_more_neurons_than_samples_reports_rank_and_trivial_count(rng):
    n = 20
    x, y = rng.standard_normal((n, 50)), rng.standard_normal((n, 30))
    res = jaxcca.cca(x, y)
    assert int(res.rank_x) == n - 1 and int(res.rank_y) == n - 1
    assert int(res.n_trivial) == n - 1
    np.testing.assert_allclose(res.rho[: n - 1], 1.0, atol=1e-10)
    np.testing.assert_allclose(res.rho[n - 1 :], 0.0, atol=0)
    # SVCCA with few directions is the documented way out.
    sv = jaxcca.svcca(x, y, keep=3)
    assert int(sv.n_trivial) == 0 and float(sv.similarity) < 0.95
    assert np.isfinite(float(jaxcca.pwcca_similarity(x, y)))


def test_partial_overlap_counts_trivial_directions(rng):
    x, y = rng.standard_normal((30, 20)), rng.standard_normal((30, 15))
    res = jaxcca.cca(x, y)
    assert int(res.n_trivial) == 20 + 15 - 29
    np.testing.assert_allclose(res.rho[: int(res.n_trivial)], 1.0, atol=1e-10)


def test_all_dead_layer_is_finite(rng):
    x, y = np.ones((50, 4)), rng.standard_normal((50, 3))
    res = jaxcca.pwcca(x, y)
    assert int(res.rank_x) == 0
    assert float(res.similarity) == 0.0 and float(res.mean_rho) == 0.0


def test_nan_input_propagates_by_default_and_raises_when_checked(rng):
    x, y = base(rng)
    x[3, 2] = np.nan
    assert np.isnan(float(jaxcca.cca_similarity(x, y)))
    with pytest.raises(ValueError, match="NaN or Inf"):
        jaxcca.cca_similarity(x, y, check_finite=True)
    # Under jit the values do not exist yet: a ValueError at trace time says so.
    jitted = jax.jit(lambda a, b: jaxcca.pwcca_similarity(a, b, check_finite=True))
    for pair in ((x, y), base(np.random.default_rng(1))):
        with pytest.raises(ValueError, match="check_finite=True needs concrete inputs"):
            jitted(*pair)


def test_tiny_and_huge_scales(rng):
    x, y = base(rng)
    expected = float(jaxcca.cca_similarity(x, y))
    for s in (1e-30, 1e30):
        np.testing.assert_allclose(jaxcca.cca_similarity(s * x, y), expected, atol=1e-10)
    x32, y32 = x.astype(np.float32), y.astype(np.float32)
    for s in (1e-15, 1e15):
        np.testing.assert_allclose(
            jaxcca.cca_similarity(jnp.float32(s) * x32, y32), expected, atol=1e-5
        )
