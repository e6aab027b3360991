"""CKA (linear, RBF, debiased) and Procrustes: jaxcca vs plain NumPy, side by side.

NumPy columns transcribe the formulas as Kornblith et al.'s demonstration
notebook computes them (feature-space linear CKA; Gram-matrix RBF CKA with the
median heuristic) and netrep's Procrustes (SVD of x^T y). Prints times and
ratios in one run; also many pairs at once (jax.vmap vs a NumPy loop).

    python benchmarks/bench_cka.py [--n 10000] [--d 500] [--n-rbf 2000] [--pairs 64]
"""

import argparse
import os
import sys

import jax
import numpy as np

jax.config.update("jax_enable_x64", True)
# this checkout's jaxcca (not an installed one), and the helpers beside this script
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]

from _timing import best_of  # noqa: E402

import jaxcca  # noqa: E402


def np_linear_cka(x, y, debiased=False):
    x, y = x - x.mean(0), y - y.mean(0)
    sxy = np.linalg.norm(x.T @ y) ** 2
    sxx, syy = np.linalg.norm(x.T @ x) ** 2, np.linalg.norm(y.T @ y) ** 2
    if debiased:
        n = x.shape[0]
        rx, ry = np.sum(x * x, 1), np.sum(y * y, 1)
        tx, ty = rx.sum(), ry.sum()

        def u(s, a, b, ta, tb):
            return s - n / (n - 2.0) * a @ b + ta * tb / ((n - 1) * (n - 2))

        sxy, sxx, syy = u(sxy, rx, ry, tx, ty), u(sxx, rx, rx, tx, tx), u(syy, ry, ry, ty, ty)
    return sxy / np.sqrt(sxx * syy)


def np_rbf_cka(x, y, threshold=1.0):
    def gram(a):
        g = a @ a.T
        sq = np.diag(g)
        d2 = sq[:, None] + sq[None, :] - 2 * g
        return np.exp(-d2 / (2 * threshold**2 * np.median(d2)))

    def centre(k):
        m = k.mean(0)
        return k - m[:, None] - m[None, :] + m.mean()

    kx, ky = centre(gram(x)), centre(gram(y))
    return np.sum(kx * ky) / (np.linalg.norm(kx) * np.linalg.norm(ky))


def np_procrustes_distance(x, y):
    x, y = x - x.mean(0), y - y.mean(0)
    x, y = x / np.linalg.norm(x), y / np.linalg.norm(y)
    return np.sqrt(max(2 - 2 * np.linalg.svd(x.T @ y, compute_uv=False).sum(), 0.0))


def pair(rng, n, d):
    x = rng.standard_normal((n, d)) @ rng.standard_normal((d, d)) / np.sqrt(d)
    y = np.tanh(x @ rng.standard_normal((d, d)) / np.sqrt(d)) + 0.3 * rng.standard_normal((n, d))
    return x, y


def row(name, t_np, t64, t32, err):
    print(
        f"{name:22s} {t_np:10.4f} {t64:10.4f} {t32:10.4f} {t_np / t64:11.2f}x {t_np / t32:11.2f}x {err:10.2e}"
    )


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--n", type=int, default=10_000)
    p.add_argument("--d", type=int, default=500)
    p.add_argument("--n-rbf", type=int, default=2000)
    p.add_argument("--pairs", type=int, default=64)
    p.add_argument("--repeat", type=int, default=3)
    a = p.parse_args()
    rng = np.random.default_rng(0)
    x, y = pair(rng, a.n, a.d)
    xr, yr = x[: a.n_rbf], y[: a.n_rbf]
    cases = {
        f"linear ({a.n}x{a.d})": (jaxcca.cka_similarity, np_linear_cka, x, y),
        "linear debiased": (
            lambda u, v: jaxcca.cka_similarity(u, v, debiased=True),
            lambda u, v: np_linear_cka(u, v, True),
            x,
            y,
        ),
        f"rbf ({a.n_rbf}x{a.d})": (
            lambda u, v: jaxcca.cka_similarity(u, v, kernel="rbf"),
            np_rbf_cka,
            xr,
            yr,
        ),
        f"procrustes ({a.n}x{a.d})": (jaxcca.procrustes_distance, np_procrustes_distance, x, y),
    }
    print(f"{jax.device_count()} {jax.default_backend()} device(s)")
    print(
        f"{'measure':22s} {'numpy f64':>10s} {'jax f64':>10s} {'jax f32':>10s} {'f64 speedup':>12s} {'f32 speedup':>12s} {'|f32-np|':>10s}"
    )
    for name, (jfn, nfn, u, v) in cases.items():
        jf = jax.jit(jfn)
        u32, v32 = u.astype(np.float32), v.astype(np.float32)
        t_np = best_of(nfn, u, v, repeat=a.repeat, warmup=0)
        t64 = best_of(jf, u, v, repeat=a.repeat)
        t32 = best_of(jf, u32, v32, repeat=a.repeat)
        row(name, t_np, t64, t32, abs(float(jf(u32, v32)) - float(nfn(u, v))))

    # Many small pairs: one vmapped computation vs a NumPy loop.
    n_small, d_small = 1000, 64
    pairs = [pair(rng, n_small, d_small) for _ in range(a.pairs)]
    xs, ys = np.stack([q[0] for q in pairs]), np.stack([q[1] for q in pairs])
    for name, jfn, nfn in [
        ("linear", jaxcca.cka_similarity, np_linear_cka),
        ("procrustes", jaxcca.procrustes_distance, np_procrustes_distance),
    ]:
        jf = jax.jit(jax.vmap(jfn))

        def loop(u, v, nfn=nfn):
            return np.array([nfn(s, t) for s, t in zip(u, v, strict=True)])

        t_np = best_of(loop, xs, ys, repeat=a.repeat, warmup=0)
        t64 = best_of(jf, xs, ys, repeat=a.repeat)
        xs32, ys32 = xs.astype(np.float32), ys.astype(np.float32)
        t32 = best_of(jf, xs32, ys32, repeat=a.repeat)
        err = float(np.max(np.abs(np.asarray(jf(xs32, ys32)) - loop(xs, ys))))
        row(f"{name} vmap {a.pairs}x({n_small}x{d_small})", t_np, t64, t32, err)


if __name__ == "__main__":
    main()
