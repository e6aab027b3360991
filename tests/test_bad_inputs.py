"""Property-based battery of bad and extreme inputs over every measure in the registry.

Every case is run in float32 (under ``jit``) and compared with float64 on the
same data: NaN or Inf in gives NaN out; otherwise the float32 result is finite
and equals the float64 one, and (for differentiable measures) ``jit(grad)`` is
finite. Cases: magnitudes 1e-30..1e30, one neuron up to 1e30 times larger than
the rest, NaN and Inf entries, tiny ``n``, ``n <= d``, dead and duplicated
neurons, float16/bfloat16 inputs, and tied correlations (y inside x's span).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .measures import ALL, dense_pair

CASES = (
    "scale",
    "huge_neuron",
    "nan",
    "inf",
    "tiny_n",
    "n_le_d",
    "dead",
    "duplicate",
    "dtype",
    "ties",
)
# float32 against float64 on identical data, for well-conditioned random
# activations (condition numbers ~10): PWCCA's weights depend on singular
# vectors and are the least accurate (see the README's accuracy section).
TOL = 2e-4


def make_case(m, case: str, e: int, seed: int):
    """``(x, y, expect_nan, cast)`` in float64 (``cast``: dtype the float32 run uses)."""
    rng = np.random.default_rng(seed)
    x, y = (m.make or dense_pair)(rng, np.float64)
    cast = np.float32
    d1 = x.shape[1]
    if case == "scale":
        x, y = x * 10.0**e, y * 10.0 ** (-e)
    elif case == "huge_neuron":
        x[:, 1] *= 10.0 ** abs(e)
    elif case == "nan":
        x[rng.integers(x.shape[0]), rng.integers(d1)] = np.nan
    elif case == "inf":
        y[rng.integers(y.shape[0]), rng.integers(y.shape[1])] = np.inf * (-1) ** e
    elif case == "tiny_n":
        n = max(m.min_n, 4)
        x, y = x[:n], y[:n]
    elif case == "n_le_d":
        n = max(m.min_n, d1 - 2)
        x, y = x[:n], y[:n]
    elif case == "dead":
        x[:, 0] = 0.0
        x[:, 2] = 3.25 * 10.0**e
    elif case == "duplicate":
        x[:, -1] = x[:, 0]
        y[:, 0] = x[:, 1]
    elif case == "dtype":
        cast = (np.float16, jnp.bfloat16)[e % 2]
        x, y = (np.asarray(a.astype(cast), np.float64) for a in (x, y))
    elif case == "ties":
        n = max(m.min_n, d1 + 3)
        x = x[:n]
        y = x @ rng.standard_normal((d1, y.shape[1]))  # y inside x's span: all rho = 1
    return x, y, case in ("nan", "inf"), cast


@functools.cache
def _jitted(name):
    m = next(m for m in ALL if m.name == name)
    return jax.jit(m.fn), jax.jit(jax.grad(m.fn, argnums=(0, 1)))


# Known limit, not hidden: google/svcca's PWCCA convention orthonormalises
# x's activations along its canonical directions (shifted CholeskyQR3); with
# one neuron more than ~1/u = 1e7 times larger than the rest those vectors are
# parallel to float32 working precision and the float32 result can be NaN
# (documented in the README). Accepted only then, and float64 must stay right.
KNOWN_NAN32 = {("pwcca_similarity_svcca", "huge_neuron"), ("pairwise_pwcca_svcca", "huge_neuron")}


def run_case(m, case, e, seed):
    """Returns None if the case passes, else a message."""
    x, y, expect_nan, cast = make_case(m, case, e, seed)
    f, g = _jitted(m.name)
    x32, y32 = x.astype(cast), y.astype(cast)
    v32 = float(f(x32, y32) if m.differentiable else m.fn(x32, y32))
    v64 = float(m.fn(x, y))
    if expect_nan:
        return None if np.isnan(v32) and np.isnan(v64) else f"NaN expected, got {v32} / {v64}"
    if (m.name, case) in KNOWN_NAN32 and abs(e) >= 7 and np.isnan(v32):
        return None if np.isfinite(v64) else f"float64 {v64} beyond the float32 limit"
    if not np.isfinite(v32) or abs(v32 - v64) > TOL:
        return f"float32 {v32} vs float64 {v64}"
    if m.differentiable and case not in ("tiny_n", "n_le_d", "ties"):
        gx, gy = g(x.astype(np.float32), y.astype(np.float32))
        if not (np.all(np.isfinite(gx)) and np.all(np.isfinite(gy))):
            return "non-finite gradient"
    return None


@pytest.mark.parametrize("m", ALL, ids=[m.name for m in ALL])
@settings(
    max_examples=4,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    case=st.sampled_from(CASES),
    e=st.integers(-30, 30),
    seed=st.integers(0, 2**16),
)
def test_bad_inputs(m, case, e, seed):
    problem = run_case(m, case, e, seed)
    assert problem is None, f"{m.name} {case} e={e} seed={seed}: {problem}"
