"""All-pairs similarity matrices: factor each representation once, batch the pairs.

``pairwise(xs)`` returns the ``m x m`` matrix of a measure over ``m``
representations of the same ``n`` inputs; ``pairwise(xs, ys)`` the ``m1 x m2``
cross matrix. Entry ``[i, j]`` is ``measure(xs[i], ys[j])``.

How it is fast:

1. each representation is centred and whitened once (``m`` factorizations,
   not ``m**2``; :func:`jaxcca._whiten.whiten`), and the whitened bases are laid
   side by side, ``Q = [q_1 ... q_m]`` of shape ``(n, m * d)``;
2. the matrix is cut into tiles of ``block_size x block_size`` pairs; a tile
   ``(I, J)`` is one matrix product ``Q_I^T Q_J`` (BLAS-3 over
   ``block_size**2`` pairs at once). Without ``ys`` only the tiles with
   ``I <= J`` are computed: symmetric measures are mirrored, and PWCCA gets
   both ``[i, j]`` and ``[j, i]`` from the same cross product (transposed);
3. each pair then needs one small ``d x d`` decomposition (on CPU, PWCCA's
   two directions come from one SVD, and a diagonal tile decomposes only its
   pairs ``a <= b``); PWCCA weights come from each representation's small
   ``r`` factor and SVCCA's reductions from a ``d x d`` basis computed once
   per representation: nothing ``n``-sized is touched per pair. On CPU the
   LAPACK calls run one after another and PWCCA's other per-pair work runs
   batched over the whole tile (:func:`_tile_pwcca`).

Memory is the stacked bases ``O(m * n * d)`` (the size of the input) plus
``O(block_size**2 * d**2 + n * block_size * d)`` per tile in flight; never
``O(m**2 * n)``.

Several devices: tiles are spread over ``jax.devices()`` (or the ``devices``
given) with ``jax.shard_map``; the stacked bases are replicated and the result
is gathered on every device. Across hosts, call ``jax.distributed.initialize()``
first: ``jax.devices()`` then lists every host's devices and the same call
runs one program over all of them (each host passes the same inputs and gets
the whole matrix).

Adding a measure: register a :class:`PairwiseMeasure` in ``MEASURES``: a
``prepare`` function (one ``(n, d)`` representation -> dict with the ``(n, d)``
basis ``"q"`` whose cross products the pairs use, plus any small
per-representation data), a ``pair`` function (cross product ``q_i^T q_j``,
data of ``i``, data of ``j`` -> scalar), whether it is symmetric, and its
options with defaults, split into those ``prepare`` and ``pair`` take. E.g. linear CKA is
``prepare = centred x / ||x_c^T x_c||_F^{1/2}`` and ``pair = sum(cross**2)``.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from typing import Any, cast

import jax
import jax.core as jax_core
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh
from jax.sharding import PartitionSpec as P

from jaxcca._checks import as_single, as_stack, validate_convention, validate_epsilon, validate_keep
from jaxcca._hsic import linear_cka_basis
from jaxcca._linalg import eigh_nograd, psd_sqrt_from_svd, safe_svd, singular_values
from jaxcca._numerics import clip_correlations, first_k, mean_correlation, mm, safe_div
from jaxcca._procrustes import unit_frobenius
from jaxcca._pwcca import (
    canonical_tie_basis,
    paper_projections,
    projection_weights,
    svcca_projections,
    tie_blocks,
    weighted_correlation,
)
from jaxcca._svcca import reduce_whitened
from jaxcca._whiten import whiten

__all__ = ["MEASURES", "PairwiseMeasure", "pairwise", "symmetrize"]


@dataclasses.dataclass(frozen=True)
class PairwiseMeasure:
    """How to compute one measure for many pairs.

    Attributes:
      prepare: ``(x, **prepare_options) -> dict`` for one ``(n, d)``
        representation (vmapped over the stack); the dict must contain ``"q"``,
        the ``(n, d)`` basis whose cross products ``q_i^T q_j`` the pairs use.
      pair: ``(cross, data_i, data_j, **pair_options) -> scalar`` with ``cross``
        of shape ``(d_i, d_j)`` and ``data_*`` the prepared dicts without ``"q"``.
      symmetric: whether ``measure(x, y) == measure(y, x)``; then only half
        the pairs are computed.
      options: the keyword options it accepts, with defaults.
      prepare_options: the names among ``options`` that ``prepare`` takes.
      pair_options: the names among ``options`` that ``pair`` takes.
      tile: optional, used on CPU (see :func:`_whole_tile_on_cpu`): ``(cross,
        data_I, data_J, *, both, **pair_options)`` for a whole tile, ``cross``
        of shape ``(b1, b2, d_i, d_j)`` and ``data_*`` with a leading axis of
        ``b1`` (``b2``) representations; returns the ``(b1, b2)`` values, and
        with ``both`` (asymmetric measures) also ``value[j, i]`` for every pair
        from the same cross products, as a second ``(b1, b2)`` array.
    """

    prepare: Callable
    pair: Callable
    symmetric: bool
    options: dict
    prepare_options: tuple = ()
    pair_options: tuple = ()
    tile: Callable | None = None


# ----------------------------------------------------------------------------
# Measures
# ----------------------------------------------------------------------------


def _mean_valid_sv(cross, k):
    return mean_correlation(clip_correlations(singular_values(cross), k), k)


def _prep_cca(x, *, epsilon=None):
    w = whiten(x, epsilon=epsilon)
    return {"q": w.q, "rank": w.rank}


def _pair_cca(cross, a, b):
    return _mean_valid_sv(cross, jnp.minimum(a["rank"], b["rank"]))


def _prep_svcca(x, *, epsilon=None, keep=0.99):
    w = whiten(x, epsilon=epsilon)
    basis, k, _ = reduce_whitened(w, keep)
    # Rotate once per representation: q @ basis spans the kept directions, so
    # a pair's cross product is basis_i^T (q_i^T q_j) basis_j for free.
    return {"q": mm(w.q, basis), "k": k}


def _pair_svcca(cross, a, b):
    return _mean_valid_sv(cross, jnp.minimum(a["k"], b["k"]))


def _prep_pwcca(x, *, epsilon=None, convention="paper"):
    w = whiten(x, epsilon=epsilon)
    out = {"q": w.q, "r": w.r, "rank": w.rank}
    if convention == "svcca":
        # (r r^T)^{1/2}, once per representation (jaxcca.pwcca_weights forms it per pair).
        ur, sr, _ = safe_svd(w.r)
        out["r_sqrt"] = psd_sqrt_from_svd(ur, sr)
    return out


def _left_vectors(cross, p):
    """Singular values (descending) and left singular vectors of ``cross``.

    From the eigendecomposition of ``cross cross^T``: cheaper than an SVD for
    these small matrices, and accurate where it matters (a correlation ``rho``
    carries an absolute error ``~eps / rho`` and enters the similarity
    multiplied by ``rho``). pairwise is not meant for gradients; the
    single-pair functions are.
    """
    lam, vecs = eigh_nograd(mm(cross, cross.T))
    lam, vecs = lam[::-1][:p], vecs[:, ::-1][:, :p]
    return jnp.sqrt(jnp.clip(lam, 0.0, None)), vecs  # not differentiated; NaN passes


def _pwcca_from(u, s, k, a, convention):
    """``sum(weights * rho)`` with weights from ``a``'s ``r`` (jaxcca.pwcca_weights)."""
    rho = clip_correlations(s, k)
    valid = first_k(k, s.shape[0])
    u = canonical_tie_basis(u, rho, a["r"], valid)
    if convention == "paper":
        proj = paper_projections(u, a["r"])
    else:
        proj = svcca_projections(u, a["r"], a["r_sqrt"], valid)
    return weighted_correlation(projection_weights(proj, valid), rho)


def _pair_pwcca(cross, a, b, *, convention="paper"):
    p = min(cross.shape)
    if cross.shape[0] > cross.shape[1]:  # x wider: u = cross v / s
        s, v = _left_vectors(cross.T, p)
        u = mm(cross, v) * safe_div(jnp.ones_like(s), s, s > 0)[None, :]
    else:
        s, u = _left_vectors(cross, p)
    return _pwcca_from(u, s, jnp.minimum(a["rank"], b["rank"]), a, convention)


def _pwcca_side(u, s, k, a, convention):
    """PWCCA of a batch of pairs ``(i, j)`` weighted by ``i``'s neurons, vectorised.

    Args:
      u: ``(P, d, p)`` ``i``'s canonical directions for each pair.
      s: ``(P, p)`` singular values, descending.
      k: ``(P,)`` number of valid directions.
      a: prepared data of each pair's ``i`` (``r``, and ``r_sqrt`` for the
        svcca convention), each with a leading ``P`` axis.
      convention: ``"paper"`` or ``"svcca"``.

    Returns:
      ``(P,)`` similarities, as :func:`_pwcca_from` gives pair by pair.
    """
    p = s.shape[-1]
    rho = jax.vmap(clip_correlations)(s, k)
    valid = jax.vmap(lambda kk: first_k(kk, p))(k)
    # The tie rotation only where a pair of the batch has ties (a self-pair
    # always does): canonical_tie_basis then decides pair by pair.
    has_ties = jnp.any(jax.vmap(lambda *t: tie_blocks(*t)[1])(u, rho, valid))
    rotate = jax.vmap(canonical_tie_basis)
    u = jax.lax.cond(has_ties, lambda: rotate(u, rho, a["r"], valid), lambda: u)
    if convention == "paper":
        proj = jax.vmap(paper_projections)(u, a["r"])
    else:
        proj = jax.vmap(svcca_projections)(u, a["r"], a["r_sqrt"], valid)
    return jax.vmap(weighted_correlation)(jax.vmap(projection_weights)(proj, valid), rho)


def _tile_pwcca(cross, a, b, *, both, diagonal=False, convention="paper"):
    """PWCCA for a tile of pairs: one LAPACK call per pair, the rest on the whole tile.

    With ``both`` (the square matrix) each pair's SVD gives both directions:
    its left singular vectors weight the row representation and its right
    ones the column representation, both accurate. Deriving one side from the
    other's eigendecomposition (``cross^T u_i = s_i v_i`` after ``eigh(cross
    cross^T)``) would cost 0.7x of the SVD but loses float32 accuracy where
    small correlations cluster (1e-7 to 1e-4 against float64 on realistic
    spectra), so it is not done; for the same reason one direction only (the
    cross matrix ``pairwise(xs, ys)``) takes the SVD too, not the
    eigendecomposition of ``cross cross^T``. Everything but the LAPACK calls
    runs on the whole tile at once.

    Args:
      cross: ``(b1, b2, d1, d2)`` cross products ``q_i^T q_j``.
      a: prepared data of the tile's ``b1`` row representations.
      b: prepared data of its ``b2`` column representations.
      both: also return ``value[j, i]`` for every pair, as a ``(b1, b2)``
        array holding ``[j_b, i_a]`` at ``[a, b]``.
      diagonal: a tile ``(I, I)`` of the square matrix (``a`` is ``b``):
        pair ``(b, a)`` is pair ``(a, b)`` transposed, so only the pairs
        ``a <= b`` are decomposed (36 SVDs instead of 64 for ``b1 = 8``).
      convention: PWCCA convention.
    """
    b1, b2, d1, d2 = cross.shape
    if diagonal:
        rows, cols = np.triu_indices(b1)
        flat = cross[rows, cols]
    else:
        rows, cols = np.repeat(np.arange(b1), b2), np.tile(np.arange(b2), b1)
        flat = cross.reshape(b1 * b2, d1, d2)
    k = jnp.minimum(a["rank"][rows], b["rank"][cols])
    side_a = {key: v[rows] for key, v in a.items() if key != "rank"}
    u, s, vt = jax.vmap(safe_svd)(flat)
    if not both:
        return _pwcca_side(u, s, k, side_a, convention).reshape(b1, b2)
    side_b = {key: v[cols] for key, v in b.items() if key != "rank"}
    fwd = _pwcca_side(u, s, k, side_a, convention)
    bwd = _pwcca_side(jnp.swapaxes(vt, 1, 2), s, k, side_b, convention)
    if diagonal:  # [a, b] direct, [b, a] from the transposed pair; direct values on the diagonal
        out = jnp.zeros((b1, b2), fwd.dtype).at[cols, rows].set(bwd).at[rows, cols].set(fwd)
        return out, out.T
    return fwd.reshape(b1, b2), bwd.reshape(b1, b2)


def _prep_cka(x):
    return {"q": linear_cka_basis(x)}


def _pair_cka(cross, a, b):
    # Linear CKA = ||X^T Y||_F^2 / (||X^T X||_F ||Y^T Y||_F); the norms are in q.
    return jnp.sum(cross * cross)


def _prep_procrustes(x):
    return {"q": unit_frobenius(x)[0]}


def _pair_procrustes(cross, a, b):
    # Nuclear norm of X^T Y for unit-Frobenius centred data (jaxcca.procrustes_similarity).
    return jnp.sum(singular_values(cross))


MEASURES: dict[str, PairwiseMeasure] = {
    "cca": PairwiseMeasure(_prep_cca, _pair_cca, True, {"epsilon": None}, ("epsilon",)),
    "svcca": PairwiseMeasure(
        _prep_svcca, _pair_svcca, True, {"epsilon": None, "keep": 0.99}, ("epsilon", "keep")
    ),
    "pwcca": PairwiseMeasure(
        _prep_pwcca,
        _pair_pwcca,
        False,
        {"epsilon": None, "convention": "paper"},
        ("epsilon", "convention"),
        ("convention",),
        tile=_tile_pwcca,
    ),
    "cka": PairwiseMeasure(_prep_cka, _pair_cka, True, {}),
    "procrustes": PairwiseMeasure(_prep_procrustes, _pair_procrustes, True, {}),
}


def symmetrize(matrix: Any) -> jax.Array:
    """``(M + M^T) / 2``: the usual symmetric version of a PWCCA matrix.

    ``pairwise(xs, measure="pwcca")[i, j]`` weights by ``xs[i]``'s neurons, so
    the matrix is not symmetric; Morcos et al. 2018 average both directions
    when they need one number for two networks.

    Args:
      matrix: ``(m, m)`` square float matrix (an array or nested lists).

    Returns:
      ``(m, m)`` symmetric matrix.

    Example:
      >>> import jax, jaxcca
      >>> xs = jax.random.normal(jax.random.key(0), (3, 200, 6))
      >>> sym = jaxcca.symmetrize(jaxcca.pairwise(xs, measure="pwcca"))
      >>> bool((sym == sym.T).all())
      True
    """
    matrix = cast(Any, matrix)
    if isinstance(matrix, (list, tuple)):
        matrix = jnp.asarray(matrix)
    elif not hasattr(matrix, "ndim"):
        matrix = np.asarray(matrix)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"symmetrize needs a square matrix, got shape {tuple(matrix.shape)}.")
    if not jnp.issubdtype(matrix.dtype, jnp.floating):
        raise TypeError(f"symmetrize needs a float matrix, got dtype {matrix.dtype}.")
    matrix = jnp.asarray(matrix)
    return 0.5 * (matrix + matrix.T)


# ----------------------------------------------------------------------------
# Input handling
# ----------------------------------------------------------------------------


def _stack(xs, name) -> jax.Array:
    """Stacks a (m, n, d) array or a list of (n, d_i) arrays, zero-padding widths.

    Zero columns are dead neurons, which every measure masks, so padding does
    not change any result.
    """
    if isinstance(xs, (list, tuple)):
        if not xs:
            raise ValueError(f"{name} is an empty list; pass at least one (n, d) array.")
        arrs = [as_single(a, f"{name}[{i}]") for i, a in enumerate(xs)]
        ns = sorted({a.shape[0] for a in arrs})
        if len(ns) != 1:
            raise ValueError(
                f"every representation in {name} must have the same number of samples "
                f"(rows), got {ns}; rows must be the same inputs in the same order."
            )
        dtype = np.result_type(*[a.dtype for a in arrs])
        width = max(a.shape[1] for a in arrs)
        arrs = [jnp.pad(a.astype(dtype), ((0, 0), (0, width - a.shape[1]))) for a in arrs]
        return jnp.stack(arrs)
    return as_stack(xs, name)


def _tiles(m1, m2, b1, b2, triangle):
    """Tile coordinates (row block, column block) covering the matrix."""
    n1, n2 = -(-m1 // b1), -(-m2 // b2)
    if triangle:
        return [(i, j) for i in range(n1) for j in range(i, n2)]
    return [(i, j) for i in range(n1) for j in range(n2)]


# ----------------------------------------------------------------------------
# The computation
# ----------------------------------------------------------------------------


def pairwise(
    xs: jax.Array | Sequence[jax.Array],
    ys: jax.Array | Sequence[jax.Array] | None = None,
    *,
    measure: str = "pwcca",
    block_size: int = 8,
    devices: Sequence[Any] | None = None,
    progress: bool = False,
    **options,
) -> jax.Array:
    r"""Similarity matrix of a measure over many representations.

    ``out[i, j] = measure_similarity(xs[i], ys[j])`` for every pair, computed as
    one blocked, compiled computation: each representation is whitened once,
    a tile of ``block_size x block_size`` pairs is one matrix product of
    whitened bases, and each pair then costs one small ``d x d``
    eigendecomposition. Equal to calling the single-pair functions pair by
    pair (``jaxcca.pwcca_similarity`` etc.), to round-off.

    Args:
      xs: ``(m1, n, d)`` stacked representations, or a list of ``(n, d_i)``
        arrays of different widths (zero-padded internally: zero columns are
        dead neurons, which are masked, so padding does not change results).
      ys: optional second collection (same forms) for the ``(m1, m2)`` cross
        matrix, e.g. every layer of one network against every layer of
        another. Default: ``xs`` (then only the tiles ``i <= j`` are computed).
      measure: ``"cca"``, ``"svcca"``, ``"pwcca"``, ``"cka"`` (linear,
        biased) or ``"procrustes"`` (similarity); see ``MEASURES``.
      block_size: representations per tile side; a tile holds
        ``block_size**2`` pairs. Memory per tile in flight is
        ``O(block_size * n * d + block_size**2 * d**2)``.
      devices: devices to spread tiles over (default: all of ``jax.devices()``).
      progress: show a progress bar over tiles (needs ``tqdm``; ignored when
        traced).
      **options: the measure's options: ``epsilon`` (cca, svcca, pwcca),
        ``keep`` (svcca), ``convention`` (pwcca), as in the single-pair
        functions.

    Returns:
      ``(m1, m2)`` similarity matrix. PWCCA weights by the neurons of ``xs[i]``
      (row ``i``), so its square matrix is not symmetric: use
      :func:`jaxcca.symmetrize` for ``(M + M^T) / 2``.

    Raises:
      ValueError: unknown measure or option, inconsistent sample counts, bad
        ``block_size`` or input shapes.
      TypeError: non-float inputs.

    Example:
      >>> import jax, jaxcca
      >>> xs = jax.random.normal(jax.random.key(0), (4, 300, 8))
      >>> sims = jaxcca.pairwise(xs, measure="cca")
      >>> sims.shape, bool(abs(sims[1, 1] - 1) < 1e-5)
      ((4, 4), True)
      >>> jaxcca.pairwise(xs[:2], xs, measure="pwcca").shape
      (2, 4)
    """
    if measure not in MEASURES:
        raise ValueError(f"measure must be one of {sorted(MEASURES)}, got {measure!r}.")
    spec = MEASURES[measure]
    unknown = set(options) - set(spec.options)
    if unknown:
        raise ValueError(
            f"unknown option(s) {sorted(unknown)} for measure {measure!r}; it accepts "
            f"{sorted(spec.options) or 'none'}."
        )
    opts = {**spec.options, **options}
    if "epsilon" in opts:
        opts["epsilon"] = validate_epsilon(opts["epsilon"])
    if "keep" in opts:
        opts["keep"] = validate_keep(opts["keep"])
    if "convention" in opts:
        opts["convention"] = validate_convention(opts["convention"])
    if isinstance(block_size, bool) or not isinstance(block_size, (int, np.integer)):
        raise TypeError(f"block_size must be an int, got {type(block_size).__name__}.")
    if block_size < 1:
        raise ValueError(f"block_size must be >= 1, got {block_size}.")

    x_stack = _stack(xs, "xs")
    y_stack = x_stack if ys is None else _stack(ys, "ys")
    if y_stack.shape[1] != x_stack.shape[1]:
        raise ValueError(
            f"xs and ys must have the same number of samples (rows), got {x_stack.shape[1]} "
            f"and {y_stack.shape[1]}."
        )
    dtype = np.result_type(x_stack.dtype, y_stack.dtype)
    x_stack, y_stack = x_stack.astype(dtype), y_stack.astype(dtype)
    m1, m2 = x_stack.shape[0], y_stack.shape[0]

    prep_opts = tuple((k, opts[k]) for k in spec.prepare_options)
    pair_opts = tuple((k, opts[k]) for k in spec.pair_options)
    devices = tuple(devices) if devices is not None else tuple(jax.devices())
    if not devices:
        raise ValueError("devices is empty; pass None for all of jax.devices().")
    square = ys is None
    b1, b2 = min(block_size, m1), min(block_size, m2)
    if square:
        b1 = b2 = min(b1, b2)
    tiles = _tiles(m1, m2, b1, b2, triangle=square)
    traced = isinstance(x_stack, jax_core.Tracer) or isinstance(y_stack, jax_core.Tracer)

    prepare = _compiled_prepare(measure, prep_opts, devices)
    data_x = prepare(_pad_to(x_stack, b1))
    data_y = data_x if square else prepare(_pad_to(y_stack, b2))
    q_x, rest_x = _side_by_side(data_x)
    q_y, rest_y = (q_x, rest_x) if square else _side_by_side(data_y)

    # Tiles are processed in steps, each one call of the same compiled
    # function; a step gives every device ``per_device`` tiles, which it maps
    # over one at a time (the last step is padded with repeats of a tile). One
    # step does everything; a progress bar needs a few more.
    n_dev = len(devices)
    per_device = -(-len(tiles) // n_dev)
    if progress and not traced:
        per_device = -(-per_device // min(per_device, 50))
    chunk = per_device * n_dev
    n_steps = -(-len(tiles) // chunk)
    coords = np.array(tiles + [tiles[-1]] * (n_steps * chunk - len(tiles)), dtype=np.int32)
    step = _compiled_step(measure, pair_opts, devices, b1, b2, square)

    it = range(n_steps)
    if progress and not traced:
        try:
            from tqdm.auto import tqdm

            it = tqdm(it, desc=f"pairwise {measure}: {len(tiles)} tiles", unit="step")
        except ImportError:  # tqdm is optional
            pass
    outs = [step(coords[s * chunk : (s + 1) * chunk], q_x, rest_x, q_y, rest_y) for s in it]
    fwd = jnp.concatenate([o[0] for o in outs])[: len(tiles)]
    bwd = jnp.concatenate([o[1] for o in outs])[: len(tiles)] if square else None
    out = _assemble(fwd, bwd, np.array(tiles), m1, m2, b1, b2)
    if square and spec.symmetric:  # diagonal tiles computed both halves: mirror exactly
        out = jnp.where(np.triu(np.ones((m1, m1), dtype=bool)), out, out.T)
    return out


def _pad_to(stack, b):
    """Pads the stack to a multiple of ``b`` representations by repeating the first ones."""
    m = stack.shape[0]
    pad = -m % b
    return stack if pad == 0 else jnp.concatenate([stack, stack[np.arange(pad) % m]])


def _side_by_side(data):
    """Splits the prepared data into ``Q = [q_1 ... q_m]`` as ``(n, m, d)`` and the rest."""
    return jnp.transpose(data["q"], (1, 0, 2)), {k: v for k, v in data.items() if k != "q"}


def _assemble(fwd, bwd, tiles, m1, m2, b1, b2):
    """Scatters tiles ``(t, b1, b2)`` into the ``(m1, m2)`` matrix (mirroring ``bwd``)."""
    rows = tiles[:, 0, None, None] * b1 + np.arange(b1)[None, :, None]
    cols = tiles[:, 1, None, None] * b2 + np.arange(b2)[None, None, :]
    rows, cols = np.broadcast_arrays(rows, cols)
    out = jnp.zeros((-(-m1 // b1) * b1, -(-m2 // b2) * b2), fwd.dtype)
    if bwd is not None:  # tile (I, J) also holds [j, i]; write it first so that
        out = out.at[cols, rows].set(bwd)  # the diagonal tiles keep their direct values
    out = out.at[rows, cols].set(fwd)
    return out[:m1, :m2]


@functools.lru_cache(maxsize=64)
def _compiled_prepare(measure, prep_opts, devices):
    one = functools.partial(MEASURES[measure].prepare, **dict(prep_opts))
    # On CPU one representation after another: whiten decides with lax.cond
    # whether it needs its second n-sized pass, and under vmap a cond becomes a
    # select that computes both branches for every representation. (CPU runs
    # the batch's small decompositions one after another anyway.)
    if devices[0].platform == "cpu":
        fn = functools.partial(jax.lax.map, one)
    else:
        fn = jax.vmap(one)
    # Replicated over the mesh: every device (and host) holds all bases.
    sharding = jax.sharding.NamedSharding(Mesh(np.array(devices), ("tiles",)), P())
    return jax.jit(fn, out_shardings=sharding)


# Pairs whose small decompositions run as one batch on an accelerator. GPU
# eigh/SVD kernels are efficient on large batches of small matrices (jax-ml/jax
# PR 31375: batched syev) and slow one tile (block_size**2 pairs) at a time;
# the tiles' cross products in flight cost O(batch * d**2) memory plus the
# bases' slices O(tiles * n * block_size * d). On CPU the decompositions run one
# after another anyway (jaxcca._linalg.sequential_batching_on_cpu), so tiles
# stay sequential there.
ACCELERATOR_PAIR_BATCH = 2048


def _tiles_at_once(pairs_per_tile: int, platform: str) -> int | None:
    """``lax.map`` batch size over tiles: None (one at a time) on CPU."""
    if platform == "cpu":
        return None
    return max(1, ACCELERATOR_PAIR_BATCH // pairs_per_tile)


def _whole_tile_on_cpu(platform: str) -> bool:
    """Whether a measure's ``tile`` function (if any) replaces its per-pair function.

    On CPU: PWCCA's two directions then come from one SVD per pair
    (:func:`_tile_pwcca`), and the work around it runs on the whole tile
    at once instead of pair by pair. Accelerators keep the vmapped per-pair
    functions (two batched ``eigh`` for PWCCA) until a device measurement
    says otherwise.
    """
    return platform == "cpu"


def _pairs_one_at_a_time(platform: str) -> bool:
    """Whether a tile's pairs run one after another (``lax.map``) instead of ``vmap``.

    On CPU: each pair's small decompositions run one after another anyway, and
    per pair its ``lax.cond`` branches (PWCCA's tie rotation) stay branches and
    its small products and intermediate factors stay small (1.8x less time per
    tile than the vmapped pairs, 64 pairs of d = 64, measured side by side).
    """
    return platform == "cpu"


def _over_pairs(fn, cross, da, db, *, sequential):
    """``fn(cross[a, b], da[a], db[b])`` for every pair of a tile, as ``(b1, b2)`` arrays.

    ``cross`` is ``(b1, b2, d1, d2)``; ``fn`` returns a scalar.
    """
    if not sequential:
        return jax.vmap(jax.vmap(fn, (0, None, 0)), (0, 0, None))(cross, da, db)
    b1, b2 = cross.shape[:2]
    rows, cols = np.repeat(np.arange(b1), b2), np.tile(np.arange(b2), b1)
    flat = cross.reshape(b1 * b2, *cross.shape[2:])
    args = (flat, jax.tree.map(lambda v: v[rows], da), jax.tree.map(lambda v: v[cols], db))
    out = jax.lax.map(lambda t: fn(*t), args)
    return jax.tree.map(lambda o: o.reshape(b1, b2), out)


@functools.lru_cache(maxsize=64)
def _compiled_step(measure, pair_opts, devices, b1, b2, square):
    spec = MEASURES[measure]
    pair = functools.partial(spec.pair, **dict(pair_opts))
    tile = None
    if spec.tile is not None and _whole_tile_on_cpu(devices[0].platform):
        tile = functools.partial(spec.tile, **dict(pair_opts))

    sequential = _pairs_one_at_a_time(devices[0].platform)

    def one_tile(ij, q_x, rest_x, q_y, rest_y):
        (n, _, d1), d2 = q_x.shape, q_y.shape[2]
        i0, j0 = ij[0] * b1, ij[1] * b2
        qa = jax.lax.dynamic_slice_in_dim(q_x, i0, b1, axis=1).reshape(n, b1 * d1)
        qb = jax.lax.dynamic_slice_in_dim(q_y, j0, b2, axis=1).reshape(n, b2 * d2)
        # One product for the whole tile: (b1 * d1, b2 * d2) = Q_I^T Q_J.
        cross = mm(qa.T, qb).reshape(b1, d1, b2, d2).transpose(0, 2, 1, 3)
        da = jax.tree.map(lambda a: jax.lax.dynamic_slice_in_dim(a, i0, b1), rest_x)
        db = jax.tree.map(lambda a: jax.lax.dynamic_slice_in_dim(a, j0, b2), rest_y)
        if tile is not None:
            if not square:
                return tile(cross, da, db, both=False), jnp.zeros((b1, b2), q_x.dtype)
            if spec.symmetric:
                fwd = tile(cross, da, db, both=False)
                return fwd, fwd
            # A diagonal tile decomposes only its pairs a <= b (see _tile_pwcca).
            both = tile
            return jax.lax.cond(
                ij[0] == ij[1],
                lambda: both(cross, da, db, both=True, diagonal=True),
                lambda: both(cross, da, db, both=True),
            )
        f = functools.partial(_over_pairs, pair, sequential=sequential)
        if not square:
            return f(cross, da, db), jnp.zeros((b1, b2), q_x.dtype)
        if spec.symmetric:
            fwd = f(cross, da, db)
            return fwd, fwd
        # Asymmetric (PWCCA): [j, i] from the same product, transposed; bwd[a, b]
        # holds [j_b, i_a], i.e. the tile (J, I) transposed.
        bwd = f(cross.transpose(1, 0, 3, 2), db, da)
        return f(cross, da, db), bwd.T

    def local(coords, q_x, rest_x, q_y, rest_y):
        # This device's tiles one after another (lax.map: bounded memory), or on
        # an accelerator several tiles at once, so that each pair's small
        # decomposition runs in one large batch (see _tiles_at_once).
        return jax.lax.map(
            lambda ij: one_tile(ij, q_x, rest_x, q_y, rest_y),
            coords,
            batch_size=_tiles_at_once(b1 * b2, devices[0].platform),
        )

    def gathered(*args):
        fwd, bwd = local(*args)
        return (
            jax.lax.all_gather(fwd, "tiles", tiled=True),
            jax.lax.all_gather(bwd, "tiles", tiled=True),
        )

    mesh = Mesh(np.array(devices), ("tiles",))
    sharded = jax.shard_map(
        gathered,
        mesh=mesh,
        in_specs=(P("tiles"), P(), P(), P(), P()),
        out_specs=(P(), P()),
        check_vma=False,
    )
    return jax.jit(sharded)
