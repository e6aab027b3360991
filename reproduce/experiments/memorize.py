"""PWCCA figure 3 (baselines: figure A5): generalising vs memorising networks.

Claim: in later layers, networks trained on true labels are more similar to
each other than networks that memorised random labels. Config:
``digits_convnet`` (``random_label_steps`` for the memorising group). Every
network has its own seed (true labels: 100+k, random: 200+k). Command:
``python -m reproduce all --only memorize``; runtime quick ~2 min, full ~GPU
hours. Outputs: ``memorize/results.json``, ``memorize/memorize.png``,
``memorize/networks/*``.
"""

from __future__ import annotations

import pathlib

import jax
import jax.numpy as jnp
import numpy as np

import jaxcca
from reproduce import claims as C
from reproduce import configs
from reproduce.configs import select
from reproduce.experiments._common import fmt, save_results, train_network
from reproduce.io import pyplot
from reproduce.train import accuracy, final_activations

TITLE = "Generalising vs memorising networks"
PAPER = "PWCCA (Morcos et al. 2018) figure 3; baselines figure A5"
SETTINGS = {"quick": {"group_size": 3}, "full": {"group_size": 5}, "smoke": {"group_size": 2}}
CONFIG = "digits_convnet"
LATE = "fc"
SEEDS = {"true": 100, "random": 200}


@jax.jit
def _cosine_distance(a, b):
    """1 - mean over samples of the cosine between two nets' activation vectors."""
    na, nb = jnp.linalg.norm(a, axis=1), jnp.linalg.norm(b, axis=1)
    return 1.0 - jnp.mean(jnp.sum(a * b, axis=1) / jnp.maximum(na * nb, 1e-12))


@jax.jit
def _euclidean_distance(a, b):
    """Mean Euclidean distance between activation vectors, over the mean norm."""
    d = jnp.mean(jnp.linalg.norm(a - b, axis=1))
    scale = 0.5 * (jnp.mean(jnp.linalg.norm(a, axis=1)) + jnp.mean(jnp.linalg.norm(b, axis=1)))
    return d / jnp.maximum(scale, 1e-12)


def _matrix(fn, stack):
    return np.asarray(jax.vmap(jax.vmap(fn, in_axes=(None, 0)), in_axes=(0, None))(stack, stack))


def run(out: pathlib.Path, *, preset: str, data_dir=None, log=print) -> dict:
    """Trains both groups; every layer's distance matrices (PWCCA, CCA, cosine, Euclidean)."""
    g = select({}, SETTINGS, preset)["group_size"]
    acts, nets = [], []
    for group in ("true", "random"):
        for k in range(g):
            seed = SEEDS[group] + k
            extra = {}
            if group == "random":  # memorising random labels takes longer
                steps = configs.get_config(CONFIG, preset)["random_label_steps"]
                extra = {"labels": "random", "label_seed": 1234, "steps": steps}
            run_dir = out / "memorize" / "networks" / f"{group}_seed{seed}"
            model, data, cfg = train_network(
                run_dir,
                CONFIG,
                preset,
                data_dir=data_dir,
                log=log,
                seed=seed,
                reduce="spatial_mean",
                **extra,
            )
            nets.append(
                {
                    "group": group,
                    "seed": seed,
                    "steps": cfg["steps"],
                    "train_acc": accuracy(model, data["x"], data["y"]),
                    "test_acc": accuracy(model, data["test_x"], data["test_y"]),
                }
            )
            acts.append(final_activations(run_dir))
            log(f"  {group}-label net seed {seed}: {nets[-1]}")
    layers = list(acts[0])
    distance = {}
    for layer in layers:
        stack = jnp.asarray(np.stack([a[layer] for a in acts]))
        distance[layer] = {
            "pwcca": 1.0 - np.asarray(jaxcca.symmetrize(jaxcca.pairwise(stack, measure="pwcca"))),
            "cca": 1.0 - np.asarray(jaxcca.symmetrize(jaxcca.pairwise(stack, measure="cca"))),
            "cosine": _matrix(_cosine_distance, stack),
            "euclidean": _matrix(_euclidean_distance, stack),
        }
    return save_results(
        out,
        "memorize",
        {"preset": preset, "networks": nets, "layers": layers, "distance": distance},
    )


def group_means(dist, labels) -> dict:
    """Mean distance within group 0 (true), within group 1 (random), and between them."""
    dist, labels = np.asarray(dist), np.asarray(labels)
    off = ~np.eye(len(labels), dtype=bool)
    same = labels[:, None] == labels[None, :]
    t, r = labels == 0, labels == 1
    return {
        "within_true": float(dist[np.outer(t, t) & off].mean()),
        "within_random": float(dist[np.outer(r, r) & off].mean()),
        "between": float(dist[~same].mean()),
    }


def _pairs(dist, labels, group):
    sel = np.outer(labels == group, labels == group) & np.triu(np.ones_like(dist, bool), 1)
    return np.asarray(dist)[sel]


def claims(results: dict) -> list[dict]:
    """Figure 3's two claims and figure A5's (baselines), at the late layer ``fc``."""
    labels = np.asarray([0 if n["group"] == "true" else 1 for n in results["networks"]])
    seeds = [n["seed"] for n in results["networks"]]
    d = {k: np.asarray(v) for k, v in results["distance"][LATE].items()}
    perm = f"group labels permuted over the {len(labels)} networks"
    m = group_means(d["pwcca"], labels)

    def closer(lab):
        gm = group_means(d["pwcca"], lab)
        return gm["within_random"] - gm["within_true"]

    def separation(lab):
        sep = {
            k: group_means(d[k], lab)["within_random"]
            / max(group_means(d[k], lab)["within_true"], 1e-12)
            for k in ("pwcca", "cosine", "euclidean")
        }
        return sep["pwcca"] - max(sep["cosine"], sep["euclidean"])

    common = {"paper": "PWCCA", "seeds": seeds}
    return [
        C.claim(
            id="memorize.generalising_closer",
            figure="fig3",
            statement="in later layers generalising networks converge to more similar "
            "solutions than memorising networks",
            statistic=f"PWCCA distance within memorising minus within generalising ({LATE})",
            value=closer(labels),
            spread=C.standard_error(_pairs(d["pwcca"], labels, 0), _pairs(d["pwcca"], labels, 1)),
            null=C.permutation_null(closer, labels, perm),
            **common,
        ),
        C.claim(
            id="memorize.memorising_as_far",
            figure="fig3",
            statement="memorising networks are as far from each other as from generalising "
            "networks",
            statistic=f"half the between-group distance minus |within memorising - between| "
            f"(PWCCA, {LATE}): positive when they agree within 50%",
            value=0.5 * m["between"] - abs(m["within_random"] - m["between"]),
            spread=C.standard_error(_pairs(d["pwcca"], labels, 1)),
            null=C.point_null(0.0, "none: an equality within a tolerance, judged on the spread"),
            **common,
        ),
        C.claim(
            id="memorize.baselines_weaker",
            figure="figA5",
            statement="distances that do not align neurons (cosine, Euclidean) separate the "
            "groups less than PWCCA",
            statistic=f"PWCCA's within-random / within-true ratio minus the larger of the "
            f"baselines' ({LATE})",
            value=separation(labels),
            null=C.permutation_null(separation, labels, perm),
            **common,
        ),
    ]


def table(results: dict) -> str:
    """Group means of the PWCCA and cosine distances, layer by layer."""
    labels = np.asarray([0 if n["group"] == "true" else 1 for n in results["networks"]])
    lines = [
        "| layer | PWCCA within true | within random | between | cosine within true "
        "| within random | between |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for layer in results["layers"]:
        p = group_means(results["distance"][layer]["pwcca"], labels)
        c = group_means(results["distance"][layer]["cosine"], labels)
        cells = [fmt(v) for v in (*p.values(), *c.values())]
        lines.append(f"| {layer} | " + " | ".join(cells) + " |")
    acc = " ".join(
        f"{n['group']}{n['seed']}: train {n['train_acc']:.2f} test {n['test_acc']:.2f};"
        for n in results["networks"]
    )
    return "\n".join(lines) + f"\n\nAccuracies: {acc}"


def figure(results: dict, path: pathlib.Path) -> None:
    """Group distances by layer, PWCCA and the cosine baseline, with the pair spread."""
    labels = np.asarray([0 if n["group"] == "true" else 1 for n in results["networks"]])
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    layers = results["layers"]
    for ax, measure in zip(axes, ("pwcca", "cosine"), strict=True):
        for group, style in ((0, "o-"), (1, "s-")):
            vals = [_pairs(results["distance"][lay][measure], labels, group) for lay in layers]
            m = np.asarray([v.mean() for v in vals])
            s = np.asarray([v.std() for v in vals])
            ax.errorbar(layers, m, yerr=s, fmt=style, capsize=3, label=["true", "random"][group])
        between = [
            group_means(results["distance"][lay][measure], labels)["between"] for lay in layers
        ]
        ax.plot(layers, between, "^--", label="between")
        ax.set_title(f"{measure} distance")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
