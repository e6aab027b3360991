"""PWCCA figure 5: networks trained with different learning rates form clusters.

Claim: networks trained at different learning rates, at a similar training
loss, converge to distinct clusters of solutions that follow the learning
rate. Setting (the paper's, scaled to the digits): a deeper net than the
2-conv one (``digits_deep_convnet``: 4 conv layers), SGD (momentum 0.9), every
network its own initialisation and minibatch order (seed ``400 + 10 * i +
k``), several networks per learning rate, and a matched training loss: each
network is checkpointed every ``every`` steps with its loss and activations on
the first ``n_train_probe`` training images, and is compared at the first
checkpoint where its training loss falls below ``target_train_loss`` (a
network that never gets there is compared at its end, and the table says so).
Each learning rate has its own cap on steps, about inversely proportional to it
(SGD at 0.1 diverged in one of three digits nets, so quick stops at 0.03).

Statistics on the symmetrised PWCCA distance (both weighting directions
averaged; 99%-variance thresholding) at ``fc``, each against the null of the
learning-rate labels permuted over the networks: the adjusted Rand index of
average-linkage clusters against the learning rates (sklearn), and the
within/between distance ratio (claimed small; oriented as 1 - ratio).

Command: ``python -m reproduce all --only learning_rate``; runtime quick
~1.5 min CPU. Outputs: ``learning_rate/results.json``,
``learning_rate/learning_rate.png``, ``learning_rate/networks/*``.
"""

from __future__ import annotations

import json
import pathlib

import numpy as np

from reproduce import claims as C
from reproduce import configs, train
from reproduce.configs import select
from reproduce.experiments import _common as K
from reproduce.io import pyplot

TITLE = "Networks trained with different learning rates form clusters"
PAPER = "PWCCA (Morcos et al. 2018) figure 5"
SETTINGS = {
    # "steps": the cap per learning rate, about inversely proportional to it, so every group
    # can reach the target loss without the fast ones training 10x past it
    "quick": {"lrs": [0.003, 0.01, 0.03], "steps": [800, 320, 160], "group_size": 3},
    "full": {
        "lrs": [0.001, 0.003, 0.01, 0.03],
        "steps": [60000, 20000, 6000, 2000],
        "group_size": 8,
    },
    "smoke": {"lrs": [0.01, 0.03], "steps": [4, 4], "group_size": 2},
}
CONFIG = "digits_deep_convnet"
LAYER = "fc"
KEEP = 0.99


def train_to_loss(run_dir, preset, *, seed, lr, steps, data_dir=None, log=print) -> dict:
    """Trains one network; the first checkpoint at the target training loss and its activations."""
    cfg = configs.get_config(CONFIG, preset)
    cfg.update(seed=seed, lr=lr, steps=steps, reduce="spatial_mean")
    model, data = configs.build(cfg, data_dir)
    n = cfg["n_train_probe"]
    # the probe set is the first n training images: metrics.json holds the training loss
    data = {**data, "probe_x": data["x"][:n], "probe_y": data["y"][:n]}
    train.fit(run_dir, model, data, cfg, log=log)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    steps, acts, _ = train.read_activations(run_dir)
    loss = np.asarray([metrics[str(s)]["probe_loss"] for s in steps])
    hit = np.nonzero(loss <= cfg["target_train_loss"])[0]
    i = int(hit[0]) if hit.size else len(steps) - 1
    return {
        "lr": lr,
        "seed": seed,
        "step": steps[i],
        "reached_target": bool(hit.size),
        "train_loss": float(loss[i]),
        "train_accuracy": metrics[str(steps[i])]["probe_accuracy"],
        "acts": {k: np.asarray(v[i], np.float32) for k, v in acts.items()},
    }


def run(out: pathlib.Path, *, preset: str, data_dir=None, log=print) -> dict:
    """Trains a group per learning rate to the target loss; PWCCA distance of every pair."""
    s = select({}, SETTINGS, preset)
    cfg = configs.get_config(CONFIG, preset)
    nets, reps = [], {}
    for i, lr in enumerate(s["lrs"]):
        for k in range(s["group_size"]):
            seed = 400 + 10 * i + k
            run_dir = out / "learning_rate" / "networks" / f"lr{lr:g}_seed{seed}"
            r = train_to_loss(
                run_dir, preset, seed=seed, lr=lr, steps=s["steps"][i], data_dir=data_dir, log=log
            )
            for layer, a in r.pop("acts").items():
                reps.setdefault(layer, []).append(a)
            nets.append({**r, "group": i})
            log(f"  lr {lr} seed {seed}: {nets[-1]}")
    layers = [k for k in reps if k != "logits"]
    pad = max(K.PAD, *(reps[k][0].shape[1] for k in layers))  # one shape: one compile
    distance = {
        layer: K.pwcca_distance_matrix(reps[layer], keep=KEEP, pad_to=pad) for layer in layers
    }
    return K.save_results(
        out,
        "learning_rate",
        {
            "preset": preset,
            "settings": s,
            "lrs": s["lrs"],
            "target_train_loss": cfg["target_train_loss"],
            "networks": nets,
            "layers": layers,
            "distance": distance,
        },
    )


def ari(dist, labels) -> float:
    """Adjusted Rand index of average-linkage clusters (as many as groups) vs the groups."""
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import squareform
    from sklearn.metrics import adjusted_rand_score

    sym = 0.5 * (np.asarray(dist) + np.asarray(dist).T)
    np.fill_diagonal(sym, 0.0)
    k = len(set(np.asarray(labels).tolist()))
    clusters = fcluster(linkage(squareform(sym, checks=False), "average"), k, "maxclust")
    return float(adjusted_rand_score(labels, clusters))


def ratio(dist, labels) -> float:
    """Mean distance within learning-rate groups over the mean distance between them."""
    dist, labels = np.asarray(dist), np.asarray(labels)
    same = labels[:, None] == labels[None, :]
    off = ~np.eye(len(labels), dtype=bool)
    return float(dist[same & off].mean() / max(dist[~same].mean(), 1e-12))


def claims(results: dict) -> list[dict]:
    """Figure 5's claim, as clustering (ARI) and as the within/between distance ratio."""
    nets = results["networks"]
    labels = np.asarray([n["group"] for n in nets])
    seeds = [n["seed"] for n in nets]
    dist = np.asarray(results["distance"][LAYER])
    how = "learning-rate labels permuted over the networks (500 draws)"
    reached = sum(n["reached_target"] for n in nets)
    at = (
        f"each net at its first checkpoint with training loss <= "
        f"{results['target_train_loss']:g} ({reached}/{len(nets)} reached it)"
    )
    what = f"symmetrised PWCCA distance ({KEEP:.0%}-variance thresholding, {LAYER}, {at})"
    common = {"paper": "PWCCA", "figure": "fig5", "seeds": seeds}
    return [
        C.claim(
            id="learning_rate.clusters",
            statement="networks trained with different learning rates converge to distinct "
            "clusters of solutions",
            statistic=f"adjusted Rand index of average-linkage clusters of the {what} against "
            "the learning-rate groups",
            value=ari(dist, labels),
            null=C.permutation_null(lambda p: ari(dist, p), labels, how, n=500),
            **common,
        ),
        C.claim(
            id="learning_rate.within_between",
            statement="networks are closer to networks of their own learning rate than to others",
            statistic=f"1 - (mean within-group / mean between-group {what})",
            value=1.0 - ratio(dist, labels),
            null=C.permutation_null(lambda p: 1.0 - ratio(dist, p), labels, how),
            **common,
        ),
    ]


def table(results: dict) -> str:
    """Per learning rate: the step compared, training loss there, within-group distance."""
    nets = results["networks"]
    labels = np.asarray([n["group"] for n in nets])
    dist = results["distance"][LAYER]
    lines = [
        "| learning rate | steps at target loss | training loss there | reached target "
        f"| within-group PWCCA distance ({LAYER}) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for i, lr in enumerate(results["lrs"]):
        g = [n for n in nets if n["group"] == i]
        lines.append(
            f"| {lr:g} | {', '.join(str(n['step']) for n in g)} | "
            f"{K.fmt(np.mean([n['train_loss'] for n in g]))} | "
            f"{sum(n['reached_target'] for n in g)}/{len(g)} | "
            f"{K.fmt(K.within_pairs(dist, labels, i).mean())} |"
        )
    return "\n".join(lines)


def figure(results: dict, path: pathlib.Path) -> None:
    """The distance matrix, networks ordered by learning rate, and its dendrogram."""
    from scipy.cluster.hierarchy import dendrogram, linkage
    from scipy.spatial.distance import squareform

    plt = pyplot()
    dist = np.asarray(results["distance"][LAYER])
    sym = 0.5 * (dist + dist.T)
    np.fill_diagonal(sym, 0.0)
    ticks = [f"{n['lr']:g} s{n['seed']}" for n in results["networks"]]
    fig, axes = plt.subplots(1, 2, figsize=(9, 4))
    im = axes[0].imshow(sym, cmap="viridis")
    axes[0].set_xticks(range(len(ticks)), ticks, rotation=90, fontsize=6)
    axes[0].set_yticks(range(len(ticks)), ticks, fontsize=6)
    axes[0].set_title(f"PWCCA distance ({LAYER})")
    fig.colorbar(im, ax=axes[0])
    dendrogram(linkage(squareform(sym, checks=False), "average"), labels=ticks, ax=axes[1])
    axes[1].tick_params(axis="x", labelsize=6, rotation=90)
    axes[1].set_title("average linkage")
    K.save_figure(fig, path)
