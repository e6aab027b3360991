"""Permutation tests: jaxcca.permutation_test vs recomputing the measure per draw, and the floor.

B permutations of y's rows, n samples x d neurons, float32, side by side in one run:
  permutation_test   jaxcca.permutation_test(x, y, measure=..., n_permutations=B): each
                     representation whitened once, a draw is q_x^T (P q_y) plus a small
                     decomposition (one compiled call)
  jit loop           a Python loop over the jitted single-pair jaxcca.*_similarity(x, y[perm])
                     (as bench_pairwise's "jit loop"; both sides whitened per draw), timed on
                     --loop-draws draws and scaled to B
  jit map            one jitted lax.map over the draws: draw i makes the same permutation as
                     permutation_test (in the loop, like permutation_test does) and calls the
                     same function (XLA hoists x's whitening out of the loop, so only y's is
                     redone per draw); timed on --loop-draws draws and scaled to B
  floor              the products alone: q_x^T (P q_y) for the B permutations (gather and
                     matrix product, chunks of 64 draws), on precomputed bases and permutations

    python benchmarks/bench_stats.py [--n 2000] [--d 64] [--draws 1000] [--measures cca,pwcca]

OMP_NUM_THREADS defaults to 1, as in the other benchmarks (see bench_pairwise.py).
"""

import argparse
import os
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))

from _timing import best_of  # noqa: E402

import jaxcca  # noqa: E402
from jaxcca._whiten import whiten  # noqa: E402

SIMILARITY = {
    "cca": jaxcca.cca_similarity,
    "svcca": jaxcca.svcca_similarity,
    "pwcca": jaxcca.pwcca_similarity,
    "cka": jaxcca.cka_similarity,
    "procrustes": jaxcca.procrustes_similarity,
}


def make(n, d, seed=0):
    rng = np.random.default_rng(seed)
    base = rng.standard_normal((n, d))
    x = np.tanh(base @ rng.standard_normal((d, d)) / np.sqrt(d)) + rng.standard_normal((n, d))
    y = base @ rng.standard_normal((d, d)) / np.sqrt(d) + 2.0 * rng.standard_normal((n, d))
    return x.astype(np.float32), y.astype(np.float32)


def perms(key, draws, n):
    return jax.vmap(lambda i: jaxcca._stats.permutation_indices(key, i, n))(jnp.arange(draws))


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--d", type=int, default=64)
    p.add_argument("--draws", type=int, default=1000)
    p.add_argument("--loop-draws", type=int, default=200)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--measures", default="cca,pwcca")
    a = p.parse_args()
    x, y = make(a.n, a.d)
    key = jax.random.key(0)
    print(
        f"permutation test, {a.draws} permutations, n={a.n}, d={a.d}, float32, "
        f"{jax.device_count()} {jax.default_backend()} device(s), "
        f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}"
    )
    print(f"jit loop timed on {a.loop_draws} draws and scaled to {a.draws}")

    # floor: the products alone, on precomputed bases and permutations
    qx, qy = whiten(jnp.asarray(x)).q, whiten(jnp.asarray(y)).q
    chunk = 64
    padded = -(-a.draws // chunk) * chunk
    all_perms = perms(key, padded, a.n).reshape(padded // chunk, chunk, a.n)
    products = jax.jit(
        lambda qx, qy, ps: jax.lax.map(
            jax.vmap(lambda p: jnp.matmul(qx.T, qy[p], precision=jax.lax.Precision.HIGHEST)), ps
        )
    )
    t_floor = best_of(products, qx, qy, all_perms, repeat=a.repeat) * a.draws / padded

    print(
        f"{'measure':>8s} {'perm_test s':>11s} {'jit loop s':>10s} {'jit map s':>9s} "
        f"{'floor s':>7s} {'loop/perm_test':>14s} {'map/perm_test':>13s} "
        f"{'perm_test/floor':>15s} {'max|null - map|':>15s}"
    )
    for measure in a.measures.split(","):
        sim = SIMILARITY[measure]

        def fast(x, y, key, measure=measure):
            return jaxcca.permutation_test(x, y, measure=measure, n_permutations=a.draws, key=key)

        t_fast = best_of(fast, x, y, key, repeat=a.repeat)
        res = fast(x, y, key)
        loop_perms = perms(key, a.loop_draws, a.n)
        single = jax.jit(sim)
        xj, yj = jnp.asarray(x), jnp.asarray(y)
        jax.block_until_ready(single(xj, yj[loop_perms[0]]))
        t0 = time.perf_counter()
        for p_ in loop_perms:
            jax.block_until_ready(single(xj, yj[p_]))
        t_loop = (time.perf_counter() - t0) * a.draws / a.loop_draws
        mapped = jax.jit(
            lambda x, y, k, sim=sim: jax.lax.map(
                lambda i: sim(x, y[jaxcca._stats.permutation_indices(k, i, a.n)]),  # noqa: B023
                jnp.arange(a.loop_draws),
            )
        )
        t_map = best_of(mapped, x, y, key, repeat=1) * a.draws / a.loop_draws
        naive = mapped(x, y, key)
        err = float(jnp.max(jnp.abs(naive - res.null[: a.loop_draws])))
        print(
            f"{measure:>8s} {t_fast:11.3f} {t_loop:10.3f} {t_map:9.3f} {t_floor:7.3f} "
            f"{t_loop / t_fast:13.1f}x {t_map / t_fast:12.1f}x {t_fast / t_floor:14.2f}x "
            f"{err:15.1e}"
        )


if __name__ == "__main__":
    main()
