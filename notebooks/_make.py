"""Writes the notebooks from plain-Python cell lists (stored without outputs).

python notebooks/_make.py
"""

import pathlib

import nbformat

HERE = pathlib.Path(__file__).parent


def write(name, cells):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    for kind, src in cells:
        src = src.strip("\n")
        if kind == "md":
            nb.cells.append(nbformat.v4.new_markdown_cell(src))
        else:
            nb.cells.append(nbformat.v4.new_code_cell(src))
    nbformat.write(nb, HERE / name)


QUICKSTART = [
    (
        "md",
        """
# jaxcca quickstart

CCA, SVCCA and PWCCA as pure JAX functions. This notebook shows the API, the conventions,
`jit` / `vmap` / `grad`, what the numbers mean, and how they compare with google/svcca.
""",
    ),
    (
        "code",
        """
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # see the README's known issues (jax 0.10 on CPU)

import jax
import jax.numpy as jnp
import numpy as np

import jaxcca

jax.config.update("jax_enable_x64", True)  # float64 is optional; float32 is the default
""",
    ),
    (
        "md",
        """
## Layout: rows are samples, columns are neurons

Every measure takes `x` of shape `(n, d1)` and `y` of shape `(n, d2)`: the same `n` inputs
through two layers (or two networks). google/svcca uses the transpose (neurons x datapoints):
pass `acts.T` when you port code from it.
""",
    ),
    (
        "code",
        """
key1, key2, key3 = jax.random.split(jax.random.key(0), 3)
n = 2000
signal = jax.random.normal(key1, (n, 10))
x = signal @ jax.random.normal(key2, (10, 64)) + 0.5 * jax.random.normal(key3, (n, 64))
y = jnp.tanh(signal @ jax.random.normal(key3, (10, 48))) + 0.5 * jax.random.normal(key1, (n, 48))
x.shape, y.shape
""",
    ),
    (
        "code",
        """
res = jaxcca.cca(x, y)
print("mean CCA:", float(res.similarity), " ranks:", int(res.rank_x), int(res.rank_y))
print("first correlations:", np.round(np.asarray(res.rho[:12]), 3))
""",
    ),
    (
        "md",
        """
The 10 shared signal directions show up as correlations near 1; the rest are noise, which
pulls the plain mean down. SVCCA keeps the top singular directions first; PWCCA weights each
correlation by how much of x's activity lies along it.
""",
    ),
    (
        "code",
        """
print("svcca (99% variance):", float(jaxcca.svcca(x, y, keep=0.99).similarity))
print("svcca (10 directions):", float(jaxcca.svcca(x, y, keep=10).similarity))
pw = jaxcca.pwcca(x, y)
print("pwcca:", float(pw.similarity), " (unweighted mean:", float(pw.mean_rho), ")")
print("google/svcca's pwcca convention:", float(jaxcca.pwcca(x, y, convention="svcca").similarity))
""",
    ),
    (
        "md",
        """
## jit, vmap, grad

One pair in, one result out; `vmap` batches pairs, `jit` compiles once per shape, `grad` is
finite even when the two representations are identical (every correlation is 1 there).
""",
    ),
    (
        "code",
        """
xs = jnp.stack([x, x + 0.1 * y[:, :1], 2 * x])
ys = jnp.stack([y, y, y])
print(jax.jit(jax.vmap(jaxcca.pwcca_similarity))(xs, ys))
g = jax.grad(jaxcca.pwcca_distance)(x, x)
print("gradient at x == y finite:", bool(jnp.all(jnp.isfinite(g))), " max |g|:", float(jnp.abs(g).max()))
""",
    ),
    (
        "md",
        """
## Degenerate inputs are reported, not hidden

Dead neurons, duplicated neurons and more neurons than samples change the effective rank,
which every result reports. `n_trivial` counts correlations that are 1 for *any* data because
the two subspaces are too large for the number of samples.
""",
    ),
    (
        "code",
        """
small = jaxcca.cca(x[:40], y[:40])
print("40 samples, 64 and 48 neurons -> ranks", int(small.rank_x), int(small.rank_y),
      " n_trivial:", int(small.n_trivial), " mean CCA:", round(float(small.similarity), 3))
print("svcca with 5 directions on the same 40 samples:",
      round(float(jaxcca.svcca(x[:40], y[:40], keep=5).similarity), 3))
""",
    ),
    (
        "md",
        """
## Float32 is accurate

The default dtype is float32; results agree with float64 to about 1e-6 for CCA and SVCCA.
""",
    ),
    (
        "code",
        """
x32, y32 = np.asarray(x, np.float32), np.asarray(y, np.float32)
for f in (jaxcca.cca_similarity, jaxcca.svcca_similarity, jaxcca.pwcca_similarity):
    print(f.__name__, abs(float(f(x32, y32)) - float(f(x32.astype(np.float64), y32.astype(np.float64)))))
""",
    ),
]

if __name__ == "__main__":
    write("01_quickstart.ipynb", QUICKSTART)
