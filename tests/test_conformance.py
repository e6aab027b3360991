"""One battery for every public measure: jit == eager, vmap == loop, dtype kept,
compiled once, finite gradients (also at x == y and other degenerate inputs).

To add a measure, append a ``Measure`` to ``MEASURES``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxcca


@dataclasses.dataclass(frozen=True)
class Measure:
    name: str
    fn: Callable  # (x, y) -> scalar similarity (or distance)
    make: Callable = None  # rng, dtype -> (x, y); default: dense (n, d) pair
    symmetric: bool = False
    self_value: float | None = 1.0  # value of fn(x, x)


def dense_pair(rng, dtype, n=60, d1=7, d2=5):
    x = rng.standard_normal((n, d1))
    y = np.tanh(x @ rng.standard_normal((d1, d2))) + 0.3 * rng.standard_normal((n, d2))
    return x.astype(dtype), y.astype(dtype)


MEASURES = [
    Measure("cca_similarity", jaxcca.cca_similarity, symmetric=True),
    Measure("cca_distance", jaxcca.cca_distance, symmetric=True, self_value=0.0),
    Measure("svcca_similarity", lambda x, y: jaxcca.svcca_similarity(x, y, keep=0.99)),
    Measure("svcca_similarity_k3", lambda x, y: jaxcca.svcca_similarity(x, y, keep=3)),
    Measure("svcca_distance", jaxcca.svcca_distance, self_value=0.0),
    Measure("pwcca_similarity", jaxcca.pwcca_similarity),
    Measure(
        "pwcca_similarity_svcca",
        lambda x, y: jaxcca.pwcca_similarity(x, y, convention="svcca"),
    ),
    Measure("pwcca_distance", jaxcca.pwcca_distance, self_value=0.0),
    Measure("cka_similarity", jaxcca.cka_similarity, symmetric=True),
    Measure(
        "cka_debiased",
        lambda x, y: jaxcca.cka_similarity(x, y, debiased=True),
        symmetric=True,
    ),
    Measure("cka_rbf", lambda x, y: jaxcca.cka_similarity(x, y, kernel="rbf"), symmetric=True),
    Measure(
        "cka_rbf_debiased_sigma",
        lambda x, y: jaxcca.cka_similarity(x, y, kernel="rbf", sigma=3.0, debiased=True),
        symmetric=True,
    ),
    Measure("cka_distance", jaxcca.cka_distance, symmetric=True, self_value=0.0),
    Measure(
        "minibatch_cka",
        lambda x, y: (
            jaxcca.minibatch_cka(
                x.reshape(4, -1, x.shape[1]), y.reshape(4, -1, y.shape[1])
            ).similarity
        ),
        symmetric=True,
    ),
    Measure("procrustes_similarity", jaxcca.procrustes_similarity, symmetric=True),
    Measure("procrustes_distance", jaxcca.procrustes_distance, symmetric=True, self_value=0.0),
    Measure(
        "procrustes_angular",
        lambda x, y: jaxcca.procrustes_distance(x, y, angular=True),
        symmetric=True,
        self_value=0.0,
    ),
]


def conv_pair(rng, dtype):
    """A dense pair whose columns are read as (2, 2, C) conv maps by the measure."""
    return dense_pair(rng, dtype, n=60, d1=12, d2=8)


def as_conv(fn):
    return lambda x, y: fn(x.reshape(x.shape[0], 2, 2, -1), y.reshape(y.shape[0], 2, 2, -1))


MEASURES += [
    Measure("dft_cca_similarity", as_conv(jaxcca.dft_cca_similarity), make=conv_pair),
    Measure(
        "dft_cca_projection",
        as_conv(lambda x, y: jaxcca.dft_cca_similarity(x, y, weighting="projection")),
        make=conv_pair,
    ),
    Measure("dft_cca_distance", as_conv(jaxcca.dft_cca_distance), make=conv_pair, self_value=0.0),
]

IDS = [m.name for m in MEASURES]
TOL = {np.float32: 2e-5, np.float64: 1e-12}


def _pair(m, rng, dtype):
    make = m.make or dense_pair
    return make(rng, dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("m", MEASURES, ids=IDS)
def test_jit_equals_eager_and_dtype_kept(m, dtype, rng):
    x, y = _pair(m, rng, dtype)
    eager = m.fn(x, y)
    jitted = jax.jit(m.fn)(x, y)
    assert eager.shape == ()
    assert eager.dtype == dtype and jitted.dtype == dtype
    np.testing.assert_allclose(jitted, eager, rtol=0, atol=TOL[dtype])
    assert 0.0 <= float(eager) <= 1.0


@pytest.mark.parametrize("m", MEASURES, ids=IDS)
def test_vmap_equals_loop(m, rng):
    pairs = [_pair(m, np.random.default_rng(i), np.float64) for i in range(3)]
    xs = jnp.stack([p[0] for p in pairs])
    ys = jnp.stack([p[1] for p in pairs])
    batched = jax.vmap(m.fn)(xs, ys)
    looped = jnp.stack([m.fn(x, y) for x, y in pairs])
    np.testing.assert_allclose(batched, looped, rtol=0, atol=1e-11)


@pytest.mark.parametrize("m", MEASURES, ids=IDS)
def test_traced_once_for_new_values(m):
    traces = []

    def counted(x, y):
        traces.append(1)
        return m.fn(x, y)

    f = jax.jit(counted)
    for seed in range(3):
        f(*_pair(m, np.random.default_rng(seed), np.float64))
    assert len(traces) == 1


@pytest.mark.parametrize("m", MEASURES, ids=IDS)
def test_self_value_and_symmetry(m, rng):
    x, y = _pair(m, rng, np.float64)
    if m.self_value is not None:
        np.testing.assert_allclose(m.fn(x, x), m.fn(y, y), atol=1e-12)
        np.testing.assert_allclose(m.fn(x, x), m.fn(x, x * 1.0), atol=1e-12)
        np.testing.assert_allclose(float(m.fn(x, x)), m.self_value, atol=1e-10)
    if m.symmetric:
        np.testing.assert_allclose(m.fn(x, y), m.fn(y, x), atol=1e-12)


def _degenerate_inputs(make, rng, dtype):
    x, y = make(rng, dtype)
    n, d = x.shape
    mix = rng.standard_normal((d, d)) + 3 * np.eye(d)
    dead = x.copy()
    dead[:, 0] = 0.0
    dead[:, 1] = 2.5
    dup = x.copy()
    dup[:, -1] = dup[:, 0]
    return {
        "random": (x, y),
        "identical": (x, x),
        "invertible_map": (x, (x @ mix).astype(dtype)),
        "dead_neurons": (dead, y),
        "duplicated_neurons": (dup, x),
    }


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("m", MEASURES, ids=IDS)
def test_gradients_finite_at_degenerate_inputs(m, dtype, rng):
    grad = jax.jit(jax.grad(m.fn, argnums=(0, 1)))
    for case, (x, y) in _degenerate_inputs(m.make or dense_pair, rng, dtype).items():
        gx, gy = grad(x, y)
        assert gx.dtype == dtype
        assert np.all(np.isfinite(gx)) and np.all(np.isfinite(gy)), (m.name, case)
