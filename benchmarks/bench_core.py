"""cca / svcca / pwcca on two layers of 10,000 samples x 500 neurons, against the floor.

(The google/svcca layout would call these 500 x 10000 arrays: neurons x datapoints.)
Side by side in one run (round robin, best of ``--repeat``): jaxcca in float32 and
float64, a plain NumPy float64 implementation of the same formulas (covariances, eigh
inverse square roots, SVD) as google/svcca computes them, and the floor: the three
Gram products ``x^T x``, ``y^T y``, ``x^T y`` in float32 under jit, the n-sized work
any covariance-based CCA needs. Prints each measure's time as a multiple of the floor
and its speedup over NumPy, and the float32 error against float64.

    python benchmarks/bench_core.py [--n 10000] [--d 500] [--markdown PATH] [--json PATH]

OMP_NUM_THREADS defaults to 1 here (jaxlib's CPU LAPACK stalls next to XLA's thread pool
otherwise); XLA's matrix products still use every core. NumPy is timed in this
process, interleaved with jax (one BLAS thread), and with ``--numpy-all-cores`` also in a
subprocess without jax on every core (``_timing.numpy_all_cores``); the speedups are over
the faster of the two.
"""

import argparse
import functools
import json
import os
import sys

os.environ.setdefault("OMP_NUM_THREADS", "1")

import jax
import jax.numpy as jnp
import numpy as np

jax.config.update("jax_enable_x64", True)
# this checkout's jaxcca (not an installed one), and the helpers beside this script
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]

from _timing import (  # noqa: E402
    add_report_args,
    best_of_each,
    numpy_all_cores,
    numpy_best_of,
    ratio,
    report,
)

import jaxcca  # noqa: E402

HIGHEST = jax.lax.Precision.HIGHEST


def np_inv_sqrt(c):
    w, v = np.linalg.eigh(c)
    return (v / np.sqrt(np.maximum(w, 1e-300))) @ v.T


def np_cca(x, y):
    xc, yc = x - x.mean(0), y - y.mean(0)
    n = x.shape[0]
    sxx, syy, sxy = xc.T @ xc / (n - 1), yc.T @ yc / (n - 1), xc.T @ yc / (n - 1)
    ixx = np_inv_sqrt(sxx)
    u, s, _ = np.linalg.svd(ixx @ sxy @ np_inv_sqrt(syy))
    return u, s, xc, ixx


def np_reference_style_cca(x, y):
    """The steps google/svcca's get_cca_similarity takes (neurons x datapoints)."""
    a1, a2 = x.T, y.T
    d1 = a1.shape[0]
    cov = np.cov(a1, a2)
    sxx, sxy, syy = cov[:d1, :d1], cov[:d1, d1:], cov[d1:, d1:]
    xmax, ymax = np.max(np.abs(sxx)), np.max(np.abs(syy))
    sxx, syy, sxy = sxx / xmax, syy / ymax, sxy / np.sqrt(xmax * ymax)

    def sqrtm_psd(c):
        w, v = np.linalg.eigh(c)
        return (v * np.sqrt(np.maximum(w, 0))) @ v.T

    ixx, iyy = sqrtm_psd(np.linalg.pinv(sxx)), sqrtm_psd(np.linalg.pinv(syy))
    u, s, vt = np.linalg.svd(ixx @ sxy @ iyy)
    return s.mean()


def np_cca_similarity(x, y):
    return np_cca(x, y)[1].mean()


def np_svcca_similarity(x, y, keep=0.99):
    def reduce(a):
        a = a - a.mean(0)
        u, s, _ = np.linalg.svd(a, full_matrices=False)
        k = int(np.searchsorted(np.cumsum(s**2) / np.sum(s**2), keep) + 1)
        return u[:, :k] * s[:k]

    return np_cca_similarity(reduce(x), reduce(y))


def np_pwcca_similarity(x, y):
    u, s, xc, ixx = np_cca(x, y)
    h = xc @ ixx @ u[:, : s.shape[0]]
    h /= np.linalg.norm(h, axis=0)
    alpha = np.abs(h.T @ xc).sum(1)
    return np.sum(alpha / alpha.sum() * s)


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--n", type=int, default=10_000)
    p.add_argument("--d", type=int, default=500)
    p.add_argument("--repeat", type=int, default=5)
    add_report_args(p)
    p.add_argument(
        "--numpy-all-cores",
        action="store_true",
        help="also time NumPy alone on every core in a subprocess (on a quiet machine)",
    )
    p.add_argument("--numpy-only", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((a.n, a.d)) @ rng.standard_normal((a.d, a.d)) / np.sqrt(a.d)
    y = np.tanh(x @ rng.standard_normal((a.d, a.d)) / np.sqrt(a.d)) + 0.3 * rng.standard_normal(
        (a.n, a.d)
    )
    np_fns = {
        "cca": np_cca_similarity,
        "svcca": np_svcca_similarity,
        "pwcca": np_pwcca_similarity,
        "google/svcca-style cca": np_reference_style_cca,
    }
    if a.numpy_only:
        print(json.dumps({k: numpy_best_of(f, x, y, repeat=a.repeat) for k, f in np_fns.items()}))
        return
    if a.numpy_all_cores:
        t_all, np_threads = numpy_all_cores(
            __file__, ["--n", str(a.n), "--d", str(a.d), "--repeat", str(a.repeat)]
        )
    else:
        t_all, np_threads = dict.fromkeys(np_fns, float("inf")), 0
    x32, y32 = jax.device_put(x.astype(np.float32)), jax.device_put(y.astype(np.float32))
    x64, y64 = jax.device_put(x), jax.device_put(y)
    measures = {
        "cca": jaxcca.cca_similarity,
        "svcca": jaxcca.svcca_similarity,
        "pwcca": jaxcca.pwcca_similarity,
    }
    floor = jax.jit(
        lambda x, y: (
            jnp.matmul(x.T, x, precision=HIGHEST),
            jnp.matmul(y.T, y, precision=HIGHEST),
            jnp.matmul(x.T, y, precision=HIGHEST),
        )
    )
    calls = {"floor": lambda: floor(x32, y32)}
    for name, jfn in measures.items():
        jf = jax.jit(jfn)
        calls[name + " f32"] = functools.partial(jf, x32, y32)
        calls[name + " f64"] = functools.partial(jf, x64, y64)
    for name, nfn in np_fns.items():
        calls[name + " numpy"] = functools.partial(nfn, x, y)
    t = best_of_each(calls, repeat=a.repeat)
    t_np = {k: min(t[k + " numpy"], t_all[k]) for k in np_fns}
    rows = []
    for name, jfn in measures.items():
        jf = jax.jit(jfn)
        v32, v64, vnp = float(jf(x32, y32)), float(jf(x64, y64)), float(np_fns[name](x, y))
        t32, t64, tnp = t[name + " f32"], t[name + " f64"], t_np[name]
        rows.append(
            [
                name,
                f"{t32 * 1e3:.0f}",
                f"{t64 * 1e3:.0f}",
                f"{t[name + ' numpy'] * 1e3:.0f} / {t_all[name] * 1e3:.0f}"
                if a.numpy_all_cores
                else f"{t[name + ' numpy'] * 1e3:.0f}",
                ratio(t32, t["floor"]),
                ratio(tnp, t32),
                ratio(tnp, t64),
                f"{abs(v32 - v64):.1e}",
                f"{abs(v64 - vnp):.1e}",
            ]
        )
    floor_ms = t["floor"] * 1e3
    notes = [
        f"Two layers of {a.n} samples x {a.d} neurons, {jax.device_count()} "
        f"{jax.default_backend()} device(s); best of {a.repeat}, timed round robin in one run.",
        f"Floor: the three Gram products x^T x, y^T y, x^T y in float32 under jit, "
        f"{floor_ms:.0f} ms. OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')} here.",
        (
            f"numpy f64 ms: in this process (1 BLAS thread) / alone on {np_threads} threads; "
            "speedups are over the faster of the two."
            if a.numpy_all_cores
            else "numpy f64 ms: in this process, one BLAS thread (--numpy-all-cores adds "
            "NumPy alone on every core; on a shared machine OpenBLAS threads stall)."
        ),
        f"google/svcca-style NumPy CCA (np.cov, pinv, eigh sqrt, svd): "
        f"{t_np['google/svcca-style cca'] * 1e3:.0f} ms, "
        f"jaxcca f32 cca is {ratio(t_np['google/svcca-style cca'], t['cca f32'])} faster.",
    ]
    header = [
        "measure",
        "jax f32 ms",
        "jax f64 ms",
        "numpy f64 ms",
        "f32 / floor",
        "f32 speedup over numpy",
        "f64 speedup over numpy",
        "abs(f32 - f64)",
        "abs(f64 - numpy)",
    ]
    readme = {
        "label": f"`bench_core` {a.n} x {a.d}, float32: speedup over numpy float64 "
        "(cca / svcca / pwcca); time / floor (3 Gram products)",
        "value": " / ".join(r[5] for r in rows) + "; " + " / ".join(r[4] for r in rows),
    }
    report(
        a,
        title="bench_core: cca, svcca, pwcca",
        command=f"python benchmarks/bench_core.py --n {a.n} --d {a.d} --repeat {a.repeat}",
        notes=notes,
        header=header,
        rows=rows,
        readme=readme,
    )


if __name__ == "__main__":
    main()
