"""PWCCA figure 4: wider networks converge to more similar representations.

Claims: (4a) the PWCCA distance between networks of one width falls as the
width grows; (4b) over pairs of networks, the pair's distance correlates
negatively with its test accuracy (paper: r = -0.96). As the paper does
(its footnote 8), every width is compared on the same number of units: a
fixed random subset of each layer (as many units as the narrowest network has;
the same indices for every network of a width), so the CCA floor of unrelated
data (which rises with units / samples) does not change with width. Measured
on training images, as the paper does, without thresholding (the subset is
already small); PWCCA symmetrised (both weighting directions averaged).

Config: ``digits_convnet`` with the width multiplier swept; every network its
own seed (``300 + 10 * i + k``; the width-1 group is the generalising group
shared with ``memorize``, seeds 100+k). Command: ``python -m reproduce all
--only width``; runtime quick ~2 min CPU. Outputs: ``width/results.json``,
``width/width.png``, ``width/networks/*``.
"""

from __future__ import annotations

import pathlib

import numpy as np

from reproduce import claims as C
from reproduce.configs import select
from reproduce.experiments import _common as K
from reproduce.io import pyplot
from reproduce.train import accuracy

TITLE = "Wider networks converge to more similar representations"
PAPER = "PWCCA (Morcos et al. 2018) figure 4"
SETTINGS = {
    "quick": {"widths": [0.25, 0.5, 1.0, 2.0], "group_size": 3, "n_samples": 500},
    "full": {"widths": [0.25, 0.5, 1.0, 2.0, 4.0], "group_size": 5, "n_samples": 5000},
    "smoke": {"widths": [0.5, 1.0], "group_size": 2, "n_samples": 400},
}
CONFIG = "digits_convnet"
LAYER = "fc"


def unit_subset(d: int, k: int, *, seed: int = 0) -> np.ndarray:
    """A fixed random choice of ``k`` of ``d`` units (sorted), the same for one ``(d, k)``."""
    return np.sort(np.random.default_rng([seed, d, k]).choice(d, size=k, replace=False))


def run(out: pathlib.Path, *, preset: str, data_dir=None, log=print) -> dict:
    """Trains a group per width; PWCCA distance of every pair on a fixed number of units."""
    s = select({}, SETTINGS, preset)
    g = s["group_size"]
    nets, acts = [], []
    for i, width in enumerate(s["widths"]):
        if width == 1.0:
            members = K.shared_true_group(out, preset, g, data_dir=data_dir, log=log)
        else:
            members = K.train_group(
                out / "width" / "networks",
                CONFIG,
                preset,
                [300 + 10 * i + k for k in range(g)],
                prefix=f"w{width}_seed",
                data_dir=data_dir,
                log=log,
                width=width,
                reduce="spatial_mean",
            )
        for m in members:
            model, data = m["model"], m["data"]
            test_acc = accuracy(model, data["test_x"], data["test_y"])
            nets.append({"width": width, "group": i, "seed": m["seed"], "test_acc": test_acc})
            acts.append(K.layer_activations(model, data["x"], n=s["n_samples"]))
        log(f"  width {width}: {g} networks")
    layers = [k for k in acts[0] if k != "logits"]
    units = {k: min(a[k].shape[1] for a in acts) for k in layers}
    distance = {}
    for layer in layers:
        reps = [a[layer][:, unit_subset(a[layer].shape[1], units[layer])] for a in acts]
        distance[layer] = K.pwcca_distance_matrix(reps, keep=None, pad_to=K.PAD)
    return K.save_results(
        out,
        "width",
        {
            "preset": preset,
            "settings": s,
            "widths": s["widths"],
            "units": units,
            "networks": nets,
            "layers": layers,
            "distance": distance,
        },
    )


def pair_table(dist, nets) -> tuple[np.ndarray, np.ndarray]:
    """Distance and mean test accuracy of every pair of networks of the same width."""
    labels = np.asarray([n["group"] for n in nets])
    acc = np.asarray([n["test_acc"] for n in nets])
    i, j = np.nonzero(np.triu(labels[:, None] == labels[None, :], 1))
    return np.asarray(dist)[i, j], 0.5 * (acc[i] + acc[j])


def claims(results: dict) -> list[dict]:
    """Figure 4's two claims at layer ``fc``."""
    nets = results["networks"]
    labels = np.asarray([n["group"] for n in nets])
    seeds = [n["seed"] for n in nets]
    dist = np.asarray(results["distance"][LAYER])
    last = labels.max()
    k = results["units"][LAYER]

    def fall(lab):
        return K.within_pairs(dist, lab, 0).mean() - K.within_pairs(dist, lab, last).mean()

    def anti(ns):
        d, a = pair_table(dist, ns)
        if np.std(a) == 0 or np.std(d) == 0:
            return 0.0
        return -float(np.corrcoef(d, a)[0, 1])

    acc = [n["test_acc"] for n in nets]
    rng = np.random.default_rng(0)
    shuffled = [
        anti([{**n, "test_acc": a} for n, a in zip(nets, rng.permutation(acc), strict=True)])
        for _ in range(500)
    ]
    w = results["widths"]
    what = f"symmetrised PWCCA distance on {k} fixed random units of {LAYER}, train images"
    return [
        C.claim(
            id="width.wider_closer",
            paper="PWCCA",
            figure="fig4a",
            statement="wider networks converge to more similar solutions",
            statistic=f"mean within-group {what}: width {w[0]} minus width {w[-1]}",
            value=fall(labels),
            spread=C.standard_error(
                K.within_pairs(dist, labels, 0), K.within_pairs(dist, labels, last)
            ),
            null=C.permutation_null(fall, labels, "width labels permuted over the networks"),
            seeds=seeds,
        ),
        C.claim(
            id="width.distance_vs_accuracy",
            paper="PWCCA",
            figure="fig4b",
            statement="networks with more similar representations generalise better "
            "(paper: r = -0.96)",
            statistic=f"minus Pearson r, over the same-width pairs, of the pair's {what} and "
            "its mean test accuracy",
            value=anti(nets),
            null=C.null_from(shuffled, "test accuracies permuted over the networks (500 draws)"),
            seeds=seeds,
        ),
    ]


def table(results: dict) -> str:
    """Within-group distance per layer (fixed units) and mean test accuracy, per width."""
    labels = np.asarray([n["group"] for n in results["networks"]])
    layers = results["layers"]
    head = " | ".join(f"{lay} ({results['units'][lay]} units)" for lay in layers)
    lines = [f"| width | {head} | test accuracy |", "| --- " * (len(layers) + 2) + "|"]
    for i, w in enumerate(results["widths"]):
        cells = [
            K.fmt(K.within_pairs(results["distance"][lay], labels, i).mean()) for lay in layers
        ]
        acc = np.mean([n["test_acc"] for n in results["networks"] if n["group"] == i])
        lines.append(f"| {w} | " + " | ".join(cells) + f" | {K.fmt(acc)} |")
    return "\n".join(lines)


def figure(results: dict, path: pathlib.Path) -> None:
    """4a: distance against width (pair spread); 4b: pair distance against pair accuracy."""
    nets = results["networks"]
    labels = np.asarray([n["group"] for n in nets])
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    w = results["widths"]
    for layer in results["layers"]:
        vals = [K.within_pairs(results["distance"][layer], labels, i) for i in range(len(w))]
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
    d, a = pair_table(results["distance"][LAYER], nets)
    i, _ = np.nonzero(np.triu(labels[:, None] == labels[None, :], 1))
    axes[1].scatter(d, a, c=labels[i])
    axes[1].set_xlabel(f"PWCCA distance of a pair ({LAYER})")
    axes[1].set_ylabel("pair's mean test accuracy")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
