"""cca / svcca / pwcca on two layers of 10,000 samples x 500 neurons.

(The google/svcca layout would call these 500 x 10000 arrays: neurons x datapoints.)
Side by side in one run: jaxcca in float32 and float64, and a plain NumPy float64
implementation of the same formulas (covariances, eigh inverse square roots, SVD),
as google/svcca computes them. Prints times and ratios.

    python benchmarks/bench_core.py [--n 10000] [--d 500]
"""

import argparse
import os
import sys

import jax
import numpy as np

jax.config.update("jax_enable_x64", True)
sys.path.insert(0, os.path.dirname(__file__))

from _timing import best_of  # noqa: E402

import jaxcca  # noqa: E402


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
    p.add_argument("--repeat", type=int, default=3)
    a = p.parse_args()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((a.n, a.d)) @ rng.standard_normal((a.d, a.d)) / np.sqrt(a.d)
    y = np.tanh(x @ rng.standard_normal((a.d, a.d)) / np.sqrt(a.d)) + 0.3 * rng.standard_normal(
        (a.n, a.d)
    )
    measures = {
        "cca": (jaxcca.cca_similarity, np_cca_similarity),
        "svcca": (jaxcca.svcca_similarity, np_svcca_similarity),
        "pwcca": (jaxcca.pwcca_similarity, np_pwcca_similarity),
    }
    print(
        f"two layers of {a.n} samples x {a.d} neurons; {jax.device_count()} {jax.default_backend()} device(s)"
    )
    t_ref = best_of(np_reference_style_cca, x, y, repeat=a.repeat, warmup=0)
    t_cca = best_of(np_cca_similarity, x, y, repeat=a.repeat, warmup=0)
    print(
        f"numpy float64 CCA written the google/svcca way (np.cov, pinv, eigh sqrt, svd): "
        f"{t_ref:.3f} s; the lean numpy CCA below: {t_cca:.3f} s"
    )
    print(
        f"{'measure':8s} {'numpy f64':>10s} {'jax f64':>10s} {'jax f32':>10s} {'f64 speedup':>12s} {'f32 speedup':>12s} {'|f32-np|':>10s}"
    )
    for name, (jfn, nfn) in measures.items():
        jf = jax.jit(jfn)
        t_np = best_of(nfn, x, y, repeat=a.repeat, warmup=0)
        t64 = best_of(jf, x, y, repeat=a.repeat)
        x32, y32 = x.astype(np.float32), y.astype(np.float32)
        t32 = best_of(jf, x32, y32, repeat=a.repeat)
        err = abs(float(jf(x32, y32)) - float(nfn(x, y)))
        if name == "cca":
            print(
                f"{'':8s} vs google/svcca-style numpy: f64 {t_ref / t64:.2f}x, f32 {t_ref / t32:.2f}x"
            )
        print(
            f"{name:8s} {t_np:10.3f} {t64:10.3f} {t32:10.3f} {t_np / t64:11.2f}x {t_np / t32:11.2f}x {err:10.2e}"
        )


if __name__ == "__main__":
    main()
