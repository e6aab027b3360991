"""Exact CCA-family results on data streamed in batches, on one or many devices.

The sufficient statistics of two layers are the sample count, the means and the
centred co-moment matrices ``Sxx``, ``Syy``, ``Sxy``. They are accumulated
with the pairwise update of Chan, Golub & LeVeque (1979): every batch is
centred on its own mean before its products are formed, and batches are
merged with the exact correction term, so no large uncentred sums (and no
catastrophic cancellation) ever appear. Results equal the full-data results
for any split into batches.

    state = jaxcca.streaming.init(d1, d2)
    for xb, yb in batches:                      # or lax.scan, inside jit
        state = jaxcca.streaming.update(state, xb, yb)
    jaxcca.streaming.pwcca(state).similarity

Across devices, inside ``shard_map`` (or ``pmap``), combine the per-device
states with :func:`merge_across` (one ``psum``). Memory is ``O((d1 + d2)**2)``,
independent of the number of samples.

Magnitudes: the co-moments are kept in per-neuron power-of-two scales held in
the state (see :class:`CovarianceState`), so a float32 state gives the
float64 function's value for activations anywhere from ~1e-30 to ~1e30 and
with one neuron 1e20 times larger than the rest; states with different scales
merge exactly.

Accuracy: float64 agrees with the full-data result to ~1e-12. The finalisation
works from covariances, so in float32 it cannot repair round-off the way the
two-pass whitening of :func:`jaxcca.cca` does: expect ~1e-5 at condition
numbers ~10 and ~1e-4 at ~100; use float64 statistics (``init(...,
dtype=jnp.float64)``, fed float32 batches) for ill-conditioned layers.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxcca._cca import canonical_correlations, canonical_directions
from jaxcca._checks import FLOATS, as_float_array, as_pair, validate_convention, validate_keep
from jaxcca._numerics import (
    first_k,
    live_unit,
    mean_correlation,
    mm,
    n_trivial,
    rescale_ratio,
    running_scale,
    set_scale,
)
from jaxcca._pwcca import pwcca_weights, weighted_correlation
from jaxcca._results import CCAResult, CovarianceState, PWCCAResult, SVCCAResult
from jaxcca._svcca import reduce_whitened
from jaxcca._whiten import whiten_moments

__all__ = [
    "CovarianceState",
    "cca",
    "from_arrays",
    "init",
    "merge",
    "merge_across",
    "pwcca",
    "svcca",
    "update",
]


def init(d1: int, d2: int, dtype=jnp.float32) -> CovarianceState:
    """Empty statistics for layers of ``d1`` and ``d2`` neurons.

    ``dtype`` is the accumulation dtype: float32 or float64 (64-bit mode).
    float16 and bfloat16 accumulate in float32, as every measure computes
    low-precision activations in float32.

    Example:
      >>> import jax.numpy as jnp, jaxcca
      >>> jaxcca.streaming.init(3, 2).sxy.shape
      (3, 2)
    """
    if np.dtype(dtype) in (np.dtype(np.float16), np.dtype(jnp.bfloat16)):
        dtype = jnp.float32
    if np.dtype(dtype) not in FLOATS:
        raise TypeError(f"dtype must be float32 or float64, got {np.dtype(dtype)}.")
    if np.dtype(dtype) == np.float64 and not jax.config.read("jax_enable_x64"):
        raise TypeError(
            "dtype float64 needs JAX's 64-bit mode (jax.config.update('jax_enable_x64', "
            "True)); without it the state would silently be float32."
        )
    z = lambda *s: jnp.zeros(s, dtype)  # noqa: E731
    unset = lambda d: jnp.full((d,), jnp.inf, dtype)  # noqa: E731
    return CovarianceState(z(), z(d1), z(d2), z(d1, d1), z(d2, d2), z(d1, d2), unset(d1), unset(d2))


def _batch_state(x: jax.Array, y: jax.Array, dtype) -> CovarianceState:
    x, y = x.astype(dtype), y.astype(dtype)
    sx, sy = running_scale(x, axis=0), running_scale(y, axis=0)
    mx = jnp.mean(x, axis=0, keepdims=True)
    my = jnp.mean(y, axis=0, keepdims=True)
    xc, yc = (x - mx) * set_scale(sx)[None, :], (y - my) * set_scale(sy)[None, :]
    return CovarianceState(
        jnp.asarray(x.shape[0], dtype),
        mx[0],
        my[0],
        mm(xc.T, xc),
        mm(yc.T, yc),
        mm(xc.T, yc),
        sx,
        sy,
    )


def _rescale(state: CovarianceState, sx: jax.Array, sy: jax.Array) -> CovarianceState:
    """``state`` with its co-moments in the (smaller or equal) scales ``sx``, ``sy`` (exact)."""
    rx, ry = rescale_ratio(state.scale_x, sx), rescale_ratio(state.scale_y, sy)
    return state._replace(
        sxx=state.sxx * rx[:, None] * rx[None, :],
        syy=state.syy * ry[:, None] * ry[None, :],
        sxy=state.sxy * rx[:, None] * ry[None, :],
        scale_x=sx,
        scale_y=sy,
    )


def merge(a: CovarianceState, b: CovarianceState) -> CovarianceState:
    """Statistics of the union of two disjoint sets of samples (exact).

    Raises:
      ValueError: the two states are for layers of different widths.
    """
    shapes_a = (a.mean_x.shape, a.mean_y.shape)
    shapes_b = (b.mean_x.shape, b.mean_y.shape)
    if shapes_a != shapes_b:
        raise ValueError(
            f"cannot merge states of different widths: (d1, d2) = "
            f"{(a.mean_x.shape[-1], a.mean_y.shape[-1])} and "
            f"{(b.mean_x.shape[-1], b.mean_y.shape[-1])}."
        )
    # A common scale per neuron, the smaller of the two (a power of two, so
    # rescaling is exact); a neuron not yet seen nonzero (inf) takes the other's.
    sx, sy = jnp.minimum(a.scale_x, b.scale_x), jnp.minimum(a.scale_y, b.scale_y)
    a, b = _rescale(a, sx, sy), _rescale(b, sx, sy)
    n = a.n_samples + b.n_samples
    safe_n = jnp.where(n > 0, n, 1.0)
    fb = b.n_samples / safe_n
    dx, dy = b.mean_x - a.mean_x, b.mean_y - a.mean_y
    c = a.n_samples * b.n_samples / safe_n
    ex, ey = dx * set_scale(sx), dy * set_scale(sy)
    return CovarianceState(
        n,
        a.mean_x + fb * dx,
        a.mean_y + fb * dy,
        a.sxx + b.sxx + c * ex[:, None] * ex[None, :],
        a.syy + b.syy + c * ey[:, None] * ey[None, :],
        a.sxy + b.sxy + c * ex[:, None] * ey[None, :],
        sx,
        sy,
    )


def update(state: CovarianceState, x, y) -> CovarianceState:
    """Adds a batch ``x: (b, d1)``, ``y: (b, d2)`` (rows are samples).

    Works under ``jit`` and ``lax.scan``; batches may have any size (an empty
    batch leaves the state unchanged). Batches are checked like every other
    input (float16/bfloat16 accepted, int/bool/complex and float64 without
    64-bit mode rejected) and accumulated in the state's dtype.
    """
    x, y = as_float_array(x, "x"), as_float_array(y, "y")
    if x.shape[0] != y.shape[0]:
        raise ValueError(
            f"update expects x: (batch, d1) and y: (batch, d2) with the same batch, got "
            f"{tuple(x.shape)} and {tuple(y.shape)}."
        )
    if (x.shape[1], y.shape[1]) != (state.mean_x.shape[0], state.mean_y.shape[0]):
        raise ValueError(
            f"batch widths {(x.shape[1], y.shape[1])} do not match the state's "
            f"{(state.mean_x.shape[0], state.mean_y.shape[0])}."
        )
    if x.shape[0] == 0:
        return state
    return merge(state, _batch_state(x, y, state.sxx.dtype))


def merge_across(state: CovarianceState, axis_name) -> CovarianceState:
    """Merges the states of all devices along ``axis_name`` (inside shard_map/pmap).

    Exact: ``S = sum_i (S_i + n_i (m_i - m)(m_i - m)^T)`` with the global mean
    ``m = sum_i n_i m_i / n``, computed with two ``psum`` rounds.
    """
    sx = jax.lax.pmin(state.scale_x, axis_name)
    sy = jax.lax.pmin(state.scale_y, axis_name)
    state = _rescale(state, sx, sy)
    n = jax.lax.psum(state.n_samples, axis_name)
    safe_n = jnp.where(n > 0, n, 1.0)
    mx = jax.lax.psum(state.n_samples * state.mean_x, axis_name) / safe_n
    my = jax.lax.psum(state.n_samples * state.mean_y, axis_name) / safe_n
    dx, dy = (state.mean_x - mx) * set_scale(sx), (state.mean_y - my) * set_scale(sy)
    c = state.n_samples
    sxx = jax.lax.psum(state.sxx + c * dx[:, None] * dx[None, :], axis_name)
    syy = jax.lax.psum(state.syy + c * dy[:, None] * dy[None, :], axis_name)
    sxy = jax.lax.psum(state.sxy + c * dx[:, None] * dy[None, :], axis_name)
    return CovarianceState(n, mx, my, sxx, syy, sxy, sx, sy)


def _whiten_both(state: CovarianceState, epsilon):
    if state.sxx.dtype not in (jnp.float32, jnp.float64):
        raise TypeError(f"state must hold float32 or float64, got {state.sxx.dtype}.")
    ex, ey = set_scale(state.scale_x), set_scale(state.scale_y)
    wx = whiten_moments(state.sxx, state.mean_x * ex, state.n_samples, epsilon=epsilon)
    wy = whiten_moments(state.syy, state.mean_y * ey, state.n_samples, epsilon=epsilon)
    cross = mm(mm(wx.w.T, state.sxy), wy.w)
    wx, wy = _unscaled(wx, state.scale_x, state.mean_x), _unscaled(wy, state.scale_y, state.mean_y)
    return wx, wy, cross


def _unscaled(w, scale: jax.Array, mean: jax.Array):
    """Whitening of scaled moments back in the units of the data.

    ``w`` maps data-unit centred neurons to the orthonormal basis; ``r`` holds
    the data-unit neurons' coordinates times one global power of two (as
    :func:`jaxcca.cca`'s whitening does: SVCCA and PWCCA do not depend on it,
    and it stays finite at any magnitude).
    """
    # The global power of two is the largest *live* neuron's (live_unit): a
    # huge dead one must not push the live coordinates toward underflow.
    live = jnp.isfinite(scale) & w.alive
    ratio = jnp.where(live, live_unit(scale, live) / jnp.where(live, scale, 1.0), 0.0)
    return w._replace(r=w.r * ratio[None, :], w=set_scale(scale)[:, None] * w.w, mean=mean)


def cca(state: CovarianceState, *, epsilon: float | None = None) -> CCAResult:
    """:func:`jaxcca.cca` of all the samples seen.

    The canonical variates need the samples themselves, so ``x_variates`` and
    ``y_variates`` have shape ``(0, p)`` here; the weights give them:
    ``(x - state.mean_x) @ x_weights``.
    """
    wx, wy, cross = _whiten_both(state, epsilon)
    u, rho, vt, k = canonical_directions(wx, wy, cross)
    valid = first_k(k, rho.shape[0])[None, :]
    u, v = jnp.where(valid, u, 0.0), jnp.where(valid, vt.T, 0.0)
    n = state.n_samples
    return CCAResult(
        similarity=mean_correlation(rho, k),
        rho=rho,
        x_weights=mm(wx.w, u),
        y_weights=mm(wy.w, v),
        x_variates=jnp.zeros((0, rho.shape[0]), rho.dtype),
        y_variates=jnp.zeros((0, rho.shape[0]), rho.dtype),
        rank_x=wx.rank,
        rank_y=wy.rank,
        n_trivial=n_trivial(n.astype(jnp.int32), wx.rank, wy.rank),
    )


def svcca(
    state: CovarianceState, *, keep: float | int = 0.99, epsilon: float | None = None
) -> SVCCAResult:
    """:func:`jaxcca.svcca` of all the samples seen."""
    keep = validate_keep(keep)
    wx, wy, cross = _whiten_both(state, epsilon)
    bx, kx, ex = reduce_whitened(wx, keep)
    by, ky, ey = reduce_whitened(wy, keep)
    rho, _ = canonical_correlations(
        wx._replace(rank=kx), wy._replace(rank=ky), mm(mm(bx.T, cross), by)
    )
    k = jnp.minimum(kx, ky)
    n = state.n_samples.astype(jnp.int32)
    return SVCCAResult(
        similarity=mean_correlation(rho, k),
        rho=rho,
        keep_x=kx,
        keep_y=ky,
        explained_x=ex,
        explained_y=ey,
        rank_x=wx.rank,
        rank_y=wy.rank,
        n_trivial=n_trivial(n, kx, ky),
    )


def pwcca(
    state: CovarianceState, *, epsilon: float | None = None, convention: str = "paper"
) -> PWCCAResult:
    """:func:`jaxcca.pwcca` of all the samples seen (weights from x)."""
    convention = validate_convention(convention)
    wx, wy, cross = _whiten_both(state, epsilon)
    u, rho, _, k = canonical_directions(wx, wy, cross)
    weights = pwcca_weights(wx, u, rho, k, convention=convention)
    n = state.n_samples.astype(jnp.int32)
    return PWCCAResult(
        similarity=weighted_correlation(weights, rho),
        weights=weights,
        rho=rho,
        mean_rho=mean_correlation(rho, k),
        rank_x=wx.rank,
        rank_y=wy.rank,
        n_trivial=n_trivial(n, wx.rank, wy.rank),
    )


def from_arrays(x, y, *, dtype=None) -> CovarianceState:
    """Statistics of one full pair of arrays (checked like the core measures)."""
    x, y = as_pair(x, y)
    return _batch_state(x, y, dtype or x.dtype)
