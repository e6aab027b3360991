"""All-pairs PWCCA: jaxcca.pairwise vs a loop of single pairs vs NumPy, and the floor.

m representations of n samples x d neurons, float32, side by side in one run:
  pairwise   jaxcca.pairwise(xs, measure="pwcca")
  jit loop   a Python loop over the jitted single-pair jaxcca.pwcca_similarity
  numpy      a plain NumPy float64 PWCCA per pair (covariances, eigh inverse square
             roots, SVD, weights), timed on a subset of pairs and scaled to m*m
  floor      one matrix product of all whitened bases stacked side by side,
             Q_all^T Q_all with Q_all of shape (n, m*d): the n-sized work any method needs

    python benchmarks/bench_pairwise.py [--d 64] [--n 2000] [--scaling 16,32,64,128]

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

sys.path.insert(0, os.path.dirname(__file__))

from _timing import best_of  # noqa: E402

import jaxcca  # noqa: E402
from jaxcca._whiten import whiten  # noqa: E402


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


def run(m, n, d, numpy_pairs, loop_pairs):
    xs = make(m, n, d)
    t_pw = best_of(lambda a: jaxcca.pairwise(a, measure="pwcca", block_size=8), xs, repeat=3)
    q_all = jnp.concatenate(list(jax.vmap(lambda x: whiten(x).q)(jnp.asarray(xs))), axis=1)
    floor = jax.jit(lambda q: jnp.matmul(q.T, q, precision=jax.lax.Precision.HIGHEST))
    t_floor = best_of(floor, q_all, repeat=3)
    f = jax.jit(jaxcca.pwcca_similarity)
    jax.block_until_ready(f(xs[0], xs[1]))
    pairs = [(i % m, (i * 7 + 3) % m) for i in range(loop_pairs)]
    t0 = time.perf_counter()
    for i, j in pairs:
        jax.block_until_ready(f(xs[i], xs[j]))
    t_loop = (time.perf_counter() - t0) / loop_pairs * m * m
    x64 = xs.astype(np.float64)
    t0 = time.perf_counter()
    for i, j in pairs[:numpy_pairs]:
        np_pwcca(x64[i], x64[j])
    t_np = (time.perf_counter() - t0) / numpy_pairs * m * m
    return t_pw, t_floor, t_loop, t_np


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--d", type=int, default=64)
    p.add_argument("--numpy-pairs", type=int, default=64)
    p.add_argument("--loop-pairs", type=int, default=128)
    p.add_argument("--scaling", default="16,32,64,128")
    a = p.parse_args()
    print(
        f"pairwise PWCCA, n={a.n}, d={a.d}, float32, {jax.device_count()} {jax.default_backend()} device(s)"
    )
    print(
        f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}; jit loop timed on {a.loop_pairs} "
        f"pairs and numpy on {a.numpy_pairs} pairs, both scaled to m*m pairs"
    )
    print(
        f"{'m':>5s} {'pairs':>7s} {'pairwise s':>11s} {'floor s':>9s} {'jit loop s':>11s} {'numpy s':>9s} {'pw/floor':>9s} {'loop/pw':>8s} {'numpy/pw':>9s}"
    )
    for m in [int(v) for v in a.scaling.split(",")]:
        t_pw, t_floor, t_loop, t_np = run(m, a.n, a.d, a.numpy_pairs, a.loop_pairs)
        print(
            f"{m:5d} {m * m:7d} {t_pw:11.3f} {t_floor:9.3f} {t_loop:11.3f} {t_np:9.3f} {t_pw / t_floor:8.2f}x {t_loop / t_pw:7.1f}x {t_np / t_pw:8.1f}x"
        )


if __name__ == "__main__":
    main()
