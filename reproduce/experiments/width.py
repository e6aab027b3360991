"""PWCCA figure 4: wider networks converge to more similar representations.

Claims: within-group PWCCA distance falls as width grows; across networks it
correlates negatively with test accuracy. Config: ``digits_convnet`` with the
width multiplier swept; every network its own seed (``300 + 10 * i + k``).
Command: ``python -m reproduce all --only width``; runtime quick ~2 min.
Outputs: ``width/results.json``, ``width/width.png``, ``width/networks/*``.
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

TITLE = "Wider networks converge to more similar representations"
PAPER = "PWCCA (Morcos et al. 2018) figure 4"
SETTINGS = {
    "quick": {"widths": [0.25, 0.5, 1.0, 2.0], "group_size": 3},
    "full": {"widths": [0.25, 0.5, 1.0, 2.0, 4.0], "group_size": 5},
    "smoke": {"widths": [0.25, 0.5], "group_size": 2},
}
CONFIG = "digits_convnet"
LAYER = "fc"


def run(out: pathlib.Path, *, preset: str, data_dir=None, log=print) -> dict:
    """Trains a group per width; all-pairs PWCCA distance per layer; test accuracies."""
    s = select({}, SETTINGS, preset)
    acts, nets = [], []
    for i, width in enumerate(s["widths"]):
        for k in range(s["group_size"]):
            seed = 300 + 10 * i + k
            run_dir = out / "width" / "networks" / f"w{width}_seed{seed}"
            model, data, _ = train_network(
                run_dir,
                CONFIG,
                preset,
                data_dir=data_dir,
                log=log,
                seed=seed,
                width=width,
                reduce="spatial_mean",
            )
            test_acc = accuracy(model, data["test_x"], data["test_y"])
            nets.append({"width": width, "group": i, "seed": seed, "test_acc": test_acc})
            acts.append(final_activations(run_dir))
        log(f"  width {width}: {s['group_size']} networks trained")
    layers = list(acts[0])
    distance = {
        layer: 1.0
        - np.asarray(jaxcca.symmetrize(jaxcca.pairwise([a[layer] for a in acts], measure="pwcca")))
        for layer in layers
    }
    return save_results(
        out,
        "width",
        {
            "preset": preset,
            "widths": s["widths"],
            "networks": nets,
            "layers": layers,
            "distance": distance,
        },
    )


def within(dist, labels, group) -> np.ndarray:
    """Distances of the distinct pairs of networks in ``group``."""
    dist, labels = np.asarray(dist), np.asarray(labels)
    sel = np.outer(labels == group, labels == group) & np.triu(np.ones_like(dist, bool), 1)
    return dist[sel]


def per_network(dist, labels) -> np.ndarray:
    """Each network's mean distance to the other networks of its group."""
    dist, labels = np.asarray(dist), np.asarray(labels)
    out = []
    for i, g in enumerate(labels):
        mask = (labels == g) & (np.arange(len(labels)) != i)
        out.append(dist[i, mask].mean())
    return np.asarray(out)


def claims(results: dict) -> list[dict]:
    """Figure 4's two claims at layer ``fc``."""
    nets = results["networks"]
    labels = np.asarray([n["group"] for n in nets])
    seeds = [n["seed"] for n in nets]
    dist = np.asarray(results["distance"][LAYER])
    last = labels.max()

    def fall(lab):
        return within(dist, lab, 0).mean() - within(dist, lab, last).mean()

    acc = np.asarray([n["test_acc"] for n in nets])
    d_net = per_network(dist, labels)

    def anti(a):
        if np.std(a) == 0 or np.std(d_net) == 0:
            return 0.0
        return -float(np.corrcoef(d_net, a)[0, 1])

    rng = np.random.default_rng(0)
    w = results["widths"]
    return [
        C.claim(
            id="width.wider_closer",
            paper="PWCCA",
            figure="fig4a",
            statement="wider networks converge to more similar solutions",
            statistic=f"mean PWCCA distance within the width-{w[0]} group minus within the "
            f"width-{w[-1]} group ({LAYER})",
            value=fall(labels),
            spread=C.standard_error(within(dist, labels, 0), within(dist, labels, last)),
            null=C.permutation_null(fall, labels, "width labels permuted over the networks"),
            seeds=seeds,
        ),
        C.claim(
            id="width.distance_vs_accuracy",
            paper="PWCCA",
            figure="fig4b",
            statement="networks with more similar representations generalise better "
            "(paper: r = -0.96)",
            statistic="minus Pearson r of each network's mean PWCCA distance to its group "
            f"and its test accuracy ({LAYER})",
            value=anti(acc),
            null=C.null_from(
                [anti(rng.permutation(acc)) for _ in range(500)],
                "test accuracies permuted over the networks",
            ),
            seeds=seeds,
        ),
    ]


def table(results: dict) -> str:
    """Within-group distance per layer and mean test accuracy, per width."""
    labels = np.asarray([n["group"] for n in results["networks"]])
    layers = results["layers"]
    lines = ["| width | " + " | ".join(layers) + " | test accuracy |"]
    lines.append("| --- " * (len(layers) + 2) + "|")
    for i, w in enumerate(results["widths"]):
        cells = [fmt(within(results["distance"][lay], labels, i).mean()) for lay in layers]
        acc = np.mean([n["test_acc"] for n in results["networks"] if n["group"] == i])
        lines.append(f"| {w} | " + " | ".join(cells) + f" | {fmt(acc)} |")
    return "\n".join(lines)


def figure(results: dict, path: pathlib.Path) -> None:
    """Distance against width (pair spread as error bars); distance against accuracy."""
    labels = np.asarray([n["group"] for n in results["networks"]])
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    w = results["widths"]
    for layer in results["layers"]:
        vals = [within(results["distance"][layer], labels, i) for i in range(len(w))]
        axes[0].errorbar(
            w,
            [v.mean() for v in vals],
            yerr=[v.std() for v in vals],
            fmt="o-",
            capsize=3,
            label=layer,
        )
    axes[0].set_xscale("log", base=2)
    axes[0].set_xlabel("width multiplier")
    axes[0].set_ylabel("PWCCA distance within group")
    axes[0].legend()
    d = per_network(results["distance"][LAYER], labels)
    axes[1].scatter(d, [n["test_acc"] for n in results["networks"]], c=labels)
    axes[1].set_xlabel(f"PWCCA distance to own group ({LAYER})")
    axes[1].set_ylabel("test accuracy")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
