"""PWCCA figure 3 (and A5, A9, A10): generalising vs memorising networks.

Claims (fig 3, on the *training* images, PWCCA after thresholding each
representation to the principal directions holding 99% of its variance, the
paper's "thresholding to remove low variance noise"): in later layers the
generalising networks are closer to each other than the memorising ones;
memorising networks are as far from each other as from generalising ones;
early layers are about equally similar in both groups; at the softmax both
groups are nearly identical on the training data. Fig A10: on test data only
the generalising networks agree at the softmax. Fig A9: the unweighted mean CCA
separates the groups less. Fig A5: cosine and Euclidean distances (no
alignment of neurons) separate them less.

PWCCA direction: ``jaxcca.pairwise(..., measure="pwcca")`` weights by the row
network's neurons; every distance is symmetrised, ``1 - (P[i, j] + P[j, i]) / 2``.

Config: ``digits_convnet`` (``random_label_steps`` for the memorising group).
Generalising networks: seeds 100+k, shared with ``width`` and ``dynamics``
(``OUT/shared/``); memorising: seeds 200+k, each trained on the same fixed
permutation of the training labels. Command: ``python -m reproduce all --only
memorize``; runtime quick ~2 min CPU. Outputs: ``memorize/results.json``,
``memorize/memorize.png``, ``memorize/networks/*``.
"""

from __future__ import annotations

import pathlib

import numpy as np

import jaxcca
from reproduce import claims as C
from reproduce import configs
from reproduce.configs import select
from reproduce.experiments import _common as K
from reproduce.io import pyplot
from reproduce.train import accuracy

TITLE = "Generalising vs memorising networks"
PAPER = "PWCCA (Morcos et al. 2018) figure 3; figures A5, A9, A10"
SETTINGS = {
    "quick": {"group_size": 3, "n_samples": 500},
    "full": {"group_size": 5, "n_samples": 5000},
    "smoke": {"group_size": 2, "n_samples": 400},
}
CONFIG = "digits_convnet"
EARLY, LATE, SOFTMAX = "conv1", "fc", "softmax"
KEEP = 0.99
TOL = 0.2  # "as far" / "equally similar": agreement within 20% of the distance


def _with_softmax(acts: dict) -> dict:
    """The layers plus ``"softmax"``: the softmax of the logits (the paper's softmax layer)."""
    logits = acts["logits"].astype(np.float64)
    e = np.exp(logits - logits.max(1, keepdims=True))
    return {**acts, SOFTMAX: (e / e.sum(1, keepdims=True)).astype(np.float32)}


def run(out: pathlib.Path, *, preset: str, data_dir=None, log=print) -> dict:
    """Trains both groups; every layer's distance matrices on train and test images."""
    s = select({}, SETTINGS, preset)
    g, n = s["group_size"], s["n_samples"]
    true = K.shared_true_group(out, preset, g, data_dir=data_dir, log=log)
    steps = configs.get_config(CONFIG, preset)["random_label_steps"]
    random = K.train_group(
        out / "memorize" / "networks",
        CONFIG,
        preset,
        range(200, 200 + g),
        prefix="random_seed",
        data_dir=data_dir,
        log=log,
        labels="random",
        label_seed=1234,
        steps=steps,
        reduce="spatial_mean",
    )
    nets, acts = [], {"train": [], "test": []}
    for group, members in (("true", true), ("random", random)):
        for m in members:
            model, data = m["model"], m["data"]
            nets.append(
                {
                    "group": group,
                    "seed": m["seed"],
                    "steps": m["cfg"]["steps"],
                    "train_acc": accuracy(model, data["x"], data["y"]),  # on its own labels
                    "test_acc": accuracy(model, data["test_x"], data["test_y"]),
                }
            )
            acts["train"].append(_with_softmax(K.layer_activations(model, data["x"], n=n)))
            acts["test"].append(_with_softmax(K.layer_activations(model, data["test_x"], n=n)))
            log(f"  {group}-label net: {nets[-1]}")
    layers = list(acts["train"][0])
    pad = max(a.shape[1] for a in acts["train"][0].values())  # one shape: one compile
    pad = max(pad, K.PAD)
    distance = {}
    for split, reps in acts.items():
        distance[split] = {}
        for layer in layers:
            r = [a[layer] for a in reps]
            distance[split][layer] = {
                "pwcca": K.pwcca_distance_matrix(r, keep=KEEP, pad_to=pad),
                "cca": K.mean_cca_distance_matrix(r, keep=KEEP, pad_to=pad),
                "cosine": K.baseline_matrix(K.cosine_distance, r, pad_to=pad),
                "euclidean": K.baseline_matrix(K.euclidean_distance, r, pad_to=pad),
            }
    # null for "nearly identical at the softmax": the symmetrised PWCCA distance of two
    # generalising networks' softmax outputs with one's rows shuffled
    softmax_null = K.shuffled_rows(
        lambda x, y: 1.0 - 0.5 * (jaxcca.pwcca_similarity(x, y) + jaxcca.pwcca_similarity(y, x)),
        K.threshold_variance(acts["train"][0][SOFTMAX], KEEP),
        K.threshold_variance(acts["train"][1][SOFTMAX], KEEP),
        n=50,
    )
    return K.save_results(
        out,
        "memorize",
        {
            "preset": preset,
            "settings": s,
            "keep_variance": KEEP,
            "networks": nets,
            "layers": layers,
            "distance": distance,
            "softmax_distance_shuffled_rows": softmax_null,
        },
    )


def group_means(dist, labels) -> dict:
    """Mean distance within group 0 (true), within group 1 (random), and between them."""
    return {
        "within_true": float(K.within_pairs(dist, labels, 0).mean()),
        "within_random": float(K.within_pairs(dist, labels, 1).mean()),
        "between": float(K.between_pairs(dist, labels, 0, 1).mean()),
    }


def _labels(results) -> np.ndarray:
    return np.asarray([0 if n["group"] == "true" else 1 for n in results["networks"]])


def separation(dist, labels) -> float:
    """(within memorising - within generalising) / mean distance: scale-free group separation."""
    m = group_means(dist, labels)
    scale = max(np.mean(list(m.values())), 1e-12)
    return (m["within_random"] - m["within_true"]) / scale


def claims(results: dict) -> list[dict]:
    """Figure 3's four statements and figures A9, A10, A5."""
    labels = _labels(results)
    seeds = [n["seed"] for n in results["networks"]]
    tr, te = results["distance"]["train"], results["distance"]["test"]
    d = {k: np.asarray(v) for k, v in tr[LATE].items()}
    perm = f"group labels permuted over the {len(labels)} networks (every relabelling)"
    pw = "PWCCA distance, symmetrised (both weighting directions averaged), on "
    common = {"paper": "PWCCA", "seeds": seeds}

    def closer(dist):
        return lambda lab: (
            group_means(dist, lab)["within_random"] - group_means(dist, lab)["within_true"]
        )

    def spread(dist):
        return C.standard_error(K.within_pairs(dist, labels, 0), K.within_pairs(dist, labels, 1))

    m_late = group_means(d["pwcca"], labels)
    d_early = np.asarray(tr[EARLY]["pwcca"])
    m_early = group_means(d_early, labels)
    d_soft = np.asarray(tr[SOFTMAX]["pwcca"])
    m_soft = group_means(d_soft, labels)
    null_soft = 1.0 - np.asarray(results["softmax_distance_shuffled_rows"])
    d_soft_test = np.asarray(te[SOFTMAX]["pwcca"])

    def a9(lab):
        return separation(d["pwcca"], lab) - separation(d["cca"], lab)

    def a5(lab):
        return separation(d["pwcca"], lab) - max(
            separation(d["cosine"], lab), separation(d["euclidean"], lab)
        )

    thr = f"train images, {results['keep_variance']:.0%}-variance thresholding"
    return [
        C.claim(
            id="memorize.generalising_closer",
            figure="fig3",
            statement="in later layers generalising networks converge to more similar "
            "solutions than memorising networks",
            statistic=f"within-memorising minus within-generalising mean {pw}{thr} ({LATE})",
            value=closer(d["pwcca"])(labels),
            spread=spread(d["pwcca"]),
            null=C.permutation_null(closer(d["pwcca"]), labels, perm),
            **common,
        ),
        C.claim(
            id="memorize.memorising_as_far",
            figure="fig3",
            statement="memorising networks are as far from each other as from generalising "
            "networks",
            statistic=f"{TOL:g} x between-group distance minus |within memorising - between| "
            f"({pw}{thr}, {LATE}): positive when they agree within {TOL:.0%}",
            value=TOL * m_late["between"] - abs(m_late["within_random"] - m_late["between"]),
            spread=C.standard_error(K.within_pairs(d["pwcca"], labels, 1)),
            null=C.point_null(0.0, "none: an equality within a tolerance, judged on the spread"),
            **common,
        ),
        C.claim(
            id="memorize.early_equal",
            figure="fig3",
            statement="in early layers generalising and memorising networks are about equally "
            "similar",
            statistic=f"{TOL:g} x mean within-group distance minus |within memorising - within "
            f"generalising| ({pw}{thr}, {EARLY}): positive when they agree within {TOL:.0%}",
            value=TOL * 0.5 * (m_early["within_true"] + m_early["within_random"])
            - abs(m_early["within_random"] - m_early["within_true"]),
            spread=spread(d_early),
            null=C.point_null(0.0, "none: an equality within a tolerance, judged on the spread"),
            **common,
        ),
        C.claim(
            id="memorize.softmax_train_identical",
            figure="fig3",
            statement="at the softmax, on the training data, networks of both groups are nearly "
            "identical",
            statistic=f"PWCCA similarity at the {SOFTMAX} within the less similar group "
            f"(1 - the larger within-group distance; {thr}); 'nearly identical': above 0.9",
            value=1.0 - max(m_soft["within_true"], m_soft["within_random"]),
            threshold=0.9,
            spread=C.standard_error(K.within_pairs(d_soft, labels, 1)),
            null=C.null_from(
                null_soft, "two generalising nets' softmax outputs, one's rows shuffled (50 draws)"
            ),
            **common,
        ),
        C.claim(
            id="memorize.softmax_test_generalising_only",
            figure="figA10",
            statement="on test data only the generalising networks agree at the softmax",
            statistic=f"within-memorising minus within-generalising mean {pw}test images "
            f"({SOFTMAX})",
            value=closer(d_soft_test)(labels),
            spread=spread(d_soft_test),
            null=C.permutation_null(closer(d_soft_test), labels, perm),
            **common,
        ),
        C.claim(
            id="memorize.mean_cca_hides",
            figure="figA9",
            statement="the unweighted mean CCA does not reveal the separation that PWCCA shows",
            statistic=f"PWCCA's minus mean CCA's group separation ((within memorising - within "
            f"generalising) / mean distance; {thr}, {LATE})",
            value=a9(labels),
            null=C.permutation_null(a9, labels, perm),
            **common,
        ),
        C.claim(
            id="memorize.baselines_weaker",
            figure="figA5",
            statement="distances that do not align neurons (cosine, Euclidean) separate the "
            "groups less than PWCCA",
            statistic=f"PWCCA's group separation minus the larger of cosine's and Euclidean's "
            f"(same scale-free separation; train images, {LATE})",
            value=a5(labels),
            null=C.permutation_null(a5, labels, perm),
            **common,
        ),
    ]


def table(results: dict) -> str:
    """Group means of the PWCCA distance per layer, on train and test images; accuracies."""
    labels = _labels(results)
    lines = [
        "| layer | split | PWCCA within true | within random | between | mean CCA within true "
        "| within random | between |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for split in ("train", "test"):
        for layer in results["layers"]:
            p = group_means(results["distance"][split][layer]["pwcca"], labels)
            c = group_means(results["distance"][split][layer]["cca"], labels)
            cells = [K.fmt(v) for v in (*p.values(), *c.values())]
            lines.append(f"| {layer} | {split} | " + " | ".join(cells) + " |")
    acc = " ".join(
        f"{n['group']}{n['seed']}: train {n['train_acc']:.2f} test {n['test_acc']:.2f};"
        for n in results["networks"]
    )
    return "\n".join(lines) + f"\n\nAccuracies (train on the net's own labels): {acc}"


def figure(results: dict, path: pathlib.Path) -> None:
    """Fig 3 (PWCCA, train), A10 (PWCCA, test), A9 (mean CCA), A5 (cosine): distance by layer."""
    labels = _labels(results)
    plt = pyplot()
    panels = (
        ("train", "pwcca", "fig 3: PWCCA, train"),
        ("test", "pwcca", "A10: PWCCA, test"),
        ("train", "cca", "A9: mean CCA, train"),
        ("train", "cosine", "A5: cosine, train"),
    )
    fig, axes = plt.subplots(1, 4, figsize=(15, 3.2))
    layers = results["layers"]
    for ax, (split, measure, title) in zip(axes, panels, strict=True):
        dist = [np.asarray(results["distance"][split][lay][measure]) for lay in layers]
        for group, style, name in ((0, "o-", "generalising"), (1, "s-", "memorising")):
            vals = [K.within_pairs(dd, labels, group) for dd in dist]
            ax.errorbar(
                layers,
                [v.mean() for v in vals],
                yerr=[v.std() for v in vals],
                fmt=style,
                capsize=3,
                label=name,
            )
        ax.plot(
            layers,
            [K.between_pairs(dd, labels, 0, 1).mean() for dd in dist],
            "^--",
            label="between",
        )
        ax.set_title(title)
        ax.set_ylabel("distance")
    axes[0].legend(fontsize=7)
    K.save_figure(fig, path)
