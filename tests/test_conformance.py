"""One battery for every public measure: jit == eager, vmap == loop, dtype kept,
compiled once, finite gradients (also at x == y and other degenerate inputs).

The measures come from the registry in ``tests/measures.py``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from .measures import MEASURES, dense_pair

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
