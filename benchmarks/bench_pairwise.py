"""All-pairs PWCCA: jaxcca.pairwise vs its floor, a loop of single pairs and NumPy.

m representations of n samples x d neurons, float32, side by side in one run:
  pairwise   jaxcca.pairwise(xs, measure="pwcca", block_size=8)
  floor      the blocked products alone: the same tiles pairwise computes (I <= J,
             block_size x block_size pairs each), each one product Q_I^T Q_J of
             whitened bases, and nothing else
  whiten     the m per-representation whitenings (part of pairwise, not of the floor)
  jit loop   a Python loop over the jitted single-pair jaxcca.pwcca_similarity
  numpy      a plain NumPy float64 PWCCA per pair (covariances, eigh inverse square
             roots, SVD, weights) in this process (one BLAS thread)
The loops are timed on a subset of pairs and scaled to m*m ordered pairs.

    python benchmarks/bench_pairwise.py [--d 64] [--n 2000] [--scaling 16,32,64,128]
    python benchmarks/bench_pairwise.py --sweep   # + the 200-network sweep estimate
    python benchmarks/bench_pairwise.py --per-pair  # + one tile's per-pair costs

``--per-pair`` times one off-diagonal tile (``block_size**2`` pairs) of the first
``--scaling`` size: its product (the floor's share), each pair's LAPACK call alone
(the SVD that gives both PWCCA directions, ``eigh`` of ``C C^T``, singular values
only; one after another, as pairwise runs them on CPU) and pairwise's whole step for
the tile, per pair and against the product. The product plus the SVD is what a tile
of pairwise cannot go below while its two directions come from one accurate SVD.

``--sweep`` times pairwise on ``--sweep-m`` networks at the PWCCA paper's sweep size
(n = 10,000, d = 128) and extrapolates to 200 networks (19,900 pairs, both PWCCA
directions from each product): whitening scales with m, the rest with the number
of tiles. It is an estimate from the measured cost on this machine.

OMP_NUM_THREADS defaults to 1 here, as the README recommends for jax on CPU (LAPACK
calls with several OpenMP threads can stall on small machines); XLA's own thread pool
still runs jax's matrix products on every core, but NumPy's BLAS then uses one thread.
"""

import argparse
import os
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import jax
import jax.numpy as jnp
import numpy as np

# this checkout's jaxcca (not an installed one), and the helpers beside this script
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]

from _timing import add_report_args, best_of_each, ratio, report  # noqa: E402

import jaxcca  # noqa: E402
from jaxcca._pairwise import _compiled_prepare, _compiled_step, _tiles  # noqa: E402
from jaxcca._whiten import whiten  # noqa: E402

HIGHEST = jax.lax.Precision.HIGHEST


def np_pwcca(x, y):
    xc, yc = x - x.mean(0), y - y.mean(0)
    sxx, syy, sxy = xc.T @ xc, yc.T @ yc, xc.T @ yc

    def inv_sqrt(c):
        w, v = np.linalg.eigh(c)
        return (v / np.sqrt(w)) @ v.T

    ixx = inv_sqrt(sxx)
    u, s, _ = np.linalg.svd(ixx @ sxy @ inv_sqrt(syy))
    h = xc @ ixx @ u[:, : s.shape[0]]
    alpha = np.abs(h.T @ xc).sum(1)
    return np.sum(alpha / alpha.sum() * s)


def make(m, n, d, seed=0):
    rng = np.random.default_rng(seed)
    base = rng.standard_normal((n, d))
    mix = rng.standard_normal((m, d, d)) / np.sqrt(d)
    return (np.tanh(base @ mix) + 0.5 * rng.standard_normal((m, n, d))).astype(np.float32)


def blocked_floor(m, block):
    """The tile products pairwise computes, and nothing else: ``(n, m, d) -> per-tile max``."""
    tiles = np.array(_tiles(m, m, block, block, triangle=True), dtype=np.int32)

    def one(ij, q):
        n, _, d = q.shape
        qa = jax.lax.dynamic_slice_in_dim(q, ij[0] * block, block, axis=1).reshape(n, -1)
        qb = jax.lax.dynamic_slice_in_dim(q, ij[1] * block, block, axis=1).reshape(n, -1)
        return jnp.max(jnp.abs(jnp.matmul(qa.T, qb, precision=HIGHEST)))

    return jax.jit(lambda q: jax.lax.map(lambda ij: one(ij, q), jnp.asarray(tiles))), len(tiles)


def timed_parts(xs, block, repeat):
    """Times pairwise, the whitening alone and the blocked products alone, round robin."""
    m = xs.shape[0]
    xs = jax.device_put(xs)
    prep = jax.jit(jax.vmap(lambda x: whiten(x).q))
    q = jnp.transpose(prep(xs), (1, 0, 2))
    floor, n_tiles = blocked_floor(m, block)
    t = best_of_each(
        {
            "pairwise": lambda: jaxcca.pairwise(xs, measure="pwcca", block_size=block),
            "whiten": lambda: prep(xs),
            "floor": lambda: floor(q),
        },
        repeat=repeat,
    )
    return t, n_tiles


def run(m, n, d, numpy_pairs, loop_pairs, block, repeat):
    xs = make(m, n, d)
    t, _ = timed_parts(xs, block, repeat)
    f = jax.jit(jaxcca.pwcca_similarity)
    jax.block_until_ready(f(xs[0], xs[1]))
    pairs = [(i % m, (i * 7 + 3) % m) for i in range(loop_pairs)]
    t0 = time.perf_counter()
    for i, j in pairs:
        jax.block_until_ready(f(xs[i], xs[j]))
    t["loop"] = (time.perf_counter() - t0) / loop_pairs * m * m
    x64 = xs.astype(np.float64)
    t0 = time.perf_counter()
    for i, j in pairs[:numpy_pairs]:
        np_pwcca(x64[i], x64[j])
    t["numpy"] = (time.perf_counter() - t0) / numpy_pairs * m * m
    return t


def per_pair_costs(n, d, block, repeat):
    """Per-pair costs of one off-diagonal tile: product share, LAPACK calls alone, pairwise step.

    Returns:
      dict name -> seconds for the whole tile (``block**2`` pairs).
    """
    devices = tuple(jax.devices())
    data = _compiled_prepare("pwcca", (("epsilon", None), ("convention", "paper")), devices)(
        jnp.asarray(make(2 * block, n, d))
    )
    q = jnp.transpose(data["q"], (1, 0, 2))
    rest = {k: v for k, v in data.items() if k != "q"}
    qa, qb = q[:, :block].reshape(n, -1), q[:, block:].reshape(n, -1)
    product = jax.jit(lambda a, b: jnp.matmul(a.T, b, precision=HIGHEST))
    cross = product(qa, qb).reshape(block, d, block, d).transpose(0, 2, 1, 3).reshape(-1, d, d)
    gram = jax.jit(lambda c: jnp.matmul(c, jnp.swapaxes(c, 1, 2), precision=HIGHEST))(cross)

    def each(f):
        return jax.jit(lambda c: jax.lax.map(f, c))

    svd, eigh = each(lambda c: jnp.linalg.svd(c, full_matrices=False)), each(jnp.linalg.eigh)
    svdvals = each(lambda c: jnp.linalg.svd(c, compute_uv=False))
    step = _compiled_step("pwcca", (("convention", "paper"),), devices, block, block, True)
    coords = np.array([[0, 1]], dtype=np.int32)
    return best_of_each(
        {
            "tile product (floor)": lambda: product(qa, qb),
            "SVD, u s v^T (pairwise)": lambda: svd(cross),
            "eigh of C C^T": lambda: eigh(gram),
            "singular values only": lambda: svdvals(cross),
            "pairwise step, whole tile": lambda: step(coords, q, rest, q, rest),
        },
        repeat=repeat,
    )


def sweep_estimate(m, n, d, block, repeat, target=200):
    """Extrapolates pairwise PWCCA over ``target`` networks from ``m`` measured ones."""
    t, n_tiles = timed_parts(make(m, n, d), block, repeat)
    target_tiles = len(_tiles(target, target, block, block, triangle=True))
    rest = max(t["pairwise"] - t["whiten"], 0.0)
    est = t["whiten"] * target / m + rest * target_tiles / n_tiles
    per_pair = rest / (n_tiles * block * block)
    return t, est, per_pair


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--d", type=int, default=64)
    p.add_argument("--numpy-pairs", type=int, default=64)
    p.add_argument("--loop-pairs", type=int, default=128)
    p.add_argument("--scaling", default="16,32,64,128")
    p.add_argument("--block-size", type=int, default=8)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--sweep", action="store_true", help="also estimate the 200-network sweep")
    p.add_argument("--per-pair", action="store_true", help="also time one tile's parts per pair")
    p.add_argument("--sweep-m", type=int, default=16)
    p.add_argument("--sweep-n", type=int, default=10_000)
    p.add_argument("--sweep-d", type=int, default=128)
    add_report_args(p)
    a = p.parse_args()
    rows = []
    for m in [int(v) for v in a.scaling.split(",")]:
        t = run(m, a.n, a.d, a.numpy_pairs, a.loop_pairs, a.block_size, a.repeat)
        rows.append(
            [
                m,
                m * m,
                f"{t['pairwise']:.3f}",
                f"{t['floor']:.3f}",
                f"{t['whiten']:.3f}",
                ratio(t["pairwise"], t["floor"]),
                ratio(t["pairwise"] - t["whiten"], t["floor"]),
                ratio(t["loop"], t["pairwise"]),
                ratio(t["numpy"], t["pairwise"]),
            ]
        )
    notes = [
        f"PWCCA, n={a.n}, d={a.d}, float32, block_size={a.block_size}, {jax.device_count()} "
        f"{jax.default_backend()} device(s), best of {a.repeat}, timed round robin in one run.",
        "Floor: the blocked products alone (the tiles I <= J that pairwise computes, one "
        "Q_I^T Q_J each). 'whiten' is the m per-network whitenings inside pairwise.",
        f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}; jit loop timed on {a.loop_pairs} "
        f"pairs and numpy (one BLAS thread) on {a.numpy_pairs} pairs, both scaled to m*m pairs.",
    ]
    header = [
        "m",
        "pairs",
        "pairwise s",
        "floor s",
        "whiten s",
        "pairwise / floor",
        "(pairwise - whiten) / floor",
        "jit loop / pairwise",
        "numpy / pairwise",
    ]
    last = rows[-1]
    readme_value = f"{last[8]} / {last[7]}; " + " / ".join(f"m={r[0]}: {r[5]}" for r in rows)
    if a.sweep:
        t, est, per_pair = sweep_estimate(a.sweep_m, a.sweep_n, a.sweep_d, a.block_size, a.repeat)
        notes.append(
            f"Sweep estimate (PWCCA paper, 200 networks, 19,900 pairs, n={a.sweep_n}, "
            f"d={a.sweep_d}): measured pairwise on m={a.sweep_m} networks "
            f"{t['pairwise']:.3f} s (whitening {t['whiten']:.3f} s, floor {t['floor']:.3f} s, "
            f"{per_pair * 1e3:.3f} ms per pair after whitening, both directions); "
            f"extrapolated to 200 networks: {est:.1f} s on {jax.default_backend()} "
            "(an estimate from measured per-pair cost, not a measured sweep)."
        )
        readme_value += f"; 200-network sweep (n={a.sweep_n}, d={a.sweep_d}) estimated {est:.1f} s"
    if a.per_pair:
        t = per_pair_costs(a.n, a.d, a.block_size, max(a.repeat, 5))
        pairs, base = a.block_size**2, t["tile product (floor)"]
        notes.append(
            f"One off-diagonal tile ({pairs} pairs, n={a.n}, d={a.d}), best of "
            f"{max(a.repeat, 5)}, per pair: "
            + "; ".join(f"{k} {v / pairs * 1e6:.0f} us ({v / base:.2f}x)" for k, v in t.items())
            + ". LAPACK calls run one after another (lax.map), as pairwise runs them on CPU."
        )
    report(
        a,
        title="bench_pairwise: all-pairs PWCCA",
        command=f"python benchmarks/bench_pairwise.py --n {a.n} --d {a.d} --scaling {a.scaling}"
        + (f" --sweep --sweep-m {a.sweep_m}" if a.sweep else "")
        + (" --per-pair" if a.per_pair else ""),
        notes=notes,
        header=header,
        rows=rows,
        readme={
            "label": f"`bench_pairwise` PWCCA n = {a.n}, d = {a.d}, m = {last[0]}: speedup over "
            "numpy / over a jit loop; pairwise / floor (blocked products)",
            "value": readme_value,
        },
    )


if __name__ == "__main__":
    main()
