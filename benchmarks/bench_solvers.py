"""Small-matrix solvers: default vs QR vs Jacobi for eigh and SVD, float32 error and time.

jaxcca's per-pair work is small decompositions: ``eigh`` of ``d x d`` Gram
matrices and SVDs of ``d x d`` cross products, one per pair or batched over
thousands of pairs (``pairwise``). Which algorithm is both accurate in float32
and fast depends on the backend, the size ``d`` and the batch. For every
``d`` in ``--sizes`` and batch in ``--batches`` (skipping combinations above
``--max-elements`` matrix entries in all), this times each solver on a batch of
float32 matrices (jit, vmap, best of ``--repeat``) and measures its float32
error against a float64 NumPy reference on the same float32-rounded matrices:

  eigh  symmetric positive definite ``A A^T / d + 1e-3 I`` (condition ~1e3-1e4);
        error: max |lambda32 - lambda64| / max lambda64, and max |V^T V - I|
  svd   ``U diag(s) V^T`` with s spread over [1e-3, 1] (canonical correlations);
        error: max |s32 - s64| / max s64, and max |U^T U - I|

Solvers: ``default`` (``jnp.linalg``), ``qr`` (LAPACK-style QR / divide and
conquer: ``EighImplementation.QR``, ``SvdAlgorithm.QR``), ``jacobi``
(``EighImplementation.JACOBI``, ``SvdAlgorithm.JACOBI``). A solver the backend
does not implement shows "n/a". The last column names, per row group, the
fastest solver whose value error is below ``--tol`` (default 1e-6).

    python benchmarks/bench_solvers.py [--sizes 16,32,64,128,256,512]
        [--batches 1,16,256,4096] [--max-elements 16777216] [--markdown PATH]
"""

import argparse
import os
import sys

os.environ.setdefault("OMP_NUM_THREADS", "1")

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

# this checkout's jaxcca (not an installed one), and the helpers beside this script
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]

from _timing import add_report_args, best_of, report  # noqa: E402

EIGH = {
    "default": lambda a: jnp.linalg.eigh(a)[0:2],
    "qr": lambda a: lax.linalg.eigh(a, implementation=lax.linalg.EighImplementation.QR)[::-1],
    "jacobi": lambda a: lax.linalg.eigh(a, implementation=lax.linalg.EighImplementation.JACOBI)[
        ::-1
    ],
}
SVD = {
    "default": lambda a: jnp.linalg.svd(a, full_matrices=False),
    "qr": lambda a: lax.linalg.svd(a, full_matrices=False, algorithm=lax.linalg.SvdAlgorithm.QR),
    "jacobi": lambda a: lax.linalg.svd(
        a, full_matrices=False, algorithm=lax.linalg.SvdAlgorithm.JACOBI
    ),
}


def make(op, batch, d, seed=0):
    """A float32 batch of test matrices (see the module docstring)."""
    rng = np.random.default_rng(seed)
    if op == "eigh":
        a = rng.standard_normal((batch, d, d))
        m = a @ np.swapaxes(a, 1, 2) / d + 1e-3 * np.eye(d)
        return m.astype(np.float32)
    q1, _ = np.linalg.qr(rng.standard_normal((batch, d, d)))
    q2, _ = np.linalg.qr(rng.standard_normal((batch, d, d)))
    s = np.logspace(0, -3, d)
    return ((q1 * s[None, None, :]) @ np.swapaxes(q2, 1, 2)).astype(np.float32)


def errors(op, fn, a, n_check):
    """(value error, orthogonality error) of ``fn`` on the first ``n_check`` matrices."""
    sub = a[:n_check]
    out = jax.jit(jax.vmap(fn))(jnp.asarray(sub))
    a64 = sub.astype(np.float64)
    eye = np.eye(a.shape[-1])
    if op == "eigh":
        vals, vecs = (np.asarray(o, np.float64) for o in out)
        ref = np.linalg.eigvalsh(a64)
        vals = np.sort(vals, axis=-1)
    else:
        vecs, vals = (np.asarray(o, np.float64) for o in out[:2])
        ref = np.linalg.svd(a64, compute_uv=False)
        vals = -np.sort(-vals, axis=-1)
    val_err = float(np.max(np.abs(vals - ref) / np.max(np.abs(ref), axis=-1, keepdims=True)))
    orth = float(np.max(np.abs(np.swapaxes(vecs, 1, 2) @ vecs - eye)))
    return val_err, orth


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--sizes", default="16,32,64,128,256,512")
    p.add_argument("--batches", default="1,16,256,4096")
    p.add_argument("--max-elements", type=int, default=2**24)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--check", type=int, default=8, help="matrices per batch checked vs float64")
    p.add_argument("--tol", type=float, default=1e-6)
    add_report_args(p)
    a = p.parse_args()
    rows, choices = [], []
    for op, solvers in (("eigh", EIGH), ("svd", SVD)):
        for d in [int(v) for v in a.sizes.split(",")]:
            for batch in [int(v) for v in a.batches.split(",")]:
                if batch * d * d > a.max_elements:
                    continue
                mats = make(op, batch, d)
                dev = jax.device_put(mats)
                group = []
                for name, fn in solvers.items():
                    f = jax.jit(jax.vmap(fn))
                    try:
                        t = best_of(f, dev, repeat=a.repeat)
                        val_err, orth = errors(op, fn, mats, min(a.check, batch))
                    except Exception as e:  # noqa: BLE001 - a backend may not implement it
                        print(f"{op} d={d} batch={batch} {name}: n/a ({type(e).__name__})")
                        rows.append([op, d, batch, name, "n/a", "n/a", "n/a", "n/a"])
                        continue
                    group.append((t, name, val_err))
                    rows.append(
                        [
                            op,
                            d,
                            batch,
                            name,
                            f"{t * 1e3:.3f}",
                            f"{t / batch * 1e6:.1f}",
                            f"{val_err:.1e}",
                            f"{orth:.1e}",
                        ]
                    )
                    print(" | ".join(str(c) for c in rows[-1]), flush=True)
                ok = sorted(g for g in group if g[2] <= a.tol)
                fastest = min(group)[1] if group else "n/a"
                choices.append([op, d, batch, ok[0][1] if ok else "none", fastest])
    notes = [
        f"float32 on {jax.default_backend()}, jit + vmap over the batch, best of {a.repeat}; "
        f"errors on the first {a.check} matrices of each batch against float64 NumPy.",
        f"Batches above {a.max_elements} matrix entries in all are skipped. OMP_NUM_THREADS="
        f"{os.environ['OMP_NUM_THREADS']}.",
    ]
    header = [
        "op",
        "d",
        "batch",
        "solver",
        "ms per batch",
        "us per matrix",
        "value err",
        "orth err",
    ]
    report(
        a,
        title="bench_solvers: small eigh / SVD, default vs QR vs Jacobi",
        command=f"python benchmarks/bench_solvers.py --sizes {a.sizes} --batches {a.batches} "
        f"--max-elements {a.max_elements}",
        notes=notes,
        header=header,
        rows=rows,
        readme={"label": "", "value": ""},
    )
    a.json = None  # one JSON per script: the full table above
    report(
        a,
        title=f"bench_solvers: fastest solver with value error <= {a.tol:g}",
        command="(same run)",
        notes=[],
        header=["op", "d", "batch", f"fastest with err <= {a.tol:g}", "fastest overall"],
        rows=choices,
        readme={"label": "", "value": ""},
    )


if __name__ == "__main__":
    main()
