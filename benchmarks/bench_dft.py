"""DFT-CCA of two conv layers of shape (256, 16, 16, 64), float32 and float64.

Side by side in one run: jaxcca.dft_cca (mean and projection-weighted),
plain CCA on channels-as-neurons (65,536 datapoints x 64 neurons), and a NumPy
float64 per-frequency loop written the straightforward way (full 2-D FFT, then
at each of the H*W frequencies: Hermitian covariances, eigh inverse square
roots, SVD), as google/svcca's dft_ccas.py structures it, and the floor: the FFTs
of both layers plus, at every frequency jaxcca computes (the rfft half of the grid),
the three complex Gram products ``Zx^H Zx``, ``Zy^H Zy``, ``Zx^H Zy`` as one batched
product each, float32 under jit. Timed round robin in one run; prints ratios.

    python benchmarks/bench_dft.py [--n 256] [--hw 16] [--c 64] [--markdown PATH]
"""

import argparse
import functools
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

from _timing import add_report_args, best_of_each, ratio, report  # noqa: E402

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


def floor_fn(x, y):
    """FFTs + the three complex Gram products at every rfft frequency (batched)."""
    fx, fy = jnp.fft.rfft2(x, axes=(1, 2)), jnp.fft.rfft2(y, axes=(1, 2))
    # (F, N, C): frequencies lead, so each Gram product is one batched matmul
    zx = jnp.moveaxis(fx.reshape(fx.shape[0], -1, fx.shape[-1]), 1, 0)
    zy = jnp.moveaxis(fy.reshape(fy.shape[0], -1, fy.shape[-1]), 1, 0)
    hi = jax.lax.Precision.HIGHEST
    zxh = jnp.conj(jnp.swapaxes(zx, 1, 2))
    return (
        jnp.matmul(zxh, zx, precision=hi),
        jnp.matmul(jnp.conj(jnp.swapaxes(zy, 1, 2)), zy, precision=hi),
        jnp.matmul(zxh, zy, precision=hi),
    )


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--n", type=int, default=256)
    p.add_argument("--hw", type=int, default=16)
    p.add_argument("--c", type=int, default=64)
    p.add_argument("--repeat", type=int, default=3)
    add_report_args(p)
    a = p.parse_args()
    x64, y64 = make_layers(a.n, a.hw, a.c)
    mean_fn = jax.jit(jaxcca.dft_cca_similarity)
    full_fn = jax.jit(jaxcca.dft_cca)
    chan_fn = jax.jit(jaxcca.cca_similarity)
    floor = jax.jit(floor_fn)
    calls = {"numpy": functools.partial(numpy_dft_cca, x64, y64)}
    data = {}
    for dtype in (np.float32, np.float64):
        name = np.dtype(dtype).name
        x, y = jax.device_put(x64.astype(dtype)), jax.device_put(y64.astype(dtype))
        xc = jaxcca.conv_to_neurons(x, mode="channels")
        yc = jaxcca.conv_to_neurons(y, mode="channels")
        data[name] = (x, y)
        calls[f"mean {name}"] = functools.partial(mean_fn, x, y)
        calls[f"weights {name}"] = functools.partial(full_fn, x, y)
        calls[f"channels {name}"] = functools.partial(chan_fn, xc, yc)
    calls["floor"] = functools.partial(floor, *data["float32"])
    t = best_of_each(calls, repeat=a.repeat)
    ref = numpy_dft_cca(x64, y64)
    rows = []
    for name in ("float32", "float64"):
        sim = float(mean_fn(*data[name]))
        for label, key in (
            ("dft_cca_similarity", "mean"),
            ("dft_cca (with weights)", "weights"),
            ("cca on channels-as-neurons", "channels"),
        ):
            tk = t[f"{key} {name}"]
            rows.append(
                [
                    f"{label} {name}",
                    f"{tk * 1e3:.1f}",
                    ratio(t["numpy"], tk),
                    ratio(tk, t["floor"]),
                    f"{abs(sim - ref):.1e}" if key == "mean" else "",
                ]
            )
    # which whitening each frequency took on CPU
    from jaxcca._dft import (
        DFT_GRAM_FORM_MAX_COND,
        DFT_TWO_PASS_MAX_COND,
        _coefficients,
        _similarity_by_grams,
    )

    _, zx, zy, _ = _coefficients(*data["float32"], recentre=False)
    path = np.asarray(_similarity_by_grams(zx, zy, None)[3])
    n_gram, n_two, n_general = np.bincount(path, minlength=3)
    notes = [
        f"Layers {x64.shape}, {jax.default_backend()}, best of {a.repeat}, timed round robin "
        f"in one run. NumPy float64 per-frequency loop: {t['numpy'] * 1e3:.1f} ms, "
        f"similarity {ref:.6f}.",
        f"Floor: rfft2 of both layers + the three complex Gram products at every rfft "
        f"frequency, float32: {t['floor'] * 1e3:.1f} ms. 'cca on channels-as-neurons' is "
        "a different quantity, listed for scale.",
        f"On CPU, dft_cca_similarity float32 whitened {n_gram} of {path.size} computed "
        f"frequencies in the Gram form (cond(G) <= {DFT_GRAM_FORM_MAX_COND:g} on both sides), "
        f"{n_two} with a second pass from the data (cond(G) <= {DFT_TWO_PASS_MAX_COND:g}) and "
        f"{n_general} by the general path; dft_cca (with weights) takes the general path "
        "everywhere.",
    ]
    header = ["computation", "ms", "speedup over numpy", "time / floor", "abs(sim - numpy)"]
    report(
        a,
        title="bench_dft: DFT-CCA",
        command=f"python benchmarks/bench_dft.py --n {a.n} --hw {a.hw} --c {a.c}",
        notes=notes,
        header=header,
        rows=rows,
        readme={
            "label": f"`bench_dft` {x64.shape}, float32: speedup over a numpy per-frequency "
            "loop; time / floor (FFT + per-frequency products)",
            "value": f"{rows[0][2]}; {rows[0][3]}",
        },
    )


if __name__ == "__main__":
    main()
