"""Invariances, symmetry and range, with hypothesis choosing the transforms."""

import jax
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import jaxcca

N, D1, D2 = 120, 6, 5
SETTINGS = settings(max_examples=12, deadline=None, derandomize=True)
seeds = st.integers(0, 2**31 - 1)

cca_sim = jax.jit(jaxcca.cca_similarity)
svcca_sim = jax.jit(lambda x, y: jaxcca.svcca_similarity(x, y, keep=4))
pwcca_sim = jax.jit(jaxcca.pwcca_similarity)
pwcca_svcca = jax.jit(lambda x, y: jaxcca.pwcca_similarity(x, y, convention="svcca"))
rho = jax.jit(lambda x, y: jaxcca.cca(x, y).rho)


def pair(seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, D1)) + rng.uniform(-3, 3, D1)
    y = np.tanh(x @ rng.standard_normal((D1, D2))) + 0.5 * rng.standard_normal((N, D2))
    return rng, x, y


def invertible(rng, d):
    m = rng.standard_normal((d, d))
    u, _, vt = np.linalg.svd(m)
    return u @ np.diag(rng.uniform(0.2, 5.0, d)) @ vt  # condition number <= 25


def orthogonal(rng, d):
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    return q


@SETTINGS
@given(seeds)
def test_cca_invariant_to_invertible_maps_and_translation(seed):
    rng, x, y = pair(seed)
    x2 = x @ invertible(rng, D1) + rng.standard_normal(D1)
    y2 = y @ invertible(rng, D2) - 7.0
    np.testing.assert_allclose(rho(x2, y2), rho(x, y), atol=1e-10)


@SETTINGS
@given(seeds)
def test_svcca_invariant_to_orthogonal_maps_scaling_translation(seed):
    # SVD reduction is rotation-equivariant, not invariant to general maps.
    rng, x, y = pair(seed)
    x2 = 3.7 * x @ orthogonal(rng, D1) + 1.0
    y2 = 0.2 * y @ orthogonal(rng, D2)
    np.testing.assert_allclose(svcca_sim(x2, y2), svcca_sim(x, y), atol=1e-10)


@SETTINGS
@given(seeds)
def test_pwcca_invariances(seed):
    # Weights come from x's neurons: invariant to permuting them, to isotropic
    # scaling and translation of x, and to any invertible map of y.
    rng, x, y = pair(seed)
    perm = rng.permutation(D1)
    x2 = 2.5 * x[:, perm] - 4.0
    y2 = y @ invertible(rng, D2) + 1.0
    for f in (pwcca_sim, pwcca_svcca):
        np.testing.assert_allclose(f(x2, y2), f(x, y), atol=1e-10)


@SETTINGS
@given(seeds)
def test_symmetry_range_and_self_similarity(seed):
    _, x, y = pair(seed)
    np.testing.assert_allclose(cca_sim(x, y), cca_sim(y, x), atol=1e-12)
    np.testing.assert_allclose(svcca_sim(x, y), svcca_sim(y, x), atol=1e-12)
    r = np.asarray(rho(x, y))
    assert np.all(r >= 0) and np.all(r <= 1) and np.all(np.diff(r) <= 1e-15)
    for f in (cca_sim, svcca_sim, pwcca_sim, pwcca_svcca):
        assert 0.0 <= float(f(x, y)) <= 1.0
        np.testing.assert_allclose(f(x, x), 1.0, atol=1e-12)


def test_pwcca_is_not_symmetric_in_general():
    _, x, y = pair(5)
    assert abs(float(pwcca_sim(x, y)) - float(pwcca_sim(y, x))) > 1e-3


def test_unrelated_representations_are_dissimilar():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((5000, 5)), rng.standard_normal((5000, 5))
    for f in (cca_sim, pwcca_sim):
        assert float(f(x, y)) < 0.05
