"""Every public result and state type; every field is present on every path (jit, vmap, eager)."""

from __future__ import annotations

from typing import NamedTuple

import jax
import numpy as np

__all__ = [
    "CCAResult",
    "CKAResult",
    "Comparison",
    "CovarianceState",
    "DFTCCAResult",
    "LayerStatistics",
    "MinibatchCKAState",
    "PWCCAResult",
    "ProcrustesResult",
    "SVCCAResult",
]


class CCAResult(NamedTuple):
    """Result of :func:`jaxcca.cca`.

    ``p = min(d1, d2)`` below; ``k = min(rank_x, rank_y)`` is the number of
    meaningful directions. Entries of ``rho`` past ``k`` are exactly 0 and the
    matching columns of the weights and variates are 0.

    Attributes:
      similarity: scalar, mean of the first ``k`` canonical correlations, in [0, 1].
      rho: ``(p,)`` canonical correlations, descending, in [0, 1].
      x_weights: ``(d1, p)`` canonical weights of x: ``x_variates ==
        (x - x.mean(0)) @ x_weights``.
      y_weights: ``(d2, p)`` canonical weights of y.
      x_variates: ``(n, p)`` canonical variates of x, orthonormal columns (unit
        Euclidean norm; multiply by ``sqrt(n - 1)`` for unit variance).
      y_variates: ``(n, p)`` canonical variates of y; ``x_variates[:, i] @
        y_variates[:, i] == rho[i]``.
      rank_x: scalar int, effective rank kept for x (dead, constant and
        duplicated neurons and directions below ``epsilon`` do not count).
      rank_y: scalar int, effective rank kept for y.
      n_trivial: scalar int, ``max(0, rank_x + rank_y - (n - 1))``: how many
        canonical correlations equal 1 for *any* data of these ranks, because
        two subspaces of the (n - 1)-dimensional centred sample space that are
        this large must intersect. When it is positive, CCA cannot tell the two
        representations apart in those directions: use more samples or
        :func:`jaxcca.svcca` with fewer kept directions.
    """

    similarity: jax.Array
    rho: jax.Array
    x_weights: jax.Array
    y_weights: jax.Array
    x_variates: jax.Array
    y_variates: jax.Array
    rank_x: jax.Array
    rank_y: jax.Array
    n_trivial: jax.Array


class SVCCAResult(NamedTuple):
    """Result of :func:`jaxcca.svcca`.

    Attributes:
      similarity: scalar, mean of the first ``min(keep_x, keep_y)`` canonical
        correlations between the SVD-reduced representations, in [0, 1].
      rho: ``(min(d1, d2),)`` canonical correlations, descending; zero past
        ``min(keep_x, keep_y)``.
      keep_x: scalar int, number of singular directions of x kept.
      keep_y: scalar int, number of singular directions of y kept.
      explained_x: scalar, fraction of x's variance in the kept directions.
      explained_y: scalar, fraction of y's variance in the kept directions.
      rank_x: scalar int, effective rank of x before reduction.
      rank_y: scalar int, effective rank of y before reduction.
      n_trivial: scalar int, ``max(0, keep_x + keep_y - (n - 1))`` (see
        :class:`CCAResult`).
    """

    similarity: jax.Array
    rho: jax.Array
    keep_x: jax.Array
    keep_y: jax.Array
    explained_x: jax.Array
    explained_y: jax.Array
    rank_x: jax.Array
    rank_y: jax.Array
    n_trivial: jax.Array


class PWCCAResult(NamedTuple):
    """Result of :func:`jaxcca.pwcca`.

    Attributes:
      similarity: scalar, ``sum(weights * rho)``, in [0, 1].
      weights: ``(min(d1, d2),)`` projection weights of x's canonical
        directions, non-negative, summing to 1; zero past ``min(rank_x, rank_y)``.
      rho: ``(min(d1, d2),)`` canonical correlations, descending.
      mean_rho: scalar, the unweighted mean canonical correlation
        (``jaxcca.cca(x, y).similarity``), for comparison.
      rank_x: scalar int, effective rank of x.
      rank_y: scalar int, effective rank of y.
      n_trivial: scalar int (see :class:`CCAResult`).
    """

    similarity: jax.Array
    weights: jax.Array
    rho: jax.Array
    mean_rho: jax.Array
    rank_x: jax.Array
    rank_y: jax.Array
    n_trivial: jax.Array


class DFTCCAResult(NamedTuple):
    """Result of :func:`jaxcca.dft_cca`.

    The frequency grid ``(Hg, Wg)`` is in FFT order (index ``i`` is the signed
    frequency ``frequencies[i, j, 0]``, as ``np.fft.fftfreq(Hg) * Hg``); it is
    ``(H, W)`` for equal spatial sizes and the common low-frequency band
    otherwise. ``p = min(C1, C2)``.

    Attributes:
      similarity: scalar, mean canonical correlation over the full frequency
        grid and all directions: the sum of ``rho`` divided by the number of
        meaningful directions ``min(sum(rank_x), sum(rank_y))``. Equal to
        :func:`jaxcca.cca` of the flattened ``H*W*C`` neurons on
        translation-invariant data (Theorem 1 of Raghu et al. 2017).
      weighted_similarity: scalar, ``sum(weights * rho)``: the
        projection-weighted aggregate (see :func:`jaxcca.dft_cca`).
      rho: ``(Hg, Wg, p)`` canonical correlations at every frequency,
        descending along the last axis, zero past that frequency's
        ``min(rank_x, rank_y)``. Conjugate frequencies hold equal values.
      weights: ``(Hg, Wg, p)`` projection weights of x's directions, summing to
        1 over the whole grid.
      rank_x: ``(Hg, Wg)`` int, complex rank of x's channel coefficients at each
        frequency.
      rank_y: ``(Hg, Wg)`` int, the same for y.
      frequencies: ``(Hg, Wg, 2)`` int, the signed frequencies (cycles per
        image height and width) of each grid cell.
    """

    similarity: jax.Array
    weighted_similarity: jax.Array
    rho: jax.Array
    weights: jax.Array
    rank_x: jax.Array
    rank_y: jax.Array
    frequencies: jax.Array


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


class ProcrustesResult(NamedTuple):
    """Result of :func:`jaxcca.procrustes`.

    ``p = max(d1, d2)``: the narrower representation is zero-padded to ``p``
    neurons.

    Attributes:
      similarity: scalar ``||x_n^T y_n||_*`` in [0, 1], the cosine of the
        angular distance; 1 iff ``y`` is a rotated, scaled and translated copy
        of ``x``. 0 when either side is constant.
      distance: scalar ``min_R ||x_n - y_n R||_F = sqrt(2 - 2 similarity)``, in
        [0, sqrt(2)] (Ding et al. 2021's Procrustes distance on unit-norm data).
      angular_distance: scalar ``arccos(similarity)`` in [0, pi / 2] (netrep's
        ``LinearMetric(alpha=1, score_method="angular")``).
      rotation: ``(p, p)`` orthogonal ``R*`` with ``y_n R* ~ x_n`` (zero-padded,
        unit-norm, centred data). Not unique where ``x_n^T y_n`` is singular.
    """

    similarity: jax.Array
    distance: jax.Array
    angular_distance: jax.Array
    rotation: jax.Array


class MinibatchCKAState(NamedTuple):
    """Running sums for minibatch CKA (a pytree: jit, scan and vmap friendly).

    For the linear kernel HSIC scales with the fourth power of the
    activations, so the sums are kept in scaled units: x is multiplied by the
    power of two ``scale_x`` (exact) before its HSIC terms are added, and y by
    ``scale_y``. The scales are chosen from the first batch with a nonzero
    finite centred value (its maximum brought into [0.5, 1)); when a later
    batch or a merged state needs a smaller scale, the sums are rescaled (by
    powers of two, exact). A float32 state therefore holds activations of any
    magnitude in the float32 range. RBF kernel values do not depend on the
    scale, so an RBF state has scales 1. Because of the scales, states from
    several devices are combined with :func:`jaxcca.minibatch_cka_merge` or
    :func:`jaxcca.minibatch_cka_merge_across`, not by adding leaves.

    Attributes:
      hsic_xy: scalar, sum of per-batch HSIC(x, y) estimates (scaled units:
        in data units ``hsic_xy / (s_x**2 s_y**2)``, ``s`` the scale where
        finite, else 1).
      hsic_xx: scalar, sum of per-batch HSIC(x, x) estimates (``/ s_x**4``).
      hsic_yy: scalar, sum of per-batch HSIC(y, y) estimates (``/ s_y**4``).
      sigma_x: scalar, sum of per-batch RBF bandwidths of x in data units (0
        for linear).
      sigma_y: scalar, sum of per-batch RBF bandwidths of y (0 for linear).
      n_batches: scalar int32, number of batches accumulated.
      scale_x: scalar power of two for x; ``inf`` until a batch with a
        nonzero finite centred value is seen.
      scale_y: scalar, the same for y.
    """

    hsic_xy: jax.Array
    hsic_xx: jax.Array
    hsic_yy: jax.Array
    sigma_x: jax.Array
    sigma_y: jax.Array
    n_batches: jax.Array
    scale_x: jax.Array
    scale_y: jax.Array


class CovarianceState(NamedTuple):
    """Sufficient statistics of two layers (a pytree).

    The co-moments are kept in scaled units, so that float32 statistics hold
    data of any magnitude (1e-30..1e30, or one neuron 1e20 times larger than
    the rest) without overflow or underflow: neuron ``j`` of x is multiplied
    by the power of two ``scale_x[j]`` (exact) before its products are
    formed. The scale is chosen per neuron from the first batch that has a
    nonzero finite value in it (``pow2_scale``: the neuron's maximum brought
    into [0.5, 1)); when a later batch or a merged state needs a smaller scale,
    the statistics are rescaled (by powers of two, exact). Unscaled
    co-moments: ``sxx / (s[:, None] * s[None, :])`` with ``s`` equal to
    ``scale_x`` where finite, else 1.

    Attributes:
      n_samples: scalar, number of samples seen (float, so that it ``psum``s).
      mean_x: ``(d1,)`` running mean of x (in the units of x).
      mean_y: ``(d2,)`` running mean of y.
      sxx: ``(d1, d1)`` scaled centred co-moment ``sum (s_x * (x - mean_x))
        (s_x * (x - mean_x))^T`` with ``s_x = scale_x``.
      syy: ``(d2, d2)`` scaled centred co-moment of y.
      sxy: ``(d1, d2)`` scaled centred cross co-moment.
      scale_x: ``(d1,)`` the per-neuron powers of two; ``inf`` for a neuron not
        yet seen with a nonzero finite value.
      scale_y: ``(d2,)`` the same for y.
    """

    n_samples: jax.Array
    mean_x: jax.Array
    mean_y: jax.Array
    sxx: jax.Array
    syy: jax.Array
    sxy: jax.Array
    scale_x: jax.Array
    scale_y: jax.Array


class PermutationResult(NamedTuple):
    """Result of :func:`jaxcca.permutation_test`.

    Attributes:
      statistic: scalar, the measure on ``(x, y)`` (equal to the single-pair
        ``*_similarity`` to round-off).
      null: ``(n_permutations,)`` the measure on ``(x, y[perm_i])`` for each
        random permutation ``perm_i`` of the rows of ``y``.
      p_value: scalar, ``(1 + #{null >= statistic}) / (1 + n_permutations)``,
        in ``[1 / (1 + n_permutations), 1]``.
      adjusted: scalar, the chance-corrected score ``(statistic - mean(null)) /
        (1 - mean(null))``: about 0 for independent data at any width, 1 for
        ``x == y``; 0 when ``mean(null) == 1``.
    """

    statistic: jax.Array
    null: jax.Array
    p_value: jax.Array
    adjusted: jax.Array


class BootstrapResult(NamedTuple):
    """Result of :func:`jaxcca.bootstrap`.

    Attributes:
      statistic: scalar, the measure on ``(x, y)``.
      samples: ``(n_resamples,)`` the measure on each resample of pairs of rows.
      low: scalar, the ``(1 - confidence) / 2`` quantile of ``samples``.
      high: scalar, the ``(1 + confidence) / 2`` quantile of ``samples``.
    """

    statistic: jax.Array
    samples: jax.Array
    low: jax.Array
    high: jax.Array


class Comparison(NamedTuple):
    """Every layer of one model against every layer of another.

    Attributes:
      matrix: ``(La, Lb)`` similarities, ``matrix[i, j]`` between
        ``layers_a[i]`` and ``layers_b[j]`` (PWCCA weights by ``layers_a[i]``).
      layers_a: names of the rows.
      layers_b: names of the columns.
      measure: the measure's name (``"minibatch_cka"`` for the minibatch
        estimator).
      options: the measure's options and the reductions used (a dict).
      n_samples: number of samples the statistics were accumulated over.
    """

    matrix: np.ndarray
    layers_a: tuple[str, ...]
    layers_b: tuple[str, ...]
    measure: str
    options: dict
    n_samples: int


class LayerStatistics(NamedTuple):
    """What one pass over the data accumulated (input of :func:`similarity_matrix`).

    Attributes:
      moments: the joint co-moments as a :class:`jaxcca.streaming.CovarianceState`
        (``x``: every layer of a side by side; ``y``: every layer of b, or
        width 0 when b is a itself), or None when not accumulated.
      minibatch: ``La`` rows, each a :class:`jaxcca.MinibatchCKAState` whose
        leaves have shape ``(Lb,)``, or None when not accumulated (its sums
        are in the state's power-of-two scales, so a float32 state holds any
        magnitude).
      minibatch_options: the options of the minibatch HSIC estimates (a dict).
      layers_a: names of a's layers.
      layers_b: names of b's layers.
      widths_a: reduced width of each of a's layers.
      widths_b: reduced width of each of b's layers.
      same: whether b is a (the columns are the rows' layers).
      reductions: the ``conv`` and ``tokens`` reductions used (a dict).
      n_samples: number of samples (rows of the reduced layers) seen.
    """

    moments: CovarianceState | None
    minibatch: tuple | None
    minibatch_options: dict
    layers_a: tuple[str, ...]
    layers_b: tuple[str, ...]
    widths_a: tuple[int, ...]
    widths_b: tuple[int, ...]
    same: bool
    reductions: dict
    n_samples: int
