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


def get(name: str) -> ModuleType:
    """The experiment module ``name``."""
    if name not in NAMES:
        raise ValueError(f"unknown experiment {name!r}; choose from {', '.join(NAMES)}")
    return importlib.import_module(f"reproduce.experiments.{name}")
