"""SVCCA figure 7: a convnet against a resnet, layer by layer.

Claim: layers at similar relative depth are the most similar across the two
architectures. Null: the resnet's probe rows shuffled. Configs:
``svcca_convnet`` and ``resnet`` (networks shared in ``OUT/networks``).
Command: ``python -m reproduce all --only architectures``; runtime quick ~40 s.
Outputs: ``architectures/results.json``, ``architectures/architectures.png``.
"""

from __future__ import annotations

import pathlib

import jax.numpy as jnp
import numpy as np

import jaxcca
from reproduce import claims as C
from reproduce.experiments._common import reduce_spatial, save_results
from reproduce.experiments.svcca_projection import shared_network
from reproduce.io import pyplot

TITLE = "Convnet against resnet, layer by layer"
PAPER = "SVCCA (Raghu et al. 2017) figure 7"
SHUFFLES = 10


def run(out: pathlib.Path, *, preset: str, data_dir=None, log=print) -> dict:
    """SVCCA of every convnet layer with every resnet layer (probe set, spatial means)."""
    feats = []
    for config in ("svcca_convnet", "resnet"):
        model, data, _ = shared_network(out, config, preset, data_dir=data_dir, log=log)
        f = model.features(jnp.asarray(data["probe_x"]))
        feats.append({k: reduce_spatial(np.asarray(v)).astype(np.float32) for k, v in f.items()})
    fa, fb = feats
    keep = min(10, *(v.shape[1] for v in (*fa.values(), *fb.values())))

    def sim(b):
        return np.asarray(jaxcca.pairwise(list(fa.values()), b, measure="svcca", keep=keep))

    rng = np.random.default_rng(0)
    null = []
    for _ in range(SHUFFLES):
        p = rng.permutation(len(data["probe_x"]))
        null.append(sim([v[p] for v in fb.values()]))
    return save_results(
        out,
        "architectures",
        {
            "preset": preset,
            "seeds": [0],
            "keep": keep,
            "convnet_layers": list(fa),
            "resnet_layers": list(fb),
            "svcca_similarity": sim(list(fb.values())),
            "svcca_similarity_shuffled_rows": np.stack(null),
        },
    )


def depth_agreement(sim: np.ndarray) -> float:
    """Spearman correlation of a convnet layer's depth and its best resnet match's depth."""
    from scipy.stats import spearmanr

    best = np.asarray(sim).argmax(1)
    if np.ptp(best) == 0:
        return 0.0
    return float(spearmanr(np.arange(len(best)), best).statistic)


def claims(results: dict) -> list[dict]:
    """Figure 7's claim against the shuffled-rows null."""
    sim = np.asarray(results["svcca_similarity"])
    null = np.asarray(results["svcca_similarity_shuffled_rows"])
    return [
        C.claim(
            id="architectures.relative_depth",
            paper="SVCCA",
            figure="fig7",
            statement="layers at similar relative depth are the most similar across a "
            "convnet and a resnet",
            statistic="Spearman correlation of a convnet layer's depth and the depth of its "
            f"most similar resnet layer (SVCCA, keep {results['keep']})",
            value=depth_agreement(sim),
            null=C.null_from(
                [depth_agreement(s) for s in null], "the resnet's probe rows shuffled"
            ),
            seeds=results["seeds"],
        )
    ]


def table(results: dict) -> str:
    """The SVCCA similarity matrix."""
    lb = results["resnet_layers"]
    lines = ["| convnet \\ resnet | " + " | ".join(lb) + " |", "| --- " * (len(lb) + 1) + "|"]
    for a, row in zip(results["convnet_layers"], results["svcca_similarity"], strict=True):
        lines.append(f"| {a} | " + " | ".join(f"{v:.2f}" for v in row) + " |")
    return "\n".join(lines)


def figure(results: dict, path: pathlib.Path) -> None:
    """The similarity matrix, and the shuffled-rows null's mean beside it."""
    plt = pyplot()
    la, lb = results["convnet_layers"], results["resnet_layers"]
    fig, axes = plt.subplots(1, 2, figsize=(9, 4))
    for ax, m, title in (
        (axes[0], np.asarray(results["svcca_similarity"]), "SVCCA similarity"),
        (axes[1], np.asarray(results["svcca_similarity_shuffled_rows"]).mean(0), "rows shuffled"),
    ):
        im = ax.imshow(m, vmin=0, vmax=1)
        ax.set_xticks(range(len(lb)), lb, rotation=45, fontsize=7)
        ax.set_yticks(range(len(la)), la, fontsize=7)
        ax.set_xlabel("resnet")
        ax.set_title(title)
    axes[0].set_ylabel("convnet")
    fig.colorbar(im, ax=axes)
    fig.savefig(path, dpi=120)
    plt.close(fig)
