"""Canonical correlation analysis between two representations."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jaxcca._checks import as_pair, raise_if_not_finite
from jaxcca._linalg import safe_svd, singular_values
from jaxcca._numerics import clip_correlations, first_k, mean_correlation, mm, n_trivial
from jaxcca._results import CCAResult
from jaxcca._whiten import cross_product, whiten

__all__ = [
    "canonical_correlations",
    "canonical_directions",
    "cca",
    "cca_distance",
    "cca_similarity",
]


def canonical_correlations(wx, wy, cross: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Canonical correlations from two whitened bases and ``cross = q_x^T q_y``.

    Only singular values are computed (their derivative is finite even at ties).

    Args:
      wx: whitened x (:class:`jaxcca._whiten.Whitened` or ``MomentWhitened``).
      wy: whitened y.
      cross: ``(d1, d2)`` cross product of the two orthonormal bases.

    Returns:
      ``(rho, k)``: ``(p,)`` correlations clipped to [0, 1], zero past ``k =
      min(rank_x, rank_y)``, and ``k``.
    """
    k = jnp.minimum(wx.rank, wy.rank)
    return clip_correlations(singular_values(cross), k), k


def canonical_directions(wx, wy, cross: jax.Array):
    """Canonical correlations and their singular vectors.

    Returns:
      ``(u, rho, vt, k)``: singular vectors of ``cross`` (``(d1, p)``,
      ``(p, d2)``), the correlations and ``k`` as in :func:`canonical_correlations`.
    """
    u, s, vt = safe_svd(cross)
    k = jnp.minimum(wx.rank, wy.rank)
    return u, clip_correlations(s, k), vt, k


@functools.partial(jax.jit, static_argnames=("epsilon",))
def _cca(x: jax.Array, y: jax.Array, epsilon: float | None) -> CCAResult:
    wx, wy = whiten(x, epsilon=epsilon), whiten(y, epsilon=epsilon)
    u, rho, vt, k = canonical_directions(wx, wy, cross_product(wx, wy))
    valid = first_k(k, rho.shape[0])[None, :]
    u = jnp.where(valid, u, 0.0)
    v = jnp.where(valid, vt.T, 0.0)
    return CCAResult(
        similarity=mean_correlation(rho, k),
        rho=rho,
        x_weights=mm(wx.w, u),
        y_weights=mm(wy.w, v),
        x_variates=mm(wx.q, u),
        y_variates=mm(wy.q, v),
        rank_x=wx.rank,
        rank_y=wy.rank,
        n_trivial=n_trivial(x.shape[0], wx.rank, wy.rank),
    )


@functools.partial(jax.jit, static_argnames=("epsilon",))
def _cca_similarity(x: jax.Array, y: jax.Array, epsilon: float | None) -> jax.Array:
    wx, wy = whiten(x, epsilon=epsilon), whiten(y, epsilon=epsilon)
    rho, k = canonical_correlations(wx, wy, cross_product(wx, wy))
    return mean_correlation(rho, k)


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
    bases of the centred data (:func:`jaxcca._whiten.whiten`): the cosines of
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
      x: ``(n, d1)`` activations, float32 or float64 (float16 and bfloat16 are computed in float32).
      y: ``(n, d2)`` activations on the same ``n`` inputs.
      epsilon: relative rank tolerance (``None``: 1e-10 for float32, 1e-13 for
        float64; see :func:`jaxcca._whiten.default_epsilon`). Static.
      check_finite: if True, raise ``ValueError`` when the inputs hold NaN or
        Inf. Needs concrete inputs: under jit or vmap it raises ValueError at
        trace time (check before the transformed call). Otherwise NaN input
        gives NaN output.

    Returns:
      A :class:`CCAResult`.

    Raises:
      ValueError: wrong rank, different numbers of samples, fewer than 2 samples.
      TypeError: integer, bool or complex dtype; float64 with 64-bit mode off.

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
        raise_if_not_finite(x, y)
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
        raise_if_not_finite(x, y)
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
