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


SETUP = """
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # see the README's known issues (jax 0.10 on CPU)

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np

matplotlib.use("Agg")  # headless; figures are still shown inline by the notebook
import matplotlib.pyplot as plt

import jaxcca

%matplotlib inline
"""

CONV = [
    (
        "md",
        """
# Conv layers: DFT-CCA and the three reductions

A conv layer's activations are `(N, H, W, C)`. SVCCA (Raghu et al. 2017, section 3) lists the
ways to compare two of them; `jaxcca.conv_to_neurons` gives the matrices and `jaxcca.dft_cca`
does the per-frequency CCA that makes the largest of them cheap.
""",
    ),
    (
        "code",
        SETUP
        + '\njax.config.update("jax_enable_x64", True)  # to show exactness; float32 is the default\n',
    ),
    (
        "md",
        """
## A translation-invariant toy: Theorem 1

Take random images and every circular translation of them, pass them through two circular
convolutions with nonlinearities. Then the CCA of the flattened `H*W*C` neurons splits into one
small CCA per spatial frequency, which is exactly what `dft_cca` computes.
""",
    ),
    (
        "code",
        """
rng = np.random.default_rng(0)
H = W = 6


def circular_conv(x, k):
    return sum(np.roll(x, (a - 1, b - 1), axis=(1, 2)) @ k[a, b] for a in range(3) for b in range(3))


base = rng.standard_normal((12, H, W, 2))
images = np.concatenate([np.roll(base, (i, j), axis=(1, 2)) for i in range(H) for j in range(W)])
x = np.tanh(circular_conv(images, rng.standard_normal((3, 3, 2, 4))))
y = np.maximum(circular_conv(x, rng.standard_normal((3, 3, 4, 5))), 0)
print("x", x.shape, "y", y.shape)

res = jaxcca.dft_cca(x, y)
flat = jaxcca.cca(jaxcca.conv_to_neurons(x, mode="flatten"), jaxcca.conv_to_neurons(y, mode="flatten"))
print("dft_cca similarity        ", float(res.similarity))
print("cca of flattened neurons  ", float(flat.similarity))
print("largest difference between the sorted correlations:",
      np.abs(np.sort(np.ravel(res.rho))[::-1] - np.sort(np.asarray(flat.rho))[::-1][: res.rho.size]).max())
""",
    ),
    (
        "md",
        """
`res.rho` holds the correlations at every frequency (grid in FFT order, `res.frequencies` gives
the signed frequency of each cell). Low frequencies are where most of the shared structure is.
""",
    ),
    (
        "code",
        """
grid = np.fft.fftshift(np.asarray(res.rho).mean(-1))
fig, ax = plt.subplots(figsize=(4, 3.4))
im = ax.imshow(grid, extent=[-W // 2 - 0.5, (W - 1) // 2 + 0.5, (H - 1) // 2 + 0.5, -H // 2 - 0.5])
ax.set_xlabel("horizontal frequency")
ax.set_ylabel("vertical frequency")
ax.set_title("mean canonical correlation per frequency")
fig.colorbar(im)
plt.show()
""",
    ),
    (
        "md",
        """
## The three reductions answer different questions

| mode | matrix | trade-off |
| --- | --- | --- |
| `channels` | `(N*H*W, C)` | filters compared irrespective of position; cheap |
| `flatten` | `(N, H*W*C)` | most faithful; needs `N >> H*W*C` (DFT-CCA computes it frequency by frequency) |
| `spatial_mean` | `(N, C)` | the PWCCA paper's choice; any spatial sizes; drops spatial structure |
""",
    ),
    (
        "code",
        """
for mode in ("channels", "flatten", "spatial_mean"):
    a, b = jaxcca.conv_to_neurons(x, mode=mode), jaxcca.conv_to_neurons(y, mode=mode)
    r = jaxcca.cca(a, b)
    print(f"{mode:13s} {str(a.shape):12s} mean CCA {float(r.similarity):.3f}   n_trivial {int(r.n_trivial)}")
print(f"{'dft_cca':13s} {'':12s} mean CCA {float(res.similarity):.3f}   projection-weighted {float(res.weighted_similarity):.3f}")
""",
    ),
    (
        "md",
        """
## Different spatial sizes, jit, vmap and grad

Layers before and after pooling have different `H, W`: `dft_cca` keeps the common low-frequency
band. Everything is jittable, vmappable and differentiable, in float32 by default.
""",
    ),
    (
        "code",
        """
pooled = y.reshape(len(y), H // 2, 2, W // 2, 2, 5).max(axis=(2, 4))
mixed = jaxcca.dft_cca(x.astype(np.float32), pooled.astype(np.float32))
print("grid", mixed.rho.shape, "frequencies kept:", sorted(set(np.ravel(mixed.frequencies[..., 0]))))

batch = jnp.stack([x, 2 * x + 1]).astype(jnp.float32)
print("vmap:", jax.vmap(jaxcca.dft_cca_similarity, in_axes=(0, None))(batch, y.astype(np.float32)))
g = jax.grad(jaxcca.dft_cca_similarity)(x.astype(np.float32), x.astype(np.float32))
print("gradient at x == y finite:", bool(jnp.isfinite(g).all()))
""",
    ),
]

TRAINING = [
    (
        "md",
        """
# jaxcca inside a training loop

Three uses: a similarity term in the loss (pull a layer towards a frozen reference network, or
push it away), and streaming statistics that give exact CCA over more data than fits in one
batch. The model is a small Flax NNX MLP on scikit-learn's digits.
""",
    ),
    ("code", SETUP),
    (
        "code",
        """
import optax
from flax import nnx
from sklearn.datasets import load_digits

digits = load_digits()
images = (digits.data / 16.0).astype(np.float32)
labels = digits.target.astype(np.int32)
x_train, y_train, x_test, y_test = images[:1300], labels[:1300], images[1300:], labels[1300:]


class MLP(nnx.Module):
    def __init__(self, rngs):
        self.l1 = nnx.Linear(64, 64, rngs=rngs)
        self.l2 = nnx.Linear(64, 32, rngs=rngs)
        self.out = nnx.Linear(32, 10, rngs=rngs)

    def __call__(self, x):
        h1 = jax.nn.relu(self.l1(x))
        h2 = jnp.tanh(self.l2(h1))
        return self.out(h2), h2


def train(seed, reference=None, direction=None, lam=1.0, steps=300):
    model = MLP(nnx.Rngs(seed))
    opt = nnx.Optimizer(model, optax.adam(3e-3), wrt=nnx.Param)

    @nnx.jit
    def step(model, opt, x, y, h_ref):
        def loss_fn(m):
            logits, h = m(x)
            loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
            if direction is not None:
                loss = loss + lam * jaxcca.losses.similarity_loss(
                    h, h_ref, measure="svcca", keep=12, direction=direction
                )
            return loss

        loss, grads = nnx.value_and_grad(loss_fn)(model)
        opt.update(model, grads)
        return loss

    rng = np.random.default_rng(seed)
    for _ in range(steps):
        idx = rng.integers(0, len(y_train), 256)
        h_ref = reference(x_train[idx])[1] if reference is not None else jnp.zeros((256, 32))
        step(model, opt, x_train[idx], y_train[idx], jax.lax.stop_gradient(h_ref))
    return model


reference = train(0)
models = {"baseline": train(1), "pull": train(1, reference, "pull"), "push": train(1, reference, "push")}
h_ref = reference(x_test)[1]
for name, m in models.items():
    logits, h = m(x_test)
    acc = float((logits.argmax(-1) == y_test).mean())
    sim = float(jaxcca.svcca_similarity(h, h_ref, keep=12))
    print(f"{name:9s} SVCCA similarity to the reference {sim:.3f}   test accuracy {acc:.3f}")
""",
    ),
    (
        "md",
        """
Caveat: CCA on a minibatch with fewer samples than `rank_x + rank_y` neurons gives correlations
of 1 whatever the weights (`n_trivial`); use `svcca` with `keep` well below the batch size (as
here), or CKA.

## Streaming: exact CCA over many batches

`jaxcca.streaming` accumulates the sufficient statistics of two layers batch by batch (also under
`lax.scan` and across devices with `merge_across`) and finalises to the same result as the full
data.
""",
    ),
    (
        "code",
        """
from jaxcca import streaming

model = models["baseline"]
state = streaming.init(64, 32, dtype=jnp.float32)
for start in range(0, len(x_test), 100):
    xb = x_test[start : start + 100]
    h1 = jax.nn.relu(model.l1(xb))
    h2 = model(xb)[1]
    state = streaming.update(state, h1, h2)
full_h1, full_h2 = jax.nn.relu(model.l1(x_test)), model(x_test)[1]
print("streamed:", float(streaming.cca(state).similarity), " full data:", float(jaxcca.cca(full_h1, full_h2).similarity))
""",
    ),
]

SWEEP = [
    (
        "md",
        """
# A pairwise sweep over many networks

`jaxcca.pairwise` compares every pair of many representations in one jitted call: each is
whitened once, pairs go through blocked matrix products, and the tiles are spread over
`jax.devices()`. Here: convnets trained on the digits with two learning rates and several seeds.
""",
    ),
    ("code", SETUP),
    (
        "code",
        """
from reproduce.data import load_digits_splits
from reproduce.train import probe_activations, train_convnet

data = load_digits_splits()
nets, names = [], []
with jax.numpy_dtype_promotion("standard"):
    for lr in (3e-4, 1e-2):
        for seed in range(4):
            model = train_convnet(data["train"].images, data["train"].labels, seed=seed, lr=lr, steps=150)
            nets.append(probe_activations(model, data["probe"].images))
            names.append(f"lr={lr:g} s{seed}")
print(len(nets), "networks; layer shapes:", {k: v.shape for k, v in nets[0].items()})
""",
    ),
    (
        "code",
        """
fig, axes = plt.subplots(1, 2, figsize=(9, 3.8))
for ax, layer in zip(axes, ("conv2", "fc"), strict=True):
    stack = np.stack([n[layer] for n in nets]).astype(np.float32)
    dist = 1.0 - np.asarray(jaxcca.symmetrize(jaxcca.pairwise(stack, measure="pwcca")))
    im = ax.imshow(dist)
    ax.set_xticks(range(len(names)), names, rotation=90, fontsize=7)
    ax.set_yticks(range(len(names)), names, fontsize=7)
    ax.set_title(f"PWCCA distance, {layer}")
    fig.colorbar(im, ax=ax)
fig.tight_layout()
plt.show()
""",
    ),
    (
        "md",
        """
Clusters from the distance matrix (average linkage), compared with the learning-rate groups by
the adjusted Rand index (1 = the clusters are the groups, 0 = chance):
""",
    ),
    (
        "code",
        """
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import squareform
from sklearn.metrics import adjusted_rand_score

stack = np.stack([n["fc"] for n in nets]).astype(np.float32)
dist = 1.0 - np.asarray(jaxcca.symmetrize(jaxcca.pairwise(stack, measure="pwcca")))
np.fill_diagonal(dist, 0.0)
clusters = fcluster(linkage(squareform(dist, checks=False), "average"), 2, "maxclust")
groups = [0] * 4 + [1] * 4
print("clusters:", clusters, " adjusted Rand index:", adjusted_rand_score(groups, clusters))
""",
    ),
    (
        "md",
        """
Other measures go through the same engine: `measure="cca"`, `"svcca"`, `"cka"`,
`"procrustes"`. Widths may differ (lists of arrays are zero-padded, padding is masked), and
with several devices (`XLA_FLAGS=--xla_force_host_platform_device_count=8` on CPU) the tiles
are spread over all of them.
""",
    ),
    (
        "code",
        """
mixed = [nets[0]["conv1"], nets[1]["conv2"], nets[2]["fc"]]
print(np.round(np.asarray(jaxcca.pairwise(mixed, measure="cka")), 3))
""",
    ),
]

FIGURES = [
    (
        "md",
        """
# The reproduced figures

Reads the outputs of `python -m reproduce all`. If `../runs/report.md` exists (from the README's
first command, quick preset) it is shown; otherwise the notebook runs the four experiments that
train no network at the `smoke` preset (tiny settings, about a minute; its numbers say nothing
about the claims) into `runs_notebook/`.
""",
    ),
    ("code", SETUP),
    (
        "code",
        """
import json
import pathlib
import subprocess
import sys

runs = pathlib.Path("../runs")
if not (runs / "report.md").exists():
    runs = pathlib.Path("runs_notebook")
    subprocess.run(
        [sys.executable, "-m", "reproduce", "all", "--preset", "smoke", "--out", str(runs),
         "--only", "synthetic", "toy_regression", "cca_without_svd", "dft_equivalence"],
        check=True,
    )
results = {p.parent.name: json.loads(p.read_text()) for p in sorted(runs.glob("*/results.json"))}
for name, res in results.items():
    print(f"== {name} ({res['preset']})")
    for c in res["claims"]:
        null = c["null"]
        print(f"   [{c['outcome']}] {c['paper']} {c['figure']}: {c['statement']}")
        print(f"       {c['statistic']} = {c['value']:.3g} (spread {c['spread']:.2g}); "
              f"null {null['value']:.3g} [{null['low']:.3g}, {null['high']:.3g}]: {null['how']}")
""",
    ),
    (
        "code",
        """
from IPython.display import Image, display

for name in results:
    display(Image(filename=str(runs / name / f"{name}.png")))
""",
    ),
    (
        "md",
        """
Numbers for your own plots are in each `results.json` (raw numbers; claims, tables and figures
are pure functions of them: `python -m reproduce report --out DIR` redraws everything); for
example PWCCA figure 2's curves (similarity as the shared share of the signal grows):
""",
    ),
    (
        "code",
        """
syn = results["synthetic"]
s = np.asarray(syn["similarity"])  # (noise amplitude, repeat, shared fraction, measure)
i = len(syn["noise"]) // 2
fig, ax = plt.subplots(figsize=(5, 3.2))
for j, name in enumerate(syn["measures"]):
    ax.plot(syn["fractions"], s[i, :, :, j].mean(0), marker="o", label=name)
ax.set_xlabel("fraction of shared signal")
ax.set_ylabel("similarity")
ax.set_title(f"PWCCA fig. 2, noise amplitude {syn['noise'][i]}")
ax.legend()
plt.show()
""",
    ),
]

COMPARE = [
    (
        "md",
        """
# Compare two models layer by layer

Every layer of one Flax NNX network against every layer of another, in one pass over the
data, for any measure; the heat map; and the same from activations saved by any framework,
on the command line. Memory holds one joint co-moment of all selected layers'
(reduced) features, so it grows with the sum of the layer widths, not with the number of
samples.
""",
    ),
    (
        "code",
        """
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import json
import pathlib
import subprocess
import sys
import tempfile

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
from flax import nnx
from sklearn.datasets import load_digits

import jaxcca
from reproduce.models import ConvNet

jax.config.update("jax_enable_x64", True)  # float64 co-moments; the models stay float32
images = jnp.asarray(load_digits().images[..., None] / 16.0, jnp.float32)  # (1797, 8, 8, 1)
batches = [images[i : i + 500] for i in range(0, len(images), 500)]  # the last one is smaller
net_a = ConvNet(width=1.0, rngs=nnx.Rngs(0))
net_b = ConvNet(width=2.0, rngs=nnx.Rngs(1))
""",
    ),
    (
        "md",
        """
`reproduce`'s networks sow every layer as `nnx.Intermediate` when called with `sow=True`;
`jaxcca.accumulate_layers` runs them under `nnx.capture`, reduces conv layers `(N, H, W, C)`
to their spatial means (`conv="spatial_mean"`; `"flatten"` and `"channels"` are the other
modes of `jaxcca.conv_to_neurons`) and accumulates the co-moments in one pass;
`jaxcca.similarity_matrix` then finalises any exact measure from them (each equal to
`jaxcca.pairwise` on the concatenated activations, to round-off). For one measure,
`jaxcca.compare(net_a, net_b, batches, measure="cka", call=sow)` does both steps. Models
that do not sow can use `outputs=True` (every submodule's output).
""",
    ),
    (
        "code",
        """
def sow(model, x):
    return model(x, sow=True)


stats = jaxcca.accumulate_layers(net_a, net_b, batches, call=sow)
fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), constrained_layout=True)
for ax, measure in zip(axes, ("cka", "pwcca"), strict=True):
    res = jaxcca.similarity_matrix(stats, measure=measure)
    jaxcca.plot_similarity(res, ax=ax, annotate=True, label_a="ConvNet x1", label_b="ConvNet x2")
plt.show()
print(res.layers_a, res.n_samples)
""",
    ),
    (
        "md",
        """
## Saved activations, any framework: the command line

Each `.npz` holds one array per layer, samples first (`--layout neurons-by-samples` for
google/svcca's transposed arrays), and optionally `sample_ids`: the command refuses files
whose samples are in a different order.
""",
    ),
    (
        "code",
        """
tmp = pathlib.Path(tempfile.mkdtemp())
ids = np.arange(len(images))
for name, net in (("a", net_a), ("b", net_b)):
    acts = jaxcca.capture_layers(net, images, call=sow)
    np.savez(tmp / f"{name}.npz", sample_ids=ids, **{k: np.asarray(v) for k, v in acts.items()})

cmd = [sys.executable, "-m", "jaxcca", "compare", str(tmp / "a.npz"), str(tmp / "b.npz")]
cmd += ["--measure", "cka", "--annotate", "--out", str(tmp / "out")]  # --permutations N: p-values
print(subprocess.run(cmd, capture_output=True, text=True).stdout)
record = json.loads((tmp / "out" / "similarity.json").read_text())
print({k: record[k] for k in ("measure", "layers_a", "n_samples", "jaxcca_version")})
""",
    ),
    (
        "code",
        """
from IPython.display import Image, display

display(Image(filename=str(tmp / "out" / "similarity.png")))
""",
    ),
    (
        "code",
        """
# The silent error users report: the same samples in a different order.
shuffled = dict(np.load(tmp / "b.npz"))
shuffled["sample_ids"] = ids[::-1]
np.savez(tmp / "b_shuffled.npz", **shuffled)
cmd[5] = str(tmp / "b_shuffled.npz")
print(subprocess.run(cmd, capture_output=True, text=True).stderr)
""",
    ),
]

STATS = [
    (
        "md",
        """
# Why the null matters: permutation tests and chance-corrected scores

The similarity of two *unrelated* representations is not 0, and it grows with the number of
neurons per sample: with 300 samples, independent Gaussian data give a mean CCA of about 0.2 at
16 neurons and about 0.6 at 128. A raw score compared across widths (or layers, or models of
different sizes) therefore mixes the effect you care about with chance.
`jaxcca.permutation_test` gives the null (the measure on `(x, y[perm])` for random row
permutations), a p-value, and `adjusted = (statistic - mean(null)) / (1 - mean(null))`, which
is about 0 for unrelated data at any width and 1 for identical data.
""",
    ),
    ("code", SETUP),
    (
        "code",
        """
n, widths = 300, (4, 16, 64, 128)
kx, ky = jax.random.split(jax.random.key(0))
x_full, y_full = jax.random.normal(kx, (n, 128)), jax.random.normal(ky, (n, 128))  # independent
# Width d: the first d neurons, the rest zeroed. Zero columns are dead neurons, which every
# measure masks, so all widths share one compiled, vmapped call.
keep = jnp.arange(128)[None, :] < jnp.array(widths)[:, None, None]
xs, ys = jnp.where(keep, x_full, 0.0), jnp.where(keep, y_full, 0.0)
rows = []
for measure in ("cca", "pwcca", "cka"):
    test = jax.vmap(lambda x, y: jaxcca.permutation_test(x, y, measure=measure, n_permutations=200, key=jax.random.key(1)))
    res = test(xs, ys)
    for i, d in enumerate(widths):
        rows.append((measure, d, float(res.statistic[i]), float(res.adjusted[i]), float(res.p_value[i])))
        print(f"{measure:6s} d={d:4d}  raw={rows[-1][2]:.3f}  adjusted={rows[-1][3]:+.3f}  p={rows[-1][4]:.3f}")
""",
    ),
    (
        "code",
        """
fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), sharex=True)
for measure in ("cca", "pwcca", "cka"):
    r = [row for row in rows if row[0] == measure]
    axes[0].plot(widths, [row[2] for row in r], "o-", label=measure)
    axes[1].plot(widths, [row[3] for row in r], "o-", label=measure)
axes[0].set_title("raw similarity, unrelated data")
axes[1].set_title("adjusted (chance-corrected)")
axes[1].axhline(0.0, color="k", lw=0.5)
axes[1].set_ylim(-0.5, 0.5)
for ax in axes:
    ax.set_xscale("log", base=2)
    ax.set_xlabel("neurons per representation (n = 300 samples)")
axes[0].legend()
fig.tight_layout()
plt.show()
""",
    ),
    (
        "md",
        """
## A width sweep of trained networks, judged against the null

Two one-hidden-layer MLPs (different seeds) per width, trained on the scikit-learn digits; their
hidden layers are compared on 500 held-out digits. The raw CCA rises with width partly because
the null does; `adjusted` removes that, and the p-value says whether the similarity stands out
from chance at all. (Any two functions of the same inputs are dependent, so p is small even for
untrained networks: compare their `adjusted` score with the trained ones.)
""",
    ),
    (
        "code",
        """
import optax
from sklearn.datasets import load_digits

digits = load_digits()
images = (digits.data / 16.0).astype(np.float32)
labels = digits.target
train_x, train_y, probe_x = images[:1200], labels[:1200], images[1297:]


def init(key, width):
    k1, k2 = jax.random.split(key)
    return {
        "w1": jax.random.normal(k1, (64, width)) / 8.0,
        "b1": jnp.zeros(width),
        "w2": jax.random.normal(k2, (width, 10)) / np.sqrt(width),
        "b2": jnp.zeros(10),
    }


def hidden(p, x):
    return jax.nn.relu(x @ p["w1"] + p["b1"])


def loss(p, x, y):
    logits = hidden(p, x) @ p["w2"] + p["b2"]
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()


def train(key, width, steps=300):
    p = init(key, width)
    opt = optax.adam(1e-2)
    state = opt.init(p)

    def step(carry, _):
        p, state = carry
        updates, state = opt.update(jax.grad(loss)(p, train_x, train_y), state)
        return (optax.apply_updates(p, updates), state), None

    (p, _), _ = jax.lax.scan(step, (p, state), None, length=steps)
    return p
""",
    ),
    (
        "code",
        """
sweep = []
for width in (8, 32, 128):
    for trained in (False, True):
        ka, kb = jax.random.key(10 + width), jax.random.key(20 + width)
        pa, pb = (train(ka, width), train(kb, width)) if trained else (init(ka, width), init(kb, width))
        # zero-padded to 128 neurons (dead, masked): one compiled test for every width
        ha, hb = (jnp.pad(hidden(p, probe_x), ((0, 0), (0, 128 - width))) for p in (pa, pb))
        res = jaxcca.permutation_test(ha, hb, measure="cca", n_permutations=100, key=jax.random.key(width))
        sweep.append((width, trained, float(res.statistic), float(jnp.mean(res.null)), float(res.adjusted), float(res.p_value)))
        print(f"width={width:4d} {'trained  ' if trained else 'untrained'} raw CCA={sweep[-1][2]:.3f} "
              f"null mean={sweep[-1][3]:.3f} adjusted={sweep[-1][4]:.3f} p={sweep[-1][5]:.4f}")
""",
    ),
    (
        "md",
        """
The same call works for `"svcca"`, `"pwcca"`, `"cka"` (every kernel and estimator),
`"procrustes"` and `"dft_cca"`, under `jit` and `vmap` (e.g. one call for many pairs), and the
draws are spread over `jax.devices()`. `jaxcca.bootstrap` resamples pairs of rows for a
percentile interval; read its docstring for when that interval is biased (CCA with many
neurons per sample).
""",
    ),
    (
        "code",
        """
pa, pb = train(jax.random.key(1), 32), train(jax.random.key(2), 32)
boot = jaxcca.bootstrap(hidden(pa, probe_x), hidden(pb, probe_x), measure="cka", n_resamples=200, key=jax.random.key(3))
print(f"linear CKA {float(boot.statistic):.3f}, 95% bootstrap interval [{float(boot.low):.3f}, {float(boot.high):.3f}]")
""",
    ),
]

if __name__ == "__main__":
    write("01_quickstart.ipynb", QUICKSTART)
    write("02_conv_dft.ipynb", CONV)
    write("03_training_loop.ipynb", TRAINING)
    write("04_pairwise_sweep.ipynb", SWEEP)
    write("05_reproduced_figures.ipynb", FIGURES)
    write("06_compare_models.ipynb", COMPARE)
    write("07_permutation_null.ipynb", STATS)
