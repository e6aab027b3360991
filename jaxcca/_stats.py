"""Permutation tests and bootstrap intervals for every measure, in one compiled call.

A similarity score means little without a null: the mean CCA of *independent*
Gaussian data is about 0.2 with 16 neurons and 0.58 with 128 neurons at
``n = 300``. :func:`permutation_test` gives the null distribution of a measure
(``x`` against ``y`` with its rows shuffled), a p-value and a chance-corrected
score; :func:`bootstrap` gives a percentile interval from resampled pairs of
rows.

How the permutation test is fast (factor once, then one product per draw):

* CCA, SVCCA, PWCCA: permuting the rows of ``y`` permutes the rows of its
  orthonormal basis, and nothing else changes (the whitening of ``P y`` is
  ``P`` times the whitening of ``y``). So each representation is whitened once
  (the per-representation ``prepare`` of ``jaxcca._pairwise.MEASURES``) and a draw is
  ``q_x^T (P q_y)`` (one ``n x d1 x d2`` product) plus the small ``d1 x d2``
  decomposition of the pair (the same table's ``pair``; PWCCA's
  weights come from ``x``'s factor, which permuting ``y`` leaves alone).
* Linear CKA in feature form: ``||x_c^T P y_c||_F^2`` (plus, debiased, the dot
  product of ``x``'s row norms with ``y``'s permuted ones), one product per draw;
  the self-terms ``HSIC(x, x)``, ``HSIC(y, y)`` do not change.
* RBF CKA and linear CKA in Gram form: the centred (or U-centred) Gram matrix
  of ``P y`` is ``P L~ P^T``, so a draw is one ``n x n`` gather and an inner
  product with ``x``'s ``K~``: ``O(n^2)`` per draw, no kernel is recomputed.
* Procrustes: the nuclear norm of ``x_n^T P y_n`` after the unit-Frobenius
  scaling, which a permutation of rows does not change.
* DFT-CCA: the measure is recomputed per draw (``dft_cca_similarity`` of
  ``x`` and ``y`` with its samples ``N`` permuted, vmapped): the per-frequency
  whitening is not factored out.

Draws run in chunks (``jax.lax.map`` over ``vmap``-ed chunks of
``chunk_size`` draws), so memory is bounded for any number of draws, and the
draws are spread over ``jax.devices()`` with ``jax.shard_map``. Draw ``i`` is
seeded by ``jax.random.fold_in(key, i)`` alone, so results do not depend on the
chunk size or the number of devices. Generating a permutation is one sort of
``n`` random keys per draw (:func:`permutation_indices`); on CPU at ``n =
2000`` it costs about as much as the ``d = 64`` product.
"""

from __future__ import annotations

import functools
import numbers
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh
from jax.sharding import PartitionSpec as P

from jaxcca._cca import cca_similarity
from jaxcca._checks import as_pair, validate_cka_options, validate_convention, validate_keep
from jaxcca._dft import dft_cca_similarity
from jaxcca._hsic import (
    center_gram,
    centred,
    cka_from_hsic,
    hsic_terms,
    linear_hsic_features,
    rbf_gram,
    use_feature_form,
)
from jaxcca._linalg import singular_values
from jaxcca._numerics import mm, pow2_scale
from jaxcca._pairwise import MEASURES as PAIRWISE_MEASURES
from jaxcca._procrustes import procrustes_similarity, unit_frobenius
from jaxcca._pwcca import pwcca_similarity
from jaxcca._results import BootstrapResult, PermutationResult
from jaxcca._svcca import svcca_similarity

__all__ = ["MEASURE_OPTIONS", "bootstrap", "permutation_indices", "permutation_test"]

# Each measure's options and defaults: those of its single-pair function.
MEASURE_OPTIONS: dict[str, dict] = {
    "cca": {"epsilon": None},
    "svcca": {"epsilon": None, "keep": 0.99},
    "pwcca": {"epsilon": None, "convention": "paper"},
    "cka": {"kernel": "linear", "sigma": None, "threshold": None, "debiased": False},
    "procrustes": {},
    "dft_cca": {"weighting": "mean", "epsilon": None},
}

_SIMILARITY = {
    "cca": cca_similarity,
    "svcca": svcca_similarity,
    "pwcca": pwcca_similarity,
    "procrustes": procrustes_similarity,
    "dft_cca": dft_cca_similarity,
}

# Memory for one chunk of draws in flight (the gathered rows or Gram matrices).
_CHUNK_BYTES = 1 << 26
_MAX_CHUNK = 64


def permutation_indices(key: jax.Array, i, n: int) -> jax.Array:
    """The row permutation of draw ``i``: a uniformly random permutation of ``range(n)``.

    The rows sorted by 64 random bits each (two ``uint32`` keys from
    ``jax.random.fold_in(key, i)``), one sort, which on CPU is about 1.5x
    faster than ``jax.random.permutation`` (two rounds of 32-bit keys); a tie,
    which would keep two rows in order, has probability ``~n^2 / 2^65``.
    """
    hi, lo = jax.random.bits(jax.random.fold_in(key, i), (2, n), jnp.uint32)
    return jax.lax.sort((hi, lo, jnp.arange(n, dtype=jnp.int32)), num_keys=2)[2]


def _resample_indices(key: jax.Array, i, n: int) -> jax.Array:
    """The rows of bootstrap draw ``i``: ``n`` indices drawn uniformly with replacement."""
    return jax.random.randint(jax.random.fold_in(key, i), (n,), 0, n)


# ----------------------------------------------------------------------------
# Per-measure plans: (data computed once, per-draw function of the indices)
# ----------------------------------------------------------------------------


def _procrustes_pair(xn, okx, yn, oky):
    # Nuclear norm of x_n^T y_n (jaxcca.procrustes_similarity), 0 for a constant side.
    s = jnp.sum(singular_values(mm(xn.T, yn)))
    return jnp.where(okx & oky, jnp.clip(s, 0.0, 1.0), 0.0) + 0.0 * s


def _cka_parts(x, y, value, mode, debiased):
    """What a CKA permutation draw needs from ``x`` and ``y``, computed once."""
    (xc, okx), (yc, oky) = centred(x), centred(y)
    n, d1, d2 = x.shape[0], x.shape[1], y.shape[1]
    # Exact power-of-two rescaling of each side (as in jaxcca.cka): CKA is a ratio of
    # terms homogeneous in each side's scale, so the scaled terms give the same value
    # at any magnitude of the data.
    cx, cy = pow2_scale(xc), pow2_scale(yc)
    xs, ys = xc * cx, yc * cy
    fx = fy = jnp.ones((), x.dtype)
    if mode == "linear":
        if use_feature_form(n, d1, d2):
            _, hxx, hyy = linear_hsic_features(xs, ys, debiased)
            parts = {"xs": xs, "ys": ys, "rx": jnp.sum(xs * xs, 1), "ry": jnp.sum(ys * ys, 1)}
            form = "features"
        else:
            kx, ky = mm(xs, xs.T), mm(ys, ys.T)
            form = "gram"
    else:
        # An absolute bandwidth scales with the data: the kernel is unchanged.
        vx = value * cx if mode == "sigma" else value
        vy = value * cy if mode == "sigma" else value
        kx, ky = rbf_gram(xs, mode, vx)[0], rbf_gram(ys, mode, vy)[0]
        form = "gram"
    if form == "gram":
        a, b = center_gram(kx, debiased), center_gram(ky, debiased)
        scale = 1.0 / float(n * (n - 3)) if debiased else 1.0 / float((n - 1) ** 2)
        hxx, hyy = jnp.sum(a * a) * scale, jnp.sum(b * b) * scale
        parts = {"a": a, "b": b}
    parts.update(hxx=hxx * fx * fx, hyy=hyy * fy * fy, fxy=fx * fy, okx=okx, oky=oky)
    return form, parts


def _cka_draw(form, debiased, parts, idx):
    n = parts["a"].shape[0] if form == "gram" else parts["xs"].shape[0]
    if form == "gram":
        scale = 1.0 / float(n * (n - 3)) if debiased else 1.0 / float((n - 1) ** 2)
        b = parts["b"][idx][:, idx]  # the centred Gram of P y is P L~ P^T
        hxy = jnp.sum(parts["a"] * b) * scale
    else:
        c = mm(parts["xs"].T, parts["ys"][idx])
        s = jnp.sum(c * c)
        if debiased:  # linear_hsic_features with y's rows permuted
            rx, ry = parts["rx"], parts["ry"][idx]
            tx, ty = jnp.sum(rx), jnp.sum(ry)
            s = s - float(n) / float(n - 2) * jnp.sum(rx * ry) + tx * ty / float((n - 1) * (n - 2))
            hxy = s / float(n * (n - 3))
        else:
            hxy = s / float((n - 1) ** 2)
    hxy = jnp.where(parts["okx"] & parts["oky"], hxy * parts["fxy"], 0.0)
    hxx = jnp.where(parts["okx"], parts["hxx"], 0.0)
    hyy = jnp.where(parts["oky"], parts["hyy"], 0.0)
    return cka_from_hsic(hxy, hxx, hyy, debiased)


def _permutation_plan(x, y, value, measure, opts):
    """``(data, draw)`` with ``draw(data, perm)`` the measure on ``(x, y[perm])``."""
    if measure in PAIRWISE_MEASURES and measure != "cka":
        spec = PAIRWISE_MEASURES[measure]
        prep = functools.partial(spec.prepare, **{k: opts[k] for k in spec.prepare_options})
        pair = functools.partial(spec.pair, **{k: opts[k] for k in spec.pair_options})
        dx, dy = prep(x), prep(y)

        def draw(data, perm):
            dx, dy = data
            rest_x = {k: v for k, v in dx.items() if k != "q"}
            rest_y = {k: v for k, v in dy.items() if k != "q"}
            return pair(mm(dx["q"].T, dy["q"][perm]), rest_x, rest_y)

        return (dx, dy), draw
    if measure == "cka":
        mode, debiased = opts["mode"], opts["debiased"]
        form, parts = _cka_parts(x, y, value, mode, debiased)
        return parts, functools.partial(_cka_draw, form, debiased)
    if measure == "procrustes":
        data = (*unit_frobenius(x), *unit_frobenius(y))

        def draw_procrustes(data, perm):
            xn, okx, yn, oky = data
            return _procrustes_pair(xn, okx, yn[perm], oky)

        return data, draw_procrustes
    # dft_cca: recomputed per draw (the per-frequency whitening is not factored out).
    return (x, y), lambda data, perm: _recompute(measure, opts, value, data[0], data[1][perm])


def _recompute(measure, opts, value, x, y):
    """The single-pair similarity, recomputed from scratch."""
    if measure == "cka":
        h = hsic_terms(x, y, opts["mode"], value, opts["debiased"])
        return cka_from_hsic(h.hsic_xy, h.hsic_xx, h.hsic_yy, opts["debiased"])
    kw = {k: v for k, v in opts.items()}
    return _SIMILARITY[measure](x, y, **kw)


# ----------------------------------------------------------------------------
# Draws in chunks, spread over devices
# ----------------------------------------------------------------------------


def _draws(fn, data, key, n_draws, chunk, devices):
    """``[fn(data, key, i) for i in range(-1, n_draws)]`` in chunks, over ``devices``.

    Draw ``-1`` is the observed data (identity indices): the statistic goes
    through the same compiled code as the draws. The draws are padded to whole
    chunks on every device (the extra ones are computed and dropped), so that
    one vectorised body is compiled.
    """
    n_dev = len(devices)
    per_device = -(-(n_draws + 1) // n_dev)
    n_chunks = -(-per_device // max(1, min(chunk, per_device)))
    chunk = -(-per_device // n_chunks)  # even chunks: fewer than n_chunks draws wasted

    def local(ids, data, key):
        out = jax.lax.map(jax.vmap(lambda i: fn(data, key, i)), ids.reshape(n_chunks, chunk))
        return out.reshape(-1)

    ids = jnp.arange(n_dev * n_chunks * chunk, dtype=jnp.int32) - 1
    if n_dev == 1:
        out = local(ids, data, key)
    else:
        mesh = Mesh(np.array(devices), ("draws",))
        sharded = jax.shard_map(
            lambda ids, data, key: jax.lax.all_gather(local(ids, data, key), "draws", tiled=True),
            mesh=mesh,
            in_specs=(P("draws"), P(), P()),
            out_specs=P(),
            check_vma=False,
        )
        out = sharded(ids, data, key)
    return out[0], out[1 : n_draws + 1]


def _indices(i, random_indices):
    """``random_indices`` for a draw ``i >= 0``, the identity for the observed data (-1)."""
    n = random_indices.shape[0]
    return jnp.where(i < 0, jnp.arange(n, dtype=random_indices.dtype), random_indices)


@functools.partial(
    jax.jit, static_argnames=("measure", "static_opts", "n_draws", "chunk", "devices")
)
def _permutation(x, y, key, value, *, measure, static_opts, n_draws, chunk, devices):
    opts = dict(static_opts)
    n = x.shape[0]
    data, draw = _permutation_plan(x, y, value, measure, opts)

    def one(data, key, i):
        return draw(data, _indices(i, permutation_indices(key, i, n)))

    statistic, null = _draws(one, data, key, n_draws, chunk, devices)
    p_value = (1.0 + jnp.sum(null >= statistic).astype(null.dtype)) / float(n_draws + 1)
    mean = jnp.mean(null)
    den = 1.0 - mean
    adjusted = jnp.where(den > 0, (statistic - mean) / jnp.where(den > 0, den, 1.0), 0.0)
    return PermutationResult(statistic, null, p_value, adjusted)


@functools.partial(
    jax.jit, static_argnames=("measure", "static_opts", "n_draws", "chunk", "devices", "confidence")
)
def _bootstrap(x, y, key, value, *, measure, static_opts, n_draws, chunk, devices, confidence):
    opts = dict(static_opts)
    n = x.shape[0]

    def one(data, k, i):
        idx = _indices(i, _resample_indices(k, i, n))
        return _recompute(measure, opts, value, data[0][idx], data[1][idx])

    statistic, samples = _draws(one, (x, y), key, n_draws, chunk, devices)
    alpha = 0.5 * (1.0 - confidence)
    low, high = jnp.quantile(samples, jnp.array([alpha, 1.0 - alpha], samples.dtype))
    return BootstrapResult(statistic, samples, low, high)


# ----------------------------------------------------------------------------
# Validation
# ----------------------------------------------------------------------------


def _check_common(measure, n_draws, name, key, chunk_size, devices, options):
    if measure not in MEASURE_OPTIONS:
        raise ValueError(f"measure must be one of {sorted(MEASURE_OPTIONS)}, got {measure!r}.")
    unknown = set(options) - set(MEASURE_OPTIONS[measure])
    if unknown:
        raise ValueError(
            f"unknown option(s) {sorted(unknown)} for measure {measure!r}; it accepts "
            f"{sorted(MEASURE_OPTIONS[measure]) or 'none'} (those of the single-pair function)."
        )
    for arg, val, low in ((name, n_draws, 1), ("chunk_size", chunk_size, 1)):
        if val is None and arg == "chunk_size":
            continue
        if isinstance(val, bool) or not isinstance(val, (int, np.integer)):
            raise TypeError(
                f"{arg} must be a Python int, got {val!r} of type {type(val).__name__}."
            )
        if val < low:
            raise ValueError(f"{arg} must be >= {low}, got {val}.")
    if key is None or not hasattr(key, "dtype"):
        raise TypeError(
            f"key must be a JAX PRNG key (e.g. jax.random.key(0)), got {key!r}. It is a "
            "traced argument, so the test can run under jit."
        )
    devices = tuple(devices) if devices is not None else tuple(jax.devices())
    if not devices:
        raise ValueError("devices is empty; pass None for all of jax.devices().")
    return devices


def _prepare(x, y, measure, options):
    """Checks the data and options; returns ``(x, y, value, static_opts)``."""
    opts = {**MEASURE_OPTIONS[measure], **options}
    if measure == "dft_cca":
        x, y = as_pair(x, y, ndim=4)
        if opts["weighting"] not in ("mean", "projection"):
            raise ValueError(
                f"weighting must be one of ('mean', 'projection'), got {opts['weighting']!r}."
            )
    else:
        x, y = as_pair(x, y)
    value = None
    if measure == "cka":
        mode, value = validate_cka_options(
            opts["kernel"], opts["sigma"], opts["threshold"], opts["debiased"], x.shape[0]
        )
        if value is not None:
            value = jnp.asarray(value).astype(x.dtype)
        opts = {"mode": mode, "debiased": opts["debiased"]}
    if "keep" in opts:
        opts["keep"] = validate_keep(opts["keep"])
    if "convention" in opts:
        opts["convention"] = validate_convention(opts["convention"])
    return x, y, value, tuple(sorted(opts.items()))


def _auto_chunk(x, y, measure, options, kind):
    """Draws per chunk: at most ``_MAX_CHUNK``, and about ``_CHUNK_BYTES`` in flight."""
    n = x.shape[0]
    item = np.dtype(x.dtype).itemsize
    width = int(np.prod(x.shape[1:])) + int(np.prod(y.shape[1:]))
    if kind == "permutation" and measure == "cka":
        gram = options.get("kernel", "linear") == "rbf" or not use_feature_form(
            n, x.shape[1], y.shape[1]
        )
        per_draw = 2 * n * n * item if gram else n * width * item
    elif kind == "permutation" and measure != "dft_cca":
        per_draw = n * width * item
    else:  # recomputed per draw: the whitening's intermediates
        per_draw = 8 * n * width * item
    return int(max(1, min(_MAX_CHUNK, _CHUNK_BYTES // max(per_draw, 1))))


def _check_confidence(confidence):
    if isinstance(confidence, bool) or not isinstance(confidence, numbers.Real):
        raise TypeError(f"confidence must be a Python float in (0, 1), got {confidence!r}.")
    if not 0.0 < float(confidence) < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}.")
    return float(confidence)


# ----------------------------------------------------------------------------
# Public API
# ----------------------------------------------------------------------------


def permutation_test(
    x: jax.Array,
    y: jax.Array,
    *,
    measure: str = "cca",
    n_permutations: int = 1000,
    key: jax.Array,
    chunk_size: int | None = None,
    devices: Sequence[Any] | None = None,
    **options,
) -> PermutationResult:
    r"""Permutation null, p-value and chance-corrected score of a similarity.

    The null distribution is the measure on ``(x, y[perm])`` for random
    permutations ``perm`` of the rows (samples) of ``y``: shuffling breaks any
    pairing between the two representations while keeping each one's own
    structure (widths, spectra, dead neurons), so it is what the measure gives
    for *unrelated* data of exactly this shape. Then

    * ``p_value = (1 + #{null >= statistic}) / (1 + n_permutations)``, which is
      exact (valid at every level) when the rows are exchangeable, and is at
      least ``1 / (1 + n_permutations)``;
    * ``adjusted = (statistic - mean(null)) / (1 - mean(null))``, a
      chance-corrected score: about 0 for independent data at any width, 1 for
      ``x == y`` (in the spirit of the adjusted Rand index). It is 0 when
      ``mean(null) == 1`` (e.g. CCA with ``d1 + d2 >= n``, where every
      correlation is 1 for any data: nothing can be told apart).

    Fast path (see :mod:`jaxcca._stats`): each representation is factored once
    and a draw costs one ``n x d1 x d2`` product and a small decomposition
    (CCA, SVCCA, PWCCA, Procrustes, linear CKA in feature form), or an ``n x
    n`` gather (RBF CKA, linear CKA in Gram form). DFT-CCA recomputes the
    measure per draw (vmapped). Equal to the single-pair function on
    ``(x, y[perm])`` draw for draw, to round-off.

    Draw ``i`` uses the permutation ``jaxcca._stats.permutation_indices(key, i,
    n)``, seeded by ``jax.random.fold_in(key, i)`` alone, so the null does not
    depend on ``chunk_size`` or the devices. Pure: works under ``jit`` (``key`` is a traced
    argument; ``measure``, ``n_permutations``, ``chunk_size`` and the options
    are static) and ``vmap`` (e.g. over many pairs or keys). The draws are
    spread over ``devices`` with ``jax.shard_map``; memory holds one chunk of
    draws per device.

    Args:
      x: ``(n, d1)`` activations (``(N, H, W, C)`` for ``dft_cca``); rows are samples.
      y: ``(n, d2)`` activations on the same inputs; its rows are permuted.
      measure: ``"cca"``, ``"svcca"``, ``"pwcca"``, ``"cka"`` (every kernel and
        estimator), ``"procrustes"`` (similarity) or ``"dft_cca"``.
      n_permutations: number of random permutations (draws).
      key: a JAX PRNG key, e.g. ``jax.random.key(0)``.
      chunk_size: draws per vectorised chunk (default: up to 64, fewer when
        a draw's gathered data are large).
      devices: devices to spread the draws over (default ``jax.devices()``).
      **options: the measure's options, as in its single-pair function:
        ``epsilon`` (cca, svcca, pwcca, dft_cca), ``keep`` (svcca),
        ``convention`` (pwcca), ``kernel``, ``sigma``, ``threshold``,
        ``debiased`` (cka), ``weighting`` (dft_cca).

    Returns:
      A :class:`PermutationResult`.

    Raises:
      ValueError: unknown measure or option, bad sizes, the errors of the
        single-pair function.
      TypeError: non-float data, a missing key, non-int counts.

    Example:
      >>> import jax, jaxcca
      >>> kx, ky = jax.random.split(jax.random.key(0))
      >>> x = jax.random.normal(kx, (300, 32))
      >>> y = jax.random.normal(ky, (300, 32))  # unrelated to x
      >>> res = jaxcca.permutation_test(x, y, n_permutations=200, key=jax.random.key(1))
      >>> round(float(res.statistic), 1), bool(res.p_value > 0.05), abs(float(res.adjusted)) < 0.05
      (0.3, True, True)
      >>> res = jaxcca.permutation_test(x, x + y, n_permutations=200, key=jax.random.key(1))
      >>> round(float(res.p_value) * 201, 4)  # the smallest possible: 1 / (1 + 200)
      1.0

    References:
      Good, "Permutation, parametric and bootstrap tests of hypotheses",
      Springer 2005 (the ``(1 + #) / (1 + B)`` p-value, section 3).
      Phipson & Smyth, "Permutation p-values should never be zero", Stat.
      Appl. Genet. Mol. Biol. 2010.
    """
    devices = _check_common(
        measure, n_permutations, "n_permutations", key, chunk_size, devices, options
    )
    x, y, value, static_opts = _prepare(x, y, measure, options)
    chunk = chunk_size or _auto_chunk(x, y, measure, options, "permutation")
    return _permutation(
        x,
        y,
        key,
        value,
        measure=measure,
        static_opts=static_opts,
        n_draws=int(n_permutations),
        chunk=int(chunk),
        devices=devices,
    )


def bootstrap(
    x: jax.Array,
    y: jax.Array,
    *,
    measure: str = "cca",
    n_resamples: int = 1000,
    key: jax.Array,
    confidence: float = 0.95,
    chunk_size: int | None = None,
    devices: Sequence[Any] | None = None,
    **options,
) -> BootstrapResult:
    r"""Bootstrap distribution and percentile interval of a similarity.

    Each resample draws ``n`` rows with replacement and keeps the *pairs*
    ``(x[i], y[i])`` together, so it estimates the sampling variability of the
    measure over the inputs (the stimuli), with the two networks fixed. The
    interval is the percentile interval ``[q_{(1-c)/2}, q_{(1+c)/2}]`` of the
    resampled values (Efron & Tibshirani 1993, ch. 13).

    When it is biased: a resample repeats about 37% of the rows, so it holds
    only about ``0.63 n`` distinct samples. Measures whose value depends on
    the number of samples per neuron are then biased *upward*: CCA, SVCCA and
    PWCCA of two ``d``-neuron representations with ``d`` not small compared
    with ``0.63 n`` (at ``d`` close to that, duplicated rows make the data rank
    deficient and many correlations are 1 whatever the data), and the
    biased (``debiased=False``) CKA estimators at small ``n``. The interval
    then sits above the statistic; compare it with a permutation null at the
    same ``n``, use more samples, or prefer ``debiased=True`` CKA.

    Unlike :func:`permutation_test`, every resample changes both
    representations' whitening, so the measure is recomputed per draw (vmapped
    in chunks, spread over ``devices``). Draw ``i`` uses the rows
    ``jax.random.randint(jax.random.fold_in(key, i), (n,), 0, n)``.

    Pure: works under ``jit`` and ``vmap`` like :func:`permutation_test`.

    Args:
      x: ``(n, d1)`` activations (``(N, H, W, C)`` for ``dft_cca``).
      y: ``(n, d2)`` activations on the same inputs.
      measure: as in :func:`permutation_test`.
      n_resamples: number of bootstrap resamples.
      key: a JAX PRNG key.
      confidence: coverage of the percentile interval, in (0, 1). Static.
      chunk_size: resamples per vectorised chunk (default: up to 64, fewer
        for large inputs).
      devices: devices to spread the resamples over (default ``jax.devices()``).
      **options: the measure's options (see :func:`permutation_test`).

    Returns:
      A :class:`BootstrapResult`.

    Raises:
      ValueError, TypeError: as in :func:`permutation_test`; ``confidence``
        outside (0, 1).

    Example:
      >>> import jax, jaxcca
      >>> kx, ky = jax.random.split(jax.random.key(0))
      >>> x = jax.random.normal(kx, (400, 4))
      >>> y = x + jax.random.normal(ky, (400, 4))
      >>> res = jaxcca.bootstrap(x, y, measure="cka", n_resamples=200, key=jax.random.key(2))
      >>> bool(res.low < res.statistic < res.high), res.samples.shape
      (True, (200,))

    References:
      Efron & Tibshirani, "An introduction to the bootstrap", Chapman & Hall
      1993, chapter 13 (percentile intervals).
    """
    devices = _check_common(measure, n_resamples, "n_resamples", key, chunk_size, devices, options)
    confidence = _check_confidence(confidence)
    x, y, value, static_opts = _prepare(x, y, measure, options)
    chunk = chunk_size or _auto_chunk(x, y, measure, options, "bootstrap")
    return _bootstrap(
        x,
        y,
        key,
        value,
        measure=measure,
        static_opts=static_opts,
        n_draws=int(n_resamples),
        chunk=int(chunk),
        devices=devices,
        confidence=confidence,
    )
