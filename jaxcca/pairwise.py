"""All-pairs similarity matrices: factor each representation once, batch the pairs.

``pairwise(xs)`` returns the ``m x m`` matrix of a measure over ``m``
representations of the same ``n`` inputs; ``pairwise(xs, ys)`` the ``m1 x m2``
cross matrix. Entry ``[i, j]`` is ``measure(xs[i], ys[j])``.

How it is fast:

1. each representation is centred and whitened once (``m`` factorizations,
   not ``m**2``; :func:`jaxcca._linalg.whiten`);
2. a block of rows ``I`` against all columns is one matrix product of the
   stacked whitened bases, ``Q_I^T [Q_1 ... Q_m]`` (BLAS-3 over many pairs at
   once);
3. each pair then needs one small ``d x d`` SVD; PWCCA weights come from each
   representation's small ``r`` factor and SVCCA's reductions from a
   ``d x d`` basis computed once per representation: nothing ``n``-sized is
   touched per pair.

Memory is bounded by the block: ``O(block_rows * m * d**2)`` for the cross
products plus the stacked bases ``O(m * n * d)``; never ``O(m**2 * n)``.

Several devices: row blocks are spread over ``jax.devices()`` (or the
``devices`` given) with ``jax.shard_map``; the stacked bases are replicated.
Across hosts, call ``jax.distributed.initialize()`` first: ``jax.devices()`` then
lists every host's devices and the same call runs one program over all of
them (each host must pass the same inputs).

Adding a measure: register a :class:`PairwiseMeasure` in ``MEASURES``: a
``prepare`` function (one representation -> pytree of per-representation
data, vmapped) and a ``pair`` function (cross product ``q_i^T q_j``, data of
``i``, data of ``j`` -> scalar).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh
from jax.sharding import PartitionSpec as P

from jaxcca._cca import mean_of_valid
from jaxcca._linalg import _mm, as_single, eigh_nograd, singular_values, whiten
from jaxcca._pwcca import pwcca_weights, validate_convention
from jaxcca._svcca import reduce_whitened, validate_keep

__all__ = ["MEASURES", "PairwiseMeasure", "pairwise", "symmetrize"]


@dataclasses.dataclass(frozen=True)
class PairwiseMeasure:
    """How to compute one measure for many pairs.

    Attributes:
      prepare: ``(x, **options) -> pytree`` for one ``(n, d)`` representation;
        must contain ``q``, the ``(n, d)`` basis whose cross products the pairs use.
      pair: ``(cross, data_i, data_j, **options) -> scalar``.
      symmetric: whether ``measure(x, y) == measure(y, x)``.
      options: the keyword options it accepts, with defaults.
    """

    prepare: Callable
    pair: Callable
    symmetric: bool
    options: dict


def _prep_whiten(x, *, epsilon=None, **_):
    w = whiten(x, epsilon=epsilon)
    return {"q": w.q, "r": w.r, "rank": w.rank, "mean": w.mean}


def _pair_cca(cross, a, b, **_):
    s = singular_values(cross)
    k = jnp.minimum(a["rank"], b["rank"])
    valid = jnp.arange(s.shape[0], dtype=jnp.int32) < k
    return mean_of_valid(jnp.where(valid, jnp.clip(s, 0.0, 1.0), 0.0), k)


def _pair_pwcca(cross, a, b, *, convention="paper", **_):
    # U and singular values from the eigendecomposition of cross cross^T: about
    # twice as fast as an SVD for these small matrices, and accurate where it
    # matters (a correlation rho carries an absolute error ~eps / rho, and enters
    # the similarity multiplied by rho). pairwise is not meant for gradients;
    # the single-pair functions are.
    p = min(cross.shape)
    lam, vecs = eigh_nograd(_mm(cross, cross.T) if cross.shape[0] == p else _mm(cross.T, cross))
    lam, vecs = lam[::-1][:p], vecs[:, ::-1][:, :p]
    s = jnp.sqrt(jnp.clip(lam, 0.0, None))
    if cross.shape[0] == p:
        u = vecs
    else:  # u = cross v / s for the wider-x case
        u = _mm(cross, vecs) * jnp.where(s > 0, 1.0 / jnp.where(s > 0, s, 1.0), 0.0)[None, :]
    k = jnp.minimum(a["rank"], b["rank"])
    valid = jnp.arange(s.shape[0], dtype=jnp.int32) < k
    rho = jnp.where(valid, jnp.clip(s, 0.0, 1.0), 0.0)
    wx = _WhitenedView(r=a["r"])
    return jnp.sum(pwcca_weights(wx, u, k, convention=convention) * rho)


@dataclasses.dataclass
class _WhitenedView:
    r: jax.Array  # pwcca_weights only reads .r


def _prep_svcca(x, *, epsilon=None, keep=0.99, **_):
    w = whiten(x, epsilon=epsilon)
    basis, k, _ = reduce_whitened(w, keep)
    # Rotate the basis once: q_i @ basis_i spans the kept singular directions.
    return {"q": _mm(w.q, basis), "k": k}


def _pair_svcca(cross, a, b, **_):
    s = singular_values(cross)
    k = jnp.minimum(a["k"], b["k"])
    valid = jnp.arange(s.shape[0], dtype=jnp.int32) < k
    return mean_of_valid(jnp.where(valid, jnp.clip(s, 0.0, 1.0), 0.0), k)


def _prep_cka(x, **_):
    xc = x - jnp.mean(x, axis=0, keepdims=True)
    gram_norm = jnp.sqrt(jnp.sum(_mm(xc.T, xc) ** 2))
    scale = jnp.where(gram_norm > 0, jax.lax.rsqrt(jnp.where(gram_norm > 0, gram_norm, 1.0)), 0.0)
    return {"q": xc * scale}


def _pair_cka(cross, a, b, **_):
    # Linear CKA = ||X^T Y||_F^2 / (||X^T X||_F ||Y^T Y||_F); the norms are in q.
    return jnp.sum(cross * cross)


def _prep_procrustes(x, **_):
    xc = x - jnp.mean(x, axis=0, keepdims=True)
    sq = jnp.sum(xc * xc)
    scale = jnp.where(sq > 0, jax.lax.rsqrt(jnp.where(sq > 0, sq, 1.0)), 0.0)
    return {"q": xc * scale}


def _pair_procrustes(cross, a, b, **_):
    # Nuclear norm of X^T Y for unit-Frobenius centred data (jaxcca.procrustes_similarity).
    return jnp.sum(singular_values(cross))


MEASURES: dict[str, PairwiseMeasure] = {
    "cca": PairwiseMeasure(_prep_whiten, _pair_cca, True, {"epsilon": None}),
    "svcca": PairwiseMeasure(_prep_svcca, _pair_svcca, True, {"epsilon": None, "keep": 0.99}),
    "pwcca": PairwiseMeasure(
        _prep_whiten, _pair_pwcca, False, {"epsilon": None, "convention": "paper"}
    ),
    "cka": PairwiseMeasure(_prep_cka, _pair_cka, True, {}),
    "procrustes": PairwiseMeasure(_prep_procrustes, _pair_procrustes, True, {}),
}


def symmetrize(matrix: jax.Array) -> jax.Array:
    """``(M + M^T) / 2``: the usual symmetric version of a PWCCA matrix.

    ``pairwise(xs, measure="pwcca")[i, j]`` weights by ``xs[i]``'s neurons, so
    the matrix is not symmetric; Morcos et al. 2018 average both directions
    when they need a distance between two networks.
    """
    return 0.5 * (matrix + matrix.T)


def _stack(xs, name) -> tuple[jax.Array, list[int]]:
    """Stacks a (m, n, d) array or a list of (n, d_i) arrays, zero-padding widths.

    Zero columns are dead neurons, which every measure masks, so padding does
    not change any result.
    """
    if isinstance(xs, (list, tuple)):
        if not xs:
            raise ValueError(f"{name} is an empty list; pass at least one (n, d) array.")
        arrs = [as_single(a, f"{name}[{i}]") for i, a in enumerate(xs)]
        ns = {a.shape[0] for a in arrs}
        if len(ns) != 1:
            raise ValueError(
                f"every representation in {name} must have the same number of samples "
                f"(rows), got {sorted(ns)}; rows must be the same inputs in the same order."
            )
        dtype = np.result_type(*[a.dtype for a in arrs])
        width = max(a.shape[1] for a in arrs)
        arrs = [jnp.pad(a.astype(dtype), ((0, 0), (0, width - a.shape[1]))) for a in arrs]
        return jnp.stack(arrs), [a.shape[1] for a in arrs]
    if not hasattr(xs, "ndim"):
        xs = np.asarray(xs)
    if xs.ndim != 3:
        raise ValueError(
            f"{name} must be a stacked array of shape (m, n_samples, n_neurons) or a list "
            f"of (n_samples, n_neurons_i) arrays, got shape {tuple(xs.shape)}."
        )
    as_single(xs[0], f"{name}[0]")  # dtype and sample-count checks
    return jnp.asarray(xs), [xs.shape[2]] * xs.shape[0]


def _block_fn(measure: PairwiseMeasure, options: dict):
    pair = functools.partial(measure.pair, **options)

    def rows_vs_all(q_rows, data_rows, q_cols, data_cols):
        # q_rows: (b, n, d); q_cols: (m2, n, d) -> cross (b, m2, d, d) in one product.
        cross = jnp.einsum("ind,jne->ijde", q_rows, q_cols, precision=jax.lax.Precision.HIGHEST)
        per_col = jax.vmap(pair, in_axes=(0, None, 0))
        return jax.vmap(per_col, in_axes=(0, 0, None))(cross, data_rows, data_cols)

    return rows_vs_all


def pairwise(
    xs: jax.Array | Sequence[jax.Array],
    ys: jax.Array | Sequence[jax.Array] | None = None,
    *,
    measure: str = "pwcca",
    block_rows: int = 8,
    devices: Sequence[jax.Device] | None = None,
    progress: bool = False,
    **options,
) -> jax.Array:
    """Similarity matrix of a measure over many representations.

    Args:
      xs: ``(m1, n, d)`` stacked representations, or a list of ``(n, d_i)``
        arrays of different widths (zero-padded internally; padding does not
        change results).
      ys: optional second collection (same forms); default ``xs``.
      measure: ``"cca"``, ``"svcca"``, ``"pwcca"``, ``"cka"`` (linear,
        biased) or ``"procrustes"`` (similarity: nuclear norm of the normalised
        cross-covariance); see ``MEASURES``.
      block_rows: rows of the matrix computed per step and device; memory is
        ``O(block_rows * m2 * d**2)``.
      devices: devices to spread row blocks over (default: all of
        ``jax.devices()``).
      progress: show a progress bar over row blocks (needs ``tqdm``).
      **options: the measure's options (``epsilon``; ``keep`` for svcca;
        ``convention`` for pwcca).

    Returns:
      ``(m1, m2)`` matrix with ``[i, j] = measure_similarity(xs[i], ys[j])``.
      For PWCCA rows weight by ``xs[i]``: see :func:`symmetrize`.

    Raises:
      ValueError: unknown measure or option, inconsistent sample counts.

    Example:
      >>> import jax, jaxcca
      >>> xs = jax.random.normal(jax.random.key(0), (4, 300, 8))
      >>> sims = jaxcca.pairwise(xs, measure="cca")
      >>> sims.shape, bool(abs(sims[1, 1] - 1) < 1e-5)
      ((4, 4), True)
    """
    if measure not in MEASURES:
        raise ValueError(f"measure must be one of {sorted(MEASURES)}, got {measure!r}.")
    spec = MEASURES[measure]
    unknown = set(options) - set(spec.options)
    if unknown:
        raise ValueError(
            f"unknown option(s) {sorted(unknown)} for measure {measure!r}; it accepts "
            f"{sorted(spec.options)}."
        )
    opts = {**spec.options, **options}
    if "keep" in opts:
        opts["keep"] = validate_keep(opts["keep"])
    if "convention" in opts:
        opts["convention"] = validate_convention(opts["convention"])
    if block_rows < 1:
        raise ValueError(f"block_rows must be >= 1, got {block_rows}.")

    x_stack, _ = _stack(xs, "xs")
    y_stack = x_stack if ys is None else _stack(ys, "ys")[0]
    if y_stack.shape[1] != x_stack.shape[1]:
        raise ValueError(
            f"xs and ys must have the same number of samples, got {x_stack.shape[1]} "
            f"and {y_stack.shape[1]}."
        )
    dtype = np.result_type(x_stack.dtype, y_stack.dtype)
    x_stack, y_stack = x_stack.astype(dtype), y_stack.astype(dtype)

    prep_opts = {k: v for k, v in opts.items() if k in ("epsilon", "keep")}
    pair_opts = {k: v for k, v in opts.items() if k == "convention"}
    prepare = jax.jit(jax.vmap(functools.partial(spec.prepare, **prep_opts)))
    data_x = prepare(x_stack)
    data_y = data_x if ys is None else prepare(y_stack)

    devices = list(devices) if devices is not None else jax.devices()
    n_dev = len(devices)
    m1 = x_stack.shape[0]
    chunk = block_rows * n_dev
    n_chunks = -(-m1 // chunk)
    step = _compiled_step(measure, tuple(sorted(pair_opts.items())), tuple(devices), block_rows)

    q_cols = data_y["q"]
    cols = {k: v for k, v in data_y.items() if k != "q"}
    rows = []
    it = range(n_chunks)
    if progress:
        try:
            from tqdm.auto import tqdm

            it = tqdm(it, desc=f"pairwise {measure}", unit="block")
        except ImportError:  # tqdm is optional
            pass
    for c in it:
        idx = np.arange(c * chunk, (c + 1) * chunk) % m1  # pad the last chunk by wrapping
        sel = jax.tree.map(lambda a, idx=idx: a[idx], data_x)
        q_rows = sel.pop("q")
        rows.append(step(q_rows, sel, q_cols, cols))
    out = jnp.concatenate(rows, axis=0)[:m1]
    return out


@functools.lru_cache(maxsize=64)
def _compiled_step(measure, pair_opts, devices, block_rows):
    fn = _block_fn(MEASURES[measure], dict(pair_opts))

    def local(q_rows, data_rows, q_cols, data_cols):
        # This device's rows, in blocks of block_rows (lax.map: bounded memory).
        b = q_rows.shape[0] // block_rows
        split = jax.tree.map(lambda a: a.reshape(b, block_rows, *a.shape[1:]), (q_rows, data_rows))
        out = jax.lax.map(lambda args: fn(args[0], args[1], q_cols, data_cols), split)
        return out.reshape(b * block_rows, -1)

    if len(devices) == 1:
        return jax.jit(local)
    mesh = Mesh(np.array(devices), ("pairs",))
    sharded = jax.shard_map(
        local,
        mesh=mesh,
        in_specs=(P("pairs"), P("pairs"), P(), P()),
        out_specs=P("pairs"),
        check_vma=False,
    )
    return jax.jit(sharded)
