"""SVCCA figure 5: freeze training (lower layers frozen in turn, on a linear schedule).

Claim: freezing lower layers from bottom to top during training keeps (or
improves) test accuracy. Layer group ``i`` of ``L`` (config ``layer_groups``)
is frozen from step ``(i + 1) * steps // (L + 1)`` on, parameters through
``optax.multi_transform`` and batch-norm statistics in the train step, all in
``train.fit``. The two groups have their own seeds. Config: ``svcca_convnet``.
Command: ``python -m reproduce all --only freeze_training``; runtime quick ~1
min. Outputs: ``freeze_training/results.json``, ``.../freeze_training.png``.
"""

from __future__ import annotations

import pathlib

import numpy as np

from reproduce import claims as C
from reproduce import configs
from reproduce.configs import select
from reproduce.experiments._common import fmt, save_results, train_network
from reproduce.io import pyplot
from reproduce.train import accuracy

TITLE = "Freeze training"
PAPER = "SVCCA (Raghu et al. 2017) figure 5"
SETTINGS = {"quick": {"networks": 3}, "full": {"networks": 5}, "smoke": {"networks": 1}}
CONFIG = "svcca_convnet"
SEEDS = {"normal": 500, "freeze": 600}


def schedule(cfg: dict) -> dict:
    """``{path prefix: step}``: group ``i`` of ``L`` frozen at ``(i + 1) * steps // (L + 1)``."""
    groups, steps = cfg["layer_groups"], cfg["steps"]
    return {
        prefix: (i + 1) * steps // (len(groups) + 1)
        for i, group in enumerate(groups)
        for prefix in group
    }


def run(out: pathlib.Path, *, preset: str, data_dir=None, log=print) -> dict:
    """Trains both groups with ``fit``; test accuracy of each network."""
    n = select({}, SETTINGS, preset)["networks"]
    freeze = schedule(configs.get_config(CONFIG, preset))
    nets = []
    for group in ("normal", "freeze"):
        for k in range(n):
            seed = SEEDS[group] + k
            extra = {"freeze": freeze} if group == "freeze" else {}
            model, data, _ = train_network(
                out / "freeze_training" / "networks" / f"{group}_seed{seed}",
                CONFIG,
                preset,
                data_dir=data_dir,
                log=log,
                seed=seed,
                **extra,
            )
            acc = accuracy(model, data["test_x"], data["test_y"])
            nets.append({"group": group, "seed": seed, "test_acc": acc})
    log(f"  {nets}")
    return save_results(
        out, "freeze_training", {"preset": preset, "freeze_schedule": freeze, "networks": nets}
    )


def _accs(results, group):
    return np.asarray([n["test_acc"] for n in results["networks"] if n["group"] == group])


def claims(results: dict) -> list[dict]:
    """Freeze training keeps test accuracy (within half a point), against a label permutation."""
    a, b = _accs(results, "freeze"), _accs(results, "normal")
    return [
        C.claim(
            id="freeze_training.keeps_accuracy",
            paper="SVCCA",
            figure="fig5",
            statement="freezing lower layers in turn during training keeps or improves test "
            "accuracy (and saves computation)",
            statistic="mean test accuracy with freeze training minus without",
            value=float(a.mean() - b.mean()),
            threshold=-0.005,
            spread=C.standard_error(a, b),
            null=C.mean_difference_null(a, b),
            seeds=[n["seed"] for n in results["networks"]],
        )
    ]


def table(results: dict) -> str:
    """Test accuracy of every network."""
    lines = ["| group | seed | test accuracy |", "| --- | --- | --- |"]
    for n in results["networks"]:
        lines.append(f"| {n['group']} | {n['seed']} | {fmt(n['test_acc'])} |")
    return "\n".join(lines)


def figure(results: dict, path: pathlib.Path) -> None:
    """Test accuracy per network, both groups, with their means."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(4, 3.2))
    for i, group in enumerate(("normal", "freeze")):
        a = _accs(results, group)
        ax.plot(np.full(len(a), i), a, "o", alpha=0.6)
        ax.errorbar(i + 0.15, a.mean(), yerr=a.std(), fmt="k_", capsize=4)
    ax.set_xticks([0, 1], ["normal", "freeze training"])
    ax.set_ylabel("test accuracy")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
