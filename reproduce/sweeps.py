"""PWCCA figures 4 and 5: width sweep (and accuracy) and learning-rate sweep (clusters)."""

from __future__ import annotations

import pathlib
import time

import numpy as np

import jaxcca
from reproduce.common import claim, load_done, pyplot, save
from reproduce.data import load_image_splits
from reproduce.models import LAYERS
from reproduce.train import accuracy, probe_activations, train_convnet

WIDTH_PRESETS = {
    "quick": {"widths": (0.25, 0.5, 1.0, 2.0), "group_size": 3, "steps": 300},
    "full": {"widths": (0.25, 0.5, 1.0, 2.0, 4.0), "group_size": 5, "steps": 3000},
    "smoke": {"widths": (0.25, 0.5), "group_size": 2, "steps": 3},
}
LR_PRESETS = {
    "quick": {"lrs": (3e-4, 1e-3, 3e-3, 1e-2), "group_size": 3, "steps": 300},
    "full": {"lrs": (1e-4, 3e-4, 1e-3, 3e-3, 1e-2), "group_size": 8, "steps": 3000},
    "smoke": {"lrs": (1e-3, 1e-2), "group_size": 2, "steps": 3},
}
LAYER = "fc"


def _distance_matrix(stack):
    return 1.0 - np.asarray(jaxcca.symmetrize(jaxcca.pairwise(stack, measure="pwcca")))


def run_width(out: pathlib.Path, *, preset: str = "quick", log=print, data_dir=None) -> dict:
    """Groups of networks per width; within-group PWCCA distance and test accuracy."""
    done = load_done(out, log)
    if done is not None:
        return done
    cfg = WIDTH_PRESETS[preset]
    data = load_image_splits(data_dir)
    g = cfg["group_size"]
    per_width, nets = {}, []
    t0 = time.time()
    for width in cfg["widths"]:
        acts, accs = [], []
        for k in range(g):
            model = train_convnet(
                data["train"].images,
                data["train"].labels,
                seed=200 + k,
                width=width,
                steps=cfg["steps"],
            )
            accs.append(accuracy(model, data["test"].images, data["test"].labels))
            acts.append(probe_activations(model, data["probe"].images))
        off = ~np.eye(g, dtype=bool)
        layers = {}
        for layer in LAYERS:
            dist = _distance_matrix(np.stack([a[layer] for a in acts]).astype(np.float32))
            layers[layer] = float(dist[off].mean())
            if layer == LAYER:
                for k in range(g):
                    mean_dist = float(dist[k][off[k]].mean())
                    nets.append({"width": width, "test_acc": accs[k], "distance": mean_dist})
        per_width[str(width)] = {"distance": layers, "test_acc": float(np.mean(accs))}
        log(f"  width {width}: {per_width[str(width)]} ({time.time() - t0:.0f} s)")
    d = [per_width[str(w)]["distance"][LAYER] for w in cfg["widths"]]
    r = float(np.corrcoef([n["distance"] for n in nets], [n["test_acc"] for n in nets])[0, 1])
    results = {
        "experiment": "width",
        "title": "Wider networks converge to more similar representations",
        "paper": "PWCCA (Morcos et al. 2018) figure 4",
        "preset": preset,
        "per_width": per_width,
        "networks": nets,
        "claims": [
            claim(
                "PWCCA distance between networks of the same width falls as width grows "
                f"(layer {LAYER})",
                " -> ".join(f"{v:.3f}" for v in d),
                all(b < a for a, b in zip(d[:-1], d[1:], strict=True)),
            ),
            claim(
                "across networks, distance correlates negatively with test accuracy "
                "(paper: r = -0.96)",
                f"Pearson r = {r:.2f} over {len(nets)} networks",
                r < -0.5,
            ),
        ],
        "table": _width_table(per_width),
        "figures": ["distance_vs_width.png"],
    }
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    for layer in LAYERS:
        axes[0].plot(
            cfg["widths"],
            [per_width[str(w)]["distance"][layer] for w in cfg["widths"]],
            "o-",
            label=layer,
        )
    axes[0].set_xscale("log", base=2)
    axes[0].set_xlabel("width multiplier")
    axes[0].set_ylabel("PWCCA distance within group")
    axes[0].legend()
    axes[1].scatter([n["distance"] for n in nets], [n["test_acc"] for n in nets])
    axes[1].set_xlabel(f"PWCCA distance ({LAYER})")
    axes[1].set_ylabel("test accuracy")
    axes[1].set_title(f"r = {r:.2f}")
    fig.tight_layout()
    fig.savefig(out / "distance_vs_width.png", dpi=120)
    plt.close(fig)
    return save(out, results)


def _width_table(per_width) -> str:
    lines = ["| width | " + " | ".join(LAYERS) + " | test accuracy |", "| --- " * 6 + "|"]
    for w, v in per_width.items():
        cells = " | ".join(f"{v['distance'][layer]:.3f}" for layer in LAYERS)
        lines.append(f"| {w} | {cells} | {v['test_acc']:.3f} |")
    return "\n".join(lines)


def run_lr(out: pathlib.Path, *, preset: str = "quick", log=print, data_dir=None) -> dict:
    """Networks trained with different learning rates: do their representations cluster?"""
    done = load_done(out, log)
    if done is not None:
        return done
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import squareform
    from sklearn.metrics import adjusted_rand_score

    cfg = LR_PRESETS[preset]
    data = load_image_splits(data_dir)
    acts, labels, accs = [], [], []
    t0 = time.time()
    for i, lr in enumerate(cfg["lrs"]):
        for k in range(cfg["group_size"]):
            model = train_convnet(
                data["train"].images,
                data["train"].labels,
                seed=300 + k,
                lr=lr,
                steps=cfg["steps"],
            )
            acts.append(probe_activations(model, data["probe"].images)[LAYER])
            labels.append(i)
            accs.append(accuracy(model, data["test"].images, data["test"].labels))
        log(f"  lr {lr}: trained {cfg['group_size']} nets ({time.time() - t0:.0f} s)")
    dist = _distance_matrix(np.stack(acts).astype(np.float32))
    labels = np.asarray(labels)
    same = labels[:, None] == labels[None, :]
    off = ~np.eye(len(labels), dtype=bool)
    within, between = float(dist[same & off].mean()), float(dist[~same].mean())
    sym = 0.5 * (dist + dist.T)
    np.fill_diagonal(sym, 0.0)
    clusters = fcluster(
        linkage(squareform(sym, checks=False), "average"), len(cfg["lrs"]), "maxclust"
    )
    ari = float(adjusted_rand_score(labels, clusters))
    results = {
        "experiment": "learning_rate",
        "title": "Networks trained with different learning rates form clusters",
        "paper": "PWCCA (Morcos et al. 2018) figure 5",
        "preset": preset,
        "learning_rates": list(cfg["lrs"]),
        "distance_matrix": dist.tolist(),
        "test_acc": accs,
        "claims": [
            claim(
                "the pairwise PWCCA distance matrix clusters by learning rate "
                "(average-linkage clusters vs learning-rate groups)",
                f"adjusted Rand index {ari:.2f}; mean distance within a learning rate "
                f"{within:.3f}, between {between:.3f}",
                ari > 0.5 and within < between,
            )
        ],
        "table": "\n".join(
            [
                "| learning rate | mean test accuracy |",
                "| --- | --- |",
                *(
                    f"| {lr:g} | {np.mean(np.asarray(accs)[labels == i]):.3f} |"
                    for i, lr in enumerate(cfg["lrs"])
                ),
            ]
        ),
        "figures": ["distance_matrix.png"],
    }
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(4.5, 4))
    im = ax.imshow(sym, cmap="viridis")
    ticks = [f"{cfg['lrs'][i]:g}" for i in labels]
    ax.set_xticks(range(len(ticks)), ticks, rotation=90, fontsize=6)
    ax.set_yticks(range(len(ticks)), ticks, fontsize=6)
    ax.set_title(f"PWCCA distance ({LAYER}); ARI {ari:.2f}")
    fig.colorbar(im)
    fig.tight_layout()
    fig.savefig(out / "distance_matrix.png", dpi=120)
    plt.close(fig)
    return save(out, results)
