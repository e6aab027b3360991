"""Projection-weighted CCA (Morcos, Raghu & Bengio 2018)."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jaxcca._cca import cca_from_whitened, mean_of_valid, n_trivial
from jaxcca._linalg import Whitened, _cholesky_upper_inverse, _mm, as_pair, safe_svd, whiten
from jaxcca._linalg import check_finite as _check_values
from jaxcca._results import PWCCAResult

__all__ = ["pwcca", "pwcca_distance", "pwcca_similarity"]

CONVENTIONS = ("paper", "svcca")


def validate_convention(convention: str) -> str:
    """Checks the static ``convention`` argument."""
    if convention not in CONVENTIONS:
        raise ValueError(
            f"convention must be one of {CONVENTIONS}, got {convention!r}. 'paper' follows "
            "Morcos et al. 2018 section 2.2; 'svcca' reproduces google/svcca's "
            "compute_pwcca numbers."
        )
    return convention


def _orthonormalize_columns(c: jax.Array, valid: jax.Array) -> jax.Array:
    """Q factor of the QR decomposition of ``c[:, valid]``, zero elsewhere.

    CholeskyQR2 (two Cholesky passes): Gram-Schmidt order, like Householder QR
    up to column signs, with a finite derivative when invalid columns are
    masked out.
    """
    both = valid[:, None] & valid[None, :]
    eye = jnp.eye(c.shape[1], dtype=c.dtype)
    for _ in range(2):
        c = jnp.where(valid[None, :], c, 0.0)
        g = jnp.where(both, _mm(c.T, c), eye)
        c = _mm(c, _cholesky_upper_inverse(g))
    return jnp.where(valid[None, :], c, 0.0)


def pwcca_weights(
    wx: Whitened,
    u: jax.Array,
    k: jax.Array,
    *,
    convention: str = "paper",
) -> jax.Array:
    r"""Projection weights of x's canonical directions.

    Only ``d``-sized matrices are touched: the canonical variates of x are
    ``q_x @ u`` and the centred neurons are ``q_x @ r_x``, so
    ``<h_i, z_j> = (u^T r_x)_{ij}``.

    Args:
      wx: whitened x.
      u: ``(d1, p)`` left singular vectors of ``q_x^T q_y``.
      k: number of valid directions.
      convention: ``"paper"`` or ``"svcca"`` (see :func:`jaxcca.pwcca`).

    Returns:
      ``(p,)`` non-negative weights summing to 1, zero past ``k``.
    """
    p = u.shape[1]
    valid = jnp.arange(p, dtype=jnp.int32) < k
    if convention == "paper":
        proj = _mm(u.T, wx.r)  # (p, d1): <h_i, z_j>
    else:
        # google/svcca: the directions are (x - mean) @ u_ref, with u_ref the
        # singular vectors of the *symmetrically* whitened cross-covariance. In
        # the basis q_x, (x - mean) @ u_ref = q_x @ (r r^T)^{1/2} @ u, so the
        # QR (Gram-Schmidt in order) can be done on d-sized coordinates.
        ur, sr, _ = safe_svd(wx.r)
        coords = _mm(_mm(ur * sr[None, :], ur.T), u)
        basis = _orthonormalize_columns(coords, valid)
        proj = _mm(basis.T, wx.r)
    alpha = jnp.where(valid, jnp.sum(jnp.abs(proj), axis=1), 0.0)
    total = jnp.sum(alpha)
    return alpha / jnp.where(total > 0, total, 1.0)


@functools.partial(jax.jit, static_argnames=("epsilon", "convention"))
def _pwcca(x: jax.Array, y: jax.Array, epsilon, convention) -> PWCCAResult:
    wx, wy = whiten(x, epsilon=epsilon), whiten(y, epsilon=epsilon)
    u, rho, _, k = cca_from_whitened(wx, wy)
    weights = pwcca_weights(wx, u, k, convention=convention)
    return PWCCAResult(
        similarity=jnp.sum(weights * rho),
        weights=weights,
        rho=rho,
        mean_rho=mean_of_valid(rho, k),
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
        _check_values(x, y)
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
