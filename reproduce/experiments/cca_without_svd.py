"""SVCCA section 2: why the SVD before CCA; an example where plain CCA does badly.

Two layers share a low-dimensional signal (``k`` directions carrying most of
the variance) and each adds many low-variance noise directions of its own, as
a trained layer does. Plain CCA of all ``d`` neurons finds strong spurious
correlations in the noise directions when ``d`` is not small against the
number of samples, so its similarity barely tells a related pair from an
unrelated one; SVCCA (99 % of the variance kept) drops the noise directions and
separates them.

Claim: SVCCA separates related from unrelated pairs more than plain CCA does.
Statistic: (SVCCA related - SVCCA unrelated) - (CCA related - CCA unrelated),
mean over data sets drawn with their own seeds; spread: its standard error;
null: the same statistic when the "related" pair is unrelated too (no shared
signal: the difference a method gains from nothing). No network, no config.
Command: ``python -m reproduce all --only cca_without_svd``. Outputs:
``cca_without_svd/results.json``, ``cca_without_svd/cca_without_svd.png``.
"""

from __future__ import annotations

import pathlib

import jax
import jax.numpy as jnp
import numpy as np

import jaxcca
from reproduce import claims as C
from reproduce.configs import select
from reproduce.experiments._common import fmt, save_figure, save_results
from reproduce.io import pyplot

TITLE = "Why SVD before CCA: plain CCA is fooled by low-variance noise directions"
PAPER = "SVCCA (Raghu et al. 2017) section 2"
SETTINGS = {
    "quick": {"n": 500, "k": 5, "widths": [10, 25, 50, 100, 200], "draws": 8},
    "full": {"n": 500, "k": 5, "widths": [10, 25, 50, 100, 200, 400], "draws": 20},
    "smoke": {"n": 200, "k": 3, "widths": [10, 50], "draws": 3},
}
NOISE = 0.1  # standard deviation of a noise direction (a signal direction has 1)


def layer(key, signal, d: int):
    """``signal`` ``(n, k)`` mixed into ``d`` neurons, plus ``d`` low-variance noise directions."""
    k1, k2 = jax.random.split(key)
    n, k = signal.shape
    mix = jax.random.normal(k1, (k, d))
    return signal @ mix + NOISE * jax.random.normal(k2, (n, d))


def draw(seed: int, n: int, k: int, d: int, width: int) -> dict:
    """CCA and SVCCA of a related pair (shared signal) and an unrelated one (own signals).

    The layers are zero-padded to ``width`` neurons so that every width runs
    one compiled program (a zero neuron is dead: it changes neither measure).
    """
    ks = jax.random.split(jax.random.key(seed), 6)
    s, s2 = jax.random.normal(ks[0], (n, k)), jax.random.normal(ks[1], (n, k))

    def pad(a):
        return jnp.pad(a, ((0, 0), (0, width - d)))

    x, y = pad(layer(ks[2], s, d)), pad(layer(ks[3], s, d))
    z = pad(layer(ks[4], s2, d))  # the unrelated layer: its own signal
    out = {}
    for name, b in (("related", y), ("unrelated", z)):
        out[f"cca_{name}"] = float(jaxcca.cca_similarity(x, b))
        out[f"svcca_{name}"] = float(jaxcca.svcca_similarity(x, b, keep=0.99))
    return out


def run(out: pathlib.Path, *, preset: str, data_dir=None, log=print) -> dict:
    """Both measures on related and unrelated pairs, per width, over seeded draws."""
    s = select({}, SETTINGS, preset)
    rows = []
    for d in s["widths"]:
        for i in range(s["draws"]):
            seed = 1000 * d + i
            rows.append(
                {"width": d, "seed": seed, **draw(seed, s["n"], s["k"], d, max(s["widths"]))}
            )
        log(f"  width {d}: {rows[-1]}")
    return save_results(out, "cca_without_svd", {"preset": preset, "settings": s, "rows": rows})


def _gap(r, m) -> float:
    return r[f"{m}_related"] - r[f"{m}_unrelated"]


def claims(results: dict) -> list[dict]:
    """SVCCA separates related from unrelated more than CCA, at the largest width."""
    d = max(r["width"] for r in results["rows"])
    rows = [r for r in results["rows"] if r["width"] == d]
    diff = np.asarray([_gap(r, "svcca") - _gap(r, "cca") for r in rows])
    # null: both pairs unrelated; the unrelated pairs of consecutive draws stand in for it
    null = [
        (a["svcca_unrelated"] - b["svcca_unrelated"]) - (a["cca_unrelated"] - b["cca_unrelated"])
        for a, b in zip(rows, rows[1:] + rows[:1], strict=True)
    ]
    return [
        C.claim(
            id="cca_without_svd.svd_separates",
            paper="SVCCA",
            figure="sec2",
            statement="without the SVD, CCA is dominated by low-variance noise directions and "
            "tells related layers from unrelated ones badly; SVCCA does not",
            statistic=f"(SVCCA related - unrelated) - (CCA related - unrelated), {d} neurons, "
            f"{results['settings']['k']} shared directions, n={results['settings']['n']}; "
            "mean over draws",
            value=float(diff.mean()),
            spread=C.standard_error(diff),
            null=C.null_from(
                null, "two unrelated pairs of different draws in place of related / unrelated"
            ),
            seeds=[r["seed"] for r in rows],
        )
    ]


def table(results: dict) -> str:
    """Mean similarity per width: CCA and SVCCA, related and unrelated."""
    widths = sorted({r["width"] for r in results["rows"]})
    keys = ("cca_related", "cca_unrelated", "svcca_related", "svcca_unrelated")
    lines = ["| neurons | " + " | ".join(keys) + " |", "| --- " * 5 + "|"]
    for d in widths:
        rows = [r for r in results["rows"] if r["width"] == d]
        lines.append(
            f"| {d} | " + " | ".join(fmt(np.mean([r[k] for r in rows])) for k in keys) + " |"
        )
    return "\n".join(lines)


def figure(results: dict, path: pathlib.Path) -> None:
    """Similarity against width, both measures, related (solid) and unrelated (dashed)."""
    plt = pyplot()
    widths = sorted({r["width"] for r in results["rows"]})
    fig, ax = plt.subplots(figsize=(5, 3.2))
    for m, color in (("cca", "C0"), ("svcca", "C1")):
        for rel, ls in (("related", "-"), ("unrelated", "--")):
            v = [
                np.mean([r[f"{m}_{rel}"] for r in results["rows"] if r["width"] == d])
                for d in widths
            ]
            ax.plot(widths, v, ls, color=color, marker="o", ms=3, label=f"{m} {rel}")
    ax.set_xscale("log")
    ax.set_xlabel("neurons per layer")
    ax.set_ylabel("similarity")
    ax.legend(fontsize=7)
    save_figure(fig, path)
