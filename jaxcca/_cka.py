"""Centred kernel alignment (CKA): linear and RBF kernels, biased and debiased HSIC.

CKA (Kornblith et al., ICML 2019) compares two representations through their
sample-by-sample kernel matrices ``K`` (of x) and ``L`` (of y)::

    CKA(K, L) = HSIC(K, L) / sqrt(HSIC(K, K) * HSIC(L, L))

with either the biased HSIC estimator (Gretton et al. 2005)
``HSIC_0 = tr(K H L H) / (n - 1)**2`` (``H`` the centring matrix) or the
unbiased one (Song et al., JMLR 2012, eq. 5), computed here as the inner
product of U-centred kernel matrices (Székely & Rizzo, Ann. Statist. 2014,
section 2.2), ``HSIC_1 = <K~, L~>_F / (n (n - 3))``. Because ``HSIC_1(K, K) =
||K~||_F**2 / (n (n - 3))`` is a squared norm, debiased CKA is a cosine and
lies in [-1, 1]; it is negative when the two representations are less aligned
than chance, and it is reported as it is.

The linear kernel is computed in feature space (``||x_c^T y_c||_F**2``, no
``n x n`` matrix) when that needs fewer multiplications, and in Gram form
otherwise; both give the same value to round-off.

Minibatch CKA (Nguyen, Raghu & Kornblith, ICLR 2021) averages per-batch HSIC
estimates before normalising: :func:`minibatch_cka_init`,
:func:`minibatch_cka_update`, :func:`minibatch_cka_finalize`, or
:func:`minibatch_cka` for batches stacked in one array.
"""

from __future__ import annotations

import functools
import numbers
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from jaxcca._linalg import _mm, as_pair
from jaxcca._linalg import check_finite as _check_values

__all__ = [
    "CKAResult",
    "MinibatchCKAState",
    "cka",
    "cka_distance",
    "cka_similarity",
    "minibatch_cka",
    "minibatch_cka_finalize",
    "minibatch_cka_init",
    "minibatch_cka_update",
]

KERNELS = ("linear", "rbf")
DEFAULT_THRESHOLD = 1.0


class CKAResult(NamedTuple):
    """Result of :func:`jaxcca.cka` (and of :func:`jaxcca.minibatch_cka_finalize`).

    Attributes:
      similarity: scalar CKA. Biased estimator: in [0, 1]. Debiased estimator:
        in [-1, 1] (a cosine between U-centred kernel matrices); small negative
        values mean "less aligned than independent data would be on average"
        and are reported as they are. 0 when either representation is constant
        (its kernel has no centred part). NaN input gives NaN.
      hsic_xy: scalar HSIC estimate between x and y: ``tr(K H L H) / (n - 1)**2``
        (biased) or the unbiased estimator of Song et al. (2012), which can be
        negative. For minibatch CKA, the mean of the per-batch estimates.
      hsic_xx: scalar HSIC of x with itself (>= 0 for both estimators).
      hsic_yy: scalar HSIC of y with itself (>= 0 for both estimators).
      sigma_x: scalar RBF bandwidth used for x (``threshold * sqrt(median
        squared distance)`` or the given ``sigma``); 0 for the linear kernel.
        For minibatch CKA, the mean over batches.
      sigma_y: scalar RBF bandwidth used for y; 0 for the linear kernel.
    """

    similarity: jax.Array
    hsic_xy: jax.Array
    hsic_xx: jax.Array
    hsic_yy: jax.Array
    sigma_x: jax.Array
    sigma_y: jax.Array


# ----------------------------------------------------------------------------
# Validation (trace time)
# ----------------------------------------------------------------------------


def _check_bandwidth(value, name: str):
    if value is None:
        return None
    if isinstance(value, bool) or not (
        isinstance(value, numbers.Real) or (hasattr(value, "shape") and np.ndim(value) == 0)
    ):
        raise TypeError(
            f"{name} must be a positive real scalar, got {value!r} of type {type(value).__name__}."
        )
    try:
        concrete = float(value)
    except (jax.errors.ConcretizationTypeError, TypeError):
        return value  # traced: the caller asked for a data-dependent bandwidth
    if not (np.isfinite(concrete) and concrete > 0.0):
        raise ValueError(f"{name}={concrete}: the RBF bandwidth must be a finite number > 0.")
    return value


def _validate(kernel, sigma, threshold, debiased, n: int):
    """Returns ``(mode, value)`` with mode in {"linear", "sigma", "threshold"}."""
    if not isinstance(kernel, str) or kernel not in KERNELS:
        raise ValueError(f"kernel must be one of {KERNELS}, got {kernel!r}.")
    if not isinstance(debiased, bool):
        raise TypeError(f"debiased must be a Python bool (static), got {debiased!r}.")
    if kernel == "linear":
        if sigma is not None or threshold is not None:
            raise ValueError(
                "sigma and threshold set the RBF bandwidth and only apply with "
                f"kernel='rbf'; got kernel='linear' with sigma={sigma!r}, "
                f"threshold={threshold!r}. Drop them or pass kernel='rbf'."
            )
        mode, value = "linear", None
    else:
        if sigma is not None and threshold is not None:
            raise ValueError(
                f"pass either sigma (absolute bandwidth) or threshold (fraction of the "
                f"median pairwise distance), not both; got sigma={sigma!r}, "
                f"threshold={threshold!r}."
            )
        if sigma is not None:
            mode, value = "sigma", _check_bandwidth(sigma, "sigma")
        else:
            t = DEFAULT_THRESHOLD if threshold is None else threshold
            mode, value = "threshold", _check_bandwidth(t, "threshold")
    if debiased and n < 4:
        raise ValueError(
            f"debiased=True needs at least 4 samples (the unbiased HSIC estimator "
            f"divides by n (n - 3)), got n={n}. Use debiased=False (the biased "
            "estimator works from n = 2), or accumulate batches with "
            "jaxcca.minibatch_cka_update."
        )
    return mode, value


# ----------------------------------------------------------------------------
# Building blocks
# ----------------------------------------------------------------------------


def _centred(x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Centred columns and whether ``x`` is non-constant (else the result is zeroed).

    "Constant" means every centred entry is below 64 eps times the largest
    mean, the round-off that centring leaves behind; its CKA is then 0.
    """
    mean = jnp.mean(x, axis=0, keepdims=True)
    xc = x - mean
    eps = float(np.finfo(x.dtype).eps)
    # Written as not(<=) so that NaN counts as alive and propagates.
    alive = ~(jnp.max(jnp.abs(xc)) <= 64.0 * eps * jnp.max(jnp.abs(mean)))
    return jnp.where(alive, xc, 0.0), alive


def _unit_scale(xc: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``(xc / a, a)`` with ``a = max|xc|`` held constant for differentiation.

    Linear HSIC is homogeneous of degree 2 in each argument, so the value and
    the derivative of ``hsic(xc / a) * a**2`` are those of ``hsic(xc)`` for any
    constant ``a``; the scaling only keeps fourth powers of activations away
    from float32 overflow.
    """
    a = jax.lax.stop_gradient(jnp.max(jnp.abs(xc)))
    a = jnp.where(a > 0, a, 1.0)
    return xc / a, a


def _use_feature_form(n: int, d1: int, d2: int) -> bool:
    # Multiplications: feature form n (d1 d2 + d1^2 + d2^2); Gram form n^2 (d1 + d2).
    return d1 * d1 + d1 * d2 + d2 * d2 <= n * (d1 + d2)


def _linear_hsic_features(xc: jax.Array, yc: jax.Array, debiased: bool):
    """``(hsic_xy, hsic_xx, hsic_yy)`` of the linear kernel without ``n x n`` matrices.

    Biased: ``||x_c^T y_c||_F^2 / (n - 1)^2``. Unbiased (expanding Song et al.
    2012, eq. 5 for ``K = x_c x_c^T``): with row norms ``r_x = diag(K)`` and
    ``t_x = tr(K)``, ``n (n - 3) HSIC_1 = ||x_c^T y_c||_F^2 - n / (n - 2) r_x . r_y
    + t_x t_y / ((n - 1) (n - 2))`` (the column sums of ``K`` vanish because
    ``x_c`` is centred).
    """
    n = xc.shape[0]
    cxy = _mm(xc.T, yc)
    cxx = _mm(xc.T, xc)
    cyy = _mm(yc.T, yc)
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


def _center_gram(k: jax.Array, debiased: bool) -> jax.Array:
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


def _hsic_from_grams(kx: jax.Array, ky: jax.Array, debiased: bool):
    n = kx.shape[0]
    a, b = _center_gram(kx, debiased), _center_gram(ky, debiased)
    scale = 1.0 / float(n * (n - 3)) if debiased else 1.0 / float((n - 1) ** 2)
    return jnp.sum(a * b) * scale, jnp.sum(a * a) * scale, jnp.sum(b * b) * scale


def _kth_smallest(v: jax.Array, k: int) -> jax.Array:
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


def _median_nonneg(v: jax.Array) -> jax.Array:
    """``numpy.median`` of the non-negative entries of ``v`` (all of them).

    The derivative goes to the selected entries (shared equally among ties).
    """
    v = v.reshape(-1)
    m = v.shape[0]
    c = jax.lax.stop_gradient(v)
    lo = _kth_smallest(c, (m - 1) // 2)
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


def _rbf_gram(xc: jax.Array, mode: str, value) -> tuple[jax.Array, jax.Array]:
    """RBF kernel ``exp(-||x_i - x_j||^2 / (2 sigma^2))`` and the ``sigma`` used.

    With ``mode == "threshold"``, ``sigma^2 = threshold^2 * median(D)`` where
    ``D`` is the full ``n x n`` matrix of squared distances, diagonal zeros
    included (as in Kornblith et al.'s notebook, ``gram_rbf``). No square root
    is taken on the differentiated path. If ``sigma`` is 0 (more than half of
    the pairs coincide), the kernel is the indicator of coinciding samples.
    """
    n = xc.shape[0]
    g = _mm(xc, xc.T)
    sq = jnp.sum(xc * xc, axis=1)
    d2 = jnp.maximum(sq[:, None] + sq[None, :] - 2.0 * g, 0.0)
    d2 = jnp.where(jnp.eye(n, dtype=bool), 0.0, d2)
    v = jnp.asarray(value, dtype=xc.dtype)
    s2 = v * v * _median_nonneg(d2) if mode == "threshold" else v * v
    ok = ~(s2 <= 0)  # NaN takes the exp branch and propagates
    safe = jnp.where(ok, s2, 1.0)
    k = jnp.where(ok, jnp.exp(-d2 / (2.0 * safe)), (d2 == 0).astype(xc.dtype))
    sigma = jnp.where(ok, jnp.sqrt(safe), 0.0)
    return k, sigma


def _hsic_terms(x, y, mode, value, debiased):
    """``(hsic_xy, hsic_xx, hsic_yy, sigma_x, sigma_y)`` for one pair."""
    (xc, okx), (yc, oky) = _centred(x), _centred(y)
    if mode == "linear":
        xs, ax = _unit_scale(xc)
        ys, ay = _unit_scale(yc)
        n, d1 = xs.shape
        if _use_feature_form(n, d1, ys.shape[1]):
            hxy, hxx, hyy = _linear_hsic_features(xs, ys, debiased)
        else:
            hxy, hxx, hyy = _hsic_from_grams(_mm(xs, xs.T), _mm(ys, ys.T), debiased)
        ax2, ay2 = ax * ax, ay * ay
        hxy, hxx, hyy = hxy * ax2 * ay2, hxx * ax2 * ax2, hyy * ay2 * ay2
        sx = sy = jnp.zeros((), x.dtype)
    else:
        kx, sx = _rbf_gram(xc, mode, value)
        ky, sy = _rbf_gram(yc, mode, value)
        hxy, hxx, hyy = _hsic_from_grams(kx, ky, debiased)
    # A constant side has an exactly zero centred kernel (not round-off of one).
    return (
        jnp.where(okx & oky, hxy, 0.0),
        jnp.where(okx, hxx, 0.0),
        jnp.where(oky, hyy, 0.0),
        sx,
        sy,
    )


def _normalise(hxy, hxx, hyy, debiased: bool) -> jax.Array:
    """``hxy / sqrt(hxx hyy)`` with no NaN (value or gradient) where a norm is 0."""
    ok = (hxx > 0) & (hyy > 0)
    den = jnp.sqrt(jnp.where(ok, hxx, 1.0)) * jnp.sqrt(jnp.where(ok, hyy, 1.0))
    sim = jnp.where(ok, hxy / den, 0.0)
    # Clip round-off only (Cauchy-Schwarz bounds the exact value); NaN in, NaN out.
    sim = jnp.clip(sim, -1.0 if debiased else 0.0, 1.0)
    return sim + 0.0 * (hxy + hxx + hyy)


@functools.partial(jax.jit, static_argnames=("mode", "debiased"))
def _cka(x, y, value, mode: str, debiased: bool) -> CKAResult:
    hxy, hxx, hyy, sx, sy = _hsic_terms(x, y, mode, value, debiased)
    return CKAResult(_normalise(hxy, hxx, hyy, debiased), hxy, hxx, hyy, sx, sy)


def _prepare(x, y, kernel, sigma, threshold, debiased, check_finite):
    x, y = as_pair(x, y)
    mode, value = _validate(kernel, sigma, threshold, debiased, x.shape[0])
    if value is not None:
        value = jnp.asarray(value).astype(x.dtype)
    if check_finite:
        _check_values(x, y)
    return x, y, mode, value


# ----------------------------------------------------------------------------
# Public API
# ----------------------------------------------------------------------------


def cka(
    x: ArrayLike,
    y: ArrayLike,
    *,
    kernel: str = "linear",
    sigma: float | ArrayLike | None = None,
    threshold: float | ArrayLike | None = None,
    debiased: bool = False,
    check_finite: bool = False,
) -> CKAResult:
    r"""Centred kernel alignment between two representations.

    ``CKA = HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L))`` for the kernel matrices
    ``K`` of x and ``L`` of y over the ``n`` samples (Kornblith et al. 2019,
    eq. 4).

    * ``kernel="linear"``: ``K = x_c x_c^T``; biased linear CKA is
      ``||x_c^T y_c||_F^2 / (||x_c^T x_c||_F ||y_c^T y_c||_F)``. Computed in
      feature space (``d x d`` products) when ``d1^2 + d1 d2 + d2^2 <= n (d1 + d2)``
      (roughly ``d1 + d2 < n``), else from the ``n x n`` Gram matrices; the
      choice is made from the static shapes and does not change the value.
    * ``kernel="rbf"``: ``K_ij = exp(-||x_i - x_j||^2 / (2 sigma^2))``. The
      bandwidth is either absolute (``sigma``) or relative: ``sigma = threshold
      * sqrt(median of the n x n squared distances, diagonal included)``, the
      heuristic of Kornblith et al. (their ``gram_rbf``). Default:
      ``threshold=1.0``, as in their notebook's ``gram_rbf`` (the paper's
      figures also use 0.2 and 0.8). The relative bandwidth is computed from
      each representation separately and is differentiated through.
    * ``debiased=False``: biased HSIC ``tr(K H L H) / (n - 1)^2``; CKA in
      [0, 1]. ``debiased=True``: unbiased HSIC (Song et al. 2012); CKA in
      [-1, 1], can be slightly negative for weakly related representations
      (reported as is, never clamped or NaN); needs ``n >= 4``.

    Conventions: rows are samples, columns are neurons; data are centred
    inside. Linear CKA is invariant to orthogonal maps and isotropic scaling of
    either side's neurons and to translation, *not* to general invertible maps
    (unlike CCA). RBF CKA with a relative bandwidth is invariant to orthogonal
    maps, translation and isotropic scaling; with an absolute ``sigma`` not to
    scaling. Self-similarity is 1 to round-off. A representation that is
    constant (up to round-off) has CKA 0 with anything. Differentiable with
    finite gradients everywhere, including at ``x == y`` and for ``n = 2, 3``.

    One pair in, one result out: for a batch of pairs use ``jax.vmap``; for
    data that do not fit in memory, :func:`minibatch_cka_update`.

    Args:
      x: ``(n, d1)`` activations, float32 or float64.
      y: ``(n, d2)`` activations on the same ``n`` inputs.
      kernel: ``"linear"`` or ``"rbf"``. Static.
      sigma: absolute RBF bandwidth (> 0); scalar, may be traced. RBF only.
      threshold: relative RBF bandwidth (> 0), a multiple of the median pairwise
        distance; default 1.0 when ``kernel="rbf"`` and ``sigma`` is None.
      debiased: use the unbiased HSIC estimator. Static.
      check_finite: if True, raise ``ValueError`` when the inputs hold NaN or
        Inf (also under jit). Otherwise NaN input gives NaN output.

    Returns:
      A :class:`CKAResult`.

    Raises:
      ValueError: wrong rank or sample counts, unknown kernel, a bandwidth
        given for the linear kernel or both ``sigma`` and ``threshold``, a
        non-positive bandwidth, ``debiased=True`` with fewer than 4 samples.
      TypeError: dtype other than float32/float64, non-bool ``debiased``.

    Example:
      >>> import jax, jaxcca
      >>> x = jax.random.normal(jax.random.key(0), (100, 10))
      >>> y = x + jax.random.normal(jax.random.key(1), (100, 10))
      >>> res = jaxcca.cka(x, y)
      >>> 0.4 < float(res.similarity) < 0.7
      True
      >>> round(float(jaxcca.cka(x, x, kernel="rbf", debiased=True).similarity), 6)
      1.0

    References:
      Kornblith, Norouzi, Lee & Hinton, "Similarity of neural network
      representations revisited", ICML 2019 (eq. 4, sections 3-4).
      Gretton et al., "Measuring statistical dependence with Hilbert-Schmidt
      norms", ALT 2005 (biased HSIC).
      Song, Smola, Gretton, Bedo & Borgwardt, "Feature selection via
      dependence maximization", JMLR 2012, eq. 5 (unbiased HSIC).
      Székely & Rizzo, "Partial distance correlation with methods for
      dissimilarities", Ann. Statist. 2014 (U-centring).
    """
    x, y, mode, value = _prepare(x, y, kernel, sigma, threshold, debiased, check_finite)
    return _cka(x, y, value, mode, debiased)


def cka_similarity(
    x: ArrayLike,
    y: ArrayLike,
    *,
    kernel: str = "linear",
    sigma: float | ArrayLike | None = None,
    threshold: float | ArrayLike | None = None,
    debiased: bool = False,
    check_finite: bool = False,
) -> jax.Array:
    """CKA as a scalar: ``cka(x, y, ...).similarity`` (see :func:`cka`).

    In [0, 1] for the biased estimator, in [-1, 1] with ``debiased=True``.

    Example:
      >>> import jax, jaxcca
      >>> x = jax.random.normal(jax.random.key(0), (50, 8))
      >>> float(jaxcca.cka_similarity(x, 3.0 * x + 1.0)) > 0.99999
      True
    """
    return cka(
        x,
        y,
        kernel=kernel,
        sigma=sigma,
        threshold=threshold,
        debiased=debiased,
        check_finite=check_finite,
    ).similarity


def cka_distance(
    x: ArrayLike,
    y: ArrayLike,
    *,
    kernel: str = "linear",
    sigma: float | ArrayLike | None = None,
    threshold: float | ArrayLike | None = None,
    debiased: bool = False,
    check_finite: bool = False,
) -> jax.Array:
    """``1 - cka_similarity(x, y, ...)``: in [0, 1], or [0, 2] with ``debiased=True``.

    Example:
      >>> import jax, jaxcca
      >>> x = jax.random.normal(jax.random.key(0), (50, 8))
      >>> float(jaxcca.cka_distance(x, x)) < 1e-6
      True
    """
    return 1.0 - cka_similarity(
        x,
        y,
        kernel=kernel,
        sigma=sigma,
        threshold=threshold,
        debiased=debiased,
        check_finite=check_finite,
    )


# ----------------------------------------------------------------------------
# Minibatch CKA
# ----------------------------------------------------------------------------


class MinibatchCKAState(NamedTuple):
    """Running sums for minibatch CKA (a pytree: jit, scan and psum friendly).

    Attributes:
      hsic_xy: scalar, sum of per-batch HSIC(x, y) estimates.
      hsic_xx: scalar, sum of per-batch HSIC(x, x) estimates.
      hsic_yy: scalar, sum of per-batch HSIC(y, y) estimates.
      sigma_x: scalar, sum of per-batch RBF bandwidths of x (0 for linear).
      sigma_y: scalar, sum of per-batch RBF bandwidths of y (0 for linear).
      count: scalar int32, number of batches accumulated.
    """

    hsic_xy: jax.Array
    hsic_xx: jax.Array
    hsic_yy: jax.Array
    sigma_x: jax.Array
    sigma_y: jax.Array
    count: jax.Array


def minibatch_cka_init(dtype=jnp.float32) -> MinibatchCKAState:
    """An empty :class:`MinibatchCKAState` (all sums 0) of float ``dtype``.

    Example:
      >>> import jax.numpy as jnp, jaxcca
      >>> int(jaxcca.minibatch_cka_init(jnp.float32).count)
      0
    """
    dtype = np.dtype(dtype)
    if dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise TypeError(f"dtype must be float32 or float64, got {dtype}.")
    z = jnp.zeros((), dtype)
    return MinibatchCKAState(z, z, z, z, z, jnp.zeros((), jnp.int32))


@functools.partial(jax.jit, static_argnames=("mode", "debiased"))
def _minibatch_update(state, x, y, value, mode, debiased):
    hxy, hxx, hyy, sx, sy = _hsic_terms(x, y, mode, value, debiased)
    dtype = state.hsic_xy.dtype
    return MinibatchCKAState(
        state.hsic_xy + hxy.astype(dtype),
        state.hsic_xx + hxx.astype(dtype),
        state.hsic_yy + hyy.astype(dtype),
        state.sigma_x + sx.astype(dtype),
        state.sigma_y + sy.astype(dtype),
        state.count + jnp.ones((), jnp.int32),
    )


def minibatch_cka_update(
    state: MinibatchCKAState,
    x: ArrayLike,
    y: ArrayLike,
    *,
    kernel: str = "linear",
    sigma: float | ArrayLike | None = None,
    threshold: float | ArrayLike | None = None,
    debiased: bool = True,
) -> MinibatchCKAState:
    """Adds one minibatch's HSIC estimates to ``state``.

    Every batch must use the same options; batches may differ in size (each
    size compiles once). With ``debiased=True`` (the default, as in Nguyen et
    al. 2021) every batch needs at least 4 samples, and the mean of the
    per-batch unbiased estimates is an unbiased estimate of HSIC; with
    ``debiased=False`` batches of 2 or more samples are accepted but the
    average keeps the small-batch bias. States from several devices can be
    summed leaf by leaf (e.g. ``jax.lax.psum``) before finalising.

    Args:
      state: the running :class:`MinibatchCKAState`.
      x: ``(b, d1)`` activations of one minibatch.
      y: ``(b, d2)`` activations on the same ``b`` inputs.
      kernel: ``"linear"`` or ``"rbf"``, as in :func:`cka`. Static.
      sigma: absolute RBF bandwidth, as in :func:`cka`.
      threshold: relative RBF bandwidth (per batch), as in :func:`cka`.
      debiased: unbiased per-batch HSIC (default True here, unlike
        :func:`cka`). Static.

    Returns:
      The updated state.

    Example:
      >>> import jax, jax.numpy as jnp, jaxcca
      >>> x = jax.random.normal(jax.random.key(0), (64, 6))
      >>> s = jaxcca.minibatch_cka_init(jnp.float32)
      >>> for i in range(4):
      ...     b = x[16 * i : 16 * (i + 1)]
      ...     s = jaxcca.minibatch_cka_update(s, b, 2.0 * b)
      >>> round(float(jaxcca.minibatch_cka_finalize(s).similarity), 5)
      1.0
    """
    x, y, mode, value = _prepare(x, y, kernel, sigma, threshold, debiased, False)
    dtype = np.dtype(state.hsic_xy.dtype)
    x, y = x.astype(dtype), y.astype(dtype)
    if value is not None:
        value = value.astype(dtype)
    return _minibatch_update(state, x, y, value, mode, debiased)


def minibatch_cka_finalize(state: MinibatchCKAState) -> CKAResult:
    """Minibatch CKA from accumulated sums (Nguyen, Raghu & Kornblith 2021, eq. 3).

    ``CKA = mean HSIC(x, y) / sqrt(mean HSIC(x, x) * mean HSIC(y, y))``, the
    means over batches. With unbiased per-batch estimates the result can be
    slightly negative; it is reported as is. An empty state gives 0.

    Returns:
      A :class:`CKAResult` whose HSIC and bandwidth fields are the per-batch means.

    Example:
      >>> import jax.numpy as jnp, jaxcca
      >>> float(jaxcca.minibatch_cka_finalize(jaxcca.minibatch_cka_init()).similarity)
      0.0
    """
    c = jnp.maximum(state.count, 1).astype(state.hsic_xy.dtype)
    hxy, hxx, hyy = state.hsic_xy / c, state.hsic_xx / c, state.hsic_yy / c
    sim = _normalise(hxy, hxx, hyy, debiased=True)
    return CKAResult(sim, hxy, hxx, hyy, state.sigma_x / c, state.sigma_y / c)


def minibatch_cka(
    xs: ArrayLike,
    ys: ArrayLike,
    *,
    kernel: str = "linear",
    sigma: float | ArrayLike | None = None,
    threshold: float | ArrayLike | None = None,
    debiased: bool = True,
) -> CKAResult:
    """Minibatch CKA over batches stacked along a leading axis.

    Equivalent to :func:`minibatch_cka_update` on ``(xs[i], ys[i])`` for every
    ``i`` followed by :func:`minibatch_cka_finalize`, in one ``lax.scan``
    (memory of one batch at a time).

    Args:
      xs: ``(num_batches, b, d1)`` activations.
      ys: ``(num_batches, b, d2)`` activations on the same inputs.
      kernel: ``"linear"`` or ``"rbf"``. Static.
      sigma: absolute RBF bandwidth.
      threshold: relative RBF bandwidth (per batch).
      debiased: unbiased per-batch HSIC (default True). Static.

    Returns:
      A :class:`CKAResult` (HSIC and bandwidth fields are per-batch means).

    Raises:
      ValueError: arrays that are not 3-D or whose batch axes differ, and the
        errors of :func:`cka`.

    Example:
      >>> import jax, jaxcca
      >>> x = jax.random.normal(jax.random.key(0), (4, 32, 6))
      >>> round(float(jaxcca.minibatch_cka(x, -x).similarity), 5)
      1.0

    References:
      Nguyen, Raghu & Kornblith, "Do wide and deep networks learn the same
      things?", ICLR 2021, section 3.1.
    """
    xs = xs if hasattr(xs, "ndim") else np.asarray(xs)
    ys = ys if hasattr(ys, "ndim") else np.asarray(ys)
    if xs.ndim != 3 or ys.ndim != 3 or xs.shape[0] != ys.shape[0]:
        raise ValueError(
            "minibatch_cka expects xs of shape (num_batches, batch, d1) and ys of shape "
            f"(num_batches, batch, d2) with the same num_batches, got {tuple(xs.shape)} "
            f"and {tuple(ys.shape)}. For one batch use jaxcca.cka; for batches of "
            "different sizes call jaxcca.minibatch_cka_update per batch."
        )
    x0, y0, mode, value = _prepare(xs[0], ys[0], kernel, sigma, threshold, debiased, False)
    dtype = x0.dtype
    xs, ys = jnp.asarray(xs).astype(dtype), jnp.asarray(ys).astype(dtype)
    return _minibatch_scan(xs, ys, value, mode, debiased)


@functools.partial(jax.jit, static_argnames=("mode", "debiased"))
def _minibatch_scan(xs, ys, value, mode, debiased) -> CKAResult:
    def step(state, xy):
        hxy, hxx, hyy, sx, sy = _hsic_terms(xy[0], xy[1], mode, value, debiased)
        return MinibatchCKAState(
            state.hsic_xy + hxy,
            state.hsic_xx + hxx,
            state.hsic_yy + hyy,
            state.sigma_x + sx,
            state.sigma_y + sy,
            state.count + jnp.ones((), jnp.int32),
        ), None

    state, _ = jax.lax.scan(step, minibatch_cka_init(xs.dtype), (xs, ys))
    return minibatch_cka_finalize(state)
