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
from jaxcca._numerics import rescale_ratio
from jaxcca._results import CKAResult, MinibatchCKAState

__all__ = [
    "cka",
    "cka_distance",
    "cka_similarity",
    "minibatch_cka",
    "minibatch_cka_finalize",
    "minibatch_cka_init",
    "minibatch_cka_merge",
    "minibatch_cka_merge_across",
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
      each representation separately and is differentiated through. A
      bandwidth far below the data's scale (e.g. ``sigma=3`` with one neuron
      of 1e20) is handled at every magnitude: distances are then formed from
      the differences (``n x n x d`` work instead of a matrix product, chosen
      by a ``lax.cond``, so under ``vmap`` it is always computed), and a
      ``sigma^2`` that underflows gives its limit, the indicator of
      coinciding samples. (The relative bandwidth keeps the matrix product:
      it is below resolution only when most pairs nearly coincide.)
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
    """An empty :class:`MinibatchCKAState` (all sums 0, scales not set) of float ``dtype``.

    Example:
      >>> import jax.numpy as jnp, jaxcca
      >>> int(jaxcca.minibatch_cka_init(jnp.float32).n_batches)
      0
    """
    dtype = np.dtype(dtype)
    if dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise TypeError(f"dtype must be float32 or float64, got {dtype}.")
    z = jnp.zeros((), dtype)
    unset = jnp.full((), jnp.inf, dtype)
    return MinibatchCKAState(z, z, z, z, z, jnp.zeros((), jnp.int32), unset, unset)


def _rescaled(state: MinibatchCKAState, sx, sy) -> MinibatchCKAState:
    """``state`` with its sums in the (smaller or equal) running scales ``sx``, ``sy`` (exact)."""
    rx, ry = rescale_ratio(state.scale_x, sx), rescale_ratio(state.scale_y, sy)
    fx, fy = rx * rx, ry * ry  # HSIC is homogeneous of degree 2 in each side's scale
    return state._replace(
        hsic_xy=state.hsic_xy * fx * fy,
        hsic_xx=state.hsic_xx * fx * fx,
        hsic_yy=state.hsic_yy * fy * fy,
        scale_x=sx,
        scale_y=sy,
    )


def _merged(a: MinibatchCKAState, b: MinibatchCKAState) -> MinibatchCKAState:
    # The smaller scale of the two on each side (a not-set scale, inf, takes the other).
    sx, sy = jnp.minimum(a.scale_x, b.scale_x), jnp.minimum(a.scale_y, b.scale_y)
    a, b = _rescaled(a, sx, sy), _rescaled(b, sx, sy)
    return jax.tree.map(jnp.add, a._replace(scale_x=0.0, scale_y=0.0), b)._replace(
        scale_x=sx, scale_y=sy
    )


def _batch_state(x, y, value, mode, debiased, dtype) -> MinibatchCKAState:
    """One batch's HSIC terms as a state of ``dtype`` (in the batch's own scales)."""
    h = jax.tree.map(lambda a: a.astype(dtype), hsic_terms(x, y, mode, value, debiased))
    one = jnp.ones((), jnp.int32)
    return MinibatchCKAState(
        h.hsic_xy, h.hsic_xx, h.hsic_yy, h.sigma_x, h.sigma_y, one, h.scale_x, h.scale_y
    )


@functools.partial(jax.jit, static_argnames=("mode", "debiased"))
def _minibatch_update(state, x, y, value, mode, debiased):
    # The batch's terms are O(1) in its own scales; merging brings them exactly
    # to the state's, so a float32 state is right at any magnitude.
    return _merged(state, _batch_state(x, y, value, mode, debiased, state.hsic_xy.dtype))


def minibatch_cka_merge(a: MinibatchCKAState, b: MinibatchCKAState) -> MinibatchCKAState:
    """The state of the batches of ``a`` and of ``b`` together (exact).

    Both must come from the same options. Use it (or
    :func:`minibatch_cka_merge_across`) to combine states built on different
    devices or data shards; adding the leaves would mix their scales.

    Example:
      >>> import jax, jax.numpy as jnp, jaxcca
      >>> x = jax.random.normal(jax.random.key(0), (32, 4))
      >>> s = jaxcca.minibatch_cka_init(jnp.float32)
      >>> a = jaxcca.minibatch_cka_update(s, x[:16], 1e20 * x[:16])
      >>> b = jaxcca.minibatch_cka_update(s, x[16:], 1e20 * x[16:])
      >>> both = jaxcca.minibatch_cka_merge(a, b)
      >>> round(float(jaxcca.minibatch_cka_finalize(both).similarity), 5)
      1.0
    """
    if jax.tree.structure(a) != jax.tree.structure(b):
        raise TypeError("minibatch_cka_merge expects two MinibatchCKAState values.")
    return _merged(a, b)


def minibatch_cka_merge_across(state: MinibatchCKAState, axis_name) -> MinibatchCKAState:
    """Merges the states of all devices along ``axis_name`` (inside ``shard_map``/``pmap``).

    A ``pmin`` of the scales, an exact rescaling, then one ``psum`` of the sums.
    """
    sx = jax.lax.pmin(state.scale_x, axis_name)
    sy = jax.lax.pmin(state.scale_y, axis_name)
    state = _rescaled(state, sx, sy)
    sums = jax.lax.psum(state._replace(scale_x=0.0, scale_y=0.0), axis_name)
    return sums._replace(scale_x=sx, scale_y=sy)


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
    combined with :func:`minibatch_cka_merge_across` (or
    :func:`minibatch_cka_merge`) before finalising.

    The sums are kept in exact power-of-two scales (see
    :class:`MinibatchCKAState`), so a float32 state is right at any magnitude
    in the float32 range.

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
    # The similarity from the scaled sums (a ratio: the scales cancel exactly);
    # the HSIC fields in data units (these can leave the float32 range; the
    # similarity cannot).
    sim = cka_from_hsic(state.hsic_xy, state.hsic_xx, state.hsic_yy, debiased=True)
    one = jnp.ones((), state.hsic_xy.dtype)
    data = _rescaled(state, one, one)
    hxy, hxx, hyy = data.hsic_xy / c, data.hsic_xx / c, data.hsic_yy / c
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
    def step(state, xy):
        return _merged(state, _batch_state(xy[0], xy[1], value, mode, debiased, xs.dtype)), None

    state, _ = jax.lax.scan(step, minibatch_cka_init(xs.dtype), (xs, ys))
    return minibatch_cka_finalize(state)
