"""Whitening: an orthonormal basis of a centred representation, from data or from moments.

Everything here works on one representation ``x`` of shape ``(n, d)`` (rows are
samples, columns are neurons) and is written for fixed shapes under ``jax.jit``:
ranks are expressed as masks, never as slices of traced length.

The central routine is :func:`whiten`, which returns an orthonormal basis of the
column space of the centred data together with its triangular-like factor. It
is built so that

* the forward pass is accurate in float32 for condition numbers up to ~1e3
  (two-pass orthonormalisation, in the spirit of CholeskyQR2, Fukaya et al.
  2014), at the speed of matrix products;
* rank deficiency (dead, constant or duplicated neurons, more neurons than
  samples) is detected and masked, and reported as an effective rank;
* gradients are finite everywhere, including at degenerate spectra: the only
  factorisation on the differentiated path is a Cholesky factorisation of a
  matrix that is close to the identity, and the spectral preconditioner is
  held constant (``stop_gradient``), which leaves gradients of anything that
  depends only on the spanned subspace exact (see :func:`whiten`).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxcca._checks import validate_epsilon
from jaxcca._linalg import cholesky_and_inverse, cholesky_nograd, eigh_nograd
from jaxcca._numerics import (
    alive_neurons,
    first_k,
    live_unit,
    mm,
    pow2_scale,
    safe_div,
    safe_sqrt,
)
from jaxcca._numerics import gram as gram_matrix

__all__ = [
    "MomentWhitened",
    "Whitened",
    "center",
    "cross_product",
    "default_epsilon",
    "pair_inner",
    "second_pass",
    "spectral_preconditioner",
    "whiten",
    "whiten_moments",
]


def center(x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Returns ``(x - mean, mean)`` with the mean over samples (axis 0)."""
    mean = jnp.mean(x, axis=0, keepdims=True)
    return x - mean, mean[0]


def default_epsilon(dtype) -> float:
    """The default relative rank tolerance for ``dtype``.

    Directions whose variance is below ``epsilon`` times the largest (after
    each neuron has been scaled to unit norm) are dropped before the second
    pass. The second pass then drops any direction that keeps less than
    ``10 * sqrt(eps_dtype)`` of the variance the first pass credited it with:
    that is what catches round-off (duplicated neurons, more neurons than
    samples), so ``epsilon`` itself can sit low: ``1e-10`` for float32 (data
    with condition numbers past 3e3 keep every direction) and ``1e-13`` for
    float64.
    """
    return 1e-10 if np.dtype(dtype) == np.float32 else 1e-13


def _pivot_tolerance(dtype) -> float:
    # A kept direction must retain this fraction of its expected unit norm
    # once the basis is re-orthonormalised; spurious directions created by
    # round-off retain ~eps**0.5 or less.
    return float(np.sqrt(np.finfo(dtype).eps)) * 10.0


# ----------------------------------------------------------------------------
# Complex data in real form, stored as the top half (``paired=True``)
# ----------------------------------------------------------------------------
#
# Complex linear algebra on ``(n, c)`` data ``Z = A + iB`` is real linear
# algebra on its real form, the ``(2n, 2c)`` matrix whose column ``2j`` is
# ``(a_j; b_j)`` (neuron ``z_j``) and column ``2j + 1`` is ``(-b_j; a_j)``
# (neuron ``i z_j``). Its bottom half is its top half ``T = [a_1, -b_1, a_2,
# -b_2, ...]`` times the signed pair swap ``J`` (``(t_0, t_1) -> (-t_1,
# t_0)`` in each pair), and products with the real form of a complex matrix
# keep that structure. So ``T`` alone represents the data, every sample-sized
# product on ``T`` costs half of the same product on the real form, and the
# inner products of two such matrices are ``T_a^T T_b + J^T (T_a^T T_b) J``.


def pair_inner(a: jax.Array, b: jax.Array) -> jax.Array:
    """``a_R^T b_R`` of real forms given by top halves ``a`` ``(n, 2c1)``, ``b`` ``(n, 2c2)``.

    One sample-sized product, ``m = a^T b``, plus ``J^T m J``, which in each
    2 x 2 block ``(i, k)`` is ``[[m11, -m10], [-m01, m00]]``. Exactly
    symmetric when ``a is b`` (:func:`jaxcca._numerics.gram`).
    """
    m = gram_matrix(a) if a is b else mm(a.T, b)
    m4 = m.reshape(m.shape[0] // 2, 2, m.shape[1] // 2, 2)
    sign = jnp.asarray([[1.0, -1.0], [-1.0, 1.0]], m.dtype)[None, :, None, :]
    return m + (m4[:, ::-1, :, ::-1] * sign).reshape(m.shape)


def _pair_all(v: jax.Array) -> jax.Array:
    """``(2c,)`` bool: each entry and its pair partner (``2j``, ``2j + 1``)."""
    both = jnp.all(v.reshape(-1, 2), axis=1)
    return jnp.repeat(both, 2)


class Whitened(NamedTuple):
    """An orthonormal basis of a centred representation's column space.

    Attributes:
      q: ``(n, d)`` orthonormal columns spanning the centred data; columns of
        dropped directions are exactly zero.
      r: ``(d, d)`` the coordinates of the centred neurons in that basis,
        ``unit * q.T @ (x - mean)`` (SVCCA and PWCCA do not depend on
        ``unit``, and it keeps ``r`` finite at any magnitude); rows of dropped
        directions and columns of dead neurons are zero.
      mask: ``(d,)`` bool, which columns of ``q`` are kept.
      rank: scalar int, the effective rank ``mask.sum()``.
      mean: ``(d,)`` the per-neuron mean that was removed.
      w: ``(d, d)`` the whitening map: ``q == (x - mean) @ w``.
      unit: scalar, the power of two in ``r``: ``1 / max|x_j|`` roughly, for
        the largest live neuron ``j`` (:func:`jaxcca._numerics.live_unit`).
      q1: ``(n, d)`` the basis ``b`` with ``q == q1 @ linv_t``: the first-pass
        basis ``xs @ precond`` (dropped directions zero), or ``xs`` itself
        where the second pass was done in ``d x d`` form (float64, and
        well-conditioned float32: :func:`gram_form_is_accurate`).
      linv_t: ``(d, d)`` the map ``m`` with ``q == q1 @ linv_t``: the
        second-pass factor ``L^{-T}``, or ``precond @ L^{-T}`` in ``d x d`` form.
      xs: ``(n, d)`` centred data with unit-norm neurons.
      precond: ``(d, d)`` first-pass map, ``q1 == xs @ precond``.
    """

    q: jax.Array
    r: jax.Array
    mask: jax.Array
    rank: jax.Array
    mean: jax.Array
    w: jax.Array
    unit: jax.Array
    q1: jax.Array
    linv_t: jax.Array
    xs: jax.Array
    precond: jax.Array


def spectral_preconditioner(gram: jax.Array, eps: float) -> tuple[jax.Array, jax.Array]:
    """First pass of :func:`whiten`, held constant: ``(V diag(lambda^-1/2), keep)``.

    ``gram`` is the Gram matrix of unit-norm neurons; directions are sorted by
    descending eigenvalue (noise last) and those with ``lambda <= eps *
    max(lambda)`` are masked.
    """
    tiny = float(np.finfo(gram.dtype).tiny)
    lam, vecs = eigh_nograd(jax.lax.stop_gradient(gram))
    lam, vecs = lam[::-1], vecs[:, ::-1]  # descending: noise comes last
    keep1 = lam > eps * jnp.maximum(lam[0], tiny)
    inv_sqrt = safe_div(jnp.ones_like(lam), jnp.sqrt(jnp.where(keep1, lam, 1.0)), keep1)
    return vecs * inv_sqrt[None, :], keep1


def second_pass(
    g2: jax.Array, keep1: jax.Array, *, paired: bool = False
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Second pass of :func:`whiten` on ``g2 = q1^T q1`` (close to the identity).

    A Gram-Schmidt pass (constant) drops directions that keep less than
    ``_pivot_tolerance`` of their norm: they were round-off. Returns ``(keep,
    L, L^{-T})`` of the masked ``g2``, differentiable. ``paired``: the
    directions come in pairs ``(h, i h)`` of complex data in real form, kept
    or dropped together (so that the kept basis keeps the real-form structure).
    """
    dtype = g2.dtype
    eye = jnp.eye(g2.shape[0], dtype=dtype)
    tol = _pivot_tolerance(dtype)
    g2_probe = jnp.where(keep1[:, None] & keep1[None, :], jax.lax.stop_gradient(g2), eye)
    l_probe = cholesky_nograd(g2_probe + tol * 1e-2 * eye)
    pivots = jnp.diagonal(l_probe) ** 2
    keep = keep1 & (pivots > tol) & jnp.isfinite(pivots)
    if paired:
        keep = _pair_all(keep)
    keep = jnp.cumprod(keep.astype(jnp.int32)).astype(bool)  # NaN poisons the tail
    both = keep[:, None] & keep[None, :]
    l_factor, l_inv = cholesky_and_inverse(jnp.where(both, g2, eye))
    return keep, jnp.where(both, l_factor, 0.0), jnp.where(both, l_inv.T, 0.0)


# The d x d form of the second pass is used when the first pass's own
# spectrum bounds its round-off: cond(G) <= this (G: Gram matrix of unit-norm
# neurons, over the kept directions). See gram_form_is_accurate.
GRAM_FORM_MAX_COND = 100.0


def gram_form_is_accurate(precond: jax.Array, keep1: jax.Array) -> jax.Array:
    """Whether the first pass alone is accurate: ``cond(G) <= GRAM_FORM_MAX_COND`` (traced bool).

    ``precond``'s columns are ``v_i / sqrt(lambda_i)``, so their squared norms
    give the spectrum of ``G`` for any preconditioner. ``G`` computed in
    float32 carries an error of ~``eps * max(lambda)``; whitened by it, the
    first basis is orthonormal to ~``eps * cond(G)``, so a well-conditioned
    ``G`` needs no n-sized repair. NaN compares False (the two-pass path).
    """
    inv_lam = jnp.sum(precond * precond, axis=0)  # 1 / lambda_i, 0 where dropped
    kept = keep1 & (inv_lam > 0)
    big = jnp.max(jnp.where(kept, inv_lam, 0.0))  # 1 / lambda_min
    small = jnp.min(jnp.where(kept, inv_lam, jnp.inf))  # 1 / lambda_max
    return jax.lax.stop_gradient(big <= GRAM_FORM_MAX_COND * small)


def _basis_and_gram(xs: jax.Array, precond: jax.Array, inner) -> tuple[jax.Array, jax.Array]:
    q1 = mm(xs, precond)
    return q1, inner(q1, q1)


def whiten(
    x: jax.Array, *, epsilon: float | None = None, preconditioner=None, paired: bool = False
) -> Whitened:
    r"""Orthonormal basis of the centred column space of ``x``.

    Steps (``x`` is ``(n, d)``, rows are samples):

    1. scale every neuron by a power of two (exact) to a unit maximum, centre,
       and scale every neuron to unit norm (Jacobi scaling; neurons whose
       spread is at round-off level of their mean are *dead* and masked,
       :func:`jaxcca._numerics.alive_neurons`);
    2. preconditioner, held constant for differentiation: the eigenvectors
       ``V`` and eigenvalues ``lambda`` of the Gram matrix ``G = xs^T xs``;
       directions with ``lambda <= epsilon * max(lambda)`` are dropped.
       ``q1 = xs V diag(lambda^{-1/2})`` is orthonormal up to round-off;
    3. re-orthonormalisation, differentiated: ``q = q1 L^{-T}`` with
       ``L = chol(q1^T q1)`` (one CholeskyQR step on a nearly orthonormal
       matrix, which is accurate to round-off and has a well-conditioned
       derivative). Columns that lose most of their norm here are round-off,
       not signal, and are dropped too.

    Because the preconditioner is a constant invertible map when ``x`` has
    full rank, ``span(q) = span(x - mean)`` holds for every perturbation and the
    derivative of any function of the subspace (canonical correlations,
    projections) is exact. At rank-deficient inputs the true function is not
    differentiable; the gradient returned is finite and treats the dropped
    directions as fixed.

    Args:
      x: ``(n, d)`` representation.
      epsilon: relative rank tolerance; ``None`` uses
        :func:`default_epsilon` of ``x.dtype``.
      preconditioner: ``(gram, eps) -> (precond, keep1)`` for step 2, held
        constant; default :func:`spectral_preconditioner`. (DFT-CCA passes
        one that exploits the structure of complex data in real form.)
      paired: ``x`` ``(n, 2c)`` is the top half ``[a_1, -b_1, a_2, -b_2,
        ...]`` of the real form of complex data ``A + iB`` (see
        :func:`pair_inner`): the result is that of the ``(2n, 2c)`` real form,
        with its sample-sized fields (``q``, ``q1``, ``xs``) as top halves, at
        half the cost of the sample-sized products; ``preconditioner`` must
        return the real form of a complex map, in the same interleaved order.
        Complex centring (over the ``n`` rows), per-pair scales and norms.

    Returns:
      A :class:`Whitened` tuple.
    """
    dtype = x.dtype
    n, d = x.shape
    eps = validate_epsilon(epsilon)
    eps = default_epsilon(dtype) if eps is None else eps

    # Step 0: an exact power-of-two scale per neuron (the basis does not
    # depend on it), so that no square below overflows or underflows at any
    # magnitude and one huge neuron does not make the others look dead.
    inner = pair_inner if paired else (lambda a, b: mm(a.T, b))
    scale = pow2_scale(x, axis=0)
    if paired:  # the real form's column 2j + 1 holds the values of column 2j
        scale = jnp.repeat(jnp.min(scale.reshape(-1, 2), axis=1), 2)
    xc, mean = center(x * scale[None, :])
    sq_norms = jnp.sum(xc * xc, axis=0)
    if paired:
        sq_norms = jnp.repeat(jnp.sum(sq_norms.reshape(-1, 2), axis=1), 2)
    norms = safe_sqrt(sq_norms)
    alive = alive_neurons(norms, mean, n)
    if paired:
        alive = _pair_all(alive)
    inv_norms = safe_div(jnp.ones_like(norms), norms, alive)
    xs = xc * inv_norms[None, :]

    # --- preconditioner (constant) ---------------------------------------
    gram = pair_inner(xs, xs) if paired else gram_matrix(xs)
    precond, keep1 = (preconditioner or spectral_preconditioner)(gram, eps)

    # --- re-orthonormalisation (differentiated) ---------------------------
    # g2 = (xs P)^T (xs P) is formed either from the first basis q1 = xs P
    # itself, which is what lets the second pass repair the first pass's
    # round-off (CholeskyQR2), or, when that round-off is negligible, in d x d
    # form as P^T G P, which saves the two n-sized products (q1 and its Gram)
    # and leaves q as xs (P L^-T): see :func:`gram_form_is_accurate`. float64
    # always takes the d x d form (its Gram round-off, eps * cond(x)**2, is
    # negligible for any condition number the rank tolerance lets through).
    if dtype == np.float64:
        gram_mode = jnp.asarray(True)
        basis, g2 = xs, mm(mm(precond.T, gram), precond)
    else:
        gram_mode = gram_form_is_accurate(precond, keep1)
        basis, g2 = jax.lax.cond(
            gram_mode,
            lambda: (xs, mm(mm(precond.T, gram), precond)),
            lambda: _basis_and_gram(xs, precond, inner),
        )
    keep, l_factor, linv_t = second_pass(g2, keep1, paired=paired)
    # NaN/Inf input must give NaN output, not a quietly masked 0: the masks
    # above compare False on NaN, so poison the basis explicitly. A column of x
    # holds a NaN or Inf exactly when its mean is not finite (its scale is 1
    # then, and a finite column scaled to a unit maximum cannot overflow its
    # sum): no extra pass over x.
    poison = jnp.where(jnp.all(jnp.isfinite(mean)), 0.0, jnp.nan).astype(dtype)
    precond_kept = jnp.where(keep[None, :], precond, 0.0)
    # q = basis @ m: basis is q1 (masked to the kept directions) or xs.
    basis = jnp.where((keep | gram_mode)[None, :], basis, 0.0) + poison
    m = jnp.where(gram_mode, mm(precond_kept, linv_t), linv_t)
    q = mm(basis, m)
    w = mm(inv_norms[:, None] * precond, linv_t)

    # r = q^T xc. In the d x d form, basis^T xc = G diag(norms); from q1 it is
    # an n-sized product (the d x d form L^T diag(lam^1/2) V^T D loses ~1e-4 in
    # PWCCA at condition number 1e3 in float32). Under jit r is only computed
    # when a measure uses it.
    def r_from_gram():
        return mm(m.T, gram * norms[None, :]) + poison

    if dtype == np.float64:
        r = r_from_gram()
    else:
        r = jax.lax.cond(gram_mode, r_from_gram, lambda: mm(m.T, inner(basis, xc)))
    # Back from the per-neuron scales: r in the units of x times one global
    # power of two (exact; SVCCA and PWCCA do not depend on it), w and the
    # mean in the units of x.
    # A dead neuron has no coordinates (from the Gram its column is exactly 0;
    # from q1 it would carry its centring round-off, which the rescaling
    # below can make the largest entry of r when the dead neuron is the
    # largest one). Its NaN stays (NaN neurons count as alive).
    r = jnp.where(alive[None, :], r, poison)
    # The global power of two is the largest *live* neuron's: a huge dead one
    # would push every live coordinate toward underflow (1e-31 at 1e30, where
    # PWCCA's weights then have NaN gradients in float32).
    unit = live_unit(scale, alive)
    r = r * (unit / scale)[None, :]
    rank = jnp.sum(keep, dtype=jnp.int32)
    return Whitened(
        q=q,
        r=r,
        mask=keep,
        rank=rank,
        mean=mean / scale,
        w=scale[:, None] * w,
        unit=unit,
        q1=basis,
        linv_t=m,
        xs=xs + poison,
        precond=precond_kept,
    )


def cross_product(wx: Whitened, wy: Whitened, *, paired: bool = False) -> jax.Array:
    """``wx.q.T @ wy.q`` (``(d1, d2)``), computed from the bases before their last map.

    ``m_x^T (b_x^T b_y) m_y`` (``q = b m``, fields ``q1`` and ``linv_t``) needs
    one ``n``-sized product instead of forming both ``q`` (under jit the unused
    ``q`` is never computed). ``paired``: both came from ``whiten(...,
    paired=True)`` (the product of the real forms, :func:`pair_inner`).
    """
    inner = pair_inner(wx.q1, wy.q1) if paired else mm(wx.q1.T, wy.q1)
    return mm(mm(wx.linv_t.T, inner), wy.linv_t)


class MomentWhitened(NamedTuple):
    """:class:`Whitened` computed from moments: no samples, so no basis ``q``.

    Attributes:
      r: ``(d, d)`` ``T^T S`` for the co-moment matrix ``S``: the coordinates of
        the centred neurons in the (implicit) orthonormal basis.
      mask: ``(d,)`` bool, kept directions.
      rank: scalar int, ``mask.sum()``.
      mean: ``(d,)`` per-neuron mean.
      w: ``(d, d)`` the map ``T`` with ``(x - mean) @ T`` orthonormal.
      alive: ``(d,)`` bool, the neurons that are not dead
        (:func:`jaxcca._numerics.alive_neurons`); dead ones have no
        coordinates (zero columns of ``r``).
    """

    r: jax.Array
    mask: jax.Array
    rank: jax.Array
    mean: jax.Array
    w: jax.Array
    alive: jax.Array


def whiten_moments(cov: jax.Array, mean: jax.Array, n_samples, *, epsilon=None) -> MomentWhitened:
    """:func:`whiten` from a co-moment matrix ``sum (x - mean)(x - mean)^T`` instead of data.

    The same three steps on ``d x d`` matrices. Without the samples the second
    pass cannot repair the first pass's round-off (the Gram matrix is all
    there is), so float32 moments are accurate to ``eps * cond**2`` only.
    """
    dtype = cov.dtype
    eps = validate_epsilon(epsilon)
    eps = default_epsilon(dtype) if eps is None else eps
    diag = jnp.diagonal(cov)
    norms = safe_sqrt(diag)
    alive = alive_neurons(norms, mean, n_samples)
    pos = alive & (diag > 0)
    inv = safe_div(jnp.ones_like(norms), norms, pos)
    g = cov * inv[:, None] * inv[None, :]
    precond, keep1 = spectral_preconditioner(g, eps)
    # d x d form of the second pass (see the docstring on float32).
    # Centred data of n samples span at most n - 1 directions; in float32 the
    # round-off of a rank-deficient co-moment matrix looks like more.
    max_rank = jnp.clip(jnp.asarray(n_samples) - 1, 0, cov.shape[0]).astype(jnp.int32)
    keep1 = keep1 & first_k(max_rank, cov.shape[0])
    keep, _, linv_t = second_pass(mm(mm(precond.T, g), precond), keep1)
    keep = keep & first_k(max_rank, cov.shape[0])
    t = mm(inv[:, None] * precond, linv_t)
    # A dead neuron has no coordinates (its co-moments are round-off, which a
    # later rescaling can make the largest entries of r), as in whiten.
    return MomentWhitened(
        r=jnp.where(alive[None, :], mm(t.T, cov), 0.0),
        mask=keep,
        rank=jnp.sum(keep, dtype=jnp.int32),
        mean=mean,
        w=t,
        alive=alive,
    )
