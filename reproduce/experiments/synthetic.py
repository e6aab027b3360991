"""PWCCA figure 2: signal and noise, as the share of shared signal dimensions falls.

Two representations share a k-dimensional signal; each has d - k dimensions of
its own noise of amplitude ``noise_std`` (relative to the unit-variance
signal); each mixes its dimensions into neurons by its own random matrix.
Statements of the figure: (1) as the share of signal falls, the unweighted
mean CCA underestimates the shared structure, PWCCA much less so; (2) PWCCA is
robust (it falls by less than half as much as mean CCA); (3) SVCCA (99% of the
variance kept) lies between mean CCA and PWCCA. The paper's text does not
give the noise amplitude, and it decides the outcome, so it is swept as a
second axis: every statement is one claim per amplitude, and the table says in
which regime each holds. Null: the same pairs with one representation's rows
shuffled. PWCCA weights by the first representation (``pwcca(x, y)``; both
hold the same signal, so the direction matters little here).

Config: none (synthetic data; settings below). Command: ``python -m reproduce
all --only synthetic``; runtime quick ~15 s CPU. Outputs:
``synthetic/results.json``, ``synthetic/synthetic.png``.
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

TITLE = "Signal and noise: which measure sees the shared structure"
PAPER = "PWCCA (Morcos et al. 2018) figure 2"
SETTINGS = {
    "quick": {"n": 2000, "d": 50, "noise": [0.01, 0.03, 0.1, 0.3, 1.0, 3.0], "repeats": 4},
    "full": {"n": 5000, "d": 200, "noise": [0.01, 0.03, 0.1, 0.3, 1.0, 3.0], "repeats": 10},
    "smoke": {"n": 200, "d": 10, "noise": [0.3, 3.0], "repeats": 2},
}
FRACTIONS = (0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 1.0)
MEASURES = ("cca", "svcca", "pwcca")


def make_pair(rng, n, d, k, noise_std):
    """Two representations sharing a k-dim signal, each with d - k dims of its own noise.

    Each mixes its dims into neurons by its own random matrix; both hold the
    same signal, so an ideal measure calls them alike.
    """
    s = rng.standard_normal((n, k))
    a = np.concatenate([s, noise_std * rng.standard_normal((n, d - k))], axis=1)
    rot = np.linalg.qr(rng.standard_normal((k, k)))[0]
    b = np.concatenate([s @ rot, noise_std * rng.standard_normal((n, d - k))], axis=1)
    mix_a = rng.standard_normal((d, d)) / np.sqrt(d) + np.eye(d)
    mix_b = rng.standard_normal((d, d)) / np.sqrt(d) + np.eye(d)
    return a @ mix_a, b @ mix_b


def _measures(x, y):
    return jnp.stack(
        [
            jaxcca.cca_similarity(x, y),
            jaxcca.svcca_similarity(x, y, keep=0.99),
            jaxcca.pwcca_similarity(x, y),
        ]
    )


def run(out: pathlib.Path, *, preset: str, data_dir=None, log=print) -> dict:
    """The three measures on every pair (noise x fraction x repeat), and with rows shuffled."""
    cfg = select({}, SETTINGS, preset)
    rng = np.random.default_rng(0)
    n, d = cfg["n"], cfg["d"]
    pairs = [
        make_pair(rng, n, d, max(1, round(f * d)), noise)
        for noise in cfg["noise"]
        for _ in range(cfg["repeats"])
        for f in FRACTIONS
    ]
    xs = jnp.asarray(np.stack([p[0] for p in pairs]), jnp.float32)
    ys = jnp.asarray(np.stack([p[1] for p in pairs]), jnp.float32)
    perm = rng.permutation(n)
    sims = np.asarray(jax.jit(jax.vmap(_measures))(xs, ys))
    null = np.asarray(jax.jit(jax.vmap(_measures))(xs, ys[:, perm]))
    shape = (len(cfg["noise"]), cfg["repeats"], len(FRACTIONS), len(MEASURES))
    log(f"  similarity at signal fraction {FRACTIONS[0]}: {sims.reshape(shape)[:, :, 0].mean(1)}")
    return save_results(
        out,
        "synthetic",
        {
            "preset": preset,
            "settings": cfg,
            "noise": cfg["noise"],
            "fractions": list(FRACTIONS),
            "measures": list(MEASURES),
            "similarity": sims.reshape(shape).tolist(),
            "similarity_shuffled_rows": null.reshape(shape).tolist(),
        },
    )


def _effects(sim: np.ndarray) -> dict:
    """Per repeat ``(repeats, fractions, measures)``: the three statements' statistics."""
    cca, svcca, pwcca = sim[:, :, 0], sim[:, :, 1], sim[:, :, 2]
    fall_cca, fall_pwcca = cca[:, -1] - cca[:, 0], pwcca[:, -1] - pwcca[:, 0]
    return {
        "low": pwcca[:, 0] - cca[:, 0],
        "fall": 0.5 * fall_cca - fall_pwcca,
        "between": np.minimum(svcca[:, 0] - cca[:, 0], pwcca[:, 0] - svcca[:, 0]),
    }


STATEMENTS = {
    "low": (
        "as the share of signal dimensions falls, the unweighted mean CCA underestimates the "
        "shared structure, PWCCA much less so",
        "PWCCA minus mean CCA at {low:.0%} signal",
    ),
    "fall": (
        "PWCCA is robust: it falls by less than half as much as mean CCA from 100% to the "
        "lowest share of signal",
        "half of mean CCA's fall minus PWCCA's fall (100% -> {low:.0%} signal)",
    ),
    "between": (
        "SVCCA lies between mean CCA and PWCCA",
        "the smaller of SVCCA - mean CCA and PWCCA - SVCCA at {low:.0%} signal",
    ),
}


def claims(results: dict) -> list[dict]:
    """Figure 2's three statements, one claim per noise amplitude, against shuffled rows."""
    sims = np.asarray(results["similarity"])
    nulls = np.asarray(results["similarity_shuffled_rows"])
    repeats = sims.shape[1]
    how = "the same pairs with the rows of one representation shuffled (no shared signal)"
    out = []
    for key, (statement, statistic) in STATEMENTS.items():
        for i, noise in enumerate(results["noise"]):
            real, null = _effects(sims[i])[key], _effects(nulls[i])[key]
            out.append(
                C.claim(
                    id=f"synthetic.{key}.noise{noise:g}",
                    paper="PWCCA",
                    figure="fig2",
                    statement=statement,
                    statistic=statistic.format(low=FRACTIONS[0])
                    + f", noise amplitude {noise:g} x the signal's (mean of {repeats} pairs)",
                    value=real.mean(),
                    spread=C.standard_error(real),
                    null=C.null_from(null, how),
                    seeds=list(range(repeats)),
                )
            )
    return out


def table(results: dict) -> str:
    """Mean similarity per noise amplitude and signal fraction; where each statement holds."""
    sims = np.asarray(results["similarity"]).mean(1)
    lines = [
        "| noise | signal fraction | mean CCA | SVCCA (99%) | PWCCA |",
        "| --- | --- | --- | --- | --- |",
    ]
    for j, noise in enumerate(results["noise"]):
        for i, f in enumerate(results["fractions"]):
            lines.append(
                f"| {noise:g} | {f:.1f} | " + " | ".join(fmt(v) for v in sims[j, i]) + " |"
            )
    held = {}
    for c in claims(results):
        key, noise = c["id"].split(".")[1], c["id"].split("noise")[1]
        held.setdefault(key, []).append(f"{noise}: {c['outcome']}")
    lines.append("")
    lines += [
        f"Regime, statement `{k}` (noise amplitude: outcome): {'; '.join(v)}"
        for k, v in held.items()
    ]
    return "\n".join(lines)


def figure(results: dict, path: pathlib.Path) -> None:
    """Similarity against the signal fraction, one panel per noise amplitude; dotted: null."""
    plt = pyplot()
    sims = np.asarray(results["similarity"])
    nulls = np.asarray(results["similarity_shuffled_rows"])
    f = results["fractions"]
    noises = results["noise"]
    fig, axes = plt.subplots(1, len(noises), figsize=(3.6 * len(noises), 3.2), squeeze=False)
    for ax, sim, null, noise in zip(axes[0], sims, nulls, noises, strict=True):
        for i, (name, style) in enumerate(zip(MEASURES, ("o-", "s-", "^-"), strict=True)):
            m, s = sim[:, :, i].mean(0), sim[:, :, i].std(0)
            (line,) = ax.plot(f, m, style, label=name)
            ax.fill_between(f, m - s, m + s, color=line.get_color(), alpha=0.2)
            ax.plot(f, null[:, :, i].mean(0), ":", color=line.get_color(), lw=1)
        ax.set_title(f"noise amplitude {noise:g}")
        ax.set_xlabel("fraction of dimensions that are signal")
    axes[0, 0].set_ylabel("similarity (dotted: rows shuffled)")
    axes[0, 0].legend()
    save_figure(fig, path)
