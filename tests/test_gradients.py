"""Gradients: exact (check_grads in float64) and finite where spectra are degenerate."""

import jax
import numpy as np
import pytest
from jax.test_util import check_grads

import jaxcca

SCALARS = {
    "cca": jaxcca.cca_similarity,
    "svcca": lambda x, y: jaxcca.svcca_similarity(x, y, keep=3),
    "pwcca": jaxcca.pwcca_similarity,
    "pwcca_svcca": lambda x, y: jaxcca.pwcca_similarity(x, y, convention="svcca"),
}


def pair(seed, n=40, d1=5, d2=4):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d1)) + 0.5
    y = np.tanh(x @ rng.standard_normal((d1, d2))) + 0.5 * rng.standard_normal((n, d2))
    return x, y


@pytest.mark.parametrize("name", list(SCALARS))
def test_check_grads_float64(name):
    x, y = pair(0)
    check_grads(SCALARS[name], (x, y), order=1, modes=("fwd", "rev"), atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("name", list(SCALARS))
def test_gradient_at_identical_inputs_is_finite_and_zero(name):
    # Similarity is maximal (1) at x == y, so the gradient w.r.t. y vanishes.
    x, _ = pair(1)
    g = jax.grad(SCALARS[name], argnums=1)(x, x)
    assert np.all(np.isfinite(g))
    np.testing.assert_allclose(g, 0.0, atol=1e-8)


def test_gradient_descent_increases_similarity():
    x, y = pair(2)
    f = jax.jit(jaxcca.pwcca_similarity)
    g = jax.jit(jax.grad(jaxcca.pwcca_similarity, argnums=1))
    before = float(f(x, y))
    for _ in range(20):
        y = y + 0.5 * g(x, y)
    assert float(f(x, y)) > before + 0.05


def test_cca_gradient_matches_finite_differences_along_random_direction():
    x, y = pair(3)
    rng = np.random.default_rng(4)
    v = rng.standard_normal(y.shape)
    f = jaxcca.cca_similarity
    h = 1e-6
    fd = (float(f(x, y + h * v)) - float(f(x, y - h * v))) / (2 * h)
    ad = float(np.sum(np.asarray(jax.grad(f, argnums=1)(x, y)) * v))
    np.testing.assert_allclose(ad, fd, rtol=1e-6, atol=1e-9)
