"""PWCCA figure 6 (and A8): LSTM layers converge bottom-up; PWCCA shows it most clearly.

Fig 6a-c: over training, the distance of each LSTM layer's representation
L(t) to its final L(T) falls earlier for lower layers. Fig 6d: the projection
weighted mean (PWCCA) shows this much more accurately than the unweighted mean
CCA. Fig A8: cosine and Euclidean distances (the same neurons at t and T) also
show it, CCA more clearly. Every time step of every validation window is a
sample. PWCCA direction: both (``1 - (P(t, T) + P(T, t)) / 2``, symmetrised).

Statistics, per seed, then the mean over seeds (spread: their standard error):
bottom-up = Spearman correlation of layer depth with the mean distance to final
over training (null: the layers' order permuted independently per seed, every
combination); clarity of a measure = ordering consistency, the fraction of
(checkpoint before the end, adjacent layer pair) where the lower layer is
closer to its final representation (6d and A8 compare two measures by it;
null: the two measures' labels swapped at random per checkpoint and seed).

Networks: the LSTM language models shared with ``dynamics`` and ``timesteps``
(``lstm_shakespeare``; ``lstm_ptb`` with ``--data-dir``), two seeds (quick).
Command: ``python -m reproduce all --only lstm_dynamics``; runtime quick
~20 s CPU, plus ~60 s for the two shared LSTMs if no other experiment trained
them. Outputs: ``lstm_dynamics/results.json``, ``lstm_dynamics/lstm_dynamics.png``.
"""

from __future__ import annotations

import itertools
import json
import pathlib

import jax
import numpy as np

import jaxcca
from reproduce import claims as C
from reproduce.configs import select
from reproduce.experiments import _common as K
from reproduce.io import pyplot
from reproduce.train import read_activations

TITLE = "Bottom-up convergence in an LSTM language model"
PAPER = "PWCCA (Morcos et al. 2018) figure 6 (a-d), figure A8"
SETTINGS = {"quick": {"seeds": 2}, "full": {"seeds": 3}, "smoke": {"seeds": 2}}
MEASURES = ("pwcca", "cca", "cosine", "euclidean")


def distance_to_final(stack) -> dict:
    """``{measure: [distance of each checkpoint to the last]}`` for one layer ``(T, n, d)``."""
    stack = np.asarray(stack, np.float32)
    final = stack[-1:]
    pw = 0.5 * (
        np.asarray(jaxcca.pairwise(stack, final, measure="pwcca"))[:, 0]
        + np.asarray(jaxcca.pairwise(final, stack, measure="pwcca"))[0]
    )
    cca = np.asarray(jaxcca.pairwise(stack, final, measure="cca"))[:, 0]
    cos = np.asarray(jax.vmap(K.cosine_distance, in_axes=(0, None))(stack, stack[-1]))
    euc = np.asarray(jax.vmap(K.euclidean_distance, in_axes=(0, None))(stack, stack[-1]))
    return {
        "pwcca": (1.0 - pw).tolist(),
        "cca": (1.0 - cca).tolist(),
        "cosine": cos.tolist(),
        "euclidean": euc.tolist(),
    }


def run(out: pathlib.Path, *, preset: str, data_dir=None, log=print) -> dict:
    """Reads the shared LSTM runs (trains them if needed); distance to final per layer."""
    n = select({}, SETTINGS, preset)["seeds"]
    nets = []
    for m in K.shared_lstm_group(out, preset, n, data_dir=data_dir, log=log):
        metrics = json.loads((m["run_dir"] / "metrics.json").read_text())
        steps, acts, how = read_activations(m["run_dir"])
        layers = [k for k in acts if k.startswith("lstm")]
        nets.append(
            {
                "seed": m["seed"],
                "steps": steps,
                "valid_loss": [metrics[str(s)]["probe_loss"] for s in steps],
                "layers": layers,
                "reduction": how,
                "distance_to_final": {k: distance_to_final(acts[k]) for k in layers},
            }
        )
        log(f"  LSTM seed {m['seed']}: final valid loss {nets[-1]['valid_loss'][-1]:.3f}")
    return K.save_results(
        out,
        "lstm_dynamics",
        {"preset": preset, "config": K.lstm_config(data_dir), "networks": nets},
    )


def _curves(net: dict, measure: str) -> np.ndarray:
    """``(layers, checkpoints)`` distances to final of one network."""
    return np.asarray([net["distance_to_final"][k][measure] for k in net["layers"]])


def bottom_up(curves: np.ndarray) -> float:
    """Spearman correlation of depth with the mean distance to final (1: strictly bottom-up)."""
    from scipy.stats import spearmanr

    area = curves[:, :-1].mean(1)
    if np.ptp(area) == 0:
        return 0.0
    return float(spearmanr(np.arange(len(area)), area).statistic)


def consistency(curves: np.ndarray) -> np.ndarray:
    """Per checkpoint before the end: fraction of adjacent layer pairs ordered bottom-up."""
    return (curves[:-1, :-1] < curves[1:, :-1]).mean(0)


def _layer_null(stat, nets, how) -> dict:
    """``stat`` with the layers' order permuted independently per network (every combination)."""
    n_layers = len(nets[0]["layers"])
    perms = list(itertools.permutations(range(n_layers)))
    combos = list(itertools.product(perms, repeat=len(nets)))
    if len(combos) > 500:
        rng = np.random.default_rng(0)
        combos = [tuple(perms[rng.integers(len(perms))] for _ in nets) for _ in range(500)]
    return C.null_from([stat([list(p) for p in c]) for c in combos], how)


def _swap_null(a: np.ndarray, b: np.ndarray, how: str, *, n: int = 500) -> dict:
    """Null of ``mean(a - b)``: the two measures' labels swapped at random per entry."""
    rng = np.random.default_rng(0)
    d = (a - b).ravel()
    return C.null_from([np.mean(d * rng.choice([-1.0, 1.0], d.size)) for _ in range(n)], how)


def claims(results: dict) -> list[dict]:
    """Figure 6's bottom-up claim, 6d (PWCCA vs mean CCA), A8 (cosine and Euclidean)."""
    nets = results["networks"]
    seeds = [x["seed"] for x in nets]
    layers = nets[0]["layers"]
    perm_how = "the layers' depth order permuted independently per seed (every combination)"
    swap_how = "the two measures' labels swapped at random per (seed, checkpoint), 500 draws"

    def bu(measure, order=None):
        order = order or [list(range(len(layers)))] * len(nets)
        return [bottom_up(_curves(x, measure)[o]) for x, o in zip(nets, order, strict=True)]

    cons = {m: np.stack([consistency(_curves(x, m)) for x in nets]) for m in MEASURES}
    per_seed = {m: cons[m].mean(1) for m in MEASURES}
    base = max(("cosine", "euclidean"), key=lambda m: per_seed[m].mean())
    one = "" if len(nets) > 1 else "; one network, no seed spread"
    common = {"paper": "PWCCA", "seeds": seeds}
    return [
        C.claim(
            id="lstm_dynamics.bottom_up",
            figure="fig6",
            statement="LSTM layers converge bottom-up: lower layers reach their final "
            "representation first",
            statistic=f"Spearman correlation of depth ({', '.join(layers)}) with the mean "
            f"symmetrised PWCCA distance to the final representation (mean over seeds){one}",
            value=float(np.mean(bu("pwcca"))),
            spread=C.standard_error(bu("pwcca")),
            null=_layer_null(lambda o: float(np.mean(bu("pwcca", o))), nets, perm_how),
            **common,
        ),
        C.claim(
            id="lstm_dynamics.pwcca_clearer",
            figure="fig6d",
            statement="the weighted mean (PWCCA) shows bottom-up convergence much more "
            "accurately than the unweighted mean CCA",
            statistic="PWCCA's minus mean CCA's ordering consistency (fraction of checkpoints x "
            f"adjacent layer pairs ordered bottom-up; mean over seeds){one}",
            value=float(np.mean(per_seed["pwcca"] - per_seed["cca"])),
            spread=C.standard_error(per_seed["pwcca"] - per_seed["cca"]),
            null=_swap_null(cons["pwcca"], cons["cca"], swap_how),
            **common,
        ),
        C.claim(
            id="lstm_dynamics.baselines_bottom_up",
            figure="figA8",
            statement="cosine and Euclidean distances also show bottom-up convergence",
            statistic="the smaller of cosine's and Euclidean's Spearman correlation of depth "
            f"with the mean distance to final (mean over seeds){one}",
            value=min(np.mean(bu("cosine")), np.mean(bu("euclidean"))),
            spread=max(C.standard_error(bu("cosine")), C.standard_error(bu("euclidean"))),
            null=_layer_null(
                lambda o: min(np.mean(bu("cosine", o)), np.mean(bu("euclidean", o))),
                nets,
                perm_how,
            ),
            **common,
        ),
        C.claim(
            id="lstm_dynamics.cca_clearer_than_baselines",
            figure="figA8",
            statement="CCA (PWCCA) shows bottom-up convergence more clearly than cosine and "
            "Euclidean distances",
            statistic=f"PWCCA's minus {base}'s (the clearer baseline) ordering consistency "
            f"(mean over seeds){one}",
            value=float(np.mean(per_seed["pwcca"] - per_seed[base])),
            spread=C.standard_error(per_seed["pwcca"] - per_seed[base]),
            null=_swap_null(cons["pwcca"], cons[base], swap_how),
            **common,
        ),
    ]


def table(results: dict) -> str:
    """Per seed and layer: mean distance to final, every measure."""
    lines = [
        "| seed | layer | " + " | ".join(f"mean {m} distance to final" for m in MEASURES) + " |",
        "| --- | --- | " + "--- | " * len(MEASURES),
    ]
    for x in results["networks"]:
        for k in x["layers"]:
            cells = [K.fmt(np.mean(x["distance_to_final"][k][m][:-1])) for m in MEASURES]
            lines.append(f"| {x['seed']} | {k} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def figure(results: dict, path: pathlib.Path) -> None:
    """Distance to final per layer over training: PWCCA, mean CCA (6d), cosine, Euclidean (A8)."""
    plt = pyplot()
    fig, axes = plt.subplots(1, len(MEASURES), figsize=(16, 3.2))
    for ax, m in zip(axes, MEASURES, strict=True):
        for x, style in zip(results["networks"], ("-", "--", ":"), strict=False):
            for i, k in enumerate(x["layers"]):
                ax.plot(
                    x["steps"],
                    x["distance_to_final"][k][m],
                    style,
                    color=f"C{i}",
                    label=f"{k} s{x['seed']}",
                )
        ax.set_title(f"{m} distance to final")
        ax.set_xlabel("step")
    axes[0].legend(fontsize=6)
    K.save_figure(fig, path)
