"""PWCCA figure 5: networks trained with different learning rates form clusters.

Claim: the pairwise PWCCA distance matrix clusters by learning rate. Config:
``digits_convnet`` with the learning rate swept; every network its own seed
(``400 + 10 * i + k``), so groups never share initialisations or minibatch
orders. Command: ``python -m reproduce all --only learning_rate``; runtime quick
~2 min. Outputs: ``learning_rate/results.json``, ``learning_rate/learning_rate.png``.
"""

from __future__ import annotations

import pathlib

import numpy as np

import jaxcca
from reproduce import claims as C
from reproduce.configs import select
from reproduce.experiments._common import fmt, save_results, train_network
from reproduce.io import pyplot
from reproduce.train import accuracy, final_activations

TITLE = "Networks trained with different learning rates form clusters"
PAPER = "PWCCA (Morcos et al. 2018) figure 5"
SETTINGS = {
    "quick": {"lrs": [3e-4, 1e-3, 3e-3, 1e-2], "group_size": 3},
    "full": {"lrs": [1e-4, 3e-4, 1e-3, 3e-3, 1e-2], "group_size": 8},
    "smoke": {"lrs": [1e-3, 1e-2], "group_size": 2},
}
CONFIG = "digits_convnet"
LAYER = "fc"


def run(out: pathlib.Path, *, preset: str, data_dir=None, log=print) -> dict:
    """Trains a group per learning rate; the PWCCA distance matrix of every pair (fc)."""
    s = select({}, SETTINGS, preset)
    acts, nets = [], []
    for i, lr in enumerate(s["lrs"]):
        for k in range(s["group_size"]):
            seed = 400 + 10 * i + k
            run_dir = out / "learning_rate" / "networks" / f"lr{lr:g}_seed{seed}"
            model, data, _ = train_network(
                run_dir,
                CONFIG,
                preset,
                data_dir=data_dir,
                log=log,
                seed=seed,
                lr=lr,
                reduce="spatial_mean",
            )
            test_acc = accuracy(model, data["test_x"], data["test_y"])
            nets.append({"lr": lr, "group": i, "seed": seed, "test_acc": test_acc})
            acts.append(final_activations(run_dir)[LAYER])
        log(f"  lr {lr}: {s['group_size']} networks trained")
    dist = 1.0 - np.asarray(jaxcca.symmetrize(jaxcca.pairwise(np.stack(acts), measure="pwcca")))
    return save_results(
        out,
        "learning_rate",
        {"preset": preset, "lrs": s["lrs"], "networks": nets, "distance": dist},
    )


def ari(dist, labels) -> float:
    """Adjusted Rand index of average-linkage clusters (as many as groups) vs the groups."""
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import squareform
    from sklearn.metrics import adjusted_rand_score

    sym = 0.5 * (np.asarray(dist) + np.asarray(dist).T)
    np.fill_diagonal(sym, 0.0)
    k = len(set(labels.tolist()))
    clusters = fcluster(linkage(squareform(sym, checks=False), "average"), k, "maxclust")
    return float(adjusted_rand_score(labels, clusters))


def gap(dist, labels) -> float:
    """Mean distance between learning-rate groups minus within them."""
    dist = np.asarray(dist)
    same = labels[:, None] == labels[None, :]
    off = ~np.eye(len(labels), dtype=bool)
    return float(dist[~same].mean() - dist[same & off].mean())


def claims(results: dict) -> list[dict]:
    """Figure 5's claim, as clustering (ARI) and as the between-within gap."""
    labels = np.asarray([n["group"] for n in results["networks"]])
    seeds = [n["seed"] for n in results["networks"]]
    dist = np.asarray(results["distance"])
    how = "learning-rate labels permuted over the networks"
    common = {"paper": "PWCCA", "figure": "fig5", "seeds": seeds}
    return [
        C.claim(
            id="learning_rate.clusters",
            statement="networks trained with different learning rates converge to distinct "
            "clusters of solutions",
            statistic=f"adjusted Rand index of average-linkage clusters of the PWCCA "
            f"distance ({LAYER}) against the learning-rate groups",
            value=ari(dist, labels),
            null=C.permutation_null(lambda p: ari(dist, p), labels, how, n=200),
            **common,
        ),
        C.claim(
            id="learning_rate.gap",
            statement="networks are closer to networks of their own learning rate than to others",
            statistic=f"mean PWCCA distance between groups minus within groups ({LAYER})",
            value=gap(dist, labels),
            null=C.permutation_null(lambda p: gap(dist, p), labels, how),
            **common,
        ),
    ]


def table(results: dict) -> str:
    """Mean test accuracy per learning rate."""
    lines = ["| learning rate | mean test accuracy |", "| --- | --- |"]
    for i, lr in enumerate(results["lrs"]):
        acc = np.mean([n["test_acc"] for n in results["networks"] if n["group"] == i])
        lines.append(f"| {lr:g} | {fmt(acc)} |")
    return "\n".join(lines)


def figure(results: dict, path: pathlib.Path) -> None:
    """The distance matrix, networks ordered by learning rate."""
    plt = pyplot()
    dist = np.asarray(results["distance"])
    fig, ax = plt.subplots(figsize=(4.5, 4))
    im = ax.imshow(0.5 * (dist + dist.T), cmap="viridis")
    ticks = [f"{n['lr']:g} s{n['seed']}" for n in results["networks"]]
    ax.set_xticks(range(len(ticks)), ticks, rotation=90, fontsize=6)
    ax.set_yticks(range(len(ticks)), ticks, fontsize=6)
    ax.set_title(f"PWCCA distance ({LAYER})")
    fig.colorbar(im)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
