"""HSIC estimators behind CKA: linear (feature or Gram form) and RBF, biased and unbiased.

Every function here works on one pair and returns HSIC terms or the CKA
normalisation of them; the public functions in :mod:`jaxcca._cka` and the
``"cka"`` measure of :func:`jaxcca.pairwise` are built on them. See
:mod:`jaxcca._cka` for the estimators' definitions and references.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxcca._numerics import (
    mm,
    nonconstant,
    pow2_scale,
    rescale_ratio,
    running_scale,
    safe_rsqrt,
    safe_sqrt,
    set_scale,
)

__all__ = [
    "below_resolution",
    "center_gram",
    "centred",
    "cka_from_hsic",
    "hsic_from_grams",
    "hsic_terms",
    "kth_smallest",
    "linear_cka_basis",
    "linear_hsic_features",
    "median_nonneg",
    "rbf_gram",
    "ScaledHSIC",
    "use_feature_form",
]


def centred(x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Centred columns and whether ``x`` is non-constant (else the result is zeroed).

    A column is constant when its centred entries are all below 64 eps times
    its own mean (the round-off that centring leaves behind); constant columns
    are zeroed, and a representation with no other column is constant (its
    CKA is then 0).
    """
    mean = jnp.mean(x, axis=0, keepdims=True)
    xc = x - mean
    live = nonconstant(xc, mean)
    return jnp.where(live, xc, 0.0), jnp.any(live)


def use_feature_form(n: int, d1: int, d2: int) -> bool:
    # Multiplications: feature form n (d1 d2 + d1^2 + d2^2); Gram form n^2 (d1 + d2).
    return d1 * d1 + d1 * d2 + d2 * d2 <= n * (d1 + d2)


def linear_hsic_features(xc: jax.Array, yc: jax.Array, debiased: bool):
    """``(hsic_xy, hsic_xx, hsic_yy)`` of the linear kernel without ``n x n`` matrices.

    Biased: ``||x_c^T y_c||_F^2 / (n - 1)^2``. Unbiased (expanding Song et al.
    2012, eq. 5 for ``K = x_c x_c^T``): with row norms ``r_x = diag(K)`` and
    ``t_x = tr(K)``, ``n (n - 3) HSIC_1 = ||x_c^T y_c||_F^2 - n / (n - 2) r_x . r_y
    + t_x t_y / ((n - 1) (n - 2))`` (the column sums of ``K`` vanish because
    ``x_c`` is centred).
    """
    n = xc.shape[0]
    cxy = mm(xc.T, yc)
    cxx = mm(xc.T, xc)
    cyy = mm(yc.T, yc)
    sxy, sxx, syy = jnp.sum(cxy * cxy), jnp.sum(cxx * cxx), jnp.sum(cyy * cyy)
    if not debiased:
        scale = 1.0 / float((n - 1) ** 2)
        return sxy * scale, sxx * scale, syy * scale
    rx, ry = jnp.sum(xc * xc, axis=1), jnp.sum(yc * yc, axis=1)
    tx, ty = jnp.sum(rx), jnp.sum(ry)
    a, b = float(n) / float(n - 2), 1.0 / float((n - 1) * (n - 2))
    scale = 1.0 / float(n * (n - 3))

    def u(s, ra, rb, ta, tb):
        return (s - a * jnp.sum(ra * rb) + b * ta * tb) * scale

    return u(sxy, rx, ry, tx, ty), u(sxx, rx, rx, tx, tx), u(syy, ry, ry, ty, ty)


def center_gram(k: jax.Array, debiased: bool) -> jax.Array:
    """Double-centred ``H K H`` (biased) or U-centred ``K~`` (unbiased) kernel matrix.

    U-centring (Székely & Rizzo 2014, section 2): for ``i != j``,
    ``K~_ij = K_ij - R_i / (n - 2) - R_j / (n - 2) + S / ((n - 1) (n - 2))`` with
    ``R_i`` the row sums and ``S`` the total of ``K`` with its diagonal zeroed,
    and ``K~_ii = 0``; then ``<K~, L~>_F / (n (n - 3))`` is the unbiased HSIC.
    """
    n = k.shape[0]
    if not debiased:
        r = jnp.mean(k, axis=1)
        return k - r[:, None] - r[None, :] + jnp.mean(r)
    off = ~jnp.eye(n, dtype=bool)
    k = jnp.where(off, k, 0.0)
    r = jnp.sum(k, axis=1)
    s = jnp.sum(r)
    kt = k - (r[:, None] + r[None, :]) / float(n - 2) + s / float((n - 1) * (n - 2))
    return jnp.where(off, kt, 0.0)


def hsic_from_grams(kx: jax.Array, ky: jax.Array, debiased: bool):
    n = kx.shape[0]
    a, b = center_gram(kx, debiased), center_gram(ky, debiased)
    scale = 1.0 / float(n * (n - 3)) if debiased else 1.0 / float((n - 1) ** 2)
    return jnp.sum(a * b) * scale, jnp.sum(a * a) * scale, jnp.sum(b * b) * scale


def kth_smallest(v: jax.Array, k: int) -> jax.Array:
    """The ``k``-th smallest (0-based) of the non-negative floats ``v`` (1-D), no sort.

    Bisection on the IEEE bit patterns, whose integer order is the float order
    for non-negative values: one counting pass per bit (32 or 64 passes), which
    on CPU is several times faster than ``jnp.sort`` of ``n**2`` values. Not
    differentiated (the caller selects the matching entries of ``v``).
    """
    itype = jnp.int64 if v.dtype == np.float64 else jnp.int32
    bits = jax.lax.bitcast_convert_type(v, itype)

    def body(_, bounds):
        lo, hi = bounds
        mid = lo + (hi - lo) // 2
        enough = jnp.sum(bits <= mid, dtype=jnp.int32) >= k + 1
        return jnp.where(enough, lo, mid + 1), jnp.where(enough, mid, hi)

    start = (jnp.zeros((), itype), jnp.max(bits))
    _, hi = jax.lax.fori_loop(0, 8 * v.dtype.itemsize, body, start)
    return jax.lax.bitcast_convert_type(hi, v.dtype)


def median_nonneg(v: jax.Array) -> jax.Array:
    """``numpy.median`` of the non-negative entries of ``v`` (all of them).

    The derivative goes to the selected entries (shared equally among ties).
    """
    v = v.reshape(-1)
    m = v.shape[0]
    c = jax.lax.stop_gradient(v)
    lo = kth_smallest(c, (m - 1) // 2)
    if m % 2:
        hi = lo
    else:  # the next order statistic: lo again if tied, else the next larger value
        tied = jnp.sum(c <= lo, dtype=jnp.int32) >= m // 2 + 1
        hi = jnp.where(tied, lo, jnp.min(jnp.where(c > lo, c, jnp.inf)))

    def pick(t):  # value exactly t; derivative 1 / (number of ties) on each tie
        hit = c == t
        share = jnp.sum(jnp.where(hit, v - c, 0.0))
        return t + share / jnp.maximum(jnp.sum(hit, dtype=jnp.int32), 1).astype(v.dtype)

    med = 0.5 * (pick(lo) + pick(hi))
    return jnp.where(jnp.any(jnp.isnan(c)), jnp.nan, med)


# Squared distances from the Gram expansion ``|x_i|^2 + |x_j|^2 - 2 x_i . x_j``
# (one matrix product) carry an absolute round-off of about ``eps * |x|^2``. An
# absolute bandwidth with ``sigma^2`` below ``RBF_DIRECT_FACTOR`` times that
# (e.g. ``sigma=3`` and one neuron 1e20 times larger than the rest) lets the
# round-off move the kernel's exponent by more than ``1 / RBF_DIRECT_FACTOR``
# and turn two distinct samples into coinciding ones; the distances are then
# formed from the differences themselves, exact to relative round-off.
RBF_DIRECT_FACTOR = 1e3


def _expanded_sq_distances(xc: jax.Array) -> jax.Array:
    n = xc.shape[0]
    g = mm(xc, xc.T)
    sq = jnp.sum(xc * xc, axis=1)
    d2 = jnp.maximum(sq[:, None] + sq[None, :] - 2.0 * g, 0.0)
    return jnp.where(jnp.eye(n, dtype=bool), 0.0, d2)


def _direct_sq_distances(xc: jax.Array) -> jax.Array:
    # n x n x d elementwise work instead of a matrix product.
    diff = xc[:, None, :] - xc[None, :, :]
    return jnp.sum(diff * diff, axis=-1)


def below_resolution(xc: jax.Array, sigma) -> jax.Array:
    """Whether ``sigma**2`` is below what Gram-expanded distances of ``xc`` resolve (traced bool).

    ``sigma**2 < RBF_DIRECT_FACTOR * eps * max_i |x_i|^2``; held constant.
    """
    v = jnp.asarray(sigma, dtype=xc.dtype)
    eps = float(np.finfo(xc.dtype).eps)
    resolution = eps * jnp.max(jnp.sum(xc * xc, axis=1))
    return jax.lax.stop_gradient(v * v < RBF_DIRECT_FACTOR * resolution)


def rbf_gram(xc: jax.Array, mode: str, value, *, direct: bool = False):
    """RBF kernel ``exp(-||x_i - x_j||^2 / (2 sigma^2))`` and the ``sigma`` used.

    With ``mode == "threshold"``, ``sigma^2 = threshold^2 * median(D)`` where
    ``D`` is the full ``n x n`` matrix of squared distances, diagonal zeros
    included (as in Kornblith et al.'s notebook, ``gram_rbf``). No square root
    is taken on the differentiated path. Distances come from one matrix
    product, or with ``direct`` (static) from the differences
    (:func:`below_resolution` says when that is needed). If ``sigma^2`` is
    0 or below the smallest normal float (more than half of the pairs
    coincide, or an absolute ``sigma`` that underflows once the data are
    scaled), the kernel is its limit, the indicator of coinciding samples.
    """
    d2 = _direct_sq_distances(xc) if direct else _expanded_sq_distances(xc)
    v = jnp.asarray(value, dtype=xc.dtype)
    s2 = v * v * median_nonneg(d2) if mode == "threshold" else v * v
    # Below the smallest normal float, 1 / s2 can overflow (a NaN gradient):
    # the limit is taken instead. NaN takes the exp branch and propagates.
    ok = ~(s2 < float(np.finfo(xc.dtype).tiny))
    safe = jnp.where(ok, s2, 1.0)
    k = jnp.where(ok, jnp.exp(-d2 / (2.0 * safe)), (d2 == 0).astype(xc.dtype))
    sigma = jnp.where(ok, jnp.sqrt(safe), 0.0)
    return k, sigma


class ScaledHSIC(NamedTuple):
    """HSIC terms of one pair, computed on exactly rescaled data.

    For the linear kernel each centred side is multiplied by a power of two
    (:func:`jaxcca._numerics.running_scale`) before any product is formed, so
    the terms are O(1) at every magnitude and CKA, a ratio, is computed from
    them directly. RBF kernel values do not depend on the scale of the data
    (an absolute bandwidth is scaled along), so their terms are in data units
    and their scale is 1. :meth:`in_units` converts the terms exactly to any
    other power-of-two scale (how a running minibatch state adds batches);
    :meth:`in_data_units` to the units of the data, which can overflow or
    underflow in float32 when the activations are far from 1 (past ~1e9 for
    linear kernels, where the fourth power of the data leaves the range).

    Attributes:
      hsic_xy: scalar HSIC of the scaled pair.
      hsic_xx: scalar HSIC of scaled x with itself.
      hsic_yy: scalar HSIC of scaled y with itself.
      sigma_x: scalar RBF bandwidth of x in the units of x (0 for linear).
      sigma_y: scalar RBF bandwidth of y (0 for linear).
      scale_x: scalar power of two x was multiplied by (linear kernel; ``inf``
        when x is constant or not finite, see ``running_scale``), 1 for RBF.
      scale_y: scalar, the same for y.
    """

    hsic_xy: jax.Array
    hsic_xx: jax.Array
    hsic_yy: jax.Array
    sigma_x: jax.Array
    sigma_y: jax.Array
    scale_x: jax.Array
    scale_y: jax.Array

    def in_units(self, sx, sy) -> tuple[jax.Array, jax.Array, jax.Array]:
        """``(hsic_xy, hsic_xx, hsic_yy)`` as if x had been scaled by ``sx`` and y by ``sy``.

        Each side's terms are homogeneous of degree 2 in its scale, so they are
        multiplied by the square of the (power-of-two, hence exact) ratio of
        the scales. ``sx``, ``sy``: running scales (``inf`` = not set).
        """
        rx, ry = rescale_ratio(self.scale_x, sx), rescale_ratio(self.scale_y, sy)
        fx, fy = rx * rx, ry * ry
        return self.hsic_xy * fx * fy, self.hsic_xx * fx * fx, self.hsic_yy * fy * fy

    def in_data_units(self) -> tuple[jax.Array, jax.Array, jax.Array]:
        """``(hsic_xy, hsic_xx, hsic_yy)`` in the units of the data."""
        one = jnp.ones((), self.hsic_xy.dtype)
        return self.in_units(one, one)


def hsic_terms(x, y, mode, value, debiased) -> ScaledHSIC:
    """The HSIC terms of one pair (see :class:`ScaledHSIC`)."""
    (xc, okx), (yc, oky) = centred(x), centred(y)
    if mode == "linear":
        sx, sy = running_scale(xc), running_scale(yc)
        xs, ys = xc * set_scale(sx), yc * set_scale(sy)
        n, d1 = xs.shape
        if use_feature_form(n, d1, ys.shape[1]):
            hxy, hxx, hyy = linear_hsic_features(xs, ys, debiased)
        else:
            hxy, hxx, hyy = hsic_from_grams(mm(xs, xs.T), mm(ys, ys.T), debiased)
        bx = by = jnp.zeros((), x.dtype)
    else:
        # Distances are formed on exactly rescaled data; an absolute bandwidth
        # scales with the data, so the kernel is unchanged.
        cx, cy = pow2_scale(xc), pow2_scale(yc)
        vx = value * cx if mode == "sigma" else value
        vy = value * cy if mode == "sigma" else value

        def terms(direct):
            kx, bx = rbf_gram(xc * cx, mode, vx, direct=direct)
            ky, by = rbf_gram(yc * cy, mode, vy, direct=direct)
            return (*hsic_from_grams(kx, ky, debiased), bx, by)

        if mode == "sigma":
            # The cond returns scalars, so the common path stays fused (under
            # vmap both branches run: n x n x d more work per pair).
            fine = below_resolution(xc * cx, vx) | below_resolution(yc * cy, vy)
            hxy, hxx, hyy, bx, by = jax.lax.cond(fine, lambda: terms(True), lambda: terms(False))
        else:
            hxy, hxx, hyy, bx, by = terms(False)
        bx, by = bx / cx, by / cy
        sx = sy = jnp.ones((), x.dtype)
    # A constant side has an exactly zero centred kernel (not round-off of one).
    return ScaledHSIC(
        jnp.where(okx & oky, hxy, 0.0),
        jnp.where(okx, hxx, 0.0),
        jnp.where(oky, hyy, 0.0),
        bx,
        by,
        sx,
        sy,
    )


def cka_from_hsic(hxy, hxx, hyy, debiased: bool) -> jax.Array:
    """CKA normalisation ``hxy / sqrt(hxx hyy)``, no NaN (value or gradient) where a norm is 0."""
    ok = (hxx > 0) & (hyy > 0)
    sim = jnp.where(ok, hxy * safe_rsqrt(hxx) * safe_rsqrt(hyy), 0.0)
    # Clip round-off only (Cauchy-Schwarz bounds the exact value); NaN in, NaN out.
    sim = jnp.clip(sim, -1.0 if debiased else 0.0, 1.0)
    return sim + 0.0 * (hxy + hxx + hyy)


def linear_cka_basis(x: jax.Array) -> jax.Array:
    """Centred ``x`` over ``||x_c^T x_c||_F^{1/2}``: linear CKA of two such is ``||a^T b||_F^2``.

    Exactly pre-scaled by a power of two, so that any magnitude works.
    Constant columns are zeroed (:func:`centred`), as in :func:`hsic_terms`:
    the centring residue of a large constant neuron is not signal.
    """
    xc, _ = centred(x)
    xc = xc * pow2_scale(xc)
    gram_norm = safe_sqrt(jnp.sum(mm(xc.T, xc) ** 2))
    return xc * safe_rsqrt(gram_norm)
