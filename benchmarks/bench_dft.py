"""DFT-CCA of two conv layers of shape (256, 16, 16, 64), float32 and float64.

Side by side in one run: jaxcca.dft_cca (mean and projection-weighted),
plain CCA on channels-as-neurons (65,536 datapoints x 64 neurons), and a NumPy
float64 per-frequency loop written the straightforward way (full 2-D FFT, then
at each of the H*W frequencies: Hermitian covariances, eigh inverse square
roots, SVD), as google/svcca's dft_ccas.py structures it. Prints ratios.

    python benchmarks/bench_dft.py [--n 256] [--hw 16] [--c 64]
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


def np_inv_sqrt_herm(c):
    w, v = np.linalg.eigh(c)
    return (v / np.sqrt(np.maximum(w, 1e-300))) @ v.conj().T


def numpy_dft_cca(x, y):
    """Mean canonical correlation over the full frequency grid, one frequency at a time."""
    fx = np.fft.fft2(x, axes=(1, 2))
    fy = np.fft.fft2(y, axes=(1, 2))
    _, h, w, _ = x.shape
    rhos = []
    for i in range(h):
        for j in range(w):
            zx = fx[:, i, j] - fx[:, i, j].mean(0)
            zy = fy[:, i, j] - fy[:, i, j].mean(0)
            sxx, syy, sxy = zx.conj().T @ zx, zy.conj().T @ zy, zx.conj().T @ zy
            s = np.linalg.svd(np_inv_sqrt_herm(sxx) @ sxy @ np_inv_sqrt_herm(syy), compute_uv=False)
            rhos.append(s)
    return float(np.mean(rhos))


def make_layers(n, hw, c, seed=0):
    """Two related conv-like layers (spatially smooth, correlated channels)."""
    rng = np.random.default_rng(seed)
    base = rng.standard_normal((n, hw, hw, c))
    base = base + np.roll(base, 1, axis=1) + np.roll(base, 1, axis=2)
    x = np.tanh(base @ (rng.standard_normal((c, c)) / np.sqrt(c)))
    y = np.maximum(x @ rng.standard_normal((c, c)) / np.sqrt(c), 0) + 0.5 * rng.standard_normal(
        (n, hw, hw, c)
    )
    return x, y


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=256)
    p.add_argument("--hw", type=int, default=16)
    p.add_argument("--c", type=int, default=64)
    p.add_argument("--repeat", type=int, default=3)
    a = p.parse_args()
    x64, y64 = make_layers(a.n, a.hw, a.c)
    print(f"layers {x64.shape}, {jax.devices()[0].platform}, best of {a.repeat}")

    t_np = best_of(numpy_dft_cca, x64, y64, repeat=a.repeat, warmup=0)
    ref = numpy_dft_cca(x64, y64)
    print(f"numpy per-frequency loop (float64)      {t_np * 1e3:9.1f} ms   similarity {ref:.6f}")
    mean_fn = jax.jit(jaxcca.dft_cca_similarity)
    full_fn = jax.jit(jaxcca.dft_cca)
    chan_fn = jax.jit(jaxcca.cca_similarity)
    for dtype in (np.float32, np.float64):
        x, y = jax.device_put(x64.astype(dtype)), jax.device_put(y64.astype(dtype))
        xc = jaxcca.conv_to_neurons(x, mode="channels")
        yc = jaxcca.conv_to_neurons(y, mode="channels")
        t_mean = best_of(mean_fn, x, y, repeat=a.repeat)
        t_full = best_of(full_fn, x, y, repeat=a.repeat)
        t_chan = best_of(chan_fn, xc, yc, repeat=a.repeat)
        sim = float(mean_fn(x, y))
        name = np.dtype(dtype).name
        print(
            f"jaxcca.dft_cca_similarity ({name})     {t_mean * 1e3:9.1f} ms   "
            f"similarity {sim:.6f} (|diff| {abs(sim - ref):.1e})   "
            f"{t_np / t_mean:5.1f}x faster than numpy"
        )
        print(
            f"jaxcca.dft_cca with weights ({name})   {t_full * 1e3:9.1f} ms   "
            f"{t_np / t_full:5.1f}x faster than numpy"
        )
        print(
            f"cca on channels-as-neurons ({name})    {t_chan * 1e3:9.1f} ms   "
            f"(a different quantity; dft_cca costs {t_mean / t_chan:4.1f}x this)"
        )


if __name__ == "__main__":
    main()
