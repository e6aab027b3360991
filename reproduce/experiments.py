"""PWCCA figure 3 (quick form): generalising vs memorising networks, layer by layer."""

from __future__ import annotations

import json
import os
import pathlib
import tempfile
import time

import numpy as np

import jaxcca
from reproduce.data import load_digits_splits, random_labels
from reproduce.models import LAYERS
from reproduce.train import accuracy, probe_activations, train_convnet

PRESETS = {
    "quick": {"group_size": 3, "steps_true": 400, "steps_random": 1500, "width": 1.0},
    "full": {"group_size": 5, "steps_true": 3000, "steps_random": 20000, "width": 2.0},
    "smoke": {"group_size": 2, "steps_true": 3, "steps_random": 3, "width": 0.5},
}


def _atomic_write(path: pathlib.Path, text: str) -> None:
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False) as f:
        f.write(text)
    os.replace(f.name, path)


def generalize_vs_memorize(out: pathlib.Path, *, preset: str = "quick", log=print) -> dict:
    """Generalising (true labels) vs memorising (one fixed random labelling) networks.

    Every layer of every pair of networks is compared with jaxcca.pairwise (PWCCA).

    Claim (Morcos et al. 2018, figure 3): in later layers, generalising networks
    are more similar to each other than memorising networks are to each other,
    and memorising networks are about as far from each other as from
    generalising ones.
    """
    cfg = PRESETS[preset]
    out.mkdir(parents=True, exist_ok=True)
    result_path = out / "results.json"
    if result_path.exists():
        log(f"  {result_path} exists: skipping (delete it to rerun)")
        return json.loads(result_path.read_text())
    data = load_digits_splits()
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
    per_layer = {}
    for layer in LAYERS:
        stack = np.stack([acts[k][layer] for k in keys]).astype(np.float32)
        dist = 1.0 - np.asarray(jaxcca.symmetrize(jaxcca.pairwise(stack, measure="pwcca")))
        off = ~np.eye(g, dtype=bool)
        per_layer[layer] = {
            "within_true": float(dist[:g, :g][off].mean()),
            "within_random": float(dist[g:, g:][off].mean()),
            "between": float(dist[:g, g:].mean()),
        }
    late = per_layer[LAYERS[-2]]
    results = {
        "experiment": "generalize_vs_memorize",
        "preset": preset,
        "networks": info,
        "pwcca_distance": per_layer,
        "claims": {
            "generalising nets closer to each other than memorising nets (layer fc)": bool(
                late["within_true"] < late["within_random"]
            ),
            "memorising nets about as far from each other as from generalising nets (fc)": bool(
                abs(late["within_random"] - late["between"]) < 0.5 * late["between"]
            ),
        },
    }
    _atomic_write(result_path, json.dumps(results, indent=2))
    _figure(per_layer, out / "pwcca_distance_by_layer.png")
    return results


def _figure(per_layer: dict, path: pathlib.Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.2))
    for key, style in [("within_true", "o-"), ("within_random", "s-"), ("between", "^--")]:
        ax.plot(list(per_layer), [per_layer[layer][key] for layer in per_layer], style, label=key)
    ax.set_ylabel("PWCCA distance")
    ax.set_title("generalising vs memorising networks (digits)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
