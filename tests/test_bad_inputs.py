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


BY_NAME = {m.name: m for m in ALL}
# How a case is run: "eager" (the public function called as is), "jit"
# (wrapped in jax.jit), "vmap" (jax.jit(jax.vmap(...)) over two copies of the
# pair) and "grad" (the gradient under jax.jit must be finite; computed with
# the value by one jax.jit(jax.value_and_grad(...)) program).
PATHS = ("eager", "jit", "vmap", "grad")


@functools.cache
def _compiled(name: str, path: str):
    """One transformed function per (measure, path), shared by every case."""
    fn = BY_NAME[name].fn
    if path == "jit":
        return jax.jit(fn)
    if path == "vmap":
        return jax.jit(jax.vmap(fn))
    if path == "grad":
        return jax.jit(jax.grad(fn, argnums=(0, 1)))
    if path == "jit+grad":  # one compiled program for the value and the gradient
        return jax.jit(jax.value_and_grad(fn, argnums=(0, 1)))
    return fn


def default_paths(m) -> tuple[str, ...]:
    # The per-test battery: single-pair measures under jit and jit(grad); the
    # batch paths (pairwise, streaming) as users call them.
    return ("jit", "grad") if m.differentiable else ("eager",)


# Known limit, not hidden: google/svcca's PWCCA convention orthonormalises
# x's activations along its canonical directions (shifted CholeskyQR3); with
# one neuron more than ~1/u = 1e7 times larger than the rest those vectors are
# parallel to float32 working precision and the float32 result can be NaN
# (documented in the README). Accepted only then, and float64 must stay right.
KNOWN_NAN32 = {("pwcca_similarity_svcca", "huge_neuron"), ("pairwise_pwcca_svcca", "huge_neuron")}


def _judge(m, case, e, v32: float, v64: float, expect_nan: bool) -> str | None:
    if expect_nan:
        return None if np.isnan(v32) and np.isnan(v64) else f"NaN expected, got {v32} / {v64}"
    if (m.name, case) in KNOWN_NAN32 and abs(e) >= 7 and np.isnan(v32):
        return None if np.isfinite(v64) else f"float64 {v64} beyond the float32 limit"
    if not np.isfinite(v32) or abs(v32 - v64) > TOL:
        return f"float32 {v32} vs float64 {v64}"
    return None


# Cases that change the number of samples: no gradient is asked there.
RESHAPED = ("tiny_n", "n_le_d", "ties")


def _grad_problem(gx, gy) -> str | None:
    ok = np.all(np.isfinite(gx)) and np.all(np.isfinite(gy))
    return None if ok else "grad: non-finite gradient"


def run_case(m, case, e, seed, paths=None):
    """Returns None if the case passes on every path, else a message naming the path."""
    x, y, expect_nan, cast = make_case(m, case, e, seed)
    x32, y32 = x.astype(cast), y.astype(cast)
    v64 = float(m.fn(x, y))
    paths = list(paths or default_paths(m))
    wants_grad = "grad" in paths and m.differentiable and case not in RESHAPED
    if "jit" in paths and wants_grad and cast is np.float32:
        # The jit value and the gradient from one program (compiled once per
        # measure for the common shape: compiling dominates this battery).
        value, (gx, gy) = _compiled(m.name, "jit+grad")(x32, y32)
        problem = _judge(m, case, e, float(value), v64, expect_nan)
        if problem is not None:
            return f"jit: {problem}"
        # No gradient is asked of a NaN value (NaN input, or the known limit).
        if np.isfinite(float(value)) and (problem := _grad_problem(gx, gy)) is not None:
            return problem
        paths = [p for p in paths if p not in ("jit", "grad")]
    for path in paths:
        if path == "grad":
            if wants_grad and not expect_nan:
                vg = _compiled(m.name, "jit+grad")
                value, (gx, gy) = vg(x.astype(np.float32), y.astype(np.float32))
                if np.isfinite(float(value)) and (problem := _grad_problem(gx, gy)) is not None:
                    return problem
            continue
        fn = _compiled(m.name, path)
        if path == "vmap":
            out = fn(np.stack([x32, x32]), np.stack([y32, y32]))
            values = [float(v) for v in np.asarray(out, np.float64)]
        else:
            values = [float(fn(x32, y32))]
        for v32 in values:
            problem = _judge(m, case, e, v32, v64, expect_nan)
            if problem is not None:
                return f"{path}: {problem}"
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
