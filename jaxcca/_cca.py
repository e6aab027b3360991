"""Canonical correlation analysis between two representations."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jaxcca._linalg import Whitened, _mm, as_pair, cross_product, safe_svd, singular_values, whiten
from jaxcca._linalg import check_finite as _check_values
from jaxcca._results import CCAResult

__all__ = ["cca", "cca_distance", "cca_similarity"]


def n_trivial(n: int, rank_x: jax.Array, rank_y: jax.Array) -> jax.Array:
    """Number of canonical correlations forced to 1 by the ranks alone."""
    return jnp.maximum(rank_x + rank_y - (n - 1), 0)


def cca_from_whitened(
    wx: Whitened, wy: Whitened, cross: jax.Array | None = None, *, compute_uv: bool = True
):
    """Canonical correlations from two whitened bases.

    Args:
      wx: whitened x (see :func:`jaxcca._linalg.whiten`).
      wy: whitened y.
      cross: optional precomputed ``wx.q.T @ wy.q`` of shape ``(d1, d2)``.
      compute_uv: if False, ``u`` and ``vt`` are None and only singular values
        are computed (cheaper; the derivative of singular values alone is
        finite even at ties, so no special care is needed).

    Returns:
      ``(u, rho, vt, k)``: singular vectors of ``cross`` (``(d1, p)``,
      ``(p, d2)``), canonical correlations ``(p,)`` clipped to [0, 1] and zero
      past ``k = min(rank_x, rank_y)``, and ``k``.
    """
    if cross is None:
        cross = cross_product(wx, wy)
    if compute_uv:
        u, s, vt = safe_svd(cross)
    else:
        u, vt = None, None
        s = singular_values(cross)
    k = jnp.minimum(wx.rank, wy.rank)
    valid = jnp.arange(s.shape[0], dtype=jnp.int32) < k
    rho = jnp.where(valid, jnp.clip(s, 0.0, 1.0), 0.0) + 0.0 * s  # NaN in, NaN out
    return u, rho, vt, k


def mean_of_valid(values: jax.Array, k: jax.Array) -> jax.Array:
    """Sum of ``values`` divided by ``max(k, 1)`` (values past ``k`` are 0)."""
    return jnp.sum(values) / jnp.maximum(k, 1).astype(values.dtype)


@functools.partial(jax.jit, static_argnames=("epsilon",))
def _cca(x: jax.Array, y: jax.Array, epsilon: float | None) -> CCAResult:
    wx, wy = whiten(x, epsilon=epsilon), whiten(y, epsilon=epsilon)
    u, rho, vt, k = cca_from_whitened(wx, wy)
    valid = (jnp.arange(rho.shape[0], dtype=jnp.int32) < k)[None, :]
    u = jnp.where(valid, u, 0.0)
    v = jnp.where(valid, vt.T, 0.0)
    return CCAResult(
        similarity=mean_of_valid(rho, k),
        rho=rho,
        x_weights=_mm(wx.w, u),
        y_weights=_mm(wy.w, v),
        x_variates=_mm(wx.q, u),
        y_variates=_mm(wy.q, v),
        rank_x=wx.rank,
        rank_y=wy.rank,
        n_trivial=n_trivial(x.shape[0], wx.rank, wy.rank),
    )


@functools.partial(jax.jit, static_argnames=("epsilon",))
def _cca_similarity(x: jax.Array, y: jax.Array, epsilon: float | None) -> jax.Array:
    wx, wy = whiten(x, epsilon=epsilon), whiten(y, epsilon=epsilon)
    _, rho, _, k = cca_from_whitened(wx, wy, compute_uv=False)
    return mean_of_valid(rho, k)


def cca(
    x: ArrayLike,
    y: ArrayLike,
    *,
    epsilon: float | None = None,
    check_finite: bool = False,
) -> CCAResult:
    r"""Canonical correlation analysis of two representations.

    Finds directions ``a_i`` (in x's neuron space) and ``b_i`` (in y's) that
    maximise the correlation ``rho_i = corr(x a_i, y b_i)`` subject to being
    uncorrelated with the earlier ones (Hotelling 1936). Computed as the
    singular values of ``Q_x^T Q_y``, where ``Q_x``, ``Q_y`` are orthonormal
    bases of the centred data (:func:`jaxcca._linalg.whiten`): the cosines of
    the principal angles between the two column spaces.

    Conventions: rows are samples, columns are neurons (the transpose of
    google/svcca's layout); data are centred inside; the result is invariant
    to any invertible linear map of either side's neurons, to translation and
    to isotropic scaling.

    Rank and ``d > n``: directions whose variance is below ``epsilon`` times
    the largest (after scaling every neuron to unit norm) are dropped, and dead
    or duplicated neurons do not count; ``rank_x`` and ``rank_y`` report what
    was kept. With ``rank_x + rank_y > n - 1`` (e.g. more neurons than
    samples) some correlations are 1 whatever the data: the result says how
    many in ``n_trivial``, and they are included in ``similarity``.

    One pair in, one result out: for a batch of pairs use ``jax.vmap``.

    Args:
      x: ``(n, d1)`` activations, float32 or float64.
      y: ``(n, d2)`` activations on the same ``n`` inputs.
      epsilon: relative rank tolerance (``None``: 1e-10 for float32, 1e-13 for
        float64; see :func:`jaxcca._linalg.default_epsilon`). Static.
      check_finite: if True, raise ``ValueError`` when the inputs hold NaN or
        Inf (also under jit). Otherwise NaN input gives NaN output.

    Returns:
      A :class:`CCAResult`.

    Raises:
      ValueError: wrong rank, different numbers of samples, fewer than 2 samples.
      TypeError: dtype other than float32/float64.

    Example:
      >>> import jax, jaxcca
      >>> x = jax.random.normal(jax.random.key(0), (500, 20))
      >>> res = jaxcca.cca(x, x @ jax.random.normal(jax.random.key(1), (20, 20)))
      >>> round(float(res.similarity), 4), int(res.rank_x)
      (1.0, 20)

    References:
      Raghu et al., "SVCCA", NeurIPS 2017, section 2 (CCA as used here).
      Björck & Golub, "Numerical methods for computing angles between linear
      subspaces", Math. Comp. 1973 (CCA as principal angles).
    """
    x, y = as_pair(x, y)
    if check_finite:
        _check_values(x, y)
    return _cca(x, y, epsilon)


def cca_similarity(
    x: ArrayLike,
    y: ArrayLike,
    *,
    epsilon: float | None = None,
    check_finite: bool = False,
) -> jax.Array:
    """Mean canonical correlation, a scalar in [0, 1] (see :func:`cca`).

    Cheaper than ``cca(x, y).similarity`` in eager mode (no weights or variates
    are formed) and differentiable with finite gradients everywhere.

    Example:
      >>> import jax, jaxcca
      >>> x = jax.random.normal(jax.random.key(0), (200, 8))
      >>> float(jaxcca.cca_similarity(x, 2.0 * x + 1.0)) > 0.9999
      True
    """
    x, y = as_pair(x, y)
    if check_finite:
        _check_values(x, y)
    return _cca_similarity(x, y, epsilon)


def cca_distance(
    x: ArrayLike,
    y: ArrayLike,
    *,
    epsilon: float | None = None,
    check_finite: bool = False,
) -> jax.Array:
    """``1 - cca_similarity(x, y)``, in [0, 1].

    Example:
      >>> import jax, jaxcca
      >>> x = jax.random.normal(jax.random.key(0), (200, 8))
      >>> float(jaxcca.cca_distance(x, x)) < 1e-5
      True
    """
    return 1.0 - cca_similarity(x, y, epsilon=epsilon, check_finite=check_finite)
