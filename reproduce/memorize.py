"""PWCCA figure 3 (and the baselines of figure A5): generalising vs memorising networks."""

from __future__ import annotations

import pathlib
import time

import jax
import jax.numpy as jnp
import numpy as np

import jaxcca
from reproduce.common import claim, load_done, pyplot, save
from reproduce.data import load_image_splits, random_labels
from reproduce.models import LAYERS
from reproduce.train import accuracy, probe_activations, train_convnet

PRESETS = {
    "quick": {"group_size": 3, "steps_true": 400, "steps_random": 1500, "width": 1.0},
    "full": {"group_size": 5, "steps_true": 3000, "steps_random": 20000, "width": 2.0},
    "smoke": {"group_size": 2, "steps_true": 3, "steps_random": 3, "width": 0.5},
}


@jax.jit
def _cosine_distance(a, b):
    """1 - mean over samples of the cosine between two nets' activation vectors."""
    na = jnp.linalg.norm(a, axis=1)
    nb = jnp.linalg.norm(b, axis=1)
    cos = jnp.sum(a * b, axis=1) / jnp.maximum(na * nb, 1e-12)
    return 1.0 - jnp.mean(cos)


@jax.jit
def _euclidean_distance(a, b):
    """Mean Euclidean distance between activation vectors, over the mean norm."""
    d = jnp.mean(jnp.linalg.norm(a - b, axis=1))
    scale = 0.5 * (jnp.mean(jnp.linalg.norm(a, axis=1)) + jnp.mean(jnp.linalg.norm(b, axis=1)))
    return d / jnp.maximum(scale, 1e-12)


def _baseline_matrix(fn, stack):
    pair = jax.vmap(jax.vmap(fn, in_axes=(None, 0)), in_axes=(0, None))
    return np.asarray(pair(stack, stack))


def _group_means(dist, g):
    off = ~np.eye(g, dtype=bool)
    return {
        "within_true": float(dist[:g, :g][off].mean()),
        "within_random": float(dist[g:, g:][off].mean()),
        "between": float(dist[:g, g:].mean()),
    }


def run(out: pathlib.Path, *, preset: str = "quick", log=print, data_dir=None) -> dict:
    """Generalising (true labels) vs memorising (one fixed random labelling) networks.

    Every layer of every pair of networks is compared with ``jaxcca.pairwise``
    (PWCCA, symmetrised), and with two baselines that do not align neurons
    (cosine and Euclidean distance of the activation vectors).
    """
    done = load_done(out, log)
    if done is not None:
        return done
    cfg = PRESETS[preset]
    data = load_image_splits(data_dir)
    shuffled = random_labels(data["train"].labels, seed=1234)
    groups = {"true": data["train"].labels, "random": shuffled}
    acts, info = {}, []
    t0 = time.time()
    for group, labels in groups.items():
        steps = cfg["steps_true"] if group == "true" else cfg["steps_random"]
        for k in range(cfg["group_size"]):
            model = train_convnet(
                data["train"].images, labels, seed=100 + k, width=cfg["width"], steps=steps
            )
            info.append(
                {
                    "group": group,
                    "seed": 100 + k,
                    "train_acc": accuracy(model, data["train"].images, labels),
                    "test_acc": accuracy(model, data["test"].images, data["test"].labels),
                }
            )
            acts[(group, k)] = probe_activations(model, data["probe"].images)
            log(f"  trained {group}-label net {k}: {info[-1]} ({time.time() - t0:.0f} s)")
    keys = list(acts)
    g = cfg["group_size"]
    per_layer, baselines = {}, {"cosine": {}, "euclidean": {}}
    for layer in LAYERS:
        stack = np.stack([acts[k][layer] for k in keys]).astype(np.float32)
        dist = 1.0 - np.asarray(jaxcca.symmetrize(jaxcca.pairwise(stack, measure="pwcca")))
        per_layer[layer] = _group_means(dist, g)
        baselines["cosine"][layer] = _group_means(_baseline_matrix(_cosine_distance, stack), g)
        baselines["euclidean"][layer] = _group_means(
            _baseline_matrix(_euclidean_distance, stack), g
        )
    late = per_layer[LAYERS[-2]]

    def separation(d):
        return d["within_random"] / max(d["within_true"], 1e-12)

    sep = {
        "pwcca": separation(late),
        "cosine": separation(baselines["cosine"][LAYERS[-2]]),
        "euclidean": separation(baselines["euclidean"][LAYERS[-2]]),
    }
    results = {
        "experiment": "memorize",
        "title": "Generalising vs memorising networks",
        "paper": "PWCCA (Morcos et al. 2018) figure 3; baselines figure A5",
        "preset": preset,
        "networks": info,
        "pwcca_distance": per_layer,
        "baseline_distance": baselines,
        "claims": [
            claim(
                "in later layers generalising networks are more similar to each other "
                "than memorising networks are (layer fc)",
                f"within true {late['within_true']:.3f} vs within random "
                f"{late['within_random']:.3f}",
                late["within_true"] < late["within_random"],
            ),
            claim(
                "memorising networks are about as far from each other as from "
                "generalising ones (fc, within 50%)",
                f"within random {late['within_random']:.3f} vs between {late['between']:.3f}",
                abs(late["within_random"] - late["between"]) < 0.5 * late["between"],
            ),
            claim(
                "baselines (cosine, Euclidean distance without aligning neurons) separate "
                "the groups less than PWCCA (fc: within-random / within-true)",
                ", ".join(f"{k} {v:.2f}" for k, v in sep.items()),
                sep["pwcca"] > max(sep["cosine"], sep["euclidean"]),
            ),
        ],
        "table": _table(per_layer, baselines),
        "figures": ["pwcca_distance_by_layer.png"],
    }
    _figure(per_layer, baselines, out / "pwcca_distance_by_layer.png")
    return save(out, results)


def _table(per_layer, baselines) -> str:
    lines = [
        "| layer | PWCCA within true | within random | between | cosine within true "
        "| within random | between |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for layer, d in per_layer.items():
        c = baselines["cosine"][layer]
        lines.append(
            f"| {layer} | {d['within_true']:.3f} | {d['within_random']:.3f} | "
            f"{d['between']:.3f} | {c['within_true']:.3f} | {c['within_random']:.3f} | "
            f"{c['between']:.3f} |"
        )
    return "\n".join(lines)


def _figure(per_layer: dict, baselines: dict, path: pathlib.Path) -> None:
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    for ax, (title, data) in zip(
        axes,
        [("PWCCA distance", per_layer), ("cosine distance (baseline)", baselines["cosine"])],
        strict=True,
    ):
        for key, style in [("within_true", "o-"), ("within_random", "s-"), ("between", "^--")]:
            ax.plot(list(data), [data[layer][key] for layer in data], style, label=key)
        ax.set_title(title)
        ax.legend()
    fig.suptitle("generalising vs memorising networks (digits)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
