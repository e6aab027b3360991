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
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from jaxcca._checks import as_pair, raise_if_not_finite, validate_cka_options
from jaxcca._hsic import cka_from_hsic, hsic_terms
from jaxcca._numerics import pow2_scale
from jaxcca._results import CKAResult, MinibatchCKAState

__all__ = [
    "cka",
    "cka_distance",
    "cka_similarity",
    "minibatch_cka",
    "minibatch_cka_finalize",
    "minibatch_cka_init",
    "minibatch_cka_update",
]


@functools.partial(jax.jit, static_argnames=("mode", "debiased"))
def _cka(x, y, value, mode: str, debiased: bool) -> CKAResult:
    h = hsic_terms(x, y, mode, value, debiased)
    # CKA from the exactly rescaled terms; the HSIC fields in data units.
    sim = cka_from_hsic(h.hsic_xy, h.hsic_xx, h.hsic_yy, debiased)
    return CKAResult(sim, *h.in_data_units(), h.sigma_x, h.sigma_y)


def _prepare(x, y, kernel, sigma, threshold, debiased, check_finite):
    x, y = as_pair(x, y)
    mode, value = validate_cka_options(kernel, sigma, threshold, debiased, x.shape[0])
    if value is not None:
        value = jnp.asarray(value).astype(x.dtype)
    if check_finite:
        raise_if_not_finite(x, y)
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
      x: ``(n, d1)`` activations, float32 or float64 (float16 and bfloat16 are computed in float32).
      y: ``(n, d2)`` activations on the same ``n`` inputs.
      kernel: ``"linear"`` or ``"rbf"``. Static.
      sigma: absolute RBF bandwidth (> 0); scalar, may be traced. RBF only.
      threshold: relative RBF bandwidth (> 0), a multiple of the median pairwise
        distance; default 1.0 when ``kernel="rbf"`` and ``sigma`` is None.
      debiased: use the unbiased HSIC estimator. Static.
      check_finite: if True, raise ``ValueError`` when the inputs hold NaN or
        Inf. Needs concrete inputs: under jit or vmap it raises ValueError at
        trace time (check before the transformed call). Otherwise NaN input
        gives NaN output.

    Returns:
      A :class:`CKAResult`.

    Raises:
      ValueError: wrong rank or sample counts, unknown kernel, a bandwidth
        given for the linear kernel or both ``sigma`` and ``threshold``, a
        non-positive bandwidth, ``debiased=True`` with fewer than 4 samples.
      TypeError: integer, bool or complex dtype; float64 with 64-bit mode off;
        non-bool ``debiased``.

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


def minibatch_cka_init(dtype=jnp.float32) -> MinibatchCKAState:
    """An empty :class:`MinibatchCKAState` (all sums 0) of float ``dtype``.

    Example:
      >>> import jax.numpy as jnp, jaxcca
      >>> int(jaxcca.minibatch_cka_init(jnp.float32).n_batches)
      0
    """
    dtype = np.dtype(dtype)
    if dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise TypeError(f"dtype must be float32 or float64, got {dtype}.")
    z = jnp.zeros((), dtype)
    return MinibatchCKAState(z, z, z, z, z, jnp.zeros((), jnp.int32))


@functools.partial(jax.jit, static_argnames=("mode", "debiased"))
def _minibatch_update(state, x, y, value, mode, debiased):
    dtype = state.hsic_xy.dtype
    # In the state's dtype: a float64 state holds the HSIC of float32 batches
    # in data units at any magnitude.
    h = jax.tree.map(lambda a: a.astype(dtype), hsic_terms(x, y, mode, value, debiased))
    hxy, hxx, hyy = h.in_data_units()
    return MinibatchCKAState(
        state.hsic_xy + hxy,
        state.hsic_xx + hxx,
        state.hsic_yy + hyy,
        state.sigma_x + h.sigma_x,
        state.sigma_y + h.sigma_y,
        state.n_batches + jnp.ones((), jnp.int32),
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

    The sums are in data units (see :class:`MinibatchCKAState`): a float32
    state is right for activations of magnitude ~1e-9..1e9 only (NaN beyond,
    a silent 0 below ~1e-10); use a float64 state or rescale outside that.

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
    c = jnp.maximum(state.n_batches, 1).astype(state.hsic_xy.dtype)
    hxy, hxx, hyy = state.hsic_xy / c, state.hsic_xx / c, state.hsic_yy / c
    sim = cka_from_hsic(hxy, hxx, hyy, debiased=True)
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
    xs_: Any = xs if hasattr(xs, "ndim") else np.asarray(xs)
    ys_: Any = ys if hasattr(ys, "ndim") else np.asarray(ys)
    if xs_.ndim != 3 or ys_.ndim != 3 or xs_.shape[0] != ys_.shape[0]:
        raise ValueError(
            "minibatch_cka expects xs of shape (num_batches, batch, d1) and ys of shape "
            f"(num_batches, batch, d2) with the same num_batches, got {tuple(xs_.shape)} "
            f"and {tuple(ys_.shape)}. For one batch use jaxcca.cka; for batches of "
            "different sizes call jaxcca.minibatch_cka_update per batch."
        )
    x0, y0, mode, value = _prepare(xs_[0], ys_[0], kernel, sigma, threshold, debiased, False)
    dtype = x0.dtype
    xs_, ys_ = jnp.asarray(xs_).astype(dtype), jnp.asarray(ys_).astype(dtype)
    return _minibatch_scan(xs_, ys_, value, mode, debiased)


@functools.partial(jax.jit, static_argnames=("mode", "debiased"))
def _minibatch_scan(xs, ys, value, mode, debiased) -> CKAResult:
    # Exact power-of-two scales for all batches (CKA does not depend on them):
    # the HSIC sums stay in range at any magnitude. An absolute RBF bandwidth
    # is shared by x and y, so both then get the same scale, and it scales along.
    cx, cy = pow2_scale(xs), pow2_scale(ys)
    if mode == "sigma":
        cx = cy = jnp.minimum(cx, cy)
        value = value * cx

    def step(state, xy):
        h = hsic_terms(xy[0], xy[1], mode, value, debiased)
        hxy, hxx, hyy = h.in_data_units()
        return MinibatchCKAState(
            state.hsic_xy + hxy,
            state.hsic_xx + hxx,
            state.hsic_yy + hyy,
            state.sigma_x + h.sigma_x,
            state.sigma_y + h.sigma_y,
            state.n_batches + jnp.ones((), jnp.int32),
        ), None

    state, _ = jax.lax.scan(step, minibatch_cka_init(xs.dtype), (xs * cx, ys * cy))
    res = minibatch_cka_finalize(state)
    # Back to the units of the data (the HSIC fields can leave the float32
    # range there; the similarity cannot).
    ux, uy = (1.0 / (cx * cx), 1.0 / (cy * cy)) if mode == "linear" else (1.0, 1.0)
    return res._replace(
        hsic_xy=res.hsic_xy * ux * uy,
        hsic_xx=res.hsic_xx * ux * ux,
        hsic_yy=res.hsic_yy * uy * uy,
        sigma_x=res.sigma_x / cx,
        sigma_y=res.sigma_y / cy,
    )
