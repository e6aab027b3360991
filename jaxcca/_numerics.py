"""Elementwise idioms shared by every measure, each written once.

Masked square roots and divisions whose unused branch carries no NaN gradient
(the double ``where``), the first-``k`` mask that stands for a slice of traced
length, NaN pass-through, the clipped and masked canonical correlations with
their mean, the dead-neuron rule, and the count of trivially perfect
correlations. Nothing here knows about a particular measure.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "HIGHEST",
    "alive_neurons",
    "live_unit",
    "clip_correlations",
    "first_k",
    "gram",
    "mean_correlation",
    "mm",
    "n_trivial",
    "nonconstant",
    "pow2_scale",
    "propagate_nan",
    "rescale_ratio",
    "running_scale",
    "set_scale",
    "safe_div",
    "safe_rsqrt",
    "safe_sqrt",
]

HIGHEST = jax.lax.Precision.HIGHEST


def mm(a: jax.Array, b: jax.Array) -> jax.Array:
    """``a @ b`` at full float32 precision (covariances are formed with it)."""
    return jnp.matmul(a, b, precision=HIGHEST)


def gram(a: jax.Array) -> jax.Array:
    """``a.T @ a`` (``(d, d)``, exactly symmetric) at full precision, for ``a`` of shape ``(n, d)``.

    XLA's CPU matrix product does not exploit symmetry (BLAS ``syrk`` does);
    for wide ``a`` the columns are cut into 2 or 3 blocks and only the blocks
    on and above the diagonal are multiplied (3/4 or 2/3 of the work), the
    others mirrored. Narrow ``a`` (``d < 256``) is one product.
    """
    d = a.shape[-1]
    k = 1 if d < 256 else 2 if d < 400 else 3
    if k == 1:
        return mm(jnp.swapaxes(a, -1, -2), a)
    edges = [round(i * d / k) for i in range(k + 1)]
    cols = [a[..., lo:hi] for lo, hi in zip(edges[:-1], edges[1:], strict=True)]
    blocks = {
        (i, j): mm(jnp.swapaxes(cols[i], -1, -2), cols[j]) for i in range(k) for j in range(i, k)
    }
    rows = [
        jnp.concatenate(
            [blocks[i, j] if j >= i else jnp.swapaxes(blocks[j, i], -1, -2) for j in range(k)],
            axis=-1,
        )
        for i in range(k)
    ]
    return jnp.concatenate(rows, axis=-2)


def safe_div(num: jax.Array, den: jax.Array, ok: jax.Array) -> jax.Array:
    """``num / den`` where ``ok``, else 0, with no NaN in either branch's gradient."""
    safe_den = jnp.where(ok, den, jnp.ones_like(den))
    return jnp.where(ok, num / safe_den, jnp.zeros_like(num))


def safe_sqrt(x: jax.Array) -> jax.Array:
    """``sqrt(x)`` for ``x > 0``, else 0; finite gradient at 0 (double ``where``)."""
    pos = x > 0
    return jnp.where(pos, jnp.sqrt(jnp.where(pos, x, 1.0)), 0.0)


def safe_rsqrt(x: jax.Array) -> jax.Array:
    """``1 / sqrt(x)`` for ``x > 0``, else 0; finite gradient at 0 (double ``where``)."""
    pos = x > 0
    return jnp.where(pos, jax.lax.rsqrt(jnp.where(pos, x, 1.0)), 0.0)


def first_k(k: jax.Array, size: int) -> jax.Array:
    """``(size,)`` bool mask of the first ``k`` entries: a slice of traced length."""
    return jnp.arange(size, dtype=jnp.int32) < k


def propagate_nan(value: jax.Array, source: jax.Array) -> jax.Array:
    """``value``, made NaN wherever ``source`` holds NaN or Inf (NaN in, NaN out).

    Masks compare False on NaN, so a masked result would otherwise hide a NaN
    input behind a quiet 0. Adds ``0 * sum(source)``.
    """
    return value + 0.0 * jnp.sum(source).astype(value.dtype)


def clip_correlations(s: jax.Array, k: jax.Array) -> jax.Array:
    """Singular values to canonical correlations: clipped to [0, 1], zero past ``k``.

    NaN in ``s`` passes through.
    """
    valid = first_k(k, s.shape[0])
    return propagate_nan(jnp.where(valid, jnp.clip(s, 0.0, 1.0), 0.0), s)


def mean_correlation(rho: jax.Array, k: jax.Array) -> jax.Array:
    """Sum of ``rho`` divided by ``max(k, 1)`` (entries past ``k`` are 0)."""
    return jnp.sum(rho) / jnp.maximum(k, 1).astype(rho.dtype)


def n_trivial(n, rank_x: jax.Array, rank_y: jax.Array) -> jax.Array:
    """Number of canonical correlations forced to 1 by the ranks alone.

    Two subspaces of the ``(n - 1)``-dimensional centred sample space intersect
    in at least ``rank_x + rank_y - (n - 1)`` dimensions.
    """
    return jnp.maximum(rank_x + rank_y - jnp.maximum(n - 1, 0), 0)


def alive_neurons(norms: jax.Array, mean: jax.Array, n) -> jax.Array:
    """The dead-neuron rule: which centred neurons carry more than round-off.

    A neuron is dead when its centred norm is at the round-off level of its
    values (an exactly constant neuron leaves ~``eps * |mean| * sqrt(n)``
    behind) or below ``1e-3`` of that level relative to the largest finite
    neuron. Callers scale each neuron to a unit maximum first
    (:func:`pow2_scale`), so that one huge neuron cannot make the others look
    dead. NaN and Inf norms count as alive, so that they reach the output.

    Args:
      norms: ``(..., d)`` centred Euclidean norms of the neurons.
      mean: ``(..., d)`` their means (real or complex).
      n: the number of samples (may be traced).
    """
    eps = float(np.finfo(norms.dtype).eps)
    root_n = jnp.sqrt(jnp.asarray(n, norms.dtype))
    # The largest *finite* norm: one NaN or Inf neuron must not kill the others,
    # and is itself counted alive (``not <=``) so that it reaches the output.
    finite_max = jnp.max(jnp.where(jnp.isfinite(norms), norms, 0.0), axis=-1, keepdims=True)
    scale = jnp.abs(mean) * root_n + finite_max * 1e-3
    return ~(norms <= 64.0 * eps * scale)


def live_unit(scale: jax.Array, alive: jax.Array) -> jax.Array:
    """One global power of two for per-neuron scales: the largest *live* neuron's.

    Callers scale each neuron by its own :func:`pow2_scale` and later take the
    scales back out up to one global factor, ``values * (live_unit / scale)``.
    That factor is the smallest scale (the largest neuron) among the ``alive``
    ones: a huge dead (constant or zero) neuron must not set it, or every live
    value is pushed toward underflow. 1 where no neuron is alive.

    Args:
      scale: ``(d,)`` per-neuron powers of two.
      alive: ``(d,)`` bool, which neurons count.
    """
    ref = jnp.min(jnp.where(alive, scale, jnp.inf))
    return jnp.where(jnp.isfinite(ref), ref, jnp.ones_like(ref))


def pow2_scale(a: jax.Array, axis=None) -> jax.Array:
    """The power of two ``2**-e`` that brings ``max|a|`` (over ``axis``) into [0.5, 1).

    Multiplying by it is exact in floating point (barring underflow of entries
    far below the maximum), so every scale-invariant measure gives the same
    value on ``a * pow2_scale(a)`` as on ``a``, while squares and fourth powers
    of the scaled values can no longer overflow or underflow. Held constant
    for differentiation (``stop_gradient``): exact for functions that are
    invariant to the scaling. 1 where the maximum is 0, NaN or Inf.
    """
    m = jax.lax.stop_gradient(jnp.max(jnp.abs(a), axis=axis))
    ok = jnp.isfinite(m) & (m > 0)
    _, e = jnp.frexp(jnp.where(ok, m, 1.0))
    return jnp.where(ok, jnp.ldexp(jnp.ones_like(m), -e), 1.0)


# A running state (streaming co-moments, minibatch HSIC sums) keeps its sums
# multiplied by powers of two, one per neuron or per representation, chosen by
# ``running_scale`` from the first batch that has a nonzero finite value; when
# two states meet (a later batch, another device), both are brought to the
# smaller scale by ``rescale_ratio``: exact, so the sums never leave the float32
# range and the result does not depend on how the data were split.


def running_scale(a: jax.Array, axis=None) -> jax.Array:
    """``pow2_scale(a, axis)``, or ``inf`` ("not set yet") where ``max|a|`` is 0, NaN or Inf."""
    m = jax.lax.stop_gradient(jnp.max(jnp.abs(a), axis=axis))
    return jnp.where(jnp.isfinite(m) & (m > 0), pow2_scale(a, axis=axis), jnp.inf)


def set_scale(scale: jax.Array) -> jax.Array:
    """The factor a running scale stands for: 1 where it is not set yet (its sums are 0)."""
    return jnp.where(jnp.isfinite(scale), scale, 1.0)


def rescale_ratio(old: jax.Array, new: jax.Array) -> jax.Array:
    """``new / old`` for running scales (a power of two; 1 where ``old`` is not set)."""
    return jnp.where(jnp.isfinite(old), set_scale(new) / old, 1.0)


def nonconstant(xc: jax.Array, mean: jax.Array) -> jax.Array:
    """Which centred columns are more than the round-off of their own mean, ``(1, d)``.

    Column by column: centring a constant column of value ``c`` leaves a
    round-off residue of up to a few ulps of ``c`` (one float32 ulp of 3.25e6
    is 0.25), and comparing every column with the *largest* mean would let one
    large constant neuron declare the whole representation constant. Callers
    zero the constant columns (the exact result) and treat a representation
    with no live column as constant. Written as ``not (<=)`` so that NaN counts
    as non-constant and propagates.
    """
    eps = float(np.finfo(xc.dtype).eps)
    peak = jnp.max(jnp.abs(xc), axis=0, keepdims=True)
    return ~(peak <= 64.0 * eps * jnp.abs(mean))
