"""SVCCA: SVD reduction of each representation, then CCA (Raghu et al. 2017)."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jaxcca._checks import as_pair, raise_if_not_finite, validate_keep
from jaxcca._linalg import safe_svd, singular_values
from jaxcca._numerics import clip_correlations, first_k, mean_correlation, mm, n_trivial
from jaxcca._results import SVCCAResult
from jaxcca._whiten import cross_product, whiten

__all__ = ["reduce_whitened", "svcca", "svcca_distance", "svcca_similarity"]


def reduce_whitened(w, keep: float | int):
    """Top singular directions of a whitened representation.

    Returns:
      ``(basis, k, explained)``: ``basis`` is ``(d, d)``, the coordinates in
      ``w.q`` of the left singular vectors of the centred data, columns past
      ``k`` zeroed; ``k`` the number kept; ``explained`` the fraction of
      variance they carry.
    """
    ur, sr, _ = safe_svd(w.r)  # w: Whitened or MomentWhitened
    var = sr * sr
    total = jnp.sum(var)
    safe_total = jnp.where(total > 0, total, 1.0)
    d = sr.shape[0]
    if isinstance(keep, float):
        before = (jnp.cumsum(var) - var) / safe_total  # variance of earlier directions
        # Small slack so that keep=1.0 keeps every direction despite round-off.
        k = jnp.sum(before < keep * (1 - 8 * float(jnp.finfo(var.dtype).eps)), dtype=jnp.int32)
    else:
        k = jnp.asarray(min(keep, d), dtype=jnp.int32)
    k = jnp.minimum(k, w.rank).astype(jnp.int32)
    mask = first_k(k, d)
    explained = jnp.sum(jnp.where(mask, var, 0.0)) / safe_total
    return jnp.where(mask[None, :], ur, 0.0), k, explained


@functools.partial(jax.jit, static_argnames=("keep", "epsilon"))
def _svcca(x: jax.Array, y: jax.Array, keep, epsilon) -> SVCCAResult:
    wx, wy = whiten(x, epsilon=epsilon), whiten(y, epsilon=epsilon)
    bx, kx, ex = reduce_whitened(wx, keep)
    by, ky, ey = reduce_whitened(wy, keep)
    cross = mm(mm(bx.T, cross_product(wx, wy)), by)
    k = jnp.minimum(kx, ky)
    rho = clip_correlations(singular_values(cross), k)
    return SVCCAResult(
        similarity=mean_correlation(rho, k),
        rho=rho,
        keep_x=kx,
        keep_y=ky,
        explained_x=ex,
        explained_y=ey,
        rank_x=wx.rank,
        rank_y=wy.rank,
        n_trivial=n_trivial(x.shape[0], kx, ky),
    )


def svcca(
    x: ArrayLike,
    y: ArrayLike,
    *,
    keep: float | int = 0.99,
    epsilon: float | None = None,
    check_finite: bool = False,
) -> SVCCAResult:
    r"""Singular vector CCA (SVCCA) of two representations.

    Each centred representation is reduced to its top singular directions
    (its principal components), then :func:`jaxcca.cca` is applied to the two
    reductions. Shapes stay fixed under jit: directions past the number kept
    are masked, never sliced.

    ``keep`` is static: a float is the fraction of *variance* to keep, i.e. of
    the sum of squared singular values (the SVCCA paper's "99% of the
    variance"; note that anatome keeps 99% of the sum of singular values,
    which keeps more directions); an int keeps that many directions (the
    google/svcca tutorials use 20 or 50). The number kept never exceeds the
    effective rank.

    One pair in, one result out: for a batch of pairs use ``jax.vmap``.

    Args:
      x: ``(n, d1)`` activations, float32 or float64 (float16/bfloat16 computed in
        float32); rows are samples.
      y: ``(n, d2)`` activations on the same inputs.
      keep: fraction of variance in (0, 1] or number of directions >= 1.
      epsilon: relative rank tolerance (see :func:`jaxcca.cca`). Static.
      check_finite: raise ``ValueError`` on NaN or Inf input.

    Returns:
      An :class:`SVCCAResult`; ``.similarity`` is the mean canonical correlation
      over ``min(keep_x, keep_y)`` directions.

    Raises:
      ValueError, TypeError: see :func:`jaxcca.cca`; bad ``keep``.

    Example:
      >>> import jax, jaxcca
      >>> k1, k2 = jax.random.split(jax.random.key(0))
      >>> x = jax.random.normal(k1, (1000, 30))
      >>> res = jaxcca.svcca(x, x @ jax.random.normal(k2, (30, 30)), keep=10)
      >>> int(res.keep_x), round(float(res.similarity), 3)
      (10, ...)

    References:
      Raghu, Gilmer, Yosinski & Sohl-Dickstein, "SVCCA: Singular Vector
      Canonical Correlation Analysis for Deep Learning Dynamics and
      Interpretability", NeurIPS 2017, section 2.
    """
    keep = validate_keep(keep)
    x, y = as_pair(x, y)
    if check_finite:
        raise_if_not_finite(x, y)
    return _svcca(x, y, keep, epsilon)


def svcca_similarity(
    x: ArrayLike,
    y: ArrayLike,
    *,
    keep: float | int = 0.99,
    epsilon: float | None = None,
    check_finite: bool = False,
) -> jax.Array:
    """``svcca(x, y, ...).similarity``, a differentiable scalar in [0, 1].

    Example:
      >>> import jax, jaxcca
      >>> x = jax.random.normal(jax.random.key(0), (300, 10))
      >>> float(jaxcca.svcca_similarity(x, x, keep=5)) > 0.9999
      True
    """
    return svcca(x, y, keep=keep, epsilon=epsilon, check_finite=check_finite).similarity


def svcca_distance(
    x: ArrayLike,
    y: ArrayLike,
    *,
    keep: float | int = 0.99,
    epsilon: float | None = None,
    check_finite: bool = False,
) -> jax.Array:
    """``1 - svcca_similarity(x, y, ...)``, in [0, 1].

    Example:
      >>> import jax, jaxcca
      >>> x = jax.random.normal(jax.random.key(0), (300, 10))
      >>> float(jaxcca.svcca_distance(x, x)) < 1e-5
      True
    """
    return 1.0 - svcca_similarity(x, y, keep=keep, epsilon=epsilon, check_finite=check_finite)
