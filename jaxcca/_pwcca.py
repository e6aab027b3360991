"""Projection-weighted CCA (Morcos, Raghu & Bengio 2018)."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from jaxcca._cca import canonical_directions
from jaxcca._checks import as_pair, raise_if_not_finite, validate_convention
from jaxcca._linalg import (
    eigh_nograd,
    orthonormalize_columns,
    psd_sqrt_from_svd,
    safe_svd,
    sequential_batching_on_cpu,
)
from jaxcca._numerics import first_k, mean_correlation, mm, n_trivial
from jaxcca._results import PWCCAResult
from jaxcca._whiten import cross_product, whiten

__all__ = [
    "canonical_tie_basis",
    "paper_projections",
    "projection_weights",
    "pwcca",
    "pwcca_distance",
    "pwcca_similarity",
    "pwcca_weights",
    "svcca_projections",
    "tie_blocks",
    "tie_rotation",
    "weighted_correlation",
]


def canonical_tie_basis(u: jax.Array, rho: jax.Array, r: jax.Array, valid: jax.Array):
    """Rotates ``u`` inside each block of tied correlations to a basis fixed by the data.

    Where canonical correlations tie (e.g. the many correlations of exactly 1
    when ``d`` is close to ``n``), the canonical directions are any basis of
    the tied block, and PWCCA's weights (sums of absolute values) depend on
    which one LAPACK returns. Here each block (consecutive ``rho`` within
    ``64 eps`` of each other) is given the basis of eigenvectors of the
    variance of x's neurons along its directions, ``(u_B^T r)(u_B^T r)^T``,
    in decreasing order of variance: a function of the data alone, so that
    :func:`jaxcca.pwcca` and ``pairwise(measure="pwcca")`` agree to round-off.
    The rotation is held constant for differentiation.

    Args:
      u: ``(d1, p)`` directions, sorted like ``rho``.
      rho: ``(p,)`` canonical correlations, descending.
      r: ``(d1, d1)`` coordinates of x's centred neurons in ``q_x``.
      valid: ``(p,)`` which directions count (each other one is its own block).

    Returns:
      ``(d1, p)`` the rotated directions.
    """
    c = jax.lax.stop_gradient
    block, has_ties = tie_blocks(c(u), c(rho), valid)
    return mm(u, c(_tie_rotation(c(u), c(r), block, has_ties)))


def tie_blocks(u: jax.Array, rho: jax.Array, valid: jax.Array):
    """The blocks of tied correlations of :func:`canonical_tie_basis`, and whether it rotates.

    Only a block of two or more valid directions needs a rotation; without one
    the rotation is the identity (see :func:`tie_rotation`) and nothing is
    computed. Non-finite input takes the full path, so NaN passes.

    Returns:
      ``(block, has_ties)``: ``(p,)`` int32 block index of each direction
      (invalid directions each a block of their own) and a scalar bool.
    """
    p = rho.shape[0]
    tied = (rho[:-1] - rho[1:]) <= 64.0 * float(np.finfo(u.dtype).eps)
    block = jnp.concatenate([jnp.zeros(1, jnp.int32), jnp.cumsum(~tied, dtype=jnp.int32)])
    block = jnp.where(valid, block, p + jnp.arange(p, dtype=jnp.int32))
    has_ties = jnp.any(tied & valid[:-1] & valid[1:])
    has_ties = has_ties | ~jnp.all(jnp.isfinite(rho)) | ~jnp.all(jnp.isfinite(u))
    return block, has_ties


def tie_rotation(u, r, block, has_ties):
    """The ``(p, p)`` rotation of :func:`canonical_tie_basis`; the identity without ties.

    Without ties every block is one direction, so the matrix below is diagonal
    with strictly descending entries (values in [0, 1] minus twice the block
    index): its eigenvectors in descending order are the identity up to signs,
    which PWCCA's absolute values ignore.
    """
    dtype = u.dtype

    def rotation():
        proj = mm(u.T, r)
        m = mm(proj, proj.T)
        m = m / jnp.maximum(jnp.trace(m), float(np.finfo(dtype).tiny))
        # Blocks are kept apart (and in order) by offsets larger than any
        # eigenvalue of m, which lie in [0, 1].
        same = block[:, None] == block[None, :]
        m = jnp.where(same, m, 0.0) - 2.0 * jnp.diag(block.astype(dtype))
        return eigh_nograd(m)[1][:, ::-1]

    return jax.lax.cond(has_ties, rotation, lambda: jnp.eye(u.shape[1], dtype=dtype))


# Batched on CPU as a sequential map of unbatched calls, so that the lax.cond
# above stays a branch under vmap (pairwise vmaps over pairs; a vmapped cond
# becomes a select that computes the eigendecomposition for every pair).
_tie_rotation = sequential_batching_on_cpu(tie_rotation)


def projection_weights(proj: jax.Array, valid: jax.Array) -> jax.Array:
    """PWCCA weights from projections: ``alpha_i = sum_j |proj_ij|``, normalised to sum to 1.

    Args:
      proj: ``(p, d)`` inner products of the ``p`` directions with x's neurons.
      valid: ``(p,)`` which directions count (the others get weight 0).
    """
    alpha = jnp.where(valid, jnp.sum(jnp.abs(proj), axis=1), 0.0)
    total = jnp.sum(alpha)
    return alpha / jnp.where(total > 0, total, 1.0)


def weighted_correlation(weights: jax.Array, rho: jax.Array) -> jax.Array:
    """``sum(weights * rho)`` clipped to [0, 1] (round-off of weights summing to 1); NaN passes."""
    return jnp.clip(jnp.sum(weights * rho), 0.0, 1.0)


def paper_projections(u: jax.Array, r: jax.Array) -> jax.Array:
    """``<h_i, z_j> = (u^T r)_ij`` (the ``"paper"`` convention) from ``d``-sized matrices."""
    return mm(u.T, r)


def svcca_projections(u: jax.Array, r: jax.Array, r_sqrt: jax.Array, valid: jax.Array):
    """Projections of google/svcca's directions on x's neurons (``"svcca"`` convention).

    google/svcca's directions are ``(x - mean) @ u_ref``, with ``u_ref`` the
    singular vectors of the *symmetrically* whitened cross-covariance. In the
    basis ``q_x``, ``(x - mean) @ u_ref = q_x @ (r r^T)^{1/2} @ u``, so the QR
    (Gram-Schmidt in order) can be done on ``d``-sized coordinates.

    Args:
      u: ``(d1, p)`` left singular vectors of ``q_x^T q_y``.
      r: ``(d1, d1)`` coordinates of x's centred neurons in ``q_x``.
      r_sqrt: ``(r r^T)^{1/2}``.
      valid: ``(p,)`` which directions count.
    """
    basis = orthonormalize_columns(mm(r_sqrt, u), valid)
    return mm(basis.T, r)


def pwcca_weights(
    wx,
    u: jax.Array,
    rho: jax.Array,
    k: jax.Array,
    *,
    convention: str = "paper",
) -> jax.Array:
    r"""Projection weights of x's canonical directions.

    Only ``d``-sized matrices are touched: the canonical variates of x are
    ``q_x @ u`` and the centred neurons are ``q_x @ r_x``, so
    ``<h_i, z_j> = (u^T r_x)_{ij}``.

    Args:
      wx: whitened x (:class:`jaxcca._whiten.Whitened` or ``MomentWhitened``).
      u: ``(d1, p)`` left singular vectors of ``q_x^T q_y``.
      rho: ``(p,)`` the canonical correlations (ties are resolved by
        :func:`canonical_tie_basis`).
      k: number of valid directions.
      convention: ``"paper"`` or ``"svcca"`` (see :func:`jaxcca.pwcca`).

    Returns:
      ``(p,)`` non-negative weights summing to 1, zero past ``k``.
    """
    valid = first_k(k, u.shape[1])
    u = canonical_tie_basis(u, rho, wx.r, valid)
    if convention == "paper":
        proj = paper_projections(u, wx.r)
    else:
        ur, sr, _ = safe_svd(wx.r)
        proj = svcca_projections(u, wx.r, psd_sqrt_from_svd(ur, sr), valid)
    return projection_weights(proj, valid)


@functools.partial(jax.jit, static_argnames=("epsilon", "convention"))
def _pwcca(x: jax.Array, y: jax.Array, epsilon, convention) -> PWCCAResult:
    wx, wy = whiten(x, epsilon=epsilon), whiten(y, epsilon=epsilon)
    u, rho, _, k = canonical_directions(wx, wy, cross_product(wx, wy))
    weights = pwcca_weights(wx, u, rho, k, convention=convention)
    return PWCCAResult(
        similarity=weighted_correlation(weights, rho),
        weights=weights,
        rho=rho,
        mean_rho=mean_correlation(rho, k),
        rank_x=wx.rank,
        rank_y=wy.rank,
        n_trivial=n_trivial(x.shape[0], wx.rank, wy.rank),
    )


def pwcca(
    x: ArrayLike,
    y: ArrayLike,
    *,
    epsilon: float | None = None,
    convention: str = "paper",
    check_finite: bool = False,
) -> PWCCAResult:
    r"""Projection-weighted CCA: canonical correlations weighted by importance.

    ``similarity = sum_i alpha_i rho_i`` where ``rho_i`` are the canonical
    correlations (:func:`jaxcca.cca`) and ``alpha_i`` measures how much of
    **x**'s neurons lies along x's i-th canonical direction. PWCCA is not
    symmetric: swap the arguments to weight by y.

    Two conventions for the weights (they differ by up to a few hundredths on
    real activations; both are tested):

    * ``"paper"`` (default), Morcos et al. 2018, section 2.2: ``h_i`` are the
      canonical variates of x (whitened, orthonormal) and ``alpha_i = sum_j
      |<h_i, z_j>|`` over x's centred neurons ``z_j``, normalised to sum to 1.
    * ``"svcca"``: the numbers of google/svcca's ``compute_pwcca``: its
      directions are x's centred activations rotated by the left singular
      vectors of the symmetrically whitened cross-covariance (not whitened),
      orthonormalised by QR in order, and compared with x's neurons. The
      reference also adds each neuron's mean back to the direction of the same
      index before the QR; that makes its output depend on the arbitrary sign
      LAPACK gives each singular vector, so it is not reproduced: on centred
      inputs the two agree to round-off. google/svcca weights by whichever layer has
      fewer neurons (and crashes when the first is wider, its PR 9); here the
      weights always come from x, so call ``pwcca(narrower, wider,
      convention="svcca")`` to get its number.

    Widths may differ in either order. With ``d1 > d2`` only the
    ``min(d1, d2)`` directions of x that have a partner in y are weighted.

    One pair in, one result out: for a batch of pairs use ``jax.vmap``.

    Args:
      x: ``(n, d1)`` activations whose neurons set the weights; rows are samples.
      y: ``(n, d2)`` activations on the same inputs.
      epsilon: relative rank tolerance (see :func:`jaxcca.cca`). Static.
      convention: ``"paper"`` or ``"svcca"``. Static.
      check_finite: raise ``ValueError`` on NaN or Inf input.

    Returns:
      A :class:`PWCCAResult`.

    Raises:
      ValueError, TypeError: see :func:`jaxcca.cca`; unknown convention.

    Example:
      >>> import jax, jaxcca
      >>> x = jax.random.normal(jax.random.key(0), (500, 16))
      >>> res = jaxcca.pwcca(x, x[:, :8])
      >>> float(res.weights.sum()) > 0.9999, res.rho.shape
      (True, (8,))

    References:
      Morcos, Raghu & Bengio, "Insights on representational similarity in
      neural networks with canonical correlation", NeurIPS 2018, section 2.2
      (equation for alpha_i).
    """
    convention = validate_convention(convention)
    x, y = as_pair(x, y)
    if check_finite:
        raise_if_not_finite(x, y)
    return _pwcca(x, y, epsilon, convention)


def pwcca_similarity(
    x: ArrayLike,
    y: ArrayLike,
    *,
    epsilon: float | None = None,
    convention: str = "paper",
    check_finite: bool = False,
) -> jax.Array:
    """``pwcca(x, y, ...).similarity``, a differentiable scalar in [0, 1].

    Example:
      >>> import jax, jaxcca
      >>> x = jax.random.normal(jax.random.key(0), (300, 10))
      >>> float(jaxcca.pwcca_similarity(x, x)) > 0.9999
      True
    """
    return pwcca(x, y, epsilon=epsilon, convention=convention, check_finite=check_finite).similarity


def pwcca_distance(
    x: ArrayLike,
    y: ArrayLike,
    *,
    epsilon: float | None = None,
    convention: str = "paper",
    check_finite: bool = False,
) -> jax.Array:
    """``1 - pwcca_similarity(x, y, ...)``, in [0, 1].

    Example:
      >>> import jax, jaxcca
      >>> x = jax.random.normal(jax.random.key(0), (300, 10))
      >>> float(jaxcca.pwcca_distance(x, x)) < 1e-5
      True
    """
    return 1.0 - pwcca_similarity(
        x, y, epsilon=epsilon, convention=convention, check_finite=check_finite
    )
