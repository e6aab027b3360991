"""The experiments, one module per paper figure; the name is the file and the report row.

Each module has ``run(out, *, preset, data_dir, log)``, which trains and
measures and writes raw numbers to ``OUT/<name>/results.json``, and pure
functions of those results: ``claims(results)`` (records of
:mod:`reproduce.claims`), ``table(results)`` (markdown) and
``figure(results, path)``; and ``TITLE`` and ``PAPER``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

NAMES = (
    "synthetic",
    "memorize",
    "width",
    "learning_rate",
    "dynamics",
    "lstm_dynamics",
    "timesteps",
    "svcca_projection",
    "freeze_training",
    "class_sensitivity",
    "architectures",
    "regularize",
    "bottom_up",
    "toy_regression",
    "cca_without_svd",
    "dft_equivalence",
)


# the networks that several experiments train once and share (OUT/shared/..., OUT/networks/...):
# experiments that share one run in the same process, one after another (``chains``)
SHARED_NETWORKS = {
    "memorize": ("digits_true",),
    "width": ("digits_true",),
    "dynamics": ("digits_true", "lstm"),
    "lstm_dynamics": ("lstm",),
    "timesteps": ("lstm",),
    "svcca_projection": ("svcca_group",),
    "freeze_training": ("svcca_group",),
    "class_sensitivity": ("svcca_group",),
    "architectures": ("svcca_group",),
    "bottom_up": ("svcca_group",),
}


def chains(names) -> list[list[str]]:
    """``names`` split into groups that share no networks, each group in ``NAMES`` order.

    Two experiments are in one group when they share networks, directly or
    through a third; groups can run in parallel processes without training the
    same network twice. Largest groups first.
    """
    names = [n for n in NAMES if n in set(names)]
    groups: list[tuple[set[str], list[str]]] = []
    for name in names:
        shares = set(SHARED_NETWORKS.get(name, ()))
        joined = [g for g in groups if g[0] & shares]
        keys, members = set(shares), []
        for g in joined:
            keys |= g[0]
            members += g[1]
            groups.remove(g)
        groups.append((keys, members + [name]))
    ordered = [sorted(m, key=NAMES.index) for _, m in groups]
    return sorted(ordered, key=len, reverse=True)


def get(name: str) -> ModuleType:
    """The experiment module ``name``."""
    if name not in NAMES:
        raise ValueError(f"unknown experiment {name!r}; choose from {', '.join(NAMES)}")
    return importlib.import_module(f"reproduce.experiments.{name}")
