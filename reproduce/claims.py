"""Claims are data: the record of one paper claim, its null, and the one rule that decides it.

Every claim's statistic is oriented so that the paper's claim says "the value
is large": above ``threshold`` (0 unless the claim names a size) and above
what a baseline that should show no effect gives (the null). The outcome reads
exactly the quantities the record holds:

* ``"held"`` when ``value - spread > max(threshold, null["high"])``;
* ``"not held"`` when ``value + spread < min(threshold, null["low"])``;
* ``"inconclusive"`` otherwise: the effect is within the seed-to-seed spread
  or within the null.

``spread`` is the seed-to-seed standard error of the value (0 when the value
comes from one network or from deterministic data, which the record says in
``seeds``). A null is ``{"value", "low", "high", "how", "n"}``: the mean and the
5% and 95% quantiles (the extremes with fewer than 20 draws) of the statistic
over ``n`` baseline draws (a permutation of group labels, of rows, or random
directions), as ``how`` says.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import numpy as np

PAPERS = ("PWCCA", "SVCCA", "jaxcca")
OUTCOMES = ("held", "not held", "inconclusive")
CRITERION = (
    "held if value - spread > max(threshold, null high); not held if value + spread < "
    "min(threshold, null low); otherwise inconclusive"
)
FIELDS = (
    "id",
    "paper",
    "figure",
    "statement",
    "statistic",
    "value",
    "threshold",
    "spread",
    "null",
    "criterion",
    "seeds",
    "outcome",
)


def decide(value: float, *, null: dict, spread: float = 0.0, threshold: float = 0.0) -> str:
    """The outcome of a claim: "held", "not held" or "inconclusive" (rule in the module doc).

    Example:
        >>> decide(0.3, null=point_null(0.0, "no effect by construction"), spread=0.05)
        'held'
        >>> decide(0.3, null={"low": -0.1, "high": 0.4}, spread=0.0)
        'inconclusive'
        >>> decide(-0.3, null={"low": -0.1, "high": 0.1}, spread=0.1)
        'not held'
    """
    value, spread = float(value), float(spread)
    if not np.isfinite(value):
        return "inconclusive"
    if value - spread > max(threshold, null["high"]):
        return "held"
    if value + spread < min(threshold, null["low"]):
        return "not held"
    return "inconclusive"


def claim(
    *,
    id: str,  # noqa: A002
    paper: str,
    figure: str,
    statement: str,
    statistic: str,
    value: float,
    null: dict,
    seeds: Sequence[int] | str,
    spread: float = 0.0,
    threshold: float = 0.0,
) -> dict:
    """One claim as a record with every field of :data:`FIELDS`, its outcome decided."""
    if paper not in PAPERS:
        raise ValueError(f"paper must be one of {PAPERS}, got {paper!r}")
    value = float(value)
    spread = float(spread) if np.isfinite(spread) else 0.0
    return {
        "id": id,
        "paper": paper,
        "figure": figure,
        "statement": statement,
        "statistic": statistic,
        "value": value,
        "threshold": float(threshold),
        "spread": spread,
        "null": null,
        "criterion": CRITERION,
        "seeds": list(seeds) if not isinstance(seeds, str) else seeds,
        "outcome": decide(value, null=null, spread=spread, threshold=threshold),
    }


def null_from(samples, how: str) -> dict:
    """A null from draws of the statistic under a baseline: mean, 5% and 95% quantiles.

    Example:
        >>> null_from([-1.0, 1.0], "two relabellings")["high"]
        1.0
    """
    s = np.asarray(samples, np.float64).reshape(-1)
    s = s[np.isfinite(s)]
    if s.size == 0:
        return {"value": float("nan"), "low": float("inf"), "high": float("inf"), "how": how}
    # with few draws (e.g. every relabelling of 4 networks) the quantiles are the extremes
    low, high = np.quantile(s, [0.05, 0.95]) if s.size >= 20 else (s.min(), s.max())
    return {
        "value": float(s.mean()),
        "low": float(low),
        "high": float(high),
        "how": how,
        "n": int(s.size),
    }


def point_null(value: float, how: str) -> dict:
    """A null that is one number (a baseline with no randomness)."""
    return {"value": float(value), "low": float(value), "high": float(value), "how": how, "n": 1}


def standard_error(a, b=None) -> float:
    """Standard error of ``mean(a)`` (or of ``mean(a) - mean(b)``); 0 with one value."""

    def var_of_mean(x):
        x = np.asarray(x, np.float64).reshape(-1)
        return float(x.var(ddof=1) / x.size) if x.size > 1 else 0.0

    return float(np.sqrt(var_of_mean(a) + (var_of_mean(b) if b is not None else 0.0)))


def label_permutations(labels, *, n: int = 500, seed: int = 0) -> list[np.ndarray]:
    """Up to ``n`` distinct relabellings of ``labels`` (all of them when there are fewer)."""
    labels = np.asarray(labels)
    if len(labels) <= 8:
        perms = {tuple(labels[list(p)]) for p in itertools.permutations(range(len(labels)))}
        return [np.asarray(p) for p in sorted(perms)]
    rng = np.random.default_rng(seed)
    return [rng.permutation(labels) for _ in range(n)]


def permutation_null(stat: Callable, labels, how: str, *, n: int = 500, seed: int = 0) -> dict:
    """The null of ``stat(labels)`` under random relabellings of the networks."""
    return null_from([stat(p) for p in label_permutations(labels, n=n, seed=seed)], how)


def mean_difference_null(a, b, how: str = "", *, n: int = 500, seed: int = 0) -> dict:
    """Permutation null of ``mean(a) - mean(b)``: the values shuffled between the groups."""
    values = np.concatenate([np.ravel(a), np.ravel(b)]).astype(np.float64)
    labels = np.asarray([0] * np.size(a) + [1] * np.size(b))

    def stat(p):
        return values[p == 0].mean() - values[p == 1].mean()

    how = how or f"the {len(values)} values shuffled between the two groups"
    return permutation_null(stat, labels, how, n=n, seed=seed)
