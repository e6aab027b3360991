"""SVCCA figure 4: learning happens bottom-up (the very top layers are the stated exception).

The paper's figure: SVCCA of every layer at a point of training with every
layer at the end, at 0, 35, 75 and 100 % of training, for a convnet and a
resnet. Here, for every network of the shared group (independent seeds, dense
checkpoints every few steps):

* the convergence curve of each layer, SVCCA (99 % of the variance) of the
  layer at step ``t`` with itself at the end; conv layers as channels over
  positions (SVCCA section 3: every ``(image, position)`` a datapoint, ``(N*H*W,
  C)``);
* the layer x layer matrix at 0, 35, 75 and 100 % of training, the same
  SVCCA; two layers of different resolution are compared on the coarser grid
  (the finer map average-pooled to it), a fully connected layer as a 1x1 map.

Claim (per architecture): a layer's convergence time, the normalised area above
its curve ``mean_t (1 - s(t)) / (1 - s(0))`` over every checkpoint (not one
threshold crossing), rises with depth. Statistic: Spearman correlation of depth
and convergence time over the layers below the top (the top hidden layer and
the logits excluded: the paper's exception), averaged over networks; spread: its
standard error over networks; null: the depth order permuted independently in
every network. Config: ``svcca_convnet``, ``resnet`` (group in
``OUT/networks/svcca_group``). Command: ``python -m reproduce all --only
bottom_up``. Outputs: ``bottom_up/results.json``, ``bottom_up/bottom_up.png``.
"""

from __future__ import annotations

import pathlib

import jax
import jax.numpy as jnp
import numpy as np

import jaxcca
from reproduce import claims as C
from reproduce.experiments import _svcca_group as group
from reproduce.experiments._common import save_results
from reproduce.io import pyplot
from reproduce.train import read_activations

TITLE = "Learning is bottom-up: each layer against its final self through training"
PAPER = "SVCCA (Raghu et al. 2017) figure 4"
CONFIGS = ("svcca_convnet", "resnet")
# layers left out of the claim: the top hidden layer and the read-out (the paper's exception)
TOP = {"svcca_convnet": ("fc2", "logits"), "resnet": ("pool", "logits")}
FRACTIONS = (0.0, 0.35, 0.75, 1.0)


def pooled_rows(a, size: int, width: int) -> np.ndarray:
    """Layer ``a`` (``(N, H, W, C)`` or ``(N, D)``) as ``(N*size*size, width)`` datapoints.

    Conv maps are average-pooled to ``size x size`` (the coarser map's grid when
    two layers of different resolution are compared; a fully connected layer is a
    1x1 map), then every ``(image, position)`` is a datapoint and every channel a
    neuron (SVCCA section 3). Channels are zero-padded to ``width`` so that one
    compiled program serves every layer (a zero neuron carries no variance and
    changes no SVCCA value).
    """
    a = np.asarray(a, np.float32)
    if a.ndim == 2:
        a = a[:, None, None, :]
    n, h, w, c = a.shape
    a = a.reshape(n, size, h // size, size, w // size, c).mean(axis=(2, 4))
    return np.pad(a.reshape(n * size * size, c), ((0, 0), (0, width - c)))


@jax.jit
def _svcca_stack(xs, ys):
    return jax.vmap(lambda x, y: jaxcca.svcca_similarity(x, y, keep=0.99))(xs, ys)


def _size(a) -> int:
    return 1 if a.ndim == 3 else a.shape[2]  # (T, N, D) or (T, N, H, W, C)


def layer_similarity(acts: dict, picks, a: str, b: str, width: int) -> np.ndarray:
    """SVCCA of layer ``a`` at each step of ``picks`` with layer ``b`` at the end."""
    size = min(_size(acts[a]), _size(acts[b]))
    y = jnp.asarray(pooled_rows(acts[b][-1], size, width))
    picks, chunk, found = list(picks), len(FRACTIONS), []
    for start in range(0, len(picks), chunk):  # fixed chunks: one compiled program per grid
        part = picks[start : start + chunk]
        part = part + [part[-1]] * (chunk - len(part))
        xs = jnp.asarray(np.stack([pooled_rows(acts[a][i], size, width) for i in part]))
        found.append(np.asarray(_svcca_stack(xs, jnp.broadcast_to(y, xs.shape))))
    return np.concatenate(found)[: len(picks)]


def convergence_time(curve) -> float:
    """Normalised area above a convergence curve: ``mean_t (1 - s(t)) / (1 - s(0))``, t < T."""
    s = np.asarray(curve, np.float64)
    return float(np.mean((1.0 - s[:-1]) / max(1.0 - s[0], 1e-12)))


def run(out: pathlib.Path, *, preset: str, data_dir=None, log=print) -> dict:
    """Convergence curves and the 0/35/75/100 % layer x layer matrices of every network."""
    nets = []
    for config in CONFIGS:
        for seed, d, _, _ in group.networks(out, config, preset, data_dir=data_dir, log=log):
            steps, acts, _ = read_activations(d)
            layers = list(acts)
            width = max(v.shape[-1] for v in acts.values())
            every = range(len(steps))
            curves = [layer_similarity(acts, every, k, k, width) for k in layers]
            picks = sorted({int(round(f * (len(steps) - 1))) for f in FRACTIONS})
            matrices = [
                [layer_similarity(acts, picks, a, b, width) for b in layers] for a in layers
            ]
            nets.append(
                {
                    "config": config,
                    "seed": seed,
                    "layers": layers,
                    "steps": steps,
                    "curves": curves,
                    "matrix_steps": [steps[i] for i in picks],
                    # [layer at step][final layer][step pick] -> stored as [pick][a][b]
                    "matrices": np.transpose(np.asarray(matrices), (2, 0, 1)),
                }
            )
            log(f"  {config} seed {seed}: times {[round(convergence_time(c), 3) for c in curves]}")
    return save_results(
        out,
        "bottom_up",
        {
            "preset": preset,
            "measure": "SVCCA (keep 0.99), conv layers as channels over positions (N*H*W, C); "
            "two layers of different resolution on the coarser grid (average pooling), a fully "
            "connected layer as a 1x1 map",
            "networks": nets,
        },
    )


def _spearman(times) -> float:
    from scipy.stats import spearmanr

    times = np.asarray(times)
    if np.ptp(times) == 0:
        return 0.0
    return float(spearmanr(np.arange(len(times)), times).statistic)


def _claim_layers(net) -> list[int]:
    return [i for i, k in enumerate(net["layers"]) if k not in TOP[net["config"]]]


def claims(results: dict) -> list[dict]:
    """Per architecture: depth vs convergence time, against depth orders permuted per network."""
    out = []
    for config in CONFIGS:
        nets = [n for n in results["networks"] if n["config"] == config]
        if not nets:
            continue
        times = [
            np.asarray([convergence_time(n["curves"][i]) for i in _claim_layers(n)]) for n in nets
        ]
        per_net = [_spearman(t) for t in times]
        rng = np.random.default_rng(0)
        draws = [np.mean([_spearman(rng.permutation(t)) for t in times]) for _ in range(500)]
        kept = [k for k in nets[0]["layers"] if k not in TOP[config]]
        out.append(
            C.claim(
                id=f"bottom_up.{config}",
                paper="SVCCA",
                figure="fig4",
                statement="networks converge from the bottom up (the very top layers excepted)",
                statistic=f"Spearman correlation of depth and convergence time (normalised area "
                f"above the SVCCA-to-final curve) over {', '.join(kept)}; mean over "
                f"{len(nets)} {config} networks",
                value=float(np.mean(per_net)),
                spread=C.standard_error(per_net),
                null=C.null_from(draws, "depth order permuted independently in every network"),
                seeds=[n["seed"] for n in nets],
            )
        )
    return out


def table(results: dict) -> str:
    """Convergence time of every layer of every network."""
    lines = ["| network | seed | convergence time per layer (bottom to top) |"]
    lines.append("| --- | --- | --- |")
    for n in results["networks"]:
        times = ", ".join(
            f"{k} {convergence_time(c):.2f}" for k, c in zip(n["layers"], n["curves"], strict=True)
        )
        lines.append(f"| {n['config']} | {n['seed']} | {times} |")
    return "\n".join(lines) + f"\n\nMeasure: {results['measure']}."


def figure(results: dict, path: pathlib.Path) -> None:
    """Per architecture (first network): the four matrices, and every layer's curve."""
    plt = pyplot()
    firsts = [next(n for n in results["networks"] if n["config"] == c) for c in CONFIGS]
    firsts = [n for n in firsts if n is not None]
    fig, axes = plt.subplots(len(firsts), 5, figsize=(16, 3.3 * len(firsts)), squeeze=False)
    for row, n in zip(axes, firsts, strict=True):
        layers = n["layers"]
        for ax, m, s in zip(row[:4], n["matrices"], n["matrix_steps"], strict=False):
            ax.imshow(np.asarray(m), vmin=0, vmax=1, origin="lower")
            ax.set_title(f"{n['config']} step {s}", fontsize=8)
            ax.set_yticks(range(len(layers)), layers, fontsize=6)
            ax.set_xticks(range(len(layers)), layers, fontsize=6, rotation=90)
            ax.set_ylabel("layer at step", fontsize=7)
            ax.set_xlabel("layer at end", fontsize=7)
        cmap = plt.get_cmap("viridis")
        for i, (k, c) in enumerate(zip(layers, n["curves"], strict=True)):
            row[4].plot(n["steps"], c, color=cmap(i / max(1, len(layers) - 1)), label=k, lw=1)
        row[4].set_xlabel("step")
        row[4].set_ylabel("SVCCA with final")
        row[4].legend(fontsize=5, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
